"""inject-ca (phase inject-ca and the ca-rpm helper) on roots built by the builder plugins."""
import os
import subprocess

import pytest

import rpm_harness as h

LAYOUT_FILES = {
    "suse": ("/etc/pki/trust/anchors/ims-site-ca.pem", "/var/lib/ca-certificates/ca-bundle.pem", "/etc/ssl/ca-bundle.pem"),
    "rhel": ("/etc/pki/ca-trust/source/anchors/ims-site-ca.pem", "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
             "/etc/pki/tls/certs/ca-bundle.crt"),
}


def new_ca():
    """A CA the built roots do not trust yet (the signed repository's throwaway CA)."""
    path = h.served_repos()["signed"].ca
    with open(path) as f:
        return path, f.read().strip()


def inside(root, path):
    return os.path.join(root, path.lstrip("/"))


def read(path):
    with open(path) as f:
        return f.read()


def inject(root, ws, ca, **config):
    return h.run_plugin(h.INJECT_CA, "inject-ca", "inject-ca/v1", workspace=ws,
                        inputs={"rootfs": {"path": root, "kind": "dir"}, "ca_cert": {"path": ca, "kind": "file"}},
                        config=config)


@pytest.mark.parametrize("tool,layout", [("zypper", "suse"), ("dnf", "rhel"), ("zypper", "rhel"), ("dnf", "suse")])
def test_inject_into_a_built_root(tool, layout):
    build = h.full_build(tool)
    assert build.ok, build.describe()
    ws = h.Workspace(f"inject-{tool}-{layout}")
    root = h.copy_root(build.result["outputs"]["rootfs"]["path"], ws, "inject-ca")
    ca, pem = new_ca()
    run = inject(root, ws, ca, layout=layout)
    assert run.ok, run.describe()
    anchor, bundle, link = LAYOUT_FILES[layout]
    facts = run.result["facts"]
    assert facts == {"anchor_path": anchor, "bundle_path": bundle, "layout": layout, "tool_ran": True}
    assert run.result["outputs"]["rootfs"]["path"] == root
    assert read(inside(root, anchor)).strip() == pem
    assert pem in read(inside(root, bundle))
    assert pem in read(inside(root, link)), "the second bundle name does not lead to the bundle"
    assert any("certificates in" in line for line in run.logs()), "the update tool's output was not logged"
    assert os.listdir(inside(root, "/dev")) == [], "device nodes left behind"


@pytest.mark.parametrize("os_release,expected", [('ID="sles"\nVERSION_ID="15.6"\n', "suse"),
                                                 ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "rhel"),
                                                 ('ID=ims-test\nID_LIKE="opensuse suse"\n', "suse")])
def test_layout_auto_from_os_release(os_release, expected):
    build = h.full_build("zypper")
    ws = h.Workspace("inject-auto")
    root = h.copy_root(build.result["outputs"]["rootfs"]["path"], ws, "inject-ca")
    with open(inside(root, "/etc/os-release"), "w") as f:
        f.write(os_release)
    ca, pem = new_ca()
    run = inject(root, ws, ca)
    assert run.ok, run.describe()
    assert run.result["facts"]["layout"] == expected
    assert pem in read(inside(root, LAYOUT_FILES[expected][1]))


def test_layout_auto_ambiguous_fails_unless_hinted():
    build = h.full_build("dnf")
    ws = h.Workspace("inject-ambiguous")
    root = h.copy_root(build.result["outputs"]["rootfs"]["path"], ws, "inject-ca")
    ca, _ = new_ca()
    # the test distro has both tools and both directory trees, and os-release names no family
    run = inject(root, ws, ca, layout="auto")
    assert (run.error["code"], run.error["category"]) == ("inject-ca.unknown_layout", "user"), run.describe()
    hinted = inject(root, ws, ca, layout="auto", distro_family="rhel")
    assert hinted.ok and hinted.result["facts"]["layout"] == "rhel", hinted.describe()


@pytest.mark.parametrize("layout", ["suse", "rhel"])
def test_without_the_tool_the_bundle_is_appended_directly(layout):
    ws = h.Workspace(f"inject-notool-{layout}")
    root = os.path.join(ws.step("inject-ca")["in"], "rootfs")
    os.makedirs(inside(root, "/etc"))
    ca, pem = new_ca()
    anchor, bundle, link = LAYOUT_FILES[layout]
    for attempt in range(2):  # idempotent
        run = inject(root, ws, ca, layout=layout)
        assert run.ok, run.describe()
        assert run.result["facts"]["tool_ran"] is False
        assert read(inside(root, bundle)).count(pem) == 1
        assert read(inside(root, link)).count(pem) == 1
    assert any("appending the certificate to the bundle files directly" in line for line in run.logs())
    assert os.path.islink(inside(root, link))


def test_a_bundle_symlink_to_a_host_path_is_never_followed_out_of_the_root():
    ws = h.Workspace("inject-hostile")
    root = os.path.join(ws.step("inject-ca")["in"], "rootfs")
    canary = os.path.join(h.WORK, "host-canary-bundle.pem")
    with open(canary, "w") as f:
        f.write("host file\n")
    os.makedirs(inside(root, "/var/lib/ca-certificates"))
    os.symlink(canary, inside(root, "/var/lib/ca-certificates/ca-bundle.pem"))  # absolute: a host path
    ca, pem = new_ca()
    run = inject(root, ws, ca, layout="suse")
    assert run.ok, run.describe()
    assert read(canary) == "host file\n", "inject-ca wrote through a symlink onto the host"
    assert pem in read(inside(root, canary)), "the absolute link was not resolved inside the root"


def test_not_a_certificate():
    ws = h.Workspace("inject-bad")
    root = os.path.join(ws.step("inject-ca")["in"], "rootfs")
    os.makedirs(root)
    bogus = os.path.join(ws.step("inject-ca")["in"], "ca.pem")
    with open(bogus, "w") as f:
        f.write("not a certificate\n")
    run = inject(root, ws, bogus)
    assert (run.error["code"], run.error["category"]) == ("inject-ca.invalid_certificate", "user")


def test_ca_rpm_phase_and_install_into_a_root():
    ws = h.Workspace("ca-rpm")
    ca, pem = new_ca()
    run = h.run_plugin(h.INJECT_CA, "ca-rpm", "custom/v1", workspace=ws,
                       inputs={"ca_cert": {"path": ca, "kind": "file"}},
                       config={"name": "ims-site-ca", "version": "1.0.1", "release": "1"})
    assert run.ok, run.describe()
    rpm = run.result["outputs"]["rpm"]["path"]
    assert os.path.basename(rpm) == "ims-site-ca-1.0.1-1.noarch.rpm"
    env = {"PATH": h.HOST_PATH, "HOME": "/nonexistent"}
    files = subprocess.run(["rpm", "-qpl", rpm], capture_output=True, text=True, check=True, env=env).stdout.split()
    assert files == ["/usr/share/pki/ca-trust-source/anchors/ims-site-ca.pem",
                     "/usr/share/pki/trust/anchors/ims-site-ca.pem"]
    scripts = subprocess.run(["rpm", "-qp", "--scripts", rpm], capture_output=True, text=True, check=True, env=env).stdout
    assert "postinstall scriptlet (using <lua>)" in scripts and "update-ca-certificates" in scripts
    # Installed into a built root, its Lua %post rebuilds both trust stores (no shell needed for the RPM).
    build = h.full_build("zypper")
    root = h.copy_root(build.result["outputs"]["rootfs"]["path"], ws, "install")
    subprocess.run(["rpm", "--root", root, "--dbpath", h.RPMDB, "-i", rpm], check=True, env=env,
                   capture_output=True)
    assert pem in read(inside(root, LAYOUT_FILES["suse"][1]))
    assert pem in read(inside(root, LAYOUT_FILES["rhel"][1]))


def test_make_ca_rpm_command_line():
    ws = h.Workspace("make-ca-rpm")
    ca, _ = new_ca()
    h.ensure_plugins_built()
    out = subprocess.run([os.path.join(h.INJECT_CA, "bin", "make-ca-rpm"), ca, ws.root, "--name", "site-ca",
                          "--layout", "suse"], capture_output=True, text=True, check=True)
    rpm = out.stdout.strip()
    assert rpm == os.path.join(ws.root, "site-ca-1.0-1.noarch.rpm") and os.path.isfile(rpm)
    files = subprocess.run(["rpm", "-qpl", rpm], capture_output=True, text=True, check=True,
                           env={"PATH": h.HOST_PATH, "HOME": "/nonexistent"}).stdout.split()
    assert files == ["/usr/share/pki/trust/anchors/site-ca.pem"]

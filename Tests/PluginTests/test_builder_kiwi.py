"""builder-kiwi (org.ims.builder.kiwi): a real kiwi-ng, driven over the protocol against the HTTPS test
repository, compared with the native zypper builder on the same description.

Run: python3 -m pytest Tests/PluginTests/test_builder_kiwi.py -q   (as root, after scripts/install-deps,
which installs kiwi 11.1.6 into /opt/ims-kiwi-venv and links /usr/local/bin/kiwi-ng). The tests that need
kiwi-ng are skipped when it is not installed; the missing-tool test runs anyway.

Every recipe here is bootstrap-only: kiwi-ng installs <packages type="image"> with zypper/dnf INSIDE the
image, which the synthetic test distribution does not have.
"""
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess

import pytest

import rpm_harness as h

KIWI_PLUGIN = os.path.join(h.PLUGINS, "builder-kiwi")
EXAMPLE = os.path.join(h.REPO, "examples", "kiwi-bootstrap")
BOOTSTRAP = ["ims-test-filesystem", "ims-test-shell", "ims-test-kernel", "ims-test-ca-certificates", "ims-test-app"]
KIWI = shutil.which("kiwi-ng", path=h.HOST_PATH)
needs_kiwi = pytest.mark.skipif(KIWI is None, reason="kiwi-ng is not installed (scripts/install-deps)")


def ensure_kiwi_plugin_built():
    """lib/ of builder-kiwi holds the current SDK and lib-rpmbuilder modules (rpm_harness only checks
    the plugins it knows)."""
    sources = [os.path.join(h.REPO, "sdk", "python", "ims_plugin.py")] + [
        os.path.join(h.PLUGINS, "lib-rpmbuilder", name)
        for name in sorted(os.listdir(os.path.join(h.PLUGINS, "lib-rpmbuilder"))) if name.endswith(".py")]
    for source in sources:
        target = os.path.join(KIWI_PLUGIN, "lib", os.path.basename(source))
        if not os.path.exists(target) or open(target, "rb").read() != open(source, "rb").read():
            subprocess.run([os.path.join(h.REPO, "scripts", "build-plugins")], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
            return


ensure_kiwi_plugin_built()


def recipe(workspace, url, *, packages=BOOTSTRAP, package_manager="zypper", config_sh=None):
    """examples/kiwi-bootstrap rendered for ``url`` (what the engine's prepare-recipe step hands over);
    ``config_sh`` replaces the example's config.sh."""
    directory = os.path.join(workspace.step("fetch")["out"], "recipe")
    shutil.copytree(EXAMPLE, directory, symlinks=True)
    if config_sh is not None:
        with open(os.path.join(directory, "config.sh"), "w", encoding="utf-8") as f:
            f.write(config_sh)
    path = os.path.join(directory, "config.xml")
    with open(path, encoding="utf-8") as f:
        text = f.read().replace("{{ REPO_URL }}", url)
    if package_manager != "zypper":
        text = text.replace("<packagemanager>zypper</packagemanager>", f"<packagemanager>{package_manager}</packagemanager>")
    if packages != BOOTSTRAP:
        start, end = text.index('<packages type="bootstrap">'), text.index("</packages>")
        text = text[:start] + '<packages type="bootstrap">\n' + "".join(
            f'    <package name="{p}"/>\n' for p in packages) + "  " + text[end:]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return directory


def description(url, *, tool="zypper", packages=BOOTSTRAP):
    """The description.json the engine would write for examples/kiwi-bootstrap."""
    desc = h.minimal_description(tool, url)
    desc.update({"name": "ims-example-kiwi-bootstrap", "version": "1.0.0",
                 "repositories": [dict(desc["repositories"][0], alias="ims-test", imageinclude=True)],
                 "packages": {"bootstrap": list(packages), "image": [], "delete": [], "uninstall": []},
                 "preferences": {"locale": "en_US", "keytable": "us", "timezone": "UTC", "rpm_excludedocs": True,
                                 "types": [{"image": "tbz", "attributes": {}}]},
                 "config_sh": "config.sh", "overlay": "root"})
    return desc


def kiwi_build(label, *, ca=None, tool="zypper", packages=BOOTSTRAP, url=None, config=None, workspace=None,
               cancel_after=None, config_sh=None):
    repo = h.served_repos()["plain"]
    ws = workspace or h.Workspace(f"kiwi-{label}")
    url = url or repo.url
    recipe_dir = recipe(ws, url, packages=packages, package_manager="zypper" if tool == "zypper" else "dnf4",
                        config_sh=config_sh)
    desc_path = os.path.join(ws.step("prepare-recipe")["out"], "description.json")
    with open(desc_path, "w") as f:
        json.dump(description(url, tool=tool, packages=packages), f, indent=1)
    cfg = {"distro_family": "suse" if tool == "zypper" else "rhel",
           "package_manager": "zypper" if tool == "zypper" else "dnf4", "arch": os.uname().machine}
    if ca:
        cfg["ca_bundle"] = ca
    cfg.update(config or {})
    run = h.run_plugin(KIWI_PLUGIN, "build-root", "build-root/v1", workspace=ws,
                       inputs={"recipe": {"path": recipe_dir, "kind": "dir"},
                               "description": {"path": desc_path, "kind": "file"}},
                       config=cfg, cancel_after=cancel_after)
    h.TIMINGS[f"kiwi: {label}"] = run.seconds
    return run


def mounts_below(path):
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path.rstrip("/") + "/")]


def packages_json(run):
    with open(run.result["outputs"]["package_list"]["path"]) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def kiwi_zypper():
    """The example built by kiwi-ng (zypper) over HTTPS with the site CA."""
    if KIWI is None:
        pytest.skip("kiwi-ng is not installed")
    run = kiwi_build("zypper bootstrap with CA", ca=h.served_repos()["plain"].ca)
    assert run.ok, run.describe()
    return run


# ------------------------------------------------------------------------------------------
# a successful build


@needs_kiwi
def test_bootstrap_build_with_site_ca(kiwi_zypper):
    run = kiwi_zypper
    root = run.result["outputs"]["rootfs"]["path"]
    assert root == os.path.join(run.workspace["out"], "rootfs")
    installed = h.rpm_qa(root)
    for name in BOOTSTRAP + ["ims-test-lib", "ims-site-ca"]:
        assert name in installed, (name, installed)
    # The CA RPM went in as a bootstrap package, and the trust store has the site CA.
    ca = open(h.served_repos()["plain"].ca).read().strip()
    assert open(os.path.join(root, "usr/share/pki/trust/anchors/ims-site-ca.pem")).read().strip() == ca
    assert ca in open(os.path.join(root, "var/lib/ca-certificates/ca-bundle.pem")).read()
    # kiwi applied the overlay, ran config.sh and wrote the imageinclude repository (the image's view).
    assert open(os.path.join(root, "etc/motd")).read().startswith("Welcome to the ims example image (kiwi-bootstrap)")
    assert "ims-example-kiwi-bootstrap 1.0.0" in open(os.path.join(root, "etc/ims-configured")).read()
    repo_file = open(os.path.join(root, "etc/zypp/repos.d/ims-test.repo")).read()
    assert h.served_repos()["plain"].url in repo_file and "ssl_capath" not in repo_file
    # The database is where SUSE keeps it (not Debian's ~/.rpmdb), and kiwi's own files are gone.
    assert os.path.isfile(os.path.join(root, "usr/lib/sysimage/rpm/rpmdb.sqlite"))
    assert os.readlink(os.path.join(root, "var/lib/rpm")) == "../../usr/lib/sysimage/rpm"
    assert not os.path.exists(os.path.join(root, "image")) and not os.path.exists(os.path.join(root, ".kconfig"))
    assert os.listdir(os.path.join(root, "tmp")) == [], "kiwi's cache mount point was left in the image"
    assert not mounts_below(run.workspace["root"]), "kiwi left mounts behind"


@needs_kiwi
def test_result_logs_progress_and_metadata(kiwi_zypper):
    run = kiwi_zypper
    result = run.result
    packages = packages_json(run)
    assert result["facts"]["package_count"] == len(packages)
    assert result["facts"]["rpmdb_path"] == "/usr/lib/sysimage/rpm"
    assert result["facts"]["kiwi_version"] == result["metadata"]["kiwi_version"]
    assert os.path.isfile(result["outputs"]["kiwi_log"]["path"])
    assert "DEBUG" in open(result["outputs"]["kiwi_log"]["path"]).read()
    meta = result["metadata"]
    assert meta["builder"] == "kiwi-ng" and meta["site_ca"] is True and meta["ca_rpm"].startswith("ims-site-ca-")
    assert meta["command"][1:3] == ["--logfile", os.path.join(run.workspace["out"], "kiwi.log")]
    assert "--add-bootstrap-package" in meta["command"] and "prepare" in meta["command"]
    kiwi_logs = run.logs("kiwi-ng")
    assert any(line.startswith("Installing bootstrap packages") for line in kiwi_logs), kiwi_logs[:20]
    assert not any("[ INFO" in line or "Processing: [" in line for line in kiwi_logs), "raw kiwi records leaked"
    messages = [p.get("message", "") for p in run.of_type("progress")]
    for stage in ("repositories:", "bootstrap:", "import:", "system:", "config.sh:", "package-list:"):
        assert any(m.startswith(stage) for m in messages), (stage, messages)
    assert set(meta["stage_seconds"]) >= {"setup", "repositories", "bootstrap", "config.sh", "package-list"}


@needs_kiwi
def test_package_set_equals_native_zypper_builder(kiwi_zypper):
    repo = h.served_repos()["plain"]
    ws = h.Workspace("zypper-kiwi-bootstrap")
    native = h.build_root("zypper", description(repo.url), ca=repo.ca, recipe=recipe(ws, repo.url),
                          label="kiwi-bootstrap description (native)", workspace=ws)
    assert native.ok, native.describe()

    def nevra(packages):
        return sorted((p["name"], p["epoch"], p["version"], p["release"], p["arch"]) for p in packages)

    kiwi = nevra(packages_json(kiwi_zypper))
    # kiwi installs the site CA as an RPM (IMS's way); the native builder seeds the anchor instead.
    assert [p for p in kiwi if p[0] == "ims-site-ca"] == [("ims-site-ca", None, "1.0", "1", "noarch")]
    assert [p for p in kiwi if p[0] != "ims-site-ca"] == nevra(packages_json(native))
    native_root = native.result["outputs"]["rootfs"]["path"]
    kiwi_root = kiwi_zypper.result["outputs"]["rootfs"]["path"]
    assert {k: v for k, v in h.rpm_qa(kiwi_root).items() if k != "ims-site-ca"} == h.rpm_qa(native_root)
    for path in ("etc/motd", "etc/ims-configured", "boot/kernel-parameters", "usr/bin/ims-test-app"):
        assert open(os.path.join(kiwi_root, path), "rb").read() == open(os.path.join(native_root, path), "rb").read()


@needs_kiwi
def test_dnf4_bootstrap_build_with_site_ca():
    repo = h.served_repos()["plain"]
    run = kiwi_build("dnf4 bootstrap with CA", ca=repo.ca, tool="dnf")
    assert run.ok, run.describe()
    root = run.result["outputs"]["rootfs"]["path"]
    assert set(h.rpm_qa(root)) == set(BOOTSTRAP) | {"ims-test-lib", "ims-site-ca"}
    assert open(repo.ca).read().strip() in open(os.path.join(root, "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem")).read()
    assert os.path.isfile(os.path.join(root, "etc/yum.repos.d/ims-test.repo"))


@needs_kiwi
def test_site_signing_key_is_imported():
    signed = h.served_repos()["signed"]
    run = kiwi_build("signed repository with --signing-key", ca=signed.ca, url=signed.url,
                     packages=["ims-test-filesystem", "ims-test-shell"], config={"signing_keys": [signed.key]})
    assert run.ok, run.describe()
    meta = run.result["metadata"]
    assert meta["signing_keys"] == 1 and meta["command"][meta["command"].index("--signing-key") + 1] == signed.key
    root = run.result["outputs"]["rootfs"]["path"]
    keys = subprocess.run(["rpm", "--root", root, "--dbpath", h.RPMDB, "-q", "gpg-pubkey"], capture_output=True,
                          text=True, env={"PATH": h.HOST_PATH, "HOME": "/nonexistent"})
    assert keys.returncode == 0 and keys.stdout.startswith("gpg-pubkey-"), keys.stdout + keys.stderr


# ------------------------------------------------------------------------------------------
# failures


@needs_kiwi
def test_tls_failure_without_site_ca_names_the_repository():
    run = kiwi_build("TLS without CA")
    assert not run.ok
    error = run.error
    assert error["code"] == "build-root.kiwi_failed" and error["category"] == "environment", error
    assert error["details"]["exception"] == "KiwiBootStrapPhaseFailed"
    assert error["details"]["alias"] == "ims-test" and error["details"]["url"] == h.served_repos()["plain"].url
    assert "KiwiBootStrapPhaseFailed" in error["message"] and "repository 'ims-test'" in error["message"]
    assert "TLS certificate verification failed" in error["message"] and "site CA" in error["hint"]
    assert not mounts_below(run.workspace["root"])


@needs_kiwi
def test_unreachable_repository_is_transient():
    run = kiwi_build("repository down", url=h.free_port_url(), packages=["ims-test-filesystem"])
    error = run.error
    assert error["code"] == "build-root.kiwi_failed" and error["category"] == "transient", error
    assert error["retry_after_seconds"] == 30 and error["details"]["alias"] == "ims-test"
    assert "unreachable" in error["message"]


@needs_kiwi
def test_missing_package_is_named():
    repo = h.served_repos()["plain"]
    run = kiwi_build("missing package", ca=repo.ca, packages=["ims-test-filesystem", "ims-test-nope"])
    assert not run.ok
    error = run.error
    assert error["code"] == "build-root.kiwi_failed" and error["category"] == "user", error
    assert error["details"]["missing"] == ["ims-test-nope"], error
    assert "ims-test-nope" in error["message"] and error["details"]["exception"] == "KiwiBootStrapPhaseFailed"


@needs_kiwi
def test_cancel_stops_kiwi_and_leaves_no_mounts():
    repo = h.served_repos()["plain"]
    # config.sh sleeps far longer than the cancel delay, so the cancel lands while kiwi-ng is still working
    # however fast the machine (on a fast one the whole example builds in under 2 s).
    run = kiwi_build("cancelled", ca=repo.ca, cancel_after=2.0, config_sh="#!/bin/sh\nsleep 120\n")
    assert run.terminal["type"] == "error" and run.error["code"] == "ims.cancelled", run.describe()
    assert run.seconds < 60, "the plugin did not stop promptly after the cancel"
    assert not mounts_below(run.workspace["root"])
    ws = h.Workspace("kiwi-cleanup")
    cleanup = h.run_plugin(KIWI_PLUGIN, "build-root", "build-root/v1", workspace=ws, verb="cleanup")
    assert cleanup.ok, cleanup.describe()


def test_kiwi_missing_is_an_environment_error():
    """kiwi-ng not on the plugin PATH -> build-root.missing_tool with a hint (kiwi_command names a
    command that does not exist, as a host without kiwi-ng would)."""
    repo = h.served_repos()["plain"]
    run = kiwi_build("kiwi missing", ca=repo.ca, config={"kiwi_command": "kiwi-ng-not-installed"})
    error = run.error
    assert error["code"] == "build-root.missing_tool" and error["category"] == "environment", error
    assert error["details"]["command"] == "kiwi-ng-not-installed"
    assert "install-deps" in error["hint"] and "/usr/local/bin/kiwi-ng" in error["hint"]


def test_check_kiwi_function():
    """The same check, called directly with the plugin's fixed PATH."""
    loader = importlib.machinery.SourceFileLoader("ims_builder_kiwi", os.path.join(KIWI_PLUGIN, "bin", "ims-builder-kiwi"))
    spec = importlib.util.spec_from_loader("ims_builder_kiwi", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    with pytest.raises(module.PluginError) as raised:
        module.check_kiwi("/nonexistent/bin/kiwi-ng")
    assert raised.value.code == "build-root.missing_tool" and raised.value.category == "environment"
    if KIWI:
        assert module.check_kiwi() == KIWI


def test_describe_declares_kiwi_ng():
    out = subprocess.run([os.path.join(KIWI_PLUGIN, "bin", "ims-builder-kiwi"), "describe"], capture_output=True,
                         text=True, env={"PATH": h.HOST_PATH, "IMS_PLUGIN": "1"}, check=True)
    describe = json.loads(out.stdout)["data"]
    assert "kiwi-ng" in describe["phases"][0]["requires"]["commands"]
    with open(os.path.join(KIWI_PLUGIN, "plugin.json")) as f:
        manifest = json.load(f)
    assert "kiwi-ng" in manifest["requires"]
    # Never chosen by default: no recipe has the package manager "kiwi-ng".
    assert manifest["phases"][0]["selectors"]["package_manager"] == ["kiwi-ng"]


@needs_kiwi
def test_package_list_does_not_use_an_rpm_that_is_not_rpm():
    """An image whose /usr/bin/rpm is busybox's applet: the package list is read with the host's rpm (with a
    warning naming the impostor), not with the applet, which has no -qa --qf."""
    repo = h.served_repos()["plain"]
    run = kiwi_build("busybox rpm", ca=repo.ca,
                     config_sh="#!/bin/sh\nset -e\nln -s busybox /usr/bin/rpm\n")
    assert run.ok, run.describe()
    assert any("/usr/bin/rpm is not rpm" in w for w in run.result["metadata"].get("warnings", [])), run.result["metadata"]
    assert {p["name"] for p in packages_json(run)} >= set(BOOTSTRAP)

"""builder-zypper and builder-dnf, driven over the protocol against the HTTPS test repository.

Run: python3 -m pytest Tests/PluginTests -q   (as root, on Debian 12 with scripts/install-deps done)
"""
import json
import os
import shutil
import subprocess

import pytest

import rpm_harness as h

TOOLS = ["zypper", "dnf"]
IMAGE_REPO_DIR = {"zypper": "etc/zypp/repos.d", "dnf": "etc/yum.repos.d"}
ANCHORS = {"zypper": "etc/pki/trust/anchors", "dnf": "etc/pki/ca-trust/source/anchors"}
BUNDLE = {"zypper": "var/lib/ca-certificates/ca-bundle.pem", "dnf": "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"}


@pytest.fixture(scope="module", params=TOOLS)
def built(request):
    """(tool, run, rootfs) of the full build with the site CA."""
    run = h.full_build(request.param)
    assert run.ok, run.describe()
    return request.param, run, run.result["outputs"]["rootfs"]["path"]


def read(root, path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()


# ------------------------------------------------------------------------------------------
# the successful build


def test_result_outputs_and_facts(built):
    tool, run, root = built
    result = run.result
    assert result["outputs"]["rootfs"] == {"path": os.path.join(run.workspace["out"], "rootfs"), "kind": "dir"}
    listing = result["outputs"]["package_list"]
    assert listing["path"] == os.path.join(run.workspace["out"], "packages.json")
    assert listing["digest"].startswith("sha256:") and listing["size"] == os.path.getsize(listing["path"])
    with open(listing["path"]) as f:
        packages = json.load(f)
    assert result["facts"]["package_count"] == len(packages)
    assert result["metadata"]["builder"] == tool
    assert set(result["metadata"]["stage_seconds"]) >= {"repositories", "bootstrap", "image", "overlay", "users",
                                                        "config.sh", "delete", "rpmdb"}


def test_packages_installed_with_dependencies_and_collection(built):
    tool, _, root = built
    installed = h.rpm_qa(root)
    for name in ("ims-test-filesystem", "ims-test-shell", "ims-test-app", "ims-test-ca-certificates",
                 "ims-test-kernel", "ims-test-tool"):
        assert name in installed, (name, installed)
    assert "ims-test-lib" in installed, "the dependency of ims-test-app was not pulled in"
    assert installed["ims-test-app"] == "2.1-3"
    assert os.path.isfile(os.path.join(root, "usr/share/ims-test/tool.txt")), "collection member missing"
    assert os.path.isfile(os.path.join(root, "boot/vmlinuz-6.1.0-ims"))
    assert os.readlink(os.path.join(root, "boot/initrd")) == "initrd-6.1.0-ims"


def test_package_list_matches_rpmdb(built):
    _, run, root = built
    with open(run.result["outputs"]["package_list"]["path"]) as f:
        packages = json.load(f)
    assert [p["name"] for p in packages] == sorted(p["name"] for p in packages)
    assert {p["name"]: f"{p['version']}-{p['release']}" for p in packages} == h.rpm_qa(root)
    app = next(p for p in packages if p["name"] == "ims-test-app")
    assert app == {"name": "ims-test-app", "epoch": None, "version": "2.1", "release": "3", "arch": "noarch",
                   "repository": "base"}
    # every package came from the one build repository, as zypper's history / dnf's history database say
    assert {p["name"]: p.get("repository") for p in packages} == {p["name"]: "base" for p in packages}
    shell = next(p for p in packages if p["name"] == "ims-test-shell")
    assert shell["arch"] == os.uname().machine


def test_post_scriptlet_ran(built):
    _, _, root = built
    assert read(root, "var/lib/ims-test/post-ran").startswith("ims-test-app 2.1-3 post ran")


def test_delete_and_uninstall_sections(built):
    _, _, root = built
    installed = h.rpm_qa(root)
    assert "ims-test-release" not in installed and not os.path.exists(os.path.join(root, "etc/ims-test-release"))
    assert "ims-test-extra" not in installed and not os.path.exists(os.path.join(root, "usr/share/ims-test-extra"))


def test_config_sh_and_images_sh_ran_in_chroot(built):
    tool, run, root = built
    lines = read(root, "var/lib/ims-test/config-sh-ran").splitlines()
    assert lines[0] == f"ims-test-{tool}|1.2.3|compute,test|0"
    assert "dev-null-ok" in lines and "proc-ok" in lines
    assert read(root, "var/lib/ims-test/images-sh-ran") == "images.sh ran\n"
    assert any("Configure image: [ims-test-" in line for line in run.logs("config.sh"))
    # nothing of the script machinery is left behind
    assert not os.path.exists(os.path.join(root, "image"))
    assert not os.path.exists(os.path.join(root, ".profile"))
    assert not os.path.ismount(os.path.join(root, "proc"))
    assert os.listdir(os.path.join(root, "dev")) == []


def test_overlay_modes_and_symlinks(built):
    _, _, root = built
    assert read(root, "etc/ims-overlay/motd") == "overlay file\n"
    assert os.readlink(os.path.join(root, "etc/ims-overlay/motd.link")) == "motd"
    assert os.stat(os.path.join(root, "usr/local/bin/ims-overlay-tool")).st_mode & 0o7777 == 0o750
    assert os.stat(os.path.join(root, "srv/private")).st_mode & 0o7777 == 0o700


def test_archive_extracted(built):
    _, _, root = built
    path = os.path.join(root, "opt/ims-archive/hello.txt")
    assert read(root, "opt/ims-archive/hello.txt") == "from the archive\n"
    assert os.stat(path).st_mode & 0o777 == 0o640 and os.stat(path).st_uid == 0
    # the bootstrap archive with target_dir
    assert read(root, "srv/archive-target/opt/ims-archive/hello.txt") == "from the archive\n"


def test_image_type_package_sections(built):
    """packages of the primary image type (tbz) are installed, another type's (oem) are not."""
    _, run, root = built
    assert "ims-test-kernel" in h.rpm_qa(root)
    assert any("not building image type(s) oem" in line for line in run.logs())


@pytest.mark.parametrize("tool", TOOLS)
def test_hostile_archive_is_refused(tool):
    import io
    import tarfile
    repo = h.served_repos()["plain"]
    ws = h.Workspace(f"{tool}-hostile-archive")
    recipe = h.make_recipe(os.path.join(ws.step("fetch")["out"], "recipe"), config_sh=None, images_sh=None,
                           overlay=False, archive=False)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo("etc")
        link.type, link.linkname = tarfile.SYMTYPE, "/"
        tar.addfile(link)
        data = b"pwned\n"
        info = tarfile.TarInfo("etc/ims-escape")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with open(os.path.join(recipe, "evil.tar.gz"), "wb") as f:
        f.write(buf.getvalue())
    desc = h.minimal_description(tool, repo.url, archives=[{"name": "evil.tar.gz", "section": "image"}])
    run = h.build_root(tool, desc, ca=repo.ca, recipe=recipe, workspace=ws)
    error = run.error
    assert (error["code"], error["category"]) == ("build-root.archive_unsafe", "user"), run.describe()
    assert "evil.tar.gz" in error["message"] and "etc/ims-escape" in error["message"]
    assert not os.path.exists("/etc/ims-escape")


def test_users_and_groups(built):
    _, _, root = built
    passwd = read(root, "etc/passwd").splitlines()
    group = {line.split(":")[0]: line.split(":") for line in read(root, "etc/group").splitlines()}
    shadow = {line.split(":")[0]: line.split(":") for line in read(root, "etc/shadow").splitlines()}
    ops_gid = group["ops"][2]
    assert f"operator:x:1500:{ops_gid}:Test Operator:/home/operator:/bin/sh" in passwd
    assert "root:x:0:0:root:/root:/bin/bash" in passwd
    assert "operator" in group["wheel"][3].split(",")
    assert shadow["root"][1] == "$1$ims$abcdefghijklmnopqrstu."
    hashed = shadow["operator"][1]
    assert hashed.startswith("$6$")
    salt = hashed.split("$")[2]
    again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input="secret\n",
                           capture_output=True, text=True, check=True).stdout.strip()
    assert again == hashed, "the plain password was not hashed correctly"
    home = os.stat(os.path.join(root, "home/operator"))
    assert (home.st_uid, home.st_mode & 0o777) == (1500, 0o700)
    assert read(root, "etc/locale.conf") == "LANG=en_US.UTF-8\n"


def test_imageinclude_repositories_written_with_the_image_view(built):
    tool, _, root = built
    repo_dir = os.path.join(root, IMAGE_REPO_DIR[tool])
    assert sorted(os.listdir(repo_dir)) == ["base.repo", "image-only.repo"]
    text = read(repo_dir, "base.repo")
    url = h.served_repos()["plain"].url
    assert f"baseurl={url}\n" in text and "priority=10" in text
    assert "ssl_capath" not in text and "sslcacert" not in text, "host-side TLS settings leaked into the image"
    assert "baseurl=https://mirror.example.invalid/updates/" in read(repo_dir, "image-only.repo")


def test_site_ca_in_the_image_trust_store(built):
    tool, _, root = built
    with open(h.served_repos()["plain"].ca) as f:
        ca = f.read().strip()
    assert read(root, os.path.join(ANCHORS[tool], "ims-site-ca.pem")).strip() == ca
    # seeded before the first package: the trust-store package's own %post put it into the bundle
    assert ca in read(root, BUNDLE[tool])


def test_rpmdb_location(built):
    _, run, root = built
    assert os.path.isfile(os.path.join(root, "usr/lib/sysimage/rpm/rpmdb.sqlite"))
    assert not os.path.exists(os.path.join(root, "root/.rpmdb")), "Debian's default ~/.rpmdb was used"
    assert os.path.realpath(os.path.join(root, "var/lib/rpm")) == os.path.join(root, "usr/lib/sysimage/rpm")
    assert any("skipping 'rpmdb --rebuilddb'" in line for line in run.logs())
    assert run.result["facts"]["rpmdb_path"] == "/usr/lib/sysimage/rpm"


def test_tool_output_streamed_as_logs_with_progress(built):
    tool, run, _ = built
    assert any("ims-test-app" in line for line in run.logs(tool)), "no tool output in log messages"
    states = [p["state"] for p in run.of_type("progress") if p["task"] == "build-root"]
    assert states[0] == "begin" and states[-1] == "end" and states.count("report") >= 10
    messages = [p.get("message", "") for p in run.of_type("progress")]
    for stage in ("repositories", "bootstrap", "image", "overlay", "users", "config.sh", "rpmdb"):
        assert any(m.startswith(stage + ":") for m in messages), stage


def test_no_build_machinery_left_in_the_root(built):
    tool, _, root = built
    assert not os.path.exists(os.path.join(root, "tmp", os.path.basename(h.WORK)))
    if tool == "zypper":
        assert os.listdir(os.path.join(root, "var/cache/zypp")) == []
        assert not os.path.exists(os.path.join(root, "run/zypp.pid"))
    else:
        assert os.listdir(os.path.join(root, "var/cache/dnf")) == []


# ------------------------------------------------------------------------------------------
# signed repositories


@pytest.mark.parametrize("tool", TOOLS)
def test_signed_repository_with_the_right_key(tool):
    repo = h.served_repos()["signed"]
    desc = h.minimal_description(tool, repo.url)
    desc["repositories"][0].update(repository_gpgcheck=True, package_gpgcheck=True)
    run = h.build_root(tool, desc, ca=repo.ca, signing_keys=[repo.key], label="signed repo, right key")
    assert run.ok, run.describe()
    root = run.result["outputs"]["rootfs"]["path"]
    keys = subprocess.run(["rpm", "--root", root, "--dbpath", h.RPMDB, "-q", "gpg-pubkey"], capture_output=True,
                          text=True, env={"PATH": h.HOST_PATH, "HOME": "/nonexistent"})
    assert keys.returncode == 0, "the signing key was not imported into the image's rpmdb"
    assert "gpg-pubkey" not in json.dumps([p["name"] for p in
                                           json.load(open(run.result["outputs"]["package_list"]["path"]))])


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("key", ["wrong", "missing"])
def test_signed_repository_with_a_wrong_or_missing_key_fails(tool, key):
    repo = h.served_repos()["signed"]
    desc = h.minimal_description(tool, repo.url)
    desc["repositories"][0].update(repository_gpgcheck=True, package_gpgcheck=True)
    keys = [repo.decoy_key] if key == "wrong" else None
    run = h.build_root(tool, desc, ca=repo.ca, signing_keys=keys)
    error = run.error
    assert (error["code"], error["category"]) == ("build-root.signature_invalid", "config"), run.describe()
    assert "'base'" in error["message"] and repo.url in error["message"]
    assert error["details"]["alias"] == "base"


@pytest.mark.parametrize("tool", TOOLS)
def test_unsigned_repository_with_checks_on_fails(tool):
    repo = h.served_repos()["plain"]
    desc = h.minimal_description(tool, repo.url)
    run = h.build_root(tool, desc, ca=repo.ca, signing_keys=[h.served_repos()["signed"].key])
    assert run.error["code"] == "build-root.signature_invalid", run.describe()


# ------------------------------------------------------------------------------------------
# failures


@pytest.mark.parametrize("tool", TOOLS)
def test_without_the_ca_tls_fails_naming_the_repository(tool):
    repo = h.served_repos()["plain"]
    run = h.build_root(tool, h.minimal_description(tool, repo.url), ca=None, label="no CA (TLS failure)")
    error = run.error
    assert (error["code"], error["category"]) == ("build-root.tls_untrusted", "environment"), run.describe()
    assert error["message"].startswith(f"TLS certificate verification failed for repository 'base' ({repo.url})")
    assert "is the site CA configured?" in error["message"]
    assert error["details"]["url"] == repo.url


@pytest.mark.parametrize("tool", TOOLS)
def test_unknown_package(tool):
    repo = h.served_repos()["plain"]
    desc = h.minimal_description(tool, repo.url)
    desc["repositories"].append(dict(desc["repositories"][0], alias="updates", priority=None))
    desc["packages"]["image"] = ["ims-test-app", "nope"]
    run = h.build_root(tool, desc, ca=repo.ca)
    error = run.error
    assert (error["code"], error["category"]) == ("build-root.package_not_found", "user"), run.describe()
    assert error["message"] == "package 'nope' not found in repositories base, updates"
    assert error["details"]["missing"] == ["nope"] and error["path"] == "/packages/image"


@pytest.mark.parametrize("tool", TOOLS)
def test_unknown_collection(tool):
    repo = h.served_repos()["plain"]
    desc = h.minimal_description(tool, repo.url)
    desc["collections"]["image"] = ["no_such_group"]
    run = h.build_root(tool, desc, ca=repo.ca)
    error = run.error
    assert (error["code"], error["category"]) == ("build-root.collection_not_found", "user"), run.describe()
    assert "'no_such_group'" in error["message"] and "base" in error["message"]


@pytest.mark.parametrize("tool", TOOLS)
def test_repository_down(tool):
    repo = h.served_repos()["plain"]
    url = h.free_port_url()
    desc = h.minimal_description(tool, repo.url)
    desc["repositories"].append(dict(desc["repositories"][0], alias="mirror", source=url))
    run = h.build_root(tool, desc, ca=repo.ca)
    error = run.error
    assert (error["code"], error["category"]) == ("build-root.repository_unreachable", "transient"), run.describe()
    assert f"repository 'mirror' ({url}) is unreachable" in error["message"]
    assert error["details"]["alias"] == "mirror" and error["details"]["url"] == url
    assert error.get("retry_after_seconds", 0) > 0


@pytest.mark.parametrize("tool", TOOLS)
def test_config_sh_failure(tool):
    repo = h.served_repos()["plain"]
    ws = h.Workspace(f"{tool}-config-fail")
    recipe = h.make_recipe(os.path.join(ws.step("fetch")["out"], "recipe"),
                           config_sh="#!/bin/sh\necho 'configuring...'\necho 'something broke' >&2\nexit 3\n",
                           overlay=False, archive=False)
    desc = h.minimal_description(tool, repo.url, config_sh="config.sh")
    run = h.build_root(tool, desc, ca=repo.ca, recipe=recipe, workspace=ws)
    error = run.error
    assert (error["code"], error["category"]) == ("build-root.script_failed", "user"), run.describe()
    assert error["message"].startswith("config.sh exited with status 3")
    assert "something broke" in error["message"]
    assert error["details"]["script"] == "config.sh" and error["details"]["exit_code"] == 3
    assert "something broke" in run.logs("config.sh")
    root = os.path.join(run.workspace["out"], "rootfs")
    assert not os.path.ismount(os.path.join(root, "proc")), "/proc left mounted after the failure"
    assert not os.path.exists(os.path.join(root, "image"))


def test_zypper_signature_and_tls_errors_are_checked_before_packages():
    """A broken repository fails in the repositories stage, before any package is installed."""
    repo = h.served_repos()["plain"]
    run = h.build_root("zypper", h.minimal_description("zypper", repo.url), ca=None)
    stages = [p.get("message", "") for p in run.of_type("progress")]
    assert stages[-1].startswith("repositories:")


@pytest.mark.parametrize("tool", TOOLS)
def test_cancel_stops_the_build_and_cleanup_is_idempotent(tool):
    repo = h.served_repos()["plain"]
    ws = h.Workspace(f"{tool}-cancel")
    fetch = ws.step("fetch")
    recipe = h.make_recipe(os.path.join(fetch["out"], "recipe"), config_sh="#!/bin/sh\nsleep 30\n", overlay=False,
                           archive=False)
    desc = h.minimal_description(tool, repo.url, config_sh="config.sh")
    desc_path = os.path.join(ws.step("prepare")["out"], "description.json")
    with open(desc_path, "w") as f:
        json.dump(desc, f)
    inputs = {"recipe": {"path": recipe, "kind": "dir"}, "description": {"path": desc_path, "kind": "file"}}
    config = {"distro_family": desc["distro_family"], "package_manager": desc["package_manager"],
              "arch": desc["arch"], "ca_bundle": repo.ca}
    run = h.run_plugin(h.BUILDER[tool], "build-root", "build-root/v1", workspace=ws, inputs=inputs, config=config,
                       cancel_after=3.0)
    assert (run.error["code"], run.error["category"]) == ("ims.cancelled", "cancelled"), run.describe()
    assert run.seconds < 20, "the plugin did not stop promptly after the cancel"
    root = os.path.join(run.workspace["out"], "rootfs")
    assert not os.path.ismount(os.path.join(root, "proc"))
    for _ in range(2):
        cleanup = h.run_plugin(h.BUILDER[tool], "build-root", "build-root/v1", workspace=ws, inputs=inputs,
                               config=config, verb="cleanup")
        assert cleanup.ok, cleanup.describe()


@pytest.mark.parametrize("tool", TOOLS)
def test_cleanup_unmounts_what_a_killed_run_left(tool):
    """A run killed with SIGKILL cannot unmount /proc; cleanup does, from the record in state/."""
    repo = h.served_repos()["plain"]
    ws = h.Workspace(f"{tool}-killed")
    step = ws.step("build-root")
    root = os.path.join(step["out"], "rootfs")
    os.makedirs(os.path.join(root, "proc"))
    subprocess.run(["mount", "-t", "proc", "proc", os.path.join(root, "proc")], check=True)
    try:
        with open(os.path.join(step["state"], "ims-rootfs-mounts.json"), "w") as f:
            json.dump({"mounts": [os.path.join(root, "proc")]}, f)
        cleanup = h.run_plugin(h.BUILDER[tool], "build-root", "build-root/v1", workspace=ws, verb="cleanup")
        assert cleanup.ok, cleanup.describe()
        assert not os.path.ismount(os.path.join(root, "proc"))
        assert cleanup.result["metadata"]["unmounted"] == [os.path.join(root, "proc")]
    finally:
        if os.path.ismount(os.path.join(root, "proc")):
            subprocess.run(["umount", "-l", os.path.join(root, "proc")])


FAKE_RPM = """#!/bin/sh
# stands in for the image's own rpm (the test distro has none)
case "$1" in
--version) echo "RPM version 4.18.0" ;;
--eval) echo "$IMS_FAKE_DBPATH" ;;
-qa) printf 'fake-pkg\\t(none)\\t1.0\\t1\\tnoarch\\ngpg-pubkey\\t(none)\\tabc\\tdef\\t(none)\\n' ;;
esac
"""
FAKE_RPMDB = """#!/bin/sh
if [ "$1" = --version ]; then echo "RPM version 4.18.0"; exit 0; fi
echo "$@" > /var/lib/ims-test/rpmdb-args
"""


@pytest.mark.parametrize("native", ["/usr/lib/sysimage/rpm", "/var/lib/rpm"])
def test_rpmdb_rebuilt_with_the_images_own_rpm(native):
    """When the image has rpm, the builder runs 'rpmdb --rebuilddb' in a chroot and lists packages with
    the image's rpm; a database path other than /usr/lib/sysimage/rpm is converted via _dbpath_rebuild."""
    repo = h.served_repos()["plain"]
    ws = h.Workspace("zypper-image-rpm")
    recipe = h.make_recipe(os.path.join(ws.step("fetch")["out"], "recipe"), archive=False, images_sh=None,
                           config_sh="#!/bin/sh\nmkdir -p /var/lib/ims-test\n"
                                     "if [ -L /var/lib/rpm ]; then rm /var/lib/rpm; mkdir /var/lib/rpm; fi\n")
    overlay = os.path.join(recipe, "root", "usr", "bin")
    os.makedirs(overlay, exist_ok=True)
    for name, text in (("rpm", FAKE_RPM.replace("$IMS_FAKE_DBPATH", native)), ("rpmdb", FAKE_RPMDB)):
        with open(os.path.join(overlay, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(overlay, name), 0o755)
    desc = h.minimal_description("zypper", repo.url, config_sh="config.sh", overlay="root")
    run = h.build_root("zypper", desc, ca=repo.ca, recipe=recipe, workspace=ws)
    assert run.ok, run.describe()
    root = run.result["outputs"]["rootfs"]["path"]
    args = read(root, "var/lib/ims-test/rpmdb-args").strip()
    if native == "/usr/lib/sysimage/rpm":
        assert args == "--rebuilddb"
        assert os.path.isfile(os.path.join(root, "usr/lib/sysimage/rpm/rpmdb.sqlite"))
    else:
        assert args == "--rebuilddb --define _dbpath /usr/lib/sysimage/rpm --define _dbpath_rebuild /var/lib/rpm"
        assert not os.path.exists(os.path.join(root, "usr/lib/sysimage/rpm")), "the host-written database was kept"
    assert run.result["facts"] == {"package_count": 1, "rpmdb_path": native}
    with open(run.result["outputs"]["package_list"]["path"]) as f:
        assert json.load(f) == [{"name": "fake-pkg", "epoch": None, "version": "1.0", "release": "1", "arch": "noarch"}]



def test_an_rpm_that_is_not_rpm_is_detected_and_not_used():
    """busybox's rpm applet has the name but not rpmdb --rebuilddb or -qa --qf: the builder asks it for
    --version, refuses it with a warning saying what it answered, and keeps and reads the database with the
    host's rpm, instead of failing the rpm database step."""
    repo = h.served_repos()["plain"]
    ws = h.Workspace("zypper-busybox-rpm")
    recipe = h.make_recipe(os.path.join(ws.step("fetch")["out"], "recipe"), archive=False, images_sh=None, config_sh=None)
    overlay = os.path.join(recipe, "root", "usr", "bin")
    os.makedirs(overlay, exist_ok=True)
    os.symlink("busybox", os.path.join(overlay, "rpm"))
    desc = h.minimal_description("zypper", repo.url, overlay="root")
    run = h.build_root("zypper", desc, ca=repo.ca, recipe=recipe, workspace=ws)
    assert run.ok, run.describe()
    warnings = run.result["metadata"]["warnings"]
    assert any("/usr/bin/rpm is not rpm" in w and "invalid option" in w for w in warnings), warnings
    assert run.result["facts"]["rpmdb_path"] == "/usr/lib/sysimage/rpm"
    with open(run.result["outputs"]["package_list"]["path"]) as f:
        names = {p["name"] for p in json.load(f)}
    assert "ims-test-shell" in names and "ims-test-filesystem" in names


KIWI_CONFIG_SH = """#!/bin/bash
# Sources kiwi's function library and profile as real recipes do, then uses them.
test -f /.kconfig && . /.kconfig
test -f /.profile && . /.profile
mkdir -p /var/lib/ims-test /usr/lib/systemd/system
printf '%s' "$kiwi_displayname" > /var/lib/ims-test/displayname
touch /usr/lib/systemd/system/multi-user.target
baseSetRunlevel 3
ln -sf busybox /usr/bin/mount; ln -sf busybox /usr/bin/umount
baseMount
ims-no-such-tool --flag
echo after > /var/lib/ims-test/after-missing
"""

POST_BOOTSTRAP_SH = """#!/bin/sh
mkdir -p /var/lib/ims-test
if [ -e /usr/bin/ims-test-app ]; then echo image-packages-present; else echo bootstrap-only; fi > /var/lib/ims-test/post-bootstrap
test -f /.kconfig && echo kconfig >> /var/lib/ims-test/post-bootstrap
"""


def kiwi_recipe(ws, config_sh=KIWI_CONFIG_SH):
    recipe = h.make_recipe(os.path.join(ws.step("fetch")["out"], "recipe"), config_sh=config_sh, images_sh=None,
                           overlay=False, archive=False)
    with open(os.path.join(recipe, "post_bootstrap.sh"), "w") as f:
        f.write(POST_BOOTSTRAP_SH)
    os.makedirs(os.path.join(recipe, "files"), exist_ok=True)
    for name, text in (("motd", "from a <file> element\n"), ("tool", "#!/bin/sh\necho tool\n")):
        with open(os.path.join(recipe, "files", name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(recipe, "files", name), 0o644)
    return recipe


def kiwi_description(repo_url, **overrides):
    desc = h.minimal_description("zypper", repo_url, config_sh="config.sh", post_bootstrap_sh="post_bootstrap.sh")
    desc["packages"]["image"] = ["ims-test-app"]
    desc["files"] = [
        {"name": "files/motd", "section": "image", "target": "/etc/motd.d/ims", "owner": "nobody:nobody",
         "permissions": "0640"},
        {"name": "files/tool", "section": "bootstrap", "target": "/usr/local/bin/ims-tool", "permissions": "u+x"},
    ]
    desc["profile"] = {"kiwi_iname": "kiwi-functions", "kiwi_displayname": "Bob's image (\"quoted\") $HOME"}
    desc.update(overrides)
    return desc


@pytest.fixture(scope="module")
def kiwi_functions_build():
    repo = h.served_repos()["plain"]
    ws = h.Workspace("zypper-kiwi-functions")
    run = h.build_root("zypper", kiwi_description(repo.url), ca=repo.ca, recipe=kiwi_recipe(ws), workspace=ws,
                       label="kiwi functions, files, post_bootstrap.sh")
    assert run.ok, run.describe()
    return run


def test_config_sh_gets_kiwis_function_library_and_it_is_removed_afterwards(kiwi_functions_build):
    root = kiwi_functions_build.result["outputs"]["rootfs"]["path"]
    assert os.readlink(os.path.join(root, "etc/systemd/system/default.target")).endswith("/multi-user.target")
    assert not os.path.lexists(os.path.join(root, ".kconfig")), "/.kconfig stays out of the image, as with kiwi"
    assert not os.path.lexists(os.path.join(root, ".profile"))
    assert not any("not found" in line and "baseSetRunlevel" in line for line in kiwi_functions_build.logs("config.sh"))


def test_profile_carries_the_engines_kiwi_variables_quoted(kiwi_functions_build):
    root = kiwi_functions_build.result["outputs"]["rootfs"]["path"]
    assert read(root, "var/lib/ims-test/displayname") == "Bob's image (\"quoted\") $HOME"


def test_a_missing_command_is_a_warning_naming_script_line_and_command(kiwi_functions_build):
    run = kiwi_functions_build
    assert run.result["metadata"]["missing_commands"] == [
        {"script": "config.sh", "line": 11, "command": "ims-no-such-tool"}]
    assert any("config.sh line 11: 'ims-no-such-tool' is not a command in the image" in w
               for w in run.result["metadata"]["warnings"])
    assert any("ims-no-such-tool" in line for line in run.logs()), "the warning is an event too"
    assert read(run.result["outputs"]["rootfs"]["path"], "var/lib/ims-test/after-missing").strip() == "after"


def test_mounts_a_script_leaves_are_released(kiwi_functions_build):
    run = kiwi_functions_build
    root = run.result["outputs"]["rootfs"]["path"]
    assert not [m for m in open("/proc/self/mountinfo").read().split("\n") if f" {root}/" in m]
    assert any("config.sh left /sys, /dev/pts mounted; ims unmounted them" in w or
               "config.sh left /dev/pts, /sys mounted; ims unmounted them" in w
               for w in run.result["metadata"]["warnings"]), run.result["metadata"]["warnings"]


def test_post_bootstrap_sh_runs_after_the_bootstrap_before_the_image_packages(kiwi_functions_build):
    root = kiwi_functions_build.result["outputs"]["rootfs"]["path"]
    assert read(root, "var/lib/ims-test/post-bootstrap").split() == ["bootstrap-only", "kconfig"]
    assert os.path.exists(os.path.join(root, "usr/bin/ims-test-app"))


def test_file_elements_are_copied_with_owner_and_permissions(kiwi_functions_build):
    root = kiwi_functions_build.result["outputs"]["rootfs"]["path"]
    motd = os.path.join(root, "etc/motd.d/ims")
    assert read(root, "etc/motd.d/ims") == "from a <file> element\n"
    info = os.stat(motd)
    nobody = [l.split(":") for l in read(root, "etc/passwd").splitlines() if l.startswith("nobody:")][0]
    assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o640, int(nobody[2]), int(nobody[3]))
    tool = os.stat(os.path.join(root, "usr/local/bin/ims-tool"))
    assert (tool.st_mode & 0o7777, tool.st_uid) == (0o744, 0), "u+x on 0644, owned by root"


def test_strict_scripts_turns_a_missing_command_into_a_failure():
    repo = h.served_repos()["plain"]
    ws = h.Workspace("zypper-strict-scripts")
    recipe = h.make_recipe(os.path.join(ws.step("fetch")["out"], "recipe"), images_sh=None, overlay=False, archive=False,
                           config_sh="#!/bin/sh\necho start\nims-no-such-tool\necho done\n")
    desc = h.minimal_description("zypper", repo.url, config_sh="config.sh")
    run = h.run_plugin(h.BUILDER["zypper"], "build-root", "build-root/v1", workspace=ws,
                       inputs={"recipe": {"path": recipe, "kind": "dir"},
                               "description": {"path": _write_json(ws, desc), "kind": "file"}},
                       config={"distro_family": "suse", "package_manager": "zypper", "arch": desc["arch"],
                               "ca_bundle": repo.ca, "strict_scripts": True})
    error = run.error
    assert error["code"] == "build-root.script_command_missing", run.describe()
    assert error["message"].startswith("config.sh line 3: 'ims-no-such-tool' is not a command in the image")
    assert error["details"]["missing_commands"] == [{"script": "config.sh", "line": 3, "command": "ims-no-such-tool"}]


def _write_json(ws, data):
    path = os.path.join(ws.step("prepare-recipe")["out"], "description.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path


#: The host's policy (selinux-policy-default, installed by scripts/install-deps) stands in for an image's.
HOST_POLICY = "/etc/selinux/default"


def selinux_label(path):
    try:
        return os.getxattr(path, "security.selinux", follow_symlinks=False).rstrip(b"\0").decode()
    except OSError:
        return None


def host_closure(binary):
    """``binary`` and the shared libraries (and loader) ldd lists for it, as host paths."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return [binary] + [p for line in out.splitlines() for p in line.split() if p.startswith("/")]


def selinux_build(label, *, mode="enforcing", with_policy=True, image_setfiles=False):
    repo = h.served_repos()["plain"]
    ws = h.Workspace(f"zypper-selinux-{label}")
    recipe = h.make_recipe(os.path.join(ws.step("fetch")["out"], "recipe"), config_sh=None, images_sh=None,
                           overlay=False, archive=False)
    overlay = os.path.join(recipe, "root")
    os.makedirs(os.path.join(overlay, "etc", "selinux"), exist_ok=True)
    with open(os.path.join(overlay, "etc", "selinux", "config"), "w") as f:
        f.write(f"# test policy\nSELINUX={mode}\nSELINUXTYPE=default\n")
    if with_policy:
        shutil.copytree(HOST_POLICY, os.path.join(overlay, "etc", "selinux", "default"), symlinks=True)
    if image_setfiles:
        for path in host_closure("/usr/sbin/setfiles"):
            target = overlay + path
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(path, target)  # the file itself at the path the loader looks for
    desc = h.minimal_description("zypper", repo.url, overlay="root")
    return h.build_root("zypper", desc, ca=repo.ca, recipe=recipe, workspace=ws)


@pytest.mark.parametrize("image_setfiles", [False, True], ids=["host-setfiles", "image-setfiles"])
def test_an_image_with_a_selinux_policy_is_labelled(image_setfiles):
    run = selinux_build("labelled" + ("-own" if image_setfiles else ""), image_setfiles=image_setfiles)
    assert run.ok, run.describe()
    root = run.result["outputs"]["rootfs"]["path"]
    assert selinux_label(os.path.join(root, "etc/hosts")) == "system_u:object_r:net_conf_t:s0"
    assert selinux_label(os.path.join(root, "usr/bin/busybox")) == "system_u:object_r:bin_t:s0"
    assert selinux_label(os.path.join(root, "etc/shadow")) == "system_u:object_r:shadow_t:s0"
    used = run.result["metadata"]["selinux"]
    assert used["policy"] == "default" and used["mode"] == "enforcing"
    assert ("the image's /usr/sbin/setfiles" if image_setfiles else "the host's setfiles -r") in used["setfiles"]


def test_a_disabled_policy_is_not_applied():
    run = selinux_build("disabled", mode="disabled")
    assert run.ok, run.describe()
    assert selinux_label(os.path.join(run.result["outputs"]["rootfs"]["path"], "etc/hosts")) is None
    assert "selinux" not in run.result["metadata"]


def test_a_configured_policy_that_is_missing_fails_the_build():
    run = selinux_build("missing", with_policy=False)
    error = run.error
    assert error["code"] == "build-root.selinux_failed", run.describe()
    assert "selects the SELinux policy 'default' (SELINUX=enforcing)" in error["message"]
    assert "contexts/files/file_contexts" in error["message"]

"""The config.sh/images.sh function library (/.kconfig), Plugins/lib-rpmbuilder/ims_kconfig.sh.

One real image root is built per module with builder-zypper from the HTTPS test repository
(ims-test-services: units with [Install] sections and stand-in targets; ims-test-product: .prod
files; ims-test-build-key: a key in /usr/lib/rpm/gnupg/keys). Each test works on a copy with the
library installed as /.kconfig and runs functions in a chroot with the image's own shell (busybox
sh), the way the builders run config.sh: device nodes in /dev and /proc mounted.

The test image has neither systemd nor rpm. To exercise the real code paths, tests copy a host
binary and its ldd closure into the copy: Debian's /usr/bin/systemctl (the "systemctl offline in
the chroot" path), /usr/bin/rpm (the "rpm --import into the image's database" path), bash and
dash (the library must work in them as well as in busybox sh). Without systemctl the library
makes the *.wants links itself; a test checks it makes exactly the links systemctl makes.

Run: python3 -m pytest Tests/PluginTests/test_kconfig.py -q -p no:cacheprovider
"""
import glob
import json
import os
import re
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET

import pytest

import rpm_harness as h

LIBRARY = os.path.join(h.PLUGINS, "lib-rpmbuilder", "ims_kconfig.sh")
CORPUS = os.path.join(h.REPO, "Tests", "Fixtures", "kiwi-corpus", "kiwi")
UNITS = "/usr/lib/systemd/system"
ETC_UNITS = "etc/systemd/system"
KEY = "gpg-pubkey-d11ccbea-6b162ed9"


def library_functions():
    """The public functions the library defines (internal helpers are _kc_*)."""
    with open(LIBRARY, encoding="utf-8") as f:
        return sorted(set(re.findall(r"^([A-Za-z][A-Za-z0-9]*)\(\) \{", f.read(), re.M)))


FUNCTIONS = library_functions()


# ------------------------------------------------------------------------------------------
# harness: the root, chroot runs, host binaries, mounts


@pytest.fixture(scope="module")
def base_root():
    repo = h.served_repos()["plain"]
    desc = h.minimal_description("zypper", repo.url)
    desc["packages"]["image"] = ["ims-test-services", "ims-test-product", "ims-test-build-key", "ims-test-app"]
    run = h.build_root("zypper", desc, ca=repo.ca, label="kconfig root")
    assert run.ok, run.describe()
    return run.result["outputs"]["rootfs"]["path"]


def mounts_under(root):
    """Mount points at or below ``root`` (host view), deepest first."""
    root = os.path.realpath(root)
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_all(root):
    for _ in range(3):
        points = mounts_under(root)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", point], capture_output=True)
            if point in mounts_under(root):
                subprocess.run(["umount", "-l", point], capture_output=True)
    assert not mounts_under(root), mounts_under(root)


def make_dev(root):
    """The device nodes the builders create for scripts (ims_rootfs.RootSession.setup_dev)."""
    for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)):
        path = os.path.join(root, "dev", name)
        if not os.path.lexists(path):
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(path, 0o666)


@pytest.fixture
def root(base_root, request):
    """A copy of the built root with /.kconfig and /dev nodes; every mount below it is removed
    at teardown whatever the test did."""
    ws = h.Workspace(f"kconfig-{request.node.name[:40]}")
    path = h.copy_root(base_root, ws, "kconfig")
    shutil.copyfile(LIBRARY, os.path.join(path, ".kconfig"))
    make_dev(path)
    yield path
    unmount_all(path)
    ws.remove()


def run_in(root, script, *, shell="/bin/sh", proc=True, env=None, check=None):
    """Runs ``. /.kconfig; script`` in a chroot of ``root`` with the image's ``shell``, /proc
    mounted like the builders do (unmounted afterwards unless the script did it)."""
    mounted = False
    proc_dir = os.path.join(root, "proc")
    if proc and not os.path.ismount(proc_dir):
        subprocess.run(["mount", "-t", "proc", "proc", proc_dir], check=True)
        mounted = True
    environment = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                   "LANG": "C", "LC_ALL": "C"}
    environment.update(env or {})
    try:
        result = subprocess.run(["chroot", root, shell, "-c", ". /.kconfig\n" + script], capture_output=True,
                                text=True, env=environment, timeout=120)
    finally:
        if mounted and os.path.ismount(proc_dir):
            subprocess.run(["umount", proc_dir], check=True)
    if check is not None:
        assert (result.returncode == 0) == check, (result.returncode, result.stdout, result.stderr)
    return result


def install_host_binary(root, binary, as_path=None):
    """Copies a host binary (to ``as_path`` if given) and its ldd closure (same paths) into ``root``."""
    files = []
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.search(r"(/\S+)\s+\(0x", line)
        if m:
            files.append(m.group(1))
    for source in files:
        for path in {source, os.path.realpath(source)}:
            target = os.path.join(root, path.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.exists(target):
                shutil.copy2(os.path.realpath(path), target)
    target = os.path.join(root, (as_path or binary).lstrip("/"))
    if not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.realpath(binary), target)


def install_systemctl(root):
    install_host_binary(root, "/usr/bin/systemctl")


def install_rpm(root):
    """Debian's rpm, its configuration files, and a macro file pointing it at the image's
    database (/usr/lib/sysimage/rpm, as on SUSE; Debian's default is ~/.rpmdb)."""
    install_host_binary(root, "/usr/bin/rpm")
    install_host_binary(root, "/usr/bin/rpmkeys")  # rpm --import runs rpmkeys (rpmpopt alias)
    for name in ("rpmrc", "macros", os.path.basename(glob.glob("/usr/lib/rpm/rpmpopt-*")[0])):
        target = os.path.join(root, "usr/lib/rpm", name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(f"/usr/lib/rpm/{name}", target)
    os.makedirs(os.path.join(root, "etc/rpm"), exist_ok=True)
    with open(os.path.join(root, "etc/rpm/macros.dbpath"), "w") as f:
        f.write(f"%_dbpath {h.RPMDB}\n")


def install_mount(root):
    """The test image's busybox has mount and umount applets but no links for them."""
    for name in ("mount", "umount"):
        link = os.path.join(root, "usr/bin", name)
        if not os.path.lexists(link):
            os.symlink("busybox", link)


def host_rpm_q(root, name):
    return subprocess.run(["rpm", "--root", root, "--dbpath", h.RPMDB, "-q", name], capture_output=True, text=True,
                          env={"PATH": h.HOST_PATH, "HOME": "/nonexistent"})


def links(root):
    """{path below /etc/systemd/system: link target} of every symlink there."""
    base = os.path.join(root, ETC_UNITS)
    found = {}
    for directory, _, names in os.walk(base):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                found[os.path.relpath(path, base)] = os.readlink(path)
    return found


def write_unit(root, name, install=""):
    path = os.path.join(root, UNITS.lstrip("/"), name)
    with open(path, "w") as f:
        f.write(f"[Unit]\nDescription={name} (test stand-in)\n\n[Service]\nExecStart=/bin/true\n\n{install}")


# ------------------------------------------------------------------------------------------
# the library itself


def test_library_defines_every_function_the_corpus_calls_and_kiwi_documents():
    corpus_calls = set()
    for script in glob.glob(os.path.join(CORPUS, "*", "config.sh")) + glob.glob(os.path.join(CORPUS, "*", "images.sh")):
        with open(script, encoding="utf-8") as f:
            corpus_calls |= set(re.findall(r"\b((?:suse|base)[A-Z][A-Za-z]*)", f.read()))
    documented = {"baseSetRunlevel", "baseStripAndKeep", "baseStripLocales", "baseStripTranslations",
                  "baseStripUnusedLibs", "baseUpdateSysConfig", "baseSystemdServiceInstalled",
                  "baseSysVServiceInstalled", "baseSystemdCall", "baseInsertService", "baseRemoveService",
                  "baseService", "suseInsertService", "suseRemoveService", "suseService", "suseSetupProduct",
                  "baseVagrantSetup", "Debug", "Echo", "Rm", "Rpm", "baseCleanMount", "baseDisableCtrlAltDel",
                  "baseGetPackagesForDeletion", "baseGetProfilesUsed", "baseSetupBoot", "baseSetupBusyBox",
                  "baseSetupInPlaceGITRepository", "baseSetupInPlaceSVNRepository", "baseSetupPlainTextGITRepository",
                  "baseSetupUserPermissions", "baseStripDocs", "baseStripInfos", "baseStripMans", "baseStripRPM",
                  "suseRemovePackagesMarkedForDeletion", "baseStripTools", "suseConfig",
                  "suseActivateDefaultServices", "suseSetupProductInformation", "suseStripPackager",
                  "suseGFXBoot", "suseStripKernel", "suseStripInitrd", "baseSetupOEMPartition",
                  "suseActivateServices", "suseCloneRunlevel", "suseServiceDefaultOn"}
    assert corpus_calls >= {"suseInsertService", "baseSetRunlevel", "baseMount", "suseImportBuildKey"}
    assert not (corpus_calls | documented) - set(FUNCTIONS), sorted((corpus_calls | documented) - set(FUNCTIONS))


@pytest.mark.parametrize("shell", ["bash", "dash", "busybox sh"])
def test_library_sources_silently_under_set_euo_pipefail_in_bash_dash_and_busybox(shell, tmp_path):
    argv = shell.split() + ["-c", "set -eu; (set -o pipefail) 2>/dev/null && set -o pipefail; . " + LIBRARY +
                            "; kiwi_profiles=a,b; baseGetProfilesUsed; Debug hidden; DEBUG=1; Debug shown; "
                            "Echo -n done"]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a,b\n[DEBUG] shown\ndone" and result.stderr == ""


# ------------------------------------------------------------------------------------------
# services


# (function call, links that must exist afterwards) on the units of ims-test-services
ENABLE = [
    ("suseInsertService ims-test-daemon",
     {"multi-user.target.wants/ims-test-daemon.service": f"{UNITS}/ims-test-daemon.service",
      "ims-test-alias.service": f"{UNITS}/ims-test-daemon.service"}),
    ("baseInsertService ims-test-worker.service",
     {"multi-user.target.wants/ims-test-worker.service": f"{UNITS}/ims-test-worker.service",
      "graphical.target.wants/ims-test-worker.service": f"{UNITS}/ims-test-worker.service",
      "ims-test.target.requires/ims-test-worker.service": f"{UNITS}/ims-test-worker.service",
      "sockets.target.wants/ims-test-worker.socket": f"{UNITS}/ims-test-worker.socket"}),
    ("baseService ims-test-worker.socket on",
     {"sockets.target.wants/ims-test-worker.socket": f"{UNITS}/ims-test-worker.socket"}),
    ("suseService ims-test-data on",  # no suffix, no .service: the .mount unit
     {"local-fs.target.wants/ims-test-data.mount": f"{UNITS}/ims-test-data.mount"}),
]


@pytest.mark.parametrize("with_systemctl", [False, True], ids=["links-without-systemctl", "systemctl-offline"])
@pytest.mark.parametrize("call,expected", ENABLE, ids=[c for c, _ in ENABLE])
def test_insert_service_creates_the_install_section_links(root, call, expected, with_systemctl):
    if with_systemctl:
        install_systemctl(root)
    run_in(root, call, check=True)
    assert links(root) == expected


def test_links_without_systemctl_are_exactly_the_links_systemctl_makes(root, tmp_path):
    calls = "; ".join(c for c, _ in ENABLE)
    run_in(root, calls, check=True)
    without = links(root)
    other = os.path.join(str(tmp_path), "other")
    subprocess.run(["cp", "-a", root, other], check=True)
    try:
        shutil.rmtree(os.path.join(other, ETC_UNITS), ignore_errors=True)
        install_systemctl(other)
        run_in(other, calls, check=True)
        assert links(other) == without
    finally:
        unmount_all(other)


@pytest.mark.parametrize("with_systemctl", [False, True], ids=["links-without-systemctl", "systemctl-offline"])
@pytest.mark.parametrize("remove", ["suseRemoveService ims-test-worker", "baseRemoveService ims-test-worker.service",
                                    "baseService ims-test-worker off", "suseService ims-test-worker off"])
def test_remove_service_removes_every_link_of_the_unit(root, remove, with_systemctl):
    if with_systemctl:
        install_systemctl(root)
    run_in(root, "baseInsertService ims-test-worker; baseInsertService ims-test-daemon", check=True)
    run_in(root, remove, check=True)
    remaining = links(root)
    assert not [p for p in remaining if p.endswith("/ims-test-worker.service")], remaining
    # Also= is followed on disable too (systemctl does), the daemon stays enabled
    assert "multi-user.target.wants/ims-test-daemon.service" in remaining
    assert "sockets.target.wants/ims-test-worker.socket" not in remaining


@pytest.mark.parametrize("with_systemctl", [False, True], ids=["links-without-systemctl", "systemctl-offline"])
def test_insert_unknown_service_fails_with_a_message_naming_function_and_service(root, with_systemctl):
    if with_systemctl:
        install_systemctl(root)
    result = run_in(root, "suseInsertService no-such-daemon", check=False)
    assert "suseInsertService: no systemd unit or SysV init script named 'no-such-daemon'" in result.stderr
    assert links(root) == {}


def test_remove_unknown_service_is_a_note_not_a_failure(root):
    result = run_in(root, "baseRemoveService no-such-daemon", check=True)
    assert "baseRemoveService: no systemd unit or SysV init script named 'no-such-daemon'" in result.stderr


def test_static_unit_cannot_be_enabled_and_says_so(root):
    result = run_in(root, "baseInsertService ims-test-static", check=True)
    assert "ims-test-static.service has no [Install] section" in result.stderr
    assert links(root) == {}


def test_sysv_script_without_a_tool_to_enable_it_fails_with_a_message(root):
    os.makedirs(os.path.join(root, "etc/init.d"), exist_ok=True)
    script = os.path.join(root, "etc/init.d/ims-legacy")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(script, 0o755)
    result = run_in(root, "suseInsertService ims-legacy", check=False)
    assert "SysV init script and the image has none of systemctl, chkconfig, insserv, update-rc.d" in result.stderr


def test_suse_activate_default_services_enables_network_and_cron_and_reports_missing_ones(root):
    write_unit(root, "cron.service", "[Install]\nWantedBy=multi-user.target\n")
    result = run_in(root, "suseActivateDefaultServices", check=True)
    assert links(root) == {"multi-user.target.wants/cron.service": f"{UNITS}/cron.service"}
    assert "suseActivateDefaultServices: default service 'network' is not installed; skipped" in result.stderr


def test_systemd_service_installed_and_systemd_call(root):
    result = run_in(root, "baseSystemdServiceInstalled ims-test-daemon; baseSysVServiceInstalled ims-test-daemon; "
                          "echo end", check=True)
    assert result.stdout == f"{UNITS}/ims-test-daemon.service\nend\n"
    result = run_in(root, "baseSystemdCall ims-test-daemon enable", check=False)
    assert "baseSystemdCall: the image has no systemctl" in result.stderr
    install_systemctl(root)
    run_in(root, "baseSystemdCall ims-test-daemon enable", check=True)
    assert "multi-user.target.wants/ims-test-daemon.service" in links(root)


# ------------------------------------------------------------------------------------------
# default target


RUNLEVELS = [("1", "rescue.target"), ("3", "multi-user.target"), ("5", "graphical.target"),
             ("multi-user.target", "multi-user.target")]


@pytest.mark.parametrize("with_systemctl", [False, True], ids=["link-without-systemctl", "systemctl-set-default"])
@pytest.mark.parametrize("value,target", RUNLEVELS)
def test_set_runlevel_links_default_target(root, value, target, with_systemctl):
    if with_systemctl:
        install_systemctl(root)
    run_in(root, f"baseSetRunlevel {value}", check=True)
    assert os.readlink(os.path.join(root, ETC_UNITS, "default.target")) == f"{UNITS}/{target}"


@pytest.mark.parametrize("value,message", [("0", "would power off or reboot"), ("6", "would power off or reboot"),
                                           ("x", "usage: baseSetRunlevel"),
                                           ("emergency.target", "no systemd unit emergency.target")])
def test_set_runlevel_refuses_what_it_cannot_set(root, value, message):
    result = run_in(root, f"baseSetRunlevel {value}", check=False)
    assert f"baseSetRunlevel: " in result.stderr and message in result.stderr
    assert not os.path.lexists(os.path.join(root, ETC_UNITS, "default.target"))


# ------------------------------------------------------------------------------------------
# product


def test_setup_product_links_baseproduct_to_the_os_release_product_not_the_addon(root):
    # the add-on is the newer file: the os-release rule (ID=ims-test) must win over "newest"
    os.utime(os.path.join(root, "etc/products.d/ims-test-addon.prod"), (2_000_000_000, 2_000_000_000))
    run_in(root, "suseSetupProduct", check=True)
    assert os.readlink(os.path.join(root, "etc/products.d/baseproduct")) == "ims-test.prod"


def test_setup_product_prefers_suse_brand(root):
    with open(os.path.join(root, "etc/SuSE-brand"), "w") as f:
        f.write("IMS-TEST-ADDON\nVERSION = 1.0\n")
    run_in(root, "suseSetupProduct", check=True)
    assert os.readlink(os.path.join(root, "etc/products.d/baseproduct")) == "ims-test-addon.prod"


def test_setup_product_falls_back_to_the_newest_prod_file(root):
    os.rename(os.path.join(root, "etc/products.d/ims-test.prod"), os.path.join(root, "etc/products.d/Other.prod"))
    os.utime(os.path.join(root, "etc/products.d/Other.prod"), (2_000_000_000, 2_000_000_000))
    run_in(root, "suseSetupProduct", check=True)
    assert os.readlink(os.path.join(root, "etc/products.d/baseproduct")) == "Other.prod"


def test_setup_product_without_products_fails_with_a_message(root):
    shutil.rmtree(os.path.join(root, "etc/products.d"))
    result = run_in(root, "suseSetupProduct", check=False)
    assert "suseSetupProduct: the image has no /etc/products.d" in result.stderr


# ------------------------------------------------------------------------------------------
# build keys


def test_import_build_key_imports_the_key_into_the_images_rpm_database(root):
    install_rpm(root)
    assert host_rpm_q(root, KEY).returncode != 0
    result = run_in(root, "suseImportBuildKey", check=True)
    assert f"imported {KEY}.asc" in result.stdout
    assert host_rpm_q(root, KEY).stdout.strip() == KEY
    again = run_in(root, "suseImportBuildKey", check=True)
    assert "already in the rpm database" in again.stdout


def test_import_build_key_without_rpm_fails_with_a_message(root):
    result = run_in(root, "suseImportBuildKey", check=False)
    assert "suseImportBuildKey: the image has no rpm" in result.stderr


def test_import_build_key_with_busybox_rpm_applet_says_it_is_not_rpm(root):
    os.symlink("busybox", os.path.join(root, "usr/bin/rpm"))
    result = run_in(root, "suseImportBuildKey", check=False)
    assert "suseImportBuildKey: the image's rpm (/usr/bin/rpm) is not RPM" in result.stderr


def test_strip_rpm_removes_installed_delete_packages_and_skips_missing_ones(root):
    install_rpm(root)
    result = run_in(root, "baseStripRPM", env={"kiwi_delete": "ims-test-app not-installed"}, check=True)
    assert host_rpm_q(root, "ims-test-app").returncode != 0
    assert not os.path.exists(os.path.join(root, "usr/bin/ims-test-app"))
    assert "baseStripRPM: package 'not-installed' is not installed; skipped" in result.stderr


# ------------------------------------------------------------------------------------------
# mounts


@pytest.mark.parametrize("proc_already", [False, True], ids=["nothing-mounted", "proc-mounted-by-builder"])
def test_base_mount_mounts_proc_sys_devpts_and_clean_mount_removes_them(root, proc_already):
    install_mount(root)
    real = os.path.realpath(root)
    if proc_already:  # config.sh runs with /proc mounted by the builder: not mounted a second time
        subprocess.run(["mount", "-t", "proc", "proc", os.path.join(root, "proc")], check=True)
    result = run_in(root, "baseMount", proc=False, check=True)
    assert result.stderr == ""
    expected = {f"{real}/proc", f"{real}/sys", f"{real}/dev/pts"}
    assert sorted(mounts_under(root)) == sorted(expected)
    fstypes = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] in expected:
                fstypes[fields[4]] = fields[fields.index("-") + 1]
    assert fstypes == {f"{real}/proc": "proc", f"{real}/sys": "sysfs", f"{real}/dev/pts": "devpts"}
    run_in(root, "baseMount", proc=False, check=True)  # idempotent: nothing mounted twice
    assert sorted(mounts_under(root)) == sorted(expected)
    run_in(root, "baseCleanMount", proc=False, check=True)
    assert mounts_under(root) == []


def test_base_mount_without_mount_command_fails_with_a_message(root):
    result = run_in(root, "baseMount", proc=False, check=False)
    assert "baseMount: the image has no mount command" in result.stderr
    assert mounts_under(root) == []


# ------------------------------------------------------------------------------------------
# the other functions


def test_setup_build_day_writes_build_day(root):
    run_in(root, "baseSetupBuildDay", env={"SOURCE_DATE_EPOCH": "1700000000"}, check=True)
    with open(os.path.join(root, "build_day")) as f:
        assert f.read() == "build_day=20231114\n"


def test_update_sysconfig_replaces_or_appends_and_refuses_missing_files(root):
    os.makedirs(os.path.join(root, "etc/sysconfig"), exist_ok=True)
    with open(os.path.join(root, "etc/sysconfig/kernel"), "w") as f:
        f.write('# comment\nINITRD_MODULES=""\nOTHER="x"\n')
    run_in(root, 'baseUpdateSysConfig /etc/sysconfig/kernel INITRD_MODULES "xenblk ext4"; '
                 'baseUpdateSysConfig /etc/sysconfig/kernel NEW \'a"b$c\'', check=True)
    with open(os.path.join(root, "etc/sysconfig/kernel")) as f:
        assert f.read() == '# comment\nINITRD_MODULES="xenblk ext4"\nOTHER="x"\nNEW="a\\"b\\$c"\n'
    result = run_in(root, "baseUpdateSysConfig /etc/sysconfig/nope X 1", check=False)
    assert "baseUpdateSysConfig: /etc/sysconfig/nope does not exist" in result.stderr


def test_suse_config_writes_keytable_language_timezone(root):
    os.makedirs(os.path.join(root, "usr/share/zoneinfo/Europe"))
    open(os.path.join(root, "usr/share/zoneinfo/Europe/Berlin"), "w").close()
    os.makedirs(os.path.join(root, "etc/sysconfig"), exist_ok=True)
    with open(os.path.join(root, "etc/sysconfig/clock"), "w") as f:
        f.write('TIMEZONE=""\n')
    run_in(root, "suseConfig", env={"kiwi_keytable": "de-nodeadkeys", "kiwi_language": "de_DE,en_US",
                                    "kiwi_timezone": "Europe/Berlin"}, check=True)
    read = lambda p: open(os.path.join(root, p)).read()  # noqa: E731
    assert read("etc/vconsole.conf") == 'KEYMAP="de-nodeadkeys"\n'
    assert read("etc/locale.conf") == 'LANG="de_DE.UTF-8"\n'
    assert read("etc/sysconfig/clock") == 'TIMEZONE="Europe/Berlin"\n'
    assert os.readlink(os.path.join(root, "etc/localtime")) == "/usr/share/zoneinfo/Europe/Berlin"
    result = run_in(root, "suseConfig", env={"kiwi_timezone": "Mars/Olympus"}, check=False)
    assert "suseConfig: no /usr/share/zoneinfo/Mars/Olympus" in result.stderr


def test_strip_docs_mans_infos_translations_and_locales_keep_what_is_named(root):
    def touch(path):
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        open(full, "w").close()
    for path in ("usr/share/doc/packages/bash/README", "usr/share/doc/packages/vim/README", "usr/share/doc/zsh/x",
                 "usr/share/man/man1/less.1.gz", "usr/share/man/man1/more.1.gz", "usr/share/man/man1/vi.1.gz",
                 "usr/share/info/bash.info.gz", "usr/share/info/grep.info.gz",
                 "usr/share/locale/de/LC_MESSAGES/x.mo", "usr/share/locale/de_AT/LC_MESSAGES/x.mo",
                 "usr/share/locale/fr/LC_MESSAGES/x.mo", "usr/lib/locale/en_US.utf8/LC_CTYPE",
                 "usr/lib/locale/de_DE.utf8/LC_CTYPE", "usr/lib/locale/C.utf8/LC_CTYPE"):
        touch(path)
    run_in(root, "baseStripDocs bash; baseStripMans more less; baseStripInfos bash; baseStripTranslations de; "
                 "baseStripLocales en_US", check=True)
    exists = lambda p: os.path.exists(os.path.join(root, p))  # noqa: E731
    assert exists("usr/share/doc/packages/bash/README") and not exists("usr/share/doc/packages/vim")
    assert not exists("usr/share/doc/zsh")
    assert exists("usr/share/man/man1/less.1.gz") and exists("usr/share/man/man1/more.1.gz")
    assert not exists("usr/share/man/man1/vi.1.gz")
    assert exists("usr/share/info/bash.info.gz") and not exists("usr/share/info/grep.info.gz")
    assert exists("usr/share/locale/de/LC_MESSAGES/x.mo") and exists("usr/share/locale/de_AT/LC_MESSAGES/x.mo")
    assert not exists("usr/share/locale/fr/LC_MESSAGES/x.mo")
    assert exists("usr/lib/locale/en_US.utf8") and exists("usr/lib/locale/C.utf8")
    assert not exists("usr/lib/locale/de_DE.utf8")


def test_strip_kernel_keeps_the_drivers_listed_in_kiwi_drivers(root):
    kernel = os.path.join(root, "lib/modules/6.1.0-ims/kernel")
    for rel in ("drivers/virtio/virtio_ring.ko", "drivers/net/e1000.ko.xz", "fs/squashfs/squashfs.ko"):
        os.makedirs(os.path.dirname(os.path.join(kernel, rel)), exist_ok=True)
        open(os.path.join(kernel, rel), "w").close()
    os.makedirs(os.path.join(root, "drivers/virtio"))  # a pattern must not glob against the cwd
    run_in(root, "cd /; suseStripKernel", env={"kiwi_drivers": "drivers/virtio/*,fs/squashfs/squashfs.ko"},
           check=True)
    assert os.path.exists(os.path.join(kernel, "drivers/virtio/virtio_ring.ko"))
    assert os.path.exists(os.path.join(kernel, "fs/squashfs/squashfs.ko"))
    assert not os.path.exists(os.path.join(kernel, "drivers/net/e1000.ko.xz"))
    result = run_in(root, "suseStripKernel", check=False)
    assert "suseStripKernel: kiwi_drivers is empty" in result.stderr
    assert os.path.exists(os.path.join(kernel, "fs/squashfs/squashfs.ko"))


def test_user_permissions_chowns_homes_under_home_only(root):
    with open(os.path.join(root, "etc/passwd"), "a") as f:
        f.write("alice:x:1500:100::/home/alice:/bin/sh\nbin:x:1:1::/bin:/bin/false\n")
    os.makedirs(os.path.join(root, "home/alice/.ssh"))
    run_in(root, "baseSetupUserPermissions", check=True)
    st = os.stat(os.path.join(root, "home/alice/.ssh"))
    assert (st.st_uid, st.st_gid) == (1500, 100)
    assert os.stat(os.path.join(root, "bin")).st_uid == 0


def test_profile_and_deletion_getters(root):
    result = run_in(root, "baseGetProfilesUsed; baseGetPackagesForDeletion",
                    env={"kiwi_profiles": "compute,test", "kiwi_delete": "a b"}, check=True)
    assert result.stdout == "compute,test\na b\n"


@pytest.mark.parametrize("function", ["suseGFXBoot", "baseSetupOEMPartition", "baseSetupBoot",
                                      "baseSetupInPlaceSVNRepository", "suseSetupProductInformation",
                                      "baseStripUnusedLibs", "baseSetupInPlaceGITRepository"])
def test_unsupported_functions_fail_with_a_message_naming_them(root, function):
    result = run_in(root, function, check=False)
    assert result.returncode != 0 and result.stderr.startswith(f"{function}: "), result.stderr


@pytest.mark.parametrize("shell", ["/bin/sh", "/usr/bin/bash-host", "/usr/bin/dash"])
def test_functions_work_in_busybox_bash_and_dash_under_set_e(root, shell):
    if shell == "/usr/bin/bash-host":
        install_host_binary(root, "/usr/bin/bash", shell)  # the image's bash is busybox: the host's bash
    elif shell == "/usr/bin/dash":
        install_host_binary(root, "/usr/bin/dash")
    script = ("set -eu\nbaseRemoveService no-such\nsuseInsertService ims-test-daemon\nbaseSetRunlevel 3\n"
              "suseSetupProduct\necho reached-end\n")
    result = run_in(root, script, shell=shell, check=True)
    assert result.stdout.endswith("reached-end\n")
    assert "multi-user.target.wants/ims-test-daemon.service" in links(root)
    assert os.readlink(os.path.join(root, ETC_UNITS, "default.target")) == f"{UNITS}/multi-user.target"


# ------------------------------------------------------------------------------------------
# the unmodified config.sh and images.sh of every corpus description
#
# Each script runs like the builders run it: copied to /image/<script>, /.profile with the
# kiwi_* variables of its description, /proc mounted, "chroot ROOT /bin/bash /image/<script>"
# (the test image's /bin/bash is busybox sh). What this proves is the library part: no kiwi
# function is "not found", and the effect of each kiwi function the script calls unconditionally
# is checked in the root afterwards. The scripts also call distribution tools the test image does
# not have (zypper, dracut, systemctl, ...): those are "not found" and, in scripts with "set -e",
# end the script early; MISSING records exactly which non-kiwi commands each script lacks, so a
# change in what the test covers shows up as a failure here. The exit status of the scripts is
# therefore not asserted (it reflects the missing distribution tools, not the library).

# services the corpus scripts name, as stand-in units (WantedBy=multi-user.target); the ones in
# PRE_ENABLED are enabled before the script runs so that a Remove call has something to remove
CORPUS_SERVICES = ["sshd", "grub_config", "ldmsd-bootstrap", "dracut_hostonly", "NetworkManager",
                   "NetworkManager-wait-online"]
PRE_ENABLED = ["grub_config", "NetworkManager", "NetworkManager-wait-online"]
# kernel modules for suseStripKernel (kd-netboot-suse-sles15 lists drivers/virtio/* among others)
MODULES = ["drivers/virtio/virtio_ring.ko", "drivers/ata/libata.ko", "sound/core/snd.ko"]

# script -> the non-kiwi commands the test image lacks, as the shell reports them ("not found").
# A script with "set -e" stops at the first one; the others run to their end.
MISSING = {
    # set -euxo pipefail: stops at "dnf config-manager" (line 19), before any other command
    "almalinux-10/config.sh": ["dnf"],
    "almalinux-9/config.sh": ["dnf"],
    # no kiwi functions; also stops at a bash array (busybox sh: 'syntax error: unexpected "("')
    "cray-centos75-barebones/images.sh": ["package-cleanup"],
    # "[[ ${kiwi_type} =~ oem|vmx ]]": busybox sh has no =~ and parses "|vmx ]]" as a pipe into a
    # command "vmx"; the condition is false, so the else branch (suseRemoveService grub_config)
    # runs. Every kiwi function of these scripts runs. (sed: /etc/vimrc and cp /boot/vmlinuz* fail:
    # files the test image does not have, not missing commands.)
    "cray-sles12sp3-barebones/config.sh": ["vmx"],
    "cray-sles15-barebones/config.sh": ["vmx"],
    "cray-sles15sp1-barebones/config.sh": ["vmx"],
    "cray-sles15sp2-barebones-template/config.sh": ["vmx"],
    "cray-sles15sp5-barebones-template/config.sh": ["vmx"],
    # set -ex, no kiwi functions: "systemctl enable ..." directly (the corpus root has no systemctl,
    # so the library's links path is what the other scripts exercise)
    "kiwi-bt-debian-live-disk/config.sh": ["systemctl"],
    "kiwi-bt-fedora-live-disk/config.sh": ["systemctl"],
    "kiwi-bt-rawhide-dnf5/config.sh": ["systemctl"],
    "kiwi-bt-tumbleweed-pxe/config.sh": ["systemctl"],
}
# The other images.sh of the Cray descriptions call no kiwi function: they query "rpm -q
# kernel-default" (busybox's rpm applet answers) and exit 1 because the test image has no kernel
# modules to build an initrd for; bash-only syntax (arrays, <<<) is a busybox sh syntax error there.

CORPUS_SCRIPTS = sorted(os.path.relpath(p, CORPUS) for p in glob.glob(os.path.join(CORPUS, "*", "config.sh")) +
                        glob.glob(os.path.join(CORPUS, "*", "images.sh")))


def corpus_description(name):
    with open(os.path.join(CORPUS, "facts.json"), encoding="utf-8") as f:
        facts = {entry["id"]: entry for entry in json.load(f)}
    return os.path.join(CORPUS, facts[name]["file"]) if name in facts else os.path.join(CORPUS, name, "config.xml")


def kiwi_profile(name):
    """The kiwi_* variables kiwi would write to /.profile for the default build of ``name``."""
    tree = ET.parse(corpus_description(name)).getroot()
    def text(path):
        node = tree.find(path)
        return node.text.strip() if node is not None and node.text else ""
    types = tree.findall("./preferences/type")
    primary = next((t for t in types if t.get("primary") == "true"), types[0] if types else None)
    values = {"kiwi_iname": tree.get("name", ""), "kiwi_iversion": text("./preferences/version"),
              "kiwi_profiles": "", "kiwi_type": primary.get("image", "") if primary is not None else "",
              "kiwi_keytable": text("./preferences/keytable"), "kiwi_language": text("./preferences/locale"),
              "kiwi_timezone": text("./preferences/timezone"),
              "kiwi_drivers": ",".join(f.get("name") for f in tree.findall("./drivers/file")),
              "kiwi_delete": " ".join(p.get("name") for s in tree.findall("./packages[@type='delete']")
                                      for p in s.findall("package"))}
    return {k: v.replace("'", "") for k, v in values.items()}


@pytest.fixture(scope="module")
def corpus_root(base_root):
    """The test root plus what the corpus scripts' kiwi functions act on: stand-in units, a real
    rpm, mount/umount, kernel modules, /usr/include (for suseStripInitrd)."""
    ws = h.Workspace("kconfig-corpus")
    path = h.copy_root(base_root, ws, "corpus")
    shutil.copyfile(LIBRARY, os.path.join(path, ".kconfig"))
    make_dev(path)
    install_rpm(path)
    install_mount(path)
    for service in CORPUS_SERVICES:
        write_unit(path, f"{service}.service", "[Install]\nWantedBy=multi-user.target\n")
    wants = os.path.join(path, ETC_UNITS, "multi-user.target.wants")
    os.makedirs(wants)
    for service in PRE_ENABLED:
        os.symlink(f"{UNITS}/{service}.service", os.path.join(wants, f"{service}.service"))
    for module in MODULES:
        target = os.path.join(path, "lib/modules/6.1.0-ims/kernel", module)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "w").close()
    os.makedirs(os.path.join(path, "usr/include/ims"))
    yield path
    unmount_all(path)
    ws.remove()


def top_level_calls(text):
    """(function, argument) of kiwi function calls at the start of a line (not inside if/else)."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^((?:suse|base)[A-Z][A-Za-z]*)(?:[ \t]+(\S+))?[ \t]*$",
                                                          text, re.M)]


@pytest.mark.parametrize("script", CORPUS_SCRIPTS)
def test_corpus_script_runs_every_kiwi_function_with_its_effect(corpus_root, script, tmp_path):
    name, label = script.split("/")
    with open(os.path.join(CORPUS, script), encoding="utf-8") as f:
        text = f.read()
    root = os.path.join(str(tmp_path), "root")
    subprocess.run(["cp", "-a", corpus_root, root], check=True)
    try:
        profile = kiwi_profile(name)
        for target in (os.path.join(root, ".profile"), os.path.join(root, "image", ".profile")):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as f:
                f.write("".join(f"{k}='{v}'\n" for k, v in profile.items()))
        shutil.copyfile(os.path.join(CORPUS, script), os.path.join(root, "image", label))
        os.chmod(os.path.join(root, "image", label), 0o755)
        for zone in {profile["kiwi_timezone"]} - {""}:  # timezone data, as a timezone package would ship
            os.makedirs(os.path.dirname(os.path.join(root, "usr/share/zoneinfo", zone)), exist_ok=True)
            open(os.path.join(root, "usr/share/zoneinfo", zone), "w").close()
        subprocess.run(["mount", "-t", "proc", "proc", os.path.join(root, "proc")], check=True)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C",
               "LC_ALL": "C", **profile}
        result = subprocess.run(["chroot", root, "/bin/bash", f"/image/{label}"], capture_output=True, text=True,
                                env=env, timeout=120)
        output = result.stdout + result.stderr
        left_mounted = [p[len(os.path.realpath(root)):] for p in mounts_under(root)]
        unmount_all(root)

        not_found = sorted({m.group(1) for m in re.finditer(r": (?:line \d+: )?(\S+): not found", output)})
        assert not set(not_found) & set(FUNCTIONS), f"kiwi functions not found: {output}"
        assert not_found == MISSING.get(script, []), (not_found, output[-3000:])

        called = top_level_calls(text)
        functions = {f for f, _ in called}
        for function, argument in called:
            if function in ("suseInsertService", "baseInsertService"):
                assert os.path.islink(os.path.join(root, ETC_UNITS, f"multi-user.target.wants/{argument}.service")), \
                    (function, argument, output)
            elif function in ("suseRemoveService", "baseRemoveService"):
                assert not os.path.lexists(os.path.join(root, ETC_UNITS, f"multi-user.target.wants/{argument}.service"))
            elif function == "baseSetRunlevel":
                assert argument == "3"
                assert os.readlink(os.path.join(root, ETC_UNITS, "default.target")) == f"{UNITS}/multi-user.target"
            elif function == "suseSetupProduct":
                assert os.readlink(os.path.join(root, "etc/products.d/baseproduct")) == "ims-test.prod"
            elif function == "suseImportBuildKey":
                assert host_rpm_q(root, KEY).returncode == 0, output
            elif function == "baseSetupBuildDay":
                assert open(os.path.join(root, "build_day")).read().startswith("build_day=")
            elif function == "suseStripKernel":
                kernel = os.path.join(root, "lib/modules/6.1.0-ims/kernel")
                assert os.path.exists(os.path.join(kernel, "drivers/virtio/virtio_ring.ko"))
                assert os.path.exists(os.path.join(kernel, "drivers/ata/libata.ko"))
                assert not os.path.exists(os.path.join(kernel, "sound/core/snd.ko"))
            elif function == "suseStripInitrd":
                assert not os.path.exists(os.path.join(root, "usr/include"))
            elif function == "suseConfig":
                if profile["kiwi_keytable"]:
                    assert f'KEYMAP="{profile["kiwi_keytable"]}"' in open(os.path.join(root, "etc/vconsole.conf")).read()
                if profile["kiwi_timezone"]:
                    assert os.readlink(os.path.join(root, "etc/localtime")).endswith(profile["kiwi_timezone"])
            elif function == "suseRemoveYaST":
                assert "suseRemoveYaST: no YaST packages installed" in output
            elif function in ("baseMount", "baseCleanMount"):
                pass  # below
            else:
                pytest.fail(f"no effect check for {function}")
        if "baseMount" in functions and "baseCleanMount" in functions:
            assert "/sys" not in left_mounted and "/dev/pts" not in left_mounted, left_mounted
            assert "baseMount: " not in output and "baseCleanMount: " not in output, output
        # every kiwi function message the library printed names a function the script called
        for line in output.splitlines():
            m = re.match(r"^((?:suse|base)[A-Z][A-Za-z]*): ", line)
            if m and not line.startswith("suseSetupProduct: /etc/products.d/baseproduct ->") \
                    and not line.startswith("suseImportBuildKey: imported") \
                    and not line.startswith("suseRemoveYaST: no YaST") \
                    and not line.startswith("suseStripKernel: removed") \
                    and not line.startswith("suseStripInitrd: ims removes"):
                pytest.fail(f"unexpected library message: {line}\n{output[-3000:]}")
    finally:
        unmount_all(root)

"""sbom-rpm (org.ims.sbom.rpm): the SPDX 2.3 SBOM of an image root, driven over the protocol.

The root is made here with the host's rpm: four packages of the shared HTTPS test repository (rpm_harness), six
small packages built here (an epoch, vendors, licenses of every kind, a name and a version purl must encode) into
a repository of their own, served over HTTPS under a host name (the plugin runs in a mount namespace whose
/etc/hosts names 127.0.0.1 so, since SPDX tools accept a download location only with a DNS name), with a copy of
it read through a file:// URL (zstd metadata), and one package that no repository has. Every document the plugin
writes must pass the SPDX validator of PyPI's spdx-tools (``pyspdxtools -i FILE``), which must be installed:

    python3 -m pip install --break-system-packages spdx-tools==0.8.5

Run: python3 -m pytest Tests/PluginTests/test_sbom_rpm.py -q -p no:cacheprovider   (as root, scripts/install-deps done)
"""
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

import rpm_harness as h

HOSTNAME = "repo.ims-sbom-test.example"
EPOCH = 1700000000
CREATED = "2023-11-14T22:13:20Z"
SPDX_TOOLS = "spdx-tools==0.8.5"
RPM_ENV = {"PATH": h.HOST_PATH, "HOME": "/nonexistent", "LANG": "C.UTF-8"}

#: name -> (spec header lines, in a repository)
PACKAGES = {
    "ims-sbom-epoch": ("Epoch: 3\nVersion: 2.0\nRelease: 1\nLicense: MIT AND (Apache-2.0 OR BSD-3-Clause)\n"
                       "Vendor: Example Corp <https://example.invalid/>\n", True),
    "ims-sbom-with": ("Version: 1.0\nRelease: 2\nLicense: GPL-2.0-or-later WITH Classpath-exception-2.0\n"
                      "Vendor: SUSE LLC <https://www.suse.com/>\n", True),
    "ims-sbom-legacy": ("Version: 0.9\nRelease: 7\nLicense: GPLv2+\n", True),
    "ims-sbom-ref": ("Version: 1.1\nRelease: 1\nLicense: LicenseRef-Fedora-Public-Domain\n", True),
    "ims-sbom-lower": ("Version: 3.0\nRelease: 1\nLicense: mit and gpl-2.0+\n", True),
    "ims-sbom-c++": ("Version: 1.0~rc1\nRelease: 1\nLicense: Zlib\n", True),
    "ims-sbom-local": ("Version: 1.0\nRelease: 1\nLicense: MIT\n", False),
}
PLAIN_PACKAGES = ["ims-test-filesystem-1.0-1.noarch.rpm", "ims-test-lib-1.0-1.noarch.rpm",
                  "ims-test-app-2.1-3.noarch.rpm", f"ims-test-shell-1.35.0-1.{os.uname().machine}.rpm"]


# ------------------------------------------------------------------------------------------
# The SPDX validator


def pyspdxtools() -> str:
    for candidate in (os.path.join(os.path.dirname(sys.executable), "pyspdxtools"), shutil.which("pyspdxtools")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(f"the SPDX validator pyspdxtools is not installed (PyPI package {SPDX_TOOLS}): run "
                f"'python3 -m pip install --break-system-packages {SPDX_TOOLS}' (scripts/install-deps)", pytrace=False)


def assert_valid_spdx(path: str) -> None:
    done = subprocess.run([pyspdxtools(), "-i", path], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"pyspdxtools -i {path} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"


# ------------------------------------------------------------------------------------------
# Fixtures: repositories, the root


def sha256sum(path: str) -> str:
    return subprocess.run(["sha256sum", path], check=True, capture_output=True, text=True).stdout.split()[0]


def build_packages(directory: str) -> dict:
    """Builds PACKAGES (cached by the specs' digest) into ``directory``; returns name -> rpm file."""
    specs = {name: f"Name: {name}\n{header}Summary: ims sbom test package\nBuildArch: noarch\n"
                   f"%description\nA package of the sbom-rpm tests.\n%files\n"
             for name, (header, _) in PACKAGES.items()}
    stamp = hashlib.sha256(json.dumps(specs, sort_keys=True).encode()).hexdigest()
    rpms = os.path.join(directory, "rpms")
    stamp_file = os.path.join(directory, "stamp")
    if not (os.path.isfile(stamp_file) and open(stamp_file).read() == stamp):
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(rpms)
        home = os.path.join(directory, "home")
        os.makedirs(home)
        for name, text in specs.items():
            spec = os.path.join(directory, f"{name}.spec")
            with open(spec, "w") as f:
                f.write(text)
            subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {directory}/top",
                            "--define", "_buildhost ims-test", "--define", f"_rpmdir {rpms}",
                            "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm", spec],
                           check=True, capture_output=True, env={**RPM_ENV, "HOME": home}, timeout=120)
        with open(stamp_file, "w") as f:
            f.write(stamp)
    found = {}
    for file in os.listdir(rpms):
        name = file.rsplit("-", 2)[0]
        found[name] = os.path.join(rpms, file)
    assert set(found) == set(PACKAGES), found
    return found


def make_repo(directory: str, rpms: list, compression: str) -> None:
    """An rpm-md repository of ``rpms`` in ``directory``; primary metadata xz (createrepo_c) or zstd."""
    if os.path.isdir(os.path.join(directory, "repodata")):
        shutil.rmtree(os.path.join(directory, "repodata"))
    os.makedirs(directory, exist_ok=True)
    for rpm in rpms:
        shutil.copyfile(rpm, os.path.join(directory, os.path.basename(rpm)))
    subprocess.run(["createrepo_c", "--quiet", "--no-database", "--general-compress-type=xz", directory],
                   check=True, capture_output=True, timeout=120)
    if compression == "zstd":  # createrepo_c 0.17 has no zstd: recompress primary.xml and update repomd.xml
        repodata = os.path.join(directory, "repodata")
        old = next(n for n in os.listdir(repodata) if n.endswith("-primary.xml.xz"))
        with lzma.open(os.path.join(repodata, old)) as f:
            xml = f.read()
        new = os.path.join(repodata, "primary.xml.zst")
        subprocess.run(["zstd", "-q", "-f", "-o", new], input=xml, check=True, timeout=60)
        repomd = os.path.join(repodata, "repomd.xml")
        text = open(repomd).read()
        text = text.replace(f"repodata/{old}", "repodata/primary.xml.zst")
        text = text.replace(old.split("-")[0], sha256sum(new), 1)
        with open(repomd, "w") as f:
            f.write(text)
        os.unlink(os.path.join(repodata, old))


def make_tls(directory: str) -> None:
    """A throwaway CA and a server certificate for HOSTNAME and 127.0.0.1, where serve-test-repo's make-test-ca
    finds them (it keeps existing ones)."""
    tls = os.path.join(directory, "tls")
    names = os.path.join(tls, "names")
    if os.path.isfile(os.path.join(tls, "server.pem")) and os.path.isfile(names) and HOSTNAME in open(names).read():
        return
    subprocess.run([os.path.join(h.SUPPORT, "serve-test-repo"), "--stop", directory], capture_output=True)
    shutil.rmtree(tls, ignore_errors=True)
    os.makedirs(tls)
    run = lambda *argv: subprocess.run(argv, check=True, capture_output=True, cwd=tls, timeout=60)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days",
        "3650", "-subj", "/CN=ims sbom throwaway test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
        f"/CN={HOSTNAME}")
    with open(os.path.join(tls, "server.ext"), "w") as f:
        f.write(f"subjectAltName=DNS:{HOSTNAME},IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "3650", "-extfile", "server.ext")
    with open(os.path.join(tls, "names"), "w") as f:
        f.write(f"ims-sbom {HOSTNAME}\n")


class Env:
    """Everything the tests share: repositories, the root, what its rpm database says, the request."""


@pytest.fixture(scope="module")
def env():
    started = time.monotonic()
    e = Env()
    base = os.path.join(h.WORK, "sbom")
    e.plain = h.served_repos()["plain"]
    rpms = build_packages(os.path.join(base, "packages"))
    in_repo = [path for name, path in rpms.items() if PACKAGES[name][1]]
    e.extra_dir, e.mirror_dir = os.path.join(base, "repo-extra"), os.path.join(base, "repo-mirror")
    make_repo(e.extra_dir, in_repo, "xz")
    make_repo(e.mirror_dir, in_repo, "zstd")
    make_tls(e.extra_dir)
    out = subprocess.run([os.path.join(h.SUPPORT, "serve-test-repo"), e.extra_dir, "--until-pid", str(os.getpid())],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    port = re.search(r"URL=https://127\.0\.0\.1:(\d+)/", out).group(1)
    e.extra_url = f"https://{HOSTNAME}:{port}/"
    e.mirror_url = f"file://{e.mirror_dir}/"
    e.down_url = h.free_port_url()
    e.ca_bundle = os.path.join(base, "ca-bundle.pem")
    with open(e.ca_bundle, "w") as f:
        f.write(open(e.plain.ca).read() + open(os.path.join(e.extra_dir, "tls", "ca.pem")).read())
    e.hosts = os.path.join(base, "hosts")
    with open(e.hosts, "w") as f:
        f.write(f"127.0.0.1 localhost\n127.0.0.1 {HOSTNAME}\n")
    e.wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mount --bind "$0" /etc/hosts && exec "$@"', e.hosts]
    e.files = {name: path for name, path in rpms.items()}
    e.files.update({f.rsplit("-", 2)[0]: os.path.join(e.plain.dir, f) for f in PLAIN_PACKAGES})

    e.ws = h.Workspace("sbom")
    e.root = os.path.join(e.ws.step("build-root")["out"], "rootfs")
    os.makedirs(e.root)
    subprocess.run(["rpm", "--root", e.root, "--dbpath", h.RPMDB, "-i", "--nodeps", "--noscripts", "--nosignature",
                    *e.files.values()], check=True, capture_output=True, env=RPM_ENV, timeout=120)
    query = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SHA256HEADER}\\t%{VENDOR}\\n"
    listing = subprocess.run(["rpm", "--root", e.root, "--dbpath", h.RPMDB, "-qa", "--qf", query], check=True,
                             capture_output=True, text=True, env=RPM_ENV).stdout
    e.installed = {}
    for line in listing.splitlines():
        name, epoch, version, release, arch, header, vendor = line.split("\t")
        e.installed[name] = {"epoch": None if epoch == "(none)" else int(epoch), "version": version,
                             "release": release, "arch": arch, "header": header,
                             "vendor": None if vendor == "(none)" else vendor}
    assert len(e.installed) == len(e.files)
    # packages.json as a builder writes it: ims-sbom-with came from the mirror, ims-test-app from the repository
    # that is down (so nothing may be said about it, although plain has the same package).
    e.package_list = os.path.join(e.ws.step("build-root")["out"], "packages.json")
    hints = {"ims-sbom-with": "mirror", "ims-test-app": "down", "ims-sbom-legacy": "no-such-alias"}
    with open(e.package_list, "w") as f:
        json.dump([dict({"name": n, "epoch": p["epoch"], "version": p["version"], "release": p["release"],
                         "arch": p["arch"]}, **({"repository": hints[n]} if n in hints else {}))
                   for n, p in sorted(e.installed.items())], f, indent=1)
    e.config = {"image_name": "sbom-test", "arch": os.uname().machine, "ca_bundle": e.ca_bundle,
                "repositories": [{"alias": "plain", "url": e.plain.url},
                                 {"alias": "extra", "url": e.extra_url, "priority": 10},
                                 {"alias": "mirror", "url": e.mirror_url, "priority": 50},
                                 {"alias": "down", "url": e.down_url, "priority": 1}]}
    e.inputs = {"rootfs": {"path": e.root, "kind": "dir"}, "package_list": {"path": e.package_list, "kind": "file"}}
    h.TIMINGS["sbom: repositories and root"] = time.monotonic() - started
    yield e
    subprocess.run([os.path.join(h.SUPPORT, "serve-test-repo"), "--stop", e.extra_dir], capture_output=True)


def run_sbom(e, step="sbom", config=None, inputs=None, **kw):
    return h.run_plugin(h.SBOM_RPM, "sbom", "sbom/v1", workspace=e.ws, step=step,
                        inputs=e.inputs if inputs is None else inputs, config=e.config if config is None else config,
                        wrapper=e.wrapper, **kw)


def snapshot(root):
    """Every path in ``root`` with its type, size, mode and modification time."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            st = os.lstat(os.path.join(directory, name))
            found[os.path.relpath(os.path.join(directory, name), root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def main_run(env):
    before = snapshot(env.root)
    run = run_sbom(env, request_extra={"source_date_epoch": EPOCH})
    assert run.ok, run.describe()
    h.TIMINGS["sbom: main run (4 repositories)"] = run.seconds
    env.unchanged = snapshot(env.root) == before
    with open(run.result["outputs"]["sbom"]["path"], encoding="utf-8") as f:
        document = json.load(f)
    packages = {p["name"]: p for p in document["packages"] if p["SPDXID"] != "SPDXRef-Image"}
    return run, document, packages


# ------------------------------------------------------------------------------------------
# The main run


def test_result_outputs_and_facts(env, main_run):
    run, _, _ = main_run
    sbom = run.result["outputs"]["sbom"]
    assert sbom["path"] == os.path.join(run.workspace["out"], "sbom.spdx.json")
    assert sbom["media_type"] == "application/spdx+json" and sbom["kind"] == "file"
    assert sbom["digest"] == "sha256:" + sha256sum(sbom["path"])
    # all but ims-sbom-local (in no repository) and ims-test-app (packages.json names the repository that is down)
    count = len(env.installed)
    assert run.result["facts"] == {"package_count": count, "packages_with_repository": count - 2,
                                   "packages_with_digest": count - 2, "rpmdb": "present"}
    repos = {r["alias"]: r for r in run.result["metadata"]["repositories"]}
    assert repos["down"]["status"] == "unreadable" and repos["plain"]["status"] == "read"
    assert (repos["plain"]["packages"], repos["extra"]["packages"], repos["mirror"]["packages"]) == (3, 5, 1)


def test_the_document_validates(main_run):
    run, _, _ = main_run
    assert_valid_spdx(run.result["outputs"]["sbom"]["path"])


def test_document_header_and_relationships(main_run):
    run, document, packages = main_run
    assert document["spdxVersion"] == "SPDX-2.3" and document["dataLicense"] == "CC0-1.0"
    assert document["SPDXID"] == "SPDXRef-DOCUMENT" and document["name"] == "sbom-test"
    assert document["creationInfo"] == {"created": CREATED, "creators": ["Tool: ims-sbom-rpm-1.0.0"]}
    rpm_packages = document["packages"][1:]
    listing = json.dumps(rpm_packages, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert document["documentNamespace"] == ("https://ims.invalid/spdx/sbom-test-"
                                             + hashlib.sha256(listing.encode()).hexdigest())
    image = document["packages"][0]
    assert image["SPDXID"] == "SPDXRef-Image" and image["name"] == "sbom-test"
    assert image["primaryPackagePurpose"] == "OPERATING-SYSTEM" and image["downloadLocation"] == "NOASSERTION"
    assert [p["name"] for p in rpm_packages] == sorted(p["name"] for p in rpm_packages)
    assert document["relationships"][0] == {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                                            "relatedSpdxElement": "SPDXRef-Image"}
    assert document["relationships"][1:] == [{"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS",
                                              "relatedSpdxElement": p["SPDXID"]} for p in rpm_packages]
    with open(run.result["outputs"]["sbom"]["path"], encoding="utf-8") as f:
        assert f.read() == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_every_installed_package_is_listed_with_its_fields(env, main_run):
    _, _, packages = main_run
    assert set(packages) == set(env.installed)
    for name, rpm in env.installed.items():
        entry = packages[name]
        version = f"{rpm['version']}-{rpm['release']}"
        assert entry["versionInfo"] == (f"{rpm['epoch']}:{version}" if rpm["epoch"] else version)
        assert entry["filesAnalyzed"] is False and entry["licenseConcluded"] == "NOASSERTION"
        assert entry["supplier"] == (f"Organization: {rpm['vendor']}" if rpm["vendor"] else "NOASSERTION")
        assert f"rpm header digest (SHA256HEADER): SHA256 {rpm['header']}" in entry["comment"]
        assert all(c["checksumValue"] != rpm["header"] for c in entry.get("checksums", []))
        assert entry["sourceInfo"] == f"built from the source rpm {name}-{version}.src.rpm"
        assert re.match(r"^SPDXRef-Package-rpm-[A-Za-z0-9.-]+$", entry["SPDXID"])
        [ref] = entry["externalRefs"]
        assert ref["referenceCategory"] == "PACKAGE-MANAGER" and ref["referenceType"] == "purl"
        assert f"arch={rpm['arch']}" in ref["referenceLocator"]


def test_repository_and_file_digest_from_the_https_repository(env, main_run):
    _, _, packages = main_run
    epoch = packages["ims-sbom-epoch"]
    file = os.path.basename(env.files["ims-sbom-epoch"])
    assert epoch["versionInfo"] == "3:2.0-1"
    assert epoch["downloadLocation"] == env.extra_url + file
    assert epoch["checksums"] == [{"algorithm": "SHA256", "checksumValue": sha256sum(env.files["ims-sbom-epoch"])}]
    assert f"installed from repository 'extra' ({env.extra_url}); package file {env.extra_url}{file}" \
        in epoch["comment"]
    assert epoch["externalRefs"][0]["referenceLocator"] == (
        f"pkg:rpm/example-corp/ims-sbom-epoch@2.0-1?arch=noarch&epoch=3&repository_url={env.extra_url}")
    assert epoch["supplier"] == "Organization: Example Corp <https://example.invalid/>"


def test_repository_on_an_ip_address_keeps_the_url_out_of_download_location(env, main_run):
    """SPDX tools refuse download locations on IP addresses: the URL is in the comment and the purl instead."""
    _, _, packages = main_run
    for name in ("ims-test-filesystem", "ims-test-lib", "ims-test-shell"):
        entry = packages[name]
        file = os.path.basename(env.files[name])
        assert entry["downloadLocation"] == "NOASSERTION"
        assert entry["checksums"] == [{"algorithm": "SHA256", "checksumValue": sha256sum(env.files[name])}]
        assert f"installed from repository 'plain' ({env.plain.url}); package file {env.plain.url}{file}" \
            in entry["comment"]
        assert entry["externalRefs"][0]["referenceLocator"].endswith(f"&repository_url={env.plain.url}")


def test_package_list_decides_between_repositories(env, main_run):
    _, _, packages = main_run
    # extra (priority 10) and mirror (50) both offer the same files: the better priority wins...
    assert "installed from repository 'extra'" in packages["ims-sbom-lower"]["comment"]
    # ... unless packages.json names the repository (mirror, read through a file URL with zstd metadata) ...
    entry = packages["ims-sbom-with"]
    assert f"installed from repository 'mirror' ({env.mirror_url})" in entry["comment"]
    assert entry["downloadLocation"] == "NOASSERTION"  # a file URL is no SPDX download location
    assert entry["checksums"] == [{"algorithm": "SHA256", "checksumValue": sha256sum(env.files["ims-sbom-with"])}]
    assert entry["externalRefs"][0]["referenceLocator"] == (
        f"pkg:rpm/suse/ims-sbom-with@1.0-2?arch=noarch&repository_url={env.mirror_url}")
    # ... an alias that is not configured is no hint ...
    assert "installed from repository 'extra'" in packages["ims-sbom-legacy"]["comment"]
    # ... and a package that packages.json says came from a repository that is down gets none, not plain's.
    app = packages["ims-test-app"]
    assert app["downloadLocation"] == "NOASSERTION" and "checksums" not in app
    assert "installed from" not in app["comment"]
    assert "repository_url" not in app["externalRefs"][0]["referenceLocator"]


def test_a_package_of_no_repository_says_noassertion(main_run):
    _, _, packages = main_run
    local = packages["ims-sbom-local"]
    assert local["downloadLocation"] == "NOASSERTION" and "checksums" not in local
    assert "installed from" not in local["comment"]
    assert local["externalRefs"][0]["referenceLocator"] == "pkg:rpm/ims-sbom-local@1.0-1?arch=noarch"


def test_a_repository_that_is_down_is_a_warning(env, main_run):
    run, _, _ = main_run
    warnings = [m["msg"] for m in run.of_type("log") if m["level"] == "warn"]
    assert any("repository 'down'" in w and env.down_url in w for w in warnings), warnings


def test_licenses(main_run):
    _, _, packages = main_run
    assert packages["ims-sbom-epoch"]["licenseDeclared"] == "MIT AND (Apache-2.0 OR BSD-3-Clause)"
    assert "licenseComments" not in packages["ims-sbom-epoch"]
    assert packages["ims-sbom-with"]["licenseDeclared"] == "GPL-2.0-or-later WITH Classpath-exception-2.0"
    assert packages["ims-test-shell"]["licenseDeclared"] == "GPL-2.0-only"
    # not SPDX: NOASSERTION, and the tag's text in licenseComments
    for name, text in (("ims-sbom-legacy", "GPLv2+"), ("ims-sbom-ref", "LicenseRef-Fedora-Public-Domain")):
        assert packages[name]["licenseDeclared"] == "NOASSERTION"
        assert packages[name]["licenseComments"] == f"rpm License tag: {text}"
    # identifiers and operators in their canonical case, the original kept
    assert packages["ims-sbom-lower"]["licenseDeclared"] == "MIT AND GPL-2.0+"
    assert packages["ims-sbom-lower"]["licenseComments"] == "rpm License tag: mit and gpl-2.0+"


def test_names_and_versions_are_encoded(main_run):
    _, _, packages = main_run
    entry = packages["ims-sbom-c++"]
    assert entry["SPDXID"] == "SPDXRef-Package-rpm-ims-sbom-c---1.0-rc1-1-noarch"
    assert entry["versionInfo"] == "1.0~rc1-1"
    assert entry["externalRefs"][0]["referenceLocator"].startswith("pkg:rpm/ims-sbom-c%2B%2B@1.0~rc1-1?arch=noarch&")


def test_the_root_is_not_changed(env, main_run):
    assert env.unchanged, "the plugin changed the root (rpm must read a copy of its database)"


def test_the_same_source_date_epoch_gives_the_same_bytes(env, main_run):
    first, _, _ = main_run
    again = run_sbom(env, step="sbom-again", env_extra={"SOURCE_DATE_EPOCH": str(EPOCH)})
    assert again.ok, again.describe()
    with open(first.result["outputs"]["sbom"]["path"], "rb") as a, \
            open(again.result["outputs"]["sbom"]["path"], "rb") as b:
        assert a.read() == b.read()
    assert again.result["outputs"]["sbom"]["digest"] == first.result["outputs"]["sbom"]["digest"]


def test_without_source_date_epoch_the_current_time(env):
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    run = run_sbom(env, step="sbom-now", config={"image_name": "now"})
    assert run.ok, run.describe()
    with open(run.result["outputs"]["sbom"]["path"]) as f:
        created = json.load(f)["creationInfo"]["created"]
    assert before <= created <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    # no repositories: nothing is known about any package's origin
    assert run.result["facts"]["packages_with_repository"] == 0
    assert_valid_spdx(run.result["outputs"]["sbom"]["path"])


# ------------------------------------------------------------------------------------------
# Other roots and failures


def test_only_unreadable_repositories_give_noassertion_everywhere(env):
    config = {"image_name": "down", "repositories": [{"alias": "down", "url": env.down_url},
                                                     {"alias": "gone", "url": f"file://{env.extra_dir}/no-such-dir/"}]}
    run = run_sbom(env, step="sbom-down", config=config, inputs={"rootfs": env.inputs["rootfs"]},
                   request_extra={"source_date_epoch": EPOCH})
    assert run.ok, run.describe()
    assert run.result["facts"]["packages_with_repository"] == 0 and run.result["facts"]["packages_with_digest"] == 0
    warnings = " ".join(m["msg"] for m in run.of_type("log") if m["level"] == "warn")
    assert "repository 'down'" in warnings and "repository 'gone'" in warnings
    with open(run.result["outputs"]["sbom"]["path"]) as f:
        document = json.load(f)
    assert all(p["downloadLocation"] == "NOASSERTION" and "checksums" not in p for p in document["packages"])
    assert_valid_spdx(run.result["outputs"]["sbom"]["path"])


def test_a_root_without_rpm_database(env):
    root = os.path.join(env.ws.step("empty-root")["out"], "rootfs")
    os.makedirs(os.path.join(root, "etc"))
    run = run_sbom(env, step="sbom-empty", inputs={"rootfs": {"path": root, "kind": "dir"}},
                   request_extra={"source_date_epoch": EPOCH})
    assert run.ok, run.describe()
    assert run.result["facts"] == {"package_count": 0, "packages_with_repository": 0, "packages_with_digest": 0,
                                   "rpmdb": "absent"}
    assert any(m["level"] == "warn" and "no rpm database" in m["msg"] for m in run.of_type("log"))
    with open(run.result["outputs"]["sbom"]["path"]) as f:
        document = json.load(f)
    assert [p["SPDXID"] for p in document["packages"]] == ["SPDXRef-Image"]
    assert document["relationships"] == [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                                          "relatedSpdxElement": "SPDXRef-Image"}]
    assert os.listdir(root) == ["etc"], "rpm created a database in the root"
    assert_valid_spdx(run.result["outputs"]["sbom"]["path"])


def test_a_database_in_var_lib_rpm(env):
    """The older layout (RHEL up to 9): the database in /var/lib/rpm, no /usr/lib/sysimage/rpm."""
    root = os.path.join(env.ws.step("old-root")["out"], "rootfs")
    os.makedirs(os.path.join(root, "var", "lib"))
    shutil.copytree(os.path.join(env.root, h.RPMDB.lstrip("/")), os.path.join(root, "var", "lib", "rpm"))
    run = run_sbom(env, step="sbom-old", inputs={"rootfs": {"path": root, "kind": "dir"}}, config={})
    assert run.ok, run.describe()
    assert run.result["facts"]["package_count"] == len(env.installed)
    assert run.result["metadata"]["rpmdb_path"] == "/var/lib/rpm"
    assert not os.path.exists(os.path.join(root, "usr"))
    assert_valid_spdx(run.result["outputs"]["sbom"]["path"])


def test_an_unreadable_rpm_database_is_an_environment_error(env):
    root = os.path.join(env.ws.step("broken-root")["out"], "rootfs")
    os.makedirs(os.path.join(root, h.RPMDB.lstrip("/")))
    with open(os.path.join(root, h.RPMDB.lstrip("/"), "rpmdb.sqlite"), "wb") as f:
        f.write(b"this is not an sqlite database" * 100)
    run = run_sbom(env, step="sbom-broken", inputs={"rootfs": {"path": root, "kind": "dir"}}, config={})
    assert (run.error["code"], run.error["category"]) == ("sbom.rpmdb_failed", "environment"), run.describe()


def test_a_missing_rootfs_is_refused(env):
    run = run_sbom(env, step="sbom-no-rootfs", inputs={}, config={}, check_request=False)
    assert (run.error["code"], run.error["category"], run.error["path"]) == \
        ("sbom.missing_input", "config", "/inputs/rootfs"), run.describe()


@pytest.mark.parametrize("config, pointer", [
    ({"repositories": [{"alias": "x"}]}, "/repositories/0/url"),
    ({"repositories": [{"alias": "x", "url": "https://a.example/"}, {"alias": "x", "url": "https://b.example/"}]},
     "/repositories/1/alias"),
    ({"ca_bundle": "/nonexistent/ca.pem"}, "/ca_bundle"),
    ({"document_namespace_base": "not a uri"}, "/document_namespace_base"),
    ({"image_name": ""}, "/image_name"),
])
def test_invalid_config(env, config, pointer):
    run = run_sbom(env, step="sbom-invalid", config=config, check_request=False)
    assert (run.error["code"], run.error["category"], run.error.get("path")) == \
        ("sbom.invalid_config", "config", pointer), run.describe()


def test_cleanup_is_idempotent(env):
    for _ in range(2):
        run = run_sbom(env, step="sbom-cleanup", verb="cleanup")
        assert run.ok, run.describe()


def test_every_license_identifier_is_one_the_validator_knows():
    """share/spdx-license-ids.json against the license list of the SPDX validator's own licensing library."""
    try:
        from license_expression import get_spdx_licensing
    except ImportError:
        pytest.fail(f"license-expression (a dependency of {SPDX_TOOLS}) is not installed: run "
                    f"'python3 -m pip install --break-system-packages {SPDX_TOOLS}'", pytrace=False)
    licensing = get_spdx_licensing()
    with open(os.path.join(h.SBOM_RPM, "share", "spdx-license-ids.json")) as f:
        ids = json.load(f)

    def valid(expression):
        if licensing.validate(expression).invalid_symbols:
            return False
        try:
            licensing.parse(expression, validate=True, strict=True)
            return True
        except Exception:  # noqa: BLE001 - any parse error means "refused"
            return False

    assert [i for i in ids["licenses"] if not valid(i)] == []
    assert [i for i in ids["exceptions"] if not valid(f"MIT WITH {i}")] == []

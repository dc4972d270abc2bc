"""Test support for the rpm builder plugins (builder-zypper, builder-dnf), inject-ca and configure-dns.

* :func:`test_repos` builds the test package repository twice with Tests/Support/build-test-repo
  (unsigned, and signed with a throwaway key) and serves both over HTTPS on 127.0.0.1 with
  Tests/Support/serve-test-repo (a throwaway CA). Built once per process; the servers stop when the
  process exits (``--until-pid``), and at exit.
* :func:`run_plugin` drives a plugin executable over the protocol like the host does: fresh
  environment, one request line on stdin (kept open until the plugin exits), NDJSON on stdout. Every
  message is checked against the protocol's JSON Schemas (envelope, message type, result payload)
  and the sequence rules (hello first, exactly one terminal message, exit code matching it).
* :func:`make_recipe` writes a recipe directory (config.sh, root/ overlay, an archive built at test
  time) and :func:`description` the resolved description.json the engine would pass.

Standard library only (plus python3-jsonschema, which scripts/validate-protocol needs too).
Everything runs as root on Debian 12 with scripts/install-deps' packages.
"""
from __future__ import annotations

import atexit
import importlib.machinery
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SUPPORT = os.path.join(REPO, "Tests", "Support")
PLUGINS = os.path.join(REPO, "Plugins")
BUILDER = {"zypper": os.path.join(PLUGINS, "builder-zypper"), "dnf": os.path.join(PLUGINS, "builder-dnf")}
INJECT_CA = os.path.join(PLUGINS, "inject-ca")
CONFIGURE_DNS = os.path.join(PLUGINS, "configure-dns")
CUSTOMIZE = os.path.join(PLUGINS, "customize-chroot")
SBOM_RPM = os.path.join(PLUGINS, "sbom-rpm")
RPMDB = "/usr/lib/sysimage/rpm"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Where the cached test repositories live (stable, so repeated runs reuse the built RPMs).
WORK = os.environ.get("IMS_PLUGIN_TEST_DIR") or f"/tmp/ims-plugin-tests-{os.getuid()}"

#: Seconds each build took, by label; printed at the end of the run (see test_builders.py).
TIMINGS: Dict[str, float] = {}


# ---------------------------------------------------------------------------------------------
# Plugins: make sure lib/ holds the current SDK and shared libraries (scripts/build-plugins)


_plugins_ready = False


def ensure_plugins_built() -> None:
    global _plugins_ready
    if _plugins_ready:
        return
    wanted = {
        os.path.join(REPO, "sdk", "python", "ims_plugin.py"): ["ims_plugin.py"],
        os.path.join(PLUGINS, "lib-rpmbuilder", "ims_rootfs.py"): ["ims_rootfs.py"],
        os.path.join(PLUGINS, "lib-rpmbuilder", "ims_rpmbuilder.py"): ["ims_rpmbuilder.py"],
        os.path.join(PLUGINS, "lib-rpmbuilder", "ims_kconfig.sh"): ["ims_kconfig.sh"],
    }
    stale = False
    for plugin in (BUILDER["zypper"], BUILDER["dnf"], INJECT_CA, CONFIGURE_DNS, CUSTOMIZE, SBOM_RPM):
        for source, names in wanted.items():
            if not os.path.exists(source):
                continue
            for name in names:
                target = os.path.join(plugin, "lib", name)
                if not os.path.exists(target) or open(target, "rb").read() != open(source, "rb").read():
                    stale = True
    if stale:
        subprocess.run([os.path.join(REPO, "scripts", "build-plugins")], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    _plugins_ready = True


# ---------------------------------------------------------------------------------------------
# The test repositories


class ServedRepo:
    def __init__(self, directory: str, url: str, ca: str) -> None:
        self.dir = directory
        self.url = url
        self.ca = ca
        self.key = os.path.join(directory, "RPM-GPG-KEY-ims-test")
        self.decoy_key = os.path.join(directory, "RPM-GPG-KEY-ims-decoy")


_repos: Optional[Dict[str, ServedRepo]] = None
_repos_lock = threading.Lock()


def _serve(directory: str) -> ServedRepo:
    out = subprocess.run([os.path.join(SUPPORT, "serve-test-repo"), directory, "--until-pid", str(os.getpid())],
                         check=True, capture_output=True, text=True, timeout=60)
    values = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    atexit.register(subprocess.run, [os.path.join(SUPPORT, "serve-test-repo"), "--stop", directory],
                    capture_output=True)
    return ServedRepo(directory, values["URL"], values["CA"])


def served_repos() -> Dict[str, ServedRepo]:
    """{"plain": ServedRepo, "signed": ServedRepo}, built (cached) and served over HTTPS."""
    global _repos
    with _repos_lock:
        if _repos is None:
            started = time.monotonic()
            plain, signed = os.path.join(WORK, "repo-plain"), os.path.join(WORK, "repo-signed")
            subprocess.run([os.path.join(SUPPORT, "build-test-repo"), plain], check=True, capture_output=True,
                           timeout=300)
            subprocess.run([os.path.join(SUPPORT, "build-test-repo"), signed, "--sign"], check=True,
                           capture_output=True, timeout=300)
            _repos = {"plain": _serve(plain), "signed": _serve(signed)}
            TIMINGS["test repositories (build or cache check + serve)"] = time.monotonic() - started
        return _repos


def free_port_url() -> str:
    """An https URL on 127.0.0.1 where nothing listens (a repository that is down)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"https://127.0.0.1:{port}/"


# ---------------------------------------------------------------------------------------------
# Protocol schemas (scripts/validate-protocol's loader)


_schemas = None


def schemas():
    global _schemas
    if _schemas is None:
        path = os.path.join(REPO, "scripts", "validate-protocol")
        loader = importlib.machinery.SourceFileLoader("ims_validate_protocol", path)
        spec = importlib.util.spec_from_loader("ims_validate_protocol", loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        _schemas = module.Schemas(os.path.join(REPO, "protocol", "schemas"))
    return _schemas


# ---------------------------------------------------------------------------------------------
# Workspaces and plugin runs


_jobs_cleaned = False


class Workspace:
    """A job workspace root with per-step directories, like the host makes. The workspaces of the
    previous run are removed when the first one of this run is made (the last run's stay for a look)."""

    def __init__(self, label: str = "job") -> None:
        global _jobs_cleaned
        base = os.path.join(WORK, "jobs")
        if not _jobs_cleaned:
            _jobs_cleaned = True
            for line in open("/proc/self/mountinfo", encoding="utf-8"):
                point = line.split()[4]
                if point.startswith(base + "/"):
                    subprocess.run(["umount", "-l", point], capture_output=True)
            shutil.rmtree(base, ignore_errors=True)
        os.makedirs(base, exist_ok=True)
        label = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)
        self.root = os.path.join(base, f"{label}-{uuid.uuid4().hex[:8]}")
        os.makedirs(self.root)

    def step(self, name: str) -> Dict[str, str]:
        dirs = {"root": self.root}
        for sub in ("in", "out", "tmp", "state"):
            path = os.path.join(self.root, "phases", name, sub)
            os.makedirs(path, exist_ok=True)
            dirs[sub] = path
        return dirs

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class PluginRun:
    def __init__(self, argv: List[str], exit_code: int, messages: List[Dict[str, Any]], stderr: str,
                 seconds: float, workspace: Dict[str, str]) -> None:
        self.argv = argv
        self.exit_code = exit_code
        self.messages = messages
        self.stderr = stderr
        self.seconds = seconds
        self.workspace = workspace

    @property
    def terminal(self) -> Dict[str, Any]:
        return self.messages[-1]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.terminal["type"] == "result"

    @property
    def result(self) -> Dict[str, Any]:
        assert self.terminal["type"] == "result", self.describe()
        return self.terminal["data"]

    @property
    def error(self) -> Dict[str, Any]:
        assert self.terminal["type"] == "error", self.describe()
        return self.terminal["data"]

    def logs(self, source: Optional[str] = None) -> List[str]:
        return [m["data"]["msg"] for m in self.messages
                if m["type"] == "log" and (source is None or m["data"].get("source") == source)]

    def of_type(self, type_: str) -> List[Dict[str, Any]]:
        return [m["data"] for m in self.messages if m["type"] == type_]

    def describe(self) -> str:
        tail = "\n".join(self.stderr.splitlines()[-40:])
        return (f"exit {self.exit_code}; terminal {json.dumps(self.messages[-1] if self.messages else None)[:3000]}\n"
                f"--- stderr tail ---\n{tail}")


def _check_protocol(messages: List[Dict[str, Any]], exit_code: int, payload: Optional[str], verb: str) -> None:
    s = schemas()
    assert messages, "no protocol messages"
    for message in messages:
        problems = s.errors("envelope.v1.schema.json", message)
        schema = f"messages/{message.get('type')}.schema.json"
        if schema in s.by_path:
            problems += s.errors(schema, message.get("data"))
        assert not problems, problems
    types = [m["type"] for m in messages]
    assert types[0] in ("hello", "error"), types
    terminals = [t for t in types if t in ("result", "error")]
    assert len(terminals) == 1 and types[-1] in ("result", "error"), types
    assert exit_code == (0 if types[-1] == "result" else 1), (exit_code, types[-1])
    if payload and verb == "run" and types[-1] == "result":
        kind = payload.split("/")[0]
        version = payload.split("/")[1]
        problems = s.errors(f"payloads/{kind}.{version}.result.schema.json", messages[-1]["data"])
        assert not problems, problems


def run_plugin(plugin_dir: str, phase: str, payload: str, *, workspace: Workspace, step: Optional[str] = None,
               inputs: Optional[Dict[str, Any]] = None, config: Optional[Dict[str, Any]] = None,
               verb: str = "run", timeout: float = 600, log_level: str = "info",
               cancel_after: Optional[float] = None, check_request: bool = True,
               request_extra: Optional[Dict[str, Any]] = None, env_extra: Optional[Dict[str, str]] = None,
               wrapper: Optional[List[str]] = None) -> PluginRun:
    """Runs ``<plugin>/bin/<entrypoint> <verb>`` with one request and returns what it said.

    ``request_extra``: more top-level members of the request's data (e.g. source_date_epoch); ``env_extra``: more
    environment variables (e.g. SOURCE_DATE_EPOCH); ``wrapper``: an argv prefix the entrypoint runs under (e.g.
    unshare)."""
    ensure_plugins_built()
    with open(os.path.join(plugin_dir, "plugin.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    entrypoint = os.path.join(plugin_dir, manifest["entrypoint"])
    ws = workspace.step(step or phase)
    request = {
        "verb": verb, "phase": phase, "payload": payload,
        "protocol": {"version": 1, "features": ["cancel.message", "cleanup", "progress", "diagnostic", "heartbeat", "session"]},
        "job": {"id": os.path.basename(workspace.root)},
        "deadline": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + timeout)),
        "workspace": {k: ws[k] for k in ("root", "in", "out", "tmp", "state")},
        "inputs": inputs or {}, "config": config or {}, "secrets": {},
        "host": {"name": "ims", "version": "0.0.0-test"}, "log_level": log_level,
    }
    request.update(request_extra or {})
    if verb == "run" and check_request:
        problems = schemas().errors(f"payloads/{payload.split('/')[0]}.{payload.split('/')[1]}.request.schema.json",
                                    request)
        assert not problems, f"the test's request does not match the payload schema: {problems}"
    env = {"PATH": HOST_PATH, "LANG": "C.UTF-8", "TZ": "UTC", "HOME": ws["tmp"], "TMPDIR": ws["tmp"],
           "IMS_PLUGIN": "1", "IMS_PROTOCOL": "1", "IMS_PHASE": phase, "IMS_JOB_ID": request["job"]["id"],
           "IMS_WORKDIR": workspace.root, "IMS_PLUGIN_DIR": os.path.realpath(plugin_dir), "IMS_LOG_LEVEL": log_level}
    env.update(env_extra or {})
    started = time.monotonic()
    proc = subprocess.Popen([*(wrapper or []), entrypoint, verb], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=ws["tmp"], start_new_session=True)
    stderr_chunks: List[bytes] = []
    reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps({"ims": 1, "type": "request", "data": request}) + "\n").encode())
    proc.stdin.flush()
    if cancel_after is not None:
        def cancel() -> None:
            time.sleep(cancel_after)
            try:
                proc.stdin.write(b'{"ims":1,"type":"cancel","data":{"reason":"test","grace_seconds":10}}\n')
                proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass
        threading.Thread(target=cancel, daemon=True).start()
    messages = []
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for raw in proc.stdout:
            line = raw.decode("utf-8").strip()
            if line:
                assert line.startswith("{"), f"stray stdout line: {line[:200]}"
                messages.append(json.loads(line))
        exit_code = proc.wait()
    finally:
        try:  # like the host: nothing of the plugin's process group outlives the call
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        timer.cancel()
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
    reader.join(timeout=10)
    stderr = b"".join(stderr_chunks).decode("utf-8", "replace")
    run = PluginRun([entrypoint, verb], exit_code, messages, stderr, time.monotonic() - started, ws)
    try:
        _check_protocol(messages, exit_code, payload, verb)
    except AssertionError as exc:
        raise AssertionError(f"protocol check failed: {exc}\n{run.describe()}") from None
    return run


# ---------------------------------------------------------------------------------------------
# Recipes and descriptions


CONFIG_SH = """#!/bin/bash
# config.sh of the ims builder tests: records the kiwi_* variables and proves it ran in the chroot.
test -f /.kconfig && . /.kconfig
test -f /.profile && . /.profile
set -e
echo "Configure image: [$kiwi_iname] version $kiwi_iversion profiles $kiwi_profiles"
mkdir -p /var/lib/ims-test
echo "$kiwi_iname|$kiwi_iversion|$kiwi_profiles|$(id -u)" > /var/lib/ims-test/config-sh-ran
test -c /dev/null && echo "dev-null-ok" >> /var/lib/ims-test/config-sh-ran
test -r /proc/self/status && echo "proc-ok" >> /var/lib/ims-test/config-sh-ran
ls -l /usr/bin/ims-test-app
"""

IMAGES_SH = """#!/bin/sh
echo "images.sh ran" > /var/lib/ims-test/images-sh-ran
"""


def make_recipe(directory: str, *, config_sh: Optional[str] = CONFIG_SH, images_sh: Optional[str] = IMAGES_SH,
                overlay: bool = True, archive: bool = True) -> str:
    """A recipe directory: config.sh, images.sh, root/ (a file, an executable 0750, a symlink, a
    0700 directory) and extra.tar.gz (built here: nothing binary is committed)."""
    os.makedirs(directory, exist_ok=True)
    if config_sh is not None:
        with open(os.path.join(directory, "config.sh"), "w") as f:
            f.write(config_sh)
    if images_sh is not None:
        with open(os.path.join(directory, "images.sh"), "w") as f:
            f.write(images_sh)
    if overlay:
        root = os.path.join(directory, "root")
        os.makedirs(os.path.join(root, "etc", "ims-overlay"), exist_ok=True)
        os.makedirs(os.path.join(root, "usr", "local", "bin"), exist_ok=True)
        os.makedirs(os.path.join(root, "srv", "private"), exist_ok=True)
        os.chmod(os.path.join(root, "srv", "private"), 0o700)
        with open(os.path.join(root, "etc", "ims-overlay", "motd"), "w") as f:
            f.write("overlay file\n")
        tool = os.path.join(root, "usr", "local", "bin", "ims-overlay-tool")
        with open(tool, "w") as f:
            f.write("#!/bin/sh\necho overlay tool\n")
        os.chmod(tool, 0o750)
        link = os.path.join(root, "etc", "ims-overlay", "motd.link")
        if not os.path.lexists(link):
            os.symlink("motd", link)
    if archive:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            data = b"from the archive\n"
            info = tarfile.TarInfo("opt/ims-archive/hello.txt")
            info.size, info.mode, info.uid, info.gid = len(data), 0o640, 0, 0
            tar.addfile(info, io.BytesIO(data))
        with open(os.path.join(directory, "extra.tar.gz"), "wb") as f:
            f.write(buf.getvalue())
    return directory


def description(tool: str, repo_url: str, **overrides: Any) -> Dict[str, Any]:
    """The full test description: every feature the builders handle."""
    pm = {"zypper": "zypper", "dnf": "dnf4"}[tool]
    family = {"zypper": "suse", "dnf": "rhel"}[tool]
    desc: Dict[str, Any] = {
        "name": f"ims-test-{tool}", "version": "1.2.3", "schema_version": "7.4",
        "package_manager": pm, "distro_family": family, "arch": os.uname().machine,
        "profiles": ["compute", "test"],
        "preferences": {"locale": "en_US", "keytable": "us", "timezone": "UTC", "rpm_check_signatures": False,
                        "rpm_excludedocs": False,
                        "types": [{"image": "oem", "attributes": {}}, {"image": "tbz", "attributes": {"primary": "true"}}]},
        "repositories": [
            {"alias": "base", "type": "rpm-md", "source": repo_url, "priority": 10, "imageinclude": True,
             "imageonly": False, "repository_gpgcheck": None, "package_gpgcheck": None, "username": None,
             "password": None},
            {"alias": "image-only", "type": "rpm-md", "source": "https://mirror.example.invalid/updates/",
             "priority": 20, "imageinclude": False, "imageonly": True, "repository_gpgcheck": None,
             "package_gpgcheck": None, "username": None, "password": None},
        ],
        "packages": {
            "bootstrap": ["ims-test-filesystem", "ims-test-shell"],
            "image": ["ims-test-app", "ims-test-ca-certificates", "ims-test-release", "ims-test-extra"],
            "delete": ["ims-test-release"],
            "uninstall": ["ims-test-extra"],
            "tbz": ["ims-test-kernel"],            # the primary type's section: installed
            "oem": ["only-for-oem-images"],        # another type's section: skipped
        },
        "collections": {"bootstrap": [], "image": ["ims_test"] if tool == "zypper" else ["ims-test-tools"]},
        "archives": [{"name": "extra.tar.gz", "section": "image"},
                     {"name": "extra.tar.gz", "section": "bootstrap", "target_dir": "/srv/archive-target"}],
        "users": [
            {"name": "root", "password": "$1$ims$abcdefghijklmnopqrstu.", "pwdformat": "encrypted", "home": "/root",
             "shell": "/bin/bash", "id": 0, "groups": ["root"], "realname": None},
            {"name": "operator", "password": "secret", "pwdformat": "plain", "home": "/home/operator",
             "shell": "/bin/sh", "id": 1500, "groups": ["ops", "wheel"], "realname": "Test Operator"},
        ],
        "signing_keys": [],
        "config_sh": "config.sh", "images_sh": "images.sh", "overlay": "root",
    }
    desc.update(overrides)
    return desc


def minimal_description(tool: str, repo_url: str, **overrides: Any) -> Dict[str, Any]:
    """A small description for failure tests: one repository, the two bootstrap packages."""
    desc = description(tool, repo_url)
    desc.update({"repositories": [desc["repositories"][0]], "collections": {"bootstrap": [], "image": []},
                 "packages": {"bootstrap": ["ims-test-filesystem", "ims-test-shell"], "image": [], "delete": [],
                              "uninstall": []},
                 "archives": [], "users": [], "config_sh": None, "images_sh": None, "overlay": None})
    desc.update(overrides)
    return desc


def build_root(tool: str, desc: Dict[str, Any], *, ca: Optional[str], recipe: Optional[str] = None,
               signing_keys: Optional[List[str]] = None, label: Optional[str] = None,
               workspace: Optional[Workspace] = None) -> PluginRun:
    """Runs the builder for ``tool`` on ``desc`` in a fresh workspace (recipe written by make_recipe)."""
    ws = workspace or Workspace(f"{tool}-{label or 'build'}")
    fetch = ws.step("fetch")
    recipe_dir = recipe or make_recipe(os.path.join(fetch["out"], "recipe"))
    prepare = ws.step("prepare-recipe")
    desc_path = os.path.join(prepare["out"], "description.json")
    with open(desc_path, "w") as f:
        json.dump(desc, f, indent=1)
    config: Dict[str, Any] = {"distro_family": desc["distro_family"], "package_manager": desc["package_manager"],
                              "arch": desc["arch"], "releasever": "1"}
    if ca:
        config["ca_bundle"] = ca
    if signing_keys:
        config["signing_keys"] = signing_keys
    run = run_plugin(BUILDER[tool], "build-root", "build-root/v1", workspace=ws,
                     inputs={"recipe": {"path": recipe_dir, "kind": "dir"},
                             "description": {"path": desc_path, "kind": "file"}},
                     config=config)
    if label:
        TIMINGS[f"{tool}: {label}"] = run.seconds
    return run


def rpm_qa(root: str) -> Dict[str, str]:
    """name -> version-release of the packages in ``root`` (host rpm, --root/--dbpath)."""
    out = subprocess.run(["rpm", "--root", root, "--dbpath", RPMDB, "-qa", "--qf", "%{NAME} %{VERSION}-%{RELEASE}\\n"],
                         check=True, capture_output=True, text=True, env={"PATH": HOST_PATH, "HOME": "/nonexistent"})
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if line.strip())


_full_builds: Dict[str, PluginRun] = {}


def full_build(tool: str) -> PluginRun:
    """The full-featured build for ``tool`` with the site CA (cached per process; shared by the
    builder, inject-ca and configure-dns tests)."""
    if tool not in _full_builds:
        repo = served_repos()["plain"]
        _full_builds[tool] = build_root(tool, description(tool, repo.url), ca=repo.ca, label="full build with CA")
    return _full_builds[tool]


def copy_root(source: str, workspace: Workspace, step: str) -> str:
    """A copy of a built root in ``step``'s in/ directory (for phases that change a tree in place)."""
    target = os.path.join(workspace.step(step)["in"], "rootfs")
    subprocess.run(["cp", "-a", source, target], check=True)
    return target

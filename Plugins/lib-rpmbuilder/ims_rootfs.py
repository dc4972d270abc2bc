"""ims_rootfs - helpers shared by the ims plugins that work on an image root file system.

Used by Plugins/builder-zypper, Plugins/builder-dnf, Plugins/inject-ca and Plugins/configure-dns.
scripts/build-plugins copies this file (and ims_rpmbuilder.py) into the lib/ directory of every
plugin whose entrypoint imports it. Standard library only; Python 3.9+.

What is here:

* Paths inside a root: :func:`resolve_in_root` resolves a path the way a process chrooted into the
  root would (absolute symlink targets are taken relative to the root, ``..`` stops at the root), so
  that a hostile or merely absolute symlink in an image never makes us read or write a host file.
  :func:`atomic_write` replaces a file (or a symlink, never its target) with new content.
* :class:`ToolRunner` runs an external tool, streams every output line to stderr and as a protocol
  ``log`` message with a ``source``, keeps the output for error classification, and stops the tool
  when the invocation is cancelled.
* :class:`RootSession` provides what package scriptlets and image scripts expect in a chroot: a
  minimal ``/dev`` (null, zero, full, random, urandom, tty) and, on request, ``/proc``. Mounts are
  recorded in the step's state directory so that the ``cleanup`` verb can undo them after a crash
  (:func:`release_recorded_mounts`).
* Trust-store layouts of SUSE and RHEL (:data:`TRUST_LAYOUTS`, :func:`detect_trust_layout`) and PEM
  helpers, used by the builders (site CA before the first package) and by inject-ca.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ims_plugin import Cancelled, Context, Plugin, PluginError

#: The environment image scripts and chrooted tools get (nothing from the plugin's own environment).
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Lines that Debian's rpm prints for every package; shown at debug level only.
NOISE_PATTERNS = (
    re.compile(r"^rpm: RPM should not be used directly"),
    re.compile(r"^rpm: However assuming you know what you are doing"),
    re.compile(r"^Additional rpm output:\s*$"),
)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# --------------------------------------------------------------------------------------------
# The plugin object


class ImsPlugin(Plugin):
    """A :class:`ims_plugin.Plugin` whose ``describe`` also lists each phase's required commands
    (``phases[].requires.commands``), which the SDK's own describe leaves out."""

    def __init__(self, *args: Any, requires: Optional[Dict[str, Sequence[str]]] = None, **kwargs: Any) -> None:
        # These plugins poll ctx.cancelled and tear down (children, mounts) themselves: a Cancelled raised in the
        # middle of that teardown would leave it half done.
        kwargs.setdefault("interrupt", False)
        super().__init__(*args, **kwargs)
        self.phase_requires = {name: list(commands) for name, commands in (requires or {}).items()}

    def describe_data(self) -> Dict[str, Any]:
        data = super().describe_data()
        for phase in data["phases"]:
            commands = self.phase_requires.get(phase["name"])
            if commands:
                phase["requires"] = {"commands": commands}
        return data


# --------------------------------------------------------------------------------------------
# Paths inside a root


def resolve_in_root(root: str, path: str, follow_last: bool = True) -> str:
    """The host path that ``path`` (absolute, as seen inside ``root``) refers to, resolving
    symlinks the way the kernel would after ``chroot(root)``: absolute link targets restart at the
    root and ``..`` never leaves it. The result always lies inside ``root``. Components that do not
    exist are appended as they are. With ``follow_last=False`` the last component is not resolved
    (for operations on a link itself)."""
    root = os.path.abspath(root)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: List[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if (parts or follow_last) and os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise OSError(40, "too many levels of symbolic links", path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def is_inside(root: str, host_path: str) -> bool:
    """Whether ``host_path`` (after resolving host symlinks) lies inside ``root``."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(host_path)
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


def exists_in_root(root: str, path: str) -> bool:
    return os.path.exists(resolve_in_root(root, path))


def executable_in_root(root: str, path: str) -> bool:
    host = resolve_in_root(root, path)
    return os.path.isfile(host) and os.access(host, os.X_OK)


def find_in_root(root: str, names: Iterable[str]) -> Optional[str]:
    """The first of ``names`` (absolute paths inside the root) that is an executable file."""
    for name in names:
        if executable_in_root(root, name):
            return name
    return None


class ImageRpm:
    """The image's own rpm, when it is a real one: ``rpm`` for queries and ``rebuild`` (``rpmdb``, or ``rpm``
    when the image has no separate rpmdb) for ``--rebuilddb``. ``refused`` lists candidates that exist but are
    not rpm (busybox's ``rpm`` applet, for one), each with what ``--version`` said."""

    def __init__(self, rpm: Optional[str], rebuild: Optional[str], refused: List[Tuple[str, str]]) -> None:
        self.rpm = rpm
        self.rebuild = rebuild
        self.refused = refused

    @property
    def found(self) -> bool:
        return self.rpm is not None


_RPM_VERSION = re.compile(r"^RPM version \d")


def real_rpm_in_root(root: str, timeout: float = 60) -> ImageRpm:
    """Finds a real rpm in the image, as kiwi does before it touches the database: a candidate counts only when
    ``chroot ROOT TOOL --version`` says ``RPM version N``. An applet or wrapper that merely has the name (busybox
    has an ``rpm`` applet without ``--rebuilddb`` or ``-qa --qf``), or a binary that cannot run on this host,
    is refused and reported, never used."""
    refused: List[Tuple[str, str]] = []

    def is_rpm(path: str) -> bool:
        try:
            out = subprocess.run(["chroot", root, path, "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, errors="replace", timeout=timeout,
                                 env=chroot_env())
            said = (out.stdout or "").strip().splitlines()
        except (OSError, subprocess.TimeoutExpired) as exc:
            refused.append((path, f"cannot run it: {exc}"))
            return False
        first = said[0] if said else f"(no output, exit {out.returncode})"
        if out.returncode == 0 and _RPM_VERSION.match(first):
            return True
        refused.append((path, first[:200]))
        return False

    rpm = next((p for p in ("/usr/bin/rpm", "/bin/rpm") if executable_in_root(root, p) and is_rpm(p)), None)
    if rpm is None:
        return ImageRpm(None, None, refused)
    rebuild = next((p for p in ("/usr/bin/rpmdb", "/bin/rpmdb") if executable_in_root(root, p) and is_rpm(p)), rpm)
    return ImageRpm(rpm, rebuild, refused)


def shell_in_root(root: str) -> Optional[str]:
    """``/bin/bash`` if the image has it, else ``/bin/sh``, else None."""
    return find_in_root(root, ("/bin/bash", "/usr/bin/bash", "/bin/sh", "/usr/bin/sh"))


def atomic_write(path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
    """Writes ``data`` to a temporary file next to ``path`` and renames it over ``path``. A symlink
    at ``path`` is replaced by the file; its target is never written."""
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.ims-tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
        os.chmod(tmp, mode)
        try:
            os.chown(tmp, uid, gid)
        except PermissionError:
            pass
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def makedirs_in_root(root: str, path: str, mode: int = 0o755) -> str:
    """Creates ``path`` (absolute, inside the root), resolving symlinks inside the root; returns the
    host path. Never creates anything through a symlink that leads out of the root."""
    host = resolve_in_root(root, path)  # every existing component of it is a real directory
    os.makedirs(host, mode=mode, exist_ok=True)
    return host


def read_os_release(root: str) -> Dict[str, str]:
    """/etc/os-release (or /usr/lib/os-release) of the image as a dict; empty when missing."""
    for name in ("/etc/os-release", "/usr/lib/os-release"):
        host = resolve_in_root(root, name)
        if os.path.isfile(host):
            values: Dict[str, str] = {}
            with open(host, encoding="utf-8", errors="replace") as f:
                for line in f:
                    line = line.strip()
                    if not line or line.startswith("#") or "=" not in line:
                        continue
                    key, _, value = line.partition("=")
                    value = value.strip()
                    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                        value = value[1:-1]
                    values[key.strip()] = value
            return values
    return {}


# --------------------------------------------------------------------------------------------
# Running tools


class ToolResult:
    def __init__(self, argv: Sequence[str], returncode: int, lines: Sequence[str], seconds: float) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.lines = list(lines)
        self.seconds = seconds

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def tail(self, count: int = 20) -> List[str]:
        return [line for line in self.lines if line.strip()][-count:]


class ToolRunner:
    """Runs tools for a plugin invocation (see the module docstring)."""

    def __init__(self, ctx: Context, redact: Iterable[str] = ()) -> None:
        self.ctx = ctx
        self.redact = [r for r in redact if r]
        #: (compiled pattern, replacement) applied to every output line before anything else sees it.
        self.rewrites: List[Tuple["re.Pattern[str]", str]] = []

    def add_redaction(self, secret: Optional[str]) -> None:
        if secret:
            self.redact.append(secret)

    def _clean(self, line: str) -> str:
        line = _ANSI.sub("", line).rstrip("\n")
        if "\r" in line:  # progress redraws: keep what was drawn last
            line = [part for part in line.split("\r") if part.strip()][-1:] or [""]
            line = line[0]
        for pattern, replacement in self.rewrites:
            line = pattern.sub(replacement, line)
        for secret in self.redact:
            line = line.replace(secret, "***")
        return line.rstrip()

    def log(self, level: str, msg: str, source: Optional[str] = None, **fields: Any) -> None:
        if not self.ctx.log_enabled(level):
            return
        data: Dict[str, Any] = {"level": level, "msg": msg[:8000]}
        if source:
            data["source"] = source
        if fields:
            data["fields"] = fields
        self.ctx.emit("log", data)

    def run(self, argv: Sequence[str], *, source: str, env: Optional[Dict[str, str]] = None,
            cwd: Optional[str] = None, level: str = "info", keep: int = 20000,
            echo: bool = True) -> ToolResult:
        """Runs ``argv`` with stdin /dev/null and stdout+stderr merged; every line goes to stderr
        (prefixed with ``[source]``) and, with ``echo``, to a ``log`` message. Raises
        :class:`Cancelled` (after stopping the tool) when the invocation is cancelled, and
        PluginError ``*.missing_tool`` when the program does not exist."""
        self.ctx.check_cancelled()
        started = time.monotonic()
        self.log("debug", "running: " + " ".join(self._clean(a) for a in argv), source=source)
        try:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=env, cwd=cwd, close_fds=True)
        except FileNotFoundError:
            raise PluginError(f"{_phase_ns(self.ctx)}.missing_tool", "environment",
                              f"command '{argv[0]}' not found on this host",
                              {"command": argv[0]}, hint="run scripts/install-deps (Debian 12)")
        lines: "collections.deque[str]" = collections.deque(maxlen=keep)
        q: "queue.Queue[Optional[bytes]]" = queue.Queue()

        def reader() -> None:
            assert proc.stdout is not None
            for raw in iter(proc.stdout.readline, b""):
                q.put(raw)
            q.put(None)

        thread = threading.Thread(target=reader, name=f"ims-{source}-reader", daemon=True)
        thread.start()
        while True:
            try:
                raw = q.get(timeout=0.2)
            except queue.Empty:
                if self.ctx.cancelled:
                    self._stop(proc)
                    raise Cancelled(self.ctx.cancel_reason)
                continue
            if raw is None:
                break
            line = self._clean(raw.decode("utf-8", "replace"))
            lines.append(line)
            sys.stderr.write(f"[{source}] {line}\n")
            if echo and line.strip():
                noisy = any(p.search(line) for p in NOISE_PATTERNS)
                self.log("debug" if noisy else level, line, source=source)
            if self.ctx.cancelled:
                self._stop(proc)
                raise Cancelled(self.ctx.cancel_reason)
        returncode = proc.wait()
        sys.stderr.flush()
        return ToolResult(argv, returncode, lines, time.monotonic() - started)

    @staticmethod
    def _stop(proc: subprocess.Popen) -> None:
        """SIGTERM to the tool and everything it started (a chrooted script's children too), a
        grace of 5 s, then SIGKILL. Plugins must not leave processes behind."""
        pids = [proc.pid] + descendants(proc.pid)
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if proc.poll() is not None and not any(_alive(p) for p in pids[1:]):
                break
            time.sleep(0.05)
        for pid in [proc.pid] + descendants(proc.pid) + pids[1:]:
            if _alive(pid):
                _signal(pid, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def descendants(pid: int) -> List[int]:
    """The processes below ``pid`` (from /proc), children first."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, queue_ = [], list(children.get(pid, []))
    while queue_:
        child = queue_.pop(0)
        found.append(child)
        queue_ += children.get(child, [])
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _phase_ns(ctx: Context) -> str:
    """The error-code namespace of the current phase (custom phases use x.ims-<phase>)."""
    phase = ctx.phase
    return phase if phase in ("build-root", "inject-ca", "configure-dns", "customize", "package") else f"x.ims-{phase}"


def chroot_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """A clean environment for processes inside the image."""
    env = {"PATH": CHROOT_PATH, "HOME": "/root", "LANG": "C", "LC_ALL": "C", "TERM": "dumb", "SHELL": "/bin/sh"}
    if "SOURCE_DATE_EPOCH" in os.environ:
        env["SOURCE_DATE_EPOCH"] = os.environ["SOURCE_DATE_EPOCH"]
    if extra:
        env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# /dev and /proc for a chroot


_DEV_NODES = (("null", 1, 3, 0o666), ("zero", 1, 5, 0o666), ("full", 1, 7, 0o666),
              ("random", 1, 8, 0o666), ("urandom", 1, 9, 0o666), ("tty", 5, 0, 0o666))
_MOUNTS_FILE = "ims-rootfs-mounts.json"


def _mountpoints() -> List[str]:
    points = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4:
                    points.append(fields[4].replace("\\040", " "))
    except OSError:
        pass
    return points


def is_mountpoint(path: str) -> bool:
    return os.path.realpath(path) in _mountpoints()


def _record_mounts(state_dir: str, mounts: List[str]) -> None:
    path = os.path.join(state_dir, _MOUNTS_FILE)
    if mounts:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"mounts": mounts}, f)
        os.replace(tmp, path)
    elif os.path.exists(path):
        os.unlink(path)


def _umount(path: str) -> Optional[str]:
    """Unmounts ``path`` (lazily when busy); returns an error text or None."""
    for argv in (["umount", path], ["umount", "-l", path]):
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        if result.returncode == 0 or not is_mountpoint(path):
            return None
        last = result.stdout.strip()
    return last or "umount failed"


def release_recorded_mounts(state_dir: str) -> Tuple[List[str], List[str]]:
    """Unmounts what a run recorded in ``state_dir`` (for the cleanup verb). Idempotent.
    Returns (released, failed) mount points."""
    path = os.path.join(state_dir, _MOUNTS_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            mounts = json.load(f).get("mounts", [])
    except (OSError, ValueError):
        return [], []
    released, failed = [], []
    for point in reversed(mounts):
        if not is_mountpoint(point):
            continue
        error = _umount(point)
        (failed if error else released).append(point)
    if not failed:
        os.unlink(path)
    return released, failed


class RootSession:
    """A minimal /dev (and optionally /proc) in an image root while tools and scripts run in it.

    ``setup_dev()`` creates the device nodes that are missing (and remembers them),
    ``mount_proc()`` mounts /proc (recorded in the state directory first), ``teardown()`` undoes
    both and is safe to call more than once."""

    def __init__(self, root: str, state_dir: str, runner: ToolRunner) -> None:
        self.root = root
        self.state_dir = state_dir
        self.runner = runner
        self.created_nodes: List[str] = []
        self.mounts: List[str] = []

    def setup_dev(self) -> None:
        dev = resolve_in_root(self.root, "/dev")
        os.makedirs(dev, mode=0o755, exist_ok=True)
        for name, major, minor, mode in _DEV_NODES:
            path = os.path.join(dev, name)
            if os.path.lexists(path):
                continue
            try:
                os.mknod(path, mode | stat.S_IFCHR, os.makedev(major, minor))
                os.chmod(path, mode)
                self.created_nodes.append(path)
            except OSError as exc:
                self.runner.log("warn", f"cannot create /dev/{name} in the image: {exc.strerror}; "
                                        "scripts that use it may misbehave")

    def mount_proc(self) -> None:
        proc = resolve_in_root(self.root, "/proc")
        if proc != os.path.join(os.path.abspath(self.root), "proc"):
            self.runner.log("warn", "/proc of the image is a symlink; not mounting proc")
            return
        os.makedirs(proc, mode=0o555, exist_ok=True)
        if is_mountpoint(proc):
            return
        _record_mounts(self.state_dir, self.mounts + [proc])  # record first: a crash leaves a trace
        result = subprocess.run(["mount", "-t", "proc", "proc", proc], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            _record_mounts(self.state_dir, self.mounts)
            self.runner.log("warn", f"cannot mount /proc in the image ({result.stdout.strip()}); "
                                    "scripts run without it")
            return
        self.mounts.append(proc)

    def unmount(self) -> None:
        failed = []
        for point in reversed(self.mounts):
            if is_mountpoint(point):
                error = _umount(point)
                if error:
                    failed.append(point)
                    self.runner.log("error", f"cannot unmount {point}: {error}")
        self.mounts = failed
        _record_mounts(self.state_dir, self.mounts)

    def release_left_mounts(self) -> Tuple[List[str], List[str]]:
        """Unmounts whatever is still mounted below the root that this session did not mount (a script's
        ``baseMount`` without ``baseCleanMount``, a ``mount`` in config.sh), deepest first, until nothing is
        left. Returns (released, failed) mount points as paths inside the image (``/proc``)."""
        base = os.path.realpath(self.root).rstrip("/")
        released: List[str] = []
        failed: List[str] = []
        for _ in range(32):  # stacked mounts of one point need one umount each
            below = sorted({m for m in _mountpoints() if m.startswith(base + "/") and m not in failed},
                           key=lambda m: (-m.count("/"), m))
            if not below:
                break
            for point in below:
                inside = point[len(base):]
                if _umount(point):
                    failed.append(point)
                elif inside not in released:
                    released.append(inside)
        return released, [p[len(base):] for p in failed]

    def remove_dev(self) -> None:
        for path in self.created_nodes:
            try:
                if stat.S_ISCHR(os.lstat(path).st_mode):
                    os.unlink(path)
            except OSError:
                pass
        self.created_nodes = []

    def teardown(self) -> None:
        self.unmount()
        self.remove_dev()


# --------------------------------------------------------------------------------------------
# Trust stores and PEM


#: Trust-store layouts: where an administrator's anchors go, the tool that rebuilds the bundles,
#: and the bundle files (the first is the main one). ``vendor_anchors`` is where packages put them.
TRUST_LAYOUTS: Dict[str, Dict[str, Any]] = {
    "suse": {
        "anchors": "/etc/pki/trust/anchors",
        "vendor_anchors": "/usr/share/pki/trust/anchors",
        "tools": ["/usr/sbin/update-ca-certificates", "/usr/bin/update-ca-certificates", "/sbin/update-ca-certificates"],
        "tool_args": [],
        "bundles": ["/var/lib/ca-certificates/ca-bundle.pem", "/etc/ssl/ca-bundle.pem"],
    },
    "rhel": {
        "anchors": "/etc/pki/ca-trust/source/anchors",
        "vendor_anchors": "/usr/share/pki/ca-trust-source/anchors",
        "tools": ["/usr/bin/update-ca-trust", "/bin/update-ca-trust", "/usr/sbin/update-ca-trust"],
        "tool_args": ["extract"],
        "bundles": ["/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/pki/tls/certs/ca-bundle.crt"],
    },
}

_SUSE_IDS = {"suse", "sles", "sled", "sles_sap", "opensuse", "opensuse-leap", "opensuse-tumbleweed",
             "opensuse-microos", "sle-micro", "sl-micro", "sle_hpc"}
_RHEL_IDS = {"rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn", "scientific", "redhat",
             "circle", "eurolinux", "navy", "cloudlinux"}


def detect_trust_layout(root: str, hint: Optional[str] = None) -> Tuple[Optional[str], str]:
    """(layout or None, how it was decided): from /etc/os-release ID and ID_LIKE, then from the
    tools and directories present in the image, then from ``hint`` (a distro family)."""
    osr = read_os_release(root)
    ids = [osr.get("ID", "").lower()] + osr.get("ID_LIKE", "").lower().split()
    for value in ids:
        if value in _SUSE_IDS or value.startswith("opensuse") or value.startswith("sle"):
            return "suse", f"os-release ID/ID_LIKE '{value}'"
        if value in _RHEL_IDS:
            return "rhel", f"os-release ID/ID_LIKE '{value}'"
    has_suse_tool = find_in_root(root, TRUST_LAYOUTS["suse"]["tools"]) is not None
    has_rhel_tool = find_in_root(root, TRUST_LAYOUTS["rhel"]["tools"]) is not None
    if has_suse_tool != has_rhel_tool:
        return ("suse" if has_suse_tool else "rhel"), "the trust-store tool present in the image"
    has_suse_dir = os.path.isdir(resolve_in_root(root, "/etc/pki/trust"))
    has_rhel_dir = os.path.isdir(resolve_in_root(root, "/etc/pki/ca-trust"))
    if has_suse_dir != has_rhel_dir:
        return ("suse" if has_suse_dir else "rhel"), "the trust-store directories present in the image"
    if hint in TRUST_LAYOUTS:
        return hint, f"the job's distro family '{hint}'"
    return None, "neither os-release nor the image's tools and directories identify a layout"


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.S)


def pem_certificates(data: bytes) -> List[bytes]:
    """The PEM certificate blocks in ``data`` (normalised to \\n line ends)."""
    return [m.group(0).replace(b"\r\n", b"\n") for m in _PEM_CERT.finditer(data)]


def pem_body(block: bytes) -> bytes:
    """The base64 body of one PEM block without whitespace: compares certificates across bundles."""
    lines = block.decode("ascii", "replace").strip().splitlines()
    return "".join(line.strip() for line in lines if not line.startswith("-----")).encode()


def bundle_contains(bundle: bytes, certs: Sequence[bytes]) -> bool:
    bodies = {pem_body(b) for b in pem_certificates(bundle)}
    return all(pem_body(c) in bodies for c in certs)


def system_ca_bundle() -> Optional[str]:
    """The host's own CA bundle, if any."""
    for path in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                 "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"):
        if os.path.isfile(path):
            return path
    return None


def remove_tree(path: str) -> None:
    """rm -rf that never follows symlinks out of the tree."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)

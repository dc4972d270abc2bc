"""ims_plugin - Python SDK for ims plugins, protocol 1. Standard library only (Python >= 3.9).

A plugin is an executable started by the ims host as ``<entrypoint> describe|run|cleanup``. For
run and cleanup the host writes ONE request line (NDJSON) on stdin and reads NDJSON messages from
stdout: ``hello`` first, then log/progress/artifact/..., then exactly one terminal ``result`` or
``error``. stderr is free text that ends up in the job log.

Minimal plugin::

    from ims_plugin import Plugin, PluginError

    plugin = Plugin("org.example.hello", "1.0.0",
                    phases=[("hello", ["custom/v1"])], features=["cancel.message", "cleanup"])

    @plugin.run("hello")
    def hello(ctx):
        ctx.log("info", "hello from python", job=ctx.job_id)
        ctx.check_cancelled()                      # raises Cancelled -> error ims.cancelled
        if "greeting" not in ctx.config:
            raise PluginError("x.example.no_greeting", "config", "config.greeting is required",
                              path="/greeting")
        return {"outputs": {}, "facts": {"greeted": True}}

    @plugin.cleanup()
    def cleanup(ctx):
        return None                                # empty result

    if __name__ == "__main__":
        plugin.main()

What the SDK does for you:

* It keeps the protocol stream for itself, from the moment it is imported when ``IMS_PLUGIN`` is
  set (that is, when ims started the process): fd 1 is duplicated to a non-inheritable fd, fd 1
  is then pointed at stderr and ``sys.stdout`` becomes ``sys.stderr``, so ``print()`` (at module
  level too, after the import) and child processes write to the job log and can never corrupt
  the protocol stream. Output written before ``import ims_plugin`` is not covered: import it
  first. stdin is replaced by /dev/null once the request is read.
* It checks argv (verb), ``IMS_PLUGIN`` and stdin (not a TTY): usage on stderr, exit 2.
* It reads and checks the request: bad JSON or missing fields -> ``ims.protocol.bad_request``,
  an unsupported protocol version -> ``ims.protocol.unsupported_version``, both exit 3.
* Every line is valid UTF-8, carries an increasing ``seq`` and stays under the 1 MiB limit
  (longer messages are dropped with a note on stderr).
* It answers ``describe``, sends ``hello``, and turns the handler's return value into ``result``
  (exit 0) and a raised :class:`PluginError` into ``error`` (exit 1). Any other exception becomes
  an ``internal`` error with the traceback on stderr.
* Cancellation: a reader thread watches the rest of stdin; a ``cancel`` line or EOF (host gone)
  sets the cancelled flag, and so does SIGTERM. While a handler runs, the SDK also raises
  :class:`Cancelled` in the main thread, like ``KeyboardInterrupt`` for Ctrl-C: SIGTERM's handler
  raises it, and the reader thread sends SIGTERM to the main thread so that a blocking call
  (``time.sleep``, ``subprocess.run``, a socket read) is interrupted too. It is raised once, never
  in the middle of writing a protocol line, and the SDK reports it as ``error ims.cancelled``
  (exit 1). Release what you hold in ``try/finally`` (or ``with``), and do not swallow it with a
  bare ``except:`` or ``except Exception:`` (re-raise :class:`Cancelled`). Threads other than the
  main one are not interrupted: they poll ``ctx.cancelled``. ``Plugin(..., interrupt=False)``
  turns the raising off; then poll ``ctx.cancelled`` / ``ctx.check_cancelled()`` between steps.
  ``ctx.sleep()`` wakes up early on cancellation either way.

Security: never pass secrets through argv or the environment of children; read them from the
files named in ``ctx.secrets``. Children do not inherit the protocol fd.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import signal
import sys
import threading
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

__all__ = ["Plugin", "Context", "PluginError", "Cancelled", "MAX_LINE_BYTES"]

#: Hard limit of one protocol line, newline excluded (the host refuses longer lines).
MAX_LINE_BYTES = 1 << 20

EXIT_SUCCESS, EXIT_FAILURE, EXIT_USAGE, EXIT_PROTOCOL = 0, 1, 2, 3

_LOG_LEVELS = ("trace", "debug", "info", "notice", "warn", "error")

#: The protocol stream (a private duplicate of the original fd 1), or -1 while not taken.
_protocol_fd = -1


def _take_stdout() -> int:
    """Keeps the original stdout for protocol lines and points fd 1 and ``sys.stdout`` at stderr.

    Runs at import when ims started the process (``IMS_PLUGIN`` set), else from ``Plugin.main``.
    Returns the protocol fd, or -1 when stdout is closed.
    """
    global _protocol_fd
    if _protocol_fd >= 0:
        return _protocol_fd
    try:
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):
        pass
    try:
        fd = os.dup(1)  # non-inheritable (PEP 446): children never see it
    except OSError:
        return -1
    os.dup2(2, 1)
    if sys.stderr is not None:
        sys.stdout = sys.stderr
    _protocol_fd = fd
    return fd


if os.environ.get("IMS_PLUGIN"):
    _take_stdout()


class PluginError(Exception):
    """Raise from a handler to end the phase with an ``error`` message (exit 1).

    ``code`` is stable and dotted (``"<phase>.*"`` or ``"x.<vendor>.*"``); ``category`` is one of
    user, config, environment, transient, internal, protocol, cancelled, timeout. ``path`` is a
    JSON Pointer into the request config; ``details`` any JSON-able value.
    """

    def __init__(self, code: str, category: str, message: str, details: Any = None, *,
                 path: Optional[str] = None, hint: Optional[str] = None,
                 retryable: Optional[bool] = None, retry_after_seconds: Optional[float] = None,
                 causes: Optional[List[Dict[str, Any]]] = None) -> None:
        super().__init__(message)
        self.code, self.category, self.message, self.details = code, category, message, details
        self.path, self.hint, self.retryable = path, hint, retryable
        self.retry_after_seconds, self.causes = retry_after_seconds, causes

    def to_data(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {"code": self.code, "category": self.category, "message": self.message}
        for key in ("details", "path", "hint", "retryable", "retry_after_seconds", "causes"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


class Cancelled(PluginError):
    """Raised by :meth:`Context.check_cancelled`; reported as ``ims.cancelled``."""

    def __init__(self, reason: str = "cancelled") -> None:
        super().__init__("ims.cancelled", "cancelled", f"cancelled: {reason}")


class _ProtocolError(Exception):
    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


class _Channel:
    """The protocol output: one compact JSON line per message, written with os.write."""

    def __init__(self, fd: int, cancel: "_CancelState") -> None:
        self.fd = fd
        self.version = 1
        self.terminal: Optional[str] = None
        self.min_log_level = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._cancel = cancel

    def emit(self, type_: str, data: Optional[Dict[str, Any]] = None) -> bool:
        body = json.dumps({} if data is None else data, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False, default=_json_default)
        # Some readers split on these; they can only occur inside JSON strings, so escaping is safe.
        body = body.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")
        self._cancel.hold()  # a cancellation raised now would cut the line in two
        try:
            return self._write(type_, body)
        finally:
            self._cancel.release()

    def _write(self, type_: str, body: str) -> bool:
        with self._lock:
            if self.terminal is not None:
                print(f"ims_plugin: {type_!r} after the terminal message was dropped", file=sys.stderr)
                return False
            text = f'{{"ims":{self.version},"type":{json.dumps(type_)},"seq":{self._seq + 1},"data":{body}}}'
            # Lone surrogates (e.g. from undecodable file names) must not reach the host as bad UTF-8.
            line = text.encode("utf-8", "replace") + b"\n"
            if len(line) - 1 > MAX_LINE_BYTES:
                print(f"ims_plugin: {type_!r} message of {len(line)} bytes exceeds the 1 MiB line "
                      "limit; dropped", file=sys.stderr)
                return False
            self._seq += 1
            if type_ in ("result", "error"):
                self.terminal = type_
            view = memoryview(line)
            try:
                while view:  # os.write retries EINTR itself (PEP 475); loop over partial writes
                    view = view[os.write(self.fd, view):]
            except OSError as exc:
                print(f"ims_plugin: protocol write failed: {exc}", file=sys.stderr)
                self._cancel.set("protocol stream closed")
                return False
        return True


def _json_default(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _CancelState:
    """The cancelled flag, and raising :class:`Cancelled` in the main thread while a handler runs."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = "not cancelled"
        self._lock = threading.Lock()
        self.main_thread = threading.main_thread().ident
        #: True while a handler runs with interruption on: the SIGTERM handler may then raise.
        self.armed = False
        #: >0 while the main thread writes a protocol line: a raise then waits until the line is whole.
        self.holding = 0
        self.pending = False
        self.raised = False

    def set(self, reason: str) -> None:
        with self._lock:
            if not self.event.is_set():
                self.reason = reason
                self.event.set()

    def wake_main_thread(self) -> None:
        """From another thread: interrupts a blocking call of the main thread (SIGTERM to that thread only)."""
        if self.armed and not self.raised and self.main_thread is not None:
            try:
                signal.pthread_kill(self.main_thread, signal.SIGTERM)
            except (OSError, ValueError, AttributeError):
                pass

    def on_sigterm(self, signum: int, frame: Any) -> None:
        """The SIGTERM handler (always in the main thread)."""
        self.set("SIGTERM")
        self.maybe_raise()

    def maybe_raise(self) -> None:
        if not self.armed or self.raised:
            return
        if self.holding:
            self.pending = True
            return
        self.raised = True
        raise Cancelled(self.reason)

    def hold(self) -> None:
        if threading.get_ident() == self.main_thread:
            self.holding += 1

    def release(self) -> None:
        if threading.get_ident() == self.main_thread:
            self.holding -= 1
            if not self.holding and self.pending:
                self.pending = False
                self.maybe_raise()


class _LineReader:
    """Bounded line reader over a raw fd (no read-ahead into a shared buffer of sys.stdin)."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buf, self.eof = fd, b"", False

    def readline(self, limit: int = MAX_LINE_BYTES) -> Optional[bytes]:
        """Returns a line without its newline, None at EOF; raises ValueError if too long."""
        too_long = False
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0 or (self.eof and self.buf):
                end = nl if nl >= 0 else len(self.buf)
                line, self.buf = self.buf[:end], self.buf[end + 1:]
                if too_long or len(line) > limit:
                    raise ValueError("line too long")
                return line
            if self.eof:
                if too_long:
                    raise ValueError("line too long")
                return None
            if len(self.buf) > limit:
                too_long, self.buf = True, b""
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
            self.buf += chunk


class Context:
    """The request of one run/cleanup invocation, and the message helpers."""

    def __init__(self, data: Dict[str, Any], verb: str, version: int, features: List[str],
                 channel: _Channel, cancel: _CancelState) -> None:
        self.request: Dict[str, Any] = data
        self.verb = verb
        self.protocol_version = version
        #: The features announced in hello (ours that the host offered).
        self.features = features
        self._channel, self._cancel = channel, cancel

    # ---- request accessors
    phase = property(lambda self: self.request["phase"])
    payload = property(lambda self: self.request["payload"])
    job_id = property(lambda self: self.request["job"]["id"])
    deadline = property(lambda self: self.request["deadline"], doc="RFC 3339 text")
    workspace = property(lambda self: self.request["workspace"], doc="dict: root, in, out, tmp, state")
    config = property(lambda self: self.request.get("config") or {})
    inputs = property(lambda self: self.request.get("inputs") or {})
    secrets = property(lambda self: self.request.get("secrets") or {})
    log_level = property(lambda self: self.request.get("log_level"))

    @property
    def deadline_time(self) -> Optional[_dt.datetime]:
        """The deadline as an aware datetime, or None if it cannot be parsed."""
        text = self.deadline
        try:
            return _dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
        except (ValueError, IndexError):
            return None

    def workspace_dir(self, which: str) -> str:
        """which: root, in, out, tmp or state."""
        return self.workspace[which]

    def input_path(self, name: str) -> Optional[str]:
        ref = self.inputs.get(name)
        return ref.get("path") if isinstance(ref, dict) else None

    def secret_file(self, name: str) -> Optional[str]:
        ref = self.secrets.get(name)
        return ref.get("file") if isinstance(ref, dict) else None

    # ---- messages
    def emit(self, type_: str, data: Optional[Dict[str, Any]] = None) -> bool:
        """Sends any message; False if it was not written."""
        return self._channel.emit(type_, data)

    def log(self, level: str, msg: str, /, **fields: Any) -> None:
        """level: trace|debug|info|notice|warn|error; keyword arguments become ``fields``.

        Records below the request's ``log_level`` (or ``IMS_LOG_LEVEL``) are not sent, as the
        protocol recommends; use ``ctx.emit("log", {...})`` to bypass that.
        """
        if not self.log_enabled(level):
            return
        data: Dict[str, Any] = {"level": level, "msg": str(msg)}
        if fields:
            data["fields"] = fields
        self.emit("log", data)

    def log_enabled(self, level: str) -> bool:
        """Whether a record of ``level`` would be sent."""
        return level not in _LOG_LEVELS or _LOG_LEVELS.index(level) >= self._channel.min_log_level

    def debug(self, msg: str, /, **fields: Any) -> None: self.log("debug", msg, **fields)
    def info(self, msg: str, /, **fields: Any) -> None: self.log("info", msg, **fields)
    def warn(self, msg: str, /, **fields: Any) -> None: self.log("warn", msg, **fields)
    def error(self, msg: str, /, **fields: Any) -> None: self.log("error", msg, **fields)

    def progress(self, task: str, state: str, current: Optional[float] = None,
                 total: Optional[float] = None, unit: Optional[str] = None,
                 message: Optional[str] = None, *, title: Optional[str] = None,
                 parent: Optional[str] = None) -> None:
        """state: begin|report|end; unit: bytes|items|steps. None values are left out."""
        data = {"task": task, "state": state, "current": current, "total": total, "unit": unit,
                "message": message, "title": title, "parent": parent}
        self.emit("progress", {k: v for k, v in data.items() if v is not None})

    def artifact(self, name: str, path: Union[str, os.PathLike], kind: str = "file", **extra: Any) -> None:
        """Announces an output as soon as it exists (kind: file|dir)."""
        self.emit("artifact", {"name": name, "path": os.fspath(path), "kind": kind, **extra})

    def diagnostic(self, severity: str, message: str, code: Optional[str] = None,
                   location: Optional[Dict[str, Any]] = None) -> None:
        """severity: error|warning|note; location: {file, line, column, pointer}."""
        data: Dict[str, Any] = {"severity": severity, "message": message}
        if code:
            data["code"] = code
        if location:
            data["location"] = location
        self.emit("diagnostic", data)

    def heartbeat(self) -> None:
        self.emit("heartbeat", {})

    @staticmethod
    def file_ref(path: Union[str, os.PathLike], media_type: Optional[str] = None,
                 digest: bool = True) -> Dict[str, Any]:
        """An artifact reference for a file, with size and ``sha256:<hex>`` digest."""
        path = os.fspath(path)
        ref: Dict[str, Any] = {"path": path, "kind": "file"}
        if digest:
            sha, size = hashlib.sha256(), 0
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 16), b""):
                    sha.update(chunk)
                    size += len(chunk)
            ref["digest"], ref["size"] = "sha256:" + sha.hexdigest(), size
        if media_type:
            ref["media_type"] = media_type
        return ref

    @staticmethod
    def dir_ref(path: Union[str, os.PathLike]) -> Dict[str, Any]:
        return {"path": os.fspath(path), "kind": "dir"}

    # ---- cancellation
    @property
    def cancelled(self) -> bool:
        """True once a cancel line arrived, stdin reached EOF, or SIGTERM was received."""
        return self._cancel.event.is_set()

    @property
    def cancel_reason(self) -> str:
        return self._cancel.reason

    def check_cancelled(self) -> None:
        """Raises :class:`Cancelled` if the invocation was cancelled."""
        if self.cancelled:
            raise Cancelled(self.cancel_reason)

    def sleep(self, seconds: float) -> bool:
        """Sleeps, waking early on cancellation. Returns False if cancelled."""
        return not self._cancel.event.wait(max(0.0, seconds))


Handler = Callable[[Context], Optional[Dict[str, Any]]]
PhaseSpec = Union[Tuple[str, Sequence[str]], Dict[str, Any]]


class Plugin:
    """A plugin: its identity, phases and handlers. Call :meth:`main` from ``__main__``."""

    def __init__(self, id: str, version: str, *, phases: Iterable[PhaseSpec], vendor: Optional[str] = None,
                 features: Iterable[str] = (), protocol_versions: Iterable[int] = (1,),
                 interrupt: bool = True) -> None:
        """``interrupt``: raise :class:`Cancelled` in the running handler when the run is cancelled (a
        ``cancel`` line, EOF on stdin or SIGTERM), interrupting blocking calls; False: only set the flag
        that ``ctx.cancelled`` reads."""
        self.id, self.version, self.vendor = id, version, vendor
        self.interrupt = interrupt
        self.features = list(features)
        self.protocol_versions = list(protocol_versions)
        self.phases: List[Dict[str, Any]] = []
        for spec in phases:
            if isinstance(spec, dict):
                self.phases.append({"name": spec["name"], "payloads": list(spec["payloads"])})
            else:
                name, payloads = spec
                self.phases.append({"name": name, "payloads": list(payloads)})
        self._run: Dict[Optional[str], Handler] = {}
        self._cleanup: Dict[Optional[str], Handler] = {}

    def run(self, phase: Optional[str] = None) -> Callable[[Handler], Handler]:
        """Decorator: the run handler for ``phase`` (None: every phase without its own handler)."""
        def register(fn: Handler) -> Handler:
            self._run[phase] = fn
            return fn
        return register

    def cleanup(self, phase: Optional[str] = None) -> Callable[[Handler], Handler]:
        """Decorator: the cleanup handler. Without one, cleanup succeeds with an empty result."""
        def register(fn: Handler) -> Handler:
            self._cleanup[phase] = fn
            return fn
        return register

    # ---- protocol plumbing
    def _identity(self) -> Dict[str, Any]:
        ident = {"id": self.id, "version": self.version}
        if self.vendor:
            ident["vendor"] = self.vendor
        return ident

    def describe_data(self) -> Dict[str, Any]:
        return {"plugin": self._identity(),
                "protocol": {"versions": self.protocol_versions, "features": self.features},
                "phases": [dict(p) for p in self.phases]}

    def _usage(self, prog: str, why: str) -> int:
        sys.stderr.write(
            f"{prog}: {why}\nusage: {prog} describe|run|cleanup\n"
            f"This is an ims plugin ({self.id} {self.version}). It is started by ims, which sets\n"
            f"IMS_PLUGIN=1 and writes one request line on stdin for run/cleanup. "
            f"Try: IMS_PLUGIN=1 {prog} describe\n")
        return EXIT_USAGE

    def _check_request(self, line: bytes, verb: str) -> Tuple[Dict[str, Any], int, List[str]]:
        bad = "ims.protocol.bad_request"
        self._request_version: Optional[int] = None
        try:
            envelope = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _ProtocolError(bad, "the request line is not valid JSON")
        if not isinstance(envelope, dict) or envelope.get("type") != "request":
            raise _ProtocolError(bad, "expected a message of type 'request'")
        data = envelope.get("data")
        if not isinstance(data, dict):
            raise _ProtocolError(bad, "the request has no 'data' object")
        proto = data.get("protocol")
        version = proto.get("version") if isinstance(proto, dict) else None
        if version is None:
            version = envelope.get("ims")
        if not isinstance(version, int) or isinstance(version, bool):
            raise _ProtocolError(bad, "missing protocol.version")
        self._request_version = version  # even an unsupported_version error uses it
        if version not in self.protocol_versions:
            raise _ProtocolError(
                "ims.protocol.unsupported_version",
                f"protocol version {version} is not supported by {self.id} {self.version}",
                {"supported": self.protocol_versions, "requested": version})
        if not isinstance(proto, dict):
            raise _ProtocolError(bad, "missing field 'protocol'")
        for key in ("verb", "phase", "payload", "deadline"):
            if not isinstance(data.get(key), str):
                raise _ProtocolError(bad, f"missing or non-string field '{key}'")
        ws = data.get("workspace")
        for key in ("root", "in", "out", "tmp", "state"):
            if not isinstance(ws, dict) or not isinstance(ws.get(key), str):
                raise _ProtocolError(bad, f"missing field 'workspace.{key}'")
        job = data.get("job")
        if not isinstance(job, dict) or not isinstance(job.get("id"), str):
            raise _ProtocolError(bad, "missing field 'job.id'")
        if not isinstance(data.get("host"), dict):
            raise _ProtocolError(bad, "missing field 'host'")
        offered = proto.get("features", [])
        if not isinstance(offered, list):
            raise _ProtocolError(bad, "'protocol.features' is not an array")
        for key in ("config", "inputs", "secrets"):
            data.setdefault(key, {})
            if not isinstance(data[key], dict):
                raise _ProtocolError(bad, f"'{key}' is not an object")
        if data["verb"] != verb:
            raise _ProtocolError(bad, f"request verb '{data['verb']}' does not match argv verb '{verb}'")
        if not any(p["name"] == data["phase"] for p in self.phases):
            raise _ProtocolError(bad, f"phase '{data['phase']}' is not offered by {self.id}")
        return data, version, [f for f in self.features if f in offered]

    def main(self, argv: Optional[List[str]] = None) -> None:
        """Runs the plugin and exits with the protocol exit code."""
        sys.exit(self._main(sys.argv if argv is None else argv))

    def _main(self, argv: List[str]) -> int:
        prog = os.path.basename(argv[0]) if argv else self.id
        cancel = _CancelState()
        # Keep the protocol stream for ourselves (done at import when IMS_PLUGIN was set); anything else
        # written to fd 1 goes to stderr.
        out_fd = _take_stdout()
        channel = _Channel(out_fd, cancel)
        # describe's "ims" (and that of errors before the version is known) is our newest major.
        channel.version = max(self.protocol_versions, default=1)

        verb = argv[1] if len(argv) > 1 else ""
        if verb not in ("describe", "run", "cleanup"):
            return self._usage(prog, f"unknown verb '{verb}'" if verb else "missing verb")
        if not os.environ.get("IMS_PLUGIN"):
            return self._usage(prog, "IMS_PLUGIN is not set (not started by ims)")
        if out_fd < 0:
            sys.stderr.write(f"{prog}: stdout is closed; no protocol stream\n")
            return EXIT_USAGE
        if verb == "describe":
            return EXIT_SUCCESS if channel.emit("describe", self.describe_data()) else EXIT_FAILURE
        if os.isatty(0):
            return self._usage(prog, "stdin is a terminal; the request must be piped in")

        signal.signal(signal.SIGTERM, cancel.on_sigterm)
        # Keep stdin for the request and the cancel watcher; children get /dev/null.
        in_fd = os.dup(0)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        reader = _LineReader(in_fd)
        self._request_version = None

        try:
            try:
                line = reader.readline()
            except ValueError:
                raise _ProtocolError("ims.protocol.bad_request", "the request line exceeds 1 MiB")
            except OSError as exc:
                raise _ProtocolError("ims.protocol.bad_request", f"cannot read the request: {exc}")
            if line is None:
                raise _ProtocolError("ims.protocol.bad_request", "stdin closed before a request line arrived")
            data, version, features = self._check_request(line, verb)
        except _ProtocolError as exc:
            sys.stderr.write(f"ims_plugin: {exc.message}\n")
            # The error's "ims" is the request's major when it named one, else the negotiated one.
            negotiated = os.environ.get("IMS_PROTOCOL", "")
            channel.version = self._request_version or (int(negotiated) if negotiated.isdigit() else channel.version)
            err: Dict[str, Any] = {"code": exc.code, "category": "protocol", "message": exc.message}
            if exc.details is not None:
                err["details"] = exc.details
            channel.emit("error", err)
            return EXIT_PROTOCOL

        channel.version = version
        level = data.get("log_level") or os.environ.get("IMS_LOG_LEVEL")
        channel.min_log_level = _LOG_LEVELS.index(level) if level in _LOG_LEVELS else 0
        channel.emit("hello", {"plugin": self._identity(), "protocol": {"version": version},
                               "features": features})
        threading.Thread(target=_watch_stdin, args=(reader, cancel), name="ims-cancel-watcher",
                         daemon=True).start()

        ctx = Context(data, verb, version, features, channel, cancel)
        handlers = self._run if verb == "run" else self._cleanup
        handler = handlers.get(ctx.phase) or handlers.get(None)
        status: Any = 0
        try:
            if handler is None and verb == "run":
                raise PluginError("x.ims-sdk.no_handler", "internal", f"no run handler for phase '{ctx.phase}'")
            cancel.armed = self.interrupt
            try:
                if cancel.event.is_set():
                    cancel.maybe_raise()  # cancelled before the handler started
                value = handler(ctx) if handler is not None else None
            finally:
                cancel.armed = False
            if channel.terminal is None:
                channel.emit("result", _result_data(value))
        except PluginError as exc:
            channel.emit("error", exc.to_data())
        except SystemExit as exc:
            status = exc.code
        except Exception as exc:  # noqa: BLE001 - any bug becomes an internal error
            traceback.print_exc()
            channel.emit("error", {"code": "x.ims-sdk.unhandled_exception", "category": "internal",
                                   "message": f"{type(exc).__name__}: {exc}"})
        if channel.terminal is None:  # sys.exit() inside a handler
            if status in (0, None):
                channel.emit("result", _result_data(None))
            elif ctx.cancelled:
                channel.emit("error", Cancelled(ctx.cancel_reason).to_data())
            else:
                channel.emit("error", {"code": "x.ims-sdk.unreported_failure", "category": "internal",
                                       "message": f"the plugin exited (status {status}) without reporting an error"})
        return EXIT_SUCCESS if channel.terminal == "result" else EXIT_FAILURE


def _result_data(value: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if value is None:
        value = {}
    if not isinstance(value, dict) or set(value) - {"outputs", "metadata", "facts"}:
        raise PluginError("x.ims-sdk.bad_result", "internal",
                          "a handler must return None or a dict with keys outputs, metadata, facts")
    return {"outputs": value.get("outputs") or {}, "metadata": value.get("metadata") or {},
            "facts": value.get("facts") or {}}


def _watch_stdin(reader: _LineReader, cancel: _CancelState) -> None:
    """Reads the lines after the request: a ``cancel`` message or EOF cancels."""
    while True:
        try:
            line = reader.readline()
        except ValueError:
            continue
        except OSError:
            line = None
        if line is None:
            cancel.set("stdin closed")
            cancel.wake_main_thread()
            return
        try:
            message = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(message, dict) and message.get("type") == "cancel":
            data = message.get("data")
            reason = data.get("reason") if isinstance(data, dict) else None
            cancel.set(reason if isinstance(reason, str) and reason else "cancel message")
            cancel.wake_main_thread()
            return

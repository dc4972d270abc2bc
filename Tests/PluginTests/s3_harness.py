"""Test helpers for the S3 store plugin: a SeaweedFS server (Tests/Support/s3-server), a minimal
protocol driver for plugin executables, and streamed test data.

Standard library only, except `boto3_client`, which imports boto3 for direct checks on the server.
"""
from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
S3_SERVER = os.path.join(REPO, "Tests", "Support", "s3-server")
STORE_S3_DIR = os.path.join(REPO, "Plugins", "store-s3")
STORE_S3 = os.path.join(STORE_S3_DIR, "bin", "ims-store-s3")
SDK = os.path.join(REPO, "sdk", "python", "ims_plugin.py")

MiB = 1 << 20


# ---------------------------------------------------------------------------------------------
# the S3 server
# ---------------------------------------------------------------------------------------------

class S3Server:
    """A SeaweedFS server in DIR, started and stopped with Tests/Support/s3-server."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        self.endpoint = ""
        self.credentials = ""

    def start(self, timeout: float = 90) -> "S3Server":
        out = subprocess.run([S3_SERVER, "start", self.dir], capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"s3-server start failed ({out.returncode}):\n{out.stderr}")
        values = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
        self.endpoint, self.credentials = values["ENDPOINT"], values["CREDENTIALS"]
        return self

    def stop(self) -> None:
        subprocess.run([S3_SERVER, "stop", self.dir], capture_output=True, text=True, timeout=60, check=True)

    def kill(self) -> None:
        """SIGKILL, as a crash would (no graceful shutdown)."""
        with open(os.path.join(self.dir, "server.json")) as f:
            state = json.load(f)
        try:
            os.killpg(state["pgid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.stop()  # waits until the group is gone and records it

    @property
    def creds(self) -> Dict[str, str]:
        with open(self.credentials) as f:
            return json.load(f)

    def client(self):
        return boto3_client(self.endpoint, self.creds)


def boto3_client(endpoint: str, creds: Dict[str, str]):
    import boto3
    from botocore.config import Config
    session = boto3.session.Session(aws_access_key_id=creds["access_key"], aws_secret_access_key=creds["secret_key"],
                                    region_name="us-east-1")
    return session.client("s3", endpoint_url=endpoint,
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


# ---------------------------------------------------------------------------------------------
# driving a plugin over the protocol
# ---------------------------------------------------------------------------------------------

@dataclass
class Call:
    exit_code: int
    messages: List[Dict[str, Any]]
    stderr: str
    seconds: float
    stray: List[str] = field(default_factory=list)

    @property
    def terminal(self) -> Optional[Dict[str, Any]]:
        terminals = [m for m in self.messages if m.get("type") in ("result", "error")]
        return terminals[-1] if terminals else None

    @property
    def result(self) -> Dict[str, Any]:
        t = self.terminal
        assert t is not None and t["type"] == "result", f"expected a result, got {t}\n--- stderr ---\n{self.stderr[-3000:]}"
        assert self.exit_code == 0, f"result with exit code {self.exit_code}"
        return t["data"]

    @property
    def error(self) -> Dict[str, Any]:
        t = self.terminal
        assert t is not None and t["type"] == "error", f"expected an error, got {t}\n--- stderr ---\n{self.stderr[-3000:]}"
        assert self.exit_code != 0, "error with exit code 0"
        return t["data"]

    @property
    def facts(self) -> Dict[str, Any]:
        return self.result.get("facts", {})

    def of_type(self, type_: str) -> List[Dict[str, Any]]:
        return [m["data"] for m in self.messages if m.get("type") == type_]


def workspace(base: str, step: str = "store") -> Dict[str, str]:
    root = os.path.join(base, "ws-" + uuid.uuid4().hex[:8])
    ws = {"root": root}
    for name in ("in", "out", "tmp", "state"):
        ws[name] = os.path.join(root, "phases", step, name)
        os.makedirs(ws[name], exist_ok=True)
    return ws


def request_line(verb: str, ws: Dict[str, str], config: Dict[str, Any], inputs: Optional[Dict[str, Any]] = None,
                 secrets: Optional[Dict[str, str]] = None, deadline_seconds: float = 600) -> bytes:
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + deadline_seconds))
    data = {"verb": verb, "phase": "store", "payload": "store/v1",
            "protocol": {"version": 1, "features": ["cancel.message", "cleanup", "progress", "diagnostic"]},
            "job": {"id": "test-" + uuid.uuid4().hex[:8]}, "deadline": deadline, "workspace": ws,
            "inputs": inputs or {}, "config": config,
            "secrets": {name: {"file": path} for name, path in (secrets or {}).items()},
            "host": {"name": "ims", "version": "0.1.0"}, "log_level": "debug"}
    return (json.dumps({"ims": 1, "type": "request", "data": data}) + "\n").encode()


def run_plugin(entrypoint: str, verb: str, ws: Dict[str, str], config: Dict[str, Any], *,
               inputs: Optional[Dict[str, Any]] = None, secrets: Optional[Dict[str, str]] = None,
               timeout: float = 300, deadline_seconds: float = 600, on_message=None) -> Call:
    """Spawns `entrypoint verb` as the host would (clean environment, own process group), writes
    the request, reads NDJSON until exit. `on_message(msg, proc)` may write a cancel line or act
    on the world; it is called for every message as it arrives."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "TZ": "UTC",
           "HOME": ws["tmp"], "TMPDIR": ws["tmp"], "IMS_PLUGIN": "1", "IMS_PROTOCOL": "1", "IMS_PHASE": "store",
           "IMS_WORKDIR": ws["root"], "IMS_PLUGIN_DIR": os.path.dirname(os.path.dirname(entrypoint)),
           "IMS_LOG_LEVEL": "debug",
           # The plugin must ignore these: credentials only come from the secret file.
           "AWS_ACCESS_KEY_ID": "AKIAHOSTENVIRONMENT0", "AWS_SECRET_ACCESS_KEY": "host-environment-secret",
           "AWS_PROFILE": "does-not-exist", "AWS_DEFAULT_REGION": "eu-west-9"}
    started = time.monotonic()
    proc = subprocess.Popen([entrypoint, verb], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=ws["tmp"], start_new_session=True)
    proc.stdin.write(request_line(verb, ws, config, inputs, secrets, deadline_seconds))
    proc.stdin.flush()
    messages: List[Dict[str, Any]] = []
    stray: List[str] = []
    buf, err = b"", b""
    streams = {proc.stdout.fileno(): "out", proc.stderr.fileno(): "err"}
    try:
        while streams:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                raise TimeoutError(f"plugin did not finish within {timeout} s\n{err.decode(errors='replace')[-3000:]}")
            ready, _, _ = select.select(list(streams), [], [], min(left, 1.0))
            for fd in ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    del streams[fd]
                    continue
                if streams[fd] == "err":
                    err += chunk
                    continue
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    if not line.lstrip().startswith(b"{"):
                        stray.append(line.decode(errors="replace"))
                        continue
                    msg = json.loads(line)
                    messages.append(msg)
                    if on_message is not None:
                        on_message(msg, proc)
        code = proc.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # nothing of the group may outlive the call
        except ProcessLookupError:
            pass
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                f.close()
            except OSError:
                pass
    return Call(code, messages, err.decode(errors="replace"), time.monotonic() - started, stray)


def send_cancel(proc, reason: str = "user", grace: float = 30) -> None:
    try:
        proc.stdin.write((json.dumps({"ims": 1, "type": "cancel",
                                      "data": {"reason": reason, "grace_seconds": grace}}) + "\n").encode())
        proc.stdin.flush()
    except (BrokenPipeError, ValueError):
        pass


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

def make_file(path: str, size: int, seed: int = 0) -> str:
    """Writes `size` pseudo-random bytes (streamed in 1 MiB blocks, never all in memory) and
    returns their sha256."""
    sha = hashlib.sha256()
    block = hashlib.shake_256(f"ims-store-s3-{seed}".encode()).digest(MiB)
    with open(path, "wb") as f:
        written, n = 0, 0
        while written < size:
            # Rotate and salt the block so that no two MiB are equal (no dedup, real ETags).
            rot = (n * 7919) % MiB
            chunk = bytearray(block[rot:] + block[:rot])
            chunk[:8] = n.to_bytes(8, "little")
            chunk = bytes(chunk[:size - written])
            f.write(chunk)
            sha.update(chunk)
            written += len(chunk)
            n += 1
    return sha.hexdigest()


def file_hashes(path: str) -> Dict[str, Any]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MiB), b""):
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest(), "size": size}

"""The Python SDK (sdk/python/ims_plugin.py) on its own, driven as ims drives a plugin: stdout holds protocol lines
only (print() at module level included), and a cancel line, SIGTERM or EOF reaches a handler blocked in time.sleep.
"""
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SDK_DIR = os.path.join(REPO, "sdk", "python")

PLUGIN = """
import sys, time, subprocess
sys.dont_write_bytecode = True
sys.path.insert(0, {sdk!r})
from ims_plugin import Plugin, PluginError
print("printed at module level, after the import")

plugin = Plugin("org.test.sdk", "1.0.0", phases=[("test", ["custom/v1"])],
                features=["cancel.message", "cleanup"], interrupt={interrupt})


@plugin.run("test")
def run(ctx):
    print("printed by the handler")
    subprocess.run(["echo", "echoed by a child"], check=True)
    ctx.log("info", "going to sleep")
    try:
        time.sleep(ctx.config.get("sleep", 0))
    finally:
        print("finally ran", file=sys.stderr)
    return {{"facts": {{"slept": True}}}}


if __name__ == "__main__":
    plugin.main()
"""


def request(tmp_path, config):
    ws = {name: str(tmp_path / "ws" / name) for name in ("in", "out", "tmp", "state")}
    for path in ws.values():
        os.makedirs(path, exist_ok=True)
    ws["root"] = str(tmp_path / "ws")
    data = {"verb": "run", "phase": "test", "payload": "custom/v1",
            "protocol": {"version": 1, "features": ["cancel.message", "cleanup"]}, "job": {"id": "job-1"},
            "deadline": "2099-01-01T00:00:00Z", "workspace": ws, "inputs": {}, "config": config, "secrets": {},
            "host": {"name": "ims", "version": "0.1.0"}, "log_level": "info"}
    return (json.dumps({"ims": 1, "type": "request", "data": data}) + "\n").encode()


def start(tmp_path, config, interrupt=True):
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN.format(sdk=SDK_DIR, interrupt=interrupt))
    env = {"PATH": "/usr/bin:/bin", "IMS_PLUGIN": "1", "IMS_PROTOCOL": "1", "LANG": "C.UTF-8"}
    proc = subprocess.Popen([sys.executable, str(script), "run"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    proc.stdin.write(request(tmp_path, config))
    proc.stdin.flush()
    return proc


def wait_for_line(proc, needle, timeout=10.0):
    """Reads stdout lines until one contains needle; returns the lines read."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if needle.encode() in line:
                return lines
    raise AssertionError(f"no line with {needle!r} within {timeout} s: {lines!r}")


def finish(proc, lines, timeout):
    out, err = proc.communicate(timeout=timeout)
    lines = lines + out.splitlines(keepends=True)
    messages = [json.loads(line) for line in lines if line.strip()]  # every stdout line is JSON
    return messages, err.decode(), proc.returncode


def test_print_at_module_level_and_in_handler_goes_to_stderr(tmp_path):
    proc = start(tmp_path, {"sleep": 0})
    lines = wait_for_line(proc, '"result"')  # stdin stays open until then: EOF would cancel the run
    out, err = proc.communicate(timeout=20)
    stdout_lines = b"".join(lines + [out]).decode().splitlines()
    assert stdout_lines, err
    for line in stdout_lines:
        assert line.startswith("{"), f"stray stdout line {line!r}; stderr: {err.decode()}"
    messages = [json.loads(line) for line in stdout_lines]
    assert [m["type"] for m in messages] == ["hello", "log", "result"]
    stderr = err.decode()
    for text in ("printed at module level, after the import", "printed by the handler", "echoed by a child"):
        assert text in stderr
    assert proc.returncode == 0


@pytest.mark.parametrize("stop", ["cancel message", "SIGTERM", "EOF"])
def test_a_stop_interrupts_time_sleep(tmp_path, stop):
    proc = start(tmp_path, {"sleep": 60})
    lines = wait_for_line(proc, "going to sleep")
    time.sleep(0.3)  # well inside time.sleep(60)
    started = time.monotonic()
    if stop == "cancel message":
        proc.stdin.write(b'{"ims":1,"type":"cancel","data":{"reason":"user","grace_seconds":5}}\n')
        proc.stdin.flush()
    elif stop == "SIGTERM":
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.stdin.close()
        proc.stdin = None  # so that communicate() does not flush it
    try:
        messages, stderr, status = finish(proc, lines, timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the plugin was still in time.sleep 5 s after the {stop}")
    elapsed = time.monotonic() - started
    terminal = messages[-1]
    assert terminal["type"] == "error", messages
    assert terminal["data"]["code"] == "ims.cancelled"
    assert terminal["data"]["category"] == "cancelled"
    assert status == 1
    assert elapsed < 3, f"took {elapsed:.1f} s"
    assert "finally ran" in stderr  # the handler's finally block ran: the exception unwound it
    if stop == "cancel message":
        assert "user" in terminal["data"]["message"]


def test_interrupt_false_leaves_blocking_calls_alone(tmp_path):
    proc = start(tmp_path, {"sleep": 2}, interrupt=False)
    lines = wait_for_line(proc, "going to sleep")
    started = time.monotonic()
    proc.stdin.write(b'{"ims":1,"type":"cancel","data":{"reason":"user"}}\n')
    proc.stdin.flush()
    messages, _, status = finish(proc, lines, timeout=10)
    # The sleep ran to its end; the handler then returned normally, as before (polling is up to the plugin).
    assert time.monotonic() - started > 1.5
    assert messages[-1]["type"] == "result"
    assert status == 0

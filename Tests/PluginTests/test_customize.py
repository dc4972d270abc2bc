"""customize-chroot: a script run inside a built image root, and a person's session ended by IMS's
signal files (complete / failed), with cancel and cleanup."""
import os
import threading
import time

import rpm_harness as h


def built_root(label):
    build = h.full_build("zypper")
    assert build.ok, build.describe()
    ws = h.Workspace(f"customize-{label}")
    root = h.copy_root(build.result["outputs"]["rootfs"]["path"], ws, "customize")
    return ws, root


def customize(ws, root, verb="run", cancel_after=None, timeout=120, **config):
    return h.run_plugin(h.CUSTOMIZE, "customize", "customize/v1", workspace=ws, verb=verb,
                        inputs={"rootfs": {"path": root, "kind": "dir"}}, config=config,
                        cancel_after=cancel_after, timeout=timeout)


def write_script(ws, text):
    path = os.path.join(ws.root, "site-customize.sh")
    with open(path, "w") as f:
        f.write(text)
    return path


def mounts_below(path):
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path.rstrip("/") + "/")]


def test_script_runs_inside_the_image():
    ws, root = built_root("script")
    script = write_script(ws, "#!/bin/sh\nset -e\necho \"job $IMS_JOB_ID site $SITE\" > /etc/site-customized\n"
                              "test -r /proc/self/status && echo proc-ok >> /etc/site-customized\n"
                              "test -c /dev/null && echo dev-ok >> /etc/site-customized\necho hello from the image\n")
    run = customize(ws, root, mode="script", script=script, script_env={"SITE": "lab"})
    assert run.ok, run.describe()
    with open(os.path.join(root, "etc/site-customized")) as f:
        lines = f.read().splitlines()
    assert lines == [f"job {os.path.basename(ws.root)} site lab", "proc-ok", "dev-ok"]
    assert any("hello from the image" in m.get("msg", "") for m in run.of_type("log"))
    assert run.result["facts"]["mode"] == "script" and run.result["outputs"]["rootfs"]["path"] == root
    # Nothing is left behind: the script copy, /proc mount, device nodes the plugin made.
    assert not [n for n in os.listdir(os.path.join(root, "tmp")) if n.startswith("ims-customize-")]
    assert not mounts_below(root)


def test_failing_script_names_the_script_and_status():
    ws, root = built_root("script-fails")
    script = write_script(ws, "#!/bin/sh\necho about to fail\nexit 7\n")
    run = customize(ws, root, mode="script", script=script)
    assert not run.ok
    error = run.error
    assert (error["code"], error["category"]) == ("customize.script_failed", "user"), error
    assert error["details"]["exit_code"] == 7 and "about to fail" in error["message"]
    assert not mounts_below(root)


def test_interpreter_missing_from_the_image():
    ws, root = built_root("no-interpreter")
    script = write_script(ws, "#!/usr/bin/python3.99\nprint(1)\n")
    run = customize(ws, root, mode="script", script=script)
    assert run.error["code"] == "customize.no_interpreter" and "/usr/bin/python3.99" in run.error["message"]


def test_bad_config_is_refused():
    ws, root = built_root("bad-config")
    run = h.run_plugin(
        h.CUSTOMIZE, "customize", "customize/v1", workspace=ws, inputs={"rootfs": {"path": root, "kind": "dir"}},
        config={"mode": "ansible"}, check_request=False)
    assert (run.error["code"], run.error["category"]) == ("customize.invalid_config", "config")
    run = customize(ws, root, mode="script", script="/nonexistent/site.sh")
    assert run.error["code"] == "customize.missing_script"


def signal_later(path, delay):
    def touch():
        time.sleep(delay)
        open(path, "w").close()
    threading.Thread(target=touch, daemon=True).start()


def test_session_ends_with_complete_in_the_workspace():
    ws, root = built_root("session")
    signal_later(os.path.join(ws.root, "complete"), 1.5)
    run = customize(ws, root, mode="chroot", poll_seconds=0.2)
    assert run.ok, run.describe()
    assert run.result["facts"]["waited_seconds"] >= 1.0
    assert not os.path.exists(os.path.join(ws.root, "complete"))
    logs = " ".join(m.get("msg", "") for m in run.of_type("log"))
    assert f"chroot {root}" in logs and not run.of_type("session")  # no key: a local session, no sshd
    with open(os.path.join(ws.root, "README")) as f:
        assert "ims jobs complete" in f.read()


def test_jailed_session_ends_with_tmp_failed_inside_the_root():
    ws, root = built_root("jail-failed")
    signal_later(os.path.join(root, "tmp", "failed"), 1.0)
    run = customize(ws, root, mode="jail", poll_seconds=0.2)
    assert (run.error["code"], run.error["category"]) == ("customize.user_failed", "user"), run.describe()
    assert not os.path.exists(os.path.join(root, "tmp", "failed"))


def test_stale_signals_are_removed_before_the_session():
    ws, root = built_root("stale")
    open(os.path.join(ws.root, "complete"), "w").close()  # left over: must not end the new session at once
    run = customize(ws, root, mode="chroot", poll_seconds=0.2, cancel_after=2.0)
    assert run.error["code"] == "ims.cancelled", run.describe()
    assert run.seconds < 15


def test_cancel_during_a_script_stops_it_and_cleanup_is_idempotent():
    ws, root = built_root("cancel")
    script = write_script(ws, "#!/bin/sh\nsleep 120\n")
    run = customize(ws, root, mode="script", script=script, cancel_after=2.0)
    assert run.error["code"] == "ims.cancelled", run.describe()
    assert run.seconds < 20, "the plugin did not stop promptly"
    assert not mounts_below(root)
    for _ in range(2):
        cleanup = customize(ws, root, verb="cleanup", mode="script", script=script)
        assert cleanup.ok, cleanup.describe()

"""customize-chroot over SSH: a real sshd per job in a bubblewrap sandbox, logged into with the real OpenSSH
client and the job's key. Jailed (ChrootDirectory: only the image is visible) and unjailed (the sandbox: the
image root read-write at /mnt/image/image-root, no host path writable), the signal files, refused logins,
DKMS mounts that never outlive the session, and a plugin killed mid-session."""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

import rpm_harness as h

pytestmark = pytest.mark.skipif(not (os.access("/usr/sbin/sshd", os.X_OK) and shutil.which("bwrap")
                                     and shutil.which("ssh")),
                                reason="needs openssh-server, openssh-client and bubblewrap (scripts/install-deps)")

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]


def built_root(label):
    build = h.full_build("zypper")
    assert build.ok, build.describe()
    ws = h.Workspace(f"ssh-{label}")
    root = h.copy_root(build.result["outputs"]["rootfs"]["path"], ws, "customize")
    return ws, root


def keypair(ws, name="job"):
    path = os.path.join(ws.root, f"{name}-key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path], check=True)
    with open(path + ".pub") as f:
        return path, f.read().strip()


class Session:
    """The plugin running in a thread; the port from the README it writes once sshd listens."""

    def __init__(self, ws, root, **config):
        self.ws, self.root, self.run, self.failure = ws, root, None, None
        config.setdefault("poll_seconds", 0.1)
        if "customer_access_host" not in config.get("ssh", {}):
            config["ssh"] = {"listen_address": "127.0.0.1", **config.get("ssh", {})}
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, args=(config,), daemon=True)
        self.thread.start()
        self.port = self._wait_port()
        self.ready_seconds = time.monotonic() - self.started

    def _run(self, config):
        try:
            self.run = self._invoke(config)
        except AssertionError as exc:  # the protocol check of a killed plugin
            self.failure = exc

    def _invoke(self, config):
        return h.run_plugin(h.CUSTOMIZE, "customize", "customize/v1", workspace=self.ws, timeout=120,
                                inputs={"rootfs": {"path": self.root, "kind": "dir"}}, config=config)

    def _wait_port(self):
        readme = os.path.join(self.ws.root, "README")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.thread.is_alive(), self.run.describe() if self.run else self.failure
            if os.path.exists(readme):
                match = re.search(r"-p (\d+) root@", open(readme).read())
                if match:
                    return int(match.group(1))
            time.sleep(0.02)
        raise AssertionError("the session did not come up within 30 s")

    def ssh(self, key, command, user="root", extra=()):
        return subprocess.run(["ssh", *SSH_OPTS, *extra, "-i", key, "-p", str(self.port), f"{user}@127.0.0.1", command],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)

    def finish(self, timeout=60, killed=False):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the plugin did not end"
        if killed:
            assert self.failure is not None and "exit -9" in str(self.failure), self.failure
            return None
        assert self.failure is None, self.failure
        return self.run


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def mounts_below(path):
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path.rstrip("/") + "/")]


def test_jailed_session_ssh_scp_sftp_and_tmp_complete():
    ws, root = built_root("jail")
    key, public = keypair(ws)
    token = uuid.uuid4().hex
    planted = os.path.join("/tmp", f"ims-host-secret-{token}")
    with open(planted, "w") as f:
        f.write(token)
    top = os.stat(root)
    try:
        s = Session(ws, root, mode="jail", ssh={"public_key": public}, script_env={"IMS_ARCH": "x86_64"})
        assert s.ready_seconds < 10
        r = s.ssh(key, "echo changed-over-ssh > /etc/ims-ssh-change; ls /; env | grep ^IMS_ | sort; "
                       f"cat {planted} || echo no-host-file")
        assert r.returncode == 0, r.stderr
        listing = r.stdout.split()
        assert "usr" in listing and "etc" in listing
        assert "work" not in listing and "mnt-image" not in listing  # the host's and the sandbox's are not seen
        assert "no-host-file" in r.stdout and token not in r.stdout
        assert f"IMS_JOB_ID={os.path.basename(ws.root)}" in r.stdout and "IMS_DKMS_ENABLED=false" in r.stdout
        assert "IMS_ARCH=x86_64" in r.stdout
        # scp and sftp land in the image root.
        local = os.path.join(ws.root, "payload.txt")
        with open(local, "w") as f:
            f.write("scp-ok\n")
        scp = subprocess.run(["scp", *SSH_OPTS, "-i", key, "-P", str(s.port), local, "root@127.0.0.1:/root/payload.txt"],
                             capture_output=True, text=True, timeout=60)
        assert scp.returncode == 0, scp.stderr
        sftp = subprocess.run(["sftp", *SSH_OPTS, "-i", key, "-P", str(s.port), "-b", "-", "root@127.0.0.1"],
                              input="mkdir /srv/sftp-dir\nput " + local + " /srv/sftp-dir/put.txt\nls /srv\n",
                              capture_output=True, text=True, timeout=60)
        assert sftp.returncode == 0, sftp.stderr
        assert open(os.path.join(root, "root/payload.txt")).read() == "scp-ok\n"
        assert os.path.isfile(os.path.join(root, "srv/sftp-dir/put.txt"))
        # Refused: another key, a password or keyboard-interactive login, another user.
        other, _ = keypair(ws, "other")
        assert s.ssh(other, "true").returncode == 255
        pw = s.ssh(key, "true", extra=["-o", "PreferredAuthentications=password,keyboard-interactive",
                                       "-o", "PubkeyAuthentication=no"])
        assert pw.returncode == 255 and "Permission denied" in pw.stderr
        assert s.ssh(key, "true", user="nobody").returncode == 255
        assert s.ssh(key, "touch /tmp/complete").returncode == 0
        run = s.finish()
    finally:
        os.unlink(planted)
    assert run.ok, run.describe()
    assert open(os.path.join(root, "etc/ims-ssh-change")).read() == "changed-over-ssh\n"
    assert not os.path.exists(os.path.join(root, "tmp/complete"))
    assert run.result["facts"]["ssh_logins"] >= 3 and run.result["facts"]["jail"] is True
    sessions = run.of_type("session")
    assert [m["status"] for m in sessions][:2] == ["pending", "established"], sessions
    info = sessions[0]["connection_info"]
    assert info["customer_access"] == {"host": "127.0.0.1", "port": s.port} and info["cluster.local"]["port"] == s.port
    logs = " ".join(run.logs())
    assert "Accepted publickey for root" in logs
    assert not port_open(s.port), "sshd outlived the session"
    after = os.stat(root)
    assert (after.st_uid, after.st_gid, after.st_mode) == (top.st_uid, top.st_gid, top.st_mode)
    assert not os.path.exists(os.path.join(run.workspace["state"], "sshd")), "the job's host key was left behind"


def test_unjailed_session_is_a_sandbox_and_complete_packages():
    ws, root = built_root("sandbox")
    key, public = keypair(ws)
    s = Session(ws, root, mode="chroot", ssh={"public_key": public, "customer_access_host": "ims.example.net",
                                              "cluster_local_host": "ims.local", "listen_address": "127.0.0.1"})
    probe = f"ims-probe-{uuid.uuid4().hex[:8]}"
    r = s.ssh(key, "chroot /mnt/image/image-root /bin/sh -c 'echo in-chroot > /etc/ims-unjailed'; "
                   f"for d in /usr /etc /var /opt /root /; do touch $d/{probe} 2>/dev/null && echo wrote $d; done; "
                   f"echo tmp > /tmp/{probe}; ls /mnt/image; mknod /tmp/disk b 8 0 2>/dev/null && echo mknod-ok; "
                   "mount -t tmpfs none /mnt 2>/dev/null && echo mount-ok; test -e /work && echo sees-work; id -u")
    assert r.returncode == 0, r.stderr
    assert "mknod-ok" not in r.stdout and "mount-ok" not in r.stdout and "sees-work" not in r.stdout
    assert "image-root" in r.stdout.split() and r.stdout.split()[-1] == "0"
    for d in ("/usr", "/etc", "/var", "/opt", "/root", "/", "/tmp"):
        assert not os.path.exists(os.path.join(d, probe)), f"the sandbox wrote the host's {d}"
    # Only the sandbox's private /root (a tmpfs) and /tmp take writes; its own root is read-only.
    assert [line for line in r.stdout.splitlines() if line.startswith("wrote ")] == ["wrote /root"], r.stdout
    assert s.ssh(key, "touch /mnt/image/complete").returncode == 0
    run = s.finish()
    assert run.ok, run.describe()
    assert open(os.path.join(root, "etc/ims-unjailed")).read() == "in-chroot\n"
    info = run.of_type("session")[0]["connection_info"]
    assert info == {"customer_access": {"host": "ims.example.net", "port": s.port},
                    "cluster.local": {"host": "ims.local", "port": s.port}}


def test_failed_signal_aborts_and_two_sessions_do_not_share_keys():
    ws1, root1 = built_root("two-a")
    ws2, root2 = built_root("two-b")
    key1, public1 = keypair(ws1, "a")
    key2, public2 = keypair(ws2, "b")
    a = Session(ws1, root1, mode="jail", ssh={"public_key": public1})
    b = Session(ws2, root2, mode="chroot", ssh={"public_key": public2})
    assert a.port != b.port
    assert a.ssh(key2, "true").returncode == 255 and b.ssh(key1, "true").returncode == 255
    assert a.ssh(key1, "touch /tmp/failed").returncode == 0
    assert b.ssh(key2, "touch /mnt/image/failed").returncode == 0
    for s in (a, b):
        run = s.finish()
        assert run.error["code"] == "customize.user_failed", run.describe()
        assert not port_open(s.port)


def test_site_port_range_is_used():
    ws, root = built_root("range")
    key, public = keypair(ws)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        first = busy.getsockname()[1]
        s = Session(ws, root, mode="jail", ssh={"public_key": public, "port_range": [first, first + 20]})
        assert first < s.port <= first + 20
    assert s.ssh(key, "true").returncode == 0
    # What `ims jobs complete ID` writes ends the session and its sshd too.
    open(os.path.join(ws.root, "complete"), "w").close()
    assert s.finish().ok
    assert not port_open(s.port)


def test_listen_address_defaults_to_the_customer_access_address():
    ws, root = built_root("listen-default")
    key, public = keypair(ws)
    s = Session(ws, root, mode="chroot", ssh={"public_key": public, "customer_access_host": "127.0.0.1"})
    assert s.ssh(key, "touch /mnt/image/complete").returncode == 0
    run = s.finish()
    assert run.ok, run.describe()
    assert f"Server listening on 127.0.0.1 port {s.port}" in " ".join(run.logs("sshd"))


def test_dkms_mounts_live_in_the_session_only_and_a_killed_plugin_leaves_nothing():
    ws, root = built_root("dkms")
    key, public = keypair(ws)
    s = Session(ws, root, mode="jail", require_dkms=True, ssh={"public_key": public})
    r = s.ssh(key, "test -r /proc/self/status && echo proc-ok; test -d /sys/kernel && echo sys-ok; "
                   "test -c /dev/null && echo dev-ok; echo $IMS_DKMS_ENABLED")
    assert r.stdout.split() == ["proc-ok", "sys-ok", "dev-ok", "true"], (r.stdout, r.stderr)
    assert not mounts_below(root), "the session's mounts are visible on the host"
    # kill -9 the plugin mid-session: sshd and its sandbox go with it, and no mount is left.
    plugin = [p for p in os.listdir("/proc") if p.isdigit() and _is_plugin(int(p), ws.root)]
    assert len(plugin) == 1, plugin
    os.kill(int(plugin[0]), signal.SIGKILL)
    s.finish(killed=True)
    deadline = time.monotonic() + 10
    while port_open(s.port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not port_open(s.port), "sshd outlived the killed plugin"
    assert not mounts_below(root) and not mounts_below(ws.root)
    cleanup = h.run_plugin(h.CUSTOMIZE, "customize", "customize/v1", workspace=ws, verb="cleanup",
                           inputs={"rootfs": {"path": root, "kind": "dir"}}, config={"mode": "jail"})
    assert cleanup.ok, cleanup.describe()
    assert not os.path.exists(os.path.join(cleanup.workspace["state"], "sshd"))


def _is_plugin(pid, workspace):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except OSError:
        return False
    return f"IMS_WORKDIR={workspace}".encode() in env and b"ims-customize-chroot" in cmd and b"bwrap" not in cmd


@pytest.mark.skipif(not shutil.which("ansible-playbook"), reason="needs ansible-core (pip install ansible-core)")
def test_cfs_way_ansible_playbook_against_the_jailed_session():
    """As CFS does: a playbook against the session's host and port, then `touch /tmp/complete`. The image has no
    Python, so the play uses the raw module (CFS's image plays need a Python in the image for the others)."""
    ws, root = built_root("ansible")
    key, public = keypair(ws)
    s = Session(ws, root, mode="jail", ssh={"public_key": public})
    inventory = os.path.join(ws.root, "inventory.ini")
    with open(inventory, "w") as f:
        f.write(f"image ansible_host=127.0.0.1 ansible_port={s.port} ansible_user=root "
                f"ansible_ssh_private_key_file={key}\n")
    playbook = os.path.join(ws.root, "site.yml")
    with open(playbook, "w") as f:
        f.write("- hosts: all\n  gather_facts: false\n  tasks:\n"
                "    - ansible.builtin.raw: echo \"configured by ansible for job $IMS_JOB_ID\" > /etc/ims-ansible\n"
                "    - ansible.builtin.raw: touch /tmp/complete\n")
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_LOCAL_TEMP": os.path.join(ws.root, "ansible"),
           "ANSIBLE_SSH_ARGS": "-o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes", "ANSIBLE_NOCOLOR": "1"}
    play = subprocess.run(["ansible-playbook", "-i", inventory, playbook], capture_output=True, text=True, env=env,
                          timeout=120)
    assert play.returncode == 0, play.stdout + play.stderr
    run = s.finish()
    assert run.ok, run.describe()
    with open(os.path.join(root, "etc/ims-ansible")) as f:
        assert f.read() == f"configured by ansible for job {os.path.basename(ws.root)}\n"


def test_jail_on_a_group_writable_image_top_is_fixed_for_the_session_and_restored():
    ws, root = built_root("top-mode")
    key, public = keypair(ws)
    os.chmod(root, 0o775)  # sshd refuses such a ChrootDirectory
    s = Session(ws, root, mode="jail", ssh={"public_key": public})
    r = s.ssh(key, "stat -c %a / ; touch /tmp/complete")
    assert r.returncode == 0 and r.stdout.split() == ["755"], (r.stdout, r.stderr)
    run = s.finish()
    assert run.ok, run.describe()
    assert oct(os.stat(root).st_mode & 0o7777) == oct(0o775), "the image's own mode was not restored"
    assert not os.path.exists(os.path.join(run.workspace["state"], "session-restore.json"))

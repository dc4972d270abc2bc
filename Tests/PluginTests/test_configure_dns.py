"""configure-dns: modes image, swap and restore, symlinked resolv.conf, cleanup."""
import json
import os

import pytest

import rpm_harness as h


def new_root(label, resolv=None, link=None, hosts="127.0.0.1\tlocalhost\n"):
    """A small tree: /etc with hosts and either a resolv.conf file or a resolv.conf symlink."""
    ws = h.Workspace(f"dns-{label}")
    root = os.path.join(ws.step("configure-dns")["in"], "rootfs")
    os.makedirs(os.path.join(root, "etc"))
    if hosts is not None:
        with open(os.path.join(root, "etc", "hosts"), "w") as f:
            f.write(hosts)
    if resolv is not None:
        with open(os.path.join(root, "etc", "resolv.conf"), "w") as f:
            f.write(resolv)
        os.chmod(os.path.join(root, "etc", "resolv.conf"), 0o640)
    if link is not None:
        os.symlink(link, os.path.join(root, "etc", "resolv.conf"))
    return ws, root


def dns(ws, root, step="configure-dns", verb="run", check_request=True, **config):
    return h.run_plugin(h.CONFIGURE_DNS, "configure-dns", "configure-dns/v1", workspace=ws, step=step, verb=verb,
                        inputs={"rootfs": {"path": root, "kind": "dir"}}, config=config,
                        check_request=check_request)


def read(root, path):
    with open(os.path.join(root, path.lstrip("/"))) as f:
        return f.read()


def test_image_mode_writes_resolv_conf_and_hosts():
    ws, root = new_root("image", resolv="nameserver 192.0.2.1\n")
    config = {"nameservers": ["10.92.100.225", "fd00::53"], "search": ["nmn", "hmn.example.com"],
              "options": ["ndots:2", "rotate"], "hosts": [{"ip": "10.92.100.71", "names": ["api-gw-service-nmn.local", "api"]}]}
    for _ in range(2):  # idempotent: the hosts entry is added once
        run = dns(ws, root, **config)
        assert run.ok, run.describe()
    text = read(root, "/etc/resolv.conf")
    assert "search nmn hmn.example.com\nnameserver 10.92.100.225\nnameserver fd00::53\noptions ndots:2 rotate\n" in text
    assert read(root, "/etc/hosts") == "127.0.0.1\tlocalhost\n10.92.100.71\tapi-gw-service-nmn.local api\n"
    assert run.result["outputs"]["rootfs"] == {"path": root, "kind": "dir"}


def test_image_mode_on_a_built_root():
    build = h.full_build("zypper")
    assert build.ok, build.describe()
    ws = h.Workspace("dns-built")
    root = h.copy_root(build.result["outputs"]["rootfs"]["path"], ws, "configure-dns")
    run = dns(ws, root, nameservers=["10.1.1.1"])
    assert run.ok, run.describe()
    assert "nameserver 10.1.1.1\n" in read(root, "/etc/resolv.conf")


def test_a_symlinked_resolv_conf_is_replaced_not_written_through():
    canary = os.path.join(h.WORK, "host-canary-resolv.conf")
    with open(canary, "w") as f:
        f.write("host resolver\n")
    ws, root = new_root("symlink", link=canary)  # absolute: would be a host path if followed
    run = dns(ws, root, nameservers=["10.1.1.1"])
    assert run.ok, run.describe()
    assert read("/", canary) == "host resolver\n", "configure-dns wrote through the symlink onto the host"
    path = os.path.join(root, "etc", "resolv.conf")
    assert not os.path.islink(path) and "nameserver 10.1.1.1" in read(root, "/etc/resolv.conf")


def test_swap_and_restore_round_trip_with_a_symlink():
    ws, root = new_root("swap-link", link="../run/netconfig/resolv.conf")
    run = dns(ws, root, step="dns-swap", mode="swap", nameservers=["10.2.2.2"], search=["build.local"],
              hosts=[{"ip": "10.2.2.3", "names": ["mirror.build.local"]}])
    assert run.ok, run.describe()
    assert "nameserver 10.2.2.2" in read(root, "/etc/resolv.conf")
    assert "10.2.2.3\tmirror.build.local" in read(root, "/etc/hosts")
    saved = json.loads(read(root, "/var/lib/ims/configure-dns/saved.json"))
    assert saved["files"]["/etc/resolv.conf"] == {"kind": "symlink", "target": "../run/netconfig/resolv.conf"}
    # a second swap keeps the first original
    again = dns(ws, root, step="dns-swap", mode="swap", nameservers=["10.9.9.9"])
    assert again.ok and "nameserver 10.9.9.9" in read(root, "/etc/resolv.conf")
    # restore runs as another step (its own state directory) and finds the original in the tree
    restored = dns(ws, root, step="dns-restore", mode="restore")
    assert restored.ok, restored.describe()
    assert os.readlink(os.path.join(root, "etc", "resolv.conf")) == "../run/netconfig/resolv.conf"
    assert read(root, "/etc/hosts") == "127.0.0.1\tlocalhost\n"
    assert not os.path.exists(os.path.join(root, "var", "lib", "ims")), "the saved copy was left in the tree"
    assert restored.result["facts"]["restored"] == ["/etc/resolv.conf", "/etc/hosts"]
    # idempotent
    twice = dns(ws, root, step="dns-restore", mode="restore")
    assert twice.ok and twice.result["facts"]["restored"] == []


def test_swap_restores_a_regular_file_with_its_mode():
    ws, root = new_root("swap-file", resolv="nameserver 192.0.2.53\n")
    assert dns(ws, root, step="swap", mode="swap", nameservers=["10.3.3.3"]).ok
    assert dns(ws, root, step="restore", mode="restore").ok
    assert read(root, "/etc/resolv.conf") == "nameserver 192.0.2.53\n"
    assert os.stat(os.path.join(root, "etc", "resolv.conf")).st_mode & 0o777 == 0o640


def test_swap_without_nameservers_uses_the_host_resolv_conf_and_restore_removes_it():
    ws, root = new_root("swap-host")  # no resolv.conf in the image
    run = dns(ws, root, step="swap", mode="swap", check_request=False)
    assert run.ok, run.describe()
    assert run.result["facts"]["resolv_conf_source"] == "host"
    with open("/etc/resolv.conf") as f:
        assert f.read() in read(root, "/etc/resolv.conf")
    assert dns(ws, root, step="restore", mode="restore").ok
    assert not os.path.lexists(os.path.join(root, "etc", "resolv.conf"))


def test_restore_with_nothing_saved_succeeds():
    ws, root = new_root("restore-nothing", resolv="nameserver 192.0.2.1\n")
    run = dns(ws, root, mode="restore")
    assert run.ok and run.result["facts"]["restored"] == []
    assert read(root, "/etc/resolv.conf") == "nameserver 192.0.2.1\n"


def test_cleanup_restores_an_incomplete_swap_but_not_a_completed_one():
    ws, root = new_root("cleanup", resolv="nameserver 192.0.2.1\n")
    assert dns(ws, root, step="swap", mode="swap", nameservers=["10.4.4.4"]).ok
    # the host may call cleanup after a successful run: a completed swap stays
    assert dns(ws, root, step="swap", verb="cleanup", mode="swap").ok
    assert "nameserver 10.4.4.4" in read(root, "/etc/resolv.conf")
    # a swap that did not complete (crashed between writing state and finishing) is undone
    state = os.path.join(ws.step("swap")["state"], "configure-dns.json")
    with open(state) as f:
        data = json.load(f)
    data["status"] = "swapping"
    with open(state, "w") as f:
        json.dump(data, f)
    for _ in range(2):
        assert dns(ws, root, step="swap", verb="cleanup", mode="swap").ok
        assert read(root, "/etc/resolv.conf") == "nameserver 192.0.2.1\n"


@pytest.mark.parametrize("config,pointer", [({"nameservers": ["not-an-ip"]}, "/nameservers/0"),
                                            ({"nameservers": ["10.0.0.1"], "search": ["bad domain"]}, "/search/0"),
                                            ({}, "/nameservers"),
                                            ({"nameservers": ["10.0.0.1"], "hosts": [{"ip": "10.0.0.2"}]}, "/hosts/0/names")])
def test_invalid_config(config, pointer):
    ws, root = new_root("invalid")
    run = dns(ws, root, check_request=False, **config)
    assert (run.error["code"], run.error["category"], run.error["path"]) == ("configure-dns.invalid_config", "config",
                                                                            pointer)

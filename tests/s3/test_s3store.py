"""S3Store against a real SeaweedFS server: multipart upload with checks, streaming and range
reads, temporary copies, deletion, listing, and the errors a wrong key, a wrong secret, a
missing bucket or an unreachable server give."""
from __future__ import annotations

import hashlib
import io
import logging
import random
import time
import urllib.parse

import pytest
import urllib3
from minio import Minio

from archive.errors import IntegrityError, NotFound, StorageError, StorageUnavailable
from archive.s3store import MiB, S3Store
from archive.store import object_key

ACCESS_KEY, SECRET_KEY = "tcd-test", "tcd-test-secret-5d1c9e"   # as tests/s3/conftest.py starts weed


class RecordingPool(urllib3.PoolManager):
    """The real HTTP client, noting each request's method, path and Range header."""

    def __init__(self):
        super().__init__(maxsize=5, retries=False)
        self.requests: list[tuple[str, str, str | None]] = []

    def urlopen(self, method, url, redirect=True, **kw):
        headers = kw.get("headers") or {}
        self.requests.append((method, urllib.parse.urlsplit(url).path, headers.get("Range")))
        return super().urlopen(method, url, redirect=redirect, **kw)


def make_store(seaweed, bucket, tmp_path, **kw) -> S3Store:
    return S3Store(seaweed.endpoint, ACCESS_KEY, SECRET_KEY, bucket, secure=False,
                   part_size=5 * MiB, tmp_dir=tmp_path / "s3tmp", **kw)


def watched_store_holding(seaweed, bucket, tmp_path, blob) -> tuple[S3Store, RecordingPool, str]:
    """A store whose HTTP requests are noted, holding `blob` (its SHA-256 returned); the notes
    start after the upload."""
    pool = RecordingPool()
    store = make_store(seaweed, bucket, tmp_path, http_client=pool)
    sha = store.put_file(blob).sha256
    pool.requests.clear()
    return store, pool, sha


@pytest.fixture
def blob(tmp_path):
    """12 MiB and a few bytes of seeded noise: three parts of 5 MiB."""
    path = tmp_path / "blob.bin"
    path.write_bytes(random.Random(42).randbytes(12 * MiB + 7))
    return path


def test_put_file_uploads_in_parts_checks_and_keeps_the_sha256(seaweed, bucket, tmp_path, blob):
    store = make_store(seaweed, bucket, tmp_path)
    data = blob.read_bytes()
    seen = []
    stored = store.put_file(blob, progress=seen.append)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data) == sum(seen)
    stat = seaweed.client().stat_object(bucket, object_key(stored.sha256))
    assert stat.size == len(data)
    assert stat.metadata["x-amz-meta-sha256"] == stored.sha256
    assert stat.etag.endswith("-3"), "a 12 MiB file in 5 MiB parts is a three-part upload"
    assert store.exists(stored.sha256) and store.size(stored.sha256) == len(data)
    assert list(store.keys()) == [stored.sha256]
    assert store.rehash(stored.sha256) == stored.sha256


def test_storing_the_same_object_again_uploads_nothing(seaweed, bucket, tmp_path, blob):
    pool = RecordingPool()
    store = make_store(seaweed, bucket, tmp_path, http_client=pool)
    first = store.put_file(blob)
    pool.requests.clear()
    assert store.put_file(blob, first.sha256) == first
    assert {method for method, _, _ in pool.requests} == {"HEAD"}


def test_a_file_that_is_not_what_was_announced_is_refused_and_not_kept(seaweed, bucket, tmp_path, blob):
    store = make_store(seaweed, bucket, tmp_path)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(IntegrityError, match="reads back with a SHA-256 other than .*; it was removed"):
        store.put_file(blob, wrong)
    assert not store.exists(wrong)
    assert list(store.keys()) == []


def test_a_file_cut_short_during_the_upload_is_refused_and_not_kept(seaweed, bucket, tmp_path, blob):
    store = make_store(seaweed, bucket, tmp_path)
    sha = hashlib.sha256(blob.read_bytes()).hexdigest()

    def truncate_after_first_part(n):
        with open(blob, "r+b") as f:
            f.truncate(6 * MiB)

    with pytest.raises(IntegrityError, match="became shorter while it was being stored"):
        store.put_file(blob, sha, truncate_after_first_part)
    assert list(store.keys()) == []


def test_read_range_asks_the_server_for_that_range_only(seaweed, bucket, tmp_path, blob):
    store, pool, sha = watched_store_holding(seaweed, bucket, tmp_path, blob)
    data = blob.read_bytes()
    start, length = 7 * MiB + 3, 1000
    assert b"".join(store.read_range(sha, start, length)) == data[start:start + length]
    gets = [r for r in pool.requests if r[0] == "GET"]
    assert gets == [("GET", f"/{bucket}/{object_key(sha)}", f"bytes={start}-{start + length - 1}")]
    # Past the end: what is there, then nothing, as a file gives.
    assert b"".join(store.read_range(sha, len(data) - 5, 100)) == data[-5:]
    assert b"".join(store.read_range(sha, len(data) + 10, 100)) == b""
    assert b"".join(store.read_range(sha, 0, 0)) == b""


def test_open_streams_and_seeks_with_ranges(seaweed, bucket, tmp_path, blob):
    store, pool, sha = watched_store_holding(seaweed, bucket, tmp_path, blob)
    data = blob.read_bytes()
    with store.open(sha) as f:
        assert f.read(10) == data[:10]
        f.seek(9 * MiB)
        assert f.read(100) == data[9 * MiB:9 * MiB + 100]
        f.seek(-7, io.SEEK_END)
        assert f.read() == data[-7:]
        f.seek(0)
        assert hashlib.sha256(f.read()).hexdigest() == sha
    ranges = [r[2] for r in pool.requests if r[0] == "GET"]
    assert f"bytes={9 * MiB}-" in ranges and f"bytes={len(data) - 7}-" in ranges


def test_materialize_gives_a_checked_temporary_copy(seaweed, bucket, tmp_path, blob):
    store = make_store(seaweed, bucket, tmp_path)
    sha = store.put_file(blob).sha256
    with store.materialize(sha) as path:
        assert path.read_bytes() == blob.read_bytes()
    assert not path.exists()
    assert list((tmp_path / "s3tmp").iterdir()) == []


def test_damaged_objects_are_found_by_rehash_and_refused_by_materialize(seaweed, bucket, tmp_path, blob):
    store = make_store(seaweed, bucket, tmp_path)
    sha = store.put_file(blob).sha256
    damaged = bytearray(blob.read_bytes())
    damaged[1234] ^= 0x01
    seaweed.client().put_object(bucket, object_key(sha), io.BytesIO(bytes(damaged)), len(damaged),
                                metadata={"sha256": sha})
    assert store.rehash(sha) == hashlib.sha256(damaged).hexdigest() != sha
    with pytest.raises(IntegrityError, match="does not match its hash"):
        with store.materialize(sha):
            pass
    assert list((tmp_path / "s3tmp").iterdir()) == []


def test_missing_objects_raise_not_found(seaweed, bucket, tmp_path):
    store = make_store(seaweed, bucket, tmp_path)
    missing = "ab" * 32
    assert not store.exists(missing)
    for call in (lambda: store.size(missing), lambda: store.open(missing),
                 lambda: b"".join(store.read_range(missing, 0, 10)), lambda: store.rehash(missing)):
        with pytest.raises(NotFound, match="missing from the store"):
            call()
    with pytest.raises(NotFound):
        with store.materialize(missing):
            pass


def test_delete_removes_the_object(seaweed, bucket, tmp_path, blob):
    store = make_store(seaweed, bucket, tmp_path)
    sha = store.put_file(blob).sha256
    store.delete(sha)
    assert not store.exists(sha) and list(store.keys()) == []


def test_keys_lists_only_objects_in_the_archive_layout(seaweed, bucket, tmp_path):
    store = make_store(seaweed, bucket, tmp_path)
    shas = []
    for i in range(3):
        f = tmp_path / f"small{i}"
        f.write_bytes(f"object {i}".encode())
        shas.append(store.put_file(f).sha256)
    seaweed.client().put_object(bucket, "notes/readme.txt", io.BytesIO(b"x"), 1)
    assert list(store.keys()) == sorted(shas)


# -- errors ---------------------------------------------------------------------------------------

def one_sentence(message: str) -> None:
    assert "Traceback" not in message and "\n" not in message
    assert message.count(". ") == 0 and message.endswith(".")
    assert SECRET_KEY not in message


def test_a_wrong_secret_is_one_sentence_and_never_shows_the_secret(seaweed, bucket, tmp_path):
    store = S3Store(seaweed.endpoint, ACCESS_KEY, "not-the-secret", bucket)
    for call in (store.check, lambda: store.size("ab" * 32)):
        with pytest.raises(StorageError) as err:
            call()
        assert not isinstance(err.value, StorageUnavailable)
        assert "refused the secret of access key 'tcd-test'" in str(err.value)
        assert "not-the-secret" not in str(err.value)
        one_sentence(str(err.value))


def test_an_unknown_access_key_is_one_sentence(seaweed, bucket):
    store = S3Store(seaweed.endpoint, "nobody", SECRET_KEY, bucket)
    with pytest.raises(StorageError, match="does not know the access key 'nobody'") as err:
        store.check()
    one_sentence(str(err.value))


def test_a_missing_bucket_is_one_sentence(seaweed, tmp_path, blob):
    store = S3Store(seaweed.endpoint, ACCESS_KEY, SECRET_KEY, "no-such-bucket")
    for call in (store.check, lambda: store.put_file(blob), lambda: list(store.keys())):
        with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist") as err:
            call()
        assert not isinstance(err.value, StorageUnavailable)
        one_sentence(str(err.value))


def test_an_unreachable_server_is_unavailable_quickly(tmp_path, blob, unused_port):
    store = S3Store(f"127.0.0.1:{unused_port}", ACCESS_KEY, SECRET_KEY, "archive", tmp_dir=tmp_path)
    for call in (store.check, lambda: store.put_file(blob), lambda: store.exists("ab" * 32),
                 lambda: b"".join(store.read_range("ab" * 32, 0, 5))):
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="cannot be reached \\(connection refused\\)") as err:
            call()
        assert time.monotonic() - started < 5
        one_sentence(str(err.value))


def test_the_secret_stays_out_of_logs_and_repr(seaweed, bucket, tmp_path, blob, caplog):
    caplog.set_level(logging.DEBUG)
    store = make_store(seaweed, bucket, tmp_path)
    sha = store.put_file(blob).sha256
    b"".join(store.read_range(sha, 10, 10))
    with pytest.raises(StorageError):
        S3Store(seaweed.endpoint, ACCESS_KEY, "wrong-secret-xyz", bucket).check()
    assert caplog.records, "urllib3 logs its requests at DEBUG"
    assert SECRET_KEY not in caplog.text and "wrong-secret-xyz" not in caplog.text
    assert SECRET_KEY not in repr(store) and SECRET_KEY not in store.describe()


def test_the_bare_sdk_sees_what_the_store_wrote(seaweed, bucket, tmp_path, blob):
    """Objects are plain S3 objects: another tool reads them back bit-exact."""
    sha = make_store(seaweed, bucket, tmp_path).put_file(blob).sha256
    client = Minio(seaweed.endpoint, ACCESS_KEY, SECRET_KEY, secure=False)
    response = client.get_object(bucket, object_key(sha))
    try:
        assert hashlib.sha256(response.read()).hexdigest() == sha
    finally:
        response.close()
        response.release_conn()

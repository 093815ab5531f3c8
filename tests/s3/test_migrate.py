"""`tcd storage migrate`: local -> S3 -> local leaves every object bit-exact, switches tcd.toml
only when all objects are in and checked, and resumes after an interruption."""
from __future__ import annotations

import io
import os
import shutil
import stat
import tomllib

import pytest

from archive import open_archive
from archive.errors import StorageError, StorageUnavailable
from archive.migrate import Ledger, migrate, switch_storage
from archive.s3store import S3Store
from archive.store import LocalStore, object_key

from ..helpers import tcd


CLEAN_ENV = {"TCD_STORAGE": None, "TCD_S3_SECRET": None, "TCD_HOME": None}


def storage_setting(home) -> dict:
    return tomllib.loads((home / "tcd.toml").read_text())["storage"]


def read_all(store, sha) -> bytes:
    with store.open(sha) as f:
        return f.read()


def test_local_to_s3_and_back_is_bit_exact(seaweed, bucket, home, populate):
    arch = open_archive(home, env={})
    populate(arch, count=3)
    populate(arch, count=1)
    contents = {o["sha256"]: read_all(arch.store, o["sha256"]) for o in arch.catalog.list_objects()}
    assert len(contents) == 8
    url = seaweed.url(bucket)  # with the secret inside

    result = tcd(home, "storage", "migrate", "--to", url, env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    assert f"All {len(contents)} objects are in s3://tcd-test@{seaweed.endpoint}/{bucket}" in result.output
    assert seaweed.secret_key not in result.output
    setting = storage_setting(home)
    assert setting["url"] == seaweed.url(bucket, secret=False)
    secret_file = home / "s3-secret"
    assert setting["secret_file"] == str(secret_file)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert seaweed.secret_key not in (home / "tcd.toml").read_text()
    arch.catalog.close()

    on_s3 = open_archive(home, env={})
    assert isinstance(on_s3.store, S3Store)
    assert sorted(on_s3.store.keys()) == sorted(contents)
    for sha, data in contents.items():
        assert read_all(on_s3.store, sha) == data
    # The way back must really copy: the old local objects are gone.
    shutil.rmtree(home / "objects")
    report = migrate(on_s3, "local")
    assert report.switched and report.copied == len(contents)
    assert storage_setting(home)["url"] == "local"
    on_s3.catalog.close()

    local = open_archive(home, env={})
    assert isinstance(local.store, LocalStore)
    for sha, data in contents.items():
        assert local.store.path(sha).read_bytes() == data
    assert [e["action"] for e in local.catalog.audit_entries()].count("storage.migrate") == 2
    local.catalog.close()


def test_an_interrupted_migration_resumes_and_switches_only_at_the_end(seaweed, bucket, home, populate):
    arch = open_archive(home, env={"TCD_S3_SECRET": seaweed.secret_key})
    _, contents = populate(arch, count=3)
    url = seaweed.url(bucket, secret=False)
    seen = []

    def stop_after_two(sha, size, what):
        seen.append(sha)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        migrate(arch, url, on_object=stop_after_two)
    assert storage_setting(home)["url"] == "local"
    target = S3Store.from_url(url, arch.settings)
    assert len(list(target.keys())) == 2

    report = migrate(arch, url)
    assert (report.already, report.copied, report.total) == (2, len(contents) - 2, len(contents))
    assert report.switched and storage_setting(home)["url"] == url
    assert not (home / "migrate").exists() or not any((home / "migrate").iterdir())
    for sha, data in contents.items():
        assert read_all(target, sha) == data
    arch.catalog.close()


def test_objects_found_in_the_target_without_a_ledger_line_are_rechecked(seaweed, bucket, home, populate):
    arch = open_archive(home, env={"TCD_S3_SECRET": seaweed.secret_key})
    _, contents = populate(arch, count=2)
    url = seaweed.url(bucket, secret=False)
    target = S3Store.from_url(url, arch.settings)
    good, damaged = sorted(contents)[:2]
    target.put_file(arch.store.path(good))
    # A damaged copy (as a crash mid-write on another tool could leave) under the right key.
    bad = bytearray(contents[damaged])
    bad[0] ^= 0xFF
    seaweed.client().put_object(bucket, object_key(damaged), io.BytesIO(bytes(bad)), len(bad))

    report = migrate(arch, url)
    assert report.rechecked == 1 and report.copied == len(contents) - 1
    assert read_all(target, damaged) == contents[damaged]
    arch.catalog.close()


def test_objects_ingested_during_the_copy_are_copied_too(seaweed, bucket, home, populate):
    arch = open_archive(home, env={})
    populate(arch, count=1)
    added = {}

    def ingest_meanwhile(sha, size, what):
        if not added:
            added.update(populate(arch, count=1)[1])

    report = migrate(arch, seaweed.url(bucket), on_object=ingest_meanwhile)
    assert report.total == 4
    target = S3Store.from_url(seaweed.url(bucket), arch.settings)
    assert set(added) <= set(target.keys())
    arch.catalog.close()


def test_an_object_missing_from_the_source_stops_the_migration(seaweed, bucket, home, populate):
    arch = open_archive(home, env={})
    _, contents = populate(arch, count=2)
    lost = sorted(contents)[0]
    os.chmod(arch.store.path(lost), 0o644)
    arch.store.path(lost).unlink()
    result = tcd(home, "storage", "migrate", "--to", seaweed.url(bucket), env=CLEAN_ENV)
    assert result.exit_code == 1
    assert "1 objects of the catalog are missing from local:" in result.output
    assert "Traceback" not in result.output and seaweed.secret_key not in result.output
    assert storage_setting(home)["url"] == "local"
    arch.catalog.close()


def test_an_unreachable_target_changes_nothing(home, populate, unused_port):
    arch = open_archive(home, env={})
    populate(arch, count=1)
    with pytest.raises(StorageUnavailable, match="cannot be reached"):
        migrate(arch, f"s3://k:s@127.0.0.1:{unused_port}/archive?secure=false")
    assert storage_setting(home)["url"] == "local"
    assert not (home / "s3-secret").exists()
    arch.catalog.close()


def test_a_missing_bucket_is_made_only_when_asked(seaweed, home, populate):
    arch = open_archive(home, env={})
    populate(arch, count=1)
    url = seaweed.url("made-by-migrate")
    with pytest.raises(StorageError, match="bucket 'made-by-migrate' does not exist"):
        migrate(arch, url)
    report = migrate(arch, url, create_bucket=True)
    assert report.switched and report.copied == 2
    assert S3Store.from_url(url, arch.settings).object_lock() == (True, "")
    arch.catalog.close()


def test_switching_keeps_the_comments_of_tcd_toml(home):
    arch = open_archive(home, env={})
    before = (home / "tcd.toml").read_text()
    switch_storage(arch.settings, "s3://AK:pw@h:9000/bkt?secure=false")
    after = (home / "tcd.toml").read_text()
    assert [l for l in before.splitlines() if l.startswith("#")] == \
        [l for l in after.splitlines() if l.startswith("#")]
    assert storage_setting(home) == {"url": "s3://AK@h:9000/bkt?secure=false",
                                     "secret_file": str(home / "s3-secret")}
    assert (home / "s3-secret").read_text() == "pw\n"
    switch_storage(arch.settings, "local")
    assert storage_setting(home)["url"] == "local"
    arch.catalog.close()


def test_the_ledger_ignores_a_torn_last_line(tmp_path):
    ledger = Ledger(tmp_path, "s3://x@h/b")
    ledger.add("a" * 64)
    with open(ledger.path, "a") as f:
        f.write("b" * 20)  # a crash in the middle of a write
    assert ledger.read() == {"a" * 64}


def test_a_target_that_is_no_store_is_refused_and_nothing_changes(home):
    open_archive(home, env={}).catalog.close()  # writes the default tcd.toml
    before = (home / "tcd.toml").read_text()
    result = tcd(home, "storage", "migrate", "--to", "ftp://h/x", env=CLEAN_ENV)
    assert result.exit_code == 1 and "Unknown storage 'ftp://h/x'" in result.output
    assert (home / "tcd.toml").read_text() == before

"""Legal hold (`tcd hold` / `tcd release`) and retention: enforced by S3 object lock on a bucket
that has it, recorded in the catalog (and said to be unenforced) everywhere else."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from archive import open_archive, users
from archive.errors import InvalidInput, StorageError, StorageUnavailable
from archive.holds import apply_retention, retention_until, set_legal_hold
from archive.store import object_key

from .. import helpers


def s3_archive(seaweed, bucket, home):
    return open_archive(home, env={"TCD_STORAGE": seaweed.url(bucket, secret=False),
                                   "TCD_S3_SECRET": seaweed.secret_key})


def tcd(home, env, *args):
    return helpers.tcd(home, *args, env={"TCD_HOME": None, **env})


def test_hold_and_release_set_s3_legal_hold_on_a_locked_bucket(seaweed, locked_bucket, home, populate):
    arch = s3_archive(seaweed, locked_bucket, home)
    session, contents = populate(arch, count=2)
    env = {"TCD_STORAGE": seaweed.url(locked_bucket, secret=False), "TCD_S3_SECRET": seaweed.secret_key}
    client = seaweed.client()
    users.add_user(arch, "lan", "archivist", "mat-khau-dai-123")

    result = tcd(home, env, "hold", session.id, "--reason", "khiếu nại đang giải quyết", "--user", "lan")
    assert result.exit_code == 0, result.output
    assert f"{session.id} is under legal hold; the S3 server enforces it on its 4 objects." in result.output
    assert all(client.is_object_legal_hold_enabled(locked_bucket, object_key(sha)) for sha in contents)
    assert arch.catalog.get_session(session.id).legal_hold == 1
    victim = sorted(contents)[0]
    with pytest.raises(StorageError, match="under legal hold or retention"):
        arch.store.delete(victim)
    assert arch.store.exists(victim)

    result = tcd(home, {**env, "TCD_USER": "lan"}, "release", session.id, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["enforced"] is True
    assert not any(client.is_object_legal_hold_enabled(locked_bucket, object_key(sha)) for sha in contents)
    assert arch.catalog.get_session(session.id).legal_hold == 0
    arch.store.delete(victim)
    assert not arch.store.exists(victim)
    actions = [(e["action"], e["actor"], json.loads(e["detail"]).get("reason"))
               for e in arch.catalog.audit_entries(session.id)]
    assert ("session.hold", "lan", "khiếu nại đang giải quyết") in actions
    assert ("session.release", "lan", "") in actions
    arch.catalog.close()


def test_releasing_one_session_keeps_the_hold_on_objects_another_held_session_shares(
        seaweed, locked_bucket, home, populate):
    arch = s3_archive(seaweed, locked_bucket, home)
    first, contents = populate(arch, count=1)
    second, _ = populate(arch, count=1)
    shared = sorted(contents)[0]
    rec = arch.catalog.recordings_for_session(second.id)[0]
    arch.catalog.add_transcript(recording_id=rec.id, segments=[], kind="human", author="x", sha256=shared)
    set_legal_hold(arch, first.id, True)
    set_legal_hold(arch, second.id, True)
    set_legal_hold(arch, first.id, False)
    assert arch.store.legal_hold(shared)
    set_legal_hold(arch, second.id, False)
    assert not arch.store.legal_hold(shared)
    arch.catalog.close()


def test_a_bucket_without_object_lock_records_the_hold_and_says_so(seaweed, bucket, home, populate):
    arch = s3_archive(seaweed, bucket, home)
    session, _ = populate(arch, count=1)
    result = set_legal_hold(arch, session.id, True)
    assert not result.enforced
    assert result.sentence() == (f"{session.id} is under legal hold in the catalog; the store does not "
                                 f"enforce it (the bucket '{bucket}' was created without object lock).")
    assert arch.catalog.get_session(session.id).legal_hold == 1
    arch.catalog.close()


def test_the_local_store_records_the_hold_and_says_so(home, populate):
    arch = open_archive(home, env={})
    session, _ = populate(arch, count=1)
    users.add_user(arch, "lan", "archivist", "mat-khau-dai-123")
    users.add_user(arch, "minh", "inspector", "mat-khau-dai-456")
    env = {"TCD_STORAGE": None}
    # the rules of retention hold on the command line too: a reason, and a role that may
    result = tcd(home, env, "hold", session.id, "--user", "lan")
    assert result.exit_code == 2 and "--reason" in result.output
    result = tcd(home, env, "hold", session.id, "--reason", "   ", "--user", "lan")
    assert result.exit_code == 1 and "A legal hold needs a reason" in result.output
    result = tcd(home, env, "hold", session.id, "--reason", "Tòa án yêu cầu", "--user", "minh")
    assert result.exit_code == 1 and "User 'minh' may not place or release legal holds" in result.output
    assert arch.catalog.get_session(session.id).legal_hold == 0
    result = tcd(home, env, "hold", session.id, "--reason", "Tòa án yêu cầu", "--user", "lan")
    assert result.exit_code == 0
    assert "is under legal hold in the catalog; the store does not enforce it (local:" in result.output
    assert arch.catalog.get_session(session.id).legal_hold == 1
    arch.catalog.close()


def test_a_hold_while_the_server_is_down_is_recorded_and_says_to_repeat(home, populate, unused_port):
    arch = open_archive(home, env={})
    session, _ = populate(arch, count=1)
    down = open_archive(home, env={"TCD_STORAGE": f"s3://k@127.0.0.1:{unused_port}/archive?secure=false",
                                   "TCD_S3_SECRET": "s"})
    with pytest.raises(StorageUnavailable, match=rf"{session.id} is under legal hold in the catalog, but "
                                                 rf"the store could not apply it \(.*\); run `tcd hold"):
        set_legal_hold(down, session.id, True)
    assert arch.catalog.get_session(session.id).legal_hold == 1
    arch.catalog.close()
    down.catalog.close()


def test_retention_locks_objects_until_the_end_of_the_retention(seaweed, locked_bucket, home, populate):
    arch = s3_archive(seaweed, locked_bucket, home)
    session, contents = populate(arch, count=1)
    arch.catalog.update_session(session.id, {"retention": "10 năm"})
    result = apply_retention(arch, session.id)
    held_on = dt.date.fromisoformat(session.held_on)
    assert result.enforced and result.until == held_on.replace(year=held_on.year + 10).isoformat()
    for sha in contents:
        retention = seaweed.client().get_object_retention(locked_bucket, object_key(sha))
        assert retention.mode == "GOVERNANCE"
        assert retention.retain_until_date.date().isoformat() == result.until
    with pytest.raises(StorageError, match="under legal hold or retention"):
        arch.store.delete(sorted(contents)[0])
    # A second run changes nothing; a longer retention extends the lock.
    assert not any(arch.store.set_retention(sha, retention_until(session.held_on, "10")) for sha in contents)
    arch.catalog.update_session(session.id, {"retention": "permanent"})
    assert apply_retention(arch, session.id).until == held_on.replace(year=held_on.year + 100).isoformat()
    arch.catalog.close()


def test_retention_on_a_store_without_object_lock_is_not_enforced(seaweed, bucket, home, populate):
    arch = s3_archive(seaweed, bucket, home)
    session, _ = populate(arch, count=1)
    env = {"TCD_STORAGE": seaweed.url(bucket, secret=False), "TCD_S3_SECRET": seaweed.secret_key}
    result = tcd(home, env, "storage", "retain", session.id)
    assert result.exit_code == 0
    assert f"Retention of {session.id} is recorded in the catalog only: the bucket '{bucket}'" in result.output
    arch.catalog.close()


def test_retention_dates():
    assert retention_until("2025-03-01", "5").date() == dt.date(2030, 3, 1)
    assert retention_until("2028-02-29", "1 year").date() == dt.date(2029, 2, 28)
    assert retention_until("2001-01-01", "5 năm") is None  # ended already: nothing to lock
    assert retention_until("2025-03-01", "permanent").year == 2125
    with pytest.raises(InvalidInput, match="'forever' is not a retention"):
        retention_until("2025-03-01", "forever")

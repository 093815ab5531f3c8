"""Fixity audits: `tcd verify` re-hashes the stored objects, names each one that differs or is
missing, and records every run in the catalog and the audit log."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from archive.errors import InvalidInput
from archive.fixity import parse_age, verify

from ..helpers import flip_byte, tcd


def test_verify_names_every_damaged_and_missing_object(filled, home):
    arch = filled["archive"]
    video = arch.catalog.get_recording(filled["video"])
    audio = arch.catalog.get_recording(filled["audio"])
    flip_byte(arch.store.path(video.original_sha256))
    arch.store.delete(audio.original_sha256)

    result = tcd(home, "verify")
    assert result.exit_code == 1
    out = result.output
    assert (f"DIFFERS: {filled['session']} recording {video.id} original "
            f"'Phiên TCD 14-03-2025 – điểm cầu trung tâm.mkv' (sha256 {video.original_sha256})") in out
    assert f"MISSING: {filled['session']} recording {audio.id} original" in out
    assert "2 of 5 objects differ from the catalog or are missing" in out

    run = arch.catalog.last_fixity_run()
    assert (run["checked"], run["failed"], run["scope"]) == (5, 2, "all objects")
    problems = run["detail"]["problems"]
    assert {p["sha256"]: p["problem"] for p in problems} == {video.original_sha256: "differs",
                                                            audio.original_sha256: "missing"}
    assert arch.catalog.get_object(video.access_sha256)["verify_ok"] == 1
    assert {o["sha256"] for o in arch.catalog.damaged_objects()} == {video.original_sha256, audio.original_sha256}
    entries = arch.catalog.audit_entries()
    assert entries[-2]["action"] == "fixity.verify" and entries[-2]["session_id"] is None
    assert json.loads(entries[-1]["detail"])["failed"] == 2  # and in the session's own history
    assert entries[-1]["session_id"] == filled["session"]
    listed = json.loads(tcd(home, "backup", "list", "--json").output)
    assert listed["last_fixity_run"]["detail"]["problems"] == problems  # an object, not a string


def test_verify_passes_and_json(filled, home):
    result = tcd(home, "verify", filled["session"], "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["ok"] and data["checked"] == 5 and data["scope"] == f"session {filled['session']}"


def test_older_than_checks_only_what_was_not_checked_recently(filled, home):
    arch = filled["archive"]
    assert verify(arch).checked == 5
    assert verify(arch, older_than=parse_age("90d")).checked == 0
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=120)).replace(microsecond=0).isoformat()
    sha = arch.catalog.get_recording(filled["video"]).original_sha256
    arch.catalog.db.execute("UPDATE objects SET verified_at = ? WHERE sha256 = ?", (old, sha))
    result = tcd(home, "verify", "--older-than", "90d", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["checked"] == 1 and "not verified since" in data["scope"]
    assert arch.catalog.get_object(sha)["verified_at"] > old
    runs = arch.catalog.list_fixity_runs()
    assert [r["checked"] for r in runs[:3]] == [1, 0, 5]


def test_bad_age_and_unknown_session():
    with pytest.raises(InvalidInput, match="90d"):
        parse_age("three months")
    assert parse_age("2w") == dt.timedelta(weeks=2) and parse_age("12h") == dt.timedelta(hours=12)


def test_unknown_session_and_bad_age_on_the_command_line(archive, home):
    result = tcd(home, "verify", "TCD-1999-0001")
    assert result.exit_code == 1 and "There is no session TCD-1999-0001" in result.output
    result = tcd(home, "verify", "--older-than", "soon")
    assert result.exit_code == 1 and "is not an age" in result.output
    assert archive.catalog.last_fixity_run() is None


def test_history_lists_the_runs_and_what_is_still_damaged(filled, home):
    arch = filled["archive"]
    result = tcd(home, "verify", "--history")
    assert result.exit_code == 0 and "No fixity run yet" in result.output
    sha = arch.catalog.get_recording(filled["video"]).original_sha256
    verify(arch)
    flip_byte(arch.store.path(sha))
    verify(arch, session_id=filled["session"])
    result = tcd(home, "verify", "--history")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"session {filled['session']}: 5 checked, 1 failed" in lines[0]     # newest first
    assert "all objects: 5 checked, 0 failed" in lines[1]
    assert f"DAMAGED: original {sha}" in result.output
    assert "1 object(s) failed their last check; `tcd restore BAG` repairs them" in result.output
    data = json.loads(tcd(home, "verify", "--history", "--json").output)
    assert [r["failed"] for r in data["runs"]] == [1, 0] and [o["sha256"] for o in data["damaged"]] == [sha]
    assert len(arch.catalog.list_fixity_runs()) == 2, "listing the history runs nothing"
    result = tcd(home, "verify", "--history", filled["session"])
    assert result.exit_code == 1 and "leave out ID" in result.output


def test_a_whole_run_names_objects_the_catalog_does_not_know_without_failing(filled, home, tmp_path):
    arch = filled["archive"]
    leftover = tmp_path / "left-by-a-killed-run.mp4"
    leftover.write_bytes(b"an access copy nobody catalogued")
    stray = arch.store.put_file(leftover).sha256
    result = tcd(home, "verify")
    assert result.exit_code == 0, result.output              # nothing the archive holds changed
    assert f"STRAY: sha256 {stray} is in the store but not in the catalog" in result.output
    assert "The store also holds 1 object(s) the catalog does not know." in result.output
    assert arch.catalog.last_fixity_run()["detail"]["strays"] == [stray]
    assert json.loads(arch.catalog.audit_entries()[-2]["detail"])["strays"] == 1
    scoped = json.loads(tcd(home, "verify", filled["session"], "--json").output)
    assert scoped["ok"] and scoped["strays"] == [], "a session's run does not judge the whole store"
    arch.store.delete(stray)
    assert verify(arch).strays == []


def test_a_store_that_cannot_be_listed_gives_no_strays_and_keeps_the_report(filled, monkeypatch):
    from archive.errors import StorageUnavailable
    arch = filled["archive"]

    def unlisted():
        raise StorageUnavailable("The S3 server cannot be reached.")
        yield  # a generator, as keys() is
    monkeypatch.setattr(arch.store, "keys", unlisted)
    report = verify(arch)
    assert report.ok and report.checked == 5 and report.strays == []
    assert arch.catalog.last_fixity_run()["detail"]["strays"] == []

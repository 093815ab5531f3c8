"""Retention: classes, what is due, legal hold, and deletion by two people that removes a session
from the catalog, the store and (through the callback) the index, leaving `tcd verify` clean."""
from __future__ import annotations

import datetime as dt
import json
from functools import partial

import pytest

from archive import fixity, notes, retention, seals
from archive.errors import InvalidInput, NotFound, PermissionDenied

from .. import helpers

LATER = dt.date(2031, 1, 1)   # past a 5-year retention of a session held on 2025-03-14


@pytest.fixture
def people(archive):
    return {name: archive.catalog.add_user(name, role, "-")
            for name, role in (("lan", "archivist"), ("minh", "admin"), ("hoa", "inspector"))}


@pytest.fixture
def other_session(filled, media):
    """A second session sharing nothing with the first, which must survive its deletion."""
    archive = filled["archive"]
    session = archive.catalog.create_session({"title": "Phiên khác", "held_on": "2025-06-01"})
    # the same file cannot be two recordings: a different original
    extra = media["audio"].with_name("khac.m4a")
    extra.write_bytes(media["audio"].read_bytes() + b"\0")
    stored = archive.store.put_file(extra)
    archive.catalog.add_object(stored.sha256, stored.size, "original", "mp4")
    rec = archive.catalog.add_recording(session_id=session.id, original_sha256=stored.sha256,
                                        original_name=extra.name, duration=3.0, has_audio=True)
    return session.id, rec.id


def test_retention_classes(filled, people):
    archive, sid = filled["archive"], filled["session"]
    assert retention.parse_retention("permanent") == "permanent"
    assert retention.parse_retention("Vĩnh viễn") == "permanent"
    assert [retention.parse_retention(v) for v in ("10", " 10y", "10 years", "10 năm", 5)] == ["10"] * 4 + ["5"]
    for bad in ("0", "-3", "abc", "", "201", "1.5"):
        with pytest.raises(InvalidInput, match="not a retention class"):
            retention.parse_retention(bad)
    session = retention.set_retention(archive, sid, "5", people["lan"])
    assert session.retention == "5" and retention.expires_on(session) == dt.date(2030, 3, 14)
    with pytest.raises(PermissionDenied, match="may not change how long"):
        retention.set_retention(archive, sid, "permanent", people["hoa"])
    entry = archive.catalog.audit_entries(session_id=sid, descending=True, limit=1)[0]
    assert entry["action"] == "retention.set" and json.loads(entry["detail"]) == {"before": "permanent", "after": "5"}
    leap = archive.catalog.create_session({"title": "Ngày nhuận", "held_on": "2024-02-29", "retention": "1"})
    assert retention.expires_on(leap) == dt.date(2025, 2, 28)


def test_due_lists_what_passed_its_time(filled, people, other_session):
    archive, sid = filled["archive"], filled["session"]
    assert retention.due(archive, today=LATER) == []          # everything is permanent by default
    retention.set_retention(archive, sid, "5", people["lan"])
    retention.set_retention(archive, other_session[0], "10", people["lan"])
    assert retention.due(archive, today=dt.date(2030, 3, 13)) == []
    rows = retention.due(archive, today=dt.date(2030, 3, 14))
    assert [(r["session_id"], r["expires_on"], r["legal_hold"], r["proposal"]) for r in rows] == [
        (sid, "2030-03-14", False, None)]


def test_a_deletion_needs_two_people_and_removes_everything(filled, people, other_session):
    archive, sid, catalog, store = filled["archive"], filled["session"], filled["archive"].catalog, filled["archive"].store
    video = filled["video"]
    notes.add_note(archive, video, 1.0, None, "Công dân đọc số CCCD", people["hoa"])
    seals.add_seal(archive, video, 1.0, 2.0, "Số CCCD", people["lan"])
    seals.make_sealed_copy(archive, video)
    retention.set_retention(archive, sid, "5", people["lan"])
    objects = catalog.session_objects(sid)
    assert len(objects) == 6    # 2 originals, 1 access copy, 2 transcript documents, 1 sealed copy
    kept = catalog.session_objects(other_session[0])

    with pytest.raises(PermissionDenied, match="must be kept until 2030-03-14"):
        retention.propose(archive, sid, people["lan"], today=dt.date(2026, 1, 1))
    with pytest.raises(PermissionDenied, match="may not propose"):
        retention.propose(archive, sid, people["hoa"], today=LATER)
    proposal = retention.propose(archive, sid, people["lan"], "Hết thời hạn lưu trữ 5 năm", today=LATER)
    with pytest.raises(InvalidInput, match="proposed already by lan"):
        retention.propose(archive, sid, people["minh"], today=LATER)
    # one person cannot both propose and approve
    with pytest.raises(PermissionDenied, match="a second, different user must approve"):
        retention.approve(archive, proposal["id"], people["lan"], today=LATER)
    with pytest.raises(PermissionDenied, match="may not approve"):
        retention.approve(archive, proposal["id"], people["hoa"], today=LATER)
    assert catalog.get_session(sid) and all(store.exists(sha) for sha in objects)
    assert retention.due(archive, today=LATER)[0]["proposal"] == proposal["id"]

    dropped = []
    done = retention.approve(archive, proposal["id"], people["minh"], on_deleted=dropped.append, today=LATER)
    assert done["status"] == "done" and done["approved_by"] == "minh" and dropped == [sid]
    with pytest.raises(NotFound):
        catalog.get_session(sid)
    with pytest.raises(NotFound):
        catalog.get_recording(video)
    assert catalog.list_notes(session_id=sid) == [] and catalog.list_seals(session_id=sid, with_removed=True) == []
    assert not any(store.exists(sha) for sha in objects)
    for sha in objects:
        with pytest.raises(NotFound):
            catalog.get_object(sha)
    assert catalog.transcripts_for_recording(video) == []
    assert sorted(catalog.backup_removals()[0]["objects"]) == sorted(objects)
    # the other session is whole, and the fixity check finds nothing missing
    assert catalog.session_objects(other_session[0]) == kept and all(store.exists(s) for s in kept)
    report = fixity.verify(archive)
    assert report.ok and report.checked == len(kept)
    actions = [e["action"] for e in catalog.audit_entries(session_id=sid)]
    assert actions[-3:] == ["retention.propose", "retention.approve", "retention.delete"]
    with pytest.raises(InvalidInput, match="done already"):
        retention.approve(archive, proposal["id"], people["lan"], today=LATER)


def test_a_held_session_can_never_be_deleted(filled, people):
    archive, sid = filled["archive"], filled["session"]
    retention.set_retention(archive, sid, "1", people["lan"])
    proposal = retention.propose(archive, sid, people["lan"], today=LATER)
    with pytest.raises(InvalidInput, match="needs a reason"):
        retention.set_legal_hold(archive, sid, True, people["minh"])
    retention.set_legal_hold(archive, sid, True, people["minh"], reason="Vụ việc đang khởi kiện tại Tòa án")
    assert retention.due(archive, today=LATER)[0]["legal_hold"] is True
    with pytest.raises(PermissionDenied, match="under legal hold and cannot be deleted"):
        retention.approve(archive, proposal["id"], people["minh"], today=LATER)
    withdrawn = retention.withdraw(archive, proposal["id"], people["minh"])
    assert withdrawn["status"] == "withdrawn"
    with pytest.raises(PermissionDenied, match="under legal hold"):
        retention.propose(archive, sid, people["lan"], today=dt.date(2100, 1, 1))
    assert archive.catalog.get_session(sid).legal_hold == 1
    assert "session.hold" in [e["action"] for e in archive.catalog.audit_entries(session_id=sid)]


def test_permanent_sessions_cannot_be_proposed(filled, people):
    with pytest.raises(PermissionDenied, match="kept permanently"):
        retention.propose(filled["archive"], filled["session"], people["lan"], today=dt.date(2999, 1, 1))


# The tests give --user or leave it out on purpose: the $TCD_USER of whoever runs them must not count.
tcd = partial(helpers.tcd, env={"TCD_USER": ""})


def test_the_command_line_flow(filled, people):
    archive, sid = filled["archive"], filled["session"]
    archive.catalog.update_session(sid, {"held_on": "2015-03-14"})   # so that its time has passed
    result = tcd(archive.home, "retention", "set", sid, "1", "--user", "lan")
    assert result.exit_code == 0 and "is kept until 2016-03-14" in result.output
    assert tcd(archive.home, "retention", "set", sid, "forever", "--user", "lan").exit_code == 1
    result = tcd(archive.home, "retention", "set", sid, "1")
    assert result.exit_code == 2 and "--user" in result.output
    result = tcd(archive.home, "retention", "due", "--json")
    assert json.loads(result.output)[0]["session_id"] == sid
    result = tcd(archive.home, "retention", "propose", sid, "--user", "lan", "--reason", "Hết hạn")
    assert result.exit_code == 0, result.output
    deletion = int(result.output.split("deletion ")[1].split()[0])
    result = tcd(archive.home, "retention", "approve", str(deletion), "--user", "lan")
    assert result.exit_code == 1 and "a second, different user must approve it" in result.output
    assert "proposed by lan" in tcd(archive.home, "retention", "proposals").output
    from search import open_index
    index = open_index(archive)
    assert index.search("đất đai").total >= 1
    result = tcd(archive.home, "retention", "approve", str(deletion), "--user", "minh")
    assert result.exit_code == 0 and f"Deleted {sid}" in result.output
    assert index.search("đất đai").total == 0 and index.search(sid).total == 0   # gone from the index too
    result = tcd(archive.home, "verify")
    assert result.exit_code == 0, result.output
    assert tcd(archive.home, "show", sid).exit_code == 1


def test_the_next_disk_backup_drops_a_deleted_session(filled, people, other_session, tmp_path):
    import shutil

    import bagit

    from archive.backup import backup_disk
    from archive.restore import restore
    archive, sid = filled["archive"], filled["session"]
    bag = tmp_path / "bag"
    assert backup_disk(archive, bag).complete
    old_copy = tmp_path / "old-bag"
    shutil.copytree(bag, old_copy)
    assert (bag / "data" / sid).is_dir()
    retention.set_retention(archive, sid, "5", people["lan"])
    proposal = retention.propose(archive, sid, people["lan"], today=LATER)
    retention.approve(archive, proposal["id"], people["minh"], today=LATER)

    report = backup_disk(archive, bag)
    assert report.complete, report.problems
    assert not (bag / "data" / sid).exists()
    for alg in ("sha256", "sha512"):
        assert f"data/{sid}/" not in (bag / f"manifest-{alg}.txt").read_text(encoding="utf-8")
    bagit.Bag(str(bag)).validate()
    log = json.loads((bag / retention.REMOVALS_FILE).read_text(encoding="utf-8"))
    assert [(e["session_id"], e["proposed_by"], e["approved_by"]) for e in log] == [(sid, "lan", "minh")]
    assert any(f.endswith("session.json") for f in log[0]["files"])
    assert sid not in (bag / "viewer" / "data.js").read_text(encoding="utf-8")
    assert other_session[0] in (bag / "viewer" / "data.js").read_text(encoding="utf-8")
    # running it again changes nothing and logs the removal once
    assert backup_disk(archive, bag).complete
    assert len(json.loads((bag / retention.REMOVALS_FILE).read_text(encoding="utf-8"))) == 1
    # an older backup does not bring the deleted session back
    restored = restore(archive, old_copy)
    assert sid not in restored.sessions_added and archive.catalog.find_session(sid) is None
    assert fixity.verify(archive).ok

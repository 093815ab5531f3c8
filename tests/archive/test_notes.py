"""Timestamped notes: who may write and change them, their history, validation and audit."""
from __future__ import annotations

import json
from functools import partial

import pytest

from archive import notes
from archive.errors import Conflict, InvalidInput, NotFound, PermissionDenied

from .. import helpers


@pytest.fixture
def people(archive):
    return {role: archive.catalog.add_user(role, role, "-") for role in ("admin", "archivist", "inspector", "handler")}


def test_every_role_writes_notes_on_moments_and_spans(filled, people):
    archive, video = filled["archive"], filled["video"]
    revision = archive.catalog.get_session(filled["session"]).revision
    moment = notes.add_note(archive, video, 1.5, None, "  công dân đề nghị   đối thoại trực tiếp ", people["inspector"])
    assert (moment.start, moment.end, moment.is_span) == (1.5, None, False)
    assert moment.text == "công dân đề nghị đối thoại trực tiếp" and moment.author == "inspector"
    span = notes.add_note(archive, video, "0.25", "2", "Chủ trì giới thiệu thành phần", people["handler"])
    assert (span.start, span.end, span.is_span) == (0.25, 2.0, True)
    notes.add_note(archive, filled["audio"], 0, None, "Điểm cầu xã bắt đầu", people["archivist"])
    notes.add_note(archive, video, 2.9, None, "Kết thúc", people["admin"])
    listed = notes.list_notes(archive, filled["session"])
    assert [n.start for n in listed if n.recording_id == video] == [0.25, 1.5, 2.9]
    assert len(notes.list_notes(archive, recording_id=filled["audio"])) == 1
    assert archive.catalog.get_session(filled["session"]).revision > revision   # the index re-reads it
    entry = [e for e in archive.catalog.audit_entries(session_id=filled["session"]) if e["action"] == "note.add"][0]
    assert entry["actor"] == "inspector" and entry["target"] == f"note {moment.id}"
    assert "đối thoại" not in entry["detail"]   # the log keeps no personal data to purge


@pytest.mark.parametrize("start,end,message,reason", [
    (2.0, 1.0, r"end \(1 s\) must come after its start \(2 s\)", "note.end_not_after_start"),
    (1.0, 1.0, "must come after", "note.end_not_after_start"),
    (-0.5, None, "cannot start before the recording", "note.start_outside"),
    (9.0, None, r"3\.0 s long; a note at 9 s is past its end", "note.start_outside"),
    (1.0, 9.0, "cannot end at 9 s", "note.end_outside"),
    ("x", None, "are seconds", "note.not_seconds"),
    (None, None, "are seconds", "note.not_seconds"),
])
def test_bad_times_are_refused(filled, people, start, end, message, reason):
    with pytest.raises(InvalidInput, match=message) as refused:
        notes.add_note(filled["archive"], filled["video"], start, end, "ghi chú", people["inspector"])
    # the web says the same in Vietnamese from the reason and the values
    assert refused.value.reason == reason
    if reason != "note.not_seconds":
        duration = filled["archive"].catalog.get_recording(filled["video"]).duration
        assert refused.value.values == {"start": start, "end": end, "duration": duration}


def test_text_is_required_and_bounded(filled, people):
    archive = filled["archive"]
    with pytest.raises(InvalidInput, match="needs some text") as refused:
        notes.add_note(archive, filled["video"], 1, None, " \n ", people["inspector"])
    assert refused.value.reason == "note.no_text"
    with pytest.raises(InvalidInput, match="at most 2000") as refused:
        notes.add_note(archive, filled["video"], 1, None, "đ" * 2001, people["inspector"])
    assert (refused.value.reason, refused.value.values["limit"]) == ("note.text_too_long", 2000)
    with pytest.raises(NotFound):
        notes.add_note(archive, "f" * 16, 1, None, "ghi chú", people["inspector"])
    archive.catalog.update_user("inspector", disabled=1)
    with pytest.raises(PermissionDenied):
        notes.add_note(archive, filled["video"], 1, None, "ghi chú", archive.catalog.get_user("inspector"))


def test_only_the_author_or_an_admin_edits_with_history(filled, people):
    archive = filled["archive"]
    note = notes.add_note(archive, filled["video"], 1.0, None, "Công dân nêu yêu cầu", people["handler"])
    for other in ("inspector", "archivist"):
        with pytest.raises(PermissionDenied, match="written by handler; only they or an admin"):
            notes.edit_note(archive, note.id, people[other], text="sửa")
    edited = notes.edit_note(archive, note.id, people["handler"], text="Công dân nêu yêu cầu bồi thường",
                             end=2.0, version=1)
    assert (edited.version, edited.end, edited.text) == (2, 2.0, "Công dân nêu yêu cầu bồi thường")
    assert notes.edit_note(archive, note.id, people["handler"], text=edited.text) == edited  # no change
    by_admin = notes.edit_note(archive, note.id, people["admin"], start=0.5, end=None)
    assert (by_admin.version, by_admin.start, by_admin.end, by_admin.author) == (3, 0.5, None, "handler")
    with pytest.raises(Conflict, match="changed by someone else"):
        notes.edit_note(archive, note.id, people["handler"], text="bản cũ", version=2)
    with pytest.raises(InvalidInput, match="must come after"):
        notes.edit_note(archive, note.id, people["handler"], end=0.1)
    history = notes.note_history(archive, note.id)
    assert [(h["version"], h["editor"], h["start"], h["end"]) for h in history] == [
        (1, "handler", 1.0, None), (2, "handler", 1.0, 2.0), (3, "admin", 0.5, None)]
    assert history[0]["text"] == "Công dân nêu yêu cầu"
    edits = [json.loads(e["detail"]) for e in archive.catalog.audit_entries(session_id=filled["session"])
             if e["action"] == "note.edit"]
    assert [d["version"] for d in edits] == [2, 3] and edits[1]["text_changed"] is False
    with pytest.raises(NotFound, match="no note 999"):
        notes.edit_note(archive, 999, people["admin"], text="x")


# The tests give --user or leave it out on purpose: the $TCD_USER of whoever runs them must not count.
tcd = partial(helpers.tcd, env={"TCD_USER": ""})


def test_the_command_line(filled, people):
    archive, sid, video = filled["archive"], filled["session"], filled["video"]
    result = tcd(archive.home, "note", "add", sid, "--at", "1", "--text", "ghi chú", "--user", "hoa")
    assert result.exit_code == 1 and "has 2 recordings; name one of them" in result.output
    result = tcd(archive.home, "note", "add", video, "--at", "1.5", "--end", "2", "--text", "Công dân trình bày",
                 "--user", "handler")
    assert result.exit_code == 0 and "Added note 1 at 1.5–2 s" in result.output
    result = tcd(archive.home, "note", "add", video, "--at", "2", "--end", "1", "--text", "x", "--user", "handler")
    assert result.exit_code == 1 and "must come after its start" in result.output
    result = tcd(archive.home, "note", "edit", "1", "--text", "Sửa", "--user", "inspector")
    assert result.exit_code == 1 and "only they or an admin" in result.output
    result = tcd(archive.home, "note", "edit", "1", "--moment", "--user", "handler")
    assert result.exit_code == 0 and "version 2" in result.output
    listed = json.loads(tcd(archive.home, "note", "list", sid, "--json").output)
    assert [(n["id"], n["start"], n["end"], n["text"]) for n in listed] == [(1, 1.5, None, "Công dân trình bày")]
    history = tcd(archive.home, "note", "history", "1").output.splitlines()
    assert len(history) == 2 and "1.5–2 s" in history[0] and history[1].split()[2] == "handler"

"""Sealed passages: validation, redaction for every role with and without clearance, and the
silenced, blanked access copy (measured with ffmpeg's volumedetect) beside an untouched original."""
from __future__ import annotations

import re
import subprocess
from functools import partial

import pytest

from archive import seals
from archive.errors import InvalidInput, NotFound, PermissionDenied
from archive.notes import add_note, list_notes

from .. import helpers

ROLES = ("admin", "archivist", "inspector", "handler")
SEALED_WORDS = ("bồi", "thường")
# a machine transcript's segments, with word times
MACHINE = [
    {"start": 0.2, "end": 1.0, "speaker": "Chủ trì", "text": "Xin chào các đại biểu",
     "words": [{"w": w, "start": round(0.2 + i * 0.16, 3), "end": round(0.36 + i * 0.16, 3), "conf": 0.9}
               for i, w in enumerate("Xin chào các đại biểu".split())]},
    {"start": 1.2, "end": 2.64, "speaker": "Công dân", "text": "Tôi khiếu nại việc bồi thường đất đai",
     "words": [{"w": w, "start": round(1.2 + i * 0.18, 3), "end": round(1.38 + i * 0.18, 3), "conf": 0.7}
               for i, w in enumerate("Tôi khiếu nại việc bồi thường đất đai".split())]},
]


@pytest.fixture
def people(archive):
    """One user per role, with and without clearance: `people[(role, cleared)]`."""
    # straight into the catalog: the password (and its slow hash) plays no part here
    return {(role, cleared): archive.catalog.add_user(f"{role}-{'c' if cleared else 'n'}", role, "-", cleared)
            for role in ROLES for cleared in (True, False)}


def max_volume(path, start: float, end: float) -> float:
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "info", "-i", str(path), "-map", "0:a:0", "-af",
                          f"atrim=start={start}:end={end},volumedetect", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    return float(re.search(r"max_volume: (-?[\d.]+) dB", out).group(1))


def brightest_pixel(path, at: float) -> int:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf",
                          f"select=gte(t\\,{at})", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         capture_output=True, check=True).stdout
    assert raw
    return max(raw)


# -- validation -----------------------------------------------------------------------------------

def test_bad_spans_are_refused_with_clear_messages(filled, people):
    archive, video = filled["archive"], filled["video"]
    keeper = people[("archivist", False)]
    with pytest.raises(InvalidInput, match=r"start \(2 s\) must come before its end \(1 s\)") as refused:
        seals.add_seal(archive, video, 2.0, 1.0, "Điều 2 NĐ 13/2023", keeper)
    assert refused.value.reason == "seal.start_not_before_end"
    with pytest.raises(InvalidInput, match="must come before"):
        seals.add_seal(archive, video, 1.0, 1.0, "Điều 2 NĐ 13/2023", keeper)
    with pytest.raises(InvalidInput, match=r"recording is 3\.000 s long; a seal ending at 4\.5 s is outside it") as refused:
        seals.add_seal(archive, video, 2.0, 4.5, "Điều 2 NĐ 13/2023", keeper)
    duration = archive.catalog.get_recording(video).duration
    # the web says each refusal in Vietnamese from its reason and values
    assert (refused.value.reason, refused.value.values) == ("seal.outside", {"start": 2.0, "end": 4.5,
                                                                             "duration": duration})
    with pytest.raises(InvalidInput, match="cannot start before the recording") as refused:
        seals.add_seal(archive, video, -1, 1.0, "Điều 2 NĐ 13/2023", keeper)
    assert refused.value.reason == "seal.outside"
    with pytest.raises(InvalidInput, match="are seconds") as refused:
        seals.add_seal(archive, video, "một", 1.0, "Điều 2 NĐ 13/2023", keeper)
    assert refused.value.reason == "seal.not_seconds"
    with pytest.raises(InvalidInput, match="are seconds"):
        seals.add_seal(archive, video, None, 1.0, "Điều 2 NĐ 13/2023", keeper)
    with pytest.raises(InvalidInput, match="needs a reason") as refused:
        seals.add_seal(archive, video, 0.5, 1.0, "   ", keeper)
    assert refused.value.reason == "seal.no_reason"
    with pytest.raises(InvalidInput, match="at most 500 characters") as refused:
        seals.add_seal(archive, video, 0.5, 1.0, "x" * 501, keeper)
    assert (refused.value.reason, refused.value.values["limit"]) == ("seal.reason_too_long", 500)
    first = seals.add_seal(archive, video, 1.0, 2.0, "Số CCCD của công dân", keeper)
    with pytest.raises(InvalidInput, match=rf"overlaps seal {first.id} \(1–2 s\)") as refused:
        seals.add_seal(archive, video, 1.5, 2.5, "Địa chỉ nhà riêng", keeper)
    assert (refused.value.reason, refused.value.values) == (
        "seal.overlap", {"start": 1.5, "end": 2.5, "seal": first.id, "seal_start": 1.0, "seal_end": 2.0})
    with pytest.raises(InvalidInput, match="overlaps"):
        seals.add_seal(archive, video, 0.0, 3.0, "Địa chỉ nhà riêng", keeper)
    # touching is not overlapping
    seals.add_seal(archive, video, 2.0, 2.5, "Địa chỉ nhà riêng", keeper)
    with pytest.raises(NotFound):
        seals.add_seal(archive, "0" * 16, 0, 1, "Lý do", keeper)
    with pytest.raises(PermissionDenied, match="may not seal"):
        seals.add_seal(archive, video, 0.1, 0.5, "Lý do", people[("inspector", True)])
    assert [(s.start, s.end) for s in seals.list_seals(archive, filled["session"])] == [(1.0, 2.0), (2.0, 2.5)]
    actions = [e["action"] for e in archive.catalog.audit_entries(session_id=filled["session"])]
    assert actions.count("seal.add") == 2


def test_unsealing_is_audited_and_kept(filled, people):
    archive, video = filled["archive"], filled["video"]
    seal = seals.add_seal(archive, video, 1.0, 2.0, "Số CCCD", people[("admin", False)])
    with pytest.raises(PermissionDenied):
        seals.remove_seal(archive, seal.id, people[("handler", True)])
    removed = seals.remove_seal(archive, seal.id, people[("archivist", True)], reason="Công dân đồng ý công khai")
    assert removed.removed_by == "archivist-c" and removed.removed_at
    assert seals.list_seals(archive, recording_id=video) == []
    assert [s.id for s in seals.list_seals(archive, recording_id=video, with_removed=True)] == [seal.id]
    with pytest.raises(InvalidInput, match="removed already"):
        seals.remove_seal(archive, seal.id, people[("archivist", True)])
    entry = archive.catalog.audit_entries(session_id=filled["session"], descending=True, limit=1)[0]
    assert entry["action"] == "seal.remove" and entry["actor"] == "archivist-c"
    assert "đồng ý" in entry["detail"]


# -- redaction ------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("cleared", (True, False))
def test_redaction_for_every_role(filled, people, role, cleared):
    archive, video = filled["archive"], filled["video"]
    seals.add_seal(archive, video, 1.92, 2.28, "Số tiền bồi thường là thông tin riêng", people[("archivist", False)])
    seals.add_seal(archive, video, 0.0, 0.2, "Lời chào", people[("archivist", False)])
    segments = MACHINE
    text_only = [{"start": 1.5, "end": 2.0, "speaker": "", "text": "bồi thường một trăm triệu", "words": []}]
    user = people[(role, cleared)]
    shown = seals.redact_transcript(archive, video, segments + text_only, user)
    joined = " ".join(s["text"] for s in shown)
    if cleared or role == "admin":
        assert seals.sees_sealed(user)
        assert shown == segments + text_only
    else:
        assert not seals.sees_sealed(user)
        assert not any(w in joined for w in SEALED_WORDS) and "một trăm" not in joined
        assert shown[0] == segments[0]          # touches a seal's end only: untouched
        assert shown[1]["text"] == f"Tôi khiếu nại việc {seals.MARKER} đất đai"
        assert [w["w"] for w in shown[1]["words"]] == ["Tôi", "khiếu", "nại", "việc", seals.MARKER, "đất", "đai"]
        assert {k: shown[1]["words"][4][k] for k in ("start", "end", "sealed")} == {"start": 1.92, "end": 2.28, "sealed": True}
        assert shown[1]["sealed"] and shown[2] == {**text_only[0], "text": seals.MARKER, "sealed": True}
        assert segments[1]["text"] == "Tôi khiếu nại việc bồi thường đất đai"   # not changed in place


def test_redaction_of_notes_and_of_nobody(filled, people):
    archive, video = filled["archive"], filled["video"]
    seals.add_seal(archive, video, 1.0, 2.0, "Địa chỉ", people[("archivist", False)])
    add_note(archive, video, 0.5, None, "Mở đầu phiên", people[("inspector", False)])
    add_note(archive, video, 1.5, None, "Công dân đọc số CCCD 0123", people[("inspector", False)])
    add_note(archive, video, 0.5, 1.2, "Đoạn nêu địa chỉ", people[("handler", False)])
    notes = list_notes(archive, recording_id=video)
    seal_rows = archive.catalog.list_seals(recording_id=video)
    shown = seals.redact_notes(notes, seal_rows, people[("handler", False)])
    assert [n.text for n in shown] == ["Mở đầu phiên", seals.MARKER, seals.MARKER]
    assert seals.redact_notes(notes, seal_rows, people[("handler", True)]) == notes
    as_dicts = seals.redact_notes([n.to_dict() for n in notes], seal_rows, None)
    assert [n["text"] for n in as_dicts][1:] == [seals.MARKER, seals.MARKER]
    assert not seals.sees_sealed(None)
    archive.catalog.update_user("admin-n", disabled=1)
    assert not seals.sees_sealed(archive.catalog.get_user("admin-n"))


def test_spans_merge():
    assert seals.spans([(3, 4), (1, 2), (2, 2.5), {"start": 3.5, "end": 5}]) == [(1, 2.5), (3, 5)]


# -- the derived access copy ------------------------------------------------------------------------

def test_sealed_copy_is_silent_and_black_and_the_original_untouched(filled, people):
    archive, video = filled["archive"], filled["video"]
    catalog, store = archive.catalog, archive.store
    rec = catalog.get_recording(video)
    seals.add_seal(archive, video, 1.0, 2.0, "Số CCCD", people[("archivist", False)])
    cleared, plain = people[("inspector", True)], people[("inspector", False)]
    assert seals.playable(archive, rec, cleared) == (rec.access_sha256, "video/mp4")
    with pytest.raises(seals.SealedCopyPending, match="not ready"):
        seals.playable(archive, rec, plain)

    copy = seals.make_sealed_copy(archive, video, actor="archivist-n")
    assert seals.make_sealed_copy(archive, video) == copy   # up to date: kept
    sha, mime = seals.playable(archive, rec, plain)
    assert (sha, mime) == (copy["sha256"], "video/mp4") and sha not in (rec.access_sha256, rec.original_sha256)
    assert catalog.get_object(sha)["kind"] == "derived"
    with store.materialize(sha) as path:
        inside = max_volume(path, 1.05, 1.95)
        before, after = max_volume(path, 0.1, 0.9), max_volume(path, 2.1, 2.9)
        assert inside <= -90.0, inside
        assert before > -30 and after > -30
        assert brightest_pixel(path, 1.5) <= 20
        assert brightest_pixel(path, 0.5) > 200
    print(f"sealed span 1.05–1.95 s max_volume {inside} dB; outside {before} / {after} dB")
    # the original and the ordinary access copy are bit-exact
    assert store.rehash(rec.original_sha256) == rec.original_sha256
    assert store.rehash(rec.access_sha256) == rec.access_sha256

    # a new seal makes the copy stale until it is made again; the old copy leaves the store
    seals.add_seal(archive, video, 2.5, 2.9, "Địa chỉ", people[("archivist", False)])
    with pytest.raises(seals.SealedCopyPending):
        seals.playable(archive, rec, plain)
    newer = seals.make_sealed_copy(archive, video)
    assert newer["spans"] == [[1.0, 2.0], [2.5, 2.9]] and not store.exists(sha)
    with pytest.raises(NotFound):
        catalog.get_object(sha)
    # no seal left: no copy, everyone plays the access copy
    for seal in seals.list_seals(archive, recording_id=video):
        seals.remove_seal(archive, seal.id, people[("admin", True)])
    assert seals.make_sealed_copy(archive, video) is None
    assert not store.exists(newer["sha256"])
    assert seals.playable(archive, rec, plain) == (rec.access_sha256, "video/mp4")


def test_sealed_copy_of_an_audio_recording_without_access_copy(filled, people):
    archive, audio = filled["archive"], filled["audio"]
    seals.add_seal(archive, audio, 0.5, 1.5, "Giọng nói người làm chứng", people[("archivist", False)])
    copy = seals.make_sealed_copy(archive, audio)
    assert copy["mime"] == "audio/mp4"
    with archive.store.materialize(copy["sha256"]) as path:
        assert max_volume(path, 0.55, 1.45) <= -90.0
        assert max_volume(path, 1.6, 2.9) > -30
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv",
                                str(path)], capture_output=True, text=True, check=True).stdout
        assert "video" not in probe and "audio" in probe

    # years later, a fixity run names the damaged copy by its recording, like any other object
    from archive.fixity import verify
    helpers.flip_byte(archive.store.path(copy["sha256"]))
    [problem] = verify(archive, actor="test").problems
    assert problem.sha256 == copy["sha256"] and problem.problem == "differs"
    assert [(o["recording_id"], o["role"]) for o in problem.owners] == [(audio, "sealed copy")]
    assert "not attached to any recording" not in problem.describe() and "sealed copy" in problem.describe()
    # and so does a run over that one session (it left sealed copies out before)
    [problem] = verify(archive, session_id=archive.catalog.get_recording(audio).session_id, actor="test").problems
    assert problem.sha256 == copy["sha256"]


# The tests give --user or leave it out on purpose: the $TCD_USER of whoever runs them must not count.
tcd = partial(helpers.tcd, env={"TCD_USER": ""})


def test_the_command_line(filled, people):
    from search import open_index
    archive, video = filled["archive"], filled["video"]
    archive.catalog.add_transcript(recording_id=video, segments=MACHINE, kind="human", author="Bình")
    index = open_index(archive)
    index.sync()
    assert index.search("bồi thường").total == 1
    for args, message in ((("--start", "2", "--end", "1"), "must come before its end"),
                          (("--start", "1", "--end", "9"), "outside it")):
        result = tcd(archive.home, "seal", "add", video, *args, "--reason", "CCCD", "--user", "archivist-n")
        assert result.exit_code == 1 and message in result.output
    result = tcd(archive.home, "seal", "add", video, "--start", "1", "--end", "2", "--reason", "CCCD", "--user", "handler-c")
    assert result.exit_code == 1 and "may not seal" in result.output
    result = tcd(archive.home, "seal", "add", video, "--start", "1", "--end", "2", "--reason", "Số CCCD",
                 "--user", "archivist-n")
    assert result.exit_code == 0 and "silenced copy" in result.output
    assert index.search("bồi thường").total == 0   # the command brought the index up to date
    assert any("<mark>đất</mark>" in h.snippet for h in index.search("đất đai").hits)
    result = tcd(archive.home, "seal", "add", video, "--start", "1.5", "--end", "2.5", "--reason", "x", "--user", "admin-n")
    assert result.exit_code == 1 and "overlaps seal 1 (1–2 s)" in result.output
    assert archive.catalog.sealed_copy(video)["spans"] == [[1.0, 2.0]]
    assert "Số CCCD" in tcd(archive.home, "seal", "list", filled["session"]).output
    result = tcd(archive.home, "seal", "remove", "1", "--user", "admin-n", "--reason", "Đã công khai")
    assert result.exit_code == 0 and archive.catalog.sealed_copy(video) is None
    assert "Nothing" in tcd(archive.home, "seal", "list", video).output
    assert "removed" in tcd(archive.home, "seal", "list", video, "--all").output


def test_what_the_search_index_may_hold(filled, people):
    archive, video = filled["archive"], filled["video"]
    seals.add_seal(archive, video, 1.92, 2.28, "Số tiền", people[("archivist", False)])
    seals.add_seal(archive, video, 0.1, 1.1, "Lời chào", people[("archivist", False)])
    add_note(archive, video, 2.5, None, "công dân đề nghị đối thoại trực tiếp", people[("inspector", False)])
    add_note(archive, video, 0.5, None, "số CCCD được đọc ở đây", people[("inspector", False)])
    indexed = seals.searchable(archive, video, MACHINE)
    assert [(s["start"], s["speaker"], s["text"]) for s in indexed] == [
        (1.2, "Công dân", "Tôi khiếu nại việc đất đai"),
        (2.5, seals.NOTE_SPEAKER, "công dân đề nghị đối thoại trực tiếp")]
    assert indexed[1]["words"] == [] and indexed[1]["end"] == 2.5
    assert all(not w.get("sealed") for s in indexed for w in s["words"])


def test_backups_carry_seals_and_the_viewer_shows_no_sealed_text(filled, people, tmp_path):
    import json as _json

    from archive import open_archive
    from archive.backup import backup_disk
    from archive.restore import restore
    archive, video, sid = filled["archive"], filled["video"], filled["session"]
    catalog = archive.catalog
    catalog.add_transcript(recording_id=video, segments=MACHINE, kind="human", author="Trần Thị Bình")
    seals.add_seal(archive, video, 1.92, 2.28, "Số tiền bồi thường", people[("archivist", False)])
    add_note(archive, video, 2.0, None, "số tài khoản 0123456789 được đọc", people[("inspector", False)])
    add_note(archive, video, 0.5, None, "mở đầu", people[("inspector", False)])
    copy = seals.make_sealed_copy(archive, video)
    report = backup_disk(archive, tmp_path / "bag")
    assert report.complete, report.problems
    bag = tmp_path / "bag"
    data_js = (bag / "viewer" / "data.js").read_text(encoding="utf-8")
    assert "bồi thường" not in data_js and "0123456789" not in data_js
    assert seals.MARKER in data_js and "mở đầu" in data_js
    viewer = _json.loads(data_js.split("=", 1)[1].rstrip().rstrip(";"))
    rec = next(r for s in viewer["sessions"] for r in s["recordings"] if r["id"] == video)
    assert rec["media"].endswith(f"/sealed/{video}.mp4") and (bag / rec["media"]).is_file()
    assert "access" not in rec["files"] and "original" not in rec["files"]
    doc = _json.loads((bag / "data" / sid / "session.json").read_text(encoding="utf-8"))
    assert [s["start"] for s in doc["seals"]] == [1.92] and len(doc["notes"]) == 2
    assert (bag / rec["media"]).stat().st_size == catalog.get_object(copy["sha256"])["size"]

    # a restore into an empty archive brings the seals back with the text
    fresh = open_archive(tmp_path / "fresh", env={})
    restored = restore(fresh, bag)
    assert not restored.problems, restored.problems
    assert [(s["start"], s["end"], s["reason"]) for s in fresh.catalog.list_seals(recording_id=video)] == [
        (1.92, 2.28, "Số tiền bồi thường")]
    assert sorted(n["text"] for n in fresh.catalog.list_notes(recording_id=video)) == [
        "mở đầu", "số tài khoản 0123456789 được đọc"]
    again = restore(fresh, bag)
    assert len(fresh.catalog.list_seals(recording_id=video)) == 1 and len(fresh.catalog.list_notes(recording_id=video)) == 2
    assert not again.problems
    fresh.catalog.close()


def test_citations_leave_sealed_passages_out(filled, people):
    from archive import citations
    archive, video = filled["archive"], filled["video"]
    seals.add_seal(archive, video, 1.5, 2.0, "Số tiền", people[("archivist", False)])
    with pytest.raises(InvalidInput, match="touches a sealed span"):
        citations.cite(archive, video, 1.2, 2.5, actor="admin-c")
    assert citations.cite(archive, video, 0.3, 0.9, actor="handler-n").quote

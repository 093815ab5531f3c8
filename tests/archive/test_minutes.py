"""Exports of any version: round trips to the millisecond, NFC text in every format, and the
DOCX minutes ("biên bản") read back with python-docx."""
from __future__ import annotations

import io
import unicodedata

import pytest
from docx import Document

from archive.errors import InvalidInput, NotFound
from archive.minutes import EXPORT_FORMATS, clock, date_vi, export, render_minutes
from archive.transcripts import import_transcript, parse, save_transcript

from ..helpers import add_recording


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# Times at awkward milliseconds, up to the third hour; speakers and text with Vietnamese marks,
# handed in decomposed (NFD) as some keyboards and old files produce them.
SEGMENTS = [
    {"start": 0.001, "end": 1.999, "speaker": nfd("Chủ trì"), "text": nfd("Xin chào các đại biểu."), "words": []},
    {"start": 2.0, "end": 61.007, "speaker": nfd("Bà Trần Thị Bình"),
     "text": nfd("Tôi khiếu nại về việc thu hồi đất ở xã Đức Hòa, bồi thường chưa thỏa đáng & chậm."),
     "words": []},
    {"start": 3599.999, "end": 3600.001, "speaker": "", "text": nfd("Ừ, được."), "words": []},
    {"start": 10799.5, "end": 10799.999, "speaker": nfd("Điểm cầu huyện Quỳnh Lưu"),
     "text": nfd("Chúng tôi ghi nhận ý kiến của công dân."), "words": []},
]
NFC_TEXTS = [unicodedata.normalize("NFC", s["text"]) for s in SEGMENTS]
NFC_SPEAKERS = [unicodedata.normalize("NFC", s["speaker"]) for s in SEGMENTS]


@pytest.fixture
def rec(archive, tmp_path):
    recording = add_recording(archive, tmp_path / "phien-3-gio.mp4", {
        "title": nfd("Tiếp công dân định kỳ tháng 3"), "held_on": "2025-03-14", "case_code": "KN-2025-017",
        "category": "b", "chair": nfd("Ông Nguyễn Văn Đức, Phó Chủ tịch UBND tỉnh"),
        "central_point": nfd("Trụ sở Tiếp công dân tỉnh"),
        "delegate_points": [nfd("UBND huyện Quỳnh Lưu"), nfd("UBND xã Đức Hòa")],
        "complainants": [nfd("Bà Trần Thị Bình"), nfd("Ông Lê Văn Hải")]},
        content=b"three hours of a reception session" * 40, media_type="video/mp4", point="Trung tâm",
        duration=10800.0)
    save_transcript(archive, recording.id, SEGMENTS, kind="human", author="hoa")
    return recording


@pytest.mark.parametrize("fmt", ["vtt", "srt"])
def test_exported_webvtt_and_srt_import_back_unchanged_to_the_millisecond(archive, rec, tmp_path, fmt):
    exported, version = export(archive, rec.id, None, fmt)
    path = tmp_path / exported.filename
    path.write_bytes(exported.body)
    back = import_transcript(archive, rec.id, path, author="lan")
    assert back.version == version.version + 1
    assert [(s["start"], s["end"], s["speaker"], s["text"]) for s in back.segments] == \
           [(s["start"], s["end"], s["speaker"], s["text"]) for s in version.segments]
    assert [s["start"] for s in back.segments] == [0.001, 2.0, 3599.999, 10799.5]


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_vietnamese_text_survives_every_format_in_nfc(archive, rec, fmt):
    exported, _ = export(archive, rec.id, 1, fmt)
    if fmt == "docx":
        doc = Document(io.BytesIO(exported.body))
        text = "\n".join(p.text for p in doc.paragraphs)
    else:
        text = exported.body.decode("utf-8")
        segments = parse(text, fmt)
        assert [s["text"] for s in segments] == NFC_TEXTS
        assert [s["speaker"] for s in segments] == NFC_SPEAKERS
    assert text == unicodedata.normalize("NFC", text)
    for expected in NFC_TEXTS:
        # JSON and the markup formats escape nothing but &, < and >.
        assert expected.replace("&", "&amp;" if fmt == "vtt" else "&") in text


def test_the_minutes_hold_the_session_header_and_every_passage(archive, rec):
    exported, transcript = export(archive, rec.id, None, "docx")
    assert exported.filename == f"{rec.session_id}-{rec.id}-v1.docx"
    assert exported.media_type.endswith("wordprocessingml.document")
    doc = Document(io.BytesIO(exported.body))
    paragraphs = [p.text for p in doc.paragraphs]
    assert paragraphs[:2] == ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]
    assert "BIÊN BẢN" in paragraphs and "Tiếp công dân trực tuyến" in paragraphs
    facts = {row.cells[0].text: row.cells[1].text for row in doc.tables[0].rows}
    assert facts["Mã phiên"] == rec.session_id
    assert facts["Tiêu đề"] == "Tiếp công dân định kỳ tháng 3"
    assert facts["Ngày tiếp công dân"] == "ngày 14 tháng 3 năm 2025"
    assert facts["Mã vụ việc"] == "KN-2025-017"
    assert facts["Tiêu chí vụ việc"] == "Tiêu chí b (Điều 4)"
    assert facts["Người chủ trì"] == "Ông Nguyễn Văn Đức, Phó Chủ tịch UBND tỉnh"
    assert facts["Điểm cầu trung tâm"] == "Trụ sở Tiếp công dân tỉnh"
    assert facts["Điểm cầu đại biểu"] == "UBND huyện Quỳnh Lưu; UBND xã Đức Hòa"
    assert facts["Người khiếu nại, kiến nghị, phản ánh"] == "Bà Trần Thị Bình; Ông Lê Văn Hải"
    assert facts["SHA-256 của bản gốc"] == rec.original_sha256
    assert facts["Bản ghi lời"].startswith("phiên bản 1, hiệu đính bởi hoa")
    body = paragraphs[paragraphs.index("NỘI DUNG") + 1:]
    assert body[:4] == [
        "[00:00:00] Chủ trì: Xin chào các đại biểu.",
        "[00:00:02] Bà Trần Thị Bình: " + NFC_TEXTS[1],
        "[00:59:59] Ừ, được.",
        "[02:59:59] Điểm cầu huyện Quỳnh Lưu: Chúng tôi ghi nhận ý kiến của công dân.",
    ]
    # The speaker label is its own bold run, so a reader sees who speaks.
    first = doc.paragraphs[paragraphs.index("NỘI DUNG") + 1]
    assert [(r.text, bool(r.bold)) for r in first.runs][1] == ("Chủ trì: ", True)
    assert doc.core_properties.title.startswith(f"Biên bản {rec.session_id}")
    assert doc.sections[0].footer.paragraphs[0].text.endswith("bản ghi lời phiên bản 1")


def test_the_minutes_of_an_empty_transcript_say_so(archive, rec):
    transcript = archive.catalog.get_transcript(rec.id, 1)
    transcript.segments = []
    session = archive.catalog.get_session(rec.session_id)
    doc = Document(io.BytesIO(render_minutes(session, rec, transcript)))
    assert "(Bản ghi lời trống.)" in [p.text for p in doc.paragraphs]


def test_export_refuses_an_unknown_format_or_version(archive, rec):
    with pytest.raises(InvalidInput, match="Unknown format 'pdf'"):
        export(archive, rec.id, None, "pdf")
    with pytest.raises(NotFound, match="no transcript version 7"):
        export(archive, rec.id, 7, "docx")


def test_time_codes_and_dates_as_documents_write_them():
    assert clock(10799.5) == "02:59:59" and clock(10799.5, up=True) == "03:00:00"
    assert clock(61.0, up=True) == "00:01:01" and clock(0.0) == "00:00:00"
    assert date_vi("2025-03-04") == "ngày 4 tháng 3 năm 2025"

"""DOCX documents: the minutes of a session ("biên bản") laid out from one transcript version, and
a citation as a document; and `export`, which gives one version in any download format.

The minutes open with the national heading, the title and a table of the session's metadata
(title, date, case, chair, bridge points, complainants, the recording and the transcript version
they were made from), then one paragraph per segment: the time code, the speaker label and what
was said. All text is written in Unicode NFC, in Times New Roman as Vietnamese official documents
use (Nghị định 30/2020/NĐ-CP).
"""
from __future__ import annotations

import datetime as dt
import io
import math
import unicodedata
from dataclasses import dataclass

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Cm, Pt, RGBColor

from . import seals
from .catalog import Recording, Session, Transcript
from .errors import InvalidInput, NotFound
from .notes import list_notes
from .transcripts import FORMATS, MEDIA_TYPES, render

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
EXPORT_FORMATS = (*FORMATS, "docx")
FONT = "Times New Roman"
GREY = RGBColor(0x55, 0x55, 0x55)


def nfc(text) -> str:
    return unicodedata.normalize("NFC", str(text or ""))


def clock(seconds: float, up: bool = False) -> str:
    """hh:mm:ss; `up` rounds up (the end of a span), otherwise down (its start)."""
    whole = math.ceil(seconds - 1e-6) if up else math.floor(seconds + 1e-6)
    whole = max(0, int(whole))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def date_vi(iso: str) -> str:
    """`2025-03-14` as Vietnamese documents write it: ngày 14 tháng 3 năm 2025."""
    try:
        day = dt.date.fromisoformat(iso[:10])
    except ValueError:
        return nfc(iso)
    return f"ngày {day.day} tháng {day.month} năm {day.year}"


def category_vi(code: str) -> str:
    if not code:
        return ""
    return "Khác" if code == "other" else f"Tiêu chí {code} (Điều 4)"


def session_facts(session: Session) -> list[tuple[str, str]]:
    """The session's metadata as (label, value) rows, empty values left out."""
    rows = [
        ("Mã phiên", session.id),
        ("Tiêu đề", session.title),
        ("Ngày tiếp công dân", date_vi(session.held_on)),
        ("Mã vụ việc", session.case_code),
        ("Tiêu chí vụ việc", category_vi(session.category)),
        ("Người chủ trì", session.chair),
        ("Điểm cầu trung tâm", session.central_point),
        ("Điểm cầu đại biểu", "; ".join(session.delegate_points)),
        ("Người khiếu nại, kiến nghị, phản ánh", "; ".join(session.complainants)),
        ("Thành phần tham dự", "; ".join(session.participants)),
    ]
    return [(label, nfc(value)) for label, value in rows if value]


def _document(title: str, author: str) -> Document:
    doc = Document()
    section = doc.sections[0]
    section.page_height, section.page_width = Cm(29.7), Cm(21.0)   # A4
    section.top_margin = section.bottom_margin = Cm(2)
    section.left_margin, section.right_margin = Cm(3), Cm(1.5)
    normal = doc.styles["Normal"]
    normal.font.name = FONT
    normal.font.size = Pt(13)
    normal.paragraph_format.space_after = Pt(4)
    doc.core_properties.title = nfc(title)
    doc.core_properties.author = nfc(author)
    doc.core_properties.language = "vi-VN"
    return doc


def _centered(doc: Document, text: str, bold: bool = False, size: int | None = None,
              underline: bool = False):
    paragraph = doc.add_paragraph()
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    paragraph.paragraph_format.space_after = Pt(0)
    run = paragraph.add_run(nfc(text))
    run.bold, run.underline = bold, underline
    if size:
        run.font.size = Pt(size)
    return paragraph


def _facts_table(doc: Document, rows: list[tuple[str, str]]) -> None:
    table = doc.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for label, value in rows:
        cells = table.add_row().cells
        cells[0].width, cells[1].width = Cm(5.5), Cm(11)
        cells[0].paragraphs[0].add_run(nfc(label)).bold = True
        cells[1].paragraphs[0].add_run(nfc(value))


def _saved(doc: Document) -> bytes:
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def _transcript_line(transcript: Transcript) -> str:
    who = (f"nhận dạng tự động ({transcript.engine} {transcript.model})".strip()
           if transcript.kind == "machine" else f"hiệu đính bởi {transcript.author}")
    return f"phiên bản {transcript.version}, {nfc(who)}, lưu lúc {transcript.created_at}"


def render_minutes(session: Session, recording: Recording, transcript: Transcript,
                   notes: list = ()) -> bytes:
    """The minutes of `session` from one transcript version of one of its recordings, as DOCX,
    with the recording's timestamped notes (archive.notes.Note) after the content."""
    doc = _document(f"Biên bản {session.id}: {session.title}", transcript.author)
    _centered(doc, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", bold=True, size=12)
    _centered(doc, "Độc lập - Tự do - Hạnh phúc", bold=True, underline=True)
    doc.add_paragraph()
    _centered(doc, "BIÊN BẢN", bold=True, size=14)
    _centered(doc, "Tiếp công dân trực tuyến", bold=True)
    _centered(doc, f"{session.title}, {date_vi(session.held_on)}")
    doc.add_paragraph()
    rows = session_facts(session)
    rows += [("Bản ghi", f"{recording.id}"
                         f"{' – ' + nfc(recording.point) if recording.point else ''}"
                         f" ({clock(recording.duration, up=True)}), tệp gốc {nfc(recording.original_name)}"),
             ("SHA-256 của bản gốc", recording.original_sha256),
             ("Bản ghi lời", _transcript_line(transcript))]
    _facts_table(doc, rows)

    heading = doc.add_paragraph()
    heading.paragraph_format.space_before = Pt(12)
    heading.add_run("NỘI DUNG").bold = True
    for seg in transcript.segments:
        paragraph = doc.add_paragraph()
        paragraph.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        stamp = paragraph.add_run(f"[{clock(seg['start'])}] ")
        stamp.font.color.rgb = GREY
        if seg.get("speaker"):
            paragraph.add_run(f"{nfc(seg['speaker'])}: ").bold = True
        paragraph.add_run(nfc(seg["text"]))
    if not transcript.segments:
        doc.add_paragraph("(Bản ghi lời trống.)")
    if notes:
        heading = doc.add_paragraph()
        heading.paragraph_format.space_before = Pt(12)
        heading.add_run("GHI CHÚ THEO THỜI ĐIỂM").bold = True
        for note in notes:
            paragraph = doc.add_paragraph()
            span = clock(note.start) + (f"–{clock(note.end, up=True)}" if note.end is not None else "")
            paragraph.add_run(f"[{span}] ").font.color.rgb = GREY
            paragraph.add_run(f"{nfc(note.author)}: ").bold = True
            paragraph.add_run(nfc(note.text))

    closing = doc.add_paragraph()
    closing.paragraph_format.space_before = Pt(12)
    note = closing.add_run(
        f"Biên bản được lập từ bản ghi lời {_transcript_line(transcript)} của bản ghi {recording.id}; "
        "thời điểm [giờ:phút:giây] tính từ đầu bản ghi.")
    note.italic = True
    note.font.size = Pt(11)
    footer = doc.sections[0].footer.paragraphs[0]
    footer.text = nfc(f"{session.id} · bản ghi {recording.id} · bản ghi lời phiên bản {transcript.version}")
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    return _saved(doc)


def render_citation_docx(citation) -> bytes:
    """A citation (archive.citations.Citation) as a one-page document: the block, line by line."""
    doc = _document(f"Trích dẫn {citation.code}", citation.issued_by)
    heading = doc.add_paragraph()
    heading.add_run("TRÍCH DẪN BẢN GHI LỜI").bold = True
    for i, line in enumerate(citation.block().splitlines()):
        paragraph = doc.add_paragraph()
        run = paragraph.add_run(nfc(line))
        if i < len(citation.quote_lines()):
            run.italic = True
        if line.startswith("Mã trích dẫn:"):
            run.bold = True
    return _saved(doc)


# -- exports -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Export:
    body: bytes
    media_type: str
    filename: str


def export(archive, recording_id: str, version: int | None, fmt: str,
           reader=None) -> tuple[Export, Transcript]:
    """One transcript version (the current one when `version` is None) in format `fmt`
    (json | txt | vtt | srt | docx), with the file name and media type to serve it under.
    Sealed spans read as a marker unless `reader` (a user) may read them (archive.seals)."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"Unknown format '{fmt}'; use one of {', '.join(EXPORT_FORMATS)}.")
    catalog = archive.catalog
    rec = catalog.get_recording(recording_id)
    transcript = (catalog.get_transcript(rec.id, version) if version is not None
                  else catalog.current_transcript(rec.id))
    if transcript is None:
        raise NotFound(f"Recording {rec.id} has no transcript yet; `tcd transcribe {rec.id}` makes one.")
    transcript = seals.redact_version(archive, transcript, reader)
    name = f"{rec.session_id}-{rec.id}-v{transcript.version}.{fmt}"
    if fmt == "docx":
        in_force = catalog.list_seals(recording_id=rec.id)
        notes = seals.redact_notes(list_notes(archive, recording_id=rec.id), in_force, reader)
        body = render_minutes(catalog.get_session(rec.session_id), rec, transcript, notes)
        return Export(body, DOCX_TYPE, name), transcript
    meta = {"session_id": rec.session_id, "recording_id": rec.id, "version": transcript.version,
            "kind": transcript.kind, "author": transcript.author, "created_at": transcript.created_at}
    text = render(transcript.segments, fmt, meta)
    return Export(text.encode("utf-8"), MEDIA_TYPES[fmt], name), transcript

"""What the templates need to show archive data safely: time codes, role names and search
snippets reduced to plain text with `<mark>` highlights (anything else in them is escaped)."""
from __future__ import annotations

from html.parser import HTMLParser

from markupsafe import Markup, escape

from archive.users import ROLE_LABELS


def clock(seconds: float | None) -> str:
    """H:MM:SS, or M:SS under an hour: how people cite a moment of a recording."""
    seconds = int(max(0.0, float(seconds or 0)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role)


class _MarkOnly(HTMLParser):
    """Re-emits a fragment keeping only <mark> and </mark>; all other text is escaped."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open_marks = 0

    def handle_starttag(self, tag, attrs):
        if tag == "mark":
            self.out.append("<mark>")
            self.open_marks += 1

    def handle_endtag(self, tag):
        if tag == "mark" and self.open_marks:
            self.out.append("</mark>")
            self.open_marks -= 1

    def handle_data(self, data):
        self.out.append(str(escape(data)))


def safe_snippet(fragment: str | None) -> Markup:
    """A search snippet as markup that can hold nothing but text and <mark> highlights, whether
    the index escaped it already or not."""
    parser = _MarkOnly()
    parser.feed(fragment or "")
    parser.close()
    return Markup("".join(parser.out) + "</mark>" * parser.open_marks)


def transcript_html(segments: list[dict], recording_id: str) -> Markup:
    """A transcript as the session page shows it: a <p class="seg"> per segment with its time code,
    a <span class="w"> per word with its times (the player marks and seeks by them), or the
    segment's text when it has no word times. Built here rather than in the template: a session of
    a few hours has tens of thousands of words, which Jinja renders several times slower."""
    out: list[str] = []
    add = out.append
    anchor = f"#rec-{escape(recording_id)}"
    for seg in segments:
        start = escape(seg["start"])
        add(f'<p class="seg" data-start="{start}" data-end="{escape(seg["end"])}">'
            f'<a class="tc" href="?t={start}{anchor}">{clock(seg["start"])}</a> ')
        if seg.get("speaker"):
            add(f'<span class="speaker">{escape(seg["speaker"])}:</span> ')
        words = seg.get("words")
        if words:
            add(" ".join(f'<span class="w" data-start="{escape(w["start"])}" data-end="{escape(w["end"])}">'
                         f'{escape(w["w"])}</span>' for w in words))
        else:
            add(f'<span class="text">{escape(seg.get("text", ""))}</span>')
        add("</p>\n")
    return Markup("".join(out))


CATEGORIES = [("a", "Tiêu chí a"), ("b", "Tiêu chí b"), ("c", "Tiêu chí c"), ("d", "Tiêu chí d"),
              ("đ", "Tiêu chí đ"), ("e", "Tiêu chí e"), ("other", "Khác")]
JOB_STATUS = {"pending": "Đang chờ", "queued": "Đang chờ", "running": "Đang xử lý",
              "waiting": "Chờ kho lưu trữ", "done": "Hoàn tất", "failed": "Lỗi",
              "duplicate": "Đã có trong kho", "refused": "Bị từ chối (giữ trong khu cách ly)"}
JOB_STAGE = {"receive": "Nhận tệp", "probe": "Kiểm tra tệp", "preserve": "Lưu bản gốc",
             "transcode": "Tạo bản để xem", "transcribe": "Nhận dạng giọng nói",
             "index": "Lập chỉ mục tìm kiếm"}


def category_label(code: str) -> str:
    return dict(CATEGORIES).get(code, code)


def job_status(status: str) -> str:
    return JOB_STATUS.get(status, status)


def job_stage(stage: str) -> str:
    return JOB_STAGE.get(stage, stage)

"""Transcript files: the project's JSON, text with time codes, WebVTT and SRT, both ways, and
storing a transcript as a new version (object in the store + row in the catalog).

Segments are `{start, end, speaker, text, words: [{w, start, end, conf}]}` with times in seconds
kept to the millisecond and text in Unicode NFC. Every parser reports a malformed file with the
line it found the problem on, and refuses times that go backwards or overlap: a transcript whose
times are wrong would send a reader to the wrong moment of the recording.

Text with time codes, as written by `render_txt` and read by `parse_txt`:

    [00:00:01.230 --> 00:00:04.500] [Chủ trì] Xin chào các đại biểu.

The end time and the bracketed speaker are optional on import; a line without a time code
continues the text of the line before. WebVTT speakers are voice tags (`<v Chủ trì>`); SRT has
no speaker field, so it uses the same `[Speaker]` prefix as the text format.
"""
from __future__ import annotations

import html
import json
import re
import tempfile
import unicodedata
from pathlib import Path

from .errors import InvalidInput, NotFound

FORMATS = ("json", "txt", "vtt", "srt")
MEDIA_TYPES = {"json": "application/json", "txt": "text/plain; charset=utf-8",
               "vtt": "text/vtt; charset=utf-8", "srt": "application/x-subrip"}
DURATION_SLACK = 1.0  # seconds a segment may run past the end of the recording (codec padding)

# 01:02:03.456, 1:02:03,456, 02:03.456, 01:02:03 (hours and milliseconds optional)
TIME = r"(?:\d+:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
CUE_TIMING = re.compile(rf"^\s*({TIME})\s*-->\s*({TIME})(?:\s+.*)?$")
TXT_LINE = re.compile(rf"^\[?\s*({TIME})(?:\s*(?:-->|–|—|-)\s*({TIME}))?\s*\]?(?:\s+(.*))?$")
LOOKS_TIMED = re.compile(r"^\[|^\d+:\d")
SPEAKER_PREFIX = re.compile(r"^\[([^\[\]]{1,80})\]\s*(.*)$", re.DOTALL)
VOICE = re.compile(r"<v(?:\.[^\s>]*)?\s+([^>]*)>")
TAG = re.compile(r"</?[^>]*>")
SRT_TAG = re.compile(r"</?(?:i|b|u|font)(?:\s[^>]*)?>|\{\\an\d\}", re.IGNORECASE)


class _Malformed(Exception):
    def __init__(self, line: int | None, reason: str):
        super().__init__(reason)
        self.line, self.reason = line, reason


# -- times and text ----------------------------------------------------------------------------

def parse_time(text: str) -> float:
    """Seconds from `HH:MM:SS.mmm` (also `,` for the milliseconds, hours optional)."""
    text = text.strip().replace(",", ".")
    whole, _, frac = text.partition(".")
    parts = [int(p) for p in whole.split(":")]
    if len(parts) == 2:
        parts.insert(0, 0)
    hours, minutes, seconds = parts
    if minutes > 59 or seconds > 59:
        raise ValueError(f"'{text}' is not a time (minutes and seconds go up to 59)")
    millis = int((frac + "000")[:3]) if frac else 0
    return round(hours * 3600 + minutes * 60 + seconds + millis / 1000, 3)


def format_time(seconds: float, sep: str = ".") -> str:
    millis = int(round(max(0.0, seconds) * 1000))
    h, rest = divmod(millis, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def clean_text(text: str) -> str:
    """NFC, with runs of white space made one space."""
    return " ".join(unicodedata.normalize("NFC", str(text)).split())


# -- validation --------------------------------------------------------------------------------

def normalize(segments: list[dict], lines: list[int | None] | None = None,
              duration: float | None = None) -> list[dict]:
    """Segments with ms times, NFC text and the keys of the shared format; raises InvalidInput
    (naming the line when known) for a backwards or overlapping time or a missing field."""
    lines = lines or [None] * len(segments)
    out: list[dict] = []
    for i, (seg, line) in enumerate(zip(segments, lines)):
        where = f"Line {line}" if line else f"Segment {i + 1}"
        if not isinstance(seg, dict):
            raise InvalidInput(f"{where} is not a segment (an object with start, end and text).")
        try:
            start, end = round(float(seg["start"]), 3), round(float(seg["end"]), 3)
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(f"{where} needs numeric 'start' and 'end' times in seconds.") from None
        text = clean_text(seg.get("text", ""))
        if start < 0 or end < start:
            raise InvalidInput(f"{where}: the time runs backwards ({format_time(start)} --> "
                               f"{format_time(end)}); fix the file and import it again.")
        if out and start < out[-1]["end"]:
            raise InvalidInput(f"{where}: it starts at {format_time(start)}, before the previous "
                               f"segment ends ({format_time(out[-1]['end'])}); fix the times and import it again.")
        if duration is not None and duration > 0 and start > duration + DURATION_SLACK:
            raise InvalidInput(f"{where}: it starts at {format_time(start)}, after the end of the "
                               f"recording ({format_time(duration)}); is it the transcript of another recording?")
        words = [_word(w, where) for w in seg.get("words") or []]
        out.append({"start": start, "end": end, "speaker": clean_text(seg.get("speaker", "")),
                    "text": text, "words": words})
    return out


def _word(word: dict, where: str) -> dict:
    try:
        w = {"w": clean_text(word["w"]), "start": round(float(word["start"]), 3),
             "end": round(float(word["end"]), 3)}
    except (KeyError, TypeError, ValueError):
        raise InvalidInput(f"{where}: a word needs 'w', 'start' and 'end'.") from None
    if w["end"] < w["start"]:
        raise InvalidInput(f"{where}: the word '{w['w']}' ends before it starts.")
    if "conf" in word:
        w["conf"] = round(float(word["conf"]), 3)
    return w


# -- rendering ---------------------------------------------------------------------------------

def render(segments: list[dict], fmt: str, meta: dict | None = None) -> str:
    """The transcript as text in format `fmt` (json | txt | vtt | srt)."""
    if fmt == "json":
        return render_json(segments, meta)
    if fmt == "txt":
        return render_txt(segments)
    if fmt == "vtt":
        return render_vtt(segments)
    if fmt == "srt":
        return render_srt(segments)
    raise InvalidInput(f"Unknown transcript format '{fmt}'; use one of {', '.join(FORMATS)}.")


def render_json(segments: list[dict], meta: dict | None = None) -> str:
    return json.dumps({**(meta or {}), "segments": segments}, ensure_ascii=False, indent=1) + "\n"


def _prefixed(seg: dict) -> str:
    return f"[{seg['speaker']}] {seg['text']}" if seg.get("speaker") else seg["text"]


def render_txt(segments: list[dict]) -> str:
    return "".join(f"[{format_time(s['start'])} --> {format_time(s['end'])}] {_prefixed(s)}\n"
                   for s in segments)


def render_vtt(segments: list[dict]) -> str:
    out = ["WEBVTT", ""]
    for s in segments:
        text = html.escape(s["text"], quote=False)
        if s.get("speaker"):
            text = f"<v {html.escape(s['speaker'], quote=False)}>{text}"
        out += [f"{format_time(s['start'])} --> {format_time(s['end'])}", text, ""]
    return "\n".join(out)


def render_srt(segments: list[dict]) -> str:
    out = []
    for i, s in enumerate(segments, start=1):
        out += [str(i), f"{format_time(s['start'], ',')} --> {format_time(s['end'], ',')}",
                _prefixed(s), ""]
    return "\n".join(out)


# -- parsing -----------------------------------------------------------------------------------

def detect_format(text: str, name: str = "") -> str:
    """json | txt | vtt | srt, from the file's name and then its first line."""
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    first = next((l.strip() for l in text.splitlines() if l.strip()), "")
    if first.startswith("WEBVTT"):
        return "vtt"
    if first[:1] in "[{" and first.lstrip("[").strip()[:1] in ("{", "]", '"', ""):
        return "json"
    if first.isdigit() or CUE_TIMING.match(first):
        return "srt"
    if TXT_LINE.match(first):
        return "txt"
    raise InvalidInput(f"'{name or 'the file'}' is in no format this program reads; "
                       "give a WebVTT (.vtt), SRT (.srt), JSON (.json) or time-coded text (.txt) file.")


def parse(text: str, fmt: str, duration: float | None = None) -> list[dict]:
    """Segments from a transcript file's text; raises InvalidInput naming the line at fault."""
    text = text.lstrip("\ufeff")
    parsers = {"json": _parse_json, "txt": _parse_txt, "vtt": _parse_vtt, "srt": _parse_srt}
    if fmt not in parsers:
        raise InvalidInput(f"Unknown transcript format '{fmt}'; use one of {', '.join(FORMATS)}.")
    try:
        segments, lines = parsers[fmt](text)
    except _Malformed as exc:
        where = f"Line {exc.line}" if exc.line else "The file"
        raise InvalidInput(f"{where} of the {fmt.upper()} file is malformed: {exc.reason}; "
                           "fix it and import it again.") from None
    if not segments:
        raise InvalidInput(f"The {fmt.upper()} file holds no transcript text.")
    return normalize(segments, lines, duration)


def _parse_json(text: str):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Malformed(exc.lineno, exc.msg) from None
    if isinstance(data, dict):
        data = data.get("segments")
    if not isinstance(data, list):
        raise _Malformed(None, "it is neither a list of segments nor an object with 'segments'")
    return data, [None] * len(data)


def _parse_txt(text: str):
    segments, lines = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = TXT_LINE.match(line)
        if not match:
            if LOOKS_TIMED.match(line):
                raise _Malformed(number, f"'{line[:40]}' does not start with a time code like "
                                         "[00:01:02.345 --> 00:01:05.000]")
            if not segments:
                raise _Malformed(number, "the text starts before the first time code")
            segments[-1]["text"] += " " + line
            continue
        start, end, body = match.groups()
        try:
            seg = {"start": parse_time(start), "end": parse_time(end) if end else None}
        except ValueError as exc:
            raise _Malformed(number, str(exc)) from None
        speaker, body = _split_speaker(body or "")
        seg.update(speaker=speaker, text=body, words=[])
        segments.append(seg)
        lines.append(number)
    # A time code without an end lasts until the next one starts.
    for seg, nxt in zip(segments, segments[1:] + [None]):
        if seg["end"] is None:
            seg["end"] = nxt["start"] if nxt else seg["start"]
    return segments, lines


def _split_speaker(text: str) -> tuple[str, str]:
    match = SPEAKER_PREFIX.match(text)
    return (match.group(1), match.group(2)) if match else ("", text)


def _cues(text: str, header: bool):
    """(timing line number, start, end, text lines) of each cue of a WebVTT or SRT file."""
    lines = text.splitlines()
    i = 0
    if header:
        if not lines or not lines[0].startswith("WEBVTT"):
            raise _Malformed(1, "a WebVTT file starts with the line WEBVTT")
        i = 1
        while i < len(lines) and lines[i].strip():  # header lines after WEBVTT
            i += 1
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block_start = i
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i])
            i += 1
        if header and block[0].split(maxsplit=1)[0] in ("NOTE", "STYLE", "REGION"):
            continue
        # A cue is [identifier] timing text...; SRT identifiers are numbers.
        timing = 0 if "-->" in block[0] else 1
        if not header and timing == 1 and not block[0].strip().isdigit():
            raise _Malformed(block_start + 1, f"'{block[0][:40]}' is not a cue number")
        if timing >= len(block) or (header and "-->" not in block[timing]):
            raise _Malformed(block_start + 1, "a cue needs a timing line like "
                                              "00:00:01.000 --> 00:00:04.000")
        match = CUE_TIMING.match(block[timing])
        number = block_start + timing + 1
        if not match:
            raise _Malformed(number, f"'{block[timing][:60]}' is not a timing line like "
                                     "00:00:01.000 --> 00:00:04.000")
        try:
            start, end = parse_time(match.group(1)), parse_time(match.group(2))
        except ValueError as exc:
            raise _Malformed(number, str(exc)) from None
        yield number, start, end, block[timing + 1:]


def _parse_vtt(text: str):
    segments, lines = [], []
    for number, start, end, body in _cues(text, header=True):
        raw = " ".join(body)
        voice = VOICE.search(raw)
        speaker = html.unescape(voice.group(1)).strip() if voice else ""
        segments.append({"start": start, "end": end, "speaker": speaker,
                         "text": html.unescape(TAG.sub("", raw)), "words": []})
        lines.append(number)
    return segments, lines


def _parse_srt(text: str):
    segments, lines = [], []
    for number, start, end, body in _cues(text, header=False):
        speaker, body_text = _split_speaker(" ".join(body))
        segments.append({"start": start, "end": end, "speaker": speaker,
                         "text": SRT_TAG.sub("", body_text), "words": []})
        lines.append(number)
    return segments, lines


# -- storing versions --------------------------------------------------------------------------

def save_transcript(archive, recording_id: str, segments: list[dict], kind: str, author: str,
                    engine: str = "", model: str = "", label: str = "", seconds: float = 0,
                    based_on: int | None = None):
    """Store `segments` as the recording's next transcript version: the JSON document goes into
    the store first (an object nobody points to is harmless), then the catalog row."""
    rec = archive.catalog.get_recording(recording_id)
    segments = normalize(segments)
    meta = {"recording_id": rec.id, "session_id": rec.session_id, "kind": kind, "author": author,
            "engine": engine, "model": model, "label": label}
    body = render_json(segments, meta).encode("utf-8")
    with tempfile.NamedTemporaryFile(dir=archive.settings.staging_dir, prefix="transcript-",
                                     suffix=".json") as tmp:
        tmp.write(body)
        tmp.flush()
        stored = archive.store.put_file(Path(tmp.name))
    archive.catalog.add_object(stored.sha256, stored.size, "transcript", "application/json")
    transcript = archive.catalog.add_transcript(
        recording_id=rec.id, segments=segments, kind=kind, author=author, engine=engine,
        model=model, label=label, sha256=stored.sha256, seconds=round(seconds, 3), based_on=based_on)
    archive.audit(author, "transcript.save", rec.session_id, rec.id, version=transcript.version,
                  kind=kind, sha256=stored.sha256, segments=len(segments))
    return transcript


def resolve_recording(archive, session_or_recording_id: str, with_transcript: bool = False):
    """The recording an id names: a recording id, or a session id meaning its first recording
    (with `with_transcript`, its first recording that has a transcript)."""
    catalog = archive.catalog
    try:
        return catalog.get_recording(session_or_recording_id)
    except NotFound:
        pass
    session = catalog.find_session(session_or_recording_id)
    if session is None:
        raise NotFound(f"There is no session or recording '{session_or_recording_id}'; "
                       "`tcd sessions` lists the sessions.")
    recordings = catalog.recordings_for_session(session.id)
    if with_transcript:
        recordings = [r for r in recordings if catalog.current_transcript(r.id, with_segments=False)]
    if not recordings:
        what = "a transcript" if with_transcript else "a recording"
        raise NotFound(f"Session {session.id} has no recording with {what} yet.")
    return recordings[0]


def import_transcript(archive, session_or_recording_id: str, path: Path, author: str,
                      label: str = "", fmt: str | None = None):
    """Read a transcript made elsewhere (WebVTT, SRT, JSON, time-coded text) and store it as a
    new human version of the recording; nothing is stored when the file is refused."""
    path = Path(path)
    rec = resolve_recording(archive, session_or_recording_id)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise NotFound(f"There is no file {path}.") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise InvalidInput(f"Line {line} of {path.name} is not UTF-8 text; save the file as "
                           "UTF-8 and import it again.") from None
    fmt = fmt or detect_format(text, path.name)
    segments = parse(text, fmt, duration=rec.duration)
    return save_transcript(archive, rec.id, segments, kind="human", author=author,
                           label=label or f"imported from {path.name}")

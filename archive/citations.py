"""Citations: an exact passage of one transcript version, quoted with its time codes and a short
code that lets anyone check it against the archive later.

A passage is whole segments: those that overlap the times asked for. The code commits to the
recording's SHA-256, the version, the passage's span (start of its first segment, end of its
last, to the millisecond) and the SHA-256 of the passage itself (its speakers and words):

    code = base32(SHA-256("tcd-cite-1|<original sha256>|<version>|<start ms>|<end ms>|<passage sha256>"))[:12]

written as XXXX-XXXX-XXXX. Each issued code is kept in the catalog (`citations`) with what it
commits to. `check(code)` does not trust that row: it re-hashes the stored transcript object of
the cited version, takes the passage from the object, hashes it, and recomputes the code. A
flipped byte in the object, a changed catalog copy of the transcript or a changed citation row
each make the check fail and say why; a code the archive never issued is refused. The check also
says whether a newer version of the transcript changed the passage.

Quoting, passages and the block's wording are in Vietnamese: the block goes into official
documents as it is.
"""
from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import unicodedata
from dataclasses import dataclass, field

from . import seals
from .catalog import Recording, Session, Transcript, now
from .errors import IntegrityError, InvalidInput, NotFound
from .minutes import clock, date_vi
from .transcripts import parse_time, resolve_recording

SCHEME = "tcd-cite-1"
CODE_CHARS = 12
CODE_RE = re.compile(r"^[A-Z2-7]{12}$")
EPSILON = 0.0005   # times are kept to the millisecond
UNKNOWN_SPEAKER = "(không ghi tên)"

PROBLEMS = {
    "recording_missing": "the recording it quotes is no longer in the archive",
    "version_missing": "the transcript version it quotes is no longer in the catalog",
    "object_replaced": "the catalog now points that version at a different stored object",
    "object_missing": "the stored transcript object is missing",
    "object_changed": "the stored transcript object no longer matches its SHA-256 (its bytes were changed)",
    "object_unreadable": "the stored transcript object is not a transcript any more",
    "passage_changed": "the passage in the stored transcript is not the one that was quoted",
    "catalog_copy_changed": "the catalog's copy of the transcript differs from the stored object",
    "quote_changed": "the quoted text kept with the citation was changed",
    "code_mismatch": "the citation record no longer matches its code (the catalog was changed)",
}


# -- passages, digests and codes ---------------------------------------------------------------

def parse_moment(value) -> float:
    """Seconds from `75.5`, `1:15.5` or `00:01:15.500`."""
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                seconds = parse_time(text)
            except (ValueError, IndexError):
                raise InvalidInput(f"'{text}' is not a time; write seconds (75.5) or "
                                   "hh:mm:ss (00:01:15.5).") from None
    if seconds != seconds or seconds < 0:   # NaN or negative
        raise InvalidInput(f"'{value}' is not a time in the recording; use a time from 0 on.")
    return round(seconds, 3)


def select(segments: list[dict], start: float, end: float) -> list[dict]:
    """The segments that overlap [start, end] (the one at `start` when both are equal)."""
    if end < start:
        raise InvalidInput(f"The passage ends ({clock(end)}) before it starts ({clock(start)}); "
                           "give the start first.")
    picked = [s for s in segments if s["start"] < end and s["end"] > start]
    if not picked:
        picked = [s for s in segments if s["start"] <= start <= s["end"]][:1]
    if not picked:
        raise InvalidInput(f"The transcript has no text between {clock(start)} and "
                           f"{clock(end, up=True)}; choose times where something is said.")
    return within(segments, picked[0]["start"], picked[-1]["end"])


def within(segments: list[dict], start: float, end: float) -> list[dict]:
    """The segments that lie inside [start, end]: the passage a citation's span names."""
    return [s for s in segments if s["start"] >= start - EPSILON and s["end"] <= end + EPSILON]


def passage_digest(passage: list[dict]) -> str:
    """SHA-256 of what a passage says: each segment's speaker and text, in NFC."""
    body = json.dumps([[unicodedata.normalize("NFC", s.get("speaker", "")),
                        unicodedata.normalize("NFC", s["text"])] for s in passage],
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def citation_code(original_sha256: str, version: int, start: float, end: float,
                  digest: str) -> str:
    message = (f"{SCHEME}|{original_sha256}|{int(version)}|{round(start * 1000)}|"
               f"{round(end * 1000)}|{digest}")
    raw = base64.b32encode(hashlib.sha256(message.encode("ascii")).digest()).decode()[:CODE_CHARS]
    return "-".join(raw[i:i + 4] for i in range(0, CODE_CHARS, 4))


def normalize_code(code: str) -> str:
    """XXXX-XXXX-XXXX from a code as a person typed it (any case, spaces, 0/1/8 for O/I/B)."""
    raw = re.sub(r"[\s\-–—.]", "", code or "").upper().translate(str.maketrans("018", "OIB"))
    if not CODE_RE.match(raw):
        raise InvalidInput(f"'{code}' is not a citation code; a code has 12 letters and digits "
                           "like ABCD-EFGH-2345.")
    return "-".join(raw[i:i + 4] for i in range(0, CODE_CHARS, 4))


def quote_lines(passage: list[dict]) -> list[str]:
    """What the passage says: one line, or one line per speaker's turn when several speak."""
    speakers = {s.get("speaker", "") for s in passage}
    if len(speakers) <= 1:
        return [" ".join(s["text"] for s in passage)]
    return [f"{speaker or UNKNOWN_SPEAKER}: {' '.join(s['text'] for s in turn)}"
            for speaker, turn in itertools.groupby(passage, key=lambda s: s.get("speaker", ""))]


def speakers_of(passage: list[dict]) -> list[str]:
    return list(dict.fromkeys(s.get("speaker", "") for s in passage if s.get("speaker")))


def stored_segments(archive, transcript: Transcript) -> list[dict]:
    """The segments of a version as its stored object holds them, after checking the object's
    SHA-256; raises IntegrityError when the object differs, NotFound when it is gone."""
    if not transcript.sha256:
        raise InvalidInput(f"Version {transcript.version} of the transcript of recording "
                           f"{transcript.recording_id} has no stored object and cannot be cited.")
    with archive.store.open(transcript.sha256) as f:
        body = f.read()
    if hashlib.sha256(body).hexdigest() != transcript.sha256:
        raise IntegrityError(f"The stored transcript version {transcript.version} of recording "
                             f"{transcript.recording_id} does not match its SHA-256; run `tcd verify` "
                             "and restore it from a backup.")
    return _segments_of(body)


def _segments_of(body: bytes) -> list[dict]:
    data = json.loads(body.decode("utf-8"))
    segments = data["segments"] if isinstance(data, dict) else data
    if not isinstance(segments, list):
        raise ValueError("no segments")
    return segments


# -- issuing -----------------------------------------------------------------------------------

@dataclass
class Citation:
    code: str
    session: Session
    recording: Recording
    transcript: Transcript
    start: float
    end: float
    passage: list[dict]
    issued_by: str
    issued_at: str

    @property
    def version(self) -> int:
        return self.transcript.version

    def quote_lines(self) -> list[str]:
        lines = quote_lines(self.passage)
        lines[0] = "“" + lines[0]
        lines[-1] = lines[-1] + "”"
        return lines

    @property
    def quote(self) -> str:
        return "\n".join(quote_lines(self.passage))

    @property
    def speakers(self) -> list[str]:
        return speakers_of(self.passage)

    @property
    def time_range(self) -> str:
        return f"{clock(self.start)}–{clock(self.end, up=True)}"

    def block(self) -> str:
        """The citation as it goes into a document; the code on the last line of its own."""
        point = f" ({self.recording.point})" if self.recording.point else ""
        lines = [*self.quote_lines(),
                 f"Người nói: {'; '.join(self.speakers) or UNKNOWN_SPEAKER}",
                 f"Phiên {self.session.id}: {self.session.title}, {date_vi(self.session.held_on)}",
                 f"Thời điểm {self.time_range} của bản ghi {self.recording.id}{point}, "
                 f"bản ghi lời phiên bản {self.version}",
                 f"Mã trích dẫn: {self.code}"]
        return unicodedata.normalize("NFC", "\n".join(lines))

    def to_dict(self) -> dict:
        return {"code": self.code, "session_id": self.session.id, "title": self.session.title,
                "held_on": self.session.held_on, "recording_id": self.recording.id,
                "version": self.version, "start": self.start, "end": self.end,
                "time_range": self.time_range, "speakers": self.speakers, "quote": self.quote,
                "segments": self.passage, "issued_by": self.issued_by, "issued_at": self.issued_at,
                "block": self.block()}


def cite(archive, item_id: str, start, end, version: int | None = None,
         actor: str = "system") -> Citation:
    """Cite the passage between `start` and `end` (seconds or hh:mm:ss) of a version (the current
    one by default) of a recording (or a session's first transcribed recording)."""
    catalog = archive.catalog
    start, end = parse_moment(start), parse_moment(end)
    rec = resolve_recording(archive, item_id, with_transcript=version is None)
    transcript = (catalog.get_transcript(rec.id, version) if version is not None
                  else catalog.current_transcript(rec.id))
    if transcript is None:
        raise NotFound(f"Recording {rec.id} has no transcript to cite yet.")
    passage = select(stored_segments(archive, transcript), start, end)
    span_start, span_end = passage[0]["start"], passage[-1]["end"]
    seals.refuse_citing_sealed(archive, rec.id, span_start, span_end)  # (issue 9)
    digest = passage_digest(passage)
    code = citation_code(rec.original_sha256, transcript.version, span_start, span_end, digest)
    first = catalog.add_citation({
        "code": code, "recording_id": rec.id, "version": transcript.version, "start": span_start,
        "end": span_end, "transcript_sha256": transcript.sha256, "quote_sha256": digest,
        "quote": "\n".join(quote_lines(passage)), "speaker": "; ".join(speakers_of(passage)),
        "issued_by": actor, "issued_at": now()})
    row = catalog.get_citation(code)
    archive.audit(actor, "citation.issue", rec.session_id, rec.id, code=code,
                  version=transcript.version, start=span_start, end=span_end, first=first)
    return Citation(code, catalog.get_session(rec.session_id), rec, transcript, span_start,
                    span_end, passage, row["issued_by"], row["issued_at"])


# -- checking ----------------------------------------------------------------------------------

@dataclass
class CheckResult:
    code: str
    citation: dict
    problems: list[str] = field(default_factory=list)
    session: Session | None = None
    recording: Recording | None = None
    passage: list[dict] = field(default_factory=list)
    newer: list[dict] = field(default_factory=list)
    current_version: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def changed_in(self) -> list[int]:
        """The newer versions whose text of the cited time span differs from the quote."""
        return [n["version"] for n in self.newer if n["changed"]]

    @property
    def time_range(self) -> str:
        return f"{clock(self.citation['start'])}–{clock(self.citation['end'], up=True)}"

    @property
    def quote(self) -> str:
        return "\n".join(quote_lines(self.passage)) if self.passage else self.citation["quote"]

    def sentence(self) -> str:
        c = self.citation
        if not self.ok:
            return (f"Citation {self.code} does NOT check: "
                    + "; ".join(PROBLEMS[p] for p in self.problems) + ".")
        said = (f"Citation {self.code} checks: version {c['version']} of recording "
                f"{c['recording_id']} says this at {self.time_range}.")
        if self.changed_in:
            return said + (f" Newer version {self.changed_in[-1]} changed this passage "
                           f"(current version: {self.current_version}).")
        if self.newer:
            return said + f" Newer versions up to {self.newer[-1]['version']} left it unchanged."
        return said + " It is the newest version."

    def to_dict(self) -> dict:
        return {"code": self.code, "ok": self.ok, "problems": self.problems,
                "problem_texts": [PROBLEMS[p] for p in self.problems],
                "session_id": self.session.id if self.session else None,
                "title": self.session.title if self.session else None,
                "recording_id": self.citation["recording_id"], "version": self.citation["version"],
                "start": self.citation["start"], "end": self.citation["end"],
                "time_range": self.time_range, "quote": self.quote, "segments": self.passage,
                "issued_by": self.citation["issued_by"], "issued_at": self.citation["issued_at"],
                "newer": self.newer, "changed_in": self.changed_in,
                "current_version": self.current_version, "sentence": self.sentence()}


def check(archive, code: str, actor: str = "system") -> CheckResult:
    """Verify a citation code against the archive (see the module docstring). Raises NotFound
    for a code the archive never issued, InvalidInput for text that is not a code at all."""
    catalog = archive.catalog
    code = normalize_code(code)
    row = catalog.get_citation(code)
    if row is None:
        raise NotFound(f"The archive never issued citation code {code}; check the code as it is "
                       "printed, or ask who quoted it.")
    result = CheckResult(code, row)
    _verify(archive, result)
    archive.audit(actor, "citation.check", result.session.id if result.session else None,
                  row["recording_id"], code=code, ok=result.ok, problems=result.problems)
    return result


def load(archive, result: CheckResult) -> Citation:
    """The citation that a check found intact, to render it again (as DOCX, for instance)."""
    if not result.ok:
        raise IntegrityError(f"Citation {result.code} does not check any more; it cannot be "
                             "rendered again.")
    row = result.citation
    transcript = archive.catalog.get_transcript(row["recording_id"], row["version"])
    return Citation(result.code, result.session, result.recording, transcript, row["start"],
                    row["end"], result.passage, row["issued_by"], row["issued_at"])


def _verify(archive, result: CheckResult) -> None:
    catalog, row, problems = archive.catalog, result.citation, result.problems
    try:
        rec = result.recording = catalog.get_recording(row["recording_id"])
        result.session = catalog.find_session(rec.session_id)
        transcript = catalog.get_transcript(rec.id, row["version"])
    except NotFound:
        problems.append("recording_missing" if result.recording is None else "version_missing")
        return
    expected = citation_code(rec.original_sha256, row["version"], row["start"], row["end"],
                             row["quote_sha256"])
    if expected != result.code or rec.id != rec.original_sha256[:16]:
        problems.append("code_mismatch")
    if transcript.sha256 != row["transcript_sha256"]:
        problems.append("object_replaced")
    try:
        with archive.store.open(row["transcript_sha256"]) as f:
            body = f.read()
    except NotFound:
        problems.append("object_missing")
        body = None
    if body is not None and hashlib.sha256(body).hexdigest() != row["transcript_sha256"]:
        problems.append("object_changed")
        body = None
    passage = None
    if body is not None:
        try:
            passage = within(_segments_of(body), row["start"], row["end"])
        except (ValueError, KeyError, TypeError):
            problems.append("object_unreadable")
    if passage is not None:
        result.passage = passage
        if passage_digest(passage) != row["quote_sha256"]:
            problems.append("passage_changed")
        if "\n".join(quote_lines(passage)) != row["quote"]:
            problems.append("quote_changed")
        copy = within(transcript.segments, row["start"], row["end"])
        if passage_digest(copy) != passage_digest(passage):
            problems.append("catalog_copy_changed")

    for later in catalog.transcripts_for_recording(rec.id):
        if later.version <= row["version"]:
            continue
        overlap = [s for s in later.segments if s["start"] < row["end"] - EPSILON
                   and s["end"] > row["start"] + EPSILON]
        result.newer.append({"version": later.version, "kind": later.kind, "author": later.author,
                             "created_at": later.created_at,
                             "changed": passage_digest(overlap) != row["quote_sha256"],
                             "quote": "\n".join(quote_lines(overlap)) if overlap else ""})
    current = catalog.current_transcript(rec.id, with_segments=False)
    result.current_version = current.version if current else None

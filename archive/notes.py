"""Timestamped notes: a short text on a moment or a span of a recording ("công dân đề nghị đối
thoại trực tiếp"), written by an inspector, handler, archivist or admin.

A note belongs to its author: only they or an admin may change it, and every change is a new
version kept in the catalog (`note_versions`), so what a note said on a given day can be shown.
Adding and editing are audited; the audit entry names the note and its times, not its text, so
the log (which is never pruned) keeps no personal data a retention deletion must remove.
"""
from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass

from . import users
from .errors import InvalidInput, PermissionDenied

MAX_TEXT = 2000
SLACK = 1.0  # seconds a note may point past the recording's end (codec padding)


@dataclass(frozen=True)
class Note:
    id: int
    session_id: str
    recording_id: str
    start: float
    end: float | None
    text: str
    author: str
    version: int
    created_at: str
    updated_at: str

    @property
    def is_span(self) -> bool:
        return self.end is not None

    def to_dict(self) -> dict:
        return asdict(self)


def check_times(start, end, duration: float) -> tuple[float, float | None]:
    """Seconds rounded to the millisecond; `end` may be None (a moment)."""
    try:
        start = round(float(start), 3)
        end = None if end in (None, "") else round(float(end), 3)
    except (TypeError, ValueError):
        raise InvalidInput("Times are seconds, like 12.5; write the start (and the end of a span) as numbers.",
                           reason="note.not_seconds", values={"start": start, "end": end}) from None
    values = {"start": start, "end": end, "duration": duration}
    if start < 0:
        raise InvalidInput(f"A note cannot start before the recording ({start:g} s); use 0 or more.",
                           reason="note.start_outside", values=values)
    if duration and start > duration + SLACK:
        raise InvalidInput(f"The recording is {duration:.1f} s long; a note at {start:g} s is past its end.",
                           reason="note.start_outside", values=values)
    if end is not None:
        if end <= start:
            raise InvalidInput(f"A note's end ({end:g} s) must come after its start ({start:g} s).",
                               reason="note.end_not_after_start", values=values)
        if duration and end > duration + SLACK:
            raise InvalidInput(f"The recording is {duration:.1f} s long; a note cannot end at {end:g} s.",
                               reason="note.end_outside", values=values)
    return start, end


def check_text(text: str) -> str:
    text = unicodedata.normalize("NFC", " ".join((text or "").split()))
    if not text:
        raise InvalidInput("A note needs some text; write what happened at that moment.", reason="note.no_text")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"A note is at most {MAX_TEXT} characters; shorten it or split it in two.",
                           reason="note.text_too_long", values={"limit": MAX_TEXT, "length": len(text)})
    return text


def add_note(archive, recording_id: str, start, end, text: str, user) -> Note:
    """A new note by `user` (a catalog User) on a moment (`end` None) or span of a recording."""
    users.require(user, "note", "write notes")
    rec = archive.catalog.get_recording(recording_id)
    start, end = check_times(start, end, rec.duration)
    row = archive.catalog.add_note(recording_id=rec.id, start=start, end=end, text=check_text(text),
                                   author=user.name)
    archive.audit(user.name, "note.add", rec.session_id, f"note {row['id']}", recording=rec.id,
                  start=start, end=end)
    return Note(**row)


def can_edit(note: Note, user) -> bool:
    return bool(user) and not getattr(user, "disabled", 0) and (
        user.role == "admin" or (user.name == note.author and users.can(user.role, "note")))


def edit_note(archive, note_id: int, user, text: str | None = None, start=None, end=...,
              version: int | None = None) -> Note:
    """Change a note's text or times (what is not given stays); only its author or an admin.
    `end=None` turns a span into a moment; leaving `end` out keeps it. With `version`, a change
    based on an older version is refused (`Conflict`)."""
    note = get_note(archive, note_id)
    if not can_edit(note, user):
        raise PermissionDenied(f"Note {note_id} was written by {note.author}; only they or an admin may change it.")
    rec = archive.catalog.get_recording(note.recording_id)
    new_start = note.start if start is None else start
    new_end = note.end if end is ... else end
    new_start, new_end = check_times(new_start, new_end, rec.duration)
    new_text = note.text if text is None else check_text(text)
    if (new_start, new_end, new_text) == (note.start, note.end, note.text):
        return note
    row = archive.catalog.update_note(note_id, start=new_start, end=new_end, text=new_text,
                                      editor=user.name, version=version)
    archive.audit(user.name, "note.edit", note.session_id, f"note {note_id}", recording=note.recording_id,
                  version=row["version"], start=new_start, end=new_end, text_changed=new_text != note.text)
    return Note(**row)


def get_note(archive, note_id: int) -> Note:
    return Note(**archive.catalog.get_note(int(note_id)))


def list_notes(archive, session_id: str | None = None, recording_id: str | None = None) -> list[Note]:
    if session_id:
        archive.catalog.get_session(session_id)
    return [Note(**row) for row in archive.catalog.list_notes(session_id=session_id, recording_id=recording_id)]


def note_history(archive, note_id: int) -> list[dict]:
    """Every version of a note, oldest first: version, start, end, text, editor, at."""
    get_note(archive, note_id)
    return archive.catalog.note_versions(int(note_id))

"""Sealed passages: spans of a recording that only cleared users may read, hear or see.

An archivist or admin seals a span with a reason (`add_seal`); the seal is validated (start before
end, inside the recording, no overlap with a seal in force) and audited, and so is its removal.
Who sees sealed material is decided in one place, `sees_sealed(user)`: the admin role or the
user's `clearance` flag. Everyone else gets:

- text through `redact(segments, seals, user)` (and `redact_notes`): every view, export, citation,
  index and backup viewer calls it, so a sealed span's words are replaced by `MARKER`;
- sound and picture through `playable(archive, recording, user)`: the derived access copy, made by
  `make_sealed_copy` with ffmpeg, in which the sealed spans are silent and black. It is stored as
  an object of kind "derived"; the original and the ordinary access copy are never touched.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from . import users
from .errors import ArchiveError, InvalidInput

MARKER = "[nội dung đã niêm phong]"
NOTE_SPEAKER = "Ghi chú"   # how a note reads among transcript segments (search hits)
MAX_REASON = 500
DURATION_SLACK = 0.05   # seconds a seal may end past the probed duration (rounding)
# ffmpeg's `enable` is evaluated once per frame, at the frame's start: the copy is silenced from
# a little before the seal, and the audio is cut into short frames, so no sealed sample slips
# through at the start of a span.
AUDIO_LEAD, AUDIO_FRAME = 0.01, 64
VIDEO_LEAD = 0.1


class SealedCopyPending(ArchiveError):
    """The recording has seals and its silenced access copy is not made yet."""


@dataclass(frozen=True)
class Seal:
    id: int
    session_id: str
    recording_id: str
    start: float
    end: float
    reason: str
    sealed_by: str
    sealed_at: str
    removed_by: str | None = None
    removed_at: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# -- who sees what --------------------------------------------------------------------------------

def _catalog_user(user):
    # The web's signed-in user wraps the catalog's User in `.user`.
    return getattr(user, "user", user)


def sees_sealed(user) -> bool:
    """Whether `user` may read, hear and see sealed passages: admins and cleared users."""
    user = _catalog_user(user)
    if user is None or getattr(user, "disabled", 0):
        return False
    return getattr(user, "role", "") == "admin" or bool(getattr(user, "clearance", 0))


def _span(seal) -> tuple[float, float]:
    if isinstance(seal, Seal):
        return seal.start, seal.end
    if isinstance(seal, dict):
        return float(seal["start"]), float(seal["end"])
    start, end = seal
    return float(start), float(end)


def spans(seals: Iterable) -> list[tuple[float, float]]:
    """The sealed spans, sorted, with touching or overlapping ones merged."""
    merged: list[list[float]] = []
    for start, end in sorted(_span(s) for s in seals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def overlaps(start: float, end: float | None, sealed: list[tuple[float, float]]) -> bool:
    """Whether [start, end] (a moment when `end` is None) touches the inside of a sealed span."""
    if end is None:
        return any(a <= start < b for a, b in sealed)
    return any(start < b and end > a for a, b in sealed)


def redact(segments: list[dict], seals: Iterable, user) -> list[dict]:
    """The segments as `user` may read them. For users without clearance, each run of words
    inside a sealed span is replaced by MARKER, in the text and in `words` (as a word marked
    `"sealed": true` over the run's times); a segment without word times that touches a sealed
    span is replaced whole. Redacted segments carry `"sealed": true`. Nothing is changed in place."""
    if sees_sealed(user):
        return segments
    sealed = spans(seals)
    if not sealed:
        return segments
    out = []
    for seg in segments:
        if not overlaps(float(seg["start"]), float(seg["end"]), sealed):
            out.append(seg)
            continue
        words = seg.get("words") or []
        if not words:
            out.append({**seg, "text": MARKER, "words": [], "sealed": True})
            continue
        kept: list[dict] = []
        for word in words:
            if not overlaps(float(word["start"]), float(word["end"]), sealed):
                kept.append(word)
            elif kept and kept[-1].get("sealed"):
                kept[-1] = {**kept[-1], "end": word["end"]}
            else:
                # the marker stands in the words too, so players that show words show it
                kept.append({"w": MARKER, "start": word["start"], "end": word["end"], "sealed": True})
        out.append({**seg, "text": " ".join(w["w"] for w in kept), "words": kept, "sealed": True})
    return out


def redact_notes(notes: list, seals: Iterable, user) -> list:
    """Notes as `user` may read them: a note on a sealed moment or span says only MARKER.
    Works on `archive.notes.Note` objects and on dicts."""
    if sees_sealed(user):
        return notes
    sealed = spans(seals)
    out = []
    for note in notes:
        is_dict = isinstance(note, dict)
        start, end = (note["start"], note["end"]) if is_dict else (note.start, note.end)
        if sealed and overlaps(float(start), None if end is None else float(end), sealed):
            note = {**note, "text": MARKER, "sealed": True} if is_dict else _replace_text(note)
        out.append(note)
    return out


def _replace_text(note):
    from dataclasses import replace
    return replace(note, text=MARKER)


def redact_transcript(archive, recording_id: str, segments: list[dict], user) -> list[dict]:
    """`redact` with the seals in force on the recording."""
    if sees_sealed(user):
        return segments
    return redact(segments, archive.catalog.list_seals(recording_id=recording_id), user)


def sealed_spans(archive, recording_id: str) -> list[tuple[float, float]]:
    return spans(archive.catalog.list_seals(recording_id=recording_id))


# -- sealing and unsealing ------------------------------------------------------------------------

def check_span(start, end, duration: float) -> tuple[float, float]:
    """Seconds to the millisecond, start before end, both inside the recording."""
    try:
        start, end = round(float(start), 3), round(float(end), 3)
    except (TypeError, ValueError):
        raise InvalidInput("A seal's start and end are seconds, like 12.5; write both as numbers.",
                           reason="seal.not_seconds", values={"start": start, "end": end}) from None
    values = {"start": start, "end": end, "duration": duration}
    if start >= end:
        raise InvalidInput(f"A seal's start ({start:g} s) must come before its end ({end:g} s).",
                           reason="seal.start_not_before_end", values=values)
    if start < 0:
        raise InvalidInput(f"A seal cannot start before the recording ({start:g} s); use 0 or more.",
                           reason="seal.outside", values=values)
    if duration and end > duration + DURATION_SLACK:
        raise InvalidInput(f"The recording is {duration:.3f} s long; a seal ending at {end:g} s is "
                           "outside it.", reason="seal.outside", values=values)
    return start, end


def add_seal(archive, recording_id: str, start, end, reason: str, user) -> Seal:
    """Seal [start, end) of a recording. The silenced copy is made by `make_sealed_copy`; until
    it exists, users without clearance cannot play the recording at all."""
    users.require(user, "seal", "seal passages")
    reason = unicodedata.normalize("NFC", " ".join((reason or "").split()))
    if not reason:
        raise InvalidInput("A seal needs a reason; say why the passage is sealed (e.g. the law and article).",
                           reason="seal.no_reason")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"A seal's reason is at most {MAX_REASON} characters; shorten it.",
                           reason="seal.reason_too_long", values={"limit": MAX_REASON, "length": len(reason)})
    rec = archive.catalog.get_recording(recording_id)
    start, end = check_span(start, end, rec.duration)
    row = archive.catalog.add_seal(recording_id=rec.id, start=start, end=end, reason=reason,
                                   sealed_by=user.name)
    archive.audit(user.name, "seal.add", rec.session_id, f"seal {row['id']}", recording=rec.id,
                  start=start, end=end, reason=reason)
    return Seal(**row)


def remove_seal(archive, seal_id: int, user, reason: str = "") -> Seal:
    """Unseal: the seal is kept (with who removed it and when) and the removal audited."""
    users.require(user, "seal", "unseal passages")
    row = archive.catalog.remove_seal(int(seal_id), user.name)
    archive.audit(user.name, "seal.remove", row["session_id"], f"seal {seal_id}",
                  recording=row["recording_id"], start=row["start"], end=row["end"],
                  reason=" ".join((reason or "").split()))
    return Seal(**row)


def list_seals(archive, session_id: str | None = None, recording_id: str | None = None,
               with_removed: bool = False) -> list[Seal]:
    if session_id:
        archive.catalog.get_session(session_id)
    return [Seal(**r) for r in archive.catalog.list_seals(session_id=session_id, recording_id=recording_id,
                                                          with_removed=with_removed)]


# -- the derived access copy ----------------------------------------------------------------------

def _enable(sealed: list[tuple[float, float]], lead: float) -> str:
    return "+".join(f"between(t,{max(0.0, a - lead):.3f},{b:.3f})" for a, b in sealed)


def sealed_copy_command(src: Path, dst: Path, sealed: list[tuple[float, float]], has_video: bool) -> list[str]:
    """The ffmpeg command that writes `src` to `dst` with the spans silent (every audio track) and
    black: MP4 H.264/AAC with faststart, or M4A without video."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src)]
    if has_video:
        cmd += ["-map", "0:v:0",
                "-filter:v", f"drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='{_enable(sealed, VIDEO_LEAD)}'",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
    else:
        cmd += ["-vn"]
    cmd += ["-map", "0:a?",
            "-filter:a", f"asetnsamples=n={AUDIO_FRAME}:p=0,"
                         f"volume=volume=0:enable='{_enable(sealed, AUDIO_LEAD)}'",
            "-c:a", "aac", "-b:a", "160k", "-map_metadata", "0", "-movflags", "+faststart",
            "-f", "mp4", str(dst)]
    return cmd


def make_sealed_copy(archive, recording_id: str, actor: str = "system") -> dict | None:
    """Make (or drop, when no seal is left) the silenced access copy for the seals in force.
    Returns the catalog's record of the copy, or None. Idempotent: an up-to-date copy is kept."""
    catalog = archive.catalog
    rec = catalog.get_recording(recording_id)
    sealed = sealed_spans(archive, rec.id)
    current = catalog.sealed_copy(rec.id)
    if current and [tuple(s) for s in current["spans"]] == sealed:
        return current
    if not sealed:
        old = catalog.set_sealed_copy(rec.id, [], None)
        _drop_object(archive, old)
        archive.audit(actor, "seal.copy", rec.session_id, rec.id, spans=[])
        return None
    source = rec.access_sha256 or rec.original_sha256
    mime = "video/mp4" if rec.has_video else "audio/mp4"
    staging = archive.settings.staging_dir
    staging.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=staging, prefix=f"sealed-{rec.id}-", suffix=".mp4")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with archive.store.materialize(source) as src:
            proc = subprocess.run(sealed_copy_command(src, tmp, sealed, bool(rec.has_video)),
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            raise ArchiveError(f"ffmpeg could not make the sealed copy of recording {rec.id} "
                               f"({lines[-1] if lines else proc.returncode}); check that ffmpeg works "
                               f"and run `tcd seal refresh {rec.id}`.")
        stored = archive.store.put_file(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    catalog.add_object(stored.sha256, stored.size, "derived", mime)
    old = catalog.set_sealed_copy(rec.id, [list(s) for s in sealed], stored.sha256, mime)
    _drop_object(archive, old)
    archive.audit(actor, "seal.copy", rec.session_id, rec.id, spans=[list(s) for s in sealed],
                  sha256=stored.sha256)
    return catalog.sealed_copy(rec.id)


def _drop_object(archive, sha256: str | None) -> None:
    # An outdated sealed copy is derived data: once no row names it, it goes from the store.
    if sha256 and archive.catalog.forget_object(sha256):
        archive.store.delete(sha256)


def playable(archive, recording, user) -> tuple[str, str]:
    """The object (SHA-256) and media type `user` may play for a recording: the access copy (or
    the original when there is none) for cleared users and unsealed recordings, else the silenced
    copy made for exactly the seals in force; SealedCopyPending while it is not made yet."""
    fallback = (recording.access_sha256 or recording.original_sha256,
                recording.access_mime if recording.access_sha256 else "")
    if sees_sealed(user):
        return fallback
    sealed = sealed_spans(archive, recording.id)
    if not sealed:
        return fallback
    copy = archive.catalog.sealed_copy(recording.id)
    if copy is None or [tuple(s) for s in copy["spans"]] != sealed:
        raise SealedCopyPending(f"Recording {recording.id} has sealed passages and its silenced copy is "
                                f"not ready; run `tcd seal refresh {recording.id}` or wait for it.")
    return copy["sha256"], copy["mime"]


# -- backups: what a bag carries, what its viewer shows, what a restore puts back -----------------

def add_to_backup(archive, session_id: str, doc: dict) -> list[tuple[str, str, int]]:
    """Put the session's notes (with their versions) and seals (removed ones too) into its backup
    document `doc`, and name the silenced copy of each sealed recording in its `files`; returns
    those copies as (path in the payload, SHA-256, size) for the backup to copy."""
    catalog = archive.catalog
    doc["notes"] = [{**n, "versions": catalog.note_versions(n["id"])}
                    for n in catalog.list_notes(session_id=session_id)]
    doc["seals"] = catalog.list_seals(session_id=session_id, with_removed=True)
    extra = []
    for rec in doc["recordings"]:
        copy = catalog.sealed_copy(rec["id"])
        if copy is None or [tuple(s) for s in copy["spans"]] != sealed_spans(archive, rec["id"]):
            continue
        ext = "mp4" if copy["mime"].startswith("video/") else "m4a"
        path = f"{session_id}/recordings/{rec['id']}/sealed/{rec['id']}.{ext}"
        rec.setdefault("files", {})["sealed"] = path
        extra.append((path, copy["sha256"], catalog.get_object(copy["sha256"])["size"]))
    return extra


def viewer_entry(doc: dict, rec: dict, entry: dict) -> dict:
    """A recording as the offline viewer shows it, which nobody signs in to: the sealed spans'
    text replaced by MARKER, notes on them too, and only the silenced copy to play (nothing to
    play while it is missing); the unsealed files are not linked."""
    in_force = [s for s in doc.get("seals", []) if s["recording_id"] == rec["id"] and not s.get("removed_at")]
    notes = [{k: n[k] for k in ("start", "end", "text", "author", "created_at")}
             for n in doc.get("notes", []) if n["recording_id"] == rec["id"]]
    entry = {**entry, "notes": redact_notes(notes, in_force, None)}
    if not in_force:
        return entry
    if entry.get("transcript"):
        entry["transcript"] = {**entry["transcript"],
                               "segments": redact(entry["transcript"]["segments"], in_force, None)}
    files = {k: v for k, v in entry.get("files", {}).items() if k not in ("original", "access")}
    return {**entry, "files": files, "media": files.get("sealed"), "sealed": True}


def restore_from_backup(archive, doc: dict) -> int:
    """Put back the notes and seals a backup document holds; returns how many were new. Runs inside
    the restore's transaction, after the recordings."""
    catalog = archive.catalog
    added = sum(catalog.restore_seal(s) for s in doc.get("seals", []))
    added += sum(catalog.restore_note(n) for n in doc.get("notes", []))
    return added


def redact_version(archive, transcript, user):
    """A transcript version (`archive.Transcript`, or None) with its segments as `user` may read
    them; the same object when nothing is hidden from them."""
    if transcript is None or sees_sealed(user):
        return transcript
    segments = redact_transcript(archive, transcript.recording_id, transcript.segments, user)
    if segments is transcript.segments:
        return transcript
    from dataclasses import replace
    return replace(transcript, segments=segments)


def searchable(archive, recording_id: str, segments: list[dict]) -> list[dict]:
    """What the search index may hold of a recording: its segments without the sealed words
    (the marker is not indexed either; a wholly sealed segment goes), and its notes as segments
    of their own (speaker "Ghi chú", no word times, so a hit plays from the note's second) except
    those on sealed spans; in time order. The index is shared by everyone, so it holds only what
    a user without clearance may read."""
    in_force = archive.catalog.list_seals(recording_id=recording_id)
    out = []
    for seg in redact(segments, in_force, None):
        if not seg.get("sealed"):
            out.append(seg)
            continue
        kept = [w for w in seg["words"] if not w.get("sealed")]
        if kept:
            out.append({**seg, "text": " ".join(w["w"] for w in kept), "words": kept})
    sealed = spans(in_force)
    for note in archive.catalog.list_notes(recording_id=recording_id):
        if sealed and overlaps(note["start"], note["end"], sealed):
            continue
        out.append({"start": note["start"], "end": note["end"] if note["end"] is not None else note["start"],
                    "speaker": NOTE_SPEAKER, "text": note["text"], "words": [], "note": note["id"]})
    return sorted(out, key=lambda s: (s["start"], "note" in s))


def hidden_from(archive, recording_id: str, user, start: float | None = None, end: float | None = None) -> bool:
    """Whether `user` may not see all of a recording's text (or of [start, end]): they lack
    clearance and a seal in force covers some of it. Views that cannot redact (an editor, a
    comparison of versions, an issued citation) refuse such users instead."""
    if sees_sealed(user):
        return False
    sealed = sealed_spans(archive, recording_id)
    if start is None or end is None:
        return bool(sealed)
    return overlaps(float(start), float(end), sealed)


def refuse_citing_sealed(archive, recording_id: str, start: float, end: float) -> None:
    """A citation goes into documents outside the archive: a passage touching a sealed span is
    never cited, whoever asks."""
    if overlaps(float(start), float(end), sealed_spans(archive, recording_id)):
        raise InvalidInput(f"The passage {start:g}–{end:g} s touches a sealed span of recording "
                           f"{recording_id}; cite a passage outside it (`tcd seal list {recording_id}`).")

"""Corrections of a transcript by people, and the differences between two versions.

A correction never changes a stored version: it reads the version the person edited, applies
their edits (a segment's text, its speaker label, a label carried on to the segments that follow)
and stores the result as a new human version that names the version it was based on. If someone
else saved a version in between, the catalog refuses with `Conflict` and nothing is lost: the
caller still holds the edits and can show them again.

Word timings survive a correction where they can: words that did not change keep their times,
and words that replace others share out the time of the words they replace (without a
confidence, since no engine heard them). Player highlighting and search by time keep working.

`diff_segments` pairs the segments of two versions by their times and compares the text of each
pair word by word (difflib), so a reader sees which words a person changed.
"""
from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass, field

from .catalog import Transcript
from .errors import Conflict, InvalidInput
from .transcripts import clean_text, format_time, save_transcript

MAX_SPEAKER = 80   # the time-coded text format reads speaker labels up to 80 characters


@dataclass(frozen=True)
class Edit:
    """One person's change to one segment (by its position in the version they edited).

    `text` or `speaker` left as None keep what the segment had. With `following`, the new speaker
    label is also given to the segments after it that had the same label as this one had, up to
    the first segment labelled otherwise: label where a speaker starts, and the turn follows.
    """
    index: int
    text: str | None = None
    speaker: str | None = None
    following: bool = False


# -- applying edits ----------------------------------------------------------------------------

def apply_edits(segments: list[dict], edits: list[Edit]) -> list[dict]:
    """New segments with `edits` applied; `segments` are not changed. Raises InvalidInput for an
    edit of a segment that does not exist, an empty text or an unusable speaker label."""
    out = [{**seg, "words": [dict(w) for w in seg.get("words") or []]} for seg in segments]
    edited = {e.index for e in edits}
    for edit in sorted(edits, key=lambda e: e.index):
        if not 0 <= edit.index < len(out):
            raise InvalidInput(f"Segment {edit.index + 1} does not exist in this version "
                               f"(it has {len(out)}); reload the transcript and edit it again.")
        seg = out[edit.index]
        if edit.text is not None:
            text = clean_text(edit.text)
            if not text:
                raise InvalidInput(f"Segment {edit.index + 1} would have no text; write what was "
                                   "said, or leave the segment as it was.")
            if text != seg["text"]:
                seg["words"] = realign_words(seg["words"], text, seg["start"], seg["end"])
                seg["text"] = text
        if edit.speaker is not None:
            speaker = check_speaker(edit.speaker)
            before = segments[edit.index].get("speaker", "")
            seg["speaker"] = speaker
            if edit.following:
                for j in range(edit.index + 1, len(out)):
                    if j in edited or segments[j].get("speaker", "") != before:
                        break
                    out[j]["speaker"] = speaker
    return out


def check_speaker(label: str) -> str:
    label = clean_text(label)
    if len(label) > MAX_SPEAKER:
        raise InvalidInput(f"A speaker label has at most {MAX_SPEAKER} characters; shorten "
                           f"'{label[:20]}…'.")
    if any(c in label for c in "[]<>"):
        raise InvalidInput(f"A speaker label cannot hold the characters [ ] < >; write '{label}' "
                           "without them.")
    return label


def realign_words(words: list[dict], text: str, start: float, end: float) -> list[dict]:
    """Word timings for the corrected `text` of a segment whose words were `words`."""
    new = text.split()
    if not words or not new:
        return []
    old = [unicodedata.normalize("NFC", w["w"]).casefold() for w in words]
    matcher = difflib.SequenceMatcher(a=old, b=[w.casefold() for w in new], autojunk=False)
    out: list[dict] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out += [{**words[i1 + k], "w": new[j1 + k]} for k in range(i2 - i1)]
        elif tag in ("replace", "insert"):
            # The new words share the time of the words they replace; inserted words share the
            # gap between their neighbours.
            if i2 > i1:
                t0, t1 = words[i1]["start"], words[i2 - 1]["end"]
            else:
                t0 = words[i1 - 1]["end"] if i1 > 0 else start
                t1 = words[i1]["start"] if i1 < len(words) else end
            t1 = max(t0, t1)
            step = (t1 - t0) / (j2 - j1)
            out += [{"w": new[j1 + k], "start": round(t0 + k * step, 3),
                     "end": round(t0 + (k + 1) * step, 3)} for k in range(j2 - j1)]
    return out


def correct(archive, recording_id: str, based_on: int, edits: list[Edit], author: str,
            label: str = "") -> Transcript:
    """Store version `based_on` with `edits` applied as the recording's next human version.

    Raises Conflict when a version newer than `based_on` exists (someone else saved first),
    InvalidInput when the edits change nothing or cannot be applied."""
    catalog = archive.catalog
    rec = catalog.get_recording(recording_id)
    base = catalog.get_transcript(rec.id, based_on)
    segments = apply_edits(base.segments, edits)
    changed = [i for i, (a, b) in enumerate(zip(base.segments, segments)) if a != b]
    if not changed:
        raise InvalidInput("The correction changes nothing; edit a segment's text or speaker "
                           "and save again.")
    try:
        saved = save_transcript(archive, rec.id, segments, kind="human", author=author,
                                label=clean_text(label), based_on=based_on)
    except Conflict:
        latest = catalog.transcripts_for_recording(rec.id, with_segments=False)[-1].version
        archive.audit(author, "transcript.conflict", rec.session_id, rec.id, based_on=based_on,
                      latest=latest, segments=[i + 1 for i in changed[:100]])
        raise
    archive.audit(author, "transcript.correct", rec.session_id, rec.id, version=saved.version,
                  based_on=based_on, changed=len(changed), segments=[i + 1 for i in changed[:100]])
    return saved


# -- differences between versions --------------------------------------------------------------

@dataclass
class Change:
    """One segment that differs between two versions: changed, added or removed.

    `words` is the word-level difference of the text: (op, text) pairs with op one of
    equal | delete | insert, in reading order."""
    kind: str
    old: dict | None
    new: dict | None
    words: list[tuple[str, str]] = field(default_factory=list)

    @property
    def start(self) -> float:
        return (self.new or self.old)["start"]

    @property
    def speaker_changed(self) -> bool:
        return bool(self.old and self.new and self.old.get("speaker", "") != self.new.get("speaker", ""))

    @property
    def text_changed(self) -> bool:
        return any(op != "equal" for op, _ in self.words)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "start": self.start, "old": self.old, "new": self.new,
                "speaker_changed": self.speaker_changed, "words": [list(w) for w in self.words]}


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    a, b = old.split(), new.split()
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("equal", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("delete", " ".join(a[i1:i2])))
        if j2 > j1:
            out.append(("insert", " ".join(b[j1:j2])))
    return out


def diff_segments(old: list[dict], new: list[dict]) -> list[Change]:
    """The segments that differ, in time order. Segments are paired by their times (corrections
    keep them); where times differ (an imported version), segments pair in order."""
    keys_a = [(s["start"], s["end"]) for s in old]
    keys_b = [(s["start"], s["end"]) for s in new]
    changes: list[Change] = []

    def pair(a: dict, b: dict) -> None:
        if (a.get("speaker", ""), a["text"], a["start"], a["end"]) != \
                (b.get("speaker", ""), b["text"], b["start"], b["end"]):
            changes.append(Change("changed", a, b, word_diff(a["text"], b["text"])))

    matcher = difflib.SequenceMatcher(a=keys_a, b=keys_b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        paired = min(i2 - i1, j2 - j1)
        for k in range(paired):
            pair(old[i1 + k], new[j1 + k])
        for seg in old[i1 + paired:i2]:
            changes.append(Change("removed", seg, None, [("delete", seg["text"])]))
        for seg in new[j1 + paired:j2]:
            changes.append(Change("added", None, seg, [("insert", seg["text"])]))
    return changes


def diff_versions(archive, recording_id: str, a: int, b: int) -> list[Change]:
    catalog = archive.catalog
    return diff_segments(catalog.get_transcript(recording_id, a).segments,
                         catalog.get_transcript(recording_id, b).segments)


def render_diff(changes: list[Change]) -> str:
    """The changes as text: `[-removed words-]` and `{+added words+}`, one segment a line."""
    if not changes:
        return "The two versions are the same.\n"
    lines = []
    for change in changes:
        mark = {"changed": "~", "added": "+", "removed": "-"}[change.kind]
        speaker = ""
        if change.speaker_changed:
            speaker = f"[{change.old.get('speaker') or '?'} -> {change.new.get('speaker') or '?'}] "
        elif (change.new or change.old).get("speaker"):
            speaker = f"[{(change.new or change.old)['speaker']}] "
        words = " ".join(text if op == "equal" else f"[-{text}-]" if op == "delete" else f"{{+{text}+}}"
                         for op, text in change.words)
        lines.append(f"{mark} {format_time(change.start)}  {speaker}{words}")
    return "\n".join(lines) + "\n"

"""Fixtures of the search tests: sessions with Vietnamese transcripts made through the catalog."""
from __future__ import annotations

import hashlib
import itertools

import pytest

_counter = itertools.count()


def seg(start: float, text: str, step: float = 0.5, words: bool = True, speaker: str = "Công dân") -> dict:
    """A segment whose words are said `step` seconds apart from `start` (no words if not `words`)."""
    tokens = text.split()
    return {"start": start, "end": round(start + step * len(tokens), 3), "speaker": speaker, "text": text,
            "words": [{"w": w, "start": round(start + i * step, 3), "end": round(start + i * step + step * 0.8, 3),
                       "conf": 0.9} for i, w in enumerate(tokens)] if words else []}


def add_session(archive, title: str, held_on: str, segments: list[dict], kind: str = "machine", **meta):
    """A session with one recording and one transcript; returns (session, recording)."""
    catalog = archive.catalog
    session = catalog.create_session({"title": title, "held_on": held_on, **meta})
    sha = hashlib.sha256(f"{title}-{next(_counter)}".encode()).hexdigest()
    catalog.add_object(sha, 1000, "original", "video/mp4")
    rec = catalog.add_recording(session_id=session.id, original_sha256=sha, original_name="phien.mp4",
                                duration=600, has_audio=True)
    catalog.add_transcript(recording_id=rec.id, segments=segments, kind=kind, author="vosk" if kind == "machine" else "thu ky")
    return catalog.get_session(session.id), rec


@pytest.fixture
def make_session(archive):
    def make(title, held_on, segments, **meta):
        return add_session(archive, title, held_on, segments, **meta)
    return make

"""What the index holds for one session: passages of its transcripts and one metadata document.

A *passage* is a run of consecutive segments of one recording's current transcript, cut at a
segment boundary once it lasts `window` seconds. bench/search.py measured segments, 60, 120 and
300 s passages and whole recordings: 300 s had the lowest p95 for almost every kind of query at
200 and 2,000 hours (fewer, longer documents make shorter posting lists; the hit still starts at
the second its first word was said, so nothing is lost in precision). Each token of a passage keeps the second its word was said:
taken from the segment's word timestamps when the words spell the segment's text, aligned with
difflib when a person edited the text, and the segment's start when it has no words.

The passage also lists the first `TAIL` tokens of the next passage, so a phrase said across the
cut is still found (its pairs are indexed in the passage where it starts).
"""
from __future__ import annotations

import difflib
import pickle
import zlib
from array import array
from dataclasses import dataclass, field

from .analysis import exact, fold, nfc, words
from .numbers import spoken_numbers

DEFAULT_WINDOW = 300.0
TAIL = 12  # tokens of the next passage a phrase may run into


@dataclass
class Passage:
    recording_id: str
    segments: list[dict] = field(default_factory=list)   # {start, end, speaker, text, times}

    @property
    def start(self) -> float:
        return self.segments[0]["start"]

    @property
    def end(self) -> float:
        return self.segments[-1]["end"]


def token_times(segment: dict) -> list[float]:
    """The second each token of the segment's text was said."""
    text = nfc(segment.get("text") or "")
    tokens = [fold(w) for w, _, _ in words(text)]
    start = float(segment.get("start") or 0)
    spoken = []
    for word in segment.get("words") or []:
        for w, _, _ in words(nfc(str(word.get("w", "")))):
            spoken.append((fold(w), float(word.get("start", start))))
    if not spoken:
        return [start] * len(tokens)
    if [w for w, _ in spoken] == tokens:
        return [t for _, t in spoken]
    # The text was corrected after recognition: keep the times of the words that survived and
    # give an inserted word the time of the word before it.
    times: list[float | None] = [None] * len(tokens)
    matcher = difflib.SequenceMatcher(None, tokens, [w for w, _ in spoken], autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            times[block.a + k] = spoken[block.b + k][1]
    last = start
    for i, t in enumerate(times):
        if t is None:
            times[i] = last
        else:
            last = t
    return times


def passages(recording_id: str, segments: list[dict], window: float = DEFAULT_WINDOW) -> list[Passage]:
    """Cut a transcript's segments into passages of about `window` seconds."""
    out: list[Passage] = []
    current: Passage | None = None
    for seg in segments:
        text = nfc(seg.get("text") or "")
        if not words(text):
            continue
        item = {"start": float(seg.get("start") or 0), "end": float(seg.get("end") or seg.get("start") or 0),
                "speaker": seg.get("speaker") or "", "text": text, "times": token_times({**seg, "text": text})}
        if current is None or (window > 0 and item["end"] - current.start > window and current.segments):
            current = Passage(recording_id)
            out.append(current)
        current.segments.append(item)
    return out


def passage_tokens(passage: Passage) -> list[str]:
    return [w for seg in passage.segments for w, _, _ in words(seg["text"])]


def index_fields(surfaces: list[str], tail: list[str] = ()) -> dict:
    """The four token fields of a document: folded and exact syllables, folded and exact pairs.

    Pairs (bigrams) make phrases cheap: a two-syllable phrase is one posting list, a longer one
    is its pairs at consecutive positions. Pairs that start in `surfaces` may end in `tail`.
    Numbers said in words also go into the syllables as digits ("hai nghìn không trăm hai mươi
    lăm" adds "2025"), so a query "2025" is one posting list, not a dozen phrases."""
    folded = [fold(w) for w in surfaces]
    exacts = [exact(w) for w in surfaces]
    tail_f = [fold(w) for w in tail[: TAIL]]
    tail_x = [exact(w) for w in tail[: TAIL]]
    all_f, all_x = folded + tail_f, exacts + tail_x
    n = len(folded)
    return {
        "words": " ".join(folded + [digits for _, digits in spoken_numbers(folded)]),
        "exact": " ".join(exacts),
        "pairs": " ".join(f"{all_f[i]}+{all_f[i + 1]}" for i in range(min(n, len(all_f) - 1))),
        "xpairs": " ".join(f"{all_x[i]}+{all_x[i + 1]}" for i in range(min(n, len(all_x) - 1))),
    }


def pack(data) -> bytes:
    """Stored bodies are compressed pickles (only this module's own plain data): passages repeat
    the same syllables a lot, and unpickling is several times faster than JSON."""
    return zlib.compress(pickle.dumps(data, protocol=5), 6)


def unpack(blob: bytes):
    return pickle.loads(zlib.decompress(blob))


def passage_body(passage: Passage, tail: list[str]) -> bytes:
    """A passage as stored: recording, segments (start, end, speaker, text, token times in ms as
    packed 32-bit integers) and the tail tokens."""
    return pack({"r": passage.recording_id,
                 "s": [(s["start"], s["end"], s["speaker"], s["text"],
                        array("I", (int(t * 1000 + 0.5) for t in s["times"])).tobytes())
                       for s in passage.segments],
                 "tail": list(tail[: TAIL])})


def token_time(times: bytes, index: int, default: float) -> float:
    """The second token `index` of a stored segment was said."""
    values = array("I")
    values.frombytes(times)
    return values[index] / 1000 if 0 <= index < len(values) else default

"""Where a passage matched and how to show it: the first matched word's second, and a snippet.

The index says *which* passages match; this module looks at one passage's stored text again. It
folds the text character by character (same length, so offsets carry over) and finds each
clause with one regular expression: a word, each spoken reading of a number, a phrase as a whole
(its words with only spaces or punctuation between), so a phrase is marked as one run and never
as its words scattered about. Everything outside the <mark> tags is HTML-escaped: transcripts
are text typed or heard, and may contain "<script>".
"""
from __future__ import annotations

import html
import re

from .analysis import fold_text, words
from .passages import token_time
from .query import Clause

BEFORE = 60     # characters of context before the first match
LENGTH = 240    # characters shown in all


def _token_pattern(token: str) -> str:
    if token.isdigit():  # "1500000" also matches "1.500.000" and "1,500,000"
        return "[.,]?".join(re.escape(c) for c in token)
    return re.escape(token)


def clause_pattern(clauses: list[Clause]) -> re.Pattern | None:
    """One expression matching any clause in folded text, longest alternatives first."""
    parts = []
    for clause in clauses:
        for alternative in clause.alternatives:
            body = r"\W+".join(_token_pattern(t) for t in alternative)
            if clause.kind == "prefix":
                body += r"\w*"
            parts.append((len(alternative), body))
    if not parts:
        return None
    parts.sort(key=lambda p: -p[0])
    return re.compile(r"(?<!\w)(?:" + "|".join(p for _, p in parts) + r")(?!\w)")


def _render(text: str, lo: int, hi: int, spans: list[tuple[int, int]]) -> str:
    out, pos = [], lo
    for a, b in spans:
        a, b = max(a, lo), min(b, hi)
        if a >= b or a < pos:
            continue
        out.append(html.escape(text[pos:a]))
        out.append("<mark>" + html.escape(text[a:b]) + "</mark>")
        pos = b
    out.append(html.escape(text[pos:hi]))
    snippet = "".join(out).replace("\n", " ").strip()
    return ("… " if lo > 0 else "") + snippet + (" …" if hi < len(text) else "")


def _window(text: str, first: int) -> tuple[int, int]:
    """Character range of the snippet: some context before the first match, cut at spaces."""
    lo = max(0, first - BEFORE)
    if lo > 0:
        space = text.find(" ", lo, first)
        lo = space + 1 if space >= 0 else lo
    hi = min(len(text), lo + LENGTH)
    if hi < len(text):
        space = text.rfind(" ", first, hi)
        hi = space if space > first else hi
    return lo, hi


def side_by_side(clauses: list[Clause], adjacent: list[tuple[int, int]]) -> list[Clause]:
    """Words typed side by side (`dat dai`) as phrases, so a hit starts where they were said
    together rather than at the first place one of them was said."""
    return [Clause("phrase", "", (clauses[i].folded + clauses[j].folded,), (), ())
            for i, j in adjacent if clauses[i].kind == clauses[j].kind == "word"]


def passage_match(body: dict, clauses: list[Clause], together: list[Clause] = ()) -> dict:
    """{start, end, speaker, snippet} of a stored passage (see passages.passage_body).

    Segments are folded one at a time (with the next one, for a phrase that runs on) until the
    first match: a passage may be minutes of text and only its first match is shown. Where
    `together` (see side_by_side) matches somewhere, its first match is the hit."""
    segments = body["s"]
    pattern = clause_pattern(clauses)
    preferred = clause_pattern(list(together)) if together else None
    tail = " ".join(body.get("tail") or [])
    texts = [seg[3] for seg in segments]
    folds: dict[int, str] = {}

    def folded(k: int) -> str:  # each segment folded once, with the next (a phrase may run on)
        if k not in folds:
            following = texts[k + 1] if k + 1 < len(texts) else tail
            folds[k] = fold_text(texts[k] + "\n" + following[:200])
        return folds[k]

    for first in filter(None, (preferred, pattern)):
        for k, text in enumerate(texts):
            match = first.search(folded(k))
            if match and match.start() < len(text):
                return _segment_match(segments, k, match.start(), pattern, tail)
    seg = segments[0]
    lo, hi = _window(texts[0], 0)
    return {"start": seg[0], "end": seg[1], "speaker": seg[2], "snippet": _render(texts[0], lo, hi, [])}


def _segment_match(segments: list, k: int, first: int, pattern: re.Pattern, tail: str) -> dict:
    """The hit of a passage whose first match starts `first` characters into segment k."""
    seg = segments[k]
    start = token_time(seg[4], len(words(seg[3][:first])), seg[0])
    # The snippet: this segment with its neighbours, marks wherever a clause matches in it.
    before = segments[k - 1][3] + "\n" if k > 0 else ""
    after = "\n" + segments[k + 1][3] if k + 1 < len(segments) else ""
    text = before + seg[3] + after
    limit = len(text)
    folded = fold_text(text + ("\n" + tail if not after and tail else ""))
    spans = [(a, min(b, limit)) for a, b in (m.span() for m in pattern.finditer(folded)) if a < limit]
    lo, hi = _window(text, len(before) + first)
    return {"start": start, "end": seg[1], "speaker": seg[2], "snippet": _render(text, lo, hi, spans)}


def meta_match(fields: list[list[str]], clauses: list[Clause]) -> str:
    """Snippet of a session's metadata: the fields (label: text) where a clause matched."""
    pattern = clause_pattern(clauses)
    parts = []
    for label, text in fields:
        spans = [m.span() for m in pattern.finditer(fold_text(text))] if pattern else []
        if spans:
            parts.append(f"{html.escape(label)}: {_render(text, 0, len(text), spans)}")
    return " · ".join(parts)

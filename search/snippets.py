"""Where a passage matched and how to show it: the first matched word's second, and a snippet.

The index says *which* passages match; this module reads one passage's stored segments again
and finds the token spans of each clause (a word, each reading of a number, a phrase as a whole),
so a phrase is marked as one run and never as its words scattered about. Everything outside the
<mark> tags is HTML-escaped: transcripts are text typed or heard, and may contain "<script>".
"""
from __future__ import annotations

import html

from .analysis import fold, words
from .query import Clause

CONTEXT_BEFORE = 10   # tokens shown before the first match
SNIPPET_TOKENS = 36   # tokens shown in all


def find_spans(folded: list[str], clauses: list[Clause], limit: int) -> list[tuple[int, int]]:
    """Token spans [first, last] of every clause occurrence starting before `limit`."""
    spans = []
    for clause in clauses:
        for alternative in clause.alternatives:
            n = len(alternative)
            head = alternative[0]
            for p in range(min(limit, len(folded))):
                token = folded[p]
                if clause.kind == "prefix":
                    if token.startswith(head):
                        spans.append((p, p))
                elif token == head and tuple(folded[p:p + n]) == alternative:
                    spans.append((p, p + n - 1))
    return sorted(set(spans))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def passage_match(body: dict, clauses: list[Clause]) -> dict:
    """{start, end, speaker, snippet} of a passage body (see passages.passage_body)."""
    tokens = []   # (segment index, char start, char end)
    for k, seg in enumerate(body["s"]):
        tokens += [(k, s, e) for _, s, e in words(seg[3])]
    folded = [fold(body["s"][k][3][s:e]) for k, s, e in tokens] + [fold(t) for t in body.get("tail", [])]
    spans = find_spans(folded, clauses, len(tokens))
    if not spans:
        first_seg = body["s"][0]
        return {"start": first_seg[0], "end": first_seg[1], "speaker": first_seg[2],
                "snippet": _render(body, tokens, 0, min(len(tokens), SNIPPET_TOKENS), [])}
    first = spans[0][0]
    seg_index = tokens[first][0]
    seg = body["s"][seg_index]
    times = seg[4]
    index_in_seg = first - next(i for i, t in enumerate(tokens) if t[0] == seg_index)
    start = times[index_in_seg] if index_in_seg < len(times) else seg[0]
    lo = max(0, first - CONTEXT_BEFORE)
    hi = min(len(tokens), lo + SNIPPET_TOKENS)
    marks = [(a, min(b, len(tokens) - 1)) for a, b in _merge(spans) if a < hi and b >= lo]
    return {"start": float(start), "end": float(seg[1]), "speaker": seg[2],
            "snippet": _render(body, tokens, lo, hi, marks)}


def _render(body: dict, tokens: list, lo: int, hi: int, marks: list[tuple[int, int]]) -> str:
    """HTML for tokens[lo:hi] with the text between them, marked spans wrapped in <mark>."""
    if not tokens:
        return ""
    out = ["… "] if lo > 0 else []
    marked = {}
    for a, b in marks:
        marked[max(a, lo)] = min(b, hi - 1)
    i = lo
    while i < hi:
        k, s, e = tokens[i]
        text = body["s"][k][3]
        j = marked.get(i)
        if j is not None:
            # A mark may run across segments: close it at each segment's end.
            end_i = i
            while end_i < j and tokens[end_i + 1][0] == k:
                end_i += 1
            out.append("<mark>" + html.escape(text[s:tokens[end_i][2]]) + "</mark>")
            if end_i < j:
                marked[end_i + 1] = j
            i, e = end_i, tokens[end_i][2]
        else:
            out.append(html.escape(text[s:e]))
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if nxt is not None and nxt[0] == k:
            between = text[e:nxt[1]] if i + 1 < hi else ""
        else:
            between = text[e:] + (" " if nxt is not None and i + 1 < hi else "")
        out.append(html.escape(between))
        i += 1
    if hi < len(tokens):
        out.append(" …")
    return "".join(out).strip()


def meta_match(fields: list[list[str]], clauses: list[Clause]) -> str:
    """Snippet of a session's metadata: the fields (label, text) where a clause matched."""
    parts = []
    for label, text in fields:
        tokens = words(text)
        folded = [fold(w) for w, _, _ in tokens]
        spans = _merge(find_spans(folded, clauses, len(tokens)))
        if not spans:
            continue
        pos, out = 0, []
        for a, b in spans:
            out.append(html.escape(text[pos:tokens[a][1]]))
            out.append("<mark>" + html.escape(text[tokens[a][1]:tokens[b][2]]) + "</mark>")
            pos = tokens[b][2]
        out.append(html.escape(text[pos:]))
        parts.append(f"{html.escape(label)}: {''.join(out)}")
    return " · ".join(parts)

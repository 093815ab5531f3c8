"""Which documents match a `Plan` and in what order, with bounded work per query.

Each clause becomes a {docnum: score} dict read from whole posting lists (search.postings); the
clauses are combined with set operations and the filters applied to what is left, so the cost
grows with the lengths of the few posting lists a query touches, not with Python calls per
posting. Only the requested page is then read back for snippets (search.snippets).

Scores (higher first):
- a clause contributes idf × (saturated term frequency + how well the typed form fits): a word
  typed with marks fits when the passage has exactly that form; a word typed without marks fits
  in proportion to how often that reading occurs in the archive, so `dat dai` ranks "đất đai"
  above the rarer "dạt dài";
- two words typed side by side earn a bonus where they were said side by side, more so in the
  archive's most frequent reading of the pair;
- a passage may satisfy a clause through its session's metadata (`Đức đất đai` finds "đất đai"
  said in the session of complainant Đức), for a smaller part of the score; at least one clause
  must match what was said, or the session's metadata document stands for it alone.
"""
from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right
from itertools import compress, islice, product, repeat
from operator import add, mul

from .analysis import exact
from .postings import doc_frequency, postings_in, term_positions, term_weights
from .query import Clause, Plan

READING_MIN_SHARE = 0.05
MAX_READINGS = 4
MAX_PREFIX_TERMS = 64
SKIP_RATIO = 16
META_BOOST = 1.5
META_ONLY = 0.5       # share of a clause's weight when only the session's metadata matched it
VARIANTS = {"a": "aăâ", "e": "eê", "o": "oôơ", "u": "uư", "d": "dđ"}
TONES = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
VOWELS = "aeiouy"


def saturate(tf: float) -> float:
    return tf / (tf + 1.0)


# Per-document arithmetic over dicts of tens of thousands of entries is done with map() and
# dict/set operations, which loop in C, not with Python loops (bench/search.py).

def saturated(found: dict[int, float]) -> dict[int, float]:
    """{doc: saturate(tf)}: term frequencies take few distinct values, so through a table."""
    table = {tf: saturate(tf) for tf in set(found.values())}
    return dict(zip(found, map(table.__getitem__, found.values())))


def add_into(target: dict[int, float], extra: dict[int, float], weight: float = 1.0,
             only=None) -> None:
    """target[doc] += weight * extra[doc] for the docs in both (and in `only`, if given)."""
    docs = target.keys() & extra.keys()
    if only is not None:
        docs &= only
    values = map(extra.__getitem__, docs)
    if weight != 1.0:
        values = map(mul, values, repeat(weight))
    target.update(zip(docs, map(add, map(target.__getitem__, docs), values)))


def best_share(readings, postings) -> dict[int, float]:
    """{doc: the largest share among the readings whose postings hold doc}; `postings(form)`
    gives a reading's documents. Higher shares are written last and win."""
    out: dict[int, float] = {}
    for form, share in sorted(readings, key=lambda r: r[1]):
        out.update(dict.fromkeys(postings(form), share))
    return out


class Query:
    """One query's work on a snapshot (see index.Snapshot): clause dicts, memoised postings."""

    def __init__(self, snapshot, plan: Plan):
        self.snap = snapshot
        self.plan = plan
        self.leaves = snapshot.leaves
        self._memo: dict = {}
        self.messages: list[str] = []

    # -- postings, memoised within the query (numbers share many pairs) -------------------------

    def weights(self, field: str, term: str) -> dict[int, float]:
        key = (field, term)
        if key not in self._memo:
            self._memo[key] = term_weights(self.leaves, field, term)
        return self._memo[key]

    def phrase(self, tokens: tuple[str, ...]) -> dict[int, float]:
        """{docnum: occurrences} of adjacent `tokens` (folded), from the pairs field.

        The rarest pair is read whole; the others only where it occurs (postings_in), so a
        number said in words ("hai nghìn không trăm hai mươi lăm", seven common syllables)
        costs about as much as its rarest pair."""
        if len(tokens) == 1:
            return self.weights("words", tokens[0])
        pairs = [f"{a}+{b}" for a, b in zip(tokens, tokens[1:])]
        if len(pairs) == 1:
            return self.weights("pairs", pairs[0])
        reader = self.snap.reader
        frequency = {p: doc_frequency(reader, "pairs", p) for p in set(pairs)}
        if not all(frequency.values()):
            return {}
        # Which passages have every pair (weights only), then positions just for those.
        ordered = sorted(frequency, key=frequency.__getitem__)
        docs = set(self.weights("pairs", ordered[0]))
        for p in ordered[1:]:
            if len(docs) * SKIP_RATIO < frequency[p]:
                docs &= postings_in(self.leaves, "pairs", p, docs).keys()
            else:
                docs &= self.weights("pairs", p).keys()
            if not docs:
                return {}
        # Starting positions that fit every pair, checked one pair at a time from the rarest,
        # so each further pair's positions are read only for the passages still in the running.
        offsets = sorted(range(len(pairs)), key=lambda k: frequency[pairs[k]])
        first = offsets[0]
        found = self.positions(pairs[first], docs, frequency[pairs[first]])
        starts = {doc: {p - first for p in found[doc]} for doc in docs if doc in found}
        for k in offsets[1:]:
            found = self.positions(pairs[k], set(starts), frequency[pairs[k]])
            survivors = {}
            for doc, candidates in starts.items():
                here = set(found.get(doc, ()))
                kept = {p for p in candidates if p + k in here}
                if kept:
                    survivors[doc] = kept
            starts = survivors
            if not starts:
                return {}
        return {doc: float(len(s)) for doc, s in starts.items()}

    def positions(self, pair: str, docs: set[int], frequency: int) -> dict[int, list[int]]:
        """Positions of `pair` in `docs`: skipping to each when they are few against the list's
        length, else reading the list whole (a Python call per posting costs ~20x a block's share)."""
        if len(docs) * SKIP_RATIO < frequency:
            return postings_in(self.leaves, "pairs", pair, docs, values=True)
        return term_positions(self.leaves, "pairs", pair, docs)

    # -- readings: which marked forms a folded word or pair stands for ---------------------------

    def readings(self, folded: str) -> list[tuple[str, float]]:
        """The exact forms in the archive that fold to `folded`, with their share of its uses."""
        cache = self.snap.reading_cache
        if folded in cache:
            return cache[folded]
        reader = self.snap.reader
        forms = {}
        if not folded.isdigit():
            options = [VARIANTS.get(ch, ch) for ch in folded]
            for letters in islice(product(*options), 150):
                base = "".join(letters)
                vowel = next((i for i, ch in enumerate(base) if ch in VOWELS or ch in "ăâêôơư"), None)
                for tone in (TONES if vowel is not None else ("",)):
                    form = exact(base if not tone else base[: vowel + 1] + tone + base[vowel + 1:])
                    if form not in forms:
                        forms[form] = reader.doc_frequency("exact", form)
        forms[folded] = reader.doc_frequency("exact", folded)
        total = sum(forms.values()) or 1
        result = sorted(((f, n / total) for f, n in forms.items() if n and n / total >= READING_MIN_SHARE),
                        key=lambda x: -x[1])[:MAX_READINGS]
        cache[folded] = result
        return result

    def pair_readings(self, a: str, b: str) -> list[tuple[str, float]]:
        reader = self.snap.reader
        counts = {}
        for (x, _), (y, _) in product(self.readings(a), self.readings(b)):
            term = f"{x}+{y}"
            counts[term] = reader.doc_frequency("xpairs", term)
        total = sum(counts.values()) or 1
        return [(t, n / total) for t, n in counts.items() if n]

    # -- one clause ------------------------------------------------------------------------------

    def clause_scores(self, clause: Clause) -> dict[int, float]:
        """{docnum: score before idf} for every document matching `clause` by its tokens."""
        found: dict[int, float] = {}
        if clause.kind == "prefix":
            terms = list(islice(self.snap.reader.expand_prefix("words", clause.folded[0]), MAX_PREFIX_TERMS + 1))
            if len(terms) > MAX_PREFIX_TERMS:
                self.messages.append(f"Có quá nhiều từ bắt đầu bằng “{clause.text}”; chỉ tìm {MAX_PREFIX_TERMS} từ đầu.")
            for term in terms[:MAX_PREFIX_TERMS]:
                term = term.decode() if isinstance(term, bytes) else term
                here = self.weights("words", term)
                new = here.keys() - found.keys()
                add_into(found, here)
                found.update(zip(new, map(here.__getitem__, new)))
            return saturated(found)
        alternatives = clause.alternatives
        if clause.kind == "word" and clause.folded[0].isdigit():
            # numbers said in words are indexed as digits too (passages.index_fields): only the
            # one-word readings ("năm" for 5) need a look of their own
            alternatives = [a for a in alternatives if len(a) == 1]
        if len(alternatives) == 1:
            found = self.phrase(alternatives[0])
        for alternative in alternatives if len(alternatives) > 1 else ():
            for doc, tf in self.phrase(alternative).items():
                if tf > found.get(doc, 0.0):
                    found[doc] = tf
        scores = saturated(found)
        add_into(scores, self.fit(clause))
        return scores

    def fit(self, clause: Clause) -> dict[int, float]:
        """{docnum: 0..1}: how well the marked forms in a document fit what the user typed."""
        n = len(clause.exact)
        if n == 1:
            # Limited scoring: one exact list per word (the typed form, or the archive's most
            # frequent reading of an unmarked word), none when every use has that same form.
            readings = self.readings(clause.folded[0])
            if clause.marked[0]:
                share = dict(readings).get(clause.exact[0], 0.0)
                readings = [(clause.exact[0], 1.0)] if share < 0.999 else []
            else:
                readings = [r for r in readings[:1] if r[1] < 0.999]
            field = "exact"
        elif any(clause.marked):
            if n == 2:
                readings, field = [(f"{clause.exact[0]}+{clause.exact[1]}", 1.0)], "xpairs"
            else:
                # a longer marked phrase fits where its first and last exact pairs occur
                first = self.weights("xpairs", f"{clause.exact[0]}+{clause.exact[1]}")
                last = self.weights("xpairs", f"{clause.exact[-2]}+{clause.exact[-1]}")
                return {doc: 1.0 for doc in first.keys() & last.keys()}
        else:
            readings, field = self.pair_readings(clause.folded[0], clause.folded[1]), "xpairs"
        return best_share(readings, lambda form: self.weights(field, form))  # the best fitting reading

    def adjacency(self, i: int, j: int) -> dict[int, float]:
        a, b = self.plan.clauses[i].folded[0], self.plan.clauses[j].folded[0]
        out = dict.fromkeys(self.weights("pairs", f"{a}+{b}"), 0.5)
        if not out:
            return out
        ci, cj = self.plan.clauses[i], self.plan.clauses[j]
        if ci.marked[0] or cj.marked[0]:
            readings = [(f"{ci.exact[0]}+{cj.exact[0]}", 1.0)]
        else:
            readings = self.pair_readings(a, b)
        add_into(out, best_share(readings, lambda form: self.weights("xpairs", form).keys() & out.keys()))
        return out

    # -- the whole query --------------------------------------------------------------------------

    def filter_docs(self) -> set[int] | None:
        """Documents allowed by the keyword filters (None when there are none)."""
        allowed = None
        for name in ("case", "category", "point", "complainant"):
            tokens = self.plan.filters.get(name)
            if not tokens:
                continue
            for token in tokens:
                docs = set(self.weights(name, token))
                allowed = docs if allowed is None else allowed & docs
        return allowed

    def run(self, sort: str, want: int) -> tuple[int, list[tuple[int, float]]]:
        """(total, the first `want` (docnum, score) in order)."""
        snap = self.snap
        is_meta = snap.is_meta
        allowed = self.filter_docs()
        if self.plan.empty:
            docs = set(snap.meta_docs) if allowed is None else allowed & snap.meta_docs
            docs = self._in_dates(docs)
            return len(docs), self._top({d: 0.0 for d in docs}, "date", want)

        n_docs = max(1, len(snap.session_of))
        clause_scores = [self.clause_scores(c) for c in self.plan.clauses]
        weights = [math.log(1 + n_docs / (1 + len(s))) for s in clause_scores]
        by_meta = [{snap.session_of[d] for d in s.keys() & snap.meta_docs} for s in clause_scores]

        # Sessions' metadata documents that match every clause.
        meta = set(snap.meta_docs)
        for scores in clause_scores:
            meta &= scores.keys()
        # Passages: every clause by its words or its session's metadata, one at least by words.
        spoken_any: set[int] = set()
        passages = None
        for scores, sessions in sorted(zip(clause_scores, by_meta), key=lambda x: len(x[0])):
            words_here = scores.keys() - snap.meta_docs
            spoken_any |= words_here
            ok = words_here | snap.passages_of(sessions) if sessions else words_here
            passages = set(ok) if passages is None else passages & ok
            if not passages:
                break
        passages = (passages or set()) & spoken_any
        docs = passages | meta
        if allowed is not None:
            docs &= allowed
        docs = self._in_dates(docs)
        if not docs:
            return 0, []

        # Whole dicts at a time (C loops), not a Python loop per document and clause.
        scored: dict[int, float] = dict.fromkeys(docs, 0.0)
        for scores, sessions, w in zip(clause_scores, by_meta, weights):
            add_into(scored, scores, w)
            if sessions:
                only_meta = (scored.keys() - scores.keys()) & snap.passages_of(sessions)
                add_into(scored, dict.fromkeys(only_meta, META_ONLY), w)
        for i, j in self.plan.adjacent:
            add_into(scored, self.adjacency(i, j), (weights[i] + weights[j]) / 2)
        boosted = meta & scored.keys()
        scored.update(zip(boosted, map(mul, map(scored.__getitem__, boosted), repeat(META_BOOST))))
        return len(docs), self._top(scored, sort, want)

    def _in_dates(self, docs: set[int]) -> set[int]:
        lo, hi = self.plan.filters.get("date_from"), self.plan.filters.get("date_to")
        if not lo and not hi:
            return docs
        dates = self.snap.dates
        first = bisect_left(dates, int(lo.strftime("%Y%m%d"))) if lo else 0
        last = bisect_right(dates, int(hi.strftime("%Y%m%d"))) if hi else len(dates)
        return docs.intersection(self.snap.by_date[first:last])

    def _top(self, scored: dict[int, float], sort: str, want: int) -> list[tuple[int, float]]:
        """The `want` best documents: by score (newer first among equals) or by date.

        Sorting uses the snapshot's precomputed per-document order key, so the sort runs in C;
        for relevance only the documents at or above the want-th best score are sorted."""
        order = self.snap.order_key.__getitem__
        if sort == "date":
            top = sorted(scored, key=order, reverse=True)[:want]
        else:
            values = heapq.nlargest(want, scored.values())
            threshold = values[-1] if values else 0.0
            best = list(compress(scored, map(threshold.__le__, scored.values())))
            best.sort(key=order, reverse=True)       # newer first ...
            best.sort(key=scored.__getitem__, reverse=True)  # ... within equal scores (stable)
            top = best[:want]
        return [(d, scored[d]) for d in top]

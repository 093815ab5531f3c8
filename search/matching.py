"""Which documents match a `Plan` and in what order, with bounded work per query.

Each clause becomes a dense array of scores, one per document of the snapshot, filled from whole
posting lists (search.postings); clauses, filters and dates combine as numpy operations over
those arrays, so the cost grows with the lengths of the few posting lists a query touches and
none of it is a Python call per document (at 2,000 hours of speech a common syllable is in most
of 26,000 passages). Only the requested page is then read back for snippets (search.snippets).

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

import math
from itertools import islice, product

import numpy as np

from .analysis import exact
from .postings import doc_frequency, postings_in, term_array, term_positions, term_weights
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



class Query:
    """One query's work on a snapshot (see index.Snapshot): clause arrays, memoised postings."""

    def __init__(self, snapshot, plan: Plan):
        self.snap = snapshot
        self.plan = plan
        self.leaves = snapshot.leaves
        self.n = snapshot.doc_count
        self._memo: dict = {}
        self.messages: list[str] = []

    # -- postings, memoised within the query (numbers share many pairs) -------------------------

    def weights(self, field: str, term: str) -> dict[int, float]:
        """{docnum: term frequency}, for the few-document work of phrases."""
        key = ("dict", field, term)
        if key not in self._memo:
            self._memo[key] = term_weights(self.leaves, field, term)
        return self._memo[key]

    def vec(self, field: str, term: str) -> np.ndarray:
        """The term's frequency in every document (0.0 where it does not occur)."""
        key = ("vec", field, term)
        if key not in self._memo:
            out = np.zeros(self.n)
            ids, weights = term_array(self.leaves, field, term)
            out[ids] = weights
            self._memo[key] = out
        return self._memo[key]

    def dense(self, found: dict[int, float]) -> np.ndarray:
        out = np.zeros(self.n)
        if found:
            out[np.fromiter(found.keys(), np.int64, len(found))] = np.fromiter(found.values(), float, len(found))
        return out

    def phrase(self, tokens: tuple[str, ...]) -> np.ndarray:
        """Occurrences per document of adjacent `tokens` (folded), from the pairs field.

        The rarest pair is read whole; the others only where it occurs (postings_in), so a
        number said in words ("hai nghìn không trăm hai mươi lăm", seven common syllables)
        costs about as much as its rarest pair."""
        if len(tokens) == 1:
            return self.vec("words", tokens[0])
        pairs = [f"{a}+{b}" for a, b in zip(tokens, tokens[1:])]
        if len(pairs) == 1:
            return self.vec("pairs", pairs[0])
        reader = self.snap.reader
        frequency = {p: doc_frequency(reader, "pairs", p) for p in set(pairs)}
        if not all(frequency.values()):
            return self.dense({})
        # Which passages have every pair (weights only), then positions just for those.
        ordered = sorted(frequency, key=frequency.__getitem__)
        docs = set(self.weights("pairs", ordered[0]))
        for p in ordered[1:]:
            if len(docs) * SKIP_RATIO < frequency[p]:
                docs &= postings_in(self.leaves, "pairs", p, docs).keys()
            else:
                docs &= self.weights("pairs", p).keys()
            if not docs:
                return self.dense({})
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
                return self.dense({})
        return self.dense({doc: float(len(s)) for doc, s in starts.items()})

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

    def clause_scores(self, clause: Clause) -> np.ndarray:
        """Score before idf of every document (0.0 where the clause does not match its tokens)."""
        if clause.kind == "prefix":
            terms = list(islice(self.snap.reader.expand_prefix("words", clause.folded[0]), MAX_PREFIX_TERMS + 1))
            if len(terms) > MAX_PREFIX_TERMS:
                self.messages.append(f"Có quá nhiều từ bắt đầu bằng “{clause.text}”; chỉ tìm {MAX_PREFIX_TERMS} từ đầu.")
            tf = np.zeros(self.n)
            for term in terms[:MAX_PREFIX_TERMS]:
                tf += self.vec("words", term.decode() if isinstance(term, bytes) else term)
            return tf / (tf + 1.0)
        alternatives = clause.alternatives
        if clause.kind == "word" and clause.folded[0].isdigit():
            # numbers said in words are indexed as digits too (passages.index_fields): only the
            # one-word readings ("năm" for 5) need a look of their own
            alternatives = [a for a in alternatives if len(a) == 1]
        tf = self.phrase(alternatives[0])
        for alternative in alternatives[1:]:
            tf = np.maximum(tf, self.phrase(alternative))
        scores = tf / (tf + 1.0)   # saturated frequency
        scores += np.where(tf > 0, self.fit(clause), 0.0)
        return scores

    def fit(self, clause: Clause) -> np.ndarray:
        """0..1 per document: how well its marked forms fit what the user typed."""
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
                first = self.vec("xpairs", f"{clause.exact[0]}+{clause.exact[1]}")
                last = self.vec("xpairs", f"{clause.exact[-2]}+{clause.exact[-1]}")
                return ((first > 0) & (last > 0)).astype(float)
        else:
            readings, field = self.pair_readings(clause.folded[0], clause.folded[1]), "xpairs"
        return self.best_share(readings, field)

    def best_share(self, readings: list[tuple[str, float]], field: str) -> np.ndarray:
        """Per document, the largest share among the readings it holds (0.0 for none)."""
        out = np.zeros(self.n)
        for form, share in readings:
            np.maximum(out, np.where(self.vec(field, form) > 0, share, 0.0), out=out)
        return out

    def adjacency(self, i: int, j: int) -> np.ndarray:
        a, b = self.plan.clauses[i].folded[0], self.plan.clauses[j].folded[0]
        together = self.vec("pairs", f"{a}+{b}") > 0
        if not together.any():
            return np.zeros(self.n)
        ci, cj = self.plan.clauses[i], self.plan.clauses[j]
        if ci.marked[0] or cj.marked[0]:
            readings = [(f"{ci.exact[0]}+{cj.exact[0]}", 1.0)]
        else:
            readings = self.pair_readings(a, b)
        return np.where(together, 0.5 + self.best_share(readings, "xpairs"), 0.0)

    # -- the whole query --------------------------------------------------------------------------

    def filter_docs(self) -> np.ndarray | None:
        """Documents allowed by the keyword filters, as a mask (None when there are none)."""
        allowed = None
        for name in ("case", "category", "point", "complainant"):
            for token in self.plan.filters.get(name) or ():
                here = self.vec(name, token) > 0
                allowed = here if allowed is None else allowed & here
        return allowed

    def run(self, sort: str, want: int) -> tuple[int, list[tuple[int, float]]]:
        """(total, the first `want` (docnum, score) in order)."""
        snap = self.snap
        is_meta, is_passage = snap.meta_mask, snap.passage_mask
        allowed = self.filter_docs()
        if self.plan.empty:
            docs = is_meta if allowed is None else is_meta & allowed
            docs = docs & self._in_dates()
            return int(docs.sum()), self._top(np.zeros(self.n), docs, "date", want)

        n_docs = max(1, int(is_meta.sum()) + int(is_passage.sum()))
        clause_scores = [self.clause_scores(c) for c in self.plan.clauses]
        matched = [s > 0 for s in clause_scores]
        weights = [math.log(1 + n_docs / (1 + int(m.sum()))) for m in matched]
        # Per clause, the passages of the sessions whose metadata document matches it.
        by_meta = []
        for m in matched:
            sessions = np.zeros(len(snap.session_names), bool)
            sessions[snap.session_idx[m & is_meta]] = True
            by_meta.append(sessions[snap.session_idx] & is_passage)

        # Sessions' metadata documents that match every clause.
        meta = is_meta.copy()
        for m in matched:
            meta &= m
        # Passages: every clause by its words or its session's metadata, one at least by words.
        passages = is_passage.copy()
        spoken_any = np.zeros(self.n, bool)
        for m, sessions in zip(matched, by_meta):
            words_here = m & is_passage
            spoken_any |= words_here
            passages &= words_here | sessions
        docs = (passages & spoken_any) | meta
        if allowed is not None:
            docs &= allowed
        docs &= self._in_dates()
        if not docs.any():
            return 0, []

        scored = np.zeros(self.n)
        for scores, m, sessions, w in zip(clause_scores, matched, by_meta, weights):
            scored += w * scores
            scored += np.where(sessions & ~m, w * META_ONLY, 0.0)
        for i, j in self.plan.adjacent:
            scored += ((weights[i] + weights[j]) / 2) * self.adjacency(i, j)
        scored[meta] *= META_BOOST
        return int(docs.sum()), self._top(scored, docs, sort, want)

    def _in_dates(self) -> np.ndarray | bool:
        lo, hi = self.plan.filters.get("date_from"), self.plan.filters.get("date_to")
        held = self.snap.held_array
        out = True
        if lo:
            out = held >= int(lo.strftime("%Y%m%d"))
        if hi:
            out = out & (held <= int(hi.strftime("%Y%m%d")))
        return out

    def _top(self, scored: np.ndarray, docs: np.ndarray, sort: str, want: int) -> list[tuple[int, float]]:
        """The `want` best of `docs`: by score (newer first among equals) or by date.

        For relevance only the documents at or above the want-th best score are sorted."""
        candidates = np.flatnonzero(docs)
        order = self.snap.order_array
        if sort == "date":
            top = candidates[np.argsort(-order[candidates], kind="stable")[:want]]
        else:
            values = scored[candidates]
            if len(values) > want:
                threshold = np.partition(values, len(values) - want)[len(values) - want]
                candidates = candidates[values >= threshold]
            # newest first within equal scores: lexsort's last key is the primary one
            top = candidates[np.lexsort((-order[candidates], -scored[candidates]))[:want]]
        return [(int(d), float(scored[d])) for d in top]

"""Whole posting lists read a block at a time, the fast path under every query.

Whoosh's matchers move one posting per Python call (about 2 µs each); a common Vietnamese
syllable has a posting in nearly every passage, so reading its list that way is what made naive
Whoosh slow. The W3 codec stores postings in pickled blocks of up to 128 (ids, weights, values);
`term_array` unpickles whole blocks into numpy arrays per term, which search.matching combines
as dense per-document arrays (and `term_weights` as a dict, for sparse work). whoosh-reloaded is pinned (2.7.5) in
pyproject; with another matcher class the public one-posting-at-a-time path is used.
"""
from __future__ import annotations

from itertools import accumulate

import numpy as np
from whoosh.codec.whoosh3 import W3LeafMatcher
from whoosh.matching.wrappers import FilterMatcher
from whoosh.reading import TermNotFound


def _leaf_matcher(reader, field: str, term: str):
    """The raw matcher of `term` in one segment and the set of deleted docnums (or None)."""
    try:
        matcher = reader.postings(field, term)
    except TermNotFound:
        return None, None
    deleted = None
    if isinstance(matcher, FilterMatcher) and getattr(matcher, "_exclude", False):
        deleted, matcher = matcher._ids, matcher.child
    return matcher, deleted


def _blocks(matcher):
    """Yield (ids, values) per block of a W3 matcher. Ids are stored as deltas; they are summed
    with itertools.accumulate (C) instead of the codec's Python generator."""
    while matcher.is_active():
        matcher._read_data()
        raw = matcher._data[0]
        matcher._read_values()
        yield (raw if matcher._byteids else list(accumulate(raw))), matcher._values
        matcher._next_block()


def term_array(leaves, field: str, term: str) -> tuple[np.ndarray, np.ndarray]:
    """(global docnums, term frequencies) of `term` in `field` over all segments, as arrays.

    Each W3 block stores its ids as a tuple of deltas and its weights as None (all 1.0), one
    float, or a tuple: each becomes an array in one call, with no Python call per posting."""
    ids: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for reader, offset in leaves:
        matcher, deleted = _leaf_matcher(reader, field, term)
        if matcher is None:
            continue
        leaf_ids, leaf_weights = [], []
        if isinstance(matcher, W3LeafMatcher):
            while matcher.is_active():
                matcher._read_data()
                raw_ids, raw_weights = matcher._data[0], matcher._data[1]
                block = np.array(raw_ids, dtype=np.int64)
                leaf_ids.append(block if matcher._byteids else np.cumsum(block))
                if raw_weights is None or isinstance(raw_weights, float):
                    leaf_weights.append(np.full(len(block), 1.0 if raw_weights is None else raw_weights))
                else:
                    leaf_weights.append(np.array(raw_weights, dtype=float))
                matcher._next_block()
        else:  # another codec: the public path, one posting per call
            postings = []
            while matcher.is_active():
                postings.append((matcher.id(), matcher.weight()))
                matcher.next()
            if postings:
                leaf_ids.append(np.array([d for d, _ in postings], dtype=np.int64))
                leaf_weights.append(np.array([w for _, w in postings], dtype=float))
        if not leaf_ids:
            continue
        found, tf = np.concatenate(leaf_ids) + offset, np.concatenate(leaf_weights)
        if deleted:
            keep = ~np.isin(found, np.fromiter(deleted, np.int64) + offset)
            found, tf = found[keep], tf[keep]
        ids.append(found)
        weights.append(tf)
    if not ids:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(ids), np.concatenate(weights)


def term_weights(leaves, field: str, term: str) -> dict[int, float]:
    """{global docnum: term frequency} for `term` in `field` over all segments (term_array as a
    dict, for the sparse work of phrases)."""
    ids, weights = term_array(leaves, field, term)
    return dict(zip(ids.tolist(), weights.tolist()))


def term_positions(leaves, field: str, term: str, docs=None) -> dict[int, list[int]]:
    """{global docnum: positions} for `term` in a positions field, only for `docs` if given."""
    out: dict[int, list[int]] = {}
    for reader, offset in leaves:
        matcher, deleted = _leaf_matcher(reader, field, term)
        if matcher is None:
            continue
        decode = matcher.format.decode_positions
        if isinstance(matcher, W3LeafMatcher):
            for ids, values in _blocks(matcher):
                for doc, value in zip(ids, values):
                    doc += offset
                    if docs is None or doc in docs:
                        out[doc] = value
        else:
            while matcher.is_active():
                doc = matcher.id() + offset
                if docs is None or doc in docs:
                    out[doc] = matcher.value()
                matcher.next()
        if deleted:
            for doc in deleted:
                out.pop(doc + offset, None)
        for doc, value in out.items():
            if isinstance(value, bytes):
                out[doc] = decode(value)
    return out


def postings_in(leaves, field: str, term: str, docs: set[int], values: bool = False) -> dict:
    """{global docnum: weight (or decoded positions with `values`)} for `term`, only for `docs`.

    For a few candidates in a long list: the matcher skips whole blocks by their last id without
    unpickling them, so the cost follows len(docs), not the list's length."""
    out: dict = {}
    wanted = sorted(docs)
    for reader, offset in leaves:
        local = [d - offset for d in wanted if offset <= d < offset + reader.doc_count_all()]
        if not local:
            continue
        matcher, deleted = _leaf_matcher(reader, field, term)
        if matcher is None:
            continue
        for doc in local:
            if not matcher.is_active():
                break
            matcher.skip_to(doc)
            if matcher.is_active() and matcher.id() == doc and not (deleted and doc in deleted):
                if values:
                    out[doc + offset] = matcher.format.decode_positions(matcher.value())
                else:
                    out[doc + offset] = matcher.weight()
    return out


def doc_frequency(reader, field: str, term: str) -> int:
    try:
        return reader.doc_frequency(field, term)
    except TermNotFound:
        return 0

"""Whole posting lists read a block at a time, the fast path under every query.

Whoosh's matchers move one posting per Python call (about 2 µs each); a common Vietnamese
syllable has a posting in nearly every passage, so reading its list that way is what made naive
Whoosh slow. The W3 codec stores postings in pickled blocks of up to 128 (ids, weights, values);
`term_weights` unpickles whole blocks and builds a {docnum: weight} dict per term, which set
operations (intersection, union) then combine at C speed. whoosh-reloaded is pinned (2.7.5) in
pyproject; with another matcher class the public one-posting-at-a-time path is used.
"""
from __future__ import annotations

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


def _blocks(matcher, with_values: bool):
    """Yield (ids, weights, values) per block of a W3 matcher."""
    while matcher.is_active():
        matcher._read_ids()
        matcher._read_weights()
        values = None
        if with_values:
            matcher._read_values()
            values = matcher._values
        yield matcher._ids, matcher._weights, values
        matcher._next_block()


def term_weights(leaves, field: str, term: str) -> dict[int, float]:
    """{global docnum: term frequency} for `term` in `field` over all segments."""
    out: dict[int, float] = {}
    for reader, offset in leaves:
        matcher, deleted = _leaf_matcher(reader, field, term)
        if matcher is None:
            continue
        if isinstance(matcher, W3LeafMatcher):
            for ids, weights, _ in _blocks(matcher, False):
                if offset:
                    ids = [i + offset for i in ids]
                out.update(zip(ids, weights))
        else:
            while matcher.is_active():
                out[matcher.id() + offset] = matcher.weight()
                matcher.next()
        if deleted:
            for doc in deleted:
                out.pop(doc + offset, None)
    return out


def term_positions(leaves, field: str, term: str, docs=None) -> dict[int, list[int]]:
    """{global docnum: positions} for `term` in a positions field, only for `docs` if given."""
    out: dict[int, list[int]] = {}
    for reader, offset in leaves:
        matcher, deleted = _leaf_matcher(reader, field, term)
        if matcher is None:
            continue
        decode = matcher.format.decode_positions
        if isinstance(matcher, W3LeafMatcher):
            for ids, _, values in _blocks(matcher, True):
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

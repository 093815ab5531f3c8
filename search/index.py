"""The search index of an archive: a Whoosh index in `settings.index_dir`, a cache of the catalog.

Layout of the folder:

    index/CURRENT        the name of the generation folder in use (replaced atomically)
    index/gen-*/         a Whoosh index (one per rebuild)
    index/write.lock     held by the one writer at a time (fcntl; waits up to a timeout)

Documents: one per passage of a recording's current transcript (search.passages) and one per
session with its metadata; every document carries the session's filter fields and date. The
metadata document also holds the session's catalog `revision`, which is how `sync()` knows what
changed. Writers take the lock (`IndexBusy` after the timeout, never a bare LockError); Whoosh
commits by renaming a new table of contents into place, so readers see the old or the new state
and a writer that dies leaves the last committed index usable. An index that cannot be opened
is rebuilt from the catalog; `rebuild()` builds a new generation and swaps CURRENT, so readers
are never blocked.

Readers keep one snapshot per thread (Whoosh readers are not safe to share between threads),
with the arrays a query needs (date, session, kind per document), refreshed when a writer
committed or the generation changed.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
from whoosh import fields, index as whoosh_index
from whoosh.analysis import SpaceSeparatedTokenizer
from whoosh.index import LockError

from archive import seals
from archive.errors import ArchiveError

from . import matching, query as query_mod
from .analysis import fold, nfc, words
from .passages import DEFAULT_WINDOW, index_fields, pack, passage_body, passages, passage_tokens, unpack
from .postings import term_array, term_weights
from .results import Hit, SearchResult
from .snippets import meta_match, passage_match, side_by_side

log = logging.getLogger(__name__)

WRITE_TIMEOUT = 30.0
# The documents' layout; an index written with another is rebuilt on open.
FORMAT = "tcd-search-3"
SORTS = ("relevance", "date")
MAX_LIMIT = 100
MAX_PAGE = 500

SegmentFilter = Callable[[object, object, dict], bool]  # (session, recording, segment) -> index it?


class IndexBusy(ArchiveError):
    """Another process is writing the search index and did not finish within the timeout."""


def schema() -> fields.Schema:
    tokens = SpaceSeparatedTokenizer()
    keyword = dict(lowercase=False, commas=False)
    return fields.Schema(
        kind=fields.ID(),                                   # "m" metadata, "p" passage
        session=fields.ID(stored=True, sortable=True),
        held=fields.NUMERIC(int, bits=32, sortable=True, default=0),
        revision=fields.NUMERIC(int, bits=64, sortable=True, default=0),
        words=fields.TEXT(analyzer=tokens, phrase=False),    # folded syllables
        exact=fields.TEXT(analyzer=tokens, phrase=False),    # exact syllables
        pairs=fields.TEXT(analyzer=tokens, phrase=True),     # folded pairs, with positions
        xpairs=fields.TEXT(analyzer=tokens, phrase=False),   # exact pairs
        case=fields.KEYWORD(**keyword), category=fields.KEYWORD(**keyword),
        point=fields.KEYWORD(**keyword), complainant=fields.KEYWORD(**keyword),
        body=fields.STORED(),
    )


def indexed_revisions(ix) -> dict[str, int]:
    """{session id: catalog revision} of the sessions in the index, read from the metadata
    documents only (a few thousand column lookups, however many passages there are)."""
    out: dict[str, int] = {}
    with ix.reader() as reader:
        for leaf, offset in reader.leaf_readers():
            sessions, revisions = leaf.column_reader("session"), leaf.column_reader("revision")
            for doc in term_weights([(leaf, 0)], "kind", "m"):
                out[sessions[doc]] = revisions[doc]
    return out


def _folded_text(*values) -> str:
    return " ".join(fold(w) for v in values for w, _, _ in words(nfc(str(v or ""))))


class Snapshot:
    """A reader of one committed state of the index, with per-document arrays for queries."""

    def __init__(self, ix, generation: str):
        self.generation = generation
        self.ix = ix
        self.searcher = ix.searcher()
        self.reader = self.searcher.reader()
        self.leaves = self.reader.leaf_readers()
        self.reading_cache: dict = {}
        n = self.doc_count = self.reader.doc_count_all()
        self.revision = list(self.reader.column_reader("revision")) if n else []
        self.session_of = list(self.reader.column_reader("session")) if n else []
        self.held_array = np.array(list(self.reader.column_reader("held")) if n else [], dtype=np.int64)
        # Newer sessions first, then earlier passages first: one number per document.
        self.order_array = self.held_array * 10_000_000 - np.arange(n)
        self.meta_docs = term_array(self.leaves, "kind", "m")[0].tolist()
        self.meta_mask = np.zeros(n, bool)
        self.meta_mask[self.meta_docs] = True
        self.passage_mask = np.zeros(n, bool)
        self.passage_mask[term_array(self.leaves, "kind", "p")[0]] = True
        self.meta_of = {self.session_of[d]: d for d in self.meta_docs}
        session_names, session_idx = np.unique(np.array(self.session_of, dtype=object), return_inverse=True)
        self.session_names, self.session_idx = list(session_names), session_idx.astype(np.int64)

    def up_to_date(self) -> bool:
        return self.searcher.up_to_date()

    def revisions(self) -> dict[str, int]:
        return {self.session_of[d]: self.revision[d] for d in self.meta_docs}

    def body(self, docnum: int) -> dict:
        return unpack(self.searcher.stored_fields(docnum)["body"])

    def close(self) -> None:
        self.searcher.close()


class SearchIndex:
    """The archive's full-text index; see the module docstring."""

    def __init__(self, archive, *, window: float = DEFAULT_WINDOW, write_timeout: float = WRITE_TIMEOUT,
                 segment_filter: SegmentFilter | None = None, ensure: bool = True):
        self.archive = archive
        self.catalog = archive.catalog
        self.root = Path(archive.settings.index_dir)
        self.window = window
        self.write_timeout = write_timeout
        # Hook for passages that must not be searchable (e.g. sealed passages): called with
        # (session, recording, segment); a segment is indexed only when it returns True.
        self.segment_filter = segment_filter
        self._local = threading.local()
        self.root.mkdir(parents=True, exist_ok=True)
        if ensure:
            self._ensure_usable()

    # -- folders and generations --------------------------------------------------------------

    @property
    def _pointer(self) -> Path:
        return self.root / "CURRENT"

    def _generation(self) -> str | None:
        try:
            name = self._pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def _open_ix(self, generation: str | None = None):
        generation = generation or self._generation()
        if not generation:
            raise ArchiveError("The search index has not been built; run `tcd reindex`.")
        return whoosh_index.open_dir(str(self.root / generation))

    def _ensure_usable(self) -> None:
        """Open the index once; build it when there is none, rebuild it when it cannot be read."""
        generation = self._generation()
        if generation and (self.root / generation).is_dir():
            try:
                if (self.root / generation / "FORMAT").read_text().strip() != FORMAT:
                    raise ValueError("it was written by another version")
                indexed_revisions(self._open_ix(generation))
                return
            except Exception as exc:  # any failure to read means: rebuild the cache
                log.warning("search index %s is unreadable (%s); rebuilding it", generation, exc)
        self.rebuild()

    # -- locking ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, timeout: float | None = None):
        """Hold the write lock, waiting up to `timeout` seconds, else raise IndexBusy."""
        timeout = self.write_timeout if timeout is None else timeout
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "write.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise IndexBusy("The search index is being updated by another process; "
                                        "try again in a moment (the update goes on).") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _writer(self, ix, timeout: float | None = None):
        try:
            return ix.writer(timeout=self.write_timeout if timeout is None else timeout, limitmb=128)
        except LockError:
            raise IndexBusy("The search index is locked by another writer; try again in a moment.") from None

    # -- writing ------------------------------------------------------------------------------

    def _session_documents(self, session) -> list[dict]:
        """The metadata document and the passage documents of one session, from the catalog."""
        filters = {"case": _folded_text(session.case_code), "category": _folded_text(session.category),
                   "point": _folded_text(*session.points, *[r.point for r in self.catalog.recordings_for_session(session.id)]),
                   "complainant": _folded_text(*session.complainants)}
        held = int(session.held_on.replace("-", "")[:8] or 0)
        meta_fields = [["Tiêu đề", session.title], ["Vụ việc", session.case_code],
                       ["Người khiếu nại", "; ".join(session.complainants)], ["Chủ trì", session.chair],
                       ["Điểm cầu", "; ".join(session.points)], ["Người tham gia", "; ".join(session.participants)]]
        meta_fields = [f for f in meta_fields if f[1]]
        meta_tokens = [w for _, text in meta_fields for w, _, _ in words(nfc(text))]
        docs = [{"kind": "m", "session": session.id, "held": held, "revision": session.revision,
                 **index_fields(meta_tokens), **filters,
                 "body": pack({"title": session.title, "held_on": session.held_on, "fields": meta_fields})}]
        for rec in self.catalog.recordings_for_session(session.id):
            transcript = self.catalog.current_transcript(rec.id)
            # sealed words never enter the index (it is shared by every user) and notes are segments
            # of their own, so a hit plays from the note's second (archive.seals, issue 9)
            segments = seals.searchable(self.archive, rec.id, transcript.segments if transcript else [])
            if not segments:
                continue
            if self.segment_filter is not None:
                segments = [s for s in segments if self.segment_filter(session, rec, s)]
            cut = passages(rec.id, segments, self.window)
            tokens = [passage_tokens(p) for p in cut]
            for k, passage in enumerate(cut):
                tail = tokens[k + 1] if k + 1 < len(cut) else []
                docs.append({"kind": "p", "session": session.id, "held": held,
                             **index_fields(tokens[k], tail), **filters,
                             "body": passage_body(passage, tail)})
        return docs

    def _write_session(self, writer, session_id: str) -> None:
        writer.delete_by_term("session", session_id)
        session = self.catalog.find_session(session_id)
        if session is not None:
            for doc in self._session_documents(session):
                writer.add_document(**doc)

    def index_session(self, session_id: str) -> None:
        """(Re)index one session from the catalog (removes it when the catalog has none)."""
        with self.writing():
            ix = self._open_ix()
            writer = self._writer(ix)
            try:
                self._write_session(writer, session_id)
            except BaseException:
                writer.cancel()
                raise
            writer.commit()

    def remove_session(self, session_id: str) -> None:
        with self.writing():
            writer = self._writer(self._open_ix())
            writer.delete_by_term("session", session_id)
            writer.commit()

    def sync(self) -> int:
        """Re-index sessions whose revision changed and drop those gone; returns how many."""
        with self.writing():
            ix = self._open_ix()
            indexed = indexed_revisions(ix)
            current = {s.id: s.revision for s in self.catalog.list_sessions()}
            changed = [sid for sid, rev in current.items() if indexed.get(sid) != rev]
            gone = [sid for sid in indexed if sid not in current]
            if not changed and not gone:
                return 0
            writer = self._writer(ix)
            try:
                for sid in gone:
                    writer.delete_by_term("session", sid)
                for sid in changed:
                    self._write_session(writer, sid)
            except BaseException:
                writer.cancel()
                raise
            writer.commit()
            return len(changed) + len(gone)

    def rebuild(self) -> int:
        """Build a new generation from the catalog, then switch to it atomically; returns sessions."""
        with self.writing():
            generation = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            folder = self.root / generation
            folder.mkdir()
            (folder / "FORMAT").write_text(FORMAT, encoding="utf-8")
            ix = whoosh_index.create_in(str(folder), schema())
            writer = ix.writer(limitmb=256)
            sessions = self.catalog.list_sessions()
            try:
                for session in sessions:
                    for doc in self._session_documents(session):
                        writer.add_document(**doc)
            except BaseException:
                writer.cancel()
                shutil.rmtree(folder, ignore_errors=True)
                raise
            writer.commit(optimize=True)
            tmp = self.root / f"CURRENT.{uuid.uuid4().hex[:6]}"
            tmp.write_text(generation, encoding="utf-8")
            os.replace(tmp, self._pointer)
            for old in self.root.glob("gen-*"):
                if old.name != generation:
                    shutil.rmtree(old, ignore_errors=True)
            return len(sessions)

    # -- reading ------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """This thread's reader, reopened when a writer committed or the generation changed."""
        snap: Snapshot | None = getattr(self._local, "snap", None)
        generation = self._generation()
        if snap is not None and snap.generation == generation and snap.up_to_date():
            return snap
        if snap is not None:
            with contextlib.suppress(Exception):
                snap.close()
            self._local.snap = None
        snap = Snapshot(self._open_ix(generation), generation)
        self._local.snap = snap
        return snap

    def check(self) -> None:
        """Raise ArchiveError if the index cannot answer a query (for /healthz)."""
        try:
            snap = self.snapshot()
            snap.revisions()
            for doc in list(snap.meta_docs)[:1]:
                snap.body(doc)
        except ArchiveError:
            raise
        except Exception as exc:
            self._local.snap = None
            raise ArchiveError(f"The search index cannot be read ({exc}); run `tcd reindex`.") from exc

    def search(self, query: str | None, *, date_from=None, date_to=None, case=None, category=None,
               point=None, complainant=None, sort: str = "relevance", page: int = 1,
               limit: int = 20) -> SearchResult:
        """Search what was said and the sessions' metadata; never raises on bad user input."""
        plan = query_mod.parse(query, date_from=date_from, date_to=date_to, case=case,
                               category=category, point=point, complainant=complainant)
        messages = list(plan.messages)
        if sort not in SORTS:
            messages.append(f"Không có cách sắp xếp “{sort}”; đã sắp theo mức độ phù hợp.")
            sort = "relevance"
        page, limit = _clamp(page, 1, MAX_PAGE, 1), _clamp(limit, 1, MAX_LIMIT, 20)
        result = SearchResult(total=0, page=page, limit=limit, messages=messages, sort=sort)
        if plan.empty and not plan.filters:
            return result
        try:
            self._run(plan, sort, page, limit, result)
        except (OSError, EOFError, KeyError, ValueError) as exc:
            # A rebuild may have swapped generations under this thread's reader: reopen, retry once.
            log.info("search reopened the index after %r", exc)
            self._local.snap = None
            self._run(plan, sort, page, limit, result)
        if result.total and not result.hits:
            result.messages.append(f"Trang {page} không có kết quả; có {result.pages} trang.")
        return result

    def _run(self, plan, sort: str, page: int, limit: int, result: SearchResult) -> None:
        snap = self.snapshot()
        run = matching.Query(snap, plan)
        total, ranked = run.run(sort, page * limit)
        result.total = total
        metas: dict[str, dict] = {}
        together = side_by_side(plan.clauses, plan.adjacent)
        result.hits = [self._hit(snap, plan, doc, score, metas, together)
                       for doc, score in ranked[(page - 1) * limit:]]
        result.messages += run.messages

    def _hit(self, snap: Snapshot, plan, doc: int, score: float, metas: dict, together: list) -> Hit:
        session_id = snap.session_of[doc]
        meta = metas.get(session_id)
        if meta is None:
            meta_doc = snap.meta_of.get(session_id)
            meta = snap.body(meta_doc) if meta_doc is not None else {"title": "", "held_on": "", "fields": []}
            metas[session_id] = meta
        if snap.meta_mask[doc]:
            return Hit(session_id, meta["title"], meta["held_on"], "", 0.0, 0.0, "",
                       meta_match(meta["fields"], plan.clauses), round(score, 4))
        body = snap.body(doc)
        found = passage_match(body, plan.clauses, together)
        return Hit(session_id, meta["title"], meta["held_on"], body["r"], found["start"], found["end"],
                   found["speaker"], found["snippet"], round(score, 4))


def _clamp(value, lo: int, hi: int, default: int) -> int:
    try:
        value = int(value)
    except (TypeError, ValueError):
        return default
    return max(lo, min(hi, value))


def open_index(archive, **options) -> SearchIndex:
    """The archive's search index, built or rebuilt if it is missing or unreadable."""
    return SearchIndex(archive, **options)

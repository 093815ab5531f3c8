"""/media/<recording-id>: the access copy of a recording, streamed from the store with HTTP Range.

The request names a recording, never a path: the recording is looked up in the catalog and only
its `access_sha256` object is read, in chunks, through `Store.read_range`. A single byte range
gets 206 with Content-Range; a range past the end gets 416; a malformed header or several ranges
get the whole file (200), which RFC 9110 allows. A play is audited once per recording per sitting,
not once per range request, whichever server process answers each request (`SittingMarks`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import time
from collections import OrderedDict

from flask import Blueprint, Response, abort, current_app, request
from flask_login import current_user
from werkzeug.http import parse_range_header

from archive import seals
from archive.catalog import Catalog, now
from archive.errors import NotFound

from .auth import archive, login_token, record, require

bp = Blueprint("media", __name__)

RECORDING_ID = re.compile(r"^[0-9a-f]{16}$")
# "bytes=-0" is well-formed but asks for nothing; werkzeug reads it as malformed.
EMPTY_SUFFIX = re.compile(r"^\s*bytes\s*=\s*-0+\s*$", re.IGNORECASE)


class Once:
    """The (user, sitting, kind, id) keys this process has seen already; bounded, oldest forgotten."""

    def __init__(self, size: int = 50_000):
        self.size = size
        self._seen: OrderedDict[tuple, None] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, key: tuple) -> bool:
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return False
            self._seen[key] = None
            if len(self._seen) > self.size:
                self._seen.popitem(last=False)
            return True

    def forget(self, key: tuple) -> None:
        with self._lock:
            self._seen.pop(key, None)


class SittingMarks:
    """Whether an action on an item is the first of its sitting, for all server processes.

    The catalog answers (`sitting_marks`, keyed by a SHA-256 of the user and sign-in token, so
    the token itself is never stored); this process's `Once` in front means the catalog is asked
    only for keys this process has not seen yet, so the range requests of a play after its first
    cost a dictionary lookup. Marks older than a sitting's lifetime are dropped, at most once a
    minute per process, as new ones are written."""

    PRUNE_EVERY = 60.0  # seconds

    def __init__(self, catalog: Catalog, lifetime: dt.timedelta):
        self.catalog, self.lifetime = catalog, lifetime
        self.seen = Once()
        self._next_prune = 0.0
        self._lock = threading.Lock()

    def first(self, user_id: str | None, token: str, kind: str, item: str) -> bool:
        key = (user_id, token, kind, item)
        if not self.seen.first(key):
            return False
        sitting = hashlib.sha256(f"{user_id}\0{token}".encode("utf-8")).hexdigest()
        try:
            return self.catalog.mark_sitting(sitting, kind, item, self._forget_before())
        except BaseException:
            self.seen.forget(key)  # not recorded: the next request must ask again
            raise

    def _forget_before(self) -> str | None:
        """The catalog time before which marks belong to ended sittings, once a minute; else None."""
        clock = time.monotonic()  # only paces this process's pruning
        with self._lock:
            if clock < self._next_prune:
                return None
            self._next_prune = clock + self.PRUNE_EVERY
        return (dt.datetime.fromisoformat(now()) - self.lifetime).isoformat()


def init_app(app) -> None:
    app.extensions["tcd_sittings"] = SittingMarks(app.extensions["tcd"].catalog,
                                                  app.permanent_session_lifetime)


def first_in_sitting(kind: str, item: str) -> bool:
    return current_app.extensions["tcd_sittings"].first(current_user.get_id(), login_token(), kind, item)


@bp.route("/media/<recording_id>")
@require("play")
def stream(recording_id: str):
    if not RECORDING_ID.match(recording_id):
        abort(404)
    catalog = archive().catalog
    try:
        rec = catalog.get_recording(recording_id)
    except NotFound:
        abort(404)
    if not rec.access_sha256:
        abort(404)
    store = archive().store
    try:
        # users without clearance get the copy whose sealed spans are silent and blank
        sha256, mime = seals.playable(archive(), rec, current_user)
    except seals.SealedCopyPending:
        abort(503)
    try:
        size = store.size(sha256)
    except NotFound:
        current_app.logger.error("access copy %s of recording %s is missing from the store", sha256, rec.id)
        abort(404)

    headers = {"Accept-Ranges": "bytes", "ETag": f'"{sha256}"',
               "Cache-Control": "private, max-age=3600", "Content-Disposition": "inline"}
    start, length, status = 0, size, 200
    header = request.headers.get("Range")
    if header and _if_range_holds(sha256):
        if EMPTY_SUFFIX.match(header):
            return _unsatisfiable(size, headers)
        parsed = parse_range_header(header)
        if parsed is not None and parsed.units == "bytes" and len(parsed.ranges) == 1:
            span = parsed.range_for_length(size)
            if span is None:
                return _unsatisfiable(size, headers)
            start, stop = span
            length, status = stop - start, 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"

    if first_in_sitting("play", rec.id):
        record("play", rec.session_id, rec.id)
    headers["Content-Length"] = str(length)
    body = store.read_range(sha256, start, length) if request.method != "HEAD" else iter(())
    return Response(body, status=status, headers=headers,
                    mimetype=mime or rec.access_mime or "application/octet-stream", direct_passthrough=True)


def _if_range_holds(sha256: str) -> bool:
    """If-Range with another version's tag means: send the whole file instead of a part."""
    condition = request.headers.get("If-Range")
    return condition is None or condition.strip() in (f'"{sha256}"', f'W/"{sha256}"')


def _unsatisfiable(size: int, headers: dict) -> Response:
    headers = {**headers, "Content-Range": f"bytes */{size}"}
    return Response("Khoảng dữ liệu yêu cầu nằm ngoài tệp.\n", status=416, headers=headers,
                    mimetype="text/plain")

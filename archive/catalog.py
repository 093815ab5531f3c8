"""The catalog: one SQLite database with sessions, recordings, objects, transcripts, jobs, users
and the audit log. This module is the only place with SQL.

The database runs in WAL mode (readers never wait for the writer) with foreign keys on. The
schema has a version (`PRAGMA user_version`) and a list of migrations; opening an older catalog
brings it up to date. Each thread gets its own connection, so the web server's threads and the
ingest workers can share one `Catalog`.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

from .errors import Conflict, InvalidInput, NotFound

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE sessions (
        id              TEXT PRIMARY KEY,
        title           TEXT NOT NULL,
        held_on         TEXT NOT NULL,
        case_code       TEXT NOT NULL DEFAULT '',
        category        TEXT NOT NULL DEFAULT '',
        chair           TEXT NOT NULL DEFAULT '',
        central_point   TEXT NOT NULL DEFAULT '',
        delegate_points TEXT NOT NULL DEFAULT '[]',
        complainants    TEXT NOT NULL DEFAULT '[]',
        participants    TEXT NOT NULL DEFAULT '[]',
        notes           TEXT NOT NULL DEFAULT '',
        retention       TEXT NOT NULL DEFAULT 'permanent',
        legal_hold      INTEGER NOT NULL DEFAULT 0,
        revision        INTEGER NOT NULL DEFAULT 1,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    );
    CREATE INDEX sessions_held_on ON sessions(held_on);

    CREATE TABLE objects (
        sha256      TEXT PRIMARY KEY,
        size        INTEGER NOT NULL,
        kind        TEXT NOT NULL,          -- original | access | transcript | derived
        media_type  TEXT NOT NULL DEFAULT '',
        created_at  TEXT NOT NULL,
        verified_at TEXT,
        verify_ok   INTEGER
    );

    CREATE TABLE recordings (
        id              TEXT PRIMARY KEY,   -- the first 16 hex of the original's SHA-256
        session_id      TEXT NOT NULL REFERENCES sessions(id),
        point           TEXT NOT NULL DEFAULT '',
        original_name   TEXT NOT NULL,
        original_sha256 TEXT NOT NULL UNIQUE REFERENCES objects(sha256),
        access_sha256   TEXT REFERENCES objects(sha256),
        access_mime     TEXT NOT NULL DEFAULT '',
        duration        REAL NOT NULL DEFAULT 0,
        has_video       INTEGER NOT NULL DEFAULT 0,
        has_audio       INTEGER NOT NULL DEFAULT 0,
        probe           TEXT NOT NULL DEFAULT '{}',
        created_at      TEXT NOT NULL
    );
    CREATE INDEX recordings_session ON recordings(session_id);

    CREATE TABLE transcripts (
        id           INTEGER PRIMARY KEY,
        recording_id TEXT NOT NULL REFERENCES recordings(id),
        version      INTEGER NOT NULL,
        kind         TEXT NOT NULL,         -- machine | human
        engine       TEXT NOT NULL DEFAULT '',
        model        TEXT NOT NULL DEFAULT '',
        author       TEXT NOT NULL,
        label        TEXT NOT NULL DEFAULT '',
        based_on     INTEGER,
        sha256       TEXT REFERENCES objects(sha256),
        segments     TEXT NOT NULL,         -- JSON list of segments
        seconds      REAL NOT NULL DEFAULT 0,
        created_at   TEXT NOT NULL,
        UNIQUE (recording_id, version)
    );

    CREATE TABLE jobs (
        id           INTEGER PRIMARY KEY,
        source       TEXT NOT NULL,
        source_name  TEXT NOT NULL,
        source_size  INTEGER,
        source_mtime REAL,
        session_id   TEXT REFERENCES sessions(id),
        point        TEXT NOT NULL DEFAULT '',
        sha256       TEXT,
        recording_id TEXT,
        stage        TEXT NOT NULL DEFAULT 'receive',
        status       TEXT NOT NULL DEFAULT 'pending',  -- pending|running|waiting|done|failed|duplicate
        progress     REAL NOT NULL DEFAULT 0,
        message      TEXT NOT NULL DEFAULT '',
        attempts     INTEGER NOT NULL DEFAULT 0,
        options      TEXT NOT NULL DEFAULT '{}',
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );
    CREATE INDEX jobs_status ON jobs(status);
    CREATE INDEX jobs_source ON jobs(source);

    CREATE TABLE job_stages (
        job_id      INTEGER NOT NULL REFERENCES jobs(id),
        stage       TEXT NOT NULL,
        status      TEXT NOT NULL,          -- running | done | failed | skipped
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        seconds     REAL,
        message     TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (job_id, stage)
    );

    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        role          TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        clearance     INTEGER NOT NULL DEFAULT 0,
        disabled      INTEGER NOT NULL DEFAULT 0,
        created_at    TEXT NOT NULL
    );

    CREATE TABLE audit (
        id         INTEGER PRIMARY KEY,
        at         TEXT NOT NULL,
        actor      TEXT NOT NULL,
        action     TEXT NOT NULL,
        session_id TEXT,
        target     TEXT NOT NULL DEFAULT '',
        detail     TEXT NOT NULL DEFAULT '{}',
        prev_hash  TEXT NOT NULL,
        hash       TEXT NOT NULL
    );
    CREATE INDEX audit_session ON audit(session_id);

    CREATE TABLE fixity_runs (
        id          INTEGER PRIMARY KEY,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        scope       TEXT NOT NULL,
        checked     INTEGER NOT NULL DEFAULT 0,
        failed      INTEGER NOT NULL DEFAULT 0,
        detail      TEXT NOT NULL DEFAULT '{}'
    );

    CREATE TABLE backups (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,          -- disk | disc
        dest        TEXT NOT NULL,
        label       TEXT NOT NULL DEFAULT '',
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        status      TEXT NOT NULL,          -- running | complete | failed
        detail      TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # backup and restore: the history of a session restored from a backup, kept verbatim (with the
    # hashes of the chain it was written in) beside the live audit chain, which it would break
    """
    CREATE TABLE audit_restored (
        hash        TEXT PRIMARY KEY,
        original_id INTEGER NOT NULL,
        at          TEXT NOT NULL,
        actor       TEXT NOT NULL,
        action      TEXT NOT NULL,
        session_id  TEXT,
        target      TEXT NOT NULL DEFAULT '',
        detail      TEXT NOT NULL DEFAULT '{}',
        prev_hash   TEXT NOT NULL,
        restored_at TEXT NOT NULL,
        source      TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_restored_session ON audit_restored(session_id);
    CREATE INDEX objects_verified_at ON objects(verified_at);
    """,
    # notes, sealed passages and retention (issue 9): timestamped notes with their versions, seals
    # over spans of a recording (kept after removal, for history), the derived access copy made
    # for the seals in force, two-person deletions and what backups must still drop
    """
    CREATE TABLE notes (
        id           INTEGER PRIMARY KEY,
        session_id   TEXT NOT NULL REFERENCES sessions(id),
        recording_id TEXT NOT NULL REFERENCES recordings(id),
        start_sec    REAL NOT NULL,
        end_sec      REAL,                  -- NULL: a moment, not a span
        text         TEXT NOT NULL,
        author       TEXT NOT NULL,
        version      INTEGER NOT NULL DEFAULT 1,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );
    CREATE INDEX notes_recording ON notes(recording_id, start_sec);
    CREATE INDEX notes_session ON notes(session_id);
    CREATE TABLE note_versions (
        note_id   INTEGER NOT NULL REFERENCES notes(id),
        version   INTEGER NOT NULL,
        start_sec REAL NOT NULL,
        end_sec   REAL,
        text      TEXT NOT NULL,
        editor    TEXT NOT NULL,
        at        TEXT NOT NULL,
        PRIMARY KEY (note_id, version)
    );
    CREATE TABLE seals (
        id           INTEGER PRIMARY KEY,
        session_id   TEXT NOT NULL REFERENCES sessions(id),
        recording_id TEXT NOT NULL REFERENCES recordings(id),
        start_sec    REAL NOT NULL,
        end_sec      REAL NOT NULL,
        reason       TEXT NOT NULL,
        sealed_by    TEXT NOT NULL,
        sealed_at    TEXT NOT NULL,
        removed_by   TEXT,
        removed_at   TEXT
    );
    CREATE INDEX seals_recording ON seals(recording_id, start_sec);
    CREATE TABLE sealed_copies (
        recording_id TEXT PRIMARY KEY REFERENCES recordings(id),
        spans        TEXT NOT NULL,         -- JSON [[start, end], ...] the copy silences
        sha256       TEXT NOT NULL REFERENCES objects(sha256),
        mime         TEXT NOT NULL,
        created_at   TEXT NOT NULL
    );
    CREATE TABLE deletions (
        id          INTEGER PRIMARY KEY,
        session_id  TEXT NOT NULL,          -- no foreign key: the record outlives the session
        reason      TEXT NOT NULL DEFAULT '',
        proposed_by TEXT NOT NULL,
        proposed_at TEXT NOT NULL,
        approved_by TEXT,
        approved_at TEXT,
        status      TEXT NOT NULL DEFAULT 'proposed',  -- proposed | approved | done | withdrawn
        detail      TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX deletions_session ON deletions(session_id);
    CREATE TABLE backup_removals (
        id          INTEGER PRIMARY KEY,
        deletion_id INTEGER NOT NULL REFERENCES deletions(id),
        session_id  TEXT NOT NULL,
        objects     TEXT NOT NULL,          -- JSON list of the SHA-256 removed from the store
        removed_at  TEXT NOT NULL
    );
    """,
    # citations (issue 6): each citation code issued, with what it commits to, so a code printed
    # in a document can be checked against the stored transcript object years later. No foreign
    # key: a recording removed under retention rules leaves its citations to say so when checked.
    """
    CREATE TABLE citations (
        code              TEXT PRIMARY KEY,
        recording_id      TEXT NOT NULL,
        version           INTEGER NOT NULL,
        start             REAL NOT NULL,
        end               REAL NOT NULL,
        transcript_sha256 TEXT NOT NULL,
        quote_sha256      TEXT NOT NULL,
        quote             TEXT NOT NULL,
        speaker           TEXT NOT NULL DEFAULT '',
        issued_by         TEXT NOT NULL,
        issued_at         TEXT NOT NULL
    );
    CREATE INDEX citations_recording ON citations(recording_id, version);
    """,
    # web server state shared by its processes: failed sign-ins (per user name and per address),
    # the plays already audited in a sitting (a SHA-256 of the sitting, never its token), and the
    # uploads with the process that runs them. Times the throttle compares are epoch seconds.
    """
    CREATE TABLE sign_in_failures (
        scope        TEXT NOT NULL,         -- user | address
        key          TEXT NOT NULL,
        failures     INTEGER NOT NULL,
        last         REAL NOT NULL,
        locked_until REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (scope, key)
    ) WITHOUT ROWID;
    CREATE INDEX sign_in_failures_last ON sign_in_failures(scope, last);
    CREATE TABLE sitting_marks (
        sitting TEXT NOT NULL,
        kind    TEXT NOT NULL,
        item    TEXT NOT NULL,
        at      TEXT NOT NULL,
        PRIMARY KEY (sitting, kind, item)
    ) WITHOUT ROWID;
    CREATE INDEX sitting_marks_at ON sitting_marks(at);
    CREATE TABLE uploads (
        seq           INTEGER PRIMARY KEY,
        id            TEXT NOT NULL UNIQUE,
        user          TEXT NOT NULL,
        names         TEXT NOT NULL,        -- JSON list
        sizes         TEXT NOT NULL,        -- JSON list
        session_id    TEXT,
        meta          TEXT NOT NULL DEFAULT 'null',
        point         TEXT NOT NULL DEFAULT '',
        status        TEXT NOT NULL,        -- queued | running | done | failed
        outcomes      TEXT NOT NULL DEFAULT '[]',
        message       TEXT NOT NULL DEFAULT '',
        folder        TEXT NOT NULL,
        owner_pid     INTEGER NOT NULL,
        owner_started REAL NOT NULL,        -- the owner's start time: a reused pid is not the owner
        created_at    TEXT NOT NULL,
        finished_at   TEXT
    );
    CREATE INDEX uploads_status ON uploads(status);
    """,
]

GENESIS_HASH = "0" * 64
JSON_LIST_FIELDS = ("delegate_points", "complainants", "participants")
SESSION_FIELDS = ("title", "held_on", "case_code", "category", "chair", "central_point",
                  "delegate_points", "complainants", "participants", "notes", "retention",
                  "legal_hold")


def with_detail(row: sqlite3.Row) -> dict:
    """A row as a dict with its JSON `detail` column decoded (empty until something is written)."""
    return {**dict(row), "detail": json.loads(row["detail"] or "{}")}


def now() -> str:
    """The current UTC time as ISO 8601 with seconds, the one time format of the catalog."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class Session:
    id: str
    title: str
    held_on: str
    case_code: str = ""
    category: str = ""
    chair: str = ""
    central_point: str = ""
    delegate_points: list = field(default_factory=list)
    complainants: list = field(default_factory=list)
    participants: list = field(default_factory=list)
    notes: str = ""
    retention: str = "permanent"
    legal_hold: int = 0
    revision: int = 1
    created_at: str = ""
    updated_at: str = ""

    @property
    def points(self) -> list[str]:
        return [p for p in [self.central_point, *self.delegate_points] if p]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Recording:
    id: str
    session_id: str
    point: str
    original_name: str
    original_sha256: str
    access_sha256: str | None
    access_mime: str
    duration: float
    has_video: int
    has_audio: int
    probe: dict
    created_at: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("probe")
        return d


@dataclass
class Transcript:
    id: int
    recording_id: str
    version: int
    kind: str
    engine: str
    model: str
    author: str
    label: str
    based_on: int | None
    sha256: str | None
    segments: list
    seconds: float
    created_at: str

    def to_dict(self, with_segments: bool = True) -> dict:
        d = asdict(self)
        if not with_segments:
            d.pop("segments")
        return d


@dataclass
class Job:
    id: int
    source: str
    source_name: str
    source_size: int | None
    source_mtime: float | None
    session_id: str | None
    point: str
    sha256: str | None
    recording_id: str | None
    stage: str
    status: str
    progress: float
    message: str
    attempts: int
    options: dict
    created_at: str
    updated_at: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class User:
    id: int
    name: str
    role: str
    password_hash: str
    clearance: int
    disabled: int
    created_at: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("password_hash")
        return d


def _transcript_columns(with_segments: bool) -> str:
    # without segments: every other column, and an empty list for the segments (megabytes of JSON)
    return "*" if with_segments else ", ".join(
        f.name for f in fields(Transcript) if f.name != "segments") + ", '[]' AS segments"


def _build(cls, row: sqlite3.Row | None, json_fields: tuple[str, ...] = ()):
    if row is None:
        return None
    values = dict(row)
    for name in json_fields:
        values[name] = json.loads(values[name])
    return cls(**{f.name: values[f.name] for f in fields(cls)})


def audit_hash(prev_hash: str, entry: dict) -> str:
    """The chain link of one audit entry: SHA-256 over the previous hash and the entry's fields."""
    body = json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


class Catalog:
    WRITE_QUEUE_TIMEOUT = 30.0  # seconds a writer waits for this process's others, as SQLite would

    def __init__(self, path: Path):
        self.path = Path(path)
        self._pid = 0
        self._own_process()
        self._migrate()

    def _own_process(self) -> None:
        """Connections and locks of this process: after a fork (`tcd serve` workers) the parent's
        are not the child's to use."""
        if self._pid == os.getpid():
            return
        if self._pid:  # forked: keep the parent's connections referenced, so that the child
            self._inherited = self._local  # never closes them (SQLite: do not use across fork)
        self._pid = os.getpid()
        self._local = threading.local()
        # Writers queue here, woken at once, rather than in SQLite's busy handler, which sleeps
        # and retries (tail latencies of 100+ ms under the web server): the threads of this
        # process on a lock, then the processes on an flock of a file beside the catalog.
        self._write_lock = threading.Lock()
        self._writers_file = None

    # -- connections and transactions -------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        self._own_process()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._writers_file is not None:
            self._writers_file.close()
            self._writers_file = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the write lock from its start (BEGIN IMMEDIATE)."""
        db = self.db
        if db.in_transaction:  # nested: the outer transaction commits
            yield db
            return
        # after as long as SQLite would wait, go on and let SQLite's own timeout decide
        queued = self._write_lock.acquire(timeout=self.WRITE_QUEUE_TIMEOUT)
        try:
            # Held for one transaction only, and dropped by the kernel if its holder dies.
            writers = self._writers() if queued else None
            if writers is not None:
                fcntl.flock(writers, fcntl.LOCK_EX)
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                if writers is not None:
                    fcntl.flock(writers, fcntl.LOCK_UN)
        finally:
            if queued:
                self._write_lock.release()

    def _write(self, sql: str, args=()) -> sqlite3.Cursor:
        """One statement that changes the catalog, queued with the other writers (a transaction
        of its own, or part of the caller's)."""
        with self.transaction() as db:
            return db.execute(sql, args)

    def _writers(self):
        """The open file whose flock queues writers across processes (beside the catalog, which
        SQLite writes beside too: its -wal and -shm files)."""
        if self._writers_file is None:
            self._writers_file = open(self.path.with_name(self.path.name + "-writers"), "ab")
        return self._writers_file

    def _migrate(self) -> None:
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def ping(self) -> None:
        self.db.execute("SELECT 1").fetchone()

    # -- sessions -------------------------------------------------------------------------------

    def create_session(self, meta: dict) -> Session:
        """A new session with the next id of its year (TCD-YYYY-NNNN)."""
        values = _session_values(meta)
        if not values.get("title") or not values.get("held_on"):
            raise InvalidInput("A session needs a title and a date (held_on).")
        year = values["held_on"][:4]
        stamp = now()
        with self.transaction() as db:
            row = db.execute("SELECT id FROM sessions WHERE id LIKE ? ORDER BY id DESC LIMIT 1",
                             (f"TCD-{year}-%",)).fetchone()
            number = int(row["id"].rsplit("-", 1)[1]) + 1 if row else 1
            session_id = meta.get("id") or f"TCD-{year}-{number:04d}"
            cols = ["id", *values, "created_at", "updated_at"]
            db.execute(f"INSERT INTO sessions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                       [session_id, *values.values(), stamp, stamp])
        return self.get_session(session_id)

    def get_session(self, session_id: str) -> Session:
        row = self.db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise NotFound(f"There is no session {session_id}; `tcd sessions` lists them.")
        return _build(Session, row, JSON_LIST_FIELDS)

    def find_session(self, session_id: str) -> Session | None:
        row = self.db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return _build(Session, row, JSON_LIST_FIELDS)

    def list_sessions(self, limit: int | None = None) -> list[Session]:
        """Sessions, newest first (the `limit` newest with a limit)."""
        sql = "SELECT * FROM sessions ORDER BY held_on DESC, id DESC"
        rows = self.db.execute(sql + " LIMIT ?", (limit,)).fetchall() if limit else self.db.execute(sql).fetchall()
        return [_build(Session, r, JSON_LIST_FIELDS) for r in rows]

    def bridge_points(self) -> list[str]:
        """Every bridge point named by a session, central or delegate, sorted (the search
        page's filter list), read in SQL rather than by building every session."""
        rows = self.db.execute(
            "SELECT central_point FROM sessions WHERE central_point != '' UNION "
            "SELECT value FROM sessions, json_each(sessions.delegate_points) WHERE value != ''").fetchall()
        return sorted(r[0] for r in rows)

    def update_session(self, session_id: str, changes: dict, revision: int | None = None) -> Session:
        """Change metadata; with `revision`, refuse if someone changed the session since."""
        values = _session_values(changes)
        with self.transaction() as db:
            current = self.get_session(session_id)
            if revision is not None and revision != current.revision:
                raise Conflict(f"Session {session_id} was changed by someone else; reload and try again.")
            if values:
                sets = ", ".join(f"{k} = ?" for k in values)
                db.execute(f"UPDATE sessions SET {sets}, revision = revision + 1, updated_at = ? WHERE id = ?",
                           [*values.values(), now(), session_id])
        return self.get_session(session_id)

    def touch_session(self, session_id: str) -> None:
        """Bump the revision, so caches (the search index) know the session changed."""
        self._write("UPDATE sessions SET revision = revision + 1, updated_at = ? WHERE id = ?",
                    (now(), session_id))

    def delete_session_if_empty(self, session_id: str) -> bool:
        with self.transaction() as db:
            busy = db.execute(
                "SELECT (SELECT COUNT(*) FROM recordings WHERE session_id = ?)"
                " + (SELECT COUNT(*) FROM jobs WHERE session_id = ? AND status IN ('pending','running','waiting','failed'))",
                (session_id, session_id)).fetchone()[0]
            if busy:
                return False
            db.execute("UPDATE jobs SET session_id = NULL WHERE session_id = ?", (session_id,))
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        return True

    # -- objects --------------------------------------------------------------------------------

    def add_object(self, sha256: str, size: int, kind: str, media_type: str = "") -> None:
        self._write("INSERT OR IGNORE INTO objects (sha256, size, kind, media_type, created_at)"
                    " VALUES (?, ?, ?, ?, ?)", (sha256, size, kind, media_type, now()))

    def get_object(self, sha256: str) -> dict:
        row = self.db.execute("SELECT * FROM objects WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None:
            raise NotFound(f"The catalog has no object {sha256[:12]}….")
        return dict(row)

    def list_objects(self, session_id: str | None = None, verified_before: str | None = None,
                     sealed: bool = True) -> list[dict]:
        """Objects, optionally only those of one session (its sealed copies too, unless `sealed`
        is False: a backup names those with the seals) or not verified since a time."""
        sql, args = "SELECT o.* FROM objects o", []
        where = []
        if session_id:
            where.append("o.sha256 IN (SELECT original_sha256 FROM recordings WHERE session_id = ?1"
                         " UNION SELECT access_sha256 FROM recordings WHERE session_id = ?1"
                         " UNION SELECT t.sha256 FROM transcripts t JOIN recordings r"
                         " ON t.recording_id = r.id WHERE r.session_id = ?1"
                         + (" UNION SELECT c.sha256 FROM sealed_copies c JOIN recordings r"
                            " ON c.recording_id = r.id WHERE r.session_id = ?1" if sealed else "") + ")")
            args.append(session_id)
        if verified_before:
            where.append(f"(o.verified_at IS NULL OR o.verified_at < ?{len(args) + 1})")
            args.append(verified_before)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [dict(r) for r in self.db.execute(sql + " ORDER BY o.created_at, o.sha256", args)]

    def mark_verified(self, sha256: str, ok: bool) -> None:
        self._write("UPDATE objects SET verified_at = ?, verify_ok = ? WHERE sha256 = ?",
                    (now(), int(ok), sha256))

    # -- recordings -----------------------------------------------------------------------------

    def add_recording(self, *, session_id: str, original_sha256: str, original_name: str,
                      point: str = "", duration: float = 0, has_video: bool = False,
                      has_audio: bool = False, probe: dict | None = None) -> Recording:
        """The recording of this original; the same original twice is one recording."""
        existing = self.recording_by_original(original_sha256)
        if existing:
            return existing
        rec_id = original_sha256[:16]
        self.db.execute(
            "INSERT INTO recordings (id, session_id, point, original_name, original_sha256, duration,"
            " has_video, has_audio, probe, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rec_id, session_id, point, original_name, original_sha256, duration, int(has_video),
             int(has_audio), json.dumps(probe or {}), now()))
        self.touch_session(session_id)
        return self.get_recording(rec_id)

    def get_recording(self, recording_id: str) -> Recording:
        row = self.db.execute("SELECT * FROM recordings WHERE id = ?", (recording_id,)).fetchone()
        if row is None:
            raise NotFound(f"There is no recording {recording_id}.")
        return _build(Recording, row, ("probe",))

    def recording_by_original(self, sha256: str) -> Recording | None:
        row = self.db.execute("SELECT * FROM recordings WHERE original_sha256 = ?", (sha256,)).fetchone()
        return _build(Recording, row, ("probe",))

    def recordings_for_session(self, session_id: str) -> list[Recording]:
        rows = self.db.execute("SELECT * FROM recordings WHERE session_id = ? ORDER BY created_at, id",
                               (session_id,)).fetchall()
        return [_build(Recording, r, ("probe",)) for r in rows]

    def set_access_copy(self, recording_id: str, sha256: str, mime: str) -> None:
        self._write("UPDATE recordings SET access_sha256 = ?, access_mime = ? WHERE id = ?",
                    (sha256, mime, recording_id))

    # -- transcripts ----------------------------------------------------------------------------

    def add_transcript(self, *, recording_id: str, segments: list, kind: str, author: str,
                       engine: str = "", model: str = "", label: str = "", sha256: str | None = None,
                       seconds: float = 0, based_on: int | None = None) -> Transcript:
        """Store a new version. With `based_on` (the version an editor started from), refuse if
        the current version is no longer that one: two people correcting the same version get a
        Conflict for the second, not a lost edit. A machine run saved meanwhile does not count,
        since it does not become current over a person's version."""
        if kind not in ("machine", "human"):
            raise InvalidInput(f"Unknown transcript kind '{kind}'.")
        with self.transaction() as db:
            rec = self.get_recording(recording_id)
            latest = db.execute("SELECT MAX(version) FROM transcripts WHERE recording_id = ?",
                                (recording_id,)).fetchone()[0] or 0
            current = self.current_transcript(recording_id, with_segments=False)
            if based_on is not None and based_on != (current.version if current else 0):
                raise Conflict(f"Version {current.version if current else 0} of this transcript was "
                               f"saved after version {based_on} that you edited; reload it and apply "
                               "your change again.")
            db.execute(
                "INSERT INTO transcripts (recording_id, version, kind, engine, model, author, label,"
                " based_on, sha256, segments, seconds, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (recording_id, latest + 1, kind, engine, model, author, label, based_on, sha256,
                 json.dumps(segments, ensure_ascii=False), seconds, now()))
            self.touch_session(rec.session_id)
        return self.get_transcript(recording_id, latest + 1)

    def get_transcript(self, recording_id: str, version: int) -> Transcript:
        row = self.db.execute("SELECT * FROM transcripts WHERE recording_id = ? AND version = ?",
                              (recording_id, version)).fetchone()
        if row is None:
            raise NotFound(f"Recording {recording_id} has no transcript version {version}.")
        return _build(Transcript, row, ("segments",))

    def transcripts_for_recording(self, recording_id: str, with_segments: bool = True) -> list[Transcript]:
        """Every version, oldest first; without `with_segments` their segments are left empty, so
        listing versions does not decode every transcript (megabytes of JSON each)."""
        rows = self.db.execute(f"SELECT {_transcript_columns(with_segments)} FROM transcripts"
                               " WHERE recording_id = ? ORDER BY version", (recording_id,)).fetchall()
        return [_build(Transcript, r, ("segments",)) for r in rows]

    def current_transcript(self, recording_id: str, with_segments: bool = True) -> Transcript | None:
        """The version people read: the newest made by a person if any, else the newest machine one.
        A machine run after a human correction does not push the correction aside."""
        row = self.db.execute(
            f"SELECT {_transcript_columns(with_segments)} FROM transcripts WHERE recording_id = ?"
            " ORDER BY kind = 'human' DESC, version DESC LIMIT 1", (recording_id,)).fetchone()
        return _build(Transcript, row, ("segments",))

    # -- citations (issue 6) --------------------------------------------------------------------

    def add_citation(self, row: dict) -> bool:
        """Keep an issued citation; False if that code was issued before (the same passage of
        the same version gives the same code, and the first issue is the one kept)."""
        cols = ("code", "recording_id", "version", "start", "end", "transcript_sha256",
                "quote_sha256", "quote", "speaker", "issued_by", "issued_at")
        cur = self._write(f"INSERT OR IGNORE INTO citations ({', '.join(cols)})"
                          f" VALUES ({', '.join('?' * len(cols))})", [row[c] for c in cols])
        return cur.rowcount == 1

    def get_citation(self, code: str) -> dict | None:
        row = self.db.execute("SELECT * FROM citations WHERE code = ?", (code,)).fetchone()
        return dict(row) if row else None

    def citations_for_recording(self, recording_id: str) -> list[dict]:
        rows = self.db.execute("SELECT * FROM citations WHERE recording_id = ? ORDER BY issued_at, code",
                               (recording_id,))
        return [dict(r) for r in rows]

    # -- speech recognition (transcribe stage) --------------------------------------------------

    def recordings_awaiting_transcript(self) -> list[Recording]:
        """Recordings with sound and no transcript yet (for `tcd transcribe --pending`)."""
        rows = self.db.execute(
            "SELECT * FROM recordings r WHERE r.has_audio = 1 AND NOT EXISTS"
            " (SELECT 1 FROM transcripts t WHERE t.recording_id = r.id)"
            " ORDER BY r.created_at, r.id").fetchall()
        return [_build(Recording, r, ("probe",)) for r in rows]

    def jobs_for_recording(self, recording_id: str) -> list[Job]:
        rows = self.db.execute("SELECT * FROM jobs WHERE recording_id = ? ORDER BY id DESC",
                               (recording_id,)).fetchall()
        return [_build(Job, r, ("options",)) for r in rows]

    # -- jobs -----------------------------------------------------------------------------------

    def create_job(self, *, source: str, source_name: str, session_id: str | None, point: str = "",
                   source_size: int | None = None, source_mtime: float | None = None,
                   options: dict | None = None) -> Job:
        stamp = now()
        cur = self.db.execute(
            "INSERT INTO jobs (source, source_name, source_size, source_mtime, session_id, point,"
            " options, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (source, source_name, source_size, source_mtime, session_id, point,
             json.dumps(options or {}, ensure_ascii=False), stamp, stamp))
        return self.get_job(cur.lastrowid)

    def get_job(self, job_id: int) -> Job:
        row = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"There is no job {job_id}.")
        return _build(Job, row, ("options",))

    def list_jobs(self, statuses: tuple[str, ...] | None = None, limit: int = 200) -> list[Job]:
        sql, args = "SELECT * FROM jobs", []
        if statuses:
            sql += f" WHERE status IN ({', '.join('?' * len(statuses))})"
            args = list(statuses)
        rows = self.db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()
        return [_build(Job, r, ("options",)) for r in rows]

    def unfinished_jobs(self) -> list[Job]:
        rows = self.db.execute("SELECT * FROM jobs WHERE status IN ('pending', 'running', 'waiting')"
                               " ORDER BY id").fetchall()
        return [_build(Job, r, ("options",)) for r in rows]

    def job_for_source(self, source: str, size: int, mtime: float) -> Job | None:
        """The job already made for this file as it is now (same path, size and time)."""
        row = self.db.execute("SELECT * FROM jobs WHERE source = ? AND source_size = ? AND source_mtime = ?"
                              " ORDER BY id DESC LIMIT 1", (source, size, mtime)).fetchone()
        return _build(Job, row, ("options",))

    def update_job(self, job_id: int, **changes: Any) -> None:
        if "options" in changes:
            changes["options"] = json.dumps(changes["options"], ensure_ascii=False)
        sets = ", ".join(f"{k} = ?" for k in changes)
        self._write(f"UPDATE jobs SET {sets}, updated_at = ? WHERE id = ?",
                    [*changes.values(), now(), job_id])

    def stage_started(self, job_id: int, stage: str) -> None:
        self._write("INSERT OR REPLACE INTO job_stages (job_id, stage, status, started_at)"
                    " VALUES (?, ?, 'running', ?)", (job_id, stage, now()))

    def stage_finished(self, job_id: int, stage: str, status: str, seconds: float, message: str = "") -> None:
        self._write("UPDATE job_stages SET status = ?, finished_at = ?, seconds = ?, message = ?"
                    " WHERE job_id = ? AND stage = ?", (status, now(), seconds, message, job_id, stage))

    def stages_done(self, job_id: int) -> set[str]:
        rows = self.db.execute("SELECT stage FROM job_stages WHERE job_id = ? AND status IN ('done', 'skipped')",
                               (job_id,)).fetchall()
        return {r["stage"] for r in rows}

    def job_stages(self, job_id: int) -> list[dict]:
        return [dict(r) for r in self.db.execute(
            "SELECT * FROM job_stages WHERE job_id = ? ORDER BY started_at", (job_id,))]

    def reset_stage(self, job_id: int, stage: str) -> None:
        self._write("DELETE FROM job_stages WHERE job_id = ? AND stage = ?", (job_id, stage))

    # -- users ----------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password_hash: str, clearance: bool = False) -> User:
        try:
            self._write("INSERT INTO users (name, role, password_hash, clearance, created_at)"
                        " VALUES (?, ?, ?, ?, ?)", (name, role, password_hash, int(clearance), now()))
        except sqlite3.IntegrityError:
            raise InvalidInput(f"A user named '{name}' exists already.") from None
        return self.get_user(name)

    def get_user(self, name: str) -> User:
        row = self.db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"There is no user '{name}'.")
        return _build(User, row)

    def get_user_by_id(self, user_id: int) -> User | None:
        return _build(User, self.db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())

    def list_users(self) -> list[User]:
        return [_build(User, r) for r in self.db.execute("SELECT * FROM users ORDER BY name")]

    def update_user(self, name: str, **changes: Any) -> User:
        self.get_user(name)
        sets = ", ".join(f"{k} = ?" for k in changes)
        self._write(f"UPDATE users SET {sets} WHERE name = ?", [*changes.values(), name])
        return self.get_user(name)

    # -- audit log ------------------------------------------------------------------------------

    def append_audit(self, actor: str, action: str, session_id: str | None = None,
                     target: str = "", detail: dict | None = None) -> dict:
        """Append one entry, chained to the previous one by hash, under the write lock."""
        with self.transaction() as db:
            row = db.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
            prev = row["hash"] if row else GENESIS_HASH
            entry = {"at": now(), "actor": actor, "action": action, "session_id": session_id,
                     "target": target, "detail": json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)}
            digest = audit_hash(prev, entry)
            cur = db.execute("INSERT INTO audit (at, actor, action, session_id, target, detail, prev_hash, hash)"
                             " VALUES (:at, :actor, :action, :session_id, :target, :detail, :prev, :hash)",
                             {**entry, "prev": prev, "hash": digest})
        return {"id": cur.lastrowid, **entry, "prev_hash": prev, "hash": digest}

    def audit_entries(self, session_id: str | None = None, actor: str | None = None,
                      limit: int | None = None, descending: bool = False) -> list[dict]:
        sql, where, args = "SELECT * FROM audit", [], []
        if session_id:
            where.append("session_id = ?")
            args.append(session_id)
        if actor:
            where.append("actor = ?")
            args.append(actor)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id" + (" DESC" if descending else "")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [dict(r) for r in self.db.execute(sql, args)]

    # -- fixity runs and backups ----------------------------------------------------------------

    def start_fixity_run(self, scope: str) -> int:
        return self._write("INSERT INTO fixity_runs (started_at, scope) VALUES (?, ?)",
                           (now(), scope)).lastrowid

    def finish_fixity_run(self, run_id: int, checked: int, failed: int, detail: dict) -> None:
        self._write("UPDATE fixity_runs SET finished_at = ?, checked = ?, failed = ?, detail = ? WHERE id = ?",
                    (now(), checked, failed, json.dumps(detail, ensure_ascii=False), run_id))

    def last_fixity_run(self) -> dict | None:
        row = self.db.execute("SELECT * FROM fixity_runs WHERE finished_at IS NOT NULL"
                              " ORDER BY id DESC LIMIT 1").fetchone()
        return with_detail(row) if row else None

    # -- backup, fixity and restore (issue 7) ---------------------------------------------------

    def list_fixity_runs(self, limit: int = 20) -> list[dict]:
        rows = self.db.execute("SELECT * FROM fixity_runs ORDER BY id DESC LIMIT ?", (limit,))
        return [with_detail(r) for r in rows]

    def object_owners(self) -> dict[str, list[dict]]:
        """What each object is, for people: {sha256: [{session_id, recording_id, role, name}]},
        read in one query (a fixity run names the owners of every object it checks)."""
        rows = self.db.execute(
            "SELECT original_sha256 AS sha256, session_id, id AS recording_id, 'original' AS role,"
            " original_name AS name FROM recordings"
            " UNION ALL SELECT access_sha256, session_id, id, 'access', original_name FROM recordings"
            " WHERE access_sha256 IS NOT NULL"
            " UNION ALL SELECT t.sha256, r.session_id, r.id, 'transcript v' || t.version, r.original_name"
            " FROM transcripts t JOIN recordings r ON t.recording_id = r.id WHERE t.sha256 IS NOT NULL"
            " UNION ALL SELECT c.sha256, r.session_id, r.id, 'sealed copy', r.original_name"
            " FROM sealed_copies c JOIN recordings r ON c.recording_id = r.id")
        owners: dict[str, list[dict]] = {}
        for row in rows:
            owner = dict(row)
            owners.setdefault(owner.pop("sha256"), []).append(owner)
        return owners

    def damaged_objects(self) -> list[dict]:
        """Objects whose last fixity check failed (they differed or were missing)."""
        return [dict(r) for r in self.db.execute("SELECT * FROM objects WHERE verify_ok = 0 ORDER BY sha256")]

    def start_backup(self, kind: str, dest: str, label: str = "") -> int:
        return self._write("INSERT INTO backups (kind, dest, label, started_at, status)"
                           " VALUES (?, ?, ?, ?, 'running')", (kind, dest, label, now())).lastrowid

    def finish_backup(self, backup_id: int, status: str, detail: dict) -> None:
        self._write("UPDATE backups SET finished_at = ?, status = ?, detail = ? WHERE id = ?",
                    (now(), status, json.dumps(detail, ensure_ascii=False), backup_id))

    def list_backups(self, limit: int = 50) -> list[dict]:
        """Backups, newest first, with `detail` decoded (sessions, files, bytes, message)."""
        rows = self.db.execute("SELECT * FROM backups ORDER BY id DESC LIMIT ?", (limit,))
        return [with_detail(r) for r in rows]

    def session_history(self, session_id: str) -> list[dict]:
        """A session's audit entries: those restored from a backup, then the live chain's."""
        restored = self.db.execute(
            "SELECT original_id AS id, at, actor, action, session_id, target, detail, prev_hash, hash"
            " FROM audit_restored WHERE session_id = ? ORDER BY at, original_id", (session_id,))
        return [dict(r) for r in restored] + self.audit_entries(session_id=session_id)

    def restore_session(self, doc: dict) -> bool:
        """Insert a session exactly as a backup describes it; False if the id exists already."""
        cols = ["id", *SESSION_FIELDS, "revision", "created_at", "updated_at"]
        values = [json.dumps(doc[c], ensure_ascii=False) if c in JSON_LIST_FIELDS else doc[c] for c in cols]
        cur = self._write(f"INSERT OR IGNORE INTO sessions ({', '.join(cols)})"
                          f" VALUES ({', '.join('?' * len(cols))})", values)
        return cur.rowcount == 1

    def restore_object(self, doc: dict) -> bool:
        cur = self._write("INSERT OR IGNORE INTO objects (sha256, size, kind, media_type, created_at)"
                          " VALUES (?, ?, ?, ?, ?)",
                          (doc["sha256"], doc["size"], doc["kind"], doc.get("media_type", ""),
                               doc.get("created_at") or now()))
        return cur.rowcount == 1

    def restore_recording(self, doc: dict) -> bool:
        cols = ["id", "session_id", "point", "original_name", "original_sha256", "access_sha256",
                "access_mime", "duration", "has_video", "has_audio", "probe", "created_at"]
        values = [json.dumps(doc.get(c) or {}, ensure_ascii=False) if c == "probe" else doc.get(c)
                  for c in cols]
        cur = self._write(f"INSERT OR IGNORE INTO recordings ({', '.join(cols)})"
                          f" VALUES ({', '.join('?' * len(cols))})", values)
        return cur.rowcount == 1

    def restore_transcript(self, doc: dict, segments: list) -> bool:
        cur = self.db.execute(
            "INSERT OR IGNORE INTO transcripts (recording_id, version, kind, engine, model, author, label,"
            " based_on, sha256, segments, seconds, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc["recording_id"], doc["version"], doc["kind"], doc.get("engine", ""), doc.get("model", ""),
             doc["author"], doc.get("label", ""), doc.get("based_on"), doc.get("sha256"),
             json.dumps(segments, ensure_ascii=False), doc.get("seconds", 0), doc["created_at"]))
        return cur.rowcount == 1

    def restore_history(self, entries: list[dict], source: str) -> int:
        """Keep a restored session's audit entries verbatim; returns how many were new."""
        added = 0
        for e in entries:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO audit_restored (hash, original_id, at, actor, action, session_id,"
                " target, detail, prev_hash, restored_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (e["hash"], e["id"], e["at"], e["actor"], e["action"], e.get("session_id"),
                 e.get("target", ""), e.get("detail", "{}"), e["prev_hash"], now(), source))
            added += cur.rowcount
        return added

    # -- notes, seals and retention (issue 9) ---------------------------------------------------

    _NOTE_COLS = ("id, session_id, recording_id, start_sec AS start, end_sec AS end, text, author,"
                  " version, created_at, updated_at")
    _SEAL_COLS = ("id, session_id, recording_id, start_sec AS start, end_sec AS end, reason, sealed_by,"
                  " sealed_at, removed_by, removed_at")

    def add_note(self, *, recording_id: str, start: float, end: float | None, text: str,
                 author: str) -> dict:
        """A new note and its first version, in one transaction."""
        stamp = now()
        with self.transaction() as db:
            rec = self.get_recording(recording_id)
            note_id = db.execute(
                "INSERT INTO notes (session_id, recording_id, start_sec, end_sec, text, author, version,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (rec.session_id, recording_id, start, end, text, author, stamp, stamp)).lastrowid
            db.execute("INSERT INTO note_versions (note_id, version, start_sec, end_sec, text, editor, at)"
                       " VALUES (?, 1, ?, ?, ?, ?, ?)", (note_id, start, end, text, author, stamp))
            self.touch_session(rec.session_id)
        return self.get_note(note_id)

    def get_note(self, note_id: int) -> dict:
        row = self.db.execute(f"SELECT {self._NOTE_COLS} FROM notes WHERE id = ?", (note_id,)).fetchone()
        if row is None:
            raise NotFound(f"There is no note {note_id}; `tcd note list SESSION` lists them.")
        return dict(row)

    def list_notes(self, session_id: str | None = None, recording_id: str | None = None) -> list[dict]:
        sql, args = f"SELECT {self._NOTE_COLS} FROM notes", []
        if recording_id:
            sql, args = sql + " WHERE recording_id = ?", [recording_id]
        elif session_id:
            sql, args = sql + " WHERE session_id = ?", [session_id]
        return [dict(r) for r in self.db.execute(sql + " ORDER BY recording_id, start_sec, id", args)]

    def update_note(self, note_id: int, *, start: float, end: float | None, text: str, editor: str,
                    version: int | None = None) -> dict:
        """Change a note; with `version`, refuse if someone saved a newer version since."""
        stamp = now()
        with self.transaction() as db:
            note = self.get_note(note_id)
            if version is not None and version != note["version"]:
                raise Conflict(f"Note {note_id} was changed by someone else (version {note['version']}); "
                               "reload it and apply your change again.")
            new = note["version"] + 1
            db.execute("UPDATE notes SET start_sec = ?, end_sec = ?, text = ?, version = ?, updated_at = ?"
                       " WHERE id = ?", (start, end, text, new, stamp, note_id))
            db.execute("INSERT INTO note_versions (note_id, version, start_sec, end_sec, text, editor, at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)", (note_id, new, start, end, text, editor, stamp))
            self.touch_session(note["session_id"])
        return self.get_note(note_id)

    def note_versions(self, note_id: int) -> list[dict]:
        rows = self.db.execute("SELECT note_id, version, start_sec AS start, end_sec AS end, text, editor, at"
                               " FROM note_versions WHERE note_id = ? ORDER BY version", (note_id,))
        return [dict(r) for r in rows]

    def add_seal(self, *, recording_id: str, start: float, end: float, reason: str,
                 sealed_by: str) -> dict:
        """A seal over [start, end); refused (under the write lock, so two people cannot race past
        the check) when it overlaps a seal in force."""
        with self.transaction() as db:
            rec = self.get_recording(recording_id)
            other = db.execute(f"SELECT {self._SEAL_COLS} FROM seals WHERE recording_id = ?"
                               " AND removed_at IS NULL AND start_sec < ? AND end_sec > ?"
                               " ORDER BY start_sec LIMIT 1", (recording_id, end, start)).fetchone()
            if other is not None:
                raise InvalidInput(f"The span {start:g}–{end:g} s overlaps seal {other['id']} "
                                   f"({other['start']:g}–{other['end']:g} s); choose a span outside it "
                                   "or remove that seal first.", reason="seal.overlap",
                                   values={"start": start, "end": end, "seal": other["id"],
                                           "seal_start": other["start"], "seal_end": other["end"]})
            seal_id = db.execute(
                "INSERT INTO seals (session_id, recording_id, start_sec, end_sec, reason, sealed_by, sealed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rec.session_id, recording_id, start, end, reason, sealed_by, now())).lastrowid
            self.touch_session(rec.session_id)
        return self.get_seal(seal_id)

    def get_seal(self, seal_id: int) -> dict:
        row = self.db.execute(f"SELECT {self._SEAL_COLS} FROM seals WHERE id = ?", (seal_id,)).fetchone()
        if row is None:
            raise NotFound(f"There is no seal {seal_id}; `tcd seal list SESSION` lists them.")
        return dict(row)

    def list_seals(self, session_id: str | None = None, recording_id: str | None = None,
                   with_removed: bool = False) -> list[dict]:
        sql, where, args = f"SELECT {self._SEAL_COLS} FROM seals", [], []
        if recording_id:
            where.append("recording_id = ?")
            args.append(recording_id)
        elif session_id:
            where.append("session_id = ?")
            args.append(session_id)
        if not with_removed:
            where.append("removed_at IS NULL")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [dict(r) for r in self.db.execute(sql + " ORDER BY recording_id, start_sec, id", args)]

    def remove_seal(self, seal_id: int, removed_by: str) -> dict:
        with self.transaction() as db:
            seal = self.get_seal(seal_id)
            if seal["removed_at"]:
                raise InvalidInput(f"Seal {seal_id} was removed already ({seal['removed_at']}).")
            db.execute("UPDATE seals SET removed_by = ?, removed_at = ? WHERE id = ?",
                       (removed_by, now(), seal_id))
            self.touch_session(seal["session_id"])
        return self.get_seal(seal_id)

    def sealed_copy(self, recording_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM sealed_copies WHERE recording_id = ?", (recording_id,)).fetchone()
        return {**dict(row), "spans": json.loads(row["spans"])} if row else None

    def set_sealed_copy(self, recording_id: str, spans: list, sha256: str | None, mime: str = "") -> str | None:
        """Record the derived copy made for `spans` (or none, with sha256=None); returns the SHA-256
        of the copy it replaces, for the caller to delete when no one else uses it."""
        with self.transaction() as db:
            old = self.sealed_copy(recording_id)
            db.execute("DELETE FROM sealed_copies WHERE recording_id = ?", (recording_id,))
            if sha256:
                db.execute("INSERT INTO sealed_copies (recording_id, spans, sha256, mime, created_at)"
                           " VALUES (?, ?, ?, ?, ?)", (recording_id, json.dumps(spans), sha256, mime, now()))
        return old["sha256"] if old and old["sha256"] != sha256 else None

    def _references(self) -> dict[str, list[tuple[str, str, str]]]:
        """Every foreign key as parent table -> [(child table, child column, parent column)], read
        from the schema itself, so tables added by later migrations are covered."""
        refs: dict[str, list[tuple[str, str, str]]] = {}
        tables = [r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for fk in self.db.execute(f"PRAGMA foreign_key_list('{table}')"):
                parent_col = fk["to"]
                if parent_col is None:
                    parent_col = next(c["name"] for c in self.db.execute(f"PRAGMA table_info('{fk['table']}')")
                                      if c["pk"])
                refs.setdefault(fk["table"], []).append((table, fk["from"], parent_col))
        return refs

    def object_in_use(self, sha256: str, refs: dict | None = None) -> bool:
        """Whether any row still names the object (a recording, a transcript, a sealed copy, …)."""
        for table, column, _ in (refs or self._references()).get("objects", []):
            if self.db.execute(f"SELECT 1 FROM {table} WHERE {column} = ? LIMIT 1", (sha256,)).fetchone():
                return True
        return False

    def forget_object(self, sha256: str) -> bool:
        """Remove an object's row if nothing names it any more; True if it was removed."""
        with self.transaction() as db:
            if self.object_in_use(sha256):
                return False
            return db.execute("DELETE FROM objects WHERE sha256 = ?", (sha256,)).rowcount == 1

    def session_objects(self, session_id: str) -> list[str]:
        """Every object of a session: originals, access copies, transcripts and sealed copies."""
        return sorted(o["sha256"] for o in self.list_objects(session_id=session_id))

    def purge_session(self, session_id: str) -> list[str]:
        """Delete a session and every row that depends on it (found through the schema's foreign
        keys), and the rows of its objects that nothing else names; returns those objects."""
        with self.transaction() as db:
            self.get_session(session_id)
            objects = self.session_objects(session_id)
            refs = self._references()
            rec_ids = [r[0] for r in db.execute("SELECT id FROM recordings WHERE session_id = ?", (session_id,))]
            # a duplicate's job may belong to another session but still names the recording
            self._delete_rows(refs, "jobs", "recording_id", rec_ids)
            self._delete_rows(refs, "sessions", "id", [session_id])
            db.execute("DELETE FROM audit_restored WHERE session_id = ?", (session_id,))
            gone = []
            for sha in objects:
                if not self.object_in_use(sha, refs):
                    db.execute("DELETE FROM objects WHERE sha256 = ?", (sha,))
                    gone.append(sha)
        return gone

    def _delete_rows(self, refs: dict, table: str, column: str, values: list) -> None:
        values = sorted({v for v in values if v is not None})
        if not values:
            return
        marks = ", ".join("?" * len(values))
        for child, child_col, parent_col in refs.get(table, []):
            keys = values if parent_col == column else [
                r[0] for r in self.db.execute(f"SELECT {parent_col} FROM {table} WHERE {column} IN ({marks})",
                                              values)]
            self._delete_rows(refs, child, child_col, keys)
        self._write(f"DELETE FROM {table} WHERE {column} IN ({marks})", values)

    def add_deletion(self, session_id: str, proposed_by: str, reason: str) -> dict:
        """A proposal to delete a session; refused if one is open already."""
        with self.transaction() as db:
            open_ = self.open_deletion(session_id)
            if open_:
                raise InvalidInput(f"Deletion {open_['id']} of {session_id} was proposed already by "
                                   f"{open_['proposed_by']}; another user approves it with "
                                   f"`tcd retention approve {open_['id']}`.")
            deletion_id = db.execute("INSERT INTO deletions (session_id, reason, proposed_by, proposed_at)"
                                     " VALUES (?, ?, ?, ?)", (session_id, reason, proposed_by, now())).lastrowid
        return self.get_deletion(deletion_id)

    def get_deletion(self, deletion_id: int) -> dict:
        row = self.db.execute("SELECT * FROM deletions WHERE id = ?", (deletion_id,)).fetchone()
        if row is None:
            raise NotFound(f"There is no deletion {deletion_id}; `tcd retention proposals` lists them.")
        return with_detail(row)

    def open_deletion(self, session_id: str) -> dict | None:
        row = self.db.execute("SELECT id FROM deletions WHERE session_id = ? AND status IN ('proposed', 'approved')"
                              " ORDER BY id DESC LIMIT 1", (session_id,)).fetchone()
        return self.get_deletion(row["id"]) if row else None

    def list_deletions(self, statuses: tuple[str, ...] | None = None) -> list[dict]:
        sql, args = "SELECT id FROM deletions", []
        if statuses:
            sql += f" WHERE status IN ({', '.join('?' * len(statuses))})"
            args = list(statuses)
        return [self.get_deletion(r["id"]) for r in self.db.execute(sql + " ORDER BY id DESC", args)]

    def update_deletion(self, deletion_id: int, **changes: Any) -> dict:
        if "detail" in changes:
            changes["detail"] = json.dumps(changes["detail"], ensure_ascii=False)
        sets = ", ".join(f"{k} = ?" for k in changes)
        self._write(f"UPDATE deletions SET {sets} WHERE id = ?", [*changes.values(), deletion_id])
        return self.get_deletion(deletion_id)

    def add_backup_removal(self, deletion_id: int, session_id: str, objects: list[str]) -> None:
        self._write("INSERT INTO backup_removals (deletion_id, session_id, objects, removed_at)"
                    " VALUES (?, ?, ?, ?)", (deletion_id, session_id, json.dumps(objects), now()))

    def backup_removals(self) -> list[dict]:
        """Sessions deleted under retention rules, which every backup must drop too."""
        rows = self.db.execute("SELECT * FROM backup_removals ORDER BY id")
        return [{**dict(r), "objects": json.loads(r["objects"])} for r in rows]

    def restore_note(self, doc: dict) -> bool:
        """Put back a note from a backup with its versions; False if it is there already (the same
        recording, author, creation time, and first version's time and text)."""
        first = (doc.get("versions") or [doc])[0]
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM notes n JOIN note_versions v ON v.note_id = n.id AND v.version = 1"
                          " WHERE n.recording_id = ? AND n.author = ? AND n.created_at = ? AND v.start_sec = ?"
                          " AND v.text = ?", (doc["recording_id"], doc["author"], doc["created_at"],
                                              first["start"], first["text"])).fetchone():
                return False
            note_id = db.execute(
                "INSERT INTO notes (session_id, recording_id, start_sec, end_sec, text, author, version,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc["session_id"], doc["recording_id"], doc["start"], doc["end"], doc["text"], doc["author"],
                 doc["version"], doc["created_at"], doc["updated_at"])).lastrowid
            for v in doc.get("versions") or []:
                db.execute("INSERT INTO note_versions (note_id, version, start_sec, end_sec, text, editor, at)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (note_id, v["version"], v["start"], v["end"], v["text"], v["editor"], v["at"]))
        return True

    def restore_seal(self, doc: dict) -> bool:
        """Put back a seal from a backup (removed ones too, for the history); False if it is there."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM seals WHERE recording_id = ? AND start_sec = ? AND end_sec = ?"
                          " AND sealed_at = ?", (doc["recording_id"], doc["start"], doc["end"],
                                                 doc["sealed_at"])).fetchone():
                return False
            db.execute("INSERT INTO seals (session_id, recording_id, start_sec, end_sec, reason, sealed_by,"
                       " sealed_at, removed_by, removed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (doc["session_id"], doc["recording_id"], doc["start"], doc["end"], doc["reason"],
                        doc["sealed_by"], doc["sealed_at"], doc.get("removed_by"), doc.get("removed_at")))
        return True

    # -- the preservation page ------------------------------------------------------------------

    def last_finished_fixity_run(self, scope: str) -> dict | None:
        """The newest finished fixity run of exactly `scope` (e.g. a whole run), however many
        runs of other scopes came after it."""
        row = self.db.execute("SELECT * FROM fixity_runs WHERE scope = ? AND finished_at IS NOT NULL"
                              " ORDER BY id DESC LIMIT 1", (scope,)).fetchone()
        return with_detail(row) if row else None

    # -- web server state shared by its processes -------------------------------------------------

    def sign_in_failure(self, scope: str, key: str) -> dict | None:
        """The failed sign-ins counted for `key` in `scope`: failures, last and locked_until
        (epoch seconds), or None."""
        row = self.db.execute("SELECT failures, last, locked_until FROM sign_in_failures"
                              " WHERE scope = ? AND key = ?", (scope, key)).fetchone()
        return dict(row) if row else None

    def set_sign_in_failure(self, scope: str, key: str, failures: int, last: float,
                            locked_until: float) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO sign_in_failures (scope, key, failures, last, locked_until)"
                       " VALUES (?, ?, ?, ?, ?)", (scope, key, failures, last, locked_until))

    def forget_sign_in_failure(self, scope: str, key: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM sign_in_failures WHERE scope = ? AND key = ?", (scope, key))

    def prune_sign_in_failures(self, scope: str, quiet_since: float, now: float, keep: int) -> int:
        """Forget the keys of `scope` with no failure since `quiet_since` and no longer locked;
        if more than `keep` remain, forget the least recent too. Returns how many went."""
        with self.transaction() as db:
            gone = db.execute("DELETE FROM sign_in_failures WHERE scope = ? AND last < ? AND locked_until <= ?",
                              (scope, quiet_since, now)).rowcount
            count = db.execute("SELECT count(*) FROM sign_in_failures WHERE scope = ?", (scope,)).fetchone()[0]
            if count > keep:
                gone += db.execute("DELETE FROM sign_in_failures WHERE scope = ? AND key IN (SELECT key"
                                   " FROM sign_in_failures WHERE scope = ? ORDER BY last LIMIT ?)",
                                   (scope, scope, count - keep)).rowcount
        return gone

    def mark_sitting(self, sitting: str, kind: str, item: str, forget_before: str | None = None) -> bool:
        """Note that `kind` happened to `item` in `sitting` (a digest); True if it is the first
        time. Marks made before `forget_before` (a catalog time) are dropped first."""
        with self.transaction() as db:
            if forget_before:
                db.execute("DELETE FROM sitting_marks WHERE at < ?", (forget_before,))
            return db.execute("INSERT OR IGNORE INTO sitting_marks (sitting, kind, item, at) VALUES (?, ?, ?, ?)",
                              (sitting, kind, item, now())).rowcount == 1

    UPLOAD_JSON_FIELDS = ("names", "sizes", "meta", "outcomes")
    UPLOAD_CHANGES = ("status", "outcomes", "message", "finished_at")

    def add_upload(self, upload: dict, owner_pid: int, owner_started: float, keep: int) -> None:
        """Record an upload run by the process `owner_pid`; of the finished uploads, those older
        than the newest `keep` are forgotten (the audit log keeps who uploaded what)."""
        values = {k: json.dumps(upload.get(k), ensure_ascii=False) if k in self.UPLOAD_JSON_FIELDS
                  else upload.get(k) for k in ("id", "user", "names", "sizes", "session_id", "meta", "point",
                                               "status", "outcomes", "message", "folder", "created_at")}
        with self.transaction() as db:
            db.execute("INSERT INTO uploads (id, user, names, sizes, session_id, meta, point, status, outcomes,"
                       " message, folder, created_at, owner_pid, owner_started) VALUES (:id, :user, :names,"
                       " :sizes, :session_id, :meta, :point, :status, :outcomes, :message, :folder, :created_at,"
                       " :pid, :started)", {**values, "pid": owner_pid, "started": owner_started})
            db.execute("DELETE FROM uploads WHERE status NOT IN ('queued', 'running') AND seq <="
                       " (SELECT seq FROM uploads ORDER BY seq DESC LIMIT 1 OFFSET ?)", (keep,))

    def update_upload(self, upload_id: str, **changes: Any) -> None:
        unknown = set(changes) - set(self.UPLOAD_CHANGES)
        if unknown:
            raise InvalidInput(f"An upload has no changeable field {', '.join(sorted(unknown))}.")
        values = [json.dumps(v, ensure_ascii=False) if k in self.UPLOAD_JSON_FIELDS else v
                  for k, v in changes.items()]
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self.transaction() as db:
            db.execute(f"UPDATE uploads SET {sets} WHERE id = ?", [*values, upload_id])

    def fail_unfinished_upload(self, upload_id: str, message: str) -> bool:
        """Mark an upload failed if it is still queued or running; False if it had ended."""
        with self.transaction() as db:
            return db.execute("UPDATE uploads SET status = 'failed', message = ?, finished_at = ?"
                              " WHERE id = ? AND status IN ('queued', 'running')",
                              (message, now(), upload_id)).rowcount == 1

    def get_upload(self, upload_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        return _upload(row) if row else None

    def list_uploads(self, limit: int = 200) -> list[dict]:
        """The newest uploads first, with their owner (pid and start time) and folder."""
        rows = self.db.execute("SELECT * FROM uploads ORDER BY seq DESC LIMIT ?", (limit,))
        return [_upload(r) for r in rows]

    def unfinished_uploads(self) -> list[dict]:
        rows = self.db.execute("SELECT * FROM uploads WHERE status IN ('queued', 'running') ORDER BY seq")
        return [_upload(r) for r in rows]


def _upload(row: sqlite3.Row) -> dict:
    values = dict(row)
    values.pop("seq")
    for name in Catalog.UPLOAD_JSON_FIELDS:
        values[name] = json.loads(values[name])
    return values


def _session_values(meta: dict) -> dict:
    """The known session fields of `meta`, with lists stored as JSON."""
    values = {}
    for name in SESSION_FIELDS:
        if name in meta and meta[name] is not None:
            value = meta[name]
            if name in JSON_LIST_FIELDS:
                if isinstance(value, str):
                    value = [v.strip() for v in value.split(";") if v.strip()]
                value = json.dumps(list(value), ensure_ascii=False)
            elif name == "legal_hold":
                value = int(bool(value))
            else:
                value = str(value).strip()
            values[name] = value
    if "held_on" in values:
        try:
            dt.date.fromisoformat(values["held_on"])
        except ValueError:
            raise InvalidInput(f"'{values['held_on']}' is not a date; write it as YYYY-MM-DD.") from None
    return values

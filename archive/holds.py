"""Legal hold and retention: keeping a session's objects from being deleted.

The catalog is the record: `sessions.legal_hold` says a session is under legal hold (a
disputed case), `sessions.retention` how long it must be kept ("permanent" or a number of
years). Where the store can enforce it — an S3 bucket created with object lock (AWS S3, MinIO,
Ceph RGW, Backblaze B2; SeaweedFS 4.48 as tested here) — the objects themselves get an S3 legal
hold, and retention in GOVERNANCE mode (an administrator with the bypass right can still correct
a mistake, nobody else can delete; servers that only offer COMPLIANCE mode, like StorageGRID,
refuse it). Where it cannot (local disk, a bucket without object lock), the hold is recorded in
the catalog only and the result says the store does not enforce it.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass

from .errors import InvalidInput, StorageError

PERMANENT_YEARS = 100   # S3 retention needs a date; "permanent" keeps objects locked this long
YEARS = re.compile(r"^\s*(\d{1,3})\s*(y|yr|yrs|year|years|năm)?\s*$", re.IGNORECASE)


@dataclass
class LockResult:
    session_id: str
    action: str            # hold | release | retain
    objects: int           # objects of the session the store was asked to change
    enforced: bool         # whether the store itself enforces it
    reason: str = ""       # why it does not
    until: str = ""        # retention: the date objects are kept until

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        if self.action == "retain":
            if not self.enforced:
                return f"Retention of {self.session_id} is recorded in the catalog only: {self.reason}."
            if not self.until:
                return f"{self.session_id} has no retention date left to enforce."
            return f"The {self.objects} objects of {self.session_id} are kept until {self.until} (S3 object lock)."
        what = "under legal hold" if self.action == "hold" else "released from legal hold"
        if self.enforced:
            return f"{self.session_id} is {what}; the S3 server enforces it on its {self.objects} objects."
        return (f"{self.session_id} is {what} in the catalog; the store does not enforce it "
                f"({self.reason}).")


def lock_support(store) -> tuple[bool, str]:
    """Whether `store` enforces object lock, and if not, why not."""
    check = getattr(store, "object_lock", None)
    if check is None:
        return False, f"{store.describe()} cannot lock objects; only an S3 bucket with object lock can"
    return check()


def set_legal_hold(archive, session_id: str, on: bool, actor: str = "system",
                   reason: str = "") -> LockResult:
    """Put a session under legal hold, or release it; repeat to catch objects added since."""
    catalog = archive.catalog
    catalog.get_session(session_id)
    objects = catalog.session_objects(session_id)  # all retention would delete, sealed copies too
    if on:
        # The catalog first: it is the record, the object lock is its enforcement.
        catalog.update_session(session_id, {"legal_hold": True})
    try:
        store = archive.store
        enforced, why = lock_support(store)
        if enforced:
            still_held = set() if on else _held_elsewhere(catalog, session_id)
            for sha in objects:
                if sha not in still_held:
                    store.set_legal_hold(sha, on)
    except StorageError as exc:
        state = "is under legal hold in the catalog" if on else "stays under legal hold"
        raise type(exc)(f"{session_id} {state}, but the store could not apply it "
                        f"({str(exc).rstrip('.')}); run `tcd {'hold' if on else 'release'} "
                        f"{session_id}` again (with --user, and --reason for a hold).") from exc
    if not on:
        catalog.update_session(session_id, {"legal_hold": False})
    result = LockResult(session_id, "hold" if on else "release", len(objects), enforced, why)
    archive.audit(actor, "session.hold" if on else "session.release", session_id, reason=reason,
                  objects=len(objects), enforced=enforced, store=store.describe())
    return result


def retention_until(held_on: str, retention: str) -> dt.datetime | None:
    """The date a session's objects must be kept until; None when that date has passed."""
    start = dt.datetime.combine(dt.date.fromisoformat(held_on), dt.time(), dt.timezone.utc)
    if (retention or "permanent").strip().lower() in ("permanent", "vĩnh viễn"):
        years = PERMANENT_YEARS
    else:
        match = YEARS.match(retention)
        if not match:
            raise InvalidInput(f"'{retention}' is not a retention; write 'permanent' or a number of years.")
        years = int(match.group(1))
    try:
        until = start.replace(year=start.year + years)
    except ValueError:  # 29 February
        until = start.replace(year=start.year + years, day=28)
    return until if until > dt.datetime.now(dt.timezone.utc) else None


def apply_retention(archive, session_id: str, actor: str = "system") -> LockResult:
    """Lock the objects of a session's finished recordings until its retention ends (where the
    store enforces it). Idempotent; a later, longer retention extends the lock."""
    catalog, store = archive.catalog, archive.store
    session = catalog.get_session(session_id)
    until = retention_until(session.held_on, session.retention)
    enforced, why = lock_support(store)
    objects = catalog.session_objects(session_id)
    result = LockResult(session_id, "retain", len(objects), enforced, why,
                        until.date().isoformat() if until else "")
    if not enforced or until is None:
        return result
    changed = sum(store.set_retention(sha, until) for sha in objects)
    if changed:
        archive.audit(actor, "session.retain", session_id, until=result.until, objects=changed,
                      store=store.describe())
    return result


def _held_elsewhere(catalog, session_id: str) -> set[str]:
    """Objects that another session under legal hold shares (their hold must stay)."""
    shared: set[str] = set()
    for other in catalog.list_sessions():
        if other.legal_hold and other.id != session_id:
            shared.update(catalog.session_objects(other.id))
    return shared

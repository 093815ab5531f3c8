"""Retention: how long a session is kept, legal holds, and deletion by two people.

Each session has a retention class: `permanent`, or a number of years counted from the session's
date (`sessions.retention` holds "permanent" or the number, e.g. "10"). A legal hold keeps a
session whatever its class. `due()` lists the sessions whose time has passed.

Deleting a session takes two different users with the `retention` permission: one proposes
(`propose`), another approves (`approve`); both steps are audited. Approval removes the session
from the catalog (every row that depends on it, found through the schema's foreign keys), its
objects from the store, and — through the `on_deleted(session_id)` callback the caller passes,
since `archive` does not import `search` — from the index. It records in `backup_removals` what
every backup must still drop; `tcd backup disk` applies that to each bag (`apply_to_bag`). A
session under legal hold, or not yet due, can never be deleted. The audit log keeps that the
session existed and who deleted it, but none of its content.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import unicodedata
from pathlib import Path
from typing import Callable

from . import holds, users
from .catalog import Session, now
from .errors import InvalidInput, PermissionDenied
from .store import write_atomic

PERMANENT = "permanent"
MAX_YEARS = 200
REMOVALS_FILE = "tcd-removals.json"   # in a bag: the sessions removed from it, and why


def parse_retention(value) -> str:
    """`permanent` or a whole number of years (1–200), as the catalog stores it."""
    text = str(value or "").strip().lower()
    if text in (PERMANENT, "vĩnh viễn", "vinh vien"):
        return PERMANENT
    if text.endswith(("y", "years", "năm")):
        text = text.rstrip("yearsnăm ").strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_YEARS:
        raise InvalidInput(f"'{value}' is not a retention class; write 'permanent' or a number of years "
                           f"from 1 to {MAX_YEARS} (e.g. 10).")
    return str(int(text))


def expires_on(session: Session) -> dt.date | None:
    """The first day the session may be deleted; None if it is kept permanently."""
    if session.retention in ("", PERMANENT):
        return None
    held = dt.date.fromisoformat(session.held_on)
    years = int(session.retention)
    try:
        return held.replace(year=held.year + years)
    except ValueError:  # 29 February into a year without one
        return held.replace(year=held.year + years, day=28)


def is_due(session: Session, today: dt.date | None = None) -> bool:
    until = expires_on(session)
    return until is not None and until <= (today or dt.date.today())


def set_retention(archive, session_id: str, value, user) -> Session:
    users.require(user, "retention", "change how long sessions are kept")
    before = archive.catalog.get_session(session_id)
    retention = parse_retention(value)
    session = archive.catalog.update_session(session_id, {"retention": retention})
    archive.audit(user.name, "retention.set", session_id, session_id, before=before.retention,
                  after=retention)
    holds.apply_retention(archive, session_id, actor=user.name)  # the S3 lock, where there is one
    return session


def set_legal_hold(archive, session_id: str, hold: bool, user, reason: str = "") -> holds.LockResult:
    """Put a session under legal hold (it can then never be deleted) or release it; what the
    store did about it (`LockResult.sentence()`)."""
    users.require(user, "retention", "place or release legal holds")
    reason = unicodedata.normalize("NFC", " ".join((reason or "").split()))
    if hold and not reason:
        raise InvalidInput("A legal hold needs a reason; name the case, request or decision it serves.")
    # archive.holds records the hold in the catalog, locks the objects where the store can, and
    # audits it ("session.hold" / "session.release").
    return holds.set_legal_hold(archive, session_id, bool(hold), actor=user.name, reason=reason)


def due(archive, today: dt.date | None = None) -> list[dict]:
    """Sessions whose retention has passed, oldest expiry first, with whether they are held
    (and so cannot be deleted) and any open deletion proposal."""
    rows = []
    for session in archive.catalog.list_sessions():
        if not is_due(session, today):
            continue
        proposal = archive.catalog.open_deletion(session.id)
        rows.append({"session_id": session.id, "title": session.title, "held_on": session.held_on,
                     "retention": session.retention, "expires_on": expires_on(session).isoformat(),
                     "legal_hold": bool(session.legal_hold),
                     "proposal": proposal["id"] if proposal else None})
    return sorted(rows, key=lambda r: (r["expires_on"], r["session_id"]))


def _check_deletable(session: Session, today: dt.date | None) -> None:
    if session.legal_hold:
        raise PermissionDenied(f"Session {session.id} is under legal hold and cannot be deleted; "
                               "the hold must be released first.")
    until = expires_on(session)
    if until is None:
        raise PermissionDenied(f"Session {session.id} is kept permanently and cannot be deleted.")
    if until > (today or dt.date.today()):
        raise PermissionDenied(f"Session {session.id} must be kept until {until.isoformat()}; it cannot "
                               "be deleted before then.")


def propose(archive, session_id: str, user, reason: str = "", today: dt.date | None = None) -> dict:
    """The first of the two steps: ask for a due session to be deleted."""
    users.require(user, "retention", "propose deletions")
    session = archive.catalog.get_session(session_id)
    _check_deletable(session, today)
    reason = unicodedata.normalize("NFC", " ".join((reason or "").split()))
    deletion = archive.catalog.add_deletion(session_id, user.name, reason)
    archive.audit(user.name, "retention.propose", session_id, f"deletion {deletion['id']}", reason=reason,
                  expires_on=expires_on(session).isoformat())
    return deletion


def withdraw(archive, deletion_id: int, user) -> dict:
    users.require(user, "retention", "withdraw deletion proposals")
    deletion = archive.catalog.get_deletion(int(deletion_id))
    if deletion["status"] != "proposed":
        raise InvalidInput(f"Deletion {deletion_id} is {deletion['status']}; only a proposal can be withdrawn.")
    deletion = archive.catalog.update_deletion(deletion["id"], status="withdrawn", approved_by=user.name,
                                               approved_at=now())
    archive.audit(user.name, "retention.withdraw", deletion["session_id"], f"deletion {deletion_id}")
    return deletion


def approve(archive, deletion_id: int, user, on_deleted: Callable[[str], None] | None = None,
            today: dt.date | None = None) -> dict:
    """The second step, by another user: delete the session everywhere. Running it again on a
    deletion that stopped half way (a store that failed) finishes it."""
    users.require(user, "retention", "approve deletions")
    catalog = archive.catalog
    deletion = catalog.get_deletion(int(deletion_id))
    if deletion["status"] in ("done", "withdrawn"):
        raise InvalidInput(f"Deletion {deletion_id} is {deletion['status']} already.")
    if deletion["status"] == "proposed":
        if user.name == deletion["proposed_by"]:
            raise PermissionDenied(f"Deletion {deletion_id} was proposed by {user.name}; a second, "
                                   "different user must approve it.")
        session = catalog.get_session(deletion["session_id"])
        _check_deletable(session, today)
        objects = catalog.session_objects(session.id)
        deletion = catalog.update_deletion(deletion["id"], status="approved", approved_by=user.name,
                                           approved_at=now(),
                                           detail={"objects": objects, "title": session.title,
                                                   "held_on": session.held_on})
        archive.audit(user.name, "retention.approve", session.id, f"deletion {deletion_id}",
                      proposed_by=deletion["proposed_by"], objects=len(objects))
        removed = catalog.purge_session(session.id)
        catalog.add_backup_removal(deletion["id"], session.id, removed)
        deletion = catalog.update_deletion(deletion["id"], detail={**deletion["detail"], "removed": removed})
    session_id = deletion["session_id"]
    for sha in deletion["detail"].get("removed", []):
        archive.store.delete(sha)
    if on_deleted:
        on_deleted(session_id)
    deletion = catalog.update_deletion(deletion["id"], status="done")
    archive.audit(user.name, "retention.delete", session_id, f"deletion {deletion_id}",
                  objects=len(deletion["detail"].get("removed", [])))
    return deletion


def proposals(archive, open_only: bool = True) -> list[dict]:
    return archive.catalog.list_deletions(("proposed", "approved") if open_only else None)


# -- backups --------------------------------------------------------------------------------------

def apply_to_bag(archive, dest: Path, manifests: dict[str, dict[str, str]]) -> list[str]:
    """Drop from the bag at `dest` the sessions deleted under retention rules: their files go,
    their lines leave `manifests` (path -> digest per algorithm, changed in place; the caller
    writes them), and `tcd-removals.json` (a tag file) records what was removed, when and by
    which deletion. Returns the sessions removed by this call."""
    dest = Path(dest)
    log_path = dest / REMOVALS_FILE
    log = json.loads(log_path.read_text(encoding="utf-8")) if log_path.is_file() else []
    logged = {entry["session_id"] for entry in log}
    removed = []
    for removal in archive.catalog.backup_removals():
        sid = removal["session_id"]
        folder = dest / "data" / sid
        prefix = f"data/{sid}/"
        files = sorted({name for m in manifests.values() for name in m if name.startswith(prefix)})
        if not files and not folder.exists():
            continue
        deletion = archive.catalog.get_deletion(removal["deletion_id"])
        for m in manifests.values():
            for name in files:
                m.pop(name, None)
        if folder.exists():
            shutil.rmtree(folder)
        if sid not in logged:
            log.append({"session_id": sid, "removed_at": now(), "deleted_at": removal["removed_at"],
                        "deletion": removal["deletion_id"], "proposed_by": deletion["proposed_by"],
                        "approved_by": deletion["approved_by"], "files": files,
                        "objects": removal["objects"]})
            logged.add(sid)
        removed.append(sid)
    if removed:
        write_atomic(log_path, (json.dumps(log, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    return removed

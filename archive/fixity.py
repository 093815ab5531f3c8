"""Fixity audits: re-hash the stored objects and compare them with the catalog.

`verify(archive, ...)` reads every object the catalog knows (or one session's, or only those not
checked within some time, so a weekly run with `--older-than 90d` covers everything within 90
days), records the result of each object in the catalog (`objects.verified_at`, `verify_ok`),
records the run in `fixity_runs` and in the audit log, and returns a report that names every
object that differs or is missing, not only the first.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from typing import Callable

from .errors import InvalidInput, NotFound, StorageError

AGE = re.compile(r"^\s*(\d+)\s*([dhw]?)\s*$")
UNITS = {"": "days", "d": "days", "h": "hours", "w": "weeks"}
WHOLE_SCOPE = "all objects"   # the scope of a run over every object (it also looks for strays)


@dataclass
class Problem:
    sha256: str
    kind: str              # original | access | transcript | derived
    problem: str           # differs | missing | unreadable
    found: str = ""        # the SHA-256 read, when it differs
    owners: list[dict] = field(default_factory=list)

    def describe(self) -> str:
        """One line a person can act on: which session, recording and file."""
        if self.owners:
            where = "; ".join(f"{o['session_id']} recording {o['recording_id']} {o['role']} "
                              f"'{o['name']}'" for o in self.owners)
        else:
            where = f"{self.kind} object not attached to any recording"
        return f"{self.problem.upper()}: {where} (sha256 {self.sha256})"


@dataclass
class FixityReport:
    run_id: int
    scope: str
    checked: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)   # in the store, named by no catalog row

    @property
    def ok(self) -> bool:
        return not self.problems   # a stray is not damage: nothing the archive holds changed

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "scope": self.scope, "checked": self.checked,
                "bytes": self.bytes, "ok": self.ok, "problems": [asdict(p) for p in self.problems],
                "strays": self.strays}

    def lines(self) -> list[str]:
        """A line per damaged object, then one per stray."""
        return [p.describe() for p in self.problems] + [
            f"STRAY: sha256 {sha} is in the store but not in the catalog (left by an interrupted run or "
            "put there by hand); no backup carries it" for sha in self.strays]

    def sentence(self) -> str:
        strays = f" The store also holds {len(self.strays)} object(s) the catalog does not know." if self.strays else ""
        if self.ok:
            return f"All {self.checked} objects checked ({self.scope}) match the catalog.{strays}"
        return (f"{len(self.problems)} of {self.checked} objects differ from the catalog or are missing; "
                f"`tcd restore BACKUP` repairs them from a backup.{strays}")


def parse_age(text: str) -> dt.timedelta:
    """`90d`, `12h`, `2w` or a bare number of days."""
    match = AGE.match(text or "")
    if not match:
        raise InvalidInput(f"'{text}' is not an age; write it like 90d, 12h or 2w.")
    return dt.timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def verify(archive, session_id: str | None = None, older_than: dt.timedelta | None = None,
           actor: str = "system", progress: Callable[[int], None] | None = None,
           on_total: Callable[[int, int], None] | None = None) -> FixityReport:
    """Re-hash the chosen objects. `on_total(count, bytes)` is called once before the work starts
    (for a progress bar), `progress(n)` with each chunk of bytes read."""
    catalog = archive.catalog
    if session_id:
        catalog.get_session(session_id)  # a NotFound with a clear sentence for a wrong id
    cutoff = None
    scope = f"session {session_id}" if session_id else WHOLE_SCOPE
    if older_than is not None:
        cutoff = (dt.datetime.now(dt.timezone.utc) - older_than).replace(microsecond=0).isoformat()
        scope += f" not verified since {cutoff}"
    objects = catalog.list_objects(session_id=session_id, verified_before=cutoff)
    if on_total:
        on_total(len(objects), sum(o["size"] for o in objects))
    report = FixityReport(run_id=catalog.start_fixity_run(scope), scope=scope)
    per_session: dict[str, list[int]] = {}  # session -> [checked, failed]
    owners_of = catalog.object_owners()
    for obj in objects:
        sha = obj["sha256"]
        problem = None
        try:
            found = archive.store.rehash(sha, progress)
            if found != sha:
                problem = Problem(sha, obj["kind"], "differs", found)
        except NotFound:
            problem = Problem(sha, obj["kind"], "missing")
        except (OSError, StorageError) as exc:
            problem = Problem(sha, obj["kind"], "unreadable", str(exc))
        catalog.mark_verified(sha, problem is None)
        report.checked += 1
        report.bytes += obj["size"]
        owners = owners_of.get(sha, [])
        for session in {o["session_id"] for o in owners}:
            counts = per_session.setdefault(session, [0, 0])
            counts[0] += 1
            counts[1] += problem is not None
        if problem:
            problem.owners = owners
            report.problems.append(problem)
    if not session_id and cutoff is None:   # a whole run also looks the other way: store -> catalog
        report.strays = _strays(archive, {o["sha256"] for o in objects})
    detail = {"bytes": report.bytes, "problems": [asdict(p) for p in report.problems],
              "strays": report.strays}
    catalog.finish_fixity_run(report.run_id, report.checked, len(report.problems), detail)
    archive.audit(actor, "fixity.verify", None, scope, run=report.run_id, checked=report.checked,
                  failed=len(report.problems), strays=len(report.strays), store=archive.store.describe())
    # Each session's own history says when it was verified and with what result, so that a
    # backup of the session carries the proof with it.
    for session, (checked, failed) in sorted(per_session.items()):
        archive.audit(actor, "fixity.verify", session, scope, run=report.run_id, checked=checked,
                      failed=failed,
                      damaged=[p.sha256 for p in report.problems
                               if any(o["session_id"] == session for o in p.owners)])
    return report


def _strays(archive, known: set[str]) -> list[str]:
    """Objects the store holds that the catalog does not name (none when the store cannot be
    listed: the run has reported those objects unreadable already)."""
    try:
        return sorted(set(archive.store.keys()) - known)
    except StorageError:
        return []

"""The preservation page: whether the archive is safe, read from what `tcd backup` and `tcd verify`
recorded in the catalog, so an archivist or an admin need not open a terminal to know.

It shows the backups made (disk bags and disc sets), the fixity runs and how long since the last
whole run, the objects that failed their last check (named by session, recording and role, with
what to do) and the stray objects of the last whole run. The page only reads: like the other
pages that only read the catalog for administrators (the audit log, retention, jobs), it writes
no audit entry.
"""
from __future__ import annotations

import datetime as dt
import re

from flask import Blueprint, render_template
from jinja2.filters import do_filesizeformat

from archive.fixity import WHOLE_SCOPE

from .auth import archive, require

bp = Blueprint("preservation", __name__)

# A whole run older than this is called stale: `tcd verify --older-than 90d` run weekly covers
# every object within 90 days, so a longer gap means the routine has stopped.
STALE_AFTER = dt.timedelta(days=90)
RUNS_SHOWN = 50
BACKUPS_SHOWN = 50

SCOPE_RE = re.compile(rf"^(?:{WHOLE_SCOPE}|session (?P<session>\S+))(?: not verified since (?P<since>\S+))?$")
OWNER_ROLES = {"original": "bản gốc", "access": "bản truy cập", "sealed copy": "bản đã niêm phong"}
OBJECT_KINDS = {"original": "bản gốc", "access": "bản truy cập", "transcript": "bản ghi lời",
                "derived": "tệp dẫn xuất"}
PROBLEMS = {"differs": "nội dung đã thay đổi (hỏng)", "missing": "mất khỏi kho",
            "unreadable": "không đọc được"}
BACKUP_KINDS = {"disk": "Ổ đĩa ngoài", "disc": "Đĩa quang (CD/DVD/BD)"}
BACKUP_STATUS = {"complete": "Hoàn tất", "failed": "Thất bại",
                 "running": "Chưa xong (đang chạy hoặc đã bị ngắt)"}


@bp.route("/preservation")
@require("preservation")
def page():
    return render_template("preservation.html", **state(archive().catalog))


def state(catalog, now: dt.datetime | None = None) -> dict:
    """Everything the page shows, from the catalog, as of `now` (UTC)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    runs = catalog.list_fixity_runs(limit=RUNS_SHOWN)
    whole = catalog.last_finished_fixity_run(WHOLE_SCOPE)
    backups = [backup_row(b) for b in catalog.list_backups(limit=BACKUPS_SHOWN)]
    last_backup = next((b for b in backups if b["status"] == "complete"), None)
    damaged = damaged_rows(catalog, runs)
    age = days_between(whole["finished_at"], now) if whole else None
    return {
        "runs": [run_row(r) for r in runs],
        "whole": whole,
        "whole_age": age,
        "whole_stale": age is not None and age > STALE_AFTER.days,
        "stale_days": STALE_AFTER.days,
        "strays": (whole or {}).get("detail", {}).get("strays", []),
        "damaged": damaged,
        "backups": backups,
        "last_backup": last_backup,
        "safe": bool(whole) and not damaged and age <= STALE_AFTER.days and last_backup is not None,
    }


def days_between(iso: str, now: dt.datetime) -> int:
    """Whole days from a catalog time (ISO 8601, UTC) to `now`."""
    return max(0, (now - dt.datetime.fromisoformat(iso)).days)


def scope_label(scope: str) -> str:
    match = SCOPE_RE.match(scope or "")
    if not match:
        return scope
    label = f"phiên {match['session']}" if match["session"] else "toàn bộ kho"
    if match["since"]:
        label += f", các đối tượng chưa kiểm tra từ {match['since']}"
    return label


def run_row(run: dict) -> dict:
    return {**run, "scope_label": scope_label(run["scope"]), "interrupted": not run["finished_at"],
            "strays": len(run["detail"].get("strays", []))}


def backup_row(backup: dict) -> dict:
    """A backup with what its `detail` says, where it says it (a run that failed early has less)."""
    detail = backup["detail"]
    files = bytes_ = None
    if "written" in detail or "unchanged" in detail:
        files = detail.get("written", 0) + detail.get("unchanged", 0)
        bytes_ = detail.get("written_bytes", 0) + detail.get("unchanged_bytes", 0)
    return {**backup, "kind_label": BACKUP_KINDS.get(backup["kind"], backup["kind"]),
            "status_label": BACKUP_STATUS.get(backup["status"], backup["status"]),
            "sessions": detail.get("sessions"), "files": files, "written": detail.get("written"),
            "size": size_label(bytes_) if bytes_ is not None else None,
            "discs": detail.get("discs"), "media": media_label(detail.get("media")),
            "problems": detail.get("problems") or []}


def media_label(media) -> str:
    """`cd`, `dvd` or `bd` as people write them; a size given in bytes (tests, odd media) as a size."""
    return media.upper() if isinstance(media, str) else size_label(media) if media else ""


def size_label(n: int) -> str:
    """Jinja's own size filter, with the decimal comma Vietnamese writes."""
    return f"{n} B" if n < 1000 else do_filesizeformat(n).replace(".", ",")


def owner_role(role: str) -> str:
    if role.startswith("transcript v"):
        return f"bản ghi lời, phiên bản {role.removeprefix('transcript v')}"
    return OWNER_ROLES.get(role, role)


def damaged_rows(catalog, runs: list[dict]) -> list[dict]:
    """The objects whose last check failed, each with its owners and, when a recent run names it,
    what was wrong with it."""
    objects = catalog.damaged_objects()
    if not objects:
        return []
    owners = catalog.object_owners()
    found: dict[str, str] = {}
    for run in runs:  # newest first: the first run that names an object says how it failed last
        for problem in run["detail"].get("problems", []):
            found.setdefault(problem["sha256"], problem["problem"])
    return [{**o, "kind_label": OBJECT_KINDS.get(o["kind"], o["kind"]),
             "problem": PROBLEMS.get(found.get(o["sha256"], ""), "không khớp với danh mục"),
             "owners": [{**w, "role_label": owner_role(w["role"])} for w in owners.get(o["sha256"], [])]}
            for o in objects]

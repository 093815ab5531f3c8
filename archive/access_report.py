"""The access report of a session: who viewed, played, exported or cited it, and when.

It answers a data subject's request (Decree 13/2023/NĐ-CP, Law 91/2025/QH15) from the audit log:
the session's live entries and those restored from a backup (`catalog.session_history`), kept
to the actions that disclose the session's content. Rows go to the web page, the command line
and CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the Vietnamese correctly).
Making a report is itself audited.
"""
from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass

from .catalog import with_detail

KIND_LABELS = {"viewed": "Xem", "played": "Phát", "exported": "Xuất / sao lưu", "cited": "Trích dẫn"}
_EXACT = {"session.view": "viewed", "play": "played", "download": "exported",
          "backup.disk": "exported", "backup.disc": "exported", "citation.issue": "cited"}
CSV_HEADER = ("Thời điểm (UTC)", "Người dùng", "Vai trò", "Hoạt động", "Mã hành động", "Đối tượng",
              "Địa chỉ", "Chi tiết")
# What the detail column shows; other fields (hashes, chain links) say nothing to a reader.
DETAIL_KEYS = ("format", "version", "code", "start", "end", "api", "label", "backup")


def kind_of(action: str) -> str | None:
    """viewed | played | exported | cited for the actions that disclose content, else None."""
    if action in _EXACT:
        return _EXACT[action]
    if action.startswith(("export", "minutes")) or action.endswith(".export"):
        return "exported"
    return None


@dataclass(frozen=True)
class AccessRow:
    at: str
    actor: str
    role: str
    kind: str
    action: str
    target: str
    address: str
    detail: str

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    def to_dict(self) -> dict:
        return asdict(self)


def access_rows(archive, session_id: str, kinds: set[str] | None = None) -> list[AccessRow]:
    """The accesses to a session, oldest first. The session may have been deleted since: its
    history stays in the audit log."""
    roles = {u.name: u.role for u in archive.catalog.list_users()}
    rows = []
    for entry in archive.catalog.session_history(session_id):
        kind = kind_of(entry["action"])
        if kind is None or (kinds and kind not in kinds):
            continue
        detail = with_detail(entry)["detail"]
        shown = "; ".join(f"{k}={detail[k]}" for k in DETAIL_KEYS if detail.get(k) not in (None, ""))
        rows.append(AccessRow(entry["at"], entry["actor"], roles.get(entry["actor"], ""), kind,
                              entry["action"], entry["target"] or "", detail.get("address", ""), shown))
    return sorted(rows, key=lambda r: r.at)


def report(archive, session_id: str, actor: str, kinds: set[str] | None = None,
           fmt: str = "rows") -> list[AccessRow]:
    """`access_rows`, with the request audited (who asked, for which session, in what form). The
    caller has checked that `actor` may see it (the web: the `access_report` permission; the
    command line: whoever can read the catalog)."""
    rows = access_rows(archive, session_id, kinds)
    archive.audit(actor, "access.report", session_id, session_id, rows=len(rows), format=fmt)
    return rows


def to_csv(rows: list[AccessRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow((r.at, r.actor, r.role, r.kind_label, r.action, r.target, r.address, r.detail))
    return "\ufeff" + out.getvalue()

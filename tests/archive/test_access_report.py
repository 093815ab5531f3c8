"""The access report: who viewed, played, exported or cited a session, from the audit log."""
from __future__ import annotations

import csv
import json
import io
from functools import partial

from archive import access_report

from ..helpers import tcd


def test_rows_and_csv(filled):
    archive, sid, video = filled["archive"], filled["session"], filled["video"]
    archive.catalog.add_user("hoa", "inspector", "-")
    archive.audit("hoa", "session.view", sid, address="10.0.0.7")
    archive.audit("hoa", "play", sid, video, address="10.0.0.7")
    archive.audit("lan", "download", sid, video, format="docx", version=2, address="10.0.0.8")
    archive.audit("lan", "citation.issue", sid, video, code="TD-1", start=1.0, end=2.0)
    archive.audit("lan", "minutes.export", sid, video)
    archive.audit("minh", "backup.disk", sid, "/media/usb", backup=3)
    archive.audit("minh", "search", None, q="đất đai")            # not about this session
    archive.audit("minh", "note.add", sid, "note 1")               # a change, not an access
    archive.audit("hoa", "session.view", "TCD-2025-9999")          # another session

    rows = access_report.report(archive, sid, actor="minh")
    assert [(r.actor, r.kind, r.action) for r in rows] == [
        ("hoa", "viewed", "session.view"), ("hoa", "played", "play"), ("lan", "exported", "download"),
        ("lan", "cited", "citation.issue"), ("lan", "exported", "minutes.export"),
        ("minh", "exported", "backup.disk")]
    assert rows[0].role == "inspector" and rows[0].address == "10.0.0.7" and rows[2].detail == "format=docx; version=2"
    assert rows[3].detail == "code=TD-1; start=1.0; end=2.0"
    assert [r.kind for r in access_report.access_rows(archive, sid, kinds={"played", "cited"})] == ["played", "cited"]
    # asking is itself audited, and does not show up as an access
    last = archive.catalog.audit_entries(session_id=sid, descending=True, limit=1)[0]
    assert (last["action"], last["actor"]) == ("access.report", "minh")
    assert len(access_report.access_rows(archive, sid)) == 6

    text = access_report.to_csv(rows)
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert table[0] == list(access_report.CSV_HEADER)
    assert table[1][1:5] == ["hoa", "inspector", "Xem", "session.view"]
    assert [t[3] for t in table[1:]] == ["Xem", "Phát", "Xuất / sao lưu", "Trích dẫn", "Xuất / sao lưu",
                                         "Xuất / sao lưu"]


def test_restored_history_counts(filled):
    archive, sid = filled["archive"], filled["session"]
    archive.catalog.restore_history([{"id": 7, "hash": "a" * 64, "prev_hash": "b" * 64, "at": "2020-01-02T03:04:05+00:00",
                                      "actor": "cu", "action": "play", "session_id": sid, "target": "r",
                                      "detail": "{}"}], source="/media/usb")
    rows = access_report.access_rows(archive, sid)
    assert (rows[0].at, rows[0].actor, rows[0].kind) == ("2020-01-02T03:04:05+00:00", "cu", "played")


def test_an_unknown_session_has_an_empty_report(archive):
    assert access_report.access_rows(archive, "TCD-2000-0001") == []


def test_the_command_line(filled, tmp_path):
    archive, sid = filled["archive"], filled["session"]
    archive.audit("hoa", "play", sid, filled["video"])
    run = partial(tcd, archive.home, "access-report", sid)
    assert "hoa" in run().output and "Phát" in run().output
    out = tmp_path / "báo cáo.csv"
    result = run("--csv", "-o", str(out))
    assert result.exit_code == 0 and out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert out.read_text(encoding="utf-8-sig").splitlines()[1].split(",")[1] == "hoa"
    assert [r["kind"] for r in json.loads(run("--json").output)] == ["played"]

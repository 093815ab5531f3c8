"""`tcd search` and `tcd reindex` through the real command group."""
import json

from ..helpers import tcd
from .conftest import add_session, seg


def test_search_json_syncs_first(archive, home):
    session, rec = add_session(archive, "Phiên tháng ba", "2025-03-14",
                               [seg(2.0, "thu hồi đất đai <b>trái phép</b>")], case_code="KN-1")
    result = tcd(home, "search", "dat", "dai", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["total"] == 1
    hit = data["hits"][0]
    assert {k: hit[k] for k in ("session", "held_on", "start", "recording_id")} == {
        "session": session.id, "held_on": "2025-03-14", "start": 3.0, "recording_id": rec.id}
    assert "<mark>đất</mark>" in hit["snippet"] and "&lt;b&gt;" in hit["snippet"]


def test_search_table_filters_and_messages(archive, home):
    add_session(archive, "Phiên tháng ba", "2025-03-14", [seg(2.0, "thu hồi đất đai")])
    result = tcd(home, "search", "đất", "--from", "2026-01-01")
    assert result.exit_code == 0 and "No match" in result.output
    result = tcd(home, "search", '"thu hồi', "--sort", "date")
    assert result.exit_code == 0 and "1 matches" in result.output and "[thu]" in result.output
    assert "ngoặc kép" in result.output


def test_reindex(archive, home):
    add_session(archive, "Phiên tháng ba", "2025-03-14", [seg(2.0, "thu hồi đất đai")])
    result = tcd(home, "reindex", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sessions"] == 1

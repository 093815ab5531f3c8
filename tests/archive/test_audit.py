"""The audit log's hash chain: verified when intact; a changed, removed or reordered entry is found."""
from __future__ import annotations

import json

from click.testing import CliRunner

from archive import audit
from archive.cli import main


def fill(archive, n=5):
    for i in range(n):
        archive.audit(f"user{i}", "search", None, "", q=f"đất đai {i}")


def test_intact_chain_verifies(archive):
    assert audit.verify(archive.catalog).ok  # an empty log is unbroken
    fill(archive)
    report = audit.verify(archive.catalog)
    assert report.ok and report.checked == 5 and report.broken_at is None


def test_changed_entry_is_found(archive):
    fill(archive)
    archive.catalog.db.execute("UPDATE audit SET actor = 'someone else' WHERE id = 3")
    report = audit.verify(archive.catalog)
    assert not report.ok and report.broken_at == 3 and report.checked == 2
    assert "changed" in report.sentence()


def test_changed_detail_is_found(archive):
    fill(archive)
    archive.catalog.db.execute("UPDATE audit SET detail = ? WHERE id = 4", (json.dumps({"q": "khác"}),))
    assert audit.verify(archive.catalog).broken_at == 4


def test_removed_entry_is_found(archive):
    fill(archive)
    archive.catalog.db.execute("DELETE FROM audit WHERE id = 2")
    report = audit.verify(archive.catalog)
    assert report.broken_at == 3 and "removed" in report.reason


def test_rewritten_hash_breaks_the_next_link(archive):
    """Someone who edits an entry and recomputes its hash still breaks the entry after it."""
    from archive.catalog import audit_hash
    fill(archive)
    row = dict(archive.catalog.db.execute("SELECT * FROM audit WHERE id = 2").fetchone())
    row["actor"] = "forger"
    new_hash = audit_hash(row["prev_hash"], {k: row[k] for k in audit.HASHED_FIELDS})
    archive.catalog.db.execute("UPDATE audit SET actor = 'forger', hash = ? WHERE id = 2", (new_hash,))
    assert audit.verify(archive.catalog).broken_at == 3


def test_audit_command(home, archive):
    fill(archive, 3)
    runner = CliRunner()
    base = ["--home", str(home), "audit"]
    result = runner.invoke(main, base + ["--verify"])
    assert result.exit_code == 0 and "unbroken: 3 entries" in result.output
    listed = json.loads(runner.invoke(main, base + ["--json"]).output)
    assert [e["actor"] for e in listed] == ["user0", "user1", "user2"]
    assert listed[0]["detail"] == {"q": "đất đai 0"}
    assert "user2" in runner.invoke(main, base + ["--actor", "user2"]).output
    assert len(json.loads(runner.invoke(main, base + ["--json", "--limit", "2"]).output)) == 2
    archive.catalog.db.execute("UPDATE audit SET action = 'nothing' WHERE id = 2")
    result = runner.invoke(main, base + ["--verify"])
    assert result.exit_code == 1 and "broken at entry 2" in result.output
    result = runner.invoke(main, base + ["--verify", "--json"])
    assert result.exit_code == 1 and json.loads(result.output)["broken_at"] == 2

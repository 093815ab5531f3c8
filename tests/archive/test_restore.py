"""Restore: a damaged object repaired from a bag, an empty archive rebuilt from one, and a second
restore that changes nothing."""
from __future__ import annotations

import json

from archive import open_archive
from archive.backup import backup_disk
from archive.restore import restore

from ..helpers import flip_byte, tcd


def catalog_dump(archive) -> dict:
    db = archive.catalog.db
    order = {"transcripts": "recording_id, version", "objects": "sha256"}
    return {table: [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY {order.get(table, '1')}")]
            for table in ("sessions", "recordings", "objects", "transcripts", "audit", "audit_restored")}


def store_state(archive) -> dict:
    return {sha: archive.store.path(sha).stat().st_mtime_ns for sha in archive.store.keys()}


def test_flipped_byte_found_by_verify_and_repaired_from_a_bag(filled, tmp_path, home):
    arch = filled["archive"]
    bag = tmp_path / "bag"
    backup_disk(arch, bag)
    sha = arch.catalog.get_recording(filled["video"]).original_sha256
    good = arch.store.path(sha).read_bytes()
    flip_byte(arch.store.path(sha), at=100, mask=0x80)

    found = tcd(home, "verify")
    assert found.exit_code == 1 and f"DIFFERS: {filled['session']} recording {filled['video']}" in found.output

    repaired = tcd(home, "restore", str(bag))
    assert repaired.exit_code == 0, repaired.output
    assert "1 damaged objects repaired" in repaired.output
    assert arch.store.path(sha).read_bytes() == good
    assert tcd(home, "verify").exit_code == 0
    assert arch.catalog.audit_entries(session_id=filled["session"])[-2]["action"] == "restore"

    before, files = catalog_dump(arch), store_state(arch)
    again = tcd(home, "restore", str(bag), "--json")
    assert again.exit_code == 0 and json.loads(again.output)["changed"] is False
    assert catalog_dump(arch) == before and store_state(arch) == files


def test_empty_archive_rebuilt_from_a_bag(filled, tmp_path):
    arch = filled["archive"]
    bag = tmp_path / "bag"
    backup_disk(arch, bag)
    fresh = open_archive(tmp_path / "new-machine", env={})
    report = restore(fresh, bag)
    assert report.sessions_added == [filled["session"]] and not report.problems
    assert (report.recordings_added, report.transcripts_added, report.objects_added) == (2, 3, 5)

    old, new = catalog_dump(arch), catalog_dump(fresh)
    for table in ("sessions", "recordings", "transcripts"):
        drop = {"id"} if table == "transcripts" else set()
        assert [{k: v for k, v in r.items() if k not in drop} for r in new[table]] == \
               [{k: v for k, v in r.items() if k not in drop} for r in old[table]]
    assert [{k: r[k] for k in ("sha256", "size", "kind", "media_type", "created_at")} for r in new["objects"]] == \
           [{k: r[k] for k in ("sha256", "size", "kind", "media_type", "created_at")} for r in old["objects"]]
    for sha in arch.store.keys():
        assert fresh.store.rehash(sha) == sha
    history = fresh.catalog.session_history(filled["session"])
    original = [e["hash"] for e in arch.catalog.audit_entries(session_id=filled["session"])]
    assert [e["hash"] for e in history[:len(original) - 1]] == original[:-1]  # the bag's own entry came last
    assert history[-1]["action"] == "restore"
    current = fresh.catalog.current_transcript(filled["video"])
    assert current.version == 2 and current.author == "Trần Thị Bình"

    before, files = catalog_dump(fresh), store_state(fresh)
    assert not restore(fresh, bag).changed
    assert catalog_dump(fresh) == before and store_state(fresh) == files


def test_file_missing_from_the_bag_is_named_and_the_rest_restored(filled, tmp_path, home):
    arch = filled["archive"]
    bag = tmp_path / "bag"
    backup_disk(arch, bag)
    rec = arch.catalog.get_recording(filled["audio"])
    lost = bag / "data" / filled["session"] / "recordings" / rec.id / "original" / rec.original_name
    lost.unlink()
    (bag / "data" / filled["session"] / "recordings" / filled["video"] / "transcripts" / "v1.json").write_text("{}")
    fresh_home = tmp_path / "new-machine"
    result = tcd(fresh_home, "restore", str(bag))
    assert result.exit_code == 1
    assert f"recordings/{rec.id}/original/{rec.original_name}: missing from the bag" in result.output
    assert f"recordings/{filled['video']}/transcripts/v1.json: differs from its SHA-256" in result.output
    fresh = open_archive(fresh_home, env={})
    assert fresh.store.exists(arch.catalog.get_recording(filled["video"]).original_sha256)
    assert not fresh.store.exists(rec.original_sha256)
    assert fresh.catalog.get_recording(rec.id).original_name == rec.original_name


def test_a_folder_that_is_no_backup_is_refused(tmp_path, home, archive):
    (tmp_path / "junk").mkdir()
    result = tcd(home, "restore", str(tmp_path / "junk"))
    assert result.exit_code == 1 and "holds no TCD backup" in result.output

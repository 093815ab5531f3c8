"""`tcd ingest`, `tcd sessions`, `tcd show`, `tcd jobs` as a user runs them."""
from __future__ import annotations

import json
import shutil

from ..helpers import tcd_process as run


def test_ingest_with_metadata_file_and_a_dash_name(home, media, tmp_path):
    src = shutil.copy(media("m4a"), tmp_path / "-lạ tên.m4a")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"title": "Phiên tiếp công dân tháng 4", "held_on": "2025-04-10",
                                "case_code": "KN-2025-040", "complainants": ["Lê Thị Hoa"]},
                               ensure_ascii=False), encoding="utf-8")
    r = run(home, "ingest", "--meta", str(meta), "--point", "UBND huyện", "--json", "--", str(src))
    assert r.returncode == 0, r.stderr
    [out] = json.loads(r.stdout)
    assert out["status"] == "done" and out["session_id"] == "TCD-2025-0001"
    show = json.loads(run(home, "show", "TCD-2025-0001", "--json").stdout)
    assert show["title"] == "Phiên tiếp công dân tháng 4" and show["complainants"] == ["Lê Thị Hoa"]
    assert show["recordings"][0]["original_name"] == "-lạ tên.m4a"
    assert show["recordings"][0]["point"] == "UBND huyện"
    listing = run(home, "sessions")
    assert "TCD-2025-0001" in listing.stdout and "Phiên tiếp công dân tháng 4" in listing.stdout


def test_a_refused_file_exits_1_with_one_sentence_and_the_others_ingest(home, media, tmp_path):
    good = media("mp3")
    bad = tmp_path / "hỏng.mp4"
    bad.write_text("không phải video")
    r = run(home, "ingest", str(good), str(bad))
    assert r.returncode == 1
    assert "hỏng.mp4" in r.stderr and "Traceback" not in r.stderr
    assert "ok" in r.stdout and good.name in r.stdout
    jobs = json.loads(run(home, "jobs", "--all", "--json").stdout)
    assert sorted(j["status"] for j in jobs) == ["done", "refused"]


def test_usage_errors_exit_2(home):
    assert run(home, "ingest").returncode == 2
    assert run(home, "ingest", "/no/such/file.mp4").returncode == 1
    r = run(home, "show", "TCD-2030-0001")
    assert r.returncode == 1 and r.stderr.startswith("tcd: ") and len(r.stderr.strip().splitlines()) == 1
    bad_meta = home / "bad.json"
    bad_meta.write_text("{not json")
    assert run(home, "ingest", "--meta", str(bad_meta), str(bad_meta)).returncode == 1

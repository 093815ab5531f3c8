"""Disk backups: the bag validates with the independent `bagit` library, grows incrementally,
survives a full or unwritable disk, and its viewer works from file:// in headless Chromium."""
from __future__ import annotations

import errno
import json
import os
import time
import unicodedata
from pathlib import Path

import bagit
import pytest

import archive.backup as backup_module
from archive.backup import backup_disk, read_marker, safe_name
from archive.errors import InvalidInput, StorageError
from archive.restore import verify_backup
from archive.transcripts import save_transcript

from ..conftest import ARTIFACTS
from ..helpers import flip_byte, tcd



def payload(bag: Path) -> dict[str, tuple[int, int]]:
    """Each payload file's (inode, mtime_ns): what "left untouched" means."""
    out = {}
    for path in sorted((bag / "data").rglob("*")):
        if path.is_file():
            st = path.stat()
            out[str(path.relative_to(bag))] = (st.st_ino, st.st_mtime_ns)
    return out


def test_bag_validates_and_holds_every_version(filled, tmp_path):
    arch, sid = filled["archive"], filled["session"]
    bag_dir = tmp_path / "usb" / "tcd-backup"
    report = backup_disk(arch, bag_dir)
    assert report.complete and report.sessions == [sid] and not report.problems

    bag = bagit.Bag(str(bag_dir))
    bag.validate()  # the independent library re-hashes every file with both algorithms
    assert set(bag.algorithms) == {"sha256", "sha512"}
    assert (bag_dir / "bagit.txt").read_text().startswith("BagIt-Version: 1.0")
    assert bag.info["Payload-Oxum"] == f"{sum(p.stat().st_size for p in (bag_dir / 'data').rglob('*') if p.is_file())}." \
                                      f"{sum(1 for p in (bag_dir / 'data').rglob('*') if p.is_file())}"

    base = bag_dir / "data" / sid
    doc = json.loads((base / "session.json").read_text(encoding="utf-8"))
    assert doc["session"]["complainants"] == ["Nguyễn Văn Đức"]
    video = base / "recordings" / filled["video"]
    original = video / "original" / "Phiên TCD 14-03-2025 – điểm cầu trung tâm.mkv"
    assert original.read_bytes() == arch.store.path(arch.catalog.get_recording(filled["video"]).original_sha256).read_bytes()
    assert (video / "access" / f"{filled['video']}.mp4").is_file()
    for version in (1, 2):
        for ext in ("json", "txt", "vtt"):
            assert (video / "transcripts" / f"v{version}.{ext}").stat().st_size > 0
    assert (video / "transcripts" / "v2.vtt").read_text(encoding="utf-8").startswith("WEBVTT")
    assert "ở xã" in (video / "transcripts" / "v2.txt").read_text(encoding="utf-8")
    audio = base / "recordings" / filled["audio"] / "transcripts" / "v1.json"
    assert json.loads(audio.read_text(encoding="utf-8"))["segments"][0]["text"] == "Xin chào các đại biểu"
    history = json.loads((base / "history.json").read_text(encoding="utf-8"))
    assert [e["action"] for e in history][:2] == ["session.create", "ingest"]
    assert "transcript.save" in [e["action"] for e in history]

    assert read_marker(bag_dir)["complete"] is True
    for name in ("index.html", "README.html", "viewer/data.js", "viewer/viewer.js", "viewer/viewer.css"):
        assert (bag_dir / name).is_file()
    assert "Đây là bản sao lưu" in (bag_dir / "README.html").read_text(encoding="utf-8")
    row = arch.catalog.list_backups()[0]
    assert (row["kind"], row["status"], row["dest"]) == ("disk", "complete", str(bag_dir))
    assert [e["action"] for e in arch.catalog.audit_entries(session_id=sid)][-1] == "backup.disk"
    assert verify_backup(bag_dir).ok


def test_second_run_adds_only_what_is_new(filled, tmp_path):
    arch, sid = filled["archive"], filled["session"]
    bag_dir = tmp_path / "bag"
    first = backup_disk(arch, bag_dir)
    before = payload(bag_dir)

    # the history gained the first backup's entry: only history.json is rewritten
    second = backup_disk(arch, bag_dir)
    assert second.written == 1 and second.unchanged == first.written - 1 and second.sessions == []
    after = payload(bag_dir)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {f"data/{sid}/history.json"}

    save_transcript(arch, filled["video"], [{"start": 0.2, "end": 1.0, "text": "Xin chào"}], "human", "Lê Văn Cường",
                    based_on=2)
    third = backup_disk(arch, bag_dir)
    new = set(payload(bag_dir)) - set(after)
    rec = f"data/{sid}/recordings/{filled['video']}/transcripts"
    assert new == {f"{rec}/v3.json", f"{rec}/v3.txt", f"{rec}/v3.vtt"}
    assert third.written == 5 and third.sessions == [sid]  # the three, session.json, history.json
    untouched = {k for k in after if payload(bag_dir)[k] == after[k]}
    assert f"data/{sid}/recordings/{filled['video']}/original/Phiên TCD 14-03-2025 – điểm cầu trung tâm.mkv" in untouched
    bagit.Bag(str(bag_dir)).validate()
    # nothing new at all: nothing written (the history changed only by the backups themselves)
    backup_disk(arch, bag_dir)
    assert backup_disk(arch, bag_dir).written == 0


def test_full_disk_leaves_an_incomplete_bag_that_the_next_run_completes(filled, tmp_path, monkeypatch):
    arch = filled["archive"]
    bag_dir = tmp_path / "bag"
    calls = {"n": 0}
    real_write = backup_module._write

    def fill_up(dst, chunk):
        calls["n"] += 1
        if calls["n"] > 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(dst, chunk)

    monkeypatch.setattr(backup_module, "_write", fill_up)
    with pytest.raises(StorageError, match="is full; free some space"):
        backup_disk(arch, bag_dir)
    assert read_marker(bag_dir) is None
    assert arch.catalog.list_backups()[0]["status"] == "failed"
    check = verify_backup(bag_dir)
    assert not check.ok and any("not finished" in p for p in check.problems)
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(bag_dir)).validate()
    kept = payload(bag_dir)
    assert len(kept) == 4  # the files finished before the disk filled up

    monkeypatch.setattr(backup_module, "_write", real_write)
    report = backup_disk(arch, bag_dir)
    assert report.complete and report.unchanged == 4
    assert all(payload(bag_dir)[k] == kept[k] for k in kept)
    assert not (bag_dir / ".tcd-tmp").exists()
    bagit.Bag(str(bag_dir)).validate()
    assert verify_backup(bag_dir).ok


def test_unwritable_destination_is_refused_with_a_clear_message(filled, tmp_path, home):
    arch = filled["archive"]
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="Cannot write to the backup destination"):
        backup_disk(arch, blocker / "bag")
    if os.geteuid() == 0:
        readonly = Path("/sys/tcd-backup-test")  # even root cannot write there
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        readonly = locked / "bag"
    result = tcd(home, "backup", "disk", str(readonly))
    assert result.exit_code == 1
    assert "Cannot write to the backup destination" in result.output
    assert arch.catalog.list_backups() == []  # refused before a backup began

    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(InvalidInput, match="not a TCD backup"):
        backup_disk(arch, other)
    assert sorted(p.name for p in other.iterdir()) == ["holiday.jpg"]


def test_damaged_store_object_is_not_copied_and_the_bag_is_not_complete(filled, tmp_path, home):
    arch = filled["archive"]
    rec = arch.catalog.get_recording(filled["video"])
    flip_byte(arch.store.path(rec.access_sha256), mask=0xFF)
    result = tcd(home, "backup", "disk", str(tmp_path / "bag"))
    assert result.exit_code == 1
    assert f"{rec.id}/access/{rec.id}.mp4" in result.output
    assert "not complete" in result.output
    assert read_marker(tmp_path / "bag") is None
    assert not (tmp_path / "bag" / "data" / filled["session"] / "recordings" / rec.id / "access").exists()


def test_backup_verify_names_every_missing_and_differing_file(filled, tmp_path, home):
    bag_dir = tmp_path / "bag"
    backup_disk(filled["archive"], bag_dir)
    rec_dir = bag_dir / "data" / filled["session"] / "recordings" / filled["video"]
    (rec_dir / "transcripts" / "v1.txt").unlink()
    vtt = rec_dir / "transcripts" / "v2.vtt"
    vtt.write_text(vtt.read_text(encoding="utf-8").replace("đất", "dat"), encoding="utf-8")
    (bag_dir / "data" / "stray.txt").write_text("?")
    result = tcd(home, "backup", "verify", str(bag_dir))
    assert result.exit_code == 1
    out = result.output
    assert "transcripts/v1.txt: missing" in out
    assert "transcripts/v2.vtt: differs from its sha256 and sha512 checksum" in out
    assert "data/stray.txt: in the bag but not in its manifest" in out
    assert "3 problems" in out


def test_safe_names_keep_vietnamese_and_refuse_separators():
    assert safe_name("Phiên họp: 14/03 – 50%.mp4") == "Phiên họp: 14_03 – 50_.mp4"
    nfd = unicodedata.normalize("NFD", "Điểm cầu.mkv")
    assert safe_name(nfd) == "Điểm cầu.mkv" and unicodedata.is_normalized("NFC", safe_name(nfd))
    assert safe_name("..hidden") == "hidden" and safe_name("") == "file"
    long = safe_name("ư" * 300 + ".mp4")
    assert long.endswith(".mp4") and len(long.encode()) <= 200


def test_viewer_from_file_lists_sessions_plays_and_searches(filled, tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from archive.notes import add_note
    bag_dir = tmp_path / "bag"
    inspector = filled["archive"].catalog.add_user("thanh-tra", "inspector", "-", False)
    add_note(filled["archive"], filled["video"], 1.2, 2.0, "Công dân nêu <b>mức bồi thường</b>", inspector)
    backup_disk(filled["archive"], bag_dir)
    driver = browser
    driver.get((bag_dir / "index.html").as_uri())
    rows = driver.find_elements(By.CSS_SELECTOR, "#session-list tr")
    assert [r.get_attribute("data-session") for r in rows] == [filled["session"]]
    assert "khiếu nại thu hồi đất" in rows[0].text
    rows[0].click()
    tab = driver.find_element(By.CSS_SELECTOR, f"#recording-tabs button[data-recording='{filled['video']}']")
    tab.click()
    WebDriverWait(driver, 10).until(lambda d: d.execute_script(
        "return document.getElementById('player').readyState >= 1"))
    assert driver.execute_script("return document.getElementById('player').src").endswith(
        f"/access/{filled['video']}.mp4")
    words = driver.find_elements(By.CSS_SELECTOR, "#transcript .word")
    assert "bồi" in [w.text for w in words]
    target = next(w for w in words if w.text == "bồi")
    target.click()  # the corrected version has no word times for this segment: it seeks to 1.2 s
    WebDriverWait(driver, 10).until(lambda d: d.execute_script(
        "return document.getElementById('player').currentTime") > 1.3)
    t0 = driver.execute_script("return document.getElementById('player').currentTime")
    time.sleep(0.6)
    t1 = driver.execute_script("return document.getElementById('player').currentTime")
    assert t1 > t0, "playback did not advance"
    notes = driver.find_elements(By.CSS_SELECTOR, "#notes li")
    assert len(notes) == 1 and "Công dân nêu <b>mức bồi thường</b>" in notes[0].text  # as text
    assert "0:01–0:02" in notes[0].text and "thanh-tra" in notes[0].text
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "backup-viewer-session.png"))

    driver.find_element(By.ID, "back").click()
    box = driver.find_element(By.ID, "q")
    box.send_keys("boi thuong dat")
    driver.find_element(By.CSS_SELECTOR, "#search-form button").click()
    hits = driver.find_elements(By.CSS_SELECTOR, "#result-list li")
    assert hits and "bồi thường đất" in hits[0].text
    assert [m.text for m in hits[0].find_elements(By.TAG_NAME, "mark")][:2] == ["bồi", "thường"]
    driver.save_screenshot(str(ARTIFACTS / "backup-viewer-search.png"))
    hits[0].click()
    WebDriverWait(driver, 10).until(lambda d: d.execute_script(
        "return document.getElementById('player').currentTime") >= 1.2)

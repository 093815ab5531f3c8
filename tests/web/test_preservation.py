"""The preservation page (/preservation): who may open it, and that it shows what real backups
(`archive.backup.backup_disk`, `archive.disc.backup_disc`) and real fixity runs
(`archive.fixity.verify`, after a stored object was damaged as bit rot would) recorded."""
from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from archive import users
from archive.backup import backup_disk
from archive.disc import backup_disc
from archive.fixity import verify
from web import create_app
from web.preservation import state

from ..helpers import add_recording, flip_byte

MARKUP = "<img src=x onerror=alert(1)>"   # no slash: it can be a folder's name


@pytest.fixture(scope="module")
def preserved(site, tmp_path_factory):
    """On the module's site: a disk backup and a disc set (names carrying markup), then the
    sample video's stored original damaged, a disk backup that fails on it and one that never
    finished, a stray object put in the store, a session run and a whole run, and last a whole
    run that never finished (as if killed)."""
    arch = site["archive"]
    dest = tmp_path_factory.mktemp("backups") / f"ổ ngoài {MARKUP}"
    disk = backup_disk(arch, dest, actor="archivist")
    assert disk.complete, disk.problems
    disc = backup_disc(arch, tmp_path_factory.mktemp("discs"), media="cd", label=f"Bộ {MARKUP}",
                       actor="archivist")
    assert disc.complete, disc.problems
    damaged = arch.catalog.get_recording(site["recording"]).original_sha256
    flip_byte(arch.store.path(damaged))
    broken = backup_disk(arch, tmp_path_factory.mktemp("backups") / "after the damage", actor="archivist")
    assert not broken.complete
    unfinished = arch.catalog.start_backup("disk", "/media/usb-bị-rút-ra")  # as if killed
    stray = tmp_path_factory.mktemp("stray") / "stray.bin"
    stray.write_bytes(b"left by an interrupted ingest")
    stray_sha = arch.store.put_file(stray).sha256
    session_run = verify(arch, site["evil_session"], actor="archivist")
    whole = verify(arch, actor="archivist")
    assert not whole.ok and [p.sha256 for p in whole.problems] == [damaged]
    interrupted = arch.catalog.start_fixity_run("all objects")
    yield {"disk": disk, "disc": disc, "dest": str(dest.absolute()), "damaged": damaged,
           "broken": broken, "unfinished": unfinished, "stray": stray_sha, "session_run": session_run, "whole": whole, "interrupted": interrupted}
    flip_byte(arch.store.path(damaged))


def row(page: str, row_id: str) -> str:
    match = re.search(rf'<tr id="{row_id}">(.*?)</tr>', page, re.S)
    assert match, f"no row {row_id}"
    return " ".join(match.group(1).split())


def test_anonymous_is_sent_to_sign_in(app):
    response = app.test_client().get("/preservation")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/preservation")


@pytest.mark.parametrize("role", ["inspector", "handler"])
def test_readers_are_refused_and_see_no_link(as_role, role):
    client = as_role(role)
    response = client.get("/preservation")
    assert response.status_code == 403
    assert "Không có quyền truy cập" in response.get_data(as_text=True)
    assert 'href="/preservation"' not in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("role", ["archivist", "admin"])
def test_page_shows_backups_runs_damage_and_strays(as_role, site, preserved, role):
    client = as_role(role)
    response = client.get("/preservation")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'href="/preservation">Bảo quản</a>' in page            # the navigation link
    assert "Kho lưu trữ cần được chú ý" in page

    whole, damaged = preserved["whole"], preserved["damaged"]
    assert "Lần kiểm tra toàn vẹn gần nhất:" in page and "(hôm nay)" in page
    assert f"{whole.checked} đối tượng được kiểm tra, 1 lỗi" in page

    # the damaged object, named by its session (linked), recording and role, with what to do
    damaged_row = row(page, f"damaged-{damaged[:16]}")
    assert f'<a href="/sessions/{site["session"]}">{site["session"]}</a>' in damaged_row
    assert f"bản ghi {site['recording']} · bản gốc" in damaged_row
    assert f"bản ghi {site['recording']} · bản truy cập" in damaged_row   # the MP4 is its own access copy
    assert "nội dung đã thay đổi (hỏng)" in damaged_row and damaged in damaged_row
    assert "tcd restore &lt;bản sao lưu&gt;" in page
    assert f"tcd restore {html.escape(preserved['disc'].dest)}" in page   # the newest complete backup

    # the stray of the last whole run
    assert "Đối tượng lạ trong kho" in page and preserved["stray"] in page

    # the runs, newest first: the unfinished one, the whole run, the session's run
    assert page.index(f'id="run-{preserved["interrupted"]}"') < page.index(f'id="run-{whole.run_id}"') \
        < page.index(f'id="run-{preserved["session_run"].run_id}"')
    assert "Bị ngắt giữa chừng" in row(page, f"run-{preserved['interrupted']}")
    assert f"<td>toàn bộ kho</td> <td>{whole.checked}</td> <td><span class=\"outcome failed\">1</span></td> " \
           f"<td>1</td>" in row(page, f"run-{whole.run_id}")
    session_run = preserved["session_run"]
    assert f"<td>phiên {site['evil_session']}</td> <td>{session_run.checked}</td>" in \
        row(page, f"run-{session_run.run_id}")

    # the backups, newest first, their destinations and labels escaped
    disk, disc = preserved["disk"], preserved["disc"]
    assert page.index(f'id="backup-{disc.backup_id}"') < page.index(f'id="backup-{disk.backup_id}"')
    disk_row = row(page, f"backup-{disk.backup_id}")
    assert "Ổ đĩa ngoài" in disk_row and html.escape(preserved["dest"]) in disk_row and "Hoàn tất" in disk_row
    assert f"{len(disk.sessions)} phiên có nội dung mới" in disk_row
    assert f"{disk.written + disk.unchanged} tệp ({disk.written} mới ghi)" in disk_row
    disc_row = row(page, f"backup-{disc.backup_id}")
    assert "Đĩa quang" in disc_row and "Bộ &lt;img src=x onerror=alert(1)&gt;" in disc_row
    assert f"{len(disc.sessions)} phiên</div>" in disc_row and "1 đĩa CD" in disc_row
    broken = row(page, f"backup-{preserved['broken'].backup_id}")
    assert "Thất bại" in broken and html.escape(preserved["broken"].problems[0]) in broken
    assert "Chưa xong (đang chạy hoặc đã bị ngắt)" in row(page, f"backup-{preserved['unfinished']}")
    assert page.index(f'id="backup-{preserved["unfinished"]}"') < page.index(f'id="backup-{disc.backup_id}"')
    assert MARKUP not in page


@pytest.fixture
def fresh(archive):
    """A site of its own with nothing run yet: one tiny recording and an archivist."""
    add_recording(archive, archive.home / "a.wav", {"title": "Phiên nhỏ", "held_on": "2025-03-04"},
                  content=b"RIFF tiny stand-in", media_type="wav")
    users.add_user(archive, "lan", "archivist", "mật-khẩu-đủ-dài")
    app = create_app(archive, {"TESTING": True, "WTF_CSRF_ENABLED": False})
    client = app.test_client()
    assert client.post("/login", data={"username": "lan", "password": "mật-khẩu-đủ-dài"}).status_code == 302
    return archive, client


def test_nothing_run_yet_says_so_and_names_the_commands(fresh):
    _, client = fresh
    page = client.get("/preservation").get_data(as_text=True)
    assert "Chưa từng chạy kiểm tra toàn vẹn toàn bộ kho. Hãy chạy lệnh <code>tcd verify</code>" in page
    assert "Chưa có lần kiểm tra toàn vẹn nào" in page
    assert "Chưa có bản sao lưu nào" in page and "tcd backup disk" in page
    assert "Không có đối tượng nào bị hỏng" in page and "Kho lưu trữ cần được chú ý" in page


def test_a_session_run_is_not_a_whole_run_and_a_sound_archive_is_called_safe(fresh, tmp_path):
    archive, client = fresh
    session = archive.catalog.list_sessions()[0].id
    verify(archive, session)
    page = client.get("/preservation").get_data(as_text=True)
    assert "Chưa từng chạy kiểm tra toàn vẹn toàn bộ kho" in page and f"phiên {session}" in page

    assert backup_disk(archive, tmp_path / "disk").complete
    whole = verify(archive)
    assert whole.ok
    page = client.get("/preservation").get_data(as_text=True)
    assert "Kho lưu trữ an toàn" in page and "(hôm nay)" in page
    assert "Đối tượng lạ trong kho" not in page

    # 91 days on, the same runs no longer say the archive is safe
    finished = dt.datetime.fromisoformat(archive.catalog.last_finished_fixity_run("all objects")["finished_at"])
    later = state(archive.catalog, now=finished + dt.timedelta(days=91))
    assert (later["whole_age"], later["whole_stale"], later["safe"]) == (91, True, False)
    assert state(archive.catalog, now=finished + dt.timedelta(days=90))["safe"]


def test_the_page_in_a_browser(server, browser, preserved, helpers):
    """Real Chromium, signed in as the archivist: the page renders under the CSP, the damaged
    object's session link works, and the markup in backup names stays text."""
    from selenium.webdriver.common.by import By

    from ..conftest import ARTIFACTS, wait_for
    browser.get(f"{server}/login")
    browser.find_element(By.NAME, "username").send_keys("archivist")
    browser.find_element(By.NAME, "password").send_keys(helpers.PASSWORD)
    browser.find_element(By.CSS_SELECTOR, ".login button[type=submit]").click()
    wait_for(lambda: "/login" not in browser.current_url
             and browser.execute_script("return document.readyState") == "complete")
    browser.find_element(By.LINK_TEXT, "Bảo quản").click()
    verdict = wait_for(lambda: browser.find_elements(By.ID, "verdict"))[0]
    assert "cần được chú ý" in verdict.text
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0, "markup stayed text"
    browser.save_screenshot(str(ARTIFACTS / "web-preservation.png"))
    messages = [entry["message"] for entry in browser.get_log("browser")]
    assert not [m for m in messages if "Content Security Policy" in m or "Refused" in m], messages
    browser.find_element(By.CSS_SELECTOR, "table.damaged a").click()
    wait_for(lambda: "/sessions/" in browser.current_url)

"""The web server's state lives in the catalog, so several server processes behave as one: failed
sign-ins counted by one throttle the others, a play audited by one is not audited again by
another in the same sitting, and the uploads of every process show on every jobs page, an upload
whose process died showing as failed with where its files wait.

"Another process" is either a real one (a Python child running the application on the same data
directory) or a second `open_archive` of that directory in this process: its own catalog
connections, as a second process has."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest

from archive import open_archive
from archive.errors import InvalidInput
from web import create_app
from web.media import SittingMarks
from web.throttle import Throttle

from ..conftest import wait_for

# A server process for these tests: the application on the data directory in argv[1], driven
# through Flask's test client (requests served in that process), then one action.
CHILD = r"""
import json, os, re, sys, time
from archive import open_archive
from web import create_app

home, action, config, *args = sys.argv[1:]
arch = open_archive(home, env={})
if action != "count-failures":
    app = create_app(arch, {"TESTING": True, **json.loads(config)})
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = os.environ["TCD_TEST_ADDRESS"]
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

def token(path):
    return TOKEN.search(client.get(path).get_data(as_text=True)).group(1)

def sign_in(name, password):
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": token("/login")}).status_code

if action == "guess":  # wrong passwords for one user name
    print(json.dumps([sign_in(args[0], "không phải mật khẩu") for _ in range(int(args[1]))]))
elif action == "count-failures":  # the throttle alone, as fast as it goes, from the moment it is told
    from web.throttle import Throttle
    throttle = Throttle(arch.catalog, args[0], free_tries=10**9, delay=1.0, max_delay=1.0)
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    stop = start + float(args[2])
    time.sleep(max(0.0, start - time.time()))
    counted = 0
    while time.time() < stop:
        throttle.failed(args[1])
        counted += 1
    print(counted)
elif action in ("upload", "upload-and-die"):
    assert sign_in("archivist", os.environ["TCD_TEST_PASSWORD"]) == 302
    with open(args[0], "rb") as f:
        response = client.post("/upload", content_type="multipart/form-data", data={
            "csrf_token": token("/upload"), "title": "Phiên tải lên ở tiến trình khác",
            "held_on": "2025-06-01", "files": [(f, os.path.basename(args[0]))]})
    upload_id = response.headers["Location"].rsplit("=", 1)[1]
    print(upload_id, flush=True)
    if action == "upload-and-die":
        os._exit(0)  # the server process ends while its upload is queued or running
    assert app.extensions["tcd_uploads"].wait(upload_id, timeout=120)
"""


def run_child(site, helpers, action: str, *args, config: dict | None = None, address: str = "10.9.0.1",
              wait: bool = True):
    """Run CHILD on the site's data directory; its output, or the running process."""
    command = [sys.executable, "-c", CHILD, str(site["archive"].home), action, json.dumps(config or {}),
               *map(str, args)]
    env = {**os.environ, "TCD_TEST_ADDRESS": address, "TCD_TEST_PASSWORD": helpers.PASSWORD}
    if not wait:
        return subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def second(site):
    """The same data directory opened again: what another server process has."""
    arch = open_archive(site["archive"].home, env={})
    yield arch
    arch.catalog.close()


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def sign_in_at(app, helpers, name: str, address: str, password: str | None = None):
    client = client_at(app, address)
    response = helpers.sign_in(client, name, password or helpers.PASSWORD)
    return client, response


# -- sign-in throttling -------------------------------------------------------------------------

def test_failures_in_one_process_throttle_sign_in_in_another(site, helpers):
    config = {"LOGIN_FREE_TRIES_USER": 2, "LOGIN_DELAY": 30.0}
    app = create_app(site["archive"], {"TESTING": True, **config})
    try:
        assert json.loads(run_child(site, helpers, "guess", "inspector", 2, config=config)) == [401, 401]
        client, response = sign_in_at(app, helpers, "inspector", "10.9.0.2")  # right password, other address
        assert response.status_code == 429 and int(response.headers["Retry-After"]) > 20
        _, response = sign_in_at(app, helpers, "handler", "10.9.0.2")
        assert response.status_code == 302  # only that user name is held up
    finally:  # the counts are in the module's shared catalog: never leave them to the next test
        app.extensions["tcd_throttle"]["user"].succeeded("inspector")
    assert helpers.sign_in(client, "inspector").status_code == 302


def test_failures_from_an_address_count_in_every_process(site, second, helpers):
    config = {"TESTING": True, "LOGIN_FREE_TRIES_ADDRESS": 3, "LOGIN_FREE_TRIES_USER": 100}
    first_app, second_app = create_app(site["archive"], config), create_app(second, config)
    for name in ("khach1", "khach2", "khach3"):
        assert sign_in_at(first_app, helpers, name, "10.9.1.1", "đoán mò")[1].status_code == 401
    assert sign_in_at(second_app, helpers, "admin", "10.9.1.1")[1].status_code == 429
    assert sign_in_at(second_app, helpers, "admin", "10.9.1.2")[1].status_code == 302


def test_two_processes_counting_at_once_lose_no_failure(site, helpers):
    children = [run_child(site, helpers, "count-failures", "race", "k", 1.0, wait=False)
                for _ in range(2)]
    for child in children:  # both have started: the moment they are told makes their counting overlap
        ready = child.stdout.readline()
        assert ready == "ready\n", ready + child.communicate(timeout=60)[1]
    start = time.time() + 0.2
    for child in children:
        child.stdin.write(f"{start}\n")
        child.stdin.flush()
    counted = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        counted.append(int(out))
    assert min(counted) > 20  # both really counted
    assert site["archive"].catalog.sign_in_failure("race", "k")["failures"] == sum(counted)


def test_throttle_forgets_quiet_keys_and_keeps_a_bounded_table(site):
    catalog = site["archive"].catalog
    now = [1000.0]
    throttle = Throttle(catalog, "bound", free_tries=1, delay=10.0, max_delay=10.0, forget_after=60.0,
                        clock=lambda: now[0], max_keys=5)

    def rows() -> int:
        return catalog.db.execute("SELECT count(*) FROM sign_in_failures WHERE scope = 'bound'").fetchone()[0]
    for number in range(12):  # guessing with ever new names
        now[0] += 1.0
        throttle.failed(f"name-{number}")
        assert rows() <= 5
    assert [throttle.wait_for(f"name-{n}") > 0 for n in (0, 6, 7, 11)] == [False, False, True, True]
    now[0] += 61.0  # all quiet and unlocked: the next new name clears them
    throttle.failed("late")
    assert rows() == 1 and throttle.wait_for("late") == 10.0
    throttle.failed("late")  # an existing key is counted on, nothing pruned
    assert catalog.sign_in_failure("bound", "late")["failures"] == 2


# -- plays audited once per sitting ------------------------------------------------------------

def test_a_play_is_audited_once_per_sitting_whichever_process_serves_it(site, second, helpers):
    catalog = site["archive"].catalog
    first_app = create_app(site["archive"], {"TESTING": True})
    second_app = create_app(second, {"TESTING": True})

    def plays() -> int:
        return sum(e["action"] == "play" for e in catalog.audit_entries(actor="handler"))

    def same_sitting(client, app):  # the browser's cookie, sent to the other process
        other = app.test_client()
        other.set_cookie("tcd_session", client.get_cookie("tcd_session").value)
        return other

    def play(client, recording):
        response = client.get(f"/media/{recording}", headers={"Range": "bytes=0-99"})
        assert response.status_code == 206
        response.get_data()

    before = plays()
    on_first, response = sign_in_at(first_app, helpers, "handler", "10.9.2.1")
    assert response.status_code == 302
    on_second = same_sitting(on_first, second_app)
    play(on_first, site["recording"])
    play(on_second, site["recording"])
    play(on_first, site["recording"])
    assert plays() == before + 1
    play(on_second, site["evil_recording"])
    play(on_first, site["evil_recording"])
    assert plays() == before + 2
    again, _ = sign_in_at(second_app, helpers, "handler", "10.9.2.1")  # a new sitting
    play(again, site["recording"])
    play(same_sitting(again, first_app), site["recording"])
    assert plays() == before + 3

    with on_first.session_transaction() as session:
        token = session["tcd_sid"]
    marks = [r[0] for r in catalog.db.execute("SELECT sitting FROM sitting_marks")]
    user_id = str(catalog.get_user("handler").id)
    assert hashlib.sha256(f"{user_id}\0{token}".encode()).hexdigest() in marks
    assert not any(token in mark for mark in marks)  # the sign-in token itself is not stored


def test_marks_of_ended_sittings_are_forgotten(site):
    catalog = site["archive"].catalog
    assert catalog.mark_sitting("old-sitting", "play", "r1")
    assert not catalog.mark_sitting("old-sitting", "play", "r1")
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).replace(microsecond=0).isoformat()
    assert catalog.mark_sitting("new-sitting", "play", "r1", forget_before=later)
    assert catalog.db.execute("SELECT count(*) FROM sitting_marks WHERE sitting = 'old-sitting'").fetchone()[0] == 0
    # the server asks for that pruning at most once a minute per process
    marks = SittingMarks(catalog, dt.timedelta(hours=12))
    assert marks._forget_before() is not None and marks._forget_before() is None


def test_a_mark_the_catalog_did_not_take_is_asked_again(site, monkeypatch):
    marks = SittingMarks(site["archive"].catalog, dt.timedelta(hours=12))

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")
    with monkeypatch.context() as patch:
        patch.setattr(site["archive"].catalog, "mark_sitting", locked)
        with pytest.raises(sqlite3.OperationalError):
            marks.first("1", "token-x", "play", "r9")
    assert marks.first("1", "token-x", "play", "r9")  # not taken as seen: this is still the first
    assert not marks.first("1", "token-x", "play", "r9")


# -- uploads --------------------------------------------------------------------------------------

def test_an_upload_in_one_process_shows_on_the_jobs_of_another(site, second, helpers, tmp_path):
    notes = tmp_path / "bien-ban-khac.mp4"
    notes.write_bytes("Biên bản — không phải video".encode())
    upload_id = run_child(site, helpers, "upload", notes)
    app = create_app(second, {"TESTING": True})
    wait_for(lambda: second.catalog.get_upload(upload_id)["status"] not in ("queued", "running"),
             timeout=5, what="the other process's upload to end")  # watched in the catalog
    client, _ = sign_in_at(app, helpers, "archivist", "10.9.3.1")
    page = client.get("/jobs").get_data(as_text=True)
    assert f'data-upload="{upload_id}"' in page and "bien-ban-khac.mp4" in page and "Bị từ chối" in page
    mine = next(u for u in client.get("/api/jobs").get_json()["uploads"] if u["id"] == upload_id)
    assert mine["status"] == "done" and mine["user"] == "archivist" and mine["names"] == ["bien-ban-khac.mp4"]
    assert mine["outcomes"][0]["status"] == "refused" and mine["outcomes"][0]["status_label"].startswith("Bị từ chối")
    assert mine["sizes"] == [notes.stat().st_size] and mine["finished_at"]
    assert not {"folder", "paths", "owner_pid", "owner_started"} & set(mine)


def test_an_upload_whose_process_died_shows_as_failed(site, second, helpers, sample):
    upload_id = run_child(site, helpers, "upload-and-die", sample["tone"])
    left = site["archive"].catalog.get_upload(upload_id)
    assert left["status"] in ("queued", "running")  # as the dead process left it
    app = create_app(second, {"TESTING": True})  # a process starting looks for such uploads
    client, _ = sign_in_at(app, helpers, "archivist", "10.9.4.1")
    mine = next(u for u in client.get("/api/jobs").get_json()["uploads"] if u["id"] == upload_id)
    assert mine["status"] == "failed" and mine["finished_at"]
    folder = f"staging/uploads/{upload_id}"
    assert "Máy chủ đã dừng" in mine["message"] and folder in mine["message"]
    assert (site["archive"].home / folder / sample["tone"].name).is_file()  # where the message says
    page = client.get("/jobs").get_data(as_text=True)
    row = re.search(rf'<tr data-upload="{upload_id}".*?</tr>', page, re.S).group(0)
    assert "<td>Lỗi</td>" in row and folder in row


def test_an_upload_of_a_live_process_is_left_alone_but_not_of_a_reused_pid(site):
    from web.uploads import UploadWorker, process_started
    catalog = site["archive"].catalog
    pid = os.getpid()
    task = {"user": "archivist", "names": ["a.mp4"], "sizes": [1], "session_id": None, "meta": None,
            "point": "", "status": "running", "outcomes": [], "message": "", "folder": "/nowhere",
            "created_at": "2025-06-01T00:00:00+00:00"}
    catalog.add_upload({**task, "id": "live-owner"}, pid, process_started(pid), keep=200)
    try:
        catalog.add_upload({**task, "id": "reused-pid"}, pid, process_started(pid) - 3600, keep=200)
        ended = subprocess.Popen([sys.executable, "-c", "pass"])  # not waited for: a zombie once it ends
        catalog.add_upload({**task, "id": "zombie-owner"}, ended.pid, process_started(ended.pid), keep=200)
        zombie = psutil.Process(ended.pid)
        wait_for(lambda: zombie.status() == psutil.STATUS_ZOMBIE, timeout=10, step=0.05,
                 what="the ended child to be a zombie")
        UploadWorker(site["archive"])
        ended.wait()
        assert catalog.get_upload("live-owner")["status"] == "running"
        assert catalog.get_upload("reused-pid")["status"] == "failed"
        assert catalog.get_upload("zombie-owner")["status"] == "failed"
    finally:  # this process lives on: nothing else would end its upload in the module's catalog
        catalog.update_upload("live-owner", status="failed", message="dọn dẹp",
                              finished_at="2025-06-01T00:00:01+00:00")


def test_only_the_newest_finished_uploads_are_kept(tmp_path):
    catalog = open_archive(tmp_path / "tcd-data", env={}).catalog
    pid = os.getpid()
    base = {"user": "a", "names": [], "sizes": [], "session_id": None, "meta": {"title": "Phiên"},
            "point": "", "outcomes": [], "message": "", "folder": "/x", "created_at": "2025-06-01T00:00:00+00:00"}
    catalog.add_upload({**base, "id": "unfinished", "status": "queued"}, pid, 0.0, keep=3)
    for number in range(6):
        catalog.add_upload({**base, "id": f"u{number}", "status": "done"}, pid, 0.0, keep=3)
    kept = [u["id"] for u in catalog.list_uploads()]
    assert kept == ["u5", "u4", "u3", "unfinished"]
    assert catalog.get_upload("u5")["meta"] == {"title": "Phiên"}
    with pytest.raises(InvalidInput, match="no changeable field"):
        catalog.update_upload("u5", folder="/elsewhere")
    catalog.close()


def test_the_upload_worker_outlives_a_catalog_that_did_not_answer(site, monkeypatch, caplog):
    from web.uploads import UploadWorker
    worker = UploadWorker(site["archive"])
    catalog = site["archive"].catalog
    update = catalog.update_upload

    def refuse_first(upload_id, **changes):
        if upload_id == "unrecorded":
            raise sqlite3.OperationalError("database is locked")
        update(upload_id, **changes)
    monkeypatch.setattr(catalog, "update_upload", refuse_first)
    for upload_id in ("unrecorded", "recorded"):
        folder = site["archive"].settings.staging_dir / "uploads" / upload_id
        folder.mkdir(parents=True)
        (folder / "ghi-chu.mp4").write_bytes(b"not media")
        worker.submit({"id": upload_id, "user": "archivist", "names": ["ghi-chu.mp4"],
                       "paths": [folder / "ghi-chu.mp4"], "folder": str(folder), "session_id": None,
                       "meta": {"title": "Phiên thử", "held_on": "2025-06-02"}, "point": "",
                       "status": "queued", "outcomes": [], "message": "", "created_at": "2025-06-02T00:00:00+00:00",
                       "finished_at": None, "sizes": [9]})
    assert worker.wait("recorded", timeout=60)
    assert catalog.get_upload("recorded")["status"] == "done"
    assert "upload unrecorded could not be recorded" in caplog.text
    assert catalog.get_upload("unrecorded")["status"] == "failed"  # its own process said how it ended


def test_a_dead_upload_whose_files_the_pipeline_took_says_where_they_went(site, tmp_path):
    from types import SimpleNamespace

    from web.uploads import UploadWorker
    folder = site["archive"].home / "staging" / "uploads" / "taken-by-its-job"
    folder.mkdir(parents=True)
    upload = {"folder": str(folder), "status": "running"}
    message = UploadWorker._orphan_message(SimpleNamespace(archive=site["archive"]), upload)
    assert "đã được chuyển vào hàng nạp" in message and "tcd ingest --resume" in message
    (folder / "a.mp4").write_bytes(b"still here")
    message = UploadWorker._orphan_message(SimpleNamespace(archive=site["archive"]), upload)
    assert "staging/uploads/taken-by-its-job" in message

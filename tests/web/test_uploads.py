"""Uploads: streamed into staging, handed to the real ingest pipeline; a file that is not media is
refused, kept in quarantine and the uploader is told why; the jobs page and its JSON show progress."""
from __future__ import annotations

import io
import json

import ffmpeg
import pytest

from web import create_app


@pytest.fixture
def archivist(as_role):
    return as_role("archivist")


def upload(client, helpers, files, **fields):
    token = helpers.csrf_token(client, "/upload")
    data = {"csrf_token": token, **fields, "files": files}
    return client.post("/upload", data=data, content_type="multipart/form-data")


def test_not_media_is_refused_and_quarantined(archivist, helpers, site):
    response = upload(archivist, helpers, [(io.BytesIO("Biên bản họp — không phải video".encode()), "bien-ban.mp4")],
                      title="Phiên thử tải lên", held_on="2025-04-01")
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "/jobs?upload=" in response.headers["Location"]
    upload_id = response.headers["Location"].rsplit("=", 1)[1]
    data = archivist.get("/api/jobs").get_json()
    mine = next(u for u in data["uploads"] if u["id"] == upload_id)
    assert mine["status"] == "done" and mine["names"] == ["bien-ban.mp4"]
    outcome = mine["outcomes"][0]
    assert outcome["status"] == "refused" and outcome["message"]
    assert outcome["status_label"].startswith("Bị từ chối")
    job = next(j for j in data["jobs"] if j["id"] == outcome["job_id"])
    assert job["status"] == "refused" and "source" not in job
    quarantine = site["archive"].settings.quarantine_dir
    kept = [p for p in quarantine.iterdir() if p.name.endswith("bien-ban.mp4")]
    assert kept and kept[0].read_bytes().startswith("Biên bản".encode())
    assert json.loads(kept[0].with_name(kept[0].name + ".json").read_text())["reason"] == outcome["message"]
    page = archivist.get(response.headers["Location"]).get_data(as_text=True)
    assert "Bị từ chối" in page and outcome["message"].split("'")[0][:30] in page
    # the uploaded copy is gone from the uploads folder: the pipeline keeps its own in quarantine
    assert not list((site["archive"].settings.staging_dir / "uploads").glob(f"{upload_id}/*"))
    entry = [e for e in site["archive"].catalog.audit_entries(actor="archivist") if e["action"] == "upload"][-1]
    assert json.loads(entry["detail"])["files"] == ["bien-ban.mp4"]


def test_media_upload_becomes_a_recording(site, helpers, tmp_path):
    """In the background, as the server runs it: the worker thread ingests, the page polls."""
    recording = tmp_path / "upload.m4a"
    (ffmpeg.input("sine=f=660:r=44100:d=2", f="lavfi")
     .output(str(recording), acodec="aac").overwrite_output().run(quiet=True))
    app = create_app(site["archive"], {"TESTING": True})
    client = app.test_client()
    helpers.sign_in(client, "archivist")
    with open(recording, "rb") as f:
        response = upload(client, helpers, [(f, "../../etc/Ghi âm điểm cầu xã.m4a")],
                          title="Phiên tải lên", held_on="2025-05-06", case_code="KN-2025-077",
                          complainants="Trần Thị Bình; Lê Văn Cường", point="UBND xã An Phú")
    upload_id = response.headers["Location"].rsplit("=", 1)[1]
    assert app.extensions["tcd_uploads"].wait(upload_id, timeout=120)
    mine = next(u for u in client.get("/api/jobs").get_json()["uploads"] if u["id"] == upload_id)
    outcome = mine["outcomes"][0]
    assert mine["names"] == ["Ghi âm điểm cầu xã.m4a"]
    assert outcome["status"] == "done", outcome
    catalog = site["archive"].catalog
    session = catalog.get_session(outcome["session_id"])
    assert session.case_code == "KN-2025-077" and session.complainants == ["Trần Thị Bình", "Lê Văn Cường"]
    rec = catalog.get_recording(outcome["recording_id"])
    assert rec.point == "UBND xã An Phú" and rec.original_name == "Ghi âm điểm cầu xã.m4a"
    assert site["archive"].store.rehash(rec.original_sha256) == rec.original_sha256
    assert recording.read_bytes() == b"".join(site["archive"].store.read_range(rec.original_sha256, 0, 10**9))
    assert rec.access_sha256  # the pipeline made the access copy
    assert client.get(f"/media/{rec.id}", headers={"Range": "bytes=0-3"}).status_code == 206


def test_same_recording_twice_is_one_recording(archivist, helpers, sample, site):
    with open(sample["tone"], "rb") as f:  # already the recording of the second test session
        response = upload(archivist, helpers, [(f, "lan-hai.m4a")], session_id=site["evil_session"])
    upload_id = response.headers["Location"].rsplit("=", 1)[1]
    mine = next(u for u in archivist.get("/api/jobs").get_json()["uploads"] if u["id"] == upload_id)
    assert mine["outcomes"][0]["status"] == "duplicate"
    assert mine["outcomes"][0]["recording_id"] == site["evil_recording"]
    assert "Đã có trong kho" in archivist.get(response.headers["Location"]).get_data(as_text=True)


def test_upload_needs_a_file_and_a_known_session(archivist, helpers):
    response = upload(archivist, helpers, [])
    assert response.status_code == 400 and "ít nhất một tệp" in response.get_data(as_text=True)
    response = upload(archivist, helpers, [(io.BytesIO(b"x"), "a.mp4")], session_id="TCD-1999-0009")
    assert response.status_code == 400 and "Không có phiên TCD-1999-0009" in response.get_data(as_text=True)


def test_files_stream_into_staging_not_memory(site, helpers):
    """The multipart parser writes each file part into staging/uploads/.incoming as it reads."""
    app = create_app(site["archive"], {"TESTING": True})
    seen = {}

    @app.route("/upload-probe", methods=["POST"])
    def probe():  # a view added for this test only, to look at the parsed request
        from flask import request
        part = request.files["files"]
        seen["path"] = part.stream.name
        seen["size"] = part.stream.seek(0, 2)
        return "ok"
    client = app.test_client()
    helpers.sign_in(client, "archivist")
    big = io.BytesIO(b"\0" * (1024 * 1024))
    token = helpers.csrf_token(client, "/upload")
    # only /upload lifts the body limit; this path keeps the small one
    response = client.post("/upload-probe", data={"csrf_token": token, "files": (big, "x.bin")},
                           content_type="multipart/form-data")
    assert response.status_code == 200
    incoming = site["archive"].settings.staging_dir / "uploads" / ".incoming"
    assert str(seen["path"]).startswith(str(incoming)) and seen["size"] == 1024 * 1024
    assert not list(incoming.iterdir())  # removed after the request


def test_body_limit_is_lifted_only_for_those_who_may_upload(site, helpers, as_role):
    big = io.BytesIO(b"\0" * (3 * 1024 * 1024))
    inspector = as_role("inspector")
    token = helpers.csrf_token(inspector, "/")
    response = inspector.post("/upload", data={"csrf_token": token, "files": (big, "x.mp4")},
                              content_type="multipart/form-data")
    assert response.status_code == 413
    assert not list((site["archive"].settings.staging_dir / "uploads" / ".incoming").glob("*"))


def test_jobs_page_and_its_json(archivist, site):
    catalog = site["archive"].catalog
    job = catalog.create_job(source="/nowhere/hop-thu-hai.mp4", source_name="họp-thứ-hai.mp4",
                             session_id=site["session"])
    catalog.update_job(job.id, stage="transcode", status="running", progress=0.4)
    page = archivist.get("/jobs").get_data(as_text=True)
    assert "Công việc xử lý" in page and "/static/jobs.js" in page
    row = page[page.index(f'data-job="{job.id}"'):].split("</tr>")[0]
    assert "họp-thứ-hai.mp4" in row and "Tạo bản để xem" in row and "Đang xử lý" in row
    data = next(j for j in archivist.get("/api/jobs").get_json()["jobs"] if j["id"] == job.id)
    assert data["progress"] == 0.4 and data["stage_label"] == "Tạo bản để xem"
    assert "/nowhere" not in json.dumps(data)
    catalog.update_job(job.id, status="failed", message="test over")


@pytest.mark.parametrize("error, status, said", [
    ("ENOSPC", 507, "Ổ đĩa của máy chủ lưu trữ đã đầy nên chưa nhận được tệp"),
    ("EIO", 500, "Đã xảy ra lỗi ngoài dự kiến"),   # any other disk error stays an unexpected one
])
def test_a_full_disk_while_the_upload_streams_is_said_and_leaves_nothing(archivist, helpers, site, monkeypatch,
                                                                          error, status, said):
    import errno
    from web import uploads
    make_part = uploads.tempfile.NamedTemporaryFile

    class FillingFile:
        """A staging part file on a disk that fills after 64 KiB."""
        def __init__(self, *args, **kwargs):
            self._file, self._written = make_part(*args, **kwargs), 0

        def write(self, data):
            self._written += len(data)
            if self._written > 64 * 1024:
                raise OSError(getattr(errno, error), error)
            return self._file.write(data)

        def __getattr__(self, name):
            return getattr(self._file, name)

    catalog = site["archive"].catalog
    jobs_before = len(catalog.list_jobs(limit=100000))
    uploads_before = len([e for e in catalog.audit_entries() if e["action"] == "upload"])
    monkeypatch.setattr(uploads.tempfile, "NamedTemporaryFile", FillingFile)
    response = upload(archivist, helpers, [(io.BytesIO(b"\0" * (1024 * 1024)), "phiên lớn.mp4")],
                      title="Phiên đầy đĩa")
    page = response.get_data(as_text=True)
    assert response.status_code == status, page
    assert said in page
    incoming = site["archive"].settings.staging_dir / "uploads" / ".incoming"
    assert not list(incoming.iterdir()), "the part written before the disk filled is removed"
    assert len(catalog.list_jobs(limit=100000)) == jobs_before
    assert len([e for e in catalog.audit_entries() if e["action"] == "upload"]) == uploads_before

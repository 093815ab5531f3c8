"""Uploads by archivists and the jobs page.

An uploaded file streams straight into `staging/uploads/<id>/` as the request is read (never into
memory, never into /tmp), with no size limit for users who may upload and a small one for every
other request. The upload is then handed to the ingest pipeline (`ingest.pipeline.ingest_paths`)
by one background thread, one upload after another; the jobs page polls /api/jobs and shows each
job's stage and progress, and for a refused file the reason (the pipeline keeps it in quarantine).

Uploads are kept in the catalog (`uploads`), so the jobs page of every server process shows them
all; the thread that ingests one runs in the process that received it, which the catalog names
(its pid and start time). An upload whose process ended before it finished is marked failed, with
where its files wait, by the next process that looks.
"""
from __future__ import annotations

import logging
import os
import queue
import secrets
import tempfile
import threading
import unicodedata
from collections import OrderedDict
from pathlib import Path

import psutil
from flask import (Blueprint, Request, current_app, g, redirect, render_template, request,
                   url_for)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import SelectField, StringField
from wtforms.validators import AnyOf, Length, Optional, Regexp

from archive.catalog import now

from .auth import archive, record, require
from .markup import CATEGORIES

bp = Blueprint("uploads", __name__)
log = logging.getLogger("tcd.web")

SMALL_BODY = 2 * 1024 * 1024  # any request but an upload: forms are a few kilobytes
KEEP_UPLOADS = 200            # uploads shown on the jobs page; older finished ones are forgotten
FINAL = ("done", "duplicate", "refused")  # the pipeline has its own copy: ours can go
UNFINISHED = ("queued", "running")
PRIVATE = ("paths", "folder", "owner_pid", "owner_started")  # server details, not for the browser


def _may_upload() -> bool:
    return current_user.is_authenticated and current_user.can("upload")


class StagingRequest(Request):
    """A request whose uploaded files are written into the staging folder as they arrive."""

    @property
    def max_content_length(self) -> int | None:
        if self.path == "/upload" and self.method == "POST" and _may_upload():
            return None
        return SMALL_BODY

    @max_content_length.setter
    def max_content_length(self, value) -> None:
        self._max_content_length = value

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        folder = archive().settings.staging_dir / "uploads" / ".incoming"
        folder.mkdir(parents=True, exist_ok=True)
        stream = tempfile.NamedTemporaryFile(dir=folder, prefix="part-", delete=False)
        g.setdefault("upload_parts", []).append(Path(stream.name))
        return stream


def clean_name(filename: str | None) -> str:
    """A file name from a browser, reduced to a safe last component (Vietnamese letters kept)."""
    name = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    if not name:
        name = "upload"
    if len(name.encode("utf-8")) > 200:  # most file systems allow 255 bytes
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot and stem else ""
        base = (stem if ext else name).encode("utf-8")[:180].decode("utf-8", "ignore")
        name = f"{base}.{ext}" if ext else base
    return name


class UploadForm(FlaskForm):
    files = MultipleFileField("Tệp ghi hình hoặc ghi âm")
    session_id = StringField("Thêm vào phiên đã có (mã phiên)", validators=[
        Optional(), Regexp(r"^[\w-]{1,40}$", message="Mã phiên chỉ gồm chữ, số và dấu gạch ngang.")])
    title = StringField("Tên phiên", validators=[Optional(), Length(max=300, message="Tên phiên quá dài.")])
    held_on = StringField("Ngày tiếp", validators=[
        Optional(), Regexp(r"^\d{4}-\d{2}-\d{2}$", message="Ngày tiếp viết theo dạng YYYY-MM-DD.")])
    case_code = StringField("Mã vụ việc", validators=[Optional(), Length(max=60, message="Mã vụ việc quá dài.")])
    category = SelectField("Tiêu chí vụ việc", choices=[("", "—")] + CATEGORIES, default="",
                           validate_choice=False,
                           validators=[AnyOf([""] + [c for c, _ in CATEGORIES], message="Tiêu chí không hợp lệ.")])
    complainants = StringField("Người khiếu nại (cách nhau bởi dấu ;)",
                               validators=[Optional(), Length(max=500, message="Danh sách quá dài.")])
    point = StringField("Điểm cầu ghi hình", validators=[Optional(), Length(max=200, message="Tên điểm cầu quá dài.")])


def process_started(pid: int) -> float | None:
    """When process `pid` started (epoch seconds); None if it has ended (a zombie has)."""
    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process.create_time()
    except psutil.Error:
        return None


class UploadWorker:
    """One thread that runs this process's uploads through the ingest pipeline in the order they
    came; the uploads themselves, and how they went, are in the catalog for every process."""

    def __init__(self, archive_):
        self.archive = archive_
        self.tasks: dict[str, dict] = {}  # this process's uploads until they have run (with paths)
        self.events: OrderedDict[str, threading.Event] = OrderedDict()
        self.queue: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.reap()

    def add(self, task: dict) -> None:
        """Record a new upload as this process's, to run here."""
        pid = os.getpid()  # now, not at creation: a pre-forked worker has its own
        self.archive.catalog.add_upload(task, pid, process_started(pid) or 0.0, KEEP_UPLOADS)
        with self.lock:
            self.tasks[task["id"]] = task
            self.events[task["id"]] = threading.Event()
            while len(self.events) > KEEP_UPLOADS:
                self.events.popitem(last=False)

    def submit(self, task: dict) -> None:
        self.add(task)
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="tcd-uploads", daemon=True)
                self.thread.start()
        self.queue.put(task["id"])

    def wait(self, upload_id: str, timeout: float | None = None) -> bool:
        """Until this process's upload has run (True), or the timeout passes or the upload is not
        this process's (False)."""
        event = self.events.get(upload_id)
        return event.wait(timeout) if event else False

    def snapshot(self) -> list[dict]:
        """The newest uploads first, of every server process, without server details. Uploads
        whose process ended are marked failed first (one query when none is unfinished)."""
        self.reap()
        return [{k: v for k, v in upload.items() if k not in PRIVATE}
                for upload in self.archive.catalog.list_uploads(limit=KEEP_UPLOADS)]

    def reap(self) -> int:
        """Mark failed the uploads left queued or running by a server process that has ended."""
        reaped = 0
        for upload in self.archive.catalog.unfinished_uploads():
            started = process_started(upload["owner_pid"])
            if started is not None and abs(started - upload["owner_started"]) < 0.5:
                continue  # its process still runs it
            if self.archive.catalog.fail_unfinished_upload(upload["id"], self._orphan_message(upload)):
                log.warning("upload %s was %s when its server process %s ended", upload["id"],
                            upload["status"], upload["owner_pid"])
                reaped += 1
        return reaped

    def _orphan_message(self, upload: dict) -> str:
        folder = Path(upload["folder"])
        where = folder.relative_to(self.archive.home) if folder.is_relative_to(self.archive.home) else folder
        if upload["status"] == "queued":  # no ingest job was made yet
            return (f"Máy chủ đã dừng trước khi xử lý lần tải lên này. Các tệp vẫn còn trong thư mục dữ liệu, "
                    f"tại {where}; hãy tải lên lại, hoặc nhờ quản trị viên chạy lệnh tcd ingest {where} "
                    f"kèm thông tin phiên.")
        if folder.is_dir() and any(folder.iterdir()):
            return (f"Máy chủ đã dừng khi đang xử lý lần tải lên này. Các tệp vẫn còn trong thư mục dữ liệu, "
                    f"tại {where}; quản trị viên chạy lệnh tcd ingest --resume để xử lý tiếp.")
        # the pipeline had moved them into its own job folders (uploads are taken, not copied)
        return ("Máy chủ đã dừng khi đang xử lý lần tải lên này. Các tệp đã được chuyển vào hàng nạp "
                "trong thư mục dữ liệu; quản trị viên chạy lệnh tcd ingest --resume để xử lý tiếp.")

    def _loop(self) -> None:
        while True:
            upload_id = self.queue.get()
            task = self.tasks.get(upload_id)
            if task is None:
                continue
            try:
                self.run(task)
            except Exception:  # the catalog did not answer: keep the worker for the next upload
                log.exception("upload %s could not be recorded", upload_id)
                try:  # its own process still runs, so no reap would end it: say how it ended
                    self.archive.catalog.fail_unfinished_upload(
                        upload_id, "Không ghi được kết quả của lần tải lên này; xem các công việc "
                                   "xử lý trong bảng để biết tệp đã được lưu chưa, nếu chưa hãy tải lên lại.")
                except Exception:
                    log.exception("upload %s stays unfinished in the catalog", upload_id)

    def run(self, task: dict) -> None:
        from ingest.pipeline import ingest_paths
        catalog = self.archive.catalog
        try:
            task["status"] = "running"
            catalog.update_upload(task["id"], status="running")
            try:
                outcomes = ingest_paths(self.archive, task["paths"], session_id=task["session_id"],
                                        session_meta=task["meta"], point=task["point"], actor=task["user"],
                                        take=True)
                task["outcomes"] = [o.to_dict() for o in outcomes]
                task["status"] = "done"
                for outcome in outcomes:
                    if outcome.status in FINAL:
                        source = Path(catalog.get_job(outcome.job_id).source)
                        source.unlink(missing_ok=True)
            except Exception as exc:  # a failed upload must not stop the worker
                task["status"] = "failed"
                task["message"] = str(exc) or type(exc).__name__
            task["finished_at"] = now()
            folder = Path(task["folder"])
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
            catalog.update_upload(task["id"], status=task["status"], outcomes=task["outcomes"],
                                  message=task["message"], finished_at=task["finished_at"])
        finally:
            with self.lock:
                self.tasks.pop(task["id"], None)
            event = self.events.get(task["id"])
            if event:
                event.set()


def init_app(app) -> None:
    app.extensions["tcd_uploads"] = UploadWorker(app.extensions["tcd"])

    @app.teardown_request
    def remove_unused_parts(exc=None):
        for part in g.pop("upload_parts", []):
            part.unlink(missing_ok=True)


@bp.route("/upload", methods=["GET", "POST"])
@require("upload")
def upload():
    form = UploadForm()
    if request.method == "GET":
        return render_template("upload.html", form=form)
    files = [f for f in request.files.getlist("files") if f and f.filename]
    errors = []
    if not form.validate_on_submit():
        errors = [msg for field_errors in form.errors.values() for msg in field_errors]
    if not files:
        errors.append("Hãy chọn ít nhất một tệp.")
    session_id = (form.session_id.data or "").strip() or None
    if session_id and archive().catalog.find_session(session_id) is None:
        errors.append(f"Không có phiên {session_id}.")
    if errors:
        return render_template("upload.html", form=form, errors=errors), 400

    upload_id = secrets.token_hex(8)
    folder = archive().settings.staging_dir / "uploads" / upload_id
    folder.mkdir(parents=True)
    paths, names = [], []
    for number, storage in enumerate(files):
        name = clean_name(storage.filename)
        target = folder / name if name not in names else folder / f"{number}-{name}"
        storage.stream.flush()
        os.fsync(storage.stream.fileno())
        storage.stream.close()
        os.replace(storage.stream.name, target)
        paths.append(target)
        names.append(target.name)
    meta = None
    if not session_id:
        meta = {k: (getattr(form, k).data or "").strip() for k in ("title", "held_on", "case_code", "category")}
        meta["complainants"] = form.complainants.data or ""
        meta = {k: v for k, v in meta.items() if v} or None
    task = {"id": upload_id, "user": current_user.name, "names": names, "paths": paths,
            "folder": str(folder), "session_id": session_id, "meta": meta,
            "point": (form.point.data or "").strip(), "status": "queued", "outcomes": [],
            "message": "", "created_at": now(), "finished_at": None,
            "sizes": [p.stat().st_size for p in paths]}
    record("upload", session_id, upload_id, files=names, sizes=task["sizes"])
    worker: UploadWorker = current_app.extensions["tcd_uploads"]
    if current_app.config["INGEST_IN_BACKGROUND"]:
        worker.submit(task)
    else:
        worker.add(task)
        worker.run(task)
    return redirect(url_for("uploads.jobs", upload=upload_id))


@bp.route("/jobs")
@require("jobs")
def jobs():
    catalog = archive().catalog
    worker: UploadWorker = current_app.extensions["tcd_uploads"]
    return render_template("jobs.html", jobs=catalog.list_jobs(limit=50), uploads=worker.snapshot(),
                           highlight=request.args.get("upload", ""))

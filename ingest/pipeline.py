"""The ingest pipeline: receive -> probe -> preserve -> transcode -> transcribe -> index.

A job is one file handed to the archive. Each stage is a small function over a `JobContext`:
it reads what earlier stages left in the job (its row in the catalog and its work folder under
`staging/<job id>/`), does one thing, and is idempotent, so running it again after a crash gives
the same result. The runner, not the stages, skips finished stages, records each stage's start,
end and time in the catalog, turns errors into job states, and waits with backoff while the
object store is unreachable.

Job states: pending -> running -> done; or duplicate (the same original is already a recording),
refused (not usable media; the file is kept in quarantine with the reason), waiting (the store is
unreachable; retried), failed (another error; `tcd ingest --resume` tries again).
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from archive import Archive, Job
from archive.catalog import now
from archive.errors import ArchiveError, InvalidMedia, StorageError, StorageUnavailable
from archive.store import copy_hashing, disk_error, hash_file

from . import media

log = logging.getLogger("tcd.ingest")

INTERRUPTED = ("pending", "running", "waiting")   # left by a crash or a kill: resumed on its own
UNFINISHED = INTERRUPTED + ("failed",)             # `tcd ingest --resume` also retries failures
SAFE_SUFFIX = re.compile(r"^\.[a-z0-9]{1,8}$")
HIDDEN = re.compile(r"^\.|~$|\.(part|partial|tmp|crdownload)$", re.IGNORECASE)

# A stage reports progress with a fraction in [0, 1].
ProgressFactory = Callable[[Job, str], Callable[[float], None]]


class Stop(Exception):
    """Raised by a stage to end the job early with a final status (not an error)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _ending(exc: Exception, job_id: int, stage: str) -> tuple[str, str, str]:
    """How a stage that raised `exc` ends: (stage status, job status, message)."""
    if isinstance(exc, Stop):
        return "done", exc.status, exc.message
    if isinstance(exc, InvalidMedia):
        return "failed", "refused", str(exc)
    if isinstance(exc, StorageUnavailable):
        return "failed", "waiting", f"Waiting for the object store: {exc}"
    if isinstance(exc, ArchiveError):
        return "failed", "failed", str(exc)
    # a bug must fail one job, not the whole command
    log.error("job %s stage %s crashed:\n%s", job_id, stage, traceback.format_exc())
    return "failed", "failed", f"Unexpected error in stage {stage}: {type(exc).__name__}: {exc}"


@dataclass
class JobContext:
    archive: Archive
    job_id: int
    workdir: Path
    progress: Callable[[float], None] = lambda fraction: None
    workers: int | None = None

    @property
    def job(self) -> Job:
        return self.archive.catalog.get_job(self.job_id)

    @property
    def staged(self) -> Path:
        # The source's extension is kept: ffprobe uses it as a hint for raw formats (MP3, TS).
        suffix = Path(self.job.source_name).suffix.lower()
        return self.workdir / ("original" + (suffix if SAFE_SUFFIX.match(suffix) else ""))

    @property
    def asr_audio(self) -> Path:
        return self.workdir / "asr.wav"

    def update(self, **changes) -> None:
        self.archive.catalog.update_job(self.job_id, **changes)

    def info(self) -> media.MediaInfo:
        """The probe result, kept in the job's options by the probe stage."""
        raw = self.job.options.get("probe")
        return media.MediaInfo(format_name=raw["format"], duration=raw["duration"],
                               video_codec=raw["video"], audio_codecs=tuple(raw["audio"]),
                               width=raw["width"], height=raw["height"])


# -- the stages ---------------------------------------------------------------------------------

def receive(ctx: JobContext) -> None:
    """Copy the source into staging, hashing as it copies; the same original twice is one recording."""
    job = ctx.job
    source = Path(job.source)
    if job.options.get("take") and not source.exists() and ctx.staged.is_file():
        source = ctx.staged   # taken in by a run killed before it was hashed
    if not source.is_file():
        raise ArchiveError(f"{job.source_name} is no longer at {source}; nothing was stored from it.")
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    partial = ctx.workdir / "receiving.part"
    total = source.stat().st_size or 1
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        ctx.progress(done / total)

    try:
        if job.options.get("take"):
            # an upload already in staging is moved in and read once, not written a second time
            os.replace(source, ctx.staged)
            sha256, size = hash_file(ctx.staged, advance)
        else:
            with open(source, "rb") as src, open(partial, "wb") as dst:
                sha256, size = copy_hashing(src, dst, advance)
            os.replace(partial, ctx.staged)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise disk_error(exc, "the staging folder") from exc
    ctx.update(sha256=sha256, source_size=size)
    existing = ctx.archive.catalog.recording_by_original(sha256)
    if existing:
        ctx.update(recording_id=existing.id)
        shutil.rmtree(ctx.workdir, ignore_errors=True)
        raise Stop("duplicate", f"Already archived as recording {existing.id} of session {existing.session_id}.")


def probe(ctx: JobContext) -> None:
    """Refuse what is not usable media, keeping it in quarantine with the reason."""
    try:
        info = media.probe(ctx.staged)
    except InvalidMedia as exc:
        _quarantine(ctx, str(exc))
        raise
    ctx.update(options={**ctx.job.options, "probe": info.summary()})


def preserve(ctx: JobContext) -> None:
    """Store the original bit-exact (the store checks the hash after writing) and catalog it."""
    job, catalog = ctx.job, ctx.archive.catalog
    info = ctx.info()
    total = job.source_size or 1
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        ctx.progress(done / total)

    stored = ctx.archive.store.put_file(ctx.staged, job.sha256, advance)
    catalog.add_object(stored.sha256, stored.size, "original", info.format_name)
    rec = catalog.add_recording(session_id=job.session_id, original_sha256=stored.sha256,
                                original_name=job.source_name, point=job.point,
                                duration=info.duration, has_video=info.has_video,
                                has_audio=info.has_audio, probe=job.options.get("probe"))
    ctx.update(recording_id=rec.id)
    ctx.archive.audit(job.options.get("actor", "system"), "ingest", rec.session_id, rec.id,
                      name=job.source_name, sha256=stored.sha256, size=stored.size)


def transcode(ctx: JobContext) -> None:
    """The access copy (remux when possible) and the 16 kHz mono audio for speech recognition."""
    job, catalog = ctx.job, ctx.archive.catalog
    rec = catalog.get_recording(job.recording_id)
    info = ctx.info()
    weight = 0.8 if info.has_audio else 1.0
    if not rec.access_sha256:
        _drop_unrecorded(ctx)
        out = ctx.workdir / "access.part"
        try:
            plan = media.make_access_copy(ctx.staged, out, info, lambda f: ctx.progress(f * weight))
            sha256, _ = hash_file(out)
            # Named in the job before it is stored: a kill before the recording points at it leaves
            # a key the next run removes (an encoder run again need not give the same bytes).
            ctx.update(options={**ctx.job.options, "storing": sha256})
            stored = ctx.archive.store.put_file(out, sha256)
        except OSError as exc:
            raise disk_error(exc, "the staging folder") from exc
        finally:
            out.unlink(missing_ok=True)
        catalog.add_object(stored.sha256, stored.size, "access", plan.mime)
        catalog.set_access_copy(rec.id, stored.sha256, plan.mime)
    if info.has_audio and not ctx.asr_audio.exists():
        part = ctx.workdir / "asr.part.wav"
        try:
            media.extract_asr_audio(ctx.staged, part, info.duration,
                                    lambda f: ctx.progress(weight + f * (1 - weight)))
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise disk_error(exc, "the staging folder") from exc
        os.replace(part, ctx.asr_audio)


def _drop_unrecorded(ctx: JobContext) -> None:
    """Remove an access copy a killed run stored but no row names (see transcode)."""
    catalog, left = ctx.archive.catalog, ctx.job.options.get("storing")
    if left and not catalog.object_in_use(left):
        catalog.forget_object(left)
        try:
            ctx.archive.store.delete(left)
        except StorageUnavailable:
            raise   # the stage waits for the store like any other
        except StorageError as exc:   # e.g. a bucket whose default retention locks every object
            log.warning("job %s: the unrecorded access copy %s stays in the store (%s); "
                        "`tcd verify` lists it as a stray", ctx.job_id, left, exc)


def transcribe(ctx: JobContext) -> None:
    """Speech to text with Vosk; without an installed model the transcript waits for one."""
    from .transcribe import ModelMissing, transcribe_recording
    catalog = ctx.archive.catalog
    rec = catalog.get_recording(ctx.job.recording_id)
    versions = catalog.transcripts_for_recording(rec.id, with_segments=False)
    if not rec.has_audio or any(t.kind == "machine" for t in versions):
        return  # no sound, or a run killed after saving its transcript: nothing to do again
    try:
        transcribe_recording(ctx.archive, rec, ctx.asr_audio, ctx.progress, ctx.workers)
    except ModelMissing as exc:
        ctx.update(message=f"The transcript waits for a speech model: {exc}")


def index(ctx: JobContext) -> None:
    """Make the session findable: its metadata and current transcripts go into the search index."""
    from search import open_index
    open_index(ctx.archive).index_session(ctx.job.session_id)


STAGES: list[Callable[[JobContext], None]] = [receive, probe, preserve, transcode, transcribe, index]


def _quarantine(ctx: JobContext, reason: str) -> None:
    """Keep a refused file with a JSON note of why; never delete it."""
    job = ctx.job
    folder = ctx.archive.settings.quarantine_dir
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{job.id}-{job.source_name}"
    if ctx.staged.exists():
        os.replace(ctx.staged, target)
    note = {"job": job.id, "source": job.source, "name": job.source_name, "sha256": job.sha256,
            "size": job.source_size, "reason": reason, "at": now()}
    Path(f"{target}.json").write_text(json.dumps(note, ensure_ascii=False, indent=2), encoding="utf-8")
    shutil.rmtree(ctx.workdir, ignore_errors=True)
    ctx.update(options={**job.options, "quarantine": str(target)})


# -- the runner ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    job_id: int
    name: str
    status: str
    message: str = ""
    session_id: str | None = None
    recording_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("done", "duplicate")

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Runner:
    """Runs jobs through the stages; `progress_factory(job, stage)` gives a progress callback."""
    archive: Archive
    progress_factory: ProgressFactory | None = None
    workers: int | None = None
    max_wait: float = 600.0   # how long to keep retrying an unreachable store before giving up
    backoff: tuple[float, float] = (2.0, 60.0)
    stages: list = field(default_factory=lambda: list(STAGES))

    def run(self, job_id: int) -> Outcome:
        catalog = self.archive.catalog
        workdir = self.archive.settings.staging_dir / str(job_id)
        with _job_lock(self.archive.settings.staging_dir, job_id) as locked:
            if not locked:
                job = catalog.get_job(job_id)
                return Outcome(job.id, job.source_name, "running", "Another tcd process is working on it.")
            return self._run_stages(job_id, workdir)

    def _run_stages(self, job_id: int, workdir: Path) -> Outcome:
        catalog = self.archive.catalog
        done = catalog.stages_done(job_id)
        catalog.update_job(job_id, status="running", attempts=catalog.get_job(job_id).attempts + 1)
        for stage in self.stages:
            name = stage.__name__
            if name in done:
                continue
            job = catalog.get_job(job_id)
            catalog.update_job(job_id, stage=name, progress=0.0)
            catalog.stage_started(job_id, name)
            started = time.monotonic()
            ctx = JobContext(self.archive, job_id, workdir, self._progress(job, name), self.workers)
            try:
                self._with_retry(stage, ctx)
            except Exception as exc:
                stage_status, status, message = _ending(exc, job_id, name)
                catalog.stage_finished(job_id, name, stage_status, time.monotonic() - started, message)
                # a stage that ended the job early (Stop) is done, and so is the job's work
                catalog.update_job(job_id, status=status, message=message,
                                   **({"progress": 1.0} if stage_status == "done" else {}))
                return self._outcome(job_id)
            catalog.stage_finished(job_id, name, "done", time.monotonic() - started)
            log.info("job %s: %s done in %.1f s", job_id, name, time.monotonic() - started)
        shutil.rmtree(workdir, ignore_errors=True)
        catalog.update_job(job_id, status="done", progress=1.0)  # the message a stage left stays
        return self._outcome(job_id)

    def _with_retry(self, stage, ctx: JobContext) -> None:
        """Run a stage; while the store is unreachable, wait with exponential backoff."""
        delay, give_up = self.backoff[0], time.monotonic() + self.max_wait
        while True:
            try:
                return stage(ctx)
            except StorageUnavailable as exc:
                if time.monotonic() + delay > give_up:
                    raise
                ctx.update(status="waiting", message=f"Waiting for the object store ({exc}); "
                                                     f"next try in {delay:.0f} s.")
                log.warning("job %s: object store unreachable, retrying in %.0f s", ctx.job_id, delay)
                time.sleep(delay)
                delay = min(delay * 2, self.backoff[1])
                ctx.update(status="running", message="")

    def _progress(self, job: Job, stage: str) -> Callable[[float], None]:
        """Progress goes to the catalog (at most once a second) and to the caller's display."""
        display = self.progress_factory(job, stage) if self.progress_factory else None
        last = [0.0]

        def report(fraction: float) -> None:
            if display:
                display(fraction)
            t = time.monotonic()
            if t - last[0] >= 1.0 or fraction >= 1.0:
                last[0] = t
                self.archive.catalog.update_job(job.id, progress=round(fraction, 4))
        return report

    def _outcome(self, job_id: int) -> Outcome:
        job = self.archive.catalog.get_job(job_id)
        rec_session = None
        if job.recording_id:
            rec_session = self.archive.catalog.get_recording(job.recording_id).session_id
        return Outcome(job.id, job.source_name, job.status, job.message,
                       rec_session or job.session_id, job.recording_id)


class _job_lock:
    """An exclusive, non-blocking lock per job, so two tcd processes never run the same job."""

    def __init__(self, staging: Path, job_id: int):
        staging.mkdir(parents=True, exist_ok=True)
        self.path = staging / f".job-{job_id}.lock"

    def __enter__(self) -> bool:
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


# -- entry points for the command line, the watch folder and the web ----------------------------

def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files given, and the files inside folders given (recursively, sorted, hidden ones skipped)."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not HIDDEN.search(p.name)
                                and not any(HIDDEN.search(part) for part in p.relative_to(path).parts[:-1])))
        elif path.exists():
            files.append(path)
        else:
            raise ArchiveError(f"{path} does not exist.")
    return files


DATE_IN_NAME = [re.compile(r"(?P<y>20\d\d)[-_.](?P<m>\d\d)[-_.](?P<d>\d\d)"),
                re.compile(r"(?P<d>\d\d)[-_.](?P<m>\d\d)[-_.](?P<y>20\d\d)")]


def session_meta_for_file(path: Path, meta: dict | None = None) -> dict:
    """Metadata for a new session: what was given, with a title and date from the file if missing."""
    meta = dict(meta or {})
    if not meta.get("held_on"):
        meta["held_on"] = _date_from_name(path.name) or \
            time.strftime("%Y-%m-%d", time.localtime(path.stat().st_mtime))
    if not meta.get("title"):
        meta["title"] = f"{path.stem} ({meta['held_on']})"
    return meta


def _date_from_name(name: str) -> str | None:
    for pattern in DATE_IN_NAME:
        m = pattern.search(name)
        if m and 1 <= int(m["m"]) <= 12 and 1 <= int(m["d"]) <= 31:
            return f"{m['y']}-{m['m']}-{m['d']}"
    return None


def create_jobs(archive: Archive, files: list[Path], *, session_id: str | None = None,
                session_meta: dict | None = None, point: str = "", actor: str = "system",
                one_session: bool | None = None, take: bool = False) -> list[Job]:
    """One job per file, in the catalog before any work starts, so a crash loses none.

    With `session_id` every file joins that session; with metadata (a title, a case…) all files
    form one new session; with neither each file becomes its own session. With `take` the files
    are the archive's own (uploads in staging): moved into the job's folder, not copied."""
    catalog = archive.catalog
    if session_id:
        catalog.get_session(session_id)
    if one_session is None:
        one_session = bool(session_id or session_meta)
    jobs = []
    for path in files:
        path = path.resolve()
        if not session_id or not one_session:
            session = catalog.create_session(session_meta_for_file(path, session_meta))
            archive.audit(actor, "session.create", session.id, title=session.title)
            if one_session:
                session_id = session.id
            sid = session.id
        else:
            sid = session_id
        stat = path.stat()
        jobs.append(catalog.create_job(source=str(path), source_name=path.name, session_id=sid,
                                       point=point, source_size=stat.st_size,
                                       source_mtime=stat.st_mtime,
                                       options={"actor": actor, **({"take": True} if take else {})}))
    return jobs


def run_jobs(archive: Archive, jobs: list[Job], runner: Runner) -> list[Outcome]:
    outcomes = [runner.run(job.id) for job in jobs]
    for session_id in {job.session_id for job in jobs if job.session_id}:
        if archive.catalog.delete_session_if_empty(session_id):
            log.info("session %s removed: none of its files could be archived", session_id)
    return outcomes


def resume(archive: Archive, runner: Runner, statuses: tuple[str, ...] = UNFINISHED) -> list[Outcome]:
    """Finish the jobs a crash, a kill, a full disk or an unreachable store left unfinished."""
    return run_jobs(archive, archive.catalog.list_jobs(statuses, limit=100000)[::-1], runner)


def ingest_paths(archive: Archive, paths: Iterable[Path], *, session_id: str | None = None,
                 session_meta: dict | None = None, point: str = "", actor: str = "system",
                 runner: Runner | None = None, take: bool = False) -> list[Outcome]:
    """Ingest files and folders: the jobs are created first, then run one after another."""
    runner = runner or Runner(archive)
    jobs = create_jobs(archive, expand_paths(paths), session_id=session_id,
                       session_meta=session_meta, point=point, actor=actor, take=take)
    return run_jobs(archive, jobs, runner)

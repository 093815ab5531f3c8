"""Command-line commands of the ingest package: ingest, watch, jobs (and, from the transcripts
work, model and transcribe). Registered through the `tcd.commands` entry points."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from archive.cli import json_option, pass_ctx, print_json
from archive.errors import InvalidInput
from archive.progress import bar

from . import pipeline

STAGE_NAMES = {"receive": "Copying", "probe": "Checking", "preserve": "Storing",
               "transcode": "Converting", "transcribe": "Transcribing", "index": "Indexing"}


def terminal_progress(job, stage):
    """A progress bar per stage on a terminal (nothing otherwise)."""
    state = {}

    def advance(fraction: float) -> None:
        if "bar" not in state:
            state["ctx"] = bar(f"{STAGE_NAMES.get(stage, stage)} {job.source_name[:40]}", 1.0, unit="fraction")
            state["bar"] = state["ctx"].__enter__()
            state["done"] = 0.0
        state["bar"](max(0.0, fraction - state["done"]))
        state["done"] = max(state["done"], fraction)
        if fraction >= 1.0:
            state.pop("bar")
            state["ctx"].__exit__(None, None, None)
    return advance


def print_outcomes(outcomes, as_json: bool) -> None:
    if as_json:
        return print_json([o.to_dict() for o in outcomes])
    for o in outcomes:
        if o.ok:
            note = " (already archived)" if o.status == "duplicate" else ""
            click.echo(f"ok   {o.name} -> {o.session_id} recording {o.recording_id}{note}"
                       + (f"  ({o.message})" if o.message and o.status == "done" else ""))
        else:
            click.echo(f"{o.status:<5} {o.name}: {o.message}", err=True)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--session", "session_id", help="Add the recordings to this existing session.")
@click.option("--title", help="Title of the new session.")
@click.option("--held-on", help="Date of the session, YYYY-MM-DD.")
@click.option("--case", "case_code", help="Case code (mã vụ việc).")
@click.option("--category", help="Case category (Điều 4: a–e or other).")
@click.option("--chair", help="Who chaired the session (người chủ trì).")
@click.option("--central-point", help="The central bridge point (điểm cầu trung tâm).")
@click.option("--delegate-point", "delegate_points", multiple=True, help="A delegate bridge point (repeatable).")
@click.option("--complainant", "complainants", multiple=True, help="A complainant (repeatable).")
@click.option("--participant", "participants", multiple=True, help="A participant (repeatable).")
@click.option("--notes", help="Free notes about the session.")
@click.option("--meta", "meta_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Session metadata as a JSON file (the same field names).")
@click.option("--point", default="", help="The bridge point these recordings come from.")
@click.option("--resume", is_flag=True, help="Finish what an interrupted or failed ingest left undone.")
@click.option("--workers", type=int, help="Speech recognition processes (default: one per core).")
@json_option
@pass_ctx
def ingest(ctx, paths, session_id, meta_file, point, resume, workers, as_json, **fields):
    """Archive recordings: keep each original, make an access copy, transcribe and index it.

    PATHS are files or folders (searched recursively). Put `--` before names that start with `-`.
    """
    if not paths and not resume:
        raise click.UsageError("Give the files or folders to ingest, or --resume.")
    meta = {}
    if meta_file:
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{meta_file} is not valid JSON ({exc}).") from None
        if not isinstance(meta, dict):
            raise InvalidInput(f"{meta_file} must hold one JSON object of session fields.")
    meta.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in fields.items() if v})
    if session_id and meta:
        raise click.UsageError("Use --session to add to an existing session, or metadata for a new one, not both.")
    archive = ctx.archive
    runner = pipeline.Runner(archive, terminal_progress if sys.stderr.isatty() else None, workers)
    # Jobs a crash or a kill left behind are finished first; --resume also retries failures.
    outcomes = pipeline.resume(archive, runner, pipeline.UNFINISHED if resume else pipeline.INTERRUPTED)
    if paths:
        outcomes += pipeline.ingest_paths(archive, paths, session_id=session_id, session_meta=meta or None,
                                          point=point, runner=runner)
    print_outcomes(outcomes, as_json)
    if any(not o.ok for o in outcomes):
        sys.exit(1)


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--interval", default=2.0, show_default=True, help="Seconds between scans.")
@click.option("--settle", default=10.0, show_default=True,
              help="A file must stay unchanged this many seconds before it is ingested.")
@click.option("--point", default="", help="The bridge point these recordings come from.")
@click.option("--once", is_flag=True, help="Ingest what is there (once settled) and stop.")
@pass_ctx
def watch(ctx, folder, interval, settle, point, once):
    """Ingest each new recording the conference software writes into FOLDER."""
    from .watch import Watcher
    Watcher(ctx.archive, folder, interval=interval, settle=settle, point=point).run(once=once)


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Also the finished jobs.")
@json_option
@pass_ctx
def jobs(ctx, show_all, as_json):
    """Ingest jobs with their stage and progress."""
    catalog = ctx.archive.catalog
    rows = catalog.list_jobs() if show_all else catalog.list_jobs(("pending", "running", "waiting", "failed"))
    if as_json:
        return print_json([j.to_dict() for j in rows])
    if not rows:
        return click.echo("No unfinished jobs." if not show_all else "No jobs yet.")
    for j in rows:
        where = f"{j.stage} {j.progress:4.0%}" if j.status in ("running", "waiting", "pending") else j.stage
        click.echo(f"#{j.id:<5} {j.status:<9} {where:<16} {j.session_id or '-':<14} {j.source_name}"
                   + (f"  — {j.message}" if j.message else ""))


# -- speech models and transcription (transcripts issue) ----------------------------------------

def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


@click.group()
def model():
    """Speech recognition models (Vosk): install, list, choose, download."""


@model.command("install")
@click.argument("source", metavar="ZIP_OR_DIR", type=click.Path(exists=True, path_type=Path))
@click.option("--name", help="Install under this name (default: the zip's or folder's name).")
@pass_ctx
def model_install(ctx, source, name):
    """Install a Vosk model from its zip (e.g. from a USB stick) or its unpacked folder."""
    from . import models
    installed = models.install(ctx.archive.settings, source, name=name)
    click.echo(f"Installed the model {installed.name} ({_megabytes(installed.size)}) in {installed.path}"
               + ("; it is in use." if installed.in_use
                  else f"; `tcd model use {installed.name}` makes it the one in use."))


@model.command("list")
@json_option
@pass_ctx
def model_list(ctx, as_json):
    """The installed models: name, size, folder, and which one is in use."""
    from . import models
    rows = models.installed(ctx.archive.settings)
    if as_json:
        return print_json([m.to_dict() for m in rows])
    if not rows:
        return click.echo("No model installed; `tcd model install ZIP_OR_DIR` installs one.")
    for m in rows:
        click.echo(f"{'*' if m.in_use else ' '} {m.name:<32} {_megabytes(m.size):>9}  {m.path}")


@model.command("use")
@click.argument("name")
@pass_ctx
def model_use(ctx, name):
    """Make NAME the model that transcribes (written to tcd.toml)."""
    from . import models
    chosen = models.use(ctx.archive.settings, name)
    click.echo(f"The model {chosen.name} is in use.")


@model.command("download")
@click.argument("which", type=click.Choice(["vi-small", "vi"]))
@click.option("--sha256", help="Refuse the download unless its SHA-256 is this one.")
@pass_ctx
def model_download(ctx, which, sha256):
    """Fetch an official Vietnamese model from the Vosk site (needs Internet) and install it."""
    from . import models
    state = {}

    def total(size: int) -> None:
        state["bar"] = bar(f"Downloading {models.DOWNLOADS[which]}", size or None)
        state["advance"] = state["bar"].__enter__()

    try:
        installed, digest = models.download(ctx.archive.settings, which, sha256,
                                            progress=lambda n: state["advance"](n), on_total=total)
    finally:
        if "bar" in state:
            state["bar"].__exit__(None, None, None)
    click.echo(f"Installed the model {installed.name} ({_megabytes(installed.size)}); the zip's "
               f"SHA-256 is {digest}.")


@click.command()
@click.argument("item_id", metavar="[ID]", required=False)
@click.option("--pending", is_flag=True, help="Every recording with sound and no transcript yet.")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: one per core).")
@pass_ctx
def transcribe(ctx, item_id, pending, workers):
    """Transcribe a session's recordings, one recording, or (--pending) all that wait for a transcript."""
    from archive.errors import ArchiveError
    from . import models
    from .transcribe import ModelMissing, transcribe_stored
    archive = ctx.archive
    catalog = archive.catalog
    if bool(item_id) == bool(pending):
        raise click.UsageError("Give a session or recording ID, or --pending.")
    if pending:
        recordings = catalog.recordings_awaiting_transcript()
    elif catalog.find_session(item_id):
        recordings = [r for r in catalog.recordings_for_session(item_id) if r.has_audio]
    else:
        recordings = [catalog.get_recording(item_id)]
    if not recordings:
        return click.echo("Nothing to transcribe." if pending else f"{item_id} has no recording with sound.")
    name = models.resolve(archive.settings).name
    failures = 0
    for rec in recordings:
        if not rec.has_audio:
            click.echo(f"{rec.id}: no sound, so no transcript.")
            continue
        with bar(f"Transcribing {rec.id} ({name})", 1.0, unit="fraction") as advance:
            state = {"done": 0.0}

            def progress(fraction: float) -> None:
                advance(max(0.0, fraction - state["done"]))
                state["done"] = max(state["done"], fraction)

            try:
                saved = transcribe_stored(archive, rec, progress, workers)
            except ModelMissing:
                raise
            except ArchiveError as exc:
                failures += 1
                click.echo(f"tcd: {rec.id}: {exc}", err=True)
                continue
        click.echo(f"{rec.id}: transcript version {saved.version} ({len(saved.segments)} segments, "
                   f"{saved.seconds:.1f} s) of session {rec.session_id}.")
        for job in catalog.jobs_for_recording(rec.id):
            if job.message.startswith("The transcript waits for a speech model"):
                catalog.update_job(job.id, message="")
    from search import open_index
    open_index(archive).sync()
    if failures:
        sys.exit(1)

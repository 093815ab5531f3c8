"""The `tcd` command line: a thin layer that parses options, calls the core and prints.

The core commands live here; the other packages add theirs through the `tcd.commands` entry
point group (see pyproject.toml), so `archive` imports none of them. Errors of the work
(`ArchiveError`) print one sentence on stderr and exit 1; bad usage exits 2.
"""
from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click

from . import Archive, open_archive
from .errors import ArchiveError


class Context:
    """What every command receives: the data folder, opened on first use."""

    def __init__(self, home: str | None):
        self.home_arg = home
        self._archive: Archive | None = None

    @property
    def archive(self) -> Archive:
        if self._archive is None:
            self._archive = open_archive(self.home_arg)
        return self._archive


pass_ctx = click.make_pass_decorator(Context)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(f)


def print_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def fail(message: str, code: int = 1):
    click.echo(f"tcd: {message}", err=True)
    sys.exit(code)


class TcdGroup(click.Group):
    """Adds the commands of the other packages and turns ArchiveError into exit status 1.

    Only the command being run is imported, so `tcd jobs` does not pay for loading the web."""

    @staticmethod
    def _plugins():
        return {ep.name: ep for ep in entry_points(group="tcd.commands")}

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and name in (plugins := self._plugins()):
            command = plugins[name].load()
            self.add_command(command, name)
        return command

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ArchiveError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("Stopped; what was finished is kept and `tcd ingest --resume` goes on from there.", 130)


@click.group(cls=TcdGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="TCD_HOME", type=click.Path(file_okay=False),
              help="The data folder (default: $TCD_HOME or ./tcd-data).")
@click.pass_context
def main(ctx, home):
    """TCD Archive: recordings of online citizen-reception sessions, kept, transcribed and searchable."""
    ctx.obj = Context(home)


@main.command()
@json_option
@pass_ctx
def sessions(ctx, as_json):
    """List the sessions."""
    catalog = ctx.archive.catalog
    rows = []
    for s in catalog.list_sessions():
        recs = catalog.recordings_for_session(s.id)
        rows.append({**s.to_dict(), "recordings": len(recs),
                     "duration": round(sum(r.duration for r in recs), 1)})
    if as_json:
        return print_json(rows)
    if not rows:
        return click.echo("No sessions yet; `tcd ingest FILE` adds one.")
    for r in rows:
        click.echo(f"{r['id']}  {r['held_on']}  {r['case_code'] or '-':<12} "
                   f"{r['recordings']} rec  {_clock(r['duration'])}  {r['title']}")


@main.command()
@click.argument("session_id")
@json_option
@pass_ctx
def show(ctx, session_id, as_json):
    """One session with its recordings and transcripts."""
    catalog = ctx.archive.catalog
    session = catalog.get_session(session_id)
    recordings = []
    for rec in catalog.recordings_for_session(session_id):
        current = catalog.current_transcript(rec.id)
        recordings.append({**rec.to_dict(),
                           "transcripts": [t.to_dict(with_segments=False)
                                           for t in catalog.transcripts_for_recording(rec.id)],
                           "current_version": current.version if current else None})
    data = {**session.to_dict(), "recordings": recordings}
    if as_json:
        return print_json(data)
    click.echo(f"{session.id}  {session.title}")
    for label, key in (("Ngày", "held_on"), ("Vụ việc", "case_code"), ("Phân loại", "category"),
                       ("Chủ trì", "chair"), ("Điểm cầu trung tâm", "central_point")):
        if data[key]:
            click.echo(f"  {label}: {data[key]}")
    for label, key in (("Điểm cầu đại biểu", "delegate_points"), ("Người khiếu nại", "complainants")):
        if data[key]:
            click.echo(f"  {label}: {'; '.join(data[key])}")
    for rec in recordings:
        click.echo(f"  recording {rec['id']}  {_clock(rec['duration'])}  {rec['point'] or '-'}  "
                   f"{rec['original_name']}")
        click.echo(f"    original sha256 {rec['original_sha256']}")
        click.echo(f"    access copy {'ready (' + rec['access_mime'] + ')' if rec['access_sha256'] else 'not made yet'}")
        if not rec["transcripts"]:
            click.echo("    transcript: " + ("waits for a speech model (`tcd model install`, then "
                                             "`tcd transcribe --pending`)" if rec["has_audio"] else "none (no sound)"))
        for t in rec["transcripts"]:
            mark = "*" if t["version"] == rec["current_version"] else " "
            who = f"{t['engine']} {t['model']}".strip() if t["kind"] == "machine" else t["author"]
            click.echo(f"   {mark}transcript v{t['version']}  {t['kind']}  {who}  {t['label']}  {t['created_at']}")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds or 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# -- users and the audit log (web issue) ----------------------------------------------------------

@main.group()
def user():
    """Users of the web application and their roles."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["admin", "archivist", "inspector", "handler"]),
              help="What the user may do.")
@click.option("--password", help="The password (prompted for, twice, when not given).")
@click.option("--clearance", is_flag=True, help="Mark the user as cleared for restricted material.")
@pass_ctx
def user_add(ctx, name, role, password, clearance):
    """Add a user who signs in to the web application."""
    from . import users
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    added = users.add_user(ctx.archive, name, role, password, clearance, actor=_operator())
    click.echo(f"Added user {added.name} ({added.role}).")


@user.command("list")
@json_option
@pass_ctx
def user_list(ctx, as_json):
    """The users, their roles and whether they are disabled."""
    rows = [u.to_dict() for u in ctx.archive.catalog.list_users()]
    if as_json:
        return print_json(rows)
    if not rows:
        return click.echo("No users yet; `tcd user add NAME --role admin` adds one.")
    for u in rows:
        flags = " ".join(f for f, on in (("disabled", u["disabled"]), ("clearance", u["clearance"])) if on)
        click.echo(f"{u['name']:<20} {u['role']:<10} {u['created_at']}  {flags}".rstrip())


@user.command("disable")
@click.argument("name")
@pass_ctx
def user_disable(ctx, name):
    """Stop a user from signing in (their past actions stay in the audit log)."""
    from . import users
    users.disable_user(ctx.archive, name, actor=_operator())
    click.echo(f"User {name} is disabled.")


@main.command()
@click.option("--verify", "verify_chain", is_flag=True, help="Prove that no entry was changed or removed.")
@click.option("--session", "session_id", help="Only the entries about this session.")
@click.option("--actor", help="Only the entries of this user.")
@click.option("--limit", type=int, default=50, show_default=True, help="How many of the newest entries (0: all).")
@json_option
@pass_ctx
def audit(ctx, verify_chain, session_id, actor, limit, as_json):
    """The audit log: who signed in, searched, viewed, played, downloaded or changed what."""
    from . import audit as audit_log
    catalog = ctx.archive.catalog
    if verify_chain:
        report = audit_log.verify(catalog)
        if as_json:
            print_json(report.to_dict())
        else:
            click.echo(report.sentence(), err=not report.ok)
        sys.exit(0 if report.ok else 1)
    entries = catalog.audit_entries(session_id=session_id, actor=actor, limit=limit or None,
                                    descending=True)[::-1]
    if as_json:
        return print_json([{**e, "detail": json.loads(e["detail"])} for e in entries])
    if not entries:
        return click.echo("The audit log is empty.")
    for e in entries:
        detail = json.loads(e["detail"])
        extra = " ".join(f"{k}={v}" for k, v in detail.items())
        click.echo(f"#{e['id']:<6} {e['at']}  {e['actor']:<14} {e['action']:<14} "
                   f"{e['session_id'] or '-':<14} {e['target'] or '-'}  {extra}".rstrip())


def _operator() -> str:
    """Who runs the command, for the audit log: the operating-system user."""
    import getpass
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


# -- transcripts: print and import (transcripts issue) ------------------------------------------

class _TranscriptGroup(click.Group):
    """`tcd transcript ID` prints (the `show` subcommand); `tcd transcript import ID FILE` imports."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_TranscriptGroup)
def transcript():
    """Print a transcript (`tcd transcript ID`) or import one made elsewhere (`tcd transcript import ID FILE`)."""


@transcript.command("show")
@click.argument("item_id", metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["txt", "srt", "vtt", "json", "docx"]), default="txt",
              show_default=True, help="Output format (docx: the minutes, \"biên bản\"; needs -o FILE).")
@click.option("--version", type=int, help="This version instead of the current one.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@pass_ctx
def transcript_show(ctx, item_id, fmt, version, output):
    """Print the current transcript of a recording (or of a session's first transcribed recording)."""
    from .errors import NotFound
    from .transcripts import render, resolve_recording
    archive = ctx.archive
    rec = resolve_recording(archive, item_id, with_transcript=version is None)
    current = (archive.catalog.get_transcript(rec.id, version) if version
               else archive.catalog.current_transcript(rec.id))
    if current is None:
        raise NotFound(f"Recording {rec.id} has no transcript yet; `tcd transcribe {rec.id}` makes one.")
    if fmt == "docx" and output is None:
        raise click.UsageError("A DOCX file cannot be printed on the terminal; give -o FILE.")
    archive.audit(_operator(), "download", rec.session_id, rec.id, format=fmt,
                  version=current.version, via="cli")
    if fmt == "docx":
        return _write_docx(archive, rec, current, output)
    meta = {k: v for k, v in current.to_dict(with_segments=False).items() if k != "id"}
    text = render(current.segments, fmt, meta={"session_id": rec.session_id, **meta})
    if output is None:
        return click.echo(text, nl=False)
    tmp = output.with_name(f".{output.name}.part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    click.echo(f"Wrote version {current.version} of the transcript of {rec.id} to {output}.", err=True)


@transcript.command("import")
@click.argument("item_id", metavar="ID")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--author", help="Who made the transcript (default: the user running the command).")
@click.option("--label", default="", help="A note shown with the version.")
@click.option("--format", "fmt", type=click.Choice(["txt", "srt", "vtt", "json"]),
              help="The file's format (default: from its name and content).")
@pass_ctx
def transcript_import(ctx, item_id, file, author, label, fmt):
    """Store a WebVTT, SRT, JSON or time-coded text transcript as a new version of a recording."""
    from .transcripts import import_transcript
    saved = import_transcript(ctx.archive, item_id, file, author or _operator(), label=label, fmt=fmt)
    _reindex(ctx.archive)
    click.echo(f"Stored {file.name} as version {saved.version} of the transcript of recording "
               f"{saved.recording_id} ({len(saved.segments)} segments).")


# -- minutes, differences between versions and citations (citations issue) ----------------------

def _write_bytes(output: Path, body: bytes) -> None:
    tmp = output.with_name(f".{output.name}.part")
    tmp.write_bytes(body)
    tmp.replace(output)


def _write_docx(archive, rec, transcript, output: Path) -> None:
    from .minutes import render_minutes
    _write_bytes(output, render_minutes(archive.catalog.get_session(rec.session_id), rec, transcript))
    click.echo(f"Wrote the minutes of {rec.session_id} from version {transcript.version} of the "
               f"transcript of {rec.id} to {output}.", err=True)


@transcript.command("diff")
@click.argument("item_id", metavar="ID")
@click.argument("old", type=int, required=False)
@click.argument("new", type=int, required=False)
@json_option
@pass_ctx
def transcript_diff(ctx, item_id, old, new, as_json):
    """What changed between two versions (default: the current one and the one before it)."""
    from .corrections import diff_versions, render_diff
    from .transcripts import resolve_recording
    archive = ctx.archive
    rec = resolve_recording(archive, item_id, with_transcript=True)
    if new is None:
        new = archive.catalog.current_transcript(rec.id).version
    if old is None:
        old = max(1, new - 1)
    changes = diff_versions(archive, rec.id, old, new)
    if as_json:
        return print_json({"recording_id": rec.id, "old": old, "new": new,
                           "changes": [c.to_dict() for c in changes]})
    click.echo(f"Recording {rec.id}: version {old} -> version {new}, {len(changes)} segments differ.")
    click.echo(render_diff(changes), nl=False)


@main.command()
@click.argument("item_id", metavar="ID", required=False)
@click.option("--start", help="Where the passage starts: seconds (75.5) or hh:mm:ss.")
@click.option("--end", help="Where it ends: seconds or hh:mm:ss.")
@click.option("--version", type=int, help="Cite this transcript version (default: the current one).")
@click.option("--format", "fmt", type=click.Choice(["text", "docx"]), default="text", show_default=True,
              help="The citation block as text, or as a DOCX document (needs -o FILE).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@click.option("--check", "code", metavar="CODE", help="Check a citation code against the archive instead.")
@json_option
@pass_ctx
def cite(ctx, item_id, start, end, version, fmt, output, code, as_json):
    """Cite a passage of a session's transcript (`tcd cite ID --start S --end E`), or check a
    citation code (`tcd cite --check CODE`)."""
    from . import citations
    archive = ctx.archive
    if code:
        if item_id or start or end:
            raise click.UsageError("Give either --check CODE or ID --start S --end E, not both.")
        result = citations.check(archive, code, actor=_operator())
        if as_json:
            print_json(result.to_dict())
        else:
            click.echo(result.sentence(), err=not result.ok)
            if result.passage or result.citation.get("quote"):
                click.echo(result.quote)
        sys.exit(0 if result.ok else 1)
    if not item_id or start is None or end is None:
        raise click.UsageError("Give the session (or recording) ID with --start and --end, "
                               "or --check CODE.")
    if fmt == "docx" and output is None:
        raise click.UsageError("A DOCX file cannot be printed on the terminal; give -o FILE.")
    citation = citations.cite(archive, item_id, start, end, version=version, actor=_operator())
    if fmt == "docx":
        from .minutes import render_citation_docx
        _write_bytes(output, render_citation_docx(citation))
        return click.echo(f"Wrote citation {citation.code} to {output}.", err=True)
    text = json.dumps(citation.to_dict(), ensure_ascii=False, indent=2) if as_json else citation.block()
    if output is None:
        return click.echo(text)
    _write_bytes(output, (text + "\n").encode("utf-8"))
    click.echo(f"Wrote citation {citation.code} to {output}.", err=True)


# -- storage: backends, migration, legal hold and retention (S3 issue) --------------------------

@main.group()
def storage():
    """Where the objects are kept: local disk or an S3 server."""


@storage.command("info")
@json_option
@pass_ctx
def storage_info(ctx, as_json):
    """Which backend keeps the objects, whether it answers, whether it can lock objects."""
    from .holds import lock_support
    from .migrate import strip_secret
    archive = ctx.archive
    url = archive.settings.storage_url or "local"
    data = {"backend": "s3" if url.startswith("s3://") else "local", "url": strip_secret(url),
            "store": "", "reachable": False, "problem": "", "object_lock": False, "object_lock_note": ""}
    try:
        store = archive.store
        data["store"] = store.describe()
        store.check()
        data["reachable"] = True
        data["object_lock"], data["object_lock_note"] = lock_support(store)
    except ArchiveError as exc:
        data["problem"] = str(exc)
    if as_json:
        print_json(data)
    else:
        click.echo(f"backend: {data['backend']}  {data['store'] or data['url']}")
        click.echo("reachable: " + ("yes" if data["reachable"] else "no"))
        if data["reachable"]:
            click.echo("object lock: " + ("enforced by the server" if data["object_lock"]
                                          else f"not enforced ({data['object_lock_note']})"))
    if data["problem"]:
        fail(data["problem"])


@storage.command("migrate")
@click.option("--to", "url", required=True, metavar="local|s3://…",
              help="`local`, or s3://ACCESS@HOST:PORT/BUCKET?secure=false (secret from TCD_S3_SECRET, "
                   "or inside the url as ACCESS:SECRET, which is then kept in a 0600 file, not tcd.toml).")
@click.option("--create-bucket", is_flag=True, help="Create the S3 bucket (with object lock) if missing.")
@json_option
@pass_ctx
def storage_migrate(ctx, url, create_bucket, as_json):
    """Copy every object to another store, check each, then switch the archive to it.

    Interrupted, it resumes where it stopped when run again; the old store is left as it was."""
    from .migrate import migrate
    from .progress import bar
    archive = ctx.archive
    with bar("Migrating objects", len(archive.catalog.list_objects()), unit="objects") as advance:
        report = migrate(archive, url, actor=_operator(), create_bucket=create_bucket,
                         on_object=lambda sha, size, what: advance(1))
    if as_json:
        return print_json(report.to_dict())
    click.echo(report.sentence())
    for note in report.notes:
        click.echo(f"Note: {note}", err=True)


@storage.command("retain")
@click.argument("session_ids", nargs=-1, metavar="[ID]...")
@json_option
@pass_ctx
def storage_retain(ctx, session_ids, as_json):
    """Lock the objects of sessions (default: all) until their retention ends, where the S3
    bucket has object lock; run it after ingest or from a daily timer."""
    from .holds import apply_retention
    archive = ctx.archive
    ids = session_ids or [s.id for s in archive.catalog.list_sessions()]
    results = [apply_retention(archive, sid, actor=_operator()) for sid in ids]
    if as_json:
        return print_json([r.to_dict() for r in results])
    for r in results:
        click.echo(r.sentence())


@main.command()
@click.argument("session_id", metavar="ID")
@click.option("--reason", default="", help="Why (the case, the request), for the audit log.")
@json_option
@pass_ctx
def hold(ctx, session_id, reason, as_json):
    """Put a session under legal hold: its objects may not be deleted until released."""
    from .holds import set_legal_hold
    result = set_legal_hold(ctx.archive, session_id, True, actor=_operator(), reason=reason)
    if as_json:
        return print_json(result.to_dict())
    click.echo(result.sentence())


@main.command()
@click.argument("session_id", metavar="ID")
@click.option("--reason", default="", help="Why, for the audit log.")
@json_option
@pass_ctx
def release(ctx, session_id, reason, as_json):
    """Release a session from legal hold."""
    from .holds import set_legal_hold
    result = set_legal_hold(ctx.archive, session_id, False, actor=_operator(), reason=reason)
    if as_json:
        return print_json(result.to_dict())
    click.echo(result.sentence())


# -- fixity, backup and restore (backup issue) ----------------------------------------------------

class _Bar:
    """A progress bar whose total is learnt from the core (`on_total`) before the work starts."""

    def __init__(self, description: str):
        import contextlib
        self.description, self.stack, self.advance = description, contextlib.ExitStack(), None

    def total(self, total: int, *_) -> None:
        from .progress import bar
        self.advance = self.stack.enter_context(bar(self.description, total))

    def __call__(self, n: int) -> None:
        if self.advance:
            self.advance(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stack.close()


def _problems_then_exit(problems: list[str], sentence: str, ok: bool) -> None:
    for line in problems:
        click.echo(line)
    if not ok:
        fail(sentence)
    click.echo(sentence)


@main.command()
@click.argument("session_id", metavar="[ID]", required=False)
@click.option("--older-than", metavar="AGE", help="Only objects not verified within AGE (90d, 12h, 2w).")
@json_option
@pass_ctx
def verify(ctx, session_id, older_than, as_json):
    """Re-hash the stored objects (all, or one session's) against the catalog; name each one
    that differs or is missing and exit 1 if any does."""
    from .fixity import parse_age, verify as run_verify
    age = parse_age(older_than) if older_than else None
    with _Bar("Verifying objects") as progress:
        report = run_verify(ctx.archive, session_id, age, actor=_operator(), progress=progress,
                            on_total=progress.total)
    if as_json:
        print_json(report.to_dict())
        sys.exit(0 if report.ok else 1)
    _problems_then_exit([p.describe() for p in report.problems], report.sentence(), report.ok)


@main.group()
def backup():
    """Back up to an external disk (a BagIt bag) or to CD/DVD/BD images, and check backups."""


@backup.command("disk")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--session", "session_ids", multiple=True, metavar="ID", help="Only this session (repeatable).")
@json_option
@pass_ctx
def backup_disk_command(ctx, dest, session_ids, as_json):
    """Bring the bag at DEST up to date: only what is new is written, each file read back."""
    from .backup import backup_disk
    with _Bar("Backing up") as progress:
        report = backup_disk(ctx.archive, dest, actor=_operator(), session_ids=session_ids or None,
                             progress=progress, on_total=progress.total)
    if as_json:
        print_json(report.to_dict())
        sys.exit(0 if report.complete else 1)
    _problems_then_exit(report.problems, report.sentence(), report.complete)


@backup.command("disc")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--media", type=click.Choice(["cd", "dvd", "bd"]), required=True, help="The size of the discs.")
@click.option("--label", default="", help="The set's name, shown on every disc (default: TCD and the date).")
@click.option("--session", "session_ids", multiple=True, metavar="ID", help="Only this session (repeatable).")
@click.option("--media-size", type=int, hidden=True, help="Bytes per disc instead of --media (for tests).")
@json_option
@pass_ctx
def backup_disc_command(ctx, dest, media, label, session_ids, media_size, as_json):
    """Write ISO images (ISO 9660, Joliet, UDF) of as many discs as needed into the folder DEST."""
    from .disc import backup_disc
    with _Bar("Writing disc images") as progress:
        report = backup_disc(ctx.archive, dest, media_size or media, label=label, actor=_operator(),
                             session_ids=session_ids or None, progress=progress, on_total=progress.total)
    if as_json:
        print_json(report.to_dict())
        sys.exit(0 if report.complete else 1)
    for image in report.images:
        click.echo(image)
    _problems_then_exit(report.problems, report.sentence(), report.complete)


@backup.command("verify")
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@json_option
def backup_verify_command(src, as_json):
    """Check every checksum of a bag, a folder of ISO images or mounted discs; name every
    missing or differing file."""
    from .restore import verify_backup
    with _Bar("Checking the backup") as progress:
        check = verify_backup(src, progress=progress, on_total=progress.total)
    if as_json:
        print_json(check.to_dict())
        sys.exit(0 if check.ok else 1)
    _problems_then_exit(check.problems, check.sentence(), check.ok)


@backup.command("list")
@json_option
@pass_ctx
def backup_list_command(ctx, as_json):
    """The backups made from this archive, newest first, and the last fixity audit."""
    catalog = ctx.archive.catalog
    rows = catalog.list_backups()
    if as_json:
        return print_json({"backups": rows, "last_fixity_run": catalog.last_fixity_run()})
    for b in rows:
        click.echo(f"#{b['id']:<4} {b['started_at']}  {b['kind']:<4} {b['status']:<8} {b['dest']}")
    run = catalog.last_fixity_run()
    click.echo(f"Last fixity audit: {run['finished_at']}, {run['checked']} checked, {run['failed']} failed."
               if run else "No fixity audit yet; `tcd verify` runs one.")


@main.command()
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@json_option
@pass_ctx
def restore(ctx, src, as_json):
    """Rebuild the archive from a bag or a disc set, or repair the objects `tcd verify` found
    damaged; restoring twice changes nothing."""
    from .restore import restore as run_restore
    with _Bar("Restoring") as progress:
        report = run_restore(ctx.archive, src, actor=_operator(), progress=progress, on_total=progress.total)
    if as_json:
        print_json(report.to_dict())
        sys.exit(0 if not report.problems else 1)
    _problems_then_exit(report.problems, report.sentence(), not report.problems)


# -- notes, sealed passages, retention and the access report (issue 9) ---------------------------

def _user_option(f):
    return click.option("--user", "user_name", envvar="TCD_USER", required=True,
                        help="The catalog user acting (default: $TCD_USER); their role decides what they may do.")(f)


def _acting_user(archive, name: str):
    return archive.catalog.get_user(name)


def _indexes(archive) -> list:
    """The search indexes registered under the `tcd.index` entry points (archive imports none)."""
    return [ep.load()(archive) for ep in entry_points(group="tcd.index")]


def _reindex(archive) -> None:
    """Sealed text must leave the index and new notes enter it at once; a failure is reported,
    and `tcd reindex` (or the next sync) catches up."""
    try:
        for index in _indexes(archive):
            index.sync()
    except ArchiveError as exc:
        click.echo(f"tcd: the search index was not updated ({exc}); run `tcd reindex`.", err=True)


def _one_recording(archive, item_id: str):
    """A recording id, or a session id when the session has exactly one recording."""
    from .errors import InvalidInput, NotFound
    try:
        return archive.catalog.get_recording(item_id)
    except NotFound:
        recs = archive.catalog.recordings_for_session(archive.catalog.get_session(item_id).id)
    if len(recs) != 1:
        names = ", ".join(f"{r.id} ({r.point or r.original_name})" for r in recs) or "none"
        raise InvalidInput(f"Session {item_id} has {len(recs)} recordings; name one of them: {names}.")
    return recs[0]


def _span_text(start: float, end: float | None) -> str:
    return f"{start:g}–{end:g} s" if end is not None else f"{start:g} s"


@main.group()
def note():
    """Timestamped notes on a moment or a span of a recording."""


@note.command("add")
@click.argument("item_id", metavar="ID")
@click.option("--at", "start", type=float, required=True, help="The moment (or the start of the span), in seconds.")
@click.option("--end", type=float, help="The end of the span, in seconds (leave out for a moment).")
@click.option("--text", required=True, help="The note.")
@_user_option
@json_option
@pass_ctx
def note_add(ctx, item_id, start, end, text, user_name, as_json):
    """Add a note to a recording (ID: a recording, or a session with one recording)."""
    from .notes import add_note
    archive = ctx.archive
    rec = _one_recording(archive, item_id)
    added = add_note(archive, rec.id, start, end, text, _acting_user(archive, user_name))
    _reindex(archive)
    if as_json:
        return print_json(added.to_dict())
    click.echo(f"Added note {added.id} at {_span_text(added.start, added.end)} of recording {rec.id}.")


@note.command("list")
@click.argument("item_id", metavar="ID")
@click.option("--user", "user_name", envvar="TCD_USER",
              help="Show the notes as this user may read them (sealed ones hidden without clearance).")
@json_option
@pass_ctx
def note_list(ctx, item_id, user_name, as_json):
    """The notes of a session or of one recording, in time order."""
    from .errors import NotFound
    from .notes import list_notes
    from .seals import redact_notes
    archive = ctx.archive
    try:
        rec_ids = [archive.catalog.get_recording(item_id).id]
    except NotFound:
        rec_ids = [r.id for r in archive.catalog.recordings_for_session(archive.catalog.get_session(item_id).id)]
    rows = []
    for rec_id in rec_ids:
        found = list_notes(archive, recording_id=rec_id)
        if user_name:
            found = redact_notes(found, archive.catalog.list_seals(recording_id=rec_id),
                                 _acting_user(archive, user_name))
        rows += found
    if as_json:
        return print_json([n.to_dict() for n in rows])
    if not rows:
        return click.echo(f"No notes on {item_id}; `tcd note add {item_id} --at SECONDS --text ...` adds one.")
    for n in rows:
        click.echo(f"#{n.id:<5} {n.recording_id}  {_span_text(n.start, n.end):<16} {n.author:<12} v{n.version}  {n.text}")


@note.command("edit")
@click.argument("note_id", type=int)
@click.option("--text", help="The new text.")
@click.option("--at", "start", type=float, help="The new moment or start, in seconds.")
@click.option("--end", type=float, help="The new end of the span, in seconds.")
@click.option("--moment", is_flag=True, help="Make the note a moment (drop its end).")
@_user_option
@json_option
@pass_ctx
def note_edit(ctx, note_id, text, start, end, moment, user_name, as_json):
    """Change a note (only its author or an admin); the earlier version is kept."""
    from .notes import edit_note
    archive = ctx.archive
    changes = {"end": None} if moment else ({"end": end} if end is not None else {})
    edited = edit_note(archive, note_id, _acting_user(archive, user_name), text=text, start=start, **changes)
    _reindex(archive)
    if as_json:
        return print_json(edited.to_dict())
    click.echo(f"Note {edited.id} is now version {edited.version}.")


@note.command("history")
@click.argument("note_id", type=int)
@json_option
@pass_ctx
def note_history_command(ctx, note_id, as_json):
    """Every version of a note: who changed it, when, and what it said."""
    from .notes import note_history
    rows = note_history(ctx.archive, note_id)
    if as_json:
        return print_json(rows)
    for v in rows:
        click.echo(f"v{v['version']}  {v['at']}  {v['editor']:<12} {_span_text(v['start'], v['end']):<16} {v['text']}")


@main.group()
def seal():
    """Sealed passages: spans only admins and cleared users may read, hear and see."""


@seal.command("add")
@click.argument("item_id", metavar="ID")
@click.option("--start", type=float, required=True, help="Start of the span, in seconds.")
@click.option("--end", type=float, required=True, help="End of the span, in seconds.")
@click.option("--reason", required=True, help="Why the span is sealed (required; kept in the audit log).")
@_user_option
@json_option
@pass_ctx
def seal_add(ctx, item_id, start, end, reason, user_name, as_json):
    """Seal a span of a recording and make its silenced access copy."""
    from .seals import add_seal, make_sealed_copy
    archive = ctx.archive
    user = _acting_user(archive, user_name)
    rec = _one_recording(archive, item_id)
    added = add_seal(archive, rec.id, start, end, reason, user)
    _reindex(archive)
    copy = make_sealed_copy(archive, rec.id, actor=user.name)
    if as_json:
        return print_json({**added.to_dict(), "sealed_copy": copy})
    click.echo(f"Sealed {_span_text(added.start, added.end)} of recording {rec.id} (seal {added.id}); "
               f"users without clearance now play the silenced copy {copy['sha256'][:12]}….")


@seal.command("list")
@click.argument("item_id", metavar="ID")
@click.option("--all", "with_removed", is_flag=True, help="Also the seals removed since.")
@json_option
@pass_ctx
def seal_list(ctx, item_id, with_removed, as_json):
    """The seals of a session or of one recording."""
    from .errors import NotFound
    from .seals import list_seals
    archive = ctx.archive
    try:
        rows = list_seals(archive, recording_id=archive.catalog.get_recording(item_id).id, with_removed=with_removed)
    except NotFound:
        rows = list_seals(archive, session_id=item_id, with_removed=with_removed)
    if as_json:
        return print_json([s.to_dict() for s in rows])
    if not rows:
        return click.echo(f"Nothing of {item_id} is sealed.")
    for s in rows:
        removed = f"  removed {s.removed_at} by {s.removed_by}" if s.removed_at else ""
        click.echo(f"#{s.id:<5} {s.recording_id}  {_span_text(s.start, s.end):<16} {s.sealed_by:<12} "
                   f"{s.sealed_at}  {s.reason}{removed}")


@seal.command("remove")
@click.argument("seal_id", type=int)
@click.option("--reason", default="", help="Why the passage is unsealed, for the audit log.")
@_user_option
@pass_ctx
def seal_remove(ctx, seal_id, reason, user_name):
    """Unseal a span (audited); the silenced copy is made again for the seals left."""
    from .seals import make_sealed_copy, remove_seal
    archive = ctx.archive
    user = _acting_user(archive, user_name)
    removed = remove_seal(archive, seal_id, user, reason)
    _reindex(archive)
    make_sealed_copy(archive, removed.recording_id, actor=user.name)
    click.echo(f"Seal {seal_id} on {_span_text(removed.start, removed.end)} of recording "
               f"{removed.recording_id} is removed.")


@seal.command("refresh")
@click.argument("item_id", metavar="ID")
@pass_ctx
def seal_refresh(ctx, item_id):
    """Make the silenced copies a session's (or a recording's) seals need, if any is missing."""
    from .errors import NotFound
    from .seals import make_sealed_copy
    archive = ctx.archive
    try:
        recs = [archive.catalog.get_recording(item_id)]
    except NotFound:
        recs = archive.catalog.recordings_for_session(archive.catalog.get_session(item_id).id)
    for rec in recs:
        copy = make_sealed_copy(archive, rec.id, actor=_operator())
        click.echo(f"{rec.id}: " + (f"silenced copy {copy['sha256'][:12]}… for {len(copy['spans'])} sealed spans."
                                    if copy else "nothing sealed."))


@main.group()
def retention():
    """How long sessions are kept, and deleting them by two people when their time has passed."""


@retention.command("set")
@click.argument("session_id", metavar="ID")
@click.argument("value", metavar="permanent|YEARS")
@_user_option
@pass_ctx
def retention_set(ctx, session_id, value, user_name):
    """Keep a session permanently or for a number of years from its date (`tcd hold` for legal hold)."""
    from .retention import expires_on, set_retention
    archive = ctx.archive
    session = set_retention(archive, session_id, value, _acting_user(archive, user_name))
    until = expires_on(session)
    click.echo(f"{session.id} is kept " + (f"until {until.isoformat()}." if until else "permanently."))


@retention.command("due")
@json_option
@pass_ctx
def retention_due(ctx, as_json):
    """Sessions whose retention has passed (those under legal hold are listed but cannot be deleted)."""
    from .retention import due
    rows = due(ctx.archive)
    if as_json:
        return print_json(rows)
    if not rows:
        return click.echo("No session has passed its retention.")
    for r in rows:
        state = ("legal hold" if r["legal_hold"] else
                 f"proposed (deletion {r['proposal']})" if r["proposal"] else "due")
        click.echo(f"{r['session_id']}  held {r['held_on']}  kept {r['retention']} years, until {r['expires_on']}  "
                   f"{state:<22} {r['title']}")


@retention.command("propose")
@click.argument("session_id", metavar="ID")
@click.option("--reason", default="", help="Why, for the audit log and the approver.")
@_user_option
@json_option
@pass_ctx
def retention_propose(ctx, session_id, reason, user_name, as_json):
    """Propose deleting a session whose retention has passed; another user must approve."""
    from .retention import propose
    archive = ctx.archive
    deletion = propose(archive, session_id, _acting_user(archive, user_name), reason)
    if as_json:
        return print_json(deletion)
    click.echo(f"Proposed deletion {deletion['id']} of {session_id}; another user approves it with "
               f"`tcd retention approve {deletion['id']} --user NAME`.")


@retention.command("approve")
@click.argument("deletion_id", type=int)
@_user_option
@json_option
@pass_ctx
def retention_approve(ctx, deletion_id, user_name, as_json):
    """Approve a deletion proposed by someone else: the session leaves the catalog, the store and
    the index, and the next `tcd backup disk` removes it from each backup."""
    from .retention import approve
    archive = ctx.archive
    def drop_from_index(session_id: str) -> None:
        for index in _indexes(archive):
            index.remove_session(session_id)
    deletion = approve(archive, deletion_id, _acting_user(archive, user_name), on_deleted=drop_from_index)
    if as_json:
        return print_json(deletion)
    click.echo(f"Deleted {deletion['session_id']} ({len(deletion['detail'].get('removed', []))} objects); "
               "run `tcd backup disk DEST` on each backup disk to remove it there too.")


@retention.command("withdraw")
@click.argument("deletion_id", type=int)
@_user_option
@pass_ctx
def retention_withdraw(ctx, deletion_id, user_name):
    """Withdraw a deletion proposal."""
    from .retention import withdraw
    archive = ctx.archive
    withdrawn = withdraw(archive, deletion_id, _acting_user(archive, user_name))
    click.echo(f"Deletion {deletion_id} of {withdrawn['session_id']} is withdrawn.")


@retention.command("proposals")
@click.option("--all", "show_all", is_flag=True, help="Also finished and withdrawn deletions.")
@json_option
@pass_ctx
def retention_proposals(ctx, show_all, as_json):
    """Deletion proposals waiting for a second user (and, with --all, past deletions)."""
    from .retention import proposals
    rows = proposals(ctx.archive, open_only=not show_all)
    if as_json:
        return print_json(rows)
    if not rows:
        return click.echo("No deletion is waiting for approval.")
    for d in rows:
        click.echo(f"#{d['id']:<4} {d['session_id']}  {d['status']:<9} proposed by {d['proposed_by']} "
                   f"{d['proposed_at']}" + (f", {d['approved_by']} {d['approved_at']}" if d["approved_by"] else "")
                   + (f"  {d['reason']}" if d["reason"] else ""))


@main.command("access-report")
@click.argument("session_id", metavar="ID")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (UTF-8 with BOM, for spreadsheets).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@json_option
@pass_ctx
def access_report_command(ctx, session_id, as_csv, output, as_json):
    """Who viewed, played, exported or cited a session, and when (to answer a data subject's request)."""
    from .access_report import report, to_csv
    rows = report(ctx.archive, session_id, actor=_operator(),
                  fmt="csv" if as_csv else "json" if as_json else "text")
    if as_csv:
        text = to_csv(rows)
    elif as_json:
        text = json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=2) + "\n"
    else:
        text = "".join(f"{r.at}  {r.actor:<14} {r.role:<10} {r.kind_label:<15} {r.target or '-'}  {r.detail}\n"
                       for r in rows) or f"No one has viewed, played, exported or cited {session_id}.\n"
    if output is None:
        return click.echo(text, nl=False)
    output.write_text(text, encoding="utf-8", newline="")
    click.echo(f"Wrote {len(rows)} accesses to {session_id} to {output}.", err=True)

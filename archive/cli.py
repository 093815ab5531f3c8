"""The `tcd` command line: a thin layer that parses options, calls the core and prints.

The group and the session commands live here; every other command (`archive.commands.*`, and the
`ingest`, `search` and `web` packages) is added through the `tcd.commands` entry point group
(see pyproject.toml), so `archive` imports none of the other packages and `tcd X` imports only X. Errors of the work
(`ArchiveError`) print one sentence on stderr and exit 1; bad usage exits 2.
"""
from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points

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
        current = catalog.current_transcript(rec.id, with_segments=False)
        recordings.append({**rec.to_dict(),
                           "transcripts": [t.to_dict(with_segments=False)
                                           for t in catalog.transcripts_for_recording(rec.id, with_segments=False)],
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


def user_option(f):
    """`--user NAME` (or $TCD_USER): the catalog user a command acts as, whose role decides."""
    return click.option("--user", "user_name", envvar="TCD_USER", required=True,
                        help="The catalog user acting (default: $TCD_USER); their role decides what they may do.")(f)


def acting_user(archive, name: str):
    return archive.catalog.get_user(name)


def operator_name() -> str:
    """Who runs the command, for the audit log: the operating-system user."""
    import getpass
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def search_indexes(archive) -> list:
    """The search indexes registered under the `tcd.index` entry points (archive imports none)."""
    return [ep.load()(archive) for ep in entry_points(group="tcd.index")]


def refresh_index(archive) -> None:
    """Bring the search index up to date after a change (new transcript, note, seal); a failure
    is reported, and `tcd reindex` (or the next sync) catches up."""
    try:
        for index in search_indexes(archive):
            index.sync()
    except ArchiveError as exc:
        click.echo(f"tcd: the search index was not updated ({exc}); run `tcd reindex`.", err=True)

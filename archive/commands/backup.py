"""Commands for fixity and backups: `tcd verify`, `tcd backup`, `tcd restore`."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..cli import fail, json_option, operator_name, pass_ctx, print_json

class _Bar:
    """A progress bar whose total is learnt from the core (`on_total`) before the work starts."""

    def __init__(self, description: str):
        import contextlib
        self.description, self.stack, self.advance = description, contextlib.ExitStack(), None

    def total(self, total: int, *_) -> None:
        from ..progress import bar
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


@click.command()
@click.argument("session_id", metavar="[ID]", required=False)
@click.option("--older-than", metavar="AGE", help="Only objects not verified within AGE (90d, 12h, 2w).")
@click.option("--history", is_flag=True, help="Run nothing: list the past runs and the objects that failed their last check.")
@json_option
@pass_ctx
def verify(ctx, session_id, older_than, history, as_json):
    """Re-hash the stored objects (all, or one session's) against the catalog; name each one
    that differs or is missing and exit 1 if any does."""
    from ..fixity import parse_age, verify as run_verify
    if history:
        if session_id or older_than:
            fail("--history lists every past run; leave out ID and --older-than.")
        return _fixity_history(ctx.archive.catalog, as_json)
    age = parse_age(older_than) if older_than else None
    with _Bar("Verifying objects") as progress:
        report = run_verify(ctx.archive, session_id, age, actor=operator_name(), progress=progress,
                            on_total=progress.total)
    if as_json:
        print_json(report.to_dict())
        sys.exit(0 if report.ok else 1)
    _problems_then_exit(report.lines(), report.sentence(), report.ok)


def _fixity_history(catalog, as_json: bool) -> None:
    """The record an auditor asks for: when the objects were checked, and what is still damaged."""
    runs, damaged = catalog.list_fixity_runs(limit=100), catalog.damaged_objects()
    if as_json:
        return print_json({"runs": runs, "damaged": damaged})
    for r in runs:
        click.echo(f"#{r['id']:<4} {r['started_at']}  {r['scope']}: " + (
            f"{r['checked']} checked, {r['failed']} failed" if r["finished_at"] else "interrupted"))
    if not runs:
        click.echo("No fixity run yet; `tcd verify` runs one.")
    for o in damaged:
        click.echo(f"DAMAGED: {o['kind']} {o['sha256']} (last checked {o['verified_at']})")
    click.echo(f"{len(damaged)} object(s) failed their last check; `tcd restore BAG` repairs them from a backup."
               if damaged else "No object failed its last check.")


@click.group()
def backup():
    """Back up to an external disk (a BagIt bag) or to CD/DVD/BD images, and check backups."""


@backup.command("disk")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--session", "session_ids", multiple=True, metavar="ID", help="Only this session (repeatable).")
@json_option
@pass_ctx
def backup_disk_command(ctx, dest, session_ids, as_json):
    """Bring the bag at DEST up to date: only what is new is written, each file read back."""
    from ..backup import backup_disk
    with _Bar("Backing up") as progress:
        report = backup_disk(ctx.archive, dest, actor=operator_name(), session_ids=session_ids or None,
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
    from ..disc import backup_disc
    with _Bar("Writing disc images") as progress:
        report = backup_disc(ctx.archive, dest, media_size or media, label=label, actor=operator_name(),
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
    from ..restore import verify_backup
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


@click.command()
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@json_option
@pass_ctx
def restore(ctx, src, as_json):
    """Rebuild the archive from a bag or a disc set, or repair the objects `tcd verify` found
    damaged; restoring twice changes nothing."""
    from ..restore import restore as run_restore
    with _Bar("Restoring") as progress:
        report = run_restore(ctx.archive, src, actor=operator_name(), progress=progress, on_total=progress.total)
    if as_json:
        print_json(report.to_dict())
        sys.exit(0 if not report.problems else 1)
    _problems_then_exit(report.problems, report.sentence(), not report.problems)

"""Command-line commands of the ingest package: ingest, watch, jobs (and, from the transcripts
work, model and transcribe). Registered through the `tcd.commands` entry points."""
from __future__ import annotations

import click

from archive.cli import json_option, pass_ctx, print_json


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

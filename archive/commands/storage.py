"""Commands for where objects are kept: `tcd storage`, and legal hold (`tcd hold`, `tcd release`)."""
from __future__ import annotations

import click

from ..cli import acting_user, fail, json_option, operator_name, pass_ctx, print_json, user_option
from ..errors import ArchiveError


@click.group()
def storage():
    """Where the objects are kept: local disk or an S3 server."""


@storage.command("info")
@json_option
@pass_ctx
def storage_info(ctx, as_json):
    """Which backend keeps the objects, whether it answers, whether it can lock objects."""
    from ..holds import lock_support
    from ..migrate import strip_secret
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
    from ..migrate import migrate
    from ..progress import bar
    archive = ctx.archive
    with bar("Migrating objects", len(archive.catalog.list_objects()), unit="objects") as advance:
        report = migrate(archive, url, actor=operator_name(), create_bucket=create_bucket,
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
    from ..holds import apply_retention
    archive = ctx.archive
    ids = session_ids or [s.id for s in archive.catalog.list_sessions()]
    results = [apply_retention(archive, sid, actor=operator_name()) for sid in ids]
    if as_json:
        return print_json([r.to_dict() for r in results])
    for r in results:
        click.echo(r.sentence())


@click.command()
@click.argument("session_id", metavar="ID")
@click.option("--reason", required=True, help="Why (the case, the request, the decision), for the audit log.")
@user_option
@json_option
@pass_ctx
def hold(ctx, session_id, reason, user_name, as_json):
    """Put a session under legal hold: its objects may not be deleted until released."""
    _hold(ctx.archive, session_id, True, user_name, reason, as_json)


@click.command()
@click.argument("session_id", metavar="ID")
@click.option("--reason", default="", help="Why, for the audit log.")
@user_option
@json_option
@pass_ctx
def release(ctx, session_id, reason, user_name, as_json):
    """Release a session from legal hold."""
    _hold(ctx.archive, session_id, False, user_name, reason, as_json)


def _hold(archive, session_id: str, on: bool, user_name: str, reason: str, as_json: bool) -> None:
    # one path with the rules of retention: the user's role, and a reason for a hold
    from ..retention import set_legal_hold
    result = set_legal_hold(archive, session_id, on, acting_user(archive, user_name), reason)
    if as_json:
        return print_json(result.to_dict())
    click.echo(result.sentence())

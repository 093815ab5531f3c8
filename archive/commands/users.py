"""Commands for users of the web application and the audit log: `tcd user`, `tcd audit`."""
from __future__ import annotations

import sys

import click

from ..catalog import with_detail
from ..cli import json_option, operator_name, pass_ctx, print_json

@click.group()
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
    from .. import users
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    added = users.add_user(ctx.archive, name, role, password, clearance, actor=operator_name())
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
    from .. import users
    users.disable_user(ctx.archive, name, actor=operator_name())
    click.echo(f"User {name} is disabled.")


@click.command()
@click.option("--verify", "verify_chain", is_flag=True, help="Prove that no entry was changed or removed.")
@click.option("--session", "session_id", help="Only the entries about this session.")
@click.option("--actor", help="Only the entries of this user.")
@click.option("--limit", type=int, default=50, show_default=True, help="How many of the newest entries (0: all).")
@json_option
@pass_ctx
def audit(ctx, verify_chain, session_id, actor, limit, as_json):
    """The audit log: who signed in, searched, viewed, played, downloaded or changed what."""
    from .. import audit as audit_log
    catalog = ctx.archive.catalog
    if verify_chain:
        report = audit_log.verify(catalog)
        if as_json:
            print_json(report.to_dict())
        else:
            click.echo(report.sentence(), err=not report.ok)
        sys.exit(0 if report.ok else 1)
    entries = [with_detail(e) for e in catalog.audit_entries(session_id=session_id, actor=actor,
                                                             limit=limit or None, descending=True)[::-1]]
    if as_json:
        return print_json(entries)
    if not entries:
        return click.echo("The audit log is empty.")
    for e in entries:
        extra = " ".join(f"{k}={v}" for k, v in e["detail"].items())
        click.echo(f"#{e['id']:<6} {e['at']}  {e['actor']:<14} {e['action']:<14} "
                   f"{e['session_id'] or '-':<14} {e['target'] or '-'}  {extra}".rstrip())

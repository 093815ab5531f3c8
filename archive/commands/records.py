"""Commands for notes, sealed passages, retention and the access report."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..cli import (acting_user, json_option, operator_name, pass_ctx, print_json, refresh_index,
                   search_indexes, user_option)

def _one_recording(archive, item_id: str):
    """A recording id, or a session id when the session has exactly one recording."""
    from ..errors import InvalidInput, NotFound
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


@click.group()
def note():
    """Timestamped notes on a moment or a span of a recording."""


@note.command("add")
@click.argument("item_id", metavar="ID")
@click.option("--at", "start", type=float, required=True, help="The moment (or the start of the span), in seconds.")
@click.option("--end", type=float, help="The end of the span, in seconds (leave out for a moment).")
@click.option("--text", required=True, help="The note.")
@user_option
@json_option
@pass_ctx
def note_add(ctx, item_id, start, end, text, user_name, as_json):
    """Add a note to a recording (ID: a recording, or a session with one recording)."""
    from ..notes import add_note
    archive = ctx.archive
    rec = _one_recording(archive, item_id)
    added = add_note(archive, rec.id, start, end, text, acting_user(archive, user_name))
    refresh_index(archive)
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
    from ..errors import NotFound
    from ..notes import list_notes
    from ..seals import redact_notes
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
                                 acting_user(archive, user_name))
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
@user_option
@json_option
@pass_ctx
def note_edit(ctx, note_id, text, start, end, moment, user_name, as_json):
    """Change a note (only its author or an admin); the earlier version is kept."""
    from ..notes import edit_note
    archive = ctx.archive
    changes = {"end": None} if moment else ({"end": end} if end is not None else {})
    edited = edit_note(archive, note_id, acting_user(archive, user_name), text=text, start=start, **changes)
    refresh_index(archive)
    if as_json:
        return print_json(edited.to_dict())
    click.echo(f"Note {edited.id} is now version {edited.version}.")


@note.command("history")
@click.argument("note_id", type=int)
@json_option
@pass_ctx
def note_history_command(ctx, note_id, as_json):
    """Every version of a note: who changed it, when, and what it said."""
    from ..notes import note_history
    rows = note_history(ctx.archive, note_id)
    if as_json:
        return print_json(rows)
    for v in rows:
        click.echo(f"v{v['version']}  {v['at']}  {v['editor']:<12} {_span_text(v['start'], v['end']):<16} {v['text']}")


@click.group()
def seal():
    """Sealed passages: spans only admins and cleared users may read, hear and see."""


@seal.command("add")
@click.argument("item_id", metavar="ID")
@click.option("--start", type=float, required=True, help="Start of the span, in seconds.")
@click.option("--end", type=float, required=True, help="End of the span, in seconds.")
@click.option("--reason", required=True, help="Why the span is sealed (required; kept in the audit log).")
@user_option
@json_option
@pass_ctx
def seal_add(ctx, item_id, start, end, reason, user_name, as_json):
    """Seal a span of a recording and make its silenced access copy."""
    from ..seals import add_seal, make_sealed_copy
    archive = ctx.archive
    user = acting_user(archive, user_name)
    rec = _one_recording(archive, item_id)
    added = add_seal(archive, rec.id, start, end, reason, user)
    refresh_index(archive)
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
    from ..errors import NotFound
    from ..seals import list_seals
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
@user_option
@pass_ctx
def seal_remove(ctx, seal_id, reason, user_name):
    """Unseal a span (audited); the silenced copy is made again for the seals left."""
    from ..seals import make_sealed_copy, remove_seal
    archive = ctx.archive
    user = acting_user(archive, user_name)
    removed = remove_seal(archive, seal_id, user, reason)
    refresh_index(archive)
    make_sealed_copy(archive, removed.recording_id, actor=user.name)
    click.echo(f"Seal {seal_id} on {_span_text(removed.start, removed.end)} of recording "
               f"{removed.recording_id} is removed.")


@seal.command("refresh")
@click.argument("item_id", metavar="ID")
@pass_ctx
def seal_refresh(ctx, item_id):
    """Make the silenced copies a session's (or a recording's) seals need, if any is missing."""
    from ..errors import NotFound
    from ..seals import make_sealed_copy
    archive = ctx.archive
    try:
        recs = [archive.catalog.get_recording(item_id)]
    except NotFound:
        recs = archive.catalog.recordings_for_session(archive.catalog.get_session(item_id).id)
    for rec in recs:
        copy = make_sealed_copy(archive, rec.id, actor=operator_name())
        click.echo(f"{rec.id}: " + (f"silenced copy {copy['sha256'][:12]}… for {len(copy['spans'])} sealed spans."
                                    if copy else "nothing sealed."))


@click.group()
def retention():
    """How long sessions are kept, and deleting them by two people when their time has passed."""


@retention.command("set")
@click.argument("session_id", metavar="ID")
@click.argument("value", metavar="permanent|YEARS")
@user_option
@pass_ctx
def retention_set(ctx, session_id, value, user_name):
    """Keep a session permanently or for a number of years from its date (`tcd hold` for legal hold)."""
    from ..retention import expires_on, set_retention
    archive = ctx.archive
    session = set_retention(archive, session_id, value, acting_user(archive, user_name))
    until = expires_on(session)
    click.echo(f"{session.id} is kept " + (f"until {until.isoformat()}." if until else "permanently."))


@retention.command("due")
@json_option
@pass_ctx
def retention_due(ctx, as_json):
    """Sessions whose retention has passed (those under legal hold are listed but cannot be deleted)."""
    from ..retention import due
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
@user_option
@json_option
@pass_ctx
def retention_propose(ctx, session_id, reason, user_name, as_json):
    """Propose deleting a session whose retention has passed; another user must approve."""
    from ..retention import propose
    archive = ctx.archive
    deletion = propose(archive, session_id, acting_user(archive, user_name), reason)
    if as_json:
        return print_json(deletion)
    click.echo(f"Proposed deletion {deletion['id']} of {session_id}; another user approves it with "
               f"`tcd retention approve {deletion['id']} --user NAME`.")


@retention.command("approve")
@click.argument("deletion_id", type=int)
@user_option
@json_option
@pass_ctx
def retention_approve(ctx, deletion_id, user_name, as_json):
    """Approve a deletion proposed by someone else: the session leaves the catalog, the store and
    the index, and the next `tcd backup disk` removes it from each backup."""
    from ..retention import approve
    archive = ctx.archive
    def drop_from_index(session_id: str) -> None:
        for index in search_indexes(archive):
            index.remove_session(session_id)
    deletion = approve(archive, deletion_id, acting_user(archive, user_name), on_deleted=drop_from_index)
    if as_json:
        return print_json(deletion)
    click.echo(f"Deleted {deletion['session_id']} ({len(deletion['detail'].get('removed', []))} objects); "
               "run `tcd backup disk DEST` on each backup disk to remove it there too.")


@retention.command("withdraw")
@click.argument("deletion_id", type=int)
@user_option
@pass_ctx
def retention_withdraw(ctx, deletion_id, user_name):
    """Withdraw a deletion proposal."""
    from ..retention import withdraw
    archive = ctx.archive
    withdrawn = withdraw(archive, deletion_id, acting_user(archive, user_name))
    click.echo(f"Deletion {deletion_id} of {withdrawn['session_id']} is withdrawn.")


@retention.command("proposals")
@click.option("--all", "show_all", is_flag=True, help="Also finished and withdrawn deletions.")
@json_option
@pass_ctx
def retention_proposals(ctx, show_all, as_json):
    """Deletion proposals waiting for a second user (and, with --all, past deletions)."""
    from ..retention import proposals
    rows = proposals(ctx.archive, open_only=not show_all)
    if as_json:
        return print_json(rows)
    if not rows:
        return click.echo("No deletion is waiting for approval.")
    for d in rows:
        click.echo(f"#{d['id']:<4} {d['session_id']}  {d['status']:<9} proposed by {d['proposed_by']} "
                   f"{d['proposed_at']}" + (f", {d['approved_by']} {d['approved_at']}" if d["approved_by"] else "")
                   + (f"  {d['reason']}" if d["reason"] else ""))


@click.command("access-report")
@click.argument("session_id", metavar="ID")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (UTF-8 with BOM, for spreadsheets).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@json_option
@pass_ctx
def access_report_command(ctx, session_id, as_csv, output, as_json):
    """Who viewed, played, exported or cited a session, and when (to answer a data subject's request)."""
    from ..access_report import report, to_csv
    rows = report(ctx.archive, session_id, actor=operator_name(),
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

"""Commands for transcripts: print, import, compare versions (`tcd transcript`) and cite (`tcd cite`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..cli import json_option, operator_name, pass_ctx, print_json, refresh_index

class _TranscriptGroup(click.Group):
    """`tcd transcript ID` prints (the `show` subcommand); `tcd transcript import ID FILE` imports."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_TranscriptGroup)
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
    from ..errors import NotFound
    from ..transcripts import render, resolve_recording
    archive = ctx.archive
    rec = resolve_recording(archive, item_id, with_transcript=version is None)
    current = (archive.catalog.get_transcript(rec.id, version) if version
               else archive.catalog.current_transcript(rec.id))
    if current is None:
        raise NotFound(f"Recording {rec.id} has no transcript yet; `tcd transcribe {rec.id}` makes one.")
    if fmt == "docx" and output is None:
        raise click.UsageError("A DOCX file cannot be printed on the terminal; give -o FILE.")
    archive.audit(operator_name(), "download", rec.session_id, rec.id, format=fmt,
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
    from ..transcripts import import_transcript
    saved = import_transcript(ctx.archive, item_id, file, author or operator_name(), label=label, fmt=fmt)
    refresh_index(ctx.archive)
    click.echo(f"Stored {file.name} as version {saved.version} of the transcript of recording "
               f"{saved.recording_id} ({len(saved.segments)} segments).")


# -- minutes, differences between versions and citations (citations issue) ----------------------

def _write_bytes(output: Path, body: bytes) -> None:
    tmp = output.with_name(f".{output.name}.part")
    tmp.write_bytes(body)
    tmp.replace(output)


def _write_docx(archive, rec, transcript, output: Path) -> None:
    from ..minutes import render_minutes
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
    from ..corrections import diff_versions, render_diff
    from ..transcripts import resolve_recording
    archive = ctx.archive
    rec = resolve_recording(archive, item_id, with_transcript=True)
    if new is None:
        new = archive.catalog.current_transcript(rec.id, with_segments=False).version
    if old is None:
        old = max(1, new - 1)
    changes = diff_versions(archive, rec.id, old, new)
    if as_json:
        return print_json({"recording_id": rec.id, "old": old, "new": new,
                           "changes": [c.to_dict() for c in changes]})
    click.echo(f"Recording {rec.id}: version {old} -> version {new}, {len(changes)} segments differ.")
    click.echo(render_diff(changes), nl=False)


@click.command()
@click.argument("item_id", metavar="ID", required=False)
@click.option("--start", help="Where the passage starts: seconds (75.5) or hh:mm:ss.")
@click.option("--end", help="Where it ends: seconds or hh:mm:ss.")
@click.option("--version", type=int, help="Cite this transcript version (default: the current one).")
@click.option("--format", "fmt", type=click.Choice(["text", "docx"]), default="text", show_default=True,
              help="The citation block as text, or as a DOCX document (needs -o FILE).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@click.option("--check", "code", metavar="CODE", help="Check a citation code against the archive instead.")
@click.option("--list", "listing", is_flag=True, help="List the citations issued for the session (or recording) ID.")
@json_option
@pass_ctx
def cite(ctx, item_id, start, end, version, fmt, output, code, listing, as_json):
    """Cite a passage of a session's transcript (`tcd cite ID --start S --end E`), check a
    citation code (`tcd cite --check CODE`), or list those issued (`tcd cite --list ID`)."""
    from .. import citations
    archive = ctx.archive
    if listing:
        if not item_id or start or end or code:
            raise click.UsageError("Give --list with the session (or recording) ID alone.")
        return _list_citations(archive, item_id, as_json)
    if code:
        if item_id or start or end:
            raise click.UsageError("Give either --check CODE or ID --start S --end E, not both.")
        result = citations.check(archive, code, actor=operator_name())
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
    citation = citations.cite(archive, item_id, start, end, version=version, actor=operator_name())
    if fmt == "docx":
        from ..minutes import render_citation_docx
        _write_bytes(output, render_citation_docx(citation))
        return click.echo(f"Wrote citation {citation.code} to {output}.", err=True)
    text = json.dumps(citation.to_dict(), ensure_ascii=False, indent=2) if as_json else citation.block()
    if output is None:
        return click.echo(text)
    _write_bytes(output, (text + "\n").encode("utf-8"))
    click.echo(f"Wrote citation {citation.code} to {output}.", err=True)


def _list_citations(archive, item_id: str, as_json: bool) -> None:
    """The codes already issued, so a handler finds one before citing the same passage again."""
    from ..errors import NotFound
    from ..minutes import clock
    catalog = archive.catalog
    try:
        recordings = [catalog.get_recording(item_id)]
    except NotFound:
        recordings = catalog.recordings_for_session(catalog.get_session(item_id).id)
    rows = [c for r in recordings for c in catalog.citations_for_recording(r.id)]
    if as_json:
        return print_json(rows)
    for c in rows:
        quote = c["quote"] if len(c["quote"]) <= 60 else c["quote"][:59] + "…"
        click.echo(f"{c['code']}  {c['issued_at']}  {c['issued_by']}  recording {c['recording_id']} "
                   f"v{c['version']} {clock(c['start'])}–{clock(c['end'], up=True)}  “{quote}”")
    if not rows:
        click.echo(f"No citation has been issued for {item_id} yet.")

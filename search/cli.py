"""`tcd search` and `tcd reindex`: thin commands over search.open_index (registered through the
`tcd.commands` entry points of pyproject.toml)."""
from __future__ import annotations

import time

import click

from archive.cli import json_option, pass_ctx, print_json

from . import IndexBusy, SearchIndex, open_index


def _clock(seconds: float) -> str:
    seconds = int(seconds or 0)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _plain(snippet: str) -> str:
    """A snippet for the terminal: <mark> as [brackets], entities back to characters."""
    import html
    return html.unescape(snippet.replace("<mark>", "[").replace("</mark>", "]"))


@click.command()
@click.argument("query", nargs=-1)
@click.option("--from", "date_from", metavar="YYYY-MM-DD", help="Only sessions held on or after this day.")
@click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Only sessions held on or before this day.")
@click.option("--case", help="Only sessions of this case code.")
@click.option("--category", help="Only sessions of this case category (a-e or khác).")
@click.option("--point", help="Only sessions with this bridge point.")
@click.option("--complainant", help="Only sessions of this complainant.")
@click.option("--sort", type=click.Choice(["relevance", "date"]), default="relevance", show_default=True)
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@json_option
@pass_ctx
def search(ctx, query, date_from, date_to, case, category, point, complainant, sort, page, limit, as_json):
    """Find where words were said: QUERY may hold words, "a phrase", and field:value filters."""
    index = open_index(ctx.archive)
    notes = []
    try:
        index.sync()
    except IndexBusy:
        notes.append("Chỉ mục đang được cập nhật ở nơi khác; kết quả có thể chưa có các thay đổi mới nhất.")
    result = index.search(" ".join(query), date_from=date_from, date_to=date_to, case=case,
                          category=category, point=point, complainant=complainant, sort=sort,
                          page=page, limit=limit)
    result.messages[:0] = notes
    if as_json:
        return print_json({"total": result.total, "page": result.page, "messages": result.messages,
                           "hits": [{"session": h.session_id, "title": h.title, "held_on": h.held_on,
                                     "start": h.start, "end": h.end, "snippet": h.snippet,
                                     "recording_id": h.recording_id, "speaker": h.speaker}
                                    for h in result.hits]})
    for message in result.messages:
        click.echo(message, err=True)
    if not result.total:
        return click.echo("No match; try fewer words, or without a date or case filter.")
    first = (result.page - 1) * result.limit + 1
    click.echo(f"{result.total} matches, {first}-{first + len(result.hits) - 1} shown "
               f"(page {result.page} of {result.pages}).")
    for hit in result.hits:
        where = f"{_clock(hit.start)}" if hit.recording_id else "metadata"
        click.echo(f"{hit.session_id}  {hit.held_on}  {where:>8}  {hit.title[:60]}")
        click.echo(f"    {_plain(hit.snippet)}")


@click.command()
@json_option
@pass_ctx
def reindex(ctx, as_json):
    """Rebuild the search index from the catalog (the old one answers until the new is ready)."""
    began = time.monotonic()
    index = SearchIndex(ctx.archive, ensure=False)  # no repair first: this builds anew
    sessions = index.rebuild()
    seconds = round(time.monotonic() - began, 2)
    if as_json:
        return print_json({"sessions": sessions, "seconds": seconds})
    click.echo(f"Indexed {sessions} sessions in {seconds} s.")

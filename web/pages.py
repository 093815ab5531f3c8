"""The pages people read: the search page, a session with its players and transcripts, and the
transcript files to download."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user

from archive import seals, transcripts
from archive.errors import InvalidInput

from . import finder
from .auth import archive, record, require

bp = Blueprint("pages", __name__)


@bp.route("/")
@require("search")
def index():
    return _search_page()


@bp.route("/search")
@require("search")
def search():
    return _search_page()


def _search_page():
    catalog = archive().catalog
    context = {"categories": finder.CATEGORIES, "sorts": finder.SORTS, "points": catalog.bridge_points()}
    try:
        query = finder.parse_query(request.args)
    except InvalidInput as exc:
        return render_template("search.html", query=finder.Query(filters=dict.fromkeys(finder.FILTERS, "")),
                               error=str(exc), **context), 400
    if query.empty:
        return render_template("search.html", query=query, recent=catalog.list_sessions(limit=20), **context)
    limit = current_app.config["SEARCH_PAGE_SIZE"]
    try:
        result = finder.run(query, limit)
    except InvalidInput as exc:
        return render_template("search.html", query=query, error=str(exc), **context), 400
    record("search", q=query.q, **{k: v for k, v in query.filters.items() if v},
           page=query.page, total=result.total)
    pages = max(1, -(-result.total // limit))
    return render_template("search.html", query=query, result=result, pages=pages,
                           groups=finder.group_by_session(result.hits), hit_url=finder.hit_url,
                           **context)


def session_view(session_id: str, chosen: dict[str, int] | None = None) -> dict:
    """A session with its recordings and each one's transcript (404 if unknown): the current
    version, or the one `chosen` names for a recording (a human and a machine version side by
    side). `versions` lists every version of each recording without its segments."""
    catalog = archive().catalog
    session = catalog.find_session(session_id)
    if session is None:
        abort(404)
    recordings = []
    for rec in catalog.recordings_for_session(session.id):
        versions = catalog.transcripts_for_recording(rec.id, with_segments=False)
        current = catalog.current_transcript(rec.id)
        wanted = (chosen or {}).get(rec.id)
        shown = catalog.get_transcript(rec.id, wanted) if wanted in {v.version for v in versions} else current
        # sealed spans read as a marker for users without clearance, in every view built on this
        transcript = seals.redact_version(archive(), shown, current_user)
        recordings.append({"recording": rec, "transcript": transcript, "versions": versions,
                           "current_version": current.version if current else None})
    return {"session": session, "recordings": recordings}


@bp.route("/sessions/<session_id>")
@require("view")
def session_page(session_id: str):
    chosen = {}
    if request.args.get("rec") and request.args.get("version", "").isdigit():
        chosen[request.args["rec"]] = int(request.args["version"])
    view = session_view(session_id, chosen)
    try:
        start_at = max(0.0, float(request.args.get("t", 0)))
    except ValueError:
        start_at = 0.0
    record("session.view", session_id)
    return render_template("session.html", start_at=start_at, formats=transcripts.FORMATS, **view)

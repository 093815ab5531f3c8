"""JSON for scripts and the pages' own polling: search, one session, jobs, and /healthz."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request, url_for

from archive.errors import InvalidInput

from . import finder
from .auth import archive, record, require
from .markup import job_stage, job_status, safe_snippet
from .pages import session_view

bp = Blueprint("api", __name__)


@bp.route("/api/search")
@require("search")
def search():
    try:
        query = finder.parse_query(request.args)
        limit = max(1, min(100, int(request.args.get("limit", current_app.config["SEARCH_PAGE_SIZE"]))))
        result = finder.run(query, limit)
    except (InvalidInput, ValueError) as exc:
        return jsonify({"error": "Truy vấn không hợp lệ", "message": str(exc), "status": 400}), 400
    record("search", q=query.q, **{k: v for k, v in query.filters.items() if v},
           page=query.page, total=result.total, api=True)
    hits = []
    for hit in result.hits:
        data = hit.to_dict()
        data.update(session=hit.session_id, snippet=str(safe_snippet(hit.snippet)),
                    url=finder.hit_url(hit))
        hits.append(data)
    return jsonify({"query": query.q, "total": result.total, "page": query.page, "limit": limit,
                    "hits": hits, "messages": list(result.messages)})


@bp.route("/api/sessions/<session_id>")
@require("view")
def session(session_id: str):
    view = session_view(session_id)
    record("session.view", session_id, api=True)
    recordings = []
    for item in view["recordings"]:
        rec, transcript = item["recording"], item["transcript"]
        recordings.append({
            **rec.to_dict(),
            "media_url": url_for("media.stream", recording_id=rec.id) if rec.access_sha256 else None,
            "transcript": transcript.to_dict() if transcript else None,
        })
    return jsonify({**view["session"].to_dict(), "recordings": recordings})


@bp.route("/api/jobs")
@require("jobs")
def jobs():
    catalog = archive().catalog
    rows = []
    for job in catalog.list_jobs(limit=max(1, min(500, request.args.get("limit", 50, type=int)))):
        data = job.to_dict()
        data.pop("source", None)        # a server path: not for the browser
        data["options"] = {k: v for k, v in job.options.items() if k in ("actor", "upload")}
        data.update(status_label=job_status(job.status), stage_label=job_stage(job.stage))
        rows.append(data)
    uploads = current_app.extensions["tcd_uploads"].snapshot()
    for upload in uploads:
        upload["status_label"] = job_status(upload["status"])
        for outcome in upload["outcomes"]:
            outcome["status_label"] = job_status(outcome["status"])
    return jsonify({"jobs": rows, "uploads": uploads})


@bp.route("/healthz")
def healthz():
    """Whether the catalog, the store and the search index answer; no sign-in, no details."""
    checks = {}
    for name, check in (("catalog", lambda: archive().catalog.ping()),
                        ("store", lambda: archive().store.check()),
                        ("index", lambda: finder.search_index().check())):
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # any failure means "does not answer"
            current_app.logger.warning("health check %s failed: %s", name, exc)
            checks[name] = "error"
    ok = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if ok else "error", **checks}), 200 if ok else 503

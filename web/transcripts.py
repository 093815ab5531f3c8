"""Transcripts people can trust, on the web: correcting a transcript (a window of segments at a
time, saved as a new version), the version history with the differences between any two
versions, downloads of any version in every format (DOCX minutes included), citations of a
passage selected on the session page, and the page that checks a citation code.

The work is done by `archive.corrections`, `archive.minutes` and `archive.citations`; this
module reads forms, calls them and renders. A save based on a version someone else has replaced
in the meantime is refused by the catalog; the edit page then shows the newer version with the
person's own changes laid over it (and which segments both changed), so nothing is lost.
"""
from __future__ import annotations

from flask import (Blueprint, Response, abort, flash, jsonify, redirect,
                   render_template, request, url_for)
from flask_login import current_user

from archive import citations, corrections, minutes, seals
from archive.errors import Conflict, InvalidInput, NotFound
from archive.transcripts import clean_text

from .auth import archive, record, require
from .finder import reindex as _reindex
from .media import first_in_sitting

bp = Blueprint("transcripts", __name__)

WINDOW = 25   # segments on one edit page: one save, one version, a small form

KIND_LABELS = {"machine": "Nhận dạng tự động", "human": "Hiệu đính"}
CHANGE_LABELS = {"changed": "Sửa", "added": "Thêm", "removed": "Bỏ"}
PROBLEMS_VI = {
    "recording_missing": "Bản ghi được trích dẫn không còn trong kho lưu trữ.",
    "version_missing": "Phiên bản bản ghi lời được trích dẫn không còn trong danh mục.",
    "object_replaced": "Danh mục đã trỏ phiên bản này sang một tệp lưu trữ khác.",
    "object_missing": "Tệp lưu trữ của phiên bản bản ghi lời bị mất.",
    "object_changed": "Tệp lưu trữ của phiên bản bản ghi lời đã bị thay đổi (mã băm SHA-256 không khớp).",
    "object_unreadable": "Tệp lưu trữ của phiên bản bản ghi lời không còn đọc được.",
    "passage_changed": "Đoạn văn trong tệp lưu trữ khác với đoạn đã được trích dẫn.",
    "catalog_copy_changed": "Bản sao bản ghi lời trong danh mục khác với tệp lưu trữ.",
    "quote_changed": "Nội dung trích dẫn lưu kèm mã đã bị sửa.",
    "code_mismatch": "Thông tin lưu kèm mã trích dẫn không còn khớp với mã (danh mục đã bị sửa).",
}


def _recording(session_id: str, recording_id: str):
    """The recording, 404 unless it belongs to that session."""
    catalog = archive().catalog
    session = catalog.find_session(session_id)
    try:
        rec = catalog.get_recording(recording_id)
    except NotFound:
        abort(404)
    if session is None or rec.session_id != session.id:
        abort(404)
    return session, rec


def _send(exported: minutes.Export) -> Response:
    return Response(exported.body, mimetype=exported.media_type.split(";")[0],
                    headers={"Content-Disposition": f'attachment; filename="{exported.filename}"'})


# -- downloads ---------------------------------------------------------------------------------

@bp.route("/sessions/<session_id>/transcript.<fmt>")
@require("download")
def session_file(session_id: str, fmt: str):
    """The current transcript (or `?version=`) of the session's first transcribed recording (or
    of `?recording=`) in any export format: the .docx minutes, or a file to save; with
    `?captions=1`, the player's captions, shown inline and audited once per sitting."""
    catalog = archive().catalog
    if fmt not in minutes.EXPORT_FORMATS or catalog.find_session(session_id) is None:
        abort(404)
    wanted = request.args.get("recording")
    version = request.args.get("version", type=int)
    captions = request.args.get("captions") == "1"
    for rec in catalog.recordings_for_session(session_id):
        if wanted and rec.id != wanted:
            continue
        try:
            exported, transcript = minutes.export(archive(), rec.id, version, fmt, reader=current_user)
        except NotFound:   # no transcript yet (or not that version): the next recording
            continue
        if not captions or first_in_sitting("captions", rec.id):
            record("download", session_id, rec.id, format=fmt, version=transcript.version,
                   **({"captions": True} if captions else {}))
        response = _send(exported)
        if captions:
            response.headers["Content-Disposition"] = "inline"
        return response
    abort(404)


@bp.route("/sessions/<session_id>/recordings/<recording_id>/versions/<int:version>/transcript.<fmt>")
@require("download")
def version_file(session_id: str, recording_id: str, version: int, fmt: str):
    if fmt not in minutes.EXPORT_FORMATS:
        abort(404)
    session, rec = _recording(session_id, recording_id)
    exported, transcript = minutes.export(archive(), rec.id, version, fmt, reader=current_user)
    record("download", session.id, rec.id, format=fmt, version=transcript.version)
    return _send(exported)


# -- version history and differences -----------------------------------------------------------

@bp.route("/sessions/<session_id>/recordings/<recording_id>/versions")
@require("view")
def history(session_id: str, recording_id: str):
    session, rec = _recording(session_id, recording_id)
    if seals.hidden_from(archive(), rec.id, current_user):
        abort(403)  # a comparison of versions cannot hide sealed passages (issue 9)
    catalog = archive().catalog
    versions = catalog.transcripts_for_recording(rec.id)  # the table shows each version's segment count
    if not versions:
        abort(404)
    current = catalog.current_transcript(rec.id, with_segments=False)   # for its number only
    numbers = [v.version for v in versions]
    new = request.args.get("b", type=int) or current.version
    old = request.args.get("a", type=int) or (versions[numbers.index(new) - 1].version
                                              if new in numbers and numbers.index(new) > 0 else new)
    if old not in numbers or new not in numbers:
        abort(404)
    changes = corrections.diff_versions(archive(), rec.id, old, new)
    return render_template("transcript_history.html", session=session, rec=rec, versions=versions,
                           current=current, old=old, new=new, changes=changes,
                           formats=minutes.EXPORT_FORMATS, kind_labels=KIND_LABELS,
                           change_labels=CHANGE_LABELS)


# -- corrections -------------------------------------------------------------------------------

def _window_start(transcript, first: int | None, at: float | None) -> int:
    count = len(transcript.segments)
    if first is None and at is not None:
        first = next((i for i, s in enumerate(transcript.segments) if s["end"] > at), count - 1)
        first -= first % WINDOW
    return max(0, min(first or 0, max(0, count - 1)))


def _edits_from_form(base, first: int) -> list[corrections.Edit]:
    """The edits a submitted window makes to `base`: only the fields the person changed."""
    edits = []
    for i in range(first, min(first + WINDOW, len(base.segments))):
        seg = base.segments[i]
        text, speaker = request.form.get(f"text-{i}"), request.form.get(f"speaker-{i}")
        following = request.form.get(f"follow-{i}") == "1"
        text = clean_text(text) if text is not None and clean_text(text) != seg["text"] else None
        if speaker is not None and (clean_text(speaker) != seg.get("speaker", "") or following):
            speaker = clean_text(speaker)
        else:
            speaker, following = None, False
        if text is not None or speaker is not None:
            edits.append(corrections.Edit(i, text=text, speaker=speaker, following=following))
    return edits


def _speaker_choices(session, transcript) -> list[str]:
    named = ["Chủ trì", *([session.chair] if session.chair else []), *session.complainants,
             *session.points, *(s.get("speaker", "") for s in transcript.segments)]
    return [s for s in dict.fromkeys(clean_text(n) for n in named) if s]


def _edit_page(session, rec, base, first: int, *, status: int = 200, error: str | None = None,
               conflict: dict | None = None, values: dict | None = None):
    rows = []
    for i in range(first, min(first + WINDOW, len(base.segments))):
        seg = base.segments[i]
        value = (values or {}).get(i, {})
        rows.append({"index": i, "seg": seg, "text": value.get("text", seg["text"]),
                     "speaker": value.get("speaker", seg.get("speaker", "")),
                     "following": value.get("following", False),
                     "mine": i in (values or {}),
                     "theirs": i in (conflict or {}).get("theirs", ())})
    page = render_template("transcript_edit.html", session=session, rec=rec, base=base, rows=rows,
                           first=first, window=WINDOW, total=len(base.segments), error=error,
                           conflict=conflict, speakers=_speaker_choices(session, base),
                           note=request.form.get("note", "") if request.method == "POST" else "")
    return page, status


@bp.route("/sessions/<session_id>/recordings/<recording_id>/edit", methods=["GET", "POST"])
@require("correct")
def edit(session_id: str, recording_id: str):
    session, rec = _recording(session_id, recording_id)
    if seals.hidden_from(archive(), rec.id, current_user):
        abort(403)  # the editor shows every word: not for users who may not read sealed passages (issue 9)
    catalog = archive().catalog
    current = catalog.current_transcript(rec.id)
    if current is None:
        abort(404)
    if request.method == "GET":
        first = _window_start(current, request.args.get("from", type=int), request.args.get("t", type=float))
        return _edit_page(session, rec, current, first)

    based_on = request.form.get("based_on", type=int)
    first = request.form.get("from", type=int) or 0
    try:
        base = catalog.get_transcript(rec.id, based_on) if based_on else None
    except NotFound:
        base = None
    if base is None:
        abort(400)
    first = _window_start(base, first, None)
    edits = _edits_from_form(base, first)
    try:
        saved = corrections.correct(archive(), rec.id, base.version, edits, author=current_user.name,
                                    label=request.form.get("note", ""))
    except Conflict:
        return _conflict_page(session, rec, base, first, edits)
    except InvalidInput as exc:
        message = ("Bạn chưa thay đổi đoạn nào; hãy sửa lời hoặc người nói rồi lưu lại."
                   if not edits else f"Chưa lưu được: {exc}")
        values = {e.index: _value(base, e) for e in edits}
        return _edit_page(session, rec, base, first, status=400, error=message, values=values)
    _reindex()
    flash(f"Đã lưu phiên bản {saved.version} của bản ghi lời ({len(edits)} đoạn được sửa).")
    return redirect(url_for(".edit", session_id=session.id, recording_id=rec.id, **{"from": first}))


def _value(base, edit: corrections.Edit) -> dict:
    seg = base.segments[edit.index]
    return {"text": edit.text if edit.text is not None else seg["text"],
            "speaker": edit.speaker if edit.speaker is not None else seg.get("speaker", ""),
            "following": edit.following}


def _conflict_page(session, rec, base, first: int, edits: list[corrections.Edit]):
    """Someone saved a newer version first: show it, with this person's edits laid over it."""
    catalog = archive().catalog
    latest = catalog.transcripts_for_recording(rec.id)[-1]
    conflict = {"based_on": base.version, "latest": latest, "theirs": set(), "both": [],
                "unplaced": []}
    if len(latest.segments) == len(base.segments):
        theirs = {i for i, (a, b) in enumerate(zip(base.segments, latest.segments)) if a != b}
        conflict["theirs"] = theirs
        conflict["both"] = sorted(e.index + 1 for e in edits if e.index in theirs)
        values = {e.index: _value(base, e) for e in edits}
        page_base = latest
    else:
        # The newer version has other segments (an imported file): show it as it is, and the
        # person's changes beside it to apply again by hand.
        conflict["unplaced"] = [{"index": e.index, **_value(base, e)} for e in edits]
        values, page_base = {}, latest
    return _edit_page(session, rec, page_base, _window_start(page_base, first, None), status=409,
                      conflict=conflict, values=values)


# -- citations ---------------------------------------------------------------------------------

def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


@bp.route("/cite", methods=["POST"])
@require("cite")
def make_citation():
    """Cite `start`–`end` of `version` of `recording` (the passage selected on the session page)."""
    form = request.form
    try:
        rec = archive().catalog.get_recording(form.get("recording", ""))
        version = form.get("version", type=int)
        citation = citations.cite(archive(), rec.id, form.get("start", ""), form.get("end", ""),
                                  version=version, actor=current_user.name)
    except (InvalidInput, NotFound) as exc:
        text = ("Không trích dẫn được: không có bản ghi hoặc phiên bản này." if isinstance(exc, NotFound)
                else "Không trích dẫn được: hãy chọn một đoạn có lời trong bản ghi lời.")
        if _wants_json():
            return jsonify({"error": "Không trích dẫn được", "message": text, "status": 400}), 400
        flash(text, "error")
        return redirect(request.referrer or url_for("pages.index"))
    check_url = url_for(".check_page", code=citation.code)
    if _wants_json():
        return jsonify({"code": citation.code, "block": citation.block(), "check_url": check_url,
                        "docx_url": url_for(".citation_docx", code=citation.code),
                        "time_range": citation.time_range, "version": citation.version})
    return redirect(check_url)


@bp.route("/cite")
@require("cite")
def find_citation():
    """The form on the check page: a code as a person typed it, to its page."""
    code = request.args.get("code", "")
    try:
        return redirect(url_for(".check_page", code=citations.normalize_code(code)))
    except InvalidInput:
        return render_template("cite_check.html", result=None, code=code, state="malformed"), 400


@bp.route("/cite/<code>")
@require("cite")
def check_page(code: str):
    try:
        result = citations.check(archive(), code, actor=current_user.name)
    except InvalidInput:
        return render_template("cite_check.html", result=None, code=code, state="malformed"), 400
    except NotFound:
        record("citation.check", target=code, ok=False, problems=["unknown"])
        return render_template("cite_check.html", result=None, code=code, state="unknown"), 404
    rec = result.recording
    if rec and seals.hidden_from(archive(), rec.id, current_user, result.citation["start"], result.citation["end"]):
        abort(403)  # sealed after it was cited (issue 9)
    block = citations.load(archive(), result).block() if result.ok else None
    latest_change = next((n for n in reversed(result.newer) if n["changed"]), None)
    return render_template("cite_check.html", result=result, code=result.code,
                           state="ok" if result.ok else "tampered", block=block,
                           latest_change=latest_change,
                           problems=[PROBLEMS_VI[p] for p in result.problems],
                           playable=bool(rec and rec.access_sha256 and result.passage))


@bp.route("/cite/<code>.docx")
@require("cite")
def citation_docx(code: str):
    try:
        result = citations.check(archive(), code, actor=current_user.name)
    except (InvalidInput, NotFound):
        abort(404)
    if not result.ok:
        # A document must not carry a quote the archive no longer vouches for.
        return render_template("cite_check.html", result=result, code=result.code, state="tampered",
                               problems=[PROBLEMS_VI[p] for p in result.problems], playable=False), 409
    if result.recording and seals.hidden_from(archive(), result.recording.id, current_user,
                                              result.citation["start"], result.citation["end"]):
        abort(403)  # sealed after it was cited (issue 9)
    citation = citations.load(archive(), result)
    record("download", citation.session.id, citation.recording.id, format="docx", citation=citation.code,
           version=citation.version)
    return Response(minutes.render_citation_docx(citation), mimetype=minutes.DOCX_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="trich-dan-{citation.code}.docx"'})

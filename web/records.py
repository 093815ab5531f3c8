"""Notes, sealed passages, retention and the access report on the web (issue 9).

- notes: added and edited beside the player (`records_recording.html`, included by the session
  page), shown on the player's timeline and beside the transcript, with their history;
- seals: a page per session to seal and unseal spans; the silenced copy is made in a background
  thread (inline in tests) while the player refuses users without clearance;
- retention: the page of due sessions and deletion proposals, where a second user approves;
- the access report of a session, as a page and as CSV.

Every view calls the core (`archive.notes`, `archive.seals`, `archive.retention`,
`archive.access_report`); what the core refuses comes back as a Vietnamese message.
"""
from __future__ import annotations

import threading

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from archive import access_report, notes, retention, seals
from archive.errors import ArchiveError, Conflict, InvalidInput, NotFound, PermissionDenied
from archive.transcripts import parse_time

from .auth import archive, require
from .finder import reindex as _reindex, search_index

bp = Blueprint("records", __name__)

ROLE_REFUSED = "Tài khoản của bạn không có quyền thực hiện thao tác này."


def acting():
    """The catalog user behind the signed-in web user."""
    return current_user.user


def seconds(value: str | None, label: str) -> float | None:
    """Seconds from a form field: `12.5`, `1:02` or `00:01:02.500`; None when empty."""
    value = (value or "").strip().replace(",", ".")
    if not value:
        return None
    try:
        return parse_time(value) if ":" in value else float(value)
    except (ValueError, TypeError):
        raise InvalidInput(f"{label} “{value}” không phải là thời điểm; hãy ghi số giây (12.5) hoặc phút:giây (1:02).")


# What the core refuses in a note or a seal, said in Vietnamese: `InvalidInput.reason` names the
# case and `.values` fills the sentence. The form's own parsing (`seconds`) has refused every time
# that is not a number already, so "not_seconds" from the core means a time was left empty.
REFUSALS = {
    "note.not_seconds": "hãy ghi thời điểm của ghi chú.",
    "note.start_outside": "thời điểm {start:g} giây nằm ngoài bản ghi (bản ghi dài {duration:.1f} giây).",
    "note.end_not_after_start": "thời điểm kết thúc ({end:g} giây) phải sau thời điểm bắt đầu ({start:g} giây).",
    "note.end_outside": "thời điểm kết thúc {end:g} giây nằm ngoài bản ghi (bản ghi dài {duration:.1f} giây).",
    "note.no_text": "hãy ghi nội dung ghi chú.",
    "note.text_too_long": "ghi chú dài tối đa {limit} ký tự.",
    "seal.not_seconds": "Hãy ghi cả thời điểm bắt đầu và kết thúc của đoạn cần niêm phong.",
    "seal.start_not_before_end": "Thời điểm bắt đầu ({start:g} giây) phải trước thời điểm kết thúc ({end:g} giây).",
    "seal.outside": "Đoạn {start:g}–{end:g} giây nằm ngoài bản ghi (bản ghi dài {duration:.1f} giây).",
    "seal.overlap": ("Đoạn {start:g}–{end:g} giây trùng với đoạn đã niêm phong số {seal} "
                     "({seal_start:g}–{seal_end:g} giây). Hãy chọn đoạn khác hoặc gỡ niêm phong đó trước."),
    "seal.no_reason": "Hãy ghi lý do niêm phong (ví dụ: căn cứ pháp lý, loại dữ liệu cá nhân).",
    "seal.reason_too_long": "Lý do niêm phong dài tối đa {limit} ký tự.",
}


def _message(exc: ArchiveError, what: str) -> str:
    said = REFUSALS.get(getattr(exc, "reason", ""))
    if said:
        return f"{what}: {said.format(**exc.values)}"
    if isinstance(exc, NotFound):
        return f"{what}: không tìm thấy phiên, bản ghi hoặc mục này."
    if isinstance(exc, PermissionDenied):
        return f"{what}: {ROLE_REFUSED}"
    if isinstance(exc, Conflict):
        return f"{what}: nội dung vừa được người khác thay đổi. Vui lòng tải lại trang và sửa lại."
    return f"{what}: {exc}"


# -- what the session page shows ------------------------------------------------------------------

@bp.app_template_global()
def recording_notes(recording, in_force: list) -> list:
    """The notes of a recording as the signed-in user may read them (`in_force`: its seals,
    from recording_seals, which the page has read already)."""
    return seals.redact_notes(notes.list_notes(archive(), recording_id=recording.id), in_force, current_user)


@bp.app_template_global()
def recording_seals(recording) -> list:
    return seals.list_seals(archive(), recording_id=recording.id)


@bp.app_template_global()
def may_edit_note(note) -> bool:
    return notes.can_edit(note, acting()) and note.text != seals.MARKER


@bp.app_template_global()
def sees_sealed() -> bool:
    return seals.sees_sealed(current_user)


@bp.app_template_global()
def sealed_copy_pending(recording) -> bool:
    """Whether the signed-in user must wait for the silenced copy before they can play."""
    try:
        seals.playable(archive(), recording, current_user)
        return False
    except seals.SealedCopyPending:
        return True


@bp.route("/api/sessions/<session_id>/notes")
@require("view")
def notes_json(session_id: str):
    arch = archive()
    if arch.catalog.find_session(session_id) is None:
        abort(404)
    rows = []
    for rec in arch.catalog.recordings_for_session(session_id):
        rows += [n.to_dict() for n in recording_notes(rec, arch.catalog.list_seals(recording_id=rec.id))]
    return {"session": session_id, "notes": rows}


# -- notes ----------------------------------------------------------------------------------------

def _back_to(recording_id: str, session_id: str, t: float | None = None):
    args = {"t": t} if t else {}
    return redirect(url_for("pages.session_page", session_id=session_id, **args) + f"#rec-{recording_id}")


@bp.route("/recordings/<recording_id>/notes", methods=["POST"])
@require("note")
def add_note(recording_id: str):
    arch = archive()
    try:
        rec = arch.catalog.get_recording(recording_id)
    except NotFound:
        abort(404)
    try:
        start = seconds(request.form.get("start"), "Thời điểm")
        end = seconds(request.form.get("end"), "Thời điểm kết thúc")
        note = notes.add_note(arch, rec.id, start, end, request.form.get("text", ""), acting())
        _reindex()
        flash(f"Đã thêm ghi chú tại {note.start:g} giây.", "ok")
    except ArchiveError as exc:
        flash(_message(exc, "Không thêm được ghi chú"), "error")
    return _back_to(rec.id, rec.session_id)


@bp.route("/notes/<int:note_id>", methods=["POST"])
@require("note")
def edit_note(note_id: int):
    arch = archive()
    try:
        note = notes.get_note(arch, note_id)
    except NotFound:
        abort(404)
    if not notes.can_edit(note, acting()):
        abort(403)
    try:
        end = seconds(request.form.get("end"), "Thời điểm kết thúc")
        start = seconds(request.form.get("start"), "Thời điểm")
        notes.edit_note(arch, note_id, acting(), text=request.form.get("text"), start=start, end=end,
                        version=request.form.get("version", type=int))
        _reindex()
        flash("Đã lưu ghi chú; phiên bản trước vẫn được giữ trong lịch sử.", "ok")
    except ArchiveError as exc:
        flash(_message(exc, "Không lưu được ghi chú"), "error")
    return _back_to(note.recording_id, note.session_id)


@bp.route("/notes/<int:note_id>/history")
@require("view")
def note_history(note_id: int):
    arch = archive()
    try:
        note = notes.get_note(arch, note_id)
    except NotFound:
        abort(404)
    in_force = arch.catalog.list_seals(recording_id=note.recording_id)
    versions = seals.redact_notes(notes.note_history(arch, note_id), in_force, current_user)
    shown = seals.redact_notes([note], in_force, current_user)[0]
    return render_template("records/note_history.html", note=shown, versions=versions)


# -- seals ----------------------------------------------------------------------------------------

def _session_or_404(session_id: str):
    session = archive().catalog.find_session(session_id)
    if session is None:
        abort(404)
    return session


@bp.route("/sessions/<session_id>/seals")
@require("seal")
def seals_page(session_id: str):
    arch = archive()
    session = _session_or_404(session_id)
    recs = arch.catalog.recordings_for_session(session.id)
    rows = [{"recording": rec, "seals": seals.list_seals(arch, recording_id=rec.id, with_removed=True),
             "copy": arch.catalog.sealed_copy(rec.id),
             "ready": _copy_ready(arch, rec)} for rec in recs]
    return render_template("records/seals.html", session=session, rows=rows)


def _copy_ready(arch, rec) -> bool:
    try:
        seals.playable(arch, rec, None)
        return True
    except seals.SealedCopyPending:
        return False


@bp.route("/sessions/<session_id>/seals", methods=["POST"])
@require("seal")
def add_seal(session_id: str):
    arch = archive()
    _session_or_404(session_id)
    try:
        rec = arch.catalog.get_recording(request.form.get("recording", ""))
    except NotFound:
        abort(404)
    if rec.session_id != session_id:
        abort(404)
    try:
        start = seconds(request.form.get("start"), "Thời điểm bắt đầu")
        end = seconds(request.form.get("end"), "Thời điểm kết thúc")
        seal = seals.add_seal(arch, rec.id, start, end, request.form.get("reason", ""), acting())
        _reindex()
        _refresh_copy(rec.id)
        flash(f"Đã niêm phong đoạn {seal.start:g}–{seal.end:g} giây. Người không được phép xem sẽ chỉ "
              "nghe/xem bản đã làm câm và che hình của đoạn này.", "ok")
    except ArchiveError as exc:
        flash(_message(exc, "Không niêm phong được"), "error")
    return redirect(url_for("records.seals_page", session_id=session_id))


@bp.route("/seals/<int:seal_id>/remove", methods=["POST"])
@require("seal")
def remove_seal(seal_id: int):
    arch = archive()
    try:
        seal = arch.catalog.get_seal(seal_id)
    except NotFound:
        abort(404)
    try:
        seals.remove_seal(arch, seal_id, acting(), request.form.get("reason", ""))
        _reindex()
        _refresh_copy(seal["recording_id"])
        flash(f"Đã gỡ niêm phong đoạn {seal['start']:g}–{seal['end']:g} giây (đã ghi nhật ký).", "ok")
    except ArchiveError as exc:
        flash(_message(exc, "Không gỡ được niêm phong"), "error")
    return redirect(url_for("records.seals_page", session_id=seal["session_id"]))


def _refresh_copy(recording_id: str) -> None:
    """Make the silenced copy: in a thread (ffmpeg re-encodes the whole recording), inline in tests."""
    arch, actor = archive(), current_user.name
    if not current_app.config.get("SEAL_COPY_IN_BACKGROUND", True):
        seals.make_sealed_copy(arch, recording_id, actor=actor)
        return
    logger = current_app.logger

    def work():
        try:
            seals.make_sealed_copy(arch, recording_id, actor=actor)
        except Exception:  # a thread has no one to report to but the log
            logger.exception("making the sealed copy of %s failed", recording_id)
    threading.Thread(target=work, name=f"sealed-copy-{recording_id}", daemon=True).start()


# -- retention ------------------------------------------------------------------------------------

@bp.route("/retention")
@require("retention")
def retention_page():
    arch = archive()
    return render_template("records/retention.html", due=retention.due(arch),
                           proposals=retention.proposals(arch, open_only=False)[:50],
                           sessions=arch.catalog.list_sessions(), me=current_user.name)


@bp.route("/sessions/<session_id>/retention", methods=["POST"])
@require("retention")
def set_retention(session_id: str):
    _session_or_404(session_id)
    value = "permanent" if request.form.get("permanent") else request.form.get("years", "")
    try:
        session = retention.set_retention(archive(), session_id, value, acting())
        until = retention.expires_on(session)
        flash(f"Phiên {session_id} được lưu " + (f"đến hết ngày {until.isoformat()}." if until else "vĩnh viễn."),
              "ok")
    except ArchiveError as exc:
        flash(_message(exc, "Không đổi được thời hạn lưu trữ")
              if not isinstance(exc, InvalidInput) else
              "Không đổi được thời hạn lưu trữ: hãy chọn “vĩnh viễn” hoặc ghi số năm từ 1 đến 200.", "error")
    return redirect(url_for("records.retention_page"))


@bp.route("/sessions/<session_id>/deletion", methods=["POST"])
@require("retention")
def propose_deletion(session_id: str):
    _session_or_404(session_id)
    try:
        deletion = retention.propose(archive(), session_id, acting(), request.form.get("reason", ""))
        flash(f"Đã đề nghị hủy phiên {session_id} (đề nghị số {deletion['id']}). Cần một người khác phê duyệt.", "ok")
    except PermissionDenied as exc:
        flash("Không đề nghị hủy được: " + _refusal(str(exc)), "error")
    except ArchiveError as exc:
        flash(_message(exc, "Không đề nghị hủy được"), "error")
    return redirect(url_for("records.retention_page"))


def _refusal(sentence: str) -> str:
    if "legal hold" in sentence:
        return "phiên đang bị phong tỏa (legal hold) nên không bao giờ được hủy khi chưa gỡ phong tỏa."
    if "permanently" in sentence:
        return "phiên được lưu trữ vĩnh viễn."
    if "must be kept until" in sentence:
        return "phiên chưa hết thời hạn lưu trữ (" + sentence.split("until ")[1].split(";")[0] + ")."
    if "second, different user" in sentence:
        return "người đề nghị không được tự phê duyệt; cần một người dùng khác."
    return ROLE_REFUSED


@bp.route("/deletions/<int:deletion_id>/approve", methods=["POST"])
@require("retention")
def approve_deletion(deletion_id: int):
    arch = archive()
    try:
        deletion = retention.approve(arch, deletion_id, acting(), on_deleted=_drop_from_index)
        flash(f"Đã hủy phiên {deletion['session_id']} khỏi kho, danh mục và chỉ mục. Lần sao lưu ra ổ đĩa "
              "tiếp theo sẽ xóa phiên khỏi bản sao lưu.", "ok")
    except PermissionDenied as exc:
        flash("Không phê duyệt được: " + _refusal(str(exc)), "error")
    except ArchiveError as exc:
        flash(_message(exc, "Không phê duyệt được"), "error")
    return redirect(url_for("records.retention_page"))


def _drop_from_index(session_id: str) -> None:
    # a failure here leaves the deletion "approved"; approving again finishes it
    search_index().remove_session(session_id)


@bp.route("/deletions/<int:deletion_id>/withdraw", methods=["POST"])
@require("retention")
def withdraw_deletion(deletion_id: int):
    try:
        retention.withdraw(archive(), deletion_id, acting())
        flash(f"Đã rút đề nghị hủy số {deletion_id}.", "ok")
    except ArchiveError as exc:
        flash(_message(exc, "Không rút được đề nghị"), "error")
    return redirect(url_for("records.retention_page"))


# -- the access report ----------------------------------------------------------------------------

@bp.route("/sessions/<session_id>/access")
@require("access_report")
def access_page(session_id: str):
    rows = access_report.report(archive(), session_id, actor=current_user.name, fmt="page")
    session = archive().catalog.find_session(session_id)
    if session is None and not rows:
        abort(404)
    return render_template("records/access.html", session_id=session_id, session=session, rows=rows)


@bp.route("/sessions/<session_id>/access.csv")
@require("access_report")
def access_csv(session_id: str):
    rows = access_report.report(archive(), session_id, actor=current_user.name, fmt="csv")
    if archive().catalog.find_session(session_id) is None and not rows:
        abort(404)
    return Response(access_report.to_csv(rows), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="truy-cap-{session_id}.csv"'})

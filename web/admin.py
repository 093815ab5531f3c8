"""The admin page: the audit log (with a check of its hash chain) and the users."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from archive import audit as audit_log
from archive import users
from archive.catalog import with_detail
from archive.errors import InvalidInput, NotFound

from .auth import archive, require

bp = Blueprint("admin", __name__, url_prefix="/admin")


class AddUserForm(FlaskForm):
    name = StringField("Tên đăng nhập", validators=[
        DataRequired("Hãy nhập tên đăng nhập."),
        Regexp(users.NAME_RE, message="Tên đăng nhập chỉ gồm chữ, số và các ký tự . _ @ -, "
                                      "không có dấu cách, tối đa 64 ký tự.")])
    role = SelectField("Vai trò", choices=[(r, users.ROLE_LABELS[r]) for r in users.ROLES])
    password = PasswordField("Mật khẩu (ít nhất 8 ký tự)", validators=[
        DataRequired("Hãy nhập mật khẩu."),
        Length(min=users.MIN_PASSWORD, max=1024, message=f"Mật khẩu cần ít nhất {users.MIN_PASSWORD} ký tự.")])
    clearance = BooleanField("Được phép xem tài liệu hạn chế")


@bp.route("/")
@require("audit")
def index():
    catalog = archive().catalog
    actor = request.args.get("actor", "").strip() or None
    session_id = request.args.get("session", "").strip() or None
    entries = [with_detail(e) for e in catalog.audit_entries(session_id=session_id, actor=actor,
                                                             limit=200, descending=True)]
    report = audit_log.verify(catalog) if request.args.get("verify") else None
    return render_template("admin.html", entries=entries, report=report, actor=actor or "",
                           session_id=session_id or "", users=catalog.list_users(),
                           add_form=AddUserForm(),
                           may_manage=current_user.can("users"))


@bp.route("/users", methods=["POST"])
@require("users")
def add_user():
    form = AddUserForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
    else:
        try:
            users.add_user(archive(), form.name.data, form.role.data, form.password.data,
                           form.clearance.data, actor=current_user.name)
            flash(f"Đã thêm người dùng {form.name.data.strip()}.")
        except InvalidInput:  # the only input the form has not checked: the name is taken
            flash(f"Tên đăng nhập {form.name.data.strip()} đã có.", "error")
    return redirect(url_for("admin.index"))


@bp.route("/users/<name>/disable", methods=["POST"])
@require("users")
def disable_user(name: str):
    if name == current_user.name:
        flash("Không thể tự khóa tài khoản đang dùng.", "error")
        return redirect(url_for("admin.index"))
    try:
        users.disable_user(archive(), name, actor=current_user.name)
        flash(f"Đã khóa tài khoản {name}.")
    except NotFound:
        flash(f"Không có người dùng {name}.", "error")
    return redirect(url_for("admin.index"))


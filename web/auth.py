"""Signing in and out, who is signed in, what their role allows, and the audit entries the web
writes on their behalf.

Sessions are Flask-Login's signed cookie; the user is loaded from the catalog on each request,
so disabling a user ends their sessions at once. Failed sign-ins are throttled per user name
and per address (`web.throttle`), with the counts in the catalog so every server process sees them.
"""
from __future__ import annotations

import secrets
from functools import wraps

from flask import (Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request,
                   session, url_for)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from archive import Archive, users
from archive.catalog import User

from .throttle import Throttle

bp = Blueprint("auth", __name__)
login_manager = LoginManager()


class WebUser(UserMixin):
    """A catalog user as Flask-Login sees them."""

    def __init__(self, user: User):
        self.user = user
        self.id = str(user.id)
        self.name = user.name
        self.role = user.role

    def can(self, permission: str) -> bool:
        return users.can(self.role, permission)


class LoginForm(FlaskForm):
    username = StringField("Tên đăng nhập", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Mật khẩu", validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


def archive() -> Archive:
    return current_app.extensions["tcd"]


def init_app(app) -> None:
    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    catalog = app.extensions["tcd"].catalog  # the counts are shared by all server processes
    app.extensions["tcd_throttle"] = {
        "user": Throttle(catalog, "user", app.config["LOGIN_FREE_TRIES_USER"], app.config["LOGIN_DELAY"],
                         app.config["LOGIN_MAX_DELAY"]),
        "address": Throttle(catalog, "address", app.config["LOGIN_FREE_TRIES_ADDRESS"],
                            app.config["LOGIN_DELAY"], app.config["LOGIN_MAX_DELAY"]),
    }


@login_manager.user_loader
def load_user(user_id: str):
    try:
        user = archive().catalog.get_user_by_id(int(user_id))
    except ValueError:
        return None
    return WebUser(user) if user and not user.disabled else None


@login_manager.unauthorized_handler
def unauthorized():
    if request.path.startswith(("/api/", "/media/")) or request.method != "GET":
        response = jsonify({"error": "Cần đăng nhập", "status": 401})
        response.status_code = 401
        return response
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def require(permission: str):
    """Only signed-in users whose role has `permission` reach the view; others get 401/403."""
    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.can(permission):
                abort(403)
            return view(*args, **kwargs)
        return guarded
    return decorate


def record(action: str, session_id: str | None = None, target: str = "", actor: str | None = None,
           **detail) -> None:
    """An audit entry for what the current user just did, with the address it came from."""
    if actor is None:
        actor = current_user.name if current_user.is_authenticated else "anonymous"
    archive().audit(actor, action, session_id, target, address=request.remote_addr or "", **detail)


def login_token() -> str:
    """A random id of this sign-in (not of the user), so plays are logged once per sitting."""
    return session.get("tcd_sid", "")


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return url_for("pages.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(_safe_next(request.args.get("next")))
        form.next.data = request.args.get("next", "")
        return render_template("login.html", form=form)
    if not form.validate_on_submit():
        return render_template("login.html", form=form,
                               error="Vui lòng nhập tên đăng nhập và mật khẩu."), 400
    name = form.username.data.strip()
    address = request.remote_addr or ""
    throttles = current_app.extensions["tcd_throttle"]
    wait = max(throttles["user"].wait_for(name.casefold()), throttles["address"].wait_for(address))
    if wait > 0:
        record("login.throttled", target=name, actor="anonymous", wait=round(wait, 1))
        seconds = int(wait) + 1
        return render_template("login.html", form=form,
                               error=f"Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {seconds} giây."), \
            429, {"Retry-After": str(seconds)}
    user = users.authenticate(archive(), name, form.password.data)
    if user is None:
        throttles["user"].failed(name.casefold())
        throttles["address"].failed(address)
        record("login.failed", target=name, actor="anonymous")
        return render_template("login.html", form=form,
                               error="Tên đăng nhập hoặc mật khẩu không đúng."), 401
    throttles["user"].succeeded(name.casefold())
    session.clear()  # a fresh session: nothing chosen before sign-in carries over
    login_user(WebUser(user))
    session["tcd_sid"] = secrets.token_hex(12)
    session.permanent = True
    record("login", target=user.name, actor=user.name)
    return redirect(_safe_next(form.next.data))


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        record("logout", target=current_user.name)
    logout_user()
    session.clear()
    flash("Bạn đã đăng xuất.")
    return redirect(url_for("auth.login"))

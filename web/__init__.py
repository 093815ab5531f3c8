"""The web application: sign-in, search, the session player, media streaming, uploads, jobs and
the admin pages, in Vietnamese, with nothing loaded from outside the machine.

`create_app(archive)` builds the Flask application around one `Archive`; views reach it as
`current_app.extensions["tcd"]` through `web.auth.archive()`. Every page but /login and /healthz
needs a signed-in user, and `archive.users.can` decides what each role may do.
"""
from __future__ import annotations

import errno
from datetime import timedelta

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from archive import Archive
from archive.errors import ArchiveError, InvalidInput, NotFound

from . import markup
from .uploads import StagingRequest

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

ERROR_TITLES = {
    400: "Yêu cầu không hợp lệ",
    401: "Cần đăng nhập",
    403: "Không có quyền truy cập",
    404: "Không tìm thấy trang",
    405: "Phương thức không được hỗ trợ",
    413: "Tệp quá lớn",
    416: "Khoảng dữ liệu không hợp lệ",
    429: "Quá nhiều lần thử",
    507: "Ổ đĩa đã đầy",
    500: "Lỗi máy chủ",
    503: "Dịch vụ tạm thời không sẵn sàng",
}
ERROR_TEXTS = {
    400: "Yêu cầu gửi lên không đúng. Vui lòng quay lại và thử lại.",
    403: "Tài khoản của bạn không có quyền thực hiện thao tác này.",
    404: "Trang, phiên hoặc bản ghi bạn tìm không tồn tại.",
    405: "Trang này không nhận phương thức yêu cầu đó.",
    429: "Bạn đã thử quá nhiều lần. Vui lòng đợi một lát rồi thử lại.",
    500: "Đã xảy ra lỗi ngoài dự kiến. Vui lòng thử lại; nếu lỗi lặp lại, hãy báo quản trị viên.",
    507: ("Ổ đĩa của máy chủ lưu trữ đã đầy nên chưa nhận được tệp; không có gì được lưu. "
          "Hãy báo quản trị viên giải phóng chỗ trống rồi thử lại."),
}


def create_app(archive: Archive, test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.request_class = StagingRequest
    app.config.update(
        SECRET_KEY=archive.secret_key(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="tcd_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # A sitting lasts 12 hours from sign-in; re-signing the cookie on every media range
        # request would cost more than the request itself.
        SESSION_REFRESH_EACH_REQUEST=False,
        # A page stays open all day; the token is bound to the signed-in session instead.
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=None,           # uploads stream to disk, whatever their size
        MAX_FORM_MEMORY_SIZE=1024 * 1024,  # but form fields (not files) stay small
        JSON_AS_ASCII=False,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
        # Failed sign-ins: free tries, then a wait that doubles from LOGIN_DELAY seconds.
        LOGIN_FREE_TRIES_USER=3,
        LOGIN_FREE_TRIES_ADDRESS=10,
        LOGIN_DELAY=2.0,
        LOGIN_MAX_DELAY=300.0,
        SEARCH_PAGE_SIZE=20,
        INGEST_IN_BACKGROUND=True,
    )
    if test_config:
        app.config.update(test_config)
    app.json.ensure_ascii = False
    app.extensions["tcd"] = archive

    CSRFProtect(app)
    from . import admin, api, auth, media, pages, transcripts, uploads
    auth.init_app(app)
    uploads.init_app(app)
    media.init_app(app)
    for module in (auth, pages, media, api, uploads, admin, transcripts):
        app.register_blueprint(module.bp)
    from . import records  # notes, sealed passages, retention and the access report (issue 9)
    app.register_blueprint(records.bp)
    from . import preservation  # backups and fixity runs, read-only
    app.register_blueprint(preservation.bp)

    app.jinja_env.filters["clock"] = markup.clock
    app.jinja_env.filters["snippet"] = markup.safe_snippet
    app.jinja_env.filters["job_status"] = markup.job_status
    app.jinja_env.filters["job_stage"] = markup.job_stage
    app.jinja_env.globals["role_label"] = markup.role_label
    app.jinja_env.globals["transcript_html"] = markup.transcript_html
    app.jinja_env.globals["category_label"] = markup.category_label

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return error_page(400, "Biểu mẫu đã hết hạn hoặc thiếu mã bảo vệ (CSRF). "
                               "Vui lòng tải lại trang và gửi lại.")

    @app.errorhandler(NotFound)
    def not_found(exc):
        return error_page(404)

    @app.errorhandler(InvalidInput)
    def invalid_input(exc):
        return error_page(400, str(exc))

    @app.errorhandler(ArchiveError)
    def archive_error(exc):
        app.logger.warning("archive error on %s: %s", request.path, exc)
        return error_page(503, "Kho lưu trữ chưa trả lời. Vui lòng thử lại sau ít phút.")

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return error_page(exc.code or 500, headers=exc.get_headers(), original=exc)

    @app.errorhandler(OSError)
    def disk_error(exc):
        # an upload streams into staging while the body is read (CSRF reads it first): a full
        # disk ends that request with a sentence; the part already written goes at teardown
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return unexpected(exc)
        app.logger.error("disk full on %s: %s", request.path, exc)
        return error_page(507)

    @app.errorhandler(Exception)
    def unexpected(exc):
        app.logger.exception("unexpected error on %s", request.path)
        return error_page(500)

    return app


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/healthz"))


def error_page(code: int, text: str | None = None, headers=None, original: HTTPException | None = None):
    title = ERROR_TITLES.get(code, "Lỗi")
    text = text or ERROR_TEXTS.get(code) or (original.description if original else "") or title
    extra = [(k, v) for k, v in (headers or []) if k.lower() not in ("content-type", "content-length")]
    if wants_json():
        response = jsonify({"error": title, "message": text, "status": code})
    else:
        response = make_response(render_template("error.html", code=code, title=title, text=text))
    response.status_code = code
    for key, value in extra:
        response.headers[key] = value
    return response

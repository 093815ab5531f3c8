"""CSRF, sign-in throttling, cookies, headers and escaping of what the archive holds."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from web import create_app

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"


# -- CSRF ---------------------------------------------------------------------------------------

def test_sign_in_without_token_is_refused(client, helpers):
    response = client.post("/login", data={"username": "admin", "password": helpers.PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True) and "tải lại trang" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not signed in


def test_token_of_another_browser_is_refused(app, helpers):
    first, second = app.test_client(), app.test_client()
    token = helpers.csrf_token(first)
    helpers.csrf_token(second)
    response = second.post("/login", data={"username": "admin", "password": helpers.PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 400


@pytest.mark.parametrize("path,data", [
    ("/logout", {}),
    ("/admin/users", {"name": "khong-token", "role": "admin", "password": "12345678xx"}),
    ("/admin/users/handler/disable", {}),
    ("/upload", {"title": "x"}),
])
def test_every_form_needs_the_token(site, as_role, path, data):
    admin = as_role("admin")
    response = admin.post(path, data=data)
    assert response.status_code == 400
    assert "tải lại trang" in response.get_data(as_text=True)  # refused for the token, not the form
    assert admin.get("/").status_code == 200  # still signed in: the logout was refused too
    names = [u.name for u in site["archive"].catalog.list_users()]
    assert "khong-token" not in names
    assert not site["archive"].catalog.get_user("handler").disabled


def test_forms_carry_the_token(as_role):
    admin = as_role("admin")
    for path in ("/", "/upload", "/admin/"):
        page = admin.get(path).get_data(as_text=True)
        forms = re.findall(r"<form[^>]*method=\"post\".*?</form>", page, re.S)
        assert forms, path
        assert all('name="csrf_token"' in form for form in forms), path


# -- throttling ---------------------------------------------------------------------------------

@pytest.fixture
def throttled_app(site):
    """Makes applications with a short sign-in delay. The counts live in the module's catalog,
    where earlier tests failed too: each starts from none for this address, and the counts a test
    leaves are removed after it, also when it fails."""
    catalog = site["archive"].catalog

    def make(**config):
        app = create_app(site["archive"], {"TESTING": True, "LOGIN_DELAY": 1.0, **config})
        app.extensions["tcd_throttle"]["address"].succeeded("127.0.0.1")
        return app
    yield make
    with catalog.transaction() as db:
        db.execute("DELETE FROM sign_in_failures WHERE scope IN ('user', 'address')")


def test_failed_sign_ins_for_one_user_are_slowed_down(site, helpers, throttled_app):
    app = throttled_app(LOGIN_FREE_TRIES_USER=2)
    client = app.test_client()
    assert helpers.sign_in(client, "inspector", "sai mật khẩu 1").status_code == 401
    assert helpers.sign_in(client, "inspector", "sai mật khẩu 2").status_code == 401
    response = helpers.sign_in(client, "inspector")  # the right password, but too soon
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert "thử lại sau" in response.get_data(as_text=True)
    assert helpers.sign_in(app.test_client(), "handler").status_code == 302  # other users are not held up
    time.sleep(1.1)
    assert helpers.sign_in(client, "inspector").status_code == 302
    entries = site["archive"].catalog.audit_entries(descending=True, limit=10)[::-1]
    about = [e["action"] for e in entries if e["target"] == "inspector"]
    assert about[-4:] == ["login.failed", "login.failed", "login.throttled", "login"]


def test_failed_sign_ins_from_one_address_are_slowed_down(helpers, throttled_app):
    app = throttled_app(LOGIN_FREE_TRIES_USER=100, LOGIN_FREE_TRIES_ADDRESS=3)
    client = app.test_client()
    for name in ("a1", "a2", "a3"):
        assert helpers.sign_in(client, name, "đoán mò 123").status_code == 401
    assert helpers.sign_in(client, "admin").status_code == 429
    other_address = app.test_client()
    token = helpers.csrf_token(other_address)
    response = other_address.post("/login", data={"username": "admin", "password": helpers.PASSWORD,
                                                  "csrf_token": token},
                                  environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert response.status_code == 302
    app.extensions["tcd_throttle"]["address"].succeeded("127.0.0.1")  # the next tests sign in from there


def test_the_wait_doubles(site):
    from web.throttle import Throttle
    now = [0.0]
    throttle = Throttle(catalog=site["archive"].catalog, scope="test", free_tries=1, delay=2.0,
                        max_delay=5.0, forget_after=60, clock=lambda: now[0])
    throttle.failed("k")
    assert throttle.wait_for("k") == 2.0
    throttle.failed("k")
    assert throttle.wait_for("k") == 4.0
    throttle.failed("k")
    assert throttle.wait_for("k") == 5.0  # capped
    now[0] = 100.0
    assert throttle.wait_for("k") == 0.0  # forgotten after a quiet minute
    throttle.failed("k")
    assert throttle.wait_for("k") == 2.0
    throttle.succeeded("k")
    assert throttle.wait_for("k") == 0.0


# -- cookies and headers ------------------------------------------------------------------------

def test_session_cookie_is_httponly_and_samesite(client, helpers):
    response = helpers.sign_in(client, "handler")
    cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith("tcd_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_content_security_policy_forbids_inline_script(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_templates_have_no_inline_script_style_or_outside_resources():
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template.name
        assert not re.search(r"\son[a-z]+=", text), template.name
        assert not re.search(r"\sstyle=", text), template.name
        assert "http://" not in text and "https://" not in text, template.name
    for static in (p for p in (TEMPLATES.parent / "static").rglob("*") if p.is_file()):
        text = static.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "@import" not in text, static.name
        assert "innerHTML" not in text, static.name


# -- escaping -----------------------------------------------------------------------------------

def test_markup_in_titles_and_transcripts_is_escaped(as_role, site, helpers):
    client = as_role("inspector")
    page = client.get(f"/sessions/{site['evil_session']}").get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    results = client.get("/search?q=b%E1%BB%93i+th%C6%B0%E1%BB%9Dng").get_data(as_text=True)
    assert site["evil_session"] in results
    assert "<script>alert" not in results and "&lt;script&gt;" in results
    hits = client.get("/api/search?q=b%E1%BB%93i+th%C6%B0%E1%BB%9Dng").get_json()["hits"]
    evil = [h for h in hits if h["session"] == site["evil_session"]]
    assert evil and "<script" not in evil[0]["snippet"] and "<mark>" in evil[0]["snippet"]
    recent = client.get("/").get_data(as_text=True)
    assert "<script>alert" not in recent


def test_safe_snippet_keeps_only_marks():
    from web.markup import safe_snippet
    assert safe_snippet("a <mark>đất</mark> &amp; b") == "a <mark>đất</mark> &amp; b"
    assert safe_snippet("<script>x()</script><mark>y") == "x()<mark>y</mark>"
    out = str(safe_snippet('<img src=x onerror="alert(1)"><mark onclick="z">đ</mark> 1 < 2'))
    assert "<img" not in out and "onclick" not in out and "onerror" not in out
    assert out == "<mark>đ</mark> 1 &lt; 2"
    assert "<script" not in str(safe_snippet("<script>alert(1)</script>"))


def test_oversized_form_is_refused(client):
    response = client.post("/login", data={"username": "x" * (3 * 1024 * 1024), "password": "y"})
    assert response.status_code == 413
    assert "Tệp quá lớn" in response.get_data(as_text=True)

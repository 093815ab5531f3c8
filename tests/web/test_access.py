"""Who may do what: every route, anonymous and as each role, against a table written out here."""
from __future__ import annotations

import pytest

ANON = "anonymous"
# route name -> (method, path; {session}, {recording} filled in)
ROUTES = {
    "login": ("GET", "/login"),
    "healthz": ("GET", "/healthz"),
    "home": ("GET", "/"),
    "search": ("GET", "/search?q=%C4%91%E1%BA%A5t+%C4%91ai"),
    "session": ("GET", "/sessions/{session}"),
    "transcript": ("GET", "/sessions/{session}/transcript.vtt"),
    "media": ("GET", "/media/{recording}"),
    "api_search": ("GET", "/api/search?q=b%E1%BB%93i+th%C6%B0%E1%BB%9Dng"),
    "api_session": ("GET", "/api/sessions/{session}"),
    "api_jobs": ("GET", "/api/jobs"),
    "upload": ("GET", "/upload"),
    "jobs": ("GET", "/jobs"),
    "preservation": ("GET", "/preservation"),
    "admin": ("GET", "/admin/"),
    "add_user": ("POST", "/admin/users"),
    "disable_user": ("POST", "/admin/users/retired/disable"),
}
READ = {"home", "search", "session", "transcript", "media", "api_search", "api_session"}
OPEN = {"login", "healthz"}
ALLOWED = {
    ANON: OPEN,
    "handler": OPEN | READ,
    "inspector": OPEN | READ,
    "archivist": OPEN | READ | {"api_jobs", "upload", "jobs", "preservation"},
    "admin": set(ROUTES),
}
OK = {"GET": 200, "POST": 302}  # an accepted form redirects back to its page


def request(client, site, helpers, name):
    method, path = ROUTES[name]
    path = path.format(session=site["session"], recording=site["recording"])
    if method == "GET":
        return client.get(path)
    token = helpers.csrf_token(client, "/login")
    data = {"csrf_token": token, "name": "tam-thoi", "role": "inspector", "password": helpers.PASSWORD}
    return client.post(path, data=data)


@pytest.mark.parametrize("who", [ANON, "handler", "inspector", "archivist", "admin"])
def test_route_table(app, site, helpers, as_role, who):
    client = app.test_client() if who == ANON else as_role(who)
    seen = {}
    for name in ROUTES:
        seen[name] = request(client, site, helpers, name).status_code
    expected = {}
    for name, (method, path) in ROUTES.items():
        if name == "login" and who != ANON:
            expected[name] = 302  # signed in already: on to the search page
        elif name in ALLOWED[who]:
            expected[name] = OK[method]
        elif who != ANON:
            expected[name] = 403
        elif path.startswith(("/api/", "/media/")) or method == "POST":
            expected[name] = 401
        else:
            expected[name] = 302  # to the sign-in page
    assert seen == expected


def test_anonymous_page_goes_to_sign_in_and_back(app, site, helpers):
    client = app.test_client()
    response = client.get(f"/sessions/{site['session']}?t=12")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    token = helpers.csrf_token(client, response.headers["Location"])
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f'value="/sessions/{site["session"]}?t=12"' in page
    response = client.post("/login", data={"username": "inspector", "password": helpers.PASSWORD,
                                           "csrf_token": token, "next": f"/sessions/{site['session']}?t=12"})
    assert response.headers["Location"] == f"/sessions/{site['session']}?t=12"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_redirects_off_site(client, helpers, target):
    token = helpers.csrf_token(client)
    response = client.post("/login", data={"username": "handler", "password": helpers.PASSWORD,
                                           "csrf_token": token, "next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_disabled_user_cannot_sign_in_and_is_signed_out(app, site, helpers, as_role):
    from archive import users
    client = app.test_client()
    response = helpers.sign_in(client, "retired")
    assert response.status_code == 401 and "không đúng" in response.get_data(as_text=True)
    users.add_user(site["archive"], "sap-nghi", "handler", helpers.PASSWORD)
    client = as_role("sap-nghi")
    assert client.get("/").status_code == 200
    admin = as_role("admin")
    token = helpers.csrf_token(admin, "/admin/")
    assert admin.post("/admin/users/sap-nghi/disable", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302  # the session ended with the account


def test_admin_adds_a_user_who_can_sign_in(app, site, helpers, as_role):
    admin = as_role("admin")
    token = helpers.csrf_token(admin, "/admin/")
    response = admin.post("/admin/users", data={"csrf_token": token, "name": "moi", "role": "handler",
                                                "password": "mật khẩu mới"}, follow_redirects=True)
    assert "Đã thêm người dùng moi" in response.get_data(as_text=True)
    response = admin.post("/admin/users", data={"csrf_token": token, "name": "moi", "role": "handler",
                                                "password": "mật khẩu mới"}, follow_redirects=True)
    assert "Tên đăng nhập moi đã có" in response.get_data(as_text=True)
    response = admin.post("/admin/users", data={"csrf_token": token, "name": "ngan", "role": "handler",
                                                "password": "ngắn"}, follow_redirects=True)
    assert "ít nhất 8 ký tự" in response.get_data(as_text=True)
    assert helpers.sign_in(app.test_client(), "moi", "mật khẩu mới").status_code == 302
    entry = site["archive"].catalog.audit_entries(actor="admin", descending=True, limit=5)
    assert any(e["action"] == "user.add" and e["target"] == "moi" for e in entry)


def test_admin_cannot_disable_themselves(as_role, helpers):
    admin = as_role("admin")
    token = helpers.csrf_token(admin, "/admin/")
    page = admin.post("/admin/users/admin/disable", data={"csrf_token": token}, follow_redirects=True)
    assert "Không thể tự khóa" in page.get_data(as_text=True)
    assert admin.get("/admin/").status_code == 200

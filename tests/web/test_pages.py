"""The pages and the JSON API over the sample session: search, the session player, transcript files,
health, 404 pages in Vietnamese, signing out, and the audit entries each of them leaves."""
from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest

from archive import audit

LAND = quote("đất đai")            # spoken by the complainant in segment 3 of the sample
COMPENSATION = quote("bồi thường")  # in segment 4


@pytest.fixture
def inspector(as_role):
    return as_role("inspector")


def last_entry(site, actor):
    return site["archive"].catalog.audit_entries(actor=actor, descending=True, limit=1)[0]


def test_search_page_groups_hits_by_session_with_time_links(inspector, site):
    page = inspector.get(f"/search?q={LAND}").get_data(as_text=True)
    groups = re.findall(r'<article class="result">.*?</article>', page, re.S)
    assert groups and site["session"] in groups[0]
    links = re.findall(r'class="timecode" href="([^"]+)" data-start="([\d.]+)"', groups[0])
    assert links
    href, start = links[0]
    t = float(re.search(r"t=([\d.]+)", href).group(1))
    assert 0 <= float(start) - t < 0.1
    assert href.endswith(f"#rec-{site['recording']}") and href.startswith(f"/sessions/{site['session']}?")
    assert "<mark>" in groups[0]
    entry = last_entry(site, "inspector")
    assert entry["action"] == "search" and json.loads(entry["detail"])["q"] == "đất đai"


def test_search_filters_reach_the_index(inspector, site):
    page = inspector.get(f"/search?q={LAND}&from=2025-01-01&to=2025-12-31&case=KN-2025-031").get_data(as_text=True)
    assert site["session"] in page
    page = inspector.get(f"/search?q={LAND}&from=2026-01-01").get_data(as_text=True)
    assert site["session"] not in page and "Không tìm thấy kết quả" in page
    detail = json.loads(last_entry(site, "inspector")["detail"])
    assert detail["from"] == "2026-01-01"


def test_bad_date_is_explained(inspector):
    response = inspector.get("/search?q=x&from=14/03/2025")
    assert response.status_code == 400
    assert "không hợp lệ" in response.get_data(as_text=True)


def test_empty_search_lists_recent_sessions(inspector, site):
    page = inspector.get("/").get_data(as_text=True)
    assert "Các phiên gần đây" in page and f"/sessions/{site['session']}" in page


def test_api_search(inspector, site):
    data = inspector.get(f"/api/search?q={COMPENSATION}&limit=5").get_json()
    assert data["total"] >= 1 and data["limit"] == 5
    hit = next(h for h in data["hits"] if h["session"] == site["session"])
    assert {"session", "start", "end", "snippet", "recording_id", "url"} <= set(hit)
    assert "<mark>" in hit["snippet"]
    segment = next(s for s in site["segments"] if "bồi thường" in s["text"])
    assert segment["start"] - 0.01 <= hit["start"] <= segment["end"]
    assert inspector.get("/api/search?q=x&from=yesterday").status_code == 400
    assert inspector.get("/api/search?q=x&limit=many").status_code == 400


def test_session_page(inspector, site):
    page = inspector.get(f"/sessions/{site['session']}?t=12.5").get_data(as_text=True)
    assert 'data-start-at="12.5"' in page
    assert f'<video class="player" id="player-{site["recording"]}"' in page
    assert f'src="/media/{site["recording"]}"' in page
    assert '<track kind="captions"' in page and "transcript.vtt?recording=" in page
    assert page.count('class="seg"') == len(site["segments"])
    assert "Nguyễn Văn Đức" in page and "KN-2025-031" in page
    assert "chưa sẵn sàng" in page  # the WebM without an access copy
    assert "/static/player.js" in page
    entry = last_entry(site, "inspector")
    assert entry["action"] == "session.view" and entry["session_id"] == site["session"]


def test_bad_start_time_starts_at_zero(inspector, site):
    page = inspector.get(f"/sessions/{site['session']}?t=abc").get_data(as_text=True)
    assert 'data-start-at="0.0"' in page


def test_api_session(inspector, site):
    data = inspector.get(f"/api/sessions/{site['session']}").get_json()
    assert data["id"] == site["session"] and data["complainants"] == ["Nguyễn Văn Đức"]
    by_id = {r["id"]: r for r in data["recordings"]}
    first, second = by_id[site["recording"]], by_id[site["pending"]]
    assert first["media_url"] == f"/media/{site['recording']}"
    assert len(first["transcript"]["segments"]) == len(site["segments"])
    assert second["media_url"] is None and second["transcript"] is None


@pytest.mark.parametrize("fmt,marker", [("vtt", "WEBVTT"), ("srt", "1\n00:00:00,700 --> "),
                                        ("txt", "[00:00:00.700 --> "), ("json", '"segments"')])
def test_transcript_files(inspector, site, fmt, marker):
    response = inspector.get(f"/sessions/{site['session']}/transcript.{fmt}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert marker in body and "Nguyễn Văn Đức" in body
    assert "attachment" in response.headers["Content-Disposition"]
    entry = last_entry(site, "inspector")
    assert entry["action"] == "download" and json.loads(entry["detail"])["format"] == fmt


def test_transcript_of_a_named_recording(inspector, site):
    assert inspector.get(f"/sessions/{site['session']}/transcript.txt?recording={site['recording']}").status_code == 200
    # the other recording has no transcript; a recording of another session is not this session's
    assert inspector.get(f"/sessions/{site['session']}/transcript.txt?recording={site['pending']}").status_code == 404
    assert inspector.get(f"/sessions/{site['session']}/transcript.txt?recording={site['evil_recording']}").status_code == 404


def test_captions_are_audited_once_per_sitting(inspector, site):
    url = f"/sessions/{site['session']}/transcript.vtt?recording={site['recording']}&captions=1"
    count = len(site["archive"].catalog.audit_entries(actor="inspector"))
    for _ in range(3):
        response = inspector.get(url)
        assert response.status_code == 200 and response.headers["Content-Disposition"] == "inline"
    assert len(site["archive"].catalog.audit_entries(actor="inspector")) == count + 1


@pytest.mark.parametrize("fmt", ["pdf", "exe", "vtt.bak"])
def test_formats_not_offered_are_404(inspector, site, fmt):
    assert inspector.get(f"/sessions/{site['session']}/transcript.{fmt}").status_code == 404


@pytest.mark.parametrize("path", ["/sessions/TCD-1999-0001", "/sessions/TCD-1999-0001/transcript.vtt",
                                  "/khong-co-trang-nay", "/sessions/%3Cscript%3E"])
def test_unknown_things_get_a_vietnamese_404(inspector, path):
    response = inspector.get(path)
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "Không tìm thấy trang" in page and '<html lang="vi">' in page and "<script>" not in page.split("</main>")[0]


def test_unknown_session_in_the_api_is_json_404(inspector):
    response = inspector.get("/api/sessions/TCD-1999-0001")
    assert response.status_code == 404 and response.get_json()["status"] == 404


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "catalog": "ok", "store": "ok", "index": "ok"}


def test_healthz_says_what_does_not_answer(site, tmp_path, helpers):
    """A broken index (its folder replaced by a file) is reported as 503 with the part named."""
    from archive import open_archive
    from web import create_app
    home = tmp_path / "tcd-data"
    arch = open_archive(home, env={})
    arch.settings.index_dir.parent.mkdir(parents=True, exist_ok=True)
    arch.settings.index_dir.write_text("not an index")
    response = create_app(arch, {"TESTING": True}).test_client().get("/healthz")
    assert response.status_code == 503
    data = response.get_json()
    assert data["catalog"] == "ok" and data["store"] == "ok" and data["index"] == "error"
    arch.catalog.close()


def test_logout(inspector, helpers, site):
    token = helpers.csrf_token(inspector, "/")
    response = inspector.post("/logout", data={"csrf_token": token}, follow_redirects=True)
    assert "Bạn đã đăng xuất" in response.get_data(as_text=True)
    assert inspector.get("/").status_code == 302
    assert last_entry(site, "inspector")["action"] == "logout"


def test_sign_in_is_audited_and_the_chain_holds(client, helpers, site):
    helpers.sign_in(client, "handler", "không phải mật khẩu")
    failure = site["archive"].catalog.audit_entries(descending=True, limit=1)[0]
    assert failure["action"] == "login.failed" and failure["target"] == "handler"
    assert helpers.sign_in(client, "handler").status_code == 302
    assert last_entry(site, "handler")["action"] == "login"
    assert audit.verify(site["archive"].catalog).ok


def test_admin_page_shows_log_and_checks_the_chain(as_role, site):
    admin = as_role("admin")
    page = admin.get("/admin/?verify=1").get_data(as_text=True)
    assert 'id="chain-ok"' in page and "login" in page and "inspector" in page
    page = admin.get("/admin/?actor=inspector").get_data(as_text=True)
    rows = re.findall(r"<tr><td>\d+</td><td>[^<]*</td><td>([^<]*)</td>", page)
    assert rows and set(rows) == {"inspector"}


def test_admin_page_finds_a_tampered_log(tmp_path, sample, helpers):
    """On a copy of the site: change one entry by hand and the admin page says where it broke."""
    from web import create_app
    site = helpers.build_site(tmp_path / "tcd-data", sample)
    catalog = site["archive"].catalog
    catalog.db.execute("UPDATE audit SET actor = 'ai đó' WHERE id = 2")
    client = create_app(site["archive"], {"TESTING": True}).test_client()
    helpers.sign_in(client, "admin")
    page = client.get("/admin/?verify=1").get_data(as_text=True)
    assert 'id="chain-broken"' in page and "#2" in page
    catalog.close()

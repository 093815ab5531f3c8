"""Notes, sealed passages, retention and the access report through the web application, over the
sample session (real espeak-ng speech, an ffmpeg H.264 video, a real Whoosh index).

The sealed segment of the sample says "Gia đình tôi chưa nhận được tiền bồi thường một trăm hai
mươi ba triệu đồng."; for every role without clearance none of it may reach the session page, the
JSON API, the transcript files, the search hits or the media served."""
from __future__ import annotations

import csv
import io
import json
import re
from urllib.parse import quote

import pytest

from archive import users
from web import create_app

ROLES = ("admin", "archivist", "inspector", "handler")
SEALED = "một trăm hai mươi ba triệu"
VISIBLE = "đối thoại trực tiếp"      # said later by the complainant, never sealed
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


# One site for the whole module (the sealed copy takes ffmpeg a few seconds); built through the
# function-scoped `helpers` of tests/web/conftest.py, so it is kept here.
_MODULE: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _close_site():
    yield
    if "site" in _MODULE:
        _MODULE["site"]["archive"].catalog.close()
    _MODULE.clear()


@pytest.fixture
def site(tmp_path_factory, sample, helpers):
    if "site" not in _MODULE:
        data = helpers.build_site(tmp_path_factory.mktemp("records") / "tcd-data", sample)
        for role in ROLES:
            users.add_user(data["archive"], f"{role}-c", role, helpers.PASSWORD, clearance=True)
        data["sealed_segment"] = next(s for s in sample["segments"] if "bồi thường" in s["text"])
        _MODULE["site"] = data
    return _MODULE["site"]


@pytest.fixture
def app(site):
    if "app" not in _MODULE:
        _MODULE["app"] = create_app(site["archive"], {"TESTING": True, "INGEST_IN_BACKGROUND": False,
                                                      "SEAL_COPY_IN_BACKGROUND": False})
    return _MODULE["app"]


@pytest.fixture
def client_for(app, helpers):
    made = _MODULE.setdefault("clients", {})

    def make(name: str):
        if name not in made:
            c = app.test_client()
            assert helpers.sign_in(c, name).status_code == 302
            made[name] = c
        return made[name]
    return make


def post(client, path: str, form_page: str, data: dict):
    page = client.get(form_page).get_data(as_text=True)
    token = TOKEN.search(page).group(1)
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=True)


@pytest.fixture
def sealed(site, client_for):
    """The segment about the compensation sealed through the web, by an archivist without clearance."""
    if "sealed" in _MODULE:
        return _MODULE["sealed"]
    sid, rec = site["session"], site["recording"]
    seg = site["sealed_segment"]
    archivist = client_for("archivist")
    page = post(archivist, f"/sessions/{sid}/seals", f"/sessions/{sid}/seals",
                {"recording": rec, "start": str(seg["start"]), "end": str(seg["end"]),
                 "reason": "Số tiền bồi thường là dữ liệu cá nhân (Nghị định 13/2023/NĐ-CP)"})
    text = page.get_data(as_text=True)
    assert "Đã niêm phong đoạn" in text, text   # the web brought the search index up to date itself
    _MODULE["sealed"] = seg
    return seg


def test_bad_seals_are_refused_in_vietnamese(site, client_for, sealed):
    sid, rec = site["session"], site["recording"]
    archivist = client_for("archivist")
    length = site["archive"].catalog.get_recording(rec).duration
    seal = site["archive"].catalog.list_seals(recording_id=rec)[0]
    inside, past = round(sealed["start"] + 0.5, 3), round(sealed["end"] + 1, 3)
    for start, end, reason, message in (
            ("20", "10", "Lý do", "Thời điểm bắt đầu (20 giây) phải trước thời điểm kết thúc (10 giây)."),
            ("30", "99", "Lý do", f"Đoạn 30–99 giây nằm ngoài bản ghi (bản ghi dài {length:.1f} giây)."),
            ("-1", "2", "Lý do", f"Đoạn -1–2 giây nằm ngoài bản ghi (bản ghi dài {length:.1f} giây)."),
            (str(inside), str(past), "Lý do",
             f"Đoạn {inside:g}–{past:g} giây trùng với đoạn đã niêm phong số {seal['id']} "
             f"({seal['start']:g}–{seal['end']:g} giây). Hãy chọn đoạn khác hoặc gỡ niêm phong đó trước."),
            ("", "4", "Lý do", "Hãy ghi cả thời điểm bắt đầu và kết thúc của đoạn cần niêm phong."),
            ("ba", "4", "Lý do", "Thời điểm bắt đầu “ba” không phải là thời điểm; hãy ghi số giây (12.5) "
                                 "hoặc phút:giây (1:02)."),
            ("1", "2", " ", "Hãy ghi lý do niêm phong (ví dụ: căn cứ pháp lý, loại dữ liệu cá nhân)."),
            ("1", "2", "x" * 501, "Lý do niêm phong dài tối đa 500 ký tự.")):
        page = post(archivist, f"/sessions/{sid}/seals", f"/sessions/{sid}/seals",
                    {"recording": rec, "start": start, "end": end, "reason": reason}).get_data(as_text=True)
        assert f"Không niêm phong được: {message}" in page, (start, end, flashes(page))
    assert len(site["archive"].catalog.list_seals(recording_id=rec)) == 1
    assert client_for("inspector").get(f"/sessions/{sid}/seals").status_code == 403


def flashes(page: str) -> list[str]:
    return re.findall(r'class="flash[^"]*">([^<]*)', page)


def test_bad_notes_are_refused_in_vietnamese(site, client_for):
    sid, rec = site["session"], site["recording"]
    inspector = client_for("inspector")
    length = site["archive"].catalog.get_recording(rec).duration
    outside = f"nằm ngoài bản ghi (bản ghi dài {length:.1f} giây)."
    before = len(site["archive"].catalog.list_notes(recording_id=rec))
    for form, message in (
            ({"start": "", "text": "x"}, "hãy ghi thời điểm của ghi chú."),
            ({"start": "-1", "text": "x"}, f"thời điểm -1 giây {outside}"),
            ({"start": "999", "text": "x"}, f"thời điểm 999 giây {outside}"),
            ({"start": "5", "end": "2", "text": "x"},
             "thời điểm kết thúc (2 giây) phải sau thời điểm bắt đầu (5 giây)."),
            ({"start": "5", "end": "999", "text": "x"}, f"thời điểm kết thúc 999 giây {outside}"),
            ({"start": "5", "text": " \n "}, "hãy ghi nội dung ghi chú."),
            ({"start": "5", "text": "đ" * 2001}, "ghi chú dài tối đa 2000 ký tự."),
            ({"start": "ba", "text": "x"}, "Thời điểm “ba” không phải là thời điểm")):
        page = post(inspector, f"/recordings/{rec}/notes", f"/sessions/{sid}", form).get_data(as_text=True)
        assert f"Không thêm được ghi chú: {message}" in page, (form, flashes(page))
    assert len(site["archive"].catalog.list_notes(recording_id=rec)) == before
    post(inspector, f"/recordings/{rec}/notes", f"/sessions/{sid}", {"start": "3", "text": "Chủ trì khai mạc"})
    note = next(n for n in site["archive"].catalog.list_notes(recording_id=rec) if n["text"] == "Chủ trì khai mạc")
    for form, message in (({"end": "0.5"}, "thời điểm kết thúc (0.5 giây) phải sau thời điểm bắt đầu (3 giây)."),
                          ({"start": "999"}, f"thời điểm 999 giây {outside}"),
                          ({"text": " "}, "hãy ghi nội dung ghi chú.")):
        page = post(inspector, f"/notes/{note['id']}", f"/sessions/{sid}", form).get_data(as_text=True)
        assert f"Không lưu được ghi chú: {message}" in page, (form, flashes(page))
    assert site["archive"].catalog.get_note(note["id"])["version"] == 1


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("cleared", (True, False))
def test_sealed_text_reaches_only_cleared_users(site, client_for, sealed, role, cleared):
    sid, rec = site["session"], site["recording"]
    client = client_for(f"{role}-c" if cleared else role)
    sees = cleared or role == "admin"
    views = {
        "page": client.get(f"/sessions/{sid}").get_data(as_text=True),
        "api": json.dumps(client.get(f"/api/sessions/{sid}").get_json(), ensure_ascii=False),
        **{fmt: client.get(f"/sessions/{sid}/transcript.{fmt}?recording={rec}").get_data(as_text=True)
           for fmt in ("txt", "vtt", "srt", "json")},
    }
    for name, body in views.items():
        assert VISIBLE in body, name
        assert (SEALED in body) is sees, name
        assert ("[nội dung đã niêm phong]" in body) is (not sees), name
    # exports: the DOCX minutes and any version's files
    from docx import Document
    minutes = client.get(f"/sessions/{sid}/transcript.docx?recording={rec}")
    assert minutes.status_code == 200
    text = "\n".join(p.text for p in Document(io.BytesIO(minutes.data)).paragraphs)
    assert VISIBLE in text and (SEALED in text) is sees
    version = client.get(f"/sessions/{sid}/recordings/{rec}/versions/1/transcript.txt").get_data(as_text=True)
    assert VISIBLE in version and (SEALED in version) is sees
    # pages that cannot hide a passage refuse users without clearance
    assert client.get(f"/sessions/{sid}/recordings/{rec}/versions").status_code == (200 if sees else 403)
    # citations leave sealed passages out, whoever asks
    token = TOKEN.search(views["page"]).group(1)
    refused = client.post("/cite", data={"recording": rec, "start": str(sealed["start"]), "end": str(sealed["end"]),
                                         "csrf_token": token}, headers={"Accept": "application/json"})
    assert refused.status_code == 400 and SEALED not in refused.get_data(as_text=True)
    # the search index holds no sealed text for anyone: no hit, no snippet
    for q in ("hai mươi ba triệu", "bồi thường", "123 triệu"):
        hits = [h for h in client.get(f"/api/search?q={quote(q)}").get_json()["hits"] if h["recording_id"] == rec]
        assert not any("triệu" in h["snippet"] or "bồi" in h["snippet"] for h in hits), (q, hits)
        page = client.get(f"/search?q={quote(q)}").get_data(as_text=True)
        results = "".join(re.findall(r'<article class="result">.*?</article>', page, re.S))
        assert "triệu" not in results and "hai mươi ba" not in results
    # playback: the silenced copy for users without clearance, the access copy for the others
    media = client.get(f"/media/{rec}", headers={"Range": "bytes=0-99"})
    assert media.status_code == 206
    copy = site["archive"].catalog.sealed_copy(rec)
    access = site["archive"].catalog.get_recording(rec).access_sha256
    assert media.headers["ETag"] == f'"{access if sees else copy["sha256"]}"'


def test_notes_on_the_page_editing_and_history(site, client_for, sealed):
    sid, rec = site["session"], site["recording"]
    inspector, handler = client_for("inspector"), client_for("handler")
    page = post(inspector, f"/recordings/{rec}/notes", f"/sessions/{sid}",
                {"start": "0:31", "end": "", "text": "công dân đề nghị đối thoại trực tiếp"}).get_data(as_text=True)
    assert "Đã thêm ghi chú tại 31 giây" in page, re.findall(r'class="flash[^"]*">([^<]*)', page)
    assert re.search(r'class="tl-note" data-start="31.0"', page) and "records.js" in page
    note = site["archive"].catalog.list_notes(recording_id=rec)[-1]
    # on a sealed moment, a note reads as the marker to users without clearance
    post(inspector, f"/recordings/{rec}/notes", f"/sessions/{sid}",
         {"start": str(sealed["start"] + 0.2), "text": "đọc số tài khoản 0123456789"})
    assert "0123456789" not in handler.get(f"/sessions/{sid}").get_data(as_text=True)
    assert "0123456789" in client_for("handler-c").get(f"/sessions/{sid}").get_data(as_text=True)
    notes_json = handler.get(f"/api/sessions/{sid}/notes").get_json()["notes"]
    assert "0123456789" not in json.dumps(notes_json, ensure_ascii=False)
    # only the author (or an admin) may change it
    token = TOKEN.search(handler.get(f"/sessions/{sid}").get_data(as_text=True)).group(1)
    assert handler.post(f"/notes/{note['id']}", data={"text": "sửa", "csrf_token": token}).status_code == 403
    page = post(inspector, f"/notes/{note['id']}", f"/sessions/{sid}",
                {"start": "31", "end": "35", "text": "công dân đề nghị đối thoại trực tiếp với lãnh đạo",
                 "version": "1"}).get_data(as_text=True)
    assert "Đã lưu ghi chú" in page
    history = handler.get(f"/notes/{note['id']}/history").get_data(as_text=True)
    assert history.count("<tr>") == 3 and "với lãnh đạo" in history


def test_notes_are_searchable_and_play_from_their_second(site, client_for, sealed):
    sid, rec = site["session"], site["recording"]
    inspector = client_for("inspector")
    post(inspector, f"/recordings/{rec}/notes", f"/sessions/{sid}",
         {"start": "12.5", "text": "chủ trì yêu cầu giữ trật tự phòng họp"})
    hits = inspector.get(f"/api/search?q={quote('trật tự phòng họp')}").get_json()["hits"]
    assert hits and hits[0]["start"] == 12.5 and hits[0]["recording_id"] == rec
    assert "t=12.5" in hits[0]["url"] and hits[0]["speaker"] == "Ghi chú"


def test_retention_needs_two_people(site, client_for, helpers, tmp_path):
    archive = site["archive"]
    old = archive.catalog.create_session({"title": "Phiên cũ", "held_on": "2010-05-04"})
    archivist, admin = client_for("archivist"), client_for("admin")
    page = post(archivist, f"/sessions/{old.id}/retention", "/retention", {"years": "5"}).get_data(as_text=True)
    assert "được lưu đến hết ngày 2015-05-04" in page and f"due-{old.id}" in page
    assert client_for("inspector").get("/retention").status_code == 403
    page = post(archivist, f"/sessions/{old.id}/deletion", "/retention", {"reason": "Hết hạn"}).get_data(as_text=True)
    deletion = archive.catalog.open_deletion(old.id)["id"]
    assert f"đề nghị số {deletion}" in page and "Cần người khác phê duyệt" in page
    page = post(archivist, f"/deletions/{deletion}/approve", "/retention", {}).get_data(as_text=True)
    assert "người đề nghị không được tự phê duyệt" in page
    assert archive.catalog.find_session(old.id) is not None
    page = post(admin, f"/deletions/{deletion}/approve", "/retention", {}).get_data(as_text=True)
    assert f"Đã hủy phiên {old.id}" in page
    assert archive.catalog.find_session(old.id) is None
    assert admin.get(f"/sessions/{old.id}").status_code == 404
    # a held session is refused, in Vietnamese
    held = archive.catalog.create_session({"title": "Phiên phong tỏa", "held_on": "2010-05-04",
                                           "retention": "5", "legal_hold": True})
    page = post(archivist, f"/sessions/{held.id}/deletion", "/retention", {}).get_data(as_text=True)
    assert "đang bị phong tỏa" in page and archive.catalog.open_deletion(held.id) is None


def test_access_report_page_and_csv(site, client_for, sealed):
    sid = site["session"]
    client_for("handler").get(f"/sessions/{sid}")
    client_for("inspector").get(f"/media/{site['recording']}", headers={"Range": "bytes=0-9"})
    admin = client_for("admin")
    page = admin.get(f"/sessions/{sid}/access").get_data(as_text=True)
    assert "Báo cáo truy cập" in page and "handler" in page and "Xem" in page
    response = admin.get(f"/sessions/{sid}/access.csv")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "Thời điểm (UTC)" and any(r[1] == "handler" and r[3] == "Xem" for r in rows[1:])
    assert any(r[3] == "Phát" for r in rows[1:])   # the media requests above
    assert client_for("inspector").get(f"/sessions/{sid}/access").status_code == 403
    assert client_for("archivist").get(f"/sessions/{sid}/access.csv").status_code == 200


def test_a_citation_sealed_after_it_was_issued(site, client_for, sample):
    sid, rec = site["session"], site["recording"]
    segment = next(s for s in sample["segments"] if "Sở Tài nguyên" in s["text"])
    admin = client_for("admin")
    token = TOKEN.search(admin.get(f"/sessions/{sid}").get_data(as_text=True)).group(1)
    made = admin.post("/cite", data={"recording": rec, "start": str(segment["start"] + 0.1),
                                     "end": str(segment["end"] - 0.1), "csrf_token": token},
                      headers={"Accept": "application/json"}).get_json()
    code = made["code"]
    assert client_for("handler").get(f"/cite/{code}").status_code == 200
    page = post(client_for("archivist"), f"/sessions/{sid}/seals", f"/sessions/{sid}/seals",
                {"recording": rec, "start": str(segment["start"]), "end": str(segment["end"]), "reason": "Tên cơ quan"})
    assert "Đã niêm phong đoạn" in page.get_data(as_text=True)
    for name, status in (("handler", 403), ("inspector", 403), ("handler-c", 200), ("admin", 200)):
        assert client_for(name).get(f"/cite/{code}").status_code == status, name
        assert client_for(name).get(f"/cite/{code}.docx").status_code == status, name
    seal = site["archive"].catalog.list_seals(recording_id=rec)[-1]
    post(client_for("admin"), f"/seals/{seal['id']}/remove", f"/sessions/{sid}/seals", {"reason": "thử"})
    assert client_for("handler").get(f"/cite/{code}").status_code == 200

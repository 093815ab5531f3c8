"""A small archive for the web tests: the generated sample session (real espeak-ng speech and an
ffmpeg H.264 video) put into a real catalog and store, the script imported as a human transcript,
a second session whose title and transcript carry markup, one user per role, a real index."""
from __future__ import annotations

import re
from pathlib import Path

import ffmpeg
import pytest
import waitress

from archive import open_archive, users
from archive.transcripts import save_transcript
from ingest.sample import make_sample
from web import create_app

from .. import helpers as shared  # this module's `helpers` is a fixture
from ..conftest import serve_in_thread

PASSWORD = "mật-khẩu-đủ-dài"
ROLES = ("admin", "archivist", "inspector", "handler")
EVIL = "<script>alert('x')</script>"


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("sample")
    data = make_sample(folder)
    tone = folder / "tone.m4a"
    (ffmpeg.input("sine=f=440:r=44100:d=2", f="lavfi")
     .output(str(tone), acodec="aac", movflags="+faststart").overwrite_output().run(quiet=True))
    return {**data, "tone": tone}


def add_recording(arch, session_id: str, path: Path, point: str, mime: str | None,
                  duration: float, has_video: bool):
    """Store a file as a recording's original (and as its access copy when `mime` is given);
    the recording and the file's size."""
    rec = shared.add_recording(arch, path, session_id, media_type=path.suffix.lstrip("."), access_mime=mime or "",
                               point=point, duration=duration, has_video=has_video)
    return rec, path.stat().st_size


def build_site(home: Path, sample: dict) -> dict:
    """Catalog, store, transcripts, users and index of the test site; returns what tests need."""
    arch = open_archive(home, env={})
    session = arch.catalog.create_session(sample["meta"])
    (video, point), (webm, delegate) = sample["recordings"]
    # The sample MP4 is H.264/AAC with faststart already: it serves as its own access copy.
    rec, size = add_recording(arch, session.id, video, point, "video/mp4", 38.0, True)
    save_transcript(arch, rec.id, sample["segments"], kind="human", author="sample")
    # The delegate point's WebM has no access copy yet: its player says so.
    pending, _ = add_recording(arch, session.id, webm, delegate, None, 38.0, True)

    evil = arch.catalog.create_session({"title": f"Phiên thử {EVIL}", "held_on": "2024-05-02",
                                        "case_code": "KN-2024-009", "complainants": [EVIL]})
    evil_rec, _ = add_recording(arch, evil.id, sample["tone"], "", "audio/mp4", 2.0, False)
    save_transcript(arch, evil_rec.id, [{"start": 0.2, "end": 1.5, "speaker": EVIL,
                                         "text": f"đất đai {EVIL} bồi thường", "words": []}],
                    kind="human", author="sample")
    for role in ROLES:
        users.add_user(arch, role, role, PASSWORD)
    users.add_user(arch, "retired", "inspector", PASSWORD)
    users.disable_user(arch, "retired")
    from search import open_index
    open_index(arch).sync()
    return {"archive": arch, "session": session.id, "recording": rec.id, "pending": pending.id,
            "evil_session": evil.id, "evil_recording": evil_rec.id, "size": size, "video": video,
            "segments": sample["segments"]}


@pytest.fixture(scope="module")
def site(tmp_path_factory, sample) -> dict:
    data = build_site(tmp_path_factory.mktemp("site") / "tcd-data", sample)
    yield data
    data["archive"].catalog.close()


@pytest.fixture(scope="module")
def server(site):
    """The module's application served by waitress with threads, as `tcd serve` does, on a free
    port (for the browser tests)."""
    httpd = waitress.create_server(create_app(site["archive"]), host="127.0.0.1", port=0, threads=4)
    stop = serve_in_thread(httpd)
    yield f"http://127.0.0.1:{httpd.effective_port}"
    stop()


@pytest.fixture
def app(site):
    return create_app(site["archive"], {"TESTING": True, "INGEST_IN_BACKGROUND": False})


@pytest.fixture
def client(app):
    return app.test_client()


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    match = CSRF_RE.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, name: str, password: str = PASSWORD):
    token = csrf_token(client)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token})


@pytest.fixture
def as_role(app):
    """`as_role(role)` gives a test client signed in as that role's user."""
    def make(role: str):
        c = app.test_client()
        response = sign_in(c, role)
        assert response.status_code == 302, response.get_data(as_text=True)
        return c
    return make


@pytest.fixture
def helpers():
    """The constants and helpers above, for test modules (conftest is not importable)."""
    import types
    return types.SimpleNamespace(PASSWORD=PASSWORD, ROLES=ROLES, EVIL=EVIL, csrf_token=csrf_token,
                                 sign_in=sign_in, build_site=build_site)

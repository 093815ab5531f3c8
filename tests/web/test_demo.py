"""`make demo` end to end: `python -m web.demo` ingests the generated sample through the real
pipeline, imports its script as a labelled human transcript, prints a one-time admin password
and serves the UI, where that password signs in and a search plays from the sample's second."""
from __future__ import annotations

import http.cookiejar
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from archive import open_archive
from web.demo import HUMAN_LABEL

from ..conftest import free_ports, wait_for

ROOT = Path(__file__).resolve().parents[2]


def demo(home: Path, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "web.demo", "--home", str(home), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def password_from(output: str) -> str:
    return re.search(r"sign in as admin / (\S+)", output).group(1)


def test_demo_ingests_the_sample_and_serves_it_to_the_printed_password(tmp_path):
    home, port = tmp_path / "demo-data", free_ports(1)[0]
    server = demo(home, "--port", str(port))
    try:
        lines = []
        for line in server.stdout:  # ingest, then the password, then the server's own lines
            lines.append(line)
            if "Serving" in line:
                break
        output = "".join(lines)
        assert "Serving" in output, output
        password = password_from(output)
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        base = f"http://127.0.0.1:{port}"

        def login_page() -> str | None:
            try:
                return browser.open(base + "/login", timeout=5).read().decode()
            except OSError:
                return None  # not listening yet
        page = wait_for(login_page, what="the demo's sign-in page")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"username": "admin", "password": password, "csrf_token": token})
        browser.open(base + "/login", data=form.encode(), timeout=10).read()
        found = browser.open(base + "/search?" + urllib.parse.urlencode({"q": "boi thuong"}), timeout=10).read().decode()
        assert "<mark>bồi</mark> <mark>thường</mark>" in found
        assert re.search(r'href="/sessions/[^"]+\?[^"]*t=\d', found)  # the hit plays from its second
    finally:
        server.terminate()
        server.wait(timeout=30)

    archive = open_archive(home, env={})
    [session] = archive.catalog.list_sessions()
    recordings = archive.catalog.recordings_for_session(session.id)
    assert len(recordings) == 2 and all(r.access_sha256 for r in recordings)
    for rec in recordings:
        current = archive.catalog.current_transcript(rec.id)
        assert (current.kind, current.label) == ("human", HUMAN_LABEL)
    archive.catalog.close()

    # Run again: nothing ingested twice, and a new password.
    again = demo(home, "--no-serve")
    output, _ = again.communicate(timeout=120)
    assert again.returncode == 0, output
    assert session.id in output and password_from(output) != password
    archive = open_archive(home, env={})
    assert [s.id for s in archive.catalog.list_sessions()] == [session.id]
    archive.catalog.close()

"""The web while the store does not answer: pages that need only the catalog still work; a
play or a download gets a 503 page in Vietnamese that says to try again, never a traceback; the
health check says which part is down. The store here is an S3 address where nothing listens
(a stopped server); the catalog and index are the test site's."""
from __future__ import annotations

import pytest

from archive import open_archive
from web import create_app

from ..conftest import free_ports
from .conftest import sign_in


@pytest.fixture(scope="module")
def down(site):
    """The test site's application with its store on a stopped S3 server. (The `unused_port`
    fixture is per test, so this module-wide fixture asks `free_ports` itself.)"""
    arch = open_archive(site["archive"].home, env={
        "TCD_STORAGE": f"s3://tcd@127.0.0.1:{free_ports(1)[0]}/archive?secure=false",
        "TCD_S3_SECRET": "not-used-no-server"})
    yield create_app(arch, {"TESTING": True, "INGEST_IN_BACKGROUND": False})
    arch.catalog.close()


def test_a_play_while_the_store_is_down_is_a_503_page_in_vietnamese(site, down):
    client = down.test_client()
    assert sign_in(client, "inspector").status_code == 302
    response = client.get(f"/media/{site['recording']}", headers={"Range": "bytes=0-99"})
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "Kho lưu trữ chưa trả lời. Vui lòng thử lại sau ít phút." in page
    assert "Traceback" not in page and "127.0.0.1" not in page  # no internals shown

    # what needs only the catalog and the index still answers
    assert client.get(f"/sessions/{site['session']}").status_code == 200
    found = client.get("/search?q=dat+dai")
    assert found.status_code == 200 and "<mark>" in found.get_data(as_text=True)


def test_the_health_check_names_the_store(down):
    response = down.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "catalog": "ok", "store": "error", "index": "ok"}

"""/media/<recording-id>: HTTP Range on the access copy, streamed from the store; plays audited once."""
from __future__ import annotations

import pytest

from archive.store import CHUNK


@pytest.fixture
def viewer(as_role):
    return as_role("inspector")


@pytest.fixture
def data(site):
    return site["video"].read_bytes()


def get(client, site, range_header=None, **headers):
    if range_header is not None:
        headers["Range"] = range_header
    return client.get(f"/media/{site['recording']}", headers=headers)


def test_whole_file(viewer, site, data):
    response = get(viewer, site)
    assert response.status_code == 200
    assert response.mimetype == "video/mp4"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert int(response.headers["Content-Length"]) == len(data)
    assert response.get_data() == data


@pytest.mark.parametrize("header,span", [
    ("bytes=0-99", lambda size: (0, 100)),            # a plain range
    ("bytes=1000-1999", lambda size: (1000, 2000)),
    ("bytes=-500", lambda size: (size - 500, size)),  # the last 500 bytes
    ("bytes=5000-", lambda size: (5000, size)),       # open-ended
    ("bytes=0-999999999", lambda size: (0, size)),    # an end past the file is cut to the file
    ("bytes=10-19", lambda size: (10, 20)),
])
def test_satisfiable_range(viewer, site, data, header, span):
    size = len(data)
    start, stop = span(size)
    response = get(viewer, site, header)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{size}"
    assert int(response.headers["Content-Length"]) == stop - start
    assert response.get_data() == data[start:stop]


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{size2}", "bytes=-0",
                                    "bytes=99999999999999999999999999-"])
def test_unsatisfiable_range(viewer, site, data, header):
    size = len(data)
    response = get(viewer, site, header.format(size=size, size2=size + 10))
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"
    assert b"ftyp" not in response.get_data()


@pytest.mark.parametrize("header", [
    "bytes=abc", "bytes=5-3", "bytes=-5-10", "bytes=--5", "bytes=0-1,5-6", "bytes=0-4,",
    "items=0-5", "bytes=", "bytes=1.5-2", "\x00\xff",
])
def test_malformed_negative_or_multiple_ranges_get_the_whole_file(viewer, site, data, header):
    response = get(viewer, site, header)
    assert response.status_code == 200
    assert response.get_data() == data


def test_if_range_with_another_tag_gets_the_whole_file(viewer, site, data):
    response = get(viewer, site, "bytes=0-9", **{"If-Range": '"0000"'})
    assert response.status_code == 200 and len(response.get_data()) == len(data)
    etag = get(viewer, site).headers["ETag"]
    response = get(viewer, site, "bytes=0-9", **{"If-Range": etag})
    assert response.status_code == 206 and response.get_data() == data[:10]


def test_head_sends_headers_only(viewer, site, data):
    response = viewer.head(f"/media/{site['recording']}", headers={"Range": "bytes=0-9"})
    assert response.status_code == 206 and response.headers["Content-Length"] == "10"
    assert response.get_data() == b""


def test_streamed_in_chunks_through_the_store(viewer, site, data, monkeypatch):
    """The body comes from Store.read_range chunk by chunk, never as one read of the file."""
    store = site["archive"].store
    calls, chunks = [], []
    real = type(store).read_range

    def spy(self, sha256, start, length):
        calls.append((sha256, start, length))
        for chunk in real(self, sha256, start, length):
            chunks.append(len(chunk))
            yield chunk
    monkeypatch.setattr(type(store), "read_range", spy)
    response = get(viewer, site, "bytes=100-")
    assert response.is_streamed
    body = response.get_data()
    assert body == data[100:]
    assert calls == [(site["archive"].catalog.get_recording(site["recording"]).access_sha256, 100, len(data) - 100)]
    assert max(chunks) <= CHUNK


@pytest.mark.parametrize("path", [
    "/media/0000000000000000",          # a well-formed id nobody has
    "/media/..%2F..%2Fcatalog.sqlite",  # a path, not an id
    "/media/../catalog.sqlite",
    "/media/%2e%2e",
    "/media/{sha}",                     # an object hash is not a recording id
])
def test_unknown_or_path_like_ids_are_404(viewer, site, path):
    sha = site["archive"].catalog.get_recording(site["recording"]).access_sha256
    response = viewer.get(path.format(sha=sha))
    assert response.status_code == 404
    assert b"SQLite" not in response.get_data()


def test_recording_without_access_copy_is_404_in_vietnamese(viewer, site):
    response = viewer.get(f"/media/{site['pending']}")
    assert response.status_code == 404
    assert "Không tìm thấy" in response.get_data(as_text=True)


def test_play_is_audited_once_per_recording_per_sitting(app, site, as_role):
    catalog = site["archive"].catalog

    def plays():
        return [e for e in catalog.audit_entries(actor="handler") if e["action"] == "play"]
    before = len(plays())
    client = as_role("handler")
    for header in ("bytes=0-", "bytes=1000-", "bytes=-100", None):
        get(client, site, header).get_data()
    assert len(plays()) == before + 1
    assert plays()[-1]["target"] == site["recording"] and plays()[-1]["session_id"] == site["session"]
    client.get(f"/media/{site['evil_recording']}").get_data()
    assert len(plays()) == before + 2
    again = as_role("handler")  # a new sign-in is a new sitting
    get(again, site, "bytes=0-").get_data()
    assert len(plays()) == before + 3

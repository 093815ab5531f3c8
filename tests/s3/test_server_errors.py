"""An S3 server that answers with errors (HTTP 5xx: overloaded, a failing disk, a proxy in front
whose backend is down). A short burst is retried and nothing shows; errors on every try become
StorageUnavailable (which the ingest runner waits out) with a sentence that says the server is
up but failing, not that it cannot be reached, and nothing half-written is left behind.

The errors come from a small HTTP proxy in front of the real SeaweedFS (a real S3 server cannot
be made to fail on demand): it answers the first N requests itself with 503 SlowDown, in S3's
XML, and forwards the rest unchanged (the Host header too, so signatures still hold)."""
from __future__ import annotations

import hashlib
import http.client
import http.server
import threading

import pytest

from archive.errors import StorageUnavailable
from archive.s3store import S3Store
from archive.store import object_key

from .conftest import ACCESS_KEY, SECRET_KEY

SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message><RequestId>t</RequestId></Error>")


class FailingProxy:
    def __init__(self, backend: str, failures: int):
        self.backend, self.failures, self.failed, self.forwarded = backend, failures, 0, 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.failed < proxy.failures:
                    proxy.failed += 1
                    return self.answer(503, {"Content-Type": "application/xml"}, SLOW_DOWN)
                proxy.forwarded += 1
                conn = http.client.HTTPConnection(proxy.backend, timeout=30)
                conn.request(self.command, self.path, body=body or None, headers=dict(self.headers))
                response = conn.getresponse()
                data = response.read()
                headers = {k: v for k, v in response.getheaders()
                           if k.lower() not in ("transfer-encoding", "connection", "content-length")}
                # a HEAD answer has no body but tells the object's length
                length = response.getheader("Content-Length", "0") if self.command == "HEAD" else None
                self.answer(response.status, headers, data, length)
                conn.close()

            def answer(self, status, headers, data, length=None):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = handle_one

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(seaweed):
    made = []

    def make(failures: int) -> FailingProxy:
        made.append(FailingProxy(seaweed.endpoint, failures))
        return made[-1]
    yield make
    for p in made:
        p.close()


def store_behind(p: FailingProxy, bucket: str, tmp_path) -> S3Store:
    return S3Store(p.endpoint, ACCESS_KEY, SECRET_KEY, bucket, tmp_dir=tmp_path / "s3-tmp")


def test_a_short_burst_of_errors_is_retried_and_the_object_lands_whole(proxy, seaweed, bucket, tmp_path):
    source = tmp_path / "biên bản.bin"
    source.write_bytes(hashlib.sha256(b"seed").digest() * 40_000)  # 1.28 MB
    p = proxy(failures=2)
    stored = store_behind(p, bucket, tmp_path).put_file(source)
    assert p.failed == 2 and p.forwarded > 0
    data = seaweed.client().get_object(bucket, object_key(stored.sha256)).read()
    assert hashlib.sha256(data).hexdigest() == stored.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()


def test_errors_on_every_try_say_the_server_fails_and_leave_nothing(proxy, seaweed, bucket, tmp_path):
    source = tmp_path / "ghi-âm.bin"
    source.write_bytes(b"\x01" * 300_000)
    p = proxy(failures=10**9)
    store = store_behind(p, bucket, tmp_path)
    with pytest.raises(StorageUnavailable, match=rf"The S3 server {p.endpoint} answered with errors "
                                                 r"\(HTTP 503\) to every try; it is up but not able"):
        store.put_file(source)
    tries = p.failed
    assert tries >= 3  # put_file alone tried again before giving up
    with pytest.raises(StorageUnavailable, match="answered with errors"):
        store.check()
    assert p.forwarded == 0 and p.failed >= 3  # tried again before giving up
    assert list(seaweed.client().list_objects(bucket, recursive=True)) == []
    assert source.read_bytes() == b"\x01" * 300_000  # the source is never touched

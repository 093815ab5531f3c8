"""`tcd serve`'s thread pool serves waiting media requests before waiting pages (web.dispatch),
on a real waitress server whose only thread is kept busy while requests queue up."""
from __future__ import annotations

import http.client
import threading
from types import SimpleNamespace

import waitress

from web import dispatch

from ..conftest import serve_in_thread, wait_for


def test_waiting_media_requests_go_before_waiting_pages_in_their_order():
    served: list[str] = []
    busy, release = threading.Event(), threading.Event()

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/busy":
            busy.set()
            release.wait(10)
        served.append(path)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    pool = dispatch.dispatcher(1)
    httpd = waitress.create_server(app, host="127.0.0.1", port=0, _dispatcher=pool)
    stop = serve_in_thread(httpd)
    statuses: list[int] = []

    def get(path: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", httpd.effective_port, timeout=10)
        conn.request("GET", path)
        statuses.append(conn.getresponse().status)

    clients = []
    try:
        for n, path in enumerate(["/busy", "/search?q=1", "/media/aaaa", "/sessions/s1", "/media/bbbb"]):
            clients.append(threading.Thread(target=get, args=(path,)))
            clients[-1].start()
            if n == 0:
                assert busy.wait(10)  # the only thread is taken
            else:
                wait_for(lambda: len(pool.queue) == n, timeout=10, step=0.01,
                         what=f"{n} requests queued")  # queued in the order sent
        release.set()
        for c in clients:
            c.join(10)
    finally:
        release.set()
        stop()
        pool.shutdown()
    assert statuses == [200] * 5
    assert served == ["/busy", "/media/aaaa", "/media/bbbb", "/search", "/sessions/s1"]


def test_is_media_reads_the_waiting_request_and_refuses_the_unexpected():
    request = SimpleNamespace(path="/media/0123456789abcdef")
    assert dispatch.is_media(SimpleNamespace(requests=[request]))
    assert not dispatch.is_media(SimpleNamespace(requests=[SimpleNamespace(path="/search")]))
    assert not dispatch.is_media(SimpleNamespace(requests=[]))
    assert not dispatch.is_media(object())

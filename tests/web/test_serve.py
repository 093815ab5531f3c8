"""`tcd serve`: the real command on waitress, bound to loopback by default, in one or several
worker processes, stopping gracefully: requests in flight finish, new connections are refused."""
from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import psutil
import pytest
import waitress

from archive import config, open_archive, users
from web import drain
from web import workers as workers_module
from web.cli import is_loopback
from web.workers import Seats

from ..conftest import free_ports, wait_for
from ..helpers import TCD, tcd_process


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                           ("0.0.0.0", False), ("192.168.1.5", False), ("example", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_tcd_serve_answers_on_loopback(tmp_path):
    home = tmp_path / "tcd-data"
    port = free_ports(1)[0]
    home.mkdir()
    (home / "tcd.toml").write_text(f"[server]\nport = {port}\n")  # the port comes from the settings
    env = {**os.environ, "TCD_HOME": str(home)}
    server = subprocess.Popen([TCD, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        status, body = None, b""
        end = time.monotonic() + 30
        while time.monotonic() < end and status is None:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/login")
                response = conn.getresponse()
                status, body = response.status, response.read()
            except OSError:
                time.sleep(0.2)
        assert status == 200 and "Đăng nhập".encode() in body
        assert response.getheader("Server") == "tcd"
        listening = {c.laddr for c in psutil.Process(server.pid).net_connections()
                     if c.status == "LISTEN"}
        assert listening == {("127.0.0.1", port)}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=10)[0].decode()
    assert "No users yet" in output and f"http://127.0.0.1:{port}/" in output


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status in (200, 503)
    except OSError:
        return False


def test_workers_share_the_socket_a_dead_one_is_replaced_and_all_stop_together(tmp_path):
    port = free_ports(1)[0]
    env = {**os.environ, "TCD_HOME": str(tmp_path / "tcd-data")}
    server = subprocess.Popen([TCD, "serve", "--port", str(port), "--processes", "2"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    parent = psutil.Process(server.pid)
    try:
        wait_for(lambda: _answers(port), timeout=30, what="tcd serve to answer")
        workers = parent.children()
        assert len(workers) == 2
        # Many connections held open at once land on both workers (the kernel wakes either).
        conns = []
        for _ in range(40):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conns.append(conn)
        ports = {c.sock.getsockname()[1] for c in conns}
        serving = {w.pid for w in workers
                   if any(x.raddr and x.raddr[1] in ports for x in w.net_connections())}
        assert serving == {w.pid for w in workers}
        for conn in conns:
            conn.close()

        time.sleep(workers_module.STARTUP_GRACE)  # past start-up: a death now is a crash, not a bad set-up
        workers[0].kill()
        wait_for(lambda: len(parent.children()) == 2 and workers[0].pid not in
                 {c.pid for c in parent.children()}, timeout=30, what="a replacement worker")
        assert _answers(port)
        everyone = parent.children()
    finally:
        os.killpg(server.pid, signal.SIGTERM) if server.poll() is None else None
        output = server.communicate(timeout=30)[0].decode()
    assert server.returncode == 0, output
    assert "with 2 processes" in output and "starting another" in output
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in everyone)


def test_a_worker_that_cannot_start_stops_the_server_instead_of_restarting_forever(tmp_path):
    def broken():
        (tmp_path / str(os.getpid())).touch()  # which process ran the work
        raise RuntimeError("no catalog")

    started = time.monotonic()
    assert workers_module.Supervisor(lambda seats: broken(), 2).run() == 1
    assert time.monotonic() - started < workers_module.STARTUP_GRACE + 5
    ran_in = {int(p.name) for p in tmp_path.iterdir()}
    assert 1 <= len(ran_in) <= 2  # in the children, at most once per seat: not restarted in a loop
    assert os.getpid() not in ran_in  # the work ran in the children, never here


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_port_in_use_is_refused_without_a_traceback(tmp_path, processes):
    with socket.create_server(("127.0.0.1", 0)) as held:  # bound at once: no window for others
        port = held.getsockname()[1]
        result = tcd_process(tmp_path / "d", "serve", "--port", str(port), "--processes", processes, timeout=60)
    assert result.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_worker_takes_a_connection_only_while_no_other_holds_fewer():
    s = Seats(2)
    s.sit(0)
    s.counts[1] = 0
    assert not s.may_accept(1)  # the other seat holds none
    assert s.may_accept(0)

    s.counts[0], s.counts[1] = 3, 5
    assert s.may_accept(3)      # seat 0 holds the fewest
    s.index = 1                 # the same shared counts seen from seat 1 (sit() would zero them)
    assert not s.may_accept(5)
    assert list(s.counts) == [3, 5]


# -- stopping gracefully: requests in flight finish, new connections are refused --------------------

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
PAYLOAD = "Biên bản họp — không phải video\n".encode() * 4000  # ~150 kB: refused by ingest, kept


def _archive_with_archivist(tmp_path, helpers):
    home = tmp_path / "tcd-data"
    arch = open_archive(home, env={})
    users.add_user(arch, "archivist", "archivist", helpers.PASSWORD)
    arch.catalog.close()
    return home


def _start(home, port: int, *args: str) -> subprocess.Popen:
    server = subprocess.Popen([TCD, "--home", str(home), "serve", "--port", str(port), *args],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(lambda: server.poll() is not None or _answers(port), timeout=30, what="tcd serve to answer")
    assert server.poll() is None, server.stdout.read().decode()
    return server


def _get(port: int, path: str, cookies: SimpleCookie, body: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Cookie": "; ".join(f"{k}={m.value}" for k, m in cookies.items())}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request("GET" if body is None else "POST", path, body=body, headers=headers)
    response = conn.getresponse()
    for header in response.msg.get_all("Set-Cookie") or []:
        cookies.load(header)
    page = response.read().decode()
    conn.close()
    return response.status, page


def _start_upload(port: int, helpers) -> tuple[socket.socket, bytes]:
    """An archivist's upload sent in part over a raw socket: the socket, and the rest to send."""
    cookies = SimpleCookie()
    token = CSRF.search(_get(port, "/login", cookies)[1]).group(1)
    status, _ = _get(port, "/login", cookies, urlencode(
        {"username": "archivist", "password": helpers.PASSWORD, "csrf_token": token}))
    assert status == 302
    token = CSRF.search(_get(port, "/upload", cookies)[1]).group(1)
    boundary = "tcd-drain-boundary"
    fields = {"csrf_token": token, "title": "Phiên tải lên khi máy chủ dừng", "held_on": "2025-04-01"}
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in fields.items())
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="bien-ban.txt"\r\n'
             "Content-Type: text/plain\r\n\r\n").encode() + PAYLOAD + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Cookie: {'; '.join(f'{k}={m.value}' for k, m in cookies.items())}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n")
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    half = len(body) // 2
    sock.sendall(head.encode() + body[:half])
    wait_for(lambda: _all_read(port, sock.getsockname()[1]), timeout=10, what="the server to read the first half")
    return sock, body[half:]


def _all_read(port: int, client_port: int) -> bool:
    """Whether the server has accepted the connection from `client_port` and read all it was sent
    (its receive queue, in /proc/net/tcp, is empty): from then on the request is in flight."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]  # addresses, then tx:rx queues
        if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == client_port:
            return int(queues.split(":")[1], 16) == 0
    return False


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:  # came while the socket was being closed: try again
        return False


@pytest.mark.parametrize("processes", ["2", "1"])
def test_on_sigterm_an_upload_in_flight_finishes_and_new_connections_are_refused(tmp_path, helpers, processes):
    home = _archive_with_archivist(tmp_path, helpers)
    port = free_ports(1)[0]
    server = _start(home, port, "--processes", processes)
    before = {p.pid for p in psutil.Process(server.pid).children()}
    try:
        sock, rest = _start_upload(port, helpers)
        if processes == "2":  # as a service manager does: every process of the group
            os.killpg(server.pid, signal.SIGTERM)
        else:
            os.kill(server.pid, signal.SIGTERM)
        wait_for(lambda: _refused(port), timeout=5, what="new connections to be refused")
        assert server.poll() is None  # still serving the upload
        for at in range(0, len(rest), len(rest) // 3 + 1):  # the rest of the body, slowly
            sock.sendall(rest[at:at + len(rest) // 3 + 1])
            time.sleep(0.3)
        response = http.client.HTTPResponse(sock)
        response.begin()
        location, _ = response.getheader("Location"), response.read()
        assert response.status == 302 and "/jobs?upload=" in location
        sock.close()
        assert server.wait(timeout=10) == 0
    finally:
        os.killpg(server.pid, signal.SIGKILL) if server.poll() is None else None
        output = server.communicate(timeout=10)[0].decode()
    # (the count may include an earlier request of the sign-in that the server was still finishing)
    assert re.search(r"letting \d+ requests? finish", output), output
    assert "cut" not in output and "starting another" not in output, output
    assert not any(psutil.pid_exists(pid) for pid in before)  # the workers ended, reaped
    # the whole body arrived: the upload is in the catalog with its size, its bytes in staging (in
    # the upload's folder, or the ingest job's if the background ingest had begun when the worker ended)
    arch = open_archive(home, env={})
    try:
        upload = next(u for u in arch.catalog.list_uploads(limit=5) if u["id"] == location.rsplit("=", 1)[1])
        assert upload["names"] == ["bien-ban.txt"] and upload["sizes"] == [len(PAYLOAD)]
        assert any(p.is_file() and p.read_bytes() == PAYLOAD for p in arch.settings.staging_dir.rglob("*"))
    finally:
        arch.catalog.close()


def test_a_request_longer_than_the_drain_is_cut_and_the_server_still_exits_0(tmp_path, helpers):
    home = _archive_with_archivist(tmp_path, helpers)
    port = free_ports(1)[0]
    server = _start(home, port, "--processes", "2", "--drain", "1")
    try:
        sock, _ = _start_upload(port, helpers)  # the rest of the body never comes
        signalled = time.monotonic()
        os.killpg(server.pid, signal.SIGTERM)
        assert server.wait(timeout=10) == 0
        took = time.monotonic() - signalled
        try:
            assert sock.recv(100) == b""  # closed without an answer
        except ConnectionResetError:
            pass
        sock.close()
    finally:
        os.killpg(server.pid, signal.SIGKILL) if server.poll() is None else None
        output = server.communicate(timeout=10)[0].decode()
    assert 1.0 <= took < 1.0 + 3, output
    assert "cut 1 request still running after 1." in output, output
    assert "killing" not in output  # the worker ended by itself, before the supervisor's deadline


@pytest.mark.parametrize("processes", ["1", "2"])
@pytest.mark.parametrize("keys", [(signal.SIGINT, signal.SIGINT), (signal.SIGQUIT,)],
                         ids=["ctrl-c-twice", "quit-key"])
def test_a_terminal_stops_at_once(tmp_path, helpers, processes, keys):
    """Ctrl+C twice, or once the quit key (Ctrl+\\), reaching the whole process group."""
    home = _archive_with_archivist(tmp_path, helpers)
    port = free_ports(1)[0]
    server = _start(home, port, "--processes", processes)  # the default drain: 30 s
    try:
        sock, _ = _start_upload(port, helpers)
        signalled = time.monotonic()
        for n, key in enumerate(keys):
            if n:
                time.sleep(0.5)
                assert server.poll() is None  # draining after the first Ctrl+C
            os.killpg(server.pid, key)
        assert server.wait(timeout=10) == 0
        took = time.monotonic() - signalled
        sock.close()
    finally:
        os.killpg(server.pid, signal.SIGKILL) if server.poll() is None else None
        output = server.communicate(timeout=10)[0].decode()
    assert took < 3, output
    assert "cut 1 request still running" in output and "killing" not in output, output


def test_the_supervisor_kills_a_worker_only_after_the_drain_and_replaces_none_while_stopping(tmp_path, monkeypatch):
    """Seat 0 drains for 1 s (longer than the margin alone), seat 1 ignores SIGTERM: the first ends
    by itself, the second is killed at drain + margin, and neither is replaced."""
    monkeypatch.setattr(workers_module, "STOP_MARGIN", 0.5)

    def work(seats):
        told = []
        signal.signal(signal.SIGTERM, signal.SIG_IGN if seats.index == 1 else lambda *_: told.append(1))
        (tmp_path / f"started-{seats.index}-{os.getpid()}").touch()
        while not told:
            time.sleep(0.02)
        time.sleep(1.0)
        (tmp_path / f"drained-{seats.index}").touch()

    def stop_when_started():
        wait_for(lambda: len(list(tmp_path.glob("started-*"))) == 2, timeout=10, what="both workers")
        os.kill(os.getpid(), signal.SIGTERM)  # to the supervisor, which runs in this process

    threading.Thread(target=stop_when_started, daemon=True).start()
    started = time.monotonic()
    assert workers_module.Supervisor(work, 2, drain_seconds=1.5).run() == 0
    took = time.monotonic() - started
    assert (tmp_path / "drained-0").exists() and not (tmp_path / "drained-1").exists()
    assert len(list(tmp_path.glob("started-*"))) == 2  # none replaced
    assert 1.5 + 0.5 <= took < 1.5 + 0.5 + 3


def test_a_supervisor_whose_only_worker_ignores_sigterm_still_stops(tmp_path, monkeypatch):
    """Its wait for a worker to end gives way to the deadline (PEP 475 would resume it forever)."""
    monkeypatch.setattr(workers_module, "STOP_MARGIN", 0.3)
    returned = threading.Event()

    def work(seats):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        (tmp_path / str(os.getpid())).touch()
        while True:
            time.sleep(1)

    def stop_when_started():
        worker = int(wait_for(lambda: next(tmp_path.iterdir(), None), timeout=10, what="the worker").name)
        os.kill(os.getpid(), signal.SIGTERM)
        if not returned.wait(10):  # the supervisor is stuck: free it, so that the test fails, not hangs
            os.kill(worker, signal.SIGKILL)

    threading.Thread(target=stop_when_started, daemon=True).start()
    started = time.monotonic()
    assert workers_module.Supervisor(work, 1, drain_seconds=0.3).run() == 0
    returned.set()
    assert time.monotonic() - started < 0.3 + 0.3 + 2


# -- web.drain on an in-process waitress, with an application slow on purpose ----------------------

def _slow_app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(float(environ["QUERY_STRING"]))  # a page that takes long to render
    body = environ["PATH_INFO"].encode() * 1000
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _drained_server(seconds: float):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    socket_map: dict = {}
    server = waitress.create_server(_slow_app, map=socket_map, sockets=[listener], threads=2)
    return drain.Drain(server, socket_map, seconds), listener.getsockname()[1]


def _serve_while(drainer, client) -> tuple[int, float]:
    """Serve here while `client` runs in a thread (it signals this process); how many requests
    were cut, and how long serving took."""
    thread = threading.Thread(target=client, daemon=True)
    started = time.monotonic()
    thread.start()
    cut = drainer.serve(alone=True)
    took = time.monotonic() - started
    thread.join(5)
    return cut, took


def test_a_page_being_rendered_finishes_while_idle_connections_close():
    drainer, port = _drained_server(10)
    seen = {}

    def client():
        idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        idle.request("GET", "/fast")
        idle.getresponse().read()  # kept alive, idle
        slow = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        slow.request("GET", "/slow?1.5")
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)  # to this process, where serve() runs
        seen["idle closed"] = idle.sock.recv(1) == b"" and time.monotonic()
        seen["refused"] = wait_for(lambda: _refused(port), timeout=2, what="new connections to be refused")
        response = slow.getresponse()
        seen["slow"] = response.status, response.read()
        seen["answered"] = time.monotonic()

    cut, took = _serve_while(drainer, client)
    assert cut == 0
    assert seen["refused"]
    assert seen["idle closed"] and seen["idle closed"] < seen["answered"] - 0.5  # at once, not at the end
    assert seen["slow"] == (200, b"/slow" * 1000)
    assert 1.5 <= took < 3  # it ended once the response was out, long before the deadline


def test_a_page_still_rendering_at_the_deadline_is_cut():
    drainer, port = _drained_server(0.5)
    seen = {}

    def client():
        slow = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        slow.request("GET", "/slow?4")
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            seen["answer"] = slow.getresponse().status
        except (http.client.RemoteDisconnected, ConnectionResetError) as exc:
            seen["answer"] = type(exc)

    cut, took = _serve_while(drainer, client)
    assert cut == 1
    assert seen["answer"] in (http.client.RemoteDisconnected, ConnectionResetError)
    assert 0.8 <= took < 2  # at the deadline, not when the page would have been done


def test_the_drain_time_comes_from_the_settings(tmp_path):
    assert config.load(tmp_path / "a", env={}).drain_seconds == 30  # the default written to tcd.toml
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "tcd.toml").write_text("[server]\ndrain_seconds = 2.5\n")
    assert config.load(tmp_path / "b", env={}).drain_seconds == 2.5
    assert "drain_seconds = 30" in (tmp_path / "a" / "tcd.toml").read_text()

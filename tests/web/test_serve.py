"""`tcd serve`: the real command on waitress, bound to loopback by default, in one or several
worker processes."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time

import psutil
import pytest

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

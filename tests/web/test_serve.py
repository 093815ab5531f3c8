"""`tcd serve`: the real command on waitress, bound to loopback by default, in one or several
worker processes."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from web import workers as workers_module
from web.cli import is_loopback

TCD = str(Path(sys.executable).parent / "tcd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                           ("0.0.0.0", False), ("192.168.1.5", False), ("example", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_tcd_serve_answers_on_loopback(tmp_path):
    home = tmp_path / "tcd-data"
    port = free_port()
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


def _wait(condition, timeout: float = 30) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_workers_share_the_socket_a_dead_one_is_replaced_and_all_stop_together(tmp_path):
    port = free_port()
    env = {**os.environ, "TCD_HOME": str(tmp_path / "tcd-data")}
    server = subprocess.Popen([TCD, "serve", "--port", str(port), "--processes", "2"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    parent = psutil.Process(server.pid)
    try:
        assert _wait(lambda: _answers(port)), "tcd serve did not answer"
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
        assert _wait(lambda: len(parent.children()) == 2 and workers[0].pid not in
                     {c.pid for c in parent.children()})
        assert _answers(port)
        everyone = parent.children()
    finally:
        os.killpg(server.pid, signal.SIGTERM) if server.poll() is None else None
        output = server.communicate(timeout=30)[0].decode()
    assert server.returncode == 0, output
    assert "with 2 processes" in output and "starting another" in output
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in everyone)


def test_a_worker_that_cannot_start_stops_the_server_instead_of_restarting_forever():
    calls = []

    def broken():
        calls.append(1)
        raise RuntimeError("no catalog")

    started = time.monotonic()
    assert workers_module.Supervisor(lambda seats: broken(), 2).run() == 1
    assert time.monotonic() - started < workers_module.STARTUP_GRACE + 5
    assert calls == []  # the work ran in the children, never here


def test_two_servers_cannot_share_a_port(tmp_path):
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        result = subprocess.run([TCD, "--home", str(tmp_path / "d"), "serve", "--port", str(port),
                                 "--processes", "2"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr


def test_one_process_also_refuses_a_port_in_use(tmp_path):
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        result = subprocess.run([TCD, "--home", str(tmp_path / "d"), "serve", "--port", str(port),
                                 "--processes", "1"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Cannot listen" in result.stderr and "Traceback" not in result.stderr

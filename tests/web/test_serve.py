"""`tcd serve`: the real command on waitress, bound to loopback by default."""
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

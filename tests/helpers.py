"""Plain functions the tests of several packages share: running the `tcd` command line, damaging
a stored file as bit rot would, and putting a recording into a catalog. Fixtures stay in
conftest.py; test modules import these with `from ..helpers import ...` (pytest imports the test
tree with --import-mode=importlib, under the package name `tests`)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from archive.catalog import Recording
from archive.cli import main

# The console script installed next to the interpreter running the tests (the project's venv).
TCD = str(Path(sys.executable).parent / "tcd")


def tcd(home: Path, *args: str, **invoke) -> Result:
    """`tcd --home HOME ARGS` run in this process by click's test runner; `invoke` goes to
    `CliRunner.invoke` (env= is laid over the environment for the call, a None value removing a
    variable; catch_exceptions=)."""
    return CliRunner().invoke(main, ["--home", str(home), *args], **invoke)


def tcd_process(home: Path, *args: str, **run) -> subprocess.CompletedProcess:
    """`tcd --home HOME ARGS` as its own process, its output captured as text; `run` goes to
    subprocess.run (cwd=, timeout=)."""
    return subprocess.run([TCD, "--home", str(home), *args], capture_output=True, text=True, **run)


def flip_byte(path: Path, at: int | None = None, mask: int = 0x01) -> None:
    """XOR one byte of a stored (read-only) file with `mask`, in place: the middle byte unless
    `at` names one. The same call again puts the file back as it was."""
    os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= mask
    path.write_bytes(bytes(data))


def add_recording(archive, original: Path, session: str | dict, *, media_type: str = "",
                  content: bytes | None = None, access: Path | None = None, access_mime: str = "",
                  **fields) -> Recording:
    """Store `original` and catalog it as the original of a recording of `session` (an id, or the
    metadata of a new session). `content`, when given, is first written to `original` (a small
    stand-in for real media). `fields` go to `catalog.add_recording` (point, duration, has_video;
    has_audio is True unless given). With `access_mime`, `access` is stored as the recording's
    access copy, or without `access` the original serves as its own (an H.264/AAC MP4 can)."""
    catalog = archive.catalog
    if content is not None:
        original.write_bytes(content)
    stored = archive.store.put_file(original)
    catalog.add_object(stored.sha256, stored.size, "original", media_type)
    if isinstance(session, dict):
        session = catalog.create_session(session).id
    rec = catalog.add_recording(session_id=session, original_sha256=stored.sha256,
                                original_name=original.name, **{"has_audio": True, **fields})
    if access_mime:
        copy = stored
        if access is not None:
            copy = archive.store.put_file(access)
            catalog.add_object(copy.sha256, copy.size, "access", access_mime)
        catalog.set_access_copy(rec.id, copy.sha256, access_mime)
    return rec

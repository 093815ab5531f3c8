"""Settings: read once from `tcd.toml` (and a few environment variables) into a frozen object.

No other module reads configuration on its own; the command line and the web application load
`Settings` once and pass it down.
"""
from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TOML = """\
# TCD Archive settings. Created on first use; edit and restart to change.

[storage]
# "local" keeps objects under objects/ in this folder; "s3://ACCESS@HOST:PORT/BUCKET?secure=false"
# keeps them on an S3 server (the secret comes from TCD_S3_SECRET or secret_file below).
url = "local"
# secret_file = "/etc/tcd/s3-secret"

[transcribe]
# The installed Vosk model to use (see `tcd model list`); empty means the only one installed.
model = ""
# Worker processes for speech recognition; 0 means one per core.
workers = 0

[server]
host = "127.0.0.1"
port = 8000
# Processes answering requests (each uses one core); 0 means one per core.
processes = 0
# On SIGTERM or Ctrl+C, seconds the requests already running have to finish before they are cut.
drain_seconds = 30
"""


@dataclass(frozen=True)
class Settings:
    home: Path
    storage_url: str = "local"
    storage_secret_file: str = ""
    model: str = ""
    workers: int = 0
    host: str = "127.0.0.1"
    port: int = 8000
    processes: int = 0
    drain_seconds: float = 30.0
    env: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def catalog_path(self) -> Path:
        return self.home / "catalog.sqlite"

    @property
    def objects_dir(self) -> Path:
        return self.home / "objects"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def staging_dir(self) -> Path:
        return self.home / "staging"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "staging" / "quarantine"

    @property
    def secret_key_path(self) -> Path:
        return self.home / "secret_key"

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)

    @property
    def server_processes(self) -> int:
        return self.processes if self.processes > 0 else (os.cpu_count() or 1)


def load(home: str | os.PathLike | None = None, env: dict | None = None) -> Settings:
    """Settings for the data folder `home` (else TCD_HOME, else ./tcd-data), creating it."""
    env = dict(os.environ if env is None else env)
    home = Path(home or env.get("TCD_HOME") or "tcd-data").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    toml_path = home / "tcd.toml"
    if not toml_path.exists():
        toml_path.write_text(DEFAULT_TOML, encoding="utf-8")
    data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    storage = data.get("storage", {})
    transcribe = data.get("transcribe", {})
    server = data.get("server", {})
    return Settings(
        home=home,
        storage_url=env.get("TCD_STORAGE") or storage.get("url", "local"),
        storage_secret_file=storage.get("secret_file", ""),
        model=env.get("TCD_MODEL") or transcribe.get("model", ""),
        workers=int(transcribe.get("workers", 0)),
        host=server.get("host", "127.0.0.1"),
        port=int(server.get("port", 8000)),
        processes=int(server.get("processes", 0)),
        drain_seconds=float(server.get("drain_seconds", 30)),
        env=env,
    )


def set_setting(home: Path, section: str, key: str, value: str) -> None:
    """Write `key = "value"` into `[section]` of HOME/tcd.toml, keeping its comments; the new
    file must read back as TOML before it replaces the old one."""
    from .store import write_atomic
    path = Path(home) / "tcd.toml"
    text = with_setting(path.read_text(encoding="utf-8") if path.exists() else "", section, key, value)
    tomllib.loads(text)
    write_atomic(path, text.encode("utf-8"))


def with_setting(text: str, section: str, key: str, value: str) -> str:
    """The text of a tcd.toml with `key = "value"` in `[section]`: its line replaced, or one added
    at the section's end; every other line (and comment) kept as it is."""
    line = f"{key} = {json.dumps(value, ensure_ascii=False)}"
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.strip() == f"[{section}]"), None)
    if start is None:
        return text.rstrip("\n") + f"\n\n[{section}]\n{line}\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    active = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start + 1, end):
        if active.match(lines[i]):
            lines[i] = line
            return "\n".join(lines) + "\n"
    insert_at = end
    while insert_at > start + 1 and not lines[insert_at - 1].strip():
        insert_at -= 1
    lines.insert(insert_at, line)
    return "\n".join(lines) + "\n"

"""The archive core: settings, catalog, object store, fixity, audit log, backup and restore.

`Archive` is the one core object: the command line and the web application open it and pass
it down. This package imports none of the others (ingest, search, web).
"""
from __future__ import annotations

import os
from pathlib import Path

from .catalog import Catalog, Job, Recording, Session, Transcript, User
from .config import Settings, load
from .errors import (ArchiveError, Conflict, IntegrityError, InvalidInput, InvalidMedia, NotFound,
                     PermissionDenied, StorageError, StorageUnavailable)
from .store import Store, open_store

__all__ = ["Archive", "open_archive", "Settings", "Catalog", "Store", "Session", "Recording",
           "Transcript", "Job", "User", "ArchiveError", "Conflict", "IntegrityError",
           "InvalidInput", "InvalidMedia", "NotFound", "PermissionDenied", "StorageError",
           "StorageUnavailable"]


class Archive:
    """One site's archive: its settings, catalog and store."""

    def __init__(self, settings: Settings):
        self.settings = settings
        for folder in (settings.staging_dir, settings.quarantine_dir, settings.models_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(settings.catalog_path)
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        # Opened on first use: a stopped S3 server must not keep `tcd sessions` from working.
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    @property
    def home(self) -> Path:
        return self.settings.home

    def audit(self, actor: str, action: str, session_id: str | None = None, target: str = "",
              **detail) -> dict:
        """Record who did what, chained to the entry before (see archive.audit)."""
        return self.catalog.append_audit(actor, action, session_id, target, detail)

    def secret_key(self) -> bytes:
        """The site's secret (cookie signing), created once with permissions 0600. It is written
        whole under another name and linked into place, so processes starting together (the
        workers of `tcd serve`) all read the one that won, never a half-written one."""
        path = self.settings.secret_key_path
        if not path.exists():
            part = path.with_name(f"{path.name}.{os.getpid()}.part")
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32).hex().encode())
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(part, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
            finally:
                part.unlink()
        os.chmod(path, 0o600)
        return path.read_bytes().strip()


def open_archive(home: str | os.PathLike | None = None, env: dict | None = None) -> Archive:
    return Archive(load(home, env))

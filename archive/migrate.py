"""Moving the object store from one backend to another (local disk <-> S3, or S3 -> S3).

`migrate(archive, "s3://…" | "local")` copies every object the catalog knows (and any other
object the current store holds) to the target, checks each one there, and only when all are
in and checked switches `tcd.toml`'s `[storage] url` over. The source is left as it was, so a
migration can be repeated or abandoned without loss.

It is resumable: each object checked in the target is appended to a ledger
(`migrate/<target id>.done` in the data folder). A second run skips what the ledger lists and
re-hashes objects it finds in the target without a ledger line (an interrupted run may have
left them unchecked) before it trusts them.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .errors import InvalidInput, StorageError
from .config import set_setting
from .store import Store, open_store, write_atomic

SECRET_FILE_NAME = "s3-secret"


@dataclass
class MigrationReport:
    source: str
    target: str
    total: int = 0
    copied: int = 0            # uploaded in this run (and checked)
    already: int = 0           # checked by an earlier, interrupted run (in the ledger)
    rechecked: int = 0         # found in the target, re-hashed and found intact
    bytes_copied: int = 0
    switched: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        done = (f"All {self.total} objects are in {self.target} and checked "
                f"({self.copied} copied, {self.already + self.rechecked} already there)")
        if self.switched:
            return f"{done}; the archive now uses it. The objects in {self.source} were kept."
        return f"{done}; the storage setting was not changed."


def migrate(archive, url: str, actor: str = "system",
            on_object: Callable[[str, int, str], None] | None = None,
            create_bucket: bool = False) -> MigrationReport:
    """Copy every object to the store named by `url`, check each, then switch to it.

    `on_object(sha256, size, what)` is called after each object ("copied", "already",
    "rechecked"); it may raise (KeyboardInterrupt) to stop: the next run resumes."""
    source, target = archive.store, open_store(archive.settings, url)
    if source.describe() == target.describe():
        raise InvalidInput(f"The archive already keeps its objects in {target.describe()}.")
    if create_bucket and hasattr(target, "create_bucket"):
        target.create_bucket()
    source.check()
    target.check()
    report = MigrationReport(source.describe(), target.describe())
    ledger = Ledger(archive.settings.home / "migrate", target.describe())
    done = ledger.read()
    catalog = archive.catalog
    handled: set[str] = set()
    # Objects ingested while the copy runs are caught by the next pass; stop when one adds none.
    while True:
        known = {o["sha256"]: o["size"] for o in catalog.list_objects()}
        missing = [sha for sha in known if sha not in handled and not source.exists(sha)]
        if missing:
            raise StorageError(f"{len(missing)} objects of the catalog are missing from {source.describe()} "
                               f"(first {missing[0][:12]}…); run `tcd verify` and restore them before "
                               "migrating.")
        todo = [sha for sha in known if sha not in handled]
        todo += [sha for sha in source.keys() if sha not in known and sha not in handled]
        if not todo:
            break
        for sha in todo:
            what, size = _copy_one(source, target, sha, sha in done)
            setattr(report, what, getattr(report, what) + 1)
            if what == "copied":
                report.bytes_copied += size
            if what != "already":
                ledger.add(sha)
            handled.add(sha)
            if on_object:
                on_object(sha, size, what)
    report.total = len(handled)
    switch_storage(archive.settings, url)
    report.switched = True
    if archive.settings.env.get("TCD_STORAGE"):
        report.notes.append("TCD_STORAGE is set in the environment and still overrides tcd.toml; "
                            "change or unset it.")
    ledger.remove()
    archive.audit(actor, "storage.migrate", None, target.describe(), source=source.describe(),
                  objects=report.total, copied=report.copied, bytes=report.bytes_copied)
    return report


def _copy_one(source: Store, target: Store, sha256: str, in_ledger: bool) -> tuple[str, int]:
    """Make sure one object is in the target and checked; say how, and its size."""
    if target.exists(sha256):
        if in_ledger:
            return "already", target.size(sha256)
        if target.rehash(sha256) == sha256:
            return "rechecked", target.size(sha256)
        target.delete(sha256)  # a damaged copy: replace it
    with source.materialize(sha256) as path:
        # put_file re-reads what it wrote (local) or what the server holds (S3) before returning.
        stored = target.put_file(path, sha256)
    return "copied", stored.size


class Ledger:
    """The objects one migration target has received and checked, one SHA-256 per line."""

    def __init__(self, folder: Path, target: str):
        self.path = folder / f"{hashlib.sha256(target.encode()).hexdigest()[:16]}.done"

    def read(self) -> set[str]:
        if not self.path.exists():
            return set()
        lines = self.path.read_text(encoding="ascii", errors="replace").splitlines()
        return {line for line in lines if re.fullmatch(r"[0-9a-f]{64}", line)}

    def add(self, sha256: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="ascii") as f:
            f.write(sha256 + "\n")
            f.flush()
            os.fsync(f.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


# -- the settings file ----------------------------------------------------------------------------

def switch_storage(settings, url: str) -> None:
    """Point `[storage] url` of tcd.toml at `url`, keeping the file's comments.

    A secret given inside an s3:// url is not written into tcd.toml: it goes to a file of its
    own (mode 0600) that `secret_file` names."""
    if url.startswith("s3://"):
        from .s3store import parse_url
        parts = parse_url(url)
        if parts["secret"]:
            secret_file = settings.home / SECRET_FILE_NAME
            write_atomic(secret_file, (parts["secret"] + "\n").encode("utf-8"), mode=0o600)
            # first: a crash between the two settings leaves the old url, which still works
            set_setting(settings.home, "storage", "secret_file", str(secret_file))
            url = strip_secret(url)
    set_setting(settings.home, "storage", "url", url)


def strip_secret(url: str) -> str:
    """The url without the `:SECRET` after the access key."""
    return re.sub(r"^(s3://[^:@/]*):[^@]*@", r"\1@", url)




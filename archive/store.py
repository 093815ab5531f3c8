"""The object store: content-addressed, immutable bytes.

Every object lives under the key `sha256/<first two hex>/<full hex>`. Writes are streamed (memory
does not grow with the file), atomic (a temporary file, fsync, rename) and checked: the bytes are
hashed again after they are written, so a stored object is known good or not stored at all.

`Store` is the one interface the rest of the program uses; `LocalStore` keeps objects in a
folder, `archive.s3store.S3Store` on an S3 server. `open_store(settings)` picks one.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Protocol

from .errors import IntegrityError, NotFound, StorageError

CHUNK = 1024 * 1024
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

Progress = Callable[[int], None]  # called with the number of bytes just processed


@dataclass(frozen=True)
class StoredObject:
    sha256: str
    size: int


def object_key(sha256: str) -> str:
    """The store key of an object; refuses anything that is not a SHA-256 hex digest."""
    if not SHA256_RE.match(sha256 or ""):
        raise NotFound(f"'{sha256}' is not an object id (a SHA-256 in lowercase hex).")
    return f"sha256/{sha256[:2]}/{sha256}"


def hash_stream(stream: BinaryIO, progress: Progress | None = None) -> tuple[str, int]:
    """SHA-256 and size of everything left in `stream`, read in chunks."""
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if progress:
            progress(len(chunk))
    return digest.hexdigest(), size


def hash_file(path: Path, progress: Progress | None = None) -> tuple[str, int]:
    with open(path, "rb") as f:
        return hash_stream(f, progress)


def copy_hashing(src: BinaryIO, dst: BinaryIO, progress: Progress | None = None) -> tuple[str, int]:
    """Copy `src` to `dst` in chunks, hashing as it goes; fsyncs `dst`."""
    digest, size = hashlib.sha256(), 0
    while chunk := src.read(CHUNK):
        dst.write(chunk)
        digest.update(chunk)
        size += len(chunk)
        if progress:
            progress(len(chunk))
    dst.flush()
    os.fsync(dst.fileno())
    return digest.hexdigest(), size


def disk_error(exc: OSError, where: str) -> StorageError:
    """A StorageError whose sentence says what to do about a failed write."""
    if exc.errno == errno.ENOSPC:
        return StorageError(f"The disk holding {where} is full; free some space and run the command again.")
    return StorageError(f"Could not write to {where} ({exc.strerror or exc}); check the disk and run the command again.")


class Store(Protocol):
    """What every backend offers. Objects are never changed in place."""

    def put_file(self, path: Path, sha256: str | None = None,
                 progress: Progress | None = None) -> StoredObject: ...
    def exists(self, sha256: str) -> bool: ...
    def size(self, sha256: str) -> int: ...
    def open(self, sha256: str) -> BinaryIO: ...
    def read_range(self, sha256: str, start: int, length: int) -> Iterator[bytes]: ...
    def rehash(self, sha256: str, progress: Progress | None = None) -> str: ...
    def materialize(self, sha256: str) -> contextlib.AbstractContextManager[Path]: ...
    def delete(self, sha256: str) -> None: ...
    def keys(self) -> Iterator[str]: ...
    def check(self) -> None: ...
    def describe(self) -> str: ...


class LocalStore:
    """Objects as files under one folder; temporary files live beside them, so rename is atomic."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.tmp = self.root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / object_key(sha256)

    def describe(self) -> str:
        return f"local:{self.root}"

    def put_file(self, path: Path, sha256: str | None = None,
                 progress: Progress | None = None) -> StoredObject:
        if sha256 and self.exists(sha256):
            return StoredObject(sha256, self.size(sha256))
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix="put-")
        tmp = Path(tmp_name)
        try:
            with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
                digest, size = copy_hashing(src, dst, progress)
            if sha256 and digest != sha256:
                raise IntegrityError(f"{path} changed while it was being stored "
                                     f"(expected {sha256[:12]}…, read {digest[:12]}…); ingest it again.")
            written, _ = hash_file(tmp)
            if written != digest:
                raise IntegrityError(f"The copy of {path.name} in the store reads back differently; "
                                     "check the disk and ingest it again.")
            final = self.path(digest)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
            fsync_dir(final.parent)
            return StoredObject(digest, size)
        except OSError as exc:
            raise disk_error(exc, "the object store") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"Object {sha256[:12]}… is missing from the store.") from None

    def open(self, sha256: str) -> BinaryIO:
        try:
            return open(self.path(sha256), "rb")
        except FileNotFoundError:
            raise NotFound(f"Object {sha256[:12]}… is missing from the store.") from None

    def read_range(self, sha256: str, start: int, length: int) -> Iterator[bytes]:
        with self.open(sha256) as f:
            f.seek(start)
            while length > 0:
                chunk = f.read(min(CHUNK, length))
                if not chunk:
                    break
                length -= len(chunk)
                yield chunk

    def rehash(self, sha256: str, progress: Progress | None = None) -> str:
        with self.open(sha256) as f:
            return hash_stream(f, progress)[0]

    @contextlib.contextmanager
    def materialize(self, sha256: str) -> Iterator[Path]:
        path = self.path(sha256)
        if not path.is_file():
            raise NotFound(f"Object {sha256[:12]}… is missing from the store.")
        yield path

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        base = self.root / "sha256"
        if base.is_dir():
            for sub in sorted(base.iterdir()):
                for f in sorted(sub.iterdir()):
                    if SHA256_RE.match(f.name):
                        yield f.name

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"The object store {self.root} is not writable.")


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` all at once: a temporary file beside it, fsynced, renamed, and
    the rename made durable; a crash leaves the old file or the new one, never half of one.
    `mode` is the new file's (0o600 for secrets: it is never readable by others, not even briefly)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def open_store(settings, url: str | None = None) -> Store:
    """The store that `url` (by default `settings.storage_url`) names: `local`, the data
    folder's objects/, or `s3://…`."""
    url = url or settings.storage_url or "local"
    if url == "local":
        return LocalStore(settings.objects_dir)
    if url.startswith("s3://"):
        from .s3store import S3Store  # imported here: the minio SDK is only needed for S3
        return S3Store.from_url(url, settings)
    raise StorageError(f"Unknown storage '{url}'; use 'local' or 's3://ACCESS@HOST:PORT/BUCKET'.")


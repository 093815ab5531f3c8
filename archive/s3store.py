"""The S3 backend of the object store: the same content-addressed objects on any S3 server.

It speaks the plain S3 API through the `minio` SDK, so MinIO, SeaweedFS, Ceph RGW or AWS all
serve. Objects keep the local store's keys (`sha256/<two hex>/<hex>`) and carry their SHA-256 as
metadata (`x-amz-meta-sha256`). Uploads are streamed in parts of a fixed size (memory holds a few
parts, never the file) and checked after they complete: size, the metadata, and the SHA-256 of
the bytes read back from the server. Reads stream; a range read asks the server for that range
only, so seeking in a long recording never downloads the whole object.

Errors are translated at this edge: a server that cannot be reached (refused, reset, timed out,
answering 5xx) raises `StorageUnavailable`, which the ingest runner waits out; a wrong key, a
wrong secret or a missing bucket raises `StorageError` with one sentence saying what to fix.
The secret is never part of a message, a log line or `describe()`.

Object lock (legal hold, retention) is offered where the bucket has it enabled; see
`archive.holds` for how the archive uses it.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.client
import io
import logging
import os
import re
import stat
import tempfile
import urllib.parse
from pathlib import Path
from typing import BinaryIO, Iterator

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import GOVERNANCE
from minio.helpers import check_bucket_name
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.retention import Retention

from .errors import IntegrityError, NotFound, StorageError, StorageUnavailable
from .store import CHUNK, SHA256_RE, Progress, StoredObject, disk_error, hash_file, object_key

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB           # the S3 minimum for every part but the last
DEFAULT_PART_SIZE = 16 * MiB
PARALLEL_UPLOADS = 3              # parts in flight at once (memory: about this many + 1 parts)
META_SHA256 = "sha256"            # sent as x-amz-meta-sha256
SECRET_ENV = "TCD_S3_SECRET"

# Codes an S3 server uses when it is overloaded or failing, not when the request is wrong.
TRANSIENT_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout",
                   "RequestTimeTooSkewed", "OperationAborted"}
MISSING_CODES = {"NoSuchKey", "NoSuchVersion", "NoSuchObject"}
NO_LOCK_CODES = {"ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"}


class _QuietRetries(logging.Filter):
    """urllib3 logs each quick retry as a warning with its internals; the store's own errors say
    what happened in one sentence, so those lines would only repeat it as noise on stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Retrying (")


logging.getLogger("urllib3.connectionpool").addFilter(_QuietRetries())


class _LocalReadError(Exception):
    """A failed read of the local file being uploaded (kept apart from network errors)."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class _CountingReader:
    """The file the SDK uploads, counted and reported as the SDK reads it. (Not hashed: the
    object is read back and hashed after the upload, which also covers the bytes sent.)"""

    def __init__(self, f: BinaryIO, progress: Progress | None):
        self.f, self.progress = f, progress
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.f.read(n)
        except OSError as exc:
            raise _LocalReadError(exc) from exc
        self.size += len(data)
        if self.progress and data:
            self.progress(len(data))
        return data


class _ObjectReader(io.RawIOBase):
    """A seekable, streaming view of one object: a GET from the current position, reopened
    with a range after a seek; never more than the HTTP client's buffer in memory."""

    def __init__(self, store: "S3Store", sha256: str, size: int):
        super().__init__()
        self.store, self.sha256, self.length = store, sha256, size
        self.pos = 0
        self.response = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.length}[whence]
        target = base + offset
        if target < 0:
            raise ValueError("negative seek position")
        if target != self.pos:
            self._drop()
            self.pos = target
        return self.pos

    def readinto(self, buffer) -> int:
        if self.pos >= self.length:
            return 0
        with self.store._translate(self.sha256):
            if self.response is None:
                self.response = self.store._client.get_object(
                    self.store.bucket, object_key(self.sha256), offset=self.pos)
            n = self.response.readinto(buffer)
        if n == 0:
            raise StorageUnavailable(f"The S3 server {self.store.endpoint} ended the transfer of object "
                                     f"{self.sha256[:12]}… early; try again.")
        self.pos += n
        return n

    def close(self) -> None:
        self._drop()
        super().close()

    def _drop(self) -> None:
        if self.response is not None:
            self.response.close()
            self.response.release_conn()
            self.response = None


class S3Store:
    """Objects in one bucket of an S3 server. Implements `archive.store.Store`."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *,
                 secure: bool = False, region: str | None = None,
                 part_size: int = DEFAULT_PART_SIZE, tmp_dir: Path | None = None,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0,
                 http_client: urllib3.PoolManager | None = None):
        try:
            check_bucket_name(bucket, strict=True)
        except ValueError:
            raise StorageError(f"'{bucket}' is not an S3 bucket name (3 to 63 lowercase letters, digits, "
                               "dots or hyphens); correct the storage url.") from None
        if part_size < MIN_PART_SIZE:
            raise StorageError(f"The S3 part size must be at least {MIN_PART_SIZE // MiB} MiB.")
        self.endpoint, self.access_key, self.bucket, self.secure = endpoint, access_key, bucket, secure
        self.part_size = part_size
        self.tmp_dir = Path(tmp_dir) if tmp_dir else None
        # Few, quick retries: the ingest runner waits out a longer outage with its own backoff.
        http = http_client or urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            maxsize=PARALLEL_UPLOADS + 2,
            cert_reqs="CERT_REQUIRED", ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]))
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                             region=region, http_client=http)
        self._versioned: bool | None = None

    def __repr__(self) -> str:
        return f"S3Store({self.describe()!r})"

    @classmethod
    def from_url(cls, url: str, settings) -> "S3Store":
        """The store named by `s3://ACCESS[:SECRET]@HOST:PORT/BUCKET?secure=false`.

        Without a secret in the url it comes from TCD_S3_SECRET (in `settings.env`), else from
        the file `settings.storage_secret_file` (which only its owner may read)."""
        location = parse_url(url)
        secret = location.pop("secret") or secret_from_settings(settings, location["access_key"])
        return cls(secret_key=secret, tmp_dir=Path(settings.staging_dir) / "s3-tmp", **location)

    def describe(self) -> str:
        return (f"s3://{urllib.parse.quote(self.access_key, safe='')}@{self.endpoint}/{self.bucket}"
                + ("" if self.secure else "?secure=false"))

    # -- errors ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _translate(self, sha256: str | None = None, doing: str = "") -> Iterator[None]:
        """Turn SDK and HTTP errors into the archive's errors, each one sentence."""
        try:
            yield
        except S3Error as exc:
            raise self._s3_error(exc, sha256, doing) from exc
        except ServerError as exc:
            raise StorageUnavailable(f"The S3 server {self.endpoint} answered with an error "
                                     f"(HTTP {exc.status_code}); it will be tried again.") from exc
        except InvalidResponseError as exc:
            raise StorageUnavailable(f"The S3 server {self.endpoint} gave an answer that is not S3; "
                                     "check that the storage url names an S3 port.") from exc
        except MinioException as exc:
            raise StorageError(f"The S3 request to {self.endpoint} failed ({type(exc).__name__}).") from exc
        except urllib3.exceptions.HTTPError as exc:
            if isinstance(getattr(exc, "reason", None), urllib3.exceptions.ResponseError):
                # retries used up on 5xx answers: the server is up, but failing
                status = re.search(r"\b(5\d\d)\b", str(exc.reason))
                raise StorageUnavailable(
                    f"The S3 server {self.endpoint} answered with errors"
                    f"{f' (HTTP {status.group(1)})' if status else ''} to every try; it is up but "
                    "not able to serve now, and will be tried again.") from exc
            raise StorageUnavailable(f"The S3 server {self.endpoint} cannot be reached "
                                     f"({_reason(exc)}); start it or check the network.") from exc
        except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
            raise StorageUnavailable(f"The connection to the S3 server {self.endpoint} broke "
                                     f"({type(exc).__name__}); it will be tried again.") from exc

    def _s3_error(self, exc: S3Error, sha256: str | None, doing: str) -> Exception:
        code, server = exc.code or "", self.endpoint
        if code in MISSING_CODES and sha256:
            return NotFound(f"Object {sha256[:12]}… is missing from the store.")
        if code == "NoSuchBucket":
            return StorageError(f"The bucket '{self.bucket}' does not exist on the S3 server {server}; "
                                "create it or correct the storage url.")
        if code == "InvalidAccessKeyId":
            return StorageError(f"The S3 server {server} does not know the access key "
                                f"'{self.access_key}'; correct the storage url.")
        if code == "SignatureDoesNotMatch":
            return StorageError(f"The S3 server {server} refused the secret of access key "
                                f"'{self.access_key}'; correct {SECRET_ENV}, the secret file or the url.")
        if code == "AccessDenied" and doing == "delete" and sha256:
            return StorageError(f"The S3 server refused to delete object {sha256[:12]}…: it is under "
                                "legal hold or retention (or the key may not delete); release it first.")
        if code == "AccessDenied":
            return StorageError(f"The S3 server {server} denied access key '{self.access_key}' this "
                                f"request on bucket '{self.bucket}'; give it read, write and list rights.")
        status = getattr(exc.response, "status", 0) or 0
        if code in TRANSIENT_CODES or status >= 500:
            return StorageUnavailable(f"The S3 server {server} is not able to serve now ({code}); "
                                      "it will be tried again.")
        return StorageError(f"The S3 server {server} refused the request ({code}: {exc.message}).")

    # -- the Store protocol ---------------------------------------------------------------------

    def put_file(self, path: Path, sha256: str | None = None,
                 progress: Progress | None = None) -> StoredObject:
        """Upload `path` under its SHA-256 (computed first when not given), then check the
        object on the server: its size, its metadata and the SHA-256 of its bytes read back."""
        path = Path(path)
        try:
            size = path.stat().st_size
            if sha256 is None:
                # The key is the content's hash, so it must be known before the upload starts.
                sha256, _ = hash_file(path)
        except OSError as exc:
            raise disk_error(exc, str(path)) from exc
        key = object_key(sha256)
        if self._intact(sha256, size):
            return StoredObject(sha256, size)
        try:
            with open(path, "rb") as f, self._translate(sha256):
                reader = _CountingReader(f, progress)
                self._client.put_object(self.bucket, key, reader, size, part_size=self.part_size,
                                        num_parallel_uploads=PARALLEL_UPLOADS,
                                        metadata={META_SHA256: sha256})
        except _LocalReadError as exc:
            raise StorageError(f"Could not read {path} ({exc.error.strerror or exc.error}); "
                               "check the disk and run the command again.") from exc
        except OSError as exc:
            if exc.errno is None:  # the SDK's own check: the file ended before `size` bytes
                raise IntegrityError(f"{path} became shorter while it was being stored; "
                                     "ingest it again.") from exc
            raise disk_error(exc, str(path)) from exc
        self._verify_upload(path, sha256, size)
        return StoredObject(sha256, size)

    def exists(self, sha256: str) -> bool:
        try:
            self._stat(sha256)
            return True
        except NotFound:
            return False

    def size(self, sha256: str) -> int:
        return self._stat(sha256).size

    def open(self, sha256: str) -> BinaryIO:
        return io.BufferedReader(_ObjectReader(self, sha256, self.size(sha256)), CHUNK)

    def read_range(self, sha256: str, start: int, length: int) -> Iterator[bytes]:
        if length <= 0:
            return
        key = object_key(sha256)
        with self._translate(sha256):
            try:
                response = self._client.get_object(self.bucket, key, offset=start, length=length)
            except S3Error as exc:
                if exc.code == "InvalidRange":  # past the end: nothing, as a file would give
                    return
                raise
            try:
                yield from response.stream(CHUNK)
            finally:
                response.close()
                response.release_conn()

    def rehash(self, sha256: str, progress: Progress | None = None) -> str:
        digest = hashlib.sha256()
        for chunk in self._stream(sha256):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
        return digest.hexdigest()

    @contextlib.contextmanager
    def materialize(self, sha256: str) -> Iterator[Path]:
        """A temporary local copy (checked against its hash) for tools that need a file."""
        self.size(sha256)  # NotFound before a temporary file is made
        if self.tmp_dir:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix=f"{sha256[:16]}-")
        path = Path(name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for chunk in self._stream(sha256):
                    digest.update(chunk)
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise disk_error(exc, f"the temporary folder {path.parent}") from exc
            if digest.hexdigest() != sha256:
                raise IntegrityError(f"Object {sha256[:12]}… on the S3 server does not match its hash; "
                                     "run `tcd verify` and restore it from a backup.")
            yield path
        finally:
            path.unlink(missing_ok=True)

    def delete(self, sha256: str) -> None:
        """Remove the object (every version of it, where the bucket keeps versions)."""
        key = object_key(sha256)
        with self._translate(sha256, "delete"):
            if not self._is_versioned():
                self._client.remove_object(self.bucket, key)
                return
            for version in self._client.list_objects(self.bucket, prefix=key, include_version=True):
                if version.object_name == key:
                    self._client.remove_object(self.bucket, key, version_id=version.version_id)

    def keys(self) -> Iterator[str]:
        with self._translate():
            for obj in self._client.list_objects(self.bucket, prefix="sha256/", recursive=True):
                name = obj.object_name.rsplit("/", 1)[-1]
                if SHA256_RE.match(name) and obj.object_name == object_key(name):
                    yield name

    def check(self) -> None:
        with self._translate():
            found = self._client.bucket_exists(self.bucket)
        if not found:
            raise StorageError(f"The bucket '{self.bucket}' does not exist on the S3 server "
                               f"{self.endpoint}; create it or correct the storage url.")

    def create_bucket(self, object_lock: bool = True) -> None:
        """Make the bucket if it is missing, with object lock where the server offers it."""
        with self._translate():
            if self._client.bucket_exists(self.bucket):
                return
            try:
                self._client.make_bucket(self.bucket, object_lock=object_lock)
            except S3Error as exc:
                if not object_lock or exc.code in ("AccessDenied", "BucketAlreadyExists"):
                    raise
                self._client.make_bucket(self.bucket)  # a server without object lock

    # -- object lock (see archive.holds) --------------------------------------------------------

    def object_lock(self) -> tuple[bool, str]:
        """Whether this bucket enforces object lock, and if not, why not."""
        try:
            with self._translate():
                self._client.get_object_lock_config(self.bucket)
            return True, ""
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, S3Error) and cause.code in NO_LOCK_CODES:
                return False, f"the bucket '{self.bucket}' was created without object lock"
            if isinstance(cause, S3Error) and cause.code not in ("NoSuchBucket", "InvalidAccessKeyId",
                                                                 "SignatureDoesNotMatch"):
                return False, f"the S3 server {self.endpoint} does not support object lock ({cause.code})"
            raise

    def legal_hold(self, sha256: str) -> bool:
        with self._translate(sha256):
            return bool(self._client.is_object_legal_hold_enabled(self.bucket, object_key(sha256)))

    def set_legal_hold(self, sha256: str, on: bool) -> None:
        with self._translate(sha256):
            if on:
                self._client.enable_object_legal_hold(self.bucket, object_key(sha256))
            else:
                self._client.disable_object_legal_hold(self.bucket, object_key(sha256))

    def retention(self, sha256: str) -> dt.datetime | None:
        try:
            with self._translate(sha256):
                config = self._client.get_object_retention(self.bucket, object_key(sha256))
        except StorageError as exc:
            if isinstance(exc.__cause__, S3Error) and exc.__cause__.code in NO_LOCK_CODES:
                return None
            raise
        return config.retain_until_date if config else None

    def set_retention(self, sha256: str, until: dt.datetime) -> bool:
        """Keep the object undeletable (GOVERNANCE mode) until `until`; a retention already
        reaching further is left as it is. Returns whether it changed anything."""
        current = self.retention(sha256)
        if current and current >= until:
            return False
        with self._translate(sha256):
            self._client.set_object_retention(self.bucket, object_key(sha256), Retention(GOVERNANCE, until))
        return True

    # -- internals ------------------------------------------------------------------------------

    def _stat(self, sha256: str):
        with self._translate(sha256):
            return self._client.stat_object(self.bucket, object_key(sha256))

    def _intact(self, sha256: str, size: int) -> bool:
        """An object under this key with the right size and hash metadata was stored and checked."""
        try:
            found = self._stat(sha256)
        except NotFound:
            return False
        return found.size == size and (found.metadata or {}).get(f"x-amz-meta-{META_SHA256}") == sha256

    def _verify_upload(self, path: Path, sha256: str, size: int) -> None:
        found = self._stat(sha256)
        stored_hash = (found.metadata or {}).get(f"x-amz-meta-{META_SHA256}")
        problem = ""
        if found.size != size:
            problem = f"has {found.size} bytes instead of {size}"
        elif stored_hash != sha256:
            problem = "lost its SHA-256 metadata"
        elif self.rehash(sha256) != sha256:
            problem = (f"reads back with a SHA-256 other than {sha256[:12]}… (or the file changed "
                       "while it was being stored)")
        if problem:
            self._discard(sha256)
            raise IntegrityError(f"The copy of {path.name} on the S3 server {problem}; "
                                 "it was removed, run the command again.")

    def _discard(self, sha256: str) -> None:
        """Remove a bad upload; if that fails too, the next put replaces it."""
        with contextlib.suppress(StorageError):
            self.delete(sha256)

    def _stream(self, sha256: str) -> Iterator[bytes]:
        with self._translate(sha256):
            response = self._client.get_object(self.bucket, object_key(sha256))
            try:
                yield from response.stream(CHUNK)
            finally:
                response.close()
                response.release_conn()

    def _is_versioned(self) -> bool:
        if self._versioned is None:
            status = self._client.get_bucket_versioning(self.bucket).status
            self._versioned = status in ("Enabled", "Suspended")
        return self._versioned


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    """A short reason for a network failure, without urls or stack details."""
    inner = getattr(exc, "reason", None) or exc
    text = str(inner)
    for known in ("Connection refused", "timed out", "Connection reset", "Name or service not known",
                  "No route to host", "Remote end closed connection", "Connection aborted"):
        if known.lower() in text.lower():
            return known.lower()
    return type(inner).__name__


# -- the storage url -------------------------------------------------------------------------

URL_FORM = "s3://ACCESS[:SECRET]@HOST:PORT/BUCKET?secure=false"
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def parse_url(url: str) -> dict:
    """The parts of an S3 storage url as S3Store arguments (plus `secret`, maybe None).
    Messages never repeat the url: it may hold the secret."""
    def bad(what: str) -> StorageError:
        return StorageError(f"The storage url must look like {URL_FORM}: {what}.")

    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "s3":
        raise bad("it must start with s3://")
    if not parts.username:
        raise bad("the access key is missing")
    if not parts.hostname:
        raise bad("the host is missing")
    try:
        port = parts.port
    except ValueError:
        raise bad("the port is not a number") from None
    bucket = parts.path.strip("/")
    if not bucket or "/" in bucket:
        raise bad("give exactly one bucket after the host")
    options = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    unknown = set(options) - {"secure", "region", "part_mb"}
    if unknown:
        raise bad(f"unknown option {', '.join(sorted(unknown))} (known: secure, region, part_mb)")
    secure = True
    if "secure" in options:
        value = options["secure"][-1].lower()
        if value not in TRUE | FALSE:
            raise bad("secure must be true or false")
        secure = value in TRUE
    part_size = DEFAULT_PART_SIZE
    if "part_mb" in options:
        try:
            part_size = int(options["part_mb"][-1]) * MiB
        except ValueError:
            raise bad("part_mb must be a whole number of MiB") from None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return {"endpoint": f"{host}:{port}" if port else host,
            "access_key": urllib.parse.unquote(parts.username),
            "secret": urllib.parse.unquote(parts.password) if parts.password else None,
            "bucket": bucket, "secure": secure, "region": options.get("region", [None])[-1],
            "part_size": part_size}


def secret_from_settings(settings, access_key: str) -> str:
    """The secret from TCD_S3_SECRET, else from the secret file (refused if others may read it)."""
    secret = (settings.env or {}).get(SECRET_ENV, "")
    if secret:
        return secret
    if settings.storage_secret_file:
        return read_secret_file(Path(settings.home) / Path(settings.storage_secret_file).expanduser())
    raise StorageError(f"No secret for the S3 access key '{access_key}': set {SECRET_ENV}, or "
                       "secret_file in the [storage] section of tcd.toml.")


def read_secret_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StorageError(f"The S3 secret file {path} may be read by other users "
                               f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}` and try again.")
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StorageError(f"Could not read the S3 secret file {path} ({exc.strerror or exc}).") from None
    if not secret:
        raise StorageError(f"The S3 secret file {path} is empty.")
    return secret

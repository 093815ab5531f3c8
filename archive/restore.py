"""Reading backups back: checking them (`verify_backup`) and restoring from them (`restore`).

A source is a disk bag (`archive.backup`) or a disc set (`archive.disc`): a folder of ISO images,
read with pycdlib without mounting, or the folders of mounted discs. Both give the same things:
the session documents, each session's history, and the bytes of each file by its payload path
(the parts of a split file joined, each part checked).

`restore` rebuilds an empty archive (catalog rows for sessions, recordings, objects, transcript
versions and the history; objects into the store, each checked against its SHA-256) or repairs
an existing one: objects that are missing from the store, or that the last `tcd verify` found
damaged and still are, are put back; everything else is left alone, so restoring twice changes
nothing. A file the source cannot give (a missing or damaged disc, a damaged file) is named and
everything else is restored. The search index is not touched: it follows the catalog's session
revisions by itself.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import bagit
import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from .backup import MARKER, read_manifest, read_marker
from .disc import DISC_NOTE, SET_FORMAT, SET_MANIFEST
from .errors import ArchiveError, IntegrityError, InvalidInput, NotFound, StorageError
from .seals import restore_from_backup as restore_seals_and_notes
from .store import CHUNK, copy_hashing, hash_stream

Progress = Callable[[int], None]


class Unavailable(ArchiveError):
    """A file the backup cannot give: its disc is missing or damaged, or it is not there."""


# -- sources ------------------------------------------------------------------------------------

class BagSource:
    kind = "disk bag"

    def __init__(self, root: Path):
        self.root = root
        self.marker = read_marker(root)
        self.problems: list[str] = []
        self.manifest = read_manifest(root / "manifest-sha256.txt")

    @property
    def complete(self) -> bool:
        return bool(self.marker and self.marker.get("complete"))

    def documents(self) -> list[dict]:
        docs = []
        for path in sorted((self.root / "data").glob("*/session.json")):
            try:
                docs.append(json.loads(self.read(str(path.relative_to(self.root)))))
            except (Unavailable, ValueError) as exc:
                self.problems.append(f"{exc}: the session in it cannot be restored from this bag")
        return docs

    def read(self, path: str) -> bytes:
        """A small file, checked against the bag's manifest."""
        with self.open(path) as f:
            body = f.read()
        expected = self.manifest.get(path)
        if expected and hashlib.sha256(body).hexdigest() != expected:
            raise Unavailable(f"{path}: differs from its SHA-256 in the bag's manifest")
        return body

    def open(self, path: str) -> BinaryIO:
        try:
            return open(self.root / path, "rb")
        except FileNotFoundError:
            raise Unavailable(f"{path}: missing from the bag") from None

    def local_path(self, path: str) -> Path | None:
        return self.root / path

    def where(self, path: str) -> str:
        return path

    def close(self) -> None:
        pass


class _IsoDisc:
    def __init__(self, path: Path):
        self.path = path
        self.iso = pycdlib.PyCdlib()
        self.iso.open(str(path))

    def read_small(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def open(self, name: str) -> BinaryIO:
        try:
            return self.iso.open_file_from_iso(udf_path="/" + name)
        except PyCdlibException as exc:
            raise Unavailable(f"{name}: cannot be read from {self.path.name} ({exc})") from None

    def close(self) -> None:
        self.iso.close()


class _MountedDisc:
    def __init__(self, path: Path):
        self.path = path

    def read_small(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def open(self, name: str) -> BinaryIO:
        try:
            return open(self.path / name, "rb")
        except OSError as exc:
            raise Unavailable(f"{name}: cannot be read from {self.path} ({exc.strerror})") from None

    def close(self) -> None:
        pass


class DiscSetSource:
    """The discs of one set found in a folder: ISO images and/or mounted discs."""
    kind = "disc set"

    def __init__(self, root: Path):
        self.root = root
        self.discs: dict[int, _IsoDisc | _MountedDisc] = {}
        self.broken: list[str] = []      # images that do not open
        manifests: dict[str, dict] = {}
        found: list[tuple[dict, object]] = []
        candidates = [root] if (root / SET_MANIFEST).is_file() else sorted(root.iterdir())
        for path in candidates:
            disc = None
            try:
                if path.is_file() and path.suffix.lower() == ".iso":
                    disc = _IsoDisc(path)
                elif path.is_dir() and (path / SET_MANIFEST).is_file():
                    disc = _MountedDisc(path)
                else:
                    continue
                manifest = json.loads(disc.read_small(SET_MANIFEST))
                note = json.loads(disc.read_small(DISC_NOTE))
            except (PyCdlibException, OSError, ValueError, Unavailable) as exc:
                self.broken.append(f"{path.name} ({exc})")
                if disc:
                    disc.close()
                continue
            manifests[manifest["set_id"]] = manifest
            found.append((note, disc))
        if not manifests:
            raise InvalidInput(f"{root} holds no TCD backup: neither a bag (bagit.txt) nor discs "
                               f"of a set ({SET_MANIFEST}); give the folder of the backup.")
        if len(manifests) > 1:
            labels = ", ".join(f"'{m['label']}' ({k})" for k, m in manifests.items())
            raise InvalidInput(f"{root} holds discs of {len(manifests)} different sets ({labels}); "
                               "put each set in its own folder and give that folder.")
        self.manifest = next(iter(manifests.values()))
        for note, disc in found:
            self.discs.setdefault(note["disc"], disc)
        self.count = self.manifest["discs"]
        self.files = {e["path"]: e for e in self.manifest["files"]}
        if self.manifest.get("format") != SET_FORMAT:
            raise InvalidInput(f"{root} holds discs of an unknown format '{self.manifest.get('format')}'.")

    @property
    def complete(self) -> bool:
        return True

    @property
    def missing_discs(self) -> list[int]:
        return [n for n in range(1, self.count + 1) if n not in self.discs]

    def documents(self) -> list[dict]:
        return list(self.manifest["sessions"].values())

    @property
    def problems(self) -> list[str]:
        return [f"{b}: the image cannot be opened" for b in self.broken]

    def _disc(self, number: int, path: str) -> _IsoDisc | _MountedDisc:
        disc = self.discs.get(number)
        if disc is None:
            raise Unavailable(f"{path}: on disc {number} of {self.count}, which is missing or damaged")
        return disc

    def pieces(self, path: str) -> list[dict]:
        """Where a file's bytes are: [{path, disc, size, sha256}], one entry unless it is split."""
        entry = self.files.get(path)
        if entry is None:
            raise Unavailable(f"{path}: not in the set's manifest")
        if "parts" in entry:
            return entry["parts"]
        return [{"path": path, "disc": entry["disc"], "size": entry["size"], "sha256": entry["sha256"]}]

    def read(self, path: str) -> bytes:
        """A small file, checked against the set's manifest."""
        with self.open(path) as f:
            body = f.read()
        if hashlib.sha256(body).hexdigest() != self.files[path]["sha256"]:
            raise Unavailable(f"{self.where(path)}: differs from its SHA-256 in the set's manifest")
        return body

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[BinaryIO]:
        """The whole file; a split file is joined in a temporary file, each part checked."""
        pieces = self.pieces(path)
        if len(pieces) == 1:
            with self._disc(pieces[0]["disc"], path).open(path) as f:
                yield f
            return
        with tempfile.TemporaryFile() as joined:
            for part in pieces:
                with self._disc(part["disc"], path).open(part["path"]) as f:
                    digest, size = copy_hashing(f, joined)
                if digest != part["sha256"]:
                    raise Unavailable(f"{path}: part {part['path']} on disc {part['disc']} of {self.count} "
                                      "is damaged")
            joined.seek(0)
            yield joined

    def local_path(self, path: str) -> Path | None:
        return None

    def where(self, path: str) -> str:
        discs = sorted({p["disc"] for p in self.pieces(path)})
        return f"{path} (disc {', '.join(map(str, discs))} of {self.count})"

    def close(self) -> None:
        for disc in self.discs.values():
            disc.close()


def open_source(src) -> BagSource | DiscSetSource:
    root = Path(src).expanduser().absolute()
    if not root.exists():
        raise NotFound(f"{root} does not exist; give the folder of a backup (a bag or ISO images).")
    if root.is_file() and root.suffix.lower() == ".iso":
        raise InvalidInput(f"Give the folder that holds {root.name} and the other discs of its set, "
                           "not one image.")
    if (root / "bagit.txt").is_file():
        return BagSource(root)
    return DiscSetSource(root)


# -- checking a backup --------------------------------------------------------------------------

@dataclass
class BackupCheck:
    source: str
    kind: str
    checked: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def sentence(self) -> str:
        if self.ok:
            return f"The {self.kind} at {self.source} is complete: {self.checked} files match their checksums."
        return (f"The {self.kind} at {self.source} has {len(self.problems)} problems (listed above); "
                "make a new backup from the archive, or restore what is intact with `tcd restore`.")


def verify_backup(src, progress: Progress | None = None,
                  on_total: Callable[[int], None] | None = None) -> BackupCheck:
    """Check every checksum of a bag or disc set; name every missing or differing file."""
    source = open_source(src)
    try:
        if isinstance(source, BagSource):
            return _verify_bag(source, progress, on_total)
        return _verify_discs(source, progress, on_total)
    finally:
        source.close()


def _verify_bag(source: BagSource, progress, on_total) -> BackupCheck:
    check = BackupCheck(str(source.root), source.kind)
    if not source.complete:
        check.problems.append(f"{MARKER}: missing, so the backup was not finished; run "
                              "`tcd backup disk` to the same folder again to complete it")
    try:
        bag = bagit.Bag(str(source.root))
    except bagit.BagError as exc:
        check.problems.append(f"bagit.txt / bag-info.txt: not a readable bag ({exc})")
        return check
    entries = bag.entries
    sizes = {}
    for name in entries:
        try:
            sizes[name] = (source.root / name).stat().st_size
        except OSError:
            sizes[name] = None
    if on_total:
        on_total(sum(s for s in sizes.values() if s))
    for name in sorted(entries):
        expected = entries[name]
        check.checked += 1
        if sizes[name] is None:
            check.problems.append(f"{name}: missing")
            continue
        hashers = {alg: hashlib.new(alg) for alg in expected if alg in hashlib.algorithms_available}
        try:
            with open(source.root / name, "rb") as f:
                while chunk := f.read(CHUNK):
                    for h in hashers.values():
                        h.update(chunk)
                    if progress:
                        progress(len(chunk))
        except OSError as exc:
            check.problems.append(f"{name}: unreadable ({exc.strerror})")
            continue
        check.bytes += sizes[name]
        wrong = sorted(alg for alg, h in hashers.items() if h.hexdigest() != expected[alg].lower())
        if wrong:
            check.problems.append(f"{name}: differs from its {' and '.join(wrong)} checksum")
    _, only_on_disk = bag.compare_manifests_with_fs()
    for name in sorted(only_on_disk):
        check.problems.append(f"{name}: in the bag but not in its manifest")
    return check


def _verify_discs(source: DiscSetSource, progress, on_total) -> BackupCheck:
    check = BackupCheck(str(source.root), source.kind)
    for broken in source.broken:
        check.problems.append(f"{broken}: the image cannot be opened")
    for number in source.missing_discs:
        affected = [e["path"] for e in source.manifest["files"]
                    if number in {p["disc"] for p in source.pieces(e["path"])}]
        check.problems.append(f"disc {number} of {source.count} is missing or damaged; it holds "
                              f"{len(affected)} files: " + ", ".join(affected))
    if on_total:
        on_total(sum(p["size"] for e in source.manifest["files"] for p in source.pieces(e["path"])
                     if p["disc"] in source.discs))
    for entry in source.manifest["files"]:
        for piece in source.pieces(entry["path"]):
            disc = source.discs.get(piece["disc"])
            if disc is None:
                continue  # named above with its disc
            check.checked += 1
            try:
                with disc.open(piece["path"]) as f:
                    digest, _ = hash_stream(f, progress)
            except Unavailable as exc:
                check.problems.append(str(exc))
                continue
            check.bytes += piece["size"]
            if digest != piece["sha256"]:
                check.problems.append(f"{piece['path']}: on disc {piece['disc']} of {source.count}, "
                                      "differs from its SHA-256 in the set's manifest")
    return check


# -- restoring ----------------------------------------------------------------------------------

@dataclass
class RestoreReport:
    source: str
    kind: str
    sessions_added: list[str] = field(default_factory=list)
    sessions_repaired: list[str] = field(default_factory=list)
    recordings_added: int = 0
    transcripts_added: int = 0
    objects_added: int = 0          # objects the store did not have
    objects_repaired: int = 0       # damaged objects replaced
    history_added: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.sessions_added or self.recordings_added or self.transcripts_added
                    or self.objects_added or self.objects_repaired or self.history_added)

    def to_dict(self) -> dict:
        return {**asdict(self), "changed": self.changed}

    def sentence(self) -> str:
        done = (f"{len(self.sessions_added)} sessions added, {self.recordings_added} recordings, "
                f"{self.transcripts_added} transcript versions, {self.objects_added} objects restored and "
                f"{self.objects_repaired} damaged objects repaired")
        if self.problems:
            return (f"Restored from {self.source} what it holds intact ({done}), but {len(self.problems)} files "
                    "could not be restored (listed above); find another copy of them and restore again.")
        if not self.changed:
            return f"Nothing to restore from {self.source}: the archive already holds all of it intact."
        return f"Restored from {self.source}: {done}."


def object_paths(doc: dict) -> dict[str, str]:
    """Where each of a session's objects is in the backup: `sha256 -> data/...`."""
    paths = {}
    for rec in doc["recordings"]:
        paths[rec["original_sha256"]] = f"data/{rec['files']['original']}"
        if rec.get("access_sha256") and "access" in rec["files"]:
            paths[rec["access_sha256"]] = f"data/{rec['files']['access']}"
    for t in doc["transcripts"]:
        if t.get("sha256"):
            paths[t["sha256"]] = f"data/{t['files']['json']}"
    return paths


def restore(archive, src, actor: str = "system", progress: Progress | None = None,
            on_total: Callable[[int], None] | None = None) -> RestoreReport:
    source = open_source(src)
    try:
        return _restore(archive, source, actor, progress, on_total)
    finally:
        source.close()


def _restore(archive, source, actor, progress, on_total) -> RestoreReport:
    catalog, store = archive.catalog, archive.store
    report = RestoreReport(str(source.root), source.kind)
    docs = sorted(source.documents(), key=lambda d: d["session"]["id"])
    # a session deleted under retention rules is not brought back by an older backup (issue 9)
    deleted = {r["session_id"] for r in catalog.backup_removals()}
    docs = [d for d in docs if d["session"]["id"] not in deleted]
    report.problems += source.problems
    # First what needs copying, so the progress bar knows the work ahead.
    work: list[tuple[dict, dict, str, bool]] = []  # (doc, object, path, damaged)
    for doc in docs:
        paths = object_paths(doc)
        for obj in doc["objects"]:
            sha = obj["sha256"]
            if sha not in paths:
                continue
            damaged = False
            if store.exists(sha):
                row = _object_row(catalog, sha)
                if not row or row["verify_ok"] != 0:
                    continue
                try:
                    if store.rehash(sha) == sha:  # damaged once, intact now: note it, copy nothing
                        catalog.mark_verified(sha, True)
                        continue
                except NotFound:
                    pass
                damaged = True
            work.append((doc, obj, paths[sha], damaged))
    if on_total:
        on_total(sum(obj["size"] for _, obj, _, _ in work))
    restored: set[str] = set()
    for doc, obj, path, damaged in work:
        try:
            _put_object(archive, source, path, obj, damaged, progress)
        except (Unavailable, IntegrityError, NotFound) as exc:
            report.problems.append(f"{exc} — needed for {doc['session']['id']}")
            continue
        restored.add(obj["sha256"])
        report.bytes += obj["size"]
        if damaged:
            report.objects_repaired += 1
        else:
            report.objects_added += 1
    for doc in docs:
        _restore_rows(archive, source, doc, restored, report, actor)
    if report.changed or report.problems:
        archive.audit(actor, "restore", None, str(source.root), kind=source.kind,
                      sessions_added=report.sessions_added, objects=report.objects_added,
                      repaired=report.objects_repaired, problems=len(report.problems))
    return report


def _object_row(catalog, sha: str) -> dict | None:
    try:
        return catalog.get_object(sha)
    except NotFound:
        return None


def _put_object(archive, source, path: str, obj: dict, damaged: bool, progress) -> None:
    """Copy one object from the backup into the store, checked against its SHA-256; a damaged
    copy in the store is replaced only once a good one is in hand."""
    sha, store = obj["sha256"], archive.store
    local = source.local_path(path)
    if local is not None and not damaged:
        if not local.is_file():
            raise Unavailable(f"{path}: missing from the bag")
        try:
            store.put_file(local, sha, progress)
        except IntegrityError:
            raise IntegrityError(f"{source.where(path)}: differs from its SHA-256 in the backup") from None
        return
    staging = archive.settings.staging_dir
    staging.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=staging, prefix="restore-")
    tmp = Path(name)
    try:
        with source.open(path) as src, os.fdopen(fd, "wb") as dst:
            digest, _ = copy_hashing(src, dst, progress)
        if digest != sha:
            raise IntegrityError(f"{source.where(path)}: differs from its SHA-256 in the backup")
        if store.exists(sha):
            store.delete(sha)
        store.put_file(tmp, sha)
    except OSError as exc:
        raise StorageError(f"Could not restore {path} ({exc.strerror or exc}); check the disk and "
                           "run the restore again.") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _restore_rows(archive, source, doc: dict, restored: set[str], report: RestoreReport, actor: str) -> None:
    catalog = archive.catalog
    session = doc["session"]
    sid = session["id"]
    new_session = catalog.find_session(sid) is None
    transcripts: list[tuple[dict, list]] = []
    for t in doc["transcripts"]:
        try:
            catalog.get_transcript(t["recording_id"], t["version"])
            continue
        except NotFound:
            pass
        path = f"data/{t['files']['json']}"
        try:
            body = json.loads(source.read(path).decode("utf-8"))
        except (Unavailable, ValueError) as exc:
            report.problems.append(f"{exc} — transcript v{t['version']} of recording {t['recording_id']}")
            continue
        transcripts.append((t, body["segments"] if isinstance(body, dict) else body))
    history: list[dict] = []
    if new_session:
        try:
            history = json.loads(source.read(f"data/{sid}/history.json").decode("utf-8"))
        except (Unavailable, ValueError) as exc:
            report.problems.append(f"{exc} — the history of {sid}")
    with catalog.transaction():
        added = catalog.restore_session(session)
        for obj in doc["objects"]:
            catalog.restore_object(obj)
        recordings = sum(catalog.restore_recording(r) for r in doc["recordings"])
        restore_seals_and_notes(archive, doc)  # before anyone can read the restored text (issue 9)
        versions = sum(catalog.restore_transcript(t, segs) for t, segs in transcripts)
        history_added = catalog.restore_history(history, str(source.root)) if added else 0
        mine = restored & {o["sha256"] for o in doc["objects"]}
        for sha in mine:
            catalog.mark_verified(sha, True)
        if versions and not added:
            catalog.touch_session(sid)  # the search index picks up the restored versions
    report.recordings_added += recordings
    report.transcripts_added += versions
    report.history_added += history_added
    if added:
        report.sessions_added.append(sid)
    elif mine or recordings or versions:
        report.sessions_repaired.append(sid)
    if added or mine or recordings or versions:
        archive.audit(actor, "restore", sid, str(source.root), kind=source.kind, new_session=bool(added),
                      objects=sorted(mine), recordings=recordings, transcripts=versions)

"""Disc sets: the archive as ISO images for CD, DVD or BD (ISO 9660 + Joliet + UDF, via pycdlib).

The files are those of a disk backup (`archive.backup.session_document`), under the same
`data/<SESSION-ID>/...` paths. Whole sessions are packed on one disc where they fit (first fit,
in date order); a session larger than a disc flows over as many discs as it needs, and a file
larger than a disc (or than 4 GiB, the limit of a file on ISO 9660) is cut into parts
`<name>.part001`, `.part002`, ... that end where a disc is full, each with its own SHA-256.

Every disc carries:
    tcd-set.json         the manifest of the whole set (identical on every disc): every file, its
                         SHA-256 and the disc it is on (or its parts and theirs), and every
                         session's document, so any one disc tells what the set holds
    tcd-disc.json        which disc of how many this is (also in the volume label and README)
    manifest-sha256.txt  the files on this disc, for `sha256sum -c` on a mounted disc
    index.html, README.html, viewer/   the offline viewer of the sessions this disc holds

Names: UDF carries the real names (Unicode NFC), Joliet the same cut to 64 characters, ISO 9660
short ASCII names. Each image is written to `<name>.iso.part`, read back with pycdlib and checked
file by file, and only then renamed to `<name>.iso`; a run that stops keeps the finished images
and the next run of the same set writes only the missing ones.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from .backup import (BackupReport, Item, _json_bytes, check_writable, failures_recorded, session_document,
                     viewer_files)
from .catalog import now
from .errors import IntegrityError, InvalidInput
from .store import CHUNK, hash_stream

SET_FORMAT = "tcd-disc-set/1"
SET_MANIFEST = "tcd-set.json"
DISC_NOTE = "tcd-disc.json"
SECTOR = 2048
MEDIA = {"cd": 737_280_000, "dvd": 4_700_372_992, "bd": 25_025_314_816}
MAX_FILE = 4 * 1024 ** 3 - SECTOR          # a file on a disc stays under 4 GiB
FS_OVERHEAD = 1024 * 1024                   # volume descriptors, path tables, UDF anchors
ENTRY_COST = 3 * SECTOR                     # a file's records in ISO 9660, Joliet and UDF
VIEWER_RESERVE = 256 * 1024                 # index.html, README.html, viewer.js/.css
MIN_PART = 64 * 1024                        # never start a part in a smaller gap

Progress = Callable[[int], None]


# -- the plan -----------------------------------------------------------------------------------

@dataclass
class Piece:
    """What one disc holds of one file: all of it, or one part."""
    item: Item
    disc: int
    path: str                 # "data/<...>", with ".partNNN" for a part
    offset: int
    size: int
    sha256: str               # of these bytes
    part: int = 0             # 1-based part number; 0 for a whole file
    parts: int = 0

    @property
    def cost(self) -> int:
        return _sectors(self.size) + ENTRY_COST


@dataclass
class DiscPlan:
    number: int
    capacity: int
    pieces: list[Piece] = field(default_factory=list)
    used: int = 0

    @property
    def free(self) -> int:
        return self.capacity - self.used


def _sectors(size: int) -> int:
    return math.ceil(size / SECTOR) * SECTOR


def media_size(media: str | int) -> int:
    if isinstance(media, int) or str(media).isdigit():
        return int(media)
    try:
        return MEDIA[str(media).lower()]
    except KeyError:
        raise InvalidInput(f"Unknown media '{media}'; use cd, dvd or bd.") from None


def plan_discs(docs: list[tuple[dict, list[Item]]], capacity: int) -> list[DiscPlan]:
    """Pack the sessions' files onto discs of `capacity` usable bytes (see the module doc)."""
    discs: list[DiscPlan] = []

    def new_disc() -> DiscPlan:
        discs.append(DiscPlan(len(discs) + 1, capacity))
        return discs[-1]

    def put(disc: DiscPlan, item: Item, offset: int = 0, size: int | None = None, part: int = 0) -> None:
        size = item.size if size is None else size
        path = f"data/{item.path}" + (f".part{part:03d}" if part else "")
        piece = Piece(item, disc.number, path, offset, size, item.sha256 if not part else "", part)
        disc.pieces.append(piece)
        disc.used += piece.cost

    for _, items in docs:
        total = sum(_sectors(i.size) + ENTRY_COST for i in items)
        if total <= capacity and all(i.size <= MAX_FILE for i in items):
            disc = next((d for d in discs if d.free >= total), None) or new_disc()
            for item in items:
                put(disc, item)
            continue
        disc = discs[-1] if discs else new_disc()
        # the session's documents and transcripts first (on its first disc), then its media
        for item in sorted(items, key=lambda i: i.role in ("original", "access")):
            cost = _sectors(item.size) + ENTRY_COST
            if cost <= disc.free and item.size <= MAX_FILE:
                put(disc, item)
            elif cost <= capacity and item.size <= MAX_FILE:
                disc = new_disc()
                put(disc, item)
            else:
                offset, part = 0, 0
                while offset < item.size:
                    room = min((disc.free - ENTRY_COST) // SECTOR * SECTOR, MAX_FILE)
                    # a small gap at the end of a disc is not worth a part; an empty disc always is
                    if room <= 0 or (room < min(MIN_PART, item.size - offset) and disc.pieces):
                        disc = new_disc()
                        continue
                    part += 1
                    size = min(room, item.size - offset)
                    put(disc, item, offset, size, part)
                    offset += size
                for d in discs:
                    for p in d.pieces:
                        if p.item is item:
                            p.parts = part
    return discs


def usable_capacity(size: int, docs: list[tuple[dict, list[Item]]]) -> int:
    """What a disc of `size` bytes leaves for the payload once the file systems, the viewer and
    the set manifest (which every disc carries) have their room."""
    manifest = sum(len(i.body) for _, items in docs for i in items if i.role == "session")
    manifest += 400 * sum(len(items) for _, items in docs) + 64 * 1024
    transcripts = sum(i.size for _, items in docs for i in items if i.path.endswith(".json")
                      and i.role == "transcript")
    reserve = FS_OVERHEAD + VIEWER_RESERVE + 2 * manifest + transcripts + 16 * ENTRY_COST
    usable = size - reserve
    if usable < 4 * MIN_PART:
        raise InvalidInput(f"A disc of {size} bytes is too small for this archive's catalog and viewer "
                           f"(they need {reserve} bytes); choose a larger medium.")
    return usable


# -- reading store objects in pieces ------------------------------------------------------------

class Window(io.RawIOBase):
    """The bytes [offset, offset + length) of a seekable file, as a file of its own (pycdlib
    seeks its sources to 0 before it reads them)."""

    def __init__(self, f: BinaryIO, offset: int, length: int):
        self.f, self.offset, self.length, self.pos = f, offset, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.length}[whence]
        self.pos = max(0, min(self.length, base + pos))
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.length - self.pos)
        if n <= 0:
            return 0
        self.f.seek(self.offset + self.pos)
        data = self.f.read(n)
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)


def _hash_range(f: BinaryIO, offset: int, length: int, progress: Progress | None,
                also=None) -> str:
    """SHA-256 of a range; `also` (a hash object) is fed the same bytes."""
    digest = hashlib.sha256()
    f.seek(offset)
    while length > 0:
        chunk = f.read(min(CHUNK, length))
        if not chunk:
            raise IntegrityError("the object is shorter than the catalog says")
        digest.update(chunk)
        if also is not None:
            also.update(chunk)
        length -= len(chunk)
        if progress:
            progress(len(chunk))
    return digest.hexdigest()


# -- names on the disc --------------------------------------------------------------------------

class Names:
    """Unique ISO 9660 (level 3: A-Z, 0-9, _; 30 characters) and Joliet (64 characters) names
    for each UDF path, chosen per directory."""

    def __init__(self):
        self.iso: dict[str, str] = {"": ""}
        self.joliet: dict[str, str] = {"": ""}
        self.taken: dict[tuple[str, str], set[str]] = {}

    def _unique(self, kind: str, parent: str, name: str, limit: int, ext: str) -> str:
        """`name` + `ext` cut to `limit` bytes of UTF-8 (pycdlib's measure, also for Joliet),
        with a number added when the directory has the name already."""
        taken = self.taken.setdefault((kind, parent), set())

        def fit(stem: str, tail: str = "") -> str:
            while stem and len((stem + tail + ext).encode("utf-8")) > limit:
                stem = stem[:-1]
            return stem + tail + ext

        candidate, n = fit(name), 1
        while candidate.upper() in taken:
            n += 1
            candidate = fit(name, f"_{n}")
        taken.add(candidate.upper())
        return candidate

    def add(self, udf_path: str, is_dir: bool = False) -> tuple[str, str]:
        """ISO 9660 and Joliet paths for `udf_path` ("/data/...", directories named on the way)."""
        parts = udf_path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path in self.iso:
                continue
            parent = "/".join(parts[:depth - 1])
            name = parts[depth - 1]
            is_file = depth == len(parts) and not is_dir
            stem, dot, ext = name.rpartition(".") if is_file else (name, "", "")
            if not dot:
                stem, ext = name, ""
            ascii_stem = _ascii(stem) or "F"
            ascii_ext = ("." + _ascii(ext)[:3]) if ext else ("." if is_file else "")
            self.iso[path] = self._unique("iso", parent, ascii_stem, 30 if is_file else 31, ascii_ext)
            jext = f".{ext}" if ext and len(ext) < 10 else ""
            self.joliet[path] = self._unique("joliet", parent, stem if jext else name, 64, jext)
        path = "/".join(parts)
        iso = "/" + "/".join(self.iso["/".join(parts[:d])] for d in range(1, len(parts) + 1))
        joliet = "/" + "/".join(self.joliet["/".join(parts[:d])] for d in range(1, len(parts) + 1))
        return iso, joliet


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    return re.sub(r"[^A-Z0-9_]+", "_", text).strip("_")


# -- writing the set ----------------------------------------------------------------------------

def backup_disc(archive, dest, media: str | int = "cd", label: str = "", actor: str = "system",
                session_ids: Iterable[str] | None = None, progress: Progress | None = None,
                on_total: Callable[[int], None] | None = None) -> BackupReport:
    """Write the ISO images of a disc set into the folder `dest`."""
    started = time.monotonic()
    size = media_size(media)
    dest = Path(dest).expanduser().absolute()
    check_writable(dest)
    catalog = archive.catalog
    ids = list(session_ids) if session_ids else [s.id for s in catalog.list_sessions()]
    docs = [session_document(archive, sid) for sid in sorted(ids, key=lambda i: (catalog.get_session(i).held_on, i))]
    if not docs:
        raise InvalidInput("There are no sessions to back up yet.")
    label = unicodedata.normalize("NFC", label or f"TCD {now()[:10]}")
    report = BackupReport(catalog.start_backup("disc", str(dest), label), "disc", str(dest))
    with failures_recorded(catalog, report, dest):
        discs = plan_discs(docs, usable_capacity(size, docs))
        split = [p for d in discs for p in d.pieces if p.part]
        whole = sum(p.size for d in discs for p in d.pieces)
        if on_total:
            on_total(sum(p.size for p in split) + 2 * whole)
        _hash_parts(archive, split, progress)
        manifest = set_manifest(docs, discs, label, size)
        set_id = manifest["set_id"]
        stem = f"{_ascii(label).replace('_', '-')[:24] or 'TCD'}-{set_id[:8]}"
        for disc in discs:
            image = dest / f"{stem}-{disc.number}of{len(discs)}.iso"
            report.images.append(str(image))
            if image.exists() and _disc_identity(image) == (set_id, disc.number):
                report.unchanged += len(disc.pieces)
                report.unchanged_bytes += sum(p.size for p in disc.pieces)
                if progress:
                    progress(2 * sum(p.size for p in disc.pieces))
                continue
            problems = write_disc(archive, image, disc, discs, manifest, docs, label, size, progress)
            if problems:
                report.problems += problems
                continue
            report.written += len(disc.pieces)
            report.written_bytes += sum(p.size for p in disc.pieces)
        report.complete = not report.problems
        report.sessions = [doc["session"]["id"] for doc, _ in docs]
    report.seconds = round(time.monotonic() - started, 3)
    catalog.finish_backup(report.backup_id, "complete" if report.complete else "failed",
                          {**report.to_dict(), "media": media, "discs": len(discs), "set_id": set_id})
    archive.audit(actor, "backup.disc", None, str(dest), backup=report.backup_id, label=label,
                  discs=len(discs), complete=report.complete, set_id=set_id)
    if report.complete:
        for sid in report.sessions:
            archive.audit(actor, "backup.disc", sid, str(dest), backup=report.backup_id, label=label,
                          discs=sorted({p.disc for d in discs for p in d.pieces if p.item.session_id == sid}))
    return report


def _hash_parts(archive, pieces: list[Piece], progress: Progress | None) -> None:
    by_object: dict[str, list[Piece]] = {}
    for p in pieces:
        by_object.setdefault(p.item.object or p.item.path, []).append(p)
    for group in by_object.values():
        item = group[0].item
        whole = hashlib.sha256()
        with _source(archive, item) as f:
            for p in sorted(group, key=lambda p: p.offset):
                p.sha256 = _hash_range(f, p.offset, p.size, progress, whole)
        if whole.hexdigest() != item.sha256:
            raise IntegrityError(f"data/{item.path} in the store differs from the catalog; run `tcd verify` "
                                 "and `tcd restore` to repair it, then write the discs again.")


@contextlib.contextmanager
def _source(archive, item: Item):
    """A seekable file with the item's bytes."""
    if item.object:
        with archive.store.materialize(item.object) as path, open(path, "rb") as f:
            yield f
    else:
        yield io.BytesIO(item.body)


def set_manifest(docs: list[tuple[dict, list[Item]]], discs: list[DiscPlan], label: str, size: int) -> dict:
    files: dict[str, dict] = {}
    for disc in discs:
        for p in disc.pieces:
            name = f"data/{p.item.path}"
            entry = files.setdefault(name, {"path": name, "size": p.item.size, "sha256": p.item.sha256,
                                            "session": p.item.session_id})
            if p.part:
                entry.setdefault("parts", []).append({"path": p.path, "disc": p.disc, "offset": p.offset,
                                                      "size": p.size, "sha256": p.sha256})
            else:
                entry["disc"] = p.disc
    body = {"format": SET_FORMAT, "label": label, "media_size": size, "discs": len(discs),
            "sessions": {doc["session"]["id"]: doc for doc, _ in docs},
            "files": sorted(files.values(), key=lambda e: e["path"])}
    body["set_id"] = hashlib.sha256(_json_bytes(body)).hexdigest()[:16]
    return body


def _disc_identity(image: Path) -> tuple[str, int] | None:
    try:
        note = json.loads(read_iso_file(image, "/" + DISC_NOTE))
        return note["set_id"], note["disc"]
    except (OSError, PyCdlibException, ValueError, KeyError):
        return None


def read_iso_file(image: Path, udf_path: str) -> bytes:
    iso = pycdlib.PyCdlib()
    iso.open(str(image))
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, udf_path=udf_path)
        return out.getvalue()
    finally:
        iso.close()


def write_disc(archive, image: Path, disc: DiscPlan, discs: list[DiscPlan], manifest: dict,
               docs: list[tuple[dict, list[Item]]], label: str, medium: int,
               progress: Progress | None) -> list[str]:
    """Master one image, read it back and check every file; returns the problems found."""
    count = len(discs)
    note = {"format": SET_FORMAT, "set_id": manifest["set_id"], "label": label, "disc": disc.number,
            "discs": count, "written_at": now(),
            "text": f"Đĩa số {disc.number} trong bộ {count} đĩa “{label}”."}
    files: dict[str, bytes | tuple[Item, int, int]] = {
        SET_MANIFEST: _json_bytes(manifest),
        DISC_NOTE: _json_bytes(note),
        "manifest-sha256.txt": "".join(f"{p.sha256}  {p.path}\n" for p in disc.pieces).encode("utf-8"),
    }
    on_disc = {p.path[len("data/"):] for p in disc.pieces if not p.part}
    sessions_here = [doc for doc, items in docs
                     if any(p.item.session_id == doc["session"]["id"] for p in disc.pieces)]
    bodies = {i.path: i for _, items in docs for i in items}

    def read(rel: str) -> bytes:
        item = bodies[rel]
        with _source(archive, item) as f:
            return f.read()

    files.update(viewer_files(sessions_here, read, lambda rel: rel in on_disc,
                              {"number": disc.number, "count": count, "label": label}))
    names = Names()
    iso = pycdlib.PyCdlib()
    # 16 characters: Joliet stores the volume label in UCS-2 in 32 bytes
    suffix = f"_{disc.number}OF{count}"
    vol = (_ascii(label)[:16 - len(suffix)] or "TCD") + suffix
    iso.new(interchange_level=3, vol_ident=vol, vol_set_ident=manifest["set_id"], set_size=count,
            seqnum=disc.number, joliet=3, udf="2.60", app_ident_str="TCD ARCHIVE")
    made: set[str] = set()
    entries: list[tuple[str, str, str]] = []

    def add_dirs(udf_path: str) -> None:
        parts = udf_path.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:depth])
            if d not in made:
                iso_path, joliet = names.add(d, is_dir=True)
                iso.add_directory(iso_path, joliet_path=joliet, udf_path=d)
                made.add(d)

    tmp = image.with_name(image.name + ".part")
    with contextlib.ExitStack() as stack:
        for name, body in files.items():
            udf = "/" + name
            add_dirs(udf)
            iso_path, joliet = names.add(udf)
            iso.add_fp(io.BytesIO(body), len(body), iso_path + ";1", joliet_path=joliet, udf_path=udf)
        for p in disc.pieces:
            udf = "/" + p.path
            add_dirs(udf)
            iso_path, joliet = names.add(udf)
            f = stack.enter_context(_source(archive, p.item))
            iso.add_fp(Window(f, p.offset, p.size), p.size, iso_path + ";1", joliet_path=joliet, udf_path=udf)
            entries.append((udf, p.sha256, p.path))
        done = [0]

        def written(sofar, total, *_):
            if progress and sofar > done[0]:
                progress(sofar - done[0])
                done[0] = sofar

        try:
            iso.write(str(tmp), progress_cb=written)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            iso.close()
    problems = check_image(tmp, entries, progress)
    if tmp.stat().st_size > medium:
        problems.append(f"{image.name}: the image is {tmp.stat().st_size} bytes, more than the "
                        f"{medium} bytes of the medium")
    if problems:
        tmp.unlink(missing_ok=True)
        return problems
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, image)
    return []


def check_image(image: Path, entries: list[tuple[str, str, str]], progress: Progress | None) -> list[str]:
    """Read every file of `entries` (udf path, sha256, name) back from the image."""
    problems = []
    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(image))
    except (PyCdlibException, OSError) as exc:
        return [f"{image.name}: the image does not read back ({exc})"]
    try:
        for udf, sha, name in entries:
            try:
                with iso.open_file_from_iso(udf_path=udf) as f:
                    digest, _ = hash_stream(f, progress)
            except PyCdlibException as exc:
                problems.append(f"{name} on {image.name}: cannot be read back ({exc})")
                continue
            if digest != sha:
                problems.append(f"{name} on {image.name}: reads back differently from its source")
    finally:
        iso.close()
    return problems

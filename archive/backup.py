"""Backups to external disks: one BagIt 1.0 bag per destination, grown incrementally.

A bag holds, per session, everything needed to read it without this program and to rebuild the
archive from it (`archive.restore`):

    data/<SESSION-ID>/session.json                      metadata, recordings, objects, versions
    data/<SESSION-ID>/history.json                      the session's audit entries
    data/<SESSION-ID>/recordings/<rec>/original/<name>  the original, bit-exact
    data/<SESSION-ID>/recordings/<rec>/access/<rec>.mp4 the access copy
    data/<SESSION-ID>/recordings/<rec>/transcripts/v<N>.json|.txt|.vtt
    index.html, README.html, viewer/                    the offline viewer (see `write_viewer`)
    tcd-backup.json                                     written last: the backup is complete

What a session holds (`session_items`) and the viewer are shared with the disc sets
(`archive.disc`).

Incremental: a file whose path, size and SHA-256 are in the manifest already is left untouched.
Every new file is copied through a temporary file while its SHA-256 and SHA-512 are computed from
the source bytes (which also proves the store's copy is intact), flushed, dropped from the page
cache and read back from the disk before it takes its place; its manifest lines are appended at
once, so a run that stops (a full disk, a pulled cable) loses at most the file it was writing.
The payload manifests are therefore never recomputed by re-reading the bag; the `bagit` library
writes `bag-info.txt` and the tag manifests. The marker `tcd-backup.json` is removed when a run
starts and written only at its very end, so an interrupted bag never claims to be complete.
"""
from __future__ import annotations

import contextlib
import hashlib
import html
import json
import os
import shutil
import string
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import bagit

from .catalog import now
from .errors import IntegrityError, InvalidInput, NotFound, StorageError
from .seals import viewer_entry as seal_viewer_entry
from .store import CHUNK, fsync_dir, hash_file, write_atomic

MARKER = "tcd-backup.json"
BAG_FORMAT = "tcd-bag/1"
ALGORITHMS = ("sha256", "sha512")
TMP_DIR = ".tcd-tmp"
ACCESS_EXT = {"video/mp4": "mp4", "audio/mp4": "m4a", "audio/mpeg": "mp3", "video/webm": "webm",
              "audio/webm": "webm", "audio/ogg": "ogg", "audio/wav": "wav", "audio/x-wav": "wav"}
# Bytes a file name may take on the common file systems of external disks (ext4, NTFS, exFAT).
NAME_BYTES = 200

Progress = Callable[[int], None]


# -- what a session's backup holds --------------------------------------------------------------

@dataclass
class Item:
    """One file of a session's backup: either an object of the store or bytes made here."""
    path: str                  # relative to the payload root: "<SESSION-ID>/..."
    size: int
    sha256: str
    session_id: str
    object: str | None = None  # the store object to copy
    body: bytes | None = None  # the content, for files rendered here
    role: str = ""             # session | history | original | access | transcript

    @property
    def is_history(self) -> bool:
        return self.role == "history"


def safe_name(name: str, fallback: str = "file") -> str:
    """A file name every disk takes: NFC, no separators, control characters or '%' (BagIt
    manifests would need to escape it), not hidden, at most NAME_BYTES bytes with its extension."""
    name = unicodedata.normalize("NFC", name or "")
    name = "".join("_" if c in '/\\%' or unicodedata.category(c)[0] == "C" else c for c in name)
    name = name.strip().lstrip(".").strip() or fallback
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 10:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    while len((stem + suffix).encode("utf-8")) > NAME_BYTES:
        stem = stem[:-1]
    return stem + suffix


def _json_bytes(data) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode("utf-8")


def _rendered(path: str, body: bytes, session_id: str, role: str) -> Item:
    return Item(path, len(body), hashlib.sha256(body).hexdigest(), session_id, body=body, role=role)


def session_document(archive, session_id: str) -> tuple[dict, list[Item]]:
    """The session's `session.json` document and every file of its backup."""
    from .transcripts import render_json, render_txt, render_vtt
    catalog = archive.catalog
    session = catalog.get_session(session_id)
    objects = {o["sha256"]: o for o in catalog.list_objects(session_id=session_id, sealed=False)}
    items: list[Item] = []

    def object_item(path: str, sha: str, role: str) -> Item:
        obj = objects.get(sha)
        if obj is None:
            raise NotFound(f"The catalog has no object {sha[:12]}… of session {session_id}.")
        return Item(path, obj["size"], sha, session_id, object=sha, role=role)

    doc = {"format": BAG_FORMAT, "session": session.to_dict(), "recordings": [], "transcripts": [],
           # when an object was last verified changes every week; it is not part of the backup
           "objects": [{k: o[k] for k in ("sha256", "size", "kind", "media_type", "created_at")}
                       for o in objects.values()]}
    for rec in catalog.recordings_for_session(session_id):
        base = f"{session_id}/recordings/{rec.id}"
        files = {"original": f"{base}/original/{safe_name(rec.original_name, 'original')}"}
        items.append(object_item(files["original"], rec.original_sha256, "original"))
        if rec.access_sha256:
            ext = ACCESS_EXT.get(rec.access_mime.split(";")[0].strip(), "bin")
            files["access"] = f"{base}/access/{rec.id}.{ext}"
            items.append(object_item(files["access"], rec.access_sha256, "access"))
        doc["recordings"].append({**rec.to_dict(), "probe": rec.probe, "files": files})
        for t in catalog.transcripts_for_recording(rec.id):
            stem = f"{base}/transcripts/v{t.version}"
            tfiles = {"json": f"{stem}.json", "txt": f"{stem}.txt", "vtt": f"{stem}.vtt"}
            if t.sha256 and t.sha256 in objects:
                # the stored document itself, so that restore puts back the very same object
                items.append(object_item(tfiles["json"], t.sha256, "transcript"))
            else:
                meta = {"recording_id": rec.id, "session_id": session_id, "kind": t.kind,
                        "author": t.author, "engine": t.engine, "model": t.model, "label": t.label}
                items.append(_rendered(tfiles["json"], render_json(t.segments, meta).encode("utf-8"),
                                       session_id, "transcript"))
            items.append(_rendered(tfiles["txt"], render_txt(t.segments).encode("utf-8"), session_id, "transcript"))
            items.append(_rendered(tfiles["vtt"], render_vtt(t.segments).encode("utf-8"), session_id, "transcript"))
            doc["transcripts"].append({**t.to_dict(with_segments=False), "files": tfiles})
    from .seals import add_to_backup  # notes, seals and the silenced copies (issue 9)
    for path, sha, size in add_to_backup(archive, session_id, doc):
        items.append(Item(path, size, sha, session_id, object=sha, role="sealed"))
    items.insert(0, _rendered(f"{session_id}/session.json", _json_bytes(doc), session_id, "session"))
    history = catalog.session_history(session_id)
    items.insert(1, _rendered(f"{session_id}/history.json", _json_bytes(history), session_id, "history"))
    return doc, items


def current_version(transcripts: list[dict], recording_id: str) -> dict | None:
    """The version people read (the catalog's rule): the newest human one, else the newest."""
    mine = [t for t in transcripts if t["recording_id"] == recording_id]
    if not mine:
        return None
    return max(mine, key=lambda t: (t["kind"] == "human", t["version"]))


# -- copying with proof -------------------------------------------------------------------------

def _write(dst: BinaryIO, chunk: bytes) -> None:
    """One write to the destination (a seam for the test that fills the disk)."""
    dst.write(chunk)


def _drop_cache(fd: int) -> None:
    # So the read-back comes from the disk, not from the memory the write just went through.
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def copy_checked(src: BinaryIO, final: Path, tmp_dir: Path, expected_sha256: str,
                 progress: Progress | None = None) -> dict[str, str]:
    """Copy `src` to `final` through a temporary file, computing SHA-256 and SHA-512 of the
    source bytes, then read the copy back; returns the digests. Raises IntegrityError if the
    source is not what `expected_sha256` says, or the copy reads back differently; OSError for
    a failing disk."""
    hashers = {alg: hashlib.new(alg) for alg in ALGORITHMS}
    tmp = tmp_dir / f"{os.getpid()}-{expected_sha256[:16]}.part"
    try:
        # SHA-512 is the slowest step; hashlib lets go of the GIL on large buffers, so it runs
        # in a second thread while this one writes the chunk and computes its SHA-256.
        with open(tmp, "wb") as dst, ThreadPoolExecutor(1) as helper:
            while chunk := src.read(CHUNK):
                beside = helper.submit(hashers["sha512"].update, chunk)
                _write(dst, chunk)
                hashers["sha256"].update(chunk)
                beside.result()
                if progress:
                    progress(len(chunk))
            dst.flush()
            os.fsync(dst.fileno())
            _drop_cache(dst.fileno())
        digests = {alg: h.hexdigest() for alg, h in hashers.items()}
        if digests["sha256"] != expected_sha256:
            raise IntegrityError(f"the source reads as sha256 {digests['sha256']}, not {expected_sha256}")
        back, _ = hash_file(tmp, progress)
        # Equal SHA-256 means equal bytes, so the SHA-512 of the source is the copy's too.
        if back != expected_sha256:
            raise IntegrityError(f"the copy on the backup disk reads back differently "
                                 f"(sha256 {back}); the disk may be failing")
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        fsync_dir(final.parent)
        return digests
    finally:
        tmp.unlink(missing_ok=True)



def open_item(archive, item: Item) -> BinaryIO:
    if item.object:
        return archive.store.open(item.object)
    import io
    return io.BytesIO(item.body)


# -- manifests ----------------------------------------------------------------------------------

def read_manifest(path: Path) -> dict[str, str]:
    """`path -> digest` from a BagIt manifest; a later line for the same path wins (the lines a
    stopped run appended)."""
    entries: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            digest, sep, name = line.strip("\r").partition(" ")
            if sep and digest:
                entries[name.lstrip(" ").replace("%0D", "\r").replace("%0A", "\n")] = digest.lower()
    return entries


def write_manifest(path: Path, entries: dict[str, str]) -> None:
    write_atomic(path, "".join(f"{entries[name]}  {name}\n" for name in sorted(entries)).encode("utf-8"))


# -- the disk backup ----------------------------------------------------------------------------

@dataclass
class BackupReport:
    backup_id: int
    kind: str
    dest: str
    complete: bool = False
    written: int = 0
    written_bytes: int = 0
    unchanged: int = 0
    unchanged_bytes: int = 0
    sessions: list[str] = field(default_factory=list)          # sessions with something new
    problems: list[str] = field(default_factory=list)          # files that could not be backed up
    seconds: float = 0.0
    images: list[str] = field(default_factory=list)            # disc sets: the ISO files

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        if not self.complete:
            return (f"The backup in {self.dest} is not complete: {len(self.problems)} files could not "
                    "be backed up; repair them (`tcd verify`, `tcd restore`) and run the backup again.")
        mb = self.written_bytes / 1e6
        return (f"Backup complete in {self.dest}: {self.written} files ({mb:.1f} MB) written and read "
                f"back, {self.unchanged} already there and left untouched.")


def backup_disk(archive, dest, actor: str = "system", session_ids: Iterable[str] | None = None,
                progress: Progress | None = None,
                on_total: Callable[[int], None] | None = None) -> BackupReport:
    """Bring the bag at `dest` up to date with the catalog (or with the chosen sessions).
    `on_total(bytes)` is called once with the work ahead (each new file counts twice: written
    and read back)."""
    started = time.monotonic()
    dest = Path(dest).expanduser().absolute()
    _prepare_destination(dest)
    catalog = archive.catalog
    ids = list(session_ids) if session_ids else [s.id for s in catalog.list_sessions()]
    report = BackupReport(catalog.start_backup("disk", str(dest)), "disk", str(dest))
    with failures_recorded(catalog, report, dest):
        _open_bag(dest)
        _remove(dest / MARKER)
        tmp_dir = dest / TMP_DIR
        shutil.rmtree(tmp_dir, ignore_errors=True)  # the temporary file of a run that stopped
        tmp_dir.mkdir()
        manifests = {alg: read_manifest(dest / f"manifest-{alg}.txt") for alg in ALGORITHMS}
        # sessions deleted under retention rules leave the bag, recorded in tcd-removals.json (issue 9)
        from .retention import apply_to_bag
        apply_to_bag(archive, dest, manifests)
        plan: list[Item] = []
        for sid in sorted(ids):
            _, items = session_document(archive, sid)
            for item in items:
                name = f"data/{item.path}"
                target = dest / name
                if (manifests["sha256"].get(name) == item.sha256 and name in manifests["sha512"]
                        and target.is_file() and target.stat().st_size == item.size):
                    report.unchanged += 1
                    report.unchanged_bytes += item.size
                else:
                    plan.append(item)
        if on_total:
            on_total(2 * sum(i.size for i in plan))
        touched: set[str] = set()
        appenders = {alg: open(dest / f"manifest-{alg}.txt", "a", encoding="utf-8", newline="\n")
                     for alg in ALGORITHMS}
        try:
            for item in plan:
                name = f"data/{item.path}"
                try:
                    with open_item(archive, item) as src:
                        digests = copy_checked(src, dest / name, tmp_dir, item.sha256, progress)
                except (IntegrityError, NotFound) as exc:
                    report.problems.append(f"{name}: {exc}")
                    continue
                for alg, f in appenders.items():
                    manifests[alg][name] = digests[alg]
                    f.write(f"{digests[alg]}  {name}\n")
                    f.flush()
                    os.fsync(f.fileno())
                report.written += 1
                report.written_bytes += item.size
                if not item.is_history:
                    touched.add(item.session_id)
        finally:
            for f in appenders.values():
                f.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)
        for alg in ALGORITHMS:
            write_manifest(dest / f"manifest-{alg}.txt", manifests[alg])
        sessions_in_bag = _bag_sessions(dest)
        write_viewer(dest, sessions_in_bag, lambda rel: (dest / "data" / rel).read_bytes())
        _save_bag_info(dest, manifests["sha256"], len(sessions_in_bag))
        report.sessions = sorted(touched)
        if not report.problems:
            _write_marker(dest, report, sessions_in_bag, manifests["sha256"])
            report.complete = True
    report.seconds = round(time.monotonic() - started, 3)
    catalog.finish_backup(report.backup_id, "complete" if report.complete else "failed", report.to_dict())
    archive.audit(actor, "backup.disk", None, str(dest), backup=report.backup_id,
                  complete=report.complete, written=report.written, bytes=report.written_bytes)
    if report.complete:
        for sid in report.sessions:
            archive.audit(actor, "backup.disk", sid, str(dest), backup=report.backup_id)
    return report


@contextlib.contextmanager
def failures_recorded(catalog, report: BackupReport, dest: Path):
    """Whatever stops a backup is recorded as its failure in the catalog; a disk error (full,
    gone, read-only) becomes one sentence that says what to do."""
    try:
        yield
    except OSError as exc:
        report.problems.append(_disk_sentence(exc, dest))
        catalog.finish_backup(report.backup_id, "failed", report.to_dict())
        raise StorageError(report.problems[-1]) from exc
    except BaseException as exc:
        report.problems.append(str(exc) or type(exc).__name__)
        catalog.finish_backup(report.backup_id, "failed", report.to_dict())
        raise


def _disk_sentence(exc: OSError, dest: Path) -> str:
    import errno
    if exc.errno == errno.ENOSPC:
        return (f"The backup disk at {dest} is full; free some space or use a larger disk and run the "
                "backup again: it goes on from where it stopped.")
    return (f"Could not write the backup at {dest} ({exc.strerror or exc}); check that the disk is "
            "connected and writable and run the backup again: it goes on from where it stopped.")


def check_writable(dest: Path) -> None:
    """A clear sentence for a backup destination that cannot be written, before anything is."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        probe = dest / ".tcd-write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise StorageError(f"Cannot write to the backup destination {dest} ({exc.strerror or exc}); "
                           "choose a folder on a disk that is connected and writable.") from exc


def _prepare_destination(dest: Path) -> None:
    """The same, and a folder that is empty or an earlier TCD backup."""
    check_writable(dest)
    if not (dest / "bagit.txt").exists() and any(p.name != TMP_DIR for p in dest.iterdir()):
        raise InvalidInput(f"{dest} holds other files and is not a TCD backup; choose an empty "
                           "folder or the folder of an earlier TCD backup.")


def _open_bag(dest: Path) -> None:
    if (dest / "bagit.txt").exists():
        info = bagit.Bag(str(dest)).info
        if info.get("TCD-Format") != BAG_FORMAT:
            raise InvalidInput(f"{dest} is a BagIt bag not made by TCD Archive; choose an empty folder.")
        return
    bagit.make_bag(str(dest), {"TCD-Format": BAG_FORMAT}, checksums=list(ALGORITHMS))
    # bagit writes version 0.97; this bag follows RFC 8493 (BagIt 1.0)
    (dest / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
                                    encoding="utf-8")


def _remove(path: Path) -> None:
    if path.exists():
        path.unlink()
        fsync_dir(path.parent)


def _bag_sessions(dest: Path) -> list[dict]:
    """The session documents the bag holds (earlier runs included), oldest session first."""
    docs = []
    for path in sorted((dest / "data").glob("*/session.json")):
        docs.append(json.loads(path.read_text(encoding="utf-8")))
    return sorted(docs, key=lambda d: (d["session"]["held_on"], d["session"]["id"]))


def _save_bag_info(dest: Path, manifest: dict[str, str], sessions: int) -> None:
    total = sum((dest / name).stat().st_size for name in manifest)
    bag = bagit.Bag(str(dest))
    bag.info.update({
        "TCD-Format": BAG_FORMAT,
        "Bag-Software-Agent": "TCD Archive (tcd backup disk)",
        "Bagging-Date": now()[:10],
        "Payload-Oxum": f"{total}.{len(manifest)}",
        "Bag-Size": f"{total / 1e9:.2f} GB",
        "External-Description": f"Recordings, transcripts and history of {sessions} citizen-reception "
                                "sessions (tiếp công dân trực tuyến); open index.html to view them.",
    })
    bag.save(manifests=False)  # bag-info.txt and the tag manifests; the payload was hashed on copy


def _write_marker(dest: Path, report: BackupReport, sessions: list[dict], manifest: dict) -> None:
    marker = {"format": BAG_FORMAT, "complete": True, "finished_at": now(), "backup_id": report.backup_id,
              "sessions": [d["session"]["id"] for d in sessions], "files": len(manifest)}
    write_atomic(dest / MARKER, _json_bytes(marker))


def read_marker(dest: Path) -> dict | None:
    try:
        return json.loads((Path(dest) / MARKER).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# -- the offline viewer -------------------------------------------------------------------------

VIEWER_ASSETS = ("viewer.js", "viewer.css")


def viewer_data(sessions: list[dict], read: Callable[[str], bytes], present: Callable[[str], bool] | None = None,
                disc: dict | None = None) -> dict:
    """What the viewer shows: the sessions, their recordings (with the path of a playable file
    when it is on this medium) and the current transcript of each."""
    present = present or (lambda rel: True)
    out = []
    for doc in sessions:
        s = doc["session"]
        recs = []
        for rec in doc["recordings"]:
            files = rec.get("files", {})
            media = next((files[k] for k in ("access", "original") if k in files and present(files[k])), None)
            current = current_version(doc["transcripts"], rec["id"])
            transcript = None
            if current and present(current["files"]["json"]):
                body = json.loads(read(current["files"]["json"]).decode("utf-8"))
                transcript = {"version": current["version"], "kind": current["kind"],
                              "author": current["author"], "created_at": current["created_at"],
                              "segments": body["segments"] if isinstance(body, dict) else body}
            # sealed spans: marker text, the silenced copy to play, notes (issue 9)
            recs.append(seal_viewer_entry(doc, rec, {
                "id": rec["id"], "point": rec["point"], "name": rec["original_name"],
                "duration": rec["duration"], "has_video": rec["has_video"],
                "media": f"data/{media}" if media else None,
                "files": {k: f"data/{v}" for k, v in files.items() if present(v)},
                "transcript": transcript}))
        out.append({**{k: s[k] for k in ("id", "title", "held_on", "case_code", "category", "chair",
                                         "central_point", "delegate_points", "complainants", "notes")},
                    "recordings": recs})
    return {"generated_at": now(), "disc": disc, "sessions": out}


def write_viewer(root: Path, sessions: list[dict], read: Callable[[str], bytes],
                 present: Callable[[str], bool] | None = None, disc: dict | None = None) -> list[Path]:
    """index.html, README.html and viewer/ (with the data as a script: file:// cannot fetch JSON)
    at `root`; returns the files written."""
    written = []
    for name, body in viewer_files(sessions, read, present, disc).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        written.append(path)
    return written


def viewer_files(sessions: list[dict], read: Callable[[str], bytes],
                 present: Callable[[str], bool] | None = None, disc: dict | None = None) -> dict[str, bytes]:
    """The viewer's files as `relative path -> bytes`."""
    data = viewer_data(sessions, read, present, disc)
    assets = resources.files("archive") / "viewer"
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    files = {"index.html": (assets / "index.html").read_bytes(),
             "viewer/data.js": f"window.TCD_DATA = {payload};\n".encode("utf-8")}
    for name in VIEWER_ASSETS:
        files[f"viewer/{name}"] = (assets / name).read_bytes()
    files["README.html"] = _readme(assets, data).encode("utf-8")
    return files


def _readme(assets, data: dict) -> str:
    sessions = data["sessions"]
    disc = data.get("disc")
    rows = "\n".join(
        f"<tr><td>{html.escape(s['id'])}</td><td>{html.escape(s['held_on'])}</td>"
        f"<td>{html.escape(s['title'])}</td><td>{len(s['recordings'])}</td></tr>" for s in sessions)
    if disc:
        medium = (f"Đây là đĩa số {disc['number']} trong bộ {disc['count']} đĩa "
                  f"“{html.escape(disc.get('label') or '')}”.")
    else:
        medium = "Đây là bản sao lưu trên ổ đĩa ngoài, theo định dạng BagIt 1.0 (RFC 8493)."
    template = string.Template((assets / "README.html").read_text(encoding="utf-8"))
    return template.substitute(medium=medium, count=len(sessions), rows=rows,
                               generated=html.escape(data["generated_at"]),
                               disc_help="" if not disc else DISC_HELP)


DISC_HELP = """
<h2>Tệp được chia thành nhiều phần</h2>
<p>Tệp lớn hơn một đĩa được cắt thành các phần <code>….part001</code>, <code>….part002</code>, …
nằm trên các đĩa khác nhau. Tệp <code>tcd-set.json</code> (có trên mọi đĩa) ghi mã SHA-256 của
từng phần và của cả tệp. Để ghép lại bằng tay: chép tất cả các phần vào một thư mục, rồi chạy
<code>cat tên.part001 tên.part002 … &gt; tên</code> và <code>sha256sum tên</code>; mã phải trùng với mã
ghi trong <code>tcd-set.json</code>. Lệnh <code>tcd restore</code> làm việc này tự động.</p>
"""

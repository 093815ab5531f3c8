"""Disk backup throughput against `cp -r` followed by `sha256sum` of the same files.

    .venv/bin/python bench/backup.py [--gb 2] [--files 8] [--dir /tmp/tcd-bench-backup] [--keep]

Builds an archive holding about `--gb` GB of recordings (Matroska files of raw video written by
ffmpeg: incompressible enough, and quick to make), then in the same run times:

  1. `cp -r` of the store's object folder to the same disk, then `sha256sum` of every copy;
  2. `archive.backup.backup_disk` into a new bag (copy, SHA-256 and SHA-512 of the source,
     fsync, read back from the disk, manifests, bag-info and tag manifests by `bagit`);
  3. a second backup run, which finds nothing new;
  4. `bagit.Bag.save(manifests=True)` on the bag: what re-hashing the payload to update the
     manifests would cost, instead of hashing each file as it is copied.

Prints MB/s for each and the ratio of the backup to cp + sha256sum. Everything it made is
deleted at the end unless `--keep`.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from common import print_ratio, timed, work_folder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archive import open_archive  # noqa: E402
from archive.backup import backup_disk  # noqa: E402

FRAME = 640 * 360 * 3 // 2  # bytes of one raw yuv420p frame


def make_recordings(folder: Path, total_bytes: int, files: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    frames = max(1, total_bytes // files // FRAME)
    paths = []
    for i in range(files):
        path = folder / f"Phiên {i + 1:02d} – điểm cầu trung tâm.mkv"
        # a different start of the test pattern per file, so every recording is its own object
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
                        "-i", f"testsrc2=size=640x360:rate=25,trim=start_frame={i * 7}",
                        "-frames:v", str(frames), "-c:v", "rawvideo", "-pix_fmt", "yuv420p",
                        str(path)], check=True)
        paths.append(path)
    return paths


def build_archive(home: Path, recordings: list[Path]):
    arch = open_archive(home, env={})
    session = arch.catalog.create_session({"title": "Phiên đo hiệu năng sao lưu", "held_on": "2025-06-01"})
    for path in recordings:
        stored = arch.store.put_file(path)
        arch.catalog.add_object(stored.sha256, stored.size, "original", "matroska")
        arch.catalog.add_recording(session_id=session.id, original_sha256=stored.sha256,
                                   original_name=path.name, duration=0, has_video=True)
        path.unlink()  # only the store's copy stays, as after an ingest
    return arch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=None,
                        help="Folder (on the disk to measure) to make the work folder in; default: the system's temporary folder.")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    with work_folder("backup", parent=args.dir, keep=args.keep) as work:
        print(f"Making {args.gb} GB of recordings in {args.files} files ...", flush=True)
        arch = build_archive(work / "home", make_recordings(work / "incoming", int(args.gb * 1e9), args.files))
        objects = arch.settings.objects_dir / "sha256"
        size = sum(p.stat().st_size for p in objects.rglob("*") if p.is_file())
        mb = size / 1e6
        subprocess.run(["sync"], check=True)

        copy = work / "cp-copy"

        def cp_then_sha256sum():
            subprocess.run(["cp", "-r", str(objects), str(copy)], check=True)
            files = sorted(str(p) for p in copy.rglob("*") if p.is_file())
            subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)

        t_cp = timed(cp_then_sha256sum)
        shutil.rmtree(copy)
        subprocess.run(["sync"], check=True)
        bag = work / "bag"
        report = None

        def first_backup():
            nonlocal report
            report = backup_disk(arch, bag)

        t_backup = timed(first_backup)
        assert report.complete, report.problems
        t_again = timed(lambda: backup_disk(arch, bag))
        import bagit
        t_save = timed(lambda: bagit.Bag(str(bag)).save(manifests=True))

        print(f"payload: {mb:.0f} MB in {args.files} recordings")
        print(f"cp -r + sha256sum          {t_cp:7.2f} s  {mb / t_cp:7.1f} MB/s")
        print(f"tcd backup disk (new bag)  {t_backup:7.2f} s  {mb / t_backup:7.1f} MB/s   "
              f"(sha256 + sha512 on copy, fsync, read back from disk)")
        print_ratio("tcd backup disk", t_backup, "cp -r + sha256sum", t_cp)
        print(f"second run, nothing new    {t_again:7.2f} s")
        print(f"bagit save(manifests=True) {t_save:7.2f} s  {mb / t_save:7.1f} MB/s   "
              "(re-hashing the whole payload, which the incremental backup avoids)")


if __name__ == "__main__":
    main()

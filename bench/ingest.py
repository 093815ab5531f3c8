"""Ingest benchmark: a generated 60-minute recording through `tcd ingest`, remux path and
transcode path, with the realtime factor, bytes hashed per second and peak memory.

    .venv/bin/python bench/ingest.py [--minutes 60] [--keep]

Baseline in the same run: `cp` + `sha256sum` of the same file (what the store must at least do),
and plain `ffmpeg -c copy` for the remux path. Targets: remux >= 100x realtime; peak RSS of the
`tcd` process < 200 MB whatever the file size.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import ffmpeg
import psutil

from common import TCD, print_ratio, work_folder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from archive.store import hash_file  # noqa: E402


def generate(folder: Path, minutes: float) -> dict[str, Path]:
    """An H.264/AAC MP4 (remuxed by the archive) and an MPEG-4/MP3 AVI (transcoded)."""
    seconds = minutes * 60
    video = f"testsrc2=s=640x360:r=15:d={seconds}"
    tone = f"sine=f=220:r=44100:d={seconds}"
    files = {"remux": folder / "phien-60-phut.mp4", "transcode": folder / "phien-60-phut.avi"}
    ffmpeg.output(ffmpeg.input(video, f="lavfi").video, ffmpeg.input(tone, f="lavfi").audio,
                  str(files["remux"]), vcodec="libx264", preset="ultrafast", g=150, acodec="aac",
                  pix_fmt="yuv420p", **{"b:v": "600k"}).overwrite_output().run(quiet=True)
    small = f"testsrc2=s=320x180:r=10:d={seconds}"
    ffmpeg.output(ffmpeg.input(small, f="lavfi").video, ffmpeg.input(tone, f="lavfi").audio,
                  str(files["transcode"]), vcodec="mpeg4", acodec="libmp3lame",
                  **{"q:v": 8}).overwrite_output().run(quiet=True)
    return files


def measure(cmd: list[str]) -> tuple[float, int, int, int]:
    """Wall seconds, exit status, peak RSS of the process itself and of its children (bytes)."""
    start = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_self = peak_children = 0
    while proc.poll() is None:
        try:
            peak_self = max(peak_self, proc.memory_info().rss)
            peak_children = max(peak_children, sum(c.memory_info().rss for c in proc.children(recursive=True)))
        except psutil.Error:
            pass
        time.sleep(0.05)
    return time.perf_counter() - start, proc.returncode, peak_self, peak_children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="Keep the generated files and archive.")
    args = parser.parse_args()
    with work_folder("ingest", keep=args.keep) as work:
        t = time.perf_counter()
        files = generate(work, args.minutes)
        print(f"generated {args.minutes:.0f}-minute inputs in {time.perf_counter() - t:.0f} s: "
              + ", ".join(f"{k} {p.stat().st_size / 1e6:.0f} MB" for k, p in files.items()))
        duration = args.minutes * 60
        size = files["remux"].stat().st_size

        t = time.perf_counter()
        hash_file(files["remux"])
        hashed = size / (time.perf_counter() - t)
        t = time.perf_counter()
        shutil.copyfile(files["remux"], work / "copy.mp4")
        subprocess.run(["sha256sum", str(work / "copy.mp4")], check=True, capture_output=True)
        cp_sha = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(files["remux"]), "-c", "copy", "-movflags",
                        "+faststart", "-y", str(work / "remux.mp4")], check=True)
        plain_remux = time.perf_counter() - t

        print(f"\nhashing (archive.store.hash_file): {hashed / 1e6:.0f} MB/s")
        print(f"baseline cp + sha256sum: {cp_sha:.1f} s; baseline ffmpeg -c copy +faststart: {plain_remux:.1f} s")
        print(f"\n{'path':<10} {'wall s':>8} {'x realtime':>11} {'tcd RSS MB':>11} {'ffmpeg RSS MB':>14}")
        walls = {}
        for path, src in files.items():
            home = work / f"home-{path}"
            wall, code, rss, child = measure([TCD, "--home", str(home), "ingest", str(src)])
            if code != 0:
                print(f"{path}: tcd ingest failed with exit status {code}")
                continue
            walls[path] = wall
            print(f"{path:<10} {wall:8.1f} {duration / wall:11.1f} {rss / 1e6:11.0f} {child / 1e6:14.0f}")
        if "remux" in walls:
            print_ratio("tcd ingest (remux)", walls["remux"], "cp + sha256sum + ffmpeg -c copy", cp_sha + plain_remux)


if __name__ == "__main__":
    main()

"""S3 throughput through the project's `S3Store` against the bare `minio` SDK, same files, same
server, same run.

    .venv/bin/python bench/storage.py [--files 3] [--mb 100] [--part-mb 16] [--ranges 40]

Starts SeaweedFS's `weed` on loopback (the launcher of tests/s3/conftest.py), writes `--files`
files of `--mb` MB of seeded noise, then for each file (alternating which goes first):

  upload   bare: `Minio.fput_object` (same part size and parallel parts as the store);
           store: `S3Store.put_file` given the file's SHA-256 (as ingest gives it, having
           hashed the file while copying it to staging), which keeps the SHA-256 as metadata
           and reads the object back to check it;
  range    `--ranges` reads of 1 MiB and of 64 KiB at seeded offsets:
           bare `get_object(offset=, length=)` vs `S3Store.read_range`;
  stream   the whole object: bare `get_object().stream()` vs `S3Store.open().read()` in chunks.

Prints MB/s (and requests per second for range reads) for each, and store/bare ratios.
Everything it made is deleted at the end, and the server is killed.
"""
from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
from pathlib import Path

from common import timed, work_folder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.s3store import MiB, PARALLEL_UPLOADS, S3Store  # noqa: E402
from archive.store import CHUNK, hash_file, object_key  # noqa: E402


def load_launcher():
    """The SeaweedFS launcher the S3 tests use. It is imported by its package name (`tests` is a
    namespace package under ROOT), because it imports its parent conftest relatively."""
    from tests.s3.conftest import SeaweedFS
    return SeaweedFS


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    paths = []
    for i in range(count):
        path = folder / f"recording-{i}.bin"
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, 8 * MiB)
                f.write(rng.randbytes(n))
                left -= n
        paths.append(path)
    return paths


def drain(response) -> None:
    try:
        for _ in response.stream(CHUNK):
            pass
    finally:
        response.close()
        response.release_conn()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--mb", type=int, default=100, help="size of each file in MB (10^6 bytes)")
    parser.add_argument("--part-mb", type=int, default=16)
    parser.add_argument("--ranges", type=int, default=40, help="range reads per file and size")
    args = parser.parse_args()

    with contextlib.ExitStack() as cleanup:
        work = cleanup.enter_context(work_folder("s3"))
        server = load_launcher()(work / "weed")
        cleanup.callback(server.stop)  # stops the server before its folder goes
        started = time.perf_counter()
        server.start()
        print(f"SeaweedFS up in {time.perf_counter() - started:.1f} s at {server.endpoint}")
        size = args.mb * 1000 * 1000
        files = make_files(work / "files", args.files, size)
        part = args.part_mb * MiB
        bare_bucket, store_bucket = server.make_bucket(), server.make_bucket()
        client = server.client()
        store = S3Store(server.endpoint, server.access_key, server.secret_key, store_bucket,
                        part_size=part, tmp_dir=work / "tmp")
        results: dict[str, dict[str, float]] = {}

        def add(row: str, who: str, seconds: float) -> None:
            results.setdefault(row, {}).setdefault(who, 0.0)
            results[row][who] += seconds

        verify_seconds = 0.0
        shas = []
        for i, path in enumerate(files):
            def bare():
                client.fput_object(bare_bucket, path.name, str(path), part_size=part,
                                   num_parallel_uploads=PARALLEL_UPLOADS)
            sha = hash_file(path)[0]  # known before the upload, as in ingest

            def ours():
                shas.append(store.put_file(path, sha).sha256)
            for who, fn in ((("bare", bare), ("store", ours)) if i % 2 == 0 else (("store", ours), ("bare", bare))):
                add("upload", who, timed(fn))
            # The read-back check inside put_file costs about one full read; measure one.
            verify_seconds += timed(lambda: store.rehash(shas[-1]))

        rng = random.Random(7)
        for length, row in ((MiB, "range 1 MiB"), (64 * 1024, "range 64 KiB")):
            for path, sha in zip(files, shas):
                offsets = [rng.randrange(0, size - length) for _ in range(args.ranges)]
                def bare_ranges():
                    for off in offsets:
                        drain(client.get_object(bare_bucket, path.name, offset=off, length=length))
                def store_ranges():
                    for off in offsets:
                        for _ in store.read_range(sha, off, length):
                            pass
                add(row, "bare", timed(bare_ranges))
                add(row, "store", timed(store_ranges))

        for path, sha in zip(files, shas):
            def bare_stream():
                drain(client.get_object(bare_bucket, path.name))
            def store_stream():
                with store.open(sha) as f:
                    while f.read(CHUNK):
                        pass
            add("stream", "bare", timed(bare_stream))
            add("stream", "store", timed(store_stream))

        total_mb = args.files * size / 1e6
        print(f"{args.files} files x {args.mb} MB, parts of {args.part_mb} MiB, "
              f"{PARALLEL_UPLOADS} parts in parallel, {args.ranges} range reads per file and size\n")
        print(f"{'':<14}{'bare minio':>14}{'S3Store':>14}{'store/bare':>12}")
        for row, times in results.items():
            if row.startswith("range"):
                length = MiB if "1 MiB" in row else 64 * 1024
                count = args.ranges * args.files
                mb = count * length / 1e6
                bare_rate, ours_rate = mb / times["bare"], mb / times["store"]
                print(f"{row:<14}{bare_rate:>9.1f} MB/s{ours_rate:>9.1f} MB/s{ours_rate / bare_rate:>11.2f}x"
                      f"   ({count / times['bare']:.0f} vs {count / times['store']:.0f} requests/s)")
            else:
                bare_rate, ours_rate = total_mb / times["bare"], total_mb / times["store"]
                print(f"{row:<14}{bare_rate:>9.1f} MB/s{ours_rate:>9.1f} MB/s{ours_rate / bare_rate:>11.2f}x")
        upload_only = results["upload"]["store"] - verify_seconds
        print(f"\nput_file less its read-back check (one rehash per file, timed apart): "
              f"{total_mb / upload_only:.1f} MB/s = {results['upload']['bare'] / upload_only:.2f}x bare; "
              f"the read-back itself ran at {total_mb / verify_seconds:.1f} MB/s")
        for key in store.keys():
            assert key in shas
        assert client.stat_object(bare_bucket, files[0].name).size == size
        assert client.stat_object(store_bucket, object_key(shas[0])).size == size


if __name__ == "__main__":
    main()

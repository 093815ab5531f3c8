"""The cost of the web server's state kept in the catalog (shared by its processes): the
once-per-sitting check that every /media range request makes, and the sign-in throttle.

    .venv/bin/python bench/shared_state.py [--rounds 2000] [--home DIR]

Prints microseconds per call (median and p95 of the rounds) for: a sitting check this process has
seen (cache hit), one it has not (a catalog write), one another process wrote first (a catalog
write that finds the mark), the throttle's check before a password (two catalog reads), and one
failed sign-in counted (a write transaction). On a fresh catalog in a temporary folder.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from archive import open_archive  # noqa: E402
from web.media import SittingMarks  # noqa: E402
from web.throttle import Throttle  # noqa: E402


def timed(call, rounds: int) -> tuple[float, float]:
    """Median and p95 of `call(i)` in microseconds."""
    times = []
    for i in range(rounds):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1e6)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--home", type=Path, help="A data directory to use (default: a new temporary one).")
    options = parser.parse_args()
    home = options.home or Path(tempfile.mkdtemp(prefix="tcd-bench-")) / "tcd-data"
    try:
        measure(home, options.rounds)
    finally:
        if not options.home:
            shutil.rmtree(home.parent, ignore_errors=True)


def measure(home: Path, n: int) -> None:
    first, second = open_archive(home, env={}), open_archive(home, env={})  # two processes' catalogs
    lifetime = dt.timedelta(hours=12)
    here, there = SittingMarks(first.catalog, lifetime), SittingMarks(second.catalog, lifetime)
    here.first("7", "token", "play", "seen")
    baseline = timed(lambda i: first.catalog.ping(), n)  # the cheapest catalog round trip
    figures = {
        "sitting check, cache hit": timed(lambda i: here.first("7", "token", "play", "seen"), n),
        "sitting check, miss (first play)": timed(lambda i: here.first("7", "token", "play", f"r{i}"), n),
        "sitting check, miss (other process first)": timed(lambda i: there.first("7", "token", "play", f"r{i}"), n),
    }
    user = Throttle(first.catalog, "user", 3, 2.0, 300.0)
    address = Throttle(first.catalog, "address", 10, 2.0, 300.0)
    for i in range(200):  # some counts in the table, as after a few guesses
        user.failed(f"user-{i}")
        address.failed(f"10.0.{i}.1")
    figures["throttle check before a password (2 reads)"] = timed(
        lambda i: max(user.wait_for(f"user-{i % 300}"), address.wait_for("10.0.5.1")), n)
    figures["failed sign-in counted (1 transaction)"] = timed(lambda i: user.failed(f"guess-{i % 500}"), n)
    print(f"catalog {home / 'catalog.sqlite'}, {n} rounds each; baseline: `SELECT 1` on the same "
          f"catalog, median {baseline[0]:.1f} µs")
    for name, (median, p95) in figures.items():
        print(f"  {name:45} median {median:8.1f} µs ({median / baseline[0]:5.1f}x baseline)"
              f"   p95 {p95:8.1f} µs")


if __name__ == "__main__":
    main()

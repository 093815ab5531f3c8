"""What the benchmark scripts share: the work folder of one run, timing one call, and the line
that sets a time against its baseline measured in the same run. The scripts import it as `common`
(run as `.venv/bin/python bench/NAME.py`, their own folder comes first on sys.path)."""
from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# The console script of the venv running the benchmark.
TCD = str(Path(sys.executable).parent / "tcd")


@contextlib.contextmanager
def work_folder(name: str, parent: Path | None = None, keep: bool = False) -> Iterator[Path]:
    """A new folder `tcd-bench-NAME-…` for one run, inside `parent` (default: the system's
    temporary folder, so pass the disk to measure), deleted at the end whatever happened unless
    `keep`. It is always a folder of its own: nothing it did not make is ever deleted."""
    work = Path(tempfile.mkdtemp(prefix=f"tcd-bench-{name}-", dir=parent))
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def timed(fn) -> float:
    """Wall seconds of one call of `fn`."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def print_ratio(what: str, seconds: float, baseline: str, baseline_seconds: float) -> None:
    """One line: the time of `what` against the time of its baseline (same run, same input)."""
    print(f"ratio {what} / {baseline}: {seconds / baseline_seconds:.2f}x the time "
          f"({baseline_seconds / seconds:.2f} of the speed)")

"""The watch folder: ingest each recording the conference software writes, once it is complete.

A file is taken only after its size and modification time have stayed the same for `settle`
seconds, so a recording still being written is never ingested half. What was ingested is known
from the catalog's jobs (path, size and modification time), so a restart ingests nothing twice,
and jobs a crash left unfinished are resumed first.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from archive import Archive

from . import pipeline

log = logging.getLogger("tcd.watch")


class Watcher:
    def __init__(self, archive: Archive, folder: Path, *, interval: float = 2.0, settle: float = 10.0,
                 point: str = "", runner: pipeline.Runner | None = None):
        self.archive, self.folder = archive, Path(folder).resolve()
        self.interval, self.settle, self.point = interval, settle, point
        self.runner = runner or pipeline.Runner(archive)
        self._seen: dict[Path, tuple[int, int, float]] = {}  # path -> (size, mtime_ns, unchanged since)
        self._taken: set[tuple[Path, int, int]] = set()  # (path, size, mtime_ns) the catalog has a job for

    def ready(self, clock: float | None = None) -> list[Path]:
        """Files that stopped changing at least `settle` seconds ago and have no job yet."""
        clock = time.monotonic() if clock is None else clock
        ready, present = [], set()
        for path in pipeline.expand_paths([self.folder]):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            present.add(path)
            size, mtime, since = self._seen.get(path, (-1, -1, clock))
            if (size, mtime) != (stat.st_size, stat.st_mtime_ns):
                self._seen[path] = (stat.st_size, stat.st_mtime_ns, clock)
                continue
            if clock - since >= self.settle and not self.has_job(path, stat):
                ready.append(path)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        self._taken = {t for t in self._taken if t[0] in present}
        return ready

    def has_job(self, path: Path, stat=None) -> bool:
        """Whether this version of the file has a job; the catalog is asked until it has one."""
        try:
            stat = stat or path.stat()
        except FileNotFoundError:
            return True
        version = (path, stat.st_size, stat.st_mtime_ns)
        if version not in self._taken and self.archive.catalog.job_for_source(
                str(path.resolve()), stat.st_size, stat.st_mtime) is not None:
            self._taken.add(version)
        return version in self._taken

    def step(self) -> list[pipeline.Outcome]:
        outcomes = []
        for path in self.ready():
            log.info("ingesting %s", path)
            for o in pipeline.ingest_paths(self.archive, [path], point=self.point, actor="watch",
                                           runner=self.runner):
                level = logging.INFO if o.ok else logging.WARNING
                log.log(level, "%s: %s %s %s", o.name, o.status, o.session_id or "", o.message)
                outcomes.append(o)
        return outcomes

    def run(self, once: bool = False) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        log.info("watching %s (settle %.0f s)", self.folder, self.settle)
        for o in pipeline.resume(self.archive, self.runner, pipeline.INTERRUPTED):
            log.info("resumed %s: %s", o.name, o.status)
        while True:
            self.step()
            if once and all(self.has_job(p) for p in self._seen):
                return
            time.sleep(self.interval)

"""Worker processes for `tcd serve`: one listening socket, several processes answering on it.

Python runs one request at a time per process (the GIL), so one process uses one core however
many threads it has (bench/web.py: 103% CPU, 208 requests/s). The parent opens the socket, forks
the workers, which each accept on it and serve with their own threads, and watches them: a worker
that dies is replaced, and one that dies at once (a broken set-up, not a crash under load) stops
the server with its exit status rather than being restarted in a loop. What the workers must agree
on (sign-in throttling, plays already audited, uploads) lives in the catalog, not in memory.

Forking is safe because the parent opens no catalog connection, index reader or thread it would
hand down: the caller closes what it used before `run()` forks.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from typing import Callable

log = logging.getLogger("tcd.serve")

STARTUP_GRACE = 5.0   # seconds: a worker that ends sooner was not able to start
STOP_TIMEOUT = 10.0   # seconds a worker has to end after SIGTERM before it is killed


class Seats:
    """The connections each worker holds, in memory all workers share, so that a worker takes a
    new connection only while no other holds fewer. Browsers keep their connections open: left to
    whichever worker wakes first, 50 of them split 28 to 22 and the busier worker's waits set the
    tail latency. A worker's own count is written each time it looks; the others' are at most one
    turn of their loop old (waitress wakes at least once a second)."""

    def __init__(self, count: int):
        self.counts = multiprocessing.RawArray("i", count)  # made before the fork, so shared
        self.index = 0

    def sit(self, index: int) -> None:
        """In a worker: which seat it has (a replacement takes the seat of the one it replaces)."""
        self.index = index
        self.counts[index] = 0

    def may_accept(self, held: int) -> bool:
        self.counts[self.index] = held
        return held <= min(self.counts)


class Supervisor:
    """Forks `count` processes that each call `work(seat)` and keeps them running until stopped."""

    def __init__(self, work: Callable[[Seats], None], count: int):
        self.work, self.count = work, max(1, count)
        self.seats = Seats(self.count)
        self.started: dict[int, tuple[int, float]] = {}   # pid -> (seat, when it was started)
        self.stopping = False

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit status for the command (0: stopped as asked)."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.count):
                self._spawn(index)
            return self._watch()
        finally:
            self._stop()
            self._reap_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _spawn(self, index: int) -> None:
        # Signals wait until the worker has its own handlers: the parent's would stop its siblings.
        signals = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
                self.seats.sit(index)
                self.work(self.seats)
                status = 0
            except KeyboardInterrupt:
                status = 0
            except BaseException:
                log.exception("a tcd serve worker failed")
            finally:
                os._exit(status)  # never return into the parent's code
        self.started[pid] = (index, time.monotonic())
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)

    def _watch(self) -> int:
        """Replace workers that die until told to stop; `run` then reaps the rest (with a deadline)."""
        while self.started and not self.stopping:
            try:
                pid, status = os.wait()  # a signal handled meanwhile does not interrupt it (PEP 475)
            except ChildProcessError:
                return 0
            if pid not in self.started or self.stopping:
                continue
            index, since = self.started.pop(pid)
            lived = time.monotonic() - since
            how = (f"was killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exited with status {os.WEXITSTATUS(status)}")
            if lived < STARTUP_GRACE:
                log.error("worker %d %s %.1f s after it started; stopping the server", pid, how, lived)
                return 1
            log.warning("worker %d %s; starting another", pid, how)
            self._spawn(index)
        return 0

    def _stop(self, *_signal) -> None:
        self.stopping = True
        for pid in self.started:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _reap_all(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.started:
            for pid in list(self.started):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    self.started.pop(pid)
                elif time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

"""Worker processes for `tcd serve`: one listening socket, several processes answering on it.

Python runs one request at a time per process (the GIL), so one process uses one core however
many threads it has (bench/web.py: 103% CPU, 208 requests/s). The parent opens the socket, forks
the workers, which each accept on it and serve with their own threads, and watches them: a worker
that dies is replaced, and one that dies at once (a broken set-up, not a crash under load) stops
the server with its exit status rather than being restarted in a loop. What the workers must agree
on (sign-in throttling, plays already audited, uploads) lives in the catalog, not in memory.

Stopping is graceful (web/drain.py): the first SIGTERM or SIGINT closes the parent's copy of the
socket and passes SIGTERM on, on which each worker stops taking connections and lets the requests
it holds finish for up to the drain time; a second one passes `STOP_NOW` on, which cuts them. A
worker that has not ended by the drain time plus `STOP_MARGIN` is killed, and none is replaced
once stopping has begun.

Forking is safe because the parent opens no catalog connection, index reader or thread it would
hand down: the caller closes what it used before `run()` forks.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from typing import Callable

log = logging.getLogger("tcd.serve")

STARTUP_GRACE = 5.0   # seconds: a worker that ends sooner was not able to start
STOP_MARGIN = 3.0     # seconds past the drain time a worker has to end before it is killed
STOP_NOW = signal.SIGQUIT  # to a worker: cut the requests still running and end (as gunicorn's)


class _Stopping(Exception):
    """Raised by the signal handler out of the wait for a worker to end (PEP 475 would resume it)."""


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
    """Forks `count` processes that each call `work(seat)` and keeps them running until stopped.
    `listener`, the socket the workers share, is closed here when stopping begins: while any
    process holds it open, the kernel would take new connections that nobody answers."""

    def __init__(self, work: Callable[[Seats], None], count: int, drain_seconds: float = 30.0,
                 listener: socket.socket | None = None):
        self.work, self.count = work, max(1, count)
        self.drain_seconds, self.listener = max(0.0, drain_seconds), listener
        self.seats = Seats(self.count)
        self.started: dict[int, tuple[int, float]] = {}   # pid -> (seat, when it was started)
        self.stopping = False
        self.deadline = 0.0   # once stopping: when the workers still running are killed
        self.waiting = False  # in os.wait(), which a stop signal must end

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit status for the command (0: stopped as asked)."""
        previous = {sig: signal.signal(sig, self._signalled) for sig in (signal.SIGTERM, signal.SIGINT, STOP_NOW)}
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
        signals = {signal.SIGTERM, signal.SIGINT, STOP_NOW}
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(STOP_NOW, signal.default_int_handler)  # until web.drain has its own
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
                self.waiting = True
                if self.stopping:  # the signal came just before
                    return 0
                pid, status = os.wait()
            except (ChildProcessError, _Stopping):
                return 0
            finally:
                self.waiting = False
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

    def _signalled(self, signum, _frame) -> None:
        # a second signal (Ctrl+C twice), or a terminal's quit key (Ctrl+\): at once
        self._stop(now=self.stopping or signum == STOP_NOW)
        if self.waiting:
            raise _Stopping

    def _stop(self, now: bool = False) -> None:
        if not self.stopping:
            self.stopping = True
            self.deadline = time.monotonic() + self.drain_seconds + STOP_MARGIN
            if self.listener is not None:
                self.listener.close()
        if now:
            self.deadline = min(self.deadline, time.monotonic() + STOP_MARGIN)
        for pid in self.started:
            try:
                os.kill(pid, STOP_NOW if now else signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _reap_all(self) -> None:
        killed = set()
        while self.started:
            for pid in list(self.started):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    self.started.pop(pid)
                elif time.monotonic() > self.deadline and pid not in killed:
                    log.warning("worker %d did not end in time after it was told to stop; killing it", pid)
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
            time.sleep(0.05)

"""Slowing down password guessing: after a few failed sign-ins for one user name, or from one
address, the next try must wait, and the wait doubles with each further failure.

Counts live in memory (one server process); they are forgotten after `forget_after` seconds
without a failure and, for a user name, after a successful sign-in. A locked key is refused
before the password is checked, so guessing on does not help.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class Throttle:
    def __init__(self, free_tries: int, delay: float, max_delay: float,
                 forget_after: float = 900.0, clock=time.monotonic, max_keys: int = 100_000):
        self.free_tries, self.delay, self.max_delay = free_tries, delay, max_delay
        self.forget_after, self.clock, self.max_keys = forget_after, clock, max_keys
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def wait_for(self, key: str) -> float:
        """Seconds until `key` may try again (0: now)."""
        with self._lock:
            record = self._current(key)
            return max(0.0, record.locked_until - self.clock()) if record else 0.0

    def failed(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            record = self._current(key)
            if record is None:
                if len(self._records) >= self.max_keys:
                    self._prune(now)
                record = self._records[key] = _Record()
            record.failures += 1
            record.last = now
            extra = record.failures - self.free_tries
            if extra >= 0:
                record.locked_until = now + min(self.max_delay, self.delay * 2 ** extra)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)

    def _current(self, key: str) -> _Record | None:
        record = self._records.get(key)
        if record and self.clock() - record.last > self.forget_after and self.clock() >= record.locked_until:
            del self._records[key]
            return None
        return record

    def _prune(self, now: float) -> None:
        for key in [k for k, r in self._records.items()
                    if now - r.last > self.forget_after and now >= r.locked_until]:
            del self._records[key]
        while len(self._records) >= self.max_keys:  # still full: drop the oldest
            del self._records[min(self._records, key=lambda k: self._records[k].last)]

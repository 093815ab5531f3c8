"""Slowing down password guessing: after a few failed sign-ins for one user name, or from one
address, the next try must wait, and the wait doubles with each further failure.

The counts live in the catalog (`sign_in_failures`), so every process of the web server sees the
failures made through the others; a failure is counted in one write transaction, so two
processes counting at once lose none. Times are wall-clock epoch seconds (`time.time`): unlike a
monotonic clock, they mean the same in every process. Counts are forgotten after `forget_after`
seconds without a failure and, for a user name, after a successful sign-in; a new key first
clears the forgotten ones and keeps at most `max_keys` per scope, so guessing with ever new
names cannot grow the table without bound. A locked key is refused before the password is
checked, so guessing on does not help.
"""
from __future__ import annotations

import time

from archive.catalog import Catalog


class Throttle:
    def __init__(self, catalog: Catalog, scope: str, free_tries: int, delay: float, max_delay: float,
                 forget_after: float = 900.0, clock=time.time, max_keys: int = 100_000):
        self.catalog, self.scope = catalog, scope
        self.free_tries, self.delay, self.max_delay = free_tries, delay, max_delay
        self.forget_after, self.clock, self.max_keys = forget_after, clock, max_keys

    def wait_for(self, key: str) -> float:
        """Seconds until `key` may try again (0: now)."""
        record = self.catalog.sign_in_failure(self.scope, key)
        now = self.clock()
        if record is None or self._forgotten(record, now):
            return 0.0
        return max(0.0, record["locked_until"] - now)

    def failed(self, key: str) -> None:
        with self.catalog.transaction():  # read, count and write as one step for all processes
            now = self.clock()
            record = self.catalog.sign_in_failure(self.scope, key)
            if record is None:
                self.catalog.prune_sign_in_failures(self.scope, now - self.forget_after, now,
                                                    self.max_keys - 1)
            if record is None or self._forgotten(record, now):
                record = {"failures": 0, "locked_until": 0.0}
            failures = record["failures"] + 1
            locked_until = record["locked_until"]
            extra = failures - self.free_tries
            if extra >= 0:
                locked_until = now + min(self.max_delay, self.delay * 2 ** min(extra, 64))  # no float overflow
            self.catalog.set_sign_in_failure(self.scope, key, failures, now, locked_until)

    def succeeded(self, key: str) -> None:
        self.catalog.forget_sign_in_failure(self.scope, key)

    def _forgotten(self, record: dict, now: float) -> bool:
        return now - record["last"] > self.forget_after and now >= record["locked_until"]

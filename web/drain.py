"""How one `tcd serve` process stops: gracefully, as a production server does.

On the first stop signal the process closes its listening socket at once (with several workers the
supervisor and every worker close their copy, so a new connection is refused rather than left
waiting), closes its idle keep-alive connections, and goes on serving the requests it already
holds — a page being rendered, an upload whose body is still arriving, a range still being sent —
for up to the drain time, closing each connection once its response is out. When none is left the
process ends; a request still running at the deadline is cut, and the log says how many were.
Either way the process stopped because it was asked to: its exit status is 0.

waitress's own `run()` only knows "serve until no socket is left" and, on an interrupt, "end the
thread pool now", so this module turns waitress's event loop itself, one turn at a time, and looks
at the connections between turns. Signal handlers only set the deadline and wake the loop; the
loop's thread does the rest at the end of a turn, never in the middle of reading a request.
"""
from __future__ import annotations

import logging
import signal
import time

from waitress import wasyncore

from . import workers

log = logging.getLogger("tcd.serve")

DRAIN_TURN = 0.1  # seconds: while draining, how often the connections are looked at


def in_flight(channel) -> bool:
    """Whether a waitress connection holds a request: arriving (its headers or body), waiting for
    or running in a thread, or with part of its response still to send."""
    return bool(channel.request is not None or channel.requests or channel.total_outbufs_len)


def requests(count: int) -> str:
    return f"{count} request{'' if count == 1 else 's'}"


class Drain:
    """Runs a waitress server (made with `socket_map` as its map) until stopped, then drains it."""

    def __init__(self, server, socket_map: dict, seconds: float):
        self.server, self.map, self.seconds = server, socket_map, max(0.0, seconds)
        self.began: float | None = None  # when the first stop signal came
        self.deadline: float | None = None

    # The handlers run in the loop's thread between two of its steps: they only set the deadline
    # and wake select() (pull_trigger() without a callback writes to a pipe and takes no lock).
    def stop(self, *_signal) -> None:
        """Stop taking connections and let the requests held finish, for up to the drain time."""
        if self.began is None:
            self.began = time.monotonic()
            self.deadline = self.began + self.seconds
        self.server.pull_trigger()

    def stop_now(self, *_signal) -> None:
        """Cut the requests still running and end."""
        if self.began is None:
            self.began = time.monotonic()
        self.deadline = time.monotonic()
        self.server.pull_trigger()

    def stop_or_hurry(self, *_signal) -> None:
        """The first signal drains, a second one (Ctrl+C twice) stops at once."""
        self.stop_now() if self.deadline is not None else self.stop()

    def serve(self, alone: bool) -> int:
        """Serve until stopped by SIGTERM or SIGINT and drained; how many requests were cut.
        `alone`: no supervisor, so a second signal means "at once"; a worker drains on any number
        of them (a service manager signals every process of the group, a terminal's Ctrl+C too)
        and stops at once on `workers.STOP_NOW`, which only its supervisor sends."""
        if alone:
            handlers = {signal.SIGTERM: self.stop_or_hurry, signal.SIGINT: self.stop_or_hurry,
                        workers.STOP_NOW: self.stop_now}
        else:
            handlers = {signal.SIGTERM: self.stop, signal.SIGINT: self.stop, workers.STOP_NOW: self.stop_now}
        previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
        try:
            return self._run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self) -> int:
        adj, server, pool = self.server.adj, self.server, self.server.task_dispatcher
        listening = True
        while True:
            timeout = adj.asyncore_loop_timeout
            if self.deadline is not None:
                # look often: a thread ends its request without waking the loop once more
                timeout = min(DRAIN_TURN, max(0.0, self.deadline - time.monotonic()))
            wasyncore.loop(timeout=timeout, map=self.map, use_poll=adj.asyncore_use_poll, count=1)
            if self.deadline is None:
                continue
            if listening:
                # the base class's close: the server's own would also close the trigger that the
                # threads pull to wake this loop when a response is ready
                wasyncore.dispatcher.close(server)
                listening = False
                held = sum(in_flight(c) for c in server.active_channels.values())
                if held and self.deadline > time.monotonic():
                    log.warning("stopping: letting %s finish (at most %g s)", requests(held), self.seconds)
            busy = []
            for channel in list(server.active_channels.values()):
                if in_flight(channel):
                    busy.append(channel)
                else:  # idle keep-alive (or its response just sent): closed in the next turn
                    channel.will_close = True
            running = pool.active_count + len(pool.queue)  # a client gone, its request still runs
            if not busy and not running:
                cut = 0
                break
            if time.monotonic() >= self.deadline:
                cut = len(busy) + max(0, running - sum(1 for c in busy if c.requests))
                log.warning("stopping: cut %s still running after %.1f s", requests(cut),
                            time.monotonic() - self.began)
                break
        for channel in list(server.active_channels.values()):
            channel.handle_close()
        if running:  # cut in the middle of its work: a daemon thread, it ends with the process
            return cut
        pool.shutdown()  # idle threads: they end at once
        server.close()   # its trigger too, now that no thread will pull it
        return cut

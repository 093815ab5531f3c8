"""The order in which `tcd serve` answers waiting requests: media reads before pages.

waitress hands requests to its threads first come, first served. A player asks for the next
range of its recording every few seconds and stalls when it waits, while a range costs a
fraction of a search or a session page (about 1 ms of CPU against 3-4 ms). So a waiting request
for `/media/` goes ahead of waiting pages, behind the media requests already waiting, in the
order they came: the player stays smooth at a cost to pages of about a millisecond per range.
Pages cannot be starved for long: a range is short, and a player asks for a few per minute.
"""
from __future__ import annotations

from waitress.task import ThreadedTaskDispatcher

MEDIA_PREFIX = "/media/"


def is_media(channel) -> bool:
    """Whether the request a waitress channel waits to have served reads media."""
    try:
        return channel.requests[0].path.startswith(MEDIA_PREFIX)
    except (AttributeError, IndexError, TypeError):
        return False  # anything unexpected waits its turn


class MediaFirst(ThreadedTaskDispatcher):
    """waitress's thread pool with media requests moved ahead of waiting page requests."""

    def add_task(self, task):
        if not is_media(task):
            return super().add_task(task)
        with self.lock:
            queue = self.queue
            # after the media requests already waiting, before the first page request
            at = next((i for i, waiting in enumerate(queue) if not is_media(waiting)), len(queue))
            queue.insert(at, task)
            self.queue_cv.notify()


def dispatcher(threads: int) -> MediaFirst:
    pool = MediaFirst()
    pool.set_thread_count(threads)
    return pool

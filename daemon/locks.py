"""Taking a trio lock without a scheduling round when it is free.

``async with lock`` yields to the scheduler even when the lock is free (trio
makes every ``acquire()`` a full checkpoint).  On a path that takes a lock per
message (the store's writer lock, a session's write lock) that is one more
trip through the run loop for nothing.  :func:`acquire_now` takes a free lock
at once, and is still a cancellation point: a task already cancelled gets
``Cancelled`` without the lock, as it would from ``acquire()``.
"""

from __future__ import annotations

import trio


async def acquire_now(lock: trio.Lock) -> None:
    """``await lock.acquire()``, without the scheduling round when ``lock`` is free."""
    if lock.locked():
        await lock.acquire()
        return
    await trio.lowlevel.checkpoint_if_cancelled()
    lock.acquire_nowait()

"""Taking a trio lock without a scheduling round when it is free.

``async with lock`` yields to the scheduler even when the lock is free (trio
makes every ``acquire()`` a full checkpoint).  On a path that takes a lock per
message (the store's writer lock, a session's write lock) that is one more
trip through the run loop for nothing.  :func:`acquire_now` takes a free lock
at once, and is still a cancellation point: a task already cancelled gets
``Cancelled`` without the lock, as it would from ``acquire()``.

:class:`EagerLock` and :class:`EagerSemaphore` are the same for code that
takes its locks with ``async with`` (py-libp2p: one lock per layer per frame,
see :func:`daemon.p2p.compat.eager_locks`).  Only the scheduling round of a
*free* lock is skipped: a contended one waits in trio's fair FIFO as before,
and a task that never blocks still yields at its next I/O call.
"""

from __future__ import annotations

from types import TracebackType

import trio


async def acquire_now(lock: trio.Lock) -> None:
    """``await lock.acquire()``, without the scheduling round when ``lock`` is free."""
    if lock.locked():
        await lock.acquire()
        return
    await trio.lowlevel.checkpoint_if_cancelled()
    lock.acquire_nowait()


class EagerLock:
    """A :class:`trio.Lock` (wrapped) whose ``acquire`` skips the scheduling round when free."""

    __slots__ = ("_lock",)

    def __init__(self, lock: trio.Lock | None = None) -> None:
        self._lock = lock if lock is not None else trio.Lock()

    async def acquire(self) -> None:
        await acquire_now(self._lock)

    def acquire_nowait(self) -> None:
        self._lock.acquire_nowait()

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def statistics(self) -> trio.LockStatistics:
        return self._lock.statistics()

    async def __aenter__(self) -> None:
        await acquire_now(self._lock)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release()


class EagerSemaphore:
    """A :class:`trio.Semaphore` (wrapped) whose ``acquire`` skips the scheduling round when free."""

    __slots__ = ("_semaphore",)

    def __init__(self, semaphore: trio.Semaphore) -> None:
        self._semaphore = semaphore

    @property
    def value(self) -> int:
        return self._semaphore.value

    async def acquire(self) -> None:
        # A free token means nobody waits: trio hands a released token to a
        # waiter directly, so the value stays 0 while any task is parked.
        if self._semaphore.value == 0:
            await self._semaphore.acquire()
            return
        await trio.lowlevel.checkpoint_if_cancelled()
        self._semaphore.acquire_nowait()

    def acquire_nowait(self) -> None:
        self._semaphore.acquire_nowait()

    def release(self) -> None:
        self._semaphore.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._semaphore.release()

"""Taking a trio lock without a scheduling round when it is free.

``async with lock`` yields to the scheduler even when the lock is free (trio
makes every ``acquire()`` a full checkpoint).  On a path that takes a lock per
message (the store's writer lock, a session's write lock) that is one more
trip through the run loop for nothing.  :func:`acquire_now` takes a free lock
at once, and is still a cancellation point: a task already cancelled gets
``Cancelled`` without the lock, as it would from ``acquire()``.

Those yields were also what kept a busy task fair: py-libp2p's Yamux reader
serves every frame of a 64 KiB Noise message from memory, taking a lock per
frame and nothing else that waits, so a peer sending thousands of tiny frames
would hold the loop for as long as they take.  Every
:data:`EAGER_ACQUISITIONS_PER_YIELD`-th acquisition (of all eager ones in the
process) therefore yields as trio's own would.

:class:`EagerLock` and :class:`EagerSemaphore` are the same for code that
takes its locks with ``async with`` (py-libp2p: one lock per layer per frame,
see :func:`daemon.p2p.compat.eager_locks`).  Only the scheduling round of a
*free* lock is skipped: a contended one waits in trio's fair FIFO as before.
"""

from __future__ import annotations

from types import TracebackType
from typing import Final

import trio

#: Eager acquisitions after which one yields anyway (fairness, see above): about
#: once per small message delivered; a task taking nothing but locks holds the
#: loop for about a millisecond at most (32 Yamux frames).
EAGER_ACQUISITIONS_PER_YIELD: Final = 32

_eager_since_yield = 0


def _must_yield() -> bool:
    global _eager_since_yield
    _eager_since_yield += 1
    if _eager_since_yield < EAGER_ACQUISITIONS_PER_YIELD:
        return False
    _eager_since_yield = 0
    return True


async def acquire_now(lock: trio.Lock) -> None:
    """``await lock.acquire()``, without the scheduling round when ``lock`` is free."""
    if lock.locked() or _must_yield():
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
        if self._semaphore.value == 0 or _must_yield():
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

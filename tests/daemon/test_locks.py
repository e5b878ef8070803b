"""daemon/locks.py: free locks without a scheduling round, contended ones as trio's, fairness kept."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.locks import EAGER_ACQUISITIONS_PER_YIELD, EagerLock, EagerSemaphore, acquire_now


async def _rounds_of_others_during(body: Callable[[], Awaitable[None]]) -> int:
    """How many times a busy neighbour task ran while ``body()`` did its work."""
    ran = 0

    async def neighbour() -> None:
        nonlocal ran
        while True:
            ran += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(neighbour)
        await trio.lowlevel.checkpoint()  # the neighbour is running
        before = ran
        await body()
        after = ran
        nursery.cancel_scope.cancel()
    return after - before


async def test_a_free_lock_is_taken_without_letting_others_run() -> None:
    lock = EagerLock()
    semaphore = EagerSemaphore(trio.Semaphore(1))

    async def take_a_few() -> None:
        for _ in range(EAGER_ACQUISITIONS_PER_YIELD // 4):
            async with lock:
                pass
            async with semaphore:
                pass

    # (The fairness yield may fall inside, once: the neighbour then runs in the
    # batch of that yield and, depending on trio's random batch order, in the
    # next one; with trio's own locks it would run 16 times.)
    assert await _rounds_of_others_during(take_a_few) <= 2


async def test_a_task_taking_only_free_locks_still_yields_now_and_then() -> None:
    lock = EagerLock()
    taken = 10 * EAGER_ACQUISITIONS_PER_YIELD

    async def hog() -> None:
        for _ in range(taken):
            await acquire_now(lock._lock)
            lock.release()

    others = await _rounds_of_others_during(hog)
    assert taken // EAGER_ACQUISITIONS_PER_YIELD - 1 <= others <= taken // EAGER_ACQUISITIONS_PER_YIELD + 1


async def test_a_cancelled_task_gets_cancelled_not_the_lock() -> None:
    lock = EagerLock()
    semaphore = EagerSemaphore(trio.Semaphore(1))
    with trio.CancelScope() as scope:
        scope.cancel()
        await lock.acquire()
    assert scope.cancelled_caught and not lock.locked()
    with trio.CancelScope() as scope:
        scope.cancel()
        await semaphore.acquire()
    assert scope.cancelled_caught and semaphore.value == 1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=12))
def test_contended_locks_are_served_in_arrival_order(delays: list[int]) -> None:
    # Waiters queue in trio's FIFO: whoever asked first gets the lock first,
    # and every holder has it alone.
    async def main() -> list[int]:
        lock = EagerLock()
        order: list[int] = []
        holding = 0

        async def worker(i: int, delay: int) -> None:
            nonlocal holding
            async with lock:
                holding += 1
                assert holding == 1
                order.append(i)
                for _ in range(delay):
                    await trio.lowlevel.checkpoint()
                holding -= 1

        async with trio.open_nursery() as nursery:
            await lock.acquire()  # everyone queues behind us, in start order
            for i, delay in enumerate(delays):
                nursery.start_soon(worker, i, delay)
                await trio.testing.wait_all_tasks_blocked()
            lock.release()
        return order

    assert trio.run(main) == list(range(len(delays)))


async def test_a_semaphore_admits_at_most_its_value() -> None:
    semaphore = EagerSemaphore(trio.Semaphore(3))
    inside = peak = 0

    async def worker() -> None:
        nonlocal inside, peak
        async with semaphore:
            inside += 1
            peak = max(peak, inside)
            await trio.sleep(0.001)
            inside -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(worker)
    assert peak == 3 and semaphore.value == 3

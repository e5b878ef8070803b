"""Store cost per call: what the one-writer-thread discipline and ``synchronous=FULL`` cost.

Theory of operation
-------------------
Every store call the daemon makes goes ``trio -> worker thread (CapacityLimiter(1))
-> sqlite3 -> back``.  This measures, on a real file in a temporary directory:

* ``read direct``      a small read (``meta_get``), called synchronously: SQLite itself;
* ``read via thread``  the same through :meth:`AsyncStore.run`: adds the thread hop;
* ``no-op via thread`` a function that does nothing, through the same path: the hop alone;
* ``write (FULL)``     a committed write (``meta_put``) through the thread: one fsync'd
                       WAL commit, the price of the inbox/outbox durability promise;
* ``inbox commit``     ``inbox_commit`` of a 2 KiB message (what a receive costs before
                       unpacking);
* ``10 tasks write``   ten trio tasks writing at once (they queue on the limiter;
                       the figure is per call, so it shows serialisation, not speed-up).

Each figure is the median of ``--rounds`` windows of ``--calls`` calls, in
microseconds per call.  The machine is shared and its disk is whatever the
container has: fsync times dominate the writes and vary with the host.

Run: ``.venv/bin/python bench/store.py [--calls 500] [--rounds 5] [--dir DIR]`` (``--dir``
on the disk the state will live on: ``/tmp`` may be a tmpfs, where fsync is free).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from daemon.store import AsyncStore, Store

MESSAGE = os.urandom(2048)


async def _window(calls: int, fn: Callable[[int], Awaitable[object]]) -> float:
    start = time.perf_counter()
    for i in range(calls):
        await fn(i)
    return (time.perf_counter() - start) / calls * 1e6


async def run(calls: int, rounds: int, where: str | None) -> dict[str, float]:
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        store = await AsyncStore.open(Path(tmp) / "bench.sqlite3")
        sync: Store = store.sync
        sync.meta_put("k", {"small": "record", "n": 1})
        counter = iter(range(10**9))

        async def read_direct(i: int) -> object:
            return sync.meta_get("k")

        async def read_thread(i: int) -> object:
            return await store.run(sync.meta_get, "k")

        async def noop_thread(i: int) -> object:
            return await store.run(lambda: None)

        async def write(i: int) -> object:
            return await store.run(sync.meta_put, "w", {"n": i})

        async def inbox(i: int) -> object:
            n = next(counter)
            return await store.run(sync.inbox_commit, f"in-{n}", MESSAGE, transport="bench", received=n)

        cases: dict[str, Callable[[int], Awaitable[object]]] = {
            "read direct": read_direct,
            "read via thread": read_thread,
            "no-op via thread": noop_thread,
            "write (FULL)": write,
            "inbox commit": inbox,
        }
        for _ in range(rounds):
            for name, fn in cases.items():
                results.setdefault(name, []).append(await _window(calls, fn))
            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for t in range(10):
                    async def writer(t: int = t) -> None:
                        for i in range(calls // 10):
                            await store.run(sync.meta_put, f"t{t}", {"n": i})
                    nursery.start_soon(writer)
            results.setdefault("10 tasks write", []).append(
                (time.perf_counter() - start) / (calls // 10 * 10) * 1e6
            )
        await store.aclose()
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", help="directory for the database (default: the system temp dir)")
    args = parser.parse_args()
    results = trio.run(run, args.calls, args.rounds, args.dir)
    print(f"{'operation':<20} {'us/call':>10}")
    for name, value in results.items():
        print(f"{name:<20} {value:>10.1f}")


if __name__ == "__main__":
    main()

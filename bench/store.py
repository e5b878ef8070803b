"""Store cost per call: the daemon's commit discipline next to the one it replaced.

Theory of operation
-------------------
:class:`daemon.store.AsyncStore` runs a call's SQL on the trio thread with
``synchronous=NORMAL`` (the commit only reaches the page cache) and, for a
durable call, then waits for an ``fdatasync`` of the WAL in the store's thread;
one sync covers every commit made before it (see the module's *Durability*).
The baseline, measured in the same run on the same disk, is what it replaced
and what a plain design does: the whole call, ``synchronous=FULL`` commit
included, in a worker thread.  Cases, on real files in a temporary directory:

* ``read``               a small read (``meta_get``) through :meth:`AsyncStore.read`;
* ``relaxed write``      ``meta_put`` through :meth:`AsyncStore.run_relaxed` (no fsync);
* ``durable write``      ``meta_put`` through :meth:`AsyncStore.run` (SQL + WAL sync);
* ``durable inbox 2KiB`` ``inbox_commit`` of a 2 KiB message, durable;
* ``16 tasks durable``   sixteen trio tasks writing at once (per call: syncs are shared);
* ``baseline FULL``      ``meta_put`` with ``synchronous=FULL``, run in a worker thread;
* ``baseline 16 tasks``  the same from sixteen tasks (one thread, so serialised);
* ``fdatasync``          a 4 KiB append and ``os.fdatasync`` on the same disk: the floor.

Each figure is the median of ``--rounds`` windows of ``--calls`` calls, in
microseconds of wall time per call, with the process's CPU per call next to it;
ratios are ours / baseline.  The machine is shared and its disk is whatever the
container has: fsync times vary with the host.

Run: ``.venv/bin/python bench/store.py [--calls 400] [--rounds 5] [--dir DIR]`` (``--dir``
on the disk the state will live on: ``/tmp`` may be a tmpfs, where fsync is free).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import nacl.utils
import trio

REPO = Path(__file__).resolve().parent.parent
# This directory holds a protocols.py (the protocols bench): the repository first.
sys.path.insert(0, str(REPO))

from daemon.sealing import KEY_BYTES, RecordSealer  # noqa: E402
from daemon.store import AsyncStore, Store  # noqa: E402

MESSAGE = os.urandom(2048)
TASKS = 16


async def _window(calls: int, fn: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    """(wall us, CPU us) per call of ``fn`` over ``calls`` sequential calls."""
    cpu, start = time.process_time(), time.perf_counter()
    for i in range(calls):
        await fn(i)
    return (time.perf_counter() - start) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6


async def _concurrent(calls: int, fn: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    """The same, with the calls spread over :data:`TASKS` concurrent tasks."""
    per_task = max(1, calls // TASKS)
    cpu, start = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for t in range(TASKS):
            async def writer(t: int = t) -> None:
                for i in range(per_task):
                    await fn(t * per_task + i)
            nursery.start_soon(writer)
    n = per_task * TASKS
    return (time.perf_counter() - start) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def _fdatasync_floor(directory: Path, calls: int) -> tuple[float, float]:
    path = directory / "floor.bin"
    block = os.urandom(4096)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        cpu, start = time.process_time(), time.perf_counter()
        for _ in range(calls):
            os.write(fd, block)
            os.fdatasync(fd)
        return (time.perf_counter() - start) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6
    finally:
        os.close(fd)


async def run(calls: int, rounds: int, where: str | None) -> dict[str, tuple[float, float]]:
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        store = await AsyncStore.open(Path(tmp) / "ours.sqlite3")
        store.sync.use_sealer(RecordSealer(nacl.utils.random(KEY_BYTES)))  # as the wallet does
        base = await trio.to_thread.run_sync(Store.open, Path(tmp) / "baseline.sqlite3")  # FULL
        sync: Store = store.sync
        await store.run(sync.meta_put, "k", {"small": "record", "n": 1})
        counter = iter(range(10**9))
        limiter = trio.CapacityLimiter(1)  # one writer thread, as the old store had

        async def read(i: int) -> object:
            return await store.read(sync.meta_get, "k")

        async def relaxed(i: int) -> object:
            return await store.run_relaxed(sync.meta_put, "r", {"n": i})

        async def durable(i: int) -> object:
            return await store.run(sync.meta_put, f"d{i % 16}", {"n": i})

        async def inbox(i: int) -> object:
            n = next(counter)
            return await store.run(sync.inbox_commit, f"in-{n}", MESSAGE, transport="bench", received=n)

        async def baseline(i: int) -> object:
            return await trio.to_thread.run_sync(base.meta_put, f"d{i % 16}", {"n": i}, limiter=limiter)

        sequential: dict[str, Callable[[int], Awaitable[object]]] = {
            "read": read,
            "relaxed write": relaxed,
            "durable write": durable,
            "baseline FULL": baseline,
            "durable inbox 2KiB": inbox,
        }
        for _ in range(rounds):
            for name, fn in sequential.items():
                results.setdefault(name, []).append(await _window(calls, fn))
            results.setdefault("16 tasks durable", []).append(await _concurrent(calls, durable))
            results.setdefault("baseline 16 tasks", []).append(await _concurrent(calls, baseline))
            results.setdefault("fdatasync", []).append(_fdatasync_floor(Path(tmp), calls // 4))
        syncs, durable_commits = store.syncs, store.durable_groups
        await store.aclose()
        await trio.to_thread.run_sync(base.close)
    print(f"(ours: {durable_commits} durable commits made durable by {syncs} WAL syncs)")
    return {
        name: (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
        for name, values in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", help="directory for the database (default: the system temp dir)")
    args = parser.parse_args()
    results = trio.run(run, args.calls, args.rounds, args.dir)
    print(f"{'operation':<20} {'wall us/call':>12} {'CPU us/call':>12}")
    for name, (wall, cpu) in results.items():
        print(f"{name:<20} {wall:>12.1f} {cpu:>12.1f}")
    for ours, theirs in (("durable write", "baseline FULL"), ("16 tasks durable", "baseline 16 tasks")):
        print(f"{ours} / {theirs}: wall {results[ours][0] / results[theirs][0]:.2f}x, "
              f"CPU {results[ours][1] / results[theirs][1]:.2f}x")


if __name__ == "__main__":
    main()

"""Group commit (daemon.store): many callers, one transaction, each reply only once durable."""

from __future__ import annotations

import errno
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import daemon.store as store_module
from daemon.errors import StoreError
from daemon.store import (
    CHECKPOINT_EVERY_COMMITS,
    INLINE_SYNC_MAX_SECONDS,
    SLOW_SYNC_BACKOFF,
    SYNC_AVERAGE_OVER,
    AsyncStore,
    Store,
)

from .stores import open_async_store, open_store

REPO = Path(__file__).resolve().parents[2]


class Boom(Exception):
    """A call that fails after writing (its savepoint must roll back)."""


def _put(store: Store, name: str, value: int) -> int:
    store.meta_put(name, value)
    return value


def _put_then_fail(store: Store, name: str, value: int) -> int:
    store.meta_put(name, value)
    raise Boom(name)


# An op: (kind, name, value); kind 0 = write, 1 = write then raise, 2 = read.
OPS = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from("abcd"), st.integers(0, 1000)), min_size=1, max_size=30
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, cuts=st.lists(st.integers(1, 30), max_size=10))
def test_any_grouping_gives_each_call_what_running_it_alone_would(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[int, str, int]], cuts: list[int],
) -> None:
    store = open_store(tmp_path_factory.mktemp("g") / "g.sqlite3")
    model: dict[str, int] = {}
    try:
        # Split the ops into consecutive groups at the cut points.
        bounds = sorted({c for c in cuts if c < len(ops)} | {0, len(ops)})
        for lo, hi in itertools.pairwise(bounds):
            group = ops[lo:hi]
            calls = []
            for kind, name, value in group:
                fn = {0: _put, 1: _put_then_fail}.get(kind)
                if fn is None:
                    calls.append(lambda name=name: store.meta_get(name))
                else:
                    calls.append(lambda fn=fn, name=name, value=value: fn(store, name, value))
            results = store.run_group(calls)
            for (kind, name, value), result in zip(group, results, strict=True):
                if kind == 0:
                    assert result.unwrap() == value
                    model[name] = value
                elif kind == 1:
                    with pytest.raises(Boom):
                        result.unwrap()
                else:
                    assert result.unwrap() == model.get(name)
            assert not store._conn.in_transaction
            assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL on its own
        for name in "abcd":
            assert store.meta_get(name) == model.get(name)
    finally:
        store.close()


async def test_concurrent_callers_share_fsyncs_and_each_gets_its_own_result(tmp_path: Path) -> None:
    store = await open_async_store(tmp_path / "c.sqlite3")
    try:
        results: dict[int, object] = {}

        async def caller(i: int) -> None:
            try:
                if i % 5 == 4:
                    await store.run(_put_then_fail, store.sync, f"k{i}", i)
                else:
                    results[i] = await store.run(_put, store.sync, f"k{i}", i)
            except Boom:
                results[i] = "boom"

        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(caller, i)
        assert results == {i: ("boom" if i % 5 == 4 else i) for i in range(40)}
        assert store.calls == 40 and store.syncs < 10  # fsyncs were shared
        for i in range(40):
            expected = None if i % 5 == 4 else i
            assert await store.run(store.sync.meta_get, f"k{i}") == expected
    finally:
        await store.aclose()


async def test_a_cancelled_waiter_is_withdrawn_and_a_taken_one_finishes(tmp_path: Path) -> None:
    store = await open_async_store(tmp_path / "x.sqlite3")
    try:
        with trio.CancelScope() as scope:
            scope.cancel()
            await store.run(_put, store.sync, "never", 1)
        assert await store.run(store.sync.meta_get, "never") is None
        # Submitted (ordered) calls run even if their submitter only waits later.
        pending = [store.submit(lambda i=i: _put(store.sync, f"p{i}", i)) for i in range(5)]
        assert [await p.wait() for p in pending] == list(range(5))
    finally:
        await store.aclose()
    with pytest.raises(StoreError):
        await store.run(store.sync.meta_get, "p1")


async def test_relaxed_calls_commit_and_later_durable_ones_see_them(tmp_path: Path) -> None:
    store = await open_async_store(tmp_path / "r.sqlite3")
    try:
        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(store.run_relaxed, _put, store.sync, f"r{i}", i)
        assert store.syncs == 0  # relaxed commits wait for no fsync
        assert await store.run(store.sync.meta_get, "r9") == 9
        assert store.syncs == 1  # a durable call does, and that one covers the relaxed ones too
    finally:
        await store.aclose()


async def test_one_fsync_covers_every_commit_made_before_it(tmp_path: Path) -> None:
    store = await open_async_store(tmp_path / "s.sqlite3")
    try:
        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(store.run, _put, store.sync, f"s{i}", i)
        assert store.durable_groups >= 1 and 1 <= store.syncs < 40
        assert store.syncs <= store.durable_groups
        synced = store.syncs
        await store.durable()  # nothing left to sync
        assert store.syncs == synced
    finally:
        await store.aclose()


async def test_a_failed_fsync_fails_durable_calls_until_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel reporting EIO on fsync cannot be produced here; os.fdatasync is
    # replaced (the OS, not our code).
    store = await open_async_store(tmp_path / "f.sqlite3")
    try:
        assert await store.run(_put, store.sync, "ok", 1) == 1

        def eio(fd: int) -> None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

        monkeypatch.setattr(os, "fdatasync", eio)
        with pytest.raises(StoreError, match="failed to sync"):
            await store.run(_put, store.sync, "lost", 2)
        monkeypatch.undo()
        # Even with a disk that syncs again: what was written since is not promised.
        with pytest.raises(StoreError, match="restart the daemon"):
            await store.run(_put, store.sync, "later", 3)
        assert await store.run_relaxed(store.sync.meta_get, "ok") == 1
    finally:
        await store.aclose()


async def test_the_wal_is_checkpointed_and_stays_bounded(tmp_path: Path) -> None:
    db = tmp_path / "w.sqlite3"
    store = await open_async_store(db)
    value = "x" * 4096
    commits = 8 * CHECKPOINT_EVERY_COMMITS
    try:
        for i in range(commits):
            await store.run_relaxed(store.sync.meta_put, f"w{i % 50}", value)
            if i % 10 == 0:
                await trio.sleep(0.002)  # let the checkpoint thread's reports in
        with trio.fail_after(10):
            while store.checkpoints < 2:
                await trio.sleep(0.01)
        # Unchecked, every commit would append ~2 pages (8 KiB): ~6 MiB here.
        wal = db.with_name(db.name + "-wal").stat().st_size
        assert wal < commits * 8192 / 3, wal
    finally:
        await store.aclose()
    assert not db.with_name(db.name + "-wal").exists() or db.with_name(db.name + "-wal").stat().st_size == 0


async def test_relaxed_call_under_another_process_lock_waits_in_the_thread_not_the_loop(
    tmp_path: Path,
) -> None:
    # Relaxed groups run on the trio thread; one that meets another process's write
    # lock must not block the loop (ticks go on) and must still commit once it is free.
    db = tmp_path / "l.sqlite3"
    store = await open_async_store(db)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        ticks = 0
        done = trio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await trio.sleep(0.01)

        async def release_later() -> None:
            await trio.sleep(0.3)
            other.execute("COMMIT")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            nursery.start_soon(release_later)
            assert await store.run_relaxed(_put, store.sync, "locked", 7) == 7
            done.set()
        assert ticks >= 10, "the trio loop was blocked while the lock was held"
        assert await store.read(store.sync.meta_get, "locked") == 7
        # The loop's connection never waits for a lock (the thread's wait was its own).
        assert store.sync._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0
    finally:
        other.close()
        await store.aclose()


# A writer process: 16 tasks each put keys through one AsyncStore and print each key
# once its call returned (so: once the store says it is durable).
_WRITER = """
import sys, trio
from pathlib import Path
from daemon.store import AsyncStore

async def main():
    store = await AsyncStore.open(Path(sys.argv[1]))
    async def writer(w):
        for n in range(100000):
            key = f"w{w}-{n}"
            await store.run(store.sync.meta_put, key, n)
            print(key, flush=True)
    async with trio.open_nursery() as nursery:
        for w in range(16):
            nursery.start_soon(writer, w)

trio.run(main)
"""

#: Replies read before the writer is killed.
KILL_AFTER_REPLIES = 400
WRITER_DEADLINE = 60.0


def test_every_acknowledged_write_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "k.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db)], cwd=REPO, stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    acknowledged: list[str] = []
    deadline = time.monotonic() + WRITER_DEADLINE
    try:
        assert proc.stdout is not None
        while len(acknowledged) < KILL_AFTER_REPLIES and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acknowledged.append(line.decode().strip())
        proc.send_signal(signal.SIGKILL)
        # Replies already written to the pipe were acknowledged too.
        rest = proc.stdout.read().decode().split()
        acknowledged.extend(rest)
    finally:
        proc.kill()
        proc.wait()
    assert len(acknowledged) >= KILL_AFTER_REPLIES, "the writer did not get going"
    store = open_store(db)
    try:
        missing = [k for k in acknowledged if store.meta_get(k) is None]
        assert not missing
    finally:
        store.close()


def test_a_threads_records_are_found_by_index(tmp_path: Path) -> None:
    store = open_store(tmp_path / "i.sqlite3")
    try:
        plan = store._conn.execute(
            "EXPLAIN QUERY PLAN SELECT record FROM protocol_records WHERE thid = ? ORDER BY updated DESC",
            ("t",),
        ).fetchall()
        assert any("protocol_records_thid" in str(row) for row in plan)
    finally:
        store.close()


def test_one_store_serves_two_trio_runs_in_turn(tmp_path: Path) -> None:
    # The store's thread hands results back through the trio run that started it;
    # a later run (a CLI doing two trio.run() calls) must get a thread of its own.
    async def opened() -> AsyncStore:
        return await open_async_store(tmp_path / "t.sqlite3")

    store = trio.run(opened)

    async def put(name: str) -> int:
        return await store.run(_put, store.sync, name, 1)

    assert trio.run(put, "first") == 1
    assert trio.run(put, "second") == 1
    trio.run(store.aclose)
    reopened = open_store(tmp_path / "t.sqlite3")
    try:
        assert reopened.meta_get("first") == 1 and reopened.meta_get("second") == 1
    finally:
        reopened.close()


async def test_the_wal_starts_over_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Commits with no pause between them: a checkpoint running beside the writer
    # never catches up, so SQLite never starts the WAL over and it grew by every
    # commit (~8 MiB here).  Past WAL_RESTART_BYTES the next group waits for a
    # checkpoint that no commit races, and the WAL starts over.
    limit = 256 * 1024
    monkeypatch.setattr(store_module, "WAL_RESTART_BYTES", limit)
    db = tmp_path / "steady.sqlite3"
    store = await open_async_store(db)
    wal = db.with_name(db.name + "-wal")
    value = "x" * 4096
    largest = 0
    try:
        for i in range(10 * CHECKPOINT_EVERY_COMMITS):
            await store.run_relaxed(store.sync.meta_put, f"s{i % 50}", value)
            largest = max(largest, wal.stat().st_size)
        assert store.wal_restarts >= 1
        # Between restarts: what the limit allows, plus the commits made while
        # the last background checkpoint ran (each ~2 pages).
        assert largest < 4 * limit + CHECKPOINT_EVERY_COMMITS * 8192, largest
        assert await store.run_relaxed(store.sync.meta_get, "s7") == value
    finally:
        await store.aclose()
    reopened = open_store(db)
    try:
        assert all(reopened.meta_get(f"s{i}") == value for i in range(50))
    finally:
        reopened.close()


async def test_a_slow_fsync_keeps_the_next_ones_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Syncs run on the trio thread only while the disk proves fast: a moving
    # average of their times under INLINE_SYNC_MAX_SECONDS.  One sync slowed by a
    # busy machine does not move it over; a slow disk does at its first sync and
    # sends the next SLOW_SYNC_BACKOFF to the store's thread.  (Disks of a known
    # speed cannot be had here: os.fdatasync is replaced, first by an instant one,
    # then by slow ones.)
    store = await open_async_store(tmp_path / "i.sqlite3")
    real = os.fdatasync
    loop_thread = threading.get_ident()
    where: list[int] = []

    def sleeping(seconds: float) -> Callable[[int], None]:
        def sync(fd: int) -> None:
            where.append(threading.get_ident())
            time.sleep(seconds)
            real(fd)
        return sync

    try:
        monkeypatch.setattr(os, "fdatasync", lambda fd: None)
        for i in range(5):
            await store.run(_put, store.sync, "fast", i)
        assert store.syncs == 5 and store.inline_syncs == 4  # the first one timed the disk
        # An outlier (twice the limit, once) leaves the syncs on the loop.
        monkeypatch.setattr(os, "fdatasync", sleeping(2 * INLINE_SYNC_MAX_SECONDS))
        await store.run(_put, store.sync, "outlier", 1)
        monkeypatch.setattr(os, "fdatasync", lambda fd: None)
        for i in range(3):
            await store.run(_put, store.sync, "fast again", i)
        assert where == [loop_thread] and store.inline_syncs == 8
        where.clear()
        # A slow disk: one sync on the loop (it could not be known), then the thread only.
        monkeypatch.setattr(os, "fdatasync", sleeping(2 * SYNC_AVERAGE_OVER * INLINE_SYNC_MAX_SECONDS))
        for i in range(SLOW_SYNC_BACKOFF + 1):
            await store.run(_put, store.sync, "slow", i)
        assert where[0] == loop_thread and loop_thread not in where[1:]
        assert store.inline_syncs == 9
        # After the backoff one sync probes the disk on the loop again: still slow.
        where.clear()
        for i in range(2):
            await store.run(_put, store.sync, "probe", i)
        assert where == [loop_thread, where[1]] and where[1] != loop_thread
    finally:
        await store.aclose()

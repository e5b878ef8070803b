"""The message path's shortcuts (issue 5's latency work) keep the store's promises.

Real SQLite files in tmp dirs, real agents; the two-daemon tests cover the same
path over libp2p end to end.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from daemon.agent import Agent
from daemon.config import Config, load_config
from daemon.conversations import reject_inbound
from daemon.errors import DaemonError, StoreError
from daemon.events import EventBus
from daemon.store import (
    OUTBOX_QUEUED,
    OUTBOX_SENDING,
    InboxRow,
    OutboxFullError,
    Store,
)

from .stores import open_async_store, open_store

BASIC = "https://didcomm.org/basicmessage/2.0/message"
#: How long a test polls for background work before failing.
DEADLINE = 10.0


def make_config(root: Path, **env: str) -> Config:
    return load_config(env={"HOME": str(root), "DIDCOMMD_DAEMON_STATE_DIR": str(root / "state"), **env})


def _put(store: Store, id: str, to: str = "did:ex:b", **kw: Any) -> Any:
    return store.outbox_put(id, to_did=to, from_did=None, packed=b"x", created=10, **kw)


async def _poll(check: Callable[[], Any]) -> Any:
    with trio.fail_after(DEADLINE):
        while True:
            value = check()
            if value:
                return value
            await trio.sleep(0.01)


# -- the store ------------------------------------------------------------------------------


def test_outbox_put_checks_the_pending_limit_in_its_own_transaction(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.sqlite3")
    try:
        _put(store, "a1", max_pending=2)
        sending = _put(store, "a2", max_pending=2, state=OUTBOX_SENDING)
        assert (sending.state, sending.attempts) == (OUTBOX_SENDING, 1)
        with pytest.raises(OutboxFullError) as refused:
            _put(store, "a3", max_pending=2)
        assert refused.value.code == "unavailable"
        assert "2 messages to did:ex:b are still undelivered" in refused.value.message
        assert store.outbox_get("a3") is None
        # Another recipient, and a message that is no longer pending, do not count.
        _put(store, "c1", to="did:ex:c", max_pending=2)
        store.outbox_transition("a2", "delivered", now=11)
        assert _put(store, "a3", max_pending=2).state == OUTBOX_QUEUED
        with pytest.raises(StoreError):
            _put(store, "bad", state="delivered")
        # A 'sending' row goes back to the queue at the next start, like any other.
        assert store.outbox_requeue_sending(12) == 0
        _put(store, "a4", state=OUTBOX_SENDING)
        assert store.outbox_requeue_sending(12) == 1
        row = store.outbox_get("a4")
        assert row is not None and row.state == OUTBOX_QUEUED
    finally:
        store.close()


async def test_on_executed_runs_before_the_commit_returns_and_not_on_failure(tmp_path: Path) -> None:
    store = await open_async_store(tmp_path / "s.sqlite3")
    try:
        seen: list[Any] = []
        pending = store.submit(lambda: _put(store.sync, "m1"), on_executed=seen.append)
        row = await pending.wait()
        assert [r.id for r in seen] == ["m1"] and row.id == "m1"

        failed: list[Any] = []
        pending = store.submit(lambda: _put(store.sync, "m1"), on_executed=failed.append)
        with pytest.raises(StoreError):
            await pending.wait()
        assert failed == []
    finally:
        await store.aclose()


async def test_reads_see_queued_writes_and_run_inline_only_when_idle(tmp_path: Path) -> None:
    store = await open_async_store(tmp_path / "s.sqlite3")
    try:
        groups = store.groups
        assert await store.read(store.sync.outbox_pending_count, "did:ex:b") == 0
        assert store.groups == groups  # no round trip through the store's thread
        pending = store.submit(lambda: _put(store.sync, "q1"))
        # Busy: the inline read declines, the ordered read waits for the write.
        assert store.read_if_idle(store.sync.outbox_pending_count, "did:ex:b") is None
        assert await store.read(store.sync.outbox_pending_count, "did:ex:b") == 1
        await pending.wait()
        assert store.read_if_idle(store.sync.outbox_pending_count, "did:ex:b") == 1
    finally:
        await store.aclose()


# -- events ---------------------------------------------------------------------------------


async def test_the_background_flusher_stores_events_without_making_callers_wait(tmp_path: Path) -> None:
    store = await open_async_store(tmp_path / "s.sqlite3")
    try:
        bus = await EventBus.open(store)
        # Without the flusher, flush_soon is a flush.
        bus.publish("one", {})
        await bus.flush_soon()
        assert [e["kind"] for e in store.sync.events_since(0)] == ["one"]
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.run_flusher)
            groups = store.groups
            for n in range(5):
                bus.publish("many", {"n": n})
                await bus.flush_soon()
            assert store.groups == groups  # nobody waited for a commit
            await _poll(lambda: len(store.sync.events_since(1)) == 5)
            nursery.cancel_scope.cancel()
        bus.publish("after", {})
        await bus.flush_soon()  # the flusher is gone: a real flush again
        assert store.sync.events_since(6)[0]["kind"] == "after"
    finally:
        await store.aclose()


# -- the agent ------------------------------------------------------------------------------


async def test_send_refuses_past_the_pending_limit(tmp_path: Path) -> None:
    config = make_config(tmp_path / "a", DIDCOMMD_DELIVERY_MAX_PENDING_PER_PEER="2")
    agent = await Agent.open(config)
    try:
        await agent.did_create("peer")
        to = (await agent.did_create("key"))["did"]
        for n in range(2):
            assert (await agent.message_send(to, BASIC, {"n": n}))["state"] == "queued"
        with pytest.raises(DaemonError) as refused:
            await agent.message_send(to, BASIC, {"n": 2})
        assert refused.value.code == "unavailable"
        assert "max_pending_per_peer = 2" in refused.value.message
        assert (await agent.status())["outbox_pending"] == 2
    finally:
        await agent.aclose()


async def test_our_dids_are_cached_and_a_miss_reads_the_store_again(tmp_path: Path) -> None:
    config = make_config(tmp_path / "a")
    agent = await Agent.open(config)
    try:
        first = (await agent.did_create("key"))["did"]
        to = (await agent.did_create("key"))["did"]
        sent = await agent.message_send(to, BASIC, {})
        assert (await agent.outbox_get(sent["id"]))["from"] == first
        # A DID of ours the cache has not seen (written by another process, as
        # `didcommd wallet` does) is found by reading the store again.
        row = agent.store.sync.did_get(to)
        assert row is not None
        agent.store.sync.did_put(row.__class__("did:example:elsewhere", True, "example", None, 1, {}))
        with pytest.raises(DaemonError, match="not one of our DIDs"):
            await agent.message_send(to, BASIC, {}, frm="did:example:nobody")
        assert "did:example:elsewhere" in (agent._own_dids or [])
    finally:
        await agent.aclose()


async def test_bytes_received_before_are_a_duplicate_even_if_they_no_longer_unpack(tmp_path: Path) -> None:
    alice = await Agent.open(make_config(tmp_path / "alice"))
    bob = await Agent.open(make_config(tmp_path / "bob"))
    try:
        await alice.did_create("key")
        bob_did = (await bob.did_create("key"))["did"]
        sent = await alice.message_send(bob_did, BASIC, {"content": "hi"})
        packed = (await alice.outbox_get(sent["id"]))["packed"]
        assert (await bob.message_receive(packed))["state"] == "received"
        ref = (await bob.message_get(sent["id"]))["id"]
        stored = bob.store.sync.inbox_get(ref)
        assert stored is not None
        # The commit-side check (what a busy store relies on): a refusal of the same
        # bytes changes nothing and says so.
        fresh = InboxRow(0, stored.ref, None, None, "pending", "libp2p", 1, stored.packed, {})
        assert not await bob.store.run(reject_inbound, bob.store.sync, fresh, {"reason": "late"})
        again = bob.store.sync.inbox_get(ref)
        assert again is not None and again.state == "received"
        assert (await bob.message_receive(packed))["state"] == "duplicate"
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_with_the_sender_running_the_limit_still_holds_and_messages_wait_for_retry(
    tmp_path: Path,
) -> None:
    from daemon.p2p.endpoint import service_endpoint
    from daemon.p2p.identity import PeerIdentity

    config = make_config(
        tmp_path / "a",
        DIDCOMMD_DELIVERY_MAX_PENDING_PER_PEER="2",
        DIDCOMMD_P2P_LISTEN="/ip4/127.0.0.1/tcp/0",
        DIDCOMMD_P2P_MDNS="false",
    )
    agent = await Agent.open(config)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(agent.serve)
            await agent.did_create("key")
            # A peer that is not there: port 1 on loopback refuses the dial.
            nobody = PeerIdentity.generate().peer_id
            service = {"id": "#didcomm-1", "type": "DIDCommMessaging",
                       "serviceEndpoint": service_endpoint(nobody, ["/ip4/127.0.0.1/tcp/1"])}
            to = (await agent.did_create("peer", services=[service]))["did"]
            ids = [(await agent.message_send(to, BASIC, {"n": n}))["id"] for n in range(2)]
            with pytest.raises(DaemonError) as refused:
                await agent.message_send(to, BASIC, {"n": 2})
            assert refused.value.code == "unavailable"
            # Both were handed to the sender at once, failed to connect and wait for a retry.
            await _poll(lambda: agent.sender.retried >= 2)
            for id in ids:
                row = await agent.message_get(id)
                # (A retry may already be under way on a slow machine.)
                assert row["state"] in ("queued", "sending") and row["attempts"] >= 1 and row["last_error"]
            nursery.cancel_scope.cancel()
    finally:
        await agent.aclose()


async def test_a_flush_cancelled_behind_a_busy_store_keeps_its_events(tmp_path: Path) -> None:
    import threading
    import time

    store = await open_async_store(tmp_path / "s.sqlite3")
    try:
        bus = await EventBus.open(store)
        started = threading.Event()

        def slow() -> None:
            started.set()
            time.sleep(0.2)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.run, slow)
            await _poll(started.is_set)  # the store's thread is busy: the flush queues behind it
            bus.publish("kept", {})
            with trio.move_on_after(0.01):
                await bus.flush()
        assert [e["kind"] for e in store.sync.events_since(0)] == ["kept"]
    finally:
        await store.aclose()

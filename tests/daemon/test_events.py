"""The event bus as a specification: numbering, persistence, live streams, replay, slow readers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon import events as eventsmod
from daemon.errors import DaemonError
from daemon.events import EventBus
from daemon.store import AsyncStore

from .stores import open_async_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    s = await open_async_store(tmp_path / "events.sqlite3")
    yield s
    await s.aclose()


async def drain(channel: trio.MemoryReceiveChannel[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    out = []
    with trio.fail_after(5):
        for _ in range(n):
            out.append(await channel.receive())
    return out


async def test_events_are_numbered_stored_and_numbering_survives_a_restart(tmp_path: Path) -> None:
    s = await open_async_store(tmp_path / "e.sqlite3")
    bus = await EventBus.open(s)
    first = bus.publish("did.created", {"did": "did:ex:1"})
    second = bus.publish("message.received", {"id": "m"})
    assert (first["seq"], second["seq"]) == (1, 2)
    assert set(first) == {"seq", "kind", "time", "data"}
    assert first["time"].endswith("Z") and "T" in first["time"]
    await bus.close()
    await s.aclose()

    s = await open_async_store(tmp_path / "e.sqlite3")
    bus = await EventBus.open(s)
    assert bus.last_seq == 2
    assert bus.publish("x", {})["seq"] == 3
    stored = await s.run(s.sync.events_since, 0)
    assert [(e["seq"], e["kind"]) for e in stored] == [(1, "did.created"), (2, "message.received")]
    await s.aclose()


async def test_after_a_crash_numbering_jumps_past_what_may_have_been_seen(tmp_path: Path) -> None:
    """A bus that never closed may have handed out numbers it never stored; the next one
    never gives them again (a client resuming with since= would miss its events)."""
    s = await open_async_store(tmp_path / "e.sqlite3")
    bus = await EventBus.open(s)
    bus.publish("a", {})
    await bus.flush()
    seen = bus.publish("b", {})  # streamed live, never stored: then the process dies
    await s.aclose()

    s = await open_async_store(tmp_path / "e.sqlite3")
    bus = await EventBus.open(s)
    nxt = bus.publish("c", {})
    assert nxt["seq"] > seen["seq"] and nxt["seq"] == 1 + eventsmod.MAX_UNFLUSHED + 1
    # A clean close after that: the next bus goes on from the newest stored event again.
    await bus.close()
    await s.aclose()
    s = await open_async_store(tmp_path / "e.sqlite3")
    bus = await EventBus.open(s)
    assert bus.publish("d", {})["seq"] == nxt["seq"] + 1
    await s.aclose()


async def test_live_subscribers_get_what_they_asked_for(store: AsyncStore) -> None:
    bus = await EventBus.open(store)
    async with bus.subscribe() as everything, bus.subscribe(kinds={"message.received"}) as messages:
        assert bus.subscriber_count == 2
        bus.publish("did.created", {"did": "d"})
        bus.publish("message.received", {"id": "m1"})
        bus.publish("message.rejected", {"id": "m2"})
        got_all = await drain(everything, 3)
        got_msgs = await drain(messages, 1)
    assert [e["kind"] for e in got_all] == ["did.created", "message.received", "message.rejected"]
    assert [e["data"] for e in got_msgs] == [{"id": "m1"}]
    assert bus.subscriber_count == 0


async def test_since_replays_stored_events_then_continues_live_without_gap_or_repeat(
    store: AsyncStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventsmod, "REPLAY_PAGE", 7)  # several pages
    bus = await EventBus.open(store)
    for i in range(40):
        bus.publish("k", {"i": i})
    await bus.flush()
    for i in range(40, 45):
        bus.publish("k", {"i": i})  # published but not yet flushed
    async with bus.subscribe(since=10) as channel:
        first = await drain(channel, 10)
        # Published while the replay is still going on.
        for i in range(45, 60):
            bus.publish("k", {"i": i})
        rest = await drain(channel, 40)
        with trio.move_on_after(0.05):
            extra = await channel.receive()
            raise AssertionError(f"unexpected extra event {extra}")
    seqs = [e["seq"] for e in first + rest]
    assert seqs == list(range(11, 61))


async def test_a_slow_subscriber_is_dropped_with_an_overflow_event(
    store: AsyncStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventsmod, "SUBSCRIBER_BUFFER", 20)
    monkeypatch.setattr(eventsmod, "CHANNEL_BUFFER", 4)
    bus = await EventBus.open(store)
    async with bus.subscribe() as slow, bus.subscribe(kinds={"rare"}) as other:
        await trio.testing.wait_all_tasks_blocked()
        # The publisher never waits, however far behind the reader is.
        with trio.fail_after(1):
            for i in range(200):
                bus.publish("k", {"i": i})
        bus.publish("rare", {})
        received = []
        with trio.fail_after(5):
            async for event in slow:
                received.append(event)
        assert (await other.receive())["kind"] == "rare"
    last = received[-1]
    assert last["kind"] == "overflow"
    assert last["data"]["resume_since"] == received[-2]["seq"]
    assert len(received) < 200
    # The dropped reader catches up from the store with since=.
    await bus.flush()
    async with bus.subscribe(since=last["data"]["resume_since"]) as again:
        caught_up = await drain(again, 201 - last["data"]["resume_since"])
    assert caught_up[-1]["kind"] == "rare"


async def test_subscriber_limit(store: AsyncStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventsmod, "MAX_SUBSCRIBERS", 1)
    bus = await EventBus.open(store)
    async with bus.subscribe():
        with pytest.raises(DaemonError, match="already 1 event subscribers"):
            async with bus.subscribe():
                pass


async def test_a_bus_without_a_store_still_streams() -> None:
    bus = EventBus(None)
    async with bus.subscribe(since=0) as channel:
        bus.publish("k", {"a": 1})
        assert (await channel.receive())["data"] == {"a": 1}
    await bus.flush()


# A schedule: bursts published without yielding (n > 0), or the reader taking up
# to -n events (n < 0), with a scheduling round after each step.
SCHEDULES = st.lists(st.integers(-300, 1500).filter(bool), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(schedule=SCHEDULES)
def test_a_live_stream_is_in_order_without_gaps_until_an_overflow_ends_it(schedule: list[int]) -> None:
    # Events reach a subscriber straight into its channel or through the feeder
    # task's buffer; whichever way, it sees every event once, in order, and an
    # overflow only once it is SUBSCRIBER_BUFFER events behind, and then last.
    async def run() -> None:
        bus = EventBus(None)
        seen: list[dict[str, Any]] = []
        published = 0
        async with bus.subscribe() as channel:
            await trio.testing.wait_all_tasks_blocked()
            for step in schedule:
                if step > 0:
                    for _ in range(step):
                        bus.publish("tick", {})
                    published += step
                else:
                    for _ in range(-step):
                        try:
                            seen.append(channel.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                await trio.testing.wait_all_tasks_blocked()
            with trio.move_on_after(1):
                async for event in channel:
                    seen.append(event)
                    if event["kind"] == eventsmod.OVERFLOW:
                        break
                    if event["seq"] == published:
                        break
        ticks = [e["seq"] for e in seen if e["kind"] == "tick"]
        assert ticks == list(range(1, len(ticks) + 1))
        overflow = [e for e in seen if e["kind"] == eventsmod.OVERFLOW]
        if overflow:
            assert seen[-1] is overflow[0] and len(overflow) == 1
            assert overflow[0]["data"]["resume_since"] == (ticks[-1] if ticks else 0)
            # Dropped only after falling that far behind: everything buffered came first.
            assert published > len(ticks) >= eventsmod.SUBSCRIBER_BUFFER
        else:
            assert len(ticks) == published

    trio.run(run)

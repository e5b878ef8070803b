"""The control clients: async (trio) and blocking, against the real daemon and the in-process server."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import trio

from daemon.client import (
    UNAVAILABLE_HINT,
    Client,
    ConnectionClosedError,
    ControlError,
    DaemonUnavailableError,
    SyncClient,
    default_socket_path,
)
from daemon.control import Limits

from .conftest import Daemon, Served, serve_control


def test_no_daemon_is_unavailable_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(DaemonUnavailableError) as info:
        SyncClient.connect(tmp_path / "control.sock")
    assert info.value.code == "unavailable"
    assert "no such socket" in info.value.message and UNAVAILABLE_HINT in info.value.message


def test_a_stale_socket_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(path))  # bound, never listening: what a crashed daemon leaves
    with pytest.raises(DaemonUnavailableError, match="nobody is listening"):
        SyncClient.connect(path)


async def test_async_connect_to_nothing_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DaemonUnavailableError):
        await Client.connect(tmp_path / "control.sock")


def test_default_socket_path_is_the_daemons(tmp_path: Path) -> None:
    base = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    assert default_socket_path({**base, "DIDCOMMD_CONTROL_SOCKET": "/x/y.sock"}) == Path("/x/y.sock")
    assert default_socket_path({**base, "XDG_RUNTIME_DIR": "/run/user/7"}) == Path("/run/user/7/didcommd/control.sock")
    cfg = tmp_path / "cfg" / "didcommd"
    cfg.mkdir(parents=True)
    (cfg / "didcommd.toml").write_text(f'[control]\nsocket = "{tmp_path}/mine.sock"\n')
    assert default_socket_path({**base, "XDG_RUNTIME_DIR": "/run/user/7"}) == tmp_path / "mine.sock"


def test_sync_client_calls_and_typed_errors(shared_daemon: Daemon) -> None:
    with shared_daemon.client() as c:
        created = c.call("did.create", {"method": "key", "label": "sync"})
        assert created["did"].startswith("did:key:")
        assert c.call("did.resolve", did=created["did"])["id"] == created["did"]
        with pytest.raises(ControlError) as info:
            c.call("did.resolve", did="did:key:zNotAKey")
        assert info.value.code in ("did", "not_found", "invalid_params")
        assert info.value.message and str(info.value).endswith(f"({info.value.code})")
        with pytest.raises(ControlError) as info:
            c.call("did.create", method="web")
        assert info.value.code == "invalid_params"
        # The connection is still good after errors.
        assert c.call("status")["dids"] >= 1


def test_sync_client_events(shared_daemon: Daemon) -> None:
    with shared_daemon.client() as watcher:
        watcher.subscribe(["did.created"])
        did = shared_daemon.call("did.create", label="evented")["did"]
        event = next(watcher.events(timeout=5))
    assert event["data"]["did"] == did
    assert event["kind"] == "did.created" and isinstance(event["seq"], int)


def test_sync_client_replays_stored_events(shared_daemon: Daemon) -> None:
    did = shared_daemon.call("did.create", label="replayed")["did"]
    with shared_daemon.client() as c:
        c.subscribe(["did.created"], since=0)
        assert any(e["data"]["did"] == did for e in c.events(timeout=5))


async def test_async_client_concurrent_calls_and_a_subscription(shared_daemon: Daemon) -> None:
    async with await Client.connect(shared_daemon.socket) as c:
        results: list[Any] = []
        seen: list[dict[str, Any]] = []

        async def watch(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            async for event in c.subscribe(kinds=["did.created"]):
                seen.append(event)
                if len(seen) == 5:
                    return

        async def create(i: int) -> None:
            results.append(await c.call("did.create", label=f"async-{i}"))

        async with trio.open_nursery() as n:
            await n.start(watch)
            while (await c.call("status"))["event_subscribers"] == 0:
                await trio.sleep(0.01)
            for i in range(5):
                n.start_soon(create, i)
        assert sorted(r["label"] for r in results) == [f"async-{i}" for i in range(5)]
        assert {e["data"]["did"] for e in seen} == {r["did"] for r in results}


async def test_many_concurrent_calls_on_one_connection(served: Served) -> None:
    async with await Client.connect(served.path) as c:
        out: dict[int, Any] = {}

        async def one(i: int) -> None:
            out[i] = await c.call("message.get", id=str(i))

        async with trio.open_nursery() as n:
            for i in range(16):
                n.start_soon(one, i)
        assert out == {i: {"id": str(i)} for i in range(16)}


async def test_daemon_going_away_ends_subscriptions_and_fails_calls() -> None:
    async with serve_control() as s, await Client.connect(s.path) as c:
        ended = trio.Event()

        async def watch() -> None:
            async for _ in c.subscribe():
                pass
            ended.set()

        async with trio.open_nursery() as n:
            n.start_soon(watch)
            while s.agent.events.subscriber_count == 0:
                await trio.sleep(0.01)
            with trio.fail_after(5):
                await s.server.shutdown()
                await ended.wait()
        with pytest.raises(ConnectionClosedError):
            await c.call("status")


async def test_a_refused_client_sees_the_reason() -> None:
    async with serve_control(Limits(max_clients=1)) as s, await Client.connect(s.path) as first:
        await first.call("status")
        refused = await Client.connect(s.path)
        async with refused:
            with pytest.raises(ControlError) as info:
                await refused.call("status")
        assert info.value.code == "busy"
        sync = SyncClient.connect(s.path)
        with sync, pytest.raises(ControlError) as info2:
            await trio.to_thread.run_sync(sync.call, "status")
        assert info2.value.code == "busy"

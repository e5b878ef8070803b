"""The control layer as a specification: framing, requests, limits, events, shutdown, docs.

These run :class:`daemon.control.ControlServer` in-process on a real Unix socket
against a small fake agent (``conftest.FakeAgent``); the same behaviour against
the real daemon process is in ``test_service.py``.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon import control, frames
from daemon.client import Client, ControlError
from daemon.control import (
    METHODS,
    ControlSocketError,
    Limits,
    PeerCredentials,
    create_socket,
    peer_is_allowed,
    render_markdown,
)

from .conftest import Served, serve_control

# -- frames -----------------------------------------------------------------------------------

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=50) | st.binary(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


@given(st.lists(msgpack_values, min_size=1, max_size=5), st.data())
def test_frames_round_trip_whatever_the_chunking(values: list[Any], data: st.DataObject) -> None:
    stream = b"".join(frames.encode_frame(v) for v in values)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = frames.FrameDecoder()
    out = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        decoder.feed(stream[start:end])
        while (frame := decoder.next_frame()) is not frames.NEED_DATA:
            out.append(frame)
    assert out == values
    assert not decoder.partial


@given(st.binary(max_size=200))
def test_decoder_on_random_bytes_gives_values_or_a_typed_error(data: bytes) -> None:
    decoder = frames.FrameDecoder(max_frame_bytes=64)
    decoder.feed(data)
    try:
        while decoder.next_frame() is not frames.NEED_DATA:
            pass
    except frames.FrameError:
        # Once failed, it stays failed: the boundaries are lost.
        with pytest.raises(frames.FrameError):
            decoder.next_frame()


def test_decoder_refuses_a_huge_length_before_buffering_it() -> None:
    decoder = frames.FrameDecoder(max_frame_bytes=1024)
    decoder.feed(struct.pack(">I", 2**32 - 1))
    with pytest.raises(frames.FrameTooLargeError) as info:
        decoder.next_frame()
    assert info.value.length == 2**32 - 1 and info.value.code == "frame_too_large"


def test_a_payload_with_two_values_is_malformed() -> None:
    payload = msgpack.packb(1) + msgpack.packb(2)
    decoder = frames.FrameDecoder()
    decoder.feed(struct.pack(">I", len(payload)) + payload)
    with pytest.raises(frames.MalformedFrameError):
        decoder.next_frame()


def test_encode_frame_enforces_its_limit() -> None:
    with pytest.raises(frames.FrameTooLargeError):
        frames.encode_frame(b"x" * 100, max_bytes=50)


# -- the method table and its documentation ------------------------------------------------------


def test_docs_are_generated_from_the_method_table() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "control-api.md"
    assert doc.read_text() == render_markdown(), "run: python -m daemon.control --markdown --output docs/control-api.md"


def test_every_method_of_the_contract_is_in_the_table() -> None:
    assert set(METHODS) >= {
        "version", "methods", "status", "did.create", "did.list", "did.resolve", "message.send",
        "message.receive", "message.list", "message.get", "message.outbox.get", "events.subscribe",
        "events.unsubscribe", "shutdown",
    }


def test_default_limits_match_the_config_defaults() -> None:
    from daemon.config import ControlSection

    section = ControlSection(socket=Path("/x"))
    assert Limits.from_config(section) == Limits()


def test_validation_rejects_unknown_missing_and_mistyped_params() -> None:
    send = METHODS["message.send"]
    with pytest.raises(control.ControlRequestError, match="unknown parameter"):
        send.validate({"to": "did:x", "type": "t", "bogus": 1})
    with pytest.raises(control.ControlRequestError, match="'to' is required"):
        send.validate({"type": "t"})
    with pytest.raises(control.ControlRequestError, match="'body' must be of type map"):
        send.validate({"to": "did:x", "type": "t", "body": [1]})
    with pytest.raises(control.ControlRequestError, match="'expires_time' must be of type int"):
        send.validate({"to": "did:x", "type": "t", "expires_time": True})
    with pytest.raises(control.ControlRequestError, match="one of peer, key"):
        METHODS["did.create"].validate({"method": "web"})
    assert send.validate({"to": "did:x", "type": "t", "thid": None}) == {"to": "did:x", "type": "t"}


# -- peer credentials ---------------------------------------------------------------------------


def test_peer_policy() -> None:
    me = os.getuid()
    assert peer_is_allowed(PeerCredentials(1, me, 100), uid=me, allowed_gid=None)
    assert peer_is_allowed(PeerCredentials(1, 0, 0), uid=1000, allowed_gid=None)
    assert not peer_is_allowed(PeerCredentials(1, 4242, 4242), uid=1000, allowed_gid=None)
    assert peer_is_allowed(PeerCredentials(1, 4242, 77), uid=1000, allowed_gid=77)
    assert peer_is_allowed(PeerCredentials(1, 4242, 4242, (5, 77)), uid=1000, allowed_gid=77)
    assert not peer_is_allowed(PeerCredentials(1, 4242, 4242, (5,)), uid=1000, allowed_gid=77)


def test_peer_credentials_of_a_socketpair_are_ours() -> None:
    a, b = socket.socketpair()
    with a, b:
        cred = control.peer_credentials(a)
    assert (cred.pid, cred.uid, cred.gid) == (os.getpid(), os.getuid(), os.getgid())


# -- the socket file -----------------------------------------------------------------------------


def test_socket_file_is_created_owner_only_and_replaces_a_stale_one(tmp_path: Path) -> None:
    path = tmp_path / "run" / "control.sock"
    first = create_socket(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with pytest.raises(ControlSocketError, match="already listening"):
        create_socket(path)
    first.close()  # a crashed daemon leaves the file behind
    second = create_socket(path)
    second.close()


def test_group_socket_gets_group_access(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    sock = create_socket(path, allowed_group=str(os.getgid()))
    with sock:
        assert stat.S_IMODE(path.stat().st_mode) == 0o660


def test_a_regular_file_in_the_way_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    path.write_text("not a socket")
    with pytest.raises(ControlSocketError, match="not a socket"):
        create_socket(path)


# -- requests over a real socket -------------------------------------------------------------------


async def _recv(stream: trio.SocketStream) -> bytes:
    try:
        return await stream.receive_some(65536)
    except trio.BrokenResourceError:
        return b""


async def raw_exchange(path: Path, data: bytes, *, frames_wanted: int = 1) -> tuple[list[Any], bool]:
    """Send raw bytes; return the frames received and whether the server then closed the connection."""
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        if data:
            await stream.send_all(data)
        decoder = frames.FrameDecoder(frames.ABSOLUTE_MAX_FRAME_BYTES)
        got: list[Any] = []
        closed = False
        with trio.fail_after(5):
            while len(got) < frames_wanted:
                frame = decoder.next_frame()
                if frame is not frames.NEED_DATA:
                    got.append(frame)
                    continue
                chunk = await _recv(stream)
                if not chunk:
                    closed = True
                    break
                decoder.feed(chunk)
        if not closed:
            with trio.move_on_after(0.3):
                closed = not await _recv(stream)
        return got, closed


def request(req_id: Any, method: str, params: Any = None) -> bytes:
    body: dict[str, Any] = {"id": req_id, "method": method}
    if params is not None:
        body["params"] = params
    return frames.encode_frame(body)


async def test_status_round_trip(served: Served) -> None:
    async with await Client.connect(served.path) as c:
        status = await c.call("status")
    assert status["version"] == "test"
    assert status["control"]["api"] == control.CONTROL_API_VERSION
    assert status["control"]["clients"] == 1


async def test_oversized_frame_gets_an_error_and_the_connection_closes() -> None:
    async with serve_control(Limits(max_request_bytes=1024)) as s:
        got, closed = await raw_exchange(s.path, struct.pack(">I", 10**9))
        assert got[0]["id"] is None and got[0]["error"]["code"] == "frame_too_large"
        assert closed
        async with await Client.connect(s.path) as c:
            assert (await c.call("status"))["dids"] == 0


async def test_malformed_frame_gets_an_error_and_the_connection_closes(served: Served) -> None:
    got, closed = await raw_exchange(served.path, struct.pack(">I", 3) + b"\xc1\xc1\xc1")
    assert got[0]["error"]["code"] == "malformed_frame" and closed


async def test_wrong_shapes_get_error_replies_and_the_connection_stays(served: Served) -> None:
    data = b"".join([
        frames.encode_frame([1, 2, 3]),
        frames.encode_frame({"id": 1}),
        frames.encode_frame({"id": 2, "method": "no.such"}),
        frames.encode_frame({"id": 3, "method": "status", "params": [1]}),
        frames.encode_frame({"id": 4, "method": "status", "extra": 1}),
        frames.encode_frame({"id": True, "method": "status"}),
        request(5, "status"),
    ])
    got, closed = await raw_exchange(served.path, data, frames_wanted=7)
    by_id: dict[Any, Any] = {}
    for frame in got:
        by_id.setdefault(frame["id"], []).append(frame)
    assert [f["error"]["code"] for f in by_id[None]] == ["invalid_request", "invalid_request"]
    assert by_id[1][0]["error"]["code"] == "invalid_request"
    assert by_id[2][0]["error"]["code"] == "method_not_found"
    assert by_id[3][0]["error"]["code"] == "invalid_params"
    assert by_id[4][0]["error"]["code"] == "invalid_request"
    assert by_id[5][0]["result"]["version"] == "test"
    assert not closed


async def test_an_unexpected_failure_is_internal_and_says_nothing_more(served: Served) -> None:
    async with await Client.connect(served.path) as c:
        with pytest.raises(ControlError) as info:
            await c.call("did.create", label="boom")
        assert info.value.code == "internal"
        assert "secret" not in info.value.message
        # A typed daemon error keeps its code.
        with pytest.raises(ControlError) as info:
            await c.call("did.resolve", did="did:example:nobody")
        assert info.value.code == "not_found"
        assert (await c.call("status"))["dids"] == 0


async def test_replies_can_come_back_out_of_order(served: Served) -> None:
    async with await Client.connect(served.path) as c:
        results: dict[str, Any] = {}

        async def create(label: str) -> None:
            results[label] = await c.call("did.create", label=label)

        async with trio.open_nursery() as n:
            n.start_soon(create, "sleep:0.3")
            await trio.sleep(0.05)
            n.start_soon(create, "fast")
        assert served.agent.finished == ["did:peer:0", "did:peer:1"]
        assert results["fast"]["did"] == "did:peer:0"


async def test_too_many_pending_requests_are_refused_busy() -> None:
    async with serve_control(Limits(max_pending_per_connection=2)) as s:
        data = b"".join(request(i, "did.create", {"label": "sleep:0.3"}) for i in range(4))
        got, closed = await raw_exchange(s.path, data, frames_wanted=4)
        codes = sorted(f["error"]["code"] if "error" in f else "ok" for f in got)
        assert codes == ["busy", "busy", "ok", "ok"]
        assert not closed


async def test_too_many_clients_are_refused_busy() -> None:
    async with serve_control(Limits(max_clients=2)) as s:
        async with await Client.connect(s.path) as a, await Client.connect(s.path) as b:
            await a.call("status")
            await b.call("status")
            got, closed = await raw_exchange(s.path, b"")
            assert got[0]["error"]["code"] == "busy" and closed
            c = await Client.connect(s.path)
            async with c:
                with pytest.raises(ControlError) as info:
                    await c.call("status")
                assert info.value.code == "busy"
        # Once one leaves, a new client gets in.
        async with await Client.connect(s.path) as d:
            await d.call("status")


async def test_reload_changes_limits_for_connections_already_open() -> None:
    async with serve_control() as s, await Client.connect(s.path) as c:
        await c.call("message.receive", packed="x" * 2000)
        s.server.reload(Limits(max_request_bytes=1024))
        with pytest.raises(ControlError) as info:
            await c.call("message.receive", packed="x" * 2000)
        assert info.value.code == "frame_too_large"


async def test_reply_over_the_limit_becomes_an_error(served: Served) -> None:
    async with await Client.connect(served.path) as c:
        with pytest.raises(ControlError) as info:
            await c.call("message.get", id="huge")
        assert info.value.code == "reply_too_large"
        assert (await c.call("message.get", id="small")) == {"id": "small"}


async def test_params_reach_the_agent(served: Served) -> None:
    async with await Client.connect(served.path) as c:
        sent = await c.call("message.send", {"to": "did:x", "type": "t", "body": {"a": 1}, "from": "did:me", "anoncrypt": True})
        assert sent == {"id": "m-did:x-t", "state": "queued", "body": {"a": 1}, "frm": "did:me", "anoncrypt": True}
        listed = await c.call("message.list", box="outbox", limit=2)
        assert listed["messages"] == [{"id": "0", "box": "outbox", "limit": 2, "before": None}, {"id": "1", "box": "outbox", "limit": 2, "before": None}]
        assert (await c.call("message.receive", packed=b"\x00\x01"))["size"] == 2
        version = await c.call("version")
        assert version["api"] == control.CONTROL_API_VERSION and "status" in version["methods"]
        methods = await c.call("methods")
        assert {m["name"] for m in methods["methods"]} == set(METHODS)


# -- events --------------------------------------------------------------------------------------


async def test_events_arrive_after_the_subscribe_reply(served: Served) -> None:
    async with await Client.connect(served.path) as c:
        seen: list[dict[str, Any]] = []
        async with trio.open_nursery() as n:

            async def watch() -> None:
                async for event in c.subscribe(kinds=["did.created"]):
                    seen.append(event)
                    if len(seen) == 2:
                        return

            n.start_soon(watch)
            while served.agent.events.subscriber_count == 0:
                await trio.sleep(0.01)
            served.agent.events.publish("other.kind", {})
            # The connection still takes requests while it streams events.
            await c.call("did.create", label="one")
            await c.call("did.create", label="two")
        assert [e["data"]["did"] for e in seen] == ["did:peer:0", "did:peer:1"]


async def test_unsubscribe_and_disconnect_free_the_subscription(served: Served) -> None:
    stream = await trio.open_unix_socket(str(served.path))
    async with stream:
        await stream.send_all(request(1, "events.subscribe", {}))
        decoder = frames.FrameDecoder()
        while (frame := decoder.next_frame()) is frames.NEED_DATA:
            decoder.feed(await stream.receive_some(4096))
        sid = frame["result"]["subscription"]
        assert served.agent.events.subscriber_count == 1
        await stream.send_all(request(2, "events.unsubscribe", {"subscription": sid}))
        replies = []
        while len(replies) < 2:
            frame = decoder.next_frame()
            if frame is frames.NEED_DATA:
                decoder.feed(await stream.receive_some(4096))
            else:
                replies.append(frame)
        assert {"subscription": sid, "closed": True} in replies
        assert {"id": 2, "result": {"unsubscribed": True}} in replies
    assert served.agent.events.subscriber_count == 0


async def test_a_subscriber_that_falls_behind_gets_overflow_and_is_closed(served: Served) -> None:
    from daemon.events import SUBSCRIBER_BUFFER

    async with await Client.connect(served.path) as c:
        kinds: list[str] = []
        async with trio.open_nursery() as n:

            async def watch() -> None:
                async for event in c.subscribe():
                    kinds.append(event["kind"])

            n.start_soon(watch)
            while served.agent.events.subscriber_count == 0:
                await trio.sleep(0.01)
            for i in range(SUBSCRIBER_BUFFER + 10):
                served.agent.events.publish("flood", {"i": i})  # never blocks
        assert kinds[-1] == "overflow"
        # The connection still answers.
        assert (await c.call("status"))["version"] == "test"


# -- shutdown ----------------------------------------------------------------------------------------


async def test_shutdown_lets_running_requests_finish_and_refuses_new_ones() -> None:
    async with serve_control() as s:
        c = await Client.connect(s.path)
        async with c:
            result: dict[str, Any] = {}

            async def slow() -> None:
                result["slow"] = await c.call("did.create", label="sleep:0.3")

            async with trio.open_nursery() as n:
                n.start_soon(slow)
                await trio.sleep(0.05)
                with trio.fail_after(5):
                    await s.server.shutdown()
            assert result["slow"]["did"] == "did:peer:0"
        with pytest.raises(OSError):
            await trio.open_unix_socket(str(s.path))


async def test_the_shutdown_method_replies_then_asks_the_service_to_stop(served: Served) -> None:
    async with await Client.connect(served.path) as c:
        assert await c.call("shutdown") == {"state": "stopping"}
    assert served.shutdowns == ["x"]


# -- fuzzing the live server ---------------------------------------------------------------------------

fuzz_frames = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda n, tail: struct.pack(">I", n) + tail, st.integers(0, 2**32 - 1), st.binary(max_size=16)),
    st.builds(lambda v: frames.encode_frame(v), msgpack_values),
    st.builds(
        lambda i, m, p: frames.encode_frame({"id": i, "method": m, "params": p}),
        msgpack_values, st.sampled_from([*METHODS, "x", ""]), msgpack_values,
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fuzz_frames, min_size=1, max_size=4))
def test_fuzzed_frames_never_break_the_server(chunks: list[bytes]) -> None:
    async def main() -> None:
        async with serve_control(Limits(max_request_bytes=4096)) as s:
            stream = await trio.open_unix_socket(str(s.path))
            async with stream:
                try:
                    await stream.send_all(b"".join(chunks))
                    await stream.send_eof()
                    # The server answers what it can and closes: never hangs, never dies.
                    with trio.fail_after(5):
                        while await stream.receive_some(65536):
                            pass
                except trio.BrokenResourceError:
                    pass
            async with await Client.connect(s.path) as c:
                assert (await c.call("status"))["version"] == "test"

    trio.run(main)

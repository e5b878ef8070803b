"""Hostile peers against a real ``didcommd run`` process (issue 5).

Each test starts real daemons (``conftest.make_daemon``: loopback, no mDNS)
and attacks them from a "raw" py-libp2p host in this process, one that knows
nothing of our code beyond the wire: Noise, Yamux, ``didcomm/v2`` or the fast
path, varint-prefixed frames.  What every test checks, in the words of the
issue: memory stays bounded (the daemon's resident set, read from
``/proc/<pid>/status``), other peers keep being served (a second daemon
delivers to the first through ``didcommctl send`` during or after the
attack), nothing crashes (the process is alive and answers ``status``).

The daemon is a separate process, so the control calls here block; they run
in a worker thread (:func:`blocking`) so that the raw host, which shares this
trio loop, keeps serving its connection meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Final

import pytest
import trio

from daemon.client import ControlError
from daemon.p2p import deliver, didcomm_v2, multistream
from daemon.p2p.admission import MAX_INBOUND_STREAMS_PER_PEER
from daemon.p2p.framing import encode_frame, encode_uvarint

from .conftest import Daemon
from .test_p2p_transport import outcome, running_raw_host

#: A basic message: what the well-behaved peer sends while we are attacked.
BASIC: Final = "https://didcomm.org/basicmessage/2.0/message"
#: Seconds a delivery between two daemons on loopback may take on a busy box.
DELIVERY_DEADLINE: Final = 30.0
#: Seconds a refused stream may take to be reset (it is refused after its
#: length prefix, so anything near the 30 s read timeout means "not refused").
REFUSAL_DEADLINE: Final = 5.0
#: Seconds of clock difference allowed between the daemon's timers and ours.
SLACK: Final = 0.5
#: Growth of the daemon's peak resident set we accept from 64 streams that each
#: claim a 4 GiB frame (none may allocate for its claim; measured: < 1 MiB).
MAX_RSS_GROWTH_HUGE_CLAIMS: Final = 16 * 1024 * 1024
#: Growth of the daemon's resident set we accept after CONNECTION_CYCLES
#: connections came and went (each used to leave its handler task behind).
MAX_RSS_GROWTH_CHURN: Final = 8 * 1024 * 1024
#: Streams opened at once by one hostile peer (the issue's number).
STORM_STREAMS: Final = 10_000
#: Seconds the storm may take, every stream answered: a guard against a hang,
#: not the expected time (measured: 48-60 s on the shared two-core box, about
#: 3 ms of CPU per stream in the daemon and as much in the attacker).
STORM_DEADLINE: Final = 150.0
#: Growth of the daemon's peak resident set we accept during the storm: the
#: daemon holds at most 64 inbound streams of that peer (admission) and resets
#: the rest at arrival; what remains is py-libp2p's per-stream bookkeeping and
#: the commits of the admitted messages (measured: 4-17 MiB).
MAX_RSS_GROWTH_STORM: Final = 64 * 1024 * 1024
#: Payloads that are valid frames but no DIDComm message (each is committed
#: as a rejected inbox row, or refused; never a crash).
NOT_DIDCOMM: Final = (
    b'{"hello": 1}',
    b"[]",
    b'"just a string"',
    b"\x00\xff binary, not even UTF-8",
    b'{"protected": "!!!", "recipients": [], "ciphertext": "x", "iv": "y", "tag": "z"}',
    b'{"payload": "e30", "signatures": [{"protected": "e30", "signature": "AA"}]}',
    # Nested past Python's recursion limit, yet under every size limit.
    b"[" * 5000,
    b'{"from": ' * 3000 + b"1" + b"}" * 3000,
)


# -- plumbing -----------------------------------------------------------------------------


async def blocking(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking call (a control request, a process) off the trio loop."""
    return await trio.to_thread.run_sync(partial(fn, *args, **kwargs))


async def start_daemons(factory: Callable[[], Daemon], count: int) -> list[Daemon]:
    """Start ``count`` daemons at once (each waits for its READY=1 in a thread)."""
    started: list[Daemon | None] = [None] * count

    async def one(i: int) -> None:
        started[i] = await blocking(factory)

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(one, i)
    return [d for d in started if d is not None]


def rss_bytes(d: Daemon, field: str = "VmRSS") -> int:
    """The daemon's resident set (``VmRSS``) or its peak so far (``VmHWM``)."""
    assert d.proc is not None
    for line in open(f"/proc/{d.proc.pid}/status").read().splitlines():  # noqa: SIM115
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{d.proc.pid}/status")


async def status(d: Daemon) -> dict[str, Any]:
    """``status`` of a daemon that must still be alive."""
    assert d.proc is not None and d.proc.poll() is None, d.log_text()[-4000:]
    result: dict[str, Any] = await blocking(d.call, "status")
    return result


async def wait_until(what: str, check: Callable[[], Any], timeout: float = DELIVERY_DEADLINE) -> Any:
    """Poll the blocking ``check()`` until it returns something truthy."""
    with trio.move_on_after(timeout):
        delay = 0.02
        while True:
            value = await blocking(check)
            if value:
                return value
            await trio.sleep(delay)
            delay = min(delay * 2, 0.25)
    raise AssertionError(f"timed out waiting for {what}")


def in_inbox(d: Daemon, msg_id: str) -> dict[str, Any] | None:
    try:
        got: dict[str, Any] = d.call("message.get", id=msg_id)
    except ControlError:
        return None
    return got if got.get("box") == "inbox" else None


def ctl_json(d: Daemon, *args: str) -> Any:
    proc = d.ctl("--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def inbound_ref(packed: bytes) -> str:
    """The id the daemon gives an inbound message it could not unpack (agent.message_receive)."""
    return "in-" + hashlib.sha256(packed).hexdigest()[:32]


async def deliver_between(sender: Daemon, receiver: Daemon, content: str) -> float:
    """``didcommctl send`` from ``sender`` to a DID of ``receiver``; seconds until it is in
    the receiver's inbox (and delivered on the sender's side)."""
    frm = (await blocking(ctl_json, sender, "did", "create"))["did"]
    to = (await blocking(ctl_json, receiver, "did", "create"))["did"]
    started = time.monotonic()
    body = json.dumps({"content": content})
    sent = await blocking(
        ctl_json, sender, "send", "--from", frm, "--to", to, "--type", BASIC, "--body", body
    )
    got = await wait_until("the message in the receiver's inbox", lambda: in_inbox(receiver, sent["id"]))
    assert got["message"]["body"] == {"content": content}
    assert got["transport"] == "libp2p"
    return time.monotonic() - started


@asynccontextmanager
async def attacker(target: Daemon) -> AsyncIterator[tuple[Any, Any]]:
    """A raw py-libp2p host connected to ``target``: ``(host, target's peer id)``."""
    import multiaddr
    from libp2p.peer.peerinfo import info_from_p2p_addr

    addr = (await status(target))["addrs"][0]
    async with running_raw_host() as raw:
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        with trio.fail_after(DELIVERY_DEADLINE):
            await raw.connect(info)
        yield raw, info.peer_id


async def open_on(raw: Any, peer: Any, protocol: str) -> Any:
    from libp2p.custom_types import TProtocol

    return await raw.new_stream(peer, [TProtocol(protocol)])


async def answer(raw: Any, peer: Any, protocol: str, data: bytes, *, timeout: float) -> str:
    """Open a stream, write ``data``, close our side: "closed" (committed) or "reset"."""
    from libp2p.host.exceptions import StreamFailure
    from libp2p.network.stream.exceptions import StreamReset

    try:
        stream = await open_on(raw, peer, protocol)
        if data:
            await stream.write(data)
        await stream.close_write()
    except (StreamFailure, StreamReset):
        return "reset"  # the reset overtook multistream's echo, or our write
    return await outcome(stream, timeout=timeout)


async def lazy_answer(raw: Any, peer: Any, protocol: str, data: bytes, *, timeout: float) -> str:
    """:func:`answer` the impatient way: multistream header, proposal and ``data`` in
    one write, before the daemon said a word (what a flooding peer does)."""
    from libp2p.network.stream.exceptions import StreamReset

    stream = await raw.get_network().new_stream(peer)
    try:
        await stream.write(multistream.propose(protocol) + data)
        await stream.close_write()
    except StreamReset:
        return "reset"
    return await outcome(stream, timeout=timeout)


# -- 1. a frame claiming 4 GiB ----------------------------------------------------------


async def test_a_4_gib_length_claim_is_refused_before_its_body(daemon_factory: Any) -> None:
    (a,) = await start_daemons(daemon_factory, 1)
    before = await status(a)
    rss_before = rss_bytes(a)
    claim = encode_uvarint(4 * 1024**3)
    async with attacker(a) as (raw, peer):
        results: list[str] = []

        async def claim_once(protocol: str) -> None:
            if protocol == deliver.PROTOCOL_ID:
                data = claim + bytes([deliver.KIND_MESSAGE]) + encode_uvarint(0) + b"{"
            else:
                data = claim + b"{"
            # No body ever follows and our side stays open: only the prefix
            # can be what gets the stream reset, well inside the 30 s timeout.
            stream = await open_on(raw, peer, protocol)
            await stream.write(data)
            results.append(await outcome(stream, timeout=REFUSAL_DEADLINE))

        for protocol in (didcomm_v2.PROTOCOL_ID, deliver.PROTOCOL_ID):
            async with trio.open_nursery() as nursery:
                # Within the per-peer stream limit, so every one reaches the reader.
                for _ in range(MAX_INBOUND_STREAMS_PER_PEER // 2):
                    nursery.start_soon(claim_once, protocol)
        assert results == ["reset"] * MAX_INBOUND_STREAMS_PER_PEER
    growth = rss_bytes(a, "VmHWM") - rss_before
    assert growth < MAX_RSS_GROWTH_HUGE_CLAIMS, f"RSS grew by {growth} bytes"
    after = await status(a)
    assert after["inbox"] == before["inbox"]  # nothing committed
    assert after["p2p"]["inbound_buffered_bytes"] == 0


# -- 2. slowloris ---------------------------------------------------------------------------


@pytest.mark.slow
async def test_slowloris_streams_are_cut_and_other_peers_are_served(daemon_factory: Any) -> None:
    a, b = await start_daemons(daemon_factory, 2)
    stall = encode_uvarint(100) + b"{"  # a frame of 100 bytes, of which one ever comes
    async with attacker(a) as (raw, peer):
        started = time.monotonic()
        stalled = []
        # Every stream slot the daemon gives one peer, one of them on the fast path.
        for i in range(MAX_INBOUND_STREAMS_PER_PEER):
            if i == 0:
                stream = await open_on(raw, peer, deliver.PROTOCOL_ID)
                await stream.write(encode_uvarint(100) + bytes([deliver.KIND_MESSAGE]))
            else:
                stream = await open_on(raw, peer, didcomm_v2.PROTOCOL_ID)
                await stream.write(stall)
            stalled.append(stream)
        await wait_until(
            "the daemon reading every stalled stream",
            lambda: a.call("status")["p2p"]["inbound_streams"] >= MAX_INBOUND_STREAMS_PER_PEER,
        )
        # The attacker has no slot left; its next stream is refused at once ...
        extra = await answer(raw, peer, didcomm_v2.PROTOCOL_ID, encode_frame(b"x"), timeout=REFUSAL_DEADLINE)
        assert extra == "reset"
        # ... while another peer is served, long before the stalled streams time out.
        await deliver_between(b, a, "served during the slowloris")
        assert time.monotonic() - started < didcomm_v2.STREAM_READ_TIMEOUT
        # Each stalled stream is reset by the daemon's read timeout, not before.
        with trio.fail_after(didcomm_v2.STREAM_READ_TIMEOUT + DELIVERY_DEADLINE):
            outcomes = [await outcome(s, timeout=math.inf) for s in stalled]
        assert outcomes == ["reset"] * MAX_INBOUND_STREAMS_PER_PEER
        assert time.monotonic() - started >= didcomm_v2.STREAM_READ_TIMEOUT - SLACK
        # The slots came back: the same peer, now well-behaved, gets a commit.
        kept = await answer(raw, peer, didcomm_v2.PROTOCOL_ID, encode_frame(b"late"), timeout=DELIVERY_DEADLINE)
        assert kept == "closed"
    after = await status(a)
    assert after["p2p"]["inbound_buffered_bytes"] == 0


# -- 3. ten thousand streams at once ------------------------------------------------------


@pytest.mark.slow
async def test_ten_thousand_streams_at_once(daemon_factory: Any) -> None:
    a, b = await start_daemons(daemon_factory, 2)
    before = await status(a)
    rss_before = rss_bytes(a)
    results: list[str] = []
    started = time.monotonic()
    async with attacker(a) as (raw, peer):

        async def one(i: int) -> None:
            try:
                frame = encode_frame(b"storm %d" % i)
                results.append(
                    await lazy_answer(raw, peer, didcomm_v2.PROTOCOL_ID, frame, timeout=STORM_DEADLINE)
                )
            except Exception as exc:  # counted, and the test says which
                results.append(f"failed: {type(exc).__name__}: {exc}")

        with trio.fail_after(STORM_DEADLINE):
            async with trio.open_nursery() as nursery:
                for i in range(STORM_STREAMS):
                    nursery.start_soon(one, i)
    elapsed = time.monotonic() - started
    peak_growth = rss_bytes(a, "VmHWM") - rss_before
    committed = results.count("closed")
    # Every stream got an answer, and no answer was a lie: as many rows as "committed".
    assert len(results) == STORM_STREAMS
    assert set(results) <= {"closed", "reset"}, [r for r in results if r.startswith("failed")][:5]
    after = await status(a)
    assert committed > 0
    assert after["inbox"] - before["inbox"] == committed
    assert after["inbox_rejected"] - before["inbox_rejected"] == committed  # not DIDComm
    assert after["p2p"]["refused_streams"] > 0
    assert after["p2p"]["inbound_buffered_bytes"] == 0
    assert peak_growth < MAX_RSS_GROWTH_STORM, (
        f"peak RSS grew by {peak_growth >> 20} MiB in {elapsed:.0f} s ({committed} committed)"
    )
    # ... and a well-behaved peer is served afterwards.
    await deliver_between(b, a, "after the storm")


# -- 4. garbage ----------------------------------------------------------------------------

#: Bytes that are no message, per protocol; each stream must be reset, none committed.
GARBAGE: Final = [
    (didcomm_v2.PROTOCOL_ID, b"\xff" * 16),  # a length prefix that never ends
    (didcomm_v2.PROTOCOL_ID, encode_uvarint(10) + b"short"),  # EOF inside a frame
    (didcomm_v2.PROTOCOL_ID, b""),  # nothing at all
    (didcomm_v2.PROTOCOL_ID, encode_uvarint(0)),  # one empty frame: an empty message
    (didcomm_v2.PROTOCOL_ID, random.Random(5).randbytes(4096)),
    (deliver.PROTOCOL_ID, encode_frame(b"\x07not a message")),  # an unknown frame kind
    (deliver.PROTOCOL_ID, encode_frame(b"\x01\x00\x00")),  # an ACK, sent to the receiver
    (deliver.PROTOCOL_ID, encode_frame(bytes([deliver.KIND_MESSAGE]))),  # no seq
    (deliver.PROTOCOL_ID, b"\xff" * 16),
    (deliver.PROTOCOL_ID, random.Random(6).randbytes(4096)),
]


async def test_garbage_is_reset_and_never_committed(daemon_factory: Any) -> None:
    (a,) = await start_daemons(daemon_factory, 1)
    before = await status(a)
    async with attacker(a) as (raw, peer):
        for protocol, data in GARBAGE:
            for send in (answer, lazy_answer):
                got = await send(raw, peer, protocol, data, timeout=DELIVERY_DEADLINE)
                assert got == "reset", (protocol, data[:20], send.__name__)
        # Not even multistream-select: the stream ends, nothing is committed.
        stream = await raw.get_network().new_stream(peer)
        await stream.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await stream.close_write()
        assert await outcome(stream, timeout=DELIVERY_DEADLINE) in ("reset", "closed")
        # Garbage under the encryption, on a bare TCP connection to the listener.
        port = int((await status(a))["addrs"][0].split("/tcp/")[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=DELIVERY_DEADLINE) as tcp:
            try:
                tcp.sendall(random.Random(7).randbytes(65536))
                tcp.shutdown(socket.SHUT_WR)
                while tcp.recv(65536):  # until the daemon hangs up
                    pass
            except ConnectionResetError:
                pass  # ... or resets the connection: either is a refusal
        after = await status(a)
        assert after["inbox"] == before["inbox"]
        assert after["p2p"]["inbound_buffered_bytes"] == 0
        # The same peer, behaving now, is served on the same connection.
        assert await answer(raw, peer, didcomm_v2.PROTOCOL_ID, encode_frame(b"{}"), timeout=DELIVERY_DEADLINE) == "closed"
    assert (await status(a))["inbox"] == before["inbox"] + 1


# -- 5. valid frames, no DIDComm inside --------------------------------------------------


async def test_a_frame_holding_no_didcomm_message_is_kept_as_rejected(daemon_factory: Any) -> None:
    (a,) = await start_daemons(daemon_factory, 1)
    await blocking(ctl_json, a, "did", "create")  # so a claimed sender could be answered
    before = await status(a)
    async with attacker(a) as (raw, peer):
        for payload in NOT_DIDCOMM:
            got = await answer(raw, peer, didcomm_v2.PROTOCOL_ID, encode_frame(payload), timeout=DELIVERY_DEADLINE)
            # Committed (so acknowledged), as a rejected inbox row with its reason.
            assert got == "closed", payload[:40]
            row = await blocking(a.call, "message.get", id=inbound_ref(payload))
            assert row["box"] == "inbox" and row["state"] == "rejected", row
            assert row["reason"] and row["problem_code"].startswith("e.p."), row
            assert row["transport"] == "libp2p"
            await status(a)  # alive after each one
        # A plaintext message from a DID nobody can resolve is valid DIDComm: it is
        # committed (the stream closes cleanly) though the reply it asks for (a
        # problem-report: unknown type) cannot be packed, which is only logged.
        unknown = b'{"id": "1", "type": "x", "from": "did:example:nobody", "body": {}}'
        got = await answer(raw, peer, didcomm_v2.PROTOCOL_ID, encode_frame(unknown), timeout=DELIVERY_DEADLINE)
        assert got == "closed"
        row = await blocking(a.call, "message.get", id="1")
        assert row["state"] == "received" and row["message"]["from"] == "did:example:nobody", row
        await status(a)
        # The fast path acknowledges such a message as committed, too.
        payload = b'{"hello": "fast path"}'
        stream = await open_on(raw, peer, deliver.PROTOCOL_ID)
        await stream.write(encode_frame(bytes([deliver.KIND_MESSAGE]) + encode_uvarint(0) + payload))
        ack = b""
        with trio.fail_after(DELIVERY_DEADLINE):
            while len(ack) < 4:
                ack += await stream.read(4 - len(ack))
        assert ack == encode_frame(bytes([deliver.KIND_ACK, 0, deliver.COMMITTED]))
        await stream.close()
        row = await blocking(a.call, "message.get", id=inbound_ref(payload))
        assert row["state"] == "rejected"
        # Sent again, the same bytes are tried again and stay one row.
        again = await answer(raw, peer, didcomm_v2.PROTOCOL_ID, encode_frame(NOT_DIDCOMM[0]), timeout=DELIVERY_DEADLINE)
        assert again == "closed"
    after = await status(a)
    assert after["inbox_rejected"] - before["inbox_rejected"] == len(NOT_DIDCOMM) + 1
    # ... and the plaintext one from nobody, kept as received.
    assert after["inbox"] - before["inbox"] == len(NOT_DIDCOMM) + 2
    # didcommctl shows them, each with its reason.
    listed = await blocking(ctl_json, a, "inbox", "--limit", "100")
    rejected = [m for m in listed["messages"] if m["state"] == "rejected"]
    assert len(rejected) == len(NOT_DIDCOMM) + 1
    assert all(m["reason"] for m in rejected)


# -- connection churn ------------------------------------------------------------------------

#: Connections made and dropped in a row: past py-libp2p's inbound connection
#: cap (``max_connections``, 300), which once counted every connection the
#: daemon ever accepted rather than those open now.
CONNECTION_CYCLES: Final = 320
#: Peers doing it at once (a disconnect costs py-libp2p two 0.1 s sleeps).
CHURNING_PEERS: Final = 8


@pytest.mark.slow
async def test_peers_that_keep_reconnecting_do_not_use_up_the_daemon(daemon_factory: Any) -> None:
    (a,) = await start_daemons(daemon_factory, 1)
    rss_before = rss_bytes(a)

    async def churn(cycles: int) -> None:
        async with attacker(a) as (raw, peer):
            info = raw.get_peerstore().peer_info(peer)
            for _ in range(cycles):
                await raw.disconnect(peer)
                with trio.fail_after(DELIVERY_DEADLINE):
                    await raw.connect(info)
            # Still accepted, and still served.
            got = await answer(raw, peer, didcomm_v2.PROTOCOL_ID, encode_frame(b"{}"), timeout=DELIVERY_DEADLINE)
            assert got == "closed"
            await raw.disconnect(peer)

    async with trio.open_nursery() as nursery:
        for _ in range(CHURNING_PEERS):
            nursery.start_soon(churn, CONNECTION_CYCLES // CHURNING_PEERS)
    await wait_until("the last connection gone", lambda: a.call("status")["p2p"]["connected_peers"] == 0)
    growth = rss_bytes(a) - rss_before
    assert growth < MAX_RSS_GROWTH_CHURN, f"RSS grew by {growth >> 20} MiB"

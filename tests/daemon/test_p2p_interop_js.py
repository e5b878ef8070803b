"""Interop with js-libp2p: a peer that knows only the DIDComm libp2p extension.

``tests/interop/js/peer.mjs`` is a js-libp2p node (TCP, Noise, Yamux) whose
sending and receiving code is the extension's own example: the sender pipes a
string through ``it-length-prefixed`` (one frame per character) and closes;
the receiver decodes frames until the end and joins them.  Our node must take
its messages, and deliver to it over plain ``didcomm/v2`` (it answers ``na`` to
our fast path).

Needs ``node`` (>= 20) and the peer's ``node_modules``: the fixture runs
``npm ci`` in ``tests/interop/js`` when they are missing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from daemon.p2p.errors import TIMEOUT, DeliveryError
from daemon.p2p.host import P2PLimits, P2PNode, serve
from daemon.p2p.identity import PeerIdentity

pytestmark = pytest.mark.interop

JS_DIR = Path(__file__).resolve().parents[1] / "interop" / "js"
#: Seconds a js peer may take to start (node loads ~100 modules).
JS_START_TIMEOUT = 30.0
#: Seconds ``npm ci`` may take on a cold cache.
NPM_TIMEOUT = 300


@dataclass
class Config:
    listen: list[str] = field(default_factory=lambda: ["/ip4/127.0.0.1/tcp/0"])
    announce: list[str] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = False


@pytest.fixture(scope="module")
def js_peer_dir() -> Path:
    """``tests/interop/js`` with its node_modules installed."""
    if not (JS_DIR / "node_modules" / "libp2p").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, timeout=NPM_TIMEOUT
        )
    return JS_DIR


class JsPeer:
    """A running ``node peer.mjs ...``: JSON events out, stdin closed to stop."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""

    async def event(self, timeout: float = JS_START_TIMEOUT) -> dict[str, Any]:
        assert self.process.stdout is not None
        with trio.fail_after(timeout):
            while b"\n" not in self._buffer:
                chunk = await self.process.stdout.receive_some(65536)
                if not chunk:
                    raise AssertionError("the js peer exited")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        value: dict[str, Any] = json.loads(line)
        return value


@asynccontextmanager
async def js_peer(directory: Path, *args: str) -> AsyncIterator[JsPeer]:
    process = await trio.lowlevel.open_process(
        ["node", "peer.mjs", *args],
        cwd=directory,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        yield JsPeer(process)
    finally:
        assert process.stdin is not None
        await process.stdin.aclose()
        with trio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


@asynccontextmanager
async def our_node(
    inbox: list[tuple[bytes, str]], limits: P2PLimits | None = None
) -> AsyncIterator[P2PNode]:
    async def on_message(packed: bytes, peer: str) -> None:
        inbox.append((packed, peer))

    async with trio.open_nursery() as nursery:
        node: P2PNode = await nursery.start(
            partial(serve, limits=limits), Config(), PeerIdentity.generate(), on_message
        )
        yield node
        nursery.cancel_scope.cancel()


async def test_js_sender_delivers_to_us(js_peer_dir: Path) -> None:
    inbox: list[tuple[bytes, str]] = []
    message = '{"id":"1","type":"https://didcomm.org/trust-ping/2.0/ping","body":{}}'
    async with our_node(inbox) as ours, js_peer(js_peer_dir, "send", ours.addrs[0], message) as js:
        sent = await js.event()
        assert sent["event"] == "sent"
        with trio.fail_after(10):
            while not inbox:
                await trio.sleep(0.02)
        assert inbox == [(message.encode(), sent["peerId"])]


async def test_we_deliver_to_a_js_receiver(js_peer_dir: Path) -> None:
    async with our_node([]) as ours, js_peer(js_peer_dir, "listen") as js:
        ready = await js.event()
        for i in range(3):
            text = f'{{"n":{i},"body":"to js"}}'
            assert await ours.send(ready["peerId"], ready["addrs"], text) == "didcomm/v2"
            assert await js.event(timeout=10) == {"event": "received", "message": text}


async def test_a_js_receiver_that_never_closes(js_peer_dir: Path) -> None:
    """The extension's receiving example never closes: we cannot know, so we say maybe."""
    limits = P2PLimits(delivery_timeout=2.0)
    async with our_node([], limits) as ours, js_peer(js_peer_dir, "listen", "--no-close") as js:
        ready = await js.event()
        with pytest.raises(DeliveryError) as caught:
            await ours.send(ready["peerId"], ready["addrs"], '{"n":"maybe"}')
        assert caught.value.reason == TIMEOUT and caught.value.maybe_delivered
        assert await js.event(timeout=10) == {"event": "received", "message": '{"n":"maybe"}'}

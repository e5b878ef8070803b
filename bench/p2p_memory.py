"""Memory of a didcommd daemon per connected libp2p peer (issue 5: "with 100 peers").

Theory of operation
-------------------
One ``didcommd run`` process (temporary state, loopback, mDNS off, log level
warning) with one did:peer:2.  Peers are raw py-libp2p hosts (Noise, Yamux;
nothing of our code on the wire) living in helper processes, this same
script run with ``--helper``: each host dials the daemon, delivers one real
anoncrypted basic message on ``didcomm/v2`` (packed in the helper for the
daemon's DID, so the daemon unpacks and commits it), and then keeps its
connection open until the helper's stdin closes.

The daemon's resident set (``VmRSS`` in ``/proc/<pid>/status``) is read at
0 peers and again after each step up to 10, 50 and 100 connected peers (the
steps add helpers; earlier peers stay connected).  Before the 0-peer
reading one warm-up peer delivers a message and leaves, so the first use of
the unpack and commit paths is not billed to the peers.  Each reading waits
until ``status`` shows the expected ``connected_peers`` and then takes the
median of :data:`SAMPLES` readings :data:`SAMPLE_INTERVAL` apart.  Memory
per peer = (RSS at N - RSS at 0) / N.  Then, ``--churn`` times, every peer
leaves (a reading at 0) and a new crowd of as many new peers comes (a
reading): memory the daemon keeps per peer it has ever seen, rather than per
peer connected now, shows as growth from one crowd to the next.

Run: ``.venv/bin/python bench/p2p_memory.py [--steps 10,50,100] [--markdown bench/RESULTS.md]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from p2p_daemons import Proc, start_daemon, wait_ready  # noqa: E402

from daemon.client import Client  # noqa: E402

BASIC: Final = "https://didcomm.org/basicmessage/2.0/message"
#: Connected peer counts measured by default (0 is always measured first).
DEFAULT_STEPS: Final = (10, 50, 100)
#: Times every peer leaves and as many new ones come, after the last step.
DEFAULT_CHURN: Final = 2
#: Most peers one helper process runs (py-libp2p hosts are heavy; a few
#: helpers share the two cores better than one big one).
PEERS_PER_HELPER: Final = 25
#: RSS readings per step, and seconds between them.
SAMPLES: Final = 5
SAMPLE_INTERVAL: Final = 0.5
#: Seconds a step (helpers up, every peer connected and delivered) may take.
STEP_TIMEOUT: Final = 180.0
#: Dials a peer tries before its helper gives up (a Noise handshake among a
#: hundred at once on two busy cores sometimes fails; each retry is reported).
DIAL_ATTEMPTS: Final = 3
#: Seconds before a peer dials again.
REDIAL_DELAY: Final = 1.0
#: Seconds one peer's dial + delivery may take inside a helper.
PEER_TIMEOUT: Final = 60.0


# -- the helper: N raw py-libp2p hosts, one message each, then hold ------------------------


def raw_host() -> Any:
    """A py-libp2p host built from py-libp2p alone: Noise, Yamux, an Ed25519 identity."""
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as x25519
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
    from libp2p.security.noise.transport import Transport as Noise
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX
    from libp2p.stream_muxer.yamux.yamux import Yamux

    kp = create_new_key_pair()
    return new_host(
        key_pair=kp,
        sec_opt={NOISE: Noise(kp, noise_privkey=x25519().private_key)},
        muxer_opt={YAMUX: Yamux},
    )


def packed_for(did: str, n: int) -> bytes:
    """An anoncrypted basic message for ``did`` (the daemon resolves nothing to read it)."""
    from protocols.did.resolver import default_resolver
    from protocols.envelope import pack_encrypted
    from protocols.secrets import InMemorySecrets

    message = {
        "id": f"mem-{os.getpid()}-{n}-{time.time_ns()}",
        "type": BASIC,
        "to": [did],
        "created_time": int(time.time()),
        "body": {"content": f"peer {n}"},
    }
    packed = pack_encrypted(message, did, resolver=default_resolver(), secrets=InMemorySecrets([])).packed
    return packed.encode() if isinstance(packed, str) else bytes(packed)


async def one_peer(addr: str, did: str, n: int, ready: trio.Semaphore) -> None:
    """Dial, deliver one message on didcomm/v2, hold the connection until cancelled."""
    import multiaddr
    from libp2p.custom_types import TProtocol
    from libp2p.network.stream.exceptions import StreamEOF
    from libp2p.peer.peerinfo import info_from_p2p_addr

    from daemon.p2p.framing import encode_frame

    host = raw_host()
    async with host.run([]):
        info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        with trio.fail_after(PEER_TIMEOUT):
            for attempt in range(DIAL_ATTEMPTS):
                try:
                    await host.connect(info)
                    break
                except Exception as exc:  # py-libp2p's dial errors have no common base
                    if attempt == DIAL_ATTEMPTS - 1:
                        raise
                    print(json.dumps({"redial": f"{type(exc).__name__}: {exc}"[:200]}),
                          file=sys.stderr, flush=True)
                    # py-libp2p would refuse to dial again for a while (its
                    # negative cache); we want to know if a second try works.
                    host.get_network().unblock_peer(info.peer_id)
                    await trio.sleep(REDIAL_DELAY)
            stream = await host.new_stream(info.peer_id, [TProtocol("didcomm/v2")])
            await stream.write(encode_frame(packed_for(did, n)))
            await stream.close_write()
            try:
                while await stream.read(1024):
                    pass
            except StreamEOF:
                pass
            if getattr(stream.muxed_stream, "reset_received", False):
                raise RuntimeError("the daemon reset the delivery")
        ready.release()
        await trio.sleep_forever()


async def helper(addr: str, did: str, count: int) -> None:
    """Run ``count`` peers; print one line once all delivered; exit when stdin closes."""
    ready = trio.Semaphore(count, max_value=count)
    for _ in range(count):
        ready.acquire_nowait()
    async with trio.open_nursery() as nursery:
        for n in range(count):
            nursery.start_soon(one_peer, addr, did, n, ready)
        for _ in range(count):
            await ready.acquire()
        print(json.dumps({"ready": count}), flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # until the parent closes our stdin
        nursery.cancel_scope.cancel()


# -- the measurement ----------------------------------------------------------------------


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Helpers:
    """The helper processes started so far (all stopped at the end)."""

    def __init__(self, addr: str, did: str) -> None:
        self.addr, self.did = addr, did
        self.procs: list[subprocess.Popen[str]] = []

    async def add(self, peers: int) -> None:
        """Start helpers for ``peers`` more peers; return once each delivered its messages."""
        started = []
        while peers > 0:
            count = min(peers, PEERS_PER_HELPER)
            peers -= count
            proc = subprocess.Popen(
                [sys.executable, __file__, "--helper", "--addr", self.addr, "--did", self.did,
                 "--count", str(count)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
            )
            self.procs.append(proc)
            started.append(proc)
        for proc in started:
            assert proc.stdout is not None
            line = await trio.to_thread.run_sync(proc.stdout.readline)
            if not line:
                raise RuntimeError(f"a helper exited with {proc.wait()}")

    def stop(self, procs: list[subprocess.Popen[str]] | None = None) -> None:
        for proc in procs if procs is not None else self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs if procs is not None else self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def connected(a: Proc) -> int:
    async with await Client.connect(a.socket) as c:
        return int((await c.call("status"))["p2p"]["connected_peers"])


async def settle(a: Proc, peers: int) -> int:
    """Wait for ``peers`` connected peers; the median RSS of SAMPLES readings."""
    with trio.fail_after(STEP_TIMEOUT):
        while await connected(a) != peers:
            await trio.sleep(0.2)
    readings = []
    for _ in range(SAMPLES):
        await trio.sleep(SAMPLE_INTERVAL)
        readings.append(rss(a.proc.pid))
    return int(statistics.median(readings))


#: One reading: (what, connected peers, daemon RSS bytes).
Reading = tuple[str, int, int]


async def measure(steps: tuple[int, ...], churn: int) -> list[Reading]:
    """Readings at 0 peers, at each step, after all left, and with a new crowd."""
    root = Path(tempfile.mkdtemp(prefix="didcommd-mem-"))
    a = start_daemon(root, "a")
    helpers: Helpers | None = None
    try:
        await wait_ready(a)
        async with await Client.connect(a.socket) as c:
            did = (await c.call("did.create", {"label": "memory"}))["did"]
            status = await c.call("status")
        helpers = Helpers(status["addrs"][0], did)
        # Warm-up: one peer delivers and leaves.
        await helpers.add(1)
        helpers.stop()
        helpers.procs.clear()
        results: list[Reading] = []

        async def reading(what: str, peers: int) -> None:
            results.append((what, peers, await settle(a, peers)))
            print(f"{what:>18}: {peers:>4} peers, RSS {results[-1][2] / 2**20:7.1f} MiB", flush=True)

        await reading("no peer", 0)
        for peers in steps:
            await helpers.add(peers - results[-1][1])
            await reading("connected", peers)
        # Every peer leaves, then as many come again: memory that is not
        # reused for the second crowd would be a leak.
        for round_ in range(1, churn + 1):
            helpers.stop()
            helpers.procs.clear()
            await reading(f"all left ({round_})", 0)
            await helpers.add(steps[-1])
            await reading(f"new crowd ({round_})", steps[-1])
        async with await Client.connect(a.socket) as c:
            inbox = (await c.call("status"))["inbox"]
        expected = 1 + (1 + churn) * steps[-1]
        if inbox != expected:
            raise RuntimeError(f"{inbox} messages in the inbox, expected {expected}")
        return results
    finally:
        if helpers is not None:
            helpers.stop()
        a.proc.terminate()
        try:
            a.proc.wait(20)
        except subprocess.TimeoutExpired:
            a.proc.kill()


def table(results: list[Reading]) -> str:
    base = results[0][2]
    lines = [
        "| step | connected peers | daemon RSS MiB | growth MiB | KiB per peer |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for what, peers, value in results:
        per = f"{(value - base) / peers / 1024:.0f}" if peers else "-"
        lines.append(f"| {what} | {peers} | {value / 2**20:.1f} | {(value - base) / 2**20:.1f} | {per} |")
    return "\n".join(lines)


def write_section(path: Path, results: list[Reading]) -> None:
    """Replace (or append) this script's section of ``path``."""
    begin, end = "<!-- p2p_memory section: begin -->", "<!-- p2p_memory section: end -->"
    section = "\n".join([
        begin,
        "## `p2p_memory.py` — daemon memory per connected libp2p peer",
        "",
        f"`bench/p2p_memory.py`, {time.strftime('%Y-%m-%d')}: raw py-libp2p peers (Noise, Yamux) in "
        f"helper processes, each connected and having delivered one anoncrypted message on "
        f"didcomm/v2; daemon `VmRSS`, median of {SAMPLES} readings per step",
        "",
        table(results),
        end,
    ])
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)),
                        help="connected peer counts to measure, increasing (default 10,50,100)")
    parser.add_argument("--churn", type=int, default=DEFAULT_CHURN,
                        help="times every peer leaves and a new crowd comes (default 2)")
    parser.add_argument("--markdown", type=Path, help="rewrite this script's section of this file")
    parser.add_argument("--helper", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--addr", help=argparse.SUPPRESS)
    parser.add_argument("--did", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.helper:
        trio.run(helper, args.addr, args.did, args.count)
        return
    steps = tuple(int(s) for s in args.steps.split(","))
    if list(steps) != sorted(set(steps)) or steps[0] < 1:
        parser.error("--steps must be increasing positive counts")
    results = trio.run(measure, steps, args.churn)
    print()
    print(table(results))
    if args.markdown is not None:
        write_section(args.markdown, results)


if __name__ == "__main__":
    main()

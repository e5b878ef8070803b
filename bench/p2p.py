"""Delivered messages per second between two libp2p nodes, and what they cost.

Theory of operation
-------------------
Two processes on this machine (so each stack gets its own core, as two daemons
would): this one sends, a child (``--serve``) receives.  The child runs one
didcommd p2p node (:func:`daemon.p2p.host.serve`) whose ``on_message`` commits
every message to a real :class:`daemon.store.AsyncStore` (SQLite, WAL, the
durable commit: SQL, then an fdatasync of the WAL in the store's thread), plus two
references on the same machine:

``tcp``        plain trio TCP, one connection per sender, 4-byte length prefix,
               1-byte ack: the floor under everything (no crypto, no muxer);
``raw``        bare py-libp2p, one stream per message through ``BasicHost.new_stream``
               (two-round-trip multistream select), write, close, read to EOF;
               the receiver reads to EOF and closes: no commit.  Measured by a
               second pair of processes (``--bare``) running stock py-libp2p:
               without our process-wide fixes to it (:data:`BARE_ENV`), which
               would make this baseline faster than the library is;
``didcomm/v2`` our ``P2PNode.send(..., protocol="didcomm/v2")``: one stream per
               message, one-round-trip select, receiver commits before closing;
``fast``       our ``P2PNode.send(...)`` over ``/didcommd/deliver/1.0.0``: one
               long-lived stream, pipelined, acknowledged after the commit.

Every case runs for ``--seconds`` with 1 and with 16 concurrent senders, on 2 KB
and 64 KB messages (each message distinct, so the store really writes it).  A
"delivered" message is one whose sender got the receiver's acknowledgement;
latency is per message, send call to acknowledgement.

Targets (issue 5): ``didcomm/v2`` >= 90% of ``raw``'s rate (it pays a durable
commit that ``raw`` does not); between two didcommd daemons (``fast``) >= 300
delivered msgs/s and p50 < 5 ms (2 KB).  The machine is shared with other
work: rates move from run to run, ratios much less.

Run: ``.venv/bin/python bench/p2p.py [--seconds 2] [--quick] [--json out.json]
[--markdown bench/RESULTS.md]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from p2p_daemons import cpu_seconds  # noqa: E402  (bench/ is the script's own directory)

from daemon.p2p.host import P2PLimits, P2PNode, serve  # noqa: E402
from daemon.p2p.identity import PeerIdentity  # noqa: E402

RAW_PROTOCOL = "/didcommd-bench/raw/1.0.0"
SIZES = (2 * 1024, 64 * 1024)
SENDERS = (1, 16)
#: Messages sent before each timed window (dials, sessions, caches).
WARMUP_MESSAGES = 5
#: Seconds the child has to come up (import libp2p, open the store).
START_TIMEOUT = 60.0
#: The benchmark's limits: defaults, but no rate limit in the way.
BENCH_LIMITS = P2PLimits()
#: How the child's one line of machine-readable output starts.
READY_PREFIX = "BENCH-READY "
MARKER_BEGIN = "<!-- p2p section: begin -->"
MARKER_END = "<!-- p2p section: end -->"


@dataclass
class Config:
    listen: list[str] = field(default_factory=lambda: ["/ip4/127.0.0.1/tcp/0"])
    announce: list[str] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = False


# -- the receiving process ------------------------------------------------------------


async def serve_child(state_dir: Path) -> None:
    """Receive: our node (+ store), the raw handler and the TCP floor; report, wait."""
    import nacl.utils
    from libp2p.custom_types import TProtocol
    from libp2p.network.stream.exceptions import StreamError

    from daemon.sealing import KEY_BYTES, RecordSealer
    from daemon.store import AsyncStore

    store = await AsyncStore.open(state_dir / "bench.sqlite3")
    store.sync.use_sealer(RecordSealer(nacl.utils.random(KEY_BYTES)))  # as the wallet does

    async def commit(packed: bytes, peer: str) -> None:
        ref = "in-" + hashlib.sha256(packed).hexdigest()[:32]
        await store.run(
            store.sync.inbox_commit, ref, packed, transport="libp2p", received=int(time.time())
        )

    async def raw_handler(stream: Any) -> None:
        with contextlib.suppress(StreamError):  # StreamEOF: the end of the message
            while await stream.read(256 * 1024):
                continue
        await stream.close()

    async def tcp_handler(conn: trio.SocketStream) -> None:
        buffer = bytearray()
        async with conn:
            while True:
                while len(buffer) < 4 or len(buffer) < 4 + struct.unpack(">I", buffer[:4])[0]:
                    data = await conn.receive_some(256 * 1024)
                    if not data:
                        return
                    buffer += data
                size = struct.unpack(">I", buffer[:4])[0]
                del buffer[: 4 + size]
                await conn.send_all(b"\x01")

    async with trio.open_nursery() as nursery:
        node: P2PNode = await nursery.start(
            partial(serve, limits=BENCH_LIMITS), Config(), PeerIdentity.generate(), commit
        )
        node.host.set_stream_handler(TProtocol(RAW_PROTOCOL), raw_handler)
        listeners = await nursery.start(partial(trio.serve_tcp, tcp_handler, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        ready = {"peer_id": node.peer_id, "addrs": node.addrs, "tcp_port": port}
        print(READY_PREFIX + json.dumps(ready), flush=True)
        # Run until the parent closes our stdin.
        await trio.to_thread.run_sync(sys.stdin.read)
        nursery.cancel_scope.cancel()
    await store.aclose()


# -- the sending process ----------------------------------------------------------------


@dataclass
class Result:
    """One case at one size and sender count, over all rounds."""

    case: str
    size: int
    senders: int
    rates: list[float] = field(default_factory=list)  # one per round
    latencies: list[float] = field(default_factory=list)  # seconds, all rounds
    cpu_sender: float = 0.0  # CPU seconds, all rounds, this process
    cpu_receiver: float = 0.0  # CPU seconds, all rounds, the child

    def dump(self) -> dict[str, Any]:
        return {"case": self.case, "size": self.size, "senders": self.senders, "rates": self.rates,
                "latencies": self.latencies, "cpu": [self.cpu_sender, self.cpu_receiver]}

    @classmethod
    def load(cls, d: dict[str, Any]) -> Result:
        return cls(d["case"], d["size"], d["senders"], d["rates"], d["latencies"], *d["cpu"])

    def cpu_ms(self, seconds: float) -> float:
        return seconds * 1000 / len(self.latencies) if self.latencies else float("nan")

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def row(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "size": self.size,
            "senders": self.senders,
            "msgs_per_s": round(self.rate, 1),
            "p50_ms": round(self.percentile(0.5), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "delivered": len(self.latencies),
            "cpu_ms_sender": round(self.cpu_ms(self.cpu_sender), 3),
            "cpu_ms_receiver": round(self.cpu_ms(self.cpu_receiver), 3),
        }


Sender = Callable[[bytes], Awaitable[None]]


class Messages:
    """Distinct messages of one size (the store must really write each one)."""

    def __init__(self) -> None:
        self.counter = 0

    def make(self, size: int) -> bytes:
        self.counter += 1
        head = f'{{"n":{self.counter},"pid":{os.getpid()},"t":{time.time_ns()},"pad":"'.encode()
        return head + b"x" * max(0, size - len(head) - 2) + b'"}'


#: The receiving child's pid, for its CPU time (``/proc/<pid>/stat``).
_child_pid: int | None = None


def _child_cpu() -> float:
    """CPU seconds (user + system) the receiving child has used so far."""
    return 0.0 if _child_pid is None else cpu_seconds(_child_pid)


async def measure(
    result: Result, seconds: float, send_fns: list[Sender], messages: Messages
) -> None:
    """One timed window: every sender sends back to back for ``seconds``."""
    for send in send_fns:
        for _ in range(WARMUP_MESSAGES):
            await send(messages.make(result.size))
    deadline = trio.current_time() + seconds
    latencies: list[float] = []
    cpu_before = time.process_time(), _child_cpu()

    async def loop(send: Sender) -> None:
        while trio.current_time() < deadline:
            message = messages.make(result.size)
            start = time.perf_counter()
            await send(message)
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for send in send_fns:
            nursery.start_soon(loop, send)
    result.rates.append(len(latencies) / (time.perf_counter() - started))
    result.cpu_sender += time.process_time() - cpu_before[0]
    result.cpu_receiver += _child_cpu() - cpu_before[1]
    result.latencies.extend(latencies)


#: The environment of a bare py-libp2p run (``--bare``): none of our fixes that
#: change py-libp2p itself process-wide (window updates after every read, one
#: recv per read), as the issue measured it.
BARE_ENV = {"PY_YAMUX_RELEASE_ON_READ": "1", "DIDCOMMD_P2P_READ_AHEAD": "0"}


async def run_all(
    seconds: float, rounds: int, sizes: tuple[int, ...], senders_list: tuple[int, ...],
    only: tuple[str, ...] | None = None,
) -> list[Result]:
    from libp2p.custom_types import TProtocol
    from libp2p.network.stream.exceptions import StreamError
    from libp2p.peer.id import ID
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from multiaddr import Multiaddr

    from daemon.p2p.framing import encode_frame

    with tempfile.TemporaryDirectory(prefix="p2p-bench-", dir=str(REPO)) as state:
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", state],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        assert child.stdout is not None and child.stdin is not None
        global _child_pid
        _child_pid = child.pid
        try:
            with trio.fail_after(START_TIMEOUT):
                line = b""
                while not line.startswith(READY_PREFIX.encode()):  # skip the child's logs
                    line = await trio.to_thread.run_sync(child.stdout.readline)
                    if not line:
                        raise RuntimeError("the receiving process died")
            peer = json.loads(line[len(READY_PREFIX) :])
            results: list[Result] = []
            messages = Messages()
            async with trio.open_nursery() as nursery:
                node: P2PNode = await nursery.start(
                    partial(serve, limits=BENCH_LIMITS), Config(), PeerIdentity.generate(), _refuse
                )
                info = info_from_p2p_addr(Multiaddr(peer["addrs"][0]))
                await node.host.connect(info)
                pid: ID = info.peer_id

                async def tcp_sender() -> Sender:
                    stream = await trio.open_tcp_stream("127.0.0.1", peer["tcp_port"])

                    async def send(message: bytes) -> None:
                        await stream.send_all(struct.pack(">I", len(message)) + message)
                        if await stream.receive_some(1) != b"\x01":
                            raise RuntimeError("tcp floor: no ack")

                    return send

                async def raw_sender() -> Sender:
                    async def send(message: bytes) -> None:
                        stream = await node.host.new_stream(pid, [TProtocol(RAW_PROTOCOL)])
                        await stream.write(encode_frame(message))
                        await stream.close_write()
                        with contextlib.suppress(StreamError):  # EOF: the receiver closed
                            while await stream.read(1024):
                                continue
                        await stream.close()

                    return send

                def ours(protocol: str | None) -> Callable[[], Awaitable[Sender]]:
                    async def make() -> Sender:
                        async def send(message: bytes) -> None:
                            await node.send(
                                peer["peer_id"], peer["addrs"], message, protocol=protocol
                            )

                        return send

                    return make

                cases: list[tuple[str, Callable[[], Awaitable[Sender]]]] = [
                    ("tcp", tcp_sender),
                    ("raw", raw_sender),
                    ("didcomm/v2", ours("didcomm/v2")),
                    ("fast", ours(None)),
                ]
                if only is not None:
                    cases = [c for c in cases if c[0] in only]
                for size in sizes:
                    for senders in senders_list:
                        group = [Result(name, size, senders) for name, _ in cases]
                        senders_of = [[await make() for _ in range(senders)] for _, make in cases]
                        # Rounds interleave the cases, so a burst of load from
                        # elsewhere on the machine hits all of them alike.
                        for _ in range(rounds):
                            for result, send_fns in zip(group, senders_of, strict=True):
                                await measure(result, seconds, send_fns, messages)
                        for result in group:
                            row = result.row()
                            print(
                                f"  {result.case:<11} {size // 1024:>3} KB x{senders:<2} "
                                f"{row['msgs_per_s']:>8.1f} msg/s  p50 {row['p50_ms']:>7.2f} ms  "
                                f"p99 {row['p99_ms']:>7.2f} ms  cpu/msg "
                                f"{row['cpu_ms_sender']:.2f}+{row['cpu_ms_receiver']:.2f} ms",
                                file=sys.stderr,
                                flush=True,
                            )
                        results.extend(group)
                nursery.cancel_scope.cancel()
            return results
        finally:
            child.stdin.close()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


#: How the ``--bare`` run's one line of results starts.
BARE_PREFIX = "BENCH-BARE "


def bare_raw(seconds: float, rounds: int, quick: bool) -> list[Result]:
    """The ``raw`` rows, measured by a ``--bare`` run of this script (stock py-libp2p)."""
    argv = [sys.executable, __file__, "--bare", "--seconds", str(seconds), "--rounds", str(rounds)]
    if quick:
        argv.append("--quick")
    out = subprocess.run(
        argv, env={**os.environ, **BARE_ENV}, cwd=REPO, check=True, stdout=subprocess.PIPE
    ).stdout.decode()
    line = next(x for x in out.splitlines() if x.startswith(BARE_PREFIX))
    return [Result.load(d) for d in json.loads(line[len(BARE_PREFIX):])]


async def _refuse(packed: bytes, peer: str) -> None:
    raise RuntimeError("the sending side of the benchmark receives nothing")


# -- report -------------------------------------------------------------------------------


def table(results: list[Result]) -> tuple[str, list[str]]:
    """A markdown table with ratios, and the target verdicts."""
    by_key = {(r.case, r.size, r.senders): r for r in results}
    lines = [
        "| case | size | senders | msgs/s | p50 ms | p99 ms | vs raw | vs tcp |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        raw = by_key.get(("raw", r.size, r.senders))
        tcp = by_key.get(("tcp", r.size, r.senders))
        row = r.row()
        lines.append(
            f"| {r.case} | {r.size // 1024} KB | {r.senders} | {row['msgs_per_s']:.1f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
            f"{ratio_of(r, raw):.2f}x | {ratio_of(r, tcp):.3f}x |"
            if raw and tcp and raw.rate and tcp.rate
            else f"| {r.case} | {r.size // 1024} KB | {r.senders} | {row['msgs_per_s']:.1f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | - | - |"
        )
    verdicts = []
    for (case, size, senders), r in sorted(by_key.items()):
        raw = by_key.get(("raw", size, senders))
        if case == "didcomm/v2" and raw and raw.rate:
            ratio = ratio_of(r, raw)
            verdicts.append(
                f"{'PASS' if ratio >= 0.9 else 'MISS'} didcomm/v2 {size // 1024} KB x{senders}: "
                f"{ratio:.2f}x raw (target >= 0.90x, with a durable commit)"
            )
    fast = [r for r in results if r.case == "fast" and r.size == SIZES[0]]
    if fast:
        best = max(fast, key=lambda r: r.rate)
        single = min(fast, key=lambda r: r.senders)
        verdicts.append(
            f"{'PASS' if best.rate >= 300 else 'MISS'} fast {SIZES[0] // 1024} KB: "
            f"{best.rate:.0f} msg/s delivered with {best.senders} senders (target >= 300)"
        )
        p50 = single.percentile(0.5)
        verdicts.append(
            f"{'PASS' if p50 < 5.0 else 'MISS'} fast {SIZES[0] // 1024} KB: p50 {p50:.2f} ms "
            f"with {single.senders} sender (target < 5 ms)"
        )
    return "\n".join(lines), verdicts


def ratio_of(a: Result, b: Result) -> float:
    """Median of the per-round rate ratios (rounds interleave the cases); for cases
    measured in other rounds (bare raw), the ratio of the medians."""
    if len(a.rates) != len(b.rates):
        return a.rate / b.rate if b.rate else float("nan")
    return statistics.median(x / y for x, y in zip(a.rates, b.rates, strict=True) if y)


def write_markdown(path: Path, body: str) -> None:
    section = f"{MARKER_BEGIN}\n{body}\n{MARKER_END}"
    text = path.read_text() if path.exists() else ""
    if MARKER_BEGIN in text and MARKER_END in text:
        head, rest = text.split(MARKER_BEGIN, 1)
        text = head + section + rest.split(MARKER_END, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="timed window per case (default 2)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="2 KB only, one round of 0.5 s (a smoke run)"
    )
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--markdown", type=Path, help="update the p2p section of this markdown file"
    )
    parser.add_argument("--serve", metavar="STATE_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve_child, Path(args.serve))
        return
    sizes = SIZES[:1] if args.quick else SIZES
    seconds = 0.5 if args.quick else args.seconds
    rounds = 1 if args.quick else args.rounds
    print(
        f"p2p bench: {rounds} rounds of {seconds} s per case, sizes {sizes}, senders {SENDERS}",
        file=sys.stderr,
    )
    if args.bare:
        # The raw case alone, in processes with stock py-libp2p (see BARE_ENV).
        raw = trio.run(run_all, seconds, rounds, sizes, SENDERS, ("raw",))
        print(BARE_PREFIX + json.dumps([r.dump() for r in raw]), flush=True)
        return
    # The bare pair runs before and after ours (the machine's load drifts by the
    # minute); its rows are the two runs' rounds together.
    before = bare_raw(seconds, rounds, args.quick)
    results = trio.run(run_all, seconds, rounds, sizes, SENDERS, ("tcp", "didcomm/v2", "fast"))
    after = bare_raw(seconds, rounds, args.quick)
    for first, second in zip(before, after, strict=True):
        first.rates += second.rates
        first.latencies += second.latencies
        first.cpu_sender += second.cpu_sender
        first.cpu_receiver += second.cpu_receiver
    results += before
    body, verdicts = table(results)
    print(body)
    print()
    for verdict in verdicts:
        print(verdict)
    if args.json:
        args.json.write_text(
            json.dumps({"results": [r.row() for r in results], "verdicts": verdicts}, indent=2)
        )
    if args.markdown:
        median_note = (
            f"`bench/p2p.py --seconds {seconds} --rounds {rounds}`, {time.strftime('%Y-%m-%d')}; "
            "msgs/s are medians of the rounds, ratios medians of per-round ratios"
        )
        write_markdown(
            args.markdown,
            "## `p2p.py` — delivered messages/s between two nodes\n\n"
            + median_note
            + "\n\n"
            + body
            + "\n\n"
            + "\n".join(f"- {v}" for v in verdicts),
        )


if __name__ == "__main__":
    main()

"""Delivered messages/s and end-to-end latency between two real didcommd daemons.

Theory of operation
-------------------
Two ``didcommd run`` processes (temporary state, loopback, mDNS off), A and B,
each with a did:peer:2 carrying its libp2p service.  This process drives them
as a local program would, through their control sockets: senders call
``message.send`` on A (pack, commit to A's outbox, reply), A's outbox sender
delivers over libp2p, B commits to its inbox, unpacks, and publishes
``message.received``, which a subscriber on B's socket sees.  Latency is per
message, from the ``message.send`` call to that event; a sender sends its next
message once its previous one was received (so "16 senders" means up to 16
messages in flight).  Rate = messages received / window.

In the same run, ``bench/p2p.py`` (P's) measures the transport alone between two
nodes in two processes: ``fast`` (our pipelined ``/didcommd/deliver/1.0.0`` with
the receiver's durable commit), ``didcomm/v2`` (a stream per message), ``raw``
(bare py-libp2p, no commit) and ``tcp`` (plain trio TCP, the floor).  Its sizes
are 2 KB and 64 KB; our 1 KB case is compared with its 2 KB one.  The ratio
column is daemons / ``fast`` node rate: what the whole daemon (control socket,
packing, two durable commits on each side, events) keeps of the transport.

Run: ``.venv/bin/python bench/p2p_daemons.py [--seconds 3] [--quick] [--no-node]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from daemon.client import Client, ControlError  # noqa: E402

BASIC = "https://didcomm.org/basicmessage/2.0/message"
SIZES = (1024, 64 * 1024)
SENDERS = (1, 16)
#: Seconds a daemon may take to come up.
START_TIMEOUT = 60.0
#: Messages sent (and awaited) before a case's clock starts.
WARMUP_MESSAGES = 20
#: Seconds a single message may take before the bench gives up on it.
MESSAGE_TIMEOUT = 30.0


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by ``pid`` (None: this process)."""
    if pid is None:
        return time.process_time()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_seconds() -> float:
    """Idle CPU seconds of the whole machine so far (all cores)."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    size: int
    senders: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)  # one per round
    #: CPU seconds over all rounds: sender daemon, receiver daemon, this bench
    #: process (the client side), and the machine's idle time.
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("a", "b", "bench", "idle"), 0.0))

    @property
    def rate(self) -> float:
        """Median of the rounds' rates."""
        return statistics.median(self.rates) if self.rates else 0.0

    def cpu_ms(self, who: str) -> float:
        """CPU ms per delivered message."""
        return self.cpu[who] * 1000 / len(self.latencies) if self.latencies else float("nan")

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


@dataclass
class Proc:
    home: Path
    socket: Path
    proc: subprocess.Popen[bytes]


def start_daemon(root: Path, name: str) -> Proc:
    home = root / name
    home.mkdir()
    runtime = Path(tempfile.mkdtemp(prefix="dcb-", dir="/tmp"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_RUNTIME_DIR": str(runtime),
        "PYTHONPATH": str(REPO),
        "DIDCOMMD_P2P_LISTEN": "/ip4/127.0.0.1/tcp/0",
        "DIDCOMMD_P2P_MDNS": "false",
        "DIDCOMMD_DAEMON_LOG_FORMAT": "json",
        "DIDCOMMD_DAEMON_LOG_LEVEL": "warning",
    }
    log = open(home / "daemon.log", "wb")  # noqa: SIM115 (lives as long as the process)
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "run"], env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT
    )
    return Proc(home, runtime / "didcommd" / "control.sock", proc)


@contextlib.contextmanager
def two_daemons() -> Iterator[tuple[Proc, Proc]]:
    root = Path(tempfile.mkdtemp(prefix="didcommd-bench-"))
    procs = [start_daemon(root, "a"), start_daemon(root, "b")]
    try:
        yield procs[0], procs[1]
    finally:
        for p in procs:
            p.proc.terminate()
        for p in procs:
            try:
                p.proc.wait(20)
            except subprocess.TimeoutExpired:
                p.proc.kill()
            shutil.rmtree(p.socket.parent.parent, ignore_errors=True)
        if not os.environ.get("BENCH_KEEP"):  # keep the daemons' logs to look into
            shutil.rmtree(root, ignore_errors=True)


async def wait_ready(p: Proc) -> None:
    with trio.fail_after(START_TIMEOUT):
        while True:
            if p.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {(p.home / 'daemon.log').read_text()[-2000:]}")
            try:
                async with await Client.connect(p.socket) as c:
                    if (await c.call("status")).get("peer_id"):
                        return
            except (ControlError, OSError):
                pass
            await trio.sleep(0.1)


class Arrivals:
    """``message.received`` events on B, by message id, with the time they arrived."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.waiting: dict[str, trio.Event] = {}

    async def follow(self, path: Path, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with await Client.connect(path) as c:
            async for event in c.subscribe(["message.received"]):
                msg_id = event["data"]["id"]
                self.times[msg_id] = time.perf_counter()
                waiter = self.waiting.pop(msg_id, None)
                if waiter is not None:
                    waiter.set()

    async def wait(self, msg_id: str) -> float:
        if msg_id not in self.times:
            event = self.waiting.setdefault(msg_id, trio.Event())
            with trio.fail_after(MESSAGE_TIMEOUT):
                await event.wait()
        return self.times.pop(msg_id)


async def run_case(
    a: Proc, b: Proc, did_b: str, arrivals: Arrivals, size: int, senders: int, seconds: float,
    rounds: int = 1,
) -> Result:
    result = Result(size, senders)
    for _ in range(rounds):
        await run_round(result, a, b, did_b, arrivals, seconds)
    return result


async def run_round(result: Result, a: Proc, b: Proc, did_b: str, arrivals: Arrivals, seconds: float) -> None:
    size, senders = result.size, result.senders
    filler = "x" * max(0, size - 200)  # the rest of the plaintext is ~200 bytes of headers
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(await Client.connect(a.socket)) for _ in range(senders)]

        async def one(c: Client, n: int) -> float:
            started = time.perf_counter()
            sent = await c.call("message.send", {"to": did_b, "type": BASIC, "body": {"n": n, "content": filler}})
            return await arrivals.wait(sent["id"]) - started

        for n in range(WARMUP_MESSAGES):
            await one(clients[0], n)
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        before = {"a": cpu_seconds(a.proc.pid), "b": cpu_seconds(b.proc.pid), "bench": cpu_seconds(),
                  "idle": idle_seconds()}
        delivered = 0

        async def sender(c: Client) -> None:
            nonlocal delivered
            n = 0
            while time.perf_counter() < deadline:
                result.latencies.append(await one(c, n))
                delivered += 1
                n += 1

        async with trio.open_nursery() as nursery:
            for c in clients:
                nursery.start_soon(sender, c)
        elapsed = time.perf_counter() - started
        after = {"a": cpu_seconds(a.proc.pid), "b": cpu_seconds(b.proc.pid), "bench": cpu_seconds(),
                 "idle": idle_seconds()}
        for who in result.cpu:
            result.cpu[who] += after[who] - before[who]
        result.seconds += elapsed
        result.rates.append(delivered / elapsed)


async def run_daemons(seconds: float, sizes: tuple[int, ...], rounds: int = 1) -> list[Result]:
    results = []
    with two_daemons() as (a, b):
        await wait_ready(a)
        await wait_ready(b)
        async with await Client.connect(a.socket) as ca, await Client.connect(b.socket) as cb:
            await ca.call("did.create", {"label": "bench-a"})
            did_b = (await cb.call("did.create", {"label": "bench-b"}))["did"]
        arrivals = Arrivals()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(arrivals.follow, b.socket)
            await trio.sleep(0.2)  # the subscription is in place
            for size in sizes:
                for senders in SENDERS:
                    r = await run_case(a, b, did_b, arrivals, size, senders, seconds, rounds)
                    print(
                        f"daemons {size // 1024:>3} KB x{senders:<2}: {r.rate:8.1f} msgs/s  "
                        f"p50 {r.pct(0.5):7.2f} ms  p99 {r.pct(0.99):7.2f} ms  CPU ms/msg "
                        f"A {r.cpu_ms('a'):.2f} B {r.cpu_ms('b'):.2f} client {r.cpu_ms('bench'):.2f}  "
                        f"idle cores {r.cpu['idle'] / r.seconds:.2f}",
                        file=sys.stderr,
                    )
                    results.append(r)
            nursery.cancel_scope.cancel()
    return results


def run_node_bench(
    seconds: float, quick: bool, markdown: Path | None = None, rounds: int = 2
) -> dict[tuple[str, int, int], dict[str, Any]]:
    """P's bench/p2p.py in a subprocess, in this same run: {(case, size, senders): row}."""
    out = Path(tempfile.mkdtemp(prefix="p2pbench-")) / "p2p.json"
    cmd = [sys.executable, str(REPO / "bench" / "p2p.py"), "--json", str(out)]
    if markdown is not None:
        cmd += ["--markdown", str(markdown)]  # its own section, from this same run
    cmd += ["--quick"] if quick else ["--seconds", str(seconds), "--rounds", str(rounds)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    rows = json.loads(out.read_text())["results"]
    shutil.rmtree(out.parent, ignore_errors=True)
    return {(r["case"], r["size"], r["senders"]): r for r in rows}


def node_row(node: dict[tuple[str, int, int], dict[str, Any]], case: str, size: int, senders: int) -> dict[str, Any] | None:
    sizes = sorted({s for (_, s, _) in node})
    if not sizes:
        return None
    nearest = min(sizes, key=lambda s: abs(s - size))
    return node.get((case, nearest, senders))


def table(results: list[Result], node: dict[tuple[str, int, int], dict[str, Any]]) -> str:
    lines = [
        "| size | senders | daemons msgs/s | p50 ms | p99 ms | node fast msgs/s (p50 ms) | daemons / fast "
        "| node didcomm/v2 msgs/s | raw libp2p msgs/s | trio TCP msgs/s | CPU ms/msg A + B + client | idle cores |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        fast = node_row(node, "fast", r.size, r.senders)
        cells = []
        for case in ("didcomm/v2", "raw", "tcp"):
            row = node_row(node, case, r.size, r.senders)
            cells.append(f"{row['msgs_per_s']:.0f}" if row else "-")
        ratio = f"{r.rate / fast['msgs_per_s']:.2f}" if fast and fast["msgs_per_s"] else "-"
        fast_cell = f"{fast['msgs_per_s']:.0f} ({fast['p50_ms']:.1f}) @{fast['size'] // 1024} KB" if fast else "-"
        lines.append(
            f"| {r.size // 1024} KB | {r.senders} | {r.rate:.1f} | {r.pct(0.5):.2f} | {r.pct(0.99):.2f} "
            f"| {fast_cell} | {ratio} | {' | '.join(cells)} "
            f"| {r.cpu_ms('a'):.2f} + {r.cpu_ms('b'):.2f} + {r.cpu_ms('bench'):.2f} "
            f"| {r.cpu['idle'] / r.seconds:.2f} |"
        )
    return "\n".join(lines)


MARKER_BEGIN = "<!-- p2p_daemons section: begin -->"
MARKER_END = "<!-- p2p_daemons section: end -->"
#: Issue 5's targets for two daemons (1 KB).
TARGET_RATE = 300.0
TARGET_P50_MS = 5.0


#: Commits timed by the fsync probe.
FSYNC_PROBE_COMMITS = 200
#: Bytes per row in the probe (about one 1 KB message, packed).
FSYNC_PROBE_ROW_BYTES = 2048


def fsync_floor(directory: Path) -> dict[str, float]:
    """p50 ms of one SQLite commit in WAL mode, synchronous FULL and NORMAL, on this disk.

    The floor under the 1-sender latency: the receiver's inbox commit (FULL) is on
    every message's path (the sender's own commit overlaps the send).
    """
    import sqlite3

    out: dict[str, float] = {}
    for mode in ("FULL", "NORMAL"):
        path = directory / f"fsync-probe-{mode}.sqlite3"
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {mode}")
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
            times = []
            for _ in range(FSYNC_PROBE_COMMITS):
                started = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t (b) VALUES (?)", (os.urandom(FSYNC_PROBE_ROW_BYTES),))
                conn.execute("COMMIT")
                times.append(time.perf_counter() - started)
        finally:
            conn.close()
        out[mode] = statistics.median(times) * 1000
    return out


def verdicts(results: list[Result], node: dict[tuple[str, int, int], dict[str, Any]]) -> list[str]:
    """Issue 5's targets as bench/p2p.py reads them: the rate with 16 senders, p50 with one."""
    out = []
    for r in results:
        if r.size != 1024:
            continue
        if r.senders == 1:
            ok = r.pct(0.5) < TARGET_P50_MS
            target = f"p50 < {TARGET_P50_MS:.0f} ms"
        else:
            ok = r.rate >= TARGET_RATE
            target = f">= {TARGET_RATE:.0f} msgs/s"
        line = (
            f"1 KB x{r.senders}: {r.rate:.0f} msgs/s, p50 {r.pct(0.5):.2f} ms against "
            f"{target}: {'met' if ok else 'NOT met'}"
        )
        v2 = node_row(node, "didcomm/v2", r.size, r.senders)
        if v2 and v2["msgs_per_s"]:
            share = r.rate / v2["msgs_per_s"]
            # Information, not a target: the whole daemon path (control socket,
            # packing, events) against bench/p2p.py's transport and commit alone.
            line += f"; {share:.0%} of the node's didcomm/v2 rate ({v2['msgs_per_s']:.0f})"
        out.append(line)
    return out


def write_markdown(path: Path, body: str) -> None:
    section = f"{MARKER_BEGIN}\n{body}\n{MARKER_END}"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if MARKER_BEGIN in text and MARKER_END in text:
        head, rest = text.split(MARKER_BEGIN, 1)
        text = head + section + rest.split(MARKER_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed window per case (default 3)")
    parser.add_argument("--quick", action="store_true", help="1 KB only, 1 s windows (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed windows per case; the rate is their median (default 3)")
    parser.add_argument("--no-node", action="store_true", help="skip bench/p2p.py (daemons only)")
    parser.add_argument("--node-rounds", type=int, default=2,
                        help="bench/p2p.py's interleaved rounds (default 2)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--markdown", type=Path, help="update this file's p2p_daemons section (and bench/p2p.py's p2p one)"
    )
    args = parser.parse_args()
    sizes = SIZES[:1] if args.quick else SIZES
    seconds = 1.0 if args.quick else args.seconds
    with tempfile.TemporaryDirectory(prefix="fsync-probe-") as probe_dir:
        floor = fsync_floor(Path(probe_dir))
    print(f"one SQLite WAL commit here: FULL {floor['FULL']:.2f} ms, NORMAL {floor['NORMAL']:.2f} ms (p50)",
          file=sys.stderr)
    rounds = 1 if args.quick else max(1, args.rounds)
    results = trio.run(run_daemons, seconds, sizes, rounds)
    node = {} if args.no_node else run_node_bench(
        min(seconds, 2.0), args.quick, args.markdown, rounds=max(1, args.node_rounds)
    )
    body = table(results, node)
    print(body)
    found = verdicts(results, node)
    for v in found:
        print(v)
    if args.markdown:
        write_markdown(
            args.markdown,
            "## `p2p_daemons.py` — delivered messages/s between two didcommd daemons\n\n"
            f"`bench/p2p_daemons.py --seconds {seconds} --rounds {rounds}`, {time.strftime('%Y-%m-%d')}; "
            "rates are medians of the rounds, latencies over all rounds; node rates "
            "from `bench/p2p.py` in the same run (its own section); send call to `message.received` "
            "on the receiver, i.e. committed in its inbox\n\n" + body + "\n\n"
            + "\n".join(f"- {v}" for v in found)
            + f"\n- the disk, same run: one SQLite WAL commit costs {floor['FULL']:.2f} ms with "
            f"synchronous=FULL (an fsync), {floor['NORMAL']:.2f} ms with NORMAL (p50 of "
            f"{FSYNC_PROBE_COMMITS}); one durable commit (the receiver's inbox: its SQL, then "
            "an fdatasync of the WAL, what FULL costs) is on every message's path, the "
            "sender's overlaps the send",
        )
    if args.json:
        args.json.write_text(json.dumps({
            "fsync_floor_ms": {k: round(v, 3) for k, v in floor.items()},
            "daemons": [
                {"size": r.size, "senders": r.senders, "msgs_per_s": round(r.rate, 1),
                 "p50_ms": round(r.pct(0.5), 2), "p99_ms": round(r.pct(0.99), 2),
                 "rates": [round(x, 1) for x in r.rates],
                 "cpu_ms_per_msg": {k: round(r.cpu_ms(k), 3) for k in ("a", "b", "bench")},
                 "p50_of_all": round(statistics.median(r.latencies) * 1000, 2) if r.latencies else None}
                for r in results
            ],
            "node": [dict(v) for v in node.values()],
        }, indent=2))


if __name__ == "__main__":
    main()

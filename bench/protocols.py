"""Trust-ping round trips between two real daemons, next to the raw p2p delivery rate.

Theory of operation
-------------------
Two ``didcommd run`` processes on this machine (temporary homes, libp2p on
127.0.0.1, mDNS off), connected the way people connect them: A makes an
invitation, B accepts it.  Then B's control client asks for trust pings to A
with ``wait`` (``trust_ping.send``): each one is a full protocol round trip:
control request, record and packed ping committed to B's store, delivered over
libp2p, committed to A's inbox, dispatched, ping-response packed and committed
to A's outbox, delivered back, committed and dispatched by B, and the waiting
control request answered.  That is four durable SQLite commits and four
envelope operations per round trip.

Cases: ``sequential`` (one ping at a time) and ``16 concurrent`` (16 control
clients pinging at once), each for ``--seconds``.  Rates are round trips per
second; latencies are per ping, request to answer (p50, p99).

For comparison the same run executes ``bench/p2p.py --quick`` (the transport
benchmark: one-way delivered messages per second between two nodes, with a
durable commit at the receiver) and prints its ``fast`` and ``didcomm/v2``
rows at 1 and 16 senders.

Run: ``.venv/bin/python bench/protocols.py [--seconds 5] [--json out.json]
[--markdown bench/RESULTS.md] [--no-p2p]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from daemon.client import Client, ControlError, DaemonUnavailableError, SyncClient  # noqa: E402

#: Seconds a daemon may take to create its control socket.
START_TIMEOUT = 60.0
#: Seconds one ping may wait for its response.
PING_WAIT = 30.0
#: Concurrency of the second case.
CONCURRENT = 16
MARKER_BEGIN = "<!-- protocols section: begin -->"
MARKER_END = "<!-- protocols section: end -->"


class Daemon:
    """One ``didcommd run`` in a temporary home."""

    def __init__(self, root: Path, name: str) -> None:
        self.home = root / name
        self.home.mkdir(parents=True)
        self.runtime = Path(tempfile.mkdtemp(prefix="dcb-", dir="/tmp"))
        self.socket = self.runtime / "didcommd" / "control.sock"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
            "XDG_STATE_HOME": str(self.home / "state"), "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_RUNTIME_DIR": str(self.runtime), "PYTHONPATH": str(REPO),
            "DIDCOMMD_P2P_LISTEN": "/ip4/127.0.0.1/tcp/0", "DIDCOMMD_P2P_MDNS": "false",
            "DIDCOMMD_DAEMON_LOG_FORMAT": "json", "DIDCOMMD_DAEMON_LOG_LEVEL": "warning",
        }
        self.log = open(self.home / "daemon.log", "ab")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "run"], env=env, cwd=self.home,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with SyncClient.connect(self.socket, timeout=5) as c:
                    if c.call("status", {}).get("peer_id"):
                        return
            except (OSError, DaemonUnavailableError, ControlError, TimeoutError):  # not up yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"daemon did not start; see {self.home / 'daemon.log'}") from None
            time.sleep(0.1)

    def call(self, method: str, **params: Any) -> Any:
        with SyncClient.connect(self.socket, timeout=60) as c:
            return c.call(method, params)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.runtime, ignore_errors=True)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _pinger(socket: Path, target: str, until: float, latencies: list[float], failures: list[str]) -> None:
    async with await Client.connect(socket) as client:
        while trio.current_time() < until:
            started = time.perf_counter()
            result = await client.call("trust_ping.send", {"to": target, "wait": PING_WAIT})
            if result.get("state") != "answered":
                failures.append(str(result.get("state")))
                continue
            latencies.append((time.perf_counter() - started) * 1000)


async def _case(socket: Path, target: str, senders: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    failures: list[str] = []
    started = time.perf_counter()
    until = trio.current_time() + seconds
    async with trio.open_nursery() as nursery:
        for _ in range(senders):
            nursery.start_soon(_pinger, socket, target, until, latencies, failures)
    elapsed = time.perf_counter() - started
    return {
        "case": "sequential" if senders == 1 else f"{senders} concurrent",
        "senders": senders,
        "round_trips": len(latencies),
        "round_trips_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_pct(latencies, 0.5), 2),
        "p99_ms": round(_pct(latencies, 0.99), 2),
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
        "failures": len(failures),
    }


def run_pings(seconds: float) -> list[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="bench-protocols-"))
    a, b = Daemon(root, "a"), Daemon(root, "b")
    try:
        a.wait_ready()
        b.wait_ready()
        inv = a.call("invitation.create", goal="bench")
        conn = b.call("invitation.accept", invitation=inv["url"], label="a")["connection"]["id"]
        deadline = time.monotonic() + START_TIMEOUT
        while b.call("connections.show", connection=conn)["state"] != "active":
            if time.monotonic() > deadline:
                raise RuntimeError("the connection did not become active")
            time.sleep(0.05)
        # Warm-up: the libp2p connection, caches, the first commits.
        for _ in range(5):
            b.call("trust_ping.send", to=conn, wait=PING_WAIT)
        return [trio.run(_case, b.socket, conn, n, seconds) for n in (1, CONCURRENT)]
    finally:
        a.stop()
        b.stop()
        shutil.rmtree(root, ignore_errors=True)


def run_p2p() -> list[dict[str, Any]]:
    out = Path(tempfile.mkdtemp(prefix="bench-p2p-")) / "p2p.json"
    try:
        subprocess.run([sys.executable, str(REPO / "bench" / "p2p.py"), "--quick", "--json", str(out)],
                       check=True, capture_output=True, timeout=600)
        rows = json.loads(out.read_text())["results"]
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    return [r for r in rows if r["case"] in ("fast", "didcomm/v2")]


def table(pings: list[dict[str, Any]], p2p: list[dict[str, Any]]) -> str:
    lines = ["| case | round trips/s | p50 ms | p99 ms | failures |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| trust ping, {r['case']} | {r['round_trips_per_s']} | {r['p50_ms']} | {r['p99_ms']} | "
              f"{r['failures']} |" for r in pings]
    if p2p:
        lines += ["", "Same run, `bench/p2p.py --quick` (one-way delivery of 2 KB, durable commit at the receiver):",
                  "", "| transport | senders | msgs/s | p50 ms | p99 ms |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['case']} | {r['senders']} | {r['msgs_per_s']} | {r['p50_ms']} | {r['p99_ms']} |"
                  for r in p2p]
    return "\n".join(lines)


def write_markdown(path: Path, body: str, note: str) -> None:
    section = f"{MARKER_BEGIN}\n## `protocols.py` — trust-ping round trips between two daemons\n\n{note}\n\n{body}\n{MARKER_END}"
    text = path.read_text() if path.exists() else ""
    if MARKER_BEGIN in text and MARKER_END in text:
        head, rest = text.split(MARKER_BEGIN, 1)
        text = head + section + rest.split(MARKER_END, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="timed window per case (default 5)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="update the protocols section of this markdown file")
    parser.add_argument("--no-p2p", action="store_true", help="skip the transport benchmark")
    args = parser.parse_args()
    pings = run_pings(args.seconds)
    p2p = [] if args.no_p2p else run_p2p()
    body = table(pings, p2p)
    print(body)
    if args.json:
        args.json.write_text(json.dumps({"pings": pings, "p2p": p2p}, indent=2))
    if args.markdown:
        note = f"`bench/protocols.py --seconds {args.seconds:g}`, {time.strftime('%Y-%m-%d')}"
        write_markdown(args.markdown, body, note)


if __name__ == "__main__":
    main()

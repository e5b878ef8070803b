"""Control-socket round trips: the daemon's ``status`` next to a bare msgpack echo.

Theory of operation
-------------------
Two servers run as separate processes on Unix sockets in a temporary
directory, and the same trio client (:class:`daemon.client.Client`, one
connection per simulated client) drives both in the same run:

* **daemon**: a real ``didcommd run`` (fresh state, loopback only), answering
  ``status`` - frame decoding, request validation, dispatch, the agent's
  SQLite count queries, reply encoding;
* **echo**: the floor - a trio server that decodes each frame with
  :mod:`daemon.frames` and answers ``{"id", "result": {}}`` at once, with no
  validation, no dispatch and no store.

For 1 and 16 concurrent clients (each does sequential calls on its own
connection), for ``status`` and for ``version`` (answered by the control layer
alone, so the difference is the agent's and the store's share), it reports round trips per second and the p50 / p99 latency of a
single call, then the ratio daemon / echo, which cancels the machine's speed
out (the machine is shared and noisy: trust the ratios more than the rates).
Last, the daemon's resident memory (VmRSS) after it has been idle for a second.

    .venv/bin/python bench/control.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon import frames  # noqa: E402
from daemon.client import Client  # noqa: E402

#: Concurrent clients measured.
CONCURRENCY = (1, 16)
#: Methods measured: ``status`` goes through the agent and the store; ``version``
#: is answered by the control layer alone (its own overhead).
METHODS = ("status", "version")
#: Seconds the daemon may take to become ready.
READY_TIMEOUT = 30.0
#: Calls made before measuring (imports, caches, SQLite pages).
WARMUP_CALLS = 200


# -- the echo server (runs in its own process) -------------------------------------


async def _echo_connection(stream: trio.SocketStream) -> None:
    decoder = frames.FrameDecoder()
    async with stream:
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            decoder.feed(data)
            out = []
            while (frame := decoder.next_frame()) is not frames.NEED_DATA:
                out.append(frames.encode_frame({"id": frame.get("id"), "result": {}}))
            if out:
                await stream.send_all(b"".join(out))


async def echo_server(path: str) -> None:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(128)
    # Ready: the parent waits for this line.
    print("ready", flush=True)
    await trio.serve_listeners(_echo_connection, [trio.SocketListener(sock)])


# -- measuring ------------------------------------------------------------------------


async def measure(path: Path, method: str, clients: int, seconds: float) -> tuple[float, float, float]:
    """(round trips per second, p50 ms, p99 ms) of ``method`` with ``clients`` concurrent connections."""
    latencies: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(await Client.connect(path)) for _ in range(clients)]

        async def warm(c: Client) -> None:
            for _ in range(WARMUP_CALLS // clients + 1):
                await c.call(method)

        async def timed(c: Client, deadline: float) -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await c.call(method)
                latencies.append(time.perf_counter() - t0)

        async with trio.open_nursery() as n:
            for c in conns:
                n.start_soon(warm, c)
        start = time.perf_counter()
        async with trio.open_nursery() as n:
            for c in conns:
                n.start_soon(timed, c, start + seconds)
        elapsed = time.perf_counter() - start
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return len(latencies) / elapsed, p50, p99


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_daemon(home: Path) -> tuple[subprocess.Popen[bytes], Path]:
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    notify_path = runtime / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_RUNTIME_DIR": str(runtime),
        "PYTHONPATH": str(REPO),
        "NOTIFY_SOCKET": str(notify_path),
        "DIDCOMMD_P2P_LISTEN": "/ip4/127.0.0.1/tcp/0",
        "DIDCOMMD_P2P_MDNS": "false",
        "DIDCOMMD_DAEMON_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "run"], env=env, cwd=home,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    notify.settimeout(READY_TIMEOUT)
    with notify:
        while b"READY=1" not in notify.recv(4096).split(b"\n"):
            pass
    return proc, runtime / "didcommd" / "control.sock"


def start_echo(home: Path) -> tuple[subprocess.Popen[bytes], Path]:
    path = home / "echo.sock"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--echo-server", str(path)], stdout=subprocess.PIPE, cwd=REPO
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise RuntimeError("echo server did not start")
    return proc, path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per cell (default 3)")
    parser.add_argument("--echo-server", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        trio.run(echo_server, args.echo_server)
        return 0

    home = Path(tempfile.mkdtemp(prefix="dcbench-", dir="/tmp"))
    daemon, daemon_sock = start_daemon(home)
    echo, echo_sock = start_echo(home)
    try:
        time.sleep(1.0)
        idle_rss = rss_kib(daemon.pid)
        rows = []
        for method in METHODS:
            for clients in CONCURRENCY:
                d = trio.run(measure, daemon_sock, method, clients, args.seconds)
                e = trio.run(measure, echo_sock, method, clients, args.seconds)
                rows.append((method, clients, d, e))
    finally:
        for proc in (daemon, echo):
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        shutil.rmtree(home, ignore_errors=True)

    print(f"control socket round trips, {args.seconds:g} s per cell, Python {sys.version.split()[0]}")
    print()
    print("| method | clients | daemon rt/s | p50 ms | p99 ms | echo rt/s | p50 ms | p99 ms | daemon/echo |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for method, clients, (drate, dp50, dp99), (erate, ep50, ep99) in rows:
        print(
            f"| {method} | {clients} | {drate:,.0f} | {dp50:.3f} | {dp99:.3f} | {erate:,.0f} | {ep50:.3f} "
            f"| {ep99:.3f} | {drate / erate:.2f} |"
        )
    print()
    print(f"daemon idle RSS: {idle_rss / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

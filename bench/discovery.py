"""How long N daemons on one LAN take to discover each other (mDNS), in network namespaces.

    .venv/bin/python bench/discovery.py              # N = 5 and 20
    .venv/bin/python bench/discovery.py --n 3 --n 8  # other sizes

For each N: a fresh LAN of N network namespaces (:mod:`tests.netns`, needs
root / CAP_SYS_ADMIN; nothing touches the machine's real interfaces), one real
``didcommd run`` per namespace listening on ``0.0.0.0`` with mDNS on and no
addresses configured, all launched at once.  Reported:

- ``ready``: seconds from launch until every daemon said READY=1;
- ``discovered``: seconds from the last READY=1 until every daemon lists all
  N-1 others in ``peers.list`` (polled every 50 ms through the control
  sockets), and from launch;
- per-daemon time to find all others (p50 / max), from the last READY=1.

Every daemon and namespace is removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.daemon.conftest import Daemon, make_daemon  # noqa: E402
from tests.netns import lan  # noqa: E402

#: Seconds N daemons may take to become ready (20 cold starts on 2 cores).
READY_TIMEOUT = 180.0
#: Seconds discovery may take before the run is declared failed.
DISCOVERY_TIMEOUT = 120.0
#: Seconds between polls of the peer lists.
POLL_INTERVAL = 0.05


def run(n: int) -> dict[str, float]:
    """One measurement for ``n`` daemons."""
    with lan(n) as net, tempfile.TemporaryDirectory(prefix="dcd-bench-") as tmp:
        daemons: list[Daemon] = []
        try:
            for i, host in enumerate(net.hosts):
                d = make_daemon(Path(tmp) / f"d{i}", env={
                    "DIDCOMMD_P2P_LISTEN": "/ip4/0.0.0.0/tcp/0", "DIDCOMMD_P2P_MDNS": "true",
                    "DIDCOMMD_DAEMON_LOG_LEVEL": "warning",
                })
                d.args = host.command(d.args)
                daemons.append(d)
            launched = time.monotonic()
            for d in daemons:
                d.start(wait=False)
            for d in daemons:
                d.notify.wait_for("READY=1", timeout=READY_TIMEOUT)
            ready = time.monotonic()
            ids = [d.call("status")["peer_id"] for d in daemons]
            done: dict[int, float] = {}
            while len(done) < n:
                if time.monotonic() - ready > DISCOVERY_TIMEOUT:
                    raise SystemExit(f"N={n}: only {len(done)} daemons found all others "
                                     f"within {DISCOVERY_TIMEOUT} s")
                for i, d in enumerate(daemons):
                    if i in done:
                        continue
                    listed = {p["peer_id"] for p in d.call("peers.list")["peers"]}
                    if all(pid in listed for j, pid in enumerate(ids) if j != i):
                        done[i] = time.monotonic() - ready
                time.sleep(POLL_INTERVAL)
            finished = time.monotonic()
        finally:
            for d in daemons:
                d.cleanup()
    per = sorted(done.values())
    return {
        "n": n,
        "ready_s": ready - launched,
        "discovered_s": finished - ready,
        "from_launch_s": finished - launched,
        "per_daemon_p50_s": statistics.median(per),
        "per_daemon_max_s": per[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, action="append", help="daemons (repeatable; default 5 and 20)")
    args = parser.parse_args()
    print("| N | all ready (s) | all discovered after ready (s) | from launch (s) | per daemon p50 / max (s) |")
    print("| --- | --- | --- | --- | --- |")
    for n in args.n or [5, 20]:
        r = run(n)
        print(f"| {n} | {r['ready_s']:.1f} | {r['discovered_s']:.2f} | {r['from_launch_s']:.1f} | "
              f"{r['per_daemon_p50_s']:.2f} / {r['per_daemon_max_s']:.2f} |", flush=True)


if __name__ == "__main__":
    main()

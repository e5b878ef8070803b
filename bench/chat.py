"""A conversation's page (``didcommctl chat``): ours next to opening every record.

Theory of operation
-------------------
A store holds ``--records`` basic-message records (sealed, as the daemon writes them)
spread over ``--peers`` peers, one message a second on average.  A page is the
``--limit`` newest messages with one peer.  Three cases, in the same run on the same
file:

* ``active peer``  the page of a peer with messages all through the history;
* ``silent peer``  a peer with no message at all (the worst case: nothing stops early);
* ``old page``     an active peer's page ``--back`` pages back (``before``).

*ours* is :meth:`daemon.store.Store.records_newest` with the peer's DIDs (schema v8: it
opens only that peer's records, newest update first, and stops once no unopened one can
be newer than the page).  The *baseline* is what it replaced in design: open every
basic-message record, keep the peer's, sort, slice.  Figures are the median of
``--rounds`` calls in milliseconds; the ratio is baseline / ours (above 1: ours is faster).

Run: ``.venv/bin/python bench/chat.py [--records 50000] [--peers 5] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # (before bench/, whose protocols.py is a script)

from daemon.store import Store  # noqa: E402
from protocols.basic_message import PIURI  # noqa: E402
from tests.daemon.stores import open_store  # noqa: E402


def fill(store: Store, records: int, peers: int) -> None:
    with store.transaction():
        for n in range(records):
            peer = f"did:ex:peer-{n % peers}"
            store.record_put(PIURI, f"m{n}", "sender" if n % 2 else "receiver", state="sent", updated=1_000 + n,
                             record={"thid": f"m{n}", "their_did": peer, "our_did": "did:ex:me",
                                     "created_time": 1_000 + n, "data": {"content": "x" * 120}})


def baseline(store: Store, peer: str, limit: int, before: tuple[int, int] | None) -> list[Any]:
    rows = store._conn.execute(
        "SELECT rowid, protocol, thid, role, record FROM protocol_records WHERE protocol = ?", (PIURI,)
    ).fetchall()
    found = []
    for rowid, *rest in rows:
        record = store._open_protocol_record(rest)
        place = (int(record["created_time"]), int(rowid))
        if record.get("their_did") == peer and (before is None or place < before):
            found.append((place, record))
    found.sort(key=lambda item: item[0], reverse=True)
    return found[:limit]


def ours(store: Store, peer: str, limit: int, before: tuple[int, int] | None) -> list[Any]:
    return store.records_newest(PIURI, lambda r: r.get("their_did") == peer, limit=limit, before=before,
                                their_dids={peer})


def median_ms(call: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=50_000, help="basic-message records (default 50000)")
    parser.add_argument("--peers", type=int, default=5, help="peers they are spread over (default 5)")
    parser.add_argument("--limit", type=int, default=20, help="messages per page (default 20)")
    parser.add_argument("--back", type=int, default=10, help="pages back for 'old page' (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="calls per figure (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "chat.sqlite3")
        try:
            fill(store, args.records, args.peers)
            active, silent = "did:ex:peer-1", "did:ex:nobody"
            page = ours(store, active, args.limit * args.back, None)
            old = page[-1][0] if page else None
            assert ours(store, active, args.limit, old) == baseline(store, active, args.limit, old)
            print(f"{args.records:,} basic-message records over {args.peers} peers, pages of {args.limit}")
            print(f"{'case':<14} {'ours ms':>9} {'baseline ms':>12} {'baseline/ours':>14}")
            for name, peer, before in (("active peer", active, None), ("silent peer", silent, None),
                                       ("old page", active, old)):
                o = median_ms(lambda p=peer, b=before: ours(store, p, args.limit, b), args.rounds)
                b = median_ms(lambda p=peer, b=before: baseline(store, p, args.limit, b), args.rounds)
                print(f"{name:<14} {o:>9.1f} {b:>12.1f} {b / o:>14.1f}")
        finally:
            store.close()


if __name__ == "__main__":
    main()

"""What every inbound message asks of the connection book, as connections grow.

Theory of operation
-------------------
Each inbound message asks :class:`daemon.connections.ConnectionBook` whether one of
its DIDs was rotated away (``refusal``) and which connection its DID pair is
(``for_pair``); the events it causes ask ``for_pair`` again.  An issuer may have tens
of thousands of connections.  *ours* answers from indexes by DID; the *baseline*,
measured in the same run on the same book, is what it replaced: a look at every
connection (each building its ``Pairing``).  Figures are microseconds per message
(one ``refusal`` and two ``for_pair``), median of ``--rounds`` windows; the ratio is
baseline / ours.

Run: ``.venv/bin/python bench/connections.py [--sizes 100,1000,10000,100000]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # (before bench/, whose protocols.py is a script)

from daemon.connections import Connection, ConnectionBook  # noqa: E402
from tests.daemon.stores import open_async_store  # noqa: E402


def connection(n: int) -> Connection:
    return Connection(id=f"c{n}", label=None, state="active", role="inviter", my_did=f"did:ex:me-{n}",
                      their_did=f"did:ex:them-{n}", created=n, updated=n,
                      their_retired=(f"did:ex:old-them-{n}",) if n % 10 == 0 else ())


async def scan_per_message(book: ConnectionBook, sender: str, recipient: str) -> Any:
    conns = list((await book._all()).values())
    for c in conns:
        if c.pairing.refuses(sender=sender, recipient=recipient) is not None:
            break
    found = None
    for _ in range(2):
        found = next((c for c in conns if c.their_did == sender and c.pairing.accepts_to(recipient)), None)
    return found


async def ours_per_message(book: ConnectionBook, sender: str, recipient: str) -> Any:
    await book.refusal(sender=sender, recipient=recipient)
    await book.for_pair(sender, recipient)
    return await book.for_pair(sender, None)


async def window_us(call: Callable[[], Awaitable[Any]], budget: float) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < budget:
        await call()
        count += 1
    return elapsed / count * 1e6


async def main_async(sizes: list[int], rounds: int, budget: float) -> None:
    print(f"{'connections':>12} {'ours us/msg':>12} {'baseline us/msg':>16} {'baseline/ours':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            store = await open_async_store(Path(tmp) / f"c{size}.sqlite3")
            try:
                book = ConnectionBook(store)
                for n in range(size):
                    await book.cache(connection(n))
                probe = size // 2  # a connection in the middle, as any would be
                sender, recipient = f"did:ex:them-{probe}", f"did:ex:me-{probe}"
                assert (await ours_per_message(book, sender, recipient)) == \
                    (await scan_per_message(book, sender, recipient))
                ours, base = [], []
                for _ in range(rounds):
                    ours.append(await window_us(
                        lambda b=book, s=sender, r=recipient: ours_per_message(b, s, r), budget))
                    base.append(await window_us(
                        lambda b=book, s=sender, r=recipient: scan_per_message(b, s, r), budget))
                o, b = statistics.median(ours), statistics.median(base)
                print(f"{size:>12,} {o:>12.1f} {b:>16.1f} {b / o:>14.1f}")
            finally:
                await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100,1000,10000,100000", help="connection counts (default 100,...,100000)")
    parser.add_argument("--rounds", type=int, default=5, help="windows per figure (default 5)")
    parser.add_argument("--budget", type=float, default=0.2, help="seconds per window (default 0.2)")
    args = parser.parse_args()
    trio.run(main_async, [int(s) for s in args.sizes.split(",")], args.rounds, args.budget)


if __name__ == "__main__":
    main()

"""What sealing records at rest costs a delivered message.

Theory of operation
-------------------
Two agents in this process (real stores in a temporary directory, the wallet
unlocked as the daemon does) exchange basic messages through their outboxes
and inboxes, as ``tests/daemon/test_conversations.Wire`` moves them (no
network: the transport is not what is measured).  Every call to
:class:`daemon.sealing.RecordSealer` is counted and timed, per table.

Next to it, in the same run, the same seals again in a tight loop (a fresh
sealer over the very byte strings it was given), and the bare primitive
cost: ``AESGCM.encrypt`` (what a seal is made of) over those bytes, and, for
reference, libsodium's XChaCha20-Poly1305 through PyNaCl (what wallet keys
use).  Also the WAL bytes each agent wrote per message (checkpoints off for
the run, so the WAL only grows): the store's write amplification, sealed or
not.  The ratio is bare / ours, both in the loop: 1.0 would mean the sealer
adds nothing to the cipher.  On the message path a seal costs more than in
the loop (cold caches between the store's other work; the machine's noise).

Run: ``.venv/bin/python bench/sealing.py [--messages 200] [--sizes 1000,64000]``.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import nacl.bindings as sodium
import trio
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # (before bench/, whose protocols.py is a script)

from daemon import sealing  # noqa: E402
from daemon.agent import Agent  # noqa: E402
from daemon.logs import configure_logging  # noqa: E402
from tests.daemon.conftest import make_config  # noqa: E402
from tests.daemon.test_conversations import Wire  # noqa: E402

BASIC = "https://didcomm.org/basicmessage/2.0/message"
REAL_SEALER = sealing.RecordSealer


class Counting(sealing.RecordSealer):
    """A RecordSealer that counts, times and keeps what it seals."""

    calls: ClassVar[collections.Counter[str]] = collections.Counter()
    seconds: ClassVar[collections.Counter[str]] = collections.Counter()
    sealed: ClassVar[list[tuple[str, str, bytes]]] = []

    def seal(self, table: str, row_key: str, plaintext: bytes) -> bytes:
        start = time.perf_counter()
        out = super().seal(table, row_key, plaintext)
        Counting.seconds["seal"] += time.perf_counter() - start
        Counting.calls[table] += 1
        Counting.sealed.append((table, row_key, plaintext))
        return out

    def open(self, table: str, row_key: str, blob: bytes) -> bytes:
        start = time.perf_counter()
        out = super().open(table, row_key, blob)
        Counting.seconds["open"] += time.perf_counter() - start
        Counting.calls["open"] += 1
        return out


def tight(sealed: list[tuple[str, str, bytes]], rounds: int = 3) -> tuple[float, float, float]:
    """Seconds to seal every payload again in a loop (best of rounds): with a RecordSealer,
    with AES-GCM alone, and with XChaCha20-Poly1305 alone."""
    ours = REAL_SEALER(os.urandom(32))
    gcm = AESGCM(os.urandom(32))
    key, ad = os.urandom(32), b"didcommd store record v1\x00events\x001"
    best = [float("inf")] * 3
    for _ in range(rounds):
        for i, one in enumerate((
            lambda t, k, p: ours.seal(t, k, p),
            lambda t, k, p: gcm.encrypt(os.urandom(12), p, ad),
            lambda t, k, p: sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(p, ad, os.urandom(24), key),
        )):
            start = time.perf_counter()
            for table, row_key, payload in sealed:
                one(table, row_key, payload)
            best[i] = min(best[i], time.perf_counter() - start)
    return best[0], best[1], best[2]


def _wal_bytes(agent: Agent) -> int:
    """Bytes in the agent's WAL file (it only grows here: see main)."""
    wal = agent.store.sync.path.with_name(agent.store.sync.path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


async def exchange(size: int, messages: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        a = await Agent.open(make_config(Path(tmp) / "a"))
        b = await Agent.open(make_config(Path(tmp) / "b"))
        try:
            wire = Wire(a, b)
            invitation = await a.conversations.invite_create(goal="chat")
            await b.conversations.invite_accept(invitation["url"], label="a")
            await wire.pump()
            conn = (await a.conversations.connections.list())[0]
            Counting.calls.clear()
            Counting.seconds.clear()
            Counting.sealed.clear()
            wal_before = [_wal_bytes(x) for x in (a, b)]
            cpu = time.process_time()
            for _ in range(messages):
                await a.message_send(conn.their_did, BASIC, {"content": "x" * size}, frm=conn.my_did)
                await wire.pump()
            await a.events.flush()
            await b.events.flush()
            cpu = time.process_time() - cpu
            wal = [_wal_bytes(x) - w for x, w in zip((a, b), wal_before, strict=True)]
        finally:
            await a.aclose()
            await b.aclose()
    again, gcm, xchacha = tight(list(Counting.sealed))
    return {"size": size, "messages": messages, "calls": dict(Counting.calls),
            "bytes": sum(len(p) for _t, _k, p in Counting.sealed), "seal_s": Counting.seconds["seal"],
            "open_s": Counting.seconds["open"], "tight_s": again, "bare_gcm_s": gcm, "bare_xchacha_s": xchacha,
            "cpu_s": cpu, "wal": wal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="messages per size (default 200)")
    parser.add_argument("--sizes", default="1000,64000", help="message body sizes in bytes (default 1000,64000)")
    args = parser.parse_args()
    configure_logging("warning", stream=sys.stderr)  # the agents' info lines are not the result
    # Every sealer the wallet hands out counts (the agents' stores take theirs at unlock).
    sealing.RecordSealer = Counting  # type: ignore[misc]
    import daemon.wallet as wallet
    wallet.RecordSealer = Counting  # type: ignore[misc]
    # No checkpoint and no WAL restart during the run, so the WAL's growth is what the
    # messages wrote (every page a commit touches is written whole).
    import daemon.store as store
    store.CHECKPOINT_EVERY_COMMITS = 1 << 40
    store.WAL_RESTART_BYTES = 1 << 40
    print("| body | seals / msg | KB sealed / msg | seal us / msg, on the path | the same seals in a loop | "
          "bare AES-GCM us / msg | bare / ours (loop) | XChaCha20 (PyNaCl) us / msg | seals' share of CPU | "
          "WAL KB / msg sender + receiver |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in (int(s) for s in args.sizes.split(",")):
        r = trio.run(exchange, size, args.messages)
        n = r["messages"]
        seals = sum(v for k, v in r["calls"].items() if k != "open")
        per = {k: round(v / n, 2) for k, v in sorted(r["calls"].items())}
        print(f"| {size} B | {seals / n:.1f} | {r['bytes'] / n / 1024:.1f} | {r['seal_s'] / n * 1e6:.0f} | "
              f"{r['tight_s'] / n * 1e6:.0f} | {r['bare_gcm_s'] / n * 1e6:.0f} | {r['bare_gcm_s'] / r['tight_s']:.2f} | "
              f"{r['bare_xchacha_s'] / n * 1e6:.0f} | {(r['seal_s'] + r['open_s']) / r['cpu_s'] * 100:.1f}% | "
              f"{r['wal'][0] / n / 1024:.1f} + {r['wal'][1] / n / 1024:.1f} |")
        print(f"  (per message, by table: {per}; opens {r['open_s'] / n * 1e6:.0f} us)", file=sys.stderr)


if __name__ == "__main__":
    main()

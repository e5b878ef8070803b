"""A daemon's peers survive its restarts, and its peer id survives a backup and restore.

Real daemons on loopback (mDNS off):

- **redial**: B knew A; B stops; A's message to B fails and A backs off for
  a long time (retry_base 60 s).  B starts again - on a new port, so A's
  copy of B's DID document points nowhere - and dials the peers it knew; A
  sees B connect and delivers at once, long before its retry time.
- **backup**: ``didcommd wallet export`` of a daemon, ``wallet import`` into a
  fresh state directory, and the restored daemon has the same peer id (and
  so its did:peer DIDs, which name that peer id, still lead to it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import REPO, Daemon
from .test_two_daemons import BASIC, outbox_state, received, wait_until

#: A backoff far longer than the test may wait: only the redial can explain a delivery.
SLOW_RETRY = {"DIDCOMMD_DELIVERY_RETRY_BASE": "120", "DIDCOMMD_DELIVERY_RETRY_MAX": "240"}
#: Seconds the delivery after B's restart may take (A's retry is >= 60 s away).
REDIAL_DEADLINE = 20.0


def test_a_restarted_daemon_redials_its_peers_and_ends_their_backoff(daemon_factory: Any) -> None:
    a: Daemon = daemon_factory(env=SLOW_RETRY)
    b: Daemon = daemon_factory(env=SLOW_RETRY)
    did_a, did_b = a.call("did.create")["did"], b.call("did.create")["did"]
    peer_a = a.call("status")["peer_id"]
    hello = b.call("message.send", to=did_a, type=BASIC, body={"content": "hello"}, **{"from": did_b})
    wait_until("B's hello at A", lambda: received(a, hello["id"]))
    old_addrs = b.call("status")["addrs"]
    assert b.stop() == 0

    late = a.call("message.send", to=did_b, type=BASIC, body={"content": "while you were out"},
                  **{"from": did_a})
    wait_until("A's first attempt to fail",
               lambda: a.call("message.outbox.get", id=late["id"]).get("last_error"))
    assert outbox_state(a, late["id"]) == "queued"

    b.start()
    assert b.call("status")["addrs"] != old_addrs  # a new port: B's DID document is stale
    got = wait_until("A's message at B", lambda: received(b, late["id"]), timeout=REDIAL_DEADLINE)
    assert got["message"]["body"] == {"content": "while you were out"}
    assert any(r.get("event") == "peer.redialled" and r.get("peer") == peer_a for r in b.log_records())
    listed = {p["peer_id"]: p for p in b.call("peers.list")["peers"]}
    assert listed[peer_a]["how"] == "outbound"  # remembered as B first met it


def wallet(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    """``didcommd wallet ARGS`` with ``d``'s environment."""
    return subprocess.run([sys.executable, "-m", "daemon.cli", "wallet", *args],
                          env={**d.env, "BACKUP_PW": "backup words"}, cwd=REPO, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_a_restored_wallet_keeps_the_peer_id(daemon_factory: Any, tmp_path: Path) -> None:
    a: Daemon = daemon_factory()
    did = a.call("did.create")["did"]
    peer_id = a.call("status")["peer_id"]
    backup = tmp_path / "a.backup"
    r = wallet(a, "export", str(backup), "--passphrase-env", "BACKUP_PW")
    assert r.returncode == 0, r.stderr
    assert a.stop() == 0

    restored: Daemon = daemon_factory(start=False)
    r = wallet(restored, "import", str(backup), "--passphrase-env", "BACKUP_PW")
    assert r.returncode == 0, r.stderr
    assert peer_id in r.stdout
    restored.start()
    assert restored.call("status")["peer_id"] == peer_id
    assert did in [d["did"] for d in restored.call("did.list")["dids"]]

    # A daemon that already made its own identity takes the backup's on import.
    other: Daemon = daemon_factory()
    assert other.call("status")["peer_id"] != peer_id
    assert other.stop() == 0
    r = wallet(other, "import", str(backup), "--passphrase-env", "BACKUP_PW")
    assert r.returncode == 0, r.stderr
    other.start()
    assert other.call("status")["peer_id"] == peer_id

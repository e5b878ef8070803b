"""Backups end to end: real daemons (an issuer and a holder; separate processes, libp2p on
loopback), driven by didcommctl and ``didcommd wallet``.

A wallet backup is what a user restores onto a new machine, and expects to work: the
holder gets its credentials back and can refresh their status over its connection; the
issuer gets its status lists back with every index it handed out, so it can still revoke
what it issued and never hands an index out twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .conftest import REPO, Daemon
from .test_e2e_protocols import connect, fixed_port_env
from .test_e2e_revocation import credentials, issue, issued
from .test_two_daemons import ctl_json, wait_until

BACKUP_PW = "backup words for the new machine"


def wallet(d: Daemon, *args: str) -> dict[str, Any]:
    """``didcommd wallet ARGS --json`` on ``d``'s state directory, as a real process."""
    done = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "wallet", *args, "--passphrase-env", "BACKUP_PW", "--json"],
        env={**d.env, "BACKUP_PW": BACKUP_PW}, cwd=REPO, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def restored(daemon_factory: Any, backup: Path, env: dict[str, str]) -> tuple[Daemon, dict[str, Any]]:
    """A fresh daemon (its own, empty state directory) restored from ``backup``, started."""
    d: Daemon = daemon_factory(env=env, start=False)
    assert not d.state_dir.exists()
    counts = wallet(d, "import", str(backup))
    d.start()
    return d, counts


def test_issuer_and_holder_restore_onto_new_machines_and_carry_on(daemon_factory: Any, tmp_path: Path) -> None:
    # Fixed ports: the restored daemons listen where their DIDs say (same peer ids too).
    issuer_env, holder_env = fixed_port_env(), fixed_port_env()
    issuer: Daemon = daemon_factory(env=issuer_env)
    holder: Daemon = daemon_factory(env=holder_env)
    i_conn, h_conn, _ = connect(issuer, holder)
    offer, cred = issue(issuer, holder, i_conn)
    wait_until("issued", lambda: issued(issuer, offer["thid"])["state"] == "credential-issued")
    assert credentials(holder)[cred["id"]]["status"] == "valid"

    # Both export (while running), then stop: the old machines are gone.
    i_backup, h_backup = tmp_path / "issuer.backup", tmp_path / "holder.backup"
    i_wrote = wallet(issuer, "export", str(i_backup))
    h_wrote = wallet(holder, "export", str(h_backup))
    assert (i_wrote["status_lists"], i_wrote["status_indexes"], i_wrote["connections"]) == (1, 1, 1)
    assert (h_wrote["credentials"], h_wrote["held_lists"], h_wrote["connections"]) == (1, 1, 1)
    assert i_wrote["peer_identity"] and h_wrote["peer_identity"]
    # The old issuer issues once more after its backup: no backup knows that index.
    late, _ = issue(issuer, holder, i_conn)
    assert late["status"]["uri"] == offer["status"]["uri"]
    issuer_peer, holder_peer = ctl_json(issuer, "status")["peer_id"], ctl_json(holder, "status")["peer_id"]
    assert issuer.stop() == 0 and holder.stop() == 0

    issuer2, i_counts = restored(daemon_factory, i_backup, issuer_env)
    holder2, h_counts = restored(daemon_factory, h_backup, holder_env)
    assert (i_counts["status_lists"], i_counts["status_indexes"], i_counts["status_lists_conflicting"]) == (1, 1, 0)
    assert (i_counts["connections"], i_counts["exchanges"], i_counts["status_lists_started"]) == (1, 1, 1)
    assert (h_counts["credentials"], h_counts["connections"], h_counts["held_lists"]) == (1, 1, 1)
    assert h_counts["peer_id"] == ctl_json(holder2, "status")["peer_id"] == holder_peer
    assert i_counts["peer_id"] == ctl_json(issuer2, "status")["peer_id"] == issuer_peer

    # The holder has its credential, and its status, back.
    assert credentials(holder2)[cred["id"]]["status"] == "valid"
    assert [c["id"] for c in ctl_json(holder2, "connections", "list")["connections"]] == [h_conn]
    # A refresh goes over the restored connection to the restored issuer.
    refreshed = ctl_json(holder2, "credential", "refresh", "--wait", "30")
    assert [r["state"] for r in refreshed["requests"]] == ["received"], refreshed

    # The restored issuer revokes what the old one issued; the holder learns it.
    assert issued(issuer2, offer["thid"])["revocable"] is True
    revoked = ctl_json(issuer2, "credential", "revoke", cred["id"])
    assert revoked["revoked"] is True and revoked["already"] is False and revoked["status"] == offer["status"]
    refreshed = ctl_json(holder2, "credential", "refresh", cred["id"], "--wait", "30")
    assert [r["state"] for r in refreshed["requests"]] == ["received"], refreshed
    assert credentials(holder2)[cred["id"]]["status"] == "revoked"

    # A new credential from the restored issuer gets an index of a new list: none the old
    # issuer handed out, whether before the backup or after it.
    offer2, cred2 = issue(issuer2, holder2, i_conn)
    assert offer["status"]["uri"].endswith("/status/sd-jwt/0")
    assert offer2["status"]["uri"] == offer["status"]["uri"][: -len("0")] + "1"
    assert credentials(holder2)[cred2["id"]]["status"] == "valid"
    assert credentials(holder2)[cred["id"]]["status"] == "revoked"
    # What the backup did not hold, the restored issuer says it does not know.
    unknown = issuer2.ctl("credential", "revoke", late["thid"])
    assert unknown.returncode == 1 and "no credential we issued" in unknown.stderr

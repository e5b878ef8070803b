"""Revocation end to end: real daemons (issuer, holder, verifier; separate processes,
libp2p on loopback), driven by didcommctl.

Credentials are revocable by default: the issuer hands each one a random entry in a
status list of its own, and ``credential revoke`` sets it.  The holder keeps the list
stapled to its credential, fetches fresh copies from the issuer (``credential refresh``,
and in the background), shows each credential's status, and staples its copy to every
presentation; the verifier judges the credential from that copy alone -- signed by the
credential's issuer, recent enough, entry 0 -- and never talks to the issuer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from .conftest import REPO, Daemon
from .test_e2e_credentials import pending
from .test_e2e_protocols import connect, events
from .test_two_daemons import ctl_json, wait_until

VCT = "https://example.org/credentials/member"


def issue(issuer: Daemon, holder: Daemon, conn: str, *extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Offer (with ``extra`` flags), accept, wait: (the offer reply, the holder's credential)."""
    offer = ctl_json(issuer, "credential", "offer", conn, "--type", VCT, "--claim", "member=true",
                     "--claim", "name=Bob", *extra)
    wait_until("the holder sees the offer", lambda: [p for p in pending(holder, "offer")
                                                     if p["thid"] == offer["thid"]])
    got = ctl_json(holder, "credential", "accept", offer["thid"], "--wait", "30")
    assert got["state"] == "credential-received", got
    cred = next(c for c in ctl_json(holder, "credential", "list")["credentials"] if c["thid"] == offer["thid"])
    return offer, cred


def issued(issuer: Daemon, thid: str) -> dict[str, Any]:
    offers: list[dict[str, Any]] = ctl_json(issuer, "credential", "issued")["offers"]
    return next(o for o in offers if o["thid"] == thid)


def ask(verifier: Daemon, conn: str, *extra: str) -> subprocess.Popen[str]:
    """``proof request ... --wait 60`` in the background (it blocks until the verdict)."""
    return subprocess.Popen(
        [sys.executable, "-m", "daemon.ctl", "--json", "--socket", str(verifier.socket), "proof", "request", conn,
         "--claim", "member", "--type", VCT, "--wait", "60", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=verifier.env, cwd=REPO)


def prove(holder: Daemon, asking: subprocess.Popen[str], *present: str) -> tuple[int, dict[str, Any]]:
    """The holder presents (``present`` names the credential) the newest request; the verdict."""
    try:
        requests = wait_until("the holder sees the request", lambda: pending(holder, "proof-request"))
        shown = holder.ctl("--json", "proof", "present", requests[-1]["thid"], *present)
        if shown.returncode != 0:
            asking.kill()
            return -1, {"refused": shown.stderr, "code": shown.returncode}
        stdout, stderr = asking.communicate(timeout=60)
    finally:
        asking.kill()
    return asking.returncode, json.loads(stdout) if stdout.strip() else {"stderr": stderr}


def test_issuer_revokes_and_refuses_what_it_cannot_revoke(daemon_factory: Any) -> None:
    issuer: Daemon = daemon_factory()
    holder: Daemon = daemon_factory()
    i_conn, _, _ = connect(issuer, holder)

    offer, cred = issue(issuer, holder, i_conn)
    assert offer["revocable"] is True and offer["status"]["uri"] == f"{offer['issuer']}/status/sd-jwt/0"
    assert 0 <= offer["status"]["index"] < 131_072
    wait_until("issued", lambda: issued(issuer, offer["thid"])["state"] == "credential-issued")
    assert issued(issuer, offer["thid"])["revocable"] is True and issued(issuer, offer["thid"])["revoked"] is False

    # Revoked by thread id; again by credential id: harmless, says so.
    revoked = ctl_json(issuer, "credential", "revoke", offer["thid"])
    assert revoked["revoked"] is True and revoked["already"] is False and revoked["status"] == offer["status"]
    assert issued(issuer, offer["thid"])["revoked"] is True
    again = ctl_json(issuer, "credential", "revoke", cred["id"])
    assert again["already"] is True and again["thid"] == offer["thid"]
    assert [e["data"]["thid"] for e in events(issuer, "credential.revoked")] == [offer["thid"]]
    human = issuer.ctl("credential", "issued")
    assert human.returncode == 0 and "revoked" in human.stdout and "REVOCATION" in human.stdout

    # A credential issued with --no-status cannot be revoked (a clear error, exit 1).
    plain, _ = issue(issuer, holder, i_conn, "--no-status")
    assert plain["revocable"] is False and plain["status"] is None
    refused = issuer.ctl("credential", "revoke", plain["thid"])
    assert refused.returncode == 1 and "cannot be revoked" in refused.stderr and "Traceback" not in refused.stderr
    assert issued(issuer, plain["thid"])["revocable"] is False

    # Unknown threads, and a credential we hold rather than issued: clear errors, exit 1.
    missing = issuer.ctl("credential", "revoke", "no-such-thread")
    assert missing.returncode == 1 and "no credential we issued" in missing.stderr
    held = holder.ctl("credential", "revoke", cred["id"])
    assert held.returncode == 1 and "only its issuer can revoke it" in held.stderr
    held = holder.ctl("credential", "revoke", offer["thid"])
    assert held.returncode == 1 and "only its issuer can revoke it" in held.stderr
    # Through the raw control API: typed errors with their codes.
    bad = issuer.ctl("call", "credential.revoke", json.dumps({}))
    assert bad.returncode == 2 and "credential" in bad.stderr
    bad = issuer.ctl("call", "credential.offer", json.dumps(
        {"connection": i_conn, "type": VCT, "claims": {"a": 1}, "revocable": "no"}))
    assert bad.returncode == 2 and "revocable" in bad.stderr
    # Usage errors never reach the daemon.
    usage = issuer.ctl("credential", "revoke")
    assert usage.returncode == 2
    assert issuer.proc is not None and issuer.proc.poll() is None

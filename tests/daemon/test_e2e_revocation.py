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
import sqlite3
import subprocess
import sys
import time
from typing import Any

from .conftest import REPO, Daemon, Parties
from .test_e2e_credentials import pending
from .test_e2e_protocols import connect, events, fixed_port_env
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


def prove(holder: Daemon, verifier: Daemon, conn: str, *request: str,
          present: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
    """The verifier asks (``proof request ... --wait 60``, blocking in the background), the
    holder presents (``present``: e.g. ``--credential ID``); (its exit code, its JSON reply)."""
    before = {p["thid"] for p in pending(holder, "proof-request")}
    asking = subprocess.Popen(
        [sys.executable, "-m", "daemon.ctl", "--json", "--socket", str(verifier.socket), "proof", "request", conn,
         "--claim", "member", "--type", VCT, "--format", "any", "--wait", "60", *request],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=verifier.env, cwd=REPO)
    try:
        new = wait_until("the holder sees the request", lambda: [
            p for p in pending(holder, "proof-request") if p["thid"] not in before])
        shown = holder.ctl("--json", "proof", "present", new[0]["thid"], *present)
        assert shown.returncode == 0, shown.stderr
        stdout, stderr = asking.communicate(timeout=60)
    finally:
        asking.kill()
    assert stdout.strip(), stderr
    return asking.returncode, json.loads(stdout)


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
    assert again["already"] is True and again["thid"] == offer["thid"] and again["credential_id"] == cred["id"]
    # (Found by the credential id kept with its index when it was issued.)
    with sqlite3.connect(f"file:{issuer.state_dir / 'didcommd.sqlite3'}?mode=ro", uri=True) as db:
        assert db.execute("SELECT thid, status FROM status_entries WHERE credential_id = ?",
                          (cred["id"],)).fetchall() == [(offer["thid"], 1)]
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


def credentials(holder: Daemon) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in ctl_json(holder, "credential", "list")["credentials"]}


def test_issue_verify_revoke_refresh_and_verify_again(parties: Parties) -> None:
    issuer, holder, verifier = parties.issuer, parties.holder, parties.verifier
    i_conn, v_conn = parties.i_conn, parties.v_conn

    # Three credentials: revocable SD-JWT and di ones, and one issued --no-status.
    offer_a, a = issue(issuer, holder, i_conn)
    offer_d, d = issue(issuer, holder, i_conn, "--format", "di")
    _, n = issue(issuer, holder, i_conn, "--no-status")
    assert offer_d["status"]["uri"] == f"{offer_d['issuer']}/status/di/0"
    # The lists stapled at issuance are the holder's first copies.
    held = credentials(holder)
    assert (held[a["id"]]["status"], held[d["id"]]["status"], held[n["id"]]["status"]) == (
        "valid", "valid", "not revocable")
    assert held[a["id"]]["status_checked"] is not None and held[n["id"]]["status_checked"] is None
    shown = holder.ctl("credential", "show", a["id"])
    assert shown.returncode == 0 and "status: valid" in shown.stdout and "status checked:" in shown.stdout

    # Verified, with its stapled list: valid; the --no-status one: "not revocable".
    code, verdict = prove(holder, verifier, v_conn, present=("--credential", a["id"]))
    assert code == 0 and verdict["state"] == "verified" and verdict["result"]["status"] == "valid", verdict
    code, verdict = prove(holder, verifier, v_conn, present=("--credential", n["id"]))
    assert code == 0 and verdict["result"]["status"] == "not revocable", verdict

    # The issuer revokes two; the holder fetches the new lists and sees it.
    ctl_json(issuer, "credential", "revoke", offer_a["thid"])
    ctl_json(issuer, "credential", "revoke", offer_d["thid"])
    refreshed = ctl_json(holder, "credential", "refresh", "--wait", "30")
    # Three lists: the SD-JWT one, and the di credential's revocation and suspension lists.
    assert sorted(r["state"] for r in refreshed["requests"]) == ["received"] * 3, refreshed
    assert {r["uri"] for r in refreshed["requests"]} == {
        offer_a["status"]["uri"], offer_d["status"]["uri"], f"{offer_d['issuer']}/status/di-suspension/0"}
    assert {c["id"]: c["status"] for c in refreshed["credentials"]} == {a["id"]: "revoked", d["id"]: "revoked"}
    held = credentials(holder)
    assert (held[a["id"]]["status"], held[d["id"]]["status"], held[n["id"]]["status"]) == (
        "revoked", "revoked", "not revocable")
    human = holder.ctl("credential", "list")
    assert human.returncode == 0 and "STATUS" in human.stdout and "revoked" in human.stdout

    # The holder no longer chooses the revoked one: of the two that fit, N is presented.
    code, verdict = prove(holder, verifier, v_conn)
    assert code == 0 and verdict["result"]["status"] == "not revocable", verdict
    # Named explicitly it is presented, with the list that says revoked: the verifier refuses.
    code, verdict = prove(holder, verifier, v_conn, present=("--credential", a["id"]))
    assert code == 1 and verdict["state"] == "failed", verdict
    assert verdict["result"]["reason"] == "credential revoked"
    listed = ctl_json(verifier, "proof", "list")["requests"]
    assert listed[0]["verdict"] == "failed" and listed[0]["reason"] == "credential revoked"

    # A list older than the verifier accepts: "revocation status unknown".
    offer_b, b = issue(issuer, holder, i_conn)
    signed = credentials(holder)[b["id"]]["status_issued"]
    wait_until("the list to age past 2 s", lambda: time.time() > signed + 2.5)
    code, verdict = prove(holder, verifier, v_conn, "--status-max-age", "1", present=("--credential", b["id"]))
    assert code == 1 and verdict["result"]["reason"] == "revocation status unknown", verdict
    # The same presentation under the default maximum age (a day) is fine.
    code, verdict = prove(holder, verifier, v_conn, present=("--credential", b["id"]))
    assert code == 0 and verdict["result"]["status"] == "valid", verdict
    shown = verifier.ctl("proof", "show", verdict["thid"])
    assert shown.returncode == 0 and "revocation status: valid" in shown.stdout
    assert offer_b["status"]["uri"] == offer_a["status"]["uri"] != offer_d["status"]["uri"]
    assert offer_b["status"]["index"] != offer_a["status"]["index"]

    # Bad input: clear errors, the right exit codes.
    bad = holder.ctl("credential", "refresh", n["id"])
    assert bad.returncode == 1 and "no status list" in bad.stderr
    bad = holder.ctl("credential", "refresh", "nope")
    assert bad.returncode == 1 and "no credential" in bad.stderr
    bad = verifier.ctl("proof", "request", v_conn, "--claim", "member", "--status-max-age", "0")
    assert bad.returncode == 2 and "status-max-age" in bad.stderr
    bad = verifier.ctl("call", "proof.request", json.dumps(
        {"connection": v_conn, "claims": ["member"], "status_max_age": 10**9}))
    assert bad.returncode == 2 and "status_max_age" in bad.stderr
    bad = holder.ctl("call", "credential.refresh", json.dumps({"wait": -1}))
    assert bad.returncode == 2 and "wait" in bad.stderr
    # The issuer never heard from the verifier: its inbox holds the holder's messages only.
    senders = {m.get("from") for m in ctl_json(issuer, "inbox", "--limit", "100")["messages"]}
    verifier_dids = {c["my_did"] for c in ctl_json(verifier, "connections", "list")["connections"]}
    assert not senders & verifier_dids


def test_the_holder_refreshes_in_the_background(daemon_factory: Any) -> None:
    issuer: Daemon = daemon_factory(env=fixed_port_env())
    holder: Daemon = daemon_factory(env={"DIDCOMMD_CREDENTIALS_STATUS_REFRESH": "1"})
    i_conn, _, _ = connect(issuer, holder)
    offer, cred = issue(issuer, holder, i_conn)
    assert credentials(holder)[cred["id"]]["status"] == "valid"
    # The issuer's lists outlive a restart: revoked afterwards, served afterwards.
    assert issuer.stop() == 0
    issuer.start()
    ctl_json(issuer, "credential", "revoke", offer["thid"])
    wait_until("the background refresh to learn of the revocation",
               lambda: credentials(holder)[cred["id"]]["status"] == "revoked")
    assert events(holder, "status-list.received")


def test_hostile_status_list_messages_get_problem_reports(daemon_factory: Any) -> None:
    issuer: Daemon = daemon_factory()
    peer: Daemon = daemon_factory()
    conn, _, _ = connect(peer, issuer)
    mine = ctl_json(peer, "connections", "show", conn)
    # Requests for a list the issuer does not publish, or with no usable uri, and a
    # "list" nobody asked for: each gets a problem report.
    cases = [
        ("request", {"uri": f"{mine['their_did']}/status/sd-jwt/0"}),
        ("request", {"uri": 5}),
        ("request", {"uri": "x" * 5000}),
        ("request", {}),
        ("list", {"uri": "did:key:z/status/sd-jwt/0"}),
    ]
    for name, body in cases:
        sent = ctl_json(peer, "send", "--to", mine["their_did"], "--from", mine["my_did"],
                        "--type", f"https://didcommd.dev/status-list/1.0/{name}", "--body", json.dumps(body))
        wait_until("the problem report", lambda sent=sent: [
            e for e in events(peer, "problem-report.received")
            if sent["id"] in (e["data"].get("thid"), e["data"].get("pthid"))])
    assert not events(issuer, "status-list.sent")
    assert ctl_json(issuer, "status")["uptime_s"] > 0 and issuer.proc is not None and issuer.proc.poll() is None

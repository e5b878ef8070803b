"""Suspension end to end: real daemons (issuer, holder, verifier; separate processes,
libp2p on loopback), driven by didcommctl.

An issuer suspends a credential for a while (``credential suspend``) and reinstates it
(``credential reinstate``); revocation stays final.  An SD-JWT VC's one status entry
says suspended itself (Token Status List value 2, in a 2-bit list); a ``di`` credential
names two Bitstring Status Lists, a revocation one and a suspension one.  The holder
learns each change from a refreshed copy of the lists, and the verifier from the lists
the holder staples: "credential suspended" while suspended, accepted again after.
"""

from __future__ import annotations

import json

from .conftest import Daemon, Parties
from .test_e2e_revocation import credentials, issue, issued, prove
from .test_two_daemons import ctl_json


def refresh(holder: Daemon, *expected: str) -> dict[str, str]:
    """Fetch every list now; each request must arrive.  {credential id: status}."""
    refreshed = ctl_json(holder, "credential", "refresh", "--wait", "30")
    assert refreshed["requests"] and {r["state"] for r in refreshed["requests"]} == {"received"}, refreshed
    return {c["id"]: c["status"] for c in refreshed["credentials"]}


def test_suspend_refuse_reinstate_accept(parties: Parties) -> None:
    issuer, holder, verifier = parties.issuer, parties.holder, parties.verifier
    i_conn, v_conn = parties.i_conn, parties.v_conn

    offer_s, s = issue(issuer, holder, i_conn)
    offer_d, d = issue(issuer, holder, i_conn, "--format", "di")
    assert offer_s["suspendable"] is True and offer_d["suspendable"] is True
    # The di credential names its index in both of the issuer's di lists.
    document = json.loads(ctl_json(holder, "credential", "show", d["id"], "--raw")["credential"])
    entries = document["credentialStatus"]
    assert [e["statusPurpose"] for e in entries] == ["revocation", "suspension"]
    assert [e["statusListCredential"] for e in entries] == [
        f"{offer_d['issuer']}/status/di/0", f"{offer_d['issuer']}/status/di-suspension/0"]
    assert {e["statusListIndex"] for e in entries} == {str(offer_d["status"]["index"])}
    held = credentials(holder)
    assert (held[s["id"]]["status"], held[d["id"]]["status"]) == ("valid", "valid")

    # Suspended: the issuer's record says so, at once.
    for offer in (offer_s, offer_d):
        done = ctl_json(issuer, "credential", "suspend", offer["thid"])
        assert done["suspended"] is True and done["state"] == "suspended" and done["already"] is False, done
        assert issued(issuer, offer["thid"])["suspended"] is True
    again = ctl_json(issuer, "credential", "suspend", offer_s["thid"])
    assert again["already"] is True
    human = issuer.ctl("credential", "issued")
    assert human.returncode == 0 and "REVOCATION" in human.stdout and "suspended" in human.stdout
    human = issuer.ctl("credential", "suspend", offer_d["thid"])
    assert human.returncode == 0 and human.stdout.startswith("suspended credential")

    # The holder learns it from the refreshed lists; the verifier refuses both.
    assert refresh(holder) == {s["id"]: "suspended", d["id"]: "suspended"}
    for cred in (s, d):
        code, verdict = prove(holder, verifier, v_conn, present=("--credential", cred["id"]))
        assert code == 1 and verdict["state"] == "failed", verdict
        assert verdict["result"]["reason"] == "credential suspended"

    # Reinstated: valid again, after a refresh, and accepted with the fresh lists.
    for offer in (offer_s, offer_d):
        done = ctl_json(issuer, "credential", "reinstate", offer["thid"])
        assert done["reinstated"] is True and done["state"] == "valid", done
        assert issued(issuer, offer["thid"])["suspended"] is False
    assert refresh(holder) == {s["id"]: "valid", d["id"]: "valid"}
    for cred in (s, d):
        code, verdict = prove(holder, verifier, v_conn, present=("--credential", cred["id"]))
        assert code == 0 and verdict["state"] == "verified" and verdict["result"]["status"] == "valid", verdict

    # Reinstating one that is not suspended: a typed error, exit 1.
    bad = issuer.ctl("credential", "reinstate", offer_s["thid"])
    assert bad.returncode == 1 and "not suspended" in bad.stderr and "Traceback" not in bad.stderr
    bad = issuer.ctl("--json", "call", "credential.reinstate", json.dumps({"credential": offer_s["thid"]}))
    assert bad.returncode == 1 and "invalid_state" in bad.stderr

    # A suspended credential can still be revoked, for good: then neither applies.
    ctl_json(issuer, "credential", "suspend", offer_d["thid"])
    assert ctl_json(issuer, "credential", "revoke", offer_d["thid"])["already"] is False
    for action in ("suspend", "reinstate"):
        bad = issuer.ctl("credential", action, offer_d["thid"])
        assert bad.returncode == 1 and "revoked" in bad.stderr and "permanent" in bad.stderr, bad.stderr
    assert issued(issuer, offer_d["thid"])["revoked"] is True
    assert refresh(holder)[d["id"]] == "revoked"
    code, verdict = prove(holder, verifier, v_conn, present=("--credential", d["id"]))
    assert code == 1 and verdict["result"]["reason"] == "credential revoked", verdict


def test_bad_suspensions_get_clear_errors(parties: Parties) -> None:
    issuer, holder, i_conn = parties.issuer, parties.holder, parties.i_conn
    offer, cred = issue(issuer, holder, i_conn)
    plain, _ = issue(issuer, holder, i_conn, "--no-status")
    cases: list[tuple[Daemon, tuple[str, ...], int, str]] = [
        (issuer, ("credential", "suspend", plain["thid"]), 1, "cannot be suspended"),
        (issuer, ("credential", "reinstate", plain["thid"]), 1, "cannot be reinstated"),
        (issuer, ("credential", "suspend", "no-such-thread"), 1, "no credential we issued"),
        (holder, ("credential", "suspend", cred["id"]), 1, "only its issuer can suspend it"),
        (holder, ("credential", "reinstate", offer["thid"]), 1, "only its issuer can reinstate it"),
        (issuer, ("call", "credential.suspend", json.dumps({})), 2, "credential"),
        (issuer, ("call", "credential.reinstate", json.dumps({"credential": 7})), 2, "credential"),
        (issuer, ("call", "credential.suspend", json.dumps({"credential": "x" * 5000})), 2, "credential"),
        (issuer, ("credential", "suspend"), 2, "THID"),
    ]
    for daemon, args, code, words in cases:
        got = daemon.ctl(*args)
        assert got.returncode == code and words in got.stderr and "Traceback" not in got.stderr, (args, got.stderr)
    helped = issuer.ctl("credential", "suspend", "--help")
    assert helped.returncode == 0 and "reinstate" in helped.stdout and "revocation is final" in helped.stdout
    assert issuer.proc is not None and issuer.proc.poll() is None

"""Credential exchange end to end: three real daemons (issuer, holder, verifier; separate
processes, libp2p on loopback), driven by didcommctl.

The issuer offers an SD-JWT VC with a birth date and an ``age_over_18`` claim; the
holder sees the offer, accepts it, and the verified credential lands in its wallet.  A
verifier asks for ``age_over_18`` from that issuer; the holder presents, disclosing
that claim only: the verifier learns ``age_over_18: true`` and nothing of the birth date
reaches its daemon (not in the event, not in any stored inbound message).  A request the
credential cannot satisfy is refused by the holder's daemon, and a declined request is a
problem report on the verifier's side.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .conftest import REPO, Daemon, Parties
from .test_e2e_protocols import connect, events, fixed_port_env
from .test_two_daemons import ctl_json, wait_until

VCT = "https://example.org/credentials/person"
BIRTHDATE = "2001-04-01"


def pending(d: Daemon, kind: str) -> list[dict[str, Any]]:
    return [p for p in ctl_json(d, "credential", "pending")["pending"] if p["kind"] == kind]


def test_issue_hold_and_present_with_selective_disclosure(parties: Parties) -> None:
    issuer, holder, verifier = parties.issuer, parties.holder, parties.verifier
    i_conn, h_to_i, v_conn = parties.i_conn, parties.h_to_i, parties.v_conn

    # The issuer offers; nothing is issued until the holder says so.
    offer = ctl_json(issuer, "credential", "offer", i_conn, "--type", VCT, "--claim", "given_name=Bob",
                     "--claim", f"birthdate={BIRTHDATE}", "--claim", "age_over_18=true", "--wait", "0")
    assert offer["state"] == "offered" and offer["issuer"].startswith("did:key:")
    offers = wait_until("the holder sees the offer", lambda: pending(holder, "offer"))
    assert offers[0]["thid"] == offer["thid"] and offers[0]["vct"] == VCT
    assert offers[0]["issuer"] == offer["issuer"] and offers[0]["connection"] == h_to_i
    human = holder.ctl("credential", "pending")
    assert human.returncode == 0 and offer["thid"] in human.stdout and "age_over_18" in human.stdout
    assert ctl_json(holder, "credential", "list")["credentials"] == []

    got = ctl_json(holder, "credential", "accept", offer["thid"], "--wait", "30")
    assert got["state"] == "credential-received", got
    wait_until("the issuer's issued event", lambda: events(issuer, "issue-credential.issued"))
    creds = ctl_json(holder, "credential", "list")["credentials"]
    assert len(creds) == 1
    cred = creds[0]
    assert cred["issuer"] == offer["issuer"] and cred["vct"] == VCT
    assert cred["claims"] == {"given_name": "Bob", "birthdate": BIRTHDATE, "age_over_18": True}
    assert pending(holder, "offer") == []
    # The event log names the credential but is not a second copy of it.
    received = events(holder, "issue-credential.credential-received")
    assert received and "sd_jwt" not in received[0]["data"]
    raw = ctl_json(holder, "credential", "show", cred["id"][:8], "--raw")
    assert raw["sd_jwt"].count("~") >= 3  # issuer JWT ~ three disclosures ~
    human = holder.ctl("credential", "list")
    assert human.returncode == 0 and VCT in human.stdout and "age_over_18" in human.stdout

    # The verifier asks for age_over_18 from this issuer and waits for the verdict (its
    # didcommctl blocks meanwhile); the holder discloses just that.
    asking = subprocess.Popen(
        [sys.executable, "-m", "daemon.ctl", "--socket", str(verifier.socket), "proof", "request", v_conn, "--claim", "age_over_18", "--type", VCT,
         "--issuer", offer["issuer"], "--wait", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=verifier.env, cwd=REPO,
    )
    try:
        requests = wait_until("the holder sees the request", lambda: pending(holder, "proof-request"))
        assert requests[0]["claims"] == ["age_over_18"] and requests[0]["issuers"] == [offer["issuer"]]
        shown = ctl_json(holder, "proof", "present", requests[0]["thid"])
        assert shown["state"] == "presented" and shown["credential"] == cred["id"]
        assert shown["disclosed"] == ["age_over_18"]
        stdout, stderr = asking.communicate(timeout=60)
    finally:
        asking.kill()
    assert asking.returncode == 0, stderr
    assert "verified: issuer " + offer["issuer"] in stdout and "age_over_18 = true" in stdout
    assert "birthdate" not in stdout
    verified = events(verifier, "present-proof.verified")
    data = verified[0]["data"]
    later = ctl_json(verifier, "proof", "show", verified[0]["data"]["thid"])
    assert later["state"] == "verified" and later["result"]["claims"] == {"age_over_18": True}
    assert later["asked"] == ["age_over_18"]
    assert data["claims"] == {"age_over_18": True}
    assert data["issuer"] == offer["issuer"] and data["vct"] == VCT
    assert not events(verifier, "present-proof.failed")
    # Nothing of the birth date reached the verifier's daemon.
    inbox = ctl_json(verifier, "inbox", "--limit", "100")["messages"]
    assert any(m["type"].startswith("https://didcomm.org/present-proof/3.0/presentation") for m in inbox)
    for m in inbox:
        full = json.dumps(ctl_json(verifier, "message", "show", m["id"]))
        assert BIRTHDATE not in full and "given_name" not in full

    # A request the credential cannot satisfy: the holder's daemon says so (exit 1).
    req2 = ctl_json(verifier, "proof", "request", v_conn, "--claim", "degree", "--wait", "0")
    wait_until("the second request", lambda: [p for p in pending(holder, "proof-request")
                                              if p["thid"] == req2["thid"]])
    refused = holder.ctl("proof", "present", req2["thid"])
    assert refused.returncode == 1 and "no stored credential satisfies" in refused.stderr
    # Declining it tells the verifier, whose waiting request ends with the problem report.
    declined = ctl_json(holder, "proof", "decline", req2["thid"], "--reason", "no such degree")
    assert declined["state"] == "declined"
    wait_until("the verifier hears of the decline",
               lambda: [e for e in events(verifier, "problem-report.received")
                        if e["data"].get("thid") == req2["thid"] or e["data"].get("pthid") == req2["thid"]])
    assert pending(holder, "proof-request") == []
    # The issuer's and the verifier's own views of their threads.
    issued = ctl_json(issuer, "credential", "issued")["offers"]
    assert [(o["thid"], o["state"]) for o in issued] == [(offer["thid"], "credential-issued")]
    asked = ctl_json(verifier, "proof", "list")["requests"]
    assert [(r["thid"], r["verdict"], r["proven"]) for r in asked] == [
        (req2["thid"], None, None), (verified[0]["data"]["thid"], "verified", {"age_over_18": True})]
    human = verifier.ctl("proof", "list")
    assert human.returncode == 0 and "age_over_18=true" in human.stdout
    refused_show = verifier.ctl("proof", "show", req2["thid"])
    assert refused_show.returncode == 1 and "refused" in refused_show.stdout


def test_credential_commands_refuse_bad_input(daemon: Daemon, tmp_path: Path) -> None:
    # A claims file must hold a JSON object (bad input data: exit 3).
    listed = tmp_path / "claims.json"
    listed.write_text('["age_over_18"]')
    bad = daemon.ctl("credential", "offer", "nobody", "--type", VCT, "--claims-file", str(listed))
    assert bad.returncode == 3 and "must be a JSON object" in bad.stderr
    # Usage errors are caught before anything is sent (exit 2), with one clear line.
    bad = daemon.ctl("credential", "offer", "nobody", "--type", VCT)
    assert bad.returncode == 2 and "needs claims" in bad.stderr
    bad = daemon.ctl("credential", "offer", "nobody", "--type", VCT, "--claim", "novalue")
    assert bad.returncode == 2 and "NAME=VALUE" in bad.stderr
    bad = daemon.ctl("credential", "offer", "nobody", "--type", VCT, "--claim", "a=1", "--plain", "a")
    assert bad.returncode == 2 and "withhold" in bad.stderr
    # The daemon's own checks: unknown threads, connections and credentials.
    missing = daemon.ctl("credential", "accept", "no-such-thread", "--wait", "0")
    assert missing.returncode == 1 and "no-such-thread" in missing.stderr
    missing = daemon.ctl("proof", "present", "no-such-thread")
    assert missing.returncode == 1
    missing = daemon.ctl("credential", "show", "nope")
    assert missing.returncode == 1 and "no credential" in missing.stderr
    unknown = daemon.ctl("credential", "offer", "nobody", "--type", VCT, "--claim", "a=1", "--wait", "0")
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr
    # Through the raw control API: typed parameter errors.
    bad_call = daemon.ctl("call", "credential.offer", json.dumps({"connection": "x", "type": VCT, "claims": []}))
    assert bad_call.returncode == 2 and "claims" in bad_call.stderr


def test_an_offer_accepted_while_the_issuer_is_down_is_issued_after_restarts(daemon_factory: Any) -> None:
    issuer: Daemon = daemon_factory(env=fixed_port_env())
    holder: Daemon = daemon_factory(env=fixed_port_env())
    i_conn, _, _ = connect(issuer, holder)
    offered_at = time.time()
    offer = ctl_json(issuer, "credential", "offer", i_conn, "--type", VCT, "--claim", "age_over_18=true",
                     "--valid-for", "3600")
    wait_until("the holder sees the offer", lambda: pending(holder, "offer"))

    # The holder accepts while the issuer is down, then stops too: the request waits in
    # its outbox, the offer in the issuer's store.
    assert issuer.stop() == 0
    asked = ctl_json(holder, "credential", "accept", offer["thid"], "--wait", "0")
    assert asked["state"] == "requested"
    assert holder.stop() == 0
    issuer.start()
    holder.start()
    creds = wait_until("the credential after both restarts",
                       lambda: ctl_json(holder, "credential", "list")["credentials"])
    assert creds[0]["claims"] == {"age_over_18": True} and creds[0]["issuer"] == offer["issuer"]
    assert offered_at + 3600 - 5 <= creds[0]["expires"] <= time.time() + 3600


def test_a_malformed_offer_from_a_peer_gets_a_problem_report(daemon_factory: Any) -> None:
    a: Daemon = daemon_factory()
    b: Daemon = daemon_factory()
    a_conn, _, _ = connect(a, b)
    mine = ctl_json(a, "connections", "show", a_conn)
    # An offer without its credential preview, and one whose issuer is not a DID, sent as
    # raw DIDComm messages from A's DID in the connection (authcrypted like any other).
    bodies = [
        {"comment": "no preview"},
        {"credential_preview": {"type": "https://didcomm.org/issue-credential/3.0/credential-preview",
                                "body": {"attributes": [{"name": "a", "value": 1}]}}},
    ]
    for body in bodies:
        sent = ctl_json(a, "send", "--to", mine["their_did"], "--from", mine["my_did"],
                        "--type", "https://didcomm.org/issue-credential/3.0/offer-credential",
                        "--body", json.dumps(body))
        wait_until("A hears of the problem",
                   lambda sent=sent: [e for e in events(a, "problem-report.received")
                                      if e["data"].get("thid") == sent["id"] or e["data"].get("pthid") == sent["id"]])
    # B kept nothing pending and is still serving.
    assert pending(b, "offer") == []
    assert ctl_json(b, "status")["uptime_s"] > 0 and b.proc is not None and b.proc.poll() is None


def test_data_integrity_credential_is_issued_and_presented_whole(parties: Parties) -> None:
    """``--format di``: a W3C VC 2.0 credential with an eddsa-jcs-2022 proof, bound to the
    holder's DID with the issuer; a request accepting it says the whole credential is shown,
    and the verifier keeps only what it asked for."""
    issuer, holder, verifier = parties.issuer, parties.holder, parties.verifier
    i_conn, v_conn = parties.i_conn, parties.v_conn

    offer = ctl_json(issuer, "credential", "offer", i_conn, "--type", VCT, "--format", "di",
                     "--claim", f"birthdate={BIRTHDATE}", "--claim", "age_over_18=true",
                     "--valid-for", "3600", "--wait", "0")
    assert offer["state"] == "offered" and offer["format"] == "di"
    offers = wait_until("the holder sees the offer", lambda: pending(holder, "offer"))
    assert offers[0]["format"] == "di_vc"
    got = ctl_json(holder, "credential", "accept", offer["thid"], "--wait", "30")
    assert got["state"] == "credential-received", got
    (cred,) = ctl_json(holder, "credential", "list")["credentials"]
    assert cred["format"] == "di_vc" and cred["issuer"] == offer["issuer"] and cred["vct"] == VCT
    assert cred["claims"] == {"birthdate": BIRTHDATE, "age_over_18": True}
    assert isinstance(cred["expires"], int)
    received = events(holder, "issue-credential.credential-received")
    assert received and "credential" not in received[0]["data"]
    raw = ctl_json(holder, "credential", "show", cred["id"][:8], "--raw")
    document = json.loads(raw["credential"])
    assert document["type"] == ["VerifiableCredential", VCT]
    assert document["credentialSubject"]["id"] == cred["subject"]
    assert document["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    human = holder.ctl("credential", "show", cred["id"][:8], "--raw")
    assert human.returncode == 0 and "di_vc" in human.stdout and '"proof"' in human.stdout

    # The default (sd-jwt) request never matches a di credential: it requires limited disclosure.
    strict = ctl_json(verifier, "proof", "request", v_conn, "--claim", "age_over_18", "--wait", "0")
    wait_until("the sd-jwt request", lambda: [p for p in pending(holder, "proof-request")
                                              if p["thid"] == strict["thid"]])
    assert [p["discloses"] for p in pending(holder, "proof-request")] == ["selected"]
    refused = holder.ctl("proof", "present", strict["thid"])
    assert refused.returncode == 1 and "no stored credential satisfies" in refused.stderr
    ctl_json(holder, "proof", "decline", strict["thid"])

    req = ctl_json(verifier, "proof", "request", v_conn, "--claim", "age_over_18", "--type", VCT,
                   "--issuer", offer["issuer"], "--format", "any", "--wait", "0")
    requests = wait_until("the any-format request", lambda: [p for p in pending(holder, "proof-request")
                                                             if p["thid"] == req["thid"]])
    assert requests[0]["discloses"] == "whole credential"
    assert requests[0]["formats"] == ["dc+sd-jwt", "di_vc"]
    human = holder.ctl("credential", "pending")
    assert human.returncode == 0 and "whole credential" in human.stdout
    shown = ctl_json(holder, "proof", "present", req["thid"])
    assert shown["state"] == "presented" and shown["format"] == "di_vc"
    assert shown["discloses"] == "whole credential"
    assert sorted(shown["disclosed"]) == ["age_over_18", "birthdate"]
    later = wait_until("the verifier's verdict", lambda: [
        r for r in [ctl_json(verifier, "proof", "show", req["thid"])] if r["state"] != "requested"])[0]
    assert later["state"] == "verified", later
    # Shown whole, but the verifier keeps only the claims it asked for.
    # (Revocable by default: the holder stapled its issuer's status list, which says valid.)
    assert later["result"] == {"issuer": offer["issuer"], "vct": VCT, "claims": {"age_over_18": True},
                               "status": "valid"}

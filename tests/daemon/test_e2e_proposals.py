"""The other side asks first, end to end: real daemons (separate processes, libp2p on
loopback), driven by didcommctl.

A holder proposes a credential (``credential propose``); the issuer sees the proposal in
``credential pending`` and answers with an offer on the same thread (``credential offer
--reply``); the holder accepts that offer as any other and stores the credential.  A
holder may name the format it would like (the offer answering it defaults to that format),
counter an offer with a proposal, and an issuer may decline a proposal (a
problem report: the holder's waiting command says so, the thread is abandoned).  A prover
proposes a proof (``proof propose``); the verifier answers with its request (``proof
request --reply``) and gets the presentation.  Wrong threads, wrong peers and malformed
input are typed errors with their exit codes, and a malformed proposal from a peer gets a
problem report without harming the daemon.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from .conftest import REPO, Daemon, Parties
from .test_e2e_protocols import connect, events
from .test_two_daemons import ctl_json, wait_until

VCT = "https://example.edu/credentials/diploma"


def pending(d: Daemon, kind: str) -> list[dict[str, Any]]:
    return [p for p in ctl_json(d, "credential", "pending")["pending"] if p["kind"] == kind]


def thread_state(d: Daemon, thid: str, role: str) -> str:
    records = ctl_json(d, "thread", thid)["records"]
    return str(next(r["state"] for r in records if r["role"] == role))


def ctl_background(d: Daemon, *args: str) -> subprocess.Popen[str]:
    """A didcommctl command that waits for the peer, run while the test drives the peer."""
    return subprocess.Popen([sys.executable, "-m", "daemon.ctl", "--socket", str(d.socket), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=d.env, cwd=REPO)


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, stdout, stderr


def test_holder_proposes_issuer_offers_holder_accepts_then_counters_and_a_decline(daemon_factory: Any) -> None:
    issuer: Daemon = daemon_factory()
    holder: Daemon = daemon_factory()
    i_conn, h_to_i, _ = connect(issuer, holder)

    # The holder asks first and waits for the answer (its didcommctl blocks meanwhile).
    asking = ctl_background(holder, "--json", "credential", "propose", h_to_i, "--vct", VCT,
                            "--claim", "given_name=Bob", "--claim", "degree=MSc",
                            "--comment", "for my job application", "--wait", "60")
    try:
        (proposal,) = wait_until("the issuer sees the proposal", lambda: pending(issuer, "credential-proposal"))
        assert proposal["vct"] == VCT and proposal["claims"] == {"given_name": "Bob", "degree": "MSc"}
        assert proposal["comment"] == "for my job application" and proposal["counter"] is False
        assert proposal["connection"] == i_conn
        thid = proposal["thid"]
        (event,) = events(issuer, "issue-credential.proposal-received")
        assert event["data"]["thid"] == thid and event["data"]["claims"] == proposal["claims"]
        human = issuer.ctl("credential", "pending")
        assert human.returncode == 0 and "credential-proposal" in human.stdout and "degree=MSc" in human.stdout
        assert "for my job application" in human.stdout
        # The issuer answers with its own offer on the thread: the proposal's type by default,
        # and the claims it is willing to attest (not necessarily the ones asked for).
        offer = ctl_json(issuer, "credential", "offer", i_conn, "--reply", thid,
                         "--claim", "given_name=Bob", "--claim", "degree=MSc", "--claim", "grade=A")
        assert offer["thid"] == thid and offer["reply"] is True and offer["state"] == "offered"
        assert pending(issuer, "credential-proposal") == []
        code, stdout, stderr = finish(asking)
    finally:
        asking.kill()
    assert code == 0, stderr
    answered = json.loads(stdout)
    assert answered["thid"] == thid and answered["state"] == "offer-received"
    assert answered["result"]["vct"] == VCT and answered["result"]["claims"]["grade"] == "A"

    (offered,) = pending(holder, "offer")
    assert offered["thid"] == thid and offered["vct"] == VCT
    got = ctl_json(holder, "credential", "accept", thid, "--wait", "30")
    assert got["state"] == "credential-received", got
    (cred,) = ctl_json(holder, "credential", "list")["credentials"]
    assert cred["thid"] == thid and cred["vct"] == VCT and cred["issuer"] == offer["issuer"]
    assert cred["claims"] == {"given_name": "Bob", "degree": "MSc", "grade": "A"}
    assert [(o["thid"], o["state"]) for o in ctl_json(issuer, "credential", "issued")["offers"]] == [
        (thid, "credential-issued")]

    # Counter-proposal: the issuer offers a BSc and waits; the holder asks for the MSc instead
    # (the issuer's waiting command ends, exit 1: countered, not issued), and the issuer's
    # second offer on the same thread keeps the thread's one status list entry.
    offering = ctl_background(issuer, "--json", "credential", "offer", i_conn, "--type", VCT,
                              "--claim", "degree=BSc", "--wait", "60")
    try:
        (seen,) = wait_until("the holder sees the offer", lambda: pending(holder, "offer"))
        countered = ctl_json(holder, "credential", "propose", h_to_i, "--reply", seen["thid"],
                             "--claim", "degree=MSc", "--comment", "I finished the MSc")
        code, stdout, stderr = finish(offering)
    finally:
        offering.kill()
    first = json.loads(stdout)
    assert code == 1 and first["thid"] == seen["thid"] and first["state"] == "proposal-received", stderr
    assert first["result"]["claims"] == {"degree": "MSc"} and first["result"]["comment"] == "I finished the MSc"
    assert countered["thid"] == first["thid"] and countered["reply"] is True and countered["state"] == "proposed"
    human = holder.ctl("credential", "propose", h_to_i, "--reply", first["thid"], "--claim", "degree=MSc")
    assert human.returncode == 1 and "not a credential offer waiting for our answer" in human.stderr
    (counter,) = wait_until("the issuer sees the counter-proposal",
                            lambda: pending(issuer, "credential-proposal"))
    assert counter["thid"] == first["thid"] and counter["counter"] is True
    assert counter["claims"] == {"degree": "MSc"} and counter["vct"] is None
    second = ctl_json(issuer, "credential", "offer", i_conn, "--reply", first["thid"], "--type", VCT,
                      "--claim", "degree=MSc")
    assert second["status"] == first["status"] and second["revocable"] is True
    wait_until("the holder sees the new offer", lambda: [p for p in pending(holder, "offer")
                                                         if p["claims"] == {"degree": "MSc"}])
    got = ctl_json(holder, "credential", "accept", first["thid"], "--wait", "30")
    assert got["state"] == "credential-received", got
    held = {c["thid"]: c for c in ctl_json(holder, "credential", "list")["credentials"]}
    assert held[first["thid"]]["claims"] == {"degree": "MSc"}
    revoked = ctl_json(issuer, "credential", "revoke", first["thid"])
    assert revoked["status"] == first["status"]

    # Decline: the issuer will not issue this; the holder's waiting command is refused (exit 1).
    asking = ctl_background(holder, "credential", "propose", h_to_i, "--vct", "https://example.edu/phd",
                            "--wait", "60")
    try:
        (proposal,) = wait_until("the issuer sees the third proposal",
                                 lambda: pending(issuer, "credential-proposal"))
        declined = ctl_json(issuer, "credential", "decline", proposal["thid"], "--reason", "no PhD on record")
        assert declined == {"thid": proposal["thid"], "state": "declined"}
        code, stdout, stderr = finish(asking)
    finally:
        asking.kill()
    assert code == 1 and "refused" in stdout and "no PhD on record" in stdout, (stdout, stderr)
    assert thread_state(holder, proposal["thid"], "holder") == "abandoned"
    assert thread_state(issuer, proposal["thid"], "issuer") == "abandoned"
    assert pending(issuer, "credential-proposal") == [] and pending(holder, "offer") == []
    # A declined thread cannot be answered any more.
    late = issuer.ctl("credential", "offer", i_conn, "--reply", proposal["thid"], "--claim", "a=1")
    assert late.returncode == 1 and "(it is abandoned)" in late.stderr


def test_a_proposal_names_a_format_and_the_offer_answering_it_defaults_to_it(daemon_factory: Any) -> None:
    issuer: Daemon = daemon_factory()
    holder: Daemon = daemon_factory()
    i_conn, h_to_i, _ = connect(issuer, holder)
    proposed = ctl_json(holder, "credential", "propose", h_to_i, "--vct", VCT, "--claim", "degree=MSc",
                        "--format", "di")
    (proposal,) = wait_until("the proposal", lambda: pending(issuer, "credential-proposal"))
    assert proposal["thid"] == proposed["thid"] and proposal["format"] == "di_vc" and proposal["vct"] == VCT
    assert "di_vc" in issuer.ctl("credential", "pending").stdout
    offered = ctl_json(issuer, "credential", "offer", i_conn, "--reply", proposal["thid"], "--claim", "degree=MSc")
    assert offered["format"] == "di" and offered["reply"] is True
    wait_until("the offer", lambda: pending(holder, "offer"))
    got = ctl_json(holder, "credential", "accept", proposed["thid"], "--wait", "30")
    assert got["state"] == "credential-received", got
    (cred,) = ctl_json(holder, "credential", "list")["credentials"]
    assert cred["format"] == "di_vc" and cred["claims"]["degree"] == "MSc"
    # Named explicitly, the issuer's format wins: the proposal binds it to nothing.
    again = ctl_json(holder, "credential", "propose", h_to_i, "--vct", VCT, "--format", "di")
    (proposal,) = wait_until("the second proposal", lambda: pending(issuer, "credential-proposal"))
    offered = ctl_json(issuer, "credential", "offer", i_conn, "--reply", again["thid"], "--claim", "degree=MSc",
                       "--format", "sd-jwt")
    assert offered["format"] == "sd-jwt"
    (offer,) = wait_until("the second offer", lambda: pending(holder, "offer"))
    assert offer["thid"] == again["thid"] and offer["format"] == "dc+sd-jwt"
    bad = holder.ctl("credential", "propose", h_to_i, "--vct", VCT, "--format", "mdoc")
    assert bad.returncode == 2 and "--format" in bad.stderr


def test_prover_proposes_verifier_requests_and_the_proof_is_verified(parties: Parties) -> None:
    issuer, holder, verifier = parties.issuer, parties.holder, parties.verifier
    i_conn, v_conn, h_to_v = parties.i_conn, parties.v_conn, parties.h_to_v
    offer = ctl_json(issuer, "credential", "offer", i_conn, "--type", VCT, "--claim", "degree=MSc",
                     "--claim", "birthdate=2001-04-01")
    wait_until("the offer", lambda: pending(holder, "offer"))
    assert ctl_json(holder, "credential", "accept", offer["thid"], "--wait", "30")["state"] == "credential-received"

    proposed = ctl_json(holder, "proof", "propose", h_to_v, "--claim", "degree", "--vct", VCT,
                        "--comment", "my diploma will do")
    assert proposed["state"] == "proposed" and proposed["reply"] is False
    (proposal,) = wait_until("the verifier sees the proposal", lambda: pending(verifier, "proof-proposal"))
    assert proposal["thid"] == proposed["thid"] and proposal["connection"] == v_conn
    assert proposal["claims"] == ["degree"] and proposal["vct"] == VCT
    assert proposal["comment"] == "my diploma will do" and proposal["discloses"] == "selected"
    assert events(verifier, "present-proof.proposal-received")
    # Until the verifier's request arrives there is nothing to present.
    early = holder.ctl("proof", "present", proposed["thid"])
    assert early.returncode == 1 and "not a proof request waiting for our answer (it is proposal-sent)" in early.stderr
    # The verifier answers with its request (the proposal's claims and type by default) and waits.
    asking = ctl_background(verifier, "proof", "request", v_conn, "--reply", proposal["thid"],
                            "--issuer", offer["issuer"], "--wait", "60")
    try:
        (request,) = wait_until("the prover sees the request", lambda: pending(holder, "proof-request"))
        assert request["thid"] == proposal["thid"] and request["claims"] == ["degree"]
        shown = ctl_json(holder, "proof", "present", request["thid"])
        assert shown["state"] == "presented" and shown["disclosed"] == ["degree"]
        code, stdout, stderr = finish(asking)
    finally:
        asking.kill()
    assert code == 0, stderr
    assert "verified: issuer " + offer["issuer"] in stdout and "degree = MSc" in stdout
    assert "birthdate" not in stdout
    later = ctl_json(verifier, "proof", "show", proposal["thid"])
    assert later["state"] == "verified" and later["result"]["claims"] == {"degree": "MSc"}

    # A di proposal the verifier declines, while the prover waits for the answer: the
    # waiting command ends with the refusal (exit 1); both threads are abandoned.
    waiting = ctl_background(holder, "--json", "proof", "propose", h_to_v, "--claim", "degree",
                             "--format", "di", "--wait", "60")
    try:
        (proposal,) = wait_until("the second proposal", lambda: pending(verifier, "proof-proposal"))
        assert proposal["formats"] == ["di_vc"] and proposal["discloses"] == "whole credential"
        assert ctl_json(verifier, "proof", "decline", proposal["thid"], "--reason", "sd-jwt only")["state"] == "declined"
        code, stdout, stderr = finish(waiting)
    finally:
        waiting.kill()
    second = json.loads(stdout)
    assert code == 1 and second["state"] == "problem" and second["thid"] == proposal["thid"], stderr
    assert thread_state(holder, second["thid"], "prover") == "abandoned"
    assert pending(verifier, "proof-proposal") == []

    # A proposal waited for until the verifier's request arrives (exit 0), then presented.
    waiting = ctl_background(holder, "--json", "proof", "propose", h_to_v, "--claim", "degree", "--wait", "60")
    try:
        (proposal,) = wait_until("the third proposal", lambda: pending(verifier, "proof-proposal"))
        ctl_json(verifier, "proof", "request", v_conn, "--reply", proposal["thid"])
        code, stdout, stderr = finish(waiting)
    finally:
        waiting.kill()
    third = json.loads(stdout)
    assert code == 0 and third["state"] == "request-received" and third["thid"] == proposal["thid"], stderr
    assert ctl_json(holder, "proof", "present", third["thid"])["disclosed"] == ["degree"]
    wait_until("verified", lambda: ctl_json(verifier, "proof", "show", third["thid"])["state"] == "verified")


def test_proposal_commands_refuse_bad_input_and_peers_malformed_proposals(daemon_factory: Any) -> None:
    issuer: Daemon = daemon_factory()
    holder: Daemon = daemon_factory()
    i_conn, h_to_i, _ = connect(issuer, holder)

    # Usage errors, caught before anything is sent (exit 2).
    bad = holder.ctl("credential", "propose", h_to_i)
    assert bad.returncode == 2 and "a proposal names what it asks for" in bad.stderr
    bad = holder.ctl("credential", "propose", h_to_i, "--claim", "novalue")
    assert bad.returncode == 2 and "NAME=VALUE" in bad.stderr
    bad = holder.ctl("proof", "propose", h_to_i)
    assert bad.returncode == 2 and "--claim" in bad.stderr
    bad = issuer.ctl("credential", "offer", i_conn, "--claim", "a=1")
    assert bad.returncode == 2 and "--type" in bad.stderr
    bad = issuer.ctl("proof", "request", i_conn)
    assert bad.returncode == 2 and "--claim" in bad.stderr
    # The daemon's checks: invalid parameters (exit 2)...
    bad = holder.ctl("credential", "propose", h_to_i, "--claim", "iss=did:example:me")
    assert bad.returncode == 2 and "reserved" in bad.stderr
    bad = holder.ctl("call", "credential.propose", json.dumps({"connection": h_to_i, "claims": ["degree"]}))
    assert bad.returncode == 2 and "claims" in bad.stderr
    bad = holder.ctl("call", "proof.propose", json.dumps({"connection": h_to_i, "claims": []}))
    assert bad.returncode == 2 and "claims" in bad.stderr
    bad = holder.ctl("call", "credential.propose", json.dumps({"connection": h_to_i, "type": VCT, "wait": 301}))
    assert bad.returncode == 2 and "wait" in bad.stderr
    # ...unknown connections and threads (exit 1)...
    missing = holder.ctl("credential", "propose", "nobody", "--vct", VCT)
    assert missing.returncode == 1 and "no connection 'nobody'" in missing.stderr
    missing = issuer.ctl("credential", "offer", i_conn, "--reply", "no-such-thread", "--claim", "a=1")
    assert missing.returncode == 1 and "no credential proposal with thread 'no-such-thread'" in missing.stderr
    missing = holder.ctl("credential", "decline", "no-such-thread")
    assert missing.returncode == 1 and "no-such-thread" in missing.stderr
    # ...and threads that are not a proposal waiting for us (exit 1).
    ours = ctl_json(issuer, "credential", "offer", i_conn, "--type", VCT, "--claim", "a=1")
    wrong = issuer.ctl("credential", "offer", i_conn, "--reply", ours["thid"], "--claim", "a=1")
    assert wrong.returncode == 1 and "not a credential proposal waiting for our answer (it is offer-sent)" in wrong.stderr
    wrong = issuer.ctl("proof", "request", i_conn, "--reply", ours["thid"])
    assert wrong.returncode == 1 and "we are the issuer" in wrong.stderr
    wait_until("the holder sees the offer", lambda: pending(holder, "offer"))
    wrong = holder.ctl("proof", "propose", h_to_i, "--reply", ours["thid"], "--claim", "a")
    assert wrong.returncode == 1 and "not a proof request" in wrong.stderr
    # A reply through another connection than the thread's is refused (exit 2).
    proposed = ctl_json(holder, "credential", "propose", h_to_i, "--vct", VCT)
    (proposal,) = wait_until("the proposal", lambda: pending(issuer, "credential-proposal"))
    other = ctl_json(issuer, "did", "create", "--method", "key")["did"]
    elsewhere = issuer.ctl("credential", "offer", other, "--reply", proposed["thid"], "--claim", "a=1")
    assert elsewhere.returncode == 2 and f"thread {proposed['thid']} is with" in elsewhere.stderr
    assert pending(issuer, "credential-proposal") == [proposal]
    # Accepting or presenting is not how a proposal is answered.
    assert issuer.ctl("credential", "accept", proposed["thid"], "--wait", "0").returncode == 1
    for result in (bad, missing, wrong, elsewhere):
        assert "Traceback" not in result.stderr

    # Malformed proposals from a peer, sent as raw authcrypted DIDComm messages: each gets
    # a problem report; nothing waits for the owner; the daemon keeps serving.
    mine = ctl_json(holder, "connections", "show", h_to_i)
    ic = "https://didcomm.org/issue-credential/3.0"
    pp = "https://didcomm.org/present-proof/3.0"
    preview = {"type": ic + "/credential-preview", "body": {"attributes": [{"name": "a"}]}}
    malformed = [
        (ic + "/propose-credential", {"credential_preview": preview}),
        (ic + "/propose-credential", {"credential_preview": "not an object"}),
        (ic + "/propose-credential", {"comment": "x" * 5000}),
        (pp + "/propose-presentation", {"comment": "no definition attached"}),
    ]
    for mtype, body in malformed:
        sent = ctl_json(holder, "send", "--to", mine["their_did"], "--from", mine["my_did"], "--type", mtype,
                        "--body", json.dumps(body))
        wait_until("the holder hears of the problem",
                   lambda sent=sent: [e for e in events(holder, "problem-report.received")
                                      if sent["id"] in (e["data"].get("thid"), e["data"].get("pthid"))])
    assert pending(issuer, "credential-proposal") == [proposal] and pending(issuer, "proof-proposal") == []
    assert issuer.proc is not None and issuer.proc.poll() is None
    assert ctl_json(issuer, "status")["uptime_s"] > 0

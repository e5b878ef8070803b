"""The Data Integrity format (``di_vc``/``di_vp``) end to end through both machines:
offer -> accept -> issue -> verified credential; request -> whole VP -> verified."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import data_integrity
from protocols.did.resolver import default_resolver
from protocols.envelope import unpack
from protocols.errors import DIDCommError
from protocols.framework import Transition
from protocols.issue_credential import accept_offer
from protocols.jcs import canonicalize
from protocols.present_proof import matching, present_whole, request_presentation
from protocols.presentation_exchange import NotSatisfiedError
from protocols.status_list import (
    REVOKED,
    VALID,
    StatusList,
    bitstring_entry,
    verify_list_credential,
)
from tests.protocols.test_framework import NOW
from tests.protocols.test_issue_credential import (
    CLAIMS,
    PID,
    Party,
    event,
    kinds,
    offer,
    publishing_issuer,
)


def issue_di(issuer: Party, holder: Party, **kwargs: Any) -> dict[str, Any]:
    """Offer (di_vc) -> accept -> issue -> the holder's credential-received event."""
    sent = offer(issuer, holder, credential_format="di_vc", **kwargs)
    (wire,) = issuer.start(sent)
    outcome, _ = holder.receive(wire)
    offered = event(outcome, "issue-credential.offer-received")
    assert offered["format"] == "di_vc" and offered["claims"] == CLAIMS
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(accept_offer(holder.record(thid), now=NOW, ids=holder.ids))
    issued_outcome, (issued,) = issuer.receive(request)
    assert event(issued_outcome, "issue-credential.issued")["format"] == "di_vc"
    outcome, _ = holder.receive(issued)
    return event(outcome, "issue-credential.credential-received")


def test_issue_gives_a_verified_vc2_credential_whose_subject_is_the_holder() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    received = issue_di(issuer, holder, expires=NOW + 3600)
    assert received["format"] == "di_vc" and "sd_jwt" not in received
    assert received["issuer"] == issuer.did and received["vct"] == PID
    credential = data_integrity.parse_document(received["credential"])
    verified = data_integrity.verify_credential(credential, resolver=default_resolver())
    assert verified.controller == issuer.did
    assert credential["type"] == ["VerifiableCredential", PID]
    assert credential["credentialSubject"] == {"id": holder.did, **CLAIMS}
    assert "validUntil" in credential and credential["proof"]["cryptosuite"] == "eddsa-jcs-2022"


def test_holder_refuses_a_credential_that_differs_from_the_template() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    sent = offer(issuer, holder, credential_format="di_vc")
    (wire,) = issuer.start(sent)
    holder.receive(wire)
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(accept_offer(holder.record(thid), now=NOW, ids=holder.ids))
    # The issuer's record says another claim value: it signs that, the holder refuses.
    record = issuer.record(thid)
    record.data["offer"]["claims"] = {**CLAIMS, "nationality": "FR"}
    issuer.store.apply(Transition(record, [], []))
    _, (issued,) = issuer.receive(request)
    outcome, _ = holder.receive(issued)
    assert "issue-credential.credential-received" not in kinds(outcome)


@pytest.mark.parametrize(
    ("offered", "signed"),
    [(NOW + 3600, NOW + 7200), (NOW + 3600, None), (None, NOW + 3600)],
)
def test_holder_refuses_a_credential_whose_validity_differs_from_the_template(
    offered: int | None, signed: int | None
) -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    sent = offer(issuer, holder, credential_format="di_vc", expires=offered)
    (wire,) = issuer.start(sent)
    outcome, _ = holder.receive(wire)
    assert event(outcome, "issue-credential.offer-received")["expires"] == offered
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(accept_offer(holder.record(thid), now=NOW, ids=holder.ids))
    # The issuer's record says another expiry: it signs that (its real key), the holder refuses.
    record = issuer.record(thid)
    record.data["offer"]["expires"] = signed
    issuer.store.apply(Transition(record, [], []))
    _, (issued,) = issuer.receive(request)
    outcome, _ = holder.receive(issued)
    assert "issue-credential.credential-received" not in kinds(outcome)
    assert "validUntil" in outcome.events[-1].data["reason"]
    assert holder.record(thid).state == "abandoned"


def test_a_revocable_di_credential_carries_the_offered_credential_status() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    url = f"{issuer.did}/status/di/0"
    received = issue_di(issuer, holder, status=(url, 99))
    credential = data_integrity.parse_document(received["credential"])
    assert credential["credentialStatus"] == {
        "id": f"{url}#99",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "99",
        "statusListCredential": url,
    }
    data_integrity.verify_credential(credential, resolver=default_resolver())


def test_the_issuer_staples_a_bitstring_status_list_credential() -> None:
    issuer, publisher = publishing_issuer()
    holder = Party.create("h")
    url = f"{issuer.did}/status/di/0"
    publisher.lists[url] = StatusList()
    publisher.lists[url].set(99, REVOKED)
    received = issue_di(issuer, holder, status=(url, 99))
    assert received["status"] == {"uri": url, "index": 99}
    assert received["status_value"] == REVOKED
    document = data_integrity.parse_document(received["status_list"])
    assert received["status_list"] == canonicalize(document).decode()
    assert document["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    verified = verify_list_credential(document, resolver=default_resolver(), now=NOW, url=url)
    assert verified.issuer == issuer.did and verified.status(99) == REVOKED


def test_a_di_credential_with_a_list_signed_by_another_issuer_is_refused() -> None:
    issuer, publisher = publishing_issuer()
    holder = Party.create("h")
    url = f"{issuer.did}/status/di/0"
    publisher.lists[url] = StatusList()
    publisher.signer = Party.create("s")
    sent = offer(issuer, holder, credential_format="di_vc", status=(url, 5))
    (wire,) = issuer.start(sent)
    holder.receive(wire)
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(accept_offer(holder.record(thid), now=NOW, ids=holder.ids))
    _, (issued,) = issuer.receive(request)
    outcome, _ = holder.receive(issued)
    assert "issue-credential.credential-received" not in kinds(outcome)
    assert "stapled status list" in outcome.events[-1].data["reason"]


@pytest.mark.parametrize(("offered", "signed"), [(99, 100), (99, None), (None, 99)])
def test_holder_refuses_a_credential_whose_status_differs_from_the_template(
    offered: int | None, signed: int | None
) -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    url = f"{issuer.did}/status/di/0"
    sent = offer(
        issuer,
        holder,
        credential_format="di_vc",
        status=None if offered is None else (url, offered),
    )
    (wire,) = issuer.start(sent)
    outcome, _ = holder.receive(wire)
    assert event(outcome, "issue-credential.offer-received")["revocable"] is (offered is not None)
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(accept_offer(holder.record(thid), now=NOW, ids=holder.ids))
    record = issuer.record(thid)
    record.data["offer"]["status"] = None if signed is None else [url, signed]
    issuer.store.apply(Transition(record, [], []))
    _, (issued,) = issuer.receive(request)
    outcome, _ = holder.receive(issued)
    assert "issue-credential.credential-received" not in kinds(outcome)
    assert "status" in outcome.events[-1].data["reason"]


def ask_any(verifier: Party, prover: Party) -> tuple[str, dict[str, Any]]:
    sent = request_presentation(
        verifier.did,
        prover.did,
        NOW,
        vct=PID,
        claims=["age_over_18"],
        formats=("dc+sd-jwt", "di_vc"),
        ids=verifier.ids,
    )
    (wire,) = verifier.start(sent)
    outcome, _ = prover.receive(wire)
    return sent.outbound[0]["id"], event(outcome, "present-proof.request-received")


def test_request_any_format_is_answered_by_the_whole_credential_and_verified() -> None:
    issuer, prover, verifier = Party.create("i"), Party.create("p"), Party.create("v")
    credential = issue_di(issuer, prover)["credential"]
    thid, asked = ask_any(verifier, prover)
    assert asked["discloses"] == "whole credential"
    assert asked["formats"] == ["dc+sd-jwt", "di_vc"]
    assert matching(prover.record(thid), [("di", credential), ("junk", "{}")]) == ["di"]
    sent = answer(prover, thid, credential)
    assert set(event_of(sent, "present-proof.presentation-sent")["disclosed"]) == set(CLAIMS)
    (wire,) = prover.start(sent)
    outcome, _ = verifier.receive(wire, now=NOW + 6)
    verified = event(outcome, "present-proof.verified")
    # Only what was asked is kept, although the whole credential was shown.
    assert verified == {
        "issuer": issuer.did,
        "vct": PID,
        "claims": {"age_over_18": True},
        "status": "not revocable",
    }


def test_a_revocable_di_credential_is_verified_with_its_stapled_list_until_revoked() -> None:
    issuer, publisher = publishing_issuer()
    prover, verifier = Party.create("p"), Party.create("v")
    url = f"{issuer.did}/status/di/0"
    publisher.lists[url] = StatusList()
    received = issue_di(issuer, prover, status=(url, 31))
    held = {url: received["status_list"]}  # the JCS text the holder stores

    thid, _ = ask_any(verifier, prover)
    sent = answer(prover, thid, received["credential"], status_lists=held)
    staple = sent.outbound[0]["attachments"][1]
    assert (staple["id"], staple["format"]) == ("status-list", "bitstring-status-list")
    (wire,) = prover.start(sent)
    outcome, _ = verifier.receive(wire, now=NOW + 6)
    assert event(outcome, "present-proof.verified")["status"] == "valid"

    publisher.lists[url].set(31, REVOKED)
    held = {url: publisher.source(url)}  # refreshed: a dict works as well as its text
    thid, _ = ask_any(verifier, prover)
    (wire,) = prover.start(answer(prover, thid, received["credential"], status_lists=held))
    outcome, _ = verifier.receive(wire, now=NOW + 6)
    assert event(outcome, "present-proof.failed")["reason"] == "credential revoked"

    thid, _ = ask_any(verifier, prover)
    (wire,) = prover.start(answer(prover, thid, received["credential"]))
    outcome, _ = verifier.receive(wire, now=NOW + 6)
    assert event(outcome, "present-proof.failed")["reason"] == "revocation status unknown"


def test_a_suspendable_di_credential_is_checked_in_both_its_lists() -> None:
    issuer, publisher = publishing_issuer()
    prover, verifier = Party.create("p"), Party.create("v")
    url, suspension = f"{issuer.did}/status/di/0", f"{issuer.did}/status/di-suspension/0"
    publisher.lists[url], publisher.lists[suspension] = StatusList(), StatusList()
    received = issue_di(issuer, prover, status=(url, 31), suspension=(suspension, 31))
    credential = data_integrity.parse_document(received["credential"])
    assert [e["statusPurpose"] for e in credential["credentialStatus"]] == ["revocation", "suspension"]
    # Both lists were stapled at issuance, each verified for its purpose.
    assert received["suspension"] == {"uri": suspension, "index": 31} and received["status_value"] == VALID
    assert received["status_list"] != received["suspension_list"] is not None

    def verdict(held: dict[str, Any]) -> tuple[str, Any]:
        thid, _ = ask_any(verifier, prover)
        sent = answer(prover, thid, received["credential"], status_lists=held)
        (wire,) = prover.start(sent)
        outcome, _ = verifier.receive(wire, now=NOW + 6)
        if "present-proof.verified" in kinds(outcome):
            return "verified", event(outcome, "present-proof.verified")["status"]
        return "failed", event(outcome, "present-proof.failed")["reason"]

    both = {url: received["status_list"], suspension: received["suspension_list"]}
    assert verdict(both) == ("verified", "valid")
    # Every entry needs its list: the revocation list alone says nothing of suspension.
    assert verdict({url: received["status_list"]}) == ("failed", "revocation status unknown")
    # Suspended, then reinstated: the verifier reads what the fresh suspension list says.
    publisher.lists[suspension].set(31, 1)
    assert verdict({**both, suspension: publisher.source(suspension)}) == ("failed", "credential suspended")
    publisher.lists[suspension].set(31, 0)
    assert verdict({**both, suspension: publisher.source(suspension)}) == ("verified", "valid")
    # Revoked while suspended: revocation, read first, is the reason.
    publisher.lists[url].set(31, REVOKED)
    publisher.lists[suspension].set(31, 1)
    assert verdict({url: publisher.source(url), suspension: publisher.source(suspension)}) == (
        "failed", "credential revoked")
    # A list whose purpose is not its entry's is not read for it (the spec's rule).
    publisher.purposes[suspension] = "revocation"
    state, reason = verdict({**both, suspension: publisher.source(suspension)})
    assert state == "failed" and reason.startswith("revocation status unknown") and "suspension" in reason


def test_the_holder_refuses_an_offer_whose_credential_status_has_no_revocation_entry() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    url = f"{issuer.did}/status/di-suspension/0"
    sent = offer(issuer, holder, credential_format="di_vc", status=(url, 3))
    template = sent.outbound[0]["attachments"][0]["data"]["json"]
    template["credentialStatus"] = bitstring_entry(url, 3, "suspension")
    (wire,) = issuer.start(sent)
    outcome, _ = holder.receive(wire)
    assert "issue-credential.offer-received" not in kinds(outcome)
    assert "revocation entry" in json.dumps(outcome.events[-1].data)


def answer(
    prover: Party,
    thid: str,
    credential: str,
    status_lists: dict[str, Any] | None = None,
    **changes: Any,
) -> Transition:
    record = prover.record(thid)
    if changes:
        record = record.copy()
        record.data.update(changes)
    kid = f"{prover.did}#key-2"
    key = prover.secrets.get_key(kid)
    assert key is not None
    return present_whole(
        record,
        credential=credential,
        holder_key=key,
        holder_kid=kid,
        now=NOW + 5,
        ids=prover.ids,
        status_lists=status_lists or {},
    )


def event_of(transition: Transition, kind: str) -> dict[str, Any]:
    (found,) = [e.data for e in transition.events if e.kind == kind]
    return found


def _vp(transition: Transition) -> dict[str, Any]:
    vp: dict[str, Any] = transition.outbound[0]["attachments"][0]["data"]["json"]["vp_token"]
    return vp


def tamper_claim(transition: Transition) -> None:
    _vp(transition)["verifiableCredential"][0]["credentialSubject"]["age_over_18"] = False


def swap_holder(transition: Transition, thief: Party, nonce: str, domain: str) -> None:
    """The thief wraps the victim's credential in its own, validly signed VP."""
    vp = _vp(transition)
    unsigned = {k: v for k, v in copy.deepcopy(vp).items() if k != "proof"}
    unsigned["holder"] = thief.did
    kid = f"{thief.did}#key-2"
    key = thief.secrets.get_key(kid)
    assert key is not None
    signed = data_integrity.sign_presentation(
        unsigned,
        key=key,
        verification_method=kid,
        created="2026-01-01T00:00:00Z",
        challenge=nonce,
        domain=domain,
    )
    transition.outbound[0]["attachments"][0]["data"]["json"]["vp_token"] = signed


@pytest.mark.parametrize("attack", ["tampered", "wrong-challenge", "holder-not-subject"])
def test_a_bad_presentation_fails_verification(attack: str) -> None:
    issuer, prover, verifier = Party.create("i"), Party.create("p"), Party.create("v")
    credential = issue_di(issuer, prover)["credential"]
    thid, _ = ask_any(verifier, prover)
    if attack == "wrong-challenge":
        sent = answer(prover, thid, credential, nonce="another-request")
    else:
        sent = answer(prover, thid, credential)
    if attack == "tampered":
        tamper_claim(sent)
    if attack == "holder-not-subject":
        swap_holder(sent, verifier, prover.record(thid).data["nonce"], verifier.did)
        # The wire message still comes from the prover; the VP says the thief holds it.
        sent.outbound[0]["from"] = prover.did
    (wire,) = prover.start(sent)
    outcome, _ = verifier.receive(wire, now=NOW + 6)
    assert "present-proof.verified" not in kinds(outcome)
    reason = event(outcome, "present-proof.failed")["reason"]
    if attack == "holder-not-subject":
        assert "subject" in reason
    assert verifier.record(thid).state == "abandoned"


def test_a_request_requiring_limited_disclosure_never_matches_a_di_credential() -> None:
    issuer, prover, verifier = Party.create("i"), Party.create("p"), Party.create("v")
    credential = issue_di(issuer, prover)["credential"]
    thid, _ = ask_any(verifier, prover)
    record = prover.record(thid)
    definition = copy.deepcopy(record.data["definition"])
    definition["input_descriptors"][0]["constraints"]["limit_disclosure"] = "required"
    record.data["definition"] = definition
    assert matching(record, [("di", credential)]) == []
    with pytest.raises(NotSatisfiedError):
        answer_record = record
        kid = f"{prover.did}#key-2"
        key = prover.secrets.get_key(kid)
        assert key is not None
        present_whole(answer_record, credential=credential, holder_key=key, holder_kid=kid, now=NOW)


def test_an_sd_jwt_only_request_says_selected_and_ignores_di_credentials() -> None:
    issuer, prover, verifier = Party.create("i"), Party.create("p"), Party.create("v")
    credential = issue_di(issuer, prover)["credential"]
    sent = request_presentation(
        verifier.did, prover.did, NOW, vct=PID, claims=["age_over_18"], ids=verifier.ids
    )
    definition = sent.record.data["definition"] if sent.record else {}
    assert definition["input_descriptors"][0]["constraints"]["limit_disclosure"] == "required"
    (wire,) = verifier.start(sent)
    outcome, _ = prover.receive(wire)
    assert event(outcome, "present-proof.request-received")["discloses"] == "selected"
    assert matching(prover.record(sent.outbound[0]["id"]), [("di", credential)]) == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["offer-credential", "issue-credential", "request-credential"]),
    member=st.sampled_from(
        [
            "@context",
            "type",
            "issuer",
            "credentialSubject",
            "validUntil",
            "credentialStatus",
            "proof",
            "extra",
        ]
    ),
    value=JSON,
)
def test_hostile_di_attachments_give_typed_errors_only(name: str, member: str, value: Any) -> None:
    """A di_vc template, request or credential with any member replaced by any JSON:
    the machines answer with a typed error (a problem report), never an exception."""
    issuer, holder = Party.create("i"), Party.create("h")
    sent = offer(issuer, holder, credential_format="di_vc", status=(f"{issuer.did}/status/di/0", 5))
    (wire,) = issuer.start(sent)
    holder.receive(wire)
    thid = sent.outbound[0]["id"]
    accepted = accept_offer(holder.record(thid), now=NOW, ids=holder.ids)
    (request,) = holder.start(accepted)
    _, (issued,) = issuer.receive(request)
    message = {
        "offer-credential": sent.outbound[0],
        "request-credential": accepted.outbound[0],
        "issue-credential": unpack(
            issued, resolver=default_resolver(), secrets=holder.secrets, now=NOW
        ).message,
    }[name]
    hostile = copy.deepcopy(message)
    hostile["id"] = "hostile-1"
    hostile["thid"] = thid if name != "offer-credential" else "hostile-thread"
    hostile["attachments"][0]["data"]["json"][member] = value
    sender, receiver = (holder, issuer) if name == "request-credential" else (issuer, holder)
    (packed,) = sender.pack([hostile])
    outcome, _ = receiver.receive(packed)
    assert outcome.error is None or isinstance(outcome.error, DIDCommError)
    if name == "issue-credential" and outcome.error is None:
        # Whatever the change, a credential the holder took verified and matches the offer.
        received = [
            e.data for e in outcome.events if e.kind == "issue-credential.credential-received"
        ]
        for data in received:
            data_integrity.verify_credential(
                data_integrity.parse_document(data["credential"]), resolver=default_resolver()
            )

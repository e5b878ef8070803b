"""Present Proof 3.0 with SD-JWT VCs: a verifier asks "over 18?", a prover shows just that."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import sd_jwt, status_list
from protocols.codec import b64u_decode, b64u_encode, json_loads
from protocols.errors import DIDCommError
from protocols.framework import ABANDONED, EMPTY_MESSAGE, Outcome, ProtocolRecord, states_of
from protocols.present_proof import (
    FORMAT_DEFINITION,
    FORMAT_SUBMISSION,
    PIURI,
    PRESENTATION,
    REQUEST_PRESENTATION,
    PresentProof,
    decline,
    matching,
    present,
    propose_presentation,
    request_presentation,
)
from protocols.presentation_exchange import FORMAT_DI_VC, FORMAT_SD_JWT_VC, NotSatisfiedError
from protocols.protocol_errors import UnexpectedMessageError
from protocols.report_problem import PROBLEM_REPORT
from protocols.status_exchange import MAX_STAPLED_LISTS
from protocols.status_list import StatusList
from tests.protocols.test_framework import (
    ALICE,
    ANON,
    AUTH,
    BOB,
    NOW,
    Store,
    codes,
    off_table_outcomes,
)
from tests.protocols.test_issue_credential import (
    CLAIMS,
    DISCLOSABLE,
    PID,
    Party,
    Publisher,
    event,
    issue_flow,
    json_values,
    kinds,
    publishing_issuer,
)


def credential_for(issuer: Party, holder: Party, **changes: Any) -> str:
    args: dict[str, Any] = {
        "vct": PID,
        "issuer": issuer.did,
        "signer_kid": issuer.assertion_kid,
        "signer": issuer.secrets.get_key(issuer.assertion_kid),
        "disclosable": DISCLOSABLE,
        "holder_jwk": holder.holder_jwk,
        "now": NOW,
    }
    claims = changes.pop("claims", {**CLAIMS, "age": 62})
    args.update(changes)
    return sd_jwt.issue(claims, **args)


def ask(verifier: Party, prover: Party, **kwargs: Any) -> tuple[str, Outcome]:
    """The verifier requests; the prover receives.  Returns the thread and the prover's outcome."""
    args: dict[str, Any] = {"vct": PID, "claims": ["age_over_18"], "ids": verifier.ids}
    args.update(kwargs)
    sent = request_presentation(verifier.did, prover.did, NOW, **args)
    (wire,) = verifier.start(sent)
    outcome, replies = prover.receive(wire)
    assert replies == []
    return sent.outbound[0]["id"], outcome


def disclosed_values(token: str) -> list[Any]:
    """The values of every Disclosure in a presentation."""
    parts = token.split("~")[1:-1]
    return [json_loads(b64u_decode(p))[-1] for p in parts]


def test_over_18_without_the_birthdate() -> None:
    issuer, prover, verifier = Party.create("i"), Party.create("p"), Party.create("v")
    credential, _ = issue_flow(issuer, prover)
    thid, outcome = ask(verifier, prover, issuers=[issuer.did], comment="Age check")
    assert event(outcome, "present-proof.request-received") == {
        "from": verifier.did,
        "vct": PID,
        "claims": ["age_over_18"],
        "issuers": [issuer.did],
        "formats": ["dc+sd-jwt"],
        "discloses": "selected",
        "comment": "Age check",
        "goal_code": None,
        "status_max_age": 86400,
    }
    request = prover.record(thid)
    assert request.state == "request-received"
    other = credential_for(issuer, prover, vct="https://example.org/vct/library-card")
    assert matching(request, [("pid", credential), ("card", other), ("junk", "x~y")]) == ["pid"]

    shown = present(
        request, sd_jwt=credential, holder_key=prover.holder_key, now=NOW + 1, ids=prover.ids
    )
    (message,) = shown.outbound
    assert message["type"] == PRESENTATION and message["please_ack"] == [""]
    (sent,) = shown.events
    assert (sent.kind, sent.data["format"], sent.data["disclosed"]) == (
        "present-proof.presentation-sent", "dc+sd-jwt", ["age_over_18"])
    (attachment,) = message["attachments"]
    assert attachment["format"] == FORMAT_SUBMISSION
    token = attachment["data"]["json"]["vp_token"]
    assert disclosed_values(token) == [True]  # age_over_18 only
    assert "1963-08-12" not in str(message) and "Erika" not in str(message)
    assert all(v not in disclosed_values(token) for v in ("1963-08-12", "Erika", "Mustermann"))
    (wire,) = prover.start(shown)
    assert prover.record(thid).state == "presentation-sent"

    outcome, (ack,) = verifier.receive(wire, NOW + 2)
    assert event(outcome, "present-proof.verified") == {
        "issuer": issuer.did,
        "vct": PID,
        "claims": {"age_over_18": True},
        "status": "not revocable",
    }
    assert verifier.record(thid).state == "done"
    assert outcome.outbound[0]["type"] == EMPTY_MESSAGE
    assert outcome.outbound[0]["ack"] == [message["id"]]
    outcome, _ = prover.receive(ack, NOW + 3)
    assert kinds(outcome) == ["ack.received"]


def test_plain_claims_and_filters() -> None:
    issuer, prover, verifier = Party.create("i"), Party.create("p"), Party.create("v")
    credential = credential_for(issuer, prover)  # nationality and age are plain claims
    thid, _ = ask(
        verifier,
        prover,
        claims=["nationality", "age"],
        filters={"age": {"type": "integer", "minimum": 60}, "nationality": {"enum": ["DE"]}},
    )
    request = prover.record(thid)
    assert matching(request, [("c", credential)]) == ["c"]
    shown = present(request, sd_jwt=credential, holder_key=prover.holder_key, now=NOW)
    assert disclosed_values(shown.outbound[0]["attachments"][0]["data"]["json"]["vp_token"]) == []
    (wire,) = prover.start(shown)
    outcome, _ = verifier.receive(wire)
    assert event(outcome, "present-proof.verified")["claims"] == {"nationality": "DE", "age": 62}

    thid, _ = ask(verifier, prover, claims=["age"], filters={"age": {"minimum": 65}})
    request = prover.record(thid)
    assert matching(request, [("c", credential)]) == []
    with pytest.raises(NotSatisfiedError):
        present(request, sd_jwt=credential, holder_key=prover.holder_key, now=NOW)


def test_expired_credentials_do_not_match() -> None:
    issuer, prover, verifier = Party.create("i"), Party.create("p"), Party.create("v")
    lasting = credential_for(issuer, prover, expires=NOW + 100)
    thid, _ = ask(verifier, prover)
    record = prover.record(thid)
    assert matching(record, [("c", lasting)], now=NOW + 99) == ["c"]
    assert matching(record, [("c", lasting)], now=NOW + 100) == []


def test_a_credential_from_an_unlisted_issuer_does_not_match() -> None:
    issuer, prover, verifier = Party.create("i"), Party.create("p"), Party.create("v")
    credential = credential_for(issuer, prover)
    thid, _ = ask(verifier, prover, issuers=["did:example:government"])
    assert matching(prover.record(thid), [("c", credential)]) == []


def _answer(
    verifier: Party, prover: Party, change: Callable[[dict[str, Any], str], None], **kwargs: Any
) -> tuple[str, Outcome]:
    """Request, present honestly, let ``change`` tamper with the presentation, deliver it."""
    issuer = Party.create("i")
    credential = credential_for(issuer, prover)
    thid, _ = ask(verifier, prover, **kwargs)
    shown = present(prover.record(thid), sd_jwt=credential, holder_key=prover.holder_key, now=NOW)
    prover.store.apply(shown)
    (message,) = shown.outbound
    change(message, credential)
    (wire,) = prover.pack([message])
    outcome, _ = verifier.receive(wire, NOW + 1)
    return thid, outcome


def _tamper_token(message: dict[str, Any], rewrite: Callable[[str], str]) -> None:
    data = message["attachments"][0]["data"]["json"]
    data["vp_token"] = rewrite(data["vp_token"])


def _swap_signature_char(token: str) -> str:
    jwt, rest = token.split("~", 1)
    head, payload, sig = jwt.split(".")
    return f"{head}.{payload}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}~{rest}"


def _presented_without_binding(holder_key: Any) -> Callable[[dict[str, Any], str], None]:
    def change(message: dict[str, Any], credential: str) -> None:
        _tamper_token(
            message,
            lambda _: sd_jwt.present(
                credential, ["age_over_18"], holder_key=None, audience="x", nonce="y", now=NOW
            ),
        )

    return change


TAMPERING: dict[str, Callable[[dict[str, Any], str], None]] = {
    "signature": lambda m, _: _tamper_token(m, _swap_signature_char),
    "kb-jwt": lambda m, _: _tamper_token(
        m, lambda t: t[:-3] + ("AAA" if t[-3:] != "AAA" else "BBB")
    ),
    "no-binding": _presented_without_binding(None),
    "nothing-disclosed": lambda m, c: _tamper_token(
        m, lambda t: t.split("~")[0] + "~" + t.split("~")[-1]
    ),
    "no-attachment": lambda m, _: m.pop("attachments"),
    "other-definition": lambda m, _: m["attachments"][0]["data"]["json"][
        "presentation_submission"
    ].update(definition_id="other"),
    "bad-path": lambda m, _: m["attachments"][0]["data"]["json"]["presentation_submission"][
        "descriptor_map"
    ][0].update(path="$.nothing"),
}


@pytest.mark.parametrize("name", sorted(TAMPERING))
def test_a_tampered_presentation_fails(name: str) -> None:
    verifier, prover = Party.create("v"), Party.create("p")
    thid, outcome = _answer(verifier, prover, TAMPERING[name])
    failed = event(outcome, "present-proof.failed")
    assert failed["reason"]
    assert "present-proof.verified" not in kinds(outcome)
    (report,) = [m for m in outcome.outbound if m["type"] == PROBLEM_REPORT]
    assert report["pthid"] == thid and report["body"]["code"].startswith("e.p.")
    assert len(report["ack"]) == 1  # the presentation, named once
    assert verifier.record(thid).state == ABANDONED
    prover.receive(verifier.pack([report])[0], NOW + 2)
    assert prover.record(thid).state == ABANDONED


def test_a_presentation_replayed_on_another_thread_fails() -> None:
    issuer, prover, verifier = Party.create("i"), Party.create("p"), Party.create("v")
    credential = credential_for(issuer, prover)
    first, _ = ask(verifier, prover)
    second, _ = ask(verifier, prover)
    shown = present(prover.record(first), sd_jwt=credential, holder_key=prover.holder_key, now=NOW)
    (message,) = shown.outbound
    # The same presentation, offered as the answer to the second request; the
    # submission is not signed, so it can be made to name the second definition.
    message["thid"] = second
    submission = message["attachments"][0]["data"]["json"]["presentation_submission"]
    submission["definition_id"] = verifier.record(second).data["definition"]["id"]
    (wire,) = prover.pack([message])
    outcome, _ = verifier.receive(wire, NOW + 1)
    assert "nonce" in event(outcome, "present-proof.failed")["reason"].lower()
    assert verifier.record(second).state == ABANDONED
    assert verifier.record(first).state == "request-sent"


def test_a_presentation_made_for_another_verifier_fails() -> None:
    issuer, prover = Party.create("i"), Party.create("p")
    honest, mallory = Party.create("v"), Party.create("m")
    credential = credential_for(issuer, prover)
    thid, _ = ask(honest, prover)
    shown = present(prover.record(thid), sd_jwt=credential, holder_key=prover.holder_key, now=NOW)
    token = shown.outbound[0]["attachments"][0]["data"]["json"]["vp_token"]
    # Mallory received it and replays it to her own request, nonce and all.
    mthid, _ = ask(mallory, prover)
    mallory_record = mallory.record(mthid)
    mallory_record.data["nonce"] = honest.record(thid).data["nonce"]
    mallory.store.put(mallory_record)
    message = dict(shown.outbound[0], thid=mthid, to=[mallory.did])
    message["attachments"] = [
        {
            **shown.outbound[0]["attachments"][0],
            "data": {
                "json": {**shown.outbound[0]["attachments"][0]["data"]["json"], "vp_token": token}
            },
        }
    ]
    submission = message["attachments"][0]["data"]["json"]["presentation_submission"]
    submission["definition_id"] = mallory_record.data["definition"]["id"]
    (wire,) = prover.pack([message])
    outcome, _ = mallory.receive(wire)
    assert "audience" in event(outcome, "present-proof.failed")["reason"]


def test_a_declined_request_abandons_both_sides() -> None:
    verifier, prover = Party.create("v"), Party.create("p")
    thid, _ = ask(verifier, prover)
    declined = decline(prover.record(thid), reason="no", now=NOW, ids=prover.ids)
    assert declined.outbound[0]["body"]["code"] == "e.p.presentation-abandoned"
    (wire,) = prover.start(declined)
    verifier.receive(wire)
    assert verifier.record(thid).state == ABANDONED
    assert prover.record(thid).state == ABANDONED


def test_the_prover_may_propose_first() -> None:
    issuer, prover, verifier = Party.create("i"), Party.create("p"), Party.create("v")
    credential = credential_for(issuer, prover)
    proposed = propose_presentation(prover.did, verifier.did, NOW, vct=PID, claims=["age_over_18"])
    thid = proposed.outbound[0]["id"]
    assert proposed.outbound[0]["attachments"][0]["format"] == FORMAT_DEFINITION
    (wire,) = prover.start(proposed)
    outcome, _ = verifier.receive(wire)
    assert event(outcome, "present-proof.proposal-received")["claims"] == ["age_over_18"]
    answered = request_presentation(
        verifier.did,
        prover.did,
        NOW,
        vct=PID,
        claims=["age_over_18"],
        proposal=verifier.record(thid),
    )
    assert answered.outbound[0]["type"] == REQUEST_PRESENTATION
    assert answered.outbound[0]["thid"] == thid
    (wire,) = verifier.start(answered)
    prover.receive(wire)
    shown = present(prover.record(thid), sd_jwt=credential, holder_key=prover.holder_key, now=NOW)
    (wire,) = prover.start(shown)
    outcome, _ = verifier.receive(wire)
    assert event(outcome, "present-proof.verified")["claims"] == {"age_over_18": True}


def test_a_proposal_names_its_formats_and_the_verifier_keeps_its_comment() -> None:
    prover, verifier = Party.create("p"), Party.create("v")
    proposed = propose_presentation(prover.did, verifier.did, NOW, vct=PID, claims=["age_over_18"],
                                    comment="my diploma will do", formats=(FORMAT_DI_VC,))
    thid = proposed.outbound[0]["id"]
    (wire,) = prover.start(proposed)
    outcome, _ = verifier.receive(wire)
    received = event(outcome, "present-proof.proposal-received")
    assert received["formats"] == [FORMAT_DI_VC] and received["discloses"] == "whole credential"
    assert received["comment"] == "my diploma will do"
    # Kept in the record, for whoever answers later (the event may be long gone).
    assert verifier.record(thid).data["proposal_comment"] == "my diploma will do"
    default = propose_presentation(prover.did, verifier.did, NOW, vct=None, claims=["a"])
    (wire,) = prover.start(default)
    outcome, _ = verifier.receive(wire)
    received = event(outcome, "present-proof.proposal-received")
    assert received["formats"] == [FORMAT_SD_JWT_VC] and received["discloses"] == "selected"
    assert verifier.record(default.outbound[0]["id"]).data["proposal_comment"] is None


def test_unsolicited_and_unauthenticated_messages_are_refused() -> None:
    party = Party.create()
    stray = {
        "type": PRESENTATION,
        "id": "x",
        "thid": "nope",
        "from": ALICE,
        "to": [BOB],
        "body": {},
    }
    assert codes(party.dispatcher.dispatch(stray, AUTH, Store(), NOW)) == ["e.m.msg.unknown-thread"]
    request = request_presentation(ALICE, BOB, NOW, vct=None, claims=["a"]).outbound[0]
    assert codes(party.dispatcher.dispatch(request, ANON, Store(), NOW)) == [
        "e.p.trust.authentication-required"
    ]


def test_a_request_whose_domain_is_not_its_sender_is_refused() -> None:
    party = Party.create()
    request = request_presentation(ALICE, BOB, NOW, vct=None, claims=["a"]).outbound[0]
    request["attachments"][0]["data"]["json"]["options"]["domain"] = "did:example:mallory"
    assert codes(party.dispatcher.dispatch(request, AUTH, Store(), NOW)) == ["e.p.msg.invalid-body"]


def test_local_commands_follow_the_table() -> None:
    record = ProtocolRecord(thid="t", protocol=PIURI, role="prover", state="presentation-sent")
    with pytest.raises(DIDCommError):
        present(record, sd_jwt="x", holder_key=Party.create().holder_key, now=NOW)
    with pytest.raises(UnexpectedMessageError):
        decline(record, reason="x", now=NOW)


def test_nonces_are_fresh_random() -> None:
    nonces = {
        request_presentation(ALICE, BOB, NOW, vct=None, claims=["a"]).record.data["nonce"]  # type: ignore[union-attr]
        for _ in range(20)
    }
    assert len(nonces) == 20 and all(len(n) >= 40 for n in nonces)


# -- the table at random -------------------------------------------------------------------

REQUEST = request_presentation(ALICE, BOB, NOW, vct=PID, claims=["age_over_18"]).outbound[0]
SAMPLES: dict[str, dict[str, Any]] = {
    "propose-presentation": propose_presentation(
        ALICE, BOB, NOW, vct=PID, claims=["age_over_18"]
    ).outbound[0],
    "request-presentation": REQUEST,
    "presentation": {
        "body": {},
        "attachments": [
            {
                "id": "a",
                "format": FORMAT_SUBMISSION,
                "data": {
                    "json": {
                        "presentation_submission": {
                            "id": "s",
                            "definition_id": REQUEST["attachments"][0]["data"]["json"][
                                "presentation_definition"
                            ]["id"],
                            "descriptor_map": [
                                {"id": "credential", "format": "dc+sd-jwt", "path": "$.vp_token"}
                            ],
                        },
                        "vp_token": "e30.e30.AA~",
                    }
                },
            },
            {"id": "status-list", "format": "statuslist+jwt", "data": {"base64": "e30"}},
        ],
    },
}


def test_every_message_outside_the_table_is_unexpected() -> None:
    dispatcher = Party.create().dispatcher
    outcomes = off_table_outcomes(dispatcher, PresentProof, SAMPLES)
    for role, state, name, outcome in outcomes:
        assert codes(outcome) == ["e.m.msg.unexpected"], (role, state, name)
        assert outcome.records[0].state == state


step = st.tuples(
    st.sampled_from(list(SAMPLES)),
    st.sampled_from(["t-1", "t-2", None]),
    st.sampled_from([ALICE, "did:example:mallory"]),
    st.booleans(),
    st.dictionaries(
        st.sampled_from(["comment", "goal_code", "status_max_age"]),
        st.none() | st.text(max_size=3) | st.integers(),
        max_size=2,
    ),
)


@settings(max_examples=150)
@given(st.lists(step, max_size=10), st.sampled_from(["verifier", "prover", None]))
def test_random_sequences_only_give_typed_errors(steps: list[Any], role: str | None) -> None:
    party = Party.create()
    store = Store()
    if role is not None:
        definition = REQUEST["attachments"][0]["data"]["json"]["presentation_definition"]
        store.put(
            ProtocolRecord(
                thid="t-1",
                protocol=PIURI,
                role=role,
                state="request-sent" if role == "verifier" else "proposal-sent",
                their_did=ALICE,
                data={"nonce": "n", "definition": definition, "status_max_age": 60},
            )
        )
    for number, (name, thid, sender, keep, body) in enumerate(steps):
        message: dict[str, Any] = {**SAMPLES[name], "type": f"{PIURI}/{name}"}
        if not keep:
            message["body"] = body
            message.pop("attachments", None)
        message.update({"id": f"r-{number}", "from": sender, "to": [BOB]})
        if thid is not None:
            message["thid"] = thid
        outcome = party.dispatcher.dispatch(message, AUTH, store, NOW)
        store.apply(outcome)
        assert outcome.error is None or isinstance(outcome.error, DIDCommError)
        for record in outcome.records:
            if record.protocol == PIURI:
                assert record.state in states_of(PresentProof.TRANSITIONS, record.role)


ALLOWED_AT = {
    "propose-presentation": ("verifier", "start"),
    "request-presentation": ("prover", "start"),
    "presentation": ("verifier", "request-sent"),
}


@settings(max_examples=200)
@given(
    st.sampled_from(list(SAMPLES)),
    json_values,
    json_values,
    st.sampled_from(["presentation_definition", "presentation_submission", "options", "vp_token"]),
)
def test_fuzzed_attachments_only_give_typed_errors(
    name: str, value: Any, token: Any, key: str
) -> None:
    party = Party.create()
    role, state = ALLOWED_AT[name]
    store = Store()
    definition = REQUEST["attachments"][0]["data"]["json"]["presentation_definition"]
    if state != "start":
        store.put(
            ProtocolRecord(
                thid="t-1",
                protocol=PIURI,
                role=role,
                state=state,
                their_did=ALICE,
                data={"nonce": "n", "definition": definition},
            )
        )
    sample = SAMPLES[name]["attachments"][0]
    content = dict(sample["data"]["json"])
    content[key] = value
    content.setdefault("vp_token", token)
    message = {
        "type": f"{PIURI}/{name}",
        "id": "f-1",
        "thid": "t-1",
        "from": ALICE,
        "to": [BOB],
        "body": {},
        "attachments": [{**sample, "data": {"json": content}}],
    }
    outcome = party.dispatcher.dispatch(message, AUTH, store, NOW)
    assert outcome.error is None or isinstance(outcome.error, DIDCommError)
    if name == "presentation":
        assert [e.kind for e in outcome.events if e.kind.startswith("present-proof")] == [
            "present-proof.failed"
        ]


# -- revocation: stapled status lists -------------------------------------------------------


def revocable_credential(prover: Party, index: int = 7) -> tuple[Party, Publisher, str, str]:
    """A publishing issuer, its revocable SD-JWT VC for ``prover`` (entry ``index`` of
    the list at ``uri``) signed with real keys; returns (issuer, publisher, uri, credential)."""
    issuer, publisher = publishing_issuer()
    uri = f"{issuer.did}/status/sd-jwt/0"
    publisher.lists[uri] = StatusList()
    credential = credential_for(issuer, prover, status=status_list.token_reference(uri, index))
    return issuer, publisher, uri, credential


def show(
    verifier: Party,
    prover: Party,
    credential: str,
    lists: dict[str, Any],
    *,
    now: int = NOW,
    **request: Any,
) -> tuple[str, Outcome, Any]:
    """Request, present with ``lists`` stapled, deliver; (thread, verifier's outcome, sent)."""
    thid, _ = ask(verifier, prover, **request)
    shown = present(
        prover.record(thid),
        sd_jwt=credential,
        holder_key=prover.holder_key,
        now=now,
        ids=prover.ids,
        status_lists=lists,
    )
    (wire,) = prover.start(shown)
    outcome, _ = verifier.receive(wire, now)
    return thid, outcome, shown


def test_a_valid_revocable_credential_with_a_fresh_stapled_list_is_verified() -> None:
    prover, verifier = Party.create("p"), Party.create("v")
    issuer, publisher, uri, credential = revocable_credential(prover)
    publisher.lists[uri].set(8, status_list.REVOKED)  # a neighbour's revocation changes nothing
    token = publisher.source(uri)
    _, outcome, shown = show(verifier, prover, credential, {uri: token, "other": "x.y.z"})
    _, staple = shown.outbound[0]["attachments"]
    assert (staple["id"], staple["format"]) == ("status-list", "statuslist+jwt")
    assert shown.events[0].data["stapled"] == 1
    verified = event(outcome, "present-proof.verified")
    assert verified["status"] == "valid" and verified["issuer"] == issuer.did


def test_a_revoked_credential_fails() -> None:
    prover, verifier = Party.create("p"), Party.create("v")
    _, publisher, uri, credential = revocable_credential(prover, index=7)
    publisher.lists[uri].set(7, status_list.REVOKED)
    thid, outcome, _ = show(verifier, prover, credential, {uri: publisher.source(uri)})
    assert event(outcome, "present-proof.failed")["reason"] == "credential revoked"
    (report,) = [m for m in outcome.outbound if m["type"] == PROBLEM_REPORT]
    assert report["body"]["code"] == "e.p.req.presentation-rejected.revoked"
    assert verifier.record(thid).state == ABANDONED
    prover.receive(verifier.pack([report])[0])
    assert prover.record(thid).state == ABANDONED


def test_a_suspended_credential_fails() -> None:
    prover, verifier = Party.create("p"), Party.create("v")
    issuer, _, uri, credential = revocable_credential(prover, index=7)
    statuses = StatusList(1024, bits=2)
    statuses.set(7, status_list.SUSPENDED)
    key = issuer.secrets.get_key(issuer.assertion_kid)
    assert key is not None
    token = status_list.sign_token(
        statuses, uri=uri, issuer=issuer.did, kid=issuer.assertion_kid, key=key, now=NOW
    )
    _, outcome, _ = show(verifier, prover, credential, {uri: token})
    assert event(outcome, "present-proof.failed")["reason"] == "credential suspended"


def test_a_revocable_credential_without_its_list_has_an_unknown_status() -> None:
    prover, verifier = Party.create("p"), Party.create("v")
    _, publisher, uri, credential = revocable_credential(prover)
    other_uri = uri[:-1] + "1"
    publisher.lists[other_uri] = StatusList()
    for lists in ({}, {other_uri: publisher.source(other_uri)}):
        _, outcome, _ = show(verifier, prover, credential, lists)
        assert event(outcome, "present-proof.failed")["reason"] == "revocation status unknown"


def test_a_list_older_than_the_requests_max_age_is_not_enough() -> None:
    prover, verifier = Party.create("p"), Party.create("v")
    _, publisher, uri, credential = revocable_credential(prover)
    publisher.signed_at = NOW - 3600
    token = publisher.source(uri)
    thid, prover_outcome = ask(verifier, prover, status_max_age=600)
    assert event(prover_outcome, "present-proof.request-received")["status_max_age"] == 600
    assert verifier.record(thid).data["status_max_age"] == 600
    _, outcome, _ = show(verifier, prover, credential, {uri: token}, status_max_age=600)
    assert event(outcome, "present-proof.failed")["reason"] == "revocation status unknown"
    # The default (a day) takes the same list.
    _, outcome, _ = show(verifier, prover, credential, {uri: token})
    assert event(outcome, "present-proof.verified")["status"] == "valid"


def test_an_expired_list_is_not_enough() -> None:
    prover, verifier = Party.create("p"), Party.create("v")
    issuer, _, uri, credential = revocable_credential(prover)
    key = issuer.secrets.get_key(issuer.assertion_kid)
    assert key is not None
    token = status_list.sign_token(
        StatusList(),
        uri=uri,
        issuer=issuer.did,
        kid=issuer.assertion_kid,
        key=key,
        now=NOW - 500,
        expires=NOW - 100,
    )
    _, outcome, _ = show(verifier, prover, credential, {uri: token})
    assert event(outcome, "present-proof.failed")["reason"] == "revocation status unknown"


def test_a_list_signed_by_someone_else_is_refused() -> None:
    prover, verifier = Party.create("p"), Party.create("v")
    _, publisher, uri, credential = revocable_credential(prover)
    publisher.signer = Party.create("m")  # a valid token for the same uri, not the issuer's
    _, outcome, _ = show(verifier, prover, credential, {uri: publisher.source(uri)})
    reason = event(outcome, "present-proof.failed")["reason"]
    assert reason.startswith("revocation status unknown:") and "issuer" in reason


def test_the_prover_does_not_offer_revoked_credentials() -> None:
    prover, verifier = Party.create("p"), Party.create("v")
    _, _, _, credential = revocable_credential(prover)
    thid, _ = ask(verifier, prover)
    held = [("kept", credential), ("gone", credential)]
    assert matching(prover.record(thid), held, revoked={"gone"}) == ["kept"]
    assert matching(prover.record(thid), held) == ["kept", "gone"]


def test_status_max_age_is_checked() -> None:
    with pytest.raises(DIDCommError):
        request_presentation(ALICE, BOB, NOW, vct=None, claims=["a"], status_max_age=-1)
    with pytest.raises(DIDCommError):
        request_presentation(ALICE, BOB, NOW, vct=None, claims=["a"], status_max_age=10**9)
    party = Party.create()
    for bad in (-1, "1", True, 10**9):
        request = request_presentation(ALICE, BOB, NOW, vct=None, claims=["a"]).outbound[0]
        request["body"]["status_max_age"] = bad
        assert codes(party.dispatcher.dispatch(request, AUTH, Store(), NOW)) == [
            "e.p.msg.invalid-body"
        ]


@settings(max_examples=80)
@given(
    st.sampled_from(["statuslist+jwt", "bitstring-status-list"]),
    st.sampled_from(["json", "base64"]),
    json_values,
    st.integers(0, MAX_STAPLED_LISTS + 1),
)
def test_hostile_stapled_lists_never_verify_a_revocable_credential(
    list_format: str, kind: str, value: Any, copies: int
) -> None:
    """A real revocable presentation whose staples are replaced by anything: a typed
    error (failed verdict) every time -- never verified, never an exception."""
    prover, verifier = Party.create("p"), Party.create("v")
    _, publisher, uri, credential = revocable_credential(prover)
    token = publisher.source(uri)
    assert token is not None
    thid, _ = ask(verifier, prover)
    shown = present(
        prover.record(thid),
        sd_jwt=credential,
        holder_key=prover.holder_key,
        now=NOW,
        status_lists={uri: token},
    )
    message = shown.outbound[0]
    data = value if kind == "json" else b64u_encode(str(value).encode())
    hostile = {"id": "status-list", "format": list_format, "data": {kind: data}}
    message["attachments"][1:] = [hostile] * copies
    (wire,) = prover.pack([message])
    outcome, _ = verifier.receive(wire)
    assert outcome.error is None or isinstance(outcome.error, DIDCommError)
    assert "present-proof.verified" not in kinds(outcome)
    assert event(outcome, "present-proof.failed")["reason"].startswith("revocation status unknown")

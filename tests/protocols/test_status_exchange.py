"""Status List exchange: a holder fetches its issuer's latest signed list over DIDComm.

Real parties (``Party`` from test_issue_credential: did:peer:2, real keys,
authcrypt envelopes) and real signed lists (``Publisher``: a StatusList per
URI, signed on demand with the issuer's assertionMethod key).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import status_list
from protocols.codec import b64u_decode, b64u_encode
from protocols.did.resolver import default_resolver
from protocols.discover_features import start_query
from protocols.errors import DIDCommError
from protocols.framework import ABANDONED, ProtocolRecord, states_of
from protocols.jcs import canonicalize
from protocols.protocol_errors import InvalidBodyError
from protocols.status_exchange import (
    FORMAT_BITSTRING,
    FORMAT_TOKEN,
    LIST,
    MAX_STAPLED_LISTS,
    PIURI,
    REQUEST,
    StatusExchange,
    list_attachment,
    request_status_list,
    stapled_lists,
)
from protocols.status_list import REVOKED, StatusList
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
    Party,
    Publisher,
    event,
    json_values,
    kinds,
    publishing_issuer,
)


def fetch(
    holder: Party, issuer: Party, uri: str, *, expect: str | None = None, now: int = NOW
) -> tuple[str, Any]:
    """The holder asks the issuer for ``uri``; returns the thread and the holder's outcome."""
    sent = request_status_list(
        holder.did, issuer.did, now, uri=uri, issuer=expect or issuer.did, ids=holder.ids
    )
    assert sent.outbound[0]["type"] == REQUEST and sent.outbound[0]["body"] == {"uri": uri}
    (wire,) = holder.start(sent)
    _, (answer,) = issuer.receive(wire, now)
    outcome, _ = holder.receive(answer, now)
    return sent.outbound[0]["id"], outcome


@pytest.mark.parametrize("kind", ["sd-jwt", "di"])
def test_the_holder_gets_the_issuers_latest_list(kind: str) -> None:
    issuer, publisher = publishing_issuer()
    holder = Party.create("h")
    uri = f"{issuer.did}/status/{kind}/0"
    publisher.lists[uri] = StatusList()
    publisher.lists[uri].set(12, REVOKED)
    publisher.signed_at = NOW + 10
    sent = request_status_list(holder.did, issuer.did, NOW + 20, uri=uri, issuer=issuer.did)
    assert [e.kind for e in sent.events] == ["status-list.requested"]
    (wire,) = holder.start(sent)
    thid = sent.outbound[0]["id"]
    assert holder.record(thid).state == "requested"

    outcome, (answer,) = issuer.receive(wire, NOW + 20)
    (reply,) = outcome.outbound
    assert reply["type"] == LIST and reply["body"] == {"uri": uri}
    (attachment,) = reply["attachments"]
    assert attachment["format"] == (FORMAT_TOKEN if kind == "sd-jwt" else FORMAT_BITSTRING)
    assert event(outcome, "status-list.sent") == {"to": holder.did, "uri": uri}
    assert issuer.record(thid).state == "done"

    outcome, _ = holder.receive(answer, NOW + 20)
    received = event(outcome, "status-list.received")
    assert holder.record(thid).state == "done"
    assert {k: received[k] for k in ("uri", "issuer", "format", "issued_at", "expires")} == {
        "uri": uri,
        "issuer": issuer.did,
        "format": attachment["format"],
        "issued_at": NOW + 10,
        "expires": None,
    }
    verified = status_list.verify_status_list(
        received["document"], resolver=default_resolver(), now=NOW + 20, uri=uri
    )
    assert verified.status(12) == REVOKED and verified.status(13) == status_list.VALID
    if kind == "di":
        assert received["document"] == canonicalize(attachment["data"]["json"]).decode()
    else:
        assert received["document"] == b64u_decode(attachment["data"]["base64"]).decode()


def test_an_unknown_uri_is_not_found_and_the_request_fails() -> None:
    issuer, _ = publishing_issuer()
    holder = Party.create("h")
    uri = f"{issuer.did}/status/sd-jwt/9"
    sent = request_status_list(holder.did, issuer.did, NOW, uri=uri, issuer=issuer.did)
    (wire,) = holder.start(sent)
    outcome, (report,) = issuer.receive(wire)
    assert codes(outcome) == ["e.p.req.not-found"]
    outcome, _ = holder.receive(report)
    failed = event(outcome, "status-list.failed")
    assert failed["uri"] == uri and failed["reason"]
    assert holder.record(sent.outbound[0]["id"]).state == ABANDONED


def test_a_responder_without_a_source_publishes_nothing() -> None:
    holder, other = Party.create("h"), Party.create("o")  # other: status_source None
    sent = request_status_list(
        holder.did, other.did, NOW, uri=f"{other.did}/status/sd-jwt/0", issuer=other.did
    )
    (wire,) = holder.start(sent)
    outcome, _ = other.receive(wire)
    assert codes(outcome) == ["e.p.req.not-found"]


@pytest.mark.parametrize("attack", ["other-signer", "other-issuer-expected", "other-uri"])
def test_a_list_that_is_not_the_one_asked_for_fails(attack: str) -> None:
    issuer, publisher = publishing_issuer()
    holder = Party.create("h")
    uri = f"{issuer.did}/status/sd-jwt/0"
    publisher.lists[uri] = StatusList()
    expect = issuer.did
    if attack == "other-signer":
        publisher.signer = Party.create("s")  # the peer answers with a list someone else signed
    if attack == "other-issuer-expected":
        expect = Party.create("x").did  # the credential's issuer is not the peer
    if attack == "other-uri":
        publisher.lists[uri + "0"] = publisher.lists[uri]

        def swapped(asked: str) -> str | dict[str, Any] | None:
            # The peer answers a request for .../0 with its list at .../00.
            return publisher.source(asked + "0")

        issuer.dispatcher.machine_for(PIURI).status_source = swapped  # type: ignore[attr-defined]
    thid, outcome = fetch(holder, issuer, uri, expect=expect)
    assert "status-list.received" not in kinds(outcome)
    failed = event(outcome, "status-list.failed")
    assert failed["uri"] == uri
    assert holder.record(thid).state == ABANDONED
    # The issuer hears why (a problem report on the thread).
    assert outcome.outbound and outcome.outbound[0]["type"].endswith("/problem-report")


def test_an_expired_list_fails() -> None:
    issuer, publisher = publishing_issuer()
    holder = Party.create("h")
    uri = f"{issuer.did}/status/sd-jwt/0"
    publisher.lists[uri] = StatusList()
    key = issuer.secrets.get_key(issuer.assertion_kid)
    assert key is not None
    token = status_list.sign_token(
        StatusList(),
        uri=uri,
        issuer=issuer.did,
        kid=issuer.assertion_kid,
        key=key,
        now=NOW,
        expires=NOW + 100,
    )
    issuer.dispatcher.machine_for(PIURI).status_source = lambda _: token  # type: ignore[attr-defined]
    _, outcome = fetch(holder, issuer, uri, now=NOW + 1000)
    assert "expired" in event(outcome, "status-list.failed")["reason"]


def test_messages_need_an_authenticated_encrypted_sender() -> None:
    dispatcher = Party.create().dispatcher
    message = request_status_list(
        ALICE, BOB, NOW, uri=f"{BOB}/status/sd-jwt/0", issuer=BOB
    ).outbound[0]
    assert codes(dispatcher.dispatch(message, ANON, Store(), NOW)) == [
        "e.p.trust.authentication-required"
    ]


def test_request_arguments_are_checked() -> None:
    with pytest.raises(InvalidBodyError):
        request_status_list(ALICE, BOB, NOW, uri="", issuer=BOB)
    with pytest.raises(InvalidBodyError):
        request_status_list(ALICE, BOB, NOW, uri="x" * 5000, issuer=BOB)
    with pytest.raises(InvalidBodyError):
        request_status_list(ALICE, BOB, NOW, uri=f"{BOB}/status/sd-jwt/0", issuer="bob")


def test_discover_features_discloses_the_protocol() -> None:
    asker, issuer = Party.create("a"), Party.create("i")
    sent = start_query(
        asker.did,
        issuer.did,
        [{"feature-type": "protocol", "match": "https://didcommd.dev/*"}],
        NOW,
    )
    (wire,) = asker.start(sent)
    outcome, _ = issuer.receive(wire)
    (disclose,) = outcome.outbound
    disclosed = disclose["body"]["disclosures"]
    assert {"feature-type": "protocol", "id": PIURI, "roles": ["requester", "responder"]} in (
        disclosed
    )


def test_stapled_lists_are_bounded() -> None:
    token_attachment = list_attachment("a.b.c")
    message = {"attachments": [token_attachment] * (MAX_STAPLED_LISTS + 1)}
    with pytest.raises(DIDCommError):
        stapled_lists(message)
    assert stapled_lists({"attachments": [token_attachment]}) == ["a.b.c"]
    assert stapled_lists({}) == []
    with pytest.raises(DIDCommError):
        list_attachment("x" * (status_list.MAX_TOKEN_CHARS + 1))
    with pytest.raises(DIDCommError):
        stapled_lists(
            {"attachments": [{"format": FORMAT_TOKEN, "data": {"base64": "A" * 400_000}}]}
        )
    with pytest.raises(DIDCommError):
        stapled_lists({"attachments": [{"format": FORMAT_BITSTRING, "data": {"base64": "AA"}}]})
    with pytest.raises(DIDCommError):
        stapled_lists(
            {"attachments": [{"format": FORMAT_TOKEN, "data": {"base64": b64u_encode(b"\xff")}}]}
        )


# -- the table, exhaustively and at random ------------------------------------------------

SAMPLES: dict[str, dict[str, Any]] = {
    "request": {"body": {"uri": f"{BOB}/status/sd-jwt/0"}},
    "list": {
        "body": {"uri": f"{BOB}/status/sd-jwt/0"},
        "attachments": [list_attachment("a.b.c")],
    },
}


def test_every_message_outside_the_table_is_unexpected() -> None:
    dispatcher = Party.create().dispatcher
    outcomes = off_table_outcomes(dispatcher, dispatcher.machine_for(PIURI), SAMPLES)
    for role, state, name, outcome in outcomes:
        assert codes(outcome) == ["e.m.msg.unexpected"], (role, state, name)


def _requested(store: Store) -> None:
    store.put(
        ProtocolRecord(
            thid="t-1",
            protocol=PIURI,
            role="requester",
            state="requested",
            their_did=ALICE,
            our_did=BOB,
            data={"uri": f"{ALICE}/status/sd-jwt/0", "issuer": ALICE},
        )
    )


step = st.tuples(
    st.sampled_from(list(SAMPLES)),
    st.sampled_from(["t-1", "t-2", None]),
    st.sampled_from([ALICE, "did:example:mallory"]),
    st.booleans(),
    st.dictionaries(st.sampled_from(["uri", "comment"]), json_values, max_size=2),
)


@settings(max_examples=150)
@given(st.lists(step, max_size=10), st.booleans())
def test_random_sequences_only_give_typed_errors(steps: list[Any], requested: bool) -> None:
    publisher = Publisher()
    party = Party.create("r", publisher.source)
    publisher.party = party
    publisher.lists[f"{BOB}/status/sd-jwt/0"] = StatusList()
    store = Store()
    if requested:
        _requested(store)
    for number, (name, thid, sender, keep, body) in enumerate(steps):
        message: dict[str, Any] = {**SAMPLES[name], "type": f"{PIURI}/{name}"}
        if not keep:
            message["body"] = body
        message.update({"id": f"r-{number}", "from": sender, "to": [BOB]})
        if thid is not None:
            message["thid"] = thid
        outcome = party.dispatcher.dispatch(message, AUTH, store, NOW)
        store.apply(outcome)
        assert outcome.error is None or isinstance(outcome.error, DIDCommError)
        for record in outcome.records:
            if record.protocol == PIURI:
                assert record.state in states_of(StatusExchange.TRANSITIONS, record.role)
        for found in outcome.events:
            assert found.kind != "status-list.received"  # nothing here is signed by ALICE


@settings(max_examples=200)
@given(
    st.sampled_from([FORMAT_TOKEN, FORMAT_BITSTRING, "other"]),
    st.sampled_from(["json", "base64", "links"]),
    json_values,
    json_values,
    st.integers(0, MAX_STAPLED_LISTS + 1),
)
def test_fuzzed_lists_only_give_typed_errors(
    list_format: str, kind: str, attached: Any, uri: Any, copies: int
) -> None:
    party = Party.create()
    store = Store()
    _requested(store)
    data: Any = {kind: attached if kind != "base64" else str(attached)}
    message = {
        "type": LIST,
        "id": "f-1",
        "thid": "t-1",
        "from": ALICE,
        "to": [BOB],
        "body": {"uri": uri},
        "attachments": [{"id": "a", "format": list_format, "data": data}] * copies,
    }
    outcome = party.dispatcher.dispatch(message, AUTH, store, NOW)
    assert outcome.error is None or isinstance(outcome.error, DIDCommError)
    assert "status-list.received" not in kinds(outcome)
    for record in outcome.records:  # none when the envelope-level checks refused it
        assert record.state in (ABANDONED, "requested")

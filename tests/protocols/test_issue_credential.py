"""Issue Credential 3.0 with SD-JWT VCs: two real parties, real keys, real envelopes.

``Party`` (shared with ``test_present_proof``) is one agent: a did:peer:2
with a key-agreement key, an authentication key and an assertionMethod key
(what an SD-JWT issuer signs with), its secrets, a dispatcher running the
credential machines, and a record store that keeps records as CBOR.
Messages travel packed with authcrypt and are unpacked for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import sd_jwt, status_list
from protocols.codec import b64u_decode, b64u_encode
from protocols.did.did_peer import create_did_peer_2
from protocols.did.resolver import default_resolver
from protocols.dispatch import standard_dispatcher
from protocols.envelope import pack_encrypted, unpack
from protocols.errors import DIDCommError
from protocols.framework import (
    ABANDONED,
    EMPTY_MESSAGE,
    Dispatcher,
    Outcome,
    ProtocolRecord,
    Transition,
    states_of,
)
from protocols.issue_credential import (
    CREDENTIAL_PREVIEW,
    DI_VC,
    FORMAT,
    ISSUE_CREDENTIAL,
    MAX_CLAIMS,
    OFFER_CREDENTIAL,
    PIURI,
    PROPOSE_CREDENTIAL,
    REQUEST_CREDENTIAL,
    IssueCredential,
    accept_offer,
    decline,
    offer_credential,
    propose_credential,
)
from protocols.keys import PrivateKey
from protocols.present_proof import PresentProof
from protocols.protocol_errors import InvalidBodyError, UnexpectedMessageError
from protocols.report_problem import PROBLEM_REPORT
from protocols.secrets import InMemorySecrets
from protocols.status_exchange import StatusExchange, StatusSource
from protocols.status_list import StatusList
from tests.protocols.test_framework import (
    ALICE,
    ANON,
    AUTH,
    BOB,
    NOW,
    Store,
    codes,
    counter_ids,
    off_table_outcomes,
)

PID = "https://example.org/vct/pid"
CLAIMS = {
    "given_name": "Erika",
    "family_name": "Mustermann",
    "birthdate": "1963-08-12",
    "age_over_18": True,
    "nationality": "DE",
}
DISCLOSABLE = ["given_name", "family_name", "birthdate", "age_over_18"]


@dataclass
class Party:
    """One agent with real keys, a dispatcher and a store."""

    did: str
    secrets: InMemorySecrets
    dispatcher: Dispatcher
    holder_key: PrivateKey
    store: Store = field(default_factory=Store)
    ids: Callable[[], str] = field(default_factory=counter_ids)

    @classmethod
    def create(cls, name: str = "m", status_source: StatusSource | None = None) -> Party:
        agreement, signing = PrivateKey.generate("X25519"), PrivateKey.generate("Ed25519")
        # create_did_peer_2 writes V (authentication) keys; the A part makes
        # the signing key an assertionMethod too (key-3), as an issuer needs.
        did = create_did_peer_2([signing.public], [agreement.public])
        did += ".A" + signing.public.to_multikey()
        secrets = InMemorySecrets()
        secrets.add(f"{did}#key-1", agreement)
        secrets.add(f"{did}#key-2", signing)
        secrets.add(f"{did}#key-3", signing)
        resolver = default_resolver()
        dispatcher = standard_dispatcher(
            max_receive_bytes=256 * 1024,
            extra_machines=[
                IssueCredential(resolver, secrets, status_source),
                PresentProof(resolver),
                StatusExchange(resolver, status_source),
            ],
            ids=counter_ids(name),
        )
        return cls(did, secrets, dispatcher, PrivateKey.generate("Ed25519"), ids=counter_ids(name))

    @property
    def assertion_kid(self) -> str:
        return f"{self.did}#key-3"

    @property
    def holder_jwk(self) -> dict[str, Any]:
        return self.holder_key.public.to_jwk()

    def pack(self, messages: list[dict[str, Any]]) -> list[str]:
        return [
            pack_encrypted(
                m, m["to"][0], frm=m["from"], resolver=default_resolver(), secrets=self.secrets
            ).packed
            for m in messages
        ]

    def start(self, transition: Transition) -> list[str]:
        """Store a local command's record; its outbound, packed."""
        self.store.apply(transition)
        return self.pack(transition.outbound)

    def receive(self, packed: str, now: int = NOW) -> tuple[Outcome, list[str]]:
        result = unpack(packed, resolver=default_resolver(), secrets=self.secrets, now=now)
        outcome = self.dispatcher.dispatch(result.message, result.metadata, self.store, now)
        self.store.apply(outcome)
        return outcome, self.pack(outcome.outbound)

    def record(self, thid: str) -> ProtocolRecord:
        record = self.store.get(thid)
        assert record is not None
        return record


def kinds(outcome: Outcome) -> list[str]:
    return [e.kind for e in outcome.events]


def event(outcome: Outcome, kind: str) -> dict[str, Any]:
    (found,) = [e.data for e in outcome.events if e.kind == kind]
    return found


def offer(issuer: Party, holder: Party, **kwargs: Any) -> Transition:
    args: dict[str, Any] = {
        "vct": PID,
        "claims": CLAIMS,
        "disclosable": DISCLOSABLE,
        "issuer_kid": issuer.assertion_kid,
        "comment": "Your PID",
        "ids": issuer.ids,
    }
    args.update(kwargs)
    return offer_credential(issuer.did, holder.did, NOW, **args)


def issue_flow(issuer: Party, holder: Party) -> tuple[str, dict[str, Any]]:
    """Offer -> accept -> issue -> verify; the holder's stored credential and its event."""
    sent = offer(issuer, holder)
    (wire,) = issuer.start(sent)
    outcome, _ = holder.receive(wire)
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(
        accept_offer(holder.record(thid), holder_jwk=holder.holder_jwk, now=NOW, ids=holder.ids)
    )
    _, (issued,) = issuer.receive(request)
    outcome, _ = holder.receive(issued)
    received = event(outcome, "issue-credential.credential-received")
    return received["sd_jwt"], received


# -- the happy paths ----------------------------------------------------------------


def test_offer_accept_issue_gives_the_holder_a_verified_credential() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    sent = offer(issuer, holder)
    (message,) = sent.outbound
    assert message["type"] == OFFER_CREDENTIAL
    assert message["body"]["credential_preview"]["type"] == CREDENTIAL_PREVIEW
    assert {"name": "age_over_18", "value": True} in message["body"]["credential_preview"]["body"][
        "attributes"
    ]
    (attachment,) = message["attachments"]
    assert attachment["format"] == FORMAT == "dc+sd-jwt"
    thid = message["id"]
    (wire,) = issuer.start(sent)

    outcome, replies = holder.receive(wire)
    assert replies == []
    assert event(outcome, "issue-credential.offer-received") == {
        "from": issuer.did,
        "format": "dc+sd-jwt",
        "vct": PID,
        "claims": CLAIMS,
        "disclosable": DISCLOSABLE,
        "issuer": issuer.did,
        "comment": "Your PID",
        "goal_code": None,
        "expires": None,
        "revocable": False,
    }
    assert holder.record(thid).state == "offer-received"

    accepted = accept_offer(
        holder.record(thid), holder_jwk=holder.holder_jwk, now=NOW, ids=holder.ids
    )
    assert accepted.outbound[0]["type"] == REQUEST_CREDENTIAL
    (request,) = holder.start(accepted)
    assert holder.record(thid).state == "request-sent"

    outcome, (issued,) = issuer.receive(request, NOW + 1)
    issued_event = event(outcome, "issue-credential.issued")
    assert issued_event["vct"] == PID and issued_event["holder"] == holder.did and issued_event["format"] == "dc+sd-jwt"
    assert issuer.record(thid).state == "credential-issued"
    (issue_message,) = outcome.outbound
    assert issue_message["type"] == ISSUE_CREDENTIAL and issue_message["please_ack"] == [""]

    outcome, (ack,) = holder.receive(issued, NOW + 2)
    received = event(outcome, "issue-credential.credential-received")
    assert received["credential_id"] == issued_event["credential_id"]
    assert received["vct"] == PID and received["issuer"] == issuer.did
    assert received["claims"] == CLAIMS
    assert holder.record(thid).state == "done"
    (ack_message,) = outcome.outbound
    assert ack_message["type"] == EMPTY_MESSAGE and ack_message["ack"] == [issue_message["id"]]

    # What the holder stored really is an SD-JWT VC for its key, from the issuer.
    verified = sd_jwt.verify(received["sd_jwt"], resolver=default_resolver(), now=NOW + 3)
    assert verified.issuer == issuer.did and verified.claims == CLAIMS
    assert set(sd_jwt.disclosable_claims(received["sd_jwt"])) == set(DISCLOSABLE)

    outcome, nothing = issuer.receive(ack, NOW + 3)
    assert nothing == [] and kinds(outcome) == ["ack.received"]


def test_records_and_events_never_hold_private_keys() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    _, received = issue_flow(issuer, holder)
    secrets = [
        holder.holder_key.to_jwk()["d"],
        *(issuer.secrets.get_key(k).to_jwk()["d"] for k in issuer.secrets.kids()),  # type: ignore[union-attr]
    ]
    stored = json.dumps(
        [
            ProtocolRecord.from_dict(cbor2.loads(b)).to_dict()
            for p in (issuer, holder)
            for b in p.store.blobs.values()
        ]
    )
    for secret in secrets:
        assert secret not in stored and secret not in json.dumps(received)


def test_the_holder_may_start_with_a_proposal() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    proposed = propose_credential(
        holder.did, issuer.did, NOW, vct=PID, claims={"age_over_18": True}, ids=holder.ids
    )
    assert proposed.outbound[0]["type"] == PROPOSE_CREDENTIAL
    (wire,) = holder.start(proposed)
    thid = proposed.outbound[0]["id"]
    outcome, _ = issuer.receive(wire)
    assert event(outcome, "issue-credential.proposal-received")["claims"] == {"age_over_18": True}
    assert issuer.record(thid).state == "proposal-received"

    answered = offer(issuer, holder, proposal=issuer.record(thid))
    assert answered.outbound[0]["thid"] == thid
    (wire,) = issuer.start(answered)
    outcome, _ = holder.receive(wire)
    assert holder.record(thid).state == "offer-received"
    (request,) = holder.start(
        accept_offer(holder.record(thid), holder_jwk=holder.holder_jwk, now=NOW, ids=holder.ids)
    )
    _, (issued,) = issuer.receive(request)
    outcome, _ = holder.receive(issued)
    assert event(outcome, "issue-credential.credential-received")["claims"] == CLAIMS
    assert holder.record(thid).state == "done"


@pytest.mark.parametrize(
    ("vct", "credential_format", "sent_as", "read_as"),
    [
        (PID, None, FORMAT, FORMAT),  # a type alone: an SD-JWT VC's attachment names it
        (PID, DI_VC, DI_VC, DI_VC),
        (None, DI_VC, DI_VC, DI_VC),  # the format alone, the type left to the issuer
        (None, None, None, None),  # claims alone: everything left to the issuer
    ],
)
def test_a_proposal_names_the_format_the_holder_would_like(
    vct: str | None, credential_format: str | None, sent_as: str | None, read_as: str | None
) -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    proposed = propose_credential(holder.did, issuer.did, NOW, vct=vct, claims={"degree": "MSc"},
                                  credential_format=credential_format, ids=holder.ids)
    attachments = proposed.outbound[0].get("attachments") or []
    assert [a["format"] for a in attachments] == ([sent_as] if sent_as else [])
    (wire,) = holder.start(proposed)
    outcome, _ = issuer.receive(wire)
    received = event(outcome, "issue-credential.proposal-received")
    assert received["format"] == read_as and received["vct"] == vct
    thid = proposed.outbound[0]["id"]
    assert issuer.record(thid).data["proposal"]["format"] == read_as


def test_a_proposal_in_an_unknown_format_is_refused_before_it_is_sent() -> None:
    holder = Party.create("h")
    with pytest.raises(InvalidBodyError, match="credential format"):
        propose_credential(holder.did, "did:example:issuer", NOW, vct=PID, credential_format="mso_mdoc",
                           ids=holder.ids)


def test_a_declined_offer_abandons_both_sides() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    sent = offer(issuer, holder)
    (wire,) = issuer.start(sent)
    holder.receive(wire)
    thid = sent.outbound[0]["id"]
    declined = decline(holder.record(thid), reason="not now", now=NOW, ids=holder.ids)
    (report,) = declined.outbound
    assert report["type"] == PROBLEM_REPORT and report["pthid"] == thid
    assert report["body"]["code"] == "e.p.issuance-abandoned" and report["body"]["args"] == [
        "not now"
    ]
    (wire,) = holder.start(declined)
    assert holder.record(thid).state == ABANDONED
    issuer.receive(wire)
    assert issuer.record(thid).state == ABANDONED


# -- what goes wrong ----------------------------------------------------------------


def test_an_unsolicited_credential_is_refused() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    credential = sd_jwt.issue(
        CLAIMS,
        vct=PID,
        issuer=issuer.did,
        signer_kid=issuer.assertion_kid,
        signer=issuer.secrets.get_key(issuer.assertion_kid),  # type: ignore[arg-type]
        disclosable=DISCLOSABLE,
        holder_jwk=holder.holder_jwk,
        now=NOW,
    )
    message = {
        "type": ISSUE_CREDENTIAL,
        "id": "x-1",
        "from": issuer.did,
        "to": [holder.did],
        "body": {},
        "attachments": [
            {"id": "c", "format": FORMAT, "data": {"base64": b64u_encode(credential.encode())}}
        ],
    }
    (wire,) = issuer.pack([message])
    outcome, _ = holder.receive(wire)
    assert codes(outcome) == ["e.m.msg.unknown-thread"]
    assert "issue-credential.credential-received" not in kinds(outcome)


def test_a_credential_before_the_request_is_unexpected() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    sent = offer(issuer, holder)
    (wire,) = issuer.start(sent)
    holder.receive(wire)
    thid = sent.outbound[0]["id"]
    early = {
        "type": ISSUE_CREDENTIAL,
        "id": "x-1",
        "thid": thid,
        "from": issuer.did,
        "to": [holder.did],
        "body": {},
        "attachments": [{"id": "c", "format": FORMAT, "data": {"base64": "AA"}}],
    }
    (wire,) = issuer.pack([early])
    outcome, _ = holder.receive(wire)
    assert codes(outcome) == ["e.m.msg.unexpected"]
    assert holder.record(thid).state == "offer-received"


def _malicious_issue(
    issuer: Party, holder: Party, make: Callable[[str, str], str], **offer_args: Any
) -> Outcome:
    """Run a flow to request-sent, then answer with make(thid, honest_credential)."""
    sent = offer(issuer, holder, **offer_args)
    (wire,) = issuer.start(sent)
    holder.receive(wire)
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(
        accept_offer(holder.record(thid), holder_jwk=holder.holder_jwk, now=NOW, ids=holder.ids)
    )
    outcome, _ = issuer.receive(request)
    honest = outcome.outbound[0]
    text = b64u_decode(honest["attachments"][0]["data"]["base64"]).decode()
    forged = make(thid, text)
    honest["attachments"][0]["data"] = {"base64": b64u_encode(forged.encode())}
    (wire,) = issuer.pack([honest])
    outcome, _ = holder.receive(wire)
    assert holder.record(thid).state == ABANDONED
    assert "issue-credential.credential-received" not in kinds(outcome)
    return outcome


def _reissue(issuer: Party, holder: Party, **changes: Any) -> str:
    args: dict[str, Any] = {
        "vct": PID,
        "issuer": issuer.did,
        "signer_kid": issuer.assertion_kid,
        "signer": issuer.secrets.get_key(issuer.assertion_kid),
        "disclosable": DISCLOSABLE,
        "holder_jwk": holder.holder_jwk,
        "now": NOW,
    }
    claims = changes.pop("claims", CLAIMS)
    args.update(changes)
    return sd_jwt.issue(claims, **args)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("signature", "e.p.req.credential-rejected"),
        ("claims", "e.p.req.credential-rejected"),
        ("extra-claim", "e.p.req.credential-rejected"),
        ("vct", "e.p.req.credential-rejected"),
        ("other-key", "e.p.req.credential-rejected"),
        ("not-disclosable", "e.p.req.credential-rejected"),
        ("other-issuer", "e.p.req.credential-rejected"),
        ("garbage", "e.p.req.credential-rejected"),
    ],
)
def test_a_credential_that_is_not_what_was_offered_is_rejected(name: str, code: str) -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    stranger = Party.create("s")

    def make(thid: str, honest: str) -> str:
        if name == "signature":
            jwt, rest = honest.split("~", 1)
            head, payload, sig = jwt.split(".")
            sig = ("A" if sig[0] != "A" else "B") + sig[1:]
            return f"{head}.{payload}.{sig}~{rest}"
        if name == "claims":
            return _reissue(issuer, holder, claims={**CLAIMS, "age_over_18": False})
        if name == "extra-claim":
            return _reissue(issuer, holder, claims={**CLAIMS, "shoe_size": 44})
        if name == "vct":
            return _reissue(issuer, holder, vct="https://example.org/other")
        if name == "other-key":
            return _reissue(issuer, holder, holder_jwk=stranger.holder_jwk)
        if name == "not-disclosable":
            return _reissue(issuer, holder, disclosable=["given_name"])
        if name == "other-issuer":
            return _reissue(stranger, holder)
        return "not.an~sd-jwt"

    outcome = _malicious_issue(issuer, holder, make)
    assert codes(outcome) == [code]


def test_an_offer_announces_its_expiry_and_the_credential_carries_it() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    sent = offer(issuer, holder, expires=NOW + 3600)
    assert sent.outbound[0]["attachments"][0]["data"]["json"]["exp"] == NOW + 3600
    (wire,) = issuer.start(sent)
    outcome, _ = holder.receive(wire)
    offered = event(outcome, "issue-credential.offer-received")
    assert offered["expires"] == NOW + 3600 and offered["revocable"] is False
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(
        accept_offer(holder.record(thid), holder_jwk=holder.holder_jwk, now=NOW, ids=holder.ids)
    )
    _, (issued,) = issuer.receive(request)
    outcome, _ = holder.receive(issued)
    text = event(outcome, "issue-credential.credential-received")["sd_jwt"]
    assert sd_jwt.verify(text, resolver=default_resolver(), now=NOW).expires == NOW + 3600


@pytest.mark.parametrize(
    ("offered", "signed"),
    [(NOW + 3600, NOW + 7200), (NOW + 3600, NOW + 60), (NOW + 3600, None), (None, NOW + 3600)],
)
def test_a_credential_whose_expiry_differs_from_the_offer_is_refused(
    offered: int | None, signed: int | None
) -> None:
    """The issuer signs (with its real key) another ``exp`` than it announced."""
    issuer, holder = Party.create("i"), Party.create("h")
    outcome = _malicious_issue(
        issuer,
        holder,
        lambda thid, honest: _reissue(issuer, holder, expires=signed),
        expires=offered,
    )
    assert codes(outcome) == ["e.p.req.credential-rejected"]
    assert "exp" in outcome.events[-1].data["reason"]


def status_uri(issuer: Party, credential_format: str = "sd-jwt") -> str:
    return f"{issuer.did}/status/{credential_format}/0"


def test_a_revocable_offer_names_its_status_entry_and_the_credential_carries_it() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    uri = status_uri(issuer)
    sent = offer(issuer, holder, status=(uri, 4242))
    details = sent.outbound[0]["attachments"][0]["data"]["json"]
    assert details["status"] == {"status_list": {"idx": 4242, "uri": uri}}
    (wire,) = issuer.start(sent)
    outcome, _ = holder.receive(wire)
    assert event(outcome, "issue-credential.offer-received")["revocable"] is True
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(
        accept_offer(holder.record(thid), holder_jwk=holder.holder_jwk, now=NOW, ids=holder.ids)
    )
    _, (issued,) = issuer.receive(request)
    outcome, _ = holder.receive(issued)
    received = event(outcome, "issue-credential.credential-received")
    verified = sd_jwt.verify(received["sd_jwt"], resolver=default_resolver(), now=NOW)
    assert verified.claims["status"] == {"status_list": {"idx": 4242, "uri": uri}}
    assert "status" not in sd_jwt.disclosable_claims(received["sd_jwt"])


@pytest.mark.parametrize("signed", ["other-index", "other-uri", "none", "garbage"])
def test_a_credential_whose_status_differs_from_the_offer_is_refused(signed: str) -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    uri = status_uri(issuer)
    status = {
        "other-index": {"status_list": {"idx": 4243, "uri": uri}},
        "other-uri": {"status_list": {"idx": 4242, "uri": uri + "1"}},
        "none": None,
        "garbage": {"status_list": {"idx": "x"}},
    }[signed]
    outcome = _malicious_issue(
        issuer,
        holder,
        lambda thid, honest: _reissue(issuer, holder, status=status),
        status=(uri, 4242),
    )
    assert codes(outcome) == ["e.p.req.credential-rejected"]
    assert "status" in outcome.events[-1].data["reason"]


def test_a_status_reference_that_was_not_offered_is_refused() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    status = {"status_list": {"idx": 1, "uri": status_uri(issuer)}}
    outcome = _malicious_issue(
        issuer, holder, lambda thid, honest: _reissue(issuer, holder, status=status)
    )
    assert codes(outcome) == ["e.p.req.credential-rejected"]


class Publisher:
    """An issuer's status lists as the daemon keeps them: one StatusList per URI,
    signed on demand with the issuer's real assertionMethod key (its ``source``)."""

    def __init__(self) -> None:
        self.lists: dict[str, StatusList] = {}
        self.party: Party | None = None
        self.signed_at = NOW
        self.signer: Party | None = None  # another party signs: a forged list
        #: A di list's purpose, where it is not the one its URI says (a mislabelled list).
        self.purposes: dict[str, str] = {}

    def source(self, uri: str) -> str | dict[str, Any] | None:
        statuses = self.lists.get(uri)
        if statuses is None or self.party is None:
            return None
        signer = self.signer or self.party
        key = signer.secrets.get_key(signer.assertion_kid)
        assert key is not None
        if "/status/di" in uri:
            return status_list.sign_list_credential(
                statuses,
                url=uri,
                issuer=signer.did,
                kid=signer.assertion_kid,
                key=key,
                now=self.signed_at,
                purpose=self.purposes.get(uri, "suspension" if "/di-suspension/" in uri else "revocation"),
            )
        return status_list.sign_token(
            statuses,
            uri=uri,
            issuer=signer.did,
            kid=signer.assertion_kid,
            key=key,
            now=self.signed_at,
        )


def publishing_issuer(name: str = "i") -> tuple[Party, Publisher]:
    publisher = Publisher()
    issuer = Party.create(name, publisher.source)
    publisher.party = issuer
    return issuer, publisher


def test_the_issuer_staples_its_current_status_list_and_the_holder_verifies_it() -> None:
    issuer, publisher = publishing_issuer()
    holder = Party.create("h")
    uri = status_uri(issuer)
    publisher.lists[uri] = StatusList()
    sent = offer(issuer, holder, status=(uri, 4242))
    (wire,) = issuer.start(sent)
    holder.receive(wire)
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(
        accept_offer(holder.record(thid), holder_jwk=holder.holder_jwk, now=NOW, ids=holder.ids)
    )
    outcome, (issued,) = issuer.receive(request)
    credential_attachment, staple = outcome.outbound[0]["attachments"]
    assert credential_attachment["format"] == FORMAT
    assert (staple["id"], staple["format"]) == ("status-list", "statuslist+jwt")
    outcome, _ = holder.receive(issued)
    received = event(outcome, "issue-credential.credential-received")
    assert received["status"] == {"uri": uri, "index": 4242}
    assert received["status_value"] == status_list.VALID
    token = received["status_list"]
    assert token == b64u_decode(staple["data"]["base64"]).decode()
    verified = status_list.verify_token(token, resolver=default_resolver(), now=NOW, uri=uri)
    assert verified.issuer == issuer.did


def test_a_credential_revoked_before_it_arrives_says_so() -> None:
    issuer, publisher = publishing_issuer()
    holder = Party.create("h")
    uri = status_uri(issuer)
    publisher.lists[uri] = StatusList()
    publisher.lists[uri].set(7, status_list.REVOKED)
    _, received = _issue_with(issuer, holder, status=(uri, 7))
    assert received["status_value"] == status_list.REVOKED


def _issue_with(issuer: Party, holder: Party, **offer_args: Any) -> tuple[Outcome, dict[str, Any]]:
    sent = offer(issuer, holder, **offer_args)
    (wire,) = issuer.start(sent)
    holder.receive(wire)
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(
        accept_offer(holder.record(thid), holder_jwk=holder.holder_jwk, now=NOW, ids=holder.ids)
    )
    _, (issued,) = issuer.receive(request)
    outcome, _ = holder.receive(issued)
    found = [e.data for e in outcome.events if e.kind == "issue-credential.credential-received"]
    return outcome, found[0] if found else {}


def test_without_a_list_to_staple_the_credential_still_arrives() -> None:
    issuer, _ = publishing_issuer()  # publishes nothing: the source answers None
    holder = Party.create("h")
    _, received = _issue_with(issuer, holder, status=(status_uri(issuer), 3))
    assert received["status"] == {"uri": status_uri(issuer), "index": 3}
    assert received["status_list"] is None and received["status_value"] is None
    _, plain = _issue_with(issuer, holder)
    assert (plain["status"], plain["status_list"], plain["status_value"]) == (None, None, None)


@pytest.mark.parametrize("attack", ["other-signer", "tampered", "garbage", "huge"])
def test_a_bad_stapled_list_makes_the_holder_refuse_the_credential(attack: str) -> None:
    issuer, publisher = publishing_issuer()
    holder = Party.create("h")
    uri = status_uri(issuer)
    publisher.lists[uri] = StatusList()
    if attack == "other-signer":
        publisher.signer = Party.create("s")
    sent = offer(issuer, holder, status=(uri, 1))
    (wire,) = issuer.start(sent)
    holder.receive(wire)
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(
        accept_offer(holder.record(thid), holder_jwk=holder.holder_jwk, now=NOW, ids=holder.ids)
    )
    outcome, _ = issuer.receive(request)
    message = outcome.outbound[0]
    staple = message["attachments"][1]
    if attack == "tampered":
        token = b64u_decode(staple["data"]["base64"]).decode()
        head, payload, signature = token.split(".")
        signature = ("A" if signature[0] != "A" else "B") + signature[1:]
        staple["data"]["base64"] = b64u_encode(f"{head}.{payload}.{signature}".encode())
    if attack == "garbage":
        staple["data"] = {"base64": b64u_encode(b"\xff\xfe")}
    if attack == "huge":
        staple["data"] = {"base64": "A" * (status_list.MAX_TOKEN_CHARS * 2)}
    (wire,) = issuer.pack([message])
    outcome, _ = holder.receive(wire)
    assert codes(outcome) == ["e.p.req.credential-rejected"]
    assert "stapled status list" in outcome.events[-1].data["reason"]
    assert holder.record(thid).state == ABANDONED


def test_an_issuer_without_its_key_reports_a_problem() -> None:
    issuer, holder = Party.create("i"), Party.create("h")
    sent = offer(issuer, holder, issuer_kid=f"{issuer.did}#key-9")
    (wire,) = issuer.start(sent)
    holder.receive(wire)
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(
        accept_offer(holder.record(thid), holder_jwk=holder.holder_jwk, now=NOW, ids=holder.ids)
    )
    outcome, (report,) = issuer.receive(request)
    assert codes(outcome) == ["e.p.me.res.issuer-key"]
    holder.receive(report)
    assert holder.record(thid).state == ABANDONED


def test_messages_need_an_authenticated_encrypted_sender() -> None:
    dispatcher = Party.create().dispatcher
    message = offer_credential(
        ALICE, BOB, NOW, vct=PID, claims=CLAIMS, disclosable=[], issuer_kid=f"{ALICE}#k"
    ).outbound[0]
    assert codes(dispatcher.dispatch(message, ANON, Store(), NOW)) == [
        "e.p.trust.authentication-required"
    ]
    assert dispatcher.dispatch(message, AUTH, Store(), NOW).error is None


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m["body"].pop("credential_preview"),
        lambda m: m["body"].update(credential_preview={"body": {"attributes": "x"}}),
        lambda m: m["body"]["credential_preview"]["body"]["attributes"].append({"name": 1}),
        lambda m: m["body"]["credential_preview"]["body"]["attributes"].append(
            {"name": "given_name", "value": "dup"}
        ),
        lambda m: m["body"]["credential_preview"]["body"]["attributes"].append(
            {"name": "iss", "value": "did:example:x"}
        ),
        lambda m: m["body"].update(comment=7),
        lambda m: m.pop("attachments"),
        lambda m: m["attachments"][0]["data"]["json"].update(vct=""),
        lambda m: m["attachments"][0]["data"]["json"].update(disclosable=["nope"]),
        lambda m: m["attachments"][0]["data"]["json"].update(exp="tomorrow"),
        lambda m: m["attachments"][0]["data"]["json"].update(exp=True),
        lambda m: m["attachments"][0]["data"]["json"].update(exp=10**20),
        lambda m: m["attachments"][0]["data"]["json"].update(status={"status_list": {"idx": 1}}),
        lambda m: m["attachments"][0]["data"]["json"].update(
            status={"status_list": {"idx": -1, "uri": "did:example:i/status/sd-jwt/0"}}
        ),
        lambda m: m["attachments"][0]["data"]["json"].update(status="revocable"),
        lambda m: m["body"]["credential_preview"]["body"].update(
            attributes=[{"name": f"c{i}", "value": i} for i in range(MAX_CLAIMS + 1)]
        ),
    ],
)
def test_malformed_offers_are_typed_errors(change: Callable[[dict[str, Any]], None]) -> None:
    dispatcher = Party.create().dispatcher
    message = offer_credential(
        ALICE, BOB, NOW, vct=PID, claims=CLAIMS, disclosable=["given_name"], issuer_kid=f"{ALICE}#k"
    ).outbound[0]
    change(message)
    assert codes(dispatcher.dispatch(message, AUTH, Store(), NOW)) == ["e.p.msg.invalid-body"]


def test_local_commands_check_their_arguments_and_state() -> None:
    with pytest.raises(InvalidBodyError):
        offer_credential(
            ALICE, BOB, NOW, vct=PID, claims={"vct": 1}, disclosable=[], issuer_kid=f"{ALICE}#k"
        )
    with pytest.raises(InvalidBodyError):
        offer_credential(
            ALICE, BOB, NOW, vct=PID, claims=CLAIMS, disclosable=["x"], issuer_kid=f"{ALICE}#k"
        )
    with pytest.raises(DIDCommError):
        offer_credential(
            ALICE,
            BOB,
            NOW,
            vct=PID,
            claims=CLAIMS,
            disclosable=[],
            issuer_kid="did:example:other#k",
        )
    for bad_status in [("", 1), ("did:example:a/status/sd-jwt/0", -1), ("u", True), ("u",)]:
        with pytest.raises(DIDCommError):
            offer_credential(
                ALICE,
                BOB,
                NOW,
                vct=PID,
                claims=CLAIMS,
                disclosable=[],
                issuer_kid=f"{ALICE}#k",
                status=bad_status,  # type: ignore[arg-type]
            )
    record = ProtocolRecord(thid="t", protocol=PIURI, role="holder", state="request-sent")
    with pytest.raises(UnexpectedMessageError):
        accept_offer(record, holder_jwk=PrivateKey.generate("Ed25519").public.to_jwk(), now=NOW)
    offered = ProtocolRecord(
        thid="t",
        protocol=PIURI,
        role="holder",
        state="offer-received",
        data={"offer": {"vct": PID}},
    )
    with pytest.raises(InvalidBodyError):  # a private JWK never leaves the wallet
        accept_offer(offered, holder_jwk=PrivateKey.generate("Ed25519").to_jwk(), now=NOW)
    with pytest.raises(UnexpectedMessageError):
        decline(record, reason="x", now=NOW)


# -- the table, exhaustively and at random ------------------------------------------------

SAMPLE_BODIES: dict[str, dict[str, Any]] = {
    "propose-credential": {"body": {}},
    "offer-credential": offer_credential(
        ALICE, BOB, NOW, vct=PID, claims=CLAIMS, disclosable=[], issuer_kid=f"{ALICE}#k"
    ).outbound[0],
    "request-credential": {
        "body": {},
        "attachments": [{"id": "a", "format": FORMAT, "data": {"json": {"vct": PID}}}],
    },
    "issue-credential": {
        "body": {},
        "attachments": [
            {"id": "a", "format": FORMAT, "data": {"base64": "AA"}},
            {"id": "status-list", "format": "statuslist+jwt", "data": {"base64": "AA"}},
        ],
    },
}


def test_every_message_outside_the_table_is_unexpected() -> None:
    dispatcher = Party.create().dispatcher
    outcomes = off_table_outcomes(dispatcher, dispatcher.machine_for(PIURI), SAMPLE_BODIES)
    for role, state, name, outcome in outcomes:
        assert codes(outcome) == ["e.m.msg.unexpected"], (role, state, name)
        assert outcome.records[0].state == state


NAMES = list(SAMPLE_BODIES)
step = st.tuples(
    st.sampled_from(NAMES),
    st.sampled_from(["t-1", "t-2", None]),
    st.sampled_from([ALICE, "did:example:mallory"]),
    st.booleans(),  # keep the sample's attachments/body, or a random body
    st.dictionaries(
        st.sampled_from(["comment", "goal_code", "credential_preview"]),
        st.none() | st.text(max_size=3) | st.integers(),
        max_size=2,
    ),
)


@settings(max_examples=150)
@given(st.lists(step, max_size=10), st.sampled_from(["issuer", "holder", None]))
def test_random_sequences_only_give_typed_errors(steps: list[Any], role: str | None) -> None:
    party = Party.create()
    store = Store()
    if role is not None:
        store.put(
            ProtocolRecord(
                thid="t-1",
                protocol=PIURI,
                role=role,
                state="offer-sent" if role == "issuer" else "request-sent",
                their_did=ALICE,
                data={
                    "offer": {
                        "vct": PID,
                        "claims": CLAIMS,
                        "disclosable": [],
                        "issuer": ALICE,
                        "issuer_kid": f"{BOB}#key-9",
                        "status": [f"{ALICE}/status/sd-jwt/0", 9],
                    },
                    "holder_jwk": PrivateKey.generate("Ed25519").public.to_jwk(),
                },
            )
        )
    for number, (name, thid, sender, keep, body) in enumerate(steps):
        message: dict[str, Any] = {**SAMPLE_BODIES[name], "type": f"{PIURI}/{name}"}
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
                assert record.state in states_of(IssueCredential.TRANSITIONS, record.role)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
# Where each message is allowed, so the fuzzed content reaches the machine's parsing.
ALLOWED_AT = {
    "propose-credential": ("issuer", "start"),
    "offer-credential": ("holder", "start"),
    "request-credential": ("issuer", "offer-sent"),
    "issue-credential": ("holder", "request-sent"),
}


@settings(max_examples=200)
@given(
    st.sampled_from(NAMES),
    json_values,
    json_values,
    st.sampled_from(["json", "base64", "links"]),
)
def test_fuzzed_bodies_and_attachments_only_give_typed_errors(
    name: str, attached: Any, preview_value: Any, kind: str
) -> None:
    party = Party.create()
    role, state = ALLOWED_AT[name]
    store = Store()
    if state != "start":
        store.put(
            ProtocolRecord(
                thid="t-1",
                protocol=PIURI,
                role=role,
                state=state,
                their_did=ALICE,
                our_did=BOB,
                data={
                    "offer": {
                        "vct": PID,
                        "claims": CLAIMS,
                        "disclosable": [],
                        "issuer": ALICE,
                        "issuer_kid": f"{BOB}#key-9",
                    },
                    "holder_jwk": PrivateKey.generate("Ed25519").public.to_jwk(),
                },
            )
        )
    data: Any = {kind: attached if kind != "base64" else str(attached)}
    message = {
        "type": f"{PIURI}/{name}",
        "id": "f-1",
        "thid": "t-1",
        "from": ALICE,
        "to": [BOB],
        "body": {"credential_preview": {"body": {"attributes": preview_value}}},
        "attachments": [{"id": "a", "format": FORMAT, "data": data}],
    }
    outcome = party.dispatcher.dispatch(message, AUTH, store, NOW)
    assert outcome.error is None or isinstance(outcome.error, DIDCommError)


@settings(max_examples=80)
@given(
    st.sampled_from(["statuslist+jwt", "bitstring-status-list"]),
    st.sampled_from(["json", "base64"]),  # what the envelope lets through
    json_values,
    st.integers(0, 3),
)
def test_hostile_stapled_lists_give_typed_errors_only(
    list_format: str, kind: str, value: Any, copies: int
) -> None:
    """A real issuer's real credential, its stapled list replaced by anything (and
    repeated): the holder answers with a typed error, or takes the credential with
    a list that verified."""
    issuer, publisher = publishing_issuer()
    holder = Party.create("h")
    uri = status_uri(issuer)
    publisher.lists[uri] = StatusList()
    sent = offer(issuer, holder, status=(uri, 1))
    (wire,) = issuer.start(sent)
    holder.receive(wire)
    thid = sent.outbound[0]["id"]
    (request,) = holder.start(
        accept_offer(holder.record(thid), holder_jwk=holder.holder_jwk, now=NOW, ids=holder.ids)
    )
    outcome, _ = issuer.receive(request)
    message = outcome.outbound[0]
    honest = message["attachments"][1]
    # Valid base64 (the envelope checks it), whatever it decodes to.
    data = value if kind == "json" else b64u_encode(str(value).encode())
    hostile = {"id": "status-list", "format": list_format, "data": {kind: data}}
    message["attachments"][1:] = [honest, hostile][:1] if copies == 0 else [hostile] * copies
    (wire,) = issuer.pack([message])
    outcome, _ = holder.receive(wire)
    assert outcome.error is None or isinstance(outcome.error, DIDCommError)
    for data in [e.data for e in outcome.events if e.kind.endswith("credential-received")]:
        if data["status_list"] is not None:
            status_list.verify_token(data["status_list"], resolver=default_resolver(), now=NOW)


@settings(max_examples=150)
@given(
    st.sampled_from(["dc+sd-jwt", "di_vc"]),
    st.sampled_from(["exp", "status", "validUntil", "credentialStatus"]),
    json_values | st.integers(),
)
def test_hostile_expiry_and_status_in_offers_give_typed_errors_only(
    credential_format: str, member: str, value: Any
) -> None:
    """An offer whose announced expiry or status entry is any JSON: refused with a
    typed error, or read into a record whose values are the checked kinds."""
    party = Party.create()
    sent = offer_credential(
        ALICE,
        BOB,
        NOW,
        vct=PID,
        claims=CLAIMS,
        disclosable=[],
        issuer_kid=f"{ALICE}#k",
        credential_format=credential_format,
        expires=NOW + 60,
        status=(f"{ALICE}/status/x/0", 5),
    )
    message = sent.outbound[0]
    message["attachments"][0]["data"]["json"][member] = value
    store = Store()
    outcome = party.dispatcher.dispatch(message, AUTH, store, NOW)
    assert outcome.error is None or isinstance(outcome.error, DIDCommError)
    for record in outcome.records:
        offered = record.data.get("offer")
        if offered is not None:
            assert offered["expires"] is None or type(offered["expires"]) is int
            status = offered["status"]
            assert status is None or (type(status[0]) is str and type(status[1]) is int)

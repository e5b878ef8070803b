"""The dispatcher as a specification: routing by type URI with semver, threads,
required protection, expiry, problem-reports for everything unknown, the circuit
breaker, ACKs, and records that survive a round trip through JSON and CBOR.

The helpers at the top (``AUTH``/``ANON``/``PLAIN`` metadata, ``Store``,
``Peer``) are shared by the other protocol tests.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.did.did_peer import create_did_peer_2
from protocols.did.resolver import default_resolver
from protocols.dispatch import standard_dispatcher
from protocols.envelope import Metadata, pack_encrypted, unpack
from protocols.errors import DIDCommError
from protocols.framework import (
    ABANDONED,
    EMPTY_MESSAGE,
    Dispatcher,
    Outcome,
    Protection,
    ProtocolMachine,
    ProtocolRecord,
    Transition,
    check_protection,
    fire,
    states_of,
)
from protocols.keys import PrivateKey
from protocols.message_type import parse_message_type
from protocols.protocol_errors import RecordError, UnexpectedMessageError
from protocols.report_problem import MAX_ERRORS_PER_THREAD, PROBLEM_REPORT
from protocols.secrets import InMemorySecrets
from protocols.trust_ping import PING, PING_RESPONSE, TRANSITIONS, start_ping

ALICE = "did:example:alice"
BOB = "did:example:bob"
NOW = 1_700_000_000

AUTH = Metadata(
    encrypted=True,
    authenticated=True,
    encrypted_from=f"{ALICE}#key-1",
    encrypted_to=[f"{BOB}#key-1"],
    enc_alg_auth="A256CBC-HS512",
)
ANON = Metadata(encrypted=True, anonymous_sender=True, encrypted_to=[f"{BOB}#key-1"])
PLAIN = Metadata()


def counter_ids(prefix: str = "m") -> Callable[[], str]:
    """Deterministic message ids."""
    numbers = itertools.count(1)
    return lambda: f"{prefix}-{next(numbers)}"


@dataclass
class Store:
    """Records by thid, as the daemon keeps them (stored as CBOR, like the real store)."""

    blobs: dict[str, bytes] = field(default_factory=dict)

    def get(self, thid: str, /) -> ProtocolRecord | None:
        blob = self.blobs.get(thid)
        return None if blob is None else ProtocolRecord.from_dict(cbor2.loads(blob))

    def put(self, record: ProtocolRecord) -> None:
        self.blobs[record.thid] = cbor2.dumps(record.to_dict())

    def apply(self, result: Outcome | Transition) -> None:
        records = result.records if isinstance(result, Outcome) else [result.record]
        for record in records:
            assert record is not None
            self.put(record)


def ping(msg_id: str = "p-1", **headers: Any) -> dict[str, Any]:
    message = {"type": PING, "id": msg_id, "from": ALICE, "to": [BOB], "body": {}}
    message.update(headers)
    return message


def codes(outcome: Outcome) -> list[str]:
    return [m["body"]["code"] for m in outcome.outbound if m["type"] == PROBLEM_REPORT]


def table_outcomes(
    dispatcher: Dispatcher,
    machine: type[ProtocolMachine] | ProtocolMachine,
    samples: dict[str, dict[str, Any]],
) -> Iterator[tuple[str, str, str, str | None, Outcome]]:
    """(role, state, name, the state the table moves to or None, outcome) for every
    message of ``machine`` in every role and state, sent from ALICE on a stored
    thread (``samples``: a body and attachments per message name)."""
    piuri = machine.PROTOCOL
    for role in machine.ROLES:
        for state in sorted(states_of(machine.TRANSITIONS, role)):
            for name in machine.MESSAGES:
                store = Store()
                store.put(
                    ProtocolRecord(
                        thid="t-1", protocol=piuri, role=role, state=state, their_did=ALICE
                    )
                )
                message = {
                    **samples[name],
                    "type": f"{piuri}/{name}",
                    "id": "x-1",
                    "thid": "t-1",
                    "from": ALICE,
                    "to": [BOB],
                }
                allowed = machine.TRANSITIONS.get(role, {}).get(state, {}).get(name)
                yield role, state, name, allowed, dispatcher.dispatch(message, AUTH, store, NOW)


def off_table_outcomes(
    dispatcher: Dispatcher,
    machine: type[ProtocolMachine] | ProtocolMachine,
    samples: dict[str, dict[str, Any]],
) -> Iterator[tuple[str, str, str, Outcome]]:
    """(role, state, name, outcome) for every message ``machine``'s table has no
    transition for (see :func:`table_outcomes`)."""
    for role, state, name, allowed, outcome in table_outcomes(dispatcher, machine, samples):
        if allowed is None:
            yield role, state, name, outcome


@pytest.fixture
def dispatcher() -> Dispatcher:
    return standard_dispatcher(max_receive_bytes=65536, ids=counter_ids())


# -- tables -------------------------------------------------------------------


def test_fire_follows_the_table_and_raises_one_typed_error() -> None:
    assert fire(TRANSITIONS, "receiver", "start", "ping") == "done"
    with pytest.raises(UnexpectedMessageError) as info:
        fire(TRANSITIONS, "receiver", "done", "ping")
    assert info.value.problem_code == "e.m.msg.unexpected"
    with pytest.raises(UnexpectedMessageError):
        fire(TRANSITIONS, "nobody", "start", "ping")
    assert states_of(TRANSITIONS, "sender") == {"start", "awaiting-response", "done", ABANDONED}


# -- routing and semver ----------------------------------------------------------


@pytest.mark.parametrize(
    "type_uri",
    [
        "https://didcomm.org/trust-ping/2.0/ping",
        "https://didcomm.org/trust-ping/2.3/ping",  # newer minor: ours
        "https://didcomm.org/trust-ping/2.0/PING",  # case-insensitive names
        "https://didcomm.org/trust_ping/2.0/ping",  # punctuation-insensitive
    ],
)
def test_same_major_any_minor_is_accepted(dispatcher: Dispatcher, type_uri: str) -> None:
    outcome = dispatcher.dispatch(ping(type=type_uri), AUTH, Store(), NOW)
    assert outcome.error is None
    assert [m["type"] for m in outcome.outbound] == [PING_RESPONSE]


@pytest.mark.parametrize(
    ("type_uri", "code"),
    [
        ("https://didcomm.org/trust-ping/3.0/ping", "e.p.msg.unsupported.version"),
        ("https://didcomm.org/trust-ping/1.0/ping", "e.p.msg.unsupported.version"),
        ("https://didcomm.org/trust-ping/2.0/pong", "e.p.msg.unsupported.message-type"),
        ("https://didcomm.org/tictactoe/1.0/move", "e.p.msg.unsupported"),
        ("https://example.org/trust-ping/2.0/ping", "e.p.msg.unsupported"),
        ("not a type uri", "e.p.msg.unsupported"),
        ("https://didcomm.org/report-problem/2.0/nope", "e.p.msg.unsupported.message-type"),
        ("https://didcomm.org/report-problem/1.0/problem-report", "e.p.msg.unsupported.version"),
    ],
)
def test_unknown_protocols_and_messages_get_a_problem_report(
    dispatcher: Dispatcher, type_uri: str, code: str
) -> None:
    message = ping(type=type_uri, thid="t-9")
    outcome = dispatcher.dispatch(message, AUTH, Store(), NOW)
    report = outcome.problem
    assert report is not None and report["body"]["code"] == code
    assert report["pthid"] == "t-9" and report["ack"] == ["p-1"]
    assert report["to"] == [ALICE] and report["from"] == BOB
    if "report-problem" in type_uri:
        assert outcome.outbound == []  # never answer a problem-report with one
    else:
        assert outcome.outbound == [report]


def test_message_type_parsing() -> None:
    mtype = parse_message_type("https://example.com/protocols?which=lets_do_lunch/1.0/proposal")
    assert mtype.protocol.doc_uri == "https://example.com/protocols?which="
    assert (mtype.protocol.name, mtype.protocol.major, mtype.protocol.minor) == (
        "lets_do_lunch",
        1,
        0,
    )
    assert mtype.name == "proposal"
    assert mtype.protocol.piuri == "https://example.com/protocols?which=lets_do_lunch/1.0"


@given(st.text(max_size=80))
@settings(max_examples=200)
def test_type_parsing_never_crashes(text: str) -> None:
    try:
        parse_message_type(text)
    except DIDCommError as error:
        assert error.problem_code.startswith("e.p.msg.unsupported")


# -- protection and expiry -------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        (ANON, "e.p.trust.authentication-required"),
        (PLAIN, "e.p.trust.authentication-required"),
    ],
)
def test_protocols_refuse_messages_without_required_protection(
    dispatcher: Dispatcher, metadata: Metadata, code: str
) -> None:
    outcome = dispatcher.dispatch(ping(), metadata, Store(), NOW)
    assert codes(outcome) == [code]
    assert not outcome.records


def test_protection_levels() -> None:
    signed = Metadata(authenticated=True, non_repudiation=True, sign_from=f"{ALICE}#key-2")
    check_protection(Protection.AUTHENTICATED, signed, {"from": ALICE})
    check_protection(Protection.ENCRYPTED, ANON, {})
    check_protection(Protection.NONE, PLAIN, {})
    for required, metadata in [
        (Protection.ENCRYPTED, signed),
        (Protection.AUTHENTICATED_ENCRYPTED, signed),
        (Protection.AUTHENTICATED_ENCRYPTED, ANON),
        (Protection.AUTHENTICATED, AUTH),  # authenticated, but no 'from' header
    ]:
        with pytest.raises(DIDCommError) as info:
            check_protection(required, metadata, {})
        assert info.value.problem_code.startswith("e.p.trust")


def test_expired_messages_are_refused(dispatcher: Dispatcher) -> None:
    outcome = dispatcher.dispatch(ping(expires_time=NOW), AUTH, Store(), NOW)
    assert codes(outcome) == ["e.p.req.time"]
    fresh = dispatcher.dispatch(ping(expires_time=NOW + 1), AUTH, Store(), NOW)
    assert fresh.error is None


def test_malformed_plaintext_gets_a_problem_report(dispatcher: Dispatcher) -> None:
    outcome = dispatcher.dispatch({"type": PING, "from": ALICE}, AUTH, Store(), NOW)
    assert outcome.error is not None
    assert codes(outcome) == ["e.p.msg.invalid"]
    assert outcome.problem is not None and outcome.problem["pthid"] == "unknown"
    nothing = dispatcher.dispatch(["not", "an", "object"], AUTH, Store(), NOW)  # type: ignore[arg-type]
    assert nothing.outbound == [] and nothing.problem is not None


# -- threads -------------------------------------------------------------------------


def test_unknown_thread_is_refused(dispatcher: Dispatcher) -> None:
    response = {"type": PING_RESPONSE, "id": "r-1", "thid": "nope", "from": ALICE, "body": {}}
    outcome = dispatcher.dispatch(response, AUTH, Store(), NOW)
    assert codes(outcome) == ["e.m.msg.unknown-thread"]


def test_another_peer_cannot_continue_our_thread(dispatcher: Dispatcher) -> None:
    store = Store()
    sent = start_ping(BOB, ALICE, NOW, ids=counter_ids("ours"))
    store.apply(sent)
    thid = sent.outbound[0]["id"]
    mallory = {"type": PING_RESPONSE, "id": "r-1", "thid": thid, "from": "did:example:mallory"}
    outcome = dispatcher.dispatch(mallory, AUTH, store, NOW)
    assert codes(outcome) == ["e.m.msg.unknown-thread"]
    assert outcome.records == []  # the real thread is untouched
    record = store.get(thid)
    assert record is not None and record.error_count == 0


def test_duplicates_are_reported_not_reprocessed(dispatcher: Dispatcher) -> None:
    store = Store()
    store.apply(dispatcher.dispatch(ping(), AUTH, store, NOW))
    again = dispatcher.dispatch(ping(), AUTH, store, NOW)
    assert again.outbound == [] and [e.kind for e in again.events] == ["message.duplicate"]


def test_a_thread_belongs_to_one_protocol(dispatcher: Dispatcher) -> None:
    store = Store()
    store.apply(dispatcher.dispatch(ping(), AUTH, store, NOW))
    basic = {
        "type": "https://didcomm.org/basicmessage/2.0/message",
        "id": "b-1",
        "thid": "p-1",
        "from": ALICE,
        "body": {"content": "hi"},
    }
    assert codes(dispatcher.dispatch(basic, AUTH, store, NOW)) == ["e.m.msg.unexpected"]


# -- problem-reports and the circuit breaker ------------------------------------------


def problem(code: str, pthid: str, msg_id: str = "pr-1", **body: Any) -> dict[str, Any]:
    return {
        "type": PROBLEM_REPORT,
        "id": msg_id,
        "pthid": pthid,
        "from": ALICE,
        "body": {"code": code, **body},
    }


def test_received_error_report_abandons_the_parent_thread(dispatcher: Dispatcher) -> None:
    store = Store()
    sent = start_ping(BOB, ALICE, NOW, ids=counter_ids("ours"))
    store.apply(sent)
    thid = sent.outbound[0]["id"]
    report = problem(
        "e.p.xfer.cant-use-endpoint", thid, comment="Unable to use {1} for {2}.", args=["x"]
    )
    outcome = dispatcher.dispatch(report, AUTH, store, NOW)
    assert outcome.outbound == []  # a report is never answered with a report
    (event,) = outcome.events
    assert event.kind == "problem-report.received"
    assert event.data["text"] == "Unable to use x for ?."
    (record,) = outcome.records
    assert record.state == ABANDONED and record.error_count == 1
    assert record.last_problem is not None and record.last_problem["code"].startswith("e.p.xfer")


def test_warnings_and_message_scoped_errors_keep_the_thread(dispatcher: Dispatcher) -> None:
    store = Store()
    sent = start_ping(BOB, ALICE, NOW, ids=counter_ids("ours"))
    store.apply(sent)
    thid = sent.outbound[0]["id"]
    for i, code in enumerate(["w.p.slow", "e.m.msg.odd"]):
        outcome = dispatcher.dispatch(problem(code, thid, f"pr-{i}"), AUTH, store, NOW)
        store.apply(outcome)
    record = store.get(thid)
    assert record is not None and record.state == "awaiting-response" and record.error_count == 2


def test_bad_or_unauthenticated_reports_are_noted_never_answered(dispatcher: Dispatcher) -> None:
    for message, metadata in [
        (problem("nonsense", "t"), AUTH),
        (problem("e.p.ok", "t"), ANON),
        ({**problem("e.p.ok", "t"), "pthid": None}, AUTH),
    ]:
        outcome = dispatcher.dispatch(message, metadata, Store(), NOW)
        assert outcome.outbound == [] and outcome.records == []
    unknown_parent = dispatcher.dispatch(problem("e.p.ok", "nowhere"), AUTH, Store(), NOW)
    assert unknown_parent.outbound == [] and unknown_parent.records == []
    assert [e.kind for e in unknown_parent.events] == ["problem-report.received"]


def test_circuit_breaker_on_received_reports(dispatcher: Dispatcher) -> None:
    store = Store()
    sent = start_ping(BOB, ALICE, NOW, ids=counter_ids("ours"))
    store.apply(sent)
    thid = sent.outbound[0]["id"]
    for i in range(MAX_ERRORS_PER_THREAD):
        outcome = dispatcher.dispatch(problem("w.p.hmm", thid, f"pr-{i}"), AUTH, store, NOW)
        assert outcome.outbound == []
        store.apply(outcome)
    tripped = dispatcher.dispatch(problem("w.p.hmm", thid, "pr-last"), AUTH, store, NOW)
    assert codes(tripped) == ["e.p.req.max-errors-exceeded"]
    store.apply(tripped)
    record = store.get(thid)
    assert record is not None and record.silenced and record.state == ABANDONED
    # From now on the thread is ignored: no replies at all.
    after = dispatcher.dispatch(problem("w.p.hmm", thid, "pr-more"), AUTH, store, NOW)
    assert after.outbound == [] and after.records == []
    late = {"type": PING_RESPONSE, "id": "r-1", "thid": thid, "from": ALICE}
    assert dispatcher.dispatch(late, AUTH, store, NOW).outbound == []


def test_circuit_breaker_on_errors_we_emit(dispatcher: Dispatcher) -> None:
    store = Store()
    store.apply(dispatcher.dispatch(ping(), AUTH, store, NOW))  # receiver thread p-1, done
    seen: list[list[str]] = []
    for i in range(MAX_ERRORS_PER_THREAD + 2):
        again = ping(f"p-again-{i}", thid="p-1")
        outcome = dispatcher.dispatch(again, AUTH, store, NOW)
        seen.append(codes(outcome))
        store.apply(outcome)
    assert seen[:MAX_ERRORS_PER_THREAD] == [["e.m.msg.unexpected"]] * MAX_ERRORS_PER_THREAD
    assert seen[MAX_ERRORS_PER_THREAD] == ["e.p.req.max-errors-exceeded"]
    assert seen[MAX_ERRORS_PER_THREAD + 1] == []


# -- ACKs ------------------------------------------------------------------------------


def test_please_ack_rides_on_the_natural_reply(dispatcher: Dispatcher) -> None:
    outcome = dispatcher.dispatch(ping(please_ack=[""]), AUTH, Store(), NOW)
    (reply,) = outcome.outbound
    assert reply["type"] == PING_RESPONSE and reply["ack"] == ["p-1"]


def test_please_ack_without_a_reply_sends_an_empty_message(dispatcher: Dispatcher) -> None:
    message = ping(please_ack=["p-1", "never-seen"], body={"response_requested": False})
    (reply,) = dispatcher.dispatch(message, AUTH, Store(), NOW).outbound
    assert reply["type"] == EMPTY_MESSAGE and reply["ack"] == ["p-1"] and reply["thid"] == "p-1"
    assert "please_ack" not in reply  # never request an ACK in a pure ACK


def test_pure_acks_are_never_answered(dispatcher: Dispatcher) -> None:
    empty = {"type": EMPTY_MESSAGE, "id": "e-1", "thid": "t", "ack": ["x"], "please_ack": [""]}
    outcome = dispatcher.dispatch(empty, AUTH, Store(), NOW)
    assert outcome.outbound == [] and [e.kind for e in outcome.events] == ["ack.received"]


# -- records ----------------------------------------------------------------------------


def test_records_round_trip_through_json_and_cbor() -> None:
    sent = start_ping(BOB, ALICE, NOW, ids=counter_ids())
    record = sent.record
    assert record is not None
    for encode, decode in [(json.dumps, json.loads), (cbor2.dumps, cbor2.loads)]:
        assert ProtocolRecord.from_dict(decode(encode(record.to_dict()))) == record


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        {},
        {"thid": "t", "protocol": "p", "role": "r"},
        {"thid": "t", "protocol": "p", "role": "r", "state": "s", "error_count": "1"},
        {"thid": "t", "protocol": "p", "role": "r", "state": "s", "seen_ids": [1]},
        {"thid": "t", "protocol": "p", "role": "r", "state": "s", "data": []},
        {"thid": "t", "protocol": "p", "role": "r", "state": "s", "silenced": 1},
        {"thid": "t", "protocol": "p", "role": "r", "state": "s", "our_did": 5},
    ],
)
def test_damaged_records_raise_record_error(raw: Any) -> None:
    with pytest.raises(RecordError):
        ProtocolRecord.from_dict(raw)


# -- random message sequences ------------------------------------------------------------

TYPES = [
    PING,
    PING_RESPONSE,
    PROBLEM_REPORT,
    EMPTY_MESSAGE,
    "https://didcomm.org/basicmessage/2.0/message",
    "https://didcomm.org/discover-features/2.0/queries",
    "https://didcomm.org/discover-features/2.0/disclose",
    "https://didcomm.org/out-of-band/2.0/invitation",
    "https://didcomm.org/trust-ping/3.0/ping",
    "https://didcomm.org/unknown/1.0/thing",
    "garbage",
]
ids_strategy = st.sampled_from(["a", "b", "c", "d"])
bodies = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(
            ["response_requested", "content", "queries", "disclosures", "code", "lang", "goal"]
        ),
        st.one_of(st.booleans(), st.text(max_size=5), st.integers(), st.lists(st.text(max_size=3))),
        max_size=3,
    ),
)
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES), "id": ids_strategy},
    optional={
        "thid": ids_strategy,
        "pthid": ids_strategy,
        "from": st.sampled_from([ALICE, "did:example:mallory"]),
        "body": bodies,
        "please_ack": st.lists(st.sampled_from(["", "a", "b"]), max_size=2),
        "expires_time": st.integers(NOW - 2, NOW + 2),
        "created_time": st.one_of(st.integers(), st.text(max_size=2)),
    },
)


def _all_states() -> Iterator[tuple[str, str, frozenset[str]]]:
    dispatcher = standard_dispatcher(max_receive_bytes=1)
    for machine in dispatcher.machines.values():
        for role in machine.ROLES:
            yield machine.PROTOCOL, role, states_of(machine.TRANSITIONS, role)


@given(st.lists(st.tuples(messages, st.sampled_from([AUTH, ANON, PLAIN])), max_size=12))
@settings(max_examples=150)
def test_random_sequences_never_crash_or_reach_undefined_states(
    steps: list[tuple[dict[str, Any], Metadata]],
) -> None:
    dispatcher = standard_dispatcher(max_receive_bytes=1024, ids=counter_ids())
    store = Store()
    known = {(p, r): s for p, r, s in _all_states()}
    for message, metadata in steps:
        outcome = dispatcher.dispatch(message, metadata, store, NOW)
        store.apply(outcome)
        for out in outcome.outbound:
            assert (
                out["type"] != PROBLEM_REPORT
                or message.get("type") != PROBLEM_REPORT
                or (out["body"]["code"] == "e.p.req.max-errors-exceeded")
            )
        for record in outcome.records:
            assert record.state in known[(record.protocol, record.role)]
            assert record.error_count <= MAX_ERRORS_PER_THREAD + 1


# -- end to end through the real envelope ---------------------------------------------


@dataclass
class Peer:
    """One party: a did:peer:2, its secrets, a dispatcher and a record store."""

    did: str
    secrets: InMemorySecrets
    dispatcher: Dispatcher
    store: Store = field(default_factory=Store)

    @classmethod
    def create(cls) -> Peer:
        agreement, signing = PrivateKey.generate("X25519"), PrivateKey.generate("Ed25519")
        did = create_did_peer_2([signing.public], [agreement.public])
        secrets = InMemorySecrets()
        secrets.add(f"{did}#key-1", agreement)
        secrets.add(f"{did}#key-2", signing)
        return cls(did, secrets, standard_dispatcher(max_receive_bytes=65536))

    def pack(self, messages: list[dict[str, Any]]) -> list[str]:
        return [
            pack_encrypted(
                m, m["to"][0], frm=m["from"], resolver=default_resolver(), secrets=self.secrets
            ).packed
            for m in messages
        ]

    def receive(self, packed: str, now: int) -> tuple[Outcome, list[str]]:
        result = unpack(packed, resolver=default_resolver(), secrets=self.secrets, now=now)
        outcome = self.dispatcher.dispatch(result.message, result.metadata, self.store, now)
        self.store.apply(outcome)
        return outcome, self.pack(outcome.outbound)


def test_trust_ping_end_to_end_through_authcrypt() -> None:
    alice, bob = Peer.create(), Peer.create()
    sent = start_ping(alice.did, bob.did, NOW)
    alice.store.apply(sent)
    (wire,) = alice.pack(sent.outbound)
    bob_outcome, (reply,) = bob.receive(wire, NOW + 1)
    assert [e.kind for e in bob_outcome.events] == ["trust-ping.ping-received"]
    alice_outcome, nothing = alice.receive(reply, NOW + 3)
    assert nothing == []
    (event,) = alice_outcome.events
    assert event.kind == "trust-ping.response-received"
    assert event.data == {"from": bob.did, "round_trip_seconds": 3}
    record = alice.store.get(sent.outbound[0]["id"])
    assert record is not None and record.state == "done"


# -- exhaustive (role, state, message) checks, used by every protocol's tests -----------


def exhaust_table(
    dispatcher: Dispatcher, piuri: str, samples: dict[str, dict[str, Any]]
) -> list[tuple[str, str, str, list[str]]]:
    """Put a record in every (role, state), send every message of the protocol on
    its thread, and return ``(role, state, message, problem codes)`` rows.

    Each row is also checked here: a message the table allows produces no
    problem-report and lands in the table's state; any other gets exactly
    ``e.m.msg.unexpected`` and leaves the stored record's state unchanged.
    """
    machine = dispatcher.machine_for(piuri)
    rows = []
    for role, state, name, allowed, outcome in table_outcomes(dispatcher, machine, samples):
        found = codes(outcome)
        if allowed is None:
            assert found == ["e.m.msg.unexpected"], (role, state, name, found)
            (record,) = outcome.records
            assert record.state == state and record.error_count == 1
        else:
            assert found == [], (role, state, name, found)
            assert outcome.records[-1].state == allowed
        rows.append((role, state, name, found))
    return rows

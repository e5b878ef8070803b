"""Trust Ping 2.0: every transition, every invalid message, the local command."""

from __future__ import annotations

import pytest

from protocols.framework import Dispatcher
from protocols.trust_ping import PING, PING_RESPONSE, TRANSITIONS, start_ping
from tests.protocols.test_framework import (
    ALICE,
    AUTH,
    BOB,
    NOW,
    Store,
    codes,
    counter_ids,
    exhaust_table,
    ping,
)
from tests.protocols.test_framework import dispatcher as dispatcher  # the fixture

SAMPLES = {"ping": {"body": {"response_requested": True}}, "ping-response": {"body": {}}}


def test_every_state_and_message(dispatcher: Dispatcher) -> None:
    rows = exhaust_table(dispatcher, "https://didcomm.org/trust-ping/2.0", SAMPLES)
    allowed = {(r, s, m) for r, s, m, found in rows if not found}
    assert allowed == {
        ("sender", "awaiting-response", "ping-response"),
        ("receiver", "start", "ping"),
    }


def test_ping_gets_a_response_on_its_thread(dispatcher: Dispatcher) -> None:
    outcome = dispatcher.dispatch(ping(created_time=NOW - 5), AUTH, Store(), NOW)
    (response,) = outcome.outbound
    assert response["type"] == PING_RESPONSE
    assert response["thid"] == "p-1" and response["to"] == [ALICE] and response["from"] == BOB
    (record,) = outcome.records
    assert (record.role, record.state, record.their_did) == ("receiver", "done", ALICE)
    assert [e.kind for e in outcome.events] == ["trust-ping.ping-received"]


def test_no_response_when_not_requested(dispatcher: Dispatcher) -> None:
    outcome = dispatcher.dispatch(ping(body={"response_requested": False}), AUTH, Store(), NOW)
    assert outcome.outbound == []
    assert outcome.events[0].data["response_requested"] is False


@pytest.mark.parametrize("value", ["yes", 1, None, [True]])
def test_bad_response_requested_is_a_body_error(dispatcher: Dispatcher, value: object) -> None:
    outcome = dispatcher.dispatch(ping(body={"response_requested": value}), AUTH, Store(), NOW)
    assert codes(outcome) == ["e.p.msg.invalid-body"]
    assert outcome.records == []  # a fresh thread that failed is not stored


def test_start_ping_then_response() -> None:
    sent = start_ping(BOB, ALICE, NOW, ids=counter_ids("ours"), expires_time=NOW + 60)
    (message,) = sent.outbound
    assert message["type"] == PING and message["expires_time"] == NOW + 60
    assert message["body"] == {"response_requested": True} and message["to"] == [ALICE]
    assert sent.record is not None and sent.record.state == "awaiting-response"
    quiet = start_ping(BOB, ALICE, NOW, response_requested=False, pthid="inv-1")
    assert quiet.record is not None and quiet.record.state == "done"
    assert quiet.outbound[0]["pthid"] == "inv-1"


def test_response_after_done_is_unexpected(dispatcher: Dispatcher) -> None:
    store = Store()
    sent = start_ping(BOB, ALICE, NOW, ids=counter_ids("ours"))
    store.apply(sent)
    thid = sent.outbound[0]["id"]
    response = {"type": PING_RESPONSE, "id": "r-1", "thid": thid, "from": ALICE, "body": {}}
    first = dispatcher.dispatch(response, AUTH, store, NOW + 2)
    assert first.events[0].data["round_trip_seconds"] == 2
    store.apply(first)
    second = dispatcher.dispatch({**response, "id": "r-2"}, AUTH, store, NOW + 3)
    assert codes(second) == ["e.m.msg.unexpected"]


def test_table_has_no_dangling_states() -> None:
    for role, states in TRANSITIONS.items():
        for targets in states.values():
            for target in targets.values():
                assert target in states or target == "done", (role, target)

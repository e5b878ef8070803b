"""Basic Message 2.0: receiving, sending, limits, ACKs, every state."""

from __future__ import annotations

import pytest

from protocols.basic_message import MAX_CONTENT_CHARS, MESSAGE, send_message
from protocols.framework import EMPTY_MESSAGE, Dispatcher
from protocols.protocol_errors import InvalidBodyError
from tests.protocols.test_framework import (
    ALICE,
    ANON,
    AUTH,
    BOB,
    NOW,
    Store,
    codes,
    counter_ids,
    exhaust_table,
)
from tests.protocols.test_framework import dispatcher as dispatcher  # the fixture


def basic(**headers: object) -> dict[str, object]:
    message: dict[str, object] = {
        "type": MESSAGE,
        "id": "b-1",
        "from": ALICE,
        "to": [BOB],
        "lang": "en",
        "created_time": NOW - 1,
        "body": {"content": "Your hovercraft is full of eels."},
    }
    message.update(headers)
    return message


def test_every_state_and_message(dispatcher: Dispatcher) -> None:
    rows = exhaust_table(
        dispatcher, "https://didcomm.org/basicmessage/2.0", {"message": {"body": {"content": "x"}}}
    )
    assert {(r, s, m) for r, s, m, found in rows if not found} == {("receiver", "start", "message")}


def test_received_message_is_recorded_and_reported(dispatcher: Dispatcher) -> None:
    outcome = dispatcher.dispatch(basic(), AUTH, Store(), NOW)
    assert outcome.outbound == []
    (event,) = outcome.events
    assert event.kind == "basicmessage.received"
    assert event.data == {
        "from": ALICE,
        "content": "Your hovercraft is full of eels.",
        "lang": "en",
        "created_time": NOW - 1,
    }
    (record,) = outcome.records
    assert record.state == "received" and record.data["content"].startswith("Your")


@pytest.mark.parametrize(
    "headers",
    [
        {"body": {}},
        {"body": {"content": 5}},
        {"body": {"content": "x" * (MAX_CONTENT_CHARS + 1)}},
        {"lang": ""},
        {"lang": 7},
    ],
)
def test_invalid_messages_get_body_errors(
    dispatcher: Dispatcher, headers: dict[str, object]
) -> None:
    assert codes(dispatcher.dispatch(basic(**headers), AUTH, Store(), NOW)) == [
        "e.p.msg.invalid-body"
    ]


def test_anonymous_messages_are_refused(dispatcher: Dispatcher) -> None:
    assert codes(dispatcher.dispatch(basic(), ANON, Store(), NOW)) == [
        "e.p.trust.authentication-required"
    ]


def test_please_ack_is_answered_with_an_empty_message(dispatcher: Dispatcher) -> None:
    (ack,) = dispatcher.dispatch(basic(please_ack=[""]), AUTH, Store(), NOW).outbound
    assert ack["type"] == EMPTY_MESSAGE and ack["ack"] == ["b-1"] and ack["to"] == [ALICE]


def test_send_message() -> None:
    sent = send_message(BOB, ALICE, "hello", NOW, lang="en", please_ack=True, ids=counter_ids())
    (message,) = sent.outbound
    assert message == {
        "type": MESSAGE,
        "id": "m-1",
        "from": BOB,
        "to": [ALICE],
        "created_time": NOW,
        "lang": "en",
        "please_ack": [""],
        "body": {"content": "hello"},
    }
    assert sent.record is not None and sent.record.state == "sent"
    with pytest.raises(InvalidBodyError):
        send_message(BOB, ALICE, "x" * (MAX_CONTENT_CHARS + 1), NOW)

"""Discover Features 2.0: queries, wildcards, disclosures, limits, every state."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.discover_features import (
    DISCLOSE,
    MAX_QUERIES,
    QUERIES,
    FeatureSet,
    max_receive_bytes,
    proactive_disclose,
    start_query,
    wildcard_matches,
)
from protocols.dispatch import standard_dispatcher
from protocols.framework import Dispatcher
from protocols.protocol_errors import InvalidBodyError
from tests.protocols.test_framework import (
    ALICE,
    AUTH,
    BOB,
    NOW,
    Store,
    codes,
    counter_ids,
    exhaust_table,
)

PIURI = "https://didcomm.org/discover-features/2.0"


@pytest.fixture
def dispatcher() -> Dispatcher:
    return standard_dispatcher(
        max_receive_bytes=4096, goal_codes=("org.didcomm.ping",), ids=counter_ids()
    )


def queries(*items: tuple[str, str], msg_id: str = "q-1") -> dict[str, object]:
    return {
        "type": QUERIES,
        "id": msg_id,
        "from": ALICE,
        "to": [BOB],
        "body": {"queries": [{"feature-type": t, "match": m} for t, m in items]},
    }


def test_every_state_and_message(dispatcher: Dispatcher) -> None:
    samples = {
        "queries": {"body": {"queries": [{"feature-type": "protocol", "match": "*"}]}},
        "disclose": {"body": {"disclosures": []}},
    }
    rows = exhaust_table(dispatcher, PIURI, samples)
    assert {(r, s, m) for r, s, m, found in rows if not found} == {
        ("requester", "start", "disclose"),
        ("requester", "awaiting-disclosure", "disclose"),
        ("responder", "start", "queries"),
    }


def test_wildcards() -> None:
    assert wildcard_matches(
        "https://didcomm.org/tictactoe/1.*", "https://didcomm.org/tictactoe/1.0"
    )
    assert not wildcard_matches(
        "https://didcomm.org/tictactoe/1.*", "https://didcomm.org/tictactoe/2.0"
    )
    assert wildcard_matches("*", "anything")
    assert wildcard_matches("org.didcomm.*", "org.didcomm.sell.goods")
    assert not wildcard_matches("a.c", "abc")  # '.' is literal
    assert wildcard_matches("a*c*e", "abcde")


@given(st.text(max_size=20), st.text(max_size=20))
@settings(max_examples=200)
def test_wildcard_without_star_is_equality(pattern: str, value: str) -> None:
    if "*" not in pattern:
        assert wildcard_matches(pattern, value) == (pattern == value)
    assert wildcard_matches(value.replace("*", ""), value.replace("*", ""))


def test_queries_are_answered_with_matching_disclosures(dispatcher: Dispatcher) -> None:
    message = queries(
        ("protocol", "https://didcomm.org/trust-ping/2.*"),
        ("goal-code", "org.didcomm.*"),
        ("limit", "*"),
        ("governance-framework", "*"),  # unknown types are ignored
    )
    outcome = dispatcher.dispatch(message, AUTH, Store(), NOW)
    (reply,) = outcome.outbound
    assert reply["type"] == DISCLOSE and reply["thid"] == "q-1" and reply["to"] == [ALICE]
    assert reply["body"]["disclosures"] == [
        {
            "feature-type": "protocol",
            "id": "https://didcomm.org/trust-ping/2.0",
            "roles": ["sender", "receiver"],
        },
        {"feature-type": "goal-code", "id": "org.didcomm.ping"},
        {"feature-type": "limit", "id": "max_receive_bytes", "value": 4096},
    ]


def test_every_protocol_we_run_is_disclosed(dispatcher: Dispatcher) -> None:
    outcome = dispatcher.dispatch(queries(("protocol", "*")), AUTH, Store(), NOW)
    ids = {d["id"] for d in outcome.outbound[0]["body"]["disclosures"]}
    assert ids == {
        "https://didcomm.org/trust-ping/2.0",
        "https://didcomm.org/basicmessage/2.0",
        "https://didcomm.org/out-of-band/2.0",
        "https://didcomm.org/discover-features/2.0",
        "https://didcomm.org/report-problem/2.0",
        "https://didcomm.org/empty/1.0",
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"queries": []},
        {"queries": "protocol"},
        {"queries": [5]},
        {"queries": [{"feature-type": "protocol"}]},
        {"queries": [{"feature-type": "protocol", "match": "x" * 300}]},
        {"queries": [{"feature-type": "protocol", "match": "*"}] * (MAX_QUERIES + 1)},
    ],
)
def test_invalid_queries(dispatcher: Dispatcher, body: dict[str, object]) -> None:
    message = {**queries(), "body": body}
    assert codes(dispatcher.dispatch(message, AUTH, Store(), NOW)) == ["e.p.msg.invalid-body"]


def test_query_then_disclosure_round_trip(dispatcher: Dispatcher) -> None:
    store = Store()
    sent = start_query(
        BOB, ALICE, [{"feature-type": "limit", "match": "*"}], NOW, ids=counter_ids("q")
    )
    store.apply(sent)
    thid = sent.outbound[0]["id"]
    disclose = {
        "type": DISCLOSE,
        "id": "d-1",
        "thid": thid,
        "from": ALICE,
        "body": {
            "disclosures": [
                {"feature-type": "limit", "id": "max_receive_bytes", "value": 1000},
                {"feature-type": "protocol", "id": "https://x/y/1.0", "roles": ["a"]},
            ]
        },
    }
    outcome = dispatcher.dispatch(disclose, AUTH, store, NOW)
    (record,) = outcome.records
    assert record.state == "done" and record.data["max_receive_bytes"] == 1000
    assert outcome.events[0].data["max_receive_bytes"] == 1000


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"disclosures": {}},
        {"disclosures": [1]},
        {"disclosures": [{"feature-type": "protocol"}]},
        {"disclosures": [{"feature-type": "protocol", "id": "x", "roles": "a"}]},
    ],
)
def test_invalid_disclosures(dispatcher: Dispatcher, body: dict[str, object]) -> None:
    message = {"type": DISCLOSE, "id": "d-1", "from": ALICE, "body": body}
    assert codes(dispatcher.dispatch(message, AUTH, Store(), NOW)) == ["e.p.msg.invalid-body"]


def test_proactive_disclosure_both_ways(dispatcher: Dispatcher) -> None:
    features = FeatureSet(protocols=(("https://didcomm.org/trust-ping/2.0", ("sender",)),))
    sent = proactive_disclose(features, BOB, ALICE, NOW, ids=counter_ids())
    (message,) = sent.outbound
    assert message["body"]["disclosures"][0]["id"] == "https://didcomm.org/trust-ping/2.0"
    received = dispatcher.dispatch({**message, "from": ALICE}, AUTH, Store(), NOW)
    (record,) = received.records
    assert (record.role, record.state) == ("requester", "done")
    with pytest.raises(InvalidBodyError):
        start_query(BOB, ALICE, [], NOW)


def test_max_receive_bytes_reader() -> None:
    assert (
        max_receive_bytes([{"feature-type": "limit", "id": "max_receive_bytes", "value": 0}])
        is None
    )
    assert max_receive_bytes([{"feature-type": "protocol", "id": "max_receive_bytes"}]) is None

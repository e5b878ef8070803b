"""Out-of-Band 2.0: invitations, URL forms, garbage in, single and multi use, expiry."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.codec import b64u_encode
from protocols.framework import Dispatcher
from protocols.out_of_band import (
    INVITATION,
    MAX_INVITATION_CHARS,
    create_invitation,
    didcomm_url,
    encode_invitation,
    invitation_url,
    parse_invitation,
    receive_invitation,
)
from protocols.protocol_errors import InvitationError, InvitationExpiredError
from protocols.trust_ping import start_ping
from tests.protocols.test_framework import (
    ALICE,
    AUTH,
    BOB,
    NOW,
    PLAIN,
    Store,
    codes,
    counter_ids,
)
from tests.protocols.test_framework import dispatcher as dispatcher  # the fixture

SPEC_ENCODED = (
    "eyJ0eXBlIjoiaHR0cHM6Ly9kaWRjb21tLm9yZy9vdXQtb2YtYmFuZC8yLjAvaW52aXRhdGlvbiIsImlkIjoiNjkyMTJh"
    "M2EtZDA2OC00ZjlkLWEyZGQtNDc0MWJjYTg5YWYzIiwiZnJvbSI6ImRpZDpleGFtcGxlOmFsaWNlIiwiYm9keSI6eyJn"
    "b2FsX2NvZGUiOiIiLCJnb2FsIjoiIn0sImF0dGFjaG1lbnRzIjpbeyJpZCI6InJlcXVlc3QtMCIsIm1lZGlhX3R5cGUi"
    "OiJhcHBsaWNhdGlvbi9qc29uIiwiZGF0YSI6eyJqc29uIjoiPGpzb24gb2YgcHJvdG9jb2wgbWVzc2FnZT4ifX1dfQ"
)


def invite() -> dict[str, object]:
    transition = create_invitation(
        BOB, NOW, goal="Connect", goal_code="connect", ids=counter_ids("inv")
    )
    assert transition.record is not None
    invitation: dict[str, object] = transition.record.data["invitation"]
    return invitation


def test_spec_example_url_decodes() -> None:
    invitation = parse_invitation(f"https://example.com/path?_oob={SPEC_ENCODED}")
    assert invitation["id"] == "69212a3a-d068-4f9d-a2dd-4741bca89af3"
    assert invitation["from"] == "did:example:alice"
    assert invitation["attachments"][0]["data"]["json"] == "<json of protocol message>"
    assert encode_invitation(invitation) == SPEC_ENCODED  # whitespace-free, same key order


def test_create_invitation() -> None:
    transition = create_invitation(
        BOB,
        NOW,
        goal="Issue a credential",
        goal_code="issue-vc",
        attachments=[{"id": "request-0", "media_type": "application/json", "data": {"json": {}}}],
        expires_time=NOW + 600,
        multi_use=True,
        ids=counter_ids("inv"),
    )
    assert transition.outbound == []  # an invitation travels out of band
    record = transition.record
    assert record is not None and (record.role, record.state) == ("sender", "awaiting-response")
    invitation = record.data["invitation"]
    assert invitation["type"] == INVITATION and invitation["from"] == BOB
    assert invitation["body"] == {
        "goal_code": "issue-vc",
        "goal": "Issue a credential",
        "accept": ["didcomm/v2"],
    }
    assert invitation["expires_time"] == NOW + 600 and record.data["multi_use"] is True


@pytest.mark.parametrize("base", ["https://example.com/path", "https://example.com/p?coupon=1"])
def test_url_round_trips(base: str) -> None:
    invitation = invite()
    url = invitation_url(invitation, base)
    assert url.startswith(base) and "_oob=" in url and " " not in url
    assert parse_invitation(url) == invitation
    assert parse_invitation(didcomm_url(invitation)) == invitation
    assert parse_invitation(json.dumps(invitation, indent=2)) == invitation


def test_bad_base_url() -> None:
    with pytest.raises(InvitationError):
        invitation_url(invite(), "ftp://example.com/x")


def _oob(value: object) -> str:
    return "https://example.com/?_oob=" + b64u_encode(json.dumps(value).encode())


GOOD = {"type": INVITATION, "id": "i-1", "from": ALICE, "body": {}}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "hello",
        "ftp://example.com/?_oob=abc",
        "https://example.com/path",
        "https://example.com/path?_oobid=5f0e3ffb",
        "https://example.com/?_oob=***",
        "https://example.com/?_oob=" + b64u_encode(b"not json"),
        "https://example.com/?_oob=" + b64u_encode(b"\xff\xfe"),
        f"https://example.com/?_oob={SPEC_ENCODED}&_oob={SPEC_ENCODED}",
        "{not json",
        "[1, 2]",
        _oob([1]),
        _oob({**GOOD, "type": "https://didcomm.org/trust-ping/2.0/ping"}),
        _oob({**GOOD, "type": "https://didcomm.org/out-of-band/3.0/invitation"}),
        _oob({k: v for k, v in GOOD.items() if k != "from"}),
        _oob({k: v for k, v in GOOD.items() if k != "id"}),
        _oob({**GOOD, "body": {"goal": 5}}),
        _oob({**GOOD, "body": {"accept": "didcomm/v2"}}),
        _oob({**GOOD, "attachments": [{"id": "x"}]}),
        "https://example.com/?_oob=" + "A" * MAX_INVITATION_CHARS,
    ],
)
def test_garbage_is_a_typed_error(text: str) -> None:
    with pytest.raises(InvitationError):
        parse_invitation(text)


@given(st.text(max_size=200))
@settings(max_examples=300)
def test_random_text_never_crashes(text: str) -> None:
    with contextlib.suppress(InvitationError):
        parse_invitation(text)


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4))
@settings(max_examples=200)
def test_random_json_in_oob_never_crashes(value: dict[str, str]) -> None:
    with contextlib.suppress(InvitationError):
        parse_invitation(_oob({**GOOD, **value}))


def test_expired_invitation_is_refused_on_receipt() -> None:
    url = didcomm_url({**GOOD, "expires_time": NOW})
    with pytest.raises(InvitationExpiredError):
        parse_invitation(url, now=NOW)
    assert parse_invitation(url, now=NOW - 1)["id"] == "i-1"


def test_receive_invitation_keeps_a_record() -> None:
    transition = receive_invitation(didcomm_url(GOOD), NOW, our_did=BOB)
    record = transition.record
    assert record is not None and (record.role, record.state, record.their_did) == (
        "receiver",
        "received",
        ALICE,
    )
    assert transition.events[0].kind == "out-of-band.invitation-received"


def test_invitation_arriving_as_a_message(dispatcher: Dispatcher) -> None:
    outcome = dispatcher.dispatch(dict(GOOD), PLAIN, Store(), NOW)
    (record,) = outcome.records
    assert (record.role, record.state) == ("receiver", "received")
    bad = dispatcher.dispatch({**GOOD, "id": "i-2", "from": None}, PLAIN, Store(), NOW)
    assert bad.problem is not None


def _answer(store: Store, dispatcher: Dispatcher, invitation_id: str, n: int) -> list[str]:
    # Alice answers the invitation with a trust ping whose pthid is the invitation id.
    ping = start_ping(ALICE, BOB, NOW, pthid=invitation_id, ids=counter_ids(f"a{n}")).outbound[0]
    outcome = dispatcher.dispatch(ping, AUTH, store, NOW)
    store.apply(outcome)
    return codes(outcome)


def test_single_use_invitation(dispatcher: Dispatcher) -> None:
    store = Store()
    created = create_invitation(BOB, NOW, ids=counter_ids("inv"))
    store.apply(created)
    assert _answer(store, dispatcher, "inv-1", 1) == []
    record = store.get("inv-1")
    assert record is not None and record.state == "done" and record.data["used_by"] == [ALICE]
    assert _answer(store, dispatcher, "inv-1", 2) == ["e.p.req.invitation-used"]


def test_multi_use_invitation(dispatcher: Dispatcher) -> None:
    store = Store()
    store.apply(create_invitation(BOB, NOW, multi_use=True, ids=counter_ids("inv")))
    for n in range(3):
        assert _answer(store, dispatcher, "inv-1", n) == []
    record = store.get("inv-1")
    assert record is not None and record.state == "awaiting-response" and record.data["uses"] == 3


def test_expired_invitation_refuses_answers(dispatcher: Dispatcher) -> None:
    store = Store()
    store.apply(create_invitation(BOB, NOW - 10, expires_time=NOW, ids=counter_ids("inv")))
    assert _answer(store, dispatcher, "inv-1", 1) == ["e.p.req.time.invitation-expired"]

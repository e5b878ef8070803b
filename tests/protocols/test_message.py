"""message.validate: its inline fast path keeps the per-header rules' answers."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import DIDCommError
from protocols.message import _validate_headers, validate

_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.sampled_from(["", "x", "did:ex:a", "did:ex:a#k", "application/didcomm-plain+json", "didcomm-plain+json"])
    | st.text(max_size=8)
    | st.lists(st.sampled_from(["did:ex:b", "did:ex:b#1", "nodid", 3]), max_size=3)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
_HEADERS = st.sampled_from(
    ["id", "type", "typ", "from", "to", "created_time", "expires_time", "body", "thid", "lang", "x-ext"]
)


def _outcome(check: Any, message: dict[str, Any]) -> object:
    try:
        return check(message) is message
    except DIDCommError as exc:
        return type(exc)


@given(
    st.fixed_dictionaries(
        {"id": st.sampled_from(["1", "", "x" * 2000]), "type": st.sampled_from(["t", ""])},
        optional={"body": st.just({})},
    ),
    st.dictionaries(_HEADERS, _VALUES, max_size=6),
)
def test_fast_path_agrees_with_the_rules(base: dict[str, Any], extra: dict[str, Any]) -> None:
    message = {**base, **extra}
    assert _outcome(validate, message) == _outcome(_validate_headers, message)


def test_common_message_passes_the_fast_path() -> None:
    message = {
        "id": "1",
        "type": "https://didcomm.org/basicmessage/2.0/message",
        "typ": "application/didcomm-plain+json",
        "from": "did:ex:a",
        "to": ["did:ex:b"],
        "created_time": 1,
        "body": {},
        "lang": "en",
    }
    assert validate(message) is message

"""codec: base64url and JSON, whose fast paths must keep the careful paths' answers."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.codec import (
    b64u_decode,
    b64u_encode,
    b64u_encode_bytes,
    json_dumps,
    json_loads,
    json_object,
    json_string,
)
from protocols.errors import MalformedMessageError


@given(st.binary(max_size=200))
def test_b64u_round_trip_with_and_without_padding(data: bytes) -> None:
    text = b64u_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert text == base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert b64u_encode_bytes(data) == text.encode()
    assert b64u_decode(text) == data
    assert b64u_decode(text.encode()) == data
    assert b64u_decode(text + "=" * (-len(text) % 4)) == data


@pytest.mark.parametrize(
    "bad", ["YW+j", "YW/j", "Y", "YWJjZ", "YW=j", "YW j", "é", "YW\\n", "*abc", "!abc", 5, None]
)
def test_b64u_refuses_anything_else(bad: object) -> None:
    with pytest.raises(MalformedMessageError):
        b64u_decode(bad)  # type: ignore[arg-type]


@given(st.text(max_size=40))
def test_random_text_decodes_or_raises_the_typed_error(text: str) -> None:
    with contextlib.suppress(MalformedMessageError):
        b64u_decode(text)


def test_json_object_accepts_whitespace_and_refuses_the_rest() -> None:
    assert json_object(' {"a": [1, "é"]}\n') == {"a": [1, "é"]}
    assert json_object(b'{"a":1}') == {"a": 1}
    assert json_loads("[1]") == [1]
    for bad in ['{"a":1}x', "", "{", "[1]", '"s"', b"\xff", '{"a":1}{}']:
        with pytest.raises(MalformedMessageError):
            json_object(bad)
    with pytest.raises(MalformedMessageError):
        json_object("[" * 100_000 + "]" * 100_000)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )
)
def test_json_dumps_is_compact_json(value: object) -> None:
    text = json_dumps(value)
    assert text == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(text) == value


def test_json_dumps_errors_are_json_errors() -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(ValueError):
        json_dumps(loop)
    with pytest.raises(TypeError):
        json_dumps({"a": object()})
    assert json_dumps({"ok": 1}) == '{"ok":1}'  # a failed call leaves nothing behind
    assert json_string('a"é') == '"a\\"é"'

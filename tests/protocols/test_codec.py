"""codec: base64url and JSON, whose fast paths must keep the careful paths' answers."""

from __future__ import annotations

import base64
import contextlib
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.codec import (
    b64u_decode,
    b64u_encode,
    b64u_encode_bytes,
    has_long_digit_run,
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


@pytest.mark.parametrize(
    "bad",
    [
        '{"a":NaN}',
        '{"a":-Infinity}',
        '{"a":1e400}',
        '{"a":"\\ud800"}',
        # The same refusals when a long integer sends the text to the careful path.
        '{"n":123456789012345678901234567890,"a":NaN}',
        '{"n":123456789012345678901234567890,"a":1e400}',
        '{"n":123456789012345678901234567890,"a":"\\udc00"}',
    ],
)
def test_json_is_strict_rfc_8259(bad: str) -> None:
    # Not JSON (NaN, infinities), or text no UTF-8 output could carry onward.
    with pytest.raises(MalformedMessageError):
        json_object(bad)
    with pytest.raises(MalformedMessageError):
        json_object(bad, exact=False)


@given(
    st.integers()
    | st.sampled_from([-(2**63) - 1, -(2**63), 2**64 - 1, 2**64, -(10**18), -(10**19), 10**19])
)
def test_integers_of_any_size_stay_exact(n: int) -> None:
    text = json_dumps({"n": n, "l": [n]})
    assert text == json.dumps({"n": n, "l": [n]}, separators=(",", ":"))
    value = json_object(text)
    assert value == {"n": n, "l": [n]}
    assert type(value["n"]) is int


def test_non_finite_floats_are_not_serialised() -> None:
    for value in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            json_dumps({"a": [value]})
    assert json_dumps({"a": None, "b": 1.5}) == '{"a":null,"b":1.5}'


def test_json_dumps_writes_what_orjson_leaves_to_the_standard_library() -> None:
    deep: object = []
    for _ in range(300):  # orjson stops at 254 levels
        deep = [deep]
    assert json_dumps(deep) == "[" * 301 + "]" * 301
    assert json_dumps({1: "a", None: 2}) == '{"1":"a","null":2}'

    class Text(str):
        pass

    assert json_dumps({"k": Text("v")}) == '{"k":"v"}'
    with pytest.raises(TypeError):
        json_dumps({"a": b"bytes"})


@given(st.text(alphabet="0123456789a\u00e9", max_size=80))
def test_long_digit_runs_are_all_found(text: str) -> None:
    # The sampled pre-check (every tenth byte) must never miss a run.
    expected = re.search("[0-9]{19}", text) is not None
    assert has_long_digit_run(text) is expected
    assert has_long_digit_run(text.encode()) is expected

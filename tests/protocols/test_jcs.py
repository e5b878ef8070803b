"""RFC 8785 (JCS): the RFC's number table, cyberphone's test data, and properties.

``tests/vectors/jcs/`` holds the input/output pairs of the RFC author's
reference implementation (github.com/cyberphone/json-canonicalization,
``testdata/``, Apache-2.0).  Appendix B's IEEE-754 table is below as data.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import CanonicalizationError, DIDCommError, MalformedCredentialError
from protocols.jcs import EXACT_INTEGER_LIMIT, MAX_DEPTH, canonicalize, number_to_string

VECTORS = Path(__file__).parent.parent / "vectors" / "jcs"

# RFC 8785 Appendix B (plus the two samples of cyberphone's es6testfile README).
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
    ("4340000000000001", "9007199254740994"),
    ("4340000000000002", "9007199254740996"),
]
NON_FINITE = ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"]


def _double(hex_ieee: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(hex_ieee))[0]
    return value


@pytest.mark.parametrize(("hex_ieee", "expected"), APPENDIX_B)
def test_appendix_b_numbers(hex_ieee: str, expected: str) -> None:
    assert canonicalize(_double(hex_ieee)) == expected.encode()


@pytest.mark.parametrize("hex_ieee", NON_FINITE)
def test_appendix_b_nan_and_infinity_are_refused(hex_ieee: str) -> None:
    with pytest.raises(CanonicalizationError):
        canonicalize([_double(hex_ieee)])


@pytest.mark.parametrize("name", ["arrays", "french", "structures", "unicode", "values", "weird"])
def test_cyberphone_testdata(name: str) -> None:
    value = json.loads((VECTORS / "input" / f"{name}.json").read_text("utf-8"))
    assert canonicalize(value) == (VECTORS / "output" / f"{name}.json").read_bytes()


def test_rfc_section_3_2_3_sorting_example() -> None:
    # RFC 8785 section 3.2.3's example: names sorted as UTF-16 code units, so
    # U+1F600 (surrogates D83D DE00) sorts before U+FB33 though its code point is larger.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    order = list(json.loads(canonicalize(value)))
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_rfc_section_3_2_2_example() -> None:
    # RFC 8785 section 3.2.2's input and its canonical form, byte for byte.
    value = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonicalize(value) == expected.encode("utf-8")


def test_string_escapes_follow_json_stringify() -> None:
    controls = "".join(chr(c) for c in range(0x20))
    out = canonicalize(controls + '"\\\x7f\u2028/').decode("utf-8")
    assert out == (
        '"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r'
        "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
        '\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\"\\\\\x7f\u2028/"'
    )


def test_integers() -> None:
    assert canonicalize([0, -1, EXACT_INTEGER_LIMIT, -EXACT_INTEGER_LIMIT]) == (
        b"[0,-1,9007199254740992,-9007199254740992]"
    )
    # 2**68 is a double exactly: written as ES writes that double.
    assert canonicalize(2**68) == b"295147905179352830000"
    assert canonicalize(10**21) == b"1e+21"


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        -float("inf"),
        {1: "a"},
        {("a",): 1},
        "\ud800",
        "a\udc00b",
        {"\udfff": 1},
        EXACT_INTEGER_LIMIT + 1,
        -(EXACT_INTEGER_LIMIT + 1),
        10**400,
        b"bytes",
        {1, 2},
        object(),
    ],
    ids=repr,
)
def test_values_jcs_cannot_express_raise_typed_errors(value: Any) -> None:
    with pytest.raises(CanonicalizationError) as info:
        canonicalize({"v": [value]})
    assert isinstance(info.value, MalformedCredentialError)
    assert info.value.problem_code == "e.p.credential.malformed.jcs"


def test_depth_limit() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    assert canonicalize(deep).startswith(b"[" * MAX_DEPTH)
    with pytest.raises(CanonicalizationError, match="deeper"):
        canonicalize([deep])
    with pytest.raises(CanonicalizationError, match="deeper"):
        canonicalize({"a": deep})
    very_deep: Any = []
    for _ in range(100_000):
        very_deep = [very_deep]
    with pytest.raises(CanonicalizationError):
        canonicalize(very_deep)


# -- properties -----------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-EXACT_INTEGER_LIMIT, max_value=EXACT_INTEGER_LIMIT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


def _same_json(a: Any, b: Any) -> bool:
    """Equality of JSON values as JCS sees them (numbers as doubles)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same_json, a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


@settings(max_examples=300)
@given(json_values)
def test_canonical_form_is_a_fixed_point(value: Any) -> None:
    once = canonicalize(value)
    assert canonicalize(json.loads(once)) == once
    assert _same_json(json.loads(once), value)


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=4), st.integers(0, 9), max_size=8))
def test_members_sorted_by_utf16_code_units(value: dict[str, int]) -> None:
    names = [name for name, _ in json.loads(canonicalize(value), object_pairs_hook=list)]
    assert names == sorted(value, key=lambda name: name.encode("utf-16-be"))


@settings(max_examples=1000)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_round_trip_like_json_dumps(value: float) -> None:
    text = number_to_string(value)
    # Same double as Python's own shortest form, and JSON-readable.
    assert float(text) == float(json.dumps(value)) == value
    assert float(json.loads(text)) == value
    # ES layout: exponent form exactly outside 1e-6 <= |x| < 1e21.
    magnitude = abs(value)
    assert ("e" in text) == (magnitude != 0 and not 1e-6 <= magnitude < 1e21)
    if "e" in text:
        mantissa = text.split("e")[0].lstrip("-")
        assert 1 <= float(mantissa) < 10
    assert not text.endswith(".0") and "+" not in text.split("e")[0]


@settings(max_examples=300)
@given(st.integers(-EXACT_INTEGER_LIMIT, EXACT_INTEGER_LIMIT))
def test_integral_doubles_print_as_integers(value: int) -> None:
    assert number_to_string(float(value)) == str(value)


@settings(max_examples=300)
@given(st.floats(min_value=2.0**53, max_value=1e300))
def test_large_integers_accepted_as_spelled_or_exact(value: float) -> None:
    # Our output for a large double reads back (as a Python int) to the same bytes.
    text = canonicalize(value)
    reread = json.loads(text)
    assert canonicalize(reread) == text
    assert canonicalize(int(value)) == text


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_as_json_only_typed_errors(data: bytes) -> None:
    try:
        value = json.loads(data.decode("utf-8", "surrogatepass"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return
    try:
        out = canonicalize(value)
    except DIDCommError:
        return
    assert canonicalize(json.loads(out)) == out

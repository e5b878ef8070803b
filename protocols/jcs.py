"""RFC 8785 JSON Canonicalization Scheme (JCS): one byte string per JSON value.

Theory of operation
-------------------
A signature over JSON needs both sides to turn the same value into the same
bytes.  JCS does it by borrowing ECMAScript's ``JSON.stringify`` for the
leaves and adding one rule for objects:

- **Objects**: members sorted by their names as arrays of UTF-16 code units
  (RFC 8785 section 3.2.3), compared unsigned -- not by code point and not
  by locale.  Sorting the names' UTF-16BE encodings gives exactly that order,
  because big-endian bytes compare as the units they encode.  No whitespace.
- **Strings** (section 3.2.2.2): ``"`` and ``\\`` escaped, the five controls
  with short forms as ``\\b \\t \\n \\f \\r``, every other control below
  U+0020 as ``\\u00xx`` with lower-case hex; everything else, including
  U+007F and U+2028, as itself in UTF-8.  No Unicode normalisation.
- **Numbers** (section 3.2.2.3) are IEEE-754 doubles written as ECMAScript's
  ``Number.prototype.toString``: the shortest digits that read back to the
  same double (Python's ``repr(float)`` computes the same digits), placed by
  ES's rules -- plain notation for decimal exponents from -6 to 21, else
  ``d.ddde+n``/``d.ddde-n``.  ``-0`` is ``0``.
- **Literals** ``true``, ``false``, ``null``.

What JCS cannot express is refused with :class:`CanonicalizationError`
(never a ``TypeError`` or ``UnicodeError``): NaN and the infinities, member
names that are not strings, strings with unpaired surrogates (JSON text can
carry them as ``\\ud800`` escapes; UTF-8 cannot), integers that no double
holds exactly (a Python ``int`` beyond 2**53 that would round and is not
JCS's own spelling of a double: canonicalising it would silently sign a
different number), values that are not JSON, and
nesting deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import CanonicalizationError

__all__ = ["MAX_DEPTH", "canonicalize", "number_to_string"]

#: Deepest nesting of arrays and objects we canonicalise (the value itself is depth 1).
MAX_DEPTH = 64
#: Largest magnitude at which every integer is a double (ES ``Number.MAX_SAFE_INTEGER + 1``).
EXACT_INTEGER_LIMIT = 2**53
#: ES writes decimal exponents up to this in plain notation (``1e21`` is the first exponent form).
_PLAIN_MAX_EXPONENT = 21
#: ... and down to this (``0.000001`` is plain, ``1e-7`` is not).
_PLAIN_MIN_EXPONENT = -6

# Short escapes from ES QuoteJSONString; other controls are \u00xx.
_SHORT_ESCAPES = {
    0x08: "\\b",
    0x09: "\\t",
    0x0A: "\\n",
    0x0C: "\\f",
    0x0D: "\\r",
    0x22: '\\"',
    0x5C: "\\\\",
}
_ESCAPES: dict[int, str] = {c: f"\\u{c:04x}" for c in range(0x20)}
_ESCAPES.update(_SHORT_ESCAPES)


def canonicalize(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value.

    ``value`` is what ``json.loads`` gives (dict, list, str, int, float,
    bool, None; any Mapping and tuple are accepted too).  Raises
    :class:`CanonicalizationError` for anything JCS cannot express.
    """
    out: list[str] = []
    _write(value, out, 1)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError:
        # Only a surrogate half can fail here, and _string checks strings;
        # kept as the last line of defence for str subclasses.
        raise CanonicalizationError("a string holds an unpaired UTF-16 surrogate") from None


def _write(value: Any, out: list[str], depth: int) -> None:
    # bool before int: True is an int in Python.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        out.append(_integer(value))
    elif isinstance(value, float):
        out.append(number_to_string(value))
    elif isinstance(value, Mapping):
        _check_depth(depth)
        _object(value, out, depth)
    elif isinstance(value, list | tuple):
        _check_depth(depth)
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, depth + 1)
        out.append("]")
    else:
        raise CanonicalizationError(f"a {type(value).__name__} is not a JSON value")


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CanonicalizationError(f"JSON nests deeper than {MAX_DEPTH} levels")


def _object(value: Mapping[Any, Any], out: list[str], depth: int) -> None:
    keyed: list[tuple[bytes, str, Any]] = []
    for name, member in value.items():
        if not isinstance(name, str):
            raise CanonicalizationError("an object member name is not a string")
        try:
            order = name.encode("utf-16-be")
        except UnicodeEncodeError:
            raise CanonicalizationError(
                "a member name holds an unpaired UTF-16 surrogate"
            ) from None
        keyed.append((order, name, member))
    # Names are unique in a Mapping, so the sort never compares members.
    keyed.sort(key=lambda entry: entry[0])
    out.append("{")
    for i, (_, name, member) in enumerate(keyed):
        if i:
            out.append(",")
        out.append(_string(name))
        out.append(":")
        _write(member, out, depth + 1)
    out.append("}")


def _string(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalizationError("a string holds an unpaired UTF-16 surrogate") from None
    return '"' + text.translate(_ESCAPES) + '"'


def _integer(value: int) -> str:
    if -EXACT_INTEGER_LIMIT <= value <= EXACT_INTEGER_LIMIT:
        # Below 2**53 < 10**21 ES writes every integer in plain digits.
        return str(value)
    try:
        as_double = float(value)
    except OverflowError:
        raise CanonicalizationError("an integer is too large for a JSON number") from None
    text = number_to_string(as_double)
    # Accepted: the integer is a double exactly (2**68), or it is the way JCS
    # spells a double (55300239839139050 for 55300239839139048.0, which is what
    # parsing our own output gives).  Refused: any other integer, which a
    # double-based verifier would round to a different number than we signed.
    if int(as_double) != value and text != str(value):
        raise CanonicalizationError(
            "an integer beyond 2**53 is not exactly a double; send it as a string"
        )
    return text


def number_to_string(value: float) -> str:
    """ES ``Number::toString`` of a finite double (RFC 8785 section 3.2.2.3)."""
    if not math.isfinite(value):
        raise CanonicalizationError("NaN and Infinity are not JSON numbers")
    if value == 0:
        return "0"  # and -0 too
    sign = "-" if value < 0 else ""
    digits, n = _shortest_digits(abs(value))
    k = len(digits)
    # value = 0.digits * 10**n, in ES's terms: the first digit sits at 10**(n-1).
    if k <= n <= _PLAIN_MAX_EXPONENT:
        body = digits + "0" * (n - k)
    elif 0 < n <= _PLAIN_MAX_EXPONENT:
        body = digits[:n] + "." + digits[n:]
    elif _PLAIN_MIN_EXPONENT < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        exponent = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        body = f"{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}"
    return sign + body


def _shortest_digits(value: float) -> tuple[str, int]:
    """``(digits, n)`` with value == 0.digits * 10**n, digits shortest round-trip.

    ``repr`` gives the shortest string that reads back to ``value`` (David
    Gay / Ryu-equivalent, as ES requires); only its layout needs undoing:
    ``12.5``, ``1e+22``, ``5e-324``, ``1.5e-07``.
    """
    text = repr(value)
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, fraction = mantissa.partition(".")
    if fraction == "0":
        fraction = ""
    digits = whole + fraction
    # Position of the decimal point relative to the digit string's start.
    point = len(whole) + exponent
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    return stripped.rstrip("0"), point

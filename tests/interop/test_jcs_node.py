"""Our RFC 8785 canonicalisation against ECMAScript itself (node's V8).

JCS is defined by ES: numbers as ``Number.prototype.toString`` and strings
as ``JSON.stringify`` writes them, members sorted the way ES compares
strings (UTF-16 code units).  So node is the reference: a 20-line canonicaliser
in JS (the RFC's appendix A algorithm) canonicalises a few thousand seeded
random values and doubles -- random bit patterns, not only "nice" numbers --
and the bytes must equal ours.  One node process for the whole batch.
"""

from __future__ import annotations

import json
import random
import struct
import subprocess
from typing import Any

import pytest

from protocols.jcs import EXACT_INTEGER_LIMIT, canonicalize

pytestmark = pytest.mark.interop

#: Seconds node may take for the whole batch.
NODE_TIMEOUT_SECONDS = 60
#: Random doubles and random documents per run.
DOUBLES = 20_000
DOCUMENTS = 2_000

# RFC 8785 appendix A, the ES reference: JSON.stringify for leaves, default
# sort (UTF-16 code units) for member names.  Reads JSON lines
# {"hex": ...} or {"doc": ...}; writes one JSON string per line.
CANONICALIZE_JS = r"""
const canon = (v) => {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(canon).join(",") + "]";
  return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canon(v[k])).join(",") + "}";
};
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter((l) => l);
// Each result as an ASCII JSON string literal, so no U+2028 splits a line.
const ascii = (s) => JSON.stringify(s).replace(
  /[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
const out = lines.map((line) => {
  const item = JSON.parse(line);
  if ("hex" in item) return ascii(canon(Buffer.from(item.hex, "hex").readDoubleBE(0)));
  return ascii(canon(item.doc));
});
process.stdout.write(out.join("\n") + "\n");
"""

ALPHABET = (
    *("a", "b", "A", "1", "\u00e9", "\u20ac", "\ufb33", "\u2028", "\x7f", "\x00", "\x1f"),
    *("\n", "\t", '"', "\\", "/", "\U0001f600", "\U00010000", "\ud7ff", "\ue000", "<"),
)


def _random_double(rng: random.Random) -> float:
    while True:
        value: float = struct.unpack(">d", rng.getrandbits(64).to_bytes(8, "big"))[0]
        if value == value and abs(value) != float("inf"):
            return value


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 6)))


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-EXACT_INTEGER_LIMIT, EXACT_INTEGER_LIMIT)
    if kind == 2:
        return _random_double(rng)
    if kind == 3:
        return rng.choice([0.1, 1e21, 1e-7, 1e-6, 123.0, -0.0, 5e-324, 2.0**70, 0.5])
    if kind in (4, 5):
        return _random_text(rng)
    if kind in (6, 7):
        return {_random_text(rng): _random_value(rng, depth + 1) for _ in range(rng.randrange(6))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]


def _node(lines: list[str]) -> list[str]:
    done = subprocess.run(
        ["node", "-e", CANONICALIZE_JS],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.split("\n")[:-1]]


def test_numbers_and_documents_match_ecmascript() -> None:
    rng = random.Random(8785)
    doubles = [_random_double(rng) for _ in range(DOUBLES)]
    documents = [_random_value(rng) for _ in range(DOCUMENTS)]
    # ASCII-only JSON lines: the strings survive the pipe whatever node's locale.
    lines = [json.dumps({"hex": struct.pack(">d", d).hex()}) for d in doubles]
    lines += [json.dumps({"doc": doc}) for doc in documents]
    expected = _node(lines)
    ours = [canonicalize(value).decode("utf-8") for value in [*doubles, *documents]]
    mismatches = [
        (value, mine, theirs)
        for value, mine, theirs in zip([*doubles, *documents], ours, expected, strict=True)
        if mine != theirs
    ]
    assert mismatches == []

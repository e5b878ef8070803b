"""SD-JWT VC cost per operation: ours next to the bare signatures it cannot avoid.

Theory of operation
-------------------
A credential exchange does three things with ``protocols/sd_jwt.py`` that cost
CPU: the issuer *issues* (salts, disclosures, digests, one signature), the
holder *presents* (picks disclosures, one key-binding signature) and the
verifier *verifies* (two signature checks, digests, claim processing).  Each is
timed next to its **bare** cost, measured in the same run: only the Ed25519
calls the operation must make (libsodium through PyNaCl, the fastest here),
one sign for an issue or a presentation, two verifies for a verification.  The
ratio ours/bare says how much of an operation is our code; 1.0 would be none.

Revocation adds the status lists (``protocols/status_list.py``): an issuer
signs a list of 131,072 2-bit entries (1% revoked, 0.5% suspended, at random) after each change,
and a verifier checks the one stapled to a presentation.  Their bare cost is
the compression (zlib level 9, the draft's advice) or decompression of the
32 KB list (16 KB before suspension: 1-bit entries) and the one Ed25519 sign or verify.

The credential is the over-18 one of the README: five claims, all disclosable,
bound to an Ed25519 holder key; the presentation discloses one claim.  A
*window* repeats an operation for ``--budget`` seconds (garbage collector
paused); each operation gets ``--rounds`` windows, interleaved with its bare
counterpart; rates are medians, and the ratio is the median of per-round ratios
(adjacent windows share the machine's load).

Run: ``.venv/bin/python bench/credentials.py [--rounds 7] [--budget 0.2]``
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nacl import bindings as sodium  # noqa: E402

from protocols import sd_jwt, status_list  # noqa: E402
from protocols.did.did_key import create_did_key  # noqa: E402
from protocols.did.resolver import default_resolver  # noqa: E402
from protocols.keys import PrivateKey  # noqa: E402

#: Defaults: windows per operation and seconds per window.
DEFAULT_ROUNDS = 7
DEFAULT_BUDGET_S = 0.2
NOW = 1_800_000_000
CLAIMS = {
    "given_name": "Bob",
    "family_name": "Example",
    "birthdate": "2001-04-01",
    "nationality": "FR",
    "age_over_18": True,
}

Call = Callable[[], object]


def rate(call: Call, budget: float) -> float:
    """Operations per second of ``call`` over ``budget`` seconds of wall time."""
    gc.collect()
    gc.disable()
    try:
        count, clock = 0, time.perf_counter
        start = clock()
        while True:
            call()
            count += 1
            now = clock()
            if now - start >= budget:
                return count / (now - start)
    finally:
        gc.enable()


def operations() -> list[tuple[str, Call, Call]]:
    """(name, ours, bare) for issue, present and verify."""
    issuer_key = PrivateKey.generate("Ed25519")
    issuer = create_did_key(issuer_key.public)
    resolver = default_resolver()
    doc = resolver.resolve(issuer)
    kid = doc.absolute(doc.assertion_method[0])
    holder_key = PrivateKey.generate("Ed25519")
    verifier = "did:example:verifier"

    def issue() -> str:
        return sd_jwt.issue(CLAIMS, vct="https://example.org/person", issuer=issuer, signer_kid=kid,
                            signer=issuer_key, disclosable=list(CLAIMS), holder_jwk=holder_key.public.to_jwk(),
                            now=NOW)

    credential = issue()

    def present() -> str:
        return sd_jwt.present(credential, ["age_over_18"], holder_key=holder_key, audience=verifier,
                              nonce="n-0S6_WzA2Mj", now=NOW)

    presentation = present()

    def verify() -> object:
        return sd_jwt.verify(presentation, resolver=resolver, now=NOW, audience=verifier,
                             nonce="n-0S6_WzA2Mj", require_key_binding=True)

    assert verify().claims == {"age_over_18": True}  # type: ignore[attr-defined]
    message = presentation.encode()[:400]
    seed = issuer_key.secret
    _pk, sk = sodium.crypto_sign_seed_keypair(seed)
    signed = sodium.crypto_sign(message, sk)

    def bare_sign() -> object:
        return sodium.crypto_sign(message, sk)

    def bare_two_verifies() -> object:
        sodium.crypto_sign_open(signed, _pk)
        return sodium.crypto_sign_open(signed, _pk)

    # As the daemon issues them: 2 bits an entry (suspension), 1% revoked, 0.5% suspended.
    statuses = status_list.StatusList(bits=status_list.ISSUED_BITS)
    picked = random.Random(1).sample(range(statuses.size), statuses.size * 3 // 200)
    for n, index in enumerate(picked):
        statuses.set(index, status_list.SUSPENDED if n % 3 == 2 else status_list.REVOKED)
    uri = f"{issuer}/status/sd-jwt/0"

    def sign_list() -> str:
        return status_list.sign_token(statuses, uri=uri, issuer=issuer, kid=kid, key=issuer_key, now=NOW,
                                      ttl=3600)

    token = sign_list()

    def verify_list() -> object:
        return status_list.verify_token(token, resolver=resolver, now=NOW, uri=uri, issuer=issuer)

    assert verify_list().statuses == statuses  # type: ignore[attr-defined]
    packed = statuses.to_bytes()
    compressed = zlib.compress(packed, status_list.COMPRESSION_LEVEL)
    list_signed = sodium.crypto_sign(compressed, sk)

    def bare_compress_sign() -> object:
        return sodium.crypto_sign(zlib.compress(packed, status_list.COMPRESSION_LEVEL), sk)

    def bare_decompress_verify() -> object:
        zlib.decompress(compressed)
        return sodium.crypto_sign_open(list_signed, _pk)

    return [
        ("issue (5 claims, all disclosable)", issue, bare_sign),
        ("present (1 of 5, key-bound)", present, bare_sign),
        ("verify presentation", verify, bare_two_verifies),
        ("sign status list (131,072 x 2 bits, 1.5% set)", sign_list, bare_compress_sign),
        ("verify status list token", verify_list, bare_decompress_verify),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="windows per operation")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds per window")
    args = parser.parse_args(argv)
    print(f"{'operation':36s} {'ours ops/s':>11s} {'bare ops/s':>11s} {'ours/bare':>10s}")
    for name, ours, bare in operations():
        o, b = [], []
        for _ in range(args.rounds):
            o.append(rate(ours, args.budget))
            b.append(rate(bare, args.budget))
        ratio = statistics.median(x / y for x, y in zip(o, b, strict=True))
        print(f"{name:36s} {statistics.median(o):11,.0f} {statistics.median(b):11,.0f} {ratio:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

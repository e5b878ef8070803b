"""Keys: JWK / multikey codecs, signatures, ECDH and the invalid-curve defence."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.codec import b64u_encode
from protocols.errors import (
    BadSignatureError,
    DIDCommError,
    InvalidKeyError,
    UnsupportedAlgorithmError,
)
from protocols.keys import (
    EC_SIZES,
    KEY_AGREEMENT_CURVES,
    SECP256K1_ORDER,
    SIGNING_ALGS,
    PrivateKey,
    PublicKey,
)

ALL_CURVES = ["Ed25519", "X25519", "P-256", "P-384", "P-521", "secp256k1"]


@pytest.mark.parametrize("curve", ALL_CURVES)
def test_jwk_and_multikey_round_trip(curve: str) -> None:
    key = PrivateKey.generate(curve)
    assert PrivateKey.from_jwk(key.to_jwk()).public == key.public
    assert PublicKey.from_jwk(key.public.to_jwk()) == key.public
    assert PublicKey.from_multikey(key.public.to_multikey()) == key.public
    assert "d" not in key.public.to_jwk()
    assert "secret" not in repr(key) and b64u_encode(key.secret) not in repr(key)


@pytest.mark.parametrize("curve", list(SIGNING_ALGS))
def test_sign_verify_and_tamper(curve: str) -> None:
    key = PrivateKey.generate(curve)
    sig = key.sign(b"message")
    key.public.verify(sig, b"message")
    with pytest.raises(BadSignatureError):
        key.public.verify(sig, b"messagE")
    bad = bytearray(sig)
    bad[5] ^= 1
    with pytest.raises(BadSignatureError):
        key.public.verify(bytes(bad), b"message")
    with pytest.raises(BadSignatureError):
        key.public.verify(sig[:-1], b"message")


def test_es256k_signatures_are_low_s_and_high_s_is_accepted() -> None:
    key = PrivateKey.generate("secp256k1")
    for i in range(40):
        sig = key.sign(b"m%d" % i)
        s = int.from_bytes(sig[32:], "big")
        assert s <= SECP256K1_ORDER // 2
        # The high-S twin of a valid signature is valid too (other
        # implementations emit it); we accept both forms.
        high = sig[:32] + (SECP256K1_ORDER - s).to_bytes(32, "big")
        key.public.verify(high, b"m%d" % i)


@pytest.mark.parametrize("curve", KEY_AGREEMENT_CURVES)
def test_ecdh_agrees(curve: str) -> None:
    a, b = PrivateKey.generate(curve), PrivateKey.generate(curve)
    assert a.ecdh(b.public) == b.ecdh(a.public)


def test_ecdh_refuses_other_curve_and_signing_curves() -> None:
    with pytest.raises(InvalidKeyError):
        PrivateKey.generate("P-256").ecdh(PrivateKey.generate("P-384").public)
    k = PrivateKey.generate("secp256k1")
    with pytest.raises(UnsupportedAlgorithmError):
        k.ecdh(PrivateKey.generate("secp256k1").public)


def test_x25519_low_order_point_is_refused() -> None:
    zero = PublicKey.from_raw("X25519", bytes(32))
    with pytest.raises(InvalidKeyError):
        PrivateKey.generate("X25519").ecdh(zero)


@pytest.mark.parametrize("curve", ["P-256", "P-384", "P-521"])
def test_point_not_on_curve_is_rejected(curve: str) -> None:
    # encryption.md: a received NIST public key must be checked to lie on the
    # curve (invalid-curve attack).  Nudge y so the point leaves the curve.
    jwk = PrivateKey.generate(curve).public.to_jwk()
    size = EC_SIZES[curve]
    y = bytearray(PublicKey.from_jwk(jwk).y)
    y[-1] ^= 1
    jwk["y"] = b64u_encode(bytes(y))
    assert len(y) == size
    with pytest.raises(InvalidKeyError):
        PublicKey.from_jwk(jwk)


def test_private_jwk_must_match_public_members() -> None:
    a, b = PrivateKey.generate("Ed25519"), PrivateKey.generate("Ed25519")
    jwk = a.to_jwk()
    jwk["x"] = b.public.to_jwk()["x"]
    with pytest.raises(InvalidKeyError):
        PrivateKey.from_jwk(jwk)


def test_p256_signature_matches_cryptography() -> None:
    key = PrivateKey.generate("P-256")
    sig = key.sign(b"abc")
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    assert r > 0 and s > 0
    assert isinstance(key.public.ec_key, ec.EllipticCurvePublicKey)
    assert decode_dss_signature  # the DER codec is the one keys.py uses


jwk_values = st.dictionaries(
    st.sampled_from(["kty", "crv", "x", "y", "d", "kid"]),
    st.one_of(st.text(max_size=90), st.integers(), st.none(), st.sampled_from([*ALL_CURVES, "EC", "OKP"])),
)


@settings(max_examples=400)
@given(jwk_values)
def test_random_jwks_raise_only_typed_errors(jwk: dict[str, object]) -> None:
    for decode in (PublicKey.from_jwk, PrivateKey.from_jwk):
        with contextlib.suppress(DIDCommError):
            decode(jwk)


@settings(max_examples=300)
@given(st.text(max_size=120))
def test_random_multikeys_raise_only_typed_errors(value: str) -> None:
    with contextlib.suppress(DIDCommError):
        PublicKey.from_multikey(value)


def test_short_p521_coordinates_are_padded() -> None:
    # didcomm-python writes P-521 coordinates without their leading zero byte.
    for _ in range(300):
        key = PrivateKey.generate("P-521").public
        if key.x[0] == 0:
            break
    jwk = key.to_jwk()
    jwk["x"] = b64u_encode(key.x.lstrip(b"\0"))
    assert PublicKey.from_jwk(jwk) == key
    jwk["x"] = b64u_encode(b"\1" + key.x)
    with pytest.raises(InvalidKeyError):
        PublicKey.from_jwk(jwk)

"""jwe: the text and dict forms agree, and a malformed recipient list is named."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import jwe
from protocols.errors import AuthenticationTagError, MalformedMessageError, UnknownRecipientError
from protocols.keys import PrivateKey

KEYS = {f"did:example:bob#key-{i}": PrivateKey.generate("X25519") for i in range(3)}
RECIPIENTS = [jwe.Recipient(kid, key.public) for kid, key in KEYS.items()]
SENDER = ("did:example:alice#key-0", PrivateKey.generate("X25519"))


@pytest.mark.parametrize("sender", [None, SENDER])
@pytest.mark.parametrize("enc", jwe.ANON_ENCS)
def test_text_and_dict_forms_carry_the_same_members(
    sender: tuple[str, PrivateKey] | None, enc: str
) -> None:
    if sender is not None and enc not in jwe.AUTH_ENCS:
        return
    text = jwe.encrypt_json(b'{"id":"1"}', RECIPIENTS, enc=enc, sender=sender)
    as_dict = jwe.encrypt(b'{"id":"1"}', RECIPIENTS, enc=enc, sender=sender)
    parsed = json.loads(text)
    assert list(parsed) == list(as_dict)
    assert [r["header"]["kid"] for r in parsed["recipients"]] == list(KEYS)
    assert jwe.dumps(as_dict) == json.dumps(as_dict, separators=(",", ":"))
    for obj in (parsed, as_dict):
        for kid in KEYS:
            got = jwe.decrypt(
                jwe.parse(obj),
                lambda k, kid=kid: KEYS[k] if k == kid else None,
                None if sender is None else sender[1].public,
            )
            assert got == (b'{"id":"1"}', kid)


def _mutations() -> list[tuple[str, Any]]:
    return [
        ("recipients", []),
        ("recipients", "x"),
        ("recipients", [1]),
        ("recipients", [{"encrypted_key": "AA"}]),
        ("recipients", [{"header": [], "encrypted_key": "AA"}]),
        ("recipients", [{"header": {"kid": 7}, "encrypted_key": "AA"}]),
        ("recipients", [{"header": {"kid": "k"}}]),
        ("recipients", [{"header": {"kid": "k"}, "encrypted_key": None}]),
        ("recipients", [{"header": {}, "encrypted_key": "AA"}]),
        ("recipients", [{"header": {"kid": "k"}, "encrypted_key": "AA"}, None]),
        ("iv", 5),
        ("tag", None),
        ("ciphertext", []),
        ("protected", {}),
    ]


@pytest.mark.parametrize(("member", "value"), _mutations())
def test_malformed_members_raise_malformed(member: str, value: Any) -> None:
    obj = copy.deepcopy(jwe.encrypt(b"{}", RECIPIENTS))
    obj[member] = value
    with pytest.raises(MalformedMessageError):
        jwe.parse(obj)


def test_only_our_encrypted_key_is_decoded() -> None:
    # Another recipient's encrypted_key is not even base64url: we never read it.
    obj = jwe.encrypt(b"{}", RECIPIENTS)
    obj["recipients"][1]["encrypted_key"] = "*not base64*"
    kid = RECIPIENTS[0].kid
    assert jwe.decrypt(jwe.parse(obj), lambda k: KEYS[k] if k == kid else None)[1] == kid
    with pytest.raises(UnknownRecipientError):
        jwe.decrypt(jwe.parse(obj), lambda k: None)


@given(plaintext=st.binary(max_size=300), aad=st.binary(max_size=64), flip=st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_xc20p_through_libsodium_directly_and_through_pynacl_agree(
    plaintext: bytes, aad: bytes, flip: int
) -> None:
    # The content cipher calls libsodium through PyNaCl's cffi module, or through
    # PyNaCl's public wrappers where a release has no such module: the same bytes
    # either way, and a changed byte is the same typed error.
    cek = os.urandom(32)
    iv, ct, tag = jwe.encrypt_content("XC20P", cek, plaintext, aad)
    saved = jwe._ffi, jwe._sodium
    try:
        jwe._ffi = jwe._sodium = None
        assert jwe.decrypt_content("XC20P", cek, iv, ct, tag, aad) == plaintext
        iv2, ct2, tag2 = jwe.encrypt_content("XC20P", cek, plaintext, aad)
        bad = bytearray(ct2 + tag2)
        if bad:
            bad[flip % len(bad)] ^= 1
        with pytest.raises(AuthenticationTagError):
            jwe.decrypt_content("XC20P", cek, iv2, bytes(bad[: len(ct2)]), bytes(bad[len(ct2):]), aad)
    finally:
        jwe._ffi, jwe._sodium = saved
    assert jwe.decrypt_content("XC20P", cek, iv2, ct2, tag2, aad) == plaintext

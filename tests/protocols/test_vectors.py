"""The DIDComm v2.1 appendix test vectors, unpacked by our envelope.

Every vector of ``appendix.md`` (extracted to ``tests/vectors/*.json``)
unpacks with the appendix DID documents and Alice's and Bob's keys to the
message and the metadata recorded next to it; the same vectors, damaged,
fail with a typed :class:`~protocols.errors.DIDCommError` and nothing else.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.codec import b64u_encode, json_bytes
from protocols.envelope import unpack
from protocols.errors import (
    BadSignatureError,
    CryptoError,
    DecryptionError,
    DIDCommError,
    ExpiredMessageError,
    MalformedMessageError,
)
from protocols.secrets import InMemorySecrets
from tests import vectors as vector_files

MESSAGE_VECTORS = vector_files.message_vectors()
NAMES = [v["name"] for v in MESSAGE_VECTORS]
ENCRYPTED_NAMES = [v["name"] for v in MESSAGE_VECTORS if v["expected_metadata"]["encrypted"]]
SIGNED_NAMES = [
    v["name"]
    for v in MESSAGE_VECTORS
    if v["expected_metadata"]["non_repudiation"] and not v["expected_metadata"]["encrypted"]
]
PROTECTED_NAMES = SIGNED_NAMES + ENCRYPTED_NAMES

#: A moment inside every vector's validity (created 1516269022, expires 1516385931).
VECTOR_NOW = 1516300000
#: Characters a mutation may write: JSON punctuation, base64url, letters.
MUTATION_ALPHABET = '{}[]":,. \\0123456789abcdefABCDEF-_xyzXYZ'


def packed_text(vector: dict[str, Any]) -> str:
    packed = vector["packed"]
    return packed if isinstance(packed, str) else json.dumps(packed)


def selected(metadata: Any, expected: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``metadata`` that the vector records."""
    as_json = metadata.to_json()
    return {name: as_json[name] for name in expected}


@pytest.mark.parametrize("name", NAMES)
def test_vector_unpacks_to_expected_message_and_metadata(
    name: str, vectors: dict[str, Any], appendix_resolver: Any, appendix_secrets: Any
) -> None:
    vector = vectors["by_name"][name]
    result = unpack(packed_text(vector), resolver=appendix_resolver, secrets=appendix_secrets)
    assert result.message == vector["expected_message"]
    assert selected(result.metadata, vector["expected_metadata"]) == vector["expected_metadata"]


@pytest.mark.parametrize("name", NAMES)
def test_vector_is_valid_until_it_expires(
    name: str, vectors: dict[str, Any], appendix_resolver: Any, appendix_secrets: Any
) -> None:
    vector = vectors["by_name"][name]
    text = packed_text(vector)
    result = unpack(text, resolver=appendix_resolver, secrets=appendix_secrets, now=VECTOR_NOW)
    assert result.message == vector["expected_message"]
    expires = vector["expected_message"]["expires_time"]
    with pytest.raises(ExpiredMessageError):
        unpack(text, resolver=appendix_resolver, secrets=appendix_secrets, now=expires)


@pytest.mark.parametrize("name", PROTECTED_NAMES)
def test_vector_unpacks_from_bytes_and_pretty_json(
    name: str, vectors: dict[str, Any], appendix_resolver: Any, appendix_secrets: Any
) -> None:
    vector = vectors["by_name"][name]
    # The appendix prints them indented by three spaces; a transport hands us bytes.
    for form in (json.dumps(vector["packed"], indent=3), packed_text(vector).encode()):
        result = unpack(form, resolver=appendix_resolver, secrets=appendix_secrets)
        assert result.message == vector["expected_message"]


@pytest.mark.parametrize("name", ENCRYPTED_NAMES)
def test_encrypted_vector_needs_a_recipient_key(
    name: str, vectors: dict[str, Any], appendix_resolver: Any
) -> None:
    alice_only = InMemorySecrets(vectors["alice_secrets"])
    with pytest.raises(DIDCommError):
        unpack(
            packed_text(vectors["by_name"][name]), resolver=appendix_resolver, secrets=alice_only
        )


@pytest.mark.parametrize("name", ENCRYPTED_NAMES)
def test_encrypted_vector_with_changed_ciphertext_or_tag_fails(
    name: str, vectors: dict[str, Any], appendix_resolver: Any, appendix_secrets: Any
) -> None:
    for member in ("ciphertext", "tag"):
        packed = copy.deepcopy(vectors["by_name"][name]["packed"])
        value = packed[member]
        packed[member] = ("B" if value[0] == "A" else "A") + value[1:]
        with pytest.raises(DecryptionError):
            unpack(json.dumps(packed), resolver=appendix_resolver, secrets=appendix_secrets)


@pytest.mark.parametrize("name", ENCRYPTED_NAMES)
def test_encrypted_vector_with_every_wrapped_key_changed_fails(
    name: str, vectors: dict[str, Any], appendix_resolver: Any, appendix_secrets: Any
) -> None:
    packed = copy.deepcopy(vectors["by_name"][name]["packed"])
    for recipient in packed["recipients"]:
        key = recipient["encrypted_key"]
        recipient["encrypted_key"] = ("B" if key[0] == "A" else "A") + key[1:]
    with pytest.raises(CryptoError):
        unpack(json.dumps(packed), resolver=appendix_resolver, secrets=appendix_secrets)


@pytest.mark.parametrize("name", SIGNED_NAMES)
def test_signed_vector_with_changed_payload_or_signer_fails(
    name: str, vectors: dict[str, Any], appendix_resolver: Any, appendix_secrets: Any
) -> None:
    vector = vectors["by_name"][name]
    changed_payload = copy.deepcopy(vector["packed"])
    message = dict(vector["expected_message"], id="1234567891")
    changed_payload["payload"] = b64u_encode(json_bytes(message))
    with pytest.raises(BadSignatureError):
        unpack(json.dumps(changed_payload), resolver=appendix_resolver, secrets=appendix_secrets)

    # Alice's other authentication keys are real keys of the right DID, but
    # not the one that signed.
    for other in ("did:example:alice#key-1", "did:example:alice#key-2", "did:example:alice#key-3"):
        packed = copy.deepcopy(vector["packed"])
        if packed["signatures"][0]["header"]["kid"] == other:
            continue
        packed["signatures"][0]["header"]["kid"] = other
        with pytest.raises(DIDCommError):
            unpack(json.dumps(packed), resolver=appendix_resolver, secrets=appendix_secrets)


@pytest.mark.parametrize("text", ["", "{", "[]", "null", '"x"', "{}", '{"ciphertext": 1}'])
def test_garbage_is_malformed(text: str, appendix_resolver: Any, appendix_secrets: Any) -> None:
    with pytest.raises(MalformedMessageError):
        unpack(text, resolver=appendix_resolver, secrets=appendix_secrets)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(PROTECTED_NAMES),
    position=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    replacement=st.text(alphabet=MUTATION_ALPHABET, min_size=0, max_size=3),
    width=st.integers(min_value=1, max_value=3),
)
def test_damaged_vector_gives_the_same_message_or_a_typed_error(
    name: str,
    position: float,
    replacement: str,
    width: int,
    vectors: dict[str, Any],
    appendix_resolver: Any,
    appendix_secrets: Any,
) -> None:
    """Overwrite a few characters anywhere: never a crash, never another message.

    Some damage is harmless (whitespace, a recipient's kid when another
    recipient still works, base64 padding bits); anything else must be a
    DIDCommError, the one kind of failure the daemon turns into a
    problem-report.
    """
    vector = vectors["by_name"][name]
    text = packed_text(vector)
    at = int(position * len(text))
    damaged = text[:at] + replacement + text[at + width :]
    try:
        result = unpack(damaged, resolver=appendix_resolver, secrets=appendix_secrets)
    except DIDCommError:
        return
    assert result.message == vector["expected_message"]


def test_signed_and_encrypted_vectors_share_one_message(vectors: dict[str, Any]) -> None:
    """The errata: one message (``http://``, with ``typ``) behind every protected vector."""
    messages = [vectors["by_name"][name]["expected_message"] for name in PROTECTED_NAMES]
    assert all(m == messages[0] for m in messages)
    assert messages[0]["type"].startswith("http://example.com/")
    assert messages[0]["typ"] == "application/didcomm-plain+json"
    plain = vectors["by_name"]["plaintext_c1"]["expected_message"]
    assert {k: v for k, v in messages[0].items() if k not in ("typ", "type")} == {
        k: v for k, v in plain.items() if k != "type"
    }


def test_bob_secrets_have_a_kid_without_trailing_space(vectors: dict[str, Any]) -> None:
    """The errata: A.2 writes ``"kid "``; the extracted file must not."""
    for jwk in vectors["bob_secrets"]:
        assert jwk["kid"].startswith("did:example:bob#")
        assert "kid " not in jwk

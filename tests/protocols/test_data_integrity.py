"""VC 2.0 with Data Integrity ``eddsa-jcs-2022``: the W3C vector, then our profile.

The vector (``tests/vectors/vc_di_eddsa/``, from w3c/vc-di-eddsa) is
reproduced step by step: the key pair, the canonical document and proof
configuration, both hashes and their concatenation, the signature and the
signed credential.  Then credentials and presentations signed with did:key
keys: they verify, and every change, wrong purpose, challenge, domain,
signer or time fails with a typed error -- as does random input.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.data_integrity import (
    MAX_DOCUMENT_BYTES,
    MAX_PRESENTED_CREDENTIALS,
    VC_CONTEXT_V2,
    create_proof,
    hash_data,
    parse_datetime,
    parse_document,
    proof_config,
    sign_credential,
    sign_presentation,
    verify,
    verify_credential,
    verify_presentation,
    verify_proof,
)
from protocols.did.did_key import create_did_key
from protocols.did.resolver import default_resolver
from protocols.errors import (
    CanonicalizationError,
    CredentialError,
    CredentialExpiredError,
    CredentialIssuerError,
    CredentialNotYetValidError,
    CredentialSignatureError,
    CredentialTooLargeError,
    DIDCommError,
    MalformedCredentialError,
    PresentationHolderError,
    ProofChallengeError,
    ProofDomainError,
    ProofError,
    ProofPurposeError,
    UnsupportedCredentialError,
)
from protocols.jcs import canonicalize
from protocols.keys import PrivateKey
from protocols.multibase import b58decode, b58encode, varint_decode

VECTORS = Path(__file__).parent.parent / "vectors" / "vc_di_eddsa"
#: Multicodec ed25519-priv, the prefix of the vector's privateKeyMultibase.
ED25519_PRIV_MULTICODEC = 0x1300


def _text(name: str) -> str:
    return (VECTORS / name).read_text("utf-8").strip()


def _json(name: str) -> Any:
    return json.loads(_text(name))


def _vector_key() -> PrivateKey:
    pair = _json("keyPair.json")
    raw = b58decode(pair["privateKeyMultibase"].removeprefix("z"))
    code, used = varint_decode(raw)
    assert code == ED25519_PRIV_MULTICODEC
    return PrivateKey.from_raw("Ed25519", raw[used:])


# -- the W3C eddsa-jcs-2022 test vector -----------------------------------------------


def test_vector_key_pair() -> None:
    key = _vector_key()
    assert key.public.to_multikey() == _json("keyPair.json")["publicKeyMultibase"]


def test_vector_intermediate_values() -> None:
    unsigned = _json("unsigned.json")
    options = _json("proofConfigJCS.json")
    canonical_document = canonicalize(unsigned)
    canonical_config = proof_config(options)
    assert canonical_document.decode() == _text("canonDocJCS.txt")
    assert canonical_config.decode() == _text("proofCanonJCS.txt")
    assert hashlib.sha256(canonical_document).hexdigest() == _text("docHashJCS.txt")
    assert hashlib.sha256(canonical_config).hexdigest() == _text("proofHashJCS.txt")
    combined = hash_data(unsigned, options)
    # The proof configuration's hash comes first.
    assert combined.hex() == _text("combinedHashJCS.txt")
    assert combined.hex() == _text("proofHashJCS.txt") + _text("docHashJCS.txt")
    signature = _vector_key().sign(combined)
    assert signature.hex() == _text("sigHexJCS.txt")
    assert "z" + b58encode(signature) == _text("sigBTC58JCS.txt")


def test_vector_signed_credential_reproduced() -> None:
    options = _json("proofConfigJCS.json")
    signed = create_proof(
        _json("unsigned.json"),
        key=_vector_key(),
        verification_method=options["verificationMethod"],
        created=options["created"],
    )
    assert signed == _json("signedJCS.json")
    # Same members in the same order as the spec's proof.
    assert list(signed["proof"]) == list(_json("signedJCS.json")["proof"])


def test_vector_verifies() -> None:
    signed = _json("signedJCS.json")
    verified = verify_proof(signed, resolver=default_resolver(), now="2024-01-01T00:00:00Z")
    did = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
    assert verified.controller == did
    assert verified.verification_method == signed["proof"]["verificationMethod"]
    assert verified.document == _json("unsigned.json")
    assert verified.types == ("VerifiableCredential", "AlumniCredential")


def test_vector_is_not_accepted_by_our_profile() -> None:
    # Its issuer is an https URL, not the DID whose key signed: our profile
    # binds the signature to the issuer, so the full check refuses it.
    with pytest.raises(CredentialIssuerError):
        verify(_json("signedJCS.json"), resolver=default_resolver())


def test_vector_tampered() -> None:
    signed = _json("signedJCS.json")
    signed["credentialSubject"]["alumniOf"] = "The School of Counterexamples"
    with pytest.raises(CredentialSignatureError):
        verify_proof(signed, resolver=default_resolver())


# -- our profile: did:key issuers and holders ----------------------------------------------

ISSUER_KEY = PrivateKey.generate("Ed25519")
ISSUER = create_did_key(ISSUER_KEY.public)
HOLDER_KEY = PrivateKey.generate("Ed25519")
HOLDER = create_did_key(HOLDER_KEY.public)
RESOLVER = default_resolver()
CREATED = "2026-01-01T00:00:00Z"
NOW = "2026-06-01T12:00:00Z"
CHALLENGE = "c0ffee-1"
DOMAIN = "did:example:verifier"


def _vm(did: str) -> str:
    return f"{did}#{did.removeprefix('did:key:')}"


def _credential(**extra: Any) -> dict[str, Any]:
    credential: dict[str, Any] = {
        "@context": [VC_CONTEXT_V2, "https://www.w3.org/ns/credentials/examples/v2"],
        "id": "urn:uuid:0a8f3b6e-1d43-4c8e-9d0b-7c6b1d2e3f40",
        "type": ["VerifiableCredential", "ExampleAgeCredential"],
        "issuer": ISSUER,
        "validFrom": "2026-01-01T00:00:00Z",
        "validUntil": "2027-01-01T00:00:00Z",
        "credentialSubject": {"id": HOLDER, "ageOver": 18, "score": 0.25, "tags": ["a", "b"]},
    }
    credential.update(extra)
    return credential


def _signed(**extra: Any) -> dict[str, Any]:
    return sign_credential(
        _credential(**extra), key=ISSUER_KEY, verification_method=_vm(ISSUER), created=CREATED
    )


def _presentation(credentials: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "@context": [VC_CONTEXT_V2],
        "type": ["VerifiablePresentation"],
        "holder": HOLDER,
        "verifiableCredential": [_signed()] if credentials is None else credentials,
    }


def _signed_presentation(**kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "key": HOLDER_KEY,
        "verification_method": _vm(HOLDER),
        "created": CREATED,
        "challenge": CHALLENGE,
        "domain": DOMAIN,
    }
    options.update(kwargs)
    presentation = options.pop("presentation", None) or _presentation()
    return sign_presentation(presentation, **options)


SIGNED = _signed()


def test_credential_round_trip() -> None:
    assert SIGNED["proof"]["proofPurpose"] == "assertionMethod"
    assert SIGNED["proof"]["@context"] == SIGNED["@context"]
    assert SIGNED["proof"]["proofValue"].startswith("z")
    verified = verify(SIGNED, resolver=RESOLVER, now=NOW)
    assert verified.controller == ISSUER
    assert verified.verification_method == _vm(ISSUER)
    assert verified.purpose == "assertionMethod"
    assert verified.document == _credential()
    assert verified.credentials == ()
    assert verify_credential(SIGNED, resolver=RESOLVER, now=NOW) == verified
    # The signature survives a JSON round trip and a re-ordering of members.
    reordered = json.loads(json.dumps(dict(reversed(list(SIGNED.items())))))
    assert verify(reordered, resolver=RESOLVER).controller == ISSUER


def test_issuer_as_object_and_no_validity_period() -> None:
    credential = _credential(issuer={"id": ISSUER, "name": "Example University"})
    del credential["validFrom"], credential["validUntil"]
    signed = sign_credential(
        credential, key=ISSUER_KEY, verification_method=_vm(ISSUER), created=CREATED
    )
    assert verify(signed, resolver=RESOLVER, now="1999-01-01T00:00:00Z").controller == ISSUER


def test_signing_does_not_change_the_input() -> None:
    credential = _credential()
    before = copy.deepcopy(credential)
    signed = sign_credential(
        credential, key=ISSUER_KEY, verification_method=_vm(ISSUER), created=CREATED
    )
    assert credential == before
    signed["credentialSubject"]["ageOver"] = 99
    assert credential == before


def test_presentation_round_trip() -> None:
    other_issuer = PrivateKey.generate("Ed25519")
    other_did = create_did_key(other_issuer.public)
    second = sign_credential(
        _credential(issuer=other_did),
        key=other_issuer,
        verification_method=_vm(other_did),
        created=CREATED,
    )
    signed = _signed_presentation(presentation=_presentation([SIGNED, second]))
    assert signed["proof"]["proofPurpose"] == "authentication"
    assert signed["proof"]["challenge"] == CHALLENGE
    verified = verify_presentation(
        signed, resolver=RESOLVER, challenge=CHALLENGE, domain=DOMAIN, now=NOW
    )
    assert verified.controller == HOLDER
    assert verified.purpose == "authentication"
    assert [c.controller for c in verified.credentials] == [ISSUER, other_did]
    assert verified.credentials[0].document == _credential()
    # The generic entry point says the same.
    assert (
        verify(
            signed,
            resolver=RESOLVER,
            expected_purpose="authentication",
            challenge=CHALLENGE,
            domain=DOMAIN,
            now=NOW,
        )
        == verified
    )


def test_presentation_without_credentials_and_domain_list() -> None:
    presentation = _presentation([])
    signed = create_proof(
        presentation,
        key=HOLDER_KEY,
        verification_method=_vm(HOLDER),
        created=CREATED,
        proof_purpose="authentication",
        challenge=CHALLENGE,
    )
    # domain may be a list naming several verifiers; one of them must be ours.
    proof = signed.pop("proof")
    proof.pop("proofValue")
    proof["domain"] = ["did:example:other", DOMAIN]
    resigned = dict(presentation, proof=proof)
    proof["proofValue"] = "z" + b58encode(HOLDER_KEY.sign(hash_data(presentation, proof)))
    verified = verify_presentation(resigned, resolver=RESOLVER, challenge=CHALLENGE, domain=DOMAIN)
    assert verified.credentials == ()
    with pytest.raises(ProofDomainError):
        verify_presentation(resigned, resolver=RESOLVER, challenge=CHALLENGE, domain="did:x:y")


def test_appended_context_still_verifies() -> None:
    # Verify Proof step 4: the document's @context must *start with* the
    # proof's, and the document is hashed with the proof's @context.
    extended = copy.deepcopy(SIGNED)
    extended["@context"].append("https://example.org/extra/v1")
    assert verify(extended, resolver=RESOLVER).controller == ISSUER
    reordered = copy.deepcopy(SIGNED)
    reordered["@context"].reverse()
    with pytest.raises(MalformedCredentialError):
        verify(reordered, resolver=RESOLVER)
    replaced = copy.deepcopy(SIGNED)
    replaced["@context"][1] = "https://example.org/other/v1"
    with pytest.raises(ProofError):
        verify(replaced, resolver=RESOLVER)


# -- purposes, challenges, domains, times --------------------------------------------------


def test_wrong_purpose() -> None:
    with pytest.raises(ProofPurposeError):
        verify(SIGNED, resolver=RESOLVER, expected_purpose="authentication")
    # A credential signed for authentication is not an assertion.
    signed = sign_credential(
        _credential(),
        key=ISSUER_KEY,
        verification_method=_vm(ISSUER),
        created=CREATED,
        proof_purpose="authentication",
    )
    with pytest.raises(ProofPurposeError):
        verify(signed, resolver=RESOLVER)
    with pytest.raises(ProofPurposeError):
        verify(SIGNED, resolver=RESOLVER, expected_purpose="keyAgreement")
    with pytest.raises(ProofPurposeError):
        sign_credential(
            _credential(),
            key=ISSUER_KEY,
            verification_method=_vm(ISSUER),
            created=CREATED,
            proof_purpose="keyAgreement",
        )


def test_key_not_listed_under_the_purpose() -> None:
    # A DID whose only key is an authentication key cannot issue credentials.
    key = PrivateKey.generate("Ed25519")
    did = "did:example:auth-only"
    vm = f"{did}#key-1"
    doc = {
        "id": did,
        "verificationMethod": [
            {
                "id": vm,
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key.public.to_multikey(),
            }
        ],
        "authentication": [vm],
    }
    resolver = default_resolver([doc])
    signed = sign_credential(
        _credential(issuer=did), key=key, verification_method=vm, created=CREATED
    )
    with pytest.raises(CredentialIssuerError, match="assertionMethod"):
        verify(signed, resolver=resolver)
    # ... but it can sign a presentation.
    presentation = sign_presentation(
        dict(_presentation([]), holder=did),
        key=key,
        verification_method=vm,
        created=CREATED,
        challenge=CHALLENGE,
    )
    assert verify_presentation(presentation, resolver=resolver, challenge=CHALLENGE).controller == (
        did
    )
    # Unknown DIDs and unknown keys of known DIDs are issuer errors too.
    with pytest.raises(CredentialIssuerError):
        verify(signed, resolver=default_resolver())
    other = sign_credential(
        _credential(issuer=did), key=key, verification_method=f"{did}#key-2", created=CREATED
    )
    with pytest.raises(CredentialIssuerError):
        verify(other, resolver=resolver)


def test_challenge_and_domain() -> None:
    signed = _signed_presentation()
    with pytest.raises(ProofChallengeError):
        verify_presentation(signed, resolver=RESOLVER, challenge="another", domain=DOMAIN)
    with pytest.raises(ProofDomainError):
        verify_presentation(
            signed, resolver=RESOLVER, challenge=CHALLENGE, domain="did:example:other"
        )
    # A verifier without a domain accepts any; one with a domain needs it in the proof.
    assert verify_presentation(signed, resolver=RESOLVER, challenge=CHALLENGE).controller == HOLDER
    no_domain = _signed_presentation(domain=None)
    assert "domain" not in no_domain["proof"]
    with pytest.raises(ProofDomainError):
        verify_presentation(no_domain, resolver=RESOLVER, challenge=CHALLENGE, domain=DOMAIN)
    # A credential's proof has no challenge: asking for one fails.
    with pytest.raises(ProofChallengeError):
        verify(SIGNED, resolver=RESOLVER, challenge=CHALLENGE)


def test_validity_period() -> None:
    verify(SIGNED, resolver=RESOLVER, now="2026-01-01T00:00:00Z")
    verify(SIGNED, resolver=RESOLVER, now="2027-01-01T00:00:00Z")
    with pytest.raises(CredentialExpiredError):
        verify(SIGNED, resolver=RESOLVER, now="2027-01-01T00:00:01Z")
    with pytest.raises(CredentialNotYetValidError):
        verify(SIGNED, resolver=RESOLVER, now="2025-12-31T23:59:59Z")
    # Offsets count: 01:00+02:00 is 23:00Z the day before.
    with pytest.raises(CredentialNotYetValidError):
        verify(SIGNED, resolver=RESOLVER, now="2026-01-01T01:00:00+02:00")
    with pytest.raises(MalformedCredentialError):
        verify(SIGNED, resolver=RESOLVER, now="yesterday")
    # An expired credential inside a fresh presentation fails the presentation.
    signed = _signed_presentation()
    with pytest.raises(CredentialExpiredError):
        verify_presentation(
            signed, resolver=RESOLVER, challenge=CHALLENGE, now="2030-01-01T00:00:00Z"
        )


def test_proof_expires() -> None:
    proof_options = {"expires": "2026-02-01T00:00:00Z"}
    unsigned = _credential()
    proof: dict[str, Any] = {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "created": CREATED,
        "verificationMethod": _vm(ISSUER),
        "proofPurpose": "assertionMethod",
        "@context": unsigned["@context"],
        **proof_options,
    }
    proof["proofValue"] = "z" + b58encode(ISSUER_KEY.sign(hash_data(unsigned, proof)))
    signed = dict(unsigned, proof=proof)
    assert verify(signed, resolver=RESOLVER, now="2026-01-15T00:00:00Z").controller == ISSUER
    with pytest.raises(CredentialExpiredError, match="proof"):
        verify(signed, resolver=RESOLVER, now="2026-03-01T00:00:00Z")


def test_parse_datetime() -> None:
    assert parse_datetime("2026-01-01T00:00:00Z", "t").isoformat() == "2026-01-01T00:00:00+00:00"
    assert parse_datetime("2026-01-01T00:00:00", "t") == parse_datetime("2026-01-01T00:00:00Z", "t")
    assert parse_datetime("2026-01-01T00:00:00.1234567-01:30", "t").microsecond == 123456
    assert parse_datetime("2026-12-31T24:00:00Z", "t") == parse_datetime(
        "2027-01-01T00:00:00Z", "t"
    )
    for bad in ["2026-02-30T00:00:00Z", "2026-01-01", "2026-01-01T00:00Z", "2026-13-01T00:00:00Z",
                "2026-01-01T00:00:00+15:00", "0000-01-01T00:00:00Z", "2026-01-01T24:00:00.5Z",
                "\u0662026-01-01T00:00:00Z", 20260101, None, "x" * 100]:  # fmt: skip
        with pytest.raises(MalformedCredentialError):
            parse_datetime(bad, "t")


# -- signers ----------------------------------------------------------------------------------


def test_issuer_and_holder_binding() -> None:
    # We do not sign a credential with a key of another DID ...
    with pytest.raises(CredentialIssuerError):
        sign_credential(
            _credential(), key=HOLDER_KEY, verification_method=_vm(HOLDER), created=CREATED
        )
    with pytest.raises(CredentialIssuerError):
        sign_credential(_credential(), key=ISSUER_KEY, verification_method=ISSUER, created=CREATED)
    # ... and a verifier refuses one that another DID's key signed.
    forged = create_proof(
        _credential(), key=HOLDER_KEY, verification_method=_vm(HOLDER), created=CREATED
    )
    with pytest.raises(CredentialIssuerError):
        verify(forged, resolver=RESOLVER)
    # A presentation signed by someone other than its holder.
    with pytest.raises(PresentationHolderError):
        _signed_presentation(key=ISSUER_KEY, verification_method=_vm(ISSUER))
    stolen = create_proof(
        _presentation(),
        key=ISSUER_KEY,
        verification_method=_vm(ISSUER),
        created=CREATED,
        proof_purpose="authentication",
        challenge=CHALLENGE,
    )
    with pytest.raises(PresentationHolderError):
        verify_presentation(stolen, resolver=RESOLVER, challenge=CHALLENGE)
    holderless = _presentation()
    del holderless["holder"]
    with pytest.raises(PresentationHolderError):
        sign_presentation(
            holderless,
            key=HOLDER_KEY,
            verification_method=_vm(HOLDER),
            created=CREATED,
            challenge=CHALLENGE,
        )


def test_key_in_a_did_key_document_of_another_key() -> None:
    # The right DID, but the proof was made with another key: bad signature.
    forged = create_proof(
        _credential(), key=HOLDER_KEY, verification_method=_vm(ISSUER), created=CREATED
    )
    with pytest.raises(CredentialSignatureError):
        verify(forged, resolver=RESOLVER)


def test_only_ed25519_keys() -> None:
    p256 = PrivateKey.generate("P-256")
    did = create_did_key(p256.public)
    with pytest.raises(UnsupportedCredentialError):
        sign_credential(
            _credential(issuer=did), key=p256, verification_method=_vm(did), created=CREATED
        )
    # A P-256 key named as the Ed25519 signer is refused before any signature check.
    proof = dict(SIGNED["proof"], verificationMethod=_vm(did))
    with pytest.raises(DIDCommError):
        verify(dict(SIGNED, issuer=did, proof=proof), resolver=RESOLVER)


# -- shapes and limits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"@context": ["https://www.w3.org/2018/credentials/v1"]}, MalformedCredentialError),
        ({"@context": []}, MalformedCredentialError),
        ({"@context": [VC_CONTEXT_V2, 5]}, MalformedCredentialError),
        ({"type": ["ExampleAgeCredential"]}, MalformedCredentialError),
        ({"type": "VerifiableCredential"}, None),
        ({"type": [1]}, MalformedCredentialError),
        ({"issuer": None}, MalformedCredentialError),
        ({"issuer": {"name": "no id"}}, MalformedCredentialError),
        ({"credentialSubject": {}}, MalformedCredentialError),
        ({"credentialSubject": []}, MalformedCredentialError),
        ({"credentialSubject": "me"}, MalformedCredentialError),
        ({"validFrom": "2026-01-01"}, MalformedCredentialError),
        ({"validUntil": "2025-01-01T00:00:00Z"}, MalformedCredentialError),
        ({"id": 7}, MalformedCredentialError),
        ({"score": float("nan")}, CanonicalizationError),
        ({"proof": {}}, UnsupportedCredentialError),
    ],
)
def test_credential_shape(change: dict[str, Any], error: type[Exception] | None) -> None:
    credential = _credential(**change)
    if error is None:
        signed = sign_credential(
            credential, key=ISSUER_KEY, verification_method=_vm(ISSUER), created=CREATED
        )
        assert verify(signed, resolver=RESOLVER).controller == ISSUER
        return
    with pytest.raises(error):
        sign_credential(
            credential, key=ISSUER_KEY, verification_method=_vm(ISSUER), created=CREATED
        )


@pytest.mark.parametrize(
    ("proof_change", "error"),
    [
        ({"type": "Ed25519Signature2020"}, UnsupportedCredentialError),
        ({"cryptosuite": "eddsa-rdfc-2022"}, UnsupportedCredentialError),
        ({"previousProof": "urn:uuid:1"}, UnsupportedCredentialError),
        ({"proofValue": "u" + "A" * 80}, ProofError),
        ({"proofValue": "z" + "1" * 200}, ProofError),
        ({"proofValue": "z0OIl"}, ProofError),
        ({"proofValue": "z" + b58encode(b"\x01" * 63)}, ProofError),
        ({"proofValue": 5}, ProofError),
        ({"verificationMethod": 5}, ProofError),
        ({"verificationMethod": "not a did"}, CredentialIssuerError),
        ({"verificationMethod": ISSUER}, CredentialIssuerError),
        ({"created": "soon"}, MalformedCredentialError),
        ({"expires": "later"}, MalformedCredentialError),
        ({"challenge": 5}, ProofError),
        ({"domain": [5]}, ProofError),
        ({"domain": ["d"] * 17}, ProofError),
        ({"@context": 5}, MalformedCredentialError),
    ],
)
def test_proof_shape(proof_change: dict[str, Any], error: type[Exception]) -> None:
    document = dict(SIGNED, proof=dict(SIGNED["proof"], **proof_change))
    with pytest.raises(error):
        verify(document, resolver=RESOLVER)


def test_no_proof_or_proof_sets() -> None:
    with pytest.raises(ProofError):
        verify(_credential(), resolver=RESOLVER)
    with pytest.raises(UnsupportedCredentialError):
        verify(dict(SIGNED, proof=[SIGNED["proof"]]), resolver=RESOLVER)
    with pytest.raises(ProofError):
        verify(dict(SIGNED, proof="z123"), resolver=RESOLVER)


def test_size_limits() -> None:
    big = _credential(padding="x" * MAX_DOCUMENT_BYTES)
    with pytest.raises(CredentialTooLargeError):
        sign_credential(big, key=ISSUER_KEY, verification_method=_vm(ISSUER), created=CREATED)
    with pytest.raises(CredentialTooLargeError):
        verify(dict(big, proof=SIGNED["proof"]), resolver=RESOLVER)
    many = _presentation([SIGNED] * (MAX_PRESENTED_CREDENTIALS + 1))
    with pytest.raises(CredentialTooLargeError):
        _signed_presentation(presentation=many)
    deep: Any = "leaf"
    for _ in range(200):
        deep = {"a": deep}
    with pytest.raises(CanonicalizationError):
        verify(dict(SIGNED, credentialSubject={"id": HOLDER, "deep": deep}), resolver=RESOLVER)


def test_presentation_shape() -> None:
    with pytest.raises(UnsupportedCredentialError):
        _signed_presentation(
            presentation=_presentation([{"type": "EnvelopedVerifiableCredential", "id": "data:"}])
        )
    with pytest.raises(MalformedCredentialError):
        _signed_presentation(presentation=_presentation(["a credential"]))  # type: ignore[list-item]
    with pytest.raises(MalformedCredentialError):
        verify_presentation(SIGNED, resolver=RESOLVER, challenge=CHALLENGE)
    with pytest.raises(MalformedCredentialError):
        verify_credential(_signed_presentation(), resolver=RESOLVER)
    with pytest.raises(MalformedCredentialError):
        verify(dict(SIGNED, type=["SomethingElse"]), resolver=RESOLVER)
    # An unsigned credential inside a signed presentation is not accepted.
    unsigned_inside = _signed_presentation(presentation=_presentation([_credential()]))
    with pytest.raises(ProofError):
        verify_presentation(unsigned_inside, resolver=RESOLVER, challenge=CHALLENGE)


# -- properties ---------------------------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every member and element path of a JSON value (the value itself excluded)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return out
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


SIGNED_PRESENTATION = _signed_presentation()
TARGETS = {"credential": SIGNED, "presentation": SIGNED_PRESENTATION}


def _verify_target(name: str, document: Any) -> None:
    if name == "credential":
        verify(document, resolver=RESOLVER, now=NOW)
    else:
        verify_presentation(
            document, resolver=RESOLVER, challenge=CHALLENGE, domain=DOMAIN, now=NOW
        )


def _changed(value: Any, salt: str) -> Any:
    """A JSON value that canonicalises differently from ``value``."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + salt
    if isinstance(value, list):
        return [*value, salt]
    if isinstance(value, dict):
        return {**value, salt: salt}
    return salt


@st.composite
def tampered(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(sorted(TARGETS)))
    document = copy.deepcopy(TARGETS[name])
    path = draw(st.sampled_from(_paths(document)))
    parent: Any = document
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    action = draw(st.sampled_from(["change", "delete", "add"]))
    salt = draw(st.text(min_size=1, max_size=4))
    if action == "delete":
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[last + salt] = salt
    else:
        parent[last] = _changed(parent[last], salt)
    return name, document


@settings(max_examples=300)
@given(tampered())
def test_any_change_to_a_signed_document_fails_typed(case: tuple[str, dict[str, Any]]) -> None:
    name, document = case
    assert document != TARGETS[name]
    try:
        _verify_target(name, document)
    except CredentialError:
        return
    # The one change the spec allows: entries appended to the document's
    # @context after those the proof names.
    original = TARGETS[name]
    assert document["@context"][: len(original["@context"])] == original["@context"]
    assert {k: v for k, v in document.items() if k != "@context"} == {
        k: v for k, v in original.items() if k != "@context"
    }


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["VerifiableCredential", "VerifiablePresentation", VC_CONTEXT_V2, ISSUER]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "@context",
                    "type",
                    "issuer",
                    "holder",
                    "proof",
                    "proofValue",
                    "credentialSubject",
                    "validFrom",
                    "verificationMethod",
                    "cryptosuite",
                    "verifiableCredential",
                    "domain",
                ]
            )
            | st.text(max_size=5),
            children,
            max_size=6,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=400)
@given(json_values, st.sampled_from(["assertionMethod", "authentication", "nonsense"]))
def test_random_input_raises_only_typed_errors(value: Any, purpose: str) -> None:
    for document in (
        value,
        {"proof": value},
        dict(SIGNED, proof=value),
        dict(SIGNED, issuer=value),
    ):
        with pytest.raises(DIDCommError):
            verify(document, resolver=RESOLVER, expected_purpose=purpose, challenge="c", now=NOW)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.text(max_size=8).filter(lambda k: k not in {"id"}),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers(-(2**53), 2**53)
            | st.text(max_size=10)
            | st.floats(allow_nan=False, allow_infinity=False),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=5), children, max_size=3)
            ),
            max_leaves=10,
        ),
        max_size=5,
    )
)
def test_any_claims_round_trip(claims: dict[str, Any]) -> None:
    credential = _credential(credentialSubject={"id": HOLDER, **claims})
    signed = sign_credential(
        credential, key=ISSUER_KEY, verification_method=_vm(ISSUER), created=CREATED
    )
    verified = verify(json.loads(json.dumps(signed)), resolver=RESOLVER, now=NOW)
    assert verified.document["credentialSubject"] == json.loads(
        json.dumps(credential["credentialSubject"])
    )


def test_parse_document() -> None:
    text = json.dumps(SIGNED)
    assert verify(parse_document(text), resolver=RESOLVER).controller == ISSUER
    assert parse_document(text.encode()) == SIGNED
    for bad in [b"[1]", b"{", b'{"a": NaN}', b'{"a": "\\ud800"}', b"\xff", "x" * (MAX_DOCUMENT_BYTES + 1), 5]:  # fmt: skip
        with pytest.raises(MalformedCredentialError):
            parse_document(bad)  # type: ignore[arg-type]
    with pytest.raises(CredentialTooLargeError):
        parse_document(b" " * (MAX_DOCUMENT_BYTES + 1))


@settings(max_examples=300)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_parse_document_raises_only_typed_errors(data: bytes | str) -> None:
    try:
        document = parse_document(data)
    except MalformedCredentialError:
        return
    with pytest.raises(DIDCommError):
        verify(document, resolver=RESOLVER)


def test_authenticity_is_judged_before_validity() -> None:
    # A forged credential that is also expired reports the forgery.
    forged = copy.deepcopy(SIGNED)
    forged["validUntil"] = "2026-02-01T00:00:00Z"
    with pytest.raises(CredentialSignatureError):
        verify(forged, resolver=RESOLVER, now="2026-03-01T00:00:00Z")

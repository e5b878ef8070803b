"""W3C Verifiable Credentials 2.0 secured with Data Integrity ``eddsa-jcs-2022``.

Theory of operation
-------------------
A Data Integrity proof is a JSON object embedded in the document it
secures, under ``proof``.  For the ``eddsa-jcs-2022`` cryptosuite (W3C
"Data Integrity EdDSA Cryptosuites v1.0", section 3.3) the signed bytes are::

    hashData = SHA-256(JCS(proofConfig)) || SHA-256(JCS(unsecuredDocument))

-- the proof configuration's hash *first* -- where ``unsecuredDocument`` is
the document without ``proof``, ``proofConfig`` is the proof without
``proofValue`` (so ``type``, ``cryptosuite``, ``created``,
``verificationMethod``, ``proofPurpose``, and ``challenge``/``domain``/
``expires`` when present are all signed), and JCS is RFC 8785
(:mod:`protocols.jcs`).  When the document has an ``@context`` the proof
carries a copy; a verifier checks that the document's ``@context`` starts
with the proof's and hashes the document with the proof's ``@context``.
``proofValue`` is ``z`` + base58btc of the 64-byte Ed25519 signature.

The key is the ``verificationMethod`` DID URL, resolved with our
:class:`~protocols.did.resolver.DIDResolver`; it must be listed under the
verification relationship the verifier expects (``assertionMethod`` for a
credential, ``authentication`` for a presentation), and the DID it belongs
to must be the document's ``issuer`` (credential) or ``holder``
(presentation).  A presentation's proof must echo the verifier's
``challenge`` (and ``domain`` when the verifier has one), so it cannot be
replayed to another verifier or for another request.

Two layers:

- :func:`create_proof` / :func:`verify_proof` -- the cryptosuite alone, for
  any JSON document (the W3C test vector goes through here: its issuer is
  an https URL, not a DID).
- :func:`sign_credential`, :func:`sign_presentation`, :func:`verify`,
  :func:`verify_credential`, :func:`verify_presentation` -- the VC Data
  Model 2.0 profile didcommd uses: shape checks (``@context`` first entry
  :data:`VC_CONTEXT_V2`, ``type``, ``issuer``, ``credentialSubject``,
  ``validFrom``/``validUntil`` against ``now``), signer binding, and the
  embedded credentials of a presentation verified one by one.
  :func:`parse_document` reads an attachment's JSON text, size checked first.

A verified presentation proves that its holder signed it for this challenge
and that each credential's issuer signed that credential; it does not prove
that the holder is a credential's subject -- VC 2.0 leaves that to the
verifier's policy (compare ``credentialSubject.id`` with ``controller``).

Nothing here does I/O or reads the clock: times are XML Schema dateTime
strings passed in (``created``, ``now``).  Every failure is a
:class:`~protocols.errors.CredentialError` subclass; a time without a zone
offset is read as UTC.  One proof per document: proof sets and chains
(``proof`` as a list, ``previousProof``) are refused as unsupported.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .codec import json_object
from .did.document import RELATIONSHIPS
from .did.resolver import DIDResolver
from .did.syntax import split_did_url
from .errors import (
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
from .jcs import canonicalize
from .keys import PrivateKey, PublicKey
from .multibase import b58decode, b58encode

__all__ = [
    "CRYPTOSUITE",
    "MAX_CONTEXT_ENTRIES",
    "MAX_DOCUMENT_BYTES",
    "MAX_DOMAINS",
    "MAX_PRESENTED_CREDENTIALS",
    "MAX_PROOF_STRING",
    "MAX_PROOF_VALUE_CHARS",
    "PROOF_TYPE",
    "VC_CONTEXT_V2",
    "VerifiedDocument",
    "create_proof",
    "hash_data",
    "parse_datetime",
    "parse_document",
    "proof_config",
    "sign_credential",
    "sign_presentation",
    "verify",
    "verify_credential",
    "verify_presentation",
    "verify_proof",
]

# -- vocabulary ---------------------------------------------------------------------

CRYPTOSUITE = "eddsa-jcs-2022"
PROOF_TYPE = "DataIntegrityProof"
VC_CONTEXT_V2 = "https://www.w3.org/ns/credentials/v2"
VC_TYPE = "VerifiableCredential"
VP_TYPE = "VerifiablePresentation"
ASSERTION = "assertionMethod"
AUTHENTICATION = "authentication"
#: Proof purposes a signature can serve, each the DID document relationship it names.
SIGNING_PURPOSES = frozenset(RELATIONSHIPS) - {"keyAgreement"}

# -- limits -------------------------------------------------------------------------

#: Largest document (credential or presentation, with its proofs) we sign or verify,
#: measured as its canonical (JCS) bytes.
MAX_DOCUMENT_BYTES = 256 * 1024
#: Longest ``proofValue``: a 64-byte signature is at most 88 base58 characters + ``z``.
MAX_PROOF_VALUE_CHARS = 128
#: Longest string proof option (``verificationMethod``, ``challenge``, a ``domain``).
MAX_PROOF_STRING = 2048
#: Most ``domain`` entries a proof may list.
MAX_DOMAINS = 16
#: Most ``@context`` entries in one document.
MAX_CONTEXT_ENTRIES = 32
#: Most credentials embedded in one presentation.
MAX_PRESENTED_CREDENTIALS = 16

_ED25519_SIGNATURE_BYTES = 64

# XML Schema 1.1 dateTime (section 3.3.7), years limited to what datetime holds.
_DATETIME = re.compile(
    r"(?P<date>[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]))"
    r"T(?P<time>([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]|24:00:00)(?P<frac>\.[0-9]+)?"
    r"(?P<tz>Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))?",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class VerifiedDocument:
    """A document whose proof verified, and who signed it.

    ``document`` is the unsecured document (no ``proof``) exactly as hashed;
    ``controller`` is the DID whose key signed (the credential's issuer or
    the presentation's holder); ``credentials`` holds a presentation's
    embedded credentials, each verified.
    """

    document: dict[str, Any]
    proof: dict[str, Any]
    controller: str
    verification_method: str
    purpose: str
    credentials: tuple[VerifiedDocument, ...] = ()

    @property
    def types(self) -> tuple[str, ...]:
        """The document's ``type`` values."""
        return _types(self.document)


# -- wire text ------------------------------------------------------------------------


def parse_document(text: str | bytes) -> dict[str, Any]:
    """A credential or presentation from JSON text (an attachment's), size checked first.

    Integers are read exactly (no silent rounding: :mod:`protocols.jcs`
    refuses those no double holds); unpaired surrogate escapes, NaN and
    Infinity are refused.  The result still has to be verified.
    """
    if not isinstance(text, str | bytes):
        raise MalformedCredentialError("a credential must be JSON text")
    if len(text) > MAX_DOCUMENT_BYTES:
        raise CredentialTooLargeError(f"document is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return json_object(text, "credential")
    except DIDCommError as exc:
        raise MalformedCredentialError(exc.message) from None


# -- times ----------------------------------------------------------------------------


def parse_datetime(value: Any, what: str) -> datetime:
    """An XML Schema dateTime string as an aware datetime (no offset: UTC)."""
    if not isinstance(value, str) or len(value) > 64:
        raise MalformedCredentialError(f"{what} must be an XML Schema dateTime string")
    match = _DATETIME.fullmatch(value)
    if match is None:
        raise MalformedCredentialError(f"{what} is not an XML Schema dateTime")
    end_of_day = match["time"] == "24:00:00"
    if end_of_day and match["frac"] and match["frac"].strip(".0"):
        raise MalformedCredentialError(f"{what} is not an XML Schema dateTime")
    time_text = "00:00:00" if end_of_day else match["time"]
    frac = (match["frac"] or ".0")[1:7].ljust(6, "0")
    tz = match["tz"] or "Z"
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{time_text}.{frac}{tz}")
    except ValueError:
        # The regex allows 02-31 and year 0000; datetime does not.
        raise MalformedCredentialError(f"{what} is not a valid date and time") from None
    return parsed + timedelta(days=1) if end_of_day else parsed


# -- the cryptosuite ------------------------------------------------------------------


def proof_config(options: Mapping[str, Any]) -> bytes:
    """JCS bytes of the proof configuration (the proof without ``proofValue``).

    Checks ``type``/``cryptosuite`` (UnsupportedCredentialError) and that
    ``created``, when present, is a dateTime (eddsa-jcs-2022 section 3.3.5).
    """
    if options.get("type") != PROOF_TYPE or options.get("cryptosuite") != CRYPTOSUITE:
        raise UnsupportedCredentialError(
            f"only {PROOF_TYPE} proofs with cryptosuite {CRYPTOSUITE} are supported"
        )
    if "created" in options:
        parse_datetime(options["created"], "proof 'created'")
    return canonicalize({k: v for k, v in options.items() if k != "proofValue"})


def hash_data(unsecured_document: Mapping[str, Any], options: Mapping[str, Any]) -> bytes:
    """SHA-256(JCS(proof config)) || SHA-256(JCS(document)), the bytes Ed25519 signs."""
    config = proof_config(options)
    document = _canonical_document(unsecured_document)
    return hashlib.sha256(config).digest() + hashlib.sha256(document).digest()


def create_proof(
    unsecured_document: Mapping[str, Any],
    *,
    key: PrivateKey,
    verification_method: str,
    created: str,
    proof_purpose: str = ASSERTION,
    challenge: str | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """The secured document: ``unsecured_document`` with an ``eddsa-jcs-2022`` proof added.

    No VC checks here (see :func:`sign_credential`); the document must not
    already carry a ``proof``.
    """
    if not isinstance(unsecured_document, Mapping):
        raise MalformedCredentialError("a document to sign must be a JSON object")
    if "proof" in unsecured_document:
        raise UnsupportedCredentialError("the document already has a proof (proof sets)")
    if key.curve != "Ed25519":
        raise UnsupportedCredentialError(f"{CRYPTOSUITE} signs with Ed25519 keys only")
    if proof_purpose not in SIGNING_PURPOSES:
        raise ProofPurposeError(f"{proof_purpose!r} is not a signing proof purpose")
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if challenge is not None:
        proof["challenge"] = challenge
    if domain is not None:
        proof["domain"] = domain
    if "@context" in unsecured_document:
        # Step 2 of Create Proof: the proof names the contexts it was made under.
        proof["@context"] = _plain(unsecured_document["@context"])
    _check_proof_options(proof)
    signature = key.sign(hash_data(unsecured_document, proof))
    proof["proofValue"] = "z" + b58encode(signature)
    secured: dict[str, Any] = _plain(unsecured_document)
    secured["proof"] = proof
    return secured


def verify_proof(
    document: Mapping[str, Any],
    *,
    resolver: DIDResolver,
    expected_purpose: str = ASSERTION,
    challenge: str | None = None,
    domain: str | None = None,
    now: str | None = None,
) -> VerifiedDocument:
    """Verify the ``eddsa-jcs-2022`` proof of any JSON document.

    The key must be a verification method of the DID in its URL, listed
    under ``expected_purpose`` in that DID's document.  ``challenge`` and
    ``domain``, when given, must be in the proof; ``now`` checks the proof's
    ``expires``.  No check on what the document says (see :func:`verify`).
    """
    if not isinstance(document, Mapping):
        raise MalformedCredentialError("a secured document must be a JSON object")
    if len(_canonical_document(document)) > MAX_DOCUMENT_BYTES:
        raise CredentialTooLargeError(f"document is larger than {MAX_DOCUMENT_BYTES} bytes")
    proof = document.get("proof")
    if isinstance(proof, list):
        raise UnsupportedCredentialError("proof sets (a list of proofs) are not supported")
    if not isinstance(proof, dict):
        raise ProofError("the document has no proof object")
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    signature = _proof_value(proof.get("proofValue"))
    _check_proof_options(options)
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    if "@context" in options:
        if not _starts_with(document.get("@context"), options["@context"]):
            raise ProofError("the document's @context does not start with the proof's")
        unsecured["@context"] = options["@context"]
    _check_purpose(options, expected_purpose)
    _check_challenge(options, challenge)
    _check_domain(options, domain)
    if (
        now is not None
        and "expires" in options
        and parse_datetime(now, "now") > parse_datetime(options["expires"], "proof 'expires'")
    ):
        raise CredentialExpiredError("the proof has expired")
    controller, key = _signing_key(options["verificationMethod"], expected_purpose, resolver)
    try:
        key.verify(signature, hash_data(unsecured, options))
    except DIDCommError:
        raise CredentialSignatureError("the Data Integrity proof does not verify") from None
    return VerifiedDocument(
        document=_plain(unsecured),
        proof=_plain(proof),
        controller=controller,
        verification_method=options["verificationMethod"],
        purpose=expected_purpose,
    )


# -- the VC Data Model 2.0 profile -----------------------------------------------------


def sign_credential(
    credential: Mapping[str, Any],
    *,
    key: PrivateKey,
    verification_method: str,
    created: str,
    proof_purpose: str = ASSERTION,
    challenge: str | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """A VC 2.0 credential with an ``eddsa-jcs-2022`` proof by its issuer.

    ``verification_method`` must be a DID URL of the credential's ``issuer``
    (an ``assertionMethod`` of it, for verifiers to accept the proof).
    """
    _check_credential(credential, None)
    _check_signer(_issuer(credential), verification_method, CredentialIssuerError, "issuer")
    return create_proof(
        credential,
        key=key,
        verification_method=verification_method,
        created=created,
        proof_purpose=proof_purpose,
        challenge=challenge,
        domain=domain,
    )


def sign_presentation(
    presentation: Mapping[str, Any],
    *,
    key: PrivateKey,
    verification_method: str,
    created: str,
    challenge: str,
    domain: str | None = None,
    proof_purpose: str = AUTHENTICATION,
) -> dict[str, Any]:
    """A VC 2.0 presentation with an ``authentication`` proof by its ``holder``.

    ``challenge`` (and ``domain``) come from the verifier's request; the
    embedded credentials keep their own issuers' proofs.
    """
    _check_presentation(presentation)
    _check_signer(_holder(presentation), verification_method, PresentationHolderError, "holder")
    return create_proof(
        presentation,
        key=key,
        verification_method=verification_method,
        created=created,
        proof_purpose=proof_purpose,
        challenge=challenge,
        domain=domain,
    )


def verify(
    document: Mapping[str, Any],
    *,
    resolver: DIDResolver,
    expected_purpose: str = ASSERTION,
    challenge: str | None = None,
    domain: str | None = None,
    now: str | None = None,
) -> VerifiedDocument:
    """Verify a VC 2.0 credential or presentation secured with ``eddsa-jcs-2022``.

    A credential: shape, validity period against ``now``, proof, and its
    signer is the ``issuer``.  A presentation: shape, proof, its signer is
    the ``holder``, and every embedded credential verifies (with purpose
    ``assertionMethod`` and the same ``now``).
    """
    if not isinstance(document, Mapping):
        raise MalformedCredentialError("a credential must be a JSON object")
    types = _types(document)
    if VP_TYPE in types:
        _check_presentation(document)
        verified = verify_proof(
            document,
            resolver=resolver,
            expected_purpose=expected_purpose,
            challenge=challenge,
            domain=domain,
            now=now,
        )
        if verified.controller != _holder(document):
            raise PresentationHolderError("the presentation is not signed by its holder")
        credentials = tuple(
            verify_credential(credential, resolver=resolver, now=now)
            for credential in _presented(document)
        )
        return VerifiedDocument(
            document=verified.document,
            proof=verified.proof,
            controller=verified.controller,
            verification_method=verified.verification_method,
            purpose=verified.purpose,
            credentials=credentials,
        )
    if VC_TYPE in types:
        _check_credential(document, None)
        verified = verify_proof(
            document,
            resolver=resolver,
            expected_purpose=expected_purpose,
            challenge=challenge,
            domain=domain,
            now=now,
        )
        if verified.controller != _issuer(document):
            raise CredentialIssuerError("the credential is not signed by its issuer")
        # The validity period is judged once the claims are known to be the issuer's.
        _check_credential(document, now)
        return verified
    raise MalformedCredentialError(f"'type' names neither {VC_TYPE} nor {VP_TYPE}")


def verify_credential(
    credential: Mapping[str, Any],
    *,
    resolver: DIDResolver,
    now: str | None = None,
) -> VerifiedDocument:
    """:func:`verify` for a credential (``assertionMethod``), refusing presentations."""
    if not isinstance(credential, Mapping) or VC_TYPE not in _types(credential):
        raise MalformedCredentialError(f"a credential's 'type' must include {VC_TYPE}")
    if VP_TYPE in _types(credential):
        raise MalformedCredentialError("a presentation is not a credential")
    return verify(credential, resolver=resolver, expected_purpose=ASSERTION, now=now)


def verify_presentation(
    presentation: Mapping[str, Any],
    *,
    resolver: DIDResolver,
    challenge: str,
    domain: str | None = None,
    now: str | None = None,
) -> VerifiedDocument:
    """:func:`verify` for a presentation: ``authentication`` proof over our ``challenge``."""
    if not isinstance(presentation, Mapping) or VP_TYPE not in _types(presentation):
        raise MalformedCredentialError(f"a presentation's 'type' must include {VP_TYPE}")
    return verify(
        presentation,
        resolver=resolver,
        expected_purpose=AUTHENTICATION,
        challenge=challenge,
        domain=domain,
        now=now,
    )


# -- checks -------------------------------------------------------------------------------


def _canonical_document(document: Mapping[str, Any]) -> bytes:
    data = canonicalize(document)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise CredentialTooLargeError(f"document is larger than {MAX_DOCUMENT_BYTES} bytes")
    return data


def _proof_value(value: Any) -> bytes:
    if not isinstance(value, str) or not value.startswith("z"):
        raise ProofError("proofValue must be a base58btc multibase string")
    if len(value) > MAX_PROOF_VALUE_CHARS:
        raise ProofError("proofValue is too long for an Ed25519 signature")
    try:
        signature = b58decode(value[1:])
    except DIDCommError:
        raise ProofError("proofValue is not base58btc") from None
    if len(signature) != _ED25519_SIGNATURE_BYTES:
        raise ProofError("proofValue is not a 64-byte Ed25519 signature")
    return signature


def _check_proof_options(options: Mapping[str, Any]) -> None:
    if options.get("type") != PROOF_TYPE or options.get("cryptosuite") != CRYPTOSUITE:
        raise UnsupportedCredentialError(
            f"only {PROOF_TYPE} proofs with cryptosuite {CRYPTOSUITE} are supported"
        )
    if "previousProof" in options:
        raise UnsupportedCredentialError("proof chains (previousProof) are not supported")
    for name in ("verificationMethod", "proofPurpose"):
        value = options.get(name)
        if not isinstance(value, str) or not value or len(value) > MAX_PROOF_STRING:
            raise ProofError(f"the proof needs a string {name!r}")
    if "created" in options:
        parse_datetime(options["created"], "proof 'created'")
    if "expires" in options:
        parse_datetime(options["expires"], "proof 'expires'")
    if "challenge" in options:
        value = options["challenge"]
        if not isinstance(value, str) or len(value) > MAX_PROOF_STRING:
            raise ProofError("the proof's challenge must be a string")
    if "domain" in options:
        _domains(options["domain"])
    if "@context" in options:
        _contexts(options["@context"])


def _domains(value: Any) -> list[str]:
    domains = value if isinstance(value, list) else [value]
    if len(domains) > MAX_DOMAINS:
        raise ProofError(f"the proof lists more than {MAX_DOMAINS} domains")
    for entry in domains:
        if not isinstance(entry, str) or len(entry) > MAX_PROOF_STRING:
            raise ProofError("the proof's domain must be a string or a list of strings")
    return domains


def _check_purpose(options: Mapping[str, Any], expected: str) -> None:
    if expected not in SIGNING_PURPOSES:
        raise ProofPurposeError(f"{expected!r} is not a signing proof purpose")
    if options["proofPurpose"] != expected:
        raise ProofPurposeError(f"the proof's purpose is not {expected!r}")


def _check_challenge(options: Mapping[str, Any], expected: str | None) -> None:
    if expected is not None and options.get("challenge") != expected:
        raise ProofChallengeError("the proof does not answer this challenge")


def _check_domain(options: Mapping[str, Any], expected: str | None) -> None:
    if expected is not None and expected not in _domains(options.get("domain", [])):
        raise ProofDomainError("the proof is not for this domain")


def _signing_key(vm_url: str, purpose: str, resolver: DIDResolver) -> tuple[str, PublicKey]:
    """The DID and key of ``vm_url``, which its DID lists under ``purpose``."""
    try:
        did, fragment = split_did_url(vm_url)
    except DIDCommError:
        raise CredentialIssuerError("verificationMethod is not a DID URL") from None
    if fragment is None:
        raise CredentialIssuerError("verificationMethod must name a key (a DID URL with '#')")
    try:
        doc = resolver.resolve(did)
        vm = doc.resolve_vm(vm_url)
        key = vm.public_key
    except DIDCommError as exc:
        raise CredentialIssuerError(f"the signing key cannot be resolved: {exc.message}") from None
    if vm.id not in getattr(doc, RELATIONSHIPS[purpose]):
        raise CredentialIssuerError(f"the signing key is not an {purpose} of {did}")
    if key.curve != "Ed25519":
        raise UnsupportedCredentialError(f"{CRYPTOSUITE} verifies Ed25519 keys only")
    return did, key


def _check_signer(
    signer: str, verification_method: str, error: type[CredentialError], role: str
) -> None:
    try:
        did, fragment = split_did_url(verification_method)
    except DIDCommError:
        raise error("verification_method is not a DID URL") from None
    if fragment is None or did != signer:
        raise error(f"verification_method is not a key of the {role} DID")


def _starts_with(context: Any, prefix: Any) -> bool:
    full = context if isinstance(context, list) else [context]
    head = prefix if isinstance(prefix, list) else [prefix]
    return len(full) >= len(head) and full[: len(head)] == head


def _contexts(value: Any) -> list[Any]:
    contexts = value if isinstance(value, list) else [value]
    if not contexts or len(contexts) > MAX_CONTEXT_ENTRIES:
        raise MalformedCredentialError(f"@context must list 1 to {MAX_CONTEXT_ENTRIES} entries")
    for entry in contexts:
        if not isinstance(entry, str | dict):
            raise MalformedCredentialError("an @context entry must be a URL or an object")
    return contexts


def _types(document: Mapping[str, Any]) -> tuple[str, ...]:
    value = document.get("type")
    types = value if isinstance(value, list) else [value]
    if not types or not all(isinstance(t, str) for t in types):
        raise MalformedCredentialError("'type' must be a string or a list of strings")
    return tuple(types)


def _check_common(document: Mapping[str, Any], kind: str) -> None:
    contexts = _contexts(document.get("@context"))
    if contexts[0] != VC_CONTEXT_V2:
        raise MalformedCredentialError(f"a {kind}'s first @context must be {VC_CONTEXT_V2}")
    if "id" in document and not isinstance(document["id"], str):
        raise MalformedCredentialError(f"a {kind}'s 'id' must be a URL string")


def _check_credential(credential: Any, now: str | None) -> None:
    if not isinstance(credential, Mapping):
        raise MalformedCredentialError("a credential must be a JSON object")
    _check_common(credential, "credential")
    if VC_TYPE not in _types(credential):
        raise MalformedCredentialError(f"a credential's 'type' must include {VC_TYPE}")
    _issuer(credential)
    subject = credential.get("credentialSubject")
    subjects = subject if isinstance(subject, list) else [subject]
    if not subjects or not all(isinstance(s, dict) and s for s in subjects):
        raise MalformedCredentialError("credentialSubject must be a non-empty object or list")
    valid_from = valid_until = None
    if "validFrom" in credential:
        valid_from = parse_datetime(credential["validFrom"], "validFrom")
    if "validUntil" in credential:
        valid_until = parse_datetime(credential["validUntil"], "validUntil")
    if valid_from is not None and valid_until is not None and valid_until < valid_from:
        raise MalformedCredentialError("validUntil is before validFrom")
    if now is not None:
        moment = parse_datetime(now, "now")
        if valid_from is not None and moment < valid_from:
            raise CredentialNotYetValidError("the credential is not valid yet (validFrom)")
        if valid_until is not None and moment > valid_until:
            raise CredentialExpiredError("the credential has expired (validUntil)")


def _check_presentation(presentation: Any) -> None:
    if not isinstance(presentation, Mapping):
        raise MalformedCredentialError("a presentation must be a JSON object")
    _check_common(presentation, "presentation")
    if VP_TYPE not in _types(presentation):
        raise MalformedCredentialError(f"a presentation's 'type' must include {VP_TYPE}")
    _holder(presentation)
    _presented(presentation)


def _presented(presentation: Mapping[str, Any]) -> list[Any]:
    value = presentation.get("verifiableCredential", [])
    credentials = value if isinstance(value, list) else [value]
    if len(credentials) > MAX_PRESENTED_CREDENTIALS:
        raise CredentialTooLargeError(
            f"a presentation carries more than {MAX_PRESENTED_CREDENTIALS} credentials"
        )
    for credential in credentials:
        if not isinstance(credential, dict):
            raise MalformedCredentialError("verifiableCredential entries must be objects")
        if "EnvelopedVerifiableCredential" in _types(credential):
            raise UnsupportedCredentialError("enveloped credentials are not supported here")
    return credentials


def _party(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise MalformedCredentialError(f"'{name}' must be a URL or an object with an 'id'")
    return value


def _issuer(credential: Mapping[str, Any]) -> str:
    return _party(credential, "issuer")


def _holder(presentation: Mapping[str, Any]) -> str:
    if "holder" not in presentation:
        raise PresentationHolderError("the presentation names no holder")
    return _party(presentation, "holder")


def _plain(value: Any) -> Any:
    """A JSON copy with dicts and lists only (inputs were canonicalised: bounded depth)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value

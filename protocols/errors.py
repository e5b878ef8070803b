"""Every error a caller of ``protocols`` can see, in one hierarchy.

Each class names the DIDComm problem-report code it maps to (``problems.md``),
so the daemon can answer a peer with ``error.problem_code`` and never with a
traceback.  Messages are for people: they say what was wrong, never print key
material, and are short enough to go on one line of a CLI's stderr.
"""

from __future__ import annotations


class DIDCommError(Exception):
    """Base of every typed error raised by ``protocols``."""

    #: Problem-report code (``e.p.*``) for this kind of failure.
    problem_code: str = "e.p.me"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# -- input that cannot be parsed ------------------------------------------------


class MalformedMessageError(DIDCommError):
    """The input is not a well-formed DIDComm message, JWS or JWE."""

    problem_code = "e.p.msg.malformed"


class InvalidPlaintextError(MalformedMessageError):
    """A plaintext message breaks a rule of the message structure."""

    problem_code = "e.p.msg.invalid"


class MessageTooLargeError(MalformedMessageError):
    """The input is over a named size limit."""

    problem_code = "e.p.msg.too-large"


class UnsupportedError(DIDCommError):
    """An algorithm, curve, key type or message form we do not implement."""

    problem_code = "e.p.crypto.unsupported"


class UnsupportedAlgorithmError(UnsupportedError):
    """A JOSE ``alg``/``enc`` value or a curve that we do not implement."""


# -- keys and DIDs ---------------------------------------------------------------


class KeyMaterialError(DIDCommError):
    """A key is malformed, of the wrong type, or not on its curve."""

    problem_code = "e.p.trust.crypto.key"


class InvalidKeyError(KeyMaterialError):
    """A JWK or multikey could not be decoded into a usable key."""


class DIDError(DIDCommError):
    """A DID cannot be used: unknown method, bad document, missing data."""

    problem_code = "e.p.did"


class DIDNotResolvedError(DIDError):
    """No resolver knows this DID."""

    problem_code = "e.p.did.not-resolved"


class InvalidDIDError(DIDError):
    """A DID or DID URL is syntactically wrong or its document is malformed."""

    problem_code = "e.p.did.malformed"


class DIDURLNotFoundError(DIDError):
    """A DID resolved but the verification method named by a DID URL is absent."""

    problem_code = "e.p.did.url-not-found"


class SecretNotFoundError(DIDCommError):
    """None of the private keys needed for an operation is in the secrets resolver."""

    problem_code = "e.p.trust.crypto.no-secret"


class NoCompatibleKeysError(DIDCommError):
    """Sender and recipient share no key agreement curve."""

    problem_code = "e.p.trust.crypto.no-common-curve"


class KeyRoleError(DIDCommError):
    """A key was used outside its verification relationship.

    Only ``authentication`` keys sign and only ``keyAgreement`` keys encrypt.
    """

    problem_code = "e.p.trust.crypto.key-role"


# -- cryptographic failures ----------------------------------------------------


class CryptoError(DIDCommError):
    """A cryptographic check failed."""

    problem_code = "e.p.trust.crypto"


class UnknownRecipientError(CryptoError):
    """The message is not encrypted to any key we hold."""

    problem_code = "e.p.trust.crypto.unknown-recipient"


class DecryptionError(CryptoError):
    """Key unwrap or content decryption failed (wrong key, altered bytes)."""

    problem_code = "e.p.trust.crypto.decrypt"


class AuthenticationTagError(DecryptionError):
    """The JWE authentication tag does not match."""

    problem_code = "e.p.trust.crypto.bad-tag"


class BadSignatureError(CryptoError):
    """A JWS signature does not verify."""

    problem_code = "e.p.trust.crypto.bad-signature"


class SenderMismatchError(CryptoError):
    """The sender key (``skid``/``apu``/JWS ``kid``) does not belong to the message's ``from``."""

    problem_code = "e.p.trust.crypto.sender-mismatch"


class RecipientMismatchError(CryptoError):
    """The recipient keys do not belong to the message's ``to``."""

    problem_code = "e.p.trust.crypto.recipient-mismatch"


class FromPriorError(CryptoError):
    """A ``from_prior`` rotation JWT is malformed, unverifiable or inconsistent."""

    problem_code = "e.p.trust.crypto.from-prior"


# -- time --------------------------------------------------------------------


class ExpiredMessageError(DIDCommError):
    """The message's ``expires_time`` is in the past."""

    problem_code = "e.p.req.time"


# -- protocol level -------------------------------------------------------------


class ProtectionRequiredError(DIDCommError):
    """A message lacks the protection a protocol requires (e.g. an authenticated sender)."""

    problem_code = "e.p.trust"


# -- verifiable credentials (SD-JWT VC) -------------------------------------------


class CredentialError(DIDCommError):
    """An SD-JWT VC cannot be issued, presented or accepted."""

    problem_code = "e.p.credential"


class MalformedCredentialError(CredentialError):
    """The text is not a well-formed SD-JWT (or SD-JWT+KB) or breaks a rule of its format."""

    problem_code = "e.p.credential.malformed"


class CredentialTooLargeError(MalformedCredentialError):
    """An SD-JWT is over a named limit (bytes, disclosures, nesting depth)."""

    problem_code = "e.p.credential.too-large"


class UnsupportedCredentialError(CredentialError):
    """A ``typ``, JWS ``alg``, ``_sd_alg`` or ``cnf`` method we do not implement."""

    problem_code = "e.p.credential.unsupported"


class CredentialSignatureError(CredentialError):
    """The issuer's signature over the SD-JWT does not verify."""

    problem_code = "e.p.credential.bad-signature"


class CredentialIssuerError(CredentialError):
    """The signing key is not an ``assertionMethod`` of the ``iss`` DID (or cannot be resolved)."""

    problem_code = "e.p.credential.issuer"


class DisclosureMismatchError(CredentialError):
    """A Disclosure matches no digest, matches one twice, or clashes with a claim."""

    problem_code = "e.p.credential.disclosure"


class CredentialClaimError(CredentialError):
    """A claim cannot be issued or disclosed as asked (unknown, reserved or not disclosable)."""

    problem_code = "e.p.credential.claim"


class CredentialTimeError(CredentialError):
    """The credential is outside its validity period (``exp``, ``nbf``, ``iat``)."""

    problem_code = "e.p.credential.time"


class CredentialExpiredError(CredentialTimeError):
    """The credential's ``exp`` has passed."""

    problem_code = "e.p.credential.expired"


class CredentialNotYetValidError(CredentialTimeError):
    """The credential's ``nbf`` or ``iat`` is in the future."""

    problem_code = "e.p.credential.not-yet-valid"


class KeyBindingError(CredentialError):
    """The Key Binding JWT is missing, malformed or does not verify."""

    problem_code = "e.p.credential.key-binding"


class KeyBindingAudienceError(KeyBindingError):
    """The KB-JWT's ``aud`` is not this verifier."""

    problem_code = "e.p.credential.key-binding.audience"


class KeyBindingNonceError(KeyBindingError):
    """The KB-JWT's ``nonce`` is not the one this verifier asked for."""

    problem_code = "e.p.credential.key-binding.nonce"


class KeyBindingTimeError(KeyBindingError):
    """The KB-JWT's ``iat`` is in the future or too old."""

    problem_code = "e.p.credential.key-binding.time"


class HolderKeyMismatchError(KeyBindingError):
    """The holder's key is not the one the credential is bound to (``cnf.jwk``)."""

    problem_code = "e.p.credential.key-binding.holder-key"


# -- verifiable credentials (VC Data Model 2.0, Data Integrity eddsa-jcs-2022) ------


class CanonicalizationError(MalformedCredentialError):
    """A value has no RFC 8785 (JCS) form: NaN/Infinity, a non-string member name,
    an unpaired surrogate, an inexact large integer, a non-JSON type, or too deep."""

    problem_code = "e.p.credential.malformed.jcs"


class ProofError(CredentialError):
    """A Data Integrity proof is missing, malformed, or does not fit what was asked."""

    problem_code = "e.p.credential.proof"


class ProofPurposeError(ProofError):
    """The proof's ``proofPurpose`` is not the one the verifier expects."""

    problem_code = "e.p.credential.proof.purpose"


class ProofChallengeError(ProofError):
    """The proof's ``challenge`` is not the verifier's."""

    problem_code = "e.p.credential.proof.challenge"


class ProofDomainError(ProofError):
    """The proof's ``domain`` does not name the verifier's domain."""

    problem_code = "e.p.credential.proof.domain"


class PresentationHolderError(CredentialError):
    """A presentation is not signed by its ``holder`` (or names no holder)."""

    problem_code = "e.p.credential.holder"


# -- status lists (Token Status List, Bitstring Status List) ------------------------


class StatusListError(CredentialError):
    """A status list or a credential's reference to one cannot be used."""

    problem_code = "e.p.credential.status"


class MalformedStatusListError(StatusListError):
    """A status list token, list credential or status reference breaks a rule of its format."""

    problem_code = "e.p.credential.status.malformed"


class StatusListTooLargeError(MalformedStatusListError):
    """A status list is over a named limit (text, decompressed bytes, entries)."""

    problem_code = "e.p.credential.status.too-large"


class UnsupportedStatusListError(StatusListError):
    """A ``bits``/``statusSize``, signature algorithm or proof we do not implement."""

    problem_code = "e.p.credential.status.unsupported"


class StatusListSignatureError(StatusListError):
    """The signature over a status list does not verify."""

    problem_code = "e.p.credential.status.bad-signature"


class StatusListIssuerError(StatusListError):
    """The list is not signed by an ``assertionMethod`` key of its issuer (or not by the one expected)."""

    problem_code = "e.p.credential.status.issuer"


class StatusListTimeError(StatusListError):
    """The list is outside its validity period (issued in the future, or expired)."""

    problem_code = "e.p.credential.status.time"


class StatusListExpiredError(StatusListTimeError):
    """The list's ``exp`` / ``validUntil`` has passed."""

    problem_code = "e.p.credential.status.expired"


class StatusListMismatchError(StatusListError):
    """The list is not the one referenced: another URI or another status purpose."""

    problem_code = "e.p.credential.status.mismatch"


class StatusIndexError(StatusListError):
    """A status index is outside the list (or a value does not fit in its bits)."""

    problem_code = "e.p.credential.status.index"

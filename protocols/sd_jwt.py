"""SD-JWT VC: selectively disclosable credentials (RFC 9901 + draft-ietf-oauth-sd-jwt-vc).

Theory of operation
-------------------
An SD-JWT is a JWT signed by the issuer in which some claims are replaced by
digests; each hidden claim travels beside the JWT as a *Disclosure*, the
base64url text of ``[salt, name, value]`` (``[salt, value]`` for an array
element).  The holder shows a verifier only the Disclosures it chooses::

    <Issuer-signed JWT>~<Disclosure 1>~...~<Disclosure N>~[<KB-JWT>]

The verifier hashes each Disclosure it received (SHA-256 over its ASCII text,
never over decoded JSON: the issuer's bytes are what was signed) and finds the
digest in the signed payload -- in an object's ``_sd`` array or as an array
element ``{"...": digest}`` -- directly or inside another disclosed value.
Digests without a Disclosure (undisclosed claims and decoys) are dropped.
The holder proves possession of the key in ``cnf.jwk`` with a Key Binding
JWT (``typ`` ``kb+jwt``) over the verifier's ``aud`` and ``nonce`` and
``sd_hash``, the digest of everything before it.

Three layers, each usable alone:

- :func:`parse` -- structure only: size limits, strict base64url (canonical,
  so a changed padding bit is a changed credential), JSON objects, the
  Disclosures decoded and hashed.  Nothing is trusted yet.
- :func:`verify_signed` -- RFC 9901 section 7 given the issuer's public key:
  signature, Disclosures against digests (every Disclosure used exactly once,
  every digest seen at most once, no clash with a plain claim), ``exp``/
  ``nbf``/``iat``, and the KB-JWT.  The RFC's own examples go through here.
- :func:`issue`, :func:`present`, :func:`verify` -- the SD-JWT VC profile
  didcommd uses: ``typ`` ``dc+sd-jwt``, ``iss`` a DID, the header ``kid`` an
  ``assertionMethod`` of that DID (found with a :class:`DIDResolver`),
  ``vct`` required, the holder key by value in ``cnf.jwk``.

We issue flat credentials (top-level claims disclosable, the rest plain);
we verify nested and recursive Disclosures from other implementations.
Every failure is a :class:`~protocols.errors.CredentialError` subclass with
its own problem-report code; nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .codec import b64u_decode, b64u_encode, json_bytes, json_loads, json_object
from .did.resolver import DIDResolver
from .did.syntax import split_did_url
from .errors import (
    CredentialClaimError,
    CredentialError,
    CredentialExpiredError,
    CredentialIssuerError,
    CredentialNotYetValidError,
    CredentialSignatureError,
    CredentialTooLargeError,
    DIDCommError,
    DisclosureMismatchError,
    HolderKeyMismatchError,
    KeyBindingAudienceError,
    KeyBindingError,
    KeyBindingNonceError,
    KeyBindingTimeError,
    MalformedCredentialError,
    UnsupportedCredentialError,
)
from .jws import Signature, signing_alg
from .keys import ALG_CURVES, PrivateKey, PublicKey

__all__ = [
    "CLOCK_LEEWAY_S",
    "KB_MAX_AGE_S",
    "MAX_CLAIM_DEPTH",
    "MAX_DECOYS",
    "MAX_DISCLOSURES",
    "MAX_SD_JWT_BYTES",
    "SD_ALG",
    "TYP_KB_JWT",
    "TYP_SD_JWT_VC",
    "TYP_SD_JWT_VC_LEGACY",
    "Disclosure",
    "Jwt",
    "ProcessedSdJwt",
    "SdJwt",
    "VerifiedSdJwt",
    "digest",
    "disclosable_claims",
    "issue",
    "issuer_key",
    "jwt_alg",
    "parse",
    "parse_jwt",
    "present",
    "sign_jwt",
    "strict_b64u",
    "verify",
    "verify_signed",
]

#: JOSE ``typ`` of an SD-JWT VC (draft-ietf-oauth-sd-jwt-vc since -06).
TYP_SD_JWT_VC = "dc+sd-jwt"
#: The ``typ`` earlier drafts used; accepted, never sent.
TYP_SD_JWT_VC_LEGACY = "vc+sd-jwt"
#: JOSE ``typ`` of a Key Binding JWT (RFC 9901 section 4.3).
TYP_KB_JWT = "kb+jwt"
#: The only ``_sd_alg`` we implement (RFC 9901 requires it of everyone).
SD_ALG = "sha-256"
#: JWS algorithms accepted for the issuer JWT and the KB-JWT.
SUPPORTED_ALGS = frozenset({"EdDSA", "ES256", "ES256K"})

#: Longest SD-JWT / SD-JWT+KB text we parse or issue (it is ASCII: bytes = characters).
MAX_SD_JWT_BYTES = 64 * 1024
#: Room :func:`issue` leaves under MAX_SD_JWT_BYTES for the KB-JWT a presentation adds.
KB_JWT_ROOM = 1024
#: Most Disclosures in one SD-JWT.
MAX_DISCLOSURES = 256
#: Deepest nesting of objects and arrays in the processed payload (disclosed values included).
MAX_CLAIM_DEPTH = 32
#: Most decoy digests :func:`issue` adds.
MAX_DECOYS = 64
#: Clock difference tolerated on ``exp``, ``nbf`` and ``iat`` (seconds).
CLOCK_LEEWAY_S = 60
#: Oldest KB-JWT accepted (seconds since its ``iat``): a presentation may wait in
#: an outbox for an offline verifier, but the nonce already ties it to one request.
KB_MAX_AGE_S = 600
#: Random bytes in a salt (RFC 9901 section 9.3 recommends 128 bits).
SALT_BYTES = 16

# Claims the issuer sets itself: a caller's claims may not carry them.
_SET_BY_ISSUE = frozenset({"iss", "iat", "exp", "vct", "cnf", "_sd", "_sd_alg", "..."})
# Claims SD-JWT VC says must never be selectively disclosable (section 3.2.2.2).
_NEVER_DISCLOSABLE = frozenset({"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"})
# Registered claims VerifiedSdJwt reports in its own fields rather than in ``claims``.
_NOT_CLAIMS = frozenset({"iss", "vct", "cnf", "iat", "exp", "_sd_alg"})
_VC_TYPS = frozenset({TYP_SD_JWT_VC, TYP_SD_JWT_VC_LEGACY})

_B64U_RE = re.compile(r"[A-Za-z0-9_-]+")
_JWT_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


# -- model -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Jwt:
    """A compact JWS (the issuer JWT or the KB-JWT), signature not yet checked."""

    text: str
    header: dict[str, Any]
    payload: dict[str, Any]
    alg: str
    signing_input: bytes
    signature: bytes

    def verify(self, key: PublicKey) -> None:
        """Check the signature with ``key`` (whose curve must fit ``alg``)."""
        Signature("", self.alg, self.header, self.signing_input, self.signature).verify(key)


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One Disclosure: its text as received, that text's digest, and its contents.

    ``name`` is None for an array element (``[salt, value]``).
    """

    encoded: str
    digest: str
    salt: str
    name: str | None
    value: Any


@dataclass(frozen=True, slots=True)
class SdJwt:
    """An SD-JWT or SD-JWT+KB split into its parts (:func:`parse`); nothing checked yet."""

    jwt: Jwt
    disclosures: tuple[Disclosure, ...]
    kb_jwt: Jwt | None
    #: ``<JWT>~<D1>~...~<Dn>~``: what a KB-JWT's ``sd_hash`` is taken over.
    sd_jwt_text: str


@dataclass(frozen=True, slots=True)
class ProcessedSdJwt:
    """What :func:`verify_signed` accepted: the RFC's Processed SD-JWT Payload."""

    #: The payload with every presented Disclosure in place, ``_sd``, ``_sd_alg``
    #: and undisclosed array elements removed; registered claims (iss, cnf, ...) kept.
    payload: dict[str, Any]
    #: Claim names revealed by the Disclosures presented (object properties, any depth).
    disclosed: tuple[str, ...]
    #: True if a KB-JWT was present and checked.
    key_bound: bool


@dataclass(frozen=True)
class VerifiedSdJwt:
    """An SD-JWT VC that :func:`verify` accepted."""

    issuer: str
    vct: str
    #: Plain and disclosed claims (no _sd/_sd_alg/cnf/iss/vct/iat/exp; nbf, sub, status stay).
    claims: dict[str, Any]
    #: Names revealed by the Disclosures presented.
    disclosed: tuple[str, ...]
    holder_jwk: dict[str, Any] | None
    issued_at: int | None
    expires: int | None
    #: True if a valid KB-JWT was checked.
    key_bound: bool


# -- parsing ---------------------------------------------------------------------


def digest(disclosure: str) -> str:
    """The base64url SHA-256 digest of a Disclosure's ASCII text (RFC 9901 section 4.2.3)."""
    return b64u_encode(hashlib.sha256(disclosure.encode("ascii")).digest())


def strict_b64u(text: str, what: str) -> bytes:
    """Decode base64url that must be written the one canonical way.

    The character set is checked by the caller's regex; a text whose unused
    low bits are set decodes to the same bytes as the canonical one, and a
    credential must not have two spellings that both verify.
    """
    try:
        raw = b64u_decode(text, what)
    except DIDCommError:
        raise MalformedCredentialError(f"{what} is not base64url") from None
    if b64u_encode(raw) != text:
        raise MalformedCredentialError(f"{what} is not canonical base64url")
    return raw


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        return json_object(raw, what)
    except DIDCommError as exc:
        raise MalformedCredentialError(exc.message) from None


def parse_jwt(text: str, what: str) -> Jwt:
    if _JWT_RE.fullmatch(text) is None:
        raise MalformedCredentialError(f"{what} must be three base64url parts")
    header_b64, payload_b64, sig_b64 = text.split(".")
    header = _json_object(strict_b64u(header_b64, f"{what} header"), f"{what} header")
    payload = _json_object(strict_b64u(payload_b64, f"{what} payload"), f"{what} payload")
    signature = strict_b64u(sig_b64, f"{what} signature")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in SUPPORTED_ALGS:
        raise UnsupportedCredentialError(f"{what} has an unsupported alg")
    if "crit" in header:
        # RFC 7515 section 4.1.11: extensions we do not understand must not be ignored.
        raise UnsupportedCredentialError(f"{what} has critical header extensions")
    return Jwt(text, header, payload, alg, f"{header_b64}.{payload_b64}".encode("ascii"), signature)


def _parse_disclosure(text: str) -> Disclosure:
    if _B64U_RE.fullmatch(text) is None:
        raise MalformedCredentialError("a Disclosure is not base64url")
    try:
        value = json_loads(strict_b64u(text, "Disclosure"), "Disclosure")
    except DIDCommError as exc:
        raise MalformedCredentialError(exc.message) from None
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise MalformedCredentialError("a Disclosure must be a JSON array of 2 or 3 elements")
    salt = value[0]
    if not isinstance(salt, str):
        raise MalformedCredentialError("a Disclosure's salt must be a string")
    if len(value) == 2:
        return Disclosure(text, digest(text), salt, None, value[1])
    name = value[1]
    if not isinstance(name, str):
        raise MalformedCredentialError("a Disclosure's claim name must be a string")
    if name in ("_sd", "..."):
        raise MalformedCredentialError(f"a Disclosure may not name the claim {name!r}")
    return Disclosure(text, digest(text), salt, name, value[2])


def parse(text: str) -> SdJwt:
    """Split an SD-JWT or SD-JWT+KB into its parts: structure only, no signature checked.

    The hash algorithm is checked here (only ``sha-256``): Disclosure digests
    depend on it.
    """
    if not isinstance(text, str):
        raise MalformedCredentialError("an SD-JWT must be a string")
    if len(text) > MAX_SD_JWT_BYTES:
        raise CredentialTooLargeError(f"SD-JWT is longer than {MAX_SD_JWT_BYTES} bytes")
    parts = text.split("~")
    if len(parts) < 2:
        raise MalformedCredentialError("an SD-JWT must end with '~' or a KB-JWT")
    if len(parts) - 2 > MAX_DISCLOSURES:
        raise CredentialTooLargeError(f"SD-JWT has more than {MAX_DISCLOSURES} Disclosures")
    jwt = parse_jwt(parts[0], "issuer JWT")
    sd_alg = jwt.payload.get("_sd_alg", SD_ALG)
    if sd_alg != SD_ALG:
        raise UnsupportedCredentialError("unsupported _sd_alg (only sha-256)")
    disclosures = tuple(_parse_disclosure(d) for d in parts[1:-1])
    kb_jwt = parse_jwt(parts[-1], "KB-JWT") if parts[-1] else None
    return SdJwt(jwt, disclosures, kb_jwt, text[: len(text) - len(parts[-1])])


# -- processing (RFC 9901 section 7.1, step 3) ---------------------------------------


class _Processor:
    """Puts presented Disclosures in place of their digests, enforcing the RFC's rules.

    Records for each Disclosure used the Disclosure whose value embeds its
    digest (None: the signed payload), which :func:`present` needs to keep
    nested Disclosures connected to the payload.
    """

    def __init__(self, disclosures: Iterable[Disclosure]) -> None:
        self.by_digest: dict[str, Disclosure] = {}
        for d in disclosures:
            if d.digest in self.by_digest:
                raise DisclosureMismatchError("the same Disclosure is presented twice")
            self.by_digest[d.digest] = d
        self.seen: set[str] = set()
        self.parent: dict[str, str | None] = {}
        self.order: list[tuple[int, Disclosure]] = []  # (depth, disclosure) as used
        self.values: dict[str, Any] = {}  # digest -> disclosed value, nested ones in place

    def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        out = self._object(payload, 0, None, top=True)
        unused = len(self.by_digest) - len(self.parent)
        if unused:
            raise DisclosureMismatchError(
                f"{unused} Disclosure(s) match no digest in the credential"
            )
        return out

    def _claim(self, digest_value: str, owner: str | None) -> Disclosure | None:
        if digest_value in self.seen:
            raise DisclosureMismatchError("a digest appears more than once in the credential")
        self.seen.add(digest_value)
        found = self.by_digest.get(digest_value)
        if found is not None:
            self.parent[digest_value] = owner
        return found

    def _value(self, value: Any, depth: int, owner: str | None) -> Any:
        if isinstance(value, dict):
            return self._object(value, depth, owner)
        if isinstance(value, list):
            return self._array(value, depth, owner)
        return value

    def _object(
        self, obj: dict[str, Any], depth: int, owner: str | None, *, top: bool = False
    ) -> dict[str, Any]:
        if depth > MAX_CLAIM_DEPTH:
            raise CredentialTooLargeError(f"claims nest deeper than {MAX_CLAIM_DEPTH} levels")
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if key == "_sd":
                continue
            if key == "...":
                raise MalformedCredentialError("'...' is only allowed in an array element digest")
            if key == "_sd_alg":
                if not top:
                    raise MalformedCredentialError("_sd_alg is only allowed at the top level")
                continue
            out[key] = self._value(value, depth + 1, owner)
        digests = obj.get("_sd", [])
        if not isinstance(digests, list) or not all(isinstance(x, str) for x in digests):
            raise MalformedCredentialError("_sd must be an array of digest strings")
        for digest_value in digests:
            found = self._claim(digest_value, owner)
            if found is None:
                continue  # undisclosed or a decoy
            if found.name is None:
                raise DisclosureMismatchError("an array-element Disclosure is referenced by _sd")
            if found.name in out:
                raise DisclosureMismatchError(
                    f"Disclosure for {found.name[:64]!r} clashes with a claim already present"
                )
            self.order.append((depth, found))
            out[found.name] = self.values[found.digest] = self._value(
                found.value, depth + 1, found.digest
            )
        return out

    def _array(self, items: list[Any], depth: int, owner: str | None) -> list[Any]:
        if depth > MAX_CLAIM_DEPTH:
            raise CredentialTooLargeError(f"claims nest deeper than {MAX_CLAIM_DEPTH} levels")
        out: list[Any] = []
        for item in items:
            if isinstance(item, dict) and "..." in item:
                ref = item["..."]
                if len(item) != 1 or not isinstance(ref, str):
                    raise MalformedCredentialError(
                        "an array element digest must be {'...': digest}"
                    )
                found = self._claim(ref, owner)
                if found is None:
                    continue  # undisclosed element or decoy: dropped
                if found.name is not None:
                    raise DisclosureMismatchError("an object-property Disclosure is in an array")
                self.order.append((depth, found))
                self.values[found.digest] = self._value(found.value, depth + 1, found.digest)
                out.append(self.values[found.digest])
            else:
                out.append(self._value(item, depth + 1, owner))
        return out


def _numeric_date(payload: Mapping[str, Any], name: str, what: str) -> int | None:
    value = payload.get(name)
    if value is None and name not in payload:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedCredentialError(f"{what} '{name}' must be a number")
    return int(value)


def _check_validity(payload: Mapping[str, Any], now: int) -> None:
    exp = _numeric_date(payload, "exp", "credential")
    if exp is not None and now - CLOCK_LEEWAY_S >= exp:
        raise CredentialExpiredError("the credential has expired")
    nbf = _numeric_date(payload, "nbf", "credential")
    if nbf is not None and nbf > now + CLOCK_LEEWAY_S:
        raise CredentialNotYetValidError("the credential is not valid yet (nbf)")
    iat = _numeric_date(payload, "iat", "credential")
    if iat is not None and iat > now + CLOCK_LEEWAY_S:
        raise CredentialNotYetValidError("the credential is issued in the future (iat)")


def _holder_key(payload: Mapping[str, Any]) -> PublicKey | None:
    """The key in ``cnf.jwk``; None without ``cnf``."""
    if "cnf" not in payload:
        return None
    cnf = payload["cnf"]
    if not isinstance(cnf, dict):
        raise MalformedCredentialError("cnf must be an object")
    jwk = cnf.get("jwk")
    if jwk is None:
        raise UnsupportedCredentialError("only the cnf 'jwk' confirmation method is supported")
    try:
        key = PublicKey.from_jwk(jwk)
    except DIDCommError as exc:
        raise MalformedCredentialError(f"cnf.jwk: {exc.message}") from None
    if key.curve not in {ALG_CURVES[a] for a in SUPPORTED_ALGS}:
        raise UnsupportedCredentialError(f"cnf.jwk is a {key.curve} key, which cannot sign here")
    return key


def _check_key_binding(
    sd: SdJwt,
    kb: Jwt,
    holder: PublicKey | None,
    *,
    now: int,
    audience: str | None,
    nonce: str | None,
    max_age: int,
) -> None:
    if holder is None:
        raise KeyBindingError("the credential has no holder key (cnf.jwk) to bind to")
    if audience is None or nonce is None:
        raise KeyBindingError("a KB-JWT is checked only against an expected audience and nonce")
    if kb.header.get("typ") != TYP_KB_JWT:
        raise KeyBindingError(f"the KB-JWT's typ must be {TYP_KB_JWT!r}")
    try:
        kb.verify(holder)
    except DIDCommError:
        raise KeyBindingError("the KB-JWT signature does not verify with cnf.jwk") from None
    iat = kb.payload.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, (int, float)):
        raise KeyBindingError("the KB-JWT needs a numeric 'iat'")
    if iat > now + CLOCK_LEEWAY_S:
        raise KeyBindingTimeError("the KB-JWT is issued in the future")
    if iat < now - max_age - CLOCK_LEEWAY_S:
        raise KeyBindingTimeError("the KB-JWT is too old")
    if kb.payload.get("aud") != audience:
        raise KeyBindingAudienceError("the KB-JWT is for another audience")
    if kb.payload.get("nonce") != nonce:
        raise KeyBindingNonceError("the KB-JWT's nonce is not the one asked for")
    if kb.payload.get("sd_hash") != digest(sd.sd_jwt_text):
        raise KeyBindingError("the KB-JWT's sd_hash does not match the presentation")


def verify_signed(
    text: str | SdJwt,
    issuer_key: PublicKey,
    *,
    now: int,
    audience: str | None = None,
    nonce: str | None = None,
    require_key_binding: bool = False,
    kb_max_age_s: int = KB_MAX_AGE_S,
) -> ProcessedSdJwt:
    """Verify an SD-JWT(+KB) whose issuer key is known (RFC 9901 sections 7.1 and 7.3).

    Any SD-JWT profile goes through here; :func:`verify` adds SD-JWT VC's
    rules and finds the key through the issuer's DID.  A KB-JWT that is
    present is always checked (against ``audience`` and ``nonce``, which
    must then be given); ``require_key_binding`` makes its absence an error.
    """
    sd = text if isinstance(text, SdJwt) else parse(text)
    try:
        sd.jwt.verify(issuer_key)
    except DIDCommError:
        raise CredentialSignatureError("the issuer's signature does not verify") from None
    processor = _Processor(sd.disclosures)
    payload = processor.run(sd.jwt.payload)
    _check_validity(payload, now)
    holder = _holder_key(payload)
    if sd.kb_jwt is None:
        if require_key_binding:
            raise KeyBindingError("a Key Binding JWT is required")
    else:
        _check_key_binding(
            sd, sd.kb_jwt, holder, now=now, audience=audience, nonce=nonce, max_age=kb_max_age_s
        )
    # Every Disclosure was used (run() checks), so this is presentation order.
    disclosed = tuple(d.name for d in sd.disclosures if d.name is not None)
    return ProcessedSdJwt(payload, disclosed, sd.kb_jwt is not None)


# -- SD-JWT VC ---------------------------------------------------------------------


def issuer_key(jwt: Jwt, resolver: DIDResolver) -> tuple[str, PublicKey]:
    """The ``iss`` DID of an issuer-signed JWT and the key its ``assertionMethod`` names
    in the header's ``kid`` (an SD-JWT VC's, a Status List Token's)."""
    iss = jwt.payload.get("iss")
    kid = jwt.header.get("kid")
    if not isinstance(iss, str) or not isinstance(kid, str):
        raise MalformedCredentialError("an SD-JWT VC needs a string 'iss' and header 'kid'")
    try:
        did, fragment = split_did_url(kid)
    except DIDCommError:
        raise CredentialIssuerError("the header 'kid' is not a DID URL") from None
    if did != iss or fragment is None:
        raise CredentialIssuerError("the signing key 'kid' is not a key of the 'iss' DID")
    try:
        doc = resolver.resolve(did)
        vm = doc.resolve_vm(kid)
        key = vm.public_key
    except DIDCommError as exc:
        raise CredentialIssuerError(f"the issuer's key cannot be resolved: {exc.message}") from None
    if vm.id not in doc.assertion_method:
        raise CredentialIssuerError("the signing key is not an assertionMethod of the issuer")
    return iss, key


def verify(
    text: str,
    *,
    resolver: DIDResolver,
    now: int,
    audience: str | None = None,
    nonce: str | None = None,
    require_key_binding: bool = False,
    kb_max_age_s: int = KB_MAX_AGE_S,
) -> VerifiedSdJwt:
    """Verify an SD-JWT VC (or its presentation with a KB-JWT) issued by a DID.

    The header ``typ`` must be ``dc+sd-jwt`` (or the older ``vc+sd-jwt``); the
    ``kid`` an absolute DID URL of the ``iss`` DID, listed in its
    ``assertionMethod``; ``vct`` a string; no Disclosure may reveal a claim
    SD-JWT VC keeps always visible.  Then :func:`verify_signed`.
    """
    sd = parse(text)
    typ = sd.jwt.header.get("typ")
    if typ not in _VC_TYPS:
        raise UnsupportedCredentialError(f"the header typ must be {TYP_SD_JWT_VC!r}")
    issuer, key = issuer_key(sd.jwt, resolver)
    result = verify_signed(
        sd,
        key,
        now=now,
        audience=audience,
        nonce=nonce,
        require_key_binding=require_key_binding,
        kb_max_age_s=kb_max_age_s,
    )
    payload = result.payload
    vct = payload.get("vct")
    if not isinstance(vct, str) or not vct:
        raise MalformedCredentialError("an SD-JWT VC needs a string 'vct'")
    for name in _NEVER_DISCLOSABLE:
        if name in payload and name not in sd.jwt.payload:
            # A top-level claim that only a Disclosure can have put there.
            raise DisclosureMismatchError(f"claim {name!r} may not be selectively disclosed")
    holder = _holder_key(payload)
    claims = {k: v for k, v in payload.items() if k not in _NOT_CLAIMS}
    return VerifiedSdJwt(
        issuer=issuer,
        vct=vct,
        claims=claims,
        disclosed=result.disclosed,
        # The canonical public JWK: whatever else an issuer put there stays behind.
        holder_jwk=None if holder is None else holder.to_jwk(),
        issued_at=_numeric_date(payload, "iat", "credential"),
        expires=_numeric_date(payload, "exp", "credential"),
        key_bound=result.key_bound,
    )


# -- issuing ---------------------------------------------------------------------------


def _default_salt() -> str:
    return b64u_encode(secrets.token_bytes(SALT_BYTES))


def _json(value: Any, what: str) -> bytes:
    try:
        return json_bytes(value)
    except (TypeError, ValueError, RecursionError):
        raise CredentialClaimError(f"{what} is not JSON") from None


def _check_claim_value(value: Any, name: str, depth: int) -> None:
    """Refuse what a verifier would read as SD-JWT syntax, or nest too deep.

    ``depth`` counts as :class:`_Processor` does: a top-level claim's value is at 1.
    """
    if isinstance(value, (dict, list)) and depth > MAX_CLAIM_DEPTH:
        raise CredentialClaimError(f"claim {name[:64]!r} nests deeper than {MAX_CLAIM_DEPTH}")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CredentialClaimError(f"claim {name[:64]!r} has a key that is not a string")
            if key in ("_sd", "...", "_sd_alg"):
                raise CredentialClaimError(f"claim {name[:64]!r} holds the reserved key {key!r}")
            _check_claim_value(item, name, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_claim_value(item, name, depth + 1)


def _names(names: Iterable[str], what: str) -> list[str]:
    """Claim names from a caller, once each, in order."""
    if isinstance(names, str):
        raise CredentialClaimError(f"{what} must be a collection of names, not one string")
    out = list(names)
    if not all(isinstance(n, str) for n in out):
        raise CredentialClaimError(f"{what} must hold strings")
    return list(dict.fromkeys(out))


def sign_jwt(header: dict[str, Any], payload: dict[str, Any], key: PrivateKey) -> str:
    signing_input = (
        f"{b64u_encode(_json(header, 'header'))}.{b64u_encode(_json(payload, 'payload'))}"
    )
    return f"{signing_input}.{b64u_encode(key.sign(signing_input.encode('ascii')))}"


def jwt_alg(key: PrivateKey) -> str:
    try:
        alg = signing_alg(key)
    except DIDCommError:
        alg = ""
    if alg not in SUPPORTED_ALGS:
        raise UnsupportedCredentialError(f"{key.curve} keys cannot sign SD-JWTs here")
    return alg


def issue(
    claims: Mapping[str, Any],
    *,
    vct: str,
    issuer: str,
    signer_kid: str,
    signer: PrivateKey,
    disclosable: Iterable[str],
    holder_jwk: Mapping[str, Any] | None,
    now: int,
    expires: int | None = None,
    decoys: int = 0,
    salt: Callable[[], str] | None = None,
    status: Mapping[str, Any] | None = None,
) -> str:
    """Issue an SD-JWT VC: ``<issuer-signed JWT>~<Disclosure>~...~``.

    Top-level claims named in ``disclosable`` become Disclosures (their
    digests sorted, with ``decoys`` random ones, in the payload's ``_sd``); the
    rest stay plain.  The payload carries ``iss`` (a DID), ``iat``, ``exp``,
    ``vct``, ``cnf.jwk`` (the holder's public key, if given), ``status`` (if
    given: a status list reference, always plain) and ``_sd_alg``; the header ``typ`` ``dc+sd-jwt``, ``alg`` and ``kid`` (a DID URL of
    ``issuer``, whose ``assertionMethod`` it must be for verifiers).
    """
    if not isinstance(claims, Mapping):
        raise CredentialClaimError("claims must be a JSON object")
    if not isinstance(vct, str) or not vct:
        raise CredentialClaimError("vct must be a non-empty string")
    try:
        kid_did, fragment = split_did_url(signer_kid)
    except DIDCommError:
        raise CredentialIssuerError("signer_kid is not a DID URL") from None
    if kid_did != issuer or fragment is None:
        raise CredentialIssuerError(
            "signer_kid must be a DID URL with a fragment of the issuer DID"
        )
    if isinstance(now, bool) or not isinstance(now, int):
        raise CredentialClaimError("now must be an integer")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int)):
        raise CredentialClaimError("expires must be an integer")
    if status is not None:
        if not isinstance(status, Mapping) or "status" in claims:
            raise CredentialClaimError("status must be one JSON object, given once")
        _check_claim_value(dict(status), "status", 1)
    if isinstance(decoys, bool) or not isinstance(decoys, int) or not 0 <= decoys <= MAX_DECOYS:
        raise CredentialClaimError(f"decoys must be 0 to {MAX_DECOYS}")
    hidden = _names(disclosable, "disclosable")
    if len(hidden) > MAX_DISCLOSURES:
        raise CredentialTooLargeError(f"more than {MAX_DISCLOSURES} disclosable claims")
    for name in claims:
        if not isinstance(name, str):
            raise CredentialClaimError("claim names must be strings")
        if name in _SET_BY_ISSUE:
            raise CredentialClaimError(f"claim {name!r} is set by the issuer, not given")
        _check_claim_value(claims[name], name, 1)
    for name in hidden:
        if name not in claims:
            raise CredentialClaimError(f"disclosable claim {str(name)[:64]!r} is not in the claims")
        if name in _NEVER_DISCLOSABLE:
            raise CredentialClaimError(f"claim {name!r} may not be selectively disclosable")
    alg = jwt_alg(signer)
    make_salt = salt or _default_salt

    disclosures: list[str] = []
    digests: list[str] = []
    for name in hidden:
        salt_value = make_salt()
        if not isinstance(salt_value, str):
            raise CredentialClaimError("salt() must return a string")
        encoded = b64u_encode(_json([salt_value, name, claims[name]], f"claim {name[:64]!r}"))
        disclosures.append(encoded)
        digests.append(digest(encoded))
    for _ in range(decoys):
        digests.append(b64u_encode(hashlib.sha256(secrets.token_bytes(32)).digest()))

    payload: dict[str, Any] = {"iss": issuer, "iat": now}
    if expires is not None:
        payload["exp"] = expires
    payload["vct"] = vct
    if status is not None:
        payload["status"] = dict(status)
    hidden_set = set(hidden)
    for name, value in claims.items():
        if name not in hidden_set:
            payload[name] = value
    if holder_jwk is not None:
        try:
            holder = _holder_key({"cnf": {"jwk": dict(holder_jwk)}})
        except CredentialError as exc:
            raise CredentialClaimError(f"holder_jwk: {exc.message}") from None
        if holder is not None:  # always: cnf is given
            # The canonical public JWK: private members a caller passed by mistake stay out.
            payload["cnf"] = {"jwk": holder.to_jwk()}
    if digests:
        # Sorted: the order must not betray the order of the claims (RFC 9901 4.2.4.1).
        payload["_sd"] = sorted(digests)
    payload["_sd_alg"] = SD_ALG
    header = {"typ": TYP_SD_JWT_VC, "alg": alg, "kid": signer_kid}
    text = sign_jwt(header, payload, signer) + "~" + "".join(d + "~" for d in disclosures)
    if len(text) > MAX_SD_JWT_BYTES - KB_JWT_ROOM:
        raise CredentialTooLargeError(
            f"the credential is longer than {MAX_SD_JWT_BYTES - KB_JWT_ROOM} bytes"
        )
    return text


# -- holding and presenting ---------------------------------------------------------


def _holder_view(sd_jwt: str) -> tuple[SdJwt, _Processor, dict[str, Any]]:
    """Parse and process the holder's own SD-JWT (all its Disclosures)."""
    sd = parse(sd_jwt)
    if sd.kb_jwt is not None:
        # RFC 9901 section 7.2: an issuer sends an SD-JWT, never an SD-JWT+KB.
        raise MalformedCredentialError("the holder's credential must not carry a KB-JWT")
    processor = _Processor(sd.disclosures)
    payload = processor.run(sd.jwt.payload)
    return sd, processor, payload


def disclosable_claims(sd_jwt: str) -> dict[str, Any]:
    """Name -> value of every object-property Disclosure the holder has.

    Values are as disclosed (nested Disclosures in place); a name disclosed
    at more than one level maps to the outermost one.  Nothing is verified
    beyond structure and digests: the holder verified the credential when it
    arrived.
    """
    _, processor, _ = _holder_view(sd_jwt)
    out: dict[str, Any] = {}
    for _, d in sorted(processor.order, key=lambda pair: pair[0]):
        if d.name is not None and d.name not in out:
            out[d.name] = processor.values[d.digest]
    return out


def present(
    sd_jwt: str,
    disclose: Iterable[str],
    *,
    holder_key: PrivateKey | None,
    audience: str,
    nonce: str,
    now: int,
) -> str:
    """A presentation revealing only the claims named in ``disclose``.

    A name selects every object-property Disclosure of that name, everything
    disclosed inside its value, and the Disclosures that connect it to the
    payload.  An unknown name is a :class:`CredentialClaimError`.  With
    ``holder_key`` a KB-JWT over ``audience``, ``nonce``, ``now`` and the
    ``sd_hash`` is appended; the key must be the credential's ``cnf.jwk``.
    """
    sd, processor, payload = _holder_view(sd_jwt)
    wanted = set(_names(disclose, "disclose"))
    named = {d.name for _, d in processor.order}
    unknown = [n for n in wanted if n not in named]
    if unknown:
        raise CredentialClaimError(
            f"no Disclosure for claim {str(sorted(map(str, unknown))[0])[:64]!r}"
        )
    keep: set[str] = {d.digest for _, d in processor.order if d.name in wanted}
    # Everything inside a kept Disclosure (descendants), then what connects it (ancestors).
    changed = True
    while changed:
        changed = False
        for child, parent in processor.parent.items():
            if parent in keep and child not in keep:
                keep.add(child)
                changed = True
    for d_digest in list(keep):
        parent = processor.parent[d_digest]
        while parent is not None and parent not in keep:
            keep.add(parent)
            parent = processor.parent[parent]
    text = sd.jwt.text + "~" + "".join(d.encoded + "~" for d in sd.disclosures if d.digest in keep)
    if holder_key is None:
        return text
    holder = _holder_key(payload)
    if holder is None or holder != holder_key.public:
        raise HolderKeyMismatchError("holder_key is not the key the credential is bound to")
    if not isinstance(audience, str) or not isinstance(nonce, str):
        raise KeyBindingError("audience and nonce must be strings")
    kb_payload = {"iat": now, "aud": audience, "nonce": nonce, "sd_hash": digest(text)}
    kb = sign_jwt({"typ": TYP_KB_JWT, "alg": jwt_alg(holder_key)}, kb_payload, holder_key)
    out = text + kb
    if len(out) > MAX_SD_JWT_BYTES:
        raise CredentialTooLargeError(f"the presentation is longer than {MAX_SD_JWT_BYTES} bytes")
    return out

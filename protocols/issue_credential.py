"""Issue Credential 3.0 (``https://didcomm.org/issue-credential/3.0``): SD-JWT VCs and
W3C VC 2.0 credentials with Data Integrity proofs.

Theory of operation
-------------------
Two roles, as in the WACI-DIDComm text: the *issuer* offers and signs, the
*holder* accepts and keeps.  The happy path starts with the issuer::

    issuer: offer-credential  ------------------------------>  holder
            (credential_preview: the claims; attachment: vct, which claims
             will be selectively disclosable)
                                        holder's user accepts (accept_offer)
            <------------------------------  request-credential
            (attachment: the holder's public key, to bind the credential to)
    issuer signs an SD-JWT VC with the key named at offer time
            issue-credential (please_ack) ------------------->  holder
                                         holder verifies it against the offer
            <------------------------------  ack (an empty message, by the dispatcher)

The holder may start instead with ``propose-credential`` (what it hopes to
get: the claims in a ``credential_preview``, the type and the format it would
like as an attachment in that format, ``{"vct"}`` or ``{}``); the issuer's
user answers with an offer on the same thread
(:func:`offer_credential` with ``proposal=``), and a holder may counter an
offer with a new proposal.  A ``request-credential`` that does not follow
an offer is refused (unknown thread): the issuer signs only what it offered.

The holder accepts the credential only if it is exactly what was offered:
the signature verifies (issuer DID resolved with our resolver), the issuer
is the DID the offer named (the offering peer's own DID unless the offer
names another: an issuer signs with a stable public DID, such as a did:key,
not with the pairwise DID of the connection), ``vct`` and every claim value equal the
offer's, the claims offered as disclosable really are selectively
disclosable (otherwise the holder could not hide them later), the
``cnf`` key is the one the holder sent, the expiry (``exp`` /
``validUntil``) is the one announced, and so is the status list entry (or
the lack of one).  Anything else is a typed error, which the dispatcher
turns into a problem-report; the thread is abandoned.

Revocation (:mod:`protocols.status_list`): an offer made with ``status=(uri,
index)`` announces that entry of the issuer's status list, and the
credential names it (SD-JWT: the plain ``status`` claim of the IETF Token
Status List; ``di_vc``: a ``BitstringStatusListEntry`` ``credentialStatus``),
so the holder knows before accepting that the credential can be revoked
(``revocable`` in the offer-received event).  When the daemon gives the
machine a ``status_source``, the issuer staples its current signed list to
``issue-credential`` (a second attachment, see
:mod:`protocols.status_exchange`); the holder verifies it (signed by the
credential's issuer, for that URI; a bad one refuses the credential) and the
credential-received event carries it with the entry's value, so the holder
has a list to staple to its first presentation.

Every message needs an authenticated *and* encrypted sender
(``Protection.AUTHENTICATED_ENCRYPTED``): credentials carry personal data
and the holder must know who signs what it will present.

    issuer: start --send-offer--> offer-sent --request-credential--> credential-issued
            start --propose-credential--> proposal-received --send-offer--> offer-sent
            offer-sent --propose-credential--> proposal-received
            proposal-received --decline--> abandoned
    holder: start --offer-credential--> offer-received --accept-offer--> request-sent
            request-sent --issue-credential--> done
            start --send-proposal--> proposal-sent --offer-credential--> offer-received
            offer-received --send-proposal--> proposal-sent
            offer-received --decline--> abandoned

Attachment formats (the 3.0 text's registry has no SD-JWT VC entry, so the
credential format's own identifier is used, as OpenID4VC does):

- ``dc+sd-jwt`` (:data:`FORMAT`): the SD-JWT VC format identifier of SD-JWT VC
  draft 06 and OpenID4VC; ``vc+sd-jwt`` (the earlier drafts' name) is read as
  the same.  On ``offer-credential`` its ``data.json`` is the credential
  description ``{"vct", "disclosable": [names], "issuer": DID, "exp",
  "status"}`` (``issuer`` optional: the sender's DID when absent; ``exp``
  epoch seconds and ``status`` the credential's status claim, each only when
  the credential will have one); on ``request-credential``
  ``{"vct", "cnf": {"jwk": <holder public JWK>}}`` (the ``cnf`` claim the
  credential will carry); on ``issue-credential`` ``data.base64`` is the
  issued SD-JWT (compact, all disclosures), ``media_type``
  ``application/dc+sd-jwt``.
- ``di_vc`` (:data:`FORMAT_DI_VC`, the DIF PE 2.1 designation): a W3C VC Data
  Model 2.0 credential with an embedded ``eddsa-jcs-2022`` Data Integrity
  proof (:mod:`protocols.data_integrity`).  On ``offer-credential`` the
  ``data.json`` is the credential *template* -- ``@context``
  ``[VC v2]``, ``type`` ``["VerifiableCredential", vct]`` (the SD-JWT
  ``vct`` becomes the second type, as is: no ``credentialSchema``, no
  JSON-LD term for it; we sign with JCS, so no context has to define it),
  ``issuer``, ``credentialSubject`` = the claims, ``validUntil`` when the
  offer expires and ``credentialStatus`` when it is revocable (a list of a
  ``revocation`` and a ``suspension`` entry when it can also be suspended:
  :func:`di_template`); on ``request-credential`` ``{"credentialSubject": {"id":
  holder DID}}``: the subject is the holder's DID *in this relationship*
  (the request's authenticated sender -- the issuer binds only a DID that
  it has seen sign), whose ``authentication`` key will sign presentations;
  on ``issue-credential`` ``data.json`` is the signed credential,
  ``media_type`` ``application/vc``.  The holder checks it is the template
  plus the subject id, signed (``assertionMethod``) by the offered issuer.
  A Data Integrity credential cannot disclose selectively: it is always
  presented whole (see :mod:`protocols.present_proof`).
- ``credential_preview`` follows the 3.0 text (``type`` .../credential-preview,
  ``body.attributes[]`` of ``{"name", "value"}``), except that ``value`` is
  the claim's JSON value (``true``, ``42``), not a string: SD-JWT claims are
  typed and the holder compares them exactly.

The holder's ``issue-credential.credential-received`` event names the
``format`` (``dc+sd-jwt`` with the SD-JWT as ``sd_jwt``; ``di_vc`` with the
credential's JCS text as ``credential``) so the daemon can store either, and
``status`` (``{"uri", "index"}`` or None), ``status_list`` (the stapled list's
text: a token, or a list credential's JCS text; None if none was stapled),
``suspension`` and ``suspension_list`` (the same for a ``di_vc``
credential's suspension entry, :mod:`protocols.status_list`; None if it has
none) and ``status_value`` (what they say: 0 valid, 1 revoked, 2
suspended).  The
offer-received event carries ``expires`` (epoch seconds or None) and
``revocable``.

Records hold plain JSON only (the offer's claims, the issuer's *kid*, the
holder's *public* JWK); private keys stay in the secrets resolver.

Daemon API: :func:`offer_credential`, :func:`propose_credential`,
:func:`accept_offer`, :func:`decline`, and :class:`IssueCredential` in the
dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from . import data_integrity, sd_jwt, status_exchange, status_list
from .codec import b64u_decode, b64u_encode, json_dumps
from .did.resolver import DIDResolver
from .did.syntax import is_did
from .errors import DIDCommError, KeyMaterialError
from .framework import (
    ABANDONED,
    START,
    Event,
    Inbound,
    Protection,
    ProtocolMachine,
    ProtocolRecord,
    Table,
    Transition,
    fire,
    new_message,
    start_record,
)
from .jcs import canonicalize
from .keys import PublicKey
from .message import new_id
from .presentation_exchange import ALWAYS_VISIBLE, FORMAT_DI_VC, FORMAT_SD_JWT_VC, SD_JWT_FORMATS
from .protocol_errors import InvalidBodyError
from .report_problem import build_problem_report
from .secrets import SecretsResolver

PIURI = "https://didcomm.org/issue-credential/3.0"
PROPOSE_CREDENTIAL = PIURI + "/propose-credential"
OFFER_CREDENTIAL = PIURI + "/offer-credential"
REQUEST_CREDENTIAL = PIURI + "/request-credential"
ISSUE_CREDENTIAL = PIURI + "/issue-credential"
CREDENTIAL_PREVIEW = PIURI + "/credential-preview"

#: The attachment format of every SD-JWT VC attachment (see the module docstring).
FORMAT = FORMAT_SD_JWT_VC
#: Media type of the issued credential (SD-JWT VC draft 06+).
MEDIA_TYPE_SD_JWT_VC = "application/dc+sd-jwt"
#: The Data Integrity credential format (W3C VC 2.0 + eddsa-jcs-2022), DIF PE 2.1's name.
DI_VC = FORMAT_DI_VC
DI_VC_FORMATS = frozenset({FORMAT_DI_VC})
#: Media type of an issued Data Integrity credential (VC Data Model 2.0).
MEDIA_TYPE_VC = "application/vc"
#: The credential formats :func:`offer_credential` can offer.
CREDENTIAL_FORMATS = (FORMAT, DI_VC)
#: Problem code of a declined offer/proposal (the 3.0 text's ``issuance-abandoned``).
ABANDONED_CODE = "e.p.issuance-abandoned"

ISSUER, HOLDER = "issuer", "holder"
PROPOSAL_SENT, PROPOSAL_RECEIVED = "proposal-sent", "proposal-received"
OFFER_SENT, OFFER_RECEIVED = "offer-sent", "offer-received"
REQUEST_SENT, CREDENTIAL_ISSUED, DONE = "request-sent", "credential-issued", "done"

#: Most claims in one credential.
MAX_CLAIMS = 64
#: Longest claim name.
MAX_CLAIM_NAME_CHARS = 128
#: Largest JSON encoding of all claim values together.
MAX_CLAIMS_BYTES = 16 * 1024
#: Longest ``vct``, ``goal_code`` and ``comment``.
MAX_VCT_CHARS = 512
MAX_GOAL_CODE_CHARS = 128
MAX_COMMENT_CHARS = 2048
#: Longest issued SD-JWT we accept (characters of the compact form).
MAX_CREDENTIAL_CHARS = 64 * 1024
#: Longest reason given when declining.
MAX_REASON_CHARS = 512
#: Latest expiry an offer may announce (epoch seconds: the year 9999, the last
#: an XML Schema dateTime of four digits can write).
MAX_EPOCH = 253_402_300_799

#: Claim names the SD-JWT VC issuer sets itself (``iss``, ``vct``, ``cnf``...).
_RESERVED = ALWAYS_VISIBLE | {"vct#integrity"}

TRANSITIONS: Table = {
    ISSUER: {
        START: {"send-offer": OFFER_SENT, "propose-credential": PROPOSAL_RECEIVED},
        PROPOSAL_RECEIVED: {"send-offer": OFFER_SENT, "decline": ABANDONED},
        OFFER_SENT: {
            "request-credential": CREDENTIAL_ISSUED,
            "propose-credential": PROPOSAL_RECEIVED,
        },
    },
    HOLDER: {
        START: {"send-proposal": PROPOSAL_SENT, "offer-credential": OFFER_RECEIVED},
        PROPOSAL_SENT: {"offer-credential": OFFER_RECEIVED},
        OFFER_RECEIVED: {
            "accept-offer": REQUEST_SENT,
            "send-proposal": PROPOSAL_SENT,
            "decline": ABANDONED,
        },
        REQUEST_SENT: {"issue-credential": DONE},
    },
}


class CredentialRejectedError(DIDCommError):
    """The issued credential is not what was offered, or does not verify."""

    problem_code = "e.p.req.credential-rejected"


class IssuerKeyError(DIDCommError):
    """The issuer no longer holds the signing key named when the offer was made."""

    problem_code = "e.p.me.res.issuer-key"


# -- checks shared by both roles ---------------------------------------------------


def check_text(value: object, what: str, limit: int) -> str | None:
    """An optional bounded string (``comment``, ``goal_code``)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidBodyError(f"{what} must be a string of at most {limit} characters")
    return value


def check_vct(value: object) -> str:
    """A credential type: a non-empty bounded string."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_VCT_CHARS:
        raise InvalidBodyError(f"'vct' must be a string of 1 to {MAX_VCT_CHARS} characters")
    return value


def check_claims(claims: object) -> dict[str, Any]:
    """Claims for a credential: bounded, plain JSON, no reserved JWT/SD-JWT names."""
    if not isinstance(claims, dict) or len(claims) > MAX_CLAIMS:
        raise InvalidBodyError(f"claims must be an object of at most {MAX_CLAIMS} entries")
    for name in claims:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_CLAIM_NAME_CHARS:
            raise InvalidBodyError("claim names must be short non-empty strings")
        if name in _RESERVED or name.startswith("_sd") or name == "...":
            raise InvalidBodyError(f"claim name {name[:64]!r} is reserved by SD-JWT VC")
    try:
        size = len(json_dumps(claims).encode())
    except (DIDCommError, TypeError, ValueError, RecursionError):
        raise InvalidBodyError("claim values must be plain JSON") from None
    if size > MAX_CLAIMS_BYTES:
        raise InvalidBodyError(f"claims are over {MAX_CLAIMS_BYTES} bytes of JSON")
    return dict(claims)


def check_names(names: object, claims: Mapping[str, Any], what: str) -> list[str]:
    """A list of claim names, each one of ``claims``."""
    if not isinstance(names, list) or len(names) > MAX_CLAIMS:
        raise InvalidBodyError(f"{what} must be a list of at most {MAX_CLAIMS} claim names")
    for name in names:
        if not isinstance(name, str) or name not in claims:
            raise InvalidBodyError(f"{what} names a claim that is not offered")
    return list(dict.fromkeys(names))


def check_public_jwk(jwk: object) -> dict[str, Any]:
    """A holder's public JWK (never one with private members), in canonical form."""
    if not isinstance(jwk, dict) or "d" in jwk:
        raise InvalidBodyError("the holder key must be a public JWK")
    try:
        key = PublicKey.from_jwk(jwk)
    except DIDCommError as error:
        raise InvalidBodyError(f"the holder key is unusable: {error.message}") from None
    # The canonical form: whatever else the peer put in the JWK is not kept.
    return dict(key.to_jwk())


def same_key(a: object, b: object) -> bool:
    """Whether two public JWKs are the same key."""
    try:
        return PublicKey.from_jwk(a) == PublicKey.from_jwk(b)
    except DIDCommError:
        return False


def preview(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The ``credential_preview`` of ``claims``."""
    attributes = [{"name": k, "value": v} for k, v in claims.items()]
    return {"type": CREDENTIAL_PREVIEW, "body": {"attributes": attributes}}


def read_preview(raw: object) -> dict[str, Any]:
    """Claims from a received ``credential_preview``."""
    if not isinstance(raw, dict):
        raise InvalidBodyError("'credential_preview' must be an object")
    body = raw.get("body")
    attributes = body.get("attributes") if isinstance(body, dict) else None
    if not isinstance(attributes, list) or len(attributes) > MAX_CLAIMS:
        raise InvalidBodyError("'credential_preview.body.attributes' must be a bounded list")
    claims: dict[str, Any] = {}
    for attribute in attributes:
        if not isinstance(attribute, dict) or "value" not in attribute:
            raise InvalidBodyError("a preview attribute must be an object with name and value")
        name = attribute.get("name")
        if not isinstance(name, str) or name in claims:
            raise InvalidBodyError("preview attribute names must be unique strings")
        claims[name] = attribute["value"]
    return check_claims(claims)


def format_attachment(message: Mapping[str, Any], formats: frozenset[str]) -> dict[str, Any]:
    """The first attachment whose ``format`` is one of ``formats``."""
    attachments = message.get("attachments")
    if isinstance(attachments, list):
        for attachment in attachments:
            if isinstance(attachment, dict) and attachment.get("format") in formats:
                return attachment
    raise InvalidBodyError(f"the message has no {sorted(formats)[0]} attachment")


def attachment_json(message: Mapping[str, Any], formats: frozenset[str]) -> dict[str, Any]:
    """The ``data.json`` object of the message's attachment in one of ``formats``."""
    data = format_attachment(message, formats).get("data")
    value = data.get("json") if isinstance(data, dict) else None
    if not isinstance(value, dict):
        raise InvalidBodyError("the attachment's data.json must be an object")
    return value


def attachment_text(message: Mapping[str, Any], formats: frozenset[str], limit: int) -> str:
    """A text attachment (``data.base64`` of UTF-8, or ``data.json`` a string), bounded."""
    data = format_attachment(message, formats).get("data")
    if not isinstance(data, dict):
        raise InvalidBodyError("an attachment needs a data object")
    if isinstance(data.get("json"), str):
        text: str = data["json"]
    elif isinstance(data.get("base64"), str):
        encoded: str = data["base64"]
        if len(encoded) > limit * 4 // 3 + 4:
            raise InvalidBodyError(f"the attachment is over {limit} characters")
        raw = b64u_decode(encoded.replace("+", "-").replace("/", "_"), "attachment")
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidBodyError("the attachment is not ASCII text") from None
    else:
        raise InvalidBodyError("the attachment carries neither base64 nor a JSON string")
    if len(text) > limit:
        raise InvalidBodyError(f"the attachment is over {limit} characters")
    return text


def _body(goal_code: str | None, comment: str | None, **rest: Any) -> dict[str, Any]:
    body = {"goal_code": goal_code, "comment": comment, **rest}
    return {k: v for k, v in body.items() if v is not None}


def decline_report(
    record: ProtocolRecord, code: str, reason: str, now: int, ids: Callable[[], str]
) -> dict[str, Any]:
    """The problem-report that abandons ``record``'s thread, with ``reason`` in ``args``."""
    check_text(reason, "reason", MAX_REASON_CHARS)
    return build_problem_report(
        code,
        msg_id=ids(),
        pthid=record.thid,
        comment="The protocol was abandoned: {1}",
        args=[reason],
        ack=record.seen_ids[-1:],
        frm=record.our_did,
        to=record.their_did,
        now=now,
    )


def xsd_datetime(epoch: int) -> str:
    """Epoch seconds as an XML Schema dateTime in UTC (``2026-01-02T03:04:05Z``)."""
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        raise InvalidBodyError("a time is out of range") from None


def di_template(
    *,
    vct: str,
    issuer: str,
    claims: Mapping[str, Any],
    expires: int | None,
    status: tuple[str, int] | None = None,
    suspension: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """The unsigned VC 2.0 credential a ``di_vc`` offer describes (no subject id yet);
    ``status`` (revocation list URL, index) becomes its ``credentialStatus``, and with
    ``suspension`` (suspension list URL, index) a list of the two entries."""
    template: dict[str, Any] = {
        "@context": [data_integrity.VC_CONTEXT_V2],
        "type": [data_integrity.VC_TYPE, vct],
        "issuer": issuer,
        "credentialSubject": dict(claims),
    }
    if expires is not None:
        template["validUntil"] = xsd_datetime(expires)
    if status is not None:
        entry = status_list.bitstring_entry(status[0], status[1])
        template["credentialStatus"] = entry if suspension is None else [
            entry,
            status_list.bitstring_entry(suspension[0], suspension[1], status_list.PURPOSE_SUSPENSION),
        ]
    return template


def _read_di_template(
    template: Mapping[str, Any], claims: Mapping[str, Any]
) -> tuple[str, str, str | None, int | None]:
    """(vct, issuer, validUntil, validUntil as epoch seconds) of a received ``di_vc``
    offer template, checked against the preview (its ``credentialStatus``:
    :func:`read_status`)."""
    if template.get("@context") != [data_integrity.VC_CONTEXT_V2]:
        raise InvalidBodyError("a di_vc template's @context must be the VC 2.0 context")
    types = template.get("type")
    if not isinstance(types, list) or len(types) != 2 or types[0] != data_integrity.VC_TYPE:
        raise InvalidBodyError("a di_vc template's type must be [VerifiableCredential, type]")
    vct = check_vct(types[1])
    issuer = template.get("issuer")
    if not isinstance(issuer, str) or not is_did(issuer):
        raise InvalidBodyError("the offer's issuer must be a DID")
    if template.get("credentialSubject") != claims:
        raise InvalidBodyError("the di_vc template's credentialSubject is not the preview")
    unknown = set(template) - {
        "@context",
        "type",
        "issuer",
        "credentialSubject",
        "validUntil",
        "credentialStatus",
    }
    if unknown:
        raise InvalidBodyError("the di_vc template has members we would not check")
    valid_until: str | None = None
    expires: int | None = None
    if "validUntil" in template:
        try:
            parsed = data_integrity.parse_datetime(template["validUntil"], "validUntil")
        except DIDCommError as error:
            raise InvalidBodyError(error.message) from None
        valid_until, expires = template["validUntil"], int(parsed.timestamp())
    return vct, issuer, valid_until, expires


def read_status(
    credential_format: str, value: Any
) -> tuple[list[Any], list[Any] | None]:
    """([list URI, index], [suspension list URI, index] or None) of a status
    reference a peer sent: an SD-JWT ``status`` claim, or a ``di_vc``
    ``credentialStatus`` (a revocation entry, and maybe a suspension entry);
    InvalidBodyError if unusable."""
    try:
        if credential_format != DI_VC:
            return list(status_list.read_token_reference(value)), None
        found = {r.purpose: [r.uri, r.index] for r in status_list.read_credential_status(value)}
    except DIDCommError as error:
        raise InvalidBodyError(f"the status reference is unusable: {error.message}") from None
    if status_list.PURPOSE_REVOCATION not in found:
        raise InvalidBodyError("the credentialStatus has no revocation entry (a suspension entry comes with one)")
    return found[status_list.PURPOSE_REVOCATION], found.get(status_list.PURPOSE_SUSPENSION)


def _read_exp(details: Mapping[str, Any]) -> int | None:
    """The ``exp`` an SD-JWT offer announces (epoch seconds), None if it has none."""
    if "exp" not in details:
        return None
    value = details["exp"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EPOCH:
        raise InvalidBodyError("the offer's exp must be epoch seconds")
    return value


def _offered_reference(offer: Mapping[str, Any]) -> dict[str, Any] | None:
    """The SD-JWT ``status`` claim of the credential an issuer's offer promised."""
    status = offer.get("status")
    if status is None:
        return None
    return status_list.token_reference(status[0], status[1])


def _same_json(a: Any, b: Any) -> bool:
    """Exact JSON equality (``true`` is not ``1``), through the canonical form."""
    try:
        return canonicalize(a) == canonicalize(b)
    except (DIDCommError, TypeError, ValueError):
        return False


# -- the machine ----------------------------------------------------------------------


class IssueCredential(ProtocolMachine):
    """The issue-credential machine for the dispatcher (both roles)."""

    PROTOCOL: ClassVar[str] = PIURI
    ROLES: ClassVar[tuple[str, ...]] = (ISSUER, HOLDER)
    MESSAGES: ClassVar[dict[str, Protection]] = {
        "propose-credential": Protection.AUTHENTICATED_ENCRYPTED,
        "offer-credential": Protection.AUTHENTICATED_ENCRYPTED,
        "request-credential": Protection.AUTHENTICATED_ENCRYPTED,
        "issue-credential": Protection.AUTHENTICATED_ENCRYPTED,
    }
    FIRST_MESSAGES: ClassVar[dict[str, str]] = {
        "propose-credential": ISSUER,
        "offer-credential": HOLDER,
    }
    TRANSITIONS: ClassVar[Table] = TRANSITIONS

    def __init__(
        self,
        resolver: DIDResolver,
        secrets: SecretsResolver,
        status_source: status_exchange.StatusSource | None = None,
    ) -> None:
        self.resolver = resolver
        self.secrets = secrets
        #: The issuer's current signed list for a URI it publishes, stapled to
        #: each revocable credential it issues (None: nothing is stapled).
        self.status_source = status_source

    def react(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        """One received message; ``record.state`` is already the table's new state."""
        handler = {
            "propose-credential": self._proposal,
            "offer-credential": self._offer,
            "request-credential": self._request,
            "issue-credential": self._credential,
        }[inbound.name]
        return handler(record, inbound)

    # issuer ------------------------------------------------------------------------

    def _proposal(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        body = inbound.body
        comment = check_text(body.get("comment"), "comment", MAX_COMMENT_CHARS)
        goal_code = check_text(body.get("goal_code"), "goal_code", MAX_GOAL_CODE_CHARS)
        claims = read_preview(body["credential_preview"]) if "credential_preview" in body else {}
        # The format the holder would like: that of its attachment (none: the issuer's choice).
        vct: str | None = None
        credential_format: str | None = None
        for fmt, formats in ((FORMAT, SD_JWT_FORMATS), (DI_VC, DI_VC_FORMATS)):
            try:
                details = attachment_json(inbound.message, formats)
            except InvalidBodyError:
                continue
            credential_format = fmt
            try:
                vct = check_vct(details.get("vct"))
            except InvalidBodyError:
                vct = None  # a proposal may leave the type to the issuer
            break
        record.data["proposal"] = {"vct": vct, "claims": claims, "comment": comment, "format": credential_format}
        event = Event(
            "issue-credential.proposal-received",
            record.thid,
            {
                "from": inbound.their_did,
                "vct": vct,
                "claims": claims,
                "comment": comment,
                "goal_code": goal_code,
                "format": credential_format,
            },
        )
        return Transition(record, [], [event])

    def _request(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        offer = record.data.get("offer")
        if not isinstance(offer, dict):
            raise CredentialRejectedError("this thread has no offer to issue against")
        if offer.get("format") == DI_VC:
            return self._issue_di(record, inbound, offer)
        details = attachment_json(inbound.message, SD_JWT_FORMATS)
        if details.get("vct", offer["vct"]) != offer["vct"]:
            raise InvalidBodyError("the request asks for another credential type than offered")
        cnf = details.get("cnf")
        holder_jwk = check_public_jwk(cnf.get("jwk") if isinstance(cnf, dict) else None)
        kid = offer["issuer_kid"]
        signer = self.secrets.get_key(kid)
        if signer is None:
            raise IssuerKeyError("the issuer's signing key is no longer available")
        try:
            credential = sd_jwt.issue(
                offer["claims"],
                vct=offer["vct"],
                issuer=offer["issuer"],
                signer_kid=kid,
                signer=signer,
                disclosable=offer["disclosable"],
                holder_jwk=holder_jwk,
                now=inbound.now,
                expires=offer.get("expires"),
                status=_offered_reference(offer),
            )
        except (ValueError, TypeError, KeyError) as error:
            raise IssuerKeyError(
                f"the credential could not be signed: {type(error).__name__}"
            ) from None
        credential_id = inbound.ids()
        record.data["credential_id"] = credential_id
        record.data["holder_jwk"] = holder_jwk
        attachment = {
            "id": credential_id,
            "media_type": MEDIA_TYPE_SD_JWT_VC,
            "format": FORMAT,
            "data": {"base64": b64u_encode(credential.encode("ascii"))},
        }
        reply = inbound.reply(
            ISSUE_CREDENTIAL,
            _body(offer.get("goal_code"), None),
            attachments=[attachment, *self._staple(offer, status_exchange.FORMAT_TOKEN)],
            please_ack=[""],
        )
        event = Event(
            "issue-credential.issued",
            record.thid,
            {"credential_id": credential_id, "vct": offer["vct"], "holder": inbound.their_did, "format": FORMAT},
        )
        return Transition(record, [reply], [event])

    def _issue_di(
        self, record: ProtocolRecord, inbound: Inbound, offer: Mapping[str, Any]
    ) -> Transition:
        details = attachment_json(inbound.message, DI_VC_FORMATS)
        subject = details.get("credentialSubject")
        subject_id = subject.get("id") if isinstance(subject, dict) else None
        if subject_id != inbound.their_did:
            # The subject's key will sign presentations; bind only the DID that
            # authenticated this request, never one it merely names.
            raise InvalidBodyError("the request's credentialSubject.id must be the sender's DID")
        kid = offer["issuer_kid"]
        signer = self.secrets.get_key(kid)
        if signer is None:
            raise IssuerKeyError("the issuer's signing key is no longer available")
        status, suspension = offer.get("status"), offer.get("suspension")
        template = di_template(
            vct=offer["vct"],
            issuer=offer["issuer"],
            claims={},
            expires=offer.get("expires"),
            status=None if status is None else (status[0], status[1]),
            suspension=None if suspension is None else (suspension[0], suspension[1]),
        )
        template["credentialSubject"] = {"id": subject_id, **offer["claims"]}
        created = xsd_datetime(inbound.now)
        template["validFrom"] = created
        try:
            credential = data_integrity.sign_credential(
                template, key=signer, verification_method=kid, created=created
            )
        except DIDCommError as error:
            raise IssuerKeyError(f"the credential could not be signed: {error.message}") from None
        credential_id = inbound.ids()
        record.data["credential_id"] = credential_id
        record.data["holder_did"] = subject_id
        attachment = {
            "id": credential_id,
            "media_type": MEDIA_TYPE_VC,
            "format": DI_VC,
            "data": {"json": credential},
        }
        reply = inbound.reply(
            ISSUE_CREDENTIAL,
            _body(offer.get("goal_code"), None),
            attachments=[attachment, *self._staple(offer, status_exchange.FORMAT_BITSTRING)],
            please_ack=[""],
        )
        event = Event(
            "issue-credential.issued",
            record.thid,
            {
                "credential_id": credential_id,
                "vct": offer["vct"],
                "holder": inbound.their_did,
                "format": DI_VC,
            },
        )
        return Transition(record, [reply], [event])

    def _staple(self, offer: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
        """The attachments stapling the current list of each status entry of a
        revocable credential (none if it is not revocable, or the daemon has no
        such list of ``kind``)."""
        if self.status_source is None:
            return []
        out: list[dict[str, Any]] = []
        for reference in (offer.get("status"), offer.get("suspension")):
            document = None if reference is None else self.status_source(reference[0])
            if document is not None and status_exchange.list_format(document) == kind:
                out.append(status_exchange.list_attachment(document, len(out)))
        return out

    # holder --------------------------------------------------------------------------

    def _stapled_status(
        self, inbound: Inbound, offer: Mapping[str, Any], kind: str
    ) -> dict[str, Any]:
        """The credential-received event's status fields: each offered entry and,
        if the issuer stapled its list, the list (verified: signed by the
        credential's issuer, for that URI and purpose), and what they say."""
        status = offer.get("status")
        if status is None:
            return {"status": None, "status_list": None, "status_value": None,
                    "suspension": None, "suspension_list": None}
        bitstring = kind == status_exchange.FORMAT_BITSTRING
        out: dict[str, Any] = {"suspension": None, "suspension_list": None}
        values: list[int] = []
        for name, reference, purpose in (
            ("status", status, status_list.PURPOSE_REVOCATION if bitstring else None),
            ("suspension", offer.get("suspension"), status_list.PURPOSE_SUSPENSION),
        ):
            if reference is None:
                continue
            uri, index = reference[0], reference[1]
            try:
                found = status_exchange.find_list(
                    status_exchange.stapled_lists(inbound.message),
                    resolver=self.resolver,
                    now=inbound.now,
                    uri=uri,
                    issuer=offer["issuer"],
                    kind=kind,
                    purpose=purpose,
                )
                if found is not None:
                    values.append(found[0].status(index))
            except DIDCommError as error:
                raise CredentialRejectedError(
                    f"the stapled status list does not verify: {error.message}"
                ) from None
            out[name] = {"uri": uri, "index": index}
            out[f"{name}_list"] = None if found is None else found[1]
        # Revoked is final, whatever the suspension list says; else suspended if it says so.
        out["status_value"] = (
            None if not values else status_list.REVOKED if status_list.REVOKED in values
            else max(values)
        )
        return out

    def _offer(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        body = inbound.body
        comment = check_text(body.get("comment"), "comment", MAX_COMMENT_CHARS)
        goal_code = check_text(body.get("goal_code"), "goal_code", MAX_GOAL_CODE_CHARS)
        if "credential_preview" not in body:
            raise InvalidBodyError("an offer needs a 'credential_preview'")
        claims = read_preview(body["credential_preview"])
        try:
            details = attachment_json(inbound.message, SD_JWT_FORMATS)
            credential_format = FORMAT
        except InvalidBodyError:
            details = attachment_json(inbound.message, DI_VC_FORMATS)
            credential_format = DI_VC
        valid_until: str | None = None
        status_key = "credentialStatus" if credential_format == DI_VC else "status"
        status: list[Any] | None = None
        suspension: list[Any] | None = None
        if status_key in details:
            status, suspension = read_status(credential_format, details[status_key])
        if credential_format == DI_VC:
            vct, issuer, valid_until, expires = _read_di_template(details, claims)
            disclosable: list[str] = []
        else:
            vct = check_vct(details.get("vct"))
            disclosable = check_names(details.get("disclosable", []), claims, "'disclosable'")
            named = details.get("issuer", inbound.their_did)
            if not isinstance(named, str) or not is_did(named):
                raise InvalidBodyError("the offer's issuer must be a DID")
            issuer = named
            expires = _read_exp(details)
        offer = {
            "format": credential_format,
            "id": inbound.message["id"],
            "issuer": issuer,
            "vct": vct,
            "claims": claims,
            "disclosable": disclosable,
            "comment": comment,
            "goal_code": goal_code,
            # What the credential must say: its expiry (``exp`` / ``validUntil``,
            # exactly as the template wrote it).
            "expires": expires,
            "valid_until": valid_until,
            # ... and its status list entry, [uri, index], and a di_vc one's
            # suspension entry (di_vc: the exact credentialStatus the template holds).
            "status": status,
            "suspension": suspension,
            "credential_status": details.get("credentialStatus"),
        }
        record.data["offer"] = offer
        event = Event(
            "issue-credential.offer-received",
            record.thid,
            {
                "from": inbound.their_did,
                "format": credential_format,
                "vct": vct,
                "claims": claims,
                "disclosable": disclosable,
                "issuer": issuer,
                "comment": comment,
                "goal_code": goal_code,
                "expires": expires,
                "revocable": status is not None,
            },
        )
        return Transition(record, [], [event])

    def _credential(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        offer = record.data.get("offer")
        if isinstance(offer, dict) and offer.get("format") == DI_VC:
            return self._receive_di(record, inbound, offer)
        holder_jwk = record.data.get("holder_jwk")
        if not isinstance(offer, dict) or holder_jwk is None:
            raise CredentialRejectedError("this thread has no accepted offer")
        text = attachment_text(inbound.message, SD_JWT_FORMATS, MAX_CREDENTIAL_CHARS)
        try:
            verified = sd_jwt.verify(text, resolver=self.resolver, now=inbound.now)
            disclosable = sd_jwt.disclosable_claims(text)
        except DIDCommError as error:
            raise CredentialRejectedError(
                f"the credential does not verify: {error.message}"
            ) from None
        except (ValueError, TypeError, KeyError) as error:
            raise CredentialRejectedError(
                f"the credential is malformed: {type(error).__name__}"
            ) from None
        self._check_against_offer(verified, disclosable, offer, holder_jwk)
        status = self._stapled_status(inbound, offer, status_exchange.FORMAT_TOKEN)
        return _received(
            record,
            inbound,
            SD_JWT_FORMATS,
            {
                "vct": verified.vct,
                "issuer": verified.issuer,
                "claims": dict(offer["claims"]),
                "format": FORMAT,
                "sd_jwt": text,
                **status,
            },
        )

    def _receive_di(
        self, record: ProtocolRecord, inbound: Inbound, offer: Mapping[str, Any]
    ) -> Transition:
        holder_did = record.data.get("holder_did")
        if not isinstance(holder_did, str):
            raise CredentialRejectedError("this thread has no accepted offer")
        credential = attachment_json(inbound.message, DI_VC_FORMATS)
        try:
            verified = data_integrity.verify_credential(
                credential, resolver=self.resolver, now=xsd_datetime(inbound.now)
            )
        except DIDCommError as error:
            raise CredentialRejectedError(
                f"the credential does not verify: {error.message}"
            ) from None
        document = verified.document
        if verified.controller != offer["issuer"] or document.get("issuer") != offer["issuer"]:
            raise CredentialRejectedError("the credential is signed by another issuer")
        if document.get("type") != [data_integrity.VC_TYPE, offer["vct"]]:
            raise CredentialRejectedError("the credential has another type than offered")
        if document.get("@context") != [data_integrity.VC_CONTEXT_V2]:
            raise CredentialRejectedError("the credential has another @context than offered")
        expected_subject = {"id": holder_did, **offer["claims"]}
        if not _same_json(document.get("credentialSubject"), expected_subject):
            raise CredentialRejectedError("the credential's subject differs from the offer")
        if document.get("validUntil") != offer.get("valid_until"):
            raise CredentialRejectedError("the credential's validUntil differs from the offer")
        offered_status = offer.get("credential_status")
        if ("credentialStatus" in document) != (offered_status is not None) or (
            offered_status is not None
            and not _same_json(document["credentialStatus"], offered_status)
        ):
            raise CredentialRejectedError("the credential's status entry differs from the offer")
        unknown = set(document) - {
            "@context",
            "type",
            "issuer",
            "credentialSubject",
            "validFrom",
            "validUntil",
            "credentialStatus",
            "id",
        }
        if unknown:
            raise CredentialRejectedError("the credential carries members that were not offered")
        status = self._stapled_status(inbound, offer, status_exchange.FORMAT_BITSTRING)
        return _received(
            record,
            inbound,
            DI_VC_FORMATS,
            {
                "vct": offer["vct"],
                "issuer": verified.controller,
                "claims": dict(offer["claims"]),
                "format": DI_VC,
                "credential": canonicalize(credential).decode("utf-8"),
                **status,
            },
        )

    @staticmethod
    def _check_against_offer(
        verified: sd_jwt.VerifiedSdJwt,
        disclosable: Mapping[str, Any],
        offer: Mapping[str, Any],
        holder_jwk: object,
    ) -> None:
        if verified.issuer != offer["issuer"]:
            raise CredentialRejectedError("the credential is signed by another issuer")
        if verified.vct != offer["vct"]:
            raise CredentialRejectedError("the credential has another type than offered")
        claims: Mapping[str, Any] = offer["claims"]
        for name, value in claims.items():
            if name not in verified.claims or verified.claims[name] != value:
                raise CredentialRejectedError(f"claim {name[:64]!r} differs from the offer")
            if type(verified.claims[name]) is not type(value):
                raise CredentialRejectedError(f"claim {name[:64]!r} differs from the offer")
        extra = set(verified.claims) - set(claims) - ALWAYS_VISIBLE
        if extra:
            raise CredentialRejectedError("the credential carries claims that were not offered")
        if not set(offer["disclosable"]) <= set(disclosable):
            raise CredentialRejectedError("claims offered as disclosable are not")
        if not same_key(verified.holder_jwk, holder_jwk):
            raise CredentialRejectedError("the credential is bound to another key")
        if verified.expires != offer.get("expires"):
            # A holder keeps what it was offered: a shorter life (or none) is another credential.
            raise CredentialRejectedError("the credential's exp differs from the offer")
        offered_status = offer.get("status")
        if "status" in verified.claims:
            try:
                signed_status = list(status_list.read_token_reference(verified.claims["status"]))
            except DIDCommError:
                raise CredentialRejectedError("the credential's status claim is unusable") from None
        else:
            signed_status = None
        if signed_status != offered_status:
            raise CredentialRejectedError(
                "the credential's status reference differs from the offer"
            )


def _received(
    record: ProtocolRecord, inbound: Inbound, formats: frozenset[str], data: dict[str, Any]
) -> Transition:
    """Holder: the credential (checked) is ours; name it by its attachment id (else
    the message's) and report it, in either format."""
    credential_id = format_attachment(inbound.message, formats).get("id")
    if not isinstance(credential_id, str) or not credential_id:
        credential_id = inbound.message["id"]
    record.data["credential_id"] = credential_id
    event = Event(
        "issue-credential.credential-received",
        record.thid,
        {"credential_id": credential_id, **data},
    )
    return Transition(record, [], [event])


# -- local commands -------------------------------------------------------------------


def offer_credential(
    our_did: str,
    their_did: str,
    now: int,
    *,
    vct: str,
    claims: dict[str, Any],
    disclosable: list[str],
    issuer_kid: str,
    issuer: str | None = None,
    comment: str | None = None,
    goal_code: str | None = None,
    expires: int | None = None,
    proposal: ProtocolRecord | None = None,
    ids: Callable[[], str] = new_id,
    credential_format: str = FORMAT,
    status: tuple[str, int] | None = None,
    suspension: tuple[str, int] | None = None,
) -> Transition:
    """Issuer: offer a credential (a new thread, or the answer to ``proposal``).

    ``credential_format`` is ``dc+sd-jwt`` (default) or ``di_vc`` (a VC 2.0
    Data Integrity credential: ``disclosable`` is ignored, it is shown whole).

    ``issuer_kid`` names our signing key, a DID URL of ``issuer`` (default
    ``our_did``: another DID of ours, e.g. a public did:key, may sign); it is
    recorded, and the key is looked up only when the holder requests.
    ``expires`` is the credential's ``exp`` (epoch seconds).  ``status``
    (list URI, index) makes it revocable: the credential will name that entry
    (SD-JWT ``status`` claim, Token Status List; ``di_vc`` ``credentialStatus``,
    Bitstring Status List), and the offer says so.  ``suspension`` (a ``di_vc``
    credential's entry in a ``suspension`` Bitstring Status List) lets it be
    suspended too; an SD-JWT VC's one entry says suspended itself (value 2).
    """
    if credential_format not in CREDENTIAL_FORMATS:
        raise InvalidBodyError(f"the credential format must be one of {list(CREDENTIAL_FORMATS)}")
    check_vct(vct)
    claims = check_claims(claims)
    if credential_format == DI_VC:
        if "id" in claims:
            raise InvalidBodyError("claim name 'id' is the credential subject's DID")
        disclosable = []
    disclosable = check_names(disclosable, claims, "disclosable")
    check_text(comment, "comment", MAX_COMMENT_CHARS)
    check_text(goal_code, "goal_code", MAX_GOAL_CODE_CHARS)
    issuer = our_did if issuer is None else issuer
    if not is_did(issuer):
        raise InvalidBodyError("the issuer must be a DID")
    if not issuer_kid.startswith(issuer + "#"):
        raise KeyMaterialError("the issuer kid must be a key of the issuer DID")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int)):
        raise InvalidBodyError("'expires' must be epoch seconds")
    status_ref: dict[str, Any] | None = None
    if status is not None:
        if not isinstance(status, tuple | list) or len(status) != 2:
            raise InvalidBodyError("'status' must be (list URI, index)")
        status_ref = status_list.status_reference(credential_format, status[0], status[1])
    if suspension is not None:
        if credential_format != DI_VC or status is None:
            raise InvalidBodyError("a suspension entry is for a revocable di_vc credential")
        if not isinstance(suspension, tuple | list) or len(suspension) != 2:
            raise InvalidBodyError("'suspension' must be (list URI, index)")
        status_list.bitstring_entry(suspension[0], suspension[1], status_list.PURPOSE_SUSPENSION)
    offer = {
        "format": credential_format,
        "issuer": issuer,
        "vct": vct,
        "claims": claims,
        "disclosable": disclosable,
        "issuer_kid": issuer_kid,
        "expires": expires,
        "comment": comment,
        "goal_code": goal_code,
        "status": None if status is None else [status[0], status[1]],
        "suspension": None if suspension is None else [suspension[0], suspension[1]],
    }
    msg_id = ids()
    if proposal is None:
        record = start_record(
            IssueCredential,
            thid=msg_id,
            role=ISSUER,
            command="send-offer",
            our_did=our_did,
            their_did=their_did,
            now=now,
            data={"offer": offer},
        )
    else:
        record = proposal.copy()
        record.state = fire(TRANSITIONS, record.role, record.state, "send-offer")
        record.data["offer"] = offer
        record.updated_time = now
        record.remember(msg_id)
    if credential_format == DI_VC:
        details = di_template(
            vct=vct, issuer=issuer, claims=claims, expires=expires, status=status,
            suspension=suspension,
        )
    else:
        details = {"vct": vct, "disclosable": disclosable, "issuer": issuer}
        if expires is not None:
            # Announced so the holder can refuse a credential with another expiry.
            details["exp"] = expires
        if status_ref is not None:
            details["status"] = status_ref
    attachment = {
        "id": ids(),
        "media_type": "application/json",
        "format": credential_format,
        "data": {"json": details},
    }
    message = new_message(
        OFFER_CREDENTIAL,
        _body(goal_code, comment, credential_preview=preview(claims)),
        msg_id=msg_id,
        frm=our_did,
        to=their_did,
        thid=record.thid,
        now=now,
        attachments=[attachment],
    )
    event = Event(
        "issue-credential.offer-sent",
        record.thid,
        {"to": their_did, "vct": vct, "format": credential_format},
    )
    return Transition(record, [message], [event])


def propose_credential(
    our_did: str,
    their_did: str,
    now: int,
    *,
    vct: str | None = None,
    claims: dict[str, Any] | None = None,
    comment: str | None = None,
    goal_code: str | None = None,
    offer: ProtocolRecord | None = None,
    credential_format: str | None = None,
    ids: Callable[[], str] = new_id,
) -> Transition:
    """Holder: propose what to be issued (a new thread, or a counter to ``offer``);
    ``credential_format`` (:data:`FORMAT` or :data:`DI_VC`) is the format we would
    like, None to leave it to the issuer (unless ``vct`` is given: then SD-JWT VC,
    whose attachment names a type)."""
    if vct is not None:
        check_vct(vct)
    if credential_format is not None and credential_format not in CREDENTIAL_FORMATS:
        raise InvalidBodyError(f"the credential format must be one of {list(CREDENTIAL_FORMATS)}")
    claims = check_claims(claims or {})
    check_text(comment, "comment", MAX_COMMENT_CHARS)
    check_text(goal_code, "goal_code", MAX_GOAL_CODE_CHARS)
    msg_id = ids()
    if offer is None:
        record = start_record(
            IssueCredential,
            thid=msg_id,
            role=HOLDER,
            command="send-proposal",
            our_did=our_did,
            their_did=their_did,
            now=now,
        )
    else:
        record = offer.copy()
        record.state = fire(TRANSITIONS, record.role, record.state, "send-proposal")
        record.updated_time = now
        record.remember(msg_id)
    body = _body(goal_code, comment, credential_preview=preview(claims) if claims else None)
    attachments = None
    if vct is not None or credential_format is not None:
        attachments = [
            {
                "id": ids(),
                "media_type": "application/json",
                "format": credential_format or FORMAT,
                "data": {"json": {"vct": vct} if vct is not None else {}},
            }
        ]
    message = new_message(
        PROPOSE_CREDENTIAL,
        body,
        msg_id=msg_id,
        frm=our_did,
        to=their_did,
        thid=record.thid,
        now=now,
        attachments=attachments,
    )
    return Transition(
        record, [message], [Event("issue-credential.proposal-sent", record.thid, {"to": their_did})]
    )


def accept_offer(
    record: ProtocolRecord,
    *,
    holder_jwk: dict[str, Any] | None = None,
    now: int,
    ids: Callable[[], str] = new_id,
) -> Transition:
    """Holder: accept the offer on ``record``.  An SD-JWT VC is bound to
    ``holder_jwk`` (our *public* key; the private one stays in the wallet); a
    ``di_vc`` credential to our DID in the relationship (``record.our_did``,
    its subject id), so ``holder_jwk`` is not needed for it."""
    updated = record.copy()
    updated.state = fire(TRANSITIONS, record.role, record.state, "accept-offer")
    offer = updated.data["offer"]
    if offer.get("format") == DI_VC:
        if updated.our_did is None:
            raise InvalidBodyError("the thread has no DID of ours to be the subject")
        updated.data["holder_did"] = updated.our_did
        details: dict[str, Any] = {"credentialSubject": {"id": updated.our_did}}
        credential_format = DI_VC
    else:
        jwk = check_public_jwk(holder_jwk)
        updated.data["holder_jwk"] = jwk
        details = {"vct": offer["vct"], "cnf": {"jwk": jwk}}
        credential_format = FORMAT
    updated.updated_time = now
    msg_id = ids()
    updated.remember(msg_id)
    attachment = {
        "id": ids(),
        "media_type": "application/json",
        "format": credential_format,
        "data": {"json": details},
    }
    message = new_message(
        REQUEST_CREDENTIAL,
        _body(offer.get("goal_code"), None),
        msg_id=msg_id,
        frm=updated.our_did,
        to=updated.their_did,
        thid=updated.thid,
        now=now,
        attachments=[attachment],
    )
    event = Event("issue-credential.request-sent", updated.thid, {"to": updated.their_did})
    return Transition(updated, [message], [event])


def decline(
    record: ProtocolRecord, *, reason: str, now: int, ids: Callable[[], str] = new_id
) -> Transition:
    """Either role: decline the offer or proposal on ``record`` -> a problem-report
    (``issuance-abandoned``, ``reason`` in its args); the thread is abandoned."""
    updated = record.copy()
    updated.state = fire(TRANSITIONS, record.role, record.state, "decline")
    updated.updated_time = now
    report = decline_report(updated, ABANDONED_CODE, reason, now, ids)
    event = Event("issue-credential.declined", updated.thid, {"reason": reason})
    return Transition(updated, [report], [event])

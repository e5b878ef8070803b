"""Present Proof 3.0 (``https://didcomm.org/present-proof/3.0``) with SD-JWT VCs and
W3C VC 2.0 Data Integrity credentials.

Theory of operation
-------------------
Two roles: the *verifier* asks, the *prover* (a holder) answers with a
presentation that discloses only what was asked::

    verifier: request-presentation  -------------------------->  prover
              (a DIF presentation definition: vct, issuers, the claims
               wanted and filters on them; a fresh nonce; our DID as domain)
                                   prover's user picks a credential (matching)
              <---------------------------------  presentation (please_ack)
              (presentation_submission + the SD-JWT with ONLY the requested
               disclosures and a key-binding JWT over our DID and the nonce)
    verifier: verify -> "present-proof.verified" + ack, or
              "present-proof.failed" + problem-report

The prover may open with ``propose-presentation`` (a definition of what it
is willing to show); the verifier's user answers with a request on the same
thread (:func:`request_presentation` with ``proposal=``), and a prover may
counter a request with a proposal.

What the verifier accepts: the submission answers our definition (same id,
every descriptor, the SD-JWT VC format); the SD-JWT verifies against the
issuer's DID document, carries a key-binding JWT whose audience is our DID
and whose nonce is this thread's (a presentation made for another thread or
verifier fails: no replay), every required claim is disclosed and passes its
filter, and ``vct``/issuer are among those allowed.  The event carries only
the claims the definition asked for; anything else disclosed is dropped.
A failed verification abandons the thread on both sides.

    verifier: start --send-request--> request-sent --presentation--> done | abandoned
              start --propose-presentation--> proposal-received --send-request--> request-sent
              request-sent --propose-presentation--> proposal-received
              proposal-received --decline--> abandoned
    prover:   start --request-presentation--> request-received
              request-received --send-presentation--> presentation-sent
              start --send-proposal--> proposal-sent --request-presentation--> request-received
              request-received --send-proposal--> proposal-sent
              request-received --decline--> abandoned

Attachment formats (the present-proof 3.0 registry's DIF entries):

- ``dif/presentation-exchange/definitions@v1.0`` on request- and
  propose-presentation: ``data.json`` is ``{"options": {"challenge": nonce,
  "domain": verifier DID}, "presentation_definition": {...}}`` (Aries RFC
  0510's shape, which the 3.0 text adopts).
- ``dif/presentation-exchange/submission@v1.0`` on presentation:
  ``data.json`` is ``{"presentation_submission": {...}, "vp_token": "<SD-JWT~KB-JWT>"}``;
  the descriptor map's ``path`` is ``$.vp_token`` and its ``format``
  ``dc+sd-jwt`` (OpenID4VP's names for the same two things).

Data Integrity credentials (``di_vc``, see :mod:`protocols.presentation_exchange`):
a request made with ``formats=("dc+sd-jwt", "di_vc")`` accepts either; its
definition then says ``limit_disclosure: "preferred"``, because a Data
Integrity proof covers every claim and the credential can only be shown
WHOLE.  A definition that requires limited disclosure never matches a
``di_vc`` credential, and ``present-proof.request-received`` says
``"discloses": "selected" | "whole credential"`` so the owner's consent is
informed.  The prover answers with a VC 2.0 presentation (``di_vp``) in
``vp_token`` (a JSON object here, as OpenID4VP carries ``ldp_vp``): holder =
the credential's subject id (our DID with the issuer), one embedded
credential, an ``authentication`` proof with ``challenge`` = the request's
nonce and ``domain`` = the verifier's DID (:func:`present_whole`).  The
verifier checks that proof and the issuer's, that the holder is the
subject of each credential, and evaluates the definition's fields against
the claims view (``credentialSubject``, ``vct`` = the second type, ``iss``
= the issuer); the verified event carries only the requested claims.

Revocation (:mod:`protocols.status_list`, :mod:`protocols.status_exchange`):
the prover *staples* to its presentation the latest signed status list it
holds for each status entry of the presented credential
(``present(status_lists=...)``: URI -> list; a ``di_vc`` credential may name
a revocation list and a suspension list), like OCSP stapling -- the verifier
needs no connection to the issuer, and the issuer never learns who verifies
what.  A request names ``status_max_age`` (seconds, default
:data:`DEFAULT_STATUS_MAX_AGE`) in its body.  A credential that names status
lists is accepted only with, for every entry, a stapled list signed by the
credential's issuer, for that URI and the entry's purpose, not expired and
signed at most ``status_max_age`` seconds ago, whose entry for it is 0:
otherwise the verdict fails with :data:`REASON_REVOKED` ("credential
revoked"), :data:`REASON_SUSPENDED` ("credential suspended": a token entry
of 2, or a set bit in a suspension list), or :data:`REASON_STATUS_UNKNOWN`
("revocation status unknown", alone when no fresh list came, followed by
": why" when a stapled list is forged or unreadable).  The verified event's
``status`` says ``"valid"`` or ``"not revocable"`` (the credential names no
list).  The prover's :func:`matching` leaves out credentials the daemon
knows are revoked.

Every message needs an authenticated and encrypted sender.  Records hold
plain JSON (definition, nonce); the holder's private key is passed to
:func:`present` and never stored.

Daemon API: :func:`request_presentation`, :func:`propose_presentation`,
:func:`matching`, :func:`present`, :func:`decline`, and
:class:`PresentProof` in the dispatcher.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

# As ``sd_jwt_vc``: ``present``'s keyword ``sd_jwt`` (the daemon's name for the
# credential) would hide the module inside that function.
from . import data_integrity, status_exchange, status_list
from . import sd_jwt as sd_jwt_vc
from .codec import b64u_decode, json_object
from .did.resolver import DIDResolver
from .errors import DIDCommError, StatusListExpiredError
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
from .issue_credential import (
    MAX_COMMENT_CHARS,
    MAX_CREDENTIAL_CHARS,
    MAX_GOAL_CODE_CHARS,
    attachment_json,
    check_text,
    decline_report,
    xsd_datetime,
)
from .keys import PrivateKey
from .message import new_id
from .presentation_exchange import (
    ALWAYS_VISIBLE,
    DI_FORMATS,
    FORMAT_DI_VC,
    FORMAT_DI_VP,
    FORMAT_SD_JWT_VC,
    NotSatisfiedError,
    PresentationDefinition,
    accepted_formats,
    build_definition,
    build_submission,
    check_submission,
    constant_values,
    discloses,
    match_claims,
    parse_definition,
    requested_claims,
    requested_values,
    resolve_path,
    satisfies,
)
from .protocol_errors import InvalidBodyError
from .report_problem import report_for_error

PIURI = "https://didcomm.org/present-proof/3.0"
PROPOSE_PRESENTATION = PIURI + "/propose-presentation"
REQUEST_PRESENTATION = PIURI + "/request-presentation"
PRESENTATION = PIURI + "/presentation"

#: Attachment format of a presentation definition (request and proposal).
FORMAT_DEFINITION = "dif/presentation-exchange/definitions@v1.0"
#: Attachment format of a presentation submission.
FORMAT_SUBMISSION = "dif/presentation-exchange/submission@v1.0"
#: Where the SD-JWT presentation sits in the submission attachment.
VP_TOKEN = "vp_token"
VP_TOKEN_PATH = "$." + VP_TOKEN
#: Problem code of a declined request or proposal.
ABANDONED_CODE = "e.p.presentation-abandoned"

VERIFIER, PROVER = "verifier", "prover"
PROPOSAL_SENT, PROPOSAL_RECEIVED = "proposal-sent", "proposal-received"
REQUEST_SENT, REQUEST_RECEIVED = "request-sent", "request-received"
PRESENTATION_SENT, DONE = "presentation-sent", "done"

#: Random bytes in a request's nonce (base64url in the message).
NONCE_BYTES = 32
#: Longest nonce and domain we accept from a verifier.
MAX_NONCE_CHARS = 256
#: Longest presentation (SD-JWT with disclosures and key binding) we read.
MAX_PRESENTATION_CHARS = MAX_CREDENTIAL_CHARS
#: How old (seconds since it was signed) a stapled status list a verifier
#: accepts by default: a day, so a revocation reaches every verifier within
#: a day plus the holder's refresh period.
DEFAULT_STATUS_MAX_AGE = 86_400
#: The largest ``status_max_age`` a request may name (a year).
MAX_STATUS_MAX_AGE = 366 * 86_400
#: The verdict's reasons when a revocable credential fails its status check.
REASON_REVOKED = "credential revoked"
REASON_SUSPENDED = "credential suspended"
REASON_STATUS_UNKNOWN = "revocation status unknown"
#: ``status`` of a verified presentation: its credential's entry was 0 in a fresh
#: list signed by its issuer / the credential names no status list.
STATUS_VALID, STATUS_NOT_REVOCABLE = "valid", "not revocable"

_NO_LISTS: Mapping[str, str | dict[str, Any]] = MappingProxyType({})

TRANSITIONS: Table = {
    VERIFIER: {
        START: {"send-request": REQUEST_SENT, "propose-presentation": PROPOSAL_RECEIVED},
        PROPOSAL_RECEIVED: {"send-request": REQUEST_SENT, "decline": ABANDONED},
        REQUEST_SENT: {"presentation": DONE, "propose-presentation": PROPOSAL_RECEIVED},
    },
    PROVER: {
        START: {"request-presentation": REQUEST_RECEIVED, "send-proposal": PROPOSAL_SENT},
        PROPOSAL_SENT: {"request-presentation": REQUEST_RECEIVED},
        REQUEST_RECEIVED: {
            "send-presentation": PRESENTATION_SENT,
            "send-proposal": PROPOSAL_SENT,
            "decline": ABANDONED,
        },
    },
}

_DEFINITIONS = frozenset({FORMAT_DEFINITION})
_SUBMISSIONS = frozenset({FORMAT_SUBMISSION})


class PresentationRejectedError(DIDCommError):
    """The presentation does not verify or does not answer the request."""

    problem_code = "e.p.req.presentation-rejected"


class CredentialRevokedError(PresentationRejectedError):
    """The presented credential is revoked (or suspended) in its issuer's fresh list."""

    problem_code = "e.p.req.presentation-rejected.revoked"


class StatusUnknownError(PresentationRejectedError):
    """A revocable credential came without a fresh, valid list from its issuer."""

    problem_code = "e.p.req.presentation-rejected.status-unknown"


def check_status_max_age(value: object) -> int:
    """A ``status_max_age``: whole seconds, 0 to :data:`MAX_STATUS_MAX_AGE`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidBodyError("'status_max_age' must be whole seconds")
    if not 0 <= value <= MAX_STATUS_MAX_AGE:
        raise InvalidBodyError(f"'status_max_age' must be 0 to {MAX_STATUS_MAX_AGE} seconds")
    return value


def status_references(credential: str) -> list[status_list.StatusReference]:
    """Every status entry of one of our stored credentials (the SD-JWT ``status``
    claim; each ``di_vc`` ``credentialStatus`` entry), none if it has none;
    a :class:`~protocols.errors.DIDCommError` if they cannot be read."""
    if credential_format(credential) == FORMAT_DI_VC:
        document = data_integrity.parse_document(credential)
        if "credentialStatus" not in document:
            return []
        return status_list.read_references(document["credentialStatus"], bitstring=True)
    claims = credential_claims(credential)
    if "status" not in claims:
        return []
    return status_list.read_references(claims["status"], bitstring=False)


def request_summary(definition: PresentationDefinition) -> dict[str, Any]:
    """What a person needs to judge a request or proposal (its events; the daemon's
    list of requests waiting for an answer)."""
    vcts = constant_values(definition, "vct")
    return {
        "vct": vcts[0] if vcts else None,
        "claims": requested_claims(definition),
        "issuers": constant_values(definition, "iss"),
        "formats": accepted_formats(definition),
        "discloses": discloses(definition),
    }


def credential_format(credential: str) -> str:
    """The format of one of our stored credentials: ``di_vc`` (JSON text) or ``dc+sd-jwt``."""
    return FORMAT_DI_VC if credential.lstrip().startswith("{") else FORMAT_SD_JWT_VC


def di_view(credential: Any) -> dict[str, Any]:
    """The claims view of a VC 2.0 credential that PE fields address: its
    ``credentialSubject`` members (``id`` left out), ``vct`` = the type after
    ``VerifiableCredential``, ``iss`` = the issuer, ``exp`` = ``validUntil``
    in epoch seconds."""
    if not isinstance(credential, dict):
        raise InvalidBodyError("a credential must be a JSON object")
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict):
        raise InvalidBodyError("a credential's credentialSubject must be one object")
    claims = {k: v for k, v in subject.items() if k != "id"}
    types = credential.get("type")
    if isinstance(types, list) and len(types) > 1 and isinstance(types[1], str):
        claims["vct"] = types[1]
    issuer = credential.get("issuer")
    claims["iss"] = issuer.get("id") if isinstance(issuer, dict) else issuer
    if "validUntil" in credential:
        until = data_integrity.parse_datetime(credential["validUntil"], "validUntil")
        claims["exp"] = int(until.timestamp())
    return claims


def credential_claims(credential: str) -> dict[str, Any]:
    """Every claim of one of our own stored SD-JWT VCs (plain payload claims,
    ``vct`` and ``iss`` included, plus every disclosable one), for matching.

    The holder reads its own wallet here, so nothing is verified; a credential
    that cannot be read is a :class:`~protocols.errors.DIDCommError`.  Every
    disclosable claim is taken as top-level, which is what we issue; a nested
    Disclosure from another issuer would be matched by its name at the top.
    """
    if not isinstance(credential, str) or len(credential) > MAX_CREDENTIAL_CHARS:
        raise InvalidBodyError("a stored credential must be a bounded string")
    if credential_format(credential) == FORMAT_DI_VC:
        return di_view(data_integrity.parse_document(credential))
    parts = credential.split("~", 1)[0].split(".")
    if len(parts) != 3:
        raise InvalidBodyError("a stored credential is not an SD-JWT")
    payload = json_object(b64u_decode(parts[1], "SD-JWT payload"), "SD-JWT payload")
    claims = {k: v for k, v in payload.items() if not k.startswith("_sd")}
    try:
        disclosable = sd_jwt_vc.disclosable_claims(credential)
    except (ValueError, TypeError, KeyError):
        raise InvalidBodyError("a stored credential's disclosures cannot be read") from None
    claims.update(disclosable)
    return claims


class PresentProof(ProtocolMachine):
    """The present-proof machine for the dispatcher (both roles)."""

    PROTOCOL: ClassVar[str] = PIURI
    ROLES: ClassVar[tuple[str, ...]] = (VERIFIER, PROVER)
    MESSAGES: ClassVar[dict[str, Protection]] = {
        "propose-presentation": Protection.AUTHENTICATED_ENCRYPTED,
        "request-presentation": Protection.AUTHENTICATED_ENCRYPTED,
        "presentation": Protection.AUTHENTICATED_ENCRYPTED,
    }
    FIRST_MESSAGES: ClassVar[dict[str, str]] = {
        "propose-presentation": VERIFIER,
        "request-presentation": PROVER,
    }
    TRANSITIONS: ClassVar[Table] = TRANSITIONS

    def __init__(self, resolver: DIDResolver) -> None:
        self.resolver = resolver

    def react(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        """One received message; ``record.state`` is already the table's new state."""
        if inbound.name == "propose-presentation":
            return self._proposal(record, inbound)
        if inbound.name == "request-presentation":
            return self._request(record, inbound)
        return self._presentation(record, inbound)

    def _proposal(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        comment = check_text(inbound.body.get("comment"), "comment", MAX_COMMENT_CHARS)
        details = attachment_json(inbound.message, _DEFINITIONS)
        definition = parse_definition(details.get("presentation_definition"))
        record.data["proposal"] = definition.raw
        # Kept with the proposal: the verifier's owner reads it when deciding, later
        # than the event (the daemon's list of what waits for an answer).
        record.data["proposal_comment"] = comment
        event = Event(
            "present-proof.proposal-received",
            record.thid,
            {"from": inbound.their_did, **request_summary(definition), "comment": comment},
        )
        return Transition(record, [], [event])

    def _request(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        comment = check_text(inbound.body.get("comment"), "comment", MAX_COMMENT_CHARS)
        goal_code = check_text(inbound.body.get("goal_code"), "goal_code", MAX_GOAL_CODE_CHARS)
        details = attachment_json(inbound.message, _DEFINITIONS)
        options = details.get("options")
        if not isinstance(options, dict):
            raise InvalidBodyError("the request needs 'options' with a challenge")
        nonce = options.get("challenge")
        if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_CHARS:
            raise InvalidBodyError("the request's challenge must be a short string")
        domain = options.get("domain", inbound.their_did)
        if domain != inbound.their_did:
            # The key-binding JWT names the verifier; a domain that is not the
            # sender would make us sign a presentation for someone else.
            raise InvalidBodyError("the request's domain is not its sender")
        definition = parse_definition(details.get("presentation_definition"))
        max_age = inbound.body.get("status_max_age")
        if max_age is not None:
            max_age = check_status_max_age(max_age)
        record.data.update(
            {
                "nonce": nonce,
                "definition": definition.raw,
                "comment": comment,
                "status_max_age": max_age,
            }
        )
        event = Event(
            "present-proof.request-received",
            record.thid,
            {
                "from": inbound.their_did,
                **request_summary(definition),
                "comment": comment,
                "goal_code": goal_code,
                # How fresh a status list the verifier wants (None: it did not say).
                "status_max_age": max_age,
            },
        )
        return Transition(record, [], [event])

    def _presentation(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        try:
            verified = self._verify(record, inbound)
        except DIDCommError as error:
            record.state = ABANDONED
            record.data["failure"] = error.message
            report = report_for_error(
                error, inbound.message, msg_id=inbound.ids(), frm=inbound.our_did, now=inbound.now
            )
            if inbound.message.get("please_ack"):
                # The dispatcher adds the requested ack to this first reply; without
                # this the report would name the presentation twice.
                report.pop("ack", None)
            event = Event("present-proof.failed", record.thid, {"reason": error.message})
            return Transition(record, [report], [event])
        record.data["verified"] = verified
        return Transition(record, [], [Event("present-proof.verified", record.thid, verified)])

    def _verify(self, record: ProtocolRecord, inbound: Inbound) -> dict[str, Any]:
        definition = parse_definition(record.data.get("definition"))
        nonce = record.data.get("nonce")
        if not isinstance(nonce, str) or not isinstance(inbound.our_did, str):
            # Both bind the presentation to this request; a record without them is damaged.
            raise PresentationRejectedError("this thread has no nonce or audience to check")
        details = attachment_json(inbound.message, _SUBMISSIONS)
        entries = check_submission(definition, details.get("presentation_submission"))
        issuer: str | None = None
        vct: str | None = None
        claims: dict[str, Any] = {}
        # (issuer, status reference, the list format it must be in), per credential.
        statuses: list[tuple[str, Any, str]] = []
        for entry in entries:
            token = resolve_path(details, entry.path)
            if entry.format in DI_FORMATS:
                di_issuer, di_vct, shown, entry_status = self._verify_whole(token, nonce, inbound)
                if entry_status is not None:
                    statuses.append((di_issuer, entry_status, status_exchange.FORMAT_BITSTRING))
                if (issuer, vct) not in ((None, None), (di_issuer, di_vct)):
                    raise PresentationRejectedError(
                        "the descriptors are answered by two credentials"
                    )
                issuer, vct = di_issuer, di_vct
                claims.update(requested_values(entry.descriptor, shown))
                continue
            if not isinstance(token, str) or len(token) > MAX_PRESENTATION_CHARS:
                raise PresentationRejectedError("the submission's path leads to no presentation")
            try:
                result = sd_jwt_vc.verify(
                    token,
                    resolver=self.resolver,
                    now=inbound.now,
                    audience=inbound.our_did,
                    nonce=nonce,
                    require_key_binding=True,
                )
            except DIDCommError as error:
                raise PresentationRejectedError(
                    f"the presentation does not verify: {error.message}"
                ) from None
            except (ValueError, TypeError, KeyError) as error:
                raise PresentationRejectedError(
                    f"the presentation is malformed: {type(error).__name__}"
                ) from None
            if not result.key_bound:
                raise PresentationRejectedError("the presentation has no key binding")
            if (issuer, vct) not in ((None, None), (result.issuer, result.vct)):
                raise PresentationRejectedError("the descriptors are answered by two credentials")
            issuer, vct = result.issuer, result.vct
            if "status" in result.claims:
                statuses.append(
                    (result.issuer, result.claims["status"], status_exchange.FORMAT_TOKEN)
                )
            visible = {
                **{k: v for k, v in result.claims.items() if k not in ALWAYS_VISIBLE},
                "vct": result.vct,
                "iss": result.issuer,
            }
            # Only the requested fields' values are kept, whatever else was disclosed
            # (identical to ``evaluate`` under limit_disclosure "required").
            claims.update(requested_values(entry.descriptor, visible))
        status = self._check_statuses(record, inbound, statuses)
        return {"issuer": issuer, "vct": vct, "claims": claims, "status": status}

    def _check_statuses(
        self, record: ProtocolRecord, inbound: Inbound, statuses: list[tuple[str, Any, str]]
    ) -> str:
        """The verdict's ``status``, or the error that fails the presentation: each
        status entry of each revocable credential (a ``di_vc`` one may have a
        revocation and a suspension entry) needs a list stapled by its issuer, of the
        entry's purpose, signed no more than ``status_max_age`` seconds ago, whose
        entry for it is 0.  Entries are read revocation first, so a credential both
        revoked and suspended is refused as revoked."""
        if not statuses:
            return STATUS_NOT_REVOCABLE
        max_age = record.data.get("status_max_age")
        if not isinstance(max_age, int):
            max_age = DEFAULT_STATUS_MAX_AGE  # a request made before the field existed
        try:
            stapled = status_exchange.stapled_lists(inbound.message)
        except DIDCommError as error:
            raise StatusUnknownError(f"{REASON_STATUS_UNKNOWN}: {error.message}") from None
        entries: list[tuple[str, status_list.StatusReference, str]] = []
        for credential_issuer, raw, kind in statuses:
            try:
                references = status_list.read_references(
                    raw, bitstring=kind == status_exchange.FORMAT_BITSTRING
                )
            except DIDCommError as error:
                raise StatusUnknownError(f"{REASON_STATUS_UNKNOWN}: {error.message}") from None
            entries.extend((credential_issuer, reference, kind) for reference in references)
        for credential_issuer, reference, kind in entries:
            try:
                found = status_exchange.find_list(
                    stapled,
                    resolver=self.resolver,
                    now=inbound.now,
                    uri=reference.uri,
                    issuer=credential_issuer,
                    kind=kind,
                    purpose=reference.purpose,
                )
                if found is None or inbound.now - found[0].issued_at > max_age:
                    raise StatusUnknownError(REASON_STATUS_UNKNOWN)
                value = found[0].status(reference.index)
            except StatusListExpiredError:
                raise StatusUnknownError(REASON_STATUS_UNKNOWN) from None
            except StatusUnknownError:
                raise
            except DIDCommError as error:
                # A forged or unreadable list, or a credential whose reference is bad.
                raise StatusUnknownError(f"{REASON_STATUS_UNKNOWN}: {error.message}") from None
            if value == status_list.REVOKED:
                raise CredentialRevokedError(REASON_REVOKED)
            if value == status_list.SUSPENDED:
                raise CredentialRevokedError(REASON_SUSPENDED)
            if value != status_list.VALID:
                raise StatusUnknownError(f"{REASON_STATUS_UNKNOWN}: status value {value}")
        return STATUS_VALID

    def _verify_whole(
        self, token: Any, nonce: str, inbound: Inbound
    ) -> tuple[str, str | None, dict[str, Any], Any]:
        """A ``di_vp``: (issuer, vct, claims view, credentialStatus or None) of its one
        credential, or an error."""
        if not isinstance(token, dict):
            raise PresentationRejectedError("the submission's path leads to no presentation")
        try:
            verified = data_integrity.verify_presentation(
                token,
                resolver=self.resolver,
                challenge=nonce,
                domain=inbound.our_did,
                now=xsd_datetime(inbound.now),
            )
        except DIDCommError as error:
            raise PresentationRejectedError(
                f"the presentation does not verify: {error.message}"
            ) from None
        if len(verified.credentials) != 1:
            raise PresentationRejectedError("a di_vp must carry exactly one credential")
        credential = verified.credentials[0]
        subject = credential.document.get("credentialSubject")
        if not isinstance(subject, dict) or subject.get("id") != verified.controller:
            # data_integrity proves who signed; that the signer is the subject
            # (not someone replaying another's credential) is ours to check.
            raise PresentationRejectedError(
                "the presentation's holder is not the credential's subject"
            )
        view = di_view(credential.document)
        view["iss"] = credential.controller
        vct = view.get("vct")
        entry_status = credential.document.get("credentialStatus")
        return credential.controller, vct if isinstance(vct, str) else None, view, entry_status


# -- local commands -------------------------------------------------------------------


def _definition_attachment(
    definition: dict[str, Any], ids: Callable[[], str], options: dict[str, Any] | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"presentation_definition": definition}
    if options is not None:
        payload["options"] = options
    return {
        "id": ids(),
        "media_type": "application/json",
        "format": FORMAT_DEFINITION,
        "data": {"json": payload},
    }


def _body(goal_code: str | None, comment: str | None) -> dict[str, Any]:
    check_text(comment, "comment", MAX_COMMENT_CHARS)
    check_text(goal_code, "goal_code", MAX_GOAL_CODE_CHARS)
    body = {"goal_code": goal_code, "comment": comment}
    return {k: v for k, v in body.items() if v is not None}


def _continue(record: ProtocolRecord, command: str, msg_id: str, now: int) -> ProtocolRecord:
    updated = record.copy()
    updated.state = fire(TRANSITIONS, record.role, record.state, command)
    updated.updated_time = now
    updated.remember(msg_id)
    return updated


def request_presentation(
    our_did: str,
    their_did: str,
    now: int,
    *,
    vct: str | None,
    claims: list[str],
    issuers: list[str] | None = None,
    filters: dict[str, dict[str, Any]] | None = None,
    comment: str | None = None,
    goal_code: str | None = None,
    proposal: ProtocolRecord | None = None,
    ids: Callable[[], str] = new_id,
    formats: tuple[str, ...] = (FORMAT_SD_JWT_VC,),
    status_max_age: int = DEFAULT_STATUS_MAX_AGE,
) -> Transition:
    """Verifier: ask ``their_did`` for a credential in one of ``formats``
    (``dc+sd-jwt``, ``di_vc``; a di_vc is shown whole) of type ``vct`` (any when None),
    from one of ``issuers`` (any when None), disclosing exactly ``claims``, each
    passing ``filters[name]`` (a JSON-Schema subset) when given.

    A new thread, or the answer to ``proposal``.  The nonce is fresh random
    (:data:`NONCE_BYTES`), never derived from ``ids``.  A revocable credential
    will be accepted only with a stapled list its issuer signed at most
    ``status_max_age`` seconds before the presentation arrives (announced in
    the request body, so the prover can refresh an older one first).
    """
    status_max_age = check_status_max_age(status_max_age)
    if not claims or not all(isinstance(c, str) and c for c in claims):
        raise InvalidBodyError("a request must name at least one claim")
    definition = build_definition(
        definition_id=ids(),
        vct=vct,
        claims=claims,
        issuers=issuers,
        filters=filters,
        formats=formats,
    )
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    body = {**_body(goal_code, comment), "status_max_age": status_max_age}
    msg_id = ids()
    data = {
        "nonce": nonce,
        "definition": definition,
        "comment": comment,
        "status_max_age": status_max_age,
    }
    if proposal is None:
        record = start_record(
            PresentProof,
            thid=msg_id,
            role=VERIFIER,
            command="send-request",
            our_did=our_did,
            their_did=their_did,
            now=now,
            data=data,
        )
    else:
        record = _continue(proposal, "send-request", msg_id, now)
        record.data.update(data)
    attachment = _definition_attachment(definition, ids, {"challenge": nonce, "domain": our_did})
    message = new_message(
        REQUEST_PRESENTATION,
        body,
        msg_id=msg_id,
        frm=our_did,
        to=their_did,
        thid=record.thid,
        now=now,
        attachments=[attachment],
    )
    event = Event("present-proof.request-sent", record.thid, {"to": their_did})
    return Transition(record, [message], [event])


def propose_presentation(
    our_did: str,
    their_did: str,
    now: int,
    *,
    vct: str | None,
    claims: list[str],
    comment: str | None = None,
    request: ProtocolRecord | None = None,
    ids: Callable[[], str] = new_id,
    formats: tuple[str, ...] = (FORMAT_SD_JWT_VC,),
) -> Transition:
    """Prover: offer to show ``claims`` of a ``vct`` credential in one of ``formats``
    (as :func:`request_presentation`'s: a ``di_vc`` would be shown whole) -- a new
    thread, or a counter to the ``request`` record."""
    if not claims:
        raise InvalidBodyError("a proposal must name at least one claim")
    definition = build_definition(definition_id=ids(), vct=vct, claims=claims, formats=formats)
    body = _body(None, comment)
    msg_id = ids()
    if request is None:
        record = start_record(
            PresentProof,
            thid=msg_id,
            role=PROVER,
            command="send-proposal",
            our_did=our_did,
            their_did=their_did,
            now=now,
            data={"proposal": definition},
        )
    else:
        record = _continue(request, "send-proposal", msg_id, now)
        record.data["proposal"] = definition
    message = new_message(
        PROPOSE_PRESENTATION,
        body,
        msg_id=msg_id,
        frm=our_did,
        to=their_did,
        thid=record.thid,
        now=now,
        attachments=[_definition_attachment(definition, ids)],
    )
    event = Event("present-proof.proposal-sent", record.thid, {"to": their_did})
    return Transition(record, [message], [event])


def matching(
    record: ProtocolRecord,
    credentials: Iterable[tuple[str, str]],
    *,
    now: int | None = None,
    revoked: Collection[str] = (),
) -> list[str]:
    """Prover: the ids of the ``(id, credential)`` credentials (SD-JWT text or a
    ``di_vc``'s JSON text) that can answer the request on ``record`` (a
    credential that cannot be read is skipped, and with ``now`` one whose
    ``exp``/``validUntil`` has passed; a ``di_vc`` only when the definition
    does not require limited disclosure).  Ids in ``revoked`` (credentials
    whose latest list says revoked or suspended) are never offered: a
    verifier would refuse them, and showing one discloses for nothing."""
    definition = parse_definition(record.data.get("definition"))
    found = []
    for credential_id, credential in credentials:
        if credential_id in revoked:
            continue
        try:
            claims = credential_claims(credential)
        except DIDCommError:
            continue
        expires = claims.get("exp")
        if now is not None and isinstance(expires, int) and expires <= now:
            continue
        if satisfies(definition, claims, format=credential_format(credential)):
            found.append(credential_id)
    return found


def _request_to_answer(record: ProtocolRecord) -> tuple[PresentationDefinition, str, str]:
    """Prover: the definition, nonce and verifier DID of the request on ``record``."""
    definition = parse_definition(record.data.get("definition"))
    nonce = record.data.get("nonce")
    if not isinstance(nonce, str) or record.their_did is None:
        raise InvalidBodyError("this thread has no request to answer")
    return definition, nonce, record.their_did


def _presentation(
    updated: ProtocolRecord,
    msg_id: str,
    definition: PresentationDefinition,
    token: Any,
    submission_format: str,
    disclosed: list[str],
    now: int,
    ids: Callable[[], str],
    event_extra: dict[str, Any],
    staples: list[dict[str, Any]],
) -> Transition:
    """The ``presentation`` message carrying ``token`` (an SD-JWT+KB or a signed VP)
    with its submission and the ``staples`` (status lists), the record noting what
    it disclosed, and the event."""
    submission = build_submission(
        definition, submission_id=ids(), path=VP_TOKEN_PATH, format=submission_format
    )
    attachment = {
        "id": ids(),
        "media_type": "application/json",
        "format": FORMAT_SUBMISSION,
        "data": {"json": {"presentation_submission": submission, VP_TOKEN: token}},
    }
    message = new_message(
        PRESENTATION,
        {},
        msg_id=msg_id,
        frm=updated.our_did,
        to=updated.their_did,
        thid=updated.thid,
        now=now,
        attachments=[attachment, *staples],
        please_ack=[""],
    )
    updated.data["disclosed"] = disclosed
    event = Event(
        "present-proof.presentation-sent",
        updated.thid,
        {
            "to": updated.their_did,
            "disclosed": disclosed,
            "stapled": len(staples),
            **event_extra,
        },
    )
    return Transition(updated, [message], [event])


def _staples(
    credential: str, status_lists: Mapping[str, str | dict[str, Any]], kind: str
) -> list[dict[str, Any]]:
    """The attachments stapling each list ``credential`` names that we hold."""
    try:
        references = status_references(credential)
    except DIDCommError:
        return []  # an unreadable reference: the verifier will say so
    out: list[dict[str, Any]] = []
    for reference in references:
        document = status_lists.get(reference.uri)
        if isinstance(document, str) and kind == status_exchange.FORMAT_BITSTRING:
            # A list credential kept as its JSON text (a token never starts with "{").
            if not document.lstrip().startswith("{"):
                continue
            try:
                document = data_integrity.parse_document(document)
            except DIDCommError:
                continue
        if document is not None and status_exchange.list_format(document) == kind:
            out.append(status_exchange.list_attachment(document, len(out)))
    return out


def present(
    record: ProtocolRecord,
    *,
    sd_jwt: str,
    holder_key: PrivateKey,
    now: int,
    ids: Callable[[], str] = new_id,
    status_lists: Mapping[str, str | dict[str, Any]] = _NO_LISTS,
) -> Transition:
    """Prover: answer the request on ``record`` with ``sd_jwt`` (one of ours),
    disclosing ONLY the claims the definition names, key-bound to the verifier's
    DID and nonce with ``holder_key``.  :class:`NotSatisfiedError` if the
    credential cannot answer the request.  If the credential is revocable and
    ``status_lists`` (list URI -> the latest signed list we hold: a token's text)
    has its list, the list is stapled to the presentation."""
    credential = sd_jwt
    definition, nonce, verifier = _request_to_answer(record)
    msg_id = ids()
    updated = _continue(record, "send-presentation", msg_id, now)
    matches = match_claims(definition, credential_claims(credential), format=FORMAT_SD_JWT_VC)
    # Plain (always visible) claims need no Disclosure; ask only for the others.
    hidden = sd_jwt_vc.disclosable_claims(credential)
    disclose = list(dict.fromkeys(n for m in matches for n in m.disclose if n in hidden))
    try:
        token = sd_jwt_vc.present(
            credential,
            disclose,
            holder_key=holder_key,
            audience=verifier,
            nonce=nonce,
            now=now,
        )
    except (ValueError, TypeError, KeyError) as error:
        raise NotSatisfiedError(
            f"the credential cannot be presented: {type(error).__name__}"
        ) from None
    staples = _staples(credential, status_lists, status_exchange.FORMAT_TOKEN)
    return _presentation(
        updated, msg_id, definition, token, FORMAT_SD_JWT_VC, disclose, now, ids, {"format": FORMAT_SD_JWT_VC},
        staples,
    )


def present_whole(
    record: ProtocolRecord,
    *,
    credential: str,
    holder_key: PrivateKey,
    holder_kid: str,
    now: int,
    ids: Callable[[], str] = new_id,
    status_lists: Mapping[str, str | dict[str, Any]] = _NO_LISTS,
) -> Transition:
    """Prover: answer the request on ``record`` with a stored ``di_vc`` credential
    (its JSON text), shown WHOLE in a VC 2.0 presentation whose holder is the
    credential's subject, signed with ``holder_key`` (``holder_kid``, an
    authentication key of that DID) over the request's nonce and the
    verifier's DID.  :class:`NotSatisfiedError` if the credential cannot answer
    the request (or the request requires limited disclosure).  ``status_lists``
    as for :func:`present` (a list credential, as a dict or its JSON text)."""
    definition, nonce, verifier = _request_to_answer(record)
    document = data_integrity.parse_document(credential)
    match_claims(definition, di_view(document), format=FORMAT_DI_VC)
    subject = document.get("credentialSubject")
    holder = subject.get("id") if isinstance(subject, dict) else None
    if not isinstance(holder, str):
        raise NotSatisfiedError("the credential names no subject to present as")
    msg_id = ids()
    updated = _continue(record, "send-presentation", msg_id, now)
    presentation = {
        "@context": [data_integrity.VC_CONTEXT_V2],
        "type": [data_integrity.VP_TYPE],
        "holder": holder,
        "verifiableCredential": [document],
    }
    vp = data_integrity.sign_presentation(
        presentation,
        key=holder_key,
        verification_method=holder_kid,
        created=xsd_datetime(now),
        challenge=nonce,
        domain=verifier,
    )
    disclosed = sorted(k for k in di_view(document) if k not in ALWAYS_VISIBLE)
    staples = _staples(credential, status_lists, status_exchange.FORMAT_BITSTRING)
    return _presentation(
        updated,
        msg_id,
        definition,
        vp,
        FORMAT_DI_VP,
        disclosed,
        now,
        ids,
        {"format": FORMAT_DI_VC},
        staples,
    )


def decline(
    record: ProtocolRecord, *, reason: str, now: int, ids: Callable[[], str] = new_id
) -> Transition:
    """Either role: decline the request or proposal on ``record`` -> a problem-report
    (``presentation-abandoned``, ``reason`` in its args); the thread is abandoned."""
    updated = record.copy()
    updated.state = fire(TRANSITIONS, record.role, record.state, "decline")
    updated.updated_time = now
    report = decline_report(updated, ABANDONED_CODE, reason, now, ids)
    event = Event("present-proof.declined", updated.thid, {"reason": reason})
    return Transition(updated, [report], [event])

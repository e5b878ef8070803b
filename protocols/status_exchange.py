"""Status List exchange (``https://didcommd.dev/status-list/1.0``, ours): fetch an
issuer's latest signed status list over DIDComm, and staple lists to messages.

Theory of operation
-------------------
A revocable credential names an entry of its issuer's *status list*
(:mod:`protocols.status_list`; a ``di_vc`` one that can be suspended names
two, a revocation and a suspension list, each fetched and stapled on its
own); the list's URI is a DID URL with a path
(``{issuer}/status/sd-jwt/{n}``) that names a resource, never an HTTP
address.  A holder keeps the latest list its issuer signed and staples it to
every presentation (like OCSP stapling): the verifier needs no connection to
the issuer, and the issuer never learns who verifies what.  This protocol is
how the holder refreshes its copy, over the connection it got the credential
on::

    requester (holder): request {"uri"}  ------------------->  responder (issuer)
                                          status_source(uri): the current list
              <-------------------------  list  (attachment: the signed list)
    requester: verify (signed by the expected issuer, for that uri, not expired)
               -> "status-list.received", or "status-list.failed" + problem-report

The responder is stateless: it answers from the daemon's ``status_source``
(a callable: URI -> signed list or None) and keeps nothing but the
dispatcher's record of the thread; a URI it does not publish is a
problem-report (``e.p.req.not-found``).  A list reveals nothing about a
single credential (it covers :data:`~protocols.status_list.LIST_SIZE`
entries), so any authenticated peer may fetch one.  The requester learns
nothing it has not verified: the list must be signed by an
``assertionMethod`` key of the issuer the requester named (the credential's
issuer, not merely the peer that answered) and carry the URI it asked for.

    requester: start --send-request--> requested --list--> done | abandoned
    responder: start --request--> done

Both messages need an authenticated and encrypted sender.

Attachments (shared with :mod:`protocols.issue_credential`, which staples
the list at issuance, and :mod:`protocols.present_proof`, which staples the
lists of the presented credentials): a Status List Token travels as
``format`` :data:`FORMAT_TOKEN` (``statuslist+jwt``) in ``data.base64``; a
``BitstringStatusListCredential`` as :data:`FORMAT_BITSTRING`
(``bitstring-status-list``) in ``data.json``.  Every list a peer sends is
bounded (:data:`~protocols.status_list.MAX_TOKEN_CHARS`, the status list
module's decompression limits) before it is verified; at most
:data:`MAX_STAPLED_LISTS` are read from one message.

Daemon API: :func:`request_status_list`, :class:`StatusExchange` in the
dispatcher; :func:`list_attachment`, :func:`stapled_lists`,
:func:`verify_document` and :func:`document_text` for the other protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

from . import status_list
from .codec import b64u_decode, b64u_encode
from .did.resolver import DIDResolver
from .did.syntax import is_did
from .errors import (
    DIDCommError,
    MalformedStatusListError,
    StatusListIssuerError,
    StatusListMismatchError,
    StatusListTooLargeError,
)
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
    new_message,
    start_record,
)
from .jcs import canonicalize
from .message import new_id
from .protocol_errors import InvalidBodyError
from .report_problem import ProblemReport, report_for_error

PIURI: Final = "https://didcommd.dev/status-list/1.0"
REQUEST: Final = PIURI + "/request"
LIST: Final = PIURI + "/list"

#: Attachment format of a Status List Token (its JOSE ``typ``); ``data.base64``.
FORMAT_TOKEN: Final = status_list.TOKEN_TYP
#: Attachment format of a ``BitstringStatusListCredential``; ``data.json``.
FORMAT_BITSTRING: Final = "bitstring-status-list"
LIST_FORMATS: Final = frozenset({FORMAT_TOKEN, FORMAT_BITSTRING})
MEDIA_TYPE_TOKEN: Final = "application/statuslist+jwt"
MEDIA_TYPE_VC: Final = "application/vc"
#: The ``id`` of the attachment a status list is stapled as (``-{n}`` after the
#: first when a message carries several).
STAPLE_ID: Final = "status-list"
#: Most status list attachments read from one message (a presentation staples
#: one per presented credential's list).
MAX_STAPLED_LISTS: Final = 8
#: Longest list we staple, send or read: a token's characters, or a list
#: credential's canonical JSON bytes.
MAX_DOCUMENT_CHARS: Final = status_list.MAX_TOKEN_CHARS

REQUESTER, RESPONDER = "requester", "responder"
REQUESTED, DONE = "requested", "done"

TRANSITIONS: Table = {
    REQUESTER: {START: {"send-request": REQUESTED}, REQUESTED: {"list": DONE}},
    RESPONDER: {START: {"request": DONE}},
}

#: What the daemon gives the responder (and the issuer's issue-credential
#: machine): the current signed list for a URI we publish -- a token's text
#: or a list credential -- or None if we publish no such list.
StatusSource = Callable[[str], "str | dict[str, Any] | None"]


class StatusListNotFoundError(DIDCommError):
    """We publish no status list at the URI asked for."""

    problem_code = "e.p.req.not-found"


# -- stapled lists: attachments both ways -------------------------------------------------


def list_format(document: str | Mapping[str, Any]) -> str:
    """The attachment format of a signed list: a token's text or a list credential."""
    return FORMAT_TOKEN if isinstance(document, str) else FORMAT_BITSTRING


def document_text(document: str | Mapping[str, Any]) -> str:
    """A signed list as text: the token itself, or the credential's canonical JSON
    (what a store keeps and :func:`protocols.status_list.verify_status_list` reads)."""
    if isinstance(document, str):
        return document
    try:
        return canonicalize(document).decode("utf-8")
    except (DIDCommError, TypeError, ValueError, RecursionError):
        raise MalformedStatusListError("the status list credential is not plain JSON") from None


def list_attachment(document: str | Mapping[str, Any], number: int = 0) -> dict[str, Any]:
    """The attachment that staples ``document`` (its ``id`` :data:`STAPLE_ID`, then
    ``status-list-1``... for ``number`` 1, 2...)."""
    attachment_id = STAPLE_ID if number == 0 else f"{STAPLE_ID}-{number}"
    if len(document_text(document)) > MAX_DOCUMENT_CHARS:
        raise StatusListTooLargeError(f"a status list is over {MAX_DOCUMENT_CHARS} characters")
    if isinstance(document, str):
        return {
            "id": attachment_id,
            "media_type": MEDIA_TYPE_TOKEN,
            "format": FORMAT_TOKEN,
            "data": {"base64": b64u_encode(document.encode("ascii"))},
        }
    return {
        "id": attachment_id,
        "media_type": MEDIA_TYPE_VC,
        "format": FORMAT_BITSTRING,
        "data": {"json": dict(document)},
    }


def read_list_attachment(attachment: Mapping[str, Any]) -> str | dict[str, Any]:
    """The signed list an attachment carries (not yet verified), bounded."""
    data = attachment.get("data")
    if not isinstance(data, dict):
        raise MalformedStatusListError("a status list attachment needs a data object")
    if attachment.get("format") == FORMAT_TOKEN:
        encoded = data.get("base64")
        if not isinstance(encoded, str):
            raise MalformedStatusListError("a status list token travels in data.base64")
        if len(encoded) > MAX_DOCUMENT_CHARS * 4 // 3 + 4:
            raise StatusListTooLargeError(f"a status list is over {MAX_DOCUMENT_CHARS} characters")
        raw = b64u_decode(encoded.replace("+", "-").replace("/", "_"), "status list")
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedStatusListError("a status list token is ASCII text") from None
    if attachment.get("format") == FORMAT_BITSTRING:
        document = data.get("json")
        if not isinstance(document, dict):
            raise MalformedStatusListError("a status list credential travels in data.json")
        if len(document_text(document)) > MAX_DOCUMENT_CHARS:
            raise StatusListTooLargeError(f"a status list is over {MAX_DOCUMENT_CHARS} characters")
        return document
    raise MalformedStatusListError("the attachment is not a status list")


def stapled_lists(message: Mapping[str, Any]) -> list[str | dict[str, Any]]:
    """Every status list stapled to ``message`` (at most :data:`MAX_STAPLED_LISTS`),
    not yet verified; a malformed one is an error."""
    attachments = message.get("attachments")
    if not isinstance(attachments, list):
        return []
    found = [a for a in attachments if isinstance(a, dict) and a.get("format") in LIST_FORMATS]
    if len(found) > MAX_STAPLED_LISTS:
        raise StatusListTooLargeError(f"more than {MAX_STAPLED_LISTS} status lists attached")
    return [read_list_attachment(a) for a in found]


def verify_document(
    document: str | Mapping[str, Any],
    *,
    resolver: DIDResolver,
    now: int,
    uri: str,
    issuer: str | None,
) -> status_list.VerifiedStatusList:
    """Verify a signed list: by ``issuer`` (any DID when None), for ``uri``, valid at ``now``.  A token
    is a Token Status List (SD-JWT VCs), a dict a Bitstring Status List credential
    (``di_vc``); either way a :class:`~protocols.errors.StatusListError` if not."""
    if isinstance(document, str):
        return status_list.verify_token(
            document, resolver=resolver, now=now, uri=uri, issuer=issuer
        )
    return status_list.verify_list_credential(
        dict(document), resolver=resolver, now=now, url=uri, issuer=issuer
    )


def find_list(
    documents: list[str | dict[str, Any]],
    *,
    resolver: DIDResolver,
    now: int,
    uri: str,
    issuer: str,
    kind: str,
    purpose: str | None = None,
) -> tuple[status_list.VerifiedStatusList, str] | None:
    """The first of ``documents`` of attachment format ``kind`` that verifies as
    ``issuer``'s list at ``uri`` (with its text), or None.  A list for another
    URI is skipped; one for this URI that fails to verify, or whose purpose is
    not the entry's ``purpose`` (a Bitstring Status List's), is an error."""
    for document in documents:
        if list_format(document) != kind:
            continue
        try:
            verified = verify_document(document, resolver=resolver, now=now, uri=uri, issuer=None)
        except StatusListMismatchError:
            continue  # another list (sub / id): maybe another credential's
        # Ours to check after the URI matched: a list named as ours but signed by
        # someone else is forged, not merely someone else's.
        if verified.issuer != issuer:
            raise StatusListIssuerError("the status list is signed by another issuer")
        if verified.purpose != purpose:
            # The spec's rule: a credential's entry is read only in a list of its purpose.
            raise StatusListMismatchError(
                f"the status list at {uri[:64]} is for {verified.purpose}, not {purpose}"
            )
        return verified, document_text(document)
    return None


# -- the machine ---------------------------------------------------------------------------


def _read_uri(body: Mapping[str, Any]) -> str:
    uri = body.get("uri")
    if not isinstance(uri, str) or not 0 < len(uri) <= status_list.MAX_URI_CHARS:
        raise InvalidBodyError(
            f"'uri' must be a string of 1 to {status_list.MAX_URI_CHARS} characters"
        )
    return uri


class StatusExchange(ProtocolMachine):
    """The status-list machine for the dispatcher (both roles).

    ``status_source`` answers requests (None: we publish no lists, every
    request is not-found); ``resolver`` verifies the lists we receive.
    """

    PROTOCOL: ClassVar[str] = PIURI
    ROLES: ClassVar[tuple[str, ...]] = (REQUESTER, RESPONDER)
    MESSAGES: ClassVar[dict[str, Protection]] = {
        "request": Protection.AUTHENTICATED_ENCRYPTED,
        "list": Protection.AUTHENTICATED_ENCRYPTED,
    }
    FIRST_MESSAGES: ClassVar[dict[str, str]] = {"request": RESPONDER}
    TRANSITIONS: ClassVar[Table] = TRANSITIONS

    def __init__(self, resolver: DIDResolver, status_source: StatusSource | None = None) -> None:
        self.resolver = resolver
        self.status_source = status_source

    def react(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        """Answer a request from ``status_source``; verify a received list."""
        if inbound.name == "request":
            return self._answer(record, inbound)
        return self._received(record, inbound)

    def _answer(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        uri = _read_uri(inbound.body)
        document = self.status_source(uri) if self.status_source is not None else None
        if document is None:
            raise StatusListNotFoundError("we publish no status list at this uri")
        reply = inbound.reply(LIST, {"uri": uri}, attachments=[list_attachment(document)])
        event = Event("status-list.sent", record.thid, {"to": inbound.their_did, "uri": uri})
        return Transition(record, [reply], [event])

    def _received(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        uri = record.data.get("uri")
        issuer = record.data.get("issuer")
        try:
            if not isinstance(uri, str) or not isinstance(issuer, str):
                raise InvalidBodyError("this thread asked for no status list")
            documents = stapled_lists(inbound.message)
            if len(documents) != 1:
                raise MalformedStatusListError("a list message carries exactly one status list")
            (document,) = documents
            verified = verify_document(
                document, resolver=self.resolver, now=inbound.now, uri=uri, issuer=issuer
            )
            text = document_text(document)
        except DIDCommError as error:
            record.state = ABANDONED
            record.data["failure"] = error.message
            report = report_for_error(
                error, inbound.message, msg_id=inbound.ids(), frm=inbound.our_did, now=inbound.now
            )
            event = Event("status-list.failed", record.thid, {"uri": uri, "reason": error.message})
            return Transition(record, [report], [event])
        record.data["issued_at"] = verified.issued_at
        event = Event(
            "status-list.received",
            record.thid,
            {
                "uri": verified.uri,
                "issuer": verified.issuer,
                "format": list_format(document),
                "issued_at": verified.issued_at,
                "expires": verified.expires,
                "document": text,
            },
        )
        return Transition(record, [], [event])

    def on_problem_report(
        self, record: ProtocolRecord, report: ProblemReport, now: int
    ) -> Transition:
        """The responder could not answer (not-found...): the request failed."""
        result = super().on_problem_report(record, report, now)
        if record.role != REQUESTER or record.state != ABANDONED:
            return result
        reason = report.text()[: status_list.MAX_URI_CHARS]
        event = Event(
            "status-list.failed", record.thid, {"uri": record.data.get("uri"), "reason": reason}
        )
        return Transition(record, list(result.outbound), [*result.events, event])


def request_status_list(
    our_did: str,
    their_did: str,
    now: int,
    *,
    uri: str,
    issuer: str,
    ids: Callable[[], str] = new_id,
) -> Transition:
    """Requester: ask ``their_did`` for the latest list at ``uri``, which must come
    back signed by ``issuer`` (the DID that issued the credentials naming it)."""
    _read_uri({"uri": uri})
    if not isinstance(issuer, str) or not is_did(issuer):
        raise InvalidBodyError("the status list's issuer must be a DID")
    msg_id = ids()
    record = start_record(
        StatusExchange,
        thid=msg_id,
        role=REQUESTER,
        command="send-request",
        our_did=our_did,
        their_did=their_did,
        now=now,
        data={"uri": uri, "issuer": issuer},
    )
    message = new_message(
        REQUEST, {"uri": uri}, msg_id=msg_id, frm=our_did, to=their_did, thid=msg_id, now=now
    )
    event = Event("status-list.requested", msg_id, {"to": their_did, "uri": uri})
    return Transition(record, [message], [event])

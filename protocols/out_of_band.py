"""Out-of-Band 2.0 (``out_of_band.md``): invitations passed as URLs or QR codes.

Theory of operation
-------------------
The *sender* makes an ``invitation`` (``from`` = our DID, optional ``goal``,
``goal_code``, ``accept`` and ``attachments``) and hands it over outside
DIDComm: as ``https://<domain>/<path>?_oob=<base64url(JSON)>``, as
``didcomm://?_oob=...``, or as raw JSON.  The *receiver* decodes and checks it
(:func:`parse_invitation` -- every failure is an
:class:`~protocols.protocol_errors.InvitationError`), then answers with any
protocol message whose ``pthid`` is the invitation's ``id``.

On the sender's side that answer reaches the invitation's record through
the dispatcher's parent hook (:meth:`OutOfBand.on_child`): a single-use
invitation moves to ``done`` and refuses a second answer
(``InvitationUsedError``), a multi-use one stays open and counts its uses,
and an invitation past its ``expires_time`` refuses every answer.

    sender:   start --create--> awaiting-response --use--> done
                                awaiting-response --reuse--> awaiting-response
    receiver: start --invitation--> received   (it arrived as a DIDComm message)
              start --receive--> received      (decoded from a URL by the daemon)

Daemon API: :func:`create_invitation`, :func:`invitation_url`,
:func:`didcomm_url`, :func:`parse_invitation`, :func:`receive_invitation`,
and :class:`OutOfBand` in the dispatcher.
"""

from __future__ import annotations

import binascii
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from .codec import b64u_encode, json_dumps, json_loads
from .errors import DIDCommError
from .framework import (
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
from .message import is_expired, new_id, validate
from .message_type import parse_message_type, parse_piuri
from .protocol_errors import (
    InvitationError,
    InvitationExpiredError,
    InvitationUsedError,
    UnexpectedMessageError,
)

PIURI = "https://didcomm.org/out-of-band/2.0"
INVITATION = PIURI + "/invitation"

SENDER, RECEIVER = "sender", "receiver"
AWAITING_RESPONSE, DONE, RECEIVED = "awaiting-response", "done", "received"

OOB_PARAM = "_oob"
SHORT_PARAM = "_oobid"
DIDCOMM_SCHEME = "didcomm"
#: Longest invitation URL or JSON text we decode (characters).
MAX_INVITATION_CHARS = 64 * 1024
#: Longest goal / goal_code (characters).
MAX_GOAL_CHARS = 1024
#: Most entries in ``accept``.
MAX_ACCEPT = 16

TRANSITIONS: Table = {
    SENDER: {
        "start": {"create": AWAITING_RESPONSE},
        AWAITING_RESPONSE: {"use": DONE, "reuse": AWAITING_RESPONSE},
    },
    RECEIVER: {
        "start": {"invitation": RECEIVED, "receive": RECEIVED},
    },
}


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > MAX_GOAL_CHARS):
        raise InvitationError(f"invitation {key!r} must be a string of at most {MAX_GOAL_CHARS}")
    return value


def validate_invitation(message: Any, now: int | None = None) -> dict[str, Any]:
    """Check an invitation message; return it.  ``now`` enables the expiry check."""
    try:
        validate(message)
        mtype = parse_message_type(message["type"])
    except DIDCommError as error:
        raise InvitationError(f"not a usable invitation: {error.message}") from None
    if not parse_piuri(PIURI).accepts(mtype.protocol) or mtype.normalized_name != "invitation":
        raise InvitationError("message is not an out-of-band 2.x invitation")
    if not isinstance(message.get("from"), str):
        raise InvitationError("invitation has no 'from' DID")
    body = message.get("body", {})
    _optional_text(body, "goal")
    _optional_text(body, "goal_code")
    accept = body.get("accept")
    if accept is not None and (
        not isinstance(accept, list)
        or len(accept) > MAX_ACCEPT
        or not all(isinstance(a, str) for a in accept)
    ):
        raise InvitationError(f"invitation 'accept' must be at most {MAX_ACCEPT} strings")
    if now is not None and is_expired(message, now):
        raise InvitationExpiredError("the invitation has expired")
    return dict(message)


def create_invitation(
    our_did: str,
    now: int,
    *,
    goal: str | None = None,
    goal_code: str | None = None,
    accept: Sequence[str] = ("didcomm/v2",),
    attachments: Sequence[dict[str, Any]] = (),
    expires_time: int | None = None,
    multi_use: bool = False,
    ids: Callable[[], str] = new_id,
) -> Transition:
    """Local command: a new invitation and its record (not sent: encode it as a URL)."""
    msg_id = ids()
    body: dict[str, Any] = {}
    if goal_code is not None:
        body["goal_code"] = goal_code
    if goal is not None:
        body["goal"] = goal
    if accept:
        body["accept"] = list(accept)
    invitation = new_message(
        INVITATION,
        body,
        msg_id=msg_id,
        frm=our_did,
        to=None,
        now=now,
        expires_time=expires_time,
        attachments=list(attachments) or None,
    )
    validate_invitation(invitation)
    record = start_record(
        OutOfBand,
        thid=msg_id,
        role=SENDER,
        command="create",
        our_did=our_did,
        their_did=None,
        now=now,
        data={
            "invitation": invitation,
            "multi_use": multi_use,
            "expires_time": expires_time,
            "uses": 0,
            "used_by": [],
        },
    )
    return Transition(record, [], [Event("out-of-band.created", msg_id, {"multi_use": multi_use})])


def encode_invitation(invitation: dict[str, Any]) -> str:
    """base64url (no padding) of the whitespace-free JSON."""
    return b64u_encode(json_dumps(invitation).encode())


def invitation_url(invitation: dict[str, Any], base_url: str) -> str:
    """``<base_url>?_oob=...`` (``base_url`` should explain itself in a browser)."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvitationError("the invitation base URL must be an http(s) URL")
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k not in (OOB_PARAM, SHORT_PARAM)]
    query.append((OOB_PARAM, encode_invitation(invitation)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def didcomm_url(invitation: dict[str, Any]) -> str:
    """``didcomm://?_oob=...``, the deep-link form."""
    return f"{DIDCOMM_SCHEME}://?{OOB_PARAM}={encode_invitation(invitation)}"


def _decode_oob(value: str) -> Any:
    text = value.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        raw = binascii.a2b_base64(
            (text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)).encode("ascii"),
            strict_mode=True,
        )
        return json_loads(raw.decode("utf-8"), "invitation")
    except (ValueError, UnicodeError, binascii.Error, DIDCommError):
        raise InvitationError("the _oob parameter is not base64url-encoded JSON") from None


def parse_invitation(text: str, now: int | None = None) -> dict[str, Any]:
    """Decode an invitation from a URL (``?_oob=``, any of http/https/didcomm) or raw JSON."""
    if not isinstance(text, str):
        raise InvitationError("an invitation must be text")
    text = text.strip()
    if not text:
        raise InvitationError("the invitation is empty")
    if len(text) > MAX_INVITATION_CHARS:
        raise InvitationError(f"the invitation is over {MAX_INVITATION_CHARS} characters")
    if text.startswith("{"):
        try:
            message = json_loads(text, "invitation")
        except DIDCommError:
            raise InvitationError("the invitation is not valid JSON") from None
        return validate_invitation(message, now)
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:
        raise InvitationError("the invitation is neither a URL nor JSON") from None
    if parts.scheme not in ("http", "https", DIDCOMM_SCHEME):
        raise InvitationError("the invitation is neither an http(s)/didcomm URL nor JSON")
    params = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    values = params.get(OOB_PARAM)
    if not values:
        if SHORT_PARAM in params:
            raise InvitationError("short invitation URLs (_oobid) must be fetched over HTTP first")
        raise InvitationError("the URL has no _oob parameter")
    if len(values) > 1:
        raise InvitationError("the URL has more than one _oob parameter")
    return validate_invitation(_decode_oob(values[0]), now)


def receive_invitation(text: str, now: int, *, our_did: str | None = None) -> Transition:
    """Local command: decode an invitation someone gave us and keep a record of it."""
    invitation = parse_invitation(text, now)
    record = start_record(
        OutOfBand,
        thid=invitation["id"],
        role=RECEIVER,
        command="receive",
        our_did=our_did,
        their_did=invitation["from"],
        now=now,
        data={"invitation": invitation, "expires_time": invitation.get("expires_time")},
    )
    return Transition(record, [], [_received_event(invitation)])


def _received_event(invitation: dict[str, Any]) -> Event:
    body = invitation.get("body", {})
    return Event(
        "out-of-band.invitation-received",
        invitation["id"],
        {
            "from": invitation["from"],
            "goal": body.get("goal"),
            "goal_code": body.get("goal_code"),
            "accept": body.get("accept"),
            "attachments": len(invitation.get("attachments", [])),
        },
    )


class OutOfBand(ProtocolMachine):
    """The out-of-band machine: invitations arriving as messages, and their answers."""

    PROTOCOL: ClassVar[str] = PIURI
    ROLES: ClassVar[tuple[str, ...]] = (SENDER, RECEIVER)
    # An invitation is public by design (it travels in QR codes).
    MESSAGES: ClassVar[dict[str, Protection]] = {"invitation": Protection.NONE}
    FIRST_MESSAGES: ClassVar[dict[str, str]] = {"invitation": RECEIVER}
    TRANSITIONS: ClassVar[Table] = TRANSITIONS

    def react(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        """Keep an invitation that arrived as a DIDComm message."""
        invitation = validate_invitation(inbound.message, inbound.now)
        record.data.update(
            {"invitation": invitation, "expires_time": invitation.get("expires_time")}
        )
        return Transition(record, [], [_received_event(invitation)])

    def on_child(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        """Someone answered our invitation: enforce expiry and single use."""
        if record.role != SENDER:
            return Transition(None)
        expires = record.data.get("expires_time")
        if isinstance(expires, int) and expires <= inbound.now:
            raise InvitationExpiredError("the invitation this message answers has expired")
        command = "reuse" if record.data.get("multi_use") else "use"
        try:
            record.state = fire(TRANSITIONS, record.role, record.state, command)
        except UnexpectedMessageError:
            raise InvitationUsedError(
                "the invitation this message answers was already used"
            ) from None
        uses = record.data.get("uses", 0)
        record.data["uses"] = (uses if isinstance(uses, int) else 0) + 1
        used_by = record.data.get("used_by", [])
        if isinstance(inbound.their_did, str) and inbound.their_did not in used_by:
            # Bounded: a multi-use invitation keeps only its first responders.
            record.data["used_by"] = [*used_by, inbound.their_did][:64]
        record.updated_time = inbound.now
        event = Event(
            "out-of-band.invitation-used",
            record.thid,
            {"by": inbound.their_did, "child_thid": inbound.thid, "uses": record.data["uses"]},
        )
        return Transition(record, [], [event])

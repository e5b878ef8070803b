"""Basic Message 2.0 (``https://didcomm.org/basicmessage/2.0``): a human-readable text.

Theory of operation
-------------------
One message, one thread: the *sender* sends ``message`` with ``body.content``
(text for a person), the ``lang`` header naming its language and
``created_time``; the *receiver* shows it.  There is no reply in the
protocol, so a ``please_ack`` is answered by the dispatcher with an empty
message carrying ``ack``.  Only an authenticated sender may post: a
receiver must be able to say who wrote the text.

    sender:   start --send--> sent
    receiver: start --message--> received

Daemon API: :func:`send_message` (local command) and :class:`BasicMessage`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from .framework import (
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
from .message import new_id
from .protocol_errors import InvalidBodyError

PIURI = "https://didcomm.org/basicmessage/2.0"
MESSAGE = PIURI + "/message"

SENDER, RECEIVER = "sender", "receiver"
SENT, RECEIVED = "sent", "received"

#: Longest ``content`` we accept or send (characters).
MAX_CONTENT_CHARS = 64 * 1024
#: Longest ``lang`` tag (BCP 47 tags are short).
MAX_LANG_CHARS = 35

TRANSITIONS: Table = {
    SENDER: {"start": {"send": SENT}},
    RECEIVER: {"start": {"message": RECEIVED}},
}


def _check_content(content: object) -> str:
    if not isinstance(content, str):
        raise InvalidBodyError("basic message body.content must be a string")
    if len(content) > MAX_CONTENT_CHARS:
        raise InvalidBodyError(f"basic message content is over {MAX_CONTENT_CHARS} characters")
    return content


def _check_lang(lang: object) -> str | None:
    if lang is None:
        return None
    if not isinstance(lang, str) or not 0 < len(lang) <= MAX_LANG_CHARS:
        raise InvalidBodyError("basic message 'lang' must be a short language tag")
    return lang


class BasicMessage(ProtocolMachine):
    """The basic-message machine for the dispatcher."""

    PROTOCOL: ClassVar[str] = PIURI
    ROLES: ClassVar[tuple[str, ...]] = (SENDER, RECEIVER)
    MESSAGES: ClassVar[dict[str, Protection]] = {"message": Protection.AUTHENTICATED}
    FIRST_MESSAGES: ClassVar[dict[str, str]] = {"message": RECEIVER}
    TRANSITIONS: ClassVar[Table] = TRANSITIONS

    def react(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        """Keep the text and tell the clients."""
        content = _check_content(inbound.body.get("content"))
        lang = _check_lang(inbound.message.get("lang"))
        created = inbound.message.get("created_time")
        record.data.update({"content": content, "lang": lang, "created_time": created})
        event = Event(
            "basicmessage.received",
            record.thid,
            {"from": inbound.their_did, "content": content, "lang": lang, "created_time": created},
        )
        return Transition(record, [], [event])


def send_message(
    our_did: str,
    their_did: str,
    content: str,
    now: int,
    *,
    lang: str | None = None,
    pthid: str | None = None,
    please_ack: bool = False,
    ids: Callable[[], str] = new_id,
) -> Transition:
    """Local command: a basic message to send, and its record."""
    _check_content(content)
    _check_lang(lang)
    msg_id = ids()
    record = start_record(
        BasicMessage,
        thid=msg_id,
        role=SENDER,
        command="send",
        our_did=our_did,
        their_did=their_did,
        now=now,
        pthid=pthid,
        data={"content": content, "lang": lang, "created_time": now},
    )
    message = new_message(
        MESSAGE,
        {"content": content},
        msg_id=msg_id,
        frm=our_did,
        to=their_did,
        now=now,
        lang=lang,
        pthid=pthid,
        please_ack=[""] if please_ack else None,
    )
    # The text too, as basicmessage.received has it: a client following a conversation
    # (``didcommctl chat --follow``) shows both sides from the events alone.
    sent = Event("basicmessage.sent", msg_id, {"to": their_did, "content": content, "lang": lang,
                                               "created_time": now})
    return Transition(record, [message], [sent])

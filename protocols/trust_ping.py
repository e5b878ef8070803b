"""Trust Ping 2.0 (``trustping.md``): test that a DIDComm channel works end to end.

Theory of operation
-------------------
Two roles.  The *sender* starts a thread with ``ping``; if
``response_requested`` (default true) it waits for a ``ping-response`` whose
``thid`` is the ping's id.  The *receiver* answers a ping at once (or not at
all when no response was requested).  A receiver that wants to ping back
starts a new thread as a sender.

A ping must come from an authenticated sender: answering unauthenticated
pings would make us a reflector, and the point of the protocol is to prove
the channel's trust.  The sender's record keeps ``sent_time``; the response
event carries the round trip in seconds (``now`` - ``sent_time``).

    sender:   start --send-ping--> awaiting-response --ping-response--> done
              start --send-ping-no-response--> done
    receiver: start --ping--> done  (replies unless response_requested is false)

Daemon API: :func:`start_ping` (a local command) and :class:`TrustPing` in
the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

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

PIURI = "https://didcomm.org/trust-ping/2.0"
PING = PIURI + "/ping"
PING_RESPONSE = PIURI + "/ping-response"

SENDER, RECEIVER = "sender", "receiver"
AWAITING_RESPONSE, DONE = "awaiting-response", "done"

TRANSITIONS: Table = {
    SENDER: {
        "start": {"send-ping": AWAITING_RESPONSE, "send-ping-no-response": DONE},
        AWAITING_RESPONSE: {"ping-response": DONE},
    },
    RECEIVER: {
        "start": {"ping": DONE},
    },
}


def _response_requested(body: dict[str, Any]) -> bool:
    value = body.get("response_requested", True)
    if not isinstance(value, bool):
        raise InvalidBodyError("ping body.response_requested must be a boolean")
    return value


class TrustPing(ProtocolMachine):
    """The trust-ping machine for the dispatcher."""

    PROTOCOL: ClassVar[str] = PIURI
    ROLES: ClassVar[tuple[str, ...]] = (SENDER, RECEIVER)
    MESSAGES: ClassVar[dict[str, Protection]] = {
        "ping": Protection.AUTHENTICATED,
        "ping-response": Protection.AUTHENTICATED,
    }
    FIRST_MESSAGES: ClassVar[dict[str, str]] = {"ping": RECEIVER}
    TRANSITIONS: ClassVar[Table] = TRANSITIONS

    def react(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        """Answer a ping; report a response with its round-trip time."""
        if inbound.name == "ping":
            wanted = _response_requested(inbound.body)
            record.data["response_requested"] = wanted
            event = Event(
                "trust-ping.ping-received",
                record.thid,
                {"from": inbound.their_did, "response_requested": wanted},
            )
            outbound = [inbound.reply(PING_RESPONSE, {})] if wanted else []
            return Transition(record, outbound, [event])
        sent = record.data.get("sent_time")
        rtt = inbound.now - sent if isinstance(sent, int) else None
        record.data["response_time"] = inbound.now
        event = Event(
            "trust-ping.response-received",
            record.thid,
            {"from": inbound.their_did, "round_trip_seconds": rtt},
        )
        return Transition(record, [], [event])


def start_ping(
    our_did: str,
    their_did: str,
    now: int,
    *,
    response_requested: bool = True,
    expires_time: int | None = None,
    pthid: str | None = None,
    ids: Callable[[], str] = new_id,
) -> Transition:
    """Local command: a new ping thread (record + the ping to send).

    ``pthid`` links the ping to a parent thread, e.g. the out-of-band
    invitation it answers.
    """
    msg_id = ids()
    command = "send-ping" if response_requested else "send-ping-no-response"
    record = start_record(
        TrustPing,
        thid=msg_id,
        role=SENDER,
        command=command,
        our_did=our_did,
        their_did=their_did,
        now=now,
        pthid=pthid,
        data={"sent_time": now, "response_requested": response_requested},
    )
    ping = new_message(
        PING,
        {"response_requested": response_requested},
        msg_id=msg_id,
        frm=our_did,
        to=their_did,
        now=now,
        expires_time=expires_time,
        pthid=pthid,
    )
    return Transition(record, [ping], [Event("trust-ping.sent", msg_id, {"to": their_did})])

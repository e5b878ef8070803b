"""The protocol framework: records, transition tables, and the dispatcher.

Rules
-----
1. Everything that decides what a received plaintext message *does* lives in
   ``protocols/``: this module routes it, a protocol module's table says
   whether it is allowed, the module's ``react`` says what it produces.
2. Nothing here does I/O or reads a clock: the daemon passes ``now`` (UTC
   epoch seconds), the envelope :class:`~protocols.envelope.Metadata`, and a
   way to look up stored records; it gets back records to store, plaintext
   messages to pack and send, and events to show its clients.

Theory of operation
-------------------
Each protocol instance (one thread, ``thid``) is a :class:`ProtocolRecord`:
protocol, role, state, the two DIDs, an error counter and protocol data, all
plain JSON values (``to_dict``/``from_dict``), so a restart resumes exactly.

Each protocol is a :class:`ProtocolMachine` subclass that states, as data:

- ``PROTOCOL``: its PIURI (``https://didcomm.org/trust-ping/2.0``);
- ``MESSAGES``: message name -> :class:`Protection` the message needs;
- ``FIRST_MESSAGES``: message name -> role we take when it starts a thread;
- ``TRANSITIONS``: ``{role: {state: {event: new_state}}}`` (h11's table),
  where an event is an inbound message name or a local command name.

:meth:`Dispatcher.dispatch` runs an inbound message through, in order:

1. plaintext checks (``protocols.message.validate``), ``expires_time``;
2. the type URI -> a machine (semver: same major, any minor), the message
   name -> its required :class:`Protection`, checked against the metadata;
3. the thread: ``thid`` (or ``id``) -> the stored record, or a fresh one
   if the message may start a thread; a thread whose record belongs to
   another peer is "unknown" to this one;
4. ``pthid``: a parent record's machine may veto or record the child
   (out-of-band invitations: single use, expiry);
5. :func:`fire` the table for (role, state, message name) -- the one
   ``KeyError`` that becomes :class:`UnexpectedMessageError` -- then the
   machine's ``react`` builds replies and events;
6. ``please_ack``: the first reply gets an ``ack`` header, or an empty
   message carries it.

Any :class:`~protocols.errors.DIDCommError` on the way becomes a
problem-report (``protocols.report_problem.report_for_error``) addressed to
the sender, the thread's ``error_count`` goes up, and past
``MAX_ERRORS_PER_THREAD`` the thread is abandoned with one
``e.p.req.max-errors-exceeded`` and then ignored.  A received problem-report
is routed to its parent thread by ``pthid``; it is never answered with
another problem-report (except the circuit breaker's).

API for the daemon::

    outcome = dispatcher.dispatch(message, metadata, records, now)
    # records: anything with .get(thid) -> ProtocolRecord | None (a dict works)
    for record in outcome.records: store.put(record.thid, record.to_dict())
    for msg in outcome.outbound:   pack_encrypted(msg, to=msg["to"][0], frm=msg.get("from"))
    for event in outcome.events:   publish(event.to_dict())

Local commands (start a ping, send a basic message, make an invitation)
are functions of each protocol module returning a :class:`Transition`;
store its record and send its outbound the same way.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from .envelope import Metadata
from .errors import DIDCommError, ExpiredMessageError
from .message import is_expired, new_id, validate
from .message_type import MessageType, ProtocolId, normalize_name, parse_message_type, parse_piuri
from .protocol_errors import (
    AuthenticationRequiredError,
    EncryptionRequiredError,
    RecordError,
    UnexpectedMessageError,
    UnknownThreadError,
    UnsupportedMessageTypeError,
    UnsupportedProtocolError,
    UnsupportedVersionError,
)
from .report_problem import (
    MAX_ERRORS_CODE,
    MAX_ERRORS_PER_THREAD,
    ProblemReport,
    build_problem_report,
    report_for_error,
)
from .report_problem import PIURI as REPORT_PROBLEM_PIURI

#: The empty message (DIDComm v2 "empty message"): carries headers such as ``ack``.
EMPTY_PIURI = "https://didcomm.org/empty/1.0"
EMPTY_MESSAGE = EMPTY_PIURI + "/empty"

START = "start"
#: Every role can reach this state: the thread was abandoned after an error.
ABANDONED = "abandoned"

#: Message ids remembered per record (duplicate detection, acks of old ids).
MAX_SEEN_IDS = 64
#: Most entries of ``please_ack`` honoured from one message.
MAX_ACKS = 16

Table = Mapping[str, Mapping[str, Mapping[str, str]]]


class Protection(enum.IntEnum):
    """The least protection a message must have arrived with."""

    NONE = 0  #: plaintext is fine (e.g. an out-of-band invitation)
    ENCRYPTED = 1  #: anoncrypt or better
    AUTHENTICATED = 2  #: a sender proven by authcrypt or a signature, with ``from``
    AUTHENTICATED_ENCRYPTED = 3  #: both


def check_protection(required: Protection, metadata: Metadata, message: Mapping[str, Any]) -> None:
    """Raise the matching :class:`~protocols.errors.ProtectionRequiredError` if lacking."""
    wants_auth = required in (Protection.AUTHENTICATED, Protection.AUTHENTICATED_ENCRYPTED)
    wants_enc = required in (Protection.ENCRYPTED, Protection.AUTHENTICATED_ENCRYPTED)
    if wants_enc and not metadata.encrypted:
        raise EncryptionRequiredError("this message must arrive encrypted")
    if wants_auth and not (metadata.authenticated and isinstance(message.get("from"), str)):
        raise AuthenticationRequiredError("this message needs an authenticated sender")


def fire(table: Table, role: str, state: str, event: str) -> str:
    """The state after ``event``, or :class:`UnexpectedMessageError`."""
    try:
        return table[role][state][event]
    except KeyError:
        raise UnexpectedMessageError(
            f"{event!r} is not expected by a {role} in state {state!r}"
        ) from None


def states_of(table: Table, role: str) -> frozenset[str]:
    """Every state a role can be in (``ABANDONED`` included)."""
    states = {START, ABANDONED, *table.get(role, {})}
    for targets in table.get(role, {}).values():
        states.update(targets.values())
    return frozenset(states)


def finished(table: Table, role: str, state: str) -> bool:
    """Whether a thread in ``state`` is over: abandoned, or no event leads on from it."""
    return state == ABANDONED or not table.get(role, {}).get(state)


@dataclass(frozen=True)
class Event:
    """Something the daemon reports to its clients (JSON-ready ``data``)."""

    kind: str
    thid: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/msgpack-ready form."""
        return {"kind": self.kind, "thid": self.thid, "data": self.data}


def _str_or_none(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise RecordError(f"record field {key!r} must be a string")
    return value


def _str_list(raw: Mapping[str, Any], key: str) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(f"record field {key!r} must be a list of strings")
    return list(value)


def _int(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"record field {key!r} must be an integer")
    return value


@dataclass
class ProtocolRecord:
    """One protocol instance (thread), as stored.  Every field is plain JSON."""

    thid: str
    protocol: str  #: PIURI, e.g. ``https://didcomm.org/trust-ping/2.0``
    role: str
    state: str = START
    our_did: str | None = None
    their_did: str | None = None
    pthid: str | None = None
    created_time: int = 0
    updated_time: int = 0
    error_count: int = 0
    #: Set when the circuit breaker opened: the thread is ignored from then on.
    silenced: bool = False
    seen_ids: list[str] = field(default_factory=list)
    acked_ids: list[str] = field(default_factory=list)
    last_problem: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The stored form (JSON, CBOR and msgpack can all carry it)."""
        return {
            "thid": self.thid,
            "protocol": self.protocol,
            "role": self.role,
            "state": self.state,
            "our_did": self.our_did,
            "their_did": self.their_did,
            "pthid": self.pthid,
            "created_time": self.created_time,
            "updated_time": self.updated_time,
            "error_count": self.error_count,
            "silenced": self.silenced,
            "seen_ids": list(self.seen_ids),
            "acked_ids": list(self.acked_ids),
            "last_problem": copy.deepcopy(self.last_problem),
            "data": copy.deepcopy(self.data),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> ProtocolRecord:
        """Read a stored record back; :class:`RecordError` if it is damaged."""
        if not isinstance(raw, Mapping):
            raise RecordError("a protocol record must be an object")
        for key in ("thid", "protocol", "role", "state"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise RecordError(f"record field {key!r} must be a non-empty string")
        data = raw.get("data", {})
        last = raw.get("last_problem")
        if not isinstance(data, dict) or (last is not None and not isinstance(last, dict)):
            raise RecordError("record 'data' and 'last_problem' must be objects")
        silenced = raw.get("silenced", False)
        if not isinstance(silenced, bool):
            raise RecordError("record field 'silenced' must be a boolean")
        return cls(
            thid=raw["thid"],
            protocol=raw["protocol"],
            role=raw["role"],
            state=raw["state"],
            our_did=_str_or_none(raw, "our_did"),
            their_did=_str_or_none(raw, "their_did"),
            pthid=_str_or_none(raw, "pthid"),
            created_time=_int(raw, "created_time"),
            updated_time=_int(raw, "updated_time"),
            error_count=_int(raw, "error_count"),
            silenced=silenced,
            seen_ids=_str_list(raw, "seen_ids"),
            acked_ids=_str_list(raw, "acked_ids"),
            last_problem=copy.deepcopy(last),
            data=copy.deepcopy(data),
        )

    def copy(self) -> ProtocolRecord:
        """A deep copy (machines change copies, so a failed step changes nothing)."""
        return ProtocolRecord.from_dict(self.to_dict())

    def remember(self, msg_id: str) -> None:
        """Note a processed message id (bounded)."""
        self.seen_ids = [*self.seen_ids, msg_id][-MAX_SEEN_IDS:]


@dataclass
class Transition:
    """What one step of a machine produced."""

    record: ProtocolRecord | None
    outbound: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass
class Outcome:
    """What :meth:`Dispatcher.dispatch` returns to the daemon."""

    #: Records to store (create or replace, keyed by ``thid``).
    records: list[ProtocolRecord] = field(default_factory=list)
    #: Plaintext messages to pack and send (``to``/``from`` set when known).
    outbound: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    #: The problem-report built for this message, if any (in ``outbound`` when addressable).
    problem: dict[str, Any] | None = None
    #: The error behind ``problem``.
    error: DIDCommError | None = None


@dataclass(frozen=True)
class Inbound:
    """A received message, as a machine sees it."""

    message: dict[str, Any]
    type: MessageType
    name: str  #: the canonical message name from the machine's ``MESSAGES``
    metadata: Metadata
    now: int
    thid: str
    our_did: str | None
    their_did: str | None
    ids: Callable[[], str]

    @property
    def body(self) -> dict[str, Any]:
        """The message body (``{}`` when absent)."""
        body = self.message.get("body")
        return body if isinstance(body, dict) else {}

    def reply(self, message_type: str, body: dict[str, Any], **headers: Any) -> dict[str, Any]:
        """A message on the same thread, from us, to the sender."""
        return new_message(
            message_type,
            body,
            msg_id=self.ids(),
            frm=self.our_did,
            to=self.their_did,
            thid=self.thid,
            now=self.now,
            **headers,
        )


def new_message(
    message_type: str,
    body: dict[str, Any],
    *,
    msg_id: str,
    frm: str | None,
    to: str | None,
    thid: str | None = None,
    now: int | None = None,
    **headers: Any,
) -> dict[str, Any]:
    """A plaintext message with the usual headers (``None`` values left out)."""
    message: dict[str, Any] = {"type": message_type, "id": msg_id, "body": body}
    if thid is not None and thid != msg_id:
        message["thid"] = thid
    if frm is not None:
        message["from"] = frm
    if to is not None:
        message["to"] = [to]
    if now is not None:
        message["created_time"] = now
    message.update({k: v for k, v in headers.items() if v is not None})
    return message


class ProtocolMachine:
    """Base of every protocol: the table as class data, plus hooks.

    Subclasses set the class attributes and override :meth:`react` (and, if
    the protocol cares, :meth:`on_problem_report` and :meth:`on_child`).
    """

    PROTOCOL: ClassVar[str]
    ROLES: ClassVar[tuple[str, ...]]
    MESSAGES: ClassVar[Mapping[str, Protection]]
    FIRST_MESSAGES: ClassVar[Mapping[str, str]]
    TRANSITIONS: ClassVar[Table]

    @property
    def protocol(self) -> ProtocolId:
        """The parsed PIURI."""
        return parse_piuri(self.PROTOCOL)

    def react(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        """Build replies and events; ``record`` already holds the new state."""
        return Transition(record)

    def on_problem_report(
        self, record: ProtocolRecord, report: ProblemReport, now: int
    ) -> Transition:
        """A problem-report arrived for this thread.  Default: ``e.p.*`` abandons it."""
        if report.is_error and report.scope == "p":
            record.state = ABANDONED
        return Transition(record)

    def on_child(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        """A message whose ``pthid`` is this thread arrived.  Default: no effect."""
        return Transition(None)


class RecordSource(Protocol):
    """Where the dispatcher looks records up (a ``dict`` of thid -> record works)."""

    def get(self, thid: str, /) -> ProtocolRecord | None:
        """The record of thread ``thid``, if any."""
        ...


def _did_of(value: str) -> str:
    return value.split("#", 1)[0]


def _our_did(message: Mapping[str, Any], metadata: Metadata) -> str | None:
    if metadata.encrypted_to:
        return _did_of(metadata.encrypted_to[0])
    to = message.get("to")
    if isinstance(to, list) and to and isinstance(to[0], str):
        return _did_of(to[0])
    return None


class Dispatcher:
    """Routes received plaintext messages to protocol machines.  See the module docstring."""

    def __init__(
        self,
        machines: Iterable[ProtocolMachine],
        *,
        ids: Callable[[], str] = new_id,
        max_errors: int = MAX_ERRORS_PER_THREAD,
    ) -> None:
        self.machines: dict[tuple[str, str], ProtocolMachine] = {}
        for machine in machines:
            key = machine.protocol.key
            if key in self.machines:
                raise ValueError(f"two machines for {machine.PROTOCOL}")
            self.machines[key] = machine
        self.ids = ids
        self.max_errors = max_errors

    def machine_for(self, piuri: str) -> ProtocolMachine:
        """The machine that runs a stored record's protocol."""
        pid = parse_piuri(piuri)
        machine = self.machines.get(pid.key)
        if machine is None or not machine.protocol.accepts(pid):
            raise UnsupportedProtocolError(f"no machine runs {piuri}")
        return machine

    def supported(self) -> list[tuple[str, tuple[str, ...]]]:
        """``(PIURI, roles)`` of every protocol we answer, the built-in ones included."""
        rows = [(m.PROTOCOL, m.ROLES) for m in self.machines.values()]
        rows.append((REPORT_PROBLEM_PIURI, ("notifier", "notified")))
        rows.append((EMPTY_PIURI, ()))
        return rows

    # -- the one entry point ------------------------------------------------

    def dispatch(
        self,
        message: dict[str, Any],
        metadata: Metadata,
        records: RecordSource,
        now: int,
    ) -> Outcome:
        """Handle one received plaintext message.  Never raises a DIDCommError."""
        record: ProtocolRecord | None = None
        try:
            validate(message)
            thid = str(message.get("thid") or message["id"])
            record = records.get(thid)
            if is_expired(message, now):
                raise ExpiredMessageError("message has expired")
            mtype = parse_message_type(message["type"])
            if mtype.protocol.key == parse_piuri(REPORT_PROBLEM_PIURI).key:
                return self._problem_report(message, metadata, mtype, records, now)
            if mtype.protocol.key == parse_piuri(EMPTY_PIURI).key:
                return self._empty(message, metadata)
            machine = self._machine(mtype)
            name = self._message_name(machine, mtype)
            check_protection(machine.MESSAGES[name], metadata, message)
            inbound = Inbound(
                message=message,
                type=mtype,
                name=name,
                metadata=metadata,
                now=now,
                thid=thid,
                our_did=_our_did(message, metadata),
                their_did=message.get("from"),
                ids=self.ids,
            )
            return self._step(machine, record, inbound, records)
        except DIDCommError as error:
            return self._fail(error, message, metadata, record, now)

    # -- steps ----------------------------------------------------------------

    def _machine(self, mtype: MessageType) -> ProtocolMachine:
        machine = self.machines.get(mtype.protocol.key)
        if machine is None:
            raise UnsupportedProtocolError(f"protocol {mtype.protocol.piuri} is not supported")
        if not machine.protocol.accepts(mtype.protocol):
            raise UnsupportedVersionError(
                f"{mtype.protocol.piuri} is not supported; we run {machine.PROTOCOL}"
            )
        return machine

    @staticmethod
    def _message_name(machine: ProtocolMachine, mtype: MessageType) -> str:
        for name in machine.MESSAGES:
            if normalize_name(name) == mtype.normalized_name:
                return name
        raise UnsupportedMessageTypeError(f"{machine.PROTOCOL} has no message {mtype.name[:64]!r}")

    def _step(
        self,
        machine: ProtocolMachine,
        stored: ProtocolRecord | None,
        inbound: Inbound,
        records: RecordSource,
    ) -> Outcome:
        message = inbound.message
        msg_id = message["id"]
        if stored is None:
            role = machine.FIRST_MESSAGES.get(inbound.name)
            if role is None:
                raise UnknownThreadError("this message continues a thread we do not know")
            record = ProtocolRecord(
                thid=inbound.thid,
                protocol=machine.PROTOCOL,
                role=role,
                our_did=inbound.our_did,
                their_did=inbound.their_did,
                pthid=message.get("pthid"),
                created_time=inbound.now,
            )
        else:
            if stored.silenced:
                return Outcome(events=[Event("thread.ignored", stored.thid, {"id": msg_id})])
            if stored.their_did is not None and stored.their_did != inbound.their_did:
                # Someone else's thread: say nothing that confirms it exists.
                raise UnknownThreadError("this message continues a thread we do not know")
            if parse_piuri(stored.protocol).key != machine.protocol.key:
                raise UnexpectedMessageError("this thread belongs to another protocol")
            if msg_id in stored.seen_ids:
                return Outcome(events=[Event("message.duplicate", stored.thid, {"id": msg_id})])
            record = stored.copy()
            if record.their_did is None:
                record.their_did = inbound.their_did
        outcome = Outcome()
        pthid = message.get("pthid")
        if stored is None and isinstance(pthid, str):
            parent = records.get(pthid)
            if parent is not None and not parent.silenced:
                parent_machine = self.machine_for(parent.protocol)
                child = parent_machine.on_child(parent.copy(), inbound)
                if child.record is not None:
                    outcome.records.append(child.record)
                outcome.outbound.extend(child.outbound)
                outcome.events.extend(child.events)
        record.state = fire(machine.TRANSITIONS, record.role, record.state, inbound.name)
        result = machine.react(record, inbound)
        final = result.record if result.record is not None else record
        if final.state not in states_of(machine.TRANSITIONS, final.role):
            raise RecordError(f"{machine.PROTOCOL} reached undefined state {final.state!r}")
        final.remember(msg_id)
        final.updated_time = inbound.now
        outbound = list(result.outbound)
        self._honour_please_ack(final, inbound, outbound)
        outcome.records.append(final)
        outcome.outbound.extend(outbound)
        outcome.events.extend(result.events)
        return outcome

    def _honour_please_ack(
        self, record: ProtocolRecord, inbound: Inbound, outbound: list[dict[str, Any]]
    ) -> None:
        """``problems.md`` ACKs: ack the current message and old ones we processed."""
        wanted = inbound.message.get("please_ack")
        if not wanted:
            return
        msg_id = inbound.message["id"]
        acks: list[str] = []
        for entry in wanted[:MAX_ACKS]:
            target = msg_id if entry in ("", msg_id) else entry
            # Never honour more than one ACK request for a given message.
            if target in record.acked_ids or target in acks:
                continue
            if target == msg_id or target in record.seen_ids:
                acks.append(target)
        if not acks:
            return
        record.acked_ids = [*record.acked_ids, *acks][-MAX_SEEN_IDS:]
        if outbound:
            first = outbound[0]
            first["ack"] = [*first.get("ack", []), *acks]
        else:
            outbound.append(inbound.reply(EMPTY_MESSAGE, {}, ack=acks))

    def _empty(self, message: dict[str, Any], metadata: Metadata) -> Outcome:
        # A pure ACK: report it, never answer it (no ACK loops).
        acks = message.get("ack") or []
        thid = str(message.get("thid") or message["id"])
        return Outcome(events=[Event("ack.received", thid, {"ack": list(acks)})])

    def _problem_report(
        self,
        message: dict[str, Any],
        metadata: Metadata,
        mtype: MessageType,
        records: RecordSource,
        now: int,
    ) -> Outcome:
        if normalize_name(mtype.name) != normalize_name("problem-report"):
            raise UnsupportedMessageTypeError(f"report-problem has no message {mtype.name[:64]!r}")
        if mtype.protocol.major != 2:
            raise UnsupportedVersionError(f"{mtype.protocol.piuri} is not supported")
        try:
            check_protection(Protection.AUTHENTICATED, metadata, message)
            report = ProblemReport.from_message(message)
        except DIDCommError as error:
            # Never answer a problem-report with a problem-report.
            return Outcome(
                events=[
                    Event(
                        "problem-report.rejected", message.get("pthid"), {"reason": error.message}
                    )
                ],
                error=error,
            )
        event = Event(
            "problem-report.received",
            report.pthid,
            {**report.to_dict(), "from": message.get("from")},
        )
        parent = records.get(report.pthid)
        if parent is None or parent.silenced or parent.their_did not in (None, message.get("from")):
            return Outcome(events=[event])
        record = parent.copy()
        record.last_problem = report.to_dict()
        record.error_count += 1
        record.updated_time = now
        if record.error_count > self.max_errors:
            return self._trip_breaker(record, message, now, [event])
        machine = self.machine_for(record.protocol)
        result = machine.on_problem_report(record, report, now)
        final = result.record if result.record is not None else record
        return Outcome(
            records=[final], outbound=list(result.outbound), events=[event, *result.events]
        )

    def _trip_breaker(
        self, record: ProtocolRecord, message: dict[str, Any] | None, now: int, events: list[Event]
    ) -> Outcome:
        record.state = ABANDONED
        record.silenced = True
        ack = [message["id"]] if message and isinstance(message.get("id"), str) else []
        report = build_problem_report(
            MAX_ERRORS_CODE,
            msg_id=self.ids(),
            pthid=record.thid,
            comment="Too many errors on this thread; the protocol is abandoned: {1}",
            args=[str(record.error_count)],
            ack=ack,
            frm=record.our_did,
            to=record.their_did,
            now=now,
        )
        events = [*events, Event("thread.abandoned", record.thid, {"reason": MAX_ERRORS_CODE})]
        outbound = [report] if record.their_did else []
        return Outcome(records=[record], outbound=outbound, events=events, problem=report)

    def _fail(
        self,
        error: DIDCommError,
        message: Any,
        metadata: Metadata,
        stored: ProtocolRecord | None,
        now: int,
    ) -> Outcome:
        offending = message if isinstance(message, dict) else None
        # A thread's error counter only moves for the thread's own peer.
        sender = offending.get("from") if offending else None
        record = None
        if (
            stored is not None
            and stored.their_did in (None, sender)
            and not isinstance(error, UnknownThreadError)
        ):
            if stored.silenced:
                return Outcome(events=[Event("thread.ignored", stored.thid, {})], error=error)
            record = stored.copy()
            record.error_count += 1
            record.updated_time = now
            if record.error_count > self.max_errors:
                outcome = self._trip_breaker(record, offending, now, [])
                outcome.error = error
                return outcome
            if error.problem_code.startswith("e.p."):
                record.state = ABANDONED
        our_did = _our_did(offending, metadata) if offending else None
        report = report_for_error(error, offending, msg_id=self.ids(), frm=our_did, now=now)
        thid = report["pthid"]
        event = Event(
            "problem-report.sent", thid, {"code": error.problem_code, "reason": error.message}
        )
        outcome = Outcome(events=[event], problem=report, error=error)
        if record is not None:
            outcome.records.append(record)
        if "to" in report and not _is_problem_report(offending):
            outcome.outbound.append(report)
        return outcome


def _is_problem_report(message: Mapping[str, Any] | None) -> bool:
    """Whether a (possibly malformed) message claims to be a problem-report."""
    if message is None:
        return False
    try:
        mtype = parse_message_type(message.get("type"))
    except DIDCommError:
        return False
    return mtype.protocol.key == parse_piuri(REPORT_PROBLEM_PIURI).key


def start_record(
    machine: type[ProtocolMachine],
    *,
    thid: str,
    role: str,
    command: str,
    our_did: str | None,
    their_did: str | None,
    now: int,
    pthid: str | None = None,
    data: dict[str, Any] | None = None,
) -> ProtocolRecord:
    """A new record for a thread we start, after firing the local ``command``."""
    record = ProtocolRecord(
        thid=thid,
        protocol=machine.PROTOCOL,
        role=role,
        our_did=our_did,
        their_did=their_did,
        pthid=pthid,
        created_time=now,
        updated_time=now,
        data=data or {},
    )
    record.state = fire(machine.TRANSITIONS, role, START, command)
    record.remember(thid)
    return record

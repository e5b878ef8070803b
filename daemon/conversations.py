"""Conversations: the agent drives the protocol machines of ``protocols/``.

Theory of operation
-------------------
``protocols/`` decides; this module moves data between the decisions and
the store.  It has two entry points, and both end the same way: *one store
transaction* that writes the protocol records, the connections and the packed
outbound messages together, then the events are published.  A crash before
that commit leaves nothing half-done (an inbound message is not acknowledged,
so its sender still has it, or it stays ``pending`` in the inbox and is
dispatched again on restart); after it, everything is there.  A message fresh
from the network is committed to the inbox in that same transaction: one fsync
covers its bytes, its dedup key and what it caused.

Inbound (:meth:`Conversations.accept`, called by ``Agent.message_receive``
after unpacking):

1. refuse a message from or to a DID that a rotation retired;
2. a verified ``from_prior`` for a connection moves it to the peer's new DID
   (``protocols.did_rotation``); a message to our new DID completes a
   rotation of ours; any authenticated message but a problem report (a
   refusal) activates a requested one;
3. the thread's records (``thid``, ``pthid``) are read from the store and
   handed to the dispatcher with the message; out come records, outbound
   plaintext messages and events;
4. an answer to one of our invitations (the ``out-of-band.invitation-used``
   event) creates the inviter's connection;
5. outbound messages are packed (authcrypt from our DID in the relationship,
   with ``from_prior`` while a rotation of ours is pending) and, in the same
   transaction as the inbox row's acceptance, queued in the outbox.

Local commands (:meth:`invite_create`, :meth:`invite_accept`, :meth:`ping`,
:meth:`features`, :meth:`chat`, :meth:`rotate`) call the protocol modules'
functions, which return a ``Transition``; :meth:`_commit` stores and queues
it the same way.  ``ping`` and ``features`` can wait for the answer: a waiter
keyed by the thread id is woken when the answering event is published.

One :class:`trio.Lock` serialises all of it, so two messages on one thread
never read the same record.  The lock is held until a message's writes are
*queued* in the store, not until they are durable: the store commits in queue
order and later reads see queued writes (daemon.store, group commit), so
messages arriving together share one fsync.  (When a step changes a
connection the lock is kept until after the commit, which updates the cache.)  Packing takes about a millisecond, well below
the store's commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from protocols import basic_message, discover_features, issue_credential, out_of_band, trust_ping
from protocols.did.syntax import split_did_url
from protocols.did_rotation import (
    accept_their_rotation,
    begin_rotation,
    complete_our_rotation,
    outbound_claims,
    read_claims,
)
from protocols.dispatch import standard_dispatcher
from protocols.envelope import UnpackResult, pack_encrypted
from protocols.errors import DIDCommError
from protocols.framework import Event, Outcome, ProtocolRecord, Transition, finished
from protocols.message import MAX_ID_CHARS, new_id
from protocols.message_type import normalize_name, parse_message_type, parse_piuri
from protocols.report_problem import PIURI as REPORT_PROBLEM_PIURI

from . import credentials, revocation
from .connections import (
    ACTIVE,
    INVITEE,
    INVITER,
    REQUESTED,
    Connection,
    ConnectionBook,
    check_label,
)
from .errors import INVALID_STATE, DaemonError, InvalidParamsError, NotFoundError
from .locks import EagerLock
from .logs import get_logger
from .p2p.didcomm_v2 import MAX_MESSAGE_BYTES
from .params import check_str
from .params import check_wait as _check_wait
from .store import INBOX_DUPLICATE, INBOX_REJECTED, INBOX_STORED, InboxRow, Pending, Store

if TYPE_CHECKING:
    from .agent import Agent

_log = get_logger("conversations")

#: Goal codes we disclose (none of ours yet beyond connecting).
GOAL_CODES = ("didcommd.connect",)
#: Base URL of ``https://`` invitation links (a page there can explain the link).
DEFAULT_INVITATION_BASE_URL = "https://didcomm.org/oob"
#: Most invitation lifetime (seconds) accepted by ``invite_create``.
MAX_INVITATION_SECONDS = 365 * 24 * 3600
#: Longest feature query pattern (as discover-features' own limit).
MAX_PATTERN_CHARS = discover_features.MAX_MATCH_CHARS
#: Messages a chat history page shows unless asked for another number, and the most.
CHAT_PAGE = 20
MAX_CHAT_PAGE = 500
#: Longest ``before`` cursor of a chat history page (``"<created_time>/<rowid>"``).
MAX_CURSOR_CHARS = 48
#: Problem code of a message refused because its DID was rotated away.
ROTATED_PROBLEM_CODE = "e.p.did.rotated"
#: Report Problem 2.x (a problem report never activates a requested connection).
_REPORT_PROBLEM = parse_piuri(REPORT_PROBLEM_PIURI)
#: Events that answer a local command's waiter, by kind.
PROBLEM_RECEIVED = "problem-report.received"
_ANSWERS = {
    "trust-ping.response-received",
    "discover-features.disclosed",
    PROBLEM_RECEIVED,
    *credentials.ANSWERS,
}


@dataclass
class Verdict:
    """What :meth:`Conversations.accept` did with a message."""

    state: str  #: ``received``, ``duplicate`` or ``rejected``
    reason: str | None = None
    problem_code: str | None = None


@dataclass
class _Waiter:
    started: float
    done: trio.Event = field(default_factory=trio.Event)
    event: Event | None = None
    #: The event kinds that answer this command (None: any of _ANSWERS).  Both ends of a
    #: thread can be ours (a connection to ourselves): the issuer waiting for ``issued``
    #: must not take the holder's ``offer-received`` on the same thread for its answer.
    answers: frozenset[str] | None = None


@dataclass
class _Queued:
    id: str
    to: str
    frm: str | None
    packed: bytes
    expires: int | None
    record: dict[str, Any]
    type: str
    thid: str | None


@dataclass
class _Batch:
    """Everything one step writes, in one transaction."""

    records: list[ProtocolRecord] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    outbound: list[_Queued] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    #: Received credentials for the wallet: (id, stored entry).
    credentials: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Status list indexes handed out to offers of ours: (allocation, thread id).
    allocations: list[tuple[revocation.Allocation, str]] = field(default_factory=list)
    #: Status lists received (holder): our new copies, unless we hold newer ones.
    held_lists: list[Any] = field(default_factory=list)
    #: Credentials we issued with a status list index: (thread id, credential id).
    issued: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Accepted:
    """An inbound message whose writes are queued in the store, not yet durable."""

    pending: Pending
    batch: _Batch
    message: dict[str, Any]
    outcome: Outcome


def _write(store: Store, batch: _Batch, book: ConnectionBook, now: int) -> None:
    with store.transaction():
        for r in batch.records:
            store.record_put(r.protocol, r.thid, r.role, state=r.state, updated=r.updated_time or now,
                             record=r.to_dict())
        for c in batch.connections:
            book.put_sync(store, c)
        for q in batch.outbound:
            store.outbox_put(q.id, to_did=q.to, from_did=q.frm, packed=q.packed, created=now,
                             expires=q.expires, record=q.record)
        for cred_id, entry in batch.credentials:
            store.credential_put(cred_id, issuer=entry.get("issuer"), subject=entry.get("subject"),
                                 created=now, record=entry)
        for allocation, thid in batch.allocations:
            revocation.write_allocation(store, allocation, thid, now)
        for held in batch.held_lists:
            revocation.keep_held(store, held)
        for thid, cred_id in batch.issued:
            store.status_entry_issued(thid, cred_id)


def inbox_stored(store: Store, row: InboxRow) -> bool:
    """Commit ``row``'s bytes if they are not in the inbox yet (the caller's transaction
    makes it atomic with what follows); False if another receive of the same bytes
    got there first and was not refused (a duplicate)."""
    if row.seq:
        return True
    stored, created = store.inbox_commit(row.ref, row.packed, transport=row.transport, received=row.received)
    return created or stored.state == INBOX_REJECTED


def reject_inbound(store: Store, row: InboxRow, record: dict[str, Any]) -> bool:
    """Keep a refused message (committing its bytes if need be) with the reason;
    False if the same bytes were received (and accepted) before: nothing changes."""
    with store.transaction():
        if not inbox_stored(store, row):
            return False
        store.inbox_reject(row.ref, record=record)
    return True


def _accept_and_write(
    store: Store, row: InboxRow, msg_id: str, sender: str, inbox_record: dict[str, Any],
    batch: _Batch, book: ConnectionBook, now: int, keep_packed: bool,
) -> bool:
    """Commit (if need be) and accept the inbox row and write the batch atomically;
    False for a duplicate.  The packed bytes are kept only with ``keep_packed``."""
    with store.transaction():
        # New bytes (the common case) go in once, already accepted; only bytes kept
        # before as rejected are accepted in place.
        written = INBOX_STORED if row.seq else store.inbox_insert_received(
            row.ref, row.packed, transport=row.transport, received=row.received,
            msg_id=msg_id, sender=sender, record=inbox_record, keep_packed=keep_packed,
        )
        if written == INBOX_DUPLICATE:
            return False
        if written == INBOX_STORED:
            earlier = store.inbox_accept(row.ref, msg_id=msg_id, sender=sender, record=inbox_record,
                                         keep_packed=keep_packed)
            if earlier is not None:
                return False
        _write(store, batch, book, now)
    return True


def _recipient(result: UnpackResult) -> str | None:
    to = result.metadata.encrypted_to
    if to:
        return split_did_url(to[0])[0]
    msg_to = result.message.get("to")
    return msg_to[0] if isinstance(msg_to, list) and msg_to and isinstance(msg_to[0], str) else None


class Conversations:
    """The protocol driver of one agent (see the module docstring)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        #: Issue-credential and present-proof: keys, consent, the wallet of credentials,
        #: our status lists (whose signed copies the machines staple and serve).
        self.credentials = credentials.CredentialExchange(self)
        self.dispatcher = standard_dispatcher(
            max_receive_bytes=MAX_MESSAGE_BYTES, goal_codes=GOAL_CODES,
            extra_machines=credentials.credential_machines(agent.resolver, agent.wallet,
                                                           self.credentials.publisher.source),
        )
        self.connections = ConnectionBook(agent.store)
        #: Services for the DIDs we make per relationship (the p2p layer sets this
        #: to our libp2p DIDCommMessaging service once the node is up).
        self.services: Callable[[], list[dict[str, Any]]] = lambda: []
        self._lock = EagerLock()
        self._waiters: dict[str, _Waiter] = {}

    # -- inbound ------------------------------------------------------------------------------

    async def accept(self, row: InboxRow, result: UnpackResult, sender: str) -> Verdict:
        """Dispatch an unpacked message and commit everything it caused (see above).

        ``row`` may not be in the store yet (``seq`` 0): its bytes are then committed
        in the same transaction as its acceptance.
        """
        async with self._lock:
            step = await self._accept(row, result, sender)
            if isinstance(step, Verdict):
                return step
            if step.batch.connections:
                # Connections are cached after the commit: the next message must
                # not read the cache before that.
                return await self._finish(step)
        # Once the write is queued, every later store call sees it (group commit
        # keeps the queue order), so the next message's reads need not wait for
        # this one's fsync: the lock is released and commits are shared.
        return await self._finish(step)

    async def _finish(self, step: _Accepted) -> Verdict:
        if not await step.pending.wait():
            return Verdict("duplicate")
        # No flush here: Agent.message_receive flushes (in the background) once it
        # has published message.received too, which then does not wait for it.
        await self._after_commit(step.batch, conn_of=step.message.get("from"), flush=False)
        if step.outcome.error is not None:
            _log.info("protocol.problem", msg_id=step.message.get("id"),
                      problem_code=step.outcome.error.problem_code, reason=step.outcome.error.message)
        return Verdict("received")

    async def _accept(self, row: InboxRow, result: UnpackResult, sender: str) -> Verdict | _Accepted:
        agent = self.agent
        store = agent.store
        now = agent.now()
        message, metadata = result.message, result.metadata
        msg_id = str(message["id"])
        inbox_record = {"message": message, "metadata": metadata.to_json()}
        recipient = _recipient(result)
        batch = _Batch()
        try:
            refusal = await self.connections.refusal(sender=sender or None, recipient=recipient)
            if refusal is not None:
                raise _Refused(refusal, ROTATED_PROBLEM_CODE)
            conn = await self._follow_rotation(result, sender, recipient, now, batch)
        except _Refused as refused:
            record = {"message": message, "metadata": metadata.to_json(), "reason": refused.reason,
                      "problem_code": refused.problem_code}
            if not await store.run(reject_inbound, store.sync, row, record):
                return Verdict("duplicate")
            return Verdict("rejected", refused.reason, refused.problem_code)
        records = await self._records_for(message, conn)
        outcome = self.dispatcher.dispatch(message, metadata, records, now)
        batch.records.extend(outcome.records)
        batch.events.extend(self.credentials.take_received(outcome.events, outcome.records, batch, now))
        await self._connect_inviter(outcome, batch, now)
        await self._pack_all(outcome.outbound, batch, now)
        # Once unpacked, the message and what protected it are in the inbox record; the
        # packed bytes are kept only as the evidence a signature is (non-repudiation).
        pending = store.submit(partial(_accept_and_write, store.sync, row, msg_id, sender, inbox_record,
                                       batch, self.connections, now, metadata.non_repudiation))
        return _Accepted(pending, batch, message, outcome)

    async def _follow_rotation(
        self, result: UnpackResult, sender: str, recipient: str | None, now: int, batch: _Batch
    ) -> Connection | None:
        """Apply what the message says about the relationship's DIDs (step 2)."""
        metadata = result.metadata
        conn: Connection | None = None
        if metadata.from_prior is not None and sender:
            try:
                rotation = read_claims(metadata.from_prior, sender, now)
                prior = await self.connections.for_pair(rotation.prior, recipient)
                if prior is not None:
                    doc = self._doc(rotation.new)
                    conn = prior.with_pairing(accept_their_rotation(prior.pairing, rotation), now)
                    conn = _replace(conn, their_doc=doc)
                    batch.events.append(Event("connection.rotated", None, {
                        "connection": conn.id, "side": "theirs", "from": rotation.prior, "to": rotation.new}))
            except DIDCommError as exc:
                raise _Refused(exc.message, exc.problem_code) from None
        if conn is None:
            conn = await self.connections.for_pair(sender or None, recipient)
        if conn is None:
            return None
        changed = conn
        if recipient is not None:
            changed = conn.with_pairing(complete_our_rotation(conn.pairing, recipient), now)
            if changed.my_did != conn.my_did:
                batch.events.append(Event("connection.rotated", None, {
                    "connection": conn.id, "side": "ours", "from": conn.my_did, "to": changed.my_did}))
        if changed.state == REQUESTED and metadata.authenticated and not _is_problem_report(result.message):
            # A problem report proves who they are, not that they connected: it is how
            # an inviter refuses an answer to a used or expired invitation.
            changed = _replace(changed, state=ACTIVE, updated=now)
            batch.events.append(Event("connection.active", None, {"connection": conn.id, "label": conn.label}))
        if changed != conn or metadata.from_prior is not None:
            batch.connections.append(changed)
        return changed

    async def _records_for(self, message: dict[str, Any], conn: Connection | None) -> dict[str, ProtocolRecord]:
        """The stored records the dispatcher may ask for: the thread and its parent."""
        store = self.agent.store
        found: dict[str, ProtocolRecord] = {}
        for key in (message.get("thid") or message.get("id"), message.get("pthid")):
            if not isinstance(key, str) or key in found:
                continue
            for raw in await store.read(store.sync.records_by_thid, key):
                try:
                    record = ProtocolRecord.from_dict(raw)
                except DIDCommError as exc:
                    _log.warning("protocol.record_unusable", thid=key, reason=exc.message)
                    continue
                # After their rotation, threads begun with their prior DID go on with the new one.
                if conn is not None and record.their_did in conn.their_retired:
                    record.their_did = conn.their_did
                if conn is not None and record.our_did in conn.my_retired:
                    record.our_did = conn.my_did
                found[key] = record
                break
        return found

    async def _connect_inviter(self, outcome: Outcome, batch: _Batch, now: int) -> None:
        """An invitation of ours was answered: the inviter's side of the connection (step 4)."""
        for event in outcome.events:
            if event.kind != "out-of-band.invitation-used" or not isinstance(event.data.get("by"), str):
                continue
            invitation = next((r for r in outcome.records if r.thid == event.thid), None)
            if invitation is None or invitation.our_did is None:
                continue
            their = event.data["by"]
            if await self.connections.for_pair(their, invitation.our_did) is not None:
                continue
            label = invitation.data.get("label")
            conn = Connection(
                id=new_id(), label=label if isinstance(label, str) else None, state=ACTIVE, role=INVITER,
                my_did=invitation.our_did, their_did=their, created=now, updated=now,
                their_doc=self._doc(their), invitation_id=invitation.thid,
            )
            batch.connections.append(conn)
            batch.events.append(Event("connection.created", None, {
                "connection": conn.id, "label": conn.label, "role": INVITER, "their_did": their}))

    # -- packing ------------------------------------------------------------------------------

    async def _pack_all(self, messages: list[dict[str, Any]], batch: _Batch, now: int) -> None:
        pending = {c.id: c for c in batch.connections}
        for message in messages:
            to = message.get("to")
            if not (isinstance(to, list) and to and isinstance(to[0], str)):
                continue  # a problem-report for someone we cannot address
            conn = next((c for c in pending.values() if c.their_did == to[0]), None)
            if conn is None:
                conn = await self.connections.for_pair(to[0], message.get("from"))
            try:
                batch.outbound.append(self._pack(message, conn, now))
            except DIDCommError as exc:
                # A reply nobody can receive (the sender's DID does not resolve,
                # or has no key we can encrypt to) must not cost the message it
                # answers: that one is committed and dispatched all the same.
                _log.warning("protocol.reply_unsendable", to=to[0], type=message.get("type"),
                             thid=message.get("thid"), problem_code=exc.problem_code, reason=exc.message)

    def _pack(self, message: dict[str, Any], conn: Connection | None, now: int) -> _Queued:
        agent = self.agent
        message = dict(message)
        message.setdefault("typ", "application/didcomm-plain+json")
        if conn is not None and message.get("from") in (conn.my_did, conn.my_next_did):
            claims = outbound_claims(conn.pairing, now)
            message["from"] = conn.pairing.sending_did
            if claims is not None:
                message["from_prior"] = claims
        to = message["to"][0]
        frm = message.get("from")
        packed = pack_encrypted(message, to, frm=frm, resolver=agent.resolver, secrets=agent.wallet)
        expires = message.get("expires_time") if isinstance(message.get("expires_time"), int) else None
        return _Queued(
            id=message["id"], to=to, frm=frm, packed=packed.packed.encode(), expires=expires,
            record={"type": message["type"], "thid": message.get("thid"), "anoncrypt": frm is None,
                    "to_kids": packed.to_kids, "from_kid": packed.from_kid},
            type=message["type"], thid=message.get("thid"),
        )

    # -- after a commit -----------------------------------------------------------------------

    async def _after_commit(self, batch: _Batch, *, conn_of: Any = None, flush: bool = True) -> None:
        for c in batch.connections:
            await self.connections.cache(c)
        events = self.agent.events
        for q in batch.outbound:
            events.publish("message.queued", {"id": q.id, "to": q.to, "type": q.type, "thid": q.thid})
        for event in batch.events:
            data = dict(event.data)
            if event.thid is not None:
                data.setdefault("thid", event.thid)
            # The peer the event is about: its sender, else its recipient, else the sender
            # of the inbound message that caused it (a credential received, a proof verified).
            peer = next((p for p in (data.get("from"), data.get("to"), conn_of) if isinstance(p, str)), None)
            if "connection" not in data and peer is not None:
                conn = await self.connections.for_pair(peer, None)
                data["connection"] = conn.id if conn is not None else None
            events.publish(event.kind, data)
            self._wake(event)
        if flush:
            await events.flush_soon()
        # The outbox sender (daemon.delivery), while the transport runs, sends at once.
        sender = getattr(self.agent, "sender", None)
        if batch.outbound and sender is not None:
            sender.wake()

    def _wake(self, event: Event) -> None:
        if event.kind not in _ANSWERS or event.thid is None:
            return
        waiter = self._waiters.get(event.thid)
        if waiter is not None and waiter.event is None and (
                waiter.answers is None or event.kind in waiter.answers or event.kind == PROBLEM_RECEIVED):
            waiter.event = event
            waiter.done.set()

    async def _commit(self, transition: Transition, *, extra: _Batch | None = None) -> None:
        """Store and queue what a local command produced."""
        now = self.agent.now()
        batch = extra or _Batch()
        if transition.record is not None:
            batch.records.append(transition.record)
        batch.events.extend(transition.events)
        await self._pack_all(transition.outbound, batch, now)
        store = self.agent.store
        await store.run(_write, store.sync, batch, self.connections, now)
        await self._after_commit(batch)

    async def _wait(self, thid: str, waiter: _Waiter, wait: float) -> Event | None:
        try:
            with trio.move_on_after(wait):
                await waiter.done.wait()
        finally:
            self._waiters.pop(thid, None)
        return waiter.event

    # -- helpers ------------------------------------------------------------------------------

    def _doc(self, did: str) -> dict[str, Any] | None:
        try:
            return self.agent.resolver.resolve(did).to_json()
        except DIDCommError:
            return None

    async def _new_did(self, label: str | None) -> str:
        created = await self.agent.did_create("peer", label=label, services=self.services() or None)
        return str(created["did"])

    async def _connection(self, ref: str) -> Connection:
        return await self.connections.get(ref)

    async def _target(self, ref: str) -> tuple[str, str, Connection | None]:
        """(our DID, their DID, connection) for a connection name or a DID."""
        if isinstance(ref, str) and ref.startswith("did:"):
            conn = await self.connections.find(ref)
            if conn is not None:
                return conn.my_did, conn.their_did, conn
            return await self.agent._own_did(None), ref, None
        conn = await self.connections.get(ref)
        return conn.my_did, conn.their_did, conn

    # -- local commands -------------------------------------------------------------------------

    async def invite_create(
        self,
        *,
        goal: str | None = None,
        goal_code: str | None = None,
        multi_use: bool = False,
        expires_in: int | None = None,
        label: str | None = None,
        base_url: str = DEFAULT_INVITATION_BASE_URL,
    ) -> dict[str, Any]:
        """A new invitation from a DID made for it; as JSON and as URLs."""
        label = check_label(label)
        if expires_in is not None and not (isinstance(expires_in, int) and 0 < expires_in <= MAX_INVITATION_SECONDS):
            raise InvalidParamsError(f"expires must be 1 to {MAX_INVITATION_SECONDS} seconds")
        now = self.agent.now()
        async with self._lock:
            did = await self._new_did(label)
            try:
                transition = out_of_band.create_invitation(
                    did, now, goal=goal, goal_code=goal_code, multi_use=multi_use,
                    expires_time=now + expires_in if expires_in else None,
                )
                invitation = transition.record.data["invitation"] if transition.record else {}
                url = out_of_band.invitation_url(invitation, base_url)
            except DIDCommError as exc:
                raise InvalidParamsError(exc.message) from None
            assert transition.record is not None
            transition.record.data["label"] = label
            await self._commit(transition)
        return {
            "id": invitation["id"], "did": did, "invitation": invitation, "url": url,
            "didcomm_url": out_of_band.didcomm_url(invitation), "multi_use": multi_use,
            "expires_time": invitation.get("expires_time"),
        }

    async def invite_accept(self, text: str, *, label: str | None = None) -> dict[str, Any]:
        """Accept an invitation (URL or JSON): our DID for it, a connection, a first ping."""
        label = check_label(label)
        now = self.agent.now()
        try:
            received = out_of_band.receive_invitation(text, now)
        except DIDCommError as exc:
            raise DaemonError("invalid_message", f"the invitation cannot be used: {exc.message}",
                              {"problem_code": exc.problem_code}) from None
        assert received.record is not None
        invitation = received.record.data["invitation"]
        their = str(invitation["from"])
        doc = self._doc(their)
        if doc is None:
            raise DaemonError("did", f"the invitation's DID {their} cannot be resolved")
        async with self._lock:
            existing = await self.connections.for_pair(their, None)
            if existing is not None and existing.invitation_id == invitation["id"]:
                return {"connection": existing.summary(), "ping": None, "existing": True}
            body = invitation.get("body") or {}
            label = label or body.get("goal") or None
            label = label[:200] if isinstance(label, str) else None
            mine = await self._new_did(label)
            received.record.our_did = mine
            conn = Connection(
                id=new_id(), label=label, state=REQUESTED, role=INVITEE, my_did=mine, their_did=their,
                created=now, updated=now, their_doc=doc, invitation_id=invitation["id"],
            )
            ping = trust_ping.start_ping(mine, their, now, pthid=invitation["id"])
            batch = _Batch(records=[received.record], connections=[conn], events=[
                *received.events,
                Event("connection.created", None, {"connection": conn.id, "label": label, "role": INVITEE,
                                                   "their_did": their})])
            await self._commit(ping, extra=batch)
        assert ping.record is not None
        return {"connection": conn.summary(), "ping": ping.record.thid, "existing": False}

    async def ping(self, target: str, *, wait: float = 0.0, response_requested: bool = True) -> dict[str, Any]:
        """Trust-ping a connection (or DID); with ``wait``, return the round trip."""
        wait = _check_wait(wait)
        async with self._lock:
            mine, theirs, conn = await self._target(target)
            transition = trust_ping.start_ping(mine, theirs, self.agent.now(),
                                               response_requested=response_requested)
            assert transition.record is not None
            thid = transition.record.thid
            waiter = _Waiter(time.monotonic())
            if wait and response_requested:
                self._waiters[thid] = waiter
            await self._commit(transition)
        out: dict[str, Any] = {"thid": thid, "to": theirs, "connection": conn.id if conn else None,
                               "state": "sent"}
        if wait and response_requested:
            event = await self._wait(thid, waiter, wait)
            out.update(_answer(event, waiter))
        return out

    async def features(self, ref: str, *, query: str = "*", feature_type: str = "protocol",
                       wait: float = 0.0) -> dict[str, Any]:
        """Ask a connection what it supports; with ``wait``, return its disclosures."""
        wait = _check_wait(wait)
        if not isinstance(query, str) or not query or len(query) > MAX_PATTERN_CHARS:
            raise InvalidParamsError(f"query must be a pattern of 1 to {MAX_PATTERN_CHARS} characters")
        types = discover_features.FEATURE_TYPES if feature_type == "all" else (feature_type,)
        if feature_type != "all" and feature_type not in discover_features.FEATURE_TYPES:
            raise InvalidParamsError(f"feature_type must be one of: all, {', '.join(discover_features.FEATURE_TYPES)}")
        queries = [{"feature-type": t, "match": query} for t in types]
        async with self._lock:
            mine, theirs, conn = await self._target(ref)
            try:
                transition = discover_features.start_query(mine, theirs, queries, self.agent.now())
            except DIDCommError as exc:
                raise InvalidParamsError(exc.message) from None
            assert transition.record is not None
            thid = transition.record.thid
            waiter = _Waiter(time.monotonic())
            if wait:
                self._waiters[thid] = waiter
            await self._commit(transition)
        out: dict[str, Any] = {"thid": thid, "to": theirs, "connection": conn.id if conn else None,
                               "state": "sent"}
        if wait:
            event = await self._wait(thid, waiter, wait)
            out.update(_answer(event, waiter))
        return out

    async def chat(self, ref: str, content: str, *, lang: str | None = None,
                   please_ack: bool = False) -> dict[str, Any]:
        """Send a basic message to a connection (or DID)."""
        async with self._lock:
            mine, theirs, conn = await self._target(ref)
            try:
                transition = basic_message.send_message(mine, theirs, content, self.agent.now(), lang=lang,
                                                        please_ack=please_ack)
            except DIDCommError as exc:
                raise InvalidParamsError(exc.message) from None
            assert transition.record is not None
            await self._commit(transition)
        return {"id": transition.record.thid, "to": theirs, "connection": conn.id if conn else None,
                "state": "queued"}

    async def chat_history(self, ref: str, *, limit: int = CHAT_PAGE, before: str | None = None) -> dict[str, Any]:
        """The basic messages exchanged with a connection (or DID), newest first: a page
        of ``limit``, before the cursor ``before`` (the previous page's ``next``).

        A connection's messages are those between any of its DIDs, past ones included
        (a rotation does not cut the history).  ``events_seq`` is the event log's last
        number when the page was read: a client that follows the conversation subscribes
        from there, and misses nothing in between.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CHAT_PAGE:
            raise InvalidParamsError(f"limit must be an integer from 1 to {MAX_CHAT_PAGE}")
        cursor = None
        if before is not None:
            check_str("before", before, MAX_CURSOR_CHARS)
            created, _, rowid = before.partition("/")
            if not created.isdigit() or not rowid.isdigit():
                raise InvalidParamsError("before must be the 'next' cursor of a previous page")
            cursor = (int(created), int(rowid))
        mine, theirs, conn = await self._target(ref)
        my_dids = {mine} if conn is None else {conn.my_did, *conn.my_retired, *filter(None, [conn.my_next_did])}
        their_dids = {theirs} if conn is None else {conn.their_did, *conn.their_retired}
        seq = self.agent.events.last_seq

        def ours(record: dict[str, Any]) -> bool:
            return record.get("their_did") in their_dids and (conn is None or record.get("our_did") in my_dids)

        store = self.agent.store
        page = await store.run(store.sync.records_newest, basic_message.PIURI, ours, limit=limit, before=cursor,
                               their_dids=their_dids)
        sent = [r["thid"] for _, r in page if r.get("role") == basic_message.SENDER]
        delivery = await store.run(store.sync.outbox_states, sent) if sent else {}
        messages = [_chat_entry(r, delivery) for _, r in page]
        last = page[-1][0] if len(page) == limit else None
        return {
            "connection": conn.id if conn else None,
            "label": conn.label if conn else None,
            "their_dids": sorted(their_dids),
            "messages": messages,
            "next": None if last is None else f"{last[0]}/{last[1]}",
            "events_seq": seq,
        }

    async def forget(self, ref: str) -> dict[str, Any]:
        """Forget a connection (its DIDs, messages and protocol records stay)."""
        async with self._lock:  # not interleaved with a message of it being taken
            conn = await self.connections.delete(ref)
        self.agent.events.publish("connection.deleted", {"connection": conn.id, "label": conn.label})
        await self.agent.events.flush_soon()
        return {"deleted": conn.summary()}

    async def rename(self, ref: str, label: str) -> dict[str, Any]:
        """Give a connection a new local label (the name commands and ``chat`` use).

        A label that already names another connection (its label or its id) is refused:
        names must keep pointing at one connection.
        """
        label = check_label(label)
        if label is None:
            raise InvalidParamsError("label must be a string")
        async with self._lock:  # not interleaved with a rotation's write of the same row
            conn = await self.connections.get(ref)
            other = await self.connections.find(label)
            if other is not None and other.id != conn.id:
                raise InvalidParamsError(f"{label!r} already names connection {other.id}")
            renamed = _replace(conn, label=label, updated=self.agent.now())
            await self.connections.save(renamed)
        self.agent.events.publish("connection.renamed", {"connection": conn.id, "label": label})
        await self.agent.events.flush_soon()
        return {"connection": renamed.summary()}

    async def rotate(self, ref: str, *, label: str | None = None) -> dict[str, Any]:
        """Start using a new DID with a connection; the peer learns it from ``from_prior``.

        A trust ping goes out at once, so the peer hears of the new DID now.
        """
        async with self._lock:
            conn = await self.connections.get(ref)
            new = await self._new_did(check_label(label) or conn.label)
            now = self.agent.now()
            try:
                pairing = begin_rotation(conn.pairing, new)
            except DIDCommError as exc:
                raise InvalidParamsError(exc.message) from None
            updated = conn.with_pairing(pairing, now)
            ping = trust_ping.start_ping(new, conn.their_did, now)
            batch = _Batch(connections=[updated], events=[Event("connection.rotating", None, {
                "connection": conn.id, "from": conn.my_did, "to": new})])
            # _pack_all packs the ping with the rotated connection (from_prior included).
            await self._commit(ping, extra=batch)
        assert ping.record is not None
        return {"connection": updated.summary(), "new_did": new, "ping": ping.record.thid}

    async def thread(self, thid: str) -> dict[str, Any]:
        """The stored protocol records of one thread."""
        if not isinstance(thid, str) or not thid:
            raise InvalidParamsError("thid must be a non-empty string")
        store = self.agent.store
        rows = await store.run(store.sync.records_by_thid, thid)
        if not rows:
            raise NotFoundError(f"no protocol thread {thid!r}")
        return {"thid": thid, "records": rows}


    async def thread_delete(self, thid: str) -> dict[str, Any]:
        """Erase a finished protocol thread: its records, the messages we received in it
        and the stored events about it (see :meth:`Store.thread_erase`).

        Refused (``invalid_state``) while the thread is still in progress (decline it
        first), and for an issuer's thread that handed out a status-list entry: that
        thread is how ``credential revoke`` finds the credential's entry.
        """
        check_str("thid", thid, MAX_ID_CHARS)  # (a thread id is a message id)
        store = self.agent.store
        async with self._lock:  # no message of the thread is taken in meanwhile
            rows = await store.run(store.sync.records_by_thid, thid)
            if not rows:
                raise NotFoundError(f"no protocol thread {thid!r}")
            for row in rows:
                table = self.dispatcher.machine_for(row["protocol"]).TRANSITIONS
                if not finished(table, row["role"], row["state"]):
                    raise DaemonError(INVALID_STATE, f"thread {thid} is still in progress ({row['role']} in state "
                                                     f"{row['state']}); decline it first, or wait for it to end")
            if any(row["protocol"] == issue_credential.PIURI and row["role"] == issue_credential.ISSUER
                   for row in rows) and await store.run(store.sync.status_entry_by_thid, thid) is not None:
                raise DaemonError(INVALID_STATE, f"thread {thid} issued a revocable credential: it is how "
                                                 "'credential revoke' finds its status-list entry, so it stays")
            seen = [i for row in rows for i in row.get("seen_ids", [])]
            erased = await self.agent.erase(partial(store.sync.thread_erase, thid, seen), "thread.deleted",
                                            {"thid": thid})
        return {"thid": thid, "deleted": erased}


class _Refused(Exception):
    def __init__(self, reason: str, problem_code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problem_code = problem_code


def _is_problem_report(message: dict[str, Any]) -> bool:
    try:
        mtype = parse_message_type(message.get("type"))
    except DIDCommError:
        return False
    return mtype.protocol.accepts(_REPORT_PROBLEM) and mtype.normalized_name == normalize_name("problem-report")


def _replace(conn: Connection, **changes: Any) -> Connection:
    from dataclasses import replace

    return replace(conn, **changes)


def _answer(event: Event | None, waiter: _Waiter) -> dict[str, Any]:
    if event is None:
        return {"state": "timeout"}
    rtt_ms = round((time.monotonic() - waiter.started) * 1000, 3)
    if event.kind == "problem-report.received":
        return {"state": "problem", "problem": event.data, "rtt_ms": rtt_ms}
    out: dict[str, Any] = {"state": "answered", "rtt_ms": rtt_ms}
    if event.kind == "discover-features.disclosed":
        out["disclosures"] = event.data.get("disclosures", [])
        out["max_receive_bytes"] = event.data.get("max_receive_bytes")
    return out


def _chat_entry(record: dict[str, Any], delivery: dict[str, str]) -> dict[str, Any]:
    """One basic message of a chat history, from its record."""
    data = record.get("data") or {}
    sent = record.get("role") == basic_message.SENDER
    return {
        "id": record["thid"],
        "direction": "sent" if sent else "received",
        "from": record.get("our_did") if sent else record.get("their_did"),
        "to": record.get("their_did") if sent else record.get("our_did"),
        "time": record.get("created_time"),
        "content": data.get("content"),
        "lang": data.get("lang"),
        # A sent message's delivery, while the outbox still lists it (``[store] keep_sent``).
        "delivery": delivery.get(record["thid"]) if sent else None,
    }

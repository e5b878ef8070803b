"""Credential exchange: the daemon's side of issue-credential 3.0 and present-proof 3.0.

Theory of operation
-------------------
``protocols/issue_credential.py`` and ``protocols/present_proof.py`` decide
everything about the two protocols (what a message may do, what is signed,
what is verified, what is disclosed); ``protocols/sd_jwt.py`` and
``protocols/data_integrity.py`` are the two credential formats (SD-JWT VC:
the holder discloses claim by claim; ``di_vc``, a W3C VC 2.0 credential with
an ``eddsa-jcs-2022`` proof: shown whole, bound to the holder's DID).  This
module gives them what only the daemon has, and nothing else:

- **keys**: the issuer signs with the ``assertionMethod`` key of an issuer DID
  of ours (by default a did:key labelled ``issuer``, made on first use: a
  stable public identity, unlike the pairwise did:peer of a connection); the
  holder binds the credential to the ``authentication`` key of its DID in the
  relationship and signs the presentation's key-binding JWT with it.  Keys
  stay in the wallet; only kids travel through records and replies;
- **the holder's consent**: an offer and a proof request wait
  (``issue-credential.offer-received``, ``present-proof.request-received``
  events, ``credential.pending``) until the owner accepts or declines.  The
  issuer's offer is its consent, so a request for an offered credential is
  answered at once, by the machine;
- **the other side asking first**: a holder may propose what it wants
  issued (:meth:`CredentialExchange.propose`, also a counter to an offer it
  received) and a prover what it would show (:meth:`propose_proof`).  A
  proposal commits the issuer or verifier to nothing: it waits in
  ``credential.pending`` like an offer does, until the owner answers it with
  an offer or a request on the same thread (``reply``: the machine's
  ``proposal=``) or declines it.  Every thread that waits for an answer is
  one row of :data:`WAITING`;
- **the wallet of credentials**: a received, verified credential is written
  to the ``credentials`` table in the same transaction as the message that
  carried it (:meth:`CredentialExchange.take_received`, called by
  ``Conversations`` for every inbound step).  The published event names the
  credential but does not carry it: the event log is replayable by any client
  and should not be a second copy of the wallet;
- **revocation** (:mod:`daemon.revocation`): an offer gets a status list
  index unless the owner says ``revocable: false``; ``revoke`` sets it for
  good, ``suspend`` and ``reinstate`` for a while (:data:`STATUS_ACTIONS`); the
  machines get our signed lists from ``StatusPublisher.source``.  A holder
  keeps the list stapled to each credential, refreshes it from the issuer
  (``refresh``, and :meth:`CredentialExchange.serve_refresh` in the
  background), staples it when presenting, and never offers a credential
  its copy says is revoked or suspended.

Every command runs under the conversations lock, like the other local
commands, so a thread's record is never read by two steps at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from protocols import (
    issue_credential,
    present_proof,
    presentation_exchange,
    status_exchange,
    status_list,
)
from protocols.errors import DIDCommError
from protocols.framework import Event, ProtocolMachine, ProtocolRecord, Transition
from protocols.keys import PrivateKey

from .errors import (
    AMBIGUOUS,
    INVALID_STATE,
    NO_MATCH,
    DaemonError,
    InvalidParamsError,
    NotFoundError,
)
from .logs import get_logger
from .params import check_str, check_wait
from .revocation import (
    LIST_BITS,
    NOT_REVOCABLE,
    Allocation,
    HeldLists,
    StatusPublisher,
    credential_references,
    document_text,
    for_presentation,
    held_row,
    pick_index,
    suspension_uri,
    verify_document,
)

if TYPE_CHECKING:
    from .connections import Connection
    from .conversations import Conversations, _Batch

#: Most claims one credential offer may carry.
MAX_CLAIMS = 64
#: Longest claim name.
MAX_CLAIM_NAME_CHARS = 128
#: Longest credential type (``vct``), comment or decline reason.
MAX_VCT_CHARS = 512
MAX_COMMENT_CHARS = 2000
#: Most issuer DIDs a proof request may accept.
MAX_ISSUERS = 32
#: Longest validity an offer may give a credential (seconds): ten years.
MAX_VALIDITY_S = 10 * 365 * 24 * 3600
#: Most threads ``credential.issued`` / ``proof.list`` return.
MAX_LISTED_THREADS = 1000
#: Label of the did:key we issue from when no issuer is named.
ISSUER_LABEL = "issuer"
#: Events that answer each waiting ``credential.*`` / ``proof.*`` command (besides a
#: problem report, which answers any).
OFFER_ANSWERS = frozenset({"issue-credential.issued",
                           "issue-credential.proposal-received"})  # (countered)
PROPOSAL_ANSWERS = frozenset({"issue-credential.offer-received"})
ACCEPT_ANSWERS = frozenset({"issue-credential.credential-received"})
REQUEST_ANSWERS = frozenset({"present-proof.verified", "present-proof.failed",
                             "present-proof.proposal-received"})  # (countered)
PROOF_PROPOSAL_ANSWERS = frozenset({"present-proof.request-received"})
STATUS_ANSWERS = frozenset({"status-list.received", "status-list.failed"})
ANSWERS = (OFFER_ANSWERS | PROPOSAL_ANSWERS | ACCEPT_ANSWERS | REQUEST_ANSWERS | PROOF_PROPOSAL_ANSWERS
           | STATUS_ANSWERS)
#: Events whose status list goes into our held copies (not into the event log).
STATUS_RECEIVED = "status-list.received"
#: The event that names a credential we issued (its id, for ``revoke``).
ISSUED = "issue-credential.issued"
#: Most seconds a verifier may accept a status list's age (the protocol's limit: a year).
MAX_STATUS_MAX_AGE_S = present_proof.MAX_STATUS_MAX_AGE
#: The background refresh looks for stale lists at least this often (seconds).
REFRESH_CHECK_S = 60.0
#: Status values a holder does not present (its copy of the list says so).
NOT_PRESENTED = frozenset({"revoked", "suspended"})


@dataclass(frozen=True)
class StatusAction:
    """What an issuer's ``revoke`` / ``suspend`` / ``reinstate`` does to a credential's entry."""

    #: The entry's value after it.
    value: int
    #: The values it changes.
    applies_to: frozenset[int]
    #: Its name in replies (``revoked: true``), events (``credential.revoked``) and errors.
    done: str
    #: Whether doing it to an entry that already has ``value`` is a harmless repeat
    #: (``already: true``) rather than an error.
    repeatable: bool = True


STATUS_ACTIONS = {
    # Revocation is final: a suspended credential can be revoked, a revoked one nothing more.
    "revoke": StatusAction(status_list.REVOKED, frozenset({status_list.VALID, status_list.SUSPENDED}), "revoked"),
    "suspend": StatusAction(status_list.SUSPENDED, frozenset({status_list.VALID}), "suspended"),
    # Only a suspended credential is reinstated: a valid one says the owner named the wrong one.
    "reinstate": StatusAction(status_list.VALID, frozenset({status_list.SUSPENDED}), "reinstated",
                              repeatable=False),
}
#: An entry's value, as ``credential issued`` and the errors name it.
ENTRY_STATES = {status_list.VALID: "valid", status_list.REVOKED: "revoked", status_list.SUSPENDED: "suspended"}
#: ``format`` parameter values -> protocol format names (offers; proof requests add ``any``).
OFFER_FORMATS = {"sd-jwt": issue_credential.FORMAT, "di": issue_credential.DI_VC}
REQUEST_FORMATS = {
    "sd-jwt": (issue_credential.FORMAT,),
    "di": (issue_credential.DI_VC,),
    "any": (issue_credential.FORMAT, issue_credential.DI_VC),
}
#: The event whose credential goes into the wallet.
RECEIVED = "issue-credential.credential-received"
#: Threads that wait for our owner's answer: (protocol, our role, state, ``kind`` in
#: ``credential.pending``).  ``decline`` ends any of them with a problem report.
WAITING = (
    (issue_credential.PIURI, issue_credential.HOLDER, issue_credential.OFFER_RECEIVED, "offer"),
    (present_proof.PIURI, present_proof.PROVER, present_proof.REQUEST_RECEIVED, "proof-request"),
    (issue_credential.PIURI, issue_credential.ISSUER, issue_credential.PROPOSAL_RECEIVED, "credential-proposal"),
    (present_proof.PIURI, present_proof.VERIFIER, present_proof.PROPOSAL_RECEIVED, "proof-proposal"),
)
#: What a ``reply`` must name, by the thread it answers: (protocol, our role, state, for errors).
REPLY_TO_CREDENTIAL_PROPOSAL = (issue_credential.PIURI, issue_credential.ISSUER,
                                issue_credential.PROPOSAL_RECEIVED, "credential proposal")
REPLY_TO_PROOF_PROPOSAL = (present_proof.PIURI, present_proof.VERIFIER, present_proof.PROPOSAL_RECEIVED,
                           "proof proposal")
REPLY_TO_OFFER = (issue_credential.PIURI, issue_credential.HOLDER, issue_credential.OFFER_RECEIVED,
                  "credential offer")
REPLY_TO_PROOF_REQUEST = (present_proof.PIURI, present_proof.PROVER, present_proof.REQUEST_RECEIVED,
                          "proof request")


_log = get_logger("credentials")


def credential_machines(resolver: Any, secrets: Any,
                        status_source: Callable[[str], str | dict[str, Any] | None] | None = None,
                        ) -> list[ProtocolMachine]:
    """The protocol machines, with the resolver, the wallet and our signed status lists."""
    return [issue_credential.IssueCredential(resolver, secrets, status_source=status_source),
            present_proof.PresentProof(resolver),
            status_exchange.StatusExchange(resolver, status_source=status_source)]


def _check_names(name: str, values: Any, *, optional: bool = False) -> list[str] | None:
    if values is None and optional:
        return None
    if not isinstance(values, list) or not values or len(values) > MAX_CLAIMS:
        raise InvalidParamsError(f"{name} must be a list of 1 to {MAX_CLAIMS} claim names")
    for v in values:
        check_str(name, v, MAX_CLAIM_NAME_CHARS)
    if len(set(values)) != len(values):
        raise InvalidParamsError(f"{name} lists a claim twice")
    return list(values)


class CredentialExchange:
    """Issue, hold and present credentials (see the module docstring)."""

    def __init__(self, conversations: Conversations) -> None:
        self.conv = conversations
        self.agent = conversations.agent
        #: Our status lists (issuer) and how a held credential's status is read (holder).
        self.publisher = StatusPublisher(self.agent.resolver, self.agent.wallet, self.agent.now)
        self.held_lists = HeldLists(self.agent.resolver)
        #: When the background refresh last asked for each list (not persisted: a
        #: restart asks again for those that are stale).
        self._refresh_asked: dict[str, int] = {}

    async def load(self) -> None:
        """Read our status lists into memory (at start, before any message is handled)."""
        store = self.agent.store
        self.publisher.load(await store.read(store.sync.status_lists_all))

    # -- inbound: what the machines produced ------------------------------------------------

    def take_received(self, events: list[Event], records: list[ProtocolRecord], batch: _Batch,
                      now: int) -> list[Event]:
        """Move each received credential out of its event into ``batch`` (the wallet row),
        and each received status list into our held copies; return the events to publish."""
        out = []
        for event in events:
            if event.kind == STATUS_RECEIVED:
                out.append(self._take_status_list(event, batch, now))
                continue
            if event.kind == ISSUED and event.thid is not None and isinstance(event.data.get("credential_id"), str):
                # So ``revoke`` finds it by the id the holder sees, as well as by thread.
                batch.issued.append((event.thid, event.data["credential_id"]))
            text = event.data.get("sd_jwt", event.data.get("credential"))
            if event.kind != RECEIVED or not isinstance(text, str):
                out.append(event)
                continue
            data = dict(event.data)
            data.pop("sd_jwt", None)
            data.pop("credential", None)
            stapled = data.pop("status_list", None)
            stapled_suspension = data.pop("suspension_list", None)
            fmt = present_proof.credential_format(text)
            record = next((r for r in records if r.thid == event.thid), None)
            cred_id = str(data.get("credential_id") or event.thid)
            data["credential_id"] = cred_id
            holder_kid = record.data.get("holder_kid") if record is not None else None
            try:
                expires = present_proof.credential_claims(text).get("exp")
            except DIDCommError:
                expires = None  # the machine verified it; an unreadable exp is no expiry shown
            status = data.get("status")
            ref = status if isinstance(status, dict) else None
            # An SD-JWT entry keeps its ``sd_jwt`` field; a di_vc one has ``credential``.
            entry = {
                "id": cred_id, "vct": data.get("vct"), "issuer": data.get("issuer"),
                "subject": record.our_did if record is not None else None, "holder_kid": holder_kid,
                "claims": data.get("claims"), "thid": event.thid, "received": now, "format": fmt,
                "sd_jwt" if fmt == issue_credential.FORMAT else "credential": text,
                "expires": expires if isinstance(expires, int) else None,
                "status": {"uri": ref.get("uri"), "index": ref.get("index")} if ref is not None else None,
            }
            suspension = data.get("suspension")
            if isinstance(suspension, dict):
                # A di_vc credential's entry in its issuer's suspension list.
                entry["suspension"] = {"uri": suspension.get("uri"), "index": suspension.get("index")}
            batch.credentials.append((cred_id, entry))
            for reference, document in zip(credential_references(entry), (stapled, stapled_suspension),
                                           strict=False):
                if isinstance(document, str | dict):
                    self._take_stapled(document, reference.uri, entry, batch, now)
            out.append(Event(event.kind, event.thid, data))
        return out

    def _take_stapled(self, document: str | dict[str, Any], uri: str, entry: dict[str, Any], batch: _Batch,
                      now: int) -> None:
        """Keep the status list stapled to a credential as our first copy of it."""
        text = document_text(document)
        try:
            # The machine verified it; this reads its issue time (and checks it once more).
            verified = verify_document(text, resolver=self.agent.resolver, now=now, uri=uri,
                                       issuer=entry.get("issuer"))
        except DIDCommError as exc:
            _log.warning("status_list.stapled_unusable", uri=uri, reason=exc.message)
            return
        batch.held_lists.append(held_row(text, uri=uri, issuer=verified.issuer, issued_at=verified.issued_at,
                                         expires=verified.expires, fetched_at=now))

    def _take_status_list(self, event: Event, batch: _Batch, now: int) -> Event:
        """A refreshed list (verified by the machine): into our copies; the event without it."""
        data = dict(event.data)
        document = data.pop("document", None)
        uri, issuer, issued_at = data.get("uri"), data.get("issuer"), data.get("issued_at")
        expires = data.get("expires")
        if (isinstance(document, str | dict) and isinstance(uri, str) and isinstance(issuer, str)
                and isinstance(issued_at, int) and not isinstance(issued_at, bool)):
            batch.held_lists.append(held_row(document_text(document), uri=uri, issuer=issuer, issued_at=issued_at,
                                             expires=expires if isinstance(expires, int) else None,
                                             fetched_at=now))
        return Event(event.kind, event.thid, data)

    # -- issuer -----------------------------------------------------------------------------

    async def offer(self, ref: str, *, vct: str | None, claims: dict[str, Any],
                    disclosable: list[str] | None = None, issuer: str | None = None, comment: str | None = None,
                    valid_for: int | None = None, wait: float = 0.0, format: str | None = None,
                    revocable: bool = True, reply: str | None = None) -> dict[str, Any]:
        """Offer a credential to a connection; with ``wait``, until it is issued.

        ``valid_for`` (seconds) gives the credential an ``exp`` (``validUntil``), counted
        from the offer; ``format`` is ``sd-jwt`` (the default) or ``di`` (see
        :data:`OFFER_FORMATS`; with ``reply``, the default is the proposal's format);
        ``revocable`` (default) gives it an entry in one of our status lists.
        ``reply`` answers the holder's proposal on that thread (``vct`` defaults to
        the proposal's); the offer is ours alone, whatever was proposed."""
        wait = check_wait(wait)
        if not isinstance(revocable, bool):
            raise InvalidParamsError("revocable must be true or false")
        if format is not None and format not in OFFER_FORMATS:
            raise InvalidParamsError(f"format must be one of {', '.join(OFFER_FORMATS)}")
        if valid_for is not None and (isinstance(valid_for, bool) or not isinstance(valid_for, int)
                                      or not 0 < valid_for <= MAX_VALIDITY_S):
            raise InvalidParamsError(f"valid_for must be 1 to {MAX_VALIDITY_S} seconds")
        vct = check_str("type", vct, MAX_VCT_CHARS, optional=True)
        reply = check_str("reply", reply, MAX_VCT_CHARS, optional=True)
        if vct is None and reply is None:
            raise InvalidParamsError("an offer needs a type (vct)")
        comment = check_str("comment", comment, MAX_COMMENT_CHARS, optional=True)
        if not isinstance(claims, dict) or not claims or len(claims) > MAX_CLAIMS:
            raise InvalidParamsError(f"claims must be an object of 1 to {MAX_CLAIMS} claims")
        _check_names("claims", list(claims))
        names = _check_names("disclosable", disclosable, optional=True)
        if names is None:
            names = list(claims)  # privacy by default: the holder may withhold any claim
        unknown = sorted(set(names) - set(claims))
        if unknown:
            raise InvalidParamsError(f"disclosable names claims the offer does not have: {', '.join(unknown)}")
        conv = self.conv
        async with conv._lock:
            mine, theirs, conn, proposal = await self._target(ref, reply, REPLY_TO_CREDENTIAL_PROPOSAL)
            if proposal is not None and vct is None:
                proposed = _obj(proposal.data.get("proposal")).get("vct")
                if not isinstance(proposed, str):
                    raise InvalidParamsError(f"the proposal on thread {reply} names no type: give one")
                vct = proposed
            assert vct is not None  # given, or the proposal's (checked above)
            if format is None:
                proposed_format = _obj(proposal.data.get("proposal")).get("format") if proposal else None
                format = next((k for k, v in OFFER_FORMATS.items() if v == proposed_format), "sd-jwt")
            issuer_did, issuer_kid = await self._issuer(issuer)
            fmt = OFFER_FORMATS[format]
            allocation, status = await self._status_for(proposal, issuer_did, fmt, revocable)
            # A di_vc credential names the same index in the list's suspension view too.
            suspension = (suspension_uri(status[0]), status[1]) if status and fmt == issue_credential.DI_VC else None
            try:
                transition = issue_credential.offer_credential(
                    mine, theirs, self.agent.now(), vct=vct, claims=claims, disclosable=names,
                    issuer_kid=issuer_kid, issuer=issuer_did, comment=comment,
                    expires=self.agent.now() + valid_for if valid_for else None,
                    credential_format=fmt, status=status, suspension=suspension, proposal=proposal,
                )
            except DIDCommError as exc:
                raise InvalidParamsError(exc.message) from None
            thid = self._watch(transition, wait, OFFER_ANSWERS)
            await conv._commit(transition, extra=_new_batch(
                allocations=[(allocation, thid)] if allocation is not None else []))
            if allocation is not None and allocation.new_list:
                self.publisher.put(allocation.uri, issuer_did, fmt,
                                   status_list.StatusList(allocation.size, bits=LIST_BITS))
        out: dict[str, Any] = {"thid": thid, "to": theirs, "connection": conn.id if conn else None,
                               "issuer": issuer_did, "format": format, "state": "offered",
                               "revocable": status is not None, "suspendable": status is not None,
                               "reply": proposal is not None,
                               "status": {"uri": status[0], "index": status[1]} if status is not None else None}
        return await self._answer(out, thid, wait)

    async def _status_for(self, proposal: ProtocolRecord | None, issuer: str, fmt: str,
                          revocable: bool) -> tuple[Allocation | None, tuple[str, int] | None]:
        """(a new index to write with the offer, the offer's status entry): a fresh
        index, or, on a thread that was offered before (the holder countered), the
        entry that offer got -- one thread, one entry, so ``revoke`` finds the right one."""
        store = self.agent.store
        earlier = (await store.read(store.sync.status_entry_by_thid, proposal.thid)
                   if proposal is not None else None)
        if earlier is not None:
            row = await store.read(store.sync.status_list_get, earlier.uri)
            if not revocable or row is None or (row.issuer, row.format) != (issuer, fmt):
                raise InvalidParamsError(
                    f"our earlier offer on thread {earlier.thid} has entry {earlier.idx} of {earlier.uri}: "
                    "a new offer on this thread must be revocable, from the same issuer, in the same format")
            return None, (earlier.uri, earlier.idx)
        if not revocable:
            return None, None
        # Read under the lock, written with the offer: no two offers get one index.
        allocation = await store.read(pick_index, store.sync, issuer, fmt)
        return allocation, (allocation.uri, allocation.index)

    async def revoke(self, ref: str) -> dict[str, Any]:
        """Revoke a credential we issued (or offered), named by its thread or credential id: for good."""
        return await self._set_status(ref, "revoke")

    async def suspend(self, ref: str) -> dict[str, Any]:
        """Suspend a credential we issued, until :meth:`reinstate` (or revoke) it."""
        return await self._set_status(ref, "suspend")

    async def reinstate(self, ref: str) -> dict[str, Any]:
        """Make a suspended credential we issued valid again."""
        return await self._set_status(ref, "reinstate")

    async def _set_status(self, ref: str, action_name: str) -> dict[str, Any]:
        """Do ``action_name`` (:data:`STATUS_ACTIONS`) to the entry of a credential we issued."""
        action = STATUS_ACTIONS[action_name]
        ref = check_str("credential", ref, MAX_VCT_CHARS) or ""
        conv = self.conv
        store = self.agent.store
        async with conv._lock:
            record = await self._issued_record(ref, action_name)
            entry = await store.read(store.sync.status_entry_by_thid, record.thid)
            cred_id = record.data.get("credential_id")
            if entry is None:
                raise DaemonError(INVALID_STATE, f"the credential of thread {record.thid} was offered without "
                                  f"a status list (--no-status): it cannot be {action.done}",
                                  {"thid": record.thid, "revocable": False})
            out = {"thid": record.thid, "credential_id": cred_id, "to": record.their_did,
                   "status": {"uri": entry.uri, "index": entry.idx}, action.done: True,
                   "state": ENTRY_STATES.get(action.value, str(action.value))}
            if entry.status == action.value and action.repeatable:
                return {**out, "already": True}
            self._check_action(record, entry.status, action_name)
            statuses = self.publisher.statuses(entry.uri)
            if action.value >= 1 << statuses.bits:
                # A list from before suspension: every entry keeps its index and value.
                statuses = statuses.widened(LIST_BITS)
            statuses.set(entry.idx, action.value)
            await store.run(store.sync.status_set, entry.uri, entry.idx, action.value,
                            statuses.to_bytes(), now=self.agent.now(), bits=statuses.bits)
            row = await store.read(store.sync.status_list_get, entry.uri)
            assert row is not None  # its entry is there
            self.publisher.put(entry.uri, row.issuer, row.format, statuses)
        events = self.agent.events
        events.publish(f"credential.{action.done}", {"thid": record.thid, "credential_id": cred_id,
                                                     "uri": entry.uri, "index": entry.idx})
        await events.flush_soon()
        return {**out, "already": False}

    @staticmethod
    def _check_action(record: ProtocolRecord, value: int, action_name: str) -> None:
        """An ``invalid_state`` error unless ``action_name`` applies to an entry of ``value``."""
        action = STATUS_ACTIONS[action_name]
        state = ENTRY_STATES.get(value, f"status {value}")
        details = {"thid": record.thid, "state": state}
        if value == status_list.REVOKED:
            raise DaemonError(INVALID_STATE, f"the credential of thread {record.thid} is revoked, and revocation "
                              f"is permanent: it cannot be {action.done}", details)
        if value not in action.applies_to:
            raise DaemonError(INVALID_STATE, f"the credential of thread {record.thid} is {state}, not "
                              f"suspended: there is nothing to {action_name}", details)
        offer = _obj(record.data.get("offer"))
        if (action_name == "suspend" and offer.get("format") == issue_credential.DI_VC
                and not offer.get("suspension")):
            raise DaemonError(INVALID_STATE, f"the di credential of thread {record.thid} was issued before "
                              "suspension existed: it names no suspension status list, so it can be revoked "
                              "but not suspended", {**details, "suspendable": False})

    async def _issued_record(self, ref: str, action_name: str = "revoke") -> ProtocolRecord:
        """Our issuer thread named by its thread id or by the id of the credential issued in it."""
        store = self.agent.store
        entry = await store.read(store.sync.status_entry_by_credential, ref)
        for thid in (ref, entry.thid) if entry is not None else (ref,):
            for raw in await store.read(store.sync.records_by_thid, thid):
                if raw.get("protocol") == issue_credential.PIURI and raw.get("role") == "issuer":
                    return ProtocolRecord.from_dict(raw)
        # Not revocable, named by credential id: found among recent threads, to say so.
        for raw in await store.read(store.sync.records_by_role, issue_credential.PIURI, "issuer",
                                    MAX_LISTED_THREADS):
            if _obj(raw.get("data")).get("credential_id") == ref:
                return ProtocolRecord.from_dict(raw)
        held = [c for c in await store.read(store.sync.credential_all) if ref in (c.get("id"), c.get("thid"))]
        holding = any(r.get("protocol") == issue_credential.PIURI and r.get("role") == "holder"
                      for r in await store.read(store.sync.records_by_thid, ref))
        if held or holding:
            issuer = held[0].get("issuer") if held else None
            raise DaemonError(INVALID_STATE, f"{ref!r} is a credential we hold"
                              + (f" (issued by {issuer})" if issuer else "")
                              + f", not one we issued: only its issuer can {action_name} it", {"held": True})
        raise NotFoundError(f"no credential we issued has the thread or credential id {ref!r} "
                            "(see `didcommctl credential issued`)")

    async def _issuer(self, issuer: str | None) -> tuple[str, str]:
        """(issuer DID, its assertionMethod kid): the one named, or our ``issuer`` did:key."""
        agent = self.agent
        if issuer is not None:
            did = await agent._own_did(check_str("issuer", issuer, MAX_VCT_CHARS))
        else:
            rows = await agent.store.read(agent.store.sync.did_list, own=True)
            found = next((r.did for r in rows if r.method == "key" and r.label == ISSUER_LABEL), None)
            if found is None:
                found = str((await agent.did_create("key", label=ISSUER_LABEL))["did"])
            did = found
        doc = agent.resolver.resolve(did)
        kids = [doc.absolute(k) for k in doc.assertion_method]
        kid = next((k for k in kids if agent.wallet.get_key(k) is not None), None)
        if kid is None:
            raise InvalidParamsError(
                f"{did} has no assertionMethod key in our wallet to sign credentials with "
                "(issue from a did:key: `didcommctl did create --method key`)")
        return did, kid

    # -- holder -------------------------------------------------------------------------------

    async def propose(self, ref: str, *, vct: str | None = None, claims: dict[str, Any] | None = None,
                      comment: str | None = None, reply: str | None = None, wait: float = 0.0,
                      format: str | None = None) -> dict[str, Any]:
        """Ask a connection for a credential (a new thread), or counter an offer we
        received (``reply``: its thread); with ``wait``, until the issuer's offer (or
        refusal) arrives.  ``format`` (``sd-jwt`` or ``di``) is the one we would like.  What
        we propose binds the issuer to nothing: it offers what it will, and we accept that
        offer (or not) as any other."""
        wait = check_wait(wait)
        if format is not None and format not in OFFER_FORMATS:
            raise InvalidParamsError(f"format must be one of {', '.join(OFFER_FORMATS)}")
        vct = check_str("type", vct, MAX_VCT_CHARS, optional=True)
        comment = check_str("comment", comment, MAX_COMMENT_CHARS, optional=True)
        reply = check_str("reply", reply, MAX_VCT_CHARS, optional=True)
        if claims is not None:
            if not isinstance(claims, dict) or len(claims) > MAX_CLAIMS:
                raise InvalidParamsError(f"claims must be an object of at most {MAX_CLAIMS} claims")
            if claims:
                _check_names("claims", list(claims))
        if vct is None and not claims:
            raise InvalidParamsError("a proposal names the credential type (vct), the claims, or both")
        conv = self.conv
        async with conv._lock:
            mine, theirs, conn, offer = await self._target(ref, reply, REPLY_TO_OFFER)
            try:
                transition = issue_credential.propose_credential(
                    mine, theirs, self.agent.now(), vct=vct, claims=claims or None, comment=comment, offer=offer,
                    credential_format=OFFER_FORMATS[format] if format is not None else None)
            except DIDCommError as exc:
                raise InvalidParamsError(exc.message) from None
            thid = self._watch(transition, wait, PROPOSAL_ANSWERS)
            await conv._commit(transition)
        out: dict[str, Any] = {"thid": thid, "to": theirs, "connection": conn.id if conn else None,
                               "state": "proposed", "reply": offer is not None}
        return await self._answer(out, thid, wait)

    async def accept_offer(self, thid: str, *, wait: float = 0.0) -> dict[str, Any]:
        """Ask for an offered credential, bound to our key in the relationship."""
        wait = check_wait(wait)
        conv = self.conv
        async with conv._lock:
            record = await self._record(thid, issue_credential.PIURI, "holder")
            kid, key = self._holder_key(record)
            try:
                transition = issue_credential.accept_offer(record, holder_jwk=key.public.to_jwk(),
                                                           now=self.agent.now())
            except DIDCommError as exc:
                raise DaemonError(INVALID_STATE, exc.message, {"problem_code": exc.problem_code}) from None
            if transition.record is not None:
                transition.record.data["holder_kid"] = kid
            self._watch(transition, wait, ACCEPT_ANSWERS)
            await conv._commit(transition)
        return await self._answer({"thid": thid, "state": "requested"}, thid, wait)

    def _holder_key(self, record: ProtocolRecord) -> tuple[str, PrivateKey]:
        """Our authentication key in the relationship (kid, key) the credential is bound to."""
        agent = self.agent
        if record.our_did is None:
            raise DaemonError(INVALID_STATE, "the thread has no DID of ours")
        doc = agent.resolver.resolve(record.our_did)
        for vm in doc.authentication_methods():
            key = agent.wallet.get_key(vm.id)
            if key is not None:
                return vm.id, key
        raise DaemonError(INVALID_STATE, f"no authentication key of {record.our_did} is in the wallet")

    async def decline(self, thid: str, *, reason: str | None = None) -> dict[str, Any]:
        """Decline an offer (holder), a proof request (prover), or a proposal (issuer,
        verifier): a problem report, and the thread is abandoned on both sides."""
        reason = check_str("reason", reason, MAX_COMMENT_CHARS, optional=True) or "declined by the owner"
        conv = self.conv
        async with conv._lock:
            record = await self._waiting_record(thid)
            module: Any = issue_credential if record.protocol == issue_credential.PIURI else present_proof
            try:
                transition = module.decline(record, reason=reason, now=self.agent.now())
            except DIDCommError as exc:
                raise DaemonError(INVALID_STATE, exc.message, {"problem_code": exc.problem_code}) from None
            await conv._commit(transition)
        return {"thid": thid, "state": "declined"}

    async def pending(self) -> dict[str, Any]:
        """Offers, proof requests and proposals waiting for the owner's answer."""
        store = self.agent.store
        out = []
        for protocol, role, state, kind in WAITING:
            for raw in await store.read(store.sync.records_by_state, protocol, role, state):
                their = raw.get("their_did")
                conn = await self.conv.connections.for_pair(their, None) if isinstance(their, str) else None
                entry = {"thid": raw.get("thid"), "from": their, "updated": raw.get("updated_time"),
                         "connection": conn.id if conn else None, "label": conn.label if conn else None}
                summary = _proposal_summary(raw, kind) if kind.endswith("proposal") else _pending_summary(raw)
                out.append({**entry, **summary})
        out.sort(key=lambda r: r.get("updated") or 0)
        return {"pending": out}

    # -- verifier -----------------------------------------------------------------------------

    async def request_proof(self, ref: str, *, claims: list[str] | None, vct: str | None = None,
                            issuers: list[str] | None = None, comment: str | None = None,
                            wait: float = 0.0, format: str | None = None,
                            status_max_age: int | None = None, reply: str | None = None) -> dict[str, Any]:
        """Ask a connection to prove claims; with ``wait``, until verified or failed.

        ``format``: ``sd-jwt`` (selective disclosure, the default), ``di`` or ``any`` (a
        Data Integrity credential is shown whole; see :data:`REQUEST_FORMATS`).
        ``status_max_age``: the oldest status list (seconds since its issuer signed it)
        we accept for a revocable credential (default: the protocol's, a day).
        ``reply`` answers the prover's proposal on that thread: ``claims``, ``vct`` and
        ``format`` default to what it proposed; the request is ours alone."""
        wait = check_wait(wait)
        if status_max_age is not None and (isinstance(status_max_age, bool) or not isinstance(status_max_age, int)
                                           or not 0 < status_max_age <= MAX_STATUS_MAX_AGE_S):
            raise InvalidParamsError(f"status_max_age must be 1 to {MAX_STATUS_MAX_AGE_S} seconds")
        if format is not None and format not in REQUEST_FORMATS:
            raise InvalidParamsError(f"format must be one of {', '.join(REQUEST_FORMATS)}")
        reply = check_str("reply", reply, MAX_VCT_CHARS, optional=True)
        if claims is None and reply is None:
            raise InvalidParamsError(f"claims must be a list of 1 to {MAX_CLAIMS} claim names")
        names = _check_names("claims", claims, optional=True)
        vct = check_str("type", vct, MAX_VCT_CHARS, optional=True)
        comment = check_str("comment", comment, MAX_COMMENT_CHARS, optional=True)
        if issuers is not None:
            if not isinstance(issuers, list) or not issuers or len(issuers) > MAX_ISSUERS:
                raise InvalidParamsError(f"issuers must be a list of 1 to {MAX_ISSUERS} DIDs")
            for did in issuers:
                if not isinstance(did, str) or not did.startswith("did:"):
                    raise InvalidParamsError("issuers must be DIDs")
        conv = self.conv
        async with conv._lock:
            mine, theirs, conn, proposal = await self._target(ref, reply, REPLY_TO_PROOF_PROPOSAL)
            formats = REQUEST_FORMATS[format or "sd-jwt"]
            if proposal is not None:
                proposed = _proposed_definition(proposal.to_dict())
                if names is None:
                    names = proposed["claims"] or None
                vct = vct if vct is not None else proposed["vct"]
                if format is None and proposed["formats"]:
                    formats = tuple(proposed["formats"])
            if not names:
                raise InvalidParamsError(f"the proposal on thread {reply} names no claims: give them")
            try:
                transition = present_proof.request_presentation(
                    mine, theirs, self.agent.now(), vct=vct, claims=names, issuers=issuers, comment=comment,
                    formats=formats, proposal=proposal,
                    status_max_age=present_proof.DEFAULT_STATUS_MAX_AGE if status_max_age is None else status_max_age)
            except DIDCommError as exc:
                raise InvalidParamsError(exc.message) from None
            thid = self._watch(transition, wait, REQUEST_ANSWERS)
            await conv._commit(transition)
        out: dict[str, Any] = {"thid": thid, "to": theirs, "connection": conn.id if conn else None,
                               "state": "requested", "reply": proposal is not None}
        return await self._answer(out, thid, wait)

    async def proof_result(self, thid: str) -> dict[str, Any]:
        """A proof request of ours: what was asked, and the verdict once there is one."""
        record = await self._record(thid, present_proof.PIURI, "verifier")
        asked = _pending_summary(record.to_dict())
        out: dict[str, Any] = {"thid": thid, "to": record.their_did, "asked": asked["claims"],
                               "vct": asked["vct"], "issuers": asked.get("issuers")}
        verified, failure = record.data.get("verified"), record.data.get("failure")
        if isinstance(verified, dict):
            out.update(state="verified", result=verified)
        elif isinstance(failure, str):
            out.update(state="failed", result={"reason": failure})
        elif record.last_problem is not None:
            out.update(state="problem", problem=record.last_problem)
        else:
            out["state"] = "requested"
        return out

    async def threads(self, protocol: str, role: str, limit: int = MAX_LISTED_THREADS) -> list[dict[str, Any]]:
        """Our threads in one role (issuer: offers made; verifier: proof requests), newest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LISTED_THREADS:
            raise InvalidParamsError(f"limit must be 1 to {MAX_LISTED_THREADS}")
        store = self.agent.store
        out = []
        rows = await store.read(store.sync.records_by_role, protocol, role, limit)
        thids = [str(r.get("thid")) for r in rows]
        statuses = (await store.read(store.sync.status_entries_by_thids, thids)
                    if protocol == issue_credential.PIURI else {})
        for raw in rows:
            data = _obj(raw.get("data"))
            entry: dict[str, Any] = {"thid": raw.get("thid"), "to": raw.get("their_did"),
                                     "state": raw.get("state"), "updated": raw.get("updated_time")}
            if protocol == issue_credential.PIURI:
                offer = _obj(data.get("offer"))
                entry.update(vct=offer.get("vct"), issuer=offer.get("issuer"),
                             claims=sorted(offer.get("claims") or {}), credential_id=data.get("credential_id"))
                status = statuses.get(str(raw.get("thid")))
                entry.update(revocable=status is not None,
                             revoked=status is not None and status.status == status_list.REVOKED,
                             suspended=status is not None and status.status == status_list.SUSPENDED)
            else:
                summary = _pending_summary(raw)
                verified = _obj(data.get("verified"))
                entry.update(vct=summary["vct"], asked=summary["claims"],
                             verdict="verified" if verified else "failed" if data.get("failure") else None,
                             proven=verified.get("claims"), status=verified.get("status"),
                             reason=data.get("failure") if isinstance(data.get("failure"), str) else None)
            out.append(entry)
        return out

    # -- prover -------------------------------------------------------------------------------

    async def propose_proof(self, ref: str, *, claims: list[str], vct: str | None = None,
                            format: str = "sd-jwt", comment: str | None = None,
                            reply: str | None = None, wait: float = 0.0) -> dict[str, Any]:
        """Offer a connection to prove claims (a new thread), or counter a proof request
        we received (``reply``: its thread).  The verifier answers with a request of its
        own (``present-proof.request-received``, ``credential.pending``), which we
        answer as any other: :meth:`present`.  With ``wait``, until that request (or a
        refusal) arrives."""
        wait = check_wait(wait)
        if format not in REQUEST_FORMATS:
            raise InvalidParamsError(f"format must be one of {', '.join(REQUEST_FORMATS)}")
        names = _check_names("claims", claims) or []
        vct = check_str("type", vct, MAX_VCT_CHARS, optional=True)
        comment = check_str("comment", comment, MAX_COMMENT_CHARS, optional=True)
        reply = check_str("reply", reply, MAX_VCT_CHARS, optional=True)
        conv = self.conv
        async with conv._lock:
            mine, theirs, conn, request = await self._target(ref, reply, REPLY_TO_PROOF_REQUEST)
            try:
                transition = present_proof.propose_presentation(
                    mine, theirs, self.agent.now(), vct=vct, claims=names, comment=comment, request=request,
                    formats=REQUEST_FORMATS[format])
            except DIDCommError as exc:
                raise InvalidParamsError(exc.message) from None
            thid = self._watch(transition, wait, PROOF_PROPOSAL_ANSWERS)
            await conv._commit(transition)
        out: dict[str, Any] = {"thid": thid, "to": theirs, "connection": conn.id if conn else None,
                               "state": "proposed", "reply": request is not None}
        return await self._answer(out, thid, wait)

    async def present(self, thid: str, *, credential: str | None = None) -> dict[str, Any]:
        """Answer a proof request with a stored credential, disclosing only what was asked."""
        credential = check_str("credential", credential, MAX_VCT_CHARS, optional=True)
        conv = self.conv
        store = self.agent.store
        async with conv._lock:
            # Only a request that arrived (a thread we proposed on waits for it first).
            record = await self._answerable(thid, REPLY_TO_PROOF_REQUEST)
            stored = await store.read(store.sync.credential_all)
            lists = {row.uri: row for row in await store.read(store.sync.held_lists_all)}
            statuses = {c["id"]: self._status(c, lists) for c in stored}
            held = [(c["id"], _text(c)) for c in stored if isinstance(_text(c), str)]
            if credential is not None:
                held = [(i, s) for i, s in held if i == credential or i.startswith(credential)]
                if not held:
                    raise NotFoundError(f"no credential {credential!r}")
            # A credential our copy of its status list says is revoked (or suspended) is
            # never chosen for the owner; named explicitly, it is the owner's choice (the
            # verifier will see what the stapled list says, and the reply says it too).
            withdrawn = [] if credential is not None else [i for i, _ in held if statuses.get(i) in NOT_PRESENTED]
            fits = present_proof.matching(record, held, now=self.agent.now(), revoked=withdrawn)
            if not fits:
                why = (f" ({credential!r} does not)" if credential
                       else f" ({', '.join(f'{i} is {statuses[i]}' for i in withdrawn)})" if withdrawn else "")
                raise DaemonError(NO_MATCH, "no stored credential satisfies this request" + why)
            if len(fits) > 1 and credential is None:
                raise DaemonError(AMBIGUOUS, "several credentials satisfy this request; name one with "
                                  "`credential`", {"candidates": fits})
            chosen = fits[0]
            entry = next(c for c in stored if c["id"] == chosen)
            key = self.agent.wallet.get_key(entry.get("holder_kid") or "")
            if key is None:
                raise DaemonError(INVALID_STATE, f"the key credential {chosen} is bound to is not in the wallet")
            # Stapled: our copy of each of this credential's lists, and no other (the verifier
            # needs no connection to the issuer; the issuer never hears of the verifier).
            copies = [lists.get(r.uri) for r in credential_references(entry)]
            stapled = {copy.uri: for_presentation(copy.record["document"]) for copy in copies
                       if copy is not None and isinstance(copy.record.get("document"), str)}
            try:
                if isinstance(entry.get("credential"), str):
                    # di_vc: shown whole, signed by the subject DID's authentication key
                    # (our DID with the issuer, whose kid was kept at accept time).
                    transition = present_proof.present_whole(
                        record, credential=entry["credential"], holder_key=key,
                        holder_kid=entry["holder_kid"], now=self.agent.now(), status_lists=stapled)
                else:
                    transition = present_proof.present(record, sd_jwt=entry["sd_jwt"], holder_key=key,
                                                       now=self.agent.now(), status_lists=stapled)
            except DIDCommError as exc:
                raise DaemonError(INVALID_STATE, exc.message, {"problem_code": exc.problem_code}) from None
            await conv._commit(transition)
        sent = next((e.data for e in transition.events if e.kind == "present-proof.presentation-sent"), {})
        whole = isinstance(entry.get("credential"), str)
        return {"thid": thid, "credential": chosen, "state": "presented", "status": statuses.get(chosen),
                "format": _format(entry), "discloses": "whole credential" if whole else "selected",
                "disclosed": sent.get("disclosed") if whole else _pending_summary(record.to_dict())["claims"]}

    # -- the wallet of credentials --------------------------------------------------------------

    async def stored(self) -> dict[str, Any]:
        """Stored credentials (claims shown, the credential itself not), with their status."""
        store = self.agent.store
        lists = {row.uri: row for row in await store.read(store.sync.held_lists_all)}
        return {"credentials": [self._with_status(c, lists) for c in await store.read(store.sync.credential_all)]}

    async def show(self, ref: str, *, raw: bool = False) -> dict[str, Any]:
        """One stored credential; ``raw`` adds the credential itself (``sd_jwt`` or ``credential``)."""
        entry = await self._credential(ref)
        store = self.agent.store
        lists = {row.uri: row for row in await store.read(store.sync.held_lists_all)}
        out = self._with_status(entry, lists)
        if raw:
            key = "credential" if isinstance(entry.get("credential"), str) else "sd_jwt"
            out[key] = entry.get(key)
        return out

    async def delete(self, ref: str) -> dict[str, Any]:
        """Forget a stored credential."""
        entry = await self._credential(ref)
        store = self.agent.store
        await store.run(store.sync.credential_delete, entry["id"])
        self.agent.events.publish("credential.deleted", {"id": entry["id"]})
        await self.agent.events.flush_soon()
        return {"deleted": entry["id"]}

    def _status(self, entry: dict[str, Any], lists: dict[str, Any]) -> str:
        return self.held_lists.status(entry, lists, self.agent.now())

    def _with_status(self, entry: dict[str, Any], lists: dict[str, Any]) -> dict[str, Any]:
        """A credential's summary with ``status``, and when our copies of its lists were
        issued and fetched (the oldest, when it names two: what the status is as of)."""
        out = _summary(entry)
        references = credential_references(entry)
        copies = [lists.get(r.uri) for r in references]
        held = [c for c in copies if c is not None]
        whole = bool(held) and len(held) == len(copies)
        out.update(status=self._status(entry, lists), revocable=bool(references),
                   status_checked=min(c.fetched_at for c in held) if whole else None,
                   status_issued=min(c.issued_at for c in held) if whole else None)
        return out

    # -- holder: status list refresh ---------------------------------------------------------------

    async def refresh(self, ref: str | None = None, *, wait: float = 0.0) -> dict[str, Any]:
        """Ask the issuers for the current status lists of our credentials (or of one);
        with ``wait``, until each list arrives or fails."""
        wait = check_wait(wait)
        store = self.agent.store
        if ref is not None:
            entries = [await self._credential(ref)]
            if not credential_references(entries[0]):
                raise DaemonError(INVALID_STATE, f"credential {entries[0]['id']} has no status list: "
                                  f"its issuer made it {NOT_REVOCABLE}", {"revocable": False})
        else:
            entries = await store.read(store.sync.credential_all)
        asked = await self._ask_for_lists(entries, wait)
        deadline = time.monotonic() + wait
        requests = []
        for uri, thid in asked:
            item: dict[str, Any] = {"uri": uri, "thid": thid, "state": "requested"}
            waiter = self.conv._waiters.get(thid) if wait else None
            if waiter is not None:
                event = await self.conv._wait(thid, waiter, max(0.0, deadline - time.monotonic()))
                if event is None:
                    item["state"] = "timeout"
                elif event.kind == STATUS_RECEIVED:
                    item.update(state="received", issued_at=event.data.get("issued_at"))
                elif event.kind == "problem-report.received":
                    item.update(state="failed", reason=event.data.get("comment") or event.data.get("code"))
                else:
                    item.update(state="failed", reason=event.data.get("reason"))
            requests.append(item)
        lists = {row.uri: row for row in await store.read(store.sync.held_lists_all)}
        ids = {e["id"] for e in entries}
        credentials = [self._with_status(c, lists) for c in await store.read(store.sync.credential_all)
                       if c["id"] in ids and credential_references(c)]
        return {"requests": requests, "credentials": [
            {k: c[k] for k in ("id", "vct", "issuer", "status", "status_checked", "status_issued")}
            for c in credentials]}

    async def _ask_for_lists(self, entries: list[dict[str, Any]], wait: float) -> list[tuple[str, str]]:
        """Send one status list request per list the credentials name, to the peer each
        was issued by (over that relationship, as it is now); [(uri, thread id)]."""
        by_uri: dict[str, dict[str, Any]] = {}
        for entry in entries:
            if isinstance(entry.get("issuer"), str):
                for reference in credential_references(entry):
                    by_uri.setdefault(reference.uri, entry)
        conv = self.conv
        asked = []
        async with conv._lock:
            for uri, entry in by_uri.items():
                peer = await self._issuance_peer(entry)
                if peer is None:
                    _log.info("status_list.no_peer", uri=uri, credential=entry.get("id"))
                    continue
                mine, theirs = peer
                try:
                    transition = status_exchange.request_status_list(mine, theirs, self.agent.now(), uri=uri,
                                                                     issuer=entry["issuer"])
                except DIDCommError as exc:
                    _log.warning("status_list.unrequestable", uri=uri, reason=exc.message)
                    continue
                thid = self._watch(transition, wait, STATUS_ANSWERS)
                await conv._commit(transition)
                asked.append((uri, thid))
        return asked

    async def _issuance_peer(self, entry: dict[str, Any]) -> tuple[str, str] | None:
        """(our DID, their DID) of the relationship a credential was issued over, as it is now."""
        thid = entry.get("thid")
        if not isinstance(thid, str):
            return None
        store = self.agent.store
        raw = next((r for r in await store.read(store.sync.records_by_thid, thid)
                    if r.get("protocol") == issue_credential.PIURI and r.get("role") == "holder"), None)
        if raw is None or not isinstance(raw.get("their_did"), str):
            return None
        conn = await self.conv.connections.for_pair(raw["their_did"], None)
        if conn is not None:
            return conn.my_did, conn.their_did  # after a rotation, the DIDs in use now
        mine = raw.get("our_did")
        return (mine, raw["their_did"]) if isinstance(mine, str) else None

    async def serve_refresh(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background: ask for every held list older than ``[credentials] status_refresh`` seconds
        (at most once per that period per list, so an unreachable issuer is not flooded)."""
        task_status.started()
        while True:
            period = self.agent.config.credentials.status_refresh
            try:
                await self._refresh_due(period)
            except (DaemonError, DIDCommError) as exc:
                _log.warning("status_list.refresh_failed", reason=getattr(exc, "message", str(exc)))
            await trio.sleep(min(float(period), REFRESH_CHECK_S))

    async def _refresh_due(self, period: int) -> None:
        store = self.agent.store
        now = self.agent.now()
        lists = {row.uri: row for row in await store.read(store.sync.held_lists_all)}
        due = []
        for entry in await store.read(store.sync.credential_all):
            uris = [r.uri for r in credential_references(entry)]
            last = {uri: max(lists[uri].fetched_at if uri in lists else 0, self._refresh_asked.get(uri, 0))
                    for uri in uris}
            if any(now - at >= period for at in last.values()):
                due.append(entry)
                # Tried once per period, asked or not (an issuer we cannot name is not
                # retried every REFRESH_CHECK_S, nor logged as often).
                self._refresh_asked.update(dict.fromkeys(uris, now))
        if due:
            await self._ask_for_lists(due, 0.0)

    # -- helpers --------------------------------------------------------------------------------

    async def _credential(self, ref: str) -> dict[str, Any]:
        ref = check_str("credential", ref, MAX_VCT_CHARS) or ""
        store = self.agent.store
        found = [c for c in await store.read(store.sync.credential_all)
                 if c.get("id") == ref or str(c.get("id", "")).startswith(ref)]
        exact = [c for c in found if c.get("id") == ref]
        if exact:
            return exact[0]
        if not found:
            raise NotFoundError(f"no credential {ref!r}")
        if len(found) > 1:
            raise InvalidParamsError(f"{ref!r} names {len(found)} credentials; give more of the id")
        return found[0]

    async def _record(self, thid: str, protocol: str, role: str) -> ProtocolRecord:
        check_str("thid", thid, MAX_VCT_CHARS)
        store = self.agent.store
        for raw in await store.read(store.sync.records_by_thid, thid):
            if raw.get("protocol") == protocol and raw.get("role") == role:
                try:
                    return ProtocolRecord.from_dict(raw)
                except DIDCommError as exc:
                    raise DaemonError(INVALID_STATE, f"thread {thid} is unusable: {exc.message}") from None
        raise NotFoundError(f"no {protocol.rsplit('/', 2)[-2]} thread {thid!r} where we are the {role}")

    async def _waiting_record(self, thid: str) -> ProtocolRecord:
        """The thread of ours that waits for the owner's answer (:data:`WAITING`); one of
        those roles in another state, for the machine to refuse with its own words."""
        check_str("thid", thid, MAX_VCT_CHARS)
        store = self.agent.store
        raws = await store.read(store.sync.records_by_thid, thid)
        roles = {(protocol, role): state for protocol, role, state, _ in WAITING}
        ours = [r for r in raws if (r.get("protocol"), r.get("role")) in roles]
        # Both ends of a thread may be ours (a connection to ourselves): the waiting one first.
        ours.sort(key=lambda r: r.get("state") != roles.get((str(r.get("protocol")), str(r.get("role")))))
        if not ours:
            raise NotFoundError(f"no offer, proof request or proposal with thread {thid!r} "
                                "(see `didcommctl credential pending`)")
        try:
            return ProtocolRecord.from_dict(ours[0])
        except DIDCommError as exc:
            raise DaemonError(INVALID_STATE, f"thread {thid} is unusable: {exc.message}") from None

    async def _answerable(self, thid: str, what: tuple[str, str, str, str]) -> ProtocolRecord:
        """The thread a ``reply`` names: ours in that role, waiting in that state."""
        protocol, role, state, name = what
        check_str("thid", thid, MAX_VCT_CHARS)
        store = self.agent.store
        raws = await store.read(store.sync.records_by_thid, thid)
        mine = [r for r in raws if r.get("protocol") == protocol and r.get("role") == role]
        if not mine:
            if raws:
                other = raws[0]
                raise DaemonError(INVALID_STATE, f"thread {thid} is not a {name} to us: we are the {other.get('role')} "
                                  f"in that {str(other.get('protocol')).rsplit('/', 2)[-2]} thread "
                                  f"(state {other.get('state')})",
                                  {"state": other.get("state"), "role": other.get("role")})
            raise NotFoundError(f"no {name} with thread {thid!r} (see `didcommctl credential pending`)")
        try:
            record = ProtocolRecord.from_dict(mine[0])
        except DIDCommError as exc:
            raise DaemonError(INVALID_STATE, f"thread {thid} is unusable: {exc.message}") from None
        if record.state != state:
            raise DaemonError(INVALID_STATE, f"thread {thid} is not a {name} waiting for our answer "
                              f"(it is {record.state})", {"state": record.state})
        return record

    async def _target(self, ref: str, reply: str | None, what: tuple[str, str, str, str],
                      ) -> tuple[str, str, Connection | None, ProtocolRecord | None]:
        """(our DID, their DID, connection) to send to ``ref`` and, with ``reply``, the
        thread of ours it answers (:meth:`_answerable`), which must be with that peer."""
        mine, theirs, conn = await self.conv._target(ref)
        if reply is None:
            return mine, theirs, conn, None
        record = await self._answerable(reply, what)
        mine, theirs, conn = await self._same_peer(record, ref, theirs, conn)
        return mine, theirs, conn, record

    async def _same_peer(self, record: ProtocolRecord, ref: str, theirs: str,
                         conn: Connection | None) -> tuple[str, str, Connection | None]:
        """(our DID, their DID, connection) to answer ``record`` with: the thread's own
        DIDs, once we know the command named the peer of that thread (no answer goes
        to someone else by a slip of the connection name)."""
        if record.our_did is None or record.their_did is None:
            raise DaemonError(INVALID_STATE, f"thread {record.thid} has no DIDs to answer with")
        peer = await self.conv.connections.for_pair(record.their_did, None)
        if record.their_did != theirs and (conn is None or peer is None or peer.id != conn.id):
            raise InvalidParamsError(f"thread {record.thid} is with {peer.label or peer.id if peer else record.their_did}"
                                     f", not with {ref!r}")
        return record.our_did, record.their_did, peer or conn

    def _watch(self, transition: Transition, wait: float, answers: frozenset[str]) -> str:
        """The thread id; with ``wait``, a waiter on it for ``answers`` (before the
        commit can answer it)."""
        from .conversations import _Waiter

        assert transition.record is not None
        thid = transition.record.thid
        if wait:
            self.conv._waiters[thid] = _Waiter(time.monotonic(), answers=answers)
        return thid

    async def _answer(self, out: dict[str, Any], thid: str, wait: float) -> dict[str, Any]:
        if not wait:
            return out
        waiter = self.conv._waiters.get(thid)
        if waiter is None:
            return out
        event = await self.conv._wait(thid, waiter, wait)
        if event is None:
            out["state"] = "timeout"
        elif event.kind == "problem-report.received":
            out.update(state="problem", problem=event.data)
        else:
            out.update(state=event.kind.rsplit(".", 1)[-1], result=dict(event.data))
        return out


def _new_batch(**fields: Any) -> _Batch:
    from .conversations import _Batch

    return _Batch(**fields)


def _obj(value: Any) -> dict[str, Any]:
    """A stored record's member that should be an object (``{}`` if it is not)."""
    return value if isinstance(value, dict) else {}


def _pending_summary(raw: dict[str, Any]) -> dict[str, Any]:
    """What an offer or a proof request waiting for us asks, from its stored record."""
    data = _obj(raw.get("data"))
    if raw.get("protocol") == issue_credential.PIURI:
        offer = _obj(data.get("offer"))
        return {"kind": "offer", "vct": offer.get("vct"), "issuer": offer.get("issuer"),
                "format": offer.get("format") or issue_credential.FORMAT,
                "claims": offer.get("claims"), "comment": offer.get("comment"),
                "revocable": offer.get("status") is not None, "expires": offer.get("expires")}
    try:
        definition = presentation_exchange.parse_definition(data.get("definition"))
    except DIDCommError:
        return {"kind": "proof-request", "vct": None, "issuer": None, "claims": [], "comment": None}
    return {"kind": "proof-request", **present_proof.request_summary(definition), "comment": data.get("comment")}


def _proposed_definition(raw: dict[str, Any]) -> dict[str, Any]:
    """What a prover's proposal (a presentation definition in the record) offers to show."""
    try:
        definition = presentation_exchange.parse_definition(_obj(raw.get("data")).get("proposal"))
    except DIDCommError:
        return {"vct": None, "claims": [], "issuers": [], "formats": [], "discloses": None}
    return present_proof.request_summary(definition)


def _proposal_summary(raw: dict[str, Any], kind: str) -> dict[str, Any]:
    """What a proposal waiting for us asks (``counter``: it answers an offer or request of ours)."""
    data = _obj(raw.get("data"))
    if raw.get("protocol") == issue_credential.PIURI:
        proposal = _obj(data.get("proposal"))
        claims = proposal.get("claims")
        return {"kind": kind, "vct": proposal.get("vct"), "claims": claims if isinstance(claims, dict) else {},
                "format": proposal.get("format"), "comment": proposal.get("comment"),
                "counter": isinstance(data.get("offer"), dict)}
    return {"kind": kind, **_proposed_definition(raw), "comment": data.get("proposal_comment"),
            "counter": isinstance(data.get("definition"), dict)}


def _text(entry: dict[str, Any]) -> Any:
    """A stored credential's text: the SD-JWT, or a di_vc's JSON."""
    return entry.get("sd_jwt", entry.get("credential"))


def _format(entry: dict[str, Any]) -> str:
    """A stored credential's format (entries from before formats are SD-JWT VCs)."""
    fmt = entry.get("format")
    return fmt if isinstance(fmt, str) else issue_credential.FORMAT


def _summary(entry: dict[str, Any]) -> dict[str, Any]:
    out = {k: entry.get(k) for k in ("id", "vct", "issuer", "subject", "claims", "thid", "received", "expires")}
    out["format"] = _format(entry)
    return out

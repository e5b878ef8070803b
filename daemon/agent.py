"""The agent: what the daemon can do, in one object the control socket and transports call.

Theory of operation
-------------------
:meth:`Agent.open` brings the state up in a fixed order: the state directory
(mode 0700) and its lock file (one daemon per state directory), the store (with
migrations), the wallet (unlocked, or created on first start), the resolver
(did:key and did:peer computed, other DIDs from the documents in the store), the
event bus (continuing the stored sequence numbers).  Then it finishes what a crash
may have interrupted: inbound messages committed but never unpacked are unpacked
now, and outbound ones caught mid-send go back in the queue.

Every method is a short script over those parts and follows the rule of the
design: *commit, then report*.  ``message_send`` packs the message and returns
only once the packed bytes are in the outbox (while the outbox sender runs, it
gets the message as soon as the insert ran and sends it during our fsync, see
daemon.delivery); ``message_receive`` unpacks the
bytes, commits them to the inbox in one transaction with either the message (and
its dedup key, and what the protocols made of it) or why it was refused, and only
then publishes ``message.received`` / ``message.rejected`` and returns, which is
when a transport may acknowledge it.  (One fsync instead of two: until that
commit the sender has not been told and still holds the message.)  Rows found
``pending`` at start (committed before unpacking by an older didcommd) are
unpacked then.

Store calls run in the store's thread (:class:`~daemon.store.AsyncStore`); packing
and unpacking run on the trio thread (they take about a millisecond, and the
wallet's keys and the resolver's caches are then only ever touched by one thread).

Replies are plain dicts (JSON/msgpack-ready) and never contain key material.
Failures are :class:`~daemon.errors.DaemonError` or
:class:`protocols.errors.DIDCommError`; :func:`daemon.errors.error_from` maps both.

Times in records are integer Unix seconds (as DIDComm's ``created_time``); event
times are ISO 8601 strings.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import trio

from protocols.did.resolver import ChainResolver, StaticResolver, default_resolver
from protocols.did.syntax import split_did_url, validate_did
from protocols.envelope import pack_encrypted, unpack
from protocols.errors import DIDCommError
from protocols.message import new_id

from . import housekeeping
from . import wallet as walletlib
from .config import Config
from .conversations import Conversations, reject_inbound
from .errors import DaemonError, InvalidParamsError, NotFoundError
from .events import EventBus
from .logs import configure_logging, get_logger
from .params import check_str as _check_str
from .store import (
    DB_FILE_NAME,
    INBOX_DELETED,
    OUTBOX_DELIVERED,
    OUTBOX_QUEUED,
    OUTBOX_SENDING,
    AsyncStore,
    DIDRow,
    InboxRow,
    KeyRow,
    OutboxFullError,
    OutboxRow,
    Store,
)

LOCK_FILE_NAME = "lock"
#: Largest packed message accepted by ``message_receive`` (the envelope's own limit).
MAX_INBOUND_BYTES = 4 * 1024 * 1024
#: Longest DID label.
MAX_LABEL_CHARS = 200
#: Longest message type URI.
MAX_TYPE_CHARS = 1024
#: Default and largest page of ``message_list``.
DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 500
#: Most services on one new did:peer.
MAX_SERVICES = 8
BOXES = ("inbox", "outbox")

_log = get_logger("agent")


def _version() -> str:
    try:
        return importlib.metadata.version("didcommd")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


VERSION = _version()


def lock_state_dir(state_dir: Path) -> int:
    """Take the state directory's lock (one daemon per directory); returns the lock's fd."""
    try:
        fd = os.open(state_dir / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DaemonError(
            "permission", f"cannot open {state_dir / LOCK_FILE_NAME}: {exc.strerror or exc}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DaemonError(
            "unavailable", f"another didcommd is already using the state directory {state_dir}"
        ) from None
    return fd


def prepare_state_dir(state_dir: Path) -> None:
    """Create the state directory (0700) or tighten an existing one we own."""
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = state_dir.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(state_dir, 0o700)
            _log.warning("agent.state_dir_tightened", state_dir=str(state_dir))
    except OSError as exc:
        raise DaemonError(
            "permission", f"cannot create the state directory {state_dir}: {exc.strerror or exc}"
        ) from None


def _sender_did(metadata: Any) -> str:
    """The authenticated sender's DID, or '' for an anonymous message."""
    kid = metadata.encrypted_from if metadata.authenticated and metadata.encrypted_from else None
    kid = kid or metadata.sign_from
    if not kid:
        return ""
    return split_did_url(kid)[0]


def _did_reply(row: DIDRow) -> dict[str, Any]:
    return {"did": row.did, "method": row.method, "label": row.label, "created": row.created}


def _inbox_summary(row: InboxRow) -> dict[str, Any]:
    message = row.record.get("message") or {}
    out: dict[str, Any] = {
        "box": "inbox",
        "id": row.id,
        "seq": row.seq,
        "state": row.state,
        "from": message.get("from"),
        "sender": row.sender or None,
        "type": message.get("type"),
        "thid": message.get("thid"),
        "received": row.received,
        "transport": row.transport,
    }
    if "reason" in row.record:
        out["reason"] = row.record["reason"]
        out["problem_code"] = row.record.get("problem_code")
    return out


def _outbox_summary(row: OutboxRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "box": "outbox",
        "id": row.id,
        "seq": row.seq,
        "state": row.state,
        "to": row.to_did,
        "from": row.from_did,
        "type": row.record.get("type"),
        "thid": row.record.get("thid"),
        "created": row.created,
        "updated": row.updated,
        "attempts": row.attempts,
        "expires": row.expires,
    }
    if "last_error" in row.record:
        out["last_error"] = row.record["last_error"]
    return out


def _store_new_did(store: Store, rows: list[KeyRow], did: DIDRow, doc: dict[str, Any]) -> None:
    with store.transaction():
        store.keys_put(rows)
        store.did_put(did)
        store.doc_put(did.did, doc, did.created)


def _check_did(name: str, value: Any) -> str:
    try:
        return validate_did(value)
    except DIDCommError as exc:
        raise InvalidParamsError(f"{name}: {exc}") from None


class Agent:
    """The daemon's state and operations (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        store: AsyncStore,
        wallet: walletlib.Wallet,
        events: EventBus,
        known_docs: StaticResolver,
        lock_fd: int,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.store = store
        self.wallet = wallet
        self.events = events
        self.known_docs = known_docs
        #: did:key and did:peer are computed; other DIDs come from stored documents.
        self.resolver = ChainResolver(default_resolver(), known_docs)
        self._lock_fd = lock_fd
        self._clock = clock
        self._started = time.monotonic()
        self._closed = False
        #: Whether peers' messages may still be stored ([store] max_bytes, min_free_bytes).
        self.space = housekeeping.SpaceGuard(self)
        #: The libp2p side (daemon.transport), set while ``serve`` runs.
        self.p2p: Any = None
        self.peers: Any = None
        self.sender: Any = None
        #: Our DIDs, oldest first (read once; did_create appends; a miss re-reads).
        self._own_dids: list[str] | None = None
        #: Drives the protocols (issue 6): dispatch, connections, invitations.
        self.conversations = Conversations(self)

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        config: Config,
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Agent:
        """Open the state directory, store and wallet (creating them on first start).

        ``env`` is where wallet passphrases named by the config are looked up
        (default ``os.environ``); ``clock`` gives Unix time (tests move it).
        Raises :class:`DaemonError` (``wallet_locked``, ``unavailable``, ``store``,
        ``permission``) with a message that says what to do.
        """
        env = os.environ if env is None else env
        state_dir = config.daemon.state_dir
        prepare_state_dir(state_dir)
        lock_fd = lock_state_dir(state_dir)
        store: AsyncStore | None = None
        try:
            passphrase = walletlib.configured_passphrase(config.wallet, env)
            store = await AsyncStore.open(state_dir / DB_FILE_NAME)
            wallet, created = await store.run(
                walletlib.unlock, store.sync, passphrase=passphrase, key_file=config.wallet.key_file
            )
            del passphrase
            if wallet.sealed_at_unlock:
                await store.checkpoint_all()  # the older version's records, out of the files now
            requeued = await store.run(store.sync.outbox_requeue_sending, int(clock()))
            docs = await store.run(store.sync.docs_all)
            known = StaticResolver()
            for did, doc in docs.items():
                try:
                    known.add(doc)
                except DIDCommError as exc:
                    _log.warning("agent.stored_doc_unusable", did=did, reason=str(exc))
            events = await EventBus.open(store, clock)
            agent = cls(config, store, wallet, events, known, lock_fd, clock)
            # Before any message is handled: the machines staple our signed status lists.
            await agent.conversations.credentials.load()
        except BaseException:
            if store is not None:
                with trio.CancelScope(shield=True):
                    await store.aclose()
            os.close(lock_fd)
            raise
        try:
            if created:
                events.publish("wallet.created", {"mode": wallet.mode})
            resumed = await agent._resume_inbox()
            await events.flush()
        except BaseException:
            with trio.CancelScope(shield=True):
                await agent.aclose()
            raise
        _log.info(
            "agent.opened", state_dir=str(state_dir), wallet=wallet.mode, inbox_resumed=resumed,
            outbox_requeued=requeued,
        )
        return agent

    async def aclose(self) -> None:
        """Flush events, close the store, release the state directory."""
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            try:
                await self.events.close()
            finally:
                await self.store.aclose()
                os.close(self._lock_fd)
        _log.info("agent.closed")

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The agent's long-lived tasks: the libp2p node, the outbox sender, the peer table,
        the refresh of our credentials' status lists, the signing of the lists we publish,
        the store's housekeeping."""
        from .transport import serve

        async with trio.open_nursery() as nursery:
            # Event rows are written in the background while we serve (EventBus.flush_soon).
            await nursery.start(self.events.run_flusher)
            await nursery.start(serve, self)
            await nursery.start(self.conversations.credentials.serve_refresh)
            await nursery.start(self.conversations.credentials.publisher.serve)
            await nursery.start(housekeeping.serve, self)
            task_status.started()

    def attach_transport(self, *, node: Any, peers: Any, sender: Any) -> None:
        """Called by :mod:`daemon.transport` when the node is up (and with Nones when it stops)."""
        self.p2p, self.peers, self.sender = node, peers, sender

    def reload(self, config: Config) -> None:
        """Take a new configuration (SIGHUP): log level and format, limits.

        State directory and wallet settings need a restart; a change is logged.
        """
        old = self.config
        if (config.daemon.state_dir, config.wallet) != (old.daemon.state_dir, old.wallet):
            _log.warning("agent.reload_needs_restart", reason="state_dir or wallet settings changed")
        configure_logging(config.daemon.log_level, config.daemon.log_format)
        self.config = config
        _log.info("agent.reloaded", log_level=config.daemon.log_level)

    def now(self) -> int:
        """Unix time in whole seconds."""
        return int(self._clock())

    async def status(self) -> dict[str, Any]:
        """A summary of the daemon's state."""
        counts = await self.store.run(self.store.sync.counts)
        return {
            "version": VERSION,
            "uptime_s": round(time.monotonic() - self._started, 3),
            "state_dir": str(self.config.daemon.state_dir),
            "wallet": self.wallet.mode,
            "dids": counts["dids"],
            "known_dids": counts["known_dids"],
            "inbox": counts["inbox"],
            "inbox_rejected": counts["inbox_rejected"],
            "outbox": counts["outbox"],
            "outbox_pending": counts["outbox_pending"],
            "events_seq": self.events.last_seq,
            "event_subscribers": self.events.subscriber_count,
            "peer_id": self.p2p.peer_id if self.p2p is not None else None,
            "addrs": self.p2p.addrs if self.p2p is not None else [],
            "p2p": self.p2p.stats() if self.p2p is not None else None,
            "delivery": self.sender.stats() if self.sender is not None else None,
            "store": {**self.store.stats(), "refusing": self.space.refusal},
        }

    # -- DIDs -----------------------------------------------------------------------------

    async def did_create(
        self,
        method: str = "peer",
        *,
        label: str | None = None,
        services: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Create a DID (``key`` or ``peer`` = did:peer:2) with its keys sealed in the wallet.

        ``services`` (did:peer only) go into the DID, e.g. the DIDCommMessaging
        service the p2p layer advertises.  Returns ``{"did", "method", "label", "created"}``.
        """
        if method not in walletlib.DID_METHODS:
            raise InvalidParamsError(
                f"unknown DID method {method!r} (use one of: {', '.join(walletlib.DID_METHODS)})"
            )
        label = _check_str("label", label, MAX_LABEL_CHARS, optional=True)
        if services is not None and (
            not isinstance(services, list)
            or len(services) > MAX_SERVICES
            or not all(isinstance(s, dict) for s in services)
        ):
            raise InvalidParamsError(f"services must be a list of at most {MAX_SERVICES} objects")
        if services is None and method == "peer" and self.p2p is not None:
            # Our did:peer DIDs say where we listen (DIDComm libp2p transport extension).
            from .transport import didcomm_service

            services = [didcomm_service(self.p2p)]
        new = walletlib.new_did(method, services=services)
        now = self.now()
        rows = [self.wallet.seal(kid, new.did, key, now) for kid, key in new.keys.items()]
        row = DIDRow(new.did, True, method, label, now, {"kids": list(new.keys), "services": services or []})
        await self.store.run(_store_new_did, self.store.sync, rows, row, new.doc)
        self.wallet.add_rows(rows)
        if self._own_dids is not None:
            self._own_dids.append(new.did)
        self.events.publish("did.created", {"did": new.did, "method": method, "label": label})
        await self.events.flush()
        _log.info("did.created", did=new.did, method=method)
        return _did_reply(row)

    async def did_list(self) -> list[dict[str, Any]]:
        """Our DIDs, oldest first."""
        rows = await self.store.run(self.store.sync.did_list, own=True)
        return [_did_reply(r) for r in rows]

    async def did_resolve(self, did: str) -> dict[str, Any]:
        """The DID document of ``did`` (ours, a peer's, any did:key / did:peer)."""
        did = _check_did("did", did)
        return self.resolver.resolve(did).to_json()

    async def did_add_known(self, doc: dict[str, Any], *, label: str | None = None) -> dict[str, Any]:
        """Remember another party's DID document (for DIDs that cannot be computed)."""
        if not isinstance(doc, dict):
            raise InvalidParamsError("doc must be a DID document object")
        parsed = self.known_docs.add(doc)
        now = self.now()
        method = parsed.id.split(":")[1]
        await self.store.run(self.store.sync.doc_put, parsed.id, parsed.to_json(), now)
        await self.store.run(
            self.store.sync.did_put, DIDRow(parsed.id, False, method, label, now, {})
        )
        return {"did": parsed.id, "method": method, "label": label, "created": now}

    async def _own_did(self, frm: str | None) -> str:
        dids = self._own_dids
        if dids is None or (frm is not None and split_did_url(frm)[0] not in dids):
            # First use, or a DID written by another process (``didcommd wallet``).
            dids = [r.did for r in await self.store.read(self.store.sync.did_list, own=True)]
            self._own_dids = dids
        if frm is None:
            if not dids:
                raise InvalidParamsError("there is no DID of ours to send from; create one first")
            return dids[0]
        did = split_did_url(_check_str("from", frm, MAX_TYPE_CHARS) or "")[0]
        if did not in dids:
            raise InvalidParamsError(f"{frm!r} is not one of our DIDs")
        return frm

    # -- messages -----------------------------------------------------------------------------

    async def message_send(
        self,
        to: str,
        type: str,
        body: dict[str, Any],
        *,
        frm: str | None = None,
        thid: str | None = None,
        expires_time: int | None = None,
        anoncrypt: bool = False,
        pthid: str | None = None,
    ) -> dict[str, Any]:
        """Build, pack (authcrypt from ``frm`` or our first DID; anoncrypt if asked) and queue.

        Returns ``{"id", "state": "queued"}`` once the packed message is committed.
        """
        to = _check_did("to", to)
        _check_str("type", type, MAX_TYPE_CHARS)
        if not isinstance(body, dict):
            raise InvalidParamsError("body must be an object")
        _check_str("thid", thid, MAX_TYPE_CHARS, optional=True)
        now = self.now()
        if expires_time is not None and (
            isinstance(expires_time, bool) or not isinstance(expires_time, int) or expires_time <= now
        ):
            raise InvalidParamsError("expires_time must be an integer Unix time in the future")
        sender = None if anoncrypt else await self._own_did(frm)
        _check_str("pthid", pthid, MAX_TYPE_CHARS, optional=True)
        message: dict[str, Any] = {
            "id": new_id(),
            "typ": "application/didcomm-plain+json",
            "type": type,
            "to": [to],
            "created_time": now,
            "body": body,
        }
        if sender is not None:
            message["from"] = split_did_url(sender)[0]
        if thid is not None:
            message["thid"] = thid
        if pthid is not None:
            message["pthid"] = pthid
        if expires_time is not None:
            message["expires_time"] = expires_time
        packed = pack_encrypted(message, to, frm=sender, resolver=self.resolver, secrets=self.wallet)
        record = {
            "type": type,
            "thid": thid,
            "anoncrypt": anoncrypt,
            "to_kids": packed.to_kids,
            "from_kid": packed.from_kid,
        }
        row = {"id": message["id"], "to": to, "packed": packed.packed, "expires": expires_time}
        await self._queue_outbound(row, from_did=message.get("from"), created=now, record=record)
        self.events.publish(
            "message.queued", {"id": message["id"], "to": to, "type": type, "thid": thid}
        )
        await self.events.flush_soon()
        _log.info("message.queued", msg_id=message["id"], to=to, type=type)
        return {"id": message["id"], "state": "queued"}

    async def _queue_outbound(
        self, row: dict[str, Any], *, from_did: str | None, created: int, record: dict[str, Any]
    ) -> None:
        """Commit a packed message to the outbox (refused past ``max_pending_per_peer``).

        While the outbox sender runs it gets the message the moment the insert has
        run, before the commit's fsync (``state`` ``sending``, see daemon.delivery),
        so delivery overlaps our own fsync; returns once the commit is durable.
        """
        limit = self.config.delivery.max_pending_per_peer
        sender = self.sender
        handed = False
        reserved = sender is not None and sender.reserve()
        # An idle store answers the limit at once, and then nothing can come
        # between this check and our insert (it is the next call the store runs,
        # and we do not yield before queueing it): the message may go out before
        # the insert's thread hop, not only before its fsync.
        early = False
        if reserved:
            count = self.store.read_if_idle(self.store.sync.outbox_pending_count, row["to"])
            if count is not None and count >= limit:
                sender.release()
                raise OutboxFullError(row["to"], count, limit)
            early = count is not None

        def hand(_: Any) -> None:
            nonlocal handed
            handed = True
            sender.hand(row)

        pending = self.store.submit(
            partial(
                self.store.sync.outbox_put,
                row["id"],
                to_did=row["to"],
                from_did=from_did,
                packed=row["packed"].encode(),
                created=created,
                expires=row["expires"],
                record=record,
                state=OUTBOX_SENDING if reserved else OUTBOX_QUEUED,
                # Counted just above, with nothing able to come between: not twice.
                max_pending=None if early else limit,
            ),
            on_executed=hand if reserved and not early else None,
        )
        if early:
            hand(None)
            # Let the delivery task write the message to the network before this
            # one runs the commit (its SQL and fsync would otherwise sit between
            # pack and send).  Twice: trio runs each batch of ready tasks in a
            # random order, so after one round this task goes first half the
            # time; after two, the delivery task has run up to its first wait,
            # the socket write.  Shielded: the insert is queued and the message
            # handed over already.
            await trio.lowlevel.cancel_shielded_checkpoint()
            await trio.lowlevel.cancel_shielded_checkpoint()
        try:
            # Shielded once the message may be on its way: the insert must not be
            # withdrawn from the queue (a cancelled wait would) after that.
            with trio.CancelScope(shield=reserved):
                await pending.wait()
        finally:
            if reserved and not handed:
                sender.release()
        if sender is not None and not reserved:
            sender.wake()

    async def message_receive(self, packed: str | bytes, *, transport: str = "local") -> dict[str, Any]:
        """Commit an inbound packed message, then unpack and record it.

        Returns ``{"id", "state"}`` with state ``received``, ``rejected`` (the reason
        is in ``message_get``) or ``duplicate`` (already had it; nothing changed).
        """
        if isinstance(packed, str):
            packed = packed.encode("utf-8")
        if not isinstance(packed, bytes | bytearray):
            raise InvalidParamsError("packed must be a string or bytes")
        packed = bytes(packed)
        if len(packed) > MAX_INBOUND_BYTES:
            raise DaemonError("invalid_message", f"the message is larger than {MAX_INBOUND_BYTES} bytes")
        _check_str("transport", transport, 64)
        self.space.check()  # before anything is committed: a refused message stays with its sender
        ref = "in-" + hashlib.sha256(packed).hexdigest()[:32]
        # Known bytes are answered without unpacking them.  Only when the store is
        # idle: the commit below finds a duplicate anyway (Store.inbox_insert_received),
        # and waiting here for a busy store's fsync would cost every message that.
        stored = self.store.read_if_idle(self.store.sync.inbox_get_ref, ref)
        if stored is not None and stored.state != "rejected":
            await self.store.durable()  # the row may be committed and not yet synced
            return {"id": stored.id, "state": "duplicate"}
        # A rejected message sent again is tried again: we may know its sender by now.
        # New bytes are committed together with the result of unpacking them
        # (Store.inbox_insert_received): seq 0 marks a row not in the store yet.
        row = stored or InboxRow(0, ref, None, None, "pending", transport, self.now(), packed, {})
        result = await self._process(row)
        await self.events.flush_soon()
        return result

    async def _process(self, row: InboxRow) -> dict[str, Any]:
        try:
            result = unpack(row.packed, resolver=self.resolver, secrets=self.wallet, now=self.now())
        except DIDCommError as exc:
            record = {"reason": exc.message, "problem_code": exc.problem_code}
            if not await self.store.run(reject_inbound, self.store.sync, row, record):
                # The same bytes were received before (and unpacked then).
                return {"id": row.ref, "state": "duplicate"}
            self.events.publish(
                "message.rejected",
                {"id": row.ref, "transport": row.transport, "reason": exc.message,
                 "problem_code": exc.problem_code},
            )
            _log.info("message.rejected", ref=row.ref, problem_code=exc.problem_code, reason=exc.message)
            return {"id": row.ref, "state": "rejected"}
        message = result.message
        msg_id = str(message["id"])
        sender = _sender_did(result.metadata)
        # (The attributes, not to_json(): that is a deep copy, and conversations
        # makes one for the inbox record already.)
        metadata = result.metadata
        # Accepting the row, the protocol step and its replies commit together.
        verdict = await self.conversations.accept(row, result, sender)
        if verdict.state == "duplicate":
            return {"id": msg_id, "state": "duplicate"}
        if verdict.state == "rejected":
            self.events.publish(
                "message.rejected",
                {"id": row.ref, "transport": row.transport, "reason": verdict.reason,
                 "problem_code": verdict.problem_code},
            )
            _log.info("message.rejected", ref=row.ref, problem_code=verdict.problem_code, reason=verdict.reason)
            return {"id": row.ref, "state": "rejected"}
        conn = await self.conversations.connections.for_pair(sender or None, None)
        self.events.publish(
            "message.received",
            {
                "id": msg_id,
                "type": message.get("type"),
                "from": message.get("from"),
                "connection": conn.id if conn is not None else None,
                "thid": message.get("thid"),
                "transport": row.transport,
                "encrypted": metadata.encrypted,
                "authenticated": metadata.authenticated,
                "anonymous_sender": metadata.anonymous_sender,
            },
        )
        _log.info("message.received", msg_id=msg_id, sender=sender or None, type=message.get("type"))
        return {"id": msg_id, "state": "received"}

    async def _resume_inbox(self) -> int:
        pending = await self.store.run(self.store.sync.inbox_pending)
        for row in pending:
            await self._process(row)
        return len(pending)

    async def message_list(
        self, *, box: str = "inbox", limit: int = DEFAULT_LIST_LIMIT, before: int | None = None
    ) -> list[dict[str, Any]]:
        """Summaries, newest first; page with ``before`` = the last ``seq`` seen."""
        if box not in BOXES:
            raise InvalidParamsError(f"box must be one of {', '.join(BOXES)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidParamsError(f"limit must be an integer from 1 to {MAX_LIST_LIMIT}")
        if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
            raise InvalidParamsError("before must be an integer seq")
        if box == "inbox":
            rows = await self.store.run(self.store.sync.inbox_list, limit=limit, before=before)
            return [_inbox_summary(r) for r in rows]
        out_rows = await self.store.run(self.store.sync.outbox_list, limit=limit, before=before)
        return [_outbox_summary(r) for r in out_rows]

    async def message_get(self, id: str) -> dict[str, Any]:
        """One message: an inbound one with its plaintext and metadata (or the reason it
        was rejected), else an outbound one's delivery state."""
        _check_str("id", id, MAX_TYPE_CHARS)
        row = await self.store.run(self.store.sync.inbox_get, id)
        if row is not None and row.state == INBOX_DELETED:
            raise NotFoundError(f"message {id!r} was deleted")
        if row is not None:
            out = _inbox_summary(row)
            out["message"] = row.record.get("message")
            out["metadata"] = row.record.get("metadata")
            return out
        out_row = await self.store.run(self.store.sync.outbox_get, id)
        if out_row is not None:
            return _outbox_summary(out_row)
        raise NotFoundError(f"no message with id {id!r}")

    async def message_delete(self, id: str) -> dict[str, Any]:
        """Erase a message we received or sent, with its basic-message record and what
        the stored events say of it (see :meth:`Store.message_erase`); what was erased."""
        _check_str("id", id, MAX_TYPE_CHARS)
        erased = await self.erase(partial(self.store.sync.message_erase, id), "message.deleted", {"id": id})
        if not any(erased.values()):
            raise NotFoundError(f"no message with id {id!r}")
        return {"id": id, "deleted": erased}

    async def erase(self, erase: Callable[[], dict[str, int]], event: str, data: dict[str, Any]) -> dict[str, int]:
        """Run one of the store's erasures (counts by kind of row) the way each must run:
        the events still queued are flushed first, so they are erased too; if anything
        was, the WAL is emptied (the erase zeroed the old contents in the pages it
        wrote, and the WAL still has those pages as they were), and ``event`` with
        ``data`` is logged and published."""
        await self.events.flush()
        erased = await self.store.run(erase)
        if any(erased.values()):
            await self.store.checkpoint_all()
            _log.info(event, **data, **erased)
            self.events.publish(event, data)
            await self.events.flush_soon()
        return erased

    async def outbox_get(self, id: str) -> dict[str, Any]:
        """An outbound message with its packed form (for transports and tests)."""
        _check_str("id", id, MAX_TYPE_CHARS)
        row = await self.store.run(self.store.sync.outbox_get, id)
        if row is None:
            raise NotFoundError(f"no outbound message with id {id!r}")
        out = _outbox_summary(row)
        # None once delivered or expired: the packed bytes are not kept then.
        out["packed"] = row.packed.decode("utf-8") if row.packed else None
        return out


    # -- peers (daemon.peers) -------------------------------------------------------------------

    def _peer_table(self) -> Any:
        if self.peers is None:
            raise DaemonError("unavailable", "the p2p node is not running")
        return self.peers

    async def peers_list(self) -> list[dict[str, Any]]:
        """Known libp2p peers: id, addresses, how found, last seen, latency."""
        return list(self._peer_table().list())

    async def peers_connect(self, multiaddr: str) -> dict[str, Any]:
        """Dial a peer at ``multiaddr`` (ending in ``/p2p/<peer id>``)."""
        return dict(await self._peer_table().connect(multiaddr))

    # -- the outbox, for transports ------------------------------------------------------------
    #
    # A transport (issue 5's outbox task) claims due messages, tries to deliver each,
    # and reports the result; each report is committed and then published.

    async def outbox_claim(self, *, limit: int = DEFAULT_LIST_LIMIT) -> list[dict[str, Any]]:
        """Messages due for delivery now, moved to ``sending`` (with their packed form).

        Pending messages past their ``expires_time`` become ``expired`` (published as
        ``message.expired``) instead of being claimed.
        """
        now = self.now()
        # One relaxed commit (no fsync): 'sending' promises nothing (a restart puts
        # it back to 'queued'), and an expiry lost to a power cut happens again.
        expired, rows = await self.store.run_relaxed(self.store.sync.outbox_claim, now, limit=limit)
        for id in expired:
            self.events.publish("message.expired", {"id": id})
        if expired:
            await self.events.flush()
        return [{**_outbox_summary(r), "packed": r.packed.decode("utf-8")} for r in rows]

    async def outbox_delivered(self, id: str) -> dict[str, Any]:
        """Record that the receiver committed message ``id``; ``{"id", "state",
        "to", "attempts"}`` (``message_get`` has the whole row)."""
        # A relaxed commit (no fsync): if a power cut loses it, the message is
        # 'sending' after the restart, is sent again, and the receiver drops the
        # duplicate; the promise (delivered at least once, kept once) holds.
        now = self.now()
        to_did, attempts = await self.store.run_relaxed(self.store.sync.outbox_delivered, id, now=now)
        self.events.publish("message.delivered", {"id": id, "to": to_did, "attempts": attempts})
        await self.events.flush_soon()
        return {"box": "outbox", "id": id, "state": OUTBOX_DELIVERED, "to": to_did, "attempts": attempts,
                "updated": now}

    async def outbox_retry(self, id: str, *, retry_at: int, error: str) -> dict[str, Any]:
        """Record a failed attempt; the message is queued again for ``retry_at`` (Unix time)."""
        row = await self.store.run(
            self.store.sync.outbox_transition, id, "queued", now=self.now(), next_attempt=retry_at,
            error=error,
        )
        self.events.publish("message.retry", {"id": id, "attempts": row.attempts, "retry_at": retry_at,
                                              "error": error})
        await self.events.flush()
        return _outbox_summary(row)

    async def outbox_failed(self, id: str, *, error: str) -> dict[str, Any]:
        """Give up on message ``id`` for good."""
        row = await self.store.run(
            self.store.sync.outbox_transition, id, "failed", now=self.now(), error=error
        )
        self.events.publish("message.failed", {"id": id, "attempts": row.attempts, "error": error})
        await self.events.flush()
        return _outbox_summary(row)


@contextlib.asynccontextmanager
async def open_agent(config: Config, **kwargs: Any) -> Any:
    """``async with open_agent(config) as agent:`` — :meth:`Agent.open` and :meth:`Agent.aclose`."""
    agent = await Agent.open(config, **kwargs)
    try:
        yield agent
    finally:
        await agent.aclose()

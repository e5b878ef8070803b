"""The store: one SQLite file holding everything the daemon must not forget.

Theory of operation
-------------------
*One file, one writer.*  The store is a single SQLite database in the state
directory (``didcommd.sqlite3``) in WAL mode: when a call that must be durable
returns, its data is on disk, which is what lets the daemon acknowledge an
inbound message or report an outbound one as queued.

:class:`Store` is plain synchronous code over one ``sqlite3`` connection (with
``synchronous=FULL`` when used on its own, e.g. by ``didcommd wallet ...``).  The
trio side never calls it directly: :class:`AsyncStore` serializes every call (one
writer, no ``database is locked`` retries inside the daemon) and keeps whatever
waits on the disk off the trio loop.  Other processes may open the same file;
SQLite's own locking and :data:`BUSY_TIMEOUT_MS` cover them.

*Durability, made explicit.*  With ``synchronous=FULL`` SQLite fsyncs the WAL
inside every ``COMMIT``, so a commit must run where it may wait: in a thread,
with its SQL, its GIL hand-offs and its wake-ups (on the bench machine ~1 ms per
commit of which the fsync was a third).  :class:`AsyncStore` separates the two.
Its connection commits with ``synchronous=NORMAL`` and never checkpoints by
itself: a commit writes its WAL frames to the page cache and returns (tens of
microseconds), so the SQL runs on the trio thread.  A call that must be durable
then waits for an ``fdatasync`` of the WAL file (:meth:`Store.sync_wal`), run in
the store's thread (:class:`_StoreThread`) on a file descriptor of its own; or,
while the disk keeps proving fast (a moving average of syncs under
:data:`INLINE_SYNC_MAX_SECONDS`) and no other task is ready to run, on the trio
thread itself, since the hand-off to the thread and back costs more than such a
sync; a slow disk sends the next :data:`SLOW_SYNC_BACKOFF` to the thread after
one sync.  Tasks woken by the commit (the sender of a message just queued) run
first, so what they send overlaps the fsync.  The fdatasync
is what ``FULL`` would have done (in WAL mode it syncs the WAL at each commit and
nothing else), so the guarantee is the same.  One sync covers every commit made
before it started: commits made while a sync runs wait for the next one, which
covers them all (*group commit*; :meth:`AsyncStore._wait_synced`).  Every
:data:`CHECKPOINT_EVERY_COMMITS` commits, a PASSIVE checkpoint copies the WAL
into the main file on a second connection in a thread of its own, so the writer
never waits for it; SQLite syncs the WAL before and the main file after.  Such a
checkpoint never catches up while commits keep coming, and SQLite starts the
WAL over only after one that did: once one finds more than
:data:`WAL_RESTART_BYTES`, the next group first waits for a checkpoint that no
commit races (the writer lock held), and its own commit starts the WAL over.  If an
fsync fails, nothing since the last good one is called durable, now or later
(the kernel may have dropped those pages): durable calls fail until a restart.

*Groups.*  Calls wait in one FIFO queue; whoever holds the writer lock takes
every call queued so far (at most :data:`MAX_GROUP`) and runs them in *one*
transaction, each inside its own savepoint (:meth:`Store.run_group`).  A call
that raises is rolled back to its savepoint and gets its own exception; the
others are unaffected.  If the ``COMMIT`` itself fails, every call of the group
gets that error and nothing of the group is written.  Calls in a later group
see everything an earlier one wrote, and a call in a group sees what the calls
before it in the same group wrote, so the queue order is the commit order.  If
another process holds the write lock, the group goes to the store's thread to
wait for it there instead of blocking the loop.

Some writes promise nothing across a power loss: :meth:`AsyncStore.run_relaxed`
marks them (event rows, which are reports of what was committed elsewhere; the
claim of a message for sending, which a restart undoes anyway).  They skip the
fsync: in WAL mode a commit survives a crash of the process (``kill -9``) and
the file stays consistent after a power loss, which may lose only the newest
unsynced commits.  The next sync covers them too.

A commit is visible to later reads before its sync: work that needs no
durability yet may act on it (sending a message whose outbox row is being
synced).  Whatever tells the outside world that something is kept (a reply to a
client, an acknowledgement to a peer) waits for durability: for an answer based
on a read, :meth:`AsyncStore.durable` first.

*Reads.*  :meth:`AsyncStore.read` runs a read inline on the trio thread when no
group runs or waits (then everything written so far is committed), else queues
it so it sees the writes before it;
:meth:`AsyncStore.read_if_idle` gives up instead of queueing, for reads whose
answer only saves work.  :meth:`AsyncStore.submit` can also report a call as
soon as it *ran*, before its group's commit (``on_executed``), so work that does
not need the data durable yet (sending a queued message) overlaps the fsync.

*Rows and records.*  Columns hold what is searched or indexed (ids, DIDs, states,
times); everything else is one CBOR blob per row (``record``), so adding a field
needs no migration.  The blobs of personal tables (connections, protocol
records, credentials, inbox, outbox records, events) are sealed under the
wallet's data key (:mod:`daemon.sealing`): the store writes or reads them only
once the wallet has handed it a sealer (:meth:`Store.use_sealer`).  Times are integer Unix seconds, passed in by the caller
(the store reads no clock, which keeps tests exact).

*Schema versions.*  ``PRAGMA user_version`` is the schema version.
:data:`MIGRATIONS` holds one SQL script per version step; opening the store runs
the missing ones, each in its own transaction.  A file from a newer didcommd is
refused rather than damaged.

*Inbox.*  An inbound message is committed before anything else happens to it
(:meth:`Store.inbox_commit`), keyed by the SHA-256 of its bytes so an exact
replay is recognised at once.  Once unpacked, the row gets its sender DID and
message id; the unique index on ``(sender, msg_id)`` is the dedup rule of the
spec (a message id is unique per sender).  A message that cannot be unpacked
keeps its row, state ``rejected``, with the reason.

*Outbox.*  States and the moves between them are the table
:data:`OUTBOX_TRANSITIONS`; anything else is a :class:`~daemon.errors.StoreError`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import cbor2
import outcome
import trio

from protocols.basic_message import PIURI as BASIC_MESSAGE_PIURI
from protocols.basic_message import RECEIVER as BASIC_MESSAGE_RECEIVER

from .errors import INVALID_STATE, UNAVAILABLE, DaemonError, StoreBusyError, StoreError
from .locks import acquire_now
from .sealing import RecordSealer

DB_FILE_NAME = "didcommd.sqlite3"
#: How long a statement waits for another process's lock before failing.
BUSY_TIMEOUT_MS = 5000
#: Most rows one list call returns.
MAX_LIST_LIMIT = 1000
#: Events kept in the store for ``events.subscribe(since=...)``; older ones are pruned.
EVENTS_KEPT = 10_000
#: Events beyond EVENTS_KEPT that may pile up before they are pruned, all at once.
EVENTS_PRUNE_BATCH = 1000
#: Most bytes of (sealed) event data kept: past it, the oldest events go until a tenth
#: of it is free again.  An event may carry a message's text (64 KB at most).
EVENTS_KEPT_BYTES = 64 * 1024 * 1024
#: Most rows one :meth:`Store.outbox_prune` call deletes (one short transaction each,
#: so the writer lock is never held for long).
PRUNE_BATCH = 1000
#: The meta record holding how far :meth:`Store.inbox_prune` has gone (a seq): rows up
#: to it are tombstones already, and are not looked at again.
INBOX_PRUNED_SEQ = "housekeeping.inbox_pruned_seq"
#: Event kinds whose data names a message by ``id`` or ``thid`` (Store.message_erase).
_MESSAGE_EVENT_KINDS = (
    "message.queued", "message.delivered", "message.retry", "message.failed", "message.expired",
    "message.received", "message.rejected", "message.duplicate", "basicmessage.sent", "basicmessage.received",
)
#: Largest CBOR record read back (a guard against a damaged file).
MAX_RECORD_BYTES = 64 * 1024 * 1024
#: Most queued calls one group commit takes (bounds how long the first one waits).
MAX_GROUP = 128
#: When the moving average of WAL fdatasyncs run on the trio thread exceeds this,
#: the next SLOW_SYNC_BACKOFF syncs go to the store's thread; below it the trio
#: thread syncs itself: on a disk that syncs in ~0.1-0.5 ms (this machine's) that
#: is cheaper than the hand-off to the thread and back (~0.1 ms of CPU and two
#: wake-ups, each of which may wait for a CPU on a loaded machine).  A sync of
#: SYNC_AVERAGE_OVER times this (a slow disk) is enough to back off.
INLINE_SYNC_MAX_SECONDS = 0.001
#: Inline syncs the moving average spans (weight 1/N for the newest).
SYNC_AVERAGE_OVER = 8
#: Syncs sent to the thread after a slow one (the first one goes there too: untimed disk).
SLOW_SYNC_BACKOFF = 100
#: Commits after which the WAL is checkpointed into the main file (in a thread of
#: its own, see *Durability*); at ~10 pages a commit, about SQLite's default of 1,000 pages.
CHECKPOINT_EVERY_COMMITS = 100
#: WAL bytes a checkpoint may leave behind before the next group waits for one
#: that no commit can race (SQLite starts the WAL over from its beginning only
#: after a checkpoint that caught up with every commit, and under steady writes a
#: checkpoint running beside the writer never does: the file grew without bound,
#: ~20 KB a message).  Also the size the file is truncated back to (journal_size_limit).
WAL_RESTART_BYTES = 4 * 1024 * 1024

_P = ParamSpec("_P")
_T = TypeVar("_T")


# -- schema ---------------------------------------------------------------------------

_SCHEMA_V1 = """
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- Private keys, each sealed by the wallet (XChaCha20-Poly1305, kid as associated data).
CREATE TABLE keys (
    kid     TEXT PRIMARY KEY,
    did     TEXT NOT NULL,
    curve   TEXT NOT NULL,
    created INTEGER NOT NULL,
    sealed  BLOB NOT NULL
);
CREATE INDEX keys_did ON keys (did);

-- DIDs we own (own = 1) and DIDs we know (own = 0).
CREATE TABLE dids (
    did     TEXT PRIMARY KEY,
    own     INTEGER NOT NULL,
    method  TEXT NOT NULL,
    label   TEXT,
    created INTEGER NOT NULL,
    record  BLOB NOT NULL
);

-- DID documents: ours, and a cache of others'.
CREATE TABLE did_docs (
    did     TEXT PRIMARY KEY,
    updated INTEGER NOT NULL,
    doc     BLOB NOT NULL
);

CREATE TABLE connections (
    id        TEXT PRIMARY KEY,
    my_did    TEXT,
    their_did TEXT,
    state     TEXT NOT NULL,
    updated   INTEGER NOT NULL,
    record    BLOB NOT NULL
);
CREATE INDEX connections_their_did ON connections (their_did);

-- State of protocol instances (issue-credential, present-proof, ...), one per thread and role.
CREATE TABLE protocol_records (
    protocol TEXT NOT NULL,
    thid     TEXT NOT NULL,
    role     TEXT NOT NULL,
    state    TEXT NOT NULL,
    updated  INTEGER NOT NULL,
    record   BLOB NOT NULL,
    PRIMARY KEY (protocol, thid, role)
);

CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    to_did       TEXT NOT NULL,
    from_did     TEXT,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    expires      INTEGER,
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    packed       BLOB NOT NULL,
    record       BLOB NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt);

CREATE TABLE inbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    ref       TEXT NOT NULL UNIQUE,
    msg_id    TEXT,
    sender    TEXT,
    state     TEXT NOT NULL,
    transport TEXT NOT NULL,
    received  INTEGER NOT NULL,
    packed    BLOB NOT NULL,
    record    BLOB NOT NULL
);
-- A message id is unique per sender ('' for an anonymous sender); NULLs (not yet
-- unpacked, or rejected) never collide.
CREATE UNIQUE INDEX inbox_dedup ON inbox (sender, msg_id);
CREATE INDEX inbox_msg_id ON inbox (msg_id);
CREATE INDEX inbox_state ON inbox (state);

CREATE TABLE credentials (
    id      TEXT PRIMARY KEY,
    issuer  TEXT,
    subject TEXT,
    created INTEGER NOT NULL,
    record  BLOB NOT NULL
);

CREATE TABLE events (
    seq  INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    time TEXT NOT NULL,
    data BLOB NOT NULL
);
"""

# v2: a thread's records are looked up by thid alone for every inbound message;
# without this index that was a scan of the whole table (the receiver slowed down
# as it kept records of every basic message).
_SCHEMA_V2 = """
CREATE INDEX protocol_records_thid ON protocol_records (thid);
"""

# v3: the per-recipient limit counts a DID's pending messages on every send; by
# (state, next_attempt) that read each pending row's table entry (2,000 pending
# to one DID: 3.5 ms a send); this index answers the count by itself.
_SCHEMA_V3 = """
CREATE INDEX outbox_pending ON outbox (to_did, state);
"""

# v4: revocation (daemon.revocation).  An issuer's status lists: one row per
# list (its entries packed as ``StatusList.to_bytes()``, rewritten on each
# revocation) and one per index handed out, naming the offer's thread and, once
# issued, the credential's id (the unused indexes are the ones without a row).  A holder's latest verified copy
# of each list its credentials name (the document itself in the record).
_SCHEMA_V4 = """
CREATE TABLE status_lists (
    uri      TEXT PRIMARY KEY,
    issuer   TEXT NOT NULL,
    format   TEXT NOT NULL,
    n        INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    used     INTEGER NOT NULL,
    updated  INTEGER NOT NULL,
    statuses BLOB NOT NULL,
    UNIQUE (issuer, format, n)
);

CREATE TABLE status_entries (
    uri           TEXT NOT NULL REFERENCES status_lists (uri),
    idx           INTEGER NOT NULL,
    thid          TEXT NOT NULL,
    credential_id TEXT,
    status        INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    PRIMARY KEY (uri, idx)
) WITHOUT ROWID;
CREATE INDEX status_entries_thid ON status_entries (thid);
CREATE INDEX status_entries_credential ON status_entries (credential_id);

CREATE TABLE held_status_lists (
    uri        TEXT PRIMARY KEY,
    issuer     TEXT NOT NULL,
    format     TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    fetched_at INTEGER NOT NULL,
    record     BLOB NOT NULL
);
"""

# v5: a message costs fewer pages per commit (every index a commit changes is at
# least one more page written; measured, the receiver's commit of a 1 KB message went
# from 47 to 35 KB of WAL).  The inbox has one unique index (msg_id, sender) where it
# had two, (sender, msg_id) and (msg_id): it deduplicates and finds a message by id;
# its state index is replaced by two partial ones that hold only the rare pending and
# rejected rows, so accepting a message writes neither.  The outbox's two indexes
# become partial too, holding only the messages still to deliver (a delivered one
# leaves them).  Queries state these indexes' conditions as literals: SQLite uses a
# partial index only for a query whose WHERE implies the index's, which a bound
# parameter in "state IN (?, ?)" does not.  Neither box has AUTOINCREMENT any more: its sqlite_sequence row was one more page per insert, and seq only orders
# and pages listings, where a number reused after the newest row was deleted is
# harmless.  The tables are copied (SQLite cannot drop AUTOINCREMENT in place); sealed
# records are bound to their table's name and row key, not to seq, so they still open.
_SCHEMA_V5 = """
CREATE TABLE inbox_v5 (
    seq       INTEGER PRIMARY KEY,
    ref       TEXT NOT NULL UNIQUE,
    msg_id    TEXT,
    sender    TEXT,
    state     TEXT NOT NULL,
    transport TEXT NOT NULL,
    received  INTEGER NOT NULL,
    packed    BLOB NOT NULL,
    record    BLOB NOT NULL
);
INSERT INTO inbox_v5 (seq, ref, msg_id, sender, state, transport, received, packed, record)
    SELECT seq, ref, msg_id, sender, state, transport, received, packed, record FROM inbox;
DROP TABLE inbox;
ALTER TABLE inbox_v5 RENAME TO inbox;
-- A message id is unique per sender ('' for an anonymous sender); NULLs (not yet
-- unpacked, or rejected) never collide.
CREATE UNIQUE INDEX inbox_dedup ON inbox (msg_id, sender);
CREATE INDEX inbox_pending ON inbox (seq) WHERE state = 'pending';
CREATE INDEX inbox_rejected ON inbox (seq) WHERE state = 'rejected';

CREATE TABLE outbox_v5 (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    to_did       TEXT NOT NULL,
    from_did     TEXT,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    expires      INTEGER,
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    packed       BLOB NOT NULL,
    record       BLOB NOT NULL
);
INSERT INTO outbox_v5 (seq, id, to_did, from_did, state, attempts, next_attempt, expires, created, updated,
                       packed, record)
    SELECT seq, id, to_did, from_did, state, attempts, next_attempt, expires, created, updated, packed, record
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v5 RENAME TO outbox;
-- Partial: only messages still to deliver (a sent one leaves both indexes).
CREATE INDEX outbox_due ON outbox (next_attempt) WHERE state = 'queued';
CREATE INDEX outbox_pending ON outbox (to_did) WHERE state IN ('queued', 'sending');
"""

# v6: the event log is bounded by bytes as well as by count (EVENTS_KEPT_BYTES): an
# event may carry a message's text, up to 64 KB, and 10,000 of those were 640 MB.
# Each row's sealed size is kept; rows from before have 0 and leave by count.
_SCHEMA_V6 = """
ALTER TABLE events ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
"""

# v7: suspension (daemon.revocation).  A list's entries may be 2 bits wide (0 valid,
# 1 revoked, 2 suspended): each list says how many bits its packed entries have.
# Lists from before are 1-bit; they are widened when one of their credentials is
# first suspended (their entries keep their indexes and values).
_SCHEMA_V7 = """
ALTER TABLE status_lists ADD COLUMN bits INTEGER NOT NULL DEFAULT 1;
"""

# v8: a protocol record's peer DID in a column of its own (as the connections, inbox and
# outbox tables have theirs), so a conversation's page (Store.records_newest) is found
# without opening every other peer's records.  Rows from before get it at the first
# unlock (Store.fill_record_dids); until then they are opened as before.
_SCHEMA_V8 = """
ALTER TABLE protocol_records ADD COLUMN their_did TEXT;
"""

#: ``meta`` record set once every protocol record has its ``their_did`` column filled.
_META_RECORD_DIDS = "record_dids_filled"
#: ``meta`` record set once every personal record is sealed (Store.seal_legacy_records).
_META_RECORDS_SEALED = "records_sealed"

#: ``MIGRATIONS[n]`` upgrades a schema from version ``n`` to ``n + 1``.
MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4, _SCHEMA_V5, _SCHEMA_V6,
                                _SCHEMA_V7, _SCHEMA_V8)
SCHEMA_VERSION = len(MIGRATIONS)


# -- records ----------------------------------------------------------------------------


def encode_record(value: Any) -> bytes:
    """A record as CBOR bytes."""
    return bytes(cbor2.dumps(value))


def decode_record(data: bytes) -> Any:
    """A record from CBOR bytes; a damaged record is a StoreError."""
    if len(data) > MAX_RECORD_BYTES:
        raise StoreError(f"a stored record is larger than {MAX_RECORD_BYTES} bytes")
    try:
        return cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, EOFError):
        raise StoreError("a stored record is damaged (not valid CBOR)") from None


def _protocol_record_key(protocol: str, thid: str, role: str) -> str:
    return f"{protocol}\x00{thid}\x00{role}"


#: The personal columns :meth:`Store.seal_legacy_records` seals: (table, row-key
#: SQL, column, the name the column is sealed under, whether it holds CBOR).
_SEALED_COLUMNS: tuple[tuple[str, str, str, str, bool], ...] = (
    ("connections", "id", "record", "connections", True),
    ("protocol_records", "protocol || char(0) || thid || char(0) || role", "record", "protocol_records", True),
    ("credentials", "id", "record", "credentials", True),
    ("inbox", "ref", "record", "inbox", True),
    ("inbox", "ref", "packed", "inbox.packed", False),
    ("outbox", "id", "record", "outbox", True),
    ("events", "CAST(seq AS TEXT)", "data", "events", True),
)
#: Rows sealed per statement batch when sealing a legacy store.
SEAL_BATCH_ROWS = 500


@dataclass(frozen=True, slots=True)
class KeyRow:
    """A sealed private key."""

    kid: str
    did: str
    curve: str
    created: int
    sealed: bytes


@dataclass(frozen=True, slots=True)
class DIDRow:
    """A DID we own or know."""

    did: str
    own: bool
    method: str
    label: str | None
    created: int
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class InboxRow:
    """An inbound message, from the moment it was committed."""

    seq: int
    ref: str
    msg_id: str | None
    sender: str | None
    state: str
    transport: str
    received: int
    packed: bytes
    record: dict[str, Any]

    @property
    def id(self) -> str:
        """The message id once known, else the row's reference."""
        return self.msg_id if self.msg_id is not None else self.ref


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An outbound packed message and its delivery state."""

    seq: int
    id: str
    to_did: str
    from_did: str | None
    state: str
    attempts: int
    next_attempt: int
    expires: int | None
    created: int
    updated: int
    packed: bytes
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StatusListRow:
    """A status list we publish (issuer): its entries packed, and how many are handed out."""

    uri: str
    issuer: str
    format: str
    n: int
    size: int
    used: int
    updated: int
    statuses: bytes
    #: Bits per packed entry (1: a list from before suspension; lists we create have 2).
    bits: int = 1


@dataclass(frozen=True, slots=True)
class StatusEntryRow:
    """One index of one of our status lists, handed out to the offer of thread ``thid``."""

    uri: str
    idx: int
    thid: str
    credential_id: str | None
    status: int
    updated: int


@dataclass(frozen=True, slots=True)
class HeldStatusListRow:
    """The latest verified copy of a status list we hold (holder); the document is in ``record``."""

    uri: str
    issuer: str
    format: str
    issued_at: int
    fetched_at: int
    record: dict[str, Any]


# Inbox states.
INBOX_PENDING = "pending"  # committed, not yet unpacked (a restart unpacks it)
INBOX_RECEIVED = "received"  # unpacked; message and metadata in the record
INBOX_REJECTED = "rejected"
#: Erased by its owner (Store.message_erase): only what deduplication needs is left.
INBOX_DELETED = "deleted"
#: What :meth:`Store.inbox_insert_received` did.
INBOX_INSERTED = "inserted"
INBOX_DUPLICATE = "duplicate"
INBOX_STORED = "stored"

# Outbox states and the moves between them.
OUTBOX_QUEUED = "queued"
OUTBOX_SENDING = "sending"
OUTBOX_DELIVERED = "delivered"
OUTBOX_FAILED = "failed"
OUTBOX_EXPIRED = "expired"
OUTBOX_TRANSITIONS: dict[str, frozenset[str]] = {
    OUTBOX_QUEUED: frozenset({OUTBOX_SENDING, OUTBOX_FAILED, OUTBOX_EXPIRED}),
    # back to queued: a failed attempt that will be retried (or a restart mid-send)
    OUTBOX_SENDING: frozenset({OUTBOX_DELIVERED, OUTBOX_QUEUED, OUTBOX_FAILED, OUTBOX_EXPIRED}),
    OUTBOX_DELIVERED: frozenset(),
    OUTBOX_FAILED: frozenset(),
    OUTBOX_EXPIRED: frozenset(),
}
OUTBOX_PENDING_STATES = (OUTBOX_QUEUED, OUTBOX_SENDING)
# The conditions of the outbox's partial indexes (schema v5), as literals in queries:
# SQLite uses a partial index only when a query's WHERE implies the index's.
_QUEUED = f"state = '{OUTBOX_QUEUED}'"
_PENDING = f"state IN ({', '.join(repr(state) for state in OUTBOX_PENDING_STATES)})"
#: States an outbound message never leaves; :meth:`Store.outbox_prune` deletes them
#: once they are old enough.
OUTBOX_FINAL_STATES = (OUTBOX_DELIVERED, OUTBOX_FAILED, OUTBOX_EXPIRED)
#: The ``packed`` column of a row whose packed bytes are no longer kept: an outbound
#: message once delivered or expired (encrypted for its recipient, it is of no use to
#: us then), an inbound one once unpacked, unless it was signed (the signature is
#: the evidence non-repudiation promises).  Nothing reads it then: what the message
#: said is in the record.  (No packed message is empty, so it cannot be mistaken.)
PACKED_NOT_KEPT = b""
# Outbound states whose packed bytes are dropped (a failed message keeps them: its
# owner may still carry it some other way, ``didcommctl message show --outbox``).
_OUTBOX_UNSENDABLE = frozenset({OUTBOX_DELIVERED, OUTBOX_EXPIRED})


class OutboxFullError(DaemonError):
    """Too many messages to one DID are still undelivered (``delivery.max_pending_per_peer``)."""

    code = UNAVAILABLE

    def __init__(self, to_did: str, pending: int, limit: int) -> None:
        super().__init__(
            None,
            f"{pending} messages to {to_did} are still undelivered "
            f"(delivery.max_pending_per_peer = {limit})",
        )


#: DIDs per ``IN (...)`` list (SQLite allows 999 parameters in older builds).
_DIDS_PER_STATEMENT = 500
# Above every seq SQLite hands out (a signed 64-bit rowid).
_MAX_SEQ = (1 << 63) - 1


def _their_did(record: dict[str, Any]) -> str | None:
    """A protocol record's peer DID, for its ``their_did`` column (schema v8)."""
    did = record.get("their_did")
    return did if isinstance(did, str) else None


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIST_LIMIT))


# -- the synchronous store ----------------------------------------------------------------


class _Transaction:
    """:meth:`Store.transaction`'s context manager (a class: it runs several
    times per stored call, and a generator-based one costs twice as much)."""

    __slots__ = ("_lock_wait", "_savepoint", "_store")

    def __init__(self, store: Store, lock_wait: bool) -> None:
        self._store = store
        self._lock_wait = lock_wait
        self._savepoint: str | None = None

    def __enter__(self) -> None:
        store = self._store
        if store._depth == 0:
            store._begin(self._lock_wait)
        else:
            self._savepoint = f"sp{store._depth}"
            store._conn.execute(f"SAVEPOINT {self._savepoint}")
        store._depth += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        store = self._store
        store._depth -= 1
        name = self._savepoint
        if exc_type is None:
            store._conn.execute("COMMIT" if name is None else f"RELEASE {name}")
        elif name is None:
            store._conn.execute("ROLLBACK")
        else:
            store._conn.execute(f"ROLLBACK TO {name}")
            store._conn.execute(f"RELEASE {name}")


class Store:
    """Synchronous access to the SQLite file.  Use from one thread at a time."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._depth = 0
        self._explicit = False
        self._wal_path = path.with_name(path.name + "-wal")
        self._wal_fd: int | None = None
        self._wal_ino = 0
        self._checkpointer: sqlite3.Connection | None = None
        self._page_bytes = 4096
        self._sealer: RecordSealer | None = None
        #: Bytes of event data stored (None: not summed yet, or a rollback made it stale).
        self._events_bytes: int | None = None

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating if needed, mode 0600) and migrate the store at ``path``."""
        try:
            # Create the file ourselves so it is 0600 from the start; SQLite gives
            # its -wal and -shm files the same mode.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                # An existing file is tightened too: its ids, DIDs and times are not sealed.
                if os.fstat(fd).st_mode & 0o077:
                    os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
            conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from None
        store = cls(conn, path)
        try:
            store._setup()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"cannot use the store {path}: {exc}") from None
        except BaseException:
            conn.close()
            raise
        return store

    def _setup(self) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(f"the store {self.path} cannot use WAL mode (got {mode})")
        # FULL: a commit is on disk before the call returns (inbox/outbox promises).
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Statement journals (a write inside a group's savepoints needs one) in
        # memory: on disk each was a file created and unlinked per statement.
        conn.execute("PRAGMA temp_store = MEMORY")
        # Deleted content is zeroed in the pages a commit writes anyway, but freed pages
        # are not written just to zero them (the build's default here is ON, which
        # wrote every overflow page a dropped packed message freed).  Records are
        # sealed; an erase the owner asks for zeroes everything (Store._zeroing).
        conn.execute("PRAGMA secure_delete = FAST")
        self.migrate()

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        value: int = self._conn.execute("PRAGMA user_version").fetchone()[0]
        return value

    def migrate(self) -> int:
        """Run the migrations the file lacks; return how many ran."""
        ran = 0
        while True:
            with self.transaction():
                version = self.schema_version
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"the store {self.path} has schema version {version}, newer than this "
                        f"didcommd understands ({SCHEMA_VERSION}); upgrade didcommd"
                    )
                if version == SCHEMA_VERSION:
                    return ran
                for statement in _statements(MIGRATIONS[version]):
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {version + 1}")
            ran += 1

    def close(self) -> None:
        """Checkpoint the WAL and close the connection."""
        with contextlib.suppress(sqlite3.Error):
            if self._explicit:
                self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None

    def transaction(self, *, lock_wait: bool = True) -> _Transaction:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls become savepoints.

        ``lock_wait=False``: if another process holds the write lock, raise
        :class:`StoreBusyError` at once (nothing was run) instead of waiting up to
        :data:`BUSY_TIMEOUT_MS`.
        """
        return _Transaction(self, lock_wait)

    def _begin(self, lock_wait: bool) -> None:
        conn = self._conn
        # The connection waits for locks (BUSY_TIMEOUT_MS) unless it syncs
        # explicitly (an AsyncStore's, which must not block the loop).
        wait = lock_wait and self._explicit
        fail_fast = not lock_wait and not self._explicit
        if wait or fail_fast:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS if wait else 0}")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if lock_wait:
                raise
            raise StoreBusyError("another process is writing to the store") from exc
        finally:
            if wait or fail_fast:
                conn.execute(f"PRAGMA busy_timeout = {0 if wait else BUSY_TIMEOUT_MS}")

    def run_group(self, calls: list[Callable[[], Any]], *, lock_wait: bool = True) -> list[outcome.Outcome[Any]]:
        """Run ``calls`` in one transaction, each in its own savepoint; one outcome each.

        A call that raises is rolled back alone (whether or not it had company) and
        its outcome is its exception.  If the transaction as a whole cannot commit,
        every outcome is that error and nothing was written.  ``lock_wait=False``
        (a caller on the trio thread) does not wait for another process's write
        lock: every outcome is then :class:`StoreBusyError` and nothing ran.
        """
        if self._depth:
            raise StoreError("a group cannot run inside a transaction")
        if len(calls) == 1:
            return [self._alone(calls[0], lock_wait=lock_wait)]
        return self._group(calls, lock_wait=lock_wait)

    def _alone(self, call: Callable[[], Any], *, lock_wait: bool) -> outcome.Outcome[Any]:
        # One call: its transaction is its rollback scope, no savepoint to pay for.
        try:
            with self.transaction(lock_wait=lock_wait):
                return outcome.Value(call())
        except Exception as exc:
            self._abandon()
            return outcome.Error(exc)

    def _group(self, calls: list[Callable[[], Any]], *, lock_wait: bool) -> list[outcome.Outcome[Any]]:
        conn = self._conn
        results: list[outcome.Outcome[Any]] = []
        try:
            with self.transaction(lock_wait=lock_wait):
                for call in calls:
                    results.append(self._savepointed(call))
                    if not conn.in_transaction:
                        # SQLite rolled the whole transaction back (disk full, I/O error):
                        # what the calls before this one wrote is gone too.
                        raise StoreError("the store rolled back a group transaction") from (
                            results[-1].error if isinstance(results[-1], outcome.Error) else None
                        )
        except Exception as exc:
            self._abandon()
            return [outcome.Error(exc) for _ in calls]
        return results

    def _abandon(self) -> None:
        """After a failed transaction: nothing of it stays open."""
        self._depth = 0
        self._events_bytes = None
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def _savepointed(self, call: Callable[[], Any]) -> outcome.Outcome[Any]:
        try:
            with self.transaction():
                return outcome.Value(call())
        except Exception as exc:
            return outcome.Error(exc)

    # -- explicit durability (AsyncStore) ----------------------------------------------------

    def sync_explicitly(self) -> None:
        """Commit without fsync or checkpoint, and never wait for a lock: the owner
        makes commits durable with :meth:`sync_wal` and checkpoints with
        :meth:`checkpoint` (see *Durability* in the module docstring)."""
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._conn.execute(f"PRAGMA journal_size_limit = {WAL_RESTART_BYTES}")
        self._conn.execute("PRAGMA busy_timeout = 0")
        self._explicit = True

    def sync_wal(self) -> float:
        """fdatasync the WAL: every commit made before this call is durable after it.

        Touches no connection, so it may run in another thread while commits go on.
        Returns the seconds the fdatasync took.
        """
        try:
            ino = os.stat(self._wal_path).st_ino
        except FileNotFoundError:
            # No WAL (every connection closed and checkpointed it away): the data is
            # in the main file.
            fd = os.open(self.path, os.O_RDONLY)
            started = time.perf_counter()
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            return time.perf_counter() - started
        if self._wal_fd is None or ino != self._wal_ino:
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None
            self._wal_fd = os.open(self._wal_path, os.O_RDONLY)
            self._wal_ino = ino
        started = time.perf_counter()
        os.fdatasync(self._wal_fd)
        return time.perf_counter() - started

    def checkpoint(self, mode: str = "PASSIVE") -> int:
        """Copy committed WAL frames into the main file (PASSIVE: never waits for
        a writer; TRUNCATE, with no writer: also empties the WAL file), on a
        connection of its own so the main one goes on meanwhile.

        Returns the WAL's size in bytes as the checkpoint found it (0 if it
        could not run: the next one will do it).
        """
        if mode not in ("PASSIVE", "TRUNCATE"):
            raise ValueError(f"checkpoint mode {mode!r}")
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._checkpointer.execute("PRAGMA busy_timeout = 0")
            self._page_bytes = self._checkpointer.execute("PRAGMA page_size").fetchone()[0]
        try:
            _busy, frames, _done = self._checkpointer.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error:
            return 0
        return max(0, int(frames)) * self._page_bytes

    def close_checkpointer(self) -> None:
        """Close :meth:`checkpoint`'s connection (from the thread that used it)."""
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None

    # -- meta ---------------------------------------------------------------------------

    # -- personal records, sealed under the wallet's key (daemon.sealing) -----------------

    def use_sealer(self, sealer: RecordSealer) -> None:
        """Seal personal records from now on (the wallet, once unlocked, hands it over)."""
        self._sealer = sealer

    def _sealer_or_fail(self) -> RecordSealer:
        if self._sealer is None:
            raise StoreError("the store's records are sealed by the wallet, which is not unlocked")
        return self._sealer

    def _seal(self, table: str, row_key: str, value: Any) -> bytes:
        return self._sealer_or_fail().seal(table, row_key, encode_record(value))

    def _seal_bytes(self, table: str, row_key: str, data: bytes) -> bytes:
        return self._sealer_or_fail().seal(table, row_key, data)

    def _open_bytes(self, table: str, row_key: str, blob: bytes) -> bytes:
        # A record in the clear is refused, not read: the seal is also what
        # tells a record we wrote from one put there behind our back.
        # (seal_legacy_records sealed those of older versions at the first unlock.)
        return self._sealer_or_fail().open(table, row_key, bytes(blob))

    def _open(self, table: str, row_key: str, blob: bytes) -> Any:
        return decode_record(self._open_bytes(table, row_key, blob))

    def _open_protocol_record(self, r: Any) -> Any:
        return self._open("protocol_records", _protocol_record_key(r[0], r[1], r[2]), r[3])

    def seal_legacy_records(self) -> int:
        """Seal every personal record still in the clear (a store from before sealing).

        Runs once: afterwards ``meta`` says so and this returns 0 at once.  The
        rewritten rows' old contents are overwritten with zeros (``secure_delete``)
        rather than left in free pages.  Returns how many columns it sealed.
        """
        sealer = self._sealer_or_fail()
        if self.meta_get(_META_RECORDS_SEALED):
            return 0
        # Until the flag is set no record is sealed (the flag is set in the same
        # transaction as the last seal, and a new store sets it while empty), so
        # every row is sealed here, whatever its first byte.
        sealed = 0
        with self._zeroing(), self.transaction():
            for table, key_sql, column, name, cbor in _SEALED_COLUMNS:
                after = -1
                while batch := self._conn.execute(
                    f"SELECT rowid, {key_sql}, {column} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (after, SEAL_BATCH_ROWS),
                ).fetchall():
                    if cbor:
                        for _rowid, _key, blob in batch:
                            decode_record(bytes(blob))  # damage is refused, not sealed
                    self._conn.executemany(
                        f"UPDATE {table} SET {column} = ? WHERE rowid = ?",
                        [(sealer.seal(name, key, bytes(blob)), rowid) for rowid, key, blob in batch],
                    )
                    sealed += len(batch)
                    after = batch[-1][0]
            self.meta_put(_META_RECORDS_SEALED, 1)
        return sealed

    def fill_record_dids(self) -> int:
        """Fill the ``their_did`` column of protocol records written before schema v8
        (each is opened once); runs once, then ``meta`` says so.  How many it filled."""
        if self.meta_get(_META_RECORD_DIDS):
            return 0
        filled, after = 0, -1
        with self.transaction():
            while batch := self._conn.execute(
                "SELECT rowid, protocol, thid, role, record FROM protocol_records "
                "WHERE rowid > ? AND their_did IS NULL ORDER BY rowid LIMIT ?",
                (after, SEAL_BATCH_ROWS),
            ).fetchall():
                updates = [(did, r[0]) for r in batch if (did := self._peer_of(r[1:]))]
                self._conn.executemany("UPDATE protocol_records SET their_did = ? WHERE rowid = ?", updates)
                filled += len(updates)
                after = batch[-1][0]
            self.meta_put(_META_RECORD_DIDS, 1)
        return filled

    def _peer_of(self, row: Any) -> str | None:
        """A stored protocol record's peer DID; None if it has none or cannot be opened (a
        damaged record is reported where it is read, not here: the daemon must start)."""
        try:
            return _their_did(self._open_protocol_record(row))
        except StoreError:
            return None

    @contextlib.contextmanager
    def _zeroing(self) -> Iterator[None]:
        """Meanwhile, the old contents of rewritten or deleted rows are overwritten with
        zeros (``secure_delete``), in their pages and in freed pages, instead of staying
        in the file until reused (the WAL's copies go at the next TRUNCATE checkpoint,
        :meth:`AsyncStore.checkpoint_all`)."""
        self._conn.execute("PRAGMA secure_delete = ON")
        try:
            yield
        finally:
            self._conn.execute("PRAGMA secure_delete = FAST")

    def meta_get(self, name: str) -> Any:
        """A named metadata record, or None."""
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else decode_record(row[0])

    def meta_put(self, name: str, value: Any) -> None:
        """Set a named metadata record."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, encode_record(value)),
            )

    # -- keys ----------------------------------------------------------------------------

    def keys_put(self, rows: Iterable[KeyRow], *, replace: bool = False) -> int:
        """Store sealed keys; existing kids are kept unless ``replace``.  Returns rows written."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        written = 0
        with self.transaction():
            for row in rows:
                cur = self._conn.execute(
                    f"{verb} INTO keys (kid, did, curve, created, sealed) VALUES (?, ?, ?, ?, ?)",
                    (row.kid, row.did, row.curve, row.created, row.sealed),
                )
                written += cur.rowcount
        return written

    def keys_all(self) -> list[KeyRow]:
        """Every sealed key."""
        rows = self._conn.execute(
            "SELECT kid, did, curve, created, sealed FROM keys ORDER BY created, kid"
        ).fetchall()
        return [KeyRow(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    # -- DIDs and documents -------------------------------------------------------------------

    def did_put(self, row: DIDRow, *, replace: bool = False) -> bool:
        """Store a DID; returns False if it existed and ``replace`` is off."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self.transaction():
            cur = self._conn.execute(
                f"{verb} INTO dids (did, own, method, label, created, record) VALUES (?, ?, ?, ?, ?, ?)",
                (row.did, int(row.own), row.method, row.label, row.created, encode_record(row.record)),
            )
        return cur.rowcount > 0

    def did_get(self, did: str) -> DIDRow | None:
        """One DID, or None."""
        r = self._conn.execute(
            "SELECT did, own, method, label, created, record FROM dids WHERE did = ?", (did,)
        ).fetchone()
        return None if r is None else DIDRow(r[0], bool(r[1]), r[2], r[3], r[4], decode_record(r[5]))

    def did_list(self, *, own: bool | None = True) -> list[DIDRow]:
        """Our DIDs (``own=True``), known ones (``False``) or all (``None``), oldest first."""
        sql = "SELECT did, own, method, label, created, record FROM dids"
        args: tuple[Any, ...] = ()
        if own is not None:
            sql += " WHERE own = ?"
            args = (int(own),)
        rows = self._conn.execute(sql + " ORDER BY created, rowid", args).fetchall()
        return [DIDRow(r[0], bool(r[1]), r[2], r[3], r[4], decode_record(r[5])) for r in rows]

    def doc_put(self, did: str, doc: dict[str, Any], updated: int) -> None:
        """Store (or refresh) a DID document."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO did_docs (did, updated, doc) VALUES (?, ?, ?) "
                "ON CONFLICT (did) DO UPDATE SET updated = excluded.updated, doc = excluded.doc",
                (did, updated, encode_record(doc)),
            )

    def doc_get(self, did: str) -> dict[str, Any] | None:
        """A stored DID document, or None."""
        r = self._conn.execute("SELECT doc FROM did_docs WHERE did = ?", (did,)).fetchone()
        return None if r is None else decode_record(r[0])

    def docs_all(self) -> dict[str, dict[str, Any]]:
        """Every stored DID document by DID."""
        rows = self._conn.execute("SELECT did, doc FROM did_docs").fetchall()
        return {r[0]: decode_record(r[1]) for r in rows}

    # -- connections, protocol records, credentials ------------------------------------------

    def connection_put(
        self, id: str, *, my_did: str | None, their_did: str | None, state: str, updated: int,
        record: dict[str, Any],
    ) -> None:
        """Insert or update a connection."""
        with self.transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO connections (id, my_did, their_did, state, updated, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (id, my_did, their_did, state, updated, self._seal("connections", id, record)),
            )

    def connection_get(self, id: str) -> dict[str, Any] | None:
        """A connection as a dict of its columns and record, or None."""
        r = self._conn.execute(
            "SELECT id, my_did, their_did, state, updated, record FROM connections WHERE id = ?", (id,)
        ).fetchone()
        if r is None:
            return None
        return {"id": r[0], "my_did": r[1], "their_did": r[2], "state": r[3], "updated": r[4],
                "record": self._open("connections", r[0], r[5])}

    def connection_list(self) -> list[dict[str, Any]]:
        """Every connection (columns and record), least recently updated first."""
        rows = self._conn.execute(
            "SELECT id, my_did, their_did, state, updated, record FROM connections ORDER BY updated, id"
        ).fetchall()
        return [{"id": r[0], "my_did": r[1], "their_did": r[2], "state": r[3], "updated": r[4],
                 "record": self._open("connections", r[0], r[5])} for r in rows]

    def connection_delete(self, id: str) -> bool:
        """Forget a connection; False if there was none."""
        with self.transaction():
            cur = self._conn.execute("DELETE FROM connections WHERE id = ?", (id,))
        return cur.rowcount > 0

    def connection_add(
        self, id: str, *, my_did: str | None, their_did: str | None, state: str, updated: int,
        record: dict[str, Any],
    ) -> bool:
        """Insert a connection unless one with this id exists (then it is kept); whether it was added."""
        with self.transaction():
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO connections (id, my_did, their_did, state, updated, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (id, my_did, their_did, state, updated, self._seal("connections", id, record)),
            )
        return cur.rowcount > 0

    def records_by_thid(self, thid: str) -> list[dict[str, Any]]:
        """Every protocol record of thread ``thid`` (one per protocol and role), newest first."""
        rows = self._conn.execute(
            "SELECT protocol, thid, role, record FROM protocol_records WHERE thid = ? ORDER BY updated DESC, rowid DESC",
            (thid,),
        ).fetchall()
        return [self._open_protocol_record(r) for r in rows]

    def record_put(
        self, protocol: str, thid: str, role: str, *, state: str, updated: int, record: dict[str, Any]
    ) -> None:
        """Insert or update the state of one protocol instance."""
        with self.transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO protocol_records (protocol, thid, role, state, updated, record, their_did) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (protocol, thid, role, state, updated,
                 self._seal("protocol_records", _protocol_record_key(protocol, thid, role), record),
                 _their_did(record)),
            )

    def records_by_role(self, protocol: str, role: str, limit: int) -> list[dict[str, Any]]:
        """The ``limit`` most recently updated records of one protocol and role, newest first."""
        rows = self._conn.execute(
            # (Times are whole seconds: within one, the later write first; a write
            # replaces its row, so the rowid orders writes.)
            "SELECT protocol, thid, role, record FROM protocol_records WHERE protocol = ? AND role = ? "
            "ORDER BY updated DESC, rowid DESC LIMIT ?",
            (protocol, role, limit),
        ).fetchall()
        return [self._open_protocol_record(r) for r in rows]

    def records_by_state(self, protocol: str, role: str, state: str) -> list[dict[str, Any]]:
        """Every protocol record of one protocol, role and state, oldest update first."""
        rows = self._conn.execute(
            "SELECT protocol, thid, role, record FROM protocol_records WHERE protocol = ? AND role = ? "
            "AND state = ? ORDER BY updated, rowid",
            (protocol, role, state),
        ).fetchall()
        return [self._open_protocol_record(r) for r in rows]

    def records_newest(
        self, protocol: str, match: Callable[[dict[str, Any]], bool], *, limit: int,
        before: tuple[int, int] | None = None, their_dids: Collection[str] | None = None,
    ) -> list[tuple[tuple[int, int], dict[str, Any]]]:
        """The ``limit`` records of ``protocol`` that ``match``, newest first, each with
        its place ``(created_time, rowid)``; only those before ``before`` (the place of
        the previous page's last one) if given.

        Within one second, the rowid keeps the order records were written in (a record
        written once, as a basic message's is, keeps its rowid).  Records are opened
        newest update first, and only until no unopened one can be newer than the page
        found (a record is created before its last update), so a page costs the records
        updated since its oldest entry, not the whole table.  With ``their_dids``, only
        records with one of those peers are opened (and those whose peer column is
        empty: a record without a peer, or one not yet filled, :meth:`fill_record_dids`).
        """
        limit = _limit(limit)
        found: list[tuple[tuple[int, int], dict[str, Any]]] = []
        floor: int | None = None  # the page's oldest created_time, once the page is full
        sql, args = "SELECT rowid, updated FROM protocol_records WHERE protocol = ?", [protocol]
        if their_dids is not None:
            dids = sorted(their_dids)
            sql += f" AND (their_did IS NULL OR their_did IN ({', '.join('?' * len(dids))}))"
            args += dids
        order = self._conn.execute(sql + " ORDER BY updated DESC, rowid DESC", args).fetchall()
        for rowid, updated in order:
            if floor is not None and updated < floor:
                break
            row = self._conn.execute(
                "SELECT protocol, thid, role, record FROM protocol_records WHERE rowid = ?", (rowid,)
            ).fetchone()
            if row is None:
                continue
            record = self._open_protocol_record(row)
            place = (int(record.get("created_time") or 0), int(rowid))
            if (before is not None and place >= before) or not match(record):
                continue
            found.append((place, record))
            if len(found) >= limit:
                found.sort(key=lambda item: item[0], reverse=True)
                del found[limit:]
                floor = found[-1][0][0]
        found.sort(key=lambda item: item[0], reverse=True)
        return found[:limit]

    def record_get(self, protocol: str, thid: str, role: str) -> dict[str, Any] | None:
        """One protocol instance's state: ``{"state", "updated", "record"}``, or None."""
        r = self._conn.execute(
            "SELECT state, updated, record FROM protocol_records WHERE protocol = ? AND thid = ? AND role = ?",
            (protocol, thid, role),
        ).fetchone()
        if r is None:
            return None
        key = _protocol_record_key(protocol, thid, role)
        return {"state": r[0], "updated": r[1], "record": self._open("protocol_records", key, r[2])}

    def record_add(
        self, protocol: str, thid: str, role: str, *, state: str, updated: int, record: dict[str, Any]
    ) -> bool:
        """Insert one protocol instance's state unless it exists (then it is kept); whether it was added."""
        with self.transaction():
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO protocol_records (protocol, thid, role, state, updated, record, their_did) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (protocol, thid, role, state, updated,
                 self._seal("protocol_records", _protocol_record_key(protocol, thid, role), record),
                 _their_did(record)),
            )
        return cur.rowcount > 0

    def credential_put(
        self, id: str, *, issuer: str | None, subject: str | None, created: int, record: dict[str, Any]
    ) -> None:
        """Insert or replace a credential."""
        with self.transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO credentials (id, issuer, subject, created, record) VALUES (?, ?, ?, ?, ?)",
                (id, issuer, subject, created, self._seal("credentials", id, record)),
            )

    def credential_get(self, id: str) -> dict[str, Any] | None:
        """A credential's record, or None."""
        r = self._conn.execute("SELECT record FROM credentials WHERE id = ?", (id,)).fetchone()
        return None if r is None else self._open("credentials", id, r[0])

    def credential_all(self) -> list[dict[str, Any]]:
        """Every stored credential's record, oldest first."""
        rows = self._conn.execute("SELECT id, record FROM credentials ORDER BY created, id").fetchall()
        return [self._open("credentials", r[0], r[1]) for r in rows]

    def credential_delete(self, id: str) -> bool:
        """Forget a credential; False if there was none."""
        with self.transaction():
            cur = self._conn.execute("DELETE FROM credentials WHERE id = ?", (id,))
        return cur.rowcount > 0

    def credential_rows(self) -> list[dict[str, Any]]:
        """Every stored credential with its columns: ``{id, issuer, subject, created, record}``, oldest first."""
        rows = self._conn.execute(
            "SELECT id, issuer, subject, created, record FROM credentials ORDER BY created, id").fetchall()
        return [{"id": r[0], "issuer": r[1], "subject": r[2], "created": r[3],
                 "record": self._open("credentials", r[0], r[4])} for r in rows]

    def credential_add(
        self, id: str, *, issuer: str | None, subject: str | None, created: int, record: dict[str, Any]
    ) -> bool:
        """Insert a credential unless one with this id exists (then it is kept); whether it was added."""
        with self.transaction():
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO credentials (id, issuer, subject, created, record) VALUES (?, ?, ?, ?, ?)",
                (id, issuer, subject, created, self._seal("credentials", id, record)),
            )
        return cur.rowcount > 0

    # -- status lists (daemon.revocation) ---------------------------------------------------

    _LIST_COLUMNS = "uri, issuer, format, n, size, used, updated, statuses, bits"

    @staticmethod
    def _list_row(r: Any) -> StatusListRow:
        return StatusListRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]), r[8])

    def status_list_create(self, row: StatusListRow) -> None:
        """Add a status list of ours (``used`` is counted by :meth:`status_entry_add`)."""
        with self.transaction():
            try:
                self._conn.execute(
                    f"INSERT INTO status_lists ({self._LIST_COLUMNS}) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                    (row.uri, row.issuer, row.format, row.n, row.size, row.updated, row.statuses, row.bits),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"the status list {row.uri} exists already") from None

    def status_list_get(self, uri: str) -> StatusListRow | None:
        """One of our status lists, or None."""
        r = self._conn.execute(f"SELECT {self._LIST_COLUMNS} FROM status_lists WHERE uri = ?", (uri,)).fetchone()
        return None if r is None else self._list_row(r)

    def status_list_current(self, issuer: str, format: str) -> StatusListRow | None:
        """The newest (highest-numbered) list of ``issuer`` for ``format``, or None."""
        r = self._conn.execute(
            f"SELECT {self._LIST_COLUMNS} FROM status_lists WHERE issuer = ? AND format = ? "
            "ORDER BY n DESC LIMIT 1", (issuer, format),
        ).fetchone()
        return None if r is None else self._list_row(r)

    def status_lists_all(self) -> list[StatusListRow]:
        """Every status list of ours, by issuer, format and number."""
        rows = self._conn.execute(
            f"SELECT {self._LIST_COLUMNS} FROM status_lists ORDER BY issuer, format, n").fetchall()
        return [self._list_row(r) for r in rows]

    def status_index_used(self, uri: str, idx: int) -> bool:
        """Whether index ``idx`` of list ``uri`` has been handed out."""
        return self._conn.execute(
            "SELECT 1 FROM status_entries WHERE uri = ? AND idx = ?", (uri, idx)).fetchone() is not None

    def status_used_indexes(self, uri: str) -> set[int]:
        """Every index of list ``uri`` handed out."""
        return {r[0] for r in self._conn.execute("SELECT idx FROM status_entries WHERE uri = ?", (uri,))}

    def status_entry_add(self, uri: str, idx: int, thid: str, *, now: int) -> None:
        """Hand out index ``idx`` of list ``uri`` to thread ``thid`` (status 0, valid).

        An index outside the list, one already handed out, or a full list is a
        :class:`StoreError`: an index is never given to two credentials.
        """
        with self.transaction():
            row = self.status_list_get(uri)
            if row is None:
                raise StoreError(f"no status list {uri}")
            if not 0 <= idx < row.size or row.used >= row.size:
                raise StoreError(f"index {idx} is outside the status list {uri} or the list is full")
            try:
                self._conn.execute(
                    "INSERT INTO status_entries (uri, idx, thid, status, updated) VALUES (?, ?, ?, 0, ?)",
                    (uri, idx, thid, now),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"index {idx} of the status list {uri} is taken") from None
            self._conn.execute("UPDATE status_lists SET used = used + 1 WHERE uri = ?", (uri,))

    _ENTRY_COLUMNS = "uri, idx, thid, credential_id, status, updated"

    def status_entry_by_thid(self, thid: str) -> StatusEntryRow | None:
        """The index handed out to the offer of thread ``thid``, or None."""
        r = self._conn.execute(
            f"SELECT {self._ENTRY_COLUMNS} FROM status_entries WHERE thid = ?", (thid,)).fetchone()
        return None if r is None else StatusEntryRow(*r)

    def status_entry_by_credential(self, credential_id: str) -> StatusEntryRow | None:
        """The index of the credential issued with id ``credential_id``, or None."""
        r = self._conn.execute(
            f"SELECT {self._ENTRY_COLUMNS} FROM status_entries WHERE credential_id = ?", (credential_id,)).fetchone()
        return None if r is None else StatusEntryRow(*r)

    def status_entry_issued(self, thid: str, credential_id: str) -> bool:
        """Name the credential issued in thread ``thid``; False if that offer has no index."""
        with self.transaction():
            cur = self._conn.execute(
                "UPDATE status_entries SET credential_id = ? WHERE thid = ?", (credential_id, thid))
        return cur.rowcount > 0

    def status_entries_by_thids(self, thids: Iterable[str]) -> dict[str, StatusEntryRow]:
        """The indexes handed out to these threads' offers, by thread (threads without one are absent)."""
        wanted = sorted(set(thids))
        out: dict[str, StatusEntryRow] = {}
        for start in range(0, len(wanted), MAX_LIST_LIMIT):
            chunk = wanted[start:start + MAX_LIST_LIMIT]
            marks = ", ".join("?" * len(chunk))
            for r in self._conn.execute(
                    f"SELECT {self._ENTRY_COLUMNS} FROM status_entries WHERE thid IN ({marks})", chunk):
                out[r[2]] = StatusEntryRow(*r)
        return out

    def status_entries_of(self, uri: str) -> list[StatusEntryRow]:
        """Every index of list ``uri`` handed out, by index."""
        return [StatusEntryRow(*r) for r in self._conn.execute(
            f"SELECT {self._ENTRY_COLUMNS} FROM status_entries WHERE uri = ? ORDER BY idx", (uri,))]

    def status_list_restore(self, row: StatusListRow, entries: Iterable[StatusEntryRow]) -> None:
        """Add a list of ours as a backup had it, with every index it handed out (``used``
        is counted from them); a :class:`StoreError` if the list exists or an entry does not fit."""
        with self.transaction():
            self.status_list_create(row)
            self.status_entries_restore(row.uri, entries, row.statuses, now=row.updated, bits=row.bits)

    def status_entries_restore(self, uri: str, entries: Iterable[StatusEntryRow], statuses: bytes, *,
                               now: int, bits: int | None = None) -> int:
        """Add handed-out indexes to list ``uri`` as a backup had them, with the list's entries
        repacked to show their statuses (``bits`` wide, when it changes).  An index outside the list or already handed out is
        a :class:`StoreError` (nothing is written): an index is never given to two credentials.
        Returns how many were added."""
        added = 0
        with self.transaction():
            row = self.status_list_get(uri)
            if row is None:
                raise StoreError(f"no status list {uri}")
            for e in entries:
                if e.uri != uri or not 0 <= e.idx < row.size:
                    raise StoreError(f"index {e.idx} is outside the status list {uri}")
                try:
                    self._conn.execute(
                        f"INSERT INTO status_entries ({self._ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                        (uri, e.idx, e.thid, e.credential_id, e.status, e.updated),
                    )
                except sqlite3.IntegrityError:
                    raise StoreError(f"index {e.idx} of the status list {uri} is taken") from None
                added += 1
            self._conn.execute(
                "UPDATE status_lists SET used = used + ?, statuses = ?, updated = max(updated, ?), "
                "bits = coalesce(?, bits) WHERE uri = ?",
                (added, statuses, now, bits, uri))
        return added

    def status_set(self, uri: str, idx: int, status: int, statuses: bytes, *, now: int,
                   bits: int | None = None) -> None:
        """Record a new status for one index, with the list's entries repacked to say so
        (``bits`` wide, when that changes: a 1-bit list widened for a suspension)."""
        with self.transaction():
            cur = self._conn.execute(
                "UPDATE status_entries SET status = ?, updated = ? WHERE uri = ? AND idx = ?",
                (status, now, uri, idx))
            if cur.rowcount != 1:
                raise StoreError(f"index {idx} of the status list {uri} was never handed out")
            self._conn.execute(
                "UPDATE status_lists SET statuses = ?, updated = ?, bits = coalesce(?, bits) WHERE uri = ?",
                (statuses, now, bits, uri))

    def held_list_put(self, row: HeldStatusListRow) -> None:
        """Keep (or replace) our copy of a status list."""
        with self.transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO held_status_lists (uri, issuer, format, issued_at, fetched_at, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (row.uri, row.issuer, row.format, row.issued_at, row.fetched_at, encode_record(row.record)),
            )

    def held_list_get(self, uri: str) -> HeldStatusListRow | None:
        """Our copy of status list ``uri``, or None."""
        r = self._conn.execute(
            "SELECT uri, issuer, format, issued_at, fetched_at, record FROM held_status_lists WHERE uri = ?",
            (uri,)).fetchone()
        return None if r is None else HeldStatusListRow(r[0], r[1], r[2], r[3], r[4], decode_record(r[5]))

    def held_lists_all(self) -> list[HeldStatusListRow]:
        """Every status list we hold a copy of."""
        rows = self._conn.execute(
            "SELECT uri, issuer, format, issued_at, fetched_at, record FROM held_status_lists ORDER BY uri").fetchall()
        return [HeldStatusListRow(r[0], r[1], r[2], r[3], r[4], decode_record(r[5])) for r in rows]

    # -- inbox -----------------------------------------------------------------------------

    _INBOX_COLUMNS = "seq, ref, msg_id, sender, state, transport, received, packed, record"

    def _inbox_row(self, r: Any) -> InboxRow:
        # What a peer sent, and what it said (the record holds the unpacked message): both sealed.
        return InboxRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], self._open_bytes("inbox.packed", r[1], r[7]),
                        self._open("inbox", r[1], r[8]))

    def inbox_commit(self, ref: str, packed: bytes, *, transport: str, received: int) -> tuple[InboxRow, bool]:
        """Commit an inbound message (durably); returns its row and whether it is new.

        ``ref`` identifies the exact bytes (the caller derives it from their hash);
        committing the same bytes again returns the existing row and ``False``.
        """
        with self.transaction():
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO inbox (ref, state, transport, received, packed, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (ref, INBOX_PENDING, transport, received, self._seal_bytes("inbox.packed", ref, packed),
                 self._seal("inbox", ref, {})),
            )
            if cur.rowcount > 0:
                # (Built, not read back: that would open what was just sealed.)
                assert cur.lastrowid is not None
                return InboxRow(cur.lastrowid, ref, None, None, INBOX_PENDING, transport, received, packed, {}), True
            row = self.inbox_get_ref(ref)
        assert row is not None
        return row, False

    def inbox_insert_received(
        self, ref: str, packed: bytes, *, transport: str, received: int, msg_id: str, sender: str,
        record: dict[str, Any], keep_packed: bool = True,
    ) -> str:
        """Insert an inbound message that is already unpacked, in one write.

        Without ``keep_packed`` the packed bytes are not kept (see :data:`PACKED_NOT_KEPT`).
        Returns :data:`INBOX_INSERTED`; :data:`INBOX_DUPLICATE` if the same bytes are
        here (not rejected) or ``(sender, msg_id)`` was received before (nothing
        written); :data:`INBOX_STORED` if the same bytes are here as rejected (the
        caller accepts that row, :meth:`inbox_accept`).
        """
        with self.transaction():
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO inbox (ref, msg_id, sender, state, transport, received, packed, record) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (ref, msg_id, sender, INBOX_RECEIVED, transport, received,
                 self._seal_bytes("inbox.packed", ref, packed if keep_packed else PACKED_NOT_KEPT),
                 self._seal("inbox", ref, record)),
            )
            if cur.rowcount > 0:
                return INBOX_INSERTED
            r = self._conn.execute("SELECT state FROM inbox WHERE ref = ?", (ref,)).fetchone()
        return INBOX_STORED if r is not None and r[0] == INBOX_REJECTED else INBOX_DUPLICATE

    def inbox_get_ref(self, ref: str) -> InboxRow | None:
        """The inbox row with reference ``ref``."""
        r = self._conn.execute(f"SELECT {self._INBOX_COLUMNS} FROM inbox WHERE ref = ?", (ref,)).fetchone()
        return None if r is None else self._inbox_row(r)

    def inbox_get(self, id: str) -> InboxRow | None:
        """The newest inbox row whose message id (or, failing that, reference) is ``id``."""
        r = self._conn.execute(
            f"SELECT {self._INBOX_COLUMNS} FROM inbox WHERE msg_id = ? ORDER BY seq DESC LIMIT 1", (id,)
        ).fetchone()
        if r is None:
            return self.inbox_get_ref(id)
        return self._inbox_row(r)

    def inbox_accept(
        self, ref: str, *, msg_id: str, sender: str, record: dict[str, Any], keep_packed: bool = True
    ) -> InboxRow | None:
        """Mark a row unpacked (dropping its packed bytes without ``keep_packed``).  If
        ``(sender, msg_id)`` was already received, the new row is dropped and the earlier
        row returned; otherwise None."""
        with self.transaction():
            try:
                with self.transaction():
                    if keep_packed:
                        self._conn.execute(
                            "UPDATE inbox SET msg_id = ?, sender = ?, state = ?, record = ? WHERE ref = ?",
                            (msg_id, sender, INBOX_RECEIVED, self._seal("inbox", ref, record), ref),
                        )
                    else:
                        self._conn.execute(
                            "UPDATE inbox SET msg_id = ?, sender = ?, state = ?, record = ?, packed = ? "
                            "WHERE ref = ?",
                            (msg_id, sender, INBOX_RECEIVED, self._seal("inbox", ref, record),
                             self._seal_bytes("inbox.packed", ref, PACKED_NOT_KEPT), ref),
                        )
            except sqlite3.IntegrityError:
                self._conn.execute("DELETE FROM inbox WHERE ref = ?", (ref,))
                r = self._conn.execute(
                    f"SELECT {self._INBOX_COLUMNS} FROM inbox WHERE sender = ? AND msg_id = ?",
                    (sender, msg_id),
                ).fetchone()
                return self._inbox_row(r)
        return None

    def inbox_reject(self, ref: str, *, record: dict[str, Any]) -> None:
        """Mark a row as not unpackable, with the reason in ``record``."""
        with self.transaction():
            self._conn.execute(
                "UPDATE inbox SET state = ?, record = ? WHERE ref = ?",
                (INBOX_REJECTED, self._seal("inbox", ref, record), ref),
            )

    def message_erase(self, id: str) -> dict[str, int]:
        """Erase message ``id`` (inbound, outbound or both: a message to ourselves), in
        one transaction; how many rows of each kind changed.

        * An inbound row keeps only what deduplication needs (ref, sender, message id)
          as a :data:`INBOX_DELETED` tombstone (:meth:`_erase_inbox`), so a copy of the
          same message arriving again is a duplicate and does not come back.
        * An outbound row is deleted, unless it is being sent right now
          (:class:`DaemonError` ``invalid_state``: the daemon may be writing it to the
          network; it can be erased once it is delivered, failed or queued again).
          A queued one is deleted too: it will not be sent.
        * Its basic-message records (a basic message is its own thread) are deleted.
        * Events about it are erased (:meth:`_erase_events`); only the kinds that name
          a message (:data:`_MESSAGE_EVENT_KINDS`) are opened to look.
        """
        erased = {"inbox": 0, "outbox": 0, "records": 0, "events": 0}
        with self._zeroing(), self.transaction():
            out = self._conn.execute("SELECT state FROM outbox WHERE id = ?", (id,)).fetchone()
            if out is not None and out[0] == OUTBOX_SENDING:
                raise DaemonError(INVALID_STATE, f"message {id} is being sent; erase it once it is "
                                                 "delivered, failed or queued again")
            erased["inbox"] = self._erase_inbox([id])
            erased["outbox"] = self._conn.execute("DELETE FROM outbox WHERE id = ?", (id,)).rowcount
            erased["records"] = self._conn.execute(
                "DELETE FROM protocol_records WHERE protocol = ? AND thid = ?", (BASIC_MESSAGE_PIURI, id)
            ).rowcount
            if any(erased.values()):
                # A message.* event is about the message it names by id; a basic-message
                # event about its thread, which is the message (a reply elsewhere may
                # share the thid, and is another message).
                erased["events"] = self._erase_events(
                    lambda kind, data: "id" if data.get("id") == id
                    else "thid" if kind.startswith("basicmessage.") and data.get("thid") == id else None,
                    id, kinds=_MESSAGE_EVENT_KINDS,
                )
        return erased

    def thread_erase(self, thid: str, message_ids: Iterable[str]) -> dict[str, int]:
        """Erase a protocol thread: its records, the received messages ``message_ids``
        (its records' ``seen_ids``; tombstones, as :meth:`message_erase` leaves) and
        the events about it (any kind naming it by ``thid``, or one of its messages
        by ``id``), in one transaction; how many rows of each kind changed.  Whether a
        thread may go (finished, not needed to revoke a credential) is the caller's
        decision (``Conversations.thread_delete``)."""
        ids = set(message_ids)
        with self._zeroing(), self.transaction():
            erased = {
                "records": self._conn.execute("DELETE FROM protocol_records WHERE thid = ?", (thid,)).rowcount,
                "inbox": self._erase_inbox(sorted(ids)),
            }
            erased["events"] = self._erase_events(
                lambda _kind, data: "thid" if data.get("thid") == thid else "id" if data.get("id") in ids else None,
                thid,
            )
        return erased

    def inbox_prune(self, older_than: int, *, limit: int = PRUNE_BATCH) -> tuple[int, bool]:
        """Erase received messages (as :meth:`message_erase` does: a tombstone each, and
        their basic-message records) that arrived before ``older_than``, looking at no more
        than ``limit`` rows; ``(how many were erased, whether rows are left to look at)``.

        Rows are looked at in insertion order from where the last call stopped (the meta
        record :data:`INBOX_PRUNED_SEQ`), so tombstones are passed once, not every hour,
        and a call stops at the first row that arrived at ``older_than`` or later, or that
        is still pending (a restart unpacks it first).  Events are not opened here: the
        caller prunes the event log by age (:meth:`events_prune_older`).
        """
        erased: list[tuple[str, str | None]] = []
        with self._zeroing(), self.transaction():
            cursor = int(self.meta_get(INBOX_PRUNED_SEQ) or 0)
            rows = self._conn.execute(
                "SELECT seq, ref, msg_id, state, received FROM inbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (cursor, max(1, int(limit))),
            ).fetchall()
            more = len(rows) == max(1, int(limit))
            for seq, ref, msg_id, state, received in rows:
                if received >= older_than or state == INBOX_PENDING:
                    more = False
                    break
                if state != INBOX_DELETED:
                    erased.append((ref, msg_id))
                cursor = seq
            if erased:
                self._tombstone([ref for ref, _ in erased])
                self._conn.executemany(
                    "DELETE FROM protocol_records WHERE protocol = ? AND thid = ? AND role = ?",
                    [(BASIC_MESSAGE_PIURI, msg_id, BASIC_MESSAGE_RECEIVER) for _, msg_id in erased if msg_id],
                )
            if rows:
                self.meta_put(INBOX_PRUNED_SEQ, cursor)  # (a savepoint in this transaction)
        return len(erased), more

    def events_prune_older(self, older_than: str, *, limit: int = EVENTS_PRUNE_BATCH) -> tuple[int, bool]:
        """Delete at most ``limit`` of the oldest events stamped before ``older_than`` (an
        event ``time``), never the newest event (its seq is where numbering goes on after
        a restart); ``(how many, whether more may be left)``."""
        cut, count = None, 0
        with self._event_bytes_kept(), self._zeroing(), self.transaction():
            newest = self._conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
            for seq, time_ in self._conn.execute(
                "SELECT seq, time FROM events WHERE seq < ? ORDER BY seq LIMIT ?",
                (_MAX_SEQ if newest is None else newest, max(1, int(limit))),
            ):
                if time_ >= older_than:
                    break
                cut, count = seq, count + 1
            if cut is not None:
                self._events_drop_through(cut)
        return count, count == max(1, int(limit))

    def _erase_inbox(self, ids: list[str]) -> int:
        """Inbound rows whose message id or reference is in ``ids`` become tombstones:
        state :data:`INBOX_DELETED`, record and packed bytes overwritten; how many."""
        refs = [r[0] for id in ids for r in self._conn.execute(
            "SELECT ref FROM inbox WHERE (msg_id = ? OR ref = ?) AND state != ?", (id, id, INBOX_DELETED)
        ).fetchall()]
        self._tombstone(refs)
        return len(refs)

    def _tombstone(self, refs: list[str]) -> None:
        """Inbound rows ``refs`` keep only what deduplication needs (ref, sender, msg_id)."""
        self._conn.executemany(
            "UPDATE inbox SET state = ?, record = ?, packed = ? WHERE ref = ?",
            [(INBOX_DELETED, self._seal("inbox", ref, {}), self._seal_bytes("inbox.packed", ref, PACKED_NOT_KEPT), ref)
             for ref in refs],
        )

    def _erase_events(self, match: Callable[[str, dict[str, Any]], str | None], value: str, *,
                      kinds: tuple[str, ...] | None = None) -> int:
        """Stored events that ``match(kind, data)`` keep their number, kind and time;
        their data becomes ``{key: value, "deleted": true}``, ``key`` being what
        ``match`` returned (None: not this one).  Only ``kinds`` are opened, if given."""
        sql, args = "SELECT seq, kind, data FROM events", ()
        if kinds is not None:
            sql, args = sql + f" WHERE kind IN ({', '.join('?' * len(kinds))})", kinds
        erased = 0
        for seq, kind, blob in self._conn.execute(sql, args).fetchall():
            key = match(kind, self._open("events", str(seq), blob))
            if key is not None:
                data = self._seal("events", str(seq), {key: value, "deleted": True})
                self._conn.execute("UPDATE events SET data = ?, size = ? WHERE seq = ?", (data, len(data), seq))
                erased += 1
        self._events_bytes = None  # (smaller now: summed again when next needed)
        return erased

    def inbox_pending(self) -> list[InboxRow]:
        """Rows committed but never unpacked (a crash came between)."""
        rows = self._conn.execute(
            # The literal, not a parameter: it is what lets SQLite use the partial index.
            f"SELECT {self._INBOX_COLUMNS} FROM inbox WHERE state = 'pending' ORDER BY seq"
        ).fetchall()
        return [self._inbox_row(r) for r in rows]

    def inbox_list(self, *, limit: int = 50, before: int | None = None) -> list[InboxRow]:
        """Newest first, at most ``limit`` rows, with ``seq < before`` if given (erased
        messages' tombstones are not listed)."""
        sql = f"SELECT {self._INBOX_COLUMNS} FROM inbox WHERE state != ?"
        args: list[Any] = [INBOX_DELETED]
        if before is not None:
            sql += " AND seq < ?"
            args.append(before)
        rows = self._conn.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, _limit(limit))).fetchall()
        return [self._inbox_row(r) for r in rows]

    # -- outbox -----------------------------------------------------------------------------

    _OUTBOX_COLUMNS = (
        "seq, id, to_did, from_did, state, attempts, next_attempt, expires, created, updated, packed, record"
    )

    def _outbox_row(self, r: Any) -> OutboxRow:
        # (``packed`` is encrypted for the recipient already.)
        return OutboxRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], bytes(r[10]),
                         self._open("outbox", r[1], r[11]))

    def outbox_put(
        self, id: str, *, to_did: str, from_did: str | None, packed: bytes, created: int,
        expires: int | None = None, record: dict[str, Any] | None = None,
        state: str = OUTBOX_QUEUED, max_pending: int | None = None,
    ) -> OutboxRow:
        """Queue a packed message (durably) for delivery.

        ``state`` ``sending`` (one attempt counted) is for a message the caller hands
        to the outbox sender itself instead of waiting for a claim; a restart queues
        it again like any message caught mid-send.  With ``max_pending``, a message
        to a DID that already has that many queued or being sent is refused
        (:class:`OutboxFullError`), checked in the same transaction as the insert.
        """
        if state not in (OUTBOX_QUEUED, OUTBOX_SENDING):
            raise StoreError(f"a new outbound message cannot start in state {state!r}")
        with self.transaction():
            if max_pending is not None:
                pending = self.outbox_pending_count(to_did)
                if pending >= max_pending:
                    raise OutboxFullError(to_did, pending, max_pending)
            record = dict(record or {})
            attempts = 1 if state == OUTBOX_SENDING else 0
            try:
                cursor = self._conn.execute(
                    "INSERT INTO outbox (id, to_did, from_did, state, attempts, next_attempt, expires, "
                    "created, updated, packed, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (id, to_did, from_did, state, attempts, created, expires,
                     created, created, packed, self._seal("outbox", id, record)),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"an outbound message with id {id!r} already exists") from None
        # (Built, not read back: the row is exactly what was written.)
        assert cursor.lastrowid is not None
        return OutboxRow(cursor.lastrowid, id, to_did, from_did, state, attempts, created, expires,
                         created, created, packed, record)

    def outbox_get(self, id: str) -> OutboxRow | None:
        """One outbox row, or None."""
        r = self._conn.execute(f"SELECT {self._OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (id,)).fetchone()
        return None if r is None else self._outbox_row(r)

    def outbox_states(self, ids: Sequence[str]) -> dict[str, str]:
        """The delivery state of each of ``ids`` (at most :data:`MAX_LIST_LIMIT`) still in
        the outbox, in one query."""
        ids = list(ids)[:MAX_LIST_LIMIT]
        rows = self._conn.execute(
            f"SELECT id, state FROM outbox WHERE id IN ({', '.join('?' * len(ids))})", ids
        ).fetchall() if ids else []
        return {id: state for id, state in rows}

    def outbox_transition(
        self, id: str, state: str, *, now: int, next_attempt: int | None = None,
        error: str | None = None,
    ) -> OutboxRow:
        """Move a message to ``state`` if :data:`OUTBOX_TRANSITIONS` allows it.

        Moving to ``sending`` counts an attempt; ``next_attempt`` schedules a retry
        (with ``queued``); ``error`` is kept in the record as ``last_error``.
        """
        with self.transaction():
            row = self.outbox_get(id)
            if row is None:
                raise StoreError(f"no outbound message with id {id!r}")
            if state not in OUTBOX_TRANSITIONS.get(row.state, frozenset()):
                raise StoreError(f"outbound message {id!r} cannot go from {row.state} to {state}")
            record = dict(row.record)
            if error is not None:
                record["last_error"] = error
            attempts = row.attempts + (1 if state == OUTBOX_SENDING else 0)
            next_attempt = row.next_attempt if next_attempt is None else next_attempt
            packed = PACKED_NOT_KEPT if state in _OUTBOX_UNSENDABLE else row.packed
            self._conn.execute(
                "UPDATE outbox SET state = ?, attempts = ?, next_attempt = ?, updated = ?, record = ?, "
                "packed = ? WHERE id = ?",
                (state, attempts, next_attempt, now, self._seal("outbox", id, record), packed, id),
            )
        return replace(
            row, state=state, attempts=attempts, next_attempt=next_attempt, updated=now, record=record,
            packed=packed,
        )

    def outbox_delivered(self, id: str, *, now: int) -> tuple[str, int]:
        """``sending`` -> ``delivered`` for message ``id``; its ``(to_did, attempts)``.

        The common case of :meth:`outbox_transition`, once per delivered message,
        without reading and rewriting the row's record; any other starting state
        goes through :meth:`outbox_transition` (and its errors).
        """
        with self.transaction():
            moved = self._conn.execute(
                "UPDATE outbox SET state = ?, updated = ?, packed = ? WHERE id = ? AND state = ?",
                (OUTBOX_DELIVERED, now, PACKED_NOT_KEPT, id, OUTBOX_SENDING),
            ).rowcount
            if moved != 1:
                row = self.outbox_transition(id, OUTBOX_DELIVERED, now=now)
                return row.to_did, row.attempts
            to_did, attempts = self._conn.execute(
                "SELECT to_did, attempts FROM outbox WHERE id = ?", (id,)
            ).fetchone()
        return str(to_did), int(attempts)

    def outbox_expire(self, now: int) -> list[str]:
        """Move pending messages past their ``expires`` time to ``expired``; their ids."""
        with self.transaction():
            ids = [r[0] for r in self._conn.execute(
                f"SELECT id FROM outbox WHERE {_PENDING} AND expires IS NOT NULL AND expires <= ?", (now,),
            ).fetchall()]
            for i in ids:
                self.outbox_transition(i, OUTBOX_EXPIRED, now=now)
        return ids

    def outbox_due(self, now: int, *, limit: int = 50) -> list[OutboxRow]:
        """Claim queued messages whose time has come (they move to ``sending``).

        Messages past their ``expires`` time move to ``expired`` instead.
        """
        with self.transaction():
            self.outbox_expire(now)
            ids = [r[0] for r in self._conn.execute(
                f"SELECT id FROM outbox WHERE {_QUEUED} AND next_attempt <= ? ORDER BY next_attempt, seq "
                "LIMIT ?", (now, _limit(limit))
            ).fetchall()]
            return [self.outbox_transition(i, OUTBOX_SENDING, now=now) for i in ids]

    def outbox_claim(self, now: int, *, limit: int = 50) -> tuple[list[str], list[OutboxRow]]:
        """:meth:`outbox_expire` and :meth:`outbox_due` in one transaction: (expired ids, claimed rows)."""
        with self.transaction():
            expired = self.outbox_expire(now)
            return expired, self.outbox_due(now, limit=limit)

    def outbox_pending_count(self, to_did: str) -> int:
        """How many messages to ``to_did`` are queued or being sent."""
        r = self._conn.execute(
            f"SELECT COUNT(*) FROM outbox WHERE to_did = ? AND {_PENDING}", (to_did,),
        ).fetchone()
        return int(r[0])

    def outbox_waiting_recipients(self, now: int, *, limit: int) -> list[str]:
        """Recipients of queued messages that are not due yet (backing off), at most ``limit``."""
        rows = self._conn.execute(
            f"SELECT DISTINCT to_did FROM outbox WHERE {_QUEUED} AND next_attempt > ? LIMIT ?",
            (now, max(1, int(limit))),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def outbox_due_now(self, to_dids: Iterable[str], now: int) -> int:
        """Queued messages to ``to_dids`` become due at ``now`` (their peer is back); how many."""
        changed = 0
        dids = list(dict.fromkeys(to_dids))
        with self.transaction():
            for start in range(0, len(dids), _DIDS_PER_STATEMENT):
                chunk = dids[start:start + _DIDS_PER_STATEMENT]
                cur = self._conn.execute(
                    f"UPDATE outbox SET next_attempt = ? WHERE {_QUEUED} AND next_attempt > ? "
                    f"AND to_did IN ({', '.join('?' * len(chunk))})",
                    (now, now, *chunk),
                )
                changed += cur.rowcount
        return changed

    def outbox_requeue_sending(self, now: int) -> int:
        """After a restart nothing is being sent: put ``sending`` rows back in the queue."""
        with self.transaction():
            cur = self._conn.execute(
                # (The pending index's condition too: it is searched instead of the box.)
                f"UPDATE outbox SET state = ?, updated = ? WHERE state = ? AND {_PENDING}",
                (OUTBOX_QUEUED, now, OUTBOX_SENDING),
            )
        return cur.rowcount

    def outbox_prune(self, older_than: int, *, limit: int = PRUNE_BATCH) -> int:
        """Delete at most ``limit`` outbound messages in a final state whose last change
        is before ``older_than``; how many.

        Rows are looked at in insertion order and only up to the first one created
        at ``older_than`` or later (a row cannot have changed before it was created),
        so a call costs what it deletes plus the old rows still pending, not the
        whole table; the caller repeats it until it returns less than ``limit``.
        """
        with self.transaction():
            bound = self._conn.execute(
                "SELECT seq FROM outbox WHERE created >= ? ORDER BY seq LIMIT 1", (older_than,)
            ).fetchone()
            cur = self._conn.execute(
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE seq < ? "
                f"AND state IN ({', '.join('?' * len(OUTBOX_FINAL_STATES))}) AND updated < ? "
                "ORDER BY seq LIMIT ?)",
                (_MAX_SEQ if bound is None else bound[0], *OUTBOX_FINAL_STATES, older_than, max(1, int(limit))),
            )
        return int(cur.rowcount)

    def outbox_list(
        self, *, limit: int = 50, before: int | None = None, state: str | None = None
    ) -> list[OutboxRow]:
        """Newest first, optionally only one state."""
        sql = f"SELECT {self._OUTBOX_COLUMNS} FROM outbox WHERE 1 = 1"
        args: list[Any] = []
        if before is not None:
            sql += " AND seq < ?"
            args.append(before)
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        rows = self._conn.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, _limit(limit))).fetchall()
        return [self._outbox_row(r) for r in rows]

    # -- events -------------------------------------------------------------------------------

    def events_append(self, events: Iterable[dict[str, Any]]) -> None:
        """Persist events (each with its ``seq`` already assigned) and prune old ones:
        beyond :data:`EVENTS_KEPT` of them, or :data:`EVENTS_KEPT_BYTES` of data."""
        rows = []
        for e in events:
            data = self._seal("events", str(e["seq"]), e["data"])
            rows.append((e["seq"], e["kind"], e["time"], data, len(data)))
        with self._event_bytes_kept(), self.transaction():
            total = self._events_total()
            inserted = self._conn.executemany(
                "INSERT OR IGNORE INTO events (seq, kind, time, data, size) VALUES (?, ?, ?, ?, ?)", rows
            ).rowcount
            total = total + sum(r[4] for r in rows) if inserted == len(rows) else self._events_total(fresh=True)
            # Pruned EVENTS_PRUNE_BATCH at a time, not one row per flush: each prune
            # rewrites the oldest leaf pages, a write of its own in every commit.
            # Two subqueries: "SELECT MIN(seq), MAX(seq)" in one is a scan of the table
            # (SQLite's min/max look-up serves a query with one of them alone).
            low, high = self._conn.execute(
                "SELECT (SELECT MIN(seq) FROM events), (SELECT MAX(seq) FROM events)"
            ).fetchone()
            cut = None
            if low is not None and high - low >= EVENTS_KEPT + EVENTS_PRUNE_BATCH:
                cut = high - EVENTS_KEPT
            if total > EVENTS_KEPT_BYTES:
                cut = max(cut or low, self._events_cut_for(total - EVENTS_KEPT_BYTES * 9 // 10, high))
            self._events_bytes = total
            if cut is not None:
                self._events_drop_through(cut)

    @contextlib.contextmanager
    def _event_bytes_kept(self) -> Iterator[None]:
        """Around a transaction that changes the event log: if it fails (rolled back),
        the kept byte total is counted again when next needed."""
        try:
            yield
        except BaseException:
            self._events_bytes = None
            raise

    def _events_drop_through(self, cut: int) -> None:
        """Delete the events up to ``cut`` and take their bytes off the kept total."""
        freed = self._conn.execute("SELECT COALESCE(SUM(size), 0) FROM events WHERE seq <= ?", (cut,)).fetchone()[0]
        self._conn.execute("DELETE FROM events WHERE seq <= ?", (cut,))
        self._events_bytes = self._events_total() - int(freed)

    def _events_total(self, *, fresh: bool = False) -> int:
        """Bytes of event data stored, summed once and then kept up to date."""
        if fresh or self._events_bytes is None:
            self._events_bytes = int(self._conn.execute("SELECT COALESCE(SUM(size), 0) FROM events").fetchone()[0])
        return self._events_bytes

    def _events_cut_for(self, excess: int, newest: int) -> int:
        """The seq up to which the oldest events hold ``excess`` bytes (never the newest)."""
        freed, cut = 0, None
        for seq, size in self._conn.execute("SELECT seq, size FROM events WHERE seq < ? ORDER BY seq", (newest,)):
            freed, cut = freed + size, seq
            if freed >= excess:
                break
        return newest - 1 if cut is None else int(cut)

    def events_since(self, seq: int, *, limit: int = MAX_LIST_LIMIT) -> list[dict[str, Any]]:
        """Stored events with a sequence number above ``seq``, oldest first."""
        rows = self._conn.execute(
            "SELECT seq, kind, time, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, _limit(limit)),
        ).fetchall()
        return [{"seq": r[0], "kind": r[1], "time": r[2], "data": self._open("events", str(r[0]), r[3])}
                for r in rows]

    def events_last_seq(self) -> int:
        """The highest stored event sequence number (0 if none)."""
        value = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        return int(value)

    # -- summaries ----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Row counts for ``status``."""
        one = self._conn.execute
        return {
            "dids": one("SELECT COUNT(*) FROM dids WHERE own = 1").fetchone()[0],
            "known_dids": one("SELECT COUNT(*) FROM dids WHERE own = 0").fetchone()[0],
            "keys": one("SELECT COUNT(*) FROM keys").fetchone()[0],
            # (Erased messages' tombstones are not messages any more.)
            "inbox": one(f"SELECT COUNT(*) FROM inbox WHERE state != '{INBOX_DELETED}'").fetchone()[0],
            "inbox_rejected": one(
                "SELECT COUNT(*) FROM inbox WHERE state = 'rejected'"  # (partial index: a literal)
            ).fetchone()[0],
            "outbox_pending": one(
                f"SELECT COUNT(*) FROM outbox WHERE {_PENDING}"
            ).fetchone()[0],
            "outbox": one("SELECT COUNT(*) FROM outbox").fetchone()[0],
        }


def _statements(script: str) -> list[str]:
    # Split a migration script into statements; sqlite3.complete_statement keeps
    # semicolons inside strings or triggers intact.
    out: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        if not current and line.strip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


# -- the trio face --------------------------------------------------------------------------


def _notify_after(
    fn: Callable[[], Any], hook: Callable[[Any], None], token: trio.lowlevel.TrioToken
) -> Callable[[], Any]:
    def call() -> Any:
        result = fn()
        # Non-blocking: the store's thread goes straight on to the COMMIT.
        token.run_sync_soon(hook, result)
        return result

    return call


@dataclass(eq=False)
class _Call:
    """One queued store call and, once its group committed, its outcome."""

    fn: Callable[[], Any]
    durable: bool
    taken: bool = False
    #: For a durable call, the number of its group's commit (see AsyncStore._wait_synced).
    commit: int = 0
    result: outcome.Outcome[Any] | None = None
    done: trio.Event = field(default_factory=trio.Event)


class _StoreThread:
    """The store's own thread: runs one call at a time for the trio task awaiting it.

    ``trio.to_thread.run_sync`` costs ~130 us of CPU per call on the bench machine
    (capacity limiter, thread cache, context copy); a queue and a reschedule, ~60 us.
    Like ``to_thread.run_sync``, a call cannot be abandoned once queued: the
    waiting task is not cancellable until the call returns.
    """

    def __init__(self, name: str = "didcommd-store") -> None:
        self.token = trio.lowlevel.current_trio_token()
        self._jobs: queue.SimpleQueue[
            tuple[Callable[[], Any], Callable[[outcome.Outcome[Any]], None]] | None
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, then = job
            result = outcome.capture(fn)
            try:
                self.token.run_sync_soon(then, result)
            except trio.RunFinishedError:
                return

    def post(self, fn: Callable[[], Any], then: Callable[[outcome.Outcome[Any]], None]) -> None:
        """Run ``fn`` in the thread with nobody waiting; ``then(outcome)`` on the trio thread."""
        self._jobs.put((fn, then))

    async def run(self, fn: Callable[[], _T]) -> _T:
        self._jobs.put((fn, functools.partial(trio.lowlevel.reschedule, trio.lowlevel.current_task())))
        result: _T = await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)
        return result

    def stop(self) -> None:
        self._jobs.put(None)


class AsyncStore:
    """Runs :class:`Store` calls in a worker thread, queued and group-committed.

    ``await store.run(store.sync.inbox_commit, ref, packed, ...)`` returns once the
    call's data is durable (see *Group commit* in the module docstring).  Calls are
    not abandoned on cancellation: a call that was taken into a group finishes and
    its caller gets its result (the cancellation is delivered at the next
    checkpoint), so the caller's view of what is on disk stays true; a call still
    waiting in the queue is withdrawn.
    """

    def __init__(self, store: Store) -> None:
        self.sync = store
        store.sync_explicitly()
        self._queue: deque[_Call] = deque()
        self._writer = trio.Lock()
        self._worker: _StoreThread | None = None
        self._checkpoints: _StoreThread | None = None
        self._closed = False
        #: Durable commits made, and how many of them are known synced to disk.
        self._committed = 0
        self._synced = 0
        self._syncing: trio.Event | None = None
        self._sync_error: str | None = None
        self._since_checkpoint = 0
        self._checkpointing = False
        #: A checkpoint left more than WAL_RESTART_BYTES: the next group first waits
        #: for one that no commit races (_restart_wal).
        self._wal_restart_due = False
        #: Groups committed, those that had to be durable, calls they held, WAL
        #: syncs and checkpoints (for tests and ``status``).
        self.groups = 0
        self.durable_groups = 0
        self.calls = 0
        self.syncs = 0
        self.inline_syncs = 0
        self.checkpoints = 0
        self.wal_restarts = 0
        #: The sync count from which syncs may run inline again (see INLINE_SYNC_MAX_SECONDS);
        #: the first goes to the thread: the disk's speed is not known yet.
        self._inline_syncs_from = SLOW_SYNC_BACKOFF
        #: Moving average of inline syncs' durations (SYNC_AVERAGE_OVER of them).
        self._inline_sync_seconds = 0.0
        #: Asked for one more call before each group runs (the event bus hands
        #: over its unflushed rows, so they share a commit that happens anyway);
        #: the call's outcome goes back to the second function.
        self.ride_along: Callable[[], tuple[Callable[[], Any], Callable[[outcome.Outcome[Any]], None]] | None] | None = None

    @classmethod
    async def open(cls, path: Path) -> AsyncStore:
        """Open and migrate the store in a worker thread."""
        store = await trio.to_thread.run_sync(Store.open, path)
        return cls(store)

    async def run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run ``fn(*args, **kwargs)`` (a method of :attr:`sync`); return once it is durable."""
        result: _T = await self.submit(functools.partial(fn, *args, **kwargs)).wait()
        return result

    async def run_relaxed(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Like :meth:`run`, for writes that need not survive a power loss (no fsync of their own)."""
        result: _T = await self.submit(functools.partial(fn, *args, **kwargs), durable=False).wait()
        return result

    async def read(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run a read-only ``fn`` after every queued write: inline when the store is
        idle (no round trip through its thread), else in the next group."""
        if self._idle():
            return fn(*args, **kwargs)
        return await self.run_relaxed(fn, *args, **kwargs)

    async def durable(self) -> None:
        """Return once every durable commit made so far is on disk (before answering
        from a read what only a durable write may promise)."""
        await self._wait_synced(self._committed)

    def read_if_idle(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T | None:
        """``fn(...)`` inline if no write is queued or running, else None (ask :meth:`read`)."""
        if not self._idle():
            return None
        return fn(*args, **kwargs)

    def stats(self) -> dict[str, int]:
        """Counters for ``status``: commits, those that had to be durable, calls they
        held, WAL fsyncs that made them so (one covers every commit before it), checkpoints;
        and the size on disk of the database file and its WAL."""
        path = self.sync.path
        sizes = {}
        for name, file in (("db_bytes", path), ("wal_bytes", path.with_name(path.name + "-wal"))):
            try:
                sizes[name] = file.stat().st_size
            except OSError:
                sizes[name] = 0
        return {"commits": self.groups, "durable_commits": self.durable_groups, "calls": self.calls,
                "syncs": self.syncs, "inline_syncs": self.inline_syncs, "checkpoints": self.checkpoints,
                "wal_restarts": self.wal_restarts, **sizes}

    def _thread(self) -> _StoreThread:
        token = trio.lowlevel.current_trio_token()
        if self._worker is None or self._worker.token is not token:
            # (A new trio run, e.g. a second trio.run() over the same store.)
            if self._worker is not None:
                self._worker.stop()
            self._worker = _StoreThread()
        return self._worker

    def _checkpoint_thread(self) -> _StoreThread:
        token = trio.lowlevel.current_trio_token()
        if self._checkpoints is None or self._checkpoints.token is not token:
            if self._checkpoints is not None:
                self._checkpoints.post(self.sync.close_checkpointer, lambda _: None)
                self._checkpoints.stop()
            self._checkpoints = _StoreThread("didcommd-checkpoint")
            self._checkpointing = False
        return self._checkpoints

    def _idle(self) -> bool:
        return not self._closed and not self._queue and not self._writer.locked()

    def submit(
        self, fn: Callable[[], Any], *, durable: bool = True,
        on_executed: Callable[[Any], None] | None = None,
    ) -> Pending:
        """Queue a call now (its place in the commit order is fixed); await ``.wait()`` for it.

        Lets a caller release a lock once its write is ordered, before it is durable:
        any later call sees the write (or fails with it if the group fails).
        ``on_executed(result)`` runs on the trio thread as soon as ``fn`` has run
        without error, before its group's COMMIT (not at all if ``fn`` raised).
        """
        if self._closed:
            raise StoreError("the store is closed")
        if on_executed is not None:
            fn = _notify_after(fn, on_executed, trio.lowlevel.current_trio_token())
        call = _Call(fn, durable)
        self._queue.append(call)
        return Pending(self, call)

    async def _drive(self, call: _Call) -> None:
        if not call.taken:
            try:
                # A free writer is taken without a scheduling round (the group's
                # SQL only reaches the page cache, see _run_group).
                await acquire_now(self._writer)
            except trio.Cancelled:
                if not call.taken:
                    self._queue.remove(call)
                    raise
            else:
                try:
                    if not call.taken:
                        if self._wal_restart_due and not self._checkpointing:
                            await self._restart_wal()
                        await self._run_group()
                finally:
                    self._writer.release()
        if call.result is None:
            # Cancelled while another task ran our group: it finishes regardless.
            with trio.CancelScope(shield=True):
                await call.done.wait()
        if call.commit:
            # Committed, so the caller must learn whether it is durable: a sync
            # takes a bounded time, and a reply must never say more than is true.
            with trio.CancelScope(shield=True):
                await self._wait_synced(call.commit)

    async def _run_group(self) -> None:
        group: list[_Call] = []
        while self._queue and len(group) < MAX_GROUP:
            call = self._queue.popleft()
            call.taken = True
            group.append(call)
        if not group:
            return
        if self._closed:
            results: list[outcome.Outcome[Any]] = [
                outcome.Error(StoreError("the store is closed")) for _ in group
            ]
        else:
            fns = [c.fn for c in group]
            extra = self.ride_along() if self.ride_along is not None else None
            if extra is not None:
                fns.append(extra[0])
            # The SQL runs here, on the trio thread: it only writes to the page
            # cache (tens of microseconds); the fsync is _wait_synced's.
            results = self.sync.run_group(fns, lock_wait=False)
            if _busy(results):
                # Another process holds the write lock: wait for it in the thread.
                results = await self._thread().run(functools.partial(self.sync.run_group, fns))
            if extra is not None:
                extra[1](results.pop())
            self.groups += 1
            self.calls += len(group)
            if any(c.durable for c in group):
                self.durable_groups += 1
                self._committed += 1
                for c in group:
                    c.commit = self._committed
            self._since_checkpoint += 1
            if self._since_checkpoint >= CHECKPOINT_EVERY_COMMITS and not self._checkpointing:
                self._start_checkpoint()
        for call, result in zip(group, results, strict=True):
            call.result = result
            call.done.set()

    async def _wait_synced(self, commit: int) -> None:
        """Return once durable commit number ``commit`` is on disk (group fsync)."""
        yielded = False
        while self._synced < commit:
            if self._sync_error is not None:
                raise StoreError(self._sync_error)
            if self._syncing is not None:
                await self._syncing.wait()
                continue
            # This fsync covers every commit made so far, also those of callers
            # now waiting for it.
            inline = self.syncs >= self._inline_syncs_from
            if inline and not yielded and trio.lowlevel.current_statistics().tasks_runnable:
                # Tasks woken by this commit (the sender of a message just
                # queued) go first: the write they start overlaps our fsync.
                yielded = True
                await trio.lowlevel.checkpoint()
                continue
            target = self._committed
            self._syncing = trio.Event()
            try:
                # Inline only when nothing else could run meanwhile; else the
                # thread, and other tasks go on during the fsync.
                if inline and trio.lowlevel.current_statistics().tasks_runnable == 0:
                    took = self.sync.sync_wal()  # a fast disk: see INLINE_SYNC_MAX_SECONDS
                    self.inline_syncs += 1
                    # A moving average: one sync slowed by a busy CPU or a
                    # neighbour's I/O is noise, a slow disk pushes it over at once.
                    self._inline_sync_seconds += (took - self._inline_sync_seconds) / SYNC_AVERAGE_OVER
                    if self._inline_sync_seconds > INLINE_SYNC_MAX_SECONDS:
                        self._inline_syncs_from = self.syncs + 1 + SLOW_SYNC_BACKOFF
                        self._inline_sync_seconds = INLINE_SYNC_MAX_SECONDS / 2
                else:
                    took = await self._thread().run(self.sync.sync_wal)
                    # Only the first (untimed disk) decides from the thread: a
                    # thread's time includes waiting for the GIL back, which on a
                    # busy loop is often longer than the fsync.
                    if self.syncs == 0 and took <= INLINE_SYNC_MAX_SECONDS:
                        self._inline_syncs_from = 1
                self._synced = max(self._synced, target)
                self.syncs += 1
            except OSError as exc:
                # After a failed fsync the kernel may have dropped the pages: nothing
                # since the last good one can be called durable, now or later.
                self._sync_error = f"the store's disk failed to sync ({exc.strerror}); restart the daemon"
                raise StoreError(self._sync_error) from None
            finally:
                self._syncing.set()
                self._syncing = None

    def _start_checkpoint(self) -> None:
        self._checkpointing = True
        self._since_checkpoint = 0

        def finished(result: outcome.Outcome[Any]) -> None:
            self._checkpointing = False
            self.checkpoints += 1
            if isinstance(result, outcome.Value) and result.value > WAL_RESTART_BYTES:
                self._wal_restart_due = True

        self._checkpoint_thread().post(self.sync.checkpoint, finished)

    async def _restart_wal(self) -> None:
        """Checkpoint with the writer lock held, so that it catches up with every
        commit and the next one starts the WAL over (see WAL_RESTART_BYTES)."""
        self._wal_restart_due = False
        self._checkpointing = True
        try:
            await self._checkpoint_thread().run(self.sync.checkpoint)
        finally:
            self._checkpointing = False
        self.checkpoints += 1
        self.wal_restarts += 1

    async def checkpoint_all(self) -> None:
        """Copy every commit so far into the main file and empty the WAL, the writer
        waiting meanwhile: after rewriting rows whose old contents must leave the
        files now (the wallet's first sealing of an older store), not at the next
        checkpoint or at close."""
        async with self._writer:
            self._checkpointing = True
            try:
                await self._checkpoint_thread().run(functools.partial(self.sync.checkpoint, "TRUNCATE"))
            finally:
                self._checkpointing = False
            self.checkpoints += 1

    async def aclose(self) -> None:
        """Close the store after any call in progress."""
        if self._closed:
            return
        async with self._writer:
            self._closed = True
            try:
                if self._checkpoints is not None:
                    # Queued behind a checkpoint in progress, if any.
                    checkpoints = self._checkpoint_thread()
                    await checkpoints.run(self.sync.close_checkpointer)
                    checkpoints.stop()
                await self._thread().run(self.sync.close)
            finally:
                if self._worker is not None:
                    self._worker.stop()


def _busy(results: list[outcome.Outcome[Any]]) -> bool:
    """Whether a group ran nothing because another process held the write lock."""
    return bool(results) and isinstance(results[0], outcome.Error) and isinstance(
        results[0].error, StoreBusyError
    )


class Pending:
    """A queued store call (:meth:`AsyncStore.submit`)."""

    def __init__(self, store: AsyncStore, call: _Call) -> None:
        self._store = store
        self._call = call

    async def wait(self) -> Any:
        """The call's result once its group committed (or its exception)."""
        await self._store._drive(self._call)
        assert self._call.result is not None
        return self._call.result.unwrap()

"""The store as a specification, on real SQLite files in temporary directories."""

from __future__ import annotations

import os
import sqlite3
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from daemon import store as storemod
from daemon.errors import StoreError
from daemon.store import (
    OUTBOX_TRANSITIONS,
    SCHEMA_VERSION,
    DIDRow,
    HeldStatusListRow,
    KeyRow,
    StatusListRow,
    Store,
    decode_record,
    encode_record,
)

from .stores import open_async_store, open_store

TABLES = {
    "meta", "keys", "dids", "did_docs", "connections", "protocol_records", "outbox", "inbox",
    "credentials", "events", "status_lists", "status_entries", "held_status_lists",
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "test.sqlite3")
    yield s
    s.close()


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# -- opening and migrations ----------------------------------------------------------------------


def test_migrates_an_empty_file_and_reopens_without_migrating(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.touch()  # an existing, empty file: schema version 0
    s = open_store(path)
    assert s.schema_version == SCHEMA_VERSION
    assert tables(path) >= TABLES
    assert s.migrate() == 0
    s.meta_put("x", {"kept": True})
    s.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    s = open_store(path)
    try:
        assert s.migrate() == 0
        assert s.meta_get("x") == {"kept": True}
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        s.close()


def test_new_file_is_private(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        open_store(tmp_path / "p.sqlite3").close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p.sqlite3").stat().st_mode) == 0o600


def test_migrations_run_in_order_from_any_older_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.sqlite3"
    open_store(path).close()
    extra = "CREATE TABLE later (x INTEGER);\nINSERT INTO later (x) VALUES (42);"
    monkeypatch.setattr(storemod, "MIGRATIONS", (*storemod.MIGRATIONS, extra))
    monkeypatch.setattr(storemod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    s = open_store(path)
    try:
        assert s.schema_version == SCHEMA_VERSION + 1
        assert s._conn.execute("SELECT x FROM later").fetchone()[0] == 42
    finally:
        s.close()


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.sqlite3"
    open_store(path).close()
    broken = "CREATE TABLE half (x INTEGER);\nINSERT INTO nowhere VALUES (1);"
    monkeypatch.setattr(storemod, "MIGRATIONS", (*storemod.MIGRATIONS, broken))
    monkeypatch.setattr(storemod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="cannot use the store"):
        open_store(path)
    monkeypatch.undo()
    assert "half" not in tables(path)
    s = open_store(path)
    assert s.schema_version == SCHEMA_VERSION
    s.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.sqlite3"
    open_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(StoreError, match="newer than this didcommd"):
        open_store(path)


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        open_store(path)


# -- transactions ----------------------------------------------------------------------------


def test_transactions_roll_back_and_nest(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.meta_put("a", 1)
        raise RuntimeError
    assert store.meta_get("a") is None
    with store.transaction():
        store.meta_put("b", 1)
        with pytest.raises(RuntimeError), store.transaction():
            store.meta_put("c", 1)
            raise RuntimeError
    assert store.meta_get("b") == 1
    assert store.meta_get("c") is None


# -- records ---------------------------------------------------------------------------------

def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=False)
    | st.text(max_size=40) | st.binary(max_size=40),
    _containers,
    max_leaves=25,
)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = open_store(tmp_path_factory.mktemp("shared") / "s.sqlite3")
    yield s
    s.close()


@settings(max_examples=60, deadline=None)
@given(record=st.dictionaries(st.text(max_size=10), json_like, max_size=6), thid=st.text(min_size=1, max_size=20))
def test_cbor_records_round_trip_through_the_file(shared_store: Store, record: dict[str, Any], thid: str) -> None:
    assert decode_record(encode_record(record)) == record
    shared_store.record_put("issue-credential/3.0", thid, "holder", state="offer-received", updated=1, record=record)
    got = shared_store.record_get("issue-credential/3.0", thid, "holder")
    assert got == {"state": "offer-received", "updated": 1, "record": record}
    shared_store.meta_put("prop", record)
    assert shared_store.meta_get("prop") == record


def test_damaged_record_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="damaged"):
        decode_record(b"\xff\xff\xff")


def test_dids_docs_connections_credentials(store: Store) -> None:
    assert store.did_put(DIDRow("did:key:z1", True, "key", "mine", 10, {"kids": ["did:key:z1#a"]}))
    assert not store.did_put(DIDRow("did:key:z1", True, "key", "other", 11, {}))
    assert store.did_put(DIDRow("did:web:example.org", False, "web", None, 12, {}))
    assert [r.did for r in store.did_list()] == ["did:key:z1"]
    assert [r.did for r in store.did_list(own=False)] == ["did:web:example.org"]
    assert len(store.did_list(own=None)) == 2
    row = store.did_get("did:key:z1")
    assert row is not None and row.label == "mine" and row.record == {"kids": ["did:key:z1#a"]}

    store.doc_put("did:web:example.org", {"id": "did:web:example.org"}, 1)
    store.doc_put("did:web:example.org", {"id": "did:web:example.org", "v": 2}, 2)
    assert store.doc_get("did:web:example.org") == {"id": "did:web:example.org", "v": 2}
    assert list(store.docs_all()) == ["did:web:example.org"]

    store.connection_put("c1", my_did="did:key:z1", their_did="did:web:example.org", state="active",
                         updated=3, record={"alias": "bob"})
    conn = store.connection_get("c1")
    assert conn is not None and conn["record"] == {"alias": "bob"} and conn["state"] == "active"
    store.credential_put("urn:uuid:1", issuer="did:web:example.org", subject="did:key:z1", created=4,
                         record={"vc": {"type": ["VerifiableCredential"]}})
    assert store.credential_get("urn:uuid:1") == {"vc": {"type": ["VerifiableCredential"]}}

    assert store.keys_put([KeyRow("did:key:z1#a", "did:key:z1", "Ed25519", 1, b"sealed")]) == 1
    assert store.keys_put([KeyRow("did:key:z1#a", "did:key:z1", "Ed25519", 2, b"other")]) == 0
    assert store.keys_all()[0].sealed == b"sealed"
    counts = store.counts()
    assert (counts["dids"], counts["known_dids"], counts["keys"]) == (1, 1, 1)


# -- inbox ---------------------------------------------------------------------------------


def test_inbox_dedups_exact_bytes_at_commit(store: Store) -> None:
    row, new = store.inbox_commit("in-a", b"packed", transport="libp2p", received=1)
    assert new and row.state == "pending" and row.packed == b"packed" and row.id == "in-a"
    again, new = store.inbox_commit("in-a", b"packed", transport="libp2p", received=2)
    assert not new and again.seq == row.seq and again.received == 1
    assert [r.ref for r in store.inbox_pending()] == ["in-a"]


def test_inbox_dedups_by_sender_and_message_id(store: Store) -> None:
    store.inbox_commit("in-1", b"one", transport="local", received=1)
    assert store.inbox_accept("in-1", msg_id="m1", sender="did:ex:alice", record={"message": {"n": 1}}) is None
    # The same message id from the same sender, in different bytes (re-encrypted): a duplicate.
    store.inbox_commit("in-2", b"two", transport="local", received=2)
    earlier = store.inbox_accept("in-2", msg_id="m1", sender="did:ex:alice", record={"message": {"n": 2}})
    assert earlier is not None and earlier.ref == "in-1" and earlier.record == {"message": {"n": 1}}
    assert store.inbox_get_ref("in-2") is None
    # The same id from someone else is another message; so is an anonymous one.
    store.inbox_commit("in-3", b"three", transport="local", received=3)
    assert store.inbox_accept("in-3", msg_id="m1", sender="did:ex:mallory", record={}) is None
    store.inbox_commit("in-4", b"four", transport="local", received=4)
    assert store.inbox_accept("in-4", msg_id="m1", sender="", record={}) is None
    store.inbox_commit("in-5", b"five", transport="local", received=5)
    assert store.inbox_accept("in-5", msg_id="m1", sender="", record={}) is not None
    assert store.counts()["inbox"] == 3
    got = store.inbox_get("m1")
    assert got is not None and got.ref == "in-4"  # the newest with that id


def test_inbox_keeps_rejected_messages_with_the_reason(store: Store) -> None:
    store.inbox_commit("in-bad", b"garbage", transport="libp2p", received=1)
    store.inbox_reject("in-bad", record={"reason": "not JSON", "problem_code": "e.p.msg.malformed"})
    row = store.inbox_get("in-bad")
    assert row is not None and row.state == "rejected" and row.record["reason"] == "not JSON"
    assert row.packed == b"garbage"
    assert store.inbox_pending() == []
    assert store.counts()["inbox_rejected"] == 1


def test_inbox_list_pages_newest_first(store: Store) -> None:
    for i in range(7):
        store.inbox_commit(f"in-{i}", b"%d" % i, transport="local", received=i)
    first = store.inbox_list(limit=3)
    assert [r.ref for r in first] == ["in-6", "in-5", "in-4"]
    second = store.inbox_list(limit=3, before=first[-1].seq)
    assert [r.ref for r in second] == ["in-3", "in-2", "in-1"]
    assert len(store.inbox_list(limit=10**9)) == 7


# -- outbox -------------------------------------------------------------------------------


def test_outbox_states(store: Store) -> None:
    row = store.outbox_put("o1", to_did="did:ex:bob", from_did="did:ex:alice", packed=b"{}", created=100,
                           record={"type": "t"})
    assert (row.state, row.attempts, row.next_attempt) == ("queued", 0, 100)
    with pytest.raises(StoreError, match="already exists"):
        store.outbox_put("o1", to_did="did:ex:bob", from_did=None, packed=b"{}", created=100)

    assert store.outbox_due(99) == []
    claimed = store.outbox_due(100)
    assert [(r.id, r.state, r.attempts) for r in claimed] == [("o1", "sending", 1)]
    assert store.outbox_due(100) == []  # claimed once

    retry = store.outbox_transition("o1", "queued", now=101, next_attempt=130, error="peer unreachable")
    assert retry.state == "queued" and retry.record == {"type": "t", "last_error": "peer unreachable"}
    assert store.outbox_due(129) == []
    assert [r.attempts for r in store.outbox_due(130)] == [2]
    done = store.outbox_transition("o1", "delivered", now=131)
    assert done.state == "delivered" and done.updated == 131
    with pytest.raises(StoreError, match="cannot go from delivered to queued"):
        store.outbox_transition("o1", "queued", now=132)
    with pytest.raises(StoreError, match="no outbound message"):
        store.outbox_transition("nope", "sending", now=1)
    assert store.counts()["outbox_pending"] == 0


def test_outbox_expiry_and_restart(store: Store) -> None:
    store.outbox_put("late", to_did="did:ex:b", from_did=None, packed=b"1", created=10, expires=20)
    store.outbox_put("busy", to_did="did:ex:b", from_did=None, packed=b"2", created=10)
    store.outbox_due(15, limit=1)  # claims "late" (oldest first)
    assert store.outbox_get("late").state == "sending"  # type: ignore[union-attr]
    # A crash while sending: on restart the message is queued again.
    assert store.outbox_requeue_sending(16) == 1
    claimed = store.outbox_due(25)
    assert [r.id for r in claimed] == ["busy"]
    assert store.outbox_get("late").state == "expired"  # type: ignore[union-attr]
    assert [r.id for r in store.outbox_list(state="expired")] == ["late"]
    assert [r.id for r in store.outbox_list()] == ["busy", "late"]


def test_outbox_transition_table_is_closed() -> None:
    for state, targets in OUTBOX_TRANSITIONS.items():
        assert targets <= set(OUTBOX_TRANSITIONS), state
    terminal = {s for s, t in OUTBOX_TRANSITIONS.items() if not t}
    assert terminal == {"delivered", "failed", "expired"}


# -- events ------------------------------------------------------------------------------


def test_events_keep_their_seq_and_are_pruned(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store.events_last_seq() == 0
    store.events_append([{"seq": i, "kind": "k", "time": "t", "data": {"i": i}} for i in range(1, 6)])
    assert store.events_last_seq() == 5
    assert [e["seq"] for e in store.events_since(2)] == [3, 4, 5]
    assert store.events_since(4)[0] == {"seq": 5, "kind": "k", "time": "t", "data": {"i": 5}}
    monkeypatch.setattr(storemod, "EVENTS_KEPT", 3)
    monkeypatch.setattr(storemod, "EVENTS_PRUNE_BATCH", 3)
    # Up to EVENTS_KEPT + EVENTS_PRUNE_BATCH events may pile up (six here)...
    store.events_append([{"seq": 6, "kind": "k", "time": "t", "data": {}}])
    assert [e["seq"] for e in store.events_since(0)] == [1, 2, 3, 4, 5, 6]
    # ... then the oldest go all at once, down to EVENTS_KEPT.
    store.events_append([{"seq": 7, "kind": "k", "time": "t", "data": {}}])
    assert [e["seq"] for e in store.events_since(0)] == [5, 6, 7]
    store.events_append([{"seq": 8, "kind": "k", "time": "t", "data": {}}])
    assert [e["seq"] for e in store.events_since(0)] == [5, 6, 7, 8]


# -- the trio face ----------------------------------------------------------------------------


async def test_async_store_serializes_calls(tmp_path: Path) -> None:
    s = await open_async_store(tmp_path / "a.sqlite3")
    active = 0
    most = 0
    threads: set[int] = set()

    def work(i: int) -> int:
        nonlocal active, most
        active += 1
        most = max(most, active)
        threads.add(threading.get_ident())
        s.sync.meta_put(f"k{i}", i)
        active -= 1
        return i

    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(s.run, work, i)
    assert most == 1
    # The SQL runs on the trio thread (it only reaches the page cache); the fsync
    # each reply waited for ran elsewhere (test_group_commit).
    assert threads == {threading.get_ident()}
    assert s.syncs >= 1
    assert await s.run(s.sync.meta_get, "k39") == 39
    await s.aclose()
    await s.aclose()
    with pytest.raises(StoreError, match="closed"):
        await s.run(s.sync.meta_get, "k1")


# -- the outbox as a state machine, against a model -------------------------------------------


class OutboxMachine(RuleBasedStateMachine):
    """Random sequences of outbox operations on a real file agree with a dict model."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.store = open_store(Path(self.dir.name) / "o.sqlite3")
        self.now = 1000
        self.model: dict[str, dict[str, Any]] = {}

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    @rule(expires_in=st.none() | st.integers(1, 50))
    def put(self, expires_in: int | None) -> None:
        id = f"m{len(self.model)}"
        expires = None if expires_in is None else self.now + expires_in
        self.store.outbox_put(id, to_did="did:ex:b", from_did=None, packed=b"x", created=self.now, expires=expires)
        self.model[id] = {"state": "queued", "attempts": 0, "next_attempt": self.now, "expires": expires}

    @rule(seconds=st.integers(0, 30))
    def wait(self, seconds: int) -> None:
        self.now += seconds

    def _expire(self) -> None:
        for m in self.model.values():
            if m["state"] in ("queued", "sending") and m["expires"] is not None and m["expires"] <= self.now:
                m["state"] = "expired"

    @rule()
    def due(self) -> None:
        claimed = {r.id for r in self.store.outbox_due(self.now, limit=1000)}
        self._expire()
        expected = {i for i, m in self.model.items() if m["state"] == "queued" and m["next_attempt"] <= self.now}
        assert claimed == expected
        for i in expected:
            self.model[i]["state"] = "sending"
            self.model[i]["attempts"] += 1

    @rule(data=st.data(), target_state=st.sampled_from(sorted(OUTBOX_TRANSITIONS)),
          delay=st.none() | st.integers(0, 20))
    def transition(self, data: st.DataObject, target_state: str, delay: int | None) -> None:
        if not self.model:
            return
        id = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[id]
        next_attempt = None if delay is None else self.now + delay
        if target_state in OUTBOX_TRANSITIONS[m["state"]]:
            row = self.store.outbox_transition(id, target_state, now=self.now, next_attempt=next_attempt)
            m["state"] = target_state
            m["attempts"] += target_state == "sending"
            if next_attempt is not None:
                m["next_attempt"] = next_attempt
            assert row.state == target_state
        else:
            with pytest.raises(StoreError):
                self.store.outbox_transition(id, target_state, now=self.now, next_attempt=next_attempt)

    @rule(data=st.data())
    def delivered(self, data: st.DataObject) -> None:
        # The sender's shortcut for sending -> delivered keeps the table's rules.
        if not self.model:
            return
        id = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[id]
        if "delivered" in OUTBOX_TRANSITIONS[m["state"]]:
            assert self.store.outbox_delivered(id, now=self.now) == ("did:ex:b", m["attempts"])
            m["state"] = "delivered"
        else:
            with pytest.raises(StoreError):
                self.store.outbox_delivered(id, now=self.now)

    @rule()
    def restart(self) -> None:
        self.store.outbox_requeue_sending(self.now)
        for m in self.model.values():
            if m["state"] == "sending":
                m["state"] = "queued"

    @invariant()
    def agrees_with_the_model(self) -> None:
        rows = {r.id: r for r in self.store.outbox_list(limit=1000)}
        assert set(rows) == set(self.model)
        for id, m in self.model.items():
            r = rows[id]
            assert (r.state, r.attempts, r.next_attempt, r.expires) == (
                m["state"], m["attempts"], m["next_attempt"], m["expires"]), id
        pending = sum(m["state"] in ("queued", "sending") for m in self.model.values())
        assert self.store.counts()["outbox_pending"] == pending


OutboxMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
test_outbox_state_machine = OutboxMachine.TestCase


def test_inbox_insert_received_inserts_once_and_dedups_both_ways(store: Store) -> None:
    def put(ref: str, packed: bytes, sender: str, msg_id: str) -> str:
        return store.inbox_insert_received(
            ref, packed, transport="libp2p", received=1, msg_id=msg_id, sender=sender, record={"m": msg_id}
        )

    assert put("in-a", b"a", "did:x", "1") == storemod.INBOX_INSERTED
    row = store.inbox_get_ref("in-a")
    assert row is not None and row.state == storemod.INBOX_RECEIVED and row.record == {"m": "1"}
    # The same bytes again, and other bytes with the same sender and id: nothing written.
    assert put("in-a", b"a", "did:x", "1") == storemod.INBOX_DUPLICATE
    assert put("in-b", b"b", "did:x", "1") == storemod.INBOX_DUPLICATE
    assert store.inbox_get_ref("in-b") is None
    # The same id from another sender is another message.
    assert put("in-c", b"c", "did:y", "1") == storemod.INBOX_INSERTED
    # Bytes kept before as rejected are accepted in place by the caller.
    store.inbox_commit("in-d", b"d", transport="libp2p", received=1)
    store.inbox_reject("in-d", record={"reason": "then unknown"})
    assert put("in-d", b"d", "did:z", "9") == storemod.INBOX_STORED
    assert store.inbox_accept("in-d", msg_id="9", sender="did:z", record={}) is None
    accepted = store.inbox_get_ref("in-d")
    assert accepted is not None and accepted.state == storemod.INBOX_RECEIVED


# -- status lists (revocation) ------------------------------------------------------------------


def _old_file(path: Path, version: int) -> sqlite3.Connection:
    """A store file as didcommd left it at schema ``version`` (use it with ``with``)."""
    conn = sqlite3.connect(path)
    for script in storemod.MIGRATIONS[:version]:
        for statement in storemod._statements(script):
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    return conn


def test_a_version_3_file_gains_the_status_list_tables_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite3"
    with _old_file(path, 3) as conn:
        conn.execute("INSERT INTO credentials (id, issuer, subject, created, record) VALUES (?, ?, ?, ?, ?)",
                     ("c1", "did:key:z", None, 1, encode_record({"id": "c1"})))
    s = open_store(path)
    try:
        assert s.schema_version == SCHEMA_VERSION >= 4
        assert tables(path) >= {"status_lists", "status_entries", "held_status_lists"}
        assert s.seal_legacy_records() == 1  # (what the wallet's unlock does)
        assert s.credential_get("c1") == {"id": "c1"}
        assert s.status_lists_all() == [] and s.held_lists_all() == []
    finally:
        s.close()


def _list(uri: str = "did:key:z/status/sd-jwt/0", n: int = 0, size: int = 16) -> StatusListRow:
    return StatusListRow(uri, "did:key:z", "dc+sd-jwt", n, size, 0, 5, bytes(size // 8))


def test_status_entries_are_handed_out_once_and_counted(store: Store) -> None:
    store.status_list_create(_list())
    with pytest.raises(StoreError, match="exists already"):
        store.status_list_create(_list())
    store.status_entry_add("did:key:z/status/sd-jwt/0", 3, "thread-a", now=10)
    with pytest.raises(StoreError, match="taken"):
        store.status_entry_add("did:key:z/status/sd-jwt/0", 3, "thread-b", now=10)
    with pytest.raises(StoreError, match="outside"):
        store.status_entry_add("did:key:z/status/sd-jwt/0", 16, "thread-b", now=10)
    with pytest.raises(StoreError, match="no status list"):
        store.status_entry_add("did:key:z/status/sd-jwt/9", 1, "thread-b", now=10)
    current = store.status_list_current("did:key:z", "dc+sd-jwt")
    assert current is not None and current.used == 1 and current.n == 0
    assert store.status_index_used(current.uri, 3) and not store.status_index_used(current.uri, 4)
    assert store.status_used_indexes(current.uri) == {3}
    entry = store.status_entry_by_thid("thread-a")
    assert entry is not None and (entry.uri, entry.idx, entry.status) == (current.uri, 3, 0)
    assert store.status_entry_by_thid("thread-b") is None
    assert set(store.status_entries_by_thids(["thread-a", "thread-b"])) == {"thread-a"}
    # Once issued, the entry is found by the credential's id too.
    assert store.status_entry_by_credential("cred-a") is None
    assert store.status_entry_issued("thread-a", "cred-a") and not store.status_entry_issued("thread-b", "cred-b")
    by_id = store.status_entry_by_credential("cred-a")
    assert by_id is not None and (by_id.thid, by_id.idx, by_id.credential_id) == ("thread-a", 3, "cred-a")
    # A revocation changes the entry and the packed list together.
    store.status_set(current.uri, 3, 1, b"\x08\x00", now=20)
    entry = store.status_entry_by_thid("thread-a")
    assert entry is not None and entry.status == 1 and entry.updated == 20
    got = store.status_list_get(current.uri)
    assert got is not None and got.statuses == b"\x08\x00" and got.updated == 20
    with pytest.raises(StoreError, match="never handed out"):
        store.status_set(current.uri, 4, 1, b"\x18\x00", now=20)
    assert store.status_list_get(current.uri).statuses == b"\x08\x00"  # type: ignore[union-attr]


def test_a_version_6_file_keeps_its_status_lists_as_1_bit_lists(tmp_path: Path) -> None:
    """v7 (suspension): each list says its bits; lists from before are 1-bit, their entries
    untouched, and a suspension widens one to 2 bits in the same write as its entry."""
    path = tmp_path / "v6.sqlite3"
    with _old_file(path, 6) as conn:
        conn.execute("INSERT INTO status_lists (uri, issuer, format, n, size, used, updated, statuses) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     ("did:key:z/status/sd-jwt/0", "did:key:z", "dc+sd-jwt", 0, 16, 1, 5, b"\x08\x00"))
        conn.execute("INSERT INTO status_entries (uri, idx, thid, credential_id, status, updated) "
                     "VALUES (?, ?, ?, ?, ?, ?)", ("did:key:z/status/sd-jwt/0", 3, "thread-a", "cred-a", 1, 5))
    s = open_store(path)
    try:
        assert s.schema_version == SCHEMA_VERSION >= 7
        old = s.status_list_get("did:key:z/status/sd-jwt/0")
        assert old == StatusListRow("did:key:z/status/sd-jwt/0", "did:key:z", "dc+sd-jwt", 0, 16, 1, 5,
                                    b"\x08\x00", 1)
        # Widened for a suspension: 2 bits from then on (entry 3 still 1, entry 4 now 2).
        s.status_entry_add(old.uri, 4, "thread-b", now=6)
        s.status_set(old.uri, 4, 2, b"\x40\x02\x00\x00", now=7, bits=2)
        got = s.status_list_get(old.uri)
        assert got is not None and (got.bits, got.statuses, got.used) == (2, b"\x40\x02\x00\x00", 2)
        # A change that does not say its bits keeps them.
        s.status_set(old.uri, 4, 0, b"\x40\x00\x00\x00", now=8)
        assert s.status_list_get(old.uri).bits == 2  # type: ignore[union-attr]
        # New lists say theirs.
        s.status_list_create(StatusListRow("did:key:z/status/sd-jwt/1", "did:key:z", "dc+sd-jwt", 1, 16, 0, 9,
                                           bytes(4), 2))
        assert [r.bits for r in s.status_lists_all()] == [2, 2]
    finally:
        s.close()


def test_a_full_list_refuses_more_entries(store: Store) -> None:
    store.status_list_create(_list(size=8))
    for i in range(8):
        store.status_entry_add("did:key:z/status/sd-jwt/0", i, f"t{i}", now=1)
    with pytest.raises(StoreError, match="full"):
        store.status_entry_add("did:key:z/status/sd-jwt/0", 0, "t9", now=1)
    store.status_list_create(_list("did:key:z/status/sd-jwt/1", n=1, size=8))
    current = store.status_list_current("did:key:z", "dc+sd-jwt")
    assert current is not None and current.n == 1 and current.used == 0
    assert store.status_list_current("did:key:z", "di_vc") is None
    assert [r.n for r in store.status_lists_all()] == [0, 1]


def test_held_lists_are_replaced_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    s = open_store(path)
    s.held_list_put(HeldStatusListRow("u", "did:key:z", "statuslist+jwt", 100, 110, {"document": "a.b.c"}))
    s.held_list_put(HeldStatusListRow("u", "did:key:z", "statuslist+jwt", 200, 210, {"document": "d.e.f"}))
    s.close()
    s = open_store(path)
    try:
        got = s.held_list_get("u")
        assert got is not None and (got.issued_at, got.fetched_at, got.record) == (200, 210, {"document": "d.e.f"})
        assert s.held_list_get("v") is None
        assert [r.uri for r in s.held_lists_all()] == ["u"]
    finally:
        s.close()


def test_records_of_one_second_list_in_the_order_they_were_written(store: Store) -> None:
    # Times are whole seconds; a listing must not shuffle what happened within one.
    for thid in ("b", "a", "c"):
        store.record_put("present-proof/3.0", thid, "verifier", state="request-sent", updated=7, record={"thid": thid})
    store.record_put("present-proof/3.0", "a", "verifier", state="verified", updated=7, record={"thid": "a"})
    assert [r["thid"] for r in store.records_by_role("present-proof/3.0", "verifier", 10)] == ["a", "c", "b"]
    assert [r["thid"] for r in store.records_by_state("present-proof/3.0", "verifier", "request-sent")] == ["b", "c"]


# -- schema v5: fewer pages per message ---------------------------------------------------------


def test_a_version_4_file_keeps_its_messages_and_their_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "v4.sqlite3"
    with monkeypatch.context() as m:
        m.setattr(storemod, "MIGRATIONS", storemod.MIGRATIONS[:4])
        m.setattr(storemod, "SCHEMA_VERSION", 4)
        s = open_store(path)
        try:
            assert s.inbox_insert_received("r1", b"p1", transport="t", received=1, msg_id="m1", sender="did:ex:a",
                                           record={"message": {"n": 1}}) == storemod.INBOX_INSERTED
            s.inbox_commit("r2", b"p2", transport="t", received=2)
            s.inbox_commit("r3", b"p3", transport="t", received=3)
            s.inbox_reject("r3", record={"reason": "bad"})
            s.outbox_put("o1", to_did="did:ex:b", from_did=None, packed=b"x", created=5, record={"k": 1})
        finally:
            s.close()
    s = open_store(path)
    try:
        assert s.schema_version == SCHEMA_VERSION >= 5
        assert [(r.seq, r.ref, r.state) for r in s.inbox_list()] == [(3, "r3", "rejected"), (2, "r2", "pending"),
                                                                      (1, "r1", "received")]
        assert s.inbox_get("m1").record == {"message": {"n": 1}}  # sealed rows still open
        assert [r.ref for r in s.inbox_pending()] == ["r2"]
        assert s.counts()["inbox_rejected"] == 1
        assert s.outbox_get("o1").record == {"k": 1}
        # Deduplication holds across the rebuild.
        assert s.inbox_insert_received("r9", b"p9", transport="t", received=9, msg_id="m1", sender="did:ex:a",
                                       record={}) == storemod.INBOX_DUPLICATE
        assert s.inbox_insert_received("r10", b"p", transport="t", received=9, msg_id="m1", sender="did:ex:b",
                                       record={}) == storemod.INBOX_INSERTED
        assert s._conn.execute(
            "SELECT COUNT(*) FROM sqlite_sequence WHERE name IN ('inbox', 'outbox')").fetchone() == (0,)
        assert s._conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        s.close()


def test_the_hot_paths_search_their_indexes(store: Store) -> None:
    """Every statement a message's way through the boxes and the event log runs
    (traced as SQLite runs it) searches an index, never scans a table: the tables
    grow, these run per message.  ("SELECT MIN(seq), MAX(seq) FROM events" was a
    scan of 10,000 events on every flush: SQLite's min/max look-up serves one alone.)"""
    store.inbox_insert_received("r1", b"p", transport="t", received=1, msg_id="m1", sender="did:ex:a", record={})
    store.inbox_commit("r2", b"p", transport="t", received=1)
    store.outbox_put("o1", to_did="did:ex:b", from_did=None, packed=b"x", created=1)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    try:
        store.inbox_get("m1")
        store.inbox_get_ref("r1")
        store.inbox_insert_received("r3", b"p", transport="t", received=2, msg_id="m1", sender="did:ex:a", record={})
        store.inbox_pending()
        store.outbox_pending_count("did:ex:b")
        store.outbox_claim(10, limit=5)
        store.outbox_delivered("o1", now=11)
        store.outbox_waiting_recipients(10, limit=5)
        store.outbox_due_now(["did:ex:b"], 10)
        store.outbox_requeue_sending(12)
        store.events_append([{"seq": 1, "kind": "k", "time": "t", "data": {}}])
        store.events_append([{"seq": 2, "kind": "k", "time": "t", "data": {}}])
        counts = store.counts()
    finally:
        store._conn.set_trace_callback(None)
    assert counts["inbox_rejected"] == 0 and counts["outbox_pending"] == 0
    assert sum("SUM(size)" in st for st in statements) == 1  # not once a flush
    looked = [st for st in statements if st.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE"))
              and any(table in st for table in ("inbox", "outbox", "events"))]
    assert len(looked) >= 13
    for sql in looked:
        if sql in ("SELECT COUNT(*) FROM inbox WHERE state != 'deleted'", "SELECT COUNT(*) FROM outbox",
                   "SELECT COALESCE(SUM(size), 0) FROM events"):
            # (status counts every row: that is what it asks; the event log's size is
            # summed once, at the first flush, and then kept up to date)
            continue
        plan = [r[3] for r in store._conn.execute("EXPLAIN QUERY PLAN " + sql)]
        # A partial index holds only the rows asked for: scanning it is the search.
        scans = [step for step in plan if step.startswith("SCAN") and step != "SCAN CONSTANT ROW"]
        assert all("USING" in step for step in scans), (sql, plan)


def test_a_version_7_file_gets_its_records_peer_dids_once(tmp_path: Path) -> None:
    """v8: a protocol record's peer DID has a column, filled for rows from before at the
    first unlock (once); a conversation's page then opens only that peer's records."""
    path = tmp_path / "v7.sqlite3"
    bm = "https://didcomm.org/basicmessage/2.0"
    with _old_file(path, 7) as conn:
        for n, peer in enumerate(["did:ex:bob", "did:ex:carol", "did:ex:bob"]):
            conn.execute("INSERT INTO protocol_records (protocol, thid, role, state, updated, record) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (bm, f"t{n}", "sender", "sent", n, encode_record(
                             {"thid": f"t{n}", "their_did": peer, "created_time": n})))
        conn.execute("INSERT INTO protocol_records (protocol, thid, role, state, updated, record) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (bm, "t9", "sender", "sent", 9, encode_record({"thid": "t9"})))
    s = open_store(path)
    try:
        assert s.schema_version == SCHEMA_VERSION >= 8
        assert s.seal_legacy_records() == 4  # (what the wallet's unlock does, then this:)
        # A damaged record is skipped, not fatal: the daemon must start (reading it says why).
        s._conn.execute("INSERT INTO protocol_records (protocol, thid, role, state, updated, record) "
                        "VALUES (?, 'tX', 'sender', 'sent', 0, x'00112233')", (bm,))
        assert s.fill_record_dids() == 3
        assert s.fill_record_dids() == 0  # once
        columns = dict(s._conn.execute("SELECT thid, their_did FROM protocol_records").fetchall())
        assert columns == {"t0": "did:ex:bob", "t1": "did:ex:carol", "t2": "did:ex:bob", "t9": None, "tX": None}
        s._conn.execute("DELETE FROM protocol_records WHERE thid = 'tX'")
        # New writes fill it themselves.
        s.record_put(bm, "t3", "receiver", state="received", updated=10,
                     record={"thid": "t3", "their_did": "did:ex:carol", "created_time": 10})
        assert s._conn.execute("SELECT their_did FROM protocol_records WHERE thid = 't3'").fetchone() == ("did:ex:carol",)
        opened: list[str] = []

        def bob(record: dict[str, Any]) -> bool:
            opened.append(record["thid"])
            return record.get("their_did") == "did:ex:bob"

        page = s.records_newest(bm, bob, limit=10, their_dids={"did:ex:bob"})
        assert [r["thid"] for _, r in page] == ["t2", "t0"]
        assert sorted(opened) == ["t0", "t2", "t9"]  # not carol's (t9 has no peer: opened, not matched)
    finally:
        s.close()

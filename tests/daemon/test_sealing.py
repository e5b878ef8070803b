"""Personal records sealed at rest (daemon.sealing, Store's sealed columns, the wallet's unlock).

The store file and its WAL are read as raw bytes: what people said or were
given must not be in them, while the daemon reads it all back.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import nacl.utils
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon import store as storemod
from daemon import wallet as walletlib
from daemon.agent import open_agent
from daemon.errors import StoreError
from daemon.sealing import EPOCH_SALT_BYTES, KEY_BYTES, SEALED_PREFIX, SEALS_PER_EPOCH, RecordSealer
from daemon.store import SEAL_BATCH_ROWS, Store, encode_record

from .conftest import Daemon
from .stores import open_store
from .test_conversations import make_config
from .test_e2e_credentials import VCT
from .test_e2e_protocols import connect, events
from .test_two_daemons import ctl_json, wait_until

SECRET = "Bob-1999-04-01-secret-claim"


def raw_bytes(path: Path) -> bytes:
    """The store file and whatever WAL it has, as bytes."""
    out = b""
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            out += p.read_bytes()
    return out


def fill(s: Store) -> None:
    """One row of every personal kind, each holding SECRET."""
    s.connection_put("c1", my_did="did:ex:me", their_did="did:ex:you", state="active", updated=1,
                     record={"label": SECRET})
    s.record_put("issue-credential/3.0", "t1", "holder", state="done", updated=1, record={"claims": SECRET})
    s.credential_put("cred1", issuer="did:ex:i", subject=None, created=1, record={"sd_jwt": SECRET})
    s.inbox_commit("ref1", b'{"ciphertext": "' + SECRET.encode() + b'"}', transport="test", received=1)
    s.inbox_accept("ref1", msg_id="m1", sender="did:ex:you", record={"message": {"body": SECRET}})
    s.outbox_put("o1", to_did="did:ex:you", from_did=None, packed=b"{}", created=1, record={"note": SECRET})
    s.events_append([{"seq": 1, "kind": "message.received", "time": "t", "data": {"text": SECRET}}])


def read_all(s: Store) -> None:
    conn = s.connection_get("c1")
    assert conn is not None and conn["record"] == {"label": SECRET}
    assert s.records_by_thid("t1") == [{"claims": SECRET}]
    assert s.credential_get("cred1") == {"sd_jwt": SECRET}
    row = s.inbox_get("m1")
    assert row is not None and SECRET.encode() in row.packed and row.record == {"message": {"body": SECRET}}
    out = s.outbox_get("o1")
    assert out is not None and out.record == {"note": SECRET}
    assert s.events_since(0)[0]["data"] == {"text": SECRET}


def test_personal_records_are_sealed_in_the_file_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    s = open_store(path)
    try:
        fill(s)
        read_all(s)
        assert SECRET.encode() not in raw_bytes(path)
    finally:
        s.close()
    assert SECRET.encode() not in raw_bytes(path)
    # What stays readable is what the store searches by.
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT sender, msg_id FROM inbox").fetchall() == [("did:ex:you", "m1")]
        blobs = db.execute("SELECT record FROM credentials").fetchall()
    assert bytes(blobs[0][0]).startswith(SEALED_PREFIX)


def test_without_the_wallet_the_store_refuses_personal_records(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "locked.sqlite3")
    try:
        s.meta_put("x", 1)  # not personal: fine
        with pytest.raises(StoreError, match="wallet, which is not unlocked"):
            s.credential_put("c", issuer=None, subject=None, created=1, record={})
    finally:
        s.close()


def test_another_key_a_moved_record_or_a_record_in_the_clear_does_not_open(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    s = open_store(path)
    fill(s)
    s.credential_put("cred2", issuer="did:ex:i", subject=None, created=2, record={"sd_jwt": "other"})
    s.close()
    # Another wallet's key.
    other = Store.open(path)
    other.use_sealer(RecordSealer(nacl.utils.random(KEY_BYTES)))
    with pytest.raises(StoreError, match="does not decrypt"):
        other.credential_get("cred1")
    other.close()
    # A record copied onto another row; a record written in the clear behind our back.
    with sqlite3.connect(path) as db:
        db.execute("UPDATE credentials SET record = (SELECT record FROM credentials WHERE id = 'cred1') "
                   "WHERE id = 'cred2'")
        db.execute("UPDATE connections SET record = ? WHERE id = 'c1'", (encode_record({"label": "forged"}),))
    s = open_store(path)
    try:
        assert s.credential_get("cred1") == {"sd_jwt": SECRET}
        with pytest.raises(StoreError, match="does not decrypt"):
            s.credential_get("cred2")
        with pytest.raises(StoreError, match="unknown format"):
            s.connection_get("c1")
    finally:
        s.close()


@settings(max_examples=60, deadline=None)
@given(blob=st.binary(max_size=200), table=st.sampled_from(["inbox", "credentials", "events"]),
       key=st.text(max_size=20))
def test_any_bytes_open_only_as_a_typed_error(blob: bytes, table: str, key: str) -> None:
    sealer = RecordSealer(nacl.utils.random(KEY_BYTES))
    with pytest.raises(StoreError):
        sealer.open(table, key, blob)
    sealed = sealer.seal(table, key, blob)
    assert sealer.open(table, key, sealed) == blob
    for i in range(len(sealed)):  # any single changed byte is refused
        damaged = bytearray(sealed)
        damaged[i] ^= 0x01
        with pytest.raises(StoreError):
            sealer.open(table, key, bytes(damaged))


def test_each_epoch_seals_under_its_own_key_and_every_epoch_opens() -> None:
    key = nacl.utils.random(KEY_BYTES)
    sealer = RecordSealer(key)
    first = sealer.seal("events", "1", b"one")
    sealer._seals = SEALS_PER_EPOCH  # (as after that many seals)
    second = sealer.seal("events", "2", b"two")
    salt = slice(len(SEALED_PREFIX), len(SEALED_PREFIX) + EPOCH_SALT_BYTES)
    assert first[salt] != second[salt]
    assert sealer.seal("events", "3", b"three")[salt] == second[salt]
    # Another sealer over the same data key (the next daemon run) opens both epochs.
    later = RecordSealer(key)
    assert later.open("events", "1", first) == b"one" and later.open("events", "2", second) == b"two"
    forged = first[: salt.start] + second[salt] + first[salt.stop:]  # another epoch's salt
    with pytest.raises(StoreError, match="does not decrypt"):
        later.open("events", "1", forged)


def _legacy_store(path: Path, *, schema: bool = True) -> None:
    """A store as a version from before sealing left it: every personal record in the clear."""
    with sqlite3.connect(path) as db:
        if schema:
            for script in storemod.MIGRATIONS:
                for statement in storemod._statements(script):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {storemod.SCHEMA_VERSION}")
        rec = encode_record
        db.execute("INSERT INTO connections VALUES ('c1', 'did:ex:me', 'did:ex:you', 'active', 1, ?)",
                   (rec({"label": SECRET}),))
        db.execute("INSERT INTO protocol_records (protocol, thid, role, state, updated, record) VALUES ('issue-credential/3.0', 't1', 'holder', 'done', 1, ?)",
                   (rec({"claims": SECRET}),))
        db.execute("INSERT INTO credentials VALUES ('cred1', 'did:ex:i', NULL, 1, ?)", (rec({"sd_jwt": SECRET}),))
        db.execute("INSERT INTO inbox (ref, msg_id, sender, state, transport, received, packed, record) "
                   "VALUES ('ref1', 'm1', 'did:ex:you', 'received', 'test', 1, ?, ?)",
                   (b'{"ciphertext": "' + SECRET.encode() + b'"}', rec({"message": {"body": SECRET}})))
        db.execute("INSERT INTO outbox (id, to_did, state, next_attempt, created, updated, packed, record) "
                   "VALUES ('o1', 'did:ex:you', 'queued', 1, 1, 1, x'7b7d', ?)", (rec({"note": SECRET}),))
        db.execute("INSERT INTO events (seq, kind, time, data) VALUES (1, 'message.received', 't', ?)", (rec({"text": SECRET}),))
        # Many more rows than one batch, so the pass pages through them.
        db.executemany("INSERT INTO events (seq, kind, time, data) VALUES (?, 'x', 't', ?)",
                       [(i, rec({"n": i, "text": SECRET})) for i in range(2, storemod.SEAL_BATCH_ROWS * 2 + 7)])


def test_the_first_unlock_seals_what_an_older_version_left_in_the_clear(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _legacy_store(path)
    assert SECRET.encode() in raw_bytes(path)
    key_file = tmp_path / "wallet.key"
    s = Store.open(path)
    try:
        walletlib.unlock(s, passphrase=None, key_file=key_file)
        read_all(s)
        events = s.events_since(0) + s.events_since(storemod.MAX_LIST_LIMIT)
        assert [e["seq"] for e in events] == list(range(1, storemod.SEAL_BATCH_ROWS * 2 + 7))
        assert s.seal_legacy_records() == 0  # once only
    finally:
        s.close()
    # Not in the rows, nor in the pages they left (secure_delete), nor in the WAL.
    assert SECRET.encode() not in raw_bytes(path)
    s = Store.open(path)
    try:
        walletlib.unlock(s, passphrase=None, key_file=key_file, create=False)
        read_all(s)
    finally:
        s.close()


async def test_an_agent_opening_an_older_store_seals_it_and_empties_the_files_at_once(tmp_path: Path) -> None:
    # An older version's state: a wallet, and personal records in the clear.
    config = make_config(tmp_path)
    state = config.daemon.state_dir
    state.mkdir(parents=True)
    path = state / storemod.DB_FILE_NAME
    s = Store.open(path)
    walletlib.unlock(s, passphrase=None, key_file=config.wallet.key_file)
    s.close()
    with sqlite3.connect(path) as db:  # (as if that unlock had been an older version's)
        db.execute("DELETE FROM meta WHERE name = 'records_sealed'")
    _legacy_store(path, schema=False)
    assert SECRET.encode() in raw_bytes(path)
    async with open_agent(config) as agent:
        # While it runs, not only after it closed (then the WAL is folded in anyway).
        assert SECRET.encode() not in raw_bytes(path)
        got = await agent.store.read(agent.store.sync.credential_get, "cred1")
        assert got == {"sd_jwt": SECRET}
        assert agent.wallet.sealed_at_unlock > SEAL_BATCH_ROWS


def test_a_damaged_legacy_record_stops_the_pass_and_nothing_is_half_sealed(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _legacy_store(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE credentials SET record = x'ffff' WHERE id = 'cred1'")
    s = open_store(path)
    try:
        with pytest.raises(StoreError, match="damaged"):
            s.seal_legacy_records()
        with sqlite3.connect(path) as db:
            firsts: list[Any] = db.execute("SELECT substr(record, 1, 1) FROM connections").fetchall()
        assert firsts == [(b"\xa1",)]  # still the plain CBOR map: the whole pass rolled back
    finally:
        s.close()


# -- real daemons ---------------------------------------------------------------------------

CHAT = "meet-me-at-the-usual-place-7731"
NAME = "Zebulon-Quixote-4412"


def state_bytes(d: Daemon) -> bytes:
    """Every file in a daemon's state directory (store, WAL, shared memory), as bytes."""
    return b"".join(p.read_bytes() for p in sorted(d.state_dir.iterdir()) if p.is_file())


def test_what_two_daemons_exchange_is_sealed_in_their_state_files(daemon_factory: Any) -> None:
    issuer: Daemon = daemon_factory()
    holder: Daemon = daemon_factory()
    i_conn, h_to_i, _ = connect(issuer, holder)
    ctl_json(issuer, "chat", i_conn, CHAT)
    wait_until("the chat", lambda: events(holder, "basicmessage.received"))
    offer = ctl_json(issuer, "credential", "offer", i_conn, "--type", VCT, "--claim", f"given_name={NAME}",
                     "--wait", "0")
    wait_until("the offer", lambda: [p for p in ctl_json(holder, "credential", "pending")["pending"]
                                     if p["thid"] == offer["thid"]])
    got = ctl_json(holder, "credential", "accept", offer["thid"], "--wait", "30")
    assert got["state"] == "credential-received", got
    # The daemons read it all back...
    assert ctl_json(holder, "credential", "list")["credentials"][0]["claims"] == {"given_name": NAME}
    assert events(holder, "basicmessage.received")[0]["data"]["content"] == CHAT
    assert h_to_i in [c["id"] for c in ctl_json(holder, "connections")["connections"]]
    # ...while their files, running and stopped, hold none of it.
    for d in (issuer, holder):
        assert NAME.encode() not in state_bytes(d) and CHAT.encode() not in state_bytes(d)
        assert d.stop() == 0
        assert NAME.encode() not in state_bytes(d) and CHAT.encode() not in state_bytes(d)
    # And a restarted daemon still reads its sealed records.
    holder.start()
    assert ctl_json(holder, "credential", "list")["credentials"][0]["claims"] == {"given_name": NAME}

"""Connections as stored, and the driver under random input from a connected peer."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.agent import Agent
from daemon.connections import Connection
from protocols.envelope import pack_encrypted
from protocols.errors import DIDCommError
from protocols.framework import states_of

from .test_conversations import Wire, connect, make_config

dids = st.sampled_from([f"did:example:{i}" for i in range(4)])
connections = st.builds(
    Connection,
    id=st.uuids().map(str),
    label=st.none() | st.text(min_size=1, max_size=20),
    state=st.sampled_from(["requested", "active"]),
    role=st.sampled_from(["inviter", "invitee"]),
    my_did=dids,
    their_did=dids,
    created=st.integers(0, 2**40),
    updated=st.integers(0, 2**40),
    their_doc=st.none() | st.just({"id": "did:example:1"}),
    invitation_id=st.none() | st.text(min_size=1, max_size=8),
    my_next_did=st.none() | dids,
    my_retired=st.lists(dids, max_size=3).map(tuple),
    their_retired=st.lists(dids, max_size=3).map(tuple),
)


@given(connections)
def test_a_connection_survives_its_stored_form(c: Connection) -> None:
    row = {"id": c.id, "my_did": c.my_did, "their_did": c.their_did, "state": c.state,
           "updated": c.updated, "record": c.record()}
    assert Connection.from_row(row) == c


async def test_connections_survive_a_restart(tmp_path: Path) -> None:
    alice = await Agent.open(make_config(tmp_path / "alice"))
    bob = await Agent.open(make_config(tmp_path / "bob"))
    try:
        _, b_conn = await connect(alice, bob, Wire(alice, bob))
        before = await bob.conversations.connections.get(b_conn)
        await bob.aclose()
        bob = await Agent.open(make_config(tmp_path / "bob"))
        assert await bob.conversations.connections.get(b_conn) == before
    finally:
        await alice.aclose()
        await bob.aclose()


BASE = "https://didcomm.org/"
TYPES = [
    BASE + "trust-ping/2.0/ping", BASE + "trust-ping/2.0/ping-response", BASE + "trust-ping/2.3/ping",
    BASE + "trust-ping/3.0/ping", BASE + "discover-features/2.0/queries",
    BASE + "discover-features/2.0/disclose", BASE + "basicmessage/2.0/message",
    BASE + "out-of-band/2.0/invitation", BASE + "report-problem/2.0/problem-report",
    BASE + "empty/1.0/empty", BASE + "nothing/1.0/here", "not a uri",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(["response_requested", "queries", "disclosures", "content", "code",
                                     "comment", "args", "goal"]), json_values, max_size=3),
    st.just({"queries": [{"feature-type": "protocol", "match": "*"}]}),
    st.just({"content": "hi"}),
    st.just({"code": "e.p.xfer"}),
)
messages = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES), "body": bodies},
    optional={"thid": st.sampled_from(["t1", "t2"]), "pthid": st.sampled_from(["t1", "t3"]),
              "please_ack": st.just([""]), "expires_time": st.integers(0, 2**33)},
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(messages, min_size=1, max_size=6))
def test_random_messages_from_a_peer_never_crash_the_driver(tmp_path: Path, sequence: list[dict[str, Any]]) -> None:
    async def run() -> None:
        # A fresh directory per example: hypothesis reuses tmp_path, and id(sequence)
        # was recycled between examples (a later run met an earlier run's connection).
        root = Path(tempfile.mkdtemp(prefix="run-", dir=tmp_path))
        alice = await Agent.open(make_config(root / "alice"))
        bob = await Agent.open(make_config(root / "bob"))
        try:
            wire = Wire(alice, bob)
            a_conn, b_conn = await connect(alice, bob, wire)
            b = await bob.conversations.connections.get(b_conn)
            for i, fields in enumerate(sequence):
                message = {"id": f"m{i}", "from": b.my_did, "to": [b.their_did], **fields}
                try:
                    packed = pack_encrypted(message, b.their_did, frm=b.my_did, resolver=bob.resolver,
                                            secrets=bob.wallet).packed
                except DIDCommError:  # our own packer refusing it (not a plaintext) is fine
                    continue
                result = await alice.message_receive(packed)
                assert result["state"] in ("received", "rejected", "duplicate")
                await wire.pump(rounds=20)
            dispatcher = alice.conversations.dispatcher
            for thid in {"t1", "t2", "t3", *(f"m{i}" for i in range(len(sequence)))}:
                for raw in await alice.store.run(alice.store.sync.records_by_thid, thid):
                    machine = dispatcher.machine_for(raw["protocol"])
                    assert raw["state"] in states_of(machine.TRANSITIONS, raw["role"])
            assert (await alice.conversations.connections.get(a_conn)).state == "active"
        finally:
            await alice.aclose()
            await bob.aclose()

    trio.run(run)


# -- the book's indexes answer what a look at every connection would ----------------------------

_DIDS = st.sampled_from(["did:ex:a", "did:ex:b", "did:ex:c", "did:ex:d"])
_CONN = st.builds(
    lambda id, theirs, mine, nxt, their_retired, my_retired: Connection(
        id=id, label=None, state="active", role="inviter", my_did=mine, their_did=theirs, created=0, updated=0,
        my_next_did=nxt, my_retired=tuple(my_retired), their_retired=tuple(their_retired)),
    st.sampled_from(["c1", "c2", "c3", "c4"]), _DIDS, _DIDS, st.one_of(st.none(), _DIDS),
    st.lists(_DIDS, max_size=2), st.lists(_DIDS, max_size=2),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.one_of(_CONN, st.sampled_from(["c1", "c2", "c3", "c4"])), max_size=12))
def test_the_books_did_indexes_answer_as_a_full_scan(ops: list[Connection | str]) -> None:
    """Whatever connections come, change (a rotation) and go: for_pair, by_their_did and
    refusal answer exactly as looking at every connection in the book's order would."""
    from daemon.connections import ConnectionBook
    from tests.daemon.stores import open_async_store

    dids = [None, "did:ex:a", "did:ex:b", "did:ex:c", "did:ex:d"]

    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            store = await open_async_store(Path(tmp) / "s.sqlite3")
            try:
                book = ConnectionBook(store)
                model: dict[str, Connection] = {}
                for op in ops:
                    if isinstance(op, Connection):
                        await book.cache(op)
                        model[op.id] = op
                    elif op in model:
                        await book.delete(op)
                        del model[op]
                    for their in dids:
                        for mine in dids:
                            want = next((c for c in model.values() if their is not None and c.their_did == their
                                         and (mine is None or c.pairing.accepts_to(mine))), None)
                            assert await book.for_pair(their, mine) == want
                            reason = next((r for c in model.values()
                                           if (r := c.pairing.refuses(sender=their, recipient=mine))), None)
                            assert await book.refusal(sender=their, recipient=mine) == reason
                        if their is not None:
                            assert await book.by_their_did(their) == [c for c in model.values()
                                                                       if c.their_did == their]
            finally:
                await store.aclose()

    trio.run(run)

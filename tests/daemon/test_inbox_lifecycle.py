"""The inbox as a state machine (hypothesis): any interleaving of receiving, refusing,
accepting after a restart, erasing and pruning by age keeps its promises, on a real
SQLite file.

- a message is taken once per (sender, message id): a copy is a duplicate, also
  after the message was erased (its tombstone remembers it);
- an erased message is gone from listings and keeps nothing but its keys;
- counts in ``status`` are the messages listed;
- pruning by age (``[store] keep_received``) erases exactly the rows received before the
  cut, in order, up to the first one still pending, in batches of any size, and never
  looks at a row twice.
"""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from daemon.store import (
    INBOX_DELETED,
    INBOX_DUPLICATE,
    INBOX_INSERTED,
    INBOX_PENDING,
    INBOX_RECEIVED,
    INBOX_REJECTED,
    PACKED_NOT_KEPT,
    Store,
)
from tests.daemon.stores import open_store

SENDERS = st.sampled_from(["did:ex:alice", "did:ex:bob", ""])
IDS = st.sampled_from(["m1", "m2", "m3"])


class Inbox(RuleBasedStateMachine):
    @initialize()
    def open(self) -> None:
        self._dir = TemporaryDirectory()
        self.store: Store = open_store(Path(self._dir.name) / "inbox.sqlite3")
        self.n = 0
        #: ref -> expected state; (sender, msg_id) -> ref of the row holding it.
        self.state: dict[str, str] = {}
        self.taken: dict[tuple[str, str], str] = {}
        #: The number of the last row pruning has passed (a ref's number is its seq's
        #: order and its ``received`` time).
        self.pruned_through = 0

    def teardown(self) -> None:
        self.store.close()
        self._dir.cleanup()

    def _ref(self) -> str:
        self.n += 1
        return f"r{self.n}"

    @rule(sender=SENDERS, msg_id=IDS, signed=st.booleans())
    def receive(self, sender: str, msg_id: str, signed: bool) -> None:
        ref = self._ref()
        got = self.store.inbox_insert_received(ref, b"packed-" + ref.encode(), transport="t", received=self.n,
                                               msg_id=msg_id, sender=sender, record={"message": {"id": msg_id}},
                                               keep_packed=signed)
        if (sender, msg_id) in self.taken:
            assert got == INBOX_DUPLICATE
        else:
            assert got == INBOX_INSERTED
            self.state[ref] = INBOX_RECEIVED
            self.taken[(sender, msg_id)] = ref
            row = self.store.inbox_get_ref(ref)
            assert row is not None and row.packed == (b"packed-" + ref.encode() if signed else PACKED_NOT_KEPT)

    @rule()
    def commit_unpacked(self) -> None:
        """Bytes committed before unpacking (a crash may come next)."""
        ref = self._ref()
        self.store.inbox_commit(ref, b"packed-" + ref.encode(), transport="t", received=self.n)
        self.state[ref] = INBOX_PENDING

    @precondition(lambda self: any(s == INBOX_PENDING for s in self.state.values()))
    @rule(data=st.data())
    def refuse(self, data: Any) -> None:
        ref = data.draw(st.sampled_from(sorted(r for r, s in self.state.items() if s == INBOX_PENDING)))
        self.store.inbox_reject(ref, record={"reason": "bad"})
        self.state[ref] = INBOX_REJECTED

    @precondition(lambda self: any(s in (INBOX_PENDING, INBOX_REJECTED) for s in self.state.values()))
    @rule(data=st.data(), sender=SENDERS, msg_id=IDS)
    def accept_later(self, data: Any, sender: str, msg_id: str) -> None:
        """A restart unpacks a pending row; or a refused one's sender is known by now."""
        ref = data.draw(st.sampled_from(sorted(r for r, s in self.state.items()
                                               if s in (INBOX_PENDING, INBOX_REJECTED))))
        earlier = self.store.inbox_accept(ref, msg_id=msg_id, sender=sender, record={"message": {"id": msg_id}},
                                          keep_packed=False)
        if (sender, msg_id) in self.taken:
            assert earlier is not None and earlier.ref == self.taken[(sender, msg_id)]
            del self.state[ref]  # the copy is dropped
        else:
            assert earlier is None
            self.state[ref] = INBOX_RECEIVED
            self.taken[(sender, msg_id)] = ref

    @rule(msg_id=IDS)
    def erase(self, msg_id: str) -> None:
        erased = self.store.message_erase(msg_id)
        refs = {ref for (_s, m), ref in self.taken.items() if m == msg_id and self.state[ref] != INBOX_DELETED}
        assert erased["inbox"] == len(refs)
        for ref in refs:
            self.state[ref] = INBOX_DELETED

    @rule(age=st.integers(0, 4), limit=st.integers(1, 3))
    def prune(self, age: int, limit: int) -> None:
        cut = self.n + 1 - age  # rows received before cut are old enough
        erased, calls = 0, 0
        while True:
            n, more = self.store.inbox_prune(cut, limit=limit)
            erased, calls = erased + n, calls + 1
            assert n <= limit and calls <= self.n + 1
            if not more:
                break
        expected = 0
        for num in sorted(int(ref[1:]) for ref in self.state):
            ref = f"r{num}"
            if num <= self.pruned_through:
                assert self.state[ref] == INBOX_DELETED
                continue
            if num >= cut or self.state[ref] == INBOX_PENDING:
                break
            if self.state[ref] != INBOX_DELETED:
                self.state[ref] = INBOX_DELETED
                expected += 1
            self.pruned_through = num
        assert erased == expected

    @invariant()
    def promises_hold(self) -> None:
        if not hasattr(self, "store"):
            return
        rows = {r.ref: r for r in self.store.inbox_list(limit=1000)}
        assert set(rows) == {ref for ref, s in self.state.items() if s != INBOX_DELETED}
        for ref, row in rows.items():
            assert row.state == self.state[ref]
        for ref, s in self.state.items():
            if s == INBOX_DELETED:
                tomb = self.store.inbox_get_ref(ref)
                assert tomb is not None and tomb.state == INBOX_DELETED
                assert tomb.record == {} and tomb.packed == PACKED_NOT_KEPT
                # (A refused message pruned by age was never unpacked: no msg_id.)
                assert tomb.msg_id is None or (tomb.sender, tomb.msg_id) in self.taken
        assert self.store.counts()["inbox"] == len(rows)
        assert self.store.counts()["inbox_rejected"] == sum(1 for s in self.state.values() if s == INBOX_REJECTED)


Inbox.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_inbox_lifecycle = Inbox.TestCase

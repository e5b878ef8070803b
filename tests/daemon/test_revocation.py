"""daemon.revocation: handing out status list indexes (real SQLite files), signing lists on
demand with their cache, and reading a held credential's status from the copy we keep."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon import revocation
from daemon.errors import StoreError
from daemon.revocation import (
    HeldLists,
    StatusPublisher,
    keep_held,
    list_uri,
    pick_index,
    verify_document,
    write_allocation,
)
from daemon.store import HeldStatusListRow, Store
from protocols import issue_credential, status_list
from protocols.did.did_key import create_did_key
from protocols.did.resolver import default_resolver
from protocols.keys import PrivateKey
from protocols.secrets import InMemorySecrets

from .stores import open_store

SD = issue_credential.FORMAT
DI = issue_credential.DI_VC
KEY = PrivateKey.generate("Ed25519")
ISSUER = create_did_key(KEY.public)
KID = f"{ISSUER}#{ISSUER.removeprefix('did:key:')}"
RESOLVER = default_resolver()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(tmp_path / "r.sqlite3")
    yield s
    s.close()


def _hand_out(store: Store, fmt: str = SD, *, size: int = 16, rng: random.Random | None = None) -> revocation.Allocation:
    kwargs = {"randbelow": rng.randrange} if rng is not None else {}
    allocation = pick_index(store, ISSUER, fmt, size=size, **kwargs)
    write_allocation(store, allocation, f"thread-{allocation.uri}-{allocation.index}", now=1)
    return allocation


def test_uris_name_the_issuer_format_and_number() -> None:
    assert list_uri(ISSUER, SD, 0) == f"{ISSUER}/status/sd-jwt/0"
    assert list_uri(ISSUER, DI, 3) == f"{ISSUER}/status/di/3"
    with pytest.raises(ValueError):
        pick_index(Store.__new__(Store), ISSUER, "ldp_vc")


def test_indexes_are_unique_and_a_full_list_starts_the_next(store: Store) -> None:
    got = [_hand_out(store, size=16) for _ in range(40)]
    by_list: dict[str, set[int]] = {}
    for a in got:
        by_list.setdefault(a.uri, set()).add(a.index)
    assert [len(v) for _, v in sorted(by_list.items())] == [16, 16, 8]
    assert {a.uri for a in got} == {list_uri(ISSUER, SD, n) for n in range(3)}
    assert [a.new_list for a in got].count(True) == 3
    # The other format has lists of its own.
    assert _hand_out(store, DI).uri == list_uri(ISSUER, DI, 0)


def test_indexes_are_not_handed_out_in_order(store: Store) -> None:
    got = [_hand_out(store, size=4096).index for _ in range(50)]
    assert got != sorted(got) and len(set(got)) == 50


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), size=st.integers(1, 40))
def test_any_sequence_of_draws_fills_a_list_exactly(tmp_path_factory: pytest.TempPathFactory, seed: int,
                                                     size: int) -> None:
    # Even a generator that keeps hitting used indexes (the nearly-full path) ends with
    # every index handed out once before a second list starts.
    s = open_store(tmp_path_factory.mktemp("fill") / "f.sqlite3")
    try:
        rng = random.Random(seed)
        first = [_hand_out(s, size=size, rng=rng) for _ in range(size)]
        assert sorted(a.index for a in first) == list(range(size))
        assert {a.uri for a in first} == {list_uri(ISSUER, SD, 0)}
        assert _hand_out(s, size=size, rng=rng).uri == list_uri(ISSUER, SD, 1)
    finally:
        s.close()


def test_a_stale_pick_cannot_take_an_index_twice(store: Store) -> None:
    a = pick_index(store, ISSUER, SD, size=16, randbelow=lambda n: 5)
    write_allocation(store, a, "t1", now=1)
    b = revocation.Allocation(a.uri, a.issuer, a.format, a.n, a.size, a.index, False)
    with pytest.raises(StoreError, match="taken"):
        write_allocation(store, b, "t2", now=1)
    assert store.status_entry_by_thid("t2") is None


def _secrets() -> InMemorySecrets:
    s = InMemorySecrets()
    s.add(KID, KEY)
    return s


def _publisher(clock: list[int]) -> StatusPublisher:
    return StatusPublisher(RESOLVER, _secrets(), lambda: clock[0])


@pytest.mark.parametrize("fmt", [SD, DI])
def test_lists_are_signed_on_demand_and_resigned_when_changed_or_old(store: Store, fmt: str) -> None:
    clock = [1_700_000_000]
    pub = _publisher(clock)
    a = pick_index(store, ISSUER, fmt)
    write_allocation(store, a, "t1", now=clock[0])
    pub.load(store.status_lists_all())
    assert pub.known(a.uri) and not pub.known(a.uri + "x") and pub.source(a.uri + "x") is None
    first = pub.source(a.uri)
    assert first is not None
    text = revocation.document_text(first)
    verified = verify_document(text, resolver=RESOLVER, now=clock[0], uri=a.uri)
    assert verified.issuer == ISSUER and verified.statuses.size == status_list.LIST_SIZE
    assert verified.status(a.index) == status_list.VALID
    clock[0] += 10
    assert pub.source(a.uri) is first  # cached
    # A revocation: stored, then put; the next request is signed anew and says so.
    statuses = pub.statuses(a.uri)
    statuses.set(a.index, status_list.REVOKED)
    store.status_set(a.uri, a.index, status_list.REVOKED, statuses.to_bytes(), now=clock[0])
    assert pub.statuses(a.uri).get(a.index) == status_list.VALID  # a copy was changed, not the list
    pub.put(a.uri, ISSUER, fmt, statuses)
    second = pub.source(a.uri)
    assert second is not first
    again = verify_document(revocation.document_text(second), resolver=RESOLVER, now=clock[0], uri=a.uri)  # type: ignore[arg-type]
    assert again.status(a.index) == status_list.REVOKED and again.issued_at == clock[0]
    clock[0] += revocation.STATUS_RESIGN_S
    third = pub.source(a.uri)
    assert third is not second
    assert verify_document(revocation.document_text(third), resolver=RESOLVER, now=clock[0]).issued_at == clock[0]  # type: ignore[arg-type]
    # After a restart the stored list is what is published.
    fresh = _publisher(clock)
    fresh.load(store.status_lists_all())
    assert fresh.statuses(a.uri).get(a.index) == status_list.REVOKED


async def _until(what: str, check: Any) -> None:
    with trio.fail_after(20):
        while not check():
            await trio.sleep(0.01)


@pytest.mark.parametrize("fmt", [SD, DI])
async def test_lists_are_signed_ahead_in_a_thread_so_requests_find_them_signed(store: Store, fmt: str) -> None:
    clock = [1_700_000_000]
    pub = _publisher(clock)
    a = pick_index(store, ISSUER, fmt)
    write_allocation(store, a, "t1", now=clock[0])
    pub.load(store.status_lists_all())
    # A di list is published as two list credentials (its revocation and suspension views).
    views = len(revocation.published_views(a.uri, fmt))
    async with trio.open_nursery() as nursery:
        await nursery.start(pub.serve)
        await _until("signed at start", lambda: pub.signed_ahead == views)
        first = pub.source(a.uri)
        assert first is not None and pub.signed_inline == 0
        # A revocation in the second the list was signed: a request that comes first
        # signs it on the loop, a second later than the copy it replaces.
        statuses = pub.statuses(a.uri)
        statuses.set(a.index, status_list.REVOKED)
        pub.put(a.uri, ISSUER, fmt, statuses)
        second = pub.source(a.uri)
        assert second is not first and pub.signed_inline == 1
        text = revocation.document_text(second)  # type: ignore[arg-type]
        verified = verify_document(text, resolver=RESOLVER, now=clock[0] + 1, uri=a.uri)
        assert verified.status(a.index) == status_list.REVOKED and verified.issued_at == clock[0] + 1
        # A later change is signed ahead; what the next request gets says so.
        clock[0] += 5
        statuses.set(a.index + 1 if a.index + 1 < statuses.size else a.index - 1, status_list.REVOKED)
        pub.put(a.uri, ISSUER, fmt, statuses)
        await _until("signed after the change", lambda: pub.signed_ahead == 2 * views)
        third = pub.source(a.uri)
        assert third is not second and pub.signed_inline == 1
        assert verify_document(revocation.document_text(third), resolver=RESOLVER,  # type: ignore[arg-type]
                               now=clock[0], uri=a.uri).issued_at == clock[0]
        second = third
        # An old copy is signed anew before a request would have to.
        clock[0] += revocation.STATUS_PRESIGN_S
        pub.put(a.uri + "-other", ISSUER, fmt, status_list.StatusList(status_list.LIST_SIZE))  # (wakes the task)
        await _until("re-signed when old", lambda: pub.signed_ahead == 4 * views)
        fourth = pub.source(a.uri)
        assert fourth is not second and pub.signed_inline == 1
        assert verify_document(revocation.document_text(fourth), resolver=RESOLVER,  # type: ignore[arg-type]
                               now=clock[0]).issued_at == clock[0]
        nursery.cancel_scope.cancel()


async def test_a_list_that_cannot_be_signed_is_not_retried_in_a_loop(store: Store) -> None:
    a = pick_index(store, ISSUER, SD)
    write_allocation(store, a, "t1", now=1)
    pub = StatusPublisher(RESOLVER, InMemorySecrets(), lambda: 1_700_000_000)
    pub.load(store.status_lists_all())
    async with trio.open_nursery() as nursery:
        await nursery.start(pub.serve)
        await trio.sleep(0.2)
        assert pub.signed_ahead == 0 and pub._due(1_700_000_000)[0] == []  # tried once, not due again
        nursery.cancel_scope.cancel()


def test_a_list_whose_key_left_the_wallet_is_not_published(store: Store) -> None:
    a = pick_index(store, ISSUER, SD)
    write_allocation(store, a, "t1", now=1)
    pub = StatusPublisher(RESOLVER, InMemorySecrets(), lambda: 1_700_000_000)
    pub.load(store.status_lists_all())
    assert pub.source(a.uri) is None


def _signed(statuses: status_list.StatusList, uri: str, now: int) -> str:
    return status_list.sign_token(statuses, uri=uri, issuer=ISSUER, kid=KID, key=KEY, now=now)


def test_a_held_copy_is_replaced_only_by_a_newer_one(store: Store) -> None:
    uri = list_uri(ISSUER, SD, 0)
    old = revocation.held_row(_signed(status_list.StatusList(), uri, 100), uri=uri, issuer=ISSUER,
                              issued_at=100, expires=None, fetched_at=150)
    new = revocation.held_row(_signed(status_list.StatusList(), uri, 200), uri=uri, issuer=ISSUER,
                              issued_at=200, expires=None, fetched_at=210)
    assert keep_held(store, new)
    assert not keep_held(store, old)
    got = store.held_list_get(uri)
    assert got is not None and got.issued_at == 200 and got.fetched_at == 210
    assert got.format == revocation.TOKEN_FORMAT and got.record["document"] == new.record["document"]


def test_a_held_credential_reads_its_status_from_the_copy() -> None:
    uri = list_uri(ISSUER, SD, 0)
    statuses = status_list.StatusList()
    statuses.set(7, status_list.REVOKED)
    held = revocation.held_row(_signed(statuses, uri, 100), uri=uri, issuer=ISSUER, issued_at=100,
                               expires=None, fetched_at=100)
    lists = HeldLists(RESOLVER)
    entry = {"issuer": ISSUER, "status": {"uri": uri, "index": 7}}
    assert lists.status(entry, {uri: held}, 500) == "revoked"
    assert lists.status({**entry, "status": {"uri": uri, "index": 8}}, {uri: held}, 500) == "valid"
    assert lists.status({"issuer": ISSUER}, {uri: held}, 500) == "not revocable"
    assert lists.status(entry, {}, 500) == "unknown"
    # A copy signed by someone else than the credential's issuer says nothing about it.
    assert lists.status({**entry, "issuer": "did:key:zOther"}, {uri: held}, 500) == "unknown"
    # An index outside the list, and a damaged copy, are unknown too.
    assert lists.status({**entry, "status": {"uri": uri, "index": 10**6}}, {uri: held}, 500) == "unknown"
    damaged = HeldStatusListRow(uri, ISSUER, revocation.TOKEN_FORMAT, 101, 101, {"document": "x.y.z"})
    assert lists.status(entry, {uri: damaged}, 500) == "unknown"
    expiring = HeldStatusListRow(uri, ISSUER, revocation.TOKEN_FORMAT, 100, 100,
                                 {**held.record, "expires": 200})
    assert lists.status(entry, {uri: expiring}, 150) == "revoked"
    assert lists.status(entry, {uri: expiring}, 10_000) == "unknown"
    # Another copy of the same second (an issuer that re-signs within one) is read for
    # what it says, not taken for the copy already decoded.
    statuses.set(8, status_list.REVOKED)
    same_second = revocation.held_row(_signed(statuses, uri, 100), uri=uri, issuer=ISSUER, issued_at=100,
                                      expires=None, fetched_at=101)
    assert lists.status({**entry, "status": {"uri": uri, "index": 8}}, {uri: same_second}, 500) == "revoked"


def test_a_list_credential_round_trips_through_text() -> None:
    uri = list_uri(ISSUER, DI, 0)
    doc = status_list.sign_list_credential(status_list.StatusList(), url=uri, issuer=ISSUER, kid=KID, key=KEY,
                                           now=100)
    text = revocation.document_text(doc)
    assert revocation.document_format(text) == revocation.BITSTRING_FORMAT
    assert revocation.for_presentation(text) == doc
    assert verify_document(text, resolver=RESOLVER, now=100, uri=uri).issuer == ISSUER

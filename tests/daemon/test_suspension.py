"""Suspension of what was issued before didcommd could suspend: two real agents in this
process (their stores, wallets and status publishers), the messages moved by the test.

A store from before schema v7 holds 1-bit status lists; an SD-JWT VC issued into one
names it in its signed ``status`` claim, so the list itself is widened to 2 bits when
one of its credentials is first suspended (every entry keeps its index and value).  A
``di`` credential issued before names no suspension list: it can be revoked, never
suspended.
"""

from __future__ import annotations

from typing import Any

import pytest

from daemon.agent import Agent
from daemon.errors import INVALID_STATE, DaemonError
from daemon.revocation import LIST_SIZE, list_uri
from daemon.store import StatusListRow
from protocols import issue_credential, status_list
from protocols.framework import ProtocolRecord
from tests.daemon.test_conversations import Wire, connect

CLAIMS = {"member": True}
VCT = "https://example.org/credentials/member"


@pytest.fixture
async def issuing(pair: tuple[Agent, Agent]) -> tuple[Agent, Agent, Wire, str]:
    """Alice (issuer) and Bob (holder), connected; alice's connection id."""
    alice, bob = pair
    wire = Wire(alice, bob)
    a_conn, _ = await connect(alice, bob, wire)
    return alice, bob, wire, a_conn


async def _issue(alice: Agent, bob: Agent, wire: Wire, a_conn: str, **kwargs: Any) -> tuple[dict[str, Any], str]:
    offer = await alice.conversations.credentials.offer(a_conn, vct=VCT, claims=CLAIMS, **kwargs)
    await wire.pump()
    await bob.conversations.credentials.accept_offer(offer["thid"])
    await wire.pump()
    held = [c for c in (await bob.conversations.credentials.stored())["credentials"] if c["thid"] == offer["thid"]]
    return offer, held[0]["id"]


async def _refreshed(bob: Agent, wire: Wire, cred_id: str) -> str:
    await bob.conversations.credentials.refresh(cred_id)
    await wire.pump()
    return str((await bob.conversations.credentials.show(cred_id))["status"])


async def test_a_1_bit_list_from_before_is_widened_when_a_credential_in_it_is_suspended(issuing: Any) -> None:
    alice, bob, wire, a_conn = issuing
    creds = alice.conversations.credentials
    issuer = (await creds.offer(a_conn, vct=VCT, claims=CLAIMS, revocable=False))["issuer"]
    # The list as a store from before v7 has it: 1 bit per entry, one entry revoked.
    uri = list_uri(issuer, issue_credential.FORMAT, 0)
    old = status_list.StatusList(LIST_SIZE, bits=1)
    store = alice.store.sync
    store.status_list_create(StatusListRow(uri, issuer, issue_credential.FORMAT, 0, LIST_SIZE, 0, 1, old.to_bytes()))
    await creds.load()
    revoked, revoked_id = await _issue(alice, bob, wire, a_conn)
    kept, kept_id = await _issue(alice, bob, wire, a_conn)
    assert revoked["status"]["uri"] == kept["status"]["uri"] == uri
    await creds.revoke(revoked["thid"])
    assert store.status_list_get(uri).bits == 1  # type: ignore[union-attr]  # (revoking needs 1 bit)
    assert await _refreshed(bob, wire, kept_id) == "valid"

    suspended = await creds.suspend(kept["thid"])
    assert suspended["state"] == "suspended" and suspended["already"] is False
    row = store.status_list_get(uri)
    assert row is not None and row.bits == 2
    widened = status_list.StatusList.from_bytes(row.statuses, bits=2, size=LIST_SIZE)
    assert widened.get(revoked["status"]["index"]) == status_list.REVOKED
    assert widened.get(kept["status"]["index"]) == status_list.SUSPENDED
    # The holder reads the 2-bit list as it read the 1-bit one: both credentials as they are.
    assert await _refreshed(bob, wire, kept_id) == "suspended"
    assert (await bob.conversations.credentials.show(revoked_id))["status"] == "revoked"
    # A restart reads the list back as stored: 2 bits.
    await creds.load()
    assert creds.publisher.statuses(uri).bits == 2
    await creds.reinstate(kept["thid"])
    assert await _refreshed(bob, wire, kept_id) == "valid"


async def test_a_di_credential_issued_before_can_be_revoked_but_not_suspended(issuing: Any) -> None:
    alice, bob, wire, a_conn = issuing
    creds = alice.conversations.credentials
    offer, cred_id = await _issue(alice, bob, wire, a_conn, format="di")
    # The issuer's record as the daemon wrote it before: the offer names no suspension entry.
    store = alice.store.sync
    raw = next(r for r in store.records_by_thid(offer["thid"]) if r.get("role") == "issuer")
    record = ProtocolRecord.from_dict(raw)
    record.data["offer"].pop("suspension")
    store.record_put(issue_credential.PIURI, record.thid, record.role, state=record.state,
                     updated=record.updated_time, record=record.to_dict())

    with pytest.raises(DaemonError, match="names no suspension status list") as info:
        await creds.suspend(offer["thid"])
    assert info.value.code == INVALID_STATE
    with pytest.raises(DaemonError, match="not suspended") as info:
        await creds.reinstate(cred_id)  # (by the credential's id)
    assert info.value.code == INVALID_STATE
    assert (await creds.revoke(cred_id))["revoked"] is True
    assert await _refreshed(bob, wire, cred_id) == "revoked"

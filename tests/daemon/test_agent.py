"""The agent as a specification: real state directories, real SQLite files, real keys."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from daemon import wallet as walletlib
from daemon.agent import Agent, open_agent
from daemon.errors import DaemonError, error_from
from daemon.store import Store
from protocols import errors as perr
from protocols.codec import b64u_encode
from tests.daemon.conftest import make_config

PING = "https://didcomm.org/trust-ping/2.0/ping"


class Clock:
    """Unix time the test can move."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Agent, Agent]]:
    """Two agents with a DID each (alice: did:peer:2, bob: did:key)."""
    alice = await Agent.open(make_config(tmp_path / "alice"))
    bob = await Agent.open(make_config(tmp_path / "bob"))
    try:
        await alice.did_create("peer", label="alice")
        await bob.did_create("key", label="bob")
        yield alice, bob
    finally:
        await alice.aclose()
        await bob.aclose()


async def did_of(agent: Agent) -> str:
    return str((await agent.did_list())[0]["did"])


# -- opening ------------------------------------------------------------------------------------


async def test_first_start_creates_private_state_and_a_restart_keeps_it(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    agent = await Agent.open(config)
    state = config.daemon.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE(config.wallet.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "didcommd.sqlite3").stat().st_mode) == 0o600
    created = await agent.did_create("peer", label="first")
    assert set(created) == {"did", "method", "label", "created"}
    status = await agent.status()
    assert {"version", "uptime_s", "state_dir", "dids", "inbox", "outbox_pending"} <= set(status)
    assert (status["dids"], status["inbox"], status["outbox_pending"]) == (1, 0, 0)
    assert status["state_dir"] == str(state)
    await agent.aclose()
    await agent.aclose()

    async with open_agent(config) as again:
        assert await again.did_list() == [created]
        assert (await again.status())["events_seq"] >= 2  # wallet.created, did.created


async def test_one_agent_per_state_directory(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    async with open_agent(config):
        with pytest.raises(DaemonError, match="already using") as info:
            await Agent.open(config)
        assert info.value.code == "unavailable"
    async with open_agent(config):
        pass


async def test_wrong_passphrase_is_a_clear_error_and_leaves_nothing_open(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("right\n")
    config = make_config(tmp_path, DIDCOMMD_WALLET_PASSPHRASE_FILE=str(pw))
    async with open_agent(config) as agent:
        assert agent.wallet.mode == "passphrase"
        await agent.did_create("key")
    pw.write_text("wrong\n")
    with pytest.raises(DaemonError) as info:
        await Agent.open(config)
    assert (info.value.code, info.value.message) == ("wallet_locked", "wrong wallet passphrase")
    assert error_from(info.value)[:2] == ("wallet_locked", "wrong wallet passphrase")
    with pytest.raises(DaemonError, match=r"PASSWORD_VAR .* is not set"):
        await Agent.open(make_config(tmp_path, DIDCOMMD_WALLET_PASSPHRASE_ENV="PASSWORD_VAR"))
    # The failed opens released the state directory; the same passphrase from a variable works.
    async with open_agent(make_config(tmp_path, DIDCOMMD_WALLET_PASSPHRASE_ENV="P"), env={"P": "right"}) as agent:
        assert len(await agent.did_list()) == 1


# -- DIDs -----------------------------------------------------------------------------------


async def test_dids_create_list_resolve(tmp_path: Path) -> None:
    async with open_agent(make_config(tmp_path)) as agent:
        peer = await agent.did_create()
        key = await agent.did_create("key", label="k")
        assert peer["method"] == "peer" and peer["did"].startswith("did:peer:2.")
        assert key["did"].startswith("did:key:z6Mk")
        assert [d["did"] for d in await agent.did_list()] == [peer["did"], key["did"]]
        doc = await agent.did_resolve(peer["did"])
        assert doc["id"] == peer["did"]
        kids = [vm["id"] for vm in doc["verificationMethod"]]
        assert agent.wallet.find_keys(kids) == kids
        with pytest.raises(perr.DIDNotResolvedError) as info:
            await agent.did_resolve("did:web:example.org")
        assert error_from(info.value)[0] == "not_found"
        for bad in [("web", {}), ("peer", {"label": 3}), ("peer", {"services": "x"})]:
            with pytest.raises(DaemonError) as err:
                await agent.did_create(bad[0], **bad[1])  # type: ignore[arg-type]
            assert err.value.code == "invalid_params"
        with pytest.raises(DaemonError, match="did"):
            await agent.did_resolve("not a did")


async def test_known_did_documents_are_remembered(tmp_path: Path, vectors: dict[str, Any]) -> None:
    bob_doc = next(d for d in vectors["did_docs"] if d["id"] == "did:example:bob")
    config = make_config(tmp_path)
    async with open_agent(config) as agent:
        added = await agent.did_add_known(bob_doc, label="bob")
        assert added["did"] == "did:example:bob"
        assert await agent.did_list() == []  # not ours
    async with open_agent(config) as agent:
        assert (await agent.did_resolve("did:example:bob"))["id"] == "did:example:bob"
        assert (await agent.status())["known_dids"] == 1


async def test_no_private_key_in_a_copy_of_the_store(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    secrets: list[bytes] = []
    copy = tmp_path / "copy"
    copy.mkdir()
    async with open_agent(config) as agent:
        for method in ("peer", "key", "peer"):
            created = await agent.did_create(method)
            doc = await agent.did_resolve(created["did"])
            for vm in doc["verificationMethod"]:
                key = agent.wallet.get_key(vm["id"])
                assert key is not None
                secrets.append(key.secret)
        # Copied off while running: the WAL still holds the recent writes.
        for f in config.daemon.state_dir.glob("didcommd.sqlite3*"):
            shutil.copy(f, copy / (f.name + ".live"))
    for f in config.daemon.state_dir.glob("didcommd.sqlite3*"):
        shutil.copy(f, copy / f.name)
    files = list(copy.iterdir())
    wal = [f for f in files if f.name.endswith("-wal.live")]
    # The copies do hold the wallet (the newest DID is in the live WAL in the clear), keys sealed.
    assert wal and created["did"].encode() in wal[0].read_bytes()
    blobs = [f.read_bytes() for f in files]
    assert len(secrets) == 6
    for secret in secrets:
        forms = [secret, b64u_encode(secret).encode(), secret.hex().encode(), secret[:16]]
        for blob in blobs:
            for form in forms:
                assert form not in blob


# -- messages ------------------------------------------------------------------------------


async def test_send_then_receive(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    alice_did, bob_did = await did_of(alice), await did_of(bob)
    sent = await alice.message_send(bob_did, PING, {"response_requested": True}, thid="t-1")
    assert sent["state"] == "queued"
    assert (await alice.status())["outbox_pending"] == 1
    out = await alice.outbox_get(sent["id"])
    assert out["to"] == bob_did and out["from"] == alice_did and out["state"] == "queued"
    assert out["packed"].startswith("{") and "ciphertext" in out["packed"]
    summary = await alice.message_get(sent["id"])
    assert summary["box"] == "outbox" and "packed" not in summary
    assert [m["id"] for m in await alice.message_list(box="outbox")] == [sent["id"]]

    async with bob.events.subscribe(kinds={"message.received"}) as events:
        got = await bob.message_receive(out["packed"], transport="test")
        assert got == {"id": sent["id"], "state": "received"}
        with trio.fail_after(5):
            event = await events.receive()
    assert event["data"]["id"] == sent["id"] and event["data"]["from"] == alice_did
    assert event["data"]["authenticated"] is True

    message = await bob.message_get(sent["id"])
    assert message["state"] == "received" and message["sender"] == alice_did
    assert message["message"]["body"] == {"response_requested": True}
    assert message["message"]["thid"] == "t-1"
    assert message["metadata"]["encrypted"] and message["metadata"]["authenticated"]
    assert message["transport"] == "test"

    # The same bytes again, or the same message re-encrypted: a duplicate, stored once.
    assert await bob.message_receive(out["packed"]) == {"id": sent["id"], "state": "duplicate"}
    assert (await bob.status())["inbox"] == 1


async def test_the_same_message_id_in_new_bytes_is_a_duplicate(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    from protocols.envelope import pack_encrypted

    bob_did = await did_of(bob)
    sent = await alice.message_send(bob_did, PING, {})
    first = (await alice.outbox_get(sent["id"]))["packed"]
    message = (await _unpacked(bob, first))["message"]
    again = pack_encrypted(message, bob_did, frm=await did_of(alice), resolver=alice.resolver, secrets=alice.wallet)
    assert again.packed != first
    assert (await bob.message_receive(first))["state"] == "received"
    assert (await bob.message_receive(again.packed))["state"] == "duplicate"
    assert (await bob.status())["inbox"] == 1


async def _unpacked(agent: Agent, packed: str) -> dict[str, Any]:
    from protocols.envelope import unpack

    result = unpack(packed, resolver=agent.resolver, secrets=agent.wallet)
    return {"message": result.message}


async def test_anoncrypt_has_no_sender(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    sent = await alice.message_send(await did_of(bob), PING, {}, anoncrypt=True)
    out = await alice.outbox_get(sent["id"])
    assert out["from"] is None
    assert (await bob.message_receive(out["packed"]))["state"] == "received"
    got = await bob.message_get(sent["id"])
    assert got["sender"] is None and got["from"] is None
    assert got["metadata"]["anonymous_sender"] is True


async def test_bad_input_is_stored_as_rejected_with_the_reason(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    # Encrypted to bob, received by alice: not for her.
    sent = await alice.message_send(await did_of(bob), PING, {})
    packed = (await alice.outbox_get(sent["id"]))["packed"]
    async with alice.events.subscribe(kinds={"message.rejected"}) as events:
        for data in (b"\x00\xff not json", packed):
            got = await alice.message_receive(data)
            assert got["state"] == "rejected" and got["id"].startswith("in-")
            with trio.fail_after(5):
                event = await events.receive()
            assert event["data"]["id"] == got["id"]
    rows = await alice.message_list()
    assert [r["state"] for r in rows] == ["rejected", "rejected"]
    assert rows[0]["problem_code"] == "e.p.trust.crypto.unknown-recipient"
    assert rows[1]["problem_code"] == "e.p.msg.malformed"
    detail = await alice.message_get(rows[0]["id"])
    assert detail["reason"] and detail["message"] is None
    assert (await alice.status())["inbox_rejected"] == 2


async def test_expired_messages_are_refused(tmp_path: Path) -> None:
    clock = Clock()
    async with open_agent(make_config(tmp_path / "a"), clock=clock) as alice, \
            open_agent(make_config(tmp_path / "b"), clock=clock) as bob:
        await alice.did_create()
        bob_did = (await bob.did_create())["did"]
        with pytest.raises(DaemonError, match="future"):
            await alice.message_send(bob_did, PING, {}, expires_time=int(clock.now) - 1)
        sent = await alice.message_send(bob_did, PING, {}, expires_time=int(clock.now) + 60)
        packed = (await alice.outbox_get(sent["id"]))["packed"]
        clock.now += 120
        got = await bob.message_receive(packed)
        assert got["state"] == "rejected"
        assert (await bob.message_get(got["id"]))["problem_code"] == "e.p.req.time"


async def test_send_checks_its_parameters(pair: tuple[Agent, Agent], tmp_path: Path) -> None:
    alice, bob = pair
    bob_did = await did_of(bob)
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: alice.message_send("bob", PING, {}), "invalid_params"),
        (lambda: alice.message_send(bob_did, "", {}), "invalid_params"),
        (lambda: alice.message_send(bob_did, PING, []), "invalid_params"),  # type: ignore[arg-type]
        (lambda: alice.message_send(bob_did, PING, {}, frm=bob_did), "invalid_params"),
        (lambda: alice.message_send("did:web:nowhere.example", PING, {}), "not_found"),
        (lambda: alice.message_list(box="trash"), "invalid_params"),
        (lambda: alice.message_list(limit=0), "invalid_params"),
        (lambda: alice.message_get("nope"), "not_found"),
        (lambda: alice.outbox_get("nope"), "not_found"),
    ]
    for call, code in cases:
        with pytest.raises((DaemonError, perr.DIDCommError)) as info:
            await call()
        assert error_from(info.value)[0] == code, info.value
    async with open_agent(make_config(tmp_path / "empty")) as empty:
        with pytest.raises(DaemonError, match="no DID of ours"):
            await empty.message_send(bob_did, PING, {})


async def test_message_list_pages(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    bob_did = await did_of(bob)
    ids = [(await alice.message_send(bob_did, PING, {"n": i}))["id"] for i in range(5)]
    for i in ids:
        await bob.message_receive((await alice.outbox_get(i))["packed"])
    page = await bob.message_list(limit=2)
    assert [m["id"] for m in page] == ids[:-3:-1]
    rest = await bob.message_list(limit=10, before=page[-1]["seq"])
    assert [m["id"] for m in rest] == ids[2::-1]


# -- crash recovery ---------------------------------------------------------------------------


async def test_a_restart_unpacks_what_was_committed_but_not_unpacked(tmp_path: Path) -> None:
    config_a, config_b = make_config(tmp_path / "a"), make_config(tmp_path / "b")
    async with open_agent(config_a) as alice, open_agent(config_b) as bob:
        await alice.did_create()
        bob_did = (await bob.did_create())["did"]
        sent = await alice.message_send(bob_did, PING, {})
        packed = (await alice.outbox_get(sent["id"]))["packed"].encode()
        claimed = await alice.store.run(alice.store.sync.outbox_due, alice.now())
        assert [r.id for r in claimed] == [sent["id"]]
    # Bob "crashed" right after committing the bytes; Alice while sending.
    store = Store.open(config_b.daemon.state_dir / "didcommd.sqlite3")
    walletlib.unlock(store, passphrase=None, key_file=config_b.wallet.key_file, create=False)
    store.inbox_commit("in-crash", packed, transport="libp2p", received=1)
    store.close()
    async with open_agent(config_b) as bob:
        got = await bob.message_get(sent["id"])
        assert got["state"] == "received" and got["transport"] == "libp2p"
    async with open_agent(config_a) as alice:
        assert (await alice.outbox_get(sent["id"]))["state"] == "queued"


# -- reload and errors ------------------------------------------------------------------------




async def test_reload_takes_the_new_configuration(tmp_path: Path, restore_logging: None) -> None:
    config = make_config(tmp_path)
    async with open_agent(config) as agent:
        newer = make_config(tmp_path, DIDCOMMD_DAEMON_LOG_LEVEL="warning", DIDCOMMD_CONTROL_MAX_CLIENTS="3")
        agent.reload(newer)
        assert agent.config.control.max_clients == 3
        assert logging.getLogger().level == logging.WARNING


def test_error_from_maps_every_kind_without_leaking() -> None:
    assert error_from(DaemonError("not_found", "no such thing", {"id": 1})) == ("not_found", "no such thing", {"id": 1})
    code, message, data = error_from(perr.AuthenticationTagError("bad tag"))
    assert (code, message, data) == ("crypto", "bad tag", {"problem_code": "e.p.trust.crypto.bad-tag"})
    assert error_from(perr.MalformedMessageError("x"))[0] == "invalid_message"
    assert error_from(perr.ExpiredMessageError("x"))[0] == "expired"
    assert error_from(perr.UnsupportedAlgorithmError("x"))[0] == "unsupported"
    assert error_from(perr.InvalidDIDError("x"))[0] == "did"
    leak = error_from(ValueError("d=SECRETKEYMATERIAL"))
    assert leak[0] == "internal" and "SECRET" not in leak[1] and leak[2] is None
    from daemon.config import ConfigError

    assert error_from(ConfigError("f.toml", "p2p.listen", "bad"))[:2] == ("config", "f.toml: p2p.listen: bad")


async def test_the_state_directory_is_tightened(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    config.daemon.state_dir.mkdir(parents=True)
    os.chmod(config.daemon.state_dir, 0o755)
    async with open_agent(config):
        assert stat.S_IMODE(config.daemon.state_dir.stat().st_mode) == 0o700


async def test_outbox_lifecycle_for_a_transport(pair: tuple[Agent, Agent]) -> None:
    alice, bob = pair
    clock = Clock(alice.now())
    alice._clock = clock
    bob_did = await did_of(bob)
    first = (await alice.message_send(bob_did, PING, {}))["id"]
    second = (await alice.message_send(bob_did, PING, {}, expires_time=int(clock.now) + 10))["id"]
    async with alice.events.subscribe(kinds={"message.delivered", "message.retry", "message.failed",
                                             "message.expired"}) as events:
        claimed = await alice.outbox_claim()
        assert [(m["id"], m["state"], m["attempts"]) for m in claimed] == [(first, "sending", 1), (second, "sending", 1)]
        assert (await bob.message_receive(claimed[0]["packed"]))["state"] == "received"
        assert (await alice.outbox_delivered(first))["state"] == "delivered"
        retry = await alice.outbox_retry(second, retry_at=int(clock.now) + 5, error="dial failed")
        assert retry["state"] == "queued" and retry["last_error"] == "dial failed"
        assert await alice.outbox_claim() == []  # not yet
        clock.now += 20  # past its expiry before its retry
        assert await alice.outbox_claim() == []
        kinds = []
        with trio.fail_after(5):
            for _ in range(3):
                kinds.append((await events.receive())["kind"])
    assert kinds == ["message.delivered", "message.retry", "message.expired"]
    assert (await alice.message_get(second))["state"] == "expired"
    third = (await alice.message_send(bob_did, PING, {}))["id"]
    await alice.outbox_claim()
    assert (await alice.outbox_failed(third, error="no DIDComm service"))["state"] == "failed"
    with pytest.raises(DaemonError, match="cannot go from failed"):
        await alice.outbox_delivered(third)
    assert (await alice.status())["outbox_pending"] == 0

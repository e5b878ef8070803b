"""Erasing a finished protocol thread (``protocol.thread.delete``, ``didcommctl thread
THID --delete``): a verifier forgets what a proof disclosed to it, for good; a thread in
progress, or one an issuer needs to revoke, stays."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daemon.agent import Agent
from daemon.errors import INVALID_STATE, DaemonError, NotFoundError
from protocols import framework
from tests.daemon.test_conversations import Wire, connect

CLAIMS = {"given_name": "Ada", "birthdate": "1815-12-10", "nationality": "GB"}
VCT = "https://example.org/identity"


async def _events(agent: Agent) -> list[dict[str, Any]]:
    await agent.events.flush()
    return await agent.store.run(agent.store.sync.events_since, 0)


@pytest.fixture
async def holding(pair: tuple[Agent, Agent]) -> tuple[Agent, Agent, Wire, str, str]:
    """Alice issued Bob a credential (not revocable) over their connection; ids of both ends."""
    alice, bob = pair
    wire = Wire(alice, bob)
    a_conn, _ = await connect(alice, bob, wire)
    offer = await alice.conversations.credentials.offer(a_conn, vct=VCT, claims=CLAIMS, revocable=False)
    await wire.pump()
    await bob.conversations.credentials.accept_offer(offer["thid"])
    await wire.pump()
    assert len((await bob.conversations.credentials.stored())["credentials"]) == 1
    return alice, bob, wire, a_conn, offer["thid"]


async def _proved(alice: Agent, bob: Agent, wire: Wire, a_conn: str) -> str:
    asked = await alice.conversations.credentials.request_proof(a_conn, claims=["birthdate"], vct=VCT)
    await wire.pump()
    await bob.conversations.credentials.present(asked["thid"])
    await wire.pump()
    result = await alice.conversations.credentials.proof_result(asked["thid"])
    assert result["state"] == "verified" and "1815-12-10" in json.dumps(result["result"]), result
    return str(asked["thid"])


async def test_a_verifier_forgets_what_a_proof_disclosed(holding: Any) -> None:
    alice, bob, wire, a_conn, _issued = holding
    thid = await _proved(alice, bob, wire, a_conn)
    record = (await alice.conversations.thread(thid))["records"][0]
    # The thread's message ids: the request we sent, the presentation we received.
    inbound = [m["id"] for m in await alice.message_list(limit=500) if m["id"] in record["seen_ids"]]
    assert len(inbound) == 1 and "1815-12-10" in json.dumps(await _events(alice))
    assert (await alice.message_get(inbound[0]))["message"]["attachments"]  # the SD-JWT presentation

    result = await alice.conversations.thread_delete(thid)
    assert result["thid"] == thid
    assert result["deleted"]["records"] == 1 and result["deleted"]["inbox"] == 1
    assert result["deleted"]["events"] >= 1
    with pytest.raises(NotFoundError):
        await alice.conversations.thread(thid)
    with pytest.raises(NotFoundError):
        await alice.conversations.credentials.proof_result(thid)
    with pytest.raises(NotFoundError, match="was deleted"):
        await alice.message_get(inbound[0])
    # Nothing the proof disclosed is left in what the daemon keeps or reports.
    assert "1815-12-10" not in json.dumps(await _events(alice))
    assert "1815-12-10" not in json.dumps(await alice.message_list(limit=500))
    assert [e["data"] for e in await _events(alice) if e["kind"] == "thread.deleted"] == [{"thid": thid}]
    with pytest.raises(NotFoundError):
        await alice.conversations.thread_delete(thid)
    # The prover's side is the prover's: untouched.
    assert (await bob.conversations.thread(thid))["records"]


async def test_a_thread_in_progress_stays(holding: Any) -> None:
    alice, _bob, wire, a_conn, _issued = holding
    asked = await alice.conversations.credentials.request_proof(a_conn, claims=["birthdate"], vct=VCT)
    await wire.pump()
    with pytest.raises(DaemonError, match="still in progress") as info:
        await alice.conversations.thread_delete(asked["thid"])
    assert info.value.code == INVALID_STATE
    assert (await alice.conversations.thread(asked["thid"]))["records"]


async def test_issuance_threads(holding: Any) -> None:
    """The holder may forget how it got a credential (the credential stays); an issuer may
    forget a credential it cannot revoke, never one it can."""
    alice, bob, wire, a_conn, issued = holding
    assert (await bob.conversations.thread_delete(issued))["deleted"]["records"] == 1
    assert len((await bob.conversations.credentials.stored())["credentials"]) == 1
    assert (await alice.conversations.thread_delete(issued))["deleted"]["records"] == 1

    offer = await alice.conversations.credentials.offer(a_conn, vct=VCT, claims=CLAIMS)  # revocable
    await wire.pump()
    await bob.conversations.credentials.accept_offer(offer["thid"])
    await wire.pump()
    with pytest.raises(DaemonError, match="revoke") as info:
        await alice.conversations.thread_delete(offer["thid"])
    assert info.value.code == INVALID_STATE
    assert (await alice.conversations.credentials.revoke(offer["thid"]))


async def test_bad_thread_ids(pair: tuple[Agent, Agent]) -> None:
    alice = pair[0]
    for bad in ("", "x" * 5000, 7, None):
        with pytest.raises(DaemonError) as info:
            await alice.conversations.thread_delete(bad)
        assert info.value.code == "invalid_params"
    with pytest.raises(NotFoundError):
        await alice.conversations.thread_delete("no-such-thread")


async def test_finished_is_read_from_each_table(pair: tuple[Agent, Agent]) -> None:
    """A state is finished when no event leads on from it (or it is abandoned); every
    role's start is not, and every role of every protocol the daemon runs can finish."""
    machines = pair[0].conversations.dispatcher.machines
    assert len(machines) >= 7
    for machine in machines.values():
        table = machine.TRANSITIONS
        for role in machine.ROLES:
            states = framework.states_of(table, role)
            assert framework.finished(table, role, framework.ABANDONED)
            if table.get(role):
                assert not framework.finished(table, role, framework.START)
                assert any(framework.finished(table, role, s) for s in states - {framework.ABANDONED}), (
                    machine.PROTOCOL, role)
            for state in states:
                assert framework.finished(table, role, state) == (
                    state == framework.ABANDONED or not table.get(role, {}).get(state))


def test_didcommctl_thread_delete(daemon: Any, tmp_path: Path) -> None:
    """Through the CLI: a finished basic-message thread goes; usage and not-found errors."""
    mine = daemon.call("did.create")["did"]
    other = daemon.call("did.create")["did"]
    sent = daemon.call("message.send", to=other, type="https://didcomm.org/basicmessage/2.0/message",
                       body={"content": "secret"}, **{"from": mine})
    import time

    deadline = time.monotonic() + 30
    while True:
        shown = daemon.ctl("--json", "thread", sent["id"])
        if shown.returncode == 0 and len(json.loads(shown.stdout)["records"]) >= 1:
            break
        assert time.monotonic() < deadline, shown.stderr
        time.sleep(0.05)
    out = daemon.ctl("thread", sent["id"], "--delete")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"deleted thread {sent['id']}: records ")
    gone = daemon.ctl("thread", sent["id"])
    assert gone.returncode == 1 and "no protocol thread" in gone.stderr
    assert daemon.ctl("thread", "--delete").returncode == 2

"""The daemon's libp2p side: the node, the inbound path, the outbox sender, the peer table.

Theory of operation
-------------------
:func:`serve` is the agent's long-lived work (``Agent.serve`` calls it; the
service starts that in its nursery after the store and wallet are open and
before ``READY=1``).  In order:

1. the peer identity: an Ed25519 key in the libp2p spec's ``PrivateKey``
   protobuf form (:mod:`daemon.p2p.identity`), kept in the store's ``meta``
   table sealed by the wallet (:meth:`Wallet.seal_secret`), made on first
   start, so the peer id survives restarts;
2. the node (:func:`daemon.p2p.host.serve`) with the ``[p2p]`` settings; once
   it listens, ``agent.p2p`` is set, and new did:peer DIDs carry a
   ``DIDCommMessaging`` service ``libp2p-peerId:<peer id>`` with the node's
   current addresses;
3. the peer table's connection watcher (:mod:`daemon.peers`) and the outbox
   sender (:mod:`daemon.delivery`);
4. discovery (:mod:`daemon.p2p.discovery`), whose DHT also gives the sender
   routes to DIDs that name no peer (:func:`dht_route`); then the peer table
   saved at the last stop is read back and those peers are dialled, so a peer
   backing off from us learns at once that we are back.

Inbound, :func:`on_message` is what the node calls for every message a peer
delivers: it commits the bytes through :meth:`Agent.message_receive` (dedup,
unpack, a rejected message kept with its reason) and returns only after the
commit, so the node acknowledges the stream only then; if the commit fails it
raises and the node resets the stream (the sender retries).  A message that
was committed but refused, from a sender who named itself (the JWE's ``skid``,
the JWS's ``kid``) and for a reason other than failed cryptography (which
would make the name untrustworthy), is answered with a problem-report
(``protocols.report_problem.report_for_error``), at most one per sender every
:data:`PROBLEM_REPLY_INTERVAL` seconds, so a peer cannot turn us into an
amplifier.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from functools import partial
from typing import Any, Final

import trio

from protocols.codec import b64u_decode
from protocols.did.syntax import split_did_url
from protocols.errors import DIDCommError
from protocols.report_problem import PIURI, PROBLEM_REPORT, report_for_error

from .delivery import NoRouteError, Route, Sender
from .errors import DaemonError
from .logs import get_logger
from .p2p import endpoint
from .p2p.discovery import Discovery
from .p2p.host import P2PNode
from .p2p.host import serve as serve_node
from .p2p.identity import PeerIdentity, load_or_create_identity
from .peers import SAVED_PEERS_RECORD, PeerTable
from .wallet import PEER_IDENTITY_SECRET

#: Name of the sealed peer identity in the store's ``meta`` table (the wallet's
#: backups carry it).
IDENTITY_SECRET: Final = PEER_IDENTITY_SECRET
#: Seconds between two problem-reports to the same sender.
PROBLEM_REPLY_INTERVAL: Final = 10.0
#: Senders whose last problem-report time we remember.
MAX_PROBLEM_SENDERS: Final = 4096
#: Largest rejected message we look into for its sender's name.
MAX_SENDER_PROBE_BYTES: Final = 64 * 1024
#: Problem codes after which the sender's name cannot be trusted: no reply.
UNTRUSTED_PREFIXES: Final = ("e.p.trust",)

log = get_logger("transport")


async def peer_identity(agent: Any) -> PeerIdentity:
    """The node's identity from the wallet (made and sealed on first start)."""
    store, wallet = agent.store, agent.wallet

    async def load() -> bytes | None:
        sealed = await store.run(store.sync.meta_get, IDENTITY_SECRET)
        if sealed is None:
            return None
        if not isinstance(sealed, bytes):
            raise DaemonError("store", "the stored peer identity is damaged")
        return bytes(wallet.open_secret(IDENTITY_SECRET, sealed))

    async def save(data: bytes) -> None:
        await store.run(store.sync.meta_put, IDENTITY_SECRET, wallet.seal_secret(IDENTITY_SECRET, data))

    return await load_or_create_identity(load, save)


def did_signer(agent: Any) -> Any:
    """``sign_for(did)`` for :class:`Discovery`: one of our DID's authentication
    keys (its kid, and a function signing with it), or None if we hold none."""

    def sign_for(did: str) -> tuple[str, Any] | None:
        try:
            methods = agent.resolver.resolve(did).authentication_methods()
        except DIDCommError:
            return None
        for vm in methods:
            key = agent.wallet.get_key(vm.id)
            if key is not None:
                return vm.id, key.sign
        return None

    return sign_for


async def dht_route(discovery: Discovery, did: str) -> Route | None:
    """The outbox sender's ``dht_lookup``: ``did``'s route from its checked DHT
    record, None if there is none; NoRouteError if the DHT has nobody to ask."""
    if not discovery.has_neighbours():
        raise NoRouteError("the DHT has no peers to ask")
    record = await discovery.lookup_did(did)
    if record is None:
        return None
    return Route(record.peer_id, record.addrs)


def didcomm_service(node: P2PNode) -> dict[str, Any]:
    """The ``DIDCommMessaging`` service for a new DID of ours."""
    return {
        "id": "#didcomm-1",
        "type": "DIDCommMessaging",
        "serviceEndpoint": endpoint.service_endpoint(node.peer_id, node.addrs),
    }


def _claimed_sender(packed: bytes) -> str | None:
    """The DID a refused message says it is from (``skid`` / ``kid``), unverified."""
    if len(packed) > MAX_SENDER_PROBE_BYTES:
        return None
    try:
        outer = json.loads(packed)
        headers = []
        if isinstance(outer, dict):
            if isinstance(outer.get("protected"), str):
                headers.append(json.loads(b64u_decode(outer["protected"])))
            for sig in outer.get("signatures") or []:
                if isinstance(sig, dict) and isinstance(sig.get("protected"), str):
                    headers.append(json.loads(b64u_decode(sig["protected"])))
            if isinstance(outer.get("from"), str):
                return split_did_url(outer["from"])[0]
        for header in headers:
            if not isinstance(header, dict):
                continue
            kid = header.get("skid") or header.get("kid")
            if isinstance(kid, str) and kid.startswith("did:"):
                return split_did_url(kid)[0]
    # RecursionError: JSON nested deeper than Python's recursion limit fits in a
    # few KB, and this runs in the transport's nursery, where it would stop the daemon.
    except (ValueError, TypeError, RecursionError, DIDCommError):
        return None
    return None


class Inbound:
    """The node's ``on_message``, with the problem-report replies it may owe."""

    def __init__(self, agent: Any, nursery: trio.Nursery) -> None:
        self.agent = agent
        self.nursery = nursery
        self.peers: PeerTable | None = None
        self.sender: Sender | None = None
        self._replied: OrderedDict[str, float] = OrderedDict()

    async def on_message(self, packed: bytes, peer_id: str) -> None:
        """Commit one inbound message; return only once it is committed."""
        if self.peers is not None:
            self.peers.seen(peer_id, "inbound")
        if self.sender is not None:
            self.sender.peer_reachable(peer_id)
        result = await self.agent.message_receive(packed, transport="libp2p")
        if result.get("state") == "rejected":
            self.nursery.start_soon(self._answer_refusal, packed, result["id"])

    async def _answer_refusal(self, packed: bytes, ref: str) -> None:
        sender = _claimed_sender(packed)
        if sender is None:
            return
        now = time.monotonic()
        last = self._replied.get(sender)
        if last is not None and now - last < PROBLEM_REPLY_INTERVAL:
            return
        try:
            row = await self.agent.message_get(ref)
            code = row.get("problem_code") or "e.p.msg"
            if code.startswith(UNTRUSTED_PREFIXES):
                return
            own = {d["did"] for d in await self.agent.did_list()}
            if not own or sender in own:
                return
            self._replied[sender] = now
            while len(self._replied) > MAX_PROBLEM_SENDERS:
                self._replied.popitem(last=False)
            error = DIDCommError(str(row.get("reason") or "the message was refused"))
            error.problem_code = code
            report = report_for_error(error, None, msg_id="unused", frm=None)
            await self.agent.message_send(
                sender,
                PROBLEM_REPORT,
                report["body"],
                pthid=report["pthid"],
            )
            log.info("transport.problem_reported", to=sender, code=code, protocol=PIURI)
        except (DaemonError, DIDCommError) as exc:
            log.info("transport.problem_report_skipped", to=sender, error=str(exc))


async def serve(agent: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the node, the peer table and the outbox sender for ``agent`` until cancelled."""
    identity = await peer_identity(agent)
    async with trio.open_nursery() as nursery:
        inbound = Inbound(agent, nursery)
        node: P2PNode = await nursery.start(
            partial(serve_node, agent.config.p2p, identity, inbound.on_message)
        )
        peers = PeerTable(node, agent.events, bootstrap=tuple(agent.config.p2p.bootstrap))
        known = peers.restore(await agent.store.run(agent.store.sync.meta_get, SAVED_PEERS_RECORD))
        sender = Sender(agent, node, agent.config.delivery, peers=peers)
        peers._on_connected = sender.peer_reachable
        inbound.peers, inbound.sender = peers, sender
        await nursery.start(peers.watch)
        await nursery.start(sender.serve)
        # mDNS, bootstrap peers and the DHT (daemon.p2p.discovery).
        discovery = Discovery(
            node, agent.config.p2p, identity, peers=peers, events=agent.events,
            reachable=sender.peer_reachable, own_dids=agent.did_list,
            sign_for=did_signer(agent),
        )
        await nursery.start(discovery.serve)
        sender.dht_lookup = partial(dht_route, discovery)

        async def save_peers(items: list[dict[str, Any]]) -> None:
            # Relaxed: a table lost to a power cut only means fewer dials at the next start.
            await agent.store.run_relaxed(agent.store.sync.meta_put, SAVED_PEERS_RECORD, items)

        await nursery.start(peers.keep_saved, save_peers)
        nursery.start_soon(peers.redial, known)  # the peers we knew, in the background
        agent.attach_transport(node=node, peers=peers, sender=sender)
        log.info("transport.ready", peer_id=node.peer_id, addrs=node.addrs)
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            agent.attach_transport(node=None, peers=None, sender=None)

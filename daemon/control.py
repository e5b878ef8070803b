"""The control socket: local programs drive the daemon through msgpack requests.

Theory of operation
-------------------
The daemon listens on a Unix stream socket (``control.socket`` in the config;
``$XDG_RUNTIME_DIR/didcommd/control.sock`` by default, or a socket systemd
passed us).  The socket file is created with mode 0600 - 0660 when an
``allowed_group`` is configured - and every connection's peer credentials
(``SO_PEERCRED``) are checked again in :func:`peer_is_allowed`, so a socket
file that is too permissive by mistake still lets nobody else in.

Every message on a connection is one frame of :mod:`daemon.frames`.  A client
sends requests and receives, in any order, replies and event frames::

    request  {"id": 7, "method": "did.create", "params": {"method": "peer"}}
    reply    {"id": 7, "result": {...}}
          or {"id": 7, "error": {"code": "invalid_params", "message": "...", "data": ...}}
    event    {"event": {"seq": 12, "kind": "message.received", ...}, "subscription": 1}

Requests on one connection run concurrently (up to
``max_pending_per_connection``); replies carry the request's ``id`` and may
come back out of order.  :data:`METHODS` is the whole API: each entry names
its parameters, their types and what it returns, and ``docs/control-api.md``
is generated from it (``python -m daemon.control --markdown``).

Failure handling, by layer:

- a frame over ``max_request_bytes`` or that is not msgpack: one error reply
  (``id`` null) and the connection is closed, since the frame boundaries are lost;
- a valid frame that is not a request, an unknown method, bad parameters, too
  many pending requests: an error reply, and the connection stays open;
- a method that fails: its typed error (``daemon.errors.error_from``) - never a
  traceback and never key material;
- more than ``max_clients`` connections, or a peer of another uid: one error
  frame and the connection is closed.

Shutdown (:meth:`ControlServer.shutdown`): stop accepting, stop reading new
requests, end event streams, let requests already running finish and send
their replies, then close.  The service bounds that with
``daemon.shutdown_timeout``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import grp
import itertools
import os
import socket
import stat
import struct
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio

from protocols.errors import DIDCommError

from . import frames
from .agent import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT
from .conversations import CHAT_PAGE, MAX_CHAT_PAGE
from .errors import DaemonError, error_from
from .locks import EagerLock
from .logs import get_logger

log = get_logger("control")

#: Version of the control API; bumped when a method changes incompatibly.
#: Methods added later say so in their ``since`` field.
CONTROL_API_VERSION = 1

# -- limits (each overridable by the [control] section of the config) -----------

#: Largest request frame accepted (``control.max_request_bytes``).
DEFAULT_MAX_REQUEST_BYTES = frames.DEFAULT_MAX_FRAME_BYTES
#: Most simultaneous client connections (``control.max_clients``).
DEFAULT_MAX_CLIENTS = 64
#: Most requests one connection may have running at once
#: (``control.max_pending_per_connection``); more get a ``busy`` error.
DEFAULT_MAX_PENDING_PER_CONNECTION = 16
#: Socket file mode when only the daemon's user may connect.
DEFAULT_SOCKET_MODE = 0o600

# -- fixed limits ---------------------------------------------------------------

#: Largest reply frame we send; a bigger result becomes a ``reply_too_large`` error.
MAX_REPLY_BYTES = 16 * 1024 * 1024
#: Once a frame has started, the rest must arrive within this many seconds.
PARTIAL_FRAME_TIMEOUT = 30.0
#: A client that does not read a frame within this many seconds is dropped.
SEND_TIMEOUT = 30.0
#: Bytes asked of the socket per read.
RECV_CHUNK_BYTES = 64 * 1024
#: Event subscriptions one connection may hold.
MAX_SUBSCRIPTIONS_PER_CONNECTION = 8
#: Most queued events a subscription sends in one write.
EVENTS_PER_WRITE = 64
#: Longest string request id accepted.
MAX_ID_CHARS = 128
#: Pause before retrying ``accept`` after running out of fds or memory.
ACCEPT_RETRY_SECONDS = 0.1
#: Groups read per peer with ``SO_PEERGROUPS`` (Linux caps a process at 65536).
MAX_PEER_GROUPS = 65536
#: ``SO_PEERGROUPS`` (Linux >= 4.13); Python does not export it.
_SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)
_UCRED = struct.Struct("3i")
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}

# -- error codes this module produces (the agent's come from daemon.errors) -----

#: Code → meaning, for the generated documentation.
CONTROL_ERROR_CODES: dict[str, str] = {
    "malformed_frame": "the frame is not one msgpack value; the connection is closed",
    "frame_too_large": "the frame is over `max_request_bytes`; the connection is closed",
    "timeout": "a frame started but did not finish in time; the connection is closed",
    "invalid_request": "the frame is not a `{id, method, params}` map",
    "method_not_found": "no such method (see `methods`)",
    "invalid_params": "a parameter is missing, unknown, or of the wrong type",
    "busy": "too many pending requests on this connection, or too many clients",
    "permission_denied": "the peer's uid/gid may not use this socket; the connection is closed",
    "reply_too_large": "the result is over the reply size limit; ask for less (e.g. `limit`)",
    "shutting_down": "the daemon is stopping and takes no new work",
    "internal": "a bug in the daemon; details are in its log, not in the reply",
}


#: What the agent's codes (``daemon.errors``) mean to a client, for the docs.
_AGENT_ERROR_MEANINGS: dict[str, str] = {
    "not_found": "the DID, message or record does not exist",
    "unavailable": "a resource the request needs is not available right now",
    "wallet_locked": "the wallet cannot be opened (passphrase, key file)",
    "permission": "the operation is not allowed",
    "config": "the configuration is invalid (`data`: file, key)",
    "crypto": "a key or cryptographic operation failed (`data.problem_code`)",
    "did": "a DID or DID document cannot be used (`data.problem_code`)",
    "invalid_message": "a DIDComm message is malformed or invalid (`data.problem_code`)",
    "unsupported": "an algorithm or message form we do not implement",
    "expired": "the message has expired",
    "conflict": "the request conflicts with stored state (e.g. a duplicate)",
    "store": "the store cannot be used (disk error, corrupt, newer schema)",
}


class ControlRequestError(Exception):
    """A request the control layer itself refuses (bad frame, bad params, ...)."""

    def __init__(self, code: str, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class ControlSocketError(Exception):
    """The control socket cannot be created or used."""


# -- the agent as the control layer sees it --------------------------------------


class EventSource(Protocol):
    """``daemon.events.EventBus`` as the control layer uses it."""

    def subscribe(
        self, kinds: set[str] | None = None, since: int | None = None
    ) -> Any:  # an async context manager yielding a trio.MemoryReceiveChannel[dict]
        ...


class AgentAPI(Protocol):
    """The part of ``daemon.agent.Agent`` the control methods call."""

    events: EventSource

    async def status(self) -> dict[str, Any]: ...
    async def did_create(
        self, method: str = ..., *, label: str | None = ..., services: list[dict[str, Any]] | None = ...
    ) -> dict[str, Any]: ...
    async def did_list(self) -> list[dict[str, Any]]: ...
    async def did_resolve(self, did: str) -> dict[str, Any]: ...
    async def message_send(self, to: str, type: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]: ...
    async def message_receive(self, packed: str | bytes) -> dict[str, Any]: ...
    async def message_list(self, **kw: Any) -> list[dict[str, Any]]: ...
    async def message_get(self, id: str) -> dict[str, Any]: ...
    async def message_delete(self, id: str) -> dict[str, Any]: ...
    async def outbox_get(self, id: str) -> dict[str, Any]: ...


# -- limits -----------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """The control socket's configurable limits."""

    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_clients: int = DEFAULT_MAX_CLIENTS
    max_pending_per_connection: int = DEFAULT_MAX_PENDING_PER_CONNECTION

    @classmethod
    def from_config(cls, section: Any) -> Limits:
        """Limits from a ``[control]`` config section (``daemon.config.ControlSection``)."""
        return cls(
            max_request_bytes=int(section.max_request_bytes),
            max_clients=int(section.max_clients),
            max_pending_per_connection=int(section.max_pending_per_connection),
        )


# -- the method table ---------------------------------------------------------------

#: Parameter type name → (check, description).  Names are what the docs show.
_TYPES: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "map": lambda v: isinstance(v, dict),
    "str[]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "map[]": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
    "str|bin": lambda v: isinstance(v, str | bytes),
    "num": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


@dataclass(frozen=True)
class Param:
    """One named parameter of a control method."""

    name: str
    type: str
    doc: str
    required: bool = False
    choices: tuple[str, ...] = ()
    min: int | None = None
    max: int | None = None

    def check(self, value: Any) -> None:
        """Raise ``invalid_params`` if ``value`` is not acceptable."""
        if not _TYPES[self.type](value):
            raise ControlRequestError(
                "invalid_params", f"parameter {self.name!r} must be of type {self.type}"
            )
        if self.choices and value not in self.choices:
            raise ControlRequestError(
                "invalid_params",
                f"parameter {self.name!r} must be one of {', '.join(self.choices)}",
            )
        if self.min is not None and value < self.min:
            raise ControlRequestError("invalid_params", f"parameter {self.name!r} must be >= {self.min}")
        if self.max is not None and value > self.max:
            raise ControlRequestError("invalid_params", f"parameter {self.name!r} must be <= {self.max}")


Handler = Callable[["Call", dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    """One control method: its name, parameters, handler and documentation."""

    name: str
    handler: Handler
    doc: str
    result: str
    params: tuple[Param, ...] = ()
    since: int = 1

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Checked parameters (absent optional ones and explicit nils are left out)."""
        known = {p.name: p for p in self.params}
        unknown = sorted(str(k) for k in params if k not in known)
        if unknown:
            raise ControlRequestError(
                "invalid_params", f"unknown parameter(s) for {self.name}: {', '.join(unknown)}"
            )
        checked: dict[str, Any] = {}
        for p in self.params:
            value = params.get(p.name)
            if value is None:
                if p.required:
                    raise ControlRequestError("invalid_params", f"parameter {p.name!r} is required")
                continue
            p.check(value)
            checked[p.name] = value
        return checked

    def describe(self) -> dict[str, Any]:
        """The method as plain data (the ``methods`` reply)."""
        return {
            "name": self.name,
            "doc": self.doc,
            "result": self.result,
            "since": self.since,
            "params": [
                {
                    "name": p.name,
                    "type": p.type,
                    "required": p.required,
                    "doc": p.doc,
                    **({"choices": list(p.choices)} if p.choices else {}),
                }
                for p in self.params
            ],
        }


@dataclass
class Call:
    """What a method handler gets besides its parameters."""

    server: ControlServer
    conn: Connection
    #: Run after the reply is sent (e.g. start forwarding events, shut down).
    after_reply: list[Callable[[], None]] = field(default_factory=list)

    @property
    def agent(self) -> AgentAPI:
        return self.server.agent


async def _version(call: Call, p: dict[str, Any]) -> Any:
    return {
        "api": CONTROL_API_VERSION,
        "daemon": call.server.daemon_version,
        "methods": sorted(METHODS),
    }


async def _methods(call: Call, p: dict[str, Any]) -> Any:
    return {"api": CONTROL_API_VERSION, "methods": [m.describe() for m in METHODS.values()]}


async def _status(call: Call, p: dict[str, Any]) -> Any:
    status = dict(await call.agent.status())
    status["control"] = {
        "api": CONTROL_API_VERSION,
        "clients": call.server.clients,
        "socket": str(call.server.socket_path) if call.server.socket_path else None,
    }
    return status


async def _did_create(call: Call, p: dict[str, Any]) -> Any:
    if "services" in p:
        return await call.agent.did_create(p.get("method", "peer"), label=p.get("label"), services=p["services"])
    return await call.agent.did_create(p.get("method", "peer"), label=p.get("label"))


async def _did_list(call: Call, p: dict[str, Any]) -> Any:
    return {"dids": await call.agent.did_list()}


async def _did_resolve(call: Call, p: dict[str, Any]) -> Any:
    return await call.agent.did_resolve(p["did"])


async def _did_add(call: Call, p: dict[str, Any]) -> Any:
    return await call.agent.did_add_known(p["doc"], label=p.get("label"))


async def _message_send(call: Call, p: dict[str, Any]) -> Any:
    return await call.agent.message_send(
        p["to"],
        p["type"],
        p.get("body", {}),
        frm=p.get("from"),
        thid=p.get("thid"),
        expires_time=p.get("expires_time"),
        anoncrypt=p.get("anoncrypt", False),
    )


async def _message_receive(call: Call, p: dict[str, Any]) -> Any:
    return await call.agent.message_receive(p["packed"])


async def _message_list(call: Call, p: dict[str, Any]) -> Any:
    messages = await call.agent.message_list(
        box=p.get("box", "inbox"), limit=p.get("limit", DEFAULT_LIST_LIMIT), before=p.get("before")
    )
    return {"messages": messages}


async def _message_get(call: Call, p: dict[str, Any]) -> Any:
    return await call.agent.message_get(p["id"])


async def _message_delete(call: Call, p: dict[str, Any]) -> Any:
    return await call.agent.message_delete(p["id"])


async def _outbox_get(call: Call, p: dict[str, Any]) -> Any:
    return await call.agent.outbox_get(p["id"])


# -- connections and protocols (issue 6; daemon.conversations does the work) ----------


def _conv(call: Call) -> Any:
    return call.agent.conversations  # type: ignore[attr-defined]


async def _invitation_create(call: Call, p: dict[str, Any]) -> Any:
    kw = {k: p[k] for k in ("goal", "goal_code", "multi_use", "label", "base_url") if k in p}
    return await _conv(call).invite_create(expires_in=p.get("expires"), **kw)


async def _invitation_accept(call: Call, p: dict[str, Any]) -> Any:
    return await _conv(call).invite_accept(p["invitation"], label=p.get("label"))


async def _connections_list(call: Call, p: dict[str, Any]) -> Any:
    return {"connections": [c.summary() for c in await _conv(call).connections.list()]}


async def _connections_show(call: Call, p: dict[str, Any]) -> Any:
    return (await _conv(call).connections.get(p["connection"])).details()


async def _connections_delete(call: Call, p: dict[str, Any]) -> Any:
    return await _conv(call).forget(p["connection"])


async def _connections_rename(call: Call, p: dict[str, Any]) -> Any:
    return await _conv(call).rename(p["connection"], p["label"])


async def _connections_rotate(call: Call, p: dict[str, Any]) -> Any:
    return await _conv(call).rotate(p["connection"], label=p.get("label"))


async def _trust_ping(call: Call, p: dict[str, Any]) -> Any:
    return await _conv(call).ping(
        p["to"], wait=p.get("wait", 0), response_requested=p.get("response_requested", True)
    )


async def _features_query(call: Call, p: dict[str, Any]) -> Any:
    return await _conv(call).features(
        p["connection"], query=p.get("query", "*"), feature_type=p.get("feature_type", "protocol"),
        wait=p.get("wait", 0),
    )


async def _basicmessage_send(call: Call, p: dict[str, Any]) -> Any:
    return await _conv(call).chat(
        p["connection"], p["content"], lang=p.get("lang"), please_ack=p.get("please_ack", False)
    )


async def _basicmessage_list(call: Call, p: dict[str, Any]) -> Any:
    return await _conv(call).chat_history(p["connection"], limit=p.get("limit", CHAT_PAGE), before=p.get("before"))


async def _protocol_thread(call: Call, p: dict[str, Any]) -> Any:
    return await _conv(call).thread(p["thid"])


async def _protocol_thread_delete(call: Call, p: dict[str, Any]) -> Any:
    return await _conv(call).thread_delete(p["thid"])


# -- credentials (issue-credential 3.0, present-proof 3.0; daemon.credentials) --------------


def _creds(call: Call) -> Any:
    return _conv(call).credentials


async def _credential_offer(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).offer(
        p["connection"], vct=p.get("type"), claims=p["claims"], disclosable=p.get("disclosable"),
        issuer=p.get("issuer"), comment=p.get("comment"), valid_for=p.get("valid_for"), wait=p.get("wait", 0),
        format=p.get("format"), revocable=p.get("revocable", True), reply=p.get("reply"),
    )


async def _credential_propose(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).propose(
        p["connection"], vct=p.get("type"), claims=p.get("claims"), comment=p.get("comment"),
        reply=p.get("reply"), wait=p.get("wait", 0), format=p.get("format"),
    )


async def _proof_propose(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).propose_proof(
        p["connection"], claims=p["claims"], vct=p.get("type"), format=p.get("format", "sd-jwt"),
        comment=p.get("comment"), reply=p.get("reply"), wait=p.get("wait", 0),
    )


async def _credential_revoke(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).revoke(p["credential"])


async def _credential_suspend(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).suspend(p["credential"])


async def _credential_reinstate(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).reinstate(p["credential"])


async def _credential_refresh(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).refresh(p.get("id"), wait=p.get("wait", 0))


async def _credential_issued(call: Call, p: dict[str, Any]) -> Any:
    from protocols.issue_credential import PIURI

    return {"offers": await _creds(call).threads(PIURI, "issuer", p.get("limit", 100))}


async def _proof_list(call: Call, p: dict[str, Any]) -> Any:
    from protocols.present_proof import PIURI

    return {"requests": await _creds(call).threads(PIURI, "verifier", p.get("limit", 100))}


async def _credential_accept(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).accept_offer(p["thid"], wait=p.get("wait", 0))


async def _credential_decline(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).decline(p["thid"], reason=p.get("reason"))


async def _credential_pending(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).pending()


async def _credential_list(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).stored()


async def _credential_show(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).show(p["id"], raw=p.get("raw", False))


async def _credential_delete(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).delete(p["id"])


async def _proof_request(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).request_proof(
        p["connection"], claims=p.get("claims"), vct=p.get("type"), issuers=p.get("issuers"),
        comment=p.get("comment"), wait=p.get("wait", 0), format=p.get("format"),
        status_max_age=p.get("status_max_age"), reply=p.get("reply"),
    )


async def _proof_show(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).proof_result(p["thid"])


async def _proof_present(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).present(p["thid"], credential=p.get("credential"))


async def _proof_decline(call: Call, p: dict[str, Any]) -> Any:
    return await _creds(call).decline(p["thid"], reason=p.get("reason"))


async def _events_subscribe(call: Call, p: dict[str, Any]) -> Any:
    kinds = set(p["kinds"]) if p.get("kinds") else None
    sid, start = await call.conn.subscribe(kinds, p.get("since"))
    call.after_reply.append(start)
    return {"subscription": sid}


async def _events_unsubscribe(call: Call, p: dict[str, Any]) -> Any:
    return {"unsubscribed": call.conn.unsubscribe(p["subscription"])}


async def _peers_list(call: Call, p: dict[str, Any]) -> Any:
    return {"peers": await call.server.agent.peers_list()}


async def _peers_connect(call: Call, p: dict[str, Any]) -> Any:
    return await call.server.agent.peers_connect(p["multiaddr"])


async def _shutdown(call: Call, p: dict[str, Any]) -> Any:
    call.after_reply.append(call.server.request_shutdown)
    return {"state": "stopping"}


_DID_METHODS = ("peer", "key")

METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method(
            "version",
            _version,
            "The control API version, the daemon version and the method names.",
            "`{api: int, daemon: str, methods: [str]}`",
        ),
        Method(
            "methods",
            _methods,
            "Every method with its parameters and documentation (this page as data).",
            "`{api: int, methods: [{name, doc, result, since, params: [{name, type, required, doc}]}]}`",
        ),
        Method(
            "status",
            _status,
            "The daemon's state: version, uptime, state directory, DIDs, inbox and outbox counts, control clients.",
            "`{version, uptime_s, state_dir, dids, inbox, outbox_pending, ..., control: {api, clients, socket}}`",
        ),
        Method(
            "did.create",
            _did_create,
            "Create a DID whose keys go to the wallet (encrypted). `peer` makes a did:peer:2 with an "
            "Ed25519 authentication key and an X25519 key-agreement key; `key` makes a did:key.",
            "`{did, method, label, created}` (never key material)",
            (
                Param("method", "str", "DID method (default `peer`)", choices=_DID_METHODS),
                Param("label", "str", "a local name for the DID"),
                Param(
                    "services",
                    "map[]",
                    "did:peer only: the DID's services instead of the default DIDCommMessaging one "
                    "(e.g. `[{\"type\": \"DIDCommMessaging\", \"serviceEndpoint\": "
                    "{\"uri\": \"libp2p-peerId:12D3KooW...\"}}]`: a peer id and no addresses, "
                    "found by mDNS or the DHT)",
                ),
            ),
        ),
        Method("did.list", _did_list, "Our own DIDs.", "`{dids: [{did, method, label, created}]}`"),
        Method(
            "did.resolve",
            _did_resolve,
            "Resolve a DID (did:key, did:peer, or one we know) to its DID document.",
            "the DID document (JSON-LD as a map)",
            (Param("did", "str", "the DID to resolve", required=True),),
        ),
        Method(
            "did.add",
            _did_add,
            "Remember another party's DID document, for DIDs whose document cannot be computed "
            "from the DID itself (did:key has no services: give its document with a DIDCommMessaging "
            "`libp2p-peerId:` service to make it reachable).",
            "`{did, method, label, created}`",
            (
                Param("doc", "map", "the DID document", required=True),
                Param("label", "str", "a local name for it"),
            ),
        ),
        Method(
            "message.send",
            _message_send,
            "Build a DIDComm plaintext message, pack it (authcrypt from `from`, or from our first DID; "
            "anoncrypt if asked) and commit it to the outbox. The reply means it is stored, not delivered.",
            '`{id, state: "queued"}`',
            (
                Param("to", "str", "recipient DID", required=True),
                Param("type", "str", "message type URI", required=True),
                Param("body", "map", "message body (default `{}`)"),
                Param("from", "str", "sender DID (one of ours); default: our first DID"),
                Param("thid", "str", "thread id"),
                Param("expires_time", "int", "expiry, seconds since the epoch", min=0),
                Param("anoncrypt", "bool", "encrypt without authenticating the sender"),
            ),
        ),
        Method(
            "message.receive",
            _message_receive,
            "Inject a packed message as if it had arrived from the network: committed to the inbox "
            "(deduplicated), unpacked, and reported as a `message.received` or `message.rejected` event.",
            "`{id, state}`",
            (Param("packed", "str|bin", "the packed message (JWE, JWS or plaintext JSON)", required=True),),
        ),
        Method(
            "message.list",
            _message_list,
            "Messages in the inbox or the outbox, newest first.",
            "`{messages: [{id, type, from, to, state, ...}]}`",
            (
                Param("box", "str", "`inbox` (default) or `outbox`", choices=("inbox", "outbox")),
                Param("limit", "int", f"at most this many (default {DEFAULT_LIST_LIMIT}, at most {MAX_LIST_LIMIT})", min=1, max=MAX_LIST_LIMIT),
                Param("before", "int", "only entries older than this sequence number (paging)", min=0),
            ),
        ),
        Method(
            "message.get",
            _message_get,
            "One received message with its plaintext and unpack metadata (or why it was rejected).",
            "`{id, state, message, metadata, ...}`",
            (Param("id", "str", "message id", required=True),),
        ),
        Method(
            "message.outbox.get",
            _outbox_get,
            "One sent message, including the packed form (so another transport can carry it) until it "
            "is delivered or expired: then `packed` is null, as the bytes are no longer kept.",
            "`{id, state, packed, to, ...}`",
            (Param("id", "str", "message id", required=True),),
        ),
        Method(
            "message.delete",
            _message_delete,
            "Erase a received or sent message: its inbox content (a tombstone of id and sender stays, "
            "so a copy arriving again is a duplicate), its outbox row (a queued message is then not "
            "sent; one being sent right now is refused with `invalid_state`), its basic-message record, "
            "and the data of the stored events about it. Publishes `message.deleted`.",
            "`{id, deleted: {inbox, outbox, records, events}}` (how many of each were erased)",
            (Param("id", "str", "message id", required=True),),
        ),
        Method(
            "invitation.create",
            _invitation_create,
            "Make an Out-of-Band 2.0 invitation from a new did:peer:2 (with our libp2p service, so the "
            "accepter can dial us). The first answer creates a connection (`connection.created` event).",
            "`{id, did, invitation, url, didcomm_url, multi_use, expires_time}`",
            (
                Param("goal", "str", "what the connection is for, for people"),
                Param("goal_code", "str", "what the connection is for, for programs"),
                Param("multi_use", "bool", "accept any number of answers (default: one)"),
                Param("expires", "int", "seconds the invitation stays valid", min=1),
                Param("label", "str", "local name for the connections it makes"),
                Param("base_url", "str", "base of the `https` URL (default `https://didcomm.org/oob`)"),
            ),
        ),
        Method(
            "invitation.accept",
            _invitation_accept,
            "Accept an invitation (`https://...?_oob=`, `didcomm://?_oob=` or JSON): make our DID for the "
            "relationship, store a `requested` connection and send a trust ping answering the invitation; "
            "the connection becomes `active` when the inviter answers.",
            "`{connection: {id, label, state, ...}, ping: thid, existing: bool}`",
            (
                Param("invitation", "str", "the invitation URL or JSON", required=True),
                Param("label", "str", "local name for the connection (default: the invitation's goal)"),
            ),
        ),
        Method(
            "connections.list",
            _connections_list,
            "Our connections (pairwise relationships), oldest first.",
            "`{connections: [{id, label, state, role, my_did, their_did, created, updated, rotating_to}]}`",
        ),
        Method(
            "connections.show",
            _connections_show,
            "One connection with their DID document and the DIDs retired by rotations.",
            "`{id, label, state, ..., their_doc, invitation_id, my_retired, their_retired}`",
            (Param("connection", "str", "id, unique id prefix, label or DID", required=True),),
        ),
        Method(
            "connections.delete",
            _connections_delete,
            "Forget a connection (its DIDs and messages stay).",
            "`{deleted: {id, ...}}`",
            (Param("connection", "str", "id, unique id prefix, label or DID", required=True),),
        ),
        Method(
            "connections.rename",
            _connections_rename,
            "Give a connection a new local label (the name commands take); refused if the label "
            "already names another connection. Only we see it.",
            "`{connection: {id, label, state, ...}}`",
            (
                Param("connection", "str", "id, unique id prefix, label or DID", required=True),
                Param("label", "str", "the new label", required=True),
            ),
        ),
        Method(
            "connections.rotate",
            _connections_rotate,
            "Rotate our DID in a connection: a new did:peer:2; our messages carry `from_prior` (signed by "
            "the old DID) until the peer writes to the new one; then the old DID is refused.",
            "`{connection, new_did, ping: thid}`",
            (
                Param("connection", "str", "id, unique id prefix, label or DID", required=True),
                Param("label", "str", "label of the new DID"),
            ),
        ),
        Method(
            "trust_ping.send",
            _trust_ping,
            "Trust Ping 2.0 to a connection or a DID. With `wait`, the reply comes when the response "
            "arrives (`state: answered`, `rtt_ms`) or the wait ends (`state: timeout`).",
            "`{thid, to, connection, state, rtt_ms?}`",
            (
                Param("to", "str", "connection (id, prefix, label) or DID", required=True),
                Param("wait", "num", "seconds to wait for the response (default 0: do not wait)", min=0, max=300),
                Param("response_requested", "bool", "ask for a response (default true)"),
            ),
        ),
        Method(
            "features.query",
            _features_query,
            "Discover Features 2.0: ask a connection which features match a pattern (`*` wildcard). "
            "With `wait`, the reply carries the disclosures.",
            "`{thid, to, connection, state, disclosures?, max_receive_bytes?}`",
            (
                Param("connection", "str", "connection (id, prefix, label) or DID", required=True),
                Param("query", "str", "pattern, e.g. `https://didcomm.org/*` (default `*`)"),
                Param("feature_type", "str", "`protocol` (default), `goal-code`, `header`, `limit` or `all`",
                      choices=("protocol", "goal-code", "header", "limit", "all")),
                Param("wait", "num", "seconds to wait for the disclosure (default 0)", min=0, max=300),
            ),
        ),
        Method(
            "basicmessage.send",
            _basicmessage_send,
            "Basic Message 2.0 to a connection (received ones are `basicmessage.received` events and in "
            "the inbox).",
            '`{id, to, connection, state: "queued"}`',
            (
                Param("connection", "str", "connection (id, prefix, label) or DID", required=True),
                Param("content", "str", "the text", required=True),
                Param("lang", "str", "language tag of the text"),
                Param("please_ack", "bool", "ask for an acknowledgement (`ack.received` event)"),
            ),
        ),
        Method(
            "basicmessage.list",
            _basicmessage_list,
            "The conversation with a connection: the basic messages sent and received, newest first, "
            "across the connection's DID rotations. Page back with `before` = the previous page's `next`; "
            "follow it live by subscribing to `basicmessage.sent` and `basicmessage.received` events "
            "since `events_seq`.",
            "`{connection, label, their_dids, messages: [{id, direction: sent|received, from, to, time, content, lang, "
            "delivery}], next, events_seq}`",
            (
                Param("connection", "str", "connection (id, prefix, label) or DID", required=True),
                Param("limit", "int", f"messages per page (default {CHAT_PAGE})", min=1, max=MAX_CHAT_PAGE),
                Param("before", "str", "the `next` cursor of the previous page"),
            ),
        ),
        Method(
            "protocol.thread",
            _protocol_thread,
            "The stored protocol records of one thread (state, role, DIDs, data).",
            "`{thid, records: [{protocol, role, state, our_did, their_did, data, ...}]}`",
            (Param("thid", "str", "thread id", required=True),),
        ),
        Method(
            "protocol.thread.delete",
            _protocol_thread_delete,
            "Erase a finished protocol thread: its records (e.g. the claims a proof disclosed to us), "
            "the messages we received in it (tombstones stay, so they are not taken again) and the data "
            "of the stored events about it. Refused with `invalid_state` while the thread is in progress, "
            "and for an issuer's thread of a revocable credential (revocation finds its entry through "
            "it). Publishes `thread.deleted`.",
            "`{thid, deleted: {records, inbox, events}}` (how many of each were erased)",
            (Param("thid", "str", "thread id", required=True),),
        ),
        Method(
            "credential.offer",
            _credential_offer,
            "Issue Credential 3.0: offer an SD-JWT VC (or, with `format: di`, a W3C VC 2.0 Data Integrity credential) to a connection. The holder's request is "
            "answered at once with the credential, signed by the `assertionMethod` key of `issuer` "
            "(default: our did:key labelled `issuer`, made on first use) and bound to the holder's key. "
            "With `wait`, the reply comes when it is issued (`state: issued`), refused "
            "(`state: problem`), countered by the holder (`state: proposal-received`, `result` what it "
            "proposes) or the wait ends (`state: timeout`). With `reply`, the offer answers "
            "the holder's proposal on that thread (see `credential.propose`); it is ours alone, "
            "whatever was proposed.",
            "`{thid, to, connection, issuer, state, revocable, suspendable, status, reply, result?, problem?}`",
            (
                Param("connection", "str", "connection (id, prefix, label) or DID", required=True),
                Param("type", "str", "credential type (`vct`), e.g. `https://example.edu/diploma`; required "
                      "unless `reply` names a proposal that gives one"),
                Param("claims", "map", "the claims, e.g. `{given_name, birthdate, age_over_18}`", required=True),
                Param("disclosable", "str[]", "claims the holder may withhold (default: all)"),
                Param("issuer", "str", "one of our DIDs with an assertionMethod key"),
                Param("comment", "str", "for the holder"),
                Param("valid_for", "int", "the credential expires this many seconds after the offer",
                      min=1, max=10 * 365 * 24 * 3600),
                Param("format", "str", "`sd-jwt` (default: SD-JWT VC, selective disclosure; with `reply`, "
                      "the format the holder proposed) or `di` (W3C VC 2.0 + Data Integrity eddsa-jcs-2022, "
                      "bound to the holder's DID, shown whole)", choices=("sd-jwt", "di")),
                Param("revocable", "bool", "give the credential an entry in one of our status lists, so "
                      "`credential.revoke` can revoke it (default true; false: it can never be revoked)"),
                Param("reply", "str", "the thread of a credential proposal waiting for our answer "
                      "(`credential.pending`, kind `credential-proposal`); `connection` must be its peer"),
                Param("wait", "num", "seconds to wait for the issuance (default 0)", min=0, max=300),
            ),
        ),
        Method(
            "credential.propose",
            _credential_propose,
            "Issue Credential 3.0, the holder asking first: propose a credential to a connection (its type, "
            "claims, or both), or, with `reply`, counter an offer we received. The issuer sees it in its "
            "`credential.pending` (`issue-credential.proposal-received` event) and answers with an offer on "
            "the same thread, which we accept or decline as any other (`credential.accept`), or declines "
            "(a problem report; the thread is abandoned). With `wait`, the reply comes when the offer "
            "arrives (`state: offer-received`, `result` the offer), is refused (`state: problem`) or the "
            "wait ends (`state: timeout`).",
            '`{thid, to, connection, state: "proposed"|offer-received|problem|timeout, reply, result?, problem?}`',
            (
                Param("connection", "str", "connection (id, prefix, label) or DID", required=True),
                Param("type", "str", "credential type (`vct`) we ask for"),
                Param("claims", "map", "the claims we ask to be attested, e.g. `{given_name: Bob}` "
                      "(the issuer decides what it offers)"),
                Param("comment", "str", "for the issuer"),
                Param("reply", "str", "the thread of an offer we received, to counter it "
                      "(`credential.pending`, kind `offer`); `connection` must be its issuer"),
                Param("wait", "num", "seconds to wait for the issuer's offer (default 0)", min=0, max=300),
                Param("format", "str", "the credential format we would like: `sd-jwt` or `di` (default: "
                      "the issuer's choice)", choices=("sd-jwt", "di")),
            ),
        ),
        Method(
            "credential.revoke",
            _credential_revoke,
            "Revoke a credential we issued (issuer), named by its offer's thread or its credential id: "
            "its entry in our status list becomes 1 (revoked). Holders learn it when they next fetch the "
            "list, and verifiers from the list the holder staples to a presentation "
            "(`credential.revoked` event). Revocation is final; a suspended credential can be revoked. "
            "Revoking twice is harmless (`already: true`). A credential "
            "offered with `revocable: false`, or one we hold rather than issued, is an `invalid_state` error.",
            "`{thid, credential_id, to, status: {uri, index}, state: revoked, revoked: true, already}`",
            (Param("credential", "str", "the offer's thread id or the issued credential's id", required=True),),
        ),
        Method(
            "credential.suspend",
            _credential_suspend,
            "Suspend a credential we issued (issuer), until `credential.reinstate`: its entry becomes "
            "suspended (an SD-JWT VC's Token Status List entry 2; a `di` credential's bit in the suspension "
            "Bitstring Status List its second `credentialStatus` entry names). Holders see `suspended` and "
            "verifiers refuse it with `credential suspended`, from the next copy of the list, as for a "
            "revocation (`credential.suspended` event). Suspending twice is harmless (`already: true`). A "
            "revoked credential (revocation is final), one offered with `revocable: false`, a `di` credential "
            "issued before suspension (it names no suspension list), or one we hold is an `invalid_state` error.",
            "`{thid, credential_id, to, status: {uri, index}, state: suspended, suspended: true, already}`",
            (Param("credential", "str", "the offer's thread id or the issued credential's id", required=True),),
        ),
        Method(
            "credential.reinstate",
            _credential_reinstate,
            "Reinstate a suspended credential we issued (issuer): its entry is valid again, from the next copy "
            "of the list holders fetch and staple (`credential.reinstated` event). A credential that is not "
            "suspended (valid, or revoked: revocation is final) is an `invalid_state` error.",
            "`{thid, credential_id, to, status: {uri, index}, state: valid, reinstated: true, already: false}`",
            (Param("credential", "str", "the offer's thread id or the issued credential's id", required=True),),
        ),
        Method(
            "credential.refresh",
            _credential_refresh,
            "Ask the issuers, over the connections the credentials came by, for the current status lists "
            "of our credentials (or of one); each arrives as a `status-list.received` event and replaces "
            "our copy. The daemon also does this by itself every `[credentials] status_refresh` seconds. "
            "With `wait`, the reply comes when every list arrived, failed or the wait ended.",
            "`{requests: [{uri, thid, state: requested|received|failed|timeout, reason?, issued_at?}], "
            "credentials: [{id, vct, issuer, status, status_checked, status_issued}]}`",
            (
                Param("id", "str", "one credential (id or a unique prefix); default: every revocable one"),
                Param("wait", "num", "seconds to wait for the lists (default 0)", min=0, max=300),
            ),
        ),
        Method(
            "credential.issued",
            _credential_issued,
            "Our credential offers (issuer), newest first: what was offered to whom, and its state "
            "(`offer-sent`, `credential-issued`, `abandoned`).",
            "`{offers: [{thid, to, state, updated, vct, issuer, claims, credential_id, revocable, revoked, "
            "suspended}]}`",
            (Param("limit", "int", "at most this many (default 100)", min=1, max=1000),),
        ),
        Method(
            "credential.pending",
            _credential_pending,
            "Credential offers, proof requests and proposals waiting for our answer: an offer "
            "(`credential.accept`), a proof request (`proof.present`), a holder's credential proposal "
            "(`credential.offer` with `reply`), a prover's proof proposal (`proof.request` with `reply`); "
            "each may be declined (`credential.decline`). `counter`: the proposal answers an offer or "
            "request of ours.",
            "`{pending: [{thid, kind: offer|proof-request|credential-proposal|proof-proposal, from, connection, "
            "label, vct, issuer|issuers, claims, comment, updated, format + revocable + expires (offer), "
            "formats + discloses: selected|whole credential (proof-request, proof-proposal), "
            "counter (proposals; claims is an object of values in a credential-proposal, a list of names "
            "in a proof-proposal)}]}`",
        ),
        Method(
            "credential.accept",
            _credential_accept,
            "Ask for an offered credential (holder). It is verified on arrival and stored in the "
            "wallet (`issue-credential.credential-received` event). With `wait`, the reply comes then.",
            "`{thid, state, result?, problem?}`",
            (
                Param("thid", "str", "the offer's thread id", required=True),
                Param("wait", "num", "seconds to wait for the credential (default 0)", min=0, max=300),
            ),
        ),
        Method(
            "credential.decline",
            _credential_decline,
            "Decline an offer, a proof request or a proposal: the peer gets a problem report and the "
            "thread is abandoned on both sides.",
            '`{thid, state: "declined"}`',
            (
                Param("thid", "str", "the thread id", required=True),
                Param("reason", "str", "why, for the peer"),
            ),
        ),
        Method(
            "credential.list",
            _credential_list,
            "Credentials in our wallet (their claims; the credential itself with `credential.show raw`), "
            "with their revocation status as our copy of the issuer's status list tells it: `valid`, "
            "`revoked`, `suspended`, `unknown` (no usable copy) or `not revocable`; `status_checked` is when "
            "we last got the list, `status_issued` when the issuer signed it.",
            "`{credentials: [{id, vct, issuer, subject, claims, thid, received, expires, format, status, "
            "revocable, status_checked, status_issued}]}`",
        ),
        Method(
            "credential.show",
            _credential_show,
            "One stored credential.",
            "`{id, vct, issuer, subject, claims, thid, received, expires, format, status, revocable, "
            "status_checked, status_issued, sd_jwt? | credential?}`",
            (
                Param("id", "str", "credential id or a unique prefix", required=True),
                Param("raw", "bool", "include the credential itself (`sd_jwt`, or a di_vc's JSON as `credential`)"),
            ),
        ),
        Method(
            "credential.delete",
            _credential_delete,
            "Forget a stored credential.",
            "`{deleted: id}`",
            (Param("id", "str", "credential id or a unique prefix", required=True),),
        ),
        Method(
            "proof.request",
            _proof_request,
            "Present Proof 3.0: ask a connection to prove claims (a DIF Presentation Exchange "
            "definition asking for exactly these, disclosed from an SD-JWT VC with key binding). "
            "With `wait`, the reply comes when the presentation is verified (`state: verified`, "
            "`result.claims` holds only what was disclosed; `result.status`: `valid` when a revocable "
            "credential's stapled status list, signed by its issuer no more than `status_max_age` seconds "
            "ago, says so, `not revocable` for a credential without one), fails (`state: failed`, "
            "`result.reason`, e.g. `credential revoked`, `revocation status unknown`), is declined "
            "(`state: problem`), countered by the prover (`state: proposal-received`) or the wait ends. "
            "With `reply`, the request answers the prover's "
            "proposal on that thread (see `proof.propose`); `claims`, `type` and `format` default to "
            "what it proposed.",
            "`{thid, to, connection, state, reply, result?, problem?}`",
            (
                Param("connection", "str", "connection (id, prefix, label) or DID", required=True),
                Param("claims", "str[]", "claim names to disclose, e.g. `[age_over_18]`; required unless "
                      "`reply` names a proposal"),
                Param("type", "str", "credential type (`vct`) required"),
                Param("issuers", "str[]", "issuer DIDs accepted (default: any)"),
                Param("format", "str", "credential formats accepted: `sd-jwt` (default; only the asked "
                      "claims are disclosed), `di` or `any` (a Data Integrity credential is shown whole)",
                      choices=("sd-jwt", "di", "any")),
                Param("status_max_age", "int", "the oldest status list (seconds since its issuer signed it) "
                      "accepted for a revocable credential (default 86400); older, or none: the verdict is "
                      "failed, `revocation status unknown`", min=1, max=366 * 86_400),
                Param("comment", "str", "for the prover"),
                Param("reply", "str", "the thread of a proof proposal waiting for our answer "
                      "(`credential.pending`, kind `proof-proposal`); `connection` must be its peer"),
                Param("wait", "num", "seconds to wait for the presentation (default 0)", min=0, max=300),
            ),
        ),
        Method(
            "proof.propose",
            _proof_propose,
            "Present Proof 3.0, the prover asking first: offer a connection to prove claims (of a "
            "credential type, in a format), or, with `reply`, counter a proof request we received. The "
            "verifier sees it in its `credential.pending` (`present-proof.proposal-received` event) and "
            "answers with a request of its own on the same thread (`proof.request` with `reply`), which "
            "we answer as any other (`proof.present`), or declines it. With `wait`, the reply comes "
            "when that request arrives (`state: request-received`), the verifier refuses (`state: "
            "problem`) or the wait ends (`state: timeout`).",
            "`{thid, to, connection, state, reply, result?, problem?}`",
            (
                Param("connection", "str", "connection (id, prefix, label) or DID", required=True),
                Param("claims", "str[]", "claim names we would disclose, e.g. `[age_over_18]`", required=True),
                Param("type", "str", "credential type (`vct`) we would present"),
                Param("format", "str", "`sd-jwt` (default; only those claims disclosed), `di` or `any` "
                      "(a Data Integrity credential is shown whole)", choices=("sd-jwt", "di", "any")),
                Param("comment", "str", "for the verifier"),
                Param("reply", "str", "the thread of a proof request we received, to counter it "
                      "(`credential.pending`, kind `proof-request`); `connection` must be its verifier"),
                Param("wait", "num", "seconds to wait for the verifier's request (default 0)", min=0, max=300),
            ),
        ),
        Method(
            "proof.list",
            _proof_list,
            "Our proof requests (verifier), newest first, with their verdicts.",
            "`{requests: [{thid, to, state, updated, vct, asked, verdict, proven, status, reason}]}`",
            (Param("limit", "int", "at most this many (default 100)", min=1, max=1000),),
        ),
        Method(
            "proof.show",
            _proof_show,
            "A proof request of ours (verifier): what it asked and, once the prover answered, the "
            "verdict (`state: verified` with `result.claims` and `result.status`, `failed` with `result.reason`, or "
            "`problem` when declined; `requested` while waiting).",
            "`{thid, to, asked, vct, issuers, state, result?, problem?}`",
            (Param("thid", "str", "the request's thread id", required=True),),
        ),
        Method(
            "proof.present",
            _proof_present,
            "Answer a proof request (prover) with a stored credential that satisfies it, disclosing "
            "only the requested claims, and stapling our copy of its status list (if it is revocable). "
            "`credential` chooses when several fit; a credential our copy says is revoked or suspended "
            "is never chosen, only presented when named (`status` in the reply says so).",
            '`{thid, credential, state: "presented", status, format, discloses, disclosed}`',
            (
                Param("thid", "str", "the request's thread id", required=True),
                Param("credential", "str", "credential id or a unique prefix"),
            ),
        ),
        Method(
            "proof.decline",
            _proof_decline,
            "Decline a proof request: the verifier gets a problem report.",
            '`{thid, state: "declined"}`',
            (
                Param("thid", "str", "the request's thread id", required=True),
                Param("reason", "str", "why, for the verifier"),
            ),
        ),
        Method(
            "events.subscribe",
            _events_subscribe,
            "Start an event stream on this connection: events then arrive as "
            "`{event: {seq, kind, time, data}, subscription}` frames, interleaved with replies. "
            "A subscriber that falls behind gets a final `overflow` event and "
            "`{subscription, closed: true}`; the connection stays usable.",
            "`{subscription: int}`",
            (
                Param("kinds", "str[]", "only these event kinds (default: all)"),
                Param("since", "int", "first replay stored events after this sequence number", min=0),
            ),
        ),
        Method(
            "events.unsubscribe",
            _events_unsubscribe,
            "Stop an event stream started on this connection.",
            "`{unsubscribed: bool}`",
            (Param("subscription", "int", "the id `events.subscribe` returned", required=True),),
        ),
        Method(
            "peers.list",
            _peers_list,
            "Known libp2p peers: how each was found (`bootstrap`, `connect`, `outbound`, `inbound`, "
            "or a discovery mechanism), whether it is connected, its addresses, when it was last seen "
            "and the last measured latency (a delivery's round trip until the receiver's commit, "
            "or the dial of `peers.connect`). Connections coming and going are reported as "
            "`peer.found` / `peer.lost` events.",
            "`{peers: [{peer_id, addrs, how, connected, first_seen, last_seen, latency_ms}]}`",
        ),
        Method(
            "peers.connect",
            _peers_connect,
            "Dial a libp2p peer now.",
            "the peer's `peers.list` entry",
            (Param("multiaddr", "str", "where to dial, ending in `/p2p/<peer id>`", required=True),),
        ),
        Method(
            "shutdown",
            _shutdown,
            "Stop the daemon cleanly (as SIGTERM does), after replying.",
            '`{state: "stopping"}`',
        ),
    ]
}


# -- peer credentials ------------------------------------------------------------


@dataclass(frozen=True)
class PeerCredentials:
    """Who is on the other end of a Unix socket (from ``SO_PEERCRED``)."""

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] = ()


def peer_credentials(sock: socket.socket | Any) -> PeerCredentials:
    """The peer's pid, uid, gid and supplementary groups."""
    pid, uid, gid = _UCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    )
    groups: tuple[int, ...] = ()
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, 4 * MAX_PEER_GROUPS)
        groups = struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4])
    except OSError:
        # Old kernels: the primary gid is all we know.
        pass
    return PeerCredentials(pid, uid, gid, groups)


def peer_is_allowed(cred: PeerCredentials, *, uid: int, allowed_gid: int | None) -> bool:
    """The daemon's own user and root may connect; members of ``allowed_gid`` too."""
    if cred.uid in (uid, 0):
        return True
    if allowed_gid is None:
        return False
    return cred.gid == allowed_gid or allowed_gid in cred.groups


def resolve_group(name: str | None) -> int | None:
    """A group name (or number) as a gid."""
    if name is None:
        return None
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError as exc:
        raise ControlSocketError(f"group {name!r} does not exist") from exc


# -- the socket file -----------------------------------------------------------------


def _socket_in_use(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def create_socket(
    path: Path, *, mode: int = DEFAULT_SOCKET_MODE, allowed_group: str | None = None, backlog: int = 128
) -> socket.socket:
    """Bind and listen on ``path``, with the file mode set before anyone can connect.

    The parent directory is created 0700 (0710 and owned by the group when
    ``allowed_group`` is set, so members can reach the socket).  A stale socket
    file from a crashed daemon is replaced; a live one is an error.
    """
    gid = resolve_group(allowed_group)
    if gid is not None and not mode & 0o060:
        mode |= 0o060
    parent = path.parent
    if not parent.exists():
        parent.mkdir(parents=True, mode=0o700)
        if gid is not None:
            os.chown(parent, -1, gid)
            parent.chmod(0o710)
    if path.is_socket():
        if _socket_in_use(path):
            raise ControlSocketError(f"another daemon is already listening on {path}")
        path.unlink()
    elif path.exists() or path.is_symlink():
        raise ControlSocketError(f"{path} exists and is not a socket")
    if len(os.fsencode(path)) >= 108:
        raise ControlSocketError(f"socket path is too long for AF_UNIX (108 bytes): {path}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    # Bind under a umask that leaves no permission open, then widen to ``mode``:
    # the file never exists with more access than configured.
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise ControlSocketError(f"cannot bind {path}: {exc.strerror}") from exc
    finally:
        os.umask(old_umask)
    if gid is not None:
        os.chown(path, -1, gid)
    path.chmod(mode)
    sock.listen(backlog)
    return sock


def socket_file_id(path: Path) -> tuple[int, int]:
    """(device, inode) of a socket file, to recognise it later."""
    st = path.stat()
    return st.st_dev, st.st_ino


def remove_socket_file(path: Path, file_id: tuple[int, int]) -> None:
    """Unlink our socket file if it is still ours (not replaced by a newer daemon)."""
    try:
        st = path.stat()
        if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) == file_id:
            path.unlink()
    except OSError:
        pass


# -- connections ------------------------------------------------------------------------


def _error(req_id: Any, code: str, message: str, data: Any = None) -> dict[str, Any]:
    return {"id": req_id, "error": {"code": code, "message": message, "data": data}}


def _request_id(frame: dict[Any, Any]) -> Any:
    """The frame's id if it is usable, else None (so an error reply can still be matched)."""
    rid = frame.get("id")
    if isinstance(rid, bool):
        return None
    if isinstance(rid, int) or (isinstance(rid, str) and len(rid) <= MAX_ID_CHARS):
        return rid
    return None


_sub_ids = itertools.count(1)


def _encode_outgoing(value: dict[str, Any]) -> bytes | None:
    """One outgoing frame; an unencodable reply becomes an error reply (None: drop it)."""
    try:
        return frames.encode_frame(value, MAX_REPLY_BYTES)
    except frames.FrameTooLargeError as exc:
        if "id" not in value:
            return None
        return frames.encode_frame(_error(value["id"], "reply_too_large", str(exc)))
    except (TypeError, ValueError, OverflowError):
        log.exception("control.reply_unencodable")
        if "id" not in value:
            return None
        return frames.encode_frame(
            _error(value["id"], "internal", "internal error (see the daemon log)")
        )


class Connection:
    """One client connection: reads requests, runs them, writes replies and events."""

    def __init__(self, server: ControlServer, stream: trio.SocketStream, cred: PeerCredentials) -> None:
        self.server = server
        self.stream = stream
        self.cred = cred
        self.pending = 0
        self.broken = False
        self._send_lock = EagerLock()
        self._reader_scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self._subscriptions: dict[int, trio.CancelScope] = {}

    # -- writing --

    async def send(self, value: dict[str, Any]) -> bool:
        """Send one frame; False if the client is gone or stopped reading."""
        return await self.send_many([value])

    async def send_many(self, values: list[dict[str, Any]]) -> bool:
        """Send frames in one write (one system call, one wake-up of the client)."""
        if self.broken:
            return False
        encoded = [data for data in map(_encode_outgoing, values) if data is not None]
        if not encoded:
            return False
        data = encoded[0] if len(encoded) == 1 else b"".join(encoded)
        async with self._send_lock:
            with trio.move_on_after(SEND_TIMEOUT) as scope:
                try:
                    await self.stream.send_all(data)
                    return True
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            if scope.cancelled_caught:
                log.warning("control.slow_client_dropped", pid=self.cred.pid)
        self._break()
        return False

    def _break(self) -> None:
        self.broken = True
        self.stop_reading()

    # -- reading --

    def stop_reading(self) -> None:
        """Take no more requests and end every event stream (running requests finish)."""
        self._reader_scope.cancel()
        for scope in self._subscriptions.values():
            scope.cancel()

    async def run(self) -> None:
        """Serve this connection until EOF, a framing error, or shutdown."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            with self._reader_scope:
                await self._read_loop(nursery)
            self.stop_reading()
            # Leaving the nursery waits for running requests: their work is done
            # (and committed) even if the client has gone away.

    async def _read_loop(self, nursery: trio.Nursery) -> None:
        decoder = frames.FrameDecoder(self.server.limits.max_request_bytes)
        while True:
            decoder.max_frame_bytes = self.server.limits.max_request_bytes
            try:
                frame = decoder.next_frame()
            except frames.FrameError as exc:
                await self.send(_error(None, exc.code, str(exc)))
                return
            if frame is not frames.NEED_DATA:
                await self._dispatch(frame, nursery)
                # Let handlers started by a burst of frames run before we read more.
                await trio.lowlevel.checkpoint()
                continue
            timeout = PARTIAL_FRAME_TIMEOUT if decoder.partial else float("inf")
            with trio.move_on_after(timeout):
                try:
                    data = await self.stream.receive_some(RECV_CHUNK_BYTES)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                if not data:
                    return
                decoder.feed(data)
                continue
            await self.send(_error(None, "timeout", f"incomplete frame for {PARTIAL_FRAME_TIMEOUT:g} s"))
            return

    async def _dispatch(self, frame: Any, nursery: trio.Nursery) -> None:
        """Start a valid request as a task; answer an invalid one here and now.

        Refusals are sent inline, so a client streaming bad requests is slowed
        down by its own replies instead of piling up tasks.
        """
        if not isinstance(frame, dict):
            await self.send(_error(None, "invalid_request", "a request must be a map"))
            return
        req_id = _request_id(frame)
        try:
            if req_id is None:
                raise ControlRequestError("invalid_request", "request 'id' must be an integer or a short string")
            method_name = frame.get("method")
            if not isinstance(method_name, str):
                raise ControlRequestError("invalid_request", "request 'method' must be a string")
            extra = sorted(str(k) for k in frame if k not in ("id", "method", "params"))
            if extra:
                raise ControlRequestError("invalid_request", f"unknown request field(s): {', '.join(extra)}")
            method = METHODS.get(method_name)
            if method is None:
                raise ControlRequestError("method_not_found", f"no method {method_name[:64]!r} (see 'methods')")
            params = frame.get("params")
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise ControlRequestError("invalid_params", "request 'params' must be a map")
            checked = method.validate(params)
            if self.server.stopping:
                raise ControlRequestError("shutting_down", "the daemon is shutting down")
            limit = self.server.limits.max_pending_per_connection
            if self.pending >= limit:
                raise ControlRequestError("busy", f"too many pending requests on this connection (limit {limit})")
        except ControlRequestError as exc:
            await self.send(_error(req_id, exc.code, exc.message, exc.data))
            return
        self.pending += 1
        nursery.start_soon(self._run_request, req_id, method, checked)

    async def _run_request(self, req_id: Any, method: Method, params: dict[str, Any]) -> None:
        call = Call(self.server, self)
        try:
            try:
                result = await method.handler(call, params)
                reply: dict[str, Any] = {"id": req_id, "result": result}
            except Exception as exc:  # every failure becomes an error reply, never a dead task
                code, message, data = self.server.describe_error(exc, method.name)
                reply = _error(req_id, code, message, data)
                call.after_reply.clear()
            finally:
                self.pending -= 1
            await self.send(reply)
        finally:
            for hook in call.after_reply:
                hook()

    # -- events --

    async def subscribe(self, kinds: set[str] | None, since: int | None) -> tuple[int, Callable[[], None]]:
        """Open a subscription; returns its id and a function that starts delivery."""
        if len(self._subscriptions) >= MAX_SUBSCRIPTIONS_PER_CONNECTION:
            raise ControlRequestError(
                "busy", f"too many subscriptions on this connection (limit {MAX_SUBSCRIPTIONS_PER_CONNECTION})"
            )
        assert self._nursery is not None
        sid = next(_sub_ids)
        gate = trio.Event()
        scope = trio.CancelScope()
        self._subscriptions[sid] = scope
        try:
            await self._nursery.start(functools.partial(self._forward_events, sid, kinds, since, gate, scope))
        except BaseException:
            # E.g. the event bus has as many subscribers as it takes (``unavailable``).
            self._subscriptions.pop(sid, None)
            raise
        return sid, gate.set

    def unsubscribe(self, sid: int) -> bool:
        """Stop a subscription; False if there is no such subscription."""
        scope = self._subscriptions.get(sid)
        if scope is None:
            return False
        scope.cancel()
        return True

    async def _forward_events(
        self,
        sid: int,
        kinds: set[str] | None,
        since: int | None,
        gate: trio.Event,
        scope: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            with scope:
                async with self.server.agent.events.subscribe(kinds, since) as channel:
                    task_status.started()
                    # Events go out only after the subscribe reply, so the
                    # client knows the subscription id before the first event.
                    await gate.wait()
                    async for event in channel:
                        # Whatever else is waiting goes out in the same write.
                        batch = [{"event": event, "subscription": sid}]
                        while len(batch) < EVENTS_PER_WRITE:
                            try:
                                more = channel.receive_nowait()
                            except (trio.WouldBlock, trio.EndOfChannel):
                                break
                            batch.append({"event": more, "subscription": sid})
                        if not await self.send_many(batch):
                            return
            await self.send({"subscription": sid, "closed": True})
        finally:
            self._subscriptions.pop(sid, None)


# -- the server ----------------------------------------------------------------------------


class ControlServer:
    """Accepts control connections and runs their requests against the agent."""

    def __init__(
        self,
        agent: AgentAPI,
        limits: Limits | None = None,
        *,
        allowed_group: str | None = None,
        daemon_version: str = "",
        on_shutdown: Callable[[], None] | None = None,
        socket_path: Path | None = None,
    ) -> None:
        self.agent = agent
        self.limits = limits or Limits()
        self.allowed_gid = resolve_group(allowed_group)
        self.daemon_version = daemon_version
        self.socket_path = socket_path
        self._on_shutdown = on_shutdown
        self.uid = os.getuid()
        self.clients = 0
        self.refused = 0
        self.stopping = False
        self._connections: set[Connection] = set()
        self._accept_scope = trio.CancelScope()
        self._finished = trio.Event()

    def reload(self, limits: Limits, allowed_group: str | None = None) -> None:
        """New limits (SIGHUP); they apply from the next frame of every connection."""
        self.limits = limits
        self.allowed_gid = resolve_group(allowed_group)

    def request_shutdown(self) -> None:
        """Ask the service to stop (the ``shutdown`` method)."""
        if self._on_shutdown is not None:
            self._on_shutdown()

    def describe_error(self, exc: Exception, method: str) -> tuple[str, str, Any]:
        """(code, message, data) for a failed request; unexpected ones are logged."""
        if isinstance(exc, ControlRequestError):
            return exc.code, exc.message, exc.data
        if not isinstance(exc, DaemonError | DIDCommError):
            log.error("control.method_failed", method=method, error_type=type(exc).__name__, exc_info=exc)
        code, message, data = error_from(exc)
        return code, message, data

    async def serve(
        self,
        listener: trio.SocketListener,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections until :meth:`shutdown`; then wait for them to finish."""
        try:
            async with trio.open_nursery() as nursery:
                task_status.started()
                with self._accept_scope:
                    async with listener:
                        while True:
                            try:
                                stream = await listener.accept()
                            except OSError as exc:
                                if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                                    raise
                                log.error("control.accept_failed", error=os.strerror(exc.errno or 0))
                                await trio.sleep(ACCEPT_RETRY_SECONDS)
                                continue
                            nursery.start_soon(self._handle, stream)
        finally:
            self._finished.set()

    async def shutdown(self) -> None:
        """Stop accepting, stop reading, wait until running requests have replied.

        Returns when :meth:`serve` has finished.  The caller bounds the wait
        (``trio.move_on_after``) and cancels :meth:`serve` if it runs out.
        """
        self.stopping = True
        self._accept_scope.cancel()
        for conn in list(self._connections):
            conn.stop_reading()
        await self._finished.wait()

    async def _refuse(self, stream: trio.SocketStream, code: str, message: str) -> None:
        self.refused += 1
        with trio.move_on_after(1.0):
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_all(frames.encode_frame(_error(None, code, message)))

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                cred = peer_credentials(stream.socket)
            except OSError:
                return
            if not peer_is_allowed(cred, uid=self.uid, allowed_gid=self.allowed_gid):
                log.warning("control.refused", uid=cred.uid, pid=cred.pid)
                await self._refuse(stream, "permission_denied", f"permission denied: uid {cred.uid} is not allowed")
                return
            if self.stopping:
                await self._refuse(stream, "shutting_down", "the daemon is shutting down")
                return
            if self.clients >= self.limits.max_clients:
                log.warning("control.refused_busy", limit=self.limits.max_clients)
                await self._refuse(stream, "busy", f"too many clients (limit {self.limits.max_clients})")
                return
            conn = Connection(self, stream, cred)
            self.clients += 1
            self._connections.add(conn)
            log.debug("control.client_connected", pid=cred.pid, uid=cred.uid)
            try:
                await conn.run()
            finally:
                self.clients -= 1
                self._connections.discard(conn)
                log.debug("control.client_gone", pid=cred.pid)


def listener_for(sock: socket.socket) -> trio.SocketListener:
    """A trio listener over an already-listening stdlib socket."""
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


# -- documentation -----------------------------------------------------------------------------


def render_markdown() -> str:
    """``docs/control-api.md``, generated from :data:`METHODS` and the limits above."""
    from . import errors as daemon_errors

    out: list[str] = []
    w = out.append
    w("# didcommd control API")
    w("")
    w("<!-- Generated by `python -m daemon.control --markdown`; do not edit by hand. -->")
    w("")
    w(f"Control API version **{CONTROL_API_VERSION}**.")
    w("")
    w("## Transport")
    w("")
    w("- A Unix stream socket: `control.socket` in the config, by default")
    w("  `$XDG_RUNTIME_DIR/didcommd/control.sock` (user) or `/run/didcommd/control.sock` (system),")
    w("  or the socket systemd passes (`didcommd.socket`). `didcommctl --socket` and")
    w("  `$DIDCOMMD_CONTROL_SOCKET` select another.")
    w(f"- The file is created with mode `{DEFAULT_SOCKET_MODE:04o}` (`0660` with `control.allowed_group`).")
    w("  Each connection's `SO_PEERCRED` is checked: the daemon's uid, root, and members of")
    w("  `allowed_group` may connect; anyone else gets one `permission_denied` error frame.")
    w("- Every frame is a 4-byte big-endian length followed by that many bytes of one msgpack value.")
    w("")
    w("```")
    w('request  {"id": 7, "method": "did.create", "params": {"method": "peer"}}')
    w('reply    {"id": 7, "result": ...}')
    w('      or {"id": 7, "error": {"code": "...", "message": "...", "data": ...}}')
    w('event    {"event": {"seq": 12, "kind": "message.received", "time": ..., "data": {...}}, "subscription": 1}')
    w('end      {"subscription": 1, "closed": true}')
    w("```")
    w("")
    w("- `id` is an integer or a string of at most " f"{MAX_ID_CHARS} characters, chosen by the client;")
    w("  replies carry it back and may arrive out of order. `params` may be omitted.")
    w("- Errors about a whole frame (not a request) have `id` null.")
    w("- Event kinds, what their `data` holds, replay with `since` and what is kept: `docs/events.md`.")
    w("")
    w("## Limits")
    w("")
    w("| limit | default | config key |")
    w("| --- | --- | --- |")
    w(f"| request frame size | {DEFAULT_MAX_REQUEST_BYTES} bytes | `control.max_request_bytes` |")
    w(f"| concurrent clients | {DEFAULT_MAX_CLIENTS} | `control.max_clients` |")
    w(f"| pending requests per connection | {DEFAULT_MAX_PENDING_PER_CONNECTION} | `control.max_pending_per_connection` |")
    w(f"| reply frame size | {MAX_REPLY_BYTES} bytes | fixed |")
    w(f"| subscriptions per connection | {MAX_SUBSCRIPTIONS_PER_CONNECTION} | fixed |")
    w(f"| time to finish a started frame | {PARTIAL_FRAME_TIMEOUT:g} s | fixed |")
    w(f"| time for a client to accept a frame | {SEND_TIMEOUT:g} s | fixed |")
    w("")
    w("Limits set in the config are re-read on SIGHUP.")
    w("")
    w("## Methods")
    w("")
    for m in METHODS.values():
        w(f"### `{m.name}`")
        w("")
        w(m.doc)
        w("")
        if m.params:
            w("| parameter | type | required | description |")
            w("| --- | --- | --- | --- |")
            for p in m.params:
                doc = p.doc + (f" (one of: {', '.join(f'`{c}`' for c in p.choices)})" if p.choices else "")
                w(f"| `{p.name}` | {p.type} | {'yes' if p.required else 'no'} | {doc} |")
            w("")
        else:
            w("No parameters.")
            w("")
        w(f"Result: {m.result}")
        w("")
        w(f"Since API version {m.since}.")
        w("")
    w("## Error codes")
    w("")
    w("| code | meaning |")
    w("| --- | --- |")
    codes = dict(CONTROL_ERROR_CODES)
    for name, value in vars(daemon_errors).items():
        if name.isupper() and isinstance(value, str) and value.isidentifier() and value.islower():
            codes.setdefault(value, _AGENT_ERROR_MEANINGS.get(value, "see `daemon/errors.py`"))
    for code, meaning in codes.items():
        w(f"| `{code}` | {meaning} |")
    w("")
    w("Errors raised by DIDComm processing carry the DIDComm problem code (`e.p.*`) in `data`.")
    w("")
    return "\n".join(out)


DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "control-api.md"


def main(argv: list[str] | None = None) -> int:
    """``python -m daemon.control --markdown [--output FILE]``: write the API reference."""
    parser = argparse.ArgumentParser(prog="python -m daemon.control", description=main.__doc__)
    parser.add_argument("--markdown", action="store_true", help="print the control API reference")
    parser.add_argument("--output", type=Path, help=f"write it to this file (e.g. {DOC_PATH})")
    args = parser.parse_args(argv)
    if not args.markdown:
        parser.print_help()
        return 2
    text = render_markdown()
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

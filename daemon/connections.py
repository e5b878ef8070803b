"""Connections: one pairwise relationship with another agent, as stored.

Theory of operation
-------------------
A connection is made by an out-of-band invitation (``daemon.conversations``
does the protocol work) and lives in the store's ``connections`` table: an
id, a local label, a state, our DID and theirs, their DID document, the
invitation it came from, and the rotation history (``protocols.did_rotation``):

    invitee: requested --(any authenticated message from them but a problem report)--> active
    inviter: active (created when the invitee's first message answers the invitation)

Each side uses a DID made for this relationship only (did:peer:2 with our
libp2p service), so the DID pair identifies the connection: inbound messages
are matched by (their DID, our DID), outbound ones go from our DID to theirs.

:class:`ConnectionBook` keeps every connection in memory (every inbound message
asks) over the store, which stays the truth: every change is written before the
cache changes.  An issuer may have many thousands of connections, so the questions
every message asks (whose DID pair is this? is one of its DIDs rotated away?) are
answered from indexes by DID (:class:`_DIDIndex`, rebuilt after a change), not by
looking at every connection.  Methods run on the trio
thread; the caller serialises changes (``daemon.conversations`` holds a lock).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from protocols.did_rotation import Pairing

from .errors import InvalidParamsError, NotFoundError
from .store import AsyncStore, Store

REQUESTED, ACTIVE = "requested", "active"
STATES = (REQUESTED, ACTIVE)
INVITER, INVITEE = "inviter", "invitee"
#: Longest connection label (characters).
MAX_LABEL_CHARS = 200
#: Shortest unique id prefix accepted where a connection is named.
MIN_ID_PREFIX = 4
#: Most connections one daemon keeps (each is a row and a cache entry).
MAX_CONNECTIONS = 100_000

_ID_CHARS = re.compile(r"^[0-9a-fA-F-]+$")


@dataclass(frozen=True)
class Connection:
    """One relationship (see the module docstring).  Every field is plain data."""

    id: str
    label: str | None
    state: str
    role: str
    my_did: str
    their_did: str
    created: int
    updated: int
    their_doc: dict[str, Any] | None = None
    invitation_id: str | None = None
    my_next_did: str | None = None
    my_retired: tuple[str, ...] = field(default_factory=tuple)
    their_retired: tuple[str, ...] = field(default_factory=tuple)

    @property
    def pairing(self) -> Pairing:
        """The DIDs as ``protocols.did_rotation`` sees them."""
        return Pairing(self.my_did, self.their_did, self.my_next_did, self.my_retired, self.their_retired)

    def with_pairing(self, p: Pairing, now: int) -> Connection:
        """This connection after a rotation step."""
        return replace(
            self, my_did=p.my_did, their_did=p.their_did, my_next_did=p.my_next_did,
            my_retired=p.my_retired, their_retired=p.their_retired, updated=now,
        )

    def record(self) -> dict[str, Any]:
        """The stored blob (columns hold id, DIDs, state, updated)."""
        return {
            "label": self.label, "role": self.role, "created": self.created,
            "their_doc": self.their_doc, "invitation_id": self.invitation_id,
            "my_next_did": self.my_next_did, "my_retired": list(self.my_retired),
            "their_retired": list(self.their_retired),
        }

    @staticmethod
    def row_is_usable(row: dict[str, Any]) -> bool:
        """Whether a stored row (the form :meth:`from_row` reads) has the shape the daemon
        relies on (it reads connections on every inbound message): for rows from outside,
        such as a wallet backup's."""
        rec = row["record"]
        return bool(
            row["state"] in STATES
            and rec.get("role", INVITEE) in (INVITER, INVITEE)
            and all(rec.get(k) is None or isinstance(rec[k], str) for k in ("label", "invitation_id", "my_next_did"))
            and (rec.get("their_doc") is None or isinstance(rec["their_doc"], dict))
            and (rec.get("created") is None or (isinstance(rec["created"], int) and not isinstance(rec["created"], bool)))
            and all(rec.get(k) is None or (isinstance(rec[k], list) and all(isinstance(d, str) for d in rec[k]))
                    for k in ("my_retired", "their_retired"))
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Connection:
        """From :meth:`daemon.store.Store.connection_get`'s form."""
        rec = row["record"] if isinstance(row.get("record"), dict) else {}
        return cls(
            id=row["id"], label=rec.get("label"), state=row["state"], role=rec.get("role", INVITEE),
            my_did=row["my_did"], their_did=row["their_did"], created=rec.get("created", row["updated"]),
            updated=row["updated"], their_doc=rec.get("their_doc"), invitation_id=rec.get("invitation_id"),
            my_next_did=rec.get("my_next_did"), my_retired=tuple(rec.get("my_retired") or ()),
            their_retired=tuple(rec.get("their_retired") or ()),
        )

    def summary(self) -> dict[str, Any]:
        """The control API's short form."""
        return {
            "id": self.id, "label": self.label, "state": self.state, "role": self.role,
            "my_did": self.my_did, "their_did": self.their_did, "created": self.created,
            "updated": self.updated, "rotating_to": self.my_next_did,
        }

    def details(self) -> dict[str, Any]:
        """The control API's full form (their DID document, rotation history)."""
        return {
            **self.summary(), "their_doc": self.their_doc, "invitation_id": self.invitation_id,
            "my_retired": list(self.my_retired), "their_retired": list(self.their_retired),
        }


def check_label(label: Any) -> str | None:
    """A usable label, or :class:`InvalidParamsError`."""
    if label is None:
        return None
    if not isinstance(label, str) or not label or len(label) > MAX_LABEL_CHARS:
        raise InvalidParamsError(f"label must be a string of 1 to {MAX_LABEL_CHARS} characters")
    return label


def _put(store: Store, c: Connection) -> None:
    store.connection_put(
        c.id, my_did=c.my_did, their_did=c.their_did, state=c.state, updated=c.updated, record=c.record()
    )


class _DIDIndex:
    """Connection ids by DID: their current DID, and the retired DIDs of either side
    (what for_pair and refusal look up on every message); kept up to date by
    :meth:`put` and :meth:`drop`, and read in the book's order (``order``)."""

    def __init__(self, conns: dict[str, Connection]) -> None:
        self.order: dict[str, int] = {}
        self._next = 0
        self.theirs: dict[str, set[str]] = {}
        self.retired: dict[str, set[str]] = {}
        for c in conns.values():
            self.put(None, c)

    def put(self, old: Connection | None, new: Connection) -> None:
        if old is not None:
            self.drop(old)
        if new.id not in self.order:
            self.order[new.id] = self._next
            self._next += 1
        self.theirs.setdefault(new.their_did, set()).add(new.id)
        for did in {*new.their_retired, *new.my_retired}:
            self.retired.setdefault(did, set()).add(new.id)

    def drop(self, c: Connection) -> None:
        """Forget ``c``'s DIDs (its place in the order stays, for a put of its update)."""
        for table, dids in ((self.theirs, (c.their_did,)), (self.retired, (*c.their_retired, *c.my_retired))):
            for did in dids:
                ids = table.get(did)
                if ids is not None:
                    ids.discard(c.id)
                    if not ids:
                        del table[did]

    def sorted(self, ids: Iterable[str]) -> list[str]:
        return sorted(ids, key=self.order.__getitem__)


class ConnectionBook:
    """Every connection, cached in memory over the store (see the module docstring)."""

    def __init__(self, store: AsyncStore) -> None:
        self._store = store
        self._by_id: dict[str, Connection] | None = None
        self._index: _DIDIndex | None = None

    async def _all(self) -> dict[str, Connection]:
        if self._by_id is None:
            rows = await self._store.run(self._store.sync.connection_list)
            self._by_id = {r["id"]: Connection.from_row(r) for r in rows}
            self._index = None
        return self._by_id

    async def _dids(self) -> tuple[dict[str, Connection], _DIDIndex]:
        conns = await self._all()
        if self._index is None:
            self._index = _DIDIndex(conns)
        return conns, self._index

    async def list(self) -> list[Connection]:
        """Every connection, oldest first."""
        return sorted((await self._all()).values(), key=lambda c: (c.created, c.id))

    async def get(self, ref: str) -> Connection:
        """By id, unique id prefix, or label; :class:`NotFoundError` otherwise."""
        if not isinstance(ref, str) or not ref:
            raise InvalidParamsError("a connection is named by its id, an id prefix or its label")
        found = await self.find(ref)
        if found is None:
            raise NotFoundError(f"no connection {ref!r} (see 'didcommctl connections list')")
        return found

    async def find(self, ref: str) -> Connection | None:
        """Like :meth:`get`, or None; an ambiguous name is :class:`InvalidParamsError`."""
        conns = await self._all()
        if ref in conns:
            return conns[ref]
        matches = [c for c in conns.values() if c.label == ref]
        if not matches and len(ref) >= MIN_ID_PREFIX and _ID_CHARS.match(ref):
            matches = [c for c in conns.values() if c.id.startswith(ref)]
        if not matches:
            matches = [c for c in conns.values() if ref in (c.their_did, c.my_did)]
        if len(matches) > 1:
            raise InvalidParamsError(f"{ref!r} names {len(matches)} connections; use the id")
        return matches[0] if matches else None

    async def for_pair(self, their_did: str | None, my_did: str | None) -> Connection | None:
        """The connection a message from ``their_did`` to ``my_did`` belongs to."""
        if their_did is None:
            return None
        conns, index = await self._dids()
        for id in index.sorted(index.theirs.get(their_did, ())):
            c = conns[id]
            if my_did is None or c.pairing.accepts_to(my_did):
                return c
        return None

    async def by_their_did(self, their_did: str) -> list[Connection]:
        """Connections whose peer currently uses ``their_did``."""
        conns, index = await self._dids()
        return [conns[id] for id in index.sorted(index.theirs.get(their_did, ()))]

    async def refusal(self, *, sender: str | None, recipient: str | None) -> str | None:
        """Why a message between these DIDs is refused after a rotation, or None."""
        conns, index = await self._dids()
        ids = {id for did in (sender, recipient) if did is not None for id in index.retired.get(did, ())}
        for id in index.sorted(ids):
            reason = conns[id].pairing.refuses(sender=sender, recipient=recipient)
            if reason is not None:
                return reason
        return None

    def put_sync(self, store: Store, c: Connection) -> None:
        """Write ``c`` (inside the caller's store transaction); call :meth:`cache` after commit."""
        _put(store, c)

    async def cache(self, c: Connection) -> None:
        """Remember a connection that was just committed."""
        conns = await self._all()
        if self._index is not None:
            self._index.put(conns.get(c.id), c)
        conns[c.id] = c

    async def check_room(self) -> None:
        """Refuse a new connection past :data:`MAX_CONNECTIONS`."""
        if len(await self._all()) >= MAX_CONNECTIONS:
            raise InvalidParamsError(f"there are already {MAX_CONNECTIONS} connections")

    async def save(self, c: Connection) -> None:
        """Write and cache one connection."""
        await self._store.run(_put, self._store.sync, c)
        await self.cache(c)

    async def delete(self, ref: str) -> Connection:
        """Forget a connection (its DIDs and messages stay)."""
        c = await self.get(ref)
        await self._store.run(self._store.sync.connection_delete, c.id)
        (await self._all()).pop(c.id, None)
        if self._index is not None:
            self._index.drop(c)
            self._index.order.pop(c.id, None)
        return c

"""DID resolution: from a DID string to a checked :class:`DIDDocument`.

Theory of operation
-------------------
Resolution here is pure computation -- did:key and did:peer documents are
derived from the DID itself, and every other DID comes from documents the
caller hands us (a static set, or whatever the daemon loaded from its store).
Anything that needs the network (did:web, ledgers) would be a separate
resolver that the daemon drives; it would still plug into :class:`ChainResolver`.

- :class:`DIDResolver` is the seam: one method, ``resolve(did)``, which either
  returns a document whose ``id`` is ``did`` or raises
  :class:`~protocols.errors.DIDNotResolvedError` ("I do not know this DID") or
  :class:`~protocols.errors.InvalidDIDError` ("this DID or its document is
  malformed").
- :class:`ChainResolver` asks each resolver in turn; only "not resolved"
  passes to the next one.  A malformed did:key does not fall through to a
  static document of the same name.
- Method resolvers cache results (:data:`RESOLVED_CACHE_SIZE`); documents are
  shared, so treat them as immutable.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ..errors import DIDNotResolvedError, InvalidDIDError
from .did_key import PREFIX as DID_KEY_PREFIX
from .did_key import resolve_did_key
from .did_peer import (
    NUMALGO_4_PREFIX,
    peer_4_short_form,
    resolve_did_peer,
    resolve_did_peer_4_short,
)
from .did_peer import PREFIX as DID_PEER_PREFIX
from .document import DIDDocument
from .syntax import MAX_DID_LENGTH, is_did, quote, split_did_url, validate_did

__all__ = [
    "MAX_DID_LENGTH",
    "MAX_REMEMBERED_PEER_4",
    "RESOLVED_CACHE_SIZE",
    "ChainResolver",
    "DIDKeyResolver",
    "DIDPeerResolver",
    "DIDResolver",
    "StaticResolver",
    "default_resolver",
    "is_did",
    "split_did_url",
    "validate_did",
]

#: Documents kept per method resolver (a did:peer:2 document is a few KiB).
RESOLVED_CACHE_SIZE = 1024
#: Most documents a StaticResolver holds.
MAX_STATIC_DOCUMENTS = 100_000
#: Long-form did:peer:4 DIDs a DIDPeerResolver remembers, to resolve their short forms.
MAX_REMEMBERED_PEER_4 = 4096


class DIDResolver(Protocol):
    """Anything that turns a DID into its document."""

    def resolve(self, did: str) -> DIDDocument:
        """The document of ``did``; DIDNotResolvedError if unknown here."""
        ...


class StaticResolver:
    """Resolves DIDs from a fixed set of documents (JSON dicts or parsed)."""

    def __init__(self, docs: Iterable[DIDDocument | Mapping[str, Any]] = ()) -> None:
        self._docs: dict[str, DIDDocument] = {}
        for doc in docs:
            self.add(doc)

    def add(self, doc: DIDDocument | Mapping[str, Any]) -> DIDDocument:
        """Add (or replace) a document; returns it parsed."""
        parsed = doc if isinstance(doc, DIDDocument) else DIDDocument.from_json(dict(doc))
        if parsed.id not in self._docs and len(self._docs) >= MAX_STATIC_DOCUMENTS:
            raise InvalidDIDError(f"static resolver holds {MAX_STATIC_DOCUMENTS} documents")
        self._docs[parsed.id] = parsed
        return parsed

    def remove(self, did: str) -> None:
        """Forget a document (no error if absent)."""
        self._docs.pop(did, None)

    def __contains__(self, did: object) -> bool:
        return did in self._docs

    def resolve(self, did: str) -> DIDDocument:
        """The stored document of ``did``."""
        validate_did(did)
        doc = self._docs.get(did)
        if doc is None:
            raise DIDNotResolvedError(f"no document for {quote(did)}")
        return doc


@functools.lru_cache(maxsize=RESOLVED_CACHE_SIZE)
def _cached_did_key(did: str) -> DIDDocument:
    return resolve_did_key(did)


@functools.lru_cache(maxsize=RESOLVED_CACHE_SIZE)
def _cached_did_peer(did: str) -> DIDDocument:
    return resolve_did_peer(did)


class DIDKeyResolver:
    """Resolves ``did:key`` (see :mod:`protocols.did.did_key`)."""

    def resolve(self, did: str) -> DIDDocument:
        """The document of a did:key; DIDNotResolvedError for other methods."""
        validate_did(did)
        if not did.startswith(DID_KEY_PREFIX):
            raise DIDNotResolvedError(f"not a did:key: {quote(did)}")
        return _cached_did_key(did)


class DIDPeerResolver:
    """Resolves ``did:peer`` numalgo 2 and 4 (see :mod:`protocols.did.did_peer`).

    A short-form did:peer:4 resolves only after its long form has been seen
    (resolved here, or handed to :meth:`remember`); the hash in the short form
    binds it to exactly one long form, so remembering cannot be abused to
    substitute a document.  The most recent :data:`MAX_REMEMBERED_PEER_4` are kept.
    """

    def __init__(self) -> None:
        self._long_forms: OrderedDict[str, str] = OrderedDict()

    def remember(self, long_did: str) -> str:
        """Check and keep a long-form did:peer:4; returns its short form."""
        short = peer_4_short_form(long_did)
        if short == long_did:
            raise InvalidDIDError("remember() needs a long-form did:peer:4")
        _cached_did_peer(long_did)
        self._long_forms[short] = long_did
        self._long_forms.move_to_end(short)
        while len(self._long_forms) > MAX_REMEMBERED_PEER_4:
            self._long_forms.popitem(last=False)
        return short

    def resolve(self, did: str) -> DIDDocument:
        """The document of a did:peer; DIDNotResolvedError for other methods."""
        validate_did(did)
        if not did.startswith(DID_PEER_PREFIX):
            raise DIDNotResolvedError(f"not a did:peer: {quote(did)}")
        if did.startswith(NUMALGO_4_PREFIX):
            if did.count(":") == 3:
                self.remember(did)
            else:
                long_did = self._long_forms.get(did)
                if long_did is None:
                    raise DIDNotResolvedError(
                        f"short-form did:peer:4 whose long form we have not seen: {quote(did)}"
                    )
                return _cached_did_peer_4_short(did, long_did)
        return _cached_did_peer(did)


@functools.lru_cache(maxsize=RESOLVED_CACHE_SIZE)
def _cached_did_peer_4_short(did: str, long_did: str) -> DIDDocument:
    return resolve_did_peer_4_short(did, long_did)


class ChainResolver:
    """Asks each resolver in order; the first that knows the DID answers."""

    def __init__(self, *resolvers: DIDResolver) -> None:
        self.resolvers = list(resolvers)

    def resolve(self, did: str) -> DIDDocument:
        """The first answer; DIDNotResolvedError if nobody knows ``did``."""
        validate_did(did)
        for resolver in self.resolvers:
            try:
                return resolver.resolve(did)
            except DIDNotResolvedError:
                continue
        raise DIDNotResolvedError(f"no resolver knows {quote(did)}")


def default_resolver(
    extra_docs: Iterable[DIDDocument | Mapping[str, Any]] = (),
) -> ChainResolver:
    """did:key, did:peer, then the given static documents."""
    return ChainResolver(DIDKeyResolver(), DIDPeerResolver(), StaticResolver(extra_docs))

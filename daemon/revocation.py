"""Revocation: the status lists we publish as an issuer and the copies we keep as a holder.

Theory of operation
-------------------
``protocols/status_list.py`` packs, signs and verifies status lists (IETF
Token Status List for SD-JWT VCs, W3C Bitstring Status List for ``di_vc``);
this module keeps them.

*Issuer.*  Each credential we offer (unless the owner says ``--no-status``)
gets an entry in one of our lists: one list per (issuer DID, format, number),
named ``{issuer}/status/sd-jwt/{n}`` or ``{issuer}/status/di/{n}`` (a DID URL
with a path: it names the list; it is fetched over DIDComm, never over HTTP).
Each list we keep is one array of 0 valid / 1 revoked / 2 suspended entries,
:data:`LIST_BITS` (2) wide; lists from before suspension are 1-bit
(``status_lists.bits``) until one of their credentials is first suspended,
when the list is widened (:meth:`~protocols.status_list.StatusList.widened`:
every entry keeps its index and value) and stored and signed 2-bit from then on.

*Suspension* is temporary: ``suspend`` sets an entry to 2, ``reinstate``
back to 0; revocation (1) is final, and neither applies to a revoked entry.
The two formats publish it differently (:mod:`protocols.status_list`):

- SD-JWT VC: the Status List Token *is* the array (``bits`` 2), and the
  credential's one ``status`` reference says all three states.
- ``di_vc``: a Bitstring Status List has one purpose and 1-bit entries, so
  each of our ``di`` lists is published as two list credentials, two views
  of the one array: ``{issuer}/status/di/{n}`` (``revocation``: entries that
  are 1) and ``{issuer}/status/di-suspension/{n}`` (``suspension``: entries
  that are 2), :func:`suspension_uri`.  A credential offered since then has
  two ``credentialStatus`` entries, the same index in both; one offered
  before has only the revocation entry, and cannot be suspended.  One
  allocation (one index, one row in ``status_entries``) serves both lists,
  so nothing about storage or allocation changes with the purpose.
The index is drawn at random among the list's unused ones
(:func:`pick_index`): sequential indexes would tell anyone holding two
credentials which was issued first.  A full list (:data:`LIST_SIZE` entries)
starts the next number.  The pick is a read and its write
(:func:`write_allocation`) goes in the same transaction as the offer, both
under the conversations lock, so two offers never get one index.

The lists are also kept in memory (:class:`StatusPublisher`, loaded at start
and updated after each commit that changes one), because the protocol
machines ask for the current signed list (``status_source(uri)``) while
handling a message, synchronously: staple it to an issued credential, or
answer a holder's refresh.  A list is signed on demand with the issuer DID's
``assertionMethod`` key from the wallet, and the signed copy reused until
the list changes (a revocation) or it is :data:`STATUS_RESIGN_S` old, so a
busy issuer does not sign the same 16 KB list for every credential, and a
holder's refresh never gets a list older than that.  Signing costs ~10 ms
(almost all of it zlib at level 9), too long for the loop, so a task
(:meth:`StatusPublisher.serve`) signs in a worker thread each list that
changed and each signed copy :data:`STATUS_PRESIGN_S` old, before anyone asks;
a request signs on the loop only if it comes first (a list revoked a moment
ago): a list that says less than what we committed is never handed out.  The tokens carry a
``ttl`` of the same length (a hint for caches) and no ``exp``: how old a
list a verifier accepts is its own policy (``status_max_age``).

*Holder.*  A holder keeps, per list URI, the newest verified copy it has
(:class:`~daemon.store.HeldStatusListRow`: the document, its issuer,
``issued_at``, when we got it): first the copy stapled to the credential at
issuance, then whatever a refresh brings (:func:`keep_held`, which never
replaces a copy by an older one).  What a held credential's status is
(``valid``, ``revoked``, ``suspended``, ``unknown``; ``not revocable`` for a
credential without a status reference) is read from that copy
(:class:`HeldLists`, which caches the decoded lists by URI and issue time).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from protocols import issue_credential, status_exchange, status_list
from protocols.errors import DIDCommError
from protocols.keys import PrivateKey

from .logs import get_logger
from .store import HeldStatusListRow, StatusListRow, Store

_log = get_logger("revocation")

#: Entries of each list we create (the standards' minimum: a copy hides one credential among these).
LIST_SIZE = status_list.LIST_SIZE
#: A signed list is reused until it is this old (seconds), or the list changes.
STATUS_RESIGN_S = 3600
#: Age at which the background task signs a list anew (seconds; before STATUS_RESIGN_S,
#: so a request finds a fresh copy).
STATUS_PRESIGN_S = STATUS_RESIGN_S * 9 // 10
#: Longest the background signer sleeps between looks (seconds; the wallet clock may jump).
PRESIGN_POLL_S = 60
#: Random draws of an index before a nearly full list is searched for its unused ones.
RANDOM_TRIES = 64
#: Path segment of each credential format's lists (in the list URI).
URI_SEGMENTS = {issue_credential.FORMAT: "sd-jwt", issue_credential.DI_VC: "di"}
#: What the path segment of a ``di`` list's suspension view adds to the list's.
SUSPENSION_SUFFIX = "-suspension"
#: Bits per entry of the lists we create: 0 valid, 1 revoked, 2 suspended.
LIST_BITS = status_list.ISSUED_BITS
#: How a list travels (the attachment formats of issue-credential and status exchange).
TOKEN_FORMAT = status_exchange.FORMAT_TOKEN
BITSTRING_FORMAT = status_exchange.FORMAT_BITSTRING
#: Status names, by value (3 and up are application-specific: we call them unknown).
STATUS_NAMES = {status_list.VALID: "valid", status_list.REVOKED: "revoked", status_list.SUSPENDED: "suspended"}
UNKNOWN = "unknown"
NOT_REVOCABLE = "not revocable"
#: Most decoded held lists kept in memory (each at most status_list.MAX_LIST_BYTES).
MAX_CACHED_LISTS = 64


def list_uri(issuer: str, credential_format: str, n: int) -> str:
    """The URI of list number ``n`` of ``issuer`` for one credential format."""
    return f"{issuer}/status/{URI_SEGMENTS[credential_format]}/{n}"


def suspension_uri(uri: str) -> str:
    """The URI of the suspension view of the ``di`` list at ``uri``
    (``{issuer}/status/di/{n}`` -> ``{issuer}/status/di-suspension/{n}``)."""
    head, _, n = uri.rpartition("/")
    return f"{head}{SUSPENSION_SUFFIX}/{n}"


def published_views(uri: str, credential_format: str) -> list[tuple[str, str | None, int | None]]:
    """What we publish of our list at ``uri``: (URI, Bitstring purpose or None for a
    token, the entry value whose entries the view sets, or None for the whole array)."""
    if credential_format == issue_credential.DI_VC:
        return [(uri, status_list.PURPOSE_REVOCATION, status_list.REVOKED),
                (suspension_uri(uri), status_list.PURPOSE_SUSPENSION, status_list.SUSPENDED)]
    return [(uri, None, None)]


# -- issuer: handing out indexes ------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """An index picked for an offer: in list ``uri`` (to be created first when ``new_list``)."""

    uri: str
    issuer: str
    format: str
    n: int
    size: int
    index: int
    new_list: bool

    def reference(self) -> dict[str, Any]:
        """``{uri, index}``, as replies and records show it."""
        return {"uri": self.uri, "index": self.index}


def pick_index(store: Store, issuer: str, credential_format: str, *, size: int = LIST_SIZE,
               randbelow: Callable[[int], int] = secrets.randbelow) -> Allocation:
    """A random unused index of ``issuer``'s current list for the format (read only).

    A new list (numbered one higher, of ``size`` entries) when there is none or
    the current one is full.  Uniform among the unused indexes: random draws
    while they keep finding one quickly, then a draw among those left.
    """
    if credential_format not in URI_SEGMENTS:
        raise ValueError(f"no status lists for the format {credential_format!r}")
    current = store.status_list_current(issuer, credential_format)
    if current is None or current.used >= current.size:
        n = 0 if current is None else current.n + 1
        return Allocation(list_uri(issuer, credential_format, n), issuer, credential_format, n, size,
                          randbelow(size), True)
    for _ in range(RANDOM_TRIES):
        index = randbelow(current.size)
        if not store.status_index_used(current.uri, index):
            return Allocation(current.uri, issuer, credential_format, current.n, current.size, index, False)
    # Nearly full: RANDOM_TRIES misses in a row.  Draw among the unused ones directly.
    used = store.status_used_indexes(current.uri)
    unused = [i for i in range(current.size) if i not in used]
    index = unused[randbelow(len(unused))]
    return Allocation(current.uri, issuer, credential_format, current.n, current.size, index, False)


def write_allocation(store: Store, allocation: Allocation, thid: str, now: int) -> None:
    """Record the index as handed out to thread ``thid`` (creating its list if new)."""
    with store.transaction():
        if allocation.new_list:
            store.status_list_create(StatusListRow(
                allocation.uri, allocation.issuer, allocation.format, allocation.n, allocation.size, 0, now,
                status_list.StatusList(allocation.size, bits=LIST_BITS).to_bytes(), LIST_BITS))
        store.status_entry_add(allocation.uri, allocation.index, thid, now=now)


# -- issuer: the signed lists -----------------------------------------------------------------


@dataclass
class _Published:
    issuer: str
    format: str
    #: What is signed: the array itself (a token), or one purpose's 1-bit view (di).
    statuses: status_list.StatusList
    #: The Bitstring Status List purpose (di); None for a token.
    purpose: str | None
    #: The signed list and when it was signed (None: sign on the next request).
    signed: str | dict[str, Any] | None = None
    signed_at: int = 0
    #: When the background task last signed it or tried to (None: not since the change).
    tried_at: int | None = None
    #: The issue time of the newest copy of this URI signed so far, any version: a new
    #: version is signed later than that, so two different copies never share an
    #: ``iat`` (holders keep the newest copy by it, and may cache decoded lists by it).
    floor: int = 0

    def issue_time(self, now: int) -> int:
        return now if self.signed is not None else max(now, self.floor + 1)


def signing_key(resolver: Any, wallet: Any, did: str) -> tuple[str, PrivateKey] | None:
    """(kid, key) of an ``assertionMethod`` key of ``did`` that the wallet holds, or None."""
    doc = resolver.resolve(did)
    for kid in (doc.absolute(k) for k in doc.assertion_method):
        key = wallet.get_key(kid)
        if key is not None:
            return kid, key
    return None


class StatusPublisher:
    """Our status lists in memory, and their signed copies (see the module docstring)."""

    def __init__(self, resolver: Any, wallet: Any, clock: Callable[[], int]) -> None:
        self._resolver = resolver
        self._wallet = wallet
        self._clock = clock
        #: Our lists' arrays (0/1/2), by list URI ...
        self._arrays: dict[str, status_list.StatusList] = {}
        #: ... and what is published of them, by published URI (a di list: two views).
        self._lists: dict[str, _Published] = {}
        self._changed = trio.Event()
        #: Lists signed on the loop (a request came first) and in the background.
        self.signed_inline = 0
        self.signed_ahead = 0

    def load(self, rows: Iterable[StatusListRow]) -> None:
        """Take the stored lists (at start)."""
        for row in rows:
            self.put(row.uri, row.issuer, row.format,
                     status_list.StatusList.from_bytes(row.statuses, bits=row.bits, size=row.size) if row.statuses
                     else status_list.StatusList(row.size, bits=LIST_BITS))

    def put(self, uri: str, issuer: str, credential_format: str, statuses: status_list.StatusList) -> None:
        """A list was created or changed (after its commit): what we publish of it is
        signed anew, ahead or on request."""
        self._arrays[uri] = statuses
        for published_uri, purpose, value in published_views(uri, credential_format):
            old = self._lists.get(published_uri)
            floor = 0 if old is None else max(old.floor, old.signed_at)
            view = statuses if value is None else statuses.where(value)
            self._lists[published_uri] = _Published(issuer, credential_format, view, purpose, floor=floor)
        self._changed.set()

    def statuses(self, uri: str) -> status_list.StatusList:
        """A copy of a list's array (to change and store before :meth:`put`)."""
        array = self._arrays[uri]
        return status_list.StatusList.from_bytes(array.to_bytes(), bits=array.bits, size=array.size)

    def known(self, uri: str) -> bool:
        """Whether ``uri`` is one of the lists we publish."""
        return uri in self._lists

    def source(self, uri: str) -> str | dict[str, Any] | None:
        """The current signed list at ``uri`` (a Status List Token, or a list credential),
        or None if it is not ours (or cannot be signed: logged)."""
        published = self._lists.get(uri) if isinstance(uri, str) else None
        if published is None:
            return None
        now = self._clock()
        if published.signed is not None and 0 <= now - published.signed_at < STATUS_RESIGN_S:
            return published.signed
        signer = self._signer(uri, published)
        if signer is None:
            return None
        # (A second after the last copy at most, if that was signed this very second.)
        iat = published.issue_time(now)
        signed = _sign(uri, published, *signer, iat)
        if signed is not None:
            published.signed, published.signed_at = signed, iat
            self.signed_inline += 1
        return signed

    def _signer(self, uri: str, published: _Published) -> tuple[str, PrivateKey] | None:
        try:
            found = signing_key(self._resolver, self._wallet, published.issuer)
        except DIDCommError as exc:
            _log.warning("status_list.unsigned", uri=uri, reason=exc.message)
            return None
        if found is None:
            _log.warning("status_list.no_key", uri=uri, issuer=published.issuer)
        return found

    def _due(self, now: int) -> tuple[list[str], int]:
        """The lists to sign now, and seconds until the next one is due."""
        due: list[str] = []
        wait = PRESIGN_POLL_S
        for uri, published in self._lists.items():
            if published.signed is not None and now - published.signed_at < STATUS_PRESIGN_S:
                wait = min(wait, STATUS_PRESIGN_S - (now - published.signed_at))  # fresh enough
            elif published.tried_at is not None and 0 <= now - published.tried_at < STATUS_PRESIGN_S:
                wait = min(wait, STATUS_PRESIGN_S - (now - published.tried_at))  # failed lately (logged)
            elif published.issue_time(now) > now:
                wait = 1  # a new version, in the second its previous one was signed: next second
            else:
                due.append(uri)
        return due, wait

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sign, in a worker thread, every list that changed or whose signed copy is getting old."""
        task_status.started()
        while True:
            self._changed = trio.Event()
            due, wait = self._due(self._clock())
            for uri in due:
                await self._sign_ahead(uri)
            if not due:
                with trio.move_on_after(max(wait, 1)):
                    await self._changed.wait()

    async def _sign_ahead(self, uri: str) -> None:
        published = self._lists[uri]
        now = published.tried_at = self._clock()
        signer = self._signer(uri, published)
        if signer is None:
            return  # (logged; tried again after STATUS_PRESIGN_S)
        # The thread signs this very _Published: put() replaces it rather than changing it.
        iat = published.issue_time(now)
        signed = await trio.to_thread.run_sync(_sign, uri, published, *signer, iat)
        if signed is not None and self._lists.get(uri) is published and iat >= published.signed_at:
            published.signed, published.signed_at = signed, iat
            self.signed_ahead += 1


def _sign(uri: str, published: _Published, kid: str, key: PrivateKey, now: int) -> str | dict[str, Any] | None:
    try:
        if published.purpose is not None:
            return status_list.sign_list_credential(
                published.statuses, url=uri, issuer=published.issuer, kid=kid, key=key, now=now,
                purpose=published.purpose)
        return status_list.sign_token(published.statuses, uri=uri, issuer=published.issuer, kid=kid,
                                      key=key, now=now, ttl=STATUS_RESIGN_S)
    except DIDCommError as exc:
        _log.warning("status_list.unsigned", uri=uri, reason=exc.message)
        return None


# -- holder: the copies we keep ---------------------------------------------------------------


def document_text(document: str | dict[str, Any]) -> str:
    """A list as stored: a token as is, a list credential as its canonical JSON text."""
    return status_exchange.document_text(document)


def document_format(text: str) -> str:
    """How a stored list travels: a token (``statuslist+jwt``) or a list credential."""
    return BITSTRING_FORMAT if text.lstrip().startswith("{") else TOKEN_FORMAT


def for_presentation(text: str) -> str | dict[str, Any]:
    """A stored list as present() staples it: a token's text, a list credential's JSON object."""
    if document_format(text) == BITSTRING_FORMAT:
        value = json.loads(text)
        return value if isinstance(value, dict) else text
    return text


def verify_document(text: str, *, resolver: Any, now: int, uri: str | None = None,
                    issuer: str | None = None) -> status_list.VerifiedStatusList:
    """Verify a list of either kind (StatusListError and friends if it does not)."""
    return status_list.verify_status_list(text, resolver=resolver, now=now, uri=uri, issuer=issuer)


def keep_held(store: Store, row: HeldStatusListRow) -> bool:
    """Keep ``row`` unless we hold a newer copy of the list; False if ours was newer
    (then only its ``fetched_at`` moves: we did hear from the issuer)."""
    with store.transaction():
        current = store.held_list_get(row.uri)
        if current is not None and current.issued_at > row.issued_at:
            store.held_list_put(HeldStatusListRow(current.uri, current.issuer, current.format, current.issued_at,
                                                  max(current.fetched_at, row.fetched_at), current.record))
            return False
        store.held_list_put(row)
    return True


def held_row(text: str, *, uri: str, issuer: str, issued_at: int, expires: int | None,
             fetched_at: int) -> HeldStatusListRow:
    """A held copy as stored."""
    return HeldStatusListRow(uri, issuer, document_format(text), issued_at, fetched_at,
                             {"document": text, "expires": expires})


def _reference(ref: Any, purpose: str | None) -> status_list.StatusReference | None:
    if not isinstance(ref, dict):
        return None
    uri, index = ref.get("uri"), ref.get("index")
    if not isinstance(uri, str) or isinstance(index, bool) or not isinstance(index, int):
        return None
    return status_list.StatusReference(uri, index, purpose)


def credential_references(entry: dict[str, Any]) -> list[status_list.StatusReference]:
    """A stored credential's status entries (none if it cannot be revoked): its
    ``status`` (a ``di_vc`` one's revocation entry) and a ``di_vc`` one's ``suspension``."""
    di = entry.get("format") == issue_credential.DI_VC or isinstance(entry.get("credential"), str)
    primary = _reference(entry.get("status"), status_list.PURPOSE_REVOCATION if di else None)
    if primary is None:
        return []
    suspension = _reference(entry.get("suspension"), status_list.PURPOSE_SUSPENSION) if di else None
    return [primary] if suspension is None else [primary, suspension]


#: How the statuses of a credential's entries combine: the first of these any entry has.
_PRECEDENCE = ("revoked", "suspended", UNKNOWN, "valid")


class HeldLists:
    """Reads held credentials' statuses from the held copies (decoded lists cached)."""

    def __init__(self, resolver: Any) -> None:
        self._resolver = resolver
        self._decoded: dict[tuple[str, bytes], status_list.VerifiedStatusList | None] = {}

    def status(self, entry: dict[str, Any], lists: Mapping[str, HeldStatusListRow], now: int) -> str:
        """``valid``, ``revoked``, ``suspended``, ``unknown`` or ``not revocable``, from
        our copies (``lists``, by URI) of the lists of each of the credential's entries:
        revoked if one says so, else suspended if one says so, else unknown if one
        cannot say, else valid."""
        references = credential_references(entry)
        if not references:
            return NOT_REVOCABLE
        found = {self._entry_status(entry, r, lists.get(r.uri), now) for r in references}
        return next(name for name in _PRECEDENCE if name in found)

    def _entry_status(self, entry: dict[str, Any], reference: status_list.StatusReference,
                      held: HeldStatusListRow | None, now: int) -> str:
        uri, index = reference.uri, reference.index
        if held is None or not isinstance(held.record.get("document"), str):
            return UNKNOWN
        expires = held.record.get("expires")
        if isinstance(expires, int) and now >= expires + status_list.CLOCK_LEEWAY_S:
            return UNKNOWN
        # By content, not issue time: a copy is not trusted to be the only one of its second.
        key = (uri, hashlib.sha256(held.record["document"].encode()).digest())
        if key not in self._decoded:
            if len(self._decoded) >= MAX_CACHED_LISTS:
                self._decoded.clear()
            try:
                # Verified once more (it was on arrival): the store is not a trusted party
                # to the issuer's signature, and this is also where its list is decoded.
                # ``now`` = its issue time: expiry is judged above, with our clock.
                self._decoded[key] = verify_document(held.record["document"], resolver=self._resolver,
                                                     now=max(held.issued_at, 0), uri=uri)
            except DIDCommError as exc:
                _log.warning("status_list.held_unusable", uri=uri, reason=exc.message)
                self._decoded[key] = None
        verified = self._decoded[key]
        if verified is None or verified.issuer != entry.get("issuer") or verified.purpose != reference.purpose:
            return UNKNOWN
        try:
            return STATUS_NAMES.get(verified.status(index), UNKNOWN)
        except DIDCommError:
            return UNKNOWN

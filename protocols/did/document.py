"""The DID document model: verification methods, relationships, services.

Theory of operation
-------------------
A DID document arrives as JSON from somewhere we do not control (a static
file, a peer's did:peer, our own did:key expansion).  :meth:`DIDDocument.from_json`
checks it once, completely, and builds an immutable-by-convention model in
which every identifier is absolute, so the envelope can compare ``kid``
strings with ``==`` and never has to think about relative references again.

Rules the parser keeps:

- **Size first.**  The document's JSON size, its number of verification
  methods, services, endpoints and routing keys are bounded by the named
  constants below, checked before any key is decoded.
- **One error type.**  Any malformed input raises
  :class:`~protocols.errors.InvalidDIDError`; no ``KeyError``, ``TypeError``
  or ``IndexError`` escapes (the property tests feed it random JSON).
- **Both VM forms.**  A verification method may sit in ``verificationMethod``
  (legacy: ``publicKey``) and be referenced by id from ``authentication`` /
  ``keyAgreement`` / ..., or be embedded as an object inside the relationship
  (as the DIDComm appendix B documents do).  Relative ids (``#key-1``) are made
  absolute against the document ``id``.  A VM's id must belong to this
  document's DID: a document cannot speak for another DID's keys.
- **Known key formats** are decoded eagerly (a bad key is a bad document);
  see :data:`VM_TYPE_CURVES`.  A VM of an unknown type, or a known container
  (JWK, Multikey) holding a curve we do not implement, is kept but unusable:
  asking for its key raises :class:`~protocols.errors.UnsupportedError`.
- **Services** are all kept.  ``DIDCommMessaging`` services also get their
  ``serviceEndpoint`` normalised into :class:`ServiceEndpoint` objects, whatever
  the form (a URI string with service-level ``accept``/``routingKeys``, one
  object, or a list); unknown members such as the libp2p extension's
  ``multiAddrs`` stay in ``ServiceEndpoint.raw``.

Nothing here resolves other DIDs; ``routingKeys`` stay as strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..codec import json_bytes, json_object
from ..errors import (
    DIDCommError,
    DIDURLNotFoundError,
    InvalidDIDError,
    UnsupportedError,
)
from ..keys import KEY_AGREEMENT_CURVES, SIGNING_ALGS, PublicKey
from ..multibase import MULTICODEC_PUBLIC_KEYS, b58decode, varint_decode
from .syntax import quote, split_did_url, validate_did

# -- limits ---------------------------------------------------------------------

#: Largest DID document we parse, as compact JSON.  Real documents are a few KiB.
MAX_DOCUMENT_BYTES = 64 * 1024
#: Most verification methods (declared plus embedded) in one document.
MAX_VERIFICATION_METHODS = 64
#: Most entries in one verification relationship (``authentication`` ...).
MAX_RELATIONSHIP_ENTRIES = 64
#: Most services in one document.
MAX_SERVICES = 32
#: Most endpoints in one service's ``serviceEndpoint`` list.
MAX_SERVICE_ENDPOINTS = 16
#: Most ``routingKeys`` (mediator hops) in one endpoint.
MAX_ROUTING_KEYS = 16
#: Most ``accept`` profiles in one endpoint.
MAX_ACCEPT_ENTRIES = 16
#: Most libp2p ``multiAddrs`` in one endpoint (ext-libp2p-transport).
MAX_MULTIADDRS = 32
#: Longest single string (URI, multiaddr, id) inside a service.
MAX_SERVICE_STRING = 2048

# -- vocabulary -----------------------------------------------------------------

DEFAULT_CONTEXT = ["https://www.w3.org/ns/did/v1"]

#: JSON member -> attribute, for the five verification relationships.
RELATIONSHIPS = {
    "authentication": "authentication",
    "assertionMethod": "assertion_method",
    "keyAgreement": "key_agreement",
    "capabilityInvocation": "capability_invocation",
    "capabilityDelegation": "capability_delegation",
}

#: Verification method types whose key we decode, and the one curve each
#: allows (None: the key format says which curve).  Key material members:
#: ``publicKeyJwk`` (JWK), ``publicKeyMultibase`` (``z`` + base58btc; for the
#: 2020 suites and Multikey it is multicodec-prefixed, a raw 32-byte value is
#: tolerated for the named 25519 suites), ``publicKeyBase58`` (raw key bytes;
#: SEC1 compressed for secp256k1).
VM_TYPE_CURVES: dict[str, str | None] = {
    "JsonWebKey2020": None,
    "JsonWebKey": None,
    "Multikey": None,
    "Ed25519VerificationKey2018": "Ed25519",
    "Ed25519VerificationKey2020": "Ed25519",
    "X25519KeyAgreementKey2019": "X25519",
    "X25519KeyAgreementKey2020": "X25519",
    "EcdsaSecp256k1VerificationKey2019": "secp256k1",
}

#: The DIDComm v2 service type (DIDComm v2.1 "Service Endpoint").
DIDCOMM_SERVICE_TYPE = "DIDCommMessaging"
#: URI scheme of the libp2p transport extension: ``libp2p-peerId:<peer id>``.
LIBP2P_URI_PREFIX = "libp2p-peerId:"

_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")
_KEY_AGREEMENT_CURVES = frozenset(KEY_AGREEMENT_CURVES)
_SIGNING_CURVES = frozenset(SIGNING_ALGS)


# -- model ----------------------------------------------------------------------


class VerificationMethod:
    """One verification method with an absolute ``id``.

    ``public_key`` raises :class:`UnsupportedError` for a VM whose type or
    curve we do not implement (check :attr:`usable` first to skip those).
    """

    __slots__ = ("_public_key", "controller", "id", "raw", "type")

    def __init__(
        self,
        id: str,
        type: str,
        controller: str,
        public_key: PublicKey | None,
        raw: Mapping[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.type = type
        self.controller = controller
        self._public_key = public_key
        self.raw: dict[str, Any] = (
            dict(raw) if raw is not None else _vm_json(id, type, controller, public_key)
        )

    @property
    def usable(self) -> bool:
        """True if we could decode this method's public key."""
        return self._public_key is not None

    @property
    def public_key(self) -> PublicKey:
        """The decoded key; UnsupportedError for an unusable method."""
        if self._public_key is None:
            raise UnsupportedError(
                f"verification method {quote(self.id)} has a key type we do not support"
                f" ({quote(self.type)})"
            )
        return self._public_key

    def to_json(self) -> dict[str, Any]:
        """The method as DID document JSON (absolute ``id``)."""
        return dict(self.raw)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, VerificationMethod)
            and self.id == other.id
            and self.type == other.type
            and self.controller == other.controller
            and self._public_key == other._public_key
        )

    def __hash__(self) -> int:
        return hash((self.id, self.type, self.controller))

    def __repr__(self) -> str:
        curve = self._public_key.curve if self._public_key else "unusable"
        return f"VerificationMethod(id={self.id!r}, type={self.type!r}, curve={curve!r})"


@dataclass(frozen=True, slots=True)
class ServiceEndpoint:
    """One DIDComm endpoint: where to send, what it accepts, which mediators.

    ``raw`` keeps the endpoint object as given (with unknown members such as
    ``multiAddrs``); for the legacy string form it is ``{"uri": ...}`` plus the
    service-level ``accept`` / ``routingKeys``.
    """

    uri: str
    accept: tuple[str, ...] = ()
    routing_keys: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def libp2p_peer_id(self) -> str | None:
        """The peer id of a ``libp2p-peerId:<id>`` endpoint, else None."""
        if self.uri.startswith(LIBP2P_URI_PREFIX):
            return self.uri[len(LIBP2P_URI_PREFIX) :] or None
        return None

    @property
    def multiaddrs(self) -> tuple[str, ...]:
        """The libp2p extension's ``multiAddrs`` (validated strings), if any."""
        value = self.raw.get("multiAddrs")
        return tuple(value) if isinstance(value, list) else ()


@dataclass(frozen=True, slots=True)
class Service:
    """A DID document service with an absolute ``id``.

    ``service_endpoint`` is the ``serviceEndpoint`` JSON value as given; for
    DIDCommMessaging services :attr:`endpoints` is its normalised form
    (empty for other types).  ``raw`` is the whole service object.
    """

    id: str
    type: str
    service_endpoint: Any
    raw: Mapping[str, Any]
    endpoints: tuple[ServiceEndpoint, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        endpoints: tuple[ServiceEndpoint, ...] = ()
        if self.type == DIDCOMM_SERVICE_TYPE:
            endpoints = _didcomm_endpoints(self.service_endpoint, self.raw, self.id)
        object.__setattr__(self, "endpoints", endpoints)

    @property
    def is_didcomm(self) -> bool:
        """True for a DIDComm v2 (``DIDCommMessaging``) service."""
        return self.type == DIDCOMM_SERVICE_TYPE

    def to_json(self) -> dict[str, Any]:
        """The service as DID document JSON (absolute ``id``)."""
        return {**self.raw, "id": self.id}


@dataclass(slots=True)
class DIDDocument:
    """A parsed DID document; every id and reference in it is absolute.

    Treat instances as immutable: resolvers cache and share them.
    """

    id: str
    verification_methods: dict[str, VerificationMethod] = field(default_factory=dict)
    authentication: list[str] = field(default_factory=list)
    key_agreement: list[str] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    assertion_method: list[str] = field(default_factory=list)
    capability_invocation: list[str] = field(default_factory=list)
    capability_delegation: list[str] = field(default_factory=list)
    also_known_as: list[str] = field(default_factory=list)
    context: Any = field(default_factory=lambda: list(DEFAULT_CONTEXT))
    #: Top-level members we do not model (``controller``, extensions), kept for to_json.
    extra: dict[str, Any] = field(default_factory=dict)

    # -- parsing -----------------------------------------------------------------

    @staticmethod
    def from_json(doc: Any) -> DIDDocument:
        """Parse and check a DID document JSON object (a ``dict``)."""
        if not isinstance(doc, dict):
            raise InvalidDIDError("a DID document must be a JSON object")
        try:
            size = len(json_bytes(doc))
        except (TypeError, ValueError, RecursionError):
            raise InvalidDIDError("DID document is not serialisable JSON") from None
        if size > MAX_DOCUMENT_BYTES:
            raise InvalidDIDError(f"DID document is larger than {MAX_DOCUMENT_BYTES} bytes")
        return _Parser(doc).parse()

    @staticmethod
    def from_json_text(text: str | bytes) -> DIDDocument:
        """Parse a DID document from JSON text, checking its size before decoding."""
        if len(text) > MAX_DOCUMENT_BYTES:
            raise InvalidDIDError(f"DID document is larger than {MAX_DOCUMENT_BYTES} bytes")
        try:
            doc = json_object(text, "DID document")
        except DIDCommError as exc:
            raise InvalidDIDError(str(exc)) from None
        return DIDDocument.from_json(doc)

    def to_json(self) -> dict[str, Any]:
        """The document as JSON: every VM under ``verificationMethod``, references by id."""
        out: dict[str, Any] = {"@context": self.context, "id": self.id}
        out.update(self.extra)
        if self.also_known_as:
            out["alsoKnownAs"] = list(self.also_known_as)
        out["verificationMethod"] = [vm.to_json() for vm in self.verification_methods.values()]
        for member, attr in RELATIONSHIPS.items():
            refs: list[str] = getattr(self, attr)
            if refs:
                out[member] = list(refs)
        if self.services:
            out["service"] = [svc.to_json() for svc in self.services]
        return out

    # -- lookups -----------------------------------------------------------------

    def absolute(self, ref: str) -> str:
        """Make ``#frag`` (or a DID URL of this DID) absolute against this document."""
        if ref.startswith("#"):
            return self.id + ref
        return ref

    def resolve_vm(self, kid: str) -> VerificationMethod:
        """The usable verification method named by ``kid`` (absolute or ``#frag``).

        DIDURLNotFoundError if this document has no such method;
        UnsupportedError if it has one whose key type we do not implement.
        """
        if not isinstance(kid, str):
            raise InvalidDIDError("a key id must be a string")
        vm = self.verification_methods.get(self.absolute(kid))
        if vm is None:
            raise DIDURLNotFoundError(
                f"{quote(kid)} is not a verification method of {quote(self.id)}"
            )
        if not vm.usable:
            raise UnsupportedError(
                f"verification method {quote(vm.id)} has a key type we do not support"
                f" ({quote(vm.type)})"
            )
        return vm

    def _methods(self, refs: Iterable[str], curves: frozenset[str]) -> list[VerificationMethod]:
        # On every packed message's path: no property calls, no set per call.
        out = []
        methods = self.verification_methods
        for ref in refs:
            vm = methods.get(ref)
            if vm is not None:
                key = vm._public_key
                if key is not None and key.curve in curves:
                    out.append(vm)
        return out

    def key_agreement_methods(self) -> list[VerificationMethod]:
        """Usable ``keyAgreement`` methods on a curve we can do ECDH with, in document order."""
        return self._methods(self.key_agreement, _KEY_AGREEMENT_CURVES)

    def authentication_methods(self) -> list[VerificationMethod]:
        """Usable ``authentication`` methods on a curve we can sign with, in document order."""
        return self._methods(self.authentication, _SIGNING_CURVES)

    def didcomm_services(self) -> list[Service]:
        """The ``DIDCommMessaging`` services with at least one endpoint, in document order."""
        return [svc for svc in self.services if svc.is_didcomm and svc.endpoints]

    def service(self, service_id: str) -> Service:
        """The service named by ``service_id`` (absolute or ``#frag``)."""
        wanted = self.absolute(service_id)
        for svc in self.services:
            if svc.id == wanted:
                return svc
        raise DIDURLNotFoundError(f"{quote(service_id)} is not a service of {quote(self.id)}")


# -- the parser -----------------------------------------------------------------


class _Parser:
    """One pass over one document; keeps the partial state out of DIDDocument."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        did = doc.get("id")
        self.did = validate_did(did)
        self.vms: dict[str, VerificationMethod] = {}

    def parse(self) -> DIDDocument:
        declared = self.doc.get("verificationMethod", [])
        legacy = self.doc.get("publicKey", [])
        for name, entries in (("verificationMethod", declared), ("publicKey", legacy)):
            for entry in _bounded_list(entries, name, MAX_VERIFICATION_METHODS):
                self._add_vm(entry)
        # Embedded methods first, so any relationship may reference any of them.
        lists = {
            member: _bounded_list(self.doc.get(member, []), member, MAX_RELATIONSHIP_ENTRIES)
            for member in RELATIONSHIPS
        }
        for member, entries in lists.items():
            for entry in entries:
                if isinstance(entry, dict):
                    self._add_vm(entry)
                elif not isinstance(entry, str):
                    raise InvalidDIDError(f"{member} entries must be strings or objects")
        relationships: dict[str, list[str]] = {}
        for member, entries in lists.items():
            refs: list[str] = []
            for entry in entries:
                if isinstance(entry, dict):
                    refs.append(self._absolute_id(entry.get("id"), "verification method"))
                else:
                    refs.append(self._reference(entry, member))
            relationships[RELATIONSHIPS[member]] = refs
        services = self._services()
        also_known_as = self.doc.get("alsoKnownAs", [])
        if not isinstance(also_known_as, list) or not all(
            isinstance(a, str) for a in also_known_as
        ):
            raise InvalidDIDError("alsoKnownAs must be a list of strings")
        modelled = {"@context", "id", "verificationMethod", "publicKey", "service", "alsoKnownAs"}
        modelled.update(RELATIONSHIPS)
        return DIDDocument(
            id=self.did,
            verification_methods=self.vms,
            services=services,
            also_known_as=list(also_known_as),
            context=self.doc.get("@context", list(DEFAULT_CONTEXT)),
            extra={k: v for k, v in self.doc.items() if k not in modelled},
            **relationships,
        )

    # -- verification methods ------------------------------------------------------

    def _absolute_id(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or not value:
            raise InvalidDIDError(f"{what} needs a string 'id'")
        absolute = self.did + value if value.startswith("#") else value
        did, fragment = split_did_url(absolute)
        if did != self.did:
            raise InvalidDIDError(f"{what} {quote(value)} does not belong to {quote(self.did)}")
        if fragment is None:
            raise InvalidDIDError(f"{what} id {quote(value)} has no fragment")
        return absolute

    def _reference(self, ref: str, member: str) -> str:
        absolute = self.did + ref if ref.startswith("#") else ref
        # A reference may name another DID's method; it must still be a DID URL.
        split_did_url(absolute)
        if absolute not in self.vms and split_did_url(absolute)[0] == self.did:
            raise InvalidDIDError(f"{member} refers to an undeclared method {quote(ref)}")
        return absolute

    def _add_vm(self, entry: Any) -> str:
        if not isinstance(entry, dict):
            raise InvalidDIDError("a verification method must be a JSON object")
        vm_id = self._absolute_id(entry.get("id"), "verification method")
        vm_type = entry.get("type")
        if not isinstance(vm_type, str):
            raise InvalidDIDError(f"verification method {quote(vm_id)} needs a string 'type'")
        controller = entry.get("controller", self.did)
        if not isinstance(controller, str):
            raise InvalidDIDError(f"verification method {quote(vm_id)} has a bad 'controller'")
        if controller.startswith("#"):
            controller = self.did
        key = _decode_vm_key(entry, vm_type, vm_id)
        raw = {**entry, "id": vm_id, "controller": controller}
        vm = VerificationMethod(vm_id, vm_type, controller, key, raw)
        existing = self.vms.get(vm_id)
        if existing is not None and existing != vm:
            raise InvalidDIDError(f"verification method {quote(vm_id)} is declared twice")
        if existing is None:
            if len(self.vms) >= MAX_VERIFICATION_METHODS:
                raise InvalidDIDError(
                    f"DID document has more than {MAX_VERIFICATION_METHODS} verification methods"
                )
            self.vms[vm_id] = vm
        return vm_id

    # -- services ----------------------------------------------------------------

    def _services(self) -> list[Service]:
        services: list[Service] = []
        seen: set[str] = set()
        for entry in _bounded_list(self.doc.get("service", []), "service", MAX_SERVICES):
            if not isinstance(entry, dict):
                raise InvalidDIDError("a service must be a JSON object")
            sid = entry.get("id")
            if not isinstance(sid, str) or not sid:
                raise InvalidDIDError("a service needs a string 'id'")
            if len(sid) > MAX_SERVICE_STRING:
                raise InvalidDIDError("service id is too long")
            sid = self.did + sid if sid.startswith("#") else sid
            if sid in seen:
                raise InvalidDIDError(f"service {quote(sid)} is declared twice")
            seen.add(sid)
            stype = entry.get("type")
            if isinstance(stype, list) and stype and all(isinstance(t, str) for t in stype):
                # DID Core allows a set of types; DIDComm's is a single string.
                stype = DIDCOMM_SERVICE_TYPE if DIDCOMM_SERVICE_TYPE in stype else stype[0]
            if not isinstance(stype, str):
                raise InvalidDIDError(f"service {quote(sid)} needs a string 'type'")
            if "serviceEndpoint" not in entry:
                raise InvalidDIDError(f"service {quote(sid)} has no serviceEndpoint")
            raw = {**entry, "id": sid}
            services.append(Service(sid, stype, entry["serviceEndpoint"], raw))
        return services


# -- helpers --------------------------------------------------------------------


def _bounded_list(value: Any, name: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidDIDError(f"{name} must be a list")
    if len(value) > limit:
        raise InvalidDIDError(f"{name} has more than {limit} entries")
    return value


def _vm_json(id: str, type: str, controller: str, key: PublicKey | None) -> dict[str, Any]:
    """JSON for a method built in code: Multikey, or JWK when the type asks for it."""
    out: dict[str, Any] = {"id": id, "type": type, "controller": controller}
    if key is not None:
        if type in ("JsonWebKey2020", "JsonWebKey", "EcdsaSecp256k1VerificationKey2019"):
            out["publicKeyJwk"] = key.to_jwk()
        else:
            out["publicKeyMultibase"] = key.to_multikey()
    return out


def _decode_vm_key(entry: dict[str, Any], vm_type: str, vm_id: str) -> PublicKey | None:
    """The key of a verification method; None if its type/curve is unsupported."""
    if vm_type not in VM_TYPE_CURVES:
        return None
    expected = VM_TYPE_CURVES[vm_type]
    try:
        key = _decode_material(entry, vm_type, expected)
    except UnsupportedError:
        return None
    except DIDCommError as exc:
        raise InvalidDIDError(f"verification method {quote(vm_id)}: {exc}") from None
    if key is None:
        raise InvalidDIDError(
            f"verification method {quote(vm_id)} has no key material its type allows"
        )
    if expected is not None and key.curve != expected:
        raise InvalidDIDError(
            f"verification method {quote(vm_id)} of type {vm_type} holds a {key.curve} key"
        )
    return key


def _decode_material(entry: dict[str, Any], vm_type: str, expected: str | None) -> PublicKey | None:
    jwk = entry.get("publicKeyJwk")
    multibase = entry.get("publicKeyMultibase")
    base58 = entry.get("publicKeyBase58")
    if jwk is not None and vm_type != "Multikey":
        if not isinstance(jwk, dict):
            raise InvalidDIDError("publicKeyJwk must be an object")
        if any(member in jwk for member in _PRIVATE_JWK_MEMBERS):
            raise InvalidDIDError("publicKeyJwk contains private key members")
        if jwk.get("kty") not in ("OKP", "EC"):
            raise UnsupportedError("publicKeyJwk has a key type we do not support")
        return PublicKey.from_jwk(jwk)
    if multibase is not None and vm_type not in ("JsonWebKey2020", "JsonWebKey"):
        if not isinstance(multibase, str) or not multibase.startswith("z"):
            raise InvalidDIDError("publicKeyMultibase must be a 'z' (base58btc) string")
        raw = b58decode(multibase[1:])
        if not raw:
            raise InvalidDIDError("publicKeyMultibase is empty")
        code, used = varint_decode(raw)
        if expected is not None and len(raw) == 32 and expected in ("Ed25519", "X25519"):
            # Some 2018/2019-era documents put the bare 32 key bytes in multibase.
            return PublicKey.from_raw(expected, raw)
        curve = MULTICODEC_PUBLIC_KEYS.get(code)
        if curve is None:
            raise UnsupportedError("publicKeyMultibase has a key type we do not support")
        return PublicKey.from_raw(curve, raw[used:])
    if base58 is not None and expected is not None:
        if not isinstance(base58, str):
            raise InvalidDIDError("publicKeyBase58 must be a string")
        return PublicKey.from_raw(expected, b58decode(base58))
    return None


def _string_list(value: Any, what: str, limit: int) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidDIDError(f"{what} must be a list of strings")
    if len(value) > limit:
        raise InvalidDIDError(f"{what} has more than {limit} entries")
    if any(len(v) > MAX_SERVICE_STRING for v in value):
        raise InvalidDIDError(f"{what} has an over-long entry")
    return tuple(value)


def _didcomm_endpoints(
    value: Any, service: Mapping[str, Any], sid: str
) -> tuple[ServiceEndpoint, ...]:
    """Normalise the three DIDComm ``serviceEndpoint`` forms into endpoint objects."""
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_SERVICE_ENDPOINTS:
        raise InvalidDIDError(
            f"service {quote(sid)} has more than {MAX_SERVICE_ENDPOINTS} endpoints"
        )
    out = []
    for item in items:
        if isinstance(item, str):
            # DIDComm v2.0 form: a URI, with accept/routingKeys on the service itself.
            raw: dict[str, Any] = {"uri": item}
            for member in ("accept", "routingKeys"):
                if member in service:
                    raw[member] = service[member]
        elif isinstance(item, dict):
            raw = dict(item)
        else:
            raise InvalidDIDError(f"service {quote(sid)} has a malformed serviceEndpoint")
        uri = raw.get("uri")
        if not isinstance(uri, str) or not uri or len(uri) > MAX_SERVICE_STRING:
            raise InvalidDIDError(f"service {quote(sid)} endpoint needs a string 'uri'")
        accept = _string_list(raw.get("accept"), "accept", MAX_ACCEPT_ENTRIES)
        routing = _string_list(raw.get("routingKeys"), "routingKeys", MAX_ROUTING_KEYS)
        for key_id in routing:
            split_did_url(key_id)
        _string_list(raw.get("multiAddrs"), "multiAddrs", MAX_MULTIADDRS)
        out.append(ServiceEndpoint(uri, accept, routing, raw))
    return tuple(out)

"""did:peer:2: the peer DID spec's example, a second library's vectors, round trips, fuzzing."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.codec import b64u_encode, json_bytes
from protocols.did.did_peer import (
    MAX_SERVICE_DEPTH,
    SHA256_MULTIHASH,
    abbreviate_service,
    create_did_peer_2,
    create_did_peer_4,
    expand_service,
    peer_2_document,
    peer_4_document,
    peer_4_short_form,
    resolve_did_peer,
    resolve_did_peer_4_short,
)
from protocols.did.document import DIDDocument
from protocols.errors import (
    DIDCommError,
    DIDNotResolvedError,
    InvalidDIDError,
    KeyRoleError,
)
from protocols.keys import PrivateKey, PublicKey
from protocols.multibase import b58decode, b58encode, varint_encode

# -- the spec's example (peer-did-method-spec, "Resolving a did:peer:2") -----------

SPEC_V = "z6Mkj3PUd1WjvaDhNZhhhXQdz5UnZXmS7ehtx8bsPpD47kKc"
SPEC_E = "z6LSg8zQom395jKLrGiBNruB9MM6V8PWuf2FpEy4uRFiqQBR"
SPEC_S1 = (
    "eyJ0IjoiZG0iLCJzIjp7InVyaSI6Imh0dHA6Ly9leGFtcGxlLmNvbS9kaWRjb21tIiwiYSI6WyJkaWRjb21tL3YyIl0s"
    "InIiOlsiZGlkOmV4YW1wbGU6MTIzNDU2Nzg5YWJjZGVmZ2hpI2tleS0xIl19fQ"
)
SPEC_S2 = (
    "eyJ0IjoiZG0iLCJzIjp7InVyaSI6Imh0dHA6Ly9leGFtcGxlLmNvbS9hbm90aGVyIiwiYSI6WyJkaWRjb21tL3YyIl0s"
    "InIiOlsiZGlkOmV4YW1wbGU6MTIzNDU2Nzg5YWJjZGVmZ2hpI2tleS0yIl19fQ"
)
SPEC_DID = f"did:peer:2.V{SPEC_V}.E{SPEC_E}.S{SPEC_S1}.S{SPEC_S2}"
SPEC_SERVICES = [
    {
        "type": "DIDCommMessaging",
        "serviceEndpoint": {
            "uri": "http://example.com/didcomm",
            "accept": ["didcomm/v2"],
            "routingKeys": ["did:example:123456789abcdefghi#key-1"],
        },
    },
    {
        "type": "DIDCommMessaging",
        "serviceEndpoint": {
            "uri": "http://example.com/another",
            "accept": ["didcomm/v2"],
            "routingKeys": ["did:example:123456789abcdefghi#key-2"],
        },
    },
]
# The spec's resolved document (without the optional did:peer:3 alsoKnownAs).
SPEC_DOCUMENT = {
    "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
    "id": SPEC_DID,
    "verificationMethod": [
        {"id": "#key-1", "controller": SPEC_DID, "type": "Multikey", "publicKeyMultibase": SPEC_V},
        {"id": "#key-2", "controller": SPEC_DID, "type": "Multikey", "publicKeyMultibase": SPEC_E},
    ],
    "authentication": ["#key-1"],
    "keyAgreement": ["#key-2"],
    "service": [
        {**SPEC_SERVICES[0], "id": "#service"},
        {**SPEC_SERVICES[1], "id": "#service-1"},
    ],
}


def test_spec_example_resolves_to_the_spec_document() -> None:
    assert peer_2_document(SPEC_DID) == SPEC_DOCUMENT


def test_spec_example_as_a_document() -> None:
    doc = resolve_did_peer(SPEC_DID)
    assert doc.authentication == [SPEC_DID + "#key-1"]
    assert doc.key_agreement == [SPEC_DID + "#key-2"]
    assert doc.resolve_vm("#key-1").public_key == PublicKey.from_multikey(SPEC_V)
    assert doc.resolve_vm("#key-2").public_key.curve == "X25519"
    assert [s.id for s in doc.didcomm_services()] == [
        SPEC_DID + "#service",
        SPEC_DID + "#service-1",
    ]
    assert doc.services[1].endpoints[0].uri == "http://example.com/another"
    assert doc.services[1].endpoints[0].routing_keys == ("did:example:123456789abcdefghi#key-2",)


def test_spec_service_encoding() -> None:
    """Abbreviate, compact JSON, unpadded base64url: byte for byte the spec's S elements."""
    assert [b64u_encode(json_bytes(abbreviate_service(s))) for s in SPEC_SERVICES] == [
        SPEC_S1,
        SPEC_S2,
    ]
    assert abbreviate_service(SPEC_SERVICES[0]) == {
        "t": "dm",
        "s": {
            "uri": "http://example.com/didcomm",
            "a": ["didcomm/v2"],
            "r": ["did:example:123456789abcdefghi#key-1"],
        },
    }
    assert expand_service(abbreviate_service(SPEC_SERVICES[1])) == SPEC_SERVICES[1]


# -- sicpa-dlab/peer-did-python test vectors (pre-"clarified" encoders) --------------

PEERDID_DID = (
    "did:peer:2"
    ".Ez6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc"
    ".Vz6MkqRYqQiSgvZQdnBytw86Qbs2ZWUkGv22od935YF4s8M7V"
    ".Vz6MkgoLTnTypo3tDRwCkZXSccTPHRLhF4ZnjhueYAFpEX6vg"
    ".SeyJ0IjoiZG0iLCJzIjoiaHR0cHM6Ly9leGFtcGxlLmNvbS9lbmRwb2ludCIsInIiOlsiZGlkOmV4YW1wbGU6c29tZW1l"
    "ZGlhdG9yI3NvbWVrZXkiXSwiYSI6WyJkaWRjb21tL3YyIiwiZGlkY29tbS9haXAyO2Vudj1yZmM1ODciXX0"
)
PEERDID_TWO_SERVICES = (
    "did:peer:2"
    ".Ez6LSpSrLxbAhg2SHwKk7kwpsH7DM7QjFS5iK6qP87eViohud"
    ".Vz6MkqRYqQiSgvZQdnBytw86Qbs2ZWUkGv22od935YF4s8M7V"
    ".SW3sidCI6ImRtIiwicyI6Imh0dHBzOi8vZXhhbXBsZS5jb20vZW5kcG9pbnQiLCJyIjpbImRpZDpleGFtcGxlOnNvbWVt"
    "ZWRpYXRvciNzb21la2V5Il19LHsidCI6ImV4YW1wbGUiLCJzIjoiaHR0cHM6Ly9leGFtcGxlLmNvbS9lbmRwb2ludDIiLCJy"
    "IjpbImRpZDpleGFtcGxlOnNvbWVtZWRpYXRvciNzb21la2V5MiJdLCJhIjpbImRpZGNvbW0vdjIiLCJkaWRjb21tL2FpcDI7"
    "ZW52PXJmYzU4NyJdfV0"
)


def test_peerdid_library_vector_gives_the_same_keys_and_service() -> None:
    """peer-did-python resolved this DID to these base58 keys (with its older key ids)."""
    doc = resolve_did_peer(PEERDID_DID)
    assert [doc.resolve_vm(k).public_key for k in doc.key_agreement] == [
        PublicKey("X25519", b58decode("JhNWeSVLMYccCk7iopQW4guaSJTojqpMEELgSLhKwRr"))
    ]
    assert [doc.resolve_vm(k).public_key for k in doc.authentication] == [
        PublicKey("Ed25519", b58decode("ByHnpUCFb1vAfh9CFZ8ZkmUZguURW8nSw889hy6rD8L7")),
        PublicKey("Ed25519", b58decode("3M5RCDjPTWPkKSN3sxUmmMqHbmRPegYP1tjcKyrDbt9J")),
    ]
    # The clarified spec's ids: keys numbered in order of appearance.
    assert doc.key_agreement == [PEERDID_DID + "#key-1"]
    assert doc.authentication == [PEERDID_DID + "#key-2", PEERDID_DID + "#key-3"]
    (service,) = doc.didcomm_services()
    assert service.id == PEERDID_DID + "#service"
    (endpoint,) = service.endpoints
    assert endpoint.uri == "https://example.com/endpoint"
    assert endpoint.routing_keys == ("did:example:somemediator#somekey",)
    assert endpoint.accept == ("didcomm/v2", "didcomm/aip2;env=rfc587")


def test_services_encoded_as_one_json_list_are_read() -> None:
    doc = resolve_did_peer(PEERDID_TWO_SERVICES)
    assert [(s.id.split("#")[1], s.type) for s in doc.services] == [
        ("service", "DIDCommMessaging"),
        ("service-1", "example"),
    ]
    assert doc.services[1].service_endpoint == "https://example.com/endpoint2"


# The peer DID spec's "Method 4" example, long form and short form.
SPEC_PEER_4 = (
    "did:peer:4zQmd8CpeFPci817KDsbSAKWcXAE2mjvCQSasRewvbSF54Bd:z2M1k7h4psgp4CmJcnQn2Ljp7Pz7ktsd"
    "7oBhMU3dWY5s4fhFNj17qcRTQ427C7QHNT6cQ7T3XfRh35Q2GhaNFZmWHVFq4vL7F8nm36PA9Y96DvdrUiRUaiCuXn"
    "BFrn1o7mxFZAx14JL4t8vUWpuDPwQuddVo1T8myRiVH7wdxuoYbsva5x6idEpCQydJdFjiHGCpNc2UtjzPQ8awSXkc"
    "tGCnBmgkhrj5gto3D4i3EREXYq4Z8r2cWGBr2UzbSmnxW2BuYddFo9Yfm6mKjtJyLpF74ytqrF5xtf84MnGFg1hMBm"
    "h1xVx1JwjZ2BeMJs7mNS8DTZhKC7KH38EgqDtUZzfjhpjmmUfkXg2KFEA3EGbbVm1DPqQXayPYKAsYPS9AyKkcQ3fz"
    "WafLPP93UfNhtUPL8JW5pMcSV3P8v6j3vPXqnnGknNyBprD6YGUVtgLiAqDBDUF3LSxFQJCVYYtghMTv8WuSw9h1a1"
    "SRFrDQLGHE4UrkgoRvwaGWr64aM87T1eVGkP5Dt4L1AbboeK2ceLArPScrdYGTpi3BpTkLwZCdjdiFSfTy9okL1YNR"
    "ARqUf2wm8DvkVGUU7u5nQA3ZMaXWJAewk6k1YUxKd7LvofGUK4YEDtoxN5vb6r1Q2godrGqaPkjfL3RoYPpDYymf9X"
    "hcgG8Kx3DZaA6cyTs24t45KxYAfeCw4wqUpCH9HbpD78TbEUr9PPAsJgXBvBj2VVsxnr7FKbK4KykGcg1W8M1JPz21"
    "Z4Y72LWgGQCmixovrkHktcTX1uNHjAvKBqVD5C7XmVfHgXCHj7djCh3vzLNuVLtEED8J1hhqsB1oCBGiuh3xXr7fZ9"
    "wUjJCQ1HYHqxLJKdYKtoCiPmgKM7etVftXkmTFETZmpM19aRyih3bao76LdpQtbw636r7a3qt8v4WfxsXJetSL8c7t"
    "24SqQBcAY89FBsbEnFNrQCMK3JEseKHVaU388ctvRD45uQfe5GndFxthj4iSDomk4uRFd1uRbywoP1tRuabHTDX42U"
    "xPjz"
)
SPEC_PEER_4_SHORT = "did:peer:4zQmd8CpeFPci817KDsbSAKWcXAE2mjvCQSasRewvbSF54Bd"


# -- creating --------------------------------------------------------------------------

LIBP2P_SERVICE = {
    "id": "#didcomm",
    "type": "DIDCommMessaging",
    "serviceEndpoint": {
        "uri": "libp2p-peerId:12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo",
        "accept": ["didcomm/v2"],
        "routingKeys": [],
        "multiAddrs": ["/ip4/192.0.2.7/tcp/4001", "/ip4/192.0.2.7/udp/4001/quic-v1"],
    },
}


def test_create_our_usual_did() -> None:
    ed = PrivateKey.generate("Ed25519").public
    x = PrivateKey.generate("X25519").public
    did = create_did_peer_2([ed], [x], [LIBP2P_SERVICE])
    assert did.startswith(f"did:peer:2.E{x.to_multikey()}.V{ed.to_multikey()}.S")
    doc = resolve_did_peer(did)
    assert doc.resolve_vm("#key-1").public_key == x
    assert doc.resolve_vm("#key-2").public_key == ed
    assert doc.key_agreement == [did + "#key-1"]
    assert doc.authentication == [did + "#key-2"]
    (service,) = doc.didcomm_services()
    assert service.id == did + "#didcomm"
    (endpoint,) = service.endpoints
    assert endpoint.libp2p_peer_id == "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
    assert endpoint.multiaddrs == ("/ip4/192.0.2.7/tcp/4001", "/ip4/192.0.2.7/udp/4001/quic-v1")
    assert "=" not in did


def test_create_refuses_keys_in_the_wrong_role() -> None:
    ed = PrivateKey.generate("Ed25519").public
    x = PrivateKey.generate("X25519").public
    k1 = PrivateKey.generate("secp256k1").public
    with pytest.raises(KeyRoleError):
        create_did_peer_2([x], [])
    with pytest.raises(KeyRoleError):
        create_did_peer_2([], [ed])
    with pytest.raises(KeyRoleError):
        create_did_peer_2([], [k1])
    with pytest.raises(InvalidDIDError):
        create_did_peer_2([], [])


@pytest.mark.parametrize(
    "service",
    [
        {**LIBP2P_SERVICE, "id": "did:example:elsewhere#s"},  # ids must be relative
        {"type": "DIDCommMessaging"},  # no endpoint
        {"type": "DIDCommMessaging", "serviceEndpoint": {"uri": ""}},
        {"type": "DIDCommMessaging", "t": "dm", "serviceEndpoint": "x"},  # alias clash
    ],
)
def test_create_refuses_bad_services(service: dict[str, Any]) -> None:
    ed = PrivateKey.generate("Ed25519").public
    with pytest.raises(InvalidDIDError):
        create_did_peer_2([ed], [], [service])


# -- malformed DIDs ----------------------------------------------------------------------


SHORT_X25519 = "z" + b58encode(varint_encode(0xEC) + b58decode(SPEC_E[1:])[2:-1])


@pytest.mark.parametrize(
    "did",
    [
        "did:peer:2",
        "did:peer:2.",
        "did:peer:2Ez6LSg8zQom395jKLrGiBNruB9MM6V8PWuf2FpEy4uRFiqQBR",
        f"did:peer:2.E{SPEC_E}..V{SPEC_V}",  # empty element
        f"did:peer:2.X{SPEC_E}",  # unknown purpose
        f"did:peer:2.E{SPEC_E[1:]}",  # no multibase prefix
        f"did:peer:2.E{SHORT_X25519}",  # 31-byte key
        f"did:peer:2.E{SPEC_E}.S",  # empty service
        f"did:peer:2.E{SPEC_E}.S{b64u_encode(b'not json')}",
        f"did:peer:2.E{SPEC_E}.S{b64u_encode(b'42')}",
        f"did:peer:2.E{SPEC_E}.S{b64u_encode(b'[1]')}",
        f"did:peer:2.E{SPEC_E}.S{b64u_encode(b'{}')}",  # a service needs type and endpoint
        f"did:peer:2.E{SPEC_E}.S{b64u_encode(json_bytes({'t': 'dm', 's': {'uri': 'x'}, 'id': 7}))}",
        f"did:peer:2.E{SPEC_E}.S{SPEC_S1}x",  # impossible base64url length
        f"did:peer:2.E{SPEC_E}.S{b64u_encode(json_bytes({'t': 'x', 's': [[[[[[[[[[[]]]]]]]]]]]}))}",
    ],
)
def test_malformed_peer_dids(did: str) -> None:
    with pytest.raises(InvalidDIDError):
        resolve_did_peer(did)


def test_key_of_an_unknown_multicodec_is_kept_but_unusable() -> None:
    bls = "z" + b58encode(varint_encode(0xEB) + bytes(96))
    doc = resolve_did_peer(f"did:peer:2.V{bls}.V{SPEC_V}")
    assert len(doc.authentication) == 2
    assert not doc.verification_methods[doc.authentication[0]].usable
    assert [vm.id for vm in doc.authentication_methods()] == [doc.authentication[1]]


def test_service_nesting_limit() -> None:
    deep: Any = "x"
    for _ in range(MAX_SERVICE_DEPTH + 1):
        deep = {"k": deep}
    with pytest.raises(InvalidDIDError, match="nested"):
        expand_service({"t": "dm", "s": deep})


@pytest.mark.parametrize(
    "did",
    [
        "did:peer:0z6MkqRYqQiSgvZQdnBytw86Qbs2ZWUkGv22od935YF4s8M7V",
        "did:peer:1zQmZMygzYqNwU6Uhmewx5Xepf2VLp5S4HLSwwgf2aiKZuwa",
        "did:peer:3zQmS19jtYDvGtKVrJhQnRFpBQAx3pJ9omx2HpNrcXFuRCz9",
        SPEC_PEER_4_SHORT,  # short form, long form never seen
        "did:key:z6MkqRYqQiSgvZQdnBytw86Qbs2ZWUkGv22od935YF4s8M7V",
    ],
)
def test_unsupported_numalgos_are_not_resolved(did: str) -> None:
    with pytest.raises(DIDNotResolvedError):
        resolve_did_peer(did)


# -- properties ----------------------------------------------------------------------------

AGREEMENT = ["X25519", "P-256", "P-384", "P-521"]
SIGNING = ["Ed25519", "P-256", "P-384", "secp256k1"]
# Keys are generated once: key generation is not what is under test.
KEYS = {
    curve: [PrivateKey.generate(curve).public for _ in range(3)] for curve in {*AGREEMENT, *SIGNING}
}

safe_text = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters='\\"'),
    min_size=1,
    max_size=30,
)
endpoint_objects = st.fixed_dictionaries(
    {"uri": safe_text},
    optional={
        "accept": st.lists(safe_text, max_size=3),
        "routingKeys": st.lists(st.just("did:example:mediator#key-1"), max_size=2),
        "multiAddrs": st.lists(st.just("/ip4/127.0.0.1/tcp/4001"), max_size=2),
        "x-extra": st.integers(),
    },
)
services = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["DIDCommMessaging", "LinkedDomains"]),
        "serviceEndpoint": st.one_of(
            safe_text, endpoint_objects, st.lists(endpoint_objects, min_size=1, max_size=2)
        ),
    },
    optional={"id": st.sampled_from(["#didcomm", "#other", "#service-9"])},
)


def keys_of(curves: list[str]) -> st.SearchStrategy[list[PublicKey]]:
    return st.lists(st.sampled_from(curves).flatmap(lambda c: st.sampled_from(KEYS[c])), max_size=3)


@settings(max_examples=60, deadline=None)
@given(
    keys_of(SIGNING),
    keys_of(AGREEMENT),
    st.lists(services, max_size=3, unique_by=lambda s: s.get("id")),
)
def test_create_then_resolve_gives_the_same_keys_and_services(
    authentication: list[PublicKey], key_agreement: list[PublicKey], svcs: list[dict[str, Any]]
) -> None:
    if not (authentication or key_agreement or svcs):
        return
    did = create_did_peer_2(authentication, key_agreement, svcs)
    doc = resolve_did_peer(did)
    assert [doc.resolve_vm(k).public_key for k in doc.key_agreement] == key_agreement
    assert [doc.resolve_vm(k).public_key for k in doc.authentication] == authentication
    # Every key is #key-N, N in order of appearance (agreement keys first).
    assert list(doc.verification_methods) == [
        f"{did}#key-{n}" for n in range(1, len(key_agreement) + len(authentication) + 1)
    ]
    assert len(doc.services) == len(svcs)
    unnamed = 0
    for given_service, service in zip(svcs, doc.services, strict=True):
        if "id" in given_service:
            assert service.id == did + given_service["id"]
        else:
            assert service.id == did + ("#service" if unnamed == 0 else f"#service-{unnamed}")
            unnamed += 1
        assert service.type == given_service["type"]
        assert service.service_endpoint == given_service["serviceEndpoint"]
    assert DIDDocument.from_json(doc.to_json()).services == doc.services


@given(st.text(max_size=200))
def test_random_peer_dids_raise_only_typed_errors(text: str) -> None:
    for prefix in ("did:peer:2.", "did:peer:4", "did:peer:4z", SPEC_PEER_4_SHORT + ":z"):
        with contextlib.suppress(DIDCommError):
            resolve_did_peer(prefix + text)


@given(
    st.lists(
        st.tuples(
            st.sampled_from("AEVIDSXz"),
            st.one_of(
                st.sampled_from([SPEC_E, SPEC_V, SPEC_S1, SPEC_E[:-1], "z", ""]),
                st.binary(max_size=60).map(b64u_encode),
                st.builds(
                    lambda v: b64u_encode(json_bytes(v)),
                    st.dictionaries(st.sampled_from("tsra"), st.text(max_size=5)),
                ),
            ),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_random_element_lists_raise_only_typed_errors(elements: list[tuple[str, str]]) -> None:
    did = "did:peer:2" + "".join(f".{purpose}{value}" for purpose, value in elements)
    try:
        doc = resolve_did_peer(did)
    except DIDCommError:
        return
    for kid in doc.verification_methods:
        with contextlib.suppress(DIDCommError):
            doc.resolve_vm(kid)
    doc.didcomm_services()


# -- numalgo 4 (the spec's "Method 4" example) ----------------------------------------

SPEC_PEER_4_INPUT = {
    "@context": [
        "https://www.w3.org/ns/did/v1",
        "https://w3id.org/security/suites/x25519-2020/v1",
        "https://w3id.org/security/suites/ed25519-2020/v1",
    ],
    "verificationMethod": [
        {
            "id": "#6LSqPZfn",
            "type": "X25519KeyAgreementKey2020",
            "publicKeyMultibase": "z6LSqPZfn9krvgXma2icTMKf2uVcYhKXsudCmPoUzqGYW24U",
        },
        {
            "id": "#6MkrCD1c",
            "type": "Ed25519VerificationKey2020",
            "publicKeyMultibase": "z6MkrCD1csqtgdj8sjrsu8jxcbeyP6m7LiK87NzhfWqio5yr",
        },
    ],
    "authentication": ["#6MkrCD1c"],
    "assertionMethod": ["#6MkrCD1c"],
    "keyAgreement": ["#6LSqPZfn"],
    "capabilityInvocation": ["#6MkrCD1c"],
    "capabilityDelegation": ["#6MkrCD1c"],
    "service": [
        {
            "id": "#didcommmessaging-0",
            "type": "DIDCommMessaging",
            "serviceEndpoint": {
                "uri": "didcomm:transport/queue",
                "accept": ["didcomm/v2"],
                "routingKeys": [],
            },
        }
    ],
}


def test_peer_4_spec_example_is_reproduced() -> None:
    assert create_did_peer_4(SPEC_PEER_4_INPUT) == SPEC_PEER_4
    assert peer_4_short_form(SPEC_PEER_4) == SPEC_PEER_4_SHORT
    assert peer_4_short_form(SPEC_PEER_4_SHORT) == SPEC_PEER_4_SHORT


def test_peer_4_long_form_resolves_on_its_own() -> None:
    assert peer_4_document(SPEC_PEER_4) == {
        **SPEC_PEER_4_INPUT,
        "id": SPEC_PEER_4,
        "alsoKnownAs": [SPEC_PEER_4_SHORT],
    }
    doc = resolve_did_peer(SPEC_PEER_4)
    assert doc.authentication == [SPEC_PEER_4 + "#6MkrCD1c"]
    assert doc.resolve_vm("#6MkrCD1c").public_key == PublicKey.from_multikey(
        "z6MkrCD1csqtgdj8sjrsu8jxcbeyP6m7LiK87NzhfWqio5yr"
    )
    assert doc.resolve_vm("#6LSqPZfn").controller == SPEC_PEER_4
    assert doc.didcomm_services()[0].endpoints[0].uri == "didcomm:transport/queue"


def test_peer_4_short_form_needs_the_long_form() -> None:
    with pytest.raises(DIDNotResolvedError):
        resolve_did_peer(SPEC_PEER_4_SHORT)
    doc = resolve_did_peer_4_short(SPEC_PEER_4_SHORT, SPEC_PEER_4)
    assert doc.id == SPEC_PEER_4_SHORT
    assert doc.also_known_as == [SPEC_PEER_4]
    assert doc.key_agreement == [SPEC_PEER_4_SHORT + "#6LSqPZfn"]
    assert doc.resolve_vm("#6MkrCD1c").controller == SPEC_PEER_4_SHORT
    other = create_did_peer_4({"authentication": []})
    with pytest.raises(InvalidDIDError):
        resolve_did_peer_4_short(SPEC_PEER_4_SHORT, other)


def _tamper(did: str, index: int) -> str:
    replacement = "2" if did[index] != "2" else "3"
    return did[:index] + replacement + did[index + 1 :]


@pytest.mark.parametrize(
    "did",
    [
        _tamper(SPEC_PEER_4, len(SPEC_PEER_4) - 10),  # document changed: hash mismatch
        _tamper(SPEC_PEER_4, 15),  # hash changed
        SPEC_PEER_4 + ":zabc",
        "did:peer:4zQmd8CpeFPci817KDsbSAKWcXAE2mjvCQSasRewvbSF54Bd:",
        "did:peer:4:" + SPEC_PEER_4.rpartition(":")[2],
        "did:peer:4" + SPEC_PEER_4.rpartition(":")[2][1:] + ":x",
    ],
)
def test_peer_4_malformed(did: str) -> None:
    with pytest.raises(InvalidDIDError):
        resolve_did_peer(did)


@pytest.mark.parametrize(
    "document",
    [
        {"id": "did:example:x"},
        {"verificationMethod": [{"id": "did:example:other#k", "type": "Multikey"}]},
        {"authentication": ["#missing"]},
    ],
)
def test_peer_4_refuses_bad_input_documents(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidDIDError):
        create_did_peer_4(document)


def _encoded_peer_4(payload: bytes, codec: int = 0x0200) -> str:
    encoded = "z" + b58encode(varint_encode(codec) + payload)
    digest = hashlib.sha256(encoded.encode()).digest()
    hashed = "z" + b58encode(SHA256_MULTIHASH + digest)
    return f"did:peer:4{hashed}:{encoded}"


@pytest.mark.parametrize(
    ("payload", "codec"),
    [
        (b"[1, 2]", 0x0200),  # not an object
        (b"{not json", 0x0200),
        (b'{"id": "did:peer:4x"}', 0x0200),  # input documents carry no id
        (b"{}", 0x0129),  # dag-json, not json
    ],
)
def test_peer_4_well_hashed_but_bad_documents(payload: bytes, codec: int) -> None:
    with pytest.raises(InvalidDIDError):
        resolve_did_peer(_encoded_peer_4(payload, codec))


@settings(max_examples=30, deadline=None)
@given(
    keys_of(SIGNING),
    keys_of(AGREEMENT),
    st.lists(services, max_size=2, unique_by=lambda s: s.get("id")),
)
def test_peer_4_create_then_resolve(
    authentication: list[PublicKey], key_agreement: list[PublicKey], svcs: list[dict[str, Any]]
) -> None:
    methods = [
        {"id": f"#k{i}", "type": "Multikey", "publicKeyMultibase": key.to_multikey()}
        for i, key in enumerate(authentication + key_agreement)
    ]
    named = [{**svc, "id": svc.get("id", f"#s{i}")} for i, svc in enumerate(svcs)]
    document = {
        "verificationMethod": methods,
        "authentication": [m["id"] for m in methods[: len(authentication)]],
        "keyAgreement": [m["id"] for m in methods[len(authentication) :]],
        "service": named,
    }
    long_did = create_did_peer_4(document)
    short_did = peer_4_short_form(long_did)
    for did, doc in (
        (long_did, resolve_did_peer(long_did)),
        (short_did, resolve_did_peer_4_short(short_did, long_did)),
    ):
        assert doc.id == did
        assert [doc.resolve_vm(k).public_key for k in doc.authentication] == authentication
        assert [doc.resolve_vm(k).public_key for k in doc.key_agreement] == key_agreement
        assert [s.service_endpoint for s in doc.services] == [s["serviceEndpoint"] for s in svcs]

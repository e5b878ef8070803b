"""The DID document model: appendix B documents, key formats, services, limits, fuzzing."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.did.document import (
    MAX_DOCUMENT_BYTES,
    MAX_ROUTING_KEYS,
    MAX_SERVICES,
    MAX_VERIFICATION_METHODS,
    DIDDocument,
    Service,
    ServiceEndpoint,
    VerificationMethod,
)
from protocols.errors import (
    DIDCommError,
    DIDURLNotFoundError,
    InvalidDIDError,
    UnsupportedError,
)
from protocols.keys import PrivateKey, PublicKey
from protocols.multibase import b58encode, varint_encode

# DIDComm v2.1 appendix B.1 (sender) and B.2 (recipient), verbatim.
ALICE_DOC_JSON = """{
  "@context": [
    "https://www.w3.org/ns/did/v1",
    "https://w3id.org/security/suites/jws-2020/v1"
  ],
  "id": "did:example:alice",
  "authentication": [
    {
      "id": "did:example:alice#key-1",
      "type": "JsonWebKey2020",
      "controller": "did:example:alice",
      "publicKeyJwk": {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "G-boxFB6vOZBu-wXkm-9Lh79I8nf9Z50cILaOgKKGww"
      }
    },
    {
      "id": "did:example:alice#key-2",
      "type": "JsonWebKey2020",
      "controller": "did:example:alice",
      "publicKeyJwk": {
        "kty": "EC",
        "crv": "P-256",
        "x": "2syLh57B-dGpa0F8p1JrO6JU7UUSF6j7qL-vfk1eOoY",
        "y": "BgsGtI7UPsObMRjdElxLOrgAO9JggNMjOcfzEPox18w"
      }
    },
    {
      "id": "did:example:alice#key-3",
      "type": "JsonWebKey2020",
      "controller": "did:example:alice",
      "publicKeyJwk": {
        "kty": "EC",
        "crv": "secp256k1",
        "x": "aToW5EaTq5mlAf8C5ECYDSkqsJycrW-e1SQ6_GJcAOk",
        "y": "JAGX94caA21WKreXwYUaOCYTBMrqaX4KWIlsQZTHWCk"
      }
    }
  ],
  "keyAgreement": [
    {
      "id": "did:example:alice#key-x25519-1",
      "type": "JsonWebKey2020",
      "controller": "did:example:alice",
      "publicKeyJwk": {
        "kty": "OKP",
        "crv": "X25519",
        "x": "avH0O2Y4tqLAq8y9zpianr8ajii5m4F_mICrzNlatXs"
      }
    },
    {
      "id": "did:example:alice#key-p256-1",
      "type": "JsonWebKey2020",
      "controller": "did:example:alice",
      "publicKeyJwk": {
        "kty": "EC",
        "crv": "P-256",
        "x": "L0crjMN1g0Ih4sYAJ_nGoHUck2cloltUpUVQDhF2nHE",
        "y": "SxYgE7CmEJYi7IDhgK5jI4ZiajO8jPRZDldVhqFpYoo"
      }
    },
    {
      "id": "did:example:alice#key-p521-1",
      "type": "JsonWebKey2020",
      "controller": "did:example:alice",
      "publicKeyJwk": {
        "kty": "EC",
        "crv": "P-521",
        "x": "AHBEVPRhAv-WHDEvxVM9S0px9WxxwHL641Pemgk9sDdxvli9VpKCBdra5gg_4kupBDhz__AlaBgKOC_15J2Byptz",
        "y": "AciGcHJCD_yMikQvlmqpkBbVqqbg93mMVcgvXBYAQPP-u9AF7adybwZrNfHWCKAQwGF9ugd0Zhg7mLMEszIONFRk"
      }
    }
  ]
}"""

BOB_DOC_JSON = """{
  "@context": [
    "https://www.w3.org/ns/did/v2"
  ],
  "id": "did:example:bob",
  "keyAgreement": [
    {
      "id": "did:example:bob#key-x25519-1",
      "type": "JsonWebKey2020",
      "controller": "did:example:bob",
      "publicKeyJwk": {
        "kty": "OKP",
        "crv": "X25519",
        "x": "GDTrI66K0pFfO54tlCSvfjjNapIs44dzpneBgyx0S3E"
      }
    },
    {
      "id": "did:example:bob#key-x25519-2",
      "type": "JsonWebKey2020",
      "controller": "did:example:bob",
      "publicKeyJwk": {
        "kty": "OKP",
        "crv": "X25519",
        "x": "UT9S3F5ep16KSNBBShU2wh3qSfqYjlasZimn0mB8_VM"
      }
    },
    {
      "id": "did:example:bob#key-x25519-3",
      "type": "JsonWebKey2020",
      "controller": "did:example:bob",
      "publicKeyJwk": {
        "kty": "OKP",
        "crv": "X25519",
        "x": "82k2BTUiywKv49fKLZa-WwDi8RBf0tB0M8bvSAUQ3yY"
      }
    },
    {
      "id": "did:example:bob#key-p256-1",
      "type": "JsonWebKey2020",
      "controller": "did:example:bob",
      "publicKeyJwk": {
        "kty": "EC",
        "crv": "P-256",
        "x": "FQVaTOksf-XsCUrt4J1L2UGvtWaDwpboVlqbKBY2AIo",
        "y": "6XFB9PYo7dyC5ViJSO9uXNYkxTJWn0d_mqJ__ZYhcNY"
      }
    },
    {
      "id": "did:example:bob#key-p256-2",
      "type": "JsonWebKey2020",
      "controller": "did:example:bob",
      "publicKeyJwk": {
        "kty": "EC",
        "crv": "P-256",
        "x": "n0yBsGrwGZup9ywKhzD4KoORGicilzIUyfcXb1CSwe0",
        "y": "ov0buZJ8GHzV128jmCw1CaFbajZoFFmiJDbMrceCXIw"
      }
    },
    {
      "id": "did:example:bob#key-p384-1",
      "type": "JsonWebKey2020",
      "controller": "did:example:bob",
      "publicKeyJwk": {
        "kty": "EC",
        "crv": "P-384",
        "x": "MvnE_OwKoTcJVfHyTX-DLSRhhNwlu5LNoQ5UWD9Jmgtdxp_kpjsMuTTBnxg5RF_Y",
        "y": "X_3HJBcKFQEG35PZbEOBn8u9_z8V1F9V1Kv-Vh0aSzmH-y9aOuDJUE3D4Hvmi5l7"
      }
    },
    {
      "id": "did:example:bob#key-p384-2",
      "type": "JsonWebKey2020",
      "controller": "did:example:bob",
      "publicKeyJwk": {
        "kty": "EC",
        "crv": "P-384",
        "x": "2x3HOTvR8e-Tu6U4UqMd1wUWsNXMD0RgIunZTMcZsS-zWOwDgsrhYVHmv3k_DjV3",
        "y": "W9LLaBjlWYcXUxOf6ECSfcXKaC3-K9z4hCoP0PS87Q_4ExMgIwxVCXUEB6nf0GDd"
      }
    },
    {
      "id": "did:example:bob#key-p521-1",
      "type": "JsonWebKey2020",
      "controller": "did:example:bob",
      "publicKeyJwk": {
        "kty": "EC",
        "crv": "P-521",
        "x": "Af9O5THFENlqQbh2Ehipt1Yf4gAd9RCa3QzPktfcgUIFADMc4kAaYVViTaDOuvVS2vMS1KZe0D5kXedSXPQ3QbHi",
        "y": "ATZVigRQ7UdGsQ9j-omyff6JIeeUv3CBWYsZ0l6x3C_SYqhqVV7dEG-TafCCNiIxs8qeUiXQ8cHWVclqkH4Lo1qH"
      }
    },
    {
      "id": "did:example:bob#key-p521-2",
      "type": "JsonWebKey2020",
      "controller": "did:example:bob",
      "publicKeyJwk": {
        "kty": "EC",
        "crv": "P-521",
        "x": "ATp_WxCfIK_SriBoStmA0QrJc2pUR1djpen0VdpmogtnKxJbitiPq-HJXYXDKriXfVnkrl2i952MsIOMfD2j0Ots",
        "y": "AEJipR0Dc-aBZYDqN51SKHYSWs9hM58SmRY1MxgXANgZrPaq1EeGMGOjkbLMEJtBThdjXhkS5VlXMkF0cYhZELiH"
      }
    }
  ]
}"""

# Appendix A.1/A.2 private keys (the A.2 'kid ' typo fixed), public test data.
APPENDIX_SECRETS = [
    {
        "kid": "did:example:alice#key-1",
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "G-boxFB6vOZBu-wXkm-9Lh79I8nf9Z50cILaOgKKGww",
        "d": "pFRUKkyzx4kHdJtFSnlPA9WzqkDT1HWV0xZ5OYZd2SY",
    },
    {
        "kid": "did:example:alice#key-2",
        "kty": "EC",
        "crv": "P-256",
        "x": "2syLh57B-dGpa0F8p1JrO6JU7UUSF6j7qL-vfk1eOoY",
        "y": "BgsGtI7UPsObMRjdElxLOrgAO9JggNMjOcfzEPox18w",
        "d": "7TCIdt1rhThFtWcEiLnk_COEjh1ZfQhM4bW2wz-dp4A",
    },
    {
        "kid": "did:example:alice#key-3",
        "kty": "EC",
        "crv": "secp256k1",
        "x": "aToW5EaTq5mlAf8C5ECYDSkqsJycrW-e1SQ6_GJcAOk",
        "y": "JAGX94caA21WKreXwYUaOCYTBMrqaX4KWIlsQZTHWCk",
        "d": "N3Hm1LXA210YVGGsXw_GklMwcLu_bMgnzDese6YQIyA",
    },
    {
        "kid": "did:example:alice#key-x25519-1",
        "kty": "OKP",
        "crv": "X25519",
        "x": "avH0O2Y4tqLAq8y9zpianr8ajii5m4F_mICrzNlatXs",
        "d": "r-jK2cO3taR8LQnJB1_ikLBTAnOtShJOsHXRUWT-aZA",
    },
    {
        "kid": "did:example:alice#key-p256-1",
        "kty": "EC",
        "crv": "P-256",
        "x": "L0crjMN1g0Ih4sYAJ_nGoHUck2cloltUpUVQDhF2nHE",
        "y": "SxYgE7CmEJYi7IDhgK5jI4ZiajO8jPRZDldVhqFpYoo",
        "d": "sB0bYtpaXyp-h17dDpMx91N3Du1AdN4z1FUq02GbmLw",
    },
    {
        "kid": "did:example:alice#key-p521-1",
        "kty": "EC",
        "crv": "P-521",
        "x": "AHBEVPRhAv-WHDEvxVM9S0px9WxxwHL641Pemgk9sDdxvli9VpKCBdra5gg_4kupBDhz__AlaBgKOC_15J2Byptz",
        "y": "AciGcHJCD_yMikQvlmqpkBbVqqbg93mMVcgvXBYAQPP-u9AF7adybwZrNfHWCKAQwGF9ugd0Zhg7mLMEszIONFRk",
        "d": "AQCQKE7rZpxPnX9RgjXxeywrAMp1fJsyFe4cir1gWj-8t8xWaM_E2qBkTTzyjbRBu-JPXHe_auT850iYmE34SkWi",
    },
    {
        "kid": "did:example:bob#key-x25519-1",
        "kty": "OKP",
        "crv": "X25519",
        "x": "GDTrI66K0pFfO54tlCSvfjjNapIs44dzpneBgyx0S3E",
        "d": "b9NnuOCB0hm7YGNvaE9DMhwH_wjZA1-gWD6dA0JWdL0",
    },
    {
        "kid": "did:example:bob#key-x25519-2",
        "kty": "OKP",
        "crv": "X25519",
        "x": "UT9S3F5ep16KSNBBShU2wh3qSfqYjlasZimn0mB8_VM",
        "d": "p-vteoF1gopny1HXywt76xz_uC83UUmrgszsI-ThBKk",
    },
    {
        "kid": "did:example:bob#key-x25519-3",
        "kty": "OKP",
        "crv": "X25519",
        "x": "82k2BTUiywKv49fKLZa-WwDi8RBf0tB0M8bvSAUQ3yY",
        "d": "f9WJeuQXEItkGM8shN4dqFr5fLQLBasHnWZ-8dPaSo0",
    },
    {
        "kid": "did:example:bob#key-p256-1",
        "kty": "EC",
        "crv": "P-256",
        "x": "FQVaTOksf-XsCUrt4J1L2UGvtWaDwpboVlqbKBY2AIo",
        "y": "6XFB9PYo7dyC5ViJSO9uXNYkxTJWn0d_mqJ__ZYhcNY",
        "d": "PgwHnlXxt8pwR6OCTUwwWx-P51BiLkFZyqHzquKddXQ",
    },
    {
        "kid": "did:example:bob#key-p256-2",
        "kty": "EC",
        "crv": "P-256",
        "x": "n0yBsGrwGZup9ywKhzD4KoORGicilzIUyfcXb1CSwe0",
        "y": "ov0buZJ8GHzV128jmCw1CaFbajZoFFmiJDbMrceCXIw",
        "d": "agKz7HS8mIwqO40Q2dwm_Zi70IdYFtonN5sZecQoxYU",
    },
    {
        "kid": "did:example:bob#key-p384-1",
        "kty": "EC",
        "crv": "P-384",
        "x": "MvnE_OwKoTcJVfHyTX-DLSRhhNwlu5LNoQ5UWD9Jmgtdxp_kpjsMuTTBnxg5RF_Y",
        "y": "X_3HJBcKFQEG35PZbEOBn8u9_z8V1F9V1Kv-Vh0aSzmH-y9aOuDJUE3D4Hvmi5l7",
        "d": "ajqcWbYA0UDBKfAhkSkeiVjMMt8l-5rcknvEv9t_Os6M8s-HisdywvNCX4CGd_xY",
    },
    {
        "kid": "did:example:bob#key-p384-2",
        "kty": "EC",
        "crv": "P-384",
        "x": "2x3HOTvR8e-Tu6U4UqMd1wUWsNXMD0RgIunZTMcZsS-zWOwDgsrhYVHmv3k_DjV3",
        "y": "W9LLaBjlWYcXUxOf6ECSfcXKaC3-K9z4hCoP0PS87Q_4ExMgIwxVCXUEB6nf0GDd",
        "d": "OiwhRotK188BtbQy0XBO8PljSKYI6CCD-nE_ZUzK7o81tk3imDOuQ-jrSWaIkI-T",
    },
    {
        "kid": "did:example:bob#key-p521-1",
        "kty": "EC",
        "crv": "P-521",
        "x": "Af9O5THFENlqQbh2Ehipt1Yf4gAd9RCa3QzPktfcgUIFADMc4kAaYVViTaDOuvVS2vMS1KZe0D5kXedSXPQ3QbHi",
        "y": "ATZVigRQ7UdGsQ9j-omyff6JIeeUv3CBWYsZ0l6x3C_SYqhqVV7dEG-TafCCNiIxs8qeUiXQ8cHWVclqkH4Lo1qH",
        "d": "AV5ocjvy7PkPgNrSuvCxtG70NMj6iTabvvjSLbsdd8OdI9HlXYlFR7RdBbgLUTruvaIRhjEAE9gNTH6rWUIdfuj6",
    },
    {
        "kid": "did:example:bob#key-p521-2",
        "kty": "EC",
        "crv": "P-521",
        "x": "ATp_WxCfIK_SriBoStmA0QrJc2pUR1djpen0VdpmogtnKxJbitiPq-HJXYXDKriXfVnkrl2i952MsIOMfD2j0Ots",
        "y": "AEJipR0Dc-aBZYDqN51SKHYSWs9hM58SmRY1MxgXANgZrPaq1EeGMGOjkbLMEJtBThdjXhkS5VlXMkF0cYhZELiH",
        "d": "ABixMEZHsyT7SRw-lY5HxdNOofTZLlwBHwPEJ3spEMC2sWN1RZQylZuvoyOBGJnPxg4-H_iVhNWf_OtgYODrYhCk",
    },
]

ALICE_DOC: dict[str, Any] = json.loads(ALICE_DOC_JSON)
BOB_DOC: dict[str, Any] = json.loads(BOB_DOC_JSON)
ED_KEY = "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
X_KEY = "z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW"


def doc_with(**members: Any) -> dict[str, Any]:
    """A minimal document for did:example:carol plus the given members."""
    return {"id": "did:example:carol", **members}


def vm(fragment: str, type_: str, **material: Any) -> dict[str, Any]:
    return {"id": f"#{fragment}", "type": type_, "controller": "did:example:carol", **material}


# -- appendix B -------------------------------------------------------------------


@pytest.mark.parametrize("secret", APPENDIX_SECRETS, ids=lambda s: s["kid"])
def test_appendix_documents_give_the_right_key_for_every_kid(secret: dict[str, str]) -> None:
    docs = {d["id"]: DIDDocument.from_json(d) for d in (ALICE_DOC, BOB_DOC)}
    did = secret["kid"].split("#")[0]
    method = docs[did].resolve_vm(secret["kid"])
    assert method.id == secret["kid"]
    assert method.type == "JsonWebKey2020"
    assert method.controller == did
    assert method.public_key == PrivateKey.from_jwk(secret).public


def test_appendix_alice_relationships() -> None:
    doc = DIDDocument.from_json(ALICE_DOC)
    assert doc.id == "did:example:alice"
    assert doc.authentication == [f"did:example:alice#key-{i}" for i in (1, 2, 3)]
    assert doc.key_agreement == [
        "did:example:alice#key-x25519-1",
        "did:example:alice#key-p256-1",
        "did:example:alice#key-p521-1",
    ]
    assert [m.public_key.curve for m in doc.authentication_methods()] == [
        "Ed25519",
        "P-256",
        "secp256k1",
    ]
    assert [m.public_key.curve for m in doc.key_agreement_methods()] == ["X25519", "P-256", "P-521"]
    assert doc.services == [] and doc.didcomm_services() == []


def test_appendix_bob_has_only_key_agreement() -> None:
    doc = DIDDocument.from_json(BOB_DOC)
    assert doc.authentication == [] and doc.authentication_methods() == []
    assert len(doc.key_agreement_methods()) == 9
    # Relative and absolute kids name the same method.
    assert doc.resolve_vm("#key-p384-2") is doc.resolve_vm("did:example:bob#key-p384-2")


def test_embedded_and_referenced_forms_are_the_same_document() -> None:
    embedded = DIDDocument.from_json(ALICE_DOC)
    referenced_json = copy.deepcopy(ALICE_DOC)
    methods = referenced_json["authentication"] + referenced_json["keyAgreement"]
    referenced_json["verificationMethod"] = methods
    referenced_json["authentication"] = [
        m["id"].replace("did:example:alice", "") for m in methods[:3]
    ]
    referenced_json["keyAgreement"] = [m["id"] for m in methods[3:]]
    referenced = DIDDocument.from_json(referenced_json)
    assert referenced.verification_methods == embedded.verification_methods
    assert referenced.authentication == embedded.authentication
    assert referenced.key_agreement == embedded.key_agreement


def test_to_json_round_trips() -> None:
    for source in (ALICE_DOC, BOB_DOC):
        doc = DIDDocument.from_json(source)
        out = doc.to_json()
        json.dumps(out)  # plain JSON
        again = DIDDocument.from_json(out)
        assert again.verification_methods == doc.verification_methods
        assert again.authentication == doc.authentication
        assert again.key_agreement == doc.key_agreement
        assert out["@context"] == source["@context"]


def test_unknown_kid() -> None:
    doc = DIDDocument.from_json(ALICE_DOC)
    with pytest.raises(DIDURLNotFoundError):
        doc.resolve_vm("did:example:alice#nope")
    with pytest.raises(DIDURLNotFoundError):
        doc.resolve_vm("did:example:bob#key-x25519-1")


# -- key formats ---------------------------------------------------------------------

ED = PublicKey.from_multikey(ED_KEY)
X = PublicKey.from_multikey(X_KEY)
P256 = PublicKey.from_jwk(APPENDIX_SECRETS[1])
K256 = PublicKey.from_jwk(APPENDIX_SECRETS[2])


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        (vm("a", "Multikey", publicKeyMultibase=ED_KEY), ED),
        (vm("a", "Multikey", publicKeyMultibase=P256.to_multikey()), P256),
        (vm("a", "JsonWebKey2020", publicKeyJwk=X.to_jwk()), X),
        (vm("a", "JsonWebKey", publicKeyJwk=P256.to_jwk()), P256),
        (vm("a", "Ed25519VerificationKey2018", publicKeyBase58=b58encode(ED.x)), ED),
        (vm("a", "Ed25519VerificationKey2020", publicKeyMultibase=ED_KEY), ED),
        # Tolerated: bare key bytes in multibase (seen in 2021-era peer DID documents).
        (vm("a", "Ed25519VerificationKey2020", publicKeyMultibase="z" + b58encode(ED.x)), ED),
        (vm("a", "X25519KeyAgreementKey2019", publicKeyBase58=b58encode(X.x)), X),
        (vm("a", "X25519KeyAgreementKey2020", publicKeyMultibase=X_KEY), X),
        (vm("a", "EcdsaSecp256k1VerificationKey2019", publicKeyJwk=K256.to_jwk()), K256),
        (
            vm("a", "EcdsaSecp256k1VerificationKey2019", publicKeyBase58=b58encode(K256.to_raw())),
            K256,
        ),
    ],
    ids=lambda v: v["type"] if isinstance(v, dict) else v.curve,
)
def test_key_formats(method: dict[str, Any], expected: PublicKey) -> None:
    doc = DIDDocument.from_json(doc_with(verificationMethod=[method], authentication=["#a"]))
    assert doc.resolve_vm("#a").public_key == expected


@pytest.mark.parametrize(
    "method",
    [
        # Curve does not match the suite.
        vm("a", "Ed25519VerificationKey2020", publicKeyMultibase=X_KEY),
        vm("a", "X25519KeyAgreementKey2019", publicKeyJwk=ED.to_jwk()),
        vm("a", "EcdsaSecp256k1VerificationKey2019", publicKeyJwk=P256.to_jwk()),
        # Missing or malformed material.
        vm("a", "JsonWebKey2020"),
        vm("a", "JsonWebKey2020", publicKeyMultibase=ED_KEY),
        vm("a", "Multikey", publicKeyBase58=b58encode(ED.x)),
        vm("a", "Multikey", publicKeyMultibase="z"),
        vm("a", "Multikey", publicKeyMultibase="m" + ED_KEY[1:]),
        vm("a", "Multikey", publicKeyMultibase="z" + b58encode(varint_encode(0xED) + ED.x[:-1])),
        vm("a", "Multikey", publicKeyMultibase=42),
        vm("a", "JsonWebKey2020", publicKeyJwk={"kty": "OKP", "crv": "Ed25519"}),
        vm("a", "JsonWebKey2020", publicKeyJwk={"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
        vm("a", "JsonWebKey2020", publicKeyJwk="not an object"),
        vm("a", "Ed25519VerificationKey2018", publicKeyBase58="0OIl"),
        # A private key in a public document.
        vm("a", "JsonWebKey2020", publicKeyJwk={**ED.to_jwk(), "d": "AAAA"}),
        # Shape.
        {"type": "Multikey", "publicKeyMultibase": ED_KEY},
        {"id": "#a", "publicKeyMultibase": ED_KEY},
        {**vm("a", "Multikey", publicKeyMultibase=ED_KEY), "controller": 7},
        "#a",
    ],
)
def test_malformed_methods_are_invalid_documents(method: Any) -> None:
    with pytest.raises(InvalidDIDError):
        DIDDocument.from_json(doc_with(verificationMethod=[method]))


@pytest.mark.parametrize(
    "method",
    [
        vm("a", "Bls12381G2Key2020", publicKeyBase58="xyz"),
        vm("a", "RsaVerificationKey2018", publicKeyPem="-----BEGIN"),
        vm("a", "JsonWebKey2020", publicKeyJwk={"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        vm("a", "JsonWebKey2020", publicKeyJwk={"kty": "OKP", "crv": "Ed448", "x": "AAAA"}),
        # Multikey with the BLS12-381 G2 multicodec (0xeb).
        vm("a", "Multikey", publicKeyMultibase="z" + b58encode(varint_encode(0xEB) + b"\1" * 96)),
    ],
    ids=lambda v: v["type"],
)
def test_unsupported_methods_are_kept_but_unusable(method: dict[str, Any]) -> None:
    good = vm("b", "Multikey", publicKeyMultibase=X_KEY)
    doc = DIDDocument.from_json(
        doc_with(
            verificationMethod=[method, good], keyAgreement=["#a", "#b"], authentication=["#a"]
        )
    )
    kept = doc.verification_methods["did:example:carol#a"]
    assert not kept.usable
    assert kept.type == method["type"]
    with pytest.raises(UnsupportedError):
        kept.public_key  # noqa: B018
    with pytest.raises(UnsupportedError):
        doc.resolve_vm("#a")
    assert [m.id for m in doc.key_agreement_methods()] == ["did:example:carol#b"]
    assert doc.authentication_methods() == []
    assert doc.to_json()["verificationMethod"][0]["type"] == method["type"]


def test_methods_on_the_wrong_curve_for_a_relationship_are_skipped() -> None:
    doc = DIDDocument.from_json(
        doc_with(
            verificationMethod=[
                vm("ed", "Multikey", publicKeyMultibase=ED_KEY),
                vm("x", "Multikey", publicKeyMultibase=X_KEY),
            ],
            authentication=["#x", "#ed"],
            keyAgreement=["#ed", "#x"],
        )
    )
    assert [m.id for m in doc.authentication_methods()] == ["did:example:carol#ed"]
    assert [m.id for m in doc.key_agreement_methods()] == ["did:example:carol#x"]
    # resolve_vm does not judge roles: the envelope checks the relationship lists.
    assert doc.resolve_vm("#x").public_key == X


def test_legacy_public_key_member_and_relative_controller() -> None:
    doc = DIDDocument.from_json(
        doc_with(
            publicKey=[{**vm("a", "Multikey", publicKeyMultibase=ED_KEY), "controller": "#id"}],
            authentication=["#a"],
        )
    )
    assert doc.resolve_vm("#a").controller == "did:example:carol"


def test_embedded_method_referenced_from_another_relationship() -> None:
    doc = DIDDocument.from_json(
        doc_with(
            authentication=["#a"],
            assertionMethod=[vm("a", "Multikey", publicKeyMultibase=ED_KEY)],
        )
    )
    assert doc.authentication == doc.assertion_method == ["did:example:carol#a"]


@pytest.mark.parametrize(
    "members",
    [
        # A method id of another DID: a document cannot speak for other DIDs' keys.
        {
            "verificationMethod": [
                {**vm("a", "Multikey", publicKeyMultibase=ED_KEY), "id": "did:example:mallory#a"}
            ]
        },
        {
            "verificationMethod": [
                {**vm("a", "Multikey", publicKeyMultibase=ED_KEY), "id": "did:example:carol"}
            ]
        },
        # The same id with different keys.
        {
            "verificationMethod": [
                vm("a", "Multikey", publicKeyMultibase=ED_KEY),
                vm("a", "Multikey", publicKeyMultibase=X_KEY),
            ]
        },
        # A reference to a method this document does not declare.
        {"authentication": ["#missing"]},
        {"authentication": [7]},
        {"authentication": "#a"},
        {"keyAgreement": ["not a did url"]},
        {"verificationMethod": {"id": "#a"}},
        {"alsoKnownAs": "did:example:x"},
        {"id": "did:example:carol#frag"},
        {"id": None},
    ],
)
def test_malformed_documents(members: dict[str, Any]) -> None:
    with pytest.raises(InvalidDIDError):
        DIDDocument.from_json(doc_with(**members))


def test_references_to_other_dids_are_kept_but_not_resolvable_here() -> None:
    doc = DIDDocument.from_json(doc_with(authentication=["did:example:dave#k"]))
    assert doc.authentication == ["did:example:dave#k"]
    assert doc.authentication_methods() == []
    with pytest.raises(DIDURLNotFoundError):
        doc.resolve_vm("did:example:dave#k")


def test_identical_duplicate_methods_are_merged() -> None:
    method = vm("a", "Multikey", publicKeyMultibase=ED_KEY)
    doc = DIDDocument.from_json(doc_with(verificationMethod=[method], authentication=[method]))
    assert list(doc.verification_methods) == ["did:example:carol#a"]


def test_verification_method_built_in_code() -> None:
    method = VerificationMethod("did:example:carol#a", "Multikey", "did:example:carol", ED)
    assert method.usable and method.public_key == ED
    assert method.to_json()["publicKeyMultibase"] == ED_KEY
    doc = DIDDocument(
        id="did:example:carol",
        verification_methods={method.id: method},
        authentication=[method.id],
    )
    assert DIDDocument.from_json(doc.to_json()).resolve_vm("#a") == method


# -- services -------------------------------------------------------------------------

LIBP2P_SERVICE = {
    "id": "#didcomm-libp2p",
    "type": "DIDCommMessaging",
    "serviceEndpoint": {
        "uri": "libp2p-peerId:12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo",
        "accept": ["didcomm/v2"],
        "routingKeys": [],
        "multiAddrs": [
            "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
        ],
        "x-vendor": {"keep": "me"},
    },
}


def test_service_endpoint_forms() -> None:
    doc = DIDDocument.from_json(
        doc_with(
            service=[
                {
                    # DIDComm v2.0 form: a string, accept/routingKeys on the service.
                    "id": "#legacy",
                    "type": "DIDCommMessaging",
                    "serviceEndpoint": "https://example.com/endpoint",
                    "routingKeys": ["did:example:somemediator#somekey"],
                    "accept": ["didcomm/v2", "didcomm/aip2;env=rfc587"],
                },
                {
                    "id": "did:example:carol#object",
                    "type": "DIDCommMessaging",
                    "serviceEndpoint": {
                        "uri": "https://example.com/path",
                        "accept": ["didcomm/v2"],
                        "routingKeys": ["did:example:somemediator#somekey"],
                    },
                },
                {
                    "id": "#list",
                    "type": "DIDCommMessaging",
                    "serviceEndpoint": [{"uri": "ws://a"}, {"uri": "https://b", "accept": []}],
                },
                LIBP2P_SERVICE,
                {"id": "#web", "type": "LinkedDomains", "serviceEndpoint": {"origins": ["x"]}},
            ]
        )
    )
    legacy, obj, many, libp2p, web = doc.services
    assert legacy.id == "did:example:carol#legacy"
    assert legacy.endpoints == (
        ServiceEndpoint(
            "https://example.com/endpoint",
            ("didcomm/v2", "didcomm/aip2;env=rfc587"),
            ("did:example:somemediator#somekey",),
        ),
    )
    assert obj.endpoints[0].uri == "https://example.com/path"
    assert obj.endpoints[0].routing_keys == ("did:example:somemediator#somekey",)
    assert [e.uri for e in many.endpoints] == ["ws://a", "https://b"]
    assert many.endpoints[0].libp2p_peer_id is None
    endpoint = libp2p.endpoints[0]
    assert endpoint.libp2p_peer_id == "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
    assert endpoint.multiaddrs == tuple(LIBP2P_SERVICE["serviceEndpoint"]["multiAddrs"])  # type: ignore[index]
    assert endpoint.raw["x-vendor"] == {"keep": "me"}
    assert web.type == "LinkedDomains" and web.endpoints == ()
    assert doc.didcomm_services() == [legacy, obj, many, libp2p]
    assert doc.service("#web") is web
    with pytest.raises(DIDURLNotFoundError):
        doc.service("#nope")
    # Unknown members survive to_json.
    again = DIDDocument.from_json(doc.to_json())
    assert again.services[3].endpoints[0].raw == LIBP2P_SERVICE["serviceEndpoint"]
    assert again.services == doc.services


def test_service_type_may_be_a_set() -> None:
    doc = DIDDocument.from_json(
        doc_with(service=[{**LIBP2P_SERVICE, "type": ["Other", "DIDCommMessaging"]}])
    )
    assert doc.services[0].is_didcomm


def test_service_built_in_code() -> None:
    svc = Service("did:example:carol#s", "DIDCommMessaging", {"uri": "https://x"}, {})
    assert svc.endpoints == (ServiceEndpoint("https://x"),)


@pytest.mark.parametrize(
    "service",
    [
        {"type": "DIDCommMessaging", "serviceEndpoint": "https://x"},  # no id
        {"id": "#s", "serviceEndpoint": "https://x"},  # no type
        {"id": "#s", "type": "DIDCommMessaging"},  # no endpoint
        {"id": "#s", "type": "DIDCommMessaging", "serviceEndpoint": {"accept": []}},  # no uri
        {"id": "#s", "type": "DIDCommMessaging", "serviceEndpoint": {"uri": ""}},
        {"id": "#s", "type": "DIDCommMessaging", "serviceEndpoint": 42},
        {"id": "#s", "type": "DIDCommMessaging", "serviceEndpoint": [42]},
        {
            "id": "#s",
            "type": "DIDCommMessaging",
            "serviceEndpoint": {"uri": "x", "accept": "didcomm/v2"},
        },
        {
            "id": "#s",
            "type": "DIDCommMessaging",
            "serviceEndpoint": {"uri": "x", "routingKeys": [1]},
        },
        {
            "id": "#s",
            "type": "DIDCommMessaging",
            "serviceEndpoint": {"uri": "x", "routingKeys": ["nope"]},
        },
        {
            "id": "#s",
            "type": "DIDCommMessaging",
            "serviceEndpoint": {"uri": "x", "multiAddrs": "/ip4"},
        },
        {
            "id": "#s",
            "type": "DIDCommMessaging",
            "serviceEndpoint": {
                "uri": "x",
                "routingKeys": ["did:example:m#k"] * (MAX_ROUTING_KEYS + 1),
            },
        },
        "not an object",
    ],
)
def test_malformed_services(service: Any) -> None:
    with pytest.raises(InvalidDIDError):
        DIDDocument.from_json(doc_with(service=[service]))


def test_duplicate_service_ids() -> None:
    with pytest.raises(InvalidDIDError, match="twice"):
        DIDDocument.from_json(doc_with(service=[LIBP2P_SERVICE, LIBP2P_SERVICE]))


# -- limits ---------------------------------------------------------------------------


def test_limits() -> None:
    methods = [
        vm(f"k{i}", "Multikey", publicKeyMultibase=ED_KEY) for i in range(MAX_VERIFICATION_METHODS)
    ]
    DIDDocument.from_json(doc_with(verificationMethod=methods))
    extra = vm("one-more", "Multikey", publicKeyMultibase=ED_KEY)
    with pytest.raises(InvalidDIDError, match="more than"):
        DIDDocument.from_json(doc_with(verificationMethod=methods, authentication=[extra]))
    services = [{**LIBP2P_SERVICE, "id": f"#s{i}"} for i in range(MAX_SERVICES + 1)]
    with pytest.raises(InvalidDIDError, match="more than"):
        DIDDocument.from_json(doc_with(service=services))
    with pytest.raises(InvalidDIDError, match="larger"):
        DIDDocument.from_json(doc_with(padding="x" * MAX_DOCUMENT_BYTES))
    with pytest.raises(InvalidDIDError, match="larger"):
        DIDDocument.from_json_text(b" " * (MAX_DOCUMENT_BYTES + 1))


def test_deeply_nested_or_non_json_input() -> None:
    nested: Any = []
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(InvalidDIDError):
        DIDDocument.from_json(doc_with(deep=nested))
    with pytest.raises(InvalidDIDError):
        DIDDocument.from_json(doc_with(blob=b"bytes"))
    with pytest.raises(InvalidDIDError):
        DIDDocument.from_json(["not", "a", "document"])
    with pytest.raises(InvalidDIDError):
        DIDDocument.from_json_text("[" * 50_000)
    with pytest.raises(InvalidDIDError):
        DIDDocument.from_json_text("{not json")


# -- fuzzing ------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from([*BOB_DOC, "service", "verificationMethod", "publicKey"]), json_values
    )
)
def test_random_documents_raise_only_typed_errors(doc: dict[str, Any]) -> None:
    with contextlib.suppress(DIDCommError):
        DIDDocument.from_json(doc)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


ALICE_PATHS = _paths(ALICE_DOC)[1:]
SERVICE_DOC = doc_with(
    verificationMethod=[vm("a", "Multikey", publicKeyMultibase=ED_KEY)],
    authentication=["#a"],
    service=[LIBP2P_SERVICE],
)
SERVICE_PATHS = _paths(SERVICE_DOC)[1:]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), json_values, st.booleans())
def test_mutated_documents_raise_only_typed_errors(
    data: st.DataObject, new: Any, delete: bool
) -> None:
    source, paths = data.draw(
        st.sampled_from([(ALICE_DOC, ALICE_PATHS), (SERVICE_DOC, SERVICE_PATHS)])
    )
    doc = copy.deepcopy(source)
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    try:
        parsed = DIDDocument.from_json(doc)
    except DIDCommError:
        return
    for kid in parsed.authentication + parsed.key_agreement:
        with contextlib.suppress(DIDCommError):
            parsed.resolve_vm(kid)
    parsed.key_agreement_methods()
    parsed.authentication_methods()
    parsed.didcomm_services()


@given(st.integers(min_value=0, max_value=len(ALICE_DOC_JSON) - 1), st.text(max_size=3))
def test_truncated_or_spliced_json_raises_only_typed_errors(cut: int, splice: str) -> None:
    for text in (ALICE_DOC_JSON[:cut], ALICE_DOC_JSON[:cut] + splice + ALICE_DOC_JSON[cut + 1 :]):
        with contextlib.suppress(DIDCommError):
            DIDDocument.from_json_text(text)

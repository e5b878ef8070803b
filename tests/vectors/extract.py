"""Regenerate the test-vector JSON files from the DIDComm v2.1 spec appendix.

Run it by hand when the appendix changes (the tests only read the JSON)::

    .venv/bin/python tests/vectors/extract.py [path/to/appendix.md]

Theory of operation
-------------------
``appendix.md`` holds its material as fenced ```json blocks under headings
A.1 (sender secrets), A.2 (recipient secrets), B.1/B.2 (DID documents),
C.1 (the plaintext message), C.2 (signed) and C.3 (encrypted). This script
reads the blocks in order, applies the known slips of the appendix
(``/work/shared/notes/didcomm-spec-errata.md``), and writes:

- ``alice_secrets.json``, ``bob_secrets.json``: private JWK arrays;
- ``did_docs.json``: both DID documents;
- ``plaintext.json``, ``signed.json``, ``encrypted.json``: one object per
  vector, ``{"name", "section", "description", "packed", "expected_message",
  "expected_metadata"}``.

The metadata of the outer layer is read from the protected headers (never
from the prose, which names the wrong curve twice). What is inside an
encrypted layer cannot be read without decrypting it, so the inner layers of
the two nested vectors are written in :data:`INNER_LAYERS` by hand; they were
checked by decrypting the vectors with didcomm-python 0.3.2, and
``tests/interop/test_didcomm_python.py`` re-checks the whole files against it.

Metadata follows the envelope contract (the same fields as didcomm-python
and didcomm-rust): algorithms written ``"ALG/ENC"``, signature algorithms as
the JWS ``alg``, key ids as absolute DID URLs, ``encrypted_to`` the kids of
every recipient of the innermost encrypted layer.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_APPENDIX = Path("/work/shared/spec/didcomm-v2.1/appendix.md")

#: Names of the C.3 vectors, in appendix order (checked against the headers).
ENCRYPTED_NAMES = (
    "anoncrypt_x25519_xc20p",
    "anoncrypt_p384_a256cbc_hs512",
    "anoncrypt_p521_a256gcm",
    "authcrypt_x25519_a256cbc_hs512",
    "authcrypt_p256_a256cbc_hs512_signed_eddsa",
    "anoncrypt_p521_xc20p_authcrypt_p521_signed_eddsa",
)

#: What the encrypted layers hide, by vector name (see module docstring).
INNER_LAYERS: dict[str, dict[str, Any]] = {
    "authcrypt_p256_a256cbc_hs512_signed_eddsa": {
        "sign_from": "did:example:alice#key-1",
        "sign_alg": "EdDSA",
    },
    "anoncrypt_p521_xc20p_authcrypt_p521_signed_eddsa": {
        # The prose says X25519 for the authcrypt layer; it is P-521.
        "encrypted_from": "did:example:alice#key-p521-1",
        "encrypted_to": ["did:example:bob#key-p521-1", "did:example:bob#key-p521-2"],
        "enc_alg_auth": "ECDH-1PU+A256KW/A256CBC-HS512",
        "sign_from": "did:example:alice#key-1",
        "sign_alg": "EdDSA",
    },
}

SIGN_ALG_NAMES = {"EdDSA": "eddsa_ed25519", "ES256": "es256_p256", "ES256K": "es256k_secp256k1"}

HEADING = re.compile(r"^#+\s+([A-C])\.?(\d)")
FENCE_OPEN = "```json"
FENCE_CLOSE = "```"


def b64u_json(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def empty_metadata() -> dict[str, Any]:
    return {
        "encrypted": False,
        "authenticated": False,
        "non_repudiation": False,
        "anonymous_sender": False,
        "encrypted_from": None,
        "encrypted_to": None,
        "sign_from": None,
        "enc_alg_auth": None,
        "enc_alg_anon": None,
        "sign_alg": None,
    }


def read_blocks(appendix: str) -> list[tuple[str, str, Any]]:
    """``(section, prose before the block, parsed JSON)`` for every json block."""
    blocks: list[tuple[str, str, Any]] = []
    section = ""
    prose: list[str] = []
    body: list[str] | None = None
    for line in appendix.splitlines():
        if body is not None:
            if line.strip() == FENCE_CLOSE:
                blocks.append((section, " ".join(prose).strip(), json.loads("\n".join(body))))
                body, prose = None, []
            else:
                body.append(line)
            continue
        heading = HEADING.match(line)
        if heading:
            section, prose = f"{heading.group(1)}.{heading.group(2)}", []
        elif line.strip() == FENCE_OPEN:
            body = []
        elif line.strip():
            prose = [line.strip()]  # keep only the paragraph right above a block
    return blocks


def fix_kid(jwk: dict[str, Any]) -> dict[str, Any]:
    """A.2 spells the member ``"kid "``: read it as ``"kid"``."""
    return {key.strip(): value for key, value in jwk.items()}


def signed_vector(prose: str, packed: dict[str, Any]) -> dict[str, Any]:
    (signature,) = packed["signatures"]
    alg = b64u_json(signature["protected"])["alg"]
    metadata = empty_metadata()
    metadata.update(
        authenticated=True,
        non_repudiation=True,
        sign_from=signature["header"]["kid"],
        sign_alg=alg,
    )
    return {
        "name": f"signed_{SIGN_ALG_NAMES[alg]}",
        "section": "C.2",
        "description": prose,
        "packed": packed,
        "expected_message": b64u_json(packed["payload"]),
        "expected_metadata": metadata,
    }


def encrypted_vector(
    name: str, prose: str, packed: dict[str, Any], message: dict[str, Any]
) -> dict[str, Any]:
    header = b64u_json(packed["protected"])
    alg, enc = header["alg"], header["enc"]
    kids = [r["header"]["kid"] for r in packed["recipients"]]
    metadata = empty_metadata()
    metadata.update(encrypted=True, encrypted_to=kids)
    if alg == "ECDH-ES+A256KW":
        metadata.update(anonymous_sender=True, enc_alg_anon=f"{alg}/{enc}")
    elif alg == "ECDH-1PU+A256KW":
        sender = base64.urlsafe_b64decode(header["apu"] + "=" * (-len(header["apu"]) % 4))
        assert sender.decode() == header["skid"], name
        metadata.update(
            authenticated=True, encrypted_from=header["skid"], enc_alg_auth=f"{alg}/{enc}"
        )
    else:
        raise ValueError(f"{name}: unexpected alg {alg}")
    inner = INNER_LAYERS.get(name, {})
    metadata.update(inner)
    if "enc_alg_auth" in inner:
        metadata["authenticated"] = True
    if "sign_from" in inner:
        metadata.update(authenticated=True, non_repudiation=True)
    # The name records curve and algorithms: make sure it matches the header.
    crv = header["epk"]["crv"].replace("-", "").lower()
    words = name.split("_")
    assert words[0] == ("anoncrypt" if alg.startswith("ECDH-ES") else "authcrypt"), name
    assert words[1] == crv, (name, crv)
    assert enc.replace("-", "_").lower() in name, (name, enc)
    return {
        "name": name,
        "section": "C.3",
        "description": prose,
        "packed": packed,
        "expected_message": message,
        "expected_metadata": metadata,
    }


def extract(appendix: str) -> dict[str, Any]:
    """Every file's content, by file name."""
    by_section: dict[str, list[tuple[str, Any]]] = {}
    for section, prose, value in read_blocks(appendix):
        by_section.setdefault(section, []).append((prose, value))
    ((_, alice),) = by_section["A.1"]
    ((_, bob),) = by_section["A.2"]
    docs = [value for _, value in by_section["B.1"] + by_section["B.2"]]
    ((plain_prose, plain),) = by_section["C.1"]

    signed = [signed_vector(prose, value) for prose, value in by_section["C.2"]]
    # The errata: every signed and encrypted vector decodes to one message,
    # with http:// (C.1 shows https://) and a typ the C.1 text lacks.
    (message,) = {json.dumps(v["expected_message"], sort_keys=True) for v in signed}
    decoded = json.loads(message)
    encrypted = [
        encrypted_vector(name, prose, value, decoded)
        for name, (prose, value) in zip(ENCRYPTED_NAMES, by_section["C.3"], strict=True)
    ]
    signed_payload = base64.urlsafe_b64decode(
        signed[0]["packed"]["payload"] + "=" * (-len(signed[0]["packed"]["payload"]) % 4)
    ).decode()
    plaintext = [
        {
            "name": "plaintext_c1",
            "section": "C.1",
            "description": plain_prose,
            "packed": plain,
            "expected_message": plain,
            "expected_metadata": empty_metadata(),
        },
        {
            "name": "plaintext_signed_payload",
            "section": "C.2",
            "description": "The payload of the C.2 signed vectors, a plaintext message with typ.",
            "packed": signed_payload,
            "expected_message": decoded,
            "expected_metadata": empty_metadata(),
        },
    ]
    return {
        "alice_secrets.json": alice,
        "bob_secrets.json": [fix_kid(jwk) for jwk in bob],
        "did_docs.json": docs,
        "plaintext.json": plaintext,
        "signed.json": signed,
        "encrypted.json": encrypted,
    }


def main(argv: list[str]) -> int:
    appendix = Path(argv[1]) if len(argv) > 1 else DEFAULT_APPENDIX
    for filename, content in extract(appendix.read_text(encoding="utf-8")).items():
        (HERE / filename).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {HERE / filename}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

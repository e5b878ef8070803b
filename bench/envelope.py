"""Envelope throughput: ours, the ``didcomm`` PyPI package, and the bare primitives.

Theory of operation
-------------------
For every operation of :func:`_envelope_fixtures.make_ops` -- pack and unpack
of signed (EdDSA, ES256, ES256K), anoncrypt (per curve, 1 and 10 recipients;
A256CBC-HS512, plus XC20P and A256GCM on X25519) and authcrypt (per curve, 1
and 10 recipients) messages of 500 bytes -- three numbers are measured in the
same run, as operations per second of one core:

* **ours**: ``protocols.envelope.pack_signed`` / ``pack_encrypted`` /
  ``unpack``, with a :class:`~protocols.did.resolver.StaticResolver` over the
  fixture documents and :class:`~protocols.secrets.InMemorySecrets`;
* **didcomm**: the same calls of SICPA's ``didcomm`` 0.3.2, run by
  ``bench/didcomm_ref.py`` under ``$DIDCOMMD_INTEROP_PYTHON`` (default
  ``<repo>/.venv-interop/bin/python``) on the same documents and keys;
* **bare**: only the library calls the operation cannot avoid, each from the
  library that does it fastest on this machine (measured: libsodium for X25519
  key generation and Ed25519, OpenSSL for the X25519 ECDH and AES; the choice
  ``protocols/keys.py`` makes too), never slower than it could be: for an anoncrypt pack, an
  ephemeral key pair, then per recipient an ECDH, the SHA-256 Concat KDF and
  an AES key wrap, and once the content encryption (AES-256-CBC + HMAC-SHA512,
  AES-GCM or XChaCha20-Poly1305); authcrypt adds the static ECDH per
  recipient; an unpack is one recipient's share (decode the ephemeral point for
  the NIST curves, ECDH, KDF, unwrap, content decryption); a signed message is
  one sign or verify call.  No JSON, base64, DID resolution or validation.

* **floor**: bare plus the JSON/base64url text work any implementation of the
  format must do (:class:`TextWork`, with the fastest codecs here, the ones
  ``protocols/codec.py`` uses: orjson, pybase64), timed as one call.  floor/bare is the best ours/bare could be; ours/floor is
  the share of our own code, and tells a miss we could fix from one we cannot.

Targets (as ratios, so the machine's speed cancels out), for every operation
on X25519 / Ed25519: ours >= 3x didcomm, and ours >= bare / 1.5.  The last
column, bare/didcomm, is the best ours/didcomm could be with these primitives.

Timing: one *window* repeats an operation until ``--budget`` seconds of wall
time have passed (garbage collector paused, as ``timeit`` does) and yields
operations per second.  Each operation gets ``--rounds`` windows of each kind,
interleaved ours, bare, floor, didcomm, ours, ... (the reference process sleeps on
its stdin while we run).  Rates are the medians of their windows; a ratio is
the median of the per-round ratios, since adjacent windows share the machine's
load.  This machine is shared and noisy: trust the ratios, not the rates.

Unpack operations cycle through a pool of distinct packed messages, and ours
forgets decoded JWKs before each encrypted unpack: every real inbound message
has a fresh ephemeral key, so an ``epk`` must never be a cache hit here.
Long-lived keys stay cached (DID documents are parsed once, and the
static-static ECDH of authcrypt is memoised), because that is real too.

``--profile`` runs cProfile over the X25519 and Ed25519 operations instead and
prints where the time goes.
"""

from __future__ import annotations

import argparse
import binascii
import cProfile
import gc
import hashlib
import hmac
import io
import itertools
import json
import os
import platform
import pstats
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
# The repository first: bench/ holds scripts named like our packages
# (bench/protocols.py), and the script's own directory is already on the path.
for _path in (REPO / "bench", REPO):
    if str(_path) in sys.path:
        sys.path.remove(str(_path))
    sys.path.insert(0, str(_path))

import nacl  # noqa: E402
import nacl.bindings as sodium  # noqa: E402
import orjson  # noqa: E402
import pybase64  # noqa: E402
from _envelope_fixtures import Party, make_ops, make_parties, with_serial  # noqa: E402
from cryptography import __version__ as cryptography_version  # noqa: E402
from cryptography.hazmat.backends.openssl.backend import backend as openssl  # noqa: E402
from cryptography.hazmat.bindings._rust import openssl as rust_openssl  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, x25519  # noqa: E402
from cryptography.hazmat.primitives.ciphers import algorithms, modes  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap  # noqa: E402
from nacl._sodium import ffi as sodium_ffi  # noqa: E402
from nacl._sodium import lib as sodium_lib  # noqa: E402

from protocols import keys as our_keys  # noqa: E402
from protocols.codec import PYBASE64_ENCODE_FROM, b64u_decode, json_bytes  # noqa: E402
from protocols.did.resolver import StaticResolver  # noqa: E402
from protocols.envelope import pack_encrypted, pack_signed, unpack  # noqa: E402
from protocols.keys import EC_CURVES, PrivateKey  # noqa: E402
from protocols.secrets import InMemorySecrets  # noqa: E402

#: Wall time of one timing window, and windows per operation and kind: many
#: short windows, because the load of this shared machine drifts by the second.
DEFAULT_BUDGET_S = 0.1
DEFAULT_ROUNDS = 9
#: ``--quick``: enough to prove every operation runs, not to measure it.
QUICK_BUDGET_S = 0.02
QUICK_ROUNDS = 1
#: Distinct packed messages each unpack cycles through.
DEFAULT_POOL = 8
QUICK_POOL = 2
#: The targets, as ratios measured in the same run.
TARGET_VS_DIDCOMM = 3.0
TARGET_VS_BARE = 1 / 1.5
#: Wall time cProfile spends on each profiled operation.
PROFILE_BUDGET_S = 1.5
#: Functions listed per profiled operation.
PROFILE_TOP = 20
#: Operations ``--profile`` looks at.
PROFILED_OPS = (
    "anon X25519 A256CBC-HS512 x1 pack",
    "anon X25519 A256CBC-HS512 x1 unpack",
    "auth X25519 A256CBC-HS512 x1 pack",
    "auth X25519 A256CBC-HS512 x1 unpack",
    "sign EdDSA pack",
    "sign EdDSA unpack",
)

REF_SCRIPT = REPO / "bench" / "didcomm_ref.py"
INTEROP_PYTHON_ENV = "DIDCOMMD_INTEROP_PYTHON"
DEFAULT_INTEROP_PYTHON = REPO / ".venv-interop" / "bin" / "python"
MARKDOWN_BEGIN = "<!-- bench/envelope.py: begin -->"
MARKDOWN_END = "<!-- bench/envelope.py: end -->"

Op = dict[str, Any]
Call = Callable[[], object]


# -- timing -----------------------------------------------------------------------


def rate(call: Call, budget: float) -> float:
    """Operations per second of ``call`` over ``budget`` seconds of wall time."""
    gc.collect()
    gc.disable()
    try:
        count = 0
        clock = time.perf_counter
        start = clock()
        deadline = start + budget
        while True:
            call()
            count += 1
            now = clock()
            if now >= deadline:
                return count / (now - start)
    finally:
        gc.enable()


# -- ours -------------------------------------------------------------------------


# Every real inbound JWE carries a fresh ephemeral key; PublicKey.from_jwk
# memoises decoded JWKs, so without this a pool of repeated messages would
# turn the epk decoding (a point validation on the NIST curves) into a cache
# hit no real message gets.  Long-lived keys do not go through this cache:
# the resolver keeps its parsed documents.
_forget_decoded_jwks = our_keys._public_from_jwk_members.cache_clear


class Ours:
    """Our envelope over the fixture parties."""

    def __init__(self, parties: dict[str, Party]) -> None:
        self.resolver = StaticResolver([p.document for p in parties.values()])
        self.secrets = {did: InMemorySecrets(p.secrets) for did, p in parties.items()}

    def pack(self, op: Op, message: dict[str, Any]) -> str:
        """Pack ``message`` as ``op`` says, with the packer's secrets."""
        secrets = self.secrets[op["packer"]]
        if op["mode"] == "sign":
            return pack_signed(message, op["sign_from"], resolver=self.resolver, secrets=secrets)
        return pack_encrypted(
            message,
            op["to"],
            frm=op["frm"],
            enc_anon=op["enc"],
            resolver=self.resolver,
            secrets=secrets,
        ).packed

    def call(self, op: Op, pool_size: int) -> Call:
        """A zero-argument callable doing ``op`` once (checked to work first)."""
        message = op["message"]
        if op["phase"] == "pack":
            self.pack(op, message)
            return lambda: self.pack(op, message)
        pool = [self.pack(op, with_serial(message, i)) for i in range(pool_size)]
        resolver, secrets = self.resolver, self.secrets[op["unpacker"]]
        if unpack(pool[0], resolver=resolver, secrets=secrets).message != with_serial(message, 0):
            raise AssertionError(f"{op['name']}: ours unpacked something else than it packed")
        packed = itertools.cycle(pool)
        if op["mode"] == "sign":
            return lambda: unpack(next(packed), resolver=resolver, secrets=secrets)

        def fresh_epk_unpack() -> object:
            _forget_decoded_jwks()
            return unpack(next(packed), resolver=resolver, secrets=secrets)

        return fresh_epk_unpack


# -- bare primitives -----------------------------------------------------------------


rust_ciphers = rust_openssl.ciphers
_CEK_BYTES = {"A256CBC-HS512": 64, "A256GCM": 32, "XC20P": 32}
_IV_BYTES = {"A256CBC-HS512": 16, "A256GCM": 12, "XC20P": 24}
_ECDSA_HASHES = {"P-256": hashes.SHA256, "secp256k1": hashes.SHA256}


def _content_cipher(enc: str) -> tuple[Callable[..., tuple[bytes, bytes]], Callable[..., object]]:
    """(encrypt, decrypt) of one content algorithm, as protocols/jwe.py calls them."""
    if enc == "A256CBC-HS512":

        # cryptography's Rust contexts without the Cipher() wrapper, as
        # protocols/jwe.py makes them (46k -> 31k instructions a call).
        def encrypt(cek: bytes, iv: bytes, pt: bytes, aad: bytes) -> tuple[bytes, bytes]:
            encryptor = rust_ciphers.create_encryption_ctx(algorithms.AES(cek[32:]), modes.CBC(iv))
            ct = encryptor.update(pt) + encryptor.finalize()
            al = struct.pack(">Q", len(aad) * 8)
            return ct, hmac.digest(cek[:32], aad + iv + ct + al, "sha512")[:32]

        def decrypt(cek: bytes, iv: bytes, ct: bytes, tag: bytes, aad: bytes) -> object:
            al = struct.pack(">Q", len(aad) * 8)
            if not hmac.compare_digest(hmac.digest(cek[:32], aad + iv + ct + al, "sha512")[:32], tag):
                raise AssertionError("bare CBC tag mismatch")
            decryptor = rust_ciphers.create_decryption_ctx(algorithms.AES(cek[32:]), modes.CBC(iv))
            return decryptor.update(ct) + decryptor.finalize()

        return encrypt, decrypt
    if enc == "A256GCM":

        def encrypt(cek: bytes, iv: bytes, pt: bytes, aad: bytes) -> tuple[bytes, bytes]:
            out = AESGCM(cek).encrypt(iv, pt, aad)
            return out[:-16], out[-16:]

        def decrypt(cek: bytes, iv: bytes, ct: bytes, tag: bytes, aad: bytes) -> object:
            return AESGCM(cek).decrypt(iv, ct + tag, aad)

        return encrypt, decrypt

    # libsodium through PyNaCl's cffi module, as protocols/jwe.py calls it (the
    # nacl.bindings wrappers add ~4 us of checks per call).
    def encrypt(cek: bytes, iv: bytes, pt: bytes, aad: bytes) -> tuple[bytes, bytes]:
        buf = sodium_ffi.new("unsigned char[]", len(pt) + 16)
        sodium_lib.crypto_aead_xchacha20poly1305_ietf_encrypt(
            buf, sodium_ffi.NULL, pt, len(pt), aad, len(aad), sodium_ffi.NULL, iv, cek
        )
        out = sodium_ffi.buffer(buf)[:]
        return out[:-16], out[-16:]

    def decrypt(cek: bytes, iv: bytes, ct: bytes, tag: bytes, aad: bytes) -> object:
        sealed = ct + tag
        buf = sodium_ffi.new("unsigned char[]", len(ct))
        if sodium_lib.crypto_aead_xchacha20poly1305_ietf_decrypt(
            buf, sodium_ffi.NULL, sodium_ffi.NULL, sealed, len(sealed), aad, len(aad), iv, cek
        ):
            raise AssertionError("bare XC20P tag mismatch")
        return sodium_ffi.buffer(buf)[:]

    return encrypt, decrypt


class _X25519:
    """Key agreement as fast as this machine does it (see protocols/keys.py).

    OpenSSL's X25519 ECDH is faster than libsodium's, libsodium's key
    generation faster than OpenSSL's: long-lived keys are OpenSSL objects made
    once, a received epk is decoded into one (a cheap copy of 32 bytes), and
    the ephemeral key comes from libsodium (raw bytes, whose ECDH is then
    libsodium's) unless it does at least ``X25519_OPENSSL_FROM`` ECDHs.
    A public key is the pair (OpenSSL object, raw bytes), for either secret.
    """

    def __init__(self, curve: str, ecdh_count: int) -> None:
        self.curve = curve
        self.openssl_ephemeral = ecdh_count >= our_keys.X25519_OPENSSL_FROM

    def private(self, key: PrivateKey) -> Any:
        return x25519.X25519PrivateKey.from_private_bytes(key.secret)

    def public(self, key: PrivateKey) -> Any:
        return self.decode(key.public.x)

    def ephemeral(self) -> tuple[Any, bytes]:
        if self.openssl_ephemeral:
            secret = x25519.X25519PrivateKey.generate()
            return secret, secret.public_key().public_bytes_raw()
        public, raw_secret = sodium.crypto_box_keypair()
        return raw_secret, public

    def decode(self, raw: bytes) -> Any:
        # From cryptography's Rust layer, as protocols/keys.py imports an epk:
        # the public wrapper adds an import and a backend check (~1.2 us).
        return rust_openssl.x25519.from_public_bytes(raw), raw

    def agree(self, secret: Any, public: Any) -> bytes:
        z: bytes
        if isinstance(secret, bytes):
            z = sodium.crypto_scalarmult(secret, public[1])
        else:
            z = secret.exchange(public[0])
        return z


class _NIST:
    """Key agreement with ``cryptography`` objects; points travel uncompressed."""

    def __init__(self, curve: str) -> None:
        self.curve = EC_CURVES[curve]

    def private(self, key: PrivateKey) -> Any:
        return ec.derive_private_key(int.from_bytes(key.secret, "big"), self.curve)

    def public(self, key: PrivateKey) -> Any:
        return ec.EllipticCurvePublicKey.from_encoded_point(self.curve, b"\x04" + key.public.x + key.public.y)

    def ephemeral(self) -> tuple[Any, bytes]:
        secret = ec.generate_private_key(self.curve)
        point = secret.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return secret, point

    def decode(self, raw: bytes) -> Any:
        # Decoding checks the point is on the curve, as any receiver must.
        return ec.EllipticCurvePublicKey.from_encoded_point(self.curve, raw)

    def agree(self, secret: Any, public: Any) -> bytes:
        z: bytes = secret.exchange(ec.ECDH(), public)
        return z


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class Bare:
    """The unavoidable library calls of each operation, nothing else."""

    def __init__(self, parties: dict[str, Party]) -> None:
        self.keys = {
            jwk["kid"]: PrivateKey.from_jwk(jwk) for p in parties.values() for jwk in p.secrets
        }
        self.parties = parties

    def _party_keys(self, did: str) -> list[PrivateKey]:
        """Key-agreement keys of ``did`` in document order."""
        return [self.keys[kid] for kid in self.parties[did].document["keyAgreement"]]

    def call(self, op: Op, sample: str, pool_size: int) -> Call:
        """A zero-argument callable doing ``op``'s primitives once.

        ``sample`` is one message packed by ours: its protected header gives
        the AAD and the KDF inputs, so both sides hash and MAC the same sizes.
        """
        if op["mode"] == "sign":
            return self._sign(op, sample, pool_size)
        return self._crypt(op, sample, pool_size)

    def _sign(self, op: Op, sample: str, pool_size: int) -> Call:
        jws = json.loads(sample)
        data = f"{jws['signatures'][0]['protected']}.{jws['payload']}".encode("ascii")
        key = self.keys[op["sign_from"]]
        if key.curve == "Ed25519":
            _, sk = sodium.crypto_sign_seed_keypair(key.secret)
            pk = key.public.x
            if op["phase"] == "pack":
                return lambda: sodium.crypto_sign(data, sk)
            signed = itertools.cycle(
                [sodium.crypto_sign(data + bytes([i]), sk) for i in range(pool_size)]
            )
            return lambda: sodium.crypto_sign_open(next(signed), pk)
        private = ec.derive_private_key(int.from_bytes(key.secret, "big"), EC_CURVES[key.curve])
        public = private.public_key()
        algorithm = ec.ECDSA(_ECDSA_HASHES[key.curve]())
        if op["phase"] == "pack":
            return lambda: private.sign(data, algorithm)
        signatures = itertools.cycle([private.sign(data, algorithm) for _ in range(pool_size)])
        return lambda: public.verify(next(signatures), data, algorithm)

    def _crypt(self, op: Op, sample: str, pool_size: int) -> Call:
        jwe = json.loads(sample)
        aad = jwe["protected"].encode("ascii")
        protected = json.loads(b64u_decode(jwe["protected"]))
        alg, enc = protected["alg"], protected["enc"]
        apv = b64u_decode(protected["apv"])
        apu = b64u_decode(protected["apu"]) if "apu" in protected else b""
        kdf_info = _lp(alg.encode("ascii")) + _lp(apu) + _lp(apv) + struct.pack(">I", 256)
        authcrypt = op["mode"] == "authcrypt"
        recipients = self._party_keys(op["to"])
        ka: _X25519 | _NIST = (
            _X25519(op["curve"], len(recipients)) if op["curve"] == "X25519" else _NIST(op["curve"])
        )
        recipient_publics = [ka.public(k) for k in recipients]
        receiver = ka.private(recipients[0])
        sender_key = self._party_keys(op["frm"])[0] if authcrypt else None
        sender = ka.private(sender_key) if sender_key else None
        sender_public = ka.public(sender_key) if sender_key else None
        encrypt, decrypt = _content_cipher(enc)
        plaintext = json_bytes(op["message"])
        if enc == "A256CBC-HS512":
            pad = 16 - len(plaintext) % 16
            plaintext += bytes([pad]) * pad  # PKCS#7, as protocols/jwe.py pads
        cek_bytes, iv_bytes = _CEK_BYTES[enc], _IV_BYTES[enc]
        sha256 = hashlib.sha256
        counter = b"\x00\x00\x00\x01"

        def pack() -> tuple[bytes, bytes, bytes, bytes, list[bytes]]:
            esk, epk = ka.ephemeral()
            cek = os.urandom(cek_bytes)
            iv = os.urandom(iv_bytes)
            ct, tag = encrypt(cek, iv, plaintext, aad)
            info = kdf_info + _lp(tag) if authcrypt else kdf_info
            wrapped = []
            for public in recipient_publics:
                z = ka.agree(esk, public)
                if sender is not None:
                    z += ka.agree(sender, public)
                wrapped.append(aes_key_wrap(sha256(counter + z + info).digest(), cek))
            return epk, iv, ct, tag, wrapped

        if op["phase"] == "pack":
            return pack
        pool: Iterator[tuple[bytes, bytes, bytes, bytes, list[bytes]]] = itertools.cycle(
            [pack() for _ in range(pool_size)]
        )

        def unpack_one() -> object:
            epk_raw, iv, ct, tag, wrapped = next(pool)
            z = ka.agree(receiver, ka.decode(epk_raw))
            if sender_public is not None:
                z += ka.agree(receiver, sender_public)
            info = kdf_info + _lp(tag) if authcrypt else kdf_info
            cek = aes_key_unwrap(sha256(counter + z + info).digest(), wrapped[0])
            return decrypt(cek, iv, ct, tag, aad)

        return unpack_one


# -- the text work every implementation does ----------------------------------------------


class TextWork:
    """The JSON and base64url work no implementation of the format can skip.

    ``bare`` is the primitives alone; a packed message is also text.  This is
    the least of that text work, with the fastest codecs here (orjson, pybase64): an
    unpack parses the outer JSON, decodes the protected header (and parses
    it) and the coordinates of its ephemeral key, the ciphertext, iv, tag and
    one encrypted key (a JWS: payload and signature), and parses the
    plaintext; a pack serialises the message,
    encodes what it sends and joins the result.  ``floor`` = bare + this, timed
    as one call: what ours would cost with no code of its own.
    """

    def call(self, op: Op, sample: str) -> Call:
        """A zero-argument callable doing the text work of one ``op`` once."""
        message = op["message"]
        if op["mode"] == "sign":
            jws = json.loads(sample)
            if op["phase"] == "unpack":
                sig = jws["signatures"][0]

                def unpack_signed() -> object:
                    obj = _loads(sample)
                    _b64u(sig["signature"])
                    return _loads(_b64u(obj["payload"]))

                return unpack_signed
            protected, signature = jws["signatures"][0]["protected"], jws["signatures"][0]["signature"]
            raw_signature = _b64u(signature)

            def pack_signed_text() -> object:
                payload = _b64e(_dumps(message))
                return "".join(("{", payload, protected, _b64e(raw_signature), "}"))

            return pack_signed_text
        jwe = json.loads(sample)
        if op["phase"] == "unpack":
            plaintext = _dumps(message)

            def unpack_text() -> object:
                obj = _loads(sample)
                # The ephemeral key's coordinates too: bare imports the epk
                # from raw bytes.
                epk = _loads(_b64u(obj["protected"]))["epk"]
                _b64u(epk["x"])
                if "y" in epk:
                    _b64u(epk["y"])
                _b64u(obj["recipients"][0]["encrypted_key"])
                _b64u(obj["iv"])
                _b64u(obj["tag"])
                _b64u(obj["ciphertext"])
                return _loads(plaintext)

            return unpack_text
        header = _b64u(jwe["protected"])
        ciphertext, iv, tag = _b64u(jwe["ciphertext"]), _b64u(jwe["iv"]), _b64u(jwe["tag"])
        keys = [_b64u(r["encrypted_key"]) for r in jwe["recipients"]]
        kids = [r["header"]["kid"] for r in jwe["recipients"]]

        def pack_text() -> object:
            body = _dumps(message)
            parts = ["{", _b64e(ciphertext), _b64e(header), _b64e(iv), _b64e(tag)]
            parts += [kid + _b64e(key) for kid, key in zip(kids, keys, strict=True)]
            return "".join(parts), body

        return pack_text


# The fastest this machine does each step (the floor must not be inflated),
# with the codecs protocols/codec.py uses: orjson for JSON, pybase64 for
# base64url (binascii under PYBASE64_ENCODE_FROM bytes, where its call is
# cheaper), each called with positional arguments and no checks.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_PADDING = ("", "===", "==", "=")
_URLSAFE = b"-_"


def _b64u(text: str) -> bytes:
    return pybase64.b64decode(text + _PADDING[len(text) & 3], _URLSAFE, True)


def _b64e(data: bytes) -> str:
    if len(data) >= PYBASE64_ENCODE_FROM:
        return pybase64.b64encode(data, _URLSAFE).rstrip(b"=").decode("ascii")
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


_dumps = orjson.dumps
_loads = orjson.loads


def _then(first: Call, second: Call) -> Call:
    def both() -> object:
        first()
        return second()

    return both


# -- the reference implementation ----------------------------------------------------


class RefError(Exception):
    """The didcomm reference process failed or is unavailable."""


class RefProcess:
    """``bench/didcomm_ref.py`` in the interop venv, one timing window per request."""

    def __init__(self, python: str, parties: dict[str, Party], ops: list[Op], pool: int) -> None:
        if not Path(python).exists():
            raise RefError(f"no interop interpreter at {python} (run `make interop-venv`)")
        # Closed in close(): the file outlives this constructor.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [python, "-W", "ignore", str(REF_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=REPO,
        )
        setup = {
            "parties": {did: asdict(p) for did, p in parties.items()},
            "ops": ops,
            "pool": pool,
        }
        ready = self._request(setup)
        self.errors: dict[str, str] = ready.get("errors", {})

    def _request(self, obj: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self.proc.wait()
            self._stderr.seek(0)
            tail = self._stderr.read().decode("utf-8", "replace").strip().splitlines()[-5:]
            raise RefError("didcomm reference process died: " + " | ".join(tail))
        reply: dict[str, Any] = json.loads(line)
        return reply

    def window(self, name: str, budget: float) -> float | None:
        """One timing window of ``name``; None if didcomm cannot do it."""
        if name in self.errors:
            return None
        reply = self._request({"op": name, "budget": budget})
        if "error" in reply:
            self.errors[name] = reply["error"]
            return None
        return float(reply["ops_per_s"])

    def close(self) -> None:
        """End the process (closing its stdin ends its loop)."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()
        self._stderr.close()


def didcomm_version(python: str) -> str:
    """The installed ``didcomm`` version in the interop venv (for the record)."""
    try:
        out = subprocess.run(
            [python, "-c", "import importlib.metadata as m; print(m.version('didcomm'))"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


# -- results --------------------------------------------------------------------------


@dataclass
class Row:
    """One operation's medians, ratios and verdicts."""

    op: str
    targeted: bool
    ours: float
    bare: float
    didcomm: float | None
    floor: float = 0.0
    ours_rounds: list[float] = field(default_factory=list)
    bare_rounds: list[float] = field(default_factory=list)
    didcomm_rounds: list[float] = field(default_factory=list)
    floor_rounds: list[float] = field(default_factory=list)
    didcomm_error: str | None = None

    # Ratios are medians of per-round ratios: adjacent windows see the same
    # machine load, so their ratio is steadier than the ratio of two medians.

    @property
    def vs_didcomm(self) -> float | None:
        pairs = list(zip(self.ours_rounds, self.didcomm_rounds, strict=False))
        return statistics.median(o / d for o, d in pairs) if pairs else None

    @property
    def vs_bare(self) -> float:
        return statistics.median(o / b for o, b in zip(self.ours_rounds, self.bare_rounds, strict=True))

    @property
    def vs_floor(self) -> float | None:
        """Ours against bare + the format's text work: our own code's share."""
        pairs = list(zip(self.ours_rounds, self.floor_rounds, strict=False))
        return statistics.median(o / f for o, f in pairs) if pairs else None

    @property
    def floor_vs_bare(self) -> float | None:
        """The most ours/bare could be for any implementation of the format."""
        pairs = list(zip(self.floor_rounds, self.bare_rounds, strict=False))
        return statistics.median(f / b for f, b in pairs) if pairs else None

    @property
    def floor_vs_didcomm(self) -> float | None:
        """The most ours/didcomm could be for any implementation of the format."""
        pairs = list(zip(self.floor_rounds, self.didcomm_rounds, strict=False))
        return statistics.median(f / d for f, d in pairs) if pairs else None

    @property
    def bare_vs_didcomm(self) -> float | None:
        """The most ours/didcomm could be: ours at the bare primitives' cost."""
        pairs = list(zip(self.bare_rounds, self.didcomm_rounds, strict=False))
        return statistics.median(b / d for b, d in pairs) if pairs else None

    @property
    def pass_didcomm(self) -> bool | None:
        ratio = self.vs_didcomm
        return None if not self.targeted or ratio is None else ratio >= TARGET_VS_DIDCOMM

    @property
    def pass_bare(self) -> bool | None:
        return None if not self.targeted else self.vs_bare >= TARGET_VS_BARE

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            vs_didcomm=self.vs_didcomm,
            vs_bare=self.vs_bare,
            bare_vs_didcomm=self.bare_vs_didcomm,
            vs_floor=self.vs_floor,
            floor_vs_bare=self.floor_vs_bare,
            pass_didcomm=self.pass_didcomm,
            pass_bare=self.pass_bare,
        )
        return out


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "MISS")


def _cells(row: Row) -> list[str]:
    ratio_d = row.vs_didcomm
    return [
        row.op,
        f"{row.ours:,.0f}",
        "n/a" if row.didcomm is None else f"{row.didcomm:,.0f}",
        "n/a" if ratio_d is None else f"{ratio_d:.2f}",
        _verdict(row.pass_didcomm),
        f"{row.bare:,.0f}",
        f"{row.vs_bare:.2f}",
        _verdict(row.pass_bare),
        "n/a" if row.bare_vs_didcomm is None else f"{row.bare_vs_didcomm:.2f}",
        "n/a" if not row.floor else f"{row.floor:,.0f}",
        "n/a" if row.floor_vs_bare is None else f"{row.floor_vs_bare:.2f}",
        "n/a" if row.vs_floor is None else f"{row.vs_floor:.2f}",
    ]


HEADERS = [
    "operation",
    "ours ops/s",
    "didcomm ops/s",
    "ours/didcomm",
    ">=3x",
    "bare ops/s",
    "ours/bare",
    ">=1/1.5",
    "bare/didcomm",
    "floor ops/s",
    "floor/bare",
    "ours/floor",
]
WIDTHS = [38, 11, 13, 12, 5, 11, 9, 7, 12, 11, 10, 10]


def text_line(cells: list[str]) -> str:
    """One table line, the operation left-aligned and the numbers right-aligned."""
    first = cells[0].ljust(WIDTHS[0])
    return "  ".join([first] + [c.rjust(w) for c, w in zip(cells[1:], WIDTHS[1:], strict=True)])


def summary(rows: list[Row]) -> list[str]:
    """Target tallies, then why each targeted operation that misses does."""
    lines = []
    for label, verdicts in (
        (f"ours >= {TARGET_VS_DIDCOMM:g}x didcomm", [r.pass_didcomm for r in rows]),
        ("ours >= bare/1.5", [r.pass_bare for r in rows]),
    ):
        judged = [v for v in verdicts if v is not None]
        lines.append(f"{label}: {sum(judged)}/{len(judged)} X25519/Ed25519 operations pass")
    out_of_reach = [
        r.op for r in rows if r.targeted and (r.bare_vs_didcomm or 99) < TARGET_VS_DIDCOMM
    ]
    if out_of_reach:
        lines.append(
            f"bare/didcomm < {TARGET_VS_DIDCOMM:g} (the didcomm target is out of reach even at"
            f" the bare primitives' cost): {len(out_of_reach)} operations"
        )
    lines += [f"{row.op}: {why}" for row in rows for why in misses(row)]
    return lines


def misses(row: Row) -> list[str]:
    """Why a targeted operation misses a target, from its own ratios."""
    out = []
    if row.pass_didcomm is False:
        bare_d, floor_d = row.bare_vs_didcomm or 0.0, row.floor_vs_didcomm or 0.0
        if bare_d < TARGET_VS_DIDCOMM:
            out.append(
                f"misses {TARGET_VS_DIDCOMM:g}x didcomm: out of reach, the primitives alone"
                f" are {bare_d:.2f}x didcomm"
            )
        elif floor_d < TARGET_VS_DIDCOMM:
            out.append(
                f"misses {TARGET_VS_DIDCOMM:g}x didcomm: out of reach for the format, primitives"
                f" + JSON/base64 are {floor_d:.2f}x didcomm"
            )
        else:
            out.append(
                f"misses {TARGET_VS_DIDCOMM:g}x didcomm: our code's own cost (ours/floor"
                f" {row.vs_floor or 0:.2f})"
            )
    if row.pass_bare is False:
        floor_b = row.floor_vs_bare or 0.0
        if floor_b < TARGET_VS_BARE:
            out.append(
                f"misses bare/1.5: out of reach for the format, primitives + JSON/base64 are"
                f" {floor_b:.2f} of bare"
            )
        else:
            out.append(
                f"misses bare/1.5: primitives + JSON/base64 are {floor_b:.2f} of bare, ours"
                f" {row.vs_floor or 0:.2f} of that (our code's own cost)"
            )
    return out


def environment(python: str | None) -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "cpu": f"{cpu} ({os.cpu_count()} cores)",
        "pynacl": nacl.__version__,
        "cryptography": f"{cryptography_version} ({openssl.openssl_version_text()})",
        "orjson": orjson.__version__,
        "pybase64": pybase64.__version__,
        "didcomm": didcomm_version(python) if python else "not run",
    }


def markdown(
    rows: list[Row], env: dict[str, str], budget: float, rounds: int, passes: int = 1
) -> str:
    """The results as a Markdown section (for bench/RESULTS.md)."""
    out = [
        MARKDOWN_BEGIN,
        "## Envelope (`bench/envelope.py`)",
        "",
        f"Operations per second on one core, median of {rounds * passes} windows of {budget:g} s"
        + (f" ({passes} passes over all operations, {rounds} windows each)" if passes > 1 else "")
        + ", ours / bare / floor / didcomm interleaved in one run; a ratio is the median of"
        " the per-window ratios. Targets apply to X25519 and Ed25519"
        f" operations: ours >= {TARGET_VS_DIDCOMM:g}x the `didcomm` package, ours >= bare / 1.5."
        " *bare* is the primitives alone, each from the library that does it fastest here"
        " (libsodium: X25519 key generation, Ed25519, XChaCha20-Poly1305; OpenSSL: X25519"
        " ECDH, AES); *floor* is bare plus the JSON/base64url text work any implementation"
        " of the format must do (with the fastest codecs here, the ones ours uses: orjson for"
        " JSON, pybase64 for base64url; timed in the same call), so"
        " floor/bare is the best ours/bare could be and ours/floor is our own code's share."
        " Authcrypt's bare does the static-static ECDH on every message; ours caches it per"
        " key pair (as the issue allows), hence ours/bare above 1 there.",
        "",
        "Measured on: " + "; ".join(f"{k} {v}" for k, v in env.items()) + ".",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(HEADERS) - 1)) + "|",
    ]
    out += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    out += ["", *[f"- {line}" for line in summary(rows)], MARKDOWN_END, ""]
    return "\n".join(out)


def write_markdown(path: Path, section: str) -> None:
    """Replace our section of ``path`` (between the markers), keeping the rest."""
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    begin, end = text.find(MARKDOWN_BEGIN), text.find(MARKDOWN_END)
    if begin != -1 and end != -1:
        text = text[:begin] + section + text[end + len(MARKDOWN_END) :].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


# -- the run ------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    parties = make_parties()
    ops = [op for op in make_ops() if not args.only or any(s in op["name"] for s in args.only)]
    if not ops:
        print("no operation matches --only", file=sys.stderr)
        return 2
    ours, bare, text_work = Ours(parties), Bare(parties), TextWork()
    if args.profile:
        return profile(ours, [op for op in ops if op["name"] in PROFILED_OPS])

    python = None if args.no_didcomm else os.environ.get(INTEROP_PYTHON_ENV, str(DEFAULT_INTEROP_PYTHON))
    ref = None
    if python is not None:
        try:
            ref = RefProcess(python, parties, ops, args.pool)
        except RefError as exc:
            print(f"didcomm column skipped: {exc}", file=sys.stderr)
            python = None
    calls = {}
    windows: dict[str, tuple[list[float], list[float], list[float], list[float]]] = {}
    try:
        # Each pass gives every operation --rounds windows of each kind; more
        # passes spread an operation's windows over minutes of this shared
        # machine's changing load, and its row is the median over all of them.
        for done in range(args.passes):
            for op in ops:
                name = op["name"]
                if name not in calls:
                    sample = ours.pack(op, op["message"])
                    calls[name] = (
                        ours.call(op, args.pool),
                        bare.call(op, sample, args.pool),
                        _then(bare.call(op, sample, args.pool), text_work.call(op, sample)),
                    )
                    windows[name] = ([], [], [], [])
                ours_call, bare_call, floor_call = calls[name]
                o, b, f, d = windows[name]
                for _ in range(args.rounds):
                    o.append(rate(ours_call, args.budget))
                    b.append(rate(bare_call, args.budget))
                    f.append(rate(floor_call, args.budget))
                    if ref is not None:
                        r = ref.window(name, args.budget)
                        if r is not None:
                            d.append(r)
            if args.passes > 1:
                print(f"pass {done + 1}/{args.passes} done", file=sys.stderr, flush=True)
    finally:
        if ref is not None:
            ref.close()
    print(text_line(HEADERS))
    rows = []
    for op in ops:
        o, b, f, d = windows[op["name"]]
        row = Row(
            op=op["name"],
            targeted=op["targeted"],
            ours=statistics.median(o),
            bare=statistics.median(b),
            didcomm=statistics.median(d) if d else None,
            floor=statistics.median(f),
            ours_rounds=o,
            bare_rounds=b,
            didcomm_rounds=d,
            floor_rounds=f,
            didcomm_error=ref.errors.get(op["name"]) if ref else "not run",
        )
        rows.append(row)
        print(text_line(_cells(row)), flush=True)
    for line in summary(rows):
        print(line)
    for row in rows:
        if row.didcomm_error and row.didcomm_error != "not run":
            print(f"didcomm cannot do {row.op}: {row.didcomm_error}")

    env = environment(python)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "environment": env,
                    "budget_s": args.budget,
                    "rounds": args.rounds,
                    "passes": args.passes,
                    "targets": {"vs_didcomm": TARGET_VS_DIDCOMM, "vs_bare": TARGET_VS_BARE},
                    "results": [row.to_json() for row in rows],
                },
                indent=2,
            )
            + "\n"
        )
    if args.markdown:
        write_markdown(Path(args.markdown), markdown(rows, env, args.budget, args.rounds, args.passes))
    return 0


def profile(ours: Ours, ops: list[Op]) -> int:
    """cProfile each operation for PROFILE_BUDGET_S; print the top functions."""
    for op in ops:
        call = ours.call(op, DEFAULT_POOL)
        profiler = cProfile.Profile()
        count = 0
        deadline = time.perf_counter() + PROFILE_BUDGET_S
        profiler.enable()
        while time.perf_counter() < deadline:
            call()
            count += 1
        profiler.disable()
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream)
        stats.sort_stats("tottime").print_stats(PROFILE_TOP)
        print(f"=== {op['name']}: {count} calls under cProfile ===")
        lines = stream.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print("\n".join(line for line in lines[start:] if line.strip()))
        print()
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny budget, one round")
    parser.add_argument("--budget", type=float, help=f"seconds per window (default {DEFAULT_BUDGET_S})")
    parser.add_argument("--rounds", type=int, help=f"windows per operation and pass (default {DEFAULT_ROUNDS})")
    parser.add_argument("--passes", type=int, default=1, help="passes over all operations (default 1)")
    parser.add_argument("--pool", type=int, help=f"distinct messages per unpack (default {DEFAULT_POOL})")
    parser.add_argument("--only", action="append", metavar="TEXT", help="operations whose name contains TEXT")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="update our section of a Markdown file")
    parser.add_argument("--no-didcomm", action="store_true", help="skip the didcomm reference")
    parser.add_argument("--profile", action="store_true", help="cProfile the X25519/Ed25519 ops")
    args = parser.parse_args(argv)
    if args.budget is None:
        args.budget = QUICK_BUDGET_S if args.quick else DEFAULT_BUDGET_S
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    if args.pool is None:
        args.pool = QUICK_POOL if args.quick else DEFAULT_POOL
    if args.budget <= 0 or args.rounds < 1 or args.pool < 1 or args.passes < 1:
        parser.error("--budget, --rounds, --passes and --pool must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

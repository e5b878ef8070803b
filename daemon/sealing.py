"""Sealing at rest: authenticated encryption for what the store must not keep in the clear.

Theory of operation
-------------------
The wallet's *data key* (:mod:`daemon.wallet`) seals two kinds of things, each
bound by its associated data to what it is and where it lives, so no sealed
blob can stand in for another (a record copied to another row, or a record
offered where a private key is expected, no longer opens):

- private keys and other wallet secrets, by :mod:`daemon.wallet` itself;
- the store's **personal records** (:class:`RecordSealer`): every column that
  holds what people said or were given -- received and queued messages, the
  state of credential and proof exchanges, credentials, connection records,
  events.  Their associated data is ``table NUL row-key``.

What stays readable is what the store searches or indexes: ids, DIDs, states
and times (who talked to whom, and when).  A sealed record is
``SEALED_PREFIX || salt || nonce || ciphertext`` (AES-256-GCM under a key
derived from the data key and the salt: see :class:`RecordSealer`; wallet
secrets, few and opened once, use XChaCha20-Poly1305: :func:`seal`).  A
record in the clear is refused when read, not trusted: the seal also tells a
record we wrote from one put in the file behind our back.  Records that a version from before sealing left in
the clear are sealed at the first unlock
(:meth:`daemon.store.Store.seal_legacy_records`).
"""

from __future__ import annotations

import hashlib
import os

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import StoreError

KEY_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES  # 32
NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
#: First bytes of a sealed record: a marker (0xff never starts CBOR or JSON) and the format version.
SEALED_PREFIX = b"\xff\x01"
#: Random salt naming the key a record is sealed under (see RecordSealer).
EPOCH_SALT_BYTES = 16
GCM_NONCE_BYTES = 12
GCM_TAG_BYTES = 16
#: Seals under one epoch key before the sealer draws a new salt: with random 96-bit
#: nonces, 2^24 keeps the chance of a repeated nonce under 2^-48 per key (NIST's
#: ceiling is 2^32 messages per key).
SEALS_PER_EPOCH = 1 << 24
#: Epoch keys an opener keeps derived (one per daemon run, typically).
MAX_EPOCH_KEYS_CACHED = 256
_SEALED_OVERHEAD = len(SEALED_PREFIX) + EPOCH_SALT_BYTES + GCM_NONCE_BYTES + GCM_TAG_BYTES
_EPOCH_PERSON = b"didcommd-rec-v1"
# Associated data of records, distinct from every wallet use (see daemon.wallet).
_AD_RECORD = b"didcommd store record v1\x00"


def seal(key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """``nonce || ciphertext`` of ``plaintext`` under ``key``, bound to ``ad``."""
    nonce = nacl.utils.random(NONCE_BYTES)
    ct: bytes = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)
    return nonce + ct


def open_sealed(key: bytes, sealed: bytes, ad: bytes) -> bytes | None:
    """What :func:`seal` sealed, or None if it does not open (wrong key, other ``ad``, damage)."""
    if len(sealed) < NONCE_BYTES + TAG_BYTES:
        return None
    try:
        pt: bytes = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed[NONCE_BYTES:], ad, sealed[:NONCE_BYTES], key
        )
    except nacl.exceptions.CryptoError:
        return None
    return pt


class RecordSealer:
    """Seals and opens the store's personal records under the wallet's data key.

    Records are many and on the message path (about nine seals per message
    delivered, both sides counted), so they use AES-256-GCM (OpenSSL, AES-NI:
    ~1 us for a 2 KB record, where libsodium's XChaCha20-Poly1305 through PyNaCl
    takes ~7 us; 9 us against 66 us at 64 KB).  GCM's 96-bit nonces are drawn at
    random, which is safe for far fewer messages per key than XChaCha's 192 bits
    (NIST SP 800-38D: at most 2^32 per key), so each sealer seals under a key of
    its own, derived from the data key and a random 16-byte *epoch salt* that
    every record carries (``SEALED_PREFIX || salt || nonce || ciphertext``), and
    draws a new salt every :data:`SEALS_PER_EPOCH` seals.  Opening derives (and
    caches) the key of the record's salt.
    """

    __slots__ = ("_aead", "_data_key", "_keys", "_salt", "_seals")

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != KEY_BYTES:
            raise ValueError(f"a record sealing key is {KEY_BYTES} bytes")
        self._data_key = data_key
        self._keys: dict[bytes, AESGCM] = {}
        self._new_epoch()

    def __repr__(self) -> str:
        return "<RecordSealer>"

    def _new_epoch(self) -> None:
        self._salt = nacl.utils.random(EPOCH_SALT_BYTES)
        self._aead = self._epoch_key(self._salt)
        self._seals = 0

    def _epoch_key(self, salt: bytes) -> AESGCM:
        aead = self._keys.get(salt)
        if aead is None:
            if len(self._keys) >= MAX_EPOCH_KEYS_CACHED:
                self._keys.clear()
            key = hashlib.blake2b(salt, key=self._data_key, digest_size=32, person=_EPOCH_PERSON).digest()
            aead = self._keys[salt] = AESGCM(key)
        return aead

    @staticmethod
    def _ad(table: str, row_key: str) -> bytes:
        return _AD_RECORD + table.encode() + b"\x00" + row_key.encode()

    def seal(self, table: str, row_key: str, plaintext: bytes) -> bytes:
        """``plaintext`` sealed for row ``row_key`` of ``table``."""
        if self._seals >= SEALS_PER_EPOCH:
            self._new_epoch()
        self._seals += 1
        nonce = os.urandom(GCM_NONCE_BYTES)
        return SEALED_PREFIX + self._salt + nonce + self._aead.encrypt(nonce, plaintext, self._ad(table, row_key))

    def open(self, table: str, row_key: str, blob: bytes) -> bytes:
        """The plaintext of a sealed record; :class:`StoreError` if it does not open."""
        if blob[: len(SEALED_PREFIX)] != SEALED_PREFIX or len(blob) < _SEALED_OVERHEAD:
            raise StoreError(f"a sealed {table} record has an unknown format")
        salt_at = len(SEALED_PREFIX)
        nonce_at = salt_at + EPOCH_SALT_BYTES
        ct_at = nonce_at + GCM_NONCE_BYTES
        try:
            return self._epoch_key(blob[salt_at:nonce_at]).decrypt(
                blob[nonce_at:ct_at], blob[ct_at:], self._ad(table, row_key))
        except InvalidTag:
            raise StoreError(
                f"a sealed {table} record does not decrypt (another wallet's store, a damaged "
                "file, or a record moved to another row)"
            ) from None

"""Sealing at rest: XChaCha20-Poly1305 boxes for what the store must not keep in the clear.

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
``SEALED_PREFIX || nonce || ciphertext``.  A record in the clear is refused
when read, not trusted: the seal also tells a record we wrote from one put in
the file behind our back.  Records that a version from before sealing left in
the clear are sealed at the first unlock
(:meth:`daemon.store.Store.seal_legacy_records`).
"""

from __future__ import annotations

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils

from .errors import StoreError

KEY_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES  # 32
NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
#: First bytes of a sealed record: a marker (0xff never starts CBOR or JSON) and the format version.
SEALED_PREFIX = b"\xff\x01"
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
    """Seals and opens the store's personal records under the wallet's data key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a record sealing key is {KEY_BYTES} bytes")
        self._key = key

    def __repr__(self) -> str:
        return "<RecordSealer>"

    @staticmethod
    def _ad(table: str, row_key: str) -> bytes:
        return _AD_RECORD + table.encode() + b"\x00" + row_key.encode()

    def seal(self, table: str, row_key: str, plaintext: bytes) -> bytes:
        """``plaintext`` sealed for row ``row_key`` of ``table``."""
        return SEALED_PREFIX + seal(self._key, plaintext, self._ad(table, row_key))

    def open(self, table: str, row_key: str, blob: bytes) -> bytes:
        """The plaintext of a sealed record; :class:`StoreError` if it does not open."""
        if blob[: len(SEALED_PREFIX)] != SEALED_PREFIX:
            raise StoreError(f"a sealed {table} record has an unknown format")
        pt = open_sealed(self._key, blob[len(SEALED_PREFIX):], self._ad(table, row_key))
        if pt is None:
            raise StoreError(
                f"a sealed {table} record does not decrypt (another wallet's store, a damaged "
                "file, or a record moved to another row)"
            )
        return pt

"""The wallet: private keys, encrypted at rest, and the DIDs they belong to.

Theory of operation
-------------------
Two keys, so that changing a passphrase never re-encrypts a record:

- the **data key**: 32 random bytes made once, when the wallet is created.  Every
  private key is sealed under it with XChaCha20-Poly1305 (a fresh 24-byte nonce
  each), with the key id (an absolute DID URL) as associated data, so a sealed key
  moved to another row no longer opens.
- the **wrapping key**: what protects the data key, stored sealed in the store's
  ``meta`` table (record ``wallet``).  It comes from one of:

  * a **passphrase**, through Argon2id (PyNaCl, the libsodium *interactive* limits
    :data:`KDF_OPSLIMIT` / :data:`KDF_MEMLIMIT`, a random salt kept in the record);
    the passphrase is read from ``wallet.passphrase_file``, the variable named by
    ``wallet.passphrase_env``, or the systemd credential
    ``$CREDENTIALS_DIRECTORY/wallet-passphrase``, never from the command line;
  * a **key file** (``wallet.key_file``, default ``<state_dir>/wallet.key``): 32
    random bytes written with mode 0600 on first start, like an SSH host key, for
    the unattended default.

  A keyed BLAKE2b **check value** of the wrapping key is stored too, so a wrong
  passphrase is told apart from a damaged record: :class:`WalletLockedError`
  ("wrong wallet passphrase"), never a decryption traceback.

``didcommd wallet passphrase`` re-wraps the data key only.  When it switches to a
key file, the new file is written as ``wallet.key.new`` first and renamed after the
store commits; :func:`unlock` finishes an interrupted switch.

While the daemon runs, :class:`Wallet` holds the sealed keys in memory and opens
each on first use (the envelope asks through the ``SecretsResolver`` seam:
:meth:`Wallet.get_key`, :meth:`Wallet.find_keys`), so key lookups never touch the
disk and never block.

*Backups.*  :func:`export_backup` writes every key, DID and DID document as one
CBOR document sealed under a key derived (Argon2id, fresh salt) from an export
passphrase; :func:`import_backup` merges such a file into a wallet (existing kids
and DIDs are kept), which restores the same DIDs on a fresh state directory.
The backup also holds the libp2p peer identity (the sealed ``meta`` secret
:data:`PEER_IDENTITY_SECRET`), and an import puts it in place - replacing the
one a daemon may have made on its first start - so the restored daemon keeps
its peer id: the did:peer DIDs it restores name that peer id in their
``DIDCommMessaging`` service, and its peers' DHT records and peer tables too.

A backup restores a *working* wallet, so it holds more optional members (older
backups lack them, older daemons ignore them; :data:`BACKUP_VERSION` stays 1):
``credentials`` and ``connections`` (rows and records); ``exchanges``, the
finished issue-credential threads (:data:`BACKUP_EXCHANGE_STATES`: a holder's
status refresh finds the peer a credential came from through its thread, an
issuer's ``credential revoke`` finds the credential's index through its);
``held_status_lists``, the holder's verified list copies; and the issuer's
``status_lists`` with their ``status_entries``, every index handed out.  The
records are read through the store, which opens them, and written through the
store, which seals them under the *importing* wallet's data key.  Pending
exchanges, the inbox and outbox, and events are not carried.

An import merges in one transaction, after every row of the content has been
checked (a hostile or damaged backup is a :class:`BackupError` and nothing is
written): what is here is kept (kids, DIDs, credentials, connections and threads
by id); a held list gives way only to a newer copy (``issued_at``); an issuer
list absent here is restored with all its entries.  An issuer list present
here (the issuer issued from a fresh wallet with the same DID before
restoring) is a *conflict*: the list here is kept, and the backup's entries
are added to it where their index is free, with their threads, credentials and
statuses - so both lists' credentials stay revocable and no index either list
handed out is handed out again; an index both handed out (to different
threads) stays with the entry here, and is counted and logged, as nothing can
tell the two credentials apart any more.  Then, for each list the backup
restored that is still the current one, issuance moves on to a new, empty list
(one more number): a backup is older than the wallet it was made from, and the
indexes handed out after it was made are in no backup, so the only safe list to
draw from is one nobody has drawn from.  (Marking indexes used would need to
know them; a new list costs one empty list per restore.)

*Records at rest.*  Unlocking also hands the store a
:class:`~daemon.sealing.RecordSealer` under the data key, which seals every
personal record it writes (messages, exchanges, credentials, events; see
:mod:`daemon.sealing`): without the wallet the store shows only ids, DIDs,
states and times.  The first unlock by a version that seals seals the
records an older one left in the clear.

*Creating DIDs.*  :func:`new_did` makes the keys for a ``did:key`` (Ed25519, whose
X25519 key-agreement key is derived from it) or a ``did:peer:2`` (an Ed25519
authentication key and an X25519 key-agreement key, plus any services), and finds
the key ids by resolving the new DID, so they are exactly the ids peers will use.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cbor2
import nacl.bindings as sodium
import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.utils

from protocols import issue_credential, status_list
from protocols.codec import b64u_decode, b64u_encode, json_dumps, json_object
from protocols.did.did_key import create_did_key
from protocols.did.did_peer import create_did_peer_2
from protocols.did.resolver import default_resolver
from protocols.errors import DIDCommError
from protocols.framework import ProtocolRecord
from protocols.keys import PrivateKey, PublicKey

from . import revocation
from .config import WalletSection
from .connections import Connection
from .errors import (
    INVALID_BACKUP,
    DaemonError,
    InvalidParamsError,
    NotFoundError,
    StoreError,
    WalletLockedError,
)
from .logs import get_logger
from .sealing import KEY_BYTES, RecordSealer, open_sealed, seal
from .store import (
    HeldStatusListRow,
    KeyRow,
    StatusEntryRow,
    StatusListRow,
    Store,
    decode_record,
    encode_record,
)

SALT_BYTES = argon2id.SALTBYTES  # 16
#: Argon2id cost for the wallet and backups: libsodium's "interactive" limits
#: (2 passes, 64 MiB; about 70 ms here), paid once per start.
KDF_OPSLIMIT = argon2id.OPSLIMIT_INTERACTIVE
KDF_MEMLIMIT = argon2id.MEMLIMIT_INTERACTIVE
#: Highest costs accepted from a stored record or a backup file, so a crafted file
#: cannot make us allocate gigabytes or spin for minutes (libsodium's "sensitive").
MAX_KDF_OPSLIMIT = argon2id.OPSLIMIT_SENSITIVE
MAX_KDF_MEMLIMIT = argon2id.MEMLIMIT_SENSITIVE
#: Longest passphrase read (from a file, a variable or a prompt).
MAX_PASSPHRASE_BYTES = 4096
#: Largest backup file read.
MAX_BACKUP_BYTES = 64 * 1024 * 1024

META_NAME = "wallet"
#: Name of the sealed libp2p peer identity in the store's ``meta`` table.
PEER_IDENTITY_SECRET = "p2p.identity"
WALLET_VERSION = 1
BACKUP_FORMAT = "didcommd-wallet-backup"
BACKUP_VERSION = 1
PASSPHRASE_CREDENTIAL = "wallet-passphrase"
MODE_PASSPHRASE = "passphrase"
MODE_KEYFILE = "keyfile"

# Associated data / personalisation, one per use, so no ciphertext can stand in for another.
_AD_WRAP = b"didcommd wallet data key v1"
_AD_KEY = b"didcommd wallet private key v1\x00"
_AD_BACKUP = b"didcommd wallet backup v1"
_AD_SECRET = b"didcommd wallet secret v1\x00"
_CHECK_MESSAGE = b"didcommd wallet check v1"

_log = get_logger("wallet")


# -- primitives ----------------------------------------------------------------------------


def _check_value(wrapping_key: bytes) -> bytes:
    return hashlib.blake2b(_CHECK_MESSAGE, key=wrapping_key, digest_size=32).digest()


def derive_key(passphrase: bytes, salt: bytes, opslimit: int = KDF_OPSLIMIT,
               memlimit: int = KDF_MEMLIMIT) -> bytes:
    """A 32-byte key from a passphrase with Argon2id."""
    if not (0 < opslimit <= MAX_KDF_OPSLIMIT and 0 < memlimit <= MAX_KDF_MEMLIMIT):
        raise StoreError("key derivation limits out of range (damaged or hostile record)")
    if len(salt) != SALT_BYTES:
        raise StoreError("key derivation salt has the wrong length")
    key: bytes = argon2id.kdf(KEY_BYTES, passphrase, salt, opslimit=opslimit, memlimit=memlimit)
    return key


# -- passphrases and the key file -------------------------------------------------------------


def _clean_passphrase(raw: bytes, where: str) -> bytes:
    if len(raw) > MAX_PASSPHRASE_BYTES:
        raise WalletLockedError(f"the passphrase from {where} is longer than {MAX_PASSPHRASE_BYTES} bytes")
    # A file usually ends in a newline the user did not mean as part of it.
    if raw.endswith(b"\r\n"):
        raw = raw[:-2]
    elif raw.endswith(b"\n"):
        raw = raw[:-1]
    if not raw:
        raise WalletLockedError(f"the passphrase from {where} is empty")
    return raw


def read_passphrase_file(path: Path) -> bytes:
    """A passphrase from a file (one trailing newline dropped)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_PASSPHRASE_BYTES + 3)
    except OSError as exc:
        raise WalletLockedError(f"cannot read the passphrase file {path}: {exc.strerror or exc}") from None
    return _clean_passphrase(raw, str(path))


def read_passphrase_env(name: str, env: Mapping[str, str]) -> bytes:
    """A passphrase from the environment variable ``name``."""
    value = env.get(name)
    if not value:
        raise WalletLockedError(f"the environment variable {name} (wallet passphrase) is not set")
    return _clean_passphrase(value.encode("utf-8"), f"${name}")


def configured_passphrase(section: WalletSection, env: Mapping[str, str]) -> bytes | None:
    """The wallet passphrase the configuration points at, or None for a key-file wallet.

    Order: ``passphrase_file``, ``passphrase_env``, then the systemd credential
    ``$CREDENTIALS_DIRECTORY/wallet-passphrase`` if it exists.
    """
    if section.passphrase_file is not None:
        return read_passphrase_file(section.passphrase_file)
    if section.passphrase_env is not None:
        return read_passphrase_env(section.passphrase_env, env)
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        path = Path(creds) / PASSPHRASE_CREDENTIAL
        if path.exists():
            return read_passphrase_file(path)
    return None


def _pending_key_file(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".new")


def _write_key_file(path: Path, key: bytes) -> None:
    """Write ``key`` to ``path`` (mode 0600) durably, replacing nothing half-way."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key_file(path: Path) -> bytes:
    """The wrapping key from a key file, refusing one others may read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise WalletLockedError(
            f"the wallet key file {path} is missing; restore it from backup, or use the wallet's "
            "passphrase if it has one"
        ) from None
    if st.st_mode & 0o077:
        raise DaemonError(
            "permission",
            f"the wallet key file {path} is accessible by other users (mode {st.st_mode & 0o777:04o}); "
            f"run: chmod 600 {path}",
        )
    data = path.read_bytes()
    if len(data) != KEY_BYTES:
        raise WalletLockedError(f"the wallet key file {path} is not a {KEY_BYTES}-byte key")
    return data


# -- the wallet record -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Protection:
    mode: str
    wrapping_key: bytes = field(repr=False)
    salt: bytes | None = None


def _protection_record(data_key: bytes, prot: _Protection) -> dict[str, Any]:
    return {
        "v": WALLET_VERSION,
        "mode": prot.mode,
        "salt": prot.salt,
        "opslimit": KDF_OPSLIMIT,
        "memlimit": KDF_MEMLIMIT,
        "check": _check_value(prot.wrapping_key),
        "wrapped": seal(prot.wrapping_key, data_key, _AD_WRAP),
    }


def _passphrase_protection(passphrase: bytes) -> _Protection:
    salt = nacl.utils.random(SALT_BYTES)
    return _Protection(MODE_PASSPHRASE, derive_key(passphrase, salt), salt)


def _record_field(record: dict[str, Any], name: str, kind: type) -> Any:
    value = record.get(name)
    if not isinstance(value, kind):
        raise StoreError(f"the wallet record is damaged (field {name!r})")
    return value


def _unwrap(record: dict[str, Any], wrapping_key: bytes) -> bytes | None:
    """The data key if ``wrapping_key`` is right; None if it is the wrong key."""
    if not hmac.compare_digest(_check_value(wrapping_key), _record_field(record, "check", bytes)):
        return None
    data_key = open_sealed(wrapping_key, _record_field(record, "wrapped", bytes), _AD_WRAP)
    if data_key is None or len(data_key) != KEY_BYTES:
        raise StoreError("the wallet record is damaged: the key matches but the data key does not open")
    return data_key


def _unlock_record(record: dict[str, Any], passphrase: bytes | None, key_file: Path) -> bytes:
    mode = record.get("mode")
    if record.get("v") != WALLET_VERSION:
        raise StoreError(f"unknown wallet record version {record.get('v')!r}")
    if mode == MODE_PASSPHRASE:
        if passphrase is None:
            raise WalletLockedError(
                "the wallet is protected by a passphrase, but none is configured "
                "(set wallet.passphrase_file or wallet.passphrase_env, or provide the "
                f"systemd credential {PASSPHRASE_CREDENTIAL})"
            )
        key = derive_key(
            passphrase,
            _record_field(record, "salt", bytes),
            _record_field(record, "opslimit", int),
            _record_field(record, "memlimit", int),
        )
        data_key = _unwrap(record, key)
        if data_key is None:
            raise WalletLockedError("wrong wallet passphrase")
        return data_key
    if mode == MODE_KEYFILE:
        data_key = None
        if key_file.exists():
            data_key = _unwrap(record, read_key_file(key_file))
        pending = _pending_key_file(key_file)
        if data_key is None and pending.exists():
            # An interrupted switch to a new key file: the store already expects it.
            data_key = _unwrap(record, read_key_file(pending))
            if data_key is not None:
                os.replace(pending, key_file)
                _log.warning("wallet.key_file_recovered", key_file=str(key_file))
        if data_key is None:
            if not key_file.exists():
                read_key_file(key_file)  # raises the "missing" error
            raise WalletLockedError(f"the wallet key file {key_file} does not belong to this wallet")
        return data_key
    raise StoreError(f"unknown wallet protection mode {mode!r}")


# -- the wallet ------------------------------------------------------------------------------


class Wallet:
    """The unlocked wallet: seals new keys, opens stored ones, resolves secrets by kid."""

    def __init__(self, data_key: bytes, mode: str, rows: Iterable[KeyRow] = ()) -> None:
        self._data_key = data_key
        self.mode = mode
        self._sealed: dict[str, KeyRow] = {}
        self._open: dict[str, PrivateKey] = {}
        #: Records of an older store that the unlock sealed (their old contents stay in
        #: the store's files until a checkpoint: see AsyncStore.checkpoint_all).
        self.sealed_at_unlock = 0
        self.add_rows(rows)

    def __repr__(self) -> str:
        return f"<Wallet mode={self.mode} keys={len(self._sealed)}>"

    def add_rows(self, rows: Iterable[KeyRow]) -> None:
        """Know these sealed keys (after they are stored)."""
        for row in rows:
            self._sealed[row.kid] = row

    def seal(self, kid: str, did: str, key: PrivateKey, created: int) -> KeyRow:
        """Seal a private key for storage (not yet known to the wallet: see :meth:`add_rows`)."""
        plaintext = encode_record({"crv": key.curve, "d": key.secret})
        return KeyRow(kid, did, key.curve, created, seal(self._data_key, plaintext, _AD_KEY + kid.encode()))

    def _open_row(self, row: KeyRow) -> PrivateKey:
        plaintext = open_sealed(self._data_key, row.sealed, _AD_KEY + row.kid.encode())
        if plaintext is None:
            raise StoreError(f"the stored private key {row.kid} does not decrypt (damaged or moved)")
        record = decode_record(plaintext)
        try:
            return PrivateKey.from_raw(record["crv"], record["d"])
        except (KeyError, TypeError, DIDCommError):
            raise StoreError(f"the stored private key {row.kid} is damaged") from None

    # SecretsResolver ----------------------------------------------------------------------

    def get_key(self, kid: str) -> PrivateKey | None:
        """The private key for ``kid``, or None if the wallet does not hold it."""
        key = self._open.get(kid)
        if key is None:
            row = self._sealed.get(kid)
            if row is None:
                return None
            key = self._open[kid] = self._open_row(row)
        return key

    def find_keys(self, kids: Iterable[str]) -> list[str]:
        """The subset of ``kids`` the wallet holds, in order."""
        return [kid for kid in kids if kid in self._sealed]

    def kids(self, did: str | None = None) -> list[str]:
        """Every kid held (only ``did``'s if given)."""
        return [kid for kid, row in self._sealed.items() if did is None or row.did == did]

    def rows(self) -> list[KeyRow]:
        """Every sealed key row."""
        return list(self._sealed.values())

    # Other secrets (the libp2p peer identity), sealed under the same data key -------------

    def seal_secret(self, name: str, data: bytes) -> bytes:
        """Seal ``data`` for storage under ``name`` (bound to it as associated data)."""
        return seal(self._data_key, data, _AD_SECRET + name.encode())

    def open_secret(self, name: str, sealed: bytes) -> bytes:
        """Open what :meth:`seal_secret` sealed under ``name``; StoreError if it does not open."""
        data = open_sealed(self._data_key, sealed, _AD_SECRET + name.encode())
        if data is None:
            raise StoreError(f"the stored secret {name!r} does not decrypt (damaged or moved)")
        return data


def unlock(
    store: Store, *, passphrase: bytes | None, key_file: Path, create: bool = True
) -> tuple[Wallet, bool]:
    """Open the wallet in ``store`` (creating it if absent and ``create``).

    Returns the wallet and whether it was created.  A new wallet uses the
    passphrase if one is given, otherwise a key file (written now if missing).
    Runs Argon2id when a passphrase is involved: call from a worker thread.
    """
    record = store.meta_get(META_NAME)
    if record is None:
        if not create:
            raise NotFoundError(f"no wallet in {store.path}; run 'didcommd wallet init'")
        if store.keys_all():
            raise StoreError("the store holds keys but no wallet record (damaged store)")
        data_key = nacl.utils.random(KEY_BYTES)
        if passphrase is not None:
            prot = _passphrase_protection(passphrase)
        else:
            if key_file.exists():
                wrapping_key = read_key_file(key_file)
            else:
                wrapping_key = nacl.utils.random(KEY_BYTES)
                _write_key_file(key_file, wrapping_key)
                _log.info("wallet.key_file_created", key_file=str(key_file))
            prot = _Protection(MODE_KEYFILE, wrapping_key)
        store.meta_put(META_NAME, _protection_record(data_key, prot))
        _log.info("wallet.created", mode=prot.mode)
        _unseal_store(store, data_key)
        return Wallet(data_key, prot.mode, ()), True
    if not isinstance(record, dict):
        raise StoreError("the wallet record is damaged")
    if passphrase is not None and record.get("mode") == MODE_KEYFILE:
        _log.warning("wallet.passphrase_ignored",
                     reason="this wallet uses a key file; run 'didcommd wallet passphrase' to set one")
    data_key = _unlock_record(record, passphrase, key_file)
    wallet = Wallet(data_key, record["mode"], store.keys_all())
    wallet.sealed_at_unlock = _unseal_store(store, data_key)
    _log.info("wallet.unlocked", mode=wallet.mode, keys=len(wallet.kids()))
    return wallet, False


def _unseal_store(store: Store, data_key: bytes) -> int:
    # The data key also seals the store's personal records; a store written
    # before records were sealed has them sealed now, once.
    store.use_sealer(RecordSealer(data_key))
    sealed = store.seal_legacy_records()
    if sealed:
        _log.info("store.records_sealed", records=sealed)
    filled = store.fill_record_dids()
    if filled:
        _log.info("store.record_dids_filled", records=filled)
    return sealed


def change_protection(
    store: Store, *, current: bytes | None, new: bytes | None, key_file: Path
) -> str:
    """Re-wrap the data key: under passphrase ``new``, or under a new key file if None.

    ``current`` is the passphrase that opens it now (None for a key-file wallet).
    Returns the new mode.  Records are not re-encrypted.
    """
    record = store.meta_get(META_NAME)
    if not isinstance(record, dict):
        raise NotFoundError(f"no wallet in {store.path}; run 'didcommd wallet init'")
    data_key = _unlock_record(record, current, key_file)
    old_mode = record["mode"]
    if new is not None:
        prot = _passphrase_protection(new)
        store.meta_put(META_NAME, _protection_record(data_key, prot))
        if old_mode == MODE_KEYFILE:
            # The old key file would open the old record in any copy of the store.
            key_file.unlink(missing_ok=True)
            _fsync_dir(key_file.parent)
    else:
        wrapping_key = nacl.utils.random(KEY_BYTES)
        pending = _pending_key_file(key_file)
        _write_key_file(pending, wrapping_key)
        store.meta_put(META_NAME, _protection_record(data_key, _Protection(MODE_KEYFILE, wrapping_key)))
        os.replace(pending, key_file)
        _fsync_dir(key_file.parent)
    _log.info("wallet.protection_changed", old_mode=old_mode, mode=MODE_PASSPHRASE if new else MODE_KEYFILE)
    return MODE_PASSPHRASE if new is not None else MODE_KEYFILE


# -- creating DIDs ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewDID:
    """A freshly made DID: its document and its private keys by kid."""

    did: str
    method: str
    doc: dict[str, Any]
    keys: dict[str, PrivateKey] = field(repr=False)


def _kid_for(doc_vms: Iterable[Any], public: PublicKey) -> str:
    for vm in doc_vms:
        if vm.usable and vm.public_key == public:
            return str(vm.id)
    raise DaemonError("internal", "a new DID's document does not list its own key")


DID_METHODS = ("key", "peer")


def new_did(method: str, *, services: list[dict[str, Any]] | None = None) -> NewDID:
    """Make keys and a DID: ``key`` (did:key, Ed25519) or ``peer`` (did:peer:2).

    ``services`` (did:peer only) are DID document services in full form, e.g. a
    ``DIDCommMessaging`` service with a ``libp2p-peerId:`` endpoint.
    """
    ed = PrivateKey.generate("Ed25519")
    if method == "key":
        if services:
            raise InvalidParamsError("a did:key cannot carry services; use method 'peer'")
        did = create_did_key(ed.public)
        # The did:key document's key-agreement key is the X25519 twin of the Ed25519 key.
        _pk, sk64 = sodium.crypto_sign_seed_keypair(ed.secret)
        x = PrivateKey.from_raw("X25519", sodium.crypto_sign_ed25519_sk_to_curve25519(sk64))
    elif method == "peer":
        x = PrivateKey.generate("X25519")
        did = create_did_peer_2([ed.public], [x.public], list(services or []))
    else:
        raise InvalidParamsError(f"unknown DID method {method!r} (use one of: {', '.join(DID_METHODS)})")
    doc = default_resolver().resolve(did)
    vms = list(doc.verification_methods.values())
    keys = {_kid_for(vms, ed.public): ed, _kid_for(vms, x.public): x}
    return NewDID(did, method, doc.to_json(), keys)


# -- backups ----------------------------------------------------------------------------------

#: The issue-credential threads a backup carries: the finished ones, by role (the
#: issuer's ``credential.revoke`` and the holder's status refresh find a credential's
#: thread, and the peer it was issued over, through them).  Pending exchanges are not
#: carried: their messages in flight are not either.
BACKUP_EXCHANGE_STATES = (("issuer", issue_credential.CREDENTIAL_ISSUED), ("holder", issue_credential.DONE))
#: Most rows of one kind a backup may restore (a hostile file is refused, not half-read).
MAX_BACKUP_ROWS = 1_000_000
#: Longest id, DID, URI or state a backup's row may name (characters).
MAX_BACKUP_TEXT_CHARS = 16 * 1024


def backup_content(store: Store, wallet: Wallet) -> dict[str, Any]:
    """What a backup holds (see :func:`export_backup`), before it is sealed."""
    keys = []
    for row in wallet.rows():
        key = wallet.get_key(row.kid)
        assert key is not None
        keys.append({"kid": row.kid, "did": row.did, "crv": key.curve, "d": key.secret,
                     "created": row.created})
    dids = [
        {"did": r.did, "own": r.own, "method": r.method, "label": r.label, "created": r.created,
         "record": r.record}
        for r in store.did_list(own=None)
    ]
    content: dict[str, Any] = {"v": BACKUP_VERSION, "keys": keys, "dids": dids, "docs": store.docs_all()}
    # Optional members: older backups lack them, older daemons ignore them.
    sealed_identity = store.meta_get(PEER_IDENTITY_SECRET)
    if isinstance(sealed_identity, bytes):
        content["p2p_identity"] = bytes(wallet.open_secret(PEER_IDENTITY_SECRET, sealed_identity))
    # Records are read through the store, which opens what it sealed.  No transaction:
    # export runs beside the daemon, whose writes must not wait for it.  The lists are
    # read before their entries, so every entry of a list is there; a revocation in
    # between is in its entry, which import trusts over the packed copy.
    content["credentials"] = store.credential_rows()
    content["connections"] = store.connection_list()
    content["exchanges"] = [
        r for role, state in BACKUP_EXCHANGE_STATES
        for r in store.records_by_state(issue_credential.PIURI, role, state)
    ]
    content["held_status_lists"] = [
        {"uri": h.uri, "issuer": h.issuer, "format": h.format, "issued_at": h.issued_at,
         "fetched_at": h.fetched_at, "record": h.record}
        for h in store.held_lists_all()
    ]
    lists = store.status_lists_all()
    content["status_lists"] = [
        {"uri": r.uri, "issuer": r.issuer, "format": r.format, "n": r.n, "size": r.size, "used": r.used,
         "updated": r.updated, "statuses": r.statuses, "bits": r.bits}
        for r in lists
    ]
    content["status_entries"] = [
        {"uri": e.uri, "idx": e.idx, "thid": e.thid, "credential_id": e.credential_id, "status": e.status,
         "updated": e.updated}
        for r in lists for e in store.status_entries_of(r.uri)
    ]
    return content


def backup_summary(content: dict[str, Any]) -> dict[str, Any]:
    """How much of each kind a backup's content holds (what ``wallet export`` reports)."""
    own = sum(1 for d in content.get("dids", []) if d.get("own"))
    return {
        "keys": len(content.get("keys", [])),
        "dids": own,
        "docs": len(content.get("docs", {})),
        "credentials": len(content.get("credentials", [])),
        "connections": len(content.get("connections", [])),
        "exchanges": len(content.get("exchanges", [])),
        "held_lists": len(content.get("held_status_lists", [])),
        "status_lists": len(content.get("status_lists", [])),
        "status_indexes": len(content.get("status_entries", [])),
        "peer_identity": "p2p_identity" in content,
    }


def seal_backup(content: dict[str, Any], passphrase: bytes) -> bytes:
    """Backup file content (JSON) sealing ``content`` under ``passphrase`` (Argon2id, fresh salt)."""
    payload = encode_record(content)
    if len(payload) > MAX_BACKUP_BYTES // 2:
        # Base64 makes it 4/3 larger: past this the file would be refused on import.
        raise BackupError(f"the wallet is too large to back up (over {MAX_BACKUP_BYTES // 2} bytes)")
    salt = nacl.utils.random(SALT_BYTES)
    sealed = seal(derive_key(passphrase, salt), payload, _AD_BACKUP)
    text = json_dumps({
        "format": BACKUP_FORMAT,
        "version": BACKUP_VERSION,
        "kdf": {"alg": "argon2id", "salt": b64u_encode(salt), "opslimit": KDF_OPSLIMIT,
                "memlimit": KDF_MEMLIMIT},
        "sealed": b64u_encode(sealed),
    })
    return (text + "\n").encode()


def export_backup(store: Store, wallet: Wallet, passphrase: bytes) -> bytes:
    """The wallet as a backup file's content (JSON), sealed under ``passphrase``: every key,
    DID and DID document, the peer identity, credentials, connections, the finished
    issue-credential threads, held status lists, and our own status lists with every
    index they handed out."""
    return seal_backup(backup_content(store, wallet), passphrase)


class BackupError(DaemonError):
    """A backup file cannot be read: not a backup, wrong passphrase, or damaged."""

    code = INVALID_BACKUP

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


def _open_backup(data: bytes, passphrase: bytes) -> dict[str, Any]:
    if len(data) > MAX_BACKUP_BYTES:
        raise BackupError(f"the backup file is larger than {MAX_BACKUP_BYTES} bytes")
    try:
        outer = json_object(data, "backup file")
        if outer.get("format") != BACKUP_FORMAT:
            raise BackupError("not a didcommd wallet backup file")
        if outer.get("version") != BACKUP_VERSION:
            raise BackupError(f"unsupported backup version {outer.get('version')!r}")
        kdf = outer.get("kdf")
        if not isinstance(kdf, dict) or kdf.get("alg") != "argon2id":
            raise BackupError("the backup file's key derivation is not argon2id")
        salt = b64u_decode(kdf.get("salt", ""), "salt")
        sealed = b64u_decode(outer.get("sealed", ""), "sealed")
        ops, mem = kdf.get("opslimit"), kdf.get("memlimit")
    except DIDCommError as exc:
        raise BackupError(f"the backup file is malformed: {exc}") from None
    if not isinstance(ops, int) or not isinstance(mem, int):
        raise BackupError("the backup file's key derivation limits are malformed")
    try:
        key = derive_key(passphrase, salt, ops, mem)
    except StoreError as exc:
        raise BackupError(f"the backup file's key derivation is unacceptable: {exc}") from None
    payload = open_sealed(key, sealed, _AD_BACKUP)
    if payload is None:
        raise BackupError("wrong backup passphrase (or the backup file was altered)")
    try:
        content = cbor2.loads(payload)
    except (cbor2.CBORDecodeError, ValueError, EOFError, TypeError, RecursionError):
        raise BackupError("the backup content is damaged") from None
    if not isinstance(content, dict) or content.get("v") != BACKUP_VERSION:
        raise BackupError("the backup content is damaged")
    return content


# -- checking a backup's rows (each failure names the member and the field) -----------------------


def _rows(content: dict[str, Any], member: str) -> list[dict[str, Any]]:
    """The optional member ``member``: a list of maps (empty if absent)."""
    value = content.get(member, [])
    if not isinstance(value, list):
        raise BackupError(f"the backup's {member} are damaged (not a list)")
    if len(value) > MAX_BACKUP_ROWS:
        raise BackupError(f"the backup holds more than {MAX_BACKUP_ROWS} {member}")
    for item in value:
        if not isinstance(item, dict):
            raise BackupError(f"the backup's {member} are damaged (an entry is not a map)")
    return value


def _text(item: dict[str, Any], name: str, member: str, *, optional: bool = False) -> Any:
    value = item.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_BACKUP_TEXT_CHARS:
        raise BackupError(f"the backup's {member} are damaged (field {name!r})")
    return value


def _int(item: dict[str, Any], name: str, member: str, *, low: int = 0, high: int = 2**63 - 1) -> int:
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BackupError(f"the backup's {member} are damaged (field {name!r})")
    return value


def _map(item: dict[str, Any], name: str, member: str) -> dict[str, Any]:
    value = item.get(name)
    if not isinstance(value, dict):
        raise BackupError(f"the backup's {member} are damaged (field {name!r})")
    return value


def _check_connection(row: dict[str, Any]) -> None:
    if not Connection.row_is_usable(row):
        raise BackupError(f"the backup's connection {row['id']} is damaged")


@dataclass(frozen=True)
class _Restorable:
    """A backup's optional members, checked: what :func:`import_backup` merges."""

    credentials: list[dict[str, Any]]
    connections: list[dict[str, Any]]
    exchanges: list[ProtocolRecord]
    held: list[HeldStatusListRow]
    lists: list[StatusListRow]
    entries: dict[str, list[StatusEntryRow]]


def _check_content(content: dict[str, Any]) -> _Restorable:
    credentials = []
    for c in _rows(content, "credentials"):
        credentials.append({"id": _text(c, "id", "credentials"),
                            "issuer": _text(c, "issuer", "credentials", optional=True),
                            "subject": _text(c, "subject", "credentials", optional=True),
                            "created": _int(c, "created", "credentials"),
                            "record": _map(c, "record", "credentials")})
        if credentials[-1]["record"].get("id") != credentials[-1]["id"]:
            raise BackupError("the backup's credentials are damaged (a record names another id)")
    connections = []
    for c in _rows(content, "connections"):
        connections.append({"id": _text(c, "id", "connections"),
                            "my_did": _text(c, "my_did", "connections"),
                            "their_did": _text(c, "their_did", "connections"),
                            "state": _text(c, "state", "connections"),
                            "updated": _int(c, "updated", "connections"),
                            "record": _map(c, "record", "connections")})
        _check_connection(connections[-1])
    exchanges = []
    for raw in _rows(content, "exchanges"):
        try:
            record = ProtocolRecord.from_dict(raw)
        except DIDCommError as exc:
            raise BackupError(f"the backup's exchanges are damaged ({exc.message})") from None
        if record.protocol != issue_credential.PIURI or (record.role, record.state) not in BACKUP_EXCHANGE_STATES:
            raise BackupError("the backup's exchanges are damaged (not a finished issue-credential thread)")
        for name in ("thid", "protocol", "role", "state"):
            _text(raw, name, "exchanges")
        _int(raw, "updated_time", "exchanges")
        exchanges.append(record)
    held = []
    for h in _rows(content, "held_status_lists"):
        held.append(HeldStatusListRow(
            _text(h, "uri", "held_status_lists"), _text(h, "issuer", "held_status_lists"),
            _text(h, "format", "held_status_lists"), _int(h, "issued_at", "held_status_lists"),
            _int(h, "fetched_at", "held_status_lists"), _map(h, "record", "held_status_lists")))
    lists: list[StatusListRow] = []
    for r in _rows(content, "status_lists"):
        m = "status_lists"
        row = StatusListRow(_text(r, "uri", m), _text(r, "issuer", m), _text(r, "format", m), _int(r, "n", m),
                            _int(r, "size", m, low=1, high=status_list.MAX_LIST_BYTES * 8),
                            _int(r, "used", m), _int(r, "updated", m), r.get("statuses"),  # type: ignore[arg-type]
                            # A backup from before suspension has 1-bit lists and says nothing.
                            r.get("bits", 1))
        if row.format not in revocation.URI_SEGMENTS or row.uri != revocation.list_uri(row.issuer, row.format, row.n):
            raise BackupError(f"the backup's status list {row.uri!r} is damaged (its URI does not name it)")
        if isinstance(row.bits, bool) or not isinstance(row.bits, int) or row.bits not in STATUS_BITS:
            raise BackupError(f"the backup's status list {row.uri} is damaged (its bits)")
        if not isinstance(row.statuses, bytes) or len(row.statuses) != (row.size * row.bits + 7) // 8:
            raise BackupError(f"the backup's status list {row.uri} is damaged (its entries)")
        if any(x.uri == row.uri for x in lists):
            raise BackupError(f"the backup holds the status list {row.uri} twice")
        lists.append(row)
    sizes = {r.uri: r.size for r in lists}
    widths = {r.uri: r.bits for r in lists}
    entries: dict[str, list[StatusEntryRow]] = {uri: [] for uri in sizes}
    seen: set[tuple[str, int]] = set()
    for e in _rows(content, "status_entries"):
        m = "status_entries"
        uri = _text(e, "uri", m)
        if uri not in sizes:
            raise BackupError(f"the backup's status entries name a list it does not hold ({uri!r})")
        idx = _int(e, "idx", m, high=sizes[uri] - 1)
        if (uri, idx) in seen:
            raise BackupError(f"the backup's status entries hand out index {idx} of {uri} twice")
        seen.add((uri, idx))
        entries[uri].append(StatusEntryRow(
            uri, idx, _text(e, "thid", m), _text(e, "credential_id", m, optional=True),
            _int(e, "status", m, high=(1 << widths[uri]) - 1), _int(e, "updated", m)))
    return _Restorable(credentials, connections, exchanges, held, lists, entries)


#: Bits per entry a backed-up list may have: 1 (before suspension) or revocation.LIST_BITS.
STATUS_BITS = frozenset({1, revocation.LIST_BITS})


def _with_entries(statuses: bytes, entries: Iterable[StatusEntryRow], uri: str, bits: int, size: int) -> bytes:
    """A list's packed entries (``size`` of ``bits``) with each handed-out index set to its entry's status."""
    packed = status_list.StatusList.from_bytes(statuses, bits=bits, size=size)
    try:
        for e in entries:
            packed.set(e.idx, e.status)
    except DIDCommError as exc:
        raise BackupError(f"the backup's status list {uri} is damaged: {exc.message}") from None
    return packed.to_bytes()


def _merge_status_list(store: Store, row: StatusListRow, entries: list[StatusEntryRow]) -> tuple[bool, int, int]:
    """We already have a list at ``row.uri``: the existing list is kept, and every index the
    backup's list handed out is added to it as handed out (with its thread, credential and
    status), so neither list's indexes are ever given again and the restored credentials
    stay revocable.  An index both handed out (to different threads) cannot be told apart:
    the existing entry stays.  Returns (a conflict: the list here has entries the backup's
    lacks, i.e. we issued from it before restoring; indexes added; indexes shared)."""
    existing = store.status_list_get(row.uri)
    assert existing is not None
    here = {e.idx: e.thid for e in store.status_entries_of(row.uri)}
    free = [e for e in entries if e.idx not in here and e.idx < existing.size]
    shared = sum(1 for e in entries if here.get(e.idx, e.thid) != e.thid or e.idx >= existing.size)
    ours = {(e.idx, e.thid) for e in entries}
    conflict = shared > 0 or any((idx, thid) not in ours for idx, thid in here.items())
    bits = max(existing.bits, row.bits)  # a suspended entry of the backup's needs 2 bits here too
    current = (status_list.StatusList.from_bytes(existing.statuses, bits=existing.bits, size=existing.size)
               .widened(bits).to_bytes() if existing.statuses
               else status_list.StatusList(existing.size, bits=bits).to_bytes())
    added = store.status_entries_restore(row.uri, free, _with_entries(current, free, row.uri, bits, existing.size),
                                         now=row.updated, bits=bits)
    return conflict, added, shared


def _start_new_lists(store: Store, restored: list[StatusListRow]) -> int:
    """Start a new, empty list for each issuer and format the backup had lists of, so that
    issuance goes on there: a backup is older than the wallet it was made from, and the
    indexes handed out after it was made are in no backup; they must never be handed out
    again (revoking the new credential would revoke the old one).  The restored lists
    keep serving, and revoking, what they hold.  Only when the current list is one the
    backup had, and has indexes handed out: a current list the backup does not have
    (started by an earlier import, or since) is used as it is.  Returns how many were started."""
    started = 0
    now = int(time.time())
    backup_uris = {r.uri for r in restored}
    for issuer, fmt in sorted({(r.issuer, r.format) for r in restored}):
        current = store.status_list_current(issuer, fmt)
        if current is None or current.uri not in backup_uris or current.used == 0:
            continue
        n = current.n + 1
        store.status_list_create(StatusListRow(
            revocation.list_uri(issuer, fmt, n), issuer, fmt, n, current.size, 0, now,
            status_list.StatusList(current.size, bits=revocation.LIST_BITS).to_bytes(), revocation.LIST_BITS))
        started += 1
    return started


def import_backup(store: Store, wallet: Wallet, data: bytes, passphrase: bytes) -> dict[str, Any]:
    """Merge a backup into the wallet, in one transaction: nothing already here is replaced.

    Kids, DIDs, credentials, connections and threads already present are kept; a held
    status list only gives way to a newer copy (``issued_at``); one of our status lists
    absent here is restored with every index it handed out, one present here (we issued
    from a fresh wallet before restoring) is kept and the backup's indexes merged into it
    (:func:`_merge_status_list`), reported and logged.  Returns counts of what was added:
    ``keys``, ``dids``, ``docs``, ``credentials``, ``connections``, ``exchanges``,
    ``held_lists``, ``status_lists`` (restored), ``status_lists_conflicting``,
    ``status_indexes`` (handed-out indexes restored), ``status_indexes_shared`` (handed
    out by both), ``status_lists_started`` (new lists issuance goes on in: see
    :func:`_start_new_lists`), and ``peer_id`` when the backup carried the peer identity
    (then restored).
    """
    from .p2p.errors import IdentityError
    from .p2p.identity import PeerIdentity
    from .store import DIDRow

    content = _open_backup(data, passphrase)
    try:
        rows: list[KeyRow] = []
        for item in content["keys"]:
            key = PrivateKey.from_raw(item["crv"], item["d"])
            rows.append(wallet.seal(str(item["kid"]), str(item["did"]), key, int(item["created"])))
        dids = [
            DIDRow(str(d["did"]), bool(d["own"]), str(d["method"]), d["label"], int(d["created"]),
                   dict(d["record"]))
            for d in content["dids"]
        ]
        docs = {str(did): dict(doc) for did, doc in content["docs"].items()}
        identity_data = content.get("p2p_identity")
        identity = None if identity_data is None else PeerIdentity.from_bytes(identity_data)
    except (KeyError, TypeError, ValueError, AttributeError, DIDCommError, IdentityError):
        raise BackupError("the backup content is damaged") from None
    rest = _check_content(content)
    counts: dict[str, Any] = {"keys": 0, "dids": 0, "docs": len(docs), "credentials": 0, "connections": 0,
                              "exchanges": 0, "held_lists": 0, "status_lists": 0, "status_lists_conflicting": 0,
                              "status_indexes": 0, "status_indexes_shared": 0, "status_lists_started": 0}
    conflicts: list[tuple[str, int, int]] = []
    try:
        with store.transaction():
            counts["keys"] = store.keys_put(rows)
            counts["dids"] = sum(store.did_put(d) for d in dids)
            for did, doc in docs.items():
                if store.doc_get(did) is None:
                    store.doc_put(did, doc, max((d.created for d in dids if d.did == did), default=0))
            if identity is not None:
                store.meta_put(PEER_IDENTITY_SECRET,
                               wallet.seal_secret(PEER_IDENTITY_SECRET, identity.to_bytes()))
            # Personal records go in through the store, sealed under this wallet's key.
            for c in rest.credentials:
                counts["credentials"] += store.credential_add(
                    c["id"], issuer=c["issuer"], subject=c["subject"], created=c["created"], record=c["record"])
            for c in rest.connections:
                counts["connections"] += store.connection_add(
                    c["id"], my_did=c["my_did"], their_did=c["their_did"], state=c["state"],
                    updated=c["updated"], record=c["record"])
            for r in rest.exchanges:
                counts["exchanges"] += store.record_add(
                    r.protocol, r.thid, r.role, state=r.state, updated=r.updated_time, record=r.to_dict())
            for h in rest.held:
                current = store.held_list_get(h.uri)
                if current is None or h.issued_at > current.issued_at:
                    store.held_list_put(h)
                    counts["held_lists"] += 1
            for lst in rest.lists:
                entries = rest.entries[lst.uri]
                if store.status_list_get(lst.uri) is None:
                    store.status_list_restore(
                        replace(lst, statuses=_with_entries(lst.statuses, entries, lst.uri, lst.bits, lst.size)), entries)
                    counts["status_lists"] += 1
                    counts["status_indexes"] += len(entries)
                else:
                    conflict, added, shared = _merge_status_list(store, lst, entries)
                    counts["status_indexes"] += added
                    counts["status_indexes_shared"] += shared
                    if conflict:
                        counts["status_lists_conflicting"] += 1
                        conflicts.append((lst.uri, added, shared))
            counts["status_lists_started"] = _start_new_lists(store, rest.lists)
    except StoreError as exc:
        # What the checks above let through but the store refuses: nothing was written.
        raise BackupError(f"the backup cannot be restored here: {exc.message}") from None
    known = set(wallet.kids())
    wallet.add_rows(r for r in rows if r.kid not in known)
    for uri, added, shared in conflicts:
        _log.warning("wallet.import_status_list_conflict", uri=uri, merged_indexes=added, shared_indexes=shared,
                     reason="this wallet already had the list (it issued before the restore); kept it and "
                            "marked the backup's indexes as handed out")
    _log.info("wallet.imported", **{k: v for k, v in counts.items() if k != "docs"},
              peer_id=None if identity is None else identity.peer_id)
    if identity is not None:
        counts["peer_id"] = identity.peer_id
    return counts


__all__ = [
    "KDF_MEMLIMIT",
    "KDF_OPSLIMIT",
    "BackupError",
    "NewDID",
    "Wallet",
    "backup_content",
    "backup_summary",
    "change_protection",
    "configured_passphrase",
    "export_backup",
    "import_backup",
    "new_did",
    "read_key_file",
    "read_passphrase_env",
    "read_passphrase_file",
    "seal_backup",
    "unlock",
]

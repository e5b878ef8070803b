"""The wallet as a specification: keys sealed at rest, passphrases, key files, backups, the CLI."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

from daemon import cli, revocation
from daemon import wallet as walletlib
from daemon.config import WalletSection
from daemon.errors import DaemonError, StoreError, WalletLockedError
from daemon.logs import NOISY_LOGGERS
from daemon.sealing import RecordSealer
from daemon.store import DIDRow, KeyRow, StatusEntryRow, Store
from daemon.wallet import BackupError, Wallet, unlock
from protocols import issue_credential, status_list
from protocols.codec import b64u_decode, b64u_encode, json_dumps
from protocols.did.resolver import default_resolver
from protocols.framework import ProtocolRecord
from protocols.keys import PrivateKey

REPO = Path(__file__).resolve().parents[2]
PASS = b"correct horse battery staple"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "w.sqlite3")
    yield s
    s.close()


def add_did(store: Store, wallet: Wallet, method: str = "peer", label: str | None = None) -> walletlib.NewDID:
    """What the agent does on did.create, without the agent."""
    new = walletlib.new_did(method)
    rows = [wallet.seal(kid, new.did, key, 1) for kid, key in new.keys.items()]
    store.keys_put(rows)
    store.did_put(DIDRow(new.did, True, method, label, 1, {"kids": list(new.keys)}))
    store.doc_put(new.did, new.doc, 1)
    wallet.add_rows(rows)
    return new


# -- key files ----------------------------------------------------------------------------------


def test_first_start_writes_a_private_key_file_and_reopens_with_it(store: Store, tmp_path: Path) -> None:
    key_file = tmp_path / "state" / "wallet.key"
    wallet, created = unlock(store, passphrase=None, key_file=key_file)
    assert created and wallet.mode == "keyfile"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_bytes()) == 32
    new = add_did(store, wallet)

    again, created = unlock(store, passphrase=None, key_file=key_file)
    assert not created
    for kid, key in new.keys.items():
        opened = again.get_key(kid)
        assert opened is not None and opened.secret == key.secret
    assert again.get_key(new.did + "#nope") is None
    assert again.find_keys([new.did + "#nope", *new.keys]) == list(new.keys)


def test_key_file_problems_are_clear_errors(store: Store, tmp_path: Path) -> None:
    key_file = tmp_path / "wallet.key"
    unlock(store, passphrase=None, key_file=key_file)

    key_file.chmod(0o644)
    with pytest.raises(DaemonError, match="chmod 600") as info:
        unlock(store, passphrase=None, key_file=key_file)
    assert info.value.code == "permission"

    key_file.chmod(0o600)
    original = key_file.read_bytes()
    key_file.write_bytes(os.urandom(32))
    with pytest.raises(WalletLockedError, match="does not belong to this wallet"):
        unlock(store, passphrase=None, key_file=key_file)

    key_file.unlink()
    with pytest.raises(WalletLockedError, match="missing") as missing:
        unlock(store, passphrase=None, key_file=key_file)
    assert missing.value.code == "wallet_locked"

    key_file.write_bytes(original[:16])
    key_file.chmod(0o600)
    with pytest.raises(WalletLockedError, match="32-byte"):
        unlock(store, passphrase=None, key_file=key_file)


# -- passphrases ------------------------------------------------------------------------------


def test_passphrase_wallet_and_a_wrong_passphrase(store: Store, tmp_path: Path) -> None:
    key_file = tmp_path / "wallet.key"
    wallet, _ = unlock(store, passphrase=PASS, key_file=key_file)
    assert wallet.mode == "passphrase" and not key_file.exists()
    new = add_did(store, wallet, "key")

    with pytest.raises(WalletLockedError) as wrong:
        unlock(store, passphrase=b"Correct horse battery staple", key_file=key_file)
    assert str(wrong.value) == "wrong wallet passphrase"
    assert wrong.value.code == "wallet_locked"
    with pytest.raises(WalletLockedError, match="none is configured"):
        unlock(store, passphrase=None, key_file=key_file)

    again, _ = unlock(store, passphrase=PASS, key_file=key_file)
    kid = next(iter(new.keys))
    assert again.get_key(kid).secret == new.keys[kid].secret  # type: ignore[union-attr]


def test_changing_the_passphrase_rewraps_without_reencrypting(store: Store, tmp_path: Path) -> None:
    key_file = tmp_path / "wallet.key"
    wallet, _ = unlock(store, passphrase=None, key_file=key_file)
    new = add_did(store, wallet)
    sealed_before = {r.kid: r.sealed for r in store.keys_all()}

    assert walletlib.change_protection(store, current=None, new=PASS, key_file=key_file) == "passphrase"
    assert not key_file.exists()
    with pytest.raises(WalletLockedError, match="none is configured"):
        unlock(store, passphrase=None, key_file=key_file)

    with pytest.raises(WalletLockedError, match="wrong wallet passphrase"):
        walletlib.change_protection(store, current=b"guess", new=b"other", key_file=key_file)
    walletlib.change_protection(store, current=PASS, new=b"second passphrase", key_file=key_file)
    with pytest.raises(WalletLockedError):
        unlock(store, passphrase=PASS, key_file=key_file)
    unlock(store, passphrase=b"second passphrase", key_file=key_file)

    assert walletlib.change_protection(store, current=b"second passphrase", new=None, key_file=key_file) == "keyfile"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    reopened, _ = unlock(store, passphrase=None, key_file=key_file)
    assert {r.kid: r.sealed for r in store.keys_all()} == sealed_before
    for kid, key in new.keys.items():
        assert reopened.get_key(kid).secret == key.secret  # type: ignore[union-attr]


def test_an_interrupted_switch_to_a_new_key_file_is_finished_at_unlock(store: Store, tmp_path: Path) -> None:
    key_file = tmp_path / "wallet.key"
    unlock(store, passphrase=PASS, key_file=key_file)
    # What change_protection does, stopped between the commit and the rename.
    record = store.meta_get(walletlib.META_NAME)
    data_key = walletlib._unlock_record(record, PASS, key_file)
    new_key = os.urandom(32)
    walletlib._write_key_file(key_file.with_name("wallet.key.new"), new_key)
    store.meta_put(
        walletlib.META_NAME,
        walletlib._protection_record(data_key, walletlib._Protection("keyfile", new_key)),
    )
    wallet, _ = unlock(store, passphrase=None, key_file=key_file)
    assert wallet.mode == "keyfile"
    assert key_file.read_bytes() == new_key
    assert not key_file.with_name("wallet.key.new").exists()


def test_passphrase_sources(tmp_path: Path) -> None:
    key_file = tmp_path / "wallet.key"
    pw = tmp_path / "pw"
    pw.write_bytes(b"from a file\n")
    assert walletlib.configured_passphrase(WalletSection(key_file, passphrase_file=pw), {}) == b"from a file"
    env = {"PW": "from the environment"}
    assert walletlib.configured_passphrase(WalletSection(key_file, passphrase_env="PW"), env) == b"from the environment"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "wallet-passphrase").write_bytes(b"from systemd\r\n")
    section = WalletSection(key_file)
    assert walletlib.configured_passphrase(section, {"CREDENTIALS_DIRECTORY": str(creds)}) == b"from systemd"
    assert walletlib.configured_passphrase(section, {}) is None
    # The configured file wins over the credential.
    both = {"CREDENTIALS_DIRECTORY": str(creds)}
    assert walletlib.configured_passphrase(WalletSection(key_file, passphrase_file=pw), both) == b"from a file"

    with pytest.raises(WalletLockedError, match=r"PW .* is not set"):
        walletlib.configured_passphrase(WalletSection(key_file, passphrase_env="PW"), {})
    (tmp_path / "empty").write_bytes(b"\n")
    with pytest.raises(WalletLockedError, match="empty"):
        walletlib.read_passphrase_file(tmp_path / "empty")
    with pytest.raises(WalletLockedError, match="cannot read"):
        walletlib.read_passphrase_file(tmp_path / "absent")


# -- sealed records ---------------------------------------------------------------------------


def test_a_sealed_key_is_bound_to_its_kid(store: Store, tmp_path: Path) -> None:
    wallet, _ = unlock(store, passphrase=None, key_file=tmp_path / "k")
    key = PrivateKey.generate("X25519")
    row = wallet.seal("did:ex:a#1", "did:ex:a", key, 1)
    moved = KeyRow("did:ex:b#1", "did:ex:b", row.curve, 1, row.sealed)
    flipped = KeyRow(row.kid, row.did, row.curve, 1, row.sealed[:-1] + bytes([row.sealed[-1] ^ 1]))
    wallet.add_rows([moved])
    with pytest.raises(StoreError, match="does not decrypt"):
        wallet.get_key("did:ex:b#1")
    wallet.add_rows([flipped])
    with pytest.raises(StoreError, match="does not decrypt"):
        wallet.get_key(row.kid)
    assert key.secret not in row.sealed
    assert "secret" not in repr(wallet) and key.secret.hex() not in repr(wallet)


@pytest.mark.parametrize("method", ["key", "peer"])
def test_new_dids_hold_the_keys_their_documents_name(method: str) -> None:
    new = walletlib.new_did(method)
    doc = default_resolver().resolve(new.did)
    assert doc.to_json() == new.doc
    agreement = {vm.id for vm in doc.key_agreement_methods()}
    auth = {vm.id for vm in doc.authentication_methods()}
    assert set(new.keys) == agreement | auth and len(new.keys) == 2
    for kid, key in new.keys.items():
        assert doc.resolve_vm(kid).public_key == key.public
    assert new.did.startswith("did:key:" if method == "key" else "did:peer:2.")


def test_did_peer_services_go_into_the_did() -> None:
    service = {"id": "#didcomm", "type": "DIDCommMessaging",
               "serviceEndpoint": {"uri": "libp2p-peerId:12D3KooWGzBkzKkZ6FC3hAWeG3MXt4WhqxU8MXdnNLfCAn9XxdyZ"}}
    new = walletlib.new_did("peer", services=[service])
    doc = default_resolver().resolve(new.did)
    assert [s.type for s in doc.didcomm_services()] == ["DIDCommMessaging"]
    with pytest.raises(DaemonError, match="cannot carry services"):
        walletlib.new_did("key", services=[service])
    with pytest.raises(DaemonError, match="unknown DID method"):
        walletlib.new_did("web")


# -- backups ------------------------------------------------------------------------------


def test_export_then_import_into_a_fresh_store_restores_the_same_dids(store: Store, tmp_path: Path) -> None:
    wallet, _ = unlock(store, passphrase=PASS, key_file=tmp_path / "a.key")
    made = [add_did(store, wallet, "peer", "one"), add_did(store, wallet, "key", "two")]
    backup = walletlib.export_backup(store, wallet, b"backup words")
    text = backup.decode()
    for new in made:
        for key in new.keys.values():
            assert b64u_encode(key.secret) not in text and key.secret.hex() not in text

    fresh = Store.open(tmp_path / "fresh.sqlite3")
    try:
        other, _ = unlock(fresh, passphrase=None, key_file=tmp_path / "b.key")
        with pytest.raises(BackupError, match="wrong backup passphrase"):
            walletlib.import_backup(fresh, other, backup, b"backup wordz")
        counts = walletlib.import_backup(fresh, other, backup, b"backup words")
        assert counts == {"keys": 4, "dids": 2, "docs": 2, "credentials": 0, "connections": 0, "exchanges": 0,
                          "held_lists": 0, "status_lists": 0, "status_lists_conflicting": 0,
                          "status_indexes": 0, "status_indexes_shared": 0, "status_lists_started": 0}
        assert walletlib.import_backup(fresh, other, backup, b"backup words")["keys"] == 0
        assert [(r.did, r.label) for r in fresh.did_list()] == [(m.did, lbl) for m, lbl in zip(made, ["one", "two"], strict=True)]
        reopened, _ = unlock(fresh, passphrase=None, key_file=tmp_path / "b.key")
        for new in made:
            assert fresh.doc_get(new.did) == new.doc
            for kid, key in new.keys.items():
                assert reopened.get_key(kid).secret == key.secret  # type: ignore[union-attr]
    finally:
        fresh.close()


def test_hostile_or_damaged_backups_are_refused(store: Store, tmp_path: Path) -> None:
    wallet, _ = unlock(store, passphrase=None, key_file=tmp_path / "k")
    add_did(store, wallet)
    outer = json.loads(walletlib.export_backup(store, wallet, b"pw"))

    def variant(**changes: object) -> bytes:
        return json_dumps({**outer, **changes}).encode()

    sealed = b64u_decode(outer["sealed"])
    tampered = b64u_encode(sealed[:-1] + bytes([sealed[-1] ^ 1]))
    cases = [
        (b"not json", "malformed"),
        (variant(format="something-else"), "not a didcommd wallet backup"),
        (variant(version=99), "unsupported backup version"),
        (variant(sealed=tampered), "wrong backup passphrase"),
        # A crafted cost must be refused before Argon2id allocates it.
        (variant(kdf={**outer["kdf"], "memlimit": 1 << 40}), "unacceptable"),
        (variant(kdf={**outer["kdf"], "alg": "pbkdf2"}), "argon2id"),
    ]
    for data, reason in cases:
        with pytest.raises(BackupError, match=reason):
            walletlib.import_backup(store, wallet, data, b"pw")


# -- backups: credentials, connections and status lists ------------------------------------------

ISSUER = "did:key:z6MkIssuer"
HOLDER_PEER = "did:peer:2.Holder"
CLAIM = "a claim only the wallet may read"


def exchange(thid: str, role: str, state: str, *, their: str = "did:peer:2.Them") -> dict[str, object]:
    return ProtocolRecord(thid=thid, protocol=issue_credential.PIURI, role=role, state=state,
                          our_did="did:peer:2.Us", their_did=their, created_time=5, updated_time=6,
                          data={"credential_id": f"urn:uuid:{thid}", "claims": {"name": CLAIM}}).to_dict()


def fill(store: Store, *, issuer: str = ISSUER, revoke: int | None = None) -> dict[str, object]:
    """A wallet's worth of records of every kind a backup carries (and some it does not)."""
    store.credential_put("urn:uuid:c1", issuer=ISSUER, subject="did:key:z6MkSubject", created=10,
                         record={"id": "urn:uuid:c1", "issuer": ISSUER, "thid": "t-held", "claims": {"name": CLAIM},
                                 "status": {"uri": revocation.list_uri(ISSUER, issue_credential.FORMAT, 0),
                                            "index": 3}})
    store.connection_put("conn-1", my_did="did:peer:2.Us", their_did="did:peer:2.Them", state="active", updated=11,
                         record={"label": "uni", "note": CLAIM})
    for thid, role, state in (("t-issued", "issuer", "credential-issued"), ("t-held", "holder", "done"),
                              ("t-pending", "holder", "offer-received")):
        store.record_put(issue_credential.PIURI, thid, role, state=state, updated=6,
                         record=exchange(thid, role, state))
    store.held_list_put(revocation.held_row("token-v1", uri="did:key:z6MkOther/status/sd-jwt/0",
                                            issuer="did:key:z6MkOther", issued_at=100, expires=None, fetched_at=101))
    # Our own list: two indexes handed out (one issued, one only offered), one revoked.
    for i, (idx, thid) in enumerate(((3, "t-issued"), (9, "t-offered"))):
        allocation = revocation.Allocation(revocation.list_uri(issuer, issue_credential.FORMAT, 0), issuer,
                                           issue_credential.FORMAT, 0, 16, idx, new_list=i == 0)
        revocation.write_allocation(store, allocation, thid, 20 + i)
    store.status_entry_issued("t-issued", "urn:uuid:t-issued")
    if revoke is not None:
        uri = revocation.list_uri(issuer, issue_credential.FORMAT, 0)
        row = store.status_list_get(uri)
        assert row is not None
        packed = status_list.StatusList.from_bytes(row.statuses, bits=row.bits, size=row.size)
        packed.set(revoke, status_list.REVOKED)
        store.status_set(uri, revoke, status_list.REVOKED, packed.to_bytes(), now=30)
    return {"uri": revocation.list_uri(issuer, issue_credential.FORMAT, 0)}


def entries(store: Store, uri: str) -> list[tuple[int, str, str | None, int]]:
    return [(e.idx, e.thid, e.credential_id, e.status) for e in store.status_entries_of(uri)]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[Store, Wallet]]:
    """Another machine's store and wallet (its own data key)."""
    s = Store.open(tmp_path / "fresh.sqlite3")
    w, _ = unlock(s, passphrase=None, key_file=tmp_path / "fresh.key")
    yield s, w
    s.close()


def test_a_backup_restores_credentials_connections_exchanges_and_status_lists(
        store: Store, tmp_path: Path, fresh: tuple[Store, Wallet]) -> None:
    wallet, _ = unlock(store, passphrase=None, key_file=tmp_path / "a.key")
    add_did(store, wallet)
    uri = fill(store, revoke=3)["uri"]
    backup = walletlib.export_backup(store, wallet, b"pw")
    assert CLAIM.encode() not in backup

    s, w = fresh
    counts = walletlib.import_backup(s, w, backup, b"pw")
    assert counts == {"keys": 2, "dids": 1, "docs": 1, "credentials": 1, "connections": 1, "exchanges": 2,
                      "held_lists": 1, "status_lists": 1, "status_lists_conflicting": 0, "status_indexes": 2,
                      "status_indexes_shared": 0, "status_lists_started": 1}
    # Every member, as the other store had it, read back through this store (which opens it).
    assert s.credential_rows() == store.credential_rows()
    assert s.connection_list() == store.connection_list()
    for thid, role in (("t-issued", "issuer"), ("t-held", "holder")):
        assert s.record_get(issue_credential.PIURI, thid, role) == store.record_get(issue_credential.PIURI, thid, role)
    # A pending exchange is not carried: its messages in flight are not either.
    assert s.record_get(issue_credential.PIURI, "t-pending", "holder") is None
    assert s.held_lists_all() == store.held_lists_all()
    assert s.status_list_get(str(uri)) == store.status_list_get(str(uri))
    assert entries(s, str(uri)) == entries(store, str(uri)) == [
        (3, "t-issued", "urn:uuid:t-issued", 1), (9, "t-offered", None, 0)]
    assert s.status_entry_by_credential("urn:uuid:t-issued") is not None
    # Sealed under *this* wallet's key: the other wallet's key does not open them, and the
    # file shows no claim.
    s.use_sealer(RecordSealer(os.urandom(32)))
    with pytest.raises(StoreError, match="does not decrypt"):
        s.credential_rows()
    with pytest.raises(StoreError, match="does not decrypt"):
        s.connection_list()
    unlock(s, passphrase=None, key_file=tmp_path / "fresh.key")  # this wallet's sealer again
    assert len(s.credential_rows()) == 1
    assert CLAIM.encode() not in (tmp_path / "fresh.sqlite3").read_bytes()
    # Issuance goes on in a new list: the backup is older than the wallet it came from, and
    # the indexes handed out since are in no backup.
    following = revocation.list_uri(ISSUER, issue_credential.FORMAT, 1)
    assert [r.uri for r in s.status_lists_all()] == [uri, following]
    assert s.status_list_get(following).used == 0  # type: ignore[union-attr]
    allocation = revocation.pick_index(s, ISSUER, issue_credential.FORMAT, size=16)
    assert (allocation.uri, allocation.new_list) == (following, False)
    # Importing again adds nothing.
    again = walletlib.import_backup(s, w, backup, b"pw")
    assert {k: v for k, v in again.items() if k != "docs"} == dict.fromkeys(
        [k for k in counts if k != "docs"], 0)


def test_import_merges_what_is_here_is_kept_a_newer_held_list_wins(
        store: Store, tmp_path: Path, fresh: tuple[Store, Wallet]) -> None:
    wallet, _ = unlock(store, passphrase=None, key_file=tmp_path / "a.key")
    fill(store, issuer="did:key:z6MkOld")
    store.held_list_put(revocation.held_row("token-newer-in-backup", uri="did:key:z6MkX/status/sd-jwt/0",
                                            issuer="did:key:z6MkX", issued_at=500, expires=None, fetched_at=501))
    backup = walletlib.export_backup(store, wallet, b"pw")

    s, w = fresh
    s.credential_put("urn:uuid:c1", issuer=ISSUER, subject=None, created=99, record={"id": "urn:uuid:c1", "mine": 1})
    s.connection_put("conn-1", my_did="did:peer:2.Mine", their_did=None, state="requested", updated=99,
                     record={"mine": 1})
    s.record_put(issue_credential.PIURI, "t-held", "holder", state="done", updated=99,
                 record=exchange("t-held", "holder", "done", their="did:peer:2.Mine"))
    # Ours is newer for one list, older for the other.
    s.held_list_put(revocation.held_row("token-newer-here", uri="did:key:z6MkOther/status/sd-jwt/0",
                                        issuer="did:key:z6MkOther", issued_at=200, expires=None, fetched_at=201))
    s.held_list_put(revocation.held_row("token-older-here", uri="did:key:z6MkX/status/sd-jwt/0",
                                        issuer="did:key:z6MkX", issued_at=400, expires=None, fetched_at=401))
    counts = walletlib.import_backup(s, w, backup, b"pw")
    assert (counts["credentials"], counts["connections"], counts["exchanges"], counts["held_lists"]) == (0, 0, 1, 1)
    assert s.credential_get("urn:uuid:c1") == {"id": "urn:uuid:c1", "mine": 1}
    assert s.connection_get("conn-1")["record"] == {"mine": 1}  # type: ignore[index]
    assert s.record_get(issue_credential.PIURI, "t-held", "holder")["record"]["their_did"] == "did:peer:2.Mine"  # type: ignore[index]
    held = {h.uri: h.record["document"] for h in s.held_lists_all()}
    assert held == {"did:key:z6MkOther/status/sd-jwt/0": "token-newer-here",
                    "did:key:z6MkX/status/sd-jwt/0": "token-newer-in-backup"}


def test_a_status_list_issued_from_before_the_restore_is_kept_and_no_index_is_reused(
        store: Store, tmp_path: Path, fresh: tuple[Store, Wallet]) -> None:
    wallet, _ = unlock(store, passphrase=None, key_file=tmp_path / "a.key")
    uri = str(fill(store, revoke=3)["uri"])  # the backup's list: 3 (issued, revoked), 9 (offered)
    backup = walletlib.export_backup(store, wallet, b"pw")

    # The issuer issued from the fresh wallet, with the same DID, before restoring: the same URI.
    s, w = fresh
    for i, (idx, thid) in enumerate(((9, "t-new-a"), (12, "t-new-b"))):
        revocation.write_allocation(s, revocation.Allocation(uri, ISSUER, issue_credential.FORMAT, 0, 16, idx,
                                                             new_list=i == 0), thid, 40 + i)
    counts = walletlib.import_backup(s, w, backup, b"pw")
    assert (counts["status_lists"], counts["status_lists_conflicting"], counts["status_indexes"],
            counts["status_indexes_shared"]) == (0, 1, 1, 1)
    # Kept: index 9 stays the new credential's; 3 is restored as handed out (and revoked),
    # so the old credential stays revocable and the list says it is revoked.
    assert entries(s, uri) == [(3, "t-issued", "urn:uuid:t-issued", 1), (9, "t-new-a", None, 0),
                               (12, "t-new-b", None, 0)]
    row = s.status_list_get(uri)
    assert row is not None and row.used == 3
    packed = status_list.StatusList.from_bytes(row.statuses, bits=row.bits, size=row.size)
    assert row.bits == revocation.LIST_BITS and [i for i in range(16) if packed.get(i)] == [3]
    # Issuance goes on in a new list, so no index of list 0 is handed out again, whichever
    # list gave it (and whatever the old wallet handed out after the backup was made).
    assert counts["status_lists_started"] == 1
    for n in range(3):
        allocation = revocation.pick_index(s, ISSUER, issue_credential.FORMAT, size=16)
        assert allocation.n == 1
        revocation.write_allocation(s, allocation, f"t-more-{n}", 50 + n)
    assert len(entries(s, uri)) == 3
    # A second import of the same backup starts no more lists and changes nothing.
    again = walletlib.import_backup(s, w, backup, b"pw")
    assert (again["status_lists_started"], again["status_indexes"]) == (0, 0)
    assert len(s.status_lists_all()) == 2


def test_the_store_never_restores_an_index_twice_or_outside_its_list(store: Store, tmp_path: Path) -> None:
    unlock(store, passphrase=None, key_file=tmp_path / "a.key")
    uri = str(fill(store)["uri"])  # indexes 3 and 9 of 16 handed out
    before = (store.status_list_get(uri), entries(store, uri))
    fresh_entry = StatusEntryRow(uri, 4, "t-4", None, 0, 50)
    for bad, reason in ((StatusEntryRow(uri, 9, "t-other", None, 0, 50), "index 9 .* is taken"),
                        (StatusEntryRow(uri, 16, "t-16", None, 0, 50), "outside"),
                        (StatusEntryRow(uri + "x", 5, "t-5", None, 0, 50), "outside")):
        with pytest.raises(StoreError, match=reason):
            store.status_entries_restore(uri, [fresh_entry, bad], before[0].statuses, now=60)  # type: ignore[union-attr]
        assert (store.status_list_get(uri), entries(store, uri)) == before  # nothing written
    with pytest.raises(StoreError, match="exists already"):
        store.status_list_restore(before[0], [])  # type: ignore[arg-type]
    assert store.status_entries_restore(uri, [fresh_entry], before[0].statuses, now=60) == 1  # type: ignore[union-attr]
    assert store.status_list_get(uri).used == 3  # type: ignore[union-attr]


def test_hostile_backup_content_is_refused_and_nothing_is_imported(
        store: Store, tmp_path: Path, fresh: tuple[Store, Wallet]) -> None:
    wallet, _ = unlock(store, passphrase=None, key_file=tmp_path / "a.key")
    add_did(store, wallet)
    uri = str(fill(store)["uri"])
    good = walletlib.backup_content(store, wallet)
    s, w = fresh

    def changed(member: str, value: object) -> bytes:
        return walletlib.seal_backup({**good, member: value}, b"pw")

    first_list = dict(good["status_lists"][0])
    first_entry = dict(good["status_entries"][0])
    cases = [
        (changed("credentials", {"id": "x"}), "credentials are damaged"),
        (changed("credentials", ["x"]), "credentials are damaged"),
        (changed("credentials", [{**good["credentials"][0], "id": 5}]), "credentials are damaged \\(field 'id'\\)"),
        (changed("credentials", [{**good["credentials"][0], "record": "text"}]), "field 'record'"),
        (changed("credentials", [{**good["credentials"][0], "created": True}]), "field 'created'"),
        (changed("connections", [{**good["connections"][0], "id": "x" * 20_000}]), "connections are damaged"),
        (changed("connections", [{**good["connections"][0], "their_did": None}]), "field 'their_did'"),
        (changed("connections", [{**good["connections"][0], "state": "befriended"}]), "connection conn-1 is damaged"),
        (changed("connections", [{**good["connections"][0], "record": {"my_retired": 5}}]), "conn-1 is damaged"),
        (changed("credentials", [{**good["credentials"][0], "record": {"id": "urn:other"}}]), "another id"),
        (changed("exchanges", [exchange("t", "holder", "offer-received")]), "not a finished"),
        (changed("exchanges", [{"thid": "t"}]), "exchanges are damaged"),
        (changed("held_status_lists", [{**good["held_status_lists"][0], "issued_at": -1}]), "field 'issued_at'"),
        (changed("status_lists", [{**first_list, "n": 7}]), "its URI does not name it"),
        (changed("status_lists", [{**first_list, "format": "pdf"}]), "its URI does not name it"),
        (changed("status_lists", [{**first_list, "statuses": b"\x00"}]), "its entries"),
        (changed("status_lists", [{**first_list, "size": 1 << 40}]), "field 'size'"),
        (changed("status_lists", [first_list, first_list]), "twice"),
        (changed("status_entries", [{**first_entry, "idx": 16}]), "field 'idx'"),
        (changed("status_entries", [first_entry, first_entry]), "twice"),
        (changed("status_entries", [{**first_entry, "uri": uri + "1"}]), "a list it does not hold"),
        (changed("status_entries", [{**first_entry, "status": 4}]), "field 'status'"),
        (changed("status_lists", [{**first_list, "bits": 3}]), "its bits"),
        (changed("status_lists", [{**first_list, "bits": [2]}]), "its bits"),
        (changed("status_lists", [{**first_list, "bits": True}]), "its bits"),
        (changed("status_lists", [{**first_list, "bits": 1}]), "its entries"),  # 2-bit entries, said 1
    ]
    for data, reason in cases:
        with pytest.raises(BackupError, match=reason):
            walletlib.import_backup(s, w, data, b"pw")
        # One transaction: not even the keys and DIDs that came before went in.
        assert s.keys_all() == [] and s.did_list(own=None) == [] and s.status_lists_all() == []
    # Past the number of rows a backup may hold (the limit lowered, so the file stays small).
    with pytest.MonkeyPatch.context() as m:
        m.setattr(walletlib, "MAX_BACKUP_ROWS", 1)
        with pytest.raises(BackupError, match=r"the backup holds more than 1 (exchanges|status_entries)"):
            walletlib.import_backup(s, w, walletlib.seal_backup(good, b"pw"), b"pw")
    assert s.keys_all() == []
    # An older backup (none of the new members) still imports.
    old = {k: good[k] for k in ("v", "keys", "dids", "docs")}
    assert walletlib.import_backup(s, w, walletlib.seal_backup(old, b"pw"), b"pw")["keys"] == 2



def test_a_backup_from_before_suspension_restores_its_1_bit_lists(
        store: Store, tmp_path: Path, fresh: tuple[Store, Wallet]) -> None:
    wallet, _ = unlock(store, passphrase=None, key_file=tmp_path / "a.key")
    add_did(store, wallet)
    uri = str(fill(store, revoke=3)["uri"])
    good = walletlib.backup_content(store, wallet)
    # The list as a backup made before v7 carries it: 1-bit entries, no "bits".
    before = {k: v for k, v in good["status_lists"][0].items() if k != "bits"}
    narrow = status_list.StatusList(16, bits=1)
    narrow.set(3, status_list.REVOKED)
    before["statuses"] = narrow.to_bytes()
    s, w = fresh
    walletlib.import_backup(s, w, walletlib.seal_backup({**good, "status_lists": [before]}, b"pw"), b"pw")
    row = s.status_list_get(uri)
    assert row is not None and (row.bits, row.statuses) == (1, narrow.to_bytes())
    # Issuance goes on in a new list, of 2 bits.
    current = s.status_list_current(ISSUER, issue_credential.FORMAT)
    assert current is not None and current.n == 1 and current.bits == revocation.LIST_BITS


# -- the command line -------------------------------------------------------------------------


def cli_env(home: Path, env: dict[str, str] | None) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "PYTHONPATH": str(REPO),
        **(env or {}),
    }


def wallet_process(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``didcommd wallet ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", "wallet", *args],
        env=cli_env(home, env), cwd=home, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def wallet_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., Result]]:
    """``didcommd wallet ARGS`` in this process (same code as the process, much faster)."""
    saved = structlog.get_config()

    def run(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
        with monkeypatch.context() as m:
            for name in list(os.environ):
                m.delenv(name)
            for name, value in cli_env(home, env).items():
                m.setenv(name, value)
            m.chdir(home)
            m.setattr(sys, "stdin", io.StringIO())
            capsys.readouterr()
            code = cli.main(["wallet", *args])
            out, err = capsys.readouterr()
        return Result(code, out, err)

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield run
    structlog.configure(**saved)
    root.setLevel(level)
    root.handlers[:] = handlers
    for name, old in noisy.items():
        logging.getLogger(name).setLevel(old)


def test_wallet_cli_init_export_import_as_processes(tmp_path: Path) -> None:
    alice = tmp_path / "alice"
    pw = tmp_path / "pw"
    pw.write_text("wallet passphrase\n")
    r = wallet_process(alice, "init", "--passphrase-file", str(pw))
    assert r.returncode == 0, r.stderr
    state = alice / "state" / "didcommd"
    s = Store.open(state / "didcommd.sqlite3")
    wallet, _ = unlock(s, passphrase=b"wallet passphrase", key_file=state / "wallet.key")
    made = add_did(s, wallet, "peer")
    s.close()
    backup = tmp_path / "alice.backup"
    r = wallet_process(alice, "export", str(backup), "--passphrase-env", "BACKUP_PW",
                       env={"BACKUP_PW": "backup", "DIDCOMMD_WALLET_PASSPHRASE_FILE": str(pw)})
    assert r.returncode == 0, r.stderr
    restored = tmp_path / "restored"
    r = wallet_process(restored, "import", str(backup), "--passphrase-env", "BACKUP_PW",
                       env={"BACKUP_PW": "backup"})
    assert r.returncode == 0, r.stderr
    r = wallet_process(restored, "info")
    assert [d["did"] for d in json.loads(r.stdout)["dids"]] == [made.did]


def test_wallet_cli_init_export_import_passphrase(tmp_path: Path, wallet_cli: Callable[..., Result]) -> None:
    alice = tmp_path / "alice"
    pw = tmp_path / "pw"
    pw.write_text("wallet passphrase\n")
    backup_pw = tmp_path / "backup-pw"
    backup_pw.write_text("backup passphrase\n")

    r = wallet_cli(alice, "init", "--passphrase-file", str(pw))
    assert r.returncode == 0, r.stderr
    assert "wallet created" in r.stdout
    state = alice / "state" / "didcommd"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    r = wallet_cli(alice, "init")
    assert r.returncode == 1 and "already exists" in r.stderr

    # Give the wallet DIDs, as the daemon would.
    s = Store.open(state / "didcommd.sqlite3")
    wallet, _ = unlock(s, passphrase=b"wallet passphrase", key_file=state / "wallet.key")
    made = [add_did(s, wallet, "peer"), add_did(s, wallet, "key")]
    s.close()

    # The daemon reads the passphrase from its configuration; so does the CLI.
    with_pw = {"DIDCOMMD_WALLET_PASSPHRASE_FILE": str(pw)}
    r = wallet_cli(alice, "info")  # needs no passphrase: it opens no key
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["protection"] == "passphrase"
    r = wallet_cli(alice, "export", str(tmp_path / "x.backup"), "--passphrase-file", str(backup_pw))
    assert r.returncode == 2 and "not a terminal" in r.stderr  # nothing configured, nobody to ask
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    r = wallet_cli(alice, "export", str(tmp_path / "x.backup"), "--passphrase-file", str(backup_pw),
                   env={"DIDCOMMD_WALLET_PASSPHRASE_FILE": str(wrong)})
    assert r.returncode == 5 and "wrong wallet passphrase" in r.stderr
    assert "Traceback" not in r.stderr

    backup = tmp_path / "alice.backup"
    r = wallet_cli(alice, "export", str(backup), "--passphrase-file", str(backup_pw), env=with_pw)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    r = wallet_cli(alice, "export", str(backup), "--passphrase-file", str(backup_pw), env=with_pw)
    assert r.returncode == 2 and "exists" in r.stderr

    # Restore on a fresh machine (no passphrase there: a key file is made).
    restored = tmp_path / "restored"
    r = wallet_cli(restored, "import", str(backup), "--passphrase-env", "BACKUP_PW",
                   env={"BACKUP_PW": "backup passphrase"})
    assert r.returncode == 0, r.stderr
    assert "imported 4 keys, 2 DIDs" in r.stdout
    info = json.loads(wallet_cli(restored, "info").stdout)
    assert [d["did"] for d in info["dids"]] == [m.did for m in made]
    assert info["protection"] == "keyfile"
    r = wallet_cli(restored, "import", str(backup), "--passphrase-env", "BACKUP_PW",
                   env={"BACKUP_PW": "wrong"})
    assert r.returncode == 3 and "wrong backup passphrase" in r.stderr

    # Set a passphrase on the restored wallet, then remove it again.
    r = wallet_cli(restored, "passphrase", "--new-passphrase-file", str(pw))
    assert r.returncode == 0, r.stderr
    assert not (restored / "state" / "didcommd" / "wallet.key").exists()
    r = wallet_cli(restored, "passphrase", "--remove", "--current-passphrase-file", str(pw))
    assert r.returncode == 0, r.stderr
    s = Store.open(restored / "state" / "didcommd" / "didcommd.sqlite3")
    try:
        w, _ = unlock(s, passphrase=None, key_file=restored / "state" / "didcommd" / "wallet.key")
        for new in made:
            for kid, key in new.keys.items():
                assert w.get_key(kid).secret == key.secret  # type: ignore[union-attr]
    finally:
        s.close()

    r = wallet_cli(tmp_path / "nobody", "info")
    assert r.returncode == 1 and "wallet init" in r.stderr
    r = wallet_cli(alice, "info", env={"DIDCOMMD_DAEMON_LOG_LEVEL": "chatty"})
    assert r.returncode == 6 and "DIDCOMMD_DAEMON_LOG_LEVEL" in r.stderr
    r = wallet_cli(alice)
    assert r.returncode == 2


def test_wallet_cli_says_what_a_backup_holds_and_what_an_import_added(
        tmp_path: Path, wallet_cli: Callable[..., Result]) -> None:
    issuer = tmp_path / "issuer"
    assert wallet_cli(issuer, "init").returncode == 0
    state = issuer / "state" / "didcommd"
    s = Store.open(state / "didcommd.sqlite3")
    w, _ = unlock(s, passphrase=None, key_file=state / "wallet.key")
    add_did(s, w)
    uri = str(fill(s, revoke=3)["uri"])
    s.close()
    pw = {"BACKUP_PW": "backup"}

    backup = tmp_path / "issuer.backup"
    r = wallet_cli(issuer, "export", str(backup), "--passphrase-env", "BACKUP_PW", env=pw)
    assert r.returncode == 0, r.stderr
    assert "exported 2 keys and 1 DIDs" in r.stdout
    assert "1 credentials, 1 connections, 2 finished credential exchanges" in r.stdout
    assert "1 held status lists; 1 status lists of ours (2 indexes handed out)" in r.stdout
    assert "not included: pending exchanges, inbox and outbox history, events" in r.stdout
    r = wallet_cli(issuer, "export", str(tmp_path / "again.backup"), "--passphrase-env", "BACKUP_PW", "--json",
                   env=pw)
    assert json.loads(r.stdout) == {"file": str(tmp_path / "again.backup"), "keys": 2, "dids": 1, "docs": 1,
                                    "credentials": 1, "connections": 1, "exchanges": 2, "held_lists": 1,
                                    "status_lists": 1, "status_indexes": 2, "peer_identity": False}

    # A fresh machine: everything restored.
    fresh = tmp_path / "fresh"
    r = wallet_cli(fresh, "import", str(backup), "--passphrase-env", "BACKUP_PW", env=pw)
    assert r.returncode == 0, r.stderr
    assert "1 credentials, 1 connections, 2 finished credential exchanges, 1 held status lists" in r.stdout
    assert "1 status lists of ours restored (2 indexes handed out, all restored)" in r.stdout
    assert "issuing goes on in 1 new status lists" in r.stdout

    # An issuer that issued from a fresh wallet first: the conflict is reported.
    early = tmp_path / "early"
    assert wallet_cli(early, "init").returncode == 0
    s = Store.open(early / "state" / "didcommd" / "didcommd.sqlite3")
    unlock(s, passphrase=None, key_file=early / "state" / "didcommd" / "wallet.key")
    revocation.write_allocation(s, revocation.Allocation(uri, ISSUER, issue_credential.FORMAT, 0, 16, 9,
                                                         new_list=True), "t-early", 40)
    s.close()
    r = wallet_cli(early, "import", str(backup), "--passphrase-env", "BACKUP_PW", "--json", env=pw)
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)
    assert (counts["status_lists"], counts["status_lists_conflicting"], counts["status_indexes"],
            counts["status_indexes_shared"]) == (0, 1, 1, 1)
    assert "wallet.import_status_list_conflict" in r.stderr  # the warning, logged
    r = wallet_cli(early, "import", str(backup), "--passphrase-env", "BACKUP_PW", env=pw)
    assert "1 already here (kept; 0 handed-out indexes restored, 1 handed out by both)" in r.stdout

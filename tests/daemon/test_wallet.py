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

from daemon import cli
from daemon import wallet as walletlib
from daemon.config import WalletSection
from daemon.errors import DaemonError, StoreError, WalletLockedError
from daemon.logs import NOISY_LOGGERS
from daemon.store import DIDRow, KeyRow, Store
from daemon.wallet import BackupError, Wallet, unlock
from protocols.codec import b64u_decode, b64u_encode, json_dumps
from protocols.did.resolver import default_resolver
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
        assert counts == {"keys": 4, "dids": 2, "docs": 2}
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

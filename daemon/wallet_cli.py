"""``didcommd wallet``: create, back up, restore and re-protect the wallet, offline.

::

    didcommd wallet [--config FILE] [--system] init [--passphrase-file F | --passphrase-env VAR | --passphrase-prompt]
    didcommd wallet export FILE [--passphrase-file F | --passphrase-env VAR] [--json]
    didcommd wallet import FILE [--passphrase-file F | --passphrase-env VAR] [--json]
    didcommd wallet passphrase [--new-passphrase-file F | --new-passphrase-env VAR | --remove]
                               [--current-passphrase-file F | --current-passphrase-env VAR]
    didcommd wallet info

Passphrases never come from the command line itself (it is visible to every user
through ``ps``): from a file, from an environment variable named on the command
line, or typed at a prompt (only on a terminal).  The wallet's own passphrase is
otherwise the one the configuration names (see :mod:`daemon.wallet`).

``init`` and ``import`` need the daemon stopped (they change what it holds in
memory); ``export``, ``passphrase`` and ``info`` work while it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import exitcodes
from . import wallet as walletlib
from .agent import LOCK_FILE_NAME, lock_state_dir, prepare_state_dir
from .config import Config, ConfigError, load_config
from .errors import DaemonError, exit_code_for
from .logs import configure_logging
from .store import DB_FILE_NAME, Store

PROG = "didcommd wallet"


class _Usage(Exception):
    """A usage problem found after parsing (exit code USAGE)."""


def add_parser(subparsers: Any) -> None:
    """Add the ``wallet`` subcommand to ``didcommd``."""
    parser = subparsers.add_parser(
        "wallet",
        help="create, back up, restore or re-protect the wallet (offline)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=exitcodes.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="configuration file (default: see didcommd run --help)")
    parser.add_argument("--system", action="store_true", help="use the system service's default locations")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    parser.set_defaults(handler=_no_action(parser))
    sub = parser.add_subparsers(dest="wallet_command", metavar="ACTION")

    init = sub.add_parser("init", help="create the state directory and wallet")
    _passphrase_source(init, "", "protect the new wallet with the passphrase in")
    init.add_argument("--passphrase-prompt", action="store_true", help="ask for a passphrase on the terminal")
    init.set_defaults(handler=_run(_init))

    export = sub.add_parser("export", help="write an encrypted backup: keys, DIDs, the peer identity, "
                            "credentials, connections and status lists")
    export.add_argument("file", type=Path, help="backup file to write (mode 0600; must not exist)")
    _passphrase_source(export, "", "backup passphrase from")
    export.add_argument("--json", action="store_true", help="say what was written as JSON")
    export.set_defaults(handler=_run(_export))

    imp = sub.add_parser("import", help="restore a backup into this wallet (merging: nothing here is replaced)")
    imp.add_argument("file", type=Path, help="backup file written by 'didcommd wallet export'")
    _passphrase_source(imp, "", "backup passphrase from")
    imp.add_argument("--json", action="store_true", help="say what was added as JSON")
    imp.set_defaults(handler=_run(_import))

    pw = sub.add_parser("passphrase", help="set, change or remove the wallet passphrase")
    _passphrase_source(pw, "new-", "new passphrase from")
    pw.add_argument("--remove", action="store_true",
                    help="remove the passphrase; protect the wallet with a key file instead")
    _passphrase_source(pw, "current-", "current passphrase from (default: the configured one)")
    pw.set_defaults(handler=_run(_passphrase))

    info = sub.add_parser("info", help="show how the wallet is protected and which DIDs it holds")
    info.set_defaults(handler=_run(_info))


def _passphrase_source(parser: argparse.ArgumentParser, prefix: str, what: str) -> None:
    dest = prefix.replace("-", "_")
    parser.add_argument(f"--{prefix}passphrase-file", type=Path, metavar="FILE", dest=f"{dest}passphrase_file",
                        help=f"{what} a file")
    parser.add_argument(f"--{prefix}passphrase-env", metavar="VAR", dest=f"{dest}passphrase_env",
                        help=f"{what} the environment variable VAR")


def _no_action(parser: argparse.ArgumentParser) -> Any:
    def handler(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return exitcodes.USAGE

    return handler


def _run(action: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        try:
            config = load_config(args.config, system=args.system)
            configure_logging("info" if args.verbose else "warning", "auto", stream=sys.stderr)
            action(args, config)
        except ConfigError as exc:
            print(f"{PROG}: configuration error: {exc}", file=sys.stderr)
            return exitcodes.CONFIG
        except _Usage as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return exitcodes.USAGE
        except DaemonError as exc:
            print(f"{PROG}: error: {exc.message}", file=sys.stderr)
            return exit_code_for(exc.code)
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return exitcodes.FAILURE
        return exitcodes.OK

    return handler


# -- passphrases from the command line's sources ------------------------------------------


def _given_passphrase(args: argparse.Namespace, prefix: str) -> bytes | None:
    path = getattr(args, f"{prefix}passphrase_file", None)
    var = getattr(args, f"{prefix}passphrase_env", None)
    if path is not None and var is not None:
        raise _Usage(f"give --{prefix.replace('_', '-')}passphrase-file or --{prefix.replace('_', '-')}"
                     "passphrase-env, not both")
    if path is not None:
        return walletlib.read_passphrase_file(path)
    if var is not None:
        return walletlib.read_passphrase_env(var, os.environ)
    return None


def _prompt(what: str, *, confirm: bool) -> bytes:
    if not sys.stdin.isatty():
        raise _Usage(f"no {what} given and stdin is not a terminal: use a --...-passphrase-file or "
                     "--...-passphrase-env option")
    first = getpass.getpass(f"{what[0].upper()}{what[1:]}: ").encode()
    if confirm and getpass.getpass(f"Repeat {what}: ").encode() != first:
        raise _Usage("the passphrases do not match")
    return walletlib._clean_passphrase(first, "the prompt")


# -- store access ------------------------------------------------------------------------


@contextlib.contextmanager
def _open_store(config: Config, *, exclusive: bool, create: bool = False) -> Iterator[Store]:
    state_dir = config.daemon.state_dir
    db = state_dir / DB_FILE_NAME
    if not create and not db.exists():
        raise DaemonError("not_found", f"no wallet in {state_dir}; run 'didcommd wallet init'")
    if create:
        prepare_state_dir(state_dir)
    lock_fd = None
    if exclusive:
        try:
            lock_fd = lock_state_dir(state_dir)
        except DaemonError:
            raise DaemonError(
                "unavailable", f"didcommd is running on {state_dir} ({LOCK_FILE_NAME} is held); stop it first"
            ) from None
    try:
        store = Store.open(db)
        try:
            yield store
        finally:
            store.close()
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def _unlock(store: Store, config: Config, passphrase: bytes | None = None) -> walletlib.Wallet:
    if passphrase is None:
        passphrase = walletlib.configured_passphrase(config.wallet, os.environ)
    record = store.meta_get(walletlib.META_NAME)
    if passphrase is None and isinstance(record, dict) and record.get("mode") == walletlib.MODE_PASSPHRASE:
        passphrase = _prompt("wallet passphrase", confirm=False)
    wallet, _created = walletlib.unlock(
        store, passphrase=passphrase, key_file=config.wallet.key_file, create=False
    )
    return wallet


# -- actions ------------------------------------------------------------------------------


def _init(args: argparse.Namespace, config: Config) -> None:
    passphrase = _given_passphrase(args, "")
    if args.passphrase_prompt:
        if passphrase is not None:
            raise _Usage("--passphrase-prompt cannot be combined with another passphrase option")
        passphrase = _prompt("new wallet passphrase", confirm=True)
    if passphrase is None:
        passphrase = walletlib.configured_passphrase(config.wallet, os.environ)
    with _open_store(config, exclusive=True, create=True) as store:
        if store.meta_get(walletlib.META_NAME) is not None:
            raise DaemonError("conflict", f"a wallet already exists in {config.daemon.state_dir}")
        wallet, _ = walletlib.unlock(store, passphrase=passphrase, key_file=config.wallet.key_file)
    print(f"wallet created in {config.daemon.state_dir}")
    if wallet.mode == walletlib.MODE_KEYFILE:
        print(f"protected by the key file {config.wallet.key_file} (keep it with your backups)")
    else:
        print("protected by a passphrase: make sure wallet.passphrase_file or wallet.passphrase_env "
              "(or the wallet-passphrase credential) provides it to the daemon")


def _export(args: argparse.Namespace, config: Config) -> None:
    target: Path = args.file
    if target.exists():
        raise _Usage(f"{target} exists; choose a new file name")
    passphrase = _given_passphrase(args, "") or _prompt("backup passphrase", confirm=True)
    with _open_store(config, exclusive=False) as store:
        wallet = _unlock(store, config)
        content = walletlib.backup_content(store, wallet)
    data = walletlib.seal_backup(content, passphrase)
    summary = walletlib.backup_summary(content)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if args.json:
        print(json.dumps({"file": str(target), **summary}))
        return
    print(f"exported {summary['keys']} keys and {summary['dids']} DIDs to {target}")
    print(f"  {summary['credentials']} credentials, {summary['connections']} connections, "
          f"{summary['exchanges']} finished credential exchanges")
    print(f"  {summary['held_lists']} held status lists; {summary['status_lists']} status lists of ours "
          f"({summary['status_indexes']} indexes handed out)")
    print("  the libp2p peer identity" if summary["peer_identity"] else "  no libp2p peer identity (none made yet)")
    print("not included: pending exchanges, inbox and outbox history, events")


def _import(args: argparse.Namespace, config: Config) -> None:
    try:
        with args.file.open("rb") as f:
            # One byte past the limit is enough to refuse it (import_backup says so).
            data = f.read(walletlib.MAX_BACKUP_BYTES + 1)
    except OSError as exc:
        raise DaemonError("not_found", f"cannot read {args.file}: {exc.strerror or exc}") from None
    passphrase = _given_passphrase(args, "") or _prompt("backup passphrase", confirm=False)
    with _open_store(config, exclusive=True, create=True) as store:
        if store.meta_get(walletlib.META_NAME) is None:
            wallet, _ = walletlib.unlock(
                store,
                passphrase=walletlib.configured_passphrase(config.wallet, os.environ),
                key_file=config.wallet.key_file,
            )
        else:
            wallet = _unlock(store, config)
        counts = walletlib.import_backup(store, wallet, data, passphrase)
    if args.json:
        print(json.dumps({"state_dir": str(config.daemon.state_dir), **counts}))
        return
    print(f"imported {counts['keys']} keys, {counts['dids']} DIDs and {counts['docs']} DID documents "
          f"into {config.daemon.state_dir}")
    print(f"  {counts['credentials']} credentials, {counts['connections']} connections, "
          f"{counts['exchanges']} finished credential exchanges, {counts['held_lists']} held status lists")
    if counts["status_lists_conflicting"]:
        print(f"  {counts['status_lists']} status lists of ours restored; {counts['status_lists_conflicting']} "
              f"already here (kept; {counts['status_indexes']} handed-out indexes restored, "
              f"{counts['status_indexes_shared']} handed out by both)")
    else:
        print(f"  {counts['status_lists']} status lists of ours restored ({counts['status_indexes']} indexes "
              "handed out, all restored)")
    if counts["status_lists_started"]:
        print(f"  issuing goes on in {counts['status_lists_started']} new status lists (so that no index "
              "handed out since the backup was made is handed out again)")
    if "peer_id" in counts:
        print(f"restored the libp2p peer identity {counts['peer_id']}")


def _passphrase(args: argparse.Namespace, config: Config) -> None:
    new = _given_passphrase(args, "new_")
    if args.remove and new is not None:
        raise _Usage("--remove cannot be combined with a new passphrase")
    current = _given_passphrase(args, "current_")
    with _open_store(config, exclusive=False) as store:
        record = store.meta_get(walletlib.META_NAME)
        if not isinstance(record, dict):
            raise DaemonError("not_found", f"no wallet in {config.daemon.state_dir}; run 'didcommd wallet init'")
        if record.get("mode") == walletlib.MODE_PASSPHRASE and current is None:
            current = walletlib.configured_passphrase(config.wallet, os.environ) or _prompt(
                "current wallet passphrase", confirm=False
            )
        if not args.remove and new is None:
            new = _prompt("new wallet passphrase", confirm=True)
        mode = walletlib.change_protection(
            store,
            current=current if record.get("mode") == walletlib.MODE_PASSPHRASE else None,
            new=None if args.remove else new,
            key_file=config.wallet.key_file,
        )
    if mode == walletlib.MODE_KEYFILE:
        print(f"passphrase removed; the wallet is now protected by the key file {config.wallet.key_file}")
    else:
        print("passphrase set; configure wallet.passphrase_file or wallet.passphrase_env (or the "
              "wallet-passphrase credential) to match before the next start")


def _info(args: argparse.Namespace, config: Config) -> None:
    with _open_store(config, exclusive=False) as store:
        record = store.meta_get(walletlib.META_NAME)
        if not isinstance(record, dict):
            raise DaemonError("not_found", f"no wallet in {config.daemon.state_dir}; run 'didcommd wallet init'")
        info = {
            "state_dir": str(config.daemon.state_dir),
            "protection": record.get("mode"),
            "key_file": str(config.wallet.key_file) if record.get("mode") == walletlib.MODE_KEYFILE else None,
            "keys": len(store.keys_all()),
            "dids": [{"did": r.did, "method": r.method, "label": r.label} for r in store.did_list(own=True)],
        }
    print(json.dumps(info, indent=2))

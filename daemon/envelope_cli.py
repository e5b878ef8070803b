"""``didcommd envelope``: pack and unpack DIDComm messages offline.

Reads a message on stdin, writes the result on stdout; nothing touches the
daemon's state.  Keys come from ``--secrets FILE`` (a JSON array of private
JWKs, each with a ``kid`` that is a full DID URL) and DID documents for
methods other than did:key / did:peer from ``--did-docs FILE``.

On failure: a non-zero exit and one line ``error: <what>`` on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from . import exitcodes

#: Largest stdin / input file we read.
MAX_INPUT_BYTES = 16 * 1024 * 1024

EPILOG = """examples:
  didcommd envelope pack plaintext < msg.json
  didcommd envelope --secrets alice.json pack signed --sign-from did:example:alice < msg.json
  didcommd envelope --secrets alice.json --did-docs docs.json \\
      pack encrypted --to did:example:bob --from did:example:alice < msg.json > packed.json
  didcommd envelope --secrets bob.json --did-docs docs.json unpack < packed.json

  --from given means authcrypt; without it the message is anoncrypted.
  --to/--from/--sign-from take a DID (keys chosen as the spec says: the
  sender's first key-agreement key on a curve the recipient has) or a DID URL
  naming one key.

""" + exitcodes.EPILOG


class UsageError(Exception):
    """A command-line mistake argparse cannot see (exit 2)."""


def _key_files(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # At the top level the defaults are None; after the subcommand they are
    # SUPPRESS so that they do not overwrite a value given before it.
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--secrets",
        metavar="FILE",
        default=default,
        help="JSON array of private JWKs, each with a 'kid' (a full DID URL)",
    )
    parser.add_argument(
        "--did-docs",
        metavar="FILE",
        default=default,
        help="JSON array of DID documents for DIDs that are not did:key / did:peer",
    )


def add_parser(sub: Any) -> None:
    """Register ``didcommd envelope``."""
    fmt = argparse.RawDescriptionHelpFormatter
    env = sub.add_parser(
        "envelope",
        help="pack / unpack DIDComm messages offline (stdin -> stdout)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=fmt,
    )
    _key_files(env, top=True)
    env.set_defaults(handler=lambda _args: _usage(env))
    actions = env.add_subparsers(dest="action", metavar="ACTION")

    pack = actions.add_parser("pack", help="pack a plaintext message read from stdin")
    pack.set_defaults(handler=lambda _args: _usage(pack))
    forms = pack.add_subparsers(dest="form", metavar="FORM")

    plain = forms.add_parser("plaintext", help="validate and print the plaintext message")
    _key_files(plain, top=False)
    plain.set_defaults(handler=_run(_pack_plaintext))

    signed = forms.add_parser("signed", help="sign(plaintext): a JWS")
    _key_files(signed, top=False)
    signed.add_argument("--sign-from", required=True, metavar="KID|DID", help="signing DID or key")
    signed.set_defaults(handler=_run(_pack_signed))

    enc = forms.add_parser(
        "encrypted",
        help="anoncrypt or authcrypt (optionally signed, optionally sender-protected)",
        epilog="--from makes it authcrypt; without --from it is anoncrypt.",
    )
    _key_files(enc, top=False)
    enc.add_argument("--to", required=True, metavar="DID|KID", help="recipient DID or key")
    enc.add_argument("--from", dest="frm", metavar="KID|DID", help="sender (authcrypt)")
    enc.add_argument("--sign-from", metavar="KID|DID", help="also sign with this DID or key")
    enc.add_argument(
        "--enc-anon",
        default="A256CBC-HS512",
        choices=["A256CBC-HS512", "A256GCM", "XC20P"],
        help="content encryption for anoncrypt (default A256CBC-HS512)",
    )
    enc.add_argument(
        "--protect-sender",
        action="store_true",
        help="wrap the authcrypt in an anoncrypt to hide the sender (needs --from)",
    )
    enc.set_defaults(handler=_run(_pack_encrypted))

    unpack = actions.add_parser("unpack", help="unpack any DIDComm message read from stdin")
    _key_files(unpack, top=False)
    unpack.add_argument(
        "--no-expiry-check",
        action="store_true",
        help="accept a message whose expires_time has passed",
    )
    unpack.set_defaults(handler=_run(_unpack))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return exitcodes.USAGE


def _error(text: str) -> None:
    print(f"error: {text}", file=sys.stderr)


def _read_json_file(path: str | None, what: str) -> list[Any]:
    if path is None:
        return []
    try:
        with open(Path(path), "rb") as f:
            raw = f.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc.strerror}") from None
    if len(raw) > MAX_INPUT_BYTES:
        raise UsageError(f"{what} file {path} is over {MAX_INPUT_BYTES} bytes")
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise UsageError(f"{what} file {path} is not valid JSON") from None
    if not isinstance(value, list):
        raise UsageError(f"{what} file {path} must hold a JSON array")
    return value


def _read_stdin() -> bytes:
    data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"input is over {MAX_INPUT_BYTES} bytes")
    if not data.strip():
        raise UsageError("no input on stdin")
    return data


def _context(args: argparse.Namespace) -> tuple[Any, Any]:
    from protocols.did.resolver import default_resolver
    from protocols.secrets import InMemorySecrets

    secrets = InMemorySecrets(_read_json_file(args.secrets, "secrets"))
    docs = _read_json_file(args.did_docs, "DID documents")
    return default_resolver(extra_docs=docs), secrets


def _message(data: bytes) -> dict[str, Any]:
    from protocols.codec import json_object

    return json_object(data, "input message")


def _pack_plaintext(args: argparse.Namespace) -> str:
    from protocols.envelope import pack_plaintext

    return pack_plaintext(_message(_read_stdin()))


def _pack_signed(args: argparse.Namespace) -> str:
    from protocols.envelope import pack_signed

    resolver, secrets = _context(args)
    return pack_signed(
        _message(_read_stdin()), args.sign_from, resolver=resolver, secrets=secrets
    )


def _pack_encrypted(args: argparse.Namespace) -> str:
    from protocols.envelope import pack_encrypted

    if args.protect_sender and not args.frm:
        raise UsageError("--protect-sender needs --from (it hides an authcrypt sender)")
    resolver, secrets = _context(args)
    result = pack_encrypted(
        _message(_read_stdin()),
        args.to,
        frm=args.frm,
        sign_from=args.sign_from,
        enc_anon=args.enc_anon,
        protect_sender=args.protect_sender,
        resolver=resolver,
        secrets=secrets,
    )
    return result.packed


def _unpack(args: argparse.Namespace) -> str:
    from protocols.codec import json_dumps
    from protocols.envelope import unpack

    resolver, secrets = _context(args)
    now = None if args.no_expiry_check else int(time.time())
    result = unpack(_read_stdin(), resolver=resolver, secrets=secrets, now=now)
    return json_dumps({"message": result.message, "metadata": result.metadata.to_json()})


def _run(action: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        from protocols.errors import DIDCommError

        try:
            out = action(args)
        except UsageError as exc:
            _error(str(exc))
            return exitcodes.USAGE
        except DIDCommError as exc:
            _error(exc.message)
            return exitcodes.DATA
        sys.stdout.write(out + "\n")
        return exitcodes.OK

    return handler

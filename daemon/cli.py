"""``didcommd``: the daemon's command line.

Subcommands live in the module that does the work; this file only wires them:

- ``didcommd run``       the service (:mod:`daemon.service`)
- ``didcommd envelope``  offline pack / unpack (:mod:`daemon.envelope_cli`)
- ``didcommd wallet``    wallet init / export / import / passphrase (:mod:`daemon.wallet_cli`)

Exit codes (shared by every subcommand, see :mod:`daemon.exitcodes`).
"""

from __future__ import annotations

import argparse
import sys

from . import exitcodes

#: Subcommand -> the module that registers it.  Each module is imported only
#: when its subcommand runs: the daemon's modules take ~0.25 s to import, which
#: an offline ``didcommd envelope`` call should not pay.
SUBCOMMANDS = {
    "run": "daemon.service",
    "envelope": "daemon.envelope_cli",
    "wallet": "daemon.wallet_cli",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``didcommd`` argument parser (all subcommands, or just ``only``)."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="didcommd",
        description=(
            "didcommd: a peer-to-peer DIDComm Messaging v2 daemon.\n\n"
            "Run the service with 'didcommd run'; drive it with 'didcommctl'.\n"
            "'didcommd envelope' packs and unpacks DIDComm messages offline.\n"
            "'didcommd wallet' creates, backs up and re-protects the wallet."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=exitcodes.EPILOG,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in SUBCOMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module).add_parser(sub)
    return parser


def _subcommand(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first non-option word)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in SUBCOMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``didcommd`` console script."""
    args_list = sys.argv[1:] if argv is None else argv
    parser = build_parser(only=_subcommand(args_list))
    args = parser.parse_args(args_list)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return exitcodes.USAGE
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

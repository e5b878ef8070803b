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


def build_parser() -> argparse.ArgumentParser:
    """The full ``didcommd`` argument parser."""
    from . import envelope_cli, service, wallet_cli

    parser = argparse.ArgumentParser(
        prog="didcommd",
        description=(
            "didcommd: a peer-to-peer DIDComm Messaging v2 daemon.\n\n"
            "Run the service with 'didcommd run'; drive it with 'didcommctl'.\n"
            "'didcommd envelope' packs and unpacks DIDComm messages offline."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=exitcodes.EPILOG,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    service.add_parser(sub)
    envelope_cli.add_parser(sub)
    wallet_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``didcommd`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return exitcodes.USAGE
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""``didcommctl``: drive a running didcommd from the command line.

Theory of operation
-------------------
Each subcommand is one (or, for ``events``, a stream of) control call(s)
through :class:`daemon.client.SyncClient`; this file only turns arguments into
parameters and results into text.  Human-readable output by default, the raw
result as JSON with ``--json`` (one JSON document, or one per line for
``events``), so scripts never parse the human form.

Errors go to stderr as one line, and the exit status says what kind of
failure it was (:mod:`daemon.exitcodes`): 4 when the daemon cannot be reached
(with a hint on how to start it), 5 when it refuses us, 2 for bad arguments,
3 for bad input data, 1 for any other error reply.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from protocols.codec import b64u_encode

from . import exitcodes
from .client import ControlError, DaemonUnavailableError, SyncClient, default_socket_path
from .ctl_credentials import add_credential_commands as _add_credential_commands
from .ctl_protocols import add_protocol_commands as _add_protocol_commands
from .ctl_protocols import follow_chat, stop_on_signals
from .errors import exit_code_for
from .exitcodes import UsageError

#: Without ``--follow``, ``events`` stops after this many seconds without an event.
EVENTS_IDLE_SECONDS = 0.5
#: Seconds a reply may take beyond a command's --wait before didcommctl gives up.
WAIT_REPLY_MARGIN_S = 10.0
#: Largest packed message ``receive`` reads from a file or stdin.
MAX_INPUT_BYTES = 16 * 1024 * 1024

#: Control-layer error codes → exit status (the agent's come from daemon.errors).
_EXIT_CODES = {
    "unavailable": exitcodes.UNAVAILABLE,
    "connection_closed": exitcodes.UNAVAILABLE,
    "shutting_down": exitcodes.UNAVAILABLE,
    "busy": exitcodes.UNAVAILABLE,
    "permission_denied": exitcodes.PERMISSION,
    "invalid_params": exitcodes.USAGE,
    "method_not_found": exitcodes.USAGE,
}


# -- output -----------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return b64u_encode(value)
    raise TypeError(f"cannot show a {type(value).__name__}")


def _print_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _ts(value: Any) -> str:
    if isinstance(value, int | float) and value > 0:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    return str(value) if value is not None else "-"


def _table(rows: list[list[str]], header: list[str], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _show_status(result: Any, out: TextIO) -> None:
    for key, value in result.items():
        if isinstance(value, dict):
            out.write(f"{key}:\n")
            for k, v in value.items():
                out.write(f"  {k}: {v}\n")
        else:
            out.write(f"{key}: {value}\n")


def _show_did(result: Any, out: TextIO) -> None:
    out.write(f"{result.get('did')}\n")


def _show_dids(result: Any, out: TextIO) -> None:
    dids = result.get("dids", [])
    if not dids:
        out.write("no DIDs yet; create one with 'didcommctl did create'\n")
        return
    rows = [[str(d.get("label") or "-"), str(d.get("method", "-")), _ts(d.get("created")), str(d.get("did"))] for d in dids]
    _table(rows, ["LABEL", "METHOD", "CREATED", "DID"], out)


def _short_did(did: str) -> str:
    """A DID short enough for a table column (did:peer:2 DIDs run to 500+ chars)."""
    return did if len(did) <= 40 else did[:28] + "..." + did[-9:]


def _show_messages(result: Any, out: TextIO) -> None:
    messages = result.get("messages", [])
    if not messages:
        out.write("no messages\n")
        return
    rows = []
    for m in messages:
        peer = m.get("from") or m.get("to") or "-"
        if isinstance(peer, list):
            peer = ",".join(_short_did(str(p)) for p in peer)
        rows.append([str(m.get("id")), str(m.get("state", "-")), _ts(m.get("received") or m.get("created")), str(m.get("type") or "-"), _short_did(str(peer))])
    _table(rows, ["ID", "STATE", "TIME", "TYPE", "PEER"], out)


def _show_state(result: Any, out: TextIO) -> None:
    out.write(f"{result.get('id')} {result.get('state')}\n")


def _show_deleted(result: Any, out: TextIO) -> None:
    n = result.get("deleted", {})
    out.write(f"deleted {result.get('id')}: inbox {n.get('inbox', 0)}, outbox {n.get('outbox', 0)}, "
              f"records {n.get('records', 0)}, events erased {n.get('events', 0)}\n")


def _show_received(result: Any, out: TextIO) -> None:
    _show_state(result, out)
    if result.get("state") == "rejected":
        out.write(f"the reason is recorded: didcommctl message show {result.get('id')}\n")


def _receive_verdict(result: Any) -> int:
    """A message that was refused (does not decrypt or verify) is bad input data."""
    return exitcodes.DATA if result.get("state") == "rejected" else exitcodes.OK


def _show_event(event: Any, out: TextIO) -> None:
    if not isinstance(event, dict):
        out.write(f"{event}\n")
        return
    data = json.dumps(event.get("data"), sort_keys=True, default=_jsonable)
    out.write(f"{event.get('seq')}  {_ts(event.get('time'))}  {event.get('kind')}  {data}\n")
    out.flush()


def _show_peers(result: Any, out: TextIO) -> None:
    peers = result.get("peers", [])
    if not peers:
        out.write("no peers known yet\n")
        return
    rows = []
    for p in peers:
        latency = p.get("latency_ms")
        rows.append([
            str(p.get("peer_id")), str(p.get("how")), "yes" if p.get("connected") else "no",
            _ts(p.get("last_seen")), "-" if latency is None else f"{latency:.1f} ms",
            ",".join(p.get("addrs") or []) or "-",
        ])
    _table(rows, ["PEER", "HOW", "CONNECTED", "LAST SEEN", "LATENCY", "ADDRESSES"], out)


def _show_peer(result: Any, out: TextIO) -> None:
    _show_peers({"peers": [result]}, out)


def _show_methods(result: Any, out: TextIO) -> None:
    out.write(f"control API version {result.get('api')}\n\n")
    for m in result.get("methods", []):
        params = " ".join(
            (f"{p['name']}:{p['type']}" if p.get("required") else f"[{p['name']}:{p['type']}]") for p in m.get("params", [])
        )
        out.write(f"{m['name']} {params}\n    {m.get('doc', '')}\n")


# -- arguments → calls ---------------------------------------------------------------------------


def _read_input(name: str) -> bytes:
    try:
        if name == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with open(name, "rb") as f:
                data = f.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}", exitcodes.DATA) from None
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{name} is larger than {MAX_INPUT_BYTES} bytes", exitcodes.DATA)
    return data


def _json_object(text: str, what: str) -> dict[str, Any]:
    if text.startswith("@"):
        text = _read_input(text[1:]).decode("utf-8", errors="replace")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}", exitcodes.DATA) from None
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object", exitcodes.DATA)
    return value


def _params_send(a: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"to": a.to, "type": a.type, "body": _json_object(a.body, "--body")}
    for key, value in (("from", a.frm), ("thid", a.thid), ("expires_time", a.expires_time)):
        if value is not None:
            params[key] = value
    if a.anoncrypt:
        params["anoncrypt"] = True
    return params


def _params_receive(a: argparse.Namespace) -> dict[str, Any]:
    data = _read_input(a.file)
    try:
        return {"packed": data.decode("utf-8").strip()}
    except UnicodeDecodeError:
        return {"packed": data}


def _params_list(box: str) -> Callable[[argparse.Namespace], dict[str, Any]]:
    def params(a: argparse.Namespace) -> dict[str, Any]:
        p: dict[str, Any] = {"box": box, "limit": a.limit}
        if a.before is not None:
            p["before"] = a.before
        return p

    return params


# -- the parser ------------------------------------------------------------------------------------

_DESCRIPTION = """\
didcommctl talks to a running didcommd over its control socket.

Start the daemon first ('make run', 'didcommd run' or 'systemctl --user start didcommd'),
then create a DID and send a message:

  didcommctl did create --label alice
  didcommctl send --to did:peer:2... --type https://didcomm.org/basicmessage/2.0/message \\
                  --body '{"content": "hello"}'
  didcommctl inbox
"""

_GLOBAL_EPILOG = """\
socket:
  --socket PATH, else $DIDCOMMD_CONTROL_SOCKET, else the daemon's default
  ($XDG_RUNTIME_DIR/didcommd/control.sock, or the control.socket of its config file),
  else /run/didcommd/control.sock for the system service.

""" + exitcodes.EPILOG


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """--socket, --json and --timeout: before the command or anywhere after it."""
    def default(value: Any) -> Any:
        # On a command's parser an absent option must not overwrite what was
        # given before the command: SUPPRESS leaves the attribute alone.
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--socket", type=Path, metavar="PATH", default=default(None),
                        help="control socket of the daemon (see didcommctl --help)")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="print results as JSON (for scripts)")
    parser.add_argument("--timeout", type=float, default=default(60.0), metavar="S",
                        help="seconds to wait for a reply (default 60)")


def _command_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    _global_options(parent, defaults=False)
    return parent


def _sub(sub: Any, name: str, help: str, epilog: str, **kw: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=help[0].upper() + help[1:] + ".", epilog="examples:\n" + epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter, parents=[_command_options()], **kw,
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The full ``didcommctl`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="didcommctl",
        description=_DESCRIPTION,
        epilog=_GLOBAL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _sub(sub, "status", "show the daemon's state", "  didcommctl status\n  didcommctl --json status | jq .uptime_s")
    p.set_defaults(rpc="status", params=lambda a: {}, show=_show_status)

    did = _sub(sub, "did", "create, list, resolve and add DIDs", "  didcommctl did create --label alice\n  didcommctl did list\n  didcommctl did resolve did:key:z6Mk...")
    did.set_defaults(rpc=None, help_of=did)
    did_sub = did.add_subparsers(dest="did_command", metavar="ACTION")
    p = _sub(did_sub, "create", "create a DID (keys stay in the wallet)",
             "  didcommctl did create                  # did:peer:2, Ed25519 + X25519\n"
             "  didcommctl did create --method key --label laptop")
    p.add_argument("--method", dest="did_method", choices=["peer", "key"], default="peer", help="DID method (default: peer)")
    p.add_argument("--label", help="a local name for the DID")
    p.set_defaults(rpc="did.create", params=lambda a: {"method": a.did_method, **({"label": a.label} if a.label else {})}, show=_show_did)
    p = _sub(did_sub, "list", "list our DIDs", "  didcommctl did list\n  didcommctl --json did list")
    p.set_defaults(rpc="did.list", params=lambda a: {}, show=_show_dids)
    p = _sub(did_sub, "resolve", "resolve a DID to its DID document", "  didcommctl did resolve did:peer:2.Ez6LS...")
    p.add_argument("did", help="the DID to resolve")
    p.set_defaults(rpc="did.resolve", params=lambda a: {"did": a.did}, show=_print_json)

    p = _sub(did_sub, "add", "remember another party's DID document (JSON file, or - for stdin)",
             "  didcommctl did add bob-did.json --label bob\n  didcommctl did resolve did:peer:2... | didcommctl did add -")
    p.add_argument("file", metavar="FILE|-", help="the DID document as JSON")
    p.add_argument("--label", help="a local name for the DID")
    p.set_defaults(
        rpc="did.add",
        params=lambda a: {"doc": _json_object("@" + a.file, "the DID document"), **({"label": a.label} if a.label else {})},
        show=_show_did,
    )

    p = _sub(sub, "send", "pack a message and queue it for delivery",
             "  didcommctl send --to did:peer:2... --type https://didcomm.org/basicmessage/2.0/message \\\n"
             "                  --body '{\"content\": \"hi\"}'\n"
             "  didcommctl send --to DID --type URI --body @body.json --from did:peer:2... --anoncrypt")
    p.add_argument("--to", required=True, metavar="DID", help="recipient DID")
    p.add_argument("--type", required=True, metavar="URI", help="message type URI")
    p.add_argument("--body", default="{}", metavar="JSON", help="message body as a JSON object, or @FILE (default {})")
    p.add_argument("--from", dest="frm", metavar="DID", help="sender DID (default: our first DID)")
    p.add_argument("--thid", metavar="ID", help="thread id")
    p.add_argument("--expires-time", type=int, metavar="EPOCH", help="expiry, seconds since the epoch")
    p.add_argument("--anoncrypt", action="store_true", help="do not authenticate the sender")
    p.set_defaults(rpc="message.send", params=_params_send, show=_show_state)

    for name, box in (("inbox", "inbox"), ("outbox", "outbox")):
        p = _sub(sub, name, f"list messages in the {box}, newest first",
                 f"  didcommctl {name}\n  didcommctl {name} --limit 5\n  didcommctl --json {name} | jq '.messages[].id'")
        p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N messages (default 50)")
        p.add_argument("--before", type=int, metavar="SEQ", help="only messages older than SEQ (paging)")
        p.set_defaults(rpc="message.list", params=_params_list(box), show=_show_messages)

    msg = _sub(sub, "message", "show or delete one message",
               "  didcommctl message show 1f0e...\n  didcommctl message show --outbox 1f0e...\n"
               "  didcommctl message delete 1f0e...")
    msg.set_defaults(rpc=None, help_of=msg)
    msg_sub = msg.add_subparsers(dest="message_command", metavar="ACTION")
    p = _sub(msg_sub, "show", "show a received (or, with --outbox, sent) message", "  didcommctl message show 1f0e...")
    p.add_argument("id", help="message id")
    p.add_argument("--outbox", action="store_true", help="a sent message, with its packed form (until it is delivered or expired)")
    p.set_defaults(
        rpc=lambda a: "message.outbox.get" if a.outbox else "message.get",
        params=lambda a: {"id": a.id},
        show=_print_json,
    )

    p = _sub(msg_sub, "delete", "erase a received or sent message, for good",
             "  didcommctl message delete 1f0e...\n\n"
             "The message's content goes from the inbox (a tombstone of its id and sender stays, so\n"
             "a copy arriving again is dropped as a duplicate), from the outbox (a message still\n"
             "queued is not sent; one being sent right now is refused: try again in a moment), its\n"
             "basic-message record, and the stored events about it (their data is replaced by\n"
             "{\"id\": ..., \"deleted\": true}).  A whole exchange: 'didcommctl thread THID --delete';\n"
             "a credential: 'didcommctl credential delete'.")
    p.add_argument("id", help="message id")
    p.set_defaults(rpc="message.delete", params=lambda a: {"id": a.id}, show=_show_deleted)

    p = _sub(sub, "receive", "inject a packed message as if it came from the network",
             "  didcommctl receive message.jwe\n  cat message.jwe | didcommctl receive -")
    p.add_argument("file", metavar="FILE|-", help="file holding the packed message, or - for stdin")
    p.set_defaults(rpc="message.receive", params=_params_receive, show=_show_received, verdict=_receive_verdict)

    p = _sub(sub, "events", "show events (received messages, state changes)",
             "  didcommctl events                      # stored events, then exit\n"
             "  didcommctl events --follow --kind message.received\n"
             "  didcommctl --json events --follow | jq .kind")
    p.add_argument("--follow", "-f", action="store_true", help="keep waiting for new events (Ctrl-C to stop)")
    p.add_argument("--kind", action="append", metavar="K", help="only events of kind K (repeatable)")
    p.add_argument("--since", type=int, metavar="SEQ", help="replay stored events after SEQ (default: all without --follow, none with it)")
    p.set_defaults(rpc="events.subscribe", params=None, show=None)

    peers = _sub(sub, "peers", "list known libp2p peers, or connect to one",
                 "  didcommctl peers\n  didcommctl peers connect /ip4/192.0.2.7/tcp/4001/p2p/12D3KooW...")
    peers.set_defaults(rpc="peers.list", params=lambda a: {}, show=_show_peers)
    peers_sub = peers.add_subparsers(dest="peers_command", metavar="ACTION")
    p = _sub(peers_sub, "list", "list known libp2p peers", "  didcommctl peers list")
    p.set_defaults(rpc="peers.list", params=lambda a: {}, show=_show_peers)
    p = _sub(peers_sub, "connect", "dial a libp2p peer", "  didcommctl peers connect /ip4/192.0.2.7/tcp/4001/p2p/12D3KooW...")
    p.add_argument("multiaddr", metavar="MULTIADDR", help="address ending in /p2p/<peer id>")
    p.set_defaults(rpc="peers.connect", params=lambda a: {"multiaddr": a.multiaddr}, show=_show_peer)

    _add_protocol_commands(sub)
    _add_credential_commands(sub)

    p = _sub(sub, "shutdown", "stop the daemon cleanly", "  didcommctl shutdown")
    p.set_defaults(rpc="shutdown", params=lambda a: {}, show=lambda r, out: out.write("daemon is stopping\n"))

    p = _sub(sub, "methods", "list the control API's methods", "  didcommctl methods")
    p.set_defaults(rpc="methods", params=lambda a: {}, show=_show_methods)

    p = _sub(sub, "call", "call any control method with JSON parameters",
             "  didcommctl call status\n  didcommctl call message.list '{\"box\": \"outbox\", \"limit\": 3}'")
    p.add_argument("call_method", metavar="METHOD", help="method name (see 'didcommctl methods')")
    p.add_argument("call_params", metavar="JSON", nargs="?", default="{}", help="parameters as a JSON object")
    p.set_defaults(
        rpc=lambda a: a.call_method,
        params=lambda a: _json_object(a.call_params, "parameters"),
        show=_print_json,
    )
    return parser


# -- running ------------------------------------------------------------------------------------


def _events(client: SyncClient, args: argparse.Namespace, out: TextIO) -> int:
    since = args.since if args.since is not None else (None if args.follow else 0)
    client.subscribe(args.kind, since)
    timeout = None if args.follow else EVENTS_IDLE_SECONDS
    if args.follow:
        stop_on_signals()
    try:
        for event in client.events(timeout=timeout):
            if args.json:
                out.write(json.dumps(event, sort_keys=True, default=_jsonable) + "\n")
                out.flush()
            else:
                _show_event(event, out)
    except KeyboardInterrupt:
        pass
    return exitcodes.OK


def _fail(message: str, code: int, err: TextIO) -> int:
    err.write(f"didcommctl: {message}\n")
    return code


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Entry point of the ``didcommctl`` console script."""
    try:
        return _main(argv, out=out, err=err)
    except BrokenPipeError:
        # The reader went away ('didcommctl inbox | head'): not an error of
        # ours; point stdout at /dev/null so the interpreter's final flush
        # does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return exitcodes.OK


def _main(argv: Sequence[str] | None, *, out: TextIO | None, err: TextIO | None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "rpc", None):
        # A command group without its action ('didcommctl did'), or nothing at all.
        (getattr(args, "help_of", None) or parser).print_help(err)
        return exitcodes.USAGE
    method = args.rpc if isinstance(args.rpc, str) else args.rpc(args)
    try:
        socket_path = args.socket or default_socket_path(os.environ)
        # A command that waits for a peer (--wait) must not time out before the daemon answers.
        wait = getattr(args, "wait", None)
        if isinstance(wait, float | int) and wait + WAIT_REPLY_MARGIN_S > args.timeout:
            args.timeout = wait + WAIT_REPLY_MARGIN_S
        with SyncClient.connect(socket_path, timeout=args.timeout) as client:
            if args.command == "events":
                return _events(client, args, out)
            if args.command == "chat" and args.follow and args.content is None:
                return follow_chat(client, args, out)
            result = client.call(method, args.params(args))
    except UsageError as exc:
        return _fail(str(exc), exc.code, err)
    except DaemonUnavailableError as exc:
        return _fail(exc.message, exitcodes.UNAVAILABLE, err)
    except ControlError as exc:
        return _fail(str(exc), _EXIT_CODES.get(exc.code) or exit_code_for(exc.code), err)
    except TimeoutError:
        return _fail(f"no reply within {args.timeout:g} s; is didcommd overloaded or stuck?", exitcodes.UNAVAILABLE, err)
    except KeyboardInterrupt:
        return exitcodes.FAILURE
    if args.json:
        _print_json(result, out)
    else:
        args.show(result, out)
    after = getattr(args, "after", None)
    if after is not None:
        try:
            after(result, args, out)
        except UsageError as exc:
            return _fail(str(exc), exc.code, err)
    verdict = getattr(args, "verdict", None)
    return verdict(result) if verdict else exitcodes.OK


if __name__ == "__main__":
    sys.exit(main())

"""``didcommctl`` commands for connections and the core protocols (issue 6).

Theory of operation
-------------------
Same contract as :mod:`daemon.ctl` (which calls :func:`add_protocol_commands`
while it builds its parser): each command is one control call, its
parameters come from the arguments, its result is shown for people or, with
``--json``, printed as is.  Commands that wait for a peer (``ping``,
``features``) pass ``wait`` to the daemon, which answers when the peer has
(or when the wait is over: ``state: timeout``, exit status 1).

``chat CONNECTION`` shows a conversation, oldest first like a chat window;
with ``--follow`` it then subscribes to the basic-message events from the
event number the page was read at, so nothing sent or received in between is
missed (:func:`follow_chat`).

``invite create --qr`` draws the https invitation URL as a QR code in the
terminal and ``--qr-file FILE.png`` writes it as an image, both with segno
(pure Python).
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import signal
import time
from typing import Any, TextIO

from . import exitcodes

#: Default seconds ``ping`` and ``features`` wait for the peer.
DEFAULT_WAIT_SECONDS = 10.0
#: Largest invitation file ``invite accept`` reads.
MAX_INVITATION_FILE_BYTES = 64 * 1024
#: QR module size (pixels) of ``--qr-file`` images.
QR_PNG_SCALE = 4
#: Messages ``chat CONNECTION`` shows unless told otherwise.
CHAT_SHOWN = 20
#: Widest name of the other side in a shown conversation (a DID is cut short).
CHAT_NAME_CHARS = 24
#: Event kinds a followed conversation is made of.
CHAT_EVENTS = ["basicmessage.sent", "basicmessage.received"]


def _usage(message: str, code: int = exitcodes.USAGE) -> Exception:
    return exitcodes.UsageError(message, code)


def _table(rows: list[list[str]], header: list[str], out: TextIO) -> None:
    from .ctl import _table as table

    table(rows, header, out)


def _sub(sub: Any, name: str, help: str, epilog: str) -> argparse.ArgumentParser:
    from .ctl import _sub as make

    return make(sub, name, help, epilog)


# -- invitations ----------------------------------------------------------------------------------


def _params_invite_create(a: argparse.Namespace) -> dict[str, Any]:
    p: dict[str, Any] = {}
    for key, value in (("goal", a.goal), ("goal_code", a.goal_code), ("expires", a.expires),
                       ("label", a.label), ("base_url", a.base_url)):
        if value is not None:
            p[key] = value
    if a.multi_use:
        p["multi_use"] = True
    return p


def _show_invitation(result: Any, out: TextIO) -> None:
    out.write(json.dumps(result.get("invitation"), indent=2, sort_keys=True) + "\n\n")
    out.write(f"{result.get('url')}\n\n{result.get('didcomm_url')}\n")


def _qr(result: Any, args: argparse.Namespace, out: TextIO) -> None:
    if not (args.qr or args.qr_file):
        return
    import segno

    code = segno.make(str(result.get("url")), error="l")
    if args.qr and not args.json:
        out.write("\n")
        code.terminal(out=out, compact=True)
    if args.qr_file:
        try:
            code.save(args.qr_file, kind="png", scale=QR_PNG_SCALE)
        except OSError as exc:
            raise _usage(f"cannot write {args.qr_file}: {exc.strerror}", exitcodes.FAILURE) from None


def _params_invite_accept(a: argparse.Namespace) -> dict[str, Any]:
    text = a.invitation
    if not text.startswith(("http://", "https://", "didcomm://", "{")) and os.path.isfile(text):
        try:
            with open(text, "rb") as f:
                data = f.read(MAX_INVITATION_FILE_BYTES + 1)
        except OSError as exc:
            raise _usage(f"cannot read {text}: {exc.strerror}", exitcodes.DATA) from None
        if len(data) > MAX_INVITATION_FILE_BYTES:
            raise _usage(f"{text} is larger than {MAX_INVITATION_FILE_BYTES} bytes", exitcodes.DATA)
        text = data.decode("utf-8", errors="replace").strip()
    p: dict[str, Any] = {"invitation": text}
    if a.label:
        p["label"] = a.label
    return p


def _show_accepted(result: Any, out: TextIO) -> None:
    c = result.get("connection") or {}
    verb = "already connected" if result.get("existing") else "connecting"
    out.write(f"{verb}: connection {c.get('id')} ({c.get('label') or '-'}) state {c.get('state')}\n")


# -- connections -------------------------------------------------------------------------------------


def _short(did: Any) -> str:
    text = str(did or "-")
    return text if len(text) <= 40 else text[:28] + "..." + text[-9:]


def _show_connections(result: Any, out: TextIO) -> None:
    conns = result.get("connections", [])
    if not conns:
        out.write("no connections; make an invitation with 'didcommctl invite create'\n")
        return
    rows = [[str(c["id"]), str(c.get("label") or "-"), str(c.get("state")), str(c.get("role")),
             _short(c.get("their_did"))] for c in conns]
    _table(rows, ["ID", "LABEL", "STATE", "ROLE", "THEIR DID"], out)


def _show_connection(result: Any, out: TextIO) -> None:
    for key in ("id", "label", "state", "role", "my_did", "their_did", "rotating_to", "invitation_id"):
        out.write(f"{key}: {result.get(key) if result.get(key) is not None else '-'}\n")
    for key in ("my_retired", "their_retired"):
        if result.get(key):
            out.write(f"{key}: {', '.join(result[key])}\n")


def _show_rotated(result: Any, out: TextIO) -> None:
    out.write(f"connection {result['connection']['id']} now sends from {result['new_did']}\n")


# -- protocols ---------------------------------------------------------------------------------------


def _answered(result: Any) -> int:
    return exitcodes.OK if result.get("state") in ("answered", "sent", "queued") else exitcodes.FAILURE


def _show_ping(result: Any, out: TextIO) -> None:
    state = result.get("state")
    if state == "answered":
        out.write(f"ping-response from {result.get('connection') or result.get('to')}: "
                  f"round trip {result.get('rtt_ms')} ms\n")
    elif state == "timeout":
        out.write(f"no ping-response yet (thread {result.get('thid')}); it is still queued\n")
    elif state == "problem":
        out.write(f"problem report: {json.dumps(result.get('problem'), sort_keys=True)}\n")
    else:
        out.write(f"ping sent (thread {result.get('thid')})\n")


def _show_features(result: Any, out: TextIO) -> None:
    if result.get("state") != "answered":
        _show_ping(result, out)
        return
    rows = [[str(d.get("feature-type")), str(d.get("id")), ",".join(d.get("roles", [])) or
             str(d.get("value", "-"))] for d in result.get("disclosures", [])]
    if not rows:
        out.write("nothing disclosed\n")
        return
    _table(rows, ["TYPE", "ID", "ROLES/VALUE"], out)


def add_protocol_commands(sub: Any) -> None:
    """Add ``invite``, ``connections``, ``ping``, ``features``, ``chat``, ``thread``."""
    inv = _sub(sub, "invite", "make and accept out-of-band invitations",
               "  didcommctl invite create --goal 'issue a credential' --qr\n"
               "  didcommctl invite accept 'https://didcomm.org/oob?_oob=eyJ...'")
    inv.set_defaults(rpc=None, help_of=inv)
    inv_sub = inv.add_subparsers(dest="invite_command", metavar="ACTION")
    p = _sub(inv_sub, "create", "make an invitation (JSON, https and didcomm URLs, QR code)",
             "  didcommctl invite create\n  didcommctl invite create --multi-use --expires 3600 --qr\n"
             "  didcommctl invite create --qr-file invite.png\n"
             "  didcommctl --json invite create | jq -r .url")
    p.add_argument("--goal", help="what the connection is for, for people")
    p.add_argument("--goal-code", help="what the connection is for, for programs")
    p.add_argument("--multi-use", action="store_true", help="accept any number of answers")
    p.add_argument("--expires", type=int, metavar="SECONDS", help="valid for this many seconds")
    p.add_argument("--label", help="local name for the connection(s) it makes")
    p.add_argument("--base-url", metavar="URL", help="base of the https URL")
    p.add_argument("--qr", action="store_true", help="also draw the URL as a QR code in the terminal")
    p.add_argument("--qr-file", metavar="FILE.png", help="write the QR code as a PNG image")
    p.set_defaults(rpc="invitation.create", params=_params_invite_create, show=_show_invitation, after=_qr)
    p = _sub(inv_sub, "accept", "accept an invitation (URL, JSON or a file holding either)",
             "  didcommctl invite accept 'didcomm://?_oob=eyJ...'\n  didcommctl invite accept invitation.json")
    p.add_argument("invitation", metavar="URL|FILE", help="the invitation URL, JSON, or a file")
    p.add_argument("--label", help="local name for the connection")
    p.set_defaults(rpc="invitation.accept", params=_params_invite_accept, show=_show_accepted)

    con = _sub(sub, "connections", "list, show, rename, delete and rotate connections",
               "  didcommctl connections\n  didcommctl connections show alice\n"
               "  didcommctl connections rotate alice")
    con.set_defaults(rpc="connections.list", params=lambda a: {}, show=_show_connections)
    con_sub = con.add_subparsers(dest="connections_command", metavar="ACTION")
    p = _sub(con_sub, "list", "list connections", "  didcommctl connections list")
    p.set_defaults(rpc="connections.list", params=lambda a: {}, show=_show_connections)
    for name, rpc, help, show in (
        ("show", "connections.show", "show one connection", _show_connection),
        ("delete", "connections.delete", "forget a connection",
         lambda r, out: out.write(f"deleted {r['deleted']['id']}\n")),
        ("rotate", "connections.rotate", "use a new DID with this connection (from_prior)", _show_rotated),
    ):
        p = _sub(con_sub, name, help, f"  didcommctl connections {name} CONNECTION")
        p.add_argument("connection", metavar="CONNECTION", help="id, unique id prefix, label or DID")
        p.set_defaults(rpc=rpc, params=lambda a: {"connection": a.connection}, show=show)
    p = _sub(con_sub, "rename", "give a connection a new local label",
             "  didcommctl connections rename 3f9c2a bob      # then: didcommctl chat bob")
    p.add_argument("connection", metavar="CONNECTION", help="id, unique id prefix, label or DID")
    p.add_argument("label", metavar="LABEL", help="the new label (not one naming another connection)")
    p.set_defaults(rpc="connections.rename", params=lambda a: {"connection": a.connection, "label": a.label},
                   show=lambda r, out: out.write(f"renamed {r['connection']['id']} to {r['connection']['label']}\n"))

    p = _sub(sub, "ping", "trust-ping a connection or DID and show the round trip",
             "  didcommctl ping alice\n  didcommctl ping did:peer:2... --wait 30")
    p.add_argument("to", metavar="CONNECTION|DID", help="connection (id, prefix, label) or DID")
    p.add_argument("--wait", type=float, default=DEFAULT_WAIT_SECONDS, metavar="S",
                   help=f"seconds to wait for the response (default {DEFAULT_WAIT_SECONDS:g}; 0: do not wait)")
    p.set_defaults(rpc="trust_ping.send", params=lambda a: {"to": a.to, "wait": a.wait}, show=_show_ping,
                   verdict=_answered)

    p = _sub(sub, "features", "ask a connection which protocols (or other features) it supports",
             "  didcommctl features alice\n  didcommctl features alice --query 'https://didcomm.org/trust-ping/*'\n"
             "  didcommctl features alice --type all")
    p.add_argument("connection", metavar="CONNECTION", help="connection (id, prefix, label) or DID")
    p.add_argument("--query", default="*", metavar="PATTERN", help="pattern with * wildcards (default *)")
    p.add_argument("--type", dest="feature_type", default="protocol",
                   choices=["protocol", "goal-code", "header", "limit", "all"], help="feature type (default protocol)")
    p.add_argument("--wait", type=float, default=DEFAULT_WAIT_SECONDS, metavar="S", help="seconds to wait")
    p.set_defaults(rpc="features.query", show=_show_features, verdict=_answered,
                   params=lambda a: {"connection": a.connection, "query": a.query,
                                     "feature_type": a.feature_type, "wait": a.wait})

    p = _sub(sub, "chat", "send a basic message (text) to a connection, or show the conversation",
             "  didcommctl chat alice 'hello'              # send\n"
             "  didcommctl chat alice 'got it?' --ack      # ... and ask for an acknowledgement\n"
             "  didcommctl chat alice                      # the last 20 messages, oldest first\n"
             "  didcommctl chat alice --before CURSOR      # the 20 before those (CURSOR: printed above them)\n"
             "  didcommctl chat alice --follow             # ... then new ones as they come (Ctrl-C stops)\n\n"
             "The conversation is every basic message sent to and received from the connection,\n"
             "across its DID rotations; a sent one shows its delivery while the outbox lists it.")
    p.add_argument("connection", metavar="CONNECTION", help="connection (id, prefix, label) or DID")
    p.add_argument("content", metavar="TEXT", nargs="?", help="the text to send (without it: show the conversation)")
    p.add_argument("--lang", help="language tag of the text")
    p.add_argument("--ack", action="store_true", help="ask for an acknowledgement")
    p.add_argument("--limit", type=int, default=CHAT_SHOWN, metavar="N",
                   help=f"messages to show (default {CHAT_SHOWN})")
    p.add_argument("--before", metavar="CURSOR", help="show the messages before this cursor (printed by a page)")
    p.add_argument("--follow", "-f", action="store_true", help="keep showing new messages (Ctrl-C to stop)")
    p.set_defaults(rpc=lambda a: "basicmessage.list" if a.content is None else "basicmessage.send",
                   params=_params_chat, show=_show_chat)

    p = _sub(sub, "thread", "show (or erase) the protocol records of a thread",
             "  didcommctl thread 1f0e...\n  didcommctl thread 1f0e... --delete\n\n"
             "--delete erases a finished thread: its records (e.g. the claims a proof disclosed to\n"
             "us), the messages we received in it (a tombstone of each stays, so they are not taken\n"
             "again) and the data of the stored events about it. A thread still in progress is\n"
             "refused (decline it first), and so is an issuer's thread of a revocable credential:\n"
             "'credential revoke' finds the credential's status-list entry through it.")
    p.add_argument("thid", metavar="THID", help="thread id")
    p.add_argument("--delete", action="store_true", help="erase the thread, for good")
    p.set_defaults(rpc=lambda a: "protocol.thread.delete" if a.delete else "protocol.thread",
                   params=lambda a: {"thid": a.thid},
                   show=lambda r, out: out.write(
                       f"deleted thread {r['thid']}: records {r['deleted']['records']}, inbox "
                       f"{r['deleted']['inbox']}, events erased {r['deleted']['events']}\n" if "deleted" in r
                       else json.dumps(r, indent=2, sort_keys=True) + "\n"))


# -- chat -------------------------------------------------------------------------------------------


def _params_chat(a: argparse.Namespace) -> dict[str, Any]:
    if a.content is not None:
        for flag, given in (("--limit", a.limit != CHAT_SHOWN), ("--before", a.before), ("--follow", a.follow)):
            if given:
                raise _usage(f"{flag} shows a conversation: give it without TEXT")
        return {"connection": a.connection, "content": a.content, **({"lang": a.lang} if a.lang else {}),
                **({"please_ack": True} if a.ack else {})}
    for flag, given in (("--lang", a.lang), ("--ack", a.ack)):
        if given:
            raise _usage(f"{flag} goes with a TEXT to send")
    return {"connection": a.connection, "limit": a.limit, **({"before": a.before} if a.before else {})}


def _chat_line(out: TextIO, when: str, who: str, content: Any, note: str = "") -> None:
    text = str(content if content is not None else "").replace("\n", "\n" + " " * (len(when) + len(who) + 4))
    out.write(f"{when}  {who}  {text}{note}\n")


def _who(result: Any) -> tuple[str, str]:
    """How the two sides are named: (them, us), as wide as each other."""
    them = str(result.get("label") or result.get("connection") or (result.get("their_dids") or ["them"])[0])
    if len(them) > CHAT_NAME_CHARS:
        them = them[:CHAT_NAME_CHARS - 1] + "…"
    width = max(len(them), 2)
    return them.ljust(width), "me".ljust(width)


def _show_chat(result: Any, out: TextIO) -> None:
    from .ctl import _ts

    if "messages" not in result:
        out.write(f"queued {result['id']}\n")
        return
    if result.get("next"):
        out.write(f"(older messages: --before {result['next']})\n")
    them, me = _who(result)
    for m in reversed(result["messages"]):
        sent = m.get("direction") == "sent"
        note = f"  ({m['delivery']})" if sent and m.get("delivery") not in (None, "delivered") else ""
        _chat_line(out, _ts(m.get("time")), me if sent else them, m.get("content"), note)
    if not result["messages"]:
        out.write("no messages yet\n")


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """Ctrl-C (or SIGTERM) ends a following command cleanly, exit 0.

    Set explicitly: a process started in the background by a non-interactive shell
    inherits SIGINT ignored, and Python then never raises KeyboardInterrupt.
    """
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def _event_time(value: Any) -> int | None:
    """An event's ISO 8601 UTC ``time`` as Unix time (pages show local times)."""
    try:
        return calendar.timegm(time.strptime(str(value)[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def follow_chat(client: Any, args: argparse.Namespace, out: TextIO) -> int:
    """``chat CONNECTION --follow``: the page, then the conversation's new messages,
    until Ctrl-C or SIGTERM (exit 0)."""
    from .ctl import _ts

    stop_on_signals()
    try:
        page = client.call("basicmessage.list", _params_chat(args))
        if args.json:
            out.write(json.dumps(page, sort_keys=True) + "\n")
        else:
            _show_chat(page, out)
        out.flush()
        theirs = set(page.get("their_dids") or [])
        shown = {m.get("id") for m in page.get("messages", [])}
        them, me = _who(page)
        client.subscribe(CHAT_EVENTS, page.get("events_seq"))
        for event in client.events():
            data = event.get("data") or {}
            sent = event.get("kind") == "basicmessage.sent"
            if (data.get("to") if sent else data.get("from")) not in theirs or data.get("thid") in shown:
                continue
            if args.json:
                out.write(json.dumps(event, sort_keys=True) + "\n")
            else:
                _chat_line(out, _ts(_event_time(event.get("time"))), me if sent else them, data.get("content"))
            out.flush()
    except KeyboardInterrupt:
        pass
    return exitcodes.OK

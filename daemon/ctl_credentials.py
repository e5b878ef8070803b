"""``didcommctl credential`` and ``didcommctl proof``: issue, hold and present credentials.

Theory of operation
-------------------
Same contract as :mod:`daemon.ctl_protocols`: one control call per command,
parameters from the arguments, a short text for people or the reply as is
with ``--json``.  Claims are given as ``--claim NAME=VALUE`` (the value is
JSON when it parses as JSON -- ``true``, ``42``, ``"007"`` -- and a string
otherwise) or as a JSON object in ``--claims-file`` (``-`` for stdin).
A command that waits for the peer exits 1 unless the exchange succeeded
(issued, received, verified, an offer in answer to our proposal).

Either side may ask first: ``credential propose`` / ``proof propose`` start
a thread (or counter an offer / a request, ``--reply``), and the other side
answers with the usual ``credential offer`` / ``proof request`` given the
thread (``--reply THID``), or declines.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, TextIO

from . import exitcodes

#: Default seconds ``credential accept`` waits for the credential (the issuer answers by itself).
DEFAULT_WAIT_SECONDS = 30.0
#: States of a waited-for reply that mean success.
_SUCCESS = ("offered", "requested", "issued", "credential-received", "verified", "presented", "declined",
            "proposed", "offer-received", "request-received")


def _usage(message: str) -> Exception:
    return exitcodes.UsageError(message, exitcodes.USAGE)


def _sub(sub: Any, name: str, help: str, epilog: str) -> argparse.ArgumentParser:
    from .ctl import _sub as make

    return make(sub, name, help, epilog)


def _table(rows: list[list[str]], header: list[str], out: TextIO) -> None:
    from .ctl import _table as table

    table(rows, header, out)


def parse_claim(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` -> (name, JSON value or the text itself)."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise _usage(f"--claim wants NAME=VALUE, not {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name, value


def _claims(a: argparse.Namespace, *, required: bool = True) -> dict[str, Any]:
    from .ctl import _json_object

    claims: dict[str, Any] = {}
    if a.claims_file:
        # As `send --body @FILE`: size-limited, a JSON object, bad content is exit 3.
        claims.update(_json_object("@" + a.claims_file, a.claims_file))
    for item in a.claim or []:
        name, value = parse_claim(item)
        claims[name] = value
    if not claims and required:
        raise _usage("an offer needs claims: --claim NAME=VALUE (repeatable) or --claims-file FILE")
    return claims


def _params_propose(a: argparse.Namespace) -> dict[str, Any]:
    if a.wait < 0:
        raise _usage("--wait must be 0 or more seconds")
    claims = _claims(a, required=False)
    if not claims and not a.type:
        raise _usage("a proposal names what it asks for: --vct VCT, --claim NAME=VALUE (repeatable), or both")
    p: dict[str, Any] = {"connection": a.connection, "wait": a.wait}
    for key, value in (("type", a.type), ("claims", claims), ("comment", a.comment), ("reply", a.reply),
                       ("format", a.format)):
        if value:
            p[key] = value
    return p


def _params_propose_proof(a: argparse.Namespace) -> dict[str, Any]:
    if a.wait < 0:
        raise _usage("--wait must be 0 or more seconds")
    return {"connection": a.connection, "claims": a.claim, "wait": a.wait,
            **{k: v for k, v in (("type", a.type), ("format", a.format), ("comment", a.comment),
                                  ("reply", a.reply)) if v}}


def _params_offer(a: argparse.Namespace) -> dict[str, Any]:
    if not a.type and not a.reply:
        raise _usage("an offer needs --type VCT (with --reply, the proposal's type is the default)")
    claims = _claims(a)
    unknown = sorted(set(a.plain or []) - set(claims))
    if unknown:
        raise _usage(f"--plain names claims the offer does not have: {', '.join(unknown)}")
    p: dict[str, Any] = {"connection": a.connection, "claims": claims, "wait": a.wait}
    if a.plain:
        disclosable = [n for n in claims if n not in a.plain]
        if not disclosable:
            raise _usage("every claim is --plain: leave at least one the holder may withhold")
        p["disclosable"] = disclosable
    for key in ("type", "issuer", "comment", "valid_for", "format", "reply"):
        if getattr(a, key):
            p[key] = getattr(a, key)
    if a.no_status:
        p["revocable"] = False
    return p


def _params_refresh(a: argparse.Namespace) -> dict[str, Any]:
    if a.wait < 0:
        raise _usage("--wait must be 0 or more seconds")
    return {"wait": a.wait, **({"id": a.id} if a.id else {})}


def _params_request(a: argparse.Namespace) -> dict[str, Any]:
    if a.status_max_age is not None and a.status_max_age < 1:
        raise _usage("--status-max-age must be 1 or more seconds")
    if not a.claim and not a.reply:
        raise _usage("a request needs --claim NAME (repeatable; with --reply, the proposal's claims are the default)")
    return {"connection": a.connection, "wait": a.wait,
            **({"claims": a.claim} if a.claim else {}),
            **({"reply": a.reply} if a.reply else {}),
            **({"type": a.type} if a.type else {}),
            **({"issuers": a.issuer} if a.issuer else {}),
            **({"format": a.format} if a.format else {}),
            **({"status_max_age": a.status_max_age} if a.status_max_age is not None else {}),
            **({"comment": a.comment} if a.comment else {})}


def _verdict(result: Any) -> int:
    return exitcodes.OK if result.get("state") in _SUCCESS else exitcodes.FAILURE


def _value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _line(text: str) -> str:
    """A peer's words as one line, with nothing a terminal would act on."""
    return "".join(c if c.isprintable() else " " for c in text)


def _show_exchange(result: Any, out: TextIO) -> None:
    state = result.get("state")
    thid = result.get("thid")
    if state == "timeout":
        out.write(f"no answer yet (thread {thid}); the exchange goes on\n")
    elif state == "problem":
        # The peer's problem report: its text (a person's reason), its code; not its DIDs.
        problem = result.get("problem") if isinstance(result.get("problem"), dict) else {}
        text = problem.get("text") or problem.get("comment") or json.dumps(problem, sort_keys=True)
        out.write(f"refused ({problem.get('code')}): {_line(str(text))}\n")
    elif state == "failed":
        out.write(f"presentation FAILED verification: {(result.get('result') or {}).get('reason')}\n")
    elif state == "verified":
        r = result.get("result") or {}
        out.write(f"verified: issuer {r.get('issuer')}, type {r.get('vct')}\n")
        if r.get("status"):
            out.write(f"  revocation status: {r['status']}\n")
        for name, v in sorted((r.get("claims") or {}).items()):
            out.write(f"  {name} = {_value(v)}\n")
    elif state in ("issued", "credential-received"):
        r = result.get("result") or {}
        what = f" credential {r['credential_id']}" if r.get("credential_id") else ""
        out.write(f"{state}{what} (thread {thid})\n")
    elif state == "presented":
        whole = " (the whole credential)" if result.get("discloses") == "whole credential" else ""
        out.write(f"presented credential {result.get('credential')}, disclosing "
                  f"{', '.join(result.get('disclosed') or []) or 'nothing'}{whole}\n")
        if result.get("status") in ("revoked", "suspended"):
            out.write(f"warning: its issuer's status list says it is {result['status']}: "
                      "the verifier will refuse it\n")
    elif state == "proposed":
        what = "counter-proposal" if result.get("reply") else "proposal"
        out.write(f"{what} sent (thread {thid}); the peer answers with an offer or a request on this thread, "
                  "which `didcommctl credential pending` then lists, or declines\n")
    elif state == "offer-received":
        r = result.get("result") or {}
        claims = ", ".join(f"{k}={_value(v)}" for k, v in sorted((r.get("claims") or {}).items()))
        out.write(f"offer received (thread {thid}): type {r.get('vct')}, issuer {r.get('issuer')}"
                  f"{', claims ' + claims if claims else ''}\n"
                  f"accept it: didcommctl credential accept {thid}\n")
    elif state == "proposal-received":
        r = result.get("result") or {}
        claims = r.get("claims")
        asked = (", ".join(claims) if isinstance(claims, list)
                 else ", ".join(f"{k}={_value(v)}" for k, v in sorted((claims or {}).items())))
        out.write(f"countered (thread {thid}): the peer proposes type {r.get('vct') or '-'}"
                  f"{', claims ' + asked if asked else ''}"
                  f"{': ' + _line(r['comment']) if isinstance(r.get('comment'), str) else ''}\n"
                  "answer with --reply on this thread, or decline it (see `didcommctl credential pending`)\n")
    elif state == "offered":
        revocable = ("revocable: `didcommctl credential revoke " + str(thid) + "`" if result.get("revocable")
                     else "not revocable")
        out.write(f"offered (thread {thid}), issuer {result.get('issuer')}, {revocable}; the holder decides "
                  "when: watch for issue-credential.issued (didcommctl events --kind issue-credential.issued)\n")
    elif state == "requested" and "asked" in result:
        out.write(f"requested {', '.join(result['asked'] or [])} (thread {thid}); no answer yet\n")
    elif state == "requested" and result.get("to"):
        out.write(f"requested (thread {thid}); the prover decides when: the verdict is a "
                  "present-proof.verified or present-proof.failed event, or use --wait S\n")
    else:
        out.write(f"{state} (thread {thid})\n")


def _pending_claims(r: Any) -> str:
    claims = r.get("claims")
    if isinstance(claims, list):
        return ", ".join(str(c) for c in claims)
    if r.get("kind") == "credential-proposal" and isinstance(claims, dict):
        # What the holder asks to be attested: the values are the point.
        return ", ".join(f"{k}={_value(v)}" for k, v in sorted(claims.items()))
    return ", ".join(sorted(claims or {}))


def _show_pending(result: Any, out: TextIO) -> None:
    rows = [[str(r.get("thid")), str(r.get("kind")), str(r.get("label") or r.get("connection") or r.get("from"))[:40],
             str(r.get("vct") or "-"), _pending_claims(r)] for r in result.get("pending", [])]
    if not rows:
        out.write("nothing is waiting for an answer\n")
        return
    for row, r in zip(rows, result.get("pending", []), strict=True):
        row.append(str(r.get("discloses") or r.get("format") or "-"))
    _table(rows, ["THREAD", "KIND", "FROM", "TYPE", "CLAIMS", "DISCLOSES/FORMAT"], out)
    for r in result.get("pending", []):
        if isinstance(r.get("comment"), str):
            out.write(f"{r.get('thid')}: {_line(r['comment'])}\n")


def _revocation(o: Any) -> str:
    if o.get("revoked"):
        return "revoked"
    return "suspended" if o.get("suspended") else "revocable" if o.get("revocable") else "not revocable"


def _show_issued(result: Any, out: TextIO) -> None:
    rows = [[str(o.get("thid")), str(o.get("state")), _revocation(o), str(o.get("vct")),
             ", ".join(o.get("claims") or [])] for o in result.get("offers", [])]
    if not rows:
        out.write("no offers made\n")
        return
    _table(rows, ["THREAD", "STATE", "REVOCATION", "TYPE", "CLAIMS"], out)


def _show_status_change(result: Any, out: TextIO) -> None:
    """The reply of ``revoke``, ``suspend`` or ``reinstate``."""
    done = next((d for d in ("revoked", "suspended", "reinstated") if result.get(d)), "changed")
    what = f"credential {result['credential_id']}" if result.get("credential_id") else "the credential offered"
    again = " (it already was)" if result.get("already") else ""
    status = result.get("status") or {}
    out.write(f"{done} {what} of thread {result.get('thid')}{again}: entry {status.get('index')} of "
              f"{status.get('uri')}\nholders and verifiers learn it from the next copy of that list\n")


def _show_refresh(result: Any, out: TextIO) -> None:
    for r in result.get("requests", []):
        reason = f": {r['reason']}" if r.get("reason") else ""
        out.write(f"{r.get('state')}: {r.get('uri')}{reason}\n")
    if not result.get("requests"):
        out.write("no status list to ask for (no revocable credential, or its issuer is unknown)\n")
    rows = [[str(c.get("id")), str(c.get("status")), _when(c.get("status_checked"))]
            for c in result.get("credentials", [])]
    if rows:
        _table(rows, ["ID", "STATUS", "CHECKED"], out)


def _verdict_refresh(result: Any) -> int:
    states = {r.get("state") for r in result.get("requests", [])}
    return exitcodes.FAILURE if states & {"failed", "timeout"} else exitcodes.OK


def _when(epoch: Any) -> str:
    if not isinstance(epoch, int):
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def _show_requests(result: Any, out: TextIO) -> None:
    rows = [[str(r.get("thid")), str(r.get("verdict") or r.get("state")), ", ".join(r.get("asked") or []),
             ", ".join(f"{k}={_value(v)}" for k, v in sorted((r.get("proven") or {}).items())) or "-",
             str(r.get("status") or r.get("reason") or "-")]
            for r in result.get("requests", [])]
    if not rows:
        out.write("no proof requests made\n")
        return
    _table(rows, ["THREAD", "VERDICT/STATE", "ASKED", "PROVEN", "STATUS/REASON"], out)


def _show_credentials(result: Any, out: TextIO) -> None:
    rows = [[str(c.get("id")), str(c.get("vct")), str(c.get("issuer"))[:40], str(c.get("status")),
             ", ".join(sorted(c.get("claims") or {}))] for c in result.get("credentials", [])]
    if not rows:
        out.write("no credentials\n")
        return
    _table(rows, ["ID", "TYPE", "ISSUER", "STATUS", "CLAIMS"], out)


def _show_credential(result: Any, out: TextIO) -> None:
    for key in ("id", "format", "vct", "issuer", "subject", "thid", "received", "expires", "status"):
        out.write(f"{key}: {result.get(key)}\n")
    if result.get("revocable"):
        out.write(f"status checked: {_when(result.get('status_checked'))} "
                  f"(list signed {_when(result.get('status_issued'))})\n")
    out.write("claims:\n")
    for name, v in sorted((result.get("claims") or {}).items()):
        out.write(f"  {name} = {_value(v)}\n")
    if result.get("sd_jwt"):
        out.write(f"sd_jwt: {result['sd_jwt']}\n")
    if result.get("credential"):
        out.write(f"credential: {result['credential']}\n")


def _status_command(cs: Any, action: str, help: str, epilog: str) -> None:
    """``credential revoke|suspend|reinstate THID|CREDENTIAL_ID``: one shape, three methods."""
    p = _sub(cs, action, help, epilog)
    p.add_argument("credential", metavar="THID|CREDENTIAL_ID", help="the offer's thread or the issued credential's id")
    p.set_defaults(rpc=f"credential.{action}", params=lambda a: {"credential": a.credential},
                   show=_show_status_change)


def add_credential_commands(sub: Any) -> None:
    """Add ``credential`` and ``proof``."""
    cred = _sub(sub, "credential", "offer, accept, list, show, revoke and suspend verifiable credentials",
                "  didcommctl credential offer bob --type https://example.edu/diploma \\\n"
                "      --claim given_name=Bob --claim birthdate=2001-04-01 --claim age_over_18=true\n"
                "  didcommctl credential pending          # offers (and proposals) waiting for you\n"
                "  didcommctl credential accept THID      # ask for it; verified and stored\n"
                "  didcommctl credential list             # with each one's revocation status\n"
                "  didcommctl credential revoke THID      # issuer: revoke one we issued, for good\n"
                "  didcommctl credential suspend THID     # issuer: suspend it for a while ...\n"
                "  didcommctl credential reinstate THID   # ... and make it valid again\n"
                "  didcommctl credential refresh --wait 10  # holder: fetch the issuers' status lists now\n"
                "  didcommctl credential propose alice --vct https://example.edu/diploma --claim degree=MSc\n"
                "                                         # holder: ask first; the issuer answers with an offer")
    cred.set_defaults(rpc="credential.list", params=lambda a: {}, show=_show_credentials)
    cs = cred.add_subparsers(dest="credential_command", metavar="ACTION")
    p = _sub(cs, "offer", "offer a credential to a connection (issuer); issued when the holder asks",
             "  didcommctl credential offer bob --type https://example.org/id --claim age_over_18=true\n"
             "  didcommctl credential offer bob --type T --claims-file claims.json --plain given_name\n"
             "  didcommctl --json credential offer bob --type T --claim a=1 --wait 0 | jq -r .thid\n"
             "  didcommctl credential offer bob --reply 1f0e... --claim degree=MSc   # answer bob's proposal")
    p.add_argument("connection", metavar="CONNECTION", help="connection (id, prefix, label) or DID")
    p.add_argument("--type", metavar="VCT", help="credential type (vct), a URI (required unless --reply "
                   "answers a proposal that names one)")
    p.add_argument("--reply", metavar="THID",
                   help="answer the holder's credential proposal on this thread (see `credential pending`)")
    p.add_argument("--claim", action="append", metavar="NAME=VALUE", help="a claim (repeatable); VALUE is JSON or text")
    p.add_argument("--claims-file", metavar="FILE", help="a JSON object of claims (- for stdin)")
    p.add_argument("--plain", action="append", metavar="NAME",
                   help="a claim always disclosed (default: the holder may withhold any claim)")
    p.add_argument("--issuer", metavar="DID", help="issue from this DID of ours (default: our 'issuer' did:key)")
    p.add_argument("--comment", help="a note for the holder")
    p.add_argument("--valid-for", type=int, metavar="SECONDS", help="the credential expires this long after the offer")
    p.add_argument("--format", choices=("sd-jwt", "di"), default=None,
                   help="sd-jwt (default, or with --reply the format the holder proposed: SD-JWT VC, the "
                        "holder discloses claim by claim) or di "
                        "(W3C VC 2.0 + Data Integrity eddsa-jcs-2022: always shown whole)")
    p.add_argument("--no-status", action="store_true",
                   help="issue a credential that can never be revoked (default: it gets an entry in one of "
                        "our status lists, and `credential revoke` can revoke it)")
    p.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="seconds to wait until the holder accepts and it is issued (default 0: do not wait; "
                        "the holder decides when)")
    p.set_defaults(rpc="credential.offer", params=_params_offer, show=_show_exchange, verdict=_verdict)

    p = _sub(cs, "propose", "ask a connection for a credential (holder); the issuer answers with an offer",
             "  didcommctl credential propose alice --vct https://example.edu/diploma \\\n"
             "      --claim given_name=Bob --claim degree=MSc --comment 'for my job application'\n"
             "  didcommctl credential propose alice --vct https://example.edu/diploma --wait 60\n"
             "  didcommctl credential propose alice --reply 1f0e... --claim degree=PhD  # counter an offer\n"
             "The issuer sees the proposal in its `credential pending` (kind credential-proposal) and\n"
             "answers with `credential offer ... --reply THID`, or declines it.  Its offer is what it\n"
             "will issue, whatever we proposed: it waits in our `credential pending` until we\n"
             "`credential accept` it (or decline, or counter it again with --reply).\n"
             "With --wait, exits 1 unless the offer arrived in time (a refusal, or no answer yet).")
    p.add_argument("connection", metavar="CONNECTION", help="connection (id, prefix, label) or DID of the issuer")
    p.add_argument("--vct", "--type", dest="type", metavar="VCT", help="the credential type we ask for")
    p.add_argument("--claim", action="append", metavar="NAME=VALUE",
                   help="a claim we ask to be attested (repeatable); VALUE is JSON or text")
    p.add_argument("--claims-file", metavar="FILE", help="a JSON object of claims (- for stdin)")
    p.add_argument("--comment", help="a note for the issuer")
    p.add_argument("--format", choices=("sd-jwt", "di"), default=None,
                   help="the credential format we would like: sd-jwt (SD-JWT VC, selective disclosure) or di "
                        "(W3C VC 2.0 + Data Integrity, shown whole); default: the issuer's choice")
    p.add_argument("--reply", metavar="THID", help="counter the offer we received on this thread")
    p.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="seconds to wait for the issuer's offer (default 0: do not wait; it arrives as an "
                        "issue-credential.offer-received event)")
    p.set_defaults(rpc="credential.propose", params=_params_propose, show=_show_exchange, verdict=_verdict)

    p = _sub(cs, "pending", "offers, proof requests and proposals waiting for your answer",
             "  didcommctl credential pending\n"
             "Kinds: offer (credential accept/decline), proof-request (proof present/decline),\n"
             "credential-proposal (credential offer --reply THID, or credential decline),\n"
             "proof-proposal (proof request --reply THID, or proof decline).")
    p.set_defaults(rpc="credential.pending", params=lambda a: {}, show=_show_pending)
    p = _sub(cs, "accept", "ask for an offered credential (holder)", "  didcommctl credential accept 1f0e...")
    p.add_argument("thid", metavar="THID", help="the offer's thread (see `credential pending`)")
    p.add_argument("--wait", type=float, default=DEFAULT_WAIT_SECONDS, metavar="S", help="seconds to wait for it")
    p.set_defaults(rpc="credential.accept", params=lambda a: {"thid": a.thid, "wait": a.wait},
                   show=_show_exchange, verdict=_verdict)
    p = _sub(cs, "decline", "decline an offer (holder) or a credential proposal (issuer)",
             "  didcommctl credential decline 1f0e... --reason 'not now'")
    p.add_argument("thid", metavar="THID", help="the offer's or proposal's thread")
    p.add_argument("--reason", help="why, for the peer")
    p.set_defaults(rpc="credential.decline", show=_show_exchange,
                   params=lambda a: {"thid": a.thid, **({"reason": a.reason} if a.reason else {})})
    p = _sub(cs, "issued", "credentials we offered (issuer), newest first", "  didcommctl credential issued")
    p.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (default 100)")
    p.set_defaults(rpc="credential.issued", params=lambda a: {"limit": a.limit}, show=_show_issued)
    _status_command(cs, "revoke", "revoke a credential we issued (issuer)",
                    "  didcommctl credential revoke 1f0e...        # the offer's thread (see `credential issued`)\n"
                    "  didcommctl credential revoke CREDENTIAL_ID  # or the credential's id\n"
                    "Its entry in our status list becomes 'revoked'.  The holder learns it the next time it\n"
                    "fetches the list (it does so by itself, or with `credential refresh`), and a verifier\n"
                    "from the list the holder must staple to any presentation of it: a list signed after\n"
                    "the revocation fails it with 'credential revoked', and one signed before is accepted\n"
                    "only until it is older than the verifier's maximum age (a day by default).\n"
                    "Revocation cannot be undone (for a while only: `credential suspend`).\n"
                    "A credential offered with --no-status cannot be revoked; one we hold is not ours to revoke.")
    _status_command(cs, "suspend", "suspend a credential we issued, until reinstated (issuer)",
                    "  didcommctl credential suspend 1f0e...       # the offer's thread (see `credential issued`)\n"
                    "  didcommctl credential reinstate 1f0e...     # later: valid again\n"
                    "Suspension is temporary (a licence withdrawn for three months); revocation is final.\n"
                    "Its entry in our status list becomes 'suspended': holders see it from their next copy of\n"
                    "the list (`credential refresh`), and verifiers refuse it with 'credential suspended'\n"
                    "from the list the holder staples.  An SD-JWT credential's one entry says it (value 2);\n"
                    "a di credential names a second list, a 'suspension' Bitstring Status List: one issued\n"
                    "before didcommd could suspend has none, and can only be revoked.\n"
                    "A revoked credential cannot be suspended (exit 1, invalid_state); suspending twice is harmless.")
    _status_command(cs, "reinstate", "make a suspended credential we issued valid again (issuer)",
                    "  didcommctl credential reinstate 1f0e...     # the thread or the credential's id\n"
                    "Its entry in our status list becomes 'valid' again; holders and verifiers learn it from the\n"
                    "next copy of the list, as they learnt the suspension.  Only a suspended credential can be\n"
                    "reinstated: a valid or revoked one is an error (exit 1, invalid_state).")
    p = _sub(cs, "refresh", "fetch our credentials' status lists from their issuers now (holder)",
             "  didcommctl credential refresh --wait 10     # every revocable credential\n"
             "  didcommctl credential refresh 7c2a --wait 10\n"
             "Each issuer is asked over the connection the credential came by; the answer replaces our\n"
             "copy of the list, which `credential list` reads the status from and `proof present`\n"
             "staples.  The daemon also does this by itself ([credentials] status_refresh, default 6 h).\n"
             "With --wait, exits 1 unless every list arrived.")
    p.add_argument("id", nargs="?", metavar="ID", help="one credential (id or a unique prefix; default: all)")
    p.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="seconds to wait for the lists (default 0: ask and return)")
    p.set_defaults(rpc="credential.refresh", params=_params_refresh, show=_show_refresh, verdict=_verdict_refresh)
    p = _sub(cs, "list", "credentials in the wallet, with their revocation status", "  didcommctl credential list")
    p.set_defaults(rpc="credential.list", params=lambda a: {}, show=_show_credentials)
    p = _sub(cs, "show", "one credential", "  didcommctl credential show 7c2a\n  didcommctl credential show 7c2a --raw")
    p.add_argument("id", metavar="ID", help="credential id or a unique prefix")
    p.add_argument("--raw", action="store_true", help="also print the credential itself (SD-JWT or di_vc JSON)")
    p.set_defaults(rpc="credential.show", show=_show_credential,
                   params=lambda a: {"id": a.id, **({"raw": True} if a.raw else {})})
    p = _sub(cs, "delete", "forget a credential", "  didcommctl credential delete 7c2a")
    p.add_argument("id", metavar="ID", help="credential id or a unique prefix")
    p.set_defaults(rpc="credential.delete", params=lambda a: {"id": a.id},
                   show=lambda r, out: out.write(f"deleted {r['deleted']}\n"))

    proof = _sub(sub, "proof", "ask for and present proofs (selective disclosure)",
                 "  didcommctl proof request alice --claim age_over_18 --wait 300   # verifier: waits, prints what was proven\n"
                 "  didcommctl credential pending                                  # prover: the request\n"
                 "  didcommctl proof present THID                                  # prover: disclose just that\n"
                 "  didcommctl proof propose bob --claim age_over_18                # prover: offer first")
    proof.set_defaults(rpc=None, help_of=proof)
    ps = proof.add_subparsers(dest="proof_command", metavar="ACTION")
    p = _sub(ps, "request", "ask a connection to prove claims (verifier)",
             "  didcommctl proof request alice --claim age_over_18 --type https://example.org/id\n"
             "  didcommctl proof request alice --claim degree --issuer did:key:z6Mk...\n"
             "  didcommctl proof request alice --reply 1f0e... --wait 300   # answer alice's proposal")
    p.add_argument("connection", metavar="CONNECTION", help="connection (id, prefix, label) or DID")
    p.add_argument("--claim", action="append", metavar="NAME",
                   help="a claim to disclose (repeatable; with --reply, default: the proposal's)")
    p.add_argument("--type", metavar="VCT", help="the credential type required")
    p.add_argument("--reply", metavar="THID",
                   help="answer the prover's proof proposal on this thread (see `credential pending`); "
                        "--claim, --type and --format default to what it proposed")
    p.add_argument("--issuer", action="append", metavar="DID", help="an issuer accepted (repeatable; default any)")
    p.add_argument("--format", choices=("sd-jwt", "di", "any"), default=None,
                   help="credential formats accepted: sd-jwt (default; only the asked claims are disclosed), "
                        "di or any (a Data Integrity credential is shown whole)")
    p.add_argument("--status-max-age", type=int, default=None, metavar="S",
                   help="accept a revocable credential only with a status list its issuer signed at most S "
                        "seconds ago (default 86400); the holder staples it, we never ask the issuer")
    p.add_argument("--comment", help="a note for the prover")
    p.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="seconds to wait for the verdict (default 0: do not wait; the prover decides when, "
                        "and the verdict is a present-proof.verified or .failed event)")
    p.set_defaults(rpc="proof.request", show=_show_exchange, verdict=_verdict, params=_params_request)
    p = _sub(ps, "propose", "offer a connection to prove claims (prover); the verifier answers with a request",
             "  didcommctl proof propose bob --claim age_over_18 --vct https://example.org/id\n"
             "  didcommctl proof propose bob --claim degree --format di --comment 'my diploma'\n"
             "  didcommctl proof propose bob --reply 1f0e... --claim age_over_18   # counter a request\n"
             "The verifier sees it in its `credential pending` (kind proof-proposal) and answers with\n"
             "`proof request ... --reply THID` (its own request, on this thread), or declines it.  The\n"
             "request then waits in our `credential pending`: answer it with `proof present THID`.\n"
             "  didcommctl proof propose bob --claim age_over_18 --wait 60 && didcommctl proof present THID")
    p.add_argument("connection", metavar="CONNECTION", help="connection (id, prefix, label) or DID of the verifier")
    p.add_argument("--claim", action="append", required=True, metavar="NAME",
                   help="a claim we would disclose (repeatable)")
    p.add_argument("--vct", "--type", dest="type", metavar="VCT", help="the credential type we would present")
    p.add_argument("--format", choices=("sd-jwt", "di", "any"), default=None,
                   help="sd-jwt (default; only those claims are disclosed), di or any (a Data Integrity "
                        "credential is shown whole)")
    p.add_argument("--comment", help="a note for the verifier")
    p.add_argument("--reply", metavar="THID", help="counter the proof request we received on this thread")
    p.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="seconds to wait for the verifier's request (default 0: do not wait; it arrives as a "
                        "present-proof.request-received event); exits 1 unless it came")
    p.set_defaults(rpc="proof.propose", show=_show_exchange, verdict=_verdict, params=_params_propose_proof)
    p = _sub(ps, "list", "our proof requests (verifier) and their verdicts, newest first", "  didcommctl proof list")
    p.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (default 100)")
    p.set_defaults(rpc="proof.list", params=lambda a: {"limit": a.limit}, show=_show_requests)
    p = _sub(ps, "show", "the verdict on a proof request of ours (verifier)", "  didcommctl proof show 1f0e...")
    p.add_argument("thid", metavar="THID", help="the request's thread")
    p.set_defaults(rpc="proof.show", show=_show_exchange, verdict=_verdict, params=lambda a: {"thid": a.thid})
    p = _sub(ps, "present", "answer a proof request, disclosing only what it asks (prover)",
             "  didcommctl proof present 1f0e...\n  didcommctl proof present 1f0e... --credential 7c2a\n"
             "Our copy of the credential's status list is stapled (if it is revocable).  A credential\n"
             "that copy says is revoked or suspended is never chosen; naming it with --credential\n"
             "presents it anyway, and the verifier will refuse it.")
    p.add_argument("thid", metavar="THID", help="the request's thread (see `credential pending`)")
    p.add_argument("--credential", metavar="ID", help="which credential, when several fit")
    p.set_defaults(rpc="proof.present", show=_show_exchange, verdict=_verdict,
                   params=lambda a: {"thid": a.thid, **({"credential": a.credential} if a.credential else {})})
    p = _sub(ps, "decline", "decline a proof request (prover) or a proof proposal (verifier)",
             "  didcommctl proof decline 1f0e...")
    p.add_argument("thid", metavar="THID", help="the request's or proposal's thread")
    p.add_argument("--reason", help="why, for the verifier")
    p.set_defaults(rpc="proof.decline", show=_show_exchange,
                   params=lambda a: {"thid": a.thid, **({"reason": a.reason} if a.reason else {})})

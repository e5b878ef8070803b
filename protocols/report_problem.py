"""Report Problem 2.0: building, reading and interpolating problem-reports.

Theory of operation
-------------------
A problem-report (``problems.md``) is a one-message child thread: its
``pthid`` names the thread where the problem happened and its ``ack`` the
message that caused it.  It has no state machine of its own; what it changes
is the state of the *parent* thread, and that is done by the dispatcher
(``protocols.framework``), which also runs the circuit breaker: every problem
sent or received on a thread bumps the thread record's ``error_count``, and
past ``MAX_ERRORS_PER_THREAD`` the dispatcher sends one
``e.p.req.max-errors-exceeded`` and then falls silent on that thread.

This module is the pure part:

- :func:`build_problem_report` makes the message;
- :func:`report_for_error` turns any :class:`~protocols.errors.DIDCommError`
  and the offending message into one, with a ``comment`` that is static per
  code (as the spec requires) and the situation-specific text in ``args``;
- :class:`ProblemReport` reads a received one (:meth:`ProblemReport.from_message`)
  and renders its comment (:func:`interpolate`: ``{1}``, ``{2}``...; a
  missing or null argument becomes ``?``, extra arguments are appended
  comma-separated).

A problem-report is never sent in answer to a problem-report (except the
circuit breaker's own), so two agents cannot bounce reports forever.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import DIDCommError, InvalidPlaintextError
from .message import thread_id

PIURI = "https://didcomm.org/report-problem/2.0"
PROBLEM_REPORT = PIURI + "/problem-report"

#: Most errors one thread may produce before the circuit breaker opens.
MAX_ERRORS_PER_THREAD = 5
#: Most ``args`` read from (or written into) one report.
MAX_ARGS = 16
#: Longest code, comment or argument we keep from a received report.
MAX_TEXT_CHARS = 2048

MAX_ERRORS_CODE = "e.p.req.max-errors-exceeded"

# Lower kebab-case tokens: sorter, scope, then descriptors.
_CODE = re.compile(r"[ew]\.[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)*")
_PLACEHOLDER = re.compile(r"\{(\d+)\}")

#: The spec's comment for each descriptor prefix, longest prefix first.
_COMMENTS: tuple[tuple[str, str], ...] = (
    ("trust.crypto", "Cryptographic operation failed"),
    ("trust", "Failed to achieve required trust"),
    ("xfer", "Unable to transport data"),
    ("did", "DID is unusable"),
    ("msg", "Bad message"),
    ("me.res", "A required resource is inadequate or unavailable"),
    ("me", "Internal error"),
    ("req.max-errors-exceeded", "Too many errors on this thread; the protocol is abandoned"),
    ("req.time", "Failed to satisfy timing constraints"),
    ("req", "Circumstances don't satisfy requirements"),
    ("legal", "Failed for legal reasons"),
)


def is_valid_code(code: object) -> bool:
    """Whether ``code`` is a well-formed problem code (``e.p.msg...``)."""
    return (
        isinstance(code, str) and len(code) <= MAX_TEXT_CHARS and _CODE.fullmatch(code) is not None
    )


def split_code(code: str) -> tuple[str, str, tuple[str, ...]]:
    """``(sorter, scope, descriptors)`` of a valid code."""
    sorter, scope, *descriptors = code.split(".")
    return sorter, scope, tuple(descriptors)


def static_comment(code: str) -> str:
    """The fixed comment for a code: the spec's text for its descriptor, then ``{1}``."""
    descriptors = ".".join(split_code(code)[2]) if is_valid_code(code) else ""
    for prefix, text in _COMMENTS:
        if descriptors == prefix or descriptors.startswith(prefix + "."):
            return text + ": {1}"
    return "Problem: {1}"


def interpolate(comment: str, args: Sequence[object | None]) -> str:
    """Fill ``{n}`` placeholders with ``args`` the way ``problems.md`` says."""
    used: set[int] = set()

    def fill(match: re.Match[str]) -> str:
        index = int(match.group(1))
        used.add(index)
        if 1 <= index <= len(args) and args[index - 1] is not None:
            return str(args[index - 1])
        return "?"

    text = _PLACEHOLDER.sub(fill, comment)
    extra = [str(a) for i, a in enumerate(args, 1) if i not in used and a is not None]
    return ", ".join([text, *extra]) if extra else text


@dataclass(frozen=True)
class ProblemReport:
    """The content of a problem-report message."""

    code: str
    pthid: str
    comment: str | None = None
    args: tuple[str, ...] = ()
    escalate_to: str | None = None
    ack: tuple[str, ...] = field(default=())

    @property
    def is_error(self) -> bool:
        """``e.*`` (an error) rather than ``w.*`` (a warning)."""
        return self.code.startswith("e.")

    @property
    def scope(self) -> str:
        """``p`` (protocol abandoned), ``m`` (message rejected) or a state name."""
        return split_code(self.code)[1]

    def text(self) -> str:
        """The comment with its arguments filled in (or the bare code)."""
        return interpolate(self.comment, self.args) if self.comment else self.code

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> ProblemReport:
        """Read a received problem-report; :class:`InvalidPlaintextError` if it breaks the spec."""
        body = message.get("body")
        if not isinstance(body, dict):
            raise InvalidPlaintextError("problem-report has no body")
        code = body.get("code")
        if not is_valid_code(code):
            raise InvalidPlaintextError("problem-report code is not a valid problem code")
        assert isinstance(code, str)
        pthid = message.get("pthid")
        if not isinstance(pthid, str) or not pthid:
            raise InvalidPlaintextError("problem-report has no 'pthid'")
        comment = body.get("comment")
        if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_TEXT_CHARS):
            raise InvalidPlaintextError("problem-report comment must be a short string")
        raw_args = body.get("args", [])
        if not isinstance(raw_args, list) or len(raw_args) > MAX_ARGS:
            raise InvalidPlaintextError(f"problem-report args must be a list of at most {MAX_ARGS}")
        args = tuple("?" if a is None else str(a)[:MAX_TEXT_CHARS] for a in raw_args)
        escalate_to = body.get("escalate_to")
        if escalate_to is not None and not isinstance(escalate_to, str):
            raise InvalidPlaintextError("problem-report escalate_to must be a string")
        ack = message.get("ack") or []
        return cls(code, pthid, comment, args, escalate_to, tuple(str(a) for a in ack))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for records and events)."""
        return {
            "code": self.code,
            "pthid": self.pthid,
            "comment": self.comment,
            "args": list(self.args),
            "escalate_to": self.escalate_to,
            "ack": list(self.ack),
            "text": self.text(),
        }


def build_problem_report(
    code: str,
    *,
    msg_id: str,
    pthid: str,
    comment: str | None = None,
    args: Sequence[object] = (),
    ack: Sequence[str] = (),
    escalate_to: str | None = None,
    frm: str | None = None,
    to: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """A problem-report plaintext message (``pthid`` is the troubled thread)."""
    if not is_valid_code(code):
        raise ValueError(f"{code!r} is not a valid problem code")
    body: dict[str, Any] = {"code": code}
    if comment is not None:
        body["comment"] = comment
    if args:
        body["args"] = [str(a)[:MAX_TEXT_CHARS] for a in list(args)[:MAX_ARGS]]
    if escalate_to is not None:
        body["escalate_to"] = escalate_to
    message: dict[str, Any] = {"type": PROBLEM_REPORT, "id": msg_id, "pthid": pthid, "body": body}
    if ack:
        message["ack"] = list(ack)
    if frm is not None:
        message["from"] = frm
    if to is not None:
        message["to"] = [to]
    if now is not None:
        message["created_time"] = now
    return message


def report_for_error(
    error: DIDCommError,
    offending: dict[str, Any] | None,
    *,
    msg_id: str,
    frm: str | None = None,
    now: int | None = None,
    escalate_to: str | None = None,
) -> dict[str, Any]:
    """The problem-report that answers ``offending`` (the message that failed) with ``error``.

    ``pthid`` is the offending message's thread, ``ack`` its id, ``to`` its
    ``from`` (when it had one).  The error's text goes into ``args``, never
    into the static ``comment``; errors never carry key material.
    """
    code = error.problem_code if is_valid_code(error.problem_code) else "e.p.me"
    pthid, ack, to = "unknown", [], None
    if isinstance(offending, dict):
        raw_id = offending.get("id")
        if isinstance(raw_id, str) and raw_id:
            ack = [raw_id]
            thid = offending.get("thid")
            pthid = thid if isinstance(thid, str) and thid else thread_id(offending)
        sender = offending.get("from")
        if isinstance(sender, str) and sender.startswith("did:"):
            to = sender
    return build_problem_report(
        code,
        msg_id=msg_id,
        pthid=pthid,
        comment=static_comment(code),
        args=[error.message],
        ack=ack,
        escalate_to=escalate_to,
        frm=frm,
        to=to,
        now=now,
    )

"""Report Problem 2.0: building, reading, interpolation, errors -> reports."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DIDCommError, ExpiredMessageError, InvalidPlaintextError
from protocols.protocol_errors import (
    AuthenticationRequiredError,
    InvitationUsedError,
    MaxErrorsExceededError,
    UnexpectedMessageError,
    UnsupportedMessageTypeError,
)
from protocols.report_problem import (
    PROBLEM_REPORT,
    ProblemReport,
    build_problem_report,
    interpolate,
    is_valid_code,
    report_for_error,
    static_comment,
)


@pytest.mark.parametrize(
    ("comment", "args", "text"),
    [
        (
            "Unable to use the {1} endpoint for {2}.",
            ["u", "d"],
            "Unable to use the u endpoint for d.",
        ),
        ("Unable to use the {1} endpoint for {2}.", ["u"], "Unable to use the u endpoint for ?."),
        (
            "Unable to use the {1} endpoint for {2}.",
            [None, "d"],
            "Unable to use the ? endpoint for d.",
        ),
        ("Plain.", ["a", "b"], "Plain., a, b"),
        ("{2} only", ["a", "b", "c"], "b only, a, c"),
        ("{0} and {9}", [], "? and ?"),
    ],
)
def test_interpolation_follows_the_spec(comment: str, args: list[str | None], text: str) -> None:
    assert interpolate(comment, args) == text


@given(st.text(max_size=40), st.lists(st.one_of(st.none(), st.text(max_size=5)), max_size=5))
@settings(max_examples=200)
def test_interpolation_never_crashes(comment: str, args: list[str | None]) -> None:
    assert isinstance(interpolate(comment, args), str)


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("e.p.xfer.cant-use-endpoint", True),
        ("w.m.msg", True),
        ("e.get-pay-details.payment-failed", True),
        ("e.p", True),
        ("x.p.msg", False),
        ("E.P.MSG", False),
        ("e..msg", False),
        ("e.p.msg.", False),
        ("", False),
        (5, False),
    ],
)
def test_code_syntax(code: object, valid: bool) -> None:
    assert is_valid_code(code) is valid


def test_build_and_read_back() -> None:
    message = build_problem_report(
        "e.p.xfer.cant-use-endpoint",
        msg_id="7c9d",
        pthid="1e51",
        comment="Unable to use the {1} endpoint for {2}.",
        args=["https://agents.r.us/inbox", "did:sov:C805"],
        ack=["1e51"],
        escalate_to="mailto:admin@foo.org",
        frm="did:example:bob",
        to="did:example:alice",
        now=5,
    )
    assert message["type"] == PROBLEM_REPORT and message["to"] == ["did:example:alice"]
    report = ProblemReport.from_message(message)
    assert report.is_error and report.scope == "p"
    assert report.text() == "Unable to use the https://agents.r.us/inbox endpoint for did:sov:C805."
    assert report.ack == ("1e51",) and report.escalate_to == "mailto:admin@foo.org"
    assert report.to_dict()["args"] == ["https://agents.r.us/inbox", "did:sov:C805"]
    with pytest.raises(ValueError):
        build_problem_report("nope", msg_id="1", pthid="2")


@pytest.mark.parametrize(
    "message",
    [
        {"pthid": "t"},
        {"pthid": "t", "body": {"code": "bad code"}},
        {"body": {"code": "e.p.x"}},
        {"pthid": "t", "body": {"code": "e.p.x", "comment": 5}},
        {"pthid": "t", "body": {"code": "e.p.x", "args": "a"}},
        {"pthid": "t", "body": {"code": "e.p.x", "args": ["a"] * 100}},
        {"pthid": "t", "body": {"code": "e.p.x", "escalate_to": 1}},
    ],
)
def test_malformed_reports_are_refused(message: dict[str, object]) -> None:
    with pytest.raises(InvalidPlaintextError):
        ProblemReport.from_message(message)


@pytest.mark.parametrize(
    ("error", "code", "comment"),
    [
        (
            UnsupportedMessageTypeError("no such message"),
            "e.p.msg.unsupported.message-type",
            "Bad message: {1}",
        ),
        (UnexpectedMessageError("not now"), "e.m.msg.unexpected", "Bad message: {1}"),
        (
            AuthenticationRequiredError("who?"),
            "e.p.trust.authentication-required",
            "Failed to achieve required trust: {1}",
        ),
        (ExpiredMessageError("late"), "e.p.req.time", "Failed to satisfy timing constraints: {1}"),
        (
            InvitationUsedError("used"),
            "e.p.req.invitation-used",
            "Circumstances don't satisfy requirements: {1}",
        ),
        (
            MaxErrorsExceededError("too many"),
            "e.p.req.max-errors-exceeded",
            "Too many errors on this thread; the protocol is abandoned: {1}",
        ),
        (DIDCommError("generic"), "e.p.me", "Internal error: {1}"),
    ],
)
def test_every_error_becomes_a_report(error: DIDCommError, code: str, comment: str) -> None:
    offending = {"id": "m-1", "thid": "t-1", "type": "x", "from": "did:example:alice"}
    report = report_for_error(error, offending, msg_id="r-1", frm="did:example:bob", now=9)
    assert report["body"] == {"code": code, "comment": comment, "args": [error.message]}
    assert (report["pthid"], report["ack"], report["to"]) == ("t-1", ["m-1"], ["did:example:alice"])
    assert static_comment(code) == comment


def test_report_for_error_without_a_usable_message() -> None:
    report = report_for_error(DIDCommError("x"), None, msg_id="r-1")
    assert report["pthid"] == "unknown" and "ack" not in report and "to" not in report
    no_thid = report_for_error(DIDCommError("x"), {"id": "m-9", "from": "not-a-did"}, msg_id="r")
    assert no_thid["pthid"] == "m-9" and "to" not in no_thid

"""Errors of the protocol layer: what a peer's plaintext message did wrong.

``protocols.errors`` covers envelopes, keys and DIDs; this module adds the
errors the dispatcher (``protocols.framework``) and the protocol state
machines raise once a message has been unpacked.  Each class carries the
problem-report code (``problems.md``) the peer receives, and
:func:`protocols.report_problem.report_for_error` turns any of them (or any
other :class:`~protocols.errors.DIDCommError`) into that problem-report.

Scopes follow the spec: ``m`` when only the offending message is rejected and
the protocol instance carries on, ``p`` when the instance is abandoned.
"""

from __future__ import annotations

from .errors import DIDCommError, InvalidPlaintextError, ProtectionRequiredError


class UnsupportedProtocolError(DIDCommError):
    """No protocol we run has this name (or the type URI cannot be parsed)."""

    problem_code = "e.p.msg.unsupported"


class UnsupportedVersionError(UnsupportedProtocolError):
    """We run the protocol, but not at this major version (semver rules)."""

    problem_code = "e.p.msg.unsupported.version"


class UnsupportedMessageTypeError(UnsupportedProtocolError):
    """The protocol is ours but it has no message of this name."""

    problem_code = "e.p.msg.unsupported.message-type"


class UnexpectedMessageError(DIDCommError):
    """The message is valid but not allowed by the state machine right now.

    Scope ``m``: the message has no effect and the instance stays where it was.
    """

    problem_code = "e.m.msg.unexpected"


class UnknownThreadError(UnexpectedMessageError):
    """The message continues a thread we have no record of."""

    problem_code = "e.m.msg.unknown-thread"


class InvalidBodyError(InvalidPlaintextError):
    """The ``body`` (or a header a protocol needs) breaks that protocol's rules."""

    problem_code = "e.p.msg.invalid-body"


class AuthenticationRequiredError(ProtectionRequiredError):
    """The protocol needs an authenticated sender; the message had none."""

    problem_code = "e.p.trust.authentication-required"


class EncryptionRequiredError(ProtectionRequiredError):
    """The protocol needs an encrypted message; it arrived in plaintext or signed only."""

    problem_code = "e.p.trust.encryption-required"


class MaxErrorsExceededError(DIDCommError):
    """Too many problems on one thread: the circuit breaker has opened."""

    problem_code = "e.p.req.max-errors-exceeded"


class InvitationError(DIDCommError):
    """An out-of-band invitation URL or JSON cannot be used."""

    problem_code = "e.p.msg.invalid-invitation"


class InvitationExpiredError(InvitationError):
    """The invitation's ``expires_time`` has passed."""

    problem_code = "e.p.req.time.invitation-expired"


class InvitationUsedError(InvitationError):
    """A single-use invitation has already been answered."""

    problem_code = "e.p.req.invitation-used"


class RecordError(DIDCommError):
    """A stored protocol record cannot be read back (our own store is at fault)."""

    problem_code = "e.p.me.record"

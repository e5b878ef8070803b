"""Every error the daemon shows a local client, and how other errors become one.

Theory of operation
-------------------
A :class:`DaemonError` carries a short machine ``code`` (``"not_found"``,
``"invalid_params"``, ``"wallet_locked"``...), a ``message`` for a person and
optional ``data``.  The control socket sends exactly these three things back, so
whatever raises one decides what the client sees.

:func:`error_from` turns any exception into that triple:

- a :class:`DaemonError` as it is;
- a :class:`protocols.errors.DIDCommError` by its kind (table below), with its
  DIDComm problem code as ``data = {"problem_code": ...}``;
- a :class:`daemon.config.ConfigError` as ``"config"``;
- anything else as ``"internal"`` with only the exception's type name: its text
  could hold anything (even key material), so it goes to the log, not the client.

Messages never contain key material; the protocol errors promise the same.
"""

from __future__ import annotations

from typing import Any

from protocols import errors as perr

from . import exitcodes

# Codes a client can see.
NOT_FOUND = "not_found"
INVALID_PARAMS = "invalid_params"
UNAVAILABLE = "unavailable"
WALLET_LOCKED = "wallet_locked"
PERMISSION = "permission"
CONFIG = "config"
CRYPTO = "crypto"
DID = "did"
INVALID_MESSAGE = "invalid_message"
UNSUPPORTED = "unsupported"
EXPIRED = "expired"
CONFLICT = "conflict"
STORE = "store"
INVALID_BACKUP = "invalid_backup"
#: A command that does not fit the protocol thread's state (e.g. accepting an offer twice).
INVALID_STATE = "invalid_state"
#: No stored credential satisfies a proof request (or several do and none was named).
NO_MATCH = "no_match"
AMBIGUOUS = "ambiguous"
INTERNAL = "internal"


class DaemonError(Exception):
    """An error meant for a local client: a ``code``, a ``message``, optional ``data``."""

    code: str = INTERNAL

    def __init__(self, code: str | None, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return self.message


class NotFoundError(DaemonError):
    """The DID, message or record asked for does not exist."""

    code = NOT_FOUND

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(None, message, data)


class InvalidParamsError(DaemonError):
    """A request's parameters are missing, of the wrong type or out of range."""

    code = INVALID_PARAMS

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(None, message, data)


class WalletLockedError(DaemonError):
    """The wallet cannot be opened: wrong or missing passphrase, missing key file."""

    code = WALLET_LOCKED

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(None, message, data)


class StoreError(DaemonError):
    """The store cannot be opened or used (corrupt, newer schema, disk error)."""

    code = STORE

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(None, message, data)


class StoreBusyError(StoreError):
    """Another process holds the store's write lock (a group that would not wait for it)."""


#: protocols.errors classes, most specific first, and the code each maps to.
_PROTOCOL_CODES: tuple[tuple[type[perr.DIDCommError], str], ...] = (
    (perr.DIDNotResolvedError, NOT_FOUND),
    (perr.DIDURLNotFoundError, NOT_FOUND),
    (perr.DIDError, DID),
    (perr.ExpiredMessageError, EXPIRED),
    (perr.MalformedMessageError, INVALID_MESSAGE),
    (perr.UnsupportedError, UNSUPPORTED),
    (perr.KeyMaterialError, CRYPTO),
    (perr.SecretNotFoundError, CRYPTO),
    (perr.NoCompatibleKeysError, CRYPTO),
    (perr.KeyRoleError, CRYPTO),
    (perr.CryptoError, CRYPTO),
    (perr.ProtectionRequiredError, CRYPTO),
)


def error_from(exc: BaseException) -> tuple[str, str, dict[str, Any] | None]:
    """``(code, message, data)`` for a client, from any exception."""
    if isinstance(exc, DaemonError):
        return exc.code, exc.message, exc.data
    if isinstance(exc, perr.DIDCommError):
        code = next((c for cls, c in _PROTOCOL_CODES if isinstance(exc, cls)), INVALID_MESSAGE)
        return code, exc.message, {"problem_code": exc.problem_code}
    # Imported here: config imports nothing from us, but keep this module light.
    from .config import ConfigError

    if isinstance(exc, ConfigError):
        return CONFIG, str(exc), {"file": exc.file, "key": exc.key}
    return INTERNAL, f"internal error ({type(exc).__name__}); see the daemon's log", None


#: Exit code of a command-line tool that fails with a given error code.
EXIT_CODES = {
    NOT_FOUND: exitcodes.FAILURE,
    INVALID_PARAMS: exitcodes.USAGE,
    UNAVAILABLE: exitcodes.UNAVAILABLE,
    WALLET_LOCKED: exitcodes.PERMISSION,
    PERMISSION: exitcodes.PERMISSION,
    CONFIG: exitcodes.CONFIG,
    CRYPTO: exitcodes.DATA,
    DID: exitcodes.DATA,
    INVALID_MESSAGE: exitcodes.DATA,
    UNSUPPORTED: exitcodes.DATA,
    EXPIRED: exitcodes.DATA,
    INVALID_BACKUP: exitcodes.DATA,
}


def exit_code_for(code: str) -> int:
    """The process exit code for an error code (FAILURE when not listed)."""
    return EXIT_CODES.get(code, exitcodes.FAILURE)

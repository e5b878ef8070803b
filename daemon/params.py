"""Checks of control-call parameters shared by the agent's and the protocols' commands.

The control layer has already checked each parameter's JSON type (``daemon.control``'s
``Param``); these are the value checks several command modules make alike, each a
:class:`~daemon.errors.InvalidParamsError` naming the parameter.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import InvalidParamsError

#: Longest wait a control client may ask for (seconds), on ping, features, credentials, proofs.
MAX_WAIT_SECONDS = 300.0


def check_str(name: str, value: Any, limit: int, *, optional: bool = False) -> str | None:
    """A non-empty string of at most ``limit`` characters (or None when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidParamsError(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise InvalidParamsError(f"{name} is longer than {limit} characters")
    return value


def check_wait(wait: Any) -> float:
    """Seconds a command may wait for a peer's answer: 0 to :data:`MAX_WAIT_SECONDS`."""
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= MAX_WAIT_SECONDS:
        raise InvalidParamsError(f"wait must be 0 to {MAX_WAIT_SECONDS:g} seconds")
    if isinstance(wait, float) and math.isnan(wait):
        raise InvalidParamsError("wait must be a number")
    return float(wait)

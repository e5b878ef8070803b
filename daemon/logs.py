"""Logging: structlog, JSON lines for machines, a readable console for people.

Theory of operation
-------------------
Every log line is one event: ``event`` (what happened, a short snake_case name such
as ``wallet.unlocked``), ``level``, ``time`` (ISO 8601, UTC) and the ids that matter
(``did``, ``msg_id``, ``peer``...), bound as keyword arguments.  On a TTY the lines
are rendered for people; anywhere else (journald, a pipe, a file) as one JSON object
per line, which journald stores verbatim and ``jq`` reads.

Key material must never be logged.  The code does not log it; as a second line of
defence :func:`redact` replaces the value of any field whose name looks secret
(``d``, ``key``, ``secret*``, ``passphrase*``, ``private*``, ``*_key``, ...) with
``"[redacted]"``, also inside nested dicts and lists, before anything is rendered.

Libraries that log through the stdlib ``logging`` module (py-libp2p, trio) go
through the same renderer, so the output stays one format.

:func:`configure_logging` may be called again at any time (the service does on
SIGHUP); loggers are not cached, so a new level takes effect at once.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
REDACTED = "[redacted]"
#: Field names that are always redacted (compared lower-case).
SECRET_FIELD_NAMES = frozenset(
    {"d", "k", "key", "secret", "seed", "passphrase", "password", "sk", "priv", "wallet_key"}
)
#: Name fragments that make a field secret wherever they appear in its name.
SECRET_FIELD_FRAGMENTS = ("secret", "passphrase", "password", "private")
#: Name endings that make a field secret (``data_key``, ``signing_key``; not ``key_file``).
SECRET_FIELD_SUFFIXES = ("_key", "_seed", "_jwk")
#: How deep :func:`redact` looks into nested values.
MAX_REDACT_DEPTH = 8
#: Loud libraries are held at this level unless we log at debug.
NOISY_LOGGERS = ("libp2p", "multiaddr", "zeroconf", "hpack", "asyncio")


def is_secret_field(name: str) -> bool:
    """Whether a field called ``name`` may hold key material."""
    lower = name.lower()
    return (
        lower in SECRET_FIELD_NAMES
        or lower.startswith("private")
        or any(fragment in lower for fragment in SECRET_FIELD_FRAGMENTS)
        or lower.endswith(SECRET_FIELD_SUFFIXES)
    )


def _scrub(value: Any, depth: int) -> Any:
    if depth > MAX_REDACT_DEPTH:
        return value
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_field(k) else _scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    return value


def redact(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank out every field that may hold key material."""
    for name in list(event_dict):
        if name == "event":
            continue
        if is_secret_field(name):
            event_dict[name] = REDACTED
        else:
            event_dict[name] = _scrub(event_dict[name], 1)
    return event_dict


def _wants_console(fmt: str, stream: TextIO) -> bool:
    if fmt == "console":
        return True
    if fmt == "json":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def configure_logging(level: str, fmt: str = "auto", *, stream: TextIO | None = None) -> None:
    """Set up structlog (and stdlib logging) at ``level`` in format ``fmt``.

    ``fmt`` is ``auto`` (console on a TTY, JSON lines otherwise), ``json`` or
    ``console``.  ``stream`` defaults to stdout, where journald picks lines up;
    command-line tools pass stderr so their output stays clean.
    """
    numeric = LOG_LEVELS.get(level.lower())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    out = stream if stream is not None else sys.stdout
    console = _wants_console(fmt, out)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        redact,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False, timestamp_key="time")
        if console
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        # Not cached: a SIGHUP with a new level must reach loggers already bound.
        cache_logger_on_first_use=False,
    )

    # Route stdlib logging (libp2p, trio) through the same processors and renderer.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_didcommd", False):
            root.removeHandler(old)
    handler._didcommd = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(numeric if numeric == logging.DEBUG else max(numeric, logging.WARNING))


def get_logger(name: str, **ids: Any) -> Any:
    """A structlog logger for a component, with ``component`` and any ids bound."""
    return structlog.get_logger(component=name, **ids)

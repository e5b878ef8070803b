"""The daemon's configuration: one TOML file, overridable key by key from the environment.

Theory of operation
-------------------
:func:`load_config` builds a :class:`Config` in three layers, each overriding the
one before:

1. built-in defaults (below),
2. the TOML file, if one is found,
3. environment variables ``DIDCOMMD_<SECTION>_<KEY>`` (e.g. ``DIDCOMMD_DAEMON_LOG_LEVEL=debug``;
   list values are comma-separated: ``DIDCOMMD_P2P_LISTEN=/ip4/127.0.0.1/tcp/0``).

Every value is checked once, here, at start: a bad file is refused with the file,
the key and the reason (:class:`ConfigError`, ``str()`` = ``"<file>: <key>: <reason>"``),
and so is an unknown key, so a typo is never silently ignored.  Environment
variables whose section is not one of ours (``DIDCOMMD_CONFIG``, ...) are left alone.

Where the file is looked for (the first that applies):

- ``--config FILE`` on the command line (a missing file is an error),
- ``$DIDCOMMD_CONFIG`` (a missing file is an error),
- ``$XDG_CONFIG_HOME/didcommd/didcommd.toml`` (default ``~/.config/didcommd/didcommd.toml``;
  skipped for a system service),
- ``/etc/didcommd/didcommd.toml``,
- none: built-in defaults and the environment only.

Default locations:

=====================  ==========================================  ==============================
                       user (``make run``)                         system service (``--system``,
                                                                   or run by systemd)
=====================  ==========================================  ==============================
``daemon.state_dir``   ``$XDG_STATE_HOME/didcommd``                 ``$STATE_DIRECTORY`` or
                       (``~/.local/state/didcommd``)                ``/var/lib/didcommd``
``control.socket``     ``$XDG_RUNTIME_DIR/didcommd/control.sock``   ``$RUNTIME_DIRECTORY/control.sock``
                       (or ``<state_dir>/control.sock``)           or ``/run/didcommd/control.sock``
``wallet.key_file``    ``<state_dir>/wallet.key``                   same
=====================  ==========================================  ==============================

Relative paths in the file are relative to the file's directory; in the
environment, to the working directory.  A complete file with every default::

    [daemon]
    state_dir = "~/.local/state/didcommd"
    log_level = "info"            # debug | info | warning | error | critical
    log_format = "auto"           # auto (console on a TTY, JSON lines otherwise) | json | console
    shutdown_timeout = 10.0       # seconds to finish in-flight work on SIGTERM

    [control]
    socket = "/run/user/1000/didcommd/control.sock"
    mode = 0o600                  # or "0600"; file mode of the socket
    # allowed_group = "didcomm"   # a group whose members may also connect (mode 0660)
    max_request_bytes = 1048576
    max_clients = 64
    max_pending_per_connection = 16

    [wallet]
    # passphrase_file = "/etc/didcommd/passphrase"   # never on the command line
    # passphrase_env = "DIDCOMMD_PASSPHRASE"         # name of a variable holding it
    key_file = "~/.local/state/didcommd/wallet.key"  # used when there is no passphrase

    [p2p]
    listen = ["/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"]   # port 0: any free port
    announce = []
    bootstrap = []                # each ends in /p2p/<peer id>
    mdns = true

    [delivery]
    retry_base = 1.0              # seconds before the first retry to an unreachable peer
    retry_max = 300.0             # longest wait between retries (exponential backoff, jitter)
    max_pending_per_peer = 10000  # undelivered messages to one recipient DID before send refuses
    max_in_flight_per_peer = 32   # deliveries to one peer at the same time

    [credentials]
    status_refresh = 21600        # seconds: a held credential's status list older than this is
                                  # asked for again from its issuer (in the background)

    [store]
    keep_sent = 2592000           # seconds a delivered, failed or expired outbound message stays
                                  # listed (outbox) before it is deleted; 0: kept for ever
    keep_received = 0             # seconds a received message is kept before it is erased (and
                                  # events older than this go too); 0: kept for ever
    max_bytes = 0                 # refuse peers' messages while the store (file + WAL) is this
                                  # big; 0: no cap
    min_free_bytes = 268435456    # ... or while its file system has less free than this (256 MiB)

A passphrase may also come from the systemd credential
``$CREDENTIALS_DIRECTORY/wallet-passphrase`` (see :mod:`daemon.wallet`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "DIDCOMMD_"
ENV_CONFIG_FILE = "DIDCOMMD_CONFIG"
CONFIG_FILE_NAME = "didcommd.toml"
SYSTEM_CONFIG_FILE = Path("/etc/didcommd") / CONFIG_FILE_NAME
SYSTEM_STATE_DIR = Path("/var/lib/didcommd")
SYSTEM_RUNTIME_DIR = Path("/run/didcommd")
SOCKET_NAME = "control.sock"
WALLET_KEY_FILE_NAME = "wallet.key"

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("auto", "json", "console")

#: Largest config file read (a config is a few hundred bytes; this stops a wrong path
#: pointing at a huge file from being slurped).
MAX_CONFIG_BYTES = 1024 * 1024
#: Bounds of the numeric settings: generous, but they catch a typo'd extra digit.
MAX_SHUTDOWN_TIMEOUT_S = 3600.0
MAX_REQUEST_BYTES_LIMIT = 64 * 1024 * 1024
MIN_REQUEST_BYTES = 1024
MAX_CLIENTS_LIMIT = 10_000
MAX_PENDING_LIMIT = 10_000
#: Most addresses in one of the p2p lists.
MAX_ADDRESSES = 64
#: Longest multiaddr accepted.
MAX_MULTIADDR_CHARS = 1024
#: Bounds of the delivery settings.
MAX_RETRY_SECONDS = 86_400.0
MAX_PENDING_PER_PEER_LIMIT = 10_000_000
MAX_IN_FLIGHT_LIMIT = 1024
#: Bounds of ``credentials.status_refresh`` (seconds): a second to thirty days.
MIN_STATUS_REFRESH_S = 1
MAX_STATUS_REFRESH_S = 30 * 24 * 3600
#: Longest path accepted in any path setting.
#: Longest ``store.keep_sent`` and ``store.keep_received`` (seconds): ten years (0 keeps
#: messages for ever).
MAX_KEEP_S = 10 * 365 * 24 * 3600
#: Largest ``store.max_bytes`` / ``store.min_free_bytes``: a pebibyte.
MAX_STORE_BYTES = 1 << 50
MAX_PATH_CHARS = 4096
#: A Unix socket path must fit ``sockaddr_un.sun_path`` (108 bytes on Linux, with its NUL).
MAX_SOCKET_PATH_BYTES = 107


class ConfigError(Exception):
    """A configuration value (or the file holding it) cannot be used.

    ``file`` is the config file (or ``"environment"``), ``key`` the dotted key or
    the environment variable, ``reason`` what is wrong, for a person.
    """

    def __init__(self, file: str | None, key: str | None, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.key, self.reason) if part)


# -- the configuration --------------------------------------------------------------------


@dataclass(frozen=True)
class DaemonSection:
    """``[daemon]``: where state lives, how to log, how long shutdown may take."""

    state_dir: Path
    log_level: str = "info"
    log_format: str = "auto"
    shutdown_timeout: float = 10.0


@dataclass(frozen=True)
class ControlSection:
    """``[control]``: the local Unix control socket and its limits."""

    socket: Path
    mode: int = 0o600
    allowed_group: str | None = None
    max_request_bytes: int = 1024 * 1024
    max_clients: int = 64
    max_pending_per_connection: int = 16


@dataclass(frozen=True)
class WalletSection:
    """``[wallet]``: where the wallet key comes from (a passphrase, or a key file)."""

    key_file: Path
    passphrase_file: Path | None = None
    passphrase_env: str | None = None


@dataclass(frozen=True)
class P2PSection:
    """``[p2p]``: libp2p addresses and discovery."""

    # A fixed port by default: our did:peer:2 DIDs carry these addresses, and
    # a DID cannot change, so a port picked at random would strand every DID
    # after a restart.  4001 is libp2p's customary port.
    listen: list[str] = field(
        default_factory=lambda: ["/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"]
    )
    announce: list[str] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=list)
    mdns: bool = True


@dataclass(frozen=True)
class DeliverySection:
    """``[delivery]``: how the outbox retries and how much it holds per peer (daemon.delivery)."""

    retry_base: float = 1.0
    retry_max: float = 300.0
    max_pending_per_peer: int = 10_000
    max_in_flight_per_peer: int = 32


@dataclass(frozen=True)
class CredentialsSection:
    """``[credentials]``: how a holder keeps its credentials' revocation status current."""

    #: Seconds after which a held status list is asked for again (daemon.credentials).
    status_refresh: int = 21600


@dataclass(frozen=True)
class StoreSection:
    """``[store]``: how long the store keeps what it no longer needs, and how big it may
    grow with what peers send (daemon.housekeeping)."""

    #: Seconds an outbound message in a final state (delivered, failed, expired) is
    #: kept after its last change; 0 keeps it for ever.
    keep_sent: int = 30 * 24 * 3600
    #: Seconds a received message is kept; then it is erased (a tombstone keeps it a
    #: duplicate if it comes again), with its basic-message record, and stored events
    #: older than this go too.  0 (the default) keeps them for ever: inbound messages
    #: are the owner's, and only the owner chooses to have them deleted.
    keep_received: int = 0
    #: Inbound messages are refused (not acknowledged: their senders try again later)
    #: while the store's file and WAL take this many bytes (0: no cap) ...
    max_bytes: int = 0
    #: ... or while the file system holding it has fewer bytes free than this, so the
    #: owner's own work still has room when peers have filled the rest.
    min_free_bytes: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class Config:
    """Everything the daemon reads from its configuration."""

    daemon: DaemonSection
    control: ControlSection
    wallet: WalletSection
    p2p: P2PSection
    delivery: DeliverySection = field(default_factory=DeliverySection)
    credentials: CredentialsSection = field(default_factory=CredentialsSection)
    store: StoreSection = field(default_factory=StoreSection)
    #: The file it came from, if any (for messages and SIGHUP reloads).
    source: Path | None = None


# -- value checkers -----------------------------------------------------------------------
#
# Each takes the raw value (from TOML, or a string from the environment) and returns
# the typed value or raises ValueError with the reason.

_Checker = Callable[[Any, bool, Path], Any]


def _typename(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


def _str(value: Any, from_env: bool) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_typename(value)}")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _check_path(value: Any, from_env: bool, base: Path) -> Path:
    text = _str(value, from_env)
    if not text:
        raise ValueError("must not be empty")
    if len(text) > MAX_PATH_CHARS:
        raise ValueError(f"is longer than {MAX_PATH_CHARS} characters")
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base / path)


def _check_optional_path(value: Any, from_env: bool, base: Path) -> Path | None:
    if from_env and value == "":
        return None
    return _check_path(value, from_env, base)


def _check_socket(value: Any, from_env: bool, base: Path) -> Path:
    path = _check_path(value, from_env, base)
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise ValueError(f"a Unix socket path must be at most {MAX_SOCKET_PATH_BYTES} bytes")
    return path


def _choice(*choices: str) -> _Checker:
    def check(value: Any, from_env: bool, base: Path) -> str:
        text = _str(value, from_env).lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {value!r}")
        return text

    return check


def _int_range(low: int, high: int) -> _Checker:
    def check(value: Any, from_env: bool, base: Path) -> int:
        if from_env and isinstance(value, str):
            try:
                value = int(value.strip(), 0)
            except ValueError:
                raise ValueError(f"must be an integer, not {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, not {_typename(value)}")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, not {value}")
        return value

    return check


def _seconds_up_to(high: float) -> _Checker:
    """A checker for a positive number of seconds no larger than ``high``."""

    def check(value: Any, from_env: bool, base: Path) -> float:
        if from_env and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"must be a number of seconds, not {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number of seconds, not {_typename(value)}")
        if not 0 < value <= high:
            raise ValueError(f"must be more than 0 and at most {high:g} seconds")
        return float(value)

    return check


_check_timeout = _seconds_up_to(MAX_SHUTDOWN_TIMEOUT_S)
_check_retry_seconds = _seconds_up_to(MAX_RETRY_SECONDS)


def _check_mode(value: Any, from_env: bool, base: Path) -> int:
    # TOML has 0o600 integers; a string "0600"/"600" is read as octal, as chmod does.
    if isinstance(value, str):
        text = value.strip().removeprefix("0o")
        if not re.fullmatch(r"[0-7]{1,4}", text):
            raise ValueError(f"must be an octal file mode such as 0600, not {value!r}")
        value = int(text, 8)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a file mode such as 0o600, not {_typename(value)}")
    if value & ~0o777:
        raise ValueError(f"must be a permission mode between 0 and 0o777, not {value:#o}")
    if value & 0o007:
        raise ValueError("must not give any access to other users (use allowed_group)")
    if not value & 0o600 == 0o600:
        raise ValueError("must let the owner read and write the socket")
    return value


_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def _check_group(value: Any, from_env: bool, base: Path) -> str | None:
    text = _str(value, from_env)
    if from_env and text == "":
        return None
    if not _NAME_RE.fullmatch(text):
        raise ValueError(f"is not a valid group name: {value!r}")
    return text


_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _check_env_name(value: Any, from_env: bool, base: Path) -> str | None:
    text = _str(value, from_env)
    if from_env and text == "":
        return None
    if not _ENV_NAME_RE.fullmatch(text):
        raise ValueError(f"is not a valid environment variable name: {value!r}")
    return text


def _check_bool(value: Any, from_env: bool, base: Path) -> bool:
    if from_env and isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"must be true or false, not {value!r}")
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_typename(value)}")
    return value


# -- multiaddrs -------------------------------------------------------------------------
#
# A small syntactic check, so a typo is caught at start rather than when libp2p
# first dials.  Each protocol maps to a validator of its one argument, or None
# when it takes no argument.  Not a full multiaddr parser: libp2p does that.


def _port(text: str) -> None:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ValueError(f"{text!r} is not a port number (0-65535)")


def _ip4(text: str) -> None:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 address") from None


def _ip6(text: str) -> None:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv6 address") from None


_HOST_RE = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")
_PEER_ID_RE = re.compile(r"(Qm[1-9A-HJ-NP-Za-km-z]{44}|1[1-9A-HJ-NP-Za-km-z]{40,60}|b[a-z2-7]{50,100})")


def _host(text: str) -> None:
    if not _HOST_RE.fullmatch(text):
        raise ValueError(f"{text!r} is not a DNS name")


def _peer_id(text: str) -> None:
    if not _PEER_ID_RE.fullmatch(text):
        raise ValueError(f"{text!r} is not a libp2p peer id")


_MULTIADDR_PROTOCOLS: dict[str, Callable[[str], None] | None] = {
    "ip4": _ip4,
    "ip6": _ip6,
    "dns": _host,
    "dns4": _host,
    "dns6": _host,
    "dnsaddr": _host,
    "tcp": _port,
    "udp": _port,
    "quic": None,
    "quic-v1": None,
    "ws": None,
    "wss": None,
    "tls": None,
    "noise": None,
    "p2p": _peer_id,
    "ipfs": _peer_id,
    "p2p-circuit": None,
}


def check_multiaddr(text: str) -> tuple[str, ...]:
    """Check the shape of a multiaddr string; return its protocol names in order."""
    if len(text) > MAX_MULTIADDR_CHARS:
        raise ValueError(f"is longer than {MAX_MULTIADDR_CHARS} characters")
    if not text.startswith("/"):
        raise ValueError(f"{text!r} is not a multiaddr (it must start with '/')")
    parts = text[1:].split("/")
    protocols: list[str] = []
    i = 0
    while i < len(parts):
        name = parts[i]
        if name not in _MULTIADDR_PROTOCOLS:
            raise ValueError(f"{text!r}: unknown multiaddr protocol {name!r}")
        check = _MULTIADDR_PROTOCOLS[name]
        if check is not None:
            if i + 1 >= len(parts) or not parts[i + 1]:
                raise ValueError(f"{text!r}: /{name} needs a value")
            check(parts[i + 1])
            i += 1
        protocols.append(name)
        i += 1
    if not protocols or protocols[0] not in ("ip4", "ip6", "dns", "dns4", "dns6", "dnsaddr"):
        raise ValueError(f"{text!r} must start with /ip4, /ip6 or /dns*")
    return tuple(protocols)


def _addr_list(*, peer_required: bool) -> _Checker:
    def check(value: Any, from_env: bool, base: Path) -> list[str]:
        if from_env and isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list):
            raise ValueError(f"must be an array of multiaddrs, not {_typename(value)}")
        if len(value) > MAX_ADDRESSES:
            raise ValueError(f"has more than {MAX_ADDRESSES} addresses")
        out = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"must contain only strings, not {_typename(item)}")
            protocols = check_multiaddr(item)
            if peer_required and protocols[-1] not in ("p2p", "ipfs"):
                raise ValueError(f"{item!r} must end with /p2p/<peer id>")
            out.append(item)
        return out

    return check


#: Every key of every section: its checker.  Unknown keys are errors.
_SCHEMA: dict[str, dict[str, _Checker]] = {
    "daemon": {
        "state_dir": _check_path,
        "log_level": _choice(*LOG_LEVELS),
        "log_format": _choice(*LOG_FORMATS),
        "shutdown_timeout": _check_timeout,
    },
    "control": {
        "socket": _check_socket,
        "mode": _check_mode,
        "allowed_group": _check_group,
        "max_request_bytes": _int_range(MIN_REQUEST_BYTES, MAX_REQUEST_BYTES_LIMIT),
        "max_clients": _int_range(1, MAX_CLIENTS_LIMIT),
        "max_pending_per_connection": _int_range(1, MAX_PENDING_LIMIT),
    },
    "wallet": {
        "passphrase_file": _check_optional_path,
        "passphrase_env": _check_env_name,
        "key_file": _check_path,
    },
    "p2p": {
        "listen": _addr_list(peer_required=False),
        "announce": _addr_list(peer_required=False),
        "bootstrap": _addr_list(peer_required=True),
        "mdns": _check_bool,
    },
    "delivery": {
        "retry_base": _check_retry_seconds,
        "retry_max": _check_retry_seconds,
        "max_pending_per_peer": _int_range(1, MAX_PENDING_PER_PEER_LIMIT),
        "max_in_flight_per_peer": _int_range(1, MAX_IN_FLIGHT_LIMIT),
    },
    "credentials": {
        "status_refresh": _int_range(MIN_STATUS_REFRESH_S, MAX_STATUS_REFRESH_S),
    },
    "store": {
        "keep_sent": _int_range(0, MAX_KEEP_S),
        "keep_received": _int_range(0, MAX_KEEP_S),
        "max_bytes": _int_range(0, MAX_STORE_BYTES),
        "min_free_bytes": _int_range(0, MAX_STORE_BYTES),
    },
}

_SECTIONS: dict[str, type[Any]] = {
    "daemon": DaemonSection,
    "control": ControlSection,
    "wallet": WalletSection,
    "p2p": P2PSection,
    "delivery": DeliverySection,
    "credentials": CredentialsSection,
    "store": StoreSection,
}


def config_keys() -> dict[str, tuple[str, ...]]:
    """Every section and its keys (for documentation and tests)."""
    return {section: tuple(keys) for section, keys in _SCHEMA.items()}


def env_var_name(section: str, key: str) -> str:
    """The environment variable that overrides ``section.key``."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


# -- loading --------------------------------------------------------------------------


def _is_system(env: Mapping[str, str], system: bool) -> bool:
    return system or bool(env.get("STATE_DIRECTORY") or env.get("RUNTIME_DIRECTORY"))


def _first_dir(value: str) -> Path:
    # systemd joins several directories with ':'; the first is ours.
    return Path(value.split(":")[0])


def default_state_dir(env: Mapping[str, str], *, system: bool = False) -> Path:
    """Where state lives when the configuration does not say."""
    if env.get("STATE_DIRECTORY"):
        return _first_dir(env["STATE_DIRECTORY"])
    if system:
        return SYSTEM_STATE_DIR
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]) / "didcommd"
    return Path(env.get("HOME") or Path.home()) / ".local" / "state" / "didcommd"


def default_socket(env: Mapping[str, str], state_dir: Path, *, system: bool = False) -> Path:
    """Where the control socket lives when the configuration does not say."""
    if env.get("RUNTIME_DIRECTORY"):
        return _first_dir(env["RUNTIME_DIRECTORY"]) / SOCKET_NAME
    if system:
        return SYSTEM_RUNTIME_DIR / SOCKET_NAME
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "didcommd" / SOCKET_NAME
    return state_dir / SOCKET_NAME


def find_config_file(
    path: Path | None, env: Mapping[str, str], *, system: bool = False
) -> tuple[Path | None, bool]:
    """The config file to read and whether it must exist (it was named explicitly)."""
    if path is not None:
        return path, True
    if env.get(ENV_CONFIG_FILE):
        return Path(env[ENV_CONFIG_FILE]).expanduser(), True
    if not _is_system(env, system):
        xdg = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
        candidate = Path(xdg) / "didcommd" / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate, False
    if SYSTEM_CONFIG_FILE.is_file():
        return SYSTEM_CONFIG_FILE, False
    return None, False


def _read_toml(path: Path) -> dict[str, Any]:
    name = str(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(name, None, f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(name, None, f"the file is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(name, None, "the file is not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, None, f"not valid TOML: {exc}") from None


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    system: bool = False,
) -> Config:
    """Read, merge and check the configuration; raise :class:`ConfigError` if it is bad.

    ``path`` is the ``--config`` argument; ``env`` the environment (overrides and
    default locations); ``system`` asks for the system-service defaults.
    """
    is_system = _is_system(env, system)
    file, required = find_config_file(path, env, system=system)
    raw: dict[str, Any] = {}
    base = Path.cwd()
    if file is not None and not (required or file.exists()):
        file = None
    if file is not None:
        raw = _read_toml(file)
        base = file.resolve().parent

    values: dict[str, dict[str, Any]] = {section: {} for section in _SCHEMA}
    fname = str(file) if file is not None else None
    for section, table in raw.items():
        if section not in _SCHEMA:
            raise ConfigError(fname, section, f"unknown section (known: {', '.join(_SCHEMA)})")
        if not isinstance(table, dict):
            raise ConfigError(fname, section, f"must be a table, not {_typename(table)}")
        for key, value in table.items():
            dotted = f"{section}.{key}"
            if key not in _SCHEMA[section]:
                known = ", ".join(_SCHEMA[section])
                raise ConfigError(fname, dotted, f"unknown key (known in [{section}]: {known})")
            try:
                values[section][key] = _SCHEMA[section][key](value, False, base)
            except ValueError as exc:
                raise ConfigError(fname, dotted, str(exc)) from None

    cwd = Path.cwd()
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        env_section = next((s for s in _SCHEMA if rest.startswith(s + "_")), None)
        if env_section is None:
            continue  # DIDCOMMD_CONFIG and friends are not overrides
        key = rest[len(env_section) + 1:]
        if key not in _SCHEMA[env_section]:
            known = ", ".join(env_var_name(env_section, k) for k in _SCHEMA[env_section])
            raise ConfigError("environment", name, f"unknown setting (known: {known})")
        try:
            values[env_section][key] = _SCHEMA[env_section][key](value, True, cwd)
        except ValueError as exc:
            raise ConfigError("environment", name, str(exc)) from None

    state_dir = values["daemon"].setdefault("state_dir", default_state_dir(env, system=is_system))
    values["control"].setdefault("socket", default_socket(env, state_dir, system=is_system))
    values["wallet"].setdefault("key_file", state_dir / WALLET_KEY_FILE_NAME)
    wallet = values["wallet"]
    if wallet.get("passphrase_file") and wallet.get("passphrase_env"):
        raise ConfigError(
            fname or "environment",
            "wallet.passphrase_env",
            "set either wallet.passphrase_file or wallet.passphrase_env, not both",
        )
    delivery = values["delivery"]
    if delivery.get("retry_base", DeliverySection.retry_base) > delivery.get(
        "retry_max", DeliverySection.retry_max
    ):
        raise ConfigError(
            fname or "environment", "delivery.retry_base", "must not be more than delivery.retry_max"
        )
    sections = {name: cls(**values[name]) for name, cls in _SECTIONS.items()}
    return Config(source=file, **sections)


def replace(config: Config, **sections: Any) -> Config:
    """A copy of ``config`` with some sections' fields changed, e.g. ``daemon={"log_level": "debug"}``."""
    changed = {
        name: dataclasses.replace(getattr(config, name), **fields) for name, fields in sections.items()
    }
    return dataclasses.replace(config, **changed)

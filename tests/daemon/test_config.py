"""Configuration as a specification: where it comes from, what overrides what, what is refused."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.config import (
    LOG_LEVELS,
    MAX_CLIENTS_LIMIT,
    ConfigError,
    check_multiaddr,
    config_keys,
    env_var_name,
    load_config,
)

FULL_TOML = """
[daemon]
state_dir = "state"
log_level = "debug"
log_format = "json"
shutdown_timeout = 2.5

[control]
socket = "/tmp/dcd-test/control.sock"
mode = 0o660
allowed_group = "didcomm"
max_request_bytes = 65536
max_clients = 8
max_pending_per_connection = 4

[wallet]
passphrase_env = "MY_PASSPHRASE"
key_file = "keys/wallet.key"

[p2p]
listen = ["/ip4/127.0.0.1/tcp/4001", "/ip6/::1/tcp/4001"]
announce = ["/dns4/example.org/tcp/4001"]
bootstrap = ["/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWGzBkzKkZ6FC3hAWeG3MXt4WhqxU8MXdnNLfCAn9XxdyZ"]
mdns = false

[credentials]
status_refresh = 3600
"""


def write(tmp_path: Path, text: str, name: str = "didcommd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A bare environment with a home of its own (no XDG variables, no systemd)."""
    return {"HOME": str(tmp_path / "home")}


# -- defaults -----------------------------------------------------------------------------------


def test_user_defaults_follow_xdg(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "XDG_STATE_HOME": str(tmp_path / "xs"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
    }
    config = load_config(env=env)
    assert config.daemon.state_dir == tmp_path / "xs" / "didcommd"
    assert config.control.socket == tmp_path / "run" / "didcommd" / "control.sock"
    assert config.wallet.key_file == tmp_path / "xs" / "didcommd" / "wallet.key"
    assert (config.daemon.log_level, config.daemon.log_format) == ("info", "auto")
    assert config.control.mode == 0o600
    assert config.p2p.listen == ["/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"]
    assert config.p2p.mdns is True
    assert config.source is None


def test_without_xdg_state_lives_in_home_and_socket_beside_it(env: dict[str, str]) -> None:
    config = load_config(env=env)
    state = Path(env["HOME"]) / ".local" / "state" / "didcommd"
    assert config.daemon.state_dir == state
    assert config.control.socket == state / "control.sock"


def test_system_defaults(env: dict[str, str]) -> None:
    config = load_config(env=env, system=True)
    assert config.daemon.state_dir == Path("/var/lib/didcommd")
    assert config.control.socket == Path("/run/didcommd/control.sock")


def test_systemd_directories_win(env: dict[str, str]) -> None:
    env |= {"STATE_DIRECTORY": "/var/lib/x:/var/lib/y", "RUNTIME_DIRECTORY": "/run/x"}
    config = load_config(env=env)
    assert config.daemon.state_dir == Path("/var/lib/x")
    assert config.control.socket == Path("/run/x/control.sock")


# -- the file -----------------------------------------------------------------------------------


def test_full_file(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(tmp_path, FULL_TOML)
    config = load_config(path, env=env)
    assert config.source == path
    # Relative paths are relative to the file's directory.
    assert config.daemon.state_dir == tmp_path / "state"
    assert config.wallet.key_file == tmp_path / "keys" / "wallet.key"
    assert config.daemon.log_level == "debug"
    assert config.daemon.shutdown_timeout == 2.5
    assert config.control.mode == 0o660
    assert config.control.allowed_group == "didcomm"
    assert config.control.max_clients == 8
    assert config.wallet.passphrase_env == "MY_PASSPHRASE"
    assert config.p2p.listen == ["/ip4/127.0.0.1/tcp/4001", "/ip6/::1/tcp/4001"]
    assert config.p2p.bootstrap[0].endswith("/p2p/12D3KooWGzBkzKkZ6FC3hAWeG3MXt4WhqxU8MXdnNLfCAn9XxdyZ")
    assert config.p2p.mdns is False
    assert config.credentials.status_refresh == 3600


def test_credentials_default_and_environment_override(tmp_path: Path, env: dict[str, str]) -> None:
    assert load_config(env=env).credentials.status_refresh == 21600
    path = write(tmp_path, FULL_TOML)
    assert load_config(path, env=env | {"DIDCOMMD_CREDENTIALS_STATUS_REFRESH": "5"}).credentials.status_refresh == 5


def test_file_from_environment_and_xdg_config_home(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(tmp_path, '[daemon]\nlog_level = "warning"\n', "elsewhere.toml")
    assert load_config(env=env | {"DIDCOMMD_CONFIG": str(path)}).daemon.log_level == "warning"

    xdg = tmp_path / "xdg"
    (xdg / "didcommd").mkdir(parents=True)
    write(xdg / "didcommd", '[daemon]\nlog_level = "error"\n')
    config = load_config(env=env | {"XDG_CONFIG_HOME": str(xdg)})
    assert config.daemon.log_level == "error"
    assert config.source == xdg / "didcommd" / "didcommd.toml"


def test_environment_overrides_the_file(tmp_path: Path, env: dict[str, str]) -> None:
    path = write(tmp_path, FULL_TOML)
    env |= {
        "DIDCOMMD_DAEMON_LOG_LEVEL": "ERROR",
        "DIDCOMMD_CONTROL_MAX_CLIENTS": "16",
        "DIDCOMMD_CONTROL_MODE": "0600",
        "DIDCOMMD_CONTROL_ALLOWED_GROUP": "",
        "DIDCOMMD_P2P_LISTEN": "/ip4/127.0.0.1/tcp/0, /ip4/127.0.0.1/udp/0/quic-v1",
        "DIDCOMMD_P2P_MDNS": "yes",
        "DIDCOMMD_DAEMON_STATE_DIR": "relative/state",
        "DIDCOMMD_WALLET_PASSPHRASE_ENV": "",
        "DIDCOMMD_WALLET_PASSPHRASE_FILE": "/run/credentials/pw",
        # Not one of our sections: left alone.
        "DIDCOMMD_INTEROP_PYTHON": "/usr/bin/python3",
    }
    config = load_config(path, env=env)
    assert config.daemon.log_level == "error"
    assert config.control.max_clients == 16
    assert config.control.mode == 0o600
    assert config.control.allowed_group is None
    assert config.p2p.listen == ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"]
    assert config.p2p.mdns is True
    assert config.daemon.state_dir == Path.cwd() / "relative" / "state"
    assert config.wallet.passphrase_env is None
    assert config.wallet.passphrase_file == Path("/run/credentials/pw")
    # Settings from the file that the environment did not touch survive.
    assert config.daemon.shutdown_timeout == 2.5


def test_every_key_has_an_environment_variable(env: dict[str, str]) -> None:
    names = [env_var_name(s, k) for s, keys in config_keys().items() for k in keys]
    assert "DIDCOMMD_P2P_LISTEN" in names
    assert "DIDCOMMD_CONTROL_MAX_PENDING_PER_CONNECTION" in names
    assert len(names) == len(set(names))


# -- bad configurations -------------------------------------------------------------------------

BAD_FILES = [
    ("[daemon\nlog_level = 1", None, "not valid TOML"),
    ('[deamon]\nlog_level = "info"', "deamon", "unknown section"),
    ('[daemon]\nlog_levle = "info"', "daemon.log_levle", "unknown key"),
    ("[daemon]\nlog_level = 3", "daemon.log_level", "must be a string"),
    ('[daemon]\nlog_level = "loud"', "daemon.log_level", "must be one of"),
    ('[daemon]\nshutdown_timeout = "soon"', "daemon.shutdown_timeout", "number of seconds"),
    ("[daemon]\nshutdown_timeout = 0", "daemon.shutdown_timeout", "more than 0"),
    ('[control]\nmax_clients = "8"', "control.max_clients", "must be an integer"),
    ("[control]\nmax_clients = true", "control.max_clients", "must be an integer"),
    ("[control]\nmax_clients = 0", "control.max_clients", "between 1 and"),
    ("[control]\nmode = 0o666", "control.mode", "other users"),
    ("[control]\nmode = 0o400", "control.mode", "read and write"),
    ('[control]\nsocket = "/' + "x" * 120 + '"', "control.socket", "at most 107 bytes"),
    ('[control]\nallowed_group = "no spaces"', "control.allowed_group", "not a valid group"),
    ('[wallet]\npassphrase_env = "NOT-A-NAME"', "wallet.passphrase_env", "environment variable"),
    ('[wallet]\npassphrase_env = "A"\npassphrase_file = "/x"', "wallet.passphrase_env", "not both"),
    ('[p2p]\nlisten = "/ip4/127.0.0.1/tcp/1"', "p2p.listen", "must be an array"),
    ('[p2p]\nlisten = ["127.0.0.1:4001"]', "p2p.listen", "must start with '/'"),
    ('[p2p]\nlisten = ["/ip4/300.1.1.1/tcp/1"]', "p2p.listen", "not an IPv4 address"),
    ('[p2p]\nlisten = ["/ip4/127.0.0.1/tcp/70000"]', "p2p.listen", "not a port number"),
    ('[p2p]\nlisten = ["/ip4/127.0.0.1/tcp"]', "p2p.listen", "needs a value"),
    ('[p2p]\nlisten = ["/ip4/127.0.0.1/sctp/5"]', "p2p.listen", "unknown multiaddr protocol"),
    ('[p2p]\nlisten = ["/tcp/4001"]', "p2p.listen", "must start with /ip4"),
    ('[p2p]\nbootstrap = ["/ip4/10.0.0.1/tcp/4001"]', "p2p.bootstrap", "/p2p/<peer id>"),
    ('[p2p]\nbootstrap = ["/ip4/10.0.0.1/tcp/4001/p2p/nope"]', "p2p.bootstrap", "peer id"),
    ('[p2p]\nmdns = "yes"', "p2p.mdns", "true or false"),
    ("[credentials]\nstatus_refresh = 0", "credentials.status_refresh", "between 1 and"),
    ('[credentials]\nstatus_refresh = "6h"', "credentials.status_refresh", "must be an integer"),
    ("[credentials]\nstatus_refreshh = 60", "credentials.status_refreshh", "unknown key"),
    ("daemon = 3", "daemon", "must be a table"),
]


@pytest.mark.parametrize(("text", "key", "reason"), BAD_FILES)
def test_bad_file_is_refused_with_file_key_and_reason(
    tmp_path: Path, env: dict[str, str], text: str, key: str | None, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    err = info.value
    assert err.file == str(path)
    assert err.key == key
    assert reason in err.reason
    assert str(err) == ": ".join(p for p in (str(path), key, err.reason) if p)


BAD_ENV = [
    ("DIDCOMMD_DAEMON_LOGLEVEL", "debug", "unknown setting"),
    ("DIDCOMMD_CONTROL_MAX_CLIENTS", "many", "must be an integer"),
    ("DIDCOMMD_CONTROL_MAX_CLIENTS", str(MAX_CLIENTS_LIMIT + 1), "between 1 and"),
    ("DIDCOMMD_CONTROL_MODE", "rw-------", "octal file mode"),
    ("DIDCOMMD_P2P_MDNS", "maybe", "true or false"),
    ("DIDCOMMD_P2P_LISTEN", "/ip4/127.0.0.1/tcp/0,/ip9/x", "unknown multiaddr protocol"),
    ("DIDCOMMD_DAEMON_SHUTDOWN_TIMEOUT", "-1", "more than 0"),
    ("DIDCOMMD_CREDENTIALS_STATUS_REFRESH", "soon", "must be an integer"),
    ("DIDCOMMD_CREDENTIALS_STATUS_REFRESH", str(31 * 24 * 3600), "between 1 and"),
]


@pytest.mark.parametrize(("name", "value", "reason"), BAD_ENV)
def test_bad_environment_is_refused_naming_the_variable(
    env: dict[str, str], name: str, value: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env=env | {name: value})
    assert info.value.file == "environment"
    assert info.value.key == name
    assert reason in info.value.reason


def test_missing_or_unreadable_file(tmp_path: Path, env: dict[str, str]) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="cannot read the file") as info:
        load_config(missing, env=env)
    assert info.value.file == str(missing)
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(env=env | {"DIDCOMMD_CONFIG": str(missing)})
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[daemon]")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary, env=env)


# -- properties ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    section_key=st.sampled_from([
        ("control", "max_clients", 1, MAX_CLIENTS_LIMIT),
        ("control", "max_pending_per_connection", 1, 10_000),
        ("control", "max_request_bytes", 1024, 64 * 1024 * 1024),
    ]),
    value=st.integers(-(2**40), 2**40),
)
def test_integer_settings_from_file_and_environment(
    tmp_path_factory: pytest.TempPathFactory, section_key: tuple[str, str, int, int], value: int
) -> None:
    section, key, low, high = section_key
    tmp = tmp_path_factory.mktemp("c")
    env = {"HOME": str(tmp)}
    path = write(tmp, f"[{section}]\n{key} = {value}\n")
    for kwargs in ({"path": path, "env": env}, {"env": env | {env_var_name(section, key): str(value)}}):
        if low <= value <= high:
            assert getattr(getattr(load_config(**kwargs), section), key) == value  # type: ignore[arg-type]
        else:
            with pytest.raises(ConfigError, match="between"):
                load_config(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=12))
def test_log_level_accepts_exactly_the_known_levels(level: str) -> None:
    env = {"HOME": "/nonexistent", "DIDCOMMD_DAEMON_LOG_LEVEL": level}
    if "\x00" in level:
        return  # an environment cannot hold NUL
    if level.lower() in LOG_LEVELS:
        assert load_config(env=env).daemon.log_level == level.lower()
    else:
        with pytest.raises(ConfigError):
            load_config(env=env)


ip4 = st.ip_addresses(v=4).map(str)
ip6 = st.ip_addresses(v=6).map(str)
ports = st.integers(0, 65535).map(str)
addrs = st.one_of(
    st.tuples(st.just("ip4"), ip4, st.sampled_from(["tcp", "udp"]), ports),
    st.tuples(st.just("ip6"), ip6, st.sampled_from(["tcp", "udp"]), ports),
).map(lambda t: "/" + "/".join(t))


@settings(max_examples=80, deadline=None)
@given(st.lists(addrs, min_size=1, max_size=5))
def test_listen_addresses_round_trip_through_the_environment(listen: list[str]) -> None:
    env = {"HOME": "/nonexistent", "DIDCOMMD_P2P_LISTEN": ",".join(listen)}
    assert load_config(env=env).p2p.listen == listen


@settings(max_examples=120, deadline=None)
@given(st.text(alphabet="/ip46tcudp0123456789.:abcf-", max_size=30))
def test_multiaddr_checker_accepts_only_well_formed_addresses(text: str) -> None:
    try:
        protocols = check_multiaddr(text)
    except ValueError:
        return
    # Whatever it accepts has the shape /proto[/value]...; ip values parse.
    parts = text.split("/")
    assert parts[0] == ""
    assert protocols[0] in ("ip4", "ip6", "dns", "dns4", "dns6", "dnsaddr")
    if protocols[0] == "ip4":
        ipaddress.IPv4Address(parts[2])

"""The outbox sender's pure parts and its configuration: backoff, routes, ``[delivery]``."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.config import ConfigError, load_config
from daemon.delivery import JITTER_MIN, backoff_delay, route_for
from protocols.did.did_peer import create_did_peer_2
from protocols.did.resolver import default_resolver
from protocols.keys import PrivateKey

PEER = "12D3KooWKLKMNvAp3US3WDA5SrKDhXno9Cm9tWmitTddsrgvTzhc"


@given(
    failures=st.integers(min_value=1, max_value=10_000),
    base=st.floats(min_value=0.001, max_value=100.0),
    cap=st.floats(min_value=100.0, max_value=86_400.0),
    r=st.floats(min_value=0.0, max_value=0.999999),
)
def test_backoff_is_exponential_capped_and_jittered(failures: int, base: float, cap: float, r: float) -> None:
    delay = backoff_delay(failures, base, cap, lambda: r)
    nominal = min(cap, base * 2.0 ** min(failures - 1, 64))
    assert nominal * JITTER_MIN <= delay * (1 + 1e-12)
    assert delay <= nominal * (1 + 1e-12)
    assert delay <= cap


@given(failures=st.integers(min_value=1, max_value=30))
def test_backoff_grows_until_the_cap(failures: int) -> None:
    one = backoff_delay(failures, 0.5, 60.0, lambda: 0.999999)
    two = backoff_delay(failures + 1, 0.5, 60.0, lambda: 0.999999)
    assert two >= one
    assert two == pytest.approx(min(60.0, one * 2), rel=1e-5)


def _did(services: list[dict[str, object]]) -> str:
    ed = PrivateKey.generate("Ed25519")
    x = PrivateKey.generate("X25519")
    return create_did_peer_2([ed.public], [x.public], services)


def test_route_is_the_first_libp2p_endpoint() -> None:
    did = _did([
        {"id": "#http", "type": "DIDCommMessaging", "serviceEndpoint": {"uri": "https://example.com/dc"}},
        {"id": "#p2p", "type": "DIDCommMessaging",
         "serviceEndpoint": {"uri": f"libp2p-peerId:{PEER}", "multiAddrs": ["/ip4/127.0.0.1/tcp/4001"],
                             "accept": ["didcomm/v2"]}},
    ])
    route = route_for(default_resolver().resolve(did))
    assert route is not None
    assert route.peer_id == PEER
    assert route.multiaddrs == ("/ip4/127.0.0.1/tcp/4001",)


def test_no_route_without_a_libp2p_endpoint() -> None:
    did = _did([{"id": "#http", "type": "DIDCommMessaging", "serviceEndpoint": {"uri": "https://example.com"}}])
    assert route_for(default_resolver().resolve(did)) is None
    assert route_for(default_resolver().resolve(_did([]))) is None


def test_delivery_config_defaults_and_env(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    cfg = load_config(None, env)
    assert (cfg.delivery.retry_base, cfg.delivery.retry_max) == (1.0, 300.0)
    assert cfg.delivery.max_pending_per_peer == 10_000
    cfg = load_config(None, {**env, "DIDCOMMD_DELIVERY_RETRY_BASE": "0.2", "DIDCOMMD_DELIVERY_RETRY_MAX": "2",
                             "DIDCOMMD_DELIVERY_MAX_IN_FLIGHT_PER_PEER": "4"})
    assert (cfg.delivery.retry_base, cfg.delivery.retry_max, cfg.delivery.max_in_flight_per_peer) == (0.2, 2.0, 4)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[delivery]\nretry_base = 0\n", "delivery.retry_base"),
        ("[delivery]\nretry_max = -1\n", "delivery.retry_max"),
        ("[delivery]\nretry_base = 10.0\nretry_max = 5.0\n", "delivery.retry_base"),
        ("[delivery]\nmax_pending_per_peer = 0\n", "delivery.max_pending_per_peer"),
        ("[delivery]\nmax_in_flight_per_peer = 100000\n", "delivery.max_in_flight_per_peer"),
        ("[delivery]\nretry = 1\n", "delivery.retry"),
    ],
)
def test_bad_delivery_config_is_refused(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "didcommd.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(path, {"HOME": str(tmp_path)})
    assert info.value.key == key


def test_per_peer_outbox_limit_refuses_more(daemon_factory: object) -> None:
    from .test_two_daemons import BASIC, ctl_json

    d = daemon_factory(env={"DIDCOMMD_DELIVERY_MAX_PENDING_PER_PEER": "2"})  # type: ignore[operator]
    ctl_json(d, "did", "create")
    # Nobody listens on port 1: messages to this DID stay queued, retrying.
    unreachable = _did([{"id": "#p2p", "type": "DIDCommMessaging",
                         "serviceEndpoint": {"uri": f"libp2p-peerId:{PEER}",
                                             "multiAddrs": ["/ip4/127.0.0.1/tcp/1"]}}])
    for _ in range(2):
        ctl_json(d, "send", "--to", unreachable, "--type", BASIC)
    third = d.ctl("send", "--to", unreachable, "--type", BASIC)
    assert third.returncode == 4, third.stderr
    assert "max_pending_per_peer" in third.stderr

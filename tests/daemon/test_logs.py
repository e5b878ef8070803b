"""Logging as a specification: one JSON object per line, ids bound, key material never shown."""

from __future__ import annotations

import io
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.logs import (
    REDACTED,
    configure_logging,
    get_logger,
    is_secret_field,
    redact,
)

# Every test here reconfigures logging; put it back afterwards (conftest).
pytestmark = pytest.mark.usefixtures("restore_logging")


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_event_level_time_and_ids() -> None:
    out = io.StringIO()
    configure_logging("info", "auto", stream=out)  # not a TTY: JSON
    log = get_logger("agent", did="did:ex:1")
    log.info("did.created", method="peer")
    log.debug("hidden")
    logging.getLogger("libp2p.swarm").warning("dial failed %s", "peer-1")
    logging.getLogger("libp2p.swarm").info("too chatty")
    first, second = lines(out)
    assert first["event"] == "did.created" and first["level"] == "info"
    assert first["did"] == "did:ex:1" and first["component"] == "agent" and first["method"] == "peer"
    assert str(first["time"]).endswith("Z")
    assert second["event"] == "dial failed peer-1" and second["logger"] == "libp2p.swarm"


def test_console_on_a_tty_and_reconfiguring_changes_the_level() -> None:
    tty = FakeTTY()
    configure_logging("warning", "auto", stream=tty)
    log = get_logger("x")
    log.info("not shown")
    log.warning("shown", passphrase="hunter2")
    text = tty.getvalue()
    assert "shown" in text and "not shown" not in text and not text.startswith("{")
    assert "hunter2" not in text and REDACTED in text
    # Loggers made before a reconfiguration follow it (SIGHUP).
    configure_logging("debug", "json", stream=tty)
    log.debug("now shown")
    assert json.loads(tty.getvalue().splitlines()[-1])["event"] == "now shown"
    with pytest.raises(ValueError):
        configure_logging("loud")


def test_key_material_is_redacted_wherever_it_hides() -> None:
    out = io.StringIO()
    configure_logging("debug", "json", stream=out)
    get_logger("w").info(
        "oops",
        d="AAAA",
        jwk={"kty": "OKP", "crv": "X25519", "x": "pub", "d": "BBBB"},
        keys=[{"private_key": "CCCC"}, {"kid": "did:ex:1#k"}],
        wallet_key=b"DDDD",
        secret_box="EEEE",
        key_file="/var/lib/didcommd/wallet.key",
        kid="did:ex:1#k",
    )
    logging.getLogger("other").error("stdlib %s", "x", extra={"passphrase": "FFFF"})
    text = out.getvalue()
    for secret in ("AAAA", "BBBB", "CCCC", "DDDD", "EEEE", "FFFF"):
        assert secret not in text
    record = lines(out)[0]
    assert record["jwk"] == {"kty": "OKP", "crv": "X25519", "x": "pub", "d": REDACTED}
    assert record["key_file"] == "/var/lib/didcommd/wallet.key" and record["kid"] == "did:ex:1#k"


@pytest.mark.parametrize("name", ["d", "D", "key", "secret", "client_secret", "passphrase", "private",
                                  "privateKeyJwk", "private_key", "signing_key", "seed", "password"])
def test_secret_field_names(name: str) -> None:
    assert is_secret_field(name)


@pytest.mark.parametrize("name", ["did", "kid", "key_file", "keys", "id", "data", "event", "to"])
def test_ordinary_field_names(name: str) -> None:
    assert not is_secret_field(name)


@settings(max_examples=100, deadline=None)
@given(st.recursive(
    st.text(max_size=5) | st.integers(),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["d", "x", "kid", "secret", "n"]), c, max_size=3),
    max_leaves=12,
))
def test_redaction_leaves_no_secret_field_anywhere(value: object) -> None:
    event = redact(None, "info", {"event": "e", "value": value, "d": value})

    def walk(v: object) -> None:
        if isinstance(v, dict):
            for k, inner in v.items():
                if is_secret_field(k):
                    assert inner == REDACTED
                else:
                    walk(inner)
        elif isinstance(v, list):
            for inner in v:
                walk(inner)

    walk(event)

"""The interop harness itself: finding the interpreter, batches, one bad request."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.conftest import (
    INTEROP_PEER_SCRIPT,
    INTEROP_PYTHON_ENV,
    INTEROP_TIMEOUT_SECONDS,
    interop_python,
)

pytestmark = pytest.mark.interop

MESSAGE = {"id": "harness-1", "type": "https://didcomm.org/basicmessage/2.0/message", "body": {}}


def test_missing_interpreter_fails_and_says_make_test(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv(INTEROP_PYTHON_ENV, str(tmp_path / "no-such-python"))
    with pytest.raises(pytest.fail.Exception, match="make test"):
        interop_python()


def test_a_bad_request_does_not_sink_the_batch(interop_peer: Any) -> None:
    results = interop_peer(
        [
            {"op": "no-such-op"},
            {"op": "pack_plaintext", "message": MESSAGE},
            {"op": "unpack", "packed": "{not json"},
            "not an object",
        ]
    )
    assert "no-such-op" in results[0]["error"]
    assert json.loads(results[1]["packed"]) == MESSAGE
    assert "error" in results[2]
    assert "error" in results[3]


def test_a_single_request_gets_a_single_result() -> None:
    proc = subprocess.run(
        [str(interop_python()), "-W", "ignore", str(INTEROP_PEER_SCRIPT)],
        input=json.dumps({"op": "pack_plaintext", "message": MESSAGE}),
        capture_output=True,
        text=True,
        timeout=INTEROP_TIMEOUT_SECONDS,
        check=True,
    )
    assert json.loads(json.loads(proc.stdout)["packed"]) == MESSAGE

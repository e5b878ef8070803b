"""Fixtures shared by every test: the appendix vectors and the interop peer.

- ``vectors``: the appendix test vectors (``tests/vectors/*.json``) as one dict.
- ``appendix_resolver`` / ``appendix_secrets``: our DID resolver and secrets
  store loaded with the appendix DID documents and keys.
- ``interop_peer``: runs a batch of requests through didcomm-python 0.3.2
  (``tests/interop/didcomm_peer.py`` in ``.venv-interop``) and returns the
  results. The interop venv is part of the test setup (``make test`` builds it
  and sets ``$DIDCOMMD_INTEROP_PYTHON``); when it is missing the tests that
  need it fail with a message saying so, they are never skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import vectors as vector_files

REPO = Path(__file__).resolve().parent.parent
INTEROP_PEER_SCRIPT = REPO / "tests" / "interop" / "didcomm_peer.py"
INTEROP_PYTHON_ENV = "DIDCOMMD_INTEROP_PYTHON"
INTEROP_FALLBACK_PYTHON = REPO / ".venv-interop" / "bin" / "python"
#: A whole batch (hundreds of P-521 operations) takes a few seconds on a busy
#: two-core machine; anything near this means the peer is stuck.
INTEROP_TIMEOUT_SECONDS = 180

InteropPeer = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    """All vector files: ``alice_secrets``, ``bob_secrets``, ``secrets`` (both),
    ``did_docs``, ``plaintext``, ``signed``, ``encrypted``, ``messages`` (all
    three message lists) and ``by_name`` (message vectors by name)."""
    messages = vector_files.message_vectors()
    return {
        "alice_secrets": vector_files.load("alice_secrets.json"),
        "bob_secrets": vector_files.load("bob_secrets.json"),
        "secrets": vector_files.all_secrets(),
        "did_docs": vector_files.load("did_docs.json"),
        "plaintext": vector_files.load("plaintext.json"),
        "signed": vector_files.load("signed.json"),
        "encrypted": vector_files.load("encrypted.json"),
        "messages": messages,
        "by_name": {v["name"]: v for v in messages},
    }


@pytest.fixture(scope="session")
def appendix_resolver(vectors: dict[str, Any]) -> Any:
    """``default_resolver`` knowing the appendix DID documents too."""
    from protocols.did.resolver import default_resolver

    return default_resolver(extra_docs=vectors["did_docs"])


@pytest.fixture(scope="session")
def appendix_secrets(vectors: dict[str, Any]) -> Any:
    """``InMemorySecrets`` holding every Alice and Bob private key."""
    from protocols.secrets import InMemorySecrets

    return InMemorySecrets(vectors["secrets"])


def interop_python() -> Path:
    """The interop venv's interpreter, or a test failure telling how to get one."""
    configured = os.environ.get(INTEROP_PYTHON_ENV)
    candidate = Path(configured) if configured else INTEROP_FALLBACK_PYTHON
    if not candidate.exists():
        pytest.fail(
            f"the interop interpreter {candidate} does not exist "
            f"(${INTEROP_PYTHON_ENV} {'is set' if configured else 'is unset'}): "
            "run the tests with `make test`, which builds .venv-interop "
            "(didcomm==0.3.2) and sets it",
            pytrace=False,
        )
    return candidate


def run_interop_peer(python: Path, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One run of the peer script over a batch; results in request order."""
    proc = subprocess.run(
        [str(python), "-W", "ignore", str(INTEROP_PEER_SCRIPT)],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=INTEROP_TIMEOUT_SECONDS,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"interop peer exited with {proc.returncode}:\n{proc.stderr[-4000:]}", pytrace=False
        )
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    assert len(results) == len(requests), "the interop peer lost requests"
    return results


@pytest.fixture(scope="session")
def interop_peer() -> InteropPeer:
    """``run(requests) -> results`` through didcomm-python, one process per call."""
    python = interop_python()
    return lambda requests: run_interop_peer(python, requests)


@pytest.fixture(scope="session")
def didcommd_bin() -> Path:
    """The installed ``didcommd`` console script of the venv running the tests."""
    for candidate in (
        Path(sys.executable).parent / "didcommd",
        REPO / ".venv" / "bin" / "didcommd",
    ):
        if candidate.exists():
            return candidate
    pytest.fail("no didcommd console script: run `make venv` (pip install -e .)", pytrace=False)

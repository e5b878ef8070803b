"""``didcommctl`` as a user and a script see it: every command against a real daemon."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon import ctl, exitcodes
from daemon.client import UNAVAILABLE_HINT

from .conftest import REPO, Daemon

BASIC = "https://didcomm.org/basicmessage/2.0/message"


def run(d: Daemon, *args: str) -> tuple[int, str, str]:
    """``didcommctl --socket <d> ARGS`` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = ctl.main(["--socket", str(d.socket), *args], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def run_json(d: Daemon, *args: str) -> Any:
    code, out, err = run(d, "--json", *args)
    assert code == 0, err
    return json.loads(out)


def test_the_whole_round_trip(shared_daemon: Daemon, tmp_path: Path) -> None:
    d = shared_daemon
    code, out, _ = run(d, "did", "create", "--label", "alice")
    assert code == 0 and out.startswith("did:peer:2.")
    alice = out.strip()
    bob = run_json(d, "did", "create", "--method", "key", "--label", "bob")["did"]

    code, out, _ = run(d, "did", "list")
    assert code == 0 and "LABEL" in out and "alice" in out and bob in out
    assert {x["did"] for x in run_json(d, "did", "list")["dids"]} >= {alice, bob}
    assert run_json(d, "did", "resolve", bob)["id"] == bob

    code, out, _ = run(d, "send", "--to", bob, "--from", alice, "--type", BASIC, "--body", '{"content": "hi"}')
    assert code == 0 and out.strip().endswith("queued")
    msg_id = out.split()[0]
    code, out, _ = run(d, "outbox", "--limit", "5")
    assert code == 0 and msg_id in out
    packed = run_json(d, "message", "show", "--outbox", msg_id)["packed"]
    (tmp_path / "m.jwe").write_text(packed)

    code, out, _ = run(d, "receive", str(tmp_path / "m.jwe"))
    assert code == 0 and out.strip() == f"{msg_id} received"
    code, out, _ = run(d, "inbox")
    assert code == 0 and msg_id in out and BASIC in out
    shown = run_json(d, "message", "show", msg_id)
    assert shown["message"]["body"] == {"content": "hi"}
    assert shown["metadata"]["authenticated"] is True

    code, out, _ = run(d, "events", "--kind", "message.received")
    assert code == 0 and "message.received" in out and msg_id in out
    code, out, _ = run(d, "--json", "events", "--since", "0")
    kinds = [json.loads(line)["kind"] for line in out.splitlines()]
    assert {"did.created", "message.queued", "message.received"} <= set(kinds)

    status = run_json(d, "status")
    assert status["dids"] >= 2 and status["inbox"] >= 1
    code, out, _ = run(d, "status")
    assert code == 0 and "uptime_s:" in out
    assert run_json(d, "call", "message.list", '{"box": "outbox", "limit": 1}')["messages"][0]["id"] == msg_id
    code, out, _ = run(d, "methods")
    assert code == 0 and "message.send to:str type:str" in out


def test_stdin_and_rejection(shared_daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"not": "didcomm"}')))
    code, out, _ = run(shared_daemon, "receive", "-")
    assert code == exitcodes.DATA
    assert "rejected" in out and "message show" in out


def test_exit_codes_say_what_went_wrong(shared_daemon: Daemon, tmp_path: Path) -> None:
    d = shared_daemon
    code, _, err = run(d, "send", "--to", "did:key:x", "--type", BASIC, "--body", "[1,")
    assert code == exitcodes.DATA and "--body is not valid JSON" in err
    code, _, err = run(d, "message", "show", "no-such-id")
    assert code == exitcodes.FAILURE and "no-such-id" in err and "(not_found)" in err
    code, _, err = run(d, "call", "no.such.method")
    assert code == exitcodes.USAGE and "method_not_found" in err
    code, _, err = run(d, "call", "did.create", '{"method": "web"}')
    assert code == exitcodes.USAGE and "invalid_params" in err
    code, _, err = run(d, "receive", str(tmp_path / "missing.jwe"))
    assert code == exitcodes.DATA and "cannot read" in err


def test_unreachable_daemon_exits_4_with_a_hint(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = ctl.main(["--socket", str(tmp_path / "nothing.sock"), "status"], out=out, err=err)
    assert code == exitcodes.UNAVAILABLE
    assert UNAVAILABLE_HINT in err.getvalue()


def test_a_command_group_without_an_action_prints_its_help() -> None:
    err = io.StringIO()
    assert ctl.main(["did"], out=io.StringIO(), err=err) == exitcodes.USAGE
    assert "create" in err.getvalue() and "resolve" in err.getvalue()


def test_help_teaches_with_examples_and_exit_codes() -> None:
    top = subprocess.run([sys.executable, "-m", "daemon.ctl", "--help"], capture_output=True, text=True, cwd=REPO)
    assert top.returncode == 0
    assert "exit codes:" in top.stdout and "DIDCOMMD_CONTROL_SOCKET" in top.stdout
    send = subprocess.run([sys.executable, "-m", "daemon.ctl", "send", "--help"], capture_output=True, text=True, cwd=REPO)
    assert "examples:" in send.stdout and "--body" in send.stdout


def test_didcommctl_as_a_process_and_shutdown(daemon: Daemon) -> None:
    result = daemon.ctl("--json", "status")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["dids"] == 0
    bye = daemon.ctl("shutdown")
    assert bye.returncode == 0 and "stopping" in bye.stdout
    assert daemon.wait() == 0
    gone = daemon.ctl("status")
    assert gone.returncode == exitcodes.UNAVAILABLE and "is didcommd running?" in gone.stderr


def test_did_add_remembers_a_document_we_cannot_compute(shared_daemon: Daemon, tmp_path: Path) -> None:
    d = shared_daemon
    doc = {
        "id": "did:example:carol",
        "verificationMethod": [
            {
                "id": "did:example:carol#key-1",
                "type": "JsonWebKey2020",
                "controller": "did:example:carol",
                "publicKeyJwk": {"kty": "OKP", "crv": "X25519", "x": "avH0O2Y4tqLAq8y9zpianr8ajii5m4F_mICrzNlatXs"},
            }
        ],
        "keyAgreement": ["did:example:carol#key-1"],
        "service": [
            {
                "id": "did:example:carol#didcomm",
                "type": "DIDCommMessaging",
                "serviceEndpoint": {"uri": "libp2p-peerId:12D3KooWBN7nBtUAfZEw5T1PPQVVH76FKcoMSgs5zihHRFr5pUix"},
            }
        ],
    }
    (tmp_path / "carol.json").write_text(json.dumps(doc))
    code, out, err = run(d, "did", "add", str(tmp_path / "carol.json"), "--label", "carol")
    assert code == 0, err
    assert out.strip() == "did:example:carol"
    resolved = run_json(d, "did", "resolve", "did:example:carol")
    assert resolved["id"] == "did:example:carol"
    assert resolved["keyAgreement"] == ["did:example:carol#key-1"] or resolved["keyAgreement"][0] in (
        "did:example:carol#key-1",
        {"id": "did:example:carol#key-1"},
    )

    (tmp_path / "bad.json").write_text('{"id": "not a did"}')
    code, _, err = run(d, "did", "add", str(tmp_path / "bad.json"))
    assert code == exitcodes.DATA and err.startswith("didcommctl: not a valid DID") and "Traceback" not in err
    code, _, err = run(d, "did", "add", str(tmp_path / "missing.json"))
    assert code == exitcodes.DATA and "cannot read" in err


def test_global_options_work_after_the_command_too(shared_daemon: Daemon) -> None:
    # `didcommctl status --json`, as people type it, is `didcommctl --json status`;
    # an option given before the command is kept when the command does not repeat it.
    d = shared_daemon
    out, err = io.StringIO(), io.StringIO()
    code = ctl.main(["status", "--json", "--socket", str(d.socket), "--timeout", "5"], out=out, err=err)
    assert code == 0, err.getvalue()
    status = json.loads(out.getvalue())
    assert status["peer_id"] and isinstance(status["addrs"], list)
    code, listed, _ = run(d, "--json", "did", "list")
    assert code == 0 and isinstance(json.loads(listed)["dids"], list)
    with pytest.raises(SystemExit) as exited:  # argparse's usage error, after the command too
        run(d, "status", "--timeout", "soon")
    assert exited.value.code == exitcodes.USAGE

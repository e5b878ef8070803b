"""Fixtures for the daemon tests: a real ``didcommd run`` process, and an in-process control server.

Real daemon
    :func:`start_daemon` starts ``python -m daemon.cli run`` in a temporary home
    (``HOME``, ``XDG_STATE_HOME``, ``XDG_RUNTIME_DIR``, ``XDG_CONFIG_HOME`` all
    point inside it), with a ``NOTIFY_SOCKET`` the test owns, and waits for
    ``READY=1``.  The ``daemon`` fixture gives each test its own;
    ``shared_daemon`` is one per module for tests that only read.

In-process control server
    :func:`serve_control` runs :class:`daemon.control.ControlServer` on a real
    Unix socket against :class:`FakeAgent`, a small handler table of the
    agent's methods.  It is for the framing, limits and concurrency tests of
    the control layer itself; everything end-to-end uses the real daemon.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio

from daemon.agent import Agent
from daemon.client import SyncClient
from daemon.config import Config, load_config
from daemon.control import ControlServer, Limits, create_socket, listener_for
from daemon.errors import NotFoundError
from daemon.events import EventBus
from daemon.logs import NOISY_LOGGERS

REPO = Path(__file__).resolve().parents[2]
#: Seconds a daemon may take to report READY=1 (a cold start imports a lot on
#: a busy two-core machine).
READY_TIMEOUT = 30.0
#: Seconds a daemon may take to exit after SIGTERM.
EXIT_TIMEOUT = 20.0


# -- a real daemon -----------------------------------------------------------------------------


def make_config(root: Path, **env: str) -> Config:
    """An agent's configuration on embedded defaults, its state under ``root``
    (``env``: more ``DIDCOMMD_*`` overrides)."""
    return load_config(env={"HOME": str(root), "DIDCOMMD_DAEMON_STATE_DIR": str(root / "state"), **env})


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Agent, Agent]]:
    """Two real agents in this process (state dirs, SQLite, wallets), not connected."""
    alice = await Agent.open(make_config(tmp_path / "alice"))
    bob = await Agent.open(make_config(tmp_path / "bob"))
    try:
        yield alice, bob
    finally:
        await alice.aclose()
        await bob.aclose()


@pytest.fixture
async def connected(pair: tuple[Agent, Agent]) -> tuple[Agent, Agent, Any, Any]:
    """``pair`` connected over an invitation: alice, bob, the Wire between them (the
    transport's job, done by the test) and alice's Connection."""
    from tests.daemon.test_conversations import Wire, connect  # (it imports this module)

    alice, bob = pair
    wire = Wire(alice, bob)
    await connect(alice, bob, wire)
    return alice, bob, wire, (await alice.conversations.connections.list())[0]


class NotifyListener:
    """A ``NOTIFY_SOCKET`` datagram socket: what the daemon tells systemd."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []

    def wait_for(self, assignment: str, timeout: float = READY_TIMEOUT) -> list[str]:
        """Read datagrams until one contains ``assignment`` (e.g. ``READY=1``); all so far."""
        deadline = time.monotonic() + timeout
        while not any(assignment in m.split("\n") for m in self.messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {assignment} from the daemon; got {self.messages}")
            self.sock.settimeout(remaining)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        return self.messages

    def close(self) -> None:
        self.sock.close()


@dataclass
class Daemon:
    """A ``didcommd run`` process and the directories it lives in."""

    home: Path
    runtime: Path
    env: dict[str, str]
    socket: Path
    log_path: Path
    notify: NotifyListener
    args: list[str]
    pass_fds: tuple[int, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    _log_file: Any = field(default=None, repr=False)

    @property
    def state_dir(self) -> Path:
        return self.home / "state" / "didcommd"

    def start(self, *, wait: bool = True, preexec_fn: Any = None) -> Daemon:
        """Start the process; wait for READY=1 unless told not to."""
        self.notify.messages.clear()
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 (closed in wait())
        self.proc = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=self.home,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            pass_fds=self.pass_fds,
            preexec_fn=preexec_fn,
        )
        if wait:
            try:
                self.notify.wait_for("READY=1")
            except TimeoutError:
                self.kill()
                raise AssertionError(f"daemon did not become ready:\n{self.log_text()}") from None
        return self

    def client(self, timeout: float = 30.0) -> SyncClient:
        return SyncClient.connect(self.socket, timeout=timeout)

    def call(self, name: str, /, **params: Any) -> Any:
        """One control call on a fresh connection."""
        with self.client() as c:
            return c.call(name, params)

    def ctl(self, *args: str, input: bytes | None = None, user: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``didcommctl --socket <ours> ARGS`` as a real process."""
        cmd = [sys.executable, "-m", "daemon.ctl", "--socket", str(self.socket), *args]
        return subprocess.run(
            cmd, env=self.env, cwd=REPO, input=input.decode() if input else None,
            capture_output=True, text=True, timeout=60,
        )

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = EXIT_TIMEOUT) -> int:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout)
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
        return code

    def stop(self) -> int:
        """SIGTERM and wait; the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines are skipped)."""
        records = []
        for line in self.log_text().splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                records.append(value)
        return records

    def cleanup(self) -> None:
        self.kill()
        self.notify.close()
        shutil.rmtree(self.runtime, ignore_errors=True)


def make_daemon(home: Path, *, config: str | None = None, env: dict[str, str] | None = None) -> Daemon:
    """A daemon set up in ``home`` (not started).  ``config`` is TOML for ``--config``."""
    home.mkdir(parents=True, exist_ok=True)
    # AF_UNIX paths are limited to 108 bytes: the runtime dir gets a short name.
    runtime = Path(tempfile.mkdtemp(prefix="dcd-", dir="/tmp"))
    runtime.chmod(0o700)
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_RUNTIME_DIR": str(runtime),
        "PYTHONPATH": str(REPO),
        "NOTIFY_SOCKET": str(runtime / "notify"),
        # Loopback only, no multicast: tests never touch the real network.
        "DIDCOMMD_P2P_LISTEN": "/ip4/127.0.0.1/tcp/0",
        "DIDCOMMD_P2P_MDNS": "false",
        "DIDCOMMD_DAEMON_LOG_FORMAT": "json",
    }
    full_env.update(env or {})
    args = [sys.executable, "-m", "daemon.cli", "run"]
    if config is not None:
        cfg = home / "didcommd.toml"
        cfg.write_text(config)
        args += ["--config", str(cfg)]
    return Daemon(
        home=home,
        runtime=runtime,
        env=full_env,
        socket=runtime / "didcommd" / "control.sock",
        log_path=home / "daemon.log",
        notify=NotifyListener(runtime / "notify"),
        args=args,
    )


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Any]:
    """``factory(config=None, env=None, start=True)`` → a :class:`Daemon` cleaned up after the test."""
    made: list[Daemon] = []
    # Tests start daemons from several threads at once: naming a home and
    # recording it must be one step, or two daemons share a state directory.
    naming = threading.Lock()

    def factory(*, config: str | None = None, env: dict[str, str] | None = None, start: bool = True) -> Daemon:
        with naming:
            d = make_daemon(tmp_path / f"d{len(made)}", config=config, env=env)
            made.append(d)
        return d.start() if start else d

    yield factory
    for d in made:
        d.cleanup()


@dataclass
class Parties:
    """An issuer, a holder and a verifier (real daemons); the holder connected to both."""

    issuer: Daemon
    holder: Daemon
    verifier: Daemon
    #: Connection ids: the issuer's and the verifier's to the holder, the holder's to each.
    i_conn: str
    h_to_i: str
    v_conn: str
    h_to_v: str


@pytest.fixture
def parties(daemon_factory: Any) -> Parties:
    """Three daemons as a credential exchange needs them (see :class:`Parties`)."""
    from tests.daemon.test_e2e_protocols import connect  # (it imports this module)

    issuer, holder, verifier = daemon_factory(), daemon_factory(), daemon_factory()
    i_conn, h_to_i, _ = connect(issuer, holder)
    v_conn, h_to_v, _ = connect(verifier, holder)
    return Parties(issuer, holder, verifier, i_conn, h_to_i, v_conn, h_to_v)


@pytest.fixture
def daemon(daemon_factory: Any) -> Daemon:
    """A running daemon of this test's own."""
    d: Daemon = daemon_factory()
    return d


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One running daemon for a whole module (tests that do not need a fresh state)."""
    d = make_daemon(tmp_path_factory.mktemp("shared"))
    d.start()
    yield d
    d.cleanup()


# -- an in-process control server ---------------------------------------------------------------


class FakeAgent:
    """A handler table standing in for ``daemon.agent.Agent`` in control-layer tests.

    ``did_create(label="sleep:0.2")`` sleeps that long first, so tests can hold
    requests in flight; ``label="boom"`` raises an unexpected exception.
    """

    def __init__(self) -> None:
        # The real event bus, without a store (nothing to replay).
        self.events = EventBus(None)
        self.dids: list[dict[str, Any]] = []
        self.finished: list[str] = []

    async def status(self) -> dict[str, Any]:
        return {"version": "test", "dids": len(self.dids)}

    async def did_create(self, method: str = "peer", *, label: str | None = None) -> dict[str, Any]:
        if label and label.startswith("sleep:"):
            await trio.sleep(float(label.split(":", 1)[1]))
        if label == "boom":
            raise RuntimeError("secret-looking detail that must not reach the client")
        entry = {"did": f"did:{method}:{len(self.dids)}", "method": method, "label": label, "created": 1}
        self.dids.append(entry)
        self.finished.append(entry["did"])
        self.events.publish("did.created", {"did": entry["did"]})
        return entry

    async def did_list(self) -> list[dict[str, Any]]:
        return list(self.dids)

    async def did_resolve(self, did: str) -> dict[str, Any]:
        for d in self.dids:
            if d["did"] == did:
                return {"id": did}
        raise NotFoundError(f"unknown DID {did}")

    async def message_send(self, to: str, type: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return {"id": f"m-{to}-{type}", "state": "queued", "body": body, **{k: v for k, v in kw.items() if v}}

    async def message_receive(self, packed: str | bytes) -> dict[str, Any]:
        return {"id": "r1", "state": "received", "size": len(packed)}

    async def message_list(self, **kw: Any) -> list[dict[str, Any]]:
        return [{"id": str(i), **kw} for i in range(min(kw.get("limit", 50), 3))]

    async def message_get(self, id: str) -> dict[str, Any]:
        if id == "huge":
            return {"id": id, "blob": b"x" * (17 * 1024 * 1024)}
        return {"id": id}

    async def outbox_get(self, id: str) -> dict[str, Any]:
        return {"id": id, "packed": "{}"}


@dataclass
class Served:
    server: ControlServer
    agent: FakeAgent
    path: Path
    nursery: trio.Nursery
    shutdowns: list[str]


@asynccontextmanager
async def serve_control(limits: Limits | None = None, *, mode: int = 0o600) -> AsyncIterator[Served]:
    """A :class:`ControlServer` over :class:`FakeAgent` on a real socket in a fresh temp dir."""
    tmp = Path(tempfile.mkdtemp(prefix="dcc-", dir="/tmp"))
    path = tmp / "control.sock"
    agent = FakeAgent()
    shutdowns: list[str] = []
    server = ControlServer(agent, limits, daemon_version="test", on_shutdown=lambda: shutdowns.append("x"), socket_path=path)
    sock = create_socket(path, mode=mode)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, listener_for(sock))
            yield Served(server, agent, path, nursery, shutdowns)
            nursery.cancel_scope.cancel()
    finally:
        sock.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """A control server with default limits over a :class:`FakeAgent`."""
    async with serve_control() as s:
        yield s


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put structlog and the root logger back as they were (reload and configure_logging change both)."""
    saved = structlog.get_config()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    structlog.configure(**saved)
    root.setLevel(level)
    root.handlers[:] = handlers
    for name, old in noisy.items():
        logging.getLogger(name).setLevel(old)

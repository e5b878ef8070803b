"""``didcommd run`` as a real process: readiness, signals, reload, socket activation, peers, fuzzing."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon import frames
from daemon.client import ControlError, SyncClient
from daemon.control import METHODS

from .conftest import READY_TIMEOUT, Daemon


def wait_for_log(d: Daemon, event: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in d.log_records():
            if record.get("event") == event:
                return record
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} in the log:\n{d.log_text()}")


def test_start_ready_status_and_clean_sigterm(daemon: Daemon) -> None:
    ready = next(m for m in daemon.notify.messages if "READY=1" in m.split("\n"))
    assert f"STATUS=serving on {daemon.socket}" in ready.split("\n")
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    status = daemon.call("status")
    assert status["dids"] == 0 and status["control"]["clients"] == 1
    assert Path(status["state_dir"]) == daemon.state_dir
    assert daemon.stop() == 0
    daemon.notify.wait_for("STOPPING=1", timeout=5)
    assert not daemon.socket.exists(), "the daemon removes the socket file it created"
    assert wait_for_log(daemon, "service.stopped")["reason"] == "SIGTERM"
    assert wait_for_log(daemon, "agent.closed")


def test_sigint_and_the_shutdown_method_stop_it_cleanly_too(daemon: Daemon) -> None:
    daemon.signal(signal.SIGINT)
    assert daemon.wait() == 0
    daemon.start()
    with daemon.client() as c:
        assert c.call("shutdown") == {"state": "stopping"}
    assert daemon.wait() == 0
    daemon.notify.wait_for("STOPPING=1", timeout=5)


def test_sigterm_ends_event_streams_and_exits_promptly(daemon: Daemon) -> None:
    with daemon.client() as follower:
        follower.subscribe()
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        # The stream ends with its "closed" frame, well before the 10 s timeout.
        for _ in follower.events(timeout=10):
            pass
        assert time.monotonic() - started < 5
        assert daemon.wait() == 0


def test_state_survives_a_restart(daemon: Daemon) -> None:
    did = daemon.call("did.create", method="key", label="kept")["did"]
    assert daemon.stop() == 0
    daemon.start()
    assert [d["did"] for d in daemon.call("did.list")["dids"]] == [did]


def test_sighup_reloads_the_log_level(daemon_factory: Any) -> None:
    d: Daemon = daemon_factory(config='[daemon]\nlog_level = "info"\n')
    d.call("status")
    assert not any(r.get("event") == "control.client_connected" for r in d.log_records())

    (d.home / "didcommd.toml").write_text('[daemon]\nlog_level = "debug"\n')
    d.notify.messages.clear()
    d.signal(signal.SIGHUP)
    reload_msgs = d.notify.wait_for("READY=1", timeout=10)
    assert any("RELOADING=1" in m.split("\n") for m in reload_msgs)
    assert wait_for_log(d, "config.reloaded")["log_level"] == "debug"
    d.call("status")
    record = wait_for_log(d, "control.client_connected")
    assert record["level"] == "debug"

    # A broken file on reload is reported and the old configuration stays.
    (d.home / "didcommd.toml").write_text("[daemon\n")
    d.signal(signal.SIGHUP)
    assert "not valid TOML" in wait_for_log(d, "config.reload_failed")["error"]
    assert d.call("status")["dids"] == 0
    assert d.stop() == 0


def test_sighup_applies_new_control_limits(daemon_factory: Any) -> None:
    d: Daemon = daemon_factory(config="[control]\nmax_request_bytes = 1048576\n")
    big = "x" * 4000
    with d.client() as c:
        # Garbage, but it gets through the framing to the agent, which records the rejection.
        assert c.call("message.receive", packed=big)["state"] == "rejected"
    (d.home / "didcommd.toml").write_text("[control]\nmax_request_bytes = 2048\n")
    d.signal(signal.SIGHUP)
    wait_for_log(d, "config.reloaded")
    with d.client() as c, pytest.raises(ControlError) as info:
        c.call("message.receive", packed=big)
    assert info.value.code == "frame_too_large"
    assert d.call("status")["dids"] == 0


def test_socket_activation_uses_the_inherited_fd(daemon_factory: Any, tmp_path: Path) -> None:
    d: Daemon = daemon_factory(start=False)
    activated = d.runtime / "activated.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(activated))
    listener.listen()
    fd = listener.fileno()
    # LISTEN_PID must be the daemon's own pid: a shell sets it to $$ and execs.
    d.args = ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", *d.args]
    d.env.update({"LISTEN_FDS": "1", "LISTEN_FDNAMES": "control"})
    d.pass_fds = (3,)

    def to_fd3() -> None:
        os.dup2(fd, 3)

    d.start(preexec_fn=to_fd3)
    listener.close()  # only the daemon holds it now
    assert wait_for_log(d, "control.activated")["fd"] == 3
    with SyncClient.connect(activated) as c:
        assert c.call("status")["control"]["socket"] == str(activated)
    assert f"STATUS=serving on {activated}" in "\n".join(d.notify.messages)
    assert not d.socket.exists(), "no socket of its own when one was passed"
    assert d.stop() == 0
    assert activated.exists(), "the socket unit owns the activated socket file"


def test_another_uid_is_refused(daemon: Daemon) -> None:
    # Open the file and its directories to everyone, so only SO_PEERCRED stands in the way.
    for p in (daemon.runtime, daemon.socket.parent):
        p.chmod(0o755)
    daemon.socket.chmod(0o666)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, connect, report what the daemon said
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(str(daemon.socket))
            # The daemon may have answered and closed before we write.
            with contextlib.suppress(BrokenPipeError):
                s.sendall(frames.encode_frame({"id": 1, "method": "status"}))
            data = b""
            # The daemon closes without reading our request, so after its
            # frame the kernel may report a reset rather than a clean EOF.
            with contextlib.suppress(ConnectionResetError):
                while chunk := s.recv(65536):
                    data += chunk
            os.write(w, data)
        except BaseException as exc:
            os.write(w, repr(exc).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    decoder = frames.FrameDecoder()
    decoder.feed(data)
    reply = decoder.next_frame()
    assert isinstance(reply, dict), data
    assert reply["error"]["code"] == "permission_denied"
    assert reply["error"]["message"] == "permission denied: uid 65534 is not allowed"
    assert decoder.next_frame() is frames.NEED_DATA, "nothing else, then the connection closed"
    assert wait_for_log(daemon, "control.refused")["uid"] == 65534
    assert daemon.call("status")["dids"] == 0


def test_a_second_daemon_on_the_same_socket_refuses_to_start(daemon: Daemon) -> None:
    second = subprocess_run(daemon)
    assert second.returncode != 0
    assert b"already listening" in second.stdout
    assert daemon.call("status")["dids"] == 0


def subprocess_run(d: Daemon) -> Any:
    import subprocess

    env = dict(d.env)
    env.pop("NOTIFY_SOCKET")
    return subprocess.run(d.args, env=env, cwd=d.home, capture_output=True, timeout=READY_TIMEOUT)


def test_watchdog_pings_when_systemd_asks(daemon_factory: Any) -> None:
    d: Daemon = daemon_factory(env={"WATCHDOG_USEC": "200000"})
    d.notify.messages.clear()
    d.notify.wait_for("WATCHDOG=1", timeout=5)
    d.notify.messages.clear()
    d.notify.wait_for("WATCHDOG=1", timeout=5)
    assert d.stop() == 0


def test_a_bad_config_exits_with_the_config_code(daemon_factory: Any) -> None:
    d: Daemon = daemon_factory(config="[control]\nmax_clients = 0\n", start=False)
    d.start(wait=False)
    assert d.wait() == 6
    assert "control.max_clients" in d.log_text()


# -- fuzzing the live daemon ------------------------------------------------------------------

fuzz_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
fuzz_input = st.one_of(
    st.binary(min_size=1, max_size=64),
    st.builds(lambda n, tail: struct.pack(">I", n) + tail, st.integers(0, 2**32 - 1), st.binary(max_size=16)),
    st.builds(frames.encode_frame, fuzz_values),
    st.builds(
        lambda i, m, p: frames.encode_frame({"id": i, "method": m, "params": p}),
        fuzz_values, st.sampled_from([m for m in METHODS if m != "shutdown"]), fuzz_values,
    ),
)


def _receive_all(sock: socket.socket) -> list[Any]:
    """Frames until the daemon closes or goes quiet; asserts they are well-formed replies."""
    decoder = frames.FrameDecoder(frames.ABSOLUTE_MAX_FRAME_BYTES)
    got = []
    sock.settimeout(5)
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        decoder.feed(chunk)
        while (frame := decoder.next_frame()) is not frames.NEED_DATA:
            got.append(frame)
    return got


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(chunks=st.lists(fuzz_input, min_size=1, max_size=3))
def test_fuzzed_frames_never_crash_the_daemon(shared_daemon: Daemon, chunks: list[bytes]) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(shared_daemon.socket))
        try:
            s.sendall(b"".join(chunks))
            # Half-close: the daemon answers what it can, then closes.
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        for frame in _receive_all(s):
            assert isinstance(frame, dict)
            assert ("result" in frame) != ("error" in frame) or "subscription" in frame
            if "error" in frame:
                assert set(frame["error"]) == {"code", "message", "data"}
    assert shared_daemon.proc is not None and shared_daemon.proc.poll() is None
    with shared_daemon.client() as c:
        assert "dids" in c.call("status")


def test_the_daemon_survives_the_fuzzing_and_logs_no_crash(shared_daemon: Daemon) -> None:
    assert shared_daemon.call("status")["control"]["clients"] == 1
    assert not [r for r in shared_daemon.log_records() if r.get("level") in ("error", "critical")]
    assert shared_daemon.stop() == 0

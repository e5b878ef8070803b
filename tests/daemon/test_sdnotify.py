"""sd_notify, the watchdog and socket activation, spoken directly (no libsystemd)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from daemon import sdnotify
from daemon.sdnotify import ActivationError, ListenFD, Notifier


def _receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_notifications_reach_a_path_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with _receiver(str(path)) as rx:
        n = Notifier.from_env({"NOTIFY_SOCKET": str(path)})
        assert n.enabled
        assert n.ready(status="serving")
        assert rx.recv(4096) == b"READY=1\nSTATUS=serving"
        n.stopping()
        assert rx.recv(4096) == b"STOPPING=1"
        n.watchdog()
        assert rx.recv(4096) == b"WATCHDOG=1"
        n.reloading()
        lines = rx.recv(4096).decode().split("\n")
        assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
        n.status("two\nlines")
        assert rx.recv(4096) == b"STATUS=two lines"
        n.close()


def test_abstract_namespace_socket() -> None:
    name = f"didcommd-test-{os.getpid()}"
    with _receiver(b"\0" + name.encode()) as rx:
        Notifier(f"@{name}").ready()
        assert rx.recv(4096) == b"READY=1"


def test_without_notify_socket_everything_is_a_no_op() -> None:
    n = Notifier.from_env({})
    assert not n.enabled
    assert not n.ready()
    assert not Notifier("vsock:2:1234").enabled


def test_a_dead_notify_socket_does_not_raise(tmp_path: Path) -> None:
    assert not Notifier(str(tmp_path / "nobody-here")).ready()


def test_assignments_must_be_single_lines() -> None:
    with pytest.raises(ValueError):
        Notifier("/nonexistent").notify("READY=1\nX=2")


def test_watchdog_interval_is_half_of_watchdog_usec_and_only_for_us() -> None:
    pid = os.getpid()
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 2.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(pid)}) == 2.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "0"}) is None


async def test_watchdog_pings_at_its_interval(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    path = tmp_path / "notify"
    with _receiver(str(path)) as rx:
        rx.setblocking(False)
        async with trio.open_nursery() as nursery:
            await nursery.start(sdnotify.watchdog_serve, Notifier(str(path)), 1.0)
            await trio.sleep(3.5)
            nursery.cancel_scope.cancel()
        pings = []
        while True:
            try:
                pings.append(rx.recv(64))
            except BlockingIOError:
                break
        assert pings == [b"WATCHDOG=1"] * 4  # at 0, 1, 2 and 3 seconds


def test_listen_fds_follows_the_protocol() -> None:
    pid = os.getpid()
    env = {"LISTEN_PID": str(pid), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "control:other"}
    assert sdnotify.listen_fds(env) == [ListenFD(3, "control"), ListenFD(4, "other")]
    assert sdnotify.listen_fds({"LISTEN_PID": str(pid), "LISTEN_FDS": "1"}) == [ListenFD(3, "unknown")]
    # Meant for another process (e.g. our parent): not ours to take.
    assert sdnotify.listen_fds({"LISTEN_PID": "1", "LISTEN_FDS": "1"}) == []
    assert sdnotify.listen_fds({"LISTEN_PID": str(pid), "LISTEN_FDS": "x"}) == []
    assert sdnotify.listen_fds({}) == []


@given(st.dictionaries(st.sampled_from(["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]), st.text(max_size=12)))
def test_listen_fds_never_raises(env: dict[str, str]) -> None:
    for fd in sdnotify.listen_fds(env):
        assert fd.fd >= sdnotify.LISTEN_FDS_START


def test_unset_activation_env() -> None:
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "control", "OTHER": "x"}
    sdnotify.unset_activation_env(env)
    assert env == {"OTHER": "x"}


def test_activated_socket_takes_a_listening_unix_stream_socket(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "s"))
    listener.listen()
    fd = listener.detach()
    sock = sdnotify.activated_socket([ListenFD(fd, "control")])
    assert sock is not None
    with sock:
        assert sock.fileno() == fd
        assert not sock.get_inheritable()


def test_activated_socket_picks_by_name(tmp_path: Path) -> None:
    socks = []
    for name in ("a", "b"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(tmp_path / name))
        s.listen()
        socks.append(s)
    try:
        fds = [ListenFD(socks[0].fileno(), "other"), ListenFD(socks[1].fileno(), "control")]
        chosen = sdnotify.activated_socket(fds)
        assert chosen is not None and chosen.getsockname() == str(tmp_path / "b")
        chosen.detach()
        with pytest.raises(ActivationError, match="none is named"):
            sdnotify.activated_socket([ListenFD(socks[0].fileno(), "x"), ListenFD(socks[1].fileno(), "y")])
    finally:
        for s in socks:
            s.close()


def test_activated_socket_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    assert sdnotify.activated_socket([]) is None
    r, w = os.pipe()
    try:
        with pytest.raises(ActivationError, match="not a socket"):
            sdnotify.activated_socket([ListenFD(r, "control")])
    finally:
        os.close(r)
        os.close(w)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        with pytest.raises(ActivationError, match="not a Unix stream socket"):
            sdnotify.activated_socket([ListenFD(tcp.fileno(), "control")])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
        idle.bind(str(tmp_path / "idle"))
        with pytest.raises(ActivationError, match="not listening"):
            sdnotify.activated_socket([ListenFD(idle.fileno(), "control")])

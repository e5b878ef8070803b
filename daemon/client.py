"""Clients of the control socket: an async one (trio) and a blocking one.

Theory of operation
-------------------
Both speak :mod:`daemon.frames` to :mod:`daemon.control`: they send
``{id, method, params}`` and match replies to requests by ``id``; event frames
(``{event, subscription}``) go to the subscription they belong to.

:class:`Client` (trio) runs one reader task per connection, so many calls and
event streams can share a connection concurrently::

    async with await Client.connect(path) as c:
        status = await c.call("status")
        async for event in c.subscribe(kinds=["message.received"]):
            ...

:class:`SyncClient` is a plain blocking socket with no threads: a call writes
its request and reads frames until its reply comes back, keeping any event
frames it meets for :meth:`SyncClient.events`.  ``didcommctl`` and the tests
use it.

A refused connection (wrong uid, too many clients) is answered by the daemon
with one error frame and closed; both clients raise it as a
:class:`ControlError` with the daemon's code (``permission_denied``,
``busy``).  A daemon that is not there raises :class:`DaemonUnavailableError`.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import trio

from . import frames

#: Largest reply frame a client accepts (the daemon's reply limit).
MAX_REPLY_BYTES = 16 * 1024 * 1024
#: Events buffered per subscription before the client drops the subscription.
EVENT_BUFFER = 1024
#: Default seconds a blocking call waits for its reply (None: forever).
DEFAULT_TIMEOUT: float | None = 60.0
#: Bytes asked of the socket per read.
RECV_CHUNK_BYTES = 64 * 1024
#: Where a system service's socket is (``didcommd.socket``), tried when the
#: user's default does not exist.
SYSTEM_SOCKET = Path("/run/didcommd/control.sock")

UNAVAILABLE_HINT = "is didcommd running? start it with 'make run' or 'systemctl --user start didcommd'"


class ControlError(Exception):
    """An error reply from the daemon: ``code``, ``message``, ``data``."""

    def __init__(self, code: str, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"

    @classmethod
    def from_reply(cls, error: Any) -> ControlError:
        """Build from a reply's ``error`` map, tolerating a malformed one."""
        if not isinstance(error, dict):
            return cls("protocol", f"malformed error reply: {error!r:.100}")
        return cls(str(error.get("code", "unknown")), str(error.get("message", "")), error.get("data"))


class ConnectionClosedError(ControlError):
    """The daemon closed the connection before replying."""

    def __init__(self, message: str = "the daemon closed the connection") -> None:
        super().__init__("connection_closed", message)


class DaemonUnavailableError(ConnectionClosedError):
    """The control socket cannot be reached (no daemon, wrong path, no access)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"cannot connect to {path}: {reason}; {UNAVAILABLE_HINT}")
        self.code = "unavailable"
        self.path = Path(path)
        self.reason = reason


def default_socket_path(env: Mapping[str, str] = os.environ) -> Path:
    """The socket a client talks to when not told: the daemon's own default.

    ``$DIDCOMMD_CONTROL_SOCKET`` first (also the daemon's override of
    ``control.socket``), then the daemon's configuration as it would load it,
    then the system service's socket if the user's does not exist.
    """
    from .config import ConfigError, default_socket, default_state_dir, load_config

    if env.get("DIDCOMMD_CONTROL_SOCKET"):
        return Path(env["DIDCOMMD_CONTROL_SOCKET"])
    try:
        path = load_config(env=env).control.socket
    except ConfigError:
        path = default_socket(env, default_state_dir(env))
    if not path.exists() and SYSTEM_SOCKET.exists():
        return SYSTEM_SOCKET
    return path


def _request(req_id: int, method: str, params: Mapping[str, Any] | None) -> bytes:
    return frames.encode_frame({"id": req_id, "method": method, "params": dict(params or {})})


def _connect_error(path: Path | str, exc: OSError) -> DaemonUnavailableError:
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        reason = "no such socket"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "nobody is listening (a stale socket file?)"
    elif isinstance(exc, PermissionError):
        reason = "permission denied (run as the daemon's user or a member of its allowed group)"
    return DaemonUnavailableError(path, reason)


# -- async (trio) ------------------------------------------------------------------------


class Client:
    """An async control client; use ``async with await Client.connect(path) as c``."""

    def __init__(self, stream: trio.SocketStream, path: Path) -> None:
        self.path = path
        self._stream = stream
        self._ids = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel[dict[str, Any]]] = {}
        self._events: dict[int, tuple[trio.MemorySendChannel[Any], trio.MemoryReceiveChannel[Any]]] = {}
        self._send_lock = trio.Lock()
        self._failure: ControlError | None = None
        self._nursery_cm: Any = None

    @classmethod
    async def connect(cls, path: Path | str | None = None) -> Client:
        """Connect to the daemon's control socket (default: :func:`default_socket_path`)."""
        target = Path(path) if path is not None else default_socket_path()
        try:
            stream = await trio.open_unix_socket(str(target))
        except OSError as exc:
            raise _connect_error(target, exc) from None
        return cls(stream, target)

    async def __aenter__(self) -> Client:
        self._nursery_cm = trio.open_nursery()
        nursery = await self._nursery_cm.__aenter__()
        nursery.start_soon(self._reader)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        # Shielded: if this close were cancelled, the reader's nursery would never be exited.
        with trio.CancelScope(shield=True):
            await self._stream.aclose()
        result: bool | None = await self._nursery_cm.__aexit__(et, ev, tb)
        return result

    async def aclose(self) -> None:
        """Close the connection (the reader task then ends)."""
        await self._stream.aclose()

    def _fail(self, error: ControlError) -> None:
        if self._failure is None:
            self._failure = error
        for channel in self._waiting.values():
            channel.close()
        self._waiting.clear()
        for send, _ in self._events.values():
            send.close()

    async def _reader(self) -> None:
        decoder = frames.FrameDecoder(MAX_REPLY_BYTES)
        try:
            while True:
                try:
                    frame = decoder.next_frame()
                except frames.FrameError as exc:
                    self._fail(ControlError("protocol", f"bad frame from the daemon: {exc}"))
                    return
                if frame is frames.NEED_DATA:
                    data = await self._stream.receive_some(RECV_CHUNK_BYTES)
                    if not data:
                        self._fail(ConnectionClosedError())
                        return
                    decoder.feed(data)
                    continue
                self._deliver(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._fail(ConnectionClosedError())

    def _deliver(self, frame: Any) -> None:
        if not isinstance(frame, dict):
            return
        if "subscription" in frame and "id" not in frame:
            send, _ = self._event_channel(frame["subscription"])
            if frame.get("closed"):
                send.close()
                return
            try:
                send.send_nowait(frame.get("event"))
            except trio.WouldBlock:
                # The consumer fell behind; like the daemon, drop it rather than block.
                send.close()
            except trio.ClosedResourceError:
                pass
            return
        req_id = frame.get("id")
        if req_id is None and "error" in frame:
            self._fail(ControlError.from_reply(frame["error"]))
            return
        channel = self._waiting.pop(req_id, None) if isinstance(req_id, int) else None
        if channel is not None:
            channel.send_nowait(frame)
            channel.close()

    def _event_channel(
        self, sid: Any
    ) -> tuple[trio.MemorySendChannel[Any], trio.MemoryReceiveChannel[Any]]:
        if sid not in self._events:
            self._events[sid] = trio.open_memory_channel[Any](EVENT_BUFFER)
        return self._events[sid]

    async def call(self, method: str, params: Mapping[str, Any] | None = None, /, **kw: Any) -> Any:
        """Call ``method`` and return its result; an error reply raises :class:`ControlError`."""
        if self._failure is not None:
            raise self._failure
        req_id = next(self._ids)
        send, receive = trio.open_memory_channel[dict[str, Any]](1)
        self._waiting[req_id] = send
        data = _request(req_id, method, {**(params or {}), **kw})
        try:
            async with self._send_lock:
                await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._waiting.pop(req_id, None)
            raise self._failure or ConnectionClosedError() from None
        try:
            reply = await receive.receive()
        except trio.EndOfChannel:
            raise self._failure or ConnectionClosedError() from None
        if "error" in reply:
            raise ControlError.from_reply(reply["error"])
        return reply.get("result")

    async def subscribe(
        self, kinds: list[str] | None = None, since: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Events as they happen; ends if the daemon ends the subscription."""
        params: dict[str, Any] = {}
        if kinds:
            params["kinds"] = list(kinds)
        if since is not None:
            params["since"] = since
        result = await self.call("events.subscribe", params)
        sid = result["subscription"]
        _, receive = self._event_channel(sid)
        try:
            async for event in receive:
                yield event
        finally:
            self._events.pop(sid, None)


# -- blocking ------------------------------------------------------------------------------


class SyncClient:
    """A blocking control client over a plain socket (no threads, no event loop)."""

    def __init__(self, sock: socket.socket, path: Path, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._sock = sock
        self._decoder = frames.FrameDecoder(MAX_REPLY_BYTES)
        self._ids = itertools.count(1)
        self._events: deque[dict[str, Any]] = deque()
        self._failure: ControlError | None = None

    @classmethod
    def connect(cls, path: Path | str | None = None, *, timeout: float | None = DEFAULT_TIMEOUT) -> SyncClient:
        """Connect to the daemon's control socket (default: :func:`default_socket_path`)."""
        target = Path(path) if path is not None else default_socket_path()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(timeout)
            sock.connect(str(target))
        except OSError as exc:
            sock.close()
            raise _connect_error(target, exc) from None
        return cls(sock, target, timeout)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._sock.close()

    def _read_frame(self, timeout: float | None) -> dict[str, Any]:
        """The next frame; raises on EOF, a refusal frame, or a timeout."""
        if self._failure is not None:
            raise self._failure
        self._sock.settimeout(timeout)
        while True:
            try:
                frame = self._decoder.next_frame()
            except frames.FrameError as exc:
                self._failure = ControlError("protocol", f"bad frame from the daemon: {exc}")
                raise self._failure from None
            if frame is not frames.NEED_DATA:
                if not isinstance(frame, dict):
                    continue
                if frame.get("id") is None and "error" in frame and "subscription" not in frame:
                    self._failure = ControlError.from_reply(frame["error"])
                    raise self._failure
                return frame
            try:
                data = self._sock.recv(RECV_CHUNK_BYTES)
            except TimeoutError:
                raise
            except OSError as exc:
                self._failure = ConnectionClosedError(f"connection lost: {exc.strerror or exc}")
                raise self._failure from None
            if not data:
                self._failure = ConnectionClosedError()
                raise self._failure
            self._decoder.feed(data)

    def call(self, method: str, params: Mapping[str, Any] | None = None, /, **kw: Any) -> Any:
        """Call ``method`` and return its result; an error reply raises :class:`ControlError`."""
        if self._failure is not None:
            raise self._failure
        req_id = next(self._ids)
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(_request(req_id, method, {**(params or {}), **kw}))
        except OSError:
            # The daemon may have refused us and closed; its error frame says why.
            self._read_frame(self.timeout)
            raise
        while True:
            frame = self._read_frame(self.timeout)
            if "subscription" in frame and "id" not in frame:
                self._events.append(frame)
                continue
            if frame.get("id") != req_id:
                continue
            if "error" in frame:
                raise ControlError.from_reply(frame["error"])
            return frame.get("result")

    def subscribe(self, kinds: list[str] | None = None, since: int | None = None) -> int:
        """Start an event stream; read it with :meth:`events`.  Returns its id."""
        params: dict[str, Any] = {}
        if kinds:
            params["kinds"] = list(kinds)
        if since is not None:
            params["since"] = since
        result = self.call("events.subscribe", params)
        sid: int = result["subscription"]
        return sid

    def events(self, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Events received so far, then new ones as they arrive.

        With a ``timeout``, stops after that many seconds without an event;
        without one, runs until the subscription or the connection ends.
        """
        while True:
            while self._events:
                frame = self._events.popleft()
                if frame.get("closed"):
                    return
                yield frame["event"]
            try:
                frame = self._read_frame(timeout)
            except TimeoutError:
                return
            if "subscription" in frame and "id" not in frame:
                self._events.append(frame)

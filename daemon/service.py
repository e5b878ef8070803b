"""``didcommd run``: the service - one trio nursery that owns every long-lived task.

Theory of operation
-------------------
Start-up, in order (each step can fail with a clear message and exit code):

1. read the configuration (``--config``, ``$DIDCOMMD_CONFIG``, defaults) and
   set up logging;
2. take the control socket: the one systemd passed (socket activation) or a
   new one (:func:`daemon.control.create_socket`, which also refuses to start
   a second daemon on a live socket);
3. open the agent: state directory, SQLite store, wallet;
4. in one nursery, start the control server, the agent's own tasks (if it has
   a ``serve``), the watchdog and the signal watcher, each with
   ``await nursery.start(...)`` so that "started" means "ready";
5. tell systemd ``READY=1``.

Then the service waits for a reason to stop: SIGTERM, SIGINT or the
``shutdown`` control method.  SIGHUP re-reads the configuration and applies
what can change without a restart (log level and format, control limits, the
agent's own settings); a bad file on reload is logged and the old
configuration stays.

Shutdown: ``STOPPING=1``; the control server stops accepting and reading, and
requests already running finish and reply - bounded by
``daemon.shutdown_timeout``, or cut short by a second signal; then the nursery
is cancelled, the store is closed (shielded from cancellation, so what was
committed stays committed) and the socket file we created is removed.  Exit
status 0.  Any task that crashes takes the whole service down with exit
status 1, and systemd restarts it: better than limping on.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from . import exitcodes, sdnotify
from .config import Config, ConfigError, load_config
from .control import (
    ControlServer,
    ControlSocketError,
    Limits,
    create_socket,
    listener_for,
    remove_socket_file,
    socket_file_id,
)
from .errors import DaemonError
from .logs import configure_logging, get_logger

log = get_logger("service")

#: Signals that stop the service (a second one cuts the graceful drain short).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: The signal that reloads the configuration.
RELOAD_SIGNAL = signal.SIGHUP
#: Most seconds to wait for the store to close after the drain.
CLOSE_TIMEOUT = 30.0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("didcommd")
    except PackageNotFoundError:
        return "unknown"


class Service:
    """The running daemon: configuration, agent, control server and their lifetimes."""

    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None = None,
        system: bool = False,
        env: Mapping[str, str] = os.environ,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.system = system
        self.env = env
        self.notifier = sdnotify.Notifier.from_env(env)
        self.agent: Any = None
        self.control: ControlServer | None = None
        self.stop_reason: str | None = None
        #: Where clients connect: the configured path, or the activated socket's.
        self.socket_path: Path = config.control.socket
        self._stop = trio.Event()
        self._drain_scope = trio.CancelScope()
        self.started_at = time.monotonic()

    # -- stopping and reloading --

    def request_stop(self, reason: str) -> None:
        """Begin a graceful shutdown; a second request ends the drain at once."""
        if self._stop.is_set():
            log.warning("service.stop_forced", reason=reason)
            self._drain_scope.cancel()
            return
        self.stop_reason = reason
        log.info("service.stopping", reason=reason)
        self._stop.set()

    def reload(self) -> bool:
        """Re-read the configuration and apply what can change while running."""
        self.notifier.reloading()
        try:
            new = load_config(self.config_path, self.env, system=self.system)
            configure_logging(new.daemon.log_level, new.daemon.log_format)
        except (ConfigError, ValueError) as exc:
            log.error("config.reload_failed", error=str(exc))
            self.notifier.ready(status=f"reload failed, old configuration kept: {exc}")
            return False
        if new.control.socket != self.config.control.socket:
            log.warning("config.restart_needed", key="control.socket", reason="the socket is bound at start")
        if self.agent is not None:
            self.agent.reload(new)
        if self.control is not None:
            self.control.reload(Limits.from_config(new.control), new.control.allowed_group)
        self.config = new
        log.info("config.reloaded", log_level=new.daemon.log_level, log_format=new.daemon.log_format)
        self.notifier.ready(status=self._status_line())
        return True

    async def _watch_signals(
        self,
        signals: Any,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        async for signum in signals:
            if signum == RELOAD_SIGNAL:
                self.reload()
            else:
                self.request_stop(signal.Signals(signum).name)

    def _status_line(self) -> str:
        return f"serving on {self.socket_path}"

    # -- the control socket --

    def _take_socket(self) -> tuple[socket.socket, tuple[int, int] | None]:
        """(listening socket, identity of the socket file if we created it)."""
        inherited = sdnotify.activated_socket(sdnotify.listen_fds(self.env))
        if inherited is not None:
            if self.env is os.environ:
                sdnotify.unset_activation_env()
            name = inherited.getsockname()
            if isinstance(name, str) and name:
                self.socket_path = Path(name)
            log.info("control.activated", fd=inherited.fileno(), socket=str(self.socket_path))
            return inherited, None
        section = self.config.control
        sock = create_socket(section.socket, mode=section.mode, allowed_group=section.allowed_group)
        return sock, socket_file_id(section.socket)

    # -- running --

    async def run(self) -> int:
        """Run until stopped; the process exit status."""
        # Install the handlers first: a SIGTERM during start-up is then queued
        # and honoured once we are up, instead of killing us half-initialised.
        with trio.open_signal_receiver(*STOP_SIGNALS, RELOAD_SIGNAL) as signals:
            self.notifier.status("starting")
            try:
                sock, file_id = self._take_socket()
            except (ControlSocketError, sdnotify.ActivationError, OSError) as exc:
                log.error("control.socket_failed", error=str(exc))
                return exitcodes.FAILURE
            socket_path = self.config.control.socket
            try:
                return await self._run_with_socket(sock, signals)
            finally:
                if file_id is not None:
                    # The socket path is fixed at start (a reload cannot move it).
                    remove_socket_file(socket_path, file_id)
                sock.close()
                self.notifier.close()

    async def _open_agent(self) -> Any:
        from .agent import Agent

        return await Agent.open(self.config, env=self.env)

    async def _run_with_socket(self, sock: socket.socket, signals: Any) -> int:
        try:
            self.agent = await self._open_agent()
        except ConfigError as exc:
            log.error("service.start_failed", error=str(exc))
            return exitcodes.CONFIG
        except DaemonError as exc:
            log.error("service.start_failed", code=exc.code, error=exc.message)
            return exitcodes.PERMISSION if exc.code == "wallet_locked" else exitcodes.FAILURE
        try:
            await self._serve(sock, signals)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await self.agent.aclose()
            log.info("service.stopped", reason=self.stop_reason)
        return exitcodes.OK

    async def _serve(self, sock: socket.socket, signals: Any) -> None:
        section = self.config.control
        self.control = ControlServer(
            self.agent,
            Limits.from_config(section),
            allowed_group=section.allowed_group,
            daemon_version=_version(),
            on_shutdown=lambda: self.request_stop("shutdown requested"),
            socket_path=self.socket_path,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(self.control.serve, listener_for(sock))
            serve = getattr(self.agent, "serve", None)
            if serve is not None:
                # The agent's own long-lived tasks (outbox, p2p) live in our nursery.
                await nursery.start(serve)
            interval = sdnotify.watchdog_interval(self.env)
            if interval is not None:
                await nursery.start(sdnotify.watchdog_serve, self.notifier, interval)
            await nursery.start(self._watch_signals, signals)
            # What start-up made (modules, libp2p, key material) lives as long as
            # the daemon: out of the collector's sight, a full collection scans
            # only what came after (it scanned ~10^5 objects each time, a pause
            # in the p99 of message delivery).
            gc.freeze()
            self.notifier.ready(status=self._status_line())
            log.info("service.ready", socket=str(self.socket_path), pid=os.getpid())

            await self._stop.wait()

            self.notifier.stopping(status=f"stopping ({self.stop_reason})")
            with self._drain_scope, trio.move_on_after(self.config.daemon.shutdown_timeout) as timer:
                await self.control.shutdown()
            if timer.cancelled_caught:
                log.warning("service.drain_timeout", seconds=self.config.daemon.shutdown_timeout)
            nursery.cancel_scope.cancel()


# -- the command line --------------------------------------------------------------------

_EPILOG = """examples:
  didcommd run                          embedded defaults (what 'make run' does)
  didcommd run --config ./didcommd.toml
  DIDCOMMD_DAEMON_LOG_LEVEL=debug didcommd run

signals:
  SIGTERM, SIGINT  stop cleanly: finish running requests, close the store, exit 0
                   (a second signal stops at once)
  SIGHUP           reload the configuration (log level, control limits)

Then drive it with 'didcommctl status' (see 'didcommctl --help').

""" + exitcodes.EPILOG


def add_parser(subparsers: Any) -> None:
    """Add ``didcommd run`` to the ``didcommd`` command line."""
    parser = subparsers.add_parser(
        "run",
        help="run the daemon in the foreground",
        description=(
            "Run didcommd in the foreground: the control socket, the store, the wallet.\n"
            "Under systemd it reports readiness (Type=notify), pings the watchdog and\n"
            "accepts a socket-activated control socket."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="configuration file (default: $DIDCOMMD_CONFIG, "
        "$XDG_CONFIG_HOME/didcommd/didcommd.toml, /etc/didcommd/didcommd.toml, else built-in defaults)",
    )
    parser.add_argument(
        "--system",
        action="store_true",
        help="use the system service's default paths (/var/lib/didcommd, /run/didcommd)",
    )
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Handler of ``didcommd run``."""
    try:
        config = load_config(args.config, system=args.system)
    except ConfigError as exc:
        print(f"didcommd: {exc}", file=sys.stderr)
        return exitcodes.CONFIG
    configure_logging(config.daemon.log_level, config.daemon.log_format)
    service = Service(config, config_path=args.config, system=args.system)
    try:
        return trio.run(service.run)
    except Exception as exc:
        log.critical("service.crashed", error_type=type(exc).__name__, exc_info=exc)
        return exitcodes.FAILURE

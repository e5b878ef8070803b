"""Housekeeping: the store drops what nobody needs any more, so it does not grow for ever.

Theory of operation
-------------------
An outbound message leaves the outbox's work once it is in a final state
(delivered, failed or expired).  Its packed bytes go at once when it is delivered
or expired (:data:`daemon.store.PACKED_NOT_KEPT`); its row stays listed in
``didcommctl outbox`` for ``[store] keep_sent`` seconds after its last change, and
then :func:`serve` deletes it.

Inbound messages are the owner's: by default the daemon never deletes them (only
``didcommctl message delete`` does).  An owner who wants a horizon sets ``[store]
keep_received``; :func:`prune_received` then erases every received message older
than that the way ``message delete`` does (a tombstone keeps it a duplicate should it
come again; its basic-message record goes with it; freed pages are zeroed and the WAL
emptied), and deletes the stored events older than that, since an event may carry a
message's text.  Protocol records, credentials and connections are never deleted
here.  Events are also capped by count and bytes in the store.

The task runs once at start and then every :data:`HOUSEKEEPING_EVERY_S`; each pass
handles :data:`~daemon.store.PRUNE_BATCH` rows per transaction, so the writer lock is
only ever held briefly, and commits relaxed (no fsync: a delete lost to a power cut
is simply done again).  ``[store] keep_sent`` and ``keep_received`` are read on every
pass, so a SIGHUP reload applies from the next one.

What peers send is kept, so peers could fill the disk.  :class:`SpaceGuard` refuses
inbound messages (:class:`StoreFullError`, before anything is committed) while the
store's file and WAL hold ``[store] max_bytes`` or more, or while the file system under
the state directory has less than ``[store] min_free_bytes`` free.  A refused message
is not acknowledged on its stream, so its sender keeps it and tries again later:
nothing is lost, and the owner's own work (sending, erasing) still has the room that
was kept free.  The guard looks again at most every :data:`SPACE_CHECK_S`.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import structlog
import trio

from .errors import UNAVAILABLE, DaemonError
from .events import iso_time
from .store import EVENTS_PRUNE_BATCH, PRUNE_BATCH

if TYPE_CHECKING:
    from collections.abc import Callable

    from .agent import Agent

_log = structlog.get_logger("didcommd.housekeeping")

#: Seconds between two housekeeping passes.
HOUSEKEEPING_EVERY_S = 3600.0
#: Seconds a space measurement is trusted (a flood of messages costs one stat a second).
SPACE_CHECK_S = 1.0
#: Least seconds between two ``store.full`` warnings in the log.
SPACE_WARN_EVERY_S = 60.0


class StoreFullError(DaemonError):
    """Inbound messages are refused for now: the store may not grow (``[store]``)."""

    code = UNAVAILABLE

    def __init__(self, message: str) -> None:
        super().__init__(None, message)


class SpaceGuard:
    """Whether the store may take another inbound message (see the module docstring)."""

    def __init__(self, agent: Agent, clock: Callable[[], float] = time.monotonic) -> None:
        self.agent = agent
        self.clock = clock
        self._checked = -SPACE_CHECK_S
        self._warned = -SPACE_WARN_EVERY_S
        #: Why messages are refused now, or None.
        self.refusal: str | None = None

    def check(self) -> None:
        """Raise :class:`StoreFullError` while the store may not grow."""
        now = self.clock()
        if now - self._checked >= SPACE_CHECK_S:
            self._checked = now
            self.refusal = self._measure()
            if self.refusal is not None and now - self._warned >= SPACE_WARN_EVERY_S:
                self._warned = now
                _log.warning("store.full", reason=self.refusal)
        if self.refusal is not None:
            raise StoreFullError(f"not taking messages now: {self.refusal}")

    def _measure(self) -> str | None:
        limits = self.agent.config.store
        if limits.max_bytes:
            stats = self.agent.store.stats()
            size = stats["db_bytes"] + stats["wal_bytes"]
            if size >= limits.max_bytes:
                return f"the store takes {size} bytes (store.max_bytes = {limits.max_bytes})"
        if limits.min_free_bytes:
            try:
                fs = os.statvfs(self.agent.config.daemon.state_dir)
            except OSError:
                return None  # cannot tell: the commit itself will say if the disk is full
            free = fs.f_bavail * fs.f_frsize
            if free < limits.min_free_bytes:
                return f"{free} bytes free on the store's file system (store.min_free_bytes = {limits.min_free_bytes})"
        return None


async def _in_batches(agent: Agent, prune: Callable[..., tuple[int, bool]], cut: object, limit: int) -> int:
    """Run a store prune (``prune(cut, limit=...)`` -> ``(how many, whether more)``) until
    it is done, each batch a relaxed commit of its own; how many in all."""
    total, more = 0, True
    while more:
        n, more = await agent.store.run_relaxed(prune, cut, limit=limit)
        total += n
        await trio.lowlevel.checkpoint()  # let every other store call in between batches
    return total


async def prune_sent(agent: Agent) -> int:
    """Delete the outbound messages older than ``[store] keep_sent``; how many."""
    keep = agent.config.store.keep_sent
    if keep == 0:
        return 0
    sync = agent.store.sync

    def outbox_prune(older_than: int, *, limit: int) -> tuple[int, bool]:
        n = sync.outbox_prune(older_than, limit=limit)
        return n, n == limit

    deleted = await _in_batches(agent, outbox_prune, agent.now() - keep, PRUNE_BATCH)
    if deleted:
        _log.info("store.pruned", outbox=deleted, keep_sent=keep)
    return deleted


async def prune_received(agent: Agent) -> dict[str, int]:
    """Erase the received messages and delete the events older than ``[store]
    keep_received``; how many of each."""
    keep = agent.config.store.keep_received
    if keep == 0:
        return {"inbox": 0, "events": 0}
    sync = agent.store.sync
    older_than = agent.now() - keep
    await agent.events.flush()  # events still queued are old enough to go too, maybe
    pruned = {
        "inbox": await _in_batches(agent, sync.inbox_prune, older_than, PRUNE_BATCH),
        "events": await _in_batches(agent, sync.events_prune_older, iso_time(older_than), EVENTS_PRUNE_BATCH),
    }
    if any(pruned.values()):
        # The erase zeroed the old contents in the pages it wrote; the WAL still has
        # those pages as they were until a TRUNCATE checkpoint.
        await agent.store.checkpoint_all()
        _log.info("store.pruned", **pruned, keep_received=keep)
    return pruned


async def serve(agent: Agent, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Prune at start, then every :data:`HOUSEKEEPING_EVERY_S`, until cancelled."""
    task_status.started()
    while True:
        try:
            await prune_sent(agent)
            await prune_received(agent)
        except DaemonError as exc:
            # A busy or failing store: the next pass tries again; the daemon goes on.
            _log.warning("store.prune_failed", reason=exc.message)
        await trio.sleep(HOUSEKEEPING_EVERY_S)

"""Housekeeping: the store drops what nobody needs any more, so it does not grow for ever.

Theory of operation
-------------------
An outbound message leaves the outbox's work once it is in a final state
(delivered, failed or expired).  Its packed bytes go at once when it is delivered
or expired (:data:`daemon.store.PACKED_NOT_KEPT`); its row stays listed in
``didcommctl outbox`` for ``[store] keep_sent`` seconds after its last change, and
then :func:`serve` deletes it.  That is the only thing deleted here: inbound
messages, protocol records, credentials and connections are the owner's, and the
daemon never deletes them by itself (events are capped by count in the store).

The task runs once at start and then every :data:`HOUSEKEEPING_EVERY_S`; each pass
deletes :data:`~daemon.store.PRUNE_BATCH` rows per transaction, so the writer lock is
only ever held briefly, and commits relaxed (no fsync: a delete lost to a power cut
is simply done again).  ``[store] keep_sent`` is read on every pass, so a SIGHUP
reload applies from the next one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
import trio

from .errors import DaemonError
from .store import PRUNE_BATCH

if TYPE_CHECKING:
    from .agent import Agent

_log = structlog.get_logger("didcommd.housekeeping")

#: Seconds between two housekeeping passes.
HOUSEKEEPING_EVERY_S = 3600.0


async def prune_sent(agent: Agent) -> int:
    """Delete the outbound messages older than ``[store] keep_sent``; how many."""
    keep = agent.config.store.keep_sent
    if keep == 0:
        return 0
    store = agent.store
    older_than = agent.now() - keep
    deleted = 0
    while True:
        n = await store.run_relaxed(store.sync.outbox_prune, older_than, limit=PRUNE_BATCH)
        deleted += n
        if n < PRUNE_BATCH:
            break
        await trio.lowlevel.checkpoint()  # let every other store call in between batches
    if deleted:
        _log.info("store.pruned", outbox=deleted, keep_sent=keep)
    return deleted


async def serve(agent: Agent, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Prune at start, then every :data:`HOUSEKEEPING_EVERY_S`, until cancelled."""
    task_status.started()
    while True:
        try:
            await prune_sent(agent)
        except DaemonError as exc:
            # A busy or failing store: the next pass tries again; the daemon goes on.
            _log.warning("store.prune_failed", reason=exc.message)
        await trio.sleep(HOUSEKEEPING_EVERY_S)

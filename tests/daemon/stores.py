"""Stores for tests that use the store without a daemon or a wallet: their records
sealed as the wallet would seal them (the store refuses personal records otherwise),
under one random key for the whole test run, so a test can close a store and open it again."""

from __future__ import annotations

from pathlib import Path

import nacl.utils

from daemon.sealing import KEY_BYTES, RecordSealer
from daemon.store import AsyncStore, Store

TEST_KEY = nacl.utils.random(KEY_BYTES)


def sealed(store: Store) -> Store:
    """``store``, sealing its records under :data:`TEST_KEY`."""
    store.use_sealer(RecordSealer(TEST_KEY))
    return store


def open_store(path: Path) -> Store:
    """:meth:`Store.open`, sealing under :data:`TEST_KEY`."""
    return sealed(Store.open(path))


async def open_async_store(path: Path) -> AsyncStore:
    """:meth:`AsyncStore.open`, sealing under :data:`TEST_KEY`."""
    store = await AsyncStore.open(path)
    sealed(store.sync)
    return store

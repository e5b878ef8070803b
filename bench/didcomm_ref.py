"""The reference side of the envelope benchmark: the ``didcomm`` PyPI package.

Theory of operation
-------------------
``bench/envelope.py`` compares our envelope with SICPA's ``didcomm`` 0.3.2,
which cannot share a virtualenv with libp2p; so this script runs under the
interop venv's interpreter (``$DIDCOMMD_INTEROP_PYTHON``) and imports nothing
of ours but :func:`tests.interop.didcomm_peer.to_didcomm_doc` (plain JSON to
that package's DID document model).  Everything it measures is that
package's own code, awaited in one asyncio event loop (its pack/unpack are
coroutines that never actually wait for anything).

Protocol, JSON lines on stdin and stdout:

1. The first line is the setup: ``{"parties": {did: {"document": {...},
   "secrets": [jwk...]}}, "ops": [op...], "pool": N}`` with ops as made by
   ``bench/_envelope_fixtures.make_ops``.  Each op is prepared (for an unpack,
   N distinct messages are packed with this package and one is checked to
   unpack to what was packed); the reply is ``{"ready": true, "errors":
   {op name: "<Type>: <text>"}}`` naming the ops this package cannot do.
2. Each later line ``{"op": name, "budget": seconds}`` runs one timing window
   and replies ``{"op": name, "ops_per_s": x}`` (or ``{"op": name, "error":
   ...}``).  ``bench/envelope.py`` sends these interleaved with its own
   windows, so both see the same machine noise; this process sleeps on stdin
   in between.
3. If the setup has ``"run_all": {"budget": s, "rounds": r}``, no further
   lines are read: every op is measured ``r`` times and one line
   ``{"results": {name: {"ops_per_s": median, "rounds": [...]}}}`` is printed
   (a stand-alone run).

A timing window repeats the operation until ``budget`` seconds of wall time
have passed, with the garbage collector paused (as ``timeit`` does, and as
``bench/envelope.py`` does for ours).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from didcomm import (  # noqa: E402
    DIDResolverInMemory,
    PackEncryptedConfig,
    ResolversConfig,
    SecretsResolverInMemory,
    pack_encrypted,
    pack_signed,
    unpack,
)
from didcomm.secrets.secrets_util import jwk_to_secret  # noqa: E402

from tests.interop.didcomm_peer import ENC_ALG_ANON, to_didcomm_doc  # noqa: E402

Call = Callable[[], Awaitable[Any]]


def with_serial(message: dict[str, Any], serial: int) -> dict[str, Any]:
    """Same as ``_envelope_fixtures.with_serial`` (that module needs our venv)."""
    return {**message, "id": f"bench-{serial:08d}"}


class RefOp:
    """One operation, bound to this package's resolvers, ready to time."""

    def __init__(self, op: dict[str, Any], docs: DIDResolverInMemory, parties: dict[str, Any]):
        self.op = op

        def config(did: str) -> ResolversConfig:
            secrets = [jwk_to_secret(jwk) for jwk in parties[did]["secrets"]]
            return ResolversConfig(
                secrets_resolver=SecretsResolverInMemory(secrets), did_resolver=docs
            )

        self.pack_config = config(op["packer"])
        self.unpack_config = config(op["unpacker"])
        self.call: Call | None = None

    async def pack(self, message: dict[str, Any]) -> str:
        """Pack ``message`` the way the op says."""
        op = self.op
        if op["mode"] == "sign":
            signed = await pack_signed(self.pack_config, message, op["sign_from"])
            return str(signed.packed_msg)
        encrypted = await pack_encrypted(
            self.pack_config,
            message,
            op["to"],
            frm=op["frm"],
            pack_config=PackEncryptedConfig(
                enc_alg_anon=ENC_ALG_ANON[op["enc"]], protect_sender_id=False, forward=False
            ),
        )
        return str(encrypted.packed_msg)

    async def prepare(self, pool_size: int) -> None:
        """Build :attr:`call`; for an unpack, pack and check its message pool first."""
        message = self.op["message"]
        if self.op["phase"] == "pack":
            self.call = lambda: self.pack(message)
            await self.call()
            return
        pool = [await self.pack(with_serial(message, i)) for i in range(pool_size)]
        result = await unpack(self.unpack_config, pool[0], deserializer=dict)
        if result.message != with_serial(message, 0):
            raise ValueError("didcomm unpacked something else than it packed")
        packed = itertools.cycle(pool)
        config = self.unpack_config
        self.call = lambda: unpack(config, next(packed), deserializer=dict)


async def rate(call: Call, budget: float) -> float:
    """Operations per second of ``call`` over ``budget`` seconds of wall time."""
    gc.collect()
    gc.disable()
    try:
        count = 0
        clock = time.perf_counter
        start = clock()
        deadline = start + budget
        while True:
            await call()
            count += 1
            now = clock()
            if now >= deadline:
                return count / (now - start)
    finally:
        gc.enable()


def reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main() -> int:
    setup = json.loads(sys.stdin.readline())
    parties = setup["parties"]
    docs = DIDResolverInMemory([to_didcomm_doc(p["document"]) for p in parties.values()])
    ops: dict[str, RefOp] = {}
    errors: dict[str, str] = {}
    for op in setup["ops"]:
        ref = RefOp(op, docs, parties)
        try:
            await ref.prepare(int(setup.get("pool", 8)))
        except Exception as exc:  # an op this package cannot do is a result, not a crash
            errors[op["name"]] = f"{type(exc).__name__}: {exc}"[:200]
            continue
        ops[op["name"]] = ref

    run_all = setup.get("run_all")
    if run_all is not None:
        results: dict[str, Any] = {name: {"error": err} for name, err in errors.items()}
        for name, ref in ops.items():
            assert ref.call is not None
            rounds = [await rate(ref.call, run_all["budget"]) for _ in range(run_all["rounds"])]
            results[name] = {"ops_per_s": statistics.median(rounds), "rounds": rounds}
        reply({"results": results})
        return 0

    reply({"ready": True, "errors": errors})
    for line in sys.stdin:
        request = json.loads(line)
        name = request["op"]
        ref_op = ops.get(name)
        if ref_op is None or ref_op.call is None:
            reply({"op": name, "error": errors.get(name, "unknown op")})
            continue
        reply({"op": name, "ops_per_s": await rate(ref_op.call, float(request["budget"]))})
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

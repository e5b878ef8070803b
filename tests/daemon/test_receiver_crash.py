"""``kill -9`` the receiver at random moments while the sender delivers 1,000 messages.

The promise under test (DESIGN.md, "nothing accepted is ever lost"): a message
A reports delivered was committed by B before B acknowledged it, so it
survives B's crash; a message A accepted but could not deliver stays in A's
outbox and goes out once B is back; B's inbox holds every message exactly once
although A sends some of them twice (those whose acknowledgement the crash
swallowed).

A background thread kills B with SIGKILL at a random moment, snapshots what A
reports delivered while B is dead, restarts B on the same address and checks
the snapshot against B's inbox; several times over, while the main thread is
still sending.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from .conftest import Daemon
from .test_offline_recipient import FAST_RETRY, inbox_ids, pin_address
from .test_two_daemons import BASIC, ctl_json, wait_until

MESSAGES = 1000
KILLS = 4
#: Seconds between B being up again and the next kill (random in this range).
KILL_AFTER = (0.3, 1.5)
#: Seconds for the whole backlog to drain after the last restart.
DRAIN_DEADLINE = 60.0


def outbox_states(d: Daemon) -> dict[str, str]:
    states: dict[str, str] = {}
    before = None
    while True:
        params: dict[str, Any] = {"box": "outbox", "limit": 500}
        if before is not None:
            params["before"] = before
        page = d.call("message.list", **params)["messages"]
        if not page:
            return states
        states.update({str(m["id"]): str(m["state"]) for m in page})
        before = page[-1]["seq"]


def test_kill_9_receiver_while_sending_1000(daemon_factory: Any) -> None:
    rng = random.Random()
    a: Daemon = daemon_factory(env=FAST_RETRY)
    b: Daemon = daemon_factory()
    ctl_json(a, "did", "create")
    did_b = ctl_json(b, "did", "create")["did"]
    pin_address(b)
    checked: list[int] = []
    errors: list[BaseException] = []
    sending_done = threading.Event()

    def killer() -> None:
        try:
            for _ in range(KILLS):
                time.sleep(rng.uniform(*KILL_AFTER))
                b.kill()  # SIGKILL, then reaped
                delivered = {i for i, s in outbox_states(a).items() if s == "delivered"}
                b.start()
                have = set(inbox_ids(b))
                missing = delivered - have
                assert not missing, f"{len(missing)} messages reported delivered are not in B's inbox"
                checked.append(len(delivered))
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    sent: list[str] = []
    with a.client() as c:
        for n in range(MESSAGES):
            sent.append(c.call("message.send", {"to": did_b, "type": BASIC, "body": {"n": n}})["id"])
    sending_done.set()
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert not errors, errors[0]
    assert len(checked) == KILLS

    def all_delivered() -> bool:
        states = outbox_states(a)
        return sum(1 for i in sent if states.get(i) == "delivered") == MESSAGES

    wait_until("every accepted message delivered", all_delivered, timeout=DRAIN_DEADLINE)
    ids = inbox_ids(b)
    assert sorted(ids) == sorted(sent), "B's inbox must hold every message exactly once"
    print(f"delivered at each kill: {checked}")
    # The kills really came mid-stream: some deliveries were done before the last one.
    assert checked[-1] > 0

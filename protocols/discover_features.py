"""Discover Features 2.0 (``feature_discovery.md``): what does the other agent support?

Theory of operation
-------------------
The *requester* sends ``queries`` (each ``{"feature-type", "match"}``, where
``match`` may use ``*`` as a wildcard for any run of characters); the
*responder* answers on the same thread with ``disclose`` listing the
matching features it chooses to reveal.  A responder may also disclose
without being asked; the receiver of such a proactive ``disclose`` records it
as a requester whose question was never sent.

What we disclose is a :class:`FeatureSet` the daemon builds once:

- ``protocol``: the PIURI and roles of every protocol the dispatcher runs;
- ``goal-code`` and ``header``: lists the daemon passes in;
- ``limit``: our own feature type (receivers MUST ignore types they do not
  know) with ``id`` ``max_receive_bytes`` and the number in ``value``, so a
  peer can avoid sending what our transport would refuse.

Unknown feature types in a query are ignored, as the spec requires.

    requester: start --send-queries--> awaiting-disclosure --disclose--> done
               start --disclose--> done            (proactive disclosure)
    responder: start --queries--> done             (replies with disclose)
               start --send-disclose--> done       (proactive disclosure)

Daemon API: :func:`start_query`, :func:`proactive_disclose`, and
:class:`DiscoverFeatures` (built by ``protocols.dispatch.standard_dispatcher``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .framework import (
    Event,
    Inbound,
    Protection,
    ProtocolMachine,
    ProtocolRecord,
    Table,
    Transition,
    new_message,
    start_record,
)
from .message import new_id
from .protocol_errors import InvalidBodyError

PIURI = "https://didcomm.org/discover-features/2.0"
QUERIES = PIURI + "/queries"
DISCLOSE = PIURI + "/disclose"

REQUESTER, RESPONDER = "requester", "responder"
AWAITING_DISCLOSURE, DONE = "awaiting-disclosure", "done"

FEATURE_TYPES = ("protocol", "goal-code", "header", "limit")
MAX_RECEIVE_BYTES_ID = "max_receive_bytes"

#: Most query objects read from one ``queries`` message.
MAX_QUERIES = 32
#: Longest ``match`` pattern (characters).
MAX_MATCH_CHARS = 256
#: Most disclosure objects kept from one ``disclose`` message.
MAX_DISCLOSURES = 256
#: Longest feature ``id`` or role name kept from a disclosure.
MAX_FEATURE_ID_CHARS = 512
#: Most roles kept per disclosed protocol.
MAX_ROLES = 16

TRANSITIONS: Table = {
    REQUESTER: {
        "start": {"send-queries": AWAITING_DISCLOSURE, "disclose": DONE},
        AWAITING_DISCLOSURE: {"disclose": DONE},
    },
    RESPONDER: {
        "start": {"queries": DONE, "send-disclose": DONE},
    },
}


def wildcard_matches(pattern: str, value: str) -> bool:
    """``*`` matches any run of characters; everything else is literal."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value, re.DOTALL) is not None


@dataclass(frozen=True)
class FeatureSet:
    """Everything we are willing to disclose."""

    protocols: tuple[tuple[str, tuple[str, ...]], ...]
    goal_codes: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    max_receive_bytes: int | None = None

    def disclosures(self) -> list[dict[str, Any]]:
        """Every feature as a disclosure object."""
        found: list[dict[str, Any]] = []
        for piuri, roles in self.protocols:
            entry: dict[str, Any] = {"feature-type": "protocol", "id": piuri}
            if roles:
                entry["roles"] = list(roles)
            found.append(entry)
        found += [{"feature-type": "goal-code", "id": code} for code in self.goal_codes]
        found += [{"feature-type": "header", "id": header} for header in self.headers]
        if self.max_receive_bytes is not None:
            found.append(
                {
                    "feature-type": "limit",
                    "id": MAX_RECEIVE_BYTES_ID,
                    "value": self.max_receive_bytes,
                }
            )
        return found

    def answer(self, queries: Iterable[dict[str, str]]) -> list[dict[str, Any]]:
        """The disclosures matching any of ``queries`` (each once, in our order)."""
        queries = list(queries)
        return [
            feature
            for feature in self.disclosures()
            if any(
                q["feature-type"] == feature["feature-type"]
                and wildcard_matches(q["match"], feature["id"])
                for q in queries
            )
        ]


def parse_queries(body: dict[str, Any]) -> list[dict[str, str]]:
    """The query objects of a ``queries`` body; unknown feature types dropped."""
    raw = body.get("queries")
    if not isinstance(raw, list) or not raw:
        raise InvalidBodyError("queries body needs a non-empty 'queries' array")
    if len(raw) > MAX_QUERIES:
        raise InvalidBodyError(f"more than {MAX_QUERIES} queries in one message")
    queries = []
    for query in raw:
        if not isinstance(query, dict):
            raise InvalidBodyError("each query must be an object")
        feature_type, match = query.get("feature-type"), query.get("match")
        if not isinstance(feature_type, str) or not isinstance(match, str):
            raise InvalidBodyError("a query needs string 'feature-type' and 'match'")
        if len(match) > MAX_MATCH_CHARS:
            raise InvalidBodyError(f"a query 'match' is over {MAX_MATCH_CHARS} characters")
        if feature_type in FEATURE_TYPES:
            queries.append({"feature-type": feature_type, "match": match})
    return queries


def parse_disclosures(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The disclosure objects of a ``disclose`` body, checked and bounded."""
    raw = body.get("disclosures")
    if not isinstance(raw, list):
        raise InvalidBodyError("disclose body needs a 'disclosures' array")
    if len(raw) > MAX_DISCLOSURES:
        raise InvalidBodyError(f"more than {MAX_DISCLOSURES} disclosures in one message")
    disclosures = []
    for item in raw:
        if not isinstance(item, dict):
            raise InvalidBodyError("each disclosure must be an object")
        feature_type, feature_id = item.get("feature-type"), item.get("id")
        if not isinstance(feature_type, str) or not isinstance(feature_id, str):
            raise InvalidBodyError("a disclosure needs string 'feature-type' and 'id'")
        if len(feature_id) > MAX_FEATURE_ID_CHARS or len(feature_type) > MAX_FEATURE_ID_CHARS:
            raise InvalidBodyError("a disclosure 'id' is too long")
        entry: dict[str, Any] = {"feature-type": feature_type, "id": feature_id}
        roles = item.get("roles")
        if roles is not None:
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise InvalidBodyError("disclosure 'roles' must be an array of strings")
            entry["roles"] = [r[:MAX_FEATURE_ID_CHARS] for r in roles[:MAX_ROLES]]
        value = item.get("value")
        if feature_type == "limit" and isinstance(value, int) and not isinstance(value, bool):
            entry["value"] = value
        disclosures.append(entry)
    return disclosures


def max_receive_bytes(disclosures: Sequence[dict[str, Any]]) -> int | None:
    """The peer's ``max_receive_bytes`` limit, if it disclosed one."""
    for item in disclosures:
        if item["feature-type"] == "limit" and item["id"] == MAX_RECEIVE_BYTES_ID:
            value = item.get("value")
            return value if isinstance(value, int) and value > 0 else None
    return None


class DiscoverFeatures(ProtocolMachine):
    """The discover-features machine; answers from a :class:`FeatureSet`."""

    PROTOCOL: ClassVar[str] = PIURI
    ROLES: ClassVar[tuple[str, ...]] = (REQUESTER, RESPONDER)
    MESSAGES: ClassVar[dict[str, Protection]] = {
        "queries": Protection.AUTHENTICATED,
        "disclose": Protection.AUTHENTICATED,
    }
    FIRST_MESSAGES: ClassVar[dict[str, str]] = {"queries": RESPONDER, "disclose": REQUESTER}
    TRANSITIONS: ClassVar[Table] = TRANSITIONS

    def __init__(self, features: FeatureSet) -> None:
        self.features = features

    def react(self, record: ProtocolRecord, inbound: Inbound) -> Transition:
        """Answer queries; record what a peer disclosed."""
        if inbound.name == "queries":
            queries = parse_queries(inbound.body)
            disclosures = self.features.answer(queries)
            record.data.update({"queries": queries, "disclosures": disclosures})
            reply = inbound.reply(DISCLOSE, {"disclosures": disclosures})
            event = Event(
                "discover-features.queried",
                record.thid,
                {"from": inbound.their_did, "queries": queries, "disclosed": len(disclosures)},
            )
            return Transition(record, [reply], [event])
        disclosures = parse_disclosures(inbound.body)
        limit = max_receive_bytes(disclosures)
        record.data.update({"disclosures": disclosures, "max_receive_bytes": limit})
        event = Event(
            "discover-features.disclosed",
            record.thid,
            {"from": inbound.their_did, "disclosures": disclosures, "max_receive_bytes": limit},
        )
        return Transition(record, [], [event])


def start_query(
    our_did: str,
    their_did: str,
    queries: Sequence[dict[str, str]],
    now: int,
    *,
    ids: Callable[[], str] = new_id,
) -> Transition:
    """Local command: ask a peer about its features."""
    checked = parse_queries({"queries": list(queries)})
    msg_id = ids()
    record = start_record(
        DiscoverFeatures,
        thid=msg_id,
        role=REQUESTER,
        command="send-queries",
        our_did=our_did,
        their_did=their_did,
        now=now,
        data={"queries": checked},
    )
    message = new_message(
        QUERIES, {"queries": checked}, msg_id=msg_id, frm=our_did, to=their_did, now=now
    )
    return Transition(record, [message], [Event("discover-features.sent", msg_id, {})])


def proactive_disclose(
    features: FeatureSet,
    our_did: str,
    their_did: str,
    now: int,
    *,
    match: Sequence[dict[str, str]] = ({"feature-type": "protocol", "match": "*"},),
    ids: Callable[[], str] = new_id,
) -> Transition:
    """Local command: disclose features without being asked."""
    disclosures = features.answer(match)
    msg_id = ids()
    record = start_record(
        DiscoverFeatures,
        thid=msg_id,
        role=RESPONDER,
        command="send-disclose",
        our_did=our_did,
        their_did=their_did,
        now=now,
        data={"disclosures": disclosures},
    )
    message = new_message(
        DISCLOSE, {"disclosures": disclosures}, msg_id=msg_id, frm=our_did, to=their_did, now=now
    )
    return Transition(record, [message], [])

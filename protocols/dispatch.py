"""The one place the core protocols are wired into a dispatcher.

``protocols.framework`` knows how to route; each protocol module knows its
own machine; this module knows which machines make up didcommd's core set
(trust-ping, discover-features, basic message, out-of-band; report-problem
and the empty message are built into the dispatcher) and what
discover-features should disclose about them.

Daemon API::

    dispatcher = standard_dispatcher(max_receive_bytes=MAX_FRAME_BYTES,
                                     goal_codes=(...), extra_machines=(...))
    outcome = dispatcher.dispatch(message, metadata, records, now)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .basic_message import BasicMessage
from .discover_features import PIURI as DISCOVER_FEATURES_PIURI
from .discover_features import DiscoverFeatures, FeatureSet
from .framework import Dispatcher, ProtocolMachine
from .message import new_id
from .out_of_band import OutOfBand
from .trust_ping import TrustPing

#: Headers we understand and may disclose.
DEFAULT_HEADERS = ("please_ack", "ack", "expires_time", "created_time", "pthid", "lang")


def core_machines() -> list[ProtocolMachine]:
    """The protocols every didcommd runs (discover-features aside)."""
    return [TrustPing(), BasicMessage(), OutOfBand()]


def standard_dispatcher(
    *,
    max_receive_bytes: int,
    goal_codes: Iterable[str] = (),
    headers: Iterable[str] = DEFAULT_HEADERS,
    extra_machines: Iterable[ProtocolMachine] = (),
    ids: Callable[[], str] = new_id,
) -> Dispatcher:
    """A dispatcher with the core machines, ``extra_machines``, and discover-features
    disclosing all of them (plus goal codes, headers and ``max_receive_bytes``)."""
    machines = [*core_machines(), *extra_machines]
    protocols = [(m.PROTOCOL, m.ROLES) for m in machines]
    protocols.append((DISCOVER_FEATURES_PIURI, DiscoverFeatures.ROLES))
    base = Dispatcher(machines)
    protocols += [row for row in base.supported() if row[0] not in dict(protocols)]
    features = FeatureSet(
        protocols=tuple(protocols),
        goal_codes=tuple(goal_codes),
        headers=tuple(headers),
        max_receive_bytes=max_receive_bytes,
    )
    return Dispatcher([*machines, DiscoverFeatures(features)], ids=ids)

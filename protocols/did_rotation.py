"""DID rotation with ``from_prior`` (DIDComm v2.1, "DID Rotation"): the pure rules.

Theory of operation
-------------------
A party that replaces its DID ``prior`` by ``new`` in a relationship keeps
talking as ``new`` and adds to its messages a ``from_prior`` header: a JWT
signed by an authentication key of ``prior`` with the claims
``{"sub": new, "iss": prior, "iat": <when>}``.  The envelope
(``protocols.envelope``) signs a claims dict on pack (given
``from_prior_issuer_kid``) and verifies the JWT on unpack, putting the claims
in ``Metadata.from_prior``; this module says what the claims are and what a
verified rotation means for a relationship.

A relationship, as the rotation sees it, is a :class:`Pairing`: our DID,
theirs, and the DIDs each side has given up.  Two moves, both pure:

- :func:`begin_rotation` (our side): a new DID is chosen; until the peer
  writes to it, every message we send carries :func:`rotation_claims`.
  Messages the peer still sends to the prior DID are accepted meanwhile.
- :func:`complete_our_rotation`: the peer wrote to ``new``: the prior DID
  is retired, and from then on a message to it is refused.
- :func:`accept_their_rotation` (their side): a message whose verified
  ``from_prior`` says ``iss`` -> ``sub``, where ``iss`` is the peer's DID in
  this pairing: the pairing now talks to ``sub``; ``iss`` is retired and a
  message from it is refused.

A ``from_prior`` whose ``iss`` is not the peer's current DID, or whose ``sub``
is not the sender, is refused with :class:`~protocols.errors.FromPriorError`
(``e.p.trust.crypto.from-prior``): a rotation only moves a relationship the
issuer is actually in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import FromPriorError

#: Retired DIDs remembered per side of a pairing (the oldest are forgotten).
MAX_RETIRED_DIDS = 32
#: A ``from_prior`` issued this many seconds in the future is refused (clock skew).
MAX_IAT_SKEW_SECONDS = 300


@dataclass(frozen=True)
class Pairing:
    """The DIDs of one relationship, as far as rotation is concerned."""

    my_did: str
    their_did: str
    #: A rotation of ours in progress: the DID we now send from.
    my_next_did: str | None = None
    my_retired: tuple[str, ...] = field(default_factory=tuple)
    their_retired: tuple[str, ...] = field(default_factory=tuple)

    @property
    def sending_did(self) -> str:
        """The DID our messages come from (the new one once a rotation has begun)."""
        return self.my_next_did or self.my_did

    def accepts_to(self, did: str) -> bool:
        """Whether a message addressed to our ``did`` belongs to this pairing."""
        return did in (self.my_did, self.my_next_did)

    def refuses(self, *, sender: str | None, recipient: str | None) -> str | None:
        """Why a message is refused after a rotation (None if it is not)."""
        if sender is not None and sender in self.their_retired:
            return f"{sender} was rotated away; the peer now uses {self.their_did}"
        if recipient is not None and recipient in self.my_retired:
            return f"{recipient} was rotated away and no longer receives messages"
        return None


def _retire(retired: tuple[str, ...], did: str) -> tuple[str, ...]:
    return (*[d for d in retired if d != did], did)[-MAX_RETIRED_DIDS:]


def rotation_claims(prior_did: str, new_did: str, now: int) -> dict[str, Any]:
    """The ``from_prior`` claims for a message from ``new_did`` replacing ``prior_did``."""
    if prior_did == new_did:
        raise FromPriorError("a rotation needs a new DID different from the prior one")
    return {"sub": new_did, "iss": prior_did, "iat": now}


def begin_rotation(pairing: Pairing, new_did: str) -> Pairing:
    """Our side starts sending from ``new_did`` (with ``from_prior``)."""
    if new_did in (pairing.my_did, *pairing.my_retired):
        raise FromPriorError("the new DID must not be one this relationship used before")
    return replace(pairing, my_next_did=new_did)


def outbound_claims(pairing: Pairing, now: int) -> dict[str, Any] | None:
    """The ``from_prior`` claims our next message carries, or None (no rotation pending)."""
    if pairing.my_next_did is None:
        return None
    return rotation_claims(pairing.my_did, pairing.my_next_did, now)


def complete_our_rotation(pairing: Pairing, recipient: str) -> Pairing:
    """The peer wrote to ``recipient``: if that is our new DID, the prior one is retired."""
    if pairing.my_next_did is None or recipient != pairing.my_next_did:
        return pairing
    return Pairing(
        my_did=pairing.my_next_did,
        their_did=pairing.their_did,
        my_next_did=None,
        my_retired=_retire(pairing.my_retired, pairing.my_did),
        their_retired=pairing.their_retired,
    )


@dataclass(frozen=True)
class Rotation:
    """A verified ``from_prior``: ``prior`` handed the relationship to ``new``."""

    prior: str
    new: str
    issued_at: int | None


def read_claims(claims: Mapping[str, Any], sender: str | None, now: int) -> Rotation:
    """Check verified ``from_prior`` claims against the message's sender."""
    iss, sub, iat = claims.get("iss"), claims.get("sub"), claims.get("iat")
    if not isinstance(iss, str) or not isinstance(sub, str):
        raise FromPriorError("from_prior needs 'iss' and 'sub' DIDs")
    if sender is None or sub != sender:
        raise FromPriorError("from_prior 'sub' is not the message's sender")
    if iss == sub:
        raise FromPriorError("from_prior 'sub' and 'iss' are the same DID")
    if iat is not None and (isinstance(iat, bool) or not isinstance(iat, int)):
        raise FromPriorError("from_prior 'iat' must be an integer time")
    if isinstance(iat, int) and iat > now + MAX_IAT_SKEW_SECONDS:
        raise FromPriorError("from_prior was issued in the future")
    return Rotation(prior=iss, new=sub, issued_at=iat)


def accept_their_rotation(pairing: Pairing, rotation: Rotation) -> Pairing:
    """The peer moved from ``rotation.prior`` to ``rotation.new`` (idempotent)."""
    if rotation.new == pairing.their_did and rotation.prior in pairing.their_retired:
        return pairing
    if rotation.prior != pairing.their_did:
        raise FromPriorError("from_prior 'iss' is not the DID this relationship talks to")
    if rotation.new in pairing.their_retired:
        raise FromPriorError("from_prior rotates to a DID that was already retired")
    return replace(
        pairing,
        their_did=rotation.new,
        their_retired=_retire(pairing.their_retired, rotation.prior),
    )

"""Where the envelope finds private keys: the secrets-resolver seam.

The daemon's wallet implements :class:`SecretsResolver` over its encrypted
store; :class:`InMemorySecrets` serves tests, the offline CLI and library users.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from .errors import InvalidKeyError
from .keys import PrivateKey


class SecretsResolver(Protocol):
    """Look up private keys by their DID URL (``kid``)."""

    def get_key(self, kid: str) -> PrivateKey | None:
        """The private key for ``kid``, or None if we do not hold it."""
        ...

    def find_keys(self, kids: Iterable[str]) -> list[str]:
        """The subset of ``kids`` we hold, in the given order."""
        ...


class InMemorySecrets:
    """A dict of private keys, built from private JWKs that carry a ``kid``."""

    def __init__(self, jwks: Iterable[dict[str, Any]] = ()) -> None:
        self._keys: dict[str, PrivateKey] = {}
        for jwk in jwks:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                raise InvalidKeyError("each secret must be a JWK object with a string 'kid'")
            self._keys[jwk["kid"]] = PrivateKey.from_jwk(jwk)

    def add(self, kid: str, key: PrivateKey) -> None:
        """Hold ``key`` under ``kid``."""
        self._keys[kid] = key

    def get_key(self, kid: str) -> PrivateKey | None:
        """The private key for ``kid``, or None."""
        return self._keys.get(kid)

    def find_keys(self, kids: Iterable[str]) -> list[str]:
        """The subset of ``kids`` we hold."""
        return [kid for kid in kids if kid in self._keys]

    def kids(self) -> list[str]:
        """Every kid held."""
        return list(self._keys)

"""The vault's contracts. Every implementation passes the shared conformance tests in tests/vault."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A fresh 256-bit key and the same key wrapped by a root key. The plaintext never gets printed."""

    plaintext: bytes = field(repr=False)
    wrapped: bytes = field(repr=False)
    root_key_id: str


@runtime_checkable
class KeyProvider(Protocol):
    """The root of the key hierarchy: wraps and unwraps tenant keys; its own key material never leaves it.

    ``context`` is bound to every wrapped key (AES-GCM AAD locally, the KMS encryption context on AWS):
    unwrapping with a different context fails. Failures:

    - :class:`~vault.errors.DecryptionError` when the wrapped key is corrupt, was wrapped under another
      context, or its root key no longer exists;
    - :class:`~vault.errors.KeyServiceUnavailable` when the key service can't be reached or refuses
      (network, throttling, access denied, disabled key). Callers fail closed and retry later.
    """

    #: Short backend name for status output: "local" or "aws-kms".
    name: str

    def current_key_id(self) -> str:
        """The id of the root key that new wraps use."""
        ...

    def generate_key(self, *, context: Mapping[str, str]) -> GeneratedKey:
        """Make a new random 256-bit key and wrap it under the current root key (one service call)."""
        ...

    def wrap(self, plaintext: bytes, *, context: Mapping[str, str]) -> tuple[bytes, str]:
        """Wrap ``plaintext`` under the current root key; returns ``(wrapped, root_key_id)``."""
        ...

    def unwrap(self, wrapped: bytes, *, root_key_id: str, context: Mapping[str, str]) -> bytes:
        """Unwrap a key wrapped by :meth:`wrap` or :meth:`generate_key` under ``root_key_id``."""
        ...

    def call_count(self) -> int:
        """How many calls this provider has made to its key service (for metrics and tests)."""
        ...

"""The vault's exceptions: one root, a small tree, no PII or key material in any message."""

from __future__ import annotations


class VaultError(Exception):
    """Root of every error the vault raises."""


class DecryptionError(VaultError):
    """A sealed value could not be opened.

    Deliberately opaque: a wrong key, a destroyed key version, a flipped bit, a ciphertext moved to
    another row and a truncated envelope all look the same, so the error tells an attacker nothing.
    """

    def __init__(self) -> None:
        super().__init__("sealed data could not be opened")


class KeyServiceUnavailable(VaultError):
    """The root key service (KMS or the keyring) is down or refused the request. Fail closed: retry later."""


class KeyringError(VaultError):
    """The local keyring file is missing, unreadable or unsafe (e.g. readable by other users)."""


class KeyVersionInUse(VaultError):
    """A key version can't be destroyed yet: live records (or a grace period) still need it."""


class NotFound(VaultError):
    """A tenant, account or order does not exist (or is not visible to the caller)."""


class NotEligible(VaultError):
    """An order exists but may not have a label issued now. ``reason`` is a short code, never PII.

    Reasons: ``status`` (shipped, pending, unfulfillable), ``cancelled``, ``erased``, ``retention-expired``,
    ``no-label-data`` (never synced), ``reissue-cap`` (see :class:`ReissueCapReached`).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"order not eligible for a label: {reason}")
        self.reason = reason


class ReissueCapReached(NotEligible):
    """The order has had as many labels issued as the reissue cap allows."""

    def __init__(self) -> None:
        super().__init__("reissue-cap")


class InvalidApiKey(VaultError):
    """An API key is malformed, unknown, wrong, revoked or expired. One error for all: it tells nothing."""

    def __init__(self) -> None:
        super().__init__("invalid API key")


class ClientSetupError(VaultError):
    """An API client's settings are invalid (name, scope, CIDR, profile, expiry); the message says which."""


class AccountSetupError(VaultError):
    """A marketplace account's settings are invalid (name, marketplaces, credentials, endpoints); the message
    says which, never a secret."""

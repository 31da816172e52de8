"""The vault's exceptions: one root, a small tree, no PII or key material in any message.

Errors that refuse a request (a label release, or any request at the label API's gates) are also
:class:`Refusal` errors: each carries its :class:`RefusalReason`, set where it is raised, which the audit
chain, the metrics and the alarms record as they are.
"""

from __future__ import annotations

from enum import StrEnum


class RefusalReason(StrEnum):
    """Why a request, or one order of a batch, was refused: the one list of codes (never PII).

    The audit chain records ``refused:<code>``, the metrics ``labelvault_labels_refused_total{reason}`` and
    the alarms count by it; a batch reports it per order.
    """

    # The gates in front of every path (app/allowlist.py, app/limits.py, app/bodies.py).
    MALFORMED_ADDRESS = "malformed-address"
    NOT_ALLOWLISTED = "not-allowlisted"
    RATE_LIMITED = "rate-limited"
    RATE_LIMIT_UNAVAILABLE = "rate-limit-unavailable"
    BODY_TOO_LARGE = "body-too-large"
    # The API client (app/api/auth.py).
    INVALID_API_KEY = "invalid-api-key"
    CLIENT_CIDR = "client-cidr"
    SCOPE = "scope"
    # The order (vault/release.py): missing, or not eligible for a label now.
    NOT_FOUND = "not-found"
    STATUS = "status"
    CANCELLED = "cancelled"
    ERASED = "erased"
    RETENTION_EXPIRED = "retention-expired"
    NO_LABEL_DATA = "no-label-data"
    REISSUE_CAP = "reissue-cap"
    # The service itself: the key service, a sealed record that won't open, a label that can't be rendered.
    KEY_SERVICE_UNAVAILABLE = "key-service-unavailable"
    UNREADABLE = "unreadable"
    RENDER_FAILED = "render-failed"
    # A carrier-label-only client asked for the address itself (vault/clients.py, LabelProfile.carrier_only).
    CARRIER_LABEL_ONLY = "carrier-label-only"


class Refusal(Exception):
    """An error that refuses a request; ``reason`` says why, in the words of :class:`RefusalReason`.

    Listed first among an error's bases, so that a handler of refusals is found before one of the
    error's other ancestors (e.g. :class:`VaultError`).
    """

    reason: RefusalReason


class VaultError(Exception):
    """Root of every error the vault raises."""


class DecryptionError(Refusal, VaultError):
    """A sealed value could not be opened.

    Deliberately opaque: a wrong key, a destroyed key version, a flipped bit, a ciphertext moved to
    another row and a truncated envelope all look the same, so the error tells an attacker nothing.
    """

    reason = RefusalReason.UNREADABLE

    def __init__(self) -> None:
        super().__init__("sealed data could not be opened")


class KeyServiceUnavailable(Refusal, VaultError):
    """The root key service (KMS or the keyring) is down or refused the request. Fail closed: retry later."""

    reason = RefusalReason.KEY_SERVICE_UNAVAILABLE


class LabelNotRendered(Refusal, VaultError):
    """The renderer failed for this label and format (its message, which may describe the label, is dropped).

    Raised by the HTTP side's render step (app/printing.py); :func:`vault.release.release_batch` takes it
    from its render callback as the sign to find the orders whose labels fail and refuse only those.
    """

    reason = RefusalReason.RENDER_FAILED


class KeyringError(VaultError):
    """The root key cannot be reached as configured: the local keyring file is missing, unreadable or unsafe
    (e.g. readable by other users), or an AWS KMS key has no region."""


class KeyVersionInUse(VaultError):
    """A key version can't be destroyed yet: live records (or a grace period) still need it."""


class NotFound(Refusal, VaultError):
    """A tenant, account or order does not exist (or is not visible to the caller)."""

    reason = RefusalReason.NOT_FOUND


class NotEligible(Refusal, VaultError):
    """An order exists but may not have a label issued now; ``reason`` says why.

    Reasons: ``status`` (shipped, pending, unfulfillable), ``cancelled``, ``erased``, ``retention-expired``,
    ``no-label-data`` (never synced), ``reissue-cap`` (see :class:`ReissueCapReached`).
    """

    def __init__(self, reason: RefusalReason) -> None:
        super().__init__(f"order not eligible for a label: {reason}")
        self.reason = reason


class ReissueCapReached(NotEligible):
    """The order has had as many labels issued as its cap allows: ``issued`` of ``cap`` (the reissue cap plus
    the reprints an owner granted), both told to the client, which issued them."""

    def __init__(self, *, issued: int, cap: int) -> None:
        super().__init__(RefusalReason.REISSUE_CAP)
        self.issued = issued
        self.cap = cap


class ReprintNotGranted(VaultError):
    """A reprint can't be granted as asked (no reason given); the message says why, never PII."""


class InvalidApiKey(Refusal, VaultError):
    """An API key is malformed, unknown, wrong, revoked or expired. One error for all: it tells nothing."""

    reason = RefusalReason.INVALID_API_KEY

    def __init__(self) -> None:
        super().__init__("invalid API key")


class ClientSetupError(VaultError):
    """An API client's settings are invalid (name, scope, CIDR, profile, expiry); the message says which."""


class AccountSetupError(VaultError):
    """A marketplace account's settings are invalid (name, marketplaces, credentials, endpoints); the message
    says which, never a secret."""


class TenantSetupError(VaultError):
    """A tenant's settings are invalid (its slug); the message says the rule."""


class CarrierSetupError(VaultError):
    """A carrier account's settings are invalid (name, credentials, ship-from address, endpoint); the message
    says which, never a secret."""


class CarrierLabelOnly(Refusal, VaultError):
    """The client may receive carrier labels only (its profile's ``carrier_only``): never the address, as JSON
    or as an address label."""

    reason = RefusalReason.CARRIER_LABEL_ONLY

    def __init__(self) -> None:
        super().__init__("this client receives carrier labels only, never the address")


class ShipmentError(VaultError):
    """A shipment request the vault can't carry out as asked; ``code`` names why (never PII)."""

    code = "shipment-error"
    status = 409


class ShipmentExists(ShipmentError):
    """The order has a live shipment already (bought or being bought): void it before buying another."""

    code = "shipment-exists"

    def __init__(self, shipment_id: int) -> None:
        super().__init__(f"the order has a live shipment already (shipment {shipment_id}); void it first")
        self.shipment_id = shipment_id


class IdempotencyKeyReused(ShipmentError):
    """The ``Idempotency-Key`` was used by this client for a different shipment request."""

    code = "idempotency-key-reused"
    status = 422

    def __init__(self) -> None:
        super().__init__("the Idempotency-Key was used for a different request")


class PurchaseInProgress(ShipmentError):
    """Another request with the same ``Idempotency-Key`` is buying this label right now."""

    code = "purchase-in-progress"

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is buying the label now; retry shortly")


class PurchaseUnsettled(ShipmentError):
    """The carrier's answer to the purchase was lost and its records don't show the label yet: the purchase is
    kept pending and a retry with the same ``Idempotency-Key`` settles it (never buying twice)."""

    code = "purchase-unsettled"
    status = 503

    def __init__(self, retry_after: int | None = None) -> None:
        #: Seconds until the carrier's settle delay has passed (the carrier may still be making the label),
        #: or None: a retry may settle it at once.
        self.retry_after = retry_after
        when = "" if retry_after is None else f" in {retry_after} s (the carrier may still be making the label)"
        super().__init__(
            f"the carrier's answer was lost; retry with the same Idempotency-Key{when} to settle the purchase"
        )


class ShipmentNotActive(ShipmentError):
    """The shipment is not bought (voided, or still pending), so it has no label to print or void."""

    code = "shipment-not-active"

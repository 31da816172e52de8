"""Sealing and opening label records: round trips and every way a ciphertext must refuse to open."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.buyers import sample_label
from tests.support.vault import make_account, make_orders, sample_facts
from vault import envelope
from vault.envelope import encode_context
from vault.errors import DecryptionError
from vault.keys import KeyManager
from vault.labels import shred_label, unseal_label
from vault.marketplace_accounts import seal_credentials, unseal_credentials
from vault.models import LabelRecordRow, MarketplaceAccount, Tenant
from vault.orders import store_order


def test_round_trip_keeps_every_field(session: Session, keys: KeyManager, account: MarketplaceAccount) -> None:
    for country in ("JP", "US"):
        label = sample_label(7, country)
        facts = sample_facts(7 if country == "JP" else 8)
        order = store_order(session, keys=keys, account=account, facts=facts, label=label).order
        assert unseal_label(session, keys=keys, order=order) == label


def test_store_is_idempotent_and_reseals_only_on_change(
    session: Session, keys: KeyManager, account: MarketplaceAccount
) -> None:
    first = store_order(session, keys=keys, account=account, facts=sample_facts(1), label=sample_label(1))
    envelope_before = first.order.label.envelope
    again = store_order(session, keys=keys, account=account, facts=sample_facts(1), label=sample_label(1))
    assert (first.outcome, again.outcome) == ("created", "unchanged")
    assert again.order.id == first.order.id and again.order.label.envelope == envelope_before
    changed = store_order(session, keys=keys, account=account, facts=sample_facts(1), label=sample_label(2))
    assert changed.outcome == "updated" and changed.order.label.version == 2
    assert unseal_label(session, keys=keys, order=changed.order) == sample_label(2)


def test_nothing_in_the_row_is_plaintext(session: Session, keys: KeyManager, account: MarketplaceAccount) -> None:
    (order,) = make_orders(session, keys, account, 1)
    blob = order.label.envelope
    for value in ("山田", "千代田区", "+81 3-1234"):
        assert value.encode() not in blob


def test_ciphertext_moved_to_another_order_fails(
    session: Session, keys: KeyManager, account: MarketplaceAccount
) -> None:
    a, b = make_orders(session, keys, account, 2)
    b.label.envelope = a.label.envelope
    session.flush()
    with pytest.raises(DecryptionError):
        unseal_label(session, keys=keys, order=b)


def test_ciphertext_moved_to_another_tenant_fails(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    from vault.tenants import create_tenant

    other = create_tenant(session, keys=keys, slug="other-seller-x", name="Other", actor="test")
    acc_a, acc_b = make_account(session, tenant, "a"), make_account(session, other, "b")
    (a,) = make_orders(session, keys, acc_a, 1)
    (b,) = make_orders(session, keys, acc_b, 1)
    b.label.envelope = a.label.envelope
    with pytest.raises(DecryptionError):
        unseal_label(session, keys=keys, order=b)


@pytest.mark.parametrize(
    "region",
    ["format", "key_version", "data_key_id", "wrap_nonce", "wrapped_key", "nonce", "ciphertext", "tag"],
)
def test_one_flipped_bit_anywhere_fails(
    session: Session, keys: KeyManager, account: MarketplaceAccount, region: str
) -> None:
    (order,) = make_orders(session, keys, account, 1)
    blob = bytearray(order.label.envelope)
    offsets = {
        "format": 0,
        "key_version": 4,
        "data_key_id": 5,
        "wrap_nonce": 21,
        "wrapped_key": 40,
        "nonce": 81,
        "ciphertext": envelope.HEADER_SIZE,
        "tag": len(blob) - 1,
    }
    for bit in (0, 7):
        tampered = bytearray(blob)
        tampered[offsets[region]] ^= 1 << bit
        order.label.envelope = bytes(tampered)
        with pytest.raises(DecryptionError):
            unseal_label(session, keys=keys, order=order)


@pytest.mark.parametrize(
    "position", range(7), ids=["purpose", "tenant", "account", "marketplace", "order_id", "schema", "record_version"]
)
def test_changed_aad_field_fails(
    session: Session, keys: KeyManager, account: MarketplaceAccount, position: int
) -> None:
    (order,) = make_orders(session, keys, account, 1)
    fields: list[str | int] = [
        "label",
        order.tenant_id,
        order.account_id,
        order.marketplace,
        order.external_order_id,
        1,
        1,
    ]
    assert keys.open(session, order.tenant_id, encode_context(*fields), order.label.envelope)  # the real context opens
    fields[position] = f"{fields[position]}x"
    with pytest.raises(DecryptionError):
        keys.open(session, order.tenant_id, encode_context(*fields), order.label.envelope)


def test_schema_and_record_version_are_bound(session: Session, keys: KeyManager, account: MarketplaceAccount) -> None:
    (order,) = make_orders(session, keys, account, 1)
    order.label.schema_version = 2
    with pytest.raises(DecryptionError):
        unseal_label(session, keys=keys, order=order)
    order.label.schema_version = 1
    order.label.version = 2
    with pytest.raises(DecryptionError):
        unseal_label(session, keys=keys, order=order)


def test_truncated_or_empty_envelope_fails_the_same_way(
    session: Session, keys: KeyManager, account: MarketplaceAccount
) -> None:
    (order,) = make_orders(session, keys, account, 1)
    for blob in (b"", b"\x01", order.label.envelope[:100], order.label.envelope[:-1]):
        order.label.envelope = blob
        with pytest.raises(DecryptionError) as info:
            unseal_label(session, keys=keys, order=order)
        assert str(info.value) == "sealed data could not be opened"


def test_wrong_keyring_fails(session: Session, account: MarketplaceAccount, keys: KeyManager, tmp_path) -> None:
    from vault.keyproviders import LocalKeyProvider

    (order,) = make_orders(session, keys, account, 1)
    stranger = KeyManager(LocalKeyProvider(tmp_path / "other" / "keyring.json"))
    with pytest.raises(DecryptionError):
        unseal_label(session, keys=stranger, order=order)


def test_shred_erases_the_record_and_keeps_the_stub(
    session: Session, keys: KeyManager, account: MarketplaceAccount
) -> None:
    (order,) = make_orders(session, keys, account, 1)
    assert shred_label(session, order=order) is True
    assert order.erased_at is not None and order.label is None
    assert session.scalar(select(LabelRecordRow).where(LabelRecordRow.order_id == order.id)) is None
    assert shred_label(session, order=order) is False  # idempotent
    # a later sync of the same order never brings the PII back
    store_order(session, keys=keys, account=account, facts=sample_facts(0), label=sample_label(0))
    assert order.label is None


def test_credentials_are_sealed_and_bound_to_their_account(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    a, b = make_account(session, tenant, "a"), make_account(session, tenant, "b")
    secrets = {"refresh_token": "Atzr|secret-refresh", "client_secret": "amzn1.oa2-cs.v1.secret"}
    seal_credentials(session, keys=keys, account=a, secrets=secrets)
    assert b"secret-refresh" not in (a.credentials_envelope or b"")
    assert unseal_credentials(session, keys=keys, account=a) == secrets
    b.credentials_envelope = a.credentials_envelope
    with pytest.raises(DecryptionError):
        unseal_credentials(session, keys=keys, account=b)


def test_label_record_repr_hides_pii() -> None:
    label = sample_label(3, "US")
    text = repr(label)
    assert "Jane" not in text and "Pike" not in text and "206-555" not in text
    assert "US" in text


def test_a_sellers_correction_survives_the_next_sync(
    session: Session, keys: KeyManager, account: MarketplaceAccount
) -> None:
    from vault.labels import CORRECTION, seal_label

    (order,) = make_orders(session, keys, account, 1)
    corrected = sample_label(99)
    seal_label(session, keys=keys, order=order, label=corrected, source=CORRECTION)
    # the marketplace still serves the old address: the sync must not put it back
    again = store_order(session, keys=keys, account=account, facts=sample_facts(0), label=sample_label(0))
    assert again.outcome == "unchanged"
    assert unseal_label(session, keys=keys, order=order) == corrected

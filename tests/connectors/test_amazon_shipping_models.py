"""Amazon's label-purchase models (Merchant Fulfillment v0, Shipping v2) load through the one SP-API model
loader, with their known defects handled there, and their sandbox examples check against their own schemas."""

from __future__ import annotations

import pytest

from connectors.fake_amazon import models
from connectors.fake_amazon.models import SHIPPING_APIS, all_examples, operations, operations_of, schema_errors


def test_both_documents_load_with_unique_operation_ids() -> None:
    mfn = {name for name, op in operations().items() if op.api == "mfn"}
    assert {"getEligibleShipmentServices", "createShipment", "getShipment", "cancelShipmentV0"} <= mfn
    v2 = {name for name, op in operations().items() if op.api == "shippingV2"}
    assert {"getRates", "purchaseShipment", "oneClickShipment", "getShipmentDocuments", "cancelShipment",
            "getTracking"} <= v2  # fmt: skip
    # the repeated operationId is kept apart, not lost
    assert {"linkCarrierAccount", "linkCarrierAccountPost"} <= v2
    assert operations()["linkCarrierAccountPost"].method == "POST"
    assert operations()["cancelShipmentV0"].path == "/mfn/v0/shipments/{shipmentId}"
    assert operations()["cancelShipment"].path == "/shipping/v2/shipments/{shipmentId}/cancel"
    assert set(operations_of(SHIPPING_APIS)) == mfn | v2


def test_a_repeated_operation_id_the_loader_misses_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_RENAMES", {})
    models.operations.cache_clear()
    try:
        with pytest.raises(ValueError, match="repeats"):
            models.operations()
    finally:
        monkeypatch.undo()
        models.operations.cache_clear()


def test_mfn_sandbox_cases_validate_but_the_two_known_bad_ones() -> None:
    cases = all_examples(frozenset({"mfn"}))
    assert len(cases) == 10
    bad = [c for c in cases if schema_errors(c.operation, c.status, c.response)]
    assert len(bad) == 2  # the README's two cases with "" in an enum field
    for case in bad:
        assert all(e.endswith("fails enum") for e in schema_errors(case.operation, case.status, case.response))


def test_shipping_v2_sandbox_cases_are_there_and_valid() -> None:
    cases = all_examples(frozenset({"shippingV2"}))
    assert cases
    assert all(operations()[c.operation].api == "shippingV2" for c in cases)
    assert not [c for c in cases if schema_errors(c.operation, c.status, c.response)]


def test_errors_never_quote_values() -> None:
    body = {"payload": {"Shipment": {"ShipToAddress": {"Name": "Ada Lovelace"}}}}
    errors = schema_errors("createShipment", 200, body)
    assert errors and not any("Ada" in e for e in errors)

"""Amazon's label-purchase models load, with their known defects handled in the loader, and the sandbox
examples (what the fake will replay) check against their own schemas."""

from __future__ import annotations

from connectors.fake_amazon_shipping import schema


def test_both_documents_load_with_unique_operation_ids() -> None:
    mfn = schema.operations(schema.MFN)
    assert {"getEligibleShipmentServices", "createShipment", "getShipment", "cancelShipment"} <= set(mfn)
    v2 = schema.operations(schema.SHIPPING)
    assert {"getRates", "purchaseShipment", "oneClickShipment", "getShipmentDocuments", "cancelShipment",
            "getTracking"} <= set(v2)  # fmt: skip
    # the repeated operationId is kept apart, not lost
    assert {"linkCarrierAccount", "linkCarrierAccount_post"} <= set(v2)


def test_mfn_sandbox_cases_validate_but_the_two_known_bad_ones() -> None:
    cases = schema.sandbox_cases(schema.MFN)
    assert len(cases) == 10
    bad = [c for c in cases if schema.response_errors(schema.MFN, c.operation_id, c.status, c.response)]
    assert len(bad) == 2  # the README's two cases with "" in an enum field
    for case in bad:
        errors = schema.response_errors(schema.MFN, case.operation_id, case.status, case.response)
        assert all(e.endswith("fails enum") for e in errors)


def test_shipping_v2_sandbox_cases_are_there() -> None:
    cases = schema.sandbox_cases(schema.SHIPPING)
    assert cases
    assert all(c.operation_id in schema.operations(schema.SHIPPING) for c in cases)


def test_errors_never_quote_values() -> None:
    body = {"payload": {"Shipment": {"ShipToAddress": {"Name": "Ada Lovelace"}}}}
    errors = schema.response_errors(schema.MFN, "createShipment", 200, body)
    assert errors and not any("Ada" in e for e in errors)

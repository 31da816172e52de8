"""An unknown API key id costs what a wrong secret does: it is checked against a dummy key of the same
construction (the timing itself is measured by ``python -m bench.keycheck``, not here)."""

from __future__ import annotations

import secrets
from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session

from vault import clients
from vault.errors import InvalidApiKey
from vault.models import Tenant


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    compared: list[tuple[str, str]] = []

    def compare_digest(a: str, b: str) -> bool:
        compared.append((a, b))
        return secrets.compare_digest(a, b)

    monkeypatch.setattr(clients, "hmac", SimpleNamespace(compare_digest=compare_digest))
    return compared


def test_an_unknown_key_id_is_verified_against_a_dummy_key_like_a_real_one(
    session: Session, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = clients.create_client(
        session, tenant=tenant, name="packing", scopes=["labels:issue"], cidrs=["192.0.2.0/24"], actor="t"
    )
    wrong = issued.key[:20] + secrets.token_urlsafe(32)
    unknown = f"lv_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
    compared = _recording(monkeypatch)
    for key in (wrong, unknown, "lv_not-a-key"):
        with pytest.raises(InvalidApiKey):
            clients.authenticate(session, key=key)
    assert [b for _, b in compared] == [clients.hash_key(k) for k in (wrong, unknown, "lv_not-a-key")]
    assert compared[0][0] == issued.client.key_hash
    dummy = compared[1][0]
    assert dummy == compared[2][0] == clients.hash_key(clients._DUMMY_KEY)
    assert clients._KEY.fullmatch(clients._DUMMY_KEY)
    assert clients.authenticate(session, key=issued.key).id == issued.client.id


def test_the_database_answers_an_unknown_key_id_with_a_row_as_it_does_a_known_one(
    session: Session, tenant: Tenant
) -> None:
    """The lookup yields exactly one row either way (all ``None`` for an unknown id), so the database, the
    driver and the row processing do the same work: with a plain ``WHERE key_id = ?`` an unknown id returned
    no row and cost a third less than a wrong secret (bench.keycheck ratio 0.68)."""
    issued = clients.create_client(
        session, tenant=tenant, name="packing", scopes=["labels:issue"], cidrs=["192.0.2.0/24"], actor="t"
    )
    session.flush()
    known = clients._CLIENT_BY_KEY_ID.rows(session, {"b_key_id": issued.client.key_id})
    unknown = clients._CLIENT_BY_KEY_ID.rows(session, {"b_key_id": secrets.token_hex(8)})
    assert len(known) == len(unknown) == 1
    assert known[0].id == issued.client.id and known[0].key_hash == issued.client.key_hash
    assert set(unknown[0]) == {None}

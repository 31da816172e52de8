"""Blind indexes: a person is found by their name, phone or postcode in any spelling, and nothing else is."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.people import NAMESAKE, person_world
from vault import blind_index, index_rotation
from vault.blind_index import PersonValues, find_label_records, normalise_name, normalise_phone, normalise_postcode
from vault.keys import KeyManager
from vault.labels import shred_label
from vault.models import BlindIndexEntry, IndexKey, Tenant, utcnow


def found(session: Session, keys: KeyManager, tenant: Tenant, **values: str) -> set[int]:
    return set(
        find_label_records(session, index_keys=keys.index_keys, tenant_id=tenant.id, person=PersonValues(**values))
    )


def test_normalisation_folds_width_case_spacing_and_phone_formats() -> None:
    assert normalise_name("Ｗａｎｇ\u3000ＸＩＡＯＭＩＮＧ") == normalise_name(" wang  xiaoming") == "wang xiaoming"
    assert normalise_name("王\u2f29明") == "王小明"  # a Kangxi radical is the same character after NFKC
    assert normalise_phone("138-0013-8000", "CN") == normalise_phone("(+86) 13800138000") == "+8613800138000"
    assert normalise_phone("+86 138 0013 8000", "JP") == "+8613800138000"  # a + number ignores the region
    assert normalise_phone("call me", "CN") is None and normalise_phone("12", None) is None
    assert normalise_postcode("１００-０００１") == normalise_postcode("1000001") == "1000001"
    assert normalise_postcode("sw1a 1aa") == normalise_postcode("SW1A1AA")


@given(st.text(min_size=1, max_size=40))
def test_normalising_a_name_twice_changes_nothing(name: str) -> None:
    once = normalise_name(name)
    assert once is None or normalise_name(once) == once


def test_a_person_on_three_marketplaces_and_two_accounts_is_found_by_phone_in_another_format(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    world = person_world(session, keys, tenant)
    wang = {o.id for o in world.wang}
    assert {o.marketplace for o in world.wang} == {"amazon", "shopify", "tiktok"}
    assert found(session, keys, tenant, phone="138 0013 8000", phone_region="CN") == wang
    assert found(session, keys, tenant, phone="+86-138-0013-8000") == wang


def test_the_person_is_found_by_name_in_another_case_or_width_and_the_namesake_too(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    world = person_world(session, keys, tenant)
    everyone_so_named = {o.id for o in world.wang} | {world.namesake.id}
    assert found(session, keys, tenant, name="ＷＡＮＧ ＸＩＡＯＭＩＮＧ") == everyone_so_named
    assert found(session, keys, tenant, name="wang xiaoming") == everyone_so_named


def test_postcode_plus_name_finds_the_person_and_not_the_namesake(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    world = person_world(session, keys, tenant)
    assert found(session, keys, tenant, name="Wang Xiaoming", postcode="２００１２０") == {o.id for o in world.wang}
    assert found(session, keys, tenant, name="Wang Xiaoming", postcode=NAMESAKE.postal_code or "") == {
        world.namesake.id
    }
    assert found(session, keys, tenant, name="Wang Xiaoming", postcode="999999") == set()


def test_a_lookup_opens_no_record(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    person_world(session, keys, tenant)
    before = keys.stats()
    found(session, keys, tenant, phone="+8613800138000")
    after = keys.stats()
    assert (after.hits, after.misses) == (before.hits, before.misses)  # no tenant key used: nothing opened


def test_another_tenant_finds_nothing_of_this_one(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    from vault.tenants import create_tenant

    person_world(session, keys, tenant)
    other = create_tenant(session, keys=keys, slug="index-other", name="Other", actor="test")
    assert found(session, keys, other, phone="+8613800138000") == set()


def test_an_empty_or_unreadable_value_is_a_clear_error(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    with pytest.raises(ValueError, match="at least one of"):
        found(session, keys, tenant)
    with pytest.raises(ValueError, match="phone given can't be read"):
        found(session, keys, tenant, phone="13800138000")  # no + and no country: which country's number?


def test_erasing_a_record_deletes_its_entries_and_a_reseal_replaces_them(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    world = person_world(session, keys, tenant)
    first = world.wang[0]
    record_id = first.label.id if first.label else 0
    shred_label(session, order=first, now=utcnow())
    count = select(func.count()).select_from(BlindIndexEntry).where(BlindIndexEntry.label_record_id == record_id)
    assert session.scalar(count) == 0
    assert found(session, keys, tenant, phone="+8613800138000") == {o.id for o in world.wang[1:]}


def test_reindex_after_rotation_finds_the_same_records_and_destroys_the_old_key_after_grace(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    world = person_world(session, keys, tenant)
    queries = [
        {"phone": "+8613800138000"},
        {"name": "wang xiaoming"},
        {"name": "WANG XIAOMING", "postcode": "200120"},
        {"name": "山田 太郎3"},
    ]
    before = [found(session, keys, tenant, **q) for q in queries]
    assert before[3] == {world.others[3].id}
    version = index_rotation.rotate_index_key(session, keys=keys, tenant_id=tenant.id, actor="test")
    assert version == 2
    # mid-rotation (no record re-indexed yet) lookups still find everyone by the old entries
    assert [found(session, keys, tenant, **q) for q in queries] == before
    result = index_rotation.reindex(session, keys=keys, tenant_id=tenant.id, actor="test", batch_size=4)
    assert result.reindexed == 15 and result.kept_versions == (1,)  # retired just now: cached elsewhere
    assert [found(session, keys, tenant, **q) for q in queries] == before
    later = utcnow() + timedelta(seconds=keys.index_keys.max_age + 1)
    result = index_rotation.reindex(session, keys=keys, tenant_id=tenant.id, actor="test", now=later)
    assert result.reindexed == 0 and result.destroyed_versions == (1,)
    versions = set(session.scalars(select(BlindIndexEntry.index_version).where(BlindIndexEntry.tenant_id == tenant.id)))
    assert versions == {2}
    old = session.scalar(select(IndexKey).where(IndexKey.tenant_id == tenant.id, IndexKey.version == 1))
    assert old is not None and old.wrapped_key is None and old.state == blind_index.DESTROYED
    keys.invalidate()
    assert [found(session, keys, tenant, **q) for q in queries] == before


def test_reindex_backfills_records_sealed_before_blind_indexes(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    from sqlalchemy import delete

    world = person_world(session, keys, tenant)
    session.execute(delete(BlindIndexEntry).where(BlindIndexEntry.tenant_id == tenant.id))
    assert found(session, keys, tenant, phone="+8613800138000") == set()
    assert index_rotation.unindexed_count(session, keys=keys, tenant_id=tenant.id) == 15
    index_rotation.reindex(session, keys=keys, tenant_id=tenant.id, actor="test")
    assert found(session, keys, tenant, phone="+8613800138000") == {o.id for o in world.wang}

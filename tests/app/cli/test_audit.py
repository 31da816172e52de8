"""``flask audit verify`` finds any edited, deleted or reordered event; ``flask audit export`` anchors heads in S3."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from tests.support.servers import Database, MotoS3
from tests.support.world import World, assert_no_pii, build_world
from vault.anchoring import heads_document
from vault.audit import append_event
from vault.keys import KeyManager
from vault.models import AuditEvent, AuditHead

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")


def released_world(make_app: Any, db: Database, keys: KeyManager) -> tuple[Any, World]:
    """A tenant chain of seven events: tenant.create, client.create, four releases, one refusal."""
    world = build_world(db, keys, n_orders=2)
    app = make_app(db.app_url)
    client = app.test_client()
    for i in (0, 1, 0, 1):
        assert client.get(world.url(i), headers=world.auth()).status_code == 200
    assert client.get("/v1/labels/amazon/missing", headers=world.auth()).status_code == 404
    return app, world


def verify(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["audit", "verify", *args])


def test_intact_chain_verifies(make_app: Any, shared_db: Database, keys: KeyManager) -> None:
    app, world = released_world(make_app, shared_db, keys)
    result = verify(app, "--tenant", world.tenant.slug)
    assert result.exit_code == 0, result.output
    assert f"tenant:{world.tenant.id}: ok, 7 events, head 7" in result.output


def _swap(s: Session, chain: str, a: int, b: int) -> None:
    for old, new in ((a, -1), (b, a), (-1, b)):
        s.execute(update(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq == old).values(seq=new))


TAMPERING = {
    "edit-outcome": (
        lambda s, c: s.execute(
            update(AuditEvent).where(AuditEvent.chain == c, AuditEvent.seq == 3).values(outcome="refused:status")
        ),
        3,
    ),
    "edit-ip": (
        lambda s, c: s.execute(
            update(AuditEvent).where(AuditEvent.chain == c, AuditEvent.seq == 4).values(ip="192.0.2.1")
        ),
        4,
    ),
    "edit-details": (
        lambda s, c: s.execute(
            update(AuditEvent).where(AuditEvent.chain == c, AuditEvent.seq == 2).values(details={"fields": []})
        ),
        2,
    ),
    "delete-middle": (lambda s, c: s.execute(delete(AuditEvent).where(AuditEvent.chain == c, AuditEvent.seq == 3)), 3),
    "delete-first": (lambda s, c: s.execute(delete(AuditEvent).where(AuditEvent.chain == c, AuditEvent.seq == 1)), 1),
    "delete-newest": (lambda s, c: s.execute(delete(AuditEvent).where(AuditEvent.chain == c, AuditEvent.seq == 7)), 7),
    "reorder": (lambda s, c: _swap(s, c, 2, 3), 2),
}


@pytest.mark.parametrize("tamper", list(TAMPERING))
def test_verify_finds_the_first_broken_link(make_app: Any, fresh_db: Database, keys: KeyManager, tamper: str) -> None:
    bystander = build_world(fresh_db, keys, n_orders=1)
    app, world = released_world(make_app, fresh_db, keys)
    change, first_bad = TAMPERING[tamper]
    chain = f"tenant:{world.tenant.id}"
    with Session(fresh_db.engine) as s:
        change(s, chain)
        s.commit()
    result = verify(app)
    assert result.exit_code == 1
    assert f"{chain}: BROKEN at event {first_bad}:" in result.output
    assert f"tenant:{bystander.tenant.id}: ok, 2 events" in result.output  # other chains still verify


def _truncate_and_fix_head(s: Session, chain: str) -> None:
    s.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq > 4))
    fourth = s.scalars(select(AuditEvent.hash).where(AuditEvent.chain == chain, AuditEvent.seq == 4)).one()
    s.execute(update(AuditHead).where(AuditHead.chain == chain).values(seq=4, hash=fourth))


def _delete_chain_and_head(s: Session, chain: str) -> None:
    s.execute(delete(AuditEvent).where(AuditEvent.chain == chain))
    s.execute(delete(AuditHead).where(AuditHead.chain == chain))


def _rewrite_whole(s: Session, chain: str) -> None:
    """A consistent chain of as many events, every hash recomputed: only the exported head can tell."""
    _delete_chain_and_head(s, chain)
    tenant_id = int(chain.split(":")[1])
    for _ in range(7):
        append_event(s, tenant_id=tenant_id, actor="insider", action="client.create")


HIDING = {
    "truncate-and-fix-head": (_truncate_and_fix_head, "BROKEN at event 5: the chain shrank to 4 events"),
    "delete-chain-and-head": (_delete_chain_and_head, "BROKEN at event 1: the chain is gone"),
    "rewrite-whole": (_rewrite_whole, "BROKEN at event 7: the chain no longer passes through an exported head"),
}


@pytest.mark.parametrize("hiding", list(HIDING))
def test_verify_against_exported_heads_finds_what_the_database_alone_hides(
    make_app: Any, fresh_db: Database, keys: KeyManager, tmp_path: Any, hiding: str
) -> None:
    bystander = build_world(fresh_db, keys, n_orders=1)
    app, world = released_world(make_app, fresh_db, keys)
    heads = tmp_path / "heads.json"
    assert app.test_cli_runner().invoke(args=["audit", "export", "--file", str(heads)]).exit_code == 0
    change, found = HIDING[hiding]
    chain = f"tenant:{world.tenant.id}"
    with Session(fresh_db.engine) as s:
        change(s, chain)
        s.commit()
    alone = verify(app)
    assert alone.exit_code == 0 and "no exported heads to check against" in alone.output  # what it can't see
    result = verify(app, "--heads", str(heads))
    assert result.exit_code == 1, result.output
    assert f"{chain}: {found}" in result.output
    assert f"tenant:{bystander.tenant.id}: ok, 2 events, head 2, passes through its exported heads (up to 2)" in (
        result.output
    )
    assert verify(app, "--tenant", world.tenant.slug, "--heads", str(heads)).exit_code == 1


def test_verify_checks_every_export_in_the_bucket_not_only_the_newest(
    make_app: Any, fresh_db: Database, keys: KeyManager, moto_s3: MotoS3
) -> None:
    s3 = moto_s3.client()
    bucket = f"audit-{os.urandom(4).hex()}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": moto_s3.region})
    _, world = released_world(make_app, fresh_db, keys)
    s3_settings = {"s3_endpoint_url": moto_s3.endpoint, "s3_region": moto_s3.region}
    app = make_app(fresh_db.app_url, audit_export_bucket=bucket, **s3_settings)
    chain = f"tenant:{world.tenant.id}"
    assert app.test_cli_runner().invoke(args=["audit", "export"]).exit_code == 0  # the genuine export
    with Session(fresh_db.engine) as s:
        _truncate_and_fix_head(s, chain)
        s.commit()
        forged = heads_document(s)  # an insider with the app's S3 rights adds a newer export of the cut chain
    s3.put_object(Bucket=bucket, Key="audit-heads/29991231T000000.000000Z.json", Body=forged)
    result = verify(app)
    assert result.exit_code == 1 and f"{chain}: BROKEN at event 5: the chain shrank to 4 events" in result.output
    assert "checked against 2 export(s) of the heads" in result.output
    empty = make_app(fresh_db.app_url, **s3_settings)
    s3.create_bucket(Bucket=f"{bucket}-empty", CreateBucketConfiguration={"LocationConstraint": moto_s3.region})
    missing = verify(empty, "--heads-bucket", f"{bucket}-empty")
    assert missing.exit_code == 1 and "no audit heads export under" in missing.output


def test_verify_refuses_a_file_that_is_not_an_export(make_app: Any, shared_db: Database, tmp_path: Any) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"format": "something-else", "heads": []}')
    result = verify(make_app(shared_db.app_url), "--heads", str(bogus))
    assert result.exit_code == 1 and "not an audit heads export" in result.output


def test_export_to_a_file_and_stdout(make_app: Any, shared_db: Database, keys: KeyManager, tmp_path: Any) -> None:
    app, world = released_world(make_app, shared_db, keys)
    runner = app.test_cli_runner()
    out = runner.invoke(args=["audit", "export", "--file", "-"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    heads = {h["chain"]: h for h in doc["heads"]}
    assert doc["format"] == "labelvault-audit-heads-v1"
    assert heads[f"tenant:{world.tenant.id}"]["seq"] == 7
    path = tmp_path / "heads.json"
    assert runner.invoke(args=["audit", "export", "--file", str(path)]).exit_code == 0
    assert json.loads(path.read_text())["heads"] == doc["heads"]
    assert_no_pii(out.output)


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoS3]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    s3 = MotoS3()
    yield s3
    s3.stop()


def test_export_to_s3_with_object_lock(make_app: Any, shared_db: Database, keys: KeyManager, moto_s3: MotoS3) -> None:
    s3 = moto_s3.client()
    bucket = f"audit-{os.urandom(4).hex()}"
    # botocore may retry a create that succeeded but answered late (a loaded machine): the bucket is ours.
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": moto_s3.region},
            ObjectLockEnabledForBucket=True,
        )
    _, world = released_world(make_app, shared_db, keys)
    app = make_app(
        shared_db.app_url,
        audit_export_bucket=bucket,
        s3_endpoint_url=moto_s3.endpoint,
        s3_region=moto_s3.region,
    )
    result = app.test_cli_runner().invoke(args=["audit", "export", "--retention-days", "30"])
    assert result.exit_code == 0, result.output
    assert f"s3://{bucket}/audit-heads/" in result.output and "locked until" in result.output
    (obj,) = s3.list_objects_v2(Bucket=bucket)["Contents"]
    body = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    assert {h["chain"]: h["seq"] for h in body["heads"]}[f"tenant:{world.tenant.id}"] == 7
    head = s3.head_object(Bucket=bucket, Key=obj["Key"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=29)
    # Compliance mode: the exported head can't be deleted before its date, by anyone.
    version = head["VersionId"]
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        s3.delete_object(Bucket=bucket, Key=obj["Key"], VersionId=version)


def test_export_failure_is_a_clear_error(make_app: Any, shared_db: Database, moto_s3: MotoS3) -> None:
    app = make_app(shared_db.app_url, s3_endpoint_url=moto_s3.endpoint, s3_region=moto_s3.region)
    result = app.test_cli_runner().invoke(args=["audit", "export", "--bucket", "no-such-bucket"])
    assert result.exit_code == 1 and "export to s3://no-such-bucket failed" in result.output
    no_target = app.test_cli_runner().invoke(args=["audit", "export"])
    assert no_target.exit_code == 2 and "--bucket" in no_target.output


def test_verify_of_an_unknown_tenant(make_app: Any, shared_db: Database) -> None:
    result = verify(make_app(shared_db.app_url), "--tenant", "nobody-here")
    assert result.exit_code == 1 and "no tenant with slug" in result.output


def test_chain_rows_are_never_pii(shared_db: Database) -> None:
    with Session(shared_db.engine) as s:
        for row in s.execute(select(AuditEvent.actor, AuditEvent.order_ref, AuditEvent.details)).all():
            assert_no_pii(str(tuple(row)), "the audit table")
        s.execute(text("SELECT 1"))

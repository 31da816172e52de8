"""Statements run directly on the DBAPI cursor write and read values exactly as SQLAlchemy does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

import pytest
from sqlalchemy import Table, bindparam, insert, literal_column, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from vault.directsql import DirectStatement
from vault.models import AuditEvent, AuditHead

EVENTS = cast(Table, AuditEvent.__table__)
COLUMNS = [c.name for c in EVENTS.columns if c.name != "id"]
INSERT = DirectStatement(insert(EVENTS).values({name: bindparam(name) for name in COLUMNS}))
SELECT = DirectStatement(select(*(EVENTS.c[name] for name in COLUMNS)).where(EVENTS.c.chain == bindparam("b_chain")))


def _event(chain: str, **overrides: Any) -> dict[str, Any]:
    return {
        "chain": chain, "seq": 1, "tenant_id": None, "occurred_at": datetime(2026, 11, 23, 5, 1, 2, 345678, tzinfo=UTC),
        "actor": "client:abc", "action": "label.release", "outcome": "released", "order_ref": "amazon:1",
        "ip": "10.0.0.7", "purpose": "shipping-label", "details": {"fields": ["name", "city"], "issue": 1, "n": None},
        "prev_hash": "0" * 64, "hash": "f" * 64, **overrides,
    }  # fmt: skip


def test_values_round_trip_as_sqlalchemy_reads_and_writes_them(session: Session) -> None:
    chain = f"test:{uuid.uuid4().hex[:8]}"
    written = _event(chain)
    INSERT.execute_many(session, [written])
    # SQLAlchemy reads what was written directly...
    orm = session.scalars(select(AuditEvent).where(AuditEvent.chain == chain)).one()
    assert {name: getattr(orm, name) for name in COLUMNS} == written
    assert orm.occurred_at.tzinfo is not None
    # ...and a direct read gives what SQLAlchemy's own read gives, types included.
    direct = SELECT.first(session, {"b_chain": chain})
    core = session.execute(SELECT.statement, {"b_chain": chain}).one()
    assert direct == tuple(core) == tuple(written.values())
    assert [type(v) for v in direct] == [type(v) for v in core]
    assert SELECT.first(session, {"b_chain": "no such chain"}) is None


def test_literals_and_returning(session: Session) -> None:
    chain = f"test:{uuid.uuid4().hex[:8]}"
    now = datetime(2026, 11, 23, tzinfo=UTC)
    session.add(AuditHead(chain=chain, seq=4, hash="a" * 64))
    session.flush()
    heads = cast(Table, AuditHead.__table__)
    bump = DirectStatement(
        update(heads)
        .where(heads.c.chain == bindparam("b_chain"))
        .values(seq=heads.c.seq + 1, updated_at=bindparam("b_now"))  # the ``1`` is a literal SQLAlchemy binds
        .returning(heads.c.seq, heads.c.updated_at)
    )
    assert bump.rows(session, {"b_chain": chain, "b_now": now}) == [(5, now)]
    assert bump.rows(session, {"b_chain": "no such chain", "b_now": now}) == []


def test_statements_needing_execution_time_defaults_are_refused(session: Session) -> None:
    heads = cast(Table, AuditHead.__table__)
    # ``updated_at`` has an ``onupdate`` SQLAlchemy computes per execution: it must be named explicitly.
    with pytest.raises(TypeError, match="bound parameter"):
        DirectStatement(update(heads).values(seq=1)).rows(session, {})
    with pytest.raises(TypeError, match="plain bound parameters"):
        DirectStatement(select(heads.c.seq).where(heads.c.chain.in_(bindparam("b", expanding=True)))).rows(
            session, {"b": ["x"]}
        )


def test_driver_errors_are_sqlalchemy_errors_without_their_parameters(session: Session) -> None:
    chain = f"test:{uuid.uuid4().hex[:8]}"
    INSERT.execute_many(session, [_event(chain)])
    with pytest.raises(DBAPIError) as caught:
        INSERT.execute_many(session, [_event(chain, actor="Jane Buyer at 1 Pike Street")])  # same (chain, seq)
    assert isinstance(caught.value, SQLAlchemyError)  # what the label API's fail-closed handler catches
    assert "Jane Buyer" not in str(caught.value) and "Pike" not in repr(caught.value)


class HeadRow(NamedTuple):
    seq: int
    updated_at: datetime


def test_rows_are_read_by_name_with_the_keys_sqlalchemy_gives_them(session: Session) -> None:
    chain = f"test:{uuid.uuid4().hex[:8]}"
    INSERT.execute_many(session, [_event(chain)])
    direct = SELECT.first(session, {"b_chain": chain})
    core = session.execute(SELECT.statement, {"b_chain": chain}).one()
    assert direct is not None
    assert direct._fields == tuple(core._fields) == tuple(COLUMNS)
    assert direct.actor == core.actor == "client:abc" and direct.details == core.details
    # Two tables' "id" columns: named as SQLAlchemy's own rows name them (id, id_1), not lost to a tuple index.
    events, heads = EVENTS, cast(Table, AuditHead.__table__)
    both = select(events.c.seq, heads.c.seq, events.c.actor).join_from(events, heads, heads.c.chain == events.c.chain)
    session.add(AuditHead(chain=chain, seq=9, hash="a" * 64))
    session.flush()
    statement = both.where(events.c.chain == bindparam("b_chain"))
    joined = DirectStatement(statement).first(session, {"b_chain": chain})
    assert joined is not None and (joined.seq, joined.seq_1, joined.actor) == (1, 9, "client:abc")
    assert joined._fields == tuple(session.execute(statement, {"b_chain": chain}).one()._fields)


def test_a_declared_row_class_is_checked_against_the_statement(session: Session) -> None:
    heads = cast(Table, AuditHead.__table__)
    chain = f"test:{uuid.uuid4().hex[:8]}"
    session.add(AuditHead(chain=chain, seq=4, hash="a" * 64))
    session.flush()
    now = datetime(2026, 11, 23, tzinfo=UTC)
    bump = update(heads).where(heads.c.chain == bindparam("b_chain")).values(seq=heads.c.seq + 1, updated_at=now)
    row = DirectStatement(bump.returning(heads.c.seq, heads.c.updated_at), HeadRow).first(session, {"b_chain": chain})
    assert isinstance(row, HeadRow) and row.seq == 5 and row.updated_at == now
    # A row class that no longer matches its statement fails where the statement is built, not on a request.
    with pytest.raises(TypeError, match="fields"):
        DirectStatement(bump.returning(heads.c.updated_at, heads.c.seq), HeadRow)
    with pytest.raises(TypeError, match="fields"):
        DirectStatement(bump, HeadRow)


def test_columns_without_a_usable_name_must_be_labelled() -> None:
    with pytest.raises(TypeError, match="label"):
        DirectStatement(select(EVENTS.c.seq, literal_column("'x'")))
    DirectStatement(select(EVENTS.c.seq, literal_column("'x'").label("marker")))  # labelled: fine


def test_a_statement_without_columns_returns_nothing(session: Session) -> None:
    heads = cast(Table, AuditHead.__table__)
    chain = f"test:{uuid.uuid4().hex[:8]}"
    session.add(AuditHead(chain=chain, seq=4, hash="a" * 64))
    session.flush()
    now = datetime(2026, 11, 23, tzinfo=UTC)
    touch = DirectStatement(
        update(heads).where(heads.c.chain == bindparam("b_chain")).values(hash=bindparam("b_hash"), updated_at=now)
    )
    assert touch.execute(session, {"b_chain": chain, "b_hash": "b" * 64}) is None
    assert touch.rows(session, {"b_chain": chain, "b_hash": "c" * 64}) == []
    assert session.scalar(select(heads.c.hash).where(heads.c.chain == chain)) == "c" * 64

"""The label release path's statements, run straight on the DBAPI cursor of the session's connection.

A label release runs six statements (the key's client, the order, the reissue count and three for the audit
append). Through ``Session.execute`` each one cost about 40 µs of SQLAlchemy's per-execution machinery
(session and connection events, the compiled-cache lookup, an execution context, parameter construction,
a result object), several times what the database itself takes to run it, and a third of the CPU of the
whole request.

A :class:`DirectStatement` is still a SQLAlchemy Core statement, compiled by SQLAlchemy once per dialect, and
its parameters and rows still go through the column types' own bind and result processors, so every value
is written and read exactly as SQLAlchemy writes and reads it (UTC timestamps, JSON, bytes). It runs in the
session's transaction, on the session's connection, and a driver error comes out as SQLAlchemy's own
:class:`~sqlalchemy.exc.DBAPIError` with its parameters hidden (they never reach a message), after a
disconnect has invalidated the connection as SQLAlchemy would. Only plain statements qualify: no expanding
``IN``, no column defaults evaluated at execution (name such values as bound parameters instead).

Rows come back named, by the same keys ``Session.execute`` would give them (``row.labels_issued``): as the
caller's own :class:`~typing.NamedTuple` (checked against the statement's columns when it is built), or
as a named tuple made from the columns. Everything here is SQLAlchemy's public API: the compiled
statement's documented attributes (``string``, ``binds``, ``bind_names``, ``escaped_bind_names``,
``positiontup``, ``insert_prefetch`` / ``update_prefetch``), the types' ``bind_processor`` /
``result_processor``, the dialect's ``loaded_dbapi`` and ``is_disconnect``, and ``DBAPIError.instance``.
"""

from __future__ import annotations

import keyword
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar, overload

from sqlalchemy import ColumnElement
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Delete, Insert, Select, Update

Processor = Callable[[Any], Any]
Statement = Select[Any] | Insert | Update | Delete


#: A row class: a :class:`~typing.NamedTuple` whose fields are the statement's column keys, in order.
R = TypeVar("R", bound=tuple[Any, ...])


class NoRow(NamedTuple):
    """The row of a statement that returns no columns (an INSERT, UPDATE or DELETE without RETURNING)."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One statement as one dialect runs it."""

    sql: str
    #: The bound parameters in the order the driver takes them, each with its type's bind processor.
    binds: tuple[tuple[str, str, Processor | None], ...]  # (our name, the driver's name, processor)
    #: Values SQLAlchemy rendered as parameters (literals such as the ``1`` of ``n + 1``).
    literals: Mapping[str, Any]
    positional: bool
    #: One result processor per returned column (``None``: the driver's value is kept).
    results: tuple[Processor | None, ...]
    #: Builds a named row from the returned values.
    make_row: Callable[[Iterable[Any]], Any]
    #: Whether any returned column has a result processor (if none, the driver's row is used as it is).
    processed: bool

    def parameters(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        values = []
        for name, _, process in self.binds:
            value = params[name] if name in params else self.literals[name]
            values.append(value if process is None or value is None else process(value))
        if self.positional:
            return values
        return {driver_name: value for (_, driver_name, _), value in zip(self.binds, values, strict=True)}

    def row(self, raw: Sequence[Any]) -> Any:
        if not self.processed:
            return self.make_row(raw)
        return self.make_row(v if p is None or v is None else p(v) for p, v in zip(self.results, raw, strict=True))


def _row_maker(statement: Statement, row: type[tuple[Any, ...]] | None) -> Callable[[Iterable[Any]], Any]:
    """How to build the statement's rows: ``row`` once its fields are checked against the columns, or a
    named tuple made from the columns' keys (the keys ``Session.execute`` gives its rows, deduplicated)."""
    keys = tuple(map(str, statement.exported_columns.keys()))
    if row is None:
        bad = [k for k in keys if not k.isidentifier() or keyword.iskeyword(k) or k.startswith("_")]
        if bad:
            raise TypeError(f"label the columns {bad} (e.g. with .label()) to read them by name")
        row = NoRow if not keys else namedtuple("Row", keys)
    named: Any = row  # a named tuple class: ``_fields`` and ``_make`` are its public API
    if tuple(named._fields) != keys:
        raise TypeError(f"{named.__name__} has the fields {named._fields}; the statement returns {keys}")
    make: Callable[[Iterable[Any]], Any] = named._make
    return make


class DirectStatement(Generic[R]):
    """A Core statement run on the DBAPI cursor, compiled once per dialect; see the module docstring."""

    @overload
    def __init__(self: DirectStatement[Any], statement: Statement) -> None: ...

    @overload
    def __init__(self, statement: Statement, row: type[R]) -> None: ...

    def __init__(self, statement: Statement, row: type[R] | None = None) -> None:
        self.statement = statement
        self._make_row = _row_maker(statement, row)
        self._compiled: dict[str, _Compiled] = {}

    def rows(self, session: Session, params: Mapping[str, Any]) -> list[R]:
        """Execute with ``params`` (by bound parameter name); the returned rows, named, types processed."""
        return self._run(session, [params], many=False)

    def first(self, session: Session, params: Mapping[str, Any]) -> R | None:
        """The first returned row, or ``None``."""
        rows = self.rows(session, params)
        return rows[0] if rows else None

    def execute(self, session: Session, params: Mapping[str, Any]) -> None:
        """Execute once with ``params``, for a statement whose rows (if any) aren't needed."""
        self._run(session, [params], many=False)

    def execute_many(self, session: Session, params: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per parameter set (the driver's executemany); no rows are returned."""
        if params:
            self._run(session, params, many=True)

    def _run(self, session: Session, params: Sequence[Mapping[str, Any]], *, many: bool) -> list[R]:
        connection = session.connection()
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name) or self._compile(dialect)
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None  # a connection in a session's transaction is never detached
        cursor = dbapi_connection.cursor()
        try:
            if many:
                cursor.executemany(compiled.sql, [compiled.parameters(p) for p in params])  # type: ignore[arg-type]
                return []
            cursor.execute(compiled.sql, compiled.parameters(params[0]))
            return [compiled.row(raw) for raw in cursor.fetchall()] if compiled.results else []
        except dialect.loaded_dbapi.Error as exc:
            invalidated = dialect.is_disconnect(exc, dbapi_connection, cursor)
            if invalidated:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                compiled.sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
                connection_invalidated=invalidated, dialect=dialect, ismulti=many,
            ) from exc  # fmt: skip
        finally:
            cursor.close()

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        if compiled.insert_prefetch or compiled.update_prefetch:
            # A column default SQLAlchemy would compute at execution (e.g. an ``onupdate`` timestamp).
            raise TypeError("name every defaulted column's value as a bound parameter to run it directly")
        by_name = {compiled.bind_names[bp]: bp for bp in compiled.binds.values()}
        order = compiled.positiontup if compiled.positional else list(by_name)
        assert order is not None
        escaped = compiled.escaped_bind_names  # names the driver sees, where a name needed quoting
        binds = []
        literals: dict[str, Any] = {}
        for name in order:
            bp = by_name[name]
            if bp.expanding or bp.callable is not None:
                raise TypeError(f"{bp.key}: only plain bound parameters run directly")
            if not bp.required:
                literals[bp.key] = bp.value
            processor = bp.type.dialect_impl(dialect).bind_processor(dialect)
            binds.append((bp.key, escaped.get(name, name), processor))
        columns: list[ColumnElement[Any]] = list(self.statement.exported_columns)  # selected or RETURNING
        results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
        processed = any(p is not None for p in results)
        entry = _Compiled(
            compiled.string, tuple(binds), literals, bool(compiled.positional), results, self._make_row, processed
        )
        self._compiled[dialect.name] = entry
        return entry

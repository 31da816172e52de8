"""Shopify's search syntax for the ``orders(query: ...)`` argument, the part a sync uses.

``updated_at:>='2026-03-01T00:00:00Z' AND status:any``: terms are ``field:value`` with an optional
comparator (``>``, ``>=``, ``<``, ``<=``) and single- or double-quoted values, joined by spaces or ``AND``.
Shopify ignores a term on a field it doesn't know and says so in ``extensions.search[].warnings``; the fake
does the same. ``OR``, negation and free text are not served (a warning too, and the term is ignored).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .data import FakeOrder, utc

_TERM = re.compile(
    r"""\s*(?P<neg>-)?(?P<field>[a-z_]+):(?P<op>>=|<=|>|<)?(?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<bare>[^\s'"]+))"""
)
_JOIN = re.compile(r"\s*(AND)\s+")
_DATE_FIELDS = ("updated_at", "created_at", "processed_at")
_STATUS = {"open", "closed", "cancelled", "not_closed", "any"}


@dataclass(frozen=True)
class Search:
    """A parsed search: the predicates to apply and Shopify's warnings for the terms it ignored."""

    query: str
    predicates: tuple[Callable[[FakeOrder], bool], ...] = ()
    warnings: tuple[dict[str, str], ...] = field(default=())

    def matches(self, order: FakeOrder) -> bool:
        """True when the order satisfies every term."""
        return all(predicate(order) for predicate in self.predicates)

    def extension(self, path: list[str]) -> dict[str, Any] | None:
        """The ``extensions.search`` entry Shopify adds when it ignored something, else None."""
        if not self.warnings:
            return None
        return {"path": path, "query": self.query, "warnings": list(self.warnings)}


def _parse_time(raw: str) -> datetime | None:
    try:
        return utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except ValueError:
        return None


def _compare(op: str | None, left: Any, right: Any) -> bool:
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    return bool(left == right)


def _status(value: str) -> Callable[[FakeOrder], bool]:
    if value == "open":
        return lambda o: not o.closed and not o.cancelled
    if value == "closed":
        return lambda o: o.closed
    if value == "cancelled":
        return lambda o: o.cancelled
    if value == "not_closed":
        return lambda o: not o.closed
    return lambda o: True


def parse(query: str | None) -> Search:
    """Parse an ``orders(query:)`` string; what can't be applied becomes a warning, as at Shopify."""
    if not query or not query.strip():
        return Search(query=query or "")
    predicates: list[Callable[[FakeOrder], bool]] = []
    warnings: list[dict[str, str]] = []
    rest = query.strip()
    while rest:
        joined = _JOIN.match(rest)
        if joined:
            rest = rest[joined.end() :]
            continue
        term = _TERM.match(rest)
        if term is None:
            word = rest.split(None, 1)[0]
            warnings.append({"field": "default", "message": f"Free text and operators are not supported: {word}"})
            rest = rest[len(word) :].lstrip()
            continue
        rest = rest[term.end() :].lstrip()
        name, op = term["field"], term["op"]
        value = term["sq"] if term["sq"] is not None else term["dq"] if term["dq"] is not None else term["bare"]
        predicate = _predicate(name, op, value)
        if predicate is None:
            warnings.append({"field": name, "message": "Invalid search field for this query."})
            continue
        if term["neg"]:
            inner = predicate
            predicates.append(lambda o, inner=inner: not inner(o))  # type: ignore[misc]
        else:
            predicates.append(predicate)
    return Search(query=query, predicates=tuple(predicates), warnings=tuple(warnings))


def _predicate(name: str, op: str | None, value: str) -> Callable[[FakeOrder], bool] | None:
    if name in _DATE_FIELDS:
        when = _parse_time(value)
        if when is None:
            return None
        if name == "updated_at":
            return lambda o: _compare(op, o.updated, when)
        return lambda o: _compare(op, o.created, when)
    if name == "status" and value in _STATUS and op is None:
        return _status(value)
    if name == "id" and value.isdigit():
        number = int(value)
        return lambda o: _compare(op, o.legacy_id, number)
    return None

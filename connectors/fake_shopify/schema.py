"""Shopify's Admin GraphQL schema 2026-07, read once: the schema, its protected fields, query cost, answer shape.

Everything here comes from the introspection result Shopify ships (``connectors/platform_specs/shopify/``),
so the fake can't drift from it: incoming queries are validated against the schema (graphql-core), the
protected-customer-data flags Shopify adds to each field (``isProtected``, ``protectedContent``) decide what
is redacted, a query's cost follows Shopify's documented rules, and every answer is checked against a JSON
Schema derived from the query and the schema's types.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_client_schema,
    get_named_type,
    value_from_ast,
)

SPEC_PACKAGE = "connectors.platform_specs.shopify"
SCHEMA_FILE = "admin_2026-07.json.gz"
API_VERSION = "2026-07"
SINGLE_QUERY_MAX_COST = 1000  # "A single query can't exceed a cost of 1,000 points", whatever the plan
MUTATION_COST = 10
PROTECTED_CONTENTS = frozenset({"name", "address", "phone", "email"})
_DATE_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"


@dataclass(frozen=True)
class Introspection:
    """The schema and Shopify's extra per-field facts."""

    schema: GraphQLSchema
    protected: Mapping[tuple[str, str], str]  # (type, field) -> protectedContent: name, address, phone, email
    scopes: Mapping[str, tuple[str, ...]]  # type -> offline scopes any one of which grants it
    #: (type, field) -> offline scopes any one of which grants the field (the mutations' write scopes).
    field_scopes: Mapping[tuple[str, str], tuple[str, ...]] = dataclasses.field(default_factory=dict)


@functools.cache
def introspection() -> Introspection:
    """Load and build the schema once per process (about a third of a second)."""
    raw = resources.files(SPEC_PACKAGE).joinpath(SCHEMA_FILE).read_bytes()
    document = json.loads(gzip.decompress(raw))
    protected: dict[tuple[str, str], str] = {}
    for kind in document["data"]["__schema"]["types"]:
        for spec in kind.get("fields") or ():
            if spec.get("isProtected"):
                protected[(kind["name"], spec["name"])] = spec.get("protectedContent") or "name"
    _undeprecate_interface_implementations(document["data"]["__schema"]["types"])
    scopes = {
        item["typeName"]: tuple(item.get("offlineScopes") or ())
        for item in document.get("offline_scopes", {}).get("items", ())
        if item.get("type") == "type"
    }
    field_scopes = {
        (item["typeName"], item["fieldName"]): tuple(item.get("offlineScopes") or ())
        for item in document.get("offline_scopes", {}).get("items", ())
        if item.get("type") == "field" and item.get("fieldName")
    }
    return Introspection(
        schema=build_client_schema(document["data"]), protected=protected, scopes=scopes, field_scopes=field_scopes
    )


def _undeprecate_interface_implementations(types: list[dict[str, Any]]) -> None:
    """Clear ``isDeprecated`` on the six object fields Shopify deprecates while their interface's field isn't.

    graphql-core 3.3 enforces the newer spec rule that an implementation may only be deprecated where the
    interface field is, and refuses to validate any query against a schema that breaks it; Shopify's 2026-07
    schema does on six ``id`` / metafield fields. Deprecation never changes what a query may ask, so the
    fake's copy (never the vendored file) drops those six flags.
    """
    by_name = {kind["name"]: kind for kind in types}
    for kind in types:
        for interface_ref in kind.get("interfaces") or ():
            interface = by_name.get(interface_ref["name"])
            if interface is None:
                continue
            live = {f["name"] for f in interface.get("fields") or () if not f.get("isDeprecated")}
            for spec in kind.get("fields") or ():
                if spec.get("isDeprecated") and spec["name"] in live:
                    spec["isDeprecated"] = False
                    spec["deprecationReason"] = None


def schema() -> GraphQLSchema:
    """The Admin API 2026-07 schema."""
    return introspection().schema


def _unwrap(kind: GraphQLOutputType) -> GraphQLOutputType:
    while isinstance(kind, GraphQLNonNull | GraphQLList):
        kind = kind.of_type
    return kind


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _fields(selection: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]) -> list[FieldNode]:
    """The field nodes of a selection set with fragments flattened (type conditions are not narrowed)."""
    found: list[FieldNode] = []
    for node in selection.selections if selection else ():
        if isinstance(node, FieldNode):
            found.append(node)
        elif isinstance(node, InlineFragmentNode):
            found.extend(_fields(node.selection_set, fragments))
        elif isinstance(node, FragmentSpreadNode) and node.name.value in fragments:
            found.extend(_fields(fragments[node.name.value].selection_set, fragments))
    return found


def _argument(field: FieldNode, name: str, variables: Mapping[str, Any], kind: Any) -> Any:
    for arg in field.arguments or ():
        if arg.name.value == name:
            return value_from_ast(arg.value, kind, dict(variables))
    return None


def _is_connection(kind: GraphQLOutputType) -> bool:
    named = get_named_type(kind)
    return isinstance(named, GraphQLObjectType) and named.name.endswith("Connection") and "pageInfo" in named.fields


def _possible(kind: GraphQLOutputType, name: str) -> Any:
    """The field ``name`` of an object or interface type (or of the first union member that has it)."""
    named = get_named_type(kind)
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
        return named.fields.get(name)
    if isinstance(named, GraphQLUnionType):
        for member in named.types:
            if name in member.fields:
                return member.fields[name]
    return None


def requested_cost(
    document: DocumentNode, operation: OperationDefinitionNode, variables: Mapping[str, Any] | None = None
) -> int:
    """A query's requested cost, by Shopify's documented rules, before it runs.

    Scalars and enums cost 0, an object 1, a connection 2 plus ``first`` (or ``last``) times the cost of
    one of its nodes, a mutation 10 plus its selection. The connection's own ``pageInfo`` and ``edges`` /
    ``cursor`` wrappers are part of its 2.
    """
    root = schema().mutation_type if operation.operation.value == "mutation" else schema().query_type
    assert root is not None
    fragments = _fragments(document)
    base = MUTATION_COST if operation.operation.value == "mutation" else 0
    return base + _selection_cost(root, operation.selection_set, fragments, variables or {})


def _selection_cost(
    parent: GraphQLOutputType,
    selection: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    total = 0
    for node in _fields(selection, fragments):
        spec = _possible(parent, node.name.value)
        if spec is None:  # __typename, or a field validation already refused
            continue
        total += _field_cost(spec, node, fragments, variables)
    return total


def _field_cost(
    spec: Any, node: FieldNode, fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]
) -> int:
    kind: GraphQLOutputType = spec.type
    named = get_named_type(kind)
    if isinstance(named, GraphQLScalarType | GraphQLEnumType):
        return 0
    if _is_connection(kind):
        size = _argument(node, "first", variables, spec.args["first"].type) if "first" in spec.args else None
        if size is None and "last" in spec.args:
            size = _argument(node, "last", variables, spec.args["last"].type)
        return 2 + int(size or 0) * _node_cost(named, node, fragments, variables)
    return 1 + _selection_cost(spec.type, node.selection_set, fragments, variables)


def _node_cost(
    connection: Any, node: FieldNode, fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]
) -> int:
    """The cost of one node of a connection: the most expensive of its ``edges { node }`` and ``nodes``."""
    node_type = connection.fields["nodes"].type if "nodes" in connection.fields else None
    best = 0
    for child in _fields(node.selection_set, fragments):
        if child.name.value == "nodes" and node_type is not None:
            best = max(best, 1 + _selection_cost(node_type, child.selection_set, fragments, variables))
        elif child.name.value == "edges":
            edge = get_named_type(connection.fields["edges"].type)
            for inner in _fields(child.selection_set, fragments):
                if inner.name.value == "node":
                    spec = edge.fields["node"]
                    best = max(best, 1 + _selection_cost(spec.type, inner.selection_set, fragments, variables))
    return best


def actual_cost(document: DocumentNode, operation: OperationDefinitionNode, data: Any) -> int:
    """What a query really cost: the same rules over what came back (fewer edges, null objects cost 1); a
    mutation's base cost is spent whatever it returns."""
    mutation = operation.operation.value == "mutation"
    root = schema().mutation_type if mutation else schema().query_type
    assert root is not None
    fragments = _fragments(document)
    return (MUTATION_COST if mutation else 0) + _actual(root, operation.selection_set, fragments, data)


def _actual(parent: Any, selection: SelectionSetNode | None, fragments: Mapping[str, Any], value: Any) -> int:
    if not isinstance(value, dict):
        return 0
    total = 0
    for node in _fields(selection, fragments):
        spec = _possible(parent, node.name.value)
        if spec is None:
            continue
        key = node.alias.value if node.alias else node.name.value
        child = value.get(key)
        named = get_named_type(spec.type)
        if isinstance(named, GraphQLScalarType | GraphQLEnumType):
            continue
        if _is_connection(spec.type):
            total += 2
            if isinstance(child, dict):
                total += _actual_connection(named, node, fragments, child)
            continue
        items = child if isinstance(child, list) else [child]
        total += sum(1 + _actual(named, node.selection_set, fragments, item) for item in items) if items else 0
    return total


def _actual_connection(connection: Any, node: FieldNode, fragments: Mapping[str, Any], value: dict[str, Any]) -> int:
    best = 0
    for child in _fields(node.selection_set, fragments):
        key = child.alias.value if child.alias else child.name.value
        if child.name.value == "nodes":
            node_type = get_named_type(connection.fields["nodes"].type)
            best = max(
                best, sum(1 + _actual(node_type, child.selection_set, fragments, n) for n in value.get(key) or ())
            )
        elif child.name.value == "edges":
            edge_type = get_named_type(connection.fields["edges"].type)
            node_type = get_named_type(edge_type.fields["node"].type)
            cost = 0
            for edge in value.get(key) or ():
                for inner in _fields(child.selection_set, fragments):
                    if inner.name.value == "node" and isinstance(edge, dict):
                        inner_key = inner.alias.value if inner.alias else "node"
                        cost += 1 + _actual(node_type, inner.selection_set, fragments, edge.get(inner_key))
            best = max(best, cost)
    return best


# --- the answer's shape -------------------------------------------------------------------------------------


def response_schema(document: DocumentNode, operation: OperationDefinitionNode) -> dict[str, Any]:
    """A JSON Schema (2020-12) that exactly the well-typed answers to this query satisfy.

    ``data`` has one property per response key (aliases included), no others, each typed from the schema:
    ``String``/``ID``/``URL`` strings, ``Int`` integers, ``Float`` numbers, ``Boolean``, ``DateTime`` as
    Shopify writes it (UTC, ``Z``), enums among their values, lists and objects recursively, ``null`` only
    where the schema's type is nullable. ``errors`` and ``extensions.cost`` follow Shopify's envelope.
    """
    root = schema().query_type if operation.operation.value == "query" else schema().mutation_type
    assert root is not None
    fragments = _fragments(document)
    data = _object_schema(root, operation.selection_set, fragments)
    error = {
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string"},
            "locations": {"type": "array"},
            "path": {"type": "array", "items": {"type": ["string", "integer"]}},
            "extensions": {"type": "object", "properties": {"code": {"type": "string"}}},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "data": _nullable(data),
            "errors": {"type": "array", "minItems": 1, "items": error},
            "extensions": {
                "type": "object",
                "required": ["cost"],
                "properties": {"cost": COST_SCHEMA, "search": {"type": "array"}},
            },
        },
        "required": ["extensions"],
        "anyOf": [{"required": ["data"]}, {"required": ["errors"]}],
    }


COST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["requestedQueryCost", "actualQueryCost", "throttleStatus"],
    "properties": {
        "requestedQueryCost": {"type": "integer", "minimum": 0},
        "actualQueryCost": {"type": ["integer", "null"], "minimum": 0},
        "throttleStatus": {
            "type": "object",
            "additionalProperties": False,
            "required": ["maximumAvailable", "currentlyAvailable", "restoreRate"],
            "properties": {
                "maximumAvailable": {"type": "number", "minimum": 0},
                "currentlyAvailable": {"type": "number", "minimum": 0},
                "restoreRate": {"type": "number", "exclusiveMinimum": 0},
            },
        },
    },
}


def _object_schema(parent: Any, selection: SelectionSetNode | None, fragments: Mapping[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for node in _fields(selection, fragments):
        key = node.alias.value if node.alias else node.name.value
        if node.name.value == "__typename":
            properties[key] = {"type": "string"}
            continue
        if node.name.value in ("__schema", "__type"):
            properties[key] = {}  # introspection answers follow graphql-core's own introspection types
            continue
        spec = _possible(parent, node.name.value)
        if spec is None:
            continue
        properties[key] = _type_schema(spec.type, node, fragments)
    required = sorted(set(properties) - _conditional_keys(selection, fragments))
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


_CONDITIONS = frozenset({"skip", "include"})


def _conditional_keys(
    selection: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode], inherited: bool = False
) -> set[str]:
    """Response keys that ``@skip`` / ``@include`` may leave out (on the field or on a fragment around it)."""
    found: set[str] = set()
    for node in selection.selections if selection else ():
        conditional = inherited or any(d.name.value in _CONDITIONS for d in node.directives or ())
        if isinstance(node, FieldNode):
            if conditional:
                found.add(node.alias.value if node.alias else node.name.value)
        elif isinstance(node, InlineFragmentNode):
            found |= _conditional_keys(node.selection_set, fragments, conditional)
        elif isinstance(node, FragmentSpreadNode) and node.name.value in fragments:
            found |= _conditional_keys(fragments[node.name.value].selection_set, fragments, conditional)
    return found


def _type_schema(kind: Any, node: FieldNode, fragments: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(kind, GraphQLNonNull):
        return _type_schema_inner(kind.of_type, node, fragments)
    return _nullable(_type_schema_inner(kind, node, fragments))


def _nullable(inner: dict[str, Any]) -> dict[str, Any]:
    """``inner`` or null, without ``anyOf`` where a type list says the same (several times faster to check:
    the object keywords apply to objects only, so null passes them)."""
    if "enum" in inner:
        return {**inner, "enum": [*inner["enum"], None]}
    kind = inner.get("type")
    if isinstance(kind, str):
        return {**inner, "type": [kind, "null"]}
    if not inner:
        return inner  # an unconstrained scalar already admits null
    return {"anyOf": [inner, {"type": "null"}]}


def _type_schema_inner(kind: Any, node: FieldNode, fragments: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(kind, GraphQLList):
        return {"type": "array", "items": _type_schema(kind.of_type, node, fragments)}
    if isinstance(kind, GraphQLEnumType):
        return {"enum": sorted(kind.values)}
    if isinstance(kind, GraphQLScalarType):
        return _SCALARS.get(kind.name, {})
    if isinstance(kind, GraphQLUnionType | GraphQLInterfaceType):
        # Which fields come back depends on the member's type (fragments): each selected field is typed,
        # none may be missing where the interface itself has it, no field beyond the selected ones.
        members = (
            list(kind.types) if isinstance(kind, GraphQLUnionType) else list(schema().get_implementations(kind).objects)
        )
        properties: dict[str, Any] = {}
        required: list[str] = []
        for child in _fields(node.selection_set, fragments):
            key = child.alias.value if child.alias else child.name.value
            if child.name.value == "__typename":
                properties[key] = {"enum": sorted(m.name for m in members)}
                continue
            spec = _possible(kind, child.name.value) or next(
                (m.fields[child.name.value] for m in members if child.name.value in m.fields), None
            )
            if spec is None:
                continue
            properties[key] = _type_schema(spec.type, child, fragments)
        if isinstance(kind, GraphQLInterfaceType) and node.selection_set is not None:
            direct = (c for c in node.selection_set.selections if isinstance(c, FieldNode))  # not in a fragment
            required = [c.alias.value if c.alias else c.name.value for c in direct if c.name.value in kind.fields]
        return {
            "type": "object",
            "additionalProperties": False,
            "required": sorted(set(required)),
            "properties": properties,
        }
    return _object_schema(kind, node.selection_set, fragments)


_SCALARS: dict[str, dict[str, Any]] = {
    "String": {"type": "string"},
    "ID": {"type": "string", "pattern": r"^gid://shopify/[A-Za-z]+/\d+"},
    "URL": {"type": "string"},
    "Int": {"type": "integer"},
    "Float": {"type": "number"},
    "Boolean": {"type": "boolean"},
    "DateTime": {"type": "string", "pattern": _DATE_TIME},
    "UnsignedInt64": {"type": "string", "pattern": r"^\d+$"},
    "Decimal": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
    "Money": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
}


def protected_content(type_name: str, field_name: str) -> str | None:
    """The kind of protected customer data a field holds (name, address, phone, email), or None."""
    return introspection().protected.get((type_name, field_name))


def unwrap(kind: GraphQLOutputType) -> GraphQLOutputType:
    """A type without its non-null and list wrappers."""
    return _unwrap(kind)


# --- a fast checker for the JSON Schemas above --------------------------------------------------------------

Check = Callable[[Any, str], str | None]  # (value, path) -> where and why it fails, or None

_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_KNOWN_KEYWORDS = frozenset(
    {
        "$schema",
        "type",
        "enum",
        "pattern",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "anyOf",
        "minItems",
        "minimum",
        "exclusiveMinimum",
    }
)


def compile_check(spec: Mapping[str, Any]) -> Check:
    """A checker for the JSON Schema subset ``response_schema`` writes, compiled once into closures.

    ``jsonschema`` checks the same schemas about ten times slower, which would make the fake, not the
    rate limit, the bottleneck of a benchmark; the tests hold the two to the same verdicts. A keyword
    outside the subset is a ``ValueError`` here, so the checker can't silently ignore a rule.
    """
    unknown = set(spec) - _KNOWN_KEYWORDS
    if unknown:
        raise ValueError(f"compile_check does not know the keyword {sorted(unknown)[0]}")
    checks: list[Check] = []
    kind = spec.get("type")
    if kind is not None:
        names = [kind] if isinstance(kind, str) else list(kind)
        tests = [_JSON_TYPES[n] for n in names]

        def check_type(value: Any, path: str) -> str | None:
            return None if any(t(value) for t in tests) else f"{path}: not {'/'.join(names)}"

        checks.append(check_type)
    if "enum" in spec:
        allowed = list(spec["enum"])

        def check_enum(value: Any, path: str) -> str | None:
            ok = any(value == a and type(value) is type(a) for a in allowed)
            return None if ok else f"{path}: not among the enum's values"

        checks.append(check_enum)
    if "pattern" in spec:
        pattern = re.compile(spec["pattern"])

        def check_pattern(value: Any, path: str) -> str | None:
            return None if not isinstance(value, str) or pattern.search(value) else f"{path}: breaks its pattern"

        checks.append(check_pattern)
    for keyword, strict in (("minimum", False), ("exclusiveMinimum", True)):
        if keyword in spec:
            bound = spec[keyword]

            def check_minimum(value: Any, path: str, bound: Any = bound, strict: bool = strict) -> str | None:
                if not _JSON_TYPES["number"](value) or (value > bound if strict else value >= bound):
                    return None
                return f"{path}: below its minimum"

            checks.append(check_minimum)
    if "properties" in spec or "required" in spec or "additionalProperties" in spec:
        properties = {k: compile_check(v) for k, v in spec.get("properties", {}).items()}
        required = tuple(spec.get("required", ()))
        closed = spec.get("additionalProperties") is False

        def check_object(value: Any, path: str) -> str | None:
            if not isinstance(value, dict):
                return None
            for key in required:
                if key not in value:
                    return f"{path}: {key} is missing"
            for key, item in value.items():
                inner = properties.get(key)
                if inner is None:
                    if closed:
                        return f"{path}: {key} is not in the query"
                    continue
                failure = inner(item, f"{path}/{key}")
                if failure:
                    return failure
            return None

        checks.append(check_object)
    if "items" in spec or "minItems" in spec:
        item_check = compile_check(spec["items"]) if "items" in spec else None
        least = spec.get("minItems", 0)

        def check_array(value: Any, path: str) -> str | None:
            if not isinstance(value, list):
                return None
            if len(value) < least:
                return f"{path}: fewer than {least} items"
            if item_check is not None:
                for index, item in enumerate(value):
                    failure = item_check(item, f"{path}/{index}")
                    if failure:
                        return failure
            return None

        checks.append(check_array)
    if "anyOf" in spec:
        options = [compile_check(option) for option in spec["anyOf"]]

        def check_any(value: Any, path: str) -> str | None:
            failures = [option(value, path) for option in options]
            return None if any(f is None for f in failures) else next(f for f in failures if f)

        checks.append(check_any)

    def check(value: Any, path: str) -> str | None:
        for one in checks:
            failure = one(value, path)
            if failure:
                return failure
        return None

    return check

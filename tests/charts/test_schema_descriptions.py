"""Every key a chart's values.schema.json declares has a non-empty `description`.

The schema is the one place `helm install` users, editors and schema-aware tools read a key's
meaning from; the README tables come from the `# --` comments in values.yaml, and the two say
the same thing. A "key" here is every schema that describes a value: each entry of
`properties` and `patternProperties`, an `additionalProperties` schema (the entries of a map),
`items` (the entries of a list), and every shared schema under `definitions` / `$defs`.
Conditions (`if`, `not`, `propertyNames`) only constrain, so they need none, but keys declared
inside `then`, `else`, `allOf`, `anyOf` and `oneOf` do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from harness.paths import chart

from charts.layout import CHARTS, chart_present

pytestmark = pytest.mark.charts

# Keywords whose value maps names to key schemas, each needing a description.
NAMED_KEYS = ("properties", "patternProperties", "definitions", "$defs")
# Keywords whose value is one key schema (or, for `items`, a list of them).
SINGLE_KEYS = ("additionalProperties", "items")
# Keywords holding sub-schemas of the same key: walked for nested keys, no description of their own.
BRANCHES = ("then", "else", "allOf", "anyOf", "oneOf")


def _pointer(path: tuple[str, ...]) -> str:
    """RFC 6901 JSON pointer of a schema node, e.g. `/properties/image/properties/tag`."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in path) or "/"


def _keys(node: dict[str, Any], path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """The key schemas declared directly in `node`, with their paths."""
    for keyword in NAMED_KEYS:
        for name, child in (node.get(keyword) or {}).items():
            yield (*path, keyword, name), child
    for keyword in SINGLE_KEYS:
        child = node.get(keyword)
        if isinstance(child, dict):
            yield (*path, keyword), child
        elif isinstance(child, list):
            yield from (((*path, keyword, str(i)), item) for i, item in enumerate(child))


def _branches(node: dict[str, Any], path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    for keyword in BRANCHES:
        child = node.get(keyword)
        if isinstance(child, dict):
            yield (*path, keyword), child
        elif isinstance(child, list):
            yield from (((*path, keyword, str(i)), item) for i, item in enumerate(child) if isinstance(item, dict))


def undescribed(schema: dict[str, Any]) -> list[str]:
    """JSON pointers of every key schema in `schema` without a non-empty string `description`."""
    missing: list[str] = []
    pending: list[tuple[tuple[str, ...], dict[str, Any], bool]] = [((), schema, False)]
    while pending:
        path, node, is_key = pending.pop()
        description = node.get("description")
        if is_key and not (isinstance(description, str) and description.strip()):
            missing.append(_pointer(path))
        pending.extend((p, child, True) for p, child in _keys(node, path) if isinstance(child, dict))
        pending.extend((p, child, False) for p, child in _branches(node, path))
    return sorted(missing)


def load_schema(name: str) -> dict[str, Any]:
    chart_present(name)
    return json.loads((chart(name) / "values.schema.json").read_text())


@pytest.mark.parametrize("name", CHARTS)
def test_every_schema_key_has_a_description(name: str) -> None:
    missing = undescribed(load_schema(name))
    assert not missing, f"charts/{name}/values.schema.json: keys without a description:\n" + "\n".join(missing)


# A schema with one undescribed key of each kind the walker must find.
BROKEN = {
    "type": "object",
    "definitions": {
        "image": {"type": "object", "properties": {"tag": {"type": "string"}}},
    },
    "properties": {
        "port": {"type": "integer"},
        "ok": {"type": "string", "description": "Described."},
        "blank": {"type": "string", "description": "  "},
        "tiers": {
            "type": "object",
            "description": "A map.",
            "additionalProperties": {"type": "object", "properties": {"limit": {"type": "integer"}}},
        },
        "keys": {"type": "array", "description": "A list.", "items": {"type": "object"}},
        "tls": {
            "type": "object",
            "description": "Conditional.",
            "if": {"properties": {"certificate": {"minLength": 1}}},
            "then": {"properties": {"key": {"minLength": 1}}},
        },
    },
    "patternProperties": {"^x-": {"type": "string"}},
}


def test_the_walker_names_every_undescribed_key() -> None:
    """Control: the walker fails on a schema with missing descriptions, naming each one's path."""
    assert undescribed(BROKEN) == [
        "/definitions/image",
        "/definitions/image/properties/tag",
        "/patternProperties/^x-",
        "/properties/blank",
        "/properties/keys/items",
        "/properties/port",
        "/properties/tiers/additionalProperties",
        "/properties/tiers/additionalProperties/properties/limit",
        "/properties/tls/then/properties/key",
    ]


def test_the_walker_accepts_a_fully_described_schema() -> None:
    described = {
        "type": "object",
        "properties": {
            "a": {"type": "array", "description": "A list.", "items": {"type": "string", "description": "One."}},
            "b": {"$ref": "#/definitions/b", "description": "See b."},
        },
        "definitions": {"b": {"type": "integer", "description": "A number."}},
    }
    assert undescribed(described) == []

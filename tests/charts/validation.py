"""Offline validation of rendered objects: Kubernetes 1.34 schemas and vendored CRD schemas.

Built-in kinds go through kubernetes-validate (strict: unknown fields are errors). Custom
resources (Gateway API, Kuadrant, OpenShift Route) go through the openAPIV3Schema of the CRDs
vendored in crds/, adjusted to behave like the API server with strict field validation:
objects with declared properties reject unknown fields, schema defaults are applied before
validating (as the API server does), and `x-kubernetes-int-or-string` accepts both types.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

CRD_DIR = Path(__file__).parent / "crds"
KUBERNETES_VERSION = "1.34.0"
Obj = dict[str, Any]


@dataclass(frozen=True)
class CrdKey:
    group: str
    version: str
    kind: str


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _strict(schema: Any) -> Any:
    """Rewrite an openAPIV3Schema into the JSON Schema the API server effectively enforces."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    node = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    props = schema.get("properties")
    open_object = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
    if isinstance(props, dict) and schema.get("type") == "object" and not open_object:
        node["additionalProperties"] = False
    if "nullable" in node:
        node.pop("nullable")
    return node


@cache
def crd_schemas() -> dict[CrdKey, Obj]:
    """Every served version of every vendored CRD, keyed by group/version/kind."""
    schemas: dict[CrdKey, Obj] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                raw = version["schema"]["openAPIV3Schema"]
                schemas[CrdKey(spec["group"], version["name"], spec["names"]["kind"])] = _strict(copy.deepcopy(raw))
    return schemas


def crd_groups() -> set[str]:
    return {key.group for key in crd_schemas()}


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<root>"


def apply_defaults(schema: Any, node: Any) -> None:
    """Fill in schema defaults in place, like the API server before validation."""
    if not isinstance(schema, dict):
        return
    if isinstance(node, dict):
        props = schema.get("properties") or {}
        for name, sub in props.items():
            if name not in node and isinstance(sub, dict) and "default" in sub:
                node[name] = copy.deepcopy(sub["default"])
            if name in node:
                apply_defaults(sub, node[name])
        extra = schema.get("additionalProperties")
        for name, value in node.items():
            if name not in props:
                apply_defaults(extra, value)
    elif isinstance(node, list):
        for item in node:
            apply_defaults(schema.get("items"), item)


def validate_crd(obj: Obj) -> list[str]:
    group, version = _group_version(obj.get("apiVersion", ""))
    schema = crd_schemas().get(CrdKey(group, version, obj.get("kind", "")))
    if schema is None:
        known = sorted(f"{k.group}/{k.version} {k.kind}" for k in crd_schemas())
        what = f"{obj.get('apiVersion')} {obj.get('kind')}"
        return [f"no CRD schema vendored under tests/charts/crds for {what}; known: {known}"]
    obj = copy.deepcopy(obj)
    apply_defaults(schema, obj)
    validator = jsonschema.Draft7Validator(schema)
    return [f"{_path(e)}: {e.message}" for e in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))]


def validate_builtin(obj: Obj) -> list[str]:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{_path(error)}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [error.message]
    return []


@cache
def _validate_canonical(text: str) -> tuple[str, ...]:
    obj = json.loads(text)
    group, _ = _group_version(obj.get("apiVersion", ""))
    errors = validate_crd(obj) if group in crd_groups() else validate_builtin(obj)
    return tuple(errors)


def validate(obj: Obj) -> list[str]:
    """Errors for one object (empty when valid). Identical objects are validated once per session."""
    return list(_validate_canonical(json.dumps(obj, sort_keys=True, default=str)))

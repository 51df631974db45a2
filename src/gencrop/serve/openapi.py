"""The API's OpenAPI description as version 3.0, which the bundled Swagger UI (4.x) renders.

FastAPI writes OpenAPI 3.1 (JSON Schema 2020-12); Swagger UI 4 refuses it
("does not specify a valid version field"). The 3.1 constructs FastAPI uses
have exact 3.0 spellings, rewritten here: ``null`` in a union becomes
``nullable``, numeric ``exclusiveMinimum``/``exclusiveMaximum`` become the
boolean forms, a schema's ``examples`` list its ``example``, ``const`` a
one-value ``enum``, and binary content ``format: binary``.
"""

from __future__ import annotations

from typing import Any

OPENAPI_VERSION = "3.0.3"


def to_openapi_30(schema: dict) -> dict:
    """A copy of the OpenAPI 3.1 document ``schema`` in OpenAPI 3.0."""
    out = _convert(schema, in_schema=False)
    out["openapi"] = OPENAPI_VERSION
    return out


SCHEMA_KEYS = {"schema", "items", "additionalProperties", "not"}  # values that are schemas
SCHEMA_MAPS = {"properties", "schemas"}  # values that map names to schemas
SCHEMA_LISTS = {"anyOf", "oneOf", "allOf", "prefixItems"}


def _convert(node: Any, in_schema: bool) -> Any:
    if isinstance(node, list):
        return [_convert(v, in_schema) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict = {}
    for key, value in node.items():
        if key in SCHEMA_KEYS:
            out[key] = _convert(value, True)
        elif key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _convert(v, True) for name, v in value.items()}
        elif key in SCHEMA_LISTS:
            out[key] = [_convert(v, True) for v in value]
        else:
            out[key] = _convert(value, in_schema and key not in ("example", "default", "enum"))
    return _schema_30(out) if in_schema else out


def _schema_30(s: dict) -> dict:
    """One schema object's 3.1-only keywords in their 3.0 form."""
    for union in ("anyOf", "oneOf"):
        options = s.get(union)
        if isinstance(options, list) and any(o == {"type": "null"} for o in options):
            rest = [o for o in options if o != {"type": "null"}]
            del s[union]
            s["nullable"] = True
            if len(rest) == 1:
                s.update({k: v for k, v in rest[0].items() if k not in s})
            elif rest:
                s[union] = rest
    kind = s.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) < len(kind):
            s["nullable"] = True
        s["type"] = kinds[0] if len(kinds) == 1 else kinds
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(s.get(bound), (int, float)) and not isinstance(s.get(bound), bool):
            s[limit], s[bound] = s[bound], True
    if isinstance(s.get("examples"), list):
        examples = s.pop("examples")
        if examples:
            s.setdefault("example", examples[0])
    if "const" in s:
        s["enum"] = [s.pop("const")]
    if s.get("contentMediaType") == "application/octet-stream" or s.get("contentEncoding") == "binary":
        s.pop("contentMediaType", None)
        s.pop("contentEncoding", None)
        s["format"] = "binary"
    return s

"""The documented schema of dagh-profile's JSON report, and a small validator for it.

The schema is JSON Schema (draft 2020-12 subset: type, required, properties,
items, enum, minimum); ``validate`` checks a report against it without any
dependency, so tests and users can check reports anywhere.
"""

from __future__ import annotations

from typing import Any

NUMBER = {"type": "number"}
NULLABLE_NUMBER = {"type": ["number", "null"]}
LATENCY = {"type": "object", "required": ["count", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms", "throughput"],
           "properties": {"count": {"type": "integer", "minimum": 1}, "p50_ms": NUMBER, "p90_ms": NUMBER,
                          "p99_ms": NUMBER, "mean_ms": NUMBER, "max_ms": NUMBER, "throughput": NUMBER}}
STATUS = {"enum": ["ok", "skipped"]}


def _entry(required: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required + ["status"],
            "properties": {"status": STATUS, "reason": {"type": "string"}, "latency": LATENCY, **extra}}


PROFILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "dagh-profile report",
    "type": "object",
    "required": ["schema", "schema_version", "export", "environment", "settings", "encode", "search",
                 "end_to_end", "interrupted"],
    "properties": {
        "schema": {"enum": ["dagh-profile"]},
        "schema_version": {"enum": [1]},
        "export": {"type": "object", "required": ["path", "code_bits", "input_size"]},
        "environment": {"type": "object", "required": ["cpu", "cores", "gpu", "onnxruntime", "tensorrt"]},
        "settings": {"type": "object"},
        "encode": {"type": "array", "items": _entry(["precision", "backend", "batch"], {
            "batch": {"type": "integer", "minimum": 1},
            "split_p50_ms": {"type": "object", "required": ["preprocess", "host_to_device", "inference",
                                                            "device_to_host", "packing"],
                             "properties": {k: NULLABLE_NUMBER for k in ("preprocess", "host_to_device", "inference",
                                                                         "device_to_host", "packing")}}})},
        "search": {"type": "array", "items": _entry(["index_backend", "gallery", "k"], {
            "gallery": {"type": "integer", "minimum": 1}, "k": {"type": "integer", "minimum": 1},
            "codes_per_s": NUMBER, "gb_per_s": NUMBER})},
        "end_to_end": {"type": "array", "items": _entry(["precision", "backend", "gallery"], {
            "single_stream_p90_ms": NUMBER, "offline_frames_per_s": NUMBER})},
        "recognizer": {"type": "array", "items": _entry(["precision", "backend", "faces", "gallery"], {
            "faces": {"type": "integer", "minimum": 1}, "found": {"type": "integer", "minimum": 0},
            "frames_per_s": NUMBER,
            "stages": {"type": "object", "required": ["detect", "align", "encode", "search"],
                       "properties": {k: {"type": "object", "required": ["p50_ms", "p90_ms"]}
                                      for k in ("detect", "align", "encode", "search")}}})},
        "interrupted": {"type": "boolean"},
    },
}

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def validate(value: Any, schema: dict[str, Any] = PROFILE_SCHEMA, path: str = "$") -> list[str]:
    """Problems found in ``value`` against ``schema`` (empty when valid)."""
    problems: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, k) for k in kinds):
            return [f"{path}: expected {' or '.join(kinds)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and _is(value, "number") and value < schema["minimum"]:
        problems.append(f"{path}: {value} < {schema['minimum']}")
    if isinstance(value, dict):
        # A skipped entry carries its reason instead of measurements.
        skipped = value.get("status") == "skipped"
        for key in schema.get("required", []):
            if key not in value:
                problems.append(f"{path}: missing {key!r}")
        if skipped and "reason" not in value:
            problems.append(f"{path}: a skipped entry needs a 'reason'")
        if value.get("status") == "ok" and "latency" in schema.get("properties", {}) and "latency" not in value:
            problems.append(f"{path}: an 'ok' entry needs 'latency'")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                problems += validate(value[key], sub, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += validate(item, schema["items"], f"{path}[{i}]")
    return problems

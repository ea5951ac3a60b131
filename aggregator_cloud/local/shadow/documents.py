"""Pure JSON operations on shadow state, with AWS IoT Device Shadow semantics.

* A ``null`` value in an update deletes that key; objects merge key by key; arrays and scalars
  are replaced whole.
* The delta holds every desired value that reported does not hold (compared recursively through
  objects, whole for arrays and scalars).
* Metadata mirrors the state with ``{"timestamp": T}`` for each leaf (one per array element).
"""

from __future__ import annotations

import json
from typing import Any

JsonObject = dict[str, Any]


def canonical(value: Any) -> str:
    """Compact JSON with sorted keys: equal text means equal JSON (``1`` differs from ``true``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def json_size(value: Any) -> int:
    """Size in bytes of the compact UTF-8 encoding, the measure the 8 KB limit applies to."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def nesting_depth(value: Any) -> int:
    """Levels of objects and arrays: ``{"a": 1}`` has one, ``{"a": {"b": 1}}`` two."""
    if isinstance(value, dict):
        return 1 + max((nesting_depth(child) for child in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((nesting_depth(child) for child in value), default=0)
    return 0


def without_nulls(value: Any) -> Any:
    """The value as stored when written to a fresh key: ``null`` members of objects dropped."""
    if isinstance(value, dict):
        return {key: without_nulls(child) for key, child in value.items() if child is not None}
    return value


def merge(current: JsonObject, patch: JsonObject) -> JsonObject:
    """A new object: ``current`` with ``patch`` applied (``null`` deletes, objects merge)."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = without_nulls(value)
    return merged


def metadata_for(value: Any, timestamp: int) -> Any:
    """Metadata for a freshly written value: a timestamp per leaf and per array element."""
    if isinstance(value, dict):
        return {key: metadata_for(child, timestamp) for key, child in value.items()}
    if isinstance(value, list):
        return [metadata_for(child, timestamp) for child in value]
    return {"timestamp": timestamp}


def merge_metadata(
    current: JsonObject, state: JsonObject, patch: JsonObject, timestamp: int
) -> JsonObject:
    """Metadata after ``merge(state, patch)``: the keys the patch wrote get ``timestamp``."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(state.get(key), dict):
            merged[key] = merge_metadata(merged.get(key, {}), state[key], value, timestamp)
        else:
            merged[key] = metadata_for(without_nulls(value), timestamp)
    return merged


def delta(desired: JsonObject, reported: JsonObject) -> JsonObject:
    """The desired values that reported does not match, recursing through objects."""
    difference: JsonObject = {}
    for key, wanted in desired.items():
        if key not in reported:
            difference[key] = wanted
        elif isinstance(wanted, dict) and isinstance(reported[key], dict):
            nested = delta(wanted, reported[key])
            if nested:
                difference[key] = nested
        elif canonical(wanted) != canonical(reported[key]):
            difference[key] = wanted
    return difference


def select(metadata: JsonObject, shape: JsonObject) -> JsonObject:
    """The part of ``metadata`` covering the keys of ``shape`` (e.g. metadata of a delta)."""
    selected: JsonObject = {}
    for key, value in shape.items():
        if key not in metadata:
            continue
        if isinstance(value, dict) and isinstance(metadata[key], dict):
            selected[key] = select(metadata[key], value)
        else:
            selected[key] = metadata[key]
    return selected

"""The base every protocol document shares: strict parsing, semantic checks, compact JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Self

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator
from pydantic.config import JsonDict

SHADOW_STATE_LIMIT: Final = 8192
"""AWS IoT: bytes allowed in a shadow's `state` document, desired and reported together."""
PLAN_BUDGET: Final = 6144
"""Bytes for `{"state":{"desired":{"plan":...}}}`: the plan shares its shadow with the ack."""
ACK_BUDGET: Final = SHADOW_STATE_LIMIT - PLAN_BUDGET
NODE_BUDGET: Final = SHADOW_STATE_LIMIT // 2
"""Bytes for the descriptor's payload: it shares the classic shadow with the telemetry."""
TELEMETRY_BUDGET: Final = SHADOW_STATE_LIMIT - NODE_BUDGET
MESSAGE_LIMIT: Final = 128 * 1024
"""AWS IoT: bytes allowed in one MQTT message payload."""

# parse() passes this in the validation context: it runs the semantic checks itself to
# collect every problem with its path, instead of stopping at the first ValueError.
DEFER_SEMANTIC_CHECKS: Final = "fractal.defer_semantic_checks"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document. `path` is like `devices.battery.windows[2].end`;
    an empty path means the document as a whole."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<document>'}: {self.message}"


def join_path(*parts: str | int) -> str:
    """`("devices", "battery", "windows", 2, "end")` -> `devices.battery.windows[2].end`."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _require_schema_field(schema: JsonDict) -> None:
    # `schema` has a default so Python callers need not pass it, but on the wire it is
    # required: parse() reports a document without one.
    required = schema.setdefault("required", [])
    if isinstance(required, list) and "schema" not in required:
        required.insert(0, "schema")


class Record(BaseModel):
    """A strict, immutable part of a document: no unknown fields, no NaN or infinity."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


class Document(Record):
    """A top-level protocol document, identified by its `schema` field."""

    model_config = ConfigDict(json_schema_extra=_require_schema_field)

    KIND: ClassVar[str]
    """Short name: `docs/schemas/<KIND>.schema.json`."""
    SCHEMA: ClassVar[str]
    """The value of the `schema` field, e.g. `fractal.plan.v1`."""
    SHADOW_PLACE: ClassVar[tuple[str, str] | None] = None
    """(section, key) where the document lives in a device shadow, if it does."""
    MAX_BYTES: ClassVar[int | None] = None
    """Size budget: of the shadow payload if SHADOW_PLACE is set, else of the document."""

    def semantic_problems(self) -> list[Problem]:
        """Cross-field rules that the field types cannot express. Override to add some."""
        return []

    def problems(self) -> list[Problem]:
        """Every semantic problem of a structurally valid document, size included."""
        found = self.semantic_problems()
        size_problem = self._size_problem()
        if size_problem is not None:
            found.append(size_problem)
        return found

    def _size_problem(self) -> Problem | None:
        if self.MAX_BYTES is None:
            return None
        if self.SHADOW_PLACE is None:
            size, what = len(dump(self).encode()), "document"
        else:
            size, what = shadow_size(self), "shadow state"
        if size <= self.MAX_BYTES:
            return None
        return Problem("", f"{what} is {size} bytes, over the {self.MAX_BYTES}-byte limit")

    @model_validator(mode="after")
    def _check_semantics(self, info: ValidationInfo) -> Self:
        if isinstance(info.context, dict) and info.context.get(DEFER_SEMANTIC_CHECKS):
            return self
        found = self.problems()
        if found:
            raise ValueError("; ".join(str(problem) for problem in found))
        return self


def dump(doc: Record) -> str:
    """Compact JSON: no spaces, absent (None) fields left out."""
    return doc.model_dump_json(by_alias=True, exclude_none=True)


def to_jsonable(doc: Record) -> dict[str, Any]:
    """The JSON-ready dict of a document (what `dump` writes), e.g. for boto3 payloads."""
    data: dict[str, Any] = json.loads(dump(doc))
    return data


def shadow_payload(doc: Document, section: str | None = None, key: str | None = None) -> str:
    """`{"state":{section:{key:doc}}}` as compact JSON: what goes on a shadow update topic.

    Section and key default to the document's own place (`Plan`: desired.plan)."""
    place_section, place_key = doc.SHADOW_PLACE or ("reported", doc.KIND)
    section_json = json.dumps(section or place_section)
    key_json = json.dumps(key or place_key)
    return f'{{"state":{{{section_json}:{{{key_json}:{dump(doc)}}}}}}}'


def replacing_payload(
    doc: Document, previous: object, section: str | None = None, key: str | None = None
) -> str:
    """Like `shadow_payload`, for replacing `previous` (the JSON now at that place).

    A shadow update MERGES objects into the stored state, so a field the old document
    had and the new one lacks would survive; this sends such fields as null, which
    deletes them. Arrays are replaced whole by the shadow service and need nothing."""
    new = to_jsonable(doc)
    place_section, place_key = doc.SHADOW_PLACE or ("reported", doc.KIND)
    state = {section or place_section: {key or place_key: _null_missing(new, previous)}}
    return json.dumps({"state": state}, separators=(",", ":"), ensure_ascii=False)


def _null_missing(new: object, old: object) -> object:
    if not isinstance(new, dict) or not isinstance(old, dict):
        return new
    merged: dict[str, object] = {name: None for name in old if name not in new}
    merged.update({name: _null_missing(value, old.get(name)) for name, value in new.items()})
    return merged


def shadow_size(doc: Document, section: str | None = None, key: str | None = None) -> int:
    """Bytes of `shadow_payload`: compare with SHADOW_STATE_LIMIT."""
    return len(shadow_payload(doc, section, key).encode())


def duplicates(items: Sequence[str]) -> list[str]:
    """Values that occur more than once, in order of their second occurrence."""
    seen: set[str] = set()
    repeated: list[str] = []
    for item in items:
        if item in seen and item not in repeated:
            repeated.append(item)
        seen.add(item)
    return repeated

"""parse(): any input in, a document or every problem with it out; never an exception."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pydantic_core
from pydantic import ValidationError

from .ack import PlanAck
from .base import DEFER_SEMANTIC_CHECKS, MESSAGE_LIMIT, Document, Problem, join_path
from .flex import FlexibilityEvent
from .node import NodeDescriptor
from .plan import Plan
from .telemetry import TelemetryBatch, TelemetrySnapshot

DOCUMENT_TYPES: tuple[type[Document], ...] = (
    NodeDescriptor,
    TelemetrySnapshot,
    TelemetryBatch,
    Plan,
    PlanAck,
    FlexibilityEvent,
)
BY_SCHEMA: dict[str, type[Document]] = {model.SCHEMA: model for model in DOCUMENT_TYPES}
MAX_INPUT_BYTES = 8 * MESSAGE_LIMIT
"""Inputs larger than this are refused unread: no document, even pretty-printed, comes near."""


@dataclass(frozen=True)
class Parsed[T: Document]:
    document: T | None
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return self.document is not None


def parse[T: Document](model: type[T], raw: bytes | str | Mapping[str, object]) -> Parsed[T]:
    """Validate `raw` (JSON text or an already-decoded mapping) as a `model` document.

    Structural problems (types, ranges, unknown fields: all of them) are reported first;
    the cross-field rules run once the structure is sound, and report all they find."""
    text, problems = _as_json(raw)
    if text is None:
        return Parsed(None, problems)
    try:
        document = model.model_validate_json(text, context={DEFER_SEMANTIC_CHECKS: True})
    except ValidationError as error:
        return Parsed(None, problems + _structural_problems(error))
    problems += tuple(document.problems())
    return Parsed(None if problems else document, problems)


def parse_any(raw: bytes | str | Mapping[str, object]) -> Parsed[Document]:
    """Parse a document of whichever kind its `schema` field names."""
    text, problems = _as_json(raw)
    if text is None:
        return Parsed(None, problems)
    schema = _decoded_schema(text)
    model = BY_SCHEMA.get(schema) if isinstance(schema, str) else None
    if model is None:
        known = ", ".join(BY_SCHEMA)
        return Parsed(None, (Problem("schema", f"must be one of {known}"),))
    parsed: Parsed[Document] = parse(model, text)
    return parsed


def _as_json(raw: object) -> tuple[bytes | None, tuple[Problem, ...]]:
    """The input as UTF-8 JSON, or why it cannot be; plus a problem if `schema` is missing."""
    if isinstance(raw, Mapping):
        try:
            text = pydantic_core.to_json(dict(raw))
        except Exception as error:  # any unserialisable object is bad input
            return None, (Problem("", f"not JSON-serialisable: {error}"),)
    elif isinstance(raw, str):
        try:
            text = raw.encode()
        except UnicodeEncodeError as error:  # lone surrogates
            return None, (Problem("", f"not valid Unicode text: {error.reason}"),)
    elif isinstance(raw, bytes):
        text = raw
    else:
        return None, (Problem("", f"expected JSON text or a mapping, got {type(raw).__name__}"),)
    if len(text) > MAX_INPUT_BYTES:
        message = f"{len(text)} bytes is over the {MAX_INPUT_BYTES}-byte input limit"
        return None, (Problem("", message),)
    missing = (Problem("schema", "Field required"),) if _decoded_schema(text) is _MISSING else ()
    return text, missing


_MISSING = object()


def _decoded_schema(text: bytes) -> object:
    """The top-level `schema` value, _MISSING if an object lacks one, None if not an object."""
    try:
        decoded = pydantic_core.from_json(text, allow_inf_nan=False)
    except ValueError:
        return None
    if not isinstance(decoded, dict):
        return None
    return decoded.get("schema", _MISSING)


def _structural_problems(error: ValidationError) -> tuple[Problem, ...]:
    return tuple(
        Problem(join_path(*_readable_loc(detail["loc"])), detail["msg"])
        for detail in error.errors(include_url=False)
    )


def _readable_loc(loc: tuple[str | int, ...]) -> list[str | int]:
    # pydantic marks dict-key errors with a trailing "[key]": say "key" instead.
    return [part if part != "[key]" else "(key)" for part in loc]

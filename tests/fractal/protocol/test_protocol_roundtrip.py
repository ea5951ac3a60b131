"""Every document survives dump -> parse unchanged; no input makes parse raise."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from fractal.protocol import (
    DOCUMENT_TYPES,
    Document,
    Plan,
    PlanAck,
    PlanStatus,
    dump,
    parse,
    parse_any,
    shadow_payload,
    to_jsonable,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fractal.protocol.protocol_strategies import documents

SETTINGS = settings(max_examples=120, deadline=None)
JSON_STRING = re.compile(r'"(?:\\.|[^"\\])*"')

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@SETTINGS
@given(documents)
def test_dump_then_parse_gives_the_same_document(doc: Document) -> None:
    text = dump(doc)

    parsed = parse(type(doc), text)

    assert parsed.problems == ()
    assert parsed.ok
    assert parsed.document == doc
    assert dump(parsed.document) == text
    # The same document arriving as bytes, as decoded JSON, or of a kind not known in advance.
    assert parse(type(doc), text.encode()).document == doc
    assert parse(type(doc), to_jsonable(doc)).document == doc
    assert parse_any(text).document == doc


def _depth(value: object) -> int:
    """Levels of objects and arrays, as the shadow service counts them in a section."""
    if isinstance(value, dict):
        return 1 + max((_depth(child) for child in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(child) for child in value), default=0)
    return 0


@SETTINGS
@given(documents)
def test_wire_form_is_compact_and_within_the_shadow_nesting_limit(doc: Document) -> None:
    text = dump(doc)

    outside_strings = JSON_STRING.sub('""', text)
    assert not any(character.isspace() for character in outside_strings)
    assert ":null" not in outside_strings
    assert json.loads(text) == to_jsonable(doc)
    for section in json.loads(shadow_payload(doc))["state"].values():
        assert _depth(section) <= 6


@SETTINGS
@given(st.sampled_from(DOCUMENT_TYPES), json_values)
def test_random_json_is_reported_not_raised(model: type[Document], value: Any) -> None:
    parsed = parse(model, json.dumps(value))

    assert not parsed.ok
    assert parsed.document is None
    assert parsed.problems


any_text = st.text(st.characters(codec=None) | st.characters(categories=["Cs"]), max_size=200)
"""Text of any code points, lone surrogates included (they cannot even be encoded)."""


@SETTINGS
@given(st.sampled_from(DOCUMENT_TYPES), st.binary(max_size=200) | any_text)
def test_random_bytes_and_text_are_reported_not_raised(
    model: type[Document], raw: bytes | str
) -> None:
    parsed = parse(model, raw)

    assert not parsed.ok
    assert parsed.problems


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], tuple(rest), new)}
    return [
        _replace(child, tuple(rest), new) if i == head else child for i, child in enumerate(value)
    ]


@settings(max_examples=150, deadline=None)
@given(documents, st.data())
def test_mutated_documents_are_either_valid_or_reported(doc: Document, data: st.DataObject) -> None:
    original = to_jsonable(doc)
    path = data.draw(st.sampled_from(_paths(original)))
    mutated = _replace(original, path, data.draw(json_values))

    parsed = parse(type(doc), json.dumps(mutated))

    assert parsed.ok == (parsed.problems == ())
    if parsed.document is not None:
        # Whatever parse accepts must pass every check and survive another round trip.
        assert parsed.document.problems() == []
        assert parse(type(doc), dump(parsed.document)).document == parsed.document


def test_hostile_inputs_are_reported_not_raised() -> None:
    nested = "[" * 100_000 + "]" * 100_000
    cyclic: dict[str, object] = {"schema": "fractal.plan.v1"}
    cyclic["self"] = cyclic
    hostile: list[Any] = [
        nested,
        '{"schema":"fractal.plan.v1","slots":' + "9" * 5000 + "}",
        '{"schema":"fractal.plan.v1","slots":1e400}',
        '{"schema":"fractal.plan.v1","slots":NaN}',
        "[1, 2]",
        '"plan"',
        "",
        b"\xff\xfe",
        cyclic,
        {"schema": "fractal.plan.v1", "issued": object()},
        {"schema": math.nan},
        42,
        '{"schema":"fractal.plan.v1","id":"' + "x" * 2_000_000 + '"}',
        "\ud800",
    ]
    for raw in hostile:
        parsed = parse(Plan, raw)
        assert not parsed.ok, raw
        assert parsed.problems, raw


def test_every_structural_problem_is_reported_with_its_path() -> None:
    raw = {
        "schema": "fractal.plan_ack.v2",
        "id": "plan 1",
        "status": "maybe",
        "ts": "2026-11-22T10:00:00",
        "colour": "red",
    }

    problems = {problem.path for problem in parse(PlanAck, raw).problems}

    assert problems == {"schema", "id", "status", "ts", "colour"}


def test_missing_schema_is_a_problem_even_when_everything_else_is_right() -> None:
    ack = PlanAck(id="p1", status=PlanStatus.ACCEPTED, ts=datetime(2026, 1, 1, tzinfo=UTC))
    raw = to_jsonable(ack)
    del raw["schema"]

    parsed = parse(PlanAck, raw)

    assert not parsed.ok
    assert [problem.path for problem in parsed.problems] == ["schema"]

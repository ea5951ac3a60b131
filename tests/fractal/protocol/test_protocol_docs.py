"""The published contract matches the code: JSON Schemas and the examples in docs/protocol.md."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from fractal.protocol import (
    BY_SCHEMA,
    DOCUMENT_TYPES,
    PlanAck,
    dump,
    parse,
    replacing_payload,
    shadow_payload,
    shadow_size,
)
from fractal.protocol.schemas import json_schemas, main

from tests.fractal.protocol.protocol_examples import DOCS, EXAMPLES, example
from tests.fractal.protocol.protocol_strategies import full_home_plan


def test_committed_schemas_are_generated_from_the_models() -> None:
    generated = json_schemas()
    committed = {name: (DOCS / "schemas" / name).read_text("utf-8") for name in generated}

    assert committed == generated, (
        "docs/schemas is stale: run `python -m fractal.protocol.schemas docs/schemas`"
    )


def test_schema_command_writes_one_file_per_document(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        f"{model.KIND}.schema.json" for model in DOCUMENT_TYPES
    )
    plan_schema = json.loads((tmp_path / "plan.schema.json").read_text("utf-8"))
    assert plan_schema["required"][0] == "schema"
    assert plan_schema["properties"]["schema"]["const"] == "fractal.plan.v1"
    assert plan_schema["additionalProperties"] is False
    assert main([]) == 2


@pytest.mark.parametrize(("where", "document"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_every_example_in_the_docs_is_a_valid_document(where: str, document: object) -> None:
    assert isinstance(document, dict)
    model = BY_SCHEMA[str(document["schema"])]

    parsed = parse(model, document)

    assert parsed.problems == (), where


def test_the_docs_show_every_kind_of_document() -> None:
    shown = {document["schema"] for _, document in EXAMPLES if isinstance(document, dict)}

    assert shown == set(BY_SCHEMA)


def test_the_docs_state_the_measured_plan_size() -> None:

    size = shadow_size(full_home_plan(1800, random.Random(2026)))
    assert f"**{size:,} bytes** wrapped" in (DOCS / "protocol.md").read_text("utf-8")


def test_replacing_a_plan_deletes_what_the_new_one_lacks() -> None:
    old = example("fractal.plan_ack.v1", status="rejected")
    new = parse(PlanAck, example("fractal.plan_ack.v1", status="executing")).document
    assert new is not None

    payload = json.loads(replacing_payload(new, old))
    ack = payload["state"]["reported"]["plan"]

    assert ack["reason"] is None  # present in the old ack only: deleted
    assert ack["status"] == "executing"
    assert {key: value for key, value in ack.items() if value is not None} == json.loads(dump(new))
    assert replacing_payload(new, None) == shadow_payload(new)

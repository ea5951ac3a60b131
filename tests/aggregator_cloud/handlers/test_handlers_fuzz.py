"""Whatever arrives, the handlers and the dispatcher answer with a result and never raise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator_cloud.handlers import (
    THING_NAME,
    handle_plan_documents,
    handle_shadow_documents,
    handle_telemetry_batch,
)
from aggregator_cloud.local.rules import RulesDispatcher
from aggregator_cloud.store import SqliteStore
from tests.support.fleet_documents import batch, descriptor, documents_message, reading

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def near_miss(document: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid document with one top-level field replaced by any JSON value."""
    return st.builds(
        lambda key, value: {**document, key: value}, st.sampled_from(sorted(document)), json_values
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "fleet.sqlite") as opened:
        yield opened


@FUZZ
@given(st.one_of(json_values, near_miss(batch("n1", 1, [reading(1), reading(2)]))))
def test_telemetry_handler_answers_anything(store: SqliteStore, document: Any) -> None:
    event = {**document, THING_NAME: "n1"} if isinstance(document, dict) else document

    result = handle_telemetry_batch(event, store)

    assert result.ok or result.stored == 0
    assert result.ok or result.problems


@FUZZ
@given(
    st.one_of(
        json_values,
        near_miss(documents_message(reported={"node": descriptor("n1")})),
        st.builds(lambda value: documents_message(reported={"node": value}), json_values),
        st.builds(lambda value: documents_message(reported={"telemetry": value}), json_values),
        st.builds(lambda value: documents_message(reported={"plan": value}), json_values),
        st.builds(lambda value: documents_message(desired={"plan": value}), json_values),
    )
)
def test_shadow_handlers_answer_anything(store: SqliteStore, message: Any) -> None:
    event = {**message, THING_NAME: "n1"} if isinstance(message, dict) else message

    for handler in (handle_shadow_documents, handle_plan_documents):
        result = handler(event, store)
        assert result.ok or result.problems


@FUZZ
@given(
    st.sampled_from(
        [
            "$aws/rules/fractal_telemetry/n1",
            "$aws/things/n1/shadow/update/documents",
            "$aws/things/n1/shadow/name/plan/update/documents",
        ]
    ),
    st.binary(max_size=64) | json_values.map(lambda value: repr(value).encode()),
)
def test_the_dispatcher_answers_any_payload(store: SqliteStore, topic: str, payload: bytes) -> None:
    dispatcher = RulesDispatcher(store, port=1)

    result = dispatcher.dispatch(topic, payload)

    assert result is not None
    assert dispatcher.errors == 0
    assert result.ok or sum(dispatcher.refused.values()) == 1

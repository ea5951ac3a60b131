"""Whatever arrives, the Lambdas answer (JSON, never an exception) and lose nothing: a refused
event is kept in S3 with its reasons, a garbage plan request goes back to the queue, and the
API answers 4xx."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator_cloud.lambdas.api import handler as api_handler
from aggregator_cloud.lambdas.ingest import shadow_handler, telemetry_handler
from aggregator_cloud.lambdas.plans import status_handler, worker_handler
from tests.aggregator_cloud.lambdas.conftest import Aws
from tests.support.fleet_documents import ack, batch, descriptor, documents_message, reading

FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
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


def with_thing(value: Any) -> Any:
    return {**value, "thing_name": "n1"} if isinstance(value, dict) else value


def check_answer(aws: Aws, event: Any, answer: dict[str, Any]) -> None:
    """A JSON answer; a refused event kept in S3, as it came, with the reasons."""
    json.dumps(answer, allow_nan=False)
    if answer["ok"]:
        return
    assert answer["problems"]
    kept = json.loads(aws.read("HISTORY_BUCKET", answer["kept"]))
    assert kept["problems"] == list(answer["problems"])
    assert kept["event"] == json.loads(json.dumps(event, default=repr))


@FUZZ
@given(st.one_of(json_values, near_miss(batch("n1", 1, [reading(1), reading(2)]))))
def test_the_telemetry_lambda_answers_anything(aws: Aws, document: Any) -> None:
    event = with_thing(document)
    check_answer(aws, event, telemetry_handler(event))


@FUZZ
@given(
    st.one_of(
        json_values,
        near_miss(documents_message(reported={"node": descriptor("n1")})),
        st.builds(lambda value: documents_message(reported={"node": value}), json_values),
        st.builds(lambda value: documents_message(reported={"telemetry": value}), json_values),
        st.builds(
            lambda value: documents_message(reported={"replan_requested": value}), json_values
        ),
    )
)
def test_the_shadow_lambda_answers_anything(aws: Aws, message: Any) -> None:
    event = with_thing(message)
    check_answer(aws, event, shadow_handler(event))


@FUZZ
@given(
    st.one_of(
        json_values,
        near_miss(documents_message(reported={"plan": ack("p-1", "expired", 5)})),
        st.builds(lambda value: documents_message(reported={"plan": value}), json_values),
        st.builds(lambda value: documents_message(desired={"plan": value}), json_values),
    )
)
def test_the_status_lambda_answers_anything(aws: Aws, message: Any) -> None:
    event = with_thing(message)
    check_answer(aws, event, status_handler(event))


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=20), json_values.map(json.dumps)), max_size=4))
def test_the_worker_returns_garbage_to_the_queue(aws: Aws, bodies: list[str]) -> None:
    records = [{"messageId": f"m-{index}", "body": body} for index, body in enumerate(bodies)]

    answer = worker_handler({"Records": records})

    assert answer == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.sampled_from(["/fleet", "/nodes/n1", "/nodes/n1/plan", "/flex-events", "/x"]),
    body=st.none() | st.text(max_size=30) | json_values.map(json.dumps),
    query=st.dictionaries(st.sampled_from(["limit", "tag", "cursor"]), st.text(max_size=10)),
)
def test_the_api_answers_anything_with_json(
    aws: Aws, method: str, path: str, body: str | None, query: dict[str, str]
) -> None:
    event: dict[str, Any] = {
        "rawPath": path,
        "requestContext": {"http": {"method": method}, "stage": "$default"},
        "queryStringParameters": query,
    }
    if body is not None:
        event["body"] = body

    answer = api_handler(event)

    assert 200 <= answer["statusCode"] < 500
    payload = json.loads(answer["body"])
    if answer["statusCode"] >= 400:
        assert payload["error"]

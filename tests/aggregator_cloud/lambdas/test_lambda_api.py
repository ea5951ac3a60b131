"""The HTTP API Lambda with API Gateway HTTP API (payload 2.0) events, against moto and the
shadow service: fleet pages, a node, its plan, DSO flexibility events and clear errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from aggregator_cloud.lambdas.api import handler
from aggregator_cloud.lambdas.ingest import shadow_handler
from aggregator_cloud.lambdas.plans import status_handler
from tests.aggregator_cloud.lambdas.conftest import Aws
from tests.support.fleet_documents import ack, descriptor, documents_message, plan, snapshot


def http(method: str, path: str, body: Any = None, stage: str = "$default", **query: str) -> Any:
    """Call the API as API Gateway would; the status and the decoded JSON body."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path if stage == "$default" else f"/{stage}{path}",
        "rawQueryString": "&".join(f"{key}={value}" for key, value in query.items()),
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": path}, "stage": stage},
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    response = handler(event)
    assert response["headers"]["content-type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def describe(node: str, street: str = "mill-lane", **reported: Any) -> None:
    document = descriptor(node, f"Home {node}", {"street": street}, capacity_wh=5000)
    message = documents_message(reported={"node": document, **reported})
    shadow_handler({**message, "thing_name": node})


def flex_event(event_id: str = "ssen-2026-03-01-1", power_w: float = 20000) -> dict[str, Any]:
    return {
        "schema": "fractal.flex_event.v1",
        "id": event_id,
        "issued": "2026-03-01T09:00:00Z",
        "source": "SSEN",
        "group": {"street": "mill-lane"},
        "direction": "down",
        "power_w": power_w,
        "start": "2026-03-01T17:00:00Z",
        "end": "2026-03-01T19:00:00Z",
    }


def test_the_fleet_comes_in_pages(aws: Aws) -> None:
    nodes = [f"home-{index:02d}" for index in range(5)]
    for node in nodes:
        describe(node, telemetry=snapshot(node, 3, soc_pct=61.5))

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        status, body = http("GET", "/fleet", **query)
        assert status == 200
        seen.extend(row["node"] for row in body["nodes"])
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break

    assert sorted(seen) == nodes
    assert pages >= 3
    _, body = http("GET", "/fleet")
    row = body["nodes"][0]
    assert row["tags"] == {"street": "mill-lane"}
    assert row["latest"]["soc_pct"] == 61.5
    assert row["plan"]["status"] is None


def test_a_tag_group(aws: Aws) -> None:
    describe("home-1", street="mill-lane")
    describe("home-2", street="high-street")

    status, body = http("GET", "/fleet", tag="street=high-street")

    assert status == 200
    assert [row["node"] for row in body["nodes"]] == ["home-2"]


def test_one_node(aws: Aws) -> None:
    describe("home-1", telemetry=snapshot("home-1", 4, grid_w=-120.25))

    status, body = http("GET", "/nodes/home-1")

    assert status == 200
    assert body["name"] == "Home home-1"
    assert body["descriptor"]["devices"][0]["envelope"]["capacity_wh"] == 5000
    assert body["latest"]["grid_w"] == -120.25
    assert body["last_seen"] is not None


@pytest.mark.usefixtures("iot_data_endpoint")
def test_a_nodes_plan_and_its_status(aws: Aws, shadow_service: Any) -> None:
    describe("api-plan-1")
    document = plan("api-plan-1", "p-7")
    iot_data = boto3.client("iot-data", endpoint_url=shadow_service.http_endpoint)
    iot_data.update_thing_shadow(
        thingName="api-plan-1",
        shadowName="plan",
        payload=json.dumps({"state": {"desired": {"plan": document}}}),
    )
    message = documents_message(
        desired={"plan": document}, reported={"plan": ack("p-7", "accepted", 9)}
    )
    status_handler({**message, "thing_name": "api-plan-1"})

    status, body = http("GET", "/nodes/api-plan-1/plan")

    assert status == 200
    assert body["plan"] == document
    assert body["status"]["status"] == "accepted"
    assert body["status"]["ack_id"] == "p-7"


@pytest.mark.usefixtures("iot_data_endpoint")
def test_a_node_without_a_plan(aws: Aws) -> None:
    describe("api-plan-none")

    assert http("GET", "/nodes/api-plan-none/plan") == (
        200,
        {
            "node": "api-plan-none",
            "plan": None,
            "status": http("GET", "/nodes/api-plan-none")[1]["plan"],
        },
    )


def test_a_flexibility_event_is_stored_once(aws: Aws) -> None:
    created = http("POST", "/flex-events", flex_event())
    again = http("POST", "/flex-events", flex_event())
    clash = http("POST", "/flex-events", flex_event(power_w=5000))

    assert created == (
        201,
        {
            "id": "ssen-2026-03-01-1",
            "stored": "flex-events/ssen-2026-03-01-1.json",
            "created": True,
        },
    )
    assert again[0] == 200
    assert again[1]["created"] is False
    assert clash[0] == 409
    stored = json.loads(aws.read("INPUTS_BUCKET", "flex-events/ssen-2026-03-01-1.json"))
    assert stored["power_w"] == 20000
    assert stored["group"] == {"street": "mill-lane"}


def test_a_base64_body(aws: Aws) -> None:
    body = base64.b64encode(json.dumps(flex_event("b64")).encode()).decode()
    event = {
        "rawPath": "/flex-events",
        "requestContext": {"http": {"method": "POST"}, "stage": "$default"},
        "body": body,
        "isBase64Encoded": True,
    }
    assert handler(event)["statusCode"] == 201


def test_a_named_stage_is_stripped(aws: Aws) -> None:
    describe("home-1")
    assert http("GET", "/nodes/home-1", stage="prod")[0] == 200


@pytest.mark.parametrize(
    ("call", "status", "message"),
    [
        (("GET", "/nowhere", None), 404, "no route /nowhere"),
        (("GET", "/nodes/home-404", None), 404, "no node 'home-404'"),
        (("GET", "/nodes/home-404/plan", None), 404, "no node 'home-404'"),
        (("DELETE", "/fleet", None), 405, "DELETE is not allowed on /fleet; use GET"),
        (("POST", "/flex-events", None), 400, "the request has no body: send a JSON document"),
        (("POST", "/flex-events", "{not json"), 400, "the body is not JSON"),
        (("POST", "/flex-events", "x" * 70_000), 413, "the body is larger than 65536 bytes"),
    ],
)
def test_clear_errors(aws: Aws, call: tuple[str, str, Any], status: int, message: str) -> None:
    answer = http(*call)

    assert answer[0] == status
    assert answer[1]["error"].startswith(message)
    assert aws.objects("INPUTS_BUCKET") == []


def test_an_invalid_flexibility_event_says_why(aws: Aws) -> None:
    event = {**flex_event(), "power_w": -5, "end": "2026-03-01T16:00:00Z", "colour": "red"}

    status, body = http("POST", "/flex-events", event)

    assert status == 422
    assert body["error"] == "not a valid flexibility event"
    assert any("power_w" in problem for problem in body["problems"])
    assert any("colour" in problem for problem in body["problems"])
    assert aws.objects("INPUTS_BUCKET") == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": "0"}, "limit must be between 1 and 200"),
        ({"limit": "ten"}, "limit must be a whole number"),
        ({"tag": "street"}, "tag must be key=value"),
        ({"cursor": "!!!"}, "cursor '!!!' is not one this API handed out"),
    ],
)
def test_bad_queries(aws: Aws, query: dict[str, str], message: str) -> None:
    status, body = http("GET", "/fleet", **query)

    assert status == 400
    assert body["error"].startswith(message)


def test_not_an_api_event(aws: Aws) -> None:
    response = handler({"hello": "world"})
    assert response["statusCode"] == 400
    assert "HTTP API" in json.loads(response["body"])["error"]

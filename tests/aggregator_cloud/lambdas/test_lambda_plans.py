"""The planning Lambdas against moto and the shadow service: the schedule's fan-out through
SQS (paginated fleet, batches, retried entries), the worker writing plan shadows (with partial
batch failures), and plan status with re-planning."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from fractal.protocol import Plan, parse

from aggregator_cloud.lambdas import environment
from aggregator_cloud.lambdas.fanout import FanOutIncomplete, enqueue
from aggregator_cloud.lambdas.ingest import shadow_handler
from aggregator_cloud.lambdas.plans import schedule_handler, status_handler, worker_handler
from tests.aggregator_cloud.lambdas.conftest import NAMES, Aws
from tests.support.fleet_documents import ack, descriptor, documents_message, plan


def register(aws: Aws, nodes: list[str]) -> None:
    with aws.table("FLEET_TABLE").batch_writer() as writer:
        for node in nodes:
            writer.put_item(Item={"node": node, "name": node, "tags": {}, "descriptor": {}})


def s3_event(key: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated",
                "s3": {"bucket": {"name": NAMES["INPUTS_BUCKET"]}, "object": {"key": key}},
            }
        ]
    }


SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


def inputs_document(start: datetime | None = None, hours: int = 49) -> dict[str, Any]:
    """Tariff and load from the hour before now, for `hours` hours."""
    begin = start or datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=1
    )
    slots = hours * 2

    def series(values: list[float]) -> dict[str, Any]:
        return {"start": begin.isoformat(), "step_seconds": 1800, "values": values}

    return {
        "schema": "fractal.planning_inputs.v1",
        "import_p_per_kwh": series([5.0 if slot % 48 < 12 else 30.0 for slot in range(slots)]),
        "export_p_per_kwh": series([4.0] * slots),
        "load_kw": series([0.4] * slots),
    }


def put_inputs(aws: Aws, key: str, document: object) -> None:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    aws.s3.put_object(Bucket=NAMES["INPUTS_BUCKET"], Key=key, Body=body)


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m-{index}", "body": body, "eventSource": "aws:sqs"}
            for index, body in enumerate(bodies)
        ]
    }


def request(*nodes: str) -> str:
    return json.dumps(
        {
            "schema": "fractal.plan_request.v1",
            "nodes": list(nodes),
            "reason": "schedule",
            "requested": datetime.now(UTC).isoformat(),
        }
    )


def describe(node: str) -> None:
    """The node's first descriptor, through the shadow Lambda."""
    document = descriptor(node, f"Home {node}", {"street": "mill-lane"}, capacity_wh=5000)
    shadow_handler({**documents_message(reported={"node": document}), "thing_name": node})


# --- schedule ------------------------------------------------------------------------------


def test_the_schedule_queues_every_node_once_in_batches(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAN_BATCH_SIZE", "7")
    nodes = [f"home-{index:05d}" for index in range(2345)]  # more than one Scan page
    register(aws, nodes)

    result = schedule_handler(SCHEDULED)

    assert result == {"queued_nodes": 2345, "messages": math.ceil(2345 / 7), "problems": []}
    bodies = [message["decoded"] for message in aws.messages()]
    assert len(bodies) == math.ceil(2345 / 7)
    assert all(1 <= len(body["nodes"]) <= 7 for body in bodies)
    assert all(body["reason"] == "schedule" for body in bodies)
    queued = [node for body in bodies for node in body["nodes"]]
    assert sorted(queued) == nodes


def test_new_inputs_start_a_planning_round(aws: Aws) -> None:
    register(aws, ["home-1", "home-2"])
    put_inputs(aws, "inputs/tariff.json", inputs_document())

    result = schedule_handler(s3_event("inputs/tariff.json"))

    assert result["queued_nodes"] == 2
    assert [message["decoded"]["reason"] for message in aws.messages()] == ["inputs"]


def test_broken_inputs_are_refused_and_nothing_is_queued(aws: Aws) -> None:
    register(aws, ["home-1"])
    broken = {**inputs_document(), "import_p_per_kwh": {"start": "soon", "values": []}}
    put_inputs(aws, "inputs/tariff.json", broken)

    result = schedule_handler(s3_event("inputs/tariff.json"))

    assert result["queued_nodes"] == 0
    assert any("import_p_per_kwh" in problem for problem in result["problems"])
    assert all("s3://fractal-inputs/inputs/tariff.json" in text for text in result["problems"])
    assert aws.messages() == []


def fail_first_calls(client: Any, calls: int, *, sender_fault: bool = False) -> list[int]:
    """Make SQS answer the first `calls` SendMessageBatch calls with every entry failed (and
    nothing sent), as it does when throttled; returns the entries counted per call."""
    seen: list[int] = []
    entries: list[Any] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        seen.append(len(params["Entries"]))
        entries[:] = params["Entries"]

    def answer(**_: Any) -> Any:
        if len(seen) > calls:
            return None  # the real call
        failed = [
            {"Id": entry["Id"], "SenderFault": sender_fault, "Code": "ThrottlingException"}
            for entry in entries
        ]
        return AWSResponse("", 200, {}, None), {"Successful": [], "Failed": failed}

    client.meta.events.register("before-parameter-build.sqs.SendMessageBatch", count)
    client.meta.events.register("before-call.sqs.SendMessageBatch", answer)
    return seen


def test_failed_entries_are_sent_again(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAN_BATCH_SIZE", "1")
    register(aws, [f"home-{index}" for index in range(12)])
    calls = fail_first_calls(environment.sqs(), 1)

    result = schedule_handler(SCHEDULED)

    assert result["messages"] == 12
    assert calls == [10, 10, 2]  # 10 failed, sent again, then the last 2
    assert sorted(message["decoded"]["nodes"][0] for message in aws.messages()) == sorted(
        f"home-{index}" for index in range(12)
    )


def test_entries_that_keep_failing_fail_the_invocation(aws: Aws) -> None:
    sqs = environment.sqs()
    calls = fail_first_calls(sqs, 100)
    with pytest.raises(FanOutIncomplete, match="3 plan requests still failed after 5 attempts"):
        enqueue(
            sqs,
            aws.queue_url,
            ["a", "b", "c"],
            batch_size=1,
            reason="schedule",
            requested=datetime.now(UTC),
            sleep=lambda _: None,
        )
    assert calls == [3] * 5


def test_entries_sqs_refuses_are_not_retried(aws: Aws) -> None:
    calls = fail_first_calls(environment.sqs(), 100, sender_fault=True)
    with pytest.raises(FanOutIncomplete, match="SQS refused 1 plan requests"):
        enqueue(
            environment.sqs(),
            aws.queue_url,
            ["a"],
            batch_size=1,
            reason="schedule",
            requested=datetime.now(UTC),
        )
    assert calls == [1]


# --- worker --------------------------------------------------------------------------------


@pytest.mark.usefixtures("iot_data_endpoint")
def test_the_worker_writes_each_nodes_plan_shadow(aws: Aws, shadow_service: Any) -> None:
    nodes = [f"home-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for node in nodes:
        describe(node)
    aws.messages()  # a first descriptor asks for a plan: not this test's subject
    put_inputs(aws, "inputs/tariff.json", inputs_document())

    result = worker_handler(sqs_event(request(*nodes[:2]), request(nodes[2], nodes[0])))

    assert result == {"batchItemFailures": []}
    iot_data = boto3.client("iot-data", endpoint_url=shadow_service.http_endpoint)
    for node in nodes:
        shadow = json.loads(
            iot_data.get_thing_shadow(thingName=node, shadowName="plan")["payload"].read()
        )
        parsed = parse(Plan, shadow["state"]["desired"]["plan"])
        assert parsed.document is not None, parsed.problems
        assert parsed.document.node == node
        assert "battery" in parsed.document.devices
    # node 0 was in both messages: planned once, so its shadow was written once
    first = json.loads(
        iot_data.get_thing_shadow(thingName=nodes[0], shadowName="plan")["payload"].read()
    )
    assert first["version"] == 1


@pytest.mark.usefixtures("iot_data_endpoint")
def test_garbage_messages_go_back_to_the_queue(aws: Aws) -> None:
    put_inputs(aws, "inputs/tariff.json", inputs_document())
    bodies = [
        "not json",
        json.dumps({"nodes": ["a"]}),
        json.dumps({**json.loads(request("a")), "nodes": []}),
    ]

    result = worker_handler(sqs_event(*bodies))

    assert result == {"batchItemFailures": [{"itemIdentifier": f"m-{i}"} for i in range(3)]}


@pytest.mark.usefixtures("iot_data_endpoint")
def test_a_node_that_cannot_be_planned_is_not_retried(aws: Aws) -> None:
    put_inputs(aws, "inputs/tariff.json", inputs_document())

    result = worker_handler(sqs_event(request("never-described")))

    assert result == {"batchItemFailures": []}


def test_a_failed_shadow_write_returns_the_message(aws: Aws) -> None:
    """IOT_DATA_ENDPOINT points at a closed port: the write fails, the message comes back."""
    node = f"home-{uuid.uuid4().hex[:8]}"
    describe(node)
    put_inputs(aws, "inputs/tariff.json", inputs_document())

    result = worker_handler(sqs_event(request("never-described"), request(node)))

    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


# --- status --------------------------------------------------------------------------------


def plan_event(node: str, desired: Any = None, reported: Any = None) -> dict[str, Any]:
    return {**documents_message(reported=reported, desired=desired), "thing_name": node}


def test_the_nodes_answer_is_recorded(aws: Aws) -> None:
    status_handler(plan_event("home-1", desired={"plan": plan("home-1", "p-1")}))
    pending = aws.table("LATEST_TABLE").get_item(Key={"node": "home-1"})["Item"]
    result = status_handler(plan_event("home-1", reported={"plan": ack("p-1", "accepted", 5)}))

    assert pending["plan_desired_id"] == "p-1"
    assert "plan_ack_id" not in pending
    assert result["ok"]
    assert result["replan"] == []
    item = aws.table("LATEST_TABLE").get_item(Key={"node": "home-1"})["Item"]
    assert (item["plan_ack_id"], item["plan_ack_status"]) == ("p-1", "accepted")
    assert aws.messages() == []


def test_an_expired_plan_is_planned_again(aws: Aws) -> None:
    result = status_handler(plan_event("home-1", reported={"plan": ack("p-1", "expired", 5)}))

    assert result["replan"] == ["home-1"]
    (message,) = aws.messages()
    assert message["decoded"]["nodes"] == ["home-1"]
    assert message["decoded"]["reason"] == "replan"


def test_a_replan_request_queues_the_node(aws: Aws) -> None:
    reported = {"replan_requested": "2026-03-01T12:05:00Z"}
    result = shadow_handler({**documents_message(reported=reported), "thing_name": "home-3"})

    assert result["replan"] == ["home-3"]
    assert [message["decoded"]["nodes"] for message in aws.messages()] == [["home-3"]]


def test_a_garbage_ack_is_refused_and_kept(aws: Aws) -> None:
    result = status_handler(plan_event("home-1", reported={"plan": {"status": "maybe"}}))

    assert not result["ok"]
    assert result["kept"].startswith("refused/")
    assert "/plan/" in result["kept"]
    latest = aws.table("LATEST_TABLE").get_item(Key={"node": "home-1"})["Item"]
    assert not [name for name in latest if name.startswith("plan_")]

"""The template's wiring, run: the schedule Lambda gets exactly the settings the template gives
it, the storage the template declares (made in moto from the template's own properties), and
the events its two triggers produce (the EventBridge schedule, and S3's "Object Created" through
the rule's input transformer). A broken inputs file is refused; new inputs plan the fleet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from aggregator_cloud.lambdas import environment
from aggregator_cloud.lambdas.plans import schedule_handler
from tests.aggregator_cloud.aws.moto_stack import create_storage
from tests.aggregator_cloud.aws.template_model import functions, properties, refers_to, template

REGION = "eu-west-2"
NODES = [f"home-{number:03d}" for number in range(120)]


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The template's tables, buckets and plan queue in moto; the function's settings set from
    its Environment in the template. Returns the physical name of each resource."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        stack = create_storage(NODES)
        physical = stack.names
        variables = functions()["PlanScheduleFunction"]["Environment"]["Variables"]
        for variable, value in variables.items():
            target = str(refers_to(value))
            parameter = template()["Parameters"].get(target)
            monkeypatch.setenv(
                variable, str(parameter["Default"]) if parameter else physical[target]
            )
        environment.forget_clients()
        yield physical
    environment.forget_clients()


def object_created(bucket: str, key: str) -> Any:
    """What the NewInputs rule hands the function for an S3 "Object Created" event."""
    rule = functions()["PlanScheduleFunction"]["Events"]["NewInputs"]["Properties"]
    transformer = rule["InputTransformer"]
    assert transformer["InputPathsMap"] == {
        "bucket": "$.detail.bucket.name",
        "key": "$.detail.object.key",
    }
    text = transformer["InputTemplate"].replace("<bucket>", bucket).replace("<key>", key)
    return json.loads(text)


def queued(queue_url: str) -> list[str]:
    sqs = boto3.client("sqs")
    nodes: list[str] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            nodes.extend(json.loads(message["Body"])["nodes"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return nodes


def test_the_schedule_plans_every_node_in_batches_of_the_parameter(
    deployed: dict[str, str],
) -> None:
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    answer = schedule_handler(scheduled, None)
    batch = template()["Parameters"]["PlanBatchSize"]["Default"]
    assert answer["queued_nodes"] == len(NODES)
    assert answer["messages"] == -(-len(NODES) // batch)
    assert sorted(queued(deployed["PlanQueue"])) == NODES


def test_a_new_flexibility_event_plans_the_fleet(deployed: dict[str, str]) -> None:
    event = object_created(deployed["InputsBucket"], "flex-events/dso-2026-11-22.json")
    answer = schedule_handler(event, None)
    assert answer["problems"] == []
    assert sorted(queued(deployed["PlanQueue"])) == NODES


def test_a_broken_inputs_file_is_refused_and_nothing_is_queued(
    deployed: dict[str, str],
) -> None:
    bucket = deployed["InputsBucket"]
    boto3.client("s3").put_object(Bucket=bucket, Key="inputs/tariff.json", Body=b"{not json")
    answer = schedule_handler(object_created(bucket, "inputs/tariff.json"), None)
    assert answer["queued_nodes"] == 0
    assert answer["problems"]
    assert all(f"s3://{bucket}/inputs/tariff.json" in problem for problem in answer["problems"])
    assert queued(deployed["PlanQueue"]) == []


def test_the_rule_selects_only_the_objects_that_start_planning() -> None:
    pattern = functions()["PlanScheduleFunction"]["Events"]["NewInputs"]["Properties"]["Pattern"]
    assert pattern["detail-type"] == ["Object Created"]
    assert refers_to(pattern["detail"]["bucket"]["name"][0]) == "InputsBucket"
    assert pattern["detail"]["object"]["key"] == [{"prefix": "inputs/"}, {"prefix": "flex-events/"}]
    assert properties("InputsBucket")["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }

"""AWS for the Lambda tests: moto (DynamoDB, S3, SQS) in process, and our shadow service for
`iot-data` (moto lets requests to other endpoints through).

The tables, buckets and queue are created the way the template declares them (the key schema
in aggregator_cloud/lambdas/dynamo.py) and handed to the Lambdas through the same environment
variables the template sets. Each test gets a fresh moto account.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from aggregator_cloud.lambdas import environment
from tests.support.local_aggregator import LocalAggregator

REGION = "eu-west-2"
NAMES = {
    "LATEST_TABLE": "fractal-latest",
    "FLEET_TABLE": "fractal-fleet",
    "HISTORY_BUCKET": "fractal-history",
    "INPUTS_BUCKET": "fractal-inputs",
}


@dataclass
class Aws:
    """The moto account the Lambdas run against, with clients for the test's own checks."""

    dynamodb: Any
    s3: Any
    sqs: Any
    queue_url: str

    def table(self, variable: str) -> Any:
        return self.dynamodb.Table(NAMES[variable])

    def objects(self, bucket_variable: str, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=NAMES[bucket_variable], Prefix=prefix
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, bucket_variable: str, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=NAMES[bucket_variable], Key=key)["Body"].read()
        return body

    def messages(self) -> list[dict[str, Any]]:
        """Every message on the plan queue (received, so gone from it), bodies decoded."""
        found: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            batch = response.get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append({**message, "decoded": json.loads(message["Body"])})
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "IOT_DATA_ENDPOINT": "http://127.0.0.1:9",  # tests that plan use the shadow service
        **NAMES,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PLAN_BATCH_SIZE", raising=False)
    environment.forget_clients()
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        for variable in ("LATEST_TABLE", "FLEET_TABLE"):
            dynamodb.create_table(
                TableName=NAMES[variable],
                KeySchema=[{"AttributeName": "node", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "node", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        s3 = boto3.client("s3", region_name=REGION)
        for variable in ("HISTORY_BUCKET", "INPUTS_BUCKET"):
            s3.create_bucket(
                Bucket=NAMES[variable], CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="fractal-plan")["QueueUrl"]
        monkeypatch.setenv("PLAN_QUEUE_URL", queue_url)
        yield Aws(dynamodb, s3, sqs, queue_url)
    environment.forget_clients()


@pytest.fixture(scope="session")
def shadow_service() -> Iterator[LocalAggregator]:
    """The embedded aggregator (mosquitto + shadow service): `iot-data` for the Lambdas."""
    with LocalAggregator.started() as running:
        yield running


@pytest.fixture
def iot_data_endpoint(
    aws: Aws,
    shadow_service: LocalAggregator,
    socket_enabled: None,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """Point the Lambdas' `iot-data` client (in the moto account `aws`) at the shadow service."""
    monkeypatch.setenv("IOT_DATA_ENDPOINT", shadow_service.http_endpoint)
    environment.forget_clients()
    return shadow_service.http_endpoint

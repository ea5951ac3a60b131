"""The Lambdas' settings (environment variables) and AWS clients, made once per container.

Every name the template sets is read here, and nowhere else:

* `LATEST_TABLE`, `FLEET_TABLE`: the DynamoDB tables (see `aggregator_cloud.lambdas.dynamo`).
* `HISTORY_BUCKET`: telemetry history as Parquet (see `aggregator_cloud.lambdas.history`).
* `INPUTS_BUCKET`: planning inputs (`inputs/*.json`) and DSO flexibility events
  (`flex-events/<id>.json`).
* `PLAN_QUEUE_URL`: the SQS queue the plan worker reads node batches from.
* `IOT_DATA_ENDPOINT`: the account's IoT data endpoint (`https://<prefix>-ats.iot.<region>.
  amazonaws.com`); in tests, the local shadow service.
* `RETENTION_DAYS`: how long history and refused events are kept; the bucket's lifecycle
  rules expire `history/` and `refused/` after it (read here only to be checked).
* `PLAN_BATCH_SIZE`: nodes per SQS message (one worker call plans one message's nodes).

Clients are built lazily and kept for the container's life (a warm Lambda reuses them); the
endpoints come from the environment (boto3 reads `AWS_ENDPOINT_URL_<SERVICE>` itself), so
tests point them at moto and at the shadow service without any hook in this code.
`forget_clients()` drops them when the environment changes (tests only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

import boto3  # type: ignore[import-untyped]  # no stubs in the environment
from botocore.config import Config  # type: ignore[import-untyped]

DEFAULT_PLAN_BATCH_SIZE: Final = 25
"""Nodes per worker call: ~25 LPs of ~1 ms plus two shadow calls each, well inside a Lambda
timeout, while a 100 000-node fleet is 4 000 messages."""
MAX_PLAN_BATCH_SIZE: Final = 500
DEFAULT_RETENTION_DAYS: Final = 400

_RETRIES: Final = Config(retries={"mode": "standard", "max_attempts": 5})
"""Throttling (the 20 requests/s per thing shadow limit, DynamoDB bursts) is retried with
back-off by botocore before a call fails."""


class MissingSetting(RuntimeError):
    """An environment variable the function needs is not set: a deployment error."""


@dataclass(frozen=True)
class Settings:
    latest_table: str
    fleet_table: str
    history_bucket: str
    inputs_bucket: str
    plan_queue_url: str
    iot_data_endpoint: str
    retention_days: int
    plan_batch_size: int


def settings() -> Settings:
    """The settings from the environment; an unset name raises MissingSetting when used."""
    return Settings(
        latest_table=_text("LATEST_TABLE"),
        fleet_table=_text("FLEET_TABLE"),
        history_bucket=_text("HISTORY_BUCKET"),
        inputs_bucket=_text("INPUTS_BUCKET"),
        plan_queue_url=_text("PLAN_QUEUE_URL"),
        iot_data_endpoint=_text("IOT_DATA_ENDPOINT"),
        retention_days=_number("RETENTION_DAYS", DEFAULT_RETENTION_DAYS, 1, 36500),
        plan_batch_size=_number("PLAN_BATCH_SIZE", DEFAULT_PLAN_BATCH_SIZE, 1, MAX_PLAN_BATCH_SIZE),
    )


def required(value: str, name: str) -> str:
    """`value`, or MissingSetting naming the variable a function needs but was not given."""
    if not value:
        raise MissingSetting(f"the environment variable {name} is not set")
    return value


def _text(name: str) -> str:
    return os.environ.get(name, "").strip()


def _number(name: str, default: int, low: int, high: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise MissingSetting(f"{name}={text!r} is not a whole number") from None
    if not low <= value <= high:
        raise MissingSetting(f"{name}={value} is outside {low}..{high}")
    return value


@cache
def dynamodb() -> Any:
    """The DynamoDB resource (it converts numbers to and from Decimal itself)."""
    return boto3.resource("dynamodb", config=_RETRIES)


@cache
def s3() -> Any:
    return boto3.client("s3", config=_RETRIES)


@cache
def sqs() -> Any:
    return boto3.client("sqs", config=_RETRIES)


@cache
def iot_data() -> Any:
    """The `iot-data` client on `IOT_DATA_ENDPOINT` (AWS IoT Core or the local shadow service)."""
    endpoint = required(settings().iot_data_endpoint, "IOT_DATA_ENDPOINT")
    return boto3.client("iot-data", endpoint_url=endpoint, config=_RETRIES)


def forget_clients() -> None:
    """Build the clients again on next use (after the environment changed)."""
    for client in (dynamodb, s3, sqs, iot_data):
        client.cache_clear()

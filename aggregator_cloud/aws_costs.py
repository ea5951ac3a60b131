"""What the AWS stack costs per month, from AWS's list prices: the arithmetic behind the cost
table in docs/aws.md (a test checks that the page shows exactly `cost_table()`).

Run `python -m aggregator_cloud.aws_costs [homes]` for another fleet size. The usage model
follows what the code does: the node link publishes one telemetry batch per sample while online
(`fractal.link.shadow_link`), the ingest Lambda writes one Parquet object per batch
(`aggregator_cloud.lambdas.history`), the plan worker reads and writes each node's `plan` shadow
every planning round. Free tiers are left out. Durations are estimates, not measurements.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, replace
from typing import Final

PRICES_REGION: Final = "us-east-1"
PRICES_TAKEN: Final = "2025"
"""When the figures below were read from AWS's pricing pages (see docs/aws.md)."""


@dataclass(frozen=True)
class Prices:
    """US dollars, list prices of `PRICES_REGION`, first volume tier."""

    iot_connection_minutes_per_million: float = 0.08
    iot_messages_per_million: float = 1.00  # metered in 5 KB units
    iot_shadow_operations_per_million: float = 1.25  # metered in 1 KB units
    iot_rules_per_million: float = 0.15
    iot_actions_per_million: float = 0.15
    lambda_gb_second: float = 0.0000133334  # arm64
    lambda_requests_per_million: float = 0.20
    dynamodb_writes_per_million: float = 0.625  # on-demand write request units
    dynamodb_reads_per_million: float = 0.125  # on-demand read request units
    dynamodb_gb_month: float = 0.25
    s3_gb_month: float = 0.023
    s3_puts_per_thousand: float = 0.005
    s3_gets_per_thousand: float = 0.0004  # HEAD is priced as GET
    sqs_requests_per_million: float = 0.40
    cloudwatch_alarm_month: float = 0.10
    cloudwatch_log_gb: float = 0.50
    http_api_requests_per_million: float = 1.00


@dataclass(frozen=True)
class Usage:
    """How a fleet uses the stack in a month."""

    homes: int = 1000
    days: int = 30
    telemetry_batch_seconds: int = 10
    """The link sends a batch as soon as a sample (every 10 s) is buffered and it is online."""
    snapshots_per_day: int = 144
    plan_rounds_per_day: int = 48  # the default schedule, rate(30 minutes)
    plan_kb: int = 6  # a full 48 h plan: up to 8 KB
    snapshot_kb: int = 2
    latest_item_kb: int = 2
    plan_batch_size: int = 50  # template parameter PlanBatchSize
    parquet_object_overhead_bytes: int = 2048
    parquet_bytes_per_sample: int = 60
    telemetry_ms: int = 150  # at 1024 MB: validate, Parquet, S3 PUT, DynamoDB update
    ingest_ms: int = 50  # at 512 MB: shadow and plan-status documents
    worker_ms_per_node: int = 60  # at 1024 MB: warm LP (~1 ms) and two shadow calls
    api_requests: int = 100_000
    alarms: int = 17  # template.yaml's CloudWatch alarms (a test counts them)
    log_gb: float = 1.0  # warnings and errors only (system logs at WARN)


@dataclass(frozen=True)
class Line:
    item: str
    usage: float
    unit: str
    usd: float


def monthly_lines(usage: Usage, prices: Prices = Prices()) -> list[Line]:
    """The month's bill, line by line."""
    node_days = usage.homes * usage.days
    batches = node_days * 86_400 // usage.telemetry_batch_seconds
    snapshots = node_days * usage.snapshots_per_day
    rounds = node_days * usage.plan_rounds_per_day  # node-rounds: one plan per node each
    plan_units = math.ceil(usage.plan_kb / 5)
    # per node-round: delta + get answer carry the plan; get request, ack and its answer small
    messages = snapshots * 2 + rounds * (2 * plan_units + 3)
    # per node-round: worker get + update, node get (each the plan's KB), the node's ack (1 KB)
    shadow_operations = snapshots * usage.snapshot_kb + rounds * (3 * usage.plan_kb + 1)
    documents = snapshots + 2 * rounds  # rule-fed events besides telemetry
    rules = batches + documents
    messages_per_round = math.ceil(usage.homes / usage.plan_batch_size)
    round_count = usage.days * usage.plan_rounds_per_day
    worker_invocations = messages_per_round * round_count
    invocations = batches + documents + worker_invocations + round_count + usage.api_requests
    gb_seconds = (
        batches * usage.telemetry_ms / 1000 * 1.0
        + documents * usage.ingest_ms / 1000 * 0.5
        + rounds * usage.worker_ms_per_node / 1000 * 1.0
        + round_count * 2.0 * 0.5  # the schedule's scan and fan-out, ~2 s
        + usage.api_requests * 0.1 * 0.5
    )
    item_units = usage.latest_item_kb
    writes = batches * 2 * item_units + snapshots * 3 * item_units + rounds * 3 * item_units
    reads = rounds * 1.0 + round_count * usage.homes * 0.25
    table_gb = usage.homes * (usage.latest_item_kb + usage.snapshot_kb) / 1e6
    samples_per_batch = usage.telemetry_batch_seconds / 10
    history_gb = (
        batches
        * (usage.parquet_object_overhead_bytes + samples_per_batch * usage.parquet_bytes_per_sample)
        / 1e9
    )
    sqs_requests = round_count * (2 * messages_per_round + math.ceil(messages_per_round / 10))
    minutes = node_days * 1440
    p = prices
    million = 1e6
    return [
        Line(
            "IoT Core connectivity",
            minutes,
            "minutes",
            minutes / million * p.iot_connection_minutes_per_million,
        ),
        Line(
            "IoT Core messaging",
            messages,
            "5 KB messages",
            messages / million * p.iot_messages_per_million,
        ),
        Line(
            "IoT Core device shadow",
            shadow_operations,
            "1 KB operations",
            shadow_operations / million * p.iot_shadow_operations_per_million,
        ),
        Line(
            "IoT Core rules and actions",
            rules,
            "rules (1 action each)",
            rules / million * (p.iot_rules_per_million + p.iot_actions_per_million),
        ),
        Line(
            "Lambda requests",
            invocations,
            "invocations",
            invocations / million * p.lambda_requests_per_million,
        ),
        Line("Lambda compute", gb_seconds, "GB-s (arm64)", gb_seconds * p.lambda_gb_second),
        Line(
            "DynamoDB on-demand",
            writes + reads,
            "request units",
            writes / million * p.dynamodb_writes_per_million
            + reads / million * p.dynamodb_reads_per_million
            + table_gb * p.dynamodb_gb_month,
        ),
        Line(
            "S3 requests",
            2 * batches,
            "PUT + HEAD",
            batches / 1000 * (p.s3_puts_per_thousand + p.s3_gets_per_thousand),
        ),
        Line("S3 storage (one month's history)", history_gb, "GB", history_gb * p.s3_gb_month),
        Line("SQS", sqs_requests, "requests", sqs_requests / million * p.sqs_requests_per_million),
        Line(
            "CloudWatch alarms and logs",
            usage.alarms,
            "alarms",
            usage.alarms * p.cloudwatch_alarm_month + usage.log_gb * p.cloudwatch_log_gb,
        ),
        Line(
            "API Gateway HTTP API",
            usage.api_requests,
            "requests",
            usage.api_requests / million * p.http_api_requests_per_million,
        ),
    ]


def total(lines: list[Line]) -> float:
    return sum(line.usd for line in lines)


def cost_table(homes: int = 1000) -> str:
    """The Markdown table of docs/aws.md: the link as it is, and with 5-minute batches."""
    today = monthly_lines(Usage(homes=homes))
    batched = monthly_lines(replace(Usage(homes=homes), telemetry_batch_seconds=300))
    rows = [
        "| Item | Usage (10 s batches) | USD | Usage (5 min batches) | USD |",
        "|---|---:|---:|---:|---:|",
    ]
    for now, then in zip(today, batched, strict=True):
        rows.append(
            f"| {now.item} | {_amount(now.usage)} {now.unit} | {now.usd:,.2f} "
            f"| {_amount(then.usage)} {then.unit} | {then.usd:,.2f} |"
        )
    rows.append(
        f"| **Total per month** | | **{total(today):,.2f}** | | **{total(batched):,.2f}** |"
    )
    rows.append(
        f"| **Per home per month** | | **{total(today) / homes:,.3f}** "
        f"| | **{total(batched) / homes:,.3f}** |"
    )
    return "\n".join(rows)


def _amount(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:,.1f} M"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.1f}" if value != int(value) else f"{int(value)}"


if __name__ == "__main__":
    print(cost_table(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))

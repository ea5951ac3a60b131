"""End to end: simulated nodes (the real `ShadowLink` over mutual TLS) <-> mosquitto and the
shadow service <-> the Lambdas <-> moto (DynamoDB, S3, SQS).

`IotRules` stands in for the AWS IoT topic rules: it subscribes on the aggregator's loopback
listener to the topics the rules select from, builds the same events (`rule_event`) and calls
the Lambdas. The test plays the schedule and the SQS poller: schedule -> plan queue -> worker
-> each node's `plan` shadow -> the node acknowledges -> the status Lambda records it. Every
telemetry sample the nodes took lands in S3 once, readable by pandas as one dataset.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pandas as pd
import pytest

from aggregator_cloud.lambdas.ingest import shadow_handler, telemetry_handler
from aggregator_cloud.lambdas.plans import schedule_handler, status_handler, worker_handler
from aggregator_cloud.local.rules import RULES, rule_event
from aggregator_cloud.simulation.fleet import FleetSettings, SimClock, SimulatedFleet
from tests.aggregator_cloud.lambdas.conftest import Aws
from tests.aggregator_cloud.lambdas.test_lambda_plans import SCHEDULED, inputs_document, put_inputs
from tests.fractal.link.link_support import until
from tests.support.local_aggregator import LocalAggregator

HOMES = 3
WAIT_S = 60.0
"""Seconds before a wait gives up and the test fails; never part of an assertion."""
LAMBDAS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "fractal_telemetry": telemetry_handler,
    "fractal_shadow": shadow_handler,
    "fractal_plan": status_handler,
}


class IotRules:
    """The three topic rules, calling the Lambdas one message at a time, in arrival order."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.results: list[tuple[str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> IotRules:
        subscribed = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(subscribed))
        await subscribed
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await self._task

    def stored_samples(self) -> dict[str, int]:
        """Samples the telemetry Lambda stored (not counting duplicates), per node."""
        counts: dict[str, int] = {}
        for rule, result in self.results:
            if rule == "fractal_telemetry":
                counts[result["node"]] = counts.get(result["node"], 0) + result["stored"]
        return counts

    def refused(self) -> list[tuple[str, dict[str, Any]]]:
        return [(rule, result) for rule, result in self.results if not result["ok"]]

    async def _run(self, subscribed: asyncio.Future[None]) -> None:
        runtime = json.loads((self.data_dir / "runtime.json").read_text())
        context = ssl.create_default_context(cafile=runtime["ca"])
        service = self.data_dir / "service"
        context.load_cert_chain(service / "service.pem", service / "service.key")
        port = runtime["local_mqtt"]["port"]
        try:
            async with aiomqtt.Client("127.0.0.1", port, tls_context=context) as client:
                for rule in RULES:
                    await client.subscribe(rule.topic, qos=1)
                subscribed.set_result(None)
                async for message in client.messages:
                    await self._call(str(message.topic), message.payload)
        except Exception as error:
            if not subscribed.done():
                subscribed.set_exception(error)
            raise

    async def _call(self, topic: str, payload: Any) -> None:
        rule = next(rule for rule in RULES if aiomqtt.Topic(topic).matches(rule.topic))
        event = rule_event(rule, topic, payload)
        assert isinstance(event, dict), event
        result = await asyncio.to_thread(LAMBDAS[rule.name], event)
        self.results.append((rule.name, result))


async def wait(condition: Callable[[], bool], what: str) -> None:
    await until(condition, what, limit=WAIT_S)


def poll_queue(aws: Aws) -> int:
    """What Lambda's SQS poller does: up to 10 messages per worker call, failed ones left on
    the queue. Returns the messages handled."""
    handled = 0
    while True:
        response = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10)
        messages = response.get("Messages", [])
        if not messages:
            return handled
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "body": m["Body"],
                    "receiptHandle": m["ReceiptHandle"],
                }
                for m in messages
            ]
        }
        failed = {item["itemIdentifier"] for item in worker_handler(event)["batchItemFailures"]}
        assert not failed, failed
        for message in messages:
            aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
        handled += len(messages)


def latest(aws: Aws, node: str) -> dict[str, Any]:
    item: dict[str, Any] = aws.table("LATEST_TABLE").get_item(Key={"node": node}).get("Item", {})
    return item


def acknowledged(item: dict[str, Any]) -> bool:
    """The node accepted the plan last written to its shadow (the status Lambda saw both)."""
    desired = item.get("plan_desired_id")
    return (
        desired is not None
        and item.get("plan_ack_id") == desired
        and item.get("plan_ack_status") in {"accepted", "executing"}
    )


def history(aws: Aws, directory: Path) -> pd.DataFrame:
    for key in aws.objects("HISTORY_BUCKET", "history/"):
        target = directory / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(aws.read("HISTORY_BUCKET", key))
    return pd.read_parquet(directory / "history")


@pytest.mark.usefixtures("iot_data_endpoint")
async def test_one_planning_round_trip_and_telemetry_in_s3(
    aws: Aws, shadow_service: LocalAggregator, tmp_path: Path
) -> None:
    settings = FleetSettings(shadow_service.data_dir, HOMES, speed=30, plan_check_interval_s=1)
    stop = asyncio.Event()
    async with (
        IotRules(shadow_service.data_dir) as rules,
        SimulatedFleet(settings, SimClock(settings.speed)) as fleet,
    ):
        nodes = [home.node_id for home in fleet.homes]
        ticking = asyncio.create_task(fleet.run(stop))
        try:
            registered = aws.table("FLEET_TABLE")
            await wait(
                lambda: all("Item" in registered.get_item(Key={"node": n}) for n in nodes),
                "every node registered from its descriptor",
            )
            put_inputs(aws, "inputs/tariff.json", inputs_document())

            scheduled = await asyncio.to_thread(schedule_handler, SCHEDULED)
            handled = await asyncio.to_thread(poll_queue, aws)

            await wait(
                lambda: all(acknowledged(latest(aws, node)) for node in nodes),
                "every node acknowledged the plan written to it",
            )
        finally:
            stop.set()
            await ticking
        await wait(
            lambda: all(home.buffer.status().pending == 0 for home in fleet.homes),
            "every sample delivered to the broker",
        )
        last_seqs = {home.node_id: home.buffer.status().last_seq for home in fleet.homes}
        await wait(
            lambda: rules.stored_samples() == last_seqs,
            "every delivered sample stored by the telemetry Lambda",
        )

    assert scheduled["queued_nodes"] == HOMES
    assert handled >= 1
    assert rules.refused() == []
    for node in nodes:
        assert latest(aws, node)["latest_seq"] == last_seqs[node]
    frame = history(aws, tmp_path)
    for node in nodes:
        seqs = sorted(frame.loc[frame["node"].astype(str) == node, "seq"])
        assert seqs == list(range(1, last_seqs[node] + 1))  # every sample, once
    assert frame["ts"].dt.tz is not None
    assert frame["grid_w"].notna().all()

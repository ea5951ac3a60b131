"""`serve` runs the data side too: what a node reports over its mTLS connection reaches the fleet
store and the page on the same HTTP port as the iot-data API."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from tests.support.fleet_documents import batch, descriptor, reading, snapshot, ts
from tests.support.local_aggregator import (
    LocalAggregator,
    NodeCredentials,
    mqtt5_client,
    publish,
)

ARRIVAL_GUARD_SECONDS = 30  # turns a lost message into a failure instead of a hang


def get(aggregator: LocalAggregator, path: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{aggregator.http_endpoint}{path}", timeout=10) as response:
        return str(response.read().decode())


def fleet_entry(aggregator: LocalAggregator, node_id: str) -> dict[str, Any] | None:
    fleet = json.loads(get(aggregator, "/api/fleet"))
    entries = fleet["nodes"] if isinstance(fleet, dict) else fleet
    return next((entry for entry in entries if entry["node"] == node_id), None)


def wait_for_samples(aggregator: LocalAggregator, node_id: str, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + ARRIVAL_GUARD_SECONDS
    while time.monotonic() < deadline:
        entry = fleet_entry(aggregator, node_id)
        window = f"since={ts(0)}&until={ts(3600)}"  # the documents' own time, not now
        telemetry = json.loads(get(aggregator, f"/api/nodes/{node_id}/telemetry?{window}"))
        if entry is not None and len(telemetry["samples"]) >= count:
            return {"entry": entry, "telemetry": telemetry}
        time.sleep(0.2)
    raise AssertionError(f"{node_id}'s reports did not reach the fleet store:\n{aggregator.log}")


def test_reports_reach_the_fleet_page_served_by_serve(
    aggregator: LocalAggregator, node: NodeCredentials
) -> None:
    node_id = node.node_id
    samples = [reading(seq, grid_w=1234.0) for seq in (1, 2)]
    reported = {"node": descriptor(node_id, "Bakery"), "telemetry": snapshot(node_id, 2)}
    with mqtt5_client(aggregator, node) as (client, _):
        publish(
            client,
            f"$aws/rules/fractal_telemetry/{node_id}",
            json.dumps(batch(node_id, 1, samples)).encode(),
        )
        publish(
            client,
            f"$aws/things/{node_id}/shadow/update",
            json.dumps({"state": {"reported": reported}}).encode(),
        )

    seen = wait_for_samples(aggregator, node_id, 2)
    page = get(aggregator, "/")

    assert [sample["seq"] for sample in seen["telemetry"]["samples"]] == [1, 2]
    assert "Bakery" in page
    assert node_id in page
    assert (aggregator.data_dir / "fleet.sqlite3").stat().st_mode & 0o077 == 0

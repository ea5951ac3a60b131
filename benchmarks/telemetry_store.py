"""Telemetry ingest and queries on the local store: can one small machine keep up with a fleet?

A fleet of nodes on 20 feeders, each sending one batch of 30 samples (10 s apart) every five
minutes, for an hour. Measured, through the same handler the rules dispatcher calls:

* ingest: batches and samples per second (validation, dedupe, one committed transaction each);
* replay: the same batches again (every sample a duplicate), as after an outage;
* queries: one feeder's summed telemetry at 5-minute steps, one node's hour, the fleet page rows;
* size on disk per sample.

The fleet's real load is nodes / 300 batches per second; the margin is ingest rate over that.

    .venv/bin/python benchmarks/telemetry_store.py                 # 200 nodes, ~30 s
    .venv/bin/python benchmarks/telemetry_store.py --nodes 1000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fractal.protocol import NodeDescriptor, parse  # noqa: E402

from aggregator_cloud.handlers import THING_NAME, handle_telemetry_batch  # noqa: E402
from aggregator_cloud.store import SqliteStore  # noqa: E402
from aggregator_cloud.web.fleet import fleet_rows  # noqa: E402

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SAMPLES_PER_BATCH = 30
SAMPLE_SECONDS = 10
BATCHES = 12  # one hour
FEEDERS = 20


def node_id(index: int) -> str:
    return f"home-{index:05d}"


def batch_event(index: int, number: int) -> dict[str, Any]:
    first = number * SAMPLES_PER_BATCH
    samples = [
        {
            "seq": seq,
            "ts": (START + timedelta(seconds=seq * SAMPLE_SECONDS)).isoformat(),
            "grid_w": float((index * 37 + seq * 11) % 4000 - 1500),
            "pv_w": float((seq * 13) % 3000),
            "battery_w": float((index + seq) % 2000 - 1000),
            "load_w": float(300 + (index * seq) % 2500),
            "soc_pct": float((index + seq) % 100),
        }
        for seq in range(first, first + SAMPLES_PER_BATCH)
    ]
    return {
        "schema": "fractal.telemetry_batch.v1",
        "node": node_id(index),
        "seq": number,
        "samples": samples,
        THING_NAME: node_id(index),
    }


def register(store: SqliteStore, nodes: int) -> None:
    for index in range(nodes):
        document = {
            "schema": "fractal.node.v1",
            "node": node_id(index),
            "name": f"Home {index}",
            "tags": {"feeder": f"F{index % FEEDERS}"},
            "software": "0.1.0",
            "link": "local",
        }
        parsed = parse(NodeDescriptor, document)
        assert parsed.document is not None, parsed.problems
        store.record_descriptor(parsed.document)


def timed(action: Callable[[], object], repeat: int = 1) -> float:
    began = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - began) / repeat


def ingest(store: SqliteStore, events: list[dict[str, Any]]) -> tuple[float, int, int]:
    stored = duplicates = 0
    began = time.perf_counter()
    for event in events:
        result = handle_telemetry_batch(event, store)
        assert result.ok, result.problems
        stored += result.stored
        duplicates += result.duplicates
    return time.perf_counter() - began, stored, duplicates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=200)
    nodes = parser.parse_args().nodes
    # Batches arrive interleaved across nodes, as they would from a live fleet.
    events = [batch_event(index, number) for number in range(BATCHES) for index in range(nodes)]
    samples = len(events) * SAMPLES_PER_BATCH

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fleet.sqlite3"
        with SqliteStore(path) as store:
            register(store, nodes)
            seconds, stored, _ = ingest(store, events)
            replay_seconds, _, duplicates = ingest(store, events[: nodes * 2])
            assert stored == samples
            assert duplicates == nodes * 2 * SAMPLES_PER_BATCH
            end = START + timedelta(hours=1)
            group = timed(
                lambda: store.group_telemetry("feeder", "F1", START, end, timedelta(minutes=5)),
                repeat=5,
            )
            node = timed(lambda: store.samples(node_id(1), START, end), repeat=5)
            rows = timed(lambda: fleet_rows(store, None, end), repeat=5)
            size = sum(part.stat().st_size for part in Path(directory).iterdir())

    batch_rate = len(events) / seconds
    print(f"fleet: {nodes} nodes on {FEEDERS} feeders, {len(events)} batches, {samples} samples")
    print(f"ingest: {batch_rate:,.0f} batches/s, {samples / seconds:,.0f} samples/s")
    print(
        f"  the fleet sends {nodes / 300:,.2f} batches/s: {batch_rate * 300 / nodes:,.0f}x margin"
    )
    print(f"replay (all duplicates): {nodes * 2 / replay_seconds:,.0f} batches/s")
    print(f"feeder F1 ({nodes // FEEDERS} nodes), 1 h at 5 min: {group * 1000:,.1f} ms")
    print(f"one node's hour ({BATCHES * SAMPLES_PER_BATCH} samples): {node * 1000:,.1f} ms")
    print(f"fleet page rows ({nodes} nodes): {rows * 1000:,.1f} ms")
    print(f"on disk: {size / samples:,.0f} bytes per sample (WAL included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

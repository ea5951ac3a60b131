"""The ingest Lambdas against moto: telemetry to S3 Parquet and LATEST_TABLE, shadow documents
to FLEET_TABLE and LATEST_TABLE, refused events kept with their reasons."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fractal.protocol import NodeDescriptor, parse

from aggregator_cloud.lambdas.ingest import fleet, shadow_handler, telemetry_handler
from tests.aggregator_cloud.lambdas.conftest import Aws
from tests.support.fleet_documents import (
    batch,
    descriptor,
    documents_message,
    reading,
    snapshot,
)


def telemetry_event(node: str, seq: int, samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {**batch(node, seq, samples), "thing_name": node}


def shadow_event(thing: str, **reported: Any) -> dict[str, Any]:
    return {**documents_message(reported=reported), "thing_name": thing}


def history(aws: Aws, tmp_path: Path) -> pd.DataFrame:
    """The whole history prefix, downloaded as it is and read as one Parquet dataset."""
    for key in aws.objects("HISTORY_BUCKET", "history/"):
        target = tmp_path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(aws.read("HISTORY_BUCKET", key))
    return pd.read_parquet(tmp_path / "history")


def test_a_batch_lands_in_s3_as_parquet_partitioned_by_date_and_node(
    aws: Aws, tmp_path: Path
) -> None:
    samples = [reading(seq, soc_pct=50.0 + seq) for seq in range(1, 6)]
    result = telemetry_handler(telemetry_event("home-1", 1, samples))

    assert result["ok"]
    assert result["stored"] == 5
    assert result["duplicates"] == 0
    assert aws.objects("HISTORY_BUCKET") == [
        "history/date=2026-03-01/node=home-1/000000000001-000000000005.parquet"
    ]
    frame = history(aws, tmp_path)
    assert list(frame["seq"]) == [1, 2, 3, 4, 5]
    assert set(frame["node"].astype(str)) == {"home-1"}
    assert set(frame["date"].astype(str)) == {"2026-03-01"}
    assert list(frame["grid_w"]) == [101.0, 102.0, 103.0, 104.0, 105.0]
    assert list(frame["soc_pct"]) == [51.0, 52.0, 53.0, 54.0, 55.0]
    assert frame["ts"].iloc[0] == pd.Timestamp("2026-03-01T12:00:10Z")
    assert frame["ev_w"].isna().all()


def test_a_replayed_batch_is_stored_once(aws: Aws, tmp_path: Path) -> None:
    event = telemetry_event("home-1", 7, [reading(seq) for seq in range(10, 13)])
    telemetry_handler(event)
    again = telemetry_handler(event)

    assert again["ok"]
    assert again["stored"] == 0
    assert again["duplicates"] == 3
    assert list(history(aws, tmp_path)["seq"]) == [10, 11, 12]


def test_a_batch_across_midnight_is_split_by_date(aws: Aws, tmp_path: Path) -> None:
    midnight = 12 * 3600  # T0 is noon
    samples = [reading(1, midnight - 10), reading(2, midnight), reading(3, midnight + 10)]
    telemetry_handler(telemetry_event("home-2", 1, samples))

    assert aws.objects("HISTORY_BUCKET") == [
        "history/date=2026-03-01/node=home-2/000000000001-000000000001.parquet",
        "history/date=2026-03-02/node=home-2/000000000002-000000000003.parquet",
    ]
    frame = history(aws, tmp_path).sort_values("seq")
    assert list(frame["date"].astype(str)) == ["2026-03-01", "2026-03-02", "2026-03-02"]


def test_energy_counters_and_device_readings_are_kept_as_json(aws: Aws, tmp_path: Path) -> None:
    sample = reading(1, energy={"import_wh": 12.5}, devices={"hydro": {"flow_m3_s": 1.25}})
    telemetry_handler(telemetry_event("hydro-1", 1, [sample]))

    extra = json.loads(history(aws, tmp_path)["extra"].iloc[0])
    assert extra == {"energy": {"import_wh": 12.5}, "devices": {"hydro": {"flow_m3_s": 1.25}}}


def test_telemetry_updates_the_latest_state(aws: Aws) -> None:
    telemetry_handler(telemetry_event("home-1", 2, [reading(5), reading(6, soc_pct=40.5)]))
    telemetry_handler(telemetry_event("home-1", 1, [reading(3), reading(4)]))  # late replay

    item = aws.table("LATEST_TABLE").get_item(Key={"node": "home-1"})["Item"]
    assert item["latest_seq"] == 6
    assert item["latest_sample"]["soc_pct"] == Decimal("40.5")
    assert item["first_seen"]
    assert item["last_seen"]


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ("not an object", "not a JSON object"),
        ({"schema": "fractal.telemetry_batch.v1"}, "thing_name"),
        ({"thing_name": "home-1", "node": "home-1", "seq": 1, "samples": []}, "samples"),
    ],
)
def test_garbage_telemetry_is_refused_and_kept(aws: Aws, event: Any, problem: str) -> None:
    result = telemetry_handler(event)

    assert not result["ok"]
    assert any(problem in text for text in result["problems"])
    assert aws.objects("HISTORY_BUCKET", "history/") == []
    kept = json.loads(aws.read("HISTORY_BUCKET", result["kept"]))
    assert kept["event"] == event
    assert kept["problems"] == list(result["problems"])
    assert result["kept"].startswith("refused/date=")
    assert "/telemetry/" in result["kept"]


def test_a_batch_for_another_node_is_refused(aws: Aws) -> None:
    event = {**batch("home-9", 1, [reading(1)]), "thing_name": "home-1"}
    result = telemetry_handler(event)

    assert not result["ok"]
    assert "home-9" in result["problems"][0]
    assert aws.objects("HISTORY_BUCKET", "history/") == []
    assert "Item" not in aws.table("LATEST_TABLE").get_item(Key={"node": "home-1"})


def test_a_descriptor_registers_the_node_with_decimal_numbers(aws: Aws) -> None:
    document = descriptor("home-1", "Rose Cottage", {"street": "mill-lane"}, capacity_wh=5120)
    document["devices"][0]["envelope"]["soc_min_pct"] = 12.5
    result = shadow_handler(shadow_event("home-1", node=document))

    assert result["ok"]
    assert result["stored"] == 1
    item = aws.table("FLEET_TABLE").get_item(Key={"node": "home-1"})["Item"]
    assert item["name"] == "Rose Cottage"
    assert item["tags"] == {"street": "mill-lane"}
    envelope = item["descriptor"]["devices"][0]["envelope"]
    assert envelope["soc_min_pct"] == Decimal("12.5")
    assert envelope["capacity_wh"] == Decimal(5120)


def test_the_newest_snapshot_wins(aws: Aws) -> None:
    shadow_handler(shadow_event("home-1", telemetry=snapshot("home-1", 9, grid_w=-250.75)))
    older = shadow_handler(shadow_event("home-1", telemetry=snapshot("home-1", 8)))

    assert older["ok"]
    assert older["duplicates"] == 1
    item = aws.table("LATEST_TABLE").get_item(Key={"node": "home-1"})["Item"]
    assert item["snapshot"]["seq"] == 9
    assert item["snapshot"]["grid_w"] == Decimal("-250.75")


def test_a_bad_document_is_refused_and_the_good_one_recorded(aws: Aws) -> None:
    bad = {**snapshot("home-1", 3), "soc_pct": 140}
    result = shadow_handler(
        shadow_event("home-1", node=descriptor("home-1"), telemetry=bad, link={"buffered": 3})
    )

    assert not result["ok"]
    assert result["stored"] == 2
    assert any("reported.telemetry.soc_pct" in problem for problem in result["problems"])
    assert "Item" in aws.table("FLEET_TABLE").get_item(Key={"node": "home-1"})
    latest = aws.table("LATEST_TABLE").get_item(Key={"node": "home-1"})["Item"]
    assert "snapshot" not in latest
    assert latest["link_state"]["buffered"] == 3
    kept = json.loads(aws.read("HISTORY_BUCKET", result["kept"]))
    assert kept["event"]["current"]["state"]["reported"]["telemetry"]["soc_pct"] == 140


def test_the_planner_reads_the_node_back_with_the_newest_state_of_charge(aws: Aws) -> None:
    document = descriptor("home-1", "Rose Cottage", capacity_wh=5120)
    document["devices"][0]["envelope"]["soc_min_pct"] = 12.5
    shadow_handler(
        shadow_event("home-1", node=document, telemetry=snapshot("home-1", 4, soc_pct=30))
    )
    telemetry_handler(telemetry_event("home-1", 2, [reading(5, soc_pct=35.5)]))
    store = fleet()

    state = store.planning_state("home-1")

    assert state is not None
    assert state.descriptor == parse(NodeDescriptor, document).document
    assert state.soc_pct == 35.5
    assert state.soc_at == datetime.fromisoformat(reading(5)["ts"])
    assert store.planning_state("home-2") is None
    assert store.plannable_nodes() == ["home-1"]

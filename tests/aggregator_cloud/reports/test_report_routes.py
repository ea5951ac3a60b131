"""The report routes on a real aiohttp server: a node's export is complete (CSV and Parquet
against the store), retention deletes old samples (the function and serve's hourly job), flex
events are stored and reported (CSV equals the report), the settlement CSV balances, and the
hydro view is shared through a link that expires (forged and expired links get a 403 page)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fractal.protocol import NodeDescriptor, Reading, parse

from aggregator_cloud.local.commands import register
from aggregator_cloud.reports import export, flexibility, links
from aggregator_cloud.reports.events import stored_events
from aggregator_cloud.store import FIELDS, SqliteStore
from aggregator_cloud.web.reports import add_report_routes

NOW = datetime(2026, 4, 20, 12, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _hydro_descriptor() -> NodeDescriptor:
    parsed = parse(
        NodeDescriptor,
        {
            "schema": "fractal.node.v1",
            "node": "osney-lock",
            "name": "Osney Lock Hydro",
            "software": "0.1.0",
            "link": "local",
            "devices": [
                {
                    "id": "hydro",
                    "kind": "hydro",
                    "envelope": {"level_min_m": 1.5, "level_max_m": 1.8},
                }
            ],
        },
    )
    assert parsed.document is not None, parsed.problems
    return parsed.document


def _seed(store: SqliteStore) -> None:
    # a household: 20 days of one-minute samples with counters and per-device readings
    start = NOW - timedelta(days=20)
    store.add_samples(
        "home-1",
        [
            Reading(
                seq=index,
                ts=start + timedelta(minutes=index),
                grid_w=400.0 - index % 900 + 0.125,
                battery_w=None if index % 7 == 0 else -float(index % 1500),
                soc_pct=50.0 + (index % 40) / 3,
                energy={"import_wh": 1000.0 + index * 6.7},
                devices={"ev": {"current_a": float(index % 16)}},
            )
            for index in range(20 * 24 * 60)
        ],
    )
    # a hydro: 10-second samples for the last two hours, with a 20-minute gap
    store.record_descriptor(_hydro_descriptor())
    begin = NOW - timedelta(hours=2)
    samples = []
    for index in range(720):
        when = begin + timedelta(seconds=10 * index)
        if begin + timedelta(minutes=50) <= when < begin + timedelta(minutes=70):
            continue
        level = 1.6 + (0.3 if 200 <= index < 206 else 0.0)  # six readings above the band
        devices = {
            "level_m": level,
            "flow_m3_s": 12.0,
            "level_setpoint_m": 1.65,
            "generator1_power_w": 20_000.0,
            "generator2_power_w": 15_000.0 + index,
        }
        samples.append(Reading(seq=index, ts=when, hydro_w=35_000.0, devices={"hydro": devices}))
    store.add_samples("osney-lock", samples)


@pytest.fixture(name="store", scope="module")
def _store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path_factory.mktemp("reports") / "fleet.sqlite3") as store:
        _seed(store)
        yield store


@pytest.fixture(name="clock")
def _clock() -> Clock:
    return Clock()


@pytest.fixture(name="client")
async def _client(
    store: SqliteStore, tmp_path: Path, clock: Clock, socket_enabled: None
) -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    add_report_routes(app, store, tmp_path, clock)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


def _stored(store: SqliteStore, node: str) -> pd.DataFrame:
    return store.samples(node, extra=True).reset_index()


async def test_csv_export_is_every_stored_sample(
    client: TestClient[Any, Any], store: SqliteStore
) -> None:
    response = await client.get("/nodes/home-1/export?format=csv")
    assert response.status == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="home-1.csv"'
    body = await response.read()
    exported = pd.read_csv(io.BytesIO(body), dtype={"extra": "string"})
    stored = _stored(store, "home-1")
    assert len(exported) == len(stored) == 20 * 24 * 60  # three weekly chunks and a part
    assert list(exported.columns) == ["ts", "seq", *FIELDS, "extra"]
    assert (pd.to_datetime(exported["ts"], utc=True) == stored["ts"]).all()
    assert (exported["seq"] == stored["seq"]).all()
    for name in FIELDS:  # exact: the CSV writes floats round-trip
        pd.testing.assert_series_equal(exported[name], stored[name], check_names=False)
    assert [json.loads(text) for text in exported["extra"]] == [
        json.loads(text) for text in stored["extra"]
    ]


async def test_parquet_export_is_every_stored_sample(
    client: TestClient[Any, Any], store: SqliteStore
) -> None:
    response = await client.get("/nodes/home-1/export?format=parquet")
    assert response.status == 200
    exported = pd.read_parquet(io.BytesIO(await response.read()))
    stored = _stored(store, "home-1")
    pd.testing.assert_frame_equal(
        exported[["seq", *FIELDS, "extra"]], stored[["seq", *FIELDS, "extra"]], check_dtype=False
    )
    assert (exported["ts"] == stored["ts"]).all()


async def test_export_refuses_unknown_formats_and_nodes(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/nodes/home-1/export?format=xlsx")).status == 400
    assert (await client.get("/nodes/nobody/export")).status == 404


def test_retention_deletes_only_old_samples(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "fleet.sqlite3") as store:
        samples = [Reading(seq=i, ts=NOW - timedelta(hours=i), grid_w=1.0) for i in range(12_000)]
        store.add_samples("old-home", samples)
        cutoff = NOW - timedelta(hours=10_500)
        deleted = export.delete_older_than(store, cutoff)
        assert deleted == 12_000 - 10_501  # in more than one batch of DELETE_BATCH
        assert store.sample_count() == 10_501
        assert store.samples("old-home").index.min() == pd.Timestamp(cutoff)
        assert export.delete_older_than(store, cutoff) == 0


async def test_the_retention_job_runs_in_the_app(tmp_path: Path, socket_enabled: None) -> None:
    with SqliteStore(tmp_path / "fleet.sqlite3") as store:
        store.add_samples(
            "home", [Reading(seq=i, ts=NOW - timedelta(days=i), grid_w=1.0) for i in range(40)]
        )
        app = web.Application()
        add_report_routes(app, store, tmp_path, lambda: NOW, retention_days=30)
        async with TestClient(TestServer(app, host="127.0.0.1")):
            # days 0..30 kept by the job's first round, run in the app's own task
            while store.sample_count() != 31:  # noqa: ASYNC110 (the store is the only witness)
                await asyncio.sleep(0.05)
        assert store.samples("home").index.min() == pd.Timestamp(NOW - timedelta(days=30))


def test_serve_takes_a_retention_period() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--data-dir", "/tmp/x", "--retention-days", "400"])
    assert args.retention_days == 400.0
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--data-dir", "/tmp/x", "--retention-days", "-1"])


def _event_json(event_id: str, start: datetime) -> dict[str, Any]:
    return {
        "schema": "fractal.flex_event.v1",
        "id": event_id,
        "issued": (start - timedelta(days=1)).isoformat(),
        "source": "UKPN",
        "group": {},
        "direction": "down",
        "power_w": 2000,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
    }


async def test_flex_events_are_stored_and_reported(
    client: TestClient[Any, Any], store: SqliteStore
) -> None:
    event = _event_json("peak-1", NOW - timedelta(hours=5))
    assert (await client.post("/api/flex-events", json=event)).status == 201
    assert (await client.post("/api/flex-events", json=event)).status == 200
    changed = {**event, "power_w": 9}
    assert (await client.post("/api/flex-events", json=changed)).status == 409
    bad = await client.post("/api/flex-events", json={**event, "direction": "sideways"})
    assert bad.status == 422
    assert "direction" in (await bad.json())["error"]
    assert "peak-1" in [stored.id for stored in stored_events(store)]

    csv_response = await client.get("/reports/flexibility?event=peak-1&nodes=home-1&format=csv")
    assert csv_response.status == 200
    report = flexibility.build_report(
        store,
        flexibility.ReportRequest(
            stored_events(store)[0], ("home-1",), other_events=tuple(stored_events(store))
        ),
    )
    assert await csv_response.text() == report.csv()
    page = await client.get("/reports/flexibility?event=peak-1&nodes=home-1")
    assert page.status == 200
    text = await page.text()
    assert f'data-metric="delivered_kwh">{report.delivered_kwh:.3f}<' in text
    assert 'id="csv-link"' in text


async def test_an_event_without_baseline_days_says_so(client: TestClient[Any, Any]) -> None:
    early = _event_json("too-early", NOW - timedelta(days=19, hours=20))
    assert (await client.post("/api/flex-events", json=early)).status == 201
    page = await client.get("/reports/flexibility?event=too-early&nodes=home-1")
    assert page.status == 422
    assert "no eligible baseline day for event" in await page.text()
    missing = await client.get("/reports/flexibility?event=nope&format=csv")
    assert missing.status == 422
    assert "no flexibility event 'nope'" in await missing.text()


async def test_settlement_csv_balances_with_the_counters(
    client: TestClient[Any, Any], tmp_path: Path, store: SqliteStore
) -> None:
    no_tariffs = await client.get("/nodes/home-1/settlement?month=2026-04")
    assert no_tariffs.status == 422
    assert "no tariffs" in await no_tariffs.text()
    (tmp_path / "settlement").mkdir()
    tariffs = {
        "rates": {
            "import": {"00:00": "12", "16:00": "30", "19:00": "12"},
            "export": {"00:00": "5"},
            "ppa": {"00:00": "10"},
        }
    }
    (tmp_path / "settlement" / "home-1.json").write_text(json.dumps(tariffs))
    response = await client.get("/nodes/home-1/settlement?month=2026-04&format=csv")
    assert response.status == 200, await response.text()
    table = pd.read_csv(io.StringIO(await response.text()))
    # only the import counter rises: every half-hour is imports, all to the host
    assert (table["import_wh"] == table["grid_to_host"]).all()
    first, last = pd.Timestamp(table["utc_time"].iloc[0]), pd.Timestamp(table["utc_time"].iloc[-1])
    counters = store.samples("home-1", extra=True)["extra"].map(
        lambda text: json.loads(text)["energy"]["import_wh"]
    )
    at = (
        counters[counters.index <= first].iloc[-1],
        counters[counters.index <= last + timedelta(minutes=30)].iloc[-1],
    )
    assert table["import_wh"].sum() == round(at[1]) - round(at[0])
    page = await client.get("/nodes/home-1/settlement?month=2026-04")
    assert page.status == 200
    assert 'id="statement-host-2026-04"' in await page.text()
    assert (await client.get("/nodes/home-1/settlement?month=April")).status == 422


async def test_hydro_view_and_its_expiring_shared_link(
    client: TestClient[Any, Any], clock: Clock, tmp_path: Path
) -> None:
    page = await client.get("/nodes/osney-lock/hydro?days=1")
    text = await page.text()
    assert page.status == 200
    assert 'data-metric="out_of_band">6<' in text
    # one gap of 20 minutes (plus the silence before the samples began, 22 hours)
    assert "20.2</td>" in text  # from 00:49:50 to 01:10:00 after the period began
    shared = await client.post("/nodes/osney-lock/hydro/share?days=7")
    link = (await shared.text()).split('id="shared-link" href="')[1].split('"')[0]
    token = link.split("token=")[1]
    assert (tmp_path / links.KEY_FILE).stat().st_mode & 0o777 == 0o600

    opened = await client.get(f"/shared/hydro?token={token}&days=1")
    assert opened.status == 200
    assert 'id="shared-note"' in await opened.text()
    assert 'id="share-form"' not in await opened.text()

    payload, signature = token.split(".")
    forged_payload = links.sign(b"x" * 32, "osney-lock", "hydro", NOW + timedelta(days=99))
    for forged in (f"{forged_payload.split('.')[0]}.{signature}", f"{payload}.AAAA", "junk"):
        refused = await client.get(f"/shared/hydro?token={forged}")
        assert refused.status == 403
        assert "not one the aggregator made" in await refused.text()

    clock.now = NOW + timedelta(days=7, seconds=1)
    expired = await client.get(f"/shared/hydro?token={token}")
    assert expired.status == 403
    assert "this link expired at" in await expired.text()
    assert (await client.get("/nodes/home-1/hydro")).status == 404

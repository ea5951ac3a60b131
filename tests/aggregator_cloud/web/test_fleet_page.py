"""The fleet page and its JSON, served by aiohttp from a real store seeded through the handlers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from aggregator_cloud.handlers import (
    THING_NAME,
    handle_plan_documents,
    handle_shadow_documents,
    handle_telemetry_batch,
)
from aggregator_cloud.local.shadow.rest import build_app
from aggregator_cloud.local.shadow.service import ShadowService
from aggregator_cloud.local.shadow.store import ShadowStore
from aggregator_cloud.store import SqliteStore
from aggregator_cloud.web import add_routes
from tests.support.fleet_documents import (
    T0,
    ack,
    batch,
    descriptor,
    documents_message,
    plan,
    reading,
    snapshot,
)

NOW = T0 + timedelta(minutes=30)
SCRIPT = "<script>alert(1)</script>"


def feed(handler: Any, store: SqliteStore, node: str, message: dict[str, Any]) -> None:
    result = handler({**message, THING_NAME: node}, store, now=NOW - timedelta(minutes=2))
    assert result.ok, result.problems


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    """n1 "Mill <House>" on feeder F12, a plan executing, samples from 2 h ago and the last
    minute; n2 on F13 with samples only; n3 with a hostile tag value and nothing else."""
    with SqliteStore(tmp_path / "fleet.sqlite") as seeded:
        classic = documents_message(
            reported={
                "node": descriptor("n1", "Mill <House>", {"feeder": "F12", "street": "Elm & Oak"}),
                "telemetry": snapshot("n1", 6, grid_w=1234.0, pv_w=2500.0, soc_pct=64),
                "link": {"buffered": 42, "dropped": 0, "lost": 7, "storage_error": None},
            }
        )
        feed(handle_shadow_documents, seeded, "n1", classic)
        plans = documents_message(
            desired={"plan": plan("n1", "p2")}, reported={"plan": ack("p2", "executing", 30)}
        )
        feed(handle_plan_documents, seeded, "n1", plans)
        samples = [reading(0, seconds=-7200, grid_w=77.0)]
        samples += [reading(seq, grid_w=1000.0 + seq) for seq in range(1, 7)]
        feed(handle_telemetry_batch, seeded, "n1", batch("n1", 1, samples))
        feed(
            handle_shadow_documents,
            seeded,
            "n2",
            documents_message(reported={"node": descriptor("n2", "School", {"feeder": "F13"})}),
        )
        feed(handle_telemetry_batch, seeded, "n2", batch("n2", 1, [reading(1, grid_w=-321.0)]))
        feed(
            handle_shadow_documents,
            seeded,
            "n3",
            documents_message(reported={"node": descriptor("n3", "Pub", {"note": SCRIPT})}),
        )
        yield seeded


@pytest.fixture
async def client(store: SqliteStore, socket_enabled: None) -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    add_routes(app, store, clock=lambda: NOW)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def text(client: TestClient[Any, Any], path: str, status: int = 200) -> str:
    response = await client.get(path)
    body = await response.text()
    assert response.status == status, body
    return body


async def test_the_fleet_table_shows_every_node_and_its_latest_values(
    client: TestClient[Any, Any],
) -> None:
    page = await text(client, "/")

    assert 'href="/nodes/n1"' in page
    assert "Mill &lt;House&gt;" in page
    assert "street=Elm &amp; Oak" in page
    assert "1,234 W" in page  # n1's snapshot (newer than its last sample)
    assert "2,500 W" in page
    assert "64 %" in page
    assert "executing" in page
    assert "(p2)" in page
    assert "-321 W" in page  # n2 has no snapshot: its last sample
    assert "2 min ago" in page
    assert "42 buffered" in page
    assert "0 dropped, 7 lost" in page
    assert '<option value="feeder=F12">' in page


async def test_everything_a_node_reports_is_escaped(client: TestClient[Any, Any]) -> None:
    page = await text(client, "/")

    assert SCRIPT not in page
    assert "note=&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_the_fleet_filters_by_tag(client: TestClient[Any, Any]) -> None:
    page = await text(client, "/?tag=feeder=F13")
    fleet = json.loads(await text(client, "/api/fleet?tag=feeder=F12"))

    assert 'href="/nodes/n2"' in page
    assert 'href="/nodes/n1"' not in page
    assert '<option value="feeder=F13" selected>' in page
    assert [node["node"] for node in fleet["nodes"]] == ["n1"]


async def test_a_malformed_tag_filter_is_a_clear_400(client: TestClient[Any, Any]) -> None:
    page = await text(client, "/?tag=feeder", status=400)
    api = json.loads(await text(client, "/api/fleet?tag==F12", status=400))

    assert "tag must be key=value" in page
    assert "tag must be key=value" in api["error"]


async def test_the_node_page_shows_plan_latest_values_and_the_last_hour(
    client: TestClient[Any, Any],
) -> None:
    page = await text(client, "/nodes/n1")

    assert "<h1>Mill &lt;House&gt; <span" in page
    assert "current plan p2" in page
    assert "executing for plan p2" in page
    assert "local · 42 buffered" in page
    for seq in range(1, 7):
        assert f"{1000 + seq:,} W" in page
    assert "77 W" not in page  # two hours old


async def test_the_node_page_lists_devices_that_name_no_role_or_model(
    store: SqliteStore, client: TestClient[Any, Any]
) -> None:
    # A descriptor's role, manufacturer and model are optional (the demo's homes send none).
    message = documents_message(reported={"node": descriptor("n4", "Flat", capacity_wh=5200)})
    feed(handle_shadow_documents, store, "n4", message)

    page = await text(client, "/nodes/n4")

    assert "<td>battery</td><td>battery</td><td></td>" in page
    assert "/nodes/n4/hydro" not in page  # the compliance view is for hydro nodes only


async def test_an_unknown_node_is_404(client: TestClient[Any, Any]) -> None:
    page = await text(client, "/nodes/nobody", status=404)
    api = json.loads(await text(client, "/api/nodes/nobody/telemetry", status=404))

    assert "no node 'nobody'" in page
    assert api == {"error": "no node 'nobody' in the fleet"}


async def test_fleet_json(client: TestClient[Any, Any]) -> None:
    fleet = json.loads(await text(client, "/api/fleet"))

    nodes = {node["node"]: node for node in fleet["nodes"]}
    assert sorted(nodes) == ["n1", "n2", "n3"]
    assert nodes["n1"]["latest"]["grid_w"] == 1234
    assert nodes["n1"]["plan"]["status"] == "executing"
    assert nodes["n1"]["link_state"]["lost"] == 7
    assert nodes["n1"]["last_seen"] == "2026-03-01T12:28:00Z"
    assert nodes["n2"]["latest"] == {
        "seq": 1,
        "ts": "2026-03-01T12:00:10Z",
        "grid_w": -321.0,
        "pv_w": 2000.0,
        "battery_w": -500.0,
        "load_w": 1600.0,
    }
    assert nodes["n3"]["latest"] is None
    assert fleet["groups"] == {"feeder": ["F12", "F13"], "note": [SCRIPT], "street": ["Elm & Oak"]}


async def test_node_telemetry_json_defaults_to_the_last_hour(
    client: TestClient[Any, Any],
) -> None:
    recent = json.loads(await text(client, "/api/nodes/n1/telemetry"))
    since = (T0 - timedelta(hours=3)).isoformat()
    everything = json.loads(
        await text(client, f"/api/nodes/n1/telemetry?since={since.replace('+', '%2B')}")
    )

    assert [sample["seq"] for sample in recent["samples"]] == [1, 2, 3, 4, 5, 6]
    assert recent["samples"][0] == {
        "ts": "2026-03-01T12:00:10Z",
        "seq": 1,
        "grid_w": 1001.0,
        "pv_w": 2000.0,
        "battery_w": -500.0,
        "load_w": 1600.0,
    }
    assert [sample["seq"] for sample in everything["samples"]] == list(range(7))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "since must be an ISO 8601 time"),
        ("since=2026-03-01T12:00:00", "since needs a UTC offset"),
        ("since=2026-03-01T13:00:00Z&until=2026-03-01T12:00:00Z", "until must be later"),
        ("since=2026-02-01T00:00:00Z", "at most 2 days per request"),
    ],
)
async def test_a_bad_time_is_a_clear_400(
    client: TestClient[Any, Any], query: str, message: str
) -> None:
    api = json.loads(await text(client, f"/api/nodes/n1/telemetry?{query}", status=400))

    assert message in api["error"]


async def test_a_group_is_served_like_a_node(client: TestClient[Any, Any]) -> None:
    since = "2026-03-01T12:00:00Z"
    group = json.loads(
        await text(client, f"/api/groups/feeder/F12/telemetry?since={since}&step=60")
    )

    assert group["group"] == {"feeder": "F12"}
    assert group["step"] == 60
    # n1's samples at 12:00:10-12:00:50 (grid 1001-1005 W) and 12:01:00 (1006 W).
    assert [(row["ts"], row["grid_w"], row["nodes"]) for row in group["samples"]] == [
        ("2026-03-01T12:00:00Z", 1003.0, 1),
        ("2026-03-01T12:01:00Z", 1006.0, 1),
    ]
    assert group["samples"][0]["pv_w"] == 2000.0
    assert "ev_w" not in group["samples"][0]


async def test_the_page_shares_an_app_with_the_iot_data_rest_api(
    tmp_path: Path, store: SqliteStore, socket_enabled: None
) -> None:
    shadows = ShadowStore(tmp_path / "shadows.sqlite3")

    async def publish(topic: str, payload: bytes) -> None:
        return None

    app = build_app(ShadowService(shadows, publish))
    add_routes(app, store, clock=lambda: NOW)
    try:
        async with TestClient(TestServer(app)) as both:
            page = await text(both, "/")
            shadow = await both.get("/things/n1/shadow")
            shadow_error = await shadow.json()
    finally:
        shadows.close()

    assert "Mill &lt;House&gt;" in page
    assert shadow.status == 404
    assert "No shadow exists" in json.dumps(shadow_error)


async def test_a_group_page_shows_the_group_as_one_node(client: TestClient[Any, Any]) -> None:
    page = await text(client, "/groups/feeder/F12")

    assert "<h1>feeder=F12 <span" in page
    assert 'href="/nodes/n1"' in page
    assert 'href="/nodes/n2"' not in page
    # One 5-minute step holds n1's samples of 12:00:10-12:01:00 (1001-1006 W, mean 1003.5).
    assert "<td>2026-03-01T12:00:00Z</td>" in page
    assert "1,004 W" in page
    assert "77 W" not in page  # two hours old


async def test_group_links_survive_any_tag_value(client: TestClient[Any, Any]) -> None:
    fleet = await text(client, "/?" + urlencode({"tag": f"note={SCRIPT}"}))
    link = f"/groups/note/{quote(SCRIPT, safe='')}"

    group = await text(client, link)

    assert f'href="{link}"' in fleet
    assert "note=&lt;script&gt;alert(1)&lt;/script&gt;" in group
    assert 'href="/nodes/n3"' in group
    assert SCRIPT not in group


async def test_an_unknown_group_is_404(client: TestClient[Any, Any]) -> None:
    page = await text(client, "/groups/feeder/F99", status=404)

    assert "no node is tagged feeder=F99" in page

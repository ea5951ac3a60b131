"""One snapshot per shipped map: entities, read plan and decoded readings over real TCP.

A change to a map or to decoding shows up as a diff in `snapshots/<map>.json` that a reviewer
can read. Regenerate deliberately with ``UPDATE_SNAPSHOTS=1``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fractal.devices.device import Device
from fractal.devices.regmap import IDENTITY_GROUP, load_shipped_map, shipped_map_names

pytestmark = pytest.mark.enable_socket

SNAPSHOTS = Path(__file__).parent / "snapshots"


def entities(name: str) -> list[dict[str, Any]]:
    fields = ("name", "table", "address", "type", "unit", "device_class", "state_class", "group")
    rows = []
    for register in load_shipped_map(name).registers:
        row = {field: register.model_dump(mode="json")[field] for field in fields}
        if register.writable is not None:
            row["writable"] = [register.writable.min, register.writable.max]
        rows.append(row)
    return rows


def check_snapshot(name: str, actual: dict[str, Any]) -> None:
    path = SNAPSHOTS / f"{name}.json"
    rendered = json.dumps(actual, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}; run with UPDATE_SNAPSHOTS=1 and review it"
    assert json.loads(rendered) == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", shipped_map_names())
async def test_shipped_map_snapshot(name: str, start_server, gateways) -> None:
    server = await start_server({1: name})
    regmap = load_shipped_map(name)
    device = Device(gateways(server.port), 1, regmap)
    groups = [IDENTITY_GROUP, *regmap.poll_groups]
    plans, readings = {}, {}
    for group in groups:
        plans[group] = [[b.table, b.start, b.count] for b in device.plan(group)]
        polled = await device.poll(group)
        readings[group] = {k: [r.value, r.unit, r.problem] for k, r in sorted(polled.items())}

    check_snapshot(name, {"entities": entities(name), "plans": plans, "readings": readings})

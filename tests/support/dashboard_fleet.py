"""A small street seeded through the real handlers, for the dashboard tests, with the plain
Python reference every dashboard number is checked against.

Four homes report every 10 s for two hours from T0: three on Elm Road (elm-1 with a battery
that soaks up surplus PV and covers the evening, elm-2 with an EV charging for a while, elm-3
with PV only), oak-1 on Oak Lane; all four on feeder F1. Each home has a plan from T0 with
expected grid power per half-hour; elm-1 gets a newer plan from T0 + 1 h that supersedes it.
The grid's carbon intensity (National Grid API JSON) rises by 10 g/kWh each half-hour."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aggregator_cloud.handlers import (
    THING_NAME,
    handle_plan_documents,
    handle_shadow_documents,
    handle_telemetry_batch,
)
from aggregator_cloud.store import SqliteStore
from tests.support.fleet_documents import batch, descriptor, documents_message

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SAMPLES = 720
"""Per node: two hours at 10 s."""
END = T0 + timedelta(seconds=10 * SAMPLES)
HOMES: dict[str, tuple[str, dict[str, str]]] = {
    "elm-1": ("Elm 1", {"street": "Elm Road", "feeder": "F1"}),
    "elm-2": ("Elm 2", {"street": "Elm Road", "feeder": "F1"}),
    "elm-3": ("Elm 3", {"street": "Elm Road", "feeder": "F1"}),
    "oak-1": ("Oak 1", {"street": "Oak Lane", "feeder": "F1"}),
}
PLAN_SLOTS = (500, -200, 300, 800, 400, -600, -600, 400)
"""Each home's first plan: expected grid W per half-hour from T0."""
NEWER_PLAN = (1000, 1000, 1000, 1000)
"""elm-1's second plan, issued at T0 + 50 min, from T0 + 1 h."""


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def sample(node: str, k: int) -> dict[str, Any]:
    """Sample `k` of `node`: whole watts, the grid from the balance."""
    index = list(HOMES).index(node)
    pv = (1200 + 500 * index) if (k // 30) % 3 else 150
    load = 400 + 150 * index + (2400 if k % 90 < 15 else 0)
    ev = 3600 if node == "elm-2" and 200 <= k < 400 else 0
    values: dict[str, Any] = {"seq": k + 1, "ts": iso(T0 + timedelta(seconds=10 * k))}
    battery = 0
    if node == "elm-1":
        battery = min(1500, pv - load) if pv > load else -min(1000, load - pv)
        values["battery_w"] = float(battery)
        values["soc_pct"] = 40 + k / 36
    values.update(
        grid_w=float(load + ev + battery - pv), pv_w=float(pv), load_w=float(load), ev_w=float(ev)
    )
    return values


def plan_document(
    node: str, plan_id: str, start: datetime, slots: tuple[int, ...]
) -> dict[str, Any]:
    return {
        "schema": "fractal.plan.v1",
        "id": plan_id,
        "node": node,
        "issued": iso(start - timedelta(minutes=10)),
        "start": iso(start),
        "step": 1800,
        "slots": len(slots),
        "expiry": iso(start + timedelta(seconds=1800 * len(slots))),
        "source": "aggregator",
        "devices": {
            "battery": {
                "kind": "battery",
                "windows": [{"start": 0, "end": len(slots), "mode": "balance"}],
            }
        },
        "expected": {"grid_w": list(slots)},
    }


def intensity_document() -> dict[str, Any]:
    """Half-hours from T0 - 1 h to T0 + 26 h; past ones actual, later ones forecast only."""
    data = []
    for index in range(54):
        start = T0 + timedelta(minutes=30 * (index - 2))
        value = intensity_of(start)
        actual = value if start < END else None
        data.append(
            {
                "from": start.strftime("%Y-%m-%dT%H:%MZ"),
                "to": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%MZ"),
                "intensity": {"forecast": value + (0 if actual is None else 7), "actual": actual},
            }
        )
    return {"data": data}


def intensity_of(when: datetime) -> float:
    half_hours = (when - T0) // timedelta(minutes=30)
    return 150.0 + 10 * half_hours


def write_intensity(path: Path) -> Path:
    path.write_text(json.dumps(intensity_document()), encoding="utf-8")
    return path


def seed(store: SqliteStore) -> None:
    """Register the homes, store their samples and plans through the handlers."""
    for node, (name, tags) in HOMES.items():
        feed(
            handle_shadow_documents,
            store,
            node,
            documents_message(reported={"node": descriptor(node, name, tags)}),
        )
        for first in range(0, SAMPLES, 60):
            samples = [sample(node, k) for k in range(first, first + 60)]
            feed(handle_telemetry_batch, store, node, batch(node, first // 60 + 1, samples))
        first_plan = plan_document(node, f"{node}-p1", T0, PLAN_SLOTS)
        feed(handle_plan_documents, store, node, documents_message(desired={"plan": first_plan}))
    newer = plan_document("elm-1", "elm-1-p2", T0 + timedelta(hours=1), NEWER_PLAN)
    feed(handle_plan_documents, store, "elm-1", documents_message(desired={"plan": newer}))


def feed(handler: Any, store: SqliteStore, node: str, message: Mapping[str, Any]) -> None:
    result = handler({**message, THING_NAME: node}, store, now=END)
    assert result.ok, result.problems


# --- the reference: plain Python over the samples -------------------------------------------


def flows(values: Mapping[str, Any]) -> dict[str, float]:
    """The documented split of one sample (docs/views.md), written out longhand."""
    grid, pv = values["grid_w"], values["pv_w"]
    battery, ev = values.get("battery_w", 0.0), values.get("ev_w", 0.0)
    demand = max(0.0, grid + pv - battery)
    charge, discharge = max(battery, 0.0), max(-battery, 0.0)
    pv_home = min(pv, demand)
    pv_battery = min(pv - pv_home, charge)
    battery_home = min(discharge, demand - pv_home)
    return {
        "grid": grid,
        "battery": battery,
        "import": max(grid, 0.0),
        "export": max(-grid, 0.0),
        "pv": pv,
        "demand": demand,
        "ev": ev,
        "household": demand - ev,
        "charge": charge,
        "discharge": discharge,
        "pv_home": pv_home,
        "pv_battery": pv_battery,
        "pv_export": pv - pv_home - pv_battery,
        "battery_home": battery_home,
        "grid_home": demand - pv_home - battery_home,
    }


def members(street: str) -> list[str]:
    return [node for node, (_, tags) in HOMES.items() if tags["street"] == street]


def energy_wh(nodes: list[str]) -> dict[str, float]:
    """Each flow's energy over the two hours, summed over `nodes` (every sample is 10 s)."""
    totals: dict[str, float] = defaultdict(float)
    for node in nodes:
        for k in range(SAMPLES):
            for name, watts in flows(sample(node, k)).items():
                totals[name] += watts * 10 / 3600
    return dict(totals)


def carbon_g(nodes: list[str]) -> dict[str, float]:
    emitted = avoided = grid_only = 0.0
    for node in nodes:
        for k in range(SAMPLES):
            values = flows(sample(node, k))
            intensity = intensity_of(T0 + timedelta(seconds=10 * k))
            kwh = 10 / 3600 / 1000
            emitted += values["import"] * intensity * kwh
            grid_only += values["demand"] * intensity * kwh
            avoided += (values["demand"] - values["grid"]) * intensity * kwh
    return {"emitted": emitted, "avoided": avoided, "grid_only": grid_only}


def bucket_means(nodes: list[str], name: str) -> dict[datetime, float]:
    """The group's 5-minute series of `name`: each member's mean in the bucket, summed."""
    sums: dict[tuple[str, int], float] = defaultdict(float)
    for node in nodes:
        for k in range(SAMPLES):
            sums[(node, k // 30)] += flows(sample(node, k))[name] / 30
    series: dict[datetime, float] = defaultdict(float)
    for (_, bucket), value in sums.items():
        series[T0 + timedelta(minutes=5 * bucket)] += value
    return dict(series)


def expected_grid(nodes: list[str]) -> dict[datetime, float]:
    """The plans' expected grid power per half-hour, summed (elm-1's newer plan wins from
    T0 + 1 h)."""
    total: dict[datetime, float] = defaultdict(float)
    for node in nodes:
        for slot, watts in enumerate(PLAN_SLOTS):
            start = T0 + timedelta(minutes=30 * slot)
            newer = node == "elm-1" and T0 + timedelta(hours=1) <= start < T0 + timedelta(hours=3)
            total[start] += NEWER_PLAN[0] if newer else watts
    return dict(total)


def all_samples(nodes: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    for node in nodes:
        for k in range(SAMPLES):
            yield node, sample(node, k)

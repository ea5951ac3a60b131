"""A home with every kind the executor drives, and plans for it, built through the protocol."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fractal.executor import Envelope
from fractal.protocol import NodeDescriptor, Plan, parse

NODE = "elm-17"
START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
BATTERY = {
    "max_charge_w": 3000,
    "max_discharge_w": 2800,
    "soc_min_pct": 10,
    "soc_max_pct": 95,
    "capacity_wh": 9500,
}
EV = {"ev_current_min_a": 6, "ev_current_max_a": 32}
HYDRO = {"level_min_m": 1.2, "level_max_m": 1.6, "level_rate_max_m_per_h": 0.05}


def descriptor(export_max_w: int | None = 3680, **envelopes: dict[str, Any]) -> NodeDescriptor:
    limits = {"battery": BATTERY, "ev": EV, "hydro": HYDRO, "immersion": {"power_max_w": 3000}}
    limits.update(envelopes)
    kinds = {"battery": "battery", "ev": "ev_charger", "immersion": "immersion", "hydro": "hydro"}
    devices = [
        {"id": "grid", "kind": "grid_meter", "capabilities": ["export_limit"]},
        {"id": "pv", "kind": "pv_inverter", "capabilities": ["on", "off", "export_limit"]},
        *(
            {"id": name, "kind": kind, "capabilities": _modes(kind), "envelope": limits[name]}
            for name, kind in kinds.items()
        ),
    ]
    envelope = {"import_max_w": 23000}
    if export_max_w is not None:
        envelope["export_max_w"] = export_max_w
    raw = {
        "schema": "fractal.node.v1",
        "node": NODE,
        "name": "17 Elm Road",
        "software": "0.1.0",
        "link": "local",
        "devices": devices,
        "envelope": envelope,
    }
    parsed = parse(NodeDescriptor, raw)
    assert parsed.document is not None, parsed.problems
    return parsed.document


def _modes(kind: str) -> list[str]:
    return {
        "battery": ["balance", "charge", "discharge", "hold", "off"],
        "ev_charger": ["balance", "on", "off", "ev_current"],
        "immersion": ["balance", "on", "off"],
        "hydro": ["on", "off", "level"],
    }[kind]


def envelope(**kwargs: Any) -> Envelope:
    return Envelope(descriptor(**kwargs))


def plan(
    devices: dict[str, Any],
    *,
    source: str = "aggregator",
    plan_id: str = "agg-1",
    slots: int = 4,
    step: int = 1800,
    start: datetime = START,
    expiry: datetime | None = None,
    **extra: Any,
) -> Plan:
    raw = {
        "schema": "fractal.plan.v1",
        "id": plan_id,
        "node": NODE,
        "issued": (start - timedelta(minutes=5)).isoformat(),
        "start": start.isoformat(),
        "step": step,
        "slots": slots,
        "expiry": (expiry or start + timedelta(seconds=step * slots)).isoformat(),
        "source": source,
        "devices": devices,
        **extra,
    }
    parsed = parse(Plan, raw)
    assert parsed.document is not None, parsed.problems
    return parsed.document


def windows(kind: str, *items: tuple[int, int, str, float | None]) -> dict[str, Any]:
    return {
        "kind": kind,
        "windows": [
            {"start": a, "end": b, "mode": mode, **({} if value is None else {"value": value})}
            for a, b, mode, value in items
        ],
    }


def everywhere(kind: str, mode: str, value: float | None = None, slots: int = 4) -> dict[str, Any]:
    return windows(kind, (0, slots, mode, value))

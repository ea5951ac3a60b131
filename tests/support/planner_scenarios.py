"""Small scenario documents for planner tests (plain dicts, as a scenario file holds)."""

from __future__ import annotations

from typing import Any

START = "2026-11-22T00:00:00Z"


def home(
    home_id: str = "h1",
    *,
    load: list[float],
    imp: list[float],
    exp: list[float],
    pv: list[float] | None = None,
    battery: dict[str, Any] | None = None,
    import_max_kw: float = 20.0,
    export_max_kw: float = 5.0,
    **extra: Any,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": home_id,
        "pv_kw": pv if pv is not None else [0.0] * len(load),
        "load_kw": load,
        "import_p_per_kwh": imp,
        "export_p_per_kwh": exp,
        "grid": {"import_max_kw": import_max_kw, "export_max_kw": export_max_kw},
    }
    if battery is not None:
        document["battery"] = battery
    return document | extra


def battery(**overrides: Any) -> dict[str, Any]:
    return {
        "capacity_kwh": 10.0,
        "soc_kwh": 0.0,
        "soc_min_kwh": 0.0,
        "soc_max_kwh": 10.0,
        "charge_kw": 3.0,
        "discharge_kw": 3.0,
        "charge_efficiency": 0.95,
        "discharge_efficiency": 0.95,
        "cycle_cost_p_per_kwh": 1.0,
        "terminal_soc_min_kwh": 0.0,
    } | overrides


def scenario(*homes: dict[str, Any], step_seconds: int = 3600, **extra: Any) -> dict[str, Any]:
    return {"start": START, "step_seconds": step_seconds, "homes": list(homes)} | extra

"""The dashboard's charts as plotly figures (JSON for `Plotly.newPlot` in the browser).

Figures are written as plotly's JSON schema directly (dicts of traces and layout) and
serialised by `plotly.io.to_json`, whose encoder knows numpy and pandas: building them through
`plotly.graph_objects` validated every property and took a second per dashboard. Colours are
fixed per flow so the same thing looks the same on every chart."""

from __future__ import annotations

from typing import Any, Final

import pandas as pd
import plotly.io  # type: ignore[import-untyped]

from .dashboard import Dashboard

Figure = dict[str, Any]

COLOURS: Final = {
    "pv": "#f2b705",
    "battery": "#2a9d8f",
    "grid": "#6c757d",
    "export": "#90be6d",
    "demand": "#e63946",
    "ev": "#457b9d",
    "immersion": "#f4a261",
    "hydro": "#1d3557",
    "expected": "#9d4edd",
}
_LAYOUT: Final = {
    "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
    "height": 320,
    "legend": {"orientation": "h"},
    "template": {"layout": {"plot_bgcolor": "white", "paper_bgcolor": "white"}},
    "xaxis": {"gridcolor": "#eee", "automargin": True},
    "yaxis": {"gridcolor": "#eee", "zerolinecolor": "#ccc", "automargin": True},
}


def figures(board: Dashboard) -> dict[str, str]:
    """Chart id -> figure JSON, for every chart the dashboard has data for."""
    charts = {
        "flow-now": _flow_now(board),
        "power": _power(board),
        "demand-met": _donut(
            "How demand was met (kWh)",
            board.demand_met_wh,
            {"pv": "PV", "battery": "Battery", "grid": "Grid"},
            {"pv": COLOURS["pv"], "battery": COLOURS["battery"], "grid": COLOURS["grid"]},
        ),
        "pv-use": _donut(
            "How generation was used (kWh)",
            board.pv_use_wh,
            {
                "self_consumed": "Self-consumed",
                "battery": "Into the battery",
                "exported": "Exported",
            },
            {
                "self_consumed": COLOURS["demand"],
                "battery": COLOURS["battery"],
                "exported": COLOURS["export"],
            },
        ),
        "carbon": _carbon(board),
        "plan": _plan(board),
    }
    if board.members is not None:
        charts["members"] = _members(board)
        charts["peak"] = _peak(board)
    return {name: plotly.io.to_json(figure, validate=False) for name, figure in charts.items()}


def _resampled(board: Dashboard, columns: list[str]) -> pd.DataFrame:
    frame = board.buckets[columns]
    step = board.period.display_step
    if step == pd.Timedelta(seconds=300):
        return frame
    return frame.resample(step).mean()


def _figure(title: str, traces: list[dict[str, Any]], **layout: Any) -> Figure:
    return {"data": traces, "layout": {**_LAYOUT, "title": {"text": title, "x": 0.02}, **layout}}


def _line(x: pd.Index, y: pd.Series, name: str, colour: str, dash: str = "solid") -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines",
        "x": x,
        "y": y,
        "name": name,
        "line": {"color": colour, "dash": dash},
    }


def _flow_now(board: Dashboard) -> Figure:
    now = board.now
    bars = [
        ("Grid import", now.get("import_w", 0.0), COLOURS["grid"]),
        ("Grid export", now.get("export_w", 0.0), COLOURS["export"]),
        ("PV + hydro", now.get("generation_w", 0.0), COLOURS["pv"]),
        ("Battery charge", now.get("charge_w", 0.0), COLOURS["battery"]),
        ("Battery discharge", now.get("discharge_w", 0.0), COLOURS["battery"]),
        ("EV", now.get("ev_w", 0.0), COLOURS["ev"]),
        ("Household", now.get("household_w", 0.0), COLOURS["demand"]),
    ]
    bar = {
        "type": "bar",
        "orientation": "h",
        "x": [value / 1000 for _, value, _ in bars],
        "y": [name for name, _, _ in bars],
        "marker": {"color": [colour for _, _, colour in bars]},
    }
    return _figure("Energy flow now (kW)", [bar])


def _power(board: Dashboard) -> Figure:
    frame = _resampled(board, ["grid_w", "generation_w", "battery_w", "demand_w", "ev_w"]) / 1000
    lines = [
        _line(frame.index, frame[column], name, colour)
        for column, name, colour in (
            ("demand_w", "Demand", COLOURS["demand"]),
            ("generation_w", "PV + hydro", COLOURS["pv"]),
            ("battery_w", "Battery (+ charging)", COLOURS["battery"]),
            ("grid_w", "Grid (+ import)", COLOURS["grid"]),
            ("ev_w", "EV", COLOURS["ev"]),
        )
    ]
    return _figure("Power (kW)", lines)


def _donut(
    title: str, values_wh: dict[str, float], labels: dict[str, str], colours: dict[str, str]
) -> Figure:
    keys = list(labels)
    pie = {
        "type": "pie",
        "hole": 0.5,
        "sort": False,
        "labels": [labels[key] for key in keys],
        "values": [round(values_wh.get(key, 0.0) / 1000, 3) for key in keys],
        "marker": {"colors": [colours[key] for key in keys]},
    }
    return _figure(title, [pie])


def _carbon(board: Dashboard) -> Figure:
    frame = _resampled(board, ["grid_intensity", "import_w", "demand_w"])
    demand = frame["demand_w"].where(frame["demand_w"] > 0)
    own = frame["grid_intensity"] * frame["import_w"] / demand
    lines = [
        _line(frame.index, frame["grid_intensity"], "Grid", COLOURS["grid"]),
        _line(frame.index, own, board.subject.label, COLOURS["pv"]),
    ]
    return _figure("Carbon intensity (gCO₂/kWh)", lines)


def _plan(board: Dashboard) -> Figure:
    frame = _resampled(board, ["grid_w", "expected_grid_w"]) / 1000
    lines = [
        _line(frame.index, frame["grid_w"], "Actual grid", COLOURS["grid"]),
        _line(frame.index, frame["expected_grid_w"], "Plan expected", COLOURS["expected"], "dash"),
    ]
    windows = [
        {
            "type": "rect",
            "xref": "x",
            "yref": "paper",
            "x0": window.start,
            "x1": window.end,
            "y0": 0,
            "y1": 1,
            "fillcolor": COLOURS["export"],
            "opacity": 0.2,
            "line": {"width": 0},
        }
        for window in board.windows
    ]
    return _figure("Plan against actual: grid (kW); best hours shaded", lines, shapes=windows)


def _members(board: Dashboard) -> Figure:
    assert board.members is not None
    members = board.members
    bars = [
        {
            "type": "bar",
            "x": list(members.index),
            "y": members[column] / 1000,
            "name": name,
            "marker": {"color": colour},
        }
        for column, name, colour in (
            ("import_wh", "Import", COLOURS["grid"]),
            ("export_wh", "Export", COLOURS["export"]),
            ("generation_wh", "Generation", COLOURS["pv"]),
            ("discharge_wh", "Battery discharge", COLOURS["battery"]),
        )
    ]
    return _figure("Each member's contribution (kWh)", bars, barmode="group")


def _peak(board: Dashboard) -> Figure:
    frame = board.buckets[["grid_w", "battery_w"]] / 1000
    lines = [
        _line(frame.index, frame["grid_w"], "With coordination", COLOURS["grid"]),
        _line(
            frame.index,
            frame["grid_w"] - frame["battery_w"],
            "Without (batteries idle)",
            COLOURS["demand"],
            "dot",
        ),
    ]
    return _figure("Group grid demand with and without coordination (kW)", lines)

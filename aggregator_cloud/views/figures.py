"""The dashboard's charts as plotly figures (JSON for `Plotly.newPlot` in the browser).

Colours are fixed per flow so the same thing looks the same on every chart."""

from __future__ import annotations

from typing import Final

import pandas as pd
import plotly.graph_objects as go  # type: ignore[import-untyped]
import plotly.io  # type: ignore[import-untyped]

from .dashboard import Dashboard

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
    "template": "plotly_white",
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


def _flow_now(board: Dashboard) -> go.Figure:
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
    figure = go.Figure(
        go.Bar(
            x=[value / 1000 for _, value, _ in bars],
            y=[name for name, _, _ in bars],
            orientation="h",
            marker_color=[colour for _, _, colour in bars],
        )
    )
    return figure.update_layout(title="Energy flow now (kW)", **_LAYOUT)


def _power(board: Dashboard) -> go.Figure:
    columns = ["grid_w", "generation_w", "battery_w", "demand_w", "ev_w"]
    frame = _resampled(board, columns) / 1000
    figure = go.Figure()
    for column, name, colour in (
        ("demand_w", "Demand", COLOURS["demand"]),
        ("generation_w", "PV + hydro", COLOURS["pv"]),
        ("battery_w", "Battery (+ charging)", COLOURS["battery"]),
        ("grid_w", "Grid (+ import)", COLOURS["grid"]),
        ("ev_w", "EV", COLOURS["ev"]),
    ):
        figure.add_scatter(x=frame.index, y=frame[column], name=name, line_color=colour)
    return figure.update_layout(title="Power (kW)", **_LAYOUT)


def _donut(
    title: str, values_wh: dict[str, float], labels: dict[str, str], colours: dict[str, str]
) -> go.Figure:
    keys = list(labels)
    figure = go.Figure(
        go.Pie(
            labels=[labels[key] for key in keys],
            values=[round(values_wh.get(key, 0.0) / 1000, 3) for key in keys],
            marker_colors=[colours[key] for key in keys],
            hole=0.5,
            sort=False,
        )
    )
    return figure.update_layout(title=title, **_LAYOUT)


def _carbon(board: Dashboard) -> go.Figure:
    frame = _resampled(board, ["grid_intensity", "import_w", "demand_w"])
    own = (
        frame["grid_intensity"] * frame["import_w"] / frame["demand_w"].where(frame["demand_w"] > 0)
    )
    figure = go.Figure()
    figure.add_scatter(
        x=frame.index, y=frame["grid_intensity"], name="Grid", line_color=COLOURS["grid"]
    )
    figure.add_scatter(x=frame.index, y=own, name=board.subject.label, line_color=COLOURS["pv"])
    return figure.update_layout(title="Carbon intensity (gCO₂/kWh)", **_LAYOUT)


def _plan(board: Dashboard) -> go.Figure:
    frame = _resampled(board, ["grid_w", "expected_grid_w"]) / 1000
    figure = go.Figure()
    figure.add_scatter(
        x=frame.index, y=frame["grid_w"], name="Actual grid", line_color=COLOURS["grid"]
    )
    figure.add_scatter(
        x=frame.index,
        y=frame["expected_grid_w"],
        name="Plan expected",
        line={"color": COLOURS["expected"], "dash": "dash"},
    )
    for window in board.windows:
        figure.add_vrect(x0=window.start, x1=window.end, fillcolor=COLOURS["export"], opacity=0.2)
    return figure.update_layout(title="Plan against actual: grid (kW)", **_LAYOUT)


def _members(board: Dashboard) -> go.Figure:
    assert board.members is not None
    members = board.members
    figure = go.Figure()
    for column, name, colour in (
        ("import_wh", "Import", COLOURS["grid"]),
        ("export_wh", "Export", COLOURS["export"]),
        ("generation_wh", "Generation", COLOURS["pv"]),
        ("discharge_wh", "Battery discharge", COLOURS["battery"]),
    ):
        figure.add_bar(
            x=list(members.index), y=members[column] / 1000, name=name, marker_color=colour
        )
    return figure.update_layout(
        title="Each member's contribution (kWh)", barmode="group", **_LAYOUT
    )


def _peak(board: Dashboard) -> go.Figure:
    frame = board.buckets[["grid_w", "battery_w"]]
    figure = go.Figure()
    figure.add_scatter(
        x=frame.index,
        y=frame["grid_w"] / 1000,
        name="With coordination",
        line_color=COLOURS["grid"],
    )
    figure.add_scatter(
        x=frame.index,
        y=(frame["grid_w"] - frame["battery_w"]) / 1000,
        name="Without (batteries idle)",
        line={"color": COLOURS["demand"], "dash": "dot"},
    )
    return figure.update_layout(
        title="Group grid demand with and without coordination (kW)", **_LAYOUT
    )

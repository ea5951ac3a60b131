"""The dashboard's numbers for a node and a group, against plain Python over the seeded samples
(tests/support/dashboard_fleet.py), plans and carbon intensity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from aggregator_cloud.store import SqliteStore
from aggregator_cloud.views import Dashboard, Period, Subject, build_dashboard, load_intensity
from aggregator_cloud.views.figures import figures
from tests.support import dashboard_fleet as fleet

ELM = ("street", "Elm Road")
ENERGY = {
    "import_wh": "import",
    "export_wh": "export",
    "demand_wh": "demand",
    "household_wh": "household",
    "generation_wh": "pv",
    "charge_wh": "charge",
    "discharge_wh": "discharge",
    "ev_wh": "ev",
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteStore, pd.Series]]:
    folder = tmp_path_factory.mktemp("dashboard")
    with SqliteStore(folder / "fleet.sqlite") as store:
        fleet.seed(store)
        yield store, load_intensity(fleet.write_intensity(folder / "intensity.json"))


def board(seeded: tuple[SqliteStore, pd.Series], subject: Subject) -> Dashboard:
    store, intensity = seeded
    period = Period.between(fleet.T0, fleet.END)
    return build_dashboard(store, subject, period, now=fleet.END, intensity=intensity)


@pytest.mark.parametrize(
    ("subject", "nodes"),
    [
        (Subject(group=ELM), fleet.members("Elm Road")),
        (Subject(group=("feeder", "F1")), list(fleet.HOMES)),
        (Subject(node="elm-1"), ["elm-1"]),
    ],
)
def test_energy_demand_met_and_pv_use_match_the_samples(
    seeded: tuple[SqliteStore, pd.Series], subject: Subject, nodes: list[str]
) -> None:
    result = board(seeded, subject)
    reference = fleet.energy_wh(nodes)

    for name, flow in ENERGY.items():
        assert result.energy_wh[name] == pytest.approx(reference[flow]), name
    assert result.demand_met_wh == pytest.approx(
        {
            "pv": reference["pv_home"],
            "battery": reference["battery_home"],
            "grid": reference["grid_home"],
        }
    )
    assert result.pv_use_wh == pytest.approx(
        {
            "self_consumed": reference["pv_home"],
            "battery": reference["pv_battery"],
            "exported": reference["pv_export"],
        }
    )


def test_carbon_against_the_grid_and_avoided(seeded: tuple[SqliteStore, pd.Series]) -> None:
    result = board(seeded, Subject(group=ELM))
    nodes = fleet.members("Elm Road")
    reference = fleet.carbon_g(nodes)
    demand_kwh = fleet.energy_wh(nodes)["demand"] / 1000

    assert result.carbon["emitted_g"] == pytest.approx(reference["emitted"])
    assert result.carbon["avoided_g"] == pytest.approx(reference["avoided"])
    assert result.carbon["node_intensity"] == pytest.approx(reference["emitted"] / demand_kwh)
    assert result.carbon["grid_intensity"] == pytest.approx(reference["grid_only"] / demand_kwh)
    assert result.carbon["covered_share"] == 1.0
    assert result.carbon["node_intensity"] < result.carbon["grid_intensity"]


def test_energy_flow_now_is_the_latest_five_minutes(seeded: tuple[SqliteStore, pd.Series]) -> None:
    result = board(seeded, Subject(group=ELM))
    grid = fleet.bucket_means(fleet.members("Elm Road"), "grid")

    assert result.now_ts == fleet.END - timedelta(minutes=5)
    assert result.now["grid_w"] == pytest.approx(grid[fleet.END - timedelta(minutes=5)])
    assert result.now["nodes"] == 3


def test_peak_with_and_without_coordination(seeded: tuple[SqliteStore, pd.Series]) -> None:
    result = board(seeded, Subject(group=ELM))
    nodes = fleet.members("Elm Road")
    grid = fleet.bucket_means(nodes, "grid")
    battery = fleet.bucket_means(nodes, "battery")
    baseline = {when: grid[when] - battery[when] for when in grid}

    assert result.peaks["with_w"] == pytest.approx(max(grid.values()))
    assert result.peaks["with_ts"] == max(grid, key=lambda when: grid[when])
    assert result.peaks["without_w"] == pytest.approx(max(baseline.values()))
    assert result.peaks["without_w"] > result.peaks["with_w"]  # elm-1's battery shaved it


def test_each_members_contribution(seeded: tuple[SqliteStore, pd.Series]) -> None:
    result = board(seeded, Subject(group=ELM))
    assert result.members is not None

    assert list(result.members.index) == fleet.members("Elm Road")
    for node in fleet.members("Elm Road"):
        reference = fleet.energy_wh([node])
        assert result.members.loc[node, "import_wh"] == pytest.approx(reference["import"])
        assert result.members.loc[node, "demand_wh"] == pytest.approx(reference["demand"])
        assert result.members.loc[node, "name"] == fleet.HOMES[node][0]
    assert result.members["import_share"].sum() == pytest.approx(1.0)


def test_plan_against_actual_uses_the_newest_plan(seeded: tuple[SqliteStore, pd.Series]) -> None:
    result = board(seeded, Subject(group=ELM))
    expected = fleet.expected_grid(fleet.members("Elm Road"))
    in_period = [expected[fleet.T0 + timedelta(minutes=30 * slot)] for slot in range(4)]

    assert result.plan["expected_import_kwh"] == pytest.approx(
        sum(max(0.0, watts) * 0.5 / 1000 for watts in in_period)
    )
    assert result.plan["actual_import_kwh"] == pytest.approx(
        fleet.energy_wh(fleet.members("Elm Road"))["import"] / 1000
    )
    hourly = result.buckets["expected_grid_w"].resample("30min").first()
    assert list(hourly) == in_period


def test_best_windows_prefer_spare_generation_then_low_carbon(
    seeded: tuple[SqliteStore, pd.Series],
) -> None:
    windows = board(seeded, Subject(group=ELM)).windows
    surplus_from = fleet.T0 + timedelta(hours=2, minutes=30)  # the plans' slots 5 and 6

    assert [window.start for window in windows] == [
        surplus_from,
        surplus_from + timedelta(hours=1),
        surplus_from + timedelta(hours=2),
    ]
    assert windows[0].surplus_share == 1.0
    assert windows[1].surplus_share == 0.0
    start = windows[1].start
    forecast = [fleet.intensity_of(start + timedelta(minutes=half)) for half in (0, 30)]
    assert windows[1].intensity == pytest.approx(sum(forecast) / 2)  # forecast ahead


def test_without_carbon_data_or_plans_the_dashboard_says_so(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "empty.sqlite") as store:
        result = build_dashboard(
            store, Subject(node="nobody"), Period.between(fleet.T0, fleet.END), now=fleet.END
        )

    assert result.carbon == {}
    assert result.plan == {}
    assert result.windows == []
    assert result.now == {}
    assert result.energy_wh["demand_wh"] == 0.0
    assert set(figures(result)) == {"flow-now", "power", "demand-met", "pv-use", "carbon", "plan"}


def test_figures_for_a_group_include_members_and_peak(
    seeded: tuple[SqliteStore, pd.Series],
) -> None:
    charts = figures(board(seeded, Subject(group=ELM)))

    assert {"members", "peak"} <= set(charts)
    assert '"Elm Road"' not in charts["members"]  # the x axis holds node ids
    assert "elm-2" in charts["members"]


@pytest.mark.parametrize(
    ("name", "message"),
    [("month", "day, week or custom"), ("custom", "needs a start and an end")],
)
def test_bad_periods_are_refused(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Period.of(name, fleet.END)


def test_period_limits() -> None:
    with pytest.raises(ValueError, match="at most 31 days"):
        Period.between(fleet.T0, fleet.T0 + timedelta(days=32))
    with pytest.raises(ValueError, match="after its start"):
        Period.between(fleet.T0, fleet.T0)
    assert Period.of("week", fleet.END).display_step == timedelta(minutes=30)

"""`fractal-aggregator plan` end to end, through the command line's own entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fractal.planner import load_scenario
from fractal.protocol import Plan, dump, parse

from aggregator_cloud.cli import main
from tests.support.planner_check import replay
from tests.support.planner_scenarios import home, scenario

EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "scenario-street.json"


def test_plans_the_example_street(tmp_path: Path) -> None:
    out = tmp_path / "plans.json"
    assert (
        main(
            [
                "plan",
                "--scenario",
                str(EXAMPLE),
                "--out",
                str(out),
                "--issued",
                "2026-11-21T23:00:00Z",
            ]
        )
        == 0
    )
    written = json.loads(out.read_text())
    parsed = load_scenario(EXAMPLE.read_bytes())
    assert [h["id"] for h in written["homes"]] == [h.id for h in parsed.homes]
    assert written["total_cost_p"] == pytest.approx(sum(h["cost_p"] for h in written["homes"]))
    for output, scenario_home in zip(written["homes"], parsed.homes, strict=True):
        assert output["status"].split(":")[0] in ("optimal", "feasible")
        trajectories = output["trajectories"]
        assert all(len(values) == parsed.slots for values in trajectories.values())
        document = parse(Plan, output["plan"])
        assert document.ok, document.problems
        plan = document.document
        assert plan is not None
        assert plan.node == scenario_home.id
        assert plan.slots == parsed.slots
        assert len(dump(plan).encode()) <= 8 * 1024
        # The document carries the planned battery power and the expected trajectories.
        if "battery" in plan.devices:
            watts = [plan.devices["battery"].command_at(slot) for slot in range(parsed.slots)]
            assert len(watts) == parsed.slots
        assert plan.expected is not None
        assert plan.expected.grid_w == tuple(round(kw * 1000) for kw in trajectories["grid_kw"])
    # The street's evening cap is met by price coordination, and the plans show it.
    (event,) = written["events"]
    assert event["id"] == "dso-elm-evening"
    assert event["met"] is True
    assert event["status"].startswith("met after")
    assert event["homes"] == 3
    evening = slice(36, 40)  # 18:00 to 20:00
    elm = [h for h in written["homes"] if h["id"].startswith("elm-")]
    group_import = [sum(h["trajectories"]["grid_kw"][t] for h in elm) for t in range(96)]
    assert max(group_import[evening]) <= 1.0 + 1e-3


def test_written_trajectories_replay_and_cost_what_they_say(tmp_path: Path) -> None:
    from fractal.planner import Planner
    from fractal.planner.fleet import plan_fleet

    out = tmp_path / "plans.json"
    assert main(["plan", "--scenario", str(EXAMPLE), "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    parsed = load_scenario(EXAMPLE.read_bytes())
    plans, _ = plan_fleet(parsed, Planner())
    for output, scenario_home, again in zip(written["homes"], parsed.homes, plans, strict=True):
        assert replay(parsed, scenario_home, again).violations == []
        assert output["cost_p"] == pytest.approx(again.cost_p, abs=1e-5)
        assert output["trajectories"]["soc_kwh"] == pytest.approx(list(again.soc_kwh), abs=1e-5)


def test_battery_windows_replay_to_the_planned_power(tmp_path: Path) -> None:
    out = tmp_path / "plans.json"
    document = scenario(
        home(
            "one",
            load=[1.0] * 4,
            imp=[5.0, 5.0, 40.0, 40.0],
            exp=[0.0] * 4,
            battery={
                "capacity_kwh": 4.0,
                "soc_kwh": 0.0,
                "charge_kw": 2.0,
                "discharge_kw": 2.0,
                "charge_efficiency": 1.0,
                "discharge_efficiency": 1.0,
            },
        )
    )
    source = tmp_path / "scenario.json"
    source.write_text(json.dumps(document))
    assert main(["plan", "--scenario", str(source), "--out", str(out)]) == 0
    output = json.loads(out.read_text())["homes"][0]
    plan = parse(Plan, output["plan"]).document
    assert plan is not None
    commands = [plan.devices["battery"].command_at(slot) for slot in range(4)]
    signed = [
        0.0 if c is None or c.value is None else (c.value if c.mode == "charge" else -c.value)
        for c in commands
    ]
    assert signed == pytest.approx([w * 1000 for w in output["trajectories"]["battery_kw"]])
    assert signed[2:] == [-1000.0, -1000.0]


def test_bad_scenarios_fail_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "scenario.json"
    document = scenario(home("bad home", load=[1.0, 2.0], imp=[1.0], exp=[0.0, 0.0]))
    source.write_text(json.dumps(document))
    assert main(["plan", "--scenario", str(source), "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert "is not a valid scenario" in err
    assert "homes[0]) id: String should match pattern" in err
    assert not (tmp_path / "o.json").exists()


def test_missing_files_and_bad_json_fail_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"
    assert main(["plan", "--scenario", str(missing), "--out", str(tmp_path / "o.json")]) == 2
    assert "cannot read scenario" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["plan", "--scenario", str(broken), "--out", str(tmp_path / "o.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    unwritable = tmp_path / "no-such-dir" / "o.json"
    assert main(["plan", "--scenario", str(EXAMPLE), "--out", str(unwritable)]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_issued_needs_an_offset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["plan", "--scenario", "x", "--out", "y", "--issued", "2026-11-21T23:00:00"])
    assert "needs a UTC offset" in capsys.readouterr().err


def test_two_workers_write_equally_good_plans(tmp_path: Path) -> None:
    issued = ["--issued", "2026-11-21T23:00:00Z"]
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert main(["plan", "--scenario", str(EXAMPLE), "--out", str(one), *issued]) == 0
    assert (
        main(["plan", "--scenario", str(EXAMPLE), "--out", str(two), "--workers", "2", *issued])
        == 0
    )
    # An LP may have several optimal plans (ties); warm and fresh models may pick different
    # ones. What must agree: each home's status and cost, and the events' outcomes.
    first, second = json.loads(one.read_text()), json.loads(two.read_text())
    assert [(h["id"], h["status"]) for h in first["homes"]] == [
        (h["id"], h["status"]) for h in second["homes"]
    ]
    assert [h["cost_p"] for h in first["homes"]] == pytest.approx(
        [h["cost_p"] for h in second["homes"]], abs=1e-5
    )
    assert [e["met"] for e in first["events"]] == [e["met"] for e in second["events"]]


@pytest.mark.parametrize("option", [["--workers", "0"], ["--time-limit", "0"]])
def test_nonsense_options_fail_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str]
) -> None:
    out = tmp_path / "o.json"
    assert main(["plan", "--scenario", str(EXAMPLE), "--out", str(out), *option]) == 2
    assert "--time-limit must be > 0 and --workers at least 1" in capsys.readouterr().err
    assert not out.exists()

"""`fractal-aggregator plan --scenario FILE --out FILE`: plan every home of a scenario.

The output holds, per home, the status, the expected cost in pence, the expected trajectories
and the protocol `Plan` document the home's node would execute.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fractal.planner import HomePlan, Planner, Scenario, ScenarioError, load_scenario
from fractal.planner.document import PlanDocumentError, to_plan_document
from fractal.planner.fleet import plan_fleet
from fractal.protocol import to_jsonable

OUTPUT_SCHEMA = "fractal.plan-run.v1"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plan", help="plan every home of a scenario file (docs/planner.md)"
    )
    parser.add_argument("--scenario", type=Path, required=True, help="scenario JSON file")
    parser.add_argument("--out", type=Path, required=True, help="where to write the plans")
    parser.add_argument(
        "--issued",
        type=_utc_time,
        default=None,
        help="issue time of the plans, ISO-8601 with offset (default: now)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=5.0, help="solver time limit per home, seconds"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes to plan on (pays off for 1000s of homes)"
    )
    parser.set_defaults(run=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(Path(args.scenario).read_bytes())
    except OSError as error:
        return _fail(f"cannot read scenario {args.scenario}: {error.strerror or error}")
    except ScenarioError as error:
        return _fail(f"{args.scenario} is not a valid scenario:\n  " + "\n  ".join(error.problems))
    issued = args.issued or datetime.now(UTC)
    if args.time_limit <= 0 or args.workers < 1:
        return _fail("--time-limit must be > 0 and --workers at least 1")
    output = plan_scenario(
        scenario, issued, Planner(time_limit_s=args.time_limit), workers=args.workers
    )
    try:
        Path(args.out).write_text(json.dumps(output, indent=1) + "\n")
    except OSError as error:
        return _fail(f"cannot write {args.out}: {error.strerror or error}")
    for home in output["homes"]:
        print(f"{home['id']}: {home['status']}, {home['cost_p']:.2f} p")
    return 0


def plan_scenario(
    scenario: Scenario, issued: datetime, planner: Planner, workers: int = 1
) -> dict[str, Any]:
    """Plan every home and coordinate the events' groups; the document the command writes."""
    plans, outcomes = plan_fleet(scenario, planner, workers)
    homes = [_home_output(scenario, index, plan, issued) for index, plan in enumerate(plans)]
    return {
        "schema": OUTPUT_SCHEMA,
        "issued": issued.isoformat(),
        "start": scenario.slot_start(0).isoformat(),
        "step_seconds": scenario.step_seconds,
        "slots": scenario.slots,
        "total_cost_p": round(sum(home["cost_p"] for home in homes), 6),
        "homes": homes,
        "events": [
            {
                "id": outcome.event_id,
                "status": outcome.status,
                "met": outcome.met,
                "homes": outcome.homes,
                "max_excess_kw": round(outcome.max_excess_kw, 6),
                "swept": outcome.swept,
                "price_signal_p_per_kwh": outcome.signal_p_per_kwh,
            }
            for outcome in outcomes
        ],
    }


def _home_output(
    scenario: Scenario, index: int, plan: HomePlan, issued: datetime
) -> dict[str, Any]:
    home = scenario.homes[index]
    output: dict[str, Any] = {
        "id": home.id,
        "status": str(plan.status),
        "cost_p": round(plan.cost_p, 6),
        "trajectories": plan.trajectories(home.pv_kw),
    }
    try:
        output["plan"] = to_jsonable(to_plan_document(scenario, home, plan, issued))
    except PlanDocumentError as error:
        output["plan"] = None
        output["plan_problems"] = error.problems
    return output


def _utc_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a UTC offset: {text!r}")
    return parsed.astimezone(UTC)


def _fail(message: str) -> int:
    print(f"fractal-aggregator plan: {message}", file=sys.stderr)
    return 2

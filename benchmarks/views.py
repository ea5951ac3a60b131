"""Dashboards of a large group: the incremental rollup against reading every member's samples.

The issue asks for a group of 1 000 nodes x 7 days of 10-second telemetry: 60 million samples,
more than SQLite on this 2-core machine can generate and index in a benchmark's time. So this
generates a group of `--nodes` x `--days` into a temporary store (default 100 nodes x 1 day:
864 000 samples), says so in its output, and measures per sample and per node so the full size
can be extrapolated (the rollup's page view cost grows with buckets, not samples):

* ingest: samples/s inserted with the rollup's triggers against a store without them;
* first refresh: folding every stored sample into node and group buckets (once per store);
* incremental refresh: one new 10-second sample from every node (what a page view pays);
* each view: the group's and one node's dashboard (query layer + plotly figures) for the day
  and the week, time and peak memory (tracemalloc);
* a report: the members' contribution table as CSV;
* the reference: the same group dashboard computed naively, reading every member's samples
  with pandas, splitting and summing them, as ratios (reference / rollup) in the same run.

    .venv/bin/python benchmarks/views.py                     # 100 nodes x 1 day, a few minutes
    .venv/bin/python benchmarks/views.py --nodes 1000 --days 1
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aggregator_cloud.store import FIELDS, SqliteStore  # noqa: E402
from aggregator_cloud.views import Period, Subject, build_dashboard, install, refresh  # noqa: E402
from aggregator_cloud.views.figures import figures  # noqa: E402
from aggregator_cloud.views.flows import derive  # noqa: E402

START = datetime(2026, 3, 1, tzinfo=UTC)
SAMPLE_SECONDS = 10
GROUP = ("community", "bench")
ISSUE_SIZE = (1000, 7)


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_bytes: int


def timed[T](work: Callable[[], T]) -> tuple[T, float]:
    began = time.perf_counter()
    result = work()
    return result, time.perf_counter() - began


def measured[T](work: Callable[[], T]) -> tuple[T, Measured]:
    """Time one run, then the peak of Python allocations in a second run (tracemalloc slows
    what it traces, so it never runs during the timed one). `work` must be repeatable."""
    result, seconds = timed(work)
    tracemalloc.start()
    work()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, Measured(seconds, peak)


def node_id(index: int) -> str:
    return f"home-{index:05d}"


def day_rows(index: int, day: int, first_seq: int) -> list[tuple[Any, ...]]:
    """One node's day of samples: a PV bell, an evening peak, a battery that follows them."""
    count = 86_400 // SAMPLE_SECONDS
    seconds = np.arange(count) * SAMPLE_SECONDS
    hour = seconds / 3600
    rng = np.random.default_rng(index * 1000 + day)
    pv = np.maximum(0, np.sin((hour - 6) / 12 * np.pi)) * (2000 + 50 * (index % 40))
    pv = np.round(pv * rng.uniform(0.4, 1.0, count))
    load = np.round(300 + 1500 * ((hour > 17) & (hour < 21)) + rng.uniform(0, 400, count))
    has_battery = index % 2 == 0
    battery = np.clip(pv - load, -1500, 1500) if has_battery else np.zeros(count)
    grid = load + battery - pv
    soc = 20 + 60 * hour / 24
    first = np.datetime64(START.replace(tzinfo=None) + timedelta(days=day), "us")
    stamps = np.datetime_as_string(first + seconds.astype("timedelta64[s]"), unit="us")
    node = node_id(index)
    return [
        (
            node,
            first_seq + k,
            f"{stamps[k]}Z",
            grid[k].item(),
            pv[k].item(),
            battery[k].item() if has_battery else None,
            load[k].item(),
            0.0,
            None,
            None,
            soc[k].item() if has_battery else None,
            None,
        )
        for k in range(count)
    ]


def register(store: SqliteStore, nodes: int) -> None:
    with store.atomic() as db:
        for index in range(nodes):
            node = node_id(index)
            db.execute("INSERT OR IGNORE INTO nodes (node, name) VALUES (?, ?)", (node, node))
            db.execute("INSERT INTO node_tags VALUES (?, ?, ?)", (node, *GROUP))
            street = ("street", f"street-{index // 25}")
            db.execute("INSERT INTO node_tags VALUES (?, ?, ?)", (node, *street))


def fill(store: SqliteStore, nodes: int, days: int) -> int:
    """Insert every sample (as the store's ingest does, one transaction per node-day)."""
    columns = ["node", "seq", "ts", *FIELDS, "extra"]
    statement = (
        f"INSERT OR IGNORE INTO samples ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    total = 0
    for day in range(days):
        for index in range(nodes):
            rows = day_rows(index, day, day * 8640)
            with store.atomic() as db:
                db.executemany(statement, rows)
            total += len(rows)
    return total


def naive_group(store: SqliteStore, period: Period) -> dict[str, float]:
    """The reference: every member's samples read, split and summed per 5-minute bucket."""
    samples = store.tag_samples(*GROUP, period.start, period.end)
    flows = derive(samples).assign(node=samples["node"], ts=samples["ts"].dt.floor("5min"))
    means = flows.groupby(["node", "ts"]).mean().groupby(level="ts").sum()
    hours = 300 / 3600
    return {
        "demand_wh": float(means["demand_w"].sum() * hours),
        "import_wh": float(means["import_w"].sum() * hours),
        "peak_w": float(means["grid_w"].max()),
    }


def run(nodes: int, days: int, folder: Path) -> dict[str, Any]:
    end = START + timedelta(days=days)
    results: dict[str, Any] = {
        "nodes": nodes,
        "days": days,
        "note": (
            f"measured at {nodes} nodes x {days} day(s); the issue's group is "
            f"{ISSUE_SIZE[0]} x {ISSUE_SIZE[1]} days ({ISSUE_SIZE[0] * ISSUE_SIZE[1] * 8640:,} "
            "samples): extrapolate per sample (ingest, first refresh, naive) or per bucket (views)"
        ),
    }
    probe = min(nodes, 10)
    with SqliteStore(folder / "plain.sqlite") as plain:
        register(plain, probe)
        samples, plain_ingest = timed(lambda: fill(plain, probe, 1))
    with SqliteStore(folder / "views.sqlite") as store:
        install(store)
        register(store, nodes)
        total, ingest = timed(lambda: fill(store, nodes, days))
        results["samples"] = total
        results["ingest_samples_per_s"] = total / ingest
        results["ingest_without_rollup_samples_per_s"] = samples / plain_ingest
        stats, first = timed(lambda: refresh(store))
        results["first_refresh_s"] = first
        results["first_refresh_samples_per_s"] = stats.samples / first
        # One more sample from every node: what the next page view has to fold.
        extra = [day_rows(index, days, days * 8640)[0] for index in range(nodes)]
        with store.atomic() as db:
            db.executemany(
                f"INSERT INTO samples (node, seq, ts, {', '.join(FIELDS)}, extra) "
                f"VALUES ({', '.join('?' for _ in range(3 + len(FIELDS) + 1))})",
                extra,
            )
        stats, incremental = timed(lambda: refresh(store))
        results["incremental_refresh_samples"] = stats.samples
        results["incremental_refresh_ms"] = incremental * 1000
        _render(store, Subject(node=node_id(0)), Period.between(START, end), end)  # warm-up
        views = {
            "group_day": (Subject(group=GROUP), Period.between(end - timedelta(days=1), end)),
            "group_week": (Subject(group=GROUP), Period.between(end - timedelta(days=7), end)),
            "node_day": (Subject(node=node_id(0)), Period.between(end - timedelta(days=1), end)),
        }
        for name, (subject, period) in views.items():
            _size, spent = measured(
                lambda subject=subject, period=period: _render(store, subject, period, end)
            )
            results[f"view_{name}_ms"] = spent.seconds * 1000
            results[f"view_{name}_peak_mb"] = spent.peak_bytes / 1e6
        week = views["group_week"][1]
        csv, report = measured(lambda: _members_csv(store, week, end))
        results["report_members_csv_ms"] = report.seconds * 1000
        results["report_members_csv_peak_mb"] = report.peak_bytes / 1e6
        results["report_members_rows"] = csv.count("\n") - 1
        reference, naive = measured(lambda: naive_group(store, week))
        rolled, fast = measured(lambda: build_dashboard(store, Subject(group=GROUP), week, now=end))
        results["naive_group_week_ms"] = naive.seconds * 1000
        results["naive_group_week_peak_mb"] = naive.peak_bytes / 1e6
        results["rollup_group_week_ms"] = fast.seconds * 1000
        results["rollup_group_week_peak_mb"] = fast.peak_bytes / 1e6
        results["ratio_time_naive_over_rollup"] = naive.seconds / fast.seconds
        results["ratio_memory_naive_over_rollup"] = naive.peak_bytes / max(1, fast.peak_bytes)
        results["agree"] = {
            "demand_wh": [reference["demand_wh"], rolled.energy_wh["demand_wh"]],
            "import_wh": [reference["import_wh"], rolled.energy_wh["import_wh"]],
            "peak_w": [reference["peak_w"], rolled.peaks.get("with_w", float("nan"))],
        }
        results["size_on_disk_mb"] = (
            sum(path.stat().st_size for path in folder.glob("views.sqlite*")) / 1e6
        )
    results["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000
    return results


def _members_csv(store: SqliteStore, period: Period, now: datetime) -> str:
    board = build_dashboard(store, Subject(group=GROUP), period, now=now)
    assert board.members is not None
    return board.members.to_csv()


def _render(store: SqliteStore, subject: Subject, period: Period, now: datetime) -> int:
    board = build_dashboard(store, subject, period, now=now)
    return sum(len(figure) for figure in figures(board).values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--days", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="views-bench-") as folder:
        results = run(args.nodes, args.days, Path(folder))
    print(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The views benchmark at a tiny size: every figure is there and well formed, and the rollup's
group dashboard agrees with the naive read-every-sample reference it is compared against.
Timings are printed by the benchmark, never asserted here."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.views import run

MEASURES = (
    "ingest_samples_per_s",
    "ingest_without_rollup_samples_per_s",
    "first_refresh_s",
    "incremental_refresh_ms",
    "view_group_day_ms",
    "view_group_week_ms",
    "view_node_day_ms",
    "report_members_csv_ms",
    "naive_group_week_ms",
    "rollup_group_week_ms",
    "ratio_time_naive_over_rollup",
    "ratio_memory_naive_over_rollup",
)


def test_a_tiny_group_is_measured_and_agrees_with_the_reference(tmp_path: Path) -> None:
    results = run(3, 1, tmp_path)

    assert results["samples"] == 3 * 8640
    assert results["incremental_refresh_samples"] == 3  # one new sample per node, only those
    assert results["report_members_rows"] == 3
    for name in MEASURES:
        assert math.isfinite(results[name]), name
        assert results[name] > 0, name
    for name, (reference, rollup) in results["agree"].items():
        assert rollup == pytest.approx(reference), name
    assert "1000 x 7 days" in results["note"]

"""The scheduler's parts on their own: the inputs folder (files read, merged, refused, kept,
removed) and the re-plan queue's cool-down for deviations (the time passed in)."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator_cloud.local.scheduler import InputsFolder, ReplanQueue, ScheduleSettings

T0 = datetime(2026, 11, 22, 10, tzinfo=UTC)


def series(values: list[float]) -> dict[str, Any]:
    return {"start": "2026-11-22T00:00:00Z", "step_seconds": 1800, "values": values}


def write(folder: Path, name: str, document: object) -> None:
    path = folder / name
    text = document if isinstance(document, str) else json.dumps(document)
    path.write_text(text)
    # A new signature even when the size is unchanged and the clock is coarse.
    stamp = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def test_files_are_merged_in_name_order_and_a_change_is_noticed(tmp_path: Path) -> None:
    inputs = InputsFolder(tmp_path)
    assert not inputs.refresh()  # nothing there yet
    assert inputs.merged is None

    write(tmp_path, "10-tariff.json", {"import_p_per_kwh": series([20.0]), "load_kw": series([1])})
    write(tmp_path, "20-forecast.json", {"load_kw": series([0.5])})
    assert inputs.refresh()
    assert inputs.merged is not None
    assert inputs.merged.import_p_per_kwh is not None
    assert inputs.merged.load_kw is not None
    assert inputs.merged.load_kw.values == [0.5]  # the later file wins
    assert not inputs.refresh()  # unchanged files: no change

    write(tmp_path, "10-tariff.json", {"import_p_per_kwh": series([9.0])})
    assert inputs.refresh()
    assert inputs.merged.import_p_per_kwh is not None
    assert inputs.merged.import_p_per_kwh.values == [9.0]
    assert inputs.files() == ["10-tariff.json", "20-forecast.json"]


def test_a_broken_file_is_refused_with_its_reasons_and_its_previous_content_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inputs = InputsFolder(tmp_path)
    write(tmp_path, "tariff.json", {"import_p_per_kwh": series([20.0])})
    inputs.refresh()
    before = inputs.merged

    write(tmp_path, "tariff.json", '{"import_p_per_kwh": {"start": "yesterday"')
    with caplog.at_level(logging.ERROR):
        changed = inputs.refresh()

    assert not changed
    assert inputs.merged == before
    assert list(inputs.problems()) == ["tariff.json"]
    assert inputs.problems()["tariff.json"][0].startswith("not valid JSON")
    assert "tariff.json refused (keeping its previous content)" in caplog.text

    write(tmp_path, "tariff.json", {"import_p_per_kwh": series([21.0])})  # fixed
    assert inputs.refresh()
    assert inputs.problems() == {}


def test_a_broken_new_file_is_not_used_and_a_removed_file_stops_counting(tmp_path: Path) -> None:
    inputs = InputsFolder(tmp_path)
    write(tmp_path, "a.json", {"load_kw": series([1.0])})
    write(tmp_path, "b.json", {"load_kw": series([2.0]), "surprise": 1})
    inputs.refresh()
    assert inputs.merged is not None
    assert inputs.merged.load_kw is not None
    assert inputs.merged.load_kw.values == [1.0]
    assert inputs.problems() == {"b.json": ["surprise: Extra inputs are not permitted"]}

    (tmp_path / "a.json").unlink()
    assert inputs.refresh()
    assert inputs.merged is None


def test_any_reason_but_a_deviation_is_ready_at_once() -> None:
    queue = ReplanQueue(cooldown=timedelta(minutes=5))
    queue.add("home-1", ["descriptor"])
    queue.add("home-2", ["deviation"])
    assert queue.take_ready(T0) == (["home-1", "home-2"], ["descriptor", "deviation"])
    assert queue.next_ready() is None

    queue.add("home-1", ["replan_requested"])
    assert queue.take_ready(T0 + timedelta(seconds=1)) == (["home-1"], ["replan_requested"])


def test_deviation_replans_wait_out_the_cool_down_and_are_not_dropped() -> None:
    queue = ReplanQueue(cooldown=timedelta(minutes=5))
    queue.add("home-1", ["deviation"])
    assert queue.take_ready(T0) == (["home-1"], ["deviation"])

    queue.add("home-1", ["deviation"])  # off the new plan too, a minute later
    assert queue.take_ready(T0 + timedelta(minutes=1)) == ([], [])
    assert queue.next_ready() == T0 + timedelta(minutes=5)
    assert queue.take_ready(T0 + timedelta(minutes=5)) == (["home-1"], ["deviation"])


def test_a_full_round_takes_a_waiting_node_along() -> None:
    queue = ReplanQueue(cooldown=timedelta(minutes=5))
    queue.add("home-1", ["deviation"])
    queue.take_ready(T0)
    queue.add("home-1", ["deviation"])
    queue.discard("home-1")
    assert queue.next_ready() is None


def test_a_request_of_another_kind_does_not_wait_for_the_cool_down() -> None:
    queue = ReplanQueue(cooldown=timedelta(minutes=5))
    queue.add("home-1", ["deviation"])
    queue.take_ready(T0)
    queue.add("home-1", ["deviation"])
    queue.add("home-1", ["replan_requested"])  # the householder asked: now
    assert queue.take_ready(T0 + timedelta(seconds=10)) == (
        ["home-1"],
        ["deviation", "replan_requested"],
    )


@pytest.mark.parametrize(
    "settings",
    [{"interval_s": 0}, {"inputs_check_s": -1}, {"deviation_cooldown_s": -5}],
)
def test_bad_schedule_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="intervals must be > 0"):
        ScheduleSettings(**settings)

"""Snapshot deadband, rate limit and heartbeat; reconnect back-off."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from fractal.link.reporting import Backoff, SnapshotPolicy, deadband, flatten
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def reported_policy(values: dict[str, object], **options: object) -> SnapshotPolicy:
    policy = SnapshotPolicy(**options)  # type: ignore[arg-type]
    assert policy.due(values, T0)  # the first snapshot is always reported
    policy.reported(values, T0)
    return policy


def test_small_changes_wait_for_the_heartbeat() -> None:
    policy = reported_policy({"grid_w": 1000, "soc_pct": 50})
    assert not policy.due({"grid_w": 1040, "soc_pct": 50.5}, at(120))
    assert not policy.due({"grid_w": 1040, "soc_pct": 50.5}, at(899))
    assert policy.due({"grid_w": 1040, "soc_pct": 50.5}, at(900))


def test_a_change_beyond_the_deadband_is_reported_but_not_before_the_minimum_interval() -> None:
    policy = reported_policy({"grid_w": 1000})
    assert not policy.due({"grid_w": 3000}, at(59))
    assert policy.due({"grid_w": 3000}, at(60))


def test_drift_is_measured_from_what_was_last_reported() -> None:
    policy = reported_policy({"grid_w": 1000})
    assert not policy.due({"grid_w": 1030}, at(60))
    assert policy.due({"grid_w": 1060}, at(120))  # 60 W away from the reported 1000


def test_seq_ts_and_energy_counters_alone_do_not_trigger_an_update() -> None:
    first = {"seq": 1, "ts": "2026-01-01T00:00:00Z", "energy": {"import_wh": 10}, "grid_w": 5}
    policy = reported_policy(first)
    later = {"seq": 9, "ts": "2026-01-01T00:05:00Z", "energy": {"import_wh": 90}, "grid_w": 5}
    assert not policy.due(later, at(300))


@pytest.mark.parametrize(
    "change",
    [
        {"plan": {"id": "p2", "slot": 0}},  # a new plan in force
        {"deviations": ["soc_pct"]},
        {"grid_w": None},  # a meter went missing
        {"devices": {"hydro": {"flow_m3_s": 1.3}}},
    ],
)
def test_non_numeric_and_nested_changes_count(change: dict[str, object]) -> None:
    base = {"grid_w": 5, "plan": {"id": "p1", "slot": 0}, "deviations": [], "devices": {}}
    base["devices"] = {"hydro": {"flow_m3_s": 1.2}}
    policy = reported_policy(base)
    assert policy.due({**base, **change}, at(60))


def test_configured_deadbands_override_the_unit_defaults() -> None:
    policy = reported_policy({"grid_w": 0}, deadbands={"grid_w": 500})
    assert not policy.due({"grid_w": 400}, at(60))
    assert policy.due({"grid_w": 600}, at(60))


def test_a_clock_going_back_does_not_silence_reports() -> None:
    policy = reported_policy({"grid_w": 0})
    assert policy.due({"grid_w": 0}, at(-3600))


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="min_interval"):
        SnapshotPolicy(min_interval=timedelta(hours=1), max_silence=timedelta(minutes=1))


def test_helpers() -> None:
    assert flatten({"a": {"b": {"c_w": 1}}, "d": 2}) == {"a.b.c_w": 1, "d": 2}
    assert deadband("devices.ev.power_w", {}) == 50.0
    assert deadband("devices.hydro.flow_m3_s", {}) == 0.05  # longest suffix wins over "_s"
    assert deadband("devices.hydro.level_m", {}) == 0.01
    assert deadband("status", {}) == 0.0


def test_backoff_grows_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(initial=1, cap=30, rng=random.Random(4))
    delays = [backoff.next_delay() for _ in range(10)]
    ceilings = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    backoff.reset()
    assert backoff.next_delay() <= 1


@given(st.integers(0, 2**32), st.integers(1, 200))
def test_backoff_never_exceeds_the_cap(seed: int, attempts: int) -> None:
    backoff = Backoff(initial=0.5, cap=60, rng=random.Random(seed))
    assert all(0.25 <= backoff.next_delay() <= 60 for _ in range(attempts))


def test_two_nodes_with_different_randomness_spread_out() -> None:
    a, b = Backoff(rng=random.Random(1)), Backoff(rng=random.Random(2))
    assert [a.next_delay() for _ in range(5)] != [b.next_delay() for _ in range(5)]


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=10, cap=1)


def test_a_change_in_deviations_is_reported_at_once() -> None:
    policy = reported_policy({"grid_w": 1000})
    assert policy.due({"grid_w": 1000, "deviations": ["soc_pct"]}, at(1))
    policy.reported({"grid_w": 1000, "deviations": ["soc_pct"]}, at(1))
    assert not policy.due({"grid_w": 1000, "deviations": ["soc_pct"]}, at(2))  # no news
    assert policy.due({"grid_w": 1000, "deviations": ["soc_pct", "grid_w"]}, at(3))
    assert policy.due({"grid_w": 1000}, at(3))  # back on the plan: news too
    policy.reported({"grid_w": 1000, "deviations": []}, at(3))
    assert not policy.due({"grid_w": 1000}, at(4))  # absent and empty: both no deviation

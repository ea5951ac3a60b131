"""The glitch filter: what a meter sends that is never passed on, and what always is."""

from __future__ import annotations

import itertools
import logging
import math
from datetime import UTC, datetime, timedelta

import pytest
from fractal.meters import (
    CUMULATIVE,
    SENTINEL_POWER_W,
    Glitch,
    MeterFilter,
    MeterReading,
    Quantity,
)
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SILENCE = timedelta(minutes=3)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_filter() -> MeterFilter:
    return MeterFilter("Glow CAD", SILENCE)


def test_good_readings_are_kept_per_quantity() -> None:
    meter = new_filter()
    assert (
        meter.accept(MeterReading(timestamp=at(0), power_w=500.0, import_energy_wh=1000.0), at(0))
        == []
    )
    assert meter.accept(MeterReading(timestamp=at(5), gas_volume_m3=12.5), at(5)) == []

    state = meter.state(at(6))
    assert state.number(Quantity.POWER) == 500.0
    assert state.number(Quantity.IMPORT_ENERGY) == 1000.0
    assert state.number(Quantity.GAS_VOLUME) == 12.5
    assert state.stamped[Quantity.POWER] == at(0)
    assert state.stamped[Quantity.GAS_VOLUME] == at(5)


def test_counter_that_drops_to_zero_is_dropped_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    meter = new_filter()
    meter.accept(MeterReading(timestamp=at(0), import_energy_wh=4_595_563.0), at(0))
    with caplog.at_level(logging.WARNING):
        for second in (10, 20, 30):
            rejected = meter.accept(
                MeterReading(timestamp=at(second), import_energy_wh=0.0), at(second)
            )
            assert [(r.quantity, r.glitch) for r in rejected] == [
                (Quantity.IMPORT_ENERGY, Glitch.DROPPED_TO_ZERO)
            ]
    assert meter.state(at(31)).number(Quantity.IMPORT_ENERGY) == 4_595_563.0
    assert len(caplog.records) == 1
    assert "dropped_to_zero" in caplog.text
    assert "Glow CAD" in caplog.text


def test_logged_again_only_after_a_good_value(caplog: pytest.LogCaptureFixture) -> None:
    meter = new_filter()
    meter.accept(MeterReading(timestamp=at(0), import_energy_wh=100.0), at(0))
    with caplog.at_level(logging.WARNING):
        meter.accept(MeterReading(timestamp=at(1), import_energy_wh=50.0), at(1))
        meter.accept(MeterReading(timestamp=at(2), import_energy_wh=60.0), at(2))
        meter.accept(MeterReading(timestamp=at(3), import_energy_wh=101.0), at(3))
        meter.accept(MeterReading(timestamp=at(4), import_energy_wh=90.0), at(4))
    assert [r.message.count("went_backwards") for r in caplog.records] == [1, 1]


def test_counter_going_backwards_is_dropped() -> None:
    meter = new_filter()
    meter.accept(MeterReading(timestamp=at(0), gas_energy_wh=7_063_546.0), at(0))
    rejected = meter.accept(MeterReading(timestamp=at(10), gas_energy_wh=7_063_000.0), at(10))
    assert [r.glitch for r in rejected] == [Glitch.WENT_BACKWARDS]
    assert meter.state(at(10)).number(Quantity.GAS_ENERGY) == 7_063_546.0


def test_export_counter_of_zero_is_fine_from_the_start() -> None:
    meter = new_filter()
    assert meter.accept(MeterReading(timestamp=at(0), export_energy_wh=0.0), at(0)) == []
    assert meter.accept(MeterReading(timestamp=at(10), export_energy_wh=0.0), at(10)) == []
    assert meter.state(at(10)).number(Quantity.EXPORT_ENERGY) == 0.0


def test_negative_counter_is_dropped() -> None:
    meter = new_filter()
    rejected = meter.accept(MeterReading(timestamp=at(0), import_energy_wh=-5.0), at(0))
    assert [r.glitch for r in rejected] == [Glitch.WENT_BACKWARDS]


def test_power_sentinel_is_dropped_but_other_quantities_kept() -> None:
    meter = new_filter()
    meter.accept(MeterReading(timestamp=at(0), power_w=500.0), at(0))
    rejected = meter.accept(
        MeterReading(timestamp=at(10), power_w=SENTINEL_POWER_W, import_energy_wh=2000.0), at(10)
    )
    assert [(r.quantity, r.glitch) for r in rejected] == [(Quantity.POWER, Glitch.SENTINEL)]
    state = meter.state(at(10))
    assert state.number(Quantity.POWER) == 500.0
    assert state.number(Quantity.IMPORT_ENERGY) == 2000.0


def test_real_export_is_not_the_sentinel() -> None:
    meter = new_filter()
    assert meter.accept(MeterReading(timestamp=at(0), power_w=-3500.0), at(0)) == []
    assert meter.state(at(0)).number(Quantity.POWER) == -3500.0


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_values_that_are_not_finite_are_dropped(value: float) -> None:
    meter = new_filter()
    rejected = meter.accept(MeterReading(timestamp=at(0), power_w=value), at(0))
    assert [r.glitch for r in rejected] == [Glitch.NOT_FINITE]
    assert meter.state(at(0)).get(Quantity.POWER) is None


def test_duplicated_and_late_messages_are_ignored_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    meter = new_filter()
    meter.accept(MeterReading(timestamp=at(20), power_w=800.0), at(20))
    with caplog.at_level(logging.DEBUG, logger="fractal.meters"):
        duplicate = meter.accept(MeterReading(timestamp=at(20), power_w=900.0), at(21))
        late = meter.accept(MeterReading(timestamp=at(10), power_w=100.0), at(22))
    assert [r.glitch for r in duplicate + late] == [Glitch.STALE, Glitch.STALE]
    assert meter.state(at(22)).number(Quantity.POWER) == 800.0
    assert caplog.records == []  # routine for a CAD repeating its gas reading


def test_silence_makes_every_value_unknown_until_a_message_comes() -> None:
    meter = new_filter()
    assert meter.silent(at(0))  # nothing heard yet
    meter.accept(MeterReading(timestamp=at(0), power_w=500.0), at(0))
    assert not meter.silent(at(179))
    assert meter.silent_for(at(179)) == timedelta(0)
    assert meter.state(at(180)).get(Quantity.POWER) is None
    assert meter.silent_for(at(600)) == timedelta(seconds=600)
    # A duplicate still shows the CAD is alive.
    meter.accept(MeterReading(timestamp=at(0), power_w=500.0), at(601))
    assert meter.state(at(601)).number(Quantity.POWER) == 500.0


def test_a_meter_never_heard_is_silent_since_listening_began() -> None:
    assert new_filter().silent_for(at(600)) == timedelta(0)  # no start known
    meter = MeterFilter("Glow CAD", SILENCE, started=at(0))
    assert meter.silent_for(at(60)) == timedelta(seconds=60)  # nothing heard: silent
    assert meter.silent_for(at(600)) == timedelta(seconds=600)


def test_restored_counter_guards_the_first_reading_after_a_restart() -> None:
    meter = new_filter()
    meter.restore(Quantity.IMPORT_ENERGY, 4_595_563.0)
    meter.restore(Quantity.POWER, 100.0)  # only counters are restored
    rejected = meter.accept(MeterReading(timestamp=at(0), import_energy_wh=0.0, power_w=5.0), at(0))
    assert [r.glitch for r in rejected] == [Glitch.DROPPED_TO_ZERO]
    assert meter.accept(MeterReading(timestamp=at(1), import_energy_wh=4_595_600.0), at(1)) == []
    meter.restore(Quantity.IMPORT_ENERGY, 1.0)  # a value in hand is never replaced
    assert meter.state(at(2)).number(Quantity.IMPORT_ENERGY) == 4_595_600.0


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        MeterReading(timestamp=datetime(2026, 1, 1), power_w=1.0)


# --- properties over arbitrary message sequences, glitches and all ---

_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.just(0.0),
    st.just(SENTINEL_POWER_W),
)
_messages = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=50),  # stamp: repeats and goes back in time
        st.sampled_from([Quantity.POWER, Quantity.IMPORT_ENERGY, Quantity.GAS_VOLUME]),
        _values,
    ),
    max_size=60,
)
_FIELD = {
    Quantity.POWER: "power_w",
    Quantity.IMPORT_ENERGY: "import_energy_wh",
    Quantity.GAS_VOLUME: "gas_volume_m3",
}


def _run(messages: list[tuple[int, Quantity, float]]) -> list[tuple[Quantity, float, datetime]]:
    """Feed the messages; the (quantity, value, stamp) accepted, in order."""
    meter = new_filter()
    accepted = []
    for index, (stamp, quantity, value) in enumerate(messages):
        reading = MeterReading(timestamp=at(stamp), **{_FIELD[quantity]: value})
        rejected = meter.accept(reading, at(index))
        if not rejected:
            accepted.append((quantity, value, at(stamp)))
            assert meter.state(at(index)).values[quantity] == value
    return accepted


@given(_messages)
def test_counters_passed_on_never_go_down_nor_to_zero_after_a_value(
    messages: list[tuple[int, Quantity, float]],
) -> None:
    accepted = _run(messages)
    for quantity in CUMULATIVE & set(_FIELD):
        series = [value for q, value, _ in accepted if q is quantity]
        assert series == sorted(series)
        assert all(value >= 0 for value in series)
        counted = False
        for value in series:
            assert value > 0 or not counted
            counted = counted or value > 0


@given(_messages)
def test_no_sentinel_nor_non_finite_value_is_passed_on_and_stamps_only_advance(
    messages: list[tuple[int, Quantity, float]],
) -> None:
    accepted = _run(messages)
    assert all(math.isfinite(value) for _, value, _ in accepted)
    assert all(value != SENTINEL_POWER_W for q, value, _ in accepted if q is Quantity.POWER)
    for quantity in _FIELD:
        stamps = [stamp for q, _, stamp in accepted if q is quantity]
        assert all(earlier < later for earlier, later in itertools.pairwise(stamps))


@given(
    st.lists(
        st.tuples(st.sampled_from(list(_FIELD)), st.floats(min_value=0.001, max_value=1e9)),
        max_size=40,
    )
)
def test_every_good_message_in_order_is_passed_on(steps: list[tuple[Quantity, float]]) -> None:
    """Later stamps, counters that rise, no sentinel: nothing is lost."""
    totals: dict[Quantity, float] = {}
    messages = []
    for index, (quantity, step) in enumerate(steps):
        value = totals.get(quantity, 0.0) + step if quantity in CUMULATIVE else step
        totals[quantity] = value
        messages.append((index, quantity, value))
    assert len(_run(messages)) == len(messages)

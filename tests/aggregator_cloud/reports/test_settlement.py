"""Behind-the-meter settlement: every register balances to the Wh for any meter data
(hypothesis), the parties' money adds up to exactly zero, a worked half-hour, time-of-use bands
by local time across a clock change, registers read from a store's meter counters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from fractal.protocol import Reading
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator_cloud.reports.settlement import (
    RATES,
    REGISTERS,
    SettlementError,
    allocate,
    billing_csv,
    monthly_statements,
    registers_from_counters,
    settle,
    time_of_use,
)
from aggregator_cloud.store import SqliteStore

WH = st.integers(min_value=0, max_value=200_000)


@st.composite
def half_hours(draw: st.DrawFn) -> tuple[int, int, int, int, int]:
    """(import, export, pv, charge, discharge) Wh that leave the host >= 0 Wh."""
    host, export, pv, charge, discharge = (draw(WH) for _ in range(5))
    imported = host + export + charge - pv - discharge
    # when the sources exceed the sinks, nothing was imported and the host used the rest
    imported = max(imported, 0)
    return imported, export, pv, charge, discharge


@given(half_hours())
def test_every_register_balances_to_the_wh(registers: tuple[int, int, int, int, int]) -> None:
    imported, exported, pv, charge, discharge = registers
    split = allocate(*registers)
    host = imported + pv + discharge - exported - charge
    parts = vars(split).values()
    assert all(isinstance(part, int) and part >= 0 for part in parts)
    assert split.pv_to_host + split.pv_to_battery + split.pv_to_export == pv
    assert split.battery_to_host + split.battery_to_export + split.battery_to_battery == discharge
    assert split.grid_to_host + split.grid_to_battery + split.grid_to_export == imported
    assert split.pv_to_export + split.battery_to_export + split.grid_to_export == exported
    assert split.pv_to_battery + split.battery_to_battery + split.grid_to_battery == charge
    assert split.host_wh == host
    # PV serves the host first, then the battery
    assert split.pv_to_host == min(pv, host)
    assert split.pv_to_battery == min(pv - split.pv_to_host, charge)


RATE = st.decimals(min_value=0, max_value=100, places=4)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(half_hours(), RATE, RATE, RATE), min_size=1, max_size=120),
    st.integers(min_value=0, max_value=3000),
)
def test_months_and_money_balance(
    rows: list[tuple[tuple[int, ...], Decimal, Decimal, Decimal]], offset: int
) -> None:
    # from some half-hour of early 2026, across month ends for large offsets
    start = datetime(2026, 1, 31, tzinfo=UTC) + offset * timedelta(minutes=30)
    index = pd.date_range(start, periods=len(rows), freq="30min")
    registers = pd.DataFrame([row[0] for row in rows], index=index, columns=list(REGISTERS))
    rates = pd.DataFrame([row[1:] for row in rows], index=index, columns=list(RATES), dtype=object)
    table = settle(registers, rates)
    for name in REGISTERS:
        assert table[name].sum() == registers[name].sum()
    statements = monthly_statements(table)
    months = {statement.month for statement in statements}
    for month in months:
        nets = [statement.net_p for statement in statements if statement.month == month]
        assert sum(nets, Decimal(0)) == 0
    host_imports = sum(
        dict(statement.energy)["import_wh"] for statement in statements if statement.party == "host"
    )
    assert host_imports == registers["import_wh"].sum()
    assert all(0 <= deemed * 2 <= pv for pv, deemed in table[["pv_wh", "deemed_export_wh"]].values)


def test_a_worked_half_hour() -> None:
    """The battery charges from the grid overnight; the morning PV partly serves the school."""
    index = pd.DatetimeIndex([datetime(2026, 6, 1, 4, 30, tzinfo=UTC)])
    registers = pd.DataFrame([[1660, 130, 260, 1000, 0]], index=index, columns=list(REGISTERS))
    rates = pd.DataFrame(
        [[Decimal("10.24"), Decimal("5.5"), Decimal("8")]], index=index, columns=list(RATES)
    )
    row = settle(registers, rates).iloc[0]
    # host = 1660 + 260 + 0 - 130 - 1000 = 790; PV: 260 to the host; grid: 530 host, 1000 battery
    # exports 130 came from imports spilled back (no PV was left)
    assert (row["host_wh"], row["pv_to_host"], row["grid_to_host"]) == (790, 260, 530)
    assert (row["grid_to_battery"], row["grid_to_export"]) == (1000, 130)
    assert row["deemed_export_wh"] == 130
    assert row["host_debit_grid_p"] == Decimal("16.9984")  # 1660 Wh at 10.24 p/kWh
    assert row["host_credit_owner_p"] == Decimal("10.24")  # 1000 Wh reimbursed
    assert row["host_debit_owner_p"] == Decimal("2.08")  # 260 Wh PV at 8 p/kWh
    assert row["host_export_credit_p"] == Decimal("0.715")
    lines = billing_csv(settle(registers, rates)).splitlines()
    assert lines[1].startswith("2026-06-01T04:30:00Z,2026-06-01T05:30:00+01:00,1660,130,260,")
    assert lines[1].endswith(",16.9984,10.2400,2.0800,0.0000,0.7150")


def test_impossible_meters_and_missing_rates_are_refused() -> None:
    index = pd.DatetimeIndex([datetime(2026, 6, 1, 12, tzinfo=UTC)])
    registers = pd.DataFrame([[0, 500, 100, 0, 0]], index=index, columns=list(REGISTERS))
    rates = pd.DataFrame([[Decimal(1)] * 3], index=index, columns=list(RATES))
    with pytest.raises(SettlementError, match=r"2026-06-01T12:00:00\+00:00.*leave the host -400"):
        settle(registers, rates)
    with pytest.raises(SettlementError, match="no rates for the half-hour"):
        settle(registers, rates.iloc[:0])
    with pytest.raises(SettlementError, match="whole Wh >= 0"):
        allocate(-1, 0, 0, 0, 0)


def test_time_of_use_bands_follow_local_time_across_the_clock_change() -> None:
    bands = {time(0): "15", time(16): "30", time(19): "15"}
    # 29 March 2026: the clocks go forward at 01:00 UTC
    index = pd.date_range("2026-03-28T15:30Z", "2026-03-29T16:00Z", freq="30min")
    rates = time_of_use(index, bands)
    assert rates[pd.Timestamp("2026-03-28T16:00Z")] == Decimal(30)  # 16:00 GMT
    assert rates[pd.Timestamp("2026-03-28T15:30Z")] == Decimal(15)
    assert rates[pd.Timestamp("2026-03-29T15:00Z")] == Decimal(30)  # 16:00 BST
    assert rates[pd.Timestamp("2026-03-29T14:30Z")] == Decimal(15)
    with pytest.raises(SettlementError, match="at least one band"):
        time_of_use(index, {})


@pytest.fixture(name="store")
def _store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "fleet.sqlite3") as store:
        yield store


def test_registers_from_a_stores_meter_counters(store: SqliteStore) -> None:
    start = datetime(2026, 5, 31, 22, tzinfo=UTC)
    samples = []
    for minute in range(0, 4 * 60, 7):  # a reading every 7 minutes, off the half-hour grid
        counters = {
            "import_wh": 1_000_000.4 + 9.3 * minute,
            "export_wh": 50.0 + 1.1 * minute,
            "pv_wh": 7_000.0 + 4.6 * minute,
            "battery_charge_wh": 300.0 + 2.5 * minute,
            "battery_discharge_wh": 200.0 + 0.9 * minute,
        }
        when = start + timedelta(minutes=minute)
        samples.append(Reading(seq=minute, ts=when, energy=counters))
    store.add_samples("school", samples)
    frame = store.samples("school", extra=True)
    counters = pd.json_normalize([json.loads(text)["energy"] for text in frame["extra"]])
    counters.index = frame.index
    registers = registers_from_counters(counters, start, start + timedelta(hours=4))
    # the first half-hour ends at 22:30: the last reading at or before it is minute 28
    assert registers.index[0] == pd.Timestamp("2026-05-31T22:00Z")
    first = registers.loc[pd.Timestamp("2026-05-31T22:00Z"), "import_wh"]
    assert first == round(1_000_000.4 + 9.3 * 28) - round(1_000_000.4)
    # the last boundary read is 01:30 (minute 210); 02:00 is after the last reading (238)
    assert len(registers) == 7
    assert registers["import_wh"].sum() == round(1_000_000.4 + 9.3 * 210) - round(1_000_000.4)
    assert registers["pv_wh"].sum() == round(7_000.0 + 4.6 * 210) - 7_000
    backwards = counters.copy()
    backwards.iloc[10:, 0] -= 500
    with pytest.raises(SettlementError, match="went backwards"):
        registers_from_counters(backwards, start, start + timedelta(hours=4))

"""Behind-the-meter settlement: a community organisation (the *owner*) owns PV and a battery at a
*host* (a school) behind the host's grid meter. Every half-hour's metered energy is allocated
between the parties and priced at that half-hour's rates (docs/reports.md, "Settlement").

Energy is integer watt-hours throughout, so every register balances exactly; money is Decimal
pence (Wh x p/kWh / 1000 is exact in Decimal), rounded only where a statement shows it.

Allocation of a half-hour (registers: grid import I, grid export E, PV generation P, battery
charge C and discharge D; the host's consumption is what the meters leave, H = I + P + D - E - C):

1. PV to the host first, then into the battery, then exported;
2. the battery's discharge to the host, then exported; any rest went back into the battery
   within the half-hour (it charged and discharged in the same half-hour);
3. grid import to the host, then into the battery; any rest was exported again within the
   half-hour (`spill`: imported and exported by the host in the same half-hour).

Money per half-hour: the host pays the grid for all imports (`host_debit_grid`); the owner
reimburses the host for the battery's grid energy at the import rate (`host_credit_owner`);
the host pays the owner for the PV and battery energy it used at the agreed rate
(`host_debit_owner`); export payments go to whose energy was exported (`owner_export_credit`,
`host_export_credit`). Deemed exports (for a feed-in tariff) are `deemed_fraction` of generation,
rounded down to the Wh."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Final
from zoneinfo import ZoneInfo

import pandas as pd

LONDON: Final = ZoneInfo("Europe/London")
HALF_HOUR: Final = timedelta(minutes=30)
REGISTERS: Final = ("import_wh", "export_wh", "pv_wh", "charge_wh", "discharge_wh")
RATES: Final = ("import_p_per_kwh", "export_p_per_kwh", "ppa_p_per_kwh")
"""Per half-hour: the host's import tariff, the export tariff, the host-owner agreed rate."""


class SettlementError(ValueError):
    """Meter data that cannot be settled (a negative register, consumption below zero, a
    missing rate); says which half-hour."""


@dataclass(frozen=True)
class Allocation:
    """Where a half-hour's energy went, Wh."""

    pv_to_host: int
    pv_to_battery: int
    pv_to_export: int
    battery_to_host: int
    battery_to_export: int
    battery_to_battery: int
    grid_to_host: int
    grid_to_battery: int
    grid_to_export: int

    @property
    def host_wh(self) -> int:
        return self.pv_to_host + self.battery_to_host + self.grid_to_host


def allocate(
    import_wh: int, export_wh: int, pv_wh: int, charge_wh: int, discharge_wh: int
) -> Allocation:
    """One half-hour's allocation (module docstring); SettlementError for impossible meters."""
    registers = (import_wh, export_wh, pv_wh, charge_wh, discharge_wh)
    if any(not isinstance(value, int) or value < 0 for value in registers):
        raise SettlementError(f"registers must be whole Wh >= 0, not {registers}")
    host = import_wh + pv_wh + discharge_wh - export_wh - charge_wh
    if host < 0:
        raise SettlementError(
            f"the meters leave the host {host} Wh (import {import_wh} + PV {pv_wh} + "
            f"discharge {discharge_wh} - export {export_wh} - charge {charge_wh}): "
            "more went out than came in"
        )
    pv_host = min(pv_wh, host)
    pv_battery = min(pv_wh - pv_host, charge_wh)
    pv_export = pv_wh - pv_host - pv_battery
    battery_host = min(discharge_wh, host - pv_host)
    battery_export = min(discharge_wh - battery_host, export_wh - pv_export)
    battery_battery = discharge_wh - battery_host - battery_export
    grid_host = host - pv_host - battery_host
    grid_battery = charge_wh - pv_battery - battery_battery
    grid_export = export_wh - pv_export - battery_export
    return Allocation(
        pv_host,
        pv_battery,
        pv_export,
        battery_host,
        battery_export,
        battery_battery,
        grid_host,
        grid_battery,
        grid_export,
    )


def pence(energy_wh: int, rate_p_per_kwh: Decimal) -> Decimal:
    """Exact: Wh x p/kWh / 1000."""
    return energy_wh * rate_p_per_kwh / 1000


BILL_COLUMNS: Final = (
    "host_debit_grid_p",
    "host_credit_owner_p",
    "host_debit_owner_p",
    "owner_export_credit_p",
    "host_export_credit_p",
)
WH_COLUMNS: Final = (
    *REGISTERS,
    "host_wh",
    *(field.name for field in fields(Allocation)),
    "generation_wh",
    "deemed_export_wh",
)


def settle(
    registers: pd.DataFrame, rates: pd.DataFrame, deemed_fraction: Fraction = Fraction(1, 2)
) -> pd.DataFrame:
    """The half-hourly billing table: index the half-hour's start (UTC), columns WH_COLUMNS
    (int64) and BILL_COLUMNS (Decimal pence). `registers` has REGISTERS (whole Wh) and `rates`
    RATES (Decimal p/kWh), both indexed by half-hour start; every half-hour needs its rates."""
    missing = registers.index.difference(rates.index)
    if len(missing):
        raise SettlementError(f"no rates for the half-hour starting {missing[0].isoformat()}")
    rows = []
    for start, row in registers.iterrows():
        assert isinstance(start, pd.Timestamp)
        try:
            values = [int(row[name]) for name in REGISTERS]
            split = allocate(*values)
        except (SettlementError, ValueError, TypeError) as error:
            raise SettlementError(f"half-hour starting {start.isoformat()}: {error}") from None
        rate = rates.loc[start]
        assert isinstance(rate, pd.Series)
        rows.append(_billing_row(values, split, rate, deemed_fraction))
    table = pd.DataFrame(rows, index=registers.index, columns=[*WH_COLUMNS, *BILL_COLUMNS])
    return table.astype(dict.fromkeys(WH_COLUMNS, "int64"))


def _billing_row(
    values: Sequence[int], split: Allocation, rate: pd.Series, deemed_fraction: Fraction
) -> list[object]:
    import_wh, pv_wh = values[0], values[2]
    import_rate, export_rate, ppa_rate = (Decimal(rate[name]) for name in RATES)
    deemed = int(pv_wh * deemed_fraction)  # int() rounds towards zero: down, for Wh >= 0
    money = (
        pence(import_wh, import_rate),
        pence(split.grid_to_battery, import_rate),
        pence(split.pv_to_host + split.battery_to_host, ppa_rate),
        pence(split.pv_to_export + split.battery_to_export, export_rate),
        pence(split.grid_to_export, export_rate),
    )
    return [*values, split.host_wh, *astuple(split), pv_wh, deemed, *money]


@dataclass(frozen=True)
class Statement:
    """One party's month: lines (description, pence: + the party receives, - it pays)."""

    party: str
    month: str
    lines: tuple[tuple[str, Decimal], ...]
    energy: tuple[tuple[str, int], ...]

    @property
    def net_p(self) -> Decimal:
        return sum((amount for _, amount in self.lines), Decimal(0))


def monthly_statements(table: pd.DataFrame) -> list[Statement]:
    """Per calendar month (Europe/London) a statement for the host, the owner and the grid
    (the supplier): every line of one party is another's opposite line, so the three nets add
    up to exactly zero."""
    statements: list[Statement] = []
    months = pd.DatetimeIndex(table.index).tz_convert(LONDON).strftime("%Y-%m")
    for month, part in table.groupby(months):
        total = {name: part[name].sum() for name in (*WH_COLUMNS, *BILL_COLUMNS)}
        debit_grid = Decimal(total["host_debit_grid_p"])
        credit_owner = Decimal(total["host_credit_owner_p"])
        debit_owner = Decimal(total["host_debit_owner_p"])
        owner_export = Decimal(total["owner_export_credit_p"])
        host_export = Decimal(total["host_export_credit_p"])
        statements += [
            Statement(
                "host",
                str(month),
                (
                    ("grid imports", -debit_grid),
                    ("reimbursed by the owner for the battery's grid energy", credit_owner),
                    ("PV and battery energy used, to the owner", -debit_owner),
                    ("exports of imported energy", host_export),
                ),
                _energy(total, "import_wh", "host_wh", "pv_to_host", "battery_to_host"),
            ),
            Statement(
                "owner",
                str(month),
                (
                    ("PV and battery energy the host used", debit_owner),
                    ("the battery's grid energy, to the host", -credit_owner),
                    ("exports of PV and battery energy", owner_export),
                ),
                _energy(
                    total,
                    "pv_wh",
                    "charge_wh",
                    "discharge_wh",
                    "grid_to_battery",
                    "export_wh",
                    "deemed_export_wh",
                ),
            ),
            Statement(
                "grid",
                str(month),
                (
                    ("the host's imports", debit_grid),
                    ("exports", -(owner_export + host_export)),
                ),
                _energy(total, "import_wh", "export_wh"),
            ),
        ]
    return statements


def _energy(total: Mapping[str, object], *names: str) -> tuple[tuple[str, int], ...]:
    return tuple((name, int(str(total[name]))) for name in names)


def time_of_use(index: pd.DatetimeIndex, bands: Mapping[time, Decimal | str]) -> pd.Series:
    """A rate per half-hour from bands by Europe/London local start time: each band's rate
    applies from its time until the next band's (the last wraps past midnight)."""
    if not bands:
        raise SettlementError("a time-of-use tariff needs at least one band")
    starts = sorted(bands)
    values = []
    for start in index.tz_convert(LONDON):
        clock = start.time()
        current = max((band for band in starts if band <= clock), default=starts[-1])
        values.append(Decimal(str(bands[current])))
    return pd.Series(values, index=index, dtype=object)


def registers_from_counters(samples: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """Half-hourly registers (whole Wh) from a node's cumulative meter counters: each counter
    read at every half-hour boundary (its last reading at or before it), rounded to the Wh, and
    differenced, so a month's total is exactly its end reading minus its start reading. A
    boundary after the last reading is unknown.

    `samples`: index `ts`, columns `import_wh`, `export_wh`, `pv_wh`, `battery_charge_wh`,
    `battery_discharge_wh` (cumulative). A boundary before the first reading has no value:
    half-hours without both ends are left out."""
    boundaries = pd.date_range(start, end, freq=HALF_HOUR, tz="UTC")
    names = {
        "import_wh": "import_wh",
        "export_wh": "export_wh",
        "pv_wh": "pv_wh",
        "charge_wh": "battery_charge_wh",
        "discharge_wh": "battery_discharge_wh",
    }
    readings = samples[list(names.values())].sort_index().ffill()
    at = readings.reindex(readings.index.union(boundaries)).ffill().reindex(boundaries)
    at[at.index > readings.index.max()] = float("nan")  # not read yet: unknown
    whole = at.round()  # half to even, on the float as stored
    steps = whole.diff().iloc[1:].set_axis(boundaries[:-1])
    steps = steps.dropna().rename(columns={source: name for name, source in names.items()})
    if (steps < 0).to_numpy().any():
        first = steps[(steps < 0).any(axis=1)].index[0]
        raise SettlementError(f"a meter counter went backwards in the half-hour {first}")
    return steps[list(names)].astype("int64")


def billing_csv(table: pd.DataFrame) -> str:
    """The half-hourly billing table: `utc_time`, `local_time`, WH_COLUMNS (integers) and
    BILL_COLUMNS (pence to 4 decimals)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["utc_time", "local_time", *WH_COLUMNS, *BILL_COLUMNS])
    for start, row in table.iterrows():
        assert isinstance(start, pd.Timestamp)
        writer.writerow(
            [
                start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                start.tz_convert(LONDON).isoformat(),
                *(int(row[name]) for name in WH_COLUMNS),
                *(f"{Decimal(row[name]):.4f}" for name in BILL_COLUMNS),
            ]
        )
    return out.getvalue()

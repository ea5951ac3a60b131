"""Hypothesis strategies that build valid protocol documents."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta
from typing import Any

from fractal.protocol import (
    MAX_HORIZON,
    MODES_BY_KIND,
    QUANTITY_BY_KIND,
    STEPS_S,
    VALUE_RULES,
    Device,
    DeviceEnvelope,
    DeviceKind,
    DevicePlan,
    EnergyCounters,
    Expected,
    FlexDirection,
    FlexibilityEvent,
    FlexStatus,
    Issue,
    LinkMode,
    Mode,
    NodeDescriptor,
    NodeEnvelope,
    Plan,
    PlanAck,
    PlanPosition,
    PlanSource,
    PlanStatus,
    Quantity,
    Reading,
    Setpoints,
    TelemetryBatch,
    TelemetrySnapshot,
    Tolerance,
    Trajectory,
    Window,
)
from fractal.protocol.rules import ENVELOPE_FIELDS_BY_KIND
from hypothesis import strategies as st

EXAMPLE_ISSUED = datetime(2026, 11, 22, 9, 55, tzinfo=UTC)
EXAMPLE_START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

# Plain alphabets rather than st.from_regex: the same sets of strings, generated much faster.
ALNUM = string.ascii_letters + string.digits
node_ids = st.text(ALNUM + ":_-", min_size=1, max_size=128)
device_ids = st.text(ALNUM + "_-", min_size=1, max_size=32)
document_ids = st.text(ALNUM + "._:-", min_size=1, max_size=64)
lower_names = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_lowercase),
    st.text(string.ascii_lowercase + string.digits + "_", max_size=31),
)
"""Tag keys and metric names: `^[a-z][a-z0-9_]{0,31}$`."""
short_texts = st.text(min_size=1, max_size=64)
texts = st.text(min_size=1, max_size=256)
tag_dicts = st.dictionaries(lower_names, st.text(min_size=1, max_size=64), max_size=4)
timestamps = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
watts = st.integers(-20_000, 20_000)
non_neg_watts = st.integers(0, 20_000)
percents = st.floats(0, 100, allow_nan=False)
measured = st.floats(-1e6, 1e6, allow_nan=False) | st.none()
non_neg_measured = st.floats(0, 1e6, allow_nan=False) | st.none()
non_neg_numbers = st.floats(0, 1e9, allow_nan=False)


@st.composite
def device_envelopes(draw: st.DrawFn, kind: DeviceKind) -> DeviceEnvelope:
    candidates: dict[str, st.SearchStrategy[Any]] = {
        "max_charge_w": non_neg_watts,
        "max_discharge_w": non_neg_watts,
        "capacity_wh": non_neg_numbers,
        "power_max_w": non_neg_watts,
        "level_rate_max_m_per_h": st.floats(0, 10, allow_nan=False),
    }
    fields: dict[str, Any] = {
        name: draw(strategy | st.none())
        for name, strategy in candidates.items()
        if name in ENVELOPE_FIELDS_BY_KIND[kind]
    }
    for low, high, values in (
        ("soc_min_pct", "soc_max_pct", percents),
        ("ev_current_min_a", "ev_current_max_a", st.floats(0, 80, allow_nan=False)),
        ("level_min_m", "level_max_m", st.floats(-100, 100, allow_nan=False)),
    ):
        if low in ENVELOPE_FIELDS_BY_KIND[kind] and draw(st.booleans()):
            fields[low], fields[high] = sorted(draw(st.lists(values, min_size=2, max_size=2)))
    return DeviceEnvelope(**fields)


@st.composite
def devices(draw: st.DrawFn, device_id: str) -> Device:
    kind = draw(st.sampled_from(DeviceKind))
    modes = sorted(MODES_BY_KIND[kind])
    return Device(
        id=device_id,
        kind=kind,
        role=draw(short_texts | st.none()),
        manufacturer=draw(short_texts | st.none()),
        model=draw(short_texts | st.none()),
        capabilities=tuple(draw(st.lists(st.sampled_from(modes), unique=True)) if modes else []),
        envelope=draw(device_envelopes(kind)),
    )


@st.composite
def node_descriptors(draw: st.DrawFn) -> NodeDescriptor:
    ids = draw(st.lists(device_ids, unique=True, max_size=4))
    return NodeDescriptor(
        node=draw(node_ids),
        name=draw(short_texts),
        tags=draw(tag_dicts),
        software=".".join(str(part) for part in draw(st.tuples(*[st.integers(0, 99)] * 3))),
        link=draw(st.sampled_from(LinkMode)),
        devices=tuple(draw(devices(device_id)) for device_id in ids),
        envelope=NodeEnvelope(
            import_max_w=draw(st.integers(1, 100_000) | st.none()),
            export_max_w=draw(non_neg_watts | st.none()),
        ),
    )


@st.composite
def readings(draw: st.DrawFn, seq: int, ts: datetime) -> dict[str, Any]:
    """Fields shared by snapshots and batch samples."""
    device_readings = draw(
        st.dictionaries(
            device_ids,
            st.dictionaries(
                lower_names,
                st.floats(allow_nan=False, allow_infinity=False),
                max_size=3,
            ),
            max_size=3,
        )
        | st.none()
    )
    counters = EnergyCounters(
        import_wh=draw(non_neg_numbers | st.none()), pv_wh=draw(non_neg_numbers | st.none())
    )
    return {
        "seq": seq,
        "ts": ts,
        "grid_w": draw(measured),
        "pv_w": draw(non_neg_measured),
        "battery_w": draw(measured),
        "load_w": draw(non_neg_measured),
        "ev_w": draw(non_neg_measured),
        "immersion_w": draw(non_neg_measured),
        "hydro_w": draw(non_neg_measured),
        "soc_pct": draw(percents | st.none()),
        "energy": draw(st.just(counters) | st.none()),
        "devices": device_readings,
    }


@st.composite
def telemetry_snapshots(draw: st.DrawFn) -> TelemetrySnapshot:
    position = PlanPosition(id=draw(document_ids), slot=draw(st.integers(0, 575) | st.none()))
    return TelemetrySnapshot(
        node=draw(node_ids),
        plan=draw(st.just(position) | st.none()),
        deviations=tuple(draw(st.lists(st.sampled_from(Trajectory), unique=True))),
        **draw(readings(draw(st.integers(0, 2**53 - 1)), draw(timestamps))),
    )


@st.composite
def telemetry_batches(draw: st.DrawFn) -> TelemetryBatch:
    seqs = sorted(draw(st.lists(st.integers(0, 10**12), min_size=1, max_size=8, unique=True)))
    times = sorted(draw(st.lists(timestamps, min_size=len(seqs), max_size=len(seqs))))
    samples = tuple(Reading(**draw(readings(seq, ts))) for seq, ts in zip(seqs, times, strict=True))
    return TelemetryBatch(node=draw(node_ids), seq=draw(st.integers(0, 10**9)), samples=samples)


def _value_for(mode: Mode) -> st.SearchStrategy[float | None]:
    rule = VALUE_RULES.get(mode)
    if rule is None:
        return st.none()
    if rule.integer:
        return st.integers(1 if rule.exclusive else 0, 20_000).map(float)
    if rule.minimum is None:
        return st.floats(-100, 100, allow_nan=False)
    return st.floats(0.1, 80, allow_nan=False)


@st.composite
def windows(draw: st.DrawFn, kind: DeviceKind, slots: int) -> tuple[Window, ...]:
    cuts = sorted(draw(st.sets(st.integers(0, slots), max_size=8)))
    modes = sorted(MODES_BY_KIND[kind])
    result = []
    for start, end in zip(cuts[::2], cuts[1::2], strict=False):
        mode = draw(st.sampled_from(modes))
        result.append(Window(start=start, end=end, mode=mode, value=draw(_value_for(mode))))
    return tuple(result)


SETPOINT_VALUES: dict[Quantity, st.SearchStrategy[float]] = {
    Quantity.BATTERY_W: st.integers(-5000, 5000).map(float),
    Quantity.EV_CURRENT_A: st.sampled_from([0.0, 6.0, 10.0, 16.0, 32.0, 13.5]),
    Quantity.EXPORT_LIMIT_W: st.integers(0, 5000).map(float),
    Quantity.HYDRO_LEVEL_M: st.floats(0.5, 3, allow_nan=False).map(lambda level: round(level, 3)),
    Quantity.IMMERSION_ON: st.sampled_from([0.0, 1.0]),
}


@st.composite
def device_plans(draw: st.DrawFn, slots: int) -> DevicePlan:
    kind = draw(st.sampled_from(sorted(QUANTITY_BY_KIND)))
    quantity = QUANTITY_BY_KIND[kind]
    if slots <= 96 and draw(st.booleans()):
        values = draw(
            st.lists(SETPOINT_VALUES[quantity] | st.none(), min_size=slots, max_size=slots)
        )
        return DevicePlan(kind=kind, setpoints=Setpoints(quantity=quantity, values=tuple(values)))
    return DevicePlan(kind=kind, windows=draw(windows(kind, slots)))


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    step = draw(st.sampled_from(STEPS_S))
    slots = draw(st.integers(1, int(MAX_HORIZON.total_seconds()) // step))
    issued = draw(timestamps)
    start = issued + timedelta(seconds=draw(st.integers(-3600, 24 * 3600)))
    latest_expiry = issued + MAX_HORIZON
    expiry = start + (latest_expiry - start) * draw(st.floats(0.01, 1))
    device_count = 3 if slots <= 96 else 4
    ids = draw(st.lists(device_ids, unique=True, max_size=device_count))
    expected = None
    if slots <= 96 and draw(st.booleans()):
        expected = Expected(
            soc_pct=tuple(
                draw(
                    st.lists(
                        st.integers(0, 1000).map(lambda x: x / 10), min_size=slots, max_size=slots
                    )
                )
            ),
            grid_w=tuple(draw(st.lists(watts | st.none(), min_size=slots, max_size=slots))),
        )
    return Plan(
        id=draw(document_ids),
        node=draw(node_ids),
        issued=issued,
        start=start,
        step=step,
        slots=slots,
        expiry=expiry,
        source=draw(st.sampled_from(PlanSource)),
        event=draw(document_ids | st.none()),
        devices={device_id: draw(device_plans(slots)) for device_id in ids},
        expected=expected,
        tolerance=draw(
            st.builds(Tolerance, soc_pct=percents | st.none(), grid_w=non_neg_watts | st.none())
            | st.none()
        ),
    )


issues = st.builds(Issue, path=st.text(max_size=40), message=texts)


@st.composite
def plan_acks(draw: st.DrawFn) -> PlanAck:
    status = draw(st.sampled_from(PlanStatus))
    reason = draw(texts) if status is PlanStatus.REJECTED else draw(texts | st.none())
    return PlanAck(
        id=draw(document_ids),
        status=status,
        reason=reason,
        ts=draw(timestamps),
        clamped=tuple(draw(st.lists(issues, max_size=3))),
        issues=tuple(draw(st.lists(issues, max_size=3))),
    )


@st.composite
def flex_events(draw: st.DrawFn) -> FlexibilityEvent:
    start = draw(timestamps)
    return FlexibilityEvent(
        id=draw(document_ids),
        issued=draw(timestamps),
        source=draw(short_texts),
        group=draw(tag_dicts),
        direction=draw(st.sampled_from(FlexDirection)),
        power_w=draw(st.integers(1, 10**7)),
        start=start,
        end=start + timedelta(seconds=draw(st.integers(1, 86_400))),
        price_p_per_kwh=draw(st.floats(-100, 1000, allow_nan=False) | st.none()),
        status=draw(st.sampled_from(FlexStatus) | st.none()),
    )


documents = st.one_of(
    node_descriptors(),
    telemetry_snapshots(),
    telemetry_batches(),
    plans(),
    plan_acks(),
    flex_events(),
)


def full_home_plan(step: int, rng: random.Random) -> Plan:
    """48 hours of per-slot set-points for battery, EV, immersion and hydro, with realistic
    values of 3-4 significant figures, plus the expected SoC and grid trajectories."""
    slots = 48 * 3600 // step

    def series(make: object) -> tuple[float | None, ...]:
        assert callable(make)
        return tuple(make() for _ in range(slots))

    devices = {
        "battery": DevicePlan(
            kind=DeviceKind.BATTERY,
            setpoints=Setpoints(
                quantity=Quantity.BATTERY_W,
                values=series(lambda: float(rng.randrange(-3000, 3000, 10) or -1250)),
            ),
        ),
        "ev": DevicePlan(
            kind=DeviceKind.EV_CHARGER,
            setpoints=Setpoints(
                quantity=Quantity.EV_CURRENT_A,
                values=series(lambda: rng.choice([None, 0.0, 6.0, 10.5, 16.0, 31.5])),
            ),
        ),
        "immersion": DevicePlan(
            kind=DeviceKind.IMMERSION,
            setpoints=Setpoints(
                quantity=Quantity.IMMERSION_ON, values=series(lambda: float(rng.randint(0, 1)))
            ),
        ),
        "hydro": DevicePlan(
            kind=DeviceKind.HYDRO,
            setpoints=Setpoints(
                quantity=Quantity.HYDRO_LEVEL_M,
                values=series(lambda: round(rng.uniform(1.1, 1.9), 3)),
            ),
        ),
    }
    expected = Expected(
        soc_pct=series(lambda: round(rng.uniform(10.5, 95.5), 1)),
        grid_w=tuple(rng.randrange(-4000, 6000, 10) or 1230 for _ in range(slots)),
    )
    return Plan(
        id="agg-20261122T0955Z-home-0017",
        node="community-osney-home-0017",
        issued=EXAMPLE_ISSUED,
        start=EXAMPLE_START,
        step=step,  # type: ignore[arg-type]
        slots=slots,
        expiry=EXAMPLE_ISSUED + timedelta(hours=48),
        source=PlanSource.AGGREGATOR,
        event="ssen-flex-2026-11-22-f12",
        devices=devices,
        expected=expected,
        tolerance=Tolerance(soc_pct=10, grid_w=1500),
    )

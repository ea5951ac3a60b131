"""The flexibility delivery report against an independent computation: plain Python over the
very readings seeded, with the baseline days chosen by hand (the event is just after the clocks
go forward, so a baseline day's 17:00 is a different UTC hour from the event's)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from statistics import mean

import pytest
from fractal.protocol import FlexibilityEvent, Reading

from aggregator_cloud.reports.events import (
    EventConflict,
    InvalidEvent,
    parse_event,
    record_event,
    stored_event,
    stored_events,
)
from aggregator_cloud.reports.flexibility import (
    CSV_COLUMNS,
    NoBaseline,
    ReportRequest,
    build_report,
)
from aggregator_cloud.store import SqliteStore

STEP = timedelta(minutes=10)
EVENT_DAY = date(2026, 3, 31)  # a Tuesday, two days after the clocks went forward
OTHER_EVENT_DAY = date(2026, 3, 24)  # a Tuesday with another event: not a baseline day
GAP_DAY = date(2026, 3, 19)  # a Thursday missing data in the event window: not eligible
# Weekdays before the event, most recent first, skipping weekends, the other event and the gap:
BASELINE = [
    date(2026, 3, 30),
    date(2026, 3, 27),
    date(2026, 3, 26),
    date(2026, 3, 25),
    date(2026, 3, 23),
    date(2026, 3, 20),
    date(2026, 3, 18),
    date(2026, 3, 17),
    date(2026, 3, 16),
    date(2026, 3, 13),
]


def _london_17(day: date) -> datetime:
    """17:00 Europe/London on `day` in UTC (the clocks went forward on 29 March 2026)."""
    hour = 16 if day >= date(2026, 3, 29) else 17
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _watts(node: int, day: date, minute: int) -> float:
    """Battery power (W, charging positive) of a node at a minute of the day's 13:00-19:59 local."""
    if day == EVENT_DAY and 240 <= minute < 300:  # the event hour: discharging hard
        return -3000.0 - 17 * (minute % 7) - 400 * node
    return 250.0 * ((day.toordinal() * 7 + node * 3) % 11 - 5) + 13 * (minute % 5)


def _readings(node: int) -> Iterator[tuple[datetime, float]]:
    day = EVENT_DAY - timedelta(days=40)
    while day <= EVENT_DAY:
        start = _london_17(day) - timedelta(hours=4)
        for minute in range(7 * 60):
            when = start + timedelta(minutes=minute)
            missing_gap = day == GAP_DAY and 250 <= minute < 260
            missing_event = day == EVENT_DAY and node == 0 and 280 <= minute < 290
            if not (missing_gap or missing_event):
                yield when, _watts(node, day, minute)
        day += timedelta(days=1)


def _event(event_id: str, day: date, direction: str = "down") -> FlexibilityEvent:
    start = _london_17(day)
    return parse_event(
        {
            "schema": "fractal.flex_event.v1",
            "id": event_id,
            "issued": (start - timedelta(days=1)).isoformat(),
            "source": "UKPN",
            "group": {},
            "direction": direction,
            "power_w": 5000,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        }
    )


@pytest.fixture(name="store", scope="module")
def _store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path_factory.mktemp("flex") / "fleet.sqlite3") as store:
        for node in (0, 1):
            samples = [
                Reading(seq=seq, ts=when, battery_w=watts)
                for seq, (when, watts) in enumerate(_readings(node))
            ]
            store.add_samples(f"school-{node}", samples)
        yield store


def _independent(nodes: list[int], discharge_only: bool) -> list[dict[str, float | None]]:
    """Per 10-minute interval of the event: kW, baseline, adjusted baseline, response."""
    readings = {node: dict(_readings(node)) for node in nodes}

    def interval_kw(day: date, minute0: int) -> float | None:
        start = _london_17(day) - timedelta(hours=4) + timedelta(minutes=minute0)
        total, seen = 0.0, False
        for node in nodes:
            values = [
                readings[node][start + timedelta(minutes=m)]
                for m in range(10)
                if start + timedelta(minutes=m) in readings[node]
            ]
            values = [max(-v, 0.0) if discharge_only else -v for v in values]
            if values:
                total, seen = total + mean(values) / 1000, True
        return total if seen else None

    def baseline(minute0: int) -> float:
        values = sorted(interval_kw(day, minute0) for day in BASELINE)  # type: ignore[type-var]
        return mean(values[1:-1])  # type: ignore[arg-type]

    # the adjustment window: 2 h ending 1 h before the event (minutes 60..179 of the readings)
    window = [(minute, interval_kw(EVENT_DAY, minute)) for minute in range(60, 180, 10)]
    differences = [kw - baseline(minute) for minute, kw in window if kw is not None]
    cap = 0.2 * abs(mean(baseline(minute) for minute, kw in window if kw is not None))
    adjustment = max(-cap, min(cap, mean(differences)))
    rows = []
    for minute in range(240, 300, 10):
        kw, base = interval_kw(EVENT_DAY, minute), baseline(minute)
        rows.append(
            {
                "kw": kw,
                "baseline_kw": base,
                "adjusted_baseline_kw": base + adjustment,
                "response_kw": None if kw is None else kw - base - adjustment,
            }
        )
    return rows


def _parsed(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


@pytest.mark.parametrize(("nodes", "discharge_only"), [([0], False), ([0, 1], True)])
def test_csv_matches_an_independent_computation(
    store: SqliteStore, nodes: list[int], discharge_only: bool
) -> None:
    other = _event("other", OTHER_EVENT_DAY)
    event = _event("evening-peak", EVENT_DAY)
    request = ReportRequest(
        event,
        tuple(f"school-{node}" for node in nodes),
        discharge_only=discharge_only,
        other_events=(other, event),
    )
    report = build_report(store, request)
    assert list(report.baseline_days) == BASELINE
    assert report.adjustment_kw != 0.0  # the window's actual differs from the baseline
    rows = _parsed(report.csv())
    expected = _independent(nodes, discharge_only)
    assert len(rows) == 6
    for index, (row, want) in enumerate(zip(rows, expected, strict=True)):
        utc = _london_17(EVENT_DAY) + index * STEP
        assert row["utc_time"] == utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert row["local_time"] == (utc + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+01:00")
        for name, value in want.items():
            if value is None:
                assert row[name] == "", name
            else:
                assert float(row[name]) == pytest.approx(value, abs=0.0006), (index, name)
        if want["kw"] is not None:
            assert float(row["kwh"]) == pytest.approx(want["kw"] / 6, abs=0.0006)
            assert float(row["response_kwh"]) == pytest.approx(
                want["response_kw"] / 6,  # type: ignore[operator]
                abs=0.0006,
            )
    # node 0 missed 10 minutes: with it alone that interval has no data, with both it has one
    assert (rows[4]["kw"] == "") == (nodes == [0])


def test_turn_up_event_counts_the_other_way(store: SqliteStore) -> None:
    down = build_report(store, ReportRequest(_event("d", EVENT_DAY), ("school-1",)))
    up = build_report(store, ReportRequest(_event("u", EVENT_DAY, "up"), ("school-1",)))
    assert up.delivered_kwh == pytest.approx(-down.delivered_kwh)
    assert down.delivered_kwh > 1.0  # discharging 3.4 kW for an hour against a ~0 baseline


def test_no_baseline_day_is_a_clear_error(store: SqliteStore) -> None:
    early = _event("too-early", EVENT_DAY - timedelta(days=40))
    with pytest.raises(NoBaseline, match="no eligible baseline day for event 'too-early'"):
        build_report(store, ReportRequest(early, ("school-0",)))


def test_bad_requests_are_refused(store: SqliteStore) -> None:
    event = _event("e", EVENT_DAY)
    with pytest.raises(ValueError, match="at least one asset"):
        build_report(store, ReportRequest(event, ()))
    with pytest.raises(ValueError, match="resolution"):
        build_report(store, ReportRequest(event, ("school-0",), resolution=timedelta(minutes=7)))


def test_events_are_stored_once_and_conflicts_refused(store: SqliteStore) -> None:
    event = _event("e1", EVENT_DAY)
    assert record_event(store, event) is True
    assert record_event(store, event) is False
    changed = _event("e1", OTHER_EVENT_DAY)
    with pytest.raises(EventConflict, match="exists already"):
        record_event(store, changed)
    assert stored_event(store, "e1") == event
    assert [stored.id for stored in stored_events(store)] == ["e1"]
    with pytest.raises(InvalidEvent, match="direction"):
        parse_event({**event.model_dump(mode="json", by_alias=True), "direction": "sideways"})


def test_an_event_across_the_autumn_clock_change(tmp_path_factory: pytest.TempPathFactory) -> None:
    """25 October 2026, a Sunday: the clocks go back at 01:00 UTC. Local times repeat 01:xx;
    the baseline comes from the ten weekend days before, at the same local wall-clock time."""
    start = datetime(2026, 8, 20, tzinfo=UTC)
    event_start = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 BST
    with SqliteStore(tmp_path_factory.mktemp("autumn") / "fleet.sqlite3") as store:
        samples = []
        for index in range(int((event_start + timedelta(hours=3) - start) / timedelta(minutes=5))):
            when = start + index * timedelta(minutes=5)
            during = event_start <= when < event_start + timedelta(hours=2)
            # 1 kW out normally, 3 kW out during the event; baseline days' 01:30-03:30 local
            # (00:30-02:30 UTC in summer time) discharge 1 kW too
            samples.append(Reading(seq=index, ts=when, battery_w=-3000.0 if during else -1000.0))
        store.add_samples("school", samples)
        event = _event("autumn", date(2026, 10, 25))
        event = event.model_copy(
            update={"start": event_start, "end": event_start + timedelta(hours=2)}
        )
        report = build_report(store, ReportRequest(event, ("school",)))
    assert list(report.baseline_days) == [
        date(2026, 10, 24),
        date(2026, 10, 18),
        date(2026, 10, 17),
        date(2026, 10, 11),
        date(2026, 10, 10),
        date(2026, 10, 4),
        date(2026, 10, 3),
        date(2026, 9, 27),
        date(2026, 9, 26),
        date(2026, 9, 20),
    ]
    rows = _parsed(report.csv())
    assert [row["local_time"][11:] for row in rows[:6]] == [
        "01:30:00+01:00",
        "01:40:00+01:00",
        "01:50:00+01:00",
        "01:00:00+00:00",  # the hour again, in GMT
        "01:10:00+00:00",
        "01:20:00+00:00",
    ]
    assert len(rows) == 12
    assert all(float(row["baseline_kw"]) == 1.0 for row in rows)
    assert all(float(row["response_kw"]) == 2.0 for row in rows)
    assert report.delivered_kwh == pytest.approx(4.0)

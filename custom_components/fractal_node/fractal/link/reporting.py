"""When to spend a shadow update, and how long to wait before trying again. Pure: the clock
and the random source are passed in.

Every shadow update costs money on AWS IoT and wakes the aggregator, so the classic shadow's
`reported.telemetry` is updated only when something changed by more than its deadband, never
more often than `min_interval`, and at least every `max_silence` (the heartbeat that tells the
aggregator the node is alive). The full history travels in telemetry batches, not here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

DEADBAND_BY_SUFFIX: Final = MappingProxyType(
    {"_w": 50.0, "_pct": 1.0, "_a": 1.0, "_m": 0.01, "_m3_s": 0.05}
)
"""A change smaller than this (in the field's unit) is not worth an update on its own."""
UNCHANGING_FIELDS: Final = frozenset({"seq", "ts", "energy"})
"""Always different (seq, ts) or always rising (energy counters): the heartbeat carries them."""
URGENT_FIELDS: Final = frozenset({"deviations"})
"""A change here is reported at once, `min_interval` or not: the aggregator re-plans on a new
deviation, so it must not wait for the next minute."""


def flatten(values: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    """`{"devices": {"hydro": {"flow_m3_s": 1}}}` -> `{"devices.hydro.flow_m3_s": 1}`."""
    flat: dict[str, object] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def deadband(name: str, overrides: Mapping[str, float]) -> float:
    """The deadband of a flattened field: an override, else by unit suffix, else 0 (any change)."""
    if name in overrides:
        return overrides[name]
    leaf = name.rsplit(".", 1)[-1]
    matches = [suffix for suffix in DEADBAND_BY_SUFFIX if leaf.endswith(suffix)]
    return DEADBAND_BY_SUFFIX[max(matches, key=len)] if matches else 0.0


def changed(old: object, new: object, band: float) -> bool:
    """True when the change matters: numbers beyond the deadband, anything else when unequal."""
    numbers = (int, float)
    if isinstance(old, numbers) and isinstance(new, numbers) and not isinstance(old, bool):
        return abs(new - old) > band if band else new != old
    return old != new


@dataclass
class SnapshotPolicy:
    """Decides whether a telemetry snapshot is worth a classic-shadow update now."""

    min_interval: timedelta = timedelta(seconds=60)
    max_silence: timedelta = timedelta(minutes=15)
    deadbands: Mapping[str, float] = field(default_factory=dict)
    """Per flattened field name, e.g. `{"grid_w": 100, "devices.hydro.flow_m3_s": 0.1}`."""
    ignored: frozenset[str] = UNCHANGING_FIELDS
    urgent: frozenset[str] = URGENT_FIELDS
    _last_values: dict[str, object] | None = field(default=None, init=False)
    _last_time: datetime | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.min_interval > self.max_silence:
            raise ValueError("min_interval must not exceed max_silence")

    def due(self, values: Mapping[str, object], now: datetime) -> bool:
        """Whether to report `values` (a JSON-ready snapshot) at `now`."""
        if self._last_values is None or self._last_time is None:
            return True
        elapsed = now - self._last_time
        if elapsed < timedelta(0):  # the clock went back: do not stay silent until it catches up
            return True
        if elapsed >= self.max_silence or self._urgent_change(values):
            return True
        return elapsed >= self.min_interval and self._significant(values)

    def reported(self, values: Mapping[str, object], now: datetime) -> None:
        """Record that `values` reached the shadow at `now` (call only once it was accepted)."""
        self._last_values = self._relevant(values)
        self._last_time = now

    def _significant(self, values: Mapping[str, object]) -> bool:
        assert self._last_values is not None
        new = self._relevant(values)
        names = new.keys() | self._last_values.keys()
        return any(
            changed(self._last_values.get(name), new.get(name), deadband(name, self.deadbands))
            for name in names
        )

    def _urgent_change(self, values: Mapping[str, object]) -> bool:
        assert self._last_values is not None
        # An absent list and an empty one are the same: no deviation.
        return any(
            (values.get(name) or None) != (self._last_values.get(name) or None)
            for name in self.urgent
        )

    def _relevant(self, values: Mapping[str, object]) -> dict[str, object]:
        flat = flatten(values)
        return {
            name: value for name, value in flat.items() if name.split(".", 1)[0] not in self.ignored
        }


@dataclass
class Backoff:
    """Exponential back-off with "equal jitter": each delay is drawn from the upper half of the
    current ceiling, so a fleet that lost its broker together does not return together, and no
    retry comes sooner than half the ceiling. The ceiling doubles up to `cap`; `reset` after a
    success."""

    initial: float = 1.0
    """Seconds: the first ceiling."""
    cap: float = 300.0
    """Seconds: the ceiling never grows beyond this."""
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap or self.factor < 1:
            raise ValueError("need 0 < initial <= cap and factor >= 1")

    @property
    def attempt(self) -> int:
        """Failures since the last reset."""
        return self._attempt

    def ceiling(self) -> float:
        return min(self.cap, self.initial * self.factor**self._attempt)

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; each call counts one more failure."""
        ceiling = self.ceiling()
        self._attempt = min(self._attempt + 1, 64)  # beyond this the cap rules anyway
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0

"""The glitch filter every meter source uses: known meter and CAD glitches are not passed on.

* A cumulative reading (energy, volume) that drops to 0 or goes backwards is dropped: the
  counters of a smart meter never go down, and Home Assistant would read a lower value of a
  `total_increasing` sensor as a meter reset and count the next good value twice.
* The power sentinel is dropped: 0x800000, the most negative 24-bit number, which the meter
  (and so the CAD) sends when it has no instantaneous demand; Glow shows it as -8388.608 kW.
* A value that is not a finite number is dropped.
* A duplicated or late message (stamped no later than the value in hand) is ignored, per
  quantity: gas and electricity come in separate messages with their own timestamps.
* Silence: no message for `silence_after` makes the meter's state silent (every value unknown).

Each kind of glitch is logged once per quantity, and again only after a good value came.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from .reading import CUMULATIVE, MeterReading, MeterState, Quantity, Value

_LOGGER = logging.getLogger(__name__)

# 0x800000 read as a signed 24-bit number of W; Glow converts it to kW: -8388.608.
SENTINEL_POWER_W = -8_388_608.0
# Before a value comes, anything is newer.
_NEVER = datetime.min.replace(tzinfo=UTC)


class Glitch(StrEnum):
    SENTINEL = "sentinel"
    NOT_FINITE = "not_finite"
    DROPPED_TO_ZERO = "dropped_to_zero"
    WENT_BACKWARDS = "went_backwards"
    STALE = "stale"  # duplicated or late: routine, not logged


@dataclass(frozen=True)
class Rejection:
    quantity: Quantity
    glitch: Glitch
    value: Value


class MeterFilter:
    """The latest good value of each quantity of one meter; `accept` each reading in turn."""

    def __init__(
        self, name: str, silence_after: timedelta, started: datetime | None = None
    ) -> None:
        """`started`: when listening began; a meter never heard is silent since then."""
        self.name = name
        self.silence_after = silence_after
        self._values: dict[Quantity, Value] = {}
        self._stamped: dict[Quantity, datetime] = {}
        self._started = started
        self._last_heard: datetime | None = None
        self._logged: set[tuple[Quantity, Glitch]] = set()

    def restore(self, quantity: Quantity, value: float) -> None:
        """A counter's last value from before a restart, so a first reading of 0 after it is
        still seen as the glitch it is. Any reading stamped later replaces it."""
        if quantity in CUMULATIVE and quantity not in self._values and math.isfinite(value):
            self._values[quantity] = value
            self._stamped[quantity] = _NEVER

    def accept(self, reading: MeterReading, received: datetime) -> list[Rejection]:
        """Take the good values of `reading` (heard at `received`); what was dropped, and why."""
        self._last_heard = received
        rejections = []
        for quantity, value in reading.values().items():
            glitch = self._glitch(quantity, value, reading.timestamp)
            if glitch is None:
                self._values[quantity] = value
                self._stamped[quantity] = reading.timestamp
                self._logged = {logged for logged in self._logged if logged[0] != quantity}
                continue
            rejections.append(Rejection(quantity, glitch, value))
            self._log_once(quantity, glitch, value)
        return rejections

    def silent(self, now: datetime) -> bool:
        """Nothing heard yet, or nothing for the silence period."""
        return self._last_heard is None or now - self._last_heard >= self.silence_after

    def silent_for(self, now: datetime) -> timedelta:
        """How long nothing has been heard: zero while messages come; never heard, since
        `started` (zero without it)."""
        since = self._last_heard or self._started
        if since is None or not self.silent(now):
            return timedelta(0)
        return now - since

    def state(self, now: datetime) -> MeterState:
        return MeterState(dict(self._values), dict(self._stamped), self.silent(now))

    def _glitch(self, quantity: Quantity, value: Value, stamped: datetime) -> Glitch | None:
        if stamped <= self._stamped.get(quantity, _NEVER):
            return Glitch.STALE
        if isinstance(value, str):
            return None
        if not math.isfinite(value):
            return Glitch.NOT_FINITE
        if quantity is Quantity.POWER and value == SENTINEL_POWER_W:
            return Glitch.SENTINEL
        if quantity not in CUMULATIVE:
            return None
        if value < 0:
            return Glitch.WENT_BACKWARDS  # below the 0 every counter starts from
        previous = self._values.get(quantity)
        if isinstance(previous, float | int):
            if value <= 0 < previous:
                return Glitch.DROPPED_TO_ZERO
            if value < previous:
                return Glitch.WENT_BACKWARDS
        return None

    def _log_once(self, quantity: Quantity, glitch: Glitch, value: Value) -> None:
        if glitch is Glitch.STALE or (quantity, glitch) in self._logged:
            return
        self._logged.add((quantity, glitch))
        _LOGGER.warning(
            "%s: dropped %s %s (%s, last good value %s); logged once until a good value comes",
            self.name,
            quantity.value,
            value,
            glitch.value,
            self._values.get(quantity),
        )

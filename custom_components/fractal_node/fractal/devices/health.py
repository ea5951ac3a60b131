"""Availability of one device: back-off between attempts, one log line per change of state."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from .backoff import Backoff
from .errors import DeviceUnavailable, GatewayUnavailable, ModbusDeviceError

_LOGGER = logging.getLogger(__name__)


@dataclass
class Availability:
    """Whether the device answers; `since` is the clock time of the last change."""

    available: bool
    since: float
    reason: str | None = None

    def down_for(self, now: float) -> float:
        """Seconds the device has been unavailable (0 while available); for repair issues."""
        return 0.0 if self.available else now - self.since


class Health:
    """Tracks one device's availability and spaces out attempts while it is down."""

    def __init__(
        self, name: str, clock: Callable[[], float], backoff_initial: float, backoff_max: float
    ) -> None:
        self.name = name
        self.clock = clock
        self.availability = Availability(True, clock())
        self._backoff = Backoff(clock, backoff_initial, backoff_max)

    def check(self) -> None:
        """Raise DeviceUnavailable, without touching the wire, while backing off."""
        if not self._backoff.ready():
            retry_in = self._backoff.retry_in()
            reason = self.availability.reason
            raise DeviceUnavailable(f"{self.name}: {reason}; retrying in {retry_in:.1f} s")

    def failed(self, err: ModbusDeviceError) -> DeviceUnavailable:
        """Record a failure (logged once until recovery) and return the error to raise."""
        # A gateway that is down backs off on its own; the device backs off for its unit.
        if not isinstance(err, GatewayUnavailable):
            self._backoff.failed()
        if self.availability.available:
            _LOGGER.warning("%s stopped answering: %s", self.name, err)
            self.availability = Availability(False, self.clock(), str(err))
        else:
            self.availability.reason = str(err)
        return DeviceUnavailable(f"{self.name}: {err}")

    def succeeded(self) -> None:
        """Record an answer; logs the recovery once."""
        self._backoff.succeeded()
        if not self.availability.available:
            down = self.availability.down_for(self.clock())
            _LOGGER.info("%s answers again after %.0f s", self.name, down)
            self.availability = Availability(True, self.clock())

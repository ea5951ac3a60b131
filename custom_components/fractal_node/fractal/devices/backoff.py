"""Exponential back-off with the clock passed in, so tests can step time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Wait `initial` seconds after the first failure, doubling up to `maximum`."""

    clock: Callable[[], float]
    initial: float = 1.0
    maximum: float = 60.0
    failures: int = 0
    _not_before: float = field(default=0.0, repr=False)

    def ready(self) -> bool:
        """Whether an attempt may be made now."""
        return self.clock() >= self._not_before

    def retry_in(self) -> float:
        """Seconds until the next attempt is allowed."""
        return max(0.0, self._not_before - self.clock())

    def failed(self) -> None:
        """Record a failure and push the next attempt out."""
        delay = min(self.maximum, self.initial * 2**self.failures)
        self.failures += 1
        self._not_before = self.clock() + delay

    def succeeded(self) -> None:
        """Record a success: the next failure starts from `initial` again."""
        self.failures = 0
        self._not_before = 0.0

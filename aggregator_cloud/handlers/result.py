"""What every handler returns, and the parts of a rule event every handler reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from fractal.protocol import Problem

THING_NAME: Final = "thing_name"
"""The key the IoT rule adds to the event: the thing (node) name taken from the topic."""
MAX_PROBLEMS: Final = 10
"""Problems reported per event: enough to fix the sender, short enough to log."""


@dataclass(frozen=True)
class HandlerResult:
    """What a handler did with one event. `problems` explain what it refused."""

    node: str | None
    stored: int = 0
    """Samples inserted (telemetry) or documents recorded (shadow documents)."""
    duplicates: int = 0
    conflicts: tuple[int, ...] = ()
    """Sample seqs already stored with another timestamp: kept as first stored."""
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: what a Lambda returns."""
        return {**asdict(self), "ok": self.ok}


def describe(problems: Iterable[Problem | str], place: str = "") -> tuple[str, ...]:
    """Problems as text, their paths under `place` (e.g. `reported.node`), at most
    MAX_PROBLEMS of them."""
    texts = [_text(problem, place) for problem in problems]
    if len(texts) <= MAX_PROBLEMS:
        return tuple(texts)
    hidden = len(texts) - MAX_PROBLEMS + 1
    return (*texts[: MAX_PROBLEMS - 1], f"... and {hidden} more problems")


def _text(problem: Problem | str, place: str) -> str:
    if isinstance(problem, str) or not place:
        return str(problem)
    path = f"{place}.{problem.path}" if problem.path else place
    return f"{path}: {problem.message}"


def thing_name(event: object) -> tuple[str | None, tuple[str, ...]]:
    """The event's thing name, or why there is none."""
    if not isinstance(event, Mapping):
        return None, (f"the event is not a JSON object but {type(event).__name__}",)
    name = event.get(THING_NAME)
    if not isinstance(name, str) or not name:
        return None, (f"the event has no {THING_NAME} (the rule adds it from the topic)",)
    return name, ()


def mismatch(what: str, inside: str, thing: str) -> str:
    return f"{what} is for node {inside!r} but came on the topic of node {thing!r}"

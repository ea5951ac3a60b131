"""The plan executor: plans and live readings in, device set-points out (docs/executor.md).

Pure functions with the clock passed in: `decide` runs every few seconds, `check_deviations`
alongside it; `Envelope.envelope_check` is the link's plan check and `clamped_parts` lists
what the envelope limits, for the plan's acknowledgement.
"""

from .decide import choose, decide, export_cap
from .default_plan import CheapWindow, default_plan
from .deviation import (
    CHECKS,
    Deviation,
    DeviationReport,
    DeviationState,
    DeviationWatch,
    check_deviations,
)
from .envelope import Envelope
from .model import SAFE_DEFAULT, Decision, ExecutorState, Readings, Setpoint, Sources
from .override import override_plan
from .registers import register_writes

__all__ = [
    "CHECKS",
    "SAFE_DEFAULT",
    "CheapWindow",
    "Decision",
    "Deviation",
    "DeviationReport",
    "DeviationState",
    "DeviationWatch",
    "Envelope",
    "ExecutorState",
    "Readings",
    "Setpoint",
    "Sources",
    "check_deviations",
    "choose",
    "decide",
    "default_plan",
    "export_cap",
    "override_plan",
    "register_writes",
]

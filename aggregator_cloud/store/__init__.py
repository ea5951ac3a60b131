"""Telemetry store and fleet registry: interfaces for the handlers, SQLite for the local runtime."""

from .frames import FIELDS, POWER_FIELDS, RESAMPLED_COLUMNS, group_totals
from .records import (
    PENDING,
    FleetRegistry,
    FleetStore,
    GroupedFleetStore,
    Insertion,
    NodeRecord,
    PlanHistory,
    PlanState,
    TelemetrySink,
    TransactionLost,
)
from .sqlite import SqliteStore

__all__ = [
    "FIELDS",
    "PENDING",
    "POWER_FIELDS",
    "RESAMPLED_COLUMNS",
    "FleetRegistry",
    "FleetStore",
    "GroupedFleetStore",
    "Insertion",
    "NodeRecord",
    "PlanHistory",
    "PlanState",
    "SqliteStore",
    "TelemetrySink",
    "TransactionLost",
    "group_totals",
]

"""Dashboards of any node or tag group: an incremental rollup of the telemetry store (rollup),
the energy flows derived per sample (flows), the grid's carbon intensity (carbon), the query
layer (dashboard) and its plotly charts (figures)."""

from .carbon import CarbonDataError, intensity_at, load_intensity, parse_intensity
from .dashboard import Dashboard, Period, Subject, Window, build_dashboard, expected_grid
from .rollup import RefreshStats, install, refresh

__all__ = [
    "CarbonDataError",
    "Dashboard",
    "Period",
    "RefreshStats",
    "Subject",
    "Window",
    "build_dashboard",
    "expected_grid",
    "install",
    "intensity_at",
    "load_intensity",
    "parse_intensity",
    "refresh",
]

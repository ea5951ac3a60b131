"""Reports over the telemetry store: flexibility delivery, behind-the-meter settlement, hydro
compliance, a node's data export and the store's retention (docs/reports.md)."""

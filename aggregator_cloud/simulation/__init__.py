"""Simulated homes for demos and tests: a plain device model per home (`home`), and a fleet of
them, each behind the real node link (`fleet`)."""

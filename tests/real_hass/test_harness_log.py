"""The log reader the real-hass tests rely on to find errors (no Home Assistant needed)."""

from __future__ import annotations

from tests.real_hass.harness import parse_log, problems_mentioning

LOG = """\
2026-11-22 10:11:35.146 WARNING (MainThread) [homeassistant.loader] We found a custom \
integration fractal_node which has not been tested by Home Assistant
2026-11-22 10:11:42.133 ERROR (MainThread) [homeassistant.config_entries] Error occurred \
loading flow for integration met: No module named 'metno'
2026-11-22 10:11:42.172 ERROR (MainThread) [homeassistant.config_entries] Error setting up \
entry Elm Road for fractal_node
Traceback (most recent call last):
  File "/config/custom_components/fractal_node/__init__.py", line 3, in async_setup_entry
ValueError: boom
2026-11-22 10:11:43.001 INFO (MainThread) [homeassistant.setup] Setting up sun
2026-11-22 10:11:44.500 WARNING (MainThread) [homeassistant.util.async_] Detected blocking \
call
Traceback (most recent call last):
  File "/config/custom_components/fractal_node/link.py", line 9, in connect
"""


def test_records_keep_their_tracebacks() -> None:
    records = parse_log(LOG)

    assert [record.level for record in records] == ["WARNING", "ERROR", "ERROR", "INFO", "WARNING"]
    assert records[2].logger == "homeassistant.config_entries"
    assert records[2].text.endswith("ValueError: boom")


def test_problems_are_errors_or_tracebacks_that_mention_the_needle() -> None:
    problems = problems_mentioning(parse_log(LOG), "fractal_node")

    assert [record.level for record in problems] == ["ERROR", "WARNING"]
    assert "Elm Road" in problems[0].text
    assert "link.py" in problems[1].text


def test_a_clean_log_has_no_problems() -> None:
    clean = "\n".join(LOG.splitlines()[:2])

    assert problems_mentioning(parse_log(clean), "fractal_node") == []

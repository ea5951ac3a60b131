"""Fault injection: `serve` does not linger half-alive when its broker dies."""

from __future__ import annotations

import json
import os
import signal

import pytest

from tests.support.local_aggregator import TIMEOUT, LocalAggregator


@pytest.mark.enable_socket
def test_serve_exits_with_an_error_when_mosquitto_dies() -> None:
    with LocalAggregator.started() as aggregator:
        runtime = json.loads((aggregator.data_dir / "runtime.json").read_text())
        os.kill(runtime["broker_pid"], signal.SIGKILL)
        status = aggregator.wait(TIMEOUT)
        log = aggregator.log
    assert status == 1
    assert "mosquitto exited unexpectedly" in log

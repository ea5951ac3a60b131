"""`fractal-aggregator demo`, the README's main job, run for real for a few seconds."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator_cloud.cli import main as aggregator_cli
from aggregator_cloud.local import broker
from tests.support.local_aggregator import ROOT

RUN_LIMIT_S = 180  # the whole demo run; a hang fails the test instead of blocking the suite


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """Loopback sockets back after the Home Assistant plugin disabled them."""


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Made with mkdtemp and opened to traversal: mosquitto run by root drops to its own user,
    which cannot enter pytest's 0700 tmp_path."""
    root = Path(tempfile.mkdtemp(prefix="fractal-demo-"))
    root.chmod(0o711)
    try:
        yield root / "data"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_demo_serves_simulated_homes_plans_them_and_prints_the_page(data_dir: Path) -> None:
    with socket.socket() as squatter:  # another program already has the HTTP port
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "aggregator_cloud.cli", "demo", "--data-dir", str(data_dir),
             "--homes", "2", "--mqtt-port", "0", "--http-port", str(taken), "--run-for", "2"],
            cwd=ROOT, capture_output=True, text=True, timeout=RUN_LIMIT_S, check=False,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    moved = re.search(rf"port {taken} \(HTTP\) is taken by another program: using (\d+)", out)
    assert moved is not None, out
    assert f"The fleet page: http://127.0.0.1:{moved.group(1)}/" in out
    assert "2 simulated homes" in out
    assert "2 plans of 96 half-hour slots" in out
    assert "2 of 2 homes acknowledged their plan as accepted" in out
    assert not (data_dir / "runtime.json").exists()  # a clean stop
    for node in ("sim-001", "sim-002"):
        assert (data_dir / "simulated" / node / "private.key").stat().st_mode & 0o777 == 0o600
    assert (data_dir / "simulated").stat().st_mode & 0o777 == 0o700


def test_the_demo_refuses_a_data_directory_an_aggregator_is_running_on(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir.mkdir()
    runtime = {"pid": os.getpid(), "mqtt": {"host": "127.0.0.1", "port": 1}, "http": {"port": 2}}
    (data_dir / "runtime.json").write_text(json.dumps(runtime))
    assert aggregator_cli(["demo", "--data-dir", str(data_dir), "--run-for", "0"]) == 1
    assert "an aggregator is already running on" in capsys.readouterr().err


def test_without_mosquitto_the_demo_says_how_to_install_it(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker, "SEARCH_PATH", ())  # a machine where mosquitto is not installed
    monkeypatch.setenv("PATH", "")
    arguments = ["demo", "--data-dir", str(data_dir), "--mqtt-port", "0", "--http-port", "0"]
    assert aggregator_cli([*arguments, "--run-for", "0"]) == 1
    error = capsys.readouterr().err
    assert "mosquitto is not installed" in error
    assert "apt-get install mosquitto" in error

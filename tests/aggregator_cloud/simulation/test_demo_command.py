"""`fractal-aggregator demo`, the README's main job, run for real for a few seconds."""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def read_until(process: subprocess.Popen[bytes], text: str) -> str:
    """Everything the process printed up to `text` (raw reads: select sees no buffered lines)."""
    assert process.stdout is not None
    descriptor, seen = process.stdout.fileno(), b""
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_READ)
        while text.encode() not in seen:
            assert selector.select(RUN_LIMIT_S), f"no {text!r} from the demo: {seen!r}"
            chunk = os.read(descriptor, 65536)
            assert chunk, f"the demo ended before {text!r}: {seen!r}"
            seen += chunk
    return seen.decode()


def fetch(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    with opener.open(url, timeout=RUN_LIMIT_S) as response:
        body: bytes = response.read()
    return body


def fleet_once_known(url: str) -> dict[str, Any]:
    """The fleet page's nodes once the store has every descriptor and plan answer (the rules
    dispatcher records them a moment after the shadow service has them)."""
    deadline = time.monotonic() + RUN_LIMIT_S
    while True:
        nodes = {node["node"]: node for node in json.loads(fetch(url))["nodes"]}
        known = [
            node["tags"] and node["plan"]["status"] in {"accepted", "executing"}
            for node in nodes.values()
        ]
        if (nodes and all(known)) or time.monotonic() > deadline:
            return nodes
        time.sleep(0.1)


def test_the_page_shows_the_homes_plans_renew_and_ctrl_c_stops_the_demo_cleanly(
    data_dir: Path,
) -> None:
    """While it runs the page shows the homes and new plans go out every simulated half hour;
    a terminal's Ctrl-C (to the whole foreground process group, mosquitto included) stops it
    cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator_cloud.cli", "demo", "--data-dir", str(data_dir),
         "--homes", "2", "--mqtt-port", "0", "--http-port", "0", "--speed", "600"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        printed = read_until(process, "(Ctrl-C stops the demo)")
        page = re.search(r"The fleet page: (http://127\.0\.0\.1:\d+/)", printed)
        assert page is not None, printed
        nodes = fleet_once_known(page.group(1) + "api/fleet")
        read_until(process, "UTC: re-planned, 2 plans written")  # each half hour (3 s at 600x)
        broker_pid = json.loads((data_dir / "runtime.json").read_text())["broker_pid"]
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=RUN_LIMIT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert set(nodes) == {"sim-001", "sim-002"}  # the page shows the simulated homes
    assert nodes["sim-002"]["tags"]["street"] == "Oak Street"
    assert {node["plan"]["status"] for node in nodes.values()} <= {"accepted", "executing"}
    assert all(node["latest"]["grid_w"] is not None for node in nodes.values())
    assert process.returncode == 0, stderr.decode()
    assert b"mosquitto exited unexpectedly" not in stderr
    assert not (data_dir / "runtime.json").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(broker_pid, 0)  # the demo stopped its broker


def test_a_broker_that_dies_ends_the_demo_with_its_reason(data_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator_cloud.cli", "demo", "--data-dir", str(data_dir),
         "--homes", "1", "--mqtt-port", "0", "--http-port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        read_until(process, "(Ctrl-C stops the demo)")
        os.kill(json.loads((data_dir / "runtime.json").read_text())["broker_pid"], signal.SIGKILL)
        _, stderr = process.communicate(timeout=RUN_LIMIT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 1
    assert b"fractal-aggregator demo: mosquitto exited unexpectedly" in stderr


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


def test_bad_numbers_are_refused_before_anything_starts(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert aggregator_cli(["demo", "--data-dir", str(data_dir), "--homes", "0"]) == 1
    assert "the number of homes must be 1 to 1000, not 0" in capsys.readouterr().err
    assert aggregator_cli(["demo", "--data-dir", str(data_dir), "--speed", "0"]) == 1
    assert "speed must be above 0" in capsys.readouterr().err
    assert not data_dir.exists()  # no CA, no broker files: nothing was started

"""A community blueprint imported into a real ``hass`` process the way the UI does it (the
websocket's blueprint/import from a URL, then blueprint/save), made into an automation through
the automation config API, and run: its trace shows the action it called.

The blueprint is served from 127.0.0.1 (no internet here); its real address is on GitHub, which
Home Assistant reads from raw.githubusercontent.com (test_blueprint_files.py checks that).
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_socket  # type: ignore[import-untyped]

from tests.real_hass.harness import RealHass, running_hass

pytestmark = [pytest.mark.real_hass, pytest.mark.enable_socket]

BLUEPRINTS = Path(__file__).resolve().parents[2] / "blueprints" / "automation" / "fractal_node"
CARBON = "sensor.grid_carbon_intensity"


@pytest.fixture(scope="module")
def blueprint_server() -> Iterator[str]:
    """The repository's blueprint folder over HTTP on 127.0.0.1."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(BLUEPRINTS))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def real_hass(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealHass]:
    """A real hass whose automations come from automations.yaml, as the UI edits them."""
    pytest_socket.enable_socket()
    config_dir = tmp_path_factory.mktemp("blueprint_import") / "config"
    config_dir.mkdir(parents=True)
    (config_dir / "automations.yaml").write_text("[]\n")
    with running_hass(
        config_dir, extra_configuration="automation: !include automations.yaml\n"
    ) as hass:
        yield hass
    assert hass.process.returncode == 0, f"hass exited with {hass.process.returncode}"


def test_a_blueprint_imported_from_a_url_runs_as_an_automation(
    real_hass: RealHass, blueprint_server: str
) -> None:
    client = real_hass.client
    url = f"{blueprint_server}/low_carbon_window.yaml"

    imported = client.ws_command({"type": "blueprint/import", "url": url})

    assert imported["validation_errors"] is None
    assert imported["blueprint"]["metadata"]["name"] == "Low-carbon window"
    assert imported["blueprint"]["metadata"]["source_url"] == url
    client.ws_command(
        {
            "type": "blueprint/save",
            "domain": "automation",
            "path": "fractal_node/low_carbon_window",
            "yaml": imported["raw_data"],
            "source_url": url,
        }
    )
    listed = client.ws_command({"type": "blueprint/list", "domain": "automation"})
    assert listed["fractal_node/low_carbon_window.yaml"]["metadata"]["domain"] == "automation"

    _set_state(real_hass, "180")
    automation = {
        "alias": "Green power now",
        "use_blueprint": {
            "path": "fractal_node/low_carbon_window.yaml",
            "input": {
                "carbon_sensor": CARBON,
                "threshold": 100,
                "notify_action": "persistent_notification.create",
            },
        },
    }
    client.post("/api/config/automation/config/green_power_now", automation)
    _wait_for(lambda: client.states().get("automation.green_power_now", {}).get("state") == "on")

    _set_state(real_hass, "92")
    runs = _wait_for(lambda: _finished_runs(real_hass, "green_power_now"))

    trace = client.ws_command(
        {
            "type": "trace/get",
            "domain": "automation",
            "item_id": "green_power_now",
            "run_id": runs[0]["run_id"],
        }
    )
    (step,) = trace["trace"]["action/0/if"]
    assert step["result"]["result"] is True  # the "low" branch
    (called,) = trace["trace"]["action/0/then/0"]
    params = called["result"]["params"]
    assert (params["domain"], params["service"]) == ("persistent_notification", "create")
    assert params["service_data"]["title"] == "Low-carbon power now"
    assert "92 gCO₂/kWh, below your 100" in params["service_data"]["message"]
    assert real_hass.log_problems("blueprint") == []


def _set_state(hass: RealHass, state: str) -> None:
    """A sensor's state through the REST API (201 when it is new, 200 after)."""
    answer = hass.client.request("POST", f"/api/states/{CARBON}", {"state": state})
    assert answer.status in (200, 201), answer.body


def _finished_runs(hass: RealHass, item_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = hass.client.ws_command(
        {"type": "trace/list", "domain": "automation", "item_id": item_id}
    )
    return [run for run in runs if run.get("script_execution") == "finished"]


def _wait_for(read: Any, limit_s: float = 60.0) -> Any:
    """Poll a real process until `read()` gives something truthy (or fail after `limit_s`)."""
    deadline = time.monotonic() + limit_s
    while not (value := read()):
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.5)
    return value

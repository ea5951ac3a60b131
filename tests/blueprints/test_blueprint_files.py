"""Every blueprint file is a valid automation blueprint Home Assistant can import from its
GitHub URL, and the inputs that take Fractal Node's own entities or devices say so."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint import importer
from homeassistant.components.blueprint.models import Blueprint
from homeassistant.helpers import selector
from homeassistant.util.yaml import load_yaml_dict

from tests.blueprints.blueprint_support import BLUEPRINTS, REPOSITORY_ROOT

REPOSITORY_URL = "https://github.com/fractal-node/fractal-node/blob/main/"
RAW_URL = "https://raw.githubusercontent.com/fractal-node/fractal-node/main/"

# The inputs that take one of the node's own entities or devices: their selectors must offer
# only Fractal Node's (and no other input may pretend to).
OUR_INPUTS = {
    "run_when_cheap_or_sunny": {"plan_calendar", "export_sensor"},
    "charge_car_for_departure": {"ev_charger"},
    "flexibility_event": {"devices"},
    "surplus_to_hot_water": {"immersion", "export_sensor"},
    "low_carbon_window": set(),
    "hydro_guardian": {"level_sensor"},
    "street_peak_challenge": set(),
}
FILES = sorted(BLUEPRINTS.glob("*.yaml"))


def test_the_seven_blueprints_are_there() -> None:
    assert {path.stem for path in FILES} == set(OUR_INPUTS)


def blueprint(path: Path) -> Blueprint:
    return Blueprint(
        load_yaml_dict(path),
        path=str(path),
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_a_blueprint_validates_with_its_metadata(path: Path) -> None:
    loaded = blueprint(path)

    assert loaded.domain == "automation"
    metadata = loaded.metadata
    assert metadata["name"]
    assert "Needs:" in metadata["description"]  # what it needs, for whoever imports it
    relative = path.relative_to(REPOSITORY_ROOT).as_posix()
    assert metadata["source_url"] == REPOSITORY_URL + relative
    # Home Assistant fetches a GitHub URL from raw.githubusercontent.com: the same file.
    assert importer._get_github_import_url(metadata["source_url"]) == RAW_URL + relative
    assert "mode" in loaded.data  # chosen on purpose, not left to the default
    for name, spec in loaded.inputs.items():
        assert spec, f"{name} has no description"
        assert spec.get("name"), f"{name} has no name"
        selector.validate_selector(spec["selector"])


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_inputs_for_our_entities_offer_only_fractal_node_ones(path: Path) -> None:
    inputs = blueprint(path).inputs

    ours = {name for name, spec in inputs.items() if _restricted_to_fractal_node(spec)}

    assert ours == OUR_INPUTS[path.stem]


def _restricted_to_fractal_node(spec: dict[str, Any]) -> bool:
    """Every filter of the entity or device selector names the fractal_node integration."""
    for kind in ("entity", "device"):
        config = (spec["selector"] or {}).get(kind)
        if config is None:
            continue
        filters = config.get("filter") or []
        named = [f.get("integration") == "fractal_node" for f in filters]
        assert all(named) or not any(named), f"{spec['name']}: mixed filters"
        return bool(named) and all(named)
    return False


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_the_blueprints_page_has_its_import_button_and_every_input(path: Path) -> None:
    page = (REPOSITORY_ROOT / "docs" / "blueprints.md").read_text()
    loaded = blueprint(path)

    assert f"## {loaded.name}\n" in page
    section = page.split(f"## {loaded.name}\n")[1].split("\n## ")[0]
    import_url = "https://my.home-assistant.io/redirect/blueprint_import/?blueprint_url="
    assert import_url + quote(loaded.metadata["source_url"], safe="") in section
    for spec in loaded.inputs.values():
        assert spec["name"] in section, f"{spec['name']} is not described"

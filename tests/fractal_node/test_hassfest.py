"""The integration's metadata, checked the way hassfest and the HACS validator check it.

Neither tool is available offline (hassfest lives in Home Assistant's source tree, the HACS
action in a container), so their rules for a custom integration are restated here from their
sources (home-assistant/core ``script/hassfest`` at 2025.4, hacs/integration
``custom_components/hacs/utils/validate.py``), plus the consistency checks between the code and
its strings that hassfest does per file and translators rely on.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import string
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
import yaml
from awesomeversion import AwesomeVersion, AwesomeVersionStrategy
from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType, section
from homeassistant.setup import async_setup_component
from packaging.requirements import Requirement

from custom_components.fractal_node.const import (
    DOMAIN,
    ISSUE_CERTIFICATE_EXPIRING,
    SUBENTRY_MODBUS_DEVICE,
    Role,
    Transport,
)
from custom_components.fractal_node.device_flow import (
    BAUD_RATES,
    CONFIRM_SCHEMA,
    LIMIT_FIELDS,
    TCP_SCHEMA,
    TRANSPORT_SCHEMA,
)
from custom_components.fractal_node.device_flow import _model_schema as model_schema
from custom_components.fractal_node.device_runtime import ISSUE_DEVICE_UNAVAILABLE
from custom_components.fractal_node.fractal.devices import shipped_map_names
from custom_components.fractal_node.fractal.node import LinkMode
from custom_components.fractal_node.fractal.tls import CredentialError
from custom_components.fractal_node.glowmarkt import ISSUE_GLOWMARKT_AUTH
from custom_components.fractal_node.meter_entities import ISSUE_METER_SILENT, METER_SENSORS
from custom_components.fractal_node.sensor import EXECUTOR_SENSORS, SENSORS
from tests.fractal_node.helpers import aws_settings, local_settings, node_entry, setup_entry
from tests.support.certificates import CertificateAuthority, Issued

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / DOMAIN


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- manifest.json (hassfest manifest.py, CUSTOM_INTEGRATION_MANIFEST_SCHEMA) ------------------

IOT_CLASSES = [
    "assumed_state",
    "calculated",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
]
INTEGRATION_TYPES = [
    "device",
    "entity",
    "hardware",
    "helper",
    "hub",
    "service",
    "system",
    "virtual",
]
QUALITY_SCALES = ["bronze", "gold", "internal", "legacy", "platinum", "silver"]
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==\d+(\.\d+)*$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def https_url(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"https://[^\s/]+\.[^\s/]+(/\S*)?", value):
        raise vol.Invalid(f"{value!r} is not an https URL")
    return value


def codeowner(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"@[A-Za-z0-9-]+(/[A-Za-z0-9-]+)?", value):
        raise vol.Invalid(f"{value!r} is not a GitHub @user or @org/team")
    return value


def pinned(value: Any) -> str:
    if not isinstance(value, str) or not PINNED.fullmatch(value):
        raise vol.Invalid(f"{value!r} is not pinned as package==x.y.z")
    return value


def custom_version(value: Any) -> str:
    """hassfest accepts what AwesomeVersion parses; the project promises semver."""
    if not isinstance(value, str) or not SEMVER.fullmatch(value):
        raise vol.Invalid(f"{value!r} is not a semantic version x.y.z")
    AwesomeVersion(value, ensure_strategy=[AwesomeVersionStrategy.SEMVER])
    return value


MANIFEST_SCHEMA = vol.Schema(
    {
        vol.Required("domain"): DOMAIN,
        vol.Required("name"): str,
        vol.Required("codeowners"): vol.All([codeowner], vol.Length(min=1)),
        vol.Required("config_flow"): True,
        vol.Optional("dependencies"): [str],
        vol.Optional("after_dependencies"): [str],
        vol.Required("documentation"): https_url,
        vol.Required("integration_type"): vol.In(INTEGRATION_TYPES),
        vol.Required("iot_class"): vol.In(IOT_CLASSES),
        vol.Required("issue_tracker"): https_url,  # HACS requires it
        vol.Optional("loggers"): [str],
        vol.Optional("quality_scale"): vol.In(QUALITY_SCALES),
        vol.Optional("requirements"): [pinned],
        vol.Optional("single_config_entry"): bool,
        vol.Required("version"): custom_version,  # required for custom integrations
    },
    extra=vol.PREVENT_EXTRA,
)


def manifest_problems(manifest: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    try:
        MANIFEST_SCHEMA(manifest)
    except vol.Invalid as error:
        problems.append(str(error))
    keys = list(manifest)
    expected_order = [
        "domain",
        "name",
        *sorted(key for key in keys if key not in ("domain", "name")),
    ]
    if keys != expected_order:
        problems.append(f"keys must be domain, name, then sorted: {expected_order}, not {keys}")
    return problems


def test_manifest_is_valid() -> None:
    manifest = load_json(INTEGRATION / "manifest.json")
    assert manifest_problems(manifest) == []
    assert manifest["name"] == "Fractal Node"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"version": "0.1"}, "semantic version"),
        ({"requirements": ["pydantic>=2"]}, "pinned"),
        ({"iot_class": "local_pull"}, "iot_class"),
        ({"integration_type": "gateway"}, "integration_type"),
        ({"codeowners": ["fractal-node"]}, "@user"),
        ({"documentation": "http://example.org"}, "https URL"),
        ({"unknown_key": True}, "extra keys not allowed"),
        ({"domain": "fractal"}, "domain"),
    ],
)
def test_the_manifest_check_catches_mistakes(change: dict[str, Any], problem: str) -> None:
    manifest = load_json(INTEGRATION / "manifest.json") | change
    assert any(problem in found for found in manifest_problems(manifest))


def test_the_manifest_check_catches_key_order() -> None:
    manifest = load_json(INTEGRATION / "manifest.json")
    reordered = {"name": manifest["name"], **manifest}
    reordered = {"domain": manifest["domain"], "version": manifest["version"], **reordered}
    assert any("keys must be" in found for found in manifest_problems(reordered))


def imported_distributions() -> set[str]:
    """PyPI distributions the integration imports at run time, following its relative imports
    into the bundled library (modules it never imports, e.g. the planner, do not count)."""
    owners = importlib.metadata.packages_distributions()
    found: set[str] = set()
    for module in reachable_modules():
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "homeassistant":
                    found.update(owners.get(top, [f"<no distribution for {top}>"]))
    return {canonical(name) for name in found}


def reachable_modules() -> Iterator[Path]:
    pending = sorted(INTEGRATION.glob("*.py"))
    seen: set[Path] = set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        yield module
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                pending.extend(relative_targets(module, node))


def relative_targets(module: Path, node: ast.ImportFrom) -> list[Path]:
    base = module.parent
    for _ in range(node.level - 1):
        base = base.parent
    if node.module:
        base = base.joinpath(*node.module.split("."))
    candidates = [base.with_suffix(".py"), base / "__init__.py"]
    candidates += [base / f"{alias.name}.py" for alias in node.names]
    candidates += [base / alias.name / "__init__.py" for alias in node.names]
    return [candidate for candidate in candidates if candidate.is_file()]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {canonical(Requirement(requirement).name) for requirement in requirements}


def test_requirements_cover_what_the_integration_imports() -> None:
    """Every third-party import is shipped by Home Assistant, listed in requirements, or a
    dependency of a listed requirement (dependency transparency); nothing listed is unused."""
    manifest = load_json(INTEGRATION / "manifest.json")
    listed = requirement_names(manifest["requirements"])
    home_assistant = requirement_names(importlib.metadata.requires("homeassistant") or [])
    brought_along = {
        name
        for requirement in manifest["requirements"]
        for name in requirement_names(
            importlib.metadata.requires(Requirement(requirement).name) or []
        )
    }
    imported = imported_distributions()
    assert imported - home_assistant - listed - brought_along == set()
    assert listed - imported == set(), "requirements the integration does not import"


def test_requirements_match_what_the_tests_ran_with() -> None:
    for requirement in load_json(INTEGRATION / "manifest.json")["requirements"]:
        parsed = Requirement(requirement)
        assert importlib.metadata.version(parsed.name) in parsed.specifier, requirement


# --- hacs.json and the HACS checks of the repository ------------------------------------------

HACS_SCHEMA = vol.Schema(
    {
        vol.Optional("content_in_root"): bool,
        vol.Optional("country"): vol.Any(str, [str]),
        vol.Optional("filename"): str,
        vol.Optional("hacs"): str,
        vol.Optional("hide_default_branch"): bool,
        vol.Optional("homeassistant"): str,
        vol.Optional("persistent_directory"): str,
        vol.Optional("render_readme"): bool,
        vol.Optional("zip_release"): bool,
        vol.Required("name"): str,
    },
    extra=vol.PREVENT_EXTRA,
)


def hacs_problems(hacs: dict[str, Any]) -> list[str]:
    try:
        HACS_SCHEMA(hacs)
    except vol.Invalid as error:
        return [str(error)]
    if hacs.get("zip_release") and "filename" not in hacs:
        return ["zip_release needs filename"]
    if "homeassistant" in hacs and not AwesomeVersion(hacs["homeassistant"]).valid:
        return [f"homeassistant {hacs['homeassistant']!r} is not a version"]
    return []


def test_hacs_json_is_valid() -> None:
    hacs = load_json(ROOT / "hacs.json")
    assert hacs_problems(hacs) == []
    assert hacs["name"] == load_json(INTEGRATION / "manifest.json")["name"]
    assert AwesomeVersion(hacs["homeassistant"]) >= AwesomeVersion("2025.4.0")
    # HACS manages only the first integration of a repository.
    assert [path.name for path in (ROOT / "custom_components").iterdir() if path.is_dir()] == [
        DOMAIN
    ]


@pytest.mark.parametrize(
    "change",
    [{"name": 1}, {"render_readme": "yes"}, {"domains": ["sensor"]}, {"zip_release": True}],
)
def test_the_hacs_check_catches_mistakes(change: dict[str, Any]) -> None:
    assert hacs_problems(load_json(ROOT / "hacs.json") | change) != []


# --- strings and translations ------------------------------------------------------------------


@pytest.fixture(scope="module")
def strings() -> dict[str, Any]:
    data: dict[str, Any] = load_json(INTEGRATION / "strings.json")
    return data


def test_english_translation_is_the_strings_file(strings: dict[str, Any]) -> None:
    assert load_json(INTEGRATION / "translations" / "en.json") == strings


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def all_texts(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from all_texts(value, f"{path}.{key}" if path else key)
    else:
        yield path, node


def test_every_string_is_non_empty_text_without_core_references(strings: dict[str, Any]) -> None:
    for path, text in all_texts(strings):
        assert isinstance(text, str), path
        assert text.strip(), path
        # [%key:...%] references are resolved only for core integrations.
        assert "[%key:" not in text, path
        placeholders(text)  # raises on a malformed {placeholder}


# --- the flows: every form, field, error and abort has its text --------------------------------

FLOW_SOURCE = INTEGRATION / "config_flow.py"


def flow_classes() -> dict[str, ast.ClassDef]:
    """The config flow and options flow classes, by kind ("config" / "options")."""
    tree = ast.parse(FLOW_SOURCE.read_text(encoding="utf-8"))
    kinds: dict[str, ast.ClassDef] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = {base.id for base in node.bases if isinstance(base, ast.Name)}
            if "ConfigFlow" in bases:
                kinds["config"] = node
            elif "OptionsFlow" in bases:
                kinds["options"] = node
    assert set(kinds) == {"config", "options"}
    return kinds


def step_methods(flow: ast.ClassDef) -> set[str]:
    return {
        node.name.removeprefix("async_step_")
        for node in flow.body
        if isinstance(node, ast.AsyncFunctionDef) and node.name.startswith("async_step_")
    }


def error_codes(tree: ast.AST) -> set[str]:
    """String values put into an ``errors`` dict or returned in ``{field: "code"}`` dicts."""
    codes: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "errors"
                ):
                    codes.add(node.value.value)
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict):
            codes.update(
                value.value for value in node.value.values if isinstance(value, ast.Constant)
            )
    return codes


def abort_reasons(tree: ast.AST) -> set[str]:
    reasons: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = node.func.attr
        if name == "async_abort":
            reasons.update(
                keyword.value.value
                for keyword in node.keywords
                if keyword.arg == "reason" and isinstance(keyword.value, ast.Constant)
            )
        elif name == "_abort_if_unique_id_configured":
            reasons.add("already_configured")
        elif name == "async_update_reload_and_abort":
            reasons.update({"reauth_successful", "reconfigure_successful"})
        elif name == "async_update_and_abort":  # a subentry flow's reconfigure
            reasons.add("reconfigure_successful")
    return reasons


def module_functions(tree: ast.Module) -> ast.Module:
    return ast.Module(
        body=[node for node in tree.body if isinstance(node, ast.FunctionDef)], type_ignores=[]
    )


def test_every_error_and_abort_the_flows_can_return_has_its_text(strings: dict[str, Any]) -> None:
    tree = ast.parse(FLOW_SOURCE.read_text(encoding="utf-8"))
    flows = flow_classes()
    config_errors = (
        error_codes(flows["config"])
        | error_codes(module_functions(tree))
        | {code.value for code in CredentialError}  # returned through check_link_credentials
    )
    assert "invalid_tags" in config_errors
    assert set(strings["config"]["error"]) == config_errors
    assert set(strings["options"]["error"]) == error_codes(flows["options"])
    assert set(strings["config"]["abort"]) == abort_reasons(flows["config"])
    assert abort_reasons(flows["options"]) <= set(strings["options"].get("abort", {}))


def test_the_error_check_reads_the_flow_code() -> None:
    flows = flow_classes()
    assert {"invalid_name", "invalid_node_id", "invalid_tags"} <= error_codes(flows["config"])
    assert abort_reasons(flows["config"]) >= {"already_configured", "reauth_not_needed"}


async def visit_forms(
    hass: HomeAssistant, local_ca: CertificateAuthority, node: Issued, aws_ca: CertificateAuthority
) -> list[tuple[str, FlowResult]]:
    """Open every form the integration can show, as (flow kind, form); a step may show
    different fields for different links (reauth_confirm)."""
    forms: list[tuple[str, FlowResult]] = []
    flows = hass.config_entries.flow

    def keep(kind: str, result: FlowResult) -> FlowResult:
        assert result["type"] is FlowResultType.FORM, result
        forms.append((kind, result))
        return result

    for link in ("local", "aws"):
        result = keep("config", await flows.async_init(DOMAIN, context={"source": "user"}))
        user_input = {"name": f"Form tour {link}", "link": link}
        keep("config", await flows.async_configure(result["flow_id"], user_input))
    for link, settings in (
        ("local", local_settings(local_ca, node)),
        ("aws", aws_settings(aws_ca, node)),
    ):
        entry = node_entry(link, **settings)
        await setup_entry(hass, entry)
        result = keep("config", await entry.start_reconfigure_flow(hass))
        keep("config", await entry.start_reauth_flow(hass))
        result = keep("options", await hass.config_entries.options.async_init(entry.entry_id))
        assert await hass.config_entries.async_remove(entry.entry_id)
    return forms


async def test_every_form_has_a_title_and_every_field_a_label_and_description(
    hass: HomeAssistant,
    strings: dict[str, Any],
    local_ca: CertificateAuthority,
    node_credentials: Issued,
    amazon_root_ca: CertificateAuthority,
) -> None:
    forms = await visit_forms(hass, local_ca, node_credentials, amazon_root_ca)
    flows = flow_classes()
    shown: dict[tuple[str, str], set[str]] = {}
    for kind, form in forms:
        step_id = form["step_id"]
        texts = strings[kind]["step"][step_id]
        assert texts["title"], step_id
        fields = {str(key) for key in form["data_schema"].schema}
        for name, value in form["data_schema"].schema.items():
            if isinstance(value, section):  # a section's fields have their texts in sections
                fields.discard(str(name))
                section_texts = texts["sections"][str(name)]
                assert section_texts["name"], (step_id, str(name))
                inner = {str(key) for key in value.schema.schema}
                assert inner == set(section_texts["data"]) == set(section_texts["data_description"])
        assert fields <= set(texts["data_description"]), step_id
        offered = set(form["description_placeholders"] or {})
        used = placeholders(texts["title"]) | placeholders(texts.get("description", ""))
        assert used <= offered, (step_id, used - offered)
        shown.setdefault((kind, step_id), set()).update(fields)
    # No text for a field or step that no form shows.
    for (kind, step_id), fields in shown.items():
        texts = strings[kind]["step"][step_id]
        assert set(texts["data"]) == fields == set(texts["data_description"]), step_id
    config_steps = {step for kind, step in shown if kind == "config"}
    options_steps = {step for kind, step in shown if kind == "options"}
    # "reauth" is the entry point Home Assistant calls; it shows reauth_confirm, never a form.
    assert config_steps == step_methods(flows["config"]) - {"reauth"}
    assert options_steps == step_methods(flows["options"])
    assert set(strings["config"]["step"]) == config_steps
    assert set(strings["options"]["step"]) == options_steps


def test_the_link_selector_has_a_label_for_every_link(strings: dict[str, Any]) -> None:
    assert set(strings["selector"]["link"]["options"]) == {mode.value for mode in LinkMode}


# --- entities, icons, services, exceptions, issues ---------------------------------------------

ALL_SENSORS = (*SENSORS, *EXECUTOR_SENSORS, *METER_SENSORS)


def test_every_entity_name_and_enum_state_has_its_text(strings: dict[str, Any]) -> None:
    texts = strings["entity"]["sensor"]
    assert set(texts) == {description.translation_key for description in ALL_SENSORS}
    for description in ALL_SENSORS:
        entity = texts[description.translation_key]
        assert entity["name"]
        if description.device_class is SensorDeviceClass.ENUM:
            assert set(entity["state"]) == set(description.options or []), description.key
        else:
            assert "state" not in entity, description.key


def test_icons_match_the_entities_and_services() -> None:
    icons = load_json(INTEGRATION / "icons.json")
    icon = re.compile(r"^mdi:[a-z0-9-]+$")
    sensors = {description.translation_key: description for description in ALL_SENSORS}
    assert set(icons) <= {"entity", "services"}
    assert set(icons["entity"]["sensor"]) == set(sensors)
    for key, entity in icons["entity"]["sensor"].items():
        assert icon.fullmatch(entity["default"]), key
        assert set(entity.get("state", {})) <= set(sensors[key].options or []), key
        assert all(icon.fullmatch(value) for value in entity.get("state", {}).values()), key
    services = load_yaml(INTEGRATION / "services.yaml")
    assert set(icons["services"]) == set(services)
    assert all(icon.fullmatch(entry["service"]) for entry in icons["services"].values())


async def test_services_yaml_strings_and_registered_services_agree(
    hass: HomeAssistant, strings: dict[str, Any]
) -> None:
    services = load_yaml(INTEGRATION / "services.yaml")
    assert await async_setup_component(hass, DOMAIN, {})
    assert set(hass.services.async_services_for_domain(DOMAIN)) == set(services)
    assert set(strings["services"]) == set(services)
    for name, service in services.items():
        texts = strings["services"][name]
        assert texts["name"]
        assert texts["description"]
        assert set(texts["fields"]) == set(service.get("fields", {}))
        assert all(field["name"] and field["description"] for field in texts["fields"].values())


def exception_keys() -> set[str]:
    """translation_key literals of exceptions raised anywhere in the integration's modules."""
    keys: set[str] = set()
    for module in INTEGRATION.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if not re.search(r"(Error|Failed|NotReady)$", node.func.id):
                continue
            keys.update(
                keyword.value.value
                for keyword in node.keywords
                if keyword.arg == "translation_key" and isinstance(keyword.value, ast.Constant)
            )
    return keys


def test_every_exception_and_issue_has_its_text(strings: dict[str, Any]) -> None:
    assert set(strings["exceptions"]) == exception_keys()
    assert all(entry["message"] for entry in strings["exceptions"].values())
    assert set(strings["issues"]) == {
        ISSUE_CERTIFICATE_EXPIRING,
        ISSUE_DEVICE_UNAVAILABLE,
        ISSUE_GLOWMARKT_AUTH,
        ISSUE_METER_SILENT,
    }
    issue = strings["issues"][ISSUE_METER_SILENT]
    assert placeholders(issue["title"] + issue["description"]) == {
        "name",
        "node",
        "minutes",
        "reason",
    }
    issue = strings["issues"][ISSUE_GLOWMARKT_AUTH]
    assert placeholders(issue["title"] + issue["description"]) == {"name", "node"}
    issue = strings["issues"][ISSUE_CERTIFICATE_EXPIRING]
    assert placeholders(issue["title"] + issue["description"]) == {"name", "expiry", "days"}
    issue = strings["issues"][ISSUE_DEVICE_UNAVAILABLE]
    assert placeholders(issue["title"] + issue["description"]) == {
        "name",
        "node",
        "minutes",
        "reason",
    }


# --- quality_scale.yaml (hassfest quality_scale.py, rules of Home Assistant 2025.4) -------------

QUALITY_RULES = {
    "bronze": [
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ],
    "silver": [
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ],
    "gold": [
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ],
    "platinum": ["async-dependency", "inject-websession", "strict-typing"],
}
ALL_RULES = [rule for rules in QUALITY_RULES.values() for rule in rules]
RULE_SCHEMA = vol.Any(
    vol.In(["todo", "done"]),
    vol.Schema({vol.Required("status"): vol.In(["todo", "done"]), vol.Required("comment"): str}),
    vol.Schema({vol.Required("status"): "exempt", vol.Required("comment"): str}),
)
QUALITY_SCALE_SCHEMA = vol.Schema(
    {vol.Required("rules"): {vol.Required(rule): RULE_SCHEMA for rule in ALL_RULES}}
)


def quality_scale_problems(scale: Any, declared_tier: str | None) -> list[str]:
    try:
        QUALITY_SCALE_SCHEMA(scale)
    except vol.Invalid as error:
        return [str(error)]
    met = {
        rule
        for rule, value in scale["rules"].items()
        if (value["status"] if isinstance(value, dict) else value) in ("done", "exempt")
    }
    problems: list[str] = []
    for tier, rules in QUALITY_RULES.items():
        if declared_tier is None:
            break
        problems += [f"{tier} needs {rule}" for rule in rules if rule not in met]
        if tier == declared_tier:
            break
    return problems


def test_quality_scale_lists_every_rule_with_a_valid_status() -> None:
    scale = load_yaml(INTEGRATION / "quality_scale.yaml")
    declared = load_json(INTEGRATION / "manifest.json").get("quality_scale")
    assert quality_scale_problems(scale, declared) == []
    assert list(scale["rules"]) == ALL_RULES  # in the scale's order, tier by tier


@pytest.mark.parametrize(
    ("change", "declared"),
    [
        (lambda rules: rules.pop("strict-typing"), None),
        (lambda rules: rules.update({"made-up-rule": "done"}), None),
        (lambda rules: rules.update({"brands": "exempt"}), None),  # exempt needs a comment
        (lambda rules: rules.update({"brands": {"status": "maybe", "comment": "?"}}), None),
        (lambda rules: None, "bronze"),  # bronze still has rules to do
    ],
)
def test_the_quality_scale_check_catches_mistakes(change: Any, declared: str | None) -> None:
    scale = load_yaml(INTEGRATION / "quality_scale.yaml")
    change(scale["rules"])
    assert quality_scale_problems(scale, declared) != []


# --- the "Add device" subentry flow ------------------------------------------------------------

DEVICE_FLOW_SOURCE = INTEGRATION / "device_flow.py"


def device_flow_texts(strings: dict[str, Any]) -> dict[str, Any]:
    texts: dict[str, Any] = strings["config_subentries"][SUBENTRY_MODBUS_DEVICE]
    return texts


def probe_errors() -> set[str]:
    """Error codes the connection test raises: ProbeFailed("code", ...)."""
    codes: set[str] = set()
    sources = (INTEGRATION / "modbus.py", DEVICE_FLOW_SOURCE)
    trees = [ast.parse(source.read_text(encoding="utf-8")) for source in sources]
    for node in (node for tree in trees for node in ast.walk(tree)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ProbeFailed":
            first = node.args[0]
            if isinstance(first, ast.Constant):
                codes.add(first.value)
    return codes


def test_the_device_flow_has_text_for_every_step_error_and_abort(strings: dict[str, Any]) -> None:
    texts = device_flow_texts(strings)
    tree = ast.parse(DEVICE_FLOW_SOURCE.read_text(encoding="utf-8"))
    (flow,) = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    assert texts["initiate_flow"]["user"]
    assert texts["entry_type"]
    assert set(texts["step"]) == step_methods(flow)
    assert all(step["title"] for step in texts["step"].values())
    errors = error_codes(tree) | probe_errors()
    assert set(texts["error"]) == errors
    assert set(texts["abort"]) == abort_reasons(tree)


def test_the_device_flow_forms_have_a_label_and_description_for_every_field(
    strings: dict[str, Any],
) -> None:
    steps = device_flow_texts(strings)["step"]
    limits = {str(key) for fields in LIMIT_FIELDS.values() for key in fields}
    serial = {"serial_port", "baudrate", "parity", "stopbits", "unit"}
    shown = {
        "user": {str(key) for key in TRANSPORT_SCHEMA.schema},
        "tcp": {str(key) for key in TCP_SCHEMA.schema},
        "serial": serial,
        "model": {str(key) for key in model_schema().schema},
        "confirm": {str(key) for key in CONFIRM_SCHEMA.schema},
        "reconfigure": {str(key) for key in CONFIRM_SCHEMA.schema},
        "limits": limits,
    }
    for step_id, fields in shown.items():
        assert set(steps[step_id]["data"]) == fields == set(steps[step_id]["data_description"])


def test_the_device_flow_selectors_have_a_label_for_every_option(strings: dict[str, Any]) -> None:
    selectors = strings["selector"]
    assert set(selectors["transport"]["options"]) == {t.value for t in Transport}
    assert set(selectors["role"]["options"]) == {role.value for role in Role}
    assert set(selectors["model"]["options"]) == {"auto", "custom", *shipped_map_names()}
    assert set(selectors["baudrate"]["options"]) == set(BAUD_RATES)
    assert set(selectors["parity"]["options"]) == {"N", "E", "O"}
    assert set(selectors["stopbits"]["options"]) == {"1", "2"}

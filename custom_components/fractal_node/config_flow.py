"""Config, options, reconfigure and reauth flows of Fractal Node.

user -> (standalone: entry) | local | aws. Certificates are checked before anything is stored:
readable PEM, key matches certificate, inside its validity window, and for a local aggregator
issued by its CA with CN = node id. Each problem is shown on the field it concerns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
)
from homeassistant.util import dt as dt_util
from homeassistant.util import slugify

from .cheap_window import cheap_window
from .const import (
    CONF_BATTERY_CAPACITY,
    CONF_CA_PEM,
    CONF_CERTIFICATE_PEM,
    CONF_CHEAP_CHARGE_W,
    CONF_CHEAP_WINDOW,
    CONF_DEFAULT_PLAN,
    CONF_ENDPOINT,
    CONF_EXPORT_RATE,
    CONF_IMPORT_RATE,
    CONF_LINK,
    CONF_LOAD,
    CONF_NODE_ID,
    CONF_PLANNING,
    CONF_PRIVATE_KEY_PEM,
    CONF_PV_FORECAST,
    CONF_ROLE,
    CONF_TAGS,
    DEFAULT_PORT,
    DOMAIN,
    SUBENTRY_MODBUS_DEVICE,
    Role,
)
from .device_flow import ModbusDeviceSubentryFlow
from .fractal.link_settings import check_link_credentials, valid_endpoint, valid_host
from .fractal.node import LinkMode, valid_node_id, valid_node_name
from .fractal.tags import TagParse, format_tags, parse_tags
from .glow_flow import GlowMqttSubentryFlow
from .glow_mqtt import SUBENTRY_GLOW_MQTT
from .glowmarkt import SUBENTRY_GLOWMARKT
from .glowmarkt_flow import GlowmarktSubentryFlow
from .standalone import async_input_problems
from .zigbee_flow import ZigbeeMeterSubentryFlow
from .zigbee_meter import SUBENTRY_ZIGBEE_METER

TEXT = TextSelector()
MULTILINE = TextSelector(TextSelectorConfig(multiline=True))
PORT = vol.All(
    NumberSelector(NumberSelectorConfig(min=1, max=65535, step=1, mode=NumberSelectorMode.BOX)),
    vol.Coerce(int),
)
LINK = SelectSelector(
    SelectSelectorConfig(
        options=[mode.value for mode in LinkMode],
        translation_key=CONF_LINK,
        mode=SelectSelectorMode.LIST,
    )
)

USER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_NAME): TEXT,
        vol.Optional(CONF_NODE_ID): TEXT,
        vol.Optional(CONF_TAGS): MULTILINE,
        vol.Required(CONF_LINK, default=LinkMode.STANDALONE.value): LINK,
    }
)
RECONFIGURE_SCHEMA = vol.Schema({vol.Required(CONF_LINK): LINK})
RATES = EntitySelector(EntitySelectorConfig(domain=["sensor", "event"], multiple=True))
PLANNING_SCHEMA = vol.Schema(
    {
        vol.Optional(CONF_IMPORT_RATE): RATES,
        vol.Optional(CONF_EXPORT_RATE): RATES,
        vol.Optional(CONF_PV_FORECAST): EntitySelector(
            EntitySelectorConfig(domain="sensor", multiple=True)
        ),
        vol.Optional(CONF_LOAD): EntitySelector(
            EntitySelectorConfig(domain="sensor", device_class=["power", "energy"])
        ),
        vol.Optional(CONF_BATTERY_CAPACITY): NumberSelector(
            NumberSelectorConfig(
                min=0.1, max=1000, step=0.1, unit_of_measurement="kWh", mode=NumberSelectorMode.BOX
            )
        ),
    }
)
DEFAULT_PLAN_SCHEMA = vol.Schema(
    {
        vol.Optional(CONF_CHEAP_WINDOW): TEXT,
        vol.Optional(CONF_CHEAP_CHARGE_W): NumberSelector(
            NumberSelectorConfig(
                min=1, max=100000, step=1, unit_of_measurement="W", mode=NumberSelectorMode.BOX
            )
        ),
    }
)
OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Optional(CONF_TAGS): MULTILINE,
        vol.Optional(CONF_PLANNING): section(PLANNING_SCHEMA, {"collapsed": True}),
        vol.Optional(CONF_DEFAULT_PLAN): section(DEFAULT_PLAN_SCHEMA, {"collapsed": True}),
    }
)
LOCAL_CREDENTIALS = {
    vol.Required(CONF_CA_PEM): MULTILINE,
    vol.Required(CONF_CERTIFICATE_PEM): MULTILINE,
    vol.Required(CONF_PRIVATE_KEY_PEM): MULTILINE,
}
AWS_CREDENTIALS = {
    vol.Required(CONF_CERTIFICATE_PEM): MULTILINE,
    vol.Required(CONF_PRIVATE_KEY_PEM): MULTILINE,
}
PEM_FIELDS = (CONF_CA_PEM, CONF_CERTIFICATE_PEM, CONF_PRIVATE_KEY_PEM)
LOCAL_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_HOST): TEXT,
        vol.Required(CONF_PORT, default=DEFAULT_PORT): PORT,
        **LOCAL_CREDENTIALS,
    }
)
AWS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_ENDPOINT): TEXT,
        vol.Required(CONF_PORT, default=DEFAULT_PORT): PORT,
        **AWS_CREDENTIALS,
        vol.Required(CONF_CA_PEM): MULTILINE,
    }
)


class FractalNodeConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a node: who it is, its tags, and how it is linked to an aggregator."""

    VERSION = 1
    MINOR_VERSION = 1

    def __init__(self) -> None:
        self._identity: dict[str, str] = {}  # name, node id and link chosen so far
        self._tags: dict[str, str] = {}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> FractalNodeOptionsFlow:
        return FractalNodeOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Installers add the node's devices as subentries ("Add device")."""
        return {
            SUBENTRY_MODBUS_DEVICE: ModbusDeviceSubentryFlow,
            SUBENTRY_GLOW_MQTT: GlowMqttSubentryFlow,
            SUBENTRY_GLOWMARKT: GlowmarktSubentryFlow,
            SUBENTRY_ZIGBEE_METER: ZigbeeMeterSubentryFlow,
        }

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        tags = TagParse()
        if user_input is not None:
            name = user_input[CONF_NAME].strip()
            typed_node_id = user_input.get(CONF_NODE_ID, "").strip()
            node_id = typed_node_id or slugify(name, separator="-")
            tags = parse_tags(user_input.get(CONF_TAGS, ""))
            if not valid_node_name(name):
                errors[CONF_NAME] = "invalid_name"
            # A node id derived from an invalid name would only repeat the name's error.
            if (typed_node_id or not errors) and not valid_node_id(node_id):
                errors[CONF_NODE_ID] = "invalid_node_id"
            if not tags.ok:
                errors[CONF_TAGS] = "invalid_tags"
            if not errors:
                await self.async_set_unique_id(node_id)
                self._abort_if_unique_id_configured()
                self._identity = {
                    CONF_NAME: name,
                    CONF_NODE_ID: node_id,
                    CONF_LINK: user_input[CONF_LINK],
                }
                self._tags = tags.tags
                return await self._async_step_link()
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input),
            errors=errors,
            description_placeholders=_tag_placeholders(tags),
        )

    async def async_step_local(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_step_link_settings(
            step_id="local", schema=LOCAL_SCHEMA, user_input=user_input
        )

    async def async_step_aws(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_step_link_settings(
            step_id="aws", schema=AWS_SCHEMA, user_input=user_input
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change how an existing node is linked; name, node id and tags stay."""
        entry = self._get_reconfigure_entry()
        if user_input is not None:
            self._identity = {
                CONF_NAME: entry.data[CONF_NAME],
                CONF_NODE_ID: entry.data[CONF_NODE_ID],
                CONF_LINK: user_input[CONF_LINK],
            }
            return await self._async_step_link()
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(RECONFIGURE_SCHEMA, entry.data),
            description_placeholders={"name": entry.title},
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Started by Home Assistant when set-up finds the certificate expired or invalid."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Replace the node's certificate and key (and, for a local aggregator, its CA)."""
        entry = self._get_reauth_entry()
        link = LinkMode(entry.data[CONF_LINK])
        if link is LinkMode.STANDALONE:
            return self.async_abort(reason="reauth_not_needed")
        schema = vol.Schema(LOCAL_CREDENTIALS if link is LinkMode.LOCAL else AWS_CREDENTIALS)
        errors: dict[str, str] = {}
        if user_input is not None:
            credentials = {**entry.data, **_normalised(user_input)}
            errors = _credential_errors(link, credentials, schema)
            if not errors:
                return self.async_update_reload_and_abort(entry, data=credentials)
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders={"name": entry.title},
        )

    async def _async_step_link(self) -> ConfigFlowResult:
        """Go on with the link chosen: standalone needs nothing more."""
        link = LinkMode(self._identity[CONF_LINK])
        if link is LinkMode.LOCAL:
            return await self.async_step_local()
        if link is LinkMode.AWS:
            return await self.async_step_aws()
        return self._async_finish({})

    async def _async_step_link_settings(
        self, *, step_id: str, schema: vol.Schema, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        link = LinkMode(step_id)
        errors: dict[str, str] = {}
        if user_input is not None:
            settings = _normalised(user_input)
            errors = _address_errors(link, settings) | _credential_errors(
                link, self._identity | settings, schema
            )
            if not errors:
                return self._async_finish(settings)
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or self._current_settings(link)
            ),
            errors=errors,
            description_placeholders={"node_id": self._identity[CONF_NODE_ID]},
        )

    def _current_settings(self, link: LinkMode) -> Mapping[str, Any]:
        """When reconfiguring the same link mode, start from the settings in use."""
        if self.source != SOURCE_RECONFIGURE:
            return {}
        data = self._get_reconfigure_entry().data
        return data if data[CONF_LINK] == link else {}

    def _async_finish(self, settings: Mapping[str, Any]) -> ConfigFlowResult:
        data = self._identity | dict(settings)
        if self.source == SOURCE_RECONFIGURE:
            # Replace the data so settings of a previous link mode do not linger.
            return self.async_update_reload_and_abort(self._get_reconfigure_entry(), data=data)
        return self.async_create_entry(
            title=self._identity[CONF_NAME], data=data, options={CONF_TAGS: self._tags}
        )


class FractalNodeOptionsFlow(OptionsFlow):
    """Change a node's tags and the entities its standalone planner reads (a collapsed
    "planning" section: rates, PV forecast, load, battery capacity)."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        tags = TagParse()
        planning_problems: list[str] = []
        window_problem = ""
        if user_input is not None:
            tags = parse_tags(user_input.get(CONF_TAGS, ""))
            if not tags.ok:
                errors[CONF_TAGS] = "invalid_tags"
            planning = _picked(user_input.get(CONF_PLANNING, {}))
            planning_problems = await self._planning_problems(planning)
            if planning_problems:
                errors["base"] = "unusable_planning_input"
            default_plan = _picked(user_input.get(CONF_DEFAULT_PLAN, {}))
            window_problem = self._cheap_window_problem(default_plan)
            if window_problem:
                errors["base"] = "invalid_cheap_window"
            if not errors:
                options: dict[str, Any] = {CONF_TAGS: tags.tags}
                if planning:
                    options[CONF_PLANNING] = planning
                if default_plan:
                    options[CONF_DEFAULT_PLAN] = default_plan
                return self.async_create_entry(data=options)
        current = {
            CONF_TAGS: format_tags(self.config_entry.options.get(CONF_TAGS, {})),
            CONF_PLANNING: self.config_entry.options.get(CONF_PLANNING, {}),
            CONF_DEFAULT_PLAN: self.config_entry.options.get(CONF_DEFAULT_PLAN, {}),
        }
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(OPTIONS_SCHEMA, user_input or current),
            errors=errors,
            description_placeholders=_tag_placeholders(tags)
            | {"planning_problems": "; ".join(planning_problems)}
            | {"cheap_window_problem": window_problem},
        )

    def _cheap_window_problem(self, settings: Mapping[str, Any]) -> str:
        """Why the default plan's cheap window cannot be used ("" if it can, or is unset)."""
        try:
            cheap_window(settings, self.hass.config.time_zone)
        except ValueError as error:
            return str(error)
        return ""

    async def _planning_problems(self, planning: Mapping[str, Any]) -> list[str]:
        """Why the picked entities cannot be planned with (checked before they are saved)."""
        if not planning:
            return []
        if not planning.get(CONF_IMPORT_RATE):
            return ["an import rate is needed to plan"]
        problems = _battery_problems(self.config_entry, planning)
        return problems + await async_input_problems(self.hass, planning)


def _picked(planning: Mapping[str, Any]) -> dict[str, Any]:
    """The planning fields filled in (an emptied field is dropped)."""
    return {key: value for key, value in planning.items() if value not in (None, "", [])}


def _battery_problems(entry: ConfigEntry, planning: Mapping[str, Any]) -> list[str]:
    """The planner plans the node's battery: one must be added, its capacity known."""
    batteries = [
        subentry
        for subentry in entry.subentries.values()
        if subentry.data.get(CONF_ROLE) == Role.BATTERY
    ]
    if not batteries:
        return ["add the battery (Add device) before planning"]
    if CONF_BATTERY_CAPACITY not in planning:
        return ["the battery's capacity is needed"]
    return []


def _normalised(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Pasted text often carries stray spaces and blank lines: strip them; PEM text ends with
    exactly one line break, as PEM files do."""
    return {
        key: (value.strip() + "\n" if key in PEM_FIELDS else value.strip())
        if isinstance(value, str)
        else value
        for key, value in user_input.items()
    }


def _tag_placeholders(tags: TagParse) -> dict[str, str]:
    return {"tags_problem": "; ".join(tags.problems)}


def _address_errors(link: LinkMode, settings: Mapping[str, Any]) -> dict[str, str]:
    if link is LinkMode.LOCAL and not valid_host(settings[CONF_HOST]):
        return {CONF_HOST: "invalid_host"}
    if link is LinkMode.AWS and not valid_endpoint(settings[CONF_ENDPOINT]):
        return {CONF_ENDPOINT: "invalid_endpoint"}
    return {}


def _credential_errors(
    link: LinkMode, data: Mapping[str, Any], schema: vol.Schema
) -> dict[str, str]:
    """Credential problems keyed by form field; a field the form does not show goes to base."""
    check = check_link_credentials(
        link,
        node_id=data[CONF_NODE_ID],
        certificate_pem=data[CONF_CERTIFICATE_PEM],
        private_key_pem=data[CONF_PRIVATE_KEY_PEM],
        ca_pem=data[CONF_CA_PEM],
        now=dt_util.utcnow(),
    )
    shown = {str(key) for key in schema.schema}
    return {
        (field if field in shown else "base"): problem.value
        for field, problem in check.problems.items()
    }

"""The "Add device" flow: a config subentry per Modbus device of the node.

user (transport) -> tcp | serial -> model (connection test) -> confirm (identity, role)
-> limits (battery, EV charger, hydro) -> subentry. Nothing is stored before the device has
answered with plausible values for the chosen model.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntryState,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
)
from serial.tools import list_ports  # type: ignore[import-untyped]

from .const import (
    CONF_BAUDRATE,
    CONF_CUSTOM_MAP,
    CONF_LIMITS,
    CONF_MODEL,
    CONF_PARITY,
    CONF_ROLE,
    CONF_SERIAL_PORT,
    CONF_STOPBITS,
    CONF_TRANSPORT,
    CONF_UNIT,
    DEFAULT_MODBUS_PORT,
    MODBUS_TIMEOUT,
    MODEL_AUTO,
    MODEL_CUSTOM,
    Role,
    Transport,
)
from .fractal.devices import Gateway, RegisterMapError, shipped_map_names
from .fractal.link_settings import valid_host
from .modbus import ProbeFailed, custom_map, device_unique_id, endpoint_of, identify

BAUD_RATES = ["1200", "2400", "4800", "9600", "19200", "38400", "57600", "115200"]


def _select(
    key: str, options: list[str], mode: SelectSelectorMode = SelectSelectorMode.DROPDOWN
) -> SelectSelector:
    return SelectSelector(SelectSelectorConfig(options=options, translation_key=key, mode=mode))


def _number(low: float, high: float, step: float, unit: str = "") -> vol.All:
    config = NumberSelectorConfig(min=low, max=high, step=step, mode=NumberSelectorMode.BOX)
    if unit:
        config["unit_of_measurement"] = unit
    # The selector gives floats (3000.0); a whole-step limit is stored as the int the
    # envelope's model requires, or the node would refuse its own configuration at set-up.
    whole = float(step).is_integer()
    return vol.All(NumberSelector(config), vol.Coerce(int) if whole else vol.Coerce(float))


UNIT_ID = vol.All(
    NumberSelector(NumberSelectorConfig(min=1, max=247, step=1, mode=NumberSelectorMode.BOX)),
    vol.Coerce(int),
)
TRANSPORT_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_TRANSPORT, default=Transport.TCP.value): _select(
            CONF_TRANSPORT, [t.value for t in Transport], mode=SelectSelectorMode.LIST
        )
    }
)
TCP_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_HOST): TextSelector(),
        vol.Required(CONF_PORT, default=DEFAULT_MODBUS_PORT): vol.All(
            _number(1, 65535, 1), vol.Coerce(int)
        ),
        vol.Required(CONF_UNIT, default=1): UNIT_ID,
    }
)
CONFIRM_SCHEMA = vol.Schema(
    {vol.Required(CONF_ROLE): _select(CONF_ROLE, [role.value for role in Role])}
)
# The installer's safety envelope per role; no plan can ever go beyond it.
LIMIT_FIELDS: dict[Role, dict[str, vol.All]] = {
    Role.BATTERY: {
        "max_charge_w": _number(0, 100000, 1, "W"),
        "max_discharge_w": _number(0, 100000, 1, "W"),
        "soc_min": _number(0, 100, 1, "%"),
        "soc_max": _number(0, 100, 1, "%"),
    },
    Role.EV_CHARGER: {
        "ev_current_min": _number(6, 80, 1, "A"),
        "ev_current_max": _number(6, 80, 1, "A"),
    },
    Role.HYDRO: {
        "river_level_min": _number(0, 100, 0.01, "m"),
        "river_level_max": _number(0, 100, 0.01, "m"),
        "river_level_max_rate": _number(0, 10, 0.001, "m/h"),
    },
    Role.IMMERSION: {"heater_power_w": _number(0, 10000, 1, "W")},
}
# Pairs that must be ordered (min <= max), reported on the max field.
ORDERED_LIMITS = (
    ("soc_min", "soc_max"),
    ("ev_current_min", "ev_current_max"),
    ("river_level_min", "river_level_max"),
)


class ModbusDeviceSubentryFlow(ConfigSubentryFlow):
    """Add a Modbus device (meter, inverter, battery, EV charger, hydro PLC) to the node."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._title = ""
        self._alternatives: list[str] = []  # other maps auto-detection found plausible

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        if user_input is not None:
            self._data[CONF_TRANSPORT] = user_input[CONF_TRANSPORT]
            if user_input[CONF_TRANSPORT] == Transport.SERIAL:
                return await self.async_step_serial()
            return await self.async_step_tcp()
        return self.async_show_form(step_id="user", data_schema=TRANSPORT_SCHEMA)

    async def async_step_tcp(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Modbus TCP, or RTU frames through a serial-to-TCP gateway."""
        errors: dict[str, str] = {}
        if user_input is not None:
            settings = {**user_input, CONF_HOST: user_input[CONF_HOST].strip()}
            if valid_host(settings[CONF_HOST]):
                return await self._async_go_to_model(settings)
            errors[CONF_HOST] = "invalid_host"
        return self.async_show_form(
            step_id="tcp",
            data_schema=self.add_suggested_values_to_schema(TCP_SCHEMA, user_input),
            errors=errors,
            description_placeholders={"transport": self._data[CONF_TRANSPORT]},
        )

    async def async_step_serial(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """An RS485 adapter: a port found on this machine, or a path typed in."""
        errors: dict[str, str] = {}
        if user_input is not None:
            settings = {**user_input, CONF_SERIAL_PORT: user_input[CONF_SERIAL_PORT].strip()}
            if settings[CONF_SERIAL_PORT]:
                return await self._async_go_to_model(settings)
            errors[CONF_SERIAL_PORT] = "invalid_serial_port"
        schema = await self._serial_schema()
        return self.async_show_form(
            step_id="serial",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def async_step_model(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Choose the model, then test the connection: identity and one poll of each group."""
        errors: dict[str, str] = {}
        placeholders = {"endpoint": str(endpoint_of(self._data)), "detail": ""}
        if user_input is not None:
            try:
                await self._async_identify(user_input)
            except ProbeFailed as failed:
                field = CONF_CUSTOM_MAP if failed.error == "invalid_custom_map" else "base"
                errors[field] = failed.error
                placeholders["detail"] = failed.detail
            else:
                return await self.async_step_confirm()
        return self.async_show_form(
            step_id="model",
            data_schema=self.add_suggested_values_to_schema(_model_schema(), user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Show what answered and ask what the device is to the node."""
        if user_input is not None:
            self._data[CONF_ROLE] = user_input[CONF_ROLE]
            if Role(user_input[CONF_ROLE]) in LIMIT_FIELDS:
                return await self.async_step_limits()
            return self._async_create()
        return self.async_show_form(
            step_id="confirm",
            data_schema=CONFIRM_SCHEMA,
            description_placeholders={
                "device": self._title,
                "alternatives": ", ".join(self._alternatives) or "-",
            },
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change what a device is to the node, and its envelope; address and model stay."""
        subentry = self._get_reconfigure_subentry()
        if user_input is not None:
            self._data = dict(subentry.data) | {CONF_ROLE: user_input[CONF_ROLE]}
            self._data.pop(CONF_LIMITS, None)  # asked again for the role chosen
            self._title = subentry.title
            if Role(user_input[CONF_ROLE]) in LIMIT_FIELDS:
                return await self.async_step_limits()
            return self._async_create()
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(CONFIRM_SCHEMA, subentry.data),
            description_placeholders={"device": subentry.title},
        )

    async def async_step_limits(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The safety envelope of a battery, an EV charger or a hydro plant."""
        fields = LIMIT_FIELDS[Role(self._data[CONF_ROLE])]
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _limit_errors(user_input)
            if not errors:
                self._data[CONF_LIMITS] = dict(user_input)
                return self._async_create()
        schema = vol.Schema({vol.Required(key): selector for key, selector in fields.items()})
        return self.async_show_form(
            step_id="limits",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or self._current),
            errors=errors,
            description_placeholders={"device": self._title},
        )

    async def _async_go_to_model(self, settings: dict[str, Any]) -> SubentryFlowResult:
        self._data.update(settings)
        unique_id = device_unique_id(self._data)
        if any(sub.unique_id == unique_id for sub in self._get_entry().subentries.values()):
            return self.async_abort(reason="already_configured")
        return await self.async_step_model()

    async def _async_identify(self, user_input: dict[str, Any]) -> None:
        model = user_input[CONF_MODEL]
        regmap = None
        self._data.pop(CONF_CUSTOM_MAP, None)  # a map pasted before choosing another model
        if model == MODEL_CUSTOM:
            text = user_input.get(CONF_CUSTOM_MAP, "")
            try:
                regmap = custom_map(text)
            except RegisterMapError as err:
                raise ProbeFailed("invalid_custom_map", str(err)) from err
            self._data[CONF_CUSTOM_MAP] = text
        entry = self._get_entry()
        endpoint = endpoint_of(self._data)
        if entry.state is not ConfigEntryState.LOADED:
            gateway = Gateway(endpoint, timeout=MODBUS_TIMEOUT)
            try:
                found = await identify(gateway, int(self._data[CONF_UNIT]), model, regmap)
            finally:
                await gateway.close()
        else:
            # The node's own connection: a serial port or a single-client gateway is opened once.
            gateway = entry.runtime_data.pool.get(endpoint)
            found = await identify(gateway, int(self._data[CONF_UNIT]), model, regmap)
        self._data[CONF_MODEL] = found.model
        self._alternatives = found.alternatives
        self._title = found.title

    async def _serial_schema(self) -> vol.Schema:
        ports = await self.hass.async_add_executor_job(list_ports.comports)
        port_selector = SelectSelector(
            SelectSelectorConfig(
                options=sorted(port.device for port in ports),
                custom_value=True,  # adapters not listed (or a by-id path) can be typed in
                mode=SelectSelectorMode.DROPDOWN,
            )
        )
        return vol.Schema(
            {
                vol.Required(CONF_SERIAL_PORT): port_selector,
                vol.Required(CONF_BAUDRATE, default="9600"): _select(CONF_BAUDRATE, BAUD_RATES),
                vol.Required(CONF_PARITY, default="N"): _select(CONF_PARITY, ["N", "E", "O"]),
                vol.Required(CONF_STOPBITS, default="1"): _select(CONF_STOPBITS, ["1", "2"]),
                vol.Required(CONF_UNIT, default=1): UNIT_ID,
            }
        )

    @property
    def _current(self) -> dict[str, Any]:
        """When reconfiguring, the limits in force are the starting point."""
        if self.source != SOURCE_RECONFIGURE:
            return {}
        return dict(self._get_reconfigure_subentry().data.get(CONF_LIMITS, {}))

    def _async_create(self) -> SubentryFlowResult:
        if self.source == SOURCE_RECONFIGURE:
            return self.async_update_and_abort(
                self._get_entry(), self._get_reconfigure_subentry(), data=self._data
            )
        return self.async_create_entry(
            title=self._title, data=self._data, unique_id=device_unique_id(self._data)
        )


def _model_schema() -> vol.Schema:
    models = [MODEL_AUTO, *shipped_map_names(), MODEL_CUSTOM]
    return vol.Schema(
        {
            vol.Required(CONF_MODEL, default=MODEL_AUTO): _select(CONF_MODEL, models),
            vol.Optional(CONF_CUSTOM_MAP): TextSelector(TextSelectorConfig(multiline=True)),
        }
    )


def _limit_errors(limits: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for low, high in ORDERED_LIMITS:
        if low in limits and limits[low] > limits[high]:
            errors[high] = "limits_out_of_order"
    return errors

"""Constants of the Fractal Node integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import StrEnum
from typing import Final

DOMAIN: Final = "fractal_node"
LOGGER = logging.getLogger(__package__)

# Config entry data (name and port use Home Assistant's CONF_NAME / CONF_HOST / CONF_PORT).
CONF_NODE_ID: Final = "node_id"
CONF_LINK: Final = "link"
CONF_ENDPOINT: Final = "endpoint"
CONF_CA_PEM: Final = "ca_pem"
CONF_CERTIFICATE_PEM: Final = "certificate_pem"
CONF_PRIVATE_KEY_PEM: Final = "private_key_pem"
# Config entry options.
CONF_TAGS: Final = "tags"
# Standalone planning (options section "planning"): the entities the planner reads.
CONF_PLANNING: Final = "planning"
CONF_IMPORT_RATE: Final = "import_rate"
CONF_EXPORT_RATE: Final = "export_rate"
CONF_PV_FORECAST: Final = "pv_forecast"
CONF_LOAD: Final = "load"
CONF_BATTERY_CAPACITY: Final = "battery_capacity_kwh"
# The local default plan (options section "default_plan"): an optional daily cheap window.
CONF_DEFAULT_PLAN: Final = "default_plan"
CONF_CHEAP_WINDOW: Final = "cheap_window"
CONF_CHEAP_CHARGE_W: Final = "cheap_charge_w"

DEFAULT_PORT: Final = 8883

# A repair issue warns this long before the node's certificate expires; the check repeats
# twice a day so a long-running Home Assistant notices without a restart.
CERTIFICATE_WARNING_PERIOD: Final = timedelta(days=30)
CERTIFICATE_CHECK_INTERVAL: Final = timedelta(hours=12)
ISSUE_CERTIFICATE_EXPIRING: Final = "certificate_expiring"

SERVICE_GET_DESCRIPTOR: Final = "get_descriptor"
SERVICE_OVERRIDE: Final = "override"
SERVICE_REPLAN: Final = "replan"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_MODE: Final = "mode"
ATTR_VALUE: Final = "value"
ATTR_DURATION: Final = "duration"

# Modbus devices: config subentries of type "modbus_device" ("Add device").
SUBENTRY_MODBUS_DEVICE: Final = "modbus_device"
CONF_TRANSPORT: Final = "transport"
CONF_SERIAL_PORT: Final = "serial_port"
CONF_BAUDRATE: Final = "baudrate"
CONF_PARITY: Final = "parity"
CONF_STOPBITS: Final = "stopbits"
CONF_UNIT: Final = "unit"
CONF_MODEL: Final = "model"
CONF_CUSTOM_MAP: Final = "custom_map"
CONF_ROLE: Final = "role"
CONF_LIMITS: Final = "limits"
MODEL_AUTO: Final = "auto"
MODEL_CUSTOM: Final = "custom"
MODEL_SUNSPEC: Final = "sunspec"
DEFAULT_MODBUS_PORT: Final = 502
# The connection test waits this long for an answer (the runtime uses the library's 3 s too).
MODBUS_TIMEOUT: Final = 3.0


class Transport(StrEnum):
    TCP = "tcp"
    RTU_OVER_TCP = "rtu_over_tcp"
    SERIAL = "serial"


class Role(StrEnum):
    """What a device is to the node: decides the power flows it feeds and its envelope."""

    GRID_METER = "grid_meter"
    PV_METER = "pv_meter"
    PV_INVERTER = "pv_inverter"
    BATTERY = "battery"
    EV_CHARGER = "ev_charger"
    HYDRO = "hydro"
    SUB_METER = "sub_meter"
    IMMERSION = "immersion"

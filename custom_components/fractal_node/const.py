"""Constants of the Fractal Node integration."""

from __future__ import annotations

import logging
from datetime import timedelta
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

DEFAULT_PORT: Final = 8883

# A repair issue warns this long before the node's certificate expires; the check repeats
# twice a day so a long-running Home Assistant notices without a restart.
CERTIFICATE_WARNING_PERIOD: Final = timedelta(days=30)
CERTIFICATE_CHECK_INTERVAL: Final = timedelta(hours=12)
ISSUE_CERTIFICATE_EXPIRING: Final = "certificate_expiring"

SERVICE_GET_DESCRIPTOR: Final = "get_descriptor"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"

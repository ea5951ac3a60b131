"""The local default plan's cheap window, from the options' "Default plan" section.

Without one the default plan only balances (the safe time-of-use default); with one, batteries
charge in it every day at up to the power given (and never beyond their envelope). The times
are the tariff's, in Home Assistant's time zone, so an overnight tariff keeps its hours across
clock changes (docs/executor.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from homeassistant.util import dt as dt_util

from .const import CONF_CHEAP_CHARGE_W, CONF_CHEAP_WINDOW, CONF_DEFAULT_PLAN
from .fractal.executor import CheapWindow

_LOGGER = logging.getLogger(__package__)


def cheap_window(settings: Mapping[str, Any], time_zone: str) -> CheapWindow | None:
    """The window the householder set (None: none); raises ValueError saying what is wrong."""
    text, power = settings.get(CONF_CHEAP_WINDOW), settings.get(CONF_CHEAP_CHARGE_W)
    if not text and power is None:
        return None
    if not text:
        raise ValueError("the cheap window needs its times, e.g. 00:30-04:30")
    if power is None:
        raise ValueError("the cheap window needs a charge power")
    zone = dt_util.get_time_zone(time_zone) or dt_util.UTC
    return CheapWindow.parse(str(text), int(power), zone)


def configured_cheap_window(options: Mapping[str, Any], time_zone: str) -> CheapWindow | None:
    """The entry's cheap window; a stored one that no longer parses is logged and left out
    (the default plan then only balances, the safe side)."""
    try:
        return cheap_window(options.get(CONF_DEFAULT_PLAN, {}), time_zone)
    except ValueError as error:
        _LOGGER.warning("The default plan's cheap window is not used: %s", error)
        return None

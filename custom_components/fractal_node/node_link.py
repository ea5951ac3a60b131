"""The node's link to its aggregator inside Home Assistant: the library's `ShadowLink` (awsiotsdk,
mutual TLS) with its durable `TelemetryBuffer`, started with the entry and stopped on unload.

* The buffer is a SQLite file at ``<config>/.storage/fractal_node/<node id>.telemetry.db``:
  per node, not per entry, so a node removed and added again continues its sample numbers and
  delivers what it had not sent.
* The link's status becomes the node's (`NodeRuntime.link_changed`): link status and reason,
  plan status from the acknowledgement last written. It is logged once when the link goes down
  or is refused, and once when it is connected again.
* Every 10 s the node records a sample of its power flows and offers a snapshot; the link's
  snapshot policy decides when the classic shadow is updated. The snapshot lists the
  trajectories of the aggregator's plan the node is currently off (`deviations`, three checks
  in a row beyond the plan's tolerance); a change there is written at once, and a new
  deviation makes the aggregator re-plan. Last telemetry is the time of the
  last sample the broker acknowledged.
* Stopping waits for the CRT client to let go, which may take tens of seconds while a TLS
  handshake with an untrusted broker is pending (s2n delays failures on purpose): unloading
  awaits it without Home Assistant's 10-second limit for unload callbacks.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util

from .const import (
    CONF_CA_PEM,
    CONF_CERTIFICATE_PEM,
    CONF_ENDPOINT,
    CONF_PRIVATE_KEY_PEM,
    DEFAULT_PORT,
    DOMAIN,
)
from .fractal.executor import DeviationWatch, Readings
from .fractal.link.buffer import TelemetryBuffer
from .fractal.link.plan_inbox import ClampCheck, EnvelopeCheck, PlanDecision
from .fractal.link.shadow_link import LinkConfig, LinkState, LinkStatus, ShadowLink
from .fractal.node import NodeRuntime
from .fractal.protocol import LinkMode, PlanStatus, TelemetrySnapshot, parse

_LOGGER = logging.getLogger(__package__)

TELEMETRY_INTERVAL: Final = timedelta(seconds=10)
# On AWS IoT each telemetry message costs a rule, a Lambda run and an S3 object: five minutes of
# samples per message cut the stack's bill about 15-fold (docs/aws.md, costs).
AWS_BATCH_EVERY: Final = timedelta(minutes=5)
_RECENT_SAMPLES: Final = 10_000  # sample times kept to date the last delivered one
_DOWN: Final = frozenset({LinkState.DISCONNECTED, LinkState.ERROR})


def buffer_path(hass: HomeAssistant, node_id: str) -> Path:
    """Where a node's telemetry waits for the aggregator."""
    return Path(hass.config.path(".storage", DOMAIN, f"{node_id}.telemetry.db"))


def link_config(link: LinkMode, node_id: str, data: Mapping[str, Any]) -> LinkConfig | None:
    """The link's settings from the entry's data; None for a standalone node."""
    if link is LinkMode.STANDALONE:
        return None
    endpoint = data[CONF_HOST] if link is LinkMode.LOCAL else data[CONF_ENDPOINT]
    return LinkConfig(
        node_id=node_id,
        endpoint=endpoint,
        port=int(data.get(CONF_PORT, DEFAULT_PORT)),
        ca_pem=data[CONF_CA_PEM],
        certificate_pem=data[CONF_CERTIFICATE_PEM],
        private_key_pem=data[CONF_PRIVATE_KEY_PEM],
        batch_every_s=AWS_BATCH_EVERY.total_seconds() if link is LinkMode.AWS else 0.0,
    )


def _open_buffer(path: Path) -> TelemetryBuffer:
    path.parent.mkdir(parents=True, exist_ok=True)
    return TelemetryBuffer(path)


class NodeLink:
    """A node's running link: its buffer, the telemetry timer and the status it reports."""

    def __init__(
        self,
        hass: HomeAssistant,
        runtime: NodeRuntime,
        config: LinkConfig,
        buffer: TelemetryBuffer,
        *,
        envelope_check: EnvelopeCheck | None,
        soc_pct: Callable[[], float | None],
        clamp_check: ClampCheck | None = None,
    ) -> None:
        self._hass = hass
        self._soc_pct = soc_pct
        self._runtime = runtime
        self._buffer = buffer
        self._recent: deque[tuple[int, datetime]] = deque(maxlen=_RECENT_SAMPLES)
        self._deviations = DeviationWatch()
        self._logged_down = False
        self._timer: CALLBACK_TYPE | None = None
        self._stopped = False
        self.link = ShadowLink(
            config,
            buffer,
            on_plan=self._plan_decided,
            clock=dt_util.utcnow,
            on_status=self._status_changed,
            envelope_check=envelope_check,
            clamp_check=clamp_check,
        )

    async def async_start(self) -> None:
        """Report the descriptor, start connecting, record telemetry every 10 s."""
        self.link.report_descriptor(self._runtime.descriptor())
        await self.link.start()
        self._timer = async_track_time_interval(
            self._hass, self._record, TELEMETRY_INTERVAL, name="fractal_node telemetry"
        )

    async def async_stop(self, _event: Event | None = None) -> None:
        """Stop the timer and the link (waiting for the CRT client), close the buffer. Once."""
        if self._stopped:
            return
        self._stopped = True
        if self._timer is not None:
            self._timer()
            self._timer = None
        await self.link.stop()
        await self._hass.async_add_executor_job(self._buffer.close)

    @callback
    def _record(self, now: datetime) -> None:
        sample = self._runtime.sample(now, self._soc_pct())
        try:
            seq = self.link.record(sample)
        except ValueError as error:  # a flow out of the protocol's range: say so, skip it
            _LOGGER.warning("Telemetry sample not recorded: %s", error)
            return
        self._recent.append((seq, now))
        plan = self.link.plan_in_force
        document: dict[str, object] = {
            "schema": TelemetrySnapshot.SCHEMA,
            "node": self._runtime.config.node_id,
            "seq": seq,
            **sample,
        }
        if plan is not None:
            document["plan"] = {"id": plan.id, "slot": plan.slot_at(now)}
        document["deviations"] = self._check_deviations(now, sample)
        parsed = parse(TelemetrySnapshot, document)
        if parsed.document is not None:
            self.link.report_snapshot(parsed.document)

    def _check_deviations(self, now: datetime, sample: Mapping[str, object]) -> list[str]:
        """The aggregator's plan's trajectories this sample is outside the tolerance of. A new
        one is logged; the snapshot carrying it is written at once and the aggregator re-plans
        on it."""
        readings = Readings(grid_w=sample.get("grid_w"), soc_pct=sample.get("soc_pct"))
        report = self._deviations.check(self.link.plan_in_force, now, readings)
        for deviation in report.details:
            if deviation.quantity in report.new:
                _LOGGER.info(
                    "Node %s is off its plan %s: %s %g, expected %g (tolerance %g)",
                    self._runtime.config.node_id,
                    deviation.plan_id,
                    deviation.quantity.value,
                    deviation.actual,
                    deviation.expected,
                    deviation.tolerance,
                )
        return [quantity.value for quantity in report.current]

    @callback
    def _plan_decided(self, decision: PlanDecision) -> None:
        """The plan status follows the acknowledgement (see `_status_changed`); a rejected
        plan is worth a log line, since the plan in force keeps running."""
        if decision.ack.status is PlanStatus.REJECTED:
            _LOGGER.warning("Plan %s rejected: %s", decision.ack.id, decision.ack.reason)

    @callback
    def _status_changed(self, status: LinkStatus) -> None:
        self._log_availability(status)
        self._runtime.link_changed(status)
        delivered_at = None
        while self._recent and self._recent[0][0] <= status.delivered_seq:
            delivered_at = self._recent.popleft()[1]
        if delivered_at is not None:
            self._runtime.telemetry_recorded(delivered_at)

    def _log_availability(self, status: LinkStatus) -> None:
        """Once when the link goes down or is refused, once when it is back."""
        node = self._runtime.config.node_id
        if self._stopped:  # the disconnection we asked for
            return
        if status.state in _DOWN and not self._logged_down:
            self._logged_down = True
            _LOGGER.warning("Node %s cannot reach its aggregator: %s", node, status.reason)
        elif status.state is LinkState.CONNECTED and self._logged_down:
            self._logged_down = False
            _LOGGER.info("Node %s is connected to its aggregator again", node)


async def async_start_link(
    hass: HomeAssistant,
    runtime: NodeRuntime,
    data: Mapping[str, Any],
    envelope_check: EnvelopeCheck | None,
    soc_pct: Callable[[], float | None],
    *,
    clamp_check: ClampCheck | None = None,
) -> NodeLink | None:
    """Open the buffer and start the link of a linked node (None for a standalone one).

    `soc_pct` gives the node's battery state of charge for each sample (None: unknown);
    `clamp_check` the parts of an accepted plan the envelope clamps (the ack's `clamped`).
    Raises ValueError with the reason when the TLS credentials cannot be used."""
    config = link_config(runtime.config.link, runtime.config.node_id, data)
    if config is None:
        return None
    buffer = await hass.async_add_executor_job(
        _open_buffer, buffer_path(hass, runtime.config.node_id)
    )
    node_link = NodeLink(
        hass,
        runtime,
        config,
        buffer,
        envelope_check=envelope_check,
        soc_pct=soc_pct,
        clamp_check=clamp_check,
    )
    try:
        await node_link.async_start()
    except ValueError:
        await hass.async_add_executor_job(buffer.close)
        raise
    return node_link

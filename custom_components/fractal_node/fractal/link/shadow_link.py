"""The node's link to its aggregator: awsiotsdk MQTT5 with mutual TLS and `IotShadowClientV2`.

Identical for the local aggregator and AWS IoT Core: only endpoint, port and CA differ.

* Plans: the `plan` named shadow. Its delta stream is only a doorbell (a delta leaves out the
  fields desired and reported share, such as the plan id), so every delta, every reconnect and
  every re-established subscription triggers a `get`; the desired plan goes through the
  `PlanInbox` and the acknowledgement is written to `reported.plan`.
* Snapshot: the classic shadow's `reported.telemetry` (+ `reported.link`), when the
  `SnapshotPolicy` says it is worth it.
* History: batches from the durable buffer, QoS 1 on `$aws/rules/fractal_telemetry/<node>`
  (AWS Basic Ingest), one at a time in order, marked sent only on PUBACK. While disconnected
  nothing is sent; publishes fail on disconnect (FAIL_ALL_ON_DISCONNECT) and the same batch is
  sent again after the reconnect.
* Reconnects are the CRT client's own (exponential back-off with full jitter, capped); failed
  shadow operations while connected are retried with `Backoff`.

awscrt calls back on its own threads: everything it reports is handed to the event loop with
`loop.call_soon_threadsafe` (or `asyncio.wrap_future`) before any state is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import awsiot
from awscrt import mqtt5, mqtt_request_response
from awsiot import iotshadow, mqtt5_client_builder

# Relative: the library is `fractal` here and `custom_components.fractal_node.fractal` in HA.
from ..protocol import (
    Document,
    NodeDescriptor,
    Plan,
    PlanAck,
    Reading,
    TelemetryBatch,
    TelemetrySnapshot,
    dump,
    parse,
    replacing_payload,
    to_jsonable,
)
from .buffer import BufferStatus, PendingBatch, TelemetryBuffer
from .plan_inbox import ClampCheck, EnvelopeCheck, PlanDecision, PlanInbox
from .reporting import Backoff, SnapshotPolicy

_LOGGER = logging.getLogger(__name__)

PLAN_SHADOW = "plan"
TELEMETRY_TOPIC = "$aws/rules/fractal_telemetry/{node}"
"""AWS IoT Basic Ingest: straight to the `fractal_telemetry` rule, no broker fan-out cost."""
_ACCEPTED_PUBACKS = frozenset(
    {mqtt5.PubackReasonCode.SUCCESS, mqtt5.PubackReasonCode.NO_MATCHING_SUBSCRIBERS}
)


class LinkState(StrEnum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    ERROR = "error"
    """The broker refused us (TLS, certificate, authorisation): retrying alone will not help."""


@dataclass(frozen=True)
class LinkConfig:
    node_id: str
    endpoint: str
    port: int
    ca_pem: str
    certificate_pem: str
    private_key_pem: str = field(repr=False)  # never in logs or diagnostics
    keep_alive_s: int = 60
    operation_timeout_s: int = 30
    min_reconnect_s: float = 1.0
    max_reconnect_s: float = 300.0
    plan_check_interval_s: float = 30.0
    """How often the plan in force is checked for its start, end and expiry."""
    batch_every_s: float = 0.0
    """At least this long between telemetry batches while less than a full batch waits; 0
    sends each sample as it comes. On AWS every message costs a rule, a Lambda run and an S3
    object, so a node linked to AWS batches (docs/aws.md, costs); a backlog still goes at once."""
    snapshot_policy: Callable[[], SnapshotPolicy] = SnapshotPolicy


@dataclass(frozen=True)
class LinkStatus:
    """What the householder sees: connected or why not, the plan, telemetry delivery."""

    state: LinkState
    reason: str | None = None
    plan_ack: PlanAck | None = None
    """The acknowledgement last written to `reported.plan` (the plan answer in force)."""
    delivered_seq: int = 0
    """The last telemetry sample seq the broker acknowledged (0: none this run)."""
    buffer: BufferStatus | None = None


PlanListener = Callable[[PlanDecision], None]
StatusListener = Callable[[LinkStatus], None]
Clock = Callable[[], datetime]


class LinkDown(Exception):
    """An operation failed because the connection went away: wait for it, then retry."""


@dataclass
class _Wakeups:
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    sync_plan: asyncio.Event = field(default_factory=asyncio.Event)
    telemetry: asyncio.Event = field(default_factory=asyncio.Event)
    report: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)


class ShadowLink:
    """One node's link. Call `start` and `stop` from the event loop; `record` and
    `report_snapshot` hand data over at any time, connected or not."""

    def __init__(
        self,
        config: LinkConfig,
        buffer: TelemetryBuffer,
        on_plan: PlanListener,
        clock: Clock,
        *,
        on_status: StatusListener | None = None,
        envelope_check: EnvelopeCheck | None = None,
        clamp_check: ClampCheck | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._buffer = buffer
        self._on_plan = on_plan
        self._on_status = on_status
        self._clock = clock
        self._rng = rng or random.Random()
        self._inbox = PlanInbox(config.node_id, envelope_check, clamp_check)
        self._policy = config.snapshot_policy()
        self._topic = TELEMETRY_TOPIC.format(node=config.node_id)
        self._status = LinkStatus(LinkState.STOPPED)
        self._ack_to_report: PlanAck | None = None
        self._reported_ack: dict[str, Any] | None = None
        self._snapshot: TelemetrySnapshot | None = None
        self._descriptor: NodeDescriptor | None = None
        self._reported_descriptor: NodeDescriptor | None = None
        self._classic_reported: dict[str, Any] | None = None
        self._replan_requested: str | None = None
        """The classic shadow's `reported` as we last wrote it; None until read."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: _Wakeups | None = None
        self._client: mqtt5.Client | None = None
        self._shadow: iotshadow.IotShadowClientV2 | None = None
        self._stream: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._failures: dict[str, str] = {}
        """Operations failing while connected, with why: the status's reason."""

    # --- public -----------------------------------------------------------------------------

    @property
    def status(self) -> LinkStatus:
        return self._status

    @property
    def plan_in_force(self) -> Plan | None:
        return self._inbox.in_force

    def record(self, sample: Mapping[str, Any]) -> int:
        """Buffer a JSON-ready reading (a protocol `Reading` without `seq`) for delivery and
        return its seq. Raises ValueError, buffering nothing, if it is not a valid reading."""
        check_reading(sample)
        seq = self._buffer.append(sample)
        if self._wake is not None:
            self._wake.telemetry.set()
        return seq

    def report_descriptor(self, descriptor: NodeDescriptor) -> None:
        """Who the node is (`reported.node`); written once, and again whenever it changes."""
        self._descriptor = descriptor
        if self._wake is not None:
            self._wake.report.set()

    def report_snapshot(self, snapshot: TelemetrySnapshot) -> None:
        """The latest snapshot; written to the classic shadow when the policy says so."""
        self._snapshot = snapshot
        if self._wake is not None:
            self._wake.report.set()

    def request_replan(self, at: datetime) -> None:
        """Ask the aggregator for a new plan: `reported.replan_requested` = `at` (ISO-8601, UTC)
        in the classic shadow, written once connected. A newer request replaces an unwritten
        one."""
        self._replan_requested = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if self._wake is not None:
            self._wake.report.set()

    async def start(self) -> None:
        """Start connecting (returns at once; watch the status for the outcome)."""
        if self._client is not None:
            raise RuntimeError("the link is already started")
        self._loop = asyncio.get_running_loop()
        self._wake = _Wakeups()
        try:
            # In a worker thread: the builder reads package metadata from disk (blocking I/O
            # that Home Assistant refuses in its event loop).
            client = await asyncio.to_thread(self._build_client)
        except RuntimeError as error:  # awscrt says only "invalid argument"
            reason = f"the TLS credentials cannot be used (certificate, key or CA): {error}"
            self._set_status(state=LinkState.ERROR, reason=reason)
            raise ValueError(reason) from error
        self._client = client
        self._shadow = iotshadow.IotShadowClientV2(
            client,
            mqtt_request_response.ClientOptions(
                max_request_response_subscriptions=4,
                max_streaming_subscriptions=2,
                operation_timeout_in_seconds=self._config.operation_timeout_s,
            ),
        )
        self._stream = self._open_plan_stream(self._shadow)
        self._set_status(state=LinkState.CONNECTING, reason=None)
        self._tasks = [
            self._spawn(self._plan_loop(), "plan"),
            self._spawn(self._telemetry_loop(), "telemetry"),
            self._spawn(self._report_loop(), "report"),
        ]
        client.start()

    async def stop(self) -> None:
        """Stop the tasks and the client and wait until the CRT has let go of it."""
        client, wake = self._client, self._wake
        if client is None or wake is None:
            return
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        client.stop()
        await wake.stopped.wait()
        self._stream = self._shadow = self._client = None
        self._set_status(state=LinkState.STOPPED, reason=None)

    # --- the CRT side: every callback comes from a CRT thread ----------------------------

    def _build_client(self) -> mqtt5.Client:
        config = self._config
        return mqtt5_client_builder.mtls_from_bytes(
            cert_bytes=config.certificate_pem.encode(),
            pri_key_bytes=config.private_key_pem.encode(),
            endpoint=config.endpoint,
            port=config.port,
            ca_bytes=config.ca_pem.encode(),
            client_id=config.node_id,
            keep_alive_interval_sec=config.keep_alive_s,
            session_behavior=mqtt5.ClientSessionBehaviorType.CLEAN,
            offline_queue_behavior=mqtt5.ClientOperationQueueBehaviorType.FAIL_ALL_ON_DISCONNECT,
            retry_jitter_mode=mqtt5.ExponentialBackoffJitterMode.FULL,
            min_reconnect_delay_ms=int(config.min_reconnect_s * 1000),
            max_reconnect_delay_ms=int(config.max_reconnect_s * 1000),
            on_lifecycle_attempting_connect=self._from_crt(self._attempting),
            on_lifecycle_connection_success=self._from_crt(self._connected),
            on_lifecycle_connection_failure=self._from_crt(self._connection_failed),
            on_lifecycle_disconnection=self._from_crt(self._disconnected),
            on_lifecycle_stopped=self._from_crt(self._stopped),
        )

    def _open_plan_stream(self, shadow: iotshadow.IotShadowClientV2) -> Any:
        request = iotshadow.NamedShadowDeltaUpdatedSubscriptionRequest(
            thing_name=self._config.node_id, shadow_name=PLAN_SHADOW
        )
        options = awsiot.ServiceStreamOptions(
            incoming_event_listener=self._from_crt(self._plan_delta),
            subscription_status_listener=self._from_crt(self._plan_subscription),
        )
        stream = shadow.create_named_shadow_delta_updated_stream(request, options)
        stream.open()
        return stream

    def _from_crt[T](self, handler: Callable[[T], None]) -> Callable[[T], None]:
        """Wrap a handler so a CRT thread only schedules it on the event loop."""
        loop = self._loop
        assert loop is not None

        def marshal(data: T) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing left to tell
                loop.call_soon_threadsafe(handler, data)

        return marshal

    # --- lifecycle, on the event loop -------------------------------------------------------

    def _attempting(self, _data: object) -> None:
        if self._status.state is not LinkState.ERROR:
            self._set_status(state=LinkState.CONNECTING)

    def _connected(self, _data: object) -> None:
        assert self._wake is not None
        self._failures.clear()  # a new connection: earlier failures are history
        self._set_status(state=LinkState.CONNECTED, reason=None)
        self._wake.connected.set()
        self._wake.sync_plan.set()
        self._wake.telemetry.set()
        self._wake.report.set()

    def _connection_failed(self, data: mqtt5.LifecycleConnectFailureData) -> None:
        reason, fatal = _describe_failure(data)
        self._set_status(state=LinkState.ERROR if fatal else LinkState.DISCONNECTED, reason=reason)

    def _disconnected(self, data: mqtt5.LifecycleDisconnectData) -> None:
        assert self._wake is not None
        self._wake.connected.clear()
        reason = str(data.exception) if data.exception else "disconnected"
        self._set_status(state=LinkState.DISCONNECTED, reason=reason)

    def _stopped(self, _data: object) -> None:
        assert self._wake is not None
        self._wake.connected.clear()
        self._wake.stopped.set()

    def _plan_subscription(self, event: mqtt_request_response.SubscriptionStatusEvent) -> None:
        assert self._wake is not None
        established = mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED
        if event.type == established:
            self._wake.sync_plan.set()  # nothing published from now on can be missed
        else:
            _LOGGER.warning("plan shadow subscription event %s: %s", event.type, event.error)

    def _plan_delta(self, _event: iotshadow.ShadowDeltaUpdatedEvent) -> None:
        assert self._wake is not None
        self._wake.sync_plan.set()

    def _set_status(self, **changes: Any) -> None:
        self._status = replace(self._status, buffer=self._buffer.status(), **changes)
        if self._on_status is not None:
            self._on_status(self._status)

    # --- the three loops --------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=f"fractal link {self._config.node_id} {name}")
        task.add_done_callback(self._task_ended)
        return task

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """The loops run until `stop`: one that ends otherwise is a bug, made visible."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        _LOGGER.error("%s failed", task.get_name(), exc_info=error)
        self._set_status(state=LinkState.ERROR, reason=f"internal error: {error!r}")

    async def _plan_loop(self) -> None:
        """Fetch the desired plan when the doorbell rings; check the plan in force on a timer;
        report acknowledgements until the shadow accepted them."""
        wake = self._wake
        assert wake is not None
        backoff = self._retry_backoff()
        while True:
            # Offline, only time matters (a plan may expire); online, the doorbell too.
            trigger = wake.sync_plan if wake.connected.is_set() else wake.connected
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(trigger.wait(), timeout=self._config.plan_check_interval_s)
            self._decide(self._inbox.tick(self._clock()))
            if not wake.connected.is_set():
                continue
            try:
                if wake.sync_plan.is_set():
                    wake.sync_plan.clear()
                    await self._fetch_plan()
                await self._write_ack()
                backoff.reset()
                self._operation_succeeded(PLAN_SHADOW)
            except LinkDown:
                wake.sync_plan.set()  # fetch again after the reconnect
            except awsiot.V2ServiceException as error:
                wake.sync_plan.set()
                self._operation_failed(PLAN_SHADOW, _service_error(error))
                await asyncio.sleep(backoff.next_delay())

    async def _fetch_plan(self) -> None:
        request = iotshadow.GetNamedShadowRequest(
            thing_name=self._config.node_id, shadow_name=PLAN_SHADOW
        )
        try:
            response = await self._call(self._shadow_client().get_named_shadow(request))
        except awsiot.V2ServiceException as error:
            if _is_not_found(error):  # no plan shadow yet: nothing to do
                return
            raise
        state = response.state
        desired = state.desired if state is not None and state.desired else {}
        reported = state.reported if state is not None and state.reported else {}
        self._reported_ack = reported.get("plan")
        self._decide(self._inbox.receive(desired.get("plan"), self._clock()))
        if self._ack_to_report is None and self._inbox.last_ack is not None:
            self._queue_ack_if_not_reported(self._inbox.last_ack)

    def _decide(self, decision: PlanDecision | None) -> None:
        if decision is None:
            return
        self._ack_to_report = decision.ack
        self._on_plan(decision)

    def _queue_ack_if_not_reported(self, ack: PlanAck) -> None:
        reported = self._reported_ack
        if reported is None or reported.get("id") != ack.id or reported.get("status") != ack.status:
            self._ack_to_report = ack

    async def _write_ack(self) -> None:
        ack = self._ack_to_report
        if ack is None:
            return
        payload = _state_of(replacing_payload(ack, self._reported_ack))
        request = iotshadow.UpdateNamedShadowRequest(
            thing_name=self._config.node_id,
            shadow_name=PLAN_SHADOW,
            state=iotshadow.ShadowState(reported=payload["reported"]),
        )
        await self._call(self._shadow_client().update_named_shadow(request))
        self._reported_ack = payload["reported"]["plan"]
        if self._ack_to_report is ack:
            self._ack_to_report = None
        self._set_status(plan_ack=ack)

    async def _telemetry_loop(self) -> None:
        """Publish the oldest batch, wait for its PUBACK, mark it sent; in order, forever."""
        wake = self._wake
        assert wake is not None
        backoff = self._retry_backoff()
        while True:
            await wake.connected.wait()
            batch = self._buffer.next_batch()
            if batch is None:
                wake.telemetry.clear()
                if self._buffer.status().pending:  # storage trouble: the buffer says why
                    await asyncio.sleep(backoff.next_delay())
                else:
                    await wake.telemetry.wait()
                continue
            try:
                await self._publish(batch)
            except LinkDown:
                continue  # the same batch goes again once connected
            except PublishRefused as error:
                self._operation_failed("telemetry", str(error))
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            self._buffer.mark_sent(batch)
            self._set_status(delivered_seq=batch.last_seq)
            self._operation_succeeded("telemetry")
            await self._let_samples_gather()

    async def _let_samples_gather(self) -> None:
        """On a paced link, wait `batch_every_s` after a batch unless a full one is waiting."""
        every = self._config.batch_every_s
        if every > 0 and self._buffer.status().pending < self._buffer.batch_samples:
            await asyncio.sleep(every)

    async def _publish(self, batch: PendingBatch) -> None:
        parsed = parse(
            TelemetryBatch,
            {
                "schema": TelemetryBatch.SCHEMA,
                "node": self._config.node_id,
                "seq": batch.seq,
                "samples": batch.samples,
            },
        )
        if parsed.document is None:  # cannot happen for samples `record` accepted
            problems = "; ".join(str(problem) for problem in parsed.problems)
            raise PublishRefused(f"telemetry batch {batch.seq} is invalid: {problems}")
        document = parsed.document
        packet = mqtt5.PublishPacket(
            topic=self._topic,
            payload=dump(document).encode(),
            qos=mqtt5.QoS.AT_LEAST_ONCE,
            content_type="application/json",
        )
        try:
            result: mqtt5.PublishCompletionData = await self._call(self._mqtt().publish(packet))
        except LinkDown:
            raise
        except Exception as error:
            raise PublishRefused(f"telemetry batch {batch.seq} not sent: {error}") from error
        code = result.puback.reason_code if result.puback else None
        if code not in _ACCEPTED_PUBACKS:
            name = _puback_name(code)
            raise PublishRefused(f"telemetry batch {batch.seq} refused by the broker: {name}")

    async def _report_loop(self) -> None:
        """Keep the classic shadow's `reported` up to date: the descriptor when it changes,
        the snapshot when the policy says it is due."""
        wake = self._wake
        assert wake is not None
        backoff = self._retry_backoff()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.report.wait(), timeout=self._seconds_until_due())
            wake.report.clear()
            await wake.connected.wait()
            try:
                await self._write_descriptor_if_changed()
                await self._write_snapshot_if_due()
                await self._write_replan_request()
                self._operation_succeeded("classic shadow")
            except LinkDown:
                continue
            except awsiot.V2ServiceException as error:
                self._operation_failed("classic shadow", _service_error(error))
                await asyncio.sleep(backoff.next_delay())
                wake.report.set()
                continue
            backoff.reset()

    def _seconds_until_due(self) -> float:
        """Look again after the minimum interval: a held-back change or the heartbeat."""
        return max(1.0, self._policy.min_interval.total_seconds())

    async def _write_descriptor_if_changed(self) -> None:
        descriptor = self._descriptor
        if descriptor is None or descriptor == self._reported_descriptor:
            return
        await self._update_classic(descriptor, {})
        self._reported_descriptor = descriptor

    async def _write_snapshot_if_due(self) -> None:
        snapshot = self._snapshot
        if snapshot is None:
            return
        values, now = to_jsonable(snapshot), self._clock()
        if not self._policy.due(values, now):
            return
        buffer = self._buffer.status()
        link = {
            "buffered": buffer.pending,
            "dropped": buffer.dropped,
            "lost": buffer.lost,
            "storage_error": buffer.error,
        }
        await self._update_classic(snapshot, {"link": link})
        self._policy.reported(values, now)

    async def _write_replan_request(self) -> None:
        requested = self._replan_requested
        if requested is None:
            return
        request = iotshadow.UpdateShadowRequest(
            thing_name=self._config.node_id,
            state=iotshadow.ShadowState(reported={"replan_requested": requested}),
        )
        await self._call(self._shadow_client().update_shadow(request))
        if self._replan_requested == requested:
            self._replan_requested = None

    async def _update_classic(self, document: Document, extra: dict[str, Any]) -> None:
        """Replace `reported.<place>` with `document`: fields it no longer has are nulled,
        which needs what is there now (read once per start)."""
        if self._classic_reported is None:
            self._classic_reported = await self._read_classic_reported()
        _, key = document.SHADOW_PLACE or ("reported", document.KIND)
        previous = self._classic_reported.get(key)
        reported = _state_of(replacing_payload(document, previous))["reported"]
        reported.update(extra)
        request = iotshadow.UpdateShadowRequest(
            thing_name=self._config.node_id, state=iotshadow.ShadowState(reported=reported)
        )
        await self._call(self._shadow_client().update_shadow(request))
        self._classic_reported.update(reported)

    async def _read_classic_reported(self) -> dict[str, Any]:
        request = iotshadow.GetShadowRequest(thing_name=self._config.node_id)
        try:
            response = await self._call(self._shadow_client().get_shadow(request))
        except awsiot.V2ServiceException as error:
            if _is_not_found(error):
                return {}
            raise
        state = response.state
        reported: dict[str, Any] = dict(state.reported or {}) if state is not None else {}
        return reported

    # --- helpers ----------------------------------------------------------------------------

    async def _call(self, future: Future[Any]) -> Any:
        """Await a CRT future on the loop; a failure while disconnected becomes LinkDown."""
        assert self._wake is not None
        result = asyncio.wrap_future(future)
        # Shielded: cancelling the CRT's own future makes it fail when the answer comes later.
        result.add_done_callback(_retrieve_exception)
        try:
            return await asyncio.shield(result)
        except Exception as error:
            if not self._wake.connected.is_set():
                raise LinkDown(str(error)) from error
            raise

    def _mqtt(self) -> mqtt5.Client:
        if self._client is None:
            raise LinkDown("stopped")
        return self._client

    def _shadow_client(self) -> iotshadow.IotShadowClientV2:
        if self._shadow is None:
            raise LinkDown("stopped")
        return self._shadow

    def _operation_succeeded(self, what: str) -> None:
        """`what` works again: its earlier failure no longer explains anything."""
        if self._failures.pop(what, None) is not None:
            self._show_failures()

    def _operation_failed(self, what: str, reason: str) -> None:
        """`what` failed while connected (it is retried with back-off): say why."""
        _LOGGER.warning("%s: %s", what, reason)
        self._failures[what] = reason
        self._show_failures()

    def _show_failures(self) -> None:
        if self._status.state is LinkState.CONNECTED:
            reasons = [f"{what}: {reason}" for what, reason in self._failures.items()]
            self._set_status(reason="; ".join(reasons) or None)

    def _retry_backoff(self) -> Backoff:
        """For operations that fail while connected: short, since the link itself is up."""
        cap = min(30.0, self._config.max_reconnect_s)
        return Backoff(initial=min(1.0, cap), cap=cap, rng=self._rng)


def check_reading(sample: Mapping[str, Any]) -> None:
    """Raise ValueError naming every problem if `sample` (without `seq`) is not a Reading."""
    try:
        Reading.model_validate_json(json.dumps({**sample, "seq": 0}))
    except (TypeError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        raise ValueError(f"invalid telemetry sample: {error}") from error


class PublishRefused(Exception):
    """The broker answered but did not take the message, or the publish failed while up."""


def _describe_failure(data: mqtt5.LifecycleConnectFailureData) -> tuple[str, bool]:
    """Why a connection attempt failed, and whether it is our credentials' fault."""
    connack = data.connack_packet
    if connack is not None and connack.reason_code != mqtt5.ConnectReasonCode.SUCCESS:
        return f"refused by the broker: {connack.reason_code.name}", True
    name = getattr(data.exception, "name", "") or ""
    reason = f"{name}: {data.exception}" if name else str(data.exception)
    return reason, name.startswith("AWS_IO_TLS")


def _service_error(error: awsiot.V2ServiceException) -> str:
    modeled = error.modeled_error
    if modeled is not None:
        return f"{error.message}: {getattr(modeled, 'code', '?')} {getattr(modeled, 'message', '')}"
    return f"{error.message}: {error.inner_error}"


def _is_not_found(error: awsiot.V2ServiceException) -> bool:
    return getattr(error.modeled_error, "code", None) == 404


def _puback_name(code: object) -> str:
    try:
        name: str = mqtt5.PubackReasonCode(code).name
    except ValueError:
        return f"reason code {code}"
    return name


def _retrieve_exception(future: asyncio.Future[Any]) -> None:
    """Mark an outcome nobody awaits any more (the link stopped) as seen."""
    if not future.cancelled():
        future.exception()


def _state_of(payload: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(payload)["state"]
    return state

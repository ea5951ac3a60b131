"""The embedded aggregator's planning scheduler: `dispatch_plans` for the local runtime.

It plans, through the very handler the AWS Lambdas call:

* every enrolled node (every node that has published its descriptor) every `interval_s`
  (30 minutes by default, `serve --plan-every`);
* every node, as soon as the planning inputs change: the JSON files in `DATA/inputs/`
  (`fractal.planning_inputs.v1`, docs/aggregator.md), checked every few seconds. Files are
  combined in name order (`merge_inputs`): a tariff file and a forecast file sit side by side.
  A file that cannot be used is refused with every reason (logged, and in
  `DATA/planning.json`) and its previous content is kept, so a half-written or broken file
  never takes the plans down;
* every node, within `inputs_check_s` of a flexibility event being stored or changed
  (`events`, the fleet store's `POST /api/flex-events`): the nodes of an event's group are
  planned together for it (`dispatch_event_plans`, plans with source dso), and what each
  event's plans deliver is kept in `DATA/planning.json` under `events` (by event id);
* one node, within a second of a rule event that calls for it (`nodes_to_replan`: a new
  deviation, a re-plan request, a new descriptor, an expired plan). Re-plans for deviations
  are limited to one per node per `deviation_cooldown_s`: a node whose forecast is simply
  wrong would otherwise be re-planned on every check. A deferred one is planned when the
  cool-down ends, not dropped.

Planning runs in a worker thread (HiGHS and the boto3 `iot-data` client block), one dispatch
at a time, with one `Planner` kept warm. After each dispatch `DATA/planning.json` says when,
why, what the inputs were and what became of each node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import boto3  # type: ignore[import-untyped]  # no stubs in the environment
from fractal.planner import Planner
from fractal.protocol import FlexibilityEvent

from aggregator_cloud.handlers import HandlerResult
from aggregator_cloud.handlers.event_dispatch import dispatch_event_plans, with_event_groups
from aggregator_cloud.handlers.plan_dispatch import (
    DispatchResult,
    IotDataPlanShadows,
    PlanShadows,
    replan_reasons,
)
from aggregator_cloud.planning.inputs import (
    InputsError,
    PlanningInputs,
    load_inputs,
    merge_inputs,
)
from aggregator_cloud.planning.registry_fleet import NodeRecords, RegistryFleet

LOGGER = logging.getLogger(__name__)

DEVIATION: Final = "deviation"
SETTLE_S: Final = 0.2
"""Events arriving together (a snapshot and an ack) are planned in one dispatch."""

Clock = Callable[[], datetime]
StoredEvents = Callable[[], Sequence[FlexibilityEvent]]


@dataclass(frozen=True)
class ScheduleSettings:
    interval_s: float = 1800.0
    """Plan every node this often, seconds."""
    inputs_check_s: float = 2.0
    """Look at the inputs folder this often, seconds."""
    deviation_cooldown_s: float = 300.0
    """At most one re-plan for deviations per node in this many seconds."""

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.inputs_check_s <= 0 or self.deviation_cooldown_s < 0:
            raise ValueError("intervals must be > 0 and the cool-down >= 0")


@dataclass
class _FileState:
    signature: tuple[int, int]
    """(mtime_ns, size): a change in either means read again."""
    document: PlanningInputs | None
    """The file's last usable content (kept while the file is broken)."""
    problems: tuple[str, ...] = ()


@dataclass
class InputsFolder:
    """The planning inputs in `DATA/inputs/*.json`, re-read when a file changes."""

    folder: Path
    _files: dict[Path, _FileState] = field(default_factory=dict)
    merged: PlanningInputs | None = None
    """The inputs in force (None: no usable file yet)."""

    def refresh(self) -> bool:
        """Read new and changed files; True when the inputs in force changed."""
        present = {path: _signature(path) for path in sorted(self.folder.glob("*.json"))}
        for path in set(self._files) - set(present):
            LOGGER.info("planning inputs: %s removed", path.name)
            del self._files[path]
        for path, signature in present.items():
            known = self._files.get(path)
            if signature is not None and (known is None or known.signature != signature):
                self._files[path] = self._read(path, signature, known)
        documents = [state.document for _, state in sorted(self._files.items())]
        merged = (
            merge_inputs(doc for doc in documents if doc is not None) if any(documents) else None
        )
        changed = merged != self.merged
        self.merged = merged
        return changed

    def _read(self, path: Path, signature: tuple[int, int], known: _FileState | None) -> _FileState:
        previous = known.document if known is not None else None
        try:
            document = load_inputs(path.read_bytes())
        except OSError as error:
            problems: tuple[str, ...] = (f"cannot read it: {error.strerror or error}",)
        except InputsError as error:
            problems = tuple(error.problems)
        else:
            LOGGER.info("planning inputs: %s read", path.name)
            return _FileState(signature, document)
        kept = "keeping its previous content" if previous is not None else "not used"
        LOGGER.error("planning inputs: %s refused (%s): %s", path.name, kept, "; ".join(problems))
        return _FileState(signature, previous, problems)

    def problems(self) -> dict[str, list[str]]:
        """Each refused file's name and why."""
        return {
            path.name: list(state.problems) for path, state in self._files.items() if state.problems
        }

    def files(self) -> list[str]:
        return [path.name for path in sorted(self._files)]


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


@dataclass
class ReplanQueue:
    """Nodes waiting to be planned again, with why; deviations wait out a cool-down per node.
    Pure: the time is passed in."""

    cooldown: timedelta
    _pending: dict[str, set[str]] = field(default_factory=dict)
    _deviation_planned: dict[str, datetime] = field(default_factory=dict)

    def add(self, node: str, reasons: Sequence[str]) -> None:
        self._pending.setdefault(node, set()).update(reasons)

    def discard(self, node: str) -> None:
        """`node` is being planned anyway (a full round)."""
        self._pending.pop(node, None)

    def take_ready(self, now: datetime) -> tuple[list[str], list[str]]:
        """The nodes to plan now and all their reasons; any reason but a deviation is ready
        at once, a deviation once the node's cool-down since its last one has passed."""
        ready = [node for node, why in self._pending.items() if self._ready_at(node, why) <= now]
        reasons: set[str] = set()
        for node in ready:
            why = self._pending.pop(node)
            reasons |= why
            if DEVIATION in why:
                self._deviation_planned[node] = now
        return ready, sorted(reasons)

    def next_ready(self) -> datetime | None:
        """When the next waiting node is ready (None: nothing waits)."""
        return min((self._ready_at(n, why) for n, why in self._pending.items()), default=None)

    def _ready_at(self, node: str, reasons: set[str]) -> datetime:
        last = self._deviation_planned.get(node)
        if reasons - {DEVIATION} or last is None:
            return datetime.min.replace(tzinfo=UTC)
        return last + self.cooldown


class PlanScheduler:
    """Decides when to plan whom; runs `dispatch_event_plans` (`dispatch_plans` with the
    stored flexibility events) in a worker thread."""

    def __init__(
        self,
        records: NodeRecords,
        inputs: InputsFolder,
        status_file: Path,
        settings: ScheduleSettings | None = None,
        clock: Clock | None = None,
        *,
        events: StoredEvents | None = None,
    ) -> None:
        self._fleet = RegistryFleet(records)
        self._stored_events = events or (lambda: ())
        self._events: tuple[FlexibilityEvent, ...] = ()
        self._event_outcomes: dict[str, dict[str, Any]] = {}
        self._inputs = inputs
        self._status_file = status_file
        self.settings = settings or ScheduleSettings()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._planner = Planner()
        self._queue = ReplanQueue(timedelta(seconds=self.settings.deviation_cooldown_s))
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dispatches = 0
        self.last: DispatchResult | None = None

    # --- events (on the event loop, from the rules dispatcher) ------------------------------

    def on_event(self, event: Mapping[str, Any], result: HandlerResult) -> None:
        """A rule event was handled: plan its node again if `nodes_to_replan` says so."""
        reasons = replan_reasons(event)
        if reasons and result.node is not None:
            self.request(result.node, reasons)

    def request(self, node: str, reasons: Sequence[str]) -> None:
        self._queue.add(node, reasons)
        self._wake.set()

    # --- running ----------------------------------------------------------------------------

    def start(self, endpoint: str) -> None:
        """Start planning, writing plans through the iot-data REST API at `endpoint`."""
        self._task = asyncio.create_task(self.run(endpoint), name="fractal plan scheduler")
        self._task.add_done_callback(_log_end)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self, endpoint: str) -> None:
        """Plan until cancelled."""
        shadows = await asyncio.to_thread(_iot_data_shadows, endpoint)
        next_round = self._clock()
        while True:
            try:
                next_round = await self._round(next_round, shadows)
            except Exception:  # a store fault or a bug: say so, try again next time
                LOGGER.exception("planning: a round failed")
            await self._sleep(self._wait_s(next_round))

    async def _round(self, next_round: datetime, shadows: PlanShadows) -> datetime:
        """Plan whoever is due; the time of the next scheduled round."""
        changed = await asyncio.to_thread(self._inputs.refresh)
        new_events = await asyncio.to_thread(self._refresh_events)
        now = self._clock()
        if changed or new_events or now >= next_round:
            reason = "inputs changed" if changed else "schedule"
            reason = "flexibility event" if new_events and not changed else reason
            next_round = now + timedelta(seconds=self.settings.interval_s)
            await self._plan_all(reason, shadows)
        await self._plan_pending(shadows)
        return next_round

    def _refresh_events(self) -> bool:
        """Read the stored flexibility events; True when they changed."""
        events = tuple(self._stored_events())
        changed = events != self._events
        self._events = events
        return changed

    async def _plan_all(self, reason: str, shadows: PlanShadows) -> None:
        nodes = await asyncio.to_thread(self._fleet.plannable_nodes)
        for node in nodes:
            self._queue.discard(node)  # this round plans it anyway
        if nodes:
            await self._dispatch(list(nodes), reason, shadows)

    async def _plan_pending(self, shadows: PlanShadows) -> None:
        ready, reasons = self._queue.take_ready(self._clock())
        if ready:
            await self._dispatch(ready, ", ".join(reasons), shadows)

    def _wait_s(self, next_round: datetime) -> float:
        now = self._clock()
        until = [next_round, now + timedelta(seconds=self.settings.inputs_check_s)]
        waiting = self._queue.next_ready()
        if waiting is not None:
            until.append(waiting)
        return max(0.0, (min(until) - now).total_seconds())

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        if self._wake.is_set():
            self._wake.clear()
            await asyncio.sleep(SETTLE_S)  # let events that came together plan together

    async def _dispatch(self, nodes: list[str], reason: str, shadows: PlanShadows) -> None:
        inputs = self._inputs.merged
        if inputs is None:
            LOGGER.warning(
                "planning: %d node(s) to plan (%s) but no usable inputs in %s",
                len(nodes),
                reason,
                self._inputs.folder,
            )
            self._write_status(reason, None)
            return
        now = self._clock()
        events = self._events
        if events:
            nodes = await asyncio.to_thread(with_event_groups, nodes, events, self._fleet, now)
        result = await asyncio.to_thread(
            dispatch_event_plans,
            nodes,
            events=events,
            fleet=self._fleet,
            inputs=inputs,
            shadows=shadows,
            now=now,
            planner=self._planner,
        )
        self._keep_event_outcomes(result, now)
        self.dispatches += 1
        self.last = result
        LOGGER.info(
            "planning (%s): %d of %d node(s) planned", reason, len(result.written), len(nodes)
        )
        for entry in result.nodes:
            if not entry.written:
                LOGGER.warning(
                    "planning: %s not planned: %s", entry.node, "; ".join(entry.problems)
                )
        self._write_status(reason, result, now)

    def _keep_event_outcomes(self, result: DispatchResult, now: datetime) -> None:
        """Each event's latest answer; one that planned no node (a dispatch of other nodes)
        does not replace one that did."""
        for answer in result.events:
            kept = self._event_outcomes.get(answer.event)
            if answer.nodes or kept is None or not kept["nodes"]:
                self._event_outcomes[answer.event] = {"at": now.isoformat(), **asdict(answer)}

    def _write_status(
        self, reason: str, result: DispatchResult | None, now: datetime | None = None
    ) -> None:
        status = {
            "at": (now or self._clock()).isoformat(),
            "reason": reason,
            "inputs": {"files": self._inputs.files(), "problems": self._inputs.problems()},
            "dispatch": result.as_dict() if result is not None else None,
            "events": self._event_outcomes,
        }
        try:
            self._status_file.write_text(json.dumps(status, indent=1) + "\n")
        except OSError as error:
            LOGGER.warning("planning: cannot write %s: %s", self._status_file, error)


def _iot_data_shadows(endpoint: str) -> IotDataPlanShadows:
    """The unchanged boto3 `iot-data` client on the local shadow service (which ignores
    credentials), as the cloud's Lambdas use it on AWS IoT Core."""
    client = boto3.client(
        "iot-data",
        endpoint_url=endpoint,
        region_name="eu-west-2",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    return IotDataPlanShadows(client)


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        LOGGER.error("the plan scheduler stopped", exc_info=task.exception())

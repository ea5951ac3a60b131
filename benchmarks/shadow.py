"""The local shadow service under load: a real `serve` (mosquitto + shadow service + rules
dispatcher, a subprocess) on loopback, driven by real MQTT clients over mutual TLS and by boto3.

1. Throughput: shadow updates (`$aws/things/<id>/shadow/update`, a telemetry snapshot in
   `reported`, from enrolled node clients) counted on `update/accepted`, against QoS 1 publishes
   of the same payloads to a plain topic nobody reads (acknowledged by the broker), same
   clients, same listener, same window of outstanding messages. Ratio: updates/s ÷ publishes/s.
2. Plan push: every home is an MQTT client on its `plan` shadow's `update/delta`, answering a
   plan with a `PlanAck` in `reported.plan`; the aggregator writes `desired.plan` for all homes
   with boto3 `UpdateThingShadow` and watches `update/accepted` with the service identity.
   Latency: write begun → the home's ack accepted. Reference: one broker hop (QoS 1 publish of
   the same plan → delivery to a subscriber).
3. Ingest: homes sending one 10-second sample each in its own `TelemetryBatch` (an online node
   link sends what it has buffered, one batch at a time) on `$aws/rules/fractal_telemetry/<id>`,
   spread evenly over each 10 s; samples stored by the rules dispatcher (counted in
   `fleet.sqlite3`) against samples offered, and the backlog when offering stops.

Clients: aiomqtt (paho-mqtt on one asyncio loop) for every MQTT connection. A thousand awscrt
clients (what the node link uses) would each carry native threads and buffers; a thousand paho
clients on one loop cost a socket and a few tasks each. Both sides of each ratio use the same
client, so the client's own cost cancels out of the ratios, not out of the absolute figures.

Shortcuts, said here and in the output: the raw-publish reference and the ingest publishers
connect with the service identity (`fractal.aggregator`; the ACL lets it publish to `fractal/#`
and `$aws/#`, a node only to its own topics), so 10 000 homes need no 10 000 enrolments and
connections; the dispatcher takes the node from the topic exactly as for a node's own publish.
The set-up (`serve` as a subprocess in a 0711 temporary directory, enrolment through the real
`enroll` command, the boto3 client) is imported from tests/support/local_aggregator.py.
Everything runs on 2 shared cores: the simulated homes share the benchmark's process, so the
latencies are pessimistic.

    .venv/bin/python benchmarks/shadow.py                          # ~1-2 min
    .venv/bin/python benchmarks/shadow.py --homes 1000 --ingest-homes 10000   # the issue's figures
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import math
import sqlite3
import ssl
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiomqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fractal.protocol import Plan, PlanAck, TelemetryBatch, TelemetrySnapshot, parse  # noqa: E402

from aggregator_cloud.local.ca import SERVICE_IDENTITY  # noqa: E402
from tests.support.local_aggregator import LocalAggregator, NodeCredentials, iot_data  # noqa: E402

WAIT_SECONDS: Final = 120.0
"""Bound on every wait for answers: a phase that runs out reports what is missing."""
CONNECT_CONCURRENCY: Final = 32
"""TLS handshakes in flight while the simulated homes connect."""
SAMPLE_SECONDS: Final = 10
TICK_SECONDS: Final = 0.05
INGEST_WINDOW: Final = 256
"""Telemetry publishes awaiting their PUBACK, over all ingest connections."""
DRAIN_SECONDS: Final = 120.0
STALL_SECONDS: Final = 5.0
POLL_SECONDS: Final = 0.2
SLOTS: Final = 96  # 48 h at 30 min
CLIENT_LOG: Final = logging.getLogger("benchmarks.shadow.mqtt")
CLIENT_LOG.setLevel(logging.ERROR)  # aiomqtt warns about every window of pending publishes


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (the smallest value at or above `fraction` of the values)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] if ordered else math.nan


# -- connections ----------------------------------------------------------------------------


def service_identity(aggregator: LocalAggregator) -> NodeCredentials:
    """The aggregator's own certificate, which `serve` wrote to DATA/service (we own DATA)."""
    data = aggregator.data_dir
    service = data / "service"
    return NodeCredentials(
        SERVICE_IDENTITY, service / "service.pem", service / "service.key", data / "ca" / "ca.pem"
    )


def tls_context(identity: NodeCredentials) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(identity.ca))
    context.load_cert_chain(str(identity.certificate), str(identity.private_key))
    return context


def mqtt_client(aggregator: LocalAggregator, identity: NodeCredentials) -> aiomqtt.Client:
    """An MQTT5 client on the nodes' listener (not yet connected)."""
    return aiomqtt.Client(
        "127.0.0.1",
        aggregator.mqtt_port,
        identifier=f"{identity.node_id}-{uuid.uuid4().hex[:8]}",
        tls_context=tls_context(identity),
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=WAIT_SECONDS,
        logger=CLIENT_LOG,
    )


async def connect_all(stack: contextlib.AsyncExitStack, clients: Sequence[aiomqtt.Client]) -> None:
    """Connect every client (a bounded number of handshakes at a time); closed with `stack`."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect(client: aiomqtt.Client) -> None:
        async with gate:
            await stack.enter_async_context(client)

    await asyncio.gather(*(connect(client) for client in clients))


@contextlib.asynccontextmanager
async def background(*coroutines: Awaitable[None]) -> AsyncIterator[None]:
    """Run readers alongside the block; cancel them when it ends."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Flow:
    """At most `window` operations outstanding; `done` once `total` have settled."""

    def __init__(self, window: int, total: int) -> None:
        self._slots = asyncio.Semaphore(window)
        self.total = total
        self.settled = 0
        self.done = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        if total == 0:
            self.done.set()

    async def start(self, operation: Awaitable[None], settles_itself: bool) -> None:
        """Start `operation` once a slot is free; it settles when it completes if
        `settles_itself`, else when `settle()` is called (an answer arrived)."""
        await self._slots.acquire()
        task = asyncio.ensure_future(operation)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if settles_itself:
            task.add_done_callback(lambda finished: self.settle())

    def settle(self) -> None:
        self.settled += 1
        self._slots.release()
        if self.settled >= self.total:
            self.done.set()


async def wait_bounded(event: asyncio.Event, seconds: float = WAIT_SECONDS) -> None:
    """Wait for `event`, but never longer than `seconds` (the caller reports what is missing)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


# -- documents -------------------------------------------------------------------------------


def snapshot_update(node: str, seq: int) -> bytes:
    """A classic-shadow update carrying a telemetry snapshot, as a node's link writes it."""
    snapshot = {
        "schema": "fractal.telemetry.v1",
        "node": node,
        "seq": seq,
        "ts": iso(datetime.now(UTC)),
        "grid_w": float(100 + seq % 900),
        "pv_w": 2000.0,
        "battery_w": -500.0,
        "load_w": 1600.0,
        "soc_pct": 55.0,
    }
    return json.dumps({"state": {"reported": {"telemetry": snapshot}}}).encode()


def plan_document(node: str, plan_id: str, now: datetime) -> dict[str, Any]:
    """48 h at 30 min: charge overnight, discharge in the evening peak, balance otherwise;
    expected SoC and grid trajectories (the size a real plan has)."""
    start = now.replace(minute=0, second=0, microsecond=0)
    windows = [
        {"start": day + begin, "end": day + end, "mode": mode, **extra}
        for day in (0, 48)
        for begin, end, mode, extra in (
            (0, 8, "charge", {"value": 2500}),
            (8, 34, "balance", {}),
            (34, 40, "discharge", {"value": 2000}),
            (40, 48, "balance", {}),
        )
    ]
    return {
        "schema": "fractal.plan.v1",
        "id": plan_id,
        "node": node,
        "issued": iso(now),
        "start": iso(start),
        "step": 1800,
        "slots": SLOTS,
        "expiry": iso(start + timedelta(hours=48)),
        "source": "aggregator",
        "devices": {"battery": {"kind": "battery", "windows": windows}},
        "expected": {
            "soc_pct": [float(20 + (slot * 7) % 75) for slot in range(SLOTS)],
            "grid_w": [(slot * 131) % 3000 - 1000 for slot in range(SLOTS)],
        },
    }


def plan_ack(plan_id: str) -> bytes:
    ack = {"schema": "fractal.plan_ack.v1", "id": plan_id, "status": "accepted"}
    ack["ts"] = iso(datetime.now(UTC))
    return json.dumps({"state": {"reported": {"plan": ack}}}).encode()


def telemetry_batch(node: str, seq: int, first: datetime) -> bytes:
    """One 10-second sample in its own batch (what an online node link sends)."""
    sample = {
        "seq": seq,
        "ts": iso(first + timedelta(seconds=SAMPLE_SECONDS * seq)),
        "grid_w": float(300 + seq % 1000),
        "pv_w": 1200.0,
        "battery_w": 0.0,
        "load_w": 1500.0,
    }
    document = {"schema": "fractal.telemetry_batch.v1", "node": node, "seq": seq}
    document["samples"] = [sample]
    return json.dumps(document).encode()


def check_documents() -> None:
    """Every kind of document sent here is one the protocol accepts."""
    now = datetime.now(UTC)
    update = json.loads(snapshot_update("home-1", 1))["state"]["reported"]["telemetry"]
    ack = json.loads(plan_ack("plan-1"))["state"]["reported"]["plan"]
    checks = (
        (TelemetrySnapshot, update),
        (Plan, plan_document("home-1", "plan-1", now)),
        (PlanAck, ack),
        (TelemetryBatch, json.loads(telemetry_batch("home-1", 0, now))),
    )
    for model, document in checks:
        parsed = parse(model, document)
        assert parsed.ok, (model.__name__, parsed.problems)


# -- 1. throughput ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    clients: int
    window: int
    messages: int
    """Sent in each measurement."""
    publish_seconds: float
    acknowledged: int
    update_seconds: float
    accepted: int
    rejected: int

    @property
    def publishes_per_second(self) -> float:
        return self.acknowledged / self.publish_seconds

    @property
    def updates_per_second(self) -> float:
        return self.accepted / self.update_seconds

    @property
    def ratio(self) -> float:
        return self.updates_per_second / self.publishes_per_second


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


async def timed_gather[T](operations: Sequence[Awaitable[T]]) -> tuple[float, list[T]]:
    """Run the operations together; seconds until all finished, and their results."""
    began = time.perf_counter()
    results = await asyncio.gather(*operations)
    return time.perf_counter() - began, list(results)


async def raw_burst(client: aiomqtt.Client, payloads: Sequence[bytes], window: int) -> int:
    """QoS 1 publishes to a topic nobody reads; each settles on its PUBACK."""
    flow = Flow(window, len(payloads))
    topic = f"fractal/bench/raw/{client.identifier}"
    for payload in payloads:
        await flow.start(client.publish(topic, payload, qos=1), settles_itself=True)
    await wait_bounded(flow.done)
    return flow.settled


async def update_burst(
    client: aiomqtt.Client, node: str, payloads: Sequence[bytes], window: int
) -> tuple[int, int]:
    """Shadow updates; each settles on its `accepted` or `rejected` answer."""
    flow = Flow(window, len(payloads))
    answers = {"accepted": 0, "rejected": 0}

    async def count_answers() -> None:
        async for message in client.messages:
            answers[message.topic.value.rsplit("/", 1)[1]] += 1
            flow.settle()

    topic = f"$aws/things/{node}/shadow/update"
    for outcome in answers:
        await client.subscribe(f"{topic}/{outcome}", qos=1)
    async with background(count_answers()):
        for payload in payloads:
            await flow.start(client.publish(topic, payload, qos=1), settles_itself=False)
        await wait_bounded(flow.done)
    return answers["accepted"], answers["rejected"]


async def measure_throughput(
    aggregator: LocalAggregator, nodes: Sequence[NodeCredentials], messages: int, window: int
) -> Throughput:
    shares = split(messages, len(nodes))
    payloads = [
        [snapshot_update(node.node_id, seq) for seq in range(share)]
        for node, share in zip(nodes, shares, strict=True)
    ]
    service = service_identity(aggregator)
    async with contextlib.AsyncExitStack() as stack:
        raw_clients = [mqtt_client(aggregator, service) for _ in nodes]
        node_clients = [mqtt_client(aggregator, node) for node in nodes]
        await connect_all(stack, [*raw_clients, *node_clients])
        publish_seconds, acknowledged = await timed_gather(
            [
                raw_burst(client, batch, window)
                for client, batch in zip(raw_clients, payloads, strict=True)
            ]
        )
        update_seconds, answers = await timed_gather(
            [
                update_burst(client, node.node_id, batch, window)
                for client, node, batch in zip(node_clients, nodes, payloads, strict=True)
            ]
        )
    accepted, rejected = (sum(column) for column in zip(*answers, strict=True))
    return Throughput(
        len(nodes), window, messages, publish_seconds, sum(acknowledged), update_seconds,
        accepted, rejected,
    )  # fmt: skip


# -- 2. plan push latency --------------------------------------------------------------------


@dataclass(frozen=True)
class PushLatency:
    homes: int
    connect_seconds: float
    latencies: tuple[float, ...]
    """Seconds from the write begun to the home's ack accepted, per acknowledged home."""
    writes: tuple[float, ...]
    """Seconds each boto3 `UpdateThingShadow` call took."""
    wave_seconds: float
    """First write begun → last ack accepted."""
    hops: tuple[float, ...]
    """Reference: one broker hop of the same plan, seconds."""

    @property
    def acknowledged(self) -> int:
        return len(self.latencies)


def plan_topic(node: str, suffix: str) -> str:
    return f"$aws/things/{node}/shadow/name/plan/{suffix}"


async def simulated_home(client: aiomqtt.Client, node: str) -> None:
    """A node's plan inbox reduced to its protocol: every delta carrying a plan is accepted."""
    async for message in client.messages:
        delta = json.loads(bytes(message.payload))
        plan = delta.get("state", {}).get("plan")
        if isinstance(plan, dict) and "id" in plan:
            await client.publish(plan_topic(node, "update"), plan_ack(plan["id"]), qos=1)


@dataclass
class AckWatch:
    """The aggregator's side: which homes' acks of their expected plan were accepted, when."""

    expected: dict[str, str]
    seen: dict[str, float] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def watch(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            node = message.topic.value.split("/")[2]
            accepted = json.loads(bytes(message.payload))
            ack = accepted.get("state", {}).get("reported", {}).get("plan") or {}
            if ack.get("id") == self.expected.get(node) and node not in self.seen:
                self.seen[node] = time.perf_counter()
                if len(self.seen) == len(self.expected):
                    self.done.set()


def write_plans(
    client: Any, plans: dict[str, dict[str, Any]]
) -> tuple[dict[str, float], list[float]]:
    """What the cloud does: `desired.plan` through iot-data, one home after another."""
    begun: dict[str, float] = {}
    durations: list[float] = []
    for node, plan in plans.items():
        payload = json.dumps({"state": {"desired": {"plan": plan}}}).encode()
        begun[node] = time.perf_counter()
        client.update_thing_shadow(thingName=node, shadowName="plan", payload=payload)
        durations.append(time.perf_counter() - begun[node])
    return begun, durations


async def broker_hops(client: aiomqtt.Client, payload: bytes, count: int) -> tuple[float, ...]:
    """Reference: QoS 1 publish → delivery on a subscription of the same client, one at a time."""
    topic = f"fractal/bench/hop/{client.identifier}"
    await client.subscribe(topic, qos=1)
    hops = []
    messages = aiter(client.messages)
    for _ in range(count):
        began = time.perf_counter()
        await client.publish(topic, payload, qos=1)
        await asyncio.wait_for(anext(messages), WAIT_SECONDS)
        hops.append(time.perf_counter() - began)
    return tuple(hops)


async def connect_homes(
    aggregator: LocalAggregator, stack: contextlib.AsyncExitStack, homes: Sequence[NodeCredentials]
) -> dict[str, aiomqtt.Client]:
    clients = {home.node_id: mqtt_client(aggregator, home) for home in homes}
    await connect_all(stack, list(clients.values()))
    await asyncio.gather(
        *(
            client.subscribe(plan_topic(node, "update/delta"), qos=1)
            for node, client in clients.items()
        )
    )
    return clients


async def measure_plan_push(
    aggregator: LocalAggregator, homes: Sequence[NodeCredentials]
) -> PushLatency:
    now = datetime.now(UTC)
    run = uuid.uuid4().hex[:8]
    plans = {
        home.node_id: plan_document(home.node_id, f"plan-{run}-{home.node_id}", now)
        for home in homes
    }
    watch = AckWatch({node: plan["id"] for node, plan in plans.items()})
    boto = iot_data(aggregator)
    async with contextlib.AsyncExitStack() as stack:
        began = time.perf_counter()
        clients = await connect_homes(aggregator, stack, homes)
        connect_seconds = time.perf_counter() - began
        service = service_identity(aggregator)
        observer, hop_client = mqtt_client(aggregator, service), mqtt_client(aggregator, service)
        await connect_all(stack, [observer, hop_client])
        await observer.subscribe(plan_topic("+", "update/accepted"), qos=1)
        sample_plan = json.dumps(next(iter(plans.values()))).encode()
        hops = await broker_hops(hop_client, sample_plan, min(len(homes), 200))
        readers = [simulated_home(client, node) for node, client in clients.items()]
        async with background(watch.watch(observer), *readers):
            begun, writes = await asyncio.to_thread(write_plans, boto, plans)
            await wait_bounded(watch.done)
    latencies = tuple(watch.seen[node] - begun[node] for node in watch.seen)
    wave = max(watch.seen.values(), default=math.nan) - min(begun.values())
    return PushLatency(len(homes), connect_seconds, latencies, tuple(writes), wave, hops)


# -- 3. sustained ingest ---------------------------------------------------------------------


@dataclass(frozen=True)
class Ingest:
    homes: int
    seconds: float
    """How long samples were offered."""
    offered: int
    """Samples published and acknowledged by the broker."""
    stored_while_offering: int
    backlog: int
    """Offered but not yet stored when offering stopped."""
    stored: int
    """Stored once the backlog drained (or the drain wait ran out)."""
    drain_seconds: float
    broker_drops: int
    """mosquitto's notices of messages dropped for a client whose queue was full."""

    @property
    def target_rate(self) -> float:
        return self.homes / SAMPLE_SECONDS

    @property
    def offered_rate(self) -> float:
        return self.offered / self.seconds

    @property
    def stored_rate(self) -> float:
        return self.stored_while_offering / self.seconds

    @property
    def lost(self) -> int:
        return self.offered - self.stored

    @property
    def keeps_up(self) -> bool:
        """Stores at the rate offered, with at most one second's samples waiting at the end."""
        return self.lost == 0 and self.backlog <= max(1.0, self.offered_rate)


def schedule(homes: int, seconds: float) -> list[tuple[float, int, int]]:
    """(due, home, sample seq): each home every 10 s, the homes spread evenly over the 10 s."""
    rounds = math.ceil(seconds / SAMPLE_SECONDS)
    due = (
        (SAMPLE_SECONDS * seq + SAMPLE_SECONDS * home / homes, home, seq)
        for seq in range(rounds)
        for home in range(homes)
    )
    return [entry for entry in due if entry[0] < seconds]


class StoredSamples:
    """Counts the samples the dispatcher committed for this run's homes (read-only, WAL)."""

    def __init__(self, database: Path, prefix: str) -> None:
        self._db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        self._range = (prefix, prefix + "~")  # the primary key (node, seq) serves the range

    def count(self) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM samples WHERE node >= ? AND node < ?", self._range
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()


async def offer(
    publishers: Sequence[aiomqtt.Client], plan: list[tuple[float, int, int]], prefix: str
) -> int:
    """Publish every batch at its due time (late ones at once); return those PUBACKed."""
    flow = Flow(INGEST_WINDOW, len(plan))
    first = datetime.now(UTC).replace(microsecond=0)
    began = time.perf_counter()
    for index, (due, home, seq) in enumerate(plan):
        delay = began + due - time.perf_counter()
        if delay > TICK_SECONDS:
            await asyncio.sleep(delay)
        node = f"{prefix}{home:05d}"
        topic = f"$aws/rules/fractal_telemetry/{node}"
        publisher = publishers[index % len(publishers)]
        batch = telemetry_batch(node, seq, first)
        await flow.start(publisher.publish(topic, batch, qos=1), settles_itself=True)
    await wait_bounded(flow.done)
    return flow.settled


async def drain(stored: StoredSamples, offered: int) -> float:
    """Wait until every offered sample is stored, or the count stopped growing for
    `STALL_SECONDS` (the rest will not come), or `DRAIN_SECONDS`; return how long it took."""
    began = last_growth = time.perf_counter()
    count = stored.count()
    for _ in range(int(DRAIN_SECONDS / POLL_SECONDS)):  # the store signals nothing: poll it
        if count >= offered or time.perf_counter() - last_growth > STALL_SECONDS:
            break
        await asyncio.sleep(POLL_SECONDS)
        count, previous = stored.count(), count
        if count > previous:
            last_growth = time.perf_counter()
    return time.perf_counter() - began


def broker_drop_notices(aggregator: LocalAggregator) -> int:
    """Lines in which mosquitto says it dropped messages for a client (its queue was full)."""
    log = aggregator.data_dir / "mosquitto" / "mosquitto.log"
    return sum("dropped" in line for line in log.read_text(errors="replace").splitlines())


async def measure_ingest(
    aggregator: LocalAggregator, homes: int, seconds: float, connections: int
) -> Ingest:
    prefix = f"ingest-{uuid.uuid4().hex[:6]}-"
    stored = StoredSamples(aggregator.data_dir / "fleet.sqlite3", prefix)
    try:
        async with contextlib.AsyncExitStack() as stack:
            service = service_identity(aggregator)
            publishers = [mqtt_client(aggregator, service) for _ in range(connections)]
            await connect_all(stack, publishers)
            began = time.perf_counter()
            offered = await offer(publishers, schedule(homes, seconds), prefix)
            elapsed = time.perf_counter() - began
            at_end = stored.count()
            drain_seconds = await drain(stored, offered)
        total = stored.count()
    finally:
        stored.close()
    drops = broker_drop_notices(aggregator)
    return Ingest(homes, elapsed, offered, at_end, offered - at_end, total, drain_seconds, drops)


# -- running and reporting -------------------------------------------------------------------


def enroll(aggregator: LocalAggregator, prefix: str, count: int) -> list[NodeCredentials]:
    """Enrol through the real `enroll` command (certificate, key, CA per node), quietly."""
    with contextlib.redirect_stdout(io.StringIO()):
        return [aggregator.enroll(f"{prefix}-{index:05d}") for index in range(count)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def report_throughput(result: Throughput) -> None:
    print(
        f"1. throughput: {result.messages:,} messages from {result.clients} connections,"
        f" {result.window} outstanding each"
    )
    print(
        f"   raw QoS 1 publish, plain topic:   {result.publishes_per_second:9,.0f} publishes/s"
        f"  ({result.acknowledged:,} acknowledged)"
    )
    print(
        f"   shadow update → update/accepted: {result.updates_per_second:9,.0f} updates/s"
        f"  ({result.accepted:,} accepted, {result.rejected:,} rejected)"
    )
    print(f"   ratio updates/publishes: {result.ratio:.3f}")


def report_push(result: PushLatency) -> None:
    print(
        f"2. plan push: {result.homes:,} homes connected in {result.connect_seconds:,.1f} s;"
        f" {result.acknowledged:,}/{result.homes:,} acknowledged,"
        f" whole wave {result.wave_seconds:,.2f} s"
    )
    hop = statistics.median(result.hops)
    for name, values in (
        ("write → ack accepted", result.latencies),
        ("boto3 write", result.writes),
    ):
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        print(
            f"   {name:21} p50 {ms(p50):>10}  p99 {ms(p99):>10}  max {ms(max(values)):>10}"
            f"  (p50 = {p50 / hop:,.1f}x one broker hop)"
        )
    hop_p99 = percentile(result.hops, 0.99)
    print(f"   reference, one broker hop of the plan: p50 {ms(hop)}, p99 {ms(hop_p99)}")


def report_ingest(result: Ingest) -> None:
    print(
        f"3. ingest: {result.homes:,} homes, one sample each per {SAMPLE_SECONDS} s,"
        f" for {result.seconds:,.1f} s: target {result.target_rate:,.0f} samples/s"
    )
    print(
        f"   offered {result.offered_rate:,.0f} samples/s ({result.offered:,});"
        f" stored {result.stored_rate:,.0f} samples/s"
        f" ({result.stored_rate / result.offered_rate:.3f} of offered)"
    )
    print(
        f"   backlog when offering stopped: {result.backlog:,} samples"
        f" ({result.backlog / result.offered_rate:,.1f} s of offer);"
        f" drained in {result.drain_seconds:,.1f} s; never stored {result.lost:,}"
        f" (mosquitto drop notices: {result.broker_drops})"
    )
    print(f"   keeps up: {'yes' if result.keeps_up else 'NO'}")


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=2000, help="messages per measurement")
    parser.add_argument("--clients", type=int, default=4, help="connections for (1)")
    parser.add_argument("--window", type=int, default=16, help="outstanding per connection")
    parser.add_argument("--homes", type=int, default=200, help="homes for the plan push")
    parser.add_argument("--ingest-homes", type=int, default=1000)
    parser.add_argument("--ingest-seconds", type=float, default=20.0)
    parser.add_argument("--ingest-connections", type=int, default=4)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    check_documents()
    with LocalAggregator.started() as aggregator:
        print(f"shadow benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: real serve + mosquitto,")
        print("  aiomqtt clients over mutual TLS on loopback; raw reference and ingest publishers")
        print("  use the service identity (one identity for many homes' topics)")
        nodes = enroll(aggregator, "bench", arguments.clients)
        report_throughput(
            asyncio.run(measure_throughput(aggregator, nodes, arguments.updates, arguments.window))
        )
        homes = enroll(aggregator, "home", arguments.homes)
        report_push(asyncio.run(measure_plan_push(aggregator, homes)))
        report_ingest(
            asyncio.run(
                measure_ingest(
                    aggregator,
                    arguments.ingest_homes,
                    arguments.ingest_seconds,
                    arguments.ingest_connections,
                )
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

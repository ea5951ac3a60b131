"""An async client for the Glowmarkt API: the DCC smart-meter data behind the Bright app.

What this relies on (public material, there is no formal specification):

* Hildebrand's "Glowmarkt API documentation, using the Bright application as an individual
  user" (v1.6, 2020; v1.8, 2026): `POST /auth` with `{username, password}` and the Bright
  app's `applicationId` header returns `{valid, token, exp}`; every later call sends the
  `token` and `applicationId` headers; a token lives 7 days.
* The Swagger definitions at https://api.glowmarkt.com/api-docs/v0-1/{vesys,resourcesys}/:
  `GET /virtualentity` (`veId`, `name`), `GET /virtualentity/{id}/resources` (`resources`:
  `resourceId`, `name`, `classifier`, `baseUnit`), `GET /resource/{id}/readings?from&to&
  period&function&offset` (`data`: `[[unix seconds, value], ...]`, `units`),
  `/resource/{id}/current` and `/resource/{id}/tariff` (`data[].currentRates.rate` p/kWh and
  `.standingCharge` p/day).
* Slots the DCC has not delivered yet read 0 unless `nulls=1` is asked for, then null
  (unlobito/ha-hildebrandglow#28; HandyHat/ha-hildebrandglow-dcc#362: "the last two [hours]
  show zero, but further back have been populated"): we ask for nulls, so they are gaps.
* The query-window caps the maintained clients use (Mossop/glowmarkt-rs `split_periods`:
  PT30M at most 10 days per request) and the Bright app's public application id (the same in
  cybermaggedon/pyglowmarkt, glowmarkt-rs and the Homey app).

The API documents no rate limit; a 429 is still honoured (Retry-After, else exponential
back-off) because a shared cloud may add one at any time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import aiohttp

BASE_URL: Final = "https://api.glowmarkt.com/api/v0-1"
# The Bright app's public application id: individual users' accounts answer to it.
APPLICATION_ID: Final = "b0f1b774-a586-4f72-9edd-27ead8aa7a8d"
HALF_HOUR: Final = timedelta(minutes=30)
HOUR: Final = timedelta(hours=1)
# The longest range one PT30M readings request may span.
MAX_PT30M_SPAN: Final = timedelta(days=10)
# A token is renewed this long before the expiry the API gave, so no call races it.
TOKEN_MARGIN: Final = timedelta(minutes=5)
REQUEST_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)
# 429 handling: this many waits at most, none longer than MAX_RETRY_AFTER; beyond that the
# caller is told when to come back instead of being held up.
RATE_LIMIT_RETRIES: Final = 3
MAX_RETRY_AFTER: Final = 60.0
BACKOFF_FIRST: Final = 2.0

Sleep = Callable[[float], Awaitable[None]]


class Classifier(StrEnum):
    """The resources the node reads (cost resources and others are left out)."""

    ELECTRICITY_IMPORT = "electricity.consumption"
    ELECTRICITY_EXPORT = "electricity.export"
    GAS = "gas.consumption"


class GlowmarktError(Exception):
    """Anything that kept the API from answering usefully."""


class GlowmarktAuthError(GlowmarktError):
    """The username or password was refused: only the user can fix it."""


class GlowmarktConnectionError(GlowmarktError):
    """The API could not be reached (network, DNS, timeout)."""


class GlowmarktServerError(GlowmarktError):
    """The API answered with an error status."""

    def __init__(self, status: int, path: str) -> None:
        super().__init__(f"Glowmarkt answered {status} to {path}")
        self.status = status


class GlowmarktRateLimited(GlowmarktError):
    """Still rate limited after waiting; try again after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Glowmarkt rate limit: try again in {retry_after:.0f} s")
        self.retry_after = retry_after


class GlowmarktResponseError(GlowmarktError):
    """The API answered something that is not the documented JSON."""


@dataclass(frozen=True)
class Resource:
    """One data stream of a meter (e.g. electricity import in kWh)."""

    resource_id: str
    name: str
    classifier: str
    base_unit: str
    entity_name: str  # the virtual entity (meter set) it belongs to

    @property
    def supported(self) -> bool:
        return self.classifier in set(Classifier)


@dataclass(frozen=True)
class Reading:
    """Energy in one half-hour slot that starts at `start` (UTC)."""

    start: datetime
    kwh: float


@dataclass(frozen=True)
class HourTotal:
    """Energy in the hour that starts at `start`: the sum of its two half-hours."""

    start: datetime
    kwh: float


@dataclass(frozen=True)
class Tariff:
    rate_pence_per_kwh: float
    standing_charge_pence_per_day: float


@dataclass(frozen=True)
class CurrentReading:
    time: datetime
    value: float
    units: str


class GlowmarktClient:
    """The Glowmarkt API over an injected aiohttp session (Home Assistant's shared one)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        username: str,
        password: str,
        *,
        base_url: str = BASE_URL,
        application_id: str = APPLICATION_ID,
        sleep: Sleep = asyncio.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._session = session
        self._username = username
        self._password = password
        self._base_url = base_url.rstrip("/")
        self._application_id = application_id
        self._sleep = sleep
        self._now = now
        self._token: str | None = None
        self._token_expiry = datetime.min.replace(tzinfo=UTC)

    async def login(self) -> datetime:
        """Log in; returns the token's expiry. Raises GlowmarktAuthError if refused."""
        body = await self._request(
            "POST", "auth", json_body={"username": self._username, "password": self._password}
        )
        if not isinstance(body, Mapping) or body.get("valid") is not True:
            raise GlowmarktAuthError("Glowmarkt refused the username or password")
        token, expiry = body.get("token"), body.get("exp")
        if not isinstance(token, str) or not isinstance(expiry, int | float):
            raise GlowmarktResponseError("Glowmarkt login answer has no token or expiry")
        self._token = token
        self._token_expiry = datetime.fromtimestamp(expiry, UTC)
        return self._token_expiry

    async def resources(self) -> list[Resource]:
        """Every resource of every virtual entity of the account."""
        entities = await self._get("virtualentity")
        found: list[Resource] = []
        for entity in _list_of_mappings(entities, "virtual entities"):
            ve_id, ve_name = entity.get("veId"), entity.get("name") or ""
            if not isinstance(ve_id, str):
                raise GlowmarktResponseError("a virtual entity has no veId")
            body = await self._get(f"virtualentity/{ve_id}/resources")
            items = body.get("resources") if isinstance(body, Mapping) else None
            found.extend(
                _resource(item, str(ve_name)) for item in _list_of_mappings(items, "resources")
            )
        return found

    async def readings(self, resource_id: str, start: datetime, end: datetime) -> list[Reading]:
        """Half-hourly energy from `start` to `end` (both snapped to the half-hour), oldest
        first. Slots the API has no value for are left out (a gap, never a zero)."""
        first, stop = floor_half_hour(start), floor_half_hour(end)
        slots: dict[datetime, float] = {}
        for chunk_start, chunk_end in split_range(first, stop, MAX_PT30M_SPAN):
            body = await self._get(
                f"resource/{resource_id}/readings",
                params={
                    "from": _api_time(chunk_start),
                    # Up to the chunk's end: whether the API counts the slot starting at `to`
                    # or not, no slot is lost (the one at `to` belongs to the next chunk).
                    "to": _api_time(chunk_end),
                    "period": "PT30M",
                    "function": "sum",
                    "offset": "0",
                    # Without it a slot the DCC has not delivered yet reads 0, not null.
                    "nulls": "1",
                },
            )
            for reading in _readings(body):
                if chunk_start <= reading.start < chunk_end:
                    slots[reading.start] = reading.kwh
        return [Reading(when, kwh) for when, kwh in sorted(slots.items())]

    async def current(self, resource_id: str) -> CurrentReading | None:
        """The latest value the API holds for a resource, if any."""
        body = await self._get(f"resource/{resource_id}/current")
        pairs = _data_pairs(body)
        if not pairs:
            return None
        when, value = pairs[-1]
        units = body.get("units") if isinstance(body, Mapping) else None
        return CurrentReading(when, value, units if isinstance(units, str) else "")

    async def tariff(self, resource_id: str) -> Tariff | None:
        """The unit rate and standing charge in force, if the supplier published them."""
        body = await self._get(f"resource/{resource_id}/tariff")
        data = body.get("data") if isinstance(body, Mapping) else None
        for item in _list_of_mappings(data, "tariff"):
            rates = item.get("currentRates")
            if isinstance(rates, Mapping):
                return Tariff(
                    _number(rates.get("rate"), "tariff rate"),
                    _number(rates.get("standingCharge"), "standing charge"),
                )
        return None

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """An authenticated GET: log in when the token is missing or about to expire, and
        once more if the API says the token is no longer valid."""
        if self._token is None or self._now() >= self._token_expiry - TOKEN_MARGIN:
            await self.login()
        try:
            return await self._request("GET", path, params=params)
        except GlowmarktAuthError:
            await self.login()  # expired or revoked early: a second refusal is final
            return await self._request("GET", path, params=params)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, str] | None = None,
    ) -> Any:
        """One call, waiting out rate limits; errors become typed GlowmarktErrors."""
        waited = 0
        while True:
            status, retry_after, text = await self._send(method, path, params, json_body)
            if status != 429:
                return _decoded(status, path, text)
            wait = retry_after if retry_after is not None else BACKOFF_FIRST * 2**waited
            if waited == RATE_LIMIT_RETRIES or wait > MAX_RETRY_AFTER:
                raise GlowmarktRateLimited(wait)
            await self._sleep(wait)
            waited += 1

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        json_body: Mapping[str, str] | None,
    ) -> tuple[int, float | None, str]:
        headers = {"applicationId": self._application_id, "Content-Type": "application/json"}
        if self._token is not None and path != "auth":
            headers["token"] = self._token
        try:
            async with self._session.request(
                method,
                f"{self._base_url}/{path}",
                params=params,
                json=json_body,
                headers=headers,
                timeout=REQUEST_TIMEOUT,
            ) as response:
                text = await response.text()
                return response.status, _retry_after(response.headers.get("Retry-After")), text
        except (aiohttp.ClientError, TimeoutError) as err:
            raise GlowmarktConnectionError(f"Glowmarkt unreachable: {err!r}") from err


def floor_half_hour(when: datetime) -> datetime:
    """The start of the half-hour slot `when` falls in, in UTC."""
    when = when.astimezone(UTC)
    return when.replace(minute=when.minute - when.minute % 30, second=0, microsecond=0)


def split_range(start: datetime, end: datetime, span: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive pieces no longer than `span`."""
    pieces: list[tuple[datetime, datetime]] = []
    while start < end:
        pieces.append((start, min(start + span, end)))
        start += span
    return pieces


def complete_hours(
    readings: list[Reading], start: datetime, *, settled_before: datetime
) -> list[HourTotal]:
    """The hours from `start` (an hour boundary) that can be counted, oldest first.

    An hour counts when both its half-hours are in. At an incomplete hour the walk stops, so
    the next fetch starts there and picks up the slots the DCC delivers late; unless the data
    has already moved past it and it began before `settled_before`: then its missing slot is
    taken as never coming, and the hour is left out as a gap (never counted as zero)."""
    slots = {reading.start: reading.kwh for reading in readings}
    if not slots:
        return []
    last_slot = max(slots)
    hours: list[HourTotal] = []
    hour = start
    while hour <= last_slot:
        halves = [slots.get(hour), slots.get(hour + HALF_HOUR)]
        if halves[0] is not None and halves[1] is not None:
            hours.append(HourTotal(hour, halves[0] + halves[1]))
        elif hour >= settled_before or hour + HALF_HOUR >= last_slot:
            break  # may still come: count nothing from here on yet
        hour += HOUR
    return hours


def floor_hour(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _api_time(when: datetime) -> str:
    # The API reads times without an offset as UTC (offset=0); with one it misbehaves.
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _retry_after(header: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by this API)."""
    try:
        return max(float(header), 0.0) if header is not None else None
    except ValueError:
        return None


def _decoded(status: int, path: str, text: str) -> Any:
    if status in (401, 403):
        raise GlowmarktAuthError(f"Glowmarkt refused the credentials ({status}) for {path}")
    if status >= 400:
        raise GlowmarktServerError(status, path)
    try:
        return json.loads(text)
    except ValueError as err:
        raise GlowmarktResponseError(f"Glowmarkt answered {path} with invalid JSON") from err


def _list_of_mappings(value: Any, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise GlowmarktResponseError(f"Glowmarkt {what} answer is not a list")
    return value


def _resource(item: Mapping[str, Any], entity_name: str) -> Resource:
    resource_id, classifier = item.get("resourceId"), item.get("classifier")
    if not isinstance(resource_id, str) or not isinstance(classifier, str):
        raise GlowmarktResponseError("a resource has no resourceId or classifier")
    return Resource(
        resource_id=resource_id,
        name=str(item.get("name") or classifier),
        classifier=classifier,
        base_unit=str(item.get("baseUnit") or ""),
        entity_name=entity_name,
    )


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GlowmarktResponseError(f"Glowmarkt {what} is not a number: {value!r}")
    return float(value)


def _data_pairs(body: Any) -> list[tuple[datetime, float]]:
    """`data: [[unix seconds, value], ...]`; pairs whose value is null are gaps."""
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, list):
        raise GlowmarktResponseError("Glowmarkt answer has no data list")
    pairs: list[tuple[datetime, float]] = []
    for item in data:
        if not isinstance(item, list) or len(item) != 2:
            raise GlowmarktResponseError(f"Glowmarkt data point is not [time, value]: {item!r}")
        if item[1] is None:
            continue
        seconds = _number(item[0], "timestamp")
        pairs.append((datetime.fromtimestamp(seconds, UTC), _number(item[1], "reading")))
    return pairs


def _readings(body: Any) -> list[Reading]:
    # A point off the half-hour grid would be counted in the wrong slot: it is not a slot.
    return [Reading(when, kwh) for when, kwh in _data_pairs(body) if when == floor_half_hour(when)]

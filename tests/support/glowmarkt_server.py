"""A local Glowmarkt API (aiohttp.web on 127.0.0.1) replaying the documented responses.

    async with GlowmarktServer.started() as api:      # a real HTTP server on a free port
        api.set_readings(resource_id, {slot_start: kwh or None, ...})
        api.fail_next("readings", 429, retry_after="1")   # scripted faults, in order
        client = GlowmarktClient(session, USERNAME, PASSWORD, base_url=api.url)

It behaves as the API does for an individual user of the Bright app: `POST /auth` checks the
`applicationId` header and the password and returns `{valid, token, exp, accountId}` (401 with
`valid: false` when refused); every other call needs a token it issued and has not expired
(401 otherwise); readings answer `[unix seconds, kWh]` for each half-hour slot from `from` to
`to` it holds (for a slot whose value is unknown: 0, or null when asked with `nulls=1`;
nothing for a slot it never had), and
refuse a PT30M range longer than 10 days with 400. Tests need pytest-socket's
`socket_enabled` fixture (the Home Assistant plugin blocks sockets).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

APPLICATION_ID = "b0f1b774-a586-4f72-9edd-27ead8aa7a8d"
USERNAME = "householder@example.org"
PASSWORD = "correct horse battery staple"
METER_ENTITY_ID = "ve-0a1b2c3d"
IMPORT_ID = "res-elec-import-0001"
EXPORT_ID = "res-elec-export-0002"
GAS_ID = "res-gas-0003"
IMPORT_COST_ID = "res-elec-cost-0004"
TOKEN_LIFETIME = timedelta(days=7)
HALF_HOUR = timedelta(minutes=30)


@dataclass
class Fault:
    status: int
    body: str = ""
    retry_after: str | None = None


@dataclass
class Request:
    """A call the server saw: what a test asserts the client sent."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class GlowmarktServer:
    url: str = ""
    password: str = PASSWORD
    # token -> expiry; tokens the server has issued.
    tokens: dict[str, datetime] = field(default_factory=dict)
    readings: dict[str, dict[datetime, float | None]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    tariff_rate: float | None = 24.5
    standing_charge: float = 53.35
    # False: an account whose smart meter the DCC has not verified yet (no readings at all).
    dcc_verified: bool = True

    @classmethod
    @contextlib.asynccontextmanager
    async def started(cls) -> AsyncIterator[GlowmarktServer]:
        server = cls()
        app = web.Application()
        app.router.add_post("/api/v0-1/auth", server._auth)
        app.router.add_get("/api/v0-1/virtualentity", server._virtual_entities)
        app.router.add_get("/api/v0-1/virtualentity/{ve}/resources", server._resources)
        app.router.add_get("/api/v0-1/resource/{resource}/readings", server._readings)
        app.router.add_get("/api/v0-1/resource/{resource}/current", server._current)
        app.router.add_get("/api/v0-1/resource/{resource}/tariff", server._tariff)
        runner = web.AppRunner(app)
        await runner.setup()
        with socket.socket() as probe:  # a free port on loopback
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        server.url = f"http://127.0.0.1:{port}/api/v0-1"
        try:
            yield server
        finally:
            await runner.cleanup()

    # What tests set up.

    def set_readings(self, resource_id: str, slots: dict[datetime, float | None]) -> None:
        self.readings.setdefault(resource_id, {}).update(slots)

    def fail_next(
        self, kind: str, status: int, *, body: str = "", retry_after: str | None = None
    ) -> None:
        """The next call of `kind` (auth, virtualentity, resources, readings, current,
        tariff) answers `status` with `body` instead."""
        self.faults[kind].append(Fault(status, body, retry_after))

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (as after 7 days, or a password change)."""
        self.tokens.clear()

    def calls(self, kind: str) -> list[Request]:
        return [r for r in self.requests if _kind(r.path) == kind]

    # Handlers.

    async def _auth(self, request: web.Request) -> web.StreamResponse:
        if (fault := self._fault(request)) is not None:
            return fault
        body = await request.json()
        if request.headers.get("applicationId") != APPLICATION_ID:
            return web.json_response({"valid": False, "error": "unknown application"}, status=401)
        if body.get("username") != USERNAME or body.get("password") != self.password:
            return web.json_response(
                {"valid": False, "error": "Username or password incorrect"}, status=401
            )
        token = secrets.token_hex(16)
        expiry = datetime.now(UTC) + TOKEN_LIFETIME
        self.tokens[token] = expiry
        return web.json_response(
            {"valid": True, "token": token, "exp": int(expiry.timestamp()), "accountId": "acc-1"}
        )

    async def _virtual_entities(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refusal(request)) is not None:
            return refused
        return web.json_response(
            [
                {
                    "applicationId": APPLICATION_ID,
                    "veId": METER_ENTITY_ID,
                    "veTypeId": "ve-type-dcc",
                    "name": "DCC Sourced",
                    "postalCode": "AB1 2CD",
                }
            ]
        )

    async def _resources(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refusal(request)) is not None:
            return refused
        if request.match_info["ve"] != METER_ENTITY_ID:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(
            {
                "veId": METER_ENTITY_ID,
                "name": "DCC Sourced",
                "resources": [
                    _resource(IMPORT_ID, "electricity consumption", "electricity.consumption"),
                    _resource(IMPORT_COST_ID, "electricity cost", "electricity.consumption.cost"),
                    _resource(EXPORT_ID, "electricity export", "electricity.export"),
                    _resource(GAS_ID, "gas consumption", "gas.consumption"),
                ]
                if self.dcc_verified
                else [],
            }
        )

    async def _readings(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refusal(request)) is not None:
            return refused
        query = request.query
        start, end = _parse(query["from"]), _parse(query["to"])
        if query.get("period") != "PT30M" or end - start > timedelta(days=10):
            return web.json_response({"error": "invalid query period"}, status=400)
        slots = self.readings.get(request.match_info["resource"], {})
        # As the API: a slot without a value reads 0 unless the client asks for nulls.
        unknown = None if query.get("nulls") == "1" else 0
        data: list[list[Any]] = []
        when = start
        while when <= end:
            if when in slots:
                value = slots[when]
                data.append([int(when.timestamp()), unknown if value is None else value])
            when += HALF_HOUR
        return web.json_response(
            {
                "status": "OK",
                "resourceId": request.match_info["resource"],
                "query": dict(query),
                "data": data,
                "units": "kWh",
            }
        )

    async def _current(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refusal(request)) is not None:
            return refused
        slots = self.readings.get(request.match_info["resource"], {})
        known = sorted((w, v) for w, v in slots.items() if v is not None)
        data = [[int(known[-1][0].timestamp()), known[-1][1]]] if known else []
        return web.json_response({"data": data, "units": "kWh"})

    async def _tariff(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refusal(request)) is not None:
            return refused
        if self.tariff_rate is None:
            return web.json_response({"data": []})
        return web.json_response(
            {
                "data": [
                    {
                        "name": "Standard",
                        "commodity": "electricity",
                        "cid": "cid-1",
                        "type": "TOU",
                        "currentRates": {
                            "rate": self.tariff_rate,
                            "standingCharge": self.standing_charge,
                        },
                    }
                ]
            }
        )

    def _refusal(self, request: web.Request) -> web.StreamResponse | None:
        # Responses are mappings (empty ones are falsy): compare with None, never `or`.
        fault = self._fault(request)
        return fault if fault is not None else self._unauthorised(request)

    def _fault(self, request: web.Request) -> web.StreamResponse | None:
        self.requests.append(
            Request(request.method, request.path, dict(request.query), dict(request.headers))
        )
        queue = self.faults[_kind(request.path)]
        if not queue:
            return None
        fault = queue.popleft()
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return web.Response(
            status=fault.status,
            text=fault.body,
            headers=headers,
            content_type="application/json",
        )

    def _unauthorised(self, request: web.Request) -> web.StreamResponse | None:
        expiry = self.tokens.get(request.headers.get("token", ""))
        if request.headers.get("applicationId") != APPLICATION_ID:
            return web.json_response({"error": "unknown application"}, status=401)
        if expiry is None or expiry <= datetime.now(UTC):
            return web.json_response({"error": "token invalid or expired"}, status=401)
        return None


def _kind(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _resource(resource_id: str, name: str, classifier: str) -> dict[str, Any]:
    return {
        "resourceId": resource_id,
        "resourceTypeId": f"type-{classifier}",
        "name": name,
        "classifier": classifier,
        "description": name,
        "baseUnit": "pence" if classifier.endswith(".cost") else "kWh",
        "active": True,
    }


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def slot(text: str) -> datetime:
    """A half-hour slot start written as ISO text, in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def half_hours(start: datetime, count: int) -> list[datetime]:
    return [start + i * HALF_HOUR for i in range(count)]

"""Boot a real Home Assistant process and drive it over HTTP, as a browser or HACS user would.

    with running_hass(tmp_dir) as hass:          # fresh config dir, integration copied in,
        hass.client.get("/api/states")           # onboarded, long-lived token ready
        hass.client.ws_command({"type": "config/entity_registry/list"})
        hass.log_problems("fractal_node")        # ERROR records / tracebacks mentioning it

This is a separate process, not the pytest plugin's in-process ``hass`` fixture: it proves the
integration loads from a copied ``custom_components`` folder, through Home Assistant's own
bootstrap, HTTP server, auth and onboarding. A module that needs more YAML (automations from
blueprints, say) builds its own module-scoped fixture from
``running_hass(dir, extra_configuration=...)``; the conftest's ``real_hass`` is the plain one.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CUSTOM_COMPONENTS = REPOSITORY_ROOT / "custom_components"

# Generous: a fresh CI machine compiles every module on first import.
BOOT_LIMIT_S = 180.0
REQUEST_TIMEOUT_S = 30.0
STOP_LIMIT_S = 60.0
POLL_INTERVAL_S = 0.5
LOG_TAIL_LINES = 80

# Core settings in YAML so nothing tries to detect the location over the network. `frontend`
# (set up by default, and required: without it Home Assistant starts in recovery mode) already
# depends on api, auth, config, onboarding and websocket_api, so only `http` needs configuring.
# `default_config:` is left out on purpose: it pulls in integrations that reach the network.
CONFIGURATION_YAML = """\
homeassistant:
  name: Fractal Test Home
  time_zone: UTC
  unit_system: metric
  country: GB
  currency: GBP
  latitude: 51.5
  longitude: -0.12
  elevation: 10

http:
  server_host: 127.0.0.1
  server_port: {port}

logger:
  default: info
  logs:
{debug_loggers}

{extra}"""

LOG_RECORD_START = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (?P<level>[A-Z]+) \((?P<thread>[^)]*)\) "
    r"\[(?P<logger>[^\]]+)\] "
)


class HassBootError(RuntimeError):
    """Home Assistant did not come up, or onboarding failed."""


class HassApiError(RuntimeError):
    """An HTTP or websocket call did not return what it should have."""


@dataclass(frozen=True)
class Response:
    status: int
    body: Any  # parsed JSON, or the raw text when the body is not JSON


@dataclass(frozen=True)
class LogRecord:
    level: str
    logger: str
    text: str  # the whole record, continuation lines (tracebacks) included


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def parse_log(text: str) -> list[LogRecord]:
    """Split a home-assistant.log into records; lines that start no record continue the last."""
    records: list[LogRecord] = []
    for line in text.splitlines():
        start = LOG_RECORD_START.match(line)
        if start:
            records.append(LogRecord(start["level"], start["logger"], line))
        elif records:
            last = records[-1]
            records[-1] = LogRecord(last.level, last.logger, f"{last.text}\n{line}")
    return records


def problems_mentioning(records: list[LogRecord], needle: str) -> list[LogRecord]:
    """ERROR / CRITICAL records, and any record carrying a traceback, that mention ``needle``."""
    return [
        record
        for record in records
        if needle in record.text
        and (record.level in {"ERROR", "CRITICAL"} or "Traceback" in record.text)
    ]


def _run_in_private_loop[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine in a loop of its own, leaving the thread's current loop untouched."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


@dataclass
class HassClient:
    """REST (urllib) and websocket (aiohttp) access to one Home Assistant, as one user."""

    base_url: str
    token: str | None = None
    # No proxies: a CI proxy in the environment must never see loopback traffic.
    _opener: urllib.request.OpenerDirector = field(
        default_factory=lambda: urllib.request.build_opener(urllib.request.ProxyHandler({}))
    )

    def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        form: dict[str, str] | None = None,
    ) -> Response:
        """Any status is returned, not raised: tests assert on it."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with self._opener.open(request, timeout=REQUEST_TIMEOUT_S) as reply:
                return Response(reply.status, _decode(reply.read()))
        except urllib.error.HTTPError as error:
            return Response(error.code, _decode(error.read()))

    def get(self, path: str) -> Any:
        return _expect_ok("GET", path, self.request("GET", path))

    def post(self, path: str, payload: Any = None) -> Any:
        return _expect_ok("POST", path, self.request("POST", path, payload))

    def ws_command(self, message: dict[str, Any]) -> Any:
        """Send one websocket command on a fresh connection and return its result."""
        return _run_in_private_loop(self._ws_command(message))

    async def _ws_command(self, message: dict[str, Any]) -> Any:
        # The threaded resolver: aiodns's would start a thread that outlives the call.
        connector = aiohttp.TCPConnector(resolver=aiohttp.ThreadedResolver())
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        ws_url = self.base_url.replace("http", "ws", 1) + "/api/websocket"
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.ws_connect(ws_url) as websocket,
        ):
            await _ws_authenticate(websocket, self.token)
            await websocket.send_json({"id": 1, **message})
            reply = await websocket.receive_json()
            while reply.get("id") != 1 or reply.get("type") != "result":
                reply = await websocket.receive_json()
        if not reply["success"]:
            raise HassApiError(f"websocket {message['type']}: {reply['error']}")
        return reply["result"]

    # Conveniences over the endpoints the frontend itself uses.

    def start_config_flow(self, handler: str) -> Response:
        return self.request("POST", "/api/config/config_entries/flow", {"handler": handler})

    def submit_config_flow(self, flow_id: str, user_input: dict[str, Any]) -> Response:
        return self.request("POST", f"/api/config/config_entries/flow/{flow_id}", user_input)

    def config_entries(self, domain: str) -> list[dict[str, Any]]:
        path = f"/api/config/config_entries/entry?domain={domain}"
        entries: list[dict[str, Any]] = self.get(path)
        return entries

    def states(self) -> dict[str, dict[str, Any]]:
        return {state["entity_id"]: state for state in self.get("/api/states")}

    def entity_registry(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.ws_command({"type": "config/entity_registry/list"})
        return entries


def _decode(raw: bytes) -> Any:
    text = raw.decode(errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _expect_ok(method: str, path: str, response: Response) -> Any:
    if response.status != 200:
        raise HassApiError(f"{method} {path} -> {response.status}: {response.body!r}")
    return response.body


async def _ws_authenticate(websocket: aiohttp.ClientWebSocketResponse, token: str | None) -> None:
    greeting = await websocket.receive_json()
    if greeting["type"] != "auth_required":
        raise HassApiError(f"unexpected websocket greeting {greeting!r}")
    await websocket.send_json({"type": "auth", "access_token": token})
    answer = await websocket.receive_json()
    if answer["type"] != "auth_ok":
        raise HassApiError(f"websocket authentication failed: {answer!r}")


@dataclass
class RealHass:
    """One ``hass`` process with its configuration directory and an authenticated client."""

    config_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    client: HassClient

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.config_dir / "home-assistant.log"

    @property
    def console_path(self) -> Path:
        return self.config_dir / "console.log"

    def log_records(self) -> list[LogRecord]:
        return parse_log(self.log_path.read_text(errors="replace"))

    def log_problems(self, needle: str) -> list[LogRecord]:
        return problems_mentioning(self.log_records(), needle)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The end of home-assistant.log, or of the console when the log was never written."""
        for path in (self.log_path, self.console_path):
            if path.exists() and path.stat().st_size:
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(Home Assistant wrote no log)"

    def stop(self) -> int:
        """SIGTERM and wait for a clean shutdown; SIGKILL if it does not come."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_LIMIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def prepare_config_dir(
    config_dir: Path, port: int, integrations: tuple[str, ...], extra_configuration: str = ""
) -> None:
    """A fresh configuration with our integrations copied in, as HACS installs them."""
    config_dir.mkdir(parents=True, exist_ok=True)
    debug_loggers = "\n".join(f"    custom_components.{domain}: debug" for domain in integrations)
    (config_dir / "configuration.yaml").write_text(
        CONFIGURATION_YAML.format(
            port=port,
            debug_loggers=debug_loggers or "    homeassistant: info",
            extra=extra_configuration,
        )
    )
    for domain in integrations:
        shutil.copytree(
            CUSTOM_COMPONENTS / domain,
            config_dir / "custom_components" / domain,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )


def hass_command(config_dir: Path) -> list[str]:
    """The venv's own ``hass``; --skip-pip because every requirement is already installed."""
    hass_script = Path(sys.executable).parent / "hass"
    launcher = [str(hass_script)]
    if not hass_script.exists():
        launcher = [sys.executable, "-m", "homeassistant"]
    return [*launcher, "-c", str(config_dir), "--skip-pip", "--log-no-color"]


def start_hass(
    config_dir: Path, integrations: tuple[str, ...], extra_configuration: str = ""
) -> RealHass:
    port = free_port()
    prepare_config_dir(config_dir, port, integrations, extra_configuration)
    with (config_dir / "console.log").open("wb") as console:
        process = subprocess.Popen(
            hass_command(config_dir),
            cwd=config_dir,  # keep the repository off sys.path: only the copy may load
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
        )
    return RealHass(config_dir, port, process, HassClient(f"http://127.0.0.1:{port}"))


def wait_until(hass: RealHass, deadline: float, what: str, ready: Callable[[], bool]) -> None:
    """Poll ``ready`` until it holds; fail with the log tail if hass dies or time runs out."""
    while True:
        if hass.process.poll() is not None:
            raise HassBootError(
                f"hass exited with {hass.process.returncode} while waiting for {what}\n"
                f"{hass.log_tail()}"
            )
        if ready():
            return
        if time.monotonic() > deadline:
            raise HassBootError(f"gave up waiting for {what}\n{hass.log_tail()}")
        time.sleep(POLL_INTERVAL_S)


def _answers(client: HassClient, path: str) -> bool:
    try:
        return client.request("GET", path).status == 200
    except OSError:  # not listening yet
        return False


def _is_running(client: HassClient) -> bool:
    return bool(client.get("/api/config")["state"] == "RUNNING")


def onboard(client: HassClient) -> str:
    """Every onboarding step the frontend walks through; returns a long-lived access token."""
    client_id = f"{client.base_url}/"
    owner = {
        "name": "Fractal Tester",
        "username": "fractal",
        "password": secrets.token_urlsafe(16),
        "client_id": client_id,
        "language": "en",
    }
    auth_code = client.post("/api/onboarding/users", owner)["auth_code"]
    token_reply = client.request(
        "POST",
        "/auth/token",
        form={"grant_type": "authorization_code", "code": auth_code, "client_id": client_id},
    )
    client.token = _expect_ok("POST", "/auth/token", token_reply)["access_token"]
    client.post("/api/onboarding/core_config")
    client.post("/api/onboarding/analytics")
    client.post(
        "/api/onboarding/integration",
        {"client_id": client_id, "redirect_uri": f"{client_id}?auth_callback=1"},
    )
    long_lived: str = client.ws_command(
        {"type": "auth/long_lived_access_token", "client_name": "real_hass tests", "lifespan": 1}
    )
    return long_lived


def onboarding_steps(client: HassClient) -> dict[str, bool]:
    return {step["step"]: step["done"] for step in client.get("/api/onboarding")}


@contextmanager
def running_hass(
    config_dir: Path,
    integrations: tuple[str, ...] = ("fractal_node",),
    extra_configuration: str = "",
) -> Iterator[RealHass]:
    """Boot, onboard, yield, and always shut down.

    ``extra_configuration`` is appended to configuration.yaml (top-level YAML sections).
    """
    hass = start_hass(config_dir, integrations, extra_configuration)
    try:
        _boot(hass)
        yield hass
    finally:
        hass.stop()


def _boot(hass: RealHass) -> None:
    deadline = time.monotonic() + BOOT_LIMIT_S
    wait_until(hass, deadline, "the HTTP server", lambda: _answers(hass.client, "/api/onboarding"))
    try:
        hass.client.token = onboard(hass.client)
    except (HassApiError, OSError) as error:
        raise HassBootError(f"onboarding failed: {error}\n{hass.log_tail()}") from error
    wait_until(hass, deadline, "the RUNNING state", lambda: _is_running(hass.client))

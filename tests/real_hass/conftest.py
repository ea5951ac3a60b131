"""A real ``hass`` process per test module (see harness.py).

Tests using it are marked ``real_hass`` and ``enable_socket``. The marker alone is not enough:
pytest-homeassistant-custom-component disables sockets in every test's setup *after*
pytest-socket has honoured the marker, so sockets are enabled here again, for the boot (module
fixture) and for each test using it. The 127.0.0.1-only connect guard stays in place.
When such a test fails, the tail of home-assistant.log is attached to its report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
import pytest_socket  # type: ignore[import-untyped]

from tests.real_hass.harness import RealHass, running_hass


@pytest.fixture(scope="module")
def real_hass(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealHass]:
    """Booted once per module: fresh config dir, fractal_node copied in, fully onboarded.

    After the module, hass must stop cleanly on SIGTERM with nothing logged against the
    integration while it unloads.
    """
    pytest_socket.enable_socket()
    with running_hass(tmp_path_factory.mktemp("real_hass") / "config") as hass:
        yield hass
    assert hass.process.returncode == 0, f"hass exited with {hass.process.returncode}"
    problems = hass.log_problems("fractal_node")
    assert not problems, "\n\n".join(record.text for record in problems)


@pytest.fixture(autouse=True)
def _loopback_sockets_for_real_hass(request: pytest.FixtureRequest) -> None:
    if "real_hass" in request.fixturenames:
        pytest_socket.enable_socket()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    hass = getattr(item, "funcargs", {}).get("real_hass")
    if report.failed and isinstance(hass, RealHass):
        report.sections.append(("home-assistant.log (tail)", hass.log_tail()))
    return report

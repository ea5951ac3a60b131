"""One real embedded aggregator (mosquitto + shadow service) shared by the broker tests here.

The ``enable_socket`` marker alone does not survive pytest-homeassistant-custom-component,
which disables sockets in every test's setup after pytest-socket honoured the marker; tests
using the aggregator get loopback sockets back through pytest-socket's ``socket_enabled``
fixture (the 127.0.0.1-only connect guard stays). CRT clients are stopped and waited for by the
helpers in tests/support/local_aggregator.py, and awscrt's callback threads appear to Python
only as ``_DummyThread``s, which the plugin's cleanup check accepts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.local_aggregator import LocalAggregator, NodeCredentials


@pytest.fixture(scope="session")
def aggregator() -> Iterator[LocalAggregator]:
    with LocalAggregator.started() as running:
        yield running


@pytest.fixture(autouse=True)
def _loopback_sockets(request: pytest.FixtureRequest) -> None:
    if "aggregator" in request.fixturenames or "enable_socket" in request.keywords:
        request.getfixturevalue("socket_enabled")


@pytest.fixture
def node(aggregator: LocalAggregator) -> NodeCredentials:
    """A freshly enrolled node with a unique id, so tests never share a shadow."""
    return aggregator.enroll(f"home-{uuid.uuid4().hex[:10]}")

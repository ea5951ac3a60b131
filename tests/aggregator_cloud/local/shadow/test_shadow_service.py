"""The shadow service's routing between topics and the engine (the transport is a list here;
the real broker path is covered by the contract tests one directory up)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aggregator_cloud.local.shadow.service import ShadowRequest, ShadowService, parse_request_topic
from aggregator_cloud.local.shadow.store import ShadowStore


class Published:
    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []

    async def __call__(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, json.loads(payload)))

    @property
    def topics(self) -> list[str]:
        return [topic for topic, _ in self.messages]


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def service(tmp_path: Path, published: Published) -> ShadowService:
    store = ShadowStore(tmp_path / "shadows.sqlite3")
    yield ShadowService(store, published)
    store.close()


@pytest.mark.parametrize(
    ("topic", "request_"),
    [
        ("$aws/things/home-1/shadow/get", ShadowRequest("home-1", "", "get")),
        ("$aws/things/home-1/shadow/name/plan/update", ShadowRequest("home-1", "plan", "update")),
        ("$aws/things/home-1/shadow/delete", ShadowRequest("home-1", "", "delete")),
        ("$aws/things/home-1/shadow/update/accepted", None),
        ("$aws/things/home-1/shadow/name/plan", None),
        ("fractal/anything", None),
    ],
)
def test_request_topics_are_recognised(topic: str, request_: ShadowRequest | None) -> None:
    assert parse_request_topic(topic) == request_
    if request_ is not None:
        assert request_.topic == topic


async def test_an_update_publishes_accepted_delta_then_documents(
    service: ShadowService, published: Published
) -> None:
    topic = "$aws/things/home-1/shadow/name/plan/update"
    await service.handle_message(topic, b'{"state": {"desired": {"plan": 1}}}')
    assert published.topics == [f"{topic}/accepted", f"{topic}/delta", f"{topic}/documents"]


async def test_errors_go_to_rejected(service: ShadowService, published: Published) -> None:
    await service.handle_message("$aws/things/home-1/shadow/get", b"")
    [(topic, answer)] = published.messages
    assert topic == "$aws/things/home-1/shadow/get/rejected"
    assert answer["code"] == 404


async def test_a_failing_store_answers_500_and_the_service_keeps_running(
    service: ShadowService, published: Published
) -> None:
    service.store.close()  # every query now raises
    await service.handle_message("$aws/things/home-1/shadow/update", b'{"state": {}}')
    [(topic, answer)] = published.messages
    assert topic == "$aws/things/home-1/shadow/update/rejected"
    assert (answer["code"], answer["message"]) == (500, "Internal service failure")


async def test_messages_on_other_topics_are_ignored(
    service: ShadowService, published: Published
) -> None:
    await service.handle_message("$aws/things/home-1/shadow/update/accepted", b"{}")
    assert published.messages == []

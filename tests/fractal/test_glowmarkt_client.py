"""The Glowmarkt client against a real local HTTP server replaying the documented API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from fractal.glowmarkt import (
    BACKOFF_FIRST,
    Classifier,
    GlowmarktAuthError,
    GlowmarktClient,
    GlowmarktConnectionError,
    GlowmarktRateLimited,
    GlowmarktResponseError,
    GlowmarktServerError,
    HourTotal,
    Reading,
    Tariff,
    complete_hours,
    floor_half_hour,
    floor_hour,
    split_range,
)

from tests.support.glowmarkt_server import (
    APPLICATION_ID,
    EXPORT_ID,
    GAS_ID,
    IMPORT_ID,
    PASSWORD,
    USERNAME,
    GlowmarktServer,
    half_hours,
    slot,
)


@pytest.fixture
async def api(socket_enabled: None) -> AsyncIterator[GlowmarktServer]:
    async with GlowmarktServer.started() as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


class Sleeps:
    """Records the waits the client asks for (and does not make the test wait)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client_for(
    api: GlowmarktServer, session: aiohttp.ClientSession, password: str = PASSWORD, **kw: object
) -> GlowmarktClient:
    return GlowmarktClient(session, USERNAME, password, base_url=api.url, **kw)  # type: ignore[arg-type]


async def test_login_returns_the_token_expiry_and_sends_the_bright_app_id(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    expiry = await client_for(api, session).login()

    assert expiry > datetime.now(UTC) + timedelta(days=6)
    (call,) = api.calls("auth")
    assert call.method == "POST"
    assert call.headers["applicationId"] == APPLICATION_ID


async def test_a_refused_password_is_an_auth_error(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(GlowmarktAuthError):
        await client_for(api, session, password="wrong").login()


async def test_a_login_answer_without_valid_true_is_refused(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    api.fail_next("auth", 200, body='{"valid": false}')
    with pytest.raises(GlowmarktAuthError):
        await client_for(api, session).login()


async def test_a_login_answer_without_token_is_malformed(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    api.fail_next("auth", 200, body='{"valid": true, "exp": 1}')
    with pytest.raises(GlowmarktResponseError, match="no token"):
        await client_for(api, session).login()


async def test_resources_of_every_virtual_entity_with_the_supported_ones_marked(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    resources = await client_for(api, session).resources()

    by_id = {r.resource_id: r for r in resources}
    assert by_id[IMPORT_ID].classifier == Classifier.ELECTRICITY_IMPORT
    assert by_id[EXPORT_ID].classifier == Classifier.ELECTRICITY_EXPORT
    assert by_id[GAS_ID].classifier == Classifier.GAS
    assert [r.resource_id for r in resources if r.supported] == [IMPORT_ID, EXPORT_ID, GAS_ID]
    assert {r.entity_name for r in resources} == {"DCC Sourced"}
    assert all(c.headers["token"] for c in api.calls("resources"))  # logged in on first use


async def test_readings_keep_gaps_as_gaps_and_zeros_as_zeros(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    start = slot("2026-11-01T00:00:00")
    api.set_readings(
        IMPORT_ID,
        {
            start: 0.25,
            start + timedelta(minutes=30): 0.0,  # nothing imported: a real zero
            start + timedelta(minutes=60): None,  # not delivered by the DCC (yet): a gap
            # 01:30 never reported: a gap
            start + timedelta(minutes=120): 0.5,
            start + timedelta(hours=3): 0.3,  # the range ends here: not asked for
        },
    )

    readings = await client_for(api, session).readings(IMPORT_ID, start, start + timedelta(hours=3))

    assert readings == [
        Reading(start, 0.25),
        Reading(start + timedelta(minutes=30), 0.0),
        Reading(start + timedelta(minutes=120), 0.5),
    ]
    (call,) = api.calls("readings")
    assert call.query == {
        "from": "2026-11-01T00:00:00",
        "to": "2026-11-01T03:00:00",
        "period": "PT30M",
        "function": "sum",
        "offset": "0",
        "nulls": "1",
    }


async def test_a_long_range_is_fetched_in_ten_day_requests_without_overlap(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    start = slot("2026-10-01T00:00:00")
    slots = half_hours(start, 25 * 48)  # 25 days
    api.set_readings(IMPORT_ID, dict.fromkeys(slots, 0.1))

    readings = await client_for(api, session).readings(
        IMPORT_ID, start + timedelta(minutes=7), start + timedelta(days=25, minutes=10)
    )

    assert [r.start for r in readings] == slots  # every slot once, snapped to the half-hour
    ranges = [(c.query["from"], c.query["to"]) for c in api.calls("readings")]
    assert ranges == [
        ("2026-10-01T00:00:00", "2026-10-11T00:00:00"),
        ("2026-10-11T00:00:00", "2026-10-21T00:00:00"),
        ("2026-10-21T00:00:00", "2026-10-26T00:00:00"),
    ]


async def test_an_expired_token_is_renewed_once_and_the_call_repeated(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    client = client_for(api, session)
    await client.resources()
    api.expire_tokens()

    resources = await client.resources()

    assert len(resources) == 4
    assert len(api.calls("auth")) == 2


async def test_a_password_changed_since_login_is_an_auth_error(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    client = client_for(api, session)
    await client.login()
    api.password = "changed in the Bright app"
    api.expire_tokens()

    with pytest.raises(GlowmarktAuthError):
        await client.resources()


async def test_a_token_near_its_expiry_is_renewed_before_use(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    clock = [datetime.now(UTC)]
    client = client_for(api, session, now=lambda: clock[0])
    await client.resources()
    clock[0] += timedelta(days=7)  # the token the server gave lives 7 days

    await client.tariff(IMPORT_ID)

    assert len(api.calls("auth")) == 2
    assert len(api.calls("tariff")) == 1  # renewed before the call, not after a refusal


async def test_429_waits_the_retry_after_it_was_given(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    api.fail_next("tariff", 429, retry_after="7")

    tariff = await client_for(api, session, sleep=sleeps).tariff(IMPORT_ID)

    assert tariff == Tariff(24.5, 53.35)
    assert sleeps.waits == [7.0]
    assert len(api.calls("tariff")) == 2


async def test_429_without_retry_after_backs_off_exponentially_then_gives_up(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    for _ in range(4):
        api.fail_next("tariff", 429)

    with pytest.raises(GlowmarktRateLimited) as raised:
        await client_for(api, session, sleep=sleeps).tariff(IMPORT_ID)

    assert sleeps.waits == [BACKOFF_FIRST, BACKOFF_FIRST * 2, BACKOFF_FIRST * 4]
    assert raised.value.retry_after == BACKOFF_FIRST * 8


async def test_an_unreadable_retry_after_backs_off_instead(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    api.fail_next("tariff", 429, retry_after="Wed, 21 Oct 2026 07:28:00 GMT")

    assert await client_for(api, session, sleep=sleeps).tariff(IMPORT_ID) is not None
    assert sleeps.waits == [BACKOFF_FIRST]


async def test_a_long_retry_after_is_handed_to_the_caller_not_waited(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    sleeps = Sleeps()
    api.fail_next("tariff", 429, retry_after="3600")

    with pytest.raises(GlowmarktRateLimited) as raised:
        await client_for(api, session, sleep=sleeps).tariff(IMPORT_ID)

    assert raised.value.retry_after == 3600
    assert sleeps.waits == []


async def test_a_server_error_is_typed_with_its_status(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    api.fail_next("readings", 500, body='{"error": "internal"}')
    start = slot("2026-11-01T00:00:00")

    with pytest.raises(GlowmarktServerError) as raised:
        await client_for(api, session).readings(IMPORT_ID, start, start + timedelta(hours=1))

    assert raised.value.status == 500


@pytest.mark.parametrize(
    "body",
    [
        "<html>Bad gateway</html>",
        '{"units": "kWh"}',
        '{"data": [[1700000000]]}',
        '{"data": [["yesterday", 1.0]]}',
        '{"data": [[1700000000, "1.0"]]}',
    ],
)
async def test_malformed_readings_are_a_response_error(
    api: GlowmarktServer, session: aiohttp.ClientSession, body: str
) -> None:
    api.fail_next("readings", 200, body=body)
    start = slot("2026-11-01T00:00:00")

    with pytest.raises(GlowmarktResponseError):
        await client_for(api, session).readings(IMPORT_ID, start, start + timedelta(hours=1))


async def test_malformed_resources_and_tariffs_are_response_errors(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    client = client_for(api, session)
    api.fail_next("virtualentity", 200, body='{"veId": "not a list"}')
    with pytest.raises(GlowmarktResponseError):
        await client.resources()
    api.fail_next("virtualentity", 200, body='[{"name": "no id"}]')
    with pytest.raises(GlowmarktResponseError, match="veId"):
        await client.resources()
    api.fail_next("resources", 200, body='{"resources": [{"name": "no id"}]}')
    with pytest.raises(GlowmarktResponseError, match="resourceId"):
        await client.resources()
    api.fail_next("tariff", 200, body='{"data": [{"currentRates": {"rate": null}}]}')
    with pytest.raises(GlowmarktResponseError, match="rate"):
        await client.tariff(IMPORT_ID)


async def test_tariff_absent_and_current_reading(
    api: GlowmarktServer, session: aiohttp.ClientSession
) -> None:
    client = client_for(api, session)
    api.tariff_rate = None
    assert await client.tariff(IMPORT_ID) is None
    assert await client.current(IMPORT_ID) is None  # no readings yet

    api.set_readings(IMPORT_ID, {slot("2026-11-01T10:00:00"): 0.4})
    current = await client.current(IMPORT_ID)

    assert current is not None
    assert (current.time, current.value, current.units) == (
        slot("2026-11-01T10:00:00"),
        0.4,
        "kWh",
    )


async def test_an_unreachable_api_is_a_connection_error(
    socket_enabled: None, session: aiohttp.ClientSession
) -> None:
    # Nothing listens on port 9 of loopback (discard), so the connection is refused.
    client = GlowmarktClient(session, USERNAME, PASSWORD, base_url="http://127.0.0.1:9/api")
    with pytest.raises(GlowmarktConnectionError):
        await client.login()


def test_half_hours_and_ranges() -> None:
    assert floor_half_hour(datetime(2026, 11, 1, 10, 59, 59, 9, UTC)) == datetime(
        2026, 11, 1, 10, 30, tzinfo=UTC
    )
    assert floor_hour(datetime(2026, 11, 1, 10, 59, 59, 9, UTC)) == datetime(
        2026, 11, 1, 10, tzinfo=UTC
    )
    start = datetime(2026, 11, 1, tzinfo=UTC)
    assert split_range(start, start, timedelta(days=10)) == []
    assert split_range(start, start + timedelta(days=10), timedelta(days=10)) == [
        (start, start + timedelta(days=10))
    ]


def readings_at(*slots: str) -> list[Reading]:
    return [Reading(slot(f"2026-11-01T{when}:00"), 0.25) for when in slots]


def hour(when: str, kwh: float = 0.5) -> HourTotal:
    return HourTotal(slot(f"2026-11-01T{when}:00"), kwh)


START = slot("2026-11-01T00:00:00")
LONG_AGO = slot("2026-11-02T12:00:00")  # everything on the 1st is settled
JUST_NOW = slot("2026-11-01T00:00:00")  # nothing on the 1st is settled


def test_complete_hours_sum_both_halves_and_stop_where_data_ends() -> None:
    readings = readings_at("00:00", "00:30", "01:00", "01:30", "02:00")  # 02:30 still to come

    assert complete_hours(readings, START, settled_before=LONG_AGO) == [
        hour("00:00"),
        hour("01:00"),
    ]
    assert complete_hours([], START, settled_before=LONG_AGO) == []


def test_a_settled_incomplete_hour_with_later_data_is_a_gap() -> None:
    # 01:30 never came, nor anything from 02:00 to 03:00, and the data has moved on since.
    readings = readings_at("00:00", "00:30", "01:00", "03:00", "03:30")

    assert complete_hours(readings, START, settled_before=LONG_AGO) == [
        hour("00:00"),
        hour("03:00"),
    ]


def test_a_recent_incomplete_hour_is_waited_for() -> None:
    readings = readings_at("00:00", "00:30", "01:00", "02:00", "02:30")

    assert complete_hours(readings, START, settled_before=JUST_NOW) == [hour("00:00")]


def test_an_incomplete_last_hour_is_waited_for_however_old() -> None:
    # Nothing after it has come: the DCC may be behind (an outage), not missing it.
    readings = readings_at("00:00", "00:30", "01:00")

    assert complete_hours(readings, START, settled_before=LONG_AGO) == [hour("00:00")]

"""`serve` keeps everything in its data directory: shadows, CA and enrolments survive a restart,
and a stop leaves nothing running."""

from __future__ import annotations

import json
import socket
import stat

import pytest
from awsiot import iotshadow

from tests.support.local_aggregator import (
    TIMEOUT,
    LocalAggregator,
    iot_data,
    mqtt5_client,
    shadow_client_v2,
)


@pytest.mark.enable_socket
def test_serve_restarts_with_its_data_and_stops_cleanly() -> None:
    with LocalAggregator.started() as aggregator:
        node = aggregator.enroll("home-restart")
        with mqtt5_client(aggregator, node) as (client, _):
            shadow = shadow_client_v2(client)
            state = iotshadow.ShadowState(reported={"soc": 55, "slots": [1, 2]})
            shadow.update_shadow(
                iotshadow.UpdateShadowRequest(thing_name=node.node_id, state=state)
            ).result(TIMEOUT)
        iot_data(aggregator).update_thing_shadow(
            thingName=node.node_id,
            shadowName="plan",
            payload=json.dumps({"state": {"desired": {"plan": {"id": "p1"}}}}),
        )

        aggregator.restart()

        with mqtt5_client(aggregator, node) as (client, _):  # same certificate, same CA
            shadow = shadow_client_v2(client)
            classic = shadow.get_shadow(iotshadow.GetShadowRequest(thing_name=node.node_id)).result(
                TIMEOUT
            )
            updated = shadow.update_shadow(
                iotshadow.UpdateShadowRequest(
                    thing_name=node.node_id, state=iotshadow.ShadowState(reported={"soc": 56})
                )
            ).result(TIMEOUT)
        plan = json.loads(
            iot_data(aggregator)
            .get_thing_shadow(thingName=node.node_id, shadowName="plan")["payload"]
            .read()
        )
        assert stat.S_IMODE(aggregator.data_dir.stat().st_mode) == 0o711
        assert stat.S_IMODE((aggregator.data_dir / "shadows.sqlite3").stat().st_mode) == 0o600
        ports = (aggregator.mqtt_port, aggregator.http_port)
        status = aggregator.stop()
        assert status == 0
        assert not (aggregator.data_dir / "runtime.json").exists()
        for port in ports:
            with (
                pytest.raises(ConnectionRefusedError),
                socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT),
            ):
                pass
    assert classic.state.reported == {"soc": 55, "slots": [1, 2]}
    assert updated.version == 2
    assert plan["state"]["desired"] == {"plan": {"id": "p1"}}

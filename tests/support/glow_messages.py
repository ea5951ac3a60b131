"""Glow CAD messages in the format the CAD publishes on local MQTT.

The shapes (keys, units, pounds for prices, the STATE document) follow messages recorded from
real CADs and posted publicly: the OpenEnergyMonitor forum thread "Glow IHD with Local MQTT"
(community.openenergymonitor.org/t/glow-ihd-with-local-mqtt/20689, electricity and gas, June
2022) and an energy2mysql logger's recorded electricity, gas and STATE messages (January 2023,
software v1.8.13, GLOW-IHD-01-1v4-SMETS2). Values here are made up; the shapes are not.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiomqtt

DEVICE_ID = "4C11AEADF118"
OTHER_DEVICE_ID = "E8DB84A1C0DE"
SENTINEL_KW = -8388.608  # 0x800000 as a signed 24-bit number of W, in kW


def electricity_topic(device_id: str = DEVICE_ID) -> str:
    return f"glow/{device_id}/SENSOR/electricitymeter"


def gas_topic(device_id: str = DEVICE_ID) -> str:
    return f"glow/{device_id}/SENSOR/gasmeter"


def state_topic(device_id: str = DEVICE_ID) -> str:
    return f"glow/{device_id}/STATE"


def electricity(
    timestamp: str,
    *,
    import_kwh: float = 4595.563,
    export_kwh: float = 12.5,
    power_kw: float = 0.623,
    unitrate: float = 0.3,
    standingcharge: float = 0.4457,
) -> bytes:
    return _json(
        {
            "electricitymeter": {
                "timestamp": timestamp,
                "energy": {
                    "export": {"cumulative": export_kwh, "units": "kWh"},
                    "import": {
                        "cumulative": import_kwh,
                        "day": 10.464,
                        "week": 85.675,
                        "month": 512.937,
                        "units": "kWh",
                        "mpan": "1100018347997",
                        "supplier": "Octopus Energy",
                        "price": {"unitrate": unitrate, "standingcharge": standingcharge},
                    },
                },
                "power": {"value": power_kw, "units": "kW"},
            }
        }
    )


def gas(timestamp: str, *, import_kwh: float = 7063.546, volume_m3: float = 629.514) -> bytes:
    return _json(
        {
            "gasmeter": {
                "timestamp": timestamp,
                "energy": {
                    "import": {
                        "cumulative": import_kwh,
                        "day": 49.464,
                        "week": 290.707,
                        "month": 344.933,
                        "units": "kWh",
                        "cumulativevol": volume_m3,
                        "cumulativevolunits": "m3",
                        "dayvol": 49.464,
                        "weekvol": 290.707,
                        "monthvol": 344.933,
                        "dayweekmonthvolunits": "kWh",
                        "mprn": "2188127003",
                        "supplier": "---",
                        "price": {"unitrate": 0.1024, "standingcharge": 0.2684},
                    }
                },
            }
        }
    )


def state(
    timestamp: str,
    device_id: str = DEVICE_ID,
    *,
    rssi: int = -47,
    lqi: int = 212,
    status: str = "joined",
) -> bytes:
    return _json(
        {
            "software": "v1.8.13",
            "timestamp": timestamp,
            "hardware": "GLOW-IHD-01-1v4-SMETS2",
            "wifistamac": device_id,
            "ethmac": "4C11AEADF11B",
            "smetsversion": "SMETS2",
            "eui": "70:B3:D5:21:E0:00:E7:8E",
            "zigbee": "1.2.5",
            "han": {"rssi": rssi, "status": status, "lqi": lqi},
        }
    )


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def broker_directory() -> Path:
    """A directory for a test mosquitto (started as root, it drops to its own user)."""
    directory = Path(tempfile.mkdtemp(prefix="glow-broker-"))
    directory.chmod(0o711)
    return directory


async def publish(
    port: int,
    *messages: tuple[str, bytes],
    retain: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> None:
    """Publish as a CAD would (QoS 1, so each is on the broker when this returns)."""
    async with aiomqtt.Client("127.0.0.1", port, username=username, password=password) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1, retain=retain)


def password_file(directory: Path, username: str, password: str) -> Path:
    """A mosquitto password file with one user (for `PlainMosquitto(password_file=...)`)."""
    path = directory / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(path), username, password],
        check=True,
        capture_output=True,
    )
    path.chmod(0o644)
    return path

"""An in-process Zigbee radio for zigpy, with simulated meters on the other side of it.

`FakeRadio` is a real zigpy `ControllerApplication` whose "air" is a Python dict: packets zigpy
sends go to the simulated device addressed, which parses the ZCL frame and answers with real
ZCL bytes (a `Read_Attributes_rsp`), fed back through `packet_received` exactly as a radio
library (bellows, zigpy-znp) does. `SimulatedMeter.report` sends a real `Report_Attributes`
frame the same way. Everything above the radio — zigpy's device, endpoint, cluster, frame
parsing, request/response matching and attribute cache — is zigpy's own code.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import zigpy.application  # type: ignore[import-untyped]
import zigpy.config  # type: ignore[import-untyped]
import zigpy.endpoint  # type: ignore[import-untyped]
import zigpy.exceptions  # type: ignore[import-untyped]
import zigpy.profiles.zha  # type: ignore[import-untyped]
import zigpy.state  # type: ignore[import-untyped]
import zigpy.types as t  # type: ignore[import-untyped]
import zigpy.zdo.types as zdo_t  # type: ignore[import-untyped]
from zigpy.zcl import foundation  # type: ignore[import-untyped]
from zigpy.zcl.clusters.homeautomation import (  # type: ignore[import-untyped]
    ElectricalMeasurement,
)
from zigpy.zcl.clusters.smartenergy import Metering  # type: ignore[import-untyped]

LOGGER = logging.getLogger(__name__)
COORDINATOR_IEEE = "00:12:4b:00:00:00:00:01"
CLUSTERS = {Metering.cluster_id: Metering, ElectricalMeasurement.cluster_id: ElectricalMeasurement}
HA_PROFILE = 260
NO_ROUTE = "no route to the device (MAC ACK failure)"  # what the radio says for a lost device


@dataclass
class SimulatedMeter:
    """A Zigbee device on endpoint 1 with Metering and/or Electrical Measurement servers.

    `attributes[cluster_id][name]` is what it answers; an attribute it lacks is answered
    UNSUPPORTED_ATTRIBUTE, as a real device does. `reachable=False`: the radio cannot deliver.
    """

    ieee: str
    nwk: int
    manufacturer: str
    model: str
    attributes: dict[int, dict[str, Any]]
    reachable: bool = True
    reads: list[tuple[int, list[str]]] = field(default_factory=list)  # (cluster, names) asked
    # The device's own transaction numbers for what it sends unasked (reports). zigpy takes a
    # frame whose number matches one of its own pending requests for that request's answer.
    next_tsn: int = 0xA0

    def answer(self, packet: Any) -> Any | None:
        """The device's reply to a frame zigpy sent it, or None (nothing to answer)."""
        header, payload = foundation.ZCLHeader.deserialize(packet.data.serialize())
        if header.frame_control.frame_type != foundation.FrameType.GLOBAL_COMMAND:
            return None
        if header.command_id != foundation.GeneralCommand.Read_Attributes:
            return None  # e.g. the Default_Response zigpy sends after a report
        schema = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Read_Attributes].schema
        request, _ = schema.deserialize(payload)
        cluster_type = CLUSTERS[packet.cluster_id]
        names = [cluster_type.attributes[attrid].name for attrid in request.attribute_ids]
        self.reads.append((packet.cluster_id, names))
        records = [self._record(cluster_type, attrid) for attrid in request.attribute_ids]
        return self._frame(
            packet.cluster_id,
            header.tsn,
            foundation.GeneralCommand.Read_Attributes_rsp,
            foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Read_Attributes_rsp].schema(
                status_records=records
            ),
        )

    def report(self, cluster_id: int, values: dict[str, Any]) -> Any:
        """A Report_Attributes frame carrying `values` (attribute name -> raw value)."""
        tsn, self.next_tsn = self.next_tsn, (self.next_tsn + 1) % 256
        cluster_type = CLUSTERS[cluster_id]
        reports = []
        for name, value in values.items():
            definition = cluster_type.attributes_by_name[name]
            reports.append(
                foundation.Attribute(
                    attrid=definition.id,
                    value=foundation.TypeValue(
                        type=definition.zcl_type, value=definition.type(value)
                    ),
                )
            )
        command = foundation.GENERAL_COMMANDS[foundation.GeneralCommand.Report_Attributes]
        return self._frame(
            cluster_id,
            tsn,
            foundation.GeneralCommand.Report_Attributes,
            command.schema(attribute_reports=reports),
        )

    def raw_frame(self, cluster_id: int, data: bytes) -> Any:
        """Whatever bytes a confused or corrupted device sends."""
        return self._packet(cluster_id, data)

    def _record(self, cluster_type: Any, attrid: int) -> Any:
        definition = cluster_type.attributes[attrid]
        value = self.attributes.get(cluster_type.cluster_id, {}).get(definition.name)
        if value is None:
            return foundation.ReadAttributeRecord(
                attrid=attrid, status=foundation.Status.UNSUPPORTED_ATTRIBUTE
            )
        return foundation.ReadAttributeRecord(
            attrid=attrid,
            status=foundation.Status.SUCCESS,
            value=foundation.TypeValue(type=definition.zcl_type, value=definition.type(value)),
        )

    def _frame(self, cluster_id: int, tsn: int, command_id: int, command: Any) -> Any:
        header = foundation.ZCLHeader(
            frame_control=foundation.FrameControl(
                frame_type=foundation.FrameType.GLOBAL_COMMAND,
                is_manufacturer_specific=False,
                direction=foundation.Direction.Server_to_Client,
                disable_default_response=True,
                reserved=0,
            ),
            tsn=tsn,
            command_id=command_id,
        )
        return self._packet(cluster_id, header.serialize() + command.serialize())

    def _packet(self, cluster_id: int, data: bytes) -> Any:
        return t.ZigbeePacket(
            src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=t.NWK(self.nwk)),
            src_ep=1,
            dst=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=t.NWK(0x0000)),
            dst_ep=1,
            tsn=0,
            profile_id=HA_PROFILE,
            cluster_id=cluster_id,
            data=t.SerializableBytes(data),
            lqi=200,
            rssi=-60,
        )


class FakeRadio(zigpy.application.ControllerApplication):  # type: ignore[misc]
    """A zigpy application whose radio is in this process."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.meters: dict[int, SimulatedMeter] = {}  # by NWK address
        self.state.node_info = zigpy.state.NodeInfo(
            nwk=t.NWK(0x0000),
            ieee=t.EUI64.convert(COORDINATOR_IEEE),
            logical_type=zdo_t.LogicalType.Coordinator,
        )

    @classmethod
    def create(cls) -> FakeRadio:
        return cls(
            {
                zigpy.config.CONF_DATABASE: None,
                zigpy.config.CONF_DEVICE: {zigpy.config.CONF_DEVICE_PATH: "/dev/fake-radio"},
                zigpy.config.CONF_OTA: {zigpy.config.CONF_OTA_ENABLED: False},
            }
        )

    def join(self, meter: SimulatedMeter) -> Any:
        """The meter as a paired, interviewed zigpy device."""
        self.meters[meter.nwk] = meter
        device = self.add_device(t.EUI64.convert(meter.ieee), t.NWK(meter.nwk))
        device.node_desc = _node_descriptor(zdo_t.LogicalType.Router)
        endpoint = device.add_endpoint(1)
        endpoint.status = zigpy.endpoint.Status.ZDO_INIT
        endpoint.profile_id = HA_PROFILE
        endpoint.device_type = zigpy.profiles.zha.DeviceType.METER_INTERFACE
        for cluster_id in meter.attributes:
            endpoint.add_input_cluster(cluster_id)
        device.manufacturer = meter.manufacturer
        device.model = meter.model
        return device

    def receive(self, packet: Any) -> None:
        """A frame arrives over the air. Like bellows' callback loop, a frame zigpy cannot even
        parse the header of is logged and the radio carries on."""
        try:
            self.packet_received(packet)
        except Exception:
            LOGGER.exception("Exception running handler")

    async def send_packet(self, packet: Any) -> None:
        if packet.dst.addr_mode == t.AddrMode.Broadcast:
            return  # e.g. ZHA closing joins at start: on the air, nobody answers
        meter = self.meters.get(int(packet.dst.address))
        if meter is None or not meter.reachable:
            raise zigpy.exceptions.DeliveryError(NO_ROUTE)
        reply = meter.answer(packet)
        if reply is not None:
            # Like a radio: the reply arrives later, from the radio's own read loop.
            asyncio.get_running_loop().call_soon(self.packet_received, reply)

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def start_network(self) -> None:
        """The coordinator is a device of its own network (ZHA looks it up at start)."""
        coordinator = self.add_device(self.state.node_info.ieee, self.state.node_info.nwk)
        coordinator.node_desc = _node_descriptor(zdo_t.LogicalType.Coordinator)
        endpoint = coordinator.add_endpoint(1)
        endpoint.status = zigpy.endpoint.Status.ZDO_INIT
        endpoint.profile_id = HA_PROFILE
        coordinator.manufacturer, coordinator.model = "Fractal", "In-process radio"

    async def force_remove(self, dev: Any) -> None:
        pass

    async def add_endpoint(self, descriptor: Any) -> None:
        pass

    async def permit_ncp(self, time_s: int = 60) -> None:
        pass

    async def permit_with_link_key(self, node: Any, link_key: Any, time_s: int = 60) -> None:
        pass

    async def reset_network_info(self) -> None:
        pass

    async def write_network_info(self, *, network_info: Any, node_info: Any) -> None:
        pass

    async def load_network_info(self, *, load_devices: bool = False) -> None:
        pass


def _node_descriptor(logical_type: Any) -> Any:
    return zdo_t.NodeDescriptor(
        logical_type=logical_type,
        complex_descriptor_available=0,
        user_descriptor_available=0,
        reserved=0,
        aps_flags=0,
        frequency_band=zdo_t.NodeDescriptor.FrequencyBand.Freq2400MHz,
        mac_capability_flags=zdo_t.NodeDescriptor.MACCapabilityFlags.AllocateAddress,
        manufacturer_code=0x1234,
        maximum_buffer_size=82,
        maximum_incoming_transfer_size=82,
        server_mask=0,
        maximum_outgoing_transfer_size=82,
        descriptor_capability_field=zdo_t.NodeDescriptor.DescriptorCapability.NONE,
    )


def clamp_meter(**attributes: Any) -> SimulatedMeter:
    """A CT clamp with a Metering cluster: W from kW x 1/1000, kWh x 1/1000 by default."""
    metering = {
        "multiplier": 1,
        "divisor": 1000,
        "unit_of_measure": 0,
        "instantaneous_demand": 1234,
        "current_summ_delivered": 5_000_000,
        "current_summ_received": 250_000,
    } | attributes
    return SimulatedMeter(
        ieee="00:0d:6f:00:0a:bc:de:01",
        nwk=0x1A2B,
        manufacturer="Develco Products A/S",
        model="ZHEMI101",
        attributes={Metering.cluster_id: metering},
    )


def smart_plug(**attributes: Any) -> SimulatedMeter:
    """A smart plug with Electrical Measurement (W / 10, V, mA) and a Metering summation.

    A make and model without a zhaquirks quirk: ZHA would otherwise replace its clusters."""
    electrical = {
        "ac_power_multiplier": 1,
        "ac_power_divisor": 10,
        "ac_voltage_multiplier": 1,
        "ac_voltage_divisor": 1,
        "ac_current_multiplier": 1,
        "ac_current_divisor": 1000,
        "active_power": 2345,
        "rms_voltage": 241,
        "rms_current": 9800,
    } | attributes
    return SimulatedMeter(
        ieee="54:ef:44:10:00:11:22:33",
        nwk=0x3C4D,
        manufacturer="Generic",
        model="Smart plug 16A",
        attributes={
            ElectricalMeasurement.cluster_id: electrical,
            Metering.cluster_id: {"multiplier": 1, "divisor": 100, "current_summ_delivered": 12345},
        },
    )

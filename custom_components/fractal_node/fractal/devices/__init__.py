"""Modbus devices as data: register maps, one client per gateway, merged reads, safe writes.

The Home Assistant integration is a thin shell over this package: it builds a `Gateway` per
endpoint, a `Device` per unit id with a `RegisterMap`, calls `poll(group)` on each group's
interval and `write(name, value)` for set-points, and shows `Device.availability`.
"""

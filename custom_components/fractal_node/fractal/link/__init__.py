"""The node's link to its aggregator over the AWS IoT device-shadow protocol.

`buffer` keeps telemetry on disk until the aggregator has it; `reporting` decides when to
spend a shadow update and how long to wait before retrying; `plan_inbox` turns what arrives in
the `plan` named shadow into an acknowledgement; `shadow_link` runs it all over awsiotsdk.
"""

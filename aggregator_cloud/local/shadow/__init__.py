"""An AWS-IoT-faithful device shadow service: a pure engine plus MQTT and REST fronts."""

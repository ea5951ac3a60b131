"""The embedded aggregator runtime: certificate authority, mosquitto broker, shadow service."""

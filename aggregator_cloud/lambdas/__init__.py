"""The AWS Lambda entry points: thin adapters over the handler functions the local runtime
calls (`aggregator_cloud.handlers`), with DynamoDB, S3, SQS and `iot-data` behind them.

* `ingest.telemetry_handler`, `ingest.shadow_handler`: IoT topic rules -> fleet and history.
* `plans.status_handler`, `plans.schedule_handler`, `plans.worker_handler`: plan status,
  the fan-out of planning through SQS, and the worker writing each node's `plan` shadow.
* `api.handler`: the HTTP API (fleet, node, plan, flexibility events).

Settings and clients: `environment`. Storage: `dynamo` (tables and key schema), `history`
(Parquet), `refused` (events kept with their reasons), `fanout` (plan requests on SQS).
Reference: docs/aws-handlers.md."""

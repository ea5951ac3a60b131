"""The Fractal Node aggregator: handlers, planner, local runtime and the AWS SAM stack."""

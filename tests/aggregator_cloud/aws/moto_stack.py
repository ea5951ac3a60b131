"""The template's storage made in moto from the template's own properties, and its functions run
with exactly the settings and the IAM permissions the template gives them.

moto checks IAM policies when asked to (`enable_iam_authentication`): requests signed with an
IAM user's keys are allowed only by that user's policies. `run_as` makes a user whose policy
is the function's policy statements from the template (resources resolved to the moto
resources' ARNs), signs the handler's calls with its keys, and turns enforcement on for the
duration. moto evaluates S3 and SQS requests against resources, DynamoDB requests against
actions only (it asks about resource `*`), and neither HEAD requests nor condition keys such
as `s3:prefix`: so for DynamoDB the statements' tables are widened to `*` here, and which
table each function may touch rests on the template's review.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication

from aggregator_cloud.lambdas import environment
from tests.aggregator_cloud.aws.template_model import (
    ACCOUNT,
    REGION,
    functions,
    properties,
    refers_to,
    sub,
    template,
)

SETTINGS = (
    "LATEST_TABLE",
    "FLEET_TABLE",
    "HISTORY_BUCKET",
    "INPUTS_BUCKET",
    "PLAN_QUEUE_URL",
    "PLAN_BATCH_SIZE",
    "RETENTION_DAYS",
    "IOT_DATA_ENDPOINT",
)


@dataclass
class Stack:
    """Physical name and ARN of each storage resource, by logical id."""

    names: dict[str, str] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)

    def setting(self, value: object) -> str:
        """A function's environment value as CloudFormation would resolve it."""
        target = str(refers_to(value))
        parameter = template()["Parameters"].get(target)
        return str(parameter["Default"]) if parameter else self.names[target]


def create_storage(nodes: list[str]) -> Stack:
    """Tables, buckets and the plan queue as the template declares them; `nodes` registered."""
    dynamodb, s3, sqs = (boto3.client(service) for service in ("dynamodb", "s3", "sqs"))
    stack = Stack()
    for table in ("FleetTable", "LatestTable"):
        props = properties(table)
        dynamodb.create_table(
            TableName=table,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode=props["BillingMode"],
        )
        stack.names[table] = table
        stack.arns[table] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
    for bucket in ("InputsBucket", "HistoryBucket"):
        name = bucket.lower()
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        stack.names[bucket] = name
        stack.arns[bucket] = f"arn:aws:s3:::{name}"
    stack.names["PlanQueue"] = sqs.create_queue(QueueName="plan")["QueueUrl"]
    stack.arns["PlanQueue"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:plan"
    key = properties("FleetTable")["KeySchema"][0]["AttributeName"]
    for node in nodes:
        dynamodb.put_item(TableName="FleetTable", Item={key: {"S": node}})
    return stack


def function_policy(stack: Stack, function: str) -> dict[str, Any]:
    """The function's template policy statements with every resource resolved."""
    statements = []
    for policy in functions()[function].get("Policies", []):
        for statement in policy["Statement"]:
            targets = statement["Resource"]
            targets = targets if isinstance(targets, list) else [targets]
            resources = [_arn(stack, target) for target in targets]
            actions = _listed(statement["Action"])
            if all(action.startswith("dynamodb:") for action in actions):
                resources = ["*"]  # moto authorises DynamoDB calls against resource "*"
            if "sqs:SendMessage" in actions:
                # AWS authorises SendMessageBatch with sqs:SendMessage (there is no separate
                # IAM action); moto asks for sqs:SendMessageBatch.
                actions = [*actions, "sqs:SendMessageBatch"]
            statements.append({**statement, "Action": actions, "Resource": resources})
    return {"Version": "2012-10-17", "Statement": statements}


def _listed(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _arn(stack: Stack, target: object) -> str:
    if isinstance(target, Mapping) and "Fn::GetAtt" in target:
        resource, attribute = target["Fn::GetAtt"]
        assert attribute == "Arn", target
        return stack.arns[resource]
    return sub(target, {f"{logical}.Arn": arn for logical, arn in stack.arns.items()})


@contextmanager
def run_as(stack: Stack, function: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Within: the Lambdas' clients sign as `function`'s role would, moto enforces IAM, and the
    settings are the function's from the template (and no others)."""
    iam = boto3.client("iam")
    user = f"role-{function}"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="template",
        PolicyDocument=json.dumps(function_policy(stack, function)),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    variables = functions()[function].get("Environment", {}).get("Variables", {})
    for name, value in variables.items():
        if name != "IOT_DATA_ENDPOINT":  # a custom resource's answer; not in moto
            monkeypatch.setenv(name, stack.setting(value))
    with monkeypatch.context() as inside:
        inside.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        inside.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        inside.setattr(boto3, "DEFAULT_SESSION", None)  # it keeps the credentials it found
        environment.forget_clients()
        try:
            with enable_iam_authentication():
                yield
        finally:
            environment.forget_clients()

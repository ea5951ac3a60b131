"""What a deployed aggregator depends on in aggregator_cloud/template.yaml, checked offline.

cfn-lint, `sam validate --lint` and `sam build` run in `make aws-check`; these tests check what
those tools cannot know: that the template calls our real handlers with the settings they read,
that a node's IoT policy reaches its own topics and no other node's, that the rules hand the
handlers the thing name, and that storage, queues and alarms are what docs/aws.md promises.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from fractal.link.shadow_link import PLAN_SHADOW, TELEMETRY_TOPIC

from aggregator_cloud import provisioning_hook
from aggregator_cloud.lambdas import dynamo
from aggregator_cloud.local.rules import RULES
from tests.aggregator_cloud.aws.template_model import (
    REPO,
    STACK,
    Connection,
    functions,
    iot_allows,
    properties,
    refers_to,
    resources,
    sub,
    template,
    topic_arn,
)

LAMBDAS = REPO / "aggregator_cloud" / "lambdas"
NODE_A, NODE_B = "home-a", "home-b"
SETTINGS = {
    "LATEST_TABLE",
    "FLEET_TABLE",
    "HISTORY_BUCKET",
    "INPUTS_BUCKET",
    "PLAN_QUEUE_URL",
    "IOT_DATA_ENDPOINT",
    "RETENTION_DAYS",
    "PLAN_BATCH_SIZE",
}
"""The settings the Lambdas read (aggregator_cloud/lambdas/environment.py)."""


def code_functions() -> dict[str, dict[str, Any]]:
    """The functions that run our code (the endpoint lookup is inline, for deploys only)."""
    return {name: props for name, props in functions().items() if "InlineCode" not in props}


def handler_of(props: dict[str, Any]) -> Any:
    module, _, attribute = props["Handler"].rpartition(".")
    return getattr(importlib.import_module(module), attribute)


# ----------------------------------------------------------------------------- handlers


def test_every_function_runs_a_real_handler_taking_event_and_context() -> None:
    assert len(code_functions()) == 7
    for name, props in code_functions().items():
        handler = handler_of(props)
        assert callable(handler), name
        parameters = list(inspect.signature(handler).parameters)
        assert len(parameters) >= 2, f"{name}: Lambda calls {props['Handler']}(event, context)"
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        # pydantic, pandas, pyarrow, highspy: the code imports them at once
        assert [refers_to(layer) for layer in props["Layers"]] == ["DependenciesLayer"]


def _settings_by_field() -> dict[str, str]:
    """`Settings` field -> environment variable, read from environment.settings()."""
    tree = ast.parse((LAMBDAS / "environment.py").read_text())
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and isinstance(node.value, ast.Call):
            first = node.value.args[0] if node.value.args else None
            if isinstance(first, ast.Constant) and first.value in SETTINGS:
                found[str(node.arg)] = str(first.value)
    assert set(found.values()) == SETTINGS, "environment.settings() reads other names now"
    return found


def _definitions() -> dict[str, list[ast.AST]]:
    """Every top-level function, class and constant (a route table refers to functions) of
    the Lambda package and the hook, by name."""
    sources = [*LAMBDAS.glob("*.py"), REPO / "aggregator_cloud" / "provisioning_hook.py"]
    found: dict[str, list[ast.AST]] = {}
    for source in sources:
        for node in ast.parse(source.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                found.setdefault(node.name, []).append(node)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                found.setdefault(node.target.id, []).append(node)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found.setdefault(target.id, []).append(node)
    return found


def settings_read(handler: str) -> set[str]:
    """The settings a handler (`module.function`) can read: names of settings (as text, or
    `settings.field`) anywhere in the code it can reach by name inside the Lambda package.
    Over-approximates (a name reached is taken as called), the safe side for "is it set?".
    `environment.settings()` itself reads every name, each as optional: what a handler needs
    is the fields it uses (`settings.history_bucket`) and the names it requires."""
    fields = _settings_by_field()
    definitions = _definitions()
    module, _, function = handler.rpartition(".")
    source = Path(inspect.getfile(importlib.import_module(module)))
    (start,) = [
        node
        for node in ast.parse(source.read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name == function
    ]
    seen: set[str] = {"settings"}
    pending: list[ast.AST] = [start]
    names: set[str] = set()
    while pending:
        for node in ast.walk(pending.pop()):
            reached = None
            if isinstance(node, ast.Constant) and node.value in SETTINGS:
                names.add(str(node.value))
            elif isinstance(node, ast.Attribute):
                names.update([fields[node.attr]] if node.attr in fields else [])
                reached = node.attr
            elif isinstance(node, ast.Name):
                reached = node.id
            if reached is not None and reached not in seen:
                seen.add(reached)
                pending.extend(definitions.get(reached, []))
    return names


def test_every_setting_a_handler_reads_is_set_on_its_function() -> None:
    for name, props in code_functions().items():
        handler = props["Handler"]
        variables = props.get("Environment", {}).get("Variables", {})
        missing = settings_read(handler) - set(variables)
        assert not missing, f"{name} ({props['Handler']}) reads {sorted(missing)}, not set"


def test_the_settings_check_sees_what_the_worker_reads() -> None:
    """The reachability above is not vacuous: the worker reaches the shadow endpoint and the
    inputs through helpers in other modules."""
    read = settings_read("aggregator_cloud.lambdas.plans.worker_handler")
    assert {"IOT_DATA_ENDPOINT", "INPUTS_BUCKET", "FLEET_TABLE", "LATEST_TABLE"} <= read
    assert "PLAN_QUEUE_URL" in settings_read("aggregator_cloud.lambdas.plans.schedule_handler")
    # the API's routes are functions in a table
    api = settings_read("aggregator_cloud.lambdas.api.handler")
    assert {"INPUTS_BUCKET", "IOT_DATA_ENDPOINT"} <= api


def test_every_setting_names_a_resource_or_parameter_of_the_template() -> None:
    known = set(template()["Resources"]) | set(template()["Parameters"])
    for name, props in code_functions().items():
        for variable, value in props.get("Environment", {}).get("Variables", {}).items():
            assert refers_to(value) in known, f"{name}: {variable} = {value!r}"


def test_the_layer_pins_what_the_tests_run_with() -> None:
    pins = {}
    for line in (REPO / "aggregator_cloud" / "lambda-requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, _, pinned = line.partition("==")
            pins[package.strip()] = pinned.strip()
    assert {"pydantic", "pandas", "pyarrow", "highspy", "numpy"} <= set(pins)
    for package, pinned in pins.items():
        assert version(package) == pinned, f"{package}: the layer pins {pinned}"


# ----------------------------------------------------------------------------- IoT policy


def node_may(action: str, kind: str, topic: str, thing: str | None = NODE_A) -> bool:
    return iot_allows("NodePolicy", action, topic_arn(kind, topic), Connection(thing))


def own_shadow_topics(node: str) -> Iterator[str]:
    """Every topic the node's shadow client publishes, subscribes to and receives."""
    for shadow in (f"$aws/things/{node}/shadow", f"$aws/things/{node}/shadow/name/{PLAN_SHADOW}"):
        for operation in ("get", "update"):
            yield f"{shadow}/{operation}"
            for answer in ("accepted", "rejected"):
                yield f"{shadow}/{operation}/{answer}"
        yield f"{shadow}/update/delta"
        yield f"{shadow}/update/documents"


def test_a_node_connects_only_as_its_own_thing() -> None:
    assert node_may("iot:Connect", "client", NODE_A)
    assert not node_may("iot:Connect", "client", NODE_B)
    assert not node_may("iot:Connect", "client", "claim-1")
    # A certificate not attached to a thing has no thing name: it connects as nobody.
    assert not node_may("iot:Connect", "client", NODE_A, thing=None)


def test_a_node_reaches_its_own_shadows_and_telemetry_topic() -> None:
    telemetry = TELEMETRY_TOPIC.format(node=NODE_A)
    assert node_may("iot:Publish", "topic", telemetry)
    for topic in own_shadow_topics(NODE_A):
        requests = topic.endswith(("/get", "/update"))
        assert node_may("iot:Publish", "topic", topic) == requests, topic
        if not requests:
            assert node_may("iot:Subscribe", "topicfilter", topic), topic
            assert node_may("iot:Receive", "topic", topic), topic


def test_a_node_reaches_nothing_of_another_node() -> None:
    assert not node_may("iot:Publish", "topic", TELEMETRY_TOPIC.format(node=NODE_B))
    for topic in own_shadow_topics(NODE_B):
        for action, kind in (
            ("iot:Publish", "topic"),
            ("iot:Subscribe", "topicfilter"),
            ("iot:Receive", "topic"),
        ):
            assert not node_may(action, kind, topic), f"{NODE_A} may {action} {topic}"


def test_a_node_cannot_widen_its_reach_with_wildcards_or_other_shadows() -> None:
    for topic_filter in (
        "$aws/things/+/shadow/update/accepted",
        "$aws/things/#",
        "#",
        f"$aws/things/{NODE_A}/shadow/name/+/update/delta",
    ):
        assert not node_may("iot:Subscribe", "topicfilter", topic_filter), topic_filter
    for topic in (
        f"$aws/things/{NODE_A}/shadow/delete",
        f"$aws/things/{NODE_A}/shadow/name/other/update",
        f"$aws/rules/fractal_shadow/{NODE_A}",
        f"$aws/rules/fractal_telemetry/{NODE_B}",
        f"$aws/rules/fractal_telemetry/{NODE_A}/more",
        "$aws/certificates/create/json",
        "fractal/anything",
    ):
        assert not node_may("iot:Publish", "topic", topic), topic


def claim_may(action: str, kind: str, topic: str) -> bool:
    return iot_allows("ClaimPolicy", action, topic_arn(kind, topic), Connection(None))


def test_the_claim_certificate_may_only_enrol() -> None:
    template_name = sub(properties("ProvisioningTemplate")["TemplateName"])
    provision = f"$aws/provisioning-templates/{template_name}/provision/json"
    for topic in ("$aws/certificates/create/json", provision):
        assert claim_may("iot:Publish", "topic", topic)
        for answer in ("accepted", "rejected"):
            assert claim_may("iot:Subscribe", "topicfilter", f"{topic}/{answer}")
            assert claim_may("iot:Receive", "topic", f"{topic}/{answer}")
    assert claim_may("iot:Connect", "client", "claim-installer-7")
    for action, kind, topic in (
        ("iot:Connect", "client", NODE_A),  # never as a node: it would kick the node off
        ("iot:Publish", "topic", "$aws/provisioning-templates/other/provision/json"),
        ("iot:Publish", "topic", f"$aws/things/{NODE_A}/shadow/update"),
        ("iot:Publish", "topic", TELEMETRY_TOPIC.format(node=NODE_A)),
        ("iot:Subscribe", "topicfilter", f"$aws/things/{NODE_A}/shadow/update/delta"),
        ("iot:Subscribe", "topicfilter", "#"),
    ):
        assert not claim_may(action, kind, topic), (action, topic)


# ----------------------------------------------------------------------------- rules


def rule_topic_function(rule_sql: str) -> tuple[str | None, int]:
    """The FROM filter (None if the rule has none) and N of `topic(N) AS thing_name`."""
    upper = rule_sql.upper()
    level = int(rule_sql[upper.index("TOPIC(") + 6 : upper.index(") AS THING_NAME")])
    if " FROM " not in upper:
        return None, level
    return rule_sql[upper.index(" FROM ") + 6 :].strip().strip("'"), level


def rule_sees(rule_name: str, topic: str) -> str | None:
    """The topic a rule's SQL sees for a message published on `topic`, or None if the message
    does not reach the rule. Basic Ingest (`$aws/rules/<rule>/...`) reaches the rule it names,
    and topic() sees the topic without that prefix (AWS IoT developer guide, Basic Ingest)."""
    prefix = f"$aws/rules/{rule_name}/"
    if topic.startswith(prefix):
        return topic[len(prefix) :]
    rule = next(body for body in topic_rules().values() if body["RuleName"] == rule_name)
    topic_filter, _ = rule_topic_function(rule["TopicRulePayload"]["Sql"])
    if topic_filter is None or not aiomqtt.Topic(topic).matches(topic_filter):
        return None
    return topic


def topic_rules() -> dict[str, dict[str, Any]]:
    return {name: properties(name) for name in resources("AWS::IoT::TopicRule")}


def test_the_rules_are_the_local_dispatchers_and_call_the_same_handlers() -> None:
    by_rule_name = {body["RuleName"]: body for body in topic_rules().values()}
    assert set(by_rule_name) == {rule.name for rule in RULES}
    expected_handler = {
        "fractal_telemetry": "aggregator_cloud.lambdas.ingest.telemetry_handler",
        "fractal_shadow": "aggregator_cloud.lambdas.ingest.shadow_handler",
        "fractal_plan": "aggregator_cloud.lambdas.plans.status_handler",
    }
    for rule in RULES:
        payload = by_rule_name[rule.name]["TopicRulePayload"]
        (action,) = payload["Actions"]
        function = refers_to(action["Lambda"]["FunctionArn"])
        assert functions()[str(function)]["Handler"] == expected_handler[rule.name]


def test_each_rule_gives_the_handler_the_thing_name_of_the_publishing_node() -> None:
    published = {
        "fractal_telemetry": TELEMETRY_TOPIC.format(node=NODE_A),
        "fractal_shadow": f"$aws/things/{NODE_A}/shadow/update/documents",
        "fractal_plan": f"$aws/things/{NODE_A}/shadow/name/{PLAN_SHADOW}/update/documents",
    }
    for body in topic_rules().values():
        name = body["RuleName"]
        _, level = rule_topic_function(body["TopicRulePayload"]["Sql"])
        seen = rule_sees(name, published[name])
        assert seen is not None, f"{published[name]} does not reach {name}"
        assert seen.split("/")[level - 1] == NODE_A, f"{name}: topic({level}) of {seen}"
        # ... and no rule fires for another rule's messages
        for other, topic in published.items():
            if other != name:
                assert rule_sees(name, topic) is None, f"{name} fires on {topic}"


def test_the_telemetry_rule_fires_only_through_basic_ingest() -> None:
    (body,) = [b for b in topic_rules().values() if b["RuleName"] == "fractal_telemetry"]
    assert rule_topic_function(body["TopicRulePayload"]["Sql"])[0] is None
    assert TELEMETRY_TOPIC.startswith(f"$aws/rules/{body['RuleName']}/")


def test_a_failing_rule_action_keeps_the_message_in_a_dead_letter_queue() -> None:
    for name, body in topic_rules().items():
        error_action = body["TopicRulePayload"]["ErrorAction"]["Sqs"]
        assert refers_to(error_action["QueueUrl"]) == "FailedEventsQueue", name
        assert refers_to(error_action["RoleArn"]) == "RuleErrorRole", name


# ----------------------------------------------------------------------------- provisioning


def test_provisioning_names_the_thing_after_the_node_and_attaches_the_node_policy() -> None:
    props = properties("ProvisioningTemplate")
    names = {
        "NodeThingGroup": f"{STACK}-nodes",
        "NodePolicy": sub(properties("NodePolicy")["PolicyName"]),
    }
    body = json.loads(sub(props["TemplateBody"], names))
    parameter = provisioning_hook.NODE_ID_PARAMETER
    assert body["Parameters"][parameter] == {"Type": "String"}
    thing = body["Resources"]["thing"]["Properties"]
    assert thing["ThingName"] == {"Ref": parameter}
    assert thing["ThingGroups"] == [f"{STACK}-nodes"]
    assert body["Resources"]["policy"]["Properties"] == {"PolicyName": f"{STACK}-node"}
    certificate = body["Resources"]["certificate"]["Properties"]
    assert certificate["Status"] == "ACTIVE"
    hook = refers_to(props["PreProvisioningHook"]["TargetArn"])
    assert functions()[str(hook)]["Handler"] == "aggregator_cloud.provisioning_hook.handler"


# ----------------------------------------------------------------------------- storage


def test_buckets_are_private_encrypted_tls_only_and_expire_history() -> None:
    for bucket in ("HistoryBucket", "InputsBucket"):
        props = properties(bucket)
        assert all(props["PublicAccessBlockConfiguration"].values())
        assert len(props["PublicAccessBlockConfiguration"]) == 4
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
        (policy,) = [
            p
            for p in resources("AWS::S3::BucketPolicy").values()
            if refers_to(p["Properties"]["Bucket"]) == bucket
        ]
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    expiring = {
        rule["Prefix"]: refers_to(rule["ExpirationInDays"])
        for rule in properties("HistoryBucket")["LifecycleConfiguration"]["Rules"]
        if "ExpirationInDays" in rule
    }
    assert expiring == {"history/": "RetentionDays", "refused/": "RetentionDays"}


def test_tables_are_on_demand_recoverable_and_keyed_as_the_code_reads_them() -> None:
    for table in ("LatestTable", "FleetTable"):
        props = properties(table)
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
        assert props["KeySchema"] == [{"AttributeName": dynamo.KEY, "KeyType": "HASH"}]
        key = {"AttributeName": dynamo.KEY, "AttributeType": "S"}
        assert props["AttributeDefinitions"] == [key]
        assert props["TimeToLiveSpecification"]["Enabled"]


# ----------------------------------------------------------------------------- queues, alarms


def alarms() -> list[dict[str, Any]]:
    return [body["Properties"] for body in resources("AWS::CloudWatch::Alarm").values()]


def test_every_function_has_error_and_throttle_alarms_that_notify() -> None:
    watched = {
        (alarm["MetricName"], refers_to(alarm["Dimensions"][0]["Value"]))
        for alarm in alarms()
        if alarm["Namespace"] == "AWS/Lambda"
    }
    for name in code_functions():
        assert ("Errors", name) in watched, name
        assert ("Throttles", name) in watched, name
    for alarm in alarms():
        assert [refers_to(action) for action in alarm["AlarmActions"]] == ["AlarmTopic"]


def test_every_dead_letter_queue_has_a_depth_alarm() -> None:
    dead_letter_queues = {"FailedEventsQueue"}
    for queue in resources("AWS::SQS::Queue"):
        redrive = properties(queue).get("RedrivePolicy")
        if redrive:
            dead_letter_queues.add(str(refers_to(redrive["deadLetterTargetArn"])))
    depth = {
        refers_to(alarm["Dimensions"][0]["Value"])
        for alarm in alarms()
        if alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    assert dead_letter_queues == {"FailedEventsQueue", "PlanDeadLetterQueue"}
    assert dead_letter_queues <= depth


def test_events_a_function_fails_on_are_kept() -> None:
    """Rule-fed functions run asynchronously: Lambda's retries end in the dead-letter queue.
    Scheduled ones: EventBridge's. The worker: SQS redrive, failures reported per message."""
    for name in ("TelemetryFunction", "ShadowFunction", "PlanStatusFunction"):
        assert refers_to(functions()[name]["DeadLetterQueue"]["TargetArn"]) == "FailedEventsQueue"
    for event in resources("AWS::Serverless::Function")["PlanScheduleFunction"]["Properties"][
        "Events"
    ].values():
        assert refers_to(event["Properties"]["DeadLetterConfig"]["Arn"]) == "FailedEventsQueue"
    worker = functions()["PlanWorkerFunction"]
    (source,) = worker["Events"].values()
    assert source["Type"] == "SQS"
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = properties("PlanQueue")
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 2
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]


# ----------------------------------------------------------------------------- IAM, API, outputs


def statements_of(props: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in props.get("Policies", []):
        yield from policy["Statement"]


def test_function_permissions_are_scoped_to_this_stacks_resources() -> None:
    for name, props in functions().items():
        for statement in statements_of(props):
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            assert not any(action.endswith("*") for action in actions), (name, actions)
            targets = statement["Resource"]
            targets = targets if isinstance(targets, list) else [targets]
            for target in targets:
                if target == "*":
                    # DescribeEndpoint has no resource to scope it to.
                    assert actions == ["iot:DescribeEndpoint"], name
                else:
                    text = json.dumps(target)
                    assert "Arn" in text or ":iot:" in text, (name, target)


def test_the_api_requires_signed_requests_and_reaches_the_api_handler() -> None:
    auth = properties("FleetApi")["Auth"]
    assert auth["DefaultAuthorizer"] == "AWS_IAM"
    assert auth["EnableIamAuthorizer"]
    (route,) = functions()["ApiFunction"]["Events"].values()
    assert route["Type"] == "HttpApi"
    assert refers_to(route["Properties"]["ApiId"]) == "FleetApi"
    assert route["Properties"]["PayloadFormatVersion"] == "2.0"


@pytest.mark.parametrize(
    "output",
    ["IotDataEndpoint", "ApiUrl", "ProvisioningTemplateName", "ClaimPolicyName", "NodePolicyName"],
)
def test_outputs_an_installer_and_an_operator_need(output: str) -> None:
    assert output in template()["Outputs"]

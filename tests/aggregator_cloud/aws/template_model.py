"""aggregator_cloud/template.yaml as data, and the bits of AWS the tests evaluate it with.

The template is read by cfn-lint's own loader (it understands !Ref, !Sub, !GetAtt), which lives
in the SAM CLI's virtual environment (.venv-sam, made by scripts/setup.sh); it hands the
template over as JSON. `Sub` resolves Fn::Sub strings the way CloudFormation would for a
stack in a fixed account, and `iot_allows` evaluates an AWS IoT policy's Allow statements for
one action on one resource, with the policy variables filled in.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parents[3]
TEMPLATE: Final = REPO / "aggregator_cloud" / "template.yaml"
SAM_PYTHON: Final = REPO / ".venv-sam" / "bin" / "python"

PARTITION: Final = "aws"
REGION: Final = "eu-west-2"
ACCOUNT: Final = "123456789012"
STACK: Final = "fractal"


@cache
def template() -> dict[str, Any]:
    """The template, parsed by cfn-lint (any decoding problem fails loudly)."""
    script = (
        "import json, sys\n"
        "from cfnlint.decode import decode\n"
        "template, problems = decode(sys.argv[1])\n"
        "if problems: sys.exit('\\n'.join(str(p) for p in problems))\n"
        "print(json.dumps(template))\n"
    )
    done = subprocess.run(
        [str(SAM_PYTHON), "-c", script, str(TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"cfn-lint could not read the template: {done.stderr}"
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def resources(kind: str | None = None) -> dict[str, dict[str, Any]]:
    every: dict[str, dict[str, Any]] = template()["Resources"]
    return {name: body for name, body in every.items() if kind is None or body["Type"] == kind}


def properties(name: str) -> dict[str, Any]:
    props: dict[str, Any] = template()["Resources"][name].get("Properties", {})
    return props


def functions() -> dict[str, dict[str, Any]]:
    """Every Lambda function's properties, with the template's Globals applied."""
    defaults = template().get("Globals", {}).get("Function", {})
    return {
        name: {**defaults, **body.get("Properties", {})}
        for name, body in resources("AWS::Serverless::Function").items()
    }


def refers_to(value: object) -> str | None:
    """The resource or parameter a !Ref / !GetAtt names, else None."""
    if isinstance(value, Mapping):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


PSEUDO: Final = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
}


def sub(value: object, names: Mapping[str, str] | None = None) -> str:
    """A string or Fn::Sub resolved: pseudo parameters, `names` (e.g. other resources' names),
    `${!Literal}` to `${Literal}`. An unknown name is an error, not a silent blank."""
    text = value["Fn::Sub"] if isinstance(value, Mapping) else value
    assert isinstance(text, str), f"not a string or a simple Fn::Sub: {value!r}"
    known = {**PSEUDO, **(names or {})}

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner.startswith("!"):
            return "${" + inner[1:] + "}"
        assert inner in known, f"${{{inner}}} is not known to the test"
        return known[inner]

    return re.sub(r"\$\{([^}]+)\}", replace, text)


# ----------------------------------------------------------------------------- IoT policies


@dataclass(frozen=True)
class Connection:
    """Who is connected: the thing its certificate is attached to, if any."""

    thing: str | None


def iot_statements(policy: str) -> Iterator[Mapping[str, Any]]:
    document = properties(policy)["PolicyDocument"]
    yield from document["Statement"]


def iot_allows(policy: str, action: str, resource: str, connection: Connection) -> bool:
    """Does `policy` allow `action` on `resource` (an ARN) for `connection`? Only Allow
    statements exist in our policies (asserted), so this is "some statement matches"."""
    for statement in iot_statements(policy):
        assert statement["Effect"] == "Allow", "the evaluator knows only Allow statements"
        actions = _listed(statement["Action"])
        if action not in actions or not _conditions_hold(statement, connection):
            continue
        for pattern in _listed(statement["Resource"]):
            resolved = _policy_variables(sub(pattern), connection)
            if resolved is not None and _arn_matches(resolved, resource):
                return True
    return False


def topic_arn(kind: str, topic: str) -> str:
    """`kind` is `topic`, `topicfilter` or `client`."""
    return f"arn:{PARTITION}:iot:{REGION}:{ACCOUNT}:{kind}/{topic}"


def _listed(value: object) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _conditions_hold(statement: Mapping[str, Any], connection: Connection) -> bool:
    for operator, tests in statement.get("Condition", {}).items():
        for key, expected in tests.items():
            assert (operator, key) == ("Bool", "iot:Connection.Thing.IsAttached"), (
                f"the evaluator does not know the condition {operator} {key}"
            )
            if (connection.thing is not None) != (str(expected).lower() == "true"):
                return False
    return True


def _policy_variables(pattern: str, connection: Connection) -> str | None:
    """The pattern with IoT policy variables filled in; None when a variable has no value
    (AWS then treats the statement as not matching)."""
    if "${iot:Connection.Thing.ThingName}" in pattern:
        if connection.thing is None:
            return None
        pattern = pattern.replace("${iot:Connection.Thing.ThingName}", connection.thing)
    assert "${" not in pattern, f"unknown policy variable in {pattern}"
    return pattern


def _arn_matches(pattern: str, arn: str) -> bool:
    """IAM-style resource matching: `*` any run of characters (slashes too), `?` one."""
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.fullmatch(regex, arn) is not None

"""The cost model of docs/aws.md: the page shows what the arithmetic gives, for the stack the
template deploys, at the prices the page states."""

from __future__ import annotations

import re
from dataclasses import fields, replace

from aggregator_cloud.aws_costs import Prices, Usage, cost_table, monthly_lines, total
from tests.aggregator_cloud.aws.template_model import REPO, resources, template

DOC = REPO / "docs" / "aws.md"


def lines_by_item(usage: Usage) -> dict[str, float]:
    return {line.item: line.usd for line in monthly_lines(usage)}


def test_the_page_shows_the_computed_table() -> None:
    assert cost_table() in DOC.read_text()


def test_the_page_states_every_price_the_model_uses() -> None:
    text = DOC.read_text()
    start = text.index("| Price (us-east-1")
    table = text[start : text.index("\n\n", start)]
    stated = {float(number) for number in re.findall(r"\d+\.\d+", table)}
    for price in fields(Prices):
        assert getattr(Prices(), price.name) in stated, price.name


def test_the_model_describes_the_deployed_stack() -> None:
    usage = Usage()
    assert usage.alarms == len(resources("AWS::CloudWatch::Alarm"))
    parameters = template()["Parameters"]
    assert usage.plan_batch_size == parameters["PlanBatchSize"]["Default"]
    assert parameters["ScheduleExpression"]["Default"] == "rate(30 minutes)"
    assert usage.plan_rounds_per_day == 24 * 60 // 30


def test_connectivity_is_minutes_times_the_price() -> None:
    minutes = 1000 * 30 * 24 * 60
    assert lines_by_item(Usage())["IoT Core connectivity"] == minutes / 1e6 * 0.08


def test_fleet_costs_scale_with_homes_and_fixed_costs_do_not() -> None:
    small, large = lines_by_item(Usage(homes=1000)), lines_by_item(Usage(homes=3000))
    for item in ("IoT Core connectivity", "IoT Core device shadow", "S3 requests"):
        assert abs(large[item] - 3 * small[item]) < 1e-6 * large[item], item
    assert large["CloudWatch alarms and logs"] == small["CloudWatch alarms and logs"]


def test_batching_telemetry_divides_its_requests_by_the_samples_per_batch() -> None:
    every_sample = lines_by_item(Usage())
    five_minutes = lines_by_item(replace(Usage(), telemetry_batch_seconds=300))
    assert abs(every_sample["S3 requests"] / five_minutes["S3 requests"] - 30) < 1e-9
    assert five_minutes["IoT Core device shadow"] == every_sample["IoT Core device shadow"]
    assert total(monthly_lines(replace(Usage(), telemetry_batch_seconds=300))) < total(
        monthly_lines(Usage())
    )

"""Property: a group's power in a bucket is the sum of its members' own resampled powers."""

from __future__ import annotations

import math
from datetime import timedelta

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator_cloud.store import FIELDS, POWER_FIELDS, group_totals
from tests.support.fleet_documents import T0

STEP = timedelta(minutes=5)

powers = st.one_of(st.none(), st.integers(-20_000, 20_000).map(float))
samples = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 3600),  # seconds after T0
        st.fixed_dictionaries(
            dict.fromkeys(POWER_FIELDS, powers)
            | {"soc_pct": st.one_of(st.none(), st.integers(0, 100).map(float))}
        ),
    ),
    min_size=1,
    max_size=40,
)


def frame(rows: list[tuple[str, int, dict[str, float | None]]]) -> pd.DataFrame:
    data = [
        {"node": node, "ts": T0 + timedelta(seconds=offset), **values}
        for node, offset, values in rows
    ]
    table = pd.DataFrame(data)
    table["ts"] = pd.to_datetime(table["ts"], utc=True)
    return table.astype(dict.fromkeys(FIELDS, "float64"))


@settings(max_examples=25, deadline=None)
@given(samples)
def test_group_power_is_the_sum_of_member_powers(
    rows: list[tuple[str, int, dict[str, float | None]]],
) -> None:
    table = frame(rows)

    group = group_totals(table, STEP)
    members = {
        node: group_totals(table[table["node"] == node], STEP) for node in set(table["node"])
    }

    for bucket, totals in group.iterrows():
        present = [member.loc[bucket] for member in members.values() if bucket in member.index]
        assert totals["nodes"] == len(present)
        for name in POWER_FIELDS:
            values = [row[name] for row in present if not math.isnan(row[name])]
            if values:
                assert math.isclose(totals[name], sum(values), abs_tol=1e-6)
            else:
                assert math.isnan(totals[name])
    assert sum(len(member) for member in members.values()) == group["nodes"].sum()

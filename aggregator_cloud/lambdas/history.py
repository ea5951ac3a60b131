"""Telemetry history in S3 as Parquet, partitioned by date and node, and the latest state.

One object per telemetry batch and UTC day:
`history/date=YYYY-MM-DD/node=<id>/<first seq>-<last seq>.parquet` (seqs zero-padded to 12
digits, so objects list in order). A node re-sends a batch with exactly the same samples, so a
replayed batch lands on the same key, and the write is conditional (`If-None-Match: *`): S3
itself refuses a second object under a key, atomically, and the samples count as duplicates.
Only `s3:PutObject` is needed. The prefix is a Hive-partitioned dataset:
`pandas.read_parquet` (pyarrow) on it, or Athena/Glue, adds `date` and `node` as columns.

Columns (one schema for every object, so the dataset reads as one table): `seq` (int64),
`ts` (timestamp, microseconds, UTC), the power fields and `soc_pct` (float64, null when not
reported) and `extra` (string, JSON of the sample's energy counters and per-device readings;
null when none).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import datetime
from itertools import groupby
from typing import Any, Final

import pandas as pd
from fractal.protocol import Reading, to_jsonable

from aggregator_cloud.store import FIELDS, Insertion

from .dynamo import DynamoFleet

PREFIX: Final = "history/"
SEQ_DIGITS: Final = 12


def history_key(node: str, day: str, samples: Sequence[Reading]) -> str:
    """The object holding `samples` (one day's part of a batch)."""
    first, last = samples[0].seq, samples[-1].seq
    return f"{PREFIX}date={day}/node={node}/{first:0{SEQ_DIGITS}d}-{last:0{SEQ_DIGITS}d}.parquet"


def samples_frame(samples: Sequence[Reading]) -> pd.DataFrame:
    """The samples as the dataset's columns, in the dataset's types."""
    return pd.DataFrame(
        {
            "seq": pd.Series([sample.seq for sample in samples], dtype="int64"),
            "ts": pd.to_datetime([sample.ts for sample in samples], utc=True).as_unit("us"),
            **{
                name: pd.Series([getattr(sample, name) for sample in samples], dtype="float64")
                for name in FIELDS
            },
            "extra": pd.Series([_extra(sample) for sample in samples], dtype="string"),
        }
    )


def _extra(sample: Reading) -> str | None:
    extras: dict[str, Any] = {}
    if sample.energy is not None:
        extras["energy"] = to_jsonable(sample.energy)
    if sample.devices is not None:
        extras["devices"] = sample.devices
    return json.dumps(extras, sort_keys=True) if extras else None


class S3History:
    """The TelemetrySink the telemetry Lambda hands `handle_telemetry_batch`: samples to
    Parquet in `bucket`, the newest sample and `last_seen` to the fleet's LATEST_TABLE."""

    def __init__(self, s3: Any, bucket: str, fleet: DynamoFleet) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._fleet = fleet

    def add_samples(
        self, node: str, samples: Sequence[Reading], seen_at: datetime | None = None
    ) -> Insertion:
        """Write each day's part of the batch unless it is already stored. S3 cannot say
        cheaply whether a stored sample has another timestamp, so `conflicts` stays empty."""
        inserted = duplicates = 0
        for day, part in groupby(samples, key=lambda sample: sample.ts.date().isoformat()):
            day_samples = list(part)
            if self._put_new(history_key(node, day, day_samples), samples_frame(day_samples)):
                inserted += len(day_samples)
            else:
                duplicates += len(day_samples)
        if samples:
            self._fleet.record_latest_sample(node, samples[-1])
        if seen_at is not None:
            self._fleet.mark_seen(node, seen_at)
        return Insertion(inserted, duplicates)

    def mark_seen(self, node: str, when: datetime) -> None:
        self._fleet.mark_seen(node, when)

    def _put_new(self, key: str, frame: pd.DataFrame) -> bool:
        """Store `frame` under `key` unless an object is there already; True if stored.

        A conditional write racing another one for the same key (409 ConditionalRequestConflict)
        raises: the Lambda is retried and then finds the object."""
        buffer = io.BytesIO()
        frame.to_parquet(buffer, engine="pyarrow", index=False, compression="zstd")
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=buffer.getvalue(),
                ContentType="application/vnd.apache.parquet",
                IfNoneMatch="*",
            )
        except self._s3.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return False
            raise
        return True

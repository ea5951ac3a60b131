"""Register words <-> values, checked against struct and hand-made words."""

from __future__ import annotations

import math
import struct

import pytest
from fractal.devices.codec import DataType, decode, encode
from hypothesis import given
from hypothesis import strategies as st

INT_RANGES = {
    DataType.U16: (0, 0xFFFF),
    DataType.S16: (-0x8000, 0x7FFF),
    DataType.U32: (0, 0xFFFFFFFF),
    DataType.S32: (-0x80000000, 0x7FFFFFFF),
}


def test_known_words() -> None:
    assert decode([0x4366, 0x8000], DataType.FLOAT32) == 230.5
    assert decode([0x8000, 0x4366], DataType.FLOAT32, "little") == 230.5
    assert decode([0xFFFF, 0xF448], DataType.S32) == -3000
    assert decode([0xF448, 0xFFFF], DataType.S32, "little") == -3000
    assert decode([0xFFFF], DataType.S16) == -1
    assert decode([0x0001, 0xE240], DataType.U32) == 123456
    assert decode([0x534E, 0x2D31, 0x0000], DataType.STRING) == "SN-1"


@given(st.sampled_from(list(INT_RANGES)), st.data(), st.sampled_from(["big", "little"]))
def test_integers_round_trip(kind: DataType, data: st.DataObject, order: str) -> None:
    low, high = INT_RANGES[kind]
    value = data.draw(st.integers(low, high))
    assert decode(encode(value, kind, order), kind, order) == value  # type: ignore[arg-type]


@given(st.floats(width=32, allow_nan=False), st.sampled_from(["big", "little"]))
def test_float32_round_trips_and_matches_struct(value: float, order: str) -> None:
    words = encode(value, DataType.FLOAT32, order)  # type: ignore[arg-type]
    high_first = words if order == "big" else words[::-1]
    assert struct.pack(">HH", *high_first) == struct.pack(">f", value)
    assert decode(words, DataType.FLOAT32, order) == value  # type: ignore[arg-type]


def test_nan_decodes_as_nan_for_the_plausibility_check() -> None:
    nan_words = list(struct.unpack(">HH", struct.pack(">f", math.nan)))
    assert math.isnan(decode(nan_words, DataType.FLOAT32))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "kind"),
    [(70000, DataType.U16), (-1, DataType.U16), (40000, DataType.S16), (2**32, DataType.U32)],
)
def test_values_that_do_not_fit_are_refused(value: int, kind: DataType) -> None:
    with pytest.raises(ValueError, match=f"does not fit {kind}"):
        encode(value, kind)


def test_strings_and_bools_are_not_encoded_as_numbers() -> None:
    with pytest.raises(ValueError, match="cannot encode a number as string"):
        encode(1, DataType.STRING)

"""Convert between Modbus register words and Python values."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import StrEnum
from typing import Literal

WordOrder = Literal["big", "little"]


class DataType(StrEnum):
    """Register data types of a map."""

    U16 = "u16"
    S16 = "s16"
    U32 = "u32"
    S32 = "s32"
    FLOAT32 = "float32"
    STRING = "string"
    BOOL = "bool"


_STRUCT = {
    DataType.U16: ">H",
    DataType.S16: ">h",
    DataType.U32: ">I",
    DataType.S32: ">i",
    DataType.FLOAT32: ">f",
}
FIXED_WORDS = {
    DataType.U16: 1,
    DataType.S16: 1,
    DataType.U32: 2,
    DataType.S32: 2,
    DataType.FLOAT32: 2,
    DataType.BOOL: 1,
}


def _ordered(words: Sequence[int], word_order: WordOrder) -> Sequence[int]:
    """Return the words most significant first (the order struct expects)."""
    return list(reversed(words)) if word_order == "little" else words


def decode(
    words: Sequence[int], data_type: DataType, word_order: WordOrder = "big"
) -> int | float | str:
    """Decode register words into an int, float or string."""
    if data_type is DataType.STRING:
        raw = b"".join(struct.pack(">H", word) for word in words)
        return raw.split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()
    if data_type is DataType.BOOL:
        return int(bool(words[0]))
    raw = b"".join(struct.pack(">H", word) for word in _ordered(words, word_order))
    value: int | float = struct.unpack(_STRUCT[data_type], raw)[0]
    return value


def encode(value: int | float, data_type: DataType, word_order: WordOrder = "big") -> list[int]:
    """Encode a number into register words; raises ValueError if it does not fit the type."""
    if data_type in (DataType.STRING, DataType.BOOL):
        raise ValueError(f"cannot encode a number as {data_type}")
    number: int | float = value if data_type is DataType.FLOAT32 else round(value)
    try:
        raw = struct.pack(_STRUCT[data_type], number)
    except struct.error as err:
        raise ValueError(f"{value} does not fit {data_type}") from err
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return list(_ordered(words, word_order))

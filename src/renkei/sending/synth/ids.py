"""Identifiers: 宛名番号, 世帯番号, 個人番号, 住民票コード and the insurance numbers, all unique by construction.

Numbers derived from a person's serial (pid) use an affine map modulo 10^k with a multiplier coprime to 10:
a bijection, so distinct people never collide, yet consecutive serials look unrelated.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from renkei.sending.synth.rng import Rng
from renkei.sending.synth.vec import Array, floor_int, pad, text

# 宛名番号 and 世帯番号 are handed out in registration order with gaps (numbers of people who left, of 住登外者).
ATENA_START: Final = 1_000_003
NUMBER_GAP: Final = 37

MY_NUMBER_WEIGHTS: Final = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)  # domain.md §3.2, left to right
_MULTIPLIERS: Final = {
    "my_number": 48_271_931_117,
    "juminhyo": 7_919_418_563,
    "kaigo": 3_602_879_701,
    "kokuho": 9_181_237,
    "case": 7_654_321,
}


def allocate(rng: Rng, name: str, n: int, start: int) -> tuple[Array, int]:
    """n distinct numbers above ``start`` in random order, and the next free start."""
    rank = pc.sort_indices(rng.uniform(name + ".order", n))
    jitter = floor_int(pc.multiply(rng.uniform(name + ".gap", n), NUMBER_GAP))
    numbers = pc.add(pc.add(pc.multiply(pc.cast(rank, pa.int64()), NUMBER_GAP), jitter), start)
    return numbers, start + n * NUMBER_GAP


def scrambled(rng: Rng, kind: str, serials: Array, digits: int) -> Array:
    """A serial mapped one-to-one onto ``digits``-digit numbers (as int64)."""
    modulus = 10**digits
    offset = rng.key(kind) % modulus
    multiplier = _MULTIPLIERS[kind] % modulus or 1
    return pc.modulo(pc.add(pc.multiply(pc.cast(serials, pa.int64()), multiplier), offset), modulus)


def digit_at(values: Array, position: int, width: int) -> Array:
    """The decimal digit at ``position`` (0 = leftmost) of zero-padded ``width``-digit numbers."""
    return pc.modulo(pc.divide(values, 10 ** (width - 1 - position)), 10)


def my_numbers(rng: Rng, pids: Array) -> Array:
    """12-digit 個人番号 with the official check digit (総務省令第85号 第5条)."""
    body = scrambled(rng, "my_number", pids, 11)
    total = pc.add(0, 0)
    for position, weight in enumerate(MY_NUMBER_WEIGHTS):
        total = pc.add(total, pc.multiply(digit_at(body, position, 11), weight))
    remainder = pc.modulo(total, 11)
    check = pc.if_else(pc.less_equal(remainder, 1), 0, pc.subtract(11, remainder))
    return pc.binary_join_element_wise(pad(body, 11), text(check), "")


def juminhyo_codes(rng: Rng, pids: Array) -> Array:
    """11-digit 住民票コード: 10 digits and a check digit.

    The official check-digit formula (平成14年総務省告示第436号) is not available to us (domain.md §3.2), so this
    uses a plain modulus-11 digit (weights 2–7 from the right) and claims no more than the format.
    """
    body = scrambled(rng, "juminhyo", pids, 10)
    total = pc.add(0, 0)
    for position in range(10):
        weight = 2 + (9 - position) % 6
        total = pc.add(total, pc.multiply(digit_at(body, position, 10), weight))
    check = pc.modulo(pc.subtract(11, pc.modulo(total, 11)), 10)
    return pc.binary_join_element_wise(pad(body, 10), text(check), "")


def insurer_check_digit(body: str) -> str:
    """検証番号 of a 保険者番号 (domain.md §3.2): weights 2,1,2,1… from the last digit, digit-sum, 10 − mod."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return str((10 - total % 10) % 10)

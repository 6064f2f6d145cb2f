"""Sums added one value at a time equal the correctly rounded sum of the same values."""

from __future__ import annotations

import math
import random

from selftrain.sums import ExactSum, exact_sum


def test_a_running_exact_sum_is_fsum_of_its_values_where_a_plain_running_total_is_not():
    rng = random.Random(3)
    values = [rng.uniform(0.5, 4.0) for _ in range(2000)] + [1e16, 1.0, -1e16, 0.1, 0.2, 0.3]
    running, plain = ExactSum(), 0.0
    for value in values:
        running.add(value)
        plain += value
    assert running.value == exact_sum(values) == math.fsum(values)
    assert plain != math.fsum(values)  # what the stream used to report: last digits off (here 1.0 lost to 1e16)
    assert ExactSum().value == 0.0 and exact_sum([]) == 0.0


def test_the_order_of_addition_does_not_change_an_exact_sum():
    rng = random.Random(5)
    values = [rng.uniform(-1.0, 1.0) * 10 ** rng.randint(-8, 8) for _ in range(500)]
    forward, backward = ExactSum(), ExactSum()
    for value in values:
        forward.add(value)
    for value in reversed(values):
        backward.add(value)
    assert forward.value == backward.value == math.fsum(values)

"""Sums of floats that do not depend on how, or on which Python, they are added up.

A figure computed both from records held in memory and from a stream (the selection's summary, the
audit's hours) must come out the same either way, to the last bit. A running ``total += x`` and the
built-in ``sum`` differ in their last digits since Python 3.12 (whose ``sum`` of floats compensates
rounding), so both paths use the correctly rounded sum instead: :func:`math.fsum` over a list, and
:class:`ExactSum` one value at a time, which gives the same number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["ExactSum", "exact_sum"]


def exact_sum(values: Iterable[float]) -> float:
    """The correctly rounded sum of ``values`` (:func:`math.fsum`)."""
    return math.fsum(values)


class ExactSum:
    """A sum added to one value at a time whose :attr:`value` is :func:`exact_sum` of those values.

    It keeps the total as a few non-overlapping floats (Shewchuk's partials: each addition splits
    into the rounded result and its exact rounding error), so nothing is lost between additions and
    the memory stays constant in practice.
    """

    def __init__(self) -> None:
        self._partials: list[float] = []

    def add(self, value: float) -> None:
        kept = []
        for partial in self._partials:
            if abs(value) < abs(partial):
                value, partial = partial, value
            rounded = value + partial
            error = partial - (rounded - value)
            if error:
                kept.append(error)
            value = rounded
        kept.append(value)
        self._partials = kept

    @property
    def value(self) -> float:
        return math.fsum(self._partials)

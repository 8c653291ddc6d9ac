"""A bounded, deterministic latency sketch: log-spaced bins with about 1% relative error.

Memory is one counter per occupied bin (at most a few thousand for delays from 1 ms to
months), not one float per message.
"""

from __future__ import annotations

import math

BIN_RATIO = 1.02  # bin width ratio: a reported quantile is within 1% of a true sample
_LOG_RATIO = math.log(BIN_RATIO)
_FLOOR = 1e-3  # delays below 1 ms count as zero


class LatencySketch:
    __slots__ = ("_bins", "count", "maximum", "minimum", "total")

    def __init__(self) -> None:
        self._bins: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.maximum = 0.0
        self.minimum = math.inf

    def add(self, value: float) -> None:
        index = -1 if value < _FLOOR else int(math.log(value / _FLOOR) / _LOG_RATIO)
        self._bins[index] = self._bins.get(index, 0) + 1
        self.count += 1
        self.total += value
        if value > self.maximum:
            self.maximum = value
        if value < self.minimum:
            self.minimum = value

    def histogram(self) -> list[tuple[float, int]]:
        """(bin lower edge in seconds, count), in order: the distribution, for plots."""
        return [(0.0 if i < 0 else _FLOOR * BIN_RATIO**i, n) for i, n in sorted(self._bins.items())]

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1), within the bin resolution; NaN when empty."""
        if not self.count:
            return math.nan
        rank = q * (self.count - 1)
        seen = 0
        for index in sorted(self._bins):
            seen += self._bins[index]
            if seen > rank:
                if index < 0:
                    return 0.0
                low = _FLOOR * BIN_RATIO**index
                middle = low * math.sqrt(BIN_RATIO)
                return min(max(middle, self.minimum), self.maximum)
        return self.maximum

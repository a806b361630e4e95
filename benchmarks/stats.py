"""Small statistics helpers: medians, percentiles and paired ratios (no numpy needed)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile, ``fraction`` in [0, 1]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return float(ordered[index])


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Ratios of measurements taken side by side (same round): the noise of one moment cancels out."""
    return [ratio(a, b) for a, b in zip(numerators, denominators, strict=True)]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": median(values),
        "mean": float(statistics.fmean(values)) if values else float("nan"),
        "min": float(min(values)) if values else float("nan"),
        "max": float(max(values)) if values else float("nan"),
        "p90": percentile(values, 0.9),
        "stdev": float(statistics.stdev(values)) if len(values) > 1 else 0.0,
    }


def rotations(items: Sequence[str], round_index: int) -> list[str]:
    """The order to run ``items`` in on a given round: rotated each round, so no side always goes first."""
    shift = round_index % len(items)
    return list(items[shift:]) + list(items[:shift])

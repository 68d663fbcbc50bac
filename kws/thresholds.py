"""Firing thresholds: one float for every keyword, or one per keyword.

No numpy here: `kws listen` parses --threshold before it may import numpy (see kws/listen.py).
"""

from __future__ import annotations

import numbers

DEFAULT_THRESHOLD = 0.5


def check_threshold(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0 < value <= 1:
        raise ValueError(f"{what} must be in (0, 1], got {value!r}")
    return float(value)


def parse_thresholds(text: str) -> float | dict[str, float]:
    """`"0.6"` -> 0.6; `"yes=0.7,no=0.8"` -> {"yes": 0.7, "no": 0.8} (the CLI's --threshold).

    >>> parse_thresholds("yes=0.7, no=0.8")
    {'yes': 0.7, 'no': 0.8}
    """
    text = str(text).strip()
    if "=" not in text:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"threshold must be a number in (0, 1] or label=value pairs "
                             f"like yes=0.7,no=0.8, got {text!r}") from None
        return check_threshold(value, "threshold")
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        label, _, value = (x.strip() for x in part.partition("="))
        try:
            out[label] = float(value)
        except ValueError:
            label = ""
        if not label:
            raise ValueError(f"threshold {part!r}: expected label=value with a number in (0, 1]")
        check_threshold(out[label], f"threshold of {label!r}")
    return out


def resolve_thresholds(threshold, labels, model_thresholds: dict | None = None) -> dict[str, float]:
    """One threshold per keyword label from a float, a {label: value} mapping, a string, or None:
    the model's own calibrated thresholds where it has them (`model_thresholds`), else
    DEFAULT_THRESHOLD."""
    if threshold is None:
        model_thresholds = model_thresholds or {}
        return {k: model_thresholds.get(k, DEFAULT_THRESHOLD) for k in labels}
    if isinstance(threshold, str):
        threshold = parse_thresholds(threshold)
    if isinstance(threshold, dict):
        bad = [k for k in threshold if k not in labels]
        if bad:
            raise ValueError(f"threshold for unknown keyword(s) {bad!r}: this model detects "
                             f"{', '.join(labels)}")
        given = {k: check_threshold(v, f"threshold of {k!r}") for k, v in threshold.items()}
        return {k: given.get(k, DEFAULT_THRESHOLD) for k in labels}
    value = check_threshold(threshold, "threshold")
    return {k: value for k in labels}

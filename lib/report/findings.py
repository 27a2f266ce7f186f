"""Findings computed from runs' final numbers, as the paper prints them.

What it is: pure functions from runs' final numbers to small dicts of printed values (how two settings differ
over seeds) and the comparisons the prose words ('higher', an order of runs). What it is not: prose
(report/prose/), files, or what a curve did over the epochs (curves.py).
"""
from __future__ import annotations

import math

from .formatting import loss, pct, printed, shown


def spread(run: dict, other: dict, key: str = "final_val_acc") -> dict | None:
    """Whether two settings' difference in a final accuracy is larger than the spread between seeds: None for
    single runs; else the difference and the larger of the two standard deviations over seeds (points, as
    printed) and whether the difference exceeds it."""
    sds = [r.get("std", {}).get(key) for r in (run, other)]
    if None in sds:
        return None
    difference = f"{abs(printed(run, key) - printed(other, key)):.1f}"  # of the values as printed (points)
    return {"difference": difference, "sd": pct(max(sds)), "larger": float(difference) > float(pct(max(sds)))}


def higher(a: float, b: float, fmt=loss) -> str:
    """'higher', 'lower' or 'the same', comparing the numbers as printed (so the words match the digits)."""
    a, b = (float(fmt(v)) if math.isfinite(v) else math.inf for v in (a, b))  # diverged: higher than any loss
    return "higher" if a > b else "lower" if a < b else "the same"


def compare(run: dict, other: dict) -> dict[str, str]:
    """How `run`'s final numbers compare with `other`'s as printed: {'train_loss': 'lower', ...}."""
    return {"train_loss": higher(run["final_train_loss"], other["final_train_loss"]),
            "train_acc": higher(run["final_train_acc"], other["final_train_acc"], pct),
            "val_loss": higher(run["final_val_loss"], other["final_val_loss"]),
            "val_acc": higher(run["final_val_acc"], other["final_val_acc"], pct)}


def best(runs: list[dict], key: str, lowest: bool) -> dict:
    """The run with the lowest (`lowest`) or highest final `key`; the first of those level."""
    return (min if lowest else max)(runs, key=lambda r: r[key])


def order(runs: list[dict], key: str, sign: str) -> list[dict]:
    """Runs in an order, as printed, each with the sign before it: `sign`, or '$=$' after a run level with it."""
    return [{**shown(r), "sep": "" if i == 0 else "$=$" if printed(r, key) == printed(runs[i - 1], key) else sign}
            for i, r in enumerate(runs)]


def gap(run: dict) -> float:
    """Points by which a run's final training accuracy exceeds its validation accuracy, as printed (51.3 - 31.3:
    20.0)."""
    return round(printed(run, "final_train_acc") - printed(run, "final_val_acc"), 1)


def gap_word(run: dict, other: dict) -> str:
    """Whether `run`'s gap between training and validation accuracy is 'smaller', 'larger' or 'the same' as
    `other`'s (as printed)."""
    return "smaller" if gap(run) < gap(other) else "larger" if gap(run) > gap(other) else "the same"

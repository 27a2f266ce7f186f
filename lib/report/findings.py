"""Findings computed from runs and their per-epoch curves, as the paper prints them.

What it is: pure functions from runs or curves to small dicts of printed values (what the validation loss did,
where the accuracy peaked, how late the training loss fell, whether a difference exceeds the seeds' spread) and
the comparisons the prose words ('higher', an order of runs). What it is not: prose (report/prose/) or files.
"""
from __future__ import annotations

import math

from .formatting import loss, pct, printed, shown

RISE = 0.05  # a validation loss that ends more than this share above its minimum has risen (the run overfits)
OVERFIT_EPOCHS = 3  # ... after at least this many epochs past the minimum; fewer are no trend (smoke: 2 epochs)
LATE = 0.25  # the share of training at the end over which the training loss's last descent is reported


def spread(run: dict, other: dict, key: str = "final_val_acc") -> dict | None:
    """Whether two settings' difference in a final accuracy is larger than the spread between seeds: None for
    single runs; else the difference and the larger of the two standard deviations over seeds (points, as
    printed) and whether the difference exceeds it."""
    sds = [r.get("std", {}).get(key) for r in (run, other)]
    if None in sds:
        return None
    difference = f"{abs(printed(run, key) - printed(other, key)):.1f}"  # of the values as printed (points)
    return {"difference": difference, "sd": pct(max(sds)), "larger": float(difference) > float(pct(max(sds)))}


def val_loss_trend(curves: dict[str, list[float]]) -> dict:
    """What a run's validation loss did, from its curve: where it was lowest (epoch from 1) and that value, how
    far it rose from there to the last epoch, and whether that rise exceeds RISE of the minimum ("rose"), or
    else whether the minimum is the last epoch ("falling") or the loss stayed within RISE of it ("flat")."""
    values = curves["val_loss"]
    low = min(range(len(values)), key=values.__getitem__)
    rise = values[-1] - values[low]
    shape = "rose" if rise > RISE * values[low] else "falling" if low == len(values) - 1 else "flat"
    if shape == "rose" and len(values) - 1 - low < OVERFIT_EPOCHS:
        shape = "ended_higher"
    if not math.isfinite(values[-1]):  # diverged (lib.results reads a NaN loss as inf)
        shape = "diverged"
    return {"shape": shape, "min_epoch": low + 1, "min": loss(values[low]), "rise": loss(rise),
            "last": loss(values[-1]), "epochs": len(values), "train_acc": pct(curves["train_acc"][-1]),
            "threshold": f"{100 * RISE:g}",
            "diverged_epoch": next((i + 1 for i, value in enumerate(values) if not math.isfinite(value)), None)}


def val_acc_peak(curves: dict[str, list[float]]) -> dict:
    """Where a run's validation accuracy curve was highest (epoch from 1, the first if level) and its value."""
    values = curves["val_acc"]
    best_epoch = max(range(len(values)), key=values.__getitem__)
    return {"epoch": best_epoch + 1, "acc": pct(values[best_epoch])}


def late_descent(curves: dict[str, list[float]]) -> dict:
    """The training loss over the last LATE of the epochs (at least the last epoch): its value at the start of
    that stretch and at the end, and the share of the whole run's decrease that happened in it (percent; None if
    the loss did not decrease over the run)."""
    values = curves["train_loss"]
    first = max(0, min(round(len(values) * (1 - LATE)) - 1, len(values) - 2))  # the epoch before the stretch
    total = values[0] - values[-1]
    share = f"{100 * (values[first] - values[-1]) / total:.0f}" if total > 0 else None
    return {"from_epoch": first + 1, "from": loss(values[first]), "to": loss(values[-1]), "share": share}


def curve_findings(named: dict[str, dict[str, list[float]]]) -> dict[str, dict]:
    """For runs' curves by name: {'trend': val_loss_trend, 'peak': val_acc_peak, 'late': late_descent} per name."""
    return {"trend": {name: val_loss_trend(c) for name, c in named.items()},
            "peak": {name: val_acc_peak(c) for name, c in named.items()},
            "late": {name: late_descent(c) for name, c in named.items()}}


def higher(a: float, b: float, fmt=loss) -> str:
    """'higher', 'lower' or 'the same', comparing the numbers as printed (so the words match the digits)."""
    a, b = (float(fmt(v)) if math.isfinite(v) else math.inf for v in (a, b))  # diverged: higher than any loss
    return "higher" if a > b else "lower" if a < b else "the same"


def compare(run: dict, other: dict) -> dict[str, str]:
    """How `run`'s final numbers compare with `other`'s as printed: {'train_loss': 'lower', ...}."""
    return {"train_loss": higher(run["final_train_loss"], other["final_train_loss"]),
            "val_loss": higher(run["final_val_loss"], other["final_val_loss"]),
            "val_acc": higher(run["final_val_acc"], other["final_val_acc"], pct)}


def best(runs: list[dict], key: str, lowest: bool) -> dict:
    """The run with the lowest (`lowest`) or highest final `key`; the first of those level."""
    return (min if lowest else max)(runs, key=lambda r: r[key])


def order(runs: list[dict], key: str, sign: str) -> list[dict]:
    """Runs in an order, as printed, each with the sign before it: `sign`, or '$=$' after a run level with it."""
    return [{**shown(r), "sep": "" if i == 0 else "$=$" if printed(r, key) == printed(runs[i - 1], key) else sign}
            for i, r in enumerate(runs)]

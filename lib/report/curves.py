"""Findings read from per-epoch curves, as an expert reads them, with every threshold they need in one place.

What it is: pure functions from a run's curves (lists per epoch: train_loss, train_acc, val_loss, val_acc, as in
the results files; accuracies as fractions) to small dicts of printed values: what the validation loss did and
whether the accuracy held while it rose (`val_loss_trend`), who led a comparison when and by how much
(`lead_phases`), what the last third of training brought (`late_gain`), and whether runs fitted their training
split (`fitted`). What it is not: the wording (report/prose/) or comparisons of final numbers (findings.py).
"""
from __future__ import annotations

import math

from .formatting import loss, pct

# The thresholds of every curve finding (tests/test_report.py exercises both sides of each).
RISE = 0.05  # a validation loss that ends more than this share above its minimum has risen
OVERFIT_EPOCHS = 3  # ... after at least this many epochs past the minimum; fewer are no trend (smoke: 2 epochs)
HOLD_POINTS = 3.0  # a validation accuracy within this many points of its peak while its loss rose has held
LATE = 1 / 3  # the last third of training: where a late gain is looked for (and the curves figure zooms)
LEAD_POINTS = 0.5  # a lead in validation accuracy smaller than this many points is no lead
UNDERFIT_POINTS = 5.0  # a setting whose training accuracy trails by more than this many points fits more slowly
MOSTLY_LATE = 0.5  # a final advantage more than this share of which was gained in the last third came late
FITTED_LOSS = 0.1  # a final training loss below this has fitted the training split (CIFAR-100: from ln 100 = 4.6)
TRIVIAL_PEAK = 0.05  # a maximum less than this share above a curve's first value is no peak


def _points(fraction: float) -> float:
    return float(pct(fraction))  # as printed, so the words agree with the digits


def val_loss_trend(curves: dict[str, list[float]]) -> dict:
    """What a run's validation loss did: where it was lowest (epoch from 1) and that value, how far it rose from
    there to the last epoch, and its shape: "rose" (by more than RISE of the minimum, at least OVERFIT_EPOCHS
    after it), "ended_higher" (risen, but too few epochs later to call a trend), "falling" (lowest in the last
    LATE of training), "flat" (within RISE of an earlier minimum) or "diverged". With "rose", `acc_held` says
    whether the validation accuracy ended within HOLD_POINTS of its peak (a loss rising while the accuracy holds:
    over-confident wrong predictions) and `acc_drop` by how many points it fell from that peak."""
    values, acc = curves["val_loss"], curves["val_acc"]
    low = min(range(len(values)), key=values.__getitem__)
    rise = values[-1] - values[low]
    late = low >= len(values) * (1 - LATE) - 1
    shape = "rose" if rise > RISE * values[low] else "falling" if late else "flat"
    if shape == "rose" and len(values) - 1 - low < OVERFIT_EPOCHS:
        shape = "ended_higher"
    if not math.isfinite(values[-1]):  # diverged (lib.studies.results reads a NaN loss as inf)
        shape = "diverged"
    drop = max(_points(a) for a in acc) - _points(acc[-1])
    return {"shape": shape, "min_epoch": low + 1, "min": loss(values[low]), "rise": loss(rise),
            "factor": f"{values[-1] / values[low]:.1f}" if values[low] > 0 and math.isfinite(values[-1]) else None,
            "last": loss(values[-1]), "epochs": len(values), "train_acc": pct(curves["train_acc"][-1]),
            "acc_held": drop <= HOLD_POINTS, "acc_drop": f"{drop:.1f}",
            "acc_peak": f"{max(_points(a) for a in acc):.1f}", "acc_last": pct(acc[-1]),
            "diverged_epoch": next((i + 1 for i, value in enumerate(values) if not math.isfinite(value)), None)}


def lead_phases(a: dict[str, list[float]], b: dict[str, list[float]]) -> dict:
    """Who led in validation accuracy, `a` or `b`, over the epochs both trained, with LEAD_POINTS as the smallest
    lead. `kind`: "level" (within LEAD_POINTS at the end), "throughout" (the final leader never trailed by more),
    or "overtook" (the other led until `until` and the final leader led from `from_epoch`, epochs from 1). The
    loser's largest lead (points) and its epoch, the final lead, and `underfit`: at that epoch the final leader's
    training accuracy trailed by more than UNDERFIT_POINTS (it fitted more slowly) with both training accuracies."""
    n = min(len(a["val_acc"]), len(b["val_acc"]))
    diff = [_points(x) - _points(y) for x, y in zip(a["val_acc"][:n], b["val_acc"][:n], strict=True)]
    end = diff[-1]
    if abs(end) < LEAD_POINTS:
        return {"kind": "level", "leader": None, "lead": f"{abs(end):.1f}", "epochs": n, "margin": f"{LEAD_POINTS:g}"}
    sign = 1 if end > 0 else -1
    leader, other = ("a", "b") if sign > 0 else ("b", "a")
    behind = [t for t in range(n) if sign * diff[t] < -LEAD_POINTS]
    found = {"leader": leader, "other": other, "lead": f"{abs(end):.1f}", "epochs": n, "margin": f"{LEAD_POINTS:g}"}
    if not behind:
        return {"kind": "throughout", **found}
    worst = max(behind, key=lambda t: -sign * diff[t])
    fits = (a, b) if sign > 0 else (b, a)
    leader_train, other_train = (_points(curve["train_acc"][worst]) for curve in fits)
    return {"kind": "overtook", **found, "until": behind[-1] + 1, "from_epoch": behind[-1] + 2,
            "other_lead": f"{-sign * diff[worst]:.1f}", "other_lead_epoch": worst + 1,
            "led_share": f"{100 * len(behind) / n:.0f}",
            "underfit": other_train - leader_train > UNDERFIT_POINTS,
            "leader_train": f"{leader_train:.1f}", "other_train": f"{other_train:.1f}"}


def late_gain(a: dict[str, list[float]], b: dict[str, list[float]]) -> dict:
    """What the last LATE of training brought in validation accuracy: each run's value at its start (epoch
    `from_epoch`) and at the end with the gain in points, and `mostly_late`: more than MOSTLY_LATE of `a`'s final
    advantage over `b` was gained in that stretch (and the advantage is positive)."""
    n = min(len(a["val_acc"]), len(b["val_acc"]))
    start = max(0, min(round(n * (1 - LATE)) - 1, n - 2))  # the epoch before the stretch (0-based)

    def stretch(curve):
        first, last = _points(curve["val_acc"][start]), _points(curve["val_acc"][n - 1])
        return {"from": f"{first:.1f}", "to": f"{last:.1f}", "gain": f"{last - first:+.1f}"}

    before = _points(a["val_acc"][start]) - _points(b["val_acc"][start])
    after = _points(a["val_acc"][n - 1]) - _points(b["val_acc"][n - 1])
    return {"from_epoch": start + 1, "to_epoch": n, "a": stretch(a), "b": stretch(b),
            "advantage_before": f"{before:+.1f}", "advantage": f"{after:+.1f}",
            "mostly_late": after > 0 and after - before > MOSTLY_LATE * after}


def fitted(*runs: dict) -> bool:
    """Whether every run's final training loss is below FITTED_LOSS: each has fitted its training split."""
    return all(run["final_train_loss"] < FITTED_LOSS for run in runs)


def peak(values: list[float]) -> dict:
    """A positive series' first, highest (epoch from 1, over the finite epochs) and last value, and whether the
    highest is no real peak (within TRIVIAL_PEAK of the first value: the series is highest at the start)."""
    finite = [i for i, value in enumerate(values) if math.isfinite(value)] or [0]
    top = max(finite, key=values.__getitem__)
    return {"top": top + 1, "at_start": top == 0 or values[top] <= (1 + TRIVIAL_PEAK) * values[0]}

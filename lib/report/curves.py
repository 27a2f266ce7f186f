"""Findings read from per-epoch curves, as an expert reads them, with every threshold they need in one place.

What it is: pure functions from a run's curves (lists per epoch: train_loss, train_acc, val_loss, val_acc, as in
the results files; accuracies as fractions) to small dicts of printed values: the rises and falls of a curve that
are larger than its noise (`moves`), what the validation loss did over the whole run and whether the accuracy held
while it rose (`val_loss_trend`), who led a comparison when, by how much and how often the lead changed hands
(`lead_phases`), what the last third of training brought (`late_gain`), and whether runs fitted their training
split (`fitted`). What it is not: the wording (report/prose/) or comparisons of final numbers (findings.py).
"""
from __future__ import annotations

import math
import statistics

from .formatting import loss, pct

# The thresholds of every curve finding (tests/test_report.py exercises both sides of each).
RISE = 0.05  # a validation loss that ends more than this share above its minimum has risen; no smaller move counts
NOISE = 3.0  # ... nor a move within this many times the curve's noise (its typical distance from a running median)
NOISE_WINDOW = 5  # epochs of that running median
OVERFIT_EPOCHS = 3  # ... after at least this many epochs past the minimum; fewer are no trend (smoke: 2 epochs)
HOLD_POINTS = 3.0  # a validation accuracy within this many points of its peak while its loss rose has held
LATE = 1 / 3  # the last third of training: where a late gain is looked for (and the curves figure zooms)
LEAD_POINTS = 0.5  # a lead in validation accuracy smaller than this many points is no lead
UNDERFIT_POINTS = 5.0  # a setting whose training accuracy trails by more than this many points fits more slowly
MOSTLY_LATE = 0.5  # a final advantage more than this share of which was gained in the last third came late
FITTED_LOSS = 0.1  # a final training loss below this has fitted the training split (CIFAR-100: from ln 100 = 4.6)


def _points(fraction: float) -> float:
    return float(pct(fraction))  # as printed, so the words agree with the digits


def noise(values: list[float]) -> float:
    """A curve's epoch-to-epoch noise: the median distance of its values from their running median over
    NOISE_WINDOW epochs (0 for a smooth curve)."""
    half = NOISE_WINDOW // 2
    return statistics.median(abs(v - statistics.median(values[max(0, i - half):i + half + 1]))
                             for i, v in enumerate(values)) if values else 0.0


def moves(values: list[float]) -> list[dict]:
    """The rises and falls of a finite curve larger than max(RISE of its minimum, NOISE times its noise), in order:
    each {"dir": "rose" or "fell", "from_epoch", "to_epoch" (epochs from 1: the turning points), "to" (the value
    there, as printed)}. A curve that never moves by more is one without moves; what follows the last turning
    point moves by less."""
    if len(values) < 2:
        return []
    threshold = max(RISE * min(values), NOISE * noise(values))
    turns, trend, extreme = [0], 0, 0  # turning points (0-based), +1 rising / -1 falling / 0 not yet, its extreme
    for i, value in enumerate(values[1:], start=1):
        if trend == 0:
            trend = 1 if value - values[0] > threshold else -1 if values[0] - value > threshold else 0
            extreme = i
        elif trend * (value - values[extreme]) >= 0:
            extreme = i  # the move goes on
        elif abs(value - values[extreme]) > threshold:
            turns.append(extreme)  # it turned: the extreme was a turning point
            trend, extreme = -trend, i
    if trend:
        turns.append(extreme)
    return [{"dir": "rose" if values[end] > values[start] else "fell", "from_epoch": start + 1, "to_epoch": end + 1,
             "to": loss(values[end])} for start, end in zip(turns, turns[1:], strict=False)]


def val_loss_trend(curves: dict[str, list[float]]) -> dict:
    """What a run's validation loss did over the whole run: its `moves` (rises and falls above the noise), where it
    was lowest (epoch from 1) and that value, how far it rose from there to the last epoch, whether it rose and then
    fell again (`wavy`: a rise followed by a fall) and its shape: "rose" (ended more than RISE of the minimum above
    it, at least OVERFIT_EPOCHS after it), "ended_higher" (risen, but too few epochs later to call a trend),
    "wavy" (no such end, but a rise in mid-run), "falling" (no rise, lowest in the last LATE of training), "flat"
    (no rise, lowest earlier and ended within RISE of it) or "diverged". With "rose", `acc_held` says whether the
    validation accuracy ended within HOLD_POINTS of its peak (a loss rising while the accuracy holds: over-confident
    wrong predictions) and `acc_drop` by how many points it fell from that peak."""
    values, acc = curves["val_loss"], curves["val_acc"]
    finite = next((i for i, value in enumerate(values) if not math.isfinite(value)), len(values))
    low = min(range(finite or 1), key=values.__getitem__)
    rise = values[-1] - values[low]
    found = moves(values[:finite])
    wavy = any(a["dir"] == "rose" and b["dir"] == "fell" for a, b in zip(found, found[1:], strict=False))
    late = low >= len(values) * (1 - LATE) - 1
    shape = "rose" if rise > RISE * values[low] else "wavy" if wavy else "falling" if late else "flat"
    if shape == "rose" and len(values) - 1 - low < OVERFIT_EPOCHS:
        shape = "ended_higher"
    if finite < len(values):  # diverged (lib.studies.results reads a NaN loss as inf)
        shape = "diverged"
    drop = max(_points(a) for a in acc) - _points(acc[-1])
    return {"shape": shape, "moves": found, "wavy": wavy, "min_epoch": low + 1, "min": loss(values[low]),
            "rise": loss(rise), "last": loss(values[-1]), "epochs": len(values),
            "factor": f"{values[-1] / values[low]:.1f}" if values[low] > 0 and math.isfinite(values[-1]) else None,
            "ends_at_turn": not found or loss(values[-1]) == found[-1]["to"],
            "train_acc": pct(curves["train_acc"][-1]), "acc_held": drop <= HOLD_POINTS, "acc_drop": f"{drop:.1f}",
            "acc_peak": f"{max(_points(a) for a in acc):.1f}", "acc_last": pct(acc[-1]),
            "diverged_epoch": finite + 1 if finite < len(values) else None}


def _crossings(diff: list[float]) -> list[int]:
    """The epochs (0-based) at which a difference changes sign from its last non-zero value: where the curves cross."""
    found, last = [], 0
    for t, value in enumerate(diff):
        sign = (value > 0) - (value < 0)
        if sign and last and sign != last:
            found.append(t)
        last = sign or last
    return found


def _clear_runs(diff: list[float], sign: int) -> list[tuple[int, int, int]]:
    """The stretches in which one side led by more than LEAD_POINTS, as (who, first, last): who is +1 for the
    side `sign` favours, -1 for the other; epochs 0-based; epochs within LEAD_POINTS extend no stretch."""
    found: list[list[int]] = []
    for t, value in enumerate(diff):
        if abs(value) > LEAD_POINTS:
            who = 1 if sign * value > 0 else -1
            if found and found[-1][0] == who:
                found[-1][2] = t
            else:
                found.append([who, t, t])
    return [tuple(run) for run in found]


def lead_phases(a: dict[str, list[float]], b: dict[str, list[float]]) -> dict:
    """Who led in validation accuracy, `a` or `b`, over the epochs both trained, with LEAD_POINTS as the smallest
    lead. `kind`: "level" (within LEAD_POINTS at the end), "throughout" (the final leader never trailed by more),
    "overtook" (the other led, the curves crossed once, at `from_epoch`: the final leader was ahead from there and
    behind until `until`), or "changed" (the lead changed hands more than once: the curves crossed `changes` times
    between epochs `band_from` and `band_to`, `first` leading before and the final leader from `band_to` on).
    Epochs from 1. With either of the last two, the other's largest lead (points) and its epoch, and `underfit`: at
    that epoch the final leader's training accuracy trailed by more than UNDERFIT_POINTS (it fitted more slowly)."""
    n = min(len(a["val_acc"]), len(b["val_acc"]))
    diff = [_points(x) - _points(y) for x, y in zip(a["val_acc"][:n], b["val_acc"][:n], strict=True)]
    end = diff[-1]
    if abs(end) < LEAD_POINTS:
        return {"kind": "level", "leader": None, "lead": f"{abs(end):.1f}", "epochs": n, "margin": f"{LEAD_POINTS:g}"}
    sign = 1 if end > 0 else -1
    leader, other = ("a", "b") if sign > 0 else ("b", "a")
    found = {"leader": leader, "other": other, "lead": f"{abs(end):.1f}", "epochs": n, "margin": f"{LEAD_POINTS:g}"}
    runs = _clear_runs(diff, sign)
    if len(runs) < 2:
        return {"kind": "throughout", **found}
    crossings = [t for t in _crossings(diff) if runs[0][2] < t <= runs[-1][1]]  # between the first lead and the last
    worst = max((t for t in range(n) if sign * diff[t] < -LEAD_POINTS), key=lambda t: -sign * diff[t])
    fits = (a, b) if sign > 0 else (b, a)
    leader_train, other_train = (_points(curve["train_acc"][worst]) for curve in fits)
    found |= {"first": leader if runs[0][0] > 0 else other, "other_lead": f"{-sign * diff[worst]:.1f}",
              "other_lead_epoch": worst + 1, "underfit": other_train - leader_train > UNDERFIT_POINTS,
              "leader_train": f"{leader_train:.1f}", "other_train": f"{other_train:.1f}"}
    if len(crossings) == 1:
        return {"kind": "overtook", **found, "until": crossings[0], "from_epoch": crossings[0] + 1}
    return {"kind": "changed", **found, "changes": len(crossings), "band_from": crossings[0] + 1,
            "band_to": crossings[-1] + 1, "until": crossings[0], "from_epoch": crossings[-1] + 1}


def late_gain(a: dict[str, list[float]], b: dict[str, list[float]]) -> dict:
    """What the last LATE of training brought in validation accuracy: each run's value at its start (epoch
    `from_epoch`) and at the end with the gain in points, `a`'s advantage over `b` there and at the end, and
    `mostly_late`: more than MOSTLY_LATE of `a`'s final advantage over `b` was gained in that stretch (and the
    advantage is positive)."""
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
    """A positive series' highest value over its finite epochs: its epoch (from 1) and whether it is the first."""
    finite = [i for i, value in enumerate(values) if math.isfinite(value)] or [0]
    top = max(finite, key=values.__getitem__)
    return {"top": top + 1, "at_start": top == 0}

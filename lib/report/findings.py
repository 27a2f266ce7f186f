"""Findings computed from runs' final numbers, as the paper prints them.

What it is: pure functions from runs' final numbers to small dicts of printed values (a difference over seeds
with its Welch interval) and the comparisons the prose words ('higher', an order of runs). What it is not: prose
(report/prose/), files, or what a curve did over the epochs (curves.py).
"""
from __future__ import annotations

import math

import scipy.stats

from ..core import notation
from ..studies.sections import get
from .formatting import loss, pct, printed, shown

CONFIDENCE = 0.95  # the level of the interval every difference over seeds is given with


def welch_interval(mean: float, sd: float, n: int, other_mean: float, other_sd: float, other_n: int,
                   level: float = CONFIDENCE) -> tuple[float, float]:
    """The `level` confidence interval of mean - other_mean from Welch's t: each side's mean, sample standard
    deviation (ddof 1) and n (>= 2 each), Welch-Satterthwaite degrees of freedom; [d, d] when both sds are 0."""
    a, b = sd**2 / n, other_sd**2 / other_n  # squared standard errors of the two means
    d = mean - other_mean
    if a + b == 0:
        return d, d
    df = (a + b) ** 2 / (a**2 / (n - 1) + b**2 / (other_n - 1))
    half = scipy.stats.t.ppf((1 + level) / 2, df) * math.sqrt(a + b)
    return d - half, d + half


METRIC_WORDS = {"final_train_loss": "training loss", "final_train_acc": "training accuracy",
                "final_val_loss": "validation loss", "final_val_acc": "validation accuracy"}


def means(*runs: dict) -> bool:
    """Whether every run's numbers are means over two or more seeds (a results row's n_seeds)."""
    return all(run.get("n_seeds", 1) >= 2 for run in runs)


def gain(run: dict, other: dict, key: str = "final_val_acc") -> float:
    """`run`'s final `key` minus `other`'s as the paper prints it (points for accuracies, loss units for losses):
    between means over seeds, the unrounded difference rounded once (the centre of its interval, `difference`);
    between single runs, the difference of the printed values (so it agrees with the table's digits)."""
    scale, digits = (1, 3) if "loss" in key else (100, 1)
    if means(run, other):
        return round(scale * (run[key] - other[key]), digits)
    return round(printed(run, key) - printed(other, key), digits)


def difference(run: dict, other: dict, key: str = "final_val_acc") -> dict | None:
    """How `run`'s final `key` differs from `other`'s over seeds: None if either is a single run (n = 1), has no
    sd of `key` or a value that is not finite (diverged); else, as printed (accuracies in points, losses in loss
    units): `difference` (the unrounded means' difference rounded once, signed: `gain`) and the 95 % Welch interval
    of the difference of means around it (`low`, `high`: the printed difference minus and plus the printed
    half-width, so the printed difference is the printed interval's midpoint), whether it excludes 0 (as printed:
    [0.0, 1.2] does not), `n` and `other_n`, `loss` (lower is better), `metric` (in words), and `all`: "above" if
    every seed of `run` ended above every seed of `other`, "below" if every one below, None if neither or the
    results hold no per-seed values (seed_finals)."""
    ns = [r.get("n_seeds", 1) for r in (run, other)]
    sds = [(r.get("std") or {}).get(key) for r in (run, other)]
    values = [run[key], other[key], *sds] if None not in sds else []
    if min(ns) < 2 or not values or not all(math.isfinite(v) for v in values):
        return None
    scale, digits = (1, 3) if "loss" in key else (100, 1)  # printed units: loss units, or percentage points
    low, high = welch_interval(run[key], sds[0], ns[0], other[key], sds[1], ns[1])
    centre, half = gain(run, other, key), round(scale * (high - low) / 2, digits)
    bounds = [_unsigned_zero(f"{v:.{digits}f}") for v in (centre - half, centre + half)]
    return {"difference": f"{centre:+.{digits}f}", "low": bounds[0], "high": bounds[1],
            "excludes_zero": float(bounds[0]) > 0 or float(bounds[1]) < 0, "n": ns[0], "other_n": ns[1],
            "loss": "loss" in key, "metric": METRIC_WORDS.get(key, key), "all": seeds_apart(run, other, key)}


def _unsigned_zero(text: str) -> str:
    """A printed number that rounds to zero without its sign: '-0.0' -> '0.0'."""
    return text.lstrip("-") if float(text) == 0 else text


def seeds_apart(run: dict, other: dict, key: str) -> str | None:
    """"above" if every seed's final `key` of `run` exceeds every seed's of `other`, "below" if every one is below,
    else None; None too where either lacks per-seed values (`seed_finals`, absent from older results files)."""
    each = [(r.get("seed_finals") or {}).get(key) for r in (run, other)]
    if not all(each):
        return None
    mine, theirs = each
    return "above" if min(mine) > max(theirs) else "below" if max(mine) < min(theirs) else None


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


# What decided a first place that ties at the printed precision: the notebooks' words (lib.core.notation).
TIE_EQUAL, TIE_AHEAD = notation.TIE_EQUAL, notation.TIE_AHEAD


def standing(runs: list[dict], key: str, lowest: bool) -> dict:
    """The first of `runs` (in the order the notebook listed them) by final `key`, as the notebooks choose it
    (lib.studies.sections.choose_label: the best unrounded value, exact ties to the first listed, a value that is
    not a number last) and say it (lib.studies.study.report_choice): {"best": the run, "tied": the other runs that
    print alike at the notebooks' precision (lib.core.notation.printed), "rule": what decided among them, TIE_EQUAL
    or TIE_AHEAD, None without a tie}."""
    sign = -1.0 if lowest else 1.0

    def merit(run: dict) -> float:
        return sign * run[key] if math.isfinite(run[key]) else -math.inf

    top = max(runs, key=merit)
    tied = [r for r in runs if r is not top and notation.printed(key, r[key]) == notation.printed(key, top[key])]
    rule = None if not tied else TIE_EQUAL if all(r[key] == top[key] for r in tied) else TIE_AHEAD
    return {"best": top, "tied": tied, "rule": rule}


def tie(found: dict, name) -> dict | None:
    """A `standing`'s tie for a template, the runs named by `name(run)`: {"with": [the tied runs' names], "rule"};
    None without a tie."""
    return {"with": [name(r) for r in found["tied"]], "rule": found["rule"]} if found["tied"] else None


def choice_tie(record: dict, name) -> dict | None:
    """The tie of the first place a section's choice was made on, if it tied at the printed precision: `tie` of
    `standing` over its runs as the notebook listed them, by its record's chosen_by (else its brief's first
    choose_by); the runs named by `name(run)`. None without a tie, or for a section that chooses nothing."""
    criteria = get(record["section"]).choose_by
    metric = record["extra"].get("chosen_by") or (criteria[0] if criteria else None)
    if metric is None or not record["runs"]:
        return None
    key = f"final_{metric}"
    return tie(standing(record["runs"], key, "loss" in key), name)


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


def effect(run: dict, before: dict) -> dict:
    """What a change did to the final validation accuracy, as printed (`gain`): the verb ('raised', 'lowered', 'left
    unchanged') and the size in points ('1.7')."""
    change = gain(run, before)
    verb = "raised" if change > 0 else "lowered" if change < 0 else "left unchanged"
    return {"verb": verb, "by": f"{abs(change):.1f}", "signed": f"${change:+.1f}$"}

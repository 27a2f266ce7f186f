"""The paper's activation section (06): Sigmoid in some blocks against 05's chosen run (ReLU), and what the
gradient norm of one parameter did in each."""
from __future__ import annotations

import math
import statistics

from ...core.notation import parameter_name
from ..curves import peak
from ..findings import compare, difference
from ..formatting import Facts, shown
from ..reading import one, others
from ..tables import note, public, run_table


def series(norms: dict[str, list[float]], run: dict, is_sigmoid: bool) -> list[float] | None:
    """A run's per-epoch gradient norms from 06's `grad_norm` (by its label, else by activation name), or None."""
    if run["label"] in norms:
        return norms[run["label"]]
    for key, values in norms.items():  # labels differ from the keys: match by activation name
        if ("sigmoid" in key.lower()) == is_sigmoid:
            return values
    return None


def norm(value: float) -> str:
    """A gradient norm with three significant digits; an epoch without a norm (diverged, fp16) says so."""
    return f"{value:#.3g}" if math.isfinite(value) else "not a number"


def both_numbers(relu_norm: float, sigmoid_norm: float) -> bool:
    """Whether ReLU's and Sigmoid's norms of an epoch are both numbers with a ratio to take."""
    return math.isfinite(relu_norm) and math.isfinite(sigmoid_norm) and sigmoid_norm > 0


def norm_summary(values: list[float], is_sigmoid: bool) -> dict:
    """A gradient norm's start, peak (epoch from 1; lib.report.curves.peak: none when within a few percent of the
    start) and end, as printed."""
    top = peak(values)
    return {"sigmoid": is_sigmoid, "start": norm(values[0]), "peak": norm(values[top["top"] - 1]),
            "peak_epoch": top["top"], "peak_at_start": top["at_start"], "end": norm(values[-1]),
            "level": len({norm(value) for value in values}) == 1}


def norm_ratio(relu_values: list[float], sigmoid_values: list[float]) -> dict | None:
    """ReLU's norm divided by Sigmoid's: the median over the epochs where both are numbers (Sigmoid's > 0), how
    many such epochs of all, and the last epoch's ratio (None if not both numbers); None if no epoch has one."""
    pairs = list(zip(relu_values, sigmoid_values, strict=False))
    ratios = [r / s for r, s in pairs if both_numbers(r, s)]
    if not ratios:
        return None
    return {"median": f"{statistics.median(ratios):#.3g}", "epochs": len(ratios), "all": len(pairs),
            "last": f"{pairs[-1][0] / pairs[-1][1]:#.3g}" if both_numbers(*pairs[-1]) else None}


def relative_norms(grad_norms: list[float], weight_norms: list[float]) -> list[float]:
    """Per epoch, the gradient norm over the weight's own norm (||grad w|| / ||w||); not a number where the
    weight's norm is not a positive number."""
    return [g / w if math.isfinite(w) and w > 0 else math.nan for g, w in zip(grad_norms, weight_norms, strict=False)]


def relative_norm_ratio(grads: dict[bool, list[float]], weights: dict[bool, list[float]]) -> str | None:
    """ReLU's ||grad w|| / ||w|| divided by Sigmoid's, the median over the epochs where both are numbers (three
    significant digits); `grads` and `weights` map is_sigmoid to a series. None without both weight-norm series
    (results from before lib.training.train recorded `weight_norm`) or without such an epoch."""
    if len(grads) < 2 or len(weights) < 2:
        return None
    ratio = norm_ratio(*(relative_norms(grads[is_sigmoid], weights[is_sigmoid]) for is_sigmoid in (False, True)))
    return ratio["median"] if ratio else None


def activation(rec: dict, relu: dict, n: int) -> Facts:
    """06's macros, table and prose values; `relu` is 05's chosen run, 06's run without Sigmoid."""
    sig = one(others(rec, relu), lambda c: len(c["sigmoid_blocks"]) > 0, "sigmoid_blocks", rec["section"])
    blocks = shown(sig)["blocks"]
    facts = Facts()
    m = facts.macros
    m["SigmoidBlocks"] = blocks
    param = sig["config"].get("grad_norm_param", "layers.8.conv1.weight")
    m["GradParam"] = "\\texttt{" + parameter_name(param).replace("_", "\\_") + "}"
    m.runs("Sig", sig)
    m.runs("Relu", relu)
    norms = rec["extra"].get("grad_norm", {})
    found = {is_sigmoid: values for run, is_sigmoid in ((relu, False), (sig, True))
             if (values := series(norms, run, is_sigmoid))}
    grad_norms = [norm_summary(values, is_sigmoid) for is_sigmoid, values in found.items()]
    ratio = norm_ratio(found[False], found[True]) if len(found) == 2 else None
    weight_norms = rec["extra"].get("weight_norm", {})
    weights = {is_sigmoid: values for run, is_sigmoid in ((relu, False), (sig, True))
               if (values := series(weight_norms, run, is_sigmoid))}
    # the gradient-norm figure's caption: its second panel (lib.studies.plots.plot_grad_norms) exists when the runs
    # recorded their weight norms
    m["GradNormRelative"] = (" (left) and that norm over the parameter's own 2-norm at the epoch's end (right)"
                             if len(weights) == 2 else "")
    ranges = public(rec, [relu, sig])
    facts.tables["06_activation"] = run_table(
        [("ReLU", relu, False), (f"Sigmoid, blocks {blocks}", sig, False)], ranges)
    block = int(param.split(".")[1]) if param.startswith("layers.") else None
    sigmoid_blocks = list(sig["config"]["sigmoid_blocks"])
    inside = block in sigmoid_blocks
    facts.values = {"arch": sig["config"]["arch"], "grad_param": param, "grad_param_inside": inside, "n": n,
                    "block": block, "blocks_after": [b for b in sigmoid_blocks if block is not None and b > block],
                    "blocks_before": [b for b in sigmoid_blocks if block is not None and b < block],
                    "spread": difference(sig, relu), "relu": shown(relu), "sig": shown(sig),
                    "sig_vs_relu": compare(sig, relu), "grad_norms": grad_norms,
                    "ratio": ratio, "norm_ratio_relative": relative_norm_ratio(found, weights),
                    "public": note([relu, sig], ranges)}
    return facts

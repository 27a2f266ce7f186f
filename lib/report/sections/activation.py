"""The paper's activation section: Sigmoid in some blocks against the run it starts from (ReLU: the chosen run of
the section it starts from, by run id), what the gradient norm of one parameter did in each, also relative to the
parameter's own norm, and which Sigmoids lie between that parameter and the loss in the model trained (found on
the model itself, `gradient_path`: MobileNet v1's blocks have no shortcuts, MobileNetV2's stride-1 blocks do)."""
from __future__ import annotations

import functools
import math
import statistics

from ...core.notation import parameter_name
from ...studies.sections import brief
from ..curves import peak
from ..findings import compare, difference, effect
from ..formatting import Facts, number_word, shown
from ..reading import one, others, runs_per_setting, start_run
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
    """A gradient norm's first value, its true maximum with its epoch (from 1; lib.report.curves.peak) and its
    last value, as printed; `level` when every epoch prints alike."""
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


def relative_norm_ratio(grads: dict[bool, list[float]], weights: dict[bool, list[float]]) -> dict | None:
    """||grad w|| / ||w|| of each run, the median over its epochs (`relu`, `sigmoid`, three significant digits), and
    ReLU's divided by Sigmoid's, the median over the epochs where both are numbers (`ratio`); `grads` and `weights`
    map is_sigmoid to a series. None without both weight-norm series (results from before lib.training.train
    recorded `weight_norm`) or without such an epoch."""
    if len(grads) < 2 or len(weights) < 2:
        return None
    relative = {is_sigmoid: relative_norms(grads[is_sigmoid], weights[is_sigmoid]) for is_sigmoid in (False, True)}
    ratio = norm_ratio(relative[False], relative[True])
    if ratio is None:
        return None
    medians = [statistics.median(v for v in relative[is_sigmoid] if math.isfinite(v)) for is_sigmoid in (False, True)]
    return {"ratio": ratio["median"], "relu": norm(medians[0]), "sigmoid": norm(medians[1])}


def block_of(param: str) -> int | None:
    """The block (index into model.layers) a parameter lies in: 'layers.8.conv1.weight' -> 8; None outside them."""
    parts = param.split(".")
    return int(parts[1]) if parts[0] == "layers" and len(parts) > 1 and parts[1].isdigit() else None


def watched_layer(model, param: str) -> dict | None:
    """What the watched parameter belongs to, as the paper names it: a convolution's kernel and kind (depthwise,
    expansion, projection) and its weights' shape ('512\\times3\\times3'); None for another kind of layer."""
    from torch import nn

    module = model.get_submodule(param.rpartition(".")[0])
    if not isinstance(module, nn.Conv2d):
        return None
    k = "\\times".join(str(size) for size in module.kernel_size)
    if module.groups == module.in_channels > 1:
        kind = "depthwise"
    elif module.kernel_size == (1, 1):
        kind = "expansion" if module.out_channels > module.in_channels else "projection" \
            if module.out_channels < module.in_channels else "pointwise"
    else:
        kind = ""
    shape = "\\times".join(str(size) for size in module.weight.shape if size > 1)
    return {"kernel": k, "kind": kind, "shape": shape}


def _sigmoids_on_paths(output, target, owner: dict) -> tuple[frozenset, frozenset] | None:
    """The Sigmoid nodes of the autograd graph from `output` back to parameter `target`: (those on every path,
    those on some path); None if no path reaches it. `owner` maps a Sigmoid's node to its block."""
    memo: dict[int, tuple | None] = {}

    def visit(node):
        if node is None:
            return None
        if id(node) in memo:
            return memo[id(node)]
        if hasattr(node, "variable"):  # a leaf: a parameter's gradient accumulator
            found = (frozenset(), frozenset()) if node.variable is target else None
        else:
            below = [r for r in (visit(child) for child, _ in node.next_functions) if r is not None]
            here = frozenset([node]) if node in owner else frozenset()
            found = (frozenset.intersection(*(r[0] for r in below)) | here,
                     frozenset.union(*(r[1] for r in below)) | here) if below else None
        memo[id(node)] = found
        return found

    return visit(output.grad_fn)


def gradient_path(config: dict, param: str) -> dict | None:
    """`sigmoid_path` of the model `config` trains (its architecture, classes and Sigmoid blocks)."""
    return sigmoid_path(config["arch"], config.get("num_classes", 100), tuple(config.get("sigmoid_blocks", ())),
                        param)


@functools.cache
def sigmoid_path(arch: str, num_classes: int, sigmoid_blocks: tuple[int, ...], param: str) -> dict | None:
    """Which Sigmoids the gradient of `param` passes back through from the loss, in that model,
    read from its autograd graph (so a shortcut around a block's activations counts): {"every": how many on every
    path, "some": how many on some path, "own": those of the parameter's own block on every path, "blocks":
    later blocks whose Sigmoids every path passes, "bypassed": later blocks whose Sigmoids a shortcut avoids,
    "layer": watched_layer}; None if the model has no such parameter."""
    import torch

    from ...nets.models import build_model  # torch is only needed here

    model = build_model(arch, num_classes, sigmoid_blocks).eval()
    params = dict(model.named_parameters())
    if param not in params:
        return None
    owner: dict = {}  # a Sigmoid output's autograd node -> the block it lies in

    def hook(block: int | None):
        return lambda _module, _inputs, out: owner.__setitem__(out.grad_fn, block)

    hooks = [module.register_forward_hook(hook(block_of(name))) for name, module in model.named_modules()
             if isinstance(module, torch.nn.Sigmoid)]
    output = model(torch.zeros(2, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    found = _sigmoids_on_paths(output, params[param], owner)
    every, some = found if found else (frozenset(), frozenset())
    block = block_of(param)
    on_every = sorted({owner[node] for node in every if owner[node] != block})
    own = sum(owner[node] == block for node in every)
    return {"every": len(every), "some": len(some), "own": own, "own_words": number_word(own),
            "blocks": on_every, "blocks_words": number_word(len(every) - own), "layer": watched_layer(model, param),
            "bypassed": sorted({owner[node] for node in some - every} - set(on_every))}


def norm_series(rec: dict, relu: dict, sig: dict, key: str) -> dict[bool, list[float]]:
    """The ReLU and Sigmoid runs' per-epoch series `key` of the section's `extra` ("grad_norm", "weight_norm"),
    keyed by is_sigmoid; a run without one is left out."""
    recorded = rec["extra"].get(key, {})
    return {is_sigmoid: values for run, is_sigmoid in ((relu, False), (sig, True))
            if (values := series(recorded, run, is_sigmoid))}


def facts(results: dict[str, dict], name: str) -> Facts:
    """The section's macros, table and prose values; its ReLU run is the run it starts from."""
    rec = results[name]
    relu, n = start_run(results, name), runs_per_setting(results, (name,))
    sig = one(others(rec, relu), lambda c: len(c["sigmoid_blocks"]) > 0, "sigmoid_blocks", name)
    blocks = shown(sig)["blocks"]
    found = Facts()
    m = found.macros
    m["SigmoidBlocks"] = blocks
    param = sig["config"].get("grad_norm_param", "layers.8.conv1.weight")
    m["GradParam"] = "\\texttt{" + parameter_name(param).replace("_", "\\_") + "}"
    m.runs("Sig", sig)
    m.runs("Relu", relu)
    grads, weights = norm_series(rec, relu, sig, "grad_norm"), norm_series(rec, relu, sig, "weight_norm")
    ratio = norm_ratio(grads[False], grads[True]) if len(grads) == 2 else None
    # the gradient-norm figure's caption: its second panel (lib.studies.plots.plot_grad_norms) exists when the runs
    # recorded their weight norms
    m["GradNormRelative"] = (" (left) and $\\|\\nabla w\\|/\\|w\\|$ (right)" if len(weights) == 2 else "")
    ranges = public(rec, [relu, sig])
    found.tables[name] = run_table([("ReLU", relu, False), ("Sigmoid", sig, False)], ranges)
    block = block_of(param)
    found.values = {"arch": sig["config"]["arch"], "grad_param": param, "n": n, "block": block,
                    "grad_param_inside": block in sig["config"]["sigmoid_blocks"],
                    "path": gradient_path(sig["config"], param),
                    "spread": difference(sig, relu), "relu": shown(relu), "sig": shown(sig),
                    "sig_vs_relu": compare(sig, relu), "effect": effect(sig, relu),
                    "grad_norms": [norm_summary(values, is_sigmoid) for is_sigmoid, values in grads.items()],
                    "ratio": ratio, "relative": relative_norm_ratio(grads, weights),
                    "starts_from_final": brief().section(name).starts_from == brief().final,
                    "public": note([relu, sig], ranges)}
    return found

"""Which runs may train together as one stack, what a stack is called, and how its training time is reported.

What it is: `group_key` (runs with equal keys share data, shapes and augmentation), the stack's short name, the
notes a plan prints for runs off the fast path, a stack's phases in words, the phases of several stacks as one
call's, and what to try smaller after running out of device memory. All pure: nothing here trains.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from ..core.config import RunConfig
from ..nets.device import Runtime
from .step import uses_graphs

STACKABLE = ("lr", "schedule", "weight_decay", "seed")  # runs differing only in these can train together


def group_key(config: RunConfig) -> tuple:
    """Runs with equal keys can train together: same data, shapes and augmentation; they may differ in the
    optimiser settings and the seed (STACKABLE) alone."""
    key = config.key()
    if not config.dropout:  # dropout draws in a stack would differ from the run's own alone: such runs train alone
        for name in STACKABLE:
            key.pop(name)
    return (config.data_dir, *sorted((k, str(v)) for k, v in key.items()))


def run_names(configs: list[RunConfig]) -> str:
    """One run's short name, or a stack's shared name and what varies, e.g.
    'mobilenetv2-constant-e15, 3 stacked: lr 0.5/0.05/0.01'."""
    if len(configs) == 1:
        return configs[0].short_name()
    varying = tuple(name for name in STACKABLE if len({getattr(c, name) for c in configs}) > 1)
    values = ("/".join(c.schedule if name == "schedule" else f"{getattr(c, name):g}" for c in configs)
              for name in varying)
    return (f"{configs[0].short_name(leave_out=varying)}, {len(configs)} stacked: "
            + ", ".join(f"{name} {text}" for name, text in zip(varying, values, strict=True)))


def path_notes(configs: list[RunConfig], rt: Runtime) -> list[str]:
    """One line per way these runs leave the fast path (or what they need), for the plans."""
    first, notes = configs[0], []
    if rt.cuda_graphs and not uses_graphs(configs, rt):
        notes.append(f"{first.optimizer}: eager steps (CUDA graphs capture SGD steps only); data on the device, "
                     "mixed precision and a fused optimiser as for SGD")
    if first.dropout:
        notes.append("dropout: each run trains alone (in a stack its dropout draws would differ from its own)")
    if any(c.early_stopping_patience for c in configs):
        notes.append("early stopping: a run that stops leaves its stack; the others go on as a new stack "
                     "(from their checkpoints)")
    if first.schedule == "plateau":
        notes.append("reduce-on-plateau: the factor is decided on the host at each epoch's end (no extra sync)")
    if first.pretrained:
        from ..nets.models import pretrained_note

        notes.append(pretrained_note(first.arch, first.pretrained))
    return notes


def phase_text(phases: dict) -> str:
    """'data 3.1 s, build 24.0 s (compiled), 8 epochs 17.2 s (first 2.6 s, median 2.08 s)' from train_together's
    `phases`; the build is model set-up plus cuDNN autotuning, compilation and CUDA-graph capture."""
    epochs = phases["epoch_seconds"]
    rest = epochs[1:] or epochs
    return (f"data {phases['data_seconds']:.1f} s, build {phases['build_seconds']:.1f} s"
            f"{' (compiled)' if phases['compiled'] else ''}, {len(epochs)} epochs {sum(epochs):.1f} s "
            f"(first {epochs[0]:.2f} s, median {float(np.median(rest)):.2f} s)")


def merged_phases(part_phases: list[dict], one_after_another: bool = False) -> dict:
    """The phases of stacks trained one after the other as one call's: times added, epoch by epoch (stacks over the
    same epochs), or epochs in sequence (`one_after_another`: rounds of a stack re-formed after early stops)."""
    epochs = [p.get("epoch_seconds", []) for p in part_phases]
    if one_after_another:
        epochs = [[t for times in epochs for t in times]]
    return {"data_seconds": sum(p.get("data_seconds", 0.0) for p in part_phases),
            "build_seconds": sum(p.get("build_seconds", 0.0) for p in part_phases),
            "compiled": any(p.get("compiled", False) for p in part_phases),
            "epoch_seconds": [sum(times) for times in itertools.zip_longest(*epochs, fillvalue=0.0)]
            if all(epochs) else [],
            "total_seconds": sum(p.get("total_seconds", 0.0) for p in part_phases)}


def smaller_after_out_of_memory(configs: list[RunConfig], rt: Runtime, in_evaluation: bool):
    """(parts: lists of indices into `configs`, runtime, what in words) to try after running out of device memory,
    or None when nothing is left to shrink: the evaluation batch is halved while it stays at least the training
    batch (below that, training needs more than evaluation); otherwise a stack is split in two."""
    if in_evaluation and rt.eval_batch // 2 >= configs[0].batch_size:
        smaller = rt.eval_batch // 2
        return [list(range(len(configs)))], dataclasses.replace(rt, eval_batch=smaller), (
            f"with evaluation batch {smaller} (AI6103_EVAL_BATCH={smaller} sets it for good)")
    if len(configs) > 1:
        half = (len(configs) + 1) // 2
        return [list(range(half)), list(range(half, len(configs)))], rt, (
            f"as stacks of {half} and {len(configs) - half} runs (AI6103_STACK={half} sets the most for good)")
    return None

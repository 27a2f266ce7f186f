"""Where a training step's GPU time goes, and how far each speed feature moves the result.

    python bench/profile_step.py            # needs a GPU

Prints (1) the relative difference of one epoch's weight change between feature sets (the numbers behind
tests/test_speed.py's tolerances) and (2) the CUDA kernels that take most of a step's time (eager, default
features, batch 128, torch.profiler), grouped by kind.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from lib.config import RunConfig
from lib.device import runtime
from lib.train import make_model, make_optimizer, make_step, train_epoch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_speed import PLAIN, _initial, _relative, _split, _train_one_epoch, _update  # noqa: E402


def differences() -> None:
    config = RunConfig(batch_size=32, schedule="cosine", weight_decay=5e-4, lr=0.02, mixup_alpha=0.2)
    split = _split(3 * 32 + 16, torch.device("cuda"))
    init = _initial(config)
    fast = runtime(bf16=True, channels_last=True, fused_sgd=True, cuda_graphs=True)
    variants = {
        "fp32 + fused + graphs": runtime(**{**PLAIN, "fused_sgd": True, "cuda_graphs": True}),
        "bf16 + channels_last eager": runtime(**{**PLAIN, "bf16": True, "channels_last": True}),
        "fast without graphs": dataclasses.replace(fast, cuda_graphs=False),
        "fast (default)": fast,
    }
    reference, reference_sums = _train_one_epoch(runtime(**PLAIN), config, split)
    print("relative difference of the epoch's weight change (and of the metric sums) vs plain fp32 eager:")
    for name, rt in variants.items():
        state, sums = _train_one_epoch(rt, config, split)
        print(f"  {name:28s} update {_relative(_update(state, init), _update(reference, init)):.2e}   "
              f"sums {_relative(sums, reference_sums):.2e}")


def kernels(steps: int = 10) -> None:
    rt = dataclasses.replace(runtime(), cuda_graphs=False)
    config = RunConfig()
    split = _split(steps * 128, rt.device)
    model = make_model(config, rt)
    optimizer = make_optimizer(model.parameters(), config, rt.device, rt.fused_sgd)
    sums = torch.zeros(5, device=rt.device)
    step = make_step(model, optimizer, dict(model.named_parameters())[config.grad_norm_param], sums, rt, split, 128)
    model.train()
    generator = torch.Generator(device=rt.device).manual_seed(0)
    train_epoch(step, split, config, generator, np.random.default_rng(0), 0, 100, rt)
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        train_epoch(step, split, config, generator, np.random.default_rng(0), 0, 100, rt)
        torch.cuda.synchronize()
    groups: dict[str, float] = {}
    total = 0.0
    for event in prof.key_averages():
        if event.device_type != torch.autograd.DeviceType.CUDA:
            continue
        us = event.device_time_total if hasattr(event, "device_time_total") else event.cuda_time_total
        total += us
        groups[event.key[:90]] = groups.get(event.key[:90], 0.0) + us
    print(f"GPU kernel time per step (eager, {rt.features()}): {total / steps / 1000:.2f} ms")
    for key, us in sorted(groups.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {us / steps / 1000:6.3f} ms {100 * us / total:5.1f}%  {key}")


if __name__ == "__main__":
    differences()
    kernels()

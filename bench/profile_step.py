"""Where a training step's GPU time goes: the CUDA kernels of one eager step, grouped by name.

    python bench/profile_step.py            # needs a GPU

Eager step with the default features (bf16, channels_last, fused SGD), batch 128, random images, torch.profiler
over 10 steps after a warm-up pass. Kernel times are the same inside a CUDA-graph replay (the graph removes launch
gaps, not kernel time). The measured table is in bench/RESULTS.md.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from lib.core.config import RunConfig
from lib.nets.data import DeviceSplit
from lib.nets.device import runtime
from lib.training.step import train_epoch
from lib.training.train import fresh_step


def kernels(steps: int = 10) -> None:
    rt = dataclasses.replace(runtime(), cuda_graphs=False, compile=False)
    config = RunConfig()
    split = DeviceSplit.random(steps * config.batch_size, rt.device)
    _, net, _, step = fresh_step([config], rt, split)
    net.train()
    generator = torch.Generator(device=rt.device).manual_seed(0)
    train_epoch(step, split, [config], [(generator, np.random.default_rng(0))], 0, rt)  # warm-up, autotuning
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        train_epoch(step, split, [config], [(generator, np.random.default_rng(0))], 0, rt)
        torch.cuda.synchronize()
    groups: dict[str, float] = {}  # kernel name (first 90 characters) -> microseconds over all steps
    for event in prof.key_averages():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            groups[event.key[:90]] = groups.get(event.key[:90], 0.0) + event.device_time_total
    total = sum(groups.values())
    print(f"GPU kernel time per step (eager, {rt.features()}): {total / steps / 1000:.2f} ms")
    for key, us in sorted(groups.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {us / steps / 1000:6.3f} ms {100 * us / total:5.1f}%  {key}")


if __name__ == "__main__":
    if not torch.cuda.is_available():
        raise SystemExit("bench/profile_step.py needs a CUDA GPU")
    kernels()

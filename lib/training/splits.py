"""The data one run trains and is scored on: its training and validation splits on the device, and evaluation.

What it is: the split (lib.nets.data.split_indices) cut to the run's subsets and train_fraction, the per-channel
statistics of the training images used, the upload to the device, and `evaluate` (mean loss and accuracy of
stacked models over a split, no augmentation). What it is not: training (lib.training.step, lib.training.train).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.config import RunConfig
from ..nets.data import Cifar100, DataInfo, DeviceSplit, channel_stats, data_info, load_cifar100, split_indices
from ..nets.device import Runtime


@dataclass
class PreparedData:
    train: DeviceSplit
    val: DeviceSplit
    info: DataInfo
    mean: np.ndarray  # per-channel mean of the training images used, pixels in [0, 1]
    std: np.ndarray


@lru_cache(maxsize=2)
def load_data(folder: str, fingerprint: str) -> Cifar100:
    """The CIFAR-100 files in `folder`, read once per process per `fingerprint` (lib.nets.data.data_info's)."""
    return load_cifar100(folder, download=False)


def prepare_data(config: RunConfig, device: torch.device) -> PreparedData:
    """Split, subset, normalisation statistics (of the training images used) and device upload."""
    info = data_info(config.data_dir)
    data = load_data(str(Path(info.folder).parent), info.fingerprint)
    train_idx, val_idx = split_indices(len(data.train_labels), config.val_size, config.split_seed)
    train_idx, val_idx = train_idx[: config.train_subset], val_idx[: config.val_subset]
    train_idx = train_idx[: n_train_used(len(train_idx), config)]
    mean, std = channel_stats(data.train_images[train_idx])
    train = DeviceSplit(data.train_images[train_idx], data.train_labels[train_idx], mean, std, device)
    val = DeviceSplit(data.train_images[val_idx], data.train_labels[val_idx], mean, std, device)
    return PreparedData(train, val, info, mean, std)


def n_train_used(n_split: int, config: RunConfig) -> int:
    """Training images used of the `n_split` the split (and train_subset) gives: train_fraction of them, at least 1."""
    return max(1, round(n_split * config.train_fraction))


@torch.no_grad()
def evaluate(net: torch.nn.Module, split: DeviceSplit, rt: Runtime) -> list[tuple[float, float]]:
    """Mean cross-entropy and accuracy over a split, no augmentation: one (loss, accuracy) per model.

    `net` is a stacked network (lib.nets.stack.stack_models; logits N x B x classes, one model too): a stack of N
    takes 1/N of `rt.eval_batch` images per batch, so that its activations need no more memory than one model's."""
    net.eval()
    sums = None  # N x [loss sum, correct count]
    for x, y in split.eval_batches(max(1, rt.eval_batch // net.n_models)):
        if rt.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with rt.autocast():
            logits = net(x).float()
        losses = F.cross_entropy(logits.transpose(1, 2), y.expand(len(logits), -1), reduction="none").sum(1)
        batch = torch.stack([losses, (logits.argmax(2) == y).sum(1).float()], dim=1)
        sums = batch if sums is None else sums + batch
    return [(loss_sum / len(split), correct / len(split)) for loss_sum, correct in sums.tolist()]

"""The training loop: `train(config, run_dir)` -> per-epoch history, resumable from the run folder.

What it is: SGD with momentum on the device-resident split, the learning-rate schedule, mixup, and
per-epoch metrics accumulated on the device (read once per epoch, no per-step host sync). On CUDA each
full training step is captured once and replayed as a CUDA graph (`make_step`); the graph runs exactly
`sgd_step`, the plain reference step, so both paths train the same function (tests/test_speed.py).
What it is not: the run store (lib.store decides where runs live and whether to train at all).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint
from .config import RunConfig
from .data import DataInfo, DeviceSplit, channel_stats, data_info, load_cifar100, split_indices
from .device import Runtime, runtime
from .models import build_model

COMPILE_MIN_EPOCHS = 100  # torch.compile (when switched on) only for runs this long: its start-up costs minutes


def lr_at(step: int, total_steps: int, base_lr: float, schedule: str) -> float:
    """Learning rate used by optimiser step `step` (0-based) of `total_steps`.

    cosine: base_lr * (1 + cos(pi * step / total_steps)) / 2, so step 0 uses base_lr and the value after
    the last step (step == total_steps) is exactly 0.
    """
    if schedule == "constant":
        return base_lr
    if schedule == "cosine":
        return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")


def sample_mixup_lambda(alpha: float, rng: np.random.Generator) -> float:
    """The mixing weight of one batch: lambda ~ Beta(alpha, alpha). The training loop draws exactly this."""
    return float(rng.beta(alpha, alpha))


def mixup_loss(logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float) -> torch.Tensor:
    """lambda * CE(logits, y_a) + (1 - lambda) * CE(logits, y_b), each the batch mean (Zhang et al. 2018)."""
    return lam * F.cross_entropy(logits, y_a) + (1.0 - lam) * F.cross_entropy(logits, y_b)


@dataclass
class PreparedData:
    train: DeviceSplit
    val: DeviceSplit
    info: DataInfo
    mean: np.ndarray  # per-channel mean of the training images used, pixels in [0, 1]
    std: np.ndarray


@lru_cache(maxsize=2)
def _load(folder: str, fingerprint: str):
    return load_cifar100(folder, download=False)


def prepare_data(config: RunConfig, device: torch.device) -> PreparedData:
    """Split, subset, normalisation statistics (of the training images used) and device upload."""
    info = data_info(config.data_dir)
    data = _load(str(Path(info.folder).parent), info.fingerprint)
    train_idx, val_idx = split_indices(len(data.train_labels), config.val_size, config.split_seed)
    train_idx, val_idx = train_idx[: config.train_subset], val_idx[: config.val_subset]
    mean, std = channel_stats(data.train_images[train_idx])
    train = DeviceSplit(data.train_images[train_idx], data.train_labels[train_idx], mean, std, device)
    val = DeviceSplit(data.train_images[val_idx], data.train_labels[val_idx], mean, std, device)
    return PreparedData(train, val, info, mean, std)


@torch.no_grad()
def evaluate(model: torch.nn.Module, split: DeviceSplit, rt: Runtime) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a split, no augmentation."""
    model.eval()
    sums = torch.zeros(2, device=rt.device)  # [loss sum, correct count]
    for x, y in split.eval_batches(rt.eval_batch):
        if rt.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with rt.autocast():
            logits = model(x)
        sums[0] += F.cross_entropy(logits.float(), y, reduction="sum")
        sums[1] += (logits.argmax(1) == y).sum()
    loss_sum, correct = sums.tolist()
    return loss_sum / len(split), correct / len(split)


def make_model(config: RunConfig, rt: Runtime) -> torch.nn.Module:
    torch.manual_seed(config.seed)  # the initial weights depend on the run's seed alone
    model = build_model(config.arch, config.num_classes, config.sigmoid_blocks).to(rt.device)
    return model.to(memory_format=torch.channels_last) if rt.channels_last else model


def make_optimizer(params, config: RunConfig, device: torch.device, fused: bool | None = None) -> torch.optim.SGD:
    """SGD with momentum; its weight_decay adds wd * w to the gradient, i.e. the brief's eq. 3
    (w -= lr * dL/dw + lr * wd * w) on the first step, carried through the momentum buffer after.
    `fused` (default: on CUDA) picks the one-kernel implementation; same arithmetic either way."""
    fused = device.type == "cuda" if fused is None else fused
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                           fused=fused, foreach=None if fused else device.type == "cuda")


def sgd_step(model, optimizer, watched: torch.Tensor, x, y, y_b, lam, sums: torch.Tensor, rt: Runtime) -> None:
    """One SGD step on a (mixed) batch: the plain reference step, also what the CUDA graph records.

    Adds [loss * B, correct (lambda-weighted), B, grad-norm, grad-norm minus the previous one] into `sums`
    (shape 5, on the device). `lam` is a float or a 0-d device tensor; nothing here reads back to the host.
    """
    with rt.autocast():
        logits = model(x)
    loss = mixup_loss(logits.float(), y, y_b, lam)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = watched.grad.detach().float().norm()
    optimizer.step()
    with torch.no_grad():
        predicted = logits.argmax(1)
        correct = lam * (predicted == y).sum() + (1.0 - lam) * (predicted == y_b).sum()
        size = torch.full_like(grad_norm, len(y))  # a fill kernel, not a host-to-device copy (graph-safe)
        sums += torch.stack([loss.detach() * len(y), correct, size, grad_norm, grad_norm - sums[4]])


def make_step(model, optimizer, watched, sums, rt: Runtime, example: DeviceSplit, batch_size: int,
              compile_model: bool = False):
    """`step(x, y, y_b, lam, lr)`: one `sgd_step` at learning rate `lr`, eager or replayed as a CUDA graph.

    With `rt.cuda_graphs`, full batches replay one captured step whose inputs (batch, labels, lambda, lr)
    are static device tensors refilled before each replay; the partial last batch (a second shape) runs
    eagerly on the same weights and optimiser state. `compile_model` compiles the model for full batches.
    """
    fast_model = torch.compile(model) if compile_model else model
    if not rt.cuda_graphs or len(example) < batch_size:
        def eager_step(x, y, y_b, lam, lr):
            for group in optimizer.param_groups:
                group["lr"] = lr
            sgd_step(fast_model if len(y) == batch_size else model, optimizer, watched, x, y, y_b, lam, sums, rt)
        return eager_step

    lr_t, lam_t = torch.zeros((), device=rt.device), torch.ones((), device=rt.device)
    x_s = example.normalize(example.images[:batch_size]).contiguous(memory_format=_layout(rt))
    y_s, yb_s = example.labels[:batch_size].clone(), example.labels[:batch_size].clone()
    for group in optimizer.param_groups:
        group.update(lr=lr_t, fused=True, foreach=None)  # fused SGD reads a device-tensor lr inside the graph
        for p in group["params"]:  # NOTE: a zero buffer makes step 1 identical to SGD's buf = grad first step
            if group["momentum"] and optimizer.state[p].get("momentum_buffer") is None:
                optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p)
    # Warm-up steps (cuDNN autotuning, compilation) change weights, BN statistics, momentum: put them back after.
    saved = [t.clone() for t in _step_state(model, optimizer, sums)]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            sgd_step(fast_model, optimizer, watched, x_s, y_s, yb_s, lam_t, sums, rt)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        sgd_step(fast_model, optimizer, watched, x_s, y_s, yb_s, lam_t, sums, rt)
    with torch.no_grad():
        for tensor, value in zip(_step_state(model, optimizer, sums), saved, strict=True):
            tensor.copy_(value)

    def graph_step(x, y, y_b, lam, lr):
        lr_t.fill_(lr)  # fill kernels take the Python float as an argument: no host sync, no new graph
        if len(y) != batch_size:
            sgd_step(model, optimizer, watched, x, y, y_b, lam, sums, rt)
            return
        x_s.copy_(x)
        y_s.copy_(y)
        yb_s.copy_(y_b)
        lam_t.fill_(lam)
        graph.replay()
    return graph_step


def _step_state(model, optimizer, sums) -> list[torch.Tensor]:
    """Every tensor a training step changes in place: weights, BN buffers, momentum buffers, metric sums."""
    momentum = [s["momentum_buffer"] for s in optimizer.state.values() if s.get("momentum_buffer") is not None]
    return [*model.state_dict().values(), *momentum, sums]


def _layout(rt: Runtime) -> torch.memory_format:
    """The one memory layout of every training batch (the graph's static input has it too)."""
    return torch.channels_last if rt.channels_last else torch.contiguous_format


def fresh_step(config: RunConfig, rt: Runtime, split: DeviceSplit, compile_model: bool = False):
    """A new model and optimiser with a ready `step` for `split`'s batches: (model, optimizer, sums, step).

    For benchmarks, tests and time estimates. `train` builds the same pieces itself, because it restores a
    checkpoint between making the optimiser and capturing the step (the graph must see the restored tensors).
    """
    model = make_model(config, rt)
    optimizer = make_optimizer(model.parameters(), config, rt.device, rt.fused_sgd)
    sums = torch.zeros(5, device=rt.device)  # [loss * batch, correct, images, grad-norm sum, last grad-norm]
    watched = dict(model.named_parameters())[config.grad_norm_param]
    step = make_step(model, optimizer, watched, sums, rt, split, config.batch_size, compile_model)
    return model, optimizer, sums, step


def train_epoch(step, split: DeviceSplit, config: RunConfig, generator, mixup_rng, first_step: int,
                total_steps: int, rt: Runtime) -> None:
    """One pass over `split`: per-image crop and flip, the learning rate of each step, mixup, `step`."""
    for i, (x, y) in enumerate(split.train_batches(config.batch_size, generator)):
        lr = lr_at(first_step + i, total_steps, config.lr, config.schedule)
        y_b, lam = y, 1.0
        if config.mixup_alpha > 0:
            lam = float(np.float32(sample_mixup_lambda(config.mixup_alpha, mixup_rng)))  # fp32, as the graph's
            partner = torch.randperm(len(y), generator=generator, device=y.device)
            x, y_b = lam * x + (1.0 - lam) * x[partner], y[partner]
        step(x.contiguous(memory_format=_layout(rt)), y, y_b, lam, lr)


def train(config: RunConfig, run_dir: Path | None = None, progress: bool = True,
          rt: Runtime | None = None) -> list[dict]:
    """Train one configuration; with `run_dir`, checkpoint every epoch there and resume from it."""
    rt = rt or runtime()
    data = prepare_data(config, rt.device)
    model = make_model(config, rt)
    params = dict(model.named_parameters())
    if config.grad_norm_param not in params:
        raise ValueError(f"grad_norm_param must name a parameter of {config.arch}, got {config.grad_norm_param!r}")
    optimizer = make_optimizer(model.parameters(), config, rt.device, rt.fused_sgd)
    generator = torch.Generator(device=rt.device).manual_seed(config.seed)  # data order, crops, flips, mixup pairs
    mixup_rng = np.random.default_rng(config.seed)  # mixup lambdas, drawn on the host (no device sync)
    history = checkpoint.restore(run_dir, model, optimizer, generator, mixup_rng) if run_dir is not None else []
    sums = torch.zeros(5, device=rt.device)  # [loss * batch, correct, images, grad-norm sum, last grad-norm]
    step = make_step(model, optimizer, params[config.grad_norm_param], sums, rt, data.train, config.batch_size,
                     compile_model=rt.compile and config.epochs >= COMPILE_MIN_EPOCHS)
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    bar = _progress_bar(config, len(history), progress)
    for epoch in range(len(history), config.epochs):
        model.train()
        start = time.perf_counter()
        sums.zero_()
        train_epoch(step, data.train, config, generator, mixup_rng, epoch * steps_per_epoch, total_steps, rt)
        loss_sum, correct, seen, grad_sum, grad_last = sums.tolist()  # the epoch's one host sync
        train_seconds = time.perf_counter() - start
        val_loss, val_acc = evaluate(model, data.val, rt)
        history.append({
            "epoch": epoch + 1,
            "lr": lr_at(epoch * steps_per_epoch, total_steps, config.lr, config.schedule),  # at the epoch's first step
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,  # under mixup: lambda-weighted agreement with both labels
            "val_loss": val_loss,
            "val_acc": val_acc,
            "grad_norm_mean": grad_sum / steps_per_epoch,  # 2-norm of d loss / d watched parameter, mean over steps
            "grad_norm_last": grad_last,  # ... at the epoch's last step
            "epoch_seconds": time.perf_counter() - start,  # training + validation
            "train_images_per_second": seen / train_seconds,
        })
        if run_dir is not None:
            checkpoint.save(run_dir, model, optimizer, generator, mixup_rng, history, config)
        bar.update(1)
        bar.set_postfix(train_loss=f"{loss_sum / seen:.3f}", val_acc=f"{val_acc:.3f}")
    bar.close()
    return history


def _progress_bar(config: RunConfig, done: int, enabled: bool):
    # Widgets in JupyterLab; plain text where papermill streams the kernel's output to a terminal.
    if os.environ.get("AI6103_PROGRESS") == "text":
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm

    return tqdm(total=config.epochs, initial=done, desc=config.short_name(), unit="epoch", disable=not enabled,
                leave=True, dynamic_ncols=True)

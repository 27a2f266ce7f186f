"""The training loop: `train(config, run_dir)` -> per-epoch history, resumable from the run folder.

What it is: SGD with momentum on the device-resident split, the learning-rate schedule, mixup, and
per-epoch metrics accumulated on the device (read once per epoch, no per-step host sync). On CUDA each
full training step is captured once and replayed as a CUDA graph (`make_step`); the graph runs exactly
`sgd_step`, the plain reference step, so both paths train the same function (tests/test_speed.py). In fp16
(lib.device) each run's loss is scaled by its own `torch.amp.GradScaler`, inside the graph too (the fused SGD
takes the overflow flag as a device tensor); the scale is checkpointed with the run.
`train_together(configs, run_dirs)` trains runs that differ only in learning rate, schedule or weight
decay side by side as one stacked network (lib.stack), each with its own optimiser, metrics and
checkpoint; `train` is that with one run. Every step of the loop sees N models: logits N x B x classes.
Each epoch's metrics also go to TensorBoard (and W&B if asked for) through lib.tracking, which never stops training.
What it is not: the run store (lib.store decides where runs live and whether to train at all).
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import math
import tempfile
import time
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint, tracking
from .config import RunConfig
from .data import DataInfo, DeviceSplit, channel_stats, data_info, load_cifar100, split_indices
from .device import Runtime, runtime, synchronize
from .models import build_model
from .schedule import is_finished, plateau_factor, run_lr
from .settings import current
from .stack import stack_models

STACKABLE = ("lr", "schedule", "weight_decay", "seed")  # runs differing only in these can train together


def sample_mixup_lambda(alpha: float, rng: np.random.Generator) -> float:
    """The mixing weight of one batch: lambda ~ Beta(alpha, alpha). The training loop draws exactly this."""
    return float(rng.beta(alpha, alpha))


def mixup_loss(logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float) -> torch.Tensor:
    """lambda * CE(logits, y_a) + (1 - lambda) * CE(logits, y_b), each the batch mean (Zhang et al. 2018).

    logits B x classes -> a scalar, or N x B x classes (N models on one batch) -> one loss per model, N."""
    return lam * _mean_cross_entropy(logits, y_a) + (1.0 - lam) * _mean_cross_entropy(logits, y_b)


def _mean_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """y: labels B (one batch for every model) or N x B (model n's batch is row n)."""
    if logits.dim() == 2:
        return F.cross_entropy(logits, y)
    labels = y if y.dim() == 2 else y.expand(len(logits), -1)
    return torch.stack([F.cross_entropy(one, own) for one, own in zip(logits, labels, strict=True)])  # per model


def group_key(config: RunConfig) -> tuple:
    """Runs with equal keys can train together: same data, shapes and augmentation; they may differ in the
    optimiser settings and the seed (STACKABLE) alone."""
    key = config.key()
    if not config.dropout:  # dropout draws in a stack would differ from the run's own alone: such runs train alone
        for name in STACKABLE:
            key.pop(name)
    return (config.data_dir, *sorted((k, str(v)) for k, v in key.items()))


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

    `net` is a stacked network (lib.stack.stack_models; logits N x B x classes, one model too): a stack of N
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


def make_model(config: RunConfig, rt: Runtime) -> torch.nn.Module:
    torch.manual_seed(config.seed)  # the initial weights depend on the run's seed alone
    model = build_model(config.arch, config.num_classes, config.sigmoid_blocks, activation=config.activation,
                        init=config.init, dropout=config.dropout, pretrained=config.pretrained).to(rt.device)
    return model.to(memory_format=torch.channels_last) if rt.channels_last else model


OPTIMIZER_CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
# CUDA graphs capture the steps of these optimisers only: Adam's state (moments, step count) is not put back after
# the graph's warm-up steps here, so Adam and AdamW step eagerly (fused kernels still).
CAPTURED = ("sgd",)


def _captured_classes() -> tuple[type, ...]:
    """CAPTURED as classes, for make_step, which sees the optimisers and not the configs."""
    return tuple(OPTIMIZER_CLASSES[name] for name in CAPTURED)


def make_optimizer(params, config: RunConfig, device: torch.device, fused: bool | None = None) -> torch.optim.Optimizer:
    """The run's optimiser. "sgd": SGD with momentum; its weight_decay adds wd * w to the gradient, i.e. the brief's
    eq. 3 (w -= lr * dL/dw + lr * wd * w) on the first step, carried through the momentum buffer after. "adam": Adam
    with betas (momentum, 0.999), weight_decay as L2 in the gradient; "adamw": decay decoupled from the gradient's
    scaling (w -= lr * wd * w besides the Adam step). `fused` (default: on CUDA) picks the one-kernel
    implementation; same arithmetic either way."""
    fused = device.type == "cuda" if fused is None else fused
    foreach = None if fused else device.type == "cuda"
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                               fused=fused, foreach=foreach)
    return OPTIMIZER_CLASSES[config.optimizer](params, lr=config.lr, betas=(config.momentum, 0.999),
                                               weight_decay=config.weight_decay, fused=fused, foreach=foreach)


def uses_graphs(configs: list[RunConfig], rt: Runtime) -> bool:
    """Whether full training steps replay as a CUDA graph: on CUDA, for the optimisers in CAPTURED."""
    return rt.cuda_graphs and configs[0].optimizer in CAPTURED


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
        from .models import pretrained_note

        notes.append(pretrained_note(first.arch, first.pretrained))
    return notes


def sgd_step(net, optimizers, watched, x, y, y_b, lam, sums: torch.Tensor, rt: Runtime, scalers) -> None:
    """One SGD step of N models on one (mixed) batch: the plain reference step, also what the CUDA graph records.

    `net` maps the batch to logits N x B x classes (lib.stack); `optimizers[n]`, `watched[n]` (the parameter
    whose gradient 2-norm is logged) and `scalers[n]` (`rt.loss_scaler()`) belong to model n. Adds, per model,
    [loss * B, correct (lambda-weighted), B, grad-norm, grad-norm minus the previous one, 1 if the norm counts]
    into `sums` (N x 6, on the device): in fp16 a step skipped on overflow has no norm and counts for nothing.
    One batch for all models: x B x 3 x H x W, labels B, `lam` a float or a 0-d device tensor; one batch per model
    (runs of different seeds): x B x 3N x H x W, labels N x B, `lam` a device tensor N. Nothing here reads
    back to the host, except the skip test of a scaled step with the unfused SGD (CPU, or fused off).
    """
    with rt.autocast():
        logits = net(x).float()
    losses = mixup_loss(logits, y, y_b, lam)  # N: each model's own batch-mean loss
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    # fp16: each model's loss times its own scale, so that small gradients do not flush to zero in fp16
    scaled = torch.stack([s.scale(loss) for s, loss in zip(scalers, losses, strict=True)]) if rt.scales_loss else losses
    scaled.sum().backward()  # the models share no parameter: each gets the gradient of its own loss alone
    for optimizer, scaler in zip(optimizers, scalers, strict=True):
        scaler.unscale_(optimizer)  # the true gradients again, and a device flag if any is inf/nan (fp16 overflow)
    grad_norms = torch.stack([w.grad.detach().float().norm() for w in watched])
    counts = torch.ones_like(grad_norms)  # a fill kernel, not a host-to-device copy (graph-safe)
    if rt.scales_loss:  # an overflowed (skipped) step: left out of the epoch's mean; the last norm stays the previous
        finite = grad_norms.isfinite()
        counts = finite.float()
        grad_norms = torch.where(finite, grad_norms, sums[:, 4])
    for optimizer, scaler in zip(optimizers, scalers, strict=True):
        # On overflow no update at all (fused SGD reads the flag on the device, inside the graph); the learning rate
        # still follows the step count (lib.schedule.run_lr), so the schedule goes on as in an uninterrupted run.
        scaler.step(optimizer)
        scaler.update()  # this model's scale: halved after an overflow, doubled after a run of steps without
    with torch.no_grad():
        predicted = logits.argmax(2)  # N x B
        # fp32 counts: lambda (a float, or the float32 tensor of the graph or of per-run batches) scales them alike
        correct = lam * (predicted == y).sum(1).float() + (1.0 - lam) * (predicted == y_b).sum(1).float()
        size = torch.full_like(grad_norms, y.shape[-1])  # a fill kernel, not a host-to-device copy (graph-safe)
        sums += torch.stack([losses.detach() * y.shape[-1], correct, size, grad_norms * counts,
                             grad_norms - sums[:, 4], counts], dim=1)


def make_step(net, optimizers, watched, sums, rt: Runtime, example: DeviceSplit, batch_size: int,
              compile_model: bool = False, per_run_batches: bool = False, scalers=None):
    """`step(x, y, y_b, lam, lrs)`: one `sgd_step` at learning rates `lrs` (one per model), eager or replayed as
    a CUDA graph. `per_run_batches`: every model gets a batch of its own (runs of different seeds; `lam` then is a
    list, one float per model), else one batch for all (`lam` a float). `scalers`: one loss scaler per model
    (default: fresh ones, `rt.loss_scaler()`).

    With `rt.cuda_graphs`, full batches replay one captured step whose inputs (batch, labels, lambda, learning
    rates) are static device tensors refilled before each replay; the partial last batch (a second shape) runs
    eagerly on the same weights and optimiser state. `compile_model` compiles the network for full batches.
    """
    scalers = scalers or [rt.loss_scaler() for _ in optimizers]
    fast_net = _compiled(net, rt) if compile_model else net
    if rt.fused_sgd:
        _zero_momentum(optimizers)
    if not rt.cuda_graphs or len(example) < batch_size or type(optimizers[0]) not in _captured_classes():
        def eager_step(x, y, y_b, lam, lrs):
            for optimizer, lr in zip(optimizers, lrs, strict=True):
                for group in optimizer.param_groups:
                    group["lr"] = lr
            sgd_step(fast_net if y.shape[-1] == batch_size else net, optimizers, watched, x, y, y_b,
                     _lambda_argument(lam, x.device), sums, rt, scalers)
        return eager_step

    n_batches = len(optimizers) if per_run_batches else 1
    lr_tensors = [torch.zeros((), device=rt.device) for _ in optimizers]
    lam_t = torch.ones(n_batches, device=rt.device) if per_run_batches else torch.ones((), device=rt.device)
    x_s = example.normalize(example.images[:batch_size]).repeat(1, n_batches, 1, 1).contiguous(
        memory_format=_layout(rt))  # B x 3 x H x W, or B x 3N x H x W: one batch per model
    labels = example.labels[:batch_size].expand(n_batches, -1) if per_run_batches else example.labels[:batch_size]
    y_s, yb_s = labels.clone(), labels.clone()
    for optimizer, lr_t in zip(optimizers, lr_tensors, strict=True):
        for group in optimizer.param_groups:
            group.update(lr=lr_t, fused=True, foreach=None)  # fused SGD reads a device-tensor lr inside the graph
    # Warm-up steps (cuDNN autotuning, compilation) change weights, BN statistics, momentum, loss scales and move
    # the CUDA generator (dropout): put them back after (a scaler's state_dict is host numbers; load_state_dict
    # refills its tensors in place), so that a resumed run draws the masks an uninterrupted one draws.
    saved, scales = [t.clone() for t in _step_state(net, optimizers, sums)], [s.state_dict() for s in scalers]
    rng = torch.cuda.get_rng_state(rt.device)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            sgd_step(fast_net, optimizers, watched, x_s, y_s, yb_s, lam_t, sums, rt, scalers)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        sgd_step(fast_net, optimizers, watched, x_s, y_s, yb_s, lam_t, sums, rt, scalers)
    with torch.no_grad():
        for tensor, value in zip(_step_state(net, optimizers, sums), saved, strict=True):
            tensor.copy_(value)
    for scaler, state in zip(scalers, scales, strict=True):
        scaler.load_state_dict(state)
    torch.cuda.set_rng_state(rng, rt.device)  # replays draw from the generator's offset at each replay

    def graph_step(x, y, y_b, lam, lrs):
        for lr_t, lr in zip(lr_tensors, lrs, strict=True):
            lr_t.fill_(lr)  # fill kernels take the Python float as an argument: no host sync, no new graph
        if y.shape[-1] != batch_size:
            sgd_step(net, optimizers, watched, x, y, y_b, _lambda_argument(lam, x.device), sums, rt, scalers)
            return
        x_s.copy_(x)
        y_s.copy_(y)
        yb_s.copy_(y_b)
        for lam_n, value in zip(lam_t.view(-1), lam if isinstance(lam, list) else [lam], strict=True):
            lam_n.fill_(value)
        graph.replay()
    return graph_step


def _zero_momentum(optimizers) -> None:
    """Momentum buffers of zeros where there are none yet. NOTE: step 1 is then identical to SGD's buf = grad first
    step, the CUDA graph can hold the buffer, and a first step skipped on fp16 overflow leaves it at zero (fused
    SGD would leave the buffer it allocates for a first step unwritten)."""
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            for p in group["params"]:
                if group.get("momentum") and optimizer.state[p].get("momentum_buffer") is None:  # SGD only
                    optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p)


def _lambda_argument(lam: float | list[float], device: torch.device) -> float | torch.Tensor:
    """sgd_step's `lam`: a float as it is (one batch for all), one per model as a device tensor N."""
    return torch.tensor(lam, dtype=torch.float32, device=device) if isinstance(lam, list) else lam


def _compiled(net: torch.nn.Module, rt: Runtime) -> torch.nn.Module:
    if rt.compile_backend == "inductor":
        return torch.compile(net, mode=rt.compile_mode)
    return torch.compile(net, backend=rt.compile_backend)  # e.g. aot_eager: the tests' CPU trace of the same path


def _step_state(net, optimizers, sums) -> list[torch.Tensor]:
    """Every tensor a training step changes in place: weights, BN buffers, momentum buffers, metric sums."""
    momentum = [s["momentum_buffer"] for optimizer in optimizers for s in optimizer.state.values()
                if s.get("momentum_buffer") is not None]
    return [*net.state_dict().values(), *momentum, sums]


def _layout(rt: Runtime) -> torch.memory_format:
    """The one memory layout of every training batch (the graph's static input has it too)."""
    return torch.channels_last if rt.channels_last else torch.contiguous_format


def _build(configs: list[RunConfig], rt: Runtime):
    """One fresh model and optimiser per config, and the parameter of each whose gradient norm is logged."""
    models, optimizers, watched = [], [], []
    for config in configs:
        model = make_model(config, rt)
        params = dict(model.named_parameters())
        if config.grad_norm_param not in params:
            raise ValueError(f"grad_norm_param must name a parameter of {config.arch}, got {config.grad_norm_param!r}")
        models.append(model)
        optimizers.append(make_optimizer(model.parameters(), config, rt.device, rt.fused_sgd))
        watched.append(params[config.grad_norm_param])
    return models, optimizers, watched


def fresh_step(configs: list[RunConfig], rt: Runtime, split: DeviceSplit, compile_model: bool = False):
    """New models (one per config, trained together) with a ready `step` for `split`'s batches:
    (models, net, sums, step), `net` the stacked network (logits N x B x classes), `sums` N x 6.

    For benchmarks, tests and time estimates. `train_together` builds the same pieces itself, because it
    restores checkpoints between making the optimisers and capturing the step (the graph must see them).
    """
    models, optimizers, watched = _build(configs, rt)
    net = stack_models(models)
    sums = torch.zeros(len(configs), 6, device=rt.device)
    step = make_step(net, optimizers, watched, sums, rt, split, configs[0].batch_size, compile_model,
                     per_run_batches=len(random_streams(configs)) > 1)
    return models, net, sums, step


def random_streams(configs: list[RunConfig], device: torch.device | str = "cpu") -> list:
    """The random streams of runs trained together, one (generator, mixup_rng) pair each seeded by the run's seed:
    the generator (on `device`) draws the data order, crops, flips and mixup partners, the numpy rng the mixup
    lambdas (on the host: no device sync). Runs of one seed share one pair, hence one batch; otherwise every run
    has its own, so that each run sees exactly the batches it would see trained alone."""
    seeds = [c.seed for c in configs] if len({c.seed for c in configs}) > 1 else [configs[0].seed]
    return [(torch.Generator(device=device).manual_seed(seed), np.random.default_rng(seed)) for seed in seeds]


def train_epoch(step, split: DeviceSplit, configs: list[RunConfig], streams: list, first_step: int,
                rt: Runtime, plateau: list[float] | None = None) -> None:
    """One pass over `split`: per-image crop and flip, each run's learning rate at each step (lib.schedule;
    `plateau`: each run's reduce-on-plateau factor this epoch), mixup, `step`.

    `streams` (see `random_streams`): one pair shared by all runs (one seed: one batch B x 3 x H x W, labels B, one
    lambda), or one per run (its own batch, side by side in the channels: B x 3N x H x W, labels N x B, N lambdas)."""
    batch_size, alpha = configs[0].batch_size, configs[0].mixup_alpha
    steps_per_epoch, plateau = math.ceil(len(split) / batch_size), plateau or [1.0] * len(configs)
    epoch = zip(*(split.train_batches(batch_size, generator) for generator, _ in streams), strict=True)
    for i, batches in enumerate(epoch):
        lrs = [run_lr(c, first_step + i, steps_per_epoch, f) for c, f in zip(configs, plateau, strict=True)]
        mixed = [_mixup(x, y, alpha, *stream) for (x, y), stream in zip(batches, streams, strict=True)]
        if len(mixed) == 1:
            x, y, y_b, lam = mixed[0]
        else:
            x, y, y_b = (torch.cat([m[0] for m in mixed], 1), torch.stack([m[1] for m in mixed]),
                         torch.stack([m[2] for m in mixed]))
            lam = [m[3] for m in mixed]
        step(x.contiguous(memory_format=_layout(rt)), y, y_b, lam, lrs)


def _mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, generator, mixup_rng):
    """(mixed images, labels, partner labels, lambda) of one batch; alpha 0: the batch as it is, lambda 1."""
    if alpha <= 0:
        return x, y, y, 1.0
    lam = float(np.float32(sample_mixup_lambda(alpha, mixup_rng)))  # rounded to fp32, as the graph's
    partner = torch.randperm(len(y), generator=generator, device=y.device)
    return lam * x + (1.0 - lam) * x[partner], y, y[partner], lam


def train(config: RunConfig, run_dir: Path | None = None, progress: bool = True,
          rt: Runtime | None = None) -> list[dict]:
    """Train one configuration; with `run_dir`, checkpoint every epoch there and resume from it."""
    return train_together([config], [run_dir], progress, rt)[0]


def train_together(configs: list[RunConfig], run_dirs: list[Path | None] | None = None, progress: bool = True,
                   rt: Runtime | None = None, phases: dict | None = None) -> list[list[dict]]:
    """Train runs that differ only in learning rate, schedule, weight decay or seed side by side, one history each.

    Each run has its own model, optimiser and checkpoint (in the single-run format), and is trained on the
    same batches as it would be alone; the GPU computes all of them in one stacked step (lib.stack).
    `phases`, if given, is filled with the wall time of each phase (data_seconds, build_seconds: set-up,
    compilation and capture; epoch_seconds: one per epoch trained; total_seconds) and whether it compiled.
    Early stopping: a run that stops leaves the stack at that epoch's end, and the others go on as a new stack
    resumed from their checkpoints (runs without a run folder keep one in a temporary folder meanwhile).
    Out of device memory before the first epoch here is done: tried again from the runs' last checkpoints (or
    their start), with half the evaluation batch if evaluation ran out, else as two smaller stacks.
    """
    rt = rt or runtime()
    if len({group_key(c) for c in configs}) != 1:
        raise ValueError(f"runs trained together may differ only in {', '.join(STACKABLE)}")
    run_dirs = run_dirs or [None] * len(configs)
    phases = {} if phases is None else phases
    regroups = len(configs) > 1 and any(c.early_stopping_patience for c in configs)
    with tempfile.TemporaryDirectory(prefix="ai6103-stack-") if regroups else contextlib.nullcontext() as spare:
        if regroups:
            run_dirs = [Path(spare) / str(i) if d is None else d for i, d in enumerate(run_dirs)]
            for d in run_dirs:
                d.mkdir(parents=True, exist_ok=True)
        histories, running, rounds = [[] for _ in configs], list(range(len(configs))), []
        while running:  # one round per stack: the first, then one after each early stop
            rounds.append({})
            trained = _train_or_retry([configs[i] for i in running], [run_dirs[i] for i in running], progress, rt,
                                      rounds[-1])
            for i, history in zip(running, trained, strict=True):
                histories[i] = history
            running = [i for i in running if not is_finished(configs[i], _val_losses(histories[i]))]
    phases.update(rounds[0] if len(rounds) == 1 else _merged(rounds, one_after_another=True))
    return histories


def _val_losses(history: list[dict]) -> list[float]:
    return [row["val_loss"] for row in history]


def _train_or_retry(configs: list[RunConfig], run_dirs: list[Path | None], progress: bool, rt: Runtime,
                    phases: dict) -> list[list[dict]]:
    """One stack's training (`_train_stack`), tried again smaller if it runs out of device memory early."""
    try:
        return _train_stack(configs, run_dirs, progress, rt, phases)
    except torch.OutOfMemoryError as error:
        if phases.get("epoch_seconds"):  # a later epoch: what fitted at first stopped fitting; no choice to revise
            raise
        retry = _smaller_after_out_of_memory(configs, rt, _in_evaluation(error))
        if retry is None:
            raise
    parts, smaller_rt, what = retry  # outside the except block: the failed attempt's tensors are freed by now
    print(f"out of device memory in the first epoch of {run_names(configs)}: trying again {what}", flush=True)
    gc.collect()
    if rt.device.type == "cuda":
        torch.cuda.empty_cache()  # give the failed attempt's cached blocks (and CUDA-graph pool) back to the driver
    part_phases = [{} for _ in parts]
    histories = [history for part, part_phase in zip(parts, part_phases, strict=True) for history in train_together(
        [configs[i] for i in part], [run_dirs[i] for i in part], progress, smaller_rt, part_phase)]
    phases.clear()
    phases.update(_merged(part_phases), out_of_memory_retry=what)
    return histories


def _smaller_after_out_of_memory(configs: list[RunConfig], rt: Runtime, in_evaluation: bool):
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


def _in_evaluation(error: BaseException) -> bool:
    """Whether `error` was raised inside `evaluate` (its traceback passes through it)."""
    return any(frame.f_code.co_name == "evaluate" and frame.f_globals.get("__name__") == __name__
               for frame, _ in traceback.walk_tb(error.__traceback__))


def _merged(part_phases: list[dict], one_after_another: bool = False) -> dict:
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


def _train_stack(configs: list[RunConfig], run_dirs: list[Path | None], progress: bool, rt: Runtime,
                 phases: dict) -> list[list[dict]]:
    """train_together's training loop, once."""
    config, n_runs = configs[0], len(configs)  # what the runs share: data, seed, shapes, epochs, mixup
    started = time.perf_counter()
    data = prepare_data(config, rt.device)
    phases["data_seconds"] = time.perf_counter() - started  # read (cached per process), split, statistics, upload
    models, optimizers, watched = _build(configs, rt)
    scalers = [rt.loss_scaler() for _ in configs]  # each run's loss scale (fp16), restored with its checkpoint
    streams = random_streams(configs, rt.device)
    run_streams = streams if len(streams) == n_runs else streams * n_runs  # run n's (generator, mixup_rng)
    histories = [checkpoint.restore(d, m, o, *stream, scaler=s) if d is not None else []
                 for d, m, o, stream, s in zip(run_dirs, models, optimizers, run_streams, scalers, strict=True)]
    if len({len(h) for h in histories}) != 1:
        raise ValueError("runs trained together must resume from the same epoch; train them one at a time")
    if any(is_finished(c, _val_losses(h)) for c, h in zip(configs, histories, strict=True)):
        # A checkpoint at its early stop (killed before its summary was written): not one epoch more for it;
        # train_together goes on with the others as a new stack.
        phases.update(compiled=False, build_seconds=0.0, epoch_seconds=[], total_seconds=time.perf_counter() - started)
        return histories
    tracker = tracking.Tracking(configs, run_dirs, len(histories[0]))
    net = stack_models(models)  # after the restore: the stacked BatchNorm buffers start from the restored ones
    # per run: [loss * batch, correct, images, grad-norm sum, last grad-norm, steps with a grad-norm]
    sums = torch.zeros(n_runs, 6, device=rt.device)
    phases["compiled"] = rt.compiles(config.epochs)
    build_started = time.perf_counter()
    step = make_step(net, optimizers, watched, sums, rt, data.train, config.batch_size,
                     compile_model=phases["compiled"], per_run_batches=len(streams) > 1, scalers=scalers)
    synchronize(rt.device)
    phases["build_seconds"] = time.perf_counter() - build_started  # models, cuDNN autotuning, compile, graph capture
    phases["epoch_seconds"] = []  # wall seconds of each epoch trained here, all runs of the stack together
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    bar = _progress_bar(configs, len(histories[0]), progress)
    for epoch in range(len(histories[0]), config.epochs):
        net.train()
        start = time.perf_counter()
        sums.zero_()
        plateau = [plateau_factor(c, _val_losses(h)) for c, h in zip(configs, histories, strict=True)]
        train_epoch(step, data.train, configs, streams, epoch * steps_per_epoch, rt, plateau)
        run_sums = sums.tolist()  # the epoch's one host sync
        train_seconds = time.perf_counter() - start
        validation = evaluate(net, data.val, rt)
        seconds = time.perf_counter() - start
        for c, history, (loss_sum, correct, seen, grad_sum, grad_last, grad_steps), (val_loss, val_acc), factor in zip(
                configs, histories, run_sums, validation, plateau, strict=True):
            history.append({
                "epoch": epoch + 1,
                "lr": run_lr(c, epoch * steps_per_epoch, steps_per_epoch, factor),  # at the epoch's first step
                "train_loss": loss_sum / seen,
                "train_acc": correct / seen,  # under mixup: lambda-weighted agreement with both labels
                "val_loss": val_loss,
                "val_acc": val_acc,
                # 2-norm of d loss / d watched parameter, mean over the steps that had one (fp16 skips overflows)
                "grad_norm_mean": grad_sum / grad_steps if grad_steps else math.nan,
                "grad_norm_last": grad_last,  # ... at the epoch's last step
                "epoch_seconds": seconds / n_runs,  # training + validation; runs together share the time
                "train_images_per_second": seen * n_runs / train_seconds,  # this run's images per second of its share
                "runs_together": n_runs,
            })
        tracker.log(histories)  # TensorBoard (and W&B): before the checkpoint, so a resume never leaves a gap
        for d, m, o, c, history, stream, s in zip(run_dirs, models, optimizers, configs, histories, run_streams,
                                                  scalers, strict=True):
            if d is not None:  # the loss scale only in fp16: other checkpoints keep the format they had
                checkpoint.save(d, m, o, *stream, history, c, *([s] if rt.scales_loss else []))
        phases["epoch_seconds"].append(time.perf_counter() - start)  # with the checkpoints: the epoch's wall time
        bar.update(1)
        bar.set_postfix(train_loss="/".join(f"{h[-1]['train_loss']:.3f}" for h in histories),
                        val_acc="/".join(f"{h[-1]['val_acc']:.3f}" for h in histories))
        if any(is_finished(c, _val_losses(h)) for c, h in zip(configs, histories, strict=True)):
            break  # an early stop (or the last epoch): train_together goes on with the runs still running
    bar.close()
    tracker.finish(histories)  # the config as hparams with the final metrics
    phases["total_seconds"] = time.perf_counter() - started
    if phases["epoch_seconds"]:
        print(f"timing {run_names(configs)}: {phase_text(phases)}", flush=True)
    return histories


def phase_text(phases: dict) -> str:
    """'data 3.1 s, build 24.0 s (compiled), 8 epochs 17.2 s (first 2.6 s, median 2.08 s)' from train_together's
    `phases`; the build is model set-up plus cuDNN autotuning, compilation and CUDA-graph capture."""
    epochs = phases["epoch_seconds"]
    rest = epochs[1:] or epochs
    return (f"data {phases['data_seconds']:.1f} s, build {phases['build_seconds']:.1f} s"
            f"{' (compiled)' if phases['compiled'] else ''}, {len(epochs)} epochs {sum(epochs):.1f} s "
            f"(first {epochs[0]:.2f} s, median {float(np.median(rest)):.2f} s)")


def _progress_bar(configs: list[RunConfig], done: int, enabled: bool):
    # Widgets in JupyterLab; plain text where papermill streams the kernel's output to a terminal.
    if current().progress == "text":
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm

    return tqdm(total=configs[0].epochs, initial=done, desc=run_names(configs), unit="epoch", disable=not enabled,
                leave=True, dynamic_ncols=True)


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

"""The training step: one SGD (or Adam) step of N stacked models on one batch, and the epoch of such steps.

What it is: the mixup loss, the optimisers, `sgd_step` (the plain reference step) and `make_step`, which runs it
eagerly or, on CUDA, captures it once and replays it as a CUDA graph (optionally through torch.compile); both
paths run exactly `sgd_step` (tests/test_speed.py). In fp16 each run's loss is scaled by its own
`torch.amp.GradScaler`, inside the graph too. A step adds its statistics into one preallocated device tensor,
N runs x len(Stat) (graph-safe: no host sync per step); `Stat` names its columns and `EpochStats` reads one row.
`train_epoch` feeds an epoch's batches (crop, flip, mixup, each run's learning rate) to a step.
What it is not: the epoch loop with its checkpoints, timing and tracking (lib.training.train).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import torch
import torch.nn.functional as F

from ..core.config import RunConfig
from ..nets.data import DeviceSplit
from ..nets.device import Runtime
from .schedule import run_lr


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


class Stat(IntEnum):
    """The columns of the step statistics tensor (N runs x len(Stat), on the device), summed over an epoch's steps."""

    LOSS_SUM = 0  # batch-mean loss x batch size
    CORRECT = 1  # correct predictions; under mixup lambda-weighted agreement with both labels
    IMAGES = 2  # images seen
    GRAD_NORM_SUM = 3  # 2-norm of the watched parameter's gradient, summed over the steps that had one
    GRAD_NORM_LAST = 4  # each step adds (norm - this column): the sum is the last norm
    GRAD_STEPS = 5  # steps whose norm counts (fp16: a step skipped on overflow has none)


@dataclass(frozen=True)
class EpochStats:
    """One run's row of the statistics tensor, by name (fields in `Stat` order)."""

    loss_sum: float
    correct: float
    images: float
    grad_norm_sum: float
    grad_norm_last: float
    grad_steps: float

    @classmethod
    def rows(cls, sums: torch.Tensor) -> list[EpochStats]:
        """Every run's statistics: one host sync (the epoch's only one)."""
        return [cls(*row) for row in sums.tolist()]



def new_stats(n_runs: int, device: torch.device) -> torch.Tensor:
    """The zeroed statistics tensor of `n_runs` runs, N x len(Stat), that a step adds into."""
    return torch.zeros(n_runs, len(Stat), device=device)


OPTIMIZER_CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
# CUDA graphs capture the steps of these optimisers only: Adam's state (moments, step count) is not put back after
# the graph's warm-up steps here, so Adam and AdamW step eagerly (fused kernels still).
CAPTURED = ("sgd",)


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


def sgd_step(net, optimizers, watched, x, y, y_b, lam, sums: torch.Tensor, rt: Runtime, scalers) -> None:
    """One SGD step of N models on one (mixed) batch: the plain reference step, also what the CUDA graph records.

    `net` maps the batch to logits N x B x classes (lib.nets.stack); `optimizers[n]`, `watched[n]` (the parameter
    whose gradient 2-norm is logged) and `scalers[n]` (`rt.loss_scaler()`) belong to model n. Adds each model's
    statistics (`Stat`) into `sums` (N x len(Stat), on the device); in fp16 a step skipped on overflow has no norm.
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
    previous = sums[:, Stat.GRAD_NORM_LAST]
    if rt.scales_loss:  # an overflowed (skipped) step: left out of the epoch's mean; the last norm stays the previous
        finite = grad_norms.isfinite()
        counts = finite.float()
        grad_norms = torch.where(finite, grad_norms, previous)
    for optimizer, scaler in zip(optimizers, scalers, strict=True):
        # On overflow no update at all (fused SGD reads the flag on the device, inside the graph); the learning rate
        # still follows the step count (lib.training.schedule.run_lr), so the schedule goes on as in an uninterrupted
        # run.
        scaler.step(optimizer)
        scaler.update()  # this model's scale: halved after an overflow, doubled after a run of steps without
    with torch.no_grad():
        predicted = logits.argmax(2)  # N x B
        # fp32 counts: lambda (a float, or the float32 tensor of the graph or of per-run batches) scales them alike
        correct = lam * (predicted == y).sum(1).float() + (1.0 - lam) * (predicted == y_b).sum(1).float()
        size = torch.full_like(grad_norms, y.shape[-1])  # a fill kernel, not a host-to-device copy (graph-safe)
        added = {Stat.LOSS_SUM: losses.detach() * y.shape[-1], Stat.CORRECT: correct, Stat.IMAGES: size,
                 Stat.GRAD_NORM_SUM: grad_norms * counts, Stat.GRAD_NORM_LAST: grad_norms - previous,
                 Stat.GRAD_STEPS: counts}
        sums += torch.stack([added[column] for column in Stat], dim=1)


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
    fast_net = compiled_net(net, rt) if compile_model else net
    if rt.fused_sgd:
        _zero_momentum(optimizers)
    captured = tuple(OPTIMIZER_CLASSES[name] for name in CAPTURED)
    if not rt.cuda_graphs or len(example) < batch_size or type(optimizers[0]) not in captured:
        def eager_step(x, y, y_b, lam, lrs):
            for optimizer, lr in zip(optimizers, lrs, strict=True):
                for group in optimizer.param_groups:
                    group["lr"] = lr
            sgd_step(fast_net if y.shape[-1] == batch_size else net, optimizers, watched, x, y, y_b,
                     _lambda_argument(lam, x.device), sums, rt, scalers)
        return eager_step
    return _graph_step(net, fast_net, optimizers, watched, sums, rt, example, batch_size, per_run_batches, scalers)


def _graph_step(net, fast_net, optimizers, watched, sums, rt: Runtime, example: DeviceSplit, batch_size: int,
                per_run_batches: bool, scalers):
    """make_step's CUDA-graph step: full batches refill the static inputs and replay; a partial one runs eagerly."""
    n_batches = len(optimizers) if per_run_batches else 1
    lr_tensors = [torch.zeros((), device=rt.device) for _ in optimizers]
    lam_t = torch.ones(n_batches, device=rt.device) if per_run_batches else torch.ones((), device=rt.device)
    x_s = example.normalize(example.images[:batch_size]).repeat(1, n_batches, 1, 1).contiguous(
        memory_format=batch_layout(rt))  # B x 3 x H x W, or B x 3N x H x W: one batch per model
    labels = example.labels[:batch_size].expand(n_batches, -1) if per_run_batches else example.labels[:batch_size]
    y_s, yb_s = labels.clone(), labels.clone()
    for optimizer, lr_t in zip(optimizers, lr_tensors, strict=True):
        for group in optimizer.param_groups:
            group.update(lr=lr_t, fused=True, foreach=None)  # fused SGD reads a device-tensor lr inside the graph
    graph = _capture(lambda: sgd_step(fast_net, optimizers, watched, x_s, y_s, yb_s, lam_t, sums, rt, scalers),
                     net, optimizers, sums, scalers, rt)

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


def _capture(step, net, optimizers, sums, scalers, rt: Runtime) -> torch.cuda.CUDAGraph:
    """`step()` recorded as a CUDA graph, after three warm-up steps on a side stream.

    Warm-up steps (cuDNN autotuning, compilation) change weights, BN statistics, momentum, loss scales and move
    the CUDA generator (dropout): they are put back after (a scaler's state_dict is host numbers; load_state_dict
    refills its tensors in place), so that a resumed run draws the masks an uninterrupted one draws."""
    saved, scales = [t.clone() for t in _step_state(net, optimizers, sums)], [s.state_dict() for s in scalers]
    rng = torch.cuda.get_rng_state(rt.device)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    # thread_local: other threads of this process may train meanwhile (lib.training.concurrency); only this thread's own
    # calls that would break the capture are refused
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        step()
    with torch.no_grad():
        for tensor, value in zip(_step_state(net, optimizers, sums), saved, strict=True):
            tensor.copy_(value)
    for scaler, state in zip(scalers, scales, strict=True):
        scaler.load_state_dict(state)
    torch.cuda.set_rng_state(rng, rt.device)  # replays draw from the generator's offset at each replay
    return graph


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


def compiled_net(net: torch.nn.Module, rt: Runtime) -> torch.nn.Module:
    """`net` through torch.compile with the runtime's backend (aot_eager: the tests' CPU trace of the same path)."""
    if rt.compile_backend == "inductor":
        return torch.compile(net, mode=rt.compile_mode)
    return torch.compile(net, backend=rt.compile_backend)


def _step_state(net, optimizers, sums) -> list[torch.Tensor]:
    """Every tensor a training step changes in place: weights, BN buffers, momentum buffers, metric sums."""
    momentum = [s["momentum_buffer"] for optimizer in optimizers for s in optimizer.state.values()
                if s.get("momentum_buffer") is not None]
    return [*net.state_dict().values(), *momentum, sums]


def batch_layout(rt: Runtime) -> torch.memory_format:
    """The one memory layout of every training batch (the graph's static input has it too)."""
    return torch.channels_last if rt.channels_last else torch.contiguous_format


def random_streams(configs: list[RunConfig], device: torch.device | str = "cpu") -> list:
    """The random streams of runs trained together, one (generator, mixup_rng) pair each seeded by the run's seed:
    the generator (on `device`) draws the data order, crops, flips and mixup partners, the numpy rng the mixup
    lambdas (on the host: no device sync). Runs of one seed share one pair, hence one batch; otherwise every run
    has its own, so that each run sees exactly the batches it would see trained alone."""
    seeds = [c.seed for c in configs] if len({c.seed for c in configs}) > 1 else [configs[0].seed]
    return [(torch.Generator(device=device).manual_seed(seed), np.random.default_rng(seed)) for seed in seeds]


def train_epoch(step, split: DeviceSplit, configs: list[RunConfig], streams: list, first_step: int,
                rt: Runtime, plateau: list[float] | None = None) -> None:
    """One pass over `split`: per-image crop and flip, each run's learning rate at each step (lib.training.schedule;
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
        step(x.contiguous(memory_format=batch_layout(rt)), y, y_b, lam, lrs)


def _mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, generator, mixup_rng):
    """(mixed images, labels, partner labels, lambda) of one batch; alpha 0: the batch as it is, lambda 1."""
    if alpha <= 0:
        return x, y, y, 1.0
    lam = float(np.float32(sample_mixup_lambda(alpha, mixup_rng)))  # rounded to fp32, as the graph's
    partner = torch.randperm(len(y), generator=generator, device=y.device)
    return lam * x + (1.0 - lam) * x[partner], y, y[partner], lam

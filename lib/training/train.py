"""The training loop: `train(config, run_dir)` -> per-epoch history, resumable from the run folder.

`train_together(configs, run_dirs)` trains runs that differ only in learning rate, schedule, weight decay or seed
side by side as one stacked network (lib.nets.stack): each run is a `RunState` with its own model, optimiser, loss
scaler, random streams, checkpoint and history, and sees exactly the batches it would see alone; `train` is that
with one run. The step itself (eager or a replayed CUDA graph, lib.training.step) adds each run's statistics on the
device; the loop reads them once per epoch, validates, records the epoch's row, logs it (TensorBoard, W&B:
lib.training.tracking, which never stops training), checkpoints and times it. Early stops re-form the stack; running out
of device memory in the first epoch retries smaller.
What it is not: the run store (lib.running.store) or the decision what to train (lib.running.runs).
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..core import checkpoint
from ..core.config import RunConfig
from ..core.settings import current
from ..nets.data import DeviceSplit
from ..nets.device import Runtime, runtime, synchronize
from ..nets.models import build_model
from ..nets.stack import stack_models
from . import splits, tracking
from .concurrency import building
from .grouping import STACKABLE, group_key, merged_phases, phase_text, run_names, smaller_after_out_of_memory
from .schedule import is_finished, plateau_factor, run_lr
from .splits import evaluate, prepare_data
from .step import EpochStats, make_optimizer, make_step, new_stats, random_streams, train_epoch


@dataclass
class RunState:
    """One run of a stack while it trains."""

    config: RunConfig
    model: torch.nn.Module  # the run's own model; the stacked network reads its parameters
    optimizer: torch.optim.Optimizer
    watched: torch.nn.Parameter  # config.grad_norm_param: its gradient norm is logged
    scaler: torch.amp.GradScaler  # the run's loss scale (fp16; a pass-through otherwise), checkpointed with it
    stream: tuple  # (generator, mixup_rng), see lib.training.step.random_streams; runs of one seed share it
    folder: Path | None  # checkpoints go here after every epoch; None: not kept
    history: list[dict] = field(default_factory=list)  # one row per finished epoch

    def finished(self) -> bool:
        """Trained its last epoch, or stopped early."""
        return is_finished(self.config, _val_losses(self.history))

    def save(self, rt: Runtime) -> None:
        """Checkpoint the run in its folder, if it has one (the loss scale only in fp16: others keep their format)."""
        if self.folder is not None:
            checkpoint.save(self.folder, self.model, self.optimizer, *self.stream, self.history, self.config,
                            *([self.scaler] if rt.scales_loss else []))


def make_model(config: RunConfig, rt: Runtime) -> torch.nn.Module:
    """The run's model on the device, initialised from the run's seed alone."""
    torch.manual_seed(config.seed)  # the initial weights depend on the run's seed alone
    model = build_model(config.arch, config.num_classes, config.sigmoid_blocks, activation=config.activation,
                        init=config.init, dropout=config.dropout, pretrained=config.pretrained).to(rt.device)
    return model.to(memory_format=torch.channels_last) if rt.channels_last else model


def _build(configs: list[RunConfig], rt: Runtime):
    """One fresh model and optimiser per config, and the parameter of each whose gradient norm is logged."""
    models, optimizers, watched = [], [], []
    for config in configs:
        with speed_stage("channels_last", rt.channels_last):
            model = make_model(config, rt)
        params = dict(model.named_parameters())
        if config.grad_norm_param not in params:
            raise ValueError(f"grad_norm_param must name a parameter of {config.arch}, got {config.grad_norm_param!r}")
        models.append(model)
        with speed_stage("fused_sgd", rt.fused_sgd):
            optimizers.append(make_optimizer(model.parameters(), config, rt.device, rt.fused_sgd))
        watched.append(params[config.grad_norm_param])
    return models, optimizers, watched


def fresh_step(configs: list[RunConfig], rt: Runtime, split: DeviceSplit, compile_model: bool = False):
    """New models (one per config, trained together) with a ready `step` for `split`'s batches:
    (models, net, sums, step), `net` the stacked network (logits N x B x classes), `sums` N x
    len(lib.training.step.Stat).

    For benchmarks, tests and time estimates. `train_together` builds the same pieces itself, because it
    restores checkpoints between making the optimisers and capturing the step (the graph must see them).
    """
    models, optimizers, watched = _build(configs, rt)
    net = stack_models(models)
    sums = new_stats(len(configs), rt.device)
    step = make_step(net, optimizers, watched, sums, rt, split, configs[0].batch_size, compile_model,
                     per_run_batches=len(random_streams(configs)) > 1)
    return models, net, sums, step


def train(config: RunConfig, run_dir: Path | None = None, progress: bool = True,
          rt: Runtime | None = None) -> list[dict]:
    """Train one configuration; with `run_dir`, checkpoint every epoch there and resume from it."""
    return train_together([config], [run_dir], progress, rt)[0]


def train_together(configs: list[RunConfig], run_dirs: list[Path | None] | None = None, progress: bool = True,
                   rt: Runtime | None = None, phases: dict | None = None, on_epoch=None) -> list[list[dict]]:
    """Train runs that differ only in learning rate, schedule, weight decay or seed side by side, one history each.

    Each run has its own model, optimiser and checkpoint (in the single-run format), and is trained on the
    same batches as it would be alone; the GPU computes all of them in one stacked step (lib.nets.stack).
    `phases`, if given, is filled with the wall time of each phase (data_seconds, build_seconds: set-up,
    compilation and capture; epoch_seconds: one per epoch trained; total_seconds) and whether it compiled.
    Early stopping: a run that stops leaves the stack at that epoch's end, and the others go on as a new stack
    resumed from their checkpoints (runs without a run folder keep one in a temporary folder meanwhile).
    Out of device memory before the first epoch here is done: tried again from the runs' last checkpoints (or
    their start), with half the evaluation batch if evaluation ran out, else as two smaller stacks.
    `on_epoch(configs, histories)`, if given, is called after each epoch's checkpoints are saved, with the stack's
    configs and histories; to stop training there (a search prunes a run so) it raises, and the exception reaches
    the caller: the runs are left at that epoch, resumable.
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
            trained = _train_with_fallbacks([configs[i] for i in running], [run_dirs[i] for i in running],
                                            progress, rt, rounds[-1], on_epoch)
            for i, history in zip(running, trained, strict=True):
                histories[i] = history
            running = [i for i in running if not is_finished(configs[i], _val_losses(histories[i]))]
    phases.update(rounds[0] if len(rounds) == 1 else merged_phases(rounds, one_after_another=True))
    return histories


def _val_losses(history: list[dict]) -> list[float]:
    return [row["val_loss"] for row in history]


# Speed features a stack drops, in this order, when building it or its first epoch fails with a RuntimeError (a
# compiler, capture or kernel error): each is a speed choice, never worth a crash of the study.
SPEED_FEATURES = ("compile", "cuda_graphs", "fused_sgd", "channels_last")


def _uses(rt: Runtime, feature: str, configs: list[RunConfig]) -> bool:
    return rt.compiles(configs[0].epochs) if feature == "compile" else getattr(rt, feature)


@contextlib.contextmanager
def speed_stage(feature: str, on: bool):
    """Mark a RuntimeError raised inside as `feature`'s (when it is on), so the fallback drops that one."""
    try:
        yield
    except RuntimeError as error:
        if on and not isinstance(error, torch.OutOfMemoryError):
            error.speed_feature = feature
        raise


def _train_with_fallbacks(configs: list[RunConfig], run_dirs: list[Path | None], progress: bool, rt: Runtime,
                          phases: dict, on_epoch=None) -> list[list[dict]]:
    """`_train_or_retry`, tried again without a speed feature each time building the stack or its first epoch fails
    with a RuntimeError other than running out of memory: the feature of the stage that failed (`speed_stage`),
    else the first still on (SPEED_FEATURES: a compiled model fails lazily, in its first step); one line says which was
    dropped and why, and each run's env.json records it (`speed_features_dropped`). Errors of a later epoch, and
    of a stack with no feature left to drop, propagate."""
    while True:
        try:
            return _train_or_retry(configs, run_dirs, progress, rt, phases, on_epoch)
        except RuntimeError as error:  # the stage's feature (speed_stage), else the first still on (a lazy compile)
            feature = getattr(error, "speed_feature", None) or next(
                (f for f in SPEED_FEATURES if _uses(rt, f, configs)), None)
            if isinstance(error, torch.OutOfMemoryError) or phases.get("epoch_seconds") or feature is None:
                raise
            reason = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        print(f"{feature} failed for {run_names(configs)} before its first epoch ended ({reason}): training on "
              f"without it", flush=True)
        for run_dir in run_dirs:
            if run_dir is not None:
                checkpoint.note_in_environment(run_dir, "speed_features_dropped",
                                               {"feature": feature, "reason": reason})
        rt = dataclasses.replace(rt, **{feature: False})
        phases.clear()


def _train_or_retry(configs: list[RunConfig], run_dirs: list[Path | None], progress: bool, rt: Runtime,
                    phases: dict, on_epoch=None) -> list[list[dict]]:
    """One stack's training (`_train_stack`), tried again smaller if it runs out of device memory early."""
    try:
        return _train_stack(configs, run_dirs, progress, rt, phases, on_epoch)
    except torch.OutOfMemoryError as error:
        if phases.get("epoch_seconds"):  # a later epoch: what fitted at first stopped fitting; no choice to revise
            raise
        retry = smaller_after_out_of_memory(configs, rt, _in_evaluation(error))
        if retry is None:
            raise
    parts, smaller_rt, what = retry  # outside the except block: the failed attempt's tensors are freed by now
    print(f"out of device memory in the first epoch of {run_names(configs)}: trying again {what}", flush=True)
    gc.collect()
    if rt.device.type == "cuda":
        torch.cuda.empty_cache()  # give the failed attempt's cached blocks (and CUDA-graph pool) back to the driver
    part_phases = [{} for _ in parts]
    histories = [history for part, part_phase in zip(parts, part_phases, strict=True) for history in train_together(
        [configs[i] for i in part], [run_dirs[i] for i in part], progress, smaller_rt, part_phase, on_epoch)]
    phases.clear()
    phases.update(merged_phases(part_phases), out_of_memory_retry=what)
    return histories


def _in_evaluation(error: BaseException) -> bool:
    """Whether `error` was raised inside lib.training.splits.evaluate (its traceback passes through it)."""
    return any(frame.f_code.co_name == "evaluate" and frame.f_globals.get("__name__") == splits.__name__
               for frame, _ in traceback.walk_tb(error.__traceback__))


def _train_stack(configs: list[RunConfig], run_dirs: list[Path | None], progress: bool, rt: Runtime,
                 phases: dict, on_epoch=None) -> list[list[dict]]:
    """train_together's training loop, once: one stack from its runs' checkpoints to the last epoch or an early stop."""
    config, started = configs[0], time.perf_counter()  # what the runs share: data, seed, shapes, epochs, mixup
    with building(rt.device):  # one training of this process at a time sets up (lib.training.concurrency)
        data = prepare_data(config, rt.device)
        phases["data_seconds"] = time.perf_counter() - started  # read (cached per process), split, statistics, upload
        runs, streams = _start(configs, run_dirs, rt)
        histories, done = [run.history for run in runs], len(runs[0].history)
        if any(run.finished() for run in runs):  # a checkpoint at its early stop, killed before its summary was
            # written: not one epoch more for it; train_together goes on with the others as a new stack
            phases.update(compiled=False, build_seconds=0.0, epoch_seconds=[],
                          total_seconds=time.perf_counter() - started)
            return histories
        tracker = tracking.Tracking(configs, run_dirs, done)
        net = stack_models([run.model for run in runs])  # after the restore: stacked BN buffers start from it
        sums = new_stats(len(runs), rt.device)
        step = _timed_step(net, runs, sums, rt, data.train, len(streams) > 1, phases)
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    # trainings of this process's pool (lib.training.concurrency); None (auto) only outside one
    at_once = rt.concurrent or 1
    bar = _progress_bar(configs, done, progress)
    for epoch in range(done, config.epochs):
        net.train()
        start = time.perf_counter()
        sums.zero_()
        plateau = [plateau_factor(run.config, _val_losses(run.history)) for run in runs]
        train_epoch(step, data.train, configs, streams, epoch * steps_per_epoch, rt, plateau)
        stats = EpochStats.rows(sums)  # the epoch's one host sync
        weight_norms = _weight_norms(runs)
        train_seconds = time.perf_counter() - start
        validation = evaluate(net, data.val, rt)
        seconds = time.perf_counter() - start
        for run, stat, weight_norm, scores, factor in zip(runs, stats, weight_norms, validation, plateau, strict=True):
            run.history.append(_epoch_row(run.config, epoch, steps_per_epoch, factor, stat, weight_norm, scores,
                                          (seconds, train_seconds), len(runs), at_once))
        tracker.log(histories)  # TensorBoard (and W&B): before the checkpoint, so a resume never leaves a gap
        for run in runs:
            run.save(rt)
        phases["epoch_seconds"].append(time.perf_counter() - start)  # with the checkpoints: the epoch's wall time
        _show(bar, histories)
        if on_epoch is not None:
            on_epoch(configs, histories)  # may raise to stop here (a pruned trial): the checkpoints are saved
        if any(run.finished() for run in runs):
            break  # an early stop (or the last epoch): train_together goes on with the runs still running
    bar.close()
    tracker.finish(histories)  # the config as hparams with the final metrics
    phases["total_seconds"] = time.perf_counter() - started
    if phases["epoch_seconds"]:
        beside = f", {at_once} trainings at once" if at_once > 1 else ""
        print(f"timing {run_names(configs)}: {phase_text(phases)}{beside}", flush=True)
    return histories


def _start(configs: list[RunConfig], run_dirs: list[Path | None], rt: Runtime) -> tuple[list[RunState], list]:
    """The stack's runs, fresh or restored from their checkpoints (all at one epoch), and its random streams."""
    models, optimizers, watched = _build(configs, rt)
    scalers = [rt.loss_scaler() for _ in configs]
    streams = random_streams(configs, rt.device)
    run_streams = streams if len(streams) == len(configs) else streams * len(configs)  # run n's stream
    runs = [RunState(*parts) for parts in zip(configs, models, optimizers, watched, scalers, run_streams, run_dirs,
                                              strict=True)]
    for run in runs:
        if run.folder is not None:
            run.history = checkpoint.restore(run.folder, run.model, run.optimizer, *run.stream, scaler=run.scaler)
    if len({len(run.history) for run in runs}) != 1:
        raise ValueError("runs trained together must resume from the same epoch; train them one at a time")
    return runs, streams


def _timed_step(net, runs: list[RunState], sums: torch.Tensor, rt: Runtime, split: DeviceSplit,
                per_run_batches: bool, phases: dict):
    """The stack's step (lib.training.step.make_step); its build time (cuDNN autotuning, compilation, capture) in
    `phases`."""
    phases["compiled"] = rt.compiles(runs[0].config.epochs)
    started = time.perf_counter()
    with speed_stage("compile" if phases["compiled"] else "cuda_graphs", phases["compiled"] or rt.cuda_graphs):
        step = make_step(net, [run.optimizer for run in runs], [run.watched for run in runs], sums, rt, split,
                         runs[0].config.batch_size, compile_model=phases["compiled"], per_run_batches=per_run_batches,
                         scalers=[run.scaler for run in runs])
    synchronize(rt.device)
    phases["build_seconds"] = time.perf_counter() - started
    phases["epoch_seconds"] = []  # wall seconds of each epoch trained here, all runs of the stack together
    return step


def _weight_norms(runs: list[RunState]) -> list[float]:
    """The 2-norm of each run's watched parameter (config.grad_norm_param) now, read in one host sync."""
    with torch.no_grad():
        return torch.stack([run.watched.detach().float().norm() for run in runs]).tolist()


def _epoch_row(config: RunConfig, epoch: int, steps_per_epoch: int, factor: float, stats: EpochStats,
               weight_norm: float, scores: tuple[float, float], seconds: tuple[float, float], n_runs: int,
               at_once: int = 1) -> dict:
    """One run's history row of epoch `epoch` (0-based); `weight_norm`: the watched parameter's 2-norm at the
    epoch's end; `seconds`: (training + validation, training) of the stack; `at_once`: the trainings this process
    ran at the same time (lib.training.concurrency)."""
    (val_loss, val_acc), (total, training) = scores, seconds
    return {
        "epoch": epoch + 1,
        "lr": run_lr(config, epoch * steps_per_epoch, steps_per_epoch, factor),  # at the epoch's first step
        "train_loss": stats.loss_sum / stats.images,
        "train_acc": stats.correct / stats.images,  # under mixup: lambda-weighted agreement with both labels
        "val_loss": val_loss,
        "val_acc": val_acc,
        # 2-norm of d loss / d watched parameter, mean over the steps that had one (fp16 skips overflows)
        "grad_norm_mean": stats.grad_norm_sum / stats.grad_steps if stats.grad_steps else math.nan,
        "grad_norm_last": stats.grad_norm_last,  # ... at the epoch's last step
        # 2-norm of the watched parameter itself after the epoch's last step: with the gradient norm, the relative
        # size of an update (under BatchNorm a weight's scale, not its gradient alone, sets how fast it learns)
        "weight_norm": weight_norm,
        # training + validation; runs of a stack share the time, and so do the trainings at once (a k-th each)
        "epoch_seconds": total / (n_runs * at_once),
        "train_images_per_second": stats.images * n_runs / training,  # this run's images per second of its share
        "runs_together": n_runs,
        # in this process's pool (lib.training.concurrency), which may have had fewer left
        "trainings_at_once": at_once,
    }


TEXT_PROGRESS_SECONDS = 30.0  # plain-text bars redraw at most this often: each redraw is an output of the notebook


def _progress_bar(configs: list[RunConfig], done: int, enabled: bool):
    # Widgets in JupyterLab; plain text where papermill streams the kernel's output to a terminal and keeps every
    # redraw as a stderr output of the executed notebook: there a short run shows its first and last state only.
    text = current().progress == "text"
    if text:
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm

    return tqdm(total=configs[0].epochs, initial=done, desc=run_names(configs), unit="epoch", disable=not enabled,
                leave=True, dynamic_ncols=True, mininterval=TEXT_PROGRESS_SECONDS if text else 0.1)


def _show(bar, histories: list[list[dict]]) -> None:
    """One epoch more on the bar, with each run's last training loss and validation accuracy."""
    bar.set_postfix(train_loss="/".join(f"{h[-1]['train_loss']:.3f}" for h in histories),
                    val_acc="/".join(f"{h[-1]['val_acc']:.3f}" for h in histories), refresh=False)
    bar.update(1)  # redraws (postfix included) only when the bar's interval has passed

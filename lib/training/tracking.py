"""Experiment tracking: every run's per-epoch metrics as TensorBoard event files in its folder, optionally W&B.

What it is: a write-only mirror of what lib.training.train records anyway, so that `tensorboard --logdir runs/` shows
the whole study. Each run folder gets `tensorboard/`, one event file per training session: per epoch (the global step,
1..epochs) loss/train, loss/val, acc/train, acc/val, lr (at the epoch's first step) and grad_norm/<watched
parameter> (the epoch's mean); once the run has trained its last epoch, its config as TensorBoard hparams whose
metrics are those tags' final values. A session that resumes after epoch k opens its writer with purge_step=k+1:
TensorBoard then drops whatever an earlier session wrote past that checkpoint (a kill -9 between checkpoints), so
every step appears once. Runs trained together (lib.nets.stack) are tracked as separate runs, one per folder.
With AI6103_WANDB=1 and wandb installed, each run folder also gets one W&B run in `<run>/wandb/` (offline unless
WANDB_MODE says otherwise; `wandb sync <run>/wandb/offline-run-*` uploads it); the W&B variables are read through
lib.core.settings.

What it is not: a record of the study (metrics.csv, the checkpoints and summary.json are; nothing reads these files
back), a callback system, or a reason to stop training: a failure to write (a full disk, a missing package) warns
once and stops tracking that run, and training goes on. Runs without a folder log nothing.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
import warnings
from pathlib import Path

from ..core.config import RunConfig
from ..core.settings import Settings, current
from .schedule import is_finished

TENSORBOARD = "tensorboard"  # the event folder inside a run folder
SCALARS = {"loss/train": "train_loss", "loss/val": "val_loss", "acc/train": "train_acc", "acc/val": "val_acc",
           "lr": "lr"}  # TensorBoard tag -> lib.training.train history column; plus grad_norm/<parameter> (`scalars`)


def scalars(row: dict, config: RunConfig) -> dict[str, float]:
    """The tags and values logged for one epoch's history row (lib.training.train.train_together's columns)."""
    return {**{tag: row[column] for tag, column in SCALARS.items()},
            f"grad_norm/{config.grad_norm_param}": row["grad_norm_mean"]}


def open_writer(run_dir: Path, purge_step: int | None = None):
    """A SummaryWriter on `run_dir/tensorboard/` whose event file TensorBoard reads after every earlier one.

    TensorBoard reads a folder's event files in name order, and a name starts with the second it was made: a
    session that starts within the second of the previous one waits for the next second (under 1 s), or its
    file could sort before the previous one and its `purge_step` would miss what that one wrote."""
    from torch.utils.tensorboard import SummaryWriter

    folder = Path(run_dir) / TENSORBOARD
    stamps = [int(p.name.split(".")[3]) for p in folder.glob("events.out.tfevents.*")
              if p.name.split(".")[3].isdigit()]
    wait = max(stamps, default=0) + 1 - time.time()
    if 0 < wait <= 1:  # more: a clock set back, or files from another machine; never wait on those
        time.sleep(wait)
    return SummaryWriter(str(folder), purge_step=purge_step)


class Tracking:
    """The trackers of the runs one lib.training.train.train_together call trains: `log` after every epoch, `finish`
    after the last. `epochs_done` is the epoch the runs resume after (0: from the start)."""

    def __init__(self, configs: list[RunConfig], run_dirs: list[Path | None], epochs_done: int):
        chosen = current()  # a bad value is the user's to fix: one line, before any epoch
        self.warned = False
        wandb = self._wandb_module() if chosen.wandb and any(d is not None for d in run_dirs) else None
        self.runs: list[_Run | None] = []
        for config, run_dir in zip(configs, run_dirs, strict=True):
            try:
                self.runs.append(None if run_dir is None else _Run(config, Path(run_dir), epochs_done, wandb, chosen))
            except Exception as e:  # noqa: BLE001 - see _each
                self._warn(run_dir, e)
                self.runs.append(None)

    def log(self, histories: list[list[dict]]) -> None:
        """Write each run's last history row at its epoch number."""
        self._each(lambda i, run: run.log(histories[i][-1]))

    def finish(self, histories: list[list[dict]]) -> None:
        """Write the hparams record of each run that has trained its last epoch (or stopped early) and close every
        writer: a run that goes on in a later stack (another run stopped early) gets its record there, once."""
        self._each(lambda i, run: run.finish(histories[i]) if is_finished(
            run.config, [row["val_loss"] for row in histories[i]]) else run.close_quietly())
        self.runs = [None] * len(self.runs)

    def _each(self, action) -> None:
        """`action(i, run)` for every run still tracked; a run whose action fails is closed and tracked no more
        (no half-written sessions after a failure)."""
        for i, run in enumerate(self.runs):
            if run is None:
                continue
            try:
                action(i, run)
            except Exception as e:  # noqa: BLE001 - any tracking failure (a full disk, a bad package) spares training
                self._warn(run.run_dir, e)
                run.close_quietly()
                self.runs[i] = None

    def _wandb_module(self):
        try:
            import wandb
        except ImportError:
            warnings.warn("AI6103_WANDB=1 but wandb is not installed (pip install wandb): TensorBoard only",
                          stacklevel=3)
            return None
        return wandb

    def _warn(self, run_dir: Path, problem: Exception) -> None:
        """One warning per training call, the first failure's: the rest would say the same."""
        if not self.warned:
            self.warned = True
            warnings.warn(f"tracking of run {Path(run_dir).name} stopped ({type(problem).__name__}: {problem}); "
                          f"training goes on, its metrics.csv and checkpoints are unaffected", stacklevel=3)


class _Run:
    """One run folder's writers: TensorBoard always, W&B if asked for. A W&B group is one setting, its seeds
    (`_group`), so W&B's grouped view shows the seeds' mean and spread; not the stack it trained in, which holds
    other settings (the learning rates of section 2) and changes with the GPU's memory."""

    def __init__(self, config: RunConfig, run_dir: Path, epochs_done: int, wandb, chosen: Settings):
        self.config, self.run_dir, self.wandb = config, run_dir, None
        self.writer = open_writer(run_dir, purge_step=epochs_done + 1)  # drops steps an earlier session wrote past k
        if wandb is not None:
            self.wandb = wandb.init(
                project=chosen.wandb_project, dir=str(run_dir), name=run_dir.name,
                id=run_dir.name.rpartition("-")[2], resume="allow", reinit="create_new",  # several runs at once
                group=chosen.wandb_run_group or _group(config), config=_fields(config),
                mode=chosen.wandb_mode)  # offline by default: never the network unless the user asks

    def log(self, row: dict) -> None:
        values = scalars(row, self.config)
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, row["epoch"])
        self.writer.flush()  # a kill loses at most the epoch being trained
        if self.wandb is not None:
            self.wandb.log(values, step=row["epoch"])

    def finish(self, history: list[dict]) -> None:
        from torch.utils.tensorboard.summary import hparams

        final = scalars(history[-1], self.config)
        records = hparams(_hparam_values(self.config), {tag: final[tag] for tag in SCALARS if tag != "lr"})
        for record in records:  # experiment, session start and end, in this run's own folder, at the last step
            self.writer.file_writer.add_summary(record, len(history))
        self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()

    def close_quietly(self) -> None:
        for close in (self.writer.close, getattr(self.wandb, "finish", None)):
            with contextlib.suppress(Exception):  # it is failing already, and the warning has been given
                if close is not None:
                    close()


def _fields(config: RunConfig) -> dict:
    """Every training field, options at their defaults too (config.key() leaves those out, for the hash's sake; a
    table comparing sgd with adam needs both)."""
    return {k: v for k, v in dataclasses.asdict(config).items() if k != "data_dir"}


def _group(config: RunConfig) -> str:
    """A setting's W&B group: its seeds together, nothing else (its readable name, which leaves out the batch size,
    say, plus a digest of every training field but the seed)."""
    setting = json.dumps({k: v for k, v in _fields(config).items() if k != "seed"}, sort_keys=True, default=str)
    return f"{config.short_name(leave_out=('seed',))}-{hashlib.sha256(setting.encode()).hexdigest()[:8]}"


def _hparam_values(config: RunConfig) -> dict:
    """The config's training fields as values TensorBoard's hparams take (numbers, strings, booleans)."""
    return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in _fields(config).items()}

"""Learning-rate schedules and the decisions taken at epoch boundaries (reduce-on-plateau, early stopping).

Pure functions of the config, the step and the validation losses of the epochs finished so far. A run's state
here is its history, which every checkpoint holds: a resumed run takes exactly the decisions an uninterrupted one
takes, with nothing more to save.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from ..core.config import RunConfig

PLATEAU_THRESHOLD = 1e-4  # relative: a loss counts as lower when below best * (1 - 1e-4), as torch's ReduceLROnPlateau


def lr_at(step: int, total_steps: int, base_lr: float, schedule: str) -> float:
    """Learning rate used by optimiser step `step` (0-based) of `total_steps`, for "constant" and "cosine".

    cosine: base_lr * (1 + cos(pi * step / total_steps)) / 2, so step 0 uses base_lr and the value after
    the last step (step == total_steps) is exactly 0.
    """
    if schedule == "constant":
        return base_lr
    if schedule == "cosine":
        return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    raise ValueError(f"schedule must be 'constant' or 'cosine' here, got {schedule!r}")


def run_lr(config: RunConfig, step: int, steps_per_epoch: int, plateau: float = 1.0) -> float:
    """The learning rate of a run's optimiser step `step` (0-based), any schedule. "step" multiplies it by lr_gamma
    every lr_step_epochs epochs, "exponential" every epoch (both constant within an epoch, as torch's StepLR and
    ExponentialLR stepped per epoch); "plateau" is lr times `plateau`, the factor `plateau_factor` gives."""
    epoch = step // steps_per_epoch
    if config.schedule == "step":
        return config.lr * config.lr_gamma ** (epoch // config.lr_step_epochs)
    if config.schedule == "exponential":
        return config.lr * config.lr_gamma ** epoch
    if config.schedule == "plateau":
        return config.lr * plateau
    return lr_at(step, config.epochs * steps_per_epoch, config.lr, config.schedule)


def plateau_factor(config: RunConfig, val_losses: Sequence[float]) -> float:
    """The factor on lr for the epoch after `val_losses` (one per finished epoch): torch's ReduceLROnPlateau (mode
    min, relative threshold 1e-4, no cooldown, no floor) stepped once per epoch on the validation loss: times
    lr_gamma whenever more than plateau_patience epochs in a row brought no lower loss. 1 for other schedules."""
    if config.schedule != "plateau":
        return 1.0
    factor, best, bad_epochs = 1.0, math.inf, 0
    for loss in val_losses:
        if loss < best * (1 - PLATEAU_THRESHOLD):  # NaN is never lower
            best, bad_epochs = loss, 0
        else:
            bad_epochs += 1
        if bad_epochs > config.plateau_patience:
            factor, bad_epochs = factor * config.lr_gamma, 0
    return factor


def early_stop(config: RunConfig, val_losses: Sequence[float]) -> tuple[int | None, int]:
    """(the epoch training stops after, or None while it goes on; the epoch of the lowest validation loss so far),
    epochs 1-based. Stops once early_stopping_patience epochs in a row did not lower the best loss by more than
    early_stopping_min_delta; never when the patience is 0 (off)."""
    best, best_epoch, since = math.inf, 0, 0
    for epoch, loss in enumerate(val_losses, 1):
        if loss < best - config.early_stopping_min_delta:
            best, best_epoch, since = loss, epoch, 0
        else:
            since += 1
        if config.early_stopping_patience and since >= config.early_stopping_patience:
            return epoch, best_epoch
    return None, best_epoch


def final_epoch(config: RunConfig, val_losses: Sequence[float]) -> int:
    """The epoch a run ends after, as far as its validation losses so far tell: the early stop, else `epochs`."""
    stopped, _ = early_stop(config, val_losses)
    return config.epochs if stopped is None else stopped


def is_finished(config: RunConfig, val_losses: Sequence[float]) -> bool:
    """Whether a run with these validation losses (one per finished epoch) has nothing left to train."""
    return len(val_losses) >= final_epoch(config, val_losses)

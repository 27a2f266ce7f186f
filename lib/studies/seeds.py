"""Several seeds of one setting: their runs, and the mean, spread and n that tables, figures and choices use.

A seed varies the initial weights, the data order, the crops and flips and the mixup draws (RunConfig.seed);
the 40k/10k split keeps split_seed 0, as the brief requires. Seed k of a setting is its config with seed k
(k = 0..n-1): seed 0 is the run the brief's study trains, so n = 1 is the brief's study unchanged and a larger n
reuses it. Runs that differ only in seed train as one stack (lib.training.step.random_streams).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..core.config import RunConfig, with_seeds
from ..running.runs import evaluate_test
from ..running.store import RunResult

FINAL_METRICS = ("final_train_loss", "final_train_acc", "final_val_loss", "final_val_acc")


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof 1) of one number over seeds; the spread of one seed is None."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else None


@dataclass
class Setting:
    """The finished runs of one setting over its seeds (seed 0 first), read like one RunResult: `config`, `run_id`
    and `path` are seed 0's; `summary` and `history` hold means over the seeds, with their spread beside them
    (`summary["<key>_std"]`, history columns `<metric>_std`, present only when n > 1) and `n`."""

    runs: list[RunResult]

    def __post_init__(self) -> None:
        lengths = {len(run.history) for run in self.runs}
        if not self.runs or (len(lengths) != 1 and not self.runs[0].config.early_stopping_patience):
            raise ValueError(f"a setting's seeds must be finished runs of equal length, got epochs {sorted(lengths)}")

    @property
    def config(self) -> RunConfig:
        return self.runs[0].config

    @property
    def run_id(self) -> str:
        return self.runs[0].run_id

    @property
    def path(self):
        return self.runs[0].path

    @property
    def n(self) -> int:
        return len(self.runs)

    @cached_property
    def history(self) -> pd.DataFrame:
        """Per epoch, every metric's mean over the seeds; with n > 1 also its standard deviation (`<metric>_std`).
        Seeds that stopped early at different epochs: the epochs they all trained. A column some seed lacks (a run
        recorded before the column existed, e.g. `weight_norm`) is left out."""
        columns = [c for c in self.runs[0].history.select_dtypes("number").columns
                   if c != "epoch" and all(c in run.history for run in self.runs)]
        n_epochs = min(len(run.history) for run in self.runs)
        # seeds x epochs x columns
        values = np.stack([run.history[columns].to_numpy(float)[:n_epochs] for run in self.runs])
        frame = pd.DataFrame(values.mean(0), columns=columns)
        if self.n > 1:
            frame = frame.join(pd.DataFrame(values.std(0, ddof=1), columns=[f"{c}_std" for c in columns]))
        frame.insert(0, "epoch", self.runs[0].history["epoch"].to_numpy()[:n_epochs])
        frame.attrs["n_seeds"] = self.n  # what lib.studies.plots says the lines and bands are
        return frame

    @cached_property
    def summary(self) -> dict:
        """Seed 0's summary with its final metrics replaced by their means over the seeds, their spread
        (`<key>_std`, None for one seed), `n_seeds` and every seed's `run_ids`. The best validation accuracy is
        the peak of the mean curve and `best_val_epoch` its epoch, so the two name one point (with one seed: the
        run's own); a mean of each seed's best would belong to no epoch and overstate what one stopping epoch gives."""
        summary = {**self.runs[0].summary, "n_seeds": self.n, "run_ids": [run.run_id for run in self.runs]}
        for key in FINAL_METRICS:
            summary[key], summary[f"{key}_std"] = mean_std([run.summary[key] for run in self.runs])
        peak = int(self.history["val_acc"].to_numpy().argmax())  # row of the mean curve's highest point
        summary["best_val_epoch"] = int(self.history["epoch"].iloc[peak])
        summary["best_val_acc"], summary["best_val_acc_std"] = mean_std(
            [run.history["val_acc"].iloc[peak] for run in self.runs])
        return summary


def settings_of_runs(labelled_configs: dict[str, RunConfig], runs: dict[RunConfig, RunResult], seeds: int
                     ) -> dict[str, Setting]:
    """Each label's Setting from the finished runs of its seeds (`runs` by config)."""
    return {label: Setting([runs[seed] for seed in with_seeds(config, seeds)])
            for label, config in labelled_configs.items()}


def scores_on_test_set(setting: Setting | RunResult) -> dict:
    """Test loss and accuracy of a setting's final models, each seed's computed once and stored in its run folder
    (lib.running.runs.evaluate_test): means over the seeds, their spread (None for one seed), n and the runs scored."""
    runs = setting.runs if isinstance(setting, Setting) else [setting]
    scores = [evaluate_test(run) for run in runs]
    record = {"n_test": scores[0]["n_test"], "n_seeds": len(runs), "test_run_ids": [run.run_id for run in runs]}
    for key in ("test_acc", "test_loss"):
        record[key], record[f"{key}_std"] = mean_std([score[key] for score in scores])
    return record

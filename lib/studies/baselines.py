"""Baselines beyond the brief: one training recipe on several architectures, side by side (notebook baselines).

What it is: `baseline_configs` makes one config per architecture (lib.studies.sections declares the section and its
default architectures: a small CNN, ResNet-18, MobileNetV2, MobileNet v1), all with the same epochs, data and
optimiser settings, each checked before anything trains. They train through the run store like any section
(lib.studies.study.run_section: cached, resumable, with seeds). `table_rows` adds to each architecture's final numbers
its size (lib.nets.models.model_size: parameters and multiply-adds of one 32x32 image) and its seconds per epoch;
the rows go into results/<study>/<profile>/baselines.json (`extra["table"]`, via lib.studies.study.export like every
section), which the notebook, the summary notebook and the paper read (`read_baselines`, `table`).
What it is not: a step of the study. It chooses nothing and hands nothing on; `make all` leaves it out, and the
paper adds it (a paragraph and a table) only when its results file exists.
"""
from __future__ import annotations

import dataclasses
import statistics
from typing import TYPE_CHECKING

import pandas as pd

from ..core.config import PRETRAINABLE, ConfigError, RunConfig
from ..core.notation import arch_name
from ..running.store import trained_on
from .profiles import base_config, get_profile
from .results import metric_cells, read_section, section_path
from .sections import as_setting

if TYPE_CHECKING:
    from .seeds import Setting

SECTION = "baselines"  # its notebook, notebooks/baselines.ipynb
ARCHS = ("small_cnn", "resnet18", "mobilenetv2", "mobilenet")  # the architectures compared by default


def baseline_configs(profile: str, data_dir: str | None = None, archs=None, *, epochs: int | None = None,
                     lr: float = 0.05, schedule: str = "constant", weight_decay: float = 0.0, batch_size: int = 128,
                     optimizer: str = "sgd", pretrained: str = "") -> dict[str, RunConfig]:
    """One config per architecture (labelled by its name, in the order given; None: lib.studies.sections' default), the
    profile's data and sizes, and the same recipe for all: `epochs` (None: the profile's short epochs, section 2's),
    `lr`, `schedule`, `weight_decay`, `batch_size`, `optimizer`; `pretrained` ("imagenet" or a weights file) starts
    the ResNets from ImageNet weights (the other architectures have none). Every config is checked here, before
    anything trains: a bad value fails in one line naming it."""
    archs = list(ARCHS if archs is None else [archs] if isinstance(archs, str) else archs)
    if not archs:
        raise ConfigError(f"archs must list at least one architecture, e.g. {list(ARCHS)}")
    if len(set(archs)) < len(archs):
        raise ConfigError(f"archs lists an architecture twice: {archs}")
    recipe = {"epochs": get_profile(profile).short_epochs if epochs is None else epochs, "lr": as_setting("lr", lr),
              "schedule": schedule, "weight_decay": as_setting("weight_decay", weight_decay), "batch_size": batch_size,
              "optimizer": optimizer}
    # base_config builds the config with `arch`, so an unknown name is refused here, in one line
    return {arch: dataclasses.replace(base_config(profile, data_dir, arch), **recipe, pretrained=(
        pretrained if arch in PRETRAINABLE else "")) for arch in archs}


def legend(arch: str) -> str:
    """How figures and tables name an architecture: "ResNet-18", "MobileNet v1"."""
    return arch_name(arch)


def seconds_per_epoch(result: Setting) -> float:
    """Wall seconds of one epoch (training and validation) of a setting: per seed the median over its epochs after
    the first (which includes warm-up; a 1-epoch run has only that one), then the mean over the seeds. Seeds trained
    together as one stack share each epoch's time (lib.training.train: `epoch_seconds` is the run's share)."""
    def median(seconds: pd.Series) -> float:
        return float(statistics.median(seconds.iloc[1:] if len(seconds) > 1 else seconds))

    return statistics.fmean(median(run.history["epoch_seconds"]) for run in result.runs)


def table_rows(results: dict[str, Setting]) -> list[dict]:
    """One row per architecture (what the results file keeps in `extra["table"]`): its label, parameters and
    multiply-adds of one 32x32 image (lib.nets.models.model_size), seconds per epoch (a run's share when it trained
    in a stack of `runs_together`, e.g. MobileNetV2's run reused from section 2), epochs, seeds, the best and the
    final validation accuracy (fractions; means over the seeds, with their standard deviation when n > 1), the
    device and seed 0's run id."""
    from ..nets.models import model_size  # torch: only where a model is built

    rows = []
    for label, result in results.items():
        s, config = result.summary, result.config
        size = model_size(config.arch, config.num_classes)
        rows.append({"arch": label, "params": int(size["params"]), "macs": int(size["macs"]),
                     "seconds_per_epoch": seconds_per_epoch(result), "epochs": s["epochs_done"],
                     "runs_together": max(_runs_together(run.history) for run in result.runs),
                     "n_seeds": s.get("n_seeds", 1), "best_val_acc": s["best_val_acc"],
                     "final_val_acc": s["final_val_acc"], "best_val_acc_std": s.get("best_val_acc_std"),
                     "final_val_acc_std": s.get("final_val_acc_std"), "device": trained_on(result.path),
                     "run_id": result.run_id})
    return rows


def _runs_together(history: pd.DataFrame) -> int:
    """How many runs trained in one stack with this one (1: alone; runs stored before stacking have no column)."""
    return int(history["runs_together"].max()) if "runs_together" in history else 1


TABLE_COLUMNS = (("best val acc (%)", "best_val_acc", 100, "best val acc sd"),
                 ("final val acc (%)", "final_val_acc", 100, "final val acc sd"))  # lib.studies.results.Metric


def table(rows: list[dict]) -> pd.DataFrame:
    """The baselines table as the notebooks show it, one row per architecture in the order trained: parameters and
    multiply-adds (millions), seconds per epoch, best and final validation accuracy (%); with several seeds their
    means, the standard deviation of each accuracy ("sd") and n; when a run trained in a stack, "runs together"
    (its seconds are its share of the stack's epoch)."""
    several = any(row["n_seeds"] > 1 for row in rows)
    stacked = any(row.get("runs_together", 1) > 1 for row in rows)  # then say which times are a stack's share
    shown = []
    for row in rows:
        line = {"arch": row["arch"], "model": legend(row["arch"]), "params (M)": row["params"] / 1e6,
                "MACs (M)": row["macs"] / 1e6, "s / epoch": row["seconds_per_epoch"], "epochs": row["epochs"],
                **metric_cells(row, TABLE_COLUMNS, several)}
        shown.append(line | ({"seeds": row["n_seeds"]} if several else {})
                     | ({"runs together": row.get("runs_together", 1)} if stacked else {}))
    return pd.DataFrame(shown).set_index("arch").round(3)


def read_baselines(profile: str | None = None, folder=None) -> dict | None:
    """The baselines' results record (lib.studies.results) of a profile (or in `folder`), None when the baselines
    notebook has not been run for it; a one-line error if the file exists but is malformed or of another version."""
    if not section_path(SECTION, folder, profile).exists():
        return None
    return read_section(SECTION, folder, profile)


def summary_table(profile: str) -> pd.DataFrame | None:
    """The baselines table of a profile's results file, None when there is none (the summary shows nothing then)."""
    record = read_baselines(profile)
    return None if record is None else table(record["extra"]["table"])

"""The study's plan: profiles, each section's run configs, inherited choices, time estimates and progress.

What it is: the glue the notebooks call so that they hold no training logic — which runs a section makes
(from the brief's baseline, the choices of earlier sections and the notebook's overrides), where the data
lives for a profile, what a section will cost on this machine, and the one call that trains a section.
What it is not: the training loop (lib.train), the run store (lib.store) or the results files (lib.results).
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import textwrap
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from . import paths
from .config import RunConfig
from .cost import epoch_seconds, runs_to_stack, setup_seconds, split_sizes, throughput
from .data import DataError, data_info, load_cifar100, split_indices, write_synthetic_cifar100
from .device import runtime
from .results import read_section, write_section
from .store import RunResult, epochs_recorded, run_or_load_many, run_path, training_groups

SECTIONS = ("01_data", "02_learning_rate", "03_lr_schedule", "04_weight_decay", "05_mixup", "06_activation",
            "07_summary")
SIGMOID_BLOCKS = tuple(range(4, 11))  # the variant: Sigmoid instead of ReLU in blocks 4..10 of model.layers


@dataclass(frozen=True)
class Profile:
    name: str
    short_epochs: int  # epochs of the learning-rate section (the brief: 15)
    long_epochs: int  # epochs of the schedule, weight-decay, mixup and activation sections (the brief: 300)
    val_size: int  # images held out of the training file for validation (the brief: 10,000)
    train_subset: int | None  # train on the first N images of the training split only (None = all)
    val_subset: int | None  # validate on the first N images of the validation split only (None = all)
    synthetic: tuple[int, int] | None  # (train, test) images of generated data; None = real CIFAR-100
    about: str


PROFILES = {
    "full": Profile("full", 15, 300, 10_000, None, None, None, "the brief's settings on CIFAR-100"),
    "quick": Profile("quick", 5, 30, 10_000, None, None, None, "CIFAR-100, runs shortened to 5 and 30 epochs"),
    "smoke": Profile("smoke", 2, 2, 300, 256, 128, (1200, 300),
                     "synthetic data, 256 training images, 2 epochs: checks the pipeline, says nothing"),
    # The GPU check (bench/gpu_session.sh e2e): every size as in `full` but the epochs, on generated data.
    "e2e": Profile("e2e", 2, 6, 10_000, None, None, (50_000, 10_000),
                   "synthetic data of CIFAR-100's size, 2 and 6 epochs: times the whole pipeline, says nothing"),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {name!r}")
    return PROFILES[name]


def resolve_data_dir(profile: str, data_dir: str | None = None) -> str:
    """The data folder a profile reads.

    `data_dir=None` means the profile's default: lib.paths.data_dir() for real data; for the profiles on
    generated data a `synthetic-<profile>` folder inside it, written there if missing. Synthetic data is only
    ever written into that folder of its own: a `data_dir` given to such a profile is read as it is, and one
    without a complete `cifar-100-python/` (a partial download, a typo, an archive not yet unpacked) is refused,
    never written to.
    """
    spec = get_profile(profile)
    if data_dir is not None:
        folder = Path(data_dir).expanduser().resolve()
        if spec.synthetic is not None and not (folder / "cifar-100-python" / "meta").is_file():
            raise DataError(f"data_dir {folder} holds no complete cifar-100-python/ folder, and profile {profile} "
                            f"writes its synthetic data only into a folder of its own: leave data_dir unset for "
                            f"it, or point data_dir at a complete folder")
        return str(folder)
    if spec.synthetic is None:
        return str(paths.data_dir())
    folder = paths.data_dir() / f"synthetic-{spec.name}"
    if not (folder / "cifar-100-python" / "meta").is_file():
        write_synthetic_cifar100(folder, *spec.synthetic)
    return str(folder)


def base_config(profile: str, data_dir: str | None = None, arch: str = "mobilenetv2") -> RunConfig:
    """The brief's baseline (lr 0.05, constant, no decay, no mixup) sized for a profile, long-section epochs."""
    spec = get_profile(profile)
    return RunConfig(arch=arch, epochs=spec.long_epochs, val_size=spec.val_size, train_subset=spec.train_subset,
                     val_subset=spec.val_subset, data_dir=resolve_data_dir(profile, data_dir))


def inherited(section: str, key: str, override, profile: str):
    """`override` if given, else the value `section` chose; refuses choices made under another profile."""
    if override is not None:
        return override
    record = read_section(section)
    if record["profile"] != profile:
        raise ValueError(f"results/{section}.json was written by profile {record['profile']!r}, not {profile!r}: "
                         f"run notebook {section} with profile={profile!r} first, or pass {key}=... as a parameter")
    if key not in record["chosen"]:
        raise KeyError(f"results/{section}.json chose no {key!r}; re-run notebook {section}")
    return record["chosen"][key]


def best_label(results: dict[str, RunResult], metric: str, larger_is_better: bool) -> str:
    """The label of the run with the best final `metric` (e.g. "final_val_acc"); ties go to the first listed."""
    sign = 1.0 if larger_is_better else -1.0
    return max(results, key=lambda label: sign * results[label].summary[metric])


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def epochs_done(config: RunConfig) -> int:
    """Finished epochs of a config in the run store (its per-epoch metrics file), 0 if never started."""
    return epochs_recorded(run_path(config))


def print_section_plan(section: str, runs: dict[str, RunConfig]) -> float:
    """Print what a section will train and how long it should take here; returns the estimate in seconds."""
    n_total = n_training_file(next(iter(runs.values())))
    groups = training_groups(list(runs.values()), epochs_of=epochs_recorded)  # reads no checkpoint
    stacked = {run_path(c): len(group) for group in groups for c in group}
    speed = None
    rows, total = [], 0.0
    for label, config in runs.items():
        done = epochs_done(config)
        if done >= config.epochs:
            status, seconds = "stored", 0.0
        else:
            together = stacked.get(run_path(config), 1)
            speed = throughput(config.arch, config.batch_size, together)  # images/s summed over a stack: this
            seconds = (config.epochs - done) * epoch_seconds(config, speed, n_total)  # run's share of its time
            status = f"train {config.epochs - done} epochs" + (f" (resume at {done})" if done else "")
            status += f", {together} stacked" if together > 1 else ""
        total += seconds
        rows.append((label, config.short_name(), status, format_seconds(seconds) if seconds else "-"))
    width = max(len(r[0]) for r in rows)
    stored = sum(r[2] == "stored" for r in rows)
    print(f"{section}: {len(runs)} runs, {stored} already stored" + (": nothing to train" if stored == len(rows)
                                                                      else ""))
    for label, name, status, estimate in rows:
        print(f"  {label:<{width}}  {name:<40} {status:<28} {estimate}")
    if total:  # this process trains: it pays the set-up once (as measured here before, if ever)
        setup = setup_seconds(runtime().compiles(next(iter(runs.values())).epochs))
        total += setup
        print(f"  set-up (compilation, cuDNN autotuning, graph capture), as measured here before: "
              f"{format_seconds(setup)}" if setup else "  set-up: not measured here yet")
    device = speed["device"] if speed else "-"
    print(f"  estimated time on this machine ({device}): {format_seconds(total)}")
    return total


@lru_cache(maxsize=4)
def _n_training_file(folder: str, fingerprint: str) -> int:
    return len(load_cifar100(Path(folder).parent, download=False).train_labels)


def n_training_file(config: RunConfig) -> int:
    """Images in the training file of a config's data (50,000 for CIFAR-100) before the split."""
    info = data_info(config.data_dir)
    if info.is_official:
        return 50_000
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not the official CIFAR-100.*")
        return _n_training_file(info.folder, info.fingerprint)


def run_section(section: str, runs: dict[str, RunConfig], progress: bool = True) -> dict[str, RunResult]:
    """Train (or load) a section's runs, labelled as given: prints the plan first, then one progress bar per run
    or per stack of runs trained together."""
    if not runs:
        raise ValueError(f"{section} has no runs to make")
    print_section_plan(section, runs)
    started = time.time()
    with warnings.catch_warnings():
        # Synthetic data warns once per load; the plan above already says what data this is.
        warnings.filterwarnings("ignore", message=".*not the official CIFAR-100.*")
        warnings.filterwarnings("ignore", message=".*IProgress not found.*")
        results = run_or_load_many(list(runs.values()), progress=progress)
    print(f"{section}: {len(results)} runs ready in {format_seconds(time.time() - started)}")
    return dict(zip(runs, results, strict=True))


# --- the whole study, for the driver's plan ---------------------------------------------------------------

def study_plan(profile: str, n_learning_rates: int = 3) -> list[tuple[str, int, int]]:
    """(section, new runs at most, epochs per run) for a profile with the brief's defaults.

    Runs shared between sections (the best setup so far is the baseline of the next section) are counted once.
    """
    spec = get_profile(profile)
    return [("02_learning_rate", n_learning_rates, spec.short_epochs), ("03_lr_schedule", 2, spec.long_epochs),
            ("04_weight_decay", 2, spec.long_epochs), ("05_mixup", 1, spec.long_epochs),
            ("06_activation", 1, spec.long_epochs)]


def print_study_plan(profile: str, data_dir: str | None = None, arch: str = "mobilenetv2") -> dict[str, float]:
    """Print every section's runs and the estimated time of the whole study on this machine (upper bound);
    returns the estimated training seconds of each section."""
    spec = get_profile(profile)
    config = base_config(profile, data_dir, arch)
    speed = throughput(arch, config.batch_size)
    n_total = n_training_file(config)
    per_epoch = epoch_seconds(config, speed, n_total)
    n_train, n_val = split_sizes(config, n_total)
    print(f"profile {profile}: {spec.about}")
    print(f"data {config.data_dir} ({data_info(config.data_dir).label}); {n_train} training and {n_val} "
          f"validation images per epoch; {arch}, batch {config.batch_size}")
    print(f"device {speed['device']}: ~{speed['train_images_per_second']:.0f} training images/s "
          f"-> ~{format_seconds(per_epoch)} per epoch")
    seconds_by_section = {}
    for section, n_runs, epochs in study_plan(profile):
        together = runs_to_stack(arch, config.batch_size, n_runs)  # the section's runs differ in optimiser settings
        section_epoch = per_epoch if together == 1 else epoch_seconds(
            config, throughput(arch, config.batch_size, together), n_total)  # a run's share of a stacked epoch
        seconds = n_runs * epochs * section_epoch + setup_seconds(runtime().compiles(epochs))
        seconds_by_section[section] = seconds  # each notebook is a process of its own: one set-up each
        stacked = f" ({together} stacked)" if together > 1 else ""
        print(f"  {section:<18} {n_runs} new runs x {epochs:>3} epochs{stacked}  ~{format_seconds(seconds)}")
    print(f"  total (runs already stored are skipped): ~{format_seconds(sum(seconds_by_section.values()))} of training")
    return seconds_by_section


def n_train_images(config: RunConfig) -> int:
    """Training images per epoch of a config on its data."""
    return split_sizes(config, n_training_file(config))[0]


def lr_curve(config: RunConfig) -> tuple[list[float], list[float]]:
    """(epoch as a fraction, learning rate) at every optimiser step of a config, from lib.train.lr_at."""
    from .train import lr_at

    steps_per_epoch = math.ceil(n_train_images(config) / config.batch_size)
    total = config.epochs * steps_per_epoch
    steps = range(total + 1)
    return [s / steps_per_epoch for s in steps], [lr_at(s, total, config.lr, config.schedule) for s in steps]


def replace(config: RunConfig, **changes) -> RunConfig:
    """dataclasses.replace, re-exported so notebooks need one import."""
    return dataclasses.replace(config, **changes)


# --- tables and export ------------------------------------------------------------------------------------

def data_kind(config: RunConfig) -> str:
    """"cifar100", "synthetic" or "modified": what the figures and results files say about the data."""
    return data_info(config.data_dir).kind


def results_table(results: dict[str, RunResult]) -> pd.DataFrame:
    """Final-epoch losses and accuracies (%) of a section's runs, one row per label."""
    rows = {label: {"epochs": r.summary["epochs_done"],
                    "train loss": r.summary["final_train_loss"], "train acc (%)": 100 * r.summary["final_train_acc"],
                    "val loss": r.summary["final_val_loss"], "val acc (%)": 100 * r.summary["final_val_acc"],
                    "best val acc (%)": 100 * r.summary["best_val_acc"], "run": r.run_id}
            for label, r in results.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("setting")


def run_record(label: str, result: RunResult) -> dict:
    """The per-run row of a section's results file (lib.results): identity plus final metrics."""
    s = result.summary
    return {
        "run_id": result.run_id,
        "label": label,
        "config": result.config.key(),
        "epochs": s["epochs_done"],
        **{k: s[k] for k in ("final_train_loss", "final_train_acc", "final_val_loss", "final_val_acc",
                               "best_val_acc", "best_val_epoch")},
    }


def export(section: str, profile: str, results: dict[str, RunResult], chosen: dict | None = None,
           extra: dict | None = None, figures: list[str] | None = None) -> Path:
    """Write the section's results file (lib.results schema) from its labelled runs."""
    config = next(iter(results.values())).config
    path = write_section(section, profile, data_kind(config), [run_record(label, r) for label, r in results.items()],
                         chosen=chosen, extra=extra, figures=figures)
    print(f"wrote {path}")
    return path


def split_code() -> str:
    """The exact lines of lib.data.split_indices that partition the training file (for the report)."""
    source = textwrap.dedent(inspect.getsource(split_indices))
    function = ast.parse(source).body[0]
    statements = [s for s in function.body if not isinstance(s, (ast.Expr, ast.If))]  # no docstring, no check
    return "\n".join(ast.get_source_segment(source, s) for s in statements)


# --- the whole study's results ----------------------------------------------------------------------------

def read_study(profile: str, sections: tuple[str, ...] = SECTIONS[1:6]) -> dict[str, dict]:
    """The results files of the training sections, refusing any written under another profile."""
    records = {section: read_section(section) for section in sections}
    other = {section: r["profile"] for section, r in records.items() if r["profile"] != profile}
    if other:
        raise ValueError(f"results of {', '.join(f'{s} ({p})' for s, p in other.items())} are not from profile "
                         f"{profile!r}: run those notebooks with profile={profile!r} first")
    return records


def unique_runs(records: dict[str, dict]) -> list[tuple[dict, list[str]]]:
    """Every distinct run of the study once, in study order, with the sections that use it."""
    seen: dict[str, tuple[dict, list[str]]] = {}
    for section, record in records.items():
        for run in record["runs"]:
            seen.setdefault(run["run_id"], (run, []))[1].append(section)
    return list(seen.values())


def study_table(records: dict[str, dict]) -> pd.DataFrame:
    """One row per distinct run: the settings that vary in the study, then the final metrics (accuracies in %)."""
    rows = []
    for run, sections in unique_runs(records):
        config = run["config"]
        blocks = config["sigmoid_blocks"]
        rows.append({
            "sections": ", ".join(s[:2] for s in sections), "label": run["label"], "lr": config["lr"],
            "schedule": config["schedule"], "weight decay": config["weight_decay"],
            "mixup alpha": config["mixup_alpha"],
            "activation": f"sigmoid {blocks[0]}-{blocks[-1]}" if blocks else "relu", "epochs": run["epochs"],
            "train loss": run["final_train_loss"], "train acc (%)": 100 * run["final_train_acc"],
            "val loss": run["final_val_loss"], "val acc (%)": 100 * run["final_val_acc"], "run_id": run["run_id"],
        })
    return pd.DataFrame(rows)

"""What the notebooks call: a section's configs, training, choice, tables and export, and the study's summary.

The study itself is defined in lib.studies.sections (which runs, from which earlier choice); profiles and data folders
in lib.studies.profiles; plans and estimates in lib.studies.plan. This module puts them together for the notebooks, so
that they hold no training logic: `section_configs` -> `run_section` -> `choose` -> tables, figures -> `export`.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import textwrap
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..core import paths
from ..core.config import ConfigError, RunConfig, check_seeds, with_seeds
from ..core.notation import TIE_AHEAD, TIE_EQUAL, count, printed
from ..nets.data import data_info, load_cifar100, silence_unofficial_warning, split_indices
from ..running.executor import run_or_load_many
from ..running.store import RunResult, load_run, trained_on
from ..training.step import sample_mixup_lambda
from . import reference
from .briefs import METRICS
from .plan import format_seconds, n_train_images, print_section_plan, print_study_plan  # noqa: F401 - for notebooks
from .profiles import PROFILES, Profile, base_config, get_profile, resolve_data_dir, session_profile  # noqa: F401 - for notebooks
from .results import metric_cells, read_section, write_section
from .sections import ancestors as sections_ancestors
from .sections import (  # noqa: F401 - the notebooks' one import
    brief,
    check_chain,
    check_parameters,
    choose_label,
    chosen_run,
    get,
    legend_of,
    section_configs,
    settings_of,
    training,
)
from .seeds import FINAL_METRICS, Setting, scores_on_test_set, settings_of_runs  # noqa: F401 - for notebooks

CURVES = ("train_loss", "train_acc", "val_loss", "val_acc")  # per-epoch columns a results file keeps per run


def _short_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings in the notebooks as one short line: a notebook's source line or file path says nothing to a reader."""
    return f"note ({category.__name__}): {message}\n"


warnings.formatwarning = _short_warning  # the notebooks import this module first


def choose(section: str, results: dict[str, Setting], choose_by: str | None = None) -> str:
    """The label of the setting `section` hands on, by its rule in lib.studies.sections (e.g. lowest final training
    loss), on the mean over its seeds."""
    return choose_label(section, {label: r.summary for label, r in results.items()}, choose_by)


CRITERIA = {"train_loss": "training loss", "val_acc": "validation accuracy", "val_loss": "validation loss"}


def start_line(section: str, runs: dict[str, RunConfig]) -> str:
    """What a section's runs start from, in words: the section whose choice they take (the brief's `starts_from`)
    or the baseline, what the brief fixes, and the settings they share besides the compared one, e.g. "starts
    from learning_rate's choice, schedule cosine fixed by the brief: mobilenetv2, lr 0.05, cosine schedule"."""
    spec, start = get(section), next(iter(runs.values()))
    source = f"{spec.starts_from}'s choice" if spec.starts_from else "the brief's baseline"
    fixed = "".join(f", {name} {value} fixed by the brief" for name, value in spec.fixed)
    shared = {"arch": start.arch, "lr": f"lr {start.lr:g}", "schedule": f"{start.schedule} schedule",
              "weight_decay": f"weight decay {start.weight_decay:g}",
              "mixup_alpha": f"mixup alpha {start.mixup_alpha:g}" if start.mixup_alpha else None}
    return f"starts from {source}{fixed}: " + ", ".join(text for name, text in shared.items()
                                                          if text and name != spec.compares)


def best_by(section: str, results: dict[str, Setting]) -> dict[str, str]:
    """The best setting's label by each criterion the brief lets `section` choose by (its default first)."""
    return {metric: choose(section, results, metric) for metric in get(section).choose_by}


def report_choice(section: str, results: dict[str, Setting], choose_by: str | None = None) -> str | None:
    """Print the best setting by each criterion the brief lets `section` choose by, each value as the paper prints
    it (lib.core.notation.printed), a tie at that precision said as a tie with what broke it (the unrounded values,
    else the first listed wins), then which criterion hands the choice on, and to which sections; return the
    chosen label (None, said so, where the brief gives the section no choose_by)."""
    criteria = get(section).choose_by
    if not criteria:
        print(f"{section} chooses nothing and hands nothing on (its brief entry has no choose_by)")
        return None
    criterion = choose_by or criteria[0]
    for metric in criteria:
        best, key = choose(section, results, metric), METRICS[metric][0]
        value = {label: r.summary[key] for label, r in results.items()}
        tied = [label for label in value if label != best and printed(key, value[label]) == printed(key, value[best])]
        rule = TIE_EQUAL if all(value[label] == value[best] for label in tied) else TIE_AHEAD
        tie = f" (a tie at this precision with {', '.join(tied)}: {rule})" if tied else ""
        print(f"best by {CRITERIA[metric]}: {best}, {printed(key, value[best])}{tie}")
    chosen = choose(section, results, criterion)
    after = [s.name for s in brief().sections if s.starts_from == section]
    final = "; it is the brief's final model" if brief().final == section else ""
    print(f"handed on, by {CRITERIA[criterion]}: {chosen}, to {', '.join(after) or 'no later section'}{final}")
    return chosen


def legend(section: str, run: Setting | RunResult | RunConfig) -> str:
    """How figures name a run of `section`: its compared value in the paper's notation (e.g. "$\\eta=0.05$")."""
    return legend_of(section, run if isinstance(run, RunConfig) else run.config)


def curves(section: str, results: dict[str, Setting], name: Callable[[str], str] | None = None
           ) -> dict[str, pd.DataFrame]:
    """The per-epoch metrics of a section's settings (means over seeds, with their spread when n > 1), named as
    figures name them (lib.studies.plots.plot_curves): by `name(label)` if given, else by the compared value."""
    named = {name(label) if name else legend(section, result): result.history for label, result in results.items()}
    if len(named) < len(results):  # two settings printed alike: one curve would silently replace the other
        raise ValueError(f"{section}: settings {list(results)} are named alike in figures ({list(named)}); "
                         f"make the compared values differ in their first 6 digits")
    return named


def figure(section: str, name: str) -> str:
    """The file stem of one of a section's figures, "<section>_<name>" (e.g. "lr_schedule_lr"): what
    lib.studies.plots.save writes and the section's prose template includes."""
    return f"{section}_{name}"


def run_section(section: str, runs: dict[str, RunConfig], progress: bool = True, seeds: int = 1
                ) -> dict[str, Setting]:
    """Train (or load) a section's settings, labelled as given, each with `seeds` seeds (lib.studies.seeds): prints the
    plan first, then one progress bar per run or per stack of runs trained together."""
    if not runs:
        raise ValueError(f"{section} has no runs to make")
    check_seeds(seeds)
    if seeds > 1 and len({config.seed for config in runs.values()}) > 1:  # seeds 0..n-1 of seed=0 and 1.. of seed=1
        raise ConfigError(f"{section}: settings that differ in seed share runs when each trains {seeds} seeds (seed, "
                          f"seed + 1, ...): vary seed with seeds=1, or leave seed out of the settings")
    configs = [seed for config in runs.values() for seed in with_seeds(config, seeds)]
    print_section_plan(section, runs, seeds)
    started = time.time()
    with silence_unofficial_warning():  # synthetic data warns once per load; the plan above already says so
        warnings.filterwarnings("ignore", message=".*IProgress not found.*")  # undone on leaving the block too
        results = run_or_load_many(configs, progress=progress)
    print(f"{section}: {count(len(results), 'run')} ready in {format_seconds(time.time() - started)}")
    return settings_of_runs(runs, dict(zip(configs, results, strict=True)), seeds)


def mixup_weight_draws(config: RunConfig, at_least: int) -> tuple[np.ndarray, int]:
    """(draws, steps): the mixing weights m the mixup run `config` draws, one per optimiser step (`steps` in all),
    from the training loop's own function and stream (lib.training.step.sample_mixup_lambda, numpy seeded with the run's
    seed), continued to `at_least` draws when the run draws fewer."""
    steps = math.ceil(n_train_images(config) / config.batch_size) * config.epochs
    rng = np.random.default_rng(config.seed)
    return np.array([sample_mixup_lambda(config.mixup_alpha, rng) for _ in range(max(steps, at_least))]), steps


def mixup_example_weights(n: int) -> np.ndarray:
    """`n` mixing weights m for the mixup examples figure, evenly spread from 0.1 to 0.9 (two decimals), not drawn:
    draws from Beta(0.2, 0.2) lie mostly near 0 or 1, and such mixed images look like one image."""
    return np.round(np.linspace(0.1, 0.9, n), 2)


def mixup_examples(config: RunConfig, weights: np.ndarray, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_i, x_j, m x_i + (1 - m) x_j): len(weights) random pairs of `config`'s training split (drawn with `seed`)
    and their mixtures with the given weights m, as floats in [0, 1], N x H x W x 3: what the network sees of a
    mixed pair before normalisation (and before crops and flips)."""
    data = load_cifar100(config.data_dir)
    train_idx, _ = split_indices(len(data.train_labels), config.val_size, config.split_seed)
    rng = np.random.default_rng(seed)
    first, second = (data.train_images[rng.choice(train_idx, len(weights))] / 255.0 for _ in range(2))
    m = np.asarray(weights, dtype=float)[:, None, None, None]
    return first, second, m * first + (1 - m) * second


# --- tables and export ------------------------------------------------------------------------------------

def data_kind(config: RunConfig) -> str:
    """"cifar100", "synthetic" or "modified": what the figures and results files say about the data."""
    return data_info(config.data_dir).kind


def lr_curve(config: RunConfig) -> tuple[list[float], list[float]]:
    """(epoch as a fraction, learning rate) at every optimiser step of a config, from lib.training.schedule.run_lr (for
    "plateau": the rate before any reduction; those depend on the run's validation losses)."""
    from ..training.schedule import run_lr

    steps_per_epoch = math.ceil(n_train_images(config) / config.batch_size)
    steps = range(config.epochs * steps_per_epoch + 1)
    return [s / steps_per_epoch for s in steps], [run_lr(config, s, steps_per_epoch) for s in steps]


def replace(config: RunConfig, **changes) -> RunConfig:
    """dataclasses.replace, re-exported so notebooks need one import."""
    return dataclasses.replace(config, **changes)


TABLE_COLUMNS = (("train loss", "final_train_loss", 1, "train loss sd"),
                 ("train acc (%)", "final_train_acc", 100, "train acc sd"),
                 ("val loss", "final_val_loss", 1, "val loss sd"), ("val acc (%)", "final_val_acc", 100, "val acc sd"),
                 ("best val acc (%)", "best_val_acc", 100, "best val acc sd"))  # lib.studies.results.Metric
STUDY_COLUMNS = (("train loss", "final_train_loss", 1, None), ("train acc (%)", "final_train_acc", 100, None),
                 ("val loss", "final_val_loss", 1, None), ("val acc (%)", "final_val_acc", 100, None))
STUDY_SD = (("val acc sd (%)", "final_val_acc", 100, None),)  # the spread study_table shows, after the run id


def results_table(results: dict[str, Setting], profile: str) -> pd.DataFrame:
    """Final-epoch losses and accuracies (%) of a section's settings, one row per label; with several seeds the
    means, each with its standard deviation over the seeds ("sd") and n; on the official CIFAR-100 in the full
    profile also what others measured for the same model and settings (lib.studies.reference)."""
    rows = {}
    for label, r in results.items():
        s, n = r.summary, r.summary.get("n_seeds", 1)
        row = {"epochs": s["epochs_done"], **({"seeds": n} if n > 1 else {}), **metric_cells(s, TABLE_COLUMNS, n > 1)}
        rows[label] = {**row, "run": r.run_id + (f" (+{n - 1} seeds)" if n > 1 else "")}
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("setting")
    kind = data_info(next(iter(results.values())).config.data_dir).kind
    if reference.applies(kind, profile):
        table["val acc vs public"] = [reference.compare(r.config.key(), "val_acc", r.summary["final_val_acc"], kind,
                                                        profile) for r in results.values()]
    return table


def training_cost(result: Setting | RunResult) -> dict:
    """Where and how long a setting trained, for the paper's set-up: `device` (seed 0's, lib.running.store.trained_on)
    and `train_seconds`, the wall time of training and validating every epoch of every seed (a run trained in a
    stack counts its share of the stack's time)."""
    runs = result.runs if isinstance(result, Setting) else [result]
    seconds = sum(run.summary.get("total_epoch_seconds", 0.0) for run in runs)
    return {"device": trained_on(runs[0].path), "train_seconds": seconds}


def run_record(label: str, result: Setting | RunResult) -> dict:
    """The per-setting row of a section's results file (lib.studies.results): identity (seed 0's run), final metrics and
    the per-epoch curves (so the paper can describe a curve from the curve itself); with several seeds these are
    means, and `n_seeds`, `seed_run_ids`, `std` (of each final metric), `seed_finals` (each final metric per seed,
    in seed order) and `curves_std` say how they spread."""
    s = result.summary
    record = {
        "run_id": result.run_id,
        "label": label,
        "config": result.config.key(),
        "epochs": s["epochs_done"],
        **{k: s[k] for k in ("final_train_loss", "final_train_acc", "final_val_loss", "final_val_acc",
                               "best_val_acc", "best_val_epoch")},
        "curves": {column: [float(v) for v in result.history[column]] for column in CURVES},
        "n_seeds": s.get("n_seeds", 1),
        "seed_run_ids": s.get("run_ids", [result.run_id]),
        **training_cost(result),
    }
    if record["n_seeds"] > 1:
        record["std"] = {key: s[f"{key}_std"] for key in (*FINAL_METRICS, "best_val_acc")}
        record["seed_finals"] = {key: [float(run.summary[key]) for run in result.runs] for key in FINAL_METRICS}
        record["curves_std"] = {column: [float(v) for v in result.history[f"{column}_std"]] for column in CURVES}
    return record


def export(section: str, profile: str, results: dict[str, Setting], chosen: str | None = None,
           extra: dict | None = None, data_kind: str | None = None, figures: list[str] | None = None) -> None:
    """Write a section's results file (lib.studies.results schema) from its labelled runs: every section exports this
    way.

    `chosen` is the label of the run the section hands on (lib.studies.sections: what the next section starts from);
    the record names it by run id and the setting it decided. `data_kind` is needed only without runs; `figures`
    are the stems of the figures the section drew (`figure`: ["lr_schedule_curves", ...]). Prints the file's path once
    (and returns nothing, so a notebook shows it once)."""
    compares = get(section).compares
    chosen_run = results[chosen] if chosen is not None else None
    kind = data_kind or data_info(next(iter(results.values())).config.data_dir).kind
    decided = {compares: getattr(chosen_run.config, compares)} if chosen_run and compares else {}
    path = write_section(section, profile, kind, [run_record(label, r) for label, r in results.items()],
                         chosen=decided, chosen_run_id=chosen_run.run_id if chosen_run else None, extra=extra,
                         figures=list(figures or ()))
    print(f"wrote {path}")


def split_code() -> str:
    """The exact lines of lib.nets.data.split_indices that partition the training file (for the report)."""
    source = textwrap.dedent(inspect.getsource(split_indices))
    function = ast.parse(source).body[0]
    statements = [s for s in function.body if not isinstance(s, (ast.Expr, ast.If))]  # no docstring, no check
    return "\n".join(ast.get_source_segment(source, s) for s in statements)


def test_accuracy_line(score: dict) -> str:
    """How a notebook prints a test accuracy, from a results file's test score (05's or 07's `extra`): one model's
    as "test accuracy 75.50 % (run <id>, evaluated once)"; a setting's over several seeds as its mean with sd
    and n, "test accuracy 75.50 ± 0.31 % (mean ± sd over 3 seeds, each model evaluated once)"."""
    n, acc = score.get("n_seeds", 1), 100 * score["test_acc"]
    if n == 1:
        return f"test accuracy {acc:.2f} % (run {score['test_run_id']}, evaluated once)"
    return (f"test accuracy {acc:.2f} ± {100 * score['test_acc_std']:.2f} % (mean ± sd over {n} seeds, each model "
            f"evaluated once)")


# --- the whole study's results ----------------------------------------------------------------------------

def read_study(profile: str, sections: tuple[str, ...] | None = None) -> dict[str, dict]:
    """The results files of `sections` (default: the brief's training sections), refusing any written under another
    profile and any that no longer chain (a section re-run with another choice, the ones after it not:
    lib.studies.sections.check_chain)."""
    records = {section: read_section(section, profile=profile) for section in sections or training()}
    other = {section: r["profile"] for section, r in records.items() if r["profile"] != profile}
    if other:
        raise ValueError(f"results of {', '.join(f'{s} ({p})' for s, p in other.items())} are not from profile "
                         f"{profile!r}: run those notebooks with profile={profile!r} first")
    check_chain(records)
    return records


def final_setting(profile: str, data_dir: str | None = None) -> tuple[str, Setting]:
    """(label, setting): the brief's final model, the run its `final` section chose with all its seeds, read from
    the run store (trains nothing); ValueError, one line, naming the notebook to run when a run is missing."""
    final = brief().final
    record = read_study(profile, (*reversed(sections_ancestors(final)), final))[final]
    run = chosen_run(record)
    config = RunConfig(**{**run["config"], "data_dir": resolve_data_dir(profile, data_dir)})
    results = [load_run(seed) for seed in with_seeds(config, run.get("n_seeds", 1))]
    if not all(results):
        raise ValueError(f"the runs of {final}'s choice {run['label']!r} are not in the run store "
                         f"{paths.runs_dir()}: run notebook notebooks/{final}.ipynb first")
    return run["label"], Setting(results)


def test_score(label: str, setting: Setting) -> dict:
    """The final model's one look at the test set (lib.studies.seeds.scores_on_test_set: each seed's model
    evaluated once): what the test step's results file keeps in `extra`."""
    score = scores_on_test_set(setting)
    return {"final_section": brief().final, "final_label": label, "test_run_id": setting.run_id,
            **{key: score[key] for key in ("test_acc", "test_loss", "test_acc_std", "n_seeds", "n_test")}}


def unique_runs(records: dict[str, dict]) -> list[tuple[dict, list[str]]]:
    """Every distinct run of the study once, in study order, with the sections that use it."""
    seen: dict[str, tuple[dict, list[str]]] = {}
    for section, record in records.items():
        for run in record["runs"]:
            seen.setdefault(run["run_id"], (run, []))[1].append(section)
    return list(seen.values())


def study_table(records: dict[str, dict]) -> pd.DataFrame:
    """One row per distinct setting: the sections that use it, the settings the brief's sections compare, then the
    final metrics (accuracies in %; means over seeds, with n and the validation accuracy's standard deviation, when
    there are several seeds); on the official CIFAR-100 in the full profile also what others measured
    (lib.studies.reference)."""
    rows = []
    first = next(iter(records.values()))
    profile, kind = first["profile"], first["data_kind"]
    compared = list(dict.fromkeys(get(section).compares for section in records))
    for run, sections in unique_runs(records):
        config = settings_of(run["config"])
        rows.append({"sections": ", ".join(sections), "label": run["label"],
                     **{name.replace("_", " "): config[name] for name in compared}, "epochs": run["epochs"],
                     **metric_cells(run, STUDY_COLUMNS, several=False), "run_id": run["run_id"]})
        if run.get("n_seeds", 1) > 1:  # a mean over seeds: n and the spread of its validation accuracy
            rows[-1] |= {"seeds": run["n_seeds"], **metric_cells(run["std"], STUDY_SD, several=False)}
        if reference.applies(kind, profile):
            rows[-1]["val acc vs public"] = reference.compare(run["config"], "val_acc", run["final_val_acc"], kind,
                                                              profile)
    return pd.DataFrame(rows)


def export_summary(section: str, profile: str) -> tuple[pd.DataFrame, dict]:
    """Write the summary's results file and `<section>_runs.csv` (in the results folder) from the brief's training
    sections' results: every distinct run once, every choice, and the final model (the brief's `final` section's
    chosen run) with the test step's score of it."""
    records = read_study(profile)
    table = study_table(records)
    csv_path = paths.results_dir(profile) / f"{section}_runs.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv_path)
    runs = [{**run, "sections": sections} for run, sections in unique_runs(records)]
    final = chosen_run(records[brief().final])
    test = read_section(brief().test_step, profile=profile)["extra"]
    if test.get("test_run_id") != final["run_id"]:
        raise ValueError(f"results of {brief().test_step} score run {test.get('test_run_id')!r}, not "
                         f"{brief().final}'s choice {final['run_id']!r}: re-run notebook "
                         f"notebooks/{brief().test_step}.ipynb")
    path = write_section(section, profile, next(iter(records.values()))["data_kind"], runs,
                         chosen=settings_of(final["config"]), chosen_run_id=final["run_id"],
                         extra={**test, "n_runs": len(runs), "table_csv": csv_path.name})
    print(f"wrote {path}")
    return table, read_section(section, profile=profile)

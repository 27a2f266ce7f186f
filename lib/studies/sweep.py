"""Sweeps beyond the brief: a grid (or a random search) over any run-config fields from a base setup.

What it is: `sweep_configs` turns a base setup ("baseline": the brief's; "best": the setup the study chose) and a
grid such as {"lr": [0.1, 0.05], "weight_decay": [5e-4, 1e-4]} into labelled configs, every one checked before
anything trains (a bad field or value fails in one line naming it and what is allowed); `random_configs` draws
`count` configs from ranges instead. They train through the run store like any section (lib.studies.study.run_section:
cached, resumable, stacked where shapes allow, with seeds), and `sweep_table` lists every setting with its
varied fields and final numbers, sorted by validation accuracy. Notebook sweep puts it together.
"""
from __future__ import annotations

import dataclasses
import itertools
import math

import pandas as pd

from ..core import paths
from ..core.config import ConfigError, RunConfig
from .profiles import base_config, get_profile
from .results import metric_cells, read_section
from .sections import ancestors, as_setting, brief, check_chain, chosen_run, settings_of

BASES = ("baseline", "best")
NOT_SWEPT = ("data_dir", "num_classes", "grad_norm_param")  # where the data lives; what the study measures
SWEEPABLE = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in NOT_SWEPT)
INTEGER_FIELDS = {f.name for f in dataclasses.fields(RunConfig) if f.type.startswith("int")}  # "int", "int | None"


def base_setup(base: str, profile: str, data_dir: str | None = None, epochs: int | None = None) -> RunConfig:
    """The config a sweep varies: "baseline" is the brief's (lr 0.05, constant, no decay, no mixup, the brief's
    architecture), "best" the study's final setup (the chosen run of the brief's `final` section, this profile's);
    the profile's short epochs unless `epochs`."""
    if base not in BASES:
        raise ConfigError(f"base must be one of {list(BASES)}, got {base!r}")
    config = base_config(profile, data_dir, brief().arch)
    if base == "best":  # the final choice must still chain to what it started from (not left over from an earlier run)
        final = brief().final
        records = {name: read_section(name, profile=profile) for name in (final, *ancestors(final))}
        check_chain(records)
        config = dataclasses.replace(config, **settings_of(chosen_run(records[final])["config"]))
    return dataclasses.replace(config, epochs=get_profile(profile).short_epochs if epochs is None else epochs)


def _field(name: str, what: str = "grid field") -> str:
    if name not in SWEEPABLE:
        kind = "search" if what.startswith("space") else "sweep"
        raise ConfigError(f"{what} {name!r} is not a run setting; the settings a {kind} can vary are "
                          f"{', '.join(SWEEPABLE)}")
    return name


def with_values(base: RunConfig, values: dict) -> RunConfig:
    """`base` with `values` (field -> value); ConfigError, one line naming the grid point, if they do not fit."""
    try:
        return dataclasses.replace(base, **values)
    except ConfigError as error:
        raise ConfigError(f"grid {', '.join(f'{k}={v!r}' for k, v in values.items())}: {error}") from None


def label(values: dict) -> str:
    """A setting's name in tables: "lr=0.1, weight_decay=0.0005"."""
    return ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                     for name, value in values.items())


def sweep_configs(base: RunConfig, grid: dict[str, list]) -> dict[str, RunConfig]:
    """Every combination of the grid's values (the first field varies slowest), labelled by its values; all
    checked before anything trains."""
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"grid must map run settings to lists of values, e.g. {{'lr': [0.1, 0.05]}}, got {grid!r}")
    for name, values in grid.items():
        _field(name)
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"grid field {name!r} must list at least one value, got {values!r}")
    names = list(grid)
    runs = {}
    for combination in itertools.product(*(grid[name] for name in names)):
        values = {name: as_setting(name, value) for name, value in zip(names, combination, strict=True)}
        runs[label(values)] = with_values(base, values)
    if len(set(runs.values())) < len(runs) or len(runs) < math.prod(len(v) for v in grid.values()):
        raise ConfigError(f"grid lists a value twice: {grid}")
    return runs


def configs(base: RunConfig, grid: dict | None, random_search: dict | None = None) -> dict[str, RunConfig]:
    """A sweep's labelled configs: the grid's, or with `random_search` ({"count": 8, "ranges": {...}, "seed": 0};
    see `random_configs`) that many drawn at random instead."""
    if random_search is None:
        return sweep_configs(base, grid)
    if not isinstance(random_search, dict) or not {"count", "ranges"} <= set(random_search) <= {"count", "ranges",
                                                                                                 "seed"}:
        raise ConfigError(f"random_search must be None or {{'count': N, 'ranges': {{field: range}}, 'seed': 0}}, got "
                          f"{random_search!r}")
    return random_configs(base, random_search["ranges"], random_search["count"], random_search.get("seed", 0))


def random_configs(base: RunConfig, ranges: dict[str, object], count: int, seed: int = 0) -> dict[str, RunConfig]:
    """`count` configs drawn at random (Optuna's RandomSampler, `seed`): each field's range is [low, high]
    (uniform; whole numbers for the integer settings, e.g. batch_size), {"log": [low, high]} (log-uniform, both
    > 0) or {"choice": [values]} (see `parse_ranges`). A draw that repeats an earlier one is kept once."""
    import optuna  # only where a search draws

    if not (isinstance(count, int) and not isinstance(count, bool) and count >= 1):
        raise ConfigError(f"random_search count must be an integer >= 1, got {count!r}")
    draw = parse_ranges(ranges, "random_search")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per study made in memory
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    runs = {}
    for _ in range(count):
        trial = study.ask()
        values = {name: as_setting(name, field_range.suggest(trial)) for name, field_range in draw.items()}
        runs.setdefault(label(values), with_values(base, values))
    return runs


@dataclasses.dataclass(frozen=True)
class Range:
    """One run setting's range in a random search or an Optuna search (lib.studies.search), checked (`parse_ranges`)."""

    name: str  # the RunConfig field
    kind: str  # "uniform", "log" or "choice"
    low: float | int | None = None  # the bounds of "uniform" and "log", whole numbers for INTEGER_FIELDS
    high: float | int | None = None
    choices: tuple = ()  # the values of "choice", as given

    def suggest(self, trial):
        """The value an Optuna trial draws from this range (ints for the integer settings; a choice Optuna cannot
        store, e.g. a list of blocks, is drawn by its text)."""
        if self.kind == "choice":
            shown = [c if c is None or isinstance(c, (bool, int, float, str)) else str(c) for c in self.choices]
            return self.choices[shown.index(trial.suggest_categorical(self.name, shown))]
        if self.name in INTEGER_FIELDS:
            return trial.suggest_int(self.name, self.low, self.high, log=self.kind == "log")
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log")

    def ends(self) -> list:
        """Values the range reaches at its ends (or every choice): checked as configs before anything trains."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]


def parse_ranges(ranges: dict[str, object], what: str) -> dict[str, Range]:
    """Each field's range, checked: [low, high] (uniform), {"log": [low, high]} (both > 0) or {"choice":
    [values]}; integer settings get whole-number bounds. A bad field or range is a ConfigError of one line that
    starts with `what` ("random_search", "space") and names the field and what is allowed."""
    if not isinstance(ranges, dict) or not ranges:
        raise ConfigError(f"{what} ranges must map run settings to ranges, e.g. "
                          f"{{'lr': {{'log': [0.01, 0.5]}}}}, got {ranges!r}")
    return {_field(name, f"{what} field"): _range(name, spec, what) for name, spec in ranges.items()}


def _range(name: str, spec, what: str) -> Range:
    def bad() -> ConfigError:
        return ConfigError(f"{what} range of {name!r} must be [low, high], {{'log': [low, high]}} (both > 0) "
                           f"or {{'choice': [values]}}, got {spec!r}")

    def bounds(pair) -> tuple:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair) and pair[0] <= pair[1]):
            raise bad()
        if name not in INTEGER_FIELDS:
            return float(pair[0]), float(pair[1])  # a float setting, also when papermill hands [0, 1] over
        low, high = math.ceil(pair[0]), math.floor(pair[1])  # a count (epochs, batch size, seed): whole numbers
        if low > high:
            raise bad()
        return low, high

    if isinstance(spec, dict) and set(spec) == {"choice"} and isinstance(spec["choice"], list) and spec["choice"]:
        return Range(name, "choice", choices=tuple(spec["choice"]))
    if isinstance(spec, dict) and set(spec) == {"log"}:
        low, high = bounds(spec["log"])
        if low <= 0:
            raise bad()
        return Range(name, "log", low, high)
    return Range(name, "uniform", *bounds(spec))


def varied_fields(runs: dict[str, RunConfig]) -> list[str]:
    """The config fields that differ between a sweep's runs, in the config's order."""
    return [name for name in SWEEPABLE if len({str(getattr(config, name)) for config in runs.values()}) > 1]


SWEEP_COLUMNS = (("train loss", "final_train_loss", 1, None), ("train acc (%)", "final_train_acc", 100, None),
                 ("val loss", "final_val_loss", 1, None), ("val acc (%)", "final_val_acc", 100, "val acc sd"),
                 ("best val acc (%)", "best_val_acc", 100, None))  # lib.studies.results.Metric


def sweep_table(results: dict, fields: list[str]) -> pd.DataFrame:
    """One row per setting (lib.studies.seeds.Setting): the varied fields, seeds, epochs, final and best training and
    validation loss and accuracy (%; means over seeds, with the validation accuracy's sd when n > 1; the best
    validation accuracy is the mean curve's peak, at "best epoch") and the training wall time, sorted by final
    validation accuracy, best first."""
    rows = []
    for name, result in results.items():
        s, n = result.summary, result.summary.get("n_seeds", 1)
        row = {"setting": name, **{f: _shown(getattr(result.config, f)) for f in fields}, "seeds": n,
               "epochs": s["epochs_done"], **metric_cells(s, SWEEP_COLUMNS, n > 1),
               "best epoch": s["best_val_epoch"],
                "min val loss": float(result.history["val_loss"].min()),
                "wall time (s)": sum(r.summary["total_epoch_seconds"] for r in getattr(result, "runs", [result])),
                "run": result.run_id}
        rows.append(row)
    return pd.DataFrame(rows).sort_values("val acc (%)", ascending=False, kind="stable").reset_index(drop=True)


def _shown(value):
    return "-".join(map(str, value)) if isinstance(value, tuple) else value


def save_figures(table: pd.DataFrame, fields: list[str], data_kind: str, profile: str) -> list[str]:
    """The sweep's figures that apply to it: the final metric against the varied fields (when any vary) and
    parallel coordinates (three or more); each one that does not is removed from the figures folder, so that an
    earlier sweep's never passes for this one's. Returns the stems written (the results file lists them)."""
    from . import plots  # matplotlib: only where figures are drawn

    return plots.save_or_remove(
        {"sweep_metric": (lambda: plots.plot_sweep(table, fields)) if fields else None,
         "sweep_parallel": (lambda: plots.plot_parallel_coordinates(table, fields))
         if len(fields) >= 3 else None}, data_kind, profile)


def export_table(table: pd.DataFrame, profile: str, section: str = "sweep") -> str:
    """Write a table (the sweep's, or another notebook's such as search's) as results/<profile>/<section>.csv;
    returns the file's name."""
    path = paths.results_dir(profile) / f"{section}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    print(f"wrote {path}")
    return path.name

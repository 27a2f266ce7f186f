"""The study, defined once: each section's runs, the earlier choice it starts from, what it hands on and exports.

`STUDY` answers "what will the study train, and in which order?" (the table for people: docs/study.md): sections
02-06, each comparing a few settings from the run the section before it chose, in waves (`waves`): 02 | 03 and 04
| 05 | 06. A section's run equal to the run it starts from is the same run in the store, trained once. The
notebooks, the driver (scripts/run_study.py), the planner and the paper all read this one definition; `EXTRAS`
(08_sweep, 09_baselines, 10_search) run only when named.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.config import ConfigError, RunConfig, parse_blocks, with_seeds
from ..core.notation import blocks_range, power_of_ten
from .profiles import base_config, get_profile
from .results import read_section

SETTINGS = ("lr", "schedule", "weight_decay", "mixup_alpha", "sigmoid_blocks")  # what a chosen run hands on
METRICS = {"train_loss": ("final_train_loss", False), "val_acc": ("final_val_acc", True)}  # name: (key, larger?)
SIGMOID_BLOCKS = tuple(range(4, 11))  # the variant: Sigmoid instead of ReLU in blocks 4..10 of model.layers


def _numbers(name: str) -> Callable[[object], list]:
    def values(given) -> list:
        given = list(given) if isinstance(given, (list, tuple)) else [given]
        if not given:
            raise ConfigError(f"{name} must list at least one value")
        return [as_number(v) for v in given]
    return values


def as_number(value):
    """Floats as floats (papermill hands `1` over as an int, which would hash apart from 1.0); others as given,
    for RunConfig to refuse in one line."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _schedules(given) -> list:
    given = [given] if isinstance(given, str) else list(given)
    if not given:
        raise ConfigError("schedules must list at least one of 'constant', 'cosine'")
    return given


def _with_and_without_mixup(alpha) -> list:
    if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and alpha > 0):
        raise ConfigError(f"mixup_alpha must be a number > 0 (it is compared with no mixup), got {alpha!r}")
    return [0.0, float(alpha)]


def _relu_and_sigmoid(blocks) -> list:
    blocks = parse_blocks(blocks) if isinstance(blocks, str) else tuple(blocks)
    if not blocks:
        raise ConfigError("sigmoid_blocks must name at least one block (it is compared with ReLU everywhere)")
    return [(), blocks]


@dataclass(frozen=True)
class Section:
    name: str
    figures: tuple[str, ...] = ()  # figure names; the files are figures/<section>_<name>.pdf and .png
    compares: str | None = None  # the RunConfig field the section's runs differ in; None: trains nothing
    values_param: str = ""  # the notebook parameter giving the compared values
    default: object = None  # that parameter's value in the brief
    values: Callable[[object], list] = list  # parameter -> the compared values, checked
    label: Callable[[object], str] = str  # a compared value -> the run's label in tables and results
    legend: Callable[[object], str] = str  # a compared value -> its name in figures, in the paper's notation
    epochs: str = "long"  # "short" (the profile's learning-rate epochs) or "long"
    starts_from: str | None = None  # the section whose chosen run's settings this one starts from
    fixed: dict = field(default_factory=dict)  # settings the brief fixes here whatever came before
    choose_by: tuple[str, ...] = ()  # metrics (METRICS) that may pick the run handed on, default first; () = none

    def figure(self, name: str) -> str:
        """The file stem of one of the section's figures (what lib.studies.plots.save writes)."""
        if name not in self.figures:
            raise ValueError(f"{self.name} declares no figure {name!r}; it declares {list(self.figures)}")
        return f"{self.name}_{name}"

    def legend_of(self, config: RunConfig) -> str:
        """How figures name a run of this section: its compared value in the paper's notation."""
        return self.legend(getattr(config, self.compares))

    @property
    def figure_stems(self) -> list[str]:
        return [self.figure(name) for name in self.figures]

    @property
    def config_params(self) -> set[str]:
        """The notebook parameters that decide its configs: the compared values, epochs, and any setting given
        instead of the one inherited."""
        return ({"epochs", "arch", *SETTINGS} - {self.compares}) | {self.values_param} if self.compares else set()


STUDY = (
    Section("01_data", figures=("class_proportions", "augmented_samples")),
    Section("02_learning_rate", ("curves",), "lr", "learning_rates", (0.5, 0.05, 0.01), _numbers("learning_rates"),
            lambda lr: f"lr={lr:g}", lambda lr: f"$\\eta={lr:g}$", epochs="short", choose_by=("train_loss", "val_acc")),
    Section("03_lr_schedule", ("curves", "lr"), "schedule", "schedules", ("constant", "cosine"), _schedules, str, str,
            starts_from="02_learning_rate", choose_by=("val_acc",)),
    Section("04_weight_decay", ("curves",), "weight_decay", "weight_decays", (5e-4, 1e-4),
            _numbers("weight_decays"), lambda wd: f"wd={wd:g}", lambda wd: f"$\\lambda={power_of_ten(wd)}$",
            starts_from="02_learning_rate", fixed={"schedule": "cosine"}, choose_by=("val_acc",)),
    Section("05_mixup", ("beta_pdf", "samples", "curves"), "mixup_alpha", "mixup_alpha", 0.2,
            _with_and_without_mixup, lambda a: f"mixup alpha={a:g}" if a else "no mixup",
            lambda a: f"mixup $\\alpha={a:g}$" if a else "no mixup", starts_from="04_weight_decay",
            choose_by=("val_acc",)),
    Section("06_activation", ("curves", "grad_norm"), "sigmoid_blocks", "sigmoid_blocks", SIGMOID_BLOCKS,
            _relu_and_sigmoid, lambda blocks: "sigmoid" if blocks else "relu",
            lambda blocks: f"Sigmoid in blocks {blocks_range(blocks)}" if blocks else "ReLU", starts_from="05_mixup"),
    Section("07_summary"),
)
SECTIONS = tuple(s.name for s in STUDY)
TRAINING = tuple(s.name for s in STUDY if s.compares)
# Beyond the brief: notebooks that `make all` leaves out, run on their own (`make sweep`, `make baselines`). The
# paper leaves out the sweep; it adds the baselines as a short section when their results exist.
BASELINE_ARCHS = ("small_cnn", "resnet18", "mobilenetv2", "mobilenet")  # 09_baselines' architectures, in order
# The one map of architecture names: arch id -> (how figures and tables name it, how the paper's LaTeX does)
ARCH_NAMES = {"small_cnn": ("small CNN", "small CNN"), "resnet18": ("ResNet-18", "ResNet-18"),
              "resnet34": ("ResNet-34", "ResNet-34"), "mobilenetv2": ("MobileNetV2", "MobileNetV2"),
              "mobilenet": ("MobileNet v1", "MobileNet~(v1)")}


def arch_name(arch: str, tex: bool = False, default: str | None = None) -> str:
    """How figures and tables (or, with `tex`, the paper's LaTeX) name an architecture: 'mobilenet' ->
    'MobileNet v1' ('MobileNet~(v1)'); an id the map lacks -> `default`, else the id itself."""
    names = ARCH_NAMES.get(arch)
    return names[1 if tex else 0] if names else arch if default is None else default


def _archs(given) -> list:
    given = [given] if isinstance(given, str) else list(given)
    if not given:
        raise ConfigError(f"archs must list at least one architecture, e.g. {list(BASELINE_ARCHS)}")
    return given


EXTRAS = (
    Section("08_sweep", figures=("metric", "parallel")),
    Section("09_baselines", ("curves",), "arch", "archs", BASELINE_ARCHS, _archs, str,
            arch_name, epochs="short"),
    Section("10_search", figures=("history", "importance", "parallel")),
)


def _integer(minimum: int) -> Callable[[object], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= minimum


# The notebooks' parameters that are not run settings (those RunConfig and section_configs check): what each
# must be, checked before anything trains (by the notebook and by the driver for every --param).
OTHER_PARAMETERS = {
    "data_dir": (lambda value: value is None or isinstance(value, str), "None or a folder path (a string)"),
    "split_seed": (_integer(0), "an integer >= 0 (the brief: 0)"),
    "n_examples": (_integer(1), "an integer >= 1"),
    "n_augmentations": (_integer(1), "an integer >= 1"),
    "min_lambda_draws": (_integer(0), "an integer >= 0"),
    "seeds": (_integer(1), "an integer >= 1 (runs per setting, seeds 0..seeds-1; the brief: 1)"),
}


def check_parameters(section: str, **params) -> None:
    """Refuse, in one line naming it and what is allowed, a notebook parameter of the wrong type or range that
    is not a run setting (see OTHER_PARAMETERS), and a `choose_by` the section cannot choose by."""
    spec = get(section)
    for name, value in params.items():
        if name == "choose_by":
            if value not in spec.choose_by:
                raise ConfigError(f"choose_by must be one of {list(spec.choose_by)} for {section}, got {value!r}")
        elif name in OTHER_PARAMETERS and not OTHER_PARAMETERS[name][0](value):
            raise ConfigError(f"{name} must be {OTHER_PARAMETERS[name][1]}, got {value!r}")


def get(section: str) -> Section:
    for spec in STUDY + EXTRAS:
        if spec.name == section:
            return spec
    raise ValueError(f"section must be one of {[s.name for s in STUDY + EXTRAS]}, got {section!r}")


def figure_section(stem: str) -> str | None:
    """The section that declares a figure file stem (e.g. "03_lr_schedule_lr"), None if none does."""
    return next((s.name for s in STUDY if stem in s.figure_stems), None)


def waves() -> list[list[str]]:
    """The training sections in the order they can run: each wave needs only the choices of earlier waves."""
    depth: dict[str, int] = {}
    for name in TRAINING:
        source = get(name).starts_from
        depth[name] = 0 if source is None else depth[source] + 1
    return [[n for n in TRAINING if depth[n] == d] for d in range(max(depth.values()) + 1)]


def ancestors(section: str) -> list[str]:
    """The sections whose chosen runs `section` starts from, directly or through others, nearest first (06: 05,
    04, 02)."""
    source = get(section).starts_from
    return [] if source is None else [source, *ancestors(source)]


def decided_upstream(section: str) -> set[str]:
    """The settings a section takes from the chain of chosen runs it starts from."""
    return {name for source in ancestors(section) for name in (get(source).compares, *get(source).fixed)}


def settings_of(config: RunConfig | dict) -> dict:
    """What a run hands on to the section that starts from it (its config or its results-file `config`)."""
    values = dataclasses.asdict(config) if isinstance(config, RunConfig) else config
    return {name: tuple(values[name]) if name == "sigmoid_blocks" else values[name] for name in SETTINGS}


def chosen_run(record: dict) -> dict:
    """The run a results record hands on, found by its `chosen_run_id`."""
    found = [run for run in record["runs"] if run["run_id"] == record.get("chosen_run_id")]
    if not found:
        raise ValueError(f"results of {record['section']} name no chosen run among their runs; re-run notebook "
                         f"notebooks/{record['section']}.ipynb")
    return found[0]


def inherited_settings(section: str, profile: str, upstream: dict[str, dict] | None = None) -> dict:
    """The settings of the chosen run `section` starts from: from `upstream` ({section: settings}) if it holds
    them, else from that section's results file, which must come from the same profile."""
    source = get(section).starts_from
    if source is None:
        return {}
    if upstream and source in upstream:
        return upstream[source]
    record = read_section(source, profile=profile)
    if record["profile"] != profile:
        raise ValueError(f"results/{source}.json was written by profile {record['profile']!r}, not {profile!r}: "
                         f"run notebook {source} with profile={profile!r} first, or pass its settings "
                         f"({', '.join(sorted(decided_upstream(section)))}) as parameters")
    return settings_of(chosen_run(record)["config"])


def section_configs(section: str, profile: str, data_dir: str | None = None, *,
                    upstream: dict[str, dict] | None = None, **params) -> dict[str, RunConfig]:
    """The labelled runs of a training section, in order.

    Each starts from the profile's baseline, takes the settings of the chosen run the section starts from (see
    `inherited_settings`), then what the brief fixes for the section, then `params` — the notebook's parameters:
    the compared values (e.g. `learning_rates`), `epochs`, and any setting to use instead of the inherited one.
    A parameter that is None keeps its default. A results file is needed only for settings not given here.
    """
    spec = get(section)
    if not spec.compares:
        raise ValueError(f"{section} trains nothing; the training sections are {list(TRAINING)}")
    params = {name: value for name, value in params.items() if value is not None}
    unknown = sorted(set(params) - spec.config_params)
    if unknown:
        raise ConfigError(f"{section} takes no parameter {', '.join(unknown)}; it takes "
                          f"{', '.join(sorted(spec.config_params))}")
    check_parameters(section, data_dir=data_dir)
    profile_spec = get_profile(profile)
    base = base_config(profile, data_dir, params.pop("arch", "mobilenetv2"))
    epochs = params.pop("epochs", profile_spec.short_epochs if spec.epochs == "short" else profile_spec.long_epochs)
    values = spec.values(params.pop(spec.values_param, spec.default))
    given = {name: as_number(value) for name, value in params.items()}  # settings given instead of inherited ones
    inherited = {} if decided_upstream(section) <= set(given) else inherited_settings(section, profile, upstream)
    start = dataclasses.replace(base, epochs=epochs, **{**inherited, **spec.fixed, **given})
    runs = {spec.label(value): dataclasses.replace(start, **{spec.compares: value}) for value in values}
    if len(runs) < len(values):
        raise ConfigError(f"{spec.values_param} lists a value twice: {values}")
    return runs


def choose_label(section: str, summaries: dict[str, dict], choose_by: str | None = None) -> str:
    """The label of the run a section hands on, from its runs' final metrics (run summaries or results rows,
    keyed by label); ties go to the first listed."""
    spec = get(section)
    if not spec.choose_by:
        raise ValueError(f"{section} chooses nothing")
    choose_by = choose_by or spec.choose_by[0]
    check_parameters(section, choose_by=choose_by)
    key, larger_is_better = METRICS[choose_by]
    sign = 1.0 if larger_is_better else -1.0

    def merit(label: str) -> float:  # a diverged run (NaN or inf loss) is never chosen over one that trained
        value = summaries[label][key]
        return sign * value if math.isfinite(value) else -math.inf

    return max(summaries, key=merit)


@dataclass(frozen=True)
class PlannedRun:
    section: str
    label: str
    config: RunConfig
    assumes: str | None  # None: the config is certain; else the earliest section whose choice is not known yet


def plan_study(profile: str, data_dir: str | None, params: dict[str, dict], summary_of: Callable,
               train_wave: Callable | None = None, sections: tuple[str, ...] = TRAINING,
               speculate: bool = False) -> list[list[PlannedRun]]:
    """Every run of the study, wave by wave (`waves`), as the notebooks will ask for them.

    `params[section]`: a notebook's parameters (`Section.config_params`, `choose_by`, `seeds`);
    `summary_of(config)`: a finished run's summary or None. A choice whose runs are finished is made as the
    notebook will make it; one not known yet assumes the section's first run, and the runs depending on it say so
    (`assumes`). `train_wave(configs)`, if given, trains each wave before its choices are made (the driver); with
    `speculate`, the second wave's call trains every later wave too, for every choice they could start from
    (`speculative_configs`), so the chain of waves costs one wave of wall time where its runs train at once. The
    choices, and so the planned runs, are the same either way. Sections not in `sections` are not planned; their
    choices come from their results files."""
    known: dict[str, tuple[dict, str | None]] = {}  # section -> (settings it hands on, assumption or None)
    planned = []
    for i, wave in enumerate(waves()):
        if speculate and train_wave is not None and i == 1:
            later = [name for later_wave in waves()[1:] for name in later_wave if name in sections]
            train_wave(speculative_configs(later, known, profile, data_dir, params))
        this_wave = []
        for name in (n for n in wave if n in sections):
            source = get(name).starts_from
            upstream = {source: known[source][0]} if source in known else None
            assumes = known[source][1] if source in known else None
            given = {k: v for k, v in params.get(name, {}).items() if k in get(name).config_params}
            seeds = params.get(name, {}).get("seeds", 1)
            this_wave += [PlannedRun(name, label, seed, assumes) for label, config in
                          section_configs(name, profile, data_dir, upstream=upstream, **given).items()
                          for seed in with_seeds(config, seeds)]
        if train_wave is not None and this_wave:
            train_wave([run.config for run in this_wave])
        for name in (n for n in wave if n in sections and get(n).choose_by):
            runs: dict[str, list[PlannedRun]] = {}  # label -> its seeds' runs
            for run in (run for run in this_wave if run.section == name):
                runs.setdefault(run.label, []).append(run)
            summaries = {label: _mean_summary([summary_of(run.config) for run in seeds])
                         for label, seeds in runs.items()}
            if all(summaries.values()):
                label = choose_label(name, summaries, params.get(name, {}).get("choose_by"))
                assumes = runs[label][0].assumes
            else:
                label = next(iter(runs))
                assumes = runs[label][0].assumes or name
            known[name] = (settings_of(runs[label][0].config), assumes)
        planned.append(this_wave)
    return planned


def speculative_configs(names: list[str], known: dict[str, tuple[dict, str | None]], profile: str,
                        data_dir: str | None, params: dict[str, dict]) -> list[RunConfig]:
    """Every run of the sections `names` (in wave order) for every choice they could start from: a choice in
    `known` (section -> (settings it hands on, assumption)) as made, one not made yet as each of its section's
    settings. Distinct configs, every seed, in order."""
    offers = {name: [settings] for name, (settings, _) in known.items()}  # section -> what it may hand on
    configs: list[RunConfig] = []
    for name in names:
        source = get(name).starts_from
        given = {k: v for k, v in params.get(name, {}).items() if k in get(name).config_params}
        seeds = params.get(name, {}).get("seeds", 1)
        offered = []
        for upstream in offers.get(source, [None]):
            labelled = section_configs(name, profile, data_dir,
                                       upstream={source: upstream} if upstream is not None else None, **given)
            configs += [config for setting in labelled.values() for config in with_seeds(setting, seeds)]
            offered += [settings_of(setting) for setting in labelled.values()]
        if get(name).choose_by:
            offers[name] = [dict(item) for item in dict.fromkeys(tuple(sorted(o.items())) for o in offered)]
    return list(dict.fromkeys(configs))


def _mean_summary(summaries: list[dict | None]) -> dict | None:
    """The metrics a choice reads (METRICS), as means over a setting's seeds; None while a seed is unfinished."""
    if not all(summaries):
        return None
    return {key: sum(s[key] for s in summaries) / len(summaries) for key, _ in METRICS.values()}


def check_chain(records: dict[str, dict]) -> None:
    """Refuse results files that do not chain: a section whose runs do not start from what the section it starts
    from now hands on (re-run after the upstream section changed its choice, or given other settings by hand).
    `records` are the results files by section; one ValueError line says what to re-run."""
    for name in TRAINING:
        spec, source = get(name), get(name).starts_from
        if source is None or name not in records or source not in records:
            continue
        handed_on = settings_of(chosen_run(records[source])["config"])
        for run in records[name]["runs"]:
            started = settings_of(run["config"])
            differ = sorted(key for key in SETTINGS if key != spec.compares and key not in spec.fixed
                            and started[key] != handed_on[key])
            if differ:
                found = ", ".join(f"{key} {started[key]} (not {handed_on[key]})" for key in differ)
                raise ValueError(f"results of {name} do not start from what {source} now chooses: its run "
                                 f"{run['label']!r} has {found}; re-run notebook notebooks/{name}.ipynb and the "
                                 f"ones after it")

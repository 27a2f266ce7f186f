"""The study of the session's brief: each section's runs, the earlier choice it starts from, what it hands on.

The brief (lib.studies.briefs, `briefs/<name>.toml`) is data; this module turns it into runs. `brief()` is the
session's brief: AI6103_BRIEF (make's BRIEF, the notebooks' `brief` parameter; default "mixup"), with its
architecture replaced by AI6103_ARCH (make's ARCH) where given. Its training sections run in waves (`waves`): a
section runs once the section it starts from has chosen. A section's run equal to the run it starts from is the
same run in the store, trained once. The notebooks, the driver (scripts/run_study.py), the planner and the paper
all read this one definition. Notebooks beyond any brief (`EXTRAS`: the sweep, the baselines, the search) run only
when named.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from ..core.config import ConfigError, RunConfig, parse_blocks, with_seeds
from ..core.notation import setting_label, setting_legend
from ..core.settings import current
from .briefs import METRICS, SETTINGS, Brief, Section, load
from .profiles import base_config, get_profile
from .results import read_section

HANDED_ON = tuple(name for name in SETTINGS if name != "seed")  # what a chosen run hands on: its whole recipe
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}
# Notebooks beyond any brief, run when named (`make sweep`, `make baselines`, `make search`); they train from
# their own parameters, compare nothing a brief chains, and the paper adds the baselines when their results exist.
EXTRAS = ("sweep", "baselines", "search")


def brief() -> Brief:
    """The session's brief (AI6103_BRIEF), its architecture replaced by AI6103_ARCH where that is set."""
    chosen = current()
    found = load(chosen.brief)
    return dataclasses.replace(found, arch=chosen.arch) if chosen.arch else found


def get(section: str) -> Section:
    """The brief's entry of `section`; a notebook beyond the brief (EXTRAS) is an entry that trains nothing.
    ValueError, one line, for any other name."""
    if section in EXTRAS:
        return Section(section)
    return brief().section(section)


def names() -> tuple[str, ...]:
    """The brief's sections, in its order."""
    return brief().names


def training() -> tuple[str, ...]:
    """The brief's training sections, in its order."""
    return brief().training


def legend_of(section: str, config: RunConfig) -> str:
    """How figures name a run of `section`: its compared value in the paper's notation (lib.core.notation)."""
    field = get(section).compares
    return setting_legend(field, getattr(config, field)) if field else config.short_name()


def as_setting(name: str, value):
    """A value of run setting `name` as RunConfig holds it, so that equal settings hash alike: an int for a float
    setting as a float (papermill and JSON hand `1` over for 1.0), Sigmoid blocks as a tuple (also typed "4-10");
    anything else as given, for RunConfig to refuse in one line."""
    if name == "sigmoid_blocks" and isinstance(value, (str, list, tuple)):
        return parse_blocks(value) if isinstance(value, str) else tuple(value)
    if isinstance(_DEFAULTS.get(name), float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


# A compared setting -> the notebook parameter that gives its values (`values_parameter`; any other setting's is
# "<setting>s", e.g. dropouts). The Sigmoid blocks are given as the blocks, compared with ReLU everywhere.
VALUES_PARAMETERS = {"lr": "learning_rates", "schedule": "schedules", "weight_decay": "weight_decays",
                     "mixup_alpha": "mixup_alphas", "sigmoid_blocks": "sigmoid_blocks"}


def values_parameter(setting: str) -> str:
    """The name of the notebook parameter that gives a compared setting's values: 'lr' -> 'learning_rates'."""
    return VALUES_PARAMETERS.get(setting, f"{setting}s")


def values_given(setting: str, given) -> list:
    """The compared values a notebook parameter (`values_parameter`) gives: its list as it is (one value typed
    alone as a list of it), for `sigmoid_blocks` ReLU everywhere and Sigmoid in the blocks given."""
    if setting == "sigmoid_blocks":
        return [(), parse_blocks(given) if isinstance(given, str) else tuple(given)]
    return [given] if isinstance(given, str) or not isinstance(given, (list, tuple)) else list(given)


def config_params(section: str) -> set[str]:
    """What `section_configs` takes besides the profile: the compared values (as `values`, or as the notebook's
    parameter, `values_parameter`), `epochs`, and any run setting given instead of the inherited one."""
    spec = get(section)
    if not spec.trains:
        return set()
    return ({"epochs", "values", *HANDED_ON} - {spec.compares}) | {values_parameter(spec.compares)}


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
            if value is not None and value not in spec.choose_by:
                raise ConfigError(f"choose_by must be one of {list(spec.choose_by)} for {section}, got {value!r}")
        elif name in OTHER_PARAMETERS and not OTHER_PARAMETERS[name][0](value):
            raise ConfigError(f"{name} must be {OTHER_PARAMETERS[name][1]}, got {value!r}")


def waves() -> list[list[str]]:
    """The training sections in the order they can run: each wave needs only the choices of earlier waves."""
    depth: dict[str, int] = {}
    for name in training():
        source = get(name).starts_from
        depth[name] = 0 if source is None else depth[source] + 1
    return [[n for n in training() if depth[n] == d] for d in range(max(depth.values(), default=-1) + 1)]


def ancestors(section: str) -> list[str]:
    """The sections whose chosen runs `section` starts from, directly or through others, nearest first."""
    source = get(section).starts_from
    return [] if source is None else [source, *ancestors(source)]


def decided_upstream(section: str) -> set[str]:
    """The settings a section takes from the chain of chosen runs it starts from."""
    return {name for source in ancestors(section) for name in (get(source).compares, *dict(get(source).fixed))}


def settings_of(config: RunConfig | dict) -> dict:
    """What a run hands on to the section that starts from it (its config or its results-file `config`, where a
    run setting at its default may be left out: RunConfig.key)."""
    values = {**_DEFAULTS, **(dataclasses.asdict(config) if isinstance(config, RunConfig) else config)}
    return {name: tuple(values[name]) if isinstance(values[name], list) else values[name] for name in HANDED_ON}


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

    Each starts from the profile's baseline with the brief's architecture, takes the settings of the chosen run
    the section starts from (see `inherited_settings`), then what the brief fixes for the section, then `params`:
    the compared values (`values`, or the notebook's parameter of them, `values_parameter`: `learning_rates`;
    default the brief's), `epochs`, and any run setting to use instead of the inherited one. A parameter that is
    None keeps its default. A results file is needed only for settings not given here.
    """
    spec = get(section)
    if not spec.trains:
        raise ValueError(f"{section} trains nothing; the training sections are {list(training())}")
    params = {name: value for name, value in params.items() if value is not None}
    unknown = sorted(set(params) - config_params(section))
    if unknown:
        raise ConfigError(f"{section} takes no parameter {', '.join(unknown)}; it takes "
                          f"{', '.join(sorted(config_params(section)))}")
    check_parameters(section, data_dir=data_dir)
    profile_spec = get_profile(profile)
    base = base_config(profile, data_dir, params.pop("arch", brief().arch))
    epochs = params.pop("epochs", profile_spec.short_epochs if spec.epochs == "short" else profile_spec.long_epochs)
    named = values_parameter(spec.compares)
    given = values_given(spec.compares, params.pop(named)) if named in params else params.pop("values", spec.values)
    values = [as_setting(spec.compares, value) for value in ([given] if isinstance(given, str) else given)]
    if not values:
        raise ConfigError(f"{section}: the {spec.compares} values to compare must list at least one")
    given = {name: as_setting(name, value) for name, value in params.items()}  # settings given instead of inherited
    inherited = {} if decided_upstream(section) <= set(given) else inherited_settings(section, profile, upstream)
    start = dataclasses.replace(base, epochs=epochs, **{**inherited, **dict(spec.fixed), **given})
    runs = {setting_label(spec.compares, value): dataclasses.replace(start, **{spec.compares: value})
            for value in values}
    if len(runs) < len(values):
        raise ConfigError(f"{section}: the {spec.compares} values to compare: {values} lists a value twice")
    return runs


def choose_label(section: str, summaries: dict[str, dict], choose_by: str | None = None) -> str:
    """The label of the run a section hands on, from its runs' final metrics (run summaries or results rows,
    keyed by label); ties go to the first listed (the brief's order)."""
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


def _given(name: str, params: dict[str, dict]) -> dict:
    """What a section's notebook parameters give `section_configs`."""
    return {k: v for k, v in params.get(name, {}).items() if k in config_params(name)}


def plan_study(profile: str, data_dir: str | None, params: dict[str, dict], summary_of: Callable,
               train_wave: Callable | None = None, sections: tuple[str, ...] | None = None,
               speculate: bool = False) -> list[list[PlannedRun]]:
    """Every run of the study, wave by wave (`waves`), as the notebooks will ask for them.

    `params[section]`: what a section's notebook passes to `section_configs` (`config_params`), its `choose_by`
    and `seeds`; `summary_of(config)`: a finished run's summary or None. A choice whose runs are finished is made
    as the notebook will make it; one not known yet assumes the section's first run, and the runs depending on it
    say so (`assumes`). `train_wave(configs)`, if given, trains each wave before its choices are made (the
    driver); with `speculate`, the second wave's call trains every later wave too, for every choice they could
    start from (`speculative_configs`), so the chain of waves costs one wave of wall time where its runs train at
    once. The choices, and so the planned runs, are the same either way. Sections not in `sections` (default: the
    brief's training sections) are not planned; their choices come from their results files."""
    sections = training() if sections is None else sections
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
            seeds = params.get(name, {}).get("seeds", 1)
            this_wave += [PlannedRun(name, label, seed, assumes) for label, config in
                          section_configs(name, profile, data_dir, upstream=upstream, **_given(name, params)).items()
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


def speculative_configs(names_: list[str], known: dict[str, tuple[dict, str | None]], profile: str,
                        data_dir: str | None, params: dict[str, dict]) -> list[RunConfig]:
    """Every run of the sections `names_` (in wave order) for every choice they could start from: a choice in
    `known` (section -> (settings it hands on, assumption)) as made, one not made yet as each of its section's
    settings. Distinct configs, every seed, in order."""
    offers = {name: [settings] for name, (settings, _) in known.items()}  # section -> what it may hand on
    configs: list[RunConfig] = []
    for name in names_:
        source = get(name).starts_from
        seeds = params.get(name, {}).get("seeds", 1)
        offered = []
        for upstream in offers.get(source, [None]):
            labelled = section_configs(name, profile, data_dir,
                                       upstream={source: upstream} if upstream is not None else None,
                                       **_given(name, params))
            configs += [config for setting in labelled.values() for config in with_seeds(setting, seeds)]
            offered += [settings_of(setting) for setting in labelled.values()]
        if get(name).choose_by:
            offers[name] = [dict(item) for item in dict.fromkeys(tuple(sorted(o.items())) for o in offered)]
    return list(dict.fromkeys(configs))


def _mean_summary(summaries: list[dict | None]) -> dict | None:
    """The metrics a choice reads (METRICS), as means over a setting's seeds; None while a seed is unfinished."""
    if not all(summaries):
        return None
    return {key: sum(s[key] for s in summaries) / len(summaries) for key, _ in METRICS.values()
            if all(key in s for s in summaries)}


def check_chain(records: dict[str, dict]) -> None:
    """Refuse results files that do not chain: a section whose runs do not start from what the section it starts
    from now hands on (re-run after the upstream section changed its choice, or given other settings by hand).
    `records` are the results files by section; one ValueError line says what to re-run."""
    for name in training():
        spec, source = get(name), get(name).starts_from
        if source is None or name not in records or source not in records:
            continue
        handed_on = settings_of(chosen_run(records[source])["config"])
        for run in records[name]["runs"]:
            started = settings_of(run["config"])
            differ = sorted(key for key in HANDED_ON if key != spec.compares and key not in dict(spec.fixed)
                            and started[key] != handed_on[key])
            if differ:
                found = ", ".join(f"{key} {started[key]} (not {handed_on[key]})" for key in differ)
                raise ValueError(f"results of {name} do not start from what {source} now chooses: its run "
                                 f"{run['label']!r} has {found}; re-run notebook notebooks/{name}.ipynb and the "
                                 f"ones after it")

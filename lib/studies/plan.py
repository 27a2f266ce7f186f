"""What will be trained and how long it should take here: a section's plan (notebooks) and the study's (driver).

Read-only: a plan reads the run store's metrics and summary files, never a checkpoint, and changes no file. Runs
already stored cost nothing; the estimate adds the set-up (compilation, autotuning) once per training call, as
measured on this machine before (lib.running.cost), and divides the training by what trainings at once gain here.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from ..core.config import RunConfig, with_seeds
from ..core.notation import count
from ..nets.data import data_info, load_cifar100, silence_unofficial_warning
from ..nets.device import runtime
from ..running.cost import at_once_gain, epoch_seconds, setup_seconds, split_sizes, throughput, trainings_at_once
from ..running.runs import training_groups
from ..running.store import epochs_recorded, finished_recorded, peek_summary, run_path
from ..training.grouping import path_notes
from .profiles import get_profile
from .sections import brief, plan_study
from .sections import waves as section_waves


def format_seconds(seconds: float) -> str:
    """A duration as a plan prints it: '45 s' under 90 s, '12 min' under 90 min, else '1.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@lru_cache(maxsize=4)
def _n_training_file(folder: str, fingerprint: str) -> int:
    return len(load_cifar100(Path(folder).parent, download=False).train_labels)


def n_training_file(config: RunConfig) -> int:
    """Images in the training file of a config's data (50,000 for CIFAR-100) before the split."""
    info = data_info(config.data_dir)
    if info.is_official:
        return 50_000
    with silence_unofficial_warning():
        return _n_training_file(info.folder, info.fingerprint)


def n_train_images(config: RunConfig) -> int:
    """Training images per epoch of a config on its data."""
    return split_sizes(config, n_training_file(config))[0]


def _rows(configs: list[RunConfig], seen: set[Path], waiting: list[bool] | None = None
          ) -> tuple[list[tuple[str, float]], int, dict | None]:
    """(status, seconds) of each config, the training calls its unfinished runs need, and the speed used. A run
    already in `seen` (listed earlier) is "the same run as above"; the configs' runs are added to `seen`. A
    `waiting` config is a guess (its run depends on a choice not made yet): not looked up in the store, so counted
    as trained in full unless it is a run listed before (then the chosen run will be that one's counterpart)."""
    n_total = n_training_file(configs[0])
    waiting = waiting or [False] * len(configs)
    finished = [not guess and finished_recorded(c) for c, guess in zip(configs, waiting, strict=True)]
    unfinished = [c for c, done in zip(configs, finished, strict=True) if run_path(c) not in seen and not done]
    groups = training_groups(unfinished)  # reads no checkpoint
    together = {run_path(c): len(group) for group in groups for c in group}
    rows, speed = [], None
    for config, is_stored, guess in zip(configs, finished, waiting, strict=True):
        path = run_path(config)
        done = 0 if guess else epochs_recorded(path)
        if path in seen:
            rows.append(("the same run as above", 0.0))
        elif is_stored:
            rows.append(("stored" if done >= config.epochs else f"stored (stopped early after {done})", 0.0))
        else:
            stack = together[path]
            speed = throughput(config.arch, config.batch_size, stack)  # images/s summed over a stack: this
            seconds = (config.epochs - done) * epoch_seconds(config, speed, n_total)  # run's share of its time
            status = (f"train {'up to ' if config.early_stopping_patience else ''}{config.epochs - done} epochs"
                      + (f" (resume at {done})" if done else ""))
            rows.append((status + (f", {stack} stacked" if stack > 1 else ""), seconds))
        seen.add(path)
    return rows, len(groups), speed


def _setup(n_calls: int, epochs: int) -> tuple[float, str]:
    rt = runtime()
    setup = setup_seconds(rt.compiles(epochs))
    cuda = rt.device.type == "cuda"
    what = "compilation, cuDNN autotuning, graph capture" if cuda else "data load, model build, first epoch"
    words = (f"set-up ({what}) of {count(n_calls, 'training call')}, as measured here before: "
             f"{format_seconds(n_calls * setup)}" if setup else "set-up: not measured here yet")
    return n_calls * setup, words


def _at_once(configs: list[RunConfig], n_calls: int) -> tuple[float, str]:
    """(the gain in training images/s, the words) of training `n_calls` training calls of `configs` at once here
    (lib.running.cost.trainings_at_once): (1.0, "") for one at a time by choice or where there is one call."""
    at_once = trainings_at_once(configs[0].arch, configs[0].batch_size, n_calls)
    if at_once > 1:
        gain = at_once_gain(configs[0].arch, configs[0].batch_size, at_once)
        return gain, f", {at_once} at once (x{gain:.1f} the images/s of one at a time)"
    if runtime().concurrent is None and n_calls > 1:
        return 1.0, ", one at a time (more at once measured no faster here)"
    return 1.0, ""


def aligned(table: list[list[str]]) -> list[str]:
    """A table's rows as lines whose columns line up however long a cell is (a run name, a label): each column
    as wide as its widest cell, two spaces between columns, the last column not padded."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))] if table else []
    return ["  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)) + "  " + row[-1]
            for row in table]


def print_section_plan(section: str, runs: dict[str, RunConfig], seeds: int = 1) -> float:
    """Print what a section will train (each setting with `seeds` seeds) and how long it should take here;
    returns the estimate in seconds."""
    runs = {label if seeds == 1 else f"{label}, seed {config.seed}": config
            for label, setting in runs.items() for config in with_seeds(setting, seeds)}
    rows, n_calls, speed = _rows(list(runs.values()), set())
    stored = sum(status.startswith("stored") for status, _ in rows)
    print(f"{section}: {count(len(runs), 'run')}, {stored} already stored"
          + (": nothing to train" if stored == len(runs) else ""))
    table = [[label, config.short_name(), status, format_seconds(seconds) if seconds else "-"]
             for label, config, (status, seconds) in zip(runs, runs.values(), rows, strict=True)]
    for line in aligned(table):
        print(f"  {line}")
    total = sum(seconds for _, seconds in rows)
    if total:  # this process trains: it pays the set-up once per training call
        gain, at_once = _at_once(list(runs.values()), n_calls)
        setup, words = _setup(n_calls, next(iter(runs.values())).epochs)
        total = total / gain + setup
        print(f"  {words}{at_once}")
        rt = runtime()
        for note in rt.notes:  # device choices and why (lib.nets.device): precision, memory, features off
            print(f"  {note}")
        for note in dict.fromkeys(n for c in runs.values() for n in path_notes([c], rt)):  # the options' paths
            print(f"  {note}")
        print(f"  estimated time on this machine ({speed['device']}): {format_seconds(total)}")
    return total


def _print_speculation(profile: str, data_dir: str | None, params: dict[str, dict], sections: tuple[str, ...],
                       waves: list[list], seen: set[Path]) -> float:
    """Say how many runs speculation adds to the plan's `waves` and what they cost here; returns those seconds."""
    calls: list[list[RunConfig]] = []
    plan_study(profile, data_dir, params, peek_summary, calls.append, sections, speculate=True)
    planned = {run.config for wave in waves for run in wave}
    extra = list(dict.fromkeys(c for call in calls for c in call if c not in planned))
    later = [name for wave in section_waves()[2:] for name in wave]
    if not extra:
        print("speculation: no run to add (no choice after the first wave's is left to wait for)")
        return 0.0
    rows, n_calls, _ = _rows(extra, seen)
    seconds = sum(s for _, s in rows) + (_setup(n_calls, extra[0].epochs)[0] if any(s for _, s in rows) else 0.0)
    to_train = sum(1 for _, s in rows if s)
    print(f"speculation: {count(len(extra), 'more run')} (every choice {', '.join(later) or 'the later sections'} "
          f"could start from), {to_train} of them to train, in one wave after the first: ~{format_seconds(seconds)} "
          f"more training here; it saves the wait between waves only where a wave's runs train at once "
          f"(AI6103_CONCURRENT=auto or k; by default one at a time, docs/speed.md)")
    return seconds


def _speed_line(config: RunConfig, speed: dict) -> str:
    """The plan's line on this device's training speed for `config`'s runs (unknown where its probe failed)."""
    per_epoch = epoch_seconds(config, speed, n_training_file(config))
    if math.isfinite(per_epoch) and per_epoch > 0:
        return (f"device {speed['device']}: ~{speed['train_images_per_second']:.0f} training images/s -> "
                f"~{format_seconds(per_epoch)} per epoch of {config.epochs}-epoch runs")
    # the throughput probe failed (lib.running.cost): the estimate leaves training time out
    return (f"device {speed['device']}: training speed unknown here (its probe failed), so the estimate counts "
            f"set-up only")


def print_study_plan(profile: str, data_dir: str | None = None, params: dict[str, dict] | None = None,
                     sections: tuple[str, ...] | None = None, speculate: bool = False) -> float:
    """Print every run of the study (lib.studies.sections; `sections`, default the brief's training sections),
    wave by wave, and the estimated training time on this machine (set-up included, stored runs free); returns
    that estimate in seconds. With `speculate`, also the runs speculation adds and what they cost here (included
    in the estimate)."""
    sections = brief().training if sections is None else sections
    waves = [wave for wave in plan_study(profile, data_dir, params or {}, peek_summary, sections=sections) if wave]
    if not waves:
        print("no training section in this run: nothing to train")
        return 0.0
    config = waves[0][0].config
    n_train, n_val = split_sizes(config, n_training_file(config))
    speed = throughput(config.arch, config.batch_size)
    print(f"brief {brief().name}: {brief().about}; profile {profile}: {get_profile(profile).about}")
    print(f"data {config.data_dir} ({data_info(config.data_dir).label}); {n_train} training and {n_val} "
          f"validation images per epoch; {config.arch}, batch {config.batch_size}")
    print(_speed_line(config, speed))
    for note in runtime().notes:  # device choices and why (lib.nets.device): precision, memory, features off
        print(f"  {note}")
    distinct = {run_path(run.config) for wave in waves for run in wave}
    print(f"the study: {count(len(distinct), 'distinct run')} in {len(waves)} waves (a wave's runs train together "
          f"where that pays here)")
    total, seen, stored, waits_on = 0.0, set(), 0, {}
    for i, wave in enumerate(waves, 1):
        print(f"  wave {i}: {', '.join(dict.fromkeys(run.section for run in wave))}")
        waiting = [run.assumes is not None for run in wave]
        rows, n_calls, _ = _rows([run.config for run in wave], seen, waiting)
        # a run that depends on a choice not made yet is not named: its config is not known before the choice
        table = [[run.section, run.label,
                  f"waits on {run.assumes}'s choice" if run.assumes else run.config.short_name(),
                  status, format_seconds(seconds) if seconds else "-"]
                 for run, (status, seconds) in zip(wave, rows, strict=True)]
        for line in aligned(table):
            print(f"    {line}")
        for run, (status, _) in zip(wave, rows, strict=True):
            if run.assumes and status != "the same run as above":
                waits_on.setdefault(run.assumes, set()).add((run.section, run.label, run.config.seed))
        stored += sum(status.startswith("stored") for status, _ in rows)
        training = [run.config for run, (_, seconds) in zip(wave, rows, strict=True) if seconds]
        if training:  # bench/study_record.py reads this line to know the calls a study's log should hold
            gain, at_once = _at_once(training, n_calls)
            print(f"    -> {count(len(training), 'run')} to train in {count(n_calls, 'training call')} of "
                  f"{training[0].epochs} epochs{at_once}")
            setup, _ = _setup(n_calls, training[0].epochs)
            total += setup + sum(seconds for _, seconds in rows) / gain
    if speculate:
        total += _print_speculation(profile, data_dir, params or {}, sections, waves, seen)
    known = len({run_path(run.config) for wave in waves for run in wave if not run.assumes})
    n_waiting = sum(len(runs) for runs in waits_on.values())
    if stored == known and not n_waiting:
        print(f"all {known} runs stored: nothing to train")
        return total
    print(f"{stored} of {count(known, 'run')} known now stored" + "".join(
        f"; {count(len(runs), 'run')} {'waits' if len(runs) == 1 else 'wait'} on {section}'s choice"
        for section, runs in waits_on.items()))
    print(f"estimated training time on this machine, set-up included: ~{format_seconds(total)}"
          + (" (the runs that wait on a choice counted as trained in full)" if n_waiting else ""))
    return total

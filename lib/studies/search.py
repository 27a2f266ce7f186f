"""Searches beyond the brief: an Optuna study over any run settings, whose trials are runs of the run store.

What it is: `make_search` checks a search space (the sweep's ranges: [low, high], {"log": [low, high]},
{"choice": [values]}; lib.studies.sweep.parse_ranges) against a base setup (lib.studies.sweep.base_setup) before
anything trains, and names its study from what decides its trials (profile, base, space, objective, sampler and its
seed), so the same search run again goes on with the same study. `optimize` runs trials until the study holds `trials`
of them (finished or pruned): each trial's config is a RunConfig trained (or loaded, never trained twice) through the
run store, its run id kept as the trial's user attribute "run_id"; with a pruner each epoch's validation metric is
reported and a pruned run stops at that epoch, left unfinished in its folder with a `pruned.json` mark (asking for
its config later trains it on from its checkpoint). The sampler is seeded anew for each trial it draws (the
search's seed plus the trials drawn before), so a search stopped and run again draws what it would have drawn.
The study lives in runs/_search/: <name>.db (SQLite) on one machine; with AI6103_EXECUTOR=slurm <name>.log,
Optuna's journal file, the storage it documents for shared file systems (optuna-dashboard opens either:
`Search.storage`). Several workers may share it (`optimize(..., workers=n)`, AI6103_WORKERS): processes on this
machine, or tasks of one Slurm job array. A trial whose run another worker is training waits for it; a trial whose
worker is gone (its process dead on this machine, its Slurm task ended or requeued) is tried again first, its run
resuming from its last epoch. `trials_table` and `save_figures` are notebook search's results. What it is not:
a second trainer (lib.running.runs trains), a sampler of its own (Optuna's) or a job scheduler (lib.running.executor
submits).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import optuna
import pandas as pd
import submitit
import torch
from optuna.trial import TrialState

from ..core import paths, settings
from ..core.checkpoint import exclusive_lock, process_alive
from ..core.config import ConfigError, RunConfig
from ..running import executor, store
from ..running.runs import run_or_load
from ..running.slurm_queue import ACTIVE, slurm_states
from .sections import as_setting
from .sweep import Range, label, parse_ranges, with_values
from .sweep import export_table as sweep_export_table

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = (None, "median", "hyperband")
OBJECTIVES = {"val_acc": "maximize", "val_loss": "minimize"}  # the run's final validation metric
WAIT_S = 5.0  # between two looks at a run another process is training
optuna.logging.set_verbosity(optuna.logging.WARNING)  # the notebook prints one line per trial itself


@dataclass(frozen=True)
class Search:
    """A checked search: what `optimize` needs to run its study's trials."""

    name: str  # the study's name (and its database file's)
    base: RunConfig  # every trial's config is this one with the space's values
    space: dict[str, Range]
    objective: str = "val_acc"  # OBJECTIVES
    sampler: str = "tpe"  # SAMPLERS
    seed: int = 0  # the sampler's
    pruner: str | None = None  # PRUNERS
    profile: str = "full"  # what the base was made for (lib.studies.sweep.base_setup)
    base_name: str = "baseline"  # lib.studies.sweep.BASES
    journal: bool = False  # the study in Optuna's journal file (a cluster's shared file system), not SQLite

    @property
    def storage(self) -> str:
        """Where the study lives, as optuna-dashboard takes it (`optuna-dashboard <this>`): the SQLite database's
        URL, or the journal file's path."""
        file = search_dir() / self.name
        return f"{file}.log" if self.journal else f"sqlite:///{file}.db"


def search_dir():
    """Where studies live: runs/_search/ in the run store (AI6103_RUNS_DIR), beside the runs they name."""
    return paths.runs_dir() / "_search"


def make_search(base: RunConfig, space: dict, profile: str, base_name: str = "baseline", objective: str = "val_acc",
                sampler: str = "tpe", seed: int = 0, pruner: str | None = None, journal: bool | None = None) -> Search:
    """A search of `space` from `base`, every parameter checked here in one line naming it and what is allowed
    (each range's ends and each choice are made into configs); the grid sampler needs a {"choice": [...]} for
    every field. The study's name comes from the profile, `base_name`, the base run's folder (its settings and
    data), the space, objective, sampler and seed; not from the pruner, which changes no trial's meaning.
    `journal`: the study in a journal file rather than SQLite; None = when AI6103_EXECUTOR is slurm."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {list(OBJECTIVES)}, got {objective!r}")
    if sampler not in SAMPLERS:
        raise ConfigError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
    if pruner not in PRUNERS:
        raise ConfigError(f"pruner must be one of {list(PRUNERS)}, got {pruner!r}")
    if not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
        raise ConfigError(f"sampler_seed must be an integer >= 0, got {seed!r}")
    ranges = parse_ranges(space, "space")
    for field_range in ranges.values():
        for value in field_range.ends():
            with_values(base, {field_range.name: as_setting(field_range.name, value)})
    if sampler == "grid" and any(r.kind != "choice" for r in ranges.values()):
        ranged = [name for name, r in ranges.items() if r.kind != "choice"]
        raise ConfigError(f"sampler 'grid' needs {{'choice': [values]}} for every space field; "
                          f"{', '.join(ranged)} {'is a range' if len(ranged) == 1 else 'are ranges'}")
    identity = {"base": store.run_path(base).name, "space": space, "objective": objective, "sampler": sampler,
                "seed": seed}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]
    journal = settings.current().executor == "slurm" if journal is None else journal
    return Search(f"{profile}-{base_name}-{objective}-{sampler}-{digest}", base, ranges, objective, sampler, seed,
                  pruner, profile, base_name, journal)


def open_study(search: Search) -> optuna.Study:
    """The search's study, made on first use, else loaded from its file (`Search.storage`), its sampler seeded
    for the next draw (`_seed_sampler`)."""
    search_dir().mkdir(parents=True, exist_ok=True)
    pruners = {None: optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
               "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=search.base.epochs)}
    storage = search.storage
    if search.journal:  # NOTE: Optuna's storage for shared file systems (its own lock file: <name>.log.lock)
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
    study = optuna.create_study(storage=storage, study_name=search.name, pruner=pruners[search.pruner](),
                                direction=OBJECTIVES[search.objective], load_if_exists=True)
    _seed_sampler(search, study)
    return study


def _seed_sampler(search: Search, study: optuna.Study) -> None:
    """A new sampler for the study's next trial, seeded with the search's seed plus the trials its sampler drew
    before (a retry's setting is not drawn). So the k-th drawn setting depends on the seed, k and (TPE; grid: which
    are taken) the trials before it, not on when the search was stopped: 3 trials then 5 draw the settings of 5 at
    once, and a search killed mid-trial and run again has the trials of the same search uncut, in order, but for
    the cut one, failed and retried first with its setting. With several workers, which trials have finished when
    one is drawn depends on timing, so TPE's and the grid's later draws may differ between two such searches."""
    seed = search.seed + sum(1 for trial in study.get_trials(deepcopy=False) if "retry_of" not in trial.user_attrs)
    samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed),
                "random": lambda: optuna.samplers.RandomSampler(seed=seed),
                "grid": lambda: optuna.samplers.GridSampler(
                    {name: [_shown(c) for c in r.choices] for name, r in search.space.items()}, seed=seed)}
    study.sampler = samplers[search.sampler]()


def _shown(choice):
    """A choice as Optuna stores it (lib.studies.sweep.Range.suggest): lists and tuples as their text."""
    return choice if choice is None or isinstance(choice, (bool, int, float, str)) else str(choice)


def grid_size(search: Search) -> int:
    """How many settings the grid sampler has (its every combination of choices)."""
    return math.prod(len(r.choices) for r in search.space.values())


# A worker process: a fresh interpreter (a fork would inherit torch's threads, and can hang), given the search.
WORKER = "import pickle, sys; from lib.studies import search; " \
         "search.optimize(pickle.loads(bytes.fromhex(sys.argv[1])), int(sys.argv[2]), progress=False, workers=1)"


def optimize(search: Search, trials: int, progress: bool = True, workers: int | None = None) -> optuna.Study:
    """Run trials until the study holds `trials` finished or pruned ones (or running in another process), so that
    5 after 3 adds two; with the grid sampler at most its grid. A trial whose worker is gone (`_abandoned`) is
    failed and its setting tried again first (its run resumes from its checkpoint). `workers` (default
    AI6103_WORKERS) processes run trials of the study at once: with AI6103_EXECUTOR=local this process and
    workers - 1 more on this machine, the cores split between them; with slurm that many tasks of one Slurm job
    array (lib.running.executor.run_calls), waited for here, where nothing trains: a task that ends without a result
    (killed, cancelled) is submitted again on its own (AI6103_RETRIES), and its new start retries the trial the lost
    one held. A run one worker trains is never trained by another (the run lock: the other waits for it and loads
    it). Returns the study."""
    if not (isinstance(trials, int) and not isinstance(trials, bool) and trials >= 1):
        raise ConfigError(f"trials must be an integer >= 1 (the study's total), got {trials!r}")
    if search.sampler == "grid":
        trials = min(trials, grid_size(search))
    chosen = settings.current()
    workers = chosen.workers if workers is None else workers
    if not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1):
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    open_study(search)  # made once here, before any worker loads it
    if chosen.executor == "slurm":
        executor.run_calls(_slurm_worker, [(search, trials)] * workers, [f"search worker {i}" for i in range(workers)],
                           "the study keeps every trial: the same search again goes on with it", progress)
        return open_study(search)
    threads = torch.get_num_threads()
    others = _start_workers(search, trials, workers - 1) if workers > 1 else []
    try:
        study = _work(search, trials, progress)
    finally:
        failed = [worker.wait() for worker in others]
        torch.set_num_threads(threads)
    if any(failed):
        raise RuntimeError(f"{sum(1 for rc in failed if rc)} of the search's {len(others)} other workers failed "
                           f"(exit status {', '.join(str(rc) for rc in failed if rc)}): run the same search again "
                           f"to go on with its study")
    return study


def _work(search: Search, trials: int, progress: bool, slurm_job: str | None = None) -> optuna.Study:
    """One worker: trials of the study, one at a time in this process, until it holds `trials`. `slurm_job`: the
    Slurm task this process is (recorded in its trials, so other workers see when it has gone)."""
    study = open_study(search)
    while (trial := _next_trial(search, study, trials, slurm_job)) is not None:
        _run_trial(search, study, trial, progress)
    return study


def _slurm_worker(search: Search, trials: int) -> None:
    """A search worker as a Slurm task (lib.running.executor.CallTask): `_work` on its node, as optimize(..., workers=1)
    runs it locally. A requeued task starts here again and retries the trial it was cut off in."""
    _work(search, trials, progress=False, slurm_job=submitit.JobEnvironment().job_id)


def _start_workers(search: Search, trials: int, n: int) -> list[subprocess.Popen]:
    """`n` more processes running `optimize` on the same study, each with its share of the cores (this process
    takes its own share too)."""
    threads = max(1, (os.cpu_count() or 1) // (n + 1))
    torch.set_num_threads(threads)
    env = {**settings.child_environment(AI6103_WORKERS="1"), "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": str(paths.PROJECT_ROOT)}
    return [subprocess.Popen([sys.executable, "-c", WORKER, pickle.dumps(search).hex(), str(trials)],
                             cwd=paths.PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL) for _ in range(n)]


def _next_trial(search: Search, study: optuna.Study, trials: int, slurm_job: str | None) -> optuna.Trial | None:
    """The next trial, or None when the study has `trials` finished, pruned or running; abandoned ones are failed
    and their settings enqueued first. The trial records where it runs: host, pid and `slurm_job`."""
    with exclusive_lock(search_dir() / f"{study.study_name}.lock"):  # one process at a time asks for the next
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        jobs = sorted({t.user_attrs["slurm_job"] for t in running if "slurm_job" in t.user_attrs} - {slurm_job})
        states = slurm_states(jobs) if jobs else {}
        for abandoned in [trial for trial in running if _abandoned(trial, slurm_job, states)]:
            study.tell(abandoned.number, state=TrialState.FAIL)  # its worker is gone: nobody else will
            study.enqueue_trial(abandoned.params, user_attrs={"retry_of": abandoned.number})
        counted = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                           TrialState.RUNNING))
        if len(counted) >= trials:
            return None
        _seed_sampler(search, study)
        trial = study.ask()
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        if slurm_job is not None:
            trial.set_user_attr("slurm_job", slurm_job)
        return trial


def _abandoned(trial: optuna.trial.FrozenTrial, slurm_job: str | None, states: dict[str, str] | None) -> bool:
    """Whether a running trial's worker is gone: its Slurm task has ended (squeue's or sacct's state `states`, or
    neither knows it any more) or is this one started again (requeued); without a Slurm task, its process is dead on
    this host. NOTE: a trial of a process on another host without Slurm, or while Slurm does not answer (`states`
    None), is left running."""
    job = trial.user_attrs.get("slurm_job")
    if job is not None:
        return job == slurm_job or (states is not None and states.get(job) not in ACTIVE)
    pid = trial.user_attrs.get("pid")
    return trial.user_attrs.get("host") == socket.gethostname() and pid is not None and not process_alive(pid)


def trial_config(search: Search, trial: optuna.Trial) -> tuple[dict, RunConfig]:
    """The trial's values of the space (drawn by its sampler) and its config."""
    values = {name: as_setting(name, r.suggest(trial)) for name, r in search.space.items()}
    return values, with_values(search.base, values)


def _run_trial(search: Search, study: optuna.Study, trial: optuna.Trial, progress: bool) -> None:
    """Train (or load) the trial's run, reporting each epoch's metric to it; tell the study how it ended."""
    values, config = trial_config(search, trial)
    trial.set_user_attr("run_id", store.run_path(config).name)
    reporter = _Reporter(search, trial, config)
    try:
        result = _run_or_wait(config, reporter, progress)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
        print(f"trial {trial.number} ({label(values)}): pruned at epoch {reporter.epochs}")
        return
    except BaseException:  # noqa: BLE001 - told as failed whatever stopped it, then raised on
        study.tell(trial, state=TrialState.FAIL)
        raise
    reporter(None, [result.history.to_dict("records")])  # a run loaded, not trained here: its epochs too
    value = float(result.summary[f"final_{search.objective}"])
    study.tell(trial, value if math.isfinite(value) else math.inf)  # a diverged loss: the worst, not a failure
    print(f"trial {trial.number} ({label(values)}): {search.objective} {value:.4f} (run {result.run_id})")


def _run_or_wait(config: RunConfig, reporter, progress: bool) -> store.RunResult:
    """run_or_load, waiting while another process trains the same run (then loading or resuming it)."""
    said = False
    while True:
        try:
            return run_or_load(config, progress, reporter)
        except store.RunLocked:
            if not said:
                print(f"run {store.run_path(config).name} is being trained by another worker: waiting for it")
                said = True
            time.sleep(WAIT_S)


class _Reporter:
    """The per-epoch hook of a trial's training (lib.training.train's on_epoch): reports each new epoch's validation
    metric to the trial and, when the pruner says so before the run's last epoch, marks the run pruned and stops it."""

    def __init__(self, search: Search, trial: optuna.Trial, config: RunConfig):
        self.search, self.trial, self.config = search, trial, config
        self.epochs = 0  # the last epoch reported

    def __call__(self, configs: list[RunConfig] | None, histories: list[list[dict]]) -> None:
        history = histories[0] if configs is None else histories[configs.index(self.config)]
        for row in history[self.epochs:]:
            self.trial.report(float(row[self.search.objective]), step=int(row["epoch"]))
        self.epochs = len(history)
        last = history[-1]
        self.trial.set_user_attr("epochs", self.epochs)
        self.trial.set_user_attr("final_val_acc", float(last["val_acc"]))
        self.trial.set_user_attr("best_val_acc", max(float(row["val_acc"]) for row in history))
        if configs is not None and self.epochs < self.config.epochs and self.trial.should_prune():
            store.mark_pruned(self.config, {"epoch": self.epochs, "study": self.search.name,
                                            "trial": self.trial.number, "storage": self.search.storage})
            raise optuna.TrialPruned(f"pruned at epoch {self.epochs}")


# --- results --------------------------------------------------------------------------------------------------

def trials_table(search: Search, study: optuna.Study) -> pd.DataFrame:
    """One row per finished or pruned trial: its number, state, the space's values, epochs trained, final and best
    validation accuracy (%), the objective's value and the run id; finished trials first, best first."""
    rows = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        shown = {name: trial.params[name] for name in search.space}  # what the sampler drew (text for lists)
        rows.append({"trial": trial.number, "state": trial.state.name.lower(), **shown,
                     "epochs": trial.user_attrs.get("epochs"),
                     "final val acc (%)": 100 * trial.user_attrs.get("final_val_acc", math.nan),
                     "best val acc (%)": 100 * trial.user_attrs.get("best_val_acc", math.nan),
                     search.objective: trial.value if trial.state == TrialState.COMPLETE else math.nan,
                     "run": trial.user_attrs.get("run_id")})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    order = table[search.objective] * (-1 if OBJECTIVES[search.objective] == "maximize" else 1)
    return table.assign(_order=order).sort_values(["_order", "trial"], na_position="last", kind="stable").drop(
        columns="_order").reset_index(drop=True)


def export_table(table: pd.DataFrame, profile: str) -> str:
    """Write the trials table as results/<profile>/search.csv (lib.studies.sweep.export_table); returns the file's
    name."""
    return sweep_export_table(table, profile, "search")


def best_param_line(search: Search, study: optuna.Study) -> str:
    """The command that trains the best finished trial's setting on its own: the sweep notebook of the same
    study (brief and architecture) with a grid of one value per field, from the same base and epochs (the run
    store then loads the trial's run)."""
    values, _ = trial_config(search, optuna.trial.FixedTrial(study.best_trial.params))
    grid = {name: [list(v) if isinstance(v, tuple) else v] for name, v in values.items()}
    session = settings.current()
    arch = f" --arch {session.arch}" if session.arch else ""
    return (f'python scripts/run_study.py --brief {session.brief}{arch} --profile {search.profile} --only sweep '
            f'--param "grid={grid!r}" --param "base=\'{search.base_name}\'" --param epochs={search.base.epochs}')


def save_figures(search: Search, study: optuna.Study, table: pd.DataFrame, data_kind: str, profile: str
                 ) -> list[str]:
    """The search's figures that apply: the optimisation history (always), the parameters' importances (two or
    more fields, two or more finished trials) and parallel coordinates of the finished trials (two or more
    fields); one that does not apply is removed, so an earlier search's never passes for this one's. Returns the
    stems written."""
    from . import plots  # matplotlib: only where figures are drawn

    finished = table[table["state"] == "complete"]
    fields = list(search.space)
    several = len(fields) >= 2 and len(finished) >= 2
    return plots.save_or_remove(
        {"search_history": lambda: plots.plot_search_history(table, search.objective,
                                                                      OBJECTIVES[search.objective] == "maximize"),
         "search_importance": (lambda: plots.plot_importances(
             optuna.importance.get_param_importances(study))) if several else None,
         "search_parallel": (lambda: plots.plot_parallel_coordinates(
             finished, fields, "final val acc (%)", "search: each line a finished trial")) if several else None},
        data_kind, profile)


"""Running the study's runs: load what the run store holds finished, train the rest (stacked where it pays), and
score finished runs once on the test set.

What it is: `run_or_load` / `run_or_load_many` (the entry points notebooks, the executor's tasks and the driver
use), `training_groups` (which unfinished runs train together here; the groups then train one after another or
several at once, lib.training.concurrency), the record of what produced a run
(`environment`), the timing log of each training call, and `evaluate_test`. It sits above the run store
(lib.running.store: folders, locks, files), the cost model (lib.running.cost: how many runs to stack) and the trainer
(lib.training.train). What it is not: where runs execute (lib.running.executor sends them to workers or Slurm, which
call this on their node).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import socket
import subprocess
import time
from pathlib import Path

import torch

from ..core import paths
from ..core.checkpoint import RunStoreError, atomic_write_text, load_state
from ..core.config import RunConfig
from ..core.notation import count
from ..core.settings import current
from ..nets.data import DeviceSplit, check_split, data_info
from ..nets.device import runtime
from ..nets.stack import stack_models
from ..training.concurrency import Stopped, may_train_at_once, run_at_once
from ..training.grouping import group_key, run_names
from ..training.splits import evaluate, load_data, prepare_data
from ..training.train import make_model
from . import cost, store
from .cost import runs_to_stack, timing_log, trainings_at_once
from .store import RunResult, epochs_recorded, run_path


def environment() -> dict:
    """What produced a run: versions, device, code commit, and the speed probes that raised in this process
    (`speed_probes_failed`, lib.running.cost.probes_failed: its choices fell back to one at a time)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": runtime().describe(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "git_commit": commit,
        **({"speed_probes_failed": failed} if (failed := cost.probes_failed()) else {}),
    }


def run_or_load(config: RunConfig, progress: bool = True, on_epoch=None) -> RunResult:
    """Return the finished run of `config`, training (or resuming) it first if needed; `on_epoch`: see
    `run_or_load_many`."""
    return run_or_load_many([config], progress, on_epoch)[0]


def run_or_load_many(configs: list[RunConfig], progress: bool = True, on_epoch=None) -> list[RunResult]:
    """`run_or_load` for several runs (a section's), in order. Unfinished runs that differ only in learning
    rate, schedule or weight decay and stand at the same epoch are trained together as one stacked network
    (lib.training.train.train_together) where that is faster here (`training_groups`); each keeps its own files. The
    training calls (a run or a stack) train several at once in this process where that is faster here
    (lib.training.concurrency; AI6103_CONCURRENT), each to exactly what it gives alone.
    A split that does not fit the data fails before anything trains (lib.core.config.ConfigError).
    `on_epoch(configs, histories)`, if given, is called after every epoch trained here
    (lib.training.train.train_together); an exception it raises stops training there and reaches the caller, the runs
    left unfinished and resumable."""
    for config in configs:
        info = data_info(config.data_dir)
        check_split(info.n_train, config.val_size, config.train_subset, config.val_subset)
    results = {}
    for config in configs:
        path = run_path(config)
        if path not in results:
            finished = store.load_run(config)
            if finished is not None:
                results[path] = finished
    results.update(_train_groups(training_groups([c for c in configs if run_path(c) not in results]), progress,
                                 on_epoch))
    return [results[run_path(config)] for config in configs]


def _train_groups(groups: list[list[RunConfig]], progress: bool, on_epoch=None) -> dict[Path, RunResult]:
    """Train `groups` (`training_groups`), each under its runs' locks (lib.running.store.train_missing): those that may
    (lib.training.concurrency.may_train_at_once), several at once where that pays here
    (lib.running.cost.trainings_at_once, asked for the first one's architecture and batch), then the others one after
    another. The finished runs by folder."""
    rt = runtime()
    together = [group for group in groups if may_train_at_once(group, rt, current().wandb)]
    at_once = trainings_at_once(together[0][0].arch, together[0][0].batch_size, len(together),
                                max(map(len, together))) if len(together) > 1 else 1
    if at_once > 1:
        print(f"training {count(len(together), 'training call')}, {at_once} at once "
              f"({'CUDA streams' if rt.device.type == 'cuda' else 'threads'}; AI6103_CONCURRENT)", flush=True)
    else:
        together = []  # one at a time, in the order asked for
    pool = f"{os.getpid()}-{time.time_ns()}"  # the timing log's name for the trainings of this call

    def job(group: list[RunConfig], n_at_once: int):
        return lambda stop: store.train_missing(
            group, lambda runs, folders: _train(runs, folders, progress, _stopping(stop, on_epoch), n_at_once, pool),
            environment)

    results = {}
    for trained in [*run_at_once([job(group, at_once) for group in together], at_once, rt.device),
                    *run_at_once([job(group, 1) for group in groups if group not in together], 1, rt.device)]:
        results.update(trained)
    return results


def _stopping(stop, on_epoch=None):
    """The epoch hook of a training in a pool (lib.training.concurrency.run_at_once): stops it (Stopped) once the pool's
    `stop` event is set, else calls `on_epoch`."""
    def each_epoch(stack: list[RunConfig], histories: list[list[dict]]) -> None:
        if stop.is_set():
            raise Stopped(f"stopped with {run_names(stack)} at epoch {len(histories[0])}")
        if on_epoch is not None:
            on_epoch(stack, histories)
    return each_epoch


def training_groups(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """How the unfinished runs among `configs` will be trained: lists of runs trained together (lib.nets.stack), in
    order. Runs go together when they may (lib.training.grouping.group_key), stand at the same epoch, and stacking pays
    on this machine (lib.running.cost.runs_to_stack decides how many at most).

    A run's epoch here is `epochs_recorded`'s, which reads no checkpoint and changes no file (no run's lock is held
    here: another process may be saving one); lib.running.store.train_missing splits a group again by the checkpoints'
    epochs once it holds the runs' locks."""
    unique = {run_path(c): c for c in configs}  # the same run asked for twice is trained once
    groups: dict[tuple, list[RunConfig]] = {}
    for path, config in unique.items():
        groups.setdefault((group_key(config), epochs_recorded(path)), []).append(config)
    chunks = []
    for group in groups.values():
        size = runs_to_stack(group[0].arch, group[0].batch_size, len(group))
        chunks += [group[first:first + size] for first in range(0, len(group), size)]
    return chunks


def _train(configs: list[RunConfig], folders: list[Path], progress: bool, on_epoch=None, at_once: int = 1,
           pool: str = "") -> list[list[dict]]:
    """Train runs of one stack in their folders (lib.training.train.train_together), one of `at_once` trainings at the
    same time in this process (of the run_or_load_many call `pool`); log the call's timing."""
    from ..training.train import train_together  # looked up at each call: tests stand in for the trainer

    phases = {}
    histories = train_together(configs, folders, progress=progress, phases=phases, on_epoch=on_epoch,
                               rt=dataclasses.replace(runtime(), concurrent=at_once))
    if phases.get("epoch_seconds"):  # none: every run had already trained its last epoch (an early stop)
        _log_timing(folders, configs[0], phases, at_once, pool)
    return histories


def _log_timing(run_paths: list[Path], config: RunConfig, phases: dict, at_once: int = 1, pool: str = "") -> None:
    """Append the phases of one train_together call to `lib.running.cost.timing_log()`: data load, build (compile,
    capture), every epoch's wall time, and how many trainings of its `pool` ran at once (their times overlap).
    What the GPU benchmark's whole-study estimate is made from."""
    record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "pid": os.getpid(), "device": runtime().describe(),
              "runs": [p.name for p in run_paths], "n_runs": len(run_paths), "epochs": config.epochs,
              **({"at_once": at_once, "pool": pool} if at_once > 1 else {}),
              "arch": config.arch, "mixup_alpha": config.mixup_alpha, "sigmoid_blocks": list(config.sigmoid_blocks),
              **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in phases.items() if k != "epoch_seconds"},
              "epoch_seconds": [round(t, 3) for t in phases.get("epoch_seconds", [])]}
    with contextlib.suppress(OSError), timing_log().open("a") as log:  # a log: never worth stopping a run over
        log.write(json.dumps(record) + "\n")


def evaluate_test(result: RunResult) -> dict:
    """Test-set loss and accuracy of a finished run, computed once and stored as `test.json` in its folder.

    Use it only at the end of the study: the test set never chooses anything.
    """
    test_file = result.path / "test.json"
    if test_file.exists():
        return json.loads(test_file.read_text())
    rt = runtime()
    config = result.config
    state = load_state(result.path)
    last = result.summary.get("epochs_done", config.epochs)
    if state is None or state["epoch"] != last:  # the previous epoch's weights would be a wrong score
        found = "no readable checkpoint" if state is None else f"a readable checkpoint of epoch {state['epoch']} only"
        raise RunStoreError(f"run {result.run_id} has {found}, not its final epoch {last}, to evaluate on "
                            f"the test set; move the folder away to retrain it")
    model = make_model(dataclasses.replace(config, pretrained=""), rt)  # the checkpoint's weights replace them all
    model.load_state_dict(state["model"])
    prepared = prepare_data(config, rt.device)  # for the training split's mean/std
    info = prepared.info
    data = load_data(str(Path(info.folder).parent), info.fingerprint)
    test = DeviceSplit(data.test_images, data.test_labels, prepared.mean, prepared.std, rt.device)
    [(loss, acc)] = evaluate(stack_models([model]), test, rt)
    record = {"test_loss": loss, "test_acc": acc, "n_test": len(test), "data_kind": info.kind}
    atomic_write_text(test_file, json.dumps(record, indent=1))
    return record

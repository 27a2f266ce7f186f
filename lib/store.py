"""The run store: one folder per (config, data) pair, named by a readable name plus the config hash.

A folder holds `config.json`, `env.json`, `metrics.csv` (one row per finished epoch), checkpoints,
and `summary.json` once the run has finished. `run_or_load` trains only what is not finished yet,
resuming from the last complete epoch; a finished run is never overwritten.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import platform
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from . import paths
from .checkpoint import METRICS, PREVIOUS, RunStoreError, atomic_write_text, load_state, remove_stale_temporaries
from .config import RunConfig, config_hash
from .cost import runs_to_stack, timing_log
from .data import check_split, data_info
from .models import weights_fingerprint
from .schedule import early_stop, final_epoch, is_finished

STORE_VERSION = 1  # bump when the files' meaning changes; older runs are then refused, never misread
SUMMARY = "summary.json"


@dataclass
class RunResult:
    config: RunConfig
    path: Path
    history: pd.DataFrame  # one row per epoch (see lib.train.train for the columns)
    summary: dict  # final metrics and identity of the run

    @property
    def run_id(self) -> str:
        return self.path.name


def run_path(config: RunConfig) -> Path:
    info = data_info(config.data_dir)
    digest = config_hash(config, info.fingerprint, weights_fingerprint(config.pretrained))
    return paths.runs_dir() / f"{config.short_name()}-{digest}"


def _read_finished(path: Path, config: RunConfig) -> RunResult | None:
    """The finished run in `path`, or None if it is not finished. A finished run whose files do not read
    is rebuilt from its checkpoint (which holds every epoch's metrics) or, failing that, resumed."""
    summary_file = path / SUMMARY
    if not summary_file.exists():
        return None
    try:
        summary = json.loads(summary_file.read_text())
        history = pd.read_csv(path / METRICS)
        problem = _files_problem(summary, history, config)
    except Exception as e:  # noqa: BLE001 - truncated, empty or garbled files all mean "not usable"
        summary, problem = None, f"{type(e).__name__}: {e}"
    complete = problem is None
    if isinstance(summary, dict) and summary.get("store_version") != STORE_VERSION:
        raise RunStoreError(f"run {path.name} was written by another version of the workbook (store format "
                            f"{summary.get('store_version')}, this one reads {STORE_VERSION}); move {path} away "
                            f"to retrain it")
    if complete:
        return RunResult(config, path, history, summary)
    state = load_state(path)
    if state is not None and is_finished(config, [row["val_loss"] for row in state["history"]]):
        warnings.warn(f"run {path.name}: finished but its result files do not read ({problem}); rebuilt them from "
                      f"the checkpoint", stacklevel=3)
        return _finish(path, config, state["history"], data_info(config.data_dir), started=None)
    summary_file.rename(summary_file.with_name(SUMMARY + ".corrupt"))
    warnings.warn(f"run {path.name}: its result files do not read ({problem}) and the checkpoint is not at the "
                  f"last epoch; resuming from the last good checkpoint", stacklevel=3)
    return None


def _files_problem(summary: dict, history: pd.DataFrame, config: RunConfig) -> str | None:
    """What makes a finished run's summary and metrics unusable (their layout and value ranges), or None.
    Losses are not checked: a diverged run's NaN loss is a result."""
    if not isinstance(summary, dict):
        return f"{SUMMARY} holds no object"
    missing = [c for c in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc") if c not in history.columns]
    if missing:
        return f"{METRICS} lacks the columns {missing}"
    epochs = final_epoch(config, history["val_loss"].tolist())  # fewer than config.epochs after an early stop
    if len(history) != epochs or summary.get("epochs_done") != epochs:
        return f"{len(history)} of {epochs} epochs in {METRICS}"
    if not history[["train_acc", "val_acc"]].apply(lambda column: column.between(0, 1)).all().all():
        return f"{METRICS} holds accuracies outside [0, 1]"
    if not all(isinstance(summary.get(f"final_{k}"), (int, float)) for k in ("train_acc", "val_acc")):
        return f"{SUMMARY} lacks the final accuracies"
    return None


def _finish(path: Path, config: RunConfig, history: list[dict], info, started: float | None) -> RunResult:
    """Write the metrics and, last (it marks the run finished), the summary; then drop the previous epoch's
    checkpoint: a finished run keeps one, its final state (the previous one only guards a save in progress)."""
    frame = pd.DataFrame(history)
    atomic_write_text(path / METRICS, frame.to_csv(index=False))
    last = history[-1]
    summary = {
        "store_version": STORE_VERSION,
        "run_id": path.name,
        "config": config.key(),
        "data_kind": info.kind,
        "data_fingerprint": info.fingerprint,
        "epochs_done": len(history),
        **{f"final_{k}": last[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")},
        "best_val_acc": float(frame["val_acc"].max()),
        "best_val_epoch": int(frame.loc[frame["val_acc"].idxmax(), "epoch"]),
        "train_seconds_this_session": None if started is None else time.time() - started,
        "total_epoch_seconds": float(frame["epoch_seconds"].sum()),
    }
    if config.early_stopping_patience:  # the epoch it stopped after (None: it ran all its epochs), and its best
        summary["early_stopped_epoch"], summary["best_val_loss_epoch"] = early_stop(config, frame["val_loss"].tolist())
    atomic_write_text(path / SUMMARY, json.dumps(summary, indent=1))
    (path / PREVIOUS).unlink(missing_ok=True)
    return RunResult(config, path, frame, summary)


def peek_summary(config: RunConfig) -> dict | None:
    """The summary of a finished run, or None: read-only, for plans (reads no checkpoint, changes no file; a
    finished run whose files do not read counts as unfinished here and is repaired when it is next loaded)."""
    try:
        summary = json.loads((run_path(config) / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    epochs = summary.get("early_stopped_epoch") or config.epochs
    complete = summary.get("store_version") == STORE_VERSION and summary.get("epochs_done") == epochs
    return summary if complete and epochs_recorded(run_path(config)) == epochs else None


def load_run(config: RunConfig) -> RunResult | None:
    """The finished run of this config, or None if it has not finished (or never started)."""
    return _read_finished(run_path(config), config)


class _RunLock:
    """An exclusive lock on a run folder; released by the OS even if the process is killed."""

    def __init__(self, path: Path):
        self.file = path / "lock"

    def __enter__(self):
        self.handle = open(self.file, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            self.handle.close()
            raise RunStoreError(f"run {self.file.parent.name} is being trained by {holder}; wait for it to "
                                f"finish, then run again to load it") from None
        self.handle.truncate(0)
        self.handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        self.handle.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def environment() -> dict:
    """What produced a run: versions, device, code commit."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    from .device import runtime

    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": runtime().describe(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "git_commit": commit,
    }


def run_or_load(config: RunConfig, progress: bool = True) -> RunResult:
    """Return the finished run of `config`, training (or resuming) it first if needed."""
    return run_or_load_many([config], progress)[0]


def run_or_load_many(configs: list[RunConfig], progress: bool = True) -> list[RunResult]:
    """`run_or_load` for several runs (a section's), in order. Unfinished runs that differ only in learning
    rate, schedule or weight decay and stand at the same epoch are trained together as one stacked network
    (lib.train.train_together) where that is faster here (`training_groups`); each keeps its own files."""
    for config in configs:
        info = data_info(config.data_dir)
        check_split(info.n_train, config.val_size, config.train_subset, config.val_subset)
    results = {}
    for config in configs:
        path = run_path(config)
        if path not in results:
            finished = _read_finished(path, config)
            if finished is not None:
                results[path] = finished
    for group in training_groups([c for c in configs if run_path(c) not in results]):
        results.update(_train(group, progress))
    return [results[run_path(config)] for config in configs]


def training_groups(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """How the unfinished runs among `configs` will be trained: lists of runs trained together (lib.stack), in
    order. Runs go together when they may (lib.train.group_key), stand at the same epoch, and stacking pays on
    this machine (lib.cost.runs_to_stack decides how many at most).

    A run's epoch here is `epochs_recorded`'s, which reads no checkpoint and changes no file (no run's lock is held
    here: another process may be saving one); `_train` splits a group again by the checkpoints' epochs once it
    holds the runs' locks."""
    from .train import group_key

    unique = {run_path(c): c for c in configs}  # the same run asked for twice is trained once
    groups: dict[tuple, list[RunConfig]] = {}
    for path, config in unique.items():
        groups.setdefault((group_key(config), epochs_recorded(path)), []).append(config)
    chunks = []
    for group in groups.values():
        size = runs_to_stack(group[0].arch, group[0].batch_size, len(group))
        chunks += [group[first:first + size] for first in range(0, len(group), size)]
    return chunks


def epochs_recorded(path: Path) -> int:
    """Finished epochs in a run folder's per-epoch metrics file, 0 if none: for estimates, read-only (the
    checkpoint, which training resumes from, is read and, if damaged, set aside only when training)."""
    metrics = path / "metrics.csv"
    if not metrics.exists():
        return 0
    lines = [line for line in metrics.read_text().splitlines() if line.strip()]
    return max(len(lines) - 1, 0)  # minus the header


def finished_recorded(config: RunConfig) -> bool:
    """Whether a run's per-epoch metrics file shows it finished (all its epochs, or an early stop): read-only."""
    try:
        losses = pd.read_csv(run_path(config) / METRICS)["val_loss"].tolist()
    except (OSError, ValueError, KeyError):  # no file yet, an empty one (pandas' EmptyDataError), or unreadable:
        return False  # training starts, repairs or resumes it
    return is_finished(config, losses)


def _epochs_done(path: Path) -> int:
    """Epochs in the run's last good checkpoint (what training would resume from); 0 if none."""
    state = load_state(path) if path.exists() else None
    return 0 if state is None else state["epoch"]


def _train(configs: list[RunConfig], progress: bool) -> dict[Path, RunResult]:
    """Train runs of one group under their locks (together if more than one); returns them finished."""
    from .train import train_together

    paths = [run_path(config) for config in configs]
    results = {}
    with contextlib.ExitStack() as locks:
        for path in paths:
            path.mkdir(parents=True, exist_ok=True)
            locks.enter_context(_RunLock(path))
            remove_stale_temporaries(path, locked=True)  # ours now: what an interrupted save left is garbage
        todo = []
        for path, config in zip(paths, configs, strict=True):
            finished = _read_finished(path, config)  # another process may have finished it while we waited
            if finished is not None:
                results[path] = finished
            else:
                todo.append((path, config))
        by_epoch: dict[int, list[tuple[Path, RunConfig]]] = {}
        for path, config in todo:  # another process may also have moved one on: only equal epochs train together
            by_epoch.setdefault(_epochs_done(path), []).append((path, config))
        for runs in by_epoch.values():
            info = data_info(runs[0][1].data_dir)
            for path, config in runs:
                atomic_write_text(path / "config.json", json.dumps(dataclasses.asdict(config), indent=1))
                atomic_write_text(path / "env.json", json.dumps(
                    {**environment(), "data_kind": info.kind, "data_fingerprint": info.fingerprint,
                     "data_folder": info.folder, "runs_together": [p.name for p, _ in runs]}, indent=1))
            started, phases = time.time(), {}
            histories = train_together([c for _, c in runs], [p for p, _ in runs], progress=progress, phases=phases)
            if phases.get("epoch_seconds"):  # none: every run had already trained its last epoch (an early stop)
                _log_timing([p for p, _ in runs], runs[0][1], phases)
            for (path, config), history in zip(runs, histories, strict=True):
                results[path] = _finish(path, config, history, info, started)
    return results


def _log_timing(run_paths: list[Path], config: RunConfig, phases: dict) -> None:
    """Append the phases of one train_together call (lib.train) to `timing_log()`: data load, build (compile,
    capture), every epoch's wall time. What the GPU benchmark's whole-study estimate is made from."""
    from .device import runtime

    record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "pid": os.getpid(), "device": runtime().describe(),
              "runs": [p.name for p in run_paths], "n_runs": len(run_paths), "epochs": config.epochs,
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
    from .data import DeviceSplit
    from .device import runtime
    from .stack import stack_models
    from .train import _load, evaluate, make_model, prepare_data

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
    data = _load(str(Path(info.folder).parent), info.fingerprint)
    test = DeviceSplit(data.test_images, data.test_labels, prepared.mean, prepared.std, rt.device)
    [(loss, acc)] = evaluate(stack_models([model]), test, rt)
    record = {"test_loss": loss, "test_acc": acc, "n_test": len(test), "data_kind": info.kind}
    atomic_write_text(test_file, json.dumps(record, indent=1))
    return record

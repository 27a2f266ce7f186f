"""The run store: one folder per (config, data) pair, named by a readable name plus the config hash.

A folder holds `config.json`, `env.json`, `metrics.csv` (one row per finished epoch), checkpoints,
and `summary.json` once the run has finished; a finished run is never overwritten. This module owns the
folders, their locks (`ProcessLock`, which the study's lock, lib.studies.study_lock, reuses) and the on-disk format:
reading, checking and finishing a run, and the locked life cycle of a training call (`train_missing`, which is
handed the trainer). What it is not: training or deciding what trains together (lib.running.runs, lib.training.train).
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core import paths
from ..core.checkpoint import (
    ENVIRONMENT,
    METRICS,
    PREVIOUS,
    RunStoreError,
    atomic_write_text,
    load_state,
    remove_stale_temporaries,
)
from ..core.config import RunConfig, config_hash
from ..nets.data import data_info
from ..nets.models import weights_fingerprint
from ..training.schedule import early_stop, final_epoch, is_finished

STORE_VERSION = 1  # bump when the files' meaning changes; older runs are then refused, never misread
SUMMARY = "summary.json"
# an unfinished run a search stopped (lib.studies.search): at which epoch, by which study and trial
PRUNED = "pruned.json"


@dataclass
class RunResult:
    """A finished run as the store holds it."""

    config: RunConfig
    path: Path
    history: pd.DataFrame  # one row per epoch (lib.training.train's columns)
    summary: dict  # final metrics and identity of the run

    @property
    def run_id(self) -> str:
        return self.path.name


def run_path(config: RunConfig) -> Path:
    """The run's folder: its short name and the hash of config, data fingerprint and pretrained weights."""
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
    (path / PRUNED).unlink(missing_ok=True)  # trained on to its end: no longer a pruned run
    return RunResult(config, path, frame, summary)


def trained_on(path: Path) -> str | None:
    """The device a run folder's run trained on (its env.json, e.g. "NVIDIA H100 80GB HBM3"), without the speed
    features in brackets; None if unreadable."""
    try:
        described = json.loads((path / ENVIRONMENT).read_text())["device"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return described.split(" (")[0]


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
    """The finished run of this config, or None if it has not finished (or never started). A finished run whose
    result files do not read is rebuilt from its checkpoint, or set aside to be resumed (a warning says which)."""
    return _read_finished(run_path(config), config)


def process_identity() -> str:
    """This process as a lock names it: "pid 123 on host" (unique while it lives, also across a cluster's nodes)."""
    return f"pid {os.getpid()} on {socket.gethostname()}"


def mark_pruned(config: RunConfig, record: dict) -> None:
    """Mark a run stopped before its last epoch by a search (`record`: its epoch and who stopped it); call it
    while training the run (its lock held). The run stays unfinished: asking for it trains it on from its
    checkpoint, and finishing it removes the mark."""
    atomic_write_text(run_path(config) / PRUNED, json.dumps(record, indent=1))


def pruned_record(config: RunConfig) -> dict | None:
    """The mark of a run a search stopped (`mark_pruned`), None if it was not stopped or has finished since."""
    try:
        return json.loads((run_path(config) / PRUNED).read_text())
    except (OSError, ValueError):
        return None


class RunLocked(RunStoreError):
    """Another process holds the run's lock: it is training the run now."""


class ProcessLock:
    """An exclusive lock on `file`, held by one process at a time: the run store's run locks and the study's lock
    (lib.studies.study_lock). The OS releases it when the process ends, even by kill -9, so a dead holder's lock is
    taken over by the next process without anyone clearing it. While held, the file says who holds it: identity
    (process_identity), since when and the command. Entering it when another process holds it raises
    `error`(refusal(that description)); `patience_s` retries that long first (a probe, `lock_holder`, holds the
    file for an instant)."""

    error: type[RunStoreError] = RunStoreError

    def __init__(self, file: Path, refusal: Callable[[str], str], patience_s: float = 0.0):
        self.file = Path(file)
        self.refusal = refusal
        self.patience_s = patience_s

    def __enter__(self):
        self.handle = open(self.file, "a+")
        deadline = time.monotonic() + self.patience_s
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                self.handle.seek(0)
                holder = self.handle.read().strip() or "another process"
                self.handle.close()
                raise self.error(self.refusal(holder)) from None
        self.handle.truncate(0)
        command = " ".join(" ".join(sys.argv).split())[:200]  # one line, however long the command
        self.handle.write(f"{process_identity()} since {time.strftime('%Y-%m-%d %H:%M:%S')} ({command})")
        self.handle.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def lock_holder(file: Path) -> str | None:
    """Who holds the ProcessLock on `file` (its description), or None when no living process does; read-only (a
    missing file is a free lock), and never holds the lock itself for more than an instant."""
    try:
        handle = open(file)
    except (FileNotFoundError, NotADirectoryError):  # no lock file, or no folder for one: nobody holds it
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: probes do not block each other
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


class _RunLock(ProcessLock):
    """The lock of a run folder, held while the run trains; the refusal (RunLocked) names the holder and says to
    wait."""

    error = RunLocked

    def __init__(self, path: Path):
        super().__init__(path / "lock", lambda holder: f"run {path.name} is being trained by {holder}; wait for it "
                                                       f"to finish, then run again to load it")


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




def train_missing(configs: list[RunConfig], train: Callable[[list[RunConfig], list[Path]], list[list[dict]]],
                  environment: Callable[[], dict]) -> dict[Path, RunResult]:
    """Finish `configs`' runs under their folders' locks: a run finished meanwhile (by another process) is read;
    the others are trained by `train(configs, folders)` -> one history each, runs whose checkpoints stand at one
    epoch in one call, after their `config.json` and `env.json` (`environment()` plus the data's identity and
    the runs trained together) are written; each is then finished (metrics, summary). Returns them by folder."""
    paths = [run_path(config) for config in configs]
    results = {}
    with contextlib.ExitStack() as locks:
        for path in paths:
            path.mkdir(parents=True, exist_ok=True)
            locks.enter_context(_RunLock(path))
            remove_stale_temporaries(path, locked=True)  # ours now: what an interrupted save left is garbage
        by_epoch: dict[int, list[tuple[Path, RunConfig]]] = {}
        for path, config in zip(paths, configs, strict=True):
            finished = _read_finished(path, config)  # another process may have finished it while we waited
            if finished is not None:
                results[path] = finished
            else:  # another process may also have moved one on: only equal epochs train together
                by_epoch.setdefault(_epochs_done(path), []).append((path, config))
        for runs in by_epoch.values():
            info = data_info(runs[0][1].data_dir)
            for path, config in runs:
                atomic_write_text(path / "config.json", json.dumps(dataclasses.asdict(config), indent=1))
                atomic_write_text(path / ENVIRONMENT, json.dumps(
                    {**environment(), "data_kind": info.kind, "data_fingerprint": info.fingerprint,
                     "data_folder": info.folder, "runs_together": [p.name for p, _ in runs]}, indent=1))
            started = time.time()
            histories = train([c for _, c in runs], [p for p, _ in runs])
            for (path, config), history in zip(runs, histories, strict=True):
                results[path] = _finish(path, config, history, info, started)
    return results

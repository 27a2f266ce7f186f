"""Crash-safe checkpoints: everything needed to continue a run exactly where its last epoch ended.

Each save writes a temporary file and renames it over the old one (atomic on POSIX), keeping the
previous checkpoint as `checkpoint.prev.pt`; a checkpoint that does not load is set aside and the
previous one is used, so a kill at any instant leaves a loadable state.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import random
import socket
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
METRICS = "metrics.csv"  # one row per finished epoch, rewritten after every epoch for people watching a run
ENVIRONMENT = "env.json"  # what produced the run: versions, device, commit, speed features dropped (lib.running.runs)


class RunStoreError(RuntimeError):
    """A stored run cannot be used as it is; the message says which and what to do (raised by lib.running.store,
    lib.running.runs)."""


class SaveError(RuntimeError):
    """A checkpoint could not be written (e.g. the disk is full); the last good one is kept."""


def atomic_write(path: Path, write) -> None:
    """Call `write(tmp_path)`, fsync, then rename onto `path`; a failure (e.g. a full disk) leaves `path` as it was."""
    tmp = path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")  # a run store may be shared
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path, locked: bool = False) -> None:
    """Delete the temporary files that interrupted `atomic_write`s left in `folder` (a kill or a full disk
    mid-write; a checkpoint's is ~19 MB). With `locked` (the caller holds the folder's run lock, so no other
    process writes there) all of them; otherwise only those whose writing process is gone: of this machine (a
    process id says nothing about another node of a cluster sharing the run store), or nameless garbage."""
    for tmp in Path(folder).glob(".*.tmp-*"):
        host, _, pid = tmp.name.rpartition(".tmp-")[2].rpartition("-")  # a name without a host: host ''
        if locked or not pid.isdigit() or (host in ("", socket.gethostname()) and not process_alive(int(pid))):
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def exclusive_lock(path: Path):
    """Hold an exclusive lock on the file `path` (created if missing) for a short critical section, waiting for
    any process that holds it; the OS releases it if this process dies. (lib.running.store.ProcessLock is the long-held,
    refusing lock of runs and studies.)"""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def process_alive(pid: int) -> bool:
    """Whether a process of this id exists on this machine."""
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user's
    return True


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write` of a text file: `path` holds either its old content or all of `text`, never part of it."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def save(run_dir: Path, model, optimizer, generator, mixup_rng, history, config, scaler=None) -> None:
    """Write the run's state after its last finished epoch; `scaler`, the run's torch.amp.GradScaler, adds its loss
    scale (fp16; a disabled scaler's state is empty)."""
    state = {
        "config": dataclasses.asdict(config),
        "epoch": len(history),
        "history": history,
        # cloned: a model trained stacked with others (lib.nets.stack) holds views into buffers shared by the group
        "model": {name: tensor.clone() for name, tensor in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},  # loss scale and steps since it last changed
        "generator": generator.get_state(),  # data order, crops, flips, mixup partners
        "mixup_rng": mixup_rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "mps_rng": torch.mps.get_rng_state() if torch.backends.mps.is_available() else None,  # dropout on Apple GPUs
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
    }
    current = run_dir / CHECKPOINT
    if current.exists():
        os.replace(current, run_dir / PREVIOUS)
    try:
        atomic_write(current, lambda tmp: torch.save(state, tmp))
        atomic_write_text(run_dir / METRICS, pd.DataFrame(history).to_csv(index=False))
    except (OSError, RuntimeError) as e:  # torch.save's own writer reports a full disk as a RuntimeError
        if (run_dir / PREVIOUS).exists() and not current.exists():
            os.replace(run_dir / PREVIOUS, current)  # a failed save must not cost the last good state
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
        raise SaveError(f"could not save epoch {len(history)} of run {run_dir.name} ({reason}): if the disk is full, "
                        f"free space in {run_dir.parent} and run again: it resumes from the last saved epoch") from None


def load_state(run_dir: Path) -> dict | None:
    """The newest checkpoint that loads, or None; unreadable ones are renamed `*.corrupt` with a warning."""
    for name in (CHECKPOINT, PREVIOUS):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
            if len(state["history"]) != state["epoch"]:
                raise ValueError("history and epoch disagree")
            return state
        except FileNotFoundError:  # moved on by the process that trains it (save: current -> previous): not damaged
            continue
        except Exception as e:  # noqa: BLE001 - truncated, zeroed or foreign files all mean "not usable"
            path.rename(path.with_name(path.name + ".corrupt"))
            warnings.warn(f"{path} is unreadable ({type(e).__name__}); set aside as {path.name}.corrupt, "
                          f"falling back to the previous good state", stacklevel=2)
    return None


def restore(run_dir: Path, model, optimizer, generator, mixup_rng, scaler=None) -> list[dict]:
    """Load the last good checkpoint into the given objects; returns the metrics so far ([] = fresh start).

    A checkpoint without a loss scale (bf16 and fp32 runs save none) leaves `scaler` as it is: fresh."""
    state = load_state(run_dir)
    if state is None:
        return []
    if state["generator"].numel() != generator.get_state().numel():  # a CUDA generator's state is not a CPU one's
        on_cpu = state["generator"].numel() == torch.Generator().get_state().numel()
        raise RunStoreError(f"run {run_dir.name} was started on {'the CPU' if on_cpu else 'a GPU'} (its data-order "
                            f"generator lives on the device): resume it there"
                            f"{' (AI6103_DEVICE=cpu)' if on_cpu else ', with AI6103_DEVICE unset'}")
    print(f"{run_dir.name}: resuming after epoch {state['epoch']} (from its checkpoint)")
    model.load_state_dict(state["model"])
    # This machine's fused/foreach choice, not the saving one's (AI6103_FUSED_SGD changed, another GPU class); set
    # before loading, since torch places Adam's step counters by the loaded groups' `fused` (on the device if fused).
    saved = state["optimizer"]
    saved["param_groups"] = [{**group, "fused": mine.get("fused"), "foreach": mine.get("foreach")}
                             for group, mine in zip(saved["param_groups"], optimizer.param_groups, strict=True)]
    optimizer.load_state_dict(saved)
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])  # a no-op for a disabled scaler (bf16/fp32 now)
    generator.set_state(state["generator"])
    mixup_rng.bit_generator.state = state["mixup_rng"]
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if state.get("mps_rng") is not None and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps_rng"])
    np.random.set_state(state["numpy_rng"])
    random.setstate(state["python_rng"])
    return state["history"]


def note_in_environment(run_dir: Path, key: str, item: dict) -> None:
    """Append `item` to the list `key` of a run folder's env.json (written when its training started); nothing
    when the folder has none (a run without a folder, or one not started through the run store)."""
    path = Path(run_dir) / ENVIRONMENT
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    record.setdefault(key, []).append(item)
    atomic_write_text(path, json.dumps(record, indent=1))

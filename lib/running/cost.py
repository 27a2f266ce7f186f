"""The cost model: how fast this machine trains, how long a run will take, and how many runs to stack.

What it is: training and evaluation images per second of an architecture here (from the finished runs in the
run store trained the same way, else a short benchmark of lib.training.train's own step, measured once per machine and
cached in `runs/throughput.json`: not when other runs trained here meanwhile, measured again when the finished runs
disagree with it by more than 2x), seconds per epoch of a config, and the stacking decision
(`runs_to_stack`). The run store asks it how to group runs; the study's plan asks it for estimates.
A speed probe that raises (`_probed`: stacking, trainings at once, throughput) counts as no gain: the choice falls
back to one at a time (the estimate to none), one line names the feature and the error, and every run this
process trains from then on records it in its env.json (`speed_probes_failed`, lib.running.runs.environment).
What it is not: the plan itself (lib.studies.plan) or the training (lib.training.train).
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import math
import os
import platform
import re
import socket
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core import paths
from ..core.checkpoint import atomic_write_text, process_alive, remove_stale_temporaries
from ..core.config import RunConfig
from ..nets.data import DeviceSplit
from ..nets.device import runtime, synchronize
from ..training.concurrency import run_at_once
from ..training.splits import evaluate, n_train_used
from ..training.step import train_epoch
from ..training.train import fresh_step


def timing_log() -> Path:
    """One JSON line per training call (a run or a stack; lib.running.store writes them): the wall seconds of its
    phases."""
    return paths.runs_dir() / "timings.jsonl"


def setup_seconds(compiled: bool) -> float:
    """Seconds a process's first training call spends here beyond its epochs' usual pace: data load, build (cuDNN
    autotuning, compilation, CUDA-graph capture) and the first epoch's excess over the later ones. Each notebook
    is a new process and pays it once (H100: ~80 s compiled, ~45 s not). The median over the first calls of
    earlier processes on this device in the timing log, compiled or not as asked; 0 where none is logged."""
    try:
        lines = timing_log().read_text().splitlines()
    except OSError:
        return 0.0
    device, seen, excess = runtime().describe(), set(), []
    for line in lines:
        try:
            call = json.loads(line)
            first_in_process, epochs = call["pid"] not in seen, call["epoch_seconds"]
            seen.add(call["pid"])
            if first_in_process and call["device"] == device and call["compiled"] == compiled and len(epochs) > 1:
                excess.append(call["data_seconds"] + call["build_seconds"] + epochs[0] - float(np.median(epochs[1:])))
        except (ValueError, KeyError, TypeError):
            continue  # a line of another format or cut short: the estimate does without it
    return float(np.median(excess)) if excess else 0.0


def _throughput_file() -> Path:
    return paths.runs_dir() / "throughput.json"


def _measured_speed(arch: str, device: str, runs: int, batch_size: int = 128) -> float | None:
    """Median training images/s of the finished runs of `arch` with `batch_size` on `device` in the run store that
    were trained in stacks of `runs` (1 = alone), if any; a stacked run's rate is its share of the stack's time."""
    speeds = []
    for summary in paths.runs_dir().glob("*/summary.json"):
        env, metrics = summary.parent / "env.json", summary.parent / "metrics.csv"
        try:
            config = json.loads(summary.read_text())["config"]
            if json.loads(env.read_text()).get("device") != device or config["arch"] != arch or config.get(
                    "batch_size", 128) != batch_size:
                continue
            last = pd.read_csv(metrics).iloc[-1]
            # a line without runs_together or trainings_at_once: the run trained alone, one training at a time
            if int(last.get("runs_together", 1)) == runs and int(last.get("trainings_at_once", 1)) == 1:
                speeds.append(float(last["train_images_per_second"]))
        except (OSError, ValueError, KeyError):
            continue
    return float(np.median(speeds)) if speeds else None


def throughput(arch: str = "mobilenetv2", batch_size: int = 128, runs: int = 1) -> dict:
    """Training and evaluation images per second of `arch` on this machine's device (with `runs` > 1: of that
    many runs stacked into one network, summed over the runs).

    The median speed of the finished runs of `arch` here trained that way when there are any; otherwise
    `benchmarked`, a short measurement. Where that measurement raises (`_probed`), no speed is known: both rates
    are infinite, so that the plan counts 0 s for the training it cannot estimate (`epoch_seconds`).
    """
    device = runtime().describe()
    measured_train = _measured_speed(arch, device, runs, batch_size)
    unknown = {"train_images_per_second": math.inf, "eval_images_per_second": math.inf, "device": device}
    speed = _probed("throughput", (arch, batch_size, runs),
                    lambda: _benchmarked(arch, batch_size, runs, measured_train), unknown,
                    "the plan's estimates count 0 s for the training it would time")
    if speed is unknown:
        return speed
    if measured_train is None:
        return speed
    ratio = speed["eval_images_per_second"] / speed["train_images_per_second"]  # the benchmark's eval/train ratio
    return {**speed, "train_images_per_second": measured_train, "eval_images_per_second": ratio * measured_train}


DISAGREEMENT = 2.0  # a cached probe this many times slower or faster than the finished runs is measured again
_NOT_CACHED: dict[str, dict] = {}  # probes measured while other training ran here: kept by this process only
_READING_ONLY: list[bool] = []  # non-empty within probes_not_cached()


@contextlib.contextmanager
def probes_not_cached():
    """Within it a speed probe's measurement is kept by this process only, never written to the run store's
    throughput.json (a dry run writes nothing)."""
    _READING_ONLY.append(True)
    try:
        yield
    finally:
        _READING_ONLY.pop()


def benchmarked(arch: str = "mobilenetv2", batch_size: int = 128, runs: int = 1, at_once: int = 1) -> dict:
    """`_benchmark`'s images per second here, measured once per machine, device features and torch version and
    cached in the run store (`runs/throughput.json`); `at_once` > 1: of that many trainings at the same time
    (lib.training.concurrency), summed over them.

    A probe measured while other processes trained runs here (`training_here`) is not cached: this process uses it,
    with a warning, and the next process measures again. A cached probe whose training speed is more than
    DISAGREEMENT times off the finished runs' trained that way (`_measured_speed`) is measured again, once per such
    speed of the finished runs.
    """
    finished = _measured_speed(arch, runtime().describe(), runs, batch_size) if at_once == 1 else None
    return _benchmarked(arch, batch_size, runs, finished, at_once)


def _benchmarked(arch: str, batch_size: int, runs: int, finished: float | None, at_once: int = 1) -> dict:
    """`benchmarked`, given `finished`, the finished runs' median training images/s (None: no such runs)."""
    rt = runtime()
    key = (f"{platform.node()}|{rt.describe()}|{arch}|torch {torch.__version__}" + (f"|{runs} runs" if runs > 1 else "")
           + (f"|batch {batch_size}" if batch_size != 128 else "")  # the brief's batch: the keys cached before
           + (f"|{at_once} at once" if at_once > 1 else ""))
    cache = _throughput_file()
    known = _read_throughput(cache)
    for entry in (known.get(key), _NOT_CACHED.get(key)):
        if entry is not None and not _disagrees(entry, finished):
            return entry
    busy = training_here()
    entry = {**_benchmark(arch, batch_size, rt, runs, at_once), **({"checked_against": finished} if finished else {})}
    busy += [holder for holder in training_here() if holder not in busy]  # and those that started meanwhile
    if _READING_ONLY:
        _NOT_CACHED[key] = entry
        return entry
    if busy:
        warnings.warn(f"the speed probe of {arch} ran while {', '.join(busy)} trained here: "
                      f"{entry['train_images_per_second']:.0f} training images/s, not cached (estimates may be "
                      f"too long); the next process measures again", stacklevel=3)
        _NOT_CACHED[key] = entry
        return entry
    _NOT_CACHED.pop(key, None)
    known[key] = entry
    cache.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(cache.parent)  # of writers that are gone
    atomic_write_text(cache, json.dumps(known, indent=1))  # two notebooks may write it at once
    return entry


def _disagrees(entry: dict, finished: float | None) -> bool:
    """Whether a probe's training speed is more than DISAGREEMENT times off the finished runs' speed `finished`
    (None: no finished runs), and was not already measured again against a speed within that factor of it."""
    def apart(a: float, b: float) -> bool:
        return max(a, b) > DISAGREEMENT * min(a, b)

    checked = entry.get("checked_against")
    return (finished is not None and apart(entry["train_images_per_second"], finished)
            and (checked is None or apart(checked, finished)))


def training_here() -> list[str]:
    """Who trains on this machine now, besides this process: the holders ("pid N on HOST since ...", as
    lib.running.store's run locks record them) of the lock files of unfinished runs in the run store that are live
    processes here. Read from the files, taking no lock (a trainer that found its lock taken would stop)."""
    host, holders = socket.gethostname(), []
    for lock in paths.runs_dir().glob("*/lock"):
        try:
            holder = lock.read_text().strip()
        except OSError:
            continue
        # as lib.running.store.ProcessLock writes it: "pid N on HOST since ... (cmd)"
        found = re.match(r"pid (\d+) on (\S+)", holder)
        if (found and found[2] == host and int(found[1]) != os.getpid() and process_alive(int(found[1]))
                and not (lock.parent / "summary.json").exists() and holder not in holders):
            holders.append(holder)
    return holders


def _read_throughput(cache: Path) -> dict:
    """The cached measurements by key. An unreadable or malformed cache (a cut-off write, a hand edit) is only a
    cache: it is measured anew, with a warning naming it."""
    if not cache.exists():
        return {}
    try:
        known = json.loads(cache.read_text())
        valid = isinstance(known, dict) and all(
            isinstance(entry, dict) and all(isinstance(entry.get(rate), (int, float)) and entry[rate] > 0
                                            for rate in ("train_images_per_second", "eval_images_per_second"))
            for entry in known.values())
    except (OSError, ValueError):
        valid = False
    if not valid:
        warnings.warn(f"{cache} is not a valid throughput cache (images/s by machine); measuring again",
                      stacklevel=3)
        return {}
    return known


STACK_GAIN = 1.1  # a stack is used only if it trains this many times the images/s of one run at a time
STACK_MOST = 3  # the study's sections have at most three runs that may be stacked


def runs_to_stack(arch: str, batch_size: int, n_runs: int) -> int:
    """How many of `n_runs` stackable runs (lib.training.grouping.group_key) to train together on this machine.

    AI6103_STACK=k fixes it (at most k; 1, the default). With `auto`, stacks of 1..3 runs are timed once
    (cached like `throughput`) and the fastest is used if it beats one run at a time by STACK_GAIN, else 1 (also
    where the probe raises: `_probed`).
    Either way no more runs than fit in the device's free memory (lib.nets.device: Runtime.runs_that_fit)."""
    rt = runtime()
    fits = rt.runs_that_fit(batch_size)  # None: not known (the CPU)
    most = n_runs if fits is None else min(n_runs, fits)
    if rt.stack is not None or most == 1:
        return min(rt.stack or 1, most)
    # The benchmark alone, not finished runs' rates: those mix compiled and uncompiled, stacked and alone.
    return _probed("stack", (arch, batch_size), lambda: _fastest(
        lambda k: benchmarked(arch, batch_size, k), min(most, STACK_MOST), STACK_GAIN), 1, "one run at a time")


def _fastest(probe, most: int, gain: float) -> int:
    """The k in 1..`most` whose `probe(k)` (a `benchmarked` dict) trains the most images/s, if that beats k = 1 by
    `gain`, else 1."""
    speeds = {k: probe(k)["train_images_per_second"] for k in range(1, most + 1)}
    best = max(speeds, key=speeds.get)
    return best if speeds[best] >= gain * speeds[1] else 1


PROBE_SWITCHES = {"stack": "AI6103_STACK", "concurrent": "AI6103_CONCURRENT", "throughput": "the plan's estimate"}
_PROBES_FAILED: dict[str, str] = {}  # feature -> "ErrorType: message" of this process's last probe of it that raised
_FAILED_KEYS: set[tuple] = set()  # (feature, key) of the probes that raised in this process: not tried again


def probes_failed() -> dict[str, str]:
    """The speed probes that raised in this process, {feature: "ErrorType: message"} (each run's env.json records
    them as `speed_probes_failed`, beside lib.training.train's `speed_features_dropped`)."""
    return dict(_PROBES_FAILED)


def _probed(feature: str, key: tuple, probe, fallback, instead: str):
    """`probe()`, a speed probe deciding `feature` (PROBE_SWITCHES) for `key` (the architecture, batch, ...); where it
    raises (an out-of-memory at k = 3, a CUDA-graph capture failing beside another training, ...), `fallback`, no
    gain: one line names the feature, the error and what happens `instead`, the failure is recorded for the env.json
    of the runs trained from then on (`probes_failed`), and the same probe is not tried again in this process. A
    speed probe never stops the study; an interrupt (KeyboardInterrupt) still does."""
    if (feature, key) in _FAILED_KEYS:
        return fallback
    try:
        return probe()
    except Exception as error:  # whatever a probe raises counts as no gain
        reason = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
    _FAILED_KEYS.add((feature, key))
    _PROBES_FAILED[feature] = reason
    print(f"speed probe of {feature} ({PROBE_SWITCHES[feature]}) failed ({reason}): {instead}", flush=True)
    gc.collect()  # the failed probe's models and CUDA graphs, before anything else takes the device's memory
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    return fallback


def _benchmark(arch: str, batch_size: int, rt, runs: int = 1, at_once: int = 1) -> dict:
    """Time lib.training.train's own training step (with this runtime's speed features, uncompiled) and evaluation
    on random images: a few steps on a CPU, a few dozen on a GPU (after one warm-up pass each). With `runs`,
    that many runs stacked (lib.nets.stack); with `at_once`, that many such trainings at the same time, each with its
    own model, step and stream (lib.training.concurrency); images per second are then summed over them all. This is what
    a plan's estimate for a device without finished runs rests on: a measurement there, never another device's
    figure."""
    rt = dataclasses.replace(rt, compile=False)  # compilation would dominate a benchmark this short
    on_cpu = rt.device.type == "cpu"
    config = RunConfig(arch=arch, batch_size=min(batch_size, 32) if on_cpu else batch_size)  # CPU: seconds
    configs = [dataclasses.replace(config, lr=config.lr * (k + 1)) for k in range(runs)]
    split = DeviceSplit.random((2 if on_cpu else 30) * config.batch_size, rt.device)
    trainings = [fresh_step(configs, rt, split)[1:4:2] for _ in range(at_once)]  # (net, step) of each

    def timed(fn) -> float:
        """Wall seconds of `fn(net, step)` for every training at once, after one warm-up pass each (allocator,
        cuDNN autotuning)."""
        for net, step in trainings:
            fn(net, step)
        synchronize(rt.device)
        start = time.perf_counter()
        run_at_once([lambda stop, net=net, step=step: fn(net, step) for net, step in trainings], at_once, rt.device)
        synchronize(rt.device)
        return time.perf_counter() - start

    def train(net, step) -> None:
        generator = torch.Generator(device=rt.device).manual_seed(0)  # each training its own: threads share none
        net.train()
        train_epoch(step, split, configs, [(generator, np.random.default_rng(0))], 0, rt)

    images = at_once * runs * len(split)
    train_ips = images / timed(train)
    eval_ips = images / timed(lambda net, step: evaluate(net, split, rt))
    return {"train_images_per_second": train_ips, "eval_images_per_second": eval_ips, "device": rt.describe()}


AT_ONCE_GAIN = 1.1  # trainings at once only if they train this many times the images/s of one at a time
AT_ONCE_MOST = 4  # the most trainings at once a probe times


def trainings_at_once(arch: str, batch_size: int, n_calls: int, largest: int = 1) -> int:
    """How many of `n_calls` training calls (runs, or stacks of up to `largest` runs) of `arch` to train at the same
    time in this process (lib.training.concurrency).

    AI6103_CONCURRENT=k fixes it (at most k; 1, the default). With `auto`, 1..AT_ONCE_MOST at once are
    timed once (cached like `throughput`) and the fastest is used if it beats one at a time by AT_ONCE_GAIN, else 1
    (also where the probe raises: `_probed`).
    Either way no more than fit in the device's free memory (lib.nets.device: Runtime.trainings_that_fit)."""
    rt = runtime()
    fits = rt.trainings_that_fit(batch_size, largest)  # None: not known (the CPU)
    most = n_calls if fits is None else min(n_calls, fits)
    if rt.concurrent is not None or most <= 1:
        return max(1, min(rt.concurrent or 1, most))
    return _probed("concurrent", (arch, batch_size), lambda: _fastest(
        lambda k: benchmarked(arch, batch_size, at_once=k), min(most, AT_ONCE_MOST), AT_ONCE_GAIN), 1,
        "one training at a time")


def at_once_gain(arch: str, batch_size: int, at_once: int) -> float:
    """How many times the training images/s of one training at a time `at_once` trainings give here (1 for one,
    and where the probe raises: the plan's estimate then counts no gain)."""
    if at_once <= 1:
        return 1.0
    return _probed("throughput", (arch, batch_size, f"{at_once} at once"), lambda: (
        benchmarked(arch, batch_size, at_once=at_once)["train_images_per_second"]
        / benchmarked(arch, batch_size)["train_images_per_second"]), 1.0,
        f"the plan's estimate counts no gain for {at_once} trainings at once")


def split_sizes(config: RunConfig, n_total: int = 50_000) -> tuple[int, int]:
    """Images per epoch of training and of validation for a config."""
    n_train, n_val = n_total - config.val_size, config.val_size
    return n_train_used(min(n_train, config.train_subset or n_train), config), min(n_val, config.val_subset or n_val)


def epoch_seconds(config: RunConfig, speed: dict, n_total: int = 50_000) -> float:
    """Estimated seconds of one epoch (training and validation) of `config` at `speed` (a `throughput` dict)."""
    n_train, n_val = split_sizes(config, n_total)
    return n_train / speed["train_images_per_second"] + n_val / speed["eval_images_per_second"]

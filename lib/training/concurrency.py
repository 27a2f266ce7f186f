"""Trainings at once on one device: several runs (or stacks) of a wave train at the same time in this process,
each as itself (its own weights, optimiser, captured CUDA graph), each in its own thread on its own CUDA stream.

Why: one MobileNetV2 at batch 128 on 32x32 images leaves most of a large GPU idle, and stacking runs as grouped
convolutions was slower there (bench/RESULTS.md); kernels of different streams run side by side instead.

What it is: `run_at_once(jobs, at_once, device)` (the pool: up to `at_once` jobs at a time, results in order, the
first error stops the others at their next epoch's end and reaches the caller), `building(device)` (what one
thread at a time does: reading the data, seeding the global generator for the initial weights, compiling and
capturing; released with the work it queued finished), and `may_train_at_once`, which runs take part. How many at
once: one by default on every device (never verified on a GPU yet, docs/speed.md), or measured / fixed by
AI6103_CONCURRENT=auto / k (lib.running.cost.trainings_at_once). On the CPU the same path runs
(threads, no streams): every run trains to exactly its result alone (tests/test_concurrency.py).
What it is not: worker processes (lib.running.executor, AI6103_WORKERS) or stacking (lib.nets.stack).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

import torch

from ..core.config import RunConfig
from ..nets.device import Runtime
from .step import uses_graphs

T = TypeVar("T")
_BUILDING = threading.RLock()  # one thread of this process builds at a time (see `building`)


class Stopped(Exception):
    """Raised at an epoch's end in a job whose pool is stopping (another job failed, or the caller was
    interrupted): the job's runs are left at that epoch, checkpointed and resumable."""


def may_train_at_once(configs: list[RunConfig], rt: Runtime, tracks_wandb: bool) -> bool:
    """Whether these runs (one training call) may train while others train in this process: not with dropout
    (its masks come from the process's global generator, which the others' draws would move), not a compiled
    eager step (torch.compile traces lazily in the first step, outside `building`), not with W&B logging (one
    W&B run per process at a time)."""
    first = configs[0]
    compiled_eager = rt.compiles(first.epochs) and not uses_graphs(configs, rt)
    return not (first.dropout or compiled_eager or tracks_wandb)


@contextlib.contextmanager
def building(device: torch.device):
    """Hold while setting up a training: reading and uploading the data (cached per process), seeding the global
    generator for the initial weights, torch.compile, CUDA-graph capture. One thread at a time; on leaving, the
    work this thread queued is finished, so another thread may read what it made (the cached data)."""
    with _BUILDING:
        yield
        if device.type == "cuda":
            torch.cuda.current_stream(device).synchronize()


@contextlib.contextmanager
def _own_stream(device: torch.device):
    """A CUDA stream of its own for this thread's work (nothing on the CPU); on leaving, that work is finished."""
    if device.type != "cuda":
        yield
        return
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))  # what was queued before (the data) comes first
    with torch.cuda.stream(stream):
        yield
    stream.synchronize()


def run_at_once(jobs: list[Callable[[threading.Event], T]], at_once: int, device: torch.device) -> list[T]:
    """Each job's result, in order; up to `at_once` jobs run at a time, each in a thread with its own CUDA stream
    (in this thread, one after another, when `at_once` is 1). A job is called with the pool's stop event and raises
    `Stopped` at its next epoch's end once it is set: at the first job that fails, and when this thread is
    interrupted (KeyboardInterrupt, SIGTERM's exception); the pool then waits for the running jobs to stop and
    raises that first error."""
    stop = threading.Event()
    if at_once <= 1 or len(jobs) <= 1:
        return [job(stop) for job in jobs]

    def in_own_stream(job):
        with _own_stream(device):
            return job(stop)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="ai6103-training")
    futures = [pool.submit(in_own_stream, job) for job in jobs]
    try:
        done, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            raise failed.exception()
        return [future.result() for future in futures]
    finally:
        stop.set()  # a no-op once every job has finished
        pool.shutdown(wait=True, cancel_futures=True)

"""What Slurm's queue says of jobs, and the driver's record of the jobs it submitted.

What it is: `slurm_states(job_ids)` and `ACTIVE`, read by lib.running.executor (its tasks) and lib.studies.search
(whether a trial's worker is gone); `jobs_by_comment` finds jobs by the comment they were submitted with (a
driver stopped between sbatch and its record finds them so); `pending_record`, runs/_slurm/pending.json (which job
trains which run) under its lock. What it is not: submitting or waiting for jobs (lib.running.executor).
"""
from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from ..core.checkpoint import atomic_write_text

# Slurm states of a job that will still run or report (squeue's and sacct's names); any other is an end.
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING",
          "SUSPENDED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"}
SLURM_COMMAND_S = 60  # longest wait for one squeue/sacct answer


def slurm_states(job_ids: list[str]) -> dict[str, str] | None:
    """Each job's Slurm state by id ("12_3" for a task of array 12): from squeue (which keeps ended jobs for the
    cluster's MinJobAge, 5 minutes by default), else sacct (where the cluster keeps accounting); ids neither knows
    are left out. None when Slurm cannot be asked now.

    NOTE: not submitit's own watcher: it asks sacct alone, and without accounting (slurmdbd) a job that ended
    without a result (cancelled, killed) would read UNKNOWN, i.e. still running, forever."""
    arrays = sorted({job.split("_")[0] for job in job_ids})
    listed = _slurm_command(["squeue", "-h", "-r", "--states=all", "-o", "%i|%T", "-j", ",".join(arrays)])
    if listed is None:
        return None
    states = _parse_states(listed)
    missing = [job for job in job_ids if job not in states]
    if missing:
        accounted = _slurm_command(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(missing)])
        states.update(_parse_states(accounted or ""))
    return states


def jobs_by_comment(comments: set[str]) -> dict[str, str] | None:
    """The job id (of the array, for a job array) that each of `comments` was given to with sbatch --comment, for
    this user's jobs that squeue still knows (ended ones for MinJobAge); comments it knows no job of are left out.
    None when Slurm cannot be asked now. NOTE: a job that ended longer ago than that is not found; it holds no
    run any more, so submitting its runs again is safe."""
    listed = _slurm_command(["squeue", "-h", "--states=all", "-u", getpass.getuser(), "-o", "%F|%k"])
    if listed is None:
        return None
    found = {}
    for line in listed.splitlines():
        job, sep, comment = line.strip().partition("|")
        if sep and comment.strip() in comments:
            found[comment.strip()] = job.strip()
    return found


class Pending(dict):
    """pending.json's entries by run name: {"job", "log", "submitted", "retries"} once sbatch has answered;
    {"token", "index", "of", "submitted", "retries"} while it is asked (the job array's comment, this run's task in it
    and the array's size). `save()` writes it now (whole or not at all)."""

    def __init__(self, file: Path, entries: dict):
        super().__init__(entries)
        self.file = file

    def save(self) -> None:
        atomic_write_text(self.file, json.dumps(self, indent=1))


@contextlib.contextmanager
def pending_record(folder: Path, finished: Callable[[str], bool]):
    """`folder`/pending.json as a Pending, under a lock (so two drivers never submit the same runs at once), saved
    on leaving, also after an error; entries of runs `finished` says are finished are dropped."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "pending.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held for seconds (one sbatch) by another driver at most
        file = folder / "pending.json"
        try:
            entries = json.loads(file.read_text())
        except (OSError, ValueError):
            entries = {}
        pending = Pending(file, {name: entry for name, entry in entries.items() if not finished(name)})
        try:
            yield pending
        finally:
            pending.save()


def _slurm_command(command: list[str]) -> str | None:
    """A Slurm command's output; "" when it knows none of the jobs asked for, None when it fails otherwise."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=SLURM_COMMAND_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode == 0:
        return done.stdout
    return "" if "Invalid job id" in done.stderr else None


def _parse_states(text: str) -> dict[str, str]:
    """"12_0|RUNNING" lines -> {"12_0": "RUNNING"}; sacct's "CANCELLED by 0" -> "CANCELLED"."""
    states = {}
    for line in text.splitlines():
        job, sep, state = line.strip().partition("|")
        if sep and state.strip():
            states[job] = state.split()[0].rstrip("+")
    return states

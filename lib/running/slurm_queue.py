"""What Slurm's queue says of jobs: each job's state (squeue, else sacct) and which states will still run.

What it is: `slurm_states(job_ids)` and `ACTIVE`, read by lib.running.executor (its tasks) and lib.studies.search
(whether a trial's worker is gone). What it is not: submitting or waiting for jobs (lib.running.executor).
"""
from __future__ import annotations

import subprocess

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

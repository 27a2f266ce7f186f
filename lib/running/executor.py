"""Where the study's runs train: in this process (the default), in local worker processes, or on a Slurm cluster.

`run_or_load_many(configs, progress)` is what lib.studies.study.run_section and the driver (scripts/run_study.py) call;
the settings choose (AI6103_EXECUTOR, AI6103_WORKERS and AI6103_SLURM_*, read through lib.core.settings; every one in
docs/devices.md "Every environment variable", how to use them in docs/clusters.md).

Beyond this process the unfinished runs become tasks, one per group of runs that may train together
(lib.training.grouping.group_key); each task calls lib.running.runs.run_or_load_many on its node, which decides there
how many of them to stack, and writes their run folders (a shared file system). The run store stays the only record: the
caller waits for the tasks (a bar of tasks finished), then loads the runs exactly as it loads local ones.
A task that ends without a result (its process killed, its job cancelled, timed out, its node lost, pre-empted and
not requeued) is started again on its own, its runs resuming from their last epoch, up to AI6103_RETRIES times
(one line each), while the other tasks go on; a task whose call raised (a result that is an error), or one out of
retries, stops the study with one line naming its runs, its job and its log. A rerun reuses every finished run,
waits for a job still in the queue and submits the rest. runs/_slurm/pending.json says which job trains which run;
a submission is written there before sbatch is asked (the job array's comment) and again with its job ids after,
so a driver stopped at any moment finds its jobs when run again and never submits a second task for a run a live
job holds. With AI6103_SLURM_WAIT=0 nobody waits, so the next call starts again what ended without a result
meanwhile and says in that one line which tasks failed; the call after resubmits those.
Tasks are submitit Checkpointables: at a time limit or pre-emption (SIGUSR2) submitit requeues them, and the new
start resumes every run from its last finished epoch.

`run_calls(function, arguments, names, progress)` is the same machinery for any other work: each call a task of
one Slurm job array, waited for, a failure said in one line (lib.studies.search submits its workers so).

What it is not: the training or the run store (the tasks call lib.running.store on their node), nor a scheduler: Slurm
queues the tasks; locally submitit's LocalExecutor runs them, `AI6103_WORKERS` at a time.
"""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import submitit

from ..core import paths
from ..core.config import RunConfig
from ..core.notation import count
from ..core.settings import Settings, current
from ..nets.data import check_split, data_info, silence_unofficial_warning
from ..nets.device import apply_torch_settings
from . import runs, store
from .slurm_queue import ACTIVE, jobs_by_comment, pending_record, slurm_states

# An end is a failure only once it has lasted GRACE_S without a result file: after COMPLETED or FAILED the file may
# still be on its way through a shared file system, and a requeued task (pre-emption, a time limit) passes through
# CANCELLED ("due to job requeue") on its way back to PENDING.
GRACE_S = 15.0  # how long a shared file system may take to show a result file
# A CANCELLED task may be on its way back to PENDING (pre-emption, a time limit: submitit requeues it), which a
# loaded controller took over 15 s to show in the tests; a task cancelled for good is reported this much later.
REQUEUE_GRACE_S = 90.0
POLL_MOST_S = 30.0  # the longest pause between two looks at the tasks (reached after ~10 minutes of waiting)
LOCAL_TIME_MIN = 7 * 24 * 60  # local workers have no time limit; submitit's LocalExecutor wants one


class TasksFailed(store.RunStoreError):
    """Tasks could not be submitted, failed or did not report in time; one line names their runs, jobs and logs."""


class TasksSubmitted(store.RunStoreError):
    """AI6103_SLURM_WAIT=0: the runs are queued on the cluster, not finished; running again later loads them."""


def slurm_dir() -> Path:
    """Where Slurm tasks keep their logs and submitit files (one folder per job), and pending.json."""
    return paths.runs_dir() / "_slurm"


def run_or_load_many(configs: list[RunConfig], progress: bool = True) -> list[store.RunResult]:
    """lib.running.runs.run_or_load_many where AI6103_EXECUTOR and AI6103_WORKERS say: here, or as tasks of local
    workers or of a Slurm job array, then loaded from the run store. Raises TasksFailed (a task failed, or did not
    report within AI6103_SLURM_TIMEOUT) or TasksSubmitted (AI6103_SLURM_WAIT=0), each with a one-line message."""
    chosen = current()
    if chosen.executor == "local" and chosen.workers == 1:
        return runs.run_or_load_many(configs, progress)
    for config in configs:  # what the store refuses, refused before anything is submitted
        info = data_info(config.data_dir)
        check_split(info.n_train, config.val_size, config.train_subset, config.val_subset)
    unfinished = {}
    for config in configs:
        name = store.run_path(config).name
        if name not in unfinished and store.load_run(config) is None:
            unfinished[name] = config
    if unfinished:
        runner = _Slurm(chosen) if chosen.executor == "slurm" else _LocalWorkers(chosen)
        runner.run(list(unfinished.values()), progress)
        left = [name for name, config in unfinished.items() if store.load_run(config) is None]
        if left:  # never train here what a task should have trained (this may be a cluster's login node)
            raise TasksFailed(f"the tasks ended well but runs {', '.join(left)} are not finished in "
                              f"{paths.runs_dir()}; is the run store on a file system the nodes share?")
    return runs.run_or_load_many(configs, progress)


def tasks_of(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """The tasks that train `configs`: one per group of runs that may train together (lib.training.grouping.group_key),
    in order. How many of a group stack is decided on the node, by lib.running.runs.run_or_load_many there."""
    from ..training.grouping import group_key

    groups: dict[tuple, list[RunConfig]] = {}
    for config in configs:
        groups.setdefault(group_key(config), []).append(config)
    return list(groups.values())


class TrainTask(submitit.helpers.Checkpointable):
    """One task, on its node: trains (resumes, or loads) a group of runs into the run store; returns their names.

    Checkpointable: at a time limit or pre-emption submitit calls `checkpoint` (which resubmits the same call) and
    requeues the job; the new start resumes each run from its folder's last finished epoch. The call is the task
    process's entry point: it reads that process's settings (lib.core.settings) and sets torch's switches first."""

    def __call__(self, configs: list[RunConfig], cpu_threads: int = 0) -> list[str]:
        """`cpu_threads`: torch's threads when the task trains on the CPU (0: Slurm's cpus-per-task if set, else
        torch's default of every core). Tasks sharing a machine's cores must split them: two local workers with
        2 threads each on 2 cores ran 4-8x slower than one (OpenMP threads waiting on each other)."""
        _set_up_task(cpu_threads)
        with silence_unofficial_warning():  # the plan said what data this is
            return [result.run_id for result in runs.run_or_load_many(configs, progress=True)]


class CallTask(submitit.helpers.Checkpointable):
    """One task of `run_calls`, on its node: `function(*arguments)`, after the task process's settings (as
    TrainTask's). Checkpointable: at a time limit or pre-emption submitit requeues the same call."""

    def __call__(self, function: Callable, arguments: tuple):
        _set_up_task(0)
        return function(*arguments)


def _set_up_task(cpu_threads: int) -> None:
    """A task process's start: its settings (its environment, as Slurm or the local executor set it) applied to
    torch, and torch's CPU threads: `cpu_threads`, else Slurm's cpus-per-task if set, else torch's default."""
    chosen = current()
    apply_torch_settings(chosen)
    cpu_threads = cpu_threads or chosen.slurm_cpus_per_task
    if cpu_threads:
        import torch

        torch.set_num_threads(cpu_threads)


@dataclass
class Task:
    runs: list[str]  # the run folders' names it trains (none for a task of run_calls)
    job: submitit.Job  # its job: a Slurm (array) job or a local process
    call: tuple = ()  # what it was submitted with ((configs,), or (function, arguments)); () = not known here
    slot: int = 0  # local workers: which worker (and GPU) runs it
    ended_at: float | None = None  # when its job was first seen ended without a result
    name: str = ""  # what messages call it; "" = "runs <its runs>"
    retries: int = 0  # how often its call was started again after an end without a result

    @property
    def said(self) -> str:
        return self.name or f"runs {', '.join(self.runs)}"

    @property
    def log(self) -> Path:
        return self.job.paths.stderr  # tracebacks and progress bars; stdout is the same path ending in .out


def _error_line(error: Exception) -> str:
    """The last line of a failed task's traceback (submitit wraps it between dashed lines)."""
    text = str(error)
    parts = text.split("-" * 22)
    trace = parts[1] if len(parts) > 2 else text
    lines = [line.strip() for line in trace.splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _age(path: Path) -> float:
    """Seconds since `path` last changed (a task's log: about since its job ended); inf if there is none."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return math.inf


def _fresh(job: submitit.Job) -> submitit.Job:
    """A job just submitted, without the result file an earlier job of the same id may have left in its folder.

    NOTE: ids repeat: local jobs are named by pid, and a Slurm cluster whose state is reset (as the test cluster's
    is at each start) counts from 1 again. The new job cannot have finished yet: its Python has not started."""
    job.paths.result_pickle.unlink(missing_ok=True)
    return job


def _outcome(task: Task, state: str | None, grace_s: float, now: float, said: str = "its job ended {} without a result"
             ) -> tuple[str, bool] | None:
    """None while the task may still report; ("", False) when it finished well; else (why it failed in a few words,
    whether it ended without a result: what a retry may mend). `state` is its job's state, None if it could not be
    asked; an end without a result counts once it has lasted `grace_s` (`said` with the state says it), and not at
    all when every run of the task is finished (killed after its last run's summary)."""
    if task.job.paths.result_pickle.exists():
        error = task.job.exception()
        return ("", False) if error is None else (_error_line(error), False)
    if state is None or state in ACTIVE:
        task.ended_at = None
        return None
    task.ended_at = task.ended_at or now
    if now - task.ended_at < grace_s:
        return None
    if task.runs and all(_finished(name) for name in task.runs):
        return "", False
    return said.format(state), True


def _finished(name: str) -> bool:
    """Whether the run folder `name` holds a finished run (its summary)."""
    return (paths.runs_dir() / name / store.SUMMARY).exists()


def _spent(task: Task, budget: int) -> str:
    """What a failure's line adds for a task out of retries."""
    return f" (started {count(task.retries + 1, 'time')}; AI6103_RETRIES={budget})" if budget else ""


def _wait(runner, tasks: list[Task], total: int, progress: bool, timeout_s: float) -> None:
    """Wait for `tasks` (the runner may start more as slots free up), showing a bar of tasks finished; a task that
    ended without a result is started again (`runner.retry`, one line each) while AI6103_RETRIES allows; raise
    TasksFailed at the first other failure, or when tasks are left after `timeout_s`."""
    if current().progress == "text":
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    started, failures, budget = time.time(), [], current().retries
    with tqdm(total=total, desc="tasks finished", unit="task", disable=not progress, leave=True) as bar:
        try:
            while tasks and not failures and time.time() - started < timeout_s:
                states = runner.states(tasks)
                for task in list(tasks):
                    state = None if states is None else states.get(task.job.job_id, "UNKNOWN")
                    grace_s = runner.requeue_grace_s if state == "CANCELLED" else runner.grace_s
                    outcome = _outcome(task, state, grace_s, time.time(), runner.no_result)
                    if outcome is None:
                        continue
                    (why, lost), said = outcome, f"{task.said} ({runner.where(task)}, log {task.log})"
                    tasks.remove(task)
                    if lost and task.call and task.retries < budget:
                        again = runner.retry(task)
                        tasks.append(again)
                        tqdm.write(f"retry {again.retries} of {budget}: {said}: {why}; started again as "
                                   f"{runner.where(again)}" + ", its runs resuming from their last epoch" * bool(
                                       again.runs))
                        continue
                    bar.update()
                    if why:
                        failures.append(f"{said}: {why}" + (_spent(task, budget) if lost else ""))
                    elif (follow := runner.next(task)) is not None:
                        tasks.append(follow)
                if tasks and not failures:
                    time.sleep(min(POLL_MOST_S, 1 + (time.time() - started) / 20))
        finally:
            if tasks:  # failed, timed out, or interrupted (Ctrl-C): local workers end, Slurm jobs stay queued
                runner.stop(tasks)
    if failures:
        raise TasksFailed(f"{len(failures)} of {count(total, 'task')} failed: {'; '.join(failures)}; "
                          f"{runner.after_failure(tasks)}")
    if tasks:
        raise TasksFailed(f"{count(len(tasks), 'task')} did not finish within AI6103_SLURM_TIMEOUT={timeout_s:g} s: "
                          + "; ".join(f"{t.said} ({runner.where(t)}, log {t.log})" for t in tasks)
                          + f"; {runner.after_failure(tasks)}")


class _LocalWorkers:
    """Tasks as local processes (submitit's LocalExecutor), `workers` at a time; each worker its own GPU."""

    grace_s = requeue_grace_s = 0.0  # a local process's result file is written before it exits; none is requeued
    no_result = "its worker process ended without a result"  # killed (its controller then reads FINISHED)

    def __init__(self, chosen: Settings):
        self.workers = chosen.workers
        self.gpus = _local_gpus()
        if self.gpus and self.workers > len(self.gpus):  # each would plan its memory as if the GPU were its own
            raise ValueError(f"AI6103_WORKERS must be at most the {len(self.gpus)} GPUs visible here (a worker each), "
                             f"got {self.workers}")
        self.executor = submitit.LocalExecutor(folder=paths.runs_dir() / "_local" / "%j")
        self.waiting: list[list[RunConfig]] = []

    def run(self, configs: list[RunConfig], progress: bool) -> None:
        groups = tasks_of(configs)
        self.waiting = groups[self.workers:]
        started = [self._start(group, slot) for slot, group in enumerate(groups[:self.workers])]
        _wait(self, started, len(groups), progress, timeout_s=float("inf"))

    def _start(self, group: list[RunConfig], slot: int, retries: int = 0) -> Task:
        gpu = (self.gpus[slot % len(self.gpus)],) if self.gpus else ()  # sets CUDA_VISIBLE_DEVICES ("" = none)
        self.executor.update_parameters(timeout_min=LOCAL_TIME_MIN, gpus_per_node=len(gpu), visible_gpus=gpu)
        cpu_threads = 0 if gpu else max(1, (os.cpu_count() or 1) // self.workers)  # the cores split between workers
        job = _fresh(self.executor.submit(TrainTask(), group, cpu_threads))
        return Task([store.run_path(config).name for config in group], job, (group,), slot, retries=retries)

    def next(self, ended: Task) -> Task | None:
        return self._start(self.waiting.pop(0), ended.slot) if self.waiting else None

    def retry(self, lost: Task) -> Task:
        """The task's runs in a new process of the same worker (its GPU), resuming from their last epoch."""
        return self._start(*lost.call, lost.slot, lost.retries + 1)

    def states(self, tasks: list[Task]) -> dict[str, str]:
        return {task.job.job_id: task.job.state for task in tasks}  # RUNNING, FINISHED or INTERRUPTED

    def where(self, task: Task) -> str:
        return f"local worker {task.slot}, pid {task.job.job_id}"

    def stop(self, tasks: list[Task]) -> None:
        for task in tasks:
            task.job.cancel()  # SIGINT: training stops; finished epochs stay in the run folders

    def after_failure(self, running: list[Task]) -> str:
        return ("the other tasks are stopped; " if running else "") + "finished epochs are kept: run again to resume"


def _local_gpus() -> list[int]:
    """The GPU indices local workers are spread over (CUDA_VISIBLE_DEVICES if set); none without CUDA."""
    from ..nets.device import runtime

    if runtime().device.type != "cuda":
        return []
    visible = current().cuda_visible_devices
    if not visible:
        import torch

        return list(range(torch.cuda.device_count()))
    try:
        return [int(index) for index in visible.split(",")]
    except ValueError:
        raise ValueError(f"AI6103_WORKERS needs CUDA_VISIBLE_DEVICES as indices (0,1,...), got {visible!r}") from None


class _Slurm:
    """Tasks as one Slurm job array (submitit's SlurmExecutor), their jobs recorded in runs/_slurm/pending.json."""

    grace_s, requeue_grace_s = GRACE_S, REQUEUE_GRACE_S
    no_result = "its job ended {} without a result"
    # what a failure's line ends with, after what goes on in the queue
    rerun = "finished runs and epochs are kept: run again to resubmit the rest (it waits for tasks still queued)"

    def __init__(self, chosen: Settings):
        missing = [command for command in ("sbatch", "srun", "squeue") if shutil.which(command) is None]
        if missing:
            raise ValueError(f"AI6103_EXECUTOR=slurm, but {', '.join(missing)} is not on this machine's PATH: run "
                             f"on the cluster's login node, or set AI6103_EXECUTOR=local")
        self.chosen = chosen

    def run(self, configs: list[RunConfig], progress: bool) -> None:
        names = {store.run_path(config).name: config for config in configs}
        budget = self.chosen.retries
        with _pending_jobs() as pending:
            self._adopt(pending)
            recorded = {pending[name]["job"] for name in names if name in pending}
            states = slurm_states(sorted(recorded)) if recorded else {}
            if states is None:
                raise TasksFailed("Slurm does not answer (squeue failed), so whether the runs' jobs still run is "
                                  "unknown; try again later")
            queued: dict[str, list[str]] = {}  # job id -> its runs, for the jobs that will still run
            failed = []  # tasks submitted by an earlier call that did not wait (AI6103_SLURM_WAIT=0), then failed
            lost: dict[str, tuple[Task, str]] = {}  # job id -> its task and why, for ends without a result meanwhile
            for name in [name for name in names if name in pending]:
                entry = pending[name]
                job = entry["job"]
                if states.get(job) in ACTIVE:
                    queued.setdefault(job, []).append(name)
                    continue
                ended = Task([name], _slurm_job(job), retries=entry.get("retries", 0))
                if not ended.job.paths.result_pickle.exists() and _age(ended.log) < GRACE_S:
                    queued.setdefault(job, []).append(name)  # just ended: its files may be on their way, or requeued
                    continue
                del pending[name]  # started again or said once below; the next call submits the run again
                why, no_result = _outcome(ended, states.get(job, "UNKNOWN"), 0.0, time.time())
                if no_result and ended.retries < budget:
                    lost.setdefault(job, (dataclasses.replace(ended, runs=[]), why))[0].runs.append(name)
                elif why:
                    failed.append(f"run {name} ({self.where(ended)}, log {ended.log}): {why}"
                                  + (_spent(ended, budget) if no_result else ""))
            if failed:  # never resubmit unseen what failed unseen: the same error would come back each time
                raise TasksFailed(f"{len(failed)} of the runs submitted earlier failed in the queue: "
                                  f"{'; '.join(failed)}; finished epochs are kept: run again to resubmit them")
            tasks = [Task(runs, _slurm_job(job), ([names[name] for name in runs],),
                          retries=max(pending[name].get("retries", 0) for name in runs))
                     for job, runs in queued.items()]
            again = [name for task, _ in lost.values() for name in task.runs]
            groups = tasks_of([c for name, c in names.items()
                               if not any(name in r for r in queued.values()) and name not in again])
            calls = [[names[name] for name in task.runs] for task, _ in lost.values()] + groups
            new = self._submit_recorded(pending, calls, [t.retries + 1 for t, _ in lost.values()] + [0] * len(groups))
            for (old, why), task in zip(lost.values(), new, strict=False):  # the lost ones come first
                print(f"retry {task.retries} of {budget}: {old.said} ({self.where(old)}, log {old.log}): {why} "
                      f"while nobody waited; started again as {self.where(task)}, its runs resuming from their last "
                      f"epoch", flush=True)
        arrays = sorted({task.job.job_id.split("_")[0] for task in new})
        waiting_for = sorted({task.job.job_id.split("_")[0] for task in tasks})
        said = []
        if new:
            said.append(f"submitted {count(len(new), 'task')} as Slurm job {', '.join(arrays)}")
        if tasks:
            said.append(f"{count(len(tasks), 'task')} still queued or running as Slurm job {', '.join(waiting_for)}")
        said = " and ".join(said)
        watch = f"squeue -j {','.join(arrays + waiting_for)}; logs in {slurm_dir()}/<job id>/"
        if not self.chosen.slurm_wait:
            raise TasksSubmitted(f"{said} ({watch}); run again later to load them")
        print(f"{said}; waiting ({watch})", flush=True)
        watching = tasks + new  # _wait takes out the tasks that end, and adds those started again
        try:
            _wait(self, watching, len(watching), progress, self.chosen.slurm_timeout_s)
        finally:
            with _pending_jobs() as pending:  # forget ended tasks' jobs: failures were said; the next call resubmits
                for name, entry in list(pending.items()):
                    if name in names and not any(name in task.runs and entry.get("job") == task.job.job_id
                                                 for task in watching):
                        del pending[name]

    def _adopt(self, pending) -> None:
        """The jobs of submissions whose driver stopped before it recorded their ids (entries with a token, not a
        job), found by their comment and recorded; a submission Slurm does not know is forgotten (submitted again
        below). A task whose driver stopped before handing it its call (submitit's pickle) cannot train: cancelled,
        its runs submitted again."""
        tokens = {entry.get("token") for entry in pending.values() if "job" not in entry} - {None}
        found = jobs_by_comment(tokens) if tokens else {}
        if found is None:
            raise TasksFailed("Slurm does not answer (squeue failed), so whether the runs' jobs still run is "
                              "unknown; try again later")
        for name, entry in [(name, entry) for name, entry in pending.items() if "job" not in entry]:
            del pending[name]
            if entry.get("token") not in found:  # never reached Slurm, or ended long ago: submitted again below
                continue
            job = _slurm_job(found[entry["token"]] + (f"_{entry['index']}" if entry["of"] > 1 else ""))
            if not job.paths.submitted_pickle.exists():
                subprocess.run(["scancel", job.job_id], capture_output=True, timeout=60)
                print(f"Slurm job {job.job_id} (run {name}) was submitted by a driver that stopped before handing it "
                      f"its task: cancelled, submitted again", flush=True)
                continue
            pending[name] = {"job": job.job_id, "log": str(job.paths.stderr), "submitted": entry["submitted"],
                             "retries": entry.get("retries", 0)}

    def _submit_recorded(self, pending, calls: list[list[RunConfig]], retries: list[int]) -> list[Task]:
        """A TrainTask for each of `calls` (the configs of a task), submitted as one job array and recorded in
        `pending` twice: before sbatch is asked (the array's comment, a token) and with the job ids it answered."""
        if not calls:
            return []
        token, stamp = f"ai6103-{uuid.uuid4().hex[:16]}", time.strftime("%Y-%m-%dT%H:%M:%S")
        runs = [[store.run_path(config).name for config in configs] for configs in calls]
        for index, (names, tries) in enumerate(zip(runs, retries, strict=True)):
            for name in names:
                pending[name] = {"token": token, "index": index, "of": len(calls), "submitted": stamp,
                                 "retries": tries}
        pending.save()  # from here on a driver stopped at any moment finds the jobs by their comment
        try:
            jobs = self.submit(TrainTask(), [(configs,) for configs in calls], comment=token)
        except TasksFailed:
            for name in [name for names in runs for name in names]:
                del pending[name]
            raise
        tasks = [Task(names, job, (configs,), retries=tries)
                 for names, job, configs, tries in zip(runs, jobs, calls, retries, strict=True)]
        for task in tasks:
            for name in task.runs:
                pending[name] = {"job": task.job.job_id, "log": str(task.log), "submitted": stamp,
                                 "retries": task.retries}
        pending.save()
        return tasks

    def retry(self, lost: Task) -> Task:
        """The task's call submitted again (its runs resume from their last epoch), recorded as at first."""
        if not lost.runs:  # a task of run_calls: its caller keeps its own record
            [job] = self.submit(CallTask(), [lost.call])
            return dataclasses.replace(lost, job=job, ended_at=None, retries=lost.retries + 1)
        with _pending_jobs() as pending:
            configs = [config for config in lost.call[0] if not _finished(store.run_path(config).name)]
            [task] = self._submit_recorded(pending, [configs], [lost.retries + 1])
        return task

    def submit(self, task: submitit.helpers.Checkpointable, calls: list[tuple], comment: str | None = None
               ) -> list[submitit.Job]:
        """`task(*call)` for each of `calls`, as one job array with the AI6103_SLURM_* settings (and sbatch's
        `comment`, which replaces one of AI6103_SLURM_EXTRA); its jobs in order."""
        c = self.chosen
        executor = submitit.SlurmExecutor(folder=slurm_dir() / "%j")
        mem = None if c.slurm_mem_gb is None else (f"{c.slurm_mem_gb:g}GB" if c.slurm_mem_gb == int(c.slurm_mem_gb)
                                                   else f"{int(c.slurm_mem_gb * 1024)}MB")
        extra = {"requeue": True, **c.slurm_extra, **({"comment": comment} if comment else {})}
        parameters = {"job_name": "ai6103", "time": c.slurm_time_min, "partition": c.slurm_partition,
                      "gpus_per_node": c.slurm_gpus or None, "mem": mem, "cpus_per_task": c.slurm_cpus,
                      "additional_parameters": extra}  # requeue: after node failures too
        executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
        try:
            jobs = executor.map_array(task, *zip(*calls, strict=True))
        except Exception as error:  # noqa: BLE001 - sbatch's refusal (bad partition, limits): one line
            lines = [line for line in str(error).splitlines() if line.strip()]
            raise TasksFailed(f"sbatch refused the tasks: {lines[-1] if lines else type(error).__name__} (settings: "
                              f"AI6103_SLURM_PARTITION, _GPUS, _TIME, _MEM_GB, _CPUS, _EXTRA)") from None
        return [_fresh(job) for job in jobs]

    def next(self, ended: Task) -> None:
        return None  # every task was submitted at once

    def states(self, tasks: list[Task]) -> dict[str, str] | None:
        return slurm_states([task.job.job_id for task in tasks])

    def where(self, task: Task) -> str:
        return f"Slurm job {task.job.job_id}"

    def stop(self, tasks: list[Task]) -> None:
        pass  # they stay queued; pending.json lets the next run wait for them

    def after_failure(self, running: list[Task]) -> str:
        going_on = (f"the other {count(len(running), 'task')} go on in the queue (job "
                    f"{', '.join(sorted({t.job.job_id.split('_')[0] for t in running}))})" if running else "")
        return going_on + "; " * bool(going_on) + self.rerun


def run_calls(function: Callable, arguments: list[tuple], names: list[str], rerun: str, progress: bool = True) -> None:
    """`function(*args)` for each of `arguments`, as tasks of one Slurm job array (AI6103_SLURM_* as for the runs;
    `function` and the arguments pickled, so a module-level function), waited for as run_or_load_many waits
    (AI6103_SLURM_TIMEOUT). `names` name the tasks in messages ("search worker 1"); `rerun` says what running
    again does. Raises TasksFailed (a task failed, or did not report in time), or TasksSubmitted with
    AI6103_SLURM_WAIT=0, each in one line. Nothing is recorded in pending.json: the caller's own record says what
    is done (a rerun submits again)."""
    runner = _Slurm(current())
    runner.rerun = rerun
    calls = [(function, args) for args in arguments]
    jobs = runner.submit(CallTask(), calls)
    tasks = [Task([], job, call, name=name) for job, call, name in zip(jobs, calls, names, strict=True)]
    array = tasks[0].job.job_id.split("_")[0]
    said = f"submitted {count(len(tasks), 'task')} as Slurm job {array} (squeue -j {array}; logs in {slurm_dir()}/)"
    if not runner.chosen.slurm_wait:
        raise TasksSubmitted(f"{said}; {rerun}")
    print(f"{said}; waiting", flush=True)
    _wait(runner, tasks, len(tasks), progress, runner.chosen.slurm_timeout_s)


def _pending_jobs():
    """runs/_slurm/pending.json (lib.running.slurm_queue.pending_record) under its lock, the entries of finished runs
    dropped: {run name: {"job", "log", "submitted", "retries"}}, or a token while its submission is under way."""
    return pending_record(slurm_dir(), _finished)


def _slurm_job(job_id: str) -> submitit.SlurmJob:
    """A handle on a Slurm job of ours (its folder in runs/_slurm/)."""
    return submitit.SlurmJob(folder=slurm_dir() / "%j", job_id=job_id)

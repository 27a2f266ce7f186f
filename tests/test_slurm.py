"""The executor (lib.running.executor): runs trained as tasks of local worker processes or of a real Slurm job array
give what training in this process gives; failures are reported in one line; a cancelled or pre-empted task resumes.

The tests marked `slurm` start a one-node Slurm cluster on this machine once per session (scripts/local_slurm.sh:
as root, installing the packages with apt-get if needed) and skip, saying why, where that cannot be done."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from optuna.trial import TrialState

from lib import RunConfig
from lib.core import paths, settings
from lib.core.checkpoint import load_state
from lib.running import executor, store
from lib.running.runs import run_or_load_many
from lib.running.slurm_queue import slurm_states
from lib.running.store import _RunLock, run_path
from lib.studies import search

SCRIPT = paths.PROJECT_ROOT / "scripts" / "local_slurm.sh"
START_S = 600  # the cluster's start, apt-get install included (~10 s with the packages, 1.5 s without)
TASK_S = 240  # the longest any test waits for its tasks (a hang fails the test; never the session)
TIMING = ["epoch_seconds", "train_images_per_second"]  # wall-clock columns differ between any two runs


def two_groups(data_dir) -> list[RunConfig]:
    """Two runs that may not train together (their batch sizes differ), so two tasks; 15 epochs of 1 and 2 steps of
    MobileNet v1 (a third of v2's time on the CPU): seconds each."""
    run = RunConfig(arch="mobilenet", data_dir=str(data_dir), epochs=15, val_size=300, train_subset=32, val_subset=32,
                    batch_size=32)
    return [run, dataclasses.replace(run, batch_size=16)]


def long_run(data_dir) -> RunConfig:
    """A run to stop after its first epoch: 40 epochs of one step, about 10 s on a CPU core, time to stop its task
    (the test cluster kills at once: KillWait=0; a task of 3 epochs ended on a fast machine before scancel reached it).
    """
    return dataclasses.replace(two_groups(data_dir)[0], epochs=40)


LOCAL_THREADS = max(1, (os.cpu_count() or 1) // 2)  # torch's threads in each of 2 local workers: the cores split
SLURM_THREADS = 1  # the tests' Slurm tasks ask for 1 CPU (AI6103_SLURM_CPUS)


@pytest.fixture(scope="module")
def trained_here(synthetic_dir, tmp_path_factory):
    """`two_groups` and `long_run` trained in this process, as without an executor, with as many torch threads as a
    task has (CPU results depend on the thread count): `trained_here(threads)` is what every executor must give."""
    trained = {}

    def with_threads(threads: int) -> list[store.RunResult]:
        if threads not in trained:
            before = torch.get_num_threads()
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("AI6103_RUNS_DIR", str(tmp_path_factory.mktemp("trained_here")))
                patch.setenv("AI6103_DEVICE", "cpu")
                torch.set_num_threads(threads)
                try:
                    trained[threads] = run_or_load_many([*two_groups(synthetic_dir), long_run(synthetic_dir)],
                                                              progress=False)
                finally:
                    torch.set_num_threads(before)
        return trained[threads]
    return with_threads


def same_runs(got: list[store.RunResult], expected: list[store.RunResult]) -> None:
    """Equal metrics of every epoch and equal final weights (on the CPU training is deterministic)."""
    for run, reference in zip(got, expected, strict=True):
        assert run.run_id == reference.run_id
        pd.testing.assert_frame_equal(run.history.drop(columns=TIMING), reference.history.drop(columns=TIMING),
                                      check_exact=True)
        weights, reference_weights = load_state(run.path)["model"], load_state(reference.path)["model"]
        assert all(torch.equal(weights[k], reference_weights[k]) for k in reference_weights)


def training_calls() -> list[dict]:
    """The run store's record of every training call (lib.running.store: one line each, with its pid and epochs)."""
    log = paths.runs_dir() / "timings.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# ---------------------------------------------------------------- settings and local workers (no cluster)


@pytest.mark.parametrize("name, value", [("AI6103_EXECUTOR", "kubernetes"), ("AI6103_WORKERS", "0"),
                                         ("AI6103_SLURM_TIME", "1h"), ("AI6103_SLURM_EXTRA", "account=")])
def test_bad_setting_is_refused_in_one_line(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name) as error:
        settings.current()
    assert "\n" not in str(error.value) and repr(value) in str(error.value)


def test_more_local_workers_than_gpus_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv("AI6103_WORKERS", "3")
    monkeypatch.setattr(executor, "_local_gpus", lambda: [0, 1])
    with pytest.raises(ValueError, match="AI6103_WORKERS must be at most the 2 GPUs visible here .*got 3$"):
        executor._LocalWorkers(settings.current())


def test_settings_default_to_this_process_and_read_sbatch_options(monkeypatch):
    assert (settings.current().executor, settings.current().workers) == ("local", 1)
    monkeypatch.setenv("AI6103_SLURM_EXTRA", "account=abc, qos=high,exclusive")
    assert settings.current().slurm_extra == {"account": "abc", "qos": "high", "exclusive": True}


@pytest.mark.slow
def test_two_local_workers_train_two_groups_as_this_process_does(synthetic_dir, trained_here, monkeypatch):
    monkeypatch.setenv("AI6103_WORKERS", "2")
    results = executor.run_or_load_many(two_groups(synthetic_dir), progress=False)
    same_runs(results, trained_here(LOCAL_THREADS)[:2])
    workers = {call["pid"] for call in training_calls()}
    assert len(workers) == 2 and os.getpid() not in workers  # one process per task, none of them this one
    calls_before = len(training_calls())
    same_runs(executor.run_or_load_many(two_groups(synthetic_dir), progress=False), trained_here(LOCAL_THREADS)[:2])
    assert len(training_calls()) == calls_before  # finished runs are loaded, not trained again


def test_failed_local_task_is_reported_with_its_runs_and_log(synthetic_dir, monkeypatch):
    monkeypatch.setenv("AI6103_WORKERS", "2")
    run = two_groups(synthetic_dir)[0]
    run_path(run).mkdir(parents=True)
    with _RunLock(run_path(run)), pytest.raises(executor.TasksFailed) as error:  # "another trainer" holds it
        executor.run_or_load_many([run], progress=False)
    message = str(error.value)
    assert "\n" not in message and run_path(run).name in message and "is being trained by pid" in message
    log = Path(re.search(r"log (\S+)\)", message).group(1))
    assert log.exists() and "RunLocked" in log.read_text()  # lib.running.store: a RunStoreError, the run being trained


# ---------------------------------------------------------------- a real Slurm cluster


@pytest.fixture(scope="session")
def slurm_cluster():
    """A one-node Slurm cluster for the session (SLURM_CONF set while it runs), stopped at the end; skips the
    slurm tests, saying why, where it cannot start."""
    if os.geteuid() != 0:
        pytest.skip("the test Slurm cluster needs root (scripts/local_slurm.sh runs its daemons as root)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("no Slurm here and no apt-get to install it (Debian/Ubuntu): scripts/local_slurm.sh cannot start")
    try:
        started = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=START_S)
    except subprocess.TimeoutExpired:
        pytest.skip(f"scripts/local_slurm.sh start took more than {START_S} s")
    if started.returncode != 0:
        pytest.skip(f"no test Slurm cluster: {(started.stderr.strip().splitlines() or ['no message'])[-1]}")
    conf = started.stdout.strip().splitlines()[-1].removeprefix("export SLURM_CONF=")
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    yield conf
    subprocess.run(["bash", str(SCRIPT), "stop", str(Path(conf).parent)], capture_output=True, timeout=60)
    if before is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = before


@pytest.fixture
def on_slurm(slurm_cluster, monkeypatch):
    """The executor set to Slurm: no GPUs asked for, one core per task, waits of minutes at most."""
    for name, value in {"AI6103_EXECUTOR": "slurm", "AI6103_SLURM_GPUS": "0", "AI6103_SLURM_CPUS": "1",
                        "AI6103_SLURM_TIME": "10", "AI6103_SLURM_TIMEOUT": str(TASK_S)}.items():
        monkeypatch.setenv(name, value)


def pending_job(run: RunConfig) -> str:
    return json.loads((executor.slurm_dir() / "pending.json").read_text())[run_path(run).name]["job"]


def in_background(call) -> tuple[threading.Thread, dict]:
    """Run `call()` in a thread (this one acts on its Slurm job meanwhile); the dict gets its result or error."""
    outcome = {}

    def target():
        try:
            outcome["result"] = call()
        except Exception as error:  # noqa: BLE001 - handed to the test, which checks it
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def wait_until(condition, what: str, timeout_s: float = TASK_S) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        assert time.time() < deadline, f"waited {timeout_s} s for {what}"
        time.sleep(0.2)


def first_epoch_saved(run: RunConfig) -> bool:
    metrics = run_path(run) / "metrics.csv"
    return metrics.exists() and len(pd.read_csv(metrics)) >= 1


def job_folders() -> list[str]:
    """The Slurm jobs submitit made folders for (one per array task)."""
    return sorted(p.name for p in executor.slurm_dir().iterdir() if p.is_dir() and p.name[0].isdigit())


def slurm_state(job: str) -> str:
    return (slurm_states([job]) or {}).get(job, "")


@pytest.mark.slurm
def test_slurm_tasks_give_the_local_results_and_are_submitted_once(on_slurm, synthetic_dir, trained_here,
                                                                   monkeypatch):
    runs = two_groups(synthetic_dir)
    monkeypatch.setenv("AI6103_SLURM_WAIT", "0")
    with pytest.raises(executor.TasksSubmitted, match=r"^submitted 2 tasks as Slurm job (\d+) .*run again later"):
        executor.run_or_load_many(runs, progress=False)
    jobs = [pending_job(run) for run in runs]
    assert len(set(jobs)) == 2 and len({job.split("_")[0] for job in jobs}) == 1  # one array, one task per group
    with pytest.raises(executor.TasksSubmitted, match="2 tasks still queued or running"):
        executor.run_or_load_many(runs, progress=False)  # again at once: no second submission
    assert [pending_job(run) for run in runs] == jobs
    monkeypatch.setenv("AI6103_SLURM_WAIT", "1")
    same_runs(executor.run_or_load_many(runs, progress=False), trained_here(SLURM_THREADS)[:2])
    assert os.getpid() not in {call["pid"] for call in training_calls()}
    calls_before = len(training_calls())
    finished = executor.run_or_load_many(runs, progress=False)  # finished: loaded, nothing submitted
    same_runs(finished, trained_here(SLURM_THREADS)[:2])
    assert len(training_calls()) == calls_before
    assert json.loads((executor.slurm_dir() / "pending.json").read_text()) == {}


@pytest.mark.slurm
def test_task_that_failed_unwatched_is_said_once_then_resubmitted(on_slurm, synthetic_dir, monkeypatch):
    run = two_groups(synthetic_dir)[0]
    monkeypatch.setenv("AI6103_SLURM_WAIT", "0")
    run_path(run).mkdir(parents=True)
    with _RunLock(run_path(run)):  # "another trainer" holds the run: each of its tasks fails at once
        with pytest.raises(executor.TasksSubmitted):
            executor.run_or_load_many([run], progress=False)
        job = pending_job(run)
        wait_until(lambda: slurm_state(job) in {"COMPLETED", "FAILED"}, "the task's end")
        with pytest.raises(executor.TasksFailed) as error:  # the next call says why, instead of resubmitting
            executor.run_or_load_many([run], progress=False)
        message = str(error.value)
        assert "\n" not in message and f"Slurm job {job}" in message and "is being trained by pid" in message
        assert str(executor.slurm_dir() / job) in message and "run again to resubmit" in message
        with pytest.raises(executor.TasksSubmitted, match="^submitted 1 task as Slurm job"):
            executor.run_or_load_many([run], progress=False)  # said once: the call after resubmits
        assert pending_job(run) != job
        subprocess.run(["scancel", pending_job(run)], check=True, timeout=30)


def one_task_past_its_first_epoch(data_dir) -> tuple[RunConfig, str, threading.Thread, dict]:
    """One run submitted from a background thread, waited for until its task has saved its first epoch:
    (run, its Slurm job, the thread, the thread's outcome)."""
    run = long_run(data_dir)
    thread, outcome = in_background(lambda: executor.run_or_load_many([run], progress=False))
    wait_until(lambda: first_epoch_saved(run), "the task's first epoch")
    return run, pending_job(run), thread, outcome


@pytest.mark.slurm
def test_cancelled_task_is_a_failure_and_a_rerun_resumes_it(on_slurm, synthetic_dir, trained_here, monkeypatch):
    monkeypatch.setattr(executor._Slurm, "grace_s", 2.0)  # a local disk shows a result at once: no need for 15 s
    monkeypatch.setattr(executor._Slurm, "requeue_grace_s", 2.0)  # and this task is not requeued
    run, job, thread, outcome = one_task_past_its_first_epoch(synthetic_dir)
    subprocess.run(["scancel", job], check=True, timeout=30)
    thread.join(TASK_S)
    assert not thread.is_alive()
    message = str(outcome.get("error"))
    assert isinstance(outcome.get("error"), executor.TasksFailed), message
    assert "\n" not in message and f"Slurm job {job}" in message and "CANCELLED" in message
    assert run_path(run).name in message and str(executor.slurm_dir() / job) in message
    assert not (run_path(run) / store.SUMMARY).exists()

    resumed = executor.run_or_load_many([run], progress=False)  # the same call again: resubmitted, resumed
    assert len(job_folders()) == 2
    same_runs(resumed, trained_here(SLURM_THREADS)[2:])
    [call] = training_calls()  # the store logs a training call when it ends: the cancelled one never did
    assert len(call["epoch_seconds"]) < run.epochs  # the rerun trained only the epochs left


@pytest.mark.slurm
def test_preempted_task_is_requeued_and_resumes(on_slurm, synthetic_dir, trained_here):
    run, job, thread, outcome = one_task_past_its_first_epoch(synthetic_dir)
    subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)  # what pre-emption sends (submitit)
    wait_until(lambda: slurm_state(job) == "PENDING", "the requeued task", timeout_s=60)
    # Slurm holds a requeued job for 120 s; a cluster would wait, the test does not.
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=30)
    thread.join(TASK_S)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    assert job_folders() == [job]  # requeued, not resubmitted
    same_runs(outcome["result"], trained_here(SLURM_THREADS)[2:])
    [call] = training_calls()  # the store logs a training call when it ends: the interrupted one never did
    assert len(call["epoch_seconds"]) < run.epochs  # the requeued task trained only the epochs left
    assert "Requeued job" in (executor.slurm_dir() / job / f"{job}_0_log.out").read_text()


@pytest.mark.slurm
def test_task_that_never_reports_stops_the_wait_and_stays_queued(on_slurm, synthetic_dir, monkeypatch):
    run = two_groups(synthetic_dir)[0]
    monkeypatch.setenv("AI6103_SLURM_EXTRA", "hold")  # submitted held: it will never start
    monkeypatch.setenv("AI6103_SLURM_TIMEOUT", "3")
    with pytest.raises(executor.TasksFailed, match="did not finish within AI6103_SLURM_TIMEOUT=3 s") as error:
        executor.run_or_load_many([run], progress=False)
    job = pending_job(run)
    assert "\n" not in str(error.value) and f"Slurm job {job}" in str(error.value)
    assert slurm_state(job) == "PENDING"  # left in the queue: the next call waits for it
    subprocess.run(["scancel", job], check=True, timeout=30)


@pytest.mark.slurm
def test_refused_submission_is_one_line(on_slurm, synthetic_dir, monkeypatch):
    monkeypatch.setenv("AI6103_SLURM_PARTITION", "no_such_partition")
    with pytest.raises(executor.TasksFailed, match="sbatch refused the tasks: .*partition") as error:
        executor.run_or_load_many(two_groups(synthetic_dir)[:1], progress=False)
    assert "\n" not in str(error.value)


@pytest.mark.slurm
def test_two_slurm_workers_share_a_search_without_training_one_run_twice(on_slurm, tiny_config):
    """A search of 4 trials over 2 settings (each asked for twice) as 2 Slurm workers sharing a journal file: 4
    finished trials, each run trained once, by the tasks (this process only waits)."""
    base = dataclasses.replace(tiny_config, arch="small_cnn", grad_norm_param="layers.1.conv.weight")
    plan = search.make_search(base, {"lr": {"choice": [0.05, 0.1]}}, "tiny", sampler="random")
    study = search.optimize(plan, 4, progress=False, workers=2)
    assert Path(plan.storage).exists() and plan.storage.endswith(".log")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    tasks = [folder for folder in job_folders() if "_" in folder]
    assert len(tasks) == 2 and {t.user_attrs["slurm_job"] for t in study.trials} <= set(tasks)  # one array's tasks
    for lr in (0.05, 0.1):
        name = run_path(dataclasses.replace(base, lr=lr)).name
        assert [len(call["epoch_seconds"]) for call in training_calls() if name in call["runs"]] == [base.epochs]
    assert os.getpid() not in {call["pid"] for call in training_calls()}

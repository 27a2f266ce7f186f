"""The executor (lib.running.executor): runs trained as tasks of local worker processes or of a real Slurm job array
give what training in this process gives; failures are reported in one line; a cancelled or pre-empted task resumes.

The tests marked `slurm` start a one-node Slurm cluster on this machine once per session (scripts/local_slurm.sh:
as root, installing the packages with apt-get if needed) and skip, saying why, where that cannot be done."""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
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
    small_cnn: about 2 s each on a CPU core (MobileNet v1 took 7 s, most of it saving its checkpoints)."""
    run = RunConfig(arch="small_cnn", data_dir=str(data_dir), epochs=15, val_size=300, train_subset=32, val_subset=32,
                    batch_size=32)
    return [run, dataclasses.replace(run, batch_size=16)]


def long_run(data_dir) -> RunConfig:
    """A run to signal after its first epoch: 40 epochs of one step, about 5 s on a CPU core, time to reach its task
    while it trains (a signal may still land late: the tests that send one accept either outcome)."""
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


def kill_local_workers(n: int, timeout_s: float = TASK_S) -> list[int]:
    """SIGKILL the first `n` worker processes that local workers start (each task's `python -m
    submitit.core._submit`, under its controller, a child of this process), each as soon as it is seen: before it
    can have trained anything (its imports alone take a second). Returns their pids."""
    killed = []
    deadline = time.time() + timeout_s
    while len(killed) < n:
        assert time.time() < deadline, f"waited {timeout_s} s for a local worker to kill"
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.pid not in killed and "submitit.core._submit" in " ".join(child.cmdline()):
                    child.kill()
                    killed.append(child.pid)
        time.sleep(0.05)
    return killed


@pytest.mark.slow
def test_two_local_workers_train_two_groups_as_this_process_does(synthetic_dir, trained_here, monkeypatch, capsys):
    """... also when one worker is killed: its task starts again on its own (AI6103_RETRIES) and resumes."""
    monkeypatch.setenv("AI6103_WORKERS", "2")
    thread, outcome = in_background(lambda: executor.run_or_load_many(two_groups(synthetic_dir), progress=False))
    kill_local_workers(1)
    thread.join(TASK_S)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    same_runs(outcome["result"], trained_here(LOCAL_THREADS)[:2])
    [retry] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("retry")]
    assert re.match(r"retry 1 of 2: runs \S+ \(local worker [01], pid \d+, log \S+\): its worker process ended "
                    r"without a result; started again as local worker [01], pid \d+, its runs resuming", retry)
    workers = {call["pid"] for call in training_calls()}
    assert len(workers) == 2 and os.getpid() not in workers  # one process per task, none of them this one
    calls_before = len(training_calls())
    same_runs(executor.run_or_load_many(two_groups(synthetic_dir), progress=False), trained_here(LOCAL_THREADS)[:2])
    assert len(training_calls()) == calls_before  # finished runs are loaded, not trained again


def test_a_local_task_out_of_retries_stops_the_call_in_one_line(synthetic_dir, monkeypatch, capsys):
    """A worker killed at each start: started again once (AI6103_RETRIES=1), then the call stops in one line."""
    monkeypatch.setenv("AI6103_WORKERS", "2")
    monkeypatch.setenv("AI6103_RETRIES", "1")
    run = two_groups(synthetic_dir)[0]
    thread, outcome = in_background(lambda: executor.run_or_load_many([run], progress=False))
    first, second = kill_local_workers(2)
    thread.join(TASK_S)
    message = str(outcome.get("error"))
    assert isinstance(outcome.get("error"), executor.TasksFailed) and "\n" not in message, message
    assert re.fullmatch(rf"1 of 1 task failed: runs {run_path(run).name} \(local worker 0, pid \d+, log \S+\): its "
                        r"worker process ended without a result \(started 2 times; AI6103_RETRIES=1\); finished "
                        r"epochs are kept: run again to resume", message)
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == ["retry 1 of 1"]


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


def slurm_worker(job: str | None = None) -> psutil.Process | None:
    """The Python process of Slurm task `job` ("12_0" of an array, or "12"; None: of any task), if it runs now."""
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if "submitit.core._submit" in " ".join(process.info["cmdline"] or ()):
                env = process.environ()
                array = env.get("SLURM_ARRAY_JOB_ID")
                if "SLURM_JOB_ID" in env and job in (None, f"{array}_{env.get('SLURM_ARRAY_TASK_ID')}" if array
                                                     else env["SLURM_JOB_ID"]):
                    return process
    return None


def driver_killed_after(moment: str, runs: list[RunConfig]) -> None:
    """A driver (a Python process calling lib.running.executor.run_or_load_many on `runs`) killed with SIGKILL right
    after `moment` returned: "submit" (the job array's ids known to the driver, not yet in pending.json) or
    "sbatch" (inside submitit, before it hands the tasks their pickled calls)."""
    hook = {"submit": "executor._Slurm, 'submit'", "sbatch": "submitit.SlurmExecutor, '_submit_command'"}[moment]
    script = textwrap.dedent(f"""
        import os, signal, submitit
        from lib import RunConfig
        from lib.running import executor
        owner, name = {hook}
        real = getattr(owner, name)

        def then_killed(*args, **kwargs):
            real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)

        setattr(owner, name, then_killed)
        executor.run_or_load_many([RunConfig(**c) for c in {[dataclasses.asdict(r) for r in runs]!r}], progress=False)
    """)
    killed = subprocess.run([sys.executable, "-c", script], cwd=paths.PROJECT_ROOT, capture_output=True, text=True,
                            timeout=TASK_S)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    entries = json.loads((executor.slurm_dir() / "pending.json").read_text())
    assert sorted(entries) == sorted(run_path(run).name for run in runs)
    assert all("token" in entry and "job" not in entry for entry in entries.values())  # recorded before sbatch


@pytest.mark.slurm
def test_a_driver_killed_right_after_submitting_adopts_its_jobs_and_submits_nothing_twice(
        on_slurm, synthetic_dir, trained_here, monkeypatch):
    """Killed right after the submit call returned, before it wrote the job ids: the next call finds the job array by
    its comment and waits for it; nothing is submitted again, and the runs equal those trained here."""
    runs = two_groups(synthetic_dir)
    driver_killed_after("submit", runs)
    monkeypatch.setenv("AI6103_SLURM_WAIT", "0")
    with pytest.raises(executor.TasksSubmitted, match=r"^2 tasks still queued or running as Slurm job \d+ "):
        executor.run_or_load_many(runs, progress=False)
    jobs = [pending_job(run) for run in runs]
    assert len(set(jobs)) == 2 and len({job.split("_")[0] for job in jobs}) == 1  # one array, one task per group
    monkeypatch.setenv("AI6103_SLURM_WAIT", "1")
    same_runs(executor.run_or_load_many(runs, progress=False), trained_here(SLURM_THREADS)[:2])
    assert {folder.split("_")[0] for folder in job_folders()} == {jobs[0].split("_")[0]}  # that array, no other job
    calls = training_calls()
    assert sorted(name for call in calls for name in call["runs"]) == sorted(run_path(run).name for run in runs)
    assert os.getpid() not in {call["pid"] for call in calls}
    same_runs(executor.run_or_load_many(runs, progress=False), trained_here(SLURM_THREADS)[:2])
    assert len(training_calls()) == len(calls)  # finished: loaded, nothing submitted
    assert json.loads((executor.slurm_dir() / "pending.json").read_text()) == {}


@pytest.mark.slurm
def test_a_job_its_killed_driver_never_handed_its_task_is_cancelled_and_submitted_again(on_slurm, synthetic_dir,
                                                                                       monkeypatch):
    """Killed after sbatch answered but before submitit handed the task its pickled call: the task could never
    train, so the next call cancels it and submits the run again."""
    run = two_groups(synthetic_dir)[0]
    driver_killed_after("sbatch", [run])
    monkeypatch.setenv("AI6103_SLURM_WAIT", "0")
    [orphan] = job_folders()
    with pytest.raises(executor.TasksSubmitted, match=r"^submitted 1 task as Slurm job \d+ "):
        executor.run_or_load_many([run], progress=False)
    assert pending_job(run) != orphan
    wait_until(lambda: slurm_state(orphan) == "CANCELLED", "the orphan's cancel", timeout_s=30)
    subprocess.run(["scancel", pending_job(run)], check=True, timeout=30)


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


@pytest.mark.slurm
def test_a_task_that_ended_without_a_result_while_nobody_waited_is_started_again(on_slurm, synthetic_dir,
                                                                                 monkeypatch, capsys):
    """AI6103_SLURM_WAIT=0: a task cancelled in the queue (held, so it never started) is submitted again by the next
    call, with its retry line, and counted in pending.json."""
    run = two_groups(synthetic_dir)[0]
    monkeypatch.setenv("AI6103_SLURM_WAIT", "0")
    monkeypatch.setenv("AI6103_SLURM_EXTRA", "hold")  # never starts: the cancel lands before anything trains
    with pytest.raises(executor.TasksSubmitted):
        executor.run_or_load_many([run], progress=False)
    job = pending_job(run)
    subprocess.run(["scancel", job], check=True, timeout=30)
    wait_until(lambda: slurm_state(job) == "CANCELLED", "the cancel", timeout_s=30)
    with pytest.raises(executor.TasksSubmitted, match="^submitted 1 task as Slurm job"):
        executor.run_or_load_many([run], progress=False)
    again = pending_job(run)
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("retry")] == [
        f"retry 1 of 2: runs {run_path(run).name} (Slurm job {job}, log {executor.slurm_dir() / job}/{job}_0_log.err): "
        f"its job ended CANCELLED without a result while nobody waited; started again as Slurm job {again}, its runs "
        f"resuming from their last epoch"]
    assert json.loads((executor.slurm_dir() / "pending.json").read_text())[run_path(run).name]["retries"] == 1
    subprocess.run(["scancel", again], check=True, timeout=30)


def one_task_past_its_first_epoch(data_dir) -> tuple[RunConfig, str, threading.Thread, dict]:
    """One run submitted from a background thread, waited for until its task has saved its first epoch:
    (run, its Slurm job, the thread, the thread's outcome)."""
    run = long_run(data_dir)
    thread, outcome = in_background(lambda: executor.run_or_load_many([run], progress=False))
    wait_until(lambda: first_epoch_saved(run), "the task's first epoch")
    return run, pending_job(run), thread, outcome


@pytest.mark.slurm
def test_preempted_task_is_requeued_and_resumes(on_slurm, synthetic_dir, trained_here):
    """SIGUSR2 (what pre-emption sends) after the first epoch: requeued, not resubmitted, and resumed to the same
    result; a signal that lands after the run's end (Slurm's timing) leaves the finished task as it was."""
    run, job, thread, outcome = one_task_past_its_first_epoch(synthetic_dir)
    subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
    wait_until(lambda: slurm_state(job) in {"PENDING", "COMPLETED"}, "the requeued (or finished) task", timeout_s=60)
    if slurm_state(job) == "PENDING":  # requeued: Slurm holds it for 120 s; a cluster would wait, the test does not
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=30)
    thread.join(TASK_S)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    assert job_folders() == [job]  # requeued, not resubmitted
    same_runs(outcome["result"], trained_here(SLURM_THREADS)[2:])
    [call] = training_calls()  # the store logs a training call when it ends: an interrupted one never does
    log = (executor.slurm_dir() / job / f"{job}_0_log.out").read_text()
    if "Requeued job" in log and log.count("Job completed successfully") == 1:  # its first start was cut short
        assert len(call["epoch_seconds"]) < run.epochs  # the requeued task trained only the epochs left


def disturb(jobs: dict[str, str], stop: threading.Event) -> None:
    """Act on the Slurm tasks of the runs pending.json names, each as soon as it runs: the first task's worker
    killed (SIGKILL), the second's job cancelled (scancel); a retry's task (runs seen before) is left alone.
    `jobs` gets job id -> "killed" or "cancelled" for each done."""
    seen: set[str] = set()
    actions = ["killed", "cancelled"]
    waiting: dict[str, str] = {}
    while not stop.is_set() and (actions or waiting):
        with contextlib.suppress(OSError, ValueError):
            entries = json.loads((executor.slurm_dir() / "pending.json").read_text())
            for name, entry in entries.items():
                if "job" in entry and name not in seen:
                    if entry["job"] not in waiting and actions:
                        waiting[entry["job"]] = actions.pop(0)
                    seen.add(name)
        for job, action in list(waiting.items()):
            if action == "killed" and (worker := slurm_worker(job)) is not None:
                with contextlib.suppress(psutil.Error):  # gone meanwhile: the test reads how its task ended
                    worker.kill()
            elif action == "cancelled" and slurm_state(job) == "RUNNING":
                subprocess.run(["scancel", job], timeout=30)
            else:
                continue
            jobs[job] = waiting.pop(job)
        time.sleep(0.1)


@pytest.mark.slurm
def test_a_study_with_a_killed_worker_and_a_cancelled_task_finishes_in_one_driver_run(on_slurm, tmp_path,
                                                                                     monkeypatch, capsys):
    """The tiny study's training through the driver (scripts/run_study.py: learning_rate, then weight_decay from its
    choice, small_cnn; the notebooks left out) with AI6103_EXECUTOR=slurm: one task's worker is killed, the next
    task is cancelled, each as soon as it runs. The driver starts each again on its own (one line each), ends with
    status 0 in one run, and every run equals the same run trained undisturbed. Where a cancel lands after its task
    wrote its result (Slurm's timing), that task simply finished."""
    from lib.running import cost

    monkeypatch.setattr(executor._Slurm, "grace_s", 2.0)  # a local disk shows a result at once: no need for 15 s
    monkeypatch.setattr(executor._Slurm, "requeue_grace_s", 2.0)  # and no task here is requeued
    monkeypatch.setattr(cost, "_benchmark", lambda *args, **kwargs: {  # the plan's speed probe: not what is tested
        "train_images_per_second": 1000.0, "eval_images_per_second": 1000.0, "device": "test"})
    for name in ("AI6103_PROGRESS", "AI6103_STUDY_HOLDER", "AI6103_BRIEF", "AI6103_ARCH", "PYTHONWARNINGS"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # the driver sets them for its kernels: put back after
    monkeypatch.setenv("AI6103_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AI6103_EXECUTED_DIR", str(tmp_path / "executed"))
    spec = importlib.util.spec_from_file_location("run_study", paths.PROJECT_ROOT / "scripts" / "run_study.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    monkeypatch.setattr(driver, "run_notebook", lambda *args, **kwargs: True)
    argv = ["--profile", "tiny", "--arch", "small_cnn", "--only", "learning_rate", "weight_decay", "--quiet"]
    disturbed, stop = {}, threading.Event()
    thread = threading.Thread(target=disturb, args=(disturbed, stop), daemon=True)
    thread.start()
    try:
        assert driver.run(argv) == 0, capsys.readouterr().err
    finally:
        stop.set()
        thread.join(30)
    assert sorted(disturbed.values()) == ["cancelled", "killed"]
    retries = [line for line in capsys.readouterr().out.splitlines() if line.startswith("retry ")]
    for job, action in disturbed.items():  # a task that ended without a result was started again, once
        named = [line for line in retries if f"(Slurm job {job}, log " in line]
        lost = not (executor.slurm_dir() / job / f"{job}_0_result.pkl").exists()
        ended = {"killed": "FAILED", "cancelled": "CANCELLED"}[action]
        assert len(named) == lost and all(f"its job ended {ended} without a result; started again as Slurm job"
                                          in line for line in named), (action, retries)
    assert len(retries) == sum(not (executor.slurm_dir() / j / f"{j}_0_result.pkl").exists() for j in disturbed)

    disturbed_store = paths.runs_dir()
    monkeypatch.setenv("AI6103_RUNS_DIR", str(tmp_path / "undisturbed"))
    monkeypatch.delenv("AI6103_EXECUTOR")
    threads = torch.get_num_threads()
    torch.set_num_threads(SLURM_THREADS)  # CPU results depend on the thread count: the tasks' one core
    try:
        driver.train_ahead("tiny", None, {"learning_rate": {}, "weight_decay": {}}, ("learning_rate", "weight_decay"),
                           progress=False)
    finally:
        torch.set_num_threads(threads)
    finished = sorted(p.parent.name for p in disturbed_store.glob("*/summary.json"))
    assert len(finished) == 5 and finished == sorted(p.parent.name for p in paths.runs_dir().glob("*/summary.json"))
    for name in finished:
        got, expected = disturbed_store / name, paths.runs_dir() / name
        pd.testing.assert_frame_equal(pd.read_csv(got / "metrics.csv").drop(columns=TIMING),
                                      pd.read_csv(expected / "metrics.csv").drop(columns=TIMING), check_exact=True)
        weights, reference = load_state(got)["model"], load_state(expected)["model"]
        assert all(torch.equal(weights[k], reference[k]) for k in reference)


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
def test_two_slurm_workers_share_a_search_without_training_one_run_twice(on_slurm, tiny_config, monkeypatch, capsys):
    """A search of 4 trials over 2 settings (each asked for twice) as 2 Slurm workers sharing a journal file, one
    worker killed as soon as it runs: that task starts again on its own, and the search ends with 4 finished
    trials, each run trained to its epochs once in all, by the tasks (this process only waits)."""
    monkeypatch.setattr(executor._Slurm, "grace_s", 2.0)  # a local disk shows a result at once: no need for 15 s
    base = dataclasses.replace(tiny_config, arch="small_cnn", grad_norm_param="layers.1.conv.weight")
    plan = search.make_search(base, {"lr": {"choice": [0.05, 0.1]}}, "tiny", sampler="random")
    thread, outcome = in_background(lambda: search.optimize(plan, 4, progress=False, workers=2))
    wait_until(lambda: (worker := slurm_worker()) is not None and worker.kill() is None, "a search worker to kill")
    # (killed as it starts, long before a worker of 2 trials could end on its own)
    thread.join(TASK_S)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    study = outcome["result"]
    assert Path(plan.storage).exists() and plan.storage.endswith(".log")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    failed = [t.number for t in study.trials if t.state != TrialState.COMPLETE]  # a trial the kill cut short
    assert len(complete) == 4 and all(t.state == TrialState.FAIL for t in study.trials if t.number in failed)
    assert sorted(t.user_attrs["retry_of"] for t in study.trials if "retry_of" in t.user_attrs) == failed
    [retry] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("retry ")]
    assert re.match(r"retry 1 of 2: search worker [01] \(Slurm job \d+_[01], log \S+\): its job ended FAILED "
                    r"without a result; started again as Slurm job \d+$", retry)
    assert {t.user_attrs["slurm_job"] for t in study.trials} <= set(job_folders())
    for lr in (0.05, 0.1):
        name = run_path(dataclasses.replace(base, lr=lr)).name
        assert sum(len(call["epoch_seconds"]) for call in training_calls() if name in call["runs"]) == base.epochs
    assert os.getpid() not in {call["pid"] for call in training_calls()}

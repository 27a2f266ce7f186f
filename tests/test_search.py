"""Searches (lib.studies.search, notebook search): a bad space stops before training; a study grows by the trials
asked for without training a stored run again; a pruned trial is stored as pruned and trains on when asked for in full;
a trial whose process died is tried again; two workers share a study."""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from lib import ConfigError, run_or_load
from lib.running import store
from lib.running.cost import timing_log
from lib.studies import search

ROOT = Path(__file__).resolve().parent.parent
SPACE = {"lr": {"log": [0.01, 0.5]}, "schedule": {"choice": ["constant", "cosine"]}}


@pytest.fixture
def base(tiny_config, tiny_model):
    return dataclasses.replace(tiny_config, grad_norm_param="conv.weight")


@pytest.fixture
def trained(monkeypatch):
    """The configs lib.training.train trains, one list per call."""
    train = sys.modules["lib.training.train"]  # the module: `lib.train` is the function lib exports
    calls, real = [], train.train_together
    monkeypatch.setattr(train, "train_together",
                        lambda configs, *a, **k: calls.append(configs) or real(configs, *a, **k))
    return calls


def epochs_trained(config) -> list[int]:
    """The epochs each training call trained of `config`'s run (lib.running.runs logs every call that trained one)."""
    name = store.run_path(config).name
    records = [json.loads(line) for line in timing_log().read_text().splitlines()] if timing_log().exists() else []
    return [len(r["epoch_seconds"]) for r in records if name in r["runs"]]


@pytest.mark.parametrize("space, options, message", [
    ({"learning_rate": [0.1, 0.2]}, {}, r"space field 'learning_rate' is not a run setting; the settings a search "
                                        r"can vary are arch, lr"),
    ({"lr": {"log": [0, 1]}}, {}, r"space range of 'lr' must be \[low, high\], \{'log': \[low, high\]\} \(both > 0\)"),
    ({"lr": [-1, 0.5]}, {}, r"grid lr=-1.0: lr must be > 0, got -1.0"),
    ({"schedule": {"choice": ["cosine", "linear"]}}, {}, r"grid schedule='linear': schedule must be one of"),
    ({"lr": [0.01, 0.5]}, {"sampler": "grid"}, r"sampler 'grid' needs \{'choice': \[values\]\} for every space "
                                               r"field; lr is a range"),
    ({"lr": [0.01, 0.5]}, {"pruner": "asha"}, r"pruner must be one of \[None, 'median', 'hyperband'\], got 'asha'"),
])
def test_a_bad_space_fails_in_one_line_before_training(base, trained, space, options, message):
    with pytest.raises(ConfigError, match=message) as error:
        search.make_search(base, space, "tiny", **options)
    assert "\n" not in str(error.value) and not trained


def test_more_trials_add_to_the_same_study_and_train_no_stored_run_again(base, trained):
    first = search.optimize(search.make_search(base, SPACE, "tiny"), 3, progress=False)
    runs = [t.user_attrs["run_id"] for t in first.trials]
    assert len(trained) == len(set(runs)) == 3
    study = search.optimize(search.make_search(base, SPACE, "tiny"), 5, progress=False)
    assert study.study_name == first.study_name and [t.state for t in study.trials] == [TrialState.COMPLETE] * 5
    assert [t.user_attrs["run_id"] for t in study.trials[:3]] == runs
    assert len(trained) == 3 + len({t.user_attrs["run_id"] for t in study.trials[3:]} - set(runs))
    table = search.trials_table(search.make_search(base, SPACE, "tiny"), study)
    assert sorted(table["trial"]) == list(range(5)) and set(table["run"]) == {t.user_attrs["run_id"] for t in
                                                                             study.trials}


def test_a_pruned_trial_is_stored_unfinished_and_trains_on_when_asked_for(base, monkeypatch):
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda trial: True)  # the pruner's verdict, as given
    plan = search.make_search(base, {"lr": {"choice": [0.05]}}, "tiny", pruner="median")
    [trial] = search.optimize(plan, 1, progress=False).trials
    config = dataclasses.replace(base, lr=0.05)
    assert trial.state == TrialState.PRUNED and trial.user_attrs["epochs"] == 1
    assert store.pruned_record(config)["epoch"] == 1 and store.load_run(config) is None  # never taken as finished
    result = run_or_load(config, progress=False)
    assert epochs_trained(config) == [1] and len(result.history) == 2  # on from epoch 1's checkpoint, not again
    assert result.history["val_acc"].iloc[0] == trial.intermediate_values[1] and store.pruned_record(config) is None


def test_a_trial_whose_process_died_is_tried_again_with_its_setting(base):
    plan = search.make_search(base, SPACE, "tiny")
    study = search.open_study(plan)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    abandoned = study.ask()
    search.trial_config(plan, abandoned)
    abandoned.set_user_attr("host", socket.gethostname())
    abandoned.set_user_attr("pid", int(dead.stdout))
    study = search.optimize(plan, 1, progress=False)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[1].params == study.trials[0].params


@pytest.mark.parametrize("job_state, this_job, retried", [
    ("RUNNING", None, False), ("CANCELLED", None, True), (None, None, True), ("RUNNING", "41_0", True)])
def test_a_trial_of_a_slurm_task_that_ended_is_tried_again(base, monkeypatch, job_state, this_job, retried):
    """A running trial of Slurm task 41_0 on another node stays running while squeue shows the job active; it is
    tried again once the job has ended, is unknown to Slurm, or is the worker asking (requeued, started again)."""
    plan = search.make_search(base, SPACE, "tiny")
    study = search.open_study(plan)
    abandoned = study.ask()
    search.trial_config(plan, abandoned)
    for name, value in {"host": "another-node", "pid": 1, "slurm_job": "41_0"}.items():
        abandoned.set_user_attr(name, value)
    monkeypatch.setattr(search, "slurm_states", lambda jobs: {job: job_state for job in jobs if job_state})
    study = search._work(plan, 1, progress=False, slurm_job=this_job)
    assert [t.state for t in study.trials] == ([TrialState.FAIL, TrialState.COMPLETE] if retried
                                               else [TrialState.RUNNING])
    assert not retried or study.trials[1].params == study.trials[0].params


@pytest.mark.slow
def test_two_workers_share_a_study_without_training_one_run_twice(tiny_config):
    """Two workers (this process and the one `optimize` starts) on one study of two settings, 4 trials (each setting
    asked for twice): every run trains once, a worker asking for a run the other is training waits and loads it."""
    base = dataclasses.replace(tiny_config, arch="small_cnn", grad_norm_param="layers.1.conv.weight")
    plan = search.make_search(base, {"lr": {"choice": [0.05, 0.1]}}, "tiny", sampler="random")
    search.optimize(plan, 4, progress=False, workers=2)
    states = [t.state for t in search.open_study(plan).trials]
    assert states.count(TrialState.COMPLETE) == 4 and TrialState.FAIL not in states
    assert all(epochs_trained(dataclasses.replace(base, lr=lr)) == [2] for lr in (0.05, 0.1))


# A search process that kills itself (SIGKILL) once trial 1 has saved its second epoch: a cut at an exact moment.
CUT_SEARCH = """
import os, pickle, signal, sys
from lib.studies import search
report = search._Reporter.__call__
def report_then_die(self, configs, histories):
    report(self, configs, histories)
    if self.trial.number == 1 and self.epochs == 2:
        os.kill(os.getpid(), signal.SIGKILL)
search._Reporter.__call__ = report_then_die
search.optimize(pickle.loads(bytes.fromhex(sys.argv[1])), 3, progress=False)
"""


@pytest.mark.slow
def test_a_search_killed_mid_trial_resumes_to_the_trials_of_an_uninterrupted_one(tiny_config, tmp_path, monkeypatch):
    """A search of 3 trials killed after trial 1's second of 3 epochs, then run again: the settings of the same
    search run uninterrupted (in another run store), in order, the cut trial failed and retried first with its
    setting; the cut run trains only its last epoch, no finished run trains again. Slow (5 s): a process of its own."""
    base = dataclasses.replace(tiny_config, arch="small_cnn", grad_norm_param="layers.1.conv.weight", epochs=3)
    plan = search.make_search(base, {"lr": {"log": [0.01, 0.5]}, "schedule": {"choice": ["constant", "cosine"]}},
                              "tiny", sampler="random", seed=1)
    cut = subprocess.run([sys.executable, "-c", CUT_SEARCH, pickle.dumps(plan).hex()], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert cut.returncode == -signal.SIGKILL, cut.stderr
    resumed = search.optimize(plan, 3, progress=False)
    assert [t.state for t in resumed.trials] == [TrialState.COMPLETE, TrialState.FAIL] + [TrialState.COMPLETE] * 2
    assert resumed.trials[2].params == resumed.trials[1].params and resumed.trials[2].user_attrs["retry_of"] == 1
    configs = [search.trial_config(plan, optuna.trial.FixedTrial(t.params))[1] for t in resumed.trials]
    assert [epochs_trained(configs[i]) for i in (0, 2, 3)] == [[3], [1], [3]]  # the cut run: its last epoch only
    monkeypatch.setenv("AI6103_RUNS_DIR", str(tmp_path / "uninterrupted"))
    uninterrupted = search.optimize(plan, 3, progress=False)
    assert [t.params for t in uninterrupted.trials] == [t.params for t in resumed.trials if t.state != TrialState.FAIL]

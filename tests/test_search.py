"""Searches (lib.search, notebook 10_search): a bad space stops before training; a study grows by the trials asked
for without training a stored run again; a pruned trial is stored as pruned and trains on when asked for in full;
a trial whose process died is tried again; two workers share a study."""
from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from lib import ConfigError, run_or_load, search, store
from lib.cost import timing_log

ROOT = Path(__file__).resolve().parent.parent
SPACE = {"lr": {"log": [0.01, 0.5]}, "schedule": {"choice": ["constant", "cosine"]}}


@pytest.fixture
def base(tiny_config, tiny_model):
    return dataclasses.replace(tiny_config, grad_norm_param="conv.weight")


@pytest.fixture
def trained(monkeypatch):
    """The configs lib.train trains, one list per call."""
    train = sys.modules["lib.train"]  # the module: `lib.train` is also the function lib exports
    calls, real = [], train.train_together
    monkeypatch.setattr(train, "train_together",
                        lambda configs, *a, **k: calls.append(configs) or real(configs, *a, **k))
    return calls


def epochs_trained(config) -> list[int]:
    """The epochs each training call trained of `config`'s run (lib.runs logs every call that trained one)."""
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

"""Seeds per setting (lib.studies.seeds) on the CPU: they train as one stack, and tables, choices, figures and results
files show means with their spread and n."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib.collections
import numpy as np
import pandas as pd
import pytest

import lib
from lib.running.store import RunResult
from lib.studies import plots, sections, study
from lib.studies.results import read_section, write_section
from lib.studies.seeds import FINAL_METRICS, Setting

TRAIN_MODULE = __import__("lib.training.train", fromlist=["train_together"])


@pytest.fixture(scope="module")
def two_seeds(synthetic_dir, tmp_path_factory):
    """Two settings of 02 (lr 0.05, 0.1) with two seeds each, tiny: (settings by label, stack sizes trained)."""
    monkeypatch = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("seeds")
    for name in ("RUNS", "RESULTS", "FIGURES"):
        monkeypatch.setenv(f"AI6103_{name}_DIR", str(folder / name.lower()))
    monkeypatch.setenv("AI6103_DEVICE", "cpu")
    monkeypatch.setenv("AI6103_STACK", "4")  # on a CPU stacking does not pay, so the store would not stack
    calls = []
    real = TRAIN_MODULE.train_together
    monkeypatch.setattr(TRAIN_MODULE, "train_together",
                        lambda configs, *a, **k: calls.append([c.seed for c in configs]) or real(configs, *a, **k))
    runs = sections.section_configs("learning_rate", "tiny", str(synthetic_dir), learning_rates=[0.05, 0.1])
    runs = {label: dataclasses.replace(config, val_size=300, train_subset=96, val_subset=48, batch_size=48)
            for label, config in runs.items()}
    settings = study.run_section("learning_rate", runs, progress=False, seeds=2)
    yield settings, calls, folder
    monkeypatch.undo()


@pytest.mark.slow
def test_seeds_train_as_one_stack_and_read_as_means(two_seeds):
    settings, calls, _ = two_seeds
    assert calls == [[0, 1, 0, 1]]  # one stack: both settings, both seeds
    for setting in settings.values():
        assert setting.n == 2 and [r.config.seed for r in setting.runs] == [0, 1]
        assert setting.run_id == setting.runs[0].run_id and setting.config.seed == 0
        for key in FINAL_METRICS:  # mean and sample standard deviation of the seeds' own final numbers
            values = [r.summary[key] for r in setting.runs]
            assert setting.summary[key] == pytest.approx(np.mean(values))
            assert setting.summary[f"{key}_std"] == pytest.approx(np.std(values, ddof=1))
        curves = np.stack([r.history["val_acc"] for r in setting.runs])
        np.testing.assert_allclose(setting.history["val_acc"], curves.mean(0))
        np.testing.assert_allclose(setting.history["val_acc_std"], curves.std(0, ddof=1))
    assert len({r.summary["final_train_loss"] for s in settings.values() for r in s.runs}) == 4  # four runs


def test_best_validation_accuracy_and_its_epoch_are_one_point_of_the_mean_curve():
    """Seeds peaking at different epochs: the mean of each seed's best (0.6) belongs to no epoch."""
    curves = [[0.1, 0.6, 0.2], [0.1, 0.3, 0.6]]  # per seed, validation accuracy at epochs 1..3
    runs = [RunResult(lib.RunConfig(seed=seed), Path(f"run-{seed}"), pd.DataFrame(
        {"epoch": [1, 2, 3], "val_acc": curve, "val_loss": [1.0, 1.0, 1.0]}),
        {"final_train_loss": 1.0, "final_train_acc": 0.5, "final_val_loss": 1.0, "final_val_acc": curve[-1]})
        for seed, curve in enumerate(curves)]
    summary = Setting(runs).summary
    assert summary["best_val_epoch"] == 2  # mean curve 0.1, 0.45, 0.4
    assert summary["best_val_acc"] == pytest.approx(0.45)
    assert summary["best_val_acc_std"] == pytest.approx(np.std([0.6, 0.3], ddof=1))


@pytest.mark.slow
def test_a_choice_is_made_on_the_mean_over_seeds(two_seeds):
    settings, _, _ = two_seeds
    chosen = study.choose("learning_rate", settings)
    means = {label: s.summary["final_train_loss"] for label, s in settings.items()}
    assert chosen == min(means, key=means.get)


@pytest.mark.slow
def test_tables_records_and_figures_show_the_spread(two_seeds):
    settings, _, _ = two_seeds
    table = study.results_table(settings, "tiny")
    assert list(table["seeds"]) == [2, 2] and "val acc sd" in table.columns
    assert table["val acc sd"].iloc[0] == pytest.approx(100 * settings["lr=0.05"].summary["final_val_acc_std"])
    record = study.run_record("lr=0.05", settings["lr=0.05"])
    assert record["n_seeds"] == 2 and len(record["seed_run_ids"]) == 2
    assert set(record["std"]) == {*FINAL_METRICS, "best_val_acc"}
    assert len(record["curves_std"]["val_acc"]) == record["epochs"]
    assert record["seed_finals"] == {key: [r.summary[key] for r in settings["lr=0.05"].runs] for key in FINAL_METRICS}
    fig = plots.plot_curves(study.curves("learning_rate", settings))
    bands = [c for ax in fig.axes for c in ax.collections if isinstance(c, matplotlib.collections.PolyCollection)]
    assert len(bands) == 5 * 2  # one band per setting in each of the five panels (the fifth: the last third)
    single = plots.plot_curves({label: s.runs[0].history for label, s in settings.items()})
    assert not any(ax.collections for ax in single.axes) and not single.texts


@pytest.mark.slow
def test_every_seeds_final_model_is_scored_on_the_test_set(two_seeds):
    settings, _, _ = two_seeds
    scores = study.scores_on_test_set(settings["lr=0.05"])
    each = [lib.evaluate_test(run)["test_acc"] for run in settings["lr=0.05"].runs]
    assert scores["n_seeds"] == 2 and scores["test_acc"] == pytest.approx(np.mean(each))
    assert scores["test_acc_std"] == pytest.approx(np.std(each, ddof=1))


def test_each_seeds_finals_are_kept_in_the_results_file_and_checked():
    """A row's seed_finals read back as written (a seed's diverged loss as inf, like the means), and one whose
    lists are not n_seeds long is refused; rows without it (older files) read as before."""
    row = {"run_id": "a", "label": "lr=0.05", "config": {}, "epochs": 2, "final_train_loss": 1.0,
           "final_train_acc": 0.5, "final_val_loss": 1.5, "final_val_acc": 0.4, "best_val_acc": 0.4, "n_seeds": 2,
           "seed_finals": {key: [0.3, 0.5] for key in FINAL_METRICS}}
    row["seed_finals"]["final_val_loss"] = [1.4, float("nan")]
    write_section("learning_rate", "tiny", "synthetic", [row, {**row, "run_id": "b", "seed_finals": None}])
    read = read_section("learning_rate", profile="tiny")["runs"]
    assert read[0]["seed_finals"]["final_val_loss"] == [1.4, float("inf")]
    assert read[0]["seed_finals"]["final_val_acc"] == [0.3, 0.5] and read[1]["seed_finals"] is None
    write_section("learning_rate", "tiny", "synthetic", [{**row, "n_seeds": 3}])
    with pytest.raises(ValueError, match=r"seed_finals\['final_train_loss'\] is not a list of n_seeds numbers"):
        read_section("learning_rate", profile="tiny")


@pytest.mark.parametrize("seeds", [0, -1, 1.5, True, "2"])
def test_bad_seeds_fail_in_one_line(seeds, synthetic_dir):
    runs = sections.section_configs("learning_rate", "tiny", str(synthetic_dir))
    with pytest.raises(lib.ConfigError, match=r"^seeds must be an integer >= 1 .*got"):
        study.run_section("learning_rate", runs, progress=False, seeds=seeds)

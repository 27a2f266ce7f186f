"""Sweeps (lib.studies.sweep, notebook sweep): bad grids stop before training; a 2 x 2 grid trains, tabulates, plots
and, run again, reuses its runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lib import ConfigError
from lib.core import paths
from lib.studies import sweep
from lib.studies.profiles import base_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def setup(synthetic_dir):
    return base_config("tiny", str(synthetic_dir))


def test_a_grid_makes_every_combination_first_field_slowest(setup):
    runs = sweep.sweep_configs(setup, {"lr": [0.1, 0.05], "batch_size": [64, 128]})
    assert list(runs) == ["lr=0.1, batch_size=64", "lr=0.1, batch_size=128", "lr=0.05, batch_size=64",
                          "lr=0.05, batch_size=128"]
    assert [(c.lr, c.batch_size) for c in runs.values()] == [(0.1, 64), (0.1, 128), (0.05, 64), (0.05, 128)]
    assert sweep.varied_fields(runs) == ["lr", "batch_size"]
    assert sweep.sweep_configs(setup, {"lr": [1]})["lr=1"].lr == 1.0  # an int for a float field: one hash


@pytest.mark.parametrize("grid, message", [
    ({"learning_rate": [0.1]}, r"grid field 'learning_rate' is not a run setting; the settings a sweep can vary "
                               r"are arch, lr"),
    ({"lr": []}, r"grid field 'lr' must list at least one value, got \[\]"),
    ({"lr": 0.1}, r"grid field 'lr' must list at least one value, got 0.1"),
    ({"lr": [0.1, -1.0]}, r"grid lr=-1.0: lr must be > 0, got -1.0"),
    ({"schedule": ["cosine", "linear"]}, r"grid schedule='linear': schedule must be one of \['constant', 'cosine',"),
    ({}, r"grid must map run settings to lists of values"),
])
def test_a_bad_grid_fails_in_one_line_before_training(setup, grid, message):
    with pytest.raises(ConfigError, match=message) as error:
        sweep.configs(setup, grid)
    assert "\n" not in str(error.value)


def test_random_search_draws_from_its_ranges_reproducibly(setup):
    search = {"count": 6, "seed": 3, "ranges": {"lr": {"log": [0.01, 0.5]}, "batch_size": [32, 128],
                                                "schedule": {"choice": ["constant", "cosine"]}}}
    runs = sweep.configs(setup, None, search)
    assert runs == sweep.configs(setup, None, search) and len(runs) == 6
    assert all(0.01 <= c.lr <= 0.5 and 32 <= c.batch_size <= 128 for c in runs.values())
    batches = sweep.configs(setup, None, {"count": 4, "ranges": {"batch_size": {"log": [32, 256]}}})
    assert all(isinstance(c.batch_size, int) and 32 <= c.batch_size <= 256 for c in batches.values())
    decays = sweep.configs(setup, None, {"count": 4, "ranges": {"weight_decay": [0, 1]}})  # ints, as JSON hands 0.0
    assert len(decays) == 4 and all(0 < c.weight_decay < 1 for c in decays.values())  # a float setting: not 0 or 1
    with pytest.raises(ConfigError, match=r"random_search range of 'lr' must be \[low, high\]"):
        sweep.configs(setup, None, {"count": 2, "ranges": {"lr": {"log": [0, 1]}}})
    with pytest.raises(ConfigError, match=r"random_search must be None or"):
        sweep.configs(setup, None, {"n": 2})


@pytest.mark.notebook
def test_a_two_by_two_sweep_tabulates_plots_and_reuses_its_runs(tmp_path):
    """Through `make sweep`'s command: 4 settings train, the CSV lists them best first, the figure exists; a rerun
    trains nothing and a bad grid stops before any notebook runs."""
    env = {**os.environ, **{f"AI6103_{name}_DIR": str(tmp_path / name.lower())
                            for name in ("RUNS", "RESULTS", "FIGURES", "EXECUTED", "DATA")}}

    def sweep_command(grid: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "scripts/run_study.py", "--profile", "tiny", "--only", "sweep",
                               "--quiet", "--param", f"grid={grid}"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)

    grid = "{'lr': [0.1, 0.05], 'weight_decay': [5e-4, 1e-4]}"
    earlier = tmp_path / "figures" / "mixup" / "tiny" / "sweep_parallel.pdf"  # an earlier sweep's, of three fields
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"%PDF-")
    first = sweep_command(grid)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert not earlier.exists()  # two fields: no parallel coordinates, and none left over to pass for this sweep's
    results = tmp_path / "results" / "mixup" / "tiny"
    assert json.loads((results / "sweep.json").read_text())["figures"] == ["sweep_metric"]
    table = pd.read_csv(results / "sweep.csv")
    assert len(table) == 4 and set(table["lr"]) == {0.1, 0.05} and set(table["weight_decay"]) == {5e-4, 1e-4}
    assert list(table["val acc (%)"]) == sorted(table["val acc (%)"], reverse=True)
    assert {"train loss", "val loss", "best val acc (%)", "epochs", "wall time (s)"} <= set(table.columns)
    for suffix in (".pdf", ".png"):
        assert (tmp_path / "figures" / "mixup" / "tiny" / f"sweep_metric{suffix}").stat().st_size > 1000
    runs = {p.parent.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/summary.json")}
    assert len(runs) == 4
    # the same four settings listed in another order: the notebook runs again (its parameters changed), trains nothing
    again = sweep_command("{'lr': [0.05, 0.1], 'weight_decay': [1e-4, 5e-4]}")
    executed = (tmp_path / "executed" / "mixup" / "tiny" / "sweep.ipynb").read_text()
    assert again.returncode == 0 and "sweep: unchanged" not in again.stdout and "nothing to train" in executed
    assert {p.parent.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/summary.json")} == runs
    bad = sweep_command("{'lr': [0.1], 'wd': [1e-4]}")
    assert bad.returncode != 0 and "grid field 'wd' is not a run setting" in bad.stdout + bad.stderr
    assert {p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()} == set(runs)  # the bad grid trained nothing


def test_best_base_is_the_studys_final_setup_and_refused_when_its_results_no_longer_chain(synthetic_dir):
    from test_report import _rewrite, write_fixture_results

    write_fixture_results()  # the smoke profile's results: mixup chose alpha 0.2 on wd 5e-4, cosine, lr 0.05
    best = sweep.base_setup("best", "smoke", str(synthetic_dir))
    assert (best.lr, best.schedule, best.weight_decay, best.mixup_alpha) == (0.05, "cosine", 5e-4, 0.2)
    (paths.results_dir("smoke") / "lr_schedule.json").unlink()  # mixup does not start from lr_schedule's choice
    for section in ("learning_rate", "weight_decay", "mixup"):  # a v1 study
        _rewrite(section, lambda r: [run["config"].update(arch="mobilenet") for run in r["runs"]])
    assert sweep.base_setup("best", "smoke", str(synthetic_dir)).arch == "mobilenet"
    _rewrite("weight_decay", lambda r: r.update(chosen={"weight_decay": 1e-4}, chosen_run_id="wd1"))
    with pytest.raises(ValueError, match="mixup"):  # mixup started from wd 5e-4, which weight_decay no longer hands on
        sweep.base_setup("best", "smoke", str(synthetic_dir))


def test_sweeping_the_seed_with_several_seeds_per_setting_is_refused(setup):
    from lib.studies import study

    runs = sweep.configs(setup, {"seed": [0, 1]})
    with pytest.raises(ConfigError, match="settings that differ in seed share runs when each trains 2 seeds"):
        study.run_section("sweep", runs, progress=False, seeds=2)

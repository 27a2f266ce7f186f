"""Baselines (lib.studies.baselines, notebook baselines): one recipe for every architecture, checked before training;
`make baselines`' command trains, tabulates and plots four architectures; the paper has a baselines section and
table exactly when their results file exists."""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch
from test_report import _generated, _run, _text, check_paper, write_fixture_figures, write_fixture_results

from lib import ConfigError, report
from lib.core import paths
from lib.core.config import RunConfig
from lib.nets.device import runtime
from lib.studies import baselines, sections
from lib.studies.profiles import get_profile
from lib.studies.results import write_section

ROOT = Path(__file__).resolve().parent.parent
ARCHS = list(baselines.ARCHS)  # small_cnn, resnet18, mobilenetv2, mobilenet


def test_every_architecture_gets_one_recipe_and_mobilenetv2_reuses_section_2s_run(synthetic_dir):
    runs = baselines.baseline_configs("tiny", str(synthetic_dir), lr=1, weight_decay=5e-4)
    assert list(runs) == ARCHS and [c.arch for c in runs.values()] == ARCHS
    recipes = {json.dumps({k: v for k, v in c.key().items() if k not in ("arch", "grad_norm_param")}, sort_keys=True)
               for c in runs.values()}
    assert len(recipes) == 1  # the same epochs, data and optimiser settings for all
    assert all(c.epochs == get_profile("tiny").short_epochs and c.lr == 1.0 for c in runs.values())
    brief = baselines.baseline_configs("tiny", str(synthetic_dir), ["mobilenetv2"])["mobilenetv2"]
    lr_section = sections.section_configs("learning_rate", "tiny", str(synthetic_dir), learning_rates=[0.05])
    assert brief == lr_section["lr=0.05"]  # the default recipe: section 2's run, loaded from the store, not retrained
    assert baselines._runs_together(pd.DataFrame({"epoch": [1]})) == 1  # a run stored before stacking: alone
    for archs, message in ((["resnet18", "vgg"], "arch must be one of"), ([], "archs must list at least one"),
                           (["resnet18", "resnet18"], "archs lists an architecture twice")):
        with pytest.raises(ConfigError, match=message) as error:
            baselines.baseline_configs("tiny", str(synthetic_dir), archs)
        assert "\n" not in str(error.value)


@pytest.mark.notebook
def test_make_baselines_tabulates_and_plots_the_four_architectures(tmp_path):
    """Through `make baselines`' command in the tests' cheapest profile (tiny: 1 epoch, 128 training images)."""
    env = {**os.environ, **{f"AI6103_{name}_DIR": str(tmp_path / name.lower())
                            for name in ("RUNS", "RESULTS", "FIGURES", "EXECUTED", "DATA")}}
    # The plan's estimate would first time each new architecture here (lib.running.cost.benchmarked, as long as training
    # it): given a speed in the run store's cache, the test pays for the training alone. Only the estimate uses it.
    device = runtime().describe()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "throughput.json").write_text(json.dumps({
        f"{platform.node()}|{device}|{arch}|torch {torch.__version__}":
            {"train_images_per_second": 100.0, "eval_images_per_second": 400.0, "device": device} for arch in ARCHS}))
    done = subprocess.run([sys.executable, "scripts/run_study.py", "--profile", "tiny", "--only", "baselines",
                           "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "baselines trains in the notebook, which prints the plan" in done.stdout  # not "nothing to train"
    record = json.loads((tmp_path / "results" / "mixup" / "tiny" / "baselines.json").read_text())
    rows = {row["arch"]: row for row in record["extra"]["table"]}
    assert list(rows) == ARCHS and [run["label"] for run in record["runs"]] == ARCHS
    assert all(row["params"] > 0 and row["macs"] > 0 and row["seconds_per_epoch"] > 0 and row["epochs"] == 1
               and row["runs_together"] == 1
               for row in rows.values())
    macs = [rows[arch]["macs"] for arch in ("resnet18", "mobilenetv2", "mobilenet", "small_cnn")]
    assert macs == sorted(macs, reverse=True)  # 555, 91, 46 and 11 million
    assert record["data_kind"] == "synthetic" and record["figures"] == ["baselines_curves"]
    executed = nbformat.read(tmp_path / "executed" / "mixup" / "tiny" / "baselines.ipynb", as_version=4)
    shown = "".join(o.get("data", {}).get("text/plain", "") for c in executed.cells for o in c.get("outputs", []))
    assert all(arch in shown for arch in ARCHS) and "params (M)" in shown and "MACs (M)" in shown
    for suffix in (".pdf", ".png"):
        figure = (tmp_path / "figures" / "mixup" / "tiny" / f"baselines_curves{suffix}").read_bytes()
        assert len(figure) > 1000 and b"/Type3" not in figure


def _write_baselines(kind: str = "synthetic", seeds: int = 1) -> dict[str, dict]:
    """A baselines results file for the report fixture's profile: the table rows by architecture; with `seeds`
    > 1 every number is a mean with a standard deviation of 0.1 points."""
    sizes = {"small_cnn": (643_492, 10_871_808), "resnet18": (11_220_132, 555_468_800),
             "mobilenetv2": (2_412_212, 91_270_144), "mobilenet": (3_309_476, 46_446_592)}
    accuracies = {"small_cnn": 0.41, "resnet18": 0.62, "mobilenetv2": 0.55, "mobilenet": 0.52}
    runs, rows = [], {}
    for arch, (params, macs) in sizes.items():
        runs.append(_run(arch, dataclasses.replace(RunConfig(epochs=15), arch=arch), 1.2, 0.6, 1.6, accuracies[arch],
                         f"base-{arch}"))
        if seeds > 1:
            runs[-1].update(n_seeds=seeds, std={key: 0.001 for key in ("final_train_loss", "final_train_acc",
                                                                       "final_val_loss", "final_val_acc")})
        stacked = 3 if arch == "mobilenetv2" else 1  # section 2's run, trained stacked: a third of an epoch each
        rows[arch] = {"arch": arch, "params": params, "macs": macs, "seconds_per_epoch": (2.5 + params / 1e6) / stacked,
                      "epochs": 15, "n_seeds": seeds, "best_val_acc": accuracies[arch] + 0.004,
                      "final_val_acc": accuracies[arch], "best_val_acc_std": None, "final_val_acc_std": None,
                      "device": "NVIDIA H100 80GB HBM3", "run_id": f"base-{arch}",
                      "runs_together": stacked}
    write_section("baselines", "smoke", kind, runs, extra={"table": list(rows.values()), "seeds": 1},
                  figures=["baselines_curves"])
    return rows


def test_the_paper_has_the_baselines_table_only_when_their_results_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("AI6103_RESULTS_DIR", str(tmp_path / "results"))
    write_fixture_results()
    results, out = tmp_path / "results" / "mixup" / "smoke", tmp_path / "generated"
    absent = _generated(report.generate(results, tmp_path / "figures", out))
    assert "\\newcommand{\\BaselinesSection}{}" in absent and not (out / "tables" / "baselines.tex").exists()
    _write_baselines()
    present = _generated(report.generate(results, tmp_path / "figures", out))
    table = (out / "tables" / "baselines.tex").read_text()
    for row in ("Small CNN & 0.64 & 10.9 & 3.14 & 41.4 & 41.0", "MobileNetV2 & 2.41 & 91.3 & 1.64 & 55.4 & 55.0",
                "\\bfseries\\boldmath ResNet-18 & \\bfseries\\boldmath 11.2 & \\bfseries\\boldmath 555"):
        assert row in table, table
    assert "\\section{Architecture Baselines}" in present and "\\input{generated/tables/baselines}" in present
    assert "ranged from 41.0\\,\\% (small CNN) to 62.0\\,\\% (ResNet-18)" in present
    assert "one run per architecture" in present  # a claim with its n
    assert "for MobileNetV2, trained in a stack of runs, its share of the stack's epoch" in present  # caption
    assert ("took from 1.64\\,s (MobileNetV2, trained in a stack: its share of the stack's epoch) to 13.7\\,s "
            "(ResNet-18)") in " ".join(present.split())  # and the sentence that names the fastest
    _write_baselines(seeds=2)  # means: the interval's sentence names the two it compares, not the range's ends
    text = " ".join(_generated(report.generate(results, tmp_path / "figures", out)).split())
    assert ("The difference in validation accuracy between the two highest, ResNet-18 and MobileNetV2, $+7.0$ "
            "points, has a 95\\,\\% confidence interval of $[6.6, 7.4]$ (Welch's $t$, 2 seeds per setting), which "
            "excludes 0.") in text
    _write_baselines(kind="cifar100")  # other data than the study's: one line naming the notebook
    with pytest.raises(report.ReportError, match=r"re-run notebook notebooks/baselines\.ipynb") as error:
        report.generate(results, tmp_path / "figures", out)
    assert "\n" not in str(error.value)
    (results / "baselines.json").unlink()  # gone again: so are the section and its table
    assert _generated(report.generate(results, tmp_path / "figures", out)) == absent
    assert not (out / "tables" / "baselines.tex").exists()


@pytest.mark.skipif(not all(shutil.which(t) for t in ("latexmk", "pdflatex", "pdfinfo", "pdffonts", "pdftotext")),
                    reason="TeX or poppler-utils not installed (make setup)")
def test_the_paper_with_baselines_builds_within_its_page_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("AI6103_RESULTS_DIR", str(tmp_path / "results"))
    write_fixture_results()
    _write_baselines()
    write_fixture_figures(tmp_path / "figures")
    pdf = report.build_report(tmp_path / "results" / "mixup" / "smoke", tmp_path / "figures", tmp_path / "build")
    check_paper(pdf, (paths.report_dir() / "paper.tex").read_text(), tmp_path / "figures")
    text = " ".join(_text(pdf).split())
    assert "Architecture Baselines" in text and "Architecture baselines, one recipe" in text  # section, caption
    assert "Built from synthetic data" in text

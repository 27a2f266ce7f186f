"""The paper builds from results files and figures: page limit, fonts, figures, numbers, banner, and sentences
that follow the results (single runs, curves, gradient norms, public ranges, the author).

The fixture writes plausible results files (data_kind "synthetic") with per-epoch curves through
lib.studies.results.write_section and a small vector PDF for every figure stem, so these tests do not wait for the
notebooks.
"""
from __future__ import annotations

import dataclasses
import math
import re
import shutil
import subprocess
import types
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import pytest
import scipy.stats

from lib import report
from lib.core import paths
from lib.core.config import RunConfig
from lib.report.findings import welch_interval
from lib.studies import sections, study
from lib.studies.results import read_section, write_section
from lib.studies.seeds import FINAL_METRICS

needs_tex = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("latexmk", "pdflatex", "bibtex", "pdfinfo", "pdffonts", "pdftotext")),
    reason="TeX or poppler-utils not installed (make setup)")

FIGURES = tuple(stem for section in sections.STUDY for stem in section.figure_stems)  # declared once, there
FULL_WIDTH = tuple(stem for stem in FIGURES if stem.endswith("_curves"))  # the paper's \figfull ones
MAX_PAGES_BEFORE_REFERENCES = 6
RECORD_KEYS = ("section", "profile", "data_kind", "runs", "chosen", "chosen_run_id", "extra")  # write_section's


def _decay(epochs: int, start: float, end: float, rate: float = 5.0) -> list[float]:
    """A per-epoch curve that falls (or rises) from `start` to exactly `end`, fast at first."""
    last = math.exp(-rate)
    return [end + (start - end) * (math.exp(-rate * i / max(epochs - 1, 1)) - last) / (1 - last)
            for i in range(epochs)]


def _run(label: str, config: RunConfig, train_loss: float, train_acc: float, val_loss: float, val_acc: float,
         run_id: str, val_loss_min: tuple[int, float] | None = None) -> dict:
    """A run record with per-epoch curves ending at its final values; `val_loss_min` (epoch from 1, value) makes
    the validation loss fall to that minimum and then rise to its final value (an overfitting run)."""
    e = config.epochs
    if val_loss_min is None:
        val_losses = _decay(e, 4.6, val_loss)
    else:
        at, low = val_loss_min
        val_losses = _decay(at, 4.6, low) + [low + (val_loss - low) * i / (e - at) for i in range(1, e - at + 1)]
    curves = {"train_loss": _decay(e, 4.6, train_loss), "train_acc": _decay(e, 0.01, train_acc),
              "val_loss": val_losses, "val_acc": _decay(e, 0.01, val_acc)}
    return {"run_id": run_id, "label": label, "config": config.key(), "epochs": e,
            "final_train_loss": train_loss, "final_train_acc": train_acc, "final_val_loss": val_loss,
            "final_val_acc": val_acc, "best_val_acc": val_acc + 0.004, "best_val_epoch": e - 1, "curves": curves}


def write_fixture_results(kind: str = "synthetic", profile: str = "smoke", arch: str = "mobilenetv2") -> dict:
    """Plausible results for every section into lib.core.paths.results_dir(profile); returns the runs by name. The
    constant-rate run overfits: its validation loss is lowest (1.42) at epoch 61."""
    base = RunConfig(epochs=15, arch=arch)
    lr = {v: _run(f"lr={v:g}", dataclasses.replace(base, lr=v), tl, ta, vl, va, f"lr{i}")
          for i, (v, tl, ta, vl, va) in enumerate([(0.5, 2.412, 0.3621, 2.517, 0.3487),
                                                   (0.05, 1.734, 0.5137, 2.011, 0.4712),
                                                   (0.01, 1.902, 0.4755, 2.064, 0.4493)])}
    long = RunConfig(epochs=300, lr=0.05, arch=arch)
    cosine = dataclasses.replace(long, schedule="cosine")
    const = _run("constant", long, 0.845, 0.7423, 1.951, 0.5612, "const", val_loss_min=(61, 1.42))
    cos = _run("cosine", cosine, 0.0061, 0.9994, 1.684, 0.5783, "cos")
    wd5 = _run("wd=5e-4", dataclasses.replace(cosine, weight_decay=5e-4), 0.0213, 0.9981, 1.187, 0.6794, "wd5")
    wd1 = _run("wd=1e-4", dataclasses.replace(cosine, weight_decay=1e-4), 0.0102, 0.9990, 1.498, 0.6125, "wd1")
    mixed = dataclasses.replace(cosine, weight_decay=5e-4, mixup_alpha=0.2)
    mix = _run("mixup alpha=0.2", mixed, 0.6218, 0.8611, 1.102, 0.7018, "mix")
    sig = _run("sigmoid", dataclasses.replace(mixed, sigmoid_blocks=tuple(range(4, 11))), 0.3114, 0.9321, 1.702,
               0.6233, "sig")
    split_code = ("train_idx, val_idx = random_split(range(50000), [40000, 10000],\n"
                  "                                  generator=torch.Generator().manual_seed(0))")
    write_section("01_data", profile, kind, [], extra={
        "n_train": 40000, "n_val": 10000, "mean": [0.5068, 0.4861, 0.4403], "std": [0.2671, 0.2563, 0.2759],
        "class_prop_min": 0.00935, "class_prop_max": 0.01063, "split_code": split_code})
    write_section("02_learning_rate", profile, kind, list(lr.values()), chosen={"lr": 0.05}, chosen_run_id="lr1",
                  extra={"best_by_train_loss": 0.05, "best_by_val_acc": 0.05})
    write_section("03_lr_schedule", profile, kind, [const, cos], chosen={"schedule": "cosine"}, chosen_run_id="cos")
    write_section("04_weight_decay", profile, kind, [wd5, wd1], chosen={"weight_decay": 5e-4}, chosen_run_id="wd5")
    # 05 starts from 04's chosen run: its run without mixup is that run, same run_id.
    write_section("05_mixup", profile, kind, [{**wd5, "label": "no mixup"}, mix], chosen={"mixup_alpha": 0.2},
                  chosen_run_id="mix", extra={"test_acc": 0.7053, "test_loss": 1.087, "test_run_id": "mix"})
    # ReLU's norm rises to a peak mid-run; Sigmoid's is highest at the start and falls.
    grad = {"relu": [0.08 + 0.3 * (i / 150) * (1 - i / 300) for i in range(300)],
            "sigmoid": [0.02 + 0.1 * (1 - i / 300) ** 2 for i in range(300)]}
    # 06 starts from 05's chosen run: its ReLU run is that run, same run_id.
    write_section("06_activation", profile, kind, [{**mix, "label": "relu"}, sig], extra={"grad_norm": grad})
    write_section("07_summary", profile, kind, [mix], chosen_run_id="mix",
                  extra={"test_acc": 0.7053, "test_run_id": "mix"})
    return {"lr": lr, "const": const, "cos": cos, "wd5": wd5, "wd1": wd1, "mix": mix, "sig": sig}


def write_fixture_figures(folder: Path) -> None:
    """A small vector PDF (TrueType fonts) for every figure stem the paper uses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"pdf.fonttype": 42, "font.size": 8}):
        for stem in FIGURES:
            wide = stem in FULL_WIDTH
            fig, axes = plt.subplots(1, 4 if wide else 1, figsize=(7.0, 2.0) if wide else (3.3, 2.0),
                                     squeeze=False)  # like lib.studies.plots: curves in four panels
            for ax in axes[0]:
                ax.plot(range(10), [1 / (i + 1) for i in range(10)], label="train")
                ax.set_xlabel("epoch")
                ax.set_title(stem.replace("_", " "))
                ax.legend()
            fig.tight_layout()
            fig.savefig(folder / f"{stem}.pdf")
            plt.close(fig)


@pytest.fixture
def fixture_results(tmp_path, monkeypatch):
    """The fixture's results files, no figures: enough to generate the LaTeX, not to build the paper."""
    monkeypatch.setenv("AI6103_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("AI6103_FIGURES_DIR", str(tmp_path / "figures"))
    runs = write_fixture_results()
    return tmp_path / "results" / "smoke", tmp_path / "figures" / "smoke", tmp_path / "build", runs


@pytest.fixture(scope="module")
def built_paper(tmp_path_factory):
    """The fixture's paper, built once for the tests that read the PDF: (pdf, figures folder, runs)."""
    tmp = tmp_path_factory.mktemp("paper")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AI6103_RESULTS_DIR", str(tmp / "results"))
        patch.setenv("AI6103_FIGURES_DIR", str(tmp / "figures"))
        runs = write_fixture_results()
        write_fixture_figures(tmp / "figures" / "smoke")
        pdf = report.build_report(tmp / "results" / "smoke", tmp / "figures" / "smoke", tmp / "build")
    return pdf, tmp / "figures" / "smoke", runs


def _text(pdf: Path, first: int | None = None, last: int | None = None) -> str:
    command = ["pdftotext", "-layout"]
    if first:
        command += ["-f", str(first), "-l", str(last)]
    return subprocess.run(command + [str(pdf), "-"], check=True, capture_output=True, text=True).stdout


def _generated(out: Path) -> str:
    """numbers.tex and the rendered prose as TeX reads them: a `%` comment ends a line together with its line
    break, and every other line break or run of spaces is one space."""
    text = "".join(p.read_text() for p in [out / "numbers.tex", *sorted((out / "prose").glob("*.tex"))])
    return " ".join(re.sub(r"(?<!\\)%[^\n]*\n[ \t]*", "", text).split())


def _pages(pdf: Path) -> list[str]:
    """Each page's text in reading order, column after column (a heading is a line of its own, whatever the
    other column holds beside it)."""
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return [subprocess.run(["pdftotext", "-f", str(p), "-l", str(p), str(pdf), "-"], check=True, capture_output=True,
                           text=True).stdout for p in range(1, int(re.search(r"Pages:\s+(\d+)", info).group(1)) + 1)]


def check_paper(pdf: Path, tex: str, figures: Path) -> None:
    """The checks any built paper must pass: page limit, no Type 3 fonts, figures exist."""
    pages = _pages(pdf)
    first_ref_page = 1 + next(i for i, page in enumerate(pages) if re.search(r"^References$", page, re.MULTILINE))
    # References may start on page 7 only if everything before them fits in 6 pages.
    assert first_ref_page <= MAX_PAGES_BEFORE_REFERENCES + 1, f"references start on page {first_ref_page}"
    if first_ref_page == MAX_PAGES_BEFORE_REFERENCES + 1:
        lines = [ln for ln in pages[first_ref_page - 1].splitlines() if ln.strip()]
        assert lines[0] == "References", "text before the references on page 7"
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert "Type 3" not in fonts, fonts
    stems = report.figure_stems(tex)
    assert stems
    for stem in stems:
        assert (figures / stem).exists(), stem


@needs_tex
def test_paper_builds_from_results(built_paper):
    pdf, figures, runs = built_paper
    check_paper(pdf, (paths.report_dir() / "paper.tex").read_text(), figures)
    text = " ".join(_text(pdf).split())
    assert "Built from synthetic data" in text
    for number in (report.pct(runs["lr"][0.05]["final_val_acc"]), report.loss(runs["cos"]["final_train_loss"]),
                   report.pct(0.7053), "0.5068"):
        assert number in text, number
    assert "Zhang et al. 2018" in text or "Zhang et al., 2018" in text
    # a sentence rendered from report/prose/, in reading order (-layout interleaves the columns' lines)
    assert "than the constant rate" in " ".join(" ".join(_pages(pdf)).split())


def _last_word_box(pdf: Path, page: int, word: str) -> tuple[float, float]:
    """Where the last `word` on a page (1-based) ends: its right edge over the page's width and its bottom over
    the page's height (from the top)."""
    html = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    width, height = (float(v) for v in re.search(r'<page width="([\d.]+)" height="([\d.]+)"', html).groups())
    boxes = re.findall(r'<word xMin="[\d.]+" yMin="[\d.]+" xMax="([\d.]+)" yMax="([\d.]+)">' + re.escape(word) + "<",
                       html)
    x, y = (float(v) for v in boxes[-1])
    return x / width, y / height


@needs_tex
def test_references_follow_the_body_and_the_data_is_named_as_synthetic(built_paper):
    """No forced page break before the references: they start on the page where the body ends, or on the next
    one only when the body filled its page down to the foot of the second column; no float comes after them.
    On synthetic data every mention of CIFAR-100 (title and abstract included) says it is a stand-in, except
    the banner's 'says nothing about CIFAR-100'."""
    pdf = built_paper[0]
    pages = _pages(pdf)
    references = next(i for i, page in enumerate(pages) if re.search(r"^References$", page, re.MULTILINE))
    body_end = max(i for i, page in enumerate(pages)  # the Conclusion's last sentence
                   if "honest estimate of the recipe." in " ".join(page.split()))
    assert references in (body_end, body_end + 1), (references, body_end)
    if references == body_end + 1:
        right, bottom = _last_word_box(pdf, body_end + 1, "recipe.")
        assert right > 0.5 and bottom > 0.8, "the body ends early on the page before the references"
    after = pages[references].partition("\nReferences\n")[2] + "".join(pages[references + 1:])
    floats_after = re.findall(r"^(?:Figure|Table) \d+:", after, re.MULTILINE)
    assert not floats_after, f"{floats_after} after the references"
    text = " ".join(" ".join(pages).split())
    mentions = re.findall(r"(\S+ \S+) CIFAR-100", text)
    assert mentions and all(m.lower() in ("stand-in for", "nothing about") for m in mentions), mentions


@needs_tex
def test_findings_follow_the_results(fixture_results, monkeypatch):
    """Change which rate wins on validation: the generated sentence changes with it."""
    results, figures, build, runs = fixture_results
    record = read_section("02_learning_rate", profile="smoke")
    record["extra"]["best_by_val_acc"] = 0.01
    for run in record["runs"]:  # the smallest rate now generalises best; the chosen rate still trains best
        run["final_val_acc"] = 0.60 if run["config"]["lr"] == 0.01 else 0.40
    write_section(**{k: record[k] for k in RECORD_KEYS})
    numbers = _generated(report.generate(results, figures, build / "generated"))
    text = " ".join(numbers.split())
    assert "$\\eta=0.01$ ended with the highest validation accuracy" in text
    assert "Following the brief, we carry the rate with the lowest training loss, $\\eta=0.05$" in text


def test_tied_rates_are_reported_as_ties(fixture_results):
    """Rates that end level on a criterion are named together, never one of them as the winner."""
    results, figures, build, runs = fixture_results
    record = read_section("02_learning_rate", profile="smoke")
    for run in record["runs"]:
        run["final_val_acc"] = 0.5
    write_section(**{k: record[k] for k in RECORD_KEYS})
    numbers = _generated(report.generate(results, figures, build / "generated"))
    text = " ".join(numbers.split())
    assert "tie for the highest validation accuracy" in text
    assert not re.search(r"\$ ended with [^;.]*the highest validation accuracy", text)  # no single winner


def test_a_diverged_rate_is_never_chosen_and_is_reported_as_diverged(fixture_results):
    """lr 0.5 ends with NaN losses (diverged): its results file reads back, the choice by training loss goes to a
    rate that trained, and the paper orders it last by training loss, printed as 'diverged'."""
    results, figures, build, runs = fixture_results

    def diverge(record):
        for run in record["runs"]:
            if run["config"]["lr"] == 0.5:  # with two seeds, one of which diverged: the losses' sd is NaN too
                run.update(final_train_loss=math.nan, final_val_loss=math.nan, n_seeds=2,
                           std={key: math.nan if "loss" in key else 0.001 for key in FINAL_METRICS})

    _rewrite("02_learning_rate", diverge)
    record = read_section("02_learning_rate", profile="smoke")
    by_label = {run["label"]: run for run in record["runs"]}
    assert sections.choose_label("02_learning_rate", by_label) == "lr=0.05"
    assert sections.choose_label("02_learning_rate", {"lr=0.5": {"final_train_loss": math.nan},
                                                      "lr=0.01": {"final_train_loss": 1.9}}) == "lr=0.01"
    out = report.generate(results, figures, build / "generated")
    assert "0.01 (1.902) $<$ 0.5 (diverged);" in _generated(out)
    table = (out / "tables" / "02_learning_rate.tex").read_text()
    assert "diverged & " in table and "diverged\\,$\\pm$" not in table  # no spread of a loss that is not a number


def test_a_weight_decay_of_zero_is_written_as_zero(fixture_results):
    results, figures, build, runs = fixture_results
    _rewrite("04_weight_decay", lambda r: r["runs"][1]["config"].update(weight_decay=0.0))
    numbers = _generated(report.generate(results, figures, build / "generated"))
    assert "for $\\lambda=0$)" in numbers and "=None" not in numbers


def test_weight_decays_print_as_typed_and_never_two_alike():
    from lib.core.notation import power_of_ten

    assert [power_of_ten(v) for v in (5e-4, 1.25e-4, 0.0)] == ["5\\times10^{-4}", "1.25\\times10^{-4}", "0"]
    alike = {"a": types.SimpleNamespace(config=RunConfig(weight_decay=1e-4), history=None),
             "b": types.SimpleNamespace(config=RunConfig(weight_decay=1.0000001e-4), history=None)}
    with pytest.raises(ValueError, match="named alike in figures"):
        study.curves("04_weight_decay", alike)


def test_a_summary_older_than_the_mixup_sections_test_score_is_refused(fixture_results):
    """05 re-run with 3 seeds after 07: its chosen run keeps its id (seed 0), but the test score changed."""
    results, figures, build, runs = fixture_results
    _rewrite("05_mixup", lambda r: r["extra"].update(test_acc=0.7101, test_acc_std=0.004, n_seeds=3))
    with pytest.raises(report.ReportError, match="07_summary hold another test score .* re-run notebook "
                                                 "notebooks/07_summary.ipynb"):
        report.generate(results, figures, build / "generated")


def test_a_summary_of_results_that_no_longer_chain_is_refused(fixture_results):
    """04 re-run with another choice, 05 not: notebook 07 refuses to write a summary, naming what to re-run."""
    _rewrite("04_weight_decay", lambda r: r.update(chosen={"weight_decay": 1e-4}, chosen_run_id="wd1"))
    with pytest.raises(ValueError, match=r"05_mixup do not start from .* re-run notebook notebooks/05_mixup.ipynb"):
        study.export_summary("smoke")


def test_data_statistics_of_another_split_than_the_runs_are_refused(fixture_results):
    results, figures, build, runs = fixture_results
    _rewrite("01_data", lambda r: r["extra"].update(split_seed=1))
    with pytest.raises(report.ReportError, match=r"01_data describe the split with seed 1, the runs' split has seed 0"):
        report.generate(results, figures, build / "generated")


def test_sections_with_different_seed_counts_each_say_their_own(fixture_results):
    """02 re-run with 3 seeds, the rest with 1: the rate comparison speaks of means over 3 seeds, the schedule
    comparison of single runs, and the set-up says the counts differ."""
    results, figures, build, runs = fixture_results
    _rewrite("02_learning_rate", lambda r: [run.update(n_seeds=3, std={key: 0.001 for key in FINAL_METRICS})
                                            for run in r["runs"]])
    text = _generated(report.generate(results, figures, build / "generated"))
    assert "Averaged over 3 seeds per rate" in text and "{Cosine annealing ended with" in text
    assert "different numbers of seeds per setting, from 1 to 3" in text
    assert "\\newcommand{\\SeedWords}{seeds 0, 1 and 2}" in text and "reaches $2.27\\,s$ either side" in text


def test_the_path_and_the_weight_decay_comparison_count_the_seeds_of_their_own_rows(fixture_results):
    """04 with 3 seeds beside 03's single runs: its comparison is of means over 3 seeds; 03-05 with 3 seeds beside
    02's and 06's single runs: so is the path of chosen runs, which uses no row of 02 or 06."""
    results, figures, build, runs = fixture_results

    def three_seeds(record):
        for run in record["runs"]:
            run.update(n_seeds=3, std={key: 0.001 for key in FINAL_METRICS})

    _rewrite("04_weight_decay", three_seeds)
    out = report.generate(results, figures, build / "generated")
    text, path = " ".join(_generated(out).split()), (out / "tables" / "07_summary.tex").read_text()
    assert "(Welch's $t$, 3 seeds per setting)" in text and "$\\pm$" not in path  # the path: 03's and 05's rows
    _rewrite("05_mixup", three_seeds)
    path = (report.generate(results, figures, build / "generated") / "tables" / "07_summary.tex").read_text()
    rows = [row for row in path.splitlines() if row.endswith("\\\\")][-5:]  # the five runs, after the head
    assert [("$\\pm$" in row) for row in rows] == [False, False, True, True, False]  # 05's means only
    text = _generated(report.generate(results, figures, build / "generated"))
    assert "different numbers of seeds per setting, from 1 to 3" in text  # the set-up: over every section


def test_one_weight_decay_is_refused_in_one_line(fixture_results):
    results, figures, build, runs = fixture_results
    _rewrite("04_weight_decay", lambda r: r.update(runs=[x for x in r["runs"] if x["run_id"] == r["chosen_run_id"]]))
    with pytest.raises(report.ReportError, match=r"04_weight_decay hold 1 weight decay; the paper compares at least "
                                                 r"two .* re-run notebook notebooks/04_weight_decay.ipynb"):
        report.generate(results, figures, build / "generated")


def test_the_weight_decay_gap_is_the_difference_of_the_printed_accuracies(fixture_results):
    results, figures, build, runs = fixture_results

    def accuracies(record):
        record["runs"][0].update(final_train_acc=0.60049, final_val_acc=0.50051)  # printed 60.0 and 50.1
        record["runs"][1].update(final_train_acc=0.6, final_val_acc=0.45)

    _rewrite("04_weight_decay", accuracies)
    text = _generated(report.generate(results, figures, build / "generated"))
    assert "(9.9 against 15.0 points)" in text  # not 10.0 beside the 60.0 and 50.1 it is read with

    def level(record):  # 51.3 - 31.3 and 50.0 - 30.0: 20.0 points each as printed (one is 19.999... in floats)
        record["runs"][0].update(final_train_acc=0.513, final_val_acc=0.313)
        record["runs"][1].update(final_train_acc=0.5, final_val_acc=0.3)

    _rewrite("04_weight_decay", level)
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "the same gap between training and validation accuracy (20.0 against 20.0 points)" in text


def test_a_gain_in_points_and_a_public_range_verdict_follow_the_printed_percentages():
    from lib.studies.reference import PublicRange

    assert (report.pct(0.47151), report.pct(0.47149)) == ("47.2", "47.1")
    assert report.points(0.47151, 0.47149) == "$+0.1$"  # not +0.0, beside the 47.2 and 47.1 it is read with
    sd = {"std": {"final_val_acc": 0.0004}, "n_seeds": 3}  # 47.1 against 47.1: no difference, whatever the digits
    assert report.difference({"final_val_acc": 0.4714, **sd}, {"final_val_acc": 0.4706, **sd})["difference"] == "+0.0"
    assert report.marked(0.43996, PublicRange(44, 47, "test")) == "44.0"  # printed 44.0: no dagger for 44-47
    assert report.marked(0.43949, PublicRange(44, 47, "test")) == "43.9" + report.DAGGER


def test_the_paper_shows_every_declared_figure_and_no_other():
    """Figure names are declared once, in lib.studies.sections; the paper includes exactly those."""
    shown = {Path(stem).stem for stem in report.figure_stems((paths.report_dir() / "paper.tex").read_text())}
    assert shown == set(FIGURES)


def test_missing_section_names_the_notebook(tmp_path):
    with pytest.raises(report.ReportError, match=r"^no results of profile 'full' in .* yet: make all PROFILE=full "
                                                 r"runs the study, .* run notebook notebooks/01_data.ipynb"):
        report.load_results(tmp_path)


def test_one_paper_takes_one_profile_and_one_kind_of_data(fixture_results):
    """Sections from different profiles or data never meet in one paper, and `make report PROFILE=...` is
    the profile the results must come from: each case one line naming what to re-run."""
    results, figures, build, runs = fixture_results
    with pytest.raises(report.ReportError, match=r"not from profile 'full'"):
        report.load_results(results, profile="full")  # the fixture is the smoke profile's
    assert report.load_results(results, profile="smoke")
    quick = write_section("04_weight_decay", "quick", "synthetic", [runs["wd5"], runs["wd1"]],
                          chosen={"weight_decay": 5e-4}, chosen_run_id="wd5")
    shutil.copy(quick, results)  # a file copied in from another profile's folder
    with pytest.raises(report.ReportError, match=r"results of 04_weight_decay \(quick\) are not from profile 'smoke'"):
        report.load_results(results)
    write_section("04_weight_decay", "smoke", "cifar100", [runs["wd5"], runs["wd1"]], chosen={"weight_decay": 5e-4},
                  chosen_run_id="wd5")
    with pytest.raises(report.ReportError, match=r"04_weight_decay \(cifar100\) are not from data_kind 'synthetic'"):
        report.load_results(results)


def test_generated_tables_and_banner(fixture_results):
    results, figures, build, runs = fixture_results
    out = report.generate(results, figures, build / "generated")
    numbers = _generated(out)
    assert "\\newcommand{\\BestLr}{0.05}" in numbers
    assert "Built from synthetic data" in numbers
    assert "\\newcommand{\\WdChosen}{\\ensuremath{5\\times10^{-4}}}" in numbers
    for section in report.SECTIONS:
        assert (out / "tables" / f"{section}.tex").exists(), section
    assert report.pct(runs["wd1"]["final_val_acc"]) in (out / "tables" / "04_weight_decay.tex").read_text()


def test_real_data_has_no_banner(tmp_path, monkeypatch):
    monkeypatch.setenv("AI6103_RESULTS_DIR", str(tmp_path / "results"))
    write_fixture_results(kind="cifar100", profile="full")
    numbers = _generated(report.generate(tmp_path / "results" / "full", tmp_path, tmp_path / "gen"))
    assert "\\newcommand{\\DataBanner}{}" in numbers


@pytest.mark.parametrize("section", ["02_learning_rate", "03_lr_schedule", "04_weight_decay", "05_mixup",
                                     "06_activation", "07_summary"])
def test_a_record_without_the_run_it_hands_on_names_its_notebook(fixture_results, section):
    """The paper finds each chosen run by its chosen_run_id and never re-decides a choice: a record without it
    (or, in 06, whose ReLU run is not 05's chosen run) stops the report with one line naming the notebook."""
    results, figures, build, runs = fixture_results
    record = read_section(section, profile="smoke")
    if section == "06_activation":
        record["runs"][0] = runs["wd5"]  # a ReLU run without mixup, while 05 chose mixup
    else:
        record["chosen_run_id"] = None
    write_section(**{k: record[k] for k in RECORD_KEYS})
    with pytest.raises(report.ReportError, match=rf"^results of {section} .*[:;] re-run notebook "
                                                 rf"notebooks/{section}\.ipynb\b") as error:
        report.generate(results, figures, build / "generated")
    assert "\n" not in str(error.value)


def test_prose_templates_render_fully_and_strictly(fixture_results):
    """No template syntax reaches the LaTeX, and a value a template names but is not given fails loudly."""
    results, figures, build, runs = fixture_results
    out = report.generate(results, figures, build / "generated")
    for name in report.PROSE:
        text = (out / "prose" / f"{name}.tex").read_text()
        assert "\\newcommand" in text, name
        assert not re.search(r"\\(VAR|BLOCK|#)\{|^\s*%%", text, re.MULTILINE), name
        with pytest.raises(jinja2.UndefinedError):
            report.render_prose(name, {})


def test_official_kit_is_used_when_present(tmp_path):
    assert report.choose_style(tmp_path) == ("ai6103aaai", "plainnat", False)
    (tmp_path / "aaai2026.sty").write_text("")
    (tmp_path / "aaai2026.bst").write_text("")
    assert report.choose_style(tmp_path) == ("aaai2026", "aaai2026", True)


def _rewrite(section: str, change) -> None:
    """Read a fixture section's results, let `change(record)` edit it, write it back."""
    record = read_section(section, profile="smoke")
    change(record)
    write_section(**{k: record[k] for k in RECORD_KEYS})


def _give_seeds(record: dict, n: int, half_range: float = 0.004) -> None:
    """Give every run of a results record n seeds, evenly spaced over its final numbers +- `half_range`, as
    lib.studies.study.run_record writes them: n_seeds, each seed's finals (seed_finals) and their sd; the means stay."""
    offsets = np.linspace(-half_range, half_range, n)
    for run in record["runs"]:
        finals = {key: [run[key] + offset for offset in offsets] for key in FINAL_METRICS}
        run.update(n_seeds=n, seed_finals=finals, std={key: float(np.std(v, ddof=1)) for key, v in finals.items()})


@pytest.mark.parametrize("seeds", [1, 2])
def test_comparisons_say_how_many_runs_they_rest_on(fixture_results, seeds):
    """n is the runs per setting in the results files (a row's n_seeds): the set-up says it once with the seeds
    used. n = 1: the set-up says once what single runs can show and no comparison opens with it ('single run'
    at most twice in the prose). n = 2: comparisons are of means, with mean +- sd in the tables and each difference's
    95 % Welch interval, excluding 0 or not, and whether every seed of one setting beat every seed of the other;
    never a 'spread' (seeds 0.4 points either side of the fixture's means: sd 0.57 points, half-width 2.4)."""
    results, figures, build, runs = fixture_results
    if seeds == 2:
        for section in sections.TRAINING:
            _rewrite(section, lambda r: _give_seeds(r, 2))
    out = report.generate(results, figures, build / "generated")
    text, table = _generated(out), (out / "tables" / "03_lr_schedule.tex").read_text()
    if seeds == 1:
        assert "\\newcommand{\\SeedWords}{seed 0}" in text
        assert "Each setting was trained once, so every comparison below is between single runs" in text
        assert "bouthillier2021accounting" in text and "Welch" not in text
        assert "\\WdSentence}{At the end, $\\lambda=5\\times10^{-4}$ had the higher validation" in text
        assert "\\ScheduleSentence}{Cosine annealing ended with a higher validation accuracy" in text
        assert text.count("single run") <= 2 and "confidence interval" not in text and "$\\pm$" not in table
        assert "\\newcommand{\\LrOrderJudged}{}" in text
    else:
        assert "\\newcommand{\\SeedWords}{seeds 0 and 1}" in text
        assert "Each setting was trained with 2 seeds; every number is the mean over them" in text
        assert "Welch's $t$~\\citep{welch1947generalization}" in text and "reaches $4.30\\,s$ either side" in text
        assert "Over the last third of training (epochs 200--300) the cosine setting's mean validation accuracy" in text
        assert "\\,$\\pm$\\,0.6" in table  # mean +- sd
        assert "+ mixup $\\alpha=0.2$ & \\bfseries\\boldmath 70.2\\,$\\pm$\\,0.6 &" in (
            out / "tables" / "07_summary.tex").read_text()  # the summary table too
        assert ("The difference in validation accuracy, $+1.7$ points, has a 95\\,\\% confidence interval of "
                "$[-0.7, 4.1]$ (Welch's $t$, 2 seeds per setting), which holds 0: these seeds cannot tell the cosine "
                "schedule and the constant rate apart, although every seed of the cosine schedule beat every seed "
                "of the constant rate.") in text
        assert ("$+6.6$ points, has a 95\\,\\% confidence interval of $[4.3, 9.1]$ (Welch's $t$, 2 seeds per "
                "setting), which excludes 0; every seed of $\\lambda=5\\times10^{-4}$ beat every seed of "
                "$\\lambda=1\\times10^{-4}$.") in text
        assert "\\LrOrderJudged}{ The difference in validation accuracy between the first two rates, $+2.2$" in text
        assert "cannot tell $\\eta=0.05$ and $\\eta=0.01$ apart, although every seed of $\\eta=0.05$" in text
        assert "single run" not in text and "spread" not in text.lower()
    assert "generalised better" not in text


def test_a_difference_over_seeds_has_the_welch_interval_scipy_gives():
    """The 95 % interval from means, sds and n alone equals scipy's Welch t-test on the per-seed values (n = 2
    against 3, unequal variances); it excludes 0 or not; every seed above every other, or not."""
    def run(values):
        return {"final_val_acc": float(np.mean(values)), "n_seeds": len(values),
                "std": {"final_val_acc": float(np.std(values, ddof=1))}, "seed_finals": {"final_val_acc": values}}

    for a, b, excludes, apart in [([0.712, 0.718], [0.695, 0.701, 0.690], True, "above"),  # clear and separated
                                  ([0.70, 0.74], [0.69, 0.715, 0.705], False, None),  # wide, overlapping
                                  ([0.702, 0.706], [0.690, 0.698, 0.701], False, "above")]:  # n = 2: too few
        low, high = scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
        assert welch_interval(np.mean(a), np.std(a, ddof=1), 2, np.mean(b), np.std(b, ddof=1), 3) == pytest.approx(
            (low, high), rel=1e-9)
        found = report.difference(run(a), run(b))
        assert (found["low"], found["high"]) == (report.pct(low), report.pct(high))
        assert found["excludes_zero"] is excludes and (found["n"], found["other_n"]) == (2, 3)
        assert found["all"] == apart and report.difference(run(b), run(a))["all"] == (apart and "below")
        assert found["difference"] == f"{float(report.pct(np.mean(a))) - float(report.pct(np.mean(b))):+.1f}"


def test_a_difference_needs_two_seeds_each_and_words_losses_in_loss_units():
    """A single run on either side has no interval; a loss difference is in loss units; results without per-seed
    values (older files) give the interval but say nothing of every seed."""
    single = {"final_val_acc": 0.7, "final_val_loss": 1.2}
    several = {"final_val_acc": 0.6, "final_val_loss": 1.5, "n_seeds": 3,
               "std": {"final_val_acc": 0.01, "final_val_loss": 0.02}}
    assert report.difference(single, several) is None and report.difference(several, single) is None
    found = report.difference(several, {**several, "final_val_loss": 1.4}, "final_val_loss")
    half = scipy.stats.t.ppf(0.975, 4) * 0.02 * np.sqrt(2 / 3)
    assert found["difference"] == "+0.100" and found["loss"] and found["all"] is None
    assert (found["low"], found["high"]) == (f"{0.1 - half:.3f}", f"{0.1 + half:.3f}") and found["excludes_zero"]


@pytest.mark.parametrize("shape", ["rose", "overfit", "falling", "flat", "diverged", "ended_higher"])
def test_validation_loss_sentences_come_from_the_curve(fixture_results, shape):
    """The constant-rate run's validation loss: where it was lowest and how far it rose when it rose by more than
    5 % of its minimum, with what that means: over-confidence while the accuracy held within 3 points of its peak,
    overfitting when the accuracy fell too; else that it kept falling, stayed flat, diverged or ended too soon."""
    results, figures, build, runs = fixture_results
    curve = {"rose": None, "overfit": None, "falling": [3.0 - i / 100 for i in range(300)],  # lowest at the end
             "flat": [2.0] * 99 + [1.5] + [1.5 + 0.05 * i / 200 for i in range(1, 201)],  # +3.3 % from epoch 100
             "diverged": [2.0, 1.5] + [math.nan] * 298, "ended_higher": [2.0, 1.5, 1.6]}[shape]
    if curve:
        _rewrite("03_lr_schedule", lambda r: r["runs"][0]["curves"].update(val_loss=curve))
    if shape == "overfit":  # the accuracy peaks at 60 % in epoch 100 and falls 4 points to the end
        _rewrite("03_lr_schedule", lambda r: r["runs"][0]["curves"].update(
            val_acc=[0.6 * min(i, 100) / 100 - 0.04 * max(0, i - 100) / 199 for i in range(300)]))
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    expected = {"rose": "The constant rate's validation loss was lowest at epoch 61 (1.420) and then rose to 1.951 "
                        "(1.4 times its minimum), while its validation accuracy ended at its peak of 56.1\\,\\%: the "
                        "network grew more confident on the validation images it got wrong",
                "overfit": "The constant rate's validation loss was lowest at epoch 61 (1.420) and rose to 1.951, and "
                           "its validation accuracy fell 4.0 points from its peak of 60.0\\,\\%: it overfitted",
                "falling": "The constant rate's validation loss kept falling to the last epoch (0.010)",
                "flat": "The constant rate's validation loss was lowest at epoch 100 (1.500) and ended close to it "
                        "(1.550)",
                "diverged": "The constant rate's validation loss was no longer finite from epoch 3: the run diverged",
                "ended_higher": "The constant rate's validation loss was lowest at epoch 2 (1.500) and ended at "
                                "1.600, too few epochs later to speak of a trend"}
    assert expected[shape] in text
    assert "settles at a level set by the step size" not in (paths.report_dir() / "paper.tex").read_text()


def _phase_curves(val: list[float], train: list[float] | None = None) -> dict:
    return {"val_acc": val, "train_acc": train or val, "val_loss": [1.0] * len(val), "train_loss": [1.0] * len(val)}


def test_a_lead_change_is_found_with_its_phases_and_underfitting():
    """a trails b by up to 5 points until epoch 60 of 90 and then leads: 'overtook' with the epochs and the lead;
    its training accuracy 16 points behind at b's largest lead is underfitting, 2 points behind is not. A lead
    within 0.5 points at every epoch's end is 'level'; a leader never behind by more is 'throughout'."""
    epochs = range(90)
    b = [0.5] * 90
    a = [0.5 - 0.05 * min(i, 30) / 30 if i < 60 else 0.56 for i in epochs]  # lowest (-5 points) from epoch 31
    found = report.lead_phases(_phase_curves(a, [0.66] * 90), _phase_curves(b, [0.82] * 90))
    assert (found["kind"], found["leader"], found["until"], found["from_epoch"]) == ("overtook", "a", 60, 61)
    assert (found["other_lead"], found["other_lead_epoch"], found["lead"]) == ("5.0", 31, "6.0")
    assert found["underfit"] and (found["leader_train"], found["other_train"]) == ("66.0", "82.0")
    assert not report.lead_phases(_phase_curves(a, [0.80] * 90), _phase_curves(b, [0.82] * 90))["underfit"]
    assert report.lead_phases(_phase_curves(b), _phase_curves([x + 0.004 for x in b]))["kind"] == "level"
    ahead = report.lead_phases(_phase_curves([x - 0.004 * (i < 10) + 0.02 for i, x in enumerate(b)]), _phase_curves(b))
    assert (ahead["kind"], ahead["leader"]) == ("throughout", "a")


def test_a_late_gain_is_told_apart_from_an_early_one():
    """Over the last third of 90 epochs a gains 4 points while b stays: most of a's 4-point advantage is late.
    With the same advantage already there at epoch 60, it is not."""
    b = [0.6] * 90
    late = [0.6] * 60 + [0.6 + 0.04 * (i + 1) / 30 for i in range(30)]
    found = report.late_gain(_phase_curves(late), _phase_curves(b))
    assert (found["from_epoch"], found["a"]["gain"], found["b"]["gain"], found["advantage"]) == (60, "+4.0", "+0.0",
                                                                                                  "+4.0")
    assert found["mostly_late"]
    early = [0.6 + 0.04 * min(i, 30) / 30 for i in range(90)]
    assert not report.late_gain(_phase_curves(early), _phase_curves(b))["mostly_late"]


def test_the_weight_decay_section_describes_its_phases(fixture_results):
    """The larger decay trailing until epoch 200 of 300 and overtaking: the paper says who led until when, by how
    much, that it fitted more slowly, and ties it to the effective learning rate; without a lead change it does not."""
    results, figures, build, runs = fixture_results
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "never trailed in validation accuracy" in text and "The phases fit this mechanism" not in text
    large = {"val_acc": [0.55 if i < 200 else 0.68 for i in range(300)],  # 5 points behind, then 7 ahead
             "train_acc": [0.66 if i < 200 else 0.99 for i in range(300)]}
    small = {"val_acc": [0.6] * 300, "train_acc": [0.82 if i < 200 else 0.99 for i in range(300)]}
    _rewrite("04_weight_decay", lambda r: [run["curves"].update(large if run["config"]["weight_decay"] == 5e-4
                                                                else small) for run in r["runs"]])
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "$\\lambda=1\\times10^{-4}$ led in validation accuracy until epoch 200 of 300" in text
    assert "fitted the training split more slowly (training accuracy 66.0\\,\\% against" in text
    assert "overtook it at epoch 201" in text and "The phases fit this mechanism" in text


def test_gradient_norms_compare_relu_with_sigmoid(fixture_results):
    """The paragraph gives ReLU's norm over Sigmoid's (median over epochs, last epoch), and a norm whose peak is
    its first epoch is 'highest at the start', not 'peaks ... in epoch 1'."""
    results, figures, build, runs = fixture_results
    text = _generated(report.generate(results, figures, build / "generated"))
    norms = read_section("06_activation", profile="smoke")["extra"]["grad_norm"]
    ratios = [r / s for r, s in zip(norms["relu"], norms["sigmoid"], strict=True)]
    median = sorted(ratios)[len(ratios) // 2 - 1: len(ratios) // 2 + 1]  # an even count: the mean of the middle two
    assert (f"ReLU's norm was a median {sum(median) / 2:#.3g} times Sigmoid's, and {ratios[-1]:#.3g} times at the "
            f"last epoch") in text
    assert "with Sigmoid in blocks 4--10 it was highest at the start (0.120)" in text
    assert "in epoch 1 " not in text

    def last_gone(record):  # Sigmoid's last norm 0 (or ReLU's not a number): no ratio at the last epoch
        record["extra"]["grad_norm"]["sigmoid"][-1] = 0.0
        record["extra"]["grad_norm"]["relu"] = [0.5] * len(record["extra"]["grad_norm"]["relu"])

    _rewrite("06_activation", last_gone)
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert f"Over the {len(ratios) - 1} epochs where both norms were numbers and Sigmoid's above zero" in text
    assert "times at the last epoch" not in text and "With ReLU the gradient norm stayed at 0.500;" in text


@pytest.mark.parametrize("differ", [False, True])
def test_the_learning_rate_discussion_follows_whether_rankings_differ(fixture_results, differ):
    """The clause on training and validation rankings that differ is there only when they do."""
    results, figures, build, runs = fixture_results
    if differ:  # the smallest rate now validates best; 0.05 still trains best
        _rewrite("02_learning_rate", lambda r: r["runs"][2].update(final_val_acc=0.60))
    text = _generated(report.generate(results, figures, build / "generated"))
    assert ("Here the two orders differ" in text) == differ
    assert ("Here the two orders agree" in text) == (not differ)
    assert "neither run" not in (paths.report_dir() / "paper.tex").read_text()


def test_the_learning_rate_orders_follow_the_printed_values_and_the_reason_fits_them(fixture_results):
    """Training losses 1.7341 and 1.7344 print alike: a tie, '=' in the order. The smallest rate validates best
    while a larger one trains best: no regulariser story, which would explain the opposite."""
    results, figures, build, runs = fixture_results
    losses, accuracies = {0.5: 1.7341, 0.05: 1.7344, 0.01: 2.0}, {0.5: 0.40, 0.05: 0.45, 0.01: 0.50}
    _rewrite("02_learning_rate", lambda r: [run.update(final_train_loss=losses[run["config"]["lr"]],
                                                       final_val_acc=accuracies[run["config"]["lr"]])
                                            for run in r["runs"]])
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "0.5 (1.734) $=$ 0.05 (1.734) $<$ 0.01 (2.000)" in text
    assert "$\\eta=0.5$ and $\\eta=0.05$ tie for the lowest training loss" in text
    assert "is not the one that does best on held-out images" in text and "noise of a large rate" not in text


def test_a_mixup_choice_between_accuracies_printed_alike_says_what_decided(fixture_results):
    results, figures, build, runs = fixture_results
    _rewrite("05_mixup", lambda r: [run.update(final_val_acc=0.6794) for run in r["runs"]])
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "validation accuracy ended level with that without it" in text
    assert "final recipe, on digits beyond those printed." in text


def test_a_test_accuracy_over_seeds_is_said_to_be_a_mean_of_models(fixture_results):
    results, figures, build, runs = fixture_results
    for section in ("05_mixup", "07_summary"):
        _rewrite(section, lambda r: r["extra"].update(n_seeds=3, test_acc_std=0.004))
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert ("reached a test accuracy of 70.5\\,$\\pm$\\,0.4\\,\\% (mean $\\pm$ standard deviation over its 3 "
            "models") in text
    assert text.count("test accuracy of 70.5") == 1  # once, in its section
    assert "that a model trained with this recipe reaches" in text and "this one trained model" not in text


def test_a_test_accuracy_over_seeds_is_printed_with_its_sd_and_n():
    one = {"test_acc": 0.755, "test_run_id": "mix", "n_seeds": 1}
    assert study.test_accuracy_line(one) == "test accuracy 75.50 % (run mix, evaluated once)"
    three = {**one, "n_seeds": 3, "test_acc_std": 0.0031}
    assert study.test_accuracy_line(three) == ("test accuracy 75.50 ± 0.31 % (mean ± sd over 3 seeds, each model "
                                               "evaluated once)")


def test_summary_table_is_the_path_of_chosen_runs(fixture_results):
    """Constant rate, + cosine, + the chosen weight decay, + mixup, then the Sigmoid variant after a rule; not the
    weight decay that was not chosen; the final model's row bold, maths included, with the test accuracy."""
    results, figures, build, runs = fixture_results
    decayed = read_section("04_weight_decay", profile="smoke")["chosen_run_id"]
    _rewrite("05_mixup", lambda r: [run.update(final_val_acc=0.3333) for run in r["runs"] if run["run_id"] == decayed])
    out = report.generate(results, figures, build / "generated")
    rows = [ln for ln in (out / "tables" / "07_summary.tex").read_text().splitlines() if ln.endswith("\\\\")][-5:]
    settings = [row.split(" & ")[0].replace(report.BOLD, "") for row in rows]
    assert settings == ["constant $\\eta=0.05$", "+ cosine schedule", "+ $\\lambda=5\\times10^{-4}$",
                        "+ mixup $\\alpha=0.2$", "Sigmoid, blocks 4--10 (variant)"]
    assert all(cell.startswith("\\bfseries\\boldmath ") for cell in rows[3].split(" & "))
    assert report.pct(0.7053) in rows[3] and report.pct(0.7053) not in rows[0] + rows[4]
    assert "33.3" in rows[2]  # the weight-decay row as 05 read it: the mixup step compares one section's rows
    assert "\\midrule\nSigmoid" in (out / "tables" / "07_summary.tex").read_text()


def test_an_explicit_author_is_printed_escaped(fixture_results):
    results, figures, build, runs = fixture_results
    text = _generated(report.generate(results, figures, build / "generated", author="Ada L_v & {Co} 100%"))
    assert "\\newcommand{\\PaperAuthor}{Ada L\\_v \\& \\{Co\\} 100\\%}" in text


@pytest.mark.parametrize("author", [None, "", "  "])
def test_without_an_author_the_paper_shows_a_placeholder_never_a_guessed_name(fixture_results, author):
    """No author given (or a blank one): a visible placeholder saying how to set it, whatever git knows."""
    results, figures, build, runs = fixture_results
    text = _generated(report.generate(results, figures, build / "generated", author=author))
    assert "\\newcommand{\\PaperAuthor}{\\fbox{Your name here: make report AUTHOR=" in text


def test_make_report_says_how_to_set_the_author(fixture_results, capsys, monkeypatch):
    results, figures, build, runs = fixture_results
    monkeypatch.setattr("lib.report.build.generate", lambda **kwargs: build)  # no files: only the message
    assert report.main(["--generate-only", "--profile", "smoke"]) == 0
    assert 'make report PROFILE=smoke AUTHOR="Your Name"' in capsys.readouterr().err


def test_a_failed_report_leaves_no_stale_paper(tmp_path, monkeypatch, capsys):
    """The results make no paper (none there): the previous paper.pdf is renamed paper.stale.pdf, and the one-line
    error says so."""
    monkeypatch.setenv("AI6103_REPORT_DIR", str(tmp_path / "papers"))
    paper = tmp_path / "papers" / "smoke" / "paper.pdf"
    paper.parent.mkdir(parents=True)
    paper.write_bytes(b"the paper of earlier results")
    assert report.main(["--profile", "smoke", "--author", "A. Author"]) == 1
    assert not paper.exists()
    assert paper.with_name("paper.stale.pdf").read_bytes() == b"the paper of earlier results"
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: no results of profile 'smoke'") and line.endswith(f"is now {paper.parent}/"
                                                                                      "paper.stale.pdf")


def test_the_report_folder_variable_moves_the_paper(tmp_path, monkeypatch):
    """AI6103_REPORT_DIR: the paper (and its build) go there; a successful build removes an older stale paper."""
    monkeypatch.setenv("AI6103_REPORT_DIR", str(tmp_path / "papers"))
    built = tmp_path / "built.pdf"
    built.write_bytes(b"the new paper")
    monkeypatch.setattr("lib.report.build.generate", lambda **kwargs: tmp_path)  # latexmk is tested elsewhere
    monkeypatch.setattr("lib.report.build.build_report", lambda **kwargs: built)
    stale = tmp_path / "papers" / "smoke" / "paper.stale.pdf"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a paper of earlier results")
    assert report.main(["--profile", "smoke", "--author", "A. Author"]) == 0
    assert (tmp_path / "papers" / "smoke" / "paper.pdf").read_bytes() == b"the new paper" and not stale.exists()
    assert paths.paper_build_dir("smoke") == tmp_path / "papers" / "build" / "smoke"


def test_public_ranges_appear_only_on_official_data_in_the_full_profile(tmp_path, monkeypatch, fixture_results):
    """Official CIFAR-100, full profile: each table has the public validation range ('--' without one) and daggers
    a result outside it, the summary also the final model's public test range, and the captions say so. On
    synthetic data (the fixture) there is no such column or note."""
    results, figures, build, runs = fixture_results
    synthetic = report.generate(results, figures, build / "generated")
    assert not any("Public" in f.read_text() for f in (synthetic / "tables").glob("*.tex"))
    assert "Public:" not in _generated(synthetic)
    monkeypatch.setenv("AI6103_RESULTS_DIR", str(tmp_path / "official"))
    write_fixture_results(kind="cifar100", profile="full", arch="mobilenet")
    out = report.generate(tmp_path / "official" / "full", figures, tmp_path / "gen", profile="full")
    lr = (out / "tables" / "02_learning_rate.tex").read_text()
    assert "$\\eta=0.05$ & \\bfseries\\boldmath 1.734" in lr and "47.1$^\\dagger$ & \\bfseries\\boldmath 44--47" in lr
    assert "Sigmoid, blocks 4--10 & 0.311 & 93.2 & 1.702 & 62.3 & -- \\\\" in (
        out / "tables" / "06_activation.tex").read_text()
    summary = (out / "tables" / "07_summary.tex").read_text()
    assert "70.5 & \\bfseries\\boldmath 69.7--70.9 \\\\" in summary  # the final model's test accuracy, within
    text = _generated(out)
    assert "the range public course reports give for the same model and settings~\\citep{ai6103reports}" in text
    assert "; $^\\dagger$\\,outside it" in text and "; --: none for this setting" in text
    assert ("within the range public reports give for this model and recipe "
            "(69.7--70.9\\,\\%~\\citep{ai6103reports})") in " ".join(text.split())
    # MobileNetV2 has a public range for its final test accuracy only (from stronger recipes): no validation
    # column anywhere (a column of dashes says nothing), and the test accuracy placed above the range by how much.
    monkeypatch.setenv("AI6103_RESULTS_DIR", str(tmp_path / "v2"))
    write_fixture_results(kind="cifar100", profile="full", arch="mobilenetv2")
    _rewrite_in = tmp_path / "v2" / "full"
    out = report.generate(_rewrite_in, figures, tmp_path / "gen2", profile="full")
    assert not any("Public" in (out / "tables" / f"{name}.tex").read_text() for name in sections.TRAINING)
    assert "Public" in (out / "tables" / "07_summary.tex").read_text()
    text = " ".join(_generated(out).split())
    assert ("70.5\\,\\% test accuracy, within the range public reports give for this model trained with stronger "
            "recipes than ours (68--74\\,\\%~\\citep{mobilenetv2cifar})") in text


@pytest.mark.parametrize("seeds", [1, 2])
def test_the_curve_captions_say_what_lines_and_bands_are(fixture_results, seeds):
    """The band's meaning is in the captions of the curve and gradient-norm figures (\\BandNote), not in the
    figures: empty with one seed per setting, 'Lines are means over n seeds; bands, ...' with n > 1."""
    results, figures, build, runs = fixture_results
    if seeds == 2:
        _rewrite("02_learning_rate", lambda r: [run.update(n_seeds=2) for run in r["runs"]])
    text = _generated(report.generate(results, figures, build / "generated"))
    note = "\\newcommand{\\BandNote}{{} Lines are means over 2 seeds; bands, $\\pm1$ standard deviation.}"
    assert (note if seeds == 2 else "\\newcommand{\\BandNote}{}") in text
    floats = re.findall(r"\\begin\{figure\*?\}(.*?)\\end\{figure\*?\}", (paths.report_dir() / "paper.tex").read_text(),
                        re.DOTALL)
    banded = [f for f in floats if re.search(r"_(curves|grad_norm)\.pdf", f)]
    assert len(banded) == sum(stem.endswith(("_curves", "_grad_norm")) for stem in FIGURES)
    assert all(re.search(r"\\caption\{.*\\BandNote\}", f, re.DOTALL) for f in banded)


def test_the_relative_gradient_ratio_is_relus_over_sigmoids_median(fixture_results):
    """norm_ratio_relative: the median over epochs of (||grad w|| / ||w|| with ReLU) / (the same with Sigmoid);
    None for results without weight norms, and the figure's caption then names no second panel."""
    from lib.report.generation import section_facts

    results, figures, build, runs = fixture_results

    def facts():
        return section_facts(report.load_results(results, "smoke"), "smoke", results)["06_activation"]

    before = facts()
    assert before.values["norm_ratio_relative"] is None and "{\\GradNormRelative}{}" in before.macros.text()
    weights = {"relu": [10 + i / 30 for i in range(300)], "sigmoid": [2.0 + i / 100 for i in range(300)]}
    _rewrite("06_activation", lambda r: r["extra"].update(weight_norm=weights))
    grads = read_section("06_activation", profile="smoke")["extra"]["grad_norm"]
    ratios = sorted((gr / wr) / (gs / ws) for gr, wr, gs, ws in zip(grads["relu"], weights["relu"], grads["sigmoid"],
                                                                    weights["sigmoid"], strict=True))
    after = facts()
    assert after.values["norm_ratio_relative"] == f"{(ratios[149] + ratios[150]) / 2:#.3g}"
    assert "over the parameter's own 2-norm" in after.macros.text()


def _histories(n_epochs: int, seeds: int = 1, **columns) -> dict[str, pd.DataFrame]:
    """Two settings' per-epoch metrics as lib.studies.seeds.Setting.history gives them (with `<metric>_std` when seeds >
    1): validation accuracy rising to 0.6 and 0.62, training loss falling 100-fold; `columns` replace either."""
    epochs = np.arange(1, n_epochs + 1)
    histories = {}
    for i, label in enumerate(("A", "B")):
        frame = pd.DataFrame({"epoch": epochs, "train_loss": 4.0 * 0.01 ** (epochs / n_epochs),
                              "val_loss": 2.0 - epochs / n_epochs, "train_acc": epochs / n_epochs,
                              "val_acc": (0.6 + 0.02 * i) * (1 - np.exp(-5 * epochs / n_epochs))})
        for name, values in columns.items():
            frame[name] = values[i]
        if seeds > 1:
            for name in [c for c in frame if c != "epoch"]:
                frame[f"{name}_std"] = 0.01 * frame[name]
        frame.attrs["n_seeds"] = seeds
        histories[label] = frame
    return histories


def _drawn(fig):
    fig.canvas.draw()  # tick labels are set when drawn
    return fig


def test_gradient_norms_are_on_labelled_decades_covering_every_value():
    """Both panels of the gradient-norm figure (||grad w||, and ||grad w|| / ||w||) are log axes from the decade
    below their lowest value to the one above their highest, with a label at every decade and none between."""
    from lib.studies import plots

    epochs = np.arange(1, 16)
    histories = _histories(15, grad_norm_mean=[0.3 + 0.01 * epochs, 0.02 + 0.004 * epochs],  # Sigmoid's 0.02-0.08
                           weight_norm=[np.full(15, 20.0), np.full(15, 5.0)])
    fig = _drawn(plots.plot_grad_norms(histories, "layers.8.conv1.weight"))
    # ||grad w|| spans 0.02-0.45 and ||grad w|| / ||w|| 0.004-0.0225 (Sigmoid's 0.02-0.08 over 5)
    for ax, expected in zip(fig.axes, ([0.01, 0.1, 1.0], [0.001, 0.01, 0.1]), strict=True):
        low, high = ax.get_ylim()
        assert ax.get_yscale() == "log" and (low, high) == pytest.approx((expected[0], expected[-1]))
        decades = [t for t in ax.yaxis.get_major_ticks() if low <= t.get_loc() <= high]
        assert [t.get_loc() for t in decades] == pytest.approx(expected)
        assert all(t.label1.get_text() for t in decades)
        assert not any(t.label1.get_text() for t in ax.yaxis.get_minor_ticks())


def test_curves_show_training_loss_on_a_log_axis_and_zoom_on_the_last_third():
    """At 15 epochs: the training-loss panel is a log axis reaching the lowest loss (a 0 and an infinity there
    are gaps); the fifth panel shows validation accuracy over epochs 11-15 only, narrower than the whole range."""
    from lib.studies import plots

    histories = _histories(15)
    histories["A"].loc[3, "train_loss"], histories["A"].loc[4, "train_loss"] = 0.0, math.inf
    fig = _drawn(plots.plot_curves(histories))
    loss_ax, _, _, val_ax, zoom_ax = fig.axes[:5]
    assert loss_ax.get_yscale() == "log" and loss_ax.get_ylim()[0] <= histories["A"]["train_loss"].iloc[-1]
    assert 10 < zoom_ax.get_xlim()[0] <= 11 and 15 <= zoom_ax.get_xlim()[1] < 16
    late = pd.concat([100 * h["val_acc"][h["epoch"] >= 11] for h in histories.values()])
    low, high = zoom_ax.get_ylim()
    assert low <= late.min() and late.max() <= high and high - low < 0.5 * np.ptp(val_ax.get_ylim())


@pytest.mark.parametrize("plot", ["plot_curves", "plot_grad_norms", "plot_train_val_curves"])
def test_figures_of_means_over_seeds_carry_no_text_about_bands(plot):
    """The band's meaning goes into the caption: a figure of means over 3 seeds holds bands but no words about
    seeds, means or standard deviations."""
    import matplotlib.collections
    import matplotlib.text

    from lib.studies import plots

    histories = _histories(6, seeds=3, grad_norm_mean=[np.full(6, 0.3), np.full(6, 0.05)],
                           weight_norm=[np.full(6, 20.0), np.full(6, 5.0)])
    fig = _drawn(getattr(plots, plot)(*([histories, "conv.weight"] if plot == "plot_grad_norms" else [histories])))
    assert any(isinstance(c, matplotlib.collections.PolyCollection) for ax in fig.axes for c in ax.collections)
    words = " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text)).lower()
    assert not any(word in words for word in ("seed", "±", "standard deviation", "shaded", "band"))


def test_mixup_examples_show_weights_spread_over_the_range(tiny_config):
    """The mixup figure's weights m are set from 0.1 to 0.9, not drawn (most draws are near 0 or 1); the third row
    is m x_i + (1 - m) x_j of the first two, titled with m; each row says what it is."""
    from lib.studies import plots

    weights = study.mixup_example_weights(8)
    assert weights.min() == 0.1 and weights.max() == 0.9 and np.all(np.diff(weights) > 0.1)
    first, second, mixed = study.mixup_examples(tiny_config, weights)
    np.testing.assert_allclose(mixed[3], weights[3] * first[3] + (1 - weights[3]) * second[3])
    assert not np.allclose(first, second)
    fig = plots.plot_mixup_examples(first, second, mixed, weights)
    titles = [ax.get_title() for ax in fig.axes[16:]]
    assert titles == [f"$m$={w:.2f}" for w in weights]
    assert [fig.axes[8 * row].get_ylabel().split()[0] for row in range(3)] == ["image", "partner", "mixed"]


def test_the_set_up_says_where_and_how_long_the_study_trained(fixture_results):
    """The devices and wall time come from the results rows (lib.studies.study.training_cost), each setting counted once
    (05's run without mixup is 04's); without a device on record the sentence is left out."""
    from lib.report.sections.setup import duration

    results, figures, build, runs = fixture_results
    assert "\\newcommand{\\HardwareSentence}{}" in _generated(report.generate(results, figures, build / "generated"))
    for section in sections.TRAINING:
        _rewrite(section, lambda r: [run.update(device="NVIDIA H200", train_seconds=600.0) for run in r["runs"]])
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "The 9 settings (1,845 epochs in all) trained on NVIDIA H200 in 1.5 hours" in text.replace("{,}", ",")
    assert [duration(s) for s in (30, 75, 600, 6000, 40000)] == ["30 seconds", "1 minute", "10 minutes",
                                                                 "1.7 hours", "11 hours"]

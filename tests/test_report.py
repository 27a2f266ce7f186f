"""The paper builds from results files and figures: page limit, fonts, figures, numbers, banner.

The fixture writes plausible results files (data_kind "synthetic") with lib.results.write_section and a
small vector PDF for every figure stem, so these tests do not wait for the notebooks.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

from lib import paths, report, sections
from lib.config import RunConfig
from lib.results import read_section, write_section

needs_tex = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("latexmk", "pdflatex", "bibtex", "pdfinfo", "pdffonts", "pdftotext")),
    reason="TeX or poppler-utils not installed (make setup)")

FIGURES = tuple(stem for section in sections.STUDY for stem in section.figure_stems)  # declared once, there
FULL_WIDTH = tuple(stem for stem in FIGURES if stem.endswith("_curves"))  # the paper's \figfull ones
MAX_PAGES_BEFORE_REFERENCES = 6
RECORD_KEYS = ("section", "profile", "data_kind", "runs", "chosen", "chosen_run_id", "extra")  # write_section's


def _run(label: str, config: RunConfig, train_loss: float, train_acc: float, val_loss: float, val_acc: float,
         run_id: str) -> dict:
    return {"run_id": run_id, "label": label, "config": config.key(), "epochs": config.epochs,
            "final_train_loss": train_loss, "final_train_acc": train_acc, "final_val_loss": val_loss,
            "final_val_acc": val_acc, "best_val_acc": val_acc + 0.004, "best_val_epoch": config.epochs - 1}


def write_fixture_results(kind: str = "synthetic", profile: str = "smoke") -> dict:
    """Plausible results for every section into lib.paths.results_dir(profile); returns the runs by name."""
    base = RunConfig(epochs=15)
    lr = {v: _run(f"lr={v:g}", dataclasses.replace(base, lr=v), tl, ta, vl, va, f"lr{i}")
          for i, (v, tl, ta, vl, va) in enumerate([(0.5, 2.412, 0.3621, 2.517, 0.3487),
                                                   (0.05, 1.734, 0.5137, 2.011, 0.4712),
                                                   (0.01, 1.902, 0.4755, 2.064, 0.4493)])}
    long = RunConfig(epochs=300, lr=0.05)
    const = _run("constant", long, 0.845, 0.7423, 1.951, 0.5612, "const")
    cos = _run("cosine", RunConfig(epochs=300, lr=0.05, schedule="cosine"), 0.0061, 0.9994, 1.684, 0.5783, "cos")
    wd5 = _run("wd=5e-4", RunConfig(epochs=300, lr=0.05, schedule="cosine", weight_decay=5e-4),
               0.0213, 0.9981, 1.187, 0.6794, "wd5")
    wd1 = _run("wd=1e-4", RunConfig(epochs=300, lr=0.05, schedule="cosine", weight_decay=1e-4),
               0.0102, 0.9990, 1.498, 0.6125, "wd1")
    mix = _run("mixup", RunConfig(epochs=300, lr=0.05, schedule="cosine", weight_decay=5e-4, mixup_alpha=0.2),
               0.6218, 0.8611, 1.102, 0.7018, "mix")
    sig = _run("sigmoid", RunConfig(epochs=300, lr=0.05, schedule="cosine", weight_decay=5e-4, mixup_alpha=0.2,
                                    sigmoid_blocks=tuple(range(4, 11))), 0.3114, 0.9321, 1.702, 0.6233, "sig")
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
    grad = {"ReLU": [0.08 + 0.3 * (i / 150) * (1 - i / 300) for i in range(300)],
            "sigmoid": [0.03 + 0.1 * (i / 150) * (1 - i / 300) for i in range(300)]}
    # 06 starts from 05's chosen run: its ReLU run is that run, same run_id.
    write_section("06_activation", profile, kind, [mix, sig], extra={"grad_norm": grad})
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
            fig, axes = plt.subplots(1, 2 if wide else 1, figsize=(7.0, 2.3) if wide else (3.3, 2.0),
                                     squeeze=False)
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


@pytest.fixture
def fixture_dirs(fixture_results):
    write_fixture_figures(fixture_results[1])
    return fixture_results


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


def check_paper(pdf: Path, tex: str, figures: Path) -> None:
    """The checks any built paper must pass: page limit, no Type 3 fonts, figures exist."""
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    first_ref_page = next(p for p in range(1, pages + 1) if re.search(r"^\s*References\s*$", _text(pdf, p, p),
                                                                      re.MULTILINE))
    # References may start on page 7 only if everything before them fits in 6 pages.
    assert first_ref_page <= MAX_PAGES_BEFORE_REFERENCES + 1, f"references start on page {first_ref_page}"
    if first_ref_page == MAX_PAGES_BEFORE_REFERENCES + 1:
        lines = [ln for ln in _text(pdf, first_ref_page, first_ref_page).splitlines() if ln.strip()]
        assert re.match(r"^\s*References", lines[0]), "text before the references on page 7"
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert "Type 3" not in fonts, fonts
    stems = report.figure_stems(tex)
    assert stems
    for stem in stems:
        assert (figures / stem).exists(), stem


@needs_tex
def test_paper_builds_from_results(fixture_dirs):
    results, figures, build, runs = fixture_dirs
    pdf = report.build_report(results, figures, build)
    check_paper(pdf, (paths.report_dir() / "paper.tex").read_text(), figures)
    text = " ".join(_text(pdf).split())
    assert "Built from synthetic data" in text
    for number in (report.pct(runs["lr"][0.05]["final_val_acc"]), report.loss(runs["cos"]["final_train_loss"]),
                   report.pct(0.7053), "0.5068"):
        assert number in text, number
    assert "Zhang et al. 2018" in text or "Zhang et al., 2018" in text
    assert "than the constant rate" in text  # a sentence rendered from report/prose/


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
    assert "although $\\eta=0.01$ ends with a higher validation accuracy" in numbers


def test_tied_rates_are_reported_as_ties(fixture_results):
    """Rates that end level on a criterion are named together, never one of them as the winner."""
    results, figures, build, runs = fixture_results
    record = read_section("02_learning_rate", profile="smoke")
    for run in record["runs"]:
        run["final_val_acc"] = 0.5
    write_section(**{k: record[k] for k in RECORD_KEYS})
    numbers = _generated(report.generate(results, figures, build / "generated"))
    assert "tie for the highest validation accuracy" in numbers
    assert "ends with a higher validation accuracy" not in numbers


def test_the_paper_shows_every_declared_figure_and_no_other():
    """Figure names are declared once, in lib.sections; the paper includes exactly those."""
    shown = {Path(stem).stem for stem in report.figure_stems((paths.report_dir() / "paper.tex").read_text())}
    assert shown == set(FIGURES)


def test_missing_section_names_the_notebook(tmp_path):
    with pytest.raises(report.ReportError, match=r"run notebook notebooks/01_data.ipynb"):
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

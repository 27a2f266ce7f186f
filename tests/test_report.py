"""The paper builds from results files and figures: page limit, fonts, figures, numbers, banner, and sentences
that follow the results (single runs, curves, gradient norms, public ranges, the author).

The fixture writes plausible results files (data_kind "synthetic") with per-epoch curves through
lib.studies.results.write_section and a small vector PDF for every figure stem, so these tests do not wait for the
notebooks.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import os
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
from lib.studies import briefs, sections, study
from lib.studies.results import read_section, write_section
from lib.studies.seeds import FINAL_METRICS

needs_tex = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("latexmk", "pdflatex", "bibtex", "pdfinfo", "pdffonts", "pdftotext")),
    reason="TeX or poppler-utils not installed (make setup)")

RECORD_KEYS = ("section", "profile", "data_kind", "runs", "chosen", "chosen_run_id", "extra")  # write_section's
BRIEFS = ("mixup", "activation", "all")  # the shipped briefs (briefs/*.toml)


def brief_figures(brief: str | None = None) -> tuple[str, ...]:
    """The figure stems a brief's paper includes: those its sections' templates (and the extras') name."""
    spec = sections.brief() if brief is None else briefs.load(brief)
    names = [*spec.names, *sections.EXTRAS]
    texts = [(paths.report_dir() / "prose" / f"{name}.tex.j2").read_text() for name in names
             if (paths.report_dir() / "prose" / f"{name}.tex.j2").exists()]
    return tuple(stem.removesuffix(".pdf") for text in texts for stem in report.figure_stems(text))


ALL_FIGURES = tuple(dict.fromkeys(stem for brief in BRIEFS for stem in brief_figures(brief)))


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


@contextlib.contextmanager
def session_brief(brief: str | None):
    """AI6103_BRIEF set to `brief` for the while (None: left as it is)."""
    before = os.environ.get("AI6103_BRIEF")
    if brief is not None:
        os.environ["AI6103_BRIEF"] = brief
    try:
        yield sections.brief()
    finally:
        if before is None:
            os.environ.pop("AI6103_BRIEF", None)
        else:
            os.environ["AI6103_BRIEF"] = before


def fixture_runs(spec, arch: str) -> dict:
    """The fixture's runs for a brief: the learning rates (its values, the first diverging least well), the
    constant-rate run that overfits (validation loss lowest, 1.42, at epoch 61), cosine, two weight decays, mixup
    on the chosen decay, and Sigmoid in blocks 4-10 on the final model's recipe."""
    base = RunConfig(epochs=15, arch=arch)
    rates = spec.section("learning_rate").values
    lr = {v: _run(f"lr={v:g}", dataclasses.replace(base, lr=v), tl, ta, vl, va, f"lr{i}")
          for i, (v, (tl, ta, vl, va)) in enumerate(zip(rates, [(2.412, 0.3621, 2.517, 0.3487),
                                                                (1.734, 0.5137, 2.011, 0.4712),
                                                                (1.902, 0.4755, 2.064, 0.4493)], strict=True))}
    long = RunConfig(epochs=300, lr=0.05, arch=arch)
    cosine = dataclasses.replace(long, schedule="cosine")
    decayed = {wd: dataclasses.replace(cosine, weight_decay=wd) for wd in (5e-4, 1e-4)}
    found = {"lr": lr, "const": _run("constant", long, 0.845, 0.7423, 1.951, 0.5612, "const", val_loss_min=(61, 1.42)),
             "cos": _run("cosine", cosine, 0.0061, 0.9994, 1.684, 0.5783, "cos"),
             "wd5": _run("wd=5e-4", decayed[5e-4], 0.0213, 0.9981, 1.187, 0.6794, "wd5"),
             "wd1": _run("wd=1e-4", decayed[1e-4], 0.0102, 0.9990, 1.498, 0.6125, "wd1"),
             "mix": _run("mixup alpha=0.2", dataclasses.replace(cosine, weight_decay=5e-4, mixup_alpha=0.2), 0.6218,
                         0.8611, 1.102, 0.7018, "mix")}
    found["final"] = found["mix"] if spec.final == "mixup" else found["wd5"]
    found["sig"] = _run("sigmoid", dataclasses.replace(RunConfig(**{**found["final"]["config"], "arch": arch}),
                                                       sigmoid_blocks=tuple(range(4, 11))),
                        0.3114, 0.9321, 1.702, 0.6233, "sig")
    return found


def write_fixture_results(kind: str = "synthetic", profile: str = "smoke", arch: str | None = None,
                          brief: str | None = None) -> dict:
    """Plausible results for every section of a brief (default: the session's, AI6103_BRIEF) into its results
    folder, lib.core.paths.results_dir(profile) under that brief (results/<brief>/<profile>/), with the brief's
    architecture unless `arch` is given; returns the runs by name (fixture_runs)."""
    with session_brief(brief) as spec:
        runs = fixture_runs(spec, arch or spec.arch)
        for name in spec.names:
            write = FIXTURE_WRITERS[name]
            write(name, profile, kind, runs, spec)
    return runs


def _write_data(name, profile, kind, runs, spec):
    split_code = ("train_idx, val_idx = random_split(range(50000), [40000, 10000],\n"
                  "                                  generator=torch.Generator().manual_seed(0))")
    write_section(name, profile, kind, [], extra={
        "n_train": 40000, "n_val": 10000, "mean": [0.5068, 0.4861, 0.4403], "std": [0.2671, 0.2563, 0.2759],
        "class_prop_min": 0.00935, "class_prop_max": 0.01063, "split_code": split_code})


def _write_training(name, profile, kind, runs, spec):
    """A training section's runs and choice as its notebook exports them: a run equal to the one it starts from
    is that run, under its own label (mixup's run without mixup is weight decay's chosen run)."""
    rows, chosen = {"learning_rate": (list(runs["lr"].values()), "lr1"),
                    "lr_schedule": ([runs["const"], runs["cos"]], "cos"),
                    "weight_decay": ([runs["wd5"], runs["wd1"]], "wd5"),
                    "mixup": ([{**runs["wd5"], "label": "no mixup"}, runs["mix"]], "mix")}[name]
    compares = spec.section(name).compares
    decided = {compares: next(r["config"].get(compares) for r in rows if r["run_id"] == chosen)}
    write_section(name, profile, kind, rows, chosen=decided, chosen_run_id=chosen)


def _write_test(name, profile, kind, runs, spec):
    final = runs["final"]
    write_section(name, profile, kind, [final], chosen=sections.settings_of(final["config"]),
                  chosen_run_id=final["run_id"], extra=fixture_test_score(spec, final))


def fixture_test_score(spec, final: dict) -> dict:
    """The test step's `extra` (lib.studies.study.test_score) for the final run."""
    return {"final_section": spec.final, "final_label": final["label"], "test_run_id": final["run_id"],
            "test_acc": 0.7053 if final["run_id"] == "mix" else 0.6745, "test_loss": 1.087, "test_acc_std": None,
            "n_seeds": 1, "n_test": 10000}


def _write_activation(name, profile, kind, runs, spec):
    """ReLU's norm rises to a peak mid-run; Sigmoid's is highest at the start and falls; both runs' weight norms
    grow. The ReLU run is the run the section starts from (the final model), same run_id."""
    grad = {"relu": [0.08 + 0.3 * (i / 150) * (1 - i / 300) for i in range(300)],
            "sigmoid": [0.02 + 0.1 * (1 - i / 300) ** 2 for i in range(300)]}
    weights = {"relu": [10 + i / 30 for i in range(300)], "sigmoid": [2.0 + i / 100 for i in range(300)]}
    start = runs["final"]
    write_section(name, profile, kind, [{**start, "label": "relu"}, runs["sig"]],
                  extra={"grad_norm": grad, "weight_norm": weights, "grad_norm_param": "layers.8.conv1.weight",
                         "sigmoid_blocks": list(range(4, 11))})


def _write_summary(name, profile, kind, runs, spec):
    """Every distinct run, the final model chosen, the test step's score (lib.studies.study.export_summary)."""
    names = [n for n in spec.training]
    unique = {}
    for section in names:
        for run in read_section(section, profile=profile)["runs"]:
            unique.setdefault(run["run_id"], {**run, "sections": []})["sections"].append(section)
    final = runs["final"]
    write_section(name, profile, kind, list(unique.values()), chosen=sections.settings_of(final["config"]),
                  chosen_run_id=final["run_id"],
                  extra={**fixture_test_score(spec, final), "n_runs": len(unique), "table_csv": f"{name}_runs.csv"})


FIXTURE_WRITERS = {"data": _write_data, "learning_rate": _write_training, "lr_schedule": _write_training,
                   "weight_decay": _write_training, "mixup": _write_training, "test": _write_test,
                   "activation": _write_activation, "summary": _write_summary}


def write_fixture_figures(folder: Path, stems: tuple[str, ...] = ALL_FIGURES) -> None:
    """A small vector PDF (TrueType fonts) for every figure stem given (default: of every brief's paper)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"pdf.fonttype": 42, "font.size": 8}):
        for stem in stems:
            wide = stem.endswith("_curves")  # the paper's \figfull ones
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
def fixture_results(tmp_path, monkeypatch, request):
    """The fixture's results files of a brief (the test's `brief` parameter if it has one, else the mixup brief),
    no figures: enough to generate the LaTeX, not to build the paper. (results, figures, build, runs)."""
    brief = getattr(request, "param", None) or "mixup"
    monkeypatch.setenv("AI6103_BRIEF", brief)
    monkeypatch.setenv("AI6103_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("AI6103_FIGURES_DIR", str(tmp_path / "figures"))
    runs = write_fixture_results()
    return tmp_path / "results" / brief / "smoke", tmp_path / "figures" / brief / "smoke", tmp_path / "build", runs


def build_fixture_paper(tmp: Path, brief: str, seeds: int = 1):
    """A brief's fixture paper, built, with `seeds` per setting (_give_seeds): (pdf, figures folder, runs). One test
    per brief and seed count builds it and checks all it needs of the PDF (a module-scoped fixture would build it
    again in each xdist worker that uses it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AI6103_BRIEF", brief)
        patch.setenv("AI6103_RESULTS_DIR", str(tmp / "results"))
        patch.setenv("AI6103_FIGURES_DIR", str(tmp / "figures"))
        runs = write_fixture_results()
        for section in sections.brief().training if seeds > 1 else ():
            _rewrite(section, lambda record: _give_seeds(record, seeds))
        figures = tmp / "figures" / brief / "smoke"
        write_fixture_figures(figures, brief_figures(brief))
        pdf = report.build_report(tmp / "results" / brief / "smoke", figures, tmp / "build")
    return pdf, figures, runs


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


def included_figures(pdf: Path, tex: str) -> list[str]:
    """The figure files a built paper includes: those of `tex` (paper.tex) and of the sections generated into its
    build folder (the PDF's folder, generated/body.tex, extras.tex, conclusion.tex)."""
    generated = [pdf.parent / "generated" / f"{name}.tex" for name in ("body", "extras", "conclusion")]
    return report.figure_stems(tex + "".join(path.read_text() for path in generated if path.exists()))


def check_paper(pdf: Path, tex: str, figures: Path, pages_allowed: int | None = None) -> None:
    """The checks any built paper must pass: the brief's page budget before the references (`pages_allowed`,
    default the session's brief's `pages`), no Type 3 fonts, the figures it includes exist."""
    budget = sections.brief().pages if pages_allowed is None else pages_allowed
    pages = _pages(pdf)
    first_ref_page = 1 + next(i for i, page in enumerate(pages) if re.search(r"^References$", page, re.MULTILINE))
    # References may start on the page after the budget only if everything before them fits in the budget.
    assert first_ref_page <= budget + 1, f"references start on page {first_ref_page}, the budget is {budget}"
    if first_ref_page == budget + 1:
        lines = [ln for ln in pages[first_ref_page - 1].splitlines() if ln.strip()]
        assert lines[0] == "References", f"text before the references on page {budget + 1}"
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert "Type 3" not in fonts, fonts
    check_layout(pdf)
    stems = included_figures(pdf, tex)
    assert stems
    for stem in stems:
        assert (figures / stem).exists(), stem


def check_layout(pdf: Path) -> None:
    """The built paper's LaTeX log has no overfull box (a table wider than the column would be one: nothing scales
    them), and no table is set below the captions' size (\\small) nor scaled; every code listing is a float (never
    split across a page or column), and its caption and last line lie on one page and in one column."""
    log = pdf.with_suffix(".log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log and "Overfull \\vbox" not in log, re.findall(r"Overfull.*", log)
    generated = pdf.parent / "generated"
    body = "".join((generated / f"{name}.tex").read_text() for name in ("body", "extras", "conclusion"))
    sources = body + (pdf.parent / "paper.tex").read_text()
    assert not re.search(r"\\(resizebox|scalebox|fitcolumn|adjustbox)\b", sources)
    for table in re.findall(r"\\begin\{table\*?\}(.*?)\\end\{table\*?\}", body, re.S):
        assert not re.search(r"\\(footnotesize|scriptsize|tiny)\b", table), table
    listings = re.findall(r"\\lstinputlisting\[([^]]*)\]\{generated/([^}]+)\}", body)
    assert listings and all(re.search(r"\bfloat\b", options) for options, _ in listings), listings
    words = _placed_words(pdf)
    for number, (_, name) in enumerate(listings, start=1):
        caption = [place for i, (place, word) in enumerate(words[:-1])
                   if word == "Listing" and words[i + 1][1] == f"{number}:"]
        last = (generated / name).read_text().split()[-1]  # a line broken in the listing ends with its last part
        ends = [place for place, word in words if len(word) >= min(4, len(last)) and last.endswith(word)]
        assert len(caption) == 1 and ends and ends[-1] == caption[0], (name, caption, ends)


def _placed_words(pdf: Path) -> list[tuple[tuple[int, str], str]]:
    """Every word of a built paper in order, with its page (from 1) and column ('left' or 'right')."""
    import html

    found = []
    for page in range(1, len(_pages(pdf)) + 1):
        text = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"], check=True,
                              capture_output=True, text=True).stdout
        width = float(re.search(r'<page width="([\d.]+)"', text).group(1))
        found += [((page, "left" if float(x) < width / 2 else "right"), html.unescape(word))
                  for x, word in re.findall(r'<word xMin="([\d.]+)"[^>]*>([^<]*)<', text)]
    return found


@needs_tex
@pytest.mark.parametrize("brief", ["mixup", "activation"])
def test_the_papers_at_two_seeds_fit_their_budget_and_their_columns(tmp_path, brief):
    """Both briefs' fixture papers at 2 seeds per setting (wider tables: each mean with its sd) build within their
    page budget with no overfull box, no scaled table and no listing split (check_paper's layout checks), and say each
    fact once."""
    pdf, figures, runs = build_fixture_paper(tmp_path, brief, seeds=2)
    check_paper(pdf, (paths.report_dir() / "paper.tex").read_text(), figures, briefs.load(brief).pages)
    check_each_fact_said_once(pdf, runs["final"])


def table_widths(tables: list[Path], folder: Path) -> dict[str, tuple[float, float]]:
    """Each table's natural width at the captions' size (\\small) and the column's width, in pt, as LaTeX sets them
    in our style's two columns (a small document of their boxes, compiled in `folder`), keyed "<folder>/<stem>"."""
    lines = [f"\\sbox{{\\tb}}{{\\small\\input{{{t.with_suffix('').as_posix()}}}}}\\typeout{{WIDTH {i} "
             f"\\the\\wd\\tb\\space\\the\\columnwidth}}" for i, t in enumerate(tables)]
    (folder / "widths.tex").write_text("\n".join([
        "\\documentclass[letterpaper]{article}", f"\\usepackage{{{(paths.report_dir() / 'ai6103aaai').as_posix()}}}",
        "\\usepackage{times}\\usepackage{booktabs}\\usepackage{amsmath}\\newsavebox{\\tb}",
        "\\begin{document}\\twocolumn", *lines, "x\\end{document}"]))
    subprocess.run(["pdflatex", "-interaction=nonstopmode", "widths.tex"], cwd=folder, capture_output=True)
    found = re.findall(r"WIDTH (\d+) ([\d.]+)pt ([\d.]+)pt", (folder / "widths.log").read_text())
    return {f"{tables[int(i)].parent.parent.name}/{tables[int(i)].stem}": (float(width), float(column))
            for i, width, column in found}


@needs_tex
def test_tables_fit_the_column_at_the_captions_size(tmp_path, monkeypatch):
    """The widest tables the paper makes, on the official CIFAR-100 in the full profile (public-range columns) with 3
    seeds per setting (each mean with its sd), fit the column at the captions' size for both briefs, as they are:
    nothing scales them. A constructed table with a long setting name does not: the measure sees what an overfull
    box in the paper's log would."""
    for brief in ("mixup", "activation"):
        monkeypatch.setenv("AI6103_BRIEF", brief)
        monkeypatch.setenv("AI6103_RESULTS_DIR", str(tmp_path / "results"))
        write_fixture_results(kind="cifar100", profile="full", arch="mobilenet")
        for section in sections.brief().training:
            _rewrite(section, lambda record: _give_seeds(record, 3), profile="full")
        out = report.generate(tmp_path / "results" / brief / "full", tmp_path, tmp_path / brief, profile="full")
        assert "Public" in (out / "tables" / "learning_rate.tex").read_text()
    runs = fixture_runs(briefs.load("mixup"), "mobilenet")
    wide = tmp_path / "constructed" / "tables" / "wide.tex"
    wide.parent.mkdir(parents=True)
    wide.write_text(report.run_table([("a setting named at some length, as no table should", runs["cos"], False)]))
    widths = table_widths([*sorted(tmp_path.glob("*/tables/*.tex")), wide], tmp_path)
    assert len(widths) == 2 * 6 + 1  # each brief's five tables and the channels', and the constructed one
    too_wide = {name: found for name, found in widths.items() if found[0] > found[1] and name != "constructed/wide"}
    assert not too_wide, too_wide
    assert widths["constructed/wide"][0] > widths["constructed/wide"][1]


@needs_tex
def test_paper_builds_from_results(tmp_path):
    """The mixup brief's paper: within its page budget, its numbers, its sections in the brief's order, and no
    activation section: no Sigmoid anywhere; the references follow the body."""
    pdf, figures, runs = build_fixture_paper(tmp_path, "mixup")
    check_paper(pdf, (paths.report_dir() / "paper.tex").read_text(), figures, briefs.load("mixup").pages)
    text = " ".join(_text(pdf).split())
    assert "Built from synthetic data" in text
    for number in (report.pct(runs["lr"][0.05]["final_val_acc"]), report.loss(runs["cos"]["final_train_loss"]),
                   report.pct(0.7053), "0.5068"):
        assert number in text, number
    assert "Zhang et al. 2018" in text or "Zhang et al., 2018" in text
    # a sentence rendered from report/prose/, in reading order (-layout interleaves the columns' lines)
    reading = " ".join(" ".join(_pages(pdf)).split())
    assert "than the constant rate" in reading
    headings = ["Data Preprocessing", "Learning Rate", "Learning-Rate Schedule", "Weight Decay", "Mixup",
                "Final Test Accuracy", "Conclusion"]
    assert _headings(pdf, headings) == headings
    assert "Sigmoid" not in reading and "Activation Function" not in reading
    check_references_follow_the_body_and_the_data_is_named_as_synthetic(pdf)
    check_each_fact_said_once(pdf, runs["final"])


def _headings(pdf: Path, headings: list[str]) -> list[str]:
    """Which of `headings` a paper's pages hold as lines of their own, in page order."""
    return [heading for page in _pages(pdf) for heading in headings if re.search(rf"^{heading}$", page, re.M)]


@needs_tex
def test_the_activation_briefs_paper_has_its_own_sections_within_its_budget(tmp_path):
    """The activation brief's paper (MobileNet v1): within its page budget, its title, its sections in its order
    (the test step before the activation variant), no mixup anywhere, and a Sigmoid paragraph that follows
    MobileNet v1: the watched weight is block 8's depthwise convolution and every path of its gradient passes the
    6 Sigmoids of blocks 8-10 (no shortcuts), with ||grad w|| / ||w|| reported; the references follow the body."""
    pdf, figures, runs = build_fixture_paper(tmp_path, "activation")
    check_paper(pdf, (paths.report_dir() / "paper.tex").read_text(), figures, briefs.load("activation").pages)
    reading = " ".join(" ".join(_pages(pdf)).split())
    assert "mixup" not in reading.lower() and not re.search(r"Zhang et al\.,? 2018", reading)  # nor its reference
    assert "Learning Rate, Weight Decay and Sigmoid Activations in MobileNet (v1) on a Synthetic Stand-in" in reading
    headings = ["Data Preprocessing", "Learning Rate", "Learning-Rate Schedule", "Weight Decay",
                "Final Test Accuracy", "Activation Function and Gradient Norm", "Conclusion"]
    assert _headings(pdf, headings) == headings
    assert report.pct(0.6745) in reading and "four questions in order" in reading
    text = " ".join(_generated(pdf.parent / "generated").split())
    assert "the $3\\times3$ depthwise convolution of block~8 ($512\\times3\\times3$ weights)" in text
    assert ("every path of the gradient of \\GradParam{} back from the loss passes through 6 Sigmoids: the two of "
            "its own block~8 and the four of blocks~9 and 10") in text
    assert "No shortcut carries any part of it around them" in text and "The shortcuts of" not in text
    assert "expansion" not in text
    assert "so $\\|\\nabla w\\|/\\|w\\|$ compares the runs more fairly: its median" in text  # the runs' weight norms
    assert reading.count("at most 1/4") == 1 and "highest at the start" not in reading  # each said once, true
    check_references_follow_the_body_and_the_data_is_named_as_synthetic(pdf)
    check_each_fact_said_once(pdf, runs["final"])


def prose_sentences(pdf: Path) -> list[str]:
    """A built paper's sentences before the references, in reading order: its lines of four words or more, or ending
    with a full stop (the figures' labels and the tables' cells are shorter), joined (a word broken at a line's end
    joined again), split after '.', '!' or '?' before a capital and before a caption."""
    text = "\n".join(_pages(pdf))
    text = text[:text.index("\nReferences\n")]
    lines = [ln.strip() for ln in text.splitlines() if len(ln.split()) >= 4 or ln.rstrip().endswith(".")]
    prose = " ".join(" ".join(lines).replace("- ", "-\n").replace("-\n", "").split())
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])|\s(?=(?:Figure|Table|Listing) \d+: )", prose) if s]


def _five_grams(sentence: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z]+", sentence.lower())
    return {tuple(words[i:i + 5]) for i in range(len(words) - 4)}


def check_each_fact_said_once(pdf: Path, final: dict) -> None:
    """No sentence of six words or more is said twice, no two consecutive sentences of the prose (captions aside)
    share a phrase of five words (numbers and symbols aside), and the final recipe is spelled out once outside the
    tables (the abstract's; the path of chosen runs is its table)."""
    sentences = prose_sentences(pdf)
    counts = collections.Counter(s for s in sentences if len(s.split()) >= 6)
    assert not [s for s, k in counts.items() if k > 1], [s for s, k in counts.items() if k > 1]
    prose = [s for s in sentences if not re.match(r"(Figure|Table|Listing) \d+:", s)]  # captions are alike on purpose
    shared = [(a, b) for a, b in zip(prose, prose[1:], strict=False) if _five_grams(a) & _five_grams(b)]
    assert not shared, shared
    recipe = f"η = {final['config']['lr']:g}, {final['config']['schedule']} schedule, {final['epochs']} epochs"
    assert " ".join(sentences).count(recipe) == 1, recipe


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


def check_references_follow_the_body_and_the_data_is_named_as_synthetic(pdf: Path) -> None:
    """No forced page break before the references: they start on the page where the body ends, or on the next
    one only when the body filled its page down to the foot of the second column; no float comes after them.
    On synthetic data every mention of CIFAR-100 (title and abstract included) says it is a stand-in, except
    the banner's 'says nothing about CIFAR-100'. (Each brief's paper test checks it: a paper is built once.)"""
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
    mentions = re.findall(r"(\S+ \S+) CIFAR-100", text)  # "stand-in" broken at a line's end reads "standin"
    assert mentions and all(m.lower().replace("standin", "stand-in") in ("stand-in for", "nothing about")
                            for m in mentions), mentions


@needs_tex
def test_findings_follow_the_results(fixture_results, monkeypatch):
    """Change which rate wins on validation: the generated sentence changes with it."""
    results, figures, build, runs = fixture_results
    record = read_section("learning_rate", profile="smoke")
    record["extra"]["best_by_val_acc"] = 0.01
    for run in record["runs"]:  # the smallest rate now generalises best; the chosen rate still trains best
        run["final_val_acc"] = 0.60 if run["config"]["lr"] == 0.01 else 0.40
    write_section(**{k: record[k] for k in RECORD_KEYS})
    numbers = _generated(report.generate(results, figures, build / "generated"))
    text = " ".join(numbers.split())
    assert "$\\eta=0.01$ ended with the highest validation accuracy" in text
    assert "Following the brief, we carry the rate first by training loss, $\\eta=0.05$" in text


@pytest.mark.parametrize(("accuracies", "rule"), [
    ({0.5: 0.5, 0.05: 0.5, 0.01: 0.5}, "equal unrounded, the first listed wins"),
    ({0.5: 0.49996, 0.05: 0.50004, 0.01: 0.5}, "ahead beyond the printed digits")])
def test_a_tie_is_said_as_the_notebook_says_it(fixture_results, capsys, accuracies, rule):
    """The three rates end at 50.0 % validation accuracy as printed, equal unrounded or not: the paper names the same
    first rate as the notebook (lib.studies.study.report_choice, on the same results) with the same rule words, at
    the notebooks' precision, and says neither 'first by both criteria' nor that the two orders agree."""
    results, figures, build, runs = fixture_results
    _rewrite("learning_rate", lambda r: [run.update(final_val_acc=accuracies[run["config"]["lr"]])
                                         for run in r["runs"]])
    record = read_section("learning_rate", profile="smoke")
    study.report_choice("learning_rate", {run["label"]: types.SimpleNamespace(summary=run) for run in record["runs"]})
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("best by validation accuracy"))
    first, others = re.fullmatch(r"best by validation accuracy: lr=([\d.]+), 50\.0 % \(a tie at this precision with "
                                 rf"(.*): {rule}\)", line).groups()
    named = " and ".join(f"$\\eta={label.removeprefix('lr=')}$" for label in others.split(", "))
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert (f"$\\eta={first}$ ended with the highest validation accuracy (a tie at this precision with {named}: "
            f"{rule})") in text
    assert "first by both criteria" not in text and "two orders agree" not in text
    assert "Following the brief, we carry the rate first by training loss, $\\eta=0.05$, into all later runs." in text


def test_a_diverged_rate_is_never_chosen_and_is_reported_as_diverged(fixture_results):
    """lr 0.5 ends with NaN losses (diverged): its results file reads back, the choice by training loss goes to a
    rate that trained, and the paper orders it last by training loss, printed as 'diverged'."""
    results, figures, build, runs = fixture_results

    def diverge(record):
        for run in record["runs"]:
            if run["config"]["lr"] == 0.5:  # with two seeds, one of which diverged: the losses' sd is NaN too
                run.update(final_train_loss=math.nan, final_val_loss=math.nan, n_seeds=2,
                           std={key: math.nan if "loss" in key else 0.001 for key in FINAL_METRICS})

    _rewrite("learning_rate", diverge)
    record = read_section("learning_rate", profile="smoke")
    by_label = {run["label"]: run for run in record["runs"]}
    assert sections.choose_label("learning_rate", by_label) == "lr=0.05"
    assert sections.choose_label("learning_rate", {"lr=0.5": {"final_train_loss": math.nan},
                                                      "lr=0.01": {"final_train_loss": 1.9}}) == "lr=0.01"
    out = report.generate(results, figures, build / "generated")
    assert "0.01 (1.902) $<$ 0.5 (diverged);" in _generated(out)
    table = (out / "tables" / "learning_rate.tex").read_text()
    assert "diverged & " in table and "diverged\\,$\\pm$" not in table  # no spread of a loss that is not a number


def test_a_weight_decay_of_zero_is_written_as_zero(fixture_results):
    results, figures, build, runs = fixture_results
    _rewrite("weight_decay", lambda r: r["runs"][1]["config"].update(weight_decay=0.0))
    numbers = _generated(report.generate(results, figures, build / "generated"))
    assert "for $\\lambda=0$)" in numbers and "=None" not in numbers


def test_weight_decays_print_as_typed_and_never_two_alike():
    from lib.core.notation import power_of_ten

    assert [power_of_ten(v) for v in (5e-4, 1.25e-4, 0.0)] == ["5\\times10^{-4}", "1.25\\times10^{-4}", "0"]
    alike = {"a": types.SimpleNamespace(config=RunConfig(weight_decay=1e-4), history=None),
             "b": types.SimpleNamespace(config=RunConfig(weight_decay=1.0000001e-4), history=None)}
    with pytest.raises(ValueError, match="named alike in figures"):
        study.curves("weight_decay", alike)


@pytest.mark.parametrize("fixture_results", ["mixup", "activation"], indirect=True)
def test_a_summary_older_than_the_test_steps_score_is_refused(fixture_results):
    """The test step re-run with 3 seeds after the summary: the final run keeps its id (seed 0), but the test score
    changed; the summary names its notebook."""
    results, figures, build, runs = fixture_results
    _rewrite("test", lambda r: r["extra"].update(test_acc=0.7101, test_acc_std=0.004, n_seeds=3))
    with pytest.raises(report.ReportError, match="summary hold another test score than test's .* re-run notebook "
                                                 "notebooks/summary.ipynb"):
        report.generate(results, figures, build / "generated")


@pytest.mark.parametrize("fixture_results", ["mixup", "activation"], indirect=True)
def test_a_test_score_of_another_run_than_the_final_choice_is_refused(fixture_results):
    """The test step scored a run the final section no longer chooses: one line naming the test notebook."""
    results, figures, build, runs = fixture_results
    _rewrite("test", lambda r: r["extra"].update(test_run_id="wd1"))
    final = sections.brief().final
    with pytest.raises(report.ReportError, match=rf"^results of test are of run '\w+' \(tested: 'wd1'\), not of "
                                                 rf"{final}'s chosen run .* re-run notebook notebooks/test.ipynb$"):
        report.generate(results, figures, build / "generated")


def test_a_summary_of_results_that_no_longer_chain_is_refused(fixture_results):
    """weight_decay re-run with another choice, mixup not: the summary notebook refuses to write a summary, naming
    what to re-run."""
    _rewrite("weight_decay", lambda r: r.update(chosen={"weight_decay": 1e-4}, chosen_run_id="wd1"))
    with pytest.raises(ValueError, match=r"mixup do not start from .* re-run notebook notebooks/mixup.ipynb"):
        study.export_summary("summary", "smoke")


def test_data_statistics_of_another_split_than_the_runs_are_refused(fixture_results):
    results, figures, build, runs = fixture_results
    _rewrite("data", lambda r: r["extra"].update(split_seed=1))
    with pytest.raises(report.ReportError, match=r"data describe the split with seed 1, the runs' split has seed 0"):
        report.generate(results, figures, build / "generated")


def test_sections_with_different_seed_counts_each_say_their_own(fixture_results):
    """02 re-run with 3 seeds, the rest with 1: the rate comparison speaks of means over 3 seeds, the schedule
    comparison of single runs, and the set-up says the counts differ."""
    results, figures, build, runs = fixture_results
    _rewrite("learning_rate", lambda r: [run.update(n_seeds=3, std={key: 0.001 for key in FINAL_METRICS})
                                            for run in r["runs"]])
    text = _generated(report.generate(results, figures, build / "generated"))
    assert "Averaged over 3 seeds per rate" in text and "{Cosine annealing ended with" in text
    assert "different numbers of seeds per setting, from 1 to 3" in text
    assert "\\newcommand{\\SeedWords}{seeds 0, 1 and 2}" in text and "reaches $2.27\\,s$ either side" in text


@pytest.mark.parametrize("fixture_results", ["mixup", "all"], indirect=True)
def test_the_path_and_the_weight_decay_comparison_count_the_seeds_of_their_own_rows(fixture_results):
    """weight_decay with 3 seeds beside lr_schedule's single runs: its comparison is of means over 3 seeds; mixup
    with 3 seeds too, beside the learning rates' and the activation variant's single runs: the path of chosen runs
    shows means for the weight-decay row as mixup read it and for mixup's, single runs elsewhere (and for the
    variant after them, in the brief that has one)."""
    results, figures, build, runs = fixture_results
    variant = sections.brief().name == "all"

    def three_seeds(record):
        for run in record["runs"]:
            run.update(n_seeds=3, std={key: 0.001 for key in FINAL_METRICS})

    _rewrite("weight_decay", three_seeds)
    out = report.generate(results, figures, build / "generated")
    text, path = " ".join(_generated(out).split()), (out / "tables" / "test.tex").read_text()
    assert "(Welch's $t$, 3 seeds per setting)" in text and "(1)" not in path  # the path: lr_schedule's, mixup's
    _rewrite("mixup", three_seeds)
    path = (report.generate(results, figures, build / "generated") / "tables" / "test.tex").read_text()
    rows = [row for row in path.splitlines() if row.endswith("\\\\")][-(4 + variant):]  # the runs, after the head
    assert [("(1)" in row) for row in rows] == [False, False, True, True] + [False] * variant  # mixup's means
    text = _generated(report.generate(results, figures, build / "generated"))
    assert "different numbers of seeds per setting, from 1 to 3" in text  # the set-up: over every section


def test_one_weight_decay_is_refused_in_one_line(fixture_results):
    results, figures, build, runs = fixture_results
    _rewrite("weight_decay", lambda r: r.update(runs=[x for x in r["runs"] if x["run_id"] == r["chosen_run_id"]]))
    with pytest.raises(report.ReportError, match=r"weight_decay hold 1 weight decay; the paper compares at least "
                                                 r"two .* re-run notebook notebooks/weight_decay.ipynb"):
        report.generate(results, figures, build / "generated")


def test_the_weight_decay_gap_is_the_difference_of_the_printed_accuracies(fixture_results):
    results, figures, build, runs = fixture_results

    def accuracies(record):
        record["runs"][0].update(final_train_acc=0.60049, final_val_acc=0.50051)  # printed 60.0 and 50.1
        record["runs"][1].update(final_train_acc=0.6, final_val_acc=0.45)

    _rewrite("weight_decay", accuracies)
    text = _generated(report.generate(results, figures, build / "generated"))
    assert "(9.9 against 15.0 points)" in text  # not 10.0 beside the 60.0 and 50.1 it is read with

    def level(record):  # 51.3 - 31.3 and 50.0 - 30.0: 20.0 points each as printed (one is 19.999... in floats)
        record["runs"][0].update(final_train_acc=0.513, final_val_acc=0.313)
        record["runs"][1].update(final_train_acc=0.5, final_val_acc=0.3)

    _rewrite("weight_decay", level)
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "the same gap between training and validation accuracy (20.0 against 20.0 points)" in text


def test_a_gain_in_points_and_a_public_range_verdict_follow_the_printed_percentages():
    from lib.studies.reference import PublicRange

    assert (report.pct(0.47151), report.pct(0.47149)) == ("47.2", "47.1")
    assert report.points(0.47151, 0.47149) == "$+0.1$"  # not +0.0, beside the 47.2 and 47.1 it is read with
    sd = {"std": {"final_val_acc": 0.0004}, "n_seeds": 3}  # means: the unrounded 0.08 points, the interval's centre
    assert report.difference({"final_val_acc": 0.4714, **sd}, {"final_val_acc": 0.4706, **sd})["difference"] == "+0.1"
    assert report.marked(0.43996, PublicRange(44, 47, "test")) == "44.0"  # printed 44.0: no dagger for 44-47
    assert report.marked(0.43949, PublicRange(44, 47, "test")) == "43.9" + report.DDAGGER  # below


# Figures a notebook draws for its reader that the paper leaves out: the learning rate per step takes a column and
# says what the schedule's equation says (issue 40).
NOT_IN_PAPER = {"lr_schedule_lr"}


@pytest.mark.parametrize("brief", BRIEFS)
def test_the_paper_shows_every_figure_its_notebooks_draw_and_no_other(brief, monkeypatch, tmp_path):
    """A brief's paper (generated) includes exactly the figures its sections' notebooks save (each notebook's
    study.figure(SECTION, "name") calls: "<section>_<name>"), each once, but those it leaves out on purpose
    (NOT_IN_PAPER)."""
    monkeypatch.setenv("AI6103_BRIEF", brief)
    write_fixture_results()
    out = report.generate(paths.results_dir("smoke"), tmp_path, tmp_path / "generated")
    included = [Path(stem).stem for stem in report.figure_stems("".join(
        (out / f"{name}.tex").read_text() for name in ("body", "extras", "conclusion")))]
    saved = {f"{name}_{figure}" for name in sections.brief().names
             for figure in re.findall(r'study\.figure\(SECTION, \\"(\w+)\\"\)',
                                      (paths.notebooks_dir() / f"{name}.ipynb").read_text())}
    assert sorted(included) == sorted(saved - set(NOT_IN_PAPER)) and len(set(included)) == len(included)
    assert set(included) == set(brief_figures(brief))


def test_missing_section_names_the_notebook(tmp_path):
    with pytest.raises(report.ReportError, match=r"^no results of profile 'full' in .* yet: make all PROFILE=full "
                                                 r"runs the study, .* run notebook notebooks/data.ipynb"):
        report.load_results(tmp_path)


def test_one_paper_takes_one_profile_and_one_kind_of_data(fixture_results):
    """Sections from different profiles or data never meet in one paper, and `make report PROFILE=...` is
    the profile the results must come from: each case one line naming what to re-run."""
    results, figures, build, runs = fixture_results
    with pytest.raises(report.ReportError, match=r"not from profile 'full'"):
        report.load_results(results, profile="full")  # the fixture is the smoke profile's
    assert report.load_results(results, profile="smoke")
    quick = write_section("weight_decay", "quick", "synthetic", [runs["wd5"], runs["wd1"]],
                          chosen={"weight_decay": 5e-4}, chosen_run_id="wd5")
    shutil.copy(quick, results)  # a file copied in from another profile's folder
    with pytest.raises(report.ReportError, match=r"results of weight_decay \(quick\) are not from profile 'smoke'"):
        report.load_results(results)
    write_section("weight_decay", "smoke", "cifar100", [runs["wd5"], runs["wd1"]], chosen={"weight_decay": 5e-4},
                  chosen_run_id="wd5")
    with pytest.raises(report.ReportError, match=r"weight_decay \(cifar100\) are not from data_kind 'synthetic'"):
        report.load_results(results)


@pytest.mark.parametrize("fixture_results", BRIEFS, indirect=True)
def test_generated_tables_and_banner(fixture_results):
    """Each section that has a table writes it (the test step's is the path of chosen runs); the summary has none."""
    results, figures, build, runs = fixture_results
    out = report.generate(results, figures, build / "generated")
    numbers = _generated(out)
    assert "\\newcommand{\\BestLr}{0.05}" in numbers
    assert "Built from synthetic data" in numbers
    assert "\\newcommand{\\WdChosen}{\\ensuremath{5\\times10^{-4}}}" in numbers
    for section in sections.brief().names:
        assert (out / "tables" / f"{section}.tex").exists() == (section != "summary"), section
    assert report.pct(runs["wd1"]["final_val_acc"]) in (out / "tables" / "weight_decay.tex").read_text()


def test_real_data_has_no_banner(tmp_path, monkeypatch):
    monkeypatch.setenv("AI6103_RESULTS_DIR", str(tmp_path / "results"))
    write_fixture_results(kind="cifar100", profile="full")
    numbers = _generated(report.generate(tmp_path / "results" / "mixup" / "full", tmp_path, tmp_path / "gen"))
    assert "\\newcommand{\\DataBanner}{}" in numbers


@pytest.mark.parametrize(("fixture_results", "section"), [
    *(("mixup", name) for name in ("learning_rate", "lr_schedule", "weight_decay", "mixup", "test", "summary")),
    ("all", "activation"), ("activation", "activation"), ("activation", "weight_decay"), ("activation", "test")],
    indirect=["fixture_results"])
def test_a_record_without_the_run_it_hands_on_names_its_notebook(fixture_results, section):
    """The paper finds each chosen run by its chosen_run_id and never re-decides a choice: a record without it
    (or, in the activation section, whose ReLU run is not the chosen run of the section it starts from) stops the
    report with one line naming the notebook."""
    results, figures, build, runs = fixture_results
    record = read_section(section, profile="smoke")
    if section == "activation":  # a ReLU run without mixup while mixup chose it, or with the other weight decay
        record["runs"][0] = runs["wd5"] if sections.brief().final == "mixup" else runs["wd1"]
    else:
        record["chosen_run_id"] = None
    write_section(**{k: record[k] for k in RECORD_KEYS})
    with pytest.raises(report.ReportError, match=rf"^results of {section} .*[:;] re-run notebook "
                                                 rf"notebooks/{section}\.ipynb\b") as error:
        report.generate(results, figures, build / "generated")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("fixture_results", BRIEFS, indirect=True)
def test_prose_templates_render_fully_and_strictly(fixture_results):
    """No template syntax reaches the LaTeX (each template's macros, the sections' bodies, the extras' and the
    conclusion), and a value a template names but is not given fails loudly."""
    results, figures, build, runs = fixture_results
    out = report.generate(results, figures, build / "generated")
    names = ["paper", *sections.brief().names, "baselines"]
    assert sorted(p.stem for p in (out / "prose").glob("*.tex")) == sorted(names)
    for path in [*(out / "prose" / f"{name}.tex" for name in names),
                 *(out / f"{part}.tex" for part in ("prose", "body", "extras", "conclusion"))]:
        assert not re.search(r"\\(VAR|BLOCK|#)\{|^\s*%%", path.read_text(), re.MULTILINE), path.name
    for name in names:
        with pytest.raises(jinja2.UndefinedError):
            report.render_parts(name, {})
    body = (out / "body.tex").read_text()
    assert body.count("\\section{") == len(sections.brief().names) - 1  # each section's but the summary's


def test_official_kit_is_used_when_present(tmp_path):
    assert report.choose_style(tmp_path) == ("ai6103aaai", "plainnat", False)
    (tmp_path / "aaai2026.sty").write_text("")
    (tmp_path / "aaai2026.bst").write_text("")
    assert report.choose_style(tmp_path) == ("aaai2026", "aaai2026", True)


def _rewrite(section: str, change, profile: str = "smoke") -> None:
    """Read a fixture section's results, let `change(record)` edit it, write it back."""
    record = read_section(section, profile=profile)
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
        for section in sections.brief().training:
            _rewrite(section, lambda r: _give_seeds(r, 2))
    out = report.generate(results, figures, build / "generated")
    text, table = _generated(out), (out / "tables" / "lr_schedule.tex").read_text()
    if seeds == 1:
        assert "\\newcommand{\\SeedWords}{seed 0}" in text
        assert "Each setting was trained once, so every comparison below is between single runs" in text
        assert "bouthillier2021accounting" in text and "Welch" not in text
        assert "\\WdSentence}{At the end, $\\lambda=5\\times10^{-4}$ had the higher validation" in text
        assert "\\ScheduleSentence}{Cosine annealing ended with a higher validation accuracy" in text
        assert text.count("single run") <= 2 and "confidence interval" not in text and "(6)" not in table
        assert "\\newcommand{\\LrOrderJudged}{}" in text
    else:
        assert "\\newcommand{\\SeedWords}{seeds 0 and 1}" in text
        assert "Each setting was trained with 2 seeds; every number is the mean over them" in text
        assert "Welch's $t$~\\citep{welch1947generalization}" in text and "reaches $4.30\\,s$ either side" in text
        assert "Over the last third of training (epochs 200--300) the cosine setting's mean validation accuracy" in text
        assert "57.8(6)" in table and "in units of its last digit, 47.1(6) for $47.1\\pm0.6$" in text  # mean (sd)
        assert "+ mixup $\\alpha=0.2$ & \\bfseries\\boldmath 70.2(6) &" in (
            out / "tables" / "test.tex").read_text()  # the path of chosen runs too
        assert ("(57.8\\,\\% against 56.1\\,\\%, $+1.7$ points) and a lower training loss (0.006 against 0.845). The "
                "95\\,\\% confidence interval of the difference in validation accuracy is $[-0.7, 4.1]$ (Welch's "
                "$t$, 2 seeds per setting), which holds 0: these seeds cannot tell the cosine schedule and the "
                "constant rate apart, although every seed of the cosine schedule beat every seed of the constant "
                "rate.") in text
        assert ("$+6.7$ points, has a 95\\,\\% confidence interval of $[4.3, 9.1]$ (Welch's $t$, 2 seeds per "
                "setting), which excludes 0; every seed of $\\lambda=5\\times10^{-4}$ beat every seed of "
                "$\\lambda=1\\times10^{-4}$.") in text
        assert ("\\LrOrderJudged}{ The difference in training loss between the first two rates, $-0.168$, has a "
                "95\\,\\% confidence interval of $[-0.192, -0.144]$") in text  # the rate was chosen by training loss
        assert "which excludes 0; every seed of $\\eta=0.05$ beat every seed of $\\eta=0.01$." in text
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
        assert abs(float(found["low"]) - 100 * low) <= 0.1 and abs(float(found["high"]) - 100 * high) <= 0.1
        assert found["excludes_zero"] is excludes and (found["n"], found["other_n"]) == (2, 3)
        assert found["all"] == apart and report.difference(run(b), run(a))["all"] == (apart and "below")
        assert found["difference"] == f"{100 * (np.mean(a) - np.mean(b)):+.1f}"  # of the unrounded means


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
    assert (found["low"], found["high"]) == (f"{0.1 - round(half, 3):.3f}", f"{0.1 + round(half, 3):.3f}")
    assert found["excludes_zero"] and found["metric"] == "validation loss"


def test_a_difference_over_seeds_is_the_centre_of_its_interval():
    """Means 70.24 % and 62.06 % over 3 seeds each (printed 70.2 and 62.1): the difference is the unrounded one,
    8.18, printed +8.2 (not 70.2 - 62.1 = 8.1), and the printed interval is centred on it; the abstract's and the
    section's words use the same number."""
    sd = {"std": {"final_val_acc": 0.007}, "n_seeds": 3}
    found = report.difference({"final_val_acc": 0.7024, **sd}, {"final_val_acc": 0.6206, **sd})
    assert found["difference"] == "+8.2"
    assert round((float(found["low"]) + float(found["high"])) / 2, 2) == 8.2 and found["low"] == "6.6"
    from lib.report.findings import effect

    assert effect({"final_val_acc": 0.7024, **sd}, {"final_val_acc": 0.6206, **sd})["by"] == "8.2"
    assert effect({"final_val_acc": 0.7024}, {"final_val_acc": 0.6206})["by"] == "8.1"  # single runs: the digits


def _wavy_loss(epochs: int = 300, jitter: float = 0.01) -> list[float]:
    """A validation loss that falls to 1.45 at epoch 60, rises to 1.75 at epoch 150 (90 epochs), falls to its minimum
    1.38 at epoch 295 and ends at 1.385, with seeded noise of +-`jitter` on every epoch but the turning points."""
    shape = np.interp(np.arange(1, epochs + 1), [1, 60, 150, 295, epochs], [4.6, 1.45, 1.75, 1.38, 1.385])
    noise = np.random.default_rng(0).uniform(-jitter, jitter, epochs)
    noise[[0, 59, 149, 294, epochs - 1]] = 0
    return list(shape + noise * (shape > 1.39))


def test_a_curve_is_described_by_its_moves_above_the_noise():
    """A curve that fell, rose for 90 epochs and fell again to a late minimum is not 'falling': its three moves are
    found with their epochs, its noise (+-0.01 an epoch) makes none; a smooth fall is one move, a rise within 5 %
    of the minimum none."""
    found = report.curves.moves(_wavy_loss())
    assert [(m["dir"], m["to_epoch"], m["to"]) for m in found] == [("fell", 60, "1.450"), ("rose", 150, "1.750"),
                                                                   ("fell", 295, "1.380")]
    trend = report.val_loss_trend({"val_loss": _wavy_loss(), "val_acc": [0.5] * 300, "train_acc": [0.9] * 300})
    assert trend["wavy"] and trend["shape"] == "wavy" and not trend["ends_at_turn"]
    assert [m["dir"] for m in report.curves.moves([3.0 - i / 100 for i in range(300)])] == ["fell"]
    assert report.curves.moves([2.0] * 99 + [1.5] + [1.5 + 0.05 * i / 200 for i in range(1, 201)]) == [
        {"dir": "fell", "from_epoch": 1, "to_epoch": 100, "to": "1.500"}]


@pytest.mark.parametrize("shape", ["rose", "overfit", "falling", "flat", "diverged", "ended_higher", "wavy",
                                   "wavy_rose"])
def test_validation_loss_sentences_come_from_the_curve(fixture_results, shape):
    """The constant-rate run's validation loss: where it was lowest and how far it rose when it rose by more than
    5 % of its minimum, with what that means: over-confidence while the accuracy held within 3 points of its peak,
    overfitting when the accuracy fell too; else that it kept falling, stayed flat, diverged or ended too soon."""
    results, figures, build, runs = fixture_results
    curve = {"rose": None, "overfit": None, "falling": [3.0 - i / 100 for i in range(300)],  # lowest at the end
             "flat": [2.0] * 99 + [1.5] + [1.5 + 0.05 * i / 200 for i in range(1, 201)],  # +3.3 % from epoch 100
             "diverged": [2.0, 1.5] + [math.nan] * 298, "ended_higher": [2.0, 1.5, 1.6], "wavy": _wavy_loss(),
             "wavy_rose": _wavy_loss()[:250] + list(np.linspace(1.45, 1.9, 50))}[shape]
    if curve:
        _rewrite("lr_schedule", lambda r: r["runs"][0]["curves"].update(val_loss=curve))
    if shape == "overfit":  # the accuracy peaks at 60 % in epoch 100 and falls 4 points to the end
        _rewrite("lr_schedule", lambda r: r["runs"][0]["curves"].update(
            val_acc=[0.6 * min(i, 100) / 100 - 0.04 * max(0, i - 100) / 199 for i in range(300)]))
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    expected = {"rose": "The constant rate's validation loss was lowest at epoch 61 (1.420) and then rose to 1.951 "
                        "(1.4 times its minimum), while its validation accuracy ended at its peak of 56.1\\,\\%: the "
                        "network grew more confident on the validation images it got wrong",
                "overfit": "The constant rate's validation loss was lowest at epoch 61 (1.420) and then rose to 1.951, "
                           "and its validation accuracy fell 4.0 points from its peak of 60.0\\,\\%: it overfitted",
                "falling": "The constant rate's validation loss kept falling to the last epoch (0.010)",
                "flat": "The constant rate's validation loss was lowest at epoch 100 (1.500) and ended close to it "
                        "(1.550)",
                "diverged": "The constant rate's validation loss was no longer finite from epoch 3: the run diverged",
                "ended_higher": "The constant rate's validation loss was lowest at epoch 2 (1.500) and ended at "
                                "1.600, too few epochs later to speak of a trend",
                "wavy": "The constant rate's validation loss fell to 1.450 at epoch 60, rose to 1.750 at epoch 150 and "
                        "fell to 1.380 at epoch 295, ending at 1.385;",
                "wavy_rose": "The constant rate's validation loss fell to 1.450 at epoch 60, rose to 1.750 at epoch "
                             "150, fell to 1.450 at epoch 251 and rose to 1.900 at epoch 300, while its validation "
                             "accuracy ended at its peak of 56.1\\,\\%: the network grew more confident"}
    assert expected[shape] in text, text[text.index("The constant rate's"):][:400]
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


def _crossing_curves() -> tuple[list[float], list[float]]:
    """Validation accuracies a and b over 300 epochs: b leads by 3 points until epoch 180, the curves cross at
    epochs 181, 191 and 201 within 0.3 points, and a leads by 4 points from epoch 216."""
    b = [0.6] * 300
    offsets = [-0.03] * 180 + [0.003] * 10 + [-0.003] * 10 + [0.002] * 15 + [0.04] * 85
    return [0.6 + d for d in offsets], b


def test_several_crossings_are_a_band_not_one_overtaking(fixture_results):
    """Curves that cross three times (at epochs 181, 191 and 201) before one leads for good: the lead changed hands
    between epochs 181 and 201, not 'overtook at epoch 181' (it was behind again at 191); the weight-decay section
    says so."""
    a, b = _crossing_curves()
    found = report.lead_phases(_phase_curves(a), _phase_curves(b))
    assert (found["kind"], found["first"], found["leader"], found["changes"]) == ("changed", "b", "a", 3)
    assert (found["until"], found["band_from"], found["band_to"], found["from_epoch"]) == (180, 181, 201, 201)
    results, figures, build, runs = fixture_results
    _rewrite("weight_decay", lambda r: [run["curves"].update(val_acc=a if run["config"]["weight_decay"] == 5e-4
                                                                else b) for run in r["runs"]])
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert ("$\\lambda=1\\times10^{-4}$ led in validation accuracy until epoch 180 of 300; the lead then changed hands "
            "between epochs 181 and 201 (the curves crossed 3 times;") in text
    assert "from epoch 201 $\\lambda=5\\times10^{-4}$ led to the end." in text
    assert "overtook" not in text and "The phases fit this mechanism" in text


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


def _conclusion(out: Path) -> str:
    """The conclusion as TeX reads it: conclusion.tex with \\ConclusionFindings expanded (prose/paper.tex)."""
    paper = (out / "prose" / "paper.tex").read_text()
    found = re.search(r"\\newcommand\{\\ConclusionFindings\}\{(.*)\}\s*$", paper, re.S)
    text = (out / "conclusion.tex").read_text().replace("\\ConclusionFindings{}", found.group(1))
    return " ".join(re.sub(r"(?<!\\)%[^\n]*\n[ \t]*", "", text).split())


def test_the_conclusion_restates_findings_and_claims_nothing_they_do_not_show(fixture_results):
    """Both schedules fitted the training split, but cosine's 1.7-point lead was already there at epoch 200 (its
    advantage at the last third's start): the conclusion says the gain lies in generalisation, not that it came in
    the last third, nor that the schedule controls how low the training loss gets; the weight-decay section, after
    its batch-normalisation argument, never says the smaller weights generalise better. With the lead gained late,
    the conclusion says so with the computed advantages."""
    results, figures, build, runs = fixture_results
    _rewrite("lr_schedule", lambda r: [run.update(final_train_loss=0.05) for run in r["runs"]])  # both fitted
    large = {"val_acc": [0.55 if i < 200 else 0.68 for i in range(300)],  # the larger decay trails, then leads
             "train_acc": [0.66 if i < 200 else 0.99 for i in range(300)]}
    small = {"val_acc": [0.6] * 300, "train_acc": [0.82 if i < 200 else 0.99 for i in range(300)]}
    _rewrite("weight_decay", lambda r: [run["curves"].update(large if run["config"]["weight_decay"] == 5e-4
                                                                else small) for run in r["runs"]])
    out = report.generate(results, figures, build / "generated")
    conclusion = _conclusion(out)
    assert "Cosine annealing's gain lies in generalisation: both schedules fitted the training split." in conclusion
    assert "last third" not in conclusion and "how low the training loss gets" not in conclusion
    assert "control optimisation" not in conclusion and "regulariser" not in conclusion
    text = " ".join(_generated(out).split()) + (out / "body.tex").read_text()
    assert "The phases fit this mechanism" in text and "generalise better" not in text
    late = [0.45] * 200 + [0.45 + 0.15 * (i + 1) / 100 for i in range(100)]  # cosine: level at 200, 15 ahead at 300
    _rewrite("lr_schedule", lambda r: [run["curves"].update(val_acc=late if run["config"]["schedule"] == "cosine"
                                                               else [0.45] * 300) for run in r["runs"]])
    conclusion = _conclusion(report.generate(results, figures, build / "generated"))
    assert ("both schedules fitted the training split, and most of its advantage (+15.0 points, against +0.0 at "
            "epoch 200) came in the last third of training") in conclusion


def test_the_weight_decay_section_describes_its_phases(fixture_results):
    """The larger decay trailing until epoch 200 of 300 and overtaking: the paper says who led until when, by how
    much, that it fitted more slowly, and ties it to the effective learning rate; without a lead change it does not."""
    results, figures, build, runs = fixture_results
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "never trailed in validation accuracy" in text and "The phases fit this mechanism" not in text
    large = {"val_acc": [0.55 if i < 200 else 0.68 for i in range(300)],  # 5 points behind, then 7 ahead
             "train_acc": [0.66 if i < 200 else 0.99 for i in range(300)]}
    small = {"val_acc": [0.6] * 300, "train_acc": [0.82 if i < 200 else 0.99 for i in range(300)]}
    _rewrite("weight_decay", lambda r: [run["curves"].update(large if run["config"]["weight_decay"] == 5e-4
                                                                else small) for run in r["runs"]])
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "$\\lambda=1\\times10^{-4}$ led in validation accuracy until epoch 200 of 300" in text
    assert "fitted the training split more slowly (training accuracy 66.0\\,\\% against" in text
    assert "overtook it at epoch 201" in text and "The phases fit this mechanism" in text


@pytest.mark.parametrize("fixture_results", ["all", "activation"], indirect=True)
def test_gradient_norms_compare_relu_with_sigmoid(fixture_results):
    """The paragraph gives ReLU's norm over Sigmoid's (median over epochs, last epoch), and each norm by its true
    maximum and that epoch: Sigmoid's largest in epoch 1 says so; one that starts at 0.863 and peaks at 0.867 in
    epoch 2 is reported with 0.867 and epoch 2, never 'highest at the start (0.863)'. The two runs' clauses are worded
    apart. Both briefs with an activation section."""
    results, figures, build, runs = fixture_results
    text = _generated(report.generate(results, figures, build / "generated"))
    norms = read_section("activation", profile="smoke")["extra"]["grad_norm"]
    ratios = [r / s for r, s in zip(norms["relu"], norms["sigmoid"], strict=True)]
    median = sorted(ratios)[len(ratios) // 2 - 1: len(ratios) // 2 + 1]  # an even count: the mean of the middle two
    assert (f"ReLU's norm was a median {sum(median) / 2:#.3g} times Sigmoid's, and {ratios[-1]:#.3g} times at the "
            f"last epoch") in text
    top = max(range(300), key=norms["relu"].__getitem__)
    assert (f"With ReLU, $\\|\\nabla w\\|$ went from 0.0800 in epoch 1 to its maximum, {norms['relu'][top]:#.3g} in "
            f"epoch {top + 1}, and {norms['relu'][-1]:#.3g} in the last; with Sigmoid in blocks 4--10, it fell from "
            f"0.120 in epoch 1 to {norms['sigmoid'][-1]:#.3g}.") in " ".join(text.split())
    assert "highest at the start" not in text

    def second_epoch_peak(record):  # 0.863 in epoch 1, 0.867 in epoch 2, then falling
        record["extra"]["grad_norm"]["sigmoid"] = [0.863, 0.867] + [0.8 - i / 1000 for i in range(298)]

    _rewrite("activation", second_epoch_peak)
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "with Sigmoid in blocks 4--10, it rose from 0.863 to 0.867 in epoch 2 and ended at 0.503." in text

    def last_gone(record):  # Sigmoid's last norm 0 (or ReLU's not a number): no ratio at the last epoch
        record["extra"]["grad_norm"]["sigmoid"][-1] = 0.0
        record["extra"]["grad_norm"]["relu"] = [0.5] * len(record["extra"]["grad_norm"]["relu"])

    _rewrite("activation", last_gone)
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert f"Over the {len(ratios) - 1} epochs where both norms were numbers and Sigmoid's above zero" in text
    assert "times at the last epoch" not in text and "With ReLU, $\\|\\nabla w\\|$ stayed at 0.500;" in text


@pytest.mark.parametrize("differ", [False, True])
def test_the_learning_rate_discussion_follows_whether_rankings_differ(fixture_results, differ):
    """The clause on training and validation rankings that differ is there only when they do."""
    results, figures, build, runs = fixture_results
    if differ:  # the smallest rate now validates best; 0.05 still trains best
        _rewrite("learning_rate", lambda r: r["runs"][2].update(final_val_acc=0.60))
    text = _generated(report.generate(results, figures, build / "generated"))
    assert ("Here the two orders differ" in text) == differ
    assert ("Here the two orders agree" in text) == (not differ)
    assert "neither run" not in (paths.report_dir() / "paper.tex").read_text()


def test_the_learning_rate_orders_follow_the_printed_values_and_the_reason_fits_them(fixture_results):
    """Training losses 1.7341 and 1.7344 print alike: a tie, '=' in the order. The smallest rate validates best
    while a larger one trains best: no regulariser story, which would explain the opposite."""
    results, figures, build, runs = fixture_results
    losses, accuracies = {0.5: 1.7341, 0.05: 1.7344, 0.01: 2.0}, {0.5: 0.40, 0.05: 0.45, 0.01: 0.50}
    _rewrite("learning_rate", lambda r: [run.update(final_train_loss=losses[run["config"]["lr"]],
                                                       final_val_acc=accuracies[run["config"]["lr"]])
                                            for run in r["runs"]])
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "0.5 (1.734) $=$ 0.05 (1.734) $<$ 0.01 (2.000)" in text
    assert ("$\\eta=0.5$ ended with the lowest training loss (a tie at this precision with $\\eta=0.05$: ahead "
            "beyond the printed digits)") in text
    assert "is not the one that does best on held-out images" in text and "noise of a large rate" not in text


def test_a_choice_between_accuracies_printed_alike_says_what_decided(fixture_results):
    """Mixup's 67.944 % against 67.940 % without it, weight decay's two coefficients and the two schedules level
    at 60.0 % (the chosen one ahead beyond the printed digits, or equal and listed first): each section says the tie
    and what decided it in the notebooks' words; the mixup caption no longer calls the bold row 'higher'."""
    results, figures, build, runs = fixture_results
    _rewrite("mixup", lambda r: [run.update(final_val_acc=0.67944 if run["run_id"] == "mix" else 0.6794)
                                 for run in r["runs"]])
    _rewrite("weight_decay", lambda r: [run.update(final_val_acc=0.60004 if run["run_id"] == "wd5" else 0.6)
                                        for run in r["runs"]])
    _rewrite("lr_schedule", lambda r: [run.update(final_val_acc=0.6) for run in r["runs"]])  # cosine listed second
    _rewrite("lr_schedule", lambda r: r["runs"].reverse())  # ... now first: equal unrounded, the first listed wins
    out = report.generate(results, figures, build / "generated")
    text = " ".join(_generated(out).split())
    assert "validation accuracy ended level with that without it" in text
    assert ("Mixup with $\\alpha=0.2$ is therefore part of the final recipe (a tie at this precision with no mixup: "
            "ahead beyond the printed digits).") in text
    assert ("At the end, $\\lambda=5\\times10^{-4}$ had the higher validation accuracy, 60.0\\,\\% (a tie at this "
            "precision with $\\lambda=1\\times10^{-4}$: ahead beyond the printed digits), with") in text
    assert ("The choice is the cosine schedule (a tie at this precision with the constant schedule: equal unrounded, "
            "the first listed wins).") in text
    assert "chosen setting (a tie at this precision; see text)" in (out / "body.tex").read_text()


def test_a_test_accuracy_over_seeds_is_said_to_be_a_mean_of_models(fixture_results):
    results, figures, build, runs = fixture_results
    for section in ("test", "summary"):
        _rewrite(section, lambda r: r["extra"].update(n_seeds=3, test_acc_std=0.004))
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert ("reached a test accuracy of 70.5\\,$\\pm$\\,0.4\\,\\% (mean $\\pm$ standard deviation over its 3 "
            "models") in text
    assert text.count("test accuracy of 70.5") == 1  # once, in its section
    assert "that a model trained with this recipe reaches" in text and "this one trained model" not in text
    assert "\\newcommand{\\TestAcc}{70.5\\,$\\pm$\\,0.4}" in text  # the abstract's


def test_a_test_accuracy_over_seeds_is_printed_with_its_sd_and_n():
    one = {"test_acc": 0.755, "test_run_id": "mix", "n_seeds": 1}
    assert study.test_accuracy_line(one) == "test accuracy 75.50 % (run mix, evaluated once)"
    three = {**one, "n_seeds": 3, "test_acc_std": 0.0031}
    assert study.test_accuracy_line(three) == ("test accuracy 75.50 ± 0.31 % (mean ± sd over 3 seeds, each model "
                                               "evaluated once)")


@pytest.mark.parametrize(("fixture_results", "path"), [
    ("mixup", ["constant $\\eta=0.05$", "+ cosine schedule", "+ $\\lambda=5\\times10^{-4}$", "+ mixup $\\alpha=0.2$"]),
    ("all", ["constant $\\eta=0.05$", "+ cosine schedule", "+ $\\lambda=5\\times10^{-4}$", "+ mixup $\\alpha=0.2$",
             "Sigmoid in blocks 4--10"]),
    ("activation", ["constant $\\eta=0.05$", "+ cosine schedule", "+ $\\lambda=5\\times10^{-4}$",
                    "Sigmoid in blocks 4--10"])], indirect=["fixture_results"])
def test_summary_table_is_the_path_of_chosen_runs(fixture_results, path):
    """The path, derived from the brief (lib.report.path): constant rate, + cosine, + the chosen weight decay, +
    mixup where the brief has it, then the Sigmoid variant of the final model after a rule where the brief tries
    it; not the weight decay that was not chosen; the final model's row bold, maths included, with the test
    accuracy. A row shared by two sections is the later one's (the run mixup starts from, as mixup read it)."""
    results, figures, build, runs = fixture_results
    decayed = read_section("weight_decay", profile="smoke")["chosen_run_id"]
    mixup = "mixup" in sections.brief().names
    if mixup:  # mixup's run without mixup is weight decay's chosen run; the path shows it as mixup read it
        _rewrite("mixup", lambda r: [run.update(final_val_acc=0.3333) for run in r["runs"] if run["run_id"] == decayed])
    out = report.generate(results, figures, build / "generated")
    table = (out / "tables" / "test.tex").read_text()
    rows = [ln for ln in table.splitlines() if ln.endswith("\\\\")][-len(path):]
    assert [row.split(" & ")[0].replace(report.BOLD, "") for row in rows] == path
    final = [i for i, setting in enumerate(path) if "Sigmoid" not in setting][-1]
    assert all(cell.startswith("\\bfseries\\boldmath ") for cell in rows[final].split(" & "))
    score = report.pct(0.7053 if mixup else 0.6745)
    assert score in rows[final] and all(score not in row for i, row in enumerate(rows) if i != final)
    assert ("33.3" in rows[2]) == mixup  # the weight-decay row as the later section read it
    assert ("\\midrule\nSigmoid" in table) == ("Sigmoid" in path[-1])
    assert [row["setting"] for row in report.chosen_path(report.load_results(results, "smoke"))] == [
        setting for setting in path if "Sigmoid" not in setting]


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
    paper = tmp_path / "papers" / "mixup" / "smoke" / "paper.pdf"  # the session's brief's folder
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
    stale = tmp_path / "papers" / "mixup" / "smoke" / "paper.stale.pdf"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a paper of earlier results")
    assert report.main(["--profile", "smoke", "--author", "A. Author"]) == 0
    assert (tmp_path / "papers" / "mixup" / "smoke" / "paper.pdf").read_bytes() == b"the new paper"
    assert not stale.exists() and paths.paper_build_dir("smoke") == tmp_path / "papers" / "build" / "mixup" / "smoke"


def test_public_ranges_appear_only_on_official_data_in_the_full_profile(tmp_path, monkeypatch, fixture_results):
    """Official CIFAR-100, full profile: each table has the public validation range ('--' without one), a dagger
    after a result above it (after its sd: never between a number and its +-) and a double dagger after one below,
    the summary also the final model's public test range; each caption promises only the marks its table shows and
    says above or below, never 'outside'. On synthetic data (the fixture) there is no such column or note. MobileNet
    v1 in the brief with every section (its activation table too), MobileNetV2 in the mixup brief, whose range (other
    recipes than ours) its test accuracy lies above: the paper says why that ranks no recipe."""
    results, figures, build, runs = fixture_results
    synthetic = report.generate(results, figures, build / "generated")
    assert not any("Public" in f.read_text() for f in (synthetic / "tables").glob("*.tex"))
    assert "Public:" not in _generated(synthetic)
    monkeypatch.setenv("AI6103_RESULTS_DIR", str(tmp_path / "official"))
    monkeypatch.setenv("AI6103_BRIEF", "all")
    write_fixture_results(kind="cifar100", profile="full", arch="mobilenet")
    _rewrite("learning_rate", lambda r: _give_seeds(r, 2), profile="full")
    out = report.generate(tmp_path / "official" / "all" / "full", figures, tmp_path / "gen", profile="full")
    lr = (out / "tables" / "learning_rate.tex").read_text()
    assert "47.1(6)$^\\dagger$ & \\bfseries\\boldmath 44--47" in lr  # above 44-47, the mark after the sd
    assert "34.9(6)$^\\ddagger$ & 37--43" in lr  # below 37-43
    assert "Sigmoid & 0.311 & 93.2 & 1.702 & 62.3 & -- \\\\" in (
        out / "tables" / "activation.tex").read_text()
    summary = (out / "tables" / "test.tex").read_text()
    assert "70.5 & \\bfseries\\boldmath 69.7--70.9 \\\\" in summary  # the final model's test accuracy, within
    text = _generated(out)
    assert "the range public course reports give for the same model and settings~\\citep{ai6103reports}" in text
    split = text.replace("} \\newcommand", "}\n\\newcommand")  # one macro a line
    notes = dict(re.findall(r"\\newcommand\{\\(\w+RangeNote)\}\{(.*?)\}\n", split))
    assert "; $^\\dagger$\\,above it; $^\\ddagger$\\,below it." in notes["LrRangeNote"]
    assert "; --: none for this setting" in notes["ActRangeNote"] and "dagger" not in notes["ActRangeNote"]
    assert "outside" not in text.replace("\\GradParamInside}{inside", "")
    assert ("within the range public reports give for this model and recipe "
            "(69.7--70.9\\,\\%~\\citep{ai6103reports})") in " ".join(text.split())
    # MobileNetV2 has a public range for its final test accuracy only (other recipes than ours): no validation
    # column anywhere (a column of dashes says nothing), so no dash promised; the test accuracy 76.0 % lies 2.0 points
    # above the range, and the paper says what that shows and what it does not.
    monkeypatch.setenv("AI6103_RESULTS_DIR", str(tmp_path / "v2"))
    monkeypatch.setenv("AI6103_BRIEF", "mixup")
    write_fixture_results(kind="cifar100", profile="full", arch="mobilenetv2")
    for section in ("test", "summary"):
        _rewrite(section, lambda r: r["extra"].update(test_acc=0.76), profile="full")
    out = report.generate(tmp_path / "v2" / "mixup" / "full", figures, tmp_path / "gen2", profile="full")
    assert not any("Public" in (out / "tables" / f"{name}.tex").read_text() for name in sections.brief().training)
    path = (out / "tables" / "test.tex").read_text()
    assert "Public" in path and "76.0$^\\dagger$ & \\bfseries\\boldmath 68--74" in path and " -- " not in path
    text = " ".join(_generated(out).split())
    assert "none for this setting" not in text and "$^\\dagger$\\,above it." in text
    assert ("76.0\\,\\% test accuracy, 2.0 points above the range public reports give for this model trained with "
            "other recipes than ours (68--74\\,\\%~\\citep{mobilenetv2cifar}).") in text
    assert ("Their recipes differ from ours, so a number above their range places ours among the public results for "
            "this model; it does not show that our recipe is better in any one setting.") in text
    assert "stronger" not in text


def test_every_reference_has_an_author_and_a_year():
    """report/references.bib: every entry names its authors (a compilation of public reports names itself as
    such) and a year."""
    entries = re.split(r"\n@", "\n" + (paths.report_dir() / "references.bib").read_text())[1:]
    assert len(entries) >= 14
    for entry in entries:
        key = entry.split("{")[1].split(",")[0]
        assert re.search(r"^\s*author\s*=", entry, re.M) and re.search(r"^\s*year\s*=\s*\{\d{4}\}", entry, re.M), key


@pytest.mark.parametrize("fixture_results", ["all"], indirect=True)
@pytest.mark.parametrize("seeds", [1, 2])
def test_the_curve_captions_say_what_lines_and_bands_are(fixture_results, seeds):
    """The band's meaning is in the captions of the curve and gradient-norm figures, not in the figures: said once
    (\\BandNote, in the first curve figure's caption: empty with one seed per setting, 'Lines are means over n seeds;
    bands, ...' with n > 1), the other captions pointing to that figure. The brief with every section: its five curve
    figures and the gradient norm's."""
    results, figures, build, runs = fixture_results
    if seeds == 2:
        _rewrite("learning_rate", lambda r: [run.update(n_seeds=2) for run in r["runs"]])
    text = _generated(report.generate(results, figures, build / "generated"))
    note = "\\newcommand{\\BandNote}{{} Lines are means over 2 seeds; bands, $\\pm1$ standard deviation.}"
    assert (note if seeds == 2 else "\\newcommand{\\BandNote}{}") in text
    out = build / "generated"
    floats = re.findall(r"\\begin\{figure\*?\}(.*?)\\end\{figure\*?\}", (out / "body.tex").read_text(), re.DOTALL)
    banded = [f for f in floats if re.search(r"_(curves|grad_norm)\.pdf", f)]
    assert len(banded) == sum(stem.endswith(("_curves", "_grad_norm")) for stem in brief_figures()) == 6
    assert re.search(r"\\caption\{.*\\BandNote\}", banded[0], re.DOTALL) and "fig:lr" in banded[0]  # said once
    assert all("\\BandNote" not in f for f in banded[1:])  # the others point to it (its lines and bands, where n > 1)


@pytest.mark.parametrize("fixture_results", ["all", "activation"], indirect=True)
def test_the_relative_gradient_ratio_is_relus_over_sigmoids_median(fixture_results):
    """The paragraph reports ||grad w|| / ||w|| of each run (its median over the epochs) and ReLU's over Sigmoid's
    (the median over epochs of the ratio), which the conclusion repeats; without weight norms (older results) it says
    the runs did not record them, and the figure's caption names no second panel."""
    results, figures, build, runs = fixture_results
    _rewrite("activation", lambda r: r["extra"].pop("weight_norm", None))

    def facts():
        return report.section_facts(report.load_results(results, "smoke"))["activation"]

    before = facts()
    assert before.values["relative"] is None and "{\\GradNormRelative}{}" in before.macros.text()
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "change the gradient norm too; these runs did not record them." in text
    weights = {"relu": [10 + i / 30 for i in range(300)], "sigmoid": [2.0 + i / 100 for i in range(300)]}
    _rewrite("activation", lambda r: r["extra"].update(weight_norm=weights))
    grads = read_section("activation", profile="smoke")["extra"]["grad_norm"]
    ratios = sorted((gr / wr) / (gs / ws) for gr, wr, gs, ws in zip(grads["relu"], weights["relu"], grads["sigmoid"],
                                                                    weights["sigmoid"], strict=True))
    each = {name: sorted(g / w for g, w in zip(grads[name], weights[name], strict=True)) for name in weights}
    medians = {name: f"{(v[149] + v[150]) / 2:#.3g}" for name, v in each.items()}
    after = facts()
    ratio = f"{(ratios[149] + ratios[150]) / 2:#.3g}"
    assert after.values["relative"] == {"ratio": ratio, "relu": medians["relu"], "sigmoid": medians["sigmoid"]}
    assert "$\\|\\nabla w\\|/\\|w\\|$ (right)" in after.macros.text()
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert (f"so $\\|\\nabla w\\|/\\|w\\|$ compares the runs more fairly: its median over the epochs was "
            f"{medians['relu']} with ReLU and {medians['sigmoid']} with Sigmoid, ReLU's a median {ratio} times "
            f"Sigmoid's.") in text
    assert f"({ratio} times relative to the weight's norm)" in text  # the conclusion


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


def test_the_curve_figures_label_long_runs_and_print_their_ticks_at_7_pt(tmp_path):
    """Five panels over 300 epochs (3 settings, 2 seeds): each epoch axis is labelled every 100 epochs (0, 100, 200
    and 300; the zoom on the last third at 200, 250 and 300), not only at 0 and 200; over 15 epochs every 5. Saved
    as the notebooks save it, the figure's tick labels print at 7 pt or more where the paper sets it (\\figfull:
    \\textwidth, 7 in, and at most 0.3 \\textheight, 2.7 in); the gradient norms' two panels are labelled alike."""
    from lib.studies import plots

    def shown(ax):
        low, high = ax.get_xlim()
        return [t.get_text().replace("\u2212", "-") for t in ax.get_xticklabels() if low <= t.get_position()[0] <= high]

    histories = _histories(300, seeds=2)
    histories["C"] = histories["A"].copy()
    fig = _drawn(plots.plot_curves(histories))
    assert [shown(ax) for ax in fig.axes[:5]] == [["0", "100", "200", "300"]] * 4 + [["200", "250", "300"]]
    fig.savefig(tmp_path / "curves.pdf")  # as plots.save writes the PDF (the style's tight bounding box), no PNG
    width, height = (float(v) for v in re.search(rb"/MediaBox \[ *0 0 ([\d.]+) ([\d.]+)",
                                                 (tmp_path / "curves.pdf").read_bytes()).groups())
    scale = min(7.0 * 72 / width, 0.3 * 9.0 * 72 / height)  # what \\figfull does to it
    sizes = [t.get_fontsize() for ax in fig.axes[:5] for t in ax.get_xticklabels() + ax.get_yticklabels()]
    assert min(sizes) * scale >= 7.0, (min(sizes), scale)
    assert [shown(ax) for ax in _drawn(plots.plot_curves(_histories(15))).axes[:4]] == [["5", "10", "15"]] * 4
    norms = _histories(300, grad_norm_mean=[np.full(300, 0.3), np.full(300, 0.05)],
                       weight_norm=[np.full(300, 20.0), np.full(300, 5.0)])
    assert [shown(ax) for ax in _drawn(plots.plot_grad_norms(norms, "w")).axes[:2]] == [["0", "100", "200", "300"]] * 2


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


@pytest.mark.parametrize(("fixture_results", "sentence"), [
    ("all", "The 9 settings (1,845 epochs in all) trained on NVIDIA H200 in 1.5 hours"),
    ("mixup", "The 8 settings (1,545 epochs in all) trained on NVIDIA H200 in 80 minutes"),
    ("activation", "The 8 settings (1,545 epochs in all) trained on NVIDIA H200 in 80 minutes")],
    indirect=["fixture_results"])
def test_the_set_up_says_where_and_how_long_the_study_trained(fixture_results, sentence):
    """The devices and wall time come from the results rows (lib.studies.study.training_cost), each setting counted
    once (mixup's run without mixup is weight decay's; the activation section's ReLU run is the final model);
    without a device on record the sentence is left out."""
    from lib.report.setup import duration

    results, figures, build, runs = fixture_results
    assert "\\newcommand{\\HardwareSentence}{}" in _generated(report.generate(results, figures, build / "generated"))
    for section in sections.brief().training:
        _rewrite(section, lambda r: [run.update(device="NVIDIA H200", train_seconds=600.0) for run in r["runs"]])
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert sentence in text.replace("{,}", ",")
    assert [duration(s) for s in (30, 75, 600, 6000, 40000)] == ["30 seconds", "1 minute", "10 minutes",
                                                                 "1.7 hours", "11 hours"]


# ---------------------------------------------------------------- the paper reads the brief


def test_the_activation_paragraph_follows_the_architecture_trained():
    """Which Sigmoids lie between layers[8].conv1 and the loss is read from the model itself: MobileNet v1's
    blocks have no shortcuts (every path passes the 6 Sigmoids of blocks 8-10); MobileNetV2's stride-1 blocks have
    shortcuts, so only its own block's 2 lie on every path and blocks 9 and 10's may be bypassed; Sigmoids only
    before the watched layer lie on no path."""
    from lib.report.sections.activation import gradient_path

    blocks = list(range(4, 11))
    v1 = gradient_path({"arch": "mobilenet", "sigmoid_blocks": blocks}, "layers.8.conv1.weight")
    assert (v1["every"], v1["some"], v1["own"], v1["blocks"], v1["bypassed"]) == (6, 6, 2, [9, 10], [])
    assert v1["layer"] == {"kernel": "3\\times3", "kind": "depthwise", "shape": "512\\times3\\times3"}
    v2 = gradient_path({"arch": "mobilenetv2", "sigmoid_blocks": blocks}, "layers.8.conv1.weight")
    assert (v2["every"], v2["some"], v2["own"], v2["blocks"], v2["bypassed"]) == (2, 6, 2, [], [9, 10])
    assert v2["layer"] == {"kernel": "1\\times1", "kind": "expansion", "shape": "384\\times64"}
    before = gradient_path({"arch": "mobilenet", "sigmoid_blocks": [2, 3]}, "layers.8.conv1.weight")
    assert (before["every"], before["some"]) == (0, 0)


@pytest.mark.parametrize("fixture_results", ["all"], indirect=True)
def test_the_mobilenetv2_activation_paragraph_names_its_shortcuts(fixture_results):
    results, figures, build, runs = fixture_results
    text = " ".join(_generated(report.generate(results, figures, build / "generated")).split())
    assert "the $1\\times1$ expansion convolution of block~8 ($384\\times64$ weights)" in text
    assert ("every path of the gradient of \\GradParam{} back from the loss passes through 2 Sigmoids: the two of "
            "its own block~8, each of which") in text
    assert "The shortcuts of blocks~9 and 10 carry part of it around their Sigmoids (6 on the longest path)" in text
    assert "depthwise convolution of block" not in text and "No shortcut carries" not in text


@pytest.mark.parametrize("fixture_results", BRIEFS, indirect=True)
def test_the_papers_parts_follow_the_brief(fixture_results):
    """The title is the brief's; the sections' bodies come in the brief's order; the introduction asks one
    question per section that has one, the abstract varies what the brief's sections compare, and a brief
    without mixup says nothing of it."""
    results, figures, build, runs = fixture_results
    spec = sections.brief()
    out = report.generate(results, figures, build / "generated")
    body, paper = (out / "body.tex").read_text(), (out / "prose" / "paper.tex").read_text()
    labels = {"learning_rate": "sec:lr", "lr_schedule": "sec:sched", "weight_decay": "sec:wd", "mixup": "sec:mixup",
              "test": "sec:test", "activation": "sec:act"}
    places = [body.index(f"\\label{{{labels[name]}}}") for name in spec.names if name in labels]
    assert places == sorted(places) and body.index("Data Preprocessing") < places[0]
    assert paper.startswith("% Generated") and "\\newcommand{\\PaperTitle}{" + spec.title.replace(
        "{arch}", "\\ArchName{}").replace("{data}", "\\DataTitle{}") + "}" in paper
    questions = {"mixup": "four", "activation": "four", "all": "five"}[spec.name]
    assert f"{questions} questions in order" in paper
    text = " ".join(_generated(out).split())
    assert ("mixup" in text.lower()) == ("mixup" in spec.names)
    assert ("Sigmoid" in body) == ("activation" in spec.names)
    assert "\\section{Conclusion}" not in body
    assert "Each step of the study started" in (out / "conclusion.tex").read_text()


def test_a_section_without_a_report_module_gets_the_generic_values(fixture_results, monkeypatch):
    """A section whose report module is missing still has its template rendered, with the generic values (its
    name, n, whether it is the final choice or the test step)."""
    results, figures, build, runs = fixture_results
    from lib.report import generation

    found = generation.module_of
    monkeypatch.setattr(generation, "module_of", lambda name: None if name == "data" else found(name))
    out = report.generate(results, figures, build / "generated")
    assert "\\section{Data Preprocessing}" in (out / "body.tex").read_text()
    assert "\\input{generated/tables/data}" in (out / "body.tex").read_text()
    assert generation.generic_values(report.load_results(results, "smoke"), "mixup") == {
        "name": "mixup", "n": 1, "final": True, "test_step": False, "compares": "mixup_alpha",
        "starts_from": "weight_decay"}
    assert found("no_such_section") is None


def test_generic_modules_and_the_skeleton_name_no_section():
    """Only the brief, a section's template and its report module name it: the paper's skeleton and the generic
    modules of lib.report do not (docs/paper.md)."""
    names = {name for brief in BRIEFS for name in briefs.load(brief).names} - {"data", "test"}
    skeleton = (paths.report_dir() / "paper.tex").read_text()
    assert not [name for name in names if re.search(rf"\b{name}\b", skeleton)]
    folder = paths.PROJECT_ROOT / "lib" / "report"
    for module in ("generation", "reading", "tables", "setup", "path", "templates", "build", "style", "curves",
                   "findings"):
        source = (folder / f"{module}.py").read_text()
        quoted = [name for name in names | {"data", "test", "summary"} if re.search(rf"[\"']{name}[\"']", source)]
        assert not quoted, (module, quoted)


def test_make_report_takes_the_brief(fixture_results, monkeypatch, capsys):
    """--brief: the paper of that brief's results (AI6103_BRIEF exported before anything reads it); a missing
    figure names the notebook that draws it, found by the longest section name its file begins with."""
    results, figures, build, runs = fixture_results
    monkeypatch.setenv("AI6103_BRIEF", "mixup")  # restored after the test, whatever main exports
    with session_brief("activation"):
        write_fixture_results()
    out = build / "generated"  # not the project's report/generated/, where --generate-only writes
    with monkeypatch.context() as patch:
        patch.setattr("lib.report.build.generate", lambda **kwargs: report.generate(out_dir=out, **kwargs))
        assert report.main(["--generate-only", "--profile", "smoke", "--brief", "activation", "--author", "A"]) == 0
    assert sections.brief().name == "activation" and "Sigmoid" in (out / "body.tex").read_text()
    assert "mixup" not in (out / "body.tex").read_text().lower()
    assert report.main(["--profile", "smoke", "--brief", "no_such_brief"]) == 1
    assert "brief must be one of" in capsys.readouterr().err
    from lib.report.build import figure_section

    assert [figure_section(stem) for stem in ("lr_schedule_lr", "learning_rate_curves", "activation_grad_norm",
                                              "baselines_curves", "other")] == [
        "lr_schedule", "learning_rate", "activation", "baselines", None]
    figures.mkdir(parents=True, exist_ok=True)
    for stem in brief_figures():  # every figure but one (empty files: the build stops before LaTeX reads them)
        if stem != "lr_schedule_curves":
            (figures / f"{stem}.pdf").write_bytes(b"")
    with pytest.raises(report.ReportError, match=r"lr_schedule_curves.pdf does not exist: run notebook "
                                                 r"notebooks/lr_schedule.ipynb first"):
        report.build_report(paths.results_dir("smoke"), figures, build)

"""A new section is three new files and one entry in a brief (docs/extending.md), tried as a maintainer would: in a
temporary copy of the project, a `dropout` section (notebook, prose template, report module) goes into a new
term's brief built from the activation brief, between weight decay and the test step, and becomes the final choice;
the tiny study and its paper run through the driver and `python -m lib.report` of that copy.

This is also the activation brief's pipeline test (MobileNet v1, the rates 0.2/0.05/0.01, the test set before
ReLU vs Sigmoid): about 100 s on 2 busy cores, the price of a second study of notebooks and a paper.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "tiny"

TEMPLATE = r"""\BLOCK{from "_macros.tex.j2" import range_note}
\newcommand{\DropoutSentence}{The run with dropout $p=\VAR{p}$ ended at \VAR{with_dropout}\,\% validation accuracy,
the run without it at \VAR{without}\,\%.}
\BLOCK{macro question()}whether dropout before the classifier helps\BLOCK{endmacro}
\BLOCK{macro body()}
\section{Dropout}\label{sec:dropout}
\begin{figure*}[t]
\centering
\figfull{dropout_curves.pdf}
\caption{Dropout: the panels of Fig.~\ref{fig:lr} with and without dropout.\BandNote}
\label{fig:dropout}
\end{figure*}
\begin{table}[t]
\centering\small
\input{generated/tables/\VAR{name}}
\caption{Dropout: final values.}
\label{tab:dropout}
\end{table}
We add dropout before the classifier to the weight-decay choice (Fig.~\ref{fig:dropout}, Table~\ref{tab:dropout}).
\DropoutSentence
\BLOCK{endmacro}
"""

MODULE = '''"""The paper's dropout section: the run with dropout against the run it starts from."""
from __future__ import annotations

from ..formatting import Facts, shown
from ..reading import chosen, others, start_run
from ..tables import run_table


def facts(results: dict[str, dict], name: str) -> Facts:
    base = start_run(results, name)
    dropped = others(results[name], base)[0]
    found = Facts()
    found.tables[name] = run_table([("no dropout", base, chosen(results[name]) is base),
                                    (f"dropout {dropped['config']['dropout']:g}", dropped,
                                     chosen(results[name])["run_id"] == dropped["run_id"])])
    found.values = {"p": f"{dropped['config']['dropout']:g}", "with_dropout": shown(dropped)["val_acc"],
                    "without": shown(base)["val_acc"]}
    return found
'''

ENTRY = '''
[[section]]
name = "dropout"
starts_from = "weight_decay"
compares = "dropout"
values = [0.0, 0.2]
choose_by = ["val_acc"]
'''


def project_copy(folder: Path) -> Path:
    """The project's sources in `folder`, without generated outputs."""
    ignore = shutil.ignore_patterns("__pycache__", "build", "generated", "*.pdf")
    for name in ("lib", "notebooks", "briefs", "report", "scripts"):
        shutil.copytree(ROOT / name, folder / name, ignore=ignore)
    return folder


def add_dropout_section(copy: Path) -> None:
    """What docs/extending.md asks of a maintainer: the nearest notebook copied and renamed, a template, a report
    module, and the brief's entry (here the final choice, so the test step follows it)."""
    notebook = json.loads((copy / "notebooks" / "weight_decay.ipynb").read_text())
    for cell in notebook["cells"]:
        text = "".join(cell["source"]).replace('SECTION = "weight_decay"', 'SECTION = "dropout"')
        text = text.replace("weight_decays", "dropouts").replace("# Weight decay", "# Dropout")
        cell["source"] = text.splitlines(keepends=True)
    (copy / "notebooks" / "dropout.ipynb").write_text(json.dumps(notebook, indent=1))
    (copy / "report" / "prose" / "dropout.tex.j2").write_text(TEMPLATE)
    (copy / "lib" / "report" / "sections" / "dropout.py").write_text(MODULE)
    brief = (copy / "briefs" / "activation.toml").read_text()
    brief = brief.replace('final = "weight_decay"', 'final = "dropout"')
    brief = brief.replace('[[section]]\nname = "test"', ENTRY.lstrip() + '\n[[section]]\nname = "test"')
    brief = brief.replace('starts_from = "weight_decay"\ncompares = "sigmoid_blocks"',
                          'starts_from = "dropout"\ncompares = "sigmoid_blocks"')
    (copy / "briefs" / "term.toml").write_text(brief)


@pytest.mark.notebook
def test_a_brief_with_an_added_section_runs_its_study_and_paper(tmp_path):
    if shutil.which("latexmk") is None or shutil.which("pdftotext") is None:
        pytest.skip("TeX or poppler is not installed (make setup installs them)")
    from test_report import check_paper

    copy = project_copy(tmp_path / "project")
    add_dropout_section(copy)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(copy), "AI6103_DEVICE": "cpu",
           **{f"AI6103_{name.upper()}_DIR": str(out / name)
              for name in ("runs", "results", "figures", "data", "executed", "report")}}
    driver = subprocess.run([sys.executable, str(copy / "scripts" / "run_study.py"), "--brief", "term", "--profile",
                             PROFILE, "--quiet"], cwd=copy, env=env, capture_output=True, text=True, timeout=900)
    assert driver.returncode == 0, driver.stdout[-3000:] + driver.stderr[-3000:]
    results = out / "results" / "term" / PROFILE
    order = [p.stem for p in sorted((out / "executed" / "term" / PROFILE).glob("*.ipynb"), key=os.path.getmtime)]
    assert order == ["data", "learning_rate", "lr_schedule", "weight_decay", "dropout", "test", "activation",
                     "summary"]
    record = {name: json.loads((results / f"{name}.json").read_text()) for name in order}
    assert [r["config"]["lr"] for r in record["learning_rate"]["runs"]] == [0.2, 0.05, 0.01]
    assert {r["config"]["arch"] for r in record["dropout"]["runs"]} == {"mobilenet"}
    assert record["test"]["extra"]["final_section"] == "dropout"
    assert record["test"]["extra"]["test_run_id"] == record["dropout"]["chosen_run_id"]
    relu = next(r for r in record["activation"]["runs"] if not r["config"]["sigmoid_blocks"])
    assert relu["run_id"] == record["dropout"]["chosen_run_id"]  # activation starts from the new final choice

    paper = subprocess.run([sys.executable, "-m", "lib.report", "--brief", "term", "--profile", PROFILE], cwd=copy,
                           env=env, capture_output=True, text=True, timeout=600)
    assert paper.returncode == 0, paper.stdout[-3000:] + paper.stderr[-3000:]
    built = out / "report" / "build" / "term" / PROFILE / "paper.pdf"  # beside generated/, which names the figures
    check_paper(built, (copy / "report" / "paper.tex").read_text(), out / "figures" / "term" / PROFILE, 6)
    pdf = out / "report" / "term" / PROFILE / "paper.pdf"
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout.split())
    assert re.search(r"Dropout .*Test Accuracy .*Activation", text)  # the brief's order
    assert "whether dropout before the classifier helps" in text and "MobileNet (v1)" in text
    assert "mixup" not in text.lower()

"""The paper's generated LaTeX and its build: a profile's results files in, `report/<profile>/paper.pdf` out.

What it is: `generate()` turns the section results files (lib.studies.results) into `generated/` (numbers.tex, one
macro per number; prose/<name>.tex from the Jinja2 templates report/prose/<name>.tex.j2; tables/<section>.tex
from the one booktabs template report/tables/booktabs.tex.j2; the code listings) and `build_report()` compiles
report/paper.tex with latexmk. `python -m lib.report` does both. What it is not: the prose (paper.tex and
report/prose/ hold it, with its branches) or the figures (the notebooks save them through lib's figure helper).

Modules, each importing only those before it: formatting (numbers and TeX) -> reading (results files, run
pickers) -> curves (what a curve did), findings (final numbers)
-> templates -> tables -> sections/* (one per paper section, returning
its Facts, writing nothing) -> style -> generation (all the writing) -> build (latexmk, `main`).
"""
from ..studies.sections import SECTIONS
from .build import build_report, main
from .curves import fitted, late_gain, lead_phases, val_loss_trend
from .findings import difference
from .formatting import count, join_words, loss, pct, plain, points, sci, shown, tex_escape, with_sd
from .generation import PLACEHOLDER, PROSE, author_tex, generate
from .reading import DEFAULT_PROFILE, ReportError, load_results, runs_per_setting
from .style import choose_style, figure_stems
from .tables import BOLD, DAGGER, baselines_table, marked, range_note, run_table, summary_table
from .templates import booktabs, render_prose

__all__ = ["BOLD", "DAGGER", "DEFAULT_PROFILE", "PLACEHOLDER", "PROSE", "ReportError", "SECTIONS", "author_tex",
           "baselines_table", "booktabs", "build_report", "choose_style", "count", "difference", "figure_stems",
           "fitted", "generate", "join_words", "late_gain", "lead_phases", "load_results", "loss", "main", "marked",
           "pct", "plain", "points", "range_note", "render_prose", "run_table", "runs_per_setting", "sci", "shown",
           "summary_table", "tex_escape", "val_loss_trend", "with_sd"]

"""The paper's generated LaTeX and its build: a brief's results files in, `report/<brief>/<profile>/paper.pdf` out.

What it is: `generate()` turns the results files of the session's brief (lib.studies.sections.brief) into
`generated/`: numbers.tex (one macro per number), each section's template report/prose/<name>.tex.j2 rendered in
parts (its macros, its body in the brief's order, its clauses of the introduction, the abstract and the
conclusion: docs/paper.md), the tables from the one booktabs template report/tables/booktabs.tex.j2, and the code
listings; `build_report()` compiles the skeleton report/paper.tex with latexmk. `python -m lib.report` does both.
What it is not: the prose (report/prose/ holds it, with its branches) or the figures (the notebooks save them
through lib's figure helper).

Modules, each importing only those before it: formatting (numbers and TeX) -> reading (results files, run
pickers) -> curves (what a curve did), findings (final numbers) -> templates -> tables -> path (the path of
chosen runs) -> setup (the paper's generic values) -> sections/<name> (one per section or extra, found by its
name, returning its Facts, writing nothing) -> style -> generation (all the writing) -> build (latexmk, `main`).
"""
from .build import build_report, main
from .curves import fitted, late_gain, lead_phases, val_loss_trend
from .findings import difference
from .formatting import count, join_words, loss, pct, plain, points, sci, shown, tex_escape, with_sd
from .generation import PLACEHOLDER, author_tex, generate, section_facts
from .path import chosen_path, variants
from .reading import DEFAULT_PROFILE, ReportError, load_results, runs_per_setting
from .style import choose_style, figure_stems
from .tables import BOLD, DAGGER, DDAGGER, baselines_table, marked, path_table, range_note, run_table
from .templates import PARTS, booktabs, render_parts, render_prose

__all__ = ["BOLD", "DAGGER", "DDAGGER", "DEFAULT_PROFILE", "PARTS", "PLACEHOLDER", "ReportError", "author_tex",
           "baselines_table", "booktabs", "build_report", "choose_style", "chosen_path", "count", "difference",
           "figure_stems", "fitted", "generate", "join_words", "late_gain", "lead_phases", "load_results", "loss",
           "main", "marked", "path_table", "pct", "plain", "points", "range_note", "render_parts", "render_prose",
           "run_table", "runs_per_setting", "sci", "section_facts", "shown", "tex_escape", "val_loss_trend",
           "variants", "with_sd"]

"""The paper's Jinja2 templates: the prose (report/prose/<name>.tex.j2) and the one booktabs table
(report/tables/booktabs.tex.j2), with delimiters LaTeX does not use and StrictUndefined.

A prose template is in parts (docs/paper.md): what it writes outside any Jinja macro is its preamble part, the
`\\newcommand`s the paper's text uses; the Jinja macros it may define, `body()`, `closing()`, `question()`,
`finding()` and `conclusion()`, are its other parts (PARTS), each rendered on its own with the same values.

What it is: `render_parts(name, values)`, `render_prose(name, values)` (the preamble part alone) and
`booktabs(...)`, each returning text. What it is not: the values they print (the section modules) or the files
they go to (lib.report.generation).
"""
from __future__ import annotations

import functools

import jinja2

from ..core import paths


@functools.cache
def _environment(folder: str) -> jinja2.Environment:
    """Jinja2 for report/<folder>/ with delimiters LaTeX does not use: \\BLOCK{...}, \\VAR{...}, \\#{...} comments
    and `%%` line statements (`{%`, `{{` and `#` are LaTeX's own). A value a template names but is not given
    fails loudly (jinja2.UndefinedError)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths.report_dir() / folder),
        block_start_string="\\BLOCK{", block_end_string="}",
        variable_start_string="\\VAR{", variable_end_string="}",
        comment_start_string="\\#{", comment_end_string="}",
        line_statement_prefix="%%",
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=False, undefined=jinja2.StrictUndefined)


# A template's parts besides its preamble (the text outside any macro), each a Jinja macro without arguments:
# body (its section, with its figures and tables, in the brief's order), closing (the text of the paper's
# conclusion), question (a clause of the introduction's list of questions), finding (a sentence of the abstract)
# and conclusion (sentences of the conclusion's findings).
PARTS = ("body", "closing", "question", "finding", "conclusion")


def has_prose(name: str) -> bool:
    """Whether report/prose/<name>.tex.j2 exists."""
    return (paths.report_dir() / "prose" / f"{name}.tex.j2").is_file()


def render_parts(name: str, values: dict) -> dict[str, str]:
    """report/prose/<name>.tex.j2 filled in with `values`: {"macros": its preamble part, and each part of PARTS
    it defines, rendered on its own} (jinja2.UndefinedError if it names a missing value)."""
    module = _environment("prose").get_template(f"{name}.tex.j2").make_module(values)
    parts = {"macros": str(module)}
    for part in PARTS:
        macro = getattr(module, part, None)
        if macro is not None:
            parts[part] = str(macro())
    return parts


def render_prose(name: str, values: dict) -> str:
    """The preamble part of report/prose/<name>.tex.j2 filled in with `values` (jinja2.UndefinedError if it
    names a missing one)."""
    return render_parts(name, values)["macros"]


Row = str | list[str]  # a table line: a rule as it is (r"\cmidrule(l){4-5}"), or the cells of a row


def booktabs(columns: str, head: list[Row], body: list[Row], narrow: bool = False) -> str:
    """A booktabs tabular with column spec `columns` (e.g. '@{}lrr@{}'): `head`, a \\midrule, `body`, each row's
    cells joined by ' & ' and ended by ' \\\\'; `narrow` puts less space between the columns (tables with
    public-range columns). One template for every table of the paper: report/tables/booktabs.tex.j2."""
    return _environment("tables").get_template("booktabs.tex.j2").render(
        columns=columns, rows=[*head, r"\midrule", *body], narrow=narrow)

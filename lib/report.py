"""The paper's generated LaTeX and its build: a profile's results files in, `report/<profile>/paper.pdf` out.

What it is: `generate()` turns the section results files (lib.results) into `generated/` — `numbers.tex`
(one macro per number), `prose/<name>.tex` (one macro per result-dependent sentence, rendered from the
Jinja2 template report/prose/<name>.tex.j2), `tables/<section>.tex` (the tabulars) and the code listings —
and `build_report()` compiles `report/paper.tex` with latexmk in a build folder that holds copies of the
sources, the generated files and the figures. `python -m lib.report` does both.
What it is not: the prose. paper.tex holds the fixed text and report/prose/ the sentences that depend on the
results, with their branches; this module only computes the values they print (formatted numbers, which run
won, comparison words, what a run's per-epoch curve did, n runs per setting, public ranges from lib.reference)
and finds the runs the text names by run id, never re-deciding a section's choice.
Nor does it draw the figures (the notebooks save them through lib's figure helper). Beyond the brief, the
baselines of notebook 09_baselines become a short section with a table when their results file exists; without
it the paper is the study's alone.

Style: the official AAAI kit when its `.sty` lies in report/ (it cannot be redistributed), else our
report/ai6103aaai.sty, written from the kit's published geometry, with natbib's plainnat.bst.
"""
from __future__ import annotations

import argparse
import ast
import functools
import math
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import jinja2

from . import paths
from .baselines import SECTION as BASELINES
from .baselines import read_baselines
from .notation import blocks_range, parameter_name, power_of_ten
from .profiles import PROFILES
from .reference import PublicRange, applies, public_range
from .results import read_section
from .sections import SECTIONS, TRAINING, check_chain, chosen_run, figure_section

PROSE = ("setup", "02_learning_rate", "03_lr_schedule", "04_weight_decay", "05_mixup", "06_activation",
         "07_summary", "public_ranges", "09_baselines")  # report/prose/<name>.tex.j2 -> generated/prose/<name>.tex
KIT_NAMES = ("aaai2026", "aaai2025", "aaai24", "aaai23")  # official kit style names, newest first
OWN_STYLE, OWN_BST = "ai6103aaai", "plainnat"
SOURCES = ("paper.tex", "references.bib", f"{OWN_STYLE}.sty")  # what report/ contributes to a build
DEFAULT_PROFILE = "full"  # as in the Makefile
ARCH_NAMES = {"mobilenetv2": "MobileNetV2", "mobilenet": "MobileNet~(v1)", "small_cnn": "small CNN",
              "resnet18": "ResNet-18", "resnet34": "ResNet-34"}
RISE = 0.05  # a validation loss that ends more than this share above its minimum has risen (the run overfits)
OVERFIT_EPOCHS = 3  # ... after at least this many epochs past the minimum; fewer are no trend (smoke: 2 epochs)
LATE = 0.25  # the share of training at the end over which the training loss's last descent is reported
ANONYMOUS = "Anonymous"  # the author when none is given and git knows no user.name


class ReportError(RuntimeError):
    """Something the paper needs is missing or wrong; the message says what to run or fix (one line)."""


# ---------------------------------------------------------------- formatting (one place for every number)

def pct(fraction: float, digits: int = 1) -> str:
    """An accuracy or share in [0, 1] as a percentage without the sign: 0.4712 -> '47.1'."""
    return f"{100 * fraction:.{digits}f}"


def loss(value: float) -> str:
    """A loss as printed: 2.011 -> '2.011'; a diverged run's (NaN, inf) -> 'diverged'."""
    return f"{value:.3f}" if math.isfinite(value) else "diverged"


def plain(value: float) -> str:
    """A learning rate or alpha as typed: 0.05 -> '0.05'."""
    return f"{value:g}"


sci = power_of_ten  # a weight-decay coefficient in the brief's notation: 5e-4 -> '5\\times10^{-4}' (math mode)


def points(a: float, b: float) -> str:
    """a - b, two fractions, in percentage points with its sign, in math mode: '$+1.7$'; the difference of the
    percentages as printed (pct), so it agrees with them (47.2 against 47.1 is +0.1, whatever the digits after)."""
    return f"${float(pct(a)) - float(pct(b)):+.1f}$"


def with_sd(value: str, sd: str | None) -> str:
    """A printed mean with its standard deviation over seeds: '47.1\\,$\\pm$\\,0.4'; a single run's value as it is."""
    return value if sd is None else f"{value}\\,$\\pm$\\,{sd}"


def _pct_or_none(fraction: float | None) -> str | None:
    return None if fraction is None else pct(fraction)


def count(n: int) -> str:
    """40000 -> '40{,}000' (a thousands comma without a space after it in TeX)."""
    return f"{int(n):,}".replace(",", "{,}")


def join_words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


TEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    """Text typed by someone (a name, a profile) as LaTeX prints it: 'A & B_c' -> 'A \\& B\\_c'."""
    return "".join(TEX_SPECIALS.get(ch, ch) for ch in text)


def span(found: PublicRange) -> str:
    """A public range as a table prints it: '44--47' (percent, an en dash in TeX)."""
    return f"{found.low:g}--{found.high:g}"


# ---------------------------------------------------------------- reading

def load_results(results_dir: Path | None = None, profile: str | None = None) -> dict[str, dict]:
    """Every section's results file (from `results_dir`, default the profile's results folder); a one-line
    ReportError naming the notebook to run if one is missing, or the notebooks to re-run if the sections come
    from different profiles or data (or not from `profile`), or do not chain (lib.sections.check_chain)."""
    results = {}
    for section in SECTIONS:
        try:
            results[section] = read_section(section, results_dir, profile or DEFAULT_PROFILE)
        except (FileNotFoundError, ValueError) as error:
            raise ReportError(str(error)) from None
    for field, wanted in (("profile", profile), ("data_kind", None)):
        values = {section: record[field] for section, record in results.items()}
        wanted = wanted or max(set(values.values()), key=list(values.values()).count)  # what most sections used
        others = sorted(section for section, value in values.items() if value != wanted)
        if others:
            found = ", ".join(f"{s} ({values[s]})" for s in others)
            raise ReportError(f"one paper takes one {field}: results of {found} are not from {field} {wanted!r}; "
                              f"re-run those notebooks with it (make all PROFILE=...), or build the paper with "
                              f"the {field} they share")
    try:
        check_chain(results)
    except ValueError as error:
        raise ReportError(str(error)) from None
    return results


def _runs(record: dict) -> list[dict]:
    if not record["runs"] and record["section"] not in ("01_data", "07_summary"):
        raise ReportError(f"results of {record['section']} hold no runs: re-run notebook "
                          f"notebooks/{record['section']}.ipynb")
    return record["runs"]


def _one(runs: list[dict], test, what: str, section: str) -> dict:
    found = [r for r in runs if test(r["config"])]
    if not found:
        raise ReportError(f"results of {section} have no run with {what}: re-run notebook notebooks/{section}.ipynb")
    return found[0]


def _run_with_id(record: dict, run_id: str | None, what: str) -> dict:
    """The run of a section's results with id `run_id`; a one-line ReportError naming the notebook if absent."""
    found = [r for r in record["runs"] if run_id is not None and r["run_id"] == run_id]
    if not found:
        section = record["section"]
        raise ReportError(f"results of {section} do not hold {what} (run_id {run_id!r}): re-run notebook "
                          f"notebooks/{section}.ipynb")
    return found[0]


def _chosen_run(record: dict) -> dict:
    """The run a section hands on, by its `chosen_run_id` (lib.sections.chosen_run): the report never re-decides
    a section's choice."""
    try:
        return chosen_run(record)
    except ValueError as error:
        raise ReportError(str(error)) from None


def _others(record: dict, run: dict) -> list[dict]:
    """A section's runs other than `run` (by run id): the variants it compares with the run it starts from."""
    return [r for r in _runs(record) if r["run_id"] != run["run_id"]]


def runs_per_setting(results: dict[str, dict], sections: tuple[str, ...] = TRAINING, most: bool = False) -> int:
    """How many runs each setting of `sections` has (n, a results row's `n_seeds`: its numbers are means over that
    many seeds). The smallest count, so a claim never says more seeds than its weakest side has (`most`: the
    largest, for the set-up's sentence when sections differ)."""
    counts = [run.get("n_seeds", 1) for section in sections if section in results for run in _runs(results[section])]
    return (max if most else min)(counts, default=1)


# The sections whose rows each section's prose compares (07: the path of chosen runs, 03's two and 05's, which
# holds 04's chosen run as its run without mixup): the n its sentences say.
COMPARED = {"02_learning_rate": ("02_learning_rate",), "03_lr_schedule": ("03_lr_schedule",),
            "04_weight_decay": ("04_weight_decay",), "05_mixup": ("05_mixup",), "06_activation": ("06_activation",),
            "07_summary": ("03_lr_schedule", "05_mixup")}


def spread(run: dict, other: dict, key: str = "final_val_acc") -> dict | None:
    """Whether two settings' difference in a final accuracy is larger than the spread between seeds: None for
    single runs; else the difference and the larger of the two standard deviations over seeds (points, as
    printed) and whether the difference exceeds it."""
    sds = [r.get("std", {}).get(key) for r in (run, other)]
    if None in sds:
        return None
    difference = f"{abs(_printed(run, key) - _printed(other, key)):.1f}"  # of the values as printed (points)
    return {"difference": difference, "sd": pct(max(sds)), "larger": float(difference) > float(pct(max(sds)))}


def _curves(run: dict, section: str) -> dict[str, list[float]]:
    """A run's per-epoch curves (train_loss, train_acc, val_loss, val_acc); a one-line ReportError naming the
    notebook if its results predate them."""
    curves = run.get("curves") or {}
    if not all(curves.get(key) for key in ("train_loss", "train_acc", "val_loss", "val_acc")):
        raise ReportError(f"results of {section} hold no per-epoch curves for run {run['label']!r}: re-run notebook "
                          f"notebooks/{section}.ipynb")
    return curves


def val_loss_trend(curves: dict[str, list[float]]) -> dict:
    """What a run's validation loss did, from its curve: where it was lowest (epoch from 1) and that value, how
    far it rose from there to the last epoch, and whether that rise exceeds RISE of the minimum ("rose"), or
    else whether the minimum is the last epoch ("falling") or the loss stayed within RISE of it ("flat")."""
    values = curves["val_loss"]
    low = min(range(len(values)), key=values.__getitem__)
    rise = values[-1] - values[low]
    shape = "rose" if rise > RISE * values[low] else "falling" if low == len(values) - 1 else "flat"
    if shape == "rose" and len(values) - 1 - low < OVERFIT_EPOCHS:
        shape = "ended_higher"
    if not math.isfinite(values[-1]):  # diverged (lib.results reads a NaN loss as inf)
        shape = "diverged"
    return {"shape": shape, "min_epoch": low + 1, "min": loss(values[low]), "rise": loss(rise),
            "last": loss(values[-1]), "epochs": len(values), "train_acc": pct(curves["train_acc"][-1]),
            "threshold": f"{100 * RISE:g}",
            "diverged_epoch": next((i + 1 for i, value in enumerate(values) if not math.isfinite(value)), None)}


def val_acc_peak(curves: dict[str, list[float]]) -> dict:
    """Where a run's validation accuracy curve was highest (epoch from 1, the first if level) and its value."""
    values = curves["val_acc"]
    best = max(range(len(values)), key=values.__getitem__)
    return {"epoch": best + 1, "acc": pct(values[best])}


def late_descent(curves: dict[str, list[float]]) -> dict:
    """The training loss over the last LATE of the epochs (at least the last epoch): its value at the start of
    that stretch and at the end, and the share of the whole run's decrease that happened in it (percent; None if
    the loss did not decrease over the run)."""
    values = curves["train_loss"]
    first = max(0, min(round(len(values) * (1 - LATE)) - 1, len(values) - 2))  # the epoch before the stretch
    total = values[0] - values[-1]
    share = f"{100 * (values[first] - values[-1]) / total:.0f}" if total > 0 else None
    return {"from_epoch": first + 1, "from": loss(values[first]), "to": loss(values[-1]), "share": share}


def _study_runs(results: dict[str, dict]) -> dict[str, dict]:
    """The runs the findings name, found by run id along the study's dependencies: 03 trains a constant and a
    cosine run at 02's chosen rate; 04 always starts from the cosine run (03's finding is reported but feeds
    nothing); 05's run without mixup is 04's chosen run and 06's ReLU run is 05's chosen run, each with the same
    run_id; 07's final model, the one the test accuracy is of, is 05's chosen run."""
    schedule = _runs(results["03_lr_schedule"])
    weight_decay = _chosen_run(results["04_weight_decay"])
    final = _chosen_run(results["05_mixup"])
    summary = results["07_summary"]
    final_model, tested = _chosen_run(summary)["run_id"], summary["extra"].get("test_run_id")
    if final_model != final["run_id"] or tested != final["run_id"]:
        raise ReportError(f"results of 07_summary are of run {final_model!r} (tested: {tested!r}), not of 05_mixup's "
                          f"chosen run {final['run_id']!r}: re-run notebook notebooks/07_summary.ipynb")
    scores = [(x.get("test_acc"), x.get("test_acc_std"), x.get("n_seeds", 1))
              for x in (summary["extra"], results["05_mixup"]["extra"])]
    if scores[0] != scores[1]:  # 05 re-run (e.g. with more seeds) after 07: seed 0 keeps its run id
        raise ReportError(f"results of 07_summary hold another test score than 05_mixup's (test accuracy, its sd, "
                          f"seeds: {scores[0]} against {scores[1]}): re-run notebook notebooks/07_summary.ipynb")
    return {
        "lr": _chosen_run(results["02_learning_rate"]),
        "schedule": _chosen_run(results["03_lr_schedule"]),
        "constant": _one(schedule, lambda c: c["schedule"] == "constant", "schedule 'constant'", "03_lr_schedule"),
        "cosine": _one(schedule, lambda c: c["schedule"] == "cosine", "schedule 'cosine'", "03_lr_schedule"),
        "weight_decay": weight_decay,
        "no_mixup": _run_with_id(results["05_mixup"], weight_decay["run_id"],
                                 "04_weight_decay's chosen run as its run without mixup"),
        "final": final,
        "relu": _run_with_id(results["06_activation"], final["run_id"], "05_mixup's chosen run as its ReLU run"),
    }


# ---------------------------------------------------------------- LaTeX pieces

def shown(run: dict) -> dict[str, str | None]:
    """A run as the paper prints it, for the macros and templates: its final numbers (accuracies in percent
    without the sign) and the settings the study varies, None for a regulariser the run does not use."""
    c = run["config"]
    blocks = list(c.get("sigmoid_blocks") or [])
    return {"train_loss": loss(run["final_train_loss"]), "train_acc": pct(run["final_train_acc"]),
            "val_loss": loss(run["final_val_loss"]), "val_acc": pct(run["final_val_acc"]),
            "best_val_acc": pct(run["best_val_acc"]), "best_val_epoch": str(run["best_val_epoch"]),
            "epochs": str(run["epochs"]), "lr": plain(c["lr"]), "schedule": c["schedule"],
            "wd": sci(c["weight_decay"]) if c["weight_decay"] else None,
            "alpha": plain(c["mixup_alpha"]) if c["mixup_alpha"] > 0 else None,
            "blocks": blocks_range(blocks, latex=True) if blocks else None,
            "sd": {name: (pct if "acc" in name else loss)(value) if math.isfinite(value) else None for name, value in
                   (("train_loss", sd.get("final_train_loss")), ("train_acc", sd.get("final_train_acc")),
                    ("val_loss", sd.get("final_val_loss")), ("val_acc", sd.get("final_val_acc")))}
            if (sd := run.get("std")) else None}


class Macros:
    """Collects `\\newcommand`s; names are letters only (TeX's rule), each defined once."""

    def __init__(self):
        self.lines: list[str] = []
        self.names: set[str] = set()

    def __setitem__(self, name: str, value) -> None:
        if not re.fullmatch(r"[A-Za-z]+", name) or name in self.names:
            raise ValueError(f"bad or repeated macro name {name!r}")
        self.names.add(name)
        self.lines.append(f"\\newcommand{{\\{name}}}{{{value}}}")

    def runs(self, prefix: str, run: dict) -> None:
        """The four final numbers of a run (accuracies in percent, no sign) plus its best validation epoch."""
        numbers = shown(run)
        for name, key in (("TrainLoss", "train_loss"), ("TrainAcc", "train_acc"), ("ValLoss", "val_loss"),
                          ("ValAcc", "val_acc"), ("BestValAcc", "best_val_acc"), ("BestValEpoch", "best_val_epoch")):
            self[prefix + name] = numbers[key]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@functools.cache
def _templates() -> jinja2.Environment:
    """Jinja2 with delimiters LaTeX does not use: \\BLOCK{...}, \\VAR{...}, \\#{...} comments and `%%` line
    statements (`{%`, `{{` and `#` are LaTeX's own). A value a template names but is not given fails loudly."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(paths.report_dir() / "prose"),
        block_start_string="\\BLOCK{", block_end_string="}",
        variable_start_string="\\VAR{", variable_end_string="}",
        comment_start_string="\\#{", comment_end_string="}",
        line_statement_prefix="%%",
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=False, undefined=jinja2.StrictUndefined)


def render_prose(name: str, values: dict) -> str:
    """report/prose/<name>.tex.j2 filled in with `values` (jinja2.UndefinedError if it names a missing one)."""
    return _templates().get_template(f"{name}.tex.j2").render(values)


NARROW = "\\setlength{\\tabcolsep}{3pt}%"  # a table with public-range columns: less space between columns
BOLD = "\\bfseries\\boldmath "  # a chosen row's cells: its text and its maths ($\\eta$, $\\lambda$) in bold
DAGGER = "$^\\dagger$"  # marks an accuracy outside its public range


def comparable(rec: dict) -> bool:
    """Whether a section's runs can have public ranges at all (lib.reference: the official CIFAR-100 in the full
    profile only); elsewhere the paper's tables have no public-range column."""
    return applies(rec["data_kind"], rec["profile"])


def _public(rec: dict, runs: list[dict], metric: str = "val_acc", final_model: bool = False) -> list | None:
    """Each run's public range of `metric` (a PublicRange, or None where there is none); None if not comparable."""
    if not comparable(rec):
        return None
    return [public_range(r["config"], metric, rec["data_kind"], rec["profile"], final_model) for r in runs]


def _marked(accuracy: float, found: PublicRange | None) -> str:
    """An accuracy cell: the percentage, with a dagger if it lies outside its public range."""
    outside = found is not None and found.verdict(accuracy) == "OUTSIDE"
    return pct(accuracy) + (DAGGER if outside else "")


def range_note(pairs: list[tuple[float, PublicRange | None]] | None) -> dict | None:
    """What a table's caption says about its public ranges, from its (accuracy, range) cells: None where the
    table has no such column; else whether a cell lies outside its range, lacks one, or all lack one."""
    if pairs is None:
        return None
    missing = [found is None for _, found in pairs]
    return {"outside": any(f is not None and f.verdict(a) == "OUTSIDE" for a, f in pairs),
            "missing": any(missing), "all_missing": all(missing)}


def run_table(rows: list[tuple[str, dict, bool]], ranges: list[PublicRange | None] | None = None) -> str:
    """A tabular of final train/val loss and accuracy; rows are (setting, run, chosen), chosen in bold (maths
    too). `ranges` (one per row; see `_public`) adds the public validation range, '--' where there is none, and
    daggers a validation accuracy outside it; None leaves that column out."""
    body = []
    for i, (setting, run, chosen) in enumerate(rows):
        numbers = shown(run)
        sd = numbers["sd"] or {}  # means over seeds: each printed with its standard deviation
        cells = [setting, *(with_sd(numbers[key], sd.get(key)) for key in ("train_loss", "train_acc", "val_loss"))]
        if ranges is None:
            cells.append(with_sd(numbers["val_acc"], sd.get("val_acc")))
        else:
            cells += [with_sd(_marked(run["final_val_acc"], ranges[i]), sd.get("val_acc")),
                      span(ranges[i]) if ranges[i] else "--"]
        if chosen:
            cells = [BOLD + c for c in cells]
        body.append(" & ".join(cells) + r" \\")
    public = ranges is not None
    return "\n".join([
        *([NARROW] if public else []),
        r"\begin{tabular}{@{}lrrrr" + ("r" if public else "") + "@{}}",
        r"\toprule",
        r" & \multicolumn{2}{c}{Training} & \multicolumn{" + ("3" if public else "2") + r"}{c@{}}{Validation} \\",
        r"\cmidrule(lr){2-3}\cmidrule(l){4-" + ("6" if public else "5") + "}",
        r"Setting & Loss & Acc.\,(\%) & Loss & Acc.\,(\%)" + (r" & Public\,(\%)" if public else "") + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
    ]) + "\n"


def summary_table(rows: list[dict], public: bool) -> str:
    """The path of chosen runs: rows {setting, run, test (test accuracy or None), val_range, test_range, bold,
    variant}; a variant row comes after a rule. With `public`, each accuracy has its public-range column."""
    body = []
    for row in rows:
        run, test = row["run"], row["test"]
        cells = [row["setting"], _marked(run["final_val_acc"], row["val_range"])]
        if public:
            cells.append(span(row["val_range"]) if row["val_range"] else "--")
        cells.append("" if test is None else _marked(test, row["test_range"]))
        if public:
            cells.append("" if test is None else span(row["test_range"]) if row["test_range"] else "--")
        if row["bold"]:
            cells = [BOLD + c for c in cells]
        body += ([r"\midrule"] if row["variant"] else []) + [" & ".join(cells) + r" \\"]
    if public:
        head = [r" & \multicolumn{2}{c}{Validation} & \multicolumn{2}{c@{}}{Test} \\",
                r"\cmidrule(lr){2-3}\cmidrule(l){4-5}",
                r"Run & Acc.\,(\%) & Public & Acc.\,(\%) & Public \\"]
    else:
        head = [r"Run & Val.\ acc.\,(\%) & Test acc.\,(\%) \\"]
    return "\n".join([*([NARROW] if public else []), r"\begin{tabular}{@{}l" + ("rrrr" if public else "rr") + "@{}}",
                      r"\toprule", *head, r"\midrule", *body, r"\bottomrule", r"\end{tabular}"]) + "\n"


def _higher(a: float, b: float, fmt=loss) -> str:
    """'higher', 'lower' or 'the same', comparing the numbers as printed (so the words match the digits)."""
    a, b = (float(fmt(v)) if math.isfinite(v) else math.inf for v in (a, b))  # diverged: higher than any loss
    return "higher" if a > b else "lower" if a < b else "the same"


def _compare(run: dict, other: dict) -> dict[str, str]:
    """How `run`'s final numbers compare with `other`'s as printed: {'train_loss': 'lower', ...}."""
    return {"train_loss": _higher(run["final_train_loss"], other["final_train_loss"]),
            "val_loss": _higher(run["final_val_loss"], other["final_val_loss"]),
            "val_acc": _higher(run["final_val_acc"], other["final_val_acc"], pct)}


def _eta(lr: float) -> str:
    return f"$\\eta={plain(lr)}$"


def _wd(value: float) -> str:
    return f"$\\lambda={sci(value)}$"


def _best(runs: list[dict], key: str, lowest: bool) -> dict:
    return (min if lowest else max)(runs, key=lambda r: r[key])


def _printed(run: dict, key: str) -> float:
    """A final number as the paper prints it, as a number to compare (a diverged loss: inf, worse than any)."""
    value = run[key]
    if not math.isfinite(value):
        return math.inf
    return float(pct(value)) if "acc" in key else float(loss(value))


def _order(runs: list[dict], key: str, sign: str) -> list[dict]:
    """Runs in an order, as printed, each with the sign before it: `sign`, or '$=$' after a run level with it."""
    return [{**shown(r), "sep": "" if i == 0 else "$=$" if _printed(r, key) == _printed(runs[i - 1], key) else sign}
            for i, r in enumerate(runs)]


def _function_source(path: Path, name: str) -> str | None:
    """The source of function `name` in `path` without its docstring (for a listing), or None."""
    text = path.read_text()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            lines = ast.get_source_segment(text, node).splitlines()
            doc = node.body[0]
            if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str):
                first, last = doc.lineno - node.lineno, doc.end_lineno - node.lineno
                lines = lines[:first] + lines[last + 1:]
            return "\n".join(lines) + "\n"
    return None


# ---------------------------------------------------------------- the sections
# Each writes its number macros and table and returns the values its template report/prose/<name>.tex.j2 prints.

def _setup(m: Macros, results: dict[str, dict], n: int) -> dict:
    """The data and training set-up shared by every run, whether the paper needs a banner, and n (the runs per
    setting, `runs_per_setting`)."""
    kinds = {rec["data_kind"] for rec in results.values()}
    profiles = sorted({rec["profile"] for rec in results.values()})
    m["DataKind"] = "/".join(sorted(kinds))
    m["Profile"] = "/".join(profiles)
    base = _runs(results["02_learning_rate"])[0]["config"]  # every run shares these settings
    m["ArchName"] = ARCH_NAMES.get(base["arch"], base["arch"])
    m["NumParams"] = count(_parameter_count(base))
    m["BatchSize"], m["Momentum"] = str(base["batch_size"]), plain(base["momentum"])
    m["NumClasses"], m["Seed"] = str(base.get("num_classes", 100)), str(base["seed"])
    m["SplitSeed"] = str(base.get("split_seed", 0))
    synthetic = "synthetic" in kinds
    return {"arch": base["arch"], "synthetic": synthetic, "modified": "modified" in kinds,
            "shortened": not synthetic and profiles != ["full"], "profile": tex_escape("/".join(profiles)), "n": n}


def _parameter_count(config: dict) -> int:
    """The architecture's parameter count, counted on the built model."""
    from .models import build_model  # torch is only needed here

    return sum(p.numel() for p in build_model(config["arch"], config.get("num_classes", 100)).parameters())


def _data(m: Macros, rec: dict, out: Path, split_seed: int) -> None:
    """01's numbers, of the split the runs trained on (`split_seed`, their config's)."""
    x = rec["extra"]
    if x.get("split_seed", 0) != split_seed:
        raise ReportError(f"results of 01_data describe the split with seed {x.get('split_seed')}, the runs' "
                          f"split has seed {split_seed}: re-run notebook notebooks/01_data.ipynb with "
                          f"split_seed={split_seed}")
    m["NTrain"], m["NVal"] = count(x["n_train"]), count(x["n_val"])
    m["NTotal"] = count(x["n_train"] + x["n_val"])
    for i, channel in enumerate("RGB"):
        m[f"Mean{channel}"] = f"{x['mean'][i]:.4f}"
        m[f"Std{channel}"] = f"{x['std'][i]:.4f}"
    m["ClassPropMin"], m["ClassPropMax"] = pct(x["class_prop_min"], 2), pct(x["class_prop_max"], 2)
    (out / "split_code.py").write_text(x["split_code"].strip("\n") + "\n")
    augment = _function_source(paths.PROJECT_ROOT / "lib" / "data.py", "random_crop_flip")
    (out / "augment_code.py").write_text(augment or "# lib.data.random_crop_flip not found\n")
    (out / "tables" / "01_data.tex").write_text("\n".join([
        r"\begin{tabular}{@{}lrrr@{}}",
        r"\toprule",
        r" & Red & Green & Blue \\",
        r"\midrule",
        "Mean & " + " & ".join(f"{v:.4f}" for v in x["mean"]) + r" \\",
        "Std & " + " & ".join(f"{v:.4f}" for v in x["std"]) + r" \\",
        r"\bottomrule",
        r"\end{tabular}",
    ]) + "\n")


def _note(runs: list[dict], ranges: list | None, key: str = "final_val_acc") -> dict | None:
    return range_note(None if ranges is None else [(r[key], f) for r, f in zip(runs, ranges, strict=True)])


def _learning_rate(m: Macros, rec: dict, out: Path, chosen: dict, n: int) -> dict:
    runs = sorted(_runs(rec), key=lambda r: -r["config"]["lr"])
    best_train = _best(runs, "final_train_loss", lowest=True)
    best_val = _best(runs, "final_val_acc", lowest=False)
    m["LrEpochs"] = str(runs[0]["epochs"])
    m["LrValues"] = ", ".join(plain(r["config"]["lr"]) for r in runs)  # math mode
    m["BestLr"], m["BestLrByValAcc"] = plain(chosen["config"]["lr"]), plain(best_val["config"]["lr"])
    m.runs("BestLr", chosen)
    # Which rate wins each of the brief's four criteria, grouped by rate; rates that end exactly level on a
    # criterion tie for it (one clause each, after the winners).
    winners: dict[str, dict] = {}  # run_id -> {"lrs": [rate], "criteria": [the criteria it alone wins]}
    ties = []
    for key, lowest in (("final_train_loss", True), ("final_train_acc", False), ("final_val_loss", True),
                        ("final_val_acc", False)):
        best = _best(runs, key, lowest)
        level = [r for r in runs if _printed(r, key) == _printed(best, key)]  # level as printed: a tie
        if len(level) > 1:
            ties.append({"lrs": [plain(r["config"]["lr"]) for r in level], "criteria": [key], "tie": True})
        else:
            winners.setdefault(best["run_id"], {"lrs": [plain(best["config"]["lr"])], "criteria": [], "tie": False})
            winners[best["run_id"]]["criteria"].append(key)
    ranges = _public(rec, runs)
    (out / "tables" / "02_learning_rate.tex").write_text(run_table(
        [(_eta(r["config"]["lr"]), r, r["run_id"] == chosen["run_id"]) for r in runs], ranges))
    by_train = sorted(runs, key=lambda r: _printed(r, "final_train_loss"))
    by_val = sorted(runs, key=lambda r: -_printed(r, "final_val_acc"))
    # The orders differ where one rate trains better and another validates better (as printed; ties order nothing).
    differ = any(_printed(a, "final_train_loss") < _printed(b, "final_train_loss")
                 and _printed(a, "final_val_acc") < _printed(b, "final_val_acc") for a in runs for b in runs)
    tops_differ = _printed(best_val, "final_train_loss") != _printed(best_train, "final_train_loss") and \
        _printed(best_train, "final_val_acc") != _printed(best_val, "final_val_acc")
    return {"criterion_winners": [*winners.values(), *ties], "n": n,
            "by_train_loss": _order(by_train, "final_train_loss", "$<$"),
            "by_val_acc": _order(by_val, "final_val_acc", "$>$"),
            "rankings_differ": differ, "tops_differ": differ and tops_differ,
            "larger_validates_better": best_val["config"]["lr"] > best_train["config"]["lr"],
            "chosen": shown(chosen), "best_train": shown(best_train), "best_val": shown(best_val),
            "chosen_trains_best": chosen["final_train_loss"] == best_train["final_train_loss"],
            "chosen_validates_best": chosen["final_val_acc"] == best_val["final_val_acc"],
            "public": _note(runs, ranges)}


def _schedule(m: Macros, rec: dict, out: Path, study: dict[str, dict], n: int) -> dict:
    const, cos, chosen = study["constant"], study["cosine"], study["schedule"]
    m["LongEpochs"] = str(cos["epochs"])
    m["ChosenSchedule"] = chosen["config"]["schedule"]
    m.runs("Const", const)
    m.runs("Cos", cos)
    ranges = _public(rec, [const, cos])
    (out / "tables" / "03_lr_schedule.tex").write_text(run_table(
        [(r["config"]["schedule"], r, r["run_id"] == chosen["run_id"]) for r in (const, cos)], ranges))
    curves = {name: _curves(run, rec["section"]) for name, run in (("const", const), ("cos", cos))}
    return {"const": shown(const), "cos": shown(cos), "cos_vs_const": _compare(cos, const), "n": n,
            "spread": spread(cos, const),
            "val_acc_gain": points(cos["final_val_acc"], const["final_val_acc"]),
            "chose_cosine": chosen["run_id"] == cos["run_id"],
            "trend": {name: val_loss_trend(c) for name, c in curves.items()},
            "peak": {name: val_acc_peak(c) for name, c in curves.items()},
            "late": {name: late_descent(c) for name, c in curves.items()},
            "public": _note([const, cos], ranges)}


def _weight_decay(m: Macros, rec: dict, out: Path, study: dict[str, dict], n: int) -> dict:
    runs = sorted(_runs(rec), key=lambda r: -r["config"]["weight_decay"])
    if len(runs) < 2:
        raise ReportError(f"results of {rec['section']} hold {len(runs)} weight decay; the paper compares at least two "
                          f"(the brief: 5e-4 and 1e-4): re-run notebook notebooks/{rec['section']}.ipynb with them")
    chosen, no_decay = study["weight_decay"], study["cosine"]
    best = _best(runs, "final_val_acc", lowest=False)
    others = [r for r in runs if r is not best]
    m["WdValues"] = ", ".join(sci(r["config"]["weight_decay"]) for r in runs)  # math mode
    m["WdChosen"] = f"\\ensuremath{{{sci(chosen['config']['weight_decay'])}}}"
    m["WdSchedule"] = chosen["config"]["schedule"]
    m.runs("Wd", chosen)
    for name, r in zip(("WdLarge", "WdSmall"), (runs[0], runs[-1]), strict=True):
        m.runs(name, r)
        m[f"{name}Value"] = f"\\ensuremath{{{sci(r['config']['weight_decay'])}}}"

    def gap(r: dict) -> float:  # points by which training accuracy exceeds validation accuracy, as printed
        return round(_printed(r, "final_train_acc") - _printed(r, "final_val_acc"), 1)  # 51.3 - 31.3: 20.0

    ranges = _public(rec, runs)
    (out / "tables" / "04_weight_decay.tex").write_text(run_table(
        [(_wd(r["config"]["weight_decay"]), r, r["run_id"] == chosen["run_id"]) for r in runs], ranges))
    other = others[0]  # the sentence compares the best run with the first of the others
    return {"best": shown(best), "others": [shown(r) for r in others], "other": shown(other), "n": n,
            "spread": spread(best, other),
            "same_val_acc": pct(best["final_val_acc"]) == pct(other["final_val_acc"]),
            "best_vs_other": _compare(best, other),
            "gap_word": "smaller" if gap(best) < gap(other) else "larger" if gap(best) > gap(other) else "the same",
            "best_gap": f"{gap(best):.1f}", "other_gap": f"{gap(other):.1f}",
            "chosen": shown(chosen), "no_decay": shown(no_decay),
            "chosen_gain": points(chosen["final_val_acc"], no_decay["final_val_acc"]),
            "public": _note(runs, ranges)}


def _mixup(m: Macros, rec: dict, out: Path, study: dict[str, dict], n: int) -> dict:
    base, chosen = study["no_mixup"], study["final"]
    mixed = _others(rec, base)
    kept = chosen["run_id"] != base["run_id"]
    mix = chosen if kept else _one(mixed, lambda c: c["mixup_alpha"] > 0, "mixup_alpha > 0", rec["section"])
    m["MixupAlpha"] = plain(mix["config"]["mixup_alpha"])
    m.runs("Mix", mix)
    m.runs("NoMix", base)
    x = rec["extra"]
    tested = next((r for r in _runs(rec) if r["run_id"] == x.get("test_run_id")), None)
    runs = [base, *mixed]
    ranges = _public(rec, runs)
    (out / "tables" / "05_mixup.tex").write_text(run_table(
        [("no mixup", base, not kept)]
        + [(f"mixup $\\alpha={plain(r['config']['mixup_alpha'])}$", r, r["run_id"] == chosen["run_id"])
           for r in mixed], ranges))
    mix_loss = _curves(mix, rec["section"])["train_loss"]
    base_loss = _curves(base, rec["section"])["train_loss"]
    return {"mix": shown(mix), "base": shown(base), "mix_vs_base": _compare(mix, base), "n": n,
            "spread": spread(mix, base),
            "val_acc_gain": points(mix["final_val_acc"], base["final_val_acc"]),
            "train_loss_above": {"epochs": sum(a > b for a, b in zip(mix_loss, base_loss, strict=False)),
                                 "of": min(len(mix_loss), len(base_loss))},
            "kept": kept, "chosen": shown(chosen),
            "test": {"with_mixup": tested["run_id"] != base["run_id"],
                     "acc": with_sd(pct(x["test_acc"]), _pct_or_none(x.get("test_acc_std"))),
                     "loss": loss(x["test_loss"]), "n": x.get("n_seeds", 1)} if tested and "test_acc" in x else None,
            "public": _note(runs, ranges)}


def _activation(m: Macros, rec: dict, out: Path, relu: dict, n: int) -> dict:
    sig = _one(_others(rec, relu), lambda c: len(c["sigmoid_blocks"]) > 0, "sigmoid_blocks", rec["section"])
    blocks = shown(sig)["blocks"]
    m["SigmoidBlocks"] = blocks
    param = sig["config"].get("grad_norm_param", "layers.8.conv1.weight")
    m["GradParam"] = "\\texttt{" + parameter_name(param).replace("_", "\\_") + "}"
    m.runs("Sig", sig)
    m.runs("Relu", relu)
    norms = rec["extra"].get("grad_norm", {})

    def series(run: dict, is_sigmoid: bool) -> list[float] | None:
        if run["label"] in norms:
            return norms[run["label"]]
        for key, values in norms.items():  # labels differ from the keys: match by activation name
            if ("sigmoid" in key.lower()) == is_sigmoid:
                return values
        return None

    def norm(value: float) -> str:  # three significant digits; an epoch without a norm (diverged, fp16) says so
        return f"{value:#.3g}" if math.isfinite(value) else "not a number"

    def comparable(relu_norm: float, sigmoid_norm: float) -> bool:  # both numbers, and a ratio to take
        return math.isfinite(relu_norm) and math.isfinite(sigmoid_norm) and sigmoid_norm > 0

    grad_norms = []  # per run that has them: the gradient norm's start, peak (epoch from 1) and end
    found = {}

    for run, is_sigmoid in ((relu, False), (sig, True)):
        values = series(run, is_sigmoid)
        if values:
            found[is_sigmoid] = values
            finite = [i for i, value in enumerate(values) if math.isfinite(value)] or [0]
            peak = max(finite, key=values.__getitem__)
            grad_norms.append({"sigmoid": is_sigmoid, "start": norm(values[0]), "peak": norm(values[peak]),
                               "peak_epoch": peak + 1, "peak_at_start": peak == 0, "end": norm(values[-1]),
                               "level": len({norm(value) for value in values}) == 1})
    ratio = None  # ReLU's norm divided by Sigmoid's: the median over the epochs where both are numbers, Sigmoid's > 0
    if len(found) == 2:
        pairs = list(zip(found[False], found[True], strict=False))
        ratios = [r / s for r, s in pairs if comparable(r, s)]
        if ratios:
            ratio = {"median": f"{statistics.median(ratios):#.3g}", "epochs": len(ratios), "all": len(pairs),
                     "last": f"{pairs[-1][0] / pairs[-1][1]:#.3g}" if comparable(*pairs[-1]) else None}
    ranges = _public(rec, [relu, sig])
    (out / "tables" / "06_activation.tex").write_text(run_table(
        [("ReLU", relu, False), (f"Sigmoid, blocks {blocks}", sig, False)], ranges))
    inside = param.startswith("layers.") and int(param.split(".")[1]) in sig["config"]["sigmoid_blocks"]
    return {"arch": sig["config"]["arch"], "grad_param": param, "grad_param_inside": inside, "n": n,
            "spread": spread(sig, relu),
            "relu": shown(relu), "sig": shown(sig), "sig_vs_relu": _compare(sig, relu), "grad_norms": grad_norms,
            "ratio": ratio, "public": _note([relu, sig], ranges)}


def _summary(m: Macros, results: dict[str, dict], out: Path, study: dict[str, dict], n: int) -> dict:
    """The summary table is the path of chosen runs (constant rate, cosine, + the chosen weight decay, + mixup
    if chosen; 04 starts from the cosine run, 05 from 04's chosen run) and, after a rule, the Sigmoid variant."""
    rec = results["07_summary"]
    x = rec["extra"]
    if "test_acc" not in x:
        raise ReportError("results of 07_summary have no test_acc: re-run notebook notebooks/07_summary.ipynb")
    const, cos, final = study["constant"], study["cosine"], study["final"]
    test_acc = with_sd(pct(x["test_acc"]), _pct_or_none(x.get("test_acc_std")))  # a mean over seeds: with its sd
    m["TestAcc"] = test_acc
    m.runs("Final", final)
    # The weight-decay run as 05 read it (its run without mixup): the mixup step compares two rows of one section,
    # with one seed count, also when 05 was re-run with more seeds than 04.
    decayed = study["no_mixup"]
    path = [("constant", const, f"constant {_eta(const['config']['lr'])}"), ("cosine", cos, "+ cosine schedule"),
            ("weight_decay", decayed, f"+ {_wd(decayed['config']['weight_decay'])}")]
    if final["run_id"] != study["weight_decay"]["run_id"]:
        path.append(("mixup", final, f"+ mixup $\\alpha={plain(final['config']['mixup_alpha'])}$"))
    variants = [r for r in _others(results["06_activation"], study["relu"]) if r["config"]["sigmoid_blocks"]]
    runs = [run for _, run, _ in path] + variants
    val_ranges = _public(rec, runs) or [None] * len(runs)
    test_range = public_range(final["config"], "test_acc", rec["data_kind"], rec["profile"], final_model=True)
    rows = [{"setting": setting, "run": run, "val_range": val_ranges[i], "variant": False,
             "test": x["test_acc"] if run is final else None, "test_range": test_range if run is final else None,
             "bold": run is final} for i, (_, run, setting) in enumerate(path)]
    rows += [{"setting": f"Sigmoid, blocks {shown(r)['blocks']} (variant)", "run": r, "val_range": val_ranges[i],
              "test": None, "test_range": None, "bold": False, "variant": True}
             for i, r in enumerate(variants, start=len(path))]
    (out / "tables" / "07_summary.tex").write_text(summary_table(rows, comparable(rec)))
    cells = [(row["run"]["final_val_acc"], row["val_range"]) for row in rows]
    cells += [(row["test"], row["test_range"]) for row in rows if row["test"] is not None]
    steps = [{"change": change, "gain": points(run["final_val_acc"], before["final_val_acc"])}
             for (_, before, _), (change, run, _) in zip(path, path[1:], strict=False)]
    return {"final": shown(final), "test_acc": test_acc, "steps": steps, "n": n, "n_test": x.get("n_seeds", 1),
            "n_most": runs_per_setting(results, COMPARED["07_summary"], most=True),
            "start": shown(const), "end": shown(path[-1][1]),
            "test_range": {"span": span(test_range), "outside": test_range.verdict(x["test_acc"]) == "OUTSIDE"}
            if test_range else None,
            "public": range_note(cells if comparable(rec) else None)}


def _size(value: float) -> str:
    """A size or a time with about three significant digits and no exponent: 0.643, 11.2, 555."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _arch_name(arch: str) -> str:
    return ARCH_NAMES.get(arch, tex_escape(arch))


def baselines_table(archs: list[dict]) -> str:
    """The baselines' tabular: per architecture (`_baselines`' `archs`, in the order trained) its parameters and
    multiply-adds (millions), seconds per epoch and best and final validation accuracy; the highest final
    accuracy in bold unless all are level."""
    level = all(a["highest"] for a in archs)
    body = []
    for a in archs:
        cells = [a["name"][0].upper() + a["name"][1:], a["params"], a["macs"], a["seconds"], a["best"], a["final"]]
        body.append(" & ".join(BOLD + c if a["highest"] and not level else c for c in cells) + r" \\")
    return "\n".join([
        r"\begin{tabular}{@{}lrrrrr@{}}",
        r"\toprule",
        r" & & & & \multicolumn{2}{c@{}}{Val.\ acc.\,(\%)} \\",
        r"\cmidrule(l){5-6}",
        r"Model & Params\,(M) & MACs\,(M) & s/epoch & Best & Final \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
    ]) + "\n"


def _baselines(rec: dict | None, study: dict, out: Path) -> dict:
    """The baselines (notebook 09_baselines; `rec` its results, None when it was not run) beside the study (`study`:
    a study section's results, for its profile and data): tables/09_baselines.tex and what the paragraph prints
    (the recipe, n, the highest and lowest final validation accuracy, the ranges of size and time). Without them
    `run` is false, the paper has no such section, and a table left by an earlier build is removed."""
    table_file = out / "tables" / f"{BASELINES}.tex"
    if rec is None:
        table_file.unlink(missing_ok=True)
        return {"run": False}
    if (rec["profile"], rec["data_kind"]) != (study["profile"], study["data_kind"]):
        raise ReportError(f"results of {BASELINES} are from profile {rec['profile']!r} on {rec['data_kind']} data, "
                          f"the study's from {study['profile']!r} on {study['data_kind']} data: re-run notebook "
                          f"notebooks/{BASELINES}.ipynb like the study (make baselines PROFILE=...)")
    rows, runs = rec["extra"].get("table") or [], {run["label"]: run for run in rec["runs"]}
    if not rows or [row["arch"] for row in rows] != list(runs):
        raise ReportError(f"results of {BASELINES} hold no table of their runs: re-run notebook "
                          f"notebooks/{BASELINES}.ipynb")
    final = {row["arch"]: pct(row["final_val_acc"]) for row in rows}  # as printed, so that ties read as ties
    top, bottom = max(final.values(), key=float), min(final.values(), key=float)
    archs = [{"name": _arch_name(row["arch"]), "params": _size(row["params"] / 1e6), "macs": _size(row["macs"] / 1e6),
              "seconds": _size(row["seconds_per_epoch"]),
              "best": with_sd(pct(row["best_val_acc"]), _pct_or_none(row.get("best_val_acc_std"))),
              "final": with_sd(final[row["arch"]], _pct_or_none(row.get("final_val_acc_std"))),
              "highest": final[row["arch"]] == top, "lowest": final[row["arch"]] == bottom} for row in rows]
    table_file.write_text(baselines_table(archs))
    by_final = sorted(rows, key=lambda row: -row["final_val_acc"])

    def extremes(key: str, scale: float = 1.0) -> dict:
        low, high = min(rows, key=lambda row: row[key]), max(rows, key=lambda row: row[key])
        return {"low": _size(low[key] / scale), "high": _size(high[key] / scale), "lowest": _arch_name(low["arch"]),
                "highest": _arch_name(high["arch"])}

    top_two = spread(runs[by_final[0]["arch"]], runs[by_final[1]["arch"]]) if len(rows) > 1 else None
    common = next(iter(runs.values()))  # every architecture's run shares its recipe
    config = common["config"]
    devices = {row.get("device") for row in rows}
    return {"run": True, "archs": archs, "common": shown(common),
            "n": min(run.get("n_seeds", 1) for run in runs.values()), "batch_size": config["batch_size"],
            "optimizer": config.get("optimizer", "sgd"), "momentum": plain(config["momentum"]),
            "level": top == bottom, "top": top, "bottom": bottom,
            "spread": {**top_two, "names": " and ".join(_arch_name(row["arch"]) for row in by_final[:2])}
            if top_two else None,
            "params": extremes("params", 1e6), "macs": extremes("macs", 1e6), "seconds": extremes("seconds_per_epoch"),
            "device": tex_escape(devices.pop()) if len(devices) == 1 and None not in devices else None,
            "stacked": [_arch_name(row["arch"]) for row in rows if row.get("runs_together", 1) > 1]}


def generate(results_dir: Path | None = None, figures_dir: Path | None = None,
             out_dir: Path | None = None, profile: str | None = None, author: str | None = None) -> Path:
    """Write `numbers.tex`, `prose/*.tex`, `tables/*.tex` and the listings into `out_dir` (default
    report/generated), from results of one profile (`profile`, if given) and one kind of data; `author` is the
    paper's author as typed (default `default_author()`), escaped for LaTeX here."""
    out = Path(out_dir) if out_dir is not None else paths.report_dir() / "generated"
    results = load_results(results_dir, profile)
    figures = Path(figures_dir) if figures_dir is not None else paths.figures_dir(profile or DEFAULT_PROFILE)
    study = _study_runs(results)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "prose").mkdir(exist_ok=True)
    m = Macros()
    m["PaperAuthor"] = tex_escape(author if author is not None else default_author())
    n = {name: runs_per_setting(results, sections) for name, sections in COMPARED.items()}
    prose = {"setup": {**_setup(m, results, runs_per_setting(results)), "n_most": runs_per_setting(results, most=True)}}
    _data(m, results["01_data"], out, _runs(results["02_learning_rate"])[0]["config"].get("split_seed", 0))
    prose["02_learning_rate"] = _learning_rate(m, results["02_learning_rate"], out, study["lr"], n["02_learning_rate"])
    prose["03_lr_schedule"] = _schedule(m, results["03_lr_schedule"], out, study, n["03_lr_schedule"])
    prose["04_weight_decay"] = _weight_decay(m, results["04_weight_decay"], out, study, n["04_weight_decay"])
    prose["05_mixup"] = _mixup(m, results["05_mixup"], out, study, n["05_mixup"])
    prose["06_activation"] = _activation(m, results["06_activation"], out, study["relu"], n["06_activation"])
    prose["07_summary"] = _summary(m, results, out, study, n["07_summary"])
    prose["public_ranges"] = {"notes": {name: prose[name]["public"] for name in TRAINING + ("07_summary",)}}
    try:  # beyond the brief: a section of its own when notebook 09_baselines was run, else nothing at all
        baselines = read_baselines(profile or DEFAULT_PROFILE, results_dir)
    except (FileNotFoundError, ValueError) as error:
        raise ReportError(str(error)) from None
    prose["09_baselines"] = _baselines(baselines, results["02_learning_rate"], out)
    header = "% Generated by lib/report.py from the results files; do not edit.\n"
    (out / "numbers.tex").write_text(header + m.text())
    for name in PROSE:
        (out / "prose" / f"{name}.tex").write_text(
            f"% Generated by lib/report.py from report/prose/{name}.tex.j2 and the results files; do not edit.\n"
            + render_prose(name, prose[name]))
    path = figures.as_posix()
    extra = f"{{{path}/}}" if re.fullmatch(r"[\w/.\-]+", path) else ""  # TeX cannot take spaces etc. here
    (out / "paths.tex").write_text(header + f"\\graphicspath{{{{figures/}}{extra}}}\n")
    _write_style(out, *choose_style())
    return out


# ---------------------------------------------------------------- building

def default_author() -> str:
    """The author when none is given (make report AUTHOR=...): git's user.name, if git exists and has one
    here, else ANONYMOUS."""
    git = shutil.which("git")
    if git is not None:
        done = subprocess.run([git, "config", "user.name"], cwd=paths.PROJECT_ROOT, capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return ANONYMOUS


def choose_style(report_dir: Path | None = None) -> tuple[str, str, bool]:
    """(style package, bibliography style, official?) — the AAAI kit when its .sty is in report/."""
    folder = Path(report_dir) if report_dir is not None else paths.report_dir()
    for name in KIT_NAMES:
        if (folder / f"{name}.sty").exists():
            bst = name if (folder / f"{name}.bst").exists() else OWN_BST
            return name, bst, True
    return OWN_STYLE, OWN_BST, False


def figure_stems(tex: str) -> list[str]:
    """Figure files a LaTeX source includes: \\includegraphics and paper.tex's \\figfull/\\figcol wrappers."""
    return re.findall(r"\\(?:includegraphics|figfull|figcol)(?:\[[^\]]*\])?\{([^}#]+)\}", tex)


def _write_style(out: Path, style: str, bst: str, official: bool) -> None:
    lines = ["% Generated by lib/report.py: which style the paper uses."]
    if official:
        lines += [f"\\usepackage{{{style}}}", "\\ifdefined\\nocopyright\\nocopyright\\fi"]
    else:
        lines += [f"\\usepackage{{{style}}}"]
    lines += [f"\\newcommand{{\\PaperBibStyle}}{{{bst}}}"]
    (out / "style.tex").write_text("\n".join(lines) + "\n")


def build_report(results_dir: Path | None = None, figures_dir: Path | None = None, out_dir: Path | None = None,
                 quiet: bool = True, profile: str | None = None, author: str | None = None) -> Path:
    """Generate the LaTeX and compile the paper in `out_dir` (default report/build/<profile>); returns the PDF's
    path.

    out_dir receives copies of report/'s sources, `generated/`, `figures/` and latexmk's outputs, so the
    folders the results and figures live in can be anywhere.
    """
    if shutil.which("latexmk") is None:
        raise ReportError("latexmk is not installed: run `make setup` (scripts/install_tex.sh)")
    src = paths.report_dir()
    build = Path(out_dir) if out_dir is not None else src / "build" / (profile or DEFAULT_PROFILE)
    figures = Path(figures_dir) if figures_dir is not None else paths.figures_dir(profile or DEFAULT_PROFILE)
    build.mkdir(parents=True, exist_ok=True)
    generate(results_dir, figures, build / "generated", profile, author)
    style, bst, official = choose_style(src)
    for name in SOURCES:
        shutil.copy2(src / name, build / name)
    if official:
        for kit_file in src.glob(f"{style}.*"):
            shutil.copy2(kit_file, build / kit_file.name)
    (build / "figures").mkdir(exist_ok=True)
    for stem in figure_stems((src / "paper.tex").read_text()):
        source = figures / stem
        if not source.exists():
            section = figure_section(Path(stem).stem)
            notebook = f"notebook notebooks/{section}.ipynb" if section else "the notebooks"
            raise ReportError(f"figure {source} does not exist: run {notebook} first")
        shutil.copy2(source, build / "figures" / stem)
    command = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "paper.tex"]
    done = subprocess.run(command, cwd=build, capture_output=True, text=True)
    if done.returncode != 0 or not (build / "paper.pdf").exists():
        log = build / "paper.log"
        errors = [ln for ln in (log.read_text(errors="replace").splitlines() if log.exists() else [])
                  if ln.startswith("!") or re.match(r"^\S+\.(tex|sty):\d+: ", ln)]
        raise ReportError(f"latexmk failed in {build}: " + (" | ".join(errors[:5]) or done.stdout[-2000:]))
    if not quiet:
        print(f"Paper style: {'official AAAI kit ' + style if official else 'ours (report/ai6103aaai.sty)'}, "
              f"bibliography style {bst}")
    return build / "paper.pdf"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the paper's LaTeX from the results files and build it.")
    parser.add_argument("--generate-only", action="store_true", help="write report/generated/ and stop")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES),
                        help="the profile whose results make the paper (make: PROFILE); it goes to report/<profile>/")
    parser.add_argument("--author", default=None,
                        help=f"the paper's author (make: AUTHOR); default git's user.name, else {ANONYMOUS!r}")
    args = parser.parse_args(argv)
    author = args.author if args.author else default_author()
    try:
        generated = generate(profile=args.profile, author=author)
        if args.generate_only:
            print(f"Wrote {generated}")
            return 0
        pdf = build_report(quiet=False, profile=args.profile, author=author)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    target = paths.report_dir() / args.profile / "paper.pdf"
    target.parent.mkdir(exist_ok=True)
    shutil.copy2(pdf, target)
    print(f"Wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

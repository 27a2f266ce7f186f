"""The paper's tables as LaTeX text, all through the one booktabs template (lib.report.templates.booktabs).

What it is: `run_table` (a section's runs), `path_table` (the path of chosen runs, lib.report.path),
`baselines_table`, and the public-range cells and notes they share (`marked`, `public`, `range_note`). What it is
not: which rows a section shows (the section modules) or any file writing.
"""
from __future__ import annotations

from ..studies.reference import SAME_RECIPE, PublicRange, applies, public_range
from .formatting import pct, shown, span, with_sd_short
from .templates import booktabs

BOLD = "\\bfseries\\boldmath "  # a chosen row's cells: its text and its maths ($\\eta$, $\\lambda$) in bold
DAGGER = "$^\\dagger$"  # marks an accuracy above its public range
DDAGGER = "$^\\ddagger$"  # ... and one below it


def comparable(rec: dict) -> bool:
    """Whether a section's runs can have public ranges at all (lib.studies.reference: the official CIFAR-100 in the full
    profile only); elsewhere the paper's tables have no public-range column."""
    return applies(rec["data_kind"], rec["profile"])


def public(rec: dict, runs: list[dict], metric: str = "val_acc", final_model: bool = False) -> list | None:
    """Each run's public range of `metric` (a PublicRange, or None where there is none); None if not comparable
    or if no run has one (a table drops a column with nothing in it)."""
    if not comparable(rec):
        return None
    found = [public_range(r["config"], metric, rec["data_kind"], rec["profile"], final_model) for r in runs]
    return found if any(found) else None


def against(accuracy: float, found: PublicRange | None) -> str | None:
    """'above' or 'below' where an accuracy (a fraction) lies outside its public range as printed (in percent to
    0.1: 0.43996 is 44.0, within 44-47); None within it or without a range."""
    if found is None:
        return None
    value = float(pct(accuracy))
    return "above" if value > found.high else "below" if value < found.low else None


def marked(accuracy: float, found: PublicRange | None, sd: str | None = None) -> str:
    """An accuracy cell: the percentage with its sd over seeds (if any), then a dagger if it lies above its public
    range, a double dagger if below (after the sd: never between a number and its ±)."""
    mark = {"above": DAGGER, "below": DDAGGER}.get(against(accuracy, found), "")
    return with_sd_short(pct(accuracy), sd) + mark


def range_note(pairs: list[tuple[float, PublicRange | None]] | None, dashes: bool | None = None) -> dict | None:
    """What a table's caption says about its public ranges, from its (accuracy, range) cells: None where the
    table has no such column (no range at all); else whether a cell lies above or below its range, whether a
    shown cell has none (a '--': `dashes`, default a pair without a range), the sources' bibliography keys, and
    whether some range comes from other recipes than the brief's."""
    found = [f for _, f in pairs or [] if f is not None]
    if not found:
        return None
    places = {against(a, f) for a, f in pairs}
    return {"above": "above" in places, "below": "below" in places,
            "missing": len(found) < len(pairs) if dashes is None else dashes,
            "cites": ",".join(sorted({f.cite for f in found})),
            "other_recipes": any(f.cite != SAME_RECIPE for f in found)}


def note(runs: list[dict], ranges: list | None, key: str = "final_val_acc") -> dict | None:
    """`range_note` of runs' final `key` against their ranges (`public`'s list, or None)."""
    return range_note(None if ranges is None else [(r[key], f) for r, f in zip(runs, ranges, strict=True)])


def _bold(cells: list[str], bold: bool) -> list[str]:
    return [BOLD + c for c in cells] if bold else cells


def run_table(rows: list[tuple[str, dict, bool]], ranges: list[PublicRange | None] | None = None) -> str:
    """A tabular of final train/val loss and accuracy; rows are (setting, run, chosen), chosen in bold (maths
    too); a mean over seeds with its sd in the concise notation (formatting.with_sd_short: 47.1(6)), so that the table
    fits the column at the captions' size. `ranges` (one per row; see `public`) adds the public validation range,
    '--' where there is none, and marks a validation accuracy above or below it (`marked`); None leaves that column
    out."""
    body = []
    for i, (setting, run, chosen) in enumerate(rows):
        numbers = shown(run)
        sd = numbers["sd"] or {}  # means over seeds: each printed with its standard deviation
        cells = [setting, *(with_sd_short(numbers[key], sd.get(key)) for key in ("train_loss", "train_acc",
                                                                                 "val_loss"))]
        if ranges is None:
            cells.append(with_sd_short(numbers["val_acc"], sd.get("val_acc")))
        else:
            cells += [marked(run["final_val_acc"], ranges[i], sd.get("val_acc")),
                      span(ranges[i]) if ranges[i] else "--"]
        body.append(_bold(cells, chosen))
    wide = ranges is not None
    head = [["", r"\multicolumn{2}{c}{Training}", r"\multicolumn{" + ("3" if wide else "2") + r"}{c@{}}{Validation}"],
            r"\cmidrule(lr){2-3}\cmidrule(l){4-" + ("6" if wide else "5") + "}",
            ["Setting", "Loss", "Acc.", "Loss", "Acc.", *(["Public"] if wide else [])]]  # units: the set-up
    return booktabs("@{}lrrrr" + ("r" if wide else "") + "@{}", head, body, narrow=wide)


def path_table(rows: list[dict]) -> str:
    """The path of chosen runs: rows {setting, run, test_acc (test accuracy or None), test_sd (its sd over seeds or
    None), val_range, test_range, bold, variant}; a variant row comes after a rule. Validation and test accuracy
    each get a public-range column when some row has such a range (columns with nothing in them are left out)."""
    val_public, test_public = (any(row[key] for row in rows) for key in ("val_range", "test_range"))
    body = []
    for row in rows:
        run, test = row["run"], row["test_acc"]
        sd = (shown(run)["sd"] or {}).get("val_acc")
        cells = [row["setting"], marked(run["final_val_acc"], row["val_range"], sd)]
        if val_public:
            cells.append(span(row["val_range"]) if row["val_range"] else "--")
        cells.append("" if test is None else marked(test, row["test_range"], row.get("test_sd")))
        if test_public:
            cells.append("" if test is None else span(row["test_range"]) if row["test_range"] else "--")
        body += ([r"\midrule"] if row["variant"] else []) + [_bold(cells, row["bold"])]
    val_head = [r"\multicolumn{2}{c}{Validation}" if val_public else "Validation"]
    test_head = [r"\multicolumn{2}{c@{}}{Test}" if test_public else "Test"]
    head = [["", *val_head, *test_head],
            ["Run", "Acc.", *(["Public"] if val_public else []), "Acc.", *(["Public"] if test_public else [])]]
    wide = val_public or test_public
    return booktabs("@{}l" + "r" * (2 + val_public + test_public) + "@{}", head, body, narrow=wide)


def baselines_table(archs: list[dict]) -> str:
    """The baselines' tabular: per architecture (the baselines section's `archs`, in the order trained) its
    parameters and multiply-adds (millions), seconds per epoch and best and final validation accuracy; the
    highest final accuracy in bold unless all are level."""
    level = all(a["highest"] for a in archs)
    body = [_bold([a["name"][0].upper() + a["name"][1:], a["params"], a["macs"], a["seconds"], a["best"],
                   a["final"]], a["highest"] and not level) for a in archs]
    head = [r" & \multicolumn{2}{c}{Millions} & & \multicolumn{2}{c@{}}{Val.\ acc.} \\",
            r"\cmidrule(lr){2-3}\cmidrule(l){5-6}", ["Model", "Params", "MACs", "s/epoch", "Best", "Final"]]
    return booktabs("@{}lrrrrr@{}", head, body, narrow=True)  # fits the column at the captions' size

"""The paper's generated LaTeX and its build: results files in, `report/paper.pdf` out.

What it is: `generate()` turns the section results files (lib.results) into `generated/` — `numbers.tex`
(one macro per number and per result-dependent sentence), `tables/<section>.tex` (the tabulars) and the
code listings — and `build_report()` compiles `report/paper.tex` with latexmk in a build folder that holds
copies of the sources, the generated files and the figures. `python -m lib.report` does both.
What it is not: the prose (report/paper.tex, written by hand, uses only these macros for numbers and
findings) or the figures (the notebooks save them through lib's figure helper).

Style: the official AAAI kit when its `.sty` lies in report/ (it cannot be redistributed), else our
report/ai6103aaai.sty, written from the kit's published geometry, with natbib's plainnat.bst.
"""
from __future__ import annotations

import argparse
import ast
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import paths
from .results import read_section

SECTIONS = ("01_data", "02_learning_rate", "03_lr_schedule", "04_weight_decay", "05_mixup", "06_activation",
            "07_summary")
KIT_NAMES = ("aaai2026", "aaai2025", "aaai24", "aaai23")  # official kit style names, newest first
OWN_STYLE, OWN_BST = "ai6103aaai", "plainnat"
SOURCES = ("paper.tex", "references.bib", f"{OWN_STYLE}.sty")  # what report/ contributes to a build
ARCH_NAMES = {"mobilenetv2": "MobileNetV2", "mobilenet": "MobileNet~(v1)"}


class ReportError(RuntimeError):
    """Something the paper needs is missing or wrong; the message says what to run or fix (one line)."""


# ---------------------------------------------------------------- formatting (one place for every number)

def pct(fraction: float, digits: int = 1) -> str:
    """An accuracy or share in [0, 1] as a percentage without the sign: 0.4712 -> '47.1'."""
    return f"{100 * fraction:.{digits}f}"


def loss(value: float) -> str:
    return f"{value:.3f}"


def plain(value: float) -> str:
    """A learning rate or alpha as typed: 0.05 -> '0.05'."""
    return f"{value:g}"


def sci(value: float) -> str:
    """A weight-decay coefficient in the brief's notation: 5e-4 -> '5\\times10^{-4}' (math mode)."""
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    mantissa = f"{value / 10**exponent:.2g}"
    if mantissa == "10":
        mantissa, exponent = "1", exponent + 1
    return f"{mantissa}\\times10^{{{exponent}}}"


def points(delta: float) -> str:
    """A difference of two fractions in percentage points with its sign, in math mode: '$+1.7$'."""
    return f"${100 * delta:+.1f}$"


def count(n: int) -> str:
    """40000 -> '40{,}000' (a thousands comma without a space after it in TeX)."""
    return f"{int(n):,}".replace(",", "{,}")


def join_words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------- reading

def load_results(results_dir: Path | None = None, profile: str | None = None) -> dict[str, dict]:
    """Every section's results file; a one-line ReportError naming the notebook to run if one is missing, or
    the notebooks to re-run if the sections come from different profiles or data (or not from `profile`)."""
    results = {}
    for section in SECTIONS:
        try:
            results[section] = read_section(section, results_dir)
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


# ---------------------------------------------------------------- LaTeX pieces

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
        self[f"{prefix}TrainLoss"] = loss(run["final_train_loss"])
        self[f"{prefix}TrainAcc"] = pct(run["final_train_acc"])
        self[f"{prefix}ValLoss"] = loss(run["final_val_loss"])
        self[f"{prefix}ValAcc"] = pct(run["final_val_acc"])
        self[f"{prefix}BestValAcc"] = pct(run["best_val_acc"])
        self[f"{prefix}BestValEpoch"] = str(run["best_val_epoch"])

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def run_table(rows: list[tuple[str, dict, bool]]) -> str:
    """A tabular of final train/val loss and accuracy; rows are (setting, run, chosen), chosen in bold."""
    body = []
    for setting, run, chosen in rows:
        cells = [setting, loss(run["final_train_loss"]), pct(run["final_train_acc"]),
                 loss(run["final_val_loss"]), pct(run["final_val_acc"])]
        if chosen:
            cells = [f"\\textbf{{{c}}}" for c in cells]
        body.append(" & ".join(cells) + r" \\")
    return "\n".join([
        r"\begin{tabular}{@{}lrrrr@{}}",
        r"\toprule",
        r" & \multicolumn{2}{c}{Training} & \multicolumn{2}{c@{}}{Validation} \\",
        r"\cmidrule(lr){2-3}\cmidrule(l){4-5}",
        r"Setting & Loss & Acc.\,(\%) & Loss & Acc.\,(\%) \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
    ]) + "\n"


def _higher(a: float, b: float, fmt=loss) -> str:
    """'higher', 'lower' or 'the same', comparing the numbers as printed (so the words match the digits)."""
    a, b = float(fmt(a)), float(fmt(b))
    return "higher" if a > b else "lower" if a < b else "the same"


def _a_higher(a: float, b: float, fmt=loss) -> str:
    word = _higher(a, b, fmt)
    return word if word == "the same" else f"a {word}"


def _eta(lr: float) -> str:
    return f"$\\eta={plain(lr)}$"


def _wd(value: float) -> str:
    return f"$\\lambda={sci(value)}$"


def _best(runs: list[dict], key: str, lowest: bool) -> dict:
    return (min if lowest else max)(runs, key=lambda r: r[key])


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

def _data(m: Macros, rec: dict, out: Path) -> None:
    x = rec["extra"]
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


def _learning_rate(m: Macros, rec: dict, out: Path) -> float:
    runs = sorted(_runs(rec), key=lambda r: -r["config"]["lr"])
    chosen = rec["chosen"].get("lr", rec["extra"].get("best_by_train_loss"))
    if chosen is None:
        chosen = _best(runs, "final_train_loss", lowest=True)["config"]["lr"]
    by_val = rec["extra"].get("best_by_val_acc", _best(runs, "final_val_acc", lowest=False)["config"]["lr"])
    base = runs[0]["config"]
    _model(m, base)
    m["BatchSize"], m["Momentum"] = str(base["batch_size"]), plain(base["momentum"])
    m["NumClasses"], m["Seed"] = str(base.get("num_classes", 100)), str(base["seed"])
    m["SplitSeed"] = str(base.get("split_seed", 0))
    m["LrEpochs"] = str(runs[0]["epochs"])
    m["LrValues"] = ", ".join(plain(r["config"]["lr"]) for r in runs)  # math mode
    m["BestLr"], m["BestLrByValAcc"] = plain(chosen), plain(by_val)
    m.runs("BestLr", next(r for r in runs if r["config"]["lr"] == chosen))

    # Which rate wins each of the brief's four criteria, grouped by rate.
    criteria = [("final_train_loss", True, "the lowest training loss"),
                ("final_train_acc", False, "the highest training accuracy"),
                ("final_val_loss", True, "the lowest validation loss"),
                ("final_val_acc", False, "the highest validation accuracy")]
    winners: dict[float, list[str]] = {}
    ties = []  # criteria on which several rates end exactly level
    for key, lowest, words in criteria:
        best = _best(runs, key, lowest)
        level = [r for r in runs if r[key] == best[key]]
        if len(level) > 1:
            ties.append(f"{join_words([_eta(r['config']['lr']) for r in level])} tie for {words}")
        else:
            winners.setdefault(best["config"]["lr"], []).append(words)
    clauses = [f"{_eta(lr)} has {join_words(words)}" for lr, words in winners.items()] + ties
    m["LrWinnersSentence"] = "; ".join(clauses) + "."
    order = sorted(runs, key=lambda r: r["final_train_loss"])
    m["LrOrderSentence"] = ("Ordered by final training loss: " + " $<$ ".join(
        f"{plain(r['config']['lr'])} ({loss(r['final_train_loss'])})" for r in order) + ".")
    chosen_run = next(r for r in runs if r["config"]["lr"] == chosen)
    if chosen_run["final_val_acc"] == _best(runs, "final_val_acc", lowest=False)["final_val_acc"]:
        m["BestLrSentence"] = (f"The rate {_eta(chosen)} both minimises the training loss and maximises the "
                               f"validation accuracy, so it is the initial rate for all later runs.")
    else:
        val_run = next(r for r in runs if r["config"]["lr"] == by_val)
        m["BestLrSentence"] = (f"Following the brief, we carry {_eta(chosen)}, the rate with the lowest training "
                               f"loss, into all later runs, although {_eta(by_val)} ends with a higher validation "
                               f"accuracy ({pct(val_run['final_val_acc'])}\\,\\%).")
    (out / "tables" / "02_learning_rate.tex").write_text(run_table(
        [(_eta(r["config"]["lr"]), r, r["config"]["lr"] == chosen) for r in runs]))
    return chosen


def _schedule(m: Macros, rec: dict, out: Path) -> dict:
    runs = _runs(rec)
    const = _one(runs, lambda c: c["schedule"] == "constant", "schedule 'constant'", rec["section"])
    cos = _one(runs, lambda c: c["schedule"] == "cosine", "schedule 'cosine'", rec["section"])
    chosen = rec["chosen"].get("schedule", "cosine")
    m["LongEpochs"] = str(cos["epochs"])
    m["ChosenSchedule"] = chosen
    m.runs("Const", const)
    m.runs("Cos", cos)
    m["ScheduleSentence"] = (
        f"Cosine annealing ends with {_a_higher(cos['final_train_loss'], const['final_train_loss'])} training "
        f"loss ({loss(cos['final_train_loss'])} against {loss(const['final_train_loss'])}) and "
        f"{_a_higher(cos['final_val_acc'], const['final_val_acc'], pct)} validation accuracy "
        f"({pct(cos['final_val_acc'])}\\,\\% against {pct(const['final_val_acc'])}\\,\\%, "
        f"{points(cos['final_val_acc'] - const['final_val_acc'])} points) than the constant rate.")
    m["ConstPeakSentence"] = (
        f"The constant-rate run had its best validation accuracy, {pct(const['best_val_acc'])}\\,\\%, at epoch "
        f"{const['best_val_epoch']} of {const['epochs']}; the cosine run had its best, {pct(cos['best_val_acc'])}"
        f"\\,\\%, at epoch {cos['best_val_epoch']}.")
    (out / "tables" / "03_lr_schedule.tex").write_text(run_table(
        [(r["config"]["schedule"], r, r["config"]["schedule"] == chosen) for r in (const, cos)]))
    return cos if chosen == "cosine" else const


def _weight_decay(m: Macros, rec: dict, out: Path, no_decay: dict) -> dict:
    runs = sorted(_runs(rec), key=lambda r: -r["config"]["weight_decay"])
    chosen = rec["chosen"].get("weight_decay")
    best = _best(runs, "final_val_acc", lowest=False)
    if chosen is None:
        chosen = best["config"]["weight_decay"]
    chosen_run = next(r for r in runs if r["config"]["weight_decay"] == chosen)
    m["WdValues"] = ", ".join(sci(r["config"]["weight_decay"]) for r in runs)  # math mode
    m["WdChosen"] = f"\\ensuremath{{{sci(chosen)}}}"
    m.runs("Wd", chosen_run)
    for name, r in zip(("WdLarge", "WdSmall"), (runs[0], runs[-1]), strict=True):
        m.runs(name, r)
        m[f"{name}Value"] = f"\\ensuremath{{{sci(r['config']['weight_decay'])}}}"

    def gap(r: dict) -> float:  # points by which training accuracy exceeds validation accuracy
        return 100 * (r["final_train_acc"] - r["final_val_acc"])

    others = [r for r in runs if r is not best]
    parts = [f"{_wd(best['config']['weight_decay'])} generalised better: it ends with the highest validation "
             f"accuracy ({pct(best['final_val_acc'])}\\,\\% against "
             + join_words([f"{pct(r['final_val_acc'])}\\,\\% for {_wd(r['config']['weight_decay'])}" for r in others])
             + ")"]
    if others:
        o = others[0]
        parts.append(f"{_a_higher(best['final_val_loss'], o['final_val_loss'])} validation loss "
                     f"({loss(best['final_val_loss'])} against {loss(o['final_val_loss'])})")
        parts.append(f"a {'smaller' if gap(best) < gap(o) else 'larger'} gap between training and validation "
                     f"accuracy ({gap(best):.1f} against {gap(o):.1f} points)")
    if others and pct(best["final_val_acc"]) == pct(others[0]["final_val_acc"]):
        m["WdSentence"] = (f"Both coefficients end with the same validation accuracy ({pct(best['final_val_acc'])}"
                           f"\\,\\%); {_wd(best['config']['weight_decay'])} has " + join_words(parts[1:]) + ".")
    else:
        m["WdSentence"] = join_words(parts) + "."
    m["WdNoneSentence"] = (
        f"Without weight decay the same schedule reached {pct(no_decay['final_val_acc'])}\\,\\% with a training "
        f"loss of {loss(no_decay['final_train_loss'])}; {_wd(chosen)} changes the validation accuracy by "
        f"{points(chosen_run['final_val_acc'] - no_decay['final_val_acc'])} points and the training loss "
        f"from {loss(no_decay['final_train_loss'])} to {loss(chosen_run['final_train_loss'])}.")
    (out / "tables" / "04_weight_decay.tex").write_text(run_table(
        [(_wd(r["config"]["weight_decay"]), r, r["config"]["weight_decay"] == chosen) for r in runs]))
    return chosen_run


def _mixup(m: Macros, rec: dict, out: Path, previous: dict) -> dict:
    runs = _runs(rec)
    mix = _one(runs, lambda c: c["mixup_alpha"] > 0, "mixup_alpha > 0", rec["section"])
    base = next((r for r in runs if r["config"]["mixup_alpha"] == 0), previous)  # else the best run of 04
    chosen = rec["chosen"].get("mixup_alpha", mix["config"]["mixup_alpha"])
    m["MixupAlpha"] = plain(mix["config"]["mixup_alpha"])
    m.runs("Mix", mix)
    m.runs("NoMix", base)
    x = rec["extra"]
    all_runs = {r["run_id"]: r for r in runs + [previous]}
    tested = all_runs.get(x.get("test_run_id"))
    which = "with" if tested and tested["config"]["mixup_alpha"] > 0 else "without"
    m["MixupTestSentence"] = (
        f"Evaluated once on the test set, the model trained {which} mixup reaches {pct(x['test_acc'])}\\,\\% "
        f"test accuracy (loss {loss(x['test_loss'])})." if tested and "test_acc" in x else "")
    m["MixupSentence"] = (
        f"With mixup the final training loss is {_higher(mix['final_train_loss'], base['final_train_loss'])} "
        f"({loss(mix['final_train_loss'])} against {loss(base['final_train_loss'])} without it) and the "
        f"validation accuracy is {_higher(mix['final_val_acc'], base['final_val_acc'], pct)} "
        f"({pct(mix['final_val_acc'])}\\,\\% against {pct(base['final_val_acc'])}\\,\\%, "
        f"{points(mix['final_val_acc'] - base['final_val_acc'])} points); the validation loss is "
        f"{_higher(mix['final_val_loss'], base['final_val_loss'])} ({loss(mix['final_val_loss'])} against "
        f"{loss(base['final_val_loss'])}).")
    kept = chosen > 0
    m["MixupChoiceShort"] = f"mixup with $\\alpha={plain(chosen)}$" if kept else "no mixup"
    m["MixupChoiceSentence"] = (
        f"Mixup with $\\alpha={plain(chosen)}$ is therefore part of the final recipe." if kept else
        "Mixup is therefore left out of the final recipe.")
    (out / "tables" / "05_mixup.tex").write_text(run_table(
        [("no mixup", base, not kept), (f"mixup $\\alpha={plain(mix['config']['mixup_alpha'])}$", mix, kept)]))
    return mix if kept else base


def _blocks(blocks: list[int]) -> str:
    if blocks and blocks == list(range(blocks[0], blocks[-1] + 1)) and len(blocks) > 1:
        return f"{blocks[0]}--{blocks[-1]}"
    return join_words([str(b) for b in blocks])


def _activation(m: Macros, rec: dict, out: Path) -> None:
    runs = _runs(rec)
    sig = _one(runs, lambda c: len(c["sigmoid_blocks"]) > 0, "sigmoid_blocks", rec["section"])
    relu = _one(runs, lambda c: len(c["sigmoid_blocks"]) == 0, "ReLU everywhere", rec["section"])
    m["SigmoidBlocks"] = _blocks(list(sig["config"]["sigmoid_blocks"]))
    param = sig["config"].get("grad_norm_param", "layers.8.conv1.weight")
    m["GradParam"] = "\\texttt{" + re.sub(r"\.(\d+)", r"[\1]", param).replace("_", "\\_") + "}"
    what = {("mobilenetv2", "layers.8.conv1.weight"): "the $1\\times1$ expansion convolution of block~8 "
                                                      "($384\\times64$ weights)",
            ("mobilenet", "layers.8.conv1.weight"): "the $3\\times3$ depthwise convolution of block~8 "
                                                    "($512\\times3\\times3$ weights)"}
    m["GradParamWhat"] = what.get((sig["config"]["arch"], param), "the watched weight")
    inside = param.startswith("layers.") and int(param.split(".")[1]) in sig["config"]["sigmoid_blocks"]
    m["GradParamInside"] = "inside" if inside else "outside"
    m["ActivationBaseRecipe"] = recipe_words(relu["config"])
    m.runs("Sig", sig)
    m.runs("Relu", relu)
    m["ActivationSentence"] = (
        f"Sigmoid in blocks {m_blocks(sig)} ends with {_a_higher(sig['final_train_loss'], relu['final_train_loss'])} "
        f"training loss ({loss(sig['final_train_loss'])} against {loss(relu['final_train_loss'])} with ReLU) and "
        f"{_a_higher(sig['final_val_acc'], relu['final_val_acc'], pct)} validation accuracy "
        f"({pct(sig['final_val_acc'])}\\,\\% against {pct(relu['final_val_acc'])}\\,\\%).")
    norms = rec["extra"].get("grad_norm", {})

    def series(run: dict, is_sigmoid: bool) -> list[float] | None:
        if run["label"] in norms:
            return norms[run["label"]]
        for key, values in norms.items():  # labels differ from the keys: match by activation name
            if ("sigmoid" in key.lower()) == is_sigmoid:
                return values
        return None

    clauses = []
    for name, run, is_sig in (("ReLU", relu, False), (f"Sigmoid in blocks {m_blocks(sig)}", sig, True)):
        values = series(run, is_sig)
        if values:
            peak = max(range(len(values)), key=values.__getitem__)
            subject = "it" if clauses else "the gradient norm"
            clauses.append(f"with {name} {subject} starts at {values[0]:#.3g}, peaks at {values[peak]:#.3g} in "
                           f"epoch {peak + 1} and ends at {values[-1]:#.3g}")
    m["GradNormSentence"] = ("W" + "; ".join(clauses)[1:] + ".") if clauses else ""
    (out / "tables" / "06_activation.tex").write_text(run_table(
        [("ReLU", relu, False), (f"Sigmoid, blocks {m_blocks(sig)}", sig, False)]))


def m_blocks(run: dict) -> str:
    return _blocks(list(run["config"]["sigmoid_blocks"]))


def _summary(m: Macros, results: dict[str, dict], out: Path, final: dict) -> None:
    x = results["07_summary"]["extra"]
    if "test_acc" not in x:
        raise ReportError("results of 07_summary have no test_acc: re-run notebook notebooks/07_summary.ipynb")
    m["TestAcc"] = pct(x["test_acc"])
    all_runs = {r["run_id"]: r for s in SECTIONS for r in results[s]["runs"]}
    tested = all_runs.get(x.get("test_run_id"), final)
    c = tested["config"]
    m["FinalRecipe"] = recipe_words(c)
    m.runs("Final", tested)
    m["FinalTestSentence"] = (f"The model chosen on the validation split (bold), trained with {recipe_words(c)}, "
                              f"reaches {pct(x['test_acc'])}\\,\\% test accuracy.")
    sched = {r["config"]["schedule"]: r for r in results["03_lr_schedule"]["runs"]}
    rows = [(f"constant $\\eta={plain(r['config']['lr'])}$", r) for r in [sched.get("constant")] if r]
    rows += [("cosine", sched["cosine"])] if "cosine" in sched else []
    rows += [(f"+ {_wd(r['config']['weight_decay'])}", r)
             for r in sorted(results["04_weight_decay"]["runs"], key=lambda r: -r["config"]["weight_decay"])]
    rows += [(f"+ mixup $\\alpha={plain(r['config']['mixup_alpha'])}$", r)
             for r in results["05_mixup"]["runs"] if r["config"]["mixup_alpha"] > 0]
    rows += [(f"Sigmoid, blocks {m_blocks(r)}", r) for r in results["06_activation"]["runs"]
             if r["config"]["sigmoid_blocks"]]
    # The path of chosen runs: constant rate, then each adopted change with the run it led to.
    steps = [("", sched.get("constant"))]
    if results["03_lr_schedule"]["chosen"].get("schedule") == "cosine":
        steps.append(("with cosine annealing", sched.get("cosine")))
    steps.append(("with weight decay", _chosen_by(results["04_weight_decay"], "weight_decay")))
    if results["05_mixup"]["chosen"].get("mixup_alpha", 0) > 0:
        steps.append(("with mixup", _chosen_by(results["05_mixup"], "mixup_alpha")))
    if all(r for _, r in steps) and len(steps) > 1:
        changes = [f"{points(b['final_val_acc'] - a['final_val_acc'])} points {words}"
                   for (_, a), (words, b) in zip(steps, steps[1:], strict=False)]
        m["StageGainsSentence"] = (
            "Step by step, the final validation accuracy changed by " + join_words(changes) + f", from "
            f"{pct(steps[0][1]['final_val_acc'])}\\,\\% to {pct(steps[-1][1]['final_val_acc'])}\\,\\%.")
    else:
        m["StageGainsSentence"] = ""
    (out / "tables" / "07_summary.tex").write_text(run_table(
        [(label, r, r["run_id"] == tested["run_id"]) for label, r in rows]))


def _chosen_by(record: dict, field: str) -> dict | None:
    """The run of a section whose config has the section's chosen value of `field` (None if not there)."""
    value = record["chosen"].get(field)
    return next((r for r in record["runs"] if r["config"][field] == value), None)


def recipe_words(c: dict) -> str:
    """A run's training recipe in words, e.g. '$\\eta=0.05$, cosine schedule, 300 epochs and ...'."""
    recipe = [f"$\\eta={plain(c['lr'])}$", f"{c['schedule']} schedule", f"{c['epochs']} epochs",
              f"$\\lambda={sci(c['weight_decay'])}$" if c["weight_decay"] else "no weight decay"]
    if c["mixup_alpha"] > 0:
        recipe.append(f"mixup $\\alpha={plain(c['mixup_alpha'])}$")
    if c.get("sigmoid_blocks"):
        recipe.append(f"Sigmoid in blocks {_blocks(list(c['sigmoid_blocks']))}")
    return join_words(recipe)


def _model(m: Macros, config: dict) -> None:
    """The architecture's name, description and parameter count (counted on the built model)."""
    from .models import build_model  # torch is only needed here

    n_params = sum(p.numel() for p in build_model(config["arch"], config.get("num_classes", 100)).parameters())
    m["ArchName"] = ARCH_NAMES.get(config["arch"], config["arch"])
    m["NumParams"] = count(n_params)
    m["ArchDescription"] = {
        "mobilenetv2": "the CIFAR variant of MobileNetV2~\\citep{sandler2018mobilenetv2}: a $3\\times3$ stem and "
                       "17 inverted-residual blocks ($1\\times1$ expansion, $3\\times3$ depthwise, linear "
                       "$1\\times1$ projection, each followed by batch normalisation), with stride~1 in the stem "
                       "and the second stage so that $32\\times32$ inputs are not down-sampled too early",
        "mobilenet": "the CIFAR variant of MobileNet~\\citep{howard2017mobilenets} handed out in the course: a "
                     "$3\\times3$ stem at stride~1 and 13 depthwise-separable blocks ($3\\times3$ depthwise, "
                     "$1\\times1$ pointwise, each followed by batch normalisation)",
    }.get(config["arch"], config["arch"])


def _banner(m: Macros, results: dict[str, dict]) -> None:
    kinds = {rec["data_kind"] for rec in results.values()}
    profiles = sorted({rec["profile"] for rec in results.values()})
    m["DataKind"] = "/".join(sorted(kinds))
    m["Profile"] = "/".join(profiles)
    notes = []
    if "synthetic" in kinds:
        notes.append("\\textbf{Built from synthetic data.} Every number and figure in this paper comes from "
                     "randomly generated stand-in images (workbook profile "
                     f"\\texttt{{{m_escape('/'.join(profiles))}}}); it tests the pipeline and says nothing "
                     "about CIFAR-100.")
    elif "modified" in kinds:
        notes.append("\\textbf{Built from modified data.} The CIFAR-100 files used differ from the official "
                     "release; the numbers are not comparable with published CIFAR-100 results.")
    if "synthetic" not in kinds and profiles != ["full"]:
        notes.append(f"\\textbf{{Shortened runs}} (profile \\texttt{{{m_escape('/'.join(profiles))}}}): "
                     "fewer epochs or images than the brief prescribes.")
    # The data set's name in the text: the stand-in must not be described as CIFAR-100 itself.
    m["DataName"] = {"synthetic": "Our synthetic stand-in for CIFAR-100",
                     "modified": "The modified CIFAR-100 files used here"}.get(
        next((k for k in ("synthetic", "modified") if k in kinds), ""), "CIFAR-100~\\citep{krizhevsky2009learning}")
    m["DataBanner"] = ("\\par\\noindent\\fbox{\\parbox{\\dimexpr\\linewidth-2\\fboxsep-2\\fboxrule}{"
                       + " ".join(notes) + "}}\\par\\medskip") if notes else ""


def m_escape(text: str) -> str:
    return re.sub(r"([_%&#$])", r"\\\1", text)


def generate(results_dir: Path | None = None, figures_dir: Path | None = None,
             out_dir: Path | None = None, profile: str | None = None) -> Path:
    """Write `numbers.tex`, `tables/*.tex` and the listings into `out_dir` (default report/generated), from
    results of one profile (`profile`, if given) and one kind of data."""
    out = Path(out_dir) if out_dir is not None else paths.report_dir() / "generated"
    results = load_results(results_dir, profile)
    figures = Path(figures_dir) if figures_dir is not None else paths.figures_dir()
    (out / "tables").mkdir(parents=True, exist_ok=True)
    m = Macros()
    _banner(m, results)
    _data(m, results["01_data"], out)
    _learning_rate(m, results["02_learning_rate"], out)
    scheduled = _schedule(m, results["03_lr_schedule"], out)
    wd_run = _weight_decay(m, results["04_weight_decay"], out, scheduled)
    final = _mixup(m, results["05_mixup"], out, wd_run)
    _activation(m, results["06_activation"], out)
    _summary(m, results, out, final)
    header = "% Generated by lib/report.py from the results files; do not edit.\n"
    (out / "numbers.tex").write_text(header + m.text())
    path = figures.as_posix()
    extra = f"{{{path}/}}" if re.fullmatch(r"[\w/.\-]+", path) else ""  # TeX cannot take spaces etc. here
    (out / "paths.tex").write_text(header + f"\\graphicspath{{{{figures/}}{extra}}}\n")
    _write_style(out, *choose_style())
    return out


# ---------------------------------------------------------------- building

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
                 quiet: bool = True, profile: str | None = None) -> Path:
    """Generate the LaTeX and compile the paper in `out_dir` (default report/build); returns the PDF's path.

    out_dir receives copies of report/'s sources, `generated/`, `figures/` and latexmk's outputs, so the
    folders the results and figures live in can be anywhere.
    """
    if shutil.which("latexmk") is None:
        raise ReportError("latexmk is not installed: run `make setup` (scripts/install_tex.sh)")
    src = paths.report_dir()
    build = Path(out_dir) if out_dir is not None else src / "build"
    figures = Path(figures_dir) if figures_dir is not None else paths.figures_dir()
    build.mkdir(parents=True, exist_ok=True)
    generate(results_dir, figures, build / "generated", profile)
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
            section = next((s for s in SECTIONS if stem.startswith(s)), None)
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
    parser.add_argument("--profile", default=None, help="the profile the results must come from (make: PROFILE)")
    args = parser.parse_args(argv)
    try:
        generated = generate(profile=args.profile)
        if args.generate_only:
            print(f"Wrote {generated}")
            return 0
        pdf = build_report(quiet=False, profile=args.profile)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    target = paths.report_dir() / "paper.pdf"
    shutil.copy2(pdf, target)
    print(f"Wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

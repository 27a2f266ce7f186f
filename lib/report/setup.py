"""The paper's generic part: the set-up every run shares, the data's names, the title, the final model and its
test score, and what the abstract says the study varies, all from the session's brief and its results; it names
no section (the brief says which section is the final choice and which step looks at the test set)."""
from __future__ import annotations

import functools
import math
import re

import scipy.stats

from ..core.notation import arch_name
from ..studies.sections import brief, get
from .formatting import Facts, count, pct, pct_or_none, plain, setting_words, shown, tex_escape, with_sd
from .reading import final_run, runs, runs_per_setting


def parameter_count(config: dict) -> int:
    """The architecture's parameter count, counted on the built model."""
    return _parameters(config["arch"], config.get("num_classes", 100))


@functools.cache
def _parameters(arch: str, num_classes: int) -> int:
    from ..nets.models import build_model  # torch is only needed here

    return sum(p.numel() for p in build_model(arch, num_classes).parameters())


def title(text: str) -> str:
    """The brief's title in LaTeX: {arch} -> \\ArchName{}, {data} -> \\DataTitle{}, the rest escaped."""
    pieces = re.split(r"\{(arch|data)\}", text)  # text, placeholder, text, ...
    return "".join(("\\ArchName{}" if piece == "arch" else "\\DataTitle{}") if i % 2 else tex_escape(piece)
                   for i, piece in enumerate(pieces))


def epochs_of(results: dict[str, dict], length: str) -> str | None:
    """The epochs of the brief's sections of `length` ("short" or "long"), as their first runs trained them."""
    found = [runs(results[name])[0]["epochs"] for name in brief().training if get(name).epochs == length]
    return str(found[0]) if found else None


def study_values(results: dict[str, dict]) -> dict:
    """What the abstract and the title take from the brief: the title, what the study varies one at a time
    before the test step (`varied`) and after it (`variants`), in words, the final model as printed and its test
    accuracy (with its sd over seeds, if several)."""
    spec = brief()
    cut = spec.names.index(spec.test_step)
    test = results[spec.test_step]["extra"]
    return {"title": title(spec.title),
            "varied": [setting_words(get(name).compares) for name in spec.training if spec.names.index(name) < cut],
            "variants": [setting_words(get(name).compares) for name in spec.training
                         if spec.names.index(name) > cut],
            "final": shown(final_run(results)), "n_test": test.get("n_seeds", 1),
            "test_acc": with_sd(pct(test["test_acc"]), pct_or_none(test.get("test_acc_std")))}


def setup(results: dict[str, dict]) -> Facts:
    """The data and training set-up shared by every run, whether the paper needs a banner, n (the runs per
    setting, `runs_per_setting`; `n_most` the largest), the seeds the runs used (seed 0's and the next n_most - 1,
    as strings), how wide a difference's interval is at that n (`interval_width`), and `study_values`."""
    facts = Facts()
    m = facts.macros
    records = [results[name] for name in brief().names]
    kinds = {rec["data_kind"] for rec in records}
    profiles = sorted({rec["profile"] for rec in records})
    m["DataKind"] = "/".join(sorted(kinds))
    m["Profile"] = "/".join(profiles)
    base = runs(results[brief().training[0]])[0]["config"]  # every run shares these settings
    m["ArchName"] = arch_name(base["arch"], tex=True, default=tex_escape(base["arch"]))
    m["NumParams"] = count(parameter_count(base))
    m["BatchSize"], m["Momentum"] = str(base["batch_size"]), plain(base["momentum"])
    m["NumClasses"], m["Seed"] = str(base.get("num_classes", 100)), str(base["seed"])
    m["SplitSeed"] = str(base.get("split_seed", 0))
    long = epochs_of(results, "long") or str(base["epochs"])
    m["LongEpochs"], m["ShortEpochs"] = long, epochs_of(results, "short") or long
    m.runs("Final", final_run(results))
    synthetic = "synthetic" in kinds
    facts.values = {"arch": base["arch"], "synthetic": synthetic, "modified": "modified" in kinds,
                    "shortened": not synthetic and profiles != ["full"], "profile": tex_escape("/".join(profiles)),
                    "n": runs_per_setting(results), "n_most": runs_per_setting(results, most=True),
                    "train_subset": count(base["train_subset"]) if base.get("train_subset") else None,
                    "val_subset": count(base["val_subset"]) if base.get("val_subset") else None,
                    "cost": training_cost(results), **study_values(results)}
    m["TestAcc"] = facts.values["test_acc"]
    # the seeds as lib.core.config.with_seeds numbers them
    facts.values |= {"seeds": [str(base["seed"] + k) for k in range(facts.values["n_most"])],
                     "interval": interval_width(facts.values["n"], facts.values["n_most"])}
    return facts


def training_cost(results: dict[str, dict]) -> dict:
    """What the study's training took: the devices its settings trained on (None if no record names one), the
    distinct settings, their epochs and the wall time of all their seeds in words (results rows' `device`,
    `train_seconds`; a row shared by two sections counts once)."""
    rows = {r["run_id"]: r for section in brief().training for r in runs(results[section])}
    devices = sorted({r["device"] for r in rows.values() if r.get("device")})
    seconds = sum(r.get("train_seconds") or 0.0 for r in rows.values())
    return {"devices": tex_escape(", ".join(devices)) if devices else None, "settings": len(rows),
            "epochs": count(sum(r["epochs"] * r.get("n_seeds", 1) for r in rows.values())),
            "time": duration(seconds)}


def duration(seconds: float) -> str:
    """A wall time in words, to about two significant digits: '45 seconds', '1 minute', '12 minutes', '3.4 hours'."""
    if seconds >= 10 * 3600:
        return f"{seconds / 3600:.0f} hours"
    if seconds >= 90 * 60:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 90:
        return f"{seconds / 60:.0f} minutes"
    return "1 minute" if seconds >= 60 else f"{seconds:.0f} seconds"


def interval_width(n: int, n_most: int) -> dict | None:
    """How wide a difference's 95 % Welch interval is with k seeds per setting (k = n, or n_most where some
    settings have one run): {n: k, width: its half-width in units of the seeds' standard deviation s when both
    settings share s, t(0.975, 2k - 2) * sqrt(2 / k), as printed}; None when every setting has one run."""
    k = n if n > 1 else n_most
    if k < 2:
        return None
    return {"n": k, "width": f"{scipy.stats.t.ppf(0.975, 2 * k - 2) * math.sqrt(2 / k):.2f}"}

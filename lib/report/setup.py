"""The paper's set-up and data sections: the set-up every run shares and 01_data's numbers, table and listings."""
from __future__ import annotations

import ast
import math
from pathlib import Path

import scipy.stats

from ...core import paths
from ...studies.sections import TRAINING, arch_name
from ..formatting import Facts, count, pct, plain, tex_escape
from ..reading import ReportError, runs, runs_per_setting
from ..tables import data_table


def parameter_count(config: dict) -> int:
    """The architecture's parameter count, counted on the built model."""
    from ...nets.models import build_model  # torch is only needed here

    return sum(p.numel() for p in build_model(config["arch"], config.get("num_classes", 100)).parameters())


def setup(results: dict[str, dict]) -> Facts:
    """The data and training set-up shared by every run, whether the paper needs a banner, n (the runs per
    setting, `runs_per_setting`; `n_most` the largest), the seeds the runs used (seed 0's and the next n_most - 1,
    as strings) and how wide a difference's interval is at that n (`interval_width`)."""
    facts = Facts()
    m = facts.macros
    kinds = {rec["data_kind"] for rec in results.values()}
    profiles = sorted({rec["profile"] for rec in results.values()})
    m["DataKind"] = "/".join(sorted(kinds))
    m["Profile"] = "/".join(profiles)
    base = runs(results["02_learning_rate"])[0]["config"]  # every run shares these settings
    m["ArchName"] = arch_name(base["arch"], tex=True, default=base["arch"])
    m["NumParams"] = count(parameter_count(base))
    m["BatchSize"], m["Momentum"] = str(base["batch_size"]), plain(base["momentum"])
    m["NumClasses"], m["Seed"] = str(base.get("num_classes", 100)), str(base["seed"])
    m["SplitSeed"] = str(base.get("split_seed", 0))
    synthetic = "synthetic" in kinds
    facts.values = {"arch": base["arch"], "synthetic": synthetic, "modified": "modified" in kinds,
                    "shortened": not synthetic and profiles != ["full"], "profile": tex_escape("/".join(profiles)),
                    "n": runs_per_setting(results), "n_most": runs_per_setting(results, most=True),
                    "train_subset": count(base["train_subset"]) if base.get("train_subset") else None,
                    "val_subset": count(base["val_subset"]) if base.get("val_subset") else None,
                    "cost": training_cost(results)}
    # the seeds as lib.core.config.with_seeds numbers them
    facts.values |= {"seeds": [str(base["seed"] + k) for k in range(facts.values["n_most"])],
                     "interval": interval_width(facts.values["n"], facts.values["n_most"])}
    return facts


def training_cost(results: dict[str, dict]) -> dict:
    """What the study's training took: the devices its settings trained on (None if no record names one), the
    distinct settings, their epochs and the wall time of all their seeds in words (results rows' `device`,
    `train_seconds`; a row shared by two sections counts once)."""
    rows = {r["run_id"]: r for section in TRAINING if section in results for r in runs(results[section])}
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


def function_source(path: Path, name: str) -> str | None:
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


def data(rec: dict, split_seed: int) -> Facts:
    """01's numbers, of the split the runs trained on (`split_seed`, their config's): macros, the channel table
    and the listings of the split and the augmentation (split_code.py, augment_code.py)."""
    x = rec["extra"]
    if x.get("split_seed", 0) != split_seed:
        raise ReportError(f"results of 01_data describe the split with seed {x.get('split_seed')}, the runs' "
                          f"split has seed {split_seed}: re-run notebook notebooks/01_data.ipynb with "
                          f"split_seed={split_seed}")
    facts = Facts()
    m = facts.macros
    m["NTrain"], m["NVal"] = count(x["n_train"]), count(x["n_val"])
    m["NTotal"] = count(x["n_train"] + x["n_val"])
    for i, channel in enumerate("RGB"):
        m[f"Mean{channel}"] = f"{x['mean'][i]:.4f}"
        m[f"Std{channel}"] = f"{x['std'][i]:.4f}"
    m["ClassPropMin"], m["ClassPropMax"] = pct(x["class_prop_min"], 2), pct(x["class_prop_max"], 2)
    augment = function_source(paths.PROJECT_ROOT / "lib" / "nets" / "data.py", "random_crop_flip")
    facts.files = {"split_code.py": x["split_code"].strip("\n") + "\n",
                   "augment_code.py": augment or "# lib.nets.data.random_crop_flip not found\n"}
    facts.tables = {"01_data": data_table(x["mean"], x["std"])}
    return facts

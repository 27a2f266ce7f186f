"""The paper's data section: the split, its channel statistics (a table), its class shares and the listings of
the split and of the augmentation, of the split the runs trained on."""
from __future__ import annotations

import ast
from pathlib import Path

from ...core import paths
from ...studies.sections import brief
from ..formatting import Facts, count, pct
from ..reading import ReportError, runs
from ..templates import booktabs


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


def channel_table(mean: list[float], std: list[float]) -> str:
    """The per-channel mean and standard deviation (four decimals) of the training split."""
    return booktabs("@{}lrrr@{}", [["", "Red", "Green", "Blue"]],
                    [["Mean", *(f"{v:.4f}" for v in mean)], ["Std", *(f"{v:.4f}" for v in std)]])


def facts(results: dict[str, dict], name: str) -> Facts:
    """The data section's macros, channel table and listings (split_code.py, augment_code.py), of the split the
    runs trained on (the split seed of the brief's first training section's runs)."""
    x = results[name]["extra"]
    split_seed = runs(results[brief().training[0]])[0]["config"].get("split_seed", 0)
    if x.get("split_seed", 0) != split_seed:
        raise ReportError(f"results of {name} describe the split with seed {x.get('split_seed')}, the runs' "
                          f"split has seed {split_seed}: re-run notebook notebooks/{name}.ipynb with "
                          f"split_seed={split_seed}")
    found = Facts()
    m = found.macros
    m["NTrain"], m["NVal"] = count(x["n_train"]), count(x["n_val"])
    m["NTotal"] = count(x["n_train"] + x["n_val"])
    for i, channel in enumerate("RGB"):
        m[f"Mean{channel}"] = f"{x['mean'][i]:.4f}"
        m[f"Std{channel}"] = f"{x['std'][i]:.4f}"
    m["ClassPropMin"], m["ClassPropMax"] = pct(x["class_prop_min"], 2), pct(x["class_prop_max"], 2)
    augment = function_source(paths.PROJECT_ROOT / "lib" / "nets" / "data.py", "random_crop_flip")
    found.files = {"split_code.py": x["split_code"].strip("\n") + "\n",
                   "augment_code.py": augment or "# lib.nets.data.random_crop_flip not found\n"}
    found.tables = {name: channel_table(x["mean"], x["std"])}
    return found

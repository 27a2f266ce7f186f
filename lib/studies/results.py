"""Section results files: the small JSON records that chain the study and feed the paper.

Each notebook writes `results/<profile>/<section>.json` with `write_section`; later notebooks read the choices
of earlier ones with `read_section`, and the paper's LaTeX is generated from these files alone. The fields of a
file and of each run in it: docs/results.md. A file is written atomically and checked when read.
`metric_cells` turns a run's final numbers into a results table's cells (%, and their sd with several seeds),
for every table the notebooks show (lib.studies.study, lib.studies.sweep, lib.studies.baselines).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..core import paths
from ..core.checkpoint import atomic_write_text, remove_stale_temporaries
from .study_lock import check_study_free

RESULTS_VERSION = 2  # the files' layout; read_section refuses any other version with the notebook to re-run


def section_path(section: str, folder: Path | None = None, profile: str | None = None) -> Path:
    """Where a section's results file lies: in `folder` if given, else in the profile's results folder."""
    return (Path(folder) if folder is not None else paths.results_dir(profile)) / f"{section}.json"


def write_section(section: str, profile: str, data_kind: str, runs: list[dict], chosen: dict | None = None,
                  extra: dict | None = None, figures: list[str] | None = None,
                  chosen_run_id: str | None = None) -> Path:
    """Write a section's results file atomically (docs/results.md has its fields) and return its path.
    RunStoreError, one line, while a driver other than this notebook's holds the profile's study
    (lib.studies.study_lock). `chosen_run_id`, if given, must be the `run_id` of one of `runs` (else ValueError)."""
    check_study_free(profile)  # a driver holds the study (lib.studies.study_lock): its results are not ours to replace
    if chosen_run_id is not None and chosen_run_id not in {run["run_id"] for run in runs}:
        raise ValueError(f"chosen_run_id {chosen_run_id!r} is not among the runs of {section}")
    record = {"results_version": RESULTS_VERSION, "section": section, "profile": profile, "data_kind": data_kind,
              "runs": runs, "chosen": chosen or {}, "chosen_run_id": chosen_run_id, "extra": extra or {},
              "figures": figures or []}
    path = section_path(section, profile=profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)  # of writers that are gone; a notebook writing beside us keeps its own
    atomic_write_text(path, json.dumps(record, indent=1, default=float))
    return path


def read_section(section: str, folder: Path | None = None, profile: str | None = None) -> dict:
    """A section's results (from `folder`, default the profile's results folder); a one-line error if it has
    not been run yet, does not parse, or is from another version."""
    path = section_path(section, folder, profile)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run notebook notebooks/{section}.ipynb first (or pass "
                                f"the value it would choose as a parameter)")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} does not parse ({e}); re-run notebook notebooks/{section}.ipynb") from None
    if not isinstance(record, dict) or record.get("results_version") != RESULTS_VERSION:
        found = record.get("results_version") if isinstance(record, dict) else None
        raise ValueError(f"{path} is from another version of the workbook (results_version {found}, expected "
                         f"{RESULTS_VERSION}); re-run notebook notebooks/{section}.ipynb")
    problem = _layout_problem(record, section)
    if problem:
        raise ValueError(f"{path} is malformed ({problem}); re-run notebook notebooks/{section}.ipynb")
    for run in record["runs"]:  # a diverged run's NaN loss as +inf: the worst loss in every min, sort and comparison
        for key in FINAL_LOSSES:
            if not math.isfinite(run[key]):
                run[key] = math.inf
        for field in ("curves", "seed_finals"):  # the per-epoch losses and each seed's final losses too
            for name, values in (run.get(field) or {}).items():
                if name.endswith("loss"):
                    run[field][name] = [value if math.isfinite(value) else math.inf for value in values]
    return record


RECORD_TYPES = {"section": str, "profile": str, "data_kind": str, "runs": list, "chosen": dict, "extra": dict,
                "figures": list}
RUN_TYPES = {"run_id": str, "label": str, "config": dict, "epochs": int}
FINAL_LOSSES = ("final_train_loss", "final_val_loss")


def _layout_problem(record: dict, section: str) -> str | None:
    """What is wrong with a results record's layout or values (docs/results.md), or None."""
    for key, kind in RECORD_TYPES.items():
        if not isinstance(record.get(key), kind):
            return f"its {key!r} is not a {kind.__name__}"
    if record["section"] != section:
        return f"it holds the results of {record['section']}"
    if record["data_kind"] not in ("cifar100", "synthetic", "modified"):
        return f"data_kind {record['data_kind']!r} is none of cifar100, synthetic, modified"
    for i, run in enumerate(record["runs"]):
        if not isinstance(run, dict):
            return f"run {i} is not an object"
        for key, kind in RUN_TYPES.items():
            if not isinstance(run.get(key), kind):
                return f"run {i}'s {key!r} is not a {kind.__name__}"
        for key in ("final_train_acc", "final_val_acc", "best_val_acc"):
            if not (isinstance(run.get(key), (int, float)) and 0 <= run[key] <= 1):
                return f"run {i}'s {key} is not an accuracy in [0, 1]"
        for key in FINAL_LOSSES:  # NaN or inf: a diverged run, a result like any other
            if not (isinstance(run.get(key), (int, float)) and not run[key] < 0):
                return f"run {i}'s {key} is not a loss >= 0 (or NaN: diverged)"
        problem = _seed_finals_problem(run)
        if problem:
            return f"run {i}'s {problem}"
    chosen = record.get("chosen_run_id")
    if chosen is not None and chosen not in {run["run_id"] for run in record["runs"]}:
        return f"its chosen_run_id {chosen!r} is none of its runs"
    return None


def _seed_finals_problem(run: dict) -> str | None:
    """What is wrong with a run's optional `seed_finals` (each final metric per seed: a list of n_seeds numbers),
    or None; files written before it existed have none and read as before."""
    finals = run.get("seed_finals")
    if finals is None:
        return None
    if not isinstance(finals, dict):
        return "seed_finals is not an object"
    for key, values in finals.items():
        if not (isinstance(values, list) and len(values) == run.get("n_seeds", 1)
                and all(isinstance(v, (int, float)) for v in values)):
            return f"seed_finals[{key!r}] is not a list of n_seeds numbers"
    return None


Metric = tuple[str, str, float, "str | None"]  # (column, key of the number, scale: 100 for a percentage, sd column)


def metric_cells(values, metrics: tuple[Metric, ...], several: bool, sds=None) -> dict:
    """The metric cells of one row of a results table, in the order of `metrics`: column -> scale * values[key];
    when `several` (means over seeds), each metric that names an sd column has it right after, scale * its standard
    deviation (read from `sds[key]` if `sds` is given, else from `values[key + "_std"]`; None where that is None).
    The one place the study's, sweep's and baselines' tables turn fractions into % and add their spread."""
    cells = {}
    for column, key, scale, sd_column in metrics:
        cells[column] = scale * values[key]
        if several and sd_column is not None:
            sd = sds[key] if sds is not None else values[f"{key}_std"]
            cells[sd_column] = None if sd is None else scale * sd
    return cells

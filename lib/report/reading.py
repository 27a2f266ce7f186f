"""Reading and checking the results files the paper is made from, and finding the runs it names.

What it is: `load_results` (every section's results file, checked to share one profile and data and to chain),
the run pickers (`runs`, `one`, `run_with_id`, `chosen`, `others`, `study_runs`, `curves`) and `runs_per_setting`.
Every problem is a one-line ReportError naming the notebook to run. What it is not: any formatting or writing;
it never re-decides a section's choice (lib.studies.sections.chosen_run does).
"""
from __future__ import annotations

from pathlib import Path

from ..core import paths
from ..studies.results import read_section
from ..studies.sections import SECTIONS, TRAINING, check_chain, chosen_run

DEFAULT_PROFILE = "full"  # as in the Makefile
# The sections whose rows each section's prose compares (07: the path of chosen runs, 03's two and 05's, which
# holds 04's chosen run as its run without mixup): the n its sentences say.
COMPARED = {"02_learning_rate": ("02_learning_rate",), "03_lr_schedule": ("03_lr_schedule",),
            "04_weight_decay": ("04_weight_decay",), "05_mixup": ("05_mixup",), "06_activation": ("06_activation",),
            "07_summary": ("03_lr_schedule", "05_mixup")}


class ReportError(RuntimeError):
    """Something the paper needs is missing or wrong; the message says what to run or fix (one line)."""


def load_results(results_dir=None, profile: str | None = None) -> dict[str, dict]:
    """Every section's results file (from `results_dir`, default the profile's results folder); a one-line
    ReportError naming the notebook to run if one is missing, or the notebooks to re-run if the sections come
    from different profiles or data (or not from `profile`), or do not chain (lib.studies.sections.check_chain)."""
    results, profile_name = {}, profile or DEFAULT_PROFILE
    folder = Path(results_dir) if results_dir is not None else paths.results_dir(profile_name)
    for section in SECTIONS:
        try:
            results[section] = read_section(section, results_dir, profile_name)
        except FileNotFoundError as error:
            if any(folder.glob("[0-9][0-9]_*.json")):
                raise ReportError(str(error)) from None
            raise ReportError(f"no results of profile {profile_name!r} in {folder} yet: make all "
                              f"PROFILE={profile_name} runs the study, then builds the paper (or run notebook "
                              f"notebooks/{section}.ipynb and the ones after it)") from None
        except ValueError as error:
            raise ReportError(str(error)) from None
    for field, wanted in (("profile", profile), ("data_kind", None)):
        values = {section: record[field] for section, record in results.items()}
        wanted = wanted or max(set(values.values()), key=list(values.values()).count)  # what most sections used
        others_ = sorted(section for section, value in values.items() if value != wanted)
        if others_:
            found = ", ".join(f"{s} ({values[s]})" for s in others_)
            raise ReportError(f"one paper takes one {field}: results of {found} are not from {field} {wanted!r}; "
                              f"re-run those notebooks with it (make all PROFILE=...), or build the paper with "
                              f"the {field} they share")
    try:
        check_chain(results)
    except ValueError as error:
        raise ReportError(str(error)) from None
    return results


def runs(record: dict) -> list[dict]:
    """A section's runs; a ReportError naming its notebook if a training section holds none."""
    if not record["runs"] and record["section"] not in ("01_data", "07_summary"):
        raise ReportError(f"results of {record['section']} hold no runs: re-run notebook "
                          f"notebooks/{record['section']}.ipynb")
    return record["runs"]


def one(found_in: list[dict], test, what: str, section: str) -> dict:
    """The first of `found_in` whose config passes `test`; a ReportError saying `what` is missing if none does."""
    found = [r for r in found_in if test(r["config"])]
    if not found:
        raise ReportError(f"results of {section} have no run with {what}: re-run notebook notebooks/{section}.ipynb")
    return found[0]


def run_with_id(record: dict, run_id: str | None, what: str) -> dict:
    """The run of a section's results with id `run_id`; a one-line ReportError naming the notebook if absent."""
    found = [r for r in record["runs"] if run_id is not None and r["run_id"] == run_id]
    if not found:
        section = record["section"]
        raise ReportError(f"results of {section} do not hold {what} (run_id {run_id!r}): re-run notebook "
                          f"notebooks/{section}.ipynb")
    return found[0]


def chosen(record: dict) -> dict:
    """The run a section hands on, by its `chosen_run_id` (lib.studies.sections.chosen_run): the report never re-decides
    a section's choice."""
    try:
        return chosen_run(record)
    except ValueError as error:
        raise ReportError(str(error)) from None


def others(record: dict, run: dict) -> list[dict]:
    """A section's runs other than `run` (by run id): the variants it compares with the run it starts from."""
    return [r for r in runs(record) if r["run_id"] != run["run_id"]]


def runs_per_setting(results: dict[str, dict], sections: tuple[str, ...] = TRAINING, most: bool = False) -> int:
    """How many runs each setting of `sections` has (n, a results row's `n_seeds`: its numbers are means over that
    many seeds). The smallest count, so a claim never says more seeds than its weakest side has (`most`: the
    largest, for the set-up's sentence when sections differ)."""
    counts = [run.get("n_seeds", 1) for section in sections if section in results for run in runs(results[section])]
    return (max if most else min)(counts, default=1)


def curves(run: dict, section: str) -> dict[str, list[float]]:
    """A run's per-epoch curves (train_loss, train_acc, val_loss, val_acc); a one-line ReportError naming the
    notebook if its results predate them."""
    found = run.get("curves") or {}
    if not all(found.get(key) for key in ("train_loss", "train_acc", "val_loss", "val_acc")):
        raise ReportError(f"results of {section} hold no per-epoch curves for run {run['label']!r}: re-run notebook "
                          f"notebooks/{section}.ipynb")
    return found


def _check_summary(results: dict[str, dict], final: dict) -> None:
    """07_summary must be of 05's chosen run and hold the same test score as 05 (else: re-run notebook 07)."""
    summary = results["07_summary"]
    final_model, tested = chosen(summary)["run_id"], summary["extra"].get("test_run_id")
    if final_model != final["run_id"] or tested != final["run_id"]:
        raise ReportError(f"results of 07_summary are of run {final_model!r} (tested: {tested!r}), not of 05_mixup's "
                          f"chosen run {final['run_id']!r}: re-run notebook notebooks/07_summary.ipynb")
    scores = [(x.get("test_acc"), x.get("test_acc_std"), x.get("n_seeds", 1))
              for x in (summary["extra"], results["05_mixup"]["extra"])]
    if scores[0] != scores[1]:  # 05 re-run (e.g. with more seeds) after 07: seed 0 keeps its run id
        raise ReportError(f"results of 07_summary hold another test score than 05_mixup's (test accuracy, its sd, "
                          f"seeds: {scores[0]} against {scores[1]}): re-run notebook notebooks/07_summary.ipynb")


def study_runs(results: dict[str, dict]) -> dict[str, dict]:
    """The runs the findings name, found by run id along the study's dependencies: 03 trains a constant and a
    cosine run at 02's chosen rate; 04 always starts from the cosine run (03's finding is reported but feeds
    nothing); 05's run without mixup is 04's chosen run and 06's ReLU run is 05's chosen run, each with the same
    run_id; 07's final model, the one the test accuracy is of, is 05's chosen run."""
    schedule = runs(results["03_lr_schedule"])
    weight_decay = chosen(results["04_weight_decay"])
    final = chosen(results["05_mixup"])
    _check_summary(results, final)
    return {
        "lr": chosen(results["02_learning_rate"]),
        "schedule": chosen(results["03_lr_schedule"]),
        "constant": one(schedule, lambda c: c["schedule"] == "constant", "schedule 'constant'", "03_lr_schedule"),
        "cosine": one(schedule, lambda c: c["schedule"] == "cosine", "schedule 'cosine'", "03_lr_schedule"),
        "weight_decay": weight_decay,
        "no_mixup": run_with_id(results["05_mixup"], weight_decay["run_id"],
                                "04_weight_decay's chosen run as its run without mixup"),
        "final": final,
        "relu": run_with_id(results["06_activation"], final["run_id"], "05_mixup's chosen run as its ReLU run"),
    }

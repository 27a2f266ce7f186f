"""Reading and checking the results files the paper is made from, and finding the runs it names.

What it is: `load_results` (the results file of every section of the session's brief, lib.studies.sections.brief,
and of the extras run beside it, checked to share one profile and data, to chain and to test the final model), the
run pickers (`runs`, `one`, `run_with_id`, `chosen`, `others`, `start_run`, `find_run`, `final_run`, `curves`) and
`runs_per_setting`. Every problem is a one-line ReportError naming the notebook to run. It names no section: what
a section starts from, which section's choice is the final model and which step looks at the test set come from
the brief. What it is not: any formatting or writing; it never re-decides a section's choice
(lib.studies.sections.chosen_run does).
"""
from __future__ import annotations

from pathlib import Path

from ..core import paths
from ..studies.results import read_section, section_path
from ..studies.sections import EXTRAS, brief, check_chain, chosen_run, get, settings_of

DEFAULT_PROFILE = "full"  # as in the Makefile


class ReportError(RuntimeError):
    """Something the paper needs is missing or wrong; the message says what to run or fix (one line)."""


def load_results(results_dir=None, profile: str | None = None, extras: tuple[str, ...] = EXTRAS) -> dict[str, dict]:
    """The results file of every section of the brief, in its order, then of each of `extras` (default: every
    extra, lib.studies.sections.EXTRAS) whose file exists (from `results_dir`, default the profile's results
    folder); a one-line ReportError naming the notebook to run if one of the brief's is missing, or the notebooks
    to re-run if the brief's sections come from different profiles or data (or not from `profile`), do not chain
    (lib.studies.sections.check_chain) or do not test the final model (`check_final`). An extra's own module
    checks it against the study."""
    results, profile_name = {}, profile or DEFAULT_PROFILE
    folder = Path(results_dir) if results_dir is not None else paths.results_dir(profile_name)
    names = brief().names
    for section in names:
        try:
            results[section] = read_section(section, results_dir, profile_name)
        except FileNotFoundError as error:
            if any(folder.glob("*.json")):
                raise ReportError(str(error)) from None
            raise ReportError(f"no results of profile {profile_name!r} in {folder} yet: make all "
                              f"PROFILE={profile_name} runs the study, then builds the paper (or run notebook "
                              f"notebooks/{section}.ipynb and the ones after it)") from None
        except ValueError as error:
            raise ReportError(str(error)) from None
    _check_shared(results, profile)
    try:
        check_chain(results)
    except ValueError as error:
        raise ReportError(str(error)) from None
    check_final(results)
    for extra in extras:
        if section_path(extra, results_dir, profile_name).exists():
            try:
                results[extra] = read_section(extra, results_dir, profile_name)
            except ValueError as error:
                raise ReportError(str(error)) from None
    return results


def _check_shared(results: dict[str, dict], profile: str | None) -> None:
    """One paper takes one profile (`profile`, if given) and one kind of data: else a ReportError naming the
    sections to re-run."""
    for field, wanted in (("profile", profile), ("data_kind", None)):
        values = {section: record[field] for section, record in results.items()}
        wanted = wanted or max(set(values.values()), key=list(values.values()).count)  # what most sections used
        others_ = sorted(section for section, value in values.items() if value != wanted)
        if others_:
            found = ", ".join(f"{s} ({values[s]})" for s in others_)
            raise ReportError(f"one paper takes one {field}: results of {found} are not from {field} {wanted!r}; "
                              f"re-run those notebooks with it (make all PROFILE=...), or build the paper with "
                              f"the {field} they share")


def runs(record: dict) -> list[dict]:
    """A section's runs; a ReportError naming its notebook if a training section holds none."""
    section = record["section"]
    if not record["runs"] and section in brief().names and get(section).trains:
        raise ReportError(f"results of {section} hold no runs: re-run notebook notebooks/{section}.ipynb")
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
    """The run a section hands on, by its `chosen_run_id` (lib.studies.sections.chosen_run): the report never
    re-decides a section's choice."""
    try:
        return chosen_run(record)
    except ValueError as error:
        raise ReportError(str(error)) from None


def others(record: dict, run: dict) -> list[dict]:
    """A section's runs other than `run` (by run id): the variants it compares with the run it starts from."""
    return [r for r in runs(record) if r["run_id"] != run["run_id"]]


def start_run(results: dict[str, dict], section: str) -> dict:
    """The run `section` starts from, as its own results hold it: the chosen run of the section it starts from
    (the brief's `starts_from`), the same run by run id (a section that fixes nothing runs it again as its run
    with the value it started from). A ReportError naming the notebook if its results do not hold it."""
    source = get(section).starts_from
    handed_on = chosen(results[source])
    return run_with_id(results[section], handed_on["run_id"], f"{source}'s chosen run as the run it starts from")


def find_run(results: dict[str, dict], settings: dict, epochs: int, first: str | None = None) -> dict | None:
    """The run with these settings (lib.studies.sections.settings_of) and epochs among the brief's results,
    looked for in section `first`'s results first, then in the brief's order; None if no section trained it."""
    order = [first] if first in results else []
    order += [name for name in brief().names if name in results and name != first]
    for name in order:
        for run in results[name]["runs"]:
            if run["epochs"] == epochs and settings_of(run["config"]) == settings:
                return run
    return None


def final_run(results: dict[str, dict]) -> dict:
    """The final model: the chosen run of the brief's `final` section."""
    return chosen(results[brief().final])


def handed_on_to(section: str) -> list[str]:
    """The brief's sections that start from `section`'s chosen run, in its order."""
    return [spec.name for spec in brief().sections if spec.starts_from == section]


def runs_per_setting(results: dict[str, dict], sections: tuple[str, ...] | None = None, most: bool = False) -> int:
    """How many runs each setting of `sections` (default: the brief's training sections) has (n, a results
    row's `n_seeds`: its numbers are means over that many seeds). The smallest count, so a claim never says more
    seeds than its weakest side has (`most`: the largest, for the set-up's sentence when sections differ)."""
    sections = brief().training if sections is None else sections
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


def tested_score(record: dict) -> tuple:
    """What a results file says of the test set: (test accuracy, its sd over seeds, seeds)."""
    extra = record["extra"]
    return extra.get("test_acc"), extra.get("test_acc_std"), extra.get("n_seeds", 1)


def check_final(results: dict[str, dict]) -> None:
    """The test step (the brief's `test_step`) must be of the final model (the chosen run of the brief's `final`
    section) and hold its test accuracy; a later section that trains nothing and keeps a test score (the study's
    summary) must be of the same model with the same score (else: re-run its notebook, one line)."""
    spec, final = brief(), final_run(results)
    step = spec.test_step
    if results[step]["extra"].get("test_acc") is None:
        raise ReportError(f"results of {step} have no test_acc: re-run notebook notebooks/{step}.ipynb")
    later = spec.names[spec.names.index(step) + 1:]
    keeping = [name for name in later if not get(name).trains and "test_run_id" in results[name]["extra"]]
    for name in (step, *keeping):
        record = results[name]
        model, tested = record.get("chosen_run_id"), record["extra"].get("test_run_id")
        if model != final["run_id"] or tested != final["run_id"]:
            raise ReportError(f"results of {name} are of run {model!r} (tested: {tested!r}), not of {spec.final}'s "
                              f"chosen run {final['run_id']!r}: re-run notebook notebooks/{name}.ipynb")
        if tested_score(record) != tested_score(results[step]):  # the test step re-run (more seeds) after this one
            raise ReportError(f"results of {name} hold another test score than {step}'s (test accuracy, its sd, "
                              f"seeds: {tested_score(record)} against {tested_score(results[step])}): re-run notebook "
                              f"notebooks/{name}.ipynb")

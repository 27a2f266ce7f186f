"""The path of chosen runs, from the brief: the runs the final model was reached through, one change a row.

What it is: `chosen_path(results)` walks the final section's chain (lib.studies.sections.ancestors of the brief's
`final`, then `final`); for each long-epoch section on it, it adds the run the section starts from without the
settings it fixes, then with them, then its chosen run, each when some section trained it (found by its settings
and epochs), each run once (a run met again keeps its place and takes the later section's row, the one compared
with the next step). Each row's change is its settings' difference from the row above. `variants(results)` are the
runs of sections after the test step that start from the final choice: compared with the final model, not steps
of the path. For the mixup brief this is constant rate -> + cosine -> + weight decay -> + mixup.
What it is not: the table's cells (lib.report.tables.path_table) or any wording beyond a row's setting.
"""
from __future__ import annotations

from ..studies.sections import HANDED_ON, ancestors, brief, get, settings_of
from .formatting import setting_off, setting_phrase
from .reading import chosen, find_run, runs, start_run


def _fields_first(fields) -> list[str]:
    """Run settings in the order a row names them: the schedule first (an adjective: 'constant $\\eta=0.05$'),
    then as RunConfig lists them."""
    return sorted((name for name in fields if name in HANDED_ON),
                  key=lambda name: (name != "schedule", HANDED_ON.index(name)))


def decided_fields() -> set[str]:
    """The settings the final section's chain compares or fixes: what the path's rows are told apart by."""
    chain = [*ancestors(brief().final), brief().final]
    return {get(name).compares for name in chain} | {field for name in chain for field, _ in get(name).fixed}


def first_setting(run: dict) -> str:
    """The first row's setting: its values of the settings the chain decides, those of regularisers that are off
    left out ('constant $\\eta=0.05$')."""
    settings = settings_of(run["config"])
    phrases = [setting_phrase(field, settings[field], adjective=True) for field in _fields_first(decided_fields())]
    return " ".join(phrase for phrase in phrases if phrase)


def change(run: dict, before: dict) -> str:
    """A row's setting: what changed from the row above ('+ cosine schedule', '+ mixup $\\alpha=0.2$')."""
    now, then = settings_of(run["config"]), settings_of(before["config"])
    changed = _fields_first(field for field in HANDED_ON if now[field] != then[field])
    return "+ " + ", ".join(setting_phrase(field, now[field]) or setting_off(field) for field in changed)


def _add(rows: list[dict], run: dict | None) -> None:
    if run is None:
        return
    for row in rows:
        if row["run"]["run_id"] == run["run_id"]:
            row["run"] = run  # the later section's row of it: the one compared with the next step
            return
    rows.append({"run": run})


def chosen_path(results: dict[str, dict]) -> list[dict]:
    """The path's rows, {"run", "setting"}, from the first long section's start to the final model."""
    rows: list[dict] = []
    for name in [*reversed(ancestors(brief().final)), brief().final]:
        spec = get(name)
        if spec.epochs != "long":
            continue
        epochs = runs(results[name])[0]["epochs"]
        if spec.starts_from is not None:
            start = settings_of(chosen(results[spec.starts_from])["config"])
            _add(rows, find_run(results, start, epochs, name))
            if spec.fixed:
                _add(rows, find_run(results, {**start, **dict(spec.fixed)}, epochs, name))
        _add(rows, chosen(results[name]))
    for i, row in enumerate(rows):
        row["setting"] = first_setting(row["run"]) if i == 0 else change(row["run"], rows[i - 1]["run"])
    return rows


def variants(results: dict[str, dict]) -> list[dict]:
    """The runs of sections after the test step that start from the final choice, other than the final model,
    as rows {"run", "setting", "section"}: 'Sigmoid in blocks 4--10' (the table sets them after a rule)."""
    spec = brief()
    later = spec.names[spec.names.index(spec.test_step) + 1:]
    rows = []
    for name in later:
        if get(name).starts_from != spec.final:
            continue
        start = start_run(results, name)
        rows += [{"run": run, "section": name, "setting": change(run, start)[2:]}
                 for run in runs(results[name]) if run["run_id"] != start["run_id"]]
    return rows

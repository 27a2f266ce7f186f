"""The paper's weight-decay section: the coefficients compared from the run it starts from (with the settings the
brief fixes for it: the cosine schedule), the generalisation gaps, and the chosen one's gain over no decay."""
from __future__ import annotations

from ...studies.sections import brief, get, settings_of
from ..curves import lead_phases
from ..findings import choice_tie, compare, difference, effect, gap, gap_word, standing
from ..formatting import Facts, number_word, sci, setting_words, shown, wd
from ..reading import ReportError, chosen, curves, find_run, handed_on_to, runs_per_setting
from ..reading import runs as section_runs
from ..tables import note, public, run_table


def without_decay(results: dict[str, dict], name: str) -> dict:
    """The run without weight decay that this section's runs add it to: the run it starts from with the settings
    the brief fixes for it, as the section that trained it holds it; a ReportError naming the notebook if none
    did."""
    spec, runs = get(name), section_runs(results[name])
    start = {**settings_of(chosen(results[spec.starts_from])["config"]), **dict(spec.fixed)}
    found = find_run(results, start, runs[0]["epochs"], name)
    if found is None:
        raise ReportError(f"no results hold the run {name} adds weight decay to ({spec.starts_from}'s choice with "
                          f"{dict(spec.fixed)}, {runs[0]['epochs']} epochs): run the notebooks before notebook "
                          f"notebooks/{name}.ipynb")
    return found


def facts(results: dict[str, dict], name: str) -> Facts:
    """The section's macros, table and prose values; a ReportError if it compares fewer than two coefficients."""
    rec = results[name]
    runs = sorted(section_runs(rec), key=lambda r: -r["config"]["weight_decay"])
    if len(runs) < 2:
        raise ReportError(f"results of {name} hold {len(runs)} weight decay; the paper compares at least two "
                          f"(the brief: 5e-4 and 1e-4): re-run notebook notebooks/{name}.ipynb with them")
    chosen_, no_decay, n = chosen(rec), without_decay(results, name), runs_per_setting(results, (name,))
    top = standing(section_runs(rec), "final_val_acc", lowest=False)["best"]  # as listed: a tie to the first
    others = [r for r in runs if r is not top]
    facts = Facts()
    m = facts.macros
    m["WdValues"] = ", ".join(sci(r["config"]["weight_decay"]) for r in runs)  # math mode
    m["WdChosen"] = f"\\ensuremath{{{sci(chosen_['config']['weight_decay'])}}}"
    m["WdSchedule"] = chosen_["config"]["schedule"]
    m.runs("Wd", chosen_)
    for prefix, r in zip(("WdLarge", "WdSmall"), (runs[0], runs[-1]), strict=True):
        m.runs(prefix, r)
        m[f"{prefix}Value"] = f"\\ensuremath{{{sci(r['config']['weight_decay'])}}}"
    ranges = public(rec, runs)
    facts.tables[name] = run_table(
        [(wd(r["config"]["weight_decay"]), r, r["run_id"] == chosen_["run_id"]) for r in runs], ranges)
    other = others[0]  # the sentence compares the best run with the first of the others
    phases = lead_phases(curves(runs[0], name), curves(runs[-1], name))  # the largest decay against the smallest
    facts.values = {
        "best": shown(top), "others": [shown(r) for r in others], "other": shown(other), "n": n,
        "spread": difference(top, other),
        "best_tie": choice_tie(rec, lambda r: f"$\\lambda={sci(r['config']['weight_decay'])}$"),
        "best_vs_other": compare(top, other),
        "gap_word": gap_word(top, other),
        "best_gap": f"{gap(top):.1f}", "other_gap": f"{gap(other):.1f}",
        "chosen": shown(chosen_), "no_decay": shown(no_decay),
        "chosen_gain": effect(chosen_, no_decay)["signed"],
        "effect": effect(chosen_, no_decay),
        "phases": phases,
        "trailed_then_led": phases["kind"] in ("overtook", "changed") and phases["leader"] == "a"
        and phases["first"] == "b",  # the larger decay trailed, then led: what its higher effective rate predicts
        "final": name == brief().final, "handed_to": [setting_words(get(s).compares, adjective=True)
                                                      for s in handed_on_to(name)],
        "large": shown(runs[0]), "small": shown(runs[-1]), "n_coefficients": number_word(len(runs)),
        "public": note(runs, ranges)}
    return facts

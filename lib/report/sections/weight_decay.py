"""The paper's weight-decay section (04): the coefficients compared from the cosine run, the generalisation
gaps, and the chosen one's gain over no decay."""
from __future__ import annotations

from ..curves import lead_phases
from ..findings import best, compare, difference, gap, gap_word
from ..formatting import Facts, pct, points, sci, shown, wd
from ..reading import ReportError, curves
from ..reading import runs as section_runs
from ..tables import note, public, run_table


def weight_decay(rec: dict, study: dict[str, dict], n: int) -> Facts:
    """04's macros, table and prose values; a ReportError if it compares fewer than two coefficients."""
    runs = sorted(section_runs(rec), key=lambda r: -r["config"]["weight_decay"])
    if len(runs) < 2:
        raise ReportError(f"results of {rec['section']} hold {len(runs)} weight decay; the paper compares at least two "
                          f"(the brief: 5e-4 and 1e-4): re-run notebook notebooks/{rec['section']}.ipynb with them")
    chosen, no_decay = study["weight_decay"], study["cosine"]
    top = best(runs, "final_val_acc", lowest=False)
    others = [r for r in runs if r is not top]
    facts = Facts()
    m = facts.macros
    m["WdValues"] = ", ".join(sci(r["config"]["weight_decay"]) for r in runs)  # math mode
    m["WdChosen"] = f"\\ensuremath{{{sci(chosen['config']['weight_decay'])}}}"
    m["WdSchedule"] = chosen["config"]["schedule"]
    m.runs("Wd", chosen)
    for name, r in zip(("WdLarge", "WdSmall"), (runs[0], runs[-1]), strict=True):
        m.runs(name, r)
        m[f"{name}Value"] = f"\\ensuremath{{{sci(r['config']['weight_decay'])}}}"
    ranges = public(rec, runs)
    facts.tables["04_weight_decay"] = run_table(
        [(wd(r["config"]["weight_decay"]), r, r["run_id"] == chosen["run_id"]) for r in runs], ranges)
    other = others[0]  # the sentence compares the best run with the first of the others
    facts.values = {
        "best": shown(top), "others": [shown(r) for r in others], "other": shown(other), "n": n,
        "spread": difference(top, other),
        "same_val_acc": pct(top["final_val_acc"]) == pct(other["final_val_acc"]),
        "best_vs_other": compare(top, other),
        "gap_word": gap_word(top, other),
        "best_gap": f"{gap(top):.1f}", "other_gap": f"{gap(other):.1f}",
        "chosen": shown(chosen), "no_decay": shown(no_decay),
        "chosen_gain": points(chosen["final_val_acc"], no_decay["final_val_acc"]),
        "phases": lead_phases(curves(runs[0], rec["section"]), curves(runs[-1], rec["section"])),
        "large": shown(runs[0]), "small": shown(runs[-1]),
        "public": note(runs, ranges)}
    return facts

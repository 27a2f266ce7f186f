"""The paper's learning-rate-schedule section: the run it starts from (the chosen rate, constant) against cosine
annealing, what their curves did, and which later section takes the schedule on."""
from __future__ import annotations

from ...studies.sections import brief
from ..curves import fitted, late_gain, val_loss_trend
from ..findings import choice_tie, compare, difference, effect
from ..formatting import Facts, setting_words, shown
from ..reading import chosen, curves, handed_on_to, one, runs, runs_per_setting
from ..tables import note, public, run_table


def taken_on_by(name: str) -> dict | None:
    """How the schedule reaches later sections: None when one starts from this section's choice; else the first
    section that fixes a schedule, in words ({"fixes": what it varies, "schedule": the schedule it fixes}), or
    {"fixes": None} when none does."""
    if handed_on_to(name):
        return None
    for spec in brief().sections:
        if "schedule" in dict(spec.fixed):
            return {"fixes": setting_words(spec.compares), "schedule": dict(spec.fixed)["schedule"]}
    return {"fixes": None, "schedule": None}


def facts(results: dict[str, dict], name: str) -> Facts:
    """The section's macros, table and prose values: its constant and its cosine run, the one it chose."""
    rec = results[name]
    const = one(runs(rec), lambda c: c["schedule"] == "constant", "schedule 'constant'", name)
    cos = one(runs(rec), lambda c: c["schedule"] == "cosine", "schedule 'cosine'", name)
    choice, n = chosen(rec), runs_per_setting(results, (name,))
    facts = Facts()
    m = facts.macros
    m["ChosenSchedule"] = choice["config"]["schedule"]
    m.runs("Const", const)
    m.runs("Cos", cos)
    ranges = public(rec, [const, cos])
    facts.tables[name] = run_table(
        [(r["config"]["schedule"], r, r["run_id"] == choice["run_id"]) for r in (const, cos)], ranges)
    const_curves, cos_curves = curves(const, name), curves(cos, name)
    facts.values = {"const": shown(const), "cos": shown(cos), "cos_vs_const": compare(cos, const), "n": n,
                    "spread": difference(cos, const),
                    "val_acc_gain": effect(cos, const)["signed"],
                    "effect": effect(cos, const),
                    "chose_cosine": choice["run_id"] == cos["run_id"], "taken_on": taken_on_by(name),
                    "trend": {"const": val_loss_trend(const_curves), "cos": val_loss_trend(cos_curves)},
                    "late": late_gain(cos_curves, const_curves), "fitted": fitted(const, cos),
                    "public": note([const, cos], ranges),
                    "choice_tie": choice_tie(rec, lambda r: f"the {r['config']['schedule']} schedule"),
                    "chosen": choice["config"]["schedule"]}
    return facts

"""The paper's learning-rate-schedule section (03): the constant against the cosine run at 02's chosen rate,
with what their curves did."""
from __future__ import annotations

from ..curves import fitted, late_gain, val_loss_trend
from ..findings import compare, difference
from ..formatting import Facts, points, shown
from ..reading import curves
from ..tables import note, public, run_table


def schedule(rec: dict, study: dict[str, dict], n: int) -> Facts:
    """03's macros, table and prose values; `study` holds the runs the findings name (reading.study_runs)."""
    const, cos, chosen = study["constant"], study["cosine"], study["schedule"]
    facts = Facts()
    m = facts.macros
    m["LongEpochs"] = str(cos["epochs"])
    m["ChosenSchedule"] = chosen["config"]["schedule"]
    m.runs("Const", const)
    m.runs("Cos", cos)
    ranges = public(rec, [const, cos])
    facts.tables["03_lr_schedule"] = run_table(
        [(r["config"]["schedule"], r, r["run_id"] == chosen["run_id"]) for r in (const, cos)], ranges)
    const_curves, cos_curves = curves(const, rec["section"]), curves(cos, rec["section"])
    facts.values = {"const": shown(const), "cos": shown(cos), "cos_vs_const": compare(cos, const), "n": n,
                    "spread": difference(cos, const),
                    "val_acc_gain": points(cos["final_val_acc"], const["final_val_acc"]),
                    "chose_cosine": chosen["run_id"] == cos["run_id"],
                    "trend": {"const": val_loss_trend(const_curves), "cos": val_loss_trend(cos_curves)},
                    "late": late_gain(cos_curves, const_curves), "fitted": fitted(const, cos),
                    "public": note([const, cos], ranges)}
    return facts

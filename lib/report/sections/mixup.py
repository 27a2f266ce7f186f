"""The paper's mixup section (05): mixup against 04's chosen run without it (the final model's test score is
the summary section's)."""
from __future__ import annotations

from ..findings import compare, difference, gap, gap_word
from ..formatting import Facts, plain, points, shown
from ..reading import curves, one, others
from ..tables import note, public, run_table


def mixup(rec: dict, study: dict[str, dict], n: int) -> Facts:
    """05's macros, table and prose values; `study` holds the runs the findings name (reading.study_runs)."""
    base, chosen = study["no_mixup"], study["final"]
    mixed = others(rec, base)
    kept = chosen["run_id"] != base["run_id"]
    mix = chosen if kept else one(mixed, lambda c: c["mixup_alpha"] > 0, "mixup_alpha > 0", rec["section"])
    facts = Facts()
    m = facts.macros
    m["MixupAlpha"] = plain(mix["config"]["mixup_alpha"])
    m.runs("Mix", mix)
    m.runs("NoMix", base)
    runs = [base, *mixed]
    ranges = public(rec, runs)
    facts.tables["05_mixup"] = run_table(
        [("no mixup", base, not kept)]
        + [(f"mixup $\\alpha={plain(r['config']['mixup_alpha'])}$", r, r["run_id"] == chosen["run_id"])
           for r in mixed], ranges)
    mix_loss = curves(mix, rec["section"])["train_loss"]
    base_loss = curves(base, rec["section"])["train_loss"]
    facts.values = {
        "mix": shown(mix), "base": shown(base), "mix_vs_base": compare(mix, base), "n": n,
        "spread": difference(mix, base),
        "val_acc_gain": points(mix["final_val_acc"], base["final_val_acc"]),
        "train_loss_above": {"epochs": sum(a > b for a, b in zip(mix_loss, base_loss, strict=False)),
                             "of": min(len(mix_loss), len(base_loss))},
        "mix_gap": f"{gap(mix):.1f}", "base_gap": f"{gap(base):.1f}",
        "gap_word": gap_word(mix, base),
        "kept": kept, "chosen": shown(chosen),
        "public": note(runs, ranges)}
    return facts

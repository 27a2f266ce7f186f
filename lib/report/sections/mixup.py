"""The paper's mixup section: mixup against the run it starts from, without mixup (the chosen run of the section
it starts from, by run id), and whether the final recipe keeps it."""
from __future__ import annotations

from ...studies.sections import brief
from ..findings import choice_tie, compare, difference, effect, gap, gap_word
from ..formatting import Facts, plain, shown
from ..reading import chosen, curves, one, others, runs_per_setting, start_run
from ..tables import note, public, run_table


def facts(results: dict[str, dict], name: str) -> Facts:
    """The section's macros, table and prose values: its run without mixup is the run it starts from."""
    rec = results[name]
    base, choice, n = start_run(results, name), chosen(rec), runs_per_setting(results, (name,))
    mixed = others(rec, base)
    kept = choice["run_id"] != base["run_id"]
    mix = choice if kept else one(mixed, lambda c: c["mixup_alpha"] > 0, "mixup_alpha > 0", name)
    facts = Facts()
    m = facts.macros
    m["MixupAlpha"] = plain(mix["config"]["mixup_alpha"])
    m.runs("Mix", mix)
    m.runs("NoMix", base)
    runs = [base, *mixed]
    ranges = public(rec, runs)
    facts.tables[name] = run_table(
        [("no mixup", base, not kept)]
        + [(f"$\\alpha={plain(r['config']['mixup_alpha'])}$", r, r["run_id"] == choice["run_id"])
           for r in mixed], ranges)
    mix_loss = curves(mix, name)["train_loss"]
    base_loss = curves(base, name)["train_loss"]
    facts.values = {
        "mix": shown(mix), "base": shown(base), "mix_vs_base": compare(mix, base), "n": n,
        "spread": difference(mix, base),
        "val_acc_gain": effect(mix, base)["signed"], "effect": effect(mix, base),
        "train_loss_above": {"epochs": sum(a > b for a, b in zip(mix_loss, base_loss, strict=False)),
                             "of": min(len(mix_loss), len(base_loss))},
        "mix_gap": f"{gap(mix):.1f}", "base_gap": f"{gap(base):.1f}",
        "gap_word": gap_word(mix, base),
        "kept": kept, "chosen": shown(choice), "final": name == brief().final,
        "choice_tie": choice_tie(rec, lambda r: f"mixup $\\alpha={plain(r['config']['mixup_alpha'])}$"
                                 if r["config"]["mixup_alpha"] else "no mixup"),
        "public": note(runs, ranges)}
    return facts

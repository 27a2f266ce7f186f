"""The paper's learning-rate section: which rate wins each of the brief's four criteria, the two rankings, the
chosen rate, its macros and table."""
from __future__ import annotations

from ...studies.sections import get
from ..findings import best, difference, order
from ..formatting import Facts, eta, plain, printed, shown
from ..reading import chosen as chosen_run
from ..reading import runs as section_runs
from ..reading import runs_per_setting
from ..tables import note, public, run_table

CRITERIA = (("final_train_loss", True), ("final_train_acc", False), ("final_val_loss", True),
            ("final_val_acc", False))  # the brief's four criteria: (final number, lower wins)


def criterion_winners(runs: list[dict]) -> list[dict]:
    """Which rate wins each criterion, grouped by rate ({lrs, criteria, tie: False}); rates that end exactly level
    on a criterion, as printed, tie for it (one entry each, {lrs, criteria: [it], tie: True}, after the winners)."""
    winners: dict[str, dict] = {}  # run_id -> {"lrs": [rate], "criteria": [the criteria it alone wins]}
    ties = []
    for key, lowest in CRITERIA:
        top = best(runs, key, lowest)
        level = [r for r in runs if printed(r, key) == printed(top, key)]  # level as printed: a tie
        if len(level) > 1:
            ties.append({"lrs": [plain(r["config"]["lr"]) for r in level], "criteria": [key], "tie": True})
        else:
            winners.setdefault(top["run_id"], {"lrs": [plain(top["config"]["lr"])], "criteria": [], "tie": False})
            winners[top["run_id"]]["criteria"].append(key)
    return [*winners.values(), *ties]


def facts(results: dict[str, dict], name: str) -> Facts:
    """The section's macros, table and prose values: its chosen run by its chosen_run_id, n its runs per setting."""
    rec = results[name]
    chosen, n = chosen_run(rec), runs_per_setting(results, (name,))
    facts = Facts()
    m = facts.macros
    runs = sorted(section_runs(rec), key=lambda r: -r["config"]["lr"])
    best_train = best(runs, "final_train_loss", lowest=True)
    best_val = best(runs, "final_val_acc", lowest=False)
    m["LrEpochs"] = str(runs[0]["epochs"])
    m["LrValues"] = ", ".join(plain(r["config"]["lr"]) for r in runs)  # math mode
    m["BestLr"], m["BestLrByValAcc"] = plain(chosen["config"]["lr"]), plain(best_val["config"]["lr"])
    m.runs("BestLr", chosen)
    winners = criterion_winners(runs)
    ranges = public(rec, runs)
    facts.tables[name] = run_table(
        [(eta(r["config"]["lr"]), r, r["run_id"] == chosen["run_id"]) for r in runs], ranges)
    choose_by = rec["extra"].get("chosen_by") or get(name).choose_by[0]  # what the notebook chose by
    key = f"final_{choose_by}"
    by_choice = sorted(runs, key=lambda r: r[key] if "loss" in key else -r[key])  # unrounded, as the choice was
    by_train = sorted(runs, key=lambda r: printed(r, "final_train_loss"))
    by_val = sorted(runs, key=lambda r: -printed(r, "final_val_acc"))
    # The orders differ where one rate trains better and another validates better (as printed; ties order nothing).
    differ = any(printed(a, "final_train_loss") < printed(b, "final_train_loss")
                 and printed(a, "final_val_acc") < printed(b, "final_val_acc") for a in runs for b in runs)
    tops_differ = printed(best_val, "final_train_loss") != printed(best_train, "final_train_loss") and \
        printed(best_train, "final_val_acc") != printed(best_val, "final_val_acc")
    facts.values = {
        "criterion_winners": winners, "n": n,
        "by_train_loss": order(by_train, "final_train_loss", "$<$"),
        "by_val_acc": order(by_val, "final_val_acc", "$>$"),
        # the first two rates by the criterion the section chose by, compared on it
        "order_judged": difference(by_choice[0], by_choice[1], key) if len(by_choice) > 1 else None,
        "judged_rates": [plain(r["config"]["lr"]) for r in by_choice[:2]],
        "rankings_differ": differ, "tops_differ": differ and tops_differ,
        "larger_validates_better": best_val["config"]["lr"] > best_train["config"]["lr"],
        "chosen": shown(chosen), "best_train": shown(best_train), "best_val": shown(best_val),
        "chosen_trains_best": chosen["final_train_loss"] == best_train["final_train_loss"],
        "chosen_validates_best": chosen["final_val_acc"] == best_val["final_val_acc"],
        "choose_by": choose_by,
        "public": note(runs, ranges)}
    return facts

"""The paper's learning-rate section: which rate is first by each of the brief's four criteria (a tie at the printed
precision said as the notebooks say it, with what decided), the two rankings, the chosen rate, its Welch comparison
on the criterion it was chosen by, its macros and table."""
from __future__ import annotations

from ...studies.sections import get
from ..findings import difference, order, standing, tie
from ..formatting import Facts, eta, plain, printed, shown
from ..reading import chosen as chosen_run
from ..reading import runs as section_runs
from ..reading import runs_per_setting
from ..tables import note, public, run_table

CRITERIA = (("final_train_loss", True), ("final_train_acc", False), ("final_val_loss", True),
            ("final_val_acc", False))  # the brief's four criteria: (final number, lower wins)


def rate(run: dict) -> str:
    return f"$\\eta={plain(run['config']['lr'])}$"


def criterion_winners(runs: list[dict]) -> list[dict]:
    """Which rate is first by each criterion (findings.standing on the runs as the notebook listed them), grouped by
    rate ({lrs, criteria, tie: None}) where it is first clear of the others at the printed precision; a criterion
    whose first place is a tie at that precision has its own entry after them ({lrs: [the first], criteria: [it],
    tie: {"with": the other rates, "rule": what decided, in the notebooks' words}})."""
    winners: dict[str, dict] = {}  # run_id -> {"lrs": [rate], "criteria": [the criteria it alone wins]}
    ties = []
    for key, lowest in CRITERIA:
        found = standing(runs, key, lowest)
        top = found["best"]
        if found["tied"]:
            ties.append({"lrs": [plain(top["config"]["lr"])], "criteria": [key], "tie": tie(found, rate)})
        else:
            winners.setdefault(top["run_id"], {"lrs": [plain(top["config"]["lr"])], "criteria": [], "tie": None})
            winners[top["run_id"]]["criteria"].append(key)
    return [*winners.values(), *ties]


def orders_differ(runs: list[dict]) -> dict:
    """Whether the orders by final training loss and by final validation accuracy differ, as printed (ties order
    nothing): `rankings_differ` (some rate trains better and validates worse than another), `tops_differ` (no rate
    that is first by training loss, ties at the printed precision included, is first by validation accuracy) and
    `top_tied` (they share a first place that is a tie: whether they agree cannot be said)."""
    differ = any(printed(a, "final_train_loss") < printed(b, "final_train_loss")
                 and printed(a, "final_val_acc") < printed(b, "final_val_acc") for a in runs for b in runs)
    train, val = standing(runs, "final_train_loss", True), standing(runs, "final_val_acc", False)
    firsts = [{r["run_id"] for r in (found["best"], *found["tied"])} for found in (train, val)]
    return {"rankings_differ": differ, "tops_differ": not firsts[0] & firsts[1],
            "top_tied": bool(firsts[0] & firsts[1]) and len(firsts[0] | firsts[1]) > 1,
            "larger_validates_better": val["best"]["config"]["lr"] > train["best"]["config"]["lr"]}


def facts(results: dict[str, dict], name: str) -> Facts:
    """The section's macros, table and prose values: its chosen run by its chosen_run_id, n its runs per setting."""
    rec = results[name]
    chosen, n = chosen_run(rec), runs_per_setting(results, (name,))
    facts = Facts()
    m = facts.macros
    listed = section_runs(rec)  # as the notebook listed them: ties go to the first
    runs = sorted(listed, key=lambda r: -r["config"]["lr"])
    choose_by = rec["extra"].get("chosen_by") or get(name).choose_by[0]  # what the notebook chose by
    key = f"final_{choose_by}"
    by_choice = sorted(listed, key=lambda r: r[key] if "loss" in key else -r[key])  # unrounded, as the choice was
    firsts = {metric: standing(listed, metric, "loss" in metric) for metric in ("final_train_loss", "final_val_acc")}
    m["LrEpochs"] = str(runs[0]["epochs"])
    m["LrValues"] = ", ".join(plain(r["config"]["lr"]) for r in runs)  # math mode
    m["BestLr"] = plain(chosen["config"]["lr"])
    m["BestLrByValAcc"] = plain(firsts["final_val_acc"]["best"]["config"]["lr"])
    m.runs("BestLr", chosen)
    ranges = public(rec, runs)
    facts.tables[name] = run_table(
        [(eta(r["config"]["lr"]), r, r["run_id"] == chosen["run_id"]) for r in runs], ranges)
    by_train = sorted(runs, key=lambda r: printed(r, "final_train_loss"))
    by_val = sorted(runs, key=lambda r: -printed(r, "final_val_acc"))
    clear = {metric: found["best"]["run_id"] == chosen["run_id"] and not found["tied"]
             for metric, found in firsts.items()}  # the chosen rate first by it, and no tie at the printed precision
    facts.values = {
        "criterion_winners": criterion_winners(listed), "n": n,
        "by_train_loss": order(by_train, "final_train_loss", "$<$"),
        "by_val_acc": order(by_val, "final_val_acc", "$>$"),
        # the first two rates by the criterion the section chose by, compared on it
        "order_judged": difference(by_choice[0], by_choice[1], key) if len(by_choice) > 1 else None,
        "judged_rates": [plain(r["config"]["lr"]) for r in by_choice[:2]],
        **orders_differ(listed), "chosen": shown(chosen),
        "chosen_trains_best": clear["final_train_loss"], "chosen_validates_best": clear["final_val_acc"],
        "choose_by": choose_by, "public": note(runs, ranges)}
    return facts

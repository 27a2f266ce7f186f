"""The paper's summary section (07): the path of chosen runs from the constant rate to the final model, its
test accuracy, and the Sigmoid variant after a rule."""
from __future__ import annotations

from ...studies.reference import SAME_RECIPE, public_range
from ..formatting import Facts, eta, pct, pct_or_none, plain, points, shown, span, wd, with_sd
from ..reading import ReportError, others
from ..tables import comparable, public, range_note, summary_table


def chosen_path(study: dict[str, dict]) -> list[tuple[str, dict, str]]:
    """(change, run, setting) from the constant rate through cosine and the chosen weight decay (as 05 read it,
    its run without mixup: one seed count with the mixup step) to mixup, if 05 chose it."""
    const, cos, final, decayed = study["constant"], study["cosine"], study["final"], study["no_mixup"]
    path = [("constant", const, f"constant {eta(const['config']['lr'])}"), ("cosine", cos, "+ cosine schedule"),
            ("weight_decay", decayed, f"+ {wd(decayed['config']['weight_decay'])}")]
    if final["run_id"] != study["weight_decay"]["run_id"]:
        path.append(("mixup", final, f"+ mixup $\\alpha={plain(final['config']['mixup_alpha'])}$"))
    return path


def summary_rows(rec: dict, path: list, variants: list[dict], final: dict, test_range) -> list[dict]:
    """The summary table's rows (lib.report.tables.summary_table): the path, the final run in bold with its test
    accuracy (and its sd over seeds, where several) and `test_range` (its PublicRange or None), then the variants."""
    runs = [run for _, run, _ in path] + variants
    val_ranges = public(rec, runs) or [None] * len(runs)
    rows = [{"setting": setting, "run": run, "val_range": val_ranges[i], "variant": False,
             "test": rec["extra"]["test_acc"] if run is final else None,
             "test_sd": pct_or_none(rec["extra"].get("test_acc_std")) if run is final else None,
             "test_range": test_range if run is final else None,
             "bold": run is final} for i, (_, run, setting) in enumerate(path)]
    rows += [{"setting": f"Sigmoid, blocks {shown(r)['blocks']} (variant)", "run": r, "val_range": val_ranges[i],
              "test": None, "test_sd": None, "test_range": None, "bold": False, "variant": True}
             for i, r in enumerate(variants, start=len(path))]
    return rows


def change_of(change: str, run: dict, before: dict) -> dict:
    """One change's effect on the final validation accuracy, as printed: its signed gain in points (maths), the
    verb ('raised', 'lowered', 'left unchanged') and the size in points."""
    gain = float(pct(run["final_val_acc"])) - float(pct(before["final_val_acc"]))
    return {"change": change, "gain": points(run["final_val_acc"], before["final_val_acc"]),
            "verb": "raised" if gain > 0 else "lowered" if gain < 0 else "left unchanged", "by": f"{abs(gain):.1f}"}


def against_range(accuracy: float, found) -> dict | None:
    """Where a test accuracy (a fraction) lies against its public range (None without one): the range as printed,
    its source's bibliography key, and 'above', 'below' or 'within' with the distance in points (as printed)."""
    if found is None:
        return None
    value = float(pct(accuracy))
    where = "above" if value > found.high else "below" if value < found.low else "within"
    by = value - found.high if where == "above" else found.low - value if where == "below" else 0.0
    return {"span": span(found), "where": where, "by": f"{by:.1f}", "cite": found.cite,
            "same_recipe": found.cite == SAME_RECIPE}


def summary(results: dict[str, dict], study: dict[str, dict], n: int) -> Facts:
    """07's macros, table and prose values; a ReportError if 07's results have no test accuracy."""
    rec = results["07_summary"]
    x = rec["extra"]
    if "test_acc" not in x:
        raise ReportError("results of 07_summary have no test_acc: re-run notebook notebooks/07_summary.ipynb")
    final = study["final"]
    test_acc = with_sd(pct(x["test_acc"]), pct_or_none(x.get("test_acc_std")))  # a mean over seeds: with its sd
    facts = Facts()
    facts.macros["TestAcc"] = test_acc
    facts.macros.runs("Final", final)
    path = chosen_path(study)
    variants = [r for r in others(results["06_activation"], study["relu"]) if r["config"]["sigmoid_blocks"]]
    test_range = public_range(final["config"], "test_acc", rec["data_kind"], rec["profile"], final_model=True)
    rows = summary_rows(rec, path, variants, final, test_range)
    facts.tables["07_summary"] = summary_table(rows)
    cells = [(row["run"]["final_val_acc"], row["val_range"]) for row in rows]
    cells += [(row["test"], row["test_range"]) for row in rows if row["test"] is not None]
    steps = [change_of(change, run, before) for (_, before, _), (change, run, _) in zip(path, path[1:], strict=False)]
    facts.values = {
        "final": shown(final), "test_acc": test_acc, "steps": steps, "n": n, "n_test": x.get("n_seeds", 1),
        "test_range": against_range(x["test_acc"], test_range),
        "val_to_test": f"{float(pct(final['final_val_acc'])) - float(pct(x['test_acc'])):.1f}",
        "variant": shown(variants[0]) if variants else None,
        "final_wd": shown(final)["wd"],
        "variant_change": change_of("sigmoid", variants[0], final) if variants else None,
        "public": range_note(cells if comparable(rec) else None)}
    return facts

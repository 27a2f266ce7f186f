"""The paper's test step: the final model's one look at the test set (the brief's `test_step`, of the chosen run
of its `final` section), placed against the public range for it, and the table of the path of chosen runs that
led to it (lib.report.path), with the variants of later sections after a rule."""
from __future__ import annotations

from ...studies.reference import SAME_RECIPE, public_range
from ..formatting import Facts, pct, pct_or_none, shown, span, with_sd
from ..path import chosen_path, variants
from ..tables import comparable, path_table, public, range_note


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


def table_rows(rec: dict, path: list[dict], others: list[dict], final: dict, test_range) -> list[dict]:
    """The path table's rows (lib.report.tables.path_table): the path, the final run in bold with its test
    accuracy (and its sd over seeds, where several) and `test_range` (its PublicRange or None), then the
    variants."""
    rows = [*path, *others]
    val_ranges = public(rec, [row["run"] for row in rows]) or [None] * len(rows)
    x = rec["extra"]
    return [{"setting": row["setting"], "run": row["run"], "val_range": val_ranges[i], "variant": i >= len(path),
             "test_acc": x["test_acc"] if row["run"] is final else None,
             "test_sd": pct_or_none(x.get("test_acc_std")) if row["run"] is final else None,
             "test_range": test_range if row["run"] is final else None, "bold": row["run"] is final}
            for i, row in enumerate(rows)]


def facts(results: dict[str, dict], name: str) -> Facts:
    """The test step's table and prose values; the final model is the path's last row (its test score checked
    by lib.report.reading.check_final)."""
    rec = results[name]
    x = rec["extra"]
    path = chosen_path(results)
    final = path[-1]["run"]
    others = variants(results)
    test_range = public_range(final["config"], "test_acc", rec["data_kind"], rec["profile"], final_model=True)
    rows = table_rows(rec, path, others, final, test_range)
    found = Facts()
    found.tables[name] = path_table(rows)
    # the caption's marks are those of the columns the table shows: validation ranges only where some row has one
    val_column = any(row["val_range"] for row in rows)
    cells = [(row["run"]["final_val_acc"], row["val_range"]) for row in rows] if val_column else []
    cells += [(row["test_acc"], row["test_range"]) for row in rows if row["test_acc"] is not None]
    dashes = val_column and any(row["val_range"] is None for row in rows)  # a '--' in the validation column
    found.values = {
        "final": shown(final), "n_test": x.get("n_seeds", 1), "path_length": len(path),
        "test_acc": with_sd(pct(x["test_acc"]), pct_or_none(x.get("test_acc_std"))),
        "test_range": against_range(x["test_acc"], test_range),
        "start": path[0]["setting"], "variants": len(others),
        "public": range_note(cells if comparable(rec) else None, dashes)}
    return found

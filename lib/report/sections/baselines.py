"""The paper's baselines section (notebooks/baselines.ipynb, an extra beyond the brief): the architectures
trained with one recipe, their size, time and accuracy; absent when the notebook was not run."""
from __future__ import annotations

from ...core.notation import arch_name
from ...studies.sections import brief
from ..findings import difference
from ..formatting import Facts, pct, pct_or_none, plain, shown, size, tex_escape, with_sd
from ..reading import ReportError
from ..tables import baselines_table


def tex_arch(arch: str) -> str:
    """An architecture as the paper names it; an id the map lacks, escaped."""
    return arch_name(arch, tex=True, default=tex_escape(arch))


def arch_rows(rows: list[dict]) -> list[dict]:
    """Per architecture, in the order trained: its name, size, time and accuracies as printed, and whether its final
    accuracy is the highest or lowest as printed (so that ties read as ties)."""
    final = {row["arch"]: pct(row["final_val_acc"]) for row in rows}
    top, bottom = max(final.values(), key=float), min(final.values(), key=float)
    return [{"name": tex_arch(row["arch"]), "params": size(row["params"] / 1e6), "macs": size(row["macs"] / 1e6),
             "seconds": size(row["seconds_per_epoch"]),
             "best": with_sd(pct(row["best_val_acc"]), pct_or_none(row.get("best_val_acc_std"))),
             "final": with_sd(final[row["arch"]], pct_or_none(row.get("final_val_acc_std"))),
             "highest": final[row["arch"]] == top, "lowest": final[row["arch"]] == bottom} for row in rows]


def extremes(rows: list[dict], key: str, scale: float = 1.0) -> dict:
    """The lowest and highest `key` of the rows (divided by `scale`, as printed) and the architectures with them."""
    low, high = min(rows, key=lambda row: row[key]), max(rows, key=lambda row: row[key])
    return {"low": size(low[key] / scale), "high": size(high[key] / scale), "lowest": tex_arch(low["arch"]),
            "highest": tex_arch(high["arch"])}


def checked_rows(rec: dict, study: dict) -> list[dict]:
    """The baselines' table rows, checked to match the study's profile and data and to be one per run (else
    ReportError)."""
    if (rec["profile"], rec["data_kind"]) != (study["profile"], study["data_kind"]):
        raise ReportError(f"results of {rec['section']} are from profile {rec['profile']!r} on {rec['data_kind']} "
                          f"data, the study's from {study['profile']!r} on {study['data_kind']} data: re-run notebook "
                          f"notebooks/{rec['section']}.ipynb like the study (make baselines PROFILE=...)")
    rows = rec["extra"].get("table") or []
    if not rows or [row["arch"] for row in rows] != list({run["label"]: run for run in rec["runs"]}):
        raise ReportError(f"results of {rec['section']} hold no table of their runs: re-run notebook "
                          f"notebooks/{rec['section']}.ipynb")
    return rows


def facts(results: dict[str, dict], name: str) -> Facts:
    """The baselines (results[name], absent when their notebook was not run) beside the study (the results of the
    brief's first training section, for its profile and data): their table and what the paragraph prints (the
    recipe, n, the highest and lowest final validation accuracy, the ranges of size and time). Without them `run`
    is false, the paper has no such section, and the table is None (generation removes one an earlier build
    left)."""
    rec, study = results.get(name), results[brief().training[0]]
    if rec is None:
        return Facts(values={"run": False}, tables={name: None})
    rows = checked_rows(rec, study)
    runs = {run["label"]: run for run in rec["runs"]}
    archs = arch_rows(rows)
    final = [pct(row["final_val_acc"]) for row in rows]
    top, bottom = max(final, key=float), min(final, key=float)
    by_final = sorted(rows, key=lambda row: -row["final_val_acc"])
    top_two = difference(runs[by_final[0]["arch"]], runs[by_final[1]["arch"]]) if len(rows) > 1 else None
    common = next(iter(runs.values()))  # every architecture's run shares its recipe
    config = common["config"]
    devices = {row.get("device") for row in rows}
    values = {"run": True, "archs": archs, "common": shown(common),
              "n": min(run.get("n_seeds", 1) for run in runs.values()), "batch_size": config["batch_size"],
              "optimizer": config.get("optimizer", "sgd"), "momentum": plain(config["momentum"]),
              "level": top == bottom, "top": top, "bottom": bottom,
              "spread": {**top_two, "names": " and ".join(tex_arch(row["arch"]) for row in by_final[:2]),
                         "first": tex_arch(by_final[0]["arch"]), "second": tex_arch(by_final[1]["arch"])}
              if top_two else None,
              "params": extremes(rows, "params", 1e6), "macs": extremes(rows, "macs", 1e6),
              "seconds": extremes(rows, "seconds_per_epoch"),
              "device": tex_escape(devices.pop()) if len(devices) == 1 and None not in devices else None,
              "stacked": [tex_arch(row["arch"]) for row in rows if row.get("runs_together", 1) > 1]}
    return Facts(values=values, tables={name: baselines_table(archs)})

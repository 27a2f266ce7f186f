"""The whole-study record: the full profile's GPU wall time, extrapolated from a shortened end-to-end study.

    python bench/study_record.py --timings runs/timings.jsonl --wall-seconds 312 --profile e2e --out results.json

Input: the run store's timing log (lib.store.timing_log: one line per training call, a run or a stack, with its
data-load, build and per-epoch wall seconds) of a study run with `--profile` (e.g. `e2e`: the full profile's
data and sizes with 2 and 8 epochs), and that study's whole wall time (every notebook, plan and figure
included). Each training call is scaled to the full profile's epochs (the short section's to 15, the long
ones' to 300): data + build + first epoch + (full epochs - 1) x the median of its later epochs. The rest of the
wall time (kernels, plan, benchmarks, figures, test evaluation) is added once, as measured. The record says
`extrapolated` and lists every measured input; bench/results_table.py puts it in bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from benchmark import identity

from lib import study

TARGET_MILESTONE_S, TARGET_GOAL_S = 15 * 60, 10 * 60  # the whole study's GPU wall time (issue: first, then goal)


def full_epochs(epochs: int, profile: study.Profile) -> int:
    """The full profile's epochs for a training call of `epochs` epochs under `profile`."""
    full = study.get_profile("full")
    if epochs == profile.short_epochs:
        return full.short_epochs
    if epochs == profile.long_epochs:
        return full.long_epochs
    raise ValueError(f"a training call of {epochs} epochs is neither {profile.name}'s short ({profile.short_epochs}) "
                     f"nor long ({profile.long_epochs}) section")


def scaled(call: dict, epochs: int) -> float:
    """Wall seconds of a training call stretched to `epochs` epochs: its set-up and first epoch as measured, every
    further epoch at the median of its measured later epochs."""
    seconds = call["epoch_seconds"]
    later = statistics.median(seconds[1:] or seconds)
    return call["data_seconds"] + call["build_seconds"] + seconds[0] + (epochs - 1) * later


def study_record(calls: list[dict], wall_seconds: float, profile_name: str) -> dict:
    profile = study.get_profile(profile_name)
    measured_training = sum(c["total_seconds"] for c in calls)
    overhead = wall_seconds - measured_training  # notebooks, plan, throughput benchmark, figures, test set
    parts = []
    for call in calls:
        epochs = full_epochs(call["epochs"], profile)
        parts.append({"runs": call["n_runs"], "epochs_measured": len(call["epoch_seconds"]), "epochs_full": epochs,
                      "compiled": call["compiled"], "mixup_alpha": call["mixup_alpha"],
                      "sigmoid": bool(call["sigmoid_blocks"]), "data_seconds": call["data_seconds"],
                      "build_seconds": call["build_seconds"], "first_epoch_seconds": call["epoch_seconds"][0],
                      "median_later_epoch_seconds": round(statistics.median(call["epoch_seconds"][1:]
                                                                            or call["epoch_seconds"]), 3),
                      "full_seconds": round(scaled(call, epochs), 1)})
    total = sum(p["full_seconds"] for p in parts) + overhead
    lone_long = [p for p in parts if p["runs"] == 1 and p["epochs_full"] == study.get_profile("full").long_epochs]
    record = {
        **identity(),
        "pipeline": f"whole study, full profile (1,845 run-epochs), extrapolated from profile {profile_name}",
        "full_study_gpu_seconds": round(total, 1),
        "extrapolated": True,
        "method": "per training call: data + build + first epoch + (full epochs - 1) x median later epoch; plus "
                  "the measured non-training wall time once",
        "measured_wall_seconds": round(wall_seconds, 1),
        "measured_training_seconds": round(measured_training, 1),
        "measured_overhead_seconds": round(overhead, 1),
        "training_calls": parts,
        "targets_seconds": {"milestone": TARGET_MILESTONE_S, "goal": TARGET_GOAL_S},
        "device_features": calls[0]["device"] if calls else None,
    }
    if lone_long:  # one 300-epoch run alone, compiled as the study trains it (the fastest such call measured)
        best = min(lone_long, key=lambda p: p["full_seconds"])
        record["one_long_run_seconds"] = best["full_seconds"]
        record["one_long_run_seconds_per_epoch"] = round(best["full_seconds"] / best["epochs_full"], 3)
    return record


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timings", required=True, help="the run store's timings.jsonl of the shortened study")
    parser.add_argument("--wall-seconds", type=float, required=True, help="that study's whole wall time")
    parser.add_argument("--profile", default="e2e", help="the profile the study ran with")
    parser.add_argument("--out", required=True, help="JSON list to append the record to")
    args = parser.parse_args(argv)
    calls = [json.loads(line) for line in Path(args.timings).read_text().splitlines() if line.strip()]
    record = study_record(calls, args.wall_seconds, args.profile)
    out = Path(args.out)
    existing = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps(existing + [record], indent=1) + "\n")
    print(f"whole study (full profile), extrapolated: {record['full_study_gpu_seconds'] / 60:.1f} min of GPU wall "
          f"time from {len(calls)} training calls and {args.wall_seconds:.0f} s measured -> {out}")
    return record


if __name__ == "__main__":
    main()

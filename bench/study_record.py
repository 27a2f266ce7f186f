"""The whole-study record: the full profile's GPU wall time, extrapolated from a shortened end-to-end study.

    python bench/study_record.py --timings runs/timings.jsonl --wall-seconds 312 --out results.json
    python bench/study_record.py --log gpu-out/e2e.log --out results.json   # from the study's log alone

Input: a study run with `--profile` (`e2e`: the full profile's data and sizes with 2 and 6 epochs), as the
run store's timing log (lib.running.cost.timing_log: one line per training call, a run or a stack, with its data-load,
build and per-epoch wall seconds) plus the study's whole wall time, or as the log that bench/gpu_session.sh
keeps (the same figures, from the `timing` line each training call prints, and each notebook's time).

Each training call is scaled to the full profile's epochs (the short section's to 15, the long ones' to 300):
data + build + first epoch + (full epochs - 1) x the median of its later epochs. Calls that trained k at once
(lib.training.concurrency: the timing log's `at_once` and `pool`, the log's "k trainings at once") overlap: they run in
k lanes, each call in the lane that frees first, and take the longest lane's time; other calls add up. The rest of
the wall time (the plan, the notebooks' kernels, tables, figures and test evaluation) is added once, as measured.
A log cut off before the study's end still makes a record: each training call the plan announced but the log lacks is
taken equal to a measured call of the same length that was not the first of its process (failing that, any of
that length), and the record names it `assumed`. The record says `extrapolated` and lists every input;
bench/results_table.py puts it in bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

from benchmark import identity

from lib.studies import study

TARGET_MILESTONE_S, TARGET_GOAL_S = 15 * 60, 10 * 60  # the whole study's GPU wall time (issue: first, then goal)
TIMING = re.compile(r"timing (?P<name>.+?): data (?P<data>[\d.]+) s, build (?P<build>[\d.]+) s(?P<compiled> "
                    r"\(compiled\))?, (?P<epochs>\d+) epochs (?P<total>[\d.]+) s \(first (?P<first>[\d.]+) s, "
                    r"median (?P<median>[\d.]+) s\)(?:, (?P<at_once>\d+) trainings at once)?")
PLAN = re.compile(r"^\s+-> (?P<runs>\d+) runs? to train in (?P<calls>\d+) training calls? of (?P<epochs>\d+) epochs")
NOTEBOOK_DONE = re.compile(r"^(?P<notebook>\w+): done in (?P<seconds>[\d.]+) s\b")
VERSIONS = re.compile(r"^torch (?P<torch>\S+) CUDA (?P<cuda>\S+) (?P<device>.+)$")  # gpu_session.sh's first line


def full_epochs(epochs: int, profile: study.Profile) -> int:
    """The full profile's epochs for a training call of `epochs` epochs under `profile`."""
    full = study.get_profile("full")
    if epochs == profile.short_epochs:
        return full.short_epochs
    if epochs == profile.long_epochs:
        return full.long_epochs
    raise ValueError(f"a training call of {epochs} epochs is neither {profile.name}'s short ({profile.short_epochs}) "
                     f"nor long ({profile.long_epochs}) section")


def from_timing_log(call: dict, first_in_process: bool = True) -> dict:
    """A line of lib.running.store's timings.jsonl as a measured call; `first_in_process`: no earlier call of its
    process (whose compiled code and cuDNN plans it could reuse)."""
    seconds = call["epoch_seconds"]
    return {"name": ", ".join(call.get("runs", [])), "first_in_process": first_in_process,
            "runs": call["n_runs"], "epochs_config": call["epochs"], "epochs_measured": len(seconds),
            "compiled": call["compiled"],
            "data_seconds": call["data_seconds"], "build_seconds": call["build_seconds"],
            "first_epoch_seconds": seconds[0], "median_later_epoch_seconds": statistics.median(seconds[1:] or seconds),
            "total_seconds": call["total_seconds"], "mixup_alpha": call["mixup_alpha"],
            "sigmoid": bool(call["sigmoid_blocks"]), "at_once": call.get("at_once", 1), "pool": call.get("pool")}


def scaled(call: dict, epochs: int) -> float:
    """Wall seconds of a training call stretched to `epochs` epochs: its set-up and first epoch as measured, every
    further epoch at the median of its measured later epochs."""
    return (call["data_seconds"] + call["build_seconds"] + call["first_epoch_seconds"]
            + (epochs - 1) * call["median_later_epoch_seconds"])


def training_wall_seconds(calls: list[dict]) -> float:
    """The wall seconds of `calls` (each with its full_seconds): the calls of one pool trained k > 1 at once run
    in k lanes, each call, in the order given, in the lane that frees first (as lib.training.concurrency's pool starts
    them), and take the longest lane's time together; every other call takes its own time."""
    pools: dict[str, list[dict]] = {}
    alone = 0.0
    for call in calls:
        if call.get("at_once", 1) > 1:
            pools.setdefault(call["pool"], []).append(call)
        else:
            alone += call["full_seconds"]
    total = alone
    for pool in pools.values():
        lanes = [0.0] * max(c["at_once"] for c in pool)
        for call in pool:
            lanes[lanes.index(min(lanes))] += call["full_seconds"]
        total += max(lanes)
    return total


def _record(calls: list[dict], overhead: float, profile_name: str, inputs: dict) -> dict:
    profile = study.get_profile(profile_name)
    for call in calls:
        call["epochs_full"] = full_epochs(call.get("epochs_config", call["epochs_measured"]), profile)
        call["full_seconds"] = round(scaled(call, call["epochs_full"]), 1)
    total = training_wall_seconds(calls) + overhead
    measured = [c for c in calls if not c.get("assumed")]
    record = {
        **identity(),
        "pipeline": f"whole study, full profile (1,845 run-epochs), extrapolated from profile {profile_name}"
                    + (f" ({len(measured)} of {len(calls)} training calls measured)" if len(measured) < len(calls)
                       else ""),
        "full_study_gpu_seconds": round(total, 1),
        "extrapolated": True,
        "method": "per training call: data + build + first epoch + (full epochs - 1) x median later epoch; calls "
                  "trained k at once: k lanes, each call in the first free one; plus the measured non-training wall "
                  "time once",
        **inputs,
        "measured_overhead_seconds": round(overhead, 1),
        "training_calls": calls,
        "targets_seconds": {"milestone": TARGET_MILESTONE_S, "goal": TARGET_GOAL_S},
    }
    long_alone = [c for c in measured if c["runs"] == 1 and c["epochs_full"] == study.get_profile("full").long_epochs]
    cold = [c for c in long_alone if c.get("first_in_process", True)]  # a later call may reuse compiled code
    if long_alone:  # one 300-epoch run alone, set-up included, as a user gets it (the fastest such call measured)
        best = min(cold or long_alone, key=lambda c: c["full_seconds"])
        record["one_long_run_seconds"] = best["full_seconds"]
        record["one_long_run_seconds_per_epoch"] = round(best["full_seconds"] / best["epochs_full"], 3)
        record["one_long_run_warm"] = not cold  # its set-up that of a process's later call: shorter than a first
    return record


def study_record(timings: list[dict], wall_seconds: float, profile_name: str) -> dict:
    """The record of a study that ran to its end: the run store's timing log and the study's wall time."""
    calls = [from_timing_log(t, first_in_process=t.get("pid") is None or t["pid"] not in {u.get("pid") for u in
                                                                                          timings[:i]})
             for i, t in enumerate(timings)]
    training = training_wall_seconds([{**c, "full_seconds": c["total_seconds"]} for c in calls])  # as measured
    return _record(calls, wall_seconds - training, profile_name,
                   {"measured_wall_seconds": round(wall_seconds, 1), "measured_training_seconds": round(training, 1)})


def record_from_log(text: str, profile_name: str) -> dict:
    """The record of a study from its log (bench/gpu_session.sh e2e), also of one cut off before its end.

    The driver trains every run before the notebooks, in one process: its plan announces the training calls of
    each wave (lib.studies.plan), its calls print their `timing` lines in that order, then each notebook its time."""
    announced, waves, measured, notebook_seconds = [], [], [], {}
    for line in text.splitlines():
        if m := PLAN.match(line):
            announced += [int(m["epochs"])] * int(m["calls"])
            waves += [len(set(waves))] * int(m["calls"])  # the wave of each announced call
        if m := NOTEBOOK_DONE.match(line):
            notebook_seconds[m["notebook"]] = float(m["seconds"])
        if m := TIMING.search(line):
            runs = re.search(r", (\d+) stacked:", m["name"])
            at_once = int(m["at_once"] or 1)
            wave = waves[len(measured)] if len(measured) < len(waves) else len(set(waves))
            measured.append({"name": m["name"], "runs": int(runs[1]) if runs else 1, "first_in_process": not measured,
                             "at_once": at_once, "pool": f"wave {wave + 1}" if at_once > 1 else None,
                             "epochs_measured": int(m["epochs"]), "compiled": bool(m["compiled"]),
                             "data_seconds": float(m["data"]), "build_seconds": float(m["build"]),
                             "first_epoch_seconds": float(m["first"]), "median_later_epoch_seconds": float(m["median"]),
                             "total_seconds": round(float(m["data"]) + float(m["build"]) + float(m["total"]), 2)})
    if not measured:
        raise ValueError("the log holds no 'timing' line of a training call")
    calls = list(measured)
    for i in range(len(measured), len(announced)):  # announced, not reached: like a measured call of that length
        same_length = [c for c in measured if c["epochs_measured"] == announced[i]]
        like = [c for c in same_length if not c["first_in_process"]] or same_length  # else: its set-up counted
        if not like:
            raise ValueError(f"training call {i + 1} was not reached and no measured call is like it")
        calls.append({**like[0], "name": f"call {i + 1} (not reached)", "first_in_process": False,
                      "pool": f"wave {waves[i] + 1}" if like[0]["at_once"] > 1 else None,
                      "assumed": f"as measured for {like[0]['name']}"})
    # Notebook time (kernel, imports, tables, figures; they train nothing): as measured, the median for those
    # the log does not reach.
    per_notebook = statistics.median(notebook_seconds.values()) if notebook_seconds else 0.0
    overhead = sum(notebook_seconds.values()) + per_notebook * (len(study.brief().names) - len(notebook_seconds))
    return _record(calls, overhead, profile_name, {
        "measured_training_seconds": round(sum(c["total_seconds"] for c in measured), 1),
        "measured_notebook_seconds": notebook_seconds,
        "overhead_per_notebook_seconds": round(per_notebook, 1),
        "announced_training_calls": len(announced)})


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--timings", help="the run store's timings.jsonl of the shortened study")
    source.add_argument("--log", help="the shortened study's log (bench/gpu_session.sh e2e), complete or cut off")
    parser.add_argument("--wall-seconds", type=float, help="with --timings: the study's whole wall time")
    parser.add_argument("--session-log", nargs="*", default=[], help="with --log: gpu_session.sh's session.log "
                        "(the device and versions), if the study's log lacks them")
    parser.add_argument("--profile", default="e2e", help="the profile the study ran with")
    parser.add_argument("--out", required=True, help="JSON list to append the record to")
    args = parser.parse_args(argv)
    if args.timings:
        if args.wall_seconds is None:
            parser.error("--timings needs --wall-seconds")
        timings = [json.loads(line) for line in Path(args.timings).read_text().splitlines() if line.strip()]
        record = study_record(timings, args.wall_seconds, args.profile)
    else:
        text = "\n".join(Path(f).read_text(errors="replace") for f in [*args.session_log, args.log])
        record = record_from_log(text, args.profile)
        versions = next((m for line in text.splitlines() if (m := VERSIONS.match(line))), None)
        if versions is None:
            parser.error("the logs name no 'torch ... CUDA ... <device>' line: add gpu_session.sh's session.log")
        record.update(device=versions["device"], torch=versions["torch"], cuda=versions["cuda"],
                      command=record["command"] + "  # on the CPU side, from the GPU session's logs")
    out = Path(args.out)
    existing = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps(existing + [record], indent=1) + "\n")
    print(f"{record['pipeline']}: {record['full_study_gpu_seconds'] / 60:.1f} min of GPU wall time -> {out}")
    return record


if __name__ == "__main__":
    main()

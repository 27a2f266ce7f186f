"""Training and evaluation speed of the usual CIFAR pipeline and of ours, each speed feature on and off.

    python bench/benchmark.py                 # on a GPU: every pipeline, table + bench/results.json
    python bench/benchmark.py --small         # tiny sizes (what the tests and a CPU run); says so

On synthetic data of CIFAR shape (uint8 32x32x3, 100 classes). For each pipeline: a fixed number of
training steps of batch 128 after warm-up (median and spread over repeats), one evaluation pass over
10k images, extrapolated to seconds per epoch of 40k training + 10k validation images; peak GPU memory.
`--stacked 2,3` (default on a GPU) also times 2 and 3 runs stacked into one network (lib.nets.stack), images/s
summed over the runs. `--e2e-epochs K` also runs lib.training.train.train_together for K real epochs on a synthetic
50k-image folder (per-epoch evaluation and checkpoints included; `--e2e-stacked N` runs at once) to confirm the
sustained rate. Records are appended to
bench/results.json (or `--out`); bench/RESULTS.md holds the measured tables.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lib.core import settings
from lib.core.config import RunConfig
from lib.nets.data import DeviceSplit, channel_stats, write_synthetic_cifar100
from lib.nets.device import Runtime, runtime
from lib.training.splits import evaluate
from lib.training.step import train_epoch
from lib.training.train import fresh_step, train_together

HERE = Path(__file__).resolve().parent
EPOCH_TRAIN, EPOCH_VAL = 40_000, 10_000  # images per epoch of the study


# ---------------------------------------------------------------- the usual pipeline


class PilDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR100 does per item: a PIL image through the transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def _usual(images, labels, val_images, val_labels, args, device) -> dict:
    """DataLoader(workers = cores) + PIL RandomCrop/Flip/ToTensor/Normalize, fp32, eager, per-step .item()."""
    from torchvision import transforms

    mean, std = channel_stats(images)
    normalize = transforms.Normalize(mean.tolist(), std.tolist())
    augment = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                  transforms.ToTensor(), normalize])
    plain = transforms.Compose([transforms.ToTensor(), normalize])
    workers = os.cpu_count() or 1
    loader = torch.utils.data.DataLoader(PilDataset(images, labels, augment), batch_size=args.batch, shuffle=True,
                                         num_workers=workers, drop_last=True)
    val_loader = torch.utils.data.DataLoader(PilDataset(val_images, val_labels, plain), batch_size=args.batch,
                                             num_workers=workers)
    torch.manual_seed(0)
    from lib.nets.models import build_model

    model = build_model("mobilenetv2", 100).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)  # PyTorch's default (foreach on CUDA)
    model.train()
    times, running_loss = [], 0.0
    for i, (x, y) in enumerate(loader):
        if i == args.warmup:
            _sync(device)
            start = time.perf_counter()
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running_loss += loss.item()  # the usual per-step host sync
        running_loss += (logits.argmax(1) == y).sum().item()
        if i + 1 - args.warmup == args.steps:
            break
    _sync(device)
    times.append(time.perf_counter() - start)
    eval_seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.eval()
        with torch.no_grad():
            for x, y in val_loader:
                x, y = x.to(device), y.to(device)
                logits = model(x)
                running_loss += F.cross_entropy(logits, y).item() + (logits.argmax(1) == y).sum().item()
        eval_seconds.append(time.perf_counter() - start)
    return {"train_seconds": times, "eval_seconds": eval_seconds, "steps": args.steps,
            "note": f"DataLoader workers={workers}, batch {args.batch}, eval includes worker start-up"}


# ---------------------------------------------------------------- ours


def _ours(rt: Runtime, images, labels, val_images, val_labels, args, compile_model=False, k: int = 1) -> dict:
    """lib.training.train's own step and epoch on device-resident data: warm-up epoch, then `repeats` timed epochs.

    k > 1: k runs (learning rates 0.05, 0.1, ...) trained together as one stacked network (lib.nets.stack); the
    seconds recorded are per run (total / k), so images/s are summed over the runs."""
    mean, std = channel_stats(images)
    n = args.steps * args.batch
    split = DeviceSplit(images[:n], labels[:n], mean, std, rt.device)
    val = DeviceSplit(val_images, val_labels, mean, std, rt.device)
    configs = [RunConfig(batch_size=args.batch, lr=0.05 * (i + 1)) for i in range(k)]
    generator = torch.Generator(device=rt.device).manual_seed(0)
    mixup_rng = np.random.default_rng(0)
    start = time.perf_counter()
    _, net, sums, step = fresh_step(configs, rt, split, compile_model=compile_model)
    net.train()
    train_epoch(step, split, configs, [(generator, mixup_rng)], 0, rt)  # warm-up
    evaluate(net, val, rt)
    sums.tolist()
    setup_seconds = time.perf_counter() - start
    train_seconds, eval_seconds = [], []
    for r in range(args.repeats):
        net.train()
        _sync(rt.device)
        start = time.perf_counter()
        train_epoch(step, split, configs, [(generator, mixup_rng)], (r + 1) * args.steps, rt)
        sums.tolist()  # the epoch's one host sync
        train_seconds.append((time.perf_counter() - start) / k)
        start = time.perf_counter()
        evaluate(net, val, rt)
        eval_seconds.append((time.perf_counter() - start) / k)
    result = {"train_seconds": train_seconds, "eval_seconds": eval_seconds, "steps": args.steps,
              "setup_seconds": setup_seconds}
    if k > 1:
        result["note"] = f"{k} runs stacked into one network; images/s summed over the runs"
    return result


def _streams(rt: Runtime, images, labels, args, k: int) -> dict:
    """k independent runs (own model, optimiser, generator, CUDA graph) stepped in lockstep on k CUDA streams."""
    mean, std = channel_stats(images)
    n = args.steps * args.batch
    split = DeviceSplit(images[:n], labels[:n], mean, std, rt.device)
    config = RunConfig(batch_size=args.batch)
    runs = []
    for seed in range(k):
        _, _, sums, step = fresh_step([dataclasses.replace(config, seed=seed)], rt, split)
        runs.append((step, torch.Generator(device=rt.device).manual_seed(seed), torch.cuda.Stream(), sums))

    def epoch():
        batches = [split.train_batches(args.batch, gen) for _, gen, _, _ in runs]
        for _ in range(args.steps):
            for (step, _, stream, _), it in zip(runs, batches, strict=True):
                with torch.cuda.stream(stream):
                    x, y = next(it)
                    x = x.contiguous(memory_format=torch.channels_last) if rt.channels_last else x
                    step(x, y, y, 1.0, [0.05])
        for _, _, stream, sums in runs:
            torch.cuda.current_stream().wait_stream(stream)
            sums.tolist()

    epoch()
    times = []
    for _ in range(args.repeats):
        _sync(rt.device)
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return {"train_seconds": [t / k for t in times], "eval_seconds": [], "steps": args.steps,
            "note": f"{k} runs on {k} streams; images/s summed over the runs"}


# ---------------------------------------------------------------- measurement and records


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def identity() -> dict:
    """Device, versions, date and the command line: the head of every record."""
    return {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python3", *sys.argv]),
    }


def _record(name: str, result: dict, args, rt_text: str) -> dict:
    train_ips = [args.steps * args.batch / t for t in result["train_seconds"]]
    eval_ips = [args.val / t for t in result["eval_seconds"]]
    med_train = statistics.median(train_ips)
    med_eval = statistics.median(eval_ips) if eval_ips else None
    record = {
        **identity(),
        "pipeline": name,
        "features": rt_text,
        "train_images_per_second": round(med_train, 1),
        "train_images_per_second_range": [round(min(train_ips), 1), round(max(train_ips), 1)],
        "eval_images_per_second": round(med_eval, 1) if med_eval else None,
        "seconds_per_epoch_40k_10k": round(EPOCH_TRAIN / med_train + (EPOCH_VAL / med_eval if med_eval else 0), 3),
        "peak_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None,
        "n_repeats": len(train_ips),
        "steps_per_repeat": args.steps,
        "batch": args.batch,
        "small": args.small,
        "method": "extrapolated from timed steps after warm-up",
    }
    for key in ("setup_seconds", "note"):
        if key in result:
            record[key] = round(result[key], 2) if isinstance(result[key], float) else result[key]
    return record


def _end_to_end(args, rt: Runtime, epochs: int, mixup: float = 0.0, k: int = 1) -> dict:
    """lib.training.train.train_together for `epochs` epochs of k runs (learning rates 0.05, 0.1, ...) on a synthetic
    50k folder: evaluation and checkpoints included; seconds per epoch are per run (the group's time / k).

    With `rt.compile`, the model is compiled even for this short run (lib.training.train compiles only long runs)."""
    rt = dataclasses.replace(rt, compile_min_epochs=1)  # lib.training.train compiles only long runs by default
    with tempfile.TemporaryDirectory() as tmp:
        n_train = 50_000 if not args.small else 2 * args.val
        write_synthetic_cifar100(tmp, n_train=n_train, n_test=100)
        config = RunConfig(data_dir=tmp, epochs=epochs, schedule="cosine", mixup_alpha=mixup,
                           val_size=n_train // 5, batch_size=args.batch, weight_decay=5e-4)
        configs = [dataclasses.replace(config, lr=0.05 * (i + 1)) for i in range(k)]
        run_dirs = [Path(tmp) / f"run{i}" for i in range(k)]
        for run_dir in run_dirs:
            run_dir.mkdir()
        start = time.perf_counter()
        history = train_together(configs, run_dirs, progress=False, rt=rt)[0]
        total = time.perf_counter() - start
    steady = [row["epoch_seconds"] for row in history[1:]] or [history[0]["epoch_seconds"]]
    n_train_split = n_train - n_train // 5
    per_epoch = statistics.median(steady)
    return {
        **identity(),
        "pipeline": f"end-to-end lib.train, {epochs} epochs" + ", compiled" * rt.compile
                    + (f", {k} runs stacked (per run)" if k > 1 else ""),
        "features": rt.features(),
        "train_images_per_second": round(n_train_split / per_epoch, 1),  # sustained, evaluation included
        "train_images_per_second_range": [round(n_train_split / max(steady), 1), round(n_train_split / min(steady), 1)],
        "eval_images_per_second": None,
        "seconds_per_epoch_40k_10k": round(per_epoch, 3),
        "first_epoch_seconds": round(history[0]["epoch_seconds"], 3),
        "total_seconds_with_setup": round(total, 2),
        "peak_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None,
        "n_repeats": len(steady),
        "small": args.small,
        "method": "measured: median epoch_seconds (train + val + checkpoint) of epochs 2.., 40k+10k per epoch",
        "final_train_loss": round(history[-1]["train_loss"], 4),
    }


def _pipelines(small: bool, cuda: bool) -> list[tuple[str, dict, bool]]:
    """(name, runtime overrides, compile) for every pipeline of ours; the usual one is measured separately."""
    plain = dict(bf16=False, channels_last=False, fused_sgd=False, cuda_graphs=False, compile=False, eval_batch=128)
    if not cuda:
        return [("ours: device data, fp32, eager", plain, False),
                ("ours: + channels_last", {**plain, "channels_last": True}, False)]
    best = dict(bf16=True, channels_last=True, fused_sgd=True, cuda_graphs=True, compile=False, eval_batch=2000)
    ladder = [
        ("ours: device data, fp32, eager, foreach SGD, eval 128", plain, False),
        ("  + channels_last", {**plain, "channels_last": True}, False),
        ("  + bf16 autocast", {**plain, "channels_last": True, "bf16": True}, False),
        ("  + fused SGD", {**plain, "channels_last": True, "bf16": True, "fused_sgd": True}, False),
        ("  + CUDA graphs", {**best, "eval_batch": 128}, False),
        ("  + eval batch 2000 (default)", best, False),
        ("default without channels_last", {**best, "channels_last": False}, False),
        ("default without bf16", {**best, "bf16": False}, False),
        ("default without CUDA graphs", {**best, "cuda_graphs": False}, False),
        ("default, eval batch 500", {**best, "eval_batch": 500}, False),
        ("default, eval batch 10000", {**best, "eval_batch": 10000}, False),
    ]
    # With its loss scaling (GradScaler), as training runs it; `precision`, since `bf16` would override the dtype.
    fp16 = {**{k: v for k, v in best.items() if k != "bf16"}, "precision": "fp16"}
    ladder += [("default with fp16 autocast (loss-scaled) instead of bf16", fp16, False)]
    if not small:
        ladder += [("default + torch.compile (graphs)", best, True),
                   ("default + torch.compile, fp16 (loss-scaled)", fp16, True),
                   ("default + torch.compile, no graphs", {**best, "cuda_graphs": False}, True),
                   ("default + torch.compile max-autotune (graphs)",
                    {**best, "compile_mode": "max-autotune-no-cudagraphs"}, True)]
    return ladder


def stacks(spec: str, may_compile: bool) -> list[tuple[int, bool]]:
    """`--stacked` read as (runs, compiled) pairs: "2,3" = 2 and 3 runs, each uncompiled and (if `may_compile`)
    compiled; "3,2c,4c" = 3 uncompiled, 2 and 4 compiled only. "0" or "" = none."""
    pairs = []
    for item in (s.strip() for s in spec.split(",")):
        if not item or item == "0":
            continue
        if item.endswith("c"):
            pairs += [(int(item[:-1]), True)] if may_compile else []
        else:
            pairs += [(int(item), False)] + [(int(item), True)] * (may_compile and spec.count("c") == 0)
    return pairs


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes (automatic without a GPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per repeat")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per pipeline")
    parser.add_argument("--out", default=str(HERE / "results.json"), help="JSON list to append records to")
    parser.add_argument("--only", default="", help="comma-separated substrings: measure only matching pipelines")
    parser.add_argument("--e2e-epochs", type=int, default=None, help="epochs of the end-to-end lib.training.train run")
    parser.add_argument("--streams", default="", help="e.g. 2,3: also time that many runs at once on CUDA streams")
    parser.add_argument("--stacked", default=None, help="e.g. 2,3 (the default on a GPU): also time that many runs "
                        "stacked into one network (uncompiled, and compiled unless --skip-compile); a trailing c "
                        "(3,2c,4c) times that stack compiled only; 0 = none")
    parser.add_argument("--e2e-compile", action="store_true", help="the end-to-end run with torch.compile too")
    parser.add_argument("--e2e-stacked", type=int, default=1, help="runs trained together in the end-to-end run")
    parser.add_argument("--skip-usual", action="store_true")
    parser.add_argument("--skip-compile", action="store_true", help="leave out the torch.compile pipelines")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available() and settings.current().device != "cpu"
    args.small = args.small or not cuda
    args.batch = 128 if not args.small else 16
    args.steps = args.steps or (100 if not args.small else 2)
    args.repeats = args.repeats or (5 if not args.small else 1)
    args.warmup = 20 if not args.small else 1
    args.val = EPOCH_VAL if not args.small else 32
    args.stacked = args.stacked if args.stacked is not None else ("2,3" if not args.small else "")
    args.e2e_epochs = args.e2e_epochs if args.e2e_epochs is not None else (4 if not args.small else 0)
    if args.small:
        print("SMALL MODE (no GPU or --small): tiny batches and few steps; numbers show it runs, not speed.")
    rng = np.random.default_rng(0)
    n = (args.warmup + args.steps + 1) * args.batch
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 100, size=n)
    val_images = rng.integers(0, 256, size=(args.val, 32, 32, 3), dtype=np.uint8)
    val_labels = rng.integers(0, 100, size=args.val)
    device = torch.device("cuda" if cuda else "cpu")
    wanted = [w for w in args.only.split(",") if w]
    records = []

    def keep(name):
        return not wanted or any(w in name for w in wanted)

    out = Path(args.out)

    def report(record):  # appended at once, so a run cut short keeps what it measured
        records.append(record)
        existing = json.loads(out.read_text()) if out.exists() else []
        out.write_text(json.dumps(existing + [record], indent=1) + "\n")
        print(f"{record['pipeline'][:52]:52s} {record['train_images_per_second']:>10,.0f} "
              f"{record['eval_images_per_second'] or 0:>10,.0f} {record['seconds_per_epoch_40k_10k']:>8.2f} "
              f"{record['peak_memory_mib'] or 0:>7} {record.get('setup_seconds', '')}", flush=True)

    print(f"{'pipeline':52s} {'train im/s':>10s} {'eval im/s':>10s} {'s/epoch':>8s} {'MiB':>7s} setup s")
    if not args.skip_usual and keep("usual"):
        _reset_peak(cuda)
        result = _usual(images, labels, val_images, val_labels, args, device)
        report(_record("usual: DataLoader + PIL, fp32, eager", result, args, "fp32, eager, foreach SGD"))
    for name, overrides, compile_model in _pipelines(args.small, cuda):
        if not keep(name) or (compile_model and args.skip_compile):
            continue
        _reset_peak(cuda)
        try:  # one pipeline that fails (a compile error, out of memory) costs its row, not the rows after it
            rt = runtime(**overrides)
            result = _ours(rt, images, labels, val_images, val_labels, args, compile_model)
        except Exception as error:  # noqa: BLE001 - said on one line, and the benchmark goes on
            print(f"{name.strip()}: FAILED: {type(error).__name__}: {' '.join(str(error).split())[:300]}", flush=True)
            continue
        report(_record(name.strip(), result, args, rt.features() + (", compiled" if compile_model else "")))
    for k, compile_model in stacks(args.stacked, cuda and not args.skip_compile):
        _reset_peak(cuda)
        name = f"default, {k} runs stacked (sum over runs)" + ", compiled" * compile_model
        try:
            rt = runtime(compile=False) if cuda else runtime(eval_batch=64)
            result = _ours(rt, images, labels, val_images, val_labels, args, compile_model, k=k)
        except Exception as error:  # noqa: BLE001 - as above
            print(f"{name}: FAILED: {type(error).__name__}: {' '.join(str(error).split())[:300]}", flush=True)
            continue
        report(_record(name, result, args, rt.features() + ", compiled" * compile_model))
    for k in [int(s) for s in args.streams.split(",") if s] if cuda else []:
        _reset_peak(cuda)
        rt = runtime(compile=False)
        result = _streams(rt, images, labels, args, k)
        report(_record(f"default, {k} runs at once on {k} CUDA streams", result, args, rt.features()))
    if args.e2e_epochs:
        _reset_peak(cuda)
        rt = runtime(compile=False) if cuda else runtime(eval_batch=64)
        report(_end_to_end(args, rt, args.e2e_epochs, k=args.e2e_stacked))
        if args.e2e_compile and cuda:
            _reset_peak(cuda)
            report(_end_to_end(args, runtime(compile=True), args.e2e_epochs, k=args.e2e_stacked))
    print(f"appended {len(records)} records to {out}; s/epoch = 40k / train im/s + 10k / eval im/s")
    return records


def _reset_peak(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


if __name__ == "__main__":
    main()

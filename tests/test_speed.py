"""The speed features train the same function: fast path vs the plain reference step, and the benchmark runs.

CUDA-only tests skip cleanly without a GPU; on the CPU the channels_last layout is checked in fp32.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.core.config import RunConfig
from lib.nets.data import DeviceSplit
from lib.nets.device import runtime
from lib.nets.stack import stack_models
from lib.training.train import fresh_step, make_model, make_optimizer, make_step, train_epoch

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
PLAIN = dict(bf16=False, channels_last=False, fused_sgd=False, cuda_graphs=False, compile=False)


def _train_one_epoch(rt, config: RunConfig, split: DeviceSplit):
    """One epoch through lib.training.train's own step; returns (parameters, BN buffers, metric sums) on the CPU."""
    torch.backends.cudnn.benchmark = False  # autotuning odd test shapes costs a minute and proves nothing here
    [model], net, sums, step = fresh_step([config], rt, split)
    net.train()
    generator = torch.Generator(device=rt.device).manual_seed(config.seed)
    train_epoch(step, split, [config], [(generator, np.random.default_rng(config.seed))], 0, rt)
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    return state, sums[0].cpu()


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


def test_channels_last_step_equals_plain_on_cpu(monkeypatch):
    """One step, fp32: NHWC and NCHW give the same loss, accuracy and gradient norms.

    One step, because on random labels with batch-8 BatchNorm a few steps amplify any rounding difference."""
    monkeypatch.setenv("AI6103_DEVICE", "cpu")
    config = RunConfig(batch_size=8, arch="mobilenet", mixup_alpha=0.2, weight_decay=5e-4)
    split = DeviceSplit.random(8, torch.device("cpu"))
    _, plain_sums = _train_one_epoch(runtime(**PLAIN), config, split)
    _, fast_sums = _train_one_epoch(runtime(**{**PLAIN, "channels_last": True}), config, split)
    # gradient norms pass through BatchNorm's cancellation: 3e-4 apart between the layouts, measured
    torch.testing.assert_close(fast_sums, plain_sums, rtol=1e-3, atol=1e-3)


def test_runtime_switches_are_checked(monkeypatch):
    monkeypatch.setenv("AI6103_DEVICE", "cpu")
    assert not runtime().cuda_graphs and runtime().autocast_dtype is None
    with pytest.raises(ValueError, match="CUDA"):
        runtime(cuda_graphs=True)
    monkeypatch.setenv("AI6103_EVAL_BATCH", "0")
    with pytest.raises(ValueError, match="EVAL_BATCH"):
        runtime()
    monkeypatch.setenv("AI6103_EVAL_BATCH", "500")
    assert runtime().eval_batch == 500
    monkeypatch.setenv("AI6103_COMPILE_MODE", "reduce-overhead")  # its own CUDA graphs would fight ours
    with pytest.raises(ValueError, match="AI6103_COMPILE_MODE must be one of default, max-autotune-no-cudagraphs"):
        runtime()


def test_benchmark_small_mode_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("AI6103_DEVICE", "cpu")
    path = Path(__file__).resolve().parent.parent / "bench" / "benchmark.py"
    spec = importlib.util.spec_from_file_location("benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    out = tmp_path / "results.json"
    records = benchmark.main(["--small", "--steps", "1", "--only", "usual,channels_last", "--out", str(out)])
    assert [r["pipeline"] for r in records] == ["usual: DataLoader + PIL, fp32, eager", "ours: + channels_last"]
    saved = json.loads(out.read_text())
    assert saved == records and all(r["small"] and r["train_images_per_second"] > 0 for r in saved)
    assert {"device", "torch", "date", "eval_images_per_second", "seconds_per_epoch_40k_10k",
            "peak_memory_mib"} <= set(saved[0])


def _bench_module(name: str, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "bench"))
    return importlib.import_module(name)


def test_whole_study_record_scales_each_training_call_to_the_full_profile(monkeypatch, tmp_path):
    """bench/study_record.py: set-up and first epoch as measured, the other epochs at the median of the later
    ones, 2 -> 15 and 6 -> 300 epochs (profile e2e -> full), the non-training time once; then bench/RESULTS.md's
    targets table reads that record, and its tables are rewritten between the markers only."""
    study_record = _bench_module("study_record", monkeypatch)
    results_table = _bench_module("results_table", monkeypatch)
    calls = [{"n_runs": 3, "epochs": 2, "compiled": False, "mixup_alpha": 0.0, "sigmoid_blocks": [], "device": "d",
              "data_seconds": 1.0, "build_seconds": 10.0, "epoch_seconds": [5.0, 3.0], "total_seconds": 19.0},
             {"n_runs": 1, "epochs": 6, "compiled": True, "mixup_alpha": 0.2, "sigmoid_blocks": [], "device": "d",
              "data_seconds": 1.0, "build_seconds": 30.0, "epoch_seconds": [4.0, 1.0, 1.0, 2.0, 1.0, 9.0],
              "total_seconds": 49.0}]
    record = study_record.study_record(calls, wall_seconds=100.0, profile_name="e2e")
    assert [c["full_seconds"] for c in record["training_calls"]] == [16.0 + 14 * 3.0, 35.0 + 299 * 1.0]
    assert record["full_study_gpu_seconds"] == 16.0 + 14 * 3.0 + 35.0 + 299 * 1.0 + (100.0 - 68.0)
    assert record["one_long_run_seconds_per_epoch"] == round((35.0 + 299) / 300, 3) and record["extrapolated"]
    with pytest.raises(ValueError, match="neither e2e's short"):
        study_record.study_record([{**calls[0], "epochs": 4}], 100.0, "e2e")
    one_process = study_record.study_record([{**c, "pid": 7, "runs": [f"run{i}"]} for i, c in enumerate(calls)],
                                            100.0, "e2e")  # the long run came second: it may reuse compiled code
    assert [(c["name"], c["first_in_process"]) for c in one_process["training_calls"]] == [("run0", True),
                                                                                           ("run1", False)]
    assert one_process["one_long_run_warm"] and not record.get("one_long_run_warm")  # said, not passed off as cold
    log = "\n".join([  # a study's log cut off in its second wave: the wave's second call is taken as its first
        "  wave 1: learning_rate", "    -> 1 run to train in 1 training call of 2 epochs",
        "  wave 2: lr_schedule", "    -> 2 runs to train in 2 training calls of 6 epochs",
        "bar 2/2 ...timing net-e2: data 1.0 s, build 10.0 s, 2 epochs 8.0 s (first 5.00 s, median 3.00 s)",
        "timing net-e6: data 1.0 s, build 30.0 s (compiled), 6 epochs 18.0 s (first 4.00 s, median 1.00 s)"])
    from_log = study_record.record_from_log(log, "e2e")
    assert [c["full_seconds"] for c in from_log["training_calls"]] == [16.0 + 14 * 3.0, 35.0 + 299, 35.0 + 299]
    assert "assumed" in from_log["training_calls"][2] and "(2 of 3 training calls measured)" in from_log["pipeline"]
    done = "\ndata: done in 4.0 s -> x\nlearning_rate: done in 6 s"
    notebooks = study_record.record_from_log(log + done, "e2e")
    assert notebooks["measured_overhead_seconds"] == 4.0 + 6.0 + 5.0 * 5  # the median for the five not reached

    record = {**record, "device": "NVIDIA H100 80GB HBM3", "torch": "2.11", "date": "2026-11-26T10:00:00"}
    usual = {"device": record["device"], "torch": "2.11", "date": "2026-11-26T09:00:00", "pipeline": "usual: x",
             "train_images_per_second": 5000.0, "seconds_per_epoch_40k_10k": 8.0}
    ours = {**usual, "pipeline": "ours", "seconds_per_epoch_40k_10k": 0.5}
    markdown = tmp_path / "RESULTS.md"
    markdown.write_text(f"before\n{results_table.BEGIN}\nold\n{results_table.END}\nafter\n")
    assert "side by side" not in results_table.generated([usual])  # a session cut off after its usual row
    records = results_table.merge([usual], [ours, record, ours, usual])
    assert records == [usual, ours, record]  # a record merged twice is kept once
    results_table.write_markdown(records, markdown)
    text = markdown.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    assert "| ≥ 10× the usual pipeline, side by side | 16.0× (8.00 → 0.50 s per run-epoch" in text
    assert f"| whole study ≤ 15 min (milestone) | {record['full_study_gpu_seconds'] / 60:.1f} min (extrapolated" in text


def _initial(config: RunConfig) -> dict:
    model = make_model(config, runtime(**PLAIN, device=torch.device("cpu")))
    return {k: v.float() for k, v in model.state_dict().items()}


def _update(state: dict, init: dict) -> torch.Tensor:
    """All trainable weights' change over the epoch, as one vector on the CPU (BN running statistics left out)."""
    return torch.cat([(state[k] - init[k]).flatten() for k in init if "running" not in k and "num_batches" not in k])


@needs_cuda
@pytest.mark.parametrize("mixup", [0.0, 0.2])
def test_cuda_graph_replays_the_eager_step(mixup, monkeypatch):
    """Same features, fp32, deterministic kernels: graph replays + an eager partial batch = the eager epoch."""
    monkeypatch.setenv("AI6103_DEVICE", "cuda")
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    config = RunConfig(batch_size=32, mixup_alpha=mixup, schedule="cosine", weight_decay=5e-4, lr=1e-3)
    split = DeviceSplit.random(2 * 32 + 16, torch.device("cuda"))  # two graph replays, then an eager partial batch
    init = _initial(config)
    graph_rt = runtime(**{**PLAIN, "fused_sgd": True, "cuda_graphs": True})
    eager, eager_sums = _train_one_epoch(dataclasses.replace(graph_rt, cuda_graphs=False), config, split)
    graph, graph_sums = _train_one_epoch(graph_rt, config, split)
    assert graph_sums[2] == eager_sums[2] == len(split)
    torch.testing.assert_close(graph_sums, eager_sums, rtol=1e-4, atol=1e-4)
    difference = _relative(_update(graph, init), _update(eager, init))
    assert difference < 1e-3, f"weight change differs by {difference:.2e}"


@needs_cuda
@pytest.mark.parametrize("mixup", [0.0, 0.2])
def test_fast_path_matches_plain_reference_step_on_cuda(mixup, monkeypatch):
    """bf16 + channels_last + fused SGD + CUDA graphs vs fp32 NCHW foreach eager: the same epoch within bf16.

    Compared: loss and accuracy sums (steps 2.. see the earlier steps' updates) and gradient norms. Not the
    weights: at initialisation the early layers' gradients are cancellation-dominated (BatchNorm), so bf16
    autocast alone moves one step's weight change by ~90% even on the CPU without any of our code
    (bench/RESULTS.md), while loss, accuracy and gradient norms agree to < 1e-3."""
    monkeypatch.setenv("AI6103_DEVICE", "cuda")
    config = RunConfig(batch_size=32, mixup_alpha=mixup, schedule="cosine", weight_decay=5e-4, lr=0.02)
    split = DeviceSplit.random(3 * 32 + 16, torch.device("cuda"))  # three graph replays and an eager partial batch
    plain, plain_sums = _train_one_epoch(runtime(**PLAIN), config, split)
    fast, fast_sums = _train_one_epoch(runtime(bf16=True, channels_last=True, fused_sgd=True, cuda_graphs=True),
                                       config, split)
    assert fast_sums[2] == plain_sums[2] == len(split)
    torch.testing.assert_close(fast_sums, plain_sums, rtol=3e-2, atol=3e-2)  # loss, accuracy, gradient norms


@needs_cuda
@pytest.mark.parametrize("options", [
    {"arch": "small_cnn", "dropout": 0.3},  # dropout's draws inside the replayed CUDA graph
    {"arch": "resnet18", "optimizer": "adamw", "weight_decay": 5e-4},  # Adam on the eager path, fused kernels
    {"arch": "mobilenet", "optimizer": "adam", "schedule": "step", "lr_step_epochs": 1},
], ids=["small_cnn-dropout-graph", "resnet18-adamw", "mobilenet-adam-step"])
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_options_beyond_the_brief_train_on_cuda(options, precision, monkeypatch):
    """The new options on the GPU's own path (graphs for SGD, eager for Adam; bf16, or fp16 with loss scaling): an
    epoch of finite losses whose loss sum agrees with the same epoch in plain fp32 eager steps (not the accuracy: on
    random labels a handful of correct guesses, one apart between precisions, measured on the CPU)."""
    monkeypatch.setenv("AI6103_DEVICE", "cuda")
    config = RunConfig(batch_size=32, lr=1e-3, **options)
    split = DeviceSplit.random(3 * 32 + 16, torch.device("cuda"))  # three full batches and a partial one
    _, plain_sums = _train_one_epoch(runtime(**PLAIN), config, split)
    _, fast_sums = _train_one_epoch(runtime(precision=precision, channels_last=True, fused_sgd=True, cuda_graphs=True,
                                            compile=False), config, split)
    assert fast_sums[2] == plain_sums[2] == len(split) and fast_sums.isfinite().all()
    if not config.dropout:  # with dropout the two epochs draw other masks: only finiteness is comparable
        torch.testing.assert_close(fast_sums[0], plain_sums[0], rtol=3e-2, atol=0.0)  # the epoch's loss sum


@needs_cuda
@pytest.mark.parametrize("n_models", [1, 3])
def test_graph_capture_leaves_the_models_untouched(n_models, monkeypatch):
    """Warm-up and capture run real steps; make_step must put weights, BN statistics and momentum back."""
    monkeypatch.setenv("AI6103_DEVICE", "cuda")
    rt = runtime(cuda_graphs=True, fused_sgd=True, compile=False)
    configs = [RunConfig(batch_size=32, lr=0.05 * (i + 1)) for i in range(n_models)]
    models = [make_model(config, rt) for config in configs]
    before = [{k: v.clone() for k, v in model.state_dict().items()} for model in models]
    optimizers = [make_optimizer(m.parameters(), c, rt.device, True) for m, c in zip(models, configs, strict=True)]
    sums = torch.zeros(n_models, 5, device=rt.device)
    watched = [dict(m.named_parameters())[configs[0].grad_norm_param] for m in models]
    make_step(stack_models(models), optimizers, watched, sums, rt, DeviceSplit.random(64, rt.device), 32)
    for model, saved in zip(models, before, strict=True):
        for name, value in model.state_dict().items():
            assert torch.equal(value, saved[name]), name
    assert all(torch.count_nonzero(s["momentum_buffer"]) == 0 for o in optimizers for s in o.state.values())
    assert torch.count_nonzero(sums) == 0


@needs_cuda
@pytest.mark.parametrize("mixup", [0.0, 0.2])
def test_stacked_fast_path_matches_each_run_alone_on_cuda(mixup, monkeypatch):
    """Three runs stacked into one graphed bf16 step vs each trained alone the same way: the same epoch for each
    run within bf16 tolerance (loss, accuracy and gradient-norm sums). Exact equality is tested in fp64 on the CPU
    (tests/test_core.py); here the convolution kernels differ (grouped vs single), so rounding does."""
    monkeypatch.setenv("AI6103_DEVICE", "cuda")
    torch.backends.cudnn.benchmark = False
    rt = runtime(bf16=True, channels_last=True, fused_sgd=True, cuda_graphs=True, compile=False)
    base = RunConfig(batch_size=32, mixup_alpha=mixup, lr=0.02, weight_decay=5e-4)
    configs = [base, dataclasses.replace(base, lr=0.04, schedule="cosine"), dataclasses.replace(base, weight_decay=0)]
    split = DeviceSplit.random(3 * 32 + 16, torch.device("cuda"))  # three graph replays and an eager partial batch

    def epoch(group):
        _, net, sums, step = fresh_step(group, rt, split)
        net.train()
        generator = torch.Generator(device=rt.device).manual_seed(0)
        train_epoch(step, split, group, [(generator, np.random.default_rng(0))], 0, rt)
        return sums.cpu()

    together = epoch(configs)
    alone = torch.cat([epoch([config]) for config in configs])
    assert torch.equal(together[:, 2], alone[:, 2])  # images seen
    loss_and_norms = [0, 3, 4]  # loss sum, gradient-norm sum, last gradient norm
    torch.testing.assert_close(together[:, loss_and_norms], alone[:, loss_and_norms], rtol=3e-2, atol=3e-2)
    # Correct predictions are counts: on random labels a bf16 rounding flips an argmax now and then (H100,
    # 2026-11-26: 1 and 2 of 112 images), which a relative tolerance on counts near zero cannot absorb.
    assert ((together[:, 1] - alone[:, 1]).abs() <= 2 + 0.02 * together[:, 2]).all()


def probe_measuring(monkeypatch, speeds: dict[int, float], by: str) -> list[int]:
    """Stand in for the speed probe (lib.running.cost._benchmark): `speeds[k]` training images/s for k = its argument
    `by` ("runs" stacked, or trainings "at_once"); returns the list of the k it is asked for, as they come."""
    from lib.running import cost

    measured = []

    def fake_benchmark(arch, batch_size, rt, runs=1, at_once=1):
        k = {"runs": runs, "at_once": at_once}[by]
        measured.append(k)
        return {"train_images_per_second": speeds[k], "eval_images_per_second": 1000.0, "device": "test"}

    monkeypatch.setattr(cost, "_benchmark", fake_benchmark)
    return measured


@pytest.mark.parametrize("speeds, n_runs, chosen", [
    ({1: 100, 2: 180, 3: 240}, 3, 3),  # stacking pays: the fastest stack
    ({1: 100, 2: 180, 3: 170}, 3, 2),
    ({1: 100, 2: 105, 3: 108}, 3, 1),  # under STACK_GAIN: one at a time
    ({1: 100, 2: 180, 3: 240}, 2, 2),  # never more than the runs there are
])
def test_auto_stacking_uses_the_measured_fastest_stack(speeds, n_runs, chosen, monkeypatch):
    from lib.running import cost

    monkeypatch.setenv("AI6103_STACK", "auto")
    measured = probe_measuring(monkeypatch, speeds, "runs")
    assert cost.runs_to_stack("mobilenetv2", 128, n_runs) == chosen
    assert cost.runs_to_stack("mobilenetv2", 128, n_runs) == chosen
    assert sorted(measured) == list(range(1, n_runs + 1))  # each stack size timed once, then cached
    monkeypatch.setenv("AI6103_STACK", "2")
    assert cost.runs_to_stack("mobilenetv2", 128, n_runs) == 2  # a fixed number is taken as given
    monkeypatch.setenv("AI6103_STACK", "0")
    with pytest.raises(ValueError, match="AI6103_STACK must be auto or a positive number"):
        cost.runs_to_stack("mobilenetv2", 128, n_runs)


def test_stacked_throughput_benchmark_runs_on_cpu(monkeypatch):
    """The real measurement behind `auto`, small on the CPU: a stack of 2 reports images/s summed over runs."""
    from lib.running import cost

    monkeypatch.setenv("AI6103_DEVICE", "cpu")
    speed = cost._benchmark("mobilenet", 8, runtime(), runs=2)
    assert speed["train_images_per_second"] > 0 and speed["eval_images_per_second"] > 0


def test_plan_speed_reads_runs_trained_the_same_way(monkeypatch, tmp_path):
    """A stacked run's rate estimates stacks, a lone run's estimates lone runs, a batch size its own; the stacking
    decision itself uses the benchmark only (finished runs mix compiled and uncompiled rates)."""
    from lib.core import paths
    from lib.running import cost

    monkeypatch.setenv("AI6103_STACK", "auto")
    device = runtime().describe()
    for name, together, rate, batch in [("alone", 1, 100.0, 128), ("stacked", 3, 250.0, 128), ("old", None, 120.0, 128),
                                        ("big batch", 1, 400.0, 256)]:
        folder = paths.runs_dir() / name
        folder.mkdir(parents=True)
        (folder / "env.json").write_text(json.dumps({"device": device}))
        (folder / "summary.json").write_text(json.dumps({"config": {"arch": "mobilenetv2", "batch_size": batch}}))
        row = {"epoch": 1, "train_images_per_second": rate, **({"runs_together": together} if together else {})}
        (folder / "metrics.csv").write_text(",".join(row) + "\n" + ",".join(str(v) for v in row.values()) + "\n")
    monkeypatch.setattr(cost, "_benchmark", lambda arch, batch, rt, runs=1, at_once=1: {
        "train_images_per_second": {1: 50.0, 2: 52.0, 3: 54.0}[runs], "eval_images_per_second": 500.0})
    assert cost.throughput("mobilenetv2", 128, 1)["train_images_per_second"] == 110.0  # median of alone and old
    assert cost.throughput("mobilenetv2", 128, 3)["train_images_per_second"] == 250.0
    assert cost.throughput("mobilenetv2", 256, 1)["train_images_per_second"] == 400.0  # each batch size its own
    assert cost.runs_to_stack("mobilenetv2", 128, 3) == 1  # 54 / 50 < STACK_GAIN, whatever the stored runs say


def _probe_returning(monkeypatch, rates: list[float]) -> list[float]:
    """Stand in for the speed probe: each call returns the next of `rates` images/s (the list shrinks as it is
    used); nothing this process measured before, uncached, is kept."""
    from lib.running import cost

    monkeypatch.setattr(cost, "_NOT_CACHED", {})
    monkeypatch.setattr(cost, "_benchmark", lambda arch, batch, rt, runs=1, at_once=1: {
        "train_images_per_second": rates.pop(0), "eval_images_per_second": 500.0, "device": "test"})
    return rates


def test_a_probe_measured_while_other_runs_train_here_is_not_cached(monkeypatch):
    """Another live process here holds an unfinished run's lock: the probe warns, is used by this process only and
    not cached; once that run has finished, the next process's probe is cached."""
    import os
    import socket

    from lib.core import paths
    from lib.running import cost

    run = paths.runs_dir() / "training"
    run.mkdir(parents=True)
    # as lib.running.store.ProcessLock writes it; alive: the process that started this one
    (run / "lock").write_text(f"pid {os.getppid()} on {socket.gethostname()} since 2026-12-04 12:00:00 (make all)")
    rates = _probe_returning(monkeypatch, [5.0, 79.0])
    with pytest.warns(UserWarning, match=f"ran while pid {os.getppid()} on .* trained here: 5 training images/s"):
        assert cost.benchmarked()["train_images_per_second"] == 5.0
    assert cost.benchmarked()["train_images_per_second"] == 5.0 and rates == [79.0]  # measured once per process
    assert not cost._throughput_file().exists()
    (run / "summary.json").write_text("{}")  # that run has finished: its holder trains no more
    monkeypatch.setattr(cost, "_NOT_CACHED", {})  # the next process
    assert cost.benchmarked()["train_images_per_second"] == 79.0
    assert cost._read_throughput(cost._throughput_file())  # cached


@pytest.mark.parametrize("first, again, remeasured", [
    (5.0, 79.0, True),  # 16x off the finished runs: measured again, and kept once it agrees
    (60.0, 79.0, False),  # within 2x: kept
    (5.0, 6.0, True),  # measured again once; still off, it is kept until the finished runs' speed changes
])
def test_a_cached_probe_far_from_the_finished_runs_is_measured_again(monkeypatch, first, again, remeasured):
    from lib.core import paths
    from lib.running import cost

    rates = _probe_returning(monkeypatch, [first, again])
    assert cost.benchmarked()["train_images_per_second"] == first  # no finished runs yet: cached as it is
    run = paths.runs_dir() / "finished"
    run.mkdir()
    (run / "env.json").write_text(json.dumps({"device": runtime().describe()}))
    (run / "summary.json").write_text(json.dumps({"config": {"arch": "mobilenetv2", "batch_size": 128}}))
    (run / "metrics.csv").write_text("epoch,train_images_per_second,runs_together\n1,79.0,1\n")
    for _ in range(2):
        assert cost.benchmarked()["train_images_per_second"] == (again if remeasured else first)
    assert rates == ([] if remeasured else [again])


@pytest.mark.slow
@pytest.mark.parametrize("n_models", [1, 3])
def test_stacked_network_compiles_as_one_graph(n_models):
    """What torch.compile sees on the GPU, traced on the CPU: the stacked network (BatchNorm buffers shared as
    views with the source models) is one graph with no break, and a compiled training forward/backward gives
    the eager logits, gradients and running statistics. `aot_eager` runs Dynamo and AOT autograd's
    functionalization, the device-independent part of compilation, without generating kernels."""
    torch.manual_seed(0)
    eager_models = [make_model(RunConfig(sigmoid_blocks=(4, 5)), runtime(**PLAIN)) for _ in range(n_models)]
    compiled_models = [copy.deepcopy(m) for m in eager_models]
    eager, compiled = stack_models(eager_models), stack_models(compiled_models)
    x = torch.randn(6, 3, 32, 32)
    logits = eager(x)
    compiled_logits = torch.compile(compiled, backend="aot_eager", fullgraph=True)(x)
    torch.testing.assert_close(compiled_logits, logits, rtol=0, atol=1e-6)
    logits.square().mean().backward()
    compiled_logits.square().mean().backward()
    for eager_model, compiled_model in zip(eager_models, compiled_models, strict=True):
        for (name, p), q in zip(eager_model.named_parameters(), compiled_model.parameters(), strict=True):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-7, msg=name)
        for (name, b), c in zip(eager_model.named_buffers(), compiled_model.buffers(), strict=True):
            torch.testing.assert_close(c, b, rtol=1e-5, atol=1e-7, msg=name)
        assert int(compiled_model.layers[8].bn1.num_batches_tracked) == 1  # the update reached the model's view


def _max_relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| over max |b|: the largest elementwise difference relative to the tensor's scale."""
    return ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12)).item()


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_compiled_stack_matches_each_run_alone_in_eager(device, tiny_config, monkeypatch):
    """The fast path as the study uses it (three runs stacked, compiled) against each run trained alone in eager
    mode: logits and gradients after one step within 2e-2 (max relative) in fp32, and the training loss after
    3 epochs within 2 % at the fast path's own precision. On the CPU torch.compile runs `aot_eager` (Dynamo and
    AOT autograd, what Inductor compiles on a GPU); on CUDA the real thing: Inductor, channels_last, CUDA graphs,
    bf16 for the epochs. The one-step check is in fp32 without TF32 because bf16 rounding alone moves the logits
    at initialisation by ~10 % max-relative (H100, 2026-11-26: 9.5 % stacked+compiled vs alone; on the CPU two
    memory layouts of the same eager bf16 model differ by 7 %), which would hide any error of the stack."""
    train_module = importlib.import_module("lib.training.train")  # the module; lib.train is the function
    step_module = importlib.import_module("lib.training.step")
    monkeypatch.setenv("AI6103_DEVICE", device)
    if device == "cpu":
        fast = runtime(compile=True, compile_backend="aot_eager", compile_min_epochs=1)
    else:
        fast = runtime(compile=True, compile_min_epochs=1, stack=3)
    eager = dataclasses.replace(fast, compile=False, cuda_graphs=False)
    base = dataclasses.replace(tiny_config, epochs=3, weight_decay=5e-4, train_subset=160, batch_size=64,
                               val_subset=64,  # 2 full steps + 1 partial an epoch
                               arch="mobilenet" if device == "cpu" else "mobilenetv2")  # v1 traces 3x faster
    configs = [base, dataclasses.replace(base, lr=0.1, schedule="cosine"), dataclasses.replace(base, weight_decay=0)]

    exact = dataclasses.replace(fast, autocast_dtype=None)  # fp32 for the one-step check
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # runtime() sets them again
    models, optimizers, watched = train_module._build(configs, exact)
    alone = [copy.deepcopy(m) for m in models]
    split = DeviceSplit.random(base.batch_size, exact.device)
    x, y = split.normalize(split.images).contiguous(memory_format=step_module.batch_layout(exact)), split.labels
    stacked_logits = step_module.compiled_net(stack_models(models), exact)(x).float()
    alone_logits = torch.stack([m(x) for m in alone]).float()
    assert _max_relative(stacked_logits, alone_logits) < 2e-2
    step_module.mixup_loss(stacked_logits, y, y, 1.0).sum().backward()
    step_module.mixup_loss(alone_logits, y, y, 1.0).sum().backward()
    for model, reference in zip(models, alone, strict=True):  # over all of a model's gradient elements at once:
        # at initialisation BatchNorm's weight gradients are sums that cancel to ~1e-6 of their terms, so any two
        # summation orders (a grouped vs a plain convolution) differ there by percents even in fp32
        gradient = torch.cat([p.grad.flatten() for p in model.parameters()])
        assert _max_relative(gradient, torch.cat([q.grad.flatten() for q in reference.parameters()])) < 2e-2

    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = fast.device.type == "cuda"  # as lib
    together = train_module.train_together(configs, progress=False, rt=fast)
    for config, history in zip(configs, together, strict=True):
        reference = train_module.train(config, progress=False, rt=eager)
        assert history[-1]["train_loss"] == pytest.approx(reference[-1]["train_loss"], rel=2e-2)
        assert history[-1]["runs_together"] == 3


def test_plan_set_up_is_what_earlier_processes_paid_here(monkeypatch):
    """The plan adds each notebook's one-off set-up (compilation, autotuning, capture) as the timing log measured it
    on this device: the first call of each process only, compiled and uncompiled apart; nothing when none is logged."""
    from lib.running import cost

    assert cost.setup_seconds(compiled=False) == 0.0
    device = runtime().describe()

    def call(pid, build, epochs, compiled=False, **other):
        return json.dumps({"pid": pid, "device": device, "compiled": compiled, "data_seconds": 1.0,
                           "build_seconds": build, "epoch_seconds": epochs, **other})

    cost.timing_log().parent.mkdir(parents=True)
    cost.timing_log().write_text("\n".join([
        call(1, 20.0, [12.0, 2.0, 2.0]), call(1, 0.1, [2.0, 2.0]),  # the second call of process 1: no set-up
        call(2, 40.0, [22.0, 2.0, 2.0]), call(3, 50.0, [30.0, 1.5, 1.5], compiled=True),
        call(4, 99.0, [99.0, 2.0], device="another GPU"), "{cut short"]) + "\n")
    assert cost.setup_seconds(compiled=False) == (31.0 + 61.0) / 2  # data + build + first epoch's excess
    assert cost.setup_seconds(compiled=True) == 1.0 + 50.0 + 28.5


# ---------------------------------------------------------------- a speed probe that raises counts as no gain

PROBE_ERROR = "RuntimeError: CUDA error: out of memory while capturing"  # the two-line error below, on one line


@pytest.fixture
def failing_probe(monkeypatch):
    """`failing_probe(fails)`: the speed probe (lib.running.cost._benchmark) raises a two-line RuntimeError where
    `fails(runs, at_once)`, else trains runs x at_once x 100 images/s; returns the (runs, at_once) it is asked
    for. Nothing failed or was measured in this process before."""
    from lib.running import cost

    for name, empty in [("_PROBES_FAILED", {}), ("_FAILED_KEYS", set()), ("_NOT_CACHED", {})]:
        monkeypatch.setattr(cost, name, empty)

    def set_up(fails=lambda runs, at_once: True) -> list[tuple[int, int]]:
        asked = []

        def probe(arch, batch_size, rt, runs=1, at_once=1):
            asked.append((runs, at_once))
            if fails(runs, at_once):
                raise RuntimeError("CUDA error: out of memory\nwhile capturing")
            return {"train_images_per_second": 100.0 * runs * at_once, "eval_images_per_second": 1000.0,
                    "device": "test"}

        monkeypatch.setattr(cost, "_benchmark", probe)
        return asked

    return set_up


@pytest.mark.parametrize("feature, ask, fails, fallback, instead", [
    # stacks of 1 and 2 measured (2 would pay), 3 raises: one run at a time all the same
    ("stack", lambda cost: cost.runs_to_stack("mobilenetv2", 128, 3), lambda runs, at_once: runs == 3, 1,
     "one run at a time"),
    ("concurrent", lambda cost: cost.trainings_at_once("mobilenetv2", 128, 4), lambda runs, at_once: at_once == 2, 1,
     "one training at a time"),
    ("throughput", lambda cost: cost.throughput("mobilenetv2", 128)["train_images_per_second"],
     lambda runs, at_once: True, float("inf"), "the plan's estimates count 0 s for the training it would time"),
    ("throughput", lambda cost: cost.at_once_gain("mobilenetv2", 128, 2), lambda runs, at_once: at_once == 2, 1.0,
     "the plan's estimate counts no gain for 2 trainings at once"),
], ids=["stack", "concurrent", "throughput", "at_once_gain"])
def test_a_speed_probe_that_raises_counts_as_no_gain_said_in_one_line(
        failing_probe, monkeypatch, capsys, feature, ask, fails, fallback, instead):
    from lib.running import cost

    monkeypatch.setenv("AI6103_STACK", "auto")
    monkeypatch.setenv("AI6103_CONCURRENT", "auto")
    asked = failing_probe(fails)
    assert ask(cost) == fallback
    assert capsys.readouterr().out == (f"speed probe of {feature} ({cost.PROBE_SWITCHES[feature]}) failed "
                                       f"({PROBE_ERROR}): {instead}\n")
    assert cost.probes_failed() == {feature: PROBE_ERROR}
    probed = len(asked)
    assert ask(cost) == fallback and len(asked) == probed  # not tried again in this process, nor said again
    assert capsys.readouterr().out == ""


def test_a_tiny_study_whose_every_probe_raises_trains_on_to_the_same_numbers(
        failing_probe, tiny_config, tiny_model, monkeypatch, tmp_path, capsys):
    """Stacking and trainings at once asked for (`auto`), every probe raising: the plan and two stackable runs go
    on one at a time, one line per probe, each run's env.json records them, and the runs equal those trained
    one at a time by choice."""
    import pandas as pd

    from lib.running.runs import run_or_load_many
    from lib.studies import study

    configs = [dataclasses.replace(tiny_config, grad_norm_param="conv.weight", lr=lr) for lr in (0.05, 0.1)]
    monkeypatch.setenv("AI6103_RUNS_DIR", str(tmp_path / "one_at_a_time"))
    chosen = run_or_load_many(configs, progress=False)  # the default: no probe
    failing_probe()
    for variable, value in [("AI6103_RUNS_DIR", str(tmp_path / "probed")), ("AI6103_STACK", "auto"),
                            ("AI6103_CONCURRENT", "auto")]:
        monkeypatch.setenv(variable, value)
    capsys.readouterr()
    study.print_section_plan("learning_rate", {"lr=0.05": configs[0], "lr=0.1": configs[1]})
    probed = run_or_load_many(configs, progress=False)
    said = [line.split(" (")[0] for line in capsys.readouterr().out.splitlines() if "speed probe" in line]
    assert said == ["speed probe of stack", "speed probe of throughput", "speed probe of concurrent"]
    timing = ["epoch_seconds", "train_images_per_second"]  # differ between any two runs
    for alone, fell_back in zip(chosen, probed, strict=True):
        assert fell_back.history["runs_together"].max() == 1 and fell_back.history["trainings_at_once"].max() == 1
        pd.testing.assert_frame_equal(alone.history.drop(columns=timing), fell_back.history.drop(columns=timing))
        assert json.loads((fell_back.path / "env.json").read_text())["speed_probes_failed"] == {
            "stack": PROBE_ERROR, "throughput": PROBE_ERROR, "concurrent": PROBE_ERROR}
        assert "speed_probes_failed" not in json.loads((alone.path / "env.json").read_text())

"""Device classes (docs/devices.md "Device classes"): what the workbook does on a recent NVIDIA GPU, an older one,
an Apple GPU and the CPU, the fp16 path with loss scaling, and what happens when device memory runs out.

No GPU is needed: the device queries lib.nets.device makes (torch.cuda's capability, name, architectures and free
memory, torch.backends.mps) are faked, and the fp16 training path runs on the CPU with a tiny model in place of
MobileNet (CPU fp16 convolutions of the real models take seconds per step). The one CUDA-only test skips without a GPU.
"""
from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np
import pytest
import torch

from lib.core.checkpoint import load_state
from lib.nets import device
from lib.nets.data import DeviceSplit
from lib.nets.device import build_runs_on, runtime
from lib.running import cost
from lib.studies import study
from lib.training.schedule import lr_at

TRAIN = sys.modules["lib.training.train"]  # the module (lib.train the attribute is the function)
STEP = sys.modules["lib.training.step"]
CUDA_13_BUILD = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]  # torch 2.14 + CUDA 13.0's arch list
CUDA_12_6_BUILD = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]  # the legacy build's


@pytest.fixture
def fake_device(monkeypatch):
    """`fake_device(name, capability, free_gib, arch_list)` makes lib.nets.device see that CUDA GPU;
    `fake_device(mps=True)` an Apple GPU. AI6103_DEVICE is unset (auto); the global switches runtime() sets on CUDA are
    put back after."""
    switches = torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32

    def fake(name="NVIDIA H100 80GB HBM3", capability=(9, 0), free_gib=79.0, arch_list=CUDA_13_BUILD, mps=False):
        monkeypatch.delenv("AI6103_DEVICE", raising=False)
        free = int(free_gib * 2**30)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: not mps)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: arch_list)
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 2 * free))
        monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 0)
        monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 0)
        monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: free)
        monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 0)
        device.free_memory_mib.cache_clear()  # measured once per process: this "process" has a new device

    yield fake
    device.free_memory_mib.cache_clear()
    torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = switches


# ---------------------------------------------------------------- the device classes (docs/devices.md's table)


def test_recent_nvidia_gpu_gets_bf16_and_every_verified_speed_feature(fake_device):
    fake_device("NVIDIA H100 80GB HBM3", (9, 0), free_gib=79.0)
    rt = runtime()
    assert rt.device.type == "cuda" and rt.autocast_dtype == torch.bfloat16 and not rt.scales_loss
    assert rt.channels_last and rt.fused_sgd and rt.cuda_graphs and rt.compile
    assert rt.stack == 1 and rt.concurrent == 1  # never verified on a GPU (docs/speed.md): one at a time
    assert rt.eval_batch == 2000 and rt.runs_that_fit(128) > 3
    assert [n.split(":")[0] for n in rt.notes] == ["memory"]  # nothing turned off, the memory plan stated
    assert "evaluation batch 2000 (~6.4 GiB with one run)" in rt.notes[0]


@pytest.mark.parametrize("name, capability, arch_list, compiles", [
    ("Tesla T4", (7, 5), CUDA_13_BUILD, True),  # free Colab / Kaggle
    ("Tesla V100-SXM2-16GB", (7, 0), CUDA_12_6_BUILD, True),  # a lab's V100, with the CUDA 12.6 build
    ("Tesla P100-PCIE-16GB", (6, 0), CUDA_12_6_BUILD, False),  # Kaggle's P100: Triton does not support it
])
def test_older_nvidia_gpu_gets_fp32_and_fp16_with_loss_scaling_on_request(
        fake_device, monkeypatch, name, capability, arch_list, compiles):
    """fp16 with loss scaling has not run on a GPU yet (docs/speed.md): fp32 unless AI6103_PRECISION=fp16."""
    fake_device(name, capability, free_gib=14.5, arch_list=arch_list)
    rt = runtime()
    assert rt.autocast_dtype is None and not rt.scales_loss and not rt.loss_scaler().is_enabled()
    assert rt.cuda_graphs and rt.fused_sgd and rt.compile == compiles
    assert rt.notes[0] == (f"fp32: bf16 needs compute capability >= 8.0, this GPU has {capability[0]}.{capability[1]}; "
                           f"fp16 with loss scaling (AI6103_PRECISION=fp16) has not been verified on a GPU yet "
                           f"(docs/speed.md)")
    assert any(n.startswith("torch.compile off: Triton") for n in rt.notes) != compiles
    assert rt.describe().startswith(f"{name} (fp32, ")
    monkeypatch.setenv("AI6103_PRECISION", "fp16")
    rt = runtime()
    assert rt.autocast_dtype == torch.float16 and rt.scales_loss and rt.loss_scaler().is_enabled()
    assert rt.notes[0] == "fp16 autocast with dynamic loss scaling (AI6103_PRECISION=fp16)"
    assert rt.describe().startswith(f"{name} (fp16, ")


def test_unverified_speed_features_are_opt_in_on_cuda(fake_device, monkeypatch):
    """Stacking and trainings at once, one at a time by default on a GPU too: `auto` measures, k fixes."""
    fake_device("NVIDIA H100 80GB HBM3", (9, 0))
    assert (runtime().stack, runtime().concurrent) == (1, 1)
    assert "stacked" not in runtime().describe() and "at once" not in runtime().describe()
    monkeypatch.setenv("AI6103_STACK", "auto")
    monkeypatch.setenv("AI6103_CONCURRENT", "auto")
    assert (runtime().stack, runtime().concurrent) == (None, None)
    assert runtime().describe().endswith("runs stacked: auto, trainings at once: auto)")
    monkeypatch.setenv("AI6103_STACK", "2")
    monkeypatch.setenv("AI6103_CONCURRENT", "3")
    assert (runtime().stack, runtime().concurrent) == (2, 3)


def test_apple_gpu_is_found_and_runs_eager_in_fp32(fake_device, monkeypatch):
    fake_device(mps=True, free_gib=10.0)
    rt = runtime()
    assert rt.device.type == "mps" and rt.autocast_dtype is None and not rt.scales_loss
    assert not (rt.channels_last or rt.fused_sgd or rt.cuda_graphs or rt.compile) and rt.stack == 1
    assert rt.describe() == f"Apple GPU (MPS) (fp32, eval batch {rt.eval_batch})"
    assert any(n.startswith("Apple GPU (MPS): eager steps") for n in rt.notes)
    monkeypatch.setenv("AI6103_DEVICE", "mps")
    assert runtime().device.type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="AI6103_DEVICE=mps but PyTorch sees no Apple GPU"):
        runtime()


def test_cpu_runs_fp32_one_run_at_a_time(fake_device, monkeypatch):
    fake_device(mps=True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rt = runtime()
    assert rt.device.type == "cpu" and rt.autocast_dtype is None and rt.stack == 1 and rt.eval_batch == 2000
    assert rt.free_memory_mib is None and rt.runs_that_fit(128) is None and rt.notes == ()


def test_precision_switch_overrides_the_choice_and_is_checked(fake_device, monkeypatch):
    fake_device("NVIDIA H100 80GB HBM3", (9, 0))
    for text, dtype in [("fp32", None), ("fp16", torch.float16), ("bf16", torch.bfloat16)]:
        monkeypatch.setenv("AI6103_PRECISION", text)
        assert runtime().autocast_dtype == dtype
    monkeypatch.delenv("AI6103_PRECISION")
    monkeypatch.setenv("AI6103_BF16", "0")  # the older switch still means fp32
    assert runtime().autocast_dtype is None
    monkeypatch.setenv("AI6103_PRECISION", "half")
    with pytest.raises(ValueError, match="^AI6103_PRECISION must be auto, bf16, fp16 or fp32, got 'half'$"):
        runtime()


# ---------------------------------------------------------------- GPUs this PyTorch build cannot run


@pytest.mark.parametrize("capability, arch_list, runs", [
    ((9, 0), CUDA_13_BUILD, True), ((8, 9), CUDA_13_BUILD, True),  # an RTX 4090 runs sm_86 code
    ((12, 1), CUDA_13_BUILD, True), ((7, 0), CUDA_13_BUILD, False), ((6, 1), CUDA_13_BUILD, False),
    ((6, 1), CUDA_12_6_BUILD, True), ((10, 3), ["sm_90", "compute_90"], True),  # PTX is compiled when loaded
    ((8, 0), ["sm_86"], False),  # a binary runs on the same major with a minor at least its own only
])
def test_build_runs_on_follows_cuda_binary_compatibility(capability, arch_list, runs):
    assert build_runs_on(capability, arch_list) == runs


@pytest.mark.parametrize("name, capability", [("Tesla P100-PCIE-16GB", (6, 0)), ("Tesla V100-SXM2-16GB", (7, 0))])
def test_gpu_the_build_cannot_run_fails_in_one_line_naming_it_and_what_to_install(fake_device, name, capability):
    fake_device(name, capability, arch_list=CUDA_13_BUILD)
    with pytest.raises(RuntimeError) as error:
        runtime()
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{name} (compute capability {capability[0]}.")
    assert "--index-url https://download.pytorch.org/whl/cu126" in message and "AI6103_DEVICE=cpu" in message


# ---------------------------------------------------------------- memory-aware defaults


def test_small_gpu_memory_chooses_a_smaller_evaluation_batch_and_stack(fake_device, monkeypatch):
    """An 8 GB card (7.4 GiB free): batch 2000 would not fit beside a training run, 1000 does; at most 2 runs."""
    fake_device("NVIDIA GeForce RTX 3070", (8, 6), free_gib=7.4)
    rt = runtime()
    assert rt.eval_batch == 1000 and rt.runs_that_fit(128) == 2 and rt.runs_that_fit(256) == 1
    assert rt.notes == ("memory: 7.4 GiB free, 80% planned: evaluation batch 1000 (2000 would need ~6.4 GiB); "
                        "at most 2 runs of batch 128 per stack (~1.2 GiB each)",)
    monkeypatch.setenv("AI6103_STACK", "3")
    assert cost.runs_to_stack("mobilenetv2", 128, 3) == 2  # never more than fit
    monkeypatch.setenv("AI6103_CONCURRENT", "4")  # each training at once evaluates too: 1.2 + 2.6 GiB
    assert cost.trainings_at_once("mobilenetv2", 128, 3) == 1
    monkeypatch.setenv("AI6103_EVAL_BATCH", "250")
    assert runtime().eval_batch == 250 and "evaluation batch 250 (AI6103_EVAL_BATCH)" in runtime().notes[0]
    assert cost.trainings_at_once("mobilenetv2", 128, 4) == 3  # 1.2 + 0.7 GiB each
    monkeypatch.delenv("AI6103_EVAL_BATCH")
    monkeypatch.setenv("AI6103_PRECISION", "fp32")  # twice the memory per image
    assert runtime().eval_batch == 500


def test_plan_estimates_an_unmeasured_device_by_measuring_it_and_prints_the_choices(
        fake_device, tiny_config, monkeypatch, capsys):
    """A device without finished runs or a cached measurement: the plan's estimate is this device's quick benchmark
    (lib.running.cost._benchmark, faked here), no figure of another GPU; the device's choices are printed with it."""
    fake_device("Tesla T4", (7, 5), free_gib=14.5)
    speed = {"train_images_per_second": 100.0, "eval_images_per_second": 1000.0, "device": "Tesla T4 (fp32, ...)"}
    measured = []
    monkeypatch.setattr(cost, "_benchmark",
                        lambda arch, batch, rt, runs=1, at_once=1: measured.append(rt.describe()) or speed)
    total = study.print_section_plan("learning_rate", {"lr=0.05": tiny_config})
    assert measured == [runtime().describe()] and measured[0].startswith("Tesla T4 (fp32")
    images = tiny_config.train_subset / 100.0 + tiny_config.val_subset / 1000.0  # seconds an epoch
    assert total == pytest.approx(tiny_config.epochs * images)  # set-up: not measured yet
    out = capsys.readouterr().out
    assert "  fp32: bf16 needs compute capability >= 8.0, this GPU has 7.5" in out
    assert "  memory: 14.5 GiB free, 80% planned: evaluation batch 1000" in out  # fp32: 5.4 MiB an image


# ---------------------------------------------------------------- the fp16 path, on the CPU with a tiny model


@pytest.fixture
def tiny_runs(tiny_config, tiny_model):
    """The tiny model in place of the architectures; a config of 3 steps per epoch (the last partial) for it."""
    return dataclasses.replace(tiny_config, grad_norm_param="conv.weight", batch_size=80, epochs=3,
                               train_subset=192, val_subset=64,
                               schedule="cosine", mixup_alpha=0.2)


@pytest.fixture
def overflowing_fp16(monkeypatch):
    """fp16 on the CPU with a loss scale that overflows now and then: it starts far too high (2^24: the tiny model's
    fp16 gradients overflow above ~2^13) and doubles after every good step, so steps are skipped in every epoch."""
    monkeypatch.setattr(device, "LOSS_SCALE_INIT", 2.0**24)
    monkeypatch.setattr(device, "LOSS_SCALE_GROWTH_INTERVAL", 1)
    return runtime(precision="fp16")


def test_fp16_skips_overflowed_steps_without_moving_the_schedule(tiny_runs, overflowing_fp16, monkeypatch):
    """Every step of an fp16 run uses lr_at(its index) whether or not earlier steps were skipped; a skipped step
    leaves the weights as they were; an epoch's gradient norm is the mean over the steps whose watched gradient was
    finite (an overflow elsewhere in the model skips a step whose watched gradient was measured)."""
    calls, norms, real_step = [], [], STEP.sgd_step

    def recorded(net, optimizers, watched, x, y, y_b, lam, sums, rt, scalers):
        before = [p.detach().clone() for p in optimizers[0].param_groups[0]["params"]]
        scale = scalers[0].get_scale()
        real_step(net, optimizers, watched, x, y, y_b, lam, sums, rt, scalers)
        unchanged = all(torch.equal(a, p) for a, p in zip(before, optimizers[0].param_groups[0]["params"], strict=True))
        calls.append((optimizers[0].param_groups[0]["lr"], scalers[0].get_scale() < scale, unchanged))
        norms.append(watched[0].grad.float().norm().item())  # the true (unscaled) gradient's; inf on overflow

    monkeypatch.setattr(STEP, "sgd_step", recorded)
    [history] = TRAIN.train_together([tiny_runs], progress=False, rt=overflowing_fp16)
    total = tiny_runs.epochs * 3
    assert [lr for lr, _, _ in calls] == [lr_at(i, total, tiny_runs.lr, tiny_runs.schedule) for i in range(total)]
    skipped = [overflowed for _, overflowed, _ in calls]
    assert skipped[:2] == [True, True] and 0 < sum(skipped[2:]) < total - 2  # skips early and later, not always
    assert all(unchanged for _, overflowed, unchanged in calls if overflowed)
    assert not any(unchanged for _, overflowed, unchanged in calls if not overflowed)
    assert all(np.isfinite(row["train_loss"]) for row in history)
    assert not all(map(math.isfinite, norms))  # some overflows reached the watched gradient (inf or nan)
    for epoch, row in enumerate(history):  # 3 steps an epoch: the mean of the finite norms (none: not a number)
        kept = [norm for norm in norms[3 * epoch:3 * epoch + 3] if math.isfinite(norm)]
        assert row["grad_norm_mean"] == pytest.approx(np.mean(kept) if kept else math.nan, nan_ok=True, rel=1e-6)


@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused"])
def test_fp16_resumed_run_equals_the_uninterrupted_one(tiny_runs, overflowing_fp16, tmp_path, monkeypatch, fused):
    """Interrupted after epoch 1 and resumed: the same history and weights as uninterrupted, the loss scale
    included (the fused SGD takes the overflow flag as a tensor, as in the CUDA graph). A checkpoint without the
    scale (older ones) still resumes, with a fresh scale, and then differs: the scale is part of the state."""
    rt = dataclasses.replace(overflowing_fp16, fused_sgd=fused)
    [uninterrupted] = TRAIN.train_together([tiny_runs], [tmp_path / "uninterrupted"], progress=False, rt=rt)
    real_save = sys.modules["lib.core.checkpoint"].save

    def save_then_stop(*args):
        real_save(*args)
        raise KeyboardInterrupt  # a Ctrl-C right after epoch 1's checkpoint

    monkeypatch.setattr(sys.modules["lib.core.checkpoint"], "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        TRAIN.train_together([tiny_runs], [tmp_path / "resumed"], progress=False, rt=rt)
    monkeypatch.setattr(sys.modules["lib.core.checkpoint"], "save", real_save)
    state = load_state(tmp_path / "resumed")
    assert state["epoch"] == 1 and 0 < state["scaler"]["scale"] < 2.0**24
    torch.save({k: v for k, v in state.items() if k != "scaler"}, tmp_path / "old-format.pt")
    [resumed] = TRAIN.train_together([tiny_runs], [tmp_path / "resumed"], progress=False, rt=rt)
    assert _metrics(resumed) == _metrics(uninterrupted)
    weights = load_state(tmp_path / "resumed")["model"]
    for name, value in load_state(tmp_path / "uninterrupted")["model"].items():
        assert torch.equal(weights[name], value), name

    old = tmp_path / "old"
    old.mkdir()
    (tmp_path / "old-format.pt").rename(old / "checkpoint.pt")
    [fresh_scale] = TRAIN.train_together([tiny_runs], [old], progress=False, rt=rt)
    assert len(fresh_scale) == tiny_runs.epochs and _metrics(fresh_scale) != _metrics(uninterrupted)


def _metrics(history: list[dict]) -> list[tuple]:
    """What two runs must share, NaN as a value (an epoch whose every step overflowed has no gradient norm)."""
    return [tuple("nan" if math.isnan(value) else value for value in
                  (row["lr"], row["train_loss"], row["val_loss"], row["grad_norm_mean"])) for row in history]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_graph_replay_equals_eager_with_overflows_on_gpu(tiny_runs, monkeypatch):
    """On CUDA the fp16 step captured in the CUDA graph skips and rescales as the eager step does."""
    monkeypatch.setenv("AI6103_DEVICE", "cuda")
    monkeypatch.setattr(device, "LOSS_SCALE_INIT", 2.0**24)
    monkeypatch.setattr(device, "LOSS_SCALE_GROWTH_INTERVAL", 1)
    graph = runtime(precision="fp16", compile=False, channels_last=False)
    results = [TRAIN.train_together([tiny_runs], progress=False, rt=rt)[0]
               for rt in (graph, dataclasses.replace(graph, cuda_graphs=False))]
    for row_graph, row_eager in zip(*results, strict=True):
        for key in ("train_loss", "val_loss", "grad_norm_mean"):
            assert row_graph[key] == pytest.approx(row_eager[key], rel=1e-3, nan_ok=True), key  # nan: all overflowed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_forced_fp16_short_run_matches_bf16_on_gpu(tiny_config, monkeypatch):
    """#18's check: MobileNetV2 forced to fp16 (loss scaling, inside the CUDA graph) trains a 3-epoch run on the
    synthetic data whose training and validation losses stay within 2 % of the same run in bf16, epoch by epoch."""
    monkeypatch.setenv("AI6103_DEVICE", "cuda")
    config = dataclasses.replace(tiny_config, epochs=3, schedule="cosine")
    bf16, fp16 = (TRAIN.train(config, progress=False, rt=runtime(precision=p, compile=False)) for p in ("bf16", "fp16"))
    for row_bf16, row_fp16 in zip(bf16, fp16, strict=True):
        for key in ("train_loss", "val_loss"):
            assert row_fp16[key] == pytest.approx(row_bf16[key], rel=0.02), (row_bf16["epoch"], key)


# ---------------------------------------------------------------- out of memory in the first steps


def _out_of_memory(message: str = "CUDA out of memory (faked)") -> torch.OutOfMemoryError:
    return torch.OutOfMemoryError(message)


def test_a_stack_out_of_memory_is_trained_as_smaller_stacks(tiny_runs, monkeypatch, capsys):
    """The allocator fails at the first step of a 2-run stack: the runs train one by one, each as it would alone."""
    configs = [tiny_runs, dataclasses.replace(tiny_runs, lr=0.1)]
    real_step = STEP.sgd_step

    def allocator(net, optimizers, *args):
        if len(optimizers) > 1:
            raise _out_of_memory()
        real_step(net, optimizers, *args)

    monkeypatch.setattr(STEP, "sgd_step", allocator)
    phases = {}
    together = TRAIN.train_together(configs, progress=False, phases=phases)
    assert "trying again as stacks of 1 and 1 runs" in capsys.readouterr().out
    assert phases["out_of_memory_retry"].startswith("as stacks of 1 and 1") and len(phases["epoch_seconds"]) == 3
    for run_together, config in zip(together, configs, strict=True):
        assert _metrics(run_together) == _metrics(TRAIN.train_together([config], progress=False)[0])


def test_an_evaluation_out_of_memory_halves_the_evaluation_batch(tiny_runs, monkeypatch, capsys):
    """Evaluation batches above 100 images fail: 400 and 200 fail, 100 works, and the history is that of a run
    evaluated in batches of 100. Below the training batch (80) nothing is left to try."""
    real_batches = DeviceSplit.eval_batches

    def allocator(self, batch_size):
        if batch_size > 100:
            raise _out_of_memory()
        return real_batches(self, batch_size)

    monkeypatch.setattr(DeviceSplit, "eval_batches", allocator)
    rt = runtime(eval_batch=400)
    [history] = TRAIN.train_together([tiny_runs], progress=False, rt=rt)
    out = capsys.readouterr().out
    assert "trying again with evaluation batch 200" in out and "trying again with evaluation batch 100" in out
    assert _metrics(history) == _metrics(TRAIN.train_together([tiny_runs], progress=False,
                                                              rt=dataclasses.replace(rt, eval_batch=100))[0])
    monkeypatch.setattr(DeviceSplit, "eval_batches", lambda self, batch_size: (_ for _ in ()).throw(_out_of_memory()))
    with pytest.raises(torch.OutOfMemoryError):  # 100 // 2 is below the training batch: nothing left to try
        TRAIN.train_together([tiny_runs], progress=False, rt=dataclasses.replace(rt, eval_batch=100))


def test_out_of_memory_after_the_first_epoch_or_of_one_run_is_not_retried(tiny_runs, monkeypatch):
    real_step, steps = STEP.sgd_step, []

    def allocator(net, optimizers, *args):
        steps.append(len(optimizers))
        if len(steps) == 4:  # the first step of epoch 2
            raise _out_of_memory()
        real_step(net, optimizers, *args)

    monkeypatch.setattr(STEP, "sgd_step", allocator)
    with pytest.raises(torch.OutOfMemoryError):
        TRAIN.train_together([tiny_runs, dataclasses.replace(tiny_runs, lr=0.1)], progress=False)
    assert steps == [2, 2, 2, 2]  # not tried again as smaller stacks
    monkeypatch.setattr(STEP, "sgd_step", lambda *args: (_ for _ in ()).throw(_out_of_memory()))
    with pytest.raises(torch.OutOfMemoryError):  # one run in training: nothing to make smaller
        TRAIN.train_together([tiny_runs], progress=False)

"""Trainings at once (lib.training.concurrency, AI6103_CONCURRENT): each run trains to exactly its result alone; a
failure stops the others at an epoch's end, resumable; how many at once is measured, cached and printed by the plan."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from lib.core.checkpoint import load_state
from lib.nets.device import runtime
from lib.running import cost, store
from lib.running.runs import run_or_load_many

TIMING = ["epoch_seconds", "train_images_per_second", "trainings_at_once"]  # differ between any two runs


@pytest.fixture
def three_runs(tiny_config):
    """Three runs of a real CNN that train as three training calls on the CPU (it stacks nothing)."""
    base = dataclasses.replace(tiny_config, arch="small_cnn", grad_norm_param="layers.1.conv.weight", epochs=3)
    return [base, dataclasses.replace(base, lr=0.1), dataclasses.replace(base, seed=1)]


def trained(configs, monkeypatch, tmp_path, store_name: str, at_once: str, on_epoch=None):
    monkeypatch.setenv("AI6103_RUNS_DIR", str(tmp_path / store_name))
    monkeypatch.setenv("AI6103_CONCURRENT", at_once)
    monkeypatch.setenv("AI6103_STACK", "1")  # three training calls, whatever an earlier test of the worker left set
    return run_or_load_many(configs, progress=False, on_epoch=on_epoch)


def same_run(a: store.RunResult, b: store.RunResult) -> None:
    pd.testing.assert_frame_equal(a.history.drop(columns=TIMING), b.history.drop(columns=TIMING))
    weights_a, weights_b = load_state(a.path)["model"], load_state(b.path)["model"]
    assert all(torch.equal(weights_a[name], weights_b[name]) for name in weights_a)


def test_runs_trained_at_once_equal_each_run_trained_alone(three_runs, monkeypatch, tmp_path, capsys):
    alone = trained(three_runs, monkeypatch, tmp_path, "alone", "1")
    at_once = trained(three_runs, monkeypatch, tmp_path, "at_once", "3")
    assert "training 3 training calls, 3 at once (threads; AI6103_CONCURRENT)" in capsys.readouterr().out
    assert [r.history["trainings_at_once"].max() for r in at_once] == [3, 3, 3]
    for a, b in zip(alone, at_once, strict=True):
        same_run(a, b)


def test_a_failing_training_stops_the_others_resumable(three_runs, monkeypatch, tmp_path):
    """The first run's hook fails after its first epoch: the error reaches the caller, the others stop at an
    epoch's end (checkpointed, unfinished), and the same call again finishes every run as if never stopped."""
    def fail_first(configs, histories):
        if configs[0] == three_runs[0] and len(histories[0]) == 1:
            raise ValueError("the first run's hook failed")

    with pytest.raises(ValueError, match="the first run's hook failed"):
        trained(three_runs, monkeypatch, tmp_path, "at_once", "3", on_epoch=fail_first)
    assert all(store.load_run(c) is None for c in three_runs)  # 3 epochs each: none had finished
    assert all(1 <= load_state(store.run_path(c))["epoch"] < 3 for c in three_runs)
    resumed = run_or_load_many(three_runs, progress=False)
    for a, b in zip(trained(three_runs, monkeypatch, tmp_path, "alone", "1"), resumed, strict=True):
        same_run(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_trained_at_once_on_cuda_streams_match_each_run_alone(three_runs, monkeypatch, tmp_path):
    """On a GPU with every speed feature (CUDA graphs captured while other runs train, bf16): three runs at once,
    each on its own stream, against each alone. The same kernels run, but cuDNN's backward kernels may add in
    another order, so within bf16 tolerance; the images seen are equal."""
    monkeypatch.setenv("AI6103_DEVICE", "cuda")
    configs = [dataclasses.replace(c, epochs=2, train_subset=256, batch_size=64) for c in three_runs]
    alone = trained(configs, monkeypatch, tmp_path, "alone", "1")
    at_once = trained(configs, monkeypatch, tmp_path, "at_once", "3")
    for a, b in zip(alone, at_once, strict=True):
        assert b.history["trainings_at_once"].max() == 3
        columns = ["train_loss", "val_loss", "grad_norm_mean", "weight_norm"]
        pd.testing.assert_frame_equal(a.history[columns], b.history[columns], rtol=3e-2, atol=3e-2)
        assert (a.history["val_acc"] - b.history["val_acc"]).abs().max() <= 0.05


@pytest.mark.parametrize("speeds, n_calls, chosen", [
    ({1: 100, 2: 180, 3: 240, 4: 250}, 5, 4),  # the fastest, AT_ONCE_MOST at most
    ({1: 100, 2: 180, 3: 170}, 3, 2),
    ({1: 100, 2: 105}, 2, 1),  # under AT_ONCE_GAIN: one at a time
])
def test_auto_measures_how_many_trainings_at_once_pay_and_caches_it(speeds, n_calls, chosen, monkeypatch):
    from test_speed import probe_measuring

    monkeypatch.setenv("AI6103_CONCURRENT", "auto")
    measured = probe_measuring(monkeypatch, speeds, "at_once")
    assert cost.trainings_at_once("mobilenetv2", 128, n_calls) == chosen
    assert cost.trainings_at_once("mobilenetv2", 128, n_calls) == chosen
    assert sorted(measured) == sorted(speeds)  # each number at once timed once, then cached
    assert cost.at_once_gain("mobilenetv2", 128, chosen) == speeds[chosen] / speeds[1]
    monkeypatch.setenv("AI6103_CONCURRENT", "2")
    assert cost.trainings_at_once("mobilenetv2", 128, n_calls) == 2 and runtime().concurrent == 2
    monkeypatch.setenv("AI6103_CONCURRENT", "0")
    with pytest.raises(ValueError, match="^AI6103_CONCURRENT must be auto or a positive number of trainings, got '0'$"):
        runtime()


def test_the_probe_of_trainings_at_once_runs_on_the_cpu():
    """The real measurement behind `auto`, small on the CPU: two trainings at once, images/s summed over both."""
    speed = cost._benchmark("small_cnn", 8, runtime(), at_once=2)
    assert speed["train_images_per_second"] > 0 and speed["eval_images_per_second"] > 0


def test_the_whole_study_record_overlaps_trainings_at_once(monkeypatch):
    """bench/study_record.py: calls trained 2 at once run in 2 lanes, from the log's timing lines (their wave from
    the plan) and from the timing log (their pool); a call alone adds its own time."""
    from test_speed import _bench_module

    study_record = _bench_module("study_record", monkeypatch)
    timing = "timing net-e6 lr {lr}: data 1.0 s, build 9.0 s, 6 epochs 6.0 s (first 1.00 s, median 1.00 s){at_once}"
    log = "\n".join(["  wave 1: lr_schedule", "    -> 2 runs to train in 2 training calls of 6 epochs, 2 at once",
                     timing.format(lr=0.1, at_once=", 2 trainings at once"),
                     timing.format(lr=0.05, at_once=", 2 trainings at once"),
                     "  wave 2: mixup", "    -> 1 run to train in 1 training call of 6 epochs",
                     timing.format(lr=0.05, at_once="")])
    record = study_record.record_from_log(log, "e2e")
    one_call = 1.0 + 9.0 + 1.0 + 299 * 1.0  # each call scaled to 300 epochs
    assert [c["full_seconds"] for c in record["training_calls"]] == [one_call] * 3
    assert record["full_study_gpu_seconds"] - record["measured_overhead_seconds"] == pytest.approx(2 * one_call)
    call = {"n_runs": 1, "epochs": 6, "compiled": False, "mixup_alpha": 0.0, "sigmoid_blocks": [], "device": "d",
            "data_seconds": 1.0, "build_seconds": 9.0, "epoch_seconds": [1.0] * 6, "total_seconds": 16.0}
    pooled = [{**call, "at_once": 2, "pool": "p"}] * 3 + [call]
    # measured: the pool 32 s (three calls of 16 s in two lanes), the lone call 16 s: 16 s of the 64 s not training
    assert study_record.study_record(pooled, 64.0, "e2e")["full_study_gpu_seconds"] == pytest.approx(3 * one_call + 16)

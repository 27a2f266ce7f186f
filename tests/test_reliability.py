"""Crash safety, resume, locking, reproducibility and one-line errors for bad data and stored files."""
from __future__ import annotations

import dataclasses
import errno
import importlib.util
import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import lib
from lib import DataError, RunStoreError, load_cifar100, run_or_load
from lib.core.checkpoint import SaveError, load_state
from lib.running.store import _RunLock, run_path

TIMING = ["epoch_seconds", "train_images_per_second"]  # wall-clock columns differ between any two runs


@pytest.fixture
def tiny_config(tiny_config):
    """conftest's tiny run, as small_cnn where there is no GPU: what these tests check (resume, stored files,
    locks, one-line errors) does not depend on the architecture, and small_cnn trains it several times faster on a
    CPU; with a GPU (whose tests need the brief's network) MobileNetV2 as everywhere else."""
    return tiny_config if torch.cuda.is_available() else dataclasses.replace(tiny_config, arch="small_cnn")


def _same_metrics(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns=TIMING), b.drop(columns=TIMING), check_exact=True)


def _same_weights(run_a, run_b) -> None:
    state_a, state_b = load_state(run_a.path), load_state(run_b.path)
    for key, value in state_a["model"].items():
        assert torch.equal(value, state_b["model"][key]), key


@pytest.mark.slow
@pytest.mark.parametrize("n_runs", [1, 2])
def test_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(n_runs, synthetic_dir, tmp_path, monkeypatch):
    """A real SIGKILL in epoch 2 of 3, then the same call again: the result equals an uninterrupted run.
    With 2 runs, they train stacked (AI6103_STACK=2) before and after the kill. The training process halts after
    the second step of epoch 2 and says so (a marker file), so the kill lands there whatever the machine's load
    (it slept 1 s after epoch 1, which a loaded core could outlast); small_cnn (MobileNetV2 took 70 and 110 s)."""
    config = dataclasses.replace(
        lib.RunConfig(arch="small_cnn", data_dir=str(synthetic_dir), val_size=300, train_subset=160, val_subset=32,
                      batch_size=32), epochs=3, schedule="cosine", mixup_alpha=0.2, weight_decay=5e-4)
    configs = [config, dataclasses.replace(config, lr=0.1, weight_decay=1e-4)][:n_runs]
    monkeypatch.setenv("AI6103_STACK", str(n_runs))
    killed_store, halted = tmp_path / "killed", tmp_path / "halted"
    script = textwrap.dedent(f"""
        import lib, time, warnings
        from lib.training import train
        warnings.simplefilter("ignore")
        real = train.train_epoch

        def train_epoch(step, split, configs, streams, first_step, *args, **kwargs):
            steps = []

            def halting(*step_args):
                step(*step_args)
                steps.append(1)
                if first_step and len(steps) == 2:  # epoch 2, two steps in: wait here for the kill
                    open({str(halted)!r}, "w").close()
                    time.sleep(600)
            return real(halting, split, configs, streams, first_step, *args, **kwargs)

        train.train_epoch = train_epoch
        lib.run_or_load_many([lib.RunConfig(**c) for c in {[dataclasses.asdict(c) for c in configs]!r}],
                             progress=False)
    """)
    env = {**os.environ, "AI6103_RUNS_DIR": str(killed_store)}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    monkeypatch.setenv("AI6103_RUNS_DIR", str(killed_store))
    deadline = time.time() + 240
    while not halted.exists():
        assert child.poll() is None and time.time() < deadline, "the training process ended before epoch 2"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert [len(pd.read_csv(run_path(c) / "metrics.csv")) for c in configs] == [1] * n_runs  # killed in epoch 2
    assert not any((run_path(c) / "summary.json").exists() for c in configs)

    resumed = lib.run_or_load_many(configs, progress=False)
    monkeypatch.setenv("AI6103_RUNS_DIR", str(tmp_path / "uninterrupted"))
    uninterrupted = lib.run_or_load_many(configs, progress=False)
    for run_resumed, run_uninterrupted in zip(resumed, uninterrupted, strict=True):
        assert (run_resumed.history["runs_together"] == n_runs).all()
        _same_metrics(run_resumed.history, run_uninterrupted.history)
        _same_weights(run_resumed, run_uninterrupted)


def test_same_config_and_seed_give_identical_runs_and_record_their_environment(tiny_config, tmp_path, monkeypatch):
    first = run_or_load(tiny_config, progress=False)
    monkeypatch.setenv("AI6103_RUNS_DIR", str(tmp_path / "second"))
    second = run_or_load(tiny_config, progress=False)
    _same_metrics(first.history, second.history)
    _same_weights(first, second)
    env = json.loads((first.path / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"].startswith("CPU")
    assert env["data_kind"] == "synthetic" and env["data_fingerprint"].startswith("synthetic:")
    assert "git_commit" in env


def _stopped_before_its_summary(config) -> Path:
    """A run stopped right after its last checkpoint was written, before its summary: the folder still holds the
    previous epoch's checkpoint too (a finished run keeps only its last)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lib.running.store, "_finish", lambda *args, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            run_or_load(config, progress=False)
    return run_path(config)


def test_corrupt_checkpoint_falls_back_to_the_previous_epoch(tiny_config, tmp_path, monkeypatch):
    uninterrupted = run_or_load(tiny_config, progress=False)
    monkeypatch.setenv("AI6103_RUNS_DIR", str(tmp_path / "killed"))
    path = _stopped_before_its_summary(tiny_config)
    (path / "checkpoint.pt").write_bytes(b"\0" * 100)  # ... and its last checkpoint was damaged
    with pytest.warns(UserWarning, match="unreadable"):
        again = run_or_load(tiny_config, progress=False)  # retrains epoch 2 from the epoch-1 checkpoint
    _same_metrics(uninterrupted.history, again.history)
    assert (path / "checkpoint.pt.corrupt").exists()


def test_a_finished_run_keeps_one_checkpoint_its_final_state(tiny_config):
    finished = run_or_load(tiny_config, progress=False)
    assert sorted(p.name for p in finished.path.glob("checkpoint*")) == ["checkpoint.pt"]
    assert load_state(finished.path)["epoch"] == tiny_config.epochs


def test_a_checkpoint_moved_on_by_its_trainer_while_read_is_not_set_aside(tiny_config, monkeypatch):
    """Another process reads a run's checkpoint just as the trainer's save renames it to checkpoint.prev.pt: the
    reader takes the state it finds next, and sets nothing aside as corrupt."""
    path = _stopped_before_its_summary(tiny_config)
    real_load = torch.load

    def moved_away(path, *args, **kwargs):
        if Path(path).name == "checkpoint.pt":
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", moved_away)
    assert load_state(path)["epoch"] == tiny_config.epochs - 1
    assert not list(path.glob("*.corrupt"))


@pytest.mark.parametrize("damage", ["truncated", "percent_accuracies", "missing_column", "summary_not_an_object"])
def test_finished_run_with_damaged_result_files_is_rebuilt_from_its_checkpoint(tiny_config, monkeypatch, damage):
    """Summary and metrics are checked for their layout and value ranges when read, not only for parsing."""
    finished = run_or_load(tiny_config, progress=False)
    metrics, summary = finished.path / "metrics.csv", finished.path / "summary.json"
    if damage == "truncated":
        metrics.write_text(metrics.read_text()[:40])
    elif damage == "percent_accuracies":
        finished.history.assign(val_acc=37.5).to_csv(metrics, index=False)  # 37.5 % written where 0.375 belongs
    elif damage == "missing_column":
        finished.history.drop(columns=["train_acc"]).to_csv(metrics, index=False)
    else:
        summary.write_text("[1, 2]")
    monkeypatch.setattr(sys.modules["lib.training.train"], "train", lambda *a, **k: pytest.fail("nothing to train"))
    with pytest.warns(UserWarning, match="rebuilt"):
        again = run_or_load(tiny_config, progress=False)
    _same_metrics(finished.history, again.history)


def test_second_process_on_the_same_run_is_refused_clearly(tiny_config):
    path = run_path(tiny_config)
    path.mkdir(parents=True)
    with _RunLock(path):  # held by "another" trainer: flock conflicts between open files, even in one process
        with pytest.raises(RunStoreError, match=r"is being trained by pid \d+"):
            run_or_load(tiny_config, progress=False)
    assert len(run_or_load(tiny_config, progress=False).history) == 2  # the lock is gone with its holder


def test_full_disk_while_saving_keeps_the_last_good_epoch(tiny_config, monkeypatch):
    real_save = torch.save
    calls = []

    def save_then_fill_disk(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_fill_disk)
    with pytest.raises(SaveError, match="No space left on device") as error:
        run_or_load(tiny_config, progress=False)
    assert "\n" not in str(error.value)
    assert load_state(run_path(tiny_config))["epoch"] == 1
    monkeypatch.setattr(torch, "save", real_save)
    assert len(run_or_load(tiny_config, progress=False).history) == 2


def test_really_full_disk_keeps_the_last_good_epoch(tiny_config, tmp_path):
    """The same on a real full file system (a tmpfs in a mount namespace of our own, 1.5 checkpoints in size: one
    checkpoint with its momentum is ~5 MB for small_cnn, ~19 MB for MobileNetV2, so epoch 1 fits and epoch 2 does
    not): torch.save's own error (a RuntimeError, not an OSError) becomes the one-line SaveError, and epoch 1 stays
    loadable."""
    store = tmp_path / "full"
    store.mkdir()
    probe = ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {store}"]
    if shutil.which("unshare") is None or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip("no tmpfs in a mount namespace of our own here (unshare -rm): the full-disk test needs one")
    script = textwrap.dedent(f"""
        import warnings, lib
        from lib.core.checkpoint import SaveError, load_state
        from lib.running.store import run_path
        warnings.simplefilter("ignore")
        config = lib.RunConfig(**{dataclasses.asdict(tiny_config)!r})
        try:
            lib.run_or_load(config, progress=False)
        except SaveError as error:
            print("SAVE-ERROR", str(error).count(chr(10)), "epoch", load_state(run_path(config))["epoch"])
    """)
    size_mb = {"small_cnn": 8, "mobilenetv2": 28}[tiny_config.arch]
    done = subprocess.run(["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size={size_mb}m tmpfs {store} && exec '
                           f'"{sys.executable}" -c "$0"', script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "AI6103_RUNS_DIR": str(store)})
    assert "SAVE-ERROR 0 epoch 1" in done.stdout, done.stdout + done.stderr


def test_setup_on_a_disk_too_small_for_the_venv_stops_in_one_line_before_pip(tmp_path):
    """`make setup` runs scripts/check_disk.sh before it makes .venv: pip would fail half-way, leaving half a venv."""
    check = [str(lib.core.paths.PROJECT_ROOT / "scripts" / "check_disk.sh"), str(tmp_path)]
    free_gib = shutil.disk_usage(tmp_path).free / 2**30
    need = int(free_gib) + 2
    refused = subprocess.run(["bash", *check, str(need)], capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stdout == ""
    folder = re.escape(str(tmp_path))
    assert re.fullmatch(rf"make setup: the \.venv needs about {need} GiB free in {folder}, which has \d+ GiB free: "
                        r"free some space, then run it again\n", refused.stderr)  # \d+: others may write meanwhile
    assert subprocess.run(["bash", *check, str(int(free_gib) - 1)], capture_output=True).returncode == 0
    makefile = (lib.core.paths.PROJECT_ROOT / "Makefile").read_text()
    assert makefile.index("scripts/check_disk.sh") < makefile.index("-m venv")


def test_results_from_another_store_version_are_refused(tiny_config):
    finished = run_or_load(tiny_config, progress=False)
    summary = json.loads((finished.path / "summary.json").read_text())
    (finished.path / "summary.json").write_text(json.dumps({**summary, "store_version": 0}))
    with pytest.raises(RunStoreError, match="another version"):
        run_or_load(tiny_config, progress=False)
    assert (finished.path / "checkpoint.pt").exists()  # nothing was deleted


def test_section_results_from_another_version_are_refused():
    from lib.studies.results import read_section, section_path, write_section

    write_section("learning_rate", "smoke", "synthetic", runs=[], chosen={"lr": 0.05})
    assert read_section("learning_rate", profile="smoke")["chosen"] == {"lr": 0.05}
    path = section_path("learning_rate", profile="smoke")
    path.write_text(json.dumps({**json.loads(path.read_text()), "results_version": 0}))
    with pytest.raises(ValueError, match="re-run notebook notebooks/learning_rate.ipynb"):
        read_section("learning_rate", profile="smoke")
    with pytest.raises(FileNotFoundError, match="run notebook notebooks/lr_schedule.ipynb first"):
        read_section("lr_schedule", profile="smoke")


RUN_ROW = {"run_id": "a", "label": "lr=0.05", "config": {}, "epochs": 2, "final_train_loss": 1.0,
           "final_train_acc": 0.5, "final_val_loss": 1.2, "final_val_acc": 0.4, "best_val_acc": 0.45}


@pytest.mark.parametrize("change, problem", [
    ({"runs": "none"}, "its 'runs' is not a list"),
    ({"section": "lr_schedule"}, "it holds the results of lr_schedule"),
    ({"data_kind": "imagenet"}, "data_kind 'imagenet' is none of"),
    ({"runs": [{**RUN_ROW, "final_val_acc": 47.1}]}, "run 0's final_val_acc is not an accuracy in [0, 1]"),
    ({"runs": [{**RUN_ROW, "final_train_loss": -1}]}, "run 0's final_train_loss is not a loss >= 0 (or NaN: diverged)"),
    ({"runs": [{**RUN_ROW, "epochs": "2"}]}, "run 0's 'epochs' is not a int"),
    ({"chosen_run_id": "b"}, "its chosen_run_id 'b' is none of its runs"),
])
def test_malformed_results_files_are_refused_in_one_line(change, problem):
    from lib.studies.results import read_section, section_path, write_section

    write_section("learning_rate", "smoke", "synthetic", runs=[RUN_ROW], chosen={"lr": 0.05}, chosen_run_id="a")
    assert read_section("learning_rate", profile="smoke")["runs"] == [RUN_ROW]
    path = section_path("learning_rate", profile="smoke")
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(ValueError, match=re.escape(f"is malformed ({problem}")) as error:
        read_section("learning_rate", profile="smoke")
    assert "re-run notebook notebooks/learning_rate.ipynb" in _one_line(error)


# ---------------------------------------------------------------- bad data folders


def _one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_data_without_network_says_where_to_put_the_archive(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_utils, "download_url", offline)
    with pytest.raises(DataError) as error:
        load_cifar100(tmp_path / "empty", download=True)
    assert "cifar-100-python.tar.gz" in _one_line(error) and str(tmp_path / "empty") in str(error.value)
    assert "PROFILE=smoke" in str(error.value)  # the offline way out
    with pytest.raises(DataError, match="not in"):
        load_cifar100(tmp_path / "empty", download=False)


def test_archive_with_wrong_checksum_is_refused(tmp_path):
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"not really an archive")
    with pytest.raises(DataError, match="wrong checksum") as error:
        load_cifar100(tmp_path, download=False)
    _one_line(error)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing", "not_a_dict", "wrong_shape", "float_pixels",
                                    "float_labels", "labels_out_of_range", "no_class_names"])
def test_damaged_data_folder_is_an_error_not_a_run(tmp_path, damage):
    lib.write_synthetic_cifar100(tmp_path, n_train=50, n_test=20)
    train, meta = tmp_path / "cifar-100-python" / "train", tmp_path / "cifar-100-python" / "meta"
    batch = pickle.loads(train.read_bytes(), encoding="latin1")
    if damage == "truncate":
        train.write_bytes(train.read_bytes()[:5000])
    elif damage == "garbage":
        train.write_bytes(os.urandom(4000))
    elif damage == "missing":
        (tmp_path / "cifar-100-python" / "test").unlink()
    elif damage == "not_a_dict":
        train.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    elif damage == "no_class_names":
        meta.write_bytes(pickle.dumps({"coarse_label_names": ["a"]}, protocol=2))
    else:
        changed = {"wrong_shape": {"data": batch["data"][:, :100]},
                   "float_pixels": {"data": batch["data"].astype(np.float32) * 300},  # a cast to uint8 would wrap
                   "float_labels": {"fine_labels": [label + 0.5 for label in batch["fine_labels"]]},
                   "labels_out_of_range": {"fine_labels": [label + 100 for label in batch["fine_labels"]]}}[damage]
        train.write_bytes(pickle.dumps({**batch, **changed}, protocol=2))
    with pytest.raises(DataError) as error:
        load_cifar100(tmp_path, download=False)
    _one_line(error)


def _fingerprint_as_a_profile_does(folder: Path, start, answers) -> None:
    """What lib.studies.profiles.resolve_data_dir does with a synthetic folder, after `start` (a Barrier) lets every
    process go at once: write the data unless its meta file is there, then fingerprint it."""
    start.wait()
    try:
        if not (folder / "cifar-100-python" / "meta").is_file():
            lib.write_synthetic_cifar100(folder, n_train=300, n_test=100)
        answers.put(lib.data_info(folder, download=False).fingerprint)
    except Exception as error:  # noqa: BLE001 - a half-written file read is the failure this test looks for
        answers.put(f"{type(error).__name__}: {error}")


def test_processes_creating_the_same_synthetic_folder_all_get_one_fingerprint(tmp_path):
    """Four processes at once on a fresh folder, five times (about 1 s): one fingerprint each time. Files written in
    place gave two fingerprints or a half-written file in 12 of 20 such rounds; by hand, 50 rounds of four, 50 of
    two and 10 pairs at 3,000 images (which failed once in place) all gave one fingerprint."""
    import multiprocessing

    context = multiprocessing.get_context("fork")  # the children use numpy and pickle only, no torch
    for round_ in range(5):
        folder, start, answers = tmp_path / str(round_), context.Barrier(4), context.Queue()
        processes = [context.Process(target=_fingerprint_as_a_profile_does, args=(folder, start, answers))
                     for _ in range(4)]
        for process in processes:
            process.start()
        got = [answers.get(timeout=60) for _ in processes]
        for process in processes:
            process.join()
        assert len(set(got)) == 1 and got[0].startswith("synthetic:"), got


def test_files_that_parse_but_are_not_official_load_with_a_warning(tmp_path):
    lib.write_synthetic_cifar100(tmp_path, n_train=50, n_test=20)
    train = tmp_path / "cifar-100-python" / "train"
    batch = pickle.loads(train.read_bytes(), encoding="latin1")  # Python 2 pickles, as the official files
    train.write_bytes(pickle.dumps({**batch, "batch_label": "my subset"}, protocol=2))
    with pytest.warns(UserWarning, match="not the official CIFAR-100"):
        data = load_cifar100(tmp_path, download=False)
    assert len(data.train_labels) == 50
    assert lib.data_info(tmp_path).kind == "modified"


# ---------------------------------------------------------------- on a GPU


def _resumed_vs_uninterrupted(config, tmp_path, monkeypatch) -> tuple[float, float]:
    """The largest difference in metrics and in weights between `config` interrupted after epoch 1 and resumed,
    and the same run uninterrupted (in tmp_path/uninterrupted)."""
    real_save = sys.modules["lib.core.checkpoint"].save

    def save_then_stop(run_dir, model, optimizer, generator, mixup_rng, history, config, *more, **named):
        real_save(run_dir, model, optimizer, generator, mixup_rng, history, config, *more, **named)  # fp16: scaler
        if len(history) == 1:
            raise KeyboardInterrupt  # as a Ctrl-C or a restarted kernel right after epoch 1

    monkeypatch.setattr(sys.modules["lib.core.checkpoint"], "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_or_load(config, progress=False)
    monkeypatch.setattr(sys.modules["lib.core.checkpoint"], "save", real_save)
    resumed = run_or_load(config, progress=False)
    monkeypatch.setenv("AI6103_RUNS_DIR", str(tmp_path / "uninterrupted"))
    uninterrupted = run_or_load(config, progress=False)
    columns = ["train_loss", "train_acc", "val_loss", "val_acc", "grad_norm_mean"]
    gap = (resumed.history[columns] - uninterrupted.history[columns]).abs().max().max()
    weights_a, weights_b = load_state(resumed.path)["model"], load_state(uninterrupted.path)["model"]
    return gap, max((weights_a[k].float() - weights_b[k].float()).abs().max().item() for k in weights_a)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("deterministic", ["0", "1"])
def test_gpu_resume_is_close_to_uninterrupted(tiny_config, tmp_path, monkeypatch, deterministic, capsys):
    """On a GPU an interrupted-and-resumed run matches an uninterrupted one to floating-point noise
    (bit for bit in deterministic mode); the measured differences are printed for the README."""
    monkeypatch.setenv("AI6103_DEVICE", "cuda")
    monkeypatch.setenv("AI6103_DETERMINISTIC", deterministic)
    config = dataclasses.replace(tiny_config, epochs=3, schedule="cosine", mixup_alpha=0.2)
    gap, weight_gap = _resumed_vs_uninterrupted(config, tmp_path, monkeypatch)
    with capsys.disabled():
        print(f"\nGPU resume vs uninterrupted (deterministic={deterministic}): max metric difference {gap:.3g}, "
              f"max weight difference {weight_gap:.3g}")
    assert gap < 0.05 and weight_gap < 0.05


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_dropout_run_resumes_bit_exact_on_gpu(tiny_config, tmp_path, monkeypatch):
    """Dropout draws from the CUDA generator inside the captured graph: the graph's warm-up steps must not move it,
    or a resumed run's masks differ from an uninterrupted one's (deterministic kernels, so any gap is the masks)."""
    monkeypatch.setenv("AI6103_DEVICE", "cuda")
    monkeypatch.setenv("AI6103_DETERMINISTIC", "1")
    config = dataclasses.replace(tiny_config, epochs=3, dropout=0.5)
    assert _resumed_vs_uninterrupted(config, tmp_path, monkeypatch) == (0.0, 0.0)


def test_printing_the_plan_reads_no_checkpoint_and_changes_no_file(tiny_config, monkeypatch, capsys):
    """The plan of a section whose runs are stored says so in words, and neither loads a checkpoint nor sets a
    damaged one aside (that is for training to do, when it needs the checkpoint)."""
    from lib.studies import study

    result = run_or_load(dataclasses.replace(tiny_config, epochs=1), progress=False)
    (result.path / "checkpoint.pt").write_bytes(b"damaged")
    before = sorted(p.name for p in result.path.iterdir())
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("the plan loaded a checkpoint"))
    assert study.print_section_plan("learning_rate", {"lr=0.05": result.config}) == 0
    assert "1 run, 1 already stored: nothing to train" in capsys.readouterr().out
    assert sorted(p.name for p in result.path.iterdir()) == before


@pytest.mark.parametrize("previous", [False, True], ids=["one checkpoint", "previous kept"])
def test_test_score_comes_from_the_final_weights_or_not_at_all(tiny_config, previous):
    """A finished run whose final checkpoint is damaged: no test score, not even from the previous epoch's weights
    (a run finished before finished runs dropped their previous checkpoint still has them)."""
    result = run_or_load(tiny_config, progress=False)
    if previous:
        state = load_state(result.path)
        torch.save({**state, "epoch": 1, "history": state["history"][:1]}, result.path / "checkpoint.prev.pt")
    (result.path / "checkpoint.pt").write_bytes(b"damaged")
    found = "epoch 1 only" if previous else "no readable checkpoint"
    with pytest.warns(UserWarning, match="unreadable"), pytest.raises(
            RunStoreError, match=f"{found}, not its final epoch {tiny_config.epochs}"):
        lib.evaluate_test(result)
    assert not (result.path / "test.json").exists()


@pytest.mark.parametrize("profile", ["full", "smoke"])
def test_a_data_dir_that_does_not_exist_is_named_in_one_line_and_not_created(tmp_path, profile):
    from lib.studies import study

    missing = tmp_path / "typo"
    with pytest.raises(DataError, match=r"data_dir .*typo does not exist: point DATA_DIR \(data_dir\) at") as error:
        study.resolve_data_dir(profile, str(missing))
    assert "\n" not in str(error.value) and not missing.exists()


@pytest.mark.parametrize("left", ["train", "cifar-100-python.tar.gz"])
def test_synthetic_profiles_never_write_into_a_users_data_folder(tmp_path, left):
    """A partial download (or an archive not yet unpacked) given to the smoke profile: refused in one line,
    nothing written, the user's file untouched."""
    from lib.studies import study

    user_file = tmp_path / ("cifar-100-python/" if left == "train" else "") / left
    user_file.parent.mkdir(parents=True, exist_ok=True)
    user_file.write_bytes(b"the user's own bytes")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(DataError, match=r"holds no complete cifar-100-python/ folder.*leave data_dir unset") as error:
        study.resolve_data_dir("smoke", str(tmp_path))
    assert "\n" not in str(error.value)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert user_file.read_bytes() == b"the user's own bytes"


def test_temporaries_of_interrupted_writes_are_cleaned_up(tiny_config, tmp_path):
    """What a kill mid-save leaves (`.checkpoint.pt.tmp-<host>-<pid>`) goes when the run is next trained under its lock;
    in the results folder only the temporaries of writers that are gone go, not those of one still writing."""
    from lib.core import paths
    from lib.studies.results import write_section

    folder = run_path(tiny_config)
    folder.mkdir(parents=True)
    stale = folder / f".checkpoint.pt.tmp-{os.getpid()}"  # even a live pid: the lock says nobody else writes here
    stale.write_bytes(b"half a checkpoint")
    run_or_load(tiny_config, progress=False)
    assert not stale.exists()

    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        results = paths.results_dir("smoke")
        results.mkdir(parents=True, exist_ok=True)
        host = socket.gethostname()
        gone, writing = results / f".02.json.tmp-{host}-999999999", results / f".x.json.tmp-{host}-{writer.pid}"
        elsewhere = results / ".y.json.tmp-another-node-999999999"  # a cluster node's: its pid means nothing here
        for tmp in (gone, writing, elsewhere):
            tmp.write_text("{")
        write_section("learning_rate", "smoke", "synthetic", runs=[], chosen={"lr": 0.05})
        assert not gone.exists() and writing.exists() and elsewhere.exists()
    finally:
        writer.kill()


# ---------------------------------------------------------------- settings and caches


@pytest.mark.parametrize("name, value", [("AI6103_DEVICE", "gpu"), ("AI6103_BF16", "yes"), ("AI6103_STACK", "0"),
                                         ("AI6103_STACK", "two"), ("AI6103_EVAL_BATCH", "-5"),
                                         ("AI6103_COMPILE_MIN_EPOCHS", "many"), ("AI6103_DETERMINISTIC", "true"),
                                         ("AI6103_PROGRESS", "fancy"), ("AI6103_COMPILE_MODE", "fast")])
def test_bad_environment_variables_fail_in_one_line_naming_them(monkeypatch, name, value):
    from lib.nets.device import runtime

    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name) as error:
        runtime()
    _one_line(error)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"k": {"train_images_per_second": -1}}',
                                  '{"k": {"train_images_per_second": 5.0}}'])
def test_a_malformed_throughput_cache_is_measured_anew_with_a_warning(tmp_path, text):
    from lib.running.cost import _read_throughput

    cache = tmp_path / "throughput.json"
    cache.write_text(text)
    with pytest.warns(UserWarning, match="throughput.json is not a valid throughput cache"):
        assert _read_throughput(cache) == {}
    good = {"k": {"train_images_per_second": 5.0, "eval_images_per_second": 9.0, "device": "cpu"}}
    cache.write_text(json.dumps(good))
    assert _read_throughput(cache) == good


def test_driver_reports_a_failed_save_while_training_in_one_line(monkeypatch, capsys):
    """A full disk while the driver trains ahead of the notebooks: one line saying what to do, exit status 1."""
    import importlib.util

    from lib.core import paths
    from lib.core.checkpoint import SaveError
    from lib.studies import plan

    spec = importlib.util.spec_from_file_location("run_study", paths.PROJECT_ROOT / "scripts" / "run_study.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)

    def disk_full(*args, **kwargs):
        raise SaveError("could not save epoch 3 of run r (No space left on device): free space and run again")

    for name in ("AI6103_PROGRESS", "AI6103_STUDY_HOLDER", "AI6103_BRIEF", "AI6103_ARCH"):  # the driver sets them
        # for its kernels: put back after
        monkeypatch.setenv(name, os.environ.get(name, ""))
    monkeypatch.setattr(plan, "print_study_plan", lambda *args, **kwargs: 0.0)
    monkeypatch.setattr(driver, "train_ahead", disk_full)
    assert driver.run(["--profile", "smoke", "--only", "learning_rate", "--quiet"]) == 1
    failed = [line for line in capsys.readouterr().err.splitlines() if line.startswith("FAILED")]
    assert failed == ["FAILED while training: SaveError: could not save epoch 3 of run r (No space left on device): "
                      "free space and run again"]


@pytest.mark.parametrize("profile", ["tiny", "full"])
def test_a_dry_run_in_empty_folders_writes_nothing(profile, tmp_path, monkeypatch, capsys):
    """Every folder variable at an empty folder (a missing one for the data): the dry run prints the plan (tiny:
    its synthetic data made in a temporary folder) or, for real data not downloaded yet, says so in one line; it
    makes no folder and writes no file (no data, no throughput.json, no lock), and no temporary folder is left."""
    from lib.core import paths, settings
    from lib.running import cost

    spec = importlib.util.spec_from_file_location("run_study", paths.PROJECT_ROOT / "scripts" / "run_study.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    for name in ("AI6103_PROGRESS", "AI6103_BRIEF", "AI6103_ARCH", "PYTHONWARNINGS"):  # the driver sets them
        monkeypatch.setenv(name, os.environ.get(name, ""))
    folders = {name: tmp_path / name.lower() for name in settings.FOLDER_VARIABLES}
    for name, folder in folders.items():
        folder.mkdir()
        monkeypatch.setenv(name, str(folder))
    monkeypatch.setenv("AI6103_DATA_DIR", str(tmp_path / "data_dir_not_made"))  # data/ of a fresh clone
    if profile == "tiny":  # a notebook data folder means "the data is there", which the tiny profile refuses
        monkeypatch.delenv("AI6103_NOTEBOOK_DATA_DIR")
    probed = []
    monkeypatch.setattr(cost, "_benchmark", lambda *args, **kwargs: probed.append(1) or {
        "train_images_per_second": 1000.0, "eval_images_per_second": 1000.0, "device": "test"})
    temporaries = set(Path(tempfile.gettempdir()).glob("ai6103-dry-run-*"))
    status = driver.run(["--profile", profile, "--dry-run"])
    out, err = capsys.readouterr()
    if profile == "tiny":
        assert status == 0 and probed and "the study: 7 distinct runs in 3 waves" in out, err
    else:
        assert status == 2 and len(err.splitlines()) == 1, err
        assert err.startswith(f"DataError: {folders['AI6103_NOTEBOOK_DATA_DIR']} holds no unpacked cifar-100-python/ "
                              f"yet, and a dry run writes nothing")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == sorted(
        Path(name.lower()) for name in settings.FOLDER_VARIABLES)  # each still empty, data/ not made
    assert set(Path(tempfile.gettempdir()).glob("ai6103-dry-run-*")) == temporaries


def _checkpoint_of_one_epoch(run_dir: Path, config, fused: bool) -> None:
    """A checkpoint of a tiny model after one epoch, its SGD fused or not."""
    from lib.core import checkpoint
    from lib.training.train import make_optimizer

    model = torch.nn.Linear(4, 2)
    optimizer = make_optimizer(model.parameters(), config, torch.device("cpu"), fused=fused)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    checkpoint.save(run_dir, model, optimizer, torch.Generator(), np.random.default_rng(0), [{"epoch": 1}], config)


def test_resume_keeps_this_machines_optimiser_and_refuses_another_devices_generator(tiny_config, tmp_path):
    """Started with the foreach SGD (a CPU, a Mac) and resumed where the fused one is chosen (a T4): the fused one
    steps on (fp16's GradScaler hands it its inputs); a data-order generator of another device is one line."""
    from lib.core import checkpoint
    from lib.training.train import make_optimizer

    _checkpoint_of_one_epoch(tmp_path, tiny_config, fused=False)
    model = torch.nn.Linear(4, 2)
    optimizer = make_optimizer(model.parameters(), tiny_config, torch.device("cpu"), fused=True)
    assert checkpoint.restore(tmp_path, model, optimizer, torch.Generator(), np.random.default_rng(0)) == [{"epoch": 1}]
    assert optimizer.param_groups[0]["fused"] is True and optimizer.state[model.weight]["momentum_buffer"] is not None
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    state["generator"] = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA generator's state
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(RunStoreError, match="was started on a GPU .* resume it there, with AI6103_DEVICE unset"):
        checkpoint.restore(tmp_path, model, optimizer, torch.Generator(), np.random.default_rng(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_adam_started_unfused_resumes_fused_on_gpu(tiny_config, tmp_path):
    """Started with AI6103_FUSED_SGD=0, resumed with the fused Adam: torch places Adam's step counters by the loaded
    groups' `fused`, so the fused kernel must find them on the GPU (the CPU would be an illegal memory access)."""
    from lib.core import checkpoint
    from lib.training.train import make_optimizer

    config, cuda = dataclasses.replace(tiny_config, optimizer="adam"), torch.device("cuda")
    model = torch.nn.Linear(4, 2).to(cuda)
    for fused in (False, True):
        optimizer = make_optimizer(model.parameters(), config, cuda, fused=fused)
        if fused:
            checkpoint.restore(tmp_path, model, optimizer, torch.Generator(cuda), np.random.default_rng(0))
        model(torch.randn(3, 4, device=cuda)).sum().backward()
        optimizer.step()
        torch.cuda.synchronize()
        if not fused:
            checkpoint.save(tmp_path, model, optimizer, torch.Generator(cuda), np.random.default_rng(0),
                            [{"epoch": 1}], config)
    assert optimizer.param_groups[0]["fused"] and optimizer.state[model.weight]["step"].device.type == "cuda"

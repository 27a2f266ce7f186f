"""TensorBoard event files per run (lib.training.tracking): one value per epoch, the hparams record, no duplicate steps
after a resume, one folder per stacked run, W&B through a stand-in module, and failures that never stop training."""
from __future__ import annotations

import dataclasses
import errno
import sys
import types
import warnings

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

import lib
from lib import run_or_load
from lib.core.checkpoint import load_state
from lib.running.store import run_path
from lib.training import tracking

TAGS = ["loss/train", "loss/val", "acc/train", "acc/val", "lr", "grad_norm/layers.8.conv1.weight"]
COLUMNS = ["train_loss", "val_loss", "train_acc", "val_acc", "lr", "grad_norm_mean"]  # lib.training.train's, tag by tag


def _events(run_dir) -> EventAccumulator:
    events = EventAccumulator(str(run_dir / tracking.TENSORBOARD))
    events.Reload()
    return events


def _logged(events: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in events.Scalars(tag)]


def _expected(history, column: str) -> list[tuple[int, float]]:
    return [(int(step), pytest.approx(value, rel=1e-6)) for step, value in zip(history["epoch"], history[column],
                                                                               strict=True)]  # float32 in the file


def test_finished_run_logs_every_epoch_and_its_hparams(tiny_config):
    result = run_or_load(tiny_config, progress=False)
    events = _events(result.path)
    assert sorted(events.Tags()["scalars"]) == sorted(TAGS)
    for tag, column in zip(TAGS, COLUMNS, strict=True):
        assert _logged(events, tag) == _expected(result.history, column), tag
    records = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(records["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == tiny_config.lr and start.hparams["schedule"].string_value == "constant"
    assert start.hparams["epochs"].number_value == 2
    assert start.hparams["optimizer"].string_value == "sgd"  # an option at its default is a column too
    experiment = plugin_data_pb2.HParamsPluginData.FromString(records["_hparams_/experiment"]).experiment
    assert {metric.name.tag for metric in experiment.metric_infos} == {"loss/train", "loss/val", "acc/train", "acc/val"}


def test_resumed_run_has_every_step_once_with_the_resumed_values(tiny_config, monkeypatch):
    """Killed after epoch 2 was logged but before its checkpoint (the last good one is epoch 1), plus a stray event
    at step 2 from another writer: after the resume every tag holds steps 1, 2, 3 once, the resumed run's values."""
    config = dataclasses.replace(tiny_config, epochs=3)
    real_save = sys.modules["lib.core.checkpoint"].save

    def stop_before_saving_epoch_2(run_dir, model, optimizer, generator, mixup_rng, history, config):
        if len(history) == 2:
            raise KeyboardInterrupt  # as a kill between epoch 2's events and its checkpoint
        real_save(run_dir, model, optimizer, generator, mixup_rng, history, config)

    monkeypatch.setattr(sys.modules["lib.core.checkpoint"], "save", stop_before_saving_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_or_load(config, progress=False)
    monkeypatch.setattr(sys.modules["lib.core.checkpoint"], "save", real_save)
    path = run_path(config)
    assert load_state(path)["epoch"] == 1
    stray = tracking.open_writer(path)
    for tag in TAGS:
        stray.add_scalar(tag, 1e6, 2)
    stray.close()
    assert [step for step, _ in _logged(_events(path), "loss/train")] == [1, 2, 2]  # what the resume must drop

    resumed = run_or_load(config, progress=False)
    events = _events(path)
    for tag, column in zip(TAGS, COLUMNS, strict=True):
        assert _logged(events, tag) == _expected(resumed.history, column), tag


@pytest.mark.slow
def test_stacked_runs_log_into_their_own_folders_and_wandb_runs(tiny_config, monkeypatch):
    """Three runs trained as one stack: each folder has its own events (its own lr); with AI6103_WANDB=1 a stand-in
    wandb module sees one offline run per folder with the run's config, grouped by setting (two seeds of one
    learning rate together, the other learning rate apart)."""
    inits = []

    class FakeRun:
        def __init__(self, **kwargs):
            self.kwargs, self.steps, self.finished = kwargs, [], False
            inits.append(self)

        def log(self, values, step):
            self.steps.append(step)

        def finish(self):
            self.finished = True

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=lambda **kwargs: FakeRun(**kwargs)))
    monkeypatch.setenv("AI6103_WANDB", "1")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("AI6103_STACK", "3")
    configs = [tiny_config, dataclasses.replace(tiny_config, lr=0.2), dataclasses.replace(tiny_config, seed=1)]
    results = lib.run_or_load_many(configs, progress=False)
    assert all((r.history["runs_together"] == 3).all() for r in results)
    for result in results:
        assert _logged(_events(result.path), "lr") == _expected(result.history, "lr")
        assert [value for _, value in _logged(_events(result.path), "lr")] == pytest.approx([result.config.lr] * 2)
    assert [run.kwargs["dir"] for run in inits] == [str(r.path) for r in results]
    assert [run.kwargs["config"]["lr"] for run in inits] == [0.05, 0.2, 0.05]
    groups = [run.kwargs["group"] for run in inits]
    assert {run.kwargs["mode"] for run in inits} == {"offline"} and groups[0] == groups[2] != groups[1]
    other_batch = tracking._group(dataclasses.replace(tiny_config, batch_size=16))  # not in the readable name
    assert other_batch != groups[0] and other_batch.startswith(tiny_config.short_name())
    assert all(run.steps == [1, 2] and run.finished for run in inits)


def test_a_run_that_goes_on_after_its_stack_ends_gets_its_hparams_record_later(tiny_config, tmp_path):
    """Another run of the stack stopped early after epoch 1: this one, with 2 epochs to go, is closed without an
    hparams record (it resumes in a new stack, which writes the one record at its real end)."""
    going_on, stopped = dataclasses.replace(tiny_config, epochs=3), dataclasses.replace(tiny_config, epochs=1)
    row = {"epoch": 1, "lr": 0.05, "train_loss": 4.0, "val_loss": 4.1, "train_acc": 0.1, "val_acc": 0.1,
           "grad_norm_mean": 0.5}
    tracker = tracking.Tracking([going_on, stopped], [tmp_path / "going_on", tmp_path / "stopped"], 0)
    tracker.log([[row], [row]])
    tracker.finish([[row], [row]])
    with pytest.raises(KeyError, match="hparams"):  # no hparams record at all
        _events(tmp_path / "going_on").PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in _events(tmp_path / "stopped").PluginTagToContent("hparams")
    assert _logged(_events(tmp_path / "going_on"), "loss/train") == [(1, pytest.approx(4.0))]


def test_tracking_failure_warns_once_and_training_goes_on(tiny_config, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(SummaryWriter, "add_scalar", disk_full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_or_load(tiny_config, progress=False)
    tracking_warnings = [w for w in caught if "tracking of run" in str(w.message)]
    assert len(tracking_warnings) == 1 and "No space left" in str(tracking_warnings[0].message)
    assert len(result.history) == 2 and (result.path / "summary.json").exists()


def test_bad_wandb_switch_fails_in_one_line_and_runs_without_a_folder_log_nothing(tiny_config, monkeypatch):
    monkeypatch.setenv("AI6103_WANDB", "yes")
    with pytest.raises(ValueError, match="AI6103_WANDB must be 0 or 1"):
        tracking.Tracking([tiny_config], [None], 0)
    monkeypatch.setenv("AI6103_WANDB", "0")
    assert tracking.Tracking([tiny_config], [None], 0).runs == [None]

"""Options beyond the brief (lib.core.config): optimisers, schedules, early stopping, the training-data fraction, and
that configs at the defaults keep their identity. The models' options are tested in tests/test_models.py."""
from __future__ import annotations

import dataclasses
import importlib
import math

import pytest
import torch
from torch import nn

import lib
from lib.core.config import ConfigError, RunConfig, config_hash
from lib.nets.device import runtime
from lib.running import store
from lib.running.cost import split_sizes
from lib.studies import plan
from lib.training.schedule import early_stop, plateau_factor, run_lr

TRAIN = importlib.import_module("lib.training.train")  # the module (lib.train is the function)
STEP = importlib.import_module("lib.training.step")
GROUPING = importlib.import_module("lib.training.grouping")


def test_configs_at_the_defaults_keep_their_hash_and_name():
    """The hashes these configs had before the options existed (git show 3080380:lib/config.py): old run folders
    stay valid. Setting an option changes both hash and name."""
    brief = RunConfig()
    section = RunConfig(arch="mobilenet", lr=0.1, schedule="cosine", weight_decay=5e-4, mixup_alpha=0.2,
                        sigmoid_blocks=(4, 5))
    assert config_hash(brief, "fp") == "f489ad9a3433" and config_hash(section, "fp") == "aff47cf65539"
    assert brief.short_name() == "mobilenetv2-lr0.05-constant-e15"
    adamw = dataclasses.replace(brief, optimizer="adamw", dropout=0.2)
    assert config_hash(adamw, "fp") != config_hash(brief, "fp")
    assert adamw.short_name() == "mobilenetv2-lr0.05-constant-e15-adamw-drop0.2"


@pytest.mark.parametrize("change, names", [
    ({"optimizer": "rmsprop"}, "optimizer must be one of ['sgd', 'adam', 'adamw']"),
    ({"schedule": "linear"}, "schedule must be one of ['constant', 'cosine', 'step', 'exponential', 'plateau']"),
    ({"activation": "tanh"}, "activation must be one of"),
    ({"init": "orthogonal"}, "init must be one of"),
    ({"dropout": 1.0}, "dropout must be in [0, 1)"),
    ({"train_fraction": 0.0}, "train_fraction must be in (0, 1]"),
    ({"lr_gamma": 1.5}, "lr_gamma must be in (0, 1]"),
    ({"early_stopping_patience": -1}, "early_stopping_patience must be >= 0"),
    ({"pretrained": "imagenet"}, "pretrained weights exist for arch ['resnet18', 'resnet34'], not 'mobilenetv2'"),
    ({"arch": "vgg16"}, "arch must be one of"),
])
def test_bad_option_values_fail_with_one_line_naming_the_field(change, names):
    with pytest.raises(ConfigError) as error:
        RunConfig(**change)
    assert str(error.value).startswith(names) and "\n" not in str(error.value)


def test_watched_parameter_follows_the_architecture():
    resnet = RunConfig(arch="resnet18")
    assert resnet.grad_norm_param == "layers.4.conv1.weight"
    assert dataclasses.replace(resnet, arch="small_cnn").grad_norm_param == "layers.1.conv.weight"
    assert dataclasses.replace(resnet, arch="mobilenetv2") == RunConfig()


def test_step_and_exponential_schedules_change_the_rate_at_epoch_boundaries():
    step = RunConfig(lr=0.1, schedule="step", lr_step_epochs=2, lr_gamma=0.5, epochs=6)
    per_epoch = [run_lr(step, epoch * 10 + 9, steps_per_epoch=10) for epoch in range(6)]  # each epoch's last step
    assert per_epoch == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]  # halved at its milestone (epoch 2), again at 4
    exponential = dataclasses.replace(step, schedule="exponential", lr_gamma=0.9)
    assert [run_lr(exponential, e * 10, 10) for e in range(4)] == pytest.approx([0.1, 0.09, 0.081, 0.0729])
    cosine = dataclasses.replace(step, schedule="cosine")
    assert run_lr(cosine, 0, 10) == 0.1 and run_lr(cosine, 60, 10) == 0.0


@pytest.mark.parametrize("patience", [0, 1, 3])
def test_reduce_on_plateau_takes_torchs_decisions(patience):
    """The factor after each epoch equals torch.optim.lr_scheduler.ReduceLROnPlateau's on the same losses."""
    losses = [2.0, 1.5, 1.6, 1.5, 1.49999, 1.7, 1.2, 1.3, 1.3, 1.3, 1.3, 1.1, float("nan"), 1.0]
    config = RunConfig(lr=1.0, schedule="plateau", plateau_patience=patience, lr_gamma=0.5)
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=patience, eps=0.0)
    for epoch, loss in enumerate(losses, 1):
        scheduler.step(loss)
        assert plateau_factor(config, losses[:epoch]) == optimizer.param_groups[0]["lr"], epoch


def test_early_stopping_decision_on_a_scripted_curve():
    config = RunConfig(epochs=10, early_stopping_patience=2, early_stopping_min_delta=0.05)
    assert early_stop(config, [1.0, 0.9, 0.87, 0.95]) == (4, 2)  # 0.87 is not 0.05 below 0.9: two epochs without
    assert early_stop(config, [1.0, 0.9, 0.87, 0.8]) == (None, 4)
    assert early_stop(dataclasses.replace(config, early_stopping_patience=0), [1.0, 2.0, 3.0, 4.0]) == (None, 1)


def test_adamw_decouples_weight_decay_and_adam_does_not():
    """With a zero loss gradient, AdamW's step is exactly the decay w -= lr * wd * w; Adam puts wd * w into the
    gradient, which its normalisation turns into a step of ~lr per weight whatever the weight."""
    weights = torch.tensor([4.0, -0.5, 2.0])
    steps = {}
    for name in ("adamw", "adam"):
        w = nn.Parameter(weights.clone())
        optimizer = TRAIN.make_optimizer([w], RunConfig(optimizer=name, lr=0.01, weight_decay=0.1),
                                         torch.device("cpu"))
        (0.0 * w.sum()).backward()
        optimizer.step()
        steps[name] = (weights - w.detach())
    torch.testing.assert_close(steps["adamw"], 0.01 * 0.1 * weights)
    torch.testing.assert_close(steps["adam"], 0.01 * weights.sign(), rtol=1e-5, atol=1e-7)
    sgd = TRAIN.make_optimizer([nn.Parameter(weights.clone())], RunConfig(), torch.device("cpu"))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9


def test_train_fraction_uses_the_first_share_of_the_split(tiny_config):
    config = dataclasses.replace(tiny_config, train_fraction=0.25)
    data = TRAIN.prepare_data(config, torch.device("cpu"))
    full = TRAIN.prepare_data(tiny_config, torch.device("cpu"))
    assert len(data.train) == 16 == split_sizes(config, 1200)[0] and len(data.val) == len(full.val)
    assert torch.equal(data.train.labels, full.train.labels[:16])


def test_dropout_runs_and_adam_runs_take_the_paths_the_plan_names(tiny_config):
    dropout = dataclasses.replace(tiny_config, dropout=0.3)
    assert TRAIN.group_key(dropout) != TRAIN.group_key(dataclasses.replace(dropout, lr=0.1))  # each trains alone
    assert TRAIN.group_key(tiny_config) == TRAIN.group_key(dataclasses.replace(tiny_config, lr=0.1))
    graphs = dataclasses.replace(runtime(), cuda_graphs=True)
    adam = dataclasses.replace(tiny_config, optimizer="adam")
    assert STEP.uses_graphs([tiny_config], graphs) and not STEP.uses_graphs([adam], graphs)
    assert GROUPING.path_notes([adam], graphs)[0].startswith("adam: eager steps (CUDA graphs capture SGD steps only)")
    assert GROUPING.path_notes([dropout], runtime()) == [
        "dropout: each run trains alone (in a stack its dropout draws would differ from its own)"]


# ---------------------------------------------------------------- early stopping and plateau in the training loop


# Validation losses each run reports, epoch by epoch (keyed by its learning rate). lr 0.05: best at epoch 2, then two
# epochs without a lower loss -> stops after epoch 4; lr 0.1 never stalls for two epochs and runs all six.
SCRIPTS = {0.05: [1.0, 0.9, 0.95, 0.93, 0.5, 0.4], 0.1: [1.0, 0.8, 0.85, 0.6, 0.5, 0.45]}


@pytest.fixture
def scripted(tiny_config, tiny_model, monkeypatch):
    """Tiny models whose validation losses follow SCRIPTS; `interrupt_at[0]` = k raises KeyboardInterrupt in the
    k-th validation (counted over the test), as if the user stopped the kernel during that epoch."""
    state = {"trained": [], "epochs": {}, "interrupt_at": [None], "calls": [0]}
    real_stack, real_evaluate = TRAIN._train_stack, TRAIN.evaluate

    def train_stack(configs, *args):
        state["trained"].append([c.lr for c in configs])
        return real_stack(configs, *args)

    def evaluate(net, split, rt):
        state["calls"][0] += 1
        if state["calls"][0] == state["interrupt_at"][0]:
            raise KeyboardInterrupt
        accuracies = [acc for _, acc in real_evaluate(net, split, rt)]
        lrs = state["trained"][-1]
        losses = [SCRIPTS[lr][state["epochs"].get(lr, 0)] for lr in lrs]
        for lr in lrs:
            state["epochs"][lr] = state["epochs"].get(lr, 0) + 1
        return list(zip(losses, accuracies, strict=True))

    monkeypatch.setattr(TRAIN, "_train_stack", train_stack)
    monkeypatch.setattr(TRAIN, "evaluate", evaluate)
    configs = [dataclasses.replace(tiny_config, grad_norm_param="conv.weight", epochs=6, lr=lr, schedule="plateau",
                                   plateau_patience=0, lr_gamma=0.5, early_stopping_patience=2) for lr in SCRIPTS]
    return configs, state


def _weights(run_dir):
    return torch.load(run_dir / "checkpoint.pt", weights_only=False)["model"]


def test_early_stopping_in_a_stack_and_its_exact_resume(scripted, tmp_path):
    """In a stack, the run that stops after epoch 4 leaves it and the other trains on alone to epoch 6; the
    plateau schedule halves each run's rate after every epoch without a lower loss. Interrupted in epoch 3 and
    resumed, both runs end bit-for-bit as uninterrupted (histories, weights)."""
    configs, state = scripted
    straight = [tmp_path / "a" / str(i) for i in range(2)]
    for d in straight:
        d.mkdir(parents=True)
    histories = TRAIN.train_together(configs, straight, progress=False)
    assert [len(h) for h in histories] == [4, 6]
    assert state["trained"] == [[0.05, 0.1], [0.1]]  # stacked, then the runner alone (resumed from its checkpoint)
    assert [row["lr"] for row in histories[0]] == [0.05, 0.05, 0.05, 0.025]  # epoch 3 after the rise at epoch 3
    assert [row["lr"] for row in histories[1]] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05]
    assert [row["runs_together"] for row in histories[1]] == [2, 2, 2, 2, 1, 1]

    state.update(trained=[], epochs={}, interrupt_at=[state["calls"][0] + 3])  # the 3rd validation: epoch 3
    resumed = [tmp_path / "b" / str(i) for i in range(2)]
    for d in resumed:
        d.mkdir(parents=True)
    with pytest.raises(KeyboardInterrupt):
        TRAIN.train_together(configs, resumed, progress=False)
    assert torch.load(resumed[0] / "checkpoint.pt", weights_only=False)["epoch"] == 2
    state["epochs"] = {lr: 2 for lr in SCRIPTS}
    again = TRAIN.train_together(configs, resumed, progress=False)
    timing = ("epoch_seconds", "train_images_per_second")
    for one, other in zip(histories, again, strict=True):
        assert [{k: v for k, v in row.items() if k not in timing} for row in one] == [
            {k: v for k, v in row.items() if k not in timing} for row in other]
    for a, b in zip(straight, resumed, strict=True):
        for name, tensor in _weights(a).items():
            assert torch.equal(tensor, _weights(b)[name]), name


def test_store_records_the_stop_and_the_plan_counts_it_finished(scripted, capsys):
    configs, state = scripted
    result = lib.run_or_load(configs[0], progress=False)
    assert len(result.history) == 4
    assert result.summary["early_stopped_epoch"] == 4 and result.summary["best_val_loss_epoch"] == 2
    assert result.summary["epochs_done"] == 4
    again = lib.run_or_load(configs[0], progress=False)
    assert len(state["trained"]) == 1 and again.path == result.path  # finished: nothing trained again
    plan.print_section_plan("test", {"stopping": configs[0]})
    assert "stored (stopped early after 4)" in capsys.readouterr().out
    assert 0 <= lib.evaluate_test(result)["test_acc"] <= 1  # the final model is the one it stopped with
    assert math.isclose(result.summary["final_val_loss"], SCRIPTS[0.05][3])
    (result.path / "summary.json").unlink()  # killed after its last checkpoint, before its summary
    validations = state["calls"][0]
    rebuilt = lib.run_or_load(configs[0], progress=False)
    assert state["calls"][0] == validations and len(rebuilt.history) == 4  # not one epoch more after its stop
    assert rebuilt.summary["epochs_done"] == 4 and store.peek_summary(configs[0]) is not None


def test_public_ranges_apply_only_to_the_briefs_recipe():
    """A run with an option beyond the brief (here Adam) is never compared with the brief's public results."""
    from lib.studies.reference import public_range

    sgd = RunConfig(arch="mobilenet").key()
    assert str(public_range(sgd, "val_acc", "cifar100", "full")) == "44–47 %"
    adam = dataclasses.replace(RunConfig(arch="mobilenet"), optimizer="adam").key()
    assert public_range(adam, "val_acc", "cifar100", "full") is None

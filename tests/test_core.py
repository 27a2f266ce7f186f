"""Behaviour of the core library: models, data, augmentation, schedule, mixup, optimiser, run store."""
from __future__ import annotations

import dataclasses
import json
import math
import pickle
import sys

import numpy as np
import pytest
import torch

import lib
from lib import (
    ConfigError,
    RunConfig,
    build_model,
    channel_stats,
    class_proportions,
    load_cifar100,
    lr_at,
    mixup_loss,
    random_crop_flip,
    run_or_load,
    split_indices,
)
from lib.nets.data import DeviceSplit, data_info
from lib.nets.stack import stack_models

TRAIN_MODULE = sys.modules["lib.training.train"]  # the module; `lib.train` is the function

# ---------------------------------------------------------------- models


@pytest.mark.parametrize("arch, n_params, n_keys, watched_shape", [
    ("mobilenetv2", 2_412_212, 344, (384, 64, 1, 1)),
    ("mobilenet", 3_309_476, 164, (512, 1, 3, 3)),
])
def test_model_size_and_state_dict_layout(arch, n_params, n_keys, watched_shape):
    model = build_model(arch, num_classes=100)
    state = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == n_params
    assert len(state) == n_keys
    assert tuple(state["layers.8.conv1.weight"].shape) == watched_shape
    assert tuple(model(torch.zeros(2, 3, 32, 32)).shape) == (2, 100)


def test_mobilenetv2_names_match_the_course_code():
    state = build_model("mobilenetv2").state_dict()
    # Shortcut convs exist exactly where stride is 1 and the width changes (kuangliu's layout).
    shortcut_blocks = sorted({int(k.split(".")[1]) for k in state if ".shortcut." in k})
    assert shortcut_blocks == [0, 1, 10, 16]
    assert tuple(state["conv1.weight"].shape) == (32, 3, 3, 3)
    assert tuple(state["layers.16.conv3.weight"].shape) == (320, 960, 1, 1)
    assert tuple(state["conv2.weight"].shape) == (1280, 320, 1, 1)
    assert tuple(state["linear.weight"].shape) == (100, 1280)
    assert "bn2.num_batches_tracked" in state


def test_sigmoid_blocks_change_activations_not_weights():
    relu, sigmoid = build_model("mobilenetv2"), build_model("mobilenetv2", sigmoid_blocks=range(4, 11))
    assert {k: v.shape for k, v in relu.state_dict().items()} == {k: v.shape for k, v in sigmoid.state_dict().items()}
    kinds = [type(block.act1).__name__ for block in sigmoid.layers]
    assert kinds == ["ReLU"] * 4 + ["Sigmoid"] * 7 + ["ReLU"] * 6


# ---------------------------------------------------------------- data


def test_split_matches_random_split_and_is_disjoint():
    train, val = split_indices(50_000, 10_000, seed=0)
    reference = torch.utils.data.random_split(range(50_000), [40_000, 10_000],
                                              generator=torch.Generator().manual_seed(0))
    assert list(train) == list(reference[0].indices) and list(val) == list(reference[1].indices)
    assert len(train) == 40_000 and len(val) == 10_000
    assert len(np.union1d(train, val)) == 50_000 and len(np.intersect1d(train, val)) == 0
    again, _ = split_indices(50_000, 10_000, seed=0)
    other, _ = split_indices(50_000, 10_000, seed=1)
    assert np.array_equal(train, again) and not np.array_equal(train, other)


def test_synthetic_folder_reads_like_cifar(synthetic_dir):
    data = load_cifar100(synthetic_dir, download=False)
    assert data.train_images.shape == (1200, 32, 32, 3) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (300, 32, 32, 3)
    assert data.train_labels.min() >= 0 and data.train_labels.max() <= 99
    info = data_info(synthetic_dir)
    assert info.kind == "synthetic" and not info.is_official and len(info.class_names) == 100


# A Python 2 cPickle (protocol 2) of {'batch_label': 'x', 'fine_labels': [3]}, written opcode by opcode as
# Python 2 writes its str: how the official files hold keys, file names and label names.
PYTHON2_PICKLE = (pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.MARK
                  + pickle.SHORT_BINSTRING + b"\x0bbatch_label" + pickle.SHORT_BINSTRING + b"\x01x"
                  + pickle.SHORT_BINSTRING + b"\x0bfine_labels" + pickle.EMPTY_LIST + pickle.MARK
                  + pickle.BININT1 + b"\x03" + pickle.APPENDS + pickle.SETITEMS + pickle.STOP)


@pytest.mark.parametrize("encoding", ["bytes", "latin1"])
def test_synthetic_files_unpickle_like_the_official_python2_files(synthetic_dir, encoding):
    """Tutorial code (`pickle.load(f, encoding="bytes")`, then `batch[b"data"]`) reads ours as the real files."""
    official = pickle.loads(PYTHON2_PICKLE, encoding=encoding)
    text = type(next(iter(official)))  # bytes under "bytes", str under "latin1"
    with open(synthetic_dir / "cifar-100-python" / "train", "rb") as f:
        train = pickle.load(f, encoding=encoding)
    with open(synthetic_dir / "cifar-100-python" / "meta", "rb") as f:
        meta = pickle.load(f, encoding=encoding)
    key = (lambda name: name.encode()) if text is bytes else str
    assert {type(k) for k in train} | {type(k) for k in meta} == {text}
    assert set(train) == {key(k) for k in ("data", "fine_labels", "coarse_labels", "filenames", "batch_label")}
    assert set(meta) == {key("fine_label_names"), key("coarse_label_names")}
    assert type(train[key("batch_label")]) is type(official[key("batch_label")]) is text
    assert type(train[key("filenames")][0]) is type(meta[key("fine_label_names")][0]) is text
    assert train[key("data")].dtype == np.uint8 and train[key("data")].shape == (1200, 3072)


def test_channel_stats_and_class_proportions_match_numpy(synthetic_dir):
    data = load_cifar100(synthetic_dir, download=False)
    train_idx, _ = split_indices(1200, 300, seed=0)
    images = data.train_images[train_idx]
    mean, std = channel_stats(images)
    pixels = images.astype(np.float64).reshape(-1, 3) / 255
    np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(std, pixels.std(axis=0), rtol=1e-8)
    # The true pixel std differs from the (wrong) mean of per-image stds.
    per_image = (images.astype(np.float64) / 255).reshape(len(images), -1, 3).std(axis=1).mean(axis=0)
    assert not np.allclose(std, per_image, rtol=1e-3)
    proportions = class_proportions(data.train_labels[train_idx])
    labels, counts = np.unique(data.train_labels[train_idx], return_counts=True)
    np.testing.assert_allclose(proportions[labels], counts / len(train_idx))
    assert proportions.sum() == pytest.approx(1.0)


def _reference_crop_flip(image: torch.Tensor, top: int, left: int, flip: bool) -> torch.Tensor:
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
    crop = padded[:, top:top + 32, left:left + 32]
    return crop.flip(-1) if flip else crop


def test_random_crop_flip_is_a_padded_crop_with_fair_flips():
    n = 600
    rows = torch.arange(1, 33, dtype=torch.uint8).view(1, 32, 1).expand(n, 32, 32)
    cols = torch.arange(1, 33, dtype=torch.uint8).view(1, 1, 32).expand(n, 32, 32)
    ids = torch.arange(n).remainder(250).to(torch.uint8).view(n, 1, 1).expand(n, 32, 32)
    images = torch.stack([rows, cols, ids], dim=1).contiguous()  # every pixel knows where it came from
    out = random_crop_flip(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    tops, lefts, flips = [], [], []
    for i in range(n):
        matches = [(top, left, flip) for top in range(9) for left in range(9) for flip in (False, True)
                   if torch.equal(out[i], _reference_crop_flip(images[i], top, left, flip))]
        assert len(matches) == 1, f"image {i} is not one padded crop"
        tops.append(matches[0][0] - 4)
        lefts.append(matches[0][1] - 4)
        flips.append(matches[0][2])
    assert min(tops) == -4 and max(tops) == 4 and min(lefts) == -4 and max(lefts) == 4
    assert abs(np.mean(flips) - 0.5) < 0.07
    assert (out == 0).any(), "padding must be zeros"


# ---------------------------------------------------------------- schedule, mixup, optimiser


def test_cosine_schedule_endpoints():
    total = 300 * 313
    assert lr_at(0, total, 0.05, "cosine") == 0.05
    assert lr_at(total // 2, total, 0.05, "cosine") == pytest.approx(0.025)
    assert lr_at(total, total, 0.05, "cosine") == 0.0
    assert 0 < lr_at(total - 1, total, 0.05, "cosine") < 1e-8
    values = [lr_at(s, total, 0.05, "cosine") for s in range(0, total + 1, 997)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert {lr_at(s, total, 0.05, "constant") for s in (0, 1, total)} == {0.05}


def test_mixup_loss_is_the_lambda_weighted_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(16, 100)
    y_a, y_b = torch.randint(0, 100, (16,)), torch.randint(0, 100, (16,))
    log_p = torch.log_softmax(logits, dim=1)
    manual = -(0.3 * log_p[torch.arange(16), y_a] + 0.7 * log_p[torch.arange(16), y_b]).mean()
    assert mixup_loss(logits, y_a, y_b, 0.3).item() == pytest.approx(manual.item(), rel=1e-6)
    plain = torch.nn.functional.cross_entropy(logits, y_a).item()
    assert mixup_loss(logits, y_a, y_a, 0.3).item() == pytest.approx(plain, rel=1e-6)


def test_mixup_lambdas_follow_beta():
    rng = np.random.default_rng(0)
    draws = np.array([lib.sample_mixup_lambda(0.2, rng) for _ in range(20_000)])
    assert draws.min() >= 0 and draws.max() <= 1
    assert draws.mean() == pytest.approx(0.5, abs=0.02)
    assert draws.var() == pytest.approx(1 / (4 * 1.4), rel=0.05)  # Beta(a, a) variance = 1 / (4 (2a + 1))


def test_sgd_step_with_weight_decay_is_equation_3():
    """w_{t+1} = w_t - lr * dL/dw - lr * wd * w_t for the optimiser the training loop builds (first step)."""
    from lib.training.train import make_optimizer

    config = RunConfig(lr=0.1, weight_decay=5e-4)
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    optimizer = make_optimizer([w], config, torch.device("cpu"))
    w0 = w.detach().clone()
    loss = (w ** 2).sum() / 2  # dL/dw = w
    loss.backward()
    optimizer.step()
    expected = w0 - config.lr * w0 - config.lr * config.weight_decay * w0
    torch.testing.assert_close(w.detach(), expected)
    assert optimizer.param_groups[0]["momentum"] == 0.9


# ---------------------------------------------------------------- training and run store


@pytest.mark.slow
def test_short_run_on_learnable_data_lowers_the_loss(synthetic_dir):
    config = RunConfig(data_dir=str(synthetic_dir), epochs=4, val_size=300, train_subset=192, val_subset=64,
                       batch_size=32, lr=0.05, num_classes=100)
    history = lib.train(config, progress=False)
    assert len(history) == 4
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.2
    for row in history:
        assert 0 <= row["train_acc"] <= 1 and 0 <= row["val_acc"] <= 1
        assert row["grad_norm_mean"] > 0 and math.isfinite(row["val_loss"])


def test_mixup_cosine_run_records_every_column(tiny_config):
    config = dataclasses.replace(tiny_config, schedule="cosine", mixup_alpha=0.2, weight_decay=5e-4,
                                 sigmoid_blocks=[4, 5, 6], arch="mobilenet")
    history = lib.train(config, progress=False)
    assert history[0]["lr"] == 0.05 and 0 < history[1]["lr"] < 0.05
    assert set(history[0]) >= {"epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "grad_norm_mean",
                               "grad_norm_last", "weight_norm", "epoch_seconds", "train_images_per_second"}


def test_weight_norm_is_the_watched_parameters_norm_at_each_epochs_end(tiny_config, tiny_model):
    """The history's weight_norm is the 2-norm of config.grad_norm_param after the epoch: positive, changing from
    epoch to epoch, and at the last epoch that of the saved model's parameter."""
    from lib.core.checkpoint import load_state

    config = dataclasses.replace(tiny_config, grad_norm_param="conv.weight")
    run = run_or_load(config, progress=False)
    norms = run.history["weight_norm"]
    saved = load_state(run.path)["model"][config.grad_norm_param].float().norm().item()
    assert (norms > 0).all() and norms.iloc[0] != norms.iloc[-1]
    assert norms.iloc[-1] == pytest.approx(saved, rel=1e-6)


def test_run_store_trains_once_and_keys_by_config(tiny_config, monkeypatch):
    first = run_or_load(tiny_config, progress=False)
    assert len(first.history) == 2 and first.summary["data_kind"] == "synthetic"
    for name in ("config.json", "env.json", "metrics.csv", "summary.json", "checkpoint.pt"):
        assert (first.path / name).exists(), name

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must be loaded, not trained")

    monkeypatch.setattr(TRAIN_MODULE, "train_together", no_training)
    again = run_or_load(tiny_config, progress=False)
    assert again.path == first.path and again.history.equals(first.history)
    moved = dataclasses.replace(tiny_config, data_dir=str(tiny_config.data_dir) + "/.")
    assert run_or_load(moved, progress=False).path == first.path  # where the data lives is not part of the key
    with pytest.raises(AssertionError):
        run_or_load(dataclasses.replace(tiny_config, lr=0.01), progress=False)


def test_synthetic_and_real_never_share_a_run(tiny_config, tmp_path):
    from lib.core.config import config_hash

    assert config_hash(tiny_config, "cifar100:abc") != config_hash(tiny_config, "synthetic:abc")
    other = tmp_path / "other"
    lib.write_synthetic_cifar100(other, n_train=1200, n_test=300, seed=1)
    run_path = lib.running.store.run_path
    assert run_path(tiny_config) != run_path(dataclasses.replace(tiny_config, data_dir=str(other)))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("change, names", [
    ({"arch": "resnet"}, "arch"), ({"schedule": "cosin"}, "schedule"), ({"lr": 0}, "lr"), ({"lr": -1}, "lr"),
    ({"epochs": 0}, "epochs"), ({"mixup_alpha": -0.1}, "mixup_alpha"), ({"sigmoid_blocks": [4, 99]}, "sigmoid_blocks"),
    ({"sigmoid_blocks": [13], "arch": "mobilenet"}, "sigmoid_blocks"), ({"batch_size": 0}, "batch_size"),
    ({"epochs": 1.5}, "epochs"), ({"lr": "0.1"}, "lr"), ({"train_subset": 0}, "train_subset"),
    ({"weight_decay": -1e-4}, "weight_decay"), ({"sigmoid_blocks": "abc"}, "sigmoid_blocks"),
    ({"sigmoid_blocks": "[4, 99]"}, "sigmoid_blocks"),
])
def test_bad_config_values_fail_with_one_line_naming_the_parameter(change, names):
    with pytest.raises(ConfigError) as error:
        RunConfig(**change)
    message = str(error.value)
    assert message.startswith(names) and "\n" not in message


@pytest.mark.parametrize("change, name", [
    ({"val_size": 1200}, "val_size"), ({"train_subset": 901}, "train_subset"), ({"val_subset": 301}, "val_subset"),
])
def test_split_that_does_not_fit_the_data_fails_before_training(tiny_config, change, name, monkeypatch):
    monkeypatch.setattr(TRAIN_MODULE, "train_together", lambda *a, **k: pytest.fail("must fail before training"))
    with pytest.raises(ConfigError, match=f"^{name}"):
        run_or_load(dataclasses.replace(tiny_config, **change), progress=False)


@pytest.mark.parametrize("typed, blocks", [("[4, 5, 6]", (4, 5, 6)), ("4-10", tuple(range(4, 11))), ("", ()),
                                           ([10, 4, 4], (4, 10)), (7, (7,))])
def test_sigmoid_blocks_typed_as_text_or_list(typed, blocks):
    assert RunConfig(sigmoid_blocks=typed).sigmoid_blocks == blocks


def test_build_model_rejects_unknown_names():
    with pytest.raises(ConfigError, match="^arch"):
        build_model("vgg")
    with pytest.raises(ConfigError, match="^sigmoid_blocks"):
        build_model("mobilenetv2", sigmoid_blocks=[17])


# ---------------------------------------------------------------- several runs at once (lib.nets.stack)


@pytest.mark.parametrize("arch, blocks", [("mobilenetv2", ()), ("mobilenetv2", (4, 5, 6)), ("mobilenet", (2, 3))])
def test_stacked_network_computes_each_model(arch, blocks, float64):
    """Logits and every parameter's gradient of the stacked network equal those of the separate models."""
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(build_model(arch, 100, blocks))
    separate = [build_model(arch, 100, blocks) for _ in models]
    for copy, model in zip(separate, models, strict=True):
        copy.load_state_dict(model.state_dict())
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 100, (6,))
    logits = stack_models(models)(x)
    expected = torch.stack([model(x) for model in separate])
    assert logits.shape == (3, 6, 100)
    torch.testing.assert_close(logits, expected, rtol=1e-12, atol=1e-12)
    mixup_loss(logits, y, y.flip(0), 0.3).sum().backward()
    sum(mixup_loss(one, y, y.flip(0), 0.3) for one in expected).backward()
    grads = torch.cat([p.grad.flatten() for m in models for p in m.parameters()])
    expected_grads = torch.cat([p.grad.flatten() for m in separate for p in m.parameters()])
    assert (grads - expected_grads).norm() / expected_grads.norm() < 1e-12
    for model, copy in zip(models, separate, strict=True):  # BN running statistics: each model its own
        for (name, value), expected_value in zip(model.state_dict().items(), copy.state_dict().values(), strict=True):
            torch.testing.assert_close(value, expected_value, rtol=1e-12, atol=1e-12, msg=name)


def test_stack_models_refuses_different_architectures():
    with pytest.raises(ValueError, match="one architecture"):
        stack_models([build_model("mobilenetv2"), build_model("mobilenetv2", sigmoid_blocks=[4])])


@pytest.mark.parametrize("variants", [
    [{"lr": 0.1, "schedule": "cosine"}, {"weight_decay": 5e-4}],  # a section's runs: one seed, one batch for all
    [{"seed": 1}, {"seed": 2, "lr": 0.1}],  # seeds: each run its own batches, crops, flips and mixup draws
], ids=["optimiser", "seeds"])
@pytest.mark.slow
def test_runs_trained_together_equal_runs_trained_alone(tiny_config, monkeypatch, float64, variants):
    """Three runs trained as one stacked network give each run exactly its history and weights trained alone
    (fp64, so rounding cannot hide a difference): runs of a section, and seeds of one setting."""
    monkeypatch.setattr(DeviceSplit, "normalize", lambda self, u8: (u8.double() / 255.0 - self.mean) / self.std)
    base = dataclasses.replace(tiny_config, train_subset=64, val_subset=32, batch_size=24, mixup_alpha=0.2,
                               arch="mobilenet")  # 3 steps per epoch, the last one partial
    configs = [base, *(dataclasses.replace(base, **changes) for changes in variants)]
    together = TRAIN_MODULE.train_together(configs, progress=False)
    alone = [lib.train(config, progress=False) for config in configs]
    assert len({h[-1]["train_loss"] for h in together}) == 3  # three different runs, not one run three times
    for run_together, run_alone in zip(together, alone, strict=True):
        for row_together, row_alone in zip(run_together, run_alone, strict=True):
            for key in ("lr", "train_loss", "train_acc", "val_loss", "val_acc", "grad_norm_mean", "grad_norm_last",
                        "weight_norm"):
                assert row_together[key] == pytest.approx(row_alone[key], rel=1e-9, abs=1e-12), key
            assert row_together["runs_together"] == 3 and row_alone["runs_together"] == 1


def test_train_together_refuses_runs_that_differ_in_more_than_the_optimiser(tiny_config):
    with pytest.raises(ValueError, match="differ only in lr, schedule, weight_decay"):
        TRAIN_MODULE.train_together([tiny_config, dataclasses.replace(tiny_config, mixup_alpha=0.2)], progress=False)


@pytest.mark.slow
def test_section_runs_train_together_and_keep_their_own_files(tiny_config, monkeypatch):
    """run_or_load_many stacks what may be stacked (AI6103_STACK runs at most), trains the rest alone, and each
    run's folder then loads, evaluates and re-loads like a run trained by itself."""
    monkeypatch.setenv("AI6103_STACK", "2")
    configs = [tiny_config, dataclasses.replace(tiny_config, lr=0.1), dataclasses.replace(tiny_config, lr=0.2),
               dataclasses.replace(tiny_config, mixup_alpha=0.2), tiny_config]
    calls = []
    real = TRAIN_MODULE.train_together
    monkeypatch.setattr(TRAIN_MODULE, "train_together", lambda cs, *a, **k: calls.append(len(cs)) or real(cs, *a, **k))
    results = lib.run_or_load_many(configs, progress=False)
    assert sorted(calls) == [1, 1, 2]  # lr 0.05 + 0.1 together, lr 0.2 alone (at most 2), mixup alone
    assert results[0].path == results[4].path and len({r.path for r in results}) == 4
    assert [r.history["runs_together"].iloc[0] for r in results[:4]] == [2, 2, 1, 1]
    for result in results[:4]:
        assert result.summary["epochs_done"] == 2 and (result.path / "checkpoint.pt").exists()
        assert 0 <= lib.evaluate_test(result)["test_acc"] <= 1  # its checkpoint loads into one model
    calls.clear()
    again = lib.run_or_load_many(configs, progress=False)
    assert calls == [] and [r.path for r in again] == [r.path for r in results]


# ---------------------------------------------------------------- the library's layers (docs/library.md)

LAYERS = ["core", "nets", "training", "running", "studies", "report"]  # lib's subpackages, the lowest first


def lib_imports() -> dict[str, set[str]]:
    """For every module of lib ("lib.core.paths", "lib.report.sections.mixup"; "lib" is lib/__init__.py), the lib
    modules it imports anywhere in it: relative (`from ..core import paths`) and absolute (`lib.core.paths`) forms,
    imports inside functions too."""
    import ast
    from pathlib import Path

    folder = Path(lib.__file__).parent
    files = {".".join(("lib", *p.relative_to(folder).with_suffix("").parts)).removesuffix(".__init__"): p
             for p in folder.rglob("*.py")}

    def known(name: str) -> str:  # the module `name` is or lies in ("lib.core.config.RunConfig": "lib.core.config")
        while name not in files:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in files.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == "lib"):
                base = package[:len(package) - node.level + 1] if node.level else []
                module = [*base, *(node.module.split(".") if node.module else [])]
                imported |= {known(".".join([*module, alias.name])) for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {known(alias.name) for alias in node.names if alias.name.split(".")[0] == "lib"}
        graph[name] = imported - {name}
    return graph


def layer(module: str) -> int:
    """The rank of `module`'s layer in LAYERS; lib/__init__.py (the names users import) stands above them all."""
    return len(LAYERS) if module == "lib" else LAYERS.index(module.split(".")[1])


def test_every_lib_module_imports_only_its_own_layer_or_earlier():
    """lib's modules lie in the layers' packages, and each imports only modules of its own layer or of earlier ones
    (never lib/__init__.py, which re-exports from the layers)."""
    graph = lib_imports()
    loose = sorted(m for m in graph if m != "lib" and m.split(".")[1] not in LAYERS)
    assert not loose, f"modules outside the layers' packages {LAYERS} (docs/library.md: where each belongs): {loose}"
    backwards = sorted(f"{m} ({LAYERS[layer(m)]}) imports {t} ({'lib' if t == 'lib' else LAYERS[layer(t)]})"
                       for m, targets in graph.items() if m != "lib" for t in targets if layer(t) > layer(m))
    assert not backwards, "imports from a later layer:\n" + "\n".join(backwards)


def test_lib_imports_have_no_circle():
    """Every module of lib can be read after the ones it imports (a topological order)."""
    graph, order = lib_imports(), []
    while len(order) < len(graph):
        ready = sorted(m for m, deps in graph.items() if m not in order and deps <= set(order))
        assert ready, f"import circle among {sorted(set(graph) - set(order))}: " + "; ".join(
            f"{m} -> {sorted(graph[m] - set(order))}" for m in sorted(set(graph) - set(order)))
        order += ready


def test_run_store_imports_neither_the_trainer_nor_the_cost_model():
    """The store is folders and files only: it never trains, and running (lib.running.runs) sits above it."""
    graph = lib_imports()
    trainer = {"lib.running.cost", "lib.running.runs", "lib.training.grouping", "lib.training.splits",
               "lib.training.step", "lib.training.train"}
    assert not graph["lib.running.store"] & trainer
    assert {"lib.running.cost", "lib.running.store"} <= graph["lib.running.runs"]


def test_a_wheel_holds_every_module_and_data_file_of_lib(tmp_path):
    """`pip install .` (not editable) installs every subpackage: the wheel holds each lib/**/*.py and *.json."""
    import shutil
    import subprocess
    import zipfile
    from pathlib import Path

    root = Path(lib.__file__).parent.parent
    source = tmp_path / "source"  # a copy: a build/ folder left in the project could hand on files the build missed
    shutil.copytree(root / "lib", source / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "pyproject.toml", source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(tmp_path / "wheel")], check=True, cwd=source)
    [wheel] = (tmp_path / "wheel").glob("*.whl")
    held = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("lib/")}
    tree = {p.relative_to(root).as_posix() for pattern in ("*.py", "*.json") for p in (root / "lib").rglob(pattern)}
    assert tree and not tree - held, f"missing from the wheel: {sorted(tree - held)}"


def test_counts_say_one_run_and_two_runs():
    from lib.core.notation import count

    assert [count(n, "training call") for n in (0, 1, 2)] == ["0 training calls", "1 training call", "2 training calls"]


def test_a_plain_text_progress_bar_of_a_short_run_draws_its_first_and_last_state_only(tiny_config, monkeypatch):
    """Under papermill (AI6103_PROGRESS=text) every redraw of the bar is a stderr output of the executed notebook:
    a run shorter than the redraw interval draws twice (start and end, with its final numbers)."""
    import importlib

    train_module = importlib.import_module("lib.training.train")
    monkeypatch.setenv("AI6103_PROGRESS", "text")
    writes = []

    class Stderr:
        def write(self, text):
            if text.strip("\r\n "):
                writes.append(text)

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stderr", Stderr())
    histories = [[{"train_loss": 4.6 - epoch, "val_acc": 0.01 * epoch}] for epoch in range(3)]
    bar = train_module._progress_bar([dataclasses.replace(tiny_config, epochs=3)], 0, True)
    for history in histories:
        train_module._show(bar, [history])
    bar.close()
    assert len(writes) == 2 and "3/3" in writes[-1] and "train_loss=2.600" in writes[-1]


@pytest.mark.slow  # compiles (aot_eager) and trains each case twice: about 5 s each on 2 cores
@pytest.mark.parametrize("feature", ["compile", "fused_sgd", "channels_last"])
def test_a_speed_feature_that_fails_is_dropped_and_the_run_trains_on(tiny_config, tiny_model, tmp_path, monkeypatch,
                                                                     capsys, feature):
    """A speed feature whose stage raises while the stack is built (compilation, the fused optimiser, the NHWC
    model): one line names it, env.json records it, and the run trains to exactly what it gives without it."""
    import importlib

    from lib.nets.device import runtime

    train_module = importlib.import_module("lib.training.train")
    tiny_config = dataclasses.replace(tiny_config, grad_norm_param="conv.weight")
    rt = runtime(compile=True, compile_backend="aot_eager", compile_min_epochs=1, fused_sgd=True, channels_last=True)
    without = dataclasses.replace(rt, **{feature: False})
    expected = train_module.train_together([tiny_config], [None], progress=False, rt=without)[0]
    stages = {"compile": ("make_step", "compile_model"), "fused_sgd": ("make_optimizer", None),
              "channels_last": ("make_model", None)}
    name, flag = stages[feature]
    original = getattr(train_module, name)

    def failing(*args, **kwargs):
        on = kwargs.get(flag) if flag else (args[-1] if name == "make_optimizer" else args[1].channels_last)
        if on:
            raise RuntimeError(f"{feature} is broken here")
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, name, failing)
    (tmp_path / "env.json").write_text("{}")
    found = train_module.train_together([tiny_config], [tmp_path], progress=False, rt=rt)[0]
    assert f"{feature} failed for" in capsys.readouterr().out
    assert json.loads((tmp_path / "env.json").read_text())["speed_features_dropped"][0]["feature"] == feature
    assert [row["train_loss"] for row in found] == [row["train_loss"] for row in expected]

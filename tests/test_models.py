"""Behaviour of lib.nets.models beyond the brief's MobileNets: the baselines (small_cnn, ResNet-18/34), activation,
init, dropout, pretrained weights, model_size, and stacking the baselines (lib.nets.stack). All on CPU, small inputs."""
from __future__ import annotations

import dataclasses
import math
import os
import urllib.error

import pytest
import torch
import torchvision
from torch import nn

import lib
from lib.core.config import ARCHS, GRAD_NORM_PARAMS, ConfigError
from lib.nets.models import build_model, model_size, pretrained_note
from lib.nets.stack import stack_models
from lib.running import store

ACTIVATION_TYPES = (nn.ReLU, nn.GELU, nn.LeakyReLU, nn.SiLU, nn.Sigmoid)


# ---------------------------------------------------------------- architectures and their size


@pytest.mark.parametrize("arch, n_params", [
    ("small_cnn", 643_492),  # convs 896 + 18_496 + 73_856, hidden 2048*256+256, classifier 256*100+100
    ("resnet18", 11_220_132),  # kuangliu/pytorch-cifar ResNet18, 100 classes
    ("resnet34", 21_328_292),  # kuangliu/pytorch-cifar ResNet34, 100 classes
])
def test_baseline_shapes_parameters_and_names(arch, n_params):
    model = build_model(arch, 100)
    state = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == n_params
    assert len(model.layers) == ARCHS[arch]
    assert GRAD_NORM_PARAMS[arch] in state
    assert tuple(state["linear.weight"].shape) == (100, model.linear.in_features)
    assert tuple(model(torch.zeros(2, 3, 32, 32)).shape) == (2, 100)


def test_small_cnn_has_no_batchnorm_and_three_pooled_conv_blocks():
    model = build_model("small_cnn")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert [block.conv.out_channels for block in model.layers] == [32, 64, 128]
    assert (model.hidden.in_features, model.hidden.out_features) == (128 * 4 * 4, 256)


def test_model_size_counts_parameters_and_multiply_adds():
    small = (32 * 32 * 32 * 3 * 9  # conv 3->32 on 32x32
             + 16 * 16 * 64 * 32 * 9  # conv 32->64 on 16x16 (after a pool)
             + 8 * 8 * 128 * 64 * 9  # conv 64->128 on 8x8
             + 2048 * 256 + 256 * 100)  # hidden layer, classifier
    assert model_size("small_cnn") == {"params": 643_492, "macs": small}
    conv3x3 = 9  # kernel positions
    resnet18 = (32 * 32 * 64 * 3 * conv3x3  # stem
                + 4 * 32 * 32 * 64 * 64 * conv3x3  # stage 1: 4 convs 64->64 on 32x32
                + sum(hw * hw * c * (c // 2) * conv3x3  # first conv of a stage: c/2 -> c, stride 2
                      + 3 * hw * hw * c * c * conv3x3  # three more convs c -> c
                      + hw * hw * c * (c // 2)  # 1x1 stride-2 shortcut
                      for hw, c in [(16, 128), (8, 256), (4, 512)])
                + 512 * 100)  # classifier
    assert resnet18 == 555_468_800  # the ~0.56 GMACs usually quoted for CIFAR ResNet-18
    assert model_size("resnet18") == {"params": 11_220_132, "macs": resnet18}
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    model_size("resnet34")
    assert torch.equal(torch.rand(3), expected)  # counting draws nothing from the global RNG


# ---------------------------------------------------------------- activation, init, dropout


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_activation_replaces_every_activation_and_keeps_the_state_dict(arch):
    relu = build_model(arch, 100, (1,))
    gelu = build_model(arch, 100, (1,), activation="gelu")
    assert {k: v.shape for k, v in relu.state_dict().items()} == {k: v.shape for k, v in gelu.state_dict().items()}
    sigmoid_block = {id(m) for m in gelu.layers[1].modules()}
    activations = [m for m in gelu.modules() if isinstance(m, ACTIVATION_TYPES)]
    assert {type(m).__name__ for m in activations if id(m) not in sigmoid_block} == {"GELU"}
    assert {type(m).__name__ for m in activations if id(m) in sigmoid_block} == {"Sigmoid"}
    called = set()  # every activation module is used by forward (none bypassed by a functional relu)
    for module in gelu.modules():
        if isinstance(module, ACTIVATION_TYPES):
            module.register_forward_hook(lambda m, i, o: called.add(id(m)))
    gelu.eval()(torch.randn(2, 3, 32, 32))
    assert called == {id(m) for m in activations}


@pytest.mark.parametrize("arch, parameter_sum", [("mobilenetv2", 17564.468652656382),
                                                  ("mobilenet", 10987.843017609288)])
def test_default_options_build_the_model_of_before(arch, parameter_sum):
    """Same seed, same weights as build_model before activation/init/dropout/pretrained existed (the sums were taken
    from that version), and the defaults spelled out give the old call's model, output for output."""
    torch.manual_seed(0)
    old_call = build_model(arch, 100, (4, 5))
    torch.manual_seed(0)
    spelled_out = build_model(arch, 100, (4, 5), activation="relu", init="default", dropout=0.0, pretrained="")
    assert sum(p.double().sum() for p in old_call.parameters()).item() == pytest.approx(parameter_sum, rel=1e-9)
    assert list(old_call.state_dict()) == list(spelled_out.state_dict())
    for a, b in zip(old_call.state_dict().values(), spelled_out.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(old_call(x), spelled_out(x))


@pytest.mark.parametrize("init, std_of, bound_of", [
    ("kaiming_normal", lambda fan_in, fan_out: math.sqrt(2 / fan_in), None),
    ("kaiming_uniform", lambda fan_in, fan_out: math.sqrt(2 / fan_in), lambda fan_in, fan_out: math.sqrt(6 / fan_in)),
    ("xavier_normal", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out)), None),
    ("xavier_uniform", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out)),
     lambda fan_in, fan_out: math.sqrt(6 / (fan_in + fan_out))),
])
def test_init_weights_follow_their_formula(init, std_of, bound_of):
    model = build_model("small_cnn", init=init)
    for weight, fan_in, fan_out in [(model.hidden.weight, 2048, 256), (model.layers[2].conv.weight, 64 * 9, 128 * 9)]:
        assert weight.std().item() == pytest.approx(std_of(fan_in, fan_out), rel=0.03)
        if bound_of:
            assert weight.abs().max().item() <= bound_of(fan_in, fan_out)
    assert all(not m.bias.any() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    resnet = build_model("resnet18", init=init)
    assert resnet.layers[7].conv2.weight.std().item() == pytest.approx(std_of(512 * 9, 512 * 9), rel=0.03)
    for bn in (m for m in resnet.modules() if isinstance(m, nn.BatchNorm2d)):
        assert bool((bn.weight == 1).all()) and not bn.bias.any()


@pytest.mark.parametrize("arch, size", [("small_cnn", 32), ("mobilenetv2", 32), ("resnet18", 16)])
def test_dropout_acts_in_training_only_and_adds_no_state(arch, size):
    plain, dropped = build_model(arch), build_model(arch, dropout=0.5)
    assert not any(isinstance(m, nn.Dropout) for m in plain.modules())
    assert list(plain.state_dict()) == list(dropped.state_dict())
    dropped.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, size, size)  # the ResNets pool adaptively: 16x16 images are 4x less work
    plain.eval(), dropped.eval()
    assert torch.equal(dropped(x), plain(x))
    plain.train(), dropped.train()
    assert torch.equal(plain(x), plain(x))  # training mode alone (batch statistics) is deterministic
    assert not torch.equal(dropped(x), dropped(x))


@pytest.mark.parametrize("change, names", [
    ({"activation": "tanh"}, "activation"), ({"init": "orthogonal"}, "init"), ({"dropout": 1.0}, "dropout"),
    ({"arch": "small_cnn", "pretrained": "imagenet"}, "pretrained"),
])
def test_bad_options_fail_with_one_line_naming_the_parameter(change, names):
    with pytest.raises(ConfigError, match=f"^{names}") as error:
        build_model(**{"arch": "resnet18", **change})
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------- pretrained weights


def torchvision_resnet18_file(path) -> dict[str, torch.Tensor]:
    """A torchvision resnet18 state_dict with random weights and BN statistics, saved to `path`."""
    torch.manual_seed(1)
    state = torchvision.models.resnet18().state_dict()
    for value in state.values():
        if value.is_floating_point():
            value.copy_(torch.randn_like(value).abs())  # also running means and variances, so they are not trivial
    torch.save(state, path)
    return state


def test_pretrained_file_loads_every_tensor_but_stem_conv_and_classifier(tmp_path):
    state = torchvision_resnet18_file(tmp_path / "resnet18.pth")
    torch.manual_seed(0)
    fresh = build_model("resnet18").state_dict()
    torch.manual_seed(0)
    model = build_model("resnet18", pretrained=str(tmp_path / "resnet18.pth"))
    loaded = 0
    for key, value in model.state_dict().items():
        if key == "conv1.weight" or key.startswith("linear."):
            assert torch.equal(value, fresh[key]), key  # new: torchvision's stem is 7x7, its classifier 1000-way
            continue
        if key.startswith("layers."):
            _, flat, rest = key.split(".", 2)
            stage, index = divmod(int(flat), 2)  # resnet18: 2 blocks per stage
            key = f"layer{stage + 1}.{index}." + rest.replace("shortcut.", "downsample.")
        assert torch.equal(value, state[key]), key
        loaded += 1
    assert loaded == len(state) - 3  # all but conv1.weight, fc.weight, fc.bias
    assert "ImageNet" in pretrained_note("resnet18", "imagenet")


@pytest.mark.parametrize("spoil, message", [
    (lambda s: s.pop("layer2.0.downsample.0.weight"), "has no layer2.0.downsample.0.weight"),
    (lambda s: s.update({"layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1)}), "layer1.0.conv1.weight has shape"),
    (lambda s: s.update({"layer1.2.conv1.weight": torch.zeros(64, 64, 3, 3)}), "layer1.2.conv1.weight"),
], ids=["missing", "shape", "left-over"])
def test_pretrained_file_of_another_model_fails_in_one_line(tmp_path, spoil, message):
    state = torchvision_resnet18_file(tmp_path / "resnet18.pth")
    spoil(state)
    torch.save(state, tmp_path / "spoilt.pth")
    with pytest.raises(ConfigError, match="^pretrained=") as error:
        build_model("resnet18", pretrained=str(tmp_path / "spoilt.pth"))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_run_from_a_weights_file_is_keyed_by_what_the_file_holds(tmp_path, tiny_config):
    """New weights saved under the old name make a new run folder (a stored run from the old weights is not
    reused); the same weights again, by any path, find the old folder."""
    weights = tmp_path / "resnet18.pth"
    torchvision_resnet18_file(weights)
    config = dataclasses.replace(tiny_config, arch="resnet18", pretrained=str(weights))
    first = store.run_path(config)
    original = weights.read_bytes()
    state = torch.load(weights, weights_only=True)
    state["fc.bias"] += 1
    torch.save(state, weights)
    assert store.run_path(config) != first
    weights.write_bytes(original)
    assert store.run_path(config) == first
    spelled_otherwise = dataclasses.replace(config, pretrained=os.path.relpath(weights))
    assert store.run_path(spelled_otherwise) == first  # the same file by another path: the same run


def test_pretrained_path_that_does_not_exist_fails_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="^pretrained.*no file") as error:
        build_model("resnet34", pretrained=str(tmp_path / "nowhere.pth"))
    assert "\n" not in str(error.value)


def test_imagenet_weights_come_from_the_hub_cache_or_fail_naming_the_file(tmp_path, monkeypatch):
    """Never downloads: the download raises as without network; a damaged cached file fails in one line saying to
    delete it; a good file placed in the cache loads."""
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    checkpoints = tmp_path / "hub" / "checkpoints"
    with pytest.raises(ConfigError, match=f"^pretrained='imagenet' needs the file resnet18-f37072fd.pth in "
                                          f"{checkpoints} .*or pretrained=<path") as error:
        build_model("resnet18", pretrained="imagenet")
    assert "\n" not in str(error.value)
    assert not any(checkpoints.iterdir())  # nothing half-downloaded left behind
    (checkpoints / "resnet18-f37072fd.pth").write_bytes(b"PK\x03\x04 cut short")  # an interrupted copy
    with pytest.raises(ConfigError, match="resnet18-f37072fd.pth does not read .*; delete it to download it again"):
        build_model("resnet18", pretrained="imagenet")
    state = torchvision_resnet18_file(checkpoints / "resnet18-f37072fd.pth")
    model = build_model("resnet18", pretrained="imagenet")
    assert torch.equal(model.layers[3].conv2.weight, state["layer2.1.conv2.weight"])


def test_test_score_of_a_finished_pretrained_run_needs_no_weights_file(tmp_path, tiny_config, monkeypatch):
    """The checkpoint holds every weight: once the run has finished, scoring it on the test set works offline with
    the hub cache emptied."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *args, **kwargs: (_ for _ in ()).throw(
        urllib.error.URLError("no network")))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torchvision_resnet18_file(cached)
    result = lib.run_or_load(dataclasses.replace(tiny_config, arch="resnet18", epochs=1, pretrained="imagenet"),
                             progress=False)
    cached.unlink()
    assert 0 <= lib.evaluate_test(result)["test_acc"] <= 1


# ---------------------------------------------------------------- stacking the baselines (lib.nets.stack)


@pytest.mark.parametrize("arch, blocks, size", [("small_cnn", (), 32), ("small_cnn", (1,), 32), ("resnet18", (4,), 16)])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_stacked_baselines_compute_each_model(arch, blocks, size, training, float64):
    """Logits, gradients and BatchNorm statistics of two stacked models equal those of each alone (fp64)."""
    models = []
    for seed in range(2):
        torch.manual_seed(seed)
        models.append(build_model(arch, 100, blocks).train(training))
    separate = [build_model(arch, 100, blocks).train(training) for _ in models]
    for copy, model in zip(separate, models, strict=True):
        copy.load_state_dict(model.state_dict())
    x, y = torch.randn(3, 3, size, size), torch.randint(0, 100, (3,))
    logits = stack_models(models)(x)
    expected = torch.stack([model(x) for model in separate])
    assert logits.shape == (2, 3, 100)
    torch.testing.assert_close(logits, expected, rtol=1e-12, atol=1e-12)
    nn.functional.cross_entropy(logits.flatten(0, 1), y.repeat(2), reduction="sum").backward()
    sum(nn.functional.cross_entropy(one, y, reduction="sum") for one in expected).backward()
    grads = torch.cat([p.grad.flatten() for m in models for p in m.parameters()])
    expected_grads = torch.cat([p.grad.flatten() for m in separate for p in m.parameters()])
    assert (grads - expected_grads).norm() / expected_grads.norm() < 1e-12
    for model, copy in zip(models, separate, strict=True):
        for (name, value), expected_value in zip(model.state_dict().items(), copy.state_dict().values(), strict=True):
            torch.testing.assert_close(value, expected_value, rtol=1e-12, atol=1e-12, msg=name)

"""MobileNetV2 and MobileNet v1 for 32x32 CIFAR images.

Layouts, module names and state_dict keys follow kuangliu/pytorch-cifar (the course's code), so
checkpoints made with that code load here. Activations are parameter-free modules, so swapping ReLU
for Sigmoid in some blocks leaves the state_dict unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ARCHS, ConfigError


def _activation(sigmoid: bool) -> nn.Module:
    return nn.Sigmoid() if sigmoid else nn.ReLU(inplace=True)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> 3x3 depthwise (stride) -> 1x1 linear projection, residual if stride 1."""

    def __init__(self, in_planes: int, out_planes: int, expansion: int, stride: int, sigmoid: bool = False):
        super().__init__()
        self.stride = stride
        planes = expansion * in_planes
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, groups=planes, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.act1 = _activation(sigmoid)
        self.act2 = _activation(sigmoid)
        self.shortcut = nn.Sequential()  # identity (no state_dict keys) unless the width changes
        if stride == 1 and in_planes != out_planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, out_planes, kernel_size=1, bias=False),
                                          nn.BatchNorm2d(out_planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


class MobileNetV2(nn.Module):
    # (expansion, out_planes, num_blocks, stride); NOTE: stride 1 (not 2) in the stem and the second
    # stage, the CIFAR change for 32x32 inputs, so the last feature map is 4x4.
    cfg = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes: int = 100, sigmoid_blocks: tuple[int, ...] = ()):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        blocks, in_planes = [], 32
        for expansion, out_planes, num_blocks, stride in self.cfg:
            for s in [stride] + [1] * (num_blocks - 1):
                blocks.append(InvertedResidual(in_planes, out_planes, expansion, s, len(blocks) in sigmoid_blocks))
                in_planes = out_planes
        self.layers = nn.Sequential(*blocks)
        self.conv2 = nn.Conv2d(320, 1280, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.linear = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: B x 3 x 32 x 32 -> logits B x classes
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.relu(self.bn2(self.conv2(out)))
        out = F.avg_pool2d(out, 4).flatten(1)  # B x 1280 x 4 x 4 -> B x 1280
        return self.linear(out)


class DepthwiseSeparable(nn.Module):
    """MobileNet v1 block: 3x3 depthwise (stride) -> 1x1 pointwise, each with BN and activation."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, sigmoid: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, in_planes, kernel_size=3, stride=stride, padding=1, groups=in_planes,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv2 = nn.Conv2d(in_planes, out_planes, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.act1 = _activation(sigmoid)
        self.act2 = _activation(sigmoid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))


class MobileNet(nn.Module):
    # out_planes, or (out_planes, stride); NOTE: stem stride 1 for 32x32 inputs, last map 2x2.
    cfg = [64, (128, 2), 128, (256, 2), 256, (512, 2), 512, 512, 512, 512, 512, (1024, 2), 1024]

    def __init__(self, num_classes: int = 100, sigmoid_blocks: tuple[int, ...] = ()):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        blocks, in_planes = [], 32
        for item in self.cfg:
            out_planes, stride = item if isinstance(item, tuple) else (item, 1)
            blocks.append(DepthwiseSeparable(in_planes, out_planes, stride, len(blocks) in sigmoid_blocks))
            in_planes = out_planes
        self.layers = nn.Sequential(*blocks)
        self.linear = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: B x 3 x 32 x 32 -> logits B x classes
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.avg_pool2d(out, 2).flatten(1)  # B x 1024 x 2 x 2 -> B x 1024
        return self.linear(out)


def build_model(arch: str = "mobilenetv2", num_classes: int = 100, sigmoid_blocks=()) -> nn.Module:
    """A freshly initialised CIFAR model; `sigmoid_blocks` are indices into `model.layers`."""
    if arch not in ARCHS:
        raise ConfigError(f"arch must be one of {sorted(ARCHS)}, got {arch!r}")
    blocks = tuple(int(b) for b in sigmoid_blocks)
    bad = [b for b in blocks if not 0 <= b < ARCHS[arch]]
    if bad:
        raise ConfigError(f"sigmoid_blocks must be indices in 0..{ARCHS[arch] - 1} for {arch}, got {list(blocks)}")
    model_class = MobileNetV2 if arch == "mobilenetv2" else MobileNet
    return model_class(num_classes=num_classes, sigmoid_blocks=blocks)

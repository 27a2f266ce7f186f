"""The CIFAR models for 32x32 images: MobileNetV2 and MobileNet v1 (the study), small_cnn, ResNet-18 and ResNet-34
(baselines). What it is not: training, device placement or precision (lib.training.train decides those).

Layouts, module names and state_dict keys follow kuangliu/pytorch-cifar (the course's code), so
checkpoints made with that code load here. The ResNets are its CIFAR ResNets with every block in one flat
`layers` (as the MobileNets), so `sigmoid_blocks` and the watched gradient index blocks the same way. Activations
are parameter-free modules, so choosing another activation, or Sigmoid in some blocks, leaves the state_dict
unchanged. The ResNets can start from torchvision's ImageNet weights (`pretrained`).
"""
from __future__ import annotations

import functools
import hashlib
import os
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import ACTIVATIONS, ARCHS, INITS, PRETRAINABLE, ConfigError

RESNET_STAGES = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}  # blocks per stage of widths 64/128/256/512


def _activation(name: str) -> nn.Module:
    """A fresh activation module (no parameters); `name` is one of lib.core.config.ACTIVATIONS."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "gelu":
        return nn.GELU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01, inplace=True)
    if name == "silu":
        return nn.SiLU(inplace=True)
    return nn.Sigmoid()


def _dropout(p: float) -> nn.Module:
    # Identity at p = 0 so the default model is exactly the one without dropout (neither has state).
    return nn.Dropout(p) if p > 0 else nn.Identity()


def _add_stem(model: nn.Module, width: int, activation: str) -> None:
    """Give `model` the CIFAR stem: `conv1` (3x3, stride 1, 3 -> `width` channels), `bn1`, `act1`, made in that
    order (so the random initial weights are the same as when each model wrote them out itself)."""
    model.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
    model.bn1 = nn.BatchNorm2d(width)
    model.act1 = _activation(activation)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> 3x3 depthwise (stride) -> 1x1 linear projection, residual if stride 1."""

    def __init__(self, in_planes: int, out_planes: int, expansion: int, stride: int, activation: str = "relu"):
        super().__init__()
        self.stride = stride
        planes = expansion * in_planes
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, groups=planes, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.act1 = _activation(activation)
        self.act2 = _activation(activation)
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
    """MobileNetV2 for 32x32 inputs: stem, 17 InvertedResidual blocks in `layers`, 1x1 conv to 1280, pool, linear."""

    # (expansion, out_planes, num_blocks, stride); NOTE: stride 1 (not 2) in the stem and the second
    # stage, the CIFAR change for 32x32 inputs, so the last feature map is 4x4.
    cfg = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes: int = 100, sigmoid_blocks: tuple[int, ...] = (), activation: str = "relu",
                 dropout: float = 0.0):
        super().__init__()
        _add_stem(self, 32, activation)
        blocks, in_planes = [], 32
        for expansion, out_planes, num_blocks, stride in self.cfg:
            for s in [stride] + [1] * (num_blocks - 1):
                block_activation = "sigmoid" if len(blocks) in sigmoid_blocks else activation
                blocks.append(InvertedResidual(in_planes, out_planes, expansion, s, block_activation))
                in_planes = out_planes
        self.layers = nn.Sequential(*blocks)
        self.conv2 = nn.Conv2d(320, 1280, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.act2 = _activation(activation)
        self.dropout = _dropout(dropout)
        self.linear = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: B x 3 x 32 x 32 -> logits B x classes
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = self.act2(self.bn2(self.conv2(out)))
        out = F.avg_pool2d(out, 4).flatten(1)  # B x 1280 x 4 x 4 -> B x 1280
        return self.linear(self.dropout(out))


class DepthwiseSeparable(nn.Module):
    """MobileNet v1 block: 3x3 depthwise (stride) -> 1x1 pointwise, each with BN and activation."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, activation: str = "relu"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, in_planes, kernel_size=3, stride=stride, padding=1, groups=in_planes,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv2 = nn.Conv2d(in_planes, out_planes, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.act1 = _activation(activation)
        self.act2 = _activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))


class MobileNet(nn.Module):
    """MobileNet v1 for 32x32 inputs: stem, 13 DepthwiseSeparable blocks in `layers`, pool, linear."""

    # out_planes, or (out_planes, stride); NOTE: stem stride 1 for 32x32 inputs, last map 2x2.
    cfg = [64, (128, 2), 128, (256, 2), 256, (512, 2), 512, 512, 512, 512, 512, (1024, 2), 1024]

    def __init__(self, num_classes: int = 100, sigmoid_blocks: tuple[int, ...] = (), activation: str = "relu",
                 dropout: float = 0.0):
        super().__init__()
        _add_stem(self, 32, activation)
        blocks, in_planes = [], 32
        for item in self.cfg:
            out_planes, stride = item if isinstance(item, tuple) else (item, 1)
            block_activation = "sigmoid" if len(blocks) in sigmoid_blocks else activation
            blocks.append(DepthwiseSeparable(in_planes, out_planes, stride, block_activation))
            in_planes = out_planes
        self.layers = nn.Sequential(*blocks)
        self.dropout = _dropout(dropout)
        self.linear = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: B x 3 x 32 x 32 -> logits B x classes
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.avg_pool2d(out, 2).flatten(1)  # B x 1024 x 2 x 2 -> B x 1024
        return self.linear(self.dropout(out))


class ConvPool(nn.Module):
    """small_cnn block: 3x3 conv (padding 1, with bias: there is no BatchNorm) -> activation -> 2x2 max-pool."""

    def __init__(self, in_planes: int, out_planes: int, activation: str = "relu"):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=3, padding=1)
        self.act = _activation(activation)
        self.pool = nn.MaxPool2d(2)  # halves height and width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.conv(x)))


class SmallCNN(nn.Module):
    """Baseline: three conv blocks of 32/64/128 filters, a 256-unit hidden layer, the classifier."""

    def __init__(self, num_classes: int = 100, sigmoid_blocks: tuple[int, ...] = (), activation: str = "relu",
                 dropout: float = 0.0):
        super().__init__()
        blocks, in_planes = [], 3
        for out_planes in (32, 64, 128):
            block_activation = "sigmoid" if len(blocks) in sigmoid_blocks else activation
            blocks.append(ConvPool(in_planes, out_planes, block_activation))
            in_planes = out_planes
        self.layers = nn.Sequential(*blocks)
        self.hidden = nn.Linear(128 * 4 * 4, 256)
        self.act = _activation(activation)
        self.dropout = _dropout(dropout)
        self.linear = nn.Linear(256, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: B x 3 x 32 x 32 -> logits B x classes
        out = self.layers(x).flatten(1)  # B x 128 x 4 x 4 -> B x 2048
        out = self.dropout(self.act(self.hidden(out)))  # B x 256
        return self.linear(out)


class BasicBlock(nn.Module):
    """ResNet block: 3x3 conv (stride) -> 3x3 conv, plus the input (through a 1x1 conv + BN where the shape
    changes), then the activation."""

    def __init__(self, in_planes: int, planes: int, stride: int, activation: str = "relu"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act1 = _activation(activation)
        self.act2 = _activation(activation)
        self.shortcut = nn.Sequential()  # identity (no state_dict keys) unless the shape changes
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet-18/34. NOTE: 3x3 stride-1 stem and no max-pool (torchvision: 7x7 stride 2 and a max-pool), so
    the stages see 32/16/8/4 pixel maps; every stage after the first halves them in its first block."""

    def __init__(self, arch: str = "resnet18", num_classes: int = 100, sigmoid_blocks: tuple[int, ...] = (),
                 activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        _add_stem(self, 64, activation)
        blocks, in_planes = [], 64
        for stage, (planes, num_blocks) in enumerate(zip((64, 128, 256, 512), RESNET_STAGES[arch], strict=True)):
            for index in range(num_blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                block_activation = "sigmoid" if len(blocks) in sigmoid_blocks else activation
                blocks.append(BasicBlock(in_planes, planes, stride, block_activation))
                in_planes = planes
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = _dropout(dropout)
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: B x 3 x 32 x 32 -> logits B x classes
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = self.pool(out).flatten(1)  # B x 512 x 4 x 4 -> B x 512
        return self.linear(self.dropout(out))


_INIT_WEIGHT = {  # init name -> in-place initialisation of a conv or linear weight
    "kaiming_normal": lambda w: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"),  # std sqrt(2/fan_in)
    "kaiming_uniform": lambda w: nn.init.kaiming_uniform_(w, mode="fan_in", nonlinearity="relu"),  # +-sqrt(6/fan_in)
    "xavier_normal": lambda w: nn.init.xavier_normal_(w, gain=1.0),  # std sqrt(2/(fan_in+fan_out))
    "xavier_uniform": lambda w: nn.init.xavier_uniform_(w, gain=1.0),  # +-sqrt(6/(fan_in+fan_out))
}


def _initialise(model: nn.Module, init: str) -> None:
    """Re-initialise every conv and linear weight by `init` (biases 0) and every BatchNorm to weight 1, bias 0."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            _INIT_WEIGHT[init](module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def build_model(arch: str = "mobilenetv2", num_classes: int = 100, sigmoid_blocks=(), activation: str = "relu",
                init: str = "default", dropout: float = 0.0, pretrained: str = "") -> nn.Module:
    """A CIFAR model: freshly initialised, or a ResNet from `pretrained` weights ("imagenet" or a file of a
    torchvision ResNet state_dict). `sigmoid_blocks` are indices into `model.layers` whose activations become
    Sigmoid. Raises ConfigError (one line) for a value out of range, or weights for an arch without them. At the
    defaults (relu, PyTorch's init, no dropout, no weights file) the options add nothing: same keys, and the same
    weights for a given torch seed, as the plain architecture."""
    if arch not in ARCHS:
        raise ConfigError(f"arch must be one of {sorted(ARCHS)}, got {arch!r}")
    blocks = tuple(int(b) for b in sigmoid_blocks)
    bad = [b for b in blocks if not 0 <= b < ARCHS[arch]]
    if bad:
        raise ConfigError(f"sigmoid_blocks must be indices in 0..{ARCHS[arch] - 1} for {arch}, got {list(blocks)}")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
    if init not in INITS:
        raise ConfigError(f"init must be one of {list(INITS)}, got {init!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
    if not isinstance(pretrained, str):
        raise ConfigError(f"pretrained must be '', 'imagenet' or a path to a state_dict file, got {pretrained!r}")
    if pretrained and arch not in PRETRAINABLE:
        raise ConfigError(f"pretrained weights exist for arch {list(PRETRAINABLE)}, not {arch!r}; use pretrained=''")
    options = {"num_classes": num_classes, "sigmoid_blocks": blocks, "activation": activation, "dropout": dropout}
    if arch in RESNET_STAGES:
        model = ResNet(arch, **options)
    else:
        model = {"mobilenetv2": MobileNetV2, "mobilenet": MobileNet, "small_cnn": SmallCNN}[arch](**options)
    if init != "default":
        _initialise(model, init)
    if pretrained:
        _load_pretrained(model, arch, pretrained)
    return model


def model_size(arch: str, num_classes: int = 100) -> dict[str, int]:
    """{"params": parameters, "macs": multiply-adds of one 3x32x32 image's forward pass}. MACs are counted at the
    Conv2d (output elements x in_channels/groups x kernel height x width) and Linear (in x out) layers; BatchNorm,
    activations, pooling and residual additions are left out, as is usual."""
    with torch.device("meta"):  # shapes only: no memory, no compute, no draws from the global RNG
        model = build_model(arch, num_classes).eval()
        image = torch.zeros(1, 3, 32, 32)
    macs = 0

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs += output.numel() * module.in_channels // module.groups * kh * kw
        else:
            macs += module.in_features * module.out_features

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.register_forward_hook(count)
    model(image)
    return {"params": sum(p.numel() for p in model.parameters()), "macs": macs}


def pretrained_note(arch: str, pretrained: str) -> str:
    """What a model's weights start from, in words (for the plan)."""
    if not pretrained:
        return f"{arch} from random initialisation"
    if pretrained == "imagenet":
        source = "ImageNet weights (torchvision IMAGENET1K_V1)"
    else:
        source = f"the weights in {pretrained}"
    return f"{arch} from {source}: every layer but the 3x3 stem conv and the classifier, which are new"


def _torchvision_keys(model: ResNet, arch: str) -> dict[str, str]:
    """Our state_dict key -> torchvision's, for every tensor taken from torchvision weights: all but the stem conv
    (torchvision's is 7x7) and the classifier (torchvision's has 1000 classes)."""
    position = [(stage, index) for stage, num_blocks in enumerate(RESNET_STAGES[arch]) for index in range(num_blocks)]
    keys = {}
    for key in model.state_dict():
        if key == "conv1.weight" or key.startswith("linear."):
            continue
        if key.startswith("layers."):  # layers.{flat}.{rest} -> layer{stage + 1}.{index}.{rest}
            _, flat, rest = key.split(".", 2)
            stage, index = position[int(flat)]
            keys[key] = f"layer{stage + 1}.{index}." + rest.replace("shortcut.", "downsample.", 1)
        else:
            keys[key] = key  # the stem's bn1
    return keys


def weights_fingerprint(pretrained: str) -> str | None:
    """What a weights file holds (sha256, first 16 hex digits), for the run store's key: a run trained from a file
    is found again only while the file holds the same weights, so new weights saved under the old name (or a
    relative path read from another folder) train a new run instead of reusing one. None for '' and 'imagenet'
    (torchvision's file is fixed: its name carries its hash)."""
    if pretrained in ("", "imagenet"):
        return None
    path = _weights_file(pretrained)
    stat = path.stat()
    return _sha256(str(path.resolve()), (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino))


def _weights_file(pretrained: str) -> Path:
    """The file `pretrained` names; a one-line ConfigError if there is none."""
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise ConfigError(f"pretrained must be '', 'imagenet' or a path to a state_dict file; no file {pretrained!r}")
    return path


@functools.lru_cache(maxsize=16)
def _sha256(path: str, version: tuple) -> str:
    """A file's sha256, read again only when its size, times or inode change (a ResNet-34 file is 87 MB); the
    inode and the change time too, for file systems whose times tick in whole seconds (a file replaced within one)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _read_pretrained(arch: str, pretrained: str) -> dict[str, torch.Tensor]:
    """The torchvision-format state_dict `pretrained` names: ImageNet weights from the torch hub cache (downloaded
    once), or a file."""
    if pretrained == "imagenet":
        import torchvision  # only here: the weights' address lives in its enum

        weights = {"resnet18": torchvision.models.ResNet18_Weights,
                   "resnet34": torchvision.models.ResNet34_Weights}[arch].IMAGENET1K_V1
        file = weights.url.rsplit("/", 1)[-1]
        folder = os.path.join(torch.hub.get_dir(), "checkpoints")
        try:  # reads $TORCH_HOME/hub/checkpoints/<file> if it is there, else downloads it there
            return torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=True, weights_only=True)
        except OSError as error:  # urllib's URLError: no network
            reason = " ".join(str(error).split())
            raise ConfigError(f"pretrained='imagenet' needs the file {file} in {folder} (download failed: {reason}) "
                              f"or pretrained=<path to a torchvision {arch} state_dict file>") from None
        except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as error:  # a cached file cut short
            raise ConfigError(f"pretrained='imagenet': {os.path.join(folder, file)} does not read "
                              f"({type(error).__name__}); delete it to download it again") from None
    path = _weights_file(pretrained)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ConfigError(f"pretrained={pretrained!r} is not a readable state_dict file "
                          f"({type(error).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"pretrained={pretrained!r} must hold a state_dict (parameter name -> tensor)")
    return state


def _load_pretrained(model: ResNet, arch: str, pretrained: str) -> None:
    """Copy every tensor but the stem conv's and the classifier's from torchvision-format weights into `model`;
    any key missing, left over or of another shape fails, so a model never silently keeps random weights."""
    state = _read_pretrained(arch, pretrained)
    ours = model.state_dict()
    keys, loaded = _torchvision_keys(model, arch), {}
    for key, theirs in keys.items():
        if theirs not in state:
            if key.endswith("num_batches_tracked"):  # torchvision's ImageNet files predate this buffer
                continue
            raise ConfigError(f"pretrained={pretrained!r} is not a torchvision {arch} state_dict: it has no {theirs}")
        if state[theirs].shape != ours[key].shape:
            raise ConfigError(f"pretrained={pretrained!r} is not a torchvision {arch} state_dict: {theirs} has shape "
                              f"{list(state[theirs].shape)}, {arch} needs {list(ours[key].shape)}")
        loaded[key] = state[theirs]
    left_over = sorted(set(state) - set(keys.values()) - {"conv1.weight", "fc.weight", "fc.bias"})
    if left_over:
        raise ConfigError(f"pretrained={pretrained!r} is not a torchvision {arch} state_dict: {left_over[0]} "
                          f"(and {len(left_over) - 1} more keys) has no place in {arch}")
    model.load_state_dict(loaded, strict=False)

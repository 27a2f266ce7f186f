"""The run configuration: one frozen dataclass whose defaults are the brief's baseline.

Variants are made with `dataclasses.replace(config, lr=0.5)`. A config is checked when it is made,
so a bad value fails with one line before any data is read or any model is built.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field

# architecture name -> number of blocks in `model.layers` (the blocks `sigmoid_blocks` indexes)
ARCHS = {"mobilenetv2": 17, "mobilenet": 13, "small_cnn": 3, "resnet18": 8, "resnet34": 16}
PRETRAINABLE = ("resnet18", "resnet34")  # architectures with torchvision ImageNet weights
# The parameter whose gradient 2-norm each architecture logs by default (the brief's: MobileNetV2's layers[8].conv1).
GRAD_NORM_PARAMS = {"mobilenetv2": "layers.8.conv1.weight", "mobilenet": "layers.8.conv1.weight",
                    "small_cnn": "layers.1.conv.weight", "resnet18": "layers.4.conv1.weight",
                    "resnet34": "layers.8.conv1.weight"}
SCHEDULES = ("constant", "cosine", "step", "exponential", "plateau")
OPTIMIZERS = ("sgd", "adam", "adamw")
ACTIVATIONS = ("relu", "gelu", "leaky_relu", "silu", "sigmoid")
INITS = ("default", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform")


class ConfigError(ValueError):
    """A parameter a user typed is outside what is allowed; the message names it and the allowed values."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what a run trains, one field per setting; the defaults are the brief's baseline.

    Frozen and checked when made: a bad value raises ConfigError in one line. `key()` and `config_hash` name the
    run in the store; `data_dir` says only where the data lies and is not part of that name."""

    arch: str = "mobilenetv2"  # "mobilenetv2" (the brief), "mobilenet" (v1, the course's code); baselines:
    # "small_cnn" (3 conv layers 32/64/128 + 2 fully connected), "resnet18", "resnet34" (CIFAR stem: 3x3, no max-pool)
    lr: float = 0.05  # initial learning rate of SGD
    epochs: int = 15  # passes over the training split
    batch_size: int = 128  # images per SGD step; the last partial batch is kept
    momentum: float = 0.9  # SGD momentum (the brief fixes 0.9)
    schedule: str = "constant"  # "constant", or "cosine": per step from lr down to exactly 0 after the last step
    weight_decay: float = 0.0  # SGD's: wd * w added to the gradient, the brief's eq. 3 without momentum
    mixup_alpha: float = 0.0  # mixup Beta(alpha, alpha) parameter; 0 turns mixup off
    sigmoid_blocks: tuple[int, ...] = ()  # indices into model.layers whose activations become Sigmoid (study: 4..10)
    seed: int = 0  # weights, data order, augmentation and mixup draws
    split_seed: int = 0  # seed of the 40k/10k train/validation split (the brief: 0)
    val_size: int = 10_000  # images of the 50k training set held out for validation
    train_subset: int | None = None  # use only the first N images of the training split (None = all)
    val_subset: int | None = None  # use only the first N images of the validation split (None = all)
    grad_norm_param: str = "layers.8.conv1.weight"  # parameter whose gradient 2-norm is logged per epoch
    num_classes: int = 100  # CIFAR-100
    # Options beyond the brief. At these defaults they leave `key()` and the hash as if they were not there.
    optimizer: str = "sgd"  # "sgd"; "adam" or "adamw" (decoupled decay) with betas (momentum, 0.999)
    lr_step_epochs: int = 30  # schedule "step": lr times lr_gamma every lr_step_epochs epochs
    lr_gamma: float = 0.1  # "step"/"exponential" (per epoch) factor; "plateau": factor on each reduction
    plateau_patience: int = 10  # "plateau": epochs without a lower validation loss before the lr is reduced
    activation: str = "relu"  # of every block (and stem); sigmoid_blocks still turns single blocks to Sigmoid
    init: str = "default"  # weights of conv and linear layers: PyTorch's default, or kaiming_/xavier_ normal/uniform
    dropout: float = 0.0  # dropout probability before the classifier (0 = none)
    train_fraction: float = 1.0  # share of the training split used (the first images of its seed-0 order)
    early_stopping_patience: int = 0  # stop after this many epochs without val loss lower by min_delta (0 = off)
    early_stopping_min_delta: float = 0.0  # the least decrease of validation loss that counts as better
    pretrained: str = ""  # "" (random init), "imagenet" (torchvision's weights) or a path to a state_dict file
    # Folder holding cifar-100-python/ (None = lib.core.paths.data_dir()); not part of the run's identity.
    data_dir: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # papermill and JSON hand lists over; the frozen config keeps a sorted tuple so equal configs hash equal.
        blocks = self.sigmoid_blocks
        if isinstance(blocks, str):
            blocks = parse_blocks(blocks)
        if isinstance(blocks, int):
            blocks = (blocks,)
        try:
            object.__setattr__(self, "sigmoid_blocks", tuple(sorted({int(b) for b in blocks})))
        except (TypeError, ValueError):
            raise ConfigError(f"sigmoid_blocks must be a list of block indices, got {blocks!r}") from None
        # The default watched parameter follows the architecture (a replace(arch=...) carries the old one over).
        if self.grad_norm_param in GRAD_NORM_PARAMS.values() and self.arch in GRAD_NORM_PARAMS:
            object.__setattr__(self, "grad_norm_param", GRAD_NORM_PARAMS[self.arch])
        _check(self)

    def key(self) -> dict:
        """The fields that define what is trained (every field but `data_dir`), as a JSON-ready dict. Options
        beyond the brief (OPTIONS) appear only when they differ from their defaults, so a config at those defaults
        keeps the hash and folder of one without them."""
        values = dataclasses.asdict(self)
        values.pop("data_dir")
        values["sigmoid_blocks"] = list(self.sigmoid_blocks)
        for name in OPTIONS:
            if values[name] == _DEFAULTS[name]:
                values.pop(name)
        return values

    def short_name(self, leave_out: tuple[str, ...] = ()) -> str:
        """A readable run name (part of the run's folder name); the hash beside it is what makes it unique.
        `leave_out` drops the parts of those fields, e.g. ("lr",) for the name a stack of runs shares."""
        parts = [("arch", self.arch), ("lr", f"lr{self.lr:g}"), ("schedule", self.schedule),
                 ("epochs", f"e{self.epochs}")]
        if self.weight_decay:
            parts.append(("weight_decay", f"wd{self.weight_decay:g}"))
        if self.mixup_alpha:
            parts.append(("mixup_alpha", f"mix{self.mixup_alpha:g}"))
        if self.sigmoid_blocks:
            parts.append(("sigmoid_blocks", f"sig{self.sigmoid_blocks[0]}-{self.sigmoid_blocks[-1]}"))
        if self.seed:
            parts.append(("seed", f"s{self.seed}"))
        parts += [(name, text) for name, text in self._option_names() if getattr(self, name) != _DEFAULTS[name]]
        return "-".join(text for field, text in parts if field not in leave_out)

    def _option_names(self) -> list[tuple[str, str]]:
        return [("optimizer", self.optimizer), ("lr_step_epochs", f"every{self.lr_step_epochs}"),
                ("lr_gamma", f"g{self.lr_gamma:g}"), ("plateau_patience", f"pp{self.plateau_patience}"),
                ("activation", self.activation), ("init", self.init), ("dropout", f"drop{self.dropout:g}"),
                ("train_fraction", f"frac{self.train_fraction:g}"),
                ("early_stopping_patience", f"es{self.early_stopping_patience}"),
                ("early_stopping_min_delta", f"esd{self.early_stopping_min_delta:g}"),
                ("pretrained", "pretrained")]


OPTIONS = ("optimizer", "lr_step_epochs", "lr_gamma", "plateau_patience", "activation", "init", "dropout",
           "train_fraction", "early_stopping_patience", "early_stopping_min_delta", "pretrained")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}


def check_seeds(seeds) -> None:
    """Raise ConfigError (one line) unless `seeds` is an int >= 1 (not a bool)."""
    if not (isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1):
        raise ConfigError(f"seeds must be an integer >= 1 (runs per setting, seeds 0..seeds-1; the brief: 1), "
                          f"got {seeds!r}")


def with_seeds(config: RunConfig, seeds: int) -> list[RunConfig]:
    """The configs of `seeds` seeds of one setting: `config` (its seed first), then the next seeds."""
    check_seeds(seeds)
    return [dataclasses.replace(config, seed=config.seed + k) for k in range(seeds)]


def parse_blocks(text: str) -> tuple[int, ...]:
    """Block indices typed as text (papermill's `-p sigmoid_blocks "[4, 99]"`): "[4, 5]", "4,5", "4-10", ""."""
    text = text.strip().strip("[]()").strip()
    try:
        if not text:
            return ()
        if "-" in text and "," not in text:
            first, last = (int(part) for part in text.split("-"))
            return tuple(range(first, last + 1))
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"sigmoid_blocks must be block indices like [4, 5, 6] or 4-10, got {text!r}") from None


def _check(c: RunConfig) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(c.arch in ARCHS, f"arch must be one of {sorted(ARCHS)}, got {c.arch!r}")
    need(c.schedule in SCHEDULES, f"schedule must be one of {list(SCHEDULES)}, got {c.schedule!r}")
    need(c.optimizer in OPTIMIZERS, f"optimizer must be one of {list(OPTIMIZERS)}, got {c.optimizer!r}")
    need(c.activation in ACTIVATIONS, f"activation must be one of {list(ACTIVATIONS)}, got {c.activation!r}")
    need(c.init in INITS, f"init must be one of {list(INITS)}, got {c.init!r}")
    for name in ("lr", "momentum", "weight_decay", "mixup_alpha", "lr_gamma", "dropout", "train_fraction",
                 "early_stopping_min_delta"):
        value = getattr(c, name)
        need(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
             f"{name} must be a number, got {value!r}")
    for name in ("epochs", "batch_size", "seed", "split_seed", "val_size", "num_classes", "lr_step_epochs",
                 "plateau_patience", "early_stopping_patience"):
        value = getattr(c, name)
        need(isinstance(value, int) and not isinstance(value, bool), f"{name} must be an integer, got {value!r}")
    need(c.lr > 0, f"lr must be > 0, got {c.lr}")
    need(c.epochs >= 1, f"epochs must be >= 1, got {c.epochs}")
    need(c.batch_size >= 1, f"batch_size must be >= 1, got {c.batch_size}")
    need(0 <= c.momentum < 1, f"momentum must be in [0, 1), got {c.momentum}")
    need(c.weight_decay >= 0, f"weight_decay must be >= 0, got {c.weight_decay}")
    need(c.mixup_alpha >= 0, f"mixup_alpha must be >= 0 (0 = off), got {c.mixup_alpha}")
    need(c.num_classes >= 2, f"num_classes must be >= 2, got {c.num_classes}")
    need(c.lr_step_epochs >= 1, f"lr_step_epochs must be >= 1, got {c.lr_step_epochs}")
    need(0 < c.lr_gamma <= 1, f"lr_gamma must be in (0, 1], got {c.lr_gamma}")
    need(c.plateau_patience >= 0, f"plateau_patience must be >= 0, got {c.plateau_patience}")
    need(0 <= c.dropout < 1, f"dropout must be in [0, 1), got {c.dropout}")
    need(0 < c.train_fraction <= 1, f"train_fraction must be in (0, 1], got {c.train_fraction}")
    need(c.early_stopping_patience >= 0, f"early_stopping_patience must be >= 0 (0 = off), got "
         f"{c.early_stopping_patience}")
    need(c.early_stopping_min_delta >= 0, f"early_stopping_min_delta must be >= 0, got {c.early_stopping_min_delta}")
    need(isinstance(c.pretrained, str), f"pretrained must be '', 'imagenet' or a path to a state_dict file, got "
         f"{c.pretrained!r}")
    need(not c.pretrained or c.arch in PRETRAINABLE, f"pretrained weights exist for arch {list(PRETRAINABLE)}, "
         f"not {c.arch!r}; use pretrained=''")
    need(c.val_size >= 1, f"val_size must be >= 1, got {c.val_size}")
    for name in ("train_subset", "val_subset"):
        value = getattr(c, name)
        need(value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1),
             f"{name} must be None (all) or an integer >= 1, got {value!r}")
    n_blocks = ARCHS[c.arch]
    bad = [b for b in c.sigmoid_blocks if not 0 <= b < n_blocks]
    need(not bad, f"sigmoid_blocks must be indices in 0..{n_blocks - 1} for {c.arch}, got {list(c.sigmoid_blocks)}")


def config_hash(config: RunConfig, data_fingerprint: str, weights_fingerprint: str | None = None) -> str:
    """Hex digest naming a run: the config's training fields plus the identity of the data it reads and, for a
    run starting from a weights file, of that file's content (lib.nets.models.weights_fingerprint)."""
    identity = {"config": config.key(), "data": data_fingerprint}
    if weights_fingerprint is not None:  # absent otherwise, so runs without a weights file keep their hash
        identity["config"]["pretrained"] = "file"  # the content counts, not how the path was spelled
        identity["weights"] = weights_fingerprint
    payload = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]

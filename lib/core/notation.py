"""How the study writes its settings, in the figures (matplotlib's mathtext) and in the paper (LaTeX) alike:
eta for the initial learning rate, lambda for weight decay, alpha for mixup, `layers[8]` for a block."""
from __future__ import annotations

import math
import re


def count(n: int, noun: str) -> str:
    """A number with its noun, singular for one: count(1, "run") -> '1 run', count(3, "run") -> '3 runs'."""
    return f"{n} {noun}{'s' * (n != 1)}"


def power_of_ten(value: float) -> str:
    """A weight-decay coefficient in the brief's notation, math mode without the dollars: 5e-4 -> '5\\times10^{-4}'."""
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    mantissa = f"{value / 10**exponent:.6g}"  # as typed (1.25e-4 -> 1.25), float noise rounded away
    if mantissa == "10":
        mantissa, exponent = "1", exponent + 1
    return f"{mantissa}\\times10^{{{exponent}}}"


def parameter_name(name: str) -> str:
    """A state_dict name as the brief writes it: 'layers.8.conv1.weight' -> 'layers[8].conv1.weight'."""
    return re.sub(r"\.(\d+)", r"[\1]", name)


def blocks_range(blocks, latex: bool = False) -> str:
    """Block indices in words: (4, ..., 10) -> '4–10'; (3, 5, 7) -> '3, 5, 7'. In LaTeX (`latex`): '4--10' and
    '3, 5 and 7'."""
    blocks = list(blocks)
    if len(blocks) > 1 and blocks == list(range(blocks[0], blocks[-1] + 1)):
        return f"{blocks[0]}{'--' if latex else '–'}{blocks[-1]}"
    words = [str(b) for b in blocks]
    if latex and len(words) > 1:
        return ", ".join(words[:-1]) + " and " + words[-1]
    return ", ".join(words)


# The one map of architecture names: arch id -> (how figures and tables name it, how the paper's LaTeX does)
ARCH_NAMES = {"small_cnn": ("small CNN", "small CNN"), "resnet18": ("ResNet-18", "ResNet-18"),
              "resnet34": ("ResNet-34", "ResNet-34"), "mobilenetv2": ("MobileNetV2", "MobileNetV2"),
              "mobilenet": ("MobileNet v1", "MobileNet~(v1)")}


def arch_name(arch: str, tex: bool = False, default: str | None = None) -> str:
    """How figures and tables (or, with `tex`, the paper's LaTeX) name an architecture: 'mobilenet' ->
    'MobileNet v1' ('MobileNet~(v1)'); an id the map lacks -> `default`, else the id itself."""
    names = ARCH_NAMES.get(arch)
    return names[1 if tex else 0] if names else arch if default is None else default


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


# A compared run setting -> (its run's label in tables and results files, its name in figures in the paper's
# notation); a setting not listed is "name=value" in both.
_SETTING_NAMES = {
    "lr": (lambda lr: f"lr={lr:g}", lambda lr: f"$\\eta={lr:g}$"),
    "schedule": (str, str),
    "weight_decay": (lambda wd: f"wd={wd:g}", lambda wd: f"$\\lambda={power_of_ten(wd)}$"),
    "mixup_alpha": (lambda a: f"mixup alpha={a:g}" if a else "no mixup",
                    lambda a: f"mixup $\\alpha={a:g}$" if a else "no mixup"),
    "sigmoid_blocks": (lambda blocks: "sigmoid" if blocks else "relu",
                       lambda blocks: f"Sigmoid in blocks {blocks_range(blocks)}" if blocks else "ReLU"),
    "arch": (str, arch_name),
}


def setting_label(name: str, value) -> str:
    """A run's label in tables and results files from the setting its section compares: ('lr', 0.05) ->
    'lr=0.05', ('mixup_alpha', 0.0) -> 'no mixup', ('dropout', 0.1) -> 'dropout=0.1'."""
    names = _SETTING_NAMES.get(name)
    return names[0](value) if names else f"{name}={_number(value)}"


def setting_legend(name: str, value) -> str:
    """A run's name in figures, in the paper's notation: ('lr', 0.05) -> '$\\eta=0.05$', ('sigmoid_blocks', ())
    -> 'ReLU', ('dropout', 0.1) -> 'dropout = 0.1'."""
    names = _SETTING_NAMES.get(name)
    return names[1](value) if names else f"{name.replace('_', ' ')} = {_number(value)}"


# What decided between values printed alike (`printed`), in the notebooks' and the paper's words alike.
TIE_EQUAL = "equal unrounded, the first listed wins"
TIE_AHEAD = "ahead beyond the printed digits"


def printed(key: str, value: float) -> str:
    """A final metric as the notebooks and the paper print it, so that both call the same values a tie: an accuracy
    (a fraction) in % to 0.1 ('47.1 %'), a loss to 0.001 ('2.011'; a diverged one 'diverged')."""
    if key.endswith("_acc"):
        return f"{100 * value:.1f} %"
    return f"{value:.3f}" if math.isfinite(value) else "diverged"

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

"""How the paper prints numbers and text: one place for every number's format, TeX escaping, and the macros.

What it is: pure functions from numbers (fractions, losses, rates, counts) to the strings the paper prints,
`shown(run)` (a run's numbers as printed), `Macros` (the `\\newcommand`s of numbers.tex) and `Facts` (what a
section hands to generation).
What it is not: which numbers the paper prints (the section modules) or any file reading or writing.
"""
from __future__ import annotations

import dataclasses
import math
import re

from ..core.notation import blocks_range, power_of_ten
from ..studies.reference import PublicRange


def pct(fraction: float, digits: int = 1) -> str:
    """An accuracy or share in [0, 1] as a percentage without the sign: 0.4712 -> '47.1'."""
    return f"{100 * fraction:.{digits}f}"


def loss(value: float) -> str:
    """A loss as printed: 2.011 -> '2.011'; a diverged run's (NaN, inf) -> 'diverged'."""
    return f"{value:.3f}" if math.isfinite(value) else "diverged"


def plain(value: float) -> str:
    """A learning rate or alpha as typed: 0.05 -> '0.05'."""
    return f"{value:g}"


sci = power_of_ten  # a weight-decay coefficient in the brief's notation: 5e-4 -> '5\\times10^{-4}' (math mode)


def points(a: float, b: float) -> str:
    """a - b, two fractions, in percentage points with its sign, in math mode: '$+1.7$'; the difference of the
    percentages as printed (pct), so it agrees with them (47.2 against 47.1 is +0.1, whatever the digits after)."""
    return f"${float(pct(a)) - float(pct(b)):+.1f}$"


def with_sd(value: str, sd: str | None) -> str:
    """A printed mean with its standard deviation over seeds: '47.1\\,$\\pm$\\,0.4'; a single run's value as it is."""
    return value if sd is None else f"{value}\\,$\\pm$\\,{sd}"


def with_sd_short(value: str, sd: str | None) -> str:
    """A table's mean with its sd over seeds in the concise notation, the sd in units of the mean's last digit:
    ('47.1', '0.6') -> '47.1(6)', ('2.412', '0.012') -> '2.412(12)'; a single run's value as it is. The paper's set-up
    explains it once (tables are set at the caption's size: `with_sd`'s '47.1 +- 0.6' is too wide for a column)."""
    if sd is None:
        return value
    if not re.fullmatch(r"-?\d+(\.\d+)?", value) or not re.fullmatch(r"\d+(\.\d+)?", sd):
        return with_sd(value, sd)  # 'diverged', a sd that is not a number: as it is
    digits = len(value.partition(".")[2])
    return f"{value}({round(float(sd) * 10 ** digits)})"


def pct_or_none(fraction: float | None) -> str | None:
    """`pct(fraction)`, or None for None (a standard deviation a single run does not have)."""
    return None if fraction is None else pct(fraction)


def count(n: int) -> str:
    """40000 -> '40{,}000' (a thousands comma without a space after it in TeX)."""
    return f"{int(n):,}".replace(",", "{,}")


def join_words(items: list[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'; one item as it is."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def size(value: float) -> str:
    """A size or a time with about three significant digits and no exponent: 0.643, 11.2, 555."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


TEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    """Text typed by someone (a name, a profile) as LaTeX prints it: 'A & B_c' -> 'A \\& B\\_c'."""
    return "".join(TEX_SPECIALS.get(ch, ch) for ch in text)


def span(found: PublicRange) -> str:
    """A public range as a table prints it: '44--47' (percent, an en dash in TeX)."""
    return f"{found.low:g}--{found.high:g}"


def eta(lr: float) -> str:
    """A learning rate as a table's setting: '$\\eta=0.05$'."""
    return f"$\\eta={plain(lr)}$"


def wd(value: float) -> str:
    """A weight decay as a table's setting: '$\\lambda=5\\times10^{-4}$'."""
    return f"$\\lambda={sci(value)}$"


# A run setting a brief's section compares or fixes, in words: (the noun for what a section varies, as in "we vary
# the initial learning rate", the adjective for its runs, as in "the mixup runs"); a setting not listed is its name.
SETTING_WORDS = {"lr": ("the initial learning rate", "learning-rate"),
                 "schedule": ("the learning-rate schedule", "schedule"),
                 "weight_decay": ("weight decay", "weight-decay"), "mixup_alpha": ("mixup", "mixup"),
                 "sigmoid_blocks": ("Sigmoid in place of ReLU in some blocks", "activation")}


def setting_words(field: str, adjective: bool = False) -> str:
    """What a section that compares `field` varies, in words ("weight decay"), or with `adjective` how its runs
    are named ("weight-decay" runs); a setting SETTING_WORDS lacks, by its name."""
    words = SETTING_WORDS.get(field)
    return words[adjective] if words else tex_escape(field.replace("_", " "))


def setting_phrase(field: str, value, adjective: bool = False) -> str | None:
    """A run setting's value as the paper names it in a recipe or a table row: '$\\eta=0.05$', 'cosine schedule'
    ('cosine' with `adjective`), '$\\lambda=5\\times10^{-4}$', 'mixup $\\alpha=0.2$', 'Sigmoid in blocks 4--10';
    None for a regulariser that is off (no weight decay, no mixup, no Sigmoid)."""
    if field == "lr":
        return eta(value)
    if field == "schedule":
        return value if adjective else f"{value} schedule"
    if field == "weight_decay":
        return wd(value) if value else None
    if field == "mixup_alpha":
        return f"mixup $\\alpha={plain(value)}$" if value else None
    if field == "sigmoid_blocks":
        return f"Sigmoid in blocks {blocks_range(value, latex=True)}" if value else None
    shown_value = plain(value) if isinstance(value, float) else str(value)
    return tex_escape(f"{field.replace('_', ' ')} {shown_value}")


def setting_off(field: str) -> str:
    """A regulariser turned off, in words: 'no weight decay', 'no mixup', 'ReLU'."""
    return "ReLU" if field == "sigmoid_blocks" else f"no {setting_words(field)}"


NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def number_word(n: int) -> str:
    """A small count in words ('five'); 11 and more in digits."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def printed(run: dict, key: str) -> float:
    """A final number as the paper prints it, as a number to compare (a diverged loss: inf, worse than any)."""
    value = run[key]
    if not math.isfinite(value):
        return math.inf
    return float(pct(value)) if "acc" in key else float(loss(value))


def shown(run: dict) -> dict[str, str | None]:
    """A run as the paper prints it, for the macros and templates: its final numbers (accuracies in percent
    without the sign) and the settings the study varies, None for a regulariser the run does not use."""
    c = run["config"]
    blocks = list(c.get("sigmoid_blocks") or [])
    return {"train_loss": loss(run["final_train_loss"]), "train_acc": pct(run["final_train_acc"]),
            "val_loss": loss(run["final_val_loss"]), "val_acc": pct(run["final_val_acc"]),
            "best_val_acc": pct(run["best_val_acc"]), "best_val_epoch": str(run["best_val_epoch"]),
            "epochs": str(run["epochs"]), "lr": plain(c["lr"]), "schedule": c["schedule"],
            "wd": sci(c["weight_decay"]) if c["weight_decay"] else None,
            "alpha": plain(c["mixup_alpha"]) if c["mixup_alpha"] > 0 else None,
            "blocks": blocks_range(blocks, latex=True) if blocks else None,
            "sd": {name: (pct if "acc" in name else loss)(value) if math.isfinite(value) else None for name, value in
                   (("train_loss", sd.get("final_train_loss")), ("train_acc", sd.get("final_train_acc")),
                    ("val_loss", sd.get("final_val_loss")), ("val_acc", sd.get("final_val_acc")))}
            if (sd := run.get("std")) else None}


class Macros:
    """Collects `\\newcommand`s in the order given; names are letters only (TeX's rule), each defined once
    (ValueError otherwise, also when another collection is added with `extend`)."""

    def __init__(self):
        self.lines: list[str] = []
        self.names: set[str] = set()

    def __setitem__(self, name: str, value) -> None:
        if not re.fullmatch(r"[A-Za-z]+", name) or name in self.names:
            raise ValueError(f"bad or repeated macro name {name!r}")
        self.names.add(name)
        self.lines.append(f"\\newcommand{{\\{name}}}{{{value}}}")

    def runs(self, prefix: str, run: dict) -> None:
        """The four final numbers of a run (accuracies in percent, no sign) plus its best validation epoch."""
        numbers = shown(run)
        for name, key in (("TrainLoss", "train_loss"), ("TrainAcc", "train_acc"), ("ValLoss", "val_loss"),
                          ("ValAcc", "val_acc"), ("BestValAcc", "best_val_acc"), ("BestValEpoch", "best_val_epoch")):
            self[prefix + name] = numbers[key]

    def extend(self, other: Macros) -> None:
        """Add `other`'s macros after these, in their order."""
        for line in other.lines:
            name = line[len("\\newcommand{\\"):line.index("}")]
            if name in self.names:
                raise ValueError(f"bad or repeated macro name {name!r}")
            self.names.add(name)
            self.lines.append(line)

    def text(self) -> str:
        """numbers.tex's body: one `\\newcommand` a line."""
        return "\n".join(self.lines) + "\n"


@dataclasses.dataclass
class Facts:
    """What one paper section hands to generation: its number macros, its tables (file stem -> tabular text; None
    removes a table an earlier build left), other generated files (name -> text, e.g. code listings) and the
    values its prose template prints."""
    macros: Macros = dataclasses.field(default_factory=Macros)
    values: dict = dataclasses.field(default_factory=dict)
    tables: dict[str, str | None] = dataclasses.field(default_factory=dict)
    files: dict[str, str] = dataclasses.field(default_factory=dict)

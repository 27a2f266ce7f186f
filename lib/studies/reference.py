"""Public results to compare with (lib/studies/public_ranges.json): does a run reproduce what others measured?

Only runs on the official CIFAR-100 in the full profile are compared, and only with a range measured for the
same model and exactly the same settings; otherwise the answer is "no public range", never another model's.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..core.config import OPTIONS, RunConfig

RANGES_FILE = Path(__file__).with_name("public_ranges.json")
SAME_RECIPE = "ai6103reports"  # the bibliography key of the course reports that used the brief's recipe


@dataclass(frozen=True)
class PublicRange:
    """An accuracy range (percent) others measured for one model and setting, with where it was published."""

    low: float  # accuracy, percent
    high: float
    source: str
    cite: str = SAME_RECIPE  # its key in report/references.bib

    def verdict(self, accuracy: float) -> str:
        """'within' or 'OUTSIDE' the range, for an accuracy given as a fraction, judged as the paper prints it (in
        percent to 0.1: 0.43996 is 44.0, within 44–47)."""
        return "within" if self.low <= round(100 * accuracy, 1) <= self.high else "OUTSIDE"

    def __str__(self) -> str:
        return f"{self.low:g}–{self.high:g} %"


@lru_cache(maxsize=1)
def _ranges() -> list[dict]:
    return json.loads(RANGES_FILE.read_text())["ranges"]


def applies(data_kind: str, profile: str) -> bool:
    """Whether runs can be compared with public results at all: the official CIFAR-100 in the full profile."""
    return data_kind == "cifar100" and profile == "full"


def public_range(config: dict, metric: str, data_kind: str, profile: str,
                 final_model: bool = False) -> PublicRange | None:
    """The public range of `metric` ("val_acc" or "test_acc") for a run (its results-file `config`), or None.
    `final_model`: the run is the study's final model (some ranges are stated only for that)."""
    if not applies(data_kind, profile):
        return None
    brief = RunConfig()
    if any(config.get(name, getattr(brief, name)) != getattr(brief, name) for name in OPTIONS):
        return None  # an option beyond the brief (another optimiser, schedule parameter, ...): no public range
    for entry in _ranges():
        if entry["arch"] != config["arch"] or entry["metric"] != metric:
            continue
        if entry.get("final_model") and not final_model:
            continue
        if all(_same(config[key], value) for key, value in entry["settings"].items()):
            return PublicRange(entry["low"], entry["high"], entry["source"], entry.get("cite", SAME_RECIPE))
    return None


def _same(ours, theirs) -> bool:
    if isinstance(theirs, list):
        return list(ours) == theirs
    return ours == theirs if isinstance(theirs, str) else abs(float(ours) - float(theirs)) < 1e-12


def compare(config: dict, metric: str, accuracy: float, data_kind: str, profile: str,
            final_model: bool = False) -> str:
    """One cell for a table: 'public 44–47 %: within', 'public 44–47 %: OUTSIDE', or 'no public range'."""
    found = public_range(config, metric, data_kind, profile, final_model)
    return "no public range" if found is None else f"public {found}: {found.verdict(accuracy)}"

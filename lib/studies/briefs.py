"""The briefs: each a term's study as data (`briefs/<name>.toml`), read and checked here.

A brief says, in order, which sections its study has. A training section names the run setting it compares and
the values, the section whose chosen run it starts from and the settings it fixes there, its length ("short": the
profile's learning-rate epochs, or "long") and the metrics it may choose by (the first is its default; none: it
chooses nothing and hands nothing on). A brief names the section whose choice is the final model (`final`) and the
step that looks at the test set once, after that choice (`test_set = true`); its default architecture, the paper's
title and page budget. Every field: docs/extending.md.

`load(name)` reads one brief and refuses a bad one in one line naming the brief, the section and what is allowed,
before anything trains. What it is not: the runs of a section (lib.studies.sections turns a brief into configs),
the notebooks, or the paper.
"""
from __future__ import annotations

import dataclasses
import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..core import paths
from ..core.config import ARCHS, ConfigError, RunConfig

METRICS = {"train_loss": ("final_train_loss", False), "val_acc": ("final_val_acc", True),
           "val_loss": ("final_val_loss", False)}  # what a section may choose by: name -> (summary key, larger?)
EPOCHS = ("short", "long")
DEFAULT = "mixup"  # the brief `make all` runs without BRIEF=
# Run settings a section may compare or fix: every RunConfig field but what says where data lies or sizes a profile.
SETTINGS = tuple(f.name for f in dataclasses.fields(RunConfig)
                 if f.name not in ("data_dir", "epochs", "val_size", "train_subset", "val_subset", "num_classes"))


class BriefError(ConfigError):
    """A brief that cannot be run: the message names the brief, the section and what is allowed (one line)."""


@dataclass(frozen=True)
class Section:
    """One entry of a brief: a notebook (notebooks/<name>.ipynb) and, for a training section, its runs."""

    name: str  # its notebook notebooks/<name>.ipynb, its prose report/prose/<name>.tex.j2, its report module
    compares: str | None = None  # the RunConfig field its runs differ in; None: it trains nothing
    values: tuple = ()  # the compared values, in the order of the tables and figures
    starts_from: str | None = None  # the section whose chosen run's settings its runs start from
    fixed: tuple[tuple[str, object], ...] = ()  # settings it sets whatever the run it starts from had
    epochs: str = "long"  # "short" (the profile's learning-rate epochs) or "long"
    choose_by: tuple[str, ...] = ()  # metrics (METRICS) that may pick the run it hands on, default first
    test_set: bool = False  # the one look at the test set: the brief's final model, evaluated once

    @property
    def trains(self) -> bool:
        return self.compares is not None


@dataclass(frozen=True)
class Brief:
    name: str  # briefs/<name>.toml
    about: str  # one line: what the brief asks
    title: str  # the paper's title; {arch} and {data} stand for the architecture's and the data's names
    arch: str  # the default architecture (lib.core.config.ARCHS)
    final: str  # the section whose chosen run is the final model, the one that meets the test set
    sections: tuple[Section, ...]
    pages: int = 6  # the paper's page budget, without references

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sections)

    @property
    def training(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sections if s.trains)

    @property
    def test_step(self) -> str:
        return next(s.name for s in self.sections if s.test_set)

    def section(self, name: str) -> Section:
        for spec in self.sections:
            if spec.name == name:
                return spec
        raise ValueError(f"brief {self.name} has no section {name!r}; its sections are {list(self.names)}")


def available(folder: Path | None = None) -> list[str]:
    """The briefs there are: the names of briefs/*.toml."""
    return sorted(p.stem for p in (folder or paths.briefs_dir()).glob("*.toml"))


@functools.cache
def load(name: str, folder: Path | None = None) -> Brief:
    """The brief `name` from briefs/<name>.toml (or `folder`), checked (`check`); BriefError, one line, for an
    unknown name or a brief that cannot run."""
    folder = folder or paths.briefs_dir()
    path = folder / f"{name}.toml"
    if not path.is_file():
        raise BriefError(f"brief must be one of {available(folder)} (files in {folder}), got {name!r}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise BriefError(f"brief {name} ({path}) does not parse: {error}") from None
    return check(parse(name, data))


BRIEF_KEYS = {"about", "title", "arch", "final", "pages", "section"}
SECTION_KEYS = {field.name for field in dataclasses.fields(Section)}


def parse(name: str, data: dict) -> Brief:
    """A Brief from a brief file's TOML tables (unknown keys and missing fields refused, one line)."""
    def refuse_unknown(given: set, allowed: set, where: str) -> None:
        unknown = sorted(given - allowed)
        if unknown:
            raise BriefError(f"brief {name}: {where} has no field {', '.join(unknown)}; allowed: {sorted(allowed)}")

    refuse_unknown(set(data), BRIEF_KEYS, "the brief")
    missing = sorted({"title", "arch", "final", "section"} - set(data))
    if missing:
        raise BriefError(f"brief {name}: missing {', '.join(missing)} (every field: docs/extending.md)")
    sections = []
    for entry in data["section"]:
        refuse_unknown(set(entry), SECTION_KEYS, f"section {entry.get('name', '?')!r}")
        if "name" not in entry:
            raise BriefError(f"brief {name}: a section without a name (its notebook's name, e.g. 'weight_decay')")
        values = tuple(tuple(v) if isinstance(v, list) else v for v in entry.get("values", ()))
        sections.append(Section(**{**entry, "values": values, "fixed": tuple(sorted(entry.get("fixed", {}).items())),
                                   "choose_by": tuple(entry.get("choose_by", ()))}))
    return Brief(name=name, about=data.get("about", ""), title=data["title"], arch=data["arch"],
                 final=data["final"], sections=tuple(sections), pages=data.get("pages", 6))


def check(brief: Brief) -> Brief:
    """`brief` if it can run: sections named once, each with its notebook; a training section compares a run
    setting with at least two different values, starts from a training section before it that chooses, fixes run
    settings only, has epochs "short" or "long" and chooses by METRICS; the final model is chosen by a training
    section; exactly one test step, after that section. Else BriefError, one line."""
    def refuse(section: str | None, problem: str) -> None:
        where = f"section {section}: " if section else ""
        raise BriefError(f"brief {brief.name}: {where}{problem}")

    if brief.arch not in ARCHS:
        refuse(None, f"arch must be one of {sorted(ARCHS)}, got {brief.arch!r}")
    seen: list[str] = []
    for spec in brief.sections:
        if spec.name in seen:
            refuse(spec.name, "named twice; each section comes once")
        if not (paths.notebooks_dir() / f"{spec.name}.ipynb").is_file():
            refuse(spec.name, f"no notebook notebooks/{spec.name}.ipynb; the notebooks are "
                              f"{sorted(p.stem for p in paths.notebooks_dir().glob('*.ipynb'))}")
        if spec.trains:
            _check_training(brief, spec, seen, refuse)
        elif spec.values or spec.starts_from or spec.fixed or spec.choose_by:
            refuse(spec.name, "values, starts_from, fixed and choose_by need compares (the run setting it varies)")
        seen.append(spec.name)
    choosers = [s.name for s in brief.sections if s.choose_by]
    if brief.final not in choosers:
        refuse(None, f"final must name a section that chooses (has choose_by): one of {choosers}, got "
                     f"{brief.final!r}")
    tests = [s.name for s in brief.sections if s.test_set]
    if len(tests) != 1:
        refuse(None, f"needs exactly one step with test_set = true (the one look at the test set), found {tests}")
    if brief.names.index(tests[0]) < brief.names.index(brief.final):
        refuse(tests[0], f"looks at the test set before {brief.final}, the final choice, is made: put it after")
    return brief


def _check_training(brief: Brief, spec: Section, before: list[str], refuse) -> None:
    if spec.compares not in SETTINGS:
        refuse(spec.name, f"compares must be a run setting, one of {list(SETTINGS)}, got {spec.compares!r}")
    if len(set(spec.values)) < 2:
        refuse(spec.name, f"compares nothing: values must list at least two different {spec.compares} values, got "
                          f"{list(spec.values)}")
    choosers = [name for name in before if brief.section(name).choose_by]
    if spec.starts_from is not None and spec.starts_from not in choosers:
        refuse(spec.name, f"starts_from must be a section before it that chooses, one of {choosers}, got "
                          f"{spec.starts_from!r}")
    bad = sorted(name for name, _ in spec.fixed if name not in SETTINGS or name == spec.compares)
    if bad:
        refuse(spec.name, f"fixed may set run settings other than {spec.compares}, got {bad}")
    if spec.epochs not in EPOCHS:
        refuse(spec.name, f"epochs must be one of {list(EPOCHS)}, got {spec.epochs!r}")
    unknown = sorted(set(spec.choose_by) - set(METRICS))
    if unknown:
        refuse(spec.name, f"choose_by must list metrics of {list(METRICS)}, got {unknown}")

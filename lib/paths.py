"""Every folder the workbook reads or writes, decided in one place.

Each can be moved with an environment variable (used by tests and by `make all DATA_DIR=...`).
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


FOLDER_VARIABLES = ("AI6103_DATA_DIR", "AI6103_RUNS_DIR", "AI6103_RESULTS_DIR", "AI6103_FIGURES_DIR",
                    "AI6103_EXECUTED_DIR", "AI6103_NOTEBOOK_DATA_DIR")


def pin_folders(environment: dict) -> None:
    """Make every folder variable in `environment` (e.g. os.environ) absolute, from the current folder: notebooks
    run in another folder (notebooks/, lab/), where a relative AI6103_RUNS_DIR would name another run store."""
    for name in FOLDER_VARIABLES:
        if environment.get(name):
            environment[name] = str(Path(environment[name]).expanduser().resolve())


def _folder(env_name: str, default: str) -> Path:
    return Path(os.environ.get(env_name, PROJECT_ROOT / default)).expanduser().resolve()


def notebook_data_dir() -> str | None:
    """What a notebook's `data_dir = None` means: the DATA_DIR `make lab` was started with (exported as
    AI6103_NOTEBOOK_DATA_DIR), read as `make all DATA_DIR=` reads it; None: the profile's default."""
    return os.environ.get("AI6103_NOTEBOOK_DATA_DIR") or None


def data_dir() -> Path:
    """Where CIFAR-100 lives (a folder holding `cifar-100-python/`)."""
    return _folder("AI6103_DATA_DIR", "data")


def runs_dir() -> Path:
    """The run store: one folder per trained configuration."""
    return _folder("AI6103_RUNS_DIR", "runs")


def results_dir(profile: str | None = None) -> Path:
    """Small JSON files that carry each section's choices and numbers to later sections and the paper; one
    folder per profile (results/<profile>/), so a smoke study never overwrites a full one."""
    root = _folder("AI6103_RESULTS_DIR", "results")
    return root / profile if profile else root


def figures_dir(profile: str | None = None) -> Path:
    """The figures, PDF and PNG, one folder per profile (figures/<profile>/)."""
    root = _folder("AI6103_FIGURES_DIR", "figures")
    return root / profile if profile else root


def executed_dir(profile: str | None = None) -> Path:
    """papermill's executed copies of the notebooks, one folder per profile (executed/<profile>/)."""
    root = _folder("AI6103_EXECUTED_DIR", "executed")
    return root / profile if profile else root


def report_dir() -> Path:
    return PROJECT_ROOT / "report"

"""Every folder the workbook reads or writes, decided in one place.

Each can be moved with an environment variable (AI6103_DATA_DIR, AI6103_RUNS_DIR, ...: read through lib.core.settings;
used by tests and by `make all DATA_DIR=...`); a relative one means the folder this process started in.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .settings import current

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # lib/core/paths.py -> the project


def _folder(value: str | None, default: str) -> Path:
    """The folder a variable's `value` names (None: `default` in the project), absolute."""
    return Path(value or PROJECT_ROOT / default).expanduser().resolve()


def notebook_data_dir() -> str | None:
    """What a notebook's `data_dir = None` means: the DATA_DIR `make lab` was started with (exported as
    AI6103_NOTEBOOK_DATA_DIR), read as `make all DATA_DIR=` reads it; None: the profile's default."""
    return current().notebook_data_dir


def data_dir() -> Path:
    """Where CIFAR-100 lives (a folder holding `cifar-100-python/`)."""
    return _folder(current().data_dir, "data")


def runs_dir() -> Path:
    """The run store: one folder per trained configuration."""
    return _folder(current().runs_dir, "runs")


def study_name() -> str:
    """The session's study, the folder level above the profile's: its brief (AI6103_BRIEF), and the architecture
    where AI6103_ARCH replaces the brief's ("activation", "mixup-resnet18"), so that two briefs, or one brief on
    two architectures, never write into each other's folders."""
    chosen = current()
    return f"{chosen.brief}-{chosen.arch}" if chosen.arch else chosen.brief


def _study_folder(root: Path, profile: str | None) -> Path:
    return root / study_name() / profile if profile else root


def results_dir(profile: str | None = None) -> Path:
    """Small JSON files that carry each section's choices and numbers to later sections and the paper; one
    folder per study and profile (results/<study>/<profile>/, `study_name`), so a smoke study never overwrites a
    full one, nor one brief another's."""
    return _study_folder(_folder(current().results_dir, "results"), profile)


def figures_dir(profile: str | None = None) -> Path:
    """The figures, PDF and PNG, one folder per study and profile (figures/<study>/<profile>/)."""
    return _study_folder(_folder(current().figures_dir, "figures"), profile)


def executed_dir(profile: str | None = None) -> Path:
    """papermill's executed copies of the notebooks, one folder per study and profile
    (executed/<study>/<profile>/)."""
    return _study_folder(_folder(current().executed_dir, "executed"), profile)


def notebooks_dir() -> Path:
    """The committed notebooks, one per section (notebooks/<section>.ipynb); never moved."""
    return PROJECT_ROOT / "notebooks"


def briefs_dir() -> Path:
    """The briefs, one study each (briefs/<name>.toml); never moved."""
    return PROJECT_ROOT / "briefs"


def lab_dir() -> Path:
    """`make lab`'s copies of the notebooks, one folder per study (lab/<study>/); git-ignored."""
    return PROJECT_ROOT / "lab" / study_name()


def report_dir() -> Path:
    """The paper's sources (report/ in the project: paper.tex, the prose templates); never moved."""
    return PROJECT_ROOT / "report"


def paper_dir(profile: str) -> Path:
    """Where `make report` puts a study's paper.pdf (report/<study>/<profile>/; AI6103_REPORT_DIR moves report/)."""
    return _folder(current().report_dir, "report") / study_name() / profile


def paper_build_dir(profile: str) -> Path:
    """Where a study's paper is built (report/build/<study>/<profile>/; AI6103_REPORT_DIR moves report/)."""
    return _folder(current().report_dir, "report") / "build" / study_name() / profile
def unwritable(folder: Path) -> str | None:
    """Why `folder` cannot be written (it is made if missing, then a file is created and removed in it), e.g.
    "Permission denied"; None when it can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".writable-"):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None

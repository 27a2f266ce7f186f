"""Profiles: how big the study is (epochs, split sizes, real or synthetic data), the data folder each reads, and
the brief's baseline config sized for a profile. The table of profiles, for people: README.md "Profiles"."""
from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..core import paths
from ..core.config import RunConfig
from ..core.settings import current, export
from ..nets.data import DataError, write_synthetic_cifar100
from .briefs import load
from .study_lock import check_study_free


@dataclass(frozen=True)
class Profile:
    """One size of the study: epochs of the short and long sections, split sizes, and real or generated data."""

    name: str
    short_epochs: int  # epochs of the learning-rate section (the brief: 15)
    long_epochs: int  # epochs of the schedule, weight-decay, mixup and activation sections (the brief: 300)
    val_size: int  # images held out of the training file for validation (the brief: 10,000)
    train_subset: int | None  # train on the first N images of the training split only (None = all)
    val_subset: int | None  # validate on the first N images of the validation split only (None = all)
    synthetic: tuple[int, int] | None  # (train, test) images of generated data; None = real CIFAR-100
    about: str


PROFILES = {
    "full": Profile("full", 15, 300, 10_000, None, None, None, "the brief's settings on CIFAR-100"),
    "quick": Profile("quick", 5, 30, 10_000, None, None, None, "CIFAR-100, runs shortened to 5 and 30 epochs"),
    "smoke": Profile("smoke", 2, 2, 300, 256, 128, (1200, 300),
                     "synthetic data, 256 training images, 2 epochs: checks the pipeline, says nothing"),
    # The tests' profile: the whole study, notebooks and paper included, as cheap as a profile can be.
    "tiny": Profile("tiny", 1, 1, 200, 128, 64, (600, 200),
                    "synthetic data, 128 training images, 1 epoch: the tests' profile, says nothing"),
    # The GPU check (bench/gpu_session.sh e2e): every size as in `full` but the epochs, on generated data.
    "e2e": Profile("e2e", 2, 6, 10_000, None, None, (50_000, 10_000),
                   "synthetic data of CIFAR-100's size, 2 and 6 epochs: times the whole pipeline, says nothing"),
}


def get_profile(name: str) -> Profile:
    """The profile called `name`; ValueError (one line, naming the profiles) for any other name."""
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {name!r}")
    return PROFILES[name]


def session_profile(profile: str | None, brief: str | None = None) -> str:
    """A notebook's profile: the one given (papermill's parameter, an edit in Lab), else the PROFILE that
    `make lab` was started with (AI6103_PROFILE), else "full". `brief`, if given, is this kernel's brief from here
    on (AI6103_BRIEF; None: make's BRIEF, else "mixup"), checked (lib.studies.briefs). The notebooks' first call:
    it reads this process's settings (lib.core.settings), so a bad environment variable stops the notebook here,
    in one line."""
    chosen = export({"AI6103_BRIEF": brief}) if brief is not None else current()
    load(chosen.brief)  # an unknown or broken brief: one line, before anything runs
    name = profile if profile is not None else chosen.profile
    get_profile(name)
    check_study_free(name)  # a driver writing this profile's results: stop before anything runs
    return name


_ELSEWHERE: list[Path] = []  # while reading_only() runs: its temporary folder


@contextlib.contextmanager
def reading_only():
    """Within it, getting the data writes nothing into the project's folders (a dry run): a synthetic profile whose
    data is not written yet reads the same data (the same fingerprint, so the same run ids) generated in a
    temporary folder, removed on leaving; real data not yet downloaded or unpacked is a DataError, one line."""
    with tempfile.TemporaryDirectory(prefix="ai6103-dry-run-") as folder:
        _ELSEWHERE.append(Path(folder))
        try:
            yield
        finally:
            _ELSEWHERE.remove(Path(folder))


def resolve_data_dir(profile: str, data_dir: str | None = None) -> str:
    """The data folder a profile reads, as an absolute path string.

    `data_dir=None` means `make lab`'s DATA_DIR (lib.core.paths.notebook_data_dir) if given, else the profile's
    default: lib.core.paths.data_dir() for real data, its `synthetic-<profile>` folder (written if missing) for
    generated data. Synthetic data is written only there: a `data_dir` given to a synthetic profile is read as it
    is, and raises DataError unless it holds a complete `cifar-100-python/`. A given `data_dir` that is not an
    existing folder raises DataError (one line), whatever the profile.
    """
    spec = get_profile(profile)
    data_dir = data_dir if data_dir is not None else paths.notebook_data_dir()
    if data_dir is not None:
        folder = Path(data_dir).expanduser().resolve()
        if not folder.is_dir():  # a typo or an unmounted disk: never created here, never a download attempt
            raise DataError(f"data_dir {folder} {'is a file' if folder.exists() else 'does not exist'}: point "
                            f"DATA_DIR (data_dir) at the folder that holds cifar-100-python/ or its .tar.gz, create "
                            f"it first to download into it, or leave it unset to use {paths.data_dir()}")
        if spec.synthetic is not None and not (folder / "cifar-100-python" / "meta").is_file():
            raise DataError(f"data_dir {folder} holds no complete cifar-100-python/ folder, and profile {profile} "
                            f"writes its synthetic data only into a folder of its own: leave data_dir unset for "
                            f"it, or point data_dir at a complete folder")
        return _readable(folder)
    if spec.synthetic is None:
        return _readable(paths.data_dir())
    folder = paths.data_dir() / f"synthetic-{spec.name}"
    if not (folder / "cifar-100-python" / "meta").is_file():
        folder = _ELSEWHERE[-1] / folder.name if _ELSEWHERE else folder  # reading_only
        write_synthetic_cifar100(folder, *spec.synthetic)
    return str(folder)


def _readable(folder: Path) -> str:
    """`folder` as a string; within reading_only, a DataError (one line) unless it holds the unpacked data
    (getting it would download or unpack into it)."""
    if _ELSEWHERE and not (folder / "cifar-100-python" / "meta").is_file():
        raise DataError(f"{folder} holds no unpacked cifar-100-python/ yet, and a dry run writes nothing (no download, "
                        f"no unpacking): run the study once without --dry-run, which gets the data first")
    return str(folder)


def base_config(profile: str, data_dir: str | None = None, arch: str = "mobilenetv2") -> RunConfig:
    """The brief's baseline (lr 0.05, constant, no decay, no mixup) of `arch` sized for a profile, long-section
    epochs."""
    spec = get_profile(profile)
    return RunConfig(arch=arch, epochs=spec.long_epochs, val_size=spec.val_size, train_subset=spec.train_subset,
                     val_subset=spec.val_subset, data_dir=resolve_data_dir(profile, data_dir))

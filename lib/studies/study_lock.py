"""The study's lock: one driver at a time writes a profile's results (and the figures and executed copies made
with them), so two studies never rewrite each other's files or read each other's half-written ones.

The driver (scripts/run_study.py) holds it from before it trains to its end (`hold_study`); a second driver on the
same profile and results folder is refused in one line naming the holder. What writes a section's results without
holding it, a notebook run from Lab or by papermill, checks it (`check_study_free`) at its first call
(lib.studies.profiles.session_profile) and again when it writes its results file (lib.studies.results.write_section),
and stops in one line while a driver holds it; the holding driver's own kernels pass, named by AI6103_STUDY_HOLDER
(lib.core.settings), which the driver sets for them. Built on the run store's lock (lib.running.store.ProcessLock): the
OS releases it when its process ends, so a dead driver's lock is taken over. Reading (the driver's --dry-run plan,
make report) never looks at it. What it is not: the run locks (lib.running.store), which guard one run while it trains.
"""
from __future__ import annotations

from pathlib import Path

from ..core import paths
from ..core.settings import current
from ..running.store import ProcessLock, RunStoreError, lock_holder

LOCK_FILE = ".study.lock"  # in the profile's results folder: one lock per profile and results folder
PATIENCE_S = 0.5  # how long a driver retries before it is refused: a check (lock_holder) holds the file an instant


def lock_file(profile: str) -> Path:
    """The lock's file: in the profile's results folder (results/<profile>/, or AI6103_RESULTS_DIR's)."""
    return paths.results_dir(profile) / LOCK_FILE


def _what_to_do(holder: str) -> str:
    """What to do about the holder "pid N on HOST since ... (command)": wait, or stop it."""
    pid = holder.split()[1] if holder.startswith("pid ") else None
    return f"wait for it to finish, or stop it (Ctrl-C where it runs{f', or kill {pid}' if pid else ''})"


def hold_study(profile: str) -> ProcessLock:
    """The lock a driver holds (`with hold_study(profile):`) from before it trains to its end. Entering it while
    another process holds it raises RunStoreError, one line: who holds it (pid, host, since when, its command) and
    what to do. The results folder must exist."""
    folder = paths.results_dir(profile)
    return ProcessLock(lock_file(profile), lambda holder: (
        f"the {profile} study in {folder} is being run by {holder}: {_what_to_do(holder)}, then run again "
        f"(--dry-run shows the plan meanwhile)"), PATIENCE_S)


def check_study_free(profile: str) -> None:
    """For what writes the profile's results without holding the lock (a notebook): RunStoreError, one line
    naming the holder and what to do, while a driver other than the one that started this process holds it.
    Read-only: it creates no file and never waits."""
    holder = lock_holder(lock_file(profile))
    own = current().study_holder  # set by the driver for its notebook kernels
    if holder is None or (own is not None and holder.startswith(f"{own} ")):
        return
    raise RunStoreError(f"the {profile} study in {paths.results_dir(profile)} is being run by {holder}, and this "
                        f"notebook would write the same results: {_what_to_do(holder)}, then run it again")

"""One study, one driver (lib.studies.study_lock): a second driver or a notebook is refused in one line naming the
holder, the holder's own kernels pass, a dead holder's lock is taken over; the output folders are checked before
training and a figure that cannot be saved names its folder. No training here: the driver runs in this process with its
plan and training replaced; two real drivers on one study are in test_notebooks.py."""
from __future__ import annotations

import errno
import importlib.util
import os
import socket
import subprocess
import sys
import textwrap

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from lib.core import paths
from lib.running.store import RunStoreError, process_identity
from lib.studies import plan, plots
from lib.studies.profiles import session_profile
from lib.studies.results import read_section, write_section
from lib.studies.study_lock import hold_study, lock_file

PROFILE = "tiny"


def _driver():
    """scripts/run_study.py as a module."""
    spec = importlib.util.spec_from_file_location("run_study", paths.PROJECT_ROOT / "scripts" / "run_study.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    return driver


@pytest.fixture
def driver(monkeypatch):
    """The driver, run in this process with its plan and training replaced by recorders (`calls`); the variables
    it sets for its kernels are put back after the test."""
    for name in ("AI6103_PROGRESS", "AI6103_STUDY_HOLDER", "PYTHONWARNINGS"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    monkeypatch.setenv("AI6103_EXECUTED_DIR", str(paths.results_dir().parent / "executed"))
    module = _driver()
    module.calls = []
    monkeypatch.setattr(plan, "print_study_plan", lambda *args, **kwargs: module.calls.append("plan") or 1.0)
    monkeypatch.setattr(module, "train_ahead", lambda *args, **kwargs: module.calls.append("train"))
    monkeypatch.setattr(module, "run_notebook", lambda *args, **kwargs: module.calls.append("notebook") or False)
    return module


def _results_dir():
    paths.results_dir(PROFILE).mkdir(parents=True, exist_ok=True)
    return paths.results_dir(PROFILE)


def test_a_second_driver_is_refused_in_one_line_naming_the_holder_and_may_still_plan(driver, capsys):
    """While the study is held: refused before its plan with one line naming who holds it (pid, host, since when,
    its command) and what to do; --dry-run still prints the plan (reading stays possible)."""
    _results_dir()
    argv = ["--profile", PROFILE, "--only", "learning_rate", "--quiet"]
    with hold_study(PROFILE):
        assert driver.run(argv) == 2
        assert driver.calls == []
        lines = capsys.readouterr().err.splitlines()
        assert driver.run([*argv, "--dry-run"]) == 0 and driver.calls == ["plan"]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"RunStoreError: the {PROFILE} study in {paths.results_dir(PROFILE)} is being run "
                               f"by pid {os.getpid()} on {socket.gethostname()} since ")
    assert f"({' '.join(' '.join(sys.argv).split())[:40]}" in lines[0]  # the holder's command
    assert f"wait for it to finish, or stop it (Ctrl-C where it runs, or kill {os.getpid()})" in lines[0]


def test_a_dead_drivers_lock_is_taken_over(driver, tmp_path):
    """A holder killed with SIGKILL leaves its lock file; the next driver takes the study (and says who it is)."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, time
        lock = open({str(lock_file(PROFILE))!r}, "a+")
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write("pid 1 on elsewhere since then (a driver)"); lock.flush()
        print("held", flush=True)
        time.sleep(600)""")], stdout=subprocess.PIPE, text=True, cwd=_results_dir())
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunStoreError, match=r"is being run by pid 1 on elsewhere since then \(a driver\)"):
            hold_study(PROFILE).__enter__()
    finally:
        holder.kill()
        holder.wait()
    assert driver.run(["--profile", PROFILE, "--only", "learning_rate", "--quiet"]) == 1  # the notebook "failed"
    assert driver.calls == ["plan", "train", "notebook"]
    assert lock_file(PROFILE).read_text().startswith(f"{process_identity()} since ")


def test_a_notebook_stops_while_a_driver_holds_the_study_but_the_drivers_own_kernels_pass(monkeypatch):
    """A notebook (Lab, papermill) stops at its first call, and at writing its results, while another process's
    driver holds its profile; the kernels of the holder, named by AI6103_STUDY_HOLDER, go on; reading goes on."""
    monkeypatch.delenv("AI6103_STUDY_HOLDER", raising=False)  # this process is not a driver's kernel
    write_section("data", PROFILE, "synthetic", [], extra={"by": "before"})
    with hold_study(PROFILE):
        with pytest.raises(RunStoreError, match=r"being run by pid \d+ .* this notebook would write the same results"):
            session_profile(PROFILE)
        with pytest.raises(RunStoreError, match="this notebook would write the same results"):
            write_section("data", PROFILE, "synthetic", [], extra={"by": "another"})
        assert read_section("data", profile=PROFILE)["extra"] == {"by": "before"}
        assert session_profile("smoke") == "smoke"  # another profile's study is not held
        monkeypatch.setenv("AI6103_STUDY_HOLDER", process_identity())  # what the driver gives its kernels
        assert session_profile(PROFILE) == PROFILE
        write_section("data", PROFILE, "synthetic", [], extra={"by": "the holder's kernel"})
    assert read_section("data", profile=PROFILE)["extra"] == {"by": "the holder's kernel"}


@pytest.mark.parametrize("variable, what", [("AI6103_RESULTS_DIR", "results"), ("AI6103_FIGURES_DIR", "figures"),
                                            ("AI6103_RUNS_DIR", "run store")])
def test_an_unwritable_output_folder_stops_the_driver_before_anything_trains(driver, tmp_path, monkeypatch, capsys,
                                                                            variable, what):
    """A folder that cannot be made (here: under a file, which even root cannot write into) is named in one line
    before the plan, the training or any notebook."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv(variable, str(blocker / "folder"))
    assert driver.run(["--profile", PROFILE, "--only", "learning_rate", "--quiet"]) == 2
    assert driver.calls == []
    folder = {"AI6103_RUNS_DIR": blocker / "folder"}.get(variable, blocker / "folder" / "mixup" / PROFILE)
    assert capsys.readouterr().err.splitlines() == [
        f"OSError: the {what} folder {folder} cannot be written (Not a directory): make it writable, or move it "
        f"({variable}); nothing has run"]


@pytest.mark.parametrize("failure", ["read-only folder", "disk full"])
def test_a_figure_that_cannot_be_saved_names_its_folder_and_leaves_the_old_files(tmp_path, monkeypatch, failure):
    """The figure is written to a temporary file and renamed into place: a failed save leaves the last good
    figure and no partial or temporary file, and says in one line which folder refused."""
    folder = tmp_path / "figures"
    folder.mkdir()
    (folder / "f.pdf").write_text("the last good figure")
    if failure == "read-only folder":
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only folder")
        folder.chmod(0o555)
        message = "Permission denied"
    else:
        def disk_full(self, fname, **kwargs):
            with open(fname, "wb") as partial:
                partial.write(b"%PDF-")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(Figure, "savefig", disk_full)
        message = "No space left on device"
    fig = plt.figure()
    try:
        with pytest.raises(OSError) as error:
            plots.save(fig, "f", "cifar100", PROFILE, folder=folder)
    finally:
        folder.chmod(0o755)
        plt.close(fig)
    assert str(error.value) == (f"figure f could not be written to the folder {folder} ({message}): free space "
                                f"there or make it writable, then run the notebook again")
    assert sorted(p.name for p in folder.iterdir()) == ["f.pdf"]
    assert (folder / "f.pdf").read_text() == "the last good figure"


def test_figures_are_written_whole(tmp_path):
    fig = plt.figure()
    plots.save(fig, "f", "cifar100", PROFILE, folder=tmp_path)
    plt.close(fig)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png"]
    assert (tmp_path / "f.pdf").read_bytes().startswith(b"%PDF-")
    assert (tmp_path / "f.png").read_bytes().startswith(b"\x89PNG")

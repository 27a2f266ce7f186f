"""The runtime settings (lib.core.settings): one parser, one line per bad value, and a current() that follows
os.environ.

Pure parsing, no torch: the whole file takes well under a second."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lib.core import settings
from lib.core.settings import VARIABLES, Settings, child_environment, current, from_environment


@pytest.mark.parametrize("name, value, allowed", [
    ("AI6103_CUDA_GRAPHS", "yes", "0 or 1"),  # a flag
    ("AI6103_WORKERS", "0", "a whole number >= 1"),  # a count
    ("AI6103_EVAL_BATCH", "2k", "a positive number of images"),
    ("AI6103_SLURM_MEM_GB", "nan", "a number of GB > 0"),  # a number
    ("AI6103_DEVICE", "gpu", "auto, cpu, cuda or mps"),  # a choice
    ("AI6103_STACK", "-1", "auto or a positive number of runs"),  # a choice or a count
    ("AI6103_SLURM_EXTRA", "=abc", "key=value,key=value (sbatch options)"),
])
def test_a_bad_value_of_each_kind_fails_in_one_line_naming_the_variable(name, value, allowed):
    with pytest.raises(ValueError) as error:
        from_environment({name: value})
    assert str(error.value) == f"{name} must be {allowed}, got {value!r}"


def test_unset_and_blank_variables_take_the_defaults_and_values_are_typed():
    assert from_environment({}) == Settings() == from_environment({name: " " for name in VARIABLES})
    chosen = from_environment({"AI6103_STACK": "auto", "AI6103_SLURM_WAIT": "0", "AI6103_SLURM_TIMEOUT": "2.5",
                               "AI6103_EVAL_BATCH": "500", "AI6103_RUNS_DIR": "/tmp/runs", "WANDB_MODE": "online"})
    assert (chosen.stack, chosen.slurm_wait, chosen.slurm_timeout_s, chosen.eval_batch) == ("auto", False, 2.5, 500)
    assert (chosen.runs_dir, chosen.wandb_mode, from_environment({"AI6103_STACK": "3"}).stack) == (
        "/tmp/runs", "online", 3)


def test_every_field_has_one_variable_and_nothing_else_is_read():
    class Recording(dict):
        def get(self, key, default=None):
            asked.append(key)
            return super().get(key, default)

    asked = []
    from_environment(Recording())
    assert sorted(asked) == sorted(VARIABLES)
    fields = [name for name, _ in VARIABLES.values()]
    assert sorted(fields) == sorted(f.name for f in dataclasses.fields(Settings))


def test_current_follows_the_environment_and_parses_each_state_once(monkeypatch):
    monkeypatch.setenv("AI6103_STACK", "2")
    first = current()
    assert first.stack == 2 and current() is first
    monkeypatch.setenv("AI6103_STACK", "auto")
    assert current().stack == "auto"
    monkeypatch.setenv("AI6103_STACK", "two")
    with pytest.raises(ValueError, match="^AI6103_STACK must be auto or a positive number of runs, got 'two'$"):
        current()


def test_a_child_environment_has_absolute_folders_and_is_checked(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AI6103_RUNS_DIR", "my-runs")
    env = child_environment(AI6103_PROGRESS="text")
    assert env["AI6103_RUNS_DIR"] == str(tmp_path / "my-runs") and env["AI6103_PROGRESS"] == "text"
    assert Path(current().runs_dir) == Path("my-runs")  # this process's environment is left as it is
    with pytest.raises(ValueError, match="AI6103_PROGRESS must be auto"):
        child_environment(AI6103_PROGRESS="fancy")
    monkeypatch.setenv("AI6103_PROGRESS", "auto")  # put back after the test
    assert settings.export({"AI6103_PROGRESS": "text"}).progress == "text"
    assert settings.export({"AI6103_PROGRESS": "auto"}, replace=False).progress == "text"

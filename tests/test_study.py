"""The study as data (lib.studies.briefs, lib.studies.sections): which runs each section makes, from which earlier
choice, in which order.

No training here: upstream choices come from results files written by hand, finished runs from fake summaries. The
chain tests use the `all` brief (both briefs' sections in one chain: learning rate, schedule, weight decay, mixup,
the test step, activation from mixup's choice); the shipped briefs have tests of their own below.
"""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess

import pytest

from lib import ConfigError
from lib.core.config import RunConfig
from lib.running.store import run_path
from lib.studies import sections
from lib.studies.results import write_section


def _row(label: str, config: RunConfig, run_id: str, val_acc: float = 0.5) -> dict:
    return {"run_id": run_id, "label": label, "config": config.key(), "epochs": config.epochs,
            "final_train_loss": 1.0, "final_train_acc": 0.6, "final_val_loss": 1.5, "final_val_acc": val_acc,
            "best_val_acc": val_acc, "best_val_epoch": config.epochs}


@pytest.fixture(autouse=True)
def both_briefs_in_one_chain(monkeypatch):
    monkeypatch.setenv("AI6103_BRIEF", "all")


@pytest.fixture
def smoke_base(synthetic_dir):
    return sections.section_configs("learning_rate", "smoke", str(synthetic_dir))["lr=0.05"]


def test_each_section_starts_from_the_chosen_run_it_names(smoke_base, synthetic_dir):
    """04 trains both decays with the cosine schedule at 02's rate even though 03 chose constant; 05 starts from
    04's chosen run and 06 from 05's, each found by run id; 03's choice feeds nothing."""
    folder = str(synthetic_dir)
    long = dataclasses.replace(smoke_base, epochs=2)
    write_section("learning_rate", "smoke", "synthetic", [_row("lr=0.05", smoke_base, "a")],
                  chosen={"lr": 0.05}, chosen_run_id="a")
    chosen_04 = dataclasses.replace(long, schedule="cosine", weight_decay=1e-4)
    write_section("lr_schedule", "smoke", "synthetic", [_row("constant", long, "c")],
                  chosen={"schedule": "constant"}, chosen_run_id="c")
    write_section("weight_decay", "smoke", "synthetic", [_row("wd=0.0001", chosen_04, "w")],
                  chosen={"weight_decay": 1e-4}, chosen_run_id="w")
    runs_04 = sections.section_configs("weight_decay", "smoke", folder)
    assert [(c.lr, c.schedule, c.weight_decay) for c in runs_04.values()] == [(0.05, "cosine", 5e-4),
                                                                             (0.05, "cosine", 1e-4)]
    runs_05 = sections.section_configs("mixup", "smoke", folder)
    assert list(runs_05) == ["no mixup", "mixup alpha=0.2"]
    assert runs_05["no mixup"] == chosen_04 and run_path(runs_05["no mixup"]) == run_path(chosen_04)  # one run
    chosen_05 = runs_05["mixup alpha=0.2"]
    write_section("mixup", "smoke", "synthetic", [_row("no mixup", chosen_04, "w"),
                                                     _row("mixup alpha=0.2", chosen_05, "m")],
                  chosen={"mixup_alpha": 0.2}, chosen_run_id="m")
    runs_06 = sections.section_configs("activation", "smoke", folder)
    assert runs_06["relu"] == chosen_05 and runs_06["sigmoid"].sigmoid_blocks == tuple(range(4, 11))
    given = sections.section_configs("activation", "smoke", folder, mixup_alpha=0.0)  # a parameter wins
    assert given["relu"] == chosen_04


def test_configs_hash_as_the_notebooks_built_them_before(smoke_base):
    """Same run folders as before the study became data: existing runs are reused, not retrained."""
    built = sections.section_configs("weight_decay", "smoke", smoke_base.data_dir, lr=0.05)
    by_hand = dataclasses.replace(smoke_base, lr=0.05, schedule="cosine", weight_decay=5e-4, epochs=2)
    assert run_path(built["wd=0.0005"]) == run_path(by_hand)
    papermill_int = sections.section_configs("lr_schedule", "smoke", smoke_base.data_dir, lr=1)
    assert run_path(papermill_int["cosine"]) == run_path(dataclasses.replace(smoke_base, lr=1.0, schedule="cosine"))


@pytest.mark.parametrize("section, params, message", [
    ("learning_rate", {"learning_rate": [0.1]}, "takes no parameter learning_rate"),
    ("learning_rate", {"values": []}, "values to compare must list at least one"),
    ("mixup", {"values": [0, -1], "lr": 0.05, "schedule": "cosine", "weight_decay": 0.0}, "mixup_alpha must be >= 0"),
    ("learning_rate", {"values": [0.1, 0.1]}, "lists a value twice"),
])
def test_bad_section_parameters_fail_in_one_line(smoke_base, section, params, message):
    with pytest.raises(ConfigError, match=message):
        sections.section_configs(section, "smoke", smoke_base.data_dir, **params)


def test_the_plan_lists_every_run_in_waves_and_marks_unknown_choices(smoke_base):
    """The full profile: 3 + 2 + 2 + 2 + 2 runs in 4 waves, 9 distinct (05's no-mixup run is 04's chosen run,
    06's relu run is 05's); sections 3 and 4 form one wave, trained in one call; until 02's runs are finished
    every later run says which choice it assumes, and once they are the choice is made as the notebook makes it."""
    folder = smoke_base.data_dir
    trained: list[list[RunConfig]] = []
    done: dict = {}

    def summary_of(config):
        return done.get(run_path(config))

    waves = sections.plan_study("full", folder, {}, summary_of, train_wave=trained.append)
    assert [sorted({r.section for r in wave}) for wave in waves] == [
        ["learning_rate"], ["lr_schedule", "weight_decay"], ["mixup"], ["activation"]]
    assert [len(call) for call in trained] == [3, 4, 2, 2]
    assert len({run_path(r.config) for wave in waves for r in wave}) == 9
    assert all(r.assumes == "learning_rate" for wave in waves[1:] for r in wave)
    assert {r.config.epochs for r in waves[0]} == {15} and {r.config.epochs for r in waves[1]} == {300}

    for run in waves[0]:  # 02 finished: lr 0.01 has the lowest training loss
        done[run_path(run.config)] = {"final_train_loss": run.config.lr, "final_val_acc": 0.1}
    waves = sections.plan_study("full", folder, {}, summary_of)
    assert {r.config.lr for r in waves[1]} == {0.01} and waves[1][0].assumes is None
    assert waves[2][0].assumes == "weight_decay"
    by_val = sections.plan_study("full", folder, {"learning_rate": {"choose_by": "val_acc"}}, summary_of)
    assert {r.config.lr for r in by_val[1]} == {0.5}  # a tie on val acc: the first listed


def test_results_that_no_longer_chain_are_refused(smoke_base):
    """Section 2 re-run alone with another outcome: section 3's runs used the old rate, and the paper would say
    otherwise; the chain check names the notebook to re-run."""
    lr_05, lr_01 = smoke_base, dataclasses.replace(smoke_base, lr=0.01)
    records = {"learning_rate": {"section": "learning_rate", "chosen_run_id": "b",
                                    "runs": [_row("lr=0.05", lr_05, "a"), _row("lr=0.01", lr_01, "b")]},
               "lr_schedule": {"section": "lr_schedule", "chosen_run_id": "c",
                                  "runs": [_row("constant", lr_05, "c")]}}
    with pytest.raises(ValueError, match=r"lr_schedule do not start from .* lr 0.05 \(not 0.01\); re-run notebook "
                                         r"notebooks/lr_schedule.ipynb"):
        sections.check_chain(records)
    records["learning_rate"]["chosen_run_id"] = "a"
    sections.check_chain(records)  # consistent again


def test_the_driver_gives_a_compared_setting_to_its_section_alone():
    """--param mixup_alpha=0.4 is what 05 compares: 06 must start from 05's choice, not from 0.4; sigmoid_blocks is
    06's, not the base of 05. Without 05 in the run, 06 takes it as the setting it starts from."""
    import importlib.util

    from lib.core import paths

    spec = importlib.util.spec_from_file_location("run_study", paths.PROJECT_ROOT / "scripts" / "run_study.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    declared = {name: {"lr", "mixup_alpha", "sigmoid_blocks", "epochs"} for name in ("mixup", "activation")}
    given = {"mixup_alpha": 0.4, "sigmoid_blocks": [3], "epochs": 2}
    assert driver.route_parameters(given, declared) == {"mixup": {"mixup_alpha": 0.4, "epochs": 2},
                                                        "activation": {"sigmoid_blocks": [3], "epochs": 2}}
    alone = driver.route_parameters(given, {"activation": declared["activation"]})
    assert alone == {"activation": given}
    with pytest.raises(ValueError, match=r"^--param lr: learning_rate chooses the lr .* give learning_rate the lr "
                                         r"values to compare instead \(its notebook's parameters: learning_rates"):
        driver.route_parameters({"lr": 0.1}, {"learning_rate": {"learning_rates"}, **declared})
    schedule = driver.route_parameters({"schedule": "step"}, {"lr_schedule": {"schedules"}, "weight_decay":
                                                              {"schedule"}, "mixup": {"schedule"}})
    assert schedule["weight_decay"] == schedule["mixup"] == {"schedule": "step"}  # 03 hands its choice to none
    with pytest.raises(ValueError, match=r"^--seeds: no notebook run here takes it"):
        driver.route_parameters({"seeds": 3}, {"data": {"split_seed"}})


@pytest.mark.parametrize("argv, line", [
    (["--seeds", "two"], "run_study.py: argument --seeds: must be a whole number >= 1, got 'two' (make: SEEDS=...)"),
    (["--profile", "smok"], "run_study.py: argument --profile: invalid choice: 'smok' (choose from 'e2e', 'full', "
                            "'quick', 'smoke', 'tiny') (make: PROFILE=...)"),
])
def test_a_bad_driver_option_is_one_line_naming_its_make_variable(argv, line, capsys):
    import importlib.util

    from lib.core import paths

    spec = importlib.util.spec_from_file_location("run_study", paths.PROJECT_ROOT / "scripts" / "run_study.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    with pytest.raises(SystemExit) as stopped:
        driver.parse_args(argv)
    assert stopped.value.code == 2 and capsys.readouterr().err.splitlines() == [line]
    with pytest.raises(ValueError, match=r"^--param wieght_decays: no notebook run here takes it \(did you mean "
                                         r"weight_decays\?\)"):
        driver.route_parameters({"wieght_decays": [1e-3]}, {"weight_decay": {"weight_decays", "epochs"}})


@pytest.mark.parametrize("section, name, value, allowed", [
    ("learning_rate", "choose_by", "val_loss", "one of ['train_loss', 'val_acc']"),
    ("lr_schedule", "choose_by", "train_loss", "one of ['val_acc']"),
    ("mixup", "n_examples", 0, "an integer >= 1"),
    ("mixup", "min_lambda_draws", 2.5, "an integer >= 0"),
    ("data", "split_seed", -1, "an integer >= 0"),
    ("data", "n_augmentations", "3", "an integer >= 1"),
    ("weight_decay", "data_dir", 7, "None or a folder path"),
])
def test_notebook_parameters_that_are_not_settings_are_checked(section, name, value, allowed):
    with pytest.raises(ConfigError, match=rf"^{name} must be {re.escape(allowed)}"):
        sections.check_parameters(section, **{name: value})
    sections.check_parameters("mixup", n_examples=8, min_lambda_draws=0, data_dir=None)  # the defaults pass


def test_the_plans_seconds_per_epoch_are_of_the_images_it_names(smoke_base, monkeypatch, capsys):
    """The smoke profile trains on subsets of the split: the plan's time per epoch is of those images."""
    from lib.running import cost
    from lib.studies import plan

    speed = {"device": "test", "train_images_per_second": 10.0, "eval_images_per_second": 100.0}
    monkeypatch.setattr(plan, "throughput", lambda *args, **kwargs: speed)
    monkeypatch.setattr(cost, "_benchmark", lambda *args, **kwargs: speed)
    plan.print_study_plan("smoke", smoke_base.data_dir, {}, ("learning_rate",))
    out = capsys.readouterr().out
    n_train, n_val = map(int, re.search(r"(\d+) training and (\d+) validation images per epoch", out).groups())
    assert f"~{plan.format_seconds(n_train / 10 + n_val / 100)} per epoch" in out


def test_the_plan_says_when_a_committed_notebook_was_edited(tmp_path, monkeypatch):
    """A notebook that differs from its committed version gets one line saying the study runs the edit and how to
    see or undo it; an unchanged one gets none; without git (or outside a repository) nothing is said."""
    import importlib.util
    import shutil

    from lib.core import paths

    spec = importlib.util.spec_from_file_location("run_study", paths.PROJECT_ROOT / "scripts" / "run_study.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    notebooks = [tmp_path / "notebooks" / name for name in ("data.ipynb", "learning_rate.ipynb")]
    notebooks[0].parent.mkdir()
    for notebook in notebooks:
        notebook.write_text("{}\n")
    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path)
    assert driver.edited_notebook_notes(notebooks) == []  # not a repository
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    for command in (["init", "-q"], ["add", "."], ["commit", "-qm", "notebooks"]):
        subprocess.run(git + command, check=True)
    notebooks[1].write_text('{"edited": true}\n')
    notes = driver.edited_notebook_notes(notebooks)
    name = "notebooks/learning_rate.ipynb"
    assert notes == [f"{name} differs from its committed version: this study runs your edit (git diff {name} shows "
                     f"it, git checkout {name} undoes it; make lab gives you copies to edit in lab/ instead)"]


def test_make_all_says_before_it_runs_that_it_replaces_what_lab_copies_wrote(tmp_path, monkeypatch):
    """Lab copies whose code differs from notebooks/: one line saying the run uses notebooks/, replaces what the
    copies wrote, and how to run the copies instead; copies that differ only in outputs and parameters, none."""
    import importlib.util
    import json

    from lib.core import paths

    spec = importlib.util.spec_from_file_location("run_study", paths.PROJECT_ROOT / "scripts" / "run_study.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    source, copies = tmp_path / "notebooks", tmp_path / "lab" / "mixup"
    monkeypatch.setattr(driver, "NOTEBOOKS_DIR", source)
    monkeypatch.setattr(paths, "lab_dir", lambda: copies)

    def notebook(folder, name, code, outputs=()):
        folder.mkdir(parents=True, exist_ok=True)
        cells = [{"cell_type": "code", "source": code, "metadata": {}, "outputs": list(outputs)}]
        (folder / name).write_text(json.dumps({"cells": cells}))
        return folder / name

    notebooks = [notebook(source, "data.ipynb", "x = 1"), notebook(source, "mixup.ipynb", "y = 2")]
    notebook(copies, "data.ipynb", "x = 1", outputs=[{"text": "1"}])  # run in Lab: outputs only
    assert driver.lab_copy_notes(notebooks, source) == []
    notebook(copies, "mixup.ipynb", "y = 3")  # edited in Lab
    assert driver.lab_copy_notes(notebooks, source) == [
        f"note: your Lab copies mixup.ipynb in {copies} differ from notebooks/: this run uses notebooks/ and replaces "
        f"the results, figures and paper your copies wrote; to run your copies instead: make all NOTEBOOKS={copies} "
        f"(or scripts/run_study.py --notebooks-dir {copies})"]
    assert driver.lab_copy_notes(notebooks, copies) == []  # running the copies themselves


def test_the_plan_names_no_run_that_waits_on_a_choice(smoke_base, monkeypatch, capsys):
    """Before learning_rate has chosen, the later sections' runs are shown as waiting on that choice, not as
    configs guessed from its first run, and the summary counts them apart from the known runs."""
    from lib.running import cost
    from lib.studies import plan

    speed = {"device": "test", "train_images_per_second": 10.0, "eval_images_per_second": 100.0}
    monkeypatch.setattr(plan, "throughput", lambda *args, **kwargs: speed)
    monkeypatch.setattr(cost, "_benchmark", lambda *args, **kwargs: speed)
    plan.print_study_plan("smoke", smoke_base.data_dir, {}, ("learning_rate", "lr_schedule"))
    out = capsys.readouterr().out
    later = [line for line in out.splitlines() if line.strip().startswith("lr_schedule ")]
    assert later and all("waits on learning_rate's choice" in line for line in later)
    assert "-cosine" not in out and "chooses its first run" not in out  # no guessed config is named
    assert re.search(r"0 of 3 runs known now stored; \d+ runs? waits? on learning_rate's choice", out)


def test_make_labs_data_dir_means_what_make_alls_does(synthetic_dir, tmp_path, monkeypatch):
    """`make lab PROFILE=smoke DATA_DIR=x` reads x as `make all PROFILE=smoke DATA_DIR=x` does: a complete folder
    as it is, an incomplete one refused and never written to."""
    import importlib.util

    from lib import DataError
    from lib.core import paths
    from lib.studies import profiles

    spec = importlib.util.spec_from_file_location("lab", paths.PROJECT_ROOT / "scripts" / "lab.py")
    lab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab)
    for folder in (synthetic_dir, tmp_path / "incomplete"):
        monkeypatch.setenv("AI6103_NOTEBOOK_DATA_DIR", lab.lab_environment("smoke", str(folder))[
            "AI6103_NOTEBOOK_DATA_DIR"])
        if folder == synthetic_dir:
            assert profiles.resolve_data_dir("smoke") == profiles.resolve_data_dir("smoke", str(folder)) == str(folder)
        else:
            with pytest.raises(DataError, match="incomplete does not exist"):
                profiles.resolve_data_dir("smoke")
            assert not folder.exists()


def test_plan_columns_line_up_whatever_the_run_names():
    """A run name longer than any fixed width still leaves the status column aligned (one start for every row)."""
    from lib.studies.plan import aligned

    lines = aligned([["no mixup, seed 0", "mobilenetv2-lr0.05-cosine-e2-wd0.0005", "stored", "-"],
                     ["mixup alpha=0.2, seed 1", "mobilenetv2-lr0.05-cosine-e2-wd0.0005-mix0.2-sig4-10-s1", "to train",
                      "3 s"]])
    assert len({line.index(status) for line, status in zip(lines, ("stored", "to train"), strict=True)}) == 1
    assert len({line.index("mobilenetv2") for line in lines}) == 1 and lines[1].endswith("to train  3 s")


def test_speculation_trains_every_later_choice_at_once_and_chooses_as_without(synthetic_dir):
    """With speculation the second wave's call trains sections 3-6 for every choice they could start from (mixup
    on each weight decay, Sigmoid on each possible section-5 choice): 4 runs more than the chain, none trained
    after that call, and the same planned runs and choices as wave by wave (here 04 chooses its second decay)."""
    def metrics(config):  # a smaller decay, mixup and ReLU validate better; a rate of 0.05 trains best
        return {"final_train_loss": abs(config.lr - 0.05), "final_val_acc": 0.5 - 100 * config.weight_decay
                + config.mixup_alpha - 0.01 * len(config.sigmoid_blocks)}

    def study(speculate: bool) -> tuple[list, list[list]]:
        stored, calls = {}, []

        def train_wave(configs):
            calls.append(list(configs))
            stored.update({config: metrics(config) for config in configs})

        planned = sections.plan_study("smoke", str(synthetic_dir), {}, stored.get, train_wave, speculate=speculate)
        return planned, calls

    chain, chain_calls = study(speculate=False)
    speculated, calls = study(speculate=True)
    assert speculated == chain  # the same runs, so the same choices (04: wd=1e-4, 05: mixup)
    assert [run.config.weight_decay for run in chain[2]] == [1e-4, 1e-4]
    trained, chain_trained = ({c for call in found for c in call} for found in (calls, chain_calls))
    assert chain_trained < trained and len(trained - chain_trained) == 4
    assert {c for call in calls[2:] for c in call} <= set(calls[1])  # nothing new after the speculative call


# ---------------------------------------------------------------- the briefs


def test_each_shipped_brief_is_its_own_study(monkeypatch, synthetic_dir):
    """mixup: MobileNetV2, mixup's choice meets the test set, no activation section; activation: MobileNet v1,
    rates 0.2/0.05/0.01, the test set after weight decay, then ReLU vs Sigmoid from weight decay's choice."""
    from lib.studies import briefs

    mixup, activation = briefs.load("mixup"), briefs.load("activation")
    assert (mixup.arch, mixup.final, mixup.test_step) == ("mobilenetv2", "mixup", "test")
    assert "activation" not in mixup.names and "mixup" not in activation.names
    assert activation.names.index("test") < activation.names.index("activation")
    assert (activation.arch, activation.final, activation.section("activation").starts_from) == (
        "mobilenet", "weight_decay", "weight_decay")
    monkeypatch.setenv("AI6103_BRIEF", "activation")
    runs = sections.section_configs("learning_rate", "smoke", str(synthetic_dir))
    assert [(c.arch, c.lr) for c in runs.values()] == [("mobilenet", 0.2), ("mobilenet", 0.05), ("mobilenet", 0.01)]
    assert sections.waves() == [["learning_rate"], ["lr_schedule", "weight_decay"], ["activation"]]
    monkeypatch.setenv("AI6103_ARCH", "resnet18")  # ARCH= replaces the brief's architecture, in folders of its own
    from lib.core import paths

    assert next(iter(sections.section_configs("learning_rate", "smoke", str(synthetic_dir)).values())).arch == \
        "resnet18"
    assert paths.results_dir("smoke").parts[-2:] == ("activation-resnet18", "smoke")


BRIEF = """title = "t"
arch = "mobilenetv2"
final = "{final}"
[[section]]
name = "learning_rate"
compares = "lr"
values = {values}
choose_by = ["train_loss"]
[[section]]
name = "weight_decay"
starts_from = "{starts_from}"
compares = "weight_decay"
values = [5e-4, 1e-4]
choose_by = ["val_acc"]
[[section]]
name = "{first_step}"
{test}
[[section]]
name = "summary"
"""


@pytest.mark.parametrize("change, line", [
    ({"starts_from": "mixup"}, "brief term: section weight_decay: starts_from must be a section before it that "
                               "chooses, one of ['learning_rate'], got 'mixup'"),
    ({"final": "summary"}, "brief term: final must name a section that chooses (has choose_by): one of "
                           "['learning_rate', 'weight_decay'], got 'summary'"),
    ({"values": "[0.1, 0.1]"}, "brief term: section learning_rate: compares nothing: values must list at least two "
                               "different lr values, got [0.1, 0.1]"),
    ({"first_step": "test", "test": "test_set = true\n[[section]]\nname = \"data\""}, None),  # runs
    ({"test": ""}, "brief term: needs exactly one step with test_set = true"),
    ({"first_step": "dta"}, "brief term: section dta: no notebook notebooks/dta.ipynb"),
])
def test_a_brief_that_cannot_run_is_refused_in_one_line(tmp_path, change, line):
    from lib.studies import briefs

    fields = {"final": "weight_decay", "values": "[0.1, 0.05]", "starts_from": "learning_rate", "first_step": "test",
              "test": "test_set = true"} | change
    (tmp_path / "term.toml").write_text(BRIEF.format(**fields))
    if line is None:
        assert briefs.load("term", tmp_path).test_step == "test"
        return
    with pytest.raises(briefs.BriefError) as refused:
        briefs.load("term", tmp_path)
    assert str(refused.value).startswith(line) and "\n" not in str(refused.value)
    with pytest.raises(briefs.BriefError, match=r"^brief must be one of \['term'\] .*, got 'trem'$"):
        briefs.load("trem", tmp_path)


# The run ids the code before briefs gave these configs (with the data fingerprint "data-fingerprint"): the store
# a user trained then is read without retraining anything.
STORED_BEFORE_BRIEFS = {
    "baseline 15 epochs": ({}, "c3fb0422c3af"), "lr 0.5 15 epochs": ({"lr": 0.5}, "2f5b65b48180"),
    "cosine 300": ({"epochs": 300, "schedule": "cosine"}, "caaa58d4c28a"),
    "wd 5e-4 cosine 300": ({"epochs": 300, "schedule": "cosine", "weight_decay": 5e-4}, "568a43e55296"),
    "mixup 0.2": ({"epochs": 300, "schedule": "cosine", "weight_decay": 5e-4, "mixup_alpha": 0.2}, "1f1b11769064"),
    "v1 sigmoid 4-10": ({"arch": "mobilenet", "epochs": 300, "schedule": "cosine", "weight_decay": 5e-4,
                         "sigmoid_blocks": tuple(range(4, 11))}, "a9ba0e38b160"),
    "v1 lr 0.2 seed 1": ({"arch": "mobilenet", "lr": 0.2, "seed": 1}, "cd2d3c274528"),
    "tiny subset": ({"epochs": 1, "val_size": 200, "train_subset": 128, "val_subset": 64}, "d3ee24e504ef"),
    "adam option": ({"optimizer": "adam"}, "a8af88d372d6"),
}


def test_synthetic_data_keeps_the_identity_it_had_before_briefs(tmp_path):
    """The synthetic files' batch_label is part of their fingerprint, and so of every run's id on them: data (and
    runs) written by the code before briefs are read as the same data, not as modified files trained anew."""
    from lib import data_info, write_synthetic_cifar100

    write_synthetic_cifar100(tmp_path, n_train=60, n_test=20, seed=0)
    assert data_info(str(tmp_path)).fingerprint == "synthetic:e5e57c2ba7299a44497577df801fcaf5"


@pytest.mark.parametrize("name", STORED_BEFORE_BRIEFS)
def test_runs_stored_before_briefs_keep_their_ids(name):
    from lib.core.config import config_hash

    fields, run_id = STORED_BEFORE_BRIEFS[name]
    assert config_hash(RunConfig(**fields), "data-fingerprint") == run_id


def test_changing_a_default_is_seen_with_what_it_does_to_stored_runs():
    """A run's id is the hash of RunConfig.key(): every field of the brief, and each option (lib.core.config.OPTIONS)
    only where it differs from its default, so that adding an option keeps every stored run. Changing a default
    therefore renames stored runs: a brief field's default changes the id of every run that kept it; an option's
    default makes the runs that used the old default hash as if they had set the option (and the ones that set the
    new value hash as unset). Either way the store trains them again: if that is meant, update this list."""
    from lib.core.config import _DEFAULTS, OPTIONS

    assert {name: value for name, value in _DEFAULTS.items() if name != "data_dir"} == {
        "arch": "mobilenetv2", "lr": 0.05, "epochs": 15, "batch_size": 128, "momentum": 0.9, "schedule": "constant",
        "weight_decay": 0.0, "mixup_alpha": 0.0, "sigmoid_blocks": (), "seed": 0, "split_seed": 0, "val_size": 10_000,
        "train_subset": None, "val_subset": None, "grad_norm_param": "layers.8.conv1.weight", "num_classes": 100,
        "optimizer": "sgd", "lr_step_epochs": 30, "lr_gamma": 0.1, "plateau_patience": 10, "activation": "relu",
        "init": "default", "dropout": 0.0, "train_fraction": 1.0, "early_stopping_patience": 0,
        "early_stopping_min_delta": 0.0, "pretrained": ""}, "a default changed: see this test's docstring"
    assert set(OPTIONS) == {"optimizer", "lr_step_epochs", "lr_gamma", "plateau_patience", "activation", "init",
                            "dropout", "train_fraction", "early_stopping_patience", "early_stopping_min_delta",
                            "pretrained"}, "an option moved in or out of the hash's defaults: see the docstring"


def test_a_make_variable_the_workbook_does_not_know_stops_make_in_one_line():
    """`make all PROFLE=smoke` once ran the full study: now make stops before any recipe, naming the closest known
    variable; known variables (values with spaces and quotes too) pass."""
    import shutil

    from lib.core import paths

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # under make test
    typo = subprocess.run(["make", "-n", "all", "PROFLE=smoke"], cwd=paths.PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60, env=env)
    assert typo.returncode == 2 and typo.stdout == ""
    assert len(typo.stderr.splitlines()) == 1 and "make: unknown variable PROFLE (did you mean PROFILE?)" in typo.stderr
    known = subprocess.run(["make", "help", "PROFILE=smoke", "BRIEF=activation", "PARAM=learning_rates='[0.2, 0.1]'"],
                           cwd=paths.PROJECT_ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert known.returncode == 0 and known.stderr == "", known.stderr

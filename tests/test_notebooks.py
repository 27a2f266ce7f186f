"""The study's notebooks: the mixup brief's whole pipeline in the tests' profile (tiny: synthetic data, 1-epoch runs
of 128 images) through scripts/run_study.py and papermill, once per test session, in temporary folders (the
activation brief's runs in tests/test_extending.py, as a brief with a section added).

Checks: every executed notebook ran without an error, the figures exist and are valid PDF (no Type 3
fonts) and PNG files, the results files hold the keys later sections and the paper read, a second run
trains nothing, a failure is named in one line, and the committed notebooks carry no outputs and lint clean.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill
import pytest

from lib.studies import briefs, sections

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BRIEF = briefs.load("mixup")  # the default brief, the one the pipeline below runs
SECTIONS = list(BRIEF.names)
TRAINING_SECTIONS = list(BRIEF.training)
EXPECTED = {  # section -> (keys of "chosen", keys of "extra")
    "data": (set(), {"n_train", "n_val", "mean", "std", "class_prop_min", "class_prop_max", "split_code"}),
    "learning_rate": ({"lr"}, {"best_by_train_loss", "best_by_val_acc"}),
    "lr_schedule": ({"schedule"}, set()),
    "weight_decay": ({"weight_decay"}, set()),
    "mixup": ({"mixup_alpha"}, {"lambda_draws"}),
    "test": (set(), {"test_acc", "test_loss", "test_run_id", "final_section"}),
    "summary": (set(), {"test_acc", "test_run_id"}),
}
PROFILE = "tiny"  # the study's: the cheapest profile runs every notebook and the paper as smoke and full do
OTHER_PROFILE = "smoke"  # a second profile in the same folders


def run_study(env: dict, *args: str, profile: str = PROFILE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "run_study.py"), "--profile", profile, "--quiet",
                           *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def stored_runs(runs_dir: Path) -> dict[str, int]:
    """Finished run folders and the modification time of their summary (changes if a run is retrained)."""
    return {p.parent.name: p.stat().st_mtime_ns for p in runs_dir.glob("*/summary.json")}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The pipeline, run once: its folders (`out`: the profile's own), environment, driver's output."""
    base = tmp_path_factory.mktemp("study")
    dirs = {name: base / name for name in ("runs", "results", "figures", "data", "executed")}
    env = {**os.environ, **{f"AI6103_{name.upper()}_DIR": str(folder) for name, folder in dirs.items()}}
    started = time.time()
    done = run_study(env)
    out = {name: dirs[name] / BRIEF.name / PROFILE for name in ("results", "figures", "executed")}
    return {"dirs": dirs, "out": out, "env": env, "done": done, "seconds": time.time() - started}


@pytest.mark.notebook
def test_pipeline_runs_every_notebook_without_error(study):
    assert study["done"].returncode == 0, study["done"].stdout[-3000:] + study["done"].stderr[-3000:]
    assert sorted(nb.stem for nb in NOTEBOOKS) == sorted({*SECTIONS, *sections.EXTRAS, *briefs.load("all").names,
                                                           *briefs.load("activation").names})
    assert sorted(p.stem for p in study["out"]["executed"].glob("*.ipynb")) == sorted(SECTIONS)  # the brief's alone
    for section in SECTIONS:
        executed = nbformat.read(study["out"]["executed"] / f"{section}.ipynb", as_version=4)
        errors = [o for cell in executed.cells for o in cell.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{section}: {errors[0].ename}: {errors[0].evalue}"
        injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and f'profile = "{PROFILE}"' in injected[0].source  # the parameters are kept in the copy
        text = "".join(o.get("text", "") for cell in executed.cells for o in cell.get("outputs", []))
        assert "not the official CIFAR-100" not in text  # the driver's plan names the data, once per command
    assert "(synthetic data)" in study["done"].stdout


@pytest.mark.notebook
def test_figures_are_valid_pdf_and_png(study):
    figures = study["out"]["figures"]
    stems = [stem for s in SECTIONS for stem in json.loads((study["out"]["results"] / f"{s}.json").read_text())[
        "figures"]]
    assert {stem.partition("_")[0] for stem in stems} >= {"data", "learning", "lr", "weight", "mixup"}
    assert sorted(p.stem for p in figures.glob("*.pdf")) == sorted(stems)  # each drawn figure is listed, and no other
    for stem in stems:
        pdf = (figures / f"{stem}.pdf").read_bytes()
        png = (figures / f"{stem}.png").read_bytes()
        assert pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-1024:], stem
        assert b"/Type3" not in pdf, f"{stem}.pdf embeds Type 3 fonts"
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000, stem


@pytest.mark.notebook
def test_results_files_hold_the_expected_keys(study):
    results = study["out"]["results"]
    records = {s: json.loads((results / f"{s}.json").read_text()) for s in SECTIONS}
    for section, (chosen, extra) in EXPECTED.items():
        record = records[section]
        assert record["section"] == section and record["profile"] == PROFILE and record["data_kind"] == "synthetic"
        assert chosen <= set(record["chosen"]), section
        assert extra <= set(record["extra"]), section
        assert all(stem.startswith(f"{section}_") for stem in record["figures"]), section
    assert not (results / "activation.json").exists()  # the mixup brief has no activation section
    assert len(records["learning_rate"]["runs"]) == 3
    assert records["lr_schedule"]["runs"][0]["config"]["lr"] == records["learning_rate"]["chosen"]["lr"]
    # the chain of chosen runs, by run id: weight decay at the chosen rate with cosine, mixup from its choice
    assert {r["config"]["schedule"] for r in records["weight_decay"]["runs"]} == {"cosine"}
    lr = records["learning_rate"]["chosen"]["lr"]
    assert {r["config"]["lr"] for r in records["weight_decay"]["runs"]} == {lr}
    assert {r["config"]["arch"] for s in TRAINING_SECTIONS for r in records[s]["runs"]} == {"mobilenetv2"}
    no_mixup = next(r for r in records["mixup"]["runs"] if r["label"] == "no mixup")
    assert no_mixup["run_id"] == records["weight_decay"]["chosen_run_id"]
    # the one look at the test set: mixup's choice, once, and the summary says the same
    final = records["mixup"]["chosen_run_id"]
    assert records["test"]["extra"]["test_run_id"] == final == records["summary"]["chosen_run_id"]
    assert records["test"]["extra"]["final_section"] == "mixup"
    assert 0.0 <= records["test"]["extra"]["test_acc"] <= 1.0
    assert records["summary"]["extra"]["test_acc"] == records["test"]["extra"]["test_acc"]
    assert len(records["summary"]["runs"]) == len(stored_runs(study["dirs"]["runs"]))
    assert "randperm" in records["data"]["extra"]["split_code"]


@pytest.mark.notebook
def test_a_rerun_executes_only_the_notebooks_whose_inputs_changed(study, tmp_path):
    """Nothing changed: no notebook runs again, and the driver says so. A parameter of mixup alone changed (the
    histogram's draws): mixup runs again, the notebooks before it do not (copies of the study's outputs; the run store
    is only read). Placed before the tests that run the driver again on the study's folders: their rewritten
    results and figures are, rightly, changed outputs."""
    env = dict(study["env"])
    for name in ("results", "figures", "executed"):
        shutil.copytree(study["dirs"][name], tmp_path / name)
        env[f"AI6103_{name.upper()}_DIR"] = str(tmp_path / name)
    again = run_study(env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(SECTIONS)} of them unchanged and not run again" in again.stdout
    assert "notebook 1/" not in again.stdout
    changed = run_study(env, "--param", "min_lambda_draws=2000")
    assert changed.returncode == 0, changed.stderr[-3000:]
    before = SECTIONS[:SECTIONS.index("mixup")]
    assert all(f"{name}: unchanged" in changed.stdout for name in before)
    assert "mixup: unchanged" not in changed.stdout and " mixup  (elapsed" in changed.stdout


@pytest.mark.notebook
def test_second_run_reuses_the_stored_runs(study):
    """Also with the run store given as a relative path (from where the driver starts): the notebooks, which run
    in notebooks/, read the same store."""
    assert study["done"].returncode == 0
    before = stored_runs(study["dirs"]["runs"])
    started = time.time()
    relative = {**study["env"], "AI6103_RUNS_DIR": os.path.relpath(study["dirs"]["runs"], ROOT)}
    again = run_study(relative, "--executed-dir", str(study["dirs"]["executed"] / "again"),
                      "--only", *TRAINING_SECTIONS[-2:])  # the last wave's: every earlier choice read back
    seconds = time.time() - started
    assert again.returncode == 0, again.stderr[-3000:]
    assert stored_runs(study["dirs"]["runs"]) == before  # nothing retrained, nothing new
    assert "runs stored: nothing to train" in again.stdout
    assert seconds < 0.8 * study["seconds"]
    for section in TRAINING_SECTIONS[-2:]:
        executed = nbformat.read(study["dirs"]["executed"] / "again" / f"{section}.ipynb", as_version=4)
        text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
        counts = re.search(r"(\d+) runs?, (\d+) already stored", text)
        assert counts and counts.group(1) == counts.group(2), f"{section} trained again: {text[:500]}"


@pytest.mark.notebook
def test_a_second_profile_leaves_the_first_ones_outputs_intact(study):
    """Another profile in the same checkout writes results, figures and executed notebooks into folders of its
    own: the first study's files stay as they were."""
    assert study["done"].returncode == 0
    first = {p: p.stat().st_mtime_ns for folder in study["out"].values() for p in folder.rglob("*")}
    other = run_study(study["env"], "--only", "data", profile=OTHER_PROFILE)
    assert other.returncode == 0, other.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for folder in study["out"].values() for p in folder.rglob("*")} == first
    out = {name: study["dirs"][name] / BRIEF.name / OTHER_PROFILE for name in ("results", "figures", "executed")}
    assert json.loads((out["results"] / "data.json").read_text())["profile"] == OTHER_PROFILE
    assert (out["figures"] / "data_class_proportions.pdf").exists()
    assert (out["executed"] / "data.ipynb").exists()


@pytest.mark.notebook
def test_a_second_driver_on_a_running_study_is_refused_and_the_first_finishes_undisturbed(study, tmp_path):
    """Two drivers on one study (copies of the study's results and figures): the second, started while the first
    runs a notebook, stops in one line naming the first (pid and command) and changes nothing; the first, whose
    own kernel writes under its lock, finishes with the results of the undisturbed study. The first is paused
    (SIGSTOP) while the second runs, so that it still holds the study whatever the machine's speed; it runs
    data, the cheapest notebook (about 15 s)."""
    import signal

    env = dict(study["env"])
    for name in ("results", "figures"):
        shutil.copytree(study["dirs"][name], tmp_path / name)
        env[f"AI6103_{name.upper()}_DIR"] = str(tmp_path / name)
    results = tmp_path / "results" / BRIEF.name / PROFILE / "data.json"
    copied = results.stat().st_mtime_ns
    args = ["--only", "data", "--executed-dir", str(tmp_path / "executed")]
    first = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run_study.py"), "--profile", PROFILE, "--quiet",
                              *args], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in first.stdout:
            if "notebook 1/1" in line:
                break
        first.send_signal(signal.SIGSTOP)
        second = run_study(env, *args)
    finally:
        first.send_signal(signal.SIGCONT)
        out, err = first.communicate(timeout=600)
    assert second.returncode == 2 and second.stdout == "", second.stdout[-2000:]
    assert len(second.stderr.splitlines()) == 1, second.stderr
    assert f"is being run by pid {first.pid} on " in second.stderr and "run_study.py --profile tiny" in second.stderr
    assert first.returncode == 0, err[-3000:]
    assert results.stat().st_mtime_ns != copied  # written again, by the first driver's kernel
    assert json.loads(results.read_text()) == json.loads((study["out"]["results"] / results.name).read_text())


@pytest.mark.notebook
def test_a_failing_notebook_is_named_in_one_line(study, tmp_path):
    """A failure only a notebook meets (here: the summary without the sections' results) is named in one line;
    its copy goes to failed/ and the last good executed copy stays as it was (it agrees with the results files);
    bad parameters are refused before, by the driver (the test below)."""
    executed = tmp_path / "executed"
    executed.mkdir()
    (executed / "summary.ipynb").write_text("the last good copy")
    failed = run_study({**study["env"], "AI6103_RESULTS_DIR": str(tmp_path / "results")}, "--executed-dir",
                       str(executed), "--only", "summary")
    assert failed.returncode == 1
    line = [line for line in failed.stderr.splitlines() if line.startswith("FAILED")]
    assert len(line) == 1 and "summary.ipynb, cell" in line[0] and "FileNotFoundError" in line[0], failed.stderr
    assert "run notebook notebooks/learning_rate.ipynb first" in line[0]
    assert f"its copy is at {executed / 'failed' / 'summary.ipynb'}" in line[0]
    assert nbformat.read(executed / "failed" / "summary.ipynb", as_version=4).cells  # kept for inspection
    assert (executed / "summary.ipynb").read_text() == "the last good copy"


@pytest.mark.parametrize("param, message", [
    ("wieght_decays=[1e-3]", "--param wieght_decays: no notebook run here takes it"),  # a typo
    ("choose_by='val_loss'", "choose_by must be one of ['train_loss', 'val_acc']"),  # applied after training
    ("n_examples=0", "n_examples must be an integer >= 1"),
    ("weight_decays=[-1]", "weight_decay must be >= 0, got -1"),
    ("profile='tiny'", "--param profile: give it as --profile"),  # else the driver and the notebooks would differ
    ("arch='mobilenet'", "--param arch: give it as --arch (make: ARCH="),
])
@pytest.mark.notebook
def test_a_bad_parameter_is_refused_before_training(study, tmp_path, monkeypatch, capsys, param, message):
    """The driver in this process (a refusal needs no kernel: 1 s, not 6 s of a new process each)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_study", ROOT / "scripts" / "run_study.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    for name, value in study["env"].items():
        if name.startswith("AI6103_"):
            monkeypatch.setenv(name, value)
    for name in ("AI6103_PROGRESS", "AI6103_BRIEF", "AI6103_ARCH", "PYTHONWARNINGS"):  # the driver sets them
        monkeypatch.setenv(name, os.environ.get(name, ""))
    monkeypatch.setenv("AI6103_RUNS_DIR", str(tmp_path / "runs"))
    assert driver.run(["--profile", PROFILE, "--quiet", "--param", param]) == 2
    out, err = capsys.readouterr()
    assert message in out + err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*/checkpoint.pt"))  # nothing trained


@pytest.mark.notebook
def test_a_stopped_driver_ends_its_kernel_and_says_so(study, tmp_path):
    """SIGTERM (timeout, a cluster's pre-emption) while a notebook runs: the driver ends the kernel (which runs in
    a session of its own) instead of leaving it running, and exits with one line."""
    import psutil

    driver = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run_study.py"), "--profile", PROFILE, "--quiet",
                               "--only", "data", "--executed-dir", str(tmp_path / "executed")], cwd=ROOT,
                              env=study["env"], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in driver.stdout:
        if "notebook 1/1" in line:
            break
    deadline = time.time() + 60
    while not (kernels := psutil.Process(driver.pid).children(recursive=True)) and time.time() < deadline:
        time.sleep(0.2)
    assert kernels, "no kernel started"
    driver.terminate()
    assert driver.wait(timeout=60) == 128 + 15
    assert "STOPPED by SIGTERM" in driver.stderr.read()
    _, alive = psutil.wait_procs(kernels, timeout=20)
    assert not alive, f"kernel processes left running: {alive}"


@pytest.mark.parametrize("notebook, name, typed, message", [
    ("learning_rate", "epochs", "0", "ConfigError: epochs must be >= 1, got 0"),
    ("lr_schedule", "lr", "-1", "ConfigError: lr must be > 0, got -1"),
    ("weight_decay", "schedule", "cosin",
     "ConfigError: schedule must be one of ['constant', 'cosine', 'step', 'exponential', 'plateau'], got 'cosin'"),
    ("activation", "brief", "activatoin", "BriefError: brief must be one of ['activation', 'all', 'mixup']"),
])
@pytest.mark.notebook
def test_bad_papermill_parameters_fail_with_one_line_and_train_nothing(study, tmp_path, notebook, name, typed,
                                                                       message):
    """As a user types them: `papermill -p NAME VALUE` (papermill infers the type), before any training."""
    before = sorted(p.name for p in study["dirs"]["runs"].iterdir())
    failed = subprocess.run([sys.executable, "-m", "papermill", str(ROOT / "notebooks" / f"{notebook}.ipynb"),
                             str(tmp_path / "out.ipynb"), "-k", "ai6103", "--cwd", str(ROOT / "notebooks"),
                             "-p", "profile", PROFILE, "-p", name, typed], env=study["env"], capture_output=True,
                            text=True, timeout=300)
    assert failed.returncode != 0
    assert message in failed.stderr, failed.stderr[-2000:]
    assert sorted(p.name for p in study["dirs"]["runs"].iterdir()) == before


@pytest.mark.notebook
def test_paper_builds_from_the_pipeline(study, tmp_path):
    if shutil.which("latexmk") is None or shutil.which("pdfinfo") is None:
        pytest.skip("TeX or poppler is not installed (make setup installs them)")
    from test_report import _text, check_paper

    from lib.report import build_report

    dirs = study["out"]
    pdf = build_report(dirs["results"], dirs["figures"], tmp_path / "build")
    check_paper(pdf, (ROOT / "report" / "paper.tex").read_text(), dirs["figures"])
    text = " ".join(_text(pdf, 1, 99).split())
    test_acc = json.loads((dirs["results"] / "summary.json").read_text())["extra"]["test_acc"]
    assert f"{100 * test_acc:.1f}" in text
    assert "synthetic" in _text(pdf, 1, 1).lower()


def test_committed_notebooks_carry_no_outputs():
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs"
    verify = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", *map(str, NOTEBOOKS)],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_every_notebook_has_one_parameters_cell_with_help():
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name
        parameters = papermill.inspect_notebook(str(path))
        assert {"profile", "data_dir"} <= set(parameters), path.name
        assert all(p["help"] for p in parameters.values()), f"{path.name}: a parameter without a # help comment"


def test_no_notebook_assigns_to_a_parameter_after_its_parameters_cell():
    """In Lab a cell is re-run after its upstream notebook changed: a parameter must still hold what was given, not
    a value an earlier run stored in its name (03 once kept its old inherited `lr` that way). `profile` is the one
    exception: session_profile(profile) gives the same profile again."""
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        parameters = set(papermill.inspect_notebook(str(path))) - {"profile"}
        code = [c for c in notebook.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
        assigned = {node.id for cell in code for node in ast.walk(ast.parse(cell.source))
                    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
        assert not assigned & parameters, f"{path.name} assigns to its parameters {sorted(assigned & parameters)}"


def test_code_and_notebooks_pass_ruff():
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "lib", "scripts", "tests", "notebooks"], cwd=ROOT,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-3000:]

"""Train the study's runs, then run its notebooks in order through papermill: `make notebooks` / `make all`.

First every run of the sections run here is trained in this process, wave by wave as lib.studies.sections orders them
(the runs of one wave, e.g. sections 3 and 4, train together where that pays): one set-up instead of one per
notebook. Then each notebook in notebooks/ runs with the project's `ai6103` kernel, in that folder, with the parameters
`profile` and `data_dir` (plus any `--param NAME=VALUE` the notebook declares), and finds its runs in the run
store; its executed copy, outputs and parameters kept, goes to executed/<profile>/. The kernels' output (the
plan, the tables) streams to this terminal. A notebook runs into a temporary copy that replaces its executed copy
only when it ran through, so executed/<profile>/ holds the last good run of each notebook, which agrees with the
results files it wrote. The first failing notebook stops the run with one line naming the notebook, the cell and
the error; its copy goes to executed/<profile>/failed/ for inspection. One driver runs a profile's study at a time:
before anything trains it checks that every folder it writes takes a file and takes the study's lock
(lib.studies.study_lock), which it holds to the end; a second driver, or a notebook started from Lab, on the same
profile and results folder stops in one line naming it (`--dry-run` prints the plan, and only that, meanwhile). The
environment's settings (lib.core.settings) are read first: a bad value stops the driver in one line, before anything
runs; the kernels get the same settings, with AI6103_PROGRESS=text, every folder variable made absolute and
AI6103_STUDY_HOLDER naming the driver.

The notebooks and their order are the brief's (--brief, make's BRIEF; briefs/<name>.toml): `--brief activation`
runs exactly that brief's notebooks into its own folders (executed/<brief>/<profile>/, results/..., figures/...).

    python scripts/run_study.py --profile smoke
    python scripts/run_study.py --brief activation --profile smoke --params "learning_rates=[0.2,0.1] seeds=2"
    python scripts/run_study.py --profile full --data-dir /data/cifar --only mixup test summary
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import functools
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from lib import ConfigError, DataError, RunStoreError
from lib.core import paths, settings
from lib.core.checkpoint import SaveError, atomic_write_text
from lib.core.config import ARCHS
from lib.core.notation import count
from lib.nets.data import NOT_OFFICIAL, silence_unofficial_warning
from lib.nets.device import apply_torch_settings
from lib.running import executor
from lib.running.cost import probes_not_cached
from lib.running.store import peek_summary, process_identity
from lib.studies import briefs, plan, sections, study_lock
from lib.studies.profiles import PROFILES, reading_only

NOTEBOOKS_DIR = paths.notebooks_dir()
KERNEL = "ai6103"  # the project kernel `make setup` installs into .venv (a user's own python3 cannot shadow it)
NOTEBOOK_OVERHEAD_S = 8.0  # kernel start, imports and figures of one notebook, for the overall estimate


MAKE_VARIABLES = {"--profile": "PROFILE", "--seeds": "SEEDS", "--data-dir": "DATA_DIR", "--brief": "BRIEF",
                  "--arch": "ARCH", "--params": "PARAM"}  # the flags make sets


class OneLineParser(argparse.ArgumentParser):
    """Argument errors in one line (no usage block), naming the make variable that sets the option."""

    def error(self, message: str):
        flag = next((flag for flag in MAKE_VARIABLES if f"argument {flag}" in message), None)
        self.exit(2, f"{self.prog}: {message}" + (f" (make: {MAKE_VARIABLES[flag]}=...)" if flag else "") + "\n")


def whole_number(text: str) -> int:
    """--seeds: a whole number >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(prog="run_study.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="full", choices=sorted(PROFILES),
                        help="full = the brief on CIFAR-100, quick = CIFAR-100 with short runs, smoke = synthetic")
    parser.add_argument("--brief", default=briefs.DEFAULT, choices=briefs.available(),
                        help="the study to run: its notebooks, their order, its folders (briefs/<name>.toml)")
    parser.add_argument("--arch", default=None, choices=sorted(ARCHS),
                        help="an architecture instead of the brief's (its results go to folders of their own)")
    parser.add_argument("--data-dir", default=None, help="folder holding cifar-100-python/ (default: the profile's)")
    parser.add_argument("--only", nargs="+", metavar="SECTION",
                        help="run only these of the brief's notebooks, or ones beyond it (e.g. mixup test summary)")
    parser.add_argument("--seeds", type=whole_number, default=None, metavar="N",
                        help="runs per setting (seeds 0..N-1) in every training section; default 1, the brief's")
    parser.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter (Python literal) for every notebook that declares it; repeatable")
    parser.add_argument("--params", default="", metavar="'NAME=VALUE ...'",
                        help="several --param in one string, split as a shell splits words (make: PARAM=...)")
    parser.add_argument("--notebooks-dir", default=None, metavar="FOLDER",
                        help="run the notebooks of this folder instead of notebooks/ (e.g. make lab's copies)")
    parser.add_argument("--executed-dir", default=None,
                        help="where executed copies go (default: executed/<profile>/)")
    parser.add_argument("--quiet", action="store_true", help="do not stream the notebooks' output here")
    parser.add_argument("--speculate", action="store_true",
                        help="after the first wave, train every later wave at once for every choice it could start "
                             "from (more runs, the same results; make: SPECULATE=1)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan and stop: trains nothing, runs no notebook, also while a driver runs")
    return parser.parse_args(argv)


def literal(text: str):
    """A parameter value as a Python literal (`0.2`, `[0.2, 0.05]`, `None`), else the plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def notebook_parameters(notebook: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def route_parameters(given: dict, declared_by: dict[str, set[str]]) -> dict[str, dict]:
    """Each notebook's parameters (by name) from those given: every notebook that declares one gets it, except a
    setting that a training section run here compares under that name (the activation notebook's sigmoid_blocks):
    that goes to the section alone, so the sections before it keep the brief's ReLU. A ValueError, one line, for a
    parameter no notebook takes, and for a setting that a section run here compares under another name while a
    later one starts from its choice, directly or not (learning_rate compares `lr` as `learning_rates`: the
    notebooks after it would not chain). A choice handed on to nobody (lr_schedule's, in the shipped briefs)
    leaves its setting free for the rest."""
    declared = set().union(*declared_by.values())
    unknown = sorted(set(given) - declared)
    if unknown:  # a typo, or a setting no notebook takes: refuse rather than run the defaults
        named = ", ".join("--seeds" if name == "seeds" else f"--param {name}" for name in unknown)
        known = declared - {"profile", "brief", "data_dir"}
        close = [match for name in unknown for match in difflib.get_close_matches(name, known, 1)]
        guess = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ValueError(f"{named}: no notebook run here takes it{guess}; the notebooks' parameters are "
                         f"{', '.join(sorted(known))}")
    params = {nb: {k: v for k, v in given.items() if k in declared_by[nb]} for nb in declared_by}
    training = [nb for nb in params if nb in sections.training()]
    for decider in training:
        name = sections.get(decider).compares
        if name not in given:
            continue
        if name in params[decider]:  # its compared values: nobody else's
            for nb in params:
                if nb != decider:
                    params[nb].pop(name, None)
        elif any(decider in sections.ancestors(nb) for nb in training):
            raise ValueError(f"--param {name}: {decider} chooses the {name} the notebooks after it start from; give "
                             f"{decider} the {name} values to compare instead (its notebook's parameters: "
                             f"{', '.join(sorted(declared_by[decider] - {'profile', 'brief', 'data_dir'}))}), or "
                             f"leave {decider} out (--only)")
    return params


def progress_line(done_s: float, total_s: float, width: int = 24) -> str:
    filled = int(round(width * min(done_s / total_s, 1.0))) if total_s else width
    return f"[{'#' * filled}{'-' * (width - filled)}] {100 * min(done_s / max(total_s, 1e-9), 1.0):3.0f}%"


def failure_line(name: str, error: BaseException, failed: Path) -> str:
    """One line: notebook, cell and error, and where the failed run's copy is."""
    import papermill

    if isinstance(error, papermill.PapermillExecutionError):
        where = f"cell {error.cell_index} (In [{error.exec_count}])"
        message = f"{error.ename}: {error.evalue}"
    else:
        where = "before or between cells"
        message = f"{type(error).__name__}: {error}"
    message = " ".join(str(message).split())  # one line, whatever the error text holds
    return f"FAILED {name}.ipynb, {where}: {message} -- its copy is at {failed}"


class Stopped(BaseException):  # not an Exception: nothing between here and the kernel may swallow it
    """SIGTERM or SIGINT reached the driver (Ctrl-C, `timeout`, a cluster's pre-emption)."""


def stop_kernels_and_raise(signum: int, frame) -> None:
    """Signal handler: end the notebook kernels, then stop the driver.

    jupyter_client starts each kernel in a session of its own, so a signal to the driver's process group does
    not reach it: without this, a stopped driver leaves its kernel training on. The run store keeps every finished
    epoch; running the driver again resumes from there."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        child.terminate()
    raise Stopped(signal.Signals(signum).name, bool(children))


def main(argv: list[str] | None = None) -> int:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop_kernels_and_raise)
    try:
        return run(argv)
    except Stopped as stop:
        name, had_children = stop.args
        ended = "the notebook kernel and worker processes are ended; " if had_children else ""
        print(f"\nSTOPPED by {name}: {ended}finished epochs are kept in the run store, and the same command again "
              f"resumes", file=sys.stderr, flush=True)
        return 128 + signal.Signals[name].value


def run(argv: list[str] | None = None) -> int:
    """The driver's steps: settings, arguments, then (--dry-run: only the plan) the output folders checked and
    the study's lock taken (lib.studies.study_lock), plan, training, each notebook; the exit status (0: done, 1:
    training or a notebook failed, 2: refused before anything ran, e.g. while another driver runs the study)."""
    try:  # the kernels inherit this environment: progress bars as text lines, folders absolute (they run elsewhere)
        # ... and the data note left to the plan, which names the data once for the whole command
        settings.export(settings.child_environment(ignored_warnings=(NOT_OFFICIAL,), AI6103_PROGRESS="text"))
    except ValueError as error:  # a bad environment variable: one line
        print(f"ValueError: {error}", file=sys.stderr)
        return 2
    args = parse_args(argv)
    if args.data_dir:  # notebooks run in notebooks/: a relative path must not change meaning there
        args.data_dir = str(Path(args.data_dir).expanduser().resolve())
    try:  # the study's brief, for this process and its kernels: folders, notebooks and runs follow it
        chosen = briefs.load(args.brief)
    except ConfigError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 2
    arch = args.arch if args.arch not in (None, chosen.arch) else ""  # the brief's own: its folders, not a variant
    settings.export({"AI6103_BRIEF": args.brief, "AI6103_ARCH": arch})
    source = Path(args.notebooks_dir).expanduser().resolve() if args.notebooks_dir else NOTEBOOKS_DIR
    notebooks = select_notebooks(args.only, source)
    params = None if notebooks is None else notebook_parameters_given(args, notebooks)
    if params is None:
        return 2
    training = tuple(nb.stem for nb in notebooks if nb.stem in sections.training())
    executed_dir = Path(args.executed_dir).resolve() if args.executed_dir else paths.executed_dir(args.profile)
    if args.dry_run:  # reading only: no lock, no folder made, no file written (data not written yet: a temporary copy)
        with reading_only(), probes_not_cached():
            return 2 if print_plan(args, params, notebooks, training) is None else 0
    for line in lab_copy_notes(notebooks, source):
        print(line, flush=True)
    with contextlib.ExitStack() as held:
        # one driver per study (lib.studies.study_lock), from here to the end; its folders checked before it trains
        try:
            check_output_folders(args.profile, executed_dir)
            held.enter_context(study_lock.hold_study(args.profile))
        except (OSError, RunStoreError) as error:
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
            return 2
        settings.export({"AI6103_STUDY_HOLDER": process_identity()})  # its kernels may write what it holds
        return run_held(args, params, notebooks, training, executed_dir)


def output_folders(profile: str, executed_dir: Path) -> list[tuple[str, Path, str | None]]:
    """Every folder the study writes (`make report` too): (what it holds, the folder, what moves it, if anything)."""
    return [("results", paths.results_dir(profile), "AI6103_RESULTS_DIR"),
            ("executed notebooks", executed_dir, "--executed-dir or AI6103_EXECUTED_DIR"),
            ("figures", paths.figures_dir(profile), "AI6103_FIGURES_DIR"),
            ("run store", paths.runs_dir(), "AI6103_RUNS_DIR"),
            ("paper's build", paths.paper_build_dir(profile), "AI6103_REPORT_DIR"),
            ("paper", paths.paper_dir(profile), "AI6103_REPORT_DIR")]


def check_output_folders(profile: str, executed_dir: Path) -> None:
    """Make every output folder and check that it takes a file, before anything trains (a read-only results
    folder found at the first notebook would come after hours of training); OSError, one line naming the first
    that does not."""
    for what, folder, moved_by in output_folders(profile, executed_dir):
        problem = paths.unwritable(folder)
        if problem:
            move = f", or move it ({moved_by})" if moved_by else ""
            raise OSError(f"the {what} folder {folder} cannot be written ({problem}): make it writable{move}; "
                          f"nothing has run")


def run_held(args: argparse.Namespace, params: dict[str, dict], notebooks: list[Path], training: tuple[str, ...],
             executed_dir: Path) -> int:
    """The driver's steps while it holds the study: plan, training, then each notebook; the exit status."""
    training_s = print_plan(args, params, notebooks, training)
    if training_s is None:
        return 2
    total_s = training_s + NOTEBOOK_OVERHEAD_S * len(notebooks)
    started = time.time()
    if training and not train_step(args, params, training, training_s, total_s, started):
        return 1
    reused = 0
    for i, notebook in enumerate(notebooks):
        parameters = {"profile": args.profile, "brief": args.brief, "data_dir": args.data_dir,
                      **params[notebook.stem]}
        inputs = notebook_inputs(notebook, parameters, args.profile)
        if unchanged(notebook, inputs, executed_dir, args.profile):
            print(f"{notebook.stem}: unchanged (notebook, parameters, lib/, the results it reads, its outputs): "
                  f"not run again", flush=True)
            reused += 1
            continue
        done_s = time.time() - started  # the estimate from here: what it took so far and what is left to run
        total_s = done_s + NOTEBOOK_OVERHEAD_S * (len(notebooks) - i)
        print(f"\n{progress_line(done_s, total_s)} notebook {i + 1}/{len(notebooks)} {notebook.stem}  (elapsed "
              f"{plan.format_seconds(done_s)}, estimate {plan.format_seconds(total_s)})", flush=True)
        if not run_notebook(notebook, parameters, executed_dir, args.quiet):
            return 1
        record_run(notebook, inputs, executed_dir, args.profile)
    took = plan.format_seconds(time.time() - started)
    print(f"\n{progress_line(1, 1)} {count(len(notebooks), 'notebook')} in {took}"
          + (f", {reused} of them unchanged and not run again" if reused else "") + "; "
          f"executed copies in {executed_dir}, figures in {paths.figures_dir(args.profile)}, results in "
          f"{paths.results_dir(args.profile)}")
    return 0


RECORD = ".inputs.json"  # in an executed folder: per notebook, the inputs and outputs of its last complete run


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def lib_digest() -> str:
    """A digest of the code of lib/ (its .py and .json files), read once per driver run."""
    digest = hashlib.sha256()
    for path in sorted(p for p in (paths.PROJECT_ROOT / "lib").rglob("*")
                       if p.suffix in (".py", ".json") and "__pycache__" not in p.parts):
        digest.update(f"{path.relative_to(paths.PROJECT_ROOT)}\0{sha256(path)}\0".encode())
    return digest.hexdigest()


def notebook_inputs(notebook: Path, parameters: dict, profile: str) -> str:
    """A digest of what a notebook's run depends on: its source, its parameters, the code of lib/, and the
    results files it may read: those of the sections before it in the brief (a notebook beyond the brief: all
    the brief's)."""
    order = sections.names()
    before = order[:order.index(notebook.stem)] if notebook.stem in order else order
    reads = sorted(path for name in before for path in paths.results_dir(profile).glob(f"{name}[._]*")
                   if path.is_file())
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True, default=str).encode())
    digest.update(f"{lib_digest()}\0{sha256(notebook)}\0".encode())
    for path in reads:  # by name: a results folder moved elsewhere (AI6103_RESULTS_DIR) still matches
        digest.update(f"{path.name}\0{sha256(path)}\0".encode())
    return digest.hexdigest()


def notebook_outputs(notebook: Path, executed_dir: Path, profile: str) -> dict[str, str]:
    """The files a notebook's run wrote (executed copy, results, figures) with their digests."""
    stem = notebook.stem  # keyed by folder kind and name, so that moved folders (AI6103_*_DIR) still match
    files = {"executed": [executed_dir / notebook.name], "results": paths.results_dir(profile).glob(f"{stem}[._]*"),
             "figures": paths.figures_dir(profile).glob(f"{stem}[._]*")}
    return {f"{kind}/{path.name}": sha256(path) for kind, found in files.items() for path in sorted(found)
            if path.is_file()}


def unchanged(notebook: Path, inputs: str, executed_dir: Path, profile: str) -> bool:
    """Whether the notebook's last complete run had these inputs and its outputs are still as it wrote them."""
    try:
        last = json.loads((executed_dir / RECORD).read_text()).get(notebook.stem)
    except (OSError, ValueError):
        return False
    return bool(last) and last["inputs"] == inputs and last["outputs"] == notebook_outputs(notebook, executed_dir,
                                                                                          profile)


def record_run(notebook: Path, inputs: str, executed_dir: Path, profile: str) -> None:
    """Note a complete run's inputs and outputs in the executed folder's record (written whole or not at all)."""
    record_file = executed_dir / RECORD
    try:
        record = json.loads(record_file.read_text())
    except (OSError, ValueError):
        record = {}
    record[notebook.stem] = {"inputs": inputs, "outputs": notebook_outputs(notebook, executed_dir, profile)}
    atomic_write_text(record_file, json.dumps(record, indent=1))


def select_notebooks(only: list[str] | None, source: Path = NOTEBOOKS_DIR) -> list[Path] | None:
    """The notebooks to run from `source`, in the brief's order: those named by --only (notebooks beyond the brief,
    lib.studies.sections.EXTRAS such as sweep, after the brief's), else the brief's. None, said in one line, for a
    name that is neither the brief's nor an extra, or a notebook missing from `source`."""
    order = [*sections.names(), *sections.EXTRAS]
    chosen = list(sections.names()) if not only else [name for name in order if name in only]
    unknown = sorted(set(only or ()) - set(order))
    if unknown:
        close = [m for name in unknown for m in difflib.get_close_matches(name, order, 1)]
        guess = f" (did you mean {' or '.join(close)}?)" if close else ""
        print(f"--only: brief {sections.brief().name} has no section {', '.join(unknown)}{guess}; its sections are "
              f"{', '.join(sections.names())}, and beyond it {', '.join(sections.EXTRAS)}")
        return None
    missing = [name for name in chosen if not (source / f"{name}.ipynb").is_file()]
    if missing:
        print(f"no notebook {', '.join(f'{name}.ipynb' for name in missing)} in {source}")
        return None
    return [source / f"{name}.ipynb" for name in chosen]


def lab_copy_notes(notebooks: list[Path], source: Path) -> list[str]:
    """When the notebooks run from notebooks/ while make lab's copies of them (lab/<study>/) differ in their code:
    what that means for the results those copies wrote, and how to run the copies instead; else nothing."""
    copies = paths.lab_dir()
    if source != NOTEBOOKS_DIR or not copies.is_dir():
        return []
    differ = [nb.name for nb in notebooks if (copies / nb.name).is_file() and code_of(copies / nb.name) != code_of(nb)]
    if not differ:
        return []
    return [f"note: your Lab copies {', '.join(differ)} in {copies} differ from notebooks/: this run uses notebooks/ "
            f"and replaces the results, figures and paper your copies wrote; to run your copies instead: make all "
            f"NOTEBOOKS={copies} (or scripts/run_study.py --notebooks-dir {copies})"]


def code_of(notebook: Path) -> list[str]:
    """A notebook's code cells' sources (outputs, ids and the parameters papermill injected left out)."""
    try:
        cells = json.loads(notebook.read_text()).get("cells", [])
    except (OSError, ValueError):
        return []
    return ["".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code"
            and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


def notebook_parameters_given(args: argparse.Namespace, notebooks: list[Path]) -> dict[str, dict] | None:
    """Each notebook's parameters from --param and --seeds (route_parameters); None, said in one line, for a
    malformed, unknown or misplaced one."""
    extra = {}
    for item in [*args.param, *shlex.split(args.params)]:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            print(f"--param must be NAME=VALUE, got {item!r}")
            return None
        extra[name] = literal(value)
    for name in ("profile", "brief", "arch", "data_dir"):  # the driver's own: the notebooks must agree
        if name in extra:
            print(f"--param {name}: give it as --{name.replace('_', '-')} (make: {name.upper()}=; the driver's plan "
                  f"and the notebooks use it)")
            return None
    pretrained = extra.get("pretrained")
    if isinstance(pretrained, str) and pretrained not in ("", "imagenet"):  # a weights file, as typed from here
        extra["pretrained"] = str(Path(pretrained).expanduser().resolve())  # (the kernels run in notebooks/)
    if args.seeds is not None:
        extra["seeds"] = args.seeds
    try:
        return route_parameters(extra, {nb.stem: notebook_parameters(nb) for nb in notebooks})
    except ValueError as error:
        print(error)
        return None


def edited_notebook_notes(notebooks: list[Path]) -> list[str]:
    """One line per notebook of `notebooks` that differs from its committed version in git (or is not committed):
    the study runs that edit, and the line says how to see or undo it and where edits belong (make lab's
    copies). None when git or the repository is not there to ask."""
    try:
        done = subprocess.run(["git", "status", "--porcelain", "--", *(str(nb) for nb in notebooks)],
                              cwd=paths.PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    notes = []
    for line in done.stdout.splitlines():
        state, name = line[:2], line[3:].strip()
        if state == "??":
            notes.append(f"{name} is not committed: this study runs it as it is")
        elif state.strip():
            notes.append(f"{name} differs from its committed version: this study runs your edit (git diff {name} "
                         f"shows it, git checkout {name} undoes it; make lab gives you copies to edit in lab/ instead)")
    return notes


def print_plan(args: argparse.Namespace, params: dict[str, dict], notebooks: list[Path], training: tuple[str, ...]
               ) -> float | None:
    """Check every notebook's parameters and print the study's plan: the estimated training seconds (0.0 with
    nothing to train here); None, said in one line, when the data, a setting or the run store refuses."""
    try:
        for name, given in params.items():  # what no run setting checks: refused here, before anything trains
            sections.check_parameters(name, **given)
        training_s = plan.print_study_plan(args.profile, args.data_dir, params, training,
                                           speculate=args.speculate) if training else 0.0
        for line in edited_notebook_notes(notebooks):
            print(line)
        extras = [nb.stem for nb in notebooks if nb.stem not in sections.names()]
        if extras:  # their runs come from their own parameters (a grid, architectures): planned where they train
            print(f"{' and '.join(extras)} train{'s' * (len(extras) == 1)} in the notebook, which prints the plan "
                  f"and the estimate of its runs first; the estimate below leaves them out")
    except (DataError, ConfigError, RunStoreError, OSError, ValueError) as error:  # data missing, bad choice, ...
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return None
    return training_s


def train_step(args: argparse.Namespace, params: dict[str, dict], training: tuple[str, ...], training_s: float,
               total_s: float, started: float) -> bool:
    """Train the runs of `training` here before their notebooks run (train_ahead); False, said in one line, when
    training failed."""
    if training_s:  # else the plan has said that every run is stored: no line for a step with nothing to do
        print(f"\n{progress_line(0, total_s)} training the runs of {', '.join(training)}, wave by wave "
              f"(estimate {plan.format_seconds(training_s)})", flush=True)
    try:
        train_ahead(args.profile, args.data_dir, params, training, progress=not args.quiet, speculate=args.speculate)
    except (DataError, ConfigError, RunStoreError, SaveError, torch.OutOfMemoryError, OSError, ValueError) as error:
        print(f"FAILED while training: {type(error).__name__}: {' '.join(str(error).split())}", file=sys.stderr)
        return False
    if training_s:  # in seconds: bench/study_record.py reads this line to time what lies outside training
        print(f"training: done in {time.time() - started:.1f} s", flush=True)
    return True


def run_notebook(notebook: Path, parameters: dict, executed_dir: Path, quiet: bool) -> bool:
    """Run one notebook with papermill into a temporary copy that replaces its executed copy only when it ran
    through; False, said in one line, when it failed (its copy then goes to executed_dir/failed/)."""
    import papermill
    from jupyter_client.manager import AsyncKernelManager

    class EncryptedKernelManager(AsyncKernelManager):
        # CurveZMQ keys for the kernel's sockets (the ai6103 kernelspec supports them): without them every kernel
        # logs "Kernel is running over TCP without encryption" to the console.
        transport_encryption = "auto"

    name = notebook.stem
    executed = executed_dir / notebook.name
    running = executed_dir / f".{name}.running.ipynb"  # papermill writes its copy cell by cell
    failed = executed_dir / "failed" / notebook.name
    failed.unlink(missing_ok=True)  # an older failure of this notebook is no longer what it does
    notebook_started = time.time()
    try:
        papermill.execute_notebook(
            str(notebook), str(running), parameters=parameters, kernel_name=KERNEL, cwd=str(NOTEBOOKS_DIR),
            progress_bar=False, stdout_file=None if quiet else sys.stdout, stderr_file=None if quiet else sys.stderr,
            kernel_manager_class=EncryptedKernelManager)
    except Exception as error:  # noqa: BLE001 - every failure gets the same one-line report and stops the run
        failed.parent.mkdir(exist_ok=True)
        if running.exists():
            os.replace(running, failed)
        print("\n" + failure_line(name, error, failed), file=sys.stderr, flush=True)
        return False
    os.replace(running, executed)
    # In seconds, not minutes: bench/study_record.py reads this line to time what lies outside training.
    print(f"{name}: done in {time.time() - notebook_started:.1f} s -> {executed}", flush=True)
    return True


def train_ahead(profile: str, data_dir: str | None, params: dict[str, dict], training: tuple[str, ...],
                progress: bool, speculate: bool = False) -> None:
    """Train every run of `training` sections before their notebooks run: each wave of lib.studies.sections once the
    choices it starts from are made (the notebooks make the same choices from the same runs). Where
    AI6103_EXECUTOR says (lib.running.executor); with AI6103_SLURM_WAIT=0 the driver ends after submitting, with
    status 75 (EX_TEMPFAIL: the same command again later goes on). Sets torch's switches first (lib.nets.device)."""
    apply_torch_settings()
    with silence_unofficial_warning():  # the plan said what data this is
        try:
            sections.plan_study(profile, data_dir, params, peek_summary, sections=training, speculate=speculate,
                                train_wave=lambda configs: executor.run_or_load_many(configs, progress=progress))
        except executor.TasksSubmitted as submitted:
            print(f"\n{submitted}", flush=True)
            raise SystemExit(75) from None


if __name__ == "__main__":
    sys.exit(main())

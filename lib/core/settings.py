"""The runtime settings: every environment variable the workbook reads, parsed and checked in one place.

`from_environment(env)` turns a mapping of variables into one frozen `Settings`; `current()` is this process's,
from os.environ. A bad value raises ValueError, one line naming the variable and what it allows. A variable that
is unset or blank takes its default. Every variable with its default and allowed values: docs/devices.md "Every
environment variable".

`current()` parses os.environ again whenever one of the variables it reads has changed (tests set them with
monkeypatch, the driver sets AI6103_PROGRESS for its notebook kernels), else it returns the same object. The entry
points (scripts/run_study.py, the notebooks' first call lib.studies.profiles.session_profile,
lib.running.executor.TrainTask on a worker) read it first, so that a typo fails before anything runs; the code below
reads `current()` where it needs a setting, and nothing else in lib/ reads the environment.

What it is not: the device's choices (lib.nets.device turns these settings into a Runtime), the folders (lib.core.paths
resolves the folder variables), the profiles (lib.studies.profiles checks AI6103_PROFILE's name). It imports no torch.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISION_CHOICES = ("auto", "bf16", "fp16", "fp32")
# torch.compile modes that leave CUDA graphs to lib.training.train ("reduce-overhead" modes capture graphs of their own)
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")
EXECUTORS = ("local", "slurm")
FOLDER_VARIABLES = ("AI6103_DATA_DIR", "AI6103_RUNS_DIR", "AI6103_RESULTS_DIR", "AI6103_FIGURES_DIR",
                    "AI6103_EXECUTED_DIR", "AI6103_NOTEBOOK_DATA_DIR", "AI6103_REPORT_DIR")


@dataclass(frozen=True)
class Settings:
    """Every setting read from the environment; the defaults are those of an unset variable."""

    # where and how training runs (lib.nets.device): switches 0/1 are used on CUDA only, and checked on any device
    device: str = "auto"  # AI6103_DEVICE: DEVICES; auto = a CUDA GPU, else an Apple GPU, else the CPU
    precision: str = "auto"  # AI6103_PRECISION: PRECISION_CHOICES, the autocast dtype; auto = by device
    bf16: bool = True  # AI6103_BF16: 0/1; the older switch, 0 = fp32 where precision is auto
    channels_last: bool = True  # AI6103_CHANNELS_LAST: 0/1; NHWC activations and weights
    fused_sgd: bool = True  # AI6103_FUSED_SGD: 0/1; one fused multi-tensor SGD kernel per step
    cuda_graphs: bool = True  # AI6103_CUDA_GRAPHS: 0/1; replay each training step as one CUDA graph
    compile: bool = True  # AI6103_COMPILE: 0/1; torch.compile the model of long runs
    compile_min_epochs: int = 100  # AI6103_COMPILE_MIN_EPOCHS: epochs >= 1; what "long" means
    compile_mode: str = "default"  # AI6103_COMPILE_MODE: COMPILE_MODES
    eval_batch: int | None = None  # AI6103_EVAL_BATCH: images >= 1; None = from the free device memory
    stack: int | str | None = None  # AI6103_STACK: runs >= 1 or "auto" (measure); None = 1 (docs/speed.md)
    # AI6103_CONCURRENT: trainings (runs or stacks) >= 1 at once in this process, each on its own CUDA stream, or
    # "auto" (measure); None = 1 on every device (never verified on a GPU: docs/speed.md)
    concurrent: int | str | None = None
    deterministic: bool = False  # AI6103_DETERMINISTIC: 0/1; deterministic kernels (slower on a GPU)
    progress: str = "auto"  # AI6103_PROGRESS: auto (widgets in JupyterLab) or text (plain lines)
    # tracking (lib.training.tracking)
    wandb: bool = False  # AI6103_WANDB: 0/1; also log every run to W&B
    wandb_project: str = "ai6103-cifar100"  # WANDB_PROJECT: the W&B project
    wandb_run_group: str | None = None  # WANDB_RUN_GROUP: a W&B group; None = the run's setting (its seeds)
    wandb_mode: str = "offline"  # WANDB_MODE: W&B's mode (online, offline, disabled), passed on unchecked
    # where the runs train (lib.running.executor)
    executor: str = "local"  # AI6103_EXECUTOR: EXECUTORS; this machine or tasks of a Slurm job array
    workers: int = 1  # AI6103_WORKERS: processes >= 1; local tasks at once, 1 = train in this process
    retries: int = 2  # AI6103_RETRIES: resubmissions >= 0 of a task that ended without a result, per task
    slurm_partition: str | None = None  # AI6103_SLURM_PARTITION: a partition; None = the cluster's default
    slurm_gpus: int = 1  # AI6103_SLURM_GPUS: GPUs per task >= 0
    slurm_time_min: int = 240  # AI6103_SLURM_TIME: a task's time limit, minutes >= 1
    slurm_mem_gb: float | None = None  # AI6103_SLURM_MEM_GB: memory per task, GB > 0; None = the partition's
    slurm_cpus: int | None = None  # AI6103_SLURM_CPUS: CPU cores per task >= 1; None = the partition's
    slurm_extra: dict = field(default_factory=dict)  # AI6103_SLURM_EXTRA: key=value,key (a flag) sbatch options
    slurm_wait: bool = True  # AI6103_SLURM_WAIT: 0/1; 0 = submit and return at once (TasksSubmitted)
    slurm_timeout_s: float = 86_400.0  # AI6103_SLURM_TIMEOUT: seconds > 0 to wait for the tasks
    slurm_cpus_per_task: int | None = None  # SLURM_CPUS_PER_TASK: cores >= 1, set by Slurm inside a task
    cuda_visible_devices: str | None = None  # CUDA_VISIBLE_DEVICES: GPU indices "0,1,..."; None = every GPU
    # the notebooks' session and the folders (lib.studies.profiles, lib.core.paths); None = the project's folder
    profile: str = "full"  # AI6103_PROFILE: a profile's name, what a notebook's `profile = None` means
    brief: str = "mixup"  # AI6103_BRIEF: a brief's name (briefs/<name>.toml), the study a session runs
    arch: str | None = None  # AI6103_ARCH: an architecture instead of the brief's; None = the brief's
    notebook_data_dir: str | None = None  # AI6103_NOTEBOOK_DATA_DIR: what a notebook's `data_dir = None` means
    data_dir: str | None = None  # AI6103_DATA_DIR: a folder; None = data/
    runs_dir: str | None = None  # AI6103_RUNS_DIR: a folder; None = runs/
    results_dir: str | None = None  # AI6103_RESULTS_DIR: a folder; None = results/
    figures_dir: str | None = None  # AI6103_FIGURES_DIR: a folder; None = figures/
    executed_dir: str | None = None  # AI6103_EXECUTED_DIR: a folder; None = executed/
    report_dir: str | None = None  # AI6103_REPORT_DIR: a folder for the papers and their builds; None = report/
    # the study's lock (lib.studies.study_lock): set by the driver that holds it, for its own notebook kernels
    study_holder: str | None = None  # AI6103_STUDY_HOLDER: "pid N on HOST", the driver whose notebooks these are


def parse(variable: str, text: str, allowed: str, kind: type = str, choices: tuple = (), least: float = -math.inf,
          most: float = math.inf):
    """The value `text` of environment variable `variable` as `kind`: bool ("0" or "1"), int or float within
    [least, most], or str (one of `choices` if given). A text in `choices` is taken as it is for any kind ("auto").
    Any other text raises ValueError, one line: "`variable` must be `allowed`, got 'text'"."""
    if text in choices:
        return text
    if kind is bool and text in ("0", "1"):
        return text == "1"
    if kind in (int, float):
        with contextlib.suppress(ValueError):
            value = kind(text)
            if least <= value <= most:  # NaN fails too
                return value
    if kind is str and not choices:
        return text
    raise ValueError(f"{variable} must be {allowed}, got {text!r}")


def sbatch_options(variable: str, text: str) -> dict:
    """"account=abc,qos=high,exclusive" -> {"account": "abc", "qos": "high", "exclusive": True}."""
    options = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        key, sep, value = item.partition("=")
        if not key.strip() or (sep and not value.strip()):
            raise ValueError(f"{variable} must be key=value,key=value (sbatch options), got {text!r}")
        options[key.strip().lstrip("-")] = value.strip() if sep else True
    return options


FLAG = {"allowed": "0 or 1", "kind": bool}
WHOLE = {"allowed": "a whole number >= 1", "kind": int, "least": 1}
# variable -> (Settings field, parse's arguments, or a function of the variable and its text)
VARIABLES = {
    "AI6103_DEVICE": ("device", {"allowed": "auto, cpu, cuda or mps", "choices": DEVICES}),
    "AI6103_PRECISION": ("precision", {"allowed": "auto, bf16, fp16 or fp32", "choices": PRECISION_CHOICES}),
    "AI6103_BF16": ("bf16", FLAG),
    "AI6103_CHANNELS_LAST": ("channels_last", FLAG),
    "AI6103_FUSED_SGD": ("fused_sgd", FLAG),
    "AI6103_CUDA_GRAPHS": ("cuda_graphs", FLAG),
    "AI6103_COMPILE": ("compile", FLAG),
    "AI6103_COMPILE_MIN_EPOCHS": ("compile_min_epochs", {**WHOLE, "allowed": "a positive number of epochs"}),
    "AI6103_COMPILE_MODE": ("compile_mode", {"allowed": f"one of {', '.join(COMPILE_MODES)}",
                                             "choices": COMPILE_MODES}),
    "AI6103_EVAL_BATCH": ("eval_batch", {**WHOLE, "allowed": "a positive number of images"}),
    "AI6103_STACK": ("stack", {**WHOLE, "allowed": "auto or a positive number of runs", "choices": ("auto",)}),
    "AI6103_CONCURRENT": ("concurrent", {**WHOLE, "allowed": "auto or a positive number of trainings",
                                         "choices": ("auto",)}),
    "AI6103_DETERMINISTIC": ("deterministic", FLAG),
    "AI6103_PROGRESS": ("progress", {"allowed": "auto (widgets in JupyterLab) or text", "choices": ("auto", "text")}),
    "AI6103_WANDB": ("wandb", FLAG),
    "WANDB_PROJECT": ("wandb_project", {"allowed": "a W&B project"}),
    "WANDB_RUN_GROUP": ("wandb_run_group", {"allowed": "a W&B group"}),
    "WANDB_MODE": ("wandb_mode", {"allowed": "a W&B mode"}),
    "AI6103_EXECUTOR": ("executor", {"allowed": "local or slurm", "choices": EXECUTORS}),
    "AI6103_WORKERS": ("workers", WHOLE),
    "AI6103_RETRIES": ("retries", {**WHOLE, "allowed": "a whole number >= 0", "least": 0}),
    "AI6103_SLURM_PARTITION": ("slurm_partition", {"allowed": "a partition"}),
    "AI6103_SLURM_GPUS": ("slurm_gpus", {**WHOLE, "allowed": "a whole number >= 0", "least": 0}),
    "AI6103_SLURM_TIME": ("slurm_time_min", {**WHOLE, "allowed": "minutes, a whole number >= 1"}),
    "AI6103_SLURM_MEM_GB": ("slurm_mem_gb", {"allowed": "a number of GB > 0", "kind": float, "least": 1e-3,
                                             "most": 1e6}),
    "AI6103_SLURM_CPUS": ("slurm_cpus", WHOLE),
    "AI6103_SLURM_EXTRA": ("slurm_extra", sbatch_options),
    "AI6103_SLURM_WAIT": ("slurm_wait", FLAG),
    "AI6103_SLURM_TIMEOUT": ("slurm_timeout_s", {"allowed": "seconds > 0", "kind": float, "least": 1e-3}),
    "SLURM_CPUS_PER_TASK": ("slurm_cpus_per_task", WHOLE),
    "CUDA_VISIBLE_DEVICES": ("cuda_visible_devices", {"allowed": "GPU indices"}),
    "AI6103_PROFILE": ("profile", {"allowed": "a profile"}),
    "AI6103_BRIEF": ("brief", {"allowed": "a brief"}),
    "AI6103_ARCH": ("arch", {"allowed": "an architecture"}),
    **{name: (name.removeprefix("AI6103_").lower(), {"allowed": "a folder"}) for name in FOLDER_VARIABLES},
    "AI6103_STUDY_HOLDER": ("study_holder", {"allowed": "a process (pid N on HOST)"}),
}


def from_environment(env: Mapping[str, str]) -> Settings:
    """The settings that the variables in `env` (e.g. os.environ) give; ValueError, one line, for a bad value.
    Only the names in VARIABLES are read; unset or blank ones take Settings' defaults."""
    given = {}
    for variable, (name, how) in VARIABLES.items():
        text = (env.get(variable) or "").strip()
        if text:
            given[name] = how(variable, text) if callable(how) else parse(variable, text, **how)
    return Settings(**given)


def current() -> Settings:
    """This process's settings, from os.environ: parsed once per distinct set of values of VARIABLES."""
    return _parsed(tuple(os.environ.get(variable) for variable in VARIABLES))


@functools.lru_cache(maxsize=16)
def _parsed(values: tuple[str | None, ...]) -> Settings:
    return from_environment({variable: value for variable, value in zip(VARIABLES, values, strict=True)
                             if value is not None})


def child_environment(ignored_warnings: tuple[str, ...] = (), **changes: str) -> dict[str, str]:
    """This process's environment with `changes` and every folder variable made absolute from the current folder,
    checked (ValueError, one line): what a child process that runs in another folder (a notebook kernel in
    notebooks/ or lab/) needs, where a relative AI6103_RUNS_DIR would name another run store. Warnings whose
    message starts with one of `ignored_warnings` are not shown there (PYTHONWARNINGS, after the user's own)."""
    env = {**os.environ, **changes}
    if ignored_warnings:
        env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"),
                                                       *(f"ignore:{message}" for message in ignored_warnings)]))
    for name in FOLDER_VARIABLES:
        if env.get(name):
            env[name] = str(Path(env[name]).expanduser().resolve())
    from_environment(env)
    return env


def export(variables: Mapping[str, str], replace: bool = True) -> Settings:
    """Set `variables` in this process's environment, which its child processes (the driver's notebook kernels)
    and libraries (cuBLAS) read; `replace=False` leaves those already set. Returns the settings from then on."""
    for name, value in variables.items():
        if (replace or name not in os.environ) and os.environ.get(name) != value:
            os.environ[name] = value
    return current()

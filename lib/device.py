"""The one place that decides where training runs, in which precision, and with which speed features.

CUDA if present, with every speed feature the benchmark (`make bench`, bench/RESULTS.md) showed to pay;
otherwise the CPU in plain fp32. Each feature is a switch so that the benchmark can measure its gain:

| variable              | default on CUDA | what it does                                                        |
|-----------------------|-----------------|---------------------------------------------------------------------|
| `AI6103_DEVICE`       | auto            | `cpu` forces the CPU, `cuda` insists on a GPU                        |
| `AI6103_BF16`         | 1               | bf16 autocast for forward/backward (weights, optimiser stay fp32)    |
| `AI6103_CHANNELS_LAST`| 1               | NHWC activations and weights                                         |
| `AI6103_FUSED_SGD`    | 1               | the fused (one multi-tensor kernel) SGD step instead of foreach      |
| `AI6103_CUDA_GRAPHS`  | 1               | replay each full training step as one CUDA graph (needs fused SGD)   |
| `AI6103_COMPILE`      | 1               | torch.compile the training step's model, long runs only            |
| `AI6103_COMPILE_MIN_EPOCHS` | 100       | what "long" means: runs of at least this many epochs are compiled    |
| `AI6103_COMPILE_MODE` | default         | torch.compile's mode: `default` or `max-autotune-no-cudagraphs`      |
|                       |                 | (Inductor times kernel choices; not measured to pay yet)           |
| `AI6103_EVAL_BATCH`   | 2000            | images per evaluation batch                                          |
| `AI6103_STACK`        | auto            | runs of a section trained together as one stacked network: `auto`    |
|                       |                 | measures whether stacking pays on this GPU (lib.cost.runs_to_stack), |
|                       |                 | a number fixes the most runs per stack, 1 = one at a time (CPU)      |
| `AI6103_DETERMINISTIC`| 0               | deterministic kernels (slower on GPU, bit-exact resumes)             |

What it is not: the training loop; it only says how that loop should run. `runtime(**overrides)` gives the
same choices to code (the benchmark and tests) without touching the environment.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    autocast_dtype: torch.dtype | None  # None = full fp32
    channels_last: bool  # NHWC activations: faster convolutions on tensor cores
    fused_sgd: bool  # one fused multi-tensor SGD kernel per step (else PyTorch's foreach implementation)
    cuda_graphs: bool  # capture a full training step once, replay it (no per-kernel launch cost)
    compile: bool  # torch.compile the training step's model (lib.train: long runs only, start-up ~1 min)
    compile_mode: str  # torch.compile's mode (COMPILE_MODES); the CUDA graph is ours, so none of its graph modes
    compile_min_epochs: int  # runs of at least this many epochs are compiled (compilation costs ~20-60 s per run)
    compile_backend: str  # "inductor" on CUDA; the tests trace the same path on the CPU with "aot_eager"
    eval_batch: int  # images per evaluation batch; no gradients, so large batches are cheap
    stack: int | None  # at most this many runs of a section train together (lib.stack); None = measure (auto)
    deterministic: bool

    def autocast(self):
        """Mixed-precision context; a no-op in fp32 (always on the CPU by default)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def compiles(self, epochs: int) -> bool:
        """Whether lib.train compiles a run of `epochs` epochs: compilation on, and the run long enough to repay it."""
        return self.compile and epochs >= self.compile_min_epochs

    def features(self) -> str:
        """The speed features in use, e.g. 'bf16, channels_last, fused SGD, CUDA graphs'."""
        precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]
        names = [precision, "channels_last" * self.channels_last,
                 "fused SGD" * self.fused_sgd, "CUDA graphs" * self.cuda_graphs, self._compiled_text(),
                 f"eval batch {self.eval_batch}", _stack_text(self.stack)]
        return ", ".join(n for n in names if n)

    def _compiled_text(self) -> str:
        if not self.compile:
            return ""
        how = [self.compile_mode] * (self.compile_mode != "default") + [self.compile_backend] * (
            self.compile_backend != "inductor")
        return f"compiled (>= {self.compile_min_epochs} epochs" + "".join(f", {h}" for h in how) + ")"

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "CPU"
        return f"{name} ({self.features()})"


# torch.compile modes that leave CUDA graphs to lib.train (its "reduce-overhead" modes capture graphs of their own)
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value not in ("0", "1"):
        raise ValueError(f"{name} must be 0 or 1, got {value!r}")
    return value == "1"


def _stack_text(stack: int | None) -> str:
    return "runs stacked: auto" if stack is None else f"up to {stack} runs stacked" * (stack > 1)


def _count(name: str, default: int, what: str) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def runtime(**overrides) -> Runtime:
    """The runtime from the environment (see the module docstring), with any field replaced by `overrides`
    (e.g. `runtime(cuda_graphs=False)`); `bf16=True/False` sets the autocast dtype."""
    choice = os.environ.get("AI6103_DEVICE", "auto")
    if choice not in ("auto", "cpu", "cuda"):
        raise ValueError(f"AI6103_DEVICE must be auto, cpu or cuda, got {choice!r}")
    progress = os.environ.get("AI6103_PROGRESS", "auto")  # read by lib.train's progress bar
    if progress not in ("auto", "text"):
        raise ValueError(f"AI6103_PROGRESS must be auto (widgets in JupyterLab) or text, got {progress!r}")
    use_cuda = torch.cuda.is_available() and choice != "cpu"
    if choice == "cuda" and not use_cuda:
        raise RuntimeError("AI6103_DEVICE=cuda but PyTorch sees no CUDA GPU")
    deterministic = _flag("AI6103_DETERMINISTIC", False)
    if use_cuda:
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    eval_batch = _count("AI6103_EVAL_BATCH", 2000, "a positive number of images")
    # On the CPU one at a time: a stacked step was slower there (bench/RESULTS.md).
    stack_text = os.environ.get("AI6103_STACK", "auto" if use_cuda else "1")
    stack = None if stack_text == "auto" else _count("AI6103_STACK", 1, "auto or a positive number of runs")
    # Every switch is read (and checked) on any device, so a typo fails on the CPU too, not only on the GPU.
    flags = {name: _flag(f"AI6103_{name.upper()}", True)
             for name in ("bf16", "channels_last", "fused_sgd", "cuda_graphs", "compile")}
    bf16 = overrides.pop("bf16", use_cuda and flags["bf16"])
    rt = Runtime(
        device=torch.device("cuda" if use_cuda else "cpu"),
        autocast_dtype=torch.bfloat16 if bf16 else None,
        channels_last=use_cuda and flags["channels_last"],
        fused_sgd=use_cuda and flags["fused_sgd"],
        cuda_graphs=use_cuda and flags["cuda_graphs"],
        compile=use_cuda and flags["compile"],
        compile_mode=os.environ.get("AI6103_COMPILE_MODE", "default"),
        compile_min_epochs=_count("AI6103_COMPILE_MIN_EPOCHS", 100, "a positive number of epochs"),
        compile_backend="inductor",
        eval_batch=eval_batch,
        stack=stack,
        deterministic=deterministic,
    )
    rt = dataclasses.replace(rt, **overrides)
    if rt.eval_batch < 1 or (rt.stack is not None and rt.stack < 1):
        raise ValueError(f"eval_batch and stack must be >= 1, got {rt.eval_batch} and {rt.stack}")
    if rt.compile_mode not in COMPILE_MODES:
        raise ValueError(f"AI6103_COMPILE_MODE must be one of {', '.join(COMPILE_MODES)}, got {rt.compile_mode!r}")
    if rt.device.type != "cuda" and (rt.cuda_graphs or (rt.compile and rt.compile_backend == "inductor")):
        raise ValueError("CUDA graphs and torch.compile (inductor) are used on a CUDA device only")
    if rt.cuda_graphs and not rt.fused_sgd:
        raise ValueError("CUDA graphs need the fused SGD step (it takes the learning rate as a device tensor)")
    return rt

"""The one place that decides where training runs, in which precision, and with which speed features.

A CUDA GPU if present, else an Apple GPU (MPS), else the CPU. Precision per device: bf16 autocast on GPUs with
native bf16 (compute capability >= 8.0), fp32 on older CUDA GPUs (fp16 with loss scaling by AI6103_PRECISION=fp16),
on Apple GPUs and on the CPU. On by default is only what a run on such a device has verified (docs/speed.md
"Verified on which device": the table of every speed feature): on CUDA the features the benchmark
(`make bench`, bench/RESULTS.md) measured to pay on a GPU; stacking, trainings at once and fp16 never paid or never
ran on one and are off until they do (AI6103_STACK / AI6103_CONCURRENT = auto or k, AI6103_PRECISION=fp16 opt in).
The evaluation batch and the most runs per stack follow the free device memory. Each feature is a switch
(lib.core.settings; every variable in docs/devices.md "Every environment variable") so that the benchmark can measure
its gain.

`runtime(**overrides)` turns this process's settings into a `Runtime`, with any field replaced for code (the
benchmark, tests) without touching the environment. `apply_torch_settings()` sets torch's global switches (cuDNN
autotuning, TF32, deterministic algorithms) once per process.

What it is not: the training loop; it only says how that loop should run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.metadata
from dataclasses import dataclass

import torch

from ..core import settings
from ..core.config import RunConfig
from ..core.settings import COMPILE_MODES, Settings

PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}  # AI6103_PRECISION -> autocast dtype
BF16_CAPABILITY = (8, 0)  # compute capability from which NVIDIA GPUs compute bf16 natively (Ampere)
TRITON_CAPABILITY = (7, 0)  # Triton, torch.compile's GPU code generator, supports Volta and later only

# Device memory one run needs (MiB), peaks measured on an H100 (bench/RESULTS.md): training at batch
# 128 with evaluation batch 128 peaked at 1,157 MiB in bf16 and 2,729 MiB in fp32; evaluation batch 2000 added
# (6,219 - 1,157) / 1,872 = 2.7 MiB per image in bf16, assumed twice that in fp32. Training scales with the batch.
RUN_MIB_AT_BATCH_128 = {16: 1200, 32: 2800}  # weights, optimiser, data and activations of one training run
EVAL_MIB_PER_IMAGE = {16: 2.7, 32: 5.4}  # evaluation activations per image of the evaluation batch
MEMORY_SHARE = 0.8  # of the memory free at start-up the defaults plan to fill; the rest is the safety margin
EVAL_BATCHES = (2000, 1000, 500, 250, 125)  # the evaluation batch: the first that fits in the memory planned
LOSS_SCALE_INIT = 2.0**16  # fp16: the first loss scale (torch.amp.GradScaler's default)
LOSS_SCALE_GROWTH_INTERVAL = 2000  # fp16: steps without overflow after which the scale doubles (GradScaler's default)


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    autocast_dtype: torch.dtype | None  # None = full fp32; float16 comes with loss scaling (`loss_scaler`)
    channels_last: bool  # NHWC activations: faster convolutions on tensor cores
    fused_sgd: bool  # one fused multi-tensor SGD kernel per step (else PyTorch's foreach implementation)
    cuda_graphs: bool  # capture a full training step once, replay it (no per-kernel launch cost)
    compile: bool  # torch.compile the training step's model (lib.training.train: long runs only, start-up ~1 min)
    compile_mode: str  # torch.compile's mode (COMPILE_MODES); the CUDA graph is ours, so none of its graph modes
    compile_min_epochs: int  # runs of at least this many epochs are compiled (compilation costs ~20-60 s per run)
    compile_backend: str  # "inductor" on CUDA; the tests trace the same path on the CPU with "aot_eager"
    eval_batch: int  # images per evaluation batch; no gradients, so large batches are cheap
    stack: int | None  # at most this many runs of a section train together (lib.nets.stack); None = measure (auto)
    deterministic: bool
    # at most this many trainings (a run or a stack) at once in this process, each on its own CUDA stream
    # (lib.training.concurrency); None = measure (auto)
    concurrent: int | None = 1
    free_memory_mib: float | None = None  # device memory free for this process at start-up; None = unknown (CPU)
    notes: tuple[str, ...] = ()  # one line per choice that differs from the fast path, and why (the plan prints them)

    def autocast(self):
        """Mixed-precision context; a no-op in fp32 (always on the CPU by default)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @property
    def scales_loss(self) -> bool:
        """fp16 gradients underflow unless the loss is scaled up first (bf16 has fp32's exponent range)."""
        return self.autocast_dtype == torch.float16

    def loss_scaler(self) -> torch.amp.GradScaler:
        """One run's dynamic loss scale: active in fp16, a pass-through otherwise (lib.training.train keeps one per
        run)."""
        return torch.amp.GradScaler(self.device.type, init_scale=LOSS_SCALE_INIT,
                                    growth_interval=LOSS_SCALE_GROWTH_INTERVAL, enabled=self.scales_loss)

    def compiles(self, epochs: int) -> bool:
        """Whether lib.training.train compiles a run of `epochs` epochs: compilation on, and the run long enough to
        repay it."""
        return self.compile and epochs >= self.compile_min_epochs

    def runs_that_fit(self, batch_size: int) -> int | None:
        """The most runs of `batch_size` that train together in the memory planned (at least 1: one run is always
        tried); None where the free memory is not known (the CPU)."""
        if self.free_memory_mib is None:
            return None
        evaluation = memory_mib(0, batch_size, self.eval_batch, self.autocast_dtype)
        per_run = memory_mib(1, batch_size, self.eval_batch, self.autocast_dtype) - evaluation
        return max(1, int((MEMORY_SHARE * self.free_memory_mib - evaluation) // per_run))

    def trainings_that_fit(self, batch_size: int, runs_each: int = 1) -> int | None:
        """The most trainings at once (lib.training.concurrency), each a stack of `runs_each` runs of `batch_size` with
        its own evaluation, that fit in the memory planned (at least 1); None where the free memory is not known."""
        if self.free_memory_mib is None:
            return None
        each = memory_mib(runs_each, batch_size, self.eval_batch, self.autocast_dtype)
        return max(1, int(MEMORY_SHARE * self.free_memory_mib // each))

    def features(self) -> str:
        """The speed features in use, e.g. 'bf16, channels_last, fused SGD, CUDA graphs'."""
        precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]
        names = [precision, "channels_last" * self.channels_last,
                 "fused SGD" * self.fused_sgd, "CUDA graphs" * self.cuda_graphs, self._compiled_text(),
                 f"eval batch {self.eval_batch}", _stack_text(self.stack), _concurrent_text(self.concurrent)]
        return ", ".join(n for n in names if n)

    def _compiled_text(self) -> str:
        if not self.compile:
            return ""
        how = [self.compile_mode] * (self.compile_mode != "default") + [self.compile_backend] * (
            self.compile_backend != "inductor")
        return f"compiled (>= {self.compile_min_epochs} epochs" + "".join(f", {h}" for h in how) + ")"

    def describe(self) -> str:
        return f"{device_name(self.device)} ({self.features()})"


def memory_mib(runs: int, batch_size: int, eval_batch: int, autocast_dtype: torch.dtype | None) -> float:
    """Device memory (MiB) that `runs` runs of `batch_size` trained together need, with their evaluation (a stack
    evaluates eval_batch / runs images per batch and run, so its evaluation needs one run's memory)."""
    bits = 32 if autocast_dtype is None else 16
    return runs * RUN_MIB_AT_BATCH_128[bits] * batch_size / 128 + eval_batch * EVAL_MIB_PER_IMAGE[bits]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "Apple GPU (MPS)" if device.type == "mps" else "CPU"


def synchronize(device: torch.device) -> None:
    """Wait until the device has run what was queued on it (for timing); the CPU runs everything at once."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def mps_available() -> bool:
    return torch.backends.mps.is_available()


@functools.cache
def free_memory_mib(device: torch.device) -> float | None:
    """Device memory (MiB) this process may fill: the device's free memory plus what PyTorch's allocator holds but
    no tensor uses. Measured once per process, so that every `runtime()` of a process makes the same choices;
    None on the CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return (free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)) / 2**20
    if device.type == "mps":  # unified memory: what Metal recommends for this process, less what it holds
        return (torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()) / 2**20
    return None


def build_runs_on(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether a CUDA build for `arch_list` (torch.cuda.get_arch_list(), e.g. ['sm_75', 'sm_80', 'compute_120'])
    has code for a GPU of `capability`: a binary for sm_XY runs on GPUs of major X and minor >= Y; PTX
    (compute_XY) is compiled when loaded, for any GPU of capability >= X.Y."""
    for arch in arch_list:
        kind, _, digits = arch.partition("_")
        digits = digits.rstrip("abf")  # sm_90a, sm_100f: architecture-specific variants of sm_90, sm_100
        if not digits.isdigit() or len(digits) < 2:
            continue
        built = (int(digits[:-1]), int(digits[-1]))  # "120" -> (12, 0)
        if (kind == "sm" and built[0] == capability[0] and built[1] <= capability[1]) or (
                kind == "compute" and built <= capability):
            return True
    return False


def unsupported_gpu_message(name: str, capability: tuple[int, int], arch_list: list[str]) -> str:
    """The one line that says a GPU has no code in this PyTorch build, and what to install instead."""
    major, minor = capability
    if capability >= (7, 5):
        what = f"a PyTorch build whose architectures include sm_{major}{minor} (https://pytorch.org/get-started/locally/)"
    elif capability >= (5, 0):  # CUDA 13 compiles for Turing (7.5) and later; PyTorch's CUDA 12.6 builds go back to 5.0
        what = (f"the CUDA 12.6 build, the last for Maxwell, Pascal and Volta: pip install torch=={_version('torch')} "
                f"torchvision=={_version('torchvision')} --index-url https://download.pytorch.org/whl/cu126")
    else:
        what = "nothing: no current PyTorch build runs on it"
    return (f"{name} (compute capability {major}.{minor}) is not supported by this PyTorch build (torch "
            f"{torch.__version__}, built for {', '.join(arch_list)}): install {what}; or train on the CPU with "
            f"AI6103_DEVICE=cpu")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package).split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return "<version>"


def _stack_text(stack: int | None) -> str:
    return "runs stacked: auto" if stack is None else f"up to {stack} runs stacked" * (stack > 1)


def _concurrent_text(concurrent: int | None) -> str:
    return "trainings at once: auto" if concurrent is None else f"up to {concurrent} trainings at once" * (
        concurrent > 1)


def _device(chosen: Settings) -> torch.device:
    """AI6103_DEVICE: a CUDA GPU if present, else an Apple GPU, else the CPU; `cuda` or `mps` insist on one."""
    choice = chosen.device
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("AI6103_DEVICE=cuda but PyTorch sees no CUDA GPU")
    if choice == "mps" and not mps_available():
        raise RuntimeError("AI6103_DEVICE=mps but PyTorch sees no Apple GPU (torch.backends.mps.is_available())")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    return torch.device(choice)


def _capability(device: torch.device) -> tuple[int, int] | None:
    """The CUDA GPU's compute capability (None on other devices); RuntimeError, one line, where this PyTorch build
    has no code for the GPU."""
    if device.type != "cuda":
        return None
    capability = torch.cuda.get_device_capability(device)
    if not torch.version.hip and not build_runs_on(capability, torch.cuda.get_arch_list()):
        raise RuntimeError(unsupported_gpu_message(torch.cuda.get_device_name(device), capability,
                                                   torch.cuda.get_arch_list()))
    return capability


_applied: tuple[str, bool] | None = None  # the (device type, deterministic) apply_torch_settings last set up


def apply_torch_settings(chosen: Settings | None = None) -> None:
    """Set torch's process-wide switches for `chosen` (default: this process's settings): on CUDA cuDNN autotuning
    (off when deterministic) and TF32 matmuls and convolutions; with AI6103_DETERMINISTIC=1 deterministic
    algorithms (warn only) and cuBLAS's workspace (CUBLAS_WORKSPACE_CONFIG, unless set). Idempotent: set again only
    when the device or the deterministic switch has changed since. The entry points call it where training starts,
    runtime() too, for code without one (bench/, tests, lib.running.store called directly)."""
    global _applied
    chosen = chosen or settings.current()
    device = _device(chosen)
    if _applied == (device.type, chosen.deterministic):
        return
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not chosen.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if chosen.deterministic:
        settings.export({"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}, replace=False)
        torch.use_deterministic_algorithms(True, warn_only=True)
    _applied = (device.type, chosen.deterministic)


def _precision(chosen: Settings, device: torch.device, capability: tuple[int, int] | None
               ) -> tuple[torch.dtype | None, list[str]]:
    """The autocast dtype (None = fp32) for the device, or AI6103_PRECISION's, with a note where it is not bf16/fp32."""
    text = chosen.precision
    if text != "auto":
        dtype = PRECISIONS[text]
    elif capability is None or not chosen.bf16:
        dtype = None  # fp32: the CPU, Apple GPUs (fp16 there is untested), or AI6103_BF16=0
    else:
        # Below 8.0 fp32: fp16 with loss scaling, the faster path there, has not run on a GPU yet (docs/speed.md)
        dtype = torch.bfloat16 if capability >= BF16_CAPABILITY else None
    notes = []
    if text == "auto" and chosen.bf16 and capability is not None and capability < BF16_CAPABILITY:
        notes.append(f"fp32: bf16 needs compute capability >= {BF16_CAPABILITY[0]}.{BF16_CAPABILITY[1]}, this GPU "
                     f"has {capability[0]}.{capability[1]}; fp16 with loss scaling (AI6103_PRECISION=fp16) has not "
                     f"been verified on a GPU yet (docs/speed.md)")
    if dtype == torch.float16:
        notes.append("fp16 autocast with dynamic loss scaling (AI6103_PRECISION=fp16)")
    if device.type == "mps" and dtype is not None:
        notes.append(f"{text} autocast on an Apple GPU: untested here (AI6103_PRECISION=fp32 is the default there)")
    return dtype, notes


def runtime(**overrides) -> Runtime:
    """This process's runtime (lib.core.settings.current() on this device), with any field replaced by `overrides`
    (e.g. `runtime(cuda_graphs=False)`); `bf16=True/False` or `precision="bf16"|"fp16"|"fp32"` sets the autocast
    dtype (before the evaluation batch is chosen from the memory, which depends on it). ValueError or
    RuntimeError, one line, for a bad setting or a device that cannot run; sees that torch's switches are set
    (apply_torch_settings)."""
    chosen = settings.current()
    device = _device(chosen)
    capability = _capability(device)
    apply_torch_settings(chosen)
    autocast_dtype, notes = _precision(chosen, device, capability)
    if "bf16" in overrides:
        overrides["autocast_dtype"] = torch.bfloat16 if overrides.pop("bf16") else None
    if "precision" in overrides:
        overrides["autocast_dtype"] = PRECISIONS[overrides.pop("precision")]
    autocast_dtype = overrides.pop("autocast_dtype", autocast_dtype)
    rt = dataclasses.replace(_chosen_runtime(chosen, device, capability, autocast_dtype, notes), **overrides)
    _check(rt)
    if rt.free_memory_mib is not None:
        rt = dataclasses.replace(rt, notes=(*rt.notes, _memory_note(rt, chosen.eval_batch is not None)))
    return rt


def _chosen_runtime(chosen: Settings, device: torch.device, capability: tuple[int, int] | None,
                    autocast_dtype: torch.dtype | None, notes: list[str]) -> Runtime:
    """The runtime the settings give on `device` (capability None off CUDA) in `autocast_dtype`: the speed features
    on CUDA only, the evaluation batch from the free memory unless set, and a note per feature that is off."""
    use_cuda = device.type == "cuda"
    free_mib = free_memory_mib(device)
    # One at a time unless asked for (`auto` measures, k fixes): a stack was slower on the CPU and on the H100
    # (bench/RESULTS.md, 2026-11-26), on Apple GPUs not measured; trainings at once never ran on a GPU, and on the
    # CPU their threads share its cores. docs/speed.md "Verified on which device" says what a GPU run must show.
    stack = 1 if chosen.stack is None else chosen.stack
    concurrent = 1 if chosen.concurrent is None else chosen.concurrent
    triton = use_cuda and capability >= TRITON_CAPABILITY
    if use_cuda and chosen.compile and not triton:
        notes.append(f"torch.compile off: Triton supports compute capability >= {TRITON_CAPABILITY[0]}."
                     f"{TRITON_CAPABILITY[1]}, this GPU has {capability[0]}.{capability[1]}")
    if device.type == "mps":
        notes.append("Apple GPU (MPS): eager steps, fp32 and one run at a time by default; CUDA graphs, fused SGD "
                     "and torch.compile are used on CUDA GPUs only")
    return Runtime(
        device=device,
        autocast_dtype=autocast_dtype,
        channels_last=use_cuda and chosen.channels_last,
        fused_sgd=use_cuda and chosen.fused_sgd,
        cuda_graphs=use_cuda and chosen.cuda_graphs,
        compile=triton and chosen.compile,
        compile_mode=chosen.compile_mode,
        compile_min_epochs=chosen.compile_min_epochs,
        compile_backend="inductor",
        eval_batch=chosen.eval_batch or _eval_batch_that_fits(free_mib, autocast_dtype),
        stack=None if stack == "auto" else stack,
        concurrent=None if concurrent == "auto" else concurrent,
        deterministic=chosen.deterministic,
        free_memory_mib=free_mib,
        notes=tuple(notes),
    )


def _check(rt: Runtime) -> None:
    """ValueError, one line, for a runtime that cannot run (overrides are checked here, the environment's in
    lib.core.settings)."""
    if rt.eval_batch < 1 or any(n is not None and n < 1 for n in (rt.stack, rt.concurrent)):
        raise ValueError(f"eval_batch, stack and concurrent must be >= 1, got {rt.eval_batch}, {rt.stack} and "
                         f"{rt.concurrent}")
    if rt.compile_mode not in COMPILE_MODES:
        raise ValueError(f"AI6103_COMPILE_MODE must be one of {', '.join(COMPILE_MODES)}, got {rt.compile_mode!r}")
    if rt.device.type != "cuda" and (rt.cuda_graphs or (rt.compile and rt.compile_backend == "inductor")):
        raise ValueError("CUDA graphs and torch.compile (inductor) are used on a CUDA device only")
    if rt.cuda_graphs and not rt.fused_sgd:
        raise ValueError("CUDA graphs need the fused SGD step (it takes the learning rate as a device tensor)")


def _eval_batch_that_fits(free_mib: float | None, autocast_dtype: torch.dtype | None) -> int:
    """The first of EVAL_BATCHES with which one run of the brief's batch fits in the memory planned (the last if
    none does); the first where the memory is not known."""
    if free_mib is None:
        return EVAL_BATCHES[0]
    return next((batch for batch in EVAL_BATCHES
                 if memory_mib(1, RunConfig.batch_size, batch, autocast_dtype) <= MEMORY_SHARE * free_mib),
                EVAL_BATCHES[-1])


def _memory_note(rt: Runtime, eval_batch_set: bool) -> str:
    """'memory: 7.4 GiB free, 80% planned: evaluation batch 1000 (2000 would need ~6.6 GiB); at most 2 runs of
    batch 128 per stack (~1.2 GiB each)'."""
    batch = RunConfig.batch_size

    def gib(runs: int, eval_batch: int) -> float:
        return memory_mib(runs, batch, eval_batch, rt.autocast_dtype) / 1024

    if eval_batch_set:
        why = "AI6103_EVAL_BATCH"
    elif rt.eval_batch < EVAL_BATCHES[0]:
        why = f"{2 * rt.eval_batch} would need ~{gib(1, 2 * rt.eval_batch):.1f} GiB"
    else:
        why = f"~{gib(1, rt.eval_batch):.1f} GiB with one run"
    return (f"memory: {rt.free_memory_mib / 1024:.1f} GiB free, {MEMORY_SHARE:.0%} planned: evaluation batch "
            f"{rt.eval_batch} ({why}); at most {rt.runs_that_fit(batch)} runs of batch {batch} per stack "
            f"(~{gib(1, 0):.1f} GiB each)")

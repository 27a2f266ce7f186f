"""The one place that decides where training runs and in which precision.

CUDA if present: bf16 autocast and channels_last memory layout. Otherwise CPU in fp32.
`AI6103_DEVICE=cpu` forces the CPU; `AI6103_COMPILE=1` wraps the model in torch.compile (CUDA only);
`AI6103_DETERMINISTIC=1` asks PyTorch for deterministic kernels (slower on GPU, bit-exact resumes).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    autocast_dtype: torch.dtype | None  # None = full fp32
    channels_last: bool  # NHWC activations: faster convolutions on tensor cores
    compile: bool  # torch.compile the model
    deterministic: bool

    def autocast(self):
        """Mixed-precision context; a no-op on the CPU."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "CPU"
        precision = "bf16 autocast" if self.autocast_dtype is not None else "fp32"
        return f"{name} ({precision}{', compiled' if self.compile else ''})"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value not in ("0", "1"):
        raise ValueError(f"{name} must be 0 or 1, got {value!r}")
    return value == "1"


def runtime() -> Runtime:
    choice = os.environ.get("AI6103_DEVICE", "auto")
    if choice not in ("auto", "cpu", "cuda"):
        raise ValueError(f"AI6103_DEVICE must be auto, cpu or cuda, got {choice!r}")
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
    return Runtime(
        device=torch.device("cuda" if use_cuda else "cpu"),
        autocast_dtype=torch.bfloat16 if use_cuda else None,
        channels_last=use_cuda,
        compile=use_cuda and _flag("AI6103_COMPILE", False),
        deterministic=deterministic,
    )

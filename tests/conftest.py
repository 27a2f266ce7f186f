"""Shared fixtures: a small synthetic CIFAR-100 folder and private run/result/figure folders per test."""
from __future__ import annotations

import os
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lib import RunConfig, write_synthetic_cifar100

N_TRAIN, N_TEST = 1200, 300  # synthetic images in the train and test files

# Under pytest-xdist (`make test`) each worker takes its share of the cores as torch threads, and so do the drivers,
# kernels and workers it starts (OMP_NUM_THREADS): 2 workers with every core each ran slower than one worker (OpenMP
# threads waiting on each other), 2 workers with a core each ran the suite in two thirds of one worker's time.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    THREADS = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(THREADS)
    torch.set_num_threads(THREADS)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    write_synthetic_cifar100(folder, n_train=N_TRAIN, n_test=N_TEST, seed=0)
    return folder


@pytest.fixture(autouse=True)
def private_folders(tmp_path, monkeypatch):
    """Every test gets its own run store, results, figures and paper folders: no test touches a user's runs."""
    for name in ("RUNS", "RESULTS", "FIGURES", "REPORT"):
        monkeypatch.setenv(f"AI6103_{name}_DIR", str(tmp_path / name.lower()))
    monkeypatch.setenv("AI6103_DEVICE", "cpu")
    for name in ("AI6103_EXECUTOR", "AI6103_WORKERS"):  # a user's shell must not send the tests' runs to Slurm
        monkeypatch.delenv(name, raising=False)
    warnings.filterwarnings("ignore", message=".*not the official CIFAR-100.*")


@pytest.fixture
def tiny_config(synthetic_dir):
    """A run that trains in about a second on 2 CPU cores: 64 training and 32 validation images, 2 steps an epoch."""
    return RunConfig(data_dir=str(synthetic_dir), epochs=2, val_size=300, train_subset=64, val_subset=32,
                     batch_size=32, lr=0.05)


@pytest.fixture
def float64():
    """fp64 as the default dtype for one test, so that rounding cannot hide a difference."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


class Tiny(nn.Module):
    """A convolution, BatchNorm and classifier: the layers lib.nets.stack stacks, at a fraction of MobileNet's cost."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1).flatten(1))


@pytest.fixture
def tiny_model(monkeypatch):
    """lib.training.train builds the Tiny model whatever the architecture; configs then watch "conv.weight"."""
    monkeypatch.setattr(sys.modules["lib.training.train"], "build_model",
                        lambda arch, num_classes, blocks, **options: Tiny(num_classes))

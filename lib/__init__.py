"""The AI6103 hyperparameter-study workbook: data, models, training and the run store.

Notebooks, tests and users import from here; docs/library.md describes each module.
"""
from .core.config import ConfigError, RunConfig
from .nets.data import (
    DataError,
    channel_stats,
    class_proportions,
    data_info,
    load_cifar100,
    random_crop_flip,
    split_indices,
    write_synthetic_cifar100,
)
from .nets.models import build_model
from .running.runs import evaluate_test, run_or_load, run_or_load_many
from .running.store import RunResult, RunStoreError, load_run
from .training.schedule import lr_at
from .training.step import mixup_loss, sample_mixup_lambda
from .training.train import train, train_together

__all__ = [
    "ConfigError", "DataError", "RunConfig", "RunResult", "RunStoreError", "build_model", "channel_stats",
    "class_proportions", "data_info", "evaluate_test", "load_cifar100", "load_run", "lr_at", "mixup_loss",
    "random_crop_flip", "run_or_load", "run_or_load_many", "sample_mixup_lambda", "split_indices", "train",
    "train_together", "write_synthetic_cifar100",
]

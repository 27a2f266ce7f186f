"""Layer 2 of lib, data and models: CIFAR-100 on disk and on the device (data), the networks (models), several runs
as one stacked network (stack), and the one place deciding device, precision and speed features (device).

Its modules may import lib.core and each other, nothing of training, running, studies or report.
tests/test_core.py checks the order of the layers.
"""

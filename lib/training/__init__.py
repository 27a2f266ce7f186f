"""Layer 3 of lib, training: learning-rate schedules (schedule), a run's data on the device (splits), the SGD step
(step), which runs train together (grouping), the loop (train), each run's event files (tracking), and trainings at
once in one process (concurrency).

Its modules may import lib.core, lib.nets and each other, nothing of running, studies or report.
tests/test_core.py checks the order of the layers.
"""

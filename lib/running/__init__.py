"""Layer 4 of lib, the runs: the run store on disk (store), the cost model (cost), `run_or_load` and
`run_or_load_many` (runs), where runs train: here, local workers or Slurm (executor), and what Slurm's queue
says of jobs (slurm_queue).

Its modules may import lib.core, lib.nets, lib.training and each other, nothing of studies or report.
tests/test_core.py checks the order of the layers (and that the store imports neither the trainer nor the cost model).
"""

"""Layer 1 of lib, the foundations: every environment variable read once (settings), the run configuration
(config), every folder (paths), how settings are written (notation) and atomic per-epoch checkpoints (checkpoint).

Its modules import only each other: nothing of lib's later layers (nets, training, running, studies, report), so
every other layer may lean on them. tests/test_core.py checks the order of the layers.
"""

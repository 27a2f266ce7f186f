"""Layer 5 of lib, the study: results files (results), public ranges (reference, public_ranges.json), profiles,
the study's sections (sections), the plan, the study lock, seeds, sweeps, searches, baselines, what the notebooks
call (study) and the figures (plots).

Its modules may import every earlier layer (lib.core, lib.nets, lib.training, lib.running) and each other; only
lib.report (the paper) comes after it. tests/test_core.py checks the order of the layers.
"""

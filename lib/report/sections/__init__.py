"""The paper's sections, one module each: every function takes results (and the runs the findings name) and
returns its `Facts` (macros, tables, listings, prose values); none writes a file (lib.report.generation does)."""

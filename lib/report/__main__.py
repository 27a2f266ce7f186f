"""`python -m lib.report`: generate the paper's LaTeX and build it (lib.report.build.main)."""
import sys

from .build import main

sys.exit(main())

"""Building the paper: `build_report()` compiles report/paper.tex with latexmk in a build folder holding copies
of the sources, the generated files (lib.report.generation) and the figures they include; `main()` is
`python -m lib.report`, for the session's brief (AI6103_BRIEF, or --brief)."""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..core import paths
from ..core.checkpoint import atomic_write
from ..core.settings import export
from ..studies.briefs import load
from ..studies.profiles import PROFILES
from ..studies.sections import EXTRAS, brief
from .generation import generate
from .reading import DEFAULT_PROFILE, ReportError
from .style import SOURCES, choose_style, figure_stems

# The generated files that include figures (lib.report.generation), besides paper.tex.
INCLUDING = ("body.tex", "extras.tex", "conclusion.tex")


def figure_section(stem: str) -> str | None:
    """The section whose notebook draws a figure: the longest of the brief's sections and the extras whose name
    begins the figure's file stem, "<section>_<name>" (the longest, as one section's name may begin another's);
    None if none does."""
    found = [name for name in (*brief().names, *EXTRAS) if stem.startswith(f"{name}_")]
    return max(found, key=len, default=None)


def included_figures(src: Path, generated: Path) -> list[str]:
    """The figure files paper.tex and the generated sections include, each once, in order."""
    texts = [(src / "paper.tex").read_text(), *((generated / name).read_text() for name in INCLUDING
                                                if (generated / name).exists())]
    return list(dict.fromkeys(stem for text in texts for stem in figure_stems(text)))


def copy_sources(src: Path, build: Path, figures: Path) -> tuple[str, str, bool]:
    """Copy report/'s sources (and the official kit's files, if chosen) and the figures the paper includes
    (paper.tex and build/generated/, written first) into `build`; returns choose_style's answer. A ReportError
    naming the notebook if a figure is missing."""
    style, bst, official = choose_style(src)
    for name in SOURCES:
        shutil.copy2(src / name, build / name)
    if official:
        for kit_file in src.glob(f"{style}.*"):
            shutil.copy2(kit_file, build / kit_file.name)
    (build / "figures").mkdir(exist_ok=True)
    for stem in included_figures(src, build / "generated"):
        source = figures / stem
        if not source.exists():
            section = figure_section(Path(stem).stem)
            notebook = f"notebook notebooks/{section}.ipynb" if section else "the notebooks"
            raise ReportError(f"figure {source} does not exist: run {notebook} first")
        shutil.copy2(source, build / "figures" / stem)
    return style, bst, official


def build_report(results_dir: Path | None = None, figures_dir: Path | None = None, out_dir: Path | None = None,
                 quiet: bool = True, profile: str | None = None, author: str | None = None) -> Path:
    """Generate the LaTeX and compile the paper in `out_dir` (default lib.core.paths.paper_build_dir); returns the PDF's
    path. out_dir receives copies of report/'s sources, `generated/`, `figures/` and latexmk's outputs, so the
    folders the results and figures live in can be anywhere. A ReportError if latexmk is missing or fails."""
    if shutil.which("latexmk") is None:
        raise ReportError("latexmk is not installed: run `make setup` (scripts/install_tex.sh)")
    src = paths.report_dir()
    build = Path(out_dir) if out_dir is not None else paths.paper_build_dir(profile or DEFAULT_PROFILE)
    figures = Path(figures_dir) if figures_dir is not None else paths.figures_dir(profile or DEFAULT_PROFILE)
    build.mkdir(parents=True, exist_ok=True)
    generate(results_dir, figures, build / "generated", profile, author)
    style, bst, official = copy_sources(src, build, figures)
    command = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "paper.tex"]
    done = subprocess.run(command, cwd=build, capture_output=True, text=True)
    if done.returncode != 0 or not (build / "paper.pdf").exists():
        log = build / "paper.log"
        errors = [ln for ln in (log.read_text(errors="replace").splitlines() if log.exists() else [])
                  if ln.startswith("!") or re.match(r"^\S+\.(tex|sty):\d+: ", ln)]
        raise ReportError(f"latexmk failed in {build}: " + (" | ".join(errors[:5]) or done.stdout[-2000:]))
    if not quiet:
        print(f"Paper style: {'official AAAI kit ' + style if official else 'ours (report/ai6103aaai.sty)'}, "
              f"bibliography style {bst}")
    return build / "paper.pdf"


def set_aside(paper: Path) -> Path | None:
    """Rename an existing `paper` to paper.stale.pdf beside it, before a build that may fail, so that no paper.pdf
    is left that the current results might not make; returns the stale copy's path, None if there was no paper."""
    if not paper.exists():
        return None
    stale = paper.with_name("paper.stale.pdf")
    os.replace(paper, stale)
    return stale


def install(pdf: Path, paper: Path) -> None:
    """Copy the built `pdf` to `paper` atomically (a temporary file renamed into place) and remove the
    paper.stale.pdf beside it, older than this paper."""
    paper.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(paper, lambda tmp: shutil.copyfile(pdf, tmp))
    paper.with_name("paper.stale.pdf").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m lib.report [--generate-only] [--profile P] [--brief B] [--arch A] [--author A]`: the paper of
    brief B (exported as AI6103_BRIEF, and the architecture as AI6103_ARCH, before anything reads them) into
    lib.core.paths.paper_dir (report/<brief>/<profile>/); returns the exit status (1 with a one-line error if
    something the paper needs is missing). A previous paper.pdf there is renamed paper.stale.pdf before the build
    and removed once the new one is in place: a build that fails, or is stopped, leaves no paper.pdf that the
    current results would not make."""
    parser = argparse.ArgumentParser(prog="python -m lib.report",
                                     description="Generate the paper's LaTeX from the results files and build it.")
    parser.add_argument("--generate-only", action="store_true", help="write report/generated/ and stop")
    parser.add_argument("--profile", default=DEFAULT_PROFILE, choices=sorted(PROFILES),
                        help="the profile whose results make the paper (make: PROFILE); it goes to "
                             "report/<brief>/<profile>/ (AI6103_REPORT_DIR moves report/)")
    parser.add_argument("--brief", default=None,
                        help="the brief whose study the paper is of (make: BRIEF; default AI6103_BRIEF, else mixup)")
    parser.add_argument("--arch", default=None,
                        help="the architecture that replaced the brief's (make: ARCH; default AI6103_ARCH)")
    parser.add_argument("--author", default=None,
                        help="the paper's author (make: AUTHOR); without it the paper shows a placeholder")
    args = parser.parse_args(argv)
    try:
        if args.brief:
            load(args.brief)  # an unknown or bad brief: one line, before anything is read or exported
        export({name: value for name, value in (("AI6103_BRIEF", args.brief), ("AI6103_ARCH", args.arch)) if value})
        brief()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    author = args.author.strip() if args.author and args.author.strip() else None
    if author is None:
        print('No AUTHOR given: the paper shows a placeholder where the author goes; set it with '
              f'make report PROFILE={args.profile} AUTHOR="Your Name"', file=sys.stderr)
    target = paths.paper_dir(args.profile) / "paper.pdf"
    stale = None if args.generate_only else set_aside(target)
    try:
        generated = generate(profile=args.profile, author=author)
        if args.generate_only:
            print(f"Wrote {generated}")
            return 0
        pdf = build_report(quiet=False, profile=args.profile, author=author)
    except ReportError as error:
        note = f"; the previous paper, which these results may not make, is now {stale}" if stale else ""
        print(f"error: {error}{note}", file=sys.stderr)
        return 1
    install(pdf, target)
    print(f"Wrote {target}")
    return 0

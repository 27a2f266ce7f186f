"""Open JupyterLab on your own copies of the brief's notebooks: `make lab` (BRIEF=activation, PROFILE=smoke,
DATA_DIR=... optional).

Lab never opens notebooks/ itself, so editing and running there never dirties the repository: each notebook of the
brief (and those beyond it: sweep, baselines, search) is copied into lab/<brief>/ (git-ignored) when its copy is
missing, and a copy that exists is never overwritten, edited or not; the brief's order is printed, since file names
do not show it. A copy made from an older version of its committed notebook is named in one line,
with how to refresh it. The copies run with the project's `ai6103` kernel; they import `lib` from any folder
(the package is installed editable into .venv) and find every other folder through lib.core.paths, so nothing they
read or write depends on their folder.

The notebooks' `profile = None` means the PROFILE given here (exported as AI6103_PROFILE), `brief = None` the
BRIEF (AI6103_BRIEF; ARCH as AI6103_ARCH), and their `data_dir = None` the DATA_DIR (exported as
AI6103_NOTEBOOK_DATA_DIR), each as `make all` reads it. Options this script does not know go to `jupyter lab` as
they are (`--port 8899`).

    python scripts/lab.py --profile smoke --brief activation
    python scripts/lab.py --profile full --data-dir /data/cifar --dir /tmp/my-lab --no-browser
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from lib.core import paths, settings
from lib.core.config import ARCHS
from lib.studies import briefs, sections
from lib.studies.profiles import PROFILES

NOTEBOOKS_DIR = paths.PROJECT_ROOT / "notebooks"
RECORD = ".copied-from.json"  # in the copies' folder: each copy's committed notebook (sha256) when it was copied


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="full", choices=sorted(PROFILES),
                        help="what the notebooks' `profile = None` means (exported as AI6103_PROFILE)")
    parser.add_argument("--brief", default=briefs.DEFAULT, choices=briefs.available(),
                        help="the study whose notebooks to copy; what `brief = None` means (AI6103_BRIEF)")
    parser.add_argument("--arch", default=None, choices=sorted(ARCHS),
                        help="an architecture instead of the brief's (AI6103_ARCH)")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding cifar-100-python/ (AI6103_NOTEBOOK_DATA_DIR: the notebooks' data_dir)")
    parser.add_argument("--dir", default=None,
                        help="the folder of your copies, opened by Lab (default: lab/<brief>/ in the project)")
    return parser.parse_known_args(argv)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sync_copies(source: Path, copies: Path, names: list[str] | None = None) -> list[str]:
    """Copy each notebook of `source` (those of `names` only, if given) into `copies` unless its copy exists;
    return one line per copy whose notebook in `source` has changed since the copy was made (the copy itself is
    left as it is)."""
    copies.mkdir(parents=True, exist_ok=True)
    record_path = copies / RECORD
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    stale = []
    for notebook in sorted(source.glob("*.ipynb")):
        if names is not None and notebook.stem not in names:
            continue
        copy = copies / notebook.name
        digest = _sha256(notebook)
        if not copy.exists():
            shutil.copy2(notebook, copy)
            record[notebook.name] = digest
        elif record.get(notebook.name, digest) != digest:
            stale.append(f"{copy}: {notebook} has changed since this copy was made; to get the new one, "
                         f"rename or delete the copy (your edits in it) and start Lab again")
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return stale


def lab_environment(profile: str, data_dir: str | None, brief: str = briefs.DEFAULT, arch: str = "") -> dict[str, str]:
    """The kernel's environment (lib.core.settings.child_environment): the profile and data folder, and every folder
    variable made absolute (the kernels run in the copies' folder, where a relative path would mean another place);
    ValueError, one line, for a bad environment variable."""
    given = {"AI6103_NOTEBOOK_DATA_DIR": data_dir} if data_dir else {}  # the notebooks' `data_dir = None`, read
    return settings.child_environment(AI6103_PROFILE=profile, AI6103_BRIEF=brief, AI6103_ARCH=arch,
                                      **given)  # as `make all DATA_DIR=` reads it


def main(argv: list[str] | None = None) -> None:
    args, lab_options = parse_args(argv)
    arch = args.arch if args.arch not in (None, briefs.load(args.brief).arch) else ""  # as the driver reads it
    settings.export({"AI6103_BRIEF": args.brief, "AI6103_ARCH": arch})  # lab/<study>/, the notebooks' brief
    copies = Path(args.dir).expanduser().resolve() if args.dir else paths.lab_dir()
    for line in sync_copies(NOTEBOOKS_DIR, copies, [*sections.names(), *sections.EXTRAS]):
        print(line, flush=True)
    print(f"brief {args.brief}: run {', '.join(f'{name}.ipynb' for name in sections.names())} in this order; "
          f"{', '.join(sections.EXTRAS)} go beyond it", flush=True)
    # CurveZMQ keys for the kernels' sockets (the ai6103 kernelspec supports them), as the study's driver uses:
    # without them Lab's console logs "Kernel is running over TCP without encryption" for every kernel.
    command = [sys.executable, "-m", "jupyterlab", str(copies), "--KernelManager.transport_encryption=auto",
               *lab_options]
    if os.getuid() == 0 and "--allow-root" not in lab_options:
        command.append("--allow-root")  # root: containers, cloud notebooks
    try:
        env = lab_environment(args.profile, args.data_dir, args.brief, arch)
    except ValueError as error:  # a bad environment variable: one line, before Lab starts
        raise SystemExit(f"ValueError: {error}") from None
    data = f", data {env['AI6103_NOTEBOOK_DATA_DIR']}" if args.data_dir else ""
    print(f"JupyterLab on {copies} (your copies of notebooks/), brief {args.brief}, profile {args.profile}{data}",
          flush=True)
    os.execve(sys.executable, command, env)


if __name__ == "__main__":
    main()

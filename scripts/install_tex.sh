#!/usr/bin/env bash
# Installs the TeX packages the paper needs (Debian), and the PDF checkers the tests use, if missing.
# Never fails the set-up (scripts/apt_install.sh): without apt as root or sudo, or offline, it says so in one line;
# `make report` then names latexmk as missing, and the paper's tests are skipped.
set -uo pipefail
source "$(dirname "$0")/apt_install.sh"
packages=(texlive-latex-base texlive-latex-recommended texlive-fonts-recommended latexmk poppler-utils)
need=()
command -v latexmk >/dev/null || need+=(latex)
command -v pdfinfo >/dev/null || need+=(poppler)
kpsewhich times.sty >/dev/null 2>&1 || need+=(fonts)
[ ${#need[@]} -eq 0 ] && exit 0
apt_install "TeX for the paper" "the paper cannot be built (TeX is missing: ${need[*]})" "${packages[@]}"

#!/usr/bin/env bash
# Installs the TeX packages the paper needs (Debian), and the PDF checkers the tests use, if missing.
set -euo pipefail
packages=(texlive-latex-base texlive-latex-recommended texlive-fonts-recommended latexmk poppler-utils)
need=()
command -v latexmk >/dev/null || need+=(latex)
command -v pdfinfo >/dev/null || need+=(poppler)
kpsewhich times.sty >/dev/null 2>&1 || need+=(fonts)
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "Installing TeX for the paper: ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
  echo "Installing TeX for the paper (sudo): ${packages[*]}"
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
else
  echo "NOTE: TeX is missing (${need[*]}); install ${packages[*]} (or TeX Live + poppler) to build the paper." >&2
fi

#!/usr/bin/env bash
# Installs the TeX packages the paper needs (Debian), and the PDF checkers the tests use, if missing.
# Never fails the set-up: without apt and root (or passwordless sudo), or when apt fails (offline), it says in one
# line what to install; `make report` then names latexmk as missing, and the paper's tests are skipped.
set -uo pipefail
packages=(texlive-latex-base texlive-latex-recommended texlive-fonts-recommended latexmk poppler-utils)
need=()
command -v latexmk >/dev/null || need+=(latex)
command -v pdfinfo >/dev/null || need+=(poppler)
kpsewhich times.sty >/dev/null 2>&1 || need+=(fonts)
[ ${#need[@]} -eq 0 ] && exit 0
missing="TeX is missing (${need[*]}): install ${packages[*]} (or TeX Live + poppler) to build the paper"
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo)
else
  echo "NOTE: $missing." >&2
  exit 0
fi
echo "Installing TeX for the paper: ${packages[*]}"
if ! { "${sudo[@]}" apt-get update -qq \
       && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
          apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; }; then
  echo "NOTE: apt could not install it; $missing." >&2
fi
exit 0

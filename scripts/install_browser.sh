#!/usr/bin/env bash
# Installs Debian's Chromium and its chromedriver (tests/test_browser.py drives JupyterLab with them), if missing.
# Both come from the same apt repository, so their versions match (chromium-driver depends on that exact chromium).
# Never fails the build: without apt and root (or passwordless sudo), or when apt fails, it says in one line that
# the browser tests will be skipped.
set -uo pipefail
packages=(chromium chromium-driver)
version() { "$1" --version 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -1; }
if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
    && [ "$(version chromium)" = "$(version chromedriver)" ]; then
  exit 0
fi
skipped="the browser tests (pytest -m browser) will be skipped"
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo)
else
  echo "NOTE: chromium and chromium-driver are missing and cannot be installed here (no apt as root or sudo):" \
       "install ${packages[*]} from your distribution, else $skipped." >&2
  exit 0
fi
echo "Installing the browser for the browser tests: ${packages[*]}"
if ! { "${sudo[@]}" apt-get update -qq \
       && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
          apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; }; then
  echo "NOTE: apt could not install ${packages[*]}; $skipped." >&2
fi
exit 0

#!/usr/bin/env bash
# Installs Debian's Chromium and its chromedriver (tests/test_browser.py drives JupyterLab with them), if missing.
# Both come from the same apt repository, so their versions match (chromium-driver depends on that exact chromium).
# Never fails the build (scripts/apt_install.sh): without apt as root or passwordless sudo, or when apt fails, it
# says in one line that the browser tests will be skipped.
set -uo pipefail
source "$(dirname "$0")/apt_install.sh"
packages=(chromium chromium-driver)
version() { "$1" --version 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -1; }
if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
    && [ "$(version chromium)" = "$(version chromedriver)" ]; then
  exit 0
fi
apt_install "the browser for the browser tests" "the browser tests (pytest -m browser) will be skipped" "${packages[@]}"

# Sourced by scripts/install_tex.sh and scripts/install_browser.sh: `apt_install WHAT IF_NOT PACKAGE...` installs
# Debian packages with apt as root or with passwordless sudo. It never fails the set-up: without either, or when apt
# fails (offline), it prints one NOTE line ending in IF_NOT (what follows without the packages).
apt_install() {
  local what=$1 if_not=$2
  shift 2
  local sudo=()
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    sudo=()
  elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo)
  else
    echo "NOTE: $* missing and cannot be installed here (no apt as root or sudo): install them, else $if_not." >&2
    return 0
  fi
  echo "Installing $what: $*"
  if ! { "${sudo[@]}" apt-get update -qq \
         && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }; then
    echo "NOTE: apt could not install $*; $if_not." >&2
  fi
  return 0
}

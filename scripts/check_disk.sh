#!/usr/bin/env bash
# Run by `make setup` before it makes .venv: stops with one line when the disk cannot hold the venv, instead of pip
# failing half-way ("No space left on device") and leaving a half-installed one behind.
# Usage: check_disk.sh FOLDER [GIB]: FOLDER is where .venv goes; GIB the space it needs. The default is measured:
# torch 2.14.1 on x86_64 comes with its CUDA libraries, and the whole .venv was 6.1 GiB (2026-11-27); elsewhere
# (aarch64: a CPU build) under 2 GiB.
set -euo pipefail
folder=$1
if [ $# -ge 2 ]; then
  need_gib=$2
elif [ "$(uname -m)" = x86_64 ]; then
  need_gib=7
else
  need_gib=2
fi
free_kib=$(df -Pk "$folder" | awk 'NR == 2 {print $4}')
if (( free_kib < need_gib * 1024 * 1024 )); then
  echo "make setup: the .venv needs about $need_gib GiB free in $(cd "$folder" && pwd), which has" \
       "$(( free_kib / 1024 / 1024 )) GiB free: free some space, then run it again" >&2
  exit 1
fi

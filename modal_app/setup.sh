#!/bin/sh
# Creates the Python environment the Modal executor uses on this machine: the pinned `modal`
# client/CLI and `xxhash` (modal_app/requirements.txt). Idempotent; ~30 s the first time.
#   modal_app/setup.sh [VENV_DIR]    default: node_modules/.cache/modal-venv (found automatically;
#                                    elsewhere, point BUILD_MODAL_PYTHON at VENV_DIR/bin/python)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-"$here/../node_modules/.cache/modal-venv"}
# One setup at a time (parallel test files, two builds on first use): a second waits, then only checks.
mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$venv.lock"
  flock 9
fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import sys, modal, xxhash; sys.exit(0 if modal.__version__ == "1.6.4" else 1)' 2>/dev/null; then
  "$venv/bin/pip" install --disable-pip-version-check --no-input -q -r "$here/requirements.txt"
fi
"$venv/bin/python" -c 'import modal, xxhash; print("modal", modal.__version__, "xxhash", xxhash.VERSION)'

#!/usr/bin/env bash
# Create the project's Python 3.12 venv and install the project into it.
# The only shell step of the bootstrap: everything after it is `python -m harness bootstrap`.
set -euo pipefail
venv=${1:-.cache/venv}

# A usable Python >= 3.12: on PATH, or installed by pyenv (whose shims may point elsewhere).
find_python() {
  local candidate
  local candidates=(python3.12 python3.13 python3)
  if command -v pyenv >/dev/null 2>&1; then
    candidates=("$(pyenv root)"/versions/3.12.*/bin/python3.12 "${candidates[@]}")
  fi
  for candidate in "${candidates[@]}"; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
      command -v "$candidate"
      return
    fi
  done
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  python=$(find_python) || {
    echo "error: Python 3.12 not found. Install it (e.g. 'pyenv install 3.12' or 'apt-get install python3.12') and re-run 'make bootstrap'." >&2
    exit 1
  }
  echo "[bootstrap] creating $venv with $python"
  "$python" -m venv "$venv"
fi
echo "[bootstrap] installing Python packages (pinned in pyproject.toml) into $venv; the first time takes a few minutes"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# No --quiet here: on a fresh machine this is the longest step, and pip's lines are its progress.
"$venv/bin/python" -m pip install --progress-bar on -e '.[local,dev]'

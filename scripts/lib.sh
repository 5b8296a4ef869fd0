#!/usr/bin/env bash
# Shared by the wrapper scripts (sourced, not run): exec `python -m harness <command>` in the
# project venv, or say how to create it.

harness() {
  local repo python
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  python="$repo/.cache/venv/bin/python"
  if [[ ! -x "$python" ]]; then
    echo "error: $python not found; run 'make bootstrap' in $repo first" >&2
    exit 2
  fi
  export PYTHONPATH="$repo/tests${PYTHONPATH:+:$PYTHONPATH}"
  # Usage and help name the script the user ran, not `python -m harness`.
  export HARNESS_SCRIPT="$0"
  exec "$python" -m harness "$@"
}

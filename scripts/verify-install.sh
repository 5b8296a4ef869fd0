#!/usr/bin/env bash
# Check a running install (local, kind or existing) and report each check.
# Thin wrapper over the harness CLI: `python -m harness verify`. Every flag is parsed there;
# run `scripts/verify-install.sh --help` for the list.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="$REPO/.cache/venv/bin/python"

if [[ ! -x "$PYTHON" ]]; then
  echo "error: $PYTHON not found; run 'make bootstrap' in $REPO first" >&2
  exit 2
fi

export PYTHONPATH="$REPO/tests${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m harness verify "$@"

#!/usr/bin/env bash
# Remove an install made by install.sh (or by the e2e suite). Idempotent.
# Thin wrapper over the harness CLI: `python -m harness cleanup`. Every flag is parsed there;
# run `scripts/cleanup.sh --help` for the list.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="$REPO/.cache/venv/bin/python"

if [[ ! -x "$PYTHON" ]]; then
  echo "error: $PYTHON not found; run 'make bootstrap' in $REPO first" >&2
  exit 2
fi

export PYTHONPATH="$REPO/tests${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m harness cleanup "$@"

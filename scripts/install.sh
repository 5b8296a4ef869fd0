#!/usr/bin/env bash
# Install (or upgrade) the rag chart on a cluster: Kind or the current kube context.
# Thin wrapper over the harness CLI: `python -m harness install`. Every flag is parsed there;
# run `scripts/install.sh --help` for the list.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="$REPO/.cache/venv/bin/python"

if [[ ! -x "$PYTHON" ]]; then
  echo "error: $PYTHON not found; run 'make bootstrap' in $REPO first" >&2
  exit 2
fi

export PYTHONPATH="$REPO/tests${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" -m harness install "$@"

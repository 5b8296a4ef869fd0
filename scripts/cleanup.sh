#!/usr/bin/env bash
# Remove an install made by install.sh (or by the e2e suite). Idempotent.
# Thin wrapper over the harness CLI: `python -m harness cleanup`; `scripts/cleanup.sh --help` lists the flags.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
harness cleanup "$@"

#!/usr/bin/env bash
# Check a running install (any target) quickly and report each check.
# Thin wrapper over the harness CLI: `python -m harness verify`; `scripts/verify-install.sh --help` lists the flags.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
harness verify "$@"

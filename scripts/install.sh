#!/usr/bin/env bash
# Install (or upgrade) the rag chart on a cluster: Kind or the current kube context.
# Thin wrapper over the harness CLI: `python -m harness install`; `scripts/install.sh --help` lists the flags.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
harness install "$@"

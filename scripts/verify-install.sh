#!/usr/bin/env bash
# Check a running install (any target): what a release engineer runs after `helm install`.
# Quick checks, one line each (keys, a chat call with usage and rate-limit headers, llama-stack),
# then the models drift check (`python -m harness models check`: the values catalog, the gateway's
# listing per tier, llama-stack and, with MAAS_ENDPOINT and MAAS_API_KEY set, the MaaS agree).
# Exit 0 when every check passes, 1 otherwise.
# Thin wrapper over the harness CLI: `python -m harness verify`; `scripts/verify-install.sh --help` lists the flags.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
harness verify "$@"

#!/bin/sh
# Entrypoint of the llamastack/distribution-* images as built here, with upstream's contract:
# run the config at $RUN_CONFIG_PATH if it exists, else the distribution $DISTRO_NAME, else the
# arguments. (Upstream also wraps the server in opentelemetry-instrument when OTEL_* is set;
# that package is not installed here, so the server runs uninstrumented.)
set -e
if [ -n "$RUN_CONFIG_PATH" ] && [ -f "$RUN_CONFIG_PATH" ]; then
  exec llama stack run "$RUN_CONFIG_PATH" "$@"
fi
if [ -n "$DISTRO_NAME" ]; then
  exec llama stack run "$DISTRO_NAME" "$@"
fi
exec llama stack run "$@"

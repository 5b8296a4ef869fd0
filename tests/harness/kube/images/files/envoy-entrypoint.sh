#!/bin/sh
# Entrypoint of the envoyproxy/envoy image as built here: the same contract as upstream's
# (leading flags mean "run envoy with these"; $loglevel adds --log-level).
set -e
case "$1" in
  -*) set -- envoy "$@" ;;
esac
if [ "$1" = envoy ] && [ -n "${loglevel:-}" ]; then
  set -- "$@" --log-level "$loglevel"
fi
exec "$@"

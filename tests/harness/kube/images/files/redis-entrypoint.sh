#!/bin/sh
# Entrypoint of the redis image as built here, with upstream's contract: leading flags or a
# *.conf file mean redis-server; as root it drops to the redis user; umask 0077 by default.
set -e
case "$1" in
  -*|*.conf) set -- redis-server "$@" ;;
esac
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$(umask)" = 0022 ]; then
  umask 0077
fi
exec "$@"

#!/bin/bash
# Entrypoint of the pgvector/pgvector (postgres) image as built here, written for this
# repository to the postgres image's documented contract:
# - leading flags mean `postgres <flags>`;
# - on an empty $PGDATA: initdb with superuser $POSTGRES_USER (default postgres) and password
#   $POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust), password auth for
#   remote hosts, then create $POSTGRES_DB (default: the user's name) and run
#   /docker-entrypoint-initdb.d/*.sh and *.sql against it on a socket-only server;
# - as root it drops to the postgres user; as any other UID it runs as that UID.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" != postgres ]; then
	exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA"
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || :

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	: "${POSTGRES_USER:=postgres}"
	: "${POSTGRES_DB:=$POSTGRES_USER}"
	: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		echo "error: database is uninitialized and POSTGRES_PASSWORD is empty; set it (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
		exit 1
	fi
	# initdb wants the running UID in /etc/passwd; an arbitrary UID (OpenShift) has no entry.
	if ! getent passwd "$(id -u)" >/dev/null && [ -e /usr/lib/x86_64-linux-gnu/libnss_wrapper.so ]; then
		export LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
		NSS_WRAPPER_PASSWD="$(mktemp)"
		NSS_WRAPPER_GROUP="$(mktemp)"
		echo "postgres:x:$(id -u):$(id -g):PostgreSQL:$PGDATA:/bin/false" >"$NSS_WRAPPER_PASSWD"
		echo "postgres:x:$(id -g):" >"$NSS_WRAPPER_GROUP"
	fi
	# The password reaches initdb through a file descriptor, never a command line.
	# POSTGRES_INITDB_ARGS holds several flags: split on purpose.
	# shellcheck disable=SC2086
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
		${POSTGRES_INITDB_ARGS:-}
	printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
	unset LD_PRELOAD

	export PGUSER="$POSTGRES_USER" PGPASSWORD="${POSTGRES_PASSWORD:-}" PGPORT="${PGPORT:-5432}"
	pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -p $PGPORT" start
	if [ "$POSTGRES_DB" != postgres ]; then
		psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		# shellcheck disable=SC1090 # sources the user's init scripts
		case "$f" in
			*.sh) echo "running $f"; . "$f" ;;
			*.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname "$POSTGRES_DB" -f "$f" ;;
			*) [ -e "$f" ] && echo "ignoring $f" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGPASSWORD
	echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"

#!/bin/sh
# Starts PostgreSQL or Redis like the official images do (see Containerfile).
set -eu
case "$1" in
postgres)
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        pwfile="$(mktemp)"
        printf '%s\n' "${POSTGRES_PASSWORD:?}" > "$pwfile"
        chown postgres "$pwfile"
        setpriv --reuid=postgres --regid=postgres --init-groups initdb -D "$PGDATA" \
            -U "${POSTGRES_USER:-postgres}" --pwfile="$pwfile" --auth-local=trust \
            --auth-host=scram-sha-256 >/dev/null
        rm -f "$pwfile"
        echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
        setpriv --reuid=postgres --regid=postgres --init-groups pg_ctl -D "$PGDATA" -w -s \
            -o "-c listen_addresses=''" start
        if [ "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != postgres ]; then
            setpriv --reuid=postgres --regid=postgres --init-groups \
                createdb -U "${POSTGRES_USER:-postgres}" "$POSTGRES_DB"
        fi
        setpriv --reuid=postgres --regid=postgres --init-groups pg_ctl -D "$PGDATA" -w -s stop
        echo "standin-postgres: initialized $PGDATA"
    fi
    exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" \
        -c listen_addresses='*' ;;
redis)
    exec setpriv --reuid=redis --regid=redis --init-groups redis-server --bind 0.0.0.0 \
        --protected-mode no --save "" --appendonly no --dir /tmp ;;
*)
    echo "usage: standin-services postgres|redis" >&2; exit 2 ;;
esac

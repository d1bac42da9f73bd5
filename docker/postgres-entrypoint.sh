#!/bin/sh
# Initialises $PGDATA on first start (trust auth on loopback, database ehrlab), then runs the server
# in the foreground on 127.0.0.1:${PGPORT:-5432}.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" -U postgres --auth=trust --no-locale -E UTF8 >/dev/null
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
  psql -h /tmp -U postgres -d postgres -qc "CREATE DATABASE ehrlab"
  pg_ctl -D "$PGDATA" -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses=127.0.0.1 -p "${PGPORT:-5432}" -k /tmp -c fsync=off

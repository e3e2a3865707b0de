#!/usr/bin/env bash
# A throwaway PostgreSQL on 127.0.0.1 for the tests (installed from Debian's packages if missing).
#   scripts/postgres.sh start DIR   starts one with its data in DIR and prints its SQLAlchemy URL
#   scripts/postgres.sh stop DIR    stops it
set -euo pipefail
action=$1 dir=$2
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -c "$*"; else bash -c "$*"; fi; }

case "$action" in
start)
  if [ -z "$(pg_bin)" ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
  fi
  bin=$(pg_bin)
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -rf "$dir" && mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_postgres "$bin/initdb -D $dir/data -A trust -U postgres" >/dev/null
  as_postgres "$bin/pg_ctl -D $dir/data -l $dir/log -w -o \"-c listen_addresses=127.0.0.1 -p $port -k $dir\" start" >/dev/null
  echo "postgresql+psycopg2://postgres@127.0.0.1:$port/postgres"
  ;;
stop)
  as_postgres "$(pg_bin)/pg_ctl -D $dir/data -m fast -w stop" >/dev/null
  ;;
esac

#!/usr/bin/env bash
# Make sure the servers the tests use are up (PostgreSQL, MariaDB, Redis). On the project's machines
# they are started before a session; this starts any that stopped, with the machine's own commands.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_up() {
  for _ in $(seq 1 60); do up "$1" "$2" && return 0; sleep 0.5; done
  echo "!!! $3 did not come up on $1:$2" >&2
  return 1
}

if ! up 127.0.0.1 5432 && command -v pg_ctlcluster >/dev/null; then
  echo "Starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_up 127.0.0.1 5432 PostgreSQL
fi
if ! up 127.0.0.1 3306 && [ -x /usr/sbin/mariadbd ]; then
  echo "Starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  wait_up 127.0.0.1 3306 MariaDB
fi
if ! up 127.0.0.1 6379 && command -v redis-server >/dev/null; then
  echo "Starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  wait_up 127.0.0.1 6379 Redis
fi
exit 0

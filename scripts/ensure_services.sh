#!/usr/bin/env bash
# Starts this machine's PostgreSQL and Redis if they are down (CI and the test command call it).
# PostgreSQL: the Debian cluster "main", trust auth for postgres on 127.0.0.1 (database "test").
# Redis: in-memory only, bound to loopback.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "PostgreSQL is not installed (apt-get install -y postgresql), and nothing listens on 127.0.0.1:5432" >&2
    exit 1
  fi
  version=$(ls /etc/postgresql | sort -V | tail -1)
  echo "starting PostgreSQL $version..." >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
  pg_up || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "select 1" test >/dev/null 2>&1; then
  psql -h 127.0.0.1 -U postgres -tAc "create database test" postgres >/dev/null
fi

if ! redis_up; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "Redis is not installed (apt-get install -y redis-server), and nothing answers on 127.0.0.1:6379" >&2
    exit 1
  fi
  echo "starting Redis..." >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis_up && break; sleep 0.2; done
  redis_up || { echo "Redis did not come up on 127.0.0.1:6379" >&2; exit 1; }
fi
echo "PostgreSQL and Redis are up" >&2

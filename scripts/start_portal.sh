#!/usr/bin/env bash
# Starts the quantweb portal on this machine, from a fresh clone:
#   venv (scripts/setup_env.sh), database migrated (SQLite under var/ by default; PostgreSQL via DATABASE_URL),
#   a SECRET_KEY generated into var/secret_key on first start, static files collected (served by WhiteNoise),
#   an RQ worker and the dead-run reaper in the background (logs: "$VAR/worker.log", "$VAR/reaper.log"),
#   the demo checkpoint and photo dataset registered,
#   one demo int8 run queued (the page shows it progressing), an admin login printed, and the server on
#   http://127.0.0.1:8000/. Ctrl-C stops the server and the worker this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
PY=.venv/bin/python
VAR=${QUANTWEB_VAR_DIR:-var}
mkdir -p "$VAR"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
# The embedded default: DEBUG stays off, and settings generate a SECRET_KEY into var/ (production sets its own).
export QUANTWEB_EMBEDDED=1
QUEUE=${QUANTWEB_QUEUE:-conversions}
ADDR=${QUANTWEB_ADDR:-127.0.0.1:8000}

if ! "$PY" -c "import os, redis; redis.Redis.from_url(os.environ['REDIS_URL'], socket_connect_timeout=2).ping()" 2>/dev/null; then
  cat >&2 <<MSG
Redis is not reachable at $REDIS_URL; conversions run in RQ workers and need it. Start it with:
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
(or scripts/ensure_services.sh), or point REDIS_URL at your Redis; then run this script again.
MSG
  exit 1
fi

"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py collectstatic --noinput -v 0
login=$("$PY" manage.py create_admin)
echo "$login"

worker_pid=""
if [ -f "$VAR/worker.pid" ] && kill -0 "$(cat "$VAR/worker.pid")" 2>/dev/null; then
  echo "RQ worker already running (pid $(cat "$VAR/worker.pid")); log: $VAR/worker.log"
else
  nohup "$PY" manage.py rqworker "$QUEUE" >> "$VAR/worker.log" 2>&1 &
  worker_pid=$!
  echo "$worker_pid" > "$VAR/worker.pid"
  echo "RQ worker started on queue '$QUEUE' (pid $worker_pid); log: $VAR/worker.log"
fi
reaper_pid=""
if [ -f "$VAR/reaper.pid" ] && kill -0 "$(cat "$VAR/reaper.pid")" 2>/dev/null; then
  echo "Run reaper already running (pid $(cat "$VAR/reaper.pid"))"
else
  nohup "$PY" manage.py reap_runs --every 15 >> "$VAR/reaper.log" 2>&1 &
  reaper_pid=$!
  echo "$reaper_pid" > "$VAR/reaper.pid"
fi
stop_worker() {
  if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" 2>/dev/null || true
    rm -f "$VAR/worker.pid"
  fi
  if [ -n "$reaper_pid" ] && kill -0 "$reaper_pid" 2>/dev/null; then
    kill -TERM "$reaper_pid" 2>/dev/null || true
    rm -f "$VAR/reaper.pid"
  fi
}
trap stop_worker EXIT INT TERM

"$PY" manage.py seed_demo --run

cat <<MSG

quantweb portal: http://$ADDR/
$login
Staff audit (admin): http://$ADDR/admin/   Queues: http://$ADDR/django-rq/
The demo int8 run of efficientnet-lite0 on demo/photos/crops is on the Runs page.

MSG
"$PY" manage.py runserver "$ADDR" --noreload

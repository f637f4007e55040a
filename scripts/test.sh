#!/usr/bin/env bash
# The project's test command: install what the tests need (venv, Chromium for the UI tests, a
# real local Slurm cluster), then run the whole suite. Safe to rerun; a second run reuses
# everything already set up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/chromium.sh
bash scripts/slurm/up.sh
export PREFECT_SERVER_ANALYTICS_ENABLED=false
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit "$rc"

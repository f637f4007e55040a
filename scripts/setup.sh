#!/usr/bin/env bash
# Create the project's venv and install the package with its dev tools and the lm-eval extra
# (idempotent, quiet).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.vec-inf-flows-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing vec-inf-flows and its dependencies into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,router,lm-eval]' 2>&1 \
        | grep -v "^WARNING: Location" || true
    TRANSFORMERS_VERBOSITY=error .venv/bin/python -c "import vec_inf_flows, prefect, httpx, rich, pydantic, vllm_router, lm_eval, transformers, playwright"
    touch "$stamp"
fi
echo "setup: .venv ready ($(.venv/bin/python --version))"

#!/usr/bin/env bash
# The main job: set up (venv, the CPU build of vLLM, SmolLM2) and run the serve-and-run flow on
# the real engine: on Slurm when this machine has it, else as local processes. Rerun: reuses all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/vec-inf-flows demo "$@"

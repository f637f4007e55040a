#!/bin/bash
# vec-inf's examples/slurm_dependency/run_workflow.sh with the command renamed (and, on this
# GPU-less cluster, the simulator engine and a small downstream job).
set -euo pipefail
DOWNSTREAM_OUT=$1

# ---- Config ----
MODEL_NAME="SmolLM2-135M-Instruct"
LAUNCH_ARGS="$MODEL_NAME --engine sim --time 00:10:00"

# ---- Step 1: Launch the server
RAW_JSON=$(vec-inf-flows launch $LAUNCH_ARGS --json-mode)
SERVER_JOB_ID=$(echo "$RAW_JSON" |
    python3 -c "import sys, json; print(json.load(sys.stdin)['slurm_job_id'])")
echo "Launched server as job $SERVER_JOB_ID"

# ---- Step 2: Submit downstream job
sbatch --parsable --dependency=after:$SERVER_JOB_ID \
    --export=ALL,SERVER_JOB_ID=$SERVER_JOB_ID \
    --cpus-per-task=1 --mem=512M --time=00:05:00 --output="$DOWNSTREAM_OUT" \
    --wrap "python $(dirname "$0")/run_downstream.py $SERVER_JOB_ID"

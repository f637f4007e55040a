#!/bin/bash
# Reads vec-inf's --json-mode keys the way vec-inf's users' scripts do (python3 -c, no jq).
set -euo pipefail
BATCH_CONFIG=$1
key() { python3 -c "import sys, json; print(json.load(sys.stdin)$1)"; }

ID=$(vec-inf-flows launch SmolLM2-135M-Instruct --engine sim --time 00:05:00 --json-mode |
    key "['slurm_job_id']")
echo "status $(vec-inf-flows status "$ID" --json-mode | key "['model_status']")"
echo "base_url $(vec-inf-flows status "$ID" --json-mode | key "['base_url']")"
echo "listed $(vec-inf-flows status --json-mode |
    python3 -c "import sys, json; print([j['model_status'] for j in json.load(sys.stdin)
                                         if j['job_id'] == '$ID'])")"
BATCH=$(vec-inf-flows batch-launch SmolLM2-135M-Instruct all-MiniLM-L6-v2 \
    --batch-config "$BATCH_CONFIG" --json-mode)
echo "batch $(echo "$BATCH" | key "['slurm_job_id']")" \
    "$(echo "$BATCH" | key "['models']['all-MiniLM-L6-v2']['het_group_id']")"
echo "vocab $(vec-inf-flows list Meta-Llama-3.1-8B-Instruct --json-mode | key "['vocab_size']")"
echo "account $(vec-inf-flows list Meta-Llama-3.1-8B-Instruct --json-mode | key "['account']")"
vec-inf-flows shutdown "$ID" "$(echo "$BATCH" | key "['slurm_job_id']")" > /dev/null

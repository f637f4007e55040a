"""The multi-node vLLM prelude: a Ray head on this node, one worker per other node.

Readiness is polled (``ray status`` until every node has joined, with a deadline) instead of the
anchor's fixed sleeps, and the head's port is picked like the server's: take a free port, and if
the head dies binding it, take another.
"""

from __future__ import annotations

from vec_inf_flows.spec import LaunchSpec

RAY_TIMEOUT_VARIABLE = "VEC_INF_RAY_TIMEOUT"  # seconds to wait for all nodes; default 600
RAY_POLL_VARIABLE = "VEC_INF_RAY_POLL_INTERVAL"  # seconds between `ray status` polls; default 2
_HEAD_ATTEMPTS = 3


def ray_block(spec: LaunchSpec, python_word: str, container: list[str]) -> list[str]:
    """Bash lines; expects ``JOB_DIR`` and ``HEAD_NODE`` set, leaves ``RAY_ADDRESS`` exported."""
    prefix = " ".join(container)
    ray = f"{prefix} ray" if prefix else "ray"
    gpus = spec.resources.gpus_per_node
    resources = f'--num-cpus="${{SLURM_CPUS_PER_TASK:-1}}" --num-gpus={gpus}'
    step = "srun --nodes=1 --ntasks=1 --overlap"
    return [
        "# Ray cluster: head here, one worker per other node, then wait until all have joined.",
        f'RAY_TIMEOUT="${{{RAY_TIMEOUT_VARIABLE}:-600}}"',
        f'RAY_POLL="${{{RAY_POLL_VARIABLE}:-2}}"',
        "HEAD_IP=\"$(hostname --ip-address | awk '{print $1}')\"",
        'NODE_NAMES="$(scontrol show hostnames "$SLURM_JOB_NODELIST")"',
        'mapfile -t ALL_NODES <<<"$NODE_NAMES"',
        "ray_alive_nodes() {",
        "    local report",
        f'    report="$({ray} status --address="$RAY_ADDRESS" 2>/dev/null)" || report=""',
        "    awk '/^Active:/{a=1; next} /^(Pending|Recent failures):/{a=0} "
        'a && /node_/{n++} END{print n+0}\' <<<"$report"',
        "}",
        "wait_for_ray_nodes() {  # $1: nodes wanted; $2: head pid that must stay alive",
        "    local deadline=$((SECONDS + RAY_TIMEOUT))",
        "    while (( SECONDS < deadline )); do",
        '        kill -0 "$2" 2>/dev/null || return 2',
        "        (( $(ray_alive_nodes) >= $1 )) && return 0",
        '        sleep "$RAY_POLL"',
        "    done",
        "    return 1",
        "}",
        f"for attempt in $(seq 1 {_HEAD_ATTEMPTS}); do",
        f'    RAY_PORT="$({python_word} "$JOB_DIR/launcher.py" --free-port)"',
        '    RAY_ADDRESS="$HEAD_IP:$RAY_PORT"',
        f'    {step} --nodelist="$HEAD_NODE" {ray} start --head --node-ip-address="$HEAD_IP" \\',
        f'        --port="$RAY_PORT" {resources} --block &',
        "    RAY_HEAD_PID=$!",
        '    if wait_for_ray_nodes 1 "$RAY_HEAD_PID"; then break; fi',
        '    kill "$RAY_HEAD_PID" 2>/dev/null || true',
        '    wait "$RAY_HEAD_PID" 2>/dev/null || true',
        f"    if (( attempt == {_HEAD_ATTEMPTS} )); then",
        f'        echo "vec-inf: the Ray head did not start after {_HEAD_ATTEMPTS} attempts" >&2',
        "        exit 1",
        "    fi",
        "done",
        'for node in "${ALL_NODES[@]}"; do',
        '    [[ "$node" == "$HEAD_NODE" ]] && continue',
        f'    {step} --nodelist="$node" {ray} start --address="$RAY_ADDRESS" \\',
        f"        {resources} --block &",
        "done",
        'if ! wait_for_ray_nodes "${#ALL_NODES[@]}" "$RAY_HEAD_PID"; then',
        '    echo "vec-inf: only $(ray_alive_nodes) of ${#ALL_NODES[@]} Ray nodes joined within'
        ' ${RAY_TIMEOUT}s" >&2',
        "    exit 1",
        "fi",
        "export RAY_ADDRESS",
    ]

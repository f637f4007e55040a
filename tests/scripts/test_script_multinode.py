"""The multi-node Ray prelude, run for real under bash against stub srun/scontrol/ray.

The stub ``ray start`` blocks like the real one (``--block``) and ``ray status`` lists one
active node per started member, so the script's readiness polling, head retry and timeout
paths all execute.
"""

from __future__ import annotations

import re
from pathlib import Path

from script_helpers import JOB_ID, RunScript, StubBin, make_spec, prepare_job_dir

from vec_inf_flows.scripts import render_job_script
from vec_inf_flows.spec import SlurmResources

NODES = ["node-a", "node-b", "node-c"]
HEAD_IP = "10.1.2.3"

_RAY = """#!/bin/bash
state="$STUB_RECORD_DIR/ray-members"
case "$1" in
    start)
        if [[ " $* " == *" --head "* ]]; then
            failures="$STUB_RECORD_DIR/head-failures"
            left=$(cat "$failures" 2>/dev/null || echo 0)
            if (( left > 0 )); then echo $((left - 1)) >"$failures"; exit 1; fi
        fi
        [[ "${STUB_NODE:-}" == "${BROKEN_NODE:-none}" ]] && exit 1
        echo "${STUB_NODE:-?} $*" >>"$state"
        exec sleep 300 </dev/null >/dev/null 2>&1
        ;;
    status)
        [[ -s "$state" ]] || exit 1
        echo "======== Autoscaler status ========"
        echo "Active:"
        while read -r _; do echo " 1 node_$RANDOM"; done <"$state"
        echo "Pending:"
        echo " (no pending nodes)"
        ;;
esac
"""
_HOSTNAME = f"""#!/bin/bash
if [[ "${{1:-}}" == "--ip-address" ]]; then echo "{HEAD_IP} ::1"; else echo node-a; fi
"""
_SCONTROL = "#!/bin/bash\nprintf '%s\\n' " + " ".join(NODES) + "\n"


def setup(tmp_path: Path, stubs: StubBin, head_failures: int = 0) -> str:
    stubs.add("ray", _RAY)
    stubs.add("hostname", _HOSTNAME)
    stubs.add("scontrol", _SCONTROL)
    (stubs.records / "head-failures").write_text(f"{head_failures}\n")
    spec = make_spec(
        log_dir=str(tmp_path / "logs"),
        resources=SlurmResources(time="01:00:00", num_nodes=3, gpus_per_node=4),
    )
    prepare_job_dir(tmp_path / "logs" / "smollm" / f"SmolLM2-135M.{JOB_ID}")
    return render_job_script(spec, "job")


def ray_env(**extra: str) -> dict[str, str]:
    env = {
        "SLURMD_NODENAME": "node-a",
        "SLURM_JOB_NODELIST": "node-[a-c]",
        "SLURM_CPUS_PER_TASK": "2",
        "VEC_INF_RAY_POLL_INTERVAL": "0.05",
        "VEC_INF_RAY_TIMEOUT": "20",
    }
    env.update(extra)
    return env


def members(stubs: StubBin) -> list[str]:
    return (stubs.records / "ray-members").read_text().splitlines()


def test_head_then_workers_then_engine_with_ray_backend(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    result = run_script(setup(tmp_path, stubs), **ray_env())
    assert result.returncode == 0, result.stderr
    head, *workers = members(stubs)
    port = re.search(r"--port=(\d+)", head)
    assert port is not None
    address = f"{HEAD_IP}:{port.group(1)}"
    assert head.startswith("node-a start --head") and f"--node-ip-address={HEAD_IP}" in head
    assert "--num-cpus=2 --num-gpus=4 --block" in head
    assert sorted(line.split()[0] for line in workers) == ["node-b", "node-c"]
    assert all(f"--address={address}" in line for line in workers)
    [engine] = stubs.calls("vllm")
    assert engine["argv"][-2:] == ["--distributed-executor-backend", "ray"]
    assert engine["env"]["RAY_ADDRESS"] == address


def test_a_head_that_fails_to_start_is_retried(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    result = run_script(setup(tmp_path, stubs, head_failures=1), **ray_env())
    assert result.returncode == 0, result.stderr
    head_launches = [line for line in stubs.srun_log() if " start --head " in line]
    assert len(head_launches) == 2
    assert len(members(stubs)) == 3
    assert len(stubs.calls("vllm")) == 1


def test_a_node_that_never_joins_fails_the_job_at_the_deadline(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    env = ray_env(BROKEN_NODE="node-c", VEC_INF_RAY_TIMEOUT="1")
    result = run_script(setup(tmp_path, stubs), **env)
    assert result.returncode == 1
    assert "only 2 of 3 Ray nodes joined within 1s" in result.stderr
    assert stubs.calls("vllm") == []

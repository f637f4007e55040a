"""The multi-node job script and its supervisor (nodes.py), run for real against stub commands.

Bash, the supervisor, the per-node keepers and the launcher all run; only srun, scontrol, Ray
and vLLM are stubs. The stub ``ray start`` blocks like the real one (``--block``) and ``ray
status`` lists one active node per started member, so readiness polling, the head retry, the
deadline, node failure and teardown all execute. (tests/multinode runs the real thing.)
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from script_helpers import JOB_ID, RunScript, StubBin, make_spec, prepare_job_dir, script_env

from vec_inf_flows.scripts import job_side_sources, render_job_script
from vec_inf_flows.scripts.nodeports import BLOCK_SIZE, ephemeral_range
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
        [[ "${STUB_NODE:-}" == "${HANGING_NODE:-none}" ]] && exec sleep 300
        echo "${STUB_NODE:-node-a} $* AUTOSCALER_METRIC_PORT=${AUTOSCALER_METRIC_PORT:-}" >>"$state"
        echo $$ >"$STUB_RECORD_DIR/ray-pid-${STUB_NODE:-node-a}"
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
_SCONTROL = "#!/bin/bash\nprintf '%s\\n' " + " ".join(NODES) + "\n"
# A vLLM that records its call and serves until stopped (the node-failure tests need it alive).
# With HEAD_EXITS_AFTER=N, the head's engine ends (code 0) once N nodes have started.
_SERVING_VLLM = """#!/bin/bash
log="$STUB_RECORD_DIR/vllm-serving"
echo "${SLURMD_NODENAME:-?} $*" >>"$log"
[[ "${SLURMD_NODENAME:-}" == "${DYING_NODE:-none}" ]] && { sleep 1; exit 3; }
if [[ "${SLURMD_NODENAME:-}" == node-a && -n "${HEAD_EXITS_AFTER:-}" ]]; then
    while (( $(wc -l <"$log") < HEAD_EXITS_AFTER )); do sleep 0.05; done
    exit 0
fi
exec sleep 300
"""


def setup(
    tmp_path: Path, stubs: StubBin, mode: str = "ray", head_failures: int = 0, nodes: int = 3
) -> str:
    stubs.add("ray", _RAY)
    stubs.add("scontrol", "#!/bin/bash\nprintf '%s\\n' " + " ".join(NODES[:nodes]) + "\n")
    (stubs.records / "head-failures").write_text(f"{head_failures}\n")
    spec = make_spec(
        log_dir=str(tmp_path / "logs"),
        resources=SlurmResources(time="01:00:00", num_nodes=nodes, gpus_per_node=4),
        multi_node_mode=mode,
    )
    job_dir = prepare_job_dir(tmp_path / "logs" / "smollm" / f"SmolLM2-135M.{JOB_ID}")
    for name, text in job_side_sources(spec).items():
        (job_dir / name).write_text(text)
    return render_job_script(spec, "job")


def node_env(**extra: str) -> dict[str, str]:
    env = {
        "SLURMD_NODENAME": "node-a",
        "SLURM_JOB_NODELIST": "node-[a-c]",
        "SLURM_CPUS_PER_TASK": "2",
        "VEC_INF_HEAD_IP": HEAD_IP,
        "VEC_INF_RAY_POLL_INTERVAL": "0.05",
        "VEC_INF_RAY_TIMEOUT": "20",
    }
    env.update(extra)
    return env


def members(stubs: StubBin) -> list[str]:
    return (stubs.records / "ray-members").read_text().splitlines()


def ports_of(line: str) -> dict[str, int]:
    return {flag: int(value) for flag, value in re.findall(r"(--[a-z-]*port)=(\d+)", line)}


def test_ray_mode_starts_head_then_workers_then_the_engine(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = run_script(setup(tmp_path, stubs), **node_env(TMPDIR=str(temp)))
    assert result.returncode == 0, result.stderr
    assert list(temp.iterdir()) == []  # Ray's per-job files are gone with the job
    head, *workers = members(stubs)
    assert head.startswith("node-a start --head") and f"--node-ip-address={HEAD_IP}" in head
    assert "--num-cpus=2 --num-gpus=4" in head
    gcs = ports_of(head)["--port"]
    assert sorted(line.split()[0] for line in workers) == ["node-b", "node-c"]
    assert all(f"--address={HEAD_IP}:{gcs}" in line for line in workers)
    [engine] = stubs.calls("vllm")
    assert engine["argv"][-2:] == ["--distributed-executor-backend", "ray"]
    assert engine["env"]["RAY_ADDRESS"] == f"{HEAD_IP}:{gcs}"
    assert "all 3 Ray nodes joined" in result.stderr
    assert f"--temp-dir={temp}/vec-inf-ray-{JOB_ID}/0" in head


def test_every_ray_port_is_explicit_and_no_two_nodes_share_one(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    result = run_script(setup(tmp_path, stubs), **node_env())
    assert result.returncode == 0, result.stderr
    low, high = ephemeral_range()
    taken: list[int] = []
    for line in members(stubs):
        ports = ports_of(line)
        worker_low, worker_high = ports["--min-worker-port"], ports["--max-worker-port"]
        assert worker_high - worker_low + 1 == BLOCK_SIZE - 16
        single = [port for flag, port in ports.items() if "worker" not in flag]
        single += (
            [int(line.rsplit("AUTOSCALER_METRIC_PORT=", 1)[1] or 0)] if "--head" in line else []
        )
        assert len(single) == len(set(single)) == (10 if "--head" in line else 6)
        everything = [*single, *range(worker_low, worker_high + 1)]
        # below the ephemeral range, above Ray's default worker range, clear of its defaults
        assert all(20000 <= port < low or port > high for port in everything)
        assert not {6379, 8265, 10001, 44217, 44227, 52365} & set(everything)
        assert not set(everything) & set(taken)
        taken += everything


def test_a_head_that_fails_to_start_is_retried_on_another_block(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    result = run_script(setup(tmp_path, stubs, head_failures=1), **node_env())
    assert result.returncode == 0, result.stderr
    assert "try 2" in result.stderr
    assert len(members(stubs)) == 3
    assert len(stubs.calls("vllm")) == 1


def test_a_node_that_cannot_start_ray_is_retried_then_fails_the_job(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    result = run_script(setup(tmp_path, stubs), **node_env(BROKEN_NODE="node-c"))
    assert result.returncode == 1
    fatal = [line for line in result.stderr.splitlines() if line.startswith("vec-inf: ")]
    assert fatal == [
        "vec-inf: node node-c could not join the Ray cluster after 3 attempts"
        " (last: ray exited with code 1)"
    ]
    assert result.stderr.count("node-c: Ray ports") == 3
    assert stubs.calls("vllm") == []


def test_a_node_that_never_joins_fails_the_job_at_the_deadline(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    env = node_env(HANGING_NODE="node-c", VEC_INF_RAY_TIMEOUT="2")
    result = run_script(setup(tmp_path, stubs), **env)
    assert result.returncode == 1
    assert "vec-inf: only 2 of 3 Ray nodes joined within 2s" in result.stderr
    assert stubs.calls("vllm") == []


def test_native_mode_gives_each_node_its_rank_and_no_ray(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    stubs.add("vllm", _SERVING_VLLM)
    script = setup(tmp_path, stubs, mode="native", nodes=2)
    result = run_script(script, **node_env(HEAD_EXITS_AFTER="2"))
    assert result.returncode == 0, result.stderr  # the engine's own exit code, passed on
    assert not (stubs.records / "ray-members").exists()
    calls = dict(
        line.split(" ", 1) for line in (stubs.records / "vllm-serving").read_text().splitlines()
    )
    head, worker = calls["node-a"].split(), calls["node-b"].split()
    master_port = head[head.index("--master-port") + 1]
    native = ["--nnodes", "2", "--master-addr", HEAD_IP, "--master-port", master_port]
    assert head[-8:] == [*native, "--node-rank", "0"] and "--headless" not in head
    assert head[head.index("--distributed-executor-backend") + 1] == "mp"
    assert int(master_port) < ephemeral_range()[0]
    assert worker[-9:] == [*native, "--node-rank", "1", "--headless"]
    assert "--port" not in worker and "{port}" not in worker
    assert "vec-inf: " not in result.stderr


def test_a_dying_node_stops_every_node_and_fails_the_job(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    stubs.add("vllm", _SERVING_VLLM)
    script = setup(tmp_path, stubs, mode="native", nodes=3)
    started = time.monotonic()
    result = run_script(script, **node_env(DYING_NODE="node-c"))
    assert result.returncode == 1
    assert time.monotonic() - started < 20  # nothing waited for the 300 s servers
    lines = [line for line in result.stderr.splitlines() if line.startswith("vec-inf: ")]
    # one line, from the supervisor, in the words of the node's keeper; none for the nodes
    # stopped on purpose
    assert lines == [
        "vec-inf: node node-c (rank 2): vllm exited with code 3; stopping the server on every node"
    ]


def start_job(tmp_path: Path, stubs: StubBin, mode: str, **env: str) -> subprocess.Popen[str]:
    """The job script in the background, once every node's engine serves."""
    stubs.add("vllm", _SERVING_VLLM)
    path = tmp_path / "job.slurm"
    path.write_text(setup(tmp_path, stubs, mode=mode, nodes=3 if mode == "native" else 2))
    job = subprocess.Popen(
        ["bash", str(path)],
        cwd=tmp_path,
        env=script_env(stubs, **node_env(**env)),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    serving = stubs.records / "vllm-serving"
    expected = 3 if mode == "native" else 1
    deadline = time.monotonic() + 20
    while not serving.exists() or len(serving.read_text().splitlines()) < expected:
        assert time.monotonic() < deadline, "the engines never started"
        time.sleep(0.05)
    return job


def session_left(job: subprocess.Popen[str]) -> str:
    return subprocess.run(["pgrep", "-s", str(job.pid)], capture_output=True, text=True).stdout


def test_cancelling_the_job_stops_every_node_quietly(tmp_path: Path, stubs: StubBin) -> None:
    job = start_job(tmp_path, stubs, "native")
    job.send_signal(signal.SIGTERM)  # what scancel does to the batch step
    _, err = job.communicate(timeout=30)
    assert job.returncode == -signal.SIGTERM
    assert "vec-inf: " not in err
    assert session_left(job) == ""


def test_a_dead_ray_head_stops_every_node_and_fails_the_job(tmp_path: Path, stubs: StubBin) -> None:
    job = start_job(tmp_path, stubs, "ray")
    head = int((stubs.records / "ray-pid-node-a").read_text())
    os.kill(head, signal.SIGKILL)
    _, err = job.communicate(timeout=30)
    assert job.returncode == 1
    fatal = [line for line in err.splitlines() if line.startswith("vec-inf: ")]
    assert fatal == [
        "vec-inf: the Ray head on node-a was killed by SIGKILL; stopping the server on every node"
    ]
    assert session_left(job) == ""


def test_an_engine_that_ends_takes_the_other_nodes_down(tmp_path: Path, stubs: StubBin) -> None:
    # What a lease expiry on the head looks like from here: the launcher's engine stops.
    job = start_job(tmp_path, stubs, "native")
    engine = subprocess.run(
        ["pgrep", "-s", str(job.pid), "-f", "sleep 300"], capture_output=True, text=True
    ).stdout.split()
    head_engine = [pid for pid in engine if "node-a" in read_environ(int(pid), "SLURMD_NODENAME")]
    assert len(head_engine) == 1, engine
    os.kill(int(head_engine[0]), signal.SIGTERM)
    _, err = job.communicate(timeout=30)
    assert job.returncode == -signal.SIGTERM  # the engine's own ending, passed on
    assert "vec-inf: " not in err
    assert session_left(job) == ""


# Headless nodes that end (code 1) once the head's engine is gone, as vLLM's do.
_FOLLOWING_VLLM = """#!/bin/bash
log="$STUB_RECORD_DIR/vllm-serving"
echo "${SLURMD_NODENAME:-?} $*" >>"$log"
gone="$STUB_RECORD_DIR/head-gone"
if [[ "${SLURMD_NODENAME:-}" == node-a ]]; then
    trap 'touch "$gone"; exit 143' TERM
    sleep 300 & wait
fi
while [[ ! -e "$gone" ]]; do sleep 0.05; done
exit 1
"""


def test_a_lapsed_lease_stops_every_node_without_a_failure(
    tmp_path: Path, stubs: StubBin, run_script: RunScript
) -> None:
    """The watch stops the head's engine on purpose; the nodes that follow it are no failure."""
    stubs.add("vllm", _FOLLOWING_VLLM)
    script = setup(tmp_path, stubs, mode="native", nodes=3)
    job_dir = tmp_path / "logs" / "smollm" / f"SmolLM2-135M.{JOB_ID}"
    (job_dir / "watch.json").write_text('{"lease": {"lapse_after": 1}}')
    result = run_script(script, **node_env())
    assert result.returncode == 0, result.stderr
    assert "owner stopped renewing" in (job_dir / "stopped.json").read_text()
    assert "vec-inf: " not in result.stderr
    assert len((stubs.records / "vllm-serving").read_text().splitlines()) == 3


def read_environ(pid: int, name: str) -> str:
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if item.startswith(name.encode() + b"="):
            return item.decode().split("=", 1)[1]
    return ""


@pytest.mark.parametrize("nodes", [2, 3])
def test_single_node_jobs_copy_only_the_launcher_and_its_watch(nodes: int) -> None:
    single = make_spec()
    multi = replace(single, resources=SlurmResources(time="01:00:00", num_nodes=nodes))
    assert sorted(job_side_sources(single)) == ["jobwatch.py", "launcher.py"]
    assert sorted(job_side_sources(multi)) == [
        "jobwatch.py",
        "launcher.py",
        "nodeports.py",
        "nodeprocs.py",
        "nodes.py",
    ]


def test_job_side_files_parse_as_python_38() -> None:
    """They run with whatever Python the compute node has; the grammar must be 3.8's."""
    spec = replace(make_spec(), resources=SlurmResources(time="01:00:00", num_nodes=2))
    for name, source in job_side_sources(spec).items():
        ast.parse(source, filename=name, feature_version=(3, 8))

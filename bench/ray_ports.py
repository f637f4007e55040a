"""Ray-mode launches in a row on the local cluster: how many fail on a port, and what is left.

vec-inf's way (a random head port in 8080-65535, worker ports at Ray's defaults) failed about one
launch in six here: the head port landed in Ray's worker-port range. Each launch here is a
2-node SmolLM2 server in Ray mode through the client, like any launch; it counts as a port
failure when its logs show a port conflict (Ray's "trying to use a port number", "Address
already in use", "Failed to bind") or when the Ray cluster did not form. The supervisor's own
retries are counted too. After each shutdown, no process of the job may be left.

    .venv/bin/python bench/ray_ports.py [--launches 20] [--until ready|joined]

``--until joined`` stops each launch once every Ray node has joined (about 4x faster; vLLM's
own ports are then not exercised, and the cancel lands during vLLM's start-up). Needs
``scripts/slurm/up.sh`` and the CPU engine; the Ray mode runs from the tests' overlay of it
(tests/multinode/ray_engine.py, a test fixture).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

from vec_inf_flows.client import VecInfClient
from vec_inf_flows.engines.cpu import CpuEngine
from vec_inf_flows.models import ServerStatus

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "multinode"))
from ray_engine import RayTestEngine  # the test fixture, see the docstring
from testkit import processes_of_job, sessions_of_job

MODEL = "SmolLM2-135M-Instruct"
OPTIONS = {
    "num_nodes": 2,
    "gpus_per_node": 1,
    "multi_node_mode": "ray",
    "vllm_args": '--pipeline-parallel-size=2,--compilation-config={"mode": 2, "backend": "eager"}',
}
PORT_TROUBLE = re.compile(
    r"trying to use a port number|Address already in use|Failed to bind|port .* (?:is )?in use",
    re.IGNORECASE,
)
JOINED = "Ray nodes joined; starting the engine"


def log_text(job_dir: str) -> str:
    return "".join(path.read_text(errors="replace") for path in sorted(Path(job_dir).glob("*.err")))


def one_launch(client: VecInfClient, until: str) -> dict[str, object]:
    started = time.monotonic()
    launched = client.launch(MODEL, time="00:20:00", **OPTIONS)
    sessions: frozenset[int] = frozenset()
    outcome = "timeout"
    try:
        deadline = started + 900
        while time.monotonic() < deadline:
            text = log_text(launched.job_dir)
            sessions |= sessions_of_job(launched.job_id)
            status = client.status(launched.job_id)
            if status.server_status is ServerStatus.FAILED:
                outcome = f"FAILED: {status.failed_reason}"
                break
            if (until == "joined" and JOINED in text) or status.server_status is ServerStatus.READY:
                outcome = "ok"
                break
            time.sleep(1)
        seconds = time.monotonic() - started
    finally:
        client.shutdown(launched.job_id)
    text = log_text(launched.job_dir)
    left_deadline = time.monotonic() + 60
    while (
        left := processes_of_job(launched.job_id, sessions)
    ) and time.monotonic() < left_deadline:
        time.sleep(1)
    temp_left = Path(tempfile.gettempdir(), f"vec-inf-ray-{launched.job_id}").exists()
    return {
        "temp_left": temp_left,
        "job": launched.job_id,
        "outcome": outcome,
        "seconds": seconds,
        "port_lines": [line for line in text.splitlines() if PORT_TROUBLE.search(line)],
        "head_retries": text.count("Ray head at") - 1,
        "node_retries": text.count("left before joining"),
        "left": left,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=20)
    parser.add_argument("--until", choices=["ready", "joined"], default="ready")
    args = parser.parse_args()

    engine = CpuEngine.default()
    engine.setup()
    OPTIONS["venv"] = str(RayTestEngine(engine).setup())
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        client = VecInfClient(state_dir=Path(scratch) / "home")
        for n in range(1, args.launches + 1):
            row = one_launch(client, args.until)
            rows.append(row)
            print(
                f"{n:>3} job {row['job']}: {row['outcome']} in {row['seconds']:.0f} s,"
                f" port lines {len(row['port_lines'])}, head retries {row['head_retries']},"
                f" node retries {row['node_retries']}, processes left {len(row['left'])},"  # type: ignore[arg-type]
                f" Ray temp dir left {row['temp_left']}",
                flush=True,
            )
    port_failures = [r for r in rows if r["port_lines"] or r["outcome"] != "ok"]
    print(
        f"\n{len(rows)} Ray-mode launches (until {args.until}): "
        f"{sum(r['outcome'] == 'ok' for r in rows)} ok, {len(port_failures)} port failures, "
        f"{sum(int(r['head_retries']) for r in rows)} head retries, "  # type: ignore[call-overload]
        f"{sum(int(r['node_retries']) for r in rows)} node retries, "  # type: ignore[call-overload]
        f"{sum(bool(r['left']) for r in rows)} launches left processes behind, "
        f"{sum(bool(r['temp_left']) for r in rows)} left Ray's temp dir"
    )
    for row in port_failures:
        print(f"  job {row['job']}: {row['outcome']}; {row['port_lines'][:3]}")  # type: ignore[index]


if __name__ == "__main__":
    main()

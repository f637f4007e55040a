"""Helpers for the script tests: specs, stub commands on PATH, job dirs, polling.

The stubs stand in only for what cannot run here (vLLM, SGLang, srun, Ray); the script body,
bash, the job-side launcher and the file system are all real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from testkit import wait_until

from vec_inf_flows.scripts import launcher_source
from vec_inf_flows.spec import LaunchSpec, SlurmResources

RunScript = Callable[..., subprocess.CompletedProcess[str]]

JOB_ID = "4242"
NODE = "node-a"

# Records its own argv and selected environment variables to $STUB_RECORD_DIR/<name>.<pid>.json.
_RECORDER = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0])
keys = ("VLLM_API_KEY", "VEC_INF_API_KEY", "HF_TOKEN", "VENV_MARK", "RAY_ADDRESS",
        "APPTAINERENV_VLLM_API_KEY", "APPTAINERENV_HF_TOKEN", "SLURMD_NODENAME")
keys = keys + tuple(k for k in os.environ if k.startswith("USER_"))
record = {{"name": name, "argv": sys.argv[1:], "env": {{k: os.environ.get(k) for k in keys}}}}
path = os.path.join(os.environ["STUB_RECORD_DIR"], "%s.%d.json" % (name, os.getpid()))
with open(path, "w") as handle:
    json.dump(record, handle)
print("stub %s served" % name)
"""

# srun: drop options, honour --output/--error like Slurm does, run the command.
_SRUN = """#!/bin/bash
echo "$*" >>"$STUB_RECORD_DIR/srun.log"
out=""; err=""
while [[ $# -gt 0 && "$1" == --* ]]; do
    case "$1" in
        --output=*) out="${1#--output=}" ;;
        --error=*) err="${1#--error=}" ;;
        --nodelist=*) export STUB_NODE="${1#--nodelist=}" SLURMD_NODENAME="${1#--nodelist=}" ;;
    esac
    shift
done
if [[ -n "$out" ]]; then exec >"$out"; fi
if [[ -n "$err" ]]; then exec 2>"$err"; fi
exec "$@"
"""


def make_spec(**overrides: Any) -> LaunchSpec:
    resources = overrides.pop("resources", SlurmResources(time="01:00:00", cpus_per_task=2))
    base = LaunchSpec(
        model_name="SmolLM2-135M",
        model_family="smollm",
        model_type="LLM",
        vocab_size=49152,
        resources=resources,
        engine="vllm",
        model_path="/weights/smollm2",
        log_dir="/logs",
        python=sys.executable,
    )
    return replace(base, **overrides)


@dataclass
class StubBin:
    """A directory of stub commands, put first on PATH for the scripts we run."""

    directory: Path
    records: Path

    def add(self, name: str, text: str | None = None) -> Path:
        path = self.directory / name
        path.write_text(text if text is not None else _RECORDER.format(python=sys.executable))
        path.chmod(0o755)
        return path

    def srun_log(self) -> list[str]:
        """Every srun command line, in order."""
        log = self.records / "srun.log"
        return log.read_text().splitlines() if log.exists() else []

    def calls(self, name: str) -> list[dict[str, Any]]:
        found = sorted(self.records.glob(f"{name}.*.json"), key=lambda p: p.stat().st_mtime_ns)
        return [json.loads(path.read_text()) for path in found]


def new_stub_bin(tmp_path: Path) -> StubBin:
    stub = StubBin(tmp_path / "stub-bin", tmp_path / "stub-records")
    stub.directory.mkdir()
    stub.records.mkdir()
    stub.add("vllm")
    stub.add("python3")  # SGLang's launcher command
    stub.add("srun", _SRUN)
    return stub


def prepare_job_dir(job_dir: Path, secrets: str | None = None) -> Path:
    """What the client does before releasing the job: the dir, the launcher, the secrets."""
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "launcher.py").write_text(launcher_source())
    if secrets is not None:
        secrets_file = job_dir / ".secrets.env"
        secrets_file.write_text(secrets)
        secrets_file.chmod(0o600)
    return job_dir


def script_env(stubs: StubBin, **extra: str) -> dict[str, str]:
    env = {
        "PATH": f"{stubs.directory}:{os.environ['PATH']}",
        "HOME": str(stubs.directory.parent),
        "STUB_RECORD_DIR": str(stubs.records),
        "SLURM_JOB_ID": JOB_ID,
        "SLURMD_NODENAME": NODE,
    }
    env.update(extra)
    return env


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll a condition with a deadline (the condition is the assertion, not the clock)."""
    wait_until(predicate, timeout, "the condition", interval=0.02)

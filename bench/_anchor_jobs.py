"""Servers launched by vec-inf itself on the local cluster, running this package's simulator.

vec-inf's job runs ``vllm serve`` from the venv it is given; this venv's ``vllm`` starts the
simulator (``python -m vec_inf_flows.sim serve``, vLLM's command line). vec-inf's job script
also needs ``nc`` to find a port. Shared by status_scaling.py and the compatibility tests.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

MODEL = "SmolLM2-135M-Instruct"
MODELS_YAML = f"""\
models:
  {MODEL}:
    model_family: SmolLM2
    model_variant: 135M-Instruct
    model_type: LLM
    gpus_per_node: 1
    num_nodes: 1
    vocab_size: 49152
    cpus_per_task: 1
    mem_per_node: 1G
    time: "00:15:00"
    vllm_args:
      --max-model-len: 2048
"""


@dataclass
class AnchorKit:
    args: list[str]  # vec-inf launch options: config, venv, weights, log dir, no GPU type
    work_dir: Path  # VEC_INF_WORK_DIR (vec-inf requires one)
    log_dir: Path | None


def anchor_kit(root: Path, log_dir: Path | None = None) -> AnchorKit:
    """Files for ``vec-inf launch SmolLM2-135M-Instruct *kit.args`` under ``root``; without
    ``log_dir`` vec-inf writes to its default ``~/.vec-inf-logs``."""
    if shutil.which("nc") is None:
        raise SystemExit("vec-inf's job script needs nc: apt-get install netcat-openbsd")
    venv = root / "anchor-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text(f'export PATH="{venv / "bin"}:$PATH"\n')
    vllm = venv / "bin" / "vllm"
    vllm.write_text(f'#!/bin/sh\nexec {sys.executable} -m vec_inf_flows.sim "$@"\n')
    vllm.chmod(0o755)
    weights, work = root / "anchor-weights", root / "anchor-work"
    (weights / MODEL).mkdir(parents=True)
    work.mkdir()
    config = root / "anchor-models.yaml"
    config.write_text(MODELS_YAML)
    args = ["--config", str(config), "--venv", str(venv)]
    args += ["--model-weights-parent-dir", str(weights), "--resource-type", ""]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        args += ["--log-dir", str(log_dir)]
    return AnchorKit(args, work, log_dir)

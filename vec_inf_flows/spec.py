"""The validated, fully merged description of one server to launch.

The catalog builds a ``LaunchSpec`` (built-in config, user file and launch options merged and
validated); the script renderer turns it into job-script text. Nothing downstream re-validates,
so every field here is already checked (names, time, memory, counts, paths, engine args).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Engine = Literal["vllm", "sglang", "sim"]
ContainerRuntime = Literal["apptainer", "singularity"]
# How a server spread over several nodes starts them: vLLM's own multi-node executor
# (--nnodes/--node-rank/--headless; the default) or a Ray cluster (vec-inf's way).
MultiNodeMode = Literal["native", "ray"]
# The vLLM executor (--distributed-executor-backend) each mode runs.
EXECUTOR_FLAG = "--distributed-executor-backend"
MULTI_NODE_EXECUTORS: dict[MultiNodeMode, str] = {"native": "mp", "ray": "ray"}
# An engine flag's value: a bare flag (True), a negated flag (False -> --no-flag), a scalar,
# or JSON (dict / list) such as --compilation-config {"mode": 0}.
ArgValue = str | int | float | bool | dict[str, object] | list[object]


@dataclass(frozen=True)
class SlurmResources:
    """One job (or one het-job component)'s resource request."""

    time: str  # "HH:MM:SS" or "D-HH:MM:SS"; every job has a limit
    num_nodes: int = 1
    gpus_per_node: int = 0  # 0: no gres line (CPU-only model)
    cpus_per_task: int = 16
    mem_per_node: str | None = "64G"
    partition: str | None = None
    qos: str | None = None
    account: str | None = None
    resource_type: str | None = None  # GPU type in --gres=gpu:TYPE:N
    exclude: str | None = None
    nodelist: str | None = None
    work_dir: str | None = None  # --chdir


@dataclass(frozen=True)
class ContainerSpec:
    runtime: ContainerRuntime
    image: str
    binds: tuple[str, ...] = ()


@dataclass(frozen=True)
class LaunchSpec:
    """Everything the job script needs; secrets are held apart and never rendered."""

    model_name: str
    model_family: str
    model_type: str  # LLM, VLM, Text_Embedding, Reward_Modeling
    vocab_size: int
    resources: SlurmResources
    engine: Engine
    model_path: str  # weights directory (or a hub id for a user who asked for one)
    log_dir: str  # root of the log tree, absolute, user-expanded
    model_variant: str | None = None
    # Ordered (flag, value) pairs, flags in long form ("--max-model-len").
    engine_args: tuple[tuple[str, ArgValue], ...] = ()
    venv: str | None = None  # venv to activate; None: the job inherits sbatch's environment
    container: ContainerSpec | None = None
    env: tuple[tuple[str, str], ...] = ()  # exported in the job script
    # Secret variables (API keys, tokens): written to a 0600 file in the job dir and sourced;
    # never in the script text, the JSON, tables or logs. VEC_INF_API_KEY is the server's key.
    secret_env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # Interpreter that runs the job-side launcher (and the simulator for engine "sim").
    python: str = "python3"
    multi_node_mode: MultiNodeMode = "native"  # only read when resources.num_nodes > 1

    @property
    def job_name_prefix(self) -> str:
        return f"{self.model_name}-vec-inf"

    @property
    def has_api_key(self) -> bool:
        return any(name == "VEC_INF_API_KEY" for name, _ in self.secret_env)

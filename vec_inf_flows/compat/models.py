"""vec-inf 0.9.0's request and response types, field for field.

Plain dataclasses, as in vec-inf, so code that builds ``LaunchOptions(...)`` or reads
``response.slurm_job_id`` runs unchanged. ``LaunchOptions`` also takes this project's own
options (``container_image``, ``strict``, ``api_key`` ...): vec-inf's are a subset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ModelStatus(StrEnum):
    """vec-inf's states. ``UNAVAILABLE`` is never returned here: a job Slurm no longer lists
    is SHUTDOWN or FAILED with its reason."""

    PENDING = "PENDING"
    LAUNCHING = "LAUNCHING"
    READY = "READY"
    FAILED = "FAILED"
    SHUTDOWN = "SHUTDOWN"
    UNAVAILABLE = "UNAVAILABLE"


class ModelType(StrEnum):
    LLM = "LLM"
    VLM = "VLM"
    TEXT_EMBEDDING = "Text_Embedding"
    REWARD_MODELING = "Reward_Modeling"
    OCR = "OCR"
    AUDIO = "Audio"


@dataclass
class LaunchResponse:
    slurm_job_id: str
    model_name: str
    config: dict[str, Any]  # vec-inf's launch params (as ``launch --json-mode`` prints)
    raw_output: str = field(repr=False)


@dataclass
class BatchLaunchResponse:
    slurm_job_id: str
    slurm_job_name: str
    model_names: list[str]
    config: dict[str, Any]
    raw_output: str = field(repr=False)


@dataclass
class StatusResponse:
    model_name: str
    log_dir: str  # the job's log folder
    server_status: ModelStatus
    job_state: str | ModelStatus  # Slurm's state word, or the status once Slurm forgot the job
    raw_output: str = field(repr=False)  # this project's status record, as JSON
    base_url: str | None = None  # "UNAVAILABLE" unless READY, as in vec-inf
    pending_reason: str | None = None
    failed_reason: str | None = None


@dataclass
class MetricsResponse:
    model_name: str
    metrics: dict[str, float] | str  # a string says why there are no metrics yet
    timestamp: float


@dataclass
class ModelInfo:
    name: str
    family: str
    variant: str | None
    model_type: ModelType
    config: dict[str, Any]


@dataclass
class LaunchOptions:
    """vec-inf's launch options (every field optional), then this project's additions."""

    model_family: str | None = None
    model_variant: str | None = None
    partition: str | None = None
    resource_type: str | None = None
    num_nodes: int | None = None
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    mem_per_node: str | None = None
    account: str | None = None
    work_dir: str | None = None
    qos: str | None = None
    exclude: str | None = None
    nodelist: str | None = None
    bind: str | None = None
    time: str | None = None
    vocab_size: int | None = None
    data_type: str | None = None
    venv: str | None = None
    log_dir: str | None = None
    model_weights_parent_dir: str | None = None
    hf_model: str | None = None
    engine: str | None = None
    vllm_args: str | None = None
    sglang_args: str | None = None
    env: str | None = None
    config: str | None = None
    # vec-inf-flows' own options.
    multi_node_mode: str | None = None  # native (default) or ray, for num_nodes > 1
    model_type: str | None = None
    container_image: str | None = None
    python: str | None = None
    api_key: str | None = None
    strict: bool | None = None

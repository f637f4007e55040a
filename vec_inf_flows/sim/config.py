"""What one simulated ``vllm serve`` process was asked to be (parsed once, then read-only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VLLM_VERSION = "0.32.0"
STARTUP_FAILURES = ("kv-cache", "max-model-len", "cuda-oom", "bad-model-path")


@dataclass(frozen=True)
class SimConfig:
    model: str
    served_model_names: tuple[str, ...]
    host: str | None = None
    port: int = 8000
    max_model_len: int = 4096
    max_model_len_requested: int | None = None  # what the user asked for, before derivation
    derived_max_model_len: int | None = None  # from the model's config.json, when it has one
    architecture: str = "LlamaForCausalLM"
    max_num_seqs: int = 256
    api_keys: tuple[str, ...] = ()
    runner: str = "generate"  # resolved: "generate" or "pooling"
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    dtype: str = "bfloat16"
    enable_prefix_caching: bool = True
    gpu_memory_utilization: float = 0.92
    enforce_eager: bool = False
    disable_log_stats: bool = False
    disable_access_log: bool = False
    enable_server_load_tracking: bool = False
    compilation_config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    max_logprobs: int = 20
    non_default_args: dict[str, Any] = field(default_factory=dict)
    # --sim-* knobs
    startup_delay: float = 1.0
    fail_at_startup: str | None = None
    error_rate: float = 0.0
    drop_rate: float = 0.0
    crash_after: int | None = None
    tokens_per_second: float = 100.0
    ttft: float = 0.02
    embedding_dim: int = 384
    kv_cache_tokens: int = 46592
    dead_linger: float = 1.0
    device: str = "cpu"
    log_stats_interval: float = 10.0
    answers: tuple[tuple[str, str], ...] = ()  # --sim-answers: (prompt, answer) pairs
    tokenizer: str | None = None  # --sim-tokenizer: a tokenizer.json (or its folder)

    @property
    def served_model_name(self) -> str:
        """The name vLLM puts in every response: the first served name."""
        return self.served_model_names[0]

    @property
    def capacity_tokens_per_second(self) -> float:
        return self.max_num_seqs * self.tokens_per_second

"""vLLM's start-up log, step by step, with the simulated delay and start-up faults in place.

The order and wording match vLLM 0.32 (recorded in tests/fixtures/vllm_http/) because the log
classifier and people watching ``.out`` rely on it. Each fault fires where vLLM would fail.
"""

from __future__ import annotations

import os
import time

from vec_inf_flows.sim import fatal
from vec_inf_flows.sim.config import VLLM_VERSION, SimConfig
from vec_inf_flows.sim.vllm_log import ENGINE_CORE, WORKER, VllmLog

BANNER = (
    "",
    "       █     █     █▄   ▄█",
    f" ▄▄ ▄█ █     █     █ ▀▄▀ █  version {VLLM_VERSION}",
    "  █▄█▀ █     █     █     █  model   {model}",
    "   ▀▀  ▀▀▀▀▀ ▀▀▀▀▀ ▀     ▀",
    "",
)


class StartupFailed(Exception):
    """vLLM would exit 1 here; the lines are already printed."""


def announce(log: VllmLog, config: SimConfig) -> None:
    """What vLLM logs before it binds its socket: banner and the non-default arguments."""
    for text in BANNER:
        log.info("api_utils.py:347", text.replace("{model}", config.model))
    log.info("api_utils.py:286", f"non-default args: {config.non_default_args!r}")
    if config.fail_at_startup == "bad-model-path":
        fatal.fail_bad_model_path(config)
        raise StartupFailed


def _too_long(config: SimConfig) -> bool:
    if config.fail_at_startup == "max-model-len":
        return True
    requested, derived = config.max_model_len_requested, config.derived_max_model_len
    allowed = os.environ.get("VLLM_ALLOW_LONG_MAX_MODEL_LEN", "0") not in ("", "0")
    return bool(requested and derived and requested > derived and not allowed)


def engine_config_line(config: SimConfig) -> str:
    tokenizer = config.model
    return (
        f"Initializing a V1 LLM engine (v{VLLM_VERSION}) with config: model={config.model!r}, "
        f"speculative_config=None, tokenizer={tokenizer!r}, skip_tokenizer_init=False, "
        f"tokenizer_mode=auto, revision=None, tokenizer_revision=None, trust_remote_code=False, "
        f"dtype=torch.{config.dtype}, max_seq_len={config.max_model_len}, download_dir=None, "
        f"load_format=auto, tensor_parallel_size={config.tensor_parallel_size}, "
        f"pipeline_parallel_size={config.pipeline_parallel_size}, data_parallel_size=1, "
        f"disable_custom_all_reduce=False, quantization=None, "
        f"enforce_eager={config.enforce_eager}, "
        f"kv_cache_dtype=auto, device_config={config.device}, seed={config.seed}, "
        f"served_model_name={config.served_model_name}, "
        f"enable_prefix_caching={config.enable_prefix_caching}, enable_chunked_prefill=True, "
        f"pooler_config=None, compilation_config={config.compilation_config!r}"
    )


def boot_engine(log: VllmLog, config: SimConfig) -> None:
    """Model config, engine init, weights, KV cache: the slow part vLLM spends its start-up on."""
    delay = config.startup_delay
    log.info("model.py:733", f"Resolved architecture: {config.architecture}")
    if _too_long(config):
        fatal.fail_max_model_len(config)
        raise StartupFailed
    log.info("model.py:2152", f"Using max model len {config.max_model_len}")
    time.sleep(delay * 0.2)
    log.info("core.py:133", engine_config_line(config), proc=ENGINE_CORE)
    runner = "cpu_model_runner.py:68" if config.device == "cpu" else "gpu_model_runner.py:3380"
    log.info(runner, f"Starting to load model {config.model}...", proc=WORKER)
    time.sleep(delay * 0.3)
    if config.fail_at_startup == "cuda-oom":
        fatal.fail_cuda_oom(log)
        raise StartupFailed
    log.info("default_loader.py:501", f"Loading weights took {delay * 0.3:.2f} seconds", WORKER)
    time.sleep(delay * 0.2)
    if config.device == "cpu":
        log.info(
            "cpu_worker.py:260", "Explicitly set (1.0/11.09) GiB for KV cache on node 0.", WORKER
        )
    else:
        log.info("gpu_worker.py:298", "Available KV cache memory: 16.23 GiB", WORKER)
    if config.fail_at_startup == "kv-cache" or config.max_model_len > config.kv_cache_tokens:
        fatal.fail_kv_cache(log, config)
        raise StartupFailed
    device = "CPU" if config.device == "cpu" else "GPU"
    concurrency = config.kv_cache_tokens / config.max_model_len
    log.info(
        "kv_cache_utils.py:2327",
        f"{device} KV cache size: {config.kv_cache_tokens:,} tokens, Maximum concurrency for "
        f"{config.max_model_len:,} tokens per request: {concurrency:.2f}x",
        ENGINE_CORE,
    )
    time.sleep(delay * 0.3)
    log.info(
        "core.py:402",
        f"init engine (profile, create kv cache, warmup model) took {delay * 0.8:.2f} s",
        ENGINE_CORE,
    )
    tasks = "['token_embed', 'embed']" if config.runner == "pooling" else "['generate']"
    log.info("entry.py:136", f"Supported tasks: {tasks}")


def announce_routes(log: VllmLog, url: str, routes: list[tuple[str, str]]) -> None:
    log.info("entry.py:140", f"Starting vLLM server on {url}")
    log.info("launcher.py:186", "Available routes are:")
    for path, methods in routes:
        log.info("launcher.py:195", f"Route: {path}, Methods: {methods}")

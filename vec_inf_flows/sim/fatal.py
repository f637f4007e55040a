"""The fatal start-up failures vLLM 0.32 prints, each on the stream where vLLM prints it.

Root causes go to stdout through the EngineCore logger; the final ``RuntimeError`` (or argument
validation error) is an uncaught traceback on stderr. The log classifier keys on these lines.
"""

from __future__ import annotations

from vec_inf_flows.sim.config import SimConfig
from vec_inf_flows.sim.vllm_log import ENGINE_CORE, VllmLog, write_stderr

SITE = "/opt/venv/lib/python3.11/site-packages/vllm"
ENGINE_FAILED = (
    "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"
)
ENGINE_DEAD = (
    "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. "
    "See stack trace (above) for the root cause."
)


def _frames(*frames: tuple[str, int, str, str]) -> list[str]:
    lines = ["Traceback (most recent call last):"]
    for path, lineno, func, code in frames:
        lines += [f'  File "{path}", line {lineno}, in {func}', f"    {code}"]
    return lines


def _cli_frames() -> list[str]:
    return _frames(
        ("/opt/venv/bin/vllm", 8, "<module>", "sys.exit(main())"),
        (f"{SITE}/entrypoints/cli/main.py", 120, "main", "args.dispatch_function(args)"),
        (f"{SITE}/entrypoints/cli/serve.py", 156, "cmd", "uvloop.run(run_server(args))"),
        (
            f"{SITE}/entrypoints/launchers/api_server/entry.py",
            177,
            "run_server",
            "await run_server_worker(listen_address, sock, args, **uvicorn_kwargs)",
        ),
    )


def kv_cache_message(config: SimConfig) -> str:
    needed = config.max_model_len * 22.0 / 1024**2
    estimate = config.kv_cache_tokens - config.kv_cache_tokens % 128
    return (
        f"ValueError: To serve at least one request with the model's max seq len "
        f"({config.max_model_len}), ({needed:.2f} GiB KV cache is needed, which is larger than "
        f"the available KV cache memory (1.0 GiB). Based on the available memory, the estimated "
        f"maximum model length is {estimate}. Try increasing `gpu_memory_utilization` or "
        f"decreasing `max_model_len` when initializing the engine. See "
        f"https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details."
    )


def cuda_oom_message() -> str:
    return (
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 350.00 MiB. GPU 0 has a "
        "total capacity of 23.68 GiB of which 212.81 MiB is free. Including non-PyTorch memory, "
        "this process has 23.40 GiB memory in use. Of the allocated memory 22.91 GiB is allocated "
        "by PyTorch, and 120.35 MiB is reserved by PyTorch but unallocated. If reserved but "
        "unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True "
        "to avoid fragmentation."
    )


def engine_core_failed(log: VllmLog, root_cause: str, where: tuple[str, int, str, str]) -> None:
    """EngineCore's own report (stdout), then the API server's uncaught RuntimeError (stderr)."""
    source = "core.py:1510"
    frames = _frames(
        (
            f"{SITE}/v1/engine/core.py",
            1482,
            "run_engine_core",
            "engine_core = EngineCoreProc(*args, engine_index=dp_rank, **kwargs)",
        ),
        (f"{SITE}/v1/engine/core.py", 1194, "__init__", "super().__init__("),
        where,
    )
    log.error(source, "EngineCore failed to start.", proc=ENGINE_CORE)
    log.error_block(source, [*frames, root_cause], proc=ENGINE_CORE)
    log.error(
        "multiproc_executor.py:315",
        "Worker proc VllmWorker-0 died unexpectedly (exit code: None), shutting down executor.",
        proc=ENGINE_CORE,
    )
    write_stderr("Process EngineCore:")
    write_stderr("\n".join([*frames, root_cause]))
    tail = _frames(
        (
            f"{SITE}/v1/engine/utils.py",
            1431,
            "wait_for_engine_startup",
            "raise RuntimeError(",
        )
    )[1:]
    write_stderr("\n".join([*_cli_frames(), *tail, ENGINE_FAILED]))


def fail_kv_cache(log: VllmLog, config: SimConfig) -> None:
    engine_core_failed(
        log,
        kv_cache_message(config),
        (
            f"{SITE}/v1/core/kv_cache_utils.py",
            1030,
            "_check_enough_kv_cache_memory",
            "raise ValueError(",
        ),
    )


def fail_cuda_oom(log: VllmLog) -> None:
    engine_core_failed(
        log,
        cuda_oom_message(),
        (
            f"{SITE}/v1/worker/gpu_model_runner.py",
            3120,
            "profile_run",
            "hidden_states = self._dummy_run(self.max_num_tokens)",
        ),
    )


def fail_max_model_len(config: SimConfig) -> None:
    """Argument validation inside ModelConfig: a pydantic error on stderr only."""
    requested = config.max_model_len_requested or config.max_model_len
    derived = float(config.derived_max_model_len or config.max_model_len // 2 or 1)
    frames = _frames(
        (
            f"{SITE}/engine/arg_utils.py",
            1955,
            "create_model_config",
            "return ModelConfig(",
        )
    )[1:]
    write_stderr(
        "\n".join(
            [
                *_cli_frames(),
                *frames,
                "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig",
                f"  Value error, User-specified max_model_len ({requested}) is greater than the "
                f"derived max_model_len (max_position_embeddings={derived} or "
                "model_max_length=None in model's config.json). To allow overriding this maximum, "
                "set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. VLLM_ALLOW_LONG_MAX_MODEL_LEN "
                "must be used with extreme caution. [type=value_error, input_value=ArgsKwargs(()), "
                "input_type=ArgsKwargs]",
                "    For further information visit https://errors.pydantic.dev/2.14/v/value_error",
            ]
        )
    )


def fail_bad_model_path(config: SimConfig) -> None:
    frames = _frames(
        (
            f"{SITE}/transformers_utils/config.py",
            604,
            "get_config",
            "config_dict, _ = PretrainedConfig.get_config_dict(",
        )
    )[1:]
    write_stderr(
        "\n".join(
            [
                *_cli_frames(),
                *frames,
                "huggingface_hub.errors.HFValidationError: Repo id must be in the form "
                f"'repo_name' or 'namespace/repo_name': '{config.model}'. "
                "Use `repo_type` argument if needed.",
            ]
        )
    )


def engine_dead(log: VllmLog) -> None:
    """A runtime engine death: the API server's output handler logs it with a traceback."""
    source = "async_llm.py:906"
    log.error(source, "AsyncLLM output_handler failed.")
    frames = _frames(
        (
            f"{SITE}/v1/engine/async_llm.py",
            849,
            "output_handler",
            "outputs = await engine_core.get_output_async()",
        ),
        (
            f"{SITE}/v1/engine/core_client.py",
            1235,
            "get_output_async",
            "raise self._format_exception(outputs) from None",
        ),
    )
    log.error_block(source, [*frames, ENGINE_DEAD])

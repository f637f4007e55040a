"""The log classifier against real vLLM / Slurm lines (recordings and the documented lists)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vec_inf_flows.server.logscan import (
    READY_LINE,
    Kind,
    LogVerdict,
    classify,
    read_bounded_lines,
    scan_files,
    scan_lines,
    strip_prefix,
)

LOGS = Path(__file__).parent.parent / "fixtures" / "logs"

# Lines that must never make a server FAILED (vllm-in-slurm.md, anchor issues #308, #195).
HARMLESS = [
    "Triton is installed, but doesn't include CPU backend. Disabling Triton.",
    "/opt/venv/lib/python3.11/site-packages/vllm/triton_utils/dispatcher.py:138: FutureWarning: "
    "`torch.distributed.reduce_op` is deprecated, please use `torch.distributed.ReduceOp` instead",
    "[W1127 05:14:31.707562516 utils.cpp:68] Warning: NUMA binding: Using MEMBIND policy for "
    "memory allocation on the NUMA nodes (0).",
    "(APIServer pid=7322) WARNING 11-27 05:14:01 [system_utils.py:255] Found ulimit of 20000 and "
    "failed to automatically increase with error current limit exceeds maximum limit. This can "
    "cause fd limit errors like `OSError: [Errno 24] Too many open files`",
    "(Worker pid=7586) WARNING 11-27 05:14:31 [cpu_worker.py:114] libtcmalloc is not found in "
    "LD_PRELOAD. For best performance, please follow the section `set LD_PRELOAD`",
    "(APIServer pid=7322) WARNING 11-27 05:14:01 [cpu.py:224] Triton is not installed. "
    "triton-cpu is expected on x86 CPUs.",
    "(Worker pid=1) WARNING 11-27 05:14:31 [linear.py:88] Failed to create oneDNN linear, "
    "fallback to torch linear. Exception: could not create a primitive descriptor",
    "slurmstepd-vm-1: error: *** JOB 44 ON vm-1 CANCELLED AT 2026-11-27T05:40:01 ***",
    "nanobind: leaked 4 instances!",
    "/usr/lib/python3.11/multiprocessing/resource_tracker.py:254: UserWarning: resource_tracker: "
    "There appear to be 1 leaked semaphore objects to clean up at shutdown",
    "(APIServer pid=1) WARNING 11-27 04:36:56 [utils.py:653] [shutdown] Process manager: force "
    "killing remaining process EngineCore pid 18758",
    "jq: error: writing output failed: Stale file handle",
    "libfabric:3612:1719936001::cxi:core:cxip_ep_close():1234<warn> x1000c0s0b0n0: "
    "Unable to free EP object",
    "gpu042:12345:12399 [0] NCCL INFO NET/OFI Failed to initialize sendrecv protocol",
    "gpu042:12345:12399 [0] NCCL INFO Call to connect returned Connection refused, retrying",
    "gpu042:12345:12399 [1] NCCL INFO could not find a usable IB device, falling back to socket",
    "(APIServer pid=1) ERROR 11-27 04:36:51 [serving.py:274] Error with model error=ErrorInfo("
    "message='The model `nope` does not exist.', type='NotFoundError', param='model', code=404)",
    'INFO:     127.0.0.1:35288 - "POST /v1/completions HTTP/1.1" 400 Bad Request',
    "some tool: error: this line merely contains the word error",
    "Process EngineCore:",
    "/var/spool/slurmd/job00042/slurm_script: line 15: module: command not found",
    "srun: error: vm-1: task 0: Exited with exit code 1",
]

# (lines, expected fatal line): the most informative line wins, prefix stripped.
FATAL = [
    (
        [
            "usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...",
            "vllm: error: unrecognized arguments: --foo-bar 3",
        ],
        "vllm: error: unrecognized arguments: --foo-bar 3",
    ),
    (
        [
            "usage: vllm serve [model_tag] [options]",
            "vllm serve: error: argument --max-model-len: invalid human_readable_int_or_auto value:"
            " 'abc'",
        ],
        "vllm serve: error: argument --max-model-len: invalid human_readable_int_or_auto value:"
        " 'abc'",
    ),
    (
        [
            "libgomp: Thread creation failed: Invalid argument",
            "Exception: WorkerProc initialization failed due to an exception in a background "
            "process",
            "RuntimeError: Engine core initialization failed. See root cause above. Failed core "
            "proc(s): {'EngineCore': 1}",
        ],
        "libgomp: Thread creation failed: Invalid argument",
    ),
    (
        [
            "(EngineCore_DP0 pid=9) ERROR 05-02 10:00:01 [core.py:700] EngineCore failed to start.",
            "(EngineCore_DP0 pid=9) ERROR 05-02 10:00:01 [core.py:700] "
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 350.00 MiB. GPU 0 has "
            "a total capacity of 23.68 GiB",
            "RuntimeError: Engine core initialization failed. See root cause above.",
        ],
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 350.00 MiB. GPU 0 has a "
        "total capacity of 23.68 GiB",
    ),
    (
        [
            "ValueError: No available memory for the cache blocks. Try increasing "
            "`gpu_memory_utilization` when initializing the engine."
        ],
        "ValueError: No available memory for the cache blocks. Try increasing "
        "`gpu_memory_utilization` when initializing the engine.",
    ),
    (
        [
            "huggingface_hub.errors.HFValidationError: Repo id must be in the form 'repo_name' or "
            "'namespace/repo_name': '/tmp/x/does-not-exist'. Use `repo_type` argument if needed."
        ],
        "huggingface_hub.errors.HFValidationError: Repo id must be in the form 'repo_name' or "
        "'namespace/repo_name': '/tmp/x/does-not-exist'. Use `repo_type` argument if needed.",
    ),
    (
        [
            "Traceback (most recent call last):",
            '  File "/opt/venv/lib/python3.11/site-packages/uvicorn/server.py", line 160',
            "OSError: [Errno 98] Address already in use",
        ],
        "OSError: [Errno 98] Address already in use",
    ),
    (
        [
            "Traceback (most recent call last):",
            '  File "/opt/venv/bin/vllm", line 8, in <module>',
            "    sys.exit(main())",
            "ModuleNotFoundError: No module named 'vllm._C'",
        ],
        "ModuleNotFoundError: No module named 'vllm._C'",
    ),
    (
        [
            "/var/spool/slurmd/job00042/slurm_script: line 23: vllm: command not found",
            "srun: error: vm-1: task 0: Exited with exit code 127",
        ],
        "/var/spool/slurmd/job00042/slurm_script: line 23: vllm: command not found",
    ),
    (
        [
            "slurmstepd: error: Detected 1 oom_kill event in StepId=12.batch. Some of the step "
            "tasks have been OOM Killed."
        ],
        "slurmstepd: error: Detected 1 oom_kill event in StepId=12.batch. Some of the step tasks "
        "have been OOM Killed.",
    ),
]


@pytest.mark.parametrize("line", HARMLESS)
def test_harmless_lines_never_fail_a_server(line: str) -> None:
    verdict = scan_lines([line])
    assert verdict.fatal_line is None
    assert not verdict.ready


@pytest.mark.parametrize(("lines", "reason"), FATAL)
def test_fatal_lines_give_the_most_informative_reason(lines: list[str], reason: str) -> None:
    assert scan_lines(lines).fatal_line == reason


def test_traceback_alone_is_not_fatal() -> None:
    lines = ["Traceback (most recent call last):", '  File "x.py", line 1, in <module>']
    assert scan_lines(lines).fatal_line is None


def test_traceback_ending_in_keyboard_interrupt_is_not_a_failure() -> None:
    lines = ["Traceback (most recent call last):", '  File "x.py", line 1', "KeyboardInterrupt"]
    assert scan_lines(lines).fatal_line is None


def test_prefix_is_stripped_from_engine_lines() -> None:
    raw = "(EngineCore pid=7547) ERROR 11-27 05:16:37 [core.py:1510] EngineCore failed to start."
    assert strip_prefix(raw) == "EngineCore failed to start."
    assert scan_lines([raw]).fatal_line == "EngineCore failed to start."


def test_ready_line_is_uvicorns_exact_line() -> None:
    assert scan_lines([READY_LINE]).ready
    assert not scan_lines(["INFO: Application startup complete."]).ready
    match = classify(READY_LINE)
    assert match is not None and match.kind is Kind.READY


def test_time_limit_line_is_a_reason_not_a_failure() -> None:
    line = (
        "slurmstepd-vm-1: error: *** JOB 38 ON vm-1 CANCELLED AT 2026-11-27T05:53:13 "
        "DUE TO TIME LIMIT ***"
    )
    verdict = scan_lines([READY_LINE, line])
    assert verdict == LogVerdict(ready=True, time_limit_hit=True, shutdown_seen=True)


def test_cancel_line_marks_cancelled() -> None:
    line = "slurmstepd-vm-1: error: *** JOB 44 ON vm-1 CANCELLED AT 2026-11-27T05:40:01 ***"
    verdict = scan_lines([line])
    assert verdict.cancelled and not verdict.time_limit_hit and verdict.fatal_line is None


def test_engine_death_after_ready_counts() -> None:
    lines = [
        READY_LINE,
        'INFO:     10.0.0.5:4242 - "POST /v1/chat/completions HTTP/1.1" 200 OK',
        "(APIServer pid=5) ERROR 11-27 06:00:00 [async_llm.py:906] "
        "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue.",
    ]
    verdict = scan_lines(lines)
    assert verdict.ready
    assert verdict.fatal_line == (
        "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue."
    )


def test_fatal_lines_before_a_later_ready_line_are_history() -> None:
    # A failed first bind, then the launcher's retry on another port came up.
    lines = ["OSError: [Errno 98] Address already in use", READY_LINE]
    assert scan_lines(lines) == LogVerdict(ready=True)


def test_teardown_after_shutdown_is_noise() -> None:
    lines = [
        READY_LINE,
        "(APIServer pid=1) INFO 11-27 04:36:56 [launcher.py:254] [shutdown] API server: "
        "shutdown triggered",
        "(APIServer pid=1) ERROR 11-27 04:36:56 [async_llm.py:906] vllm.v1.engine.exceptions."
        "EngineDeadError: EngineCore encountered an issue.",
    ]
    verdict = scan_lines(lines)
    assert verdict.fatal_line is None and verdict.shutdown_seen


def test_the_job_sides_own_verdict_is_kept_apart_and_names_the_cause() -> None:
    # A multi-node supervisor's line: it beats the consequence the engine prints afterwards.
    node_died = "node node2 (rank 1): ray was killed by SIGKILL; stopping the server on every node"
    lines = [
        READY_LINE,
        "[vec-inf-nodes] ray on node2 (rank 1): ray was killed by SIGKILL",
        f"vec-inf: {node_died}",
        "RuntimeError: Executor failed.",
        "INFO:     Shutting down",
    ]
    verdict = scan_lines(lines)
    assert verdict.ready and verdict.job_failure == node_died
    assert verdict.fatal_line == node_died


def test_a_job_side_line_after_a_cancel_is_teardown_noise() -> None:
    cancel = "slurmstepd-node1: error: *** JOB 7 ON node1 CANCELLED AT 2026-11-28T18:00:00 ***"
    verdict = scan_lines([READY_LINE, cancel, "vec-inf: node node2 (rank 1): its step ended"])
    assert verdict.job_failure is None and verdict.fatal_line is None and verdict.cancelled


def test_pydantic_value_error_line_is_promoted_and_trimmed() -> None:
    lines = [
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig",
        "  Value error, User-specified max_model_len (100000) is greater than the derived "
        "max_model_len. [type=value_error, input_value=ArgsKwargs((), {}), input_type=ArgsKwargs]",
    ]
    assert scan_lines(lines).fatal_line == (
        "Value error, User-specified max_model_len (100000) is greater than the derived "
        "max_model_len."
    )


# Recorded vLLM 0.32 runs (fixtures copied from shared/reference/vllm-0.32-cpu).
def test_recorded_healthy_start_and_shutdown_is_ready_without_failure() -> None:
    verdict = scan_files(
        [LOGS / "vllm-serve-startup.stderr.log", LOGS / "vllm-serve-startup.stdout.log"]
    )
    assert verdict.ready and verdict.fatal_line is None and verdict.shutdown_seen


def test_recorded_combined_log_with_shutdown_engine_dead_error_is_not_failed() -> None:
    verdict = scan_files([LOGS / "vllm-tiny-startup-and-shutdown.log"])
    assert verdict.ready and verdict.fatal_line is None


def test_recorded_kv_cache_failure_names_the_root_cause_in_both_files() -> None:
    for files in (["vllm-fail-kvcache.stderr.log"], ["vllm-fail-kvcache.stdout.log"]):
        verdict = scan_files([LOGS / name for name in files])
        assert not verdict.ready
        assert verdict.fatal_line is not None
        assert verdict.fatal_line.startswith(
            "ValueError: To serve at least one request with the model's max seq len (200000)"
        )


def test_recorded_max_model_len_failure_gives_the_value_error_line() -> None:
    verdict = scan_files([LOGS / "vllm-fail-maxlen.stderr.log"])
    assert verdict.fatal_line is not None
    assert verdict.fatal_line.startswith("Value error, User-specified max_model_len (100000)")


def test_missing_log_files_give_an_empty_verdict(tmp_path: Path) -> None:
    assert scan_files([tmp_path / "x.err", tmp_path / "x.out"]) == LogVerdict()


def test_large_log_is_read_as_head_and_tail_only(tmp_path: Path) -> None:
    log = tmp_path / "big.err"
    filler = "x" * 99 + "\n"
    log.write_text(
        READY_LINE
        + "\n"
        + filler * 50
        + "torch.OutOfMemoryError: CUDA out of memory in the unread middle\n"
        + filler * 50
        + "(APIServer pid=5) ERROR 11-27 06:00:00 [x.py:1] EngineDeadError: dead at the end\n"
    )
    lines = read_bounded_lines(log, head_bytes=1000, tail_bytes=1000)
    assert lines[0] == READY_LINE
    assert not any("unread middle" in line for line in lines)
    assert all(not line or line.startswith(("x", "(APIServer", "INFO")) for line in lines)
    verdict = scan_lines(lines)
    assert verdict.ready
    assert verdict.fatal_line == "EngineDeadError: dead at the end"

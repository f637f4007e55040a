"""``vllm serve``'s command line, re-created so job scripts can swap the binary and keep the flags.

Unknown flags must fail exactly like vLLM (exit 2, usage block, ``vllm: error: ...``) because the
status logic and users read those lines; known flags that change nothing here are still accepted
and echoed in the ``non-default args`` log line, as vLLM does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from vec_inf_flows.sim import answers as answer_file
from vec_inf_flows.sim.config import STARTUP_FAILURES, SimConfig
from vec_inf_flows.sim.vocab import load_model_vocab

USAGE = "vllm serve [model_tag] [options]"
DEFAULT_MODEL = "Qwen/Qwen3-0.6B"
FALLBACK_MAX_MODEL_LEN = 4096
JSON_ARGS = ("compilation-config", "hf-overrides", "speculative-config", "kv-transfer-config")
SHORT_JSON_ARGS = {"-cc": "compilation-config"}
TASK_HINT = (
    "Hint: --task is not a vllm serve option. For embedding, reranking, or reward models, use "
    "--runner pooling. To adapt a generative model for pooling, also use --convert embed, "
    "--convert classify, or --convert reward."
)
_SCALE = {"k": 1000, "m": 1000**2, "g": 1000**3, "K": 1024, "M": 1024**2, "G": 1024**3}
_POOLING_ARCH = re.compile(r"(BertModel|RobertaModel|XLMRobertaModel|ForSequenceClassification)$")


def human_readable_int_or_auto(value: str) -> int | None:
    """vLLM's parser for lengths: ``2048``, ``32k`` (x1000), ``32K`` (x1024), ``auto``/``-1``."""
    text = value.strip()
    if text.lower() == "auto" or text == "-1":
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kmgKMG]?)", text)
    if not match:
        raise ValueError(value)
    number, suffix = match.groups()
    scaled = float(number) * _SCALE.get(suffix, 1)
    if not suffix and "." in number:
        raise ValueError(value)
    return int(scaled)


def json_dict(value: str) -> dict[str, Any]:
    """``--compilation-config '{"mode": 0}'``; vLLM also takes a bare level number."""
    if value.strip().isdigit():
        return {"mode": int(value)}
    parsed = json.loads(value)
    if not isinstance(parsed, dict):
        raise ValueError(value)
    return parsed


def probability(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(value)
    return number


def _env(name: str, fallback: str | None) -> str | None:
    return os.environ.get(f"VEC_INF_SIM_{name}", fallback)


def build_parser() -> argparse.ArgumentParser:
    """Flags in vLLM's order (frontend, then engine), so ``non-default args`` reads the same."""
    p = argparse.ArgumentParser(prog="vllm serve", usage=USAGE, allow_abbrev=False)
    p.add_argument("model_tag", nargs="?", default=None)
    # frontend
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--uds", default=None)
    p.add_argument("--uvicorn-log-level", default="info")
    p.add_argument("--disable-uvicorn-access-log", action="store_true")
    p.add_argument("--allow-credentials", action="store_true")
    p.add_argument("--allowed-origins", default=None)
    p.add_argument("--api-key", nargs="+", default=None)
    p.add_argument("--lora-modules", nargs="+", default=None)
    p.add_argument("--chat-template", default=None)
    p.add_argument("--chat-template-content-format", default="auto")
    p.add_argument("--response-role", default="assistant")
    p.add_argument("--ssl-keyfile", default=None)
    p.add_argument("--ssl-certfile", default=None)
    p.add_argument("--root-path", default=None)
    p.add_argument("--middleware", action="append", default=None)
    p.add_argument("--return-tokens-as-token-ids", action="store_true")
    p.add_argument("--disable-frontend-multiprocessing", action="store_true")
    p.add_argument("--enable-request-id-headers", action="store_true")
    p.add_argument("--enable-auto-tool-choice", action="store_true")
    p.add_argument("--tool-call-parser", default=None)
    p.add_argument("--reasoning-parser", default=None)
    p.add_argument("--enable-prompt-tokens-details", action="store_true")
    p.add_argument("--enable-server-load-tracking", action="store_true")
    p.add_argument("--enable-force-include-usage", action="store_true")
    p.add_argument("--enable-log-requests", action="store_true")
    p.add_argument("--disable-log-requests", action="store_true")
    p.add_argument("--headless", action="store_true")
    # engine
    p.add_argument("--model", default=None)
    p.add_argument("--runner", choices=["auto", "draft", "generate", "pooling"], default="auto")
    p.add_argument("--convert", choices=["auto", "classify", "embed", "none", "reward"])
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--tokenizer-mode", default="auto")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument(
        "--dtype",
        choices=["auto", "bfloat16", "float", "float16", "float32", "half"],
        default="auto",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hf-overrides", type=json_dict, default=None)
    p.add_argument("--max-model-len", type=human_readable_int_or_auto, default=None)
    p.add_argument("--quantization", "-q", default=None)
    p.add_argument("--enforce-eager", action="store_true")
    p.add_argument("--max-logprobs", type=int, default=20)
    p.add_argument("--revision", default=None)
    p.add_argument("--download-dir", default=None)
    p.add_argument("--load-format", default="auto")
    p.add_argument("--config-format", default="auto")
    p.add_argument("--generation-config", default="auto")
    p.add_argument("--override-generation-config", type=json_dict, default=None)
    p.add_argument(
        "--distributed-executor-backend", choices=["mp", "ray", "uni", "external_launcher"]
    )
    p.add_argument("--pipeline-parallel-size", "-pp", type=int, default=1)
    p.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    p.add_argument("--data-parallel-size", "-dp", type=int, default=1)
    p.add_argument("--enable-expert-parallel", action="store_true")
    p.add_argument("--disable-custom-all-reduce", action="store_true")
    p.add_argument("--block-size", type=int, default=None)
    p.add_argument(
        "--gpu-memory-utilization", "--device-memory-utilization", type=float, default=0.92
    )
    p.add_argument("--kv-cache-memory-bytes", type=human_readable_int_or_auto, default=None)
    p.add_argument("--swap-space", type=float, default=4)
    p.add_argument("--kv-cache-dtype", default="auto")
    p.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--cpu-offload-gb", type=float, default=0)
    p.add_argument("--limit-mm-per-prompt", type=json_dict, default=None)
    p.add_argument("--enable-lora", action="store_true")
    p.add_argument("--max-lora-rank", type=int, default=16)
    p.add_argument("--max-loras", type=int, default=1)
    p.add_argument("--max-num-batched-tokens", type=human_readable_int_or_auto, default=None)
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--enable-chunked-prefill", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--scheduling-policy", choices=["fcfs", "priority"], default="fcfs")
    p.add_argument("--served-model-name", nargs="+", default=None)
    p.add_argument("--disable-log-stats", action="store_true")
    p.add_argument("--enable-sleep-mode", action="store_true")
    p.add_argument("--speculative-config", type=json_dict, default=None)
    p.add_argument("--kv-transfer-config", type=json_dict, default=None)
    p.add_argument("--compilation-config", "-cc", type=json_dict, default=None)
    p.add_argument("--optimization-level", "-O", type=int, choices=[0, 1, 2, 3], default=2)
    _add_sim_flags(p)
    return p


def _add_sim_flags(p: argparse.ArgumentParser) -> None:
    """The simulator's own knobs; each also reads ``VEC_INF_SIM_<NAME>`` as its default."""
    sim = p.add_argument_group("simulator")
    sim.add_argument("--sim-startup-delay", type=float, default=_env("STARTUP_DELAY", "1.0"))
    sim.add_argument(
        "--sim-fail-at-startup", choices=STARTUP_FAILURES, default=_env("FAIL_AT_STARTUP", None)
    )
    sim.add_argument("--sim-error-rate", type=probability, default=_env("ERROR_RATE", "0"))
    sim.add_argument("--sim-drop-rate", type=probability, default=_env("DROP_RATE", "0"))
    sim.add_argument("--sim-crash-after", type=int, default=_env("CRASH_AFTER", None))
    sim.add_argument("--sim-seed", type=int, default=_env("SEED", "0"))
    sim.add_argument(
        "--sim-tokens-per-second", type=float, default=_env("TOKENS_PER_SECOND", "100")
    )
    sim.add_argument("--sim-ttft", type=float, default=_env("TTFT", "0.02"))
    sim.add_argument("--sim-embedding-dim", type=int, default=_env("EMBEDDING_DIM", "384"))
    sim.add_argument("--sim-kv-cache-tokens", type=int, default=_env("KV_CACHE_TOKENS", None))
    sim.add_argument("--sim-dead-linger", type=float, default=_env("DEAD_LINGER", "1.0"))
    sim.add_argument("--sim-device", choices=["cpu", "cuda"], default=_env("DEVICE", "cpu"))
    sim.add_argument("--sim-answers", default=_env("ANSWERS", None))
    sim.add_argument("--sim-tokenizer", default=_env("TOKENIZER", None))


def normalize_argv(argv: Sequence[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Dashes for underscores in flag names, and ``--json-arg.key value`` pulled out as dicts."""
    out: list[str] = []
    dotted: dict[str, dict[str, Any]] = {}
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("-") or token == "-" or token.lstrip("-").isdigit():
            out.append(token)
            continue
        name, eq, value = token.partition("=")
        if name.startswith("--"):
            name = "--" + name[2:].replace("_", "-")
        base, dot, path = name.partition(".")
        json_name = SHORT_JSON_ARGS.get(base) or (base[2:] if base[2:] in JSON_ARGS else None)
        if dot and json_name:
            if not eq and i < len(tokens):
                value, i = tokens[i], i + 1
            _set_dotted(dotted.setdefault(json_name, {}), path, _json_scalar(value))
            continue
        out.append(name + eq + value if eq else name)
    return out, dotted


def _json_scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _set_dotted(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.replace("-", "_").split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[leaf] = value


def _fail(parser: argparse.ArgumentParser, message: str, prog: str = "vllm") -> NoReturn:
    parser.print_usage(sys.stderr)
    sys.stderr.write(f"{prog}: error: {message}\n")
    raise SystemExit(2)


def parse_config(argv: Sequence[str]) -> SimConfig:
    """Parse ``vllm serve`` arguments (after the ``serve`` word) into a :class:`SimConfig`."""
    parser = build_parser()
    normalized, dotted = normalize_argv(argv)
    if "--task" in normalized or any(a.startswith("--task=") for a in normalized):
        _, extras = parser.parse_known_args(normalized)
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"vllm: error: unrecognized arguments: {' '.join(extras)}\n{TASK_HINT}\n")
        raise SystemExit(2)
    args, extras = parser.parse_known_args(normalized)
    if extras:
        _fail(parser, f"unrecognized arguments: {' '.join(extras)}")
    for name, values in dotted.items():
        attr = name.replace("-", "_")
        setattr(args, attr, {**(getattr(args, attr) or {}), **values})
    return _to_config(args, parser)


def _model_facts(model: str) -> tuple[str, int | None]:
    """Architecture and length limit from the model's config.json, as vLLM derives them."""
    try:
        raw = json.loads((Path(model) / "config.json").read_text())
    except (OSError, ValueError):
        return "LlamaForCausalLM", None
    architectures = raw.get("architectures") or ["LlamaForCausalLM"]
    limit = next(
        (raw[k] for k in ("max_position_embeddings", "n_positions", "max_seq_len") if k in raw),
        None,
    )
    return str(architectures[0]), int(limit) if isinstance(limit, int | float) else None


def _non_default(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in vars(args).items():
        if key.startswith("sim_") or value == parser.get_default(key):
            continue
        result[key] = "***" if key == "api_key" else value
    return result


def _to_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> SimConfig:
    model = args.model or args.model_tag or DEFAULT_MODEL
    if args.model_tag and not args.model:
        args.model = args.model_tag
    architecture, derived = _model_facts(model)
    runner = args.runner
    if runner in ("auto", "draft"):
        pooling = args.convert in ("embed", "classify", "reward") or _POOLING_ARCH.search(
            architecture
        )
        runner = "pooling" if pooling else "generate"
    max_model_len = args.max_model_len or derived or FALLBACK_MAX_MODEL_LEN
    api_keys = tuple(
        args.api_key or ([os.environ["VLLM_API_KEY"]] if "VLLM_API_KEY" in os.environ else [])
    )
    kv_tokens = args.sim_kv_cache_tokens or max(46592, max_model_len)
    answers = _answers(parser, args.sim_answers)
    if args.sim_tokenizer:
        _check_tokenizer(parser, args.sim_tokenizer)
    return SimConfig(
        model=model,
        served_model_names=tuple(args.served_model_name or [model]),
        host=args.host,
        port=args.port,
        max_model_len=max_model_len,
        max_model_len_requested=args.max_model_len,
        derived_max_model_len=derived,
        architecture=architecture,
        max_num_seqs=args.max_num_seqs,
        api_keys=api_keys,
        runner=runner,
        tensor_parallel_size=args.tensor_parallel_size,
        pipeline_parallel_size=args.pipeline_parallel_size,
        dtype="bfloat16" if args.dtype == "auto" else args.dtype,
        enable_prefix_caching=args.enable_prefix_caching is not False,
        gpu_memory_utilization=args.gpu_memory_utilization,
        enforce_eager=args.enforce_eager,
        disable_log_stats=args.disable_log_stats,
        disable_access_log=args.disable_uvicorn_access_log,
        enable_server_load_tracking=args.enable_server_load_tracking,
        compilation_config=dict(args.compilation_config or {}),
        seed=args.sim_seed,
        max_logprobs=args.max_logprobs,
        non_default_args=_non_default(args, parser),
        startup_delay=max(0.0, args.sim_startup_delay),
        fail_at_startup=args.sim_fail_at_startup,
        error_rate=args.sim_error_rate,
        drop_rate=args.sim_drop_rate,
        crash_after=args.sim_crash_after,
        tokens_per_second=max(0.001, args.sim_tokens_per_second),
        ttft=max(0.0, args.sim_ttft),
        embedding_dim=max(1, args.sim_embedding_dim),
        kv_cache_tokens=kv_tokens,
        dead_linger=max(0.0, args.sim_dead_linger),
        device=args.sim_device,
        log_stats_interval=float(os.environ.get("VLLM_LOG_STATS_INTERVAL", "10")),
        answers=answers,
        tokenizer=args.sim_tokenizer or None,
    )


def _answers(parser: argparse.ArgumentParser, path: str | None) -> tuple[tuple[str, str], ...]:
    if not path:
        return ()
    try:
        return answer_file.load(path)
    except ValueError as exc:
        _fail(parser, f"argument --sim-answers: {exc}", prog="vllm serve")


def _check_tokenizer(parser: argparse.ArgumentParser, path: str) -> None:
    """Fail at parse time (exit 2, one line) rather than after the start-up log."""
    try:
        load_model_vocab(path)
    except ValueError as exc:
        _fail(parser, f"argument --sim-tokenizer: {exc}", prog="vllm serve")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vec_inf_flows.sim serve ...``; returns the process exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] != "serve":
        sys.stderr.write("usage: python -m vec_inf_flows.sim serve [model_tag] [options]\n")
        return 2
    config = parse_config(words[1:])
    from vec_inf_flows.sim.serve import run  # late: keeps `--help` and argument errors fast

    return run(config)

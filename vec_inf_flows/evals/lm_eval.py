"""Run lm-evaluation-harness against a READY server: one ``lm_eval`` process, argv only.

All requested tasks run in one process first, since each lm-eval process spends ~5 s importing
and building tasks (measured here: two tasks alone took 9.1 s + 11.3 s, together 13.5 s). lm-eval
stops at the first task that breaks and writes no results, so when that run fails, each task
without results is rerun alone: a broken task costs its own line, never the others' scores.
Responses go to lm-eval's request cache (``--use_cache``, fresh per run), so a rerun does not ask
the server again what the failed run already asked.

Offline by design: ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` are set and the tokenizer is the
model's weights dir. A server key travels as ``OPENAI_API_KEY`` in the child's environment only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from vec_inf_flows.evals.models import EvalServer, LmEvalReport, LmEvalSpec, TaskResult
from vec_inf_flows.evals.results import error_line, parse_results, results_file
from vec_inf_flows.evals.task_files import prepare_task_dir

INSTALL_HINT = "lm-eval is not installed: pip install 'vec-inf-flows[lm-eval]'"
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TRANSFORMERS_VERBOSITY": "error",  # no "PyTorch was not found" banner: torch is not needed
    "TOKENIZERS_PARALLELISM": "false",
}
MODEL_TYPES = {"completions": "local-completions", "chat-completions": "local-chat-completions"}


@dataclass(frozen=True)
class Invocation:
    """One lm-eval process: what it was asked, how it ended, what it wrote."""

    tasks: tuple[str, ...]
    returncode: int
    error: str | None
    results: dict[str, TaskResult]


def lm_eval_argv(
    server: EvalServer,
    spec: LmEvalSpec,
    tasks: list[str],
    include: Path,
    out: Path,
    cache: Path | None = None,
) -> list[str]:
    """The command line (never a shell). model_args go as one JSON object, so a path with a comma
    or an ``=`` survives; ``--batch_size`` is a flag (inside model_args lm-eval raises)."""
    endpoint = "chat/completions" if spec.endpoint == "chat-completions" else "completions"
    model_args: dict[str, object] = {
        "model": server.model,
        "base_url": f"{server.base_url.rstrip('/')}/{endpoint}",
        "num_concurrent": server.num_concurrent,
        "max_retries": 3,
    }
    if server.tokenizer is not None:
        model_args |= {"tokenizer": str(server.tokenizer), "tokenizer_backend": "huggingface"}
    if server.max_length is not None:
        model_args["max_length"] = server.max_length
    argv = [
        sys.executable,
        "-m",
        "lm_eval",
        "run",
        "--model",
        MODEL_TYPES[spec.endpoint],
        "--model_args",
        json.dumps(model_args),
        "--tasks",
        ",".join(tasks),
        "--batch_size",
        str(spec.batch_size),
        "--include_path",
        str(include),
        "--output_path",
        str(out),
    ]
    if spec.apply_chat_template or spec.endpoint == "chat-completions":
        argv.append("--apply_chat_template")
    if spec.num_fewshot is not None:
        argv += ["--num_fewshot", str(spec.num_fewshot)]
    if spec.limit is not None:
        argv += ["--limit", str(spec.limit)]
    if spec.log_samples:
        argv.append("--log_samples")
    if cache is not None:
        argv += ["--use_cache", str(cache)]
    return argv


def lm_eval_env(server: EvalServer) -> dict[str, str]:
    """The child's environment: offline, and the server's key (or none: a key the user keeps for
    OpenAI must not travel to our server)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(OFFLINE_ENV)
    if server.api_key is not None:
        env["OPENAI_API_KEY"] = server.api_key.get_secret_value()
    return env


def _precheck(server: EvalServer, spec: LmEvalSpec) -> str | None:
    """Problems that would fail every task, found in well under a second."""
    if importlib.util.find_spec("lm_eval") is None:
        return INSTALL_HINT
    if spec.endpoint == "completions" and server.tokenizer is None:
        return "a tokenizer (the model's weights dir) is required to score through completions"
    if server.tokenizer is not None and not server.tokenizer.is_dir():
        return f"tokenizer folder not found: {server.tokenizer}"
    headers = {}
    if server.api_key is not None:
        headers["Authorization"] = f"Bearer {server.api_key.get_secret_value()}"
    url = f"{server.base_url.rstrip('/')}/models"
    try:
        reply = httpx.get(url, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        return f"server {server.base_url} unreachable: {type(exc).__name__}: {exc}"
    if reply.status_code != 200:
        return f"server {server.base_url} answered {reply.status_code} to GET /models"
    served = [str(m.get("id")) for m in reply.json().get("data", [])]
    if server.model not in served:
        serves = ", ".join(served)
        return f"model '{server.model}' is not served at {server.base_url} (it serves: {serves})"
    return None


def _safe_name(task: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", task)


def _invoke(
    server: EvalServer, spec: LmEvalSpec, tasks: list[str], include: Path, out: Path, cache: Path
) -> Invocation:
    shutil.rmtree(out, ignore_errors=True)  # an earlier run's results must not pass for these
    out.mkdir(parents=True)
    argv = lm_eval_argv(server, spec, tasks, include, out, cache)
    log = out / "lm-eval.log"
    with log.open("w") as sink:
        try:
            done = subprocess.run(
                argv,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=lm_eval_env(server),
                timeout=spec.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Invocation(tuple(tasks), -1, f"lm-eval timed out after {spec.timeout_s:g} s", {})
    found = results_file(out)
    results = parse_results(found) if found is not None else {}
    error = (
        None
        if done.returncode == 0
        else error_line(log.read_text(errors="replace"), done.returncode)
    )
    return Invocation(tuple(tasks), done.returncode, error, results)


def run_lm_eval(server: EvalServer, spec: LmEvalSpec, output_dir: Path) -> LmEvalReport:
    """Run ``spec.tasks`` against ``server``; files go under ``output_dir``.

    Never raises for a task's failure: each task comes back with scores or one error line.
    Raises ``ConfigError`` only for a task folder that does not exist.
    """
    started = time.monotonic()
    output_dir.mkdir(parents=True, exist_ok=True)
    include = prepare_task_dir(output_dir / "tasks", spec.include_path)
    cache_dir = output_dir / "response-cache"
    shutil.rmtree(cache_dir, ignore_errors=True)  # answers of an earlier run must not be reused
    cache_dir.mkdir()
    cache = cache_dir / "responses"
    problem = _precheck(server, spec)
    outcomes: dict[str, TaskResult] = {}
    invocations: list[Invocation] = []
    if problem is None:
        first = _invoke(server, spec, spec.tasks, include, output_dir / "lm-eval", cache)
        invocations.append(first)
        outcomes.update(first.results)
        missing = [t for t in spec.tasks if t not in outcomes]
        if missing and len(spec.tasks) == 1:
            problem = first.error
        elif missing:
            for task in missing:
                folder = output_dir / f"lm-eval-{_safe_name(task)}"
                alone = _invoke(server, spec, [task], include, folder, cache)
                invocations.append(alone)
                outcomes.update(alone.results)
                if task not in outcomes:
                    outcomes[task] = TaskResult(
                        task=task, ok=False, error=alone.error or "no results"
                    )
    tasks = [
        outcomes.get(t)
        or TaskResult(task=t, ok=False, error=problem or "lm-eval returned no result")
        for t in spec.tasks
    ]
    extra = [r for name, r in outcomes.items() if name not in spec.tasks]  # a group's subtasks
    return LmEvalReport(
        model=server.model,
        base_url=server.base_url,
        tasks=tasks + extra,
        output_dir=output_dir,
        elapsed_s=round(time.monotonic() - started, 3),
        invocations=len(invocations),
    )

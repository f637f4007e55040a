"""``vec-inf-flows demo``: the whole pipeline on this machine, with the real CPU engine.

Sets up the CPU build of vLLM and SmolLM2 (once; a second run reuses them), then runs the
``serve_and_run`` flow: launch on Slurm (or as a local process when there is no Slurm), wait
until READY, send a small bundled prompt set, show the answers and the server's metrics, and
shut the server down. The prompts use the sampling SmolLM2's model card recommends (temperature
0.2, top-p 0.9); the answers go to ``~/.vec-inf-flows/demo/answers.jsonl``, outside any checkout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table


DEMO_MODEL = "SmolLM2-135M-Instruct"
PROMPTS = Path(__file__).resolve().parents[1] / "data" / "demo_prompts.jsonl"


def add_demo_command(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="Set up the CPU engine and run serve-and-run on SmolLM2 with a few prompts.",
        description=__doc__,
    )
    demo.add_argument("--engine", choices=["vllm", "sim"], default="vllm")
    demo.add_argument("--backend", choices=["auto", "slurm", "local"])
    demo.add_argument(
        "--output", help="Answers file (default: ~/.vec-inf-flows/demo/answers.jsonl)."
    )
    demo.add_argument("--ready-timeout", type=float, default=900.0)
    demo.add_argument("--json-mode", action="store_true")


def run_demo(args: argparse.Namespace, console: Any) -> int:
    from vec_inf_flows.backends.select import backend_name

    backend = backend_name(args.backend)
    if args.engine == "vllm":
        from vec_inf_flows.engines.cpu import CpuEngine

        engine = CpuEngine.default()
        with console.status("Setting up the CPU engine (first run: about 4 minutes)") as spinner:
            engine.setup(lambda message: spinner.update(f"CPU engine: {message}"))
        console.print(f"CPU engine ready: {engine.venv}")
    where = "Slurm cluster" if backend == "slurm" else "local processes"
    console.print(f"Backend: {backend} ({where})")
    output = Path(args.output).expanduser().resolve() if args.output else default_output()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)  # a fresh answer set each run
    params: dict[str, Any] = {
        "model_name": DEMO_MODEL,
        "dataset": str(PROMPTS),
        "output": str(output),
        "ready_timeout": args.ready_timeout,
        "engine": args.engine,
        "launch_options": {"time": "00:30:00"},
    }
    from vec_inf_flows.cli.prefect_server import api_for_run
    from vec_inf_flows.cli.run import cluster_for_backend, load_flow

    params["cluster"] = cluster_for_backend(backend, None)  # the tasks' client comes from it
    from vec_inf_flows.cli.run_report import report, run_with_progress

    flow_fn = load_flow("serve-and-run")
    with api_for_run(console):  # without a configured server: one that dies with this process
        state, run_id = run_with_progress(flow_fn, params, console)
        code = report(console, "serve-and-run", state, run_id, args.json_mode)
    if output.exists() and not args.json_mode:
        console.print(answers_table(output))
    return code


def default_output() -> Path:
    from vec_inf_flows.jobdir import state_home

    return state_home() / "demo" / "answers.jsonl"


def answers_table(path: Path) -> Table:
    from rich.table import Table

    prompts = {
        json.loads(line)["id"]: json.loads(line)["messages"][-1]["content"]
        for line in PROMPTS.read_text().splitlines()
        if line.strip()
    }
    table = Table(show_header=True, header_style="bold", show_lines=True)
    table.add_column("Prompt", max_width=32)
    table.add_column("Answer")
    table.add_column("Tokens", justify="right")
    for line in path.read_text().splitlines():
        record = json.loads(line)
        answer, tokens = _answer(record)
        table.add_row(prompts.get(record.get("id"), str(record.get("id"))), answer, tokens)
    return table


def _answer(record: dict[str, Any]) -> tuple[str, str]:
    if record.get("error"):
        return f"[red]error: {record['error'].get('message')}[/]", ""
    response = record.get("response") or {}
    choices = response.get("choices") or [{}]
    message = choices[0].get("message") or {}
    text = message.get("content") or choices[0].get("text") or ""
    usage = response.get("usage") or {}
    return " ".join(str(text).split()), str(usage.get("completion_tokens", ""))

"""``python -m vec_inf_flows.workload``: run a workload file against running servers.

A small, dependency-free entry point so a run can be a process of its own (a Slurm step, a
crash-and-resume test); the project's main CLI and the Prefect flows call the same functions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vec_inf_flows.errors import ConfigError, VecInfError
from vec_inf_flows.scoring import RecordScorer
from vec_inf_flows.workload.batch_format import write_batch_output
from vec_inf_flows.workload.checks import check_output_file
from vec_inf_flows.workload.concurrency import concurrency_for, max_num_seqs_from_job_json
from vec_inf_flows.workload.reader import iter_chunks
from vec_inf_flows.workload.retry import RetryPolicy
from vec_inf_flows.workload.runner import RunOptions, run_chunk
from vec_inf_flows.workload.store import forget_failed

API_KEY_VARIABLE = "VEC_INF_API_KEY"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vec_inf_flows.workload")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="send every request of a file; results to JSONL")
    run.add_argument("--base-url", action="append", required=True, help="repeat per replica")
    run.add_argument("--input", required=True, help="JSONL or CSV of requests")
    run.add_argument("--output", required=True, help="JSONL of results (resumed if present)")
    run.add_argument("--format", choices=["jsonl", "csv"], help="default: from the file name")
    run.add_argument("--model", help="default: the first model the server lists")
    run.add_argument("--concurrency", type=int, help="requests in flight across all replicas")
    run.add_argument("--max-num-seqs", type=int, help="each server's --max-num-seqs")
    run.add_argument("--job-json", help="a server's job JSON to read --max-num-seqs from")
    run.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="default parameter"
    )
    run.add_argument("--stream", action="store_true", help="stream, to measure time to 1st token")
    run.add_argument("--max-attempts", type=int, default=RetryPolicy.max_attempts)
    run.add_argument("--base-delay", type=float, default=RetryPolicy.base_delay_s)
    run.add_argument("--timeout", type=float, default=600.0, help="seconds per attempt")
    run.add_argument("--fsync-every", type=int, default=256)
    run.add_argument(
        "--retry-failed",
        action="store_true",
        help="send again the requests the output records as failed (the others are kept)",
    )
    run.add_argument(
        "--scorer",
        help="for records with an 'expected'/'reference': exact_match, contains, regex, "
        "numeric[:TOL], embedding_cosine or package.module:function (default: auto)",
    )
    run.add_argument(
        "--batch-output", metavar="FILE", help="also write the results in the OpenAI Batch format"
    )

    chunks = commands.add_parser("chunks", help="print the chunks of a file as JSON lines")
    chunks.add_argument("--input", required=True)
    chunks.add_argument("--size", type=int, required=True)
    chunks.add_argument("--format", choices=["jsonl", "csv"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "chunks":
            for chunk in iter_chunks(args.input, args.size, args.format):
                print(json.dumps(chunk.__dict__))
            return 0
        options = _options(args)
        if args.batch_output:
            _check_batch_output(args.output, args.batch_output)
        if args.retry_failed:
            forgotten = forget_failed(args.output)
            print(f"retrying {forgotten} failed requests", file=sys.stderr)
        summary = run_chunk(args.input, args.output, args.base_url, options=options)
        if args.batch_output:
            write_batch_output(args.output, args.batch_output)
    except VecInfError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted (rerun to resume: finished ids are skipped)", file=sys.stderr)
        return 130
    except Exception as error:  # a bug or an I/O fault: still one line, never a traceback
        text = " ".join(str(error).split()) or "no details"
        print(f"error: {type(error).__name__}: {text}", file=sys.stderr)
        return 1
    print(summary.model_dump_json(indent=2))
    return 0


def _options(args: argparse.Namespace) -> RunOptions:
    defaults = dict(_parameter(text) for text in args.param)
    if args.stream:
        defaults["stream"] = True
    seqs = args.max_num_seqs
    if seqs is None and args.job_json:
        seqs = max_num_seqs_from_job_json(args.job_json)
    concurrency = args.concurrency
    if concurrency is None and seqs is not None:
        concurrency = concurrency_for([seqs] * len(args.base_url))
    if concurrency is not None and concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {concurrency}.")
    if args.max_attempts < 1:
        raise ConfigError(f"--max-attempts must be at least 1, got {args.max_attempts}.")
    retry = RetryPolicy(max_attempts=args.max_attempts, base_delay_s=args.base_delay)
    return RunOptions(
        model=args.model,
        defaults=defaults,
        concurrency=concurrency,
        retry=retry,
        request_timeout_s=args.timeout,
        api_key=os.environ.get(API_KEY_VARIABLE) or None,
        input_format=args.format,
        fsync_every=args.fsync_every,
        scorer=RecordScorer.of(args.scorer),
    )


def _check_batch_output(output: str, batch_output: str) -> None:
    if Path(batch_output).expanduser().resolve() == Path(output).expanduser().resolve():
        raise ConfigError("--batch-output must be another file than --output.")
    check_output_file(batch_output, make_directory=True)


def _parameter(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--param expects KEY=VALUE, got {text!r}.")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value

"""Prefect overhead of serve_and_run beyond Slurm and server time, and its task-run count.

The client is the file-backed double from tests/prefect (Slurm and readiness cost nothing), so
the wall time of a flow with an empty workload is Prefect's own cost. Cold: the first flow in a
fresh process; warm: the next ones. Then a dataset of N requests (default 10 000) is run
against a loopback completions server to count the task runs it takes.

    .venv/bin/python bench/prefect_overhead.py [--requests 10000] [--chunk-size 500]

Uses PREFECT_API_URL when set, else a throwaway local API server.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--warm-runs", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness
    from prefect_fakes import FileBackedClient, completions_server

    from vec_inf_flows.flows import serve_and_run
    from vec_inf_flows.tasks import client_factory

    import_s = time.perf_counter() - started
    with ExitStack() as stack:
        if not os.environ.get("PREFECT_API_URL"):
            stack.enter_context(prefect_test_harness(server_startup_timeout=90))
        stack.enter_context(temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        base_url = stack.enter_context(completions_server())
        client = FileBackedClient(work / "cluster", base_url=base_url)
        stack.enter_context(client_factory(lambda cluster: client))

        def timed(**params: object) -> tuple[float, dict[str, object]]:
            t0 = time.perf_counter()
            state = serve_and_run("SmolLM2-135M-Instruct", return_state=True, **params)
            return time.perf_counter() - t0, {"state": state}

        cold, _ = timed(workload="prefect_fakes:echo_workload")
        warm = [timed(workload="prefect_fakes:echo_workload")[0] for _ in range(args.warm_runs)]

        dataset = work / "prompts.jsonl"
        dataset.write_text(
            "".join(json.dumps({"id": i, "prompt": f"q{i}"}) + "\n" for i in range(args.requests))
        )
        big_s, big = timed(dataset=str(dataset), chunk_size=args.chunk_size, output_dir=str(work))
        state = big["state"]
        summary = state.result()  # type: ignore[attr-defined]
        with get_client(sync_client=True) as api:
            runs = api.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[state.state_details.flow_run_id])  # type: ignore[attr-defined]
                )
            )
    report = {
        "import_s": round(import_s, 2),
        "cold_flow_s": round(cold, 2),
        "warm_flow_s": round(min(warm), 2),
        "warm_target_s": 5.0,
        "requests": args.requests,
        "requests_ok": summary["workload"]["ok"],
        "workload_elapsed_s": round(summary["workload"]["elapsed_s"], 2),
        "dataset_flow_s": round(big_s, 2),
        # Flow time not spent sending requests: Prefect plus the runner's per-chunk set-up.
        "dataset_non_request_s": round(big_s - summary["workload"]["elapsed_s"], 2),
        "task_runs": len(runs),
        "task_runs_target": 50,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

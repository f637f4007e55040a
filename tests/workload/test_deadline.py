"""A chunk's own deadline: it stops the chunk from a worker thread (where a Prefect task timeout
cannot), keeps what finished, and a rerun sends only the rest."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from vec_inf_flows.sim.process import SimServer
from vec_inf_flows.workload.runner import RunOptions, run_chunk

from .conftest import read_records, sim_args, write_requests


def test_a_chunk_past_its_deadline_stops_in_a_worker_thread_and_resumes(tmp_path: Path) -> None:
    source = write_requests(tmp_path / "in.jsonl", 40, max_tokens=20)
    output = tmp_path / "out.jsonl"
    outcome: dict[str, BaseException | float] = {}

    def in_a_thread() -> None:
        started = time.monotonic()
        try:
            run_chunk(source, output, [server.base_url], options=RunOptions(deadline_s=1.0))
        except BaseException as error:
            outcome["error"] = error
        outcome["elapsed"] = time.monotonic() - started

    # 40 requests x 20 tokens at 2 x 100 tokens/s: about 4 s of work.
    with SimServer(sim_args(seqs=2, tokens_per_second=100)) as server:
        worker = threading.Thread(target=in_a_thread)
        worker.start()
        worker.join(30)
        assert isinstance(outcome.get("error"), TimeoutError), outcome
        assert float(outcome["elapsed"]) < 3.0
        first = read_records(output)  # every line whole: the store closed cleanly
        assert 0 < len(first) < 40

        summary = run_chunk(source, output, [server.base_url])

    assert summary.skipped == len(first)
    ids = [record["id"] for record in read_records(output)]
    assert sorted(ids) == sorted(f"r{n}" for n in range(40))  # all, none twice

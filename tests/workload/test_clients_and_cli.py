"""Client sharding and the CLI's option handling (no network)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from vec_inf_flows.errors import ConfigError
from vec_inf_flows.workload.cli import _options, build_parser
from vec_inf_flows.workload.clients import ClientShards


def test_leases_spread_over_small_pools() -> None:
    async def go() -> tuple[int, list[int], list[int]]:
        shards = ClientShards(20, httpx.Timeout(5.0), {}, per_client=8)
        with shards.lease() as a, shards.lease() as b, shards.lease() as c:
            picked = [shards.clients.index(client) for client in (a, b, c)]
        sizes = [client._transport._pool._max_connections for client in shards.clients]  # type: ignore[attr-defined]
        await shards.aclose()
        return len(shards.clients), picked, sizes

    count, picked, sizes = asyncio.run(go())
    assert count == 3 and sorted(picked) == [0, 1, 2] and sizes == [7, 7, 7]


def test_cli_options_from_flags_and_job_json(tmp_path: Path) -> None:
    parse = build_parser().parse_args
    common = ["run", "--input", "in.jsonl", "--output", "out.jsonl", "--base-url", "http://a/v1"]
    options = _options(
        parse(
            [
                *common,
                "--base-url",
                "http://b/v1",
                "--max-num-seqs",
                "8",
                "--stream",
                "--param",
                "max_tokens=32",
                "--param",
                "stop=END",
                "--param",
                "temperature=0.5",
            ]
        )
    )
    assert options.concurrency == 20  # 2 replicas x 8 seqs x 1.25 headroom
    assert options.defaults == {"max_tokens": 32, "stop": "END", "temperature": 0.5, "stream": True}

    job = tmp_path / "job.json"
    job.write_text(json.dumps({"engine_args": {"--max-num-seqs": 4}}))
    assert _options(parse([*common, "--job-json", str(job)])).concurrency == 5
    assert _options(parse([*common, "--concurrency", "3", "--job-json", str(job)])).concurrency == 3

    with pytest.raises(ConfigError, match="KEY=VALUE"):
        _options(parse([*common, "--param", "oops"]))
    with pytest.raises(ConfigError, match="--max-attempts"):
        _options(parse([*common, "--max-attempts", "0"]))

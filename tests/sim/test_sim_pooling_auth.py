"""The pooling runner serves embeddings only; --api-key guards /v1 and nothing else."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import pytest
from sim_helpers import recorded_json, shape_diff

from vec_inf_flows.sim.process import SimServer

KEY = "sim-secret"


@pytest.fixture(scope="module")
def pooling_server() -> Iterator[SimServer]:
    args = ["/opt/models/all-minilm-l6-v2", "--runner", "pooling"]
    args += ["--served-model-name", "all-minilm-l6-v2", "--api-key", KEY]
    with SimServer(args) as sim:
        yield sim


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_match_the_recording(pooling_server: SimServer) -> None:
    texts = ["a cat sat", "a cat sat on a mat", "stock markets fell"]
    response = httpx.post(
        pooling_server.base_url + "/embeddings", json={"input": texts}, headers=auth()
    )
    body = response.json()
    assert shape_diff(body, recorded_json("vllm-embeddings.json")) == []
    assert body["id"].startswith("embd-")
    vectors = [item["embedding"] for item in body["data"]]
    assert [len(v) for v in vectors] == [384] * 3
    assert all(math.isclose(cosine(v, v), 1.0, rel_tol=1e-9) for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    assert body["usage"]["completion_tokens"] == 0
    again = httpx.post(
        pooling_server.base_url + "/embeddings", json={"input": texts[0]}, headers=auth()
    )
    assert again.json()["data"][0]["embedding"] == vectors[0]


def test_generation_routes_are_absent_on_a_pooling_server(pooling_server: SimServer) -> None:
    for path in ("/chat/completions", "/completions"):
        response = httpx.post(pooling_server.base_url + path, json={}, headers=auth())
        assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
    assert "Supported tasks: ['token_embed', 'embed']" in pooling_server.stdout_text


def test_api_key_guards_v1_only(pooling_server: SimServer) -> None:
    for headers in ({}, auth("wrong")):
        response = httpx.get(pooling_server.base_url + "/models", headers=headers)
        assert (response.status_code, response.json()) == (401, {"error": "Unauthorized"})
    assert httpx.get(pooling_server.base_url + "/models", headers=auth()).status_code == 200
    for path in ("/health", "/metrics", "/version", "/ping"):
        assert httpx.get(pooling_server.url + path).status_code == 200, path


def test_api_key_is_masked_in_the_log(pooling_server: SimServer) -> None:
    (line,) = [x for x in pooling_server.stdout_lines if "non-default args:" in x]
    assert "'api_key': '***'" in line
    assert KEY not in pooling_server.stdout_text


def test_api_key_from_the_environment() -> None:
    with SimServer(["/m/tiny"], env={"VLLM_API_KEY": "from-env"}) as sim:
        assert httpx.get(sim.base_url + "/models").status_code == 401
        assert httpx.get(sim.base_url + "/models", headers=auth("from-env")).status_code == 200

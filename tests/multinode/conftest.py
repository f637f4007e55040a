"""Multi-node servers on the real local cluster (2 nodes), with the real CPU vLLM.

Each test occupies both nodes, so ``multinode`` tests take a machine-wide lock and run one at a
time, even across test sessions. The Ray mode runs from the test-only overlay of the engine
(ray_engine.py: a test fixture, never part of the product).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_engine import RayTestEngine

from vec_inf_flows.engines.cpu import CpuEngine

LOCK = Path("/tmp/vec-inf-flows-multinode-tests.lock")


@pytest.fixture(scope="session")
def cpu_engine() -> CpuEngine:
    engine = CpuEngine.default()
    engine.setup()  # idempotent; about 4 minutes on a fresh machine
    assert engine.ready()
    return engine


@pytest.fixture(scope="session")
def ray_venv(cpu_engine: CpuEngine) -> Path:
    return RayTestEngine(cpu_engine).setup()  # about 25 s the first time, then a check


@pytest.fixture(autouse=True)
def _one_multinode_test_at_a_time(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("multinode") is None:
        yield
        return
    with LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield

"""The real CPU vLLM: set up once per machine (about 4 minutes the first time), then reused.

Tests take the ``sandbox`` fixture (tests/conftest.py), which needs the local Slurm cluster.
"""

from __future__ import annotations

import pytest

from vec_inf_flows.engines.cpu import CpuEngine


@pytest.fixture(scope="session", autouse=True)
def cpu_engine() -> CpuEngine:
    engine = CpuEngine.default()
    engine.setup()  # idempotent; a failure is a test failure, with the step and its log named
    assert engine.ready()
    return engine

"""Simulator servers shared by the tests of a module (each start costs about half a second)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sim_helpers import RECORDING_ARGS

from vec_inf_flows.sim.process import SimServer


@pytest.fixture(scope="module")
def generate_server() -> Iterator[SimServer]:
    """A generate-runner server named like the recordings, fast enough for shape tests."""
    with SimServer([*RECORDING_ARGS, "--sim-tokens-per-second", "2000"]) as sim:
        yield sim
